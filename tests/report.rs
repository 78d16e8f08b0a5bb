//! Art 17 afterwards, through the real binary on a set clock: `disclose obligations` (met, met
//! late, due soon, overdue; the calendar's clear error for a year it does not know), and
//! `disclose report` for a period in JSON, CSV and HTML — what was disclosed by category, scope
//! and channel, every refusal with its code and article, corrections, retractions and
//! cancellations with their reasons, overdue obligations, and whether the audit chain verifies
//! (a tampered row is flagged). The HTML page is opened in headless Chromium.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{Scratch, at, example, ok, sign, stderr, stdout, write};
use serde_json::{Value, json};

fn json_of(out: &Output) -> Value {
    serde_json::from_str(&stdout(out))
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(out), stderr(out)))
}

/// A plain notice of `category` in `scope` on one publication channel, published at `publish_at`.
fn notice(id: &str, category: &str, scope: &str, channel: &str, publish_at: &str) -> Value {
    json!({
        "id": id,
        "kind": "release",
        "category": category,
        "scope": scope,
        "classification": "none",
        "title": format!("{id} 的公告"),
        "template": "general",
        "data": {"body": "县委领导班子成员及分工情况如下。"},
        "channels": [channel],
        "audience": {"groups": [], "recipients": []},
        "schedule": {"publish_at": publish_at},
        "approval": {"approver": "李四", "reference": "组干审〔2026〕20号",
                     "approved_at": "2025-01-01T09:00:00+08:00", "key_id": "example-2026", "signature": ""}
    })
}

/// One obligation's periods from `disclose obligations --json`, and the exit status.
fn periods(s: &Scratch, clock: &str, id: &str) -> (Vec<Value>, Option<i32>) {
    let out = at(s, clock, &["obligations", "--json"]);
    let v = json_of(&out);
    let duty = v["obligations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == id)
        .unwrap_or_else(|| panic!("no {id} in {v:#}"))
        .clone();
    (
        duty["periods"].as_array().unwrap().clone(),
        out.status.code(),
    )
}

#[test]
fn obligations_are_met_late_or_overdue_as_the_ledger_shows() {
    let s = Scratch::new("obligations");
    // The yearly report (Art 7(4)) on the work of 2025, due 2026-03-31: published in April.
    let late = sign(
        &s,
        &notice(
            "yearly-2025",
            "7.4",
            "unit",
            "intranet",
            "2026-04-03T09:00:00+08:00",
        ),
        "yearly-2025",
    );
    ok(&s, "2026-04-03T10:00:00+08:00", &["dispatch", &late]);
    let (p, code) = periods(&s, "2026-04-03T10:00:00+08:00", "cadre-selection-yearly");
    assert_eq!(p.len(), 1, "{p:#?}");
    assert_eq!(p[0]["label"], "2025");
    assert_eq!(p[0]["status"], "met_late", "{p:#?}");
    assert_eq!(
        (p[0]["job"].as_str(), p[0]["days_late"].as_i64()),
        (Some("yearly-2025"), Some(3))
    );
    assert_eq!(code, Some(0), "met late is history, not an alarm");

    // The leadership team changed on Friday 2026-11-20: 10 working days → due Friday 2026-12-04.
    let out = ok(
        &s,
        "2026-11-23T09:00:00+08:00",
        &[
            "obligations",
            "change",
            "leadership-composition",
            "--on",
            "2026-11-20",
            "--note",
            "县长调整",
        ],
    );
    assert!(out.contains("is due by 2026-12-04"), "{out}");
    let (p, code) = periods(&s, "2026-11-23T09:00:00+08:00", "leadership-composition");
    assert_eq!(
        (p[0]["status"].as_str(), code),
        (Some("due_soon"), Some(0)),
        "{p:#?}"
    );
    // Not disclosed by then: overdue, and the command says so with its exit status.
    let (p, code) = periods(&s, "2026-12-07T09:00:00+08:00", "leadership-composition");
    assert_eq!(p[0]["status"], "overdue", "{p:#?}");
    assert_eq!(
        (p[0]["due"].as_str(), p[0]["days_late"].as_i64()),
        (Some("2026-12-04"), Some(3))
    );
    assert_eq!(code, Some(1));
    let text = ok_or_1(&s, "2026-12-07T09:00:00+08:00", &["obligations"]);
    assert!(
        text.contains(
            "change 2026-11-20  OVERDUE: due 2026-12-04, not disclosed 3 days later [县长调整]"
        ),
        "{text}"
    );

    // Published on 2026-12-02 (a 6.2 notice to society): met in time.
    let met = sign(
        &s,
        &notice(
            "team-2026",
            "6.2",
            "public",
            "website",
            "2026-12-02T09:00:00+08:00",
        ),
        "team-2026",
    );
    ok(&s, "2026-12-02T10:00:00+08:00", &["dispatch", &met]);
    let (p, _) = periods(&s, "2026-12-07T09:00:00+08:00", "leadership-composition");
    assert_eq!(
        (p[0]["status"].as_str(), p[0]["job"].as_str()),
        (Some("met"), Some("team-2026"))
    );

    // A change late in December is due in 2027, a year the built-in calendar does not know: the
    // period says so clearly instead of guessing; a [calendar] override for 2027 settles it.
    let out = ok(
        &s,
        "2026-12-28T09:00:00+08:00",
        &[
            "obligations",
            "change",
            "leadership-composition",
            "--on",
            "2026-12-28",
        ],
    );
    assert!(out.contains("no working-day calendar for 2027"), "{out}");
    let (p, code) = periods(&s, "2026-12-28T10:00:00+08:00", "leadership-composition");
    assert_eq!(p[1]["status"], "unknown", "{p:#?}");
    assert!(
        p[1]["message"]
            .as_str()
            .unwrap()
            .contains("no working-day calendar for 2027: add the year's holidays"),
        "{p:#?}"
    );
    assert_eq!(code, Some(1));
    write(
        &s.path("cal.toml"),
        "[calendar]\nyears = [2027]\nholidays = [2027-01-01]\nworkdays = []\n",
    );
    let cfg = s.path("cal.toml");
    let out = s
        .command(&["--config", cfg.to_str().unwrap(), "obligations", "--json"])
        .env("DISCLOSE_CLOCK", "2026-12-28T10:00:00+08:00")
        .env("DISCLOSE_PATHS_CHANNELS_DIR", common::daytime_channels(&s))
        .output()
        .unwrap();
    let v = json_of(&out);
    let p = &v["obligations"][1]["periods"][1];
    // From 2026-12-29: Dec 29, 30, 31, then Jan 4 … (1 January a holiday, 2–3 a weekend).
    assert_eq!(p["due"], "2027-01-12", "{v:#}");
    assert_eq!(p["status"], "open", "15 days left");

    // Recording mistakes are named.
    for (args, needle) in [
        (
            vec!["obligations", "change", "nope", "--on", "2026-12-01"],
            "no obligation \"nope\"",
        ),
        (
            vec![
                "obligations",
                "change",
                "cadre-selection-yearly",
                "--on",
                "2026-12-01",
            ],
            "falls due every year",
        ),
        (
            vec![
                "obligations",
                "change",
                "leadership-composition",
                "--on",
                "2026-12-31",
            ],
            "in the future",
        ),
        (
            vec![
                "obligations",
                "change",
                "leadership-composition",
                "--on",
                "20261201",
            ],
            "YYYY-MM-DD",
        ),
    ] {
        let out = at(&s, "2026-12-28T10:00:00+08:00", &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    }
}

fn ok_or_1(s: &Scratch, clock: &str, args: &[&str]) -> String {
    let out = at(s, clock, args);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", stderr(&out));
    stdout(&out)
}

#[test]
fn a_broken_obligations_file_is_refused_with_every_problem() {
    let s = Scratch::new("obligations-bad");
    let dir = common::daytime_channels(&s);
    write(
        &dir.join("obligations.toml"),
        "[[obligation]]\nid = \"x\"\ntitle = \"t\"\narticle = \"7(4)\"\ncategory = \"7.9\"\ndue = { every = \"month\", by = \"13-01\", first_year = 2025 }\n",
    );
    let out = at(&s, "2026-12-01T10:00:00+08:00", &["obligations"]);
    assert_eq!(out.status.code(), Some(2));
    let e = stderr(&out);
    for needle in [
        "obligations.toml has problems",
        "article \"7(4)\"",
        "category \"7.9\"",
        "due.every = \"month\"",
        "due.by = \"13-01\"",
    ] {
        assert!(e.contains(needle), "{needle:?} missing in {e}");
    }
    // The report needs the duties too, and refuses the same way.
    let out = at(
        &s,
        "2026-12-01T10:00:00+08:00",
        &["report", "--from", "2026-12-01", "--to", "2026-12-31"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("category \"7.9\""),
        "{}",
        stderr(&out)
    );
}

/// A ledger with a month of work: the three example flows (one refused example beside them), a
/// correction and a cancellation; a change in the leadership team never disclosed.
fn december(s: &Scratch) {
    ok(
        s,
        "2026-12-01T10:00:00+08:00",
        &[
            "obligations",
            "change",
            "leadership-composition",
            "--on",
            "2026-12-01",
            "--note",
            "副县长调整",
        ],
    );
    let mut release = example("01-pre-appointment-release.json");
    release["schedule"] = json!({"publish_at": "2026-12-01T10:00:00+08:00", "expires_at": "2026-12-09T18:00:00+08:00"});
    let release_file = sign(s, &release, "release");
    let out = at(
        s,
        "2026-12-01T10:00:00+08:00",
        &[
            "dispatch",
            "--directory",
            "examples/directory",
            &release_file,
            "examples/jobs/02-scheduled-unit-notice.json",
            "examples/jobs/03-investigation-result-letters.json",
            "examples/refused/anonymous-complainant.json",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "one refused: {}", stdout(&out));

    let mut fix = release.clone();
    fix["id"] = json!("zzb-2026-0142-gz");
    fix["kind"] = json!("correction");
    fix["corrects"] = json!("zzb-2026-0142");
    fix["template"] = json!("correction_notice");
    fix["data"] = json!({"original_title": release["title"], "correction": "张三同志现任县财政局副局长（主持工作）。"});
    fix["schedule"] = json!({"publish_at": "2026-12-02T09:00:00+08:00", "expires_at": "2026-12-09T18:00:00+08:00"});
    let fix = sign(s, &fix, "fix");
    ok(s, "2026-12-02T09:00:00+08:00", &["dispatch", &fix]);
    ok(
        s,
        "2026-12-03T09:00:00+08:00",
        &[
            "cancel",
            "zzb-2026-0150",
            "--reason",
            "职位调整，暂缓竞争上岗",
        ],
    );
}

#[test]
fn the_report_shows_the_period_by_category_scope_and_channel_with_refusals_amendments_and_duties() {
    let s = Scratch::new("report-json");
    december(&s);
    let clock = "2026-12-20T09:00:00+08:00";
    let v = json_of(&at(
        &s,
        clock,
        &[
            "report",
            "--from",
            "2026-12-01",
            "--to",
            "2026-12-31",
            "--format",
            "json",
        ],
    ));

    assert_eq!(v["audit"]["verified"], true, "{v:#}");
    let ids: Vec<&str> = v["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "zzb-2026-0142",
            "zzb-2026-0150",
            "zzb-2026-0155",
            "zzb-2026-0142-gz"
        ],
        "{v:#}"
    );
    let group = |table: &str, key: &str| -> Value {
        v[table]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["key"] == key)
            .unwrap_or_else(|| panic!("no {key} in {table}: {v:#}"))
            .clone()
    };
    // SMS: 4 subscribers reached by the release, the same 4 by its correction.
    let sms = group("by_channel", "sms");
    assert_eq!(
        (sms["jobs"].as_u64(), sms["counts"]["delivered"].as_u64()),
        (Some(2), Some(8)),
        "{sms:#}"
    );
    assert!(sms["label"].as_str().unwrap().contains("第十条"));
    let letters = group("by_channel", "letter");
    assert_eq!(letters["counts"]["delivered"], 2);
    // The unit notice was cancelled before its time: 6 deliveries (2 e-mails, the page, 3 WeCom).
    let unit = group("by_scope", "unit");
    assert_eq!(
        (
            unit["counts"]["cancelled"].as_u64(),
            unit["counts"]["delivered"].as_u64()
        ),
        (Some(6), Some(0))
    );
    let public = group("by_category", "6.3");
    assert_eq!(public["jobs"], 2);
    assert!(
        public["label"]
            .as_str()
            .unwrap()
            .contains("第六条第（三）项")
    );
    assert_eq!(v["totals"]["jobs"], 4);

    // Every reason of the refused example, with its code and article.
    let refusals = v["refusals"].as_array().unwrap();
    assert!(
        refusals.iter().all(|r| r["job_id"] == "zzb-2026-0160"),
        "{refusals:#?}"
    );
    assert!(
        refusals
            .iter()
            .any(|r| r["code"] == "complainant_not_signed" && r["article"] == "Art 9(5)"),
        "{refusals:#?}"
    );
    assert!(
        refusals
            .iter()
            .any(|r| r["code"] == "internal_to_public" && r["article"] == "Art 3")
    );

    // The correction and the cancellation with their reasons.
    let amendments = v["amendments"].as_array().unwrap();
    let kinds: Vec<&str> = amendments
        .iter()
        .map(|a| a["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["correction", "cancellation"], "{amendments:#?}");
    assert_eq!(amendments[0]["target"], "zzb-2026-0142");
    assert_eq!(
        amendments[0]["target_title"],
        "关于张三同志任职前公示的公告"
    );
    assert!(
        amendments[0]["reason"]
            .as_str()
            .unwrap()
            .contains("主持工作")
    );
    assert_eq!(
        amendments[0]["deliveries"], 11,
        "page, 4 SMS, 4 WeChat, 2 e-mails"
    );
    assert_eq!(amendments[1]["reason"], "职位调整，暂缓竞争上岗");
    assert_eq!(amendments[1]["deliveries"], 6);

    // Overdue: the leadership team's composition after the change of 2026-12-01 (due 12-15), and
    // the yearly report on 2025 (due 2026-03-31), never disclosed.
    let duties = v["obligations"].as_array().unwrap();
    let team = duties
        .iter()
        .find(|o| o["id"] == "leadership-composition")
        .unwrap();
    assert_eq!(
        (
            team["status"].as_str(),
            team["due"].as_str(),
            team["days_late"].as_i64(),
            team["article"].as_str()
        ),
        (
            Some("overdue"),
            Some("2026-12-15"),
            Some(5),
            Some("Art 6(2)")
        ),
        "{team:#}"
    );
    let yearly = duties
        .iter()
        .find(|o| o["id"] == "cadre-selection-yearly")
        .unwrap();
    assert_eq!(
        (yearly["status"].as_str(), yearly["period"].as_str()),
        (Some("overdue"), Some("2025"))
    );

    // A period with none of it: no jobs, no refusals; the yearly duty was already overdue then.
    let v = json_of(&at(
        &s,
        clock,
        &[
            "report",
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-30",
            "--format",
            "json",
        ],
    ));
    assert_eq!(v["jobs"], json!([]));
    assert_eq!(v["refusals"], json!([]));
    assert_eq!(v["obligations_as_of"], "2026-11-30");
    let ids: Vec<&str> = v["obligations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["cadre-selection-yearly"],
        "the change of 12-01 was not yet owed: {v:#}"
    );

    // CSV: one table, the same facts.
    let out = at(
        &s,
        clock,
        &[
            "report",
            "--from",
            "2026-12-01",
            "--to",
            "2026-12-31",
            "--format",
            "csv",
        ],
    );
    assert!(out.status.success());
    let text = stdout(&out);
    let text = text
        .strip_prefix('\u{feff}')
        .expect("a byte-order mark for spreadsheets");
    let mut rows = csv::Reader::from_reader(text.as_bytes());
    let header = rows.headers().unwrap().clone();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = rows.records().map(|r| r.unwrap()).collect();
    let find = |section: &str, pred: &dyn Fn(&csv::StringRecord) -> bool| {
        rows.iter()
            .find(|r| &r[col("section")] == section && pred(r))
            .unwrap_or_else(|| panic!("no {section} row in\n{text}"))
            .clone()
    };
    assert_eq!(&find("audit", &|_| true)[col("code")], "intact");
    let sms = find("channel", &|r| &r[col("channel")] == "sms");
    assert_eq!(&sms[col("delivered")], "8");
    let r = find("refusal", &|r| &r[col("code")] == "complainant_not_signed");
    assert_eq!(&r[col("article")], "Art 9(5)");
    let c = find("cancellation", &|_| true);
    assert!(c[col("detail")].contains("职位调整"), "{c:?}");
    let o = find("obligation", &|r| {
        &r[col("code")] == "overdue" && &r[col("category")] == "6.2"
    });
    assert_eq!(&o[col("article")], "Art 6(2)");

    // Bad periods are named.
    let out = at(
        &s,
        clock,
        &["report", "--from", "2026-12-31", "--to", "2026-12-01"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("before --from"), "{}", stderr(&out));
    let out = at(
        &s,
        clock,
        &[
            "report",
            "--from",
            "2026-12-01",
            "--to",
            "2026-12-31",
            "--format",
            "pdf",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("html, csv or json"),
        "{}",
        stderr(&out)
    );
}

/// A changed audit row is found by `audit verify`, and the report says so at the top and exits 1.
#[test]
fn a_tampered_audit_row_is_detected_and_flagged_in_the_report() {
    let s = Scratch::new("report-tamper");
    december(&s);
    let clock = "2026-12-20T09:00:00+08:00";
    assert!(ok(&s, clock, &["audit", "verify"]).contains("intact"));
    // Someone makes the cancellation's reason look better after the fact.
    let db = rusqlite::Connection::open(s.path("ledger.db")).unwrap();
    let changed = db
        .execute(
            "UPDATE audit SET body = replace(body, '职位调整，暂缓竞争上岗', '按计划取消') WHERE kind = 'job.cancelled'",
            [],
        )
        .unwrap();
    assert_eq!(changed, 1);
    let seq: i64 = db
        .query_row(
            "SELECT seq FROM audit WHERE kind = 'job.cancelled'",
            [],
            |r| r.get(0),
        )
        .unwrap();

    let out = at(&s, clock, &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains(&format!("BROKEN at entry {seq}")),
        "{}",
        stdout(&out)
    );

    let out = at(
        &s,
        clock,
        &[
            "report",
            "--from",
            "2026-12-01",
            "--to",
            "2026-12-31",
            "--format",
            "json",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "the report is written, and the exit status warns"
    );
    assert!(stderr(&out).contains("does NOT verify"), "{}", stderr(&out));
    let v = json_of(&out);
    assert_eq!(v["audit"]["verified"], false);
    assert_eq!(v["audit"]["broken_at"], seq);

    let html = s.path("report.html");
    let out = at(
        &s,
        clock,
        &[
            "report",
            "--from",
            "2026-12-01",
            "--to",
            "2026-12-31",
            "--out",
            html.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("data-verified=\"false\""), "{page}");
    assert!(
        page.contains(&format!(
            "审计链校验：未通过</strong>　第 {seq} 条审计记录校验失败"
        )),
        "{page}"
    );
}

/// The Chromium the tests use: Debian's `chromium` (`.ci/run` installs it when missing).
fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Ok(out) = std::process::Command::new("which").arg(name).output()
            && out.status.success()
        {
            return PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        }
    }
    panic!(
        "headless Chromium is needed to check the HTML report and is not installed: \
         apt-get install -y chromium (.ci/run does this when it is missing)"
    );
}

/// `chromium --headless` with a fresh profile and nothing reaching the network.
fn headless(s: &Scratch, profile: &str, args: &[&str], page: &Path) -> Output {
    let profile = s.path(profile);
    std::fs::create_dir_all(&profile).unwrap();
    let out = std::process::Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "chromium {args:?}: {}", stderr(&out));
    out
}

/// The HTML report as a browser shows it: one self-contained page (nothing fetched), the key
/// figures in the rendered DOM, and a screenshot kept as a test artifact for a person to look at.
#[test]
fn the_html_report_opens_in_headless_chromium() {
    let s = Scratch::new("report-html");
    december(&s);
    let html = s.path("report.html");
    let out = ok(
        &s,
        "2026-12-20T09:00:00+08:00",
        &[
            "report",
            "--from",
            "2026-12-01",
            "--to",
            "2026-12-31",
            "--out",
            html.to_str().unwrap(),
        ],
    );
    assert!(
        out.contains("4 jobs, 6 refusals, 2 corrections/retractions/cancellations"),
        "{out}"
    );
    let page = std::fs::read_to_string(&html).unwrap();
    for external in ["src=", "href=\"http", "@import", "url("] {
        assert!(
            !page.contains(external),
            "the page must be self-contained; it has {external:?}"
        );
    }

    let dom = stdout(&headless(&s, "profile-dom", &["--dump-dom"], &html));
    let text_of = |id: &str| -> String {
        let start = dom
            .find(&format!("id=\"{id}\">"))
            .unwrap_or_else(|| panic!("no #{id} in the rendered DOM:\n{dom}"));
        let rest = &dom[start..];
        rest[rest.find('>').unwrap() + 1..rest.find('<').unwrap()].to_string()
    };
    assert_eq!(text_of("total-jobs"), "4");
    assert_eq!(
        text_of("total-delivered"),
        "24",
        "11 release + 11 correction + 2 letters"
    );
    assert_eq!(text_of("total-cancelled"), "6");
    assert_eq!(text_of("total-refusals"), "6");
    assert_eq!(text_of("total-overdue"), "2");
    for needle in [
        "干部工作信息公开情况报告",
        "审计链校验：通过",
        "一、公开情况汇总（第六条至第十三条）",
        "三、拒绝公开的事项（第十七条：不应当公开而公开、不按规定范围公开）",
        "四、更正、撤回与取消（第十七条：失实信息应责令改正）",
        "五、逾期未公开的事项（第十七条：应当公开而未公开）",
        "complainant_not_signed",
        "职位调整，暂缓竞争上岗",
        "data-id=\"leadership-composition\" data-status=\"overdue\"",
        "已逾期 5 天",
    ] {
        assert!(dom.contains(needle), "{needle:?} not in the rendered DOM");
    }

    // The screenshot, kept under the target directory for a person to look at.
    let artifacts = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join("report.png");
    let _ = std::fs::remove_file(&shot);
    headless(
        &s,
        "profile-shot",
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1200,1600",
        ],
        &html,
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );
    std::fs::copy(&html, artifacts.join("report.html")).unwrap();
    eprintln!("screenshot of the report: {}", shot.display());
}
