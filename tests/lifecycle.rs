//! The life of a disclosure, end to end through the real binary on a clock set by
//! `DISCLOSE_CLOCK` (no test waits for a date): a scheduled job that goes out at its time after
//! a restart, its publicity period closing (公示期满); a correction that reaches exactly whom the
//! original reached, on every channel, and rewrites the page in place; a retraction that takes
//! the page out of the index and the feed and cancels what had not gone out; and
//! `disclose cancel` for a schedule that must not go out at all (Art 17).

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Scratch, at, example, ok, sign, stderr, stdout, write};
use serde_json::{Value, json};

/// `disclose dispatch --directory examples/directory JOBS…` at `clock`, which must succeed.
fn dispatch(s: &Scratch, clock: &str, jobs: &[&str]) -> String {
    let mut args = vec!["dispatch", "--directory", "examples/directory"];
    args.extend_from_slice(jobs);
    ok(s, clock, &args)
}

/// `job_id address` of every line of an outbox channel, sorted.
fn sent(s: &Scratch, channel: &str) -> Vec<String> {
    let mut v: Vec<String> = s
        .lines(&format!("out/outbox/{channel}.jsonl"))
        .iter()
        .map(|l| {
            format!(
                "{} {}",
                l["job_id"].as_str().unwrap(),
                l["address"]
                    .as_str()
                    .unwrap_or(l["recipient"].as_str().unwrap())
            )
        })
        .collect();
    v.sort();
    v
}

/// The addresses one job reached on an outbox channel (e-mail: the `To:` of each `.eml`).
fn reached(s: &Scratch, channel: &str, job: &str) -> BTreeSet<String> {
    if channel == "email" {
        let dir = s.path(&format!("out/outbox/email/{job}"));
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return BTreeSet::new();
        };
        return entries
            .map(|e| {
                let eml = std::fs::read_to_string(e.unwrap().path()).unwrap();
                eml.lines()
                    .find_map(|l| l.strip_prefix("To: "))
                    .unwrap_or_else(|| panic!("no To: in {eml}"))
                    .to_string()
            })
            .collect();
    }
    sent(s, channel)
        .into_iter()
        .filter_map(|l| l.strip_prefix(&format!("{job} ")).map(str::to_string))
        .collect()
}

/// Delivery states of a job from `disclose status ID --json`: `channel state` → count.
fn states(s: &Scratch, clock: &str, job: &str) -> Vec<(String, String, String)> {
    let v: Value = serde_json::from_str(&ok(s, clock, &["status", job, "--json"])).unwrap();
    let mut rows: Vec<(String, String, String)> = v["deliveries"]
        .as_array()
        .unwrap_or_else(|| panic!("{v:#}"))
        .iter()
        .map(|d| {
            (
                d["channel"].as_str().unwrap().to_string(),
                d["state"].as_str().unwrap().to_string(),
                d["code"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    rows.sort();
    rows
}

/// The pre-appointment release (website, WeChat, SMS, press e-mail), publicity period as given.
fn release(id: &str, publish_at: Option<&str>, expires_at: &str) -> Value {
    let mut job = example("01-pre-appointment-release.json");
    job["id"] = json!(id);
    job["schedule"] = match publish_at {
        Some(p) => json!({"publish_at": p, "expires_at": expires_at}),
        None => json!({"expires_at": expires_at}),
    };
    job["approval"]["approved_at"] = json!("2026-11-28T16:00:00+08:00");
    job
}

/// A correction of `original` (a job made from `source`): same category, scope, channels and
/// audience, the correction notice template.
fn correction_of(source: &Value, id: &str, original: &str, text: &str) -> Value {
    let mut job = source.clone();
    job["id"] = json!(id);
    job["kind"] = json!("correction");
    job["corrects"] = json!(original);
    job["template"] = json!("correction_notice");
    job["title"] = json!(format!(
        "关于《{}》的更正",
        source["title"].as_str().unwrap()
    ));
    job["data"] = json!({"original_title": source["title"], "correction": text});
    job
}

const SUBSCRIBER_SMS: [&str; 4] = [
    "+8613700137002",
    "+8613800138000",
    "+8613900139001",
    "+8618600186004",
];

#[test]
fn a_scheduled_job_goes_out_at_its_time_after_a_restart_and_its_period_closes() {
    let s = Scratch::new("life-schedule");
    let job = sign(
        &s,
        &release(
            "sched-1",
            Some("2026-12-01T09:00:00+08:00"),
            "2026-12-08T18:00:00+08:00",
        ),
        "sched-1",
    );

    // The day before: accepted, planned, nothing out; the ledger holds the schedule.
    let out = dispatch(&s, "2026-11-30T10:00:00+08:00", &[&job]);
    assert!(
        out.contains("scheduled: goes out at 2026-12-01T09:00"),
        "{out}"
    );
    assert!(!s.path("out/site/website/sched-1.html").exists());
    assert!(sent(&s, "sms").is_empty() && sent(&s, "wechat").is_empty());
    assert!(reached(&s, "email", "sched-1").is_empty());

    // A new process (the restart) a minute early: still nothing.
    dispatch(&s, "2026-12-01T08:59:00+08:00", &[&job]);
    assert!(sent(&s, "sms").is_empty());
    assert!(!s.path("out/site/website/sched-1.html").exists());

    // Another new process at its time: everything goes out, once.
    let out = dispatch(&s, "2026-12-01T09:00:05+08:00", &[&job]);
    assert!(out.contains("duplicate"), "{out}");
    let sms: Vec<String> = SUBSCRIBER_SMS
        .iter()
        .map(|n| format!("sched-1 {n}"))
        .collect();
    assert_eq!(sent(&s, "sms"), sms);
    assert_eq!(sent(&s, "wechat").len(), 4);
    assert_eq!(reached(&s, "email", "sched-1").len(), 2, "the press list");
    let page = s.read("out/site/website/sched-1.html");
    assert!(
        page.contains("公示中") && page.contains("县财政局局长"),
        "{page}"
    );
    assert!(
        s.read("out/site/website/index.html")
            .contains("sched-1.html")
    );

    // After the publicity period: the page says 公示期满 and moves to the archive.
    dispatch(&s, "2026-12-08T18:00:05+08:00", &[&job]);
    let page = s.read("out/site/website/sched-1.html");
    assert!(
        page.contains("公示期满") && !page.contains("公示中"),
        "{page}"
    );
    assert!(
        !s.read("out/site/website/index.html")
            .contains("sched-1.html")
    );
    assert!(
        s.read("out/site/website/archive.html")
            .contains("sched-1.html")
    );
    assert_eq!(sent(&s, "sms").len(), 4, "nothing sent twice");
}

/// A running `disclose serve` on the spool directory, killed when dropped.
struct Service {
    child: Child,
    log: PathBuf,
}

impl Service {
    fn start(s: &Scratch, clock: &str, log: &str) -> Service {
        let log = s.path(log);
        let child = s
            .command(&["serve"])
            .env("DISCLOSE_QUEUE_SPOOL_DIR", s.path("spool"))
            .env_remove("DISCLOSE_QUEUE_AMQP_URL")
            .env("DISCLOSE_CLOCK", clock)
            .env("DISCLOSE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let svc = Service { child, log };
        svc.until("the service to start", || {
            std::fs::read_to_string(&svc.log)
                .unwrap_or_default()
                .contains("intake from the spool directory")
        });
        svc
    }

    /// Poll `done` every 20 ms for at most 30 s (the service works on its own time; the test
    /// waits for what it must see, not for a duration).
    fn until(&self, what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done() {
            assert!(
                Instant::now() < deadline,
                "waited 30 s for {what}; the service log:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM and the exit, which must be clean.
    fn stop(mut self) {
        let ok = Command::new("kill")
            .args(["-s", "TERM", &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
        let status = self.child.wait().unwrap();
        assert!(status.success(), "serve exited with {status:?}");
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn serve_keeps_a_schedule_across_a_restart() {
    let s = Scratch::new("life-serve");
    ok(
        &s,
        "2026-11-30T10:00:00+08:00",
        &[
            "directory",
            "import",
            "--group",
            "subscribers",
            "--kind",
            "public",
            "examples/directory/subscribers.csv",
        ],
    );
    let mut job = release(
        "serve-1",
        Some("2026-12-01T09:00:00+08:00"),
        "2026-12-08T18:00:00+08:00",
    );
    job["channels"] = json!(["website", "sms"]);
    job["audience"]["groups"] = json!(["subscribers"]);
    let job = sign(&s, &job, "serve-1");
    let spool = |args: &[&str]| {
        let out = s
            .command(args)
            .env("DISCLOSE_QUEUE_SPOOL_DIR", s.path("spool"))
            .env_remove("DISCLOSE_QUEUE_AMQP_URL")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    };
    spool(&["submit", &job]);

    // The evening before: the service takes the job, plans it, and sends nothing.
    let svc = Service::start(&s, "2026-11-30T20:00:00+08:00", "serve-1.log");
    svc.until("the job to be taken", || {
        s.path("spool/done")
            .read_dir()
            .is_ok_and(|mut d| d.next().is_some())
    });
    svc.stop();
    assert!(sent(&s, "sms").is_empty());
    assert!(!s.path("out/site/website/serve-1.html").exists());

    // Started again on the morning of publication: out it goes, from the ledger alone.
    let svc = Service::start(&s, "2026-12-01T09:00:01+08:00", "serve-2.log");
    svc.until("the SMS to go out", || sent(&s, "sms").len() == 4);
    svc.until("the page", || {
        s.path("out/site/website/serve-1.html").exists()
    });
    svc.stop();
    let sms: Vec<String> = SUBSCRIBER_SMS
        .iter()
        .map(|n| format!("serve-1 {n}"))
        .collect();
    assert_eq!(sent(&s, "sms"), sms);
}

/// Art 17 (失实信息…应责令其改正): on every channel, a correction reaches exactly whom the
/// original reached — not someone who joined a group since — and the page keeps its URL.
#[test]
fn a_correction_reaches_exactly_the_original_recipients_on_every_channel() {
    let s = Scratch::new("life-correct");
    let public = release(
        "orig-pub",
        Some("2026-12-01T10:00:00+08:00"),
        "2026-12-09T18:00:00+08:00",
    );
    let mut unit = example("02-scheduled-unit-notice.json");
    unit["id"] = json!("orig-unit");
    unit["schedule"] = json!({});
    unit["approval"]["approved_at"] = json!("2026-11-28T16:00:00+08:00");
    let mut letters = example("03-investigation-result-letters.json");
    letters["id"] = json!("orig-letter");
    let originals = [
        sign(&s, &public, "orig-pub"),
        sign(&s, &unit, "orig-unit"),
        sign(&s, &letters, "orig-letter"),
    ];
    let originals: Vec<&str> = originals.iter().map(String::as_str).collect();
    dispatch(&s, "2026-12-01T10:00:00+08:00", &originals);

    // Newcomers after the originals went out: on every list, with every address.
    write(
        &s.path("dir2/subscribers.csv"),
        &(std::fs::read_to_string(common::repo().join("examples/directory/subscribers.csv"))
            .unwrap()
            + "s0008,新订阅者,13600136008,oWx_example_0008,\n"),
    );
    write(
        &s.path("dir2/unit-czj.csv"),
        &(std::fs::read_to_string(common::repo().join("examples/directory/unit-czj.csv")).unwrap()
            + "c004,新同事,xin@czj.example.gov.cn,xintongshi,100000,某县人民路1号县财政局\n"),
    );
    for (group, kind, file) in [
        ("subscribers", "public", "dir2/subscribers.csv"),
        ("unit:czj", "unit", "dir2/unit-czj.csv"),
    ] {
        let file = s.path(file);
        ok(
            &s,
            "2026-12-01T12:00:00+08:00",
            &[
                "directory",
                "import",
                "--group",
                group,
                "--kind",
                kind,
                file.to_str().unwrap(),
            ],
        );
    }

    let mut fixes = [
        correction_of(
            &public,
            "fix-pub",
            "orig-pub",
            "张三同志现任职务应为县财政局副局长（主持工作）。",
        ),
        correction_of(
            &unit,
            "fix-unit",
            "orig-unit",
            "报名时间更正为2026年12月8日至12月14日。",
        ),
        correction_of(
            &letters,
            "fix-letter",
            "orig-letter",
            "案号更正为组信〔2026〕10号。",
        ),
    ];
    fixes[0]["schedule"] = json!({"publish_at": "2026-12-02T10:00:00+08:00", "expires_at": "2026-12-09T18:00:00+08:00"});
    let fixes: Vec<String> = fixes
        .iter()
        .map(|f| sign(&s, f, f["id"].as_str().unwrap()))
        .collect();
    let fixes: Vec<&str> = fixes.iter().map(String::as_str).collect();
    dispatch(&s, "2026-12-02T10:00:00+08:00", &fixes);

    for (channel, original, fix) in [
        ("sms", "orig-pub", "fix-pub"),
        ("wechat", "orig-pub", "fix-pub"),
        ("email", "orig-pub", "fix-pub"),
        ("email", "orig-unit", "fix-unit"),
        ("wecom", "orig-unit", "fix-unit"),
        ("letter", "orig-letter", "fix-letter"),
    ] {
        let before = reached(&s, channel, original);
        assert!(!before.is_empty(), "{channel}: the original reached no one");
        assert_eq!(
            reached(&s, channel, fix),
            before,
            "{channel}: the correction {fix} must reach exactly whom {original} reached"
        );
    }
    for newcomer in ["+8613600136008", "oWx_example_0008", "xintongshi"] {
        assert!(
            !sent(&s, "sms")
                .iter()
                .chain(&sent(&s, "wechat"))
                .chain(&sent(&s, "wecom"))
                .any(|l| l.ends_with(newcomer)),
            "{newcomer} joined after the original and got the correction"
        );
    }
    assert!(!reached(&s, "email", "fix-unit").contains("xin@czj.example.gov.cn"));
    // The correction's SMS is the registered correction text, not the original's.
    let line = s
        .lines("out/outbox/sms.jsonl")
        .into_iter()
        .find(|l| l["job_id"] == "fix-pub")
        .unwrap();
    assert!(
        line["content"]["text"]
            .as_str()
            .unwrap()
            .contains("县委组织部更正"),
        "{line}"
    );

    // The pages: the original URL shows the corrected text with a dated correction note; the
    // correction has no page of its own.
    for (site, original, fix, text) in [
        ("website", "orig-pub", "fix-pub", "主持工作"),
        ("intranet", "orig-unit", "fix-unit", "12月14日"),
    ] {
        let page = s.read(&format!("out/site/{site}/{original}.html"));
        assert!(
            page.contains("更正说明") && page.contains("2026年12月2日") && page.contains(text),
            "{site}: {page}"
        );
        assert!(!s.path(&format!("out/site/{site}/{fix}.html")).exists());
        let index = s.read(&format!("out/site/{site}/index.html"));
        assert_eq!(
            index.matches(&format!("{original}.html")).count(),
            1,
            "{index}"
        );
        assert!(index.contains("已更正"), "{index}");
    }
}

/// Art 17: a correction can never widen the original — not another group, not another channel.
#[test]
fn a_correction_that_would_widen_the_audience_is_refused() {
    let s = Scratch::new("life-widen");
    let mut original = release(
        "narrow-1",
        Some("2026-12-01T10:00:00+08:00"),
        "2026-12-09T18:00:00+08:00",
    );
    original["channels"] = json!(["website", "sms"]);
    original["audience"]["groups"] = json!(["subscribers"]);
    let file = sign(&s, &original, "narrow-1");
    dispatch(&s, "2026-12-01T10:00:00+08:00", &[&file]);
    let mut fix = correction_of(&original, "widen-1", "narrow-1", "更正内容。");
    fix["channels"] = json!(["website", "sms", "email"]);
    fix["audience"]["groups"] = json!(["subscribers", "press"]);
    let fix = sign(&s, &fix, "widen-1");
    let out = at(&s, "2026-12-02T10:00:00+08:00", &["dispatch", &fix]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains("channel_not_allowed (Art 17)")
            && text.contains("audience_outside_scope (Art 17)"),
        "{text}"
    );
    assert!(reached(&s, "email", "widen-1").is_empty());
    assert!(!sent(&s, "sms").iter().any(|l| l.starts_with("widen-1 ")));
}

/// The shipped channels with SMS quiet hours from 21:00 to 08:00, in `s/quiet-channels`.
fn quiet_channels(s: &Scratch) -> String {
    let dir = common::daytime_channels(s);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let mut text = std::fs::read_to_string(&path).unwrap();
        if path.file_name().unwrap() == "sms.toml" {
            text = text.replacen(
                "batch_size = 200\n",
                "batch_size = 200\nquiet_hours = { from = \"21:00\", to = \"08:00\" }\n",
                1,
            );
        }
        write(
            &s.path(&format!(
                "quiet-channels/{}",
                path.file_name().unwrap().to_str().unwrap()
            )),
            &text,
        );
    }
    s.path("quiet-channels").display().to_string()
}

fn dispatch_with(s: &Scratch, channels: &str, clock: &str, jobs: &[&str]) -> String {
    let mut args = vec!["dispatch", "--directory", "examples/directory"];
    args.extend_from_slice(jobs);
    let out = s
        .command(&args)
        .env("DISCLOSE_PATHS_CHANNELS_DIR", channels)
        .env("DISCLOSE_CLOCK", clock)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    stdout(&out)
}

/// A retraction (Art 17: 不应当公开而公开) withdraws the page from the index, the archive and the
/// feed (its URL answers with a withdrawal notice), cancels the deliveries not yet sent, and
/// sends a retraction notice to those the original reached.
#[test]
fn a_retraction_withdraws_the_page_and_cancels_what_has_not_gone_out() {
    let s = Scratch::new("life-retract");
    let ch = quiet_channels(&s);
    let mut original = release(
        "wrong-1",
        Some("2026-12-01T22:00:00+08:00"),
        "2026-12-09T18:00:00+08:00",
    );
    original["channels"] = json!(["website", "wechat", "sms"]);
    original["audience"]["groups"] = json!(["subscribers"]);
    let file = sign(&s, &original, "wrong-1");
    // 22:00: the page and WeChat go out; SMS waits for the morning.
    dispatch_with(&s, &ch, "2026-12-01T22:00:00+08:00", &[&file]);
    assert!(
        s.read("out/site/website/index.html")
            .contains("wrong-1.html")
    );
    assert!(s.read("out/site/website/feed.xml").contains("wrong-1.html"));
    assert_eq!(reached(&s, "wechat", "wrong-1").len(), 4);
    assert!(sent(&s, "sms").is_empty());

    let mut retraction = original.clone();
    retraction["id"] = json!("retract-1");
    retraction["kind"] = json!("retraction");
    retraction["corrects"] = json!("wrong-1");
    retraction["template"] = json!("general");
    retraction["title"] = json!("关于撤回《关于张三同志任职前公示的公告》的说明");
    retraction["data"] =
        json!({"body": "此前发布的公告有误，现予撤回。", "reason": "拟任人选信息有误"});
    retraction["schedule"] = json!({});
    let retraction = sign(&s, &retraction, "retract-1");
    dispatch_with(&s, &ch, "2026-12-01T23:00:00+08:00", &[&retraction]);

    // The page: withdrawn everywhere it was listed; its URL says so, with the reason.
    let page = s.read("out/site/website/wrong-1.html");
    assert!(
        page.contains("本条信息已撤回") && page.contains("拟任人选信息有误"),
        "{page}"
    );
    assert!(
        !page.contains("县财政局局长"),
        "the withdrawn content is no longer shown"
    );
    for listing in ["index.html", "archive.html", "feed.xml"] {
        let text = s.read(&format!("out/site/website/{listing}"));
        assert!(!text.contains("wrong-1.html"), "{listing}: {text}");
    }
    assert!(!s.path("out/site/website/retract-1.html").exists());
    // The SMS not yet sent is cancelled; WeChat, which reached people, carries the notice.
    let st = states(&s, "2026-12-01T23:00:00+08:00", "wrong-1");
    let sms: Vec<_> = st.iter().filter(|(c, _, _)| c == "sms").collect();
    assert!(!sms.is_empty());
    assert!(
        sms.iter()
            .all(|(_, state, code)| state == "cancelled" && code == "retracted")
            || sms
                .iter()
                .all(|(_, state, _)| state == "skipped" || state == "cancelled"),
        "{st:?}"
    );
    assert!(
        sms.iter().any(|(_, state, _)| state == "cancelled"),
        "{st:?}"
    );
    assert_eq!(
        reached(&s, "wechat", "retract-1"),
        reached(&s, "wechat", "wrong-1")
    );
    // The morning after: nothing of the original goes out, and no retraction SMS to people who
    // never got the original.
    dispatch_with(&s, &ch, "2026-12-02T08:30:00+08:00", &[&retraction]);
    assert!(sent(&s, "sms").is_empty(), "{:?}", sent(&s, "sms"));
}

/// A retraction notice template needs no page file: the page is withdrawn, not rendered.
#[test]
fn a_retraction_template_without_a_page_still_withdraws_the_page() {
    let s = Scratch::new("life-retract-nopage");
    let templates = s.path("templates");
    for entry in walk(&common::repo().join("templates")) {
        let rel = entry
            .strip_prefix(common::repo().join("templates"))
            .unwrap();
        write(
            &templates.join(rel),
            &std::fs::read_to_string(&entry).unwrap(),
        );
    }
    write(
        &templates.join("retraction_notice/sms.toml"),
        "text = \"县委组织部：此前发布的《${title}》已撤回。\"\nsign_name = \"某县组工\"\n\n[params]\ntitle = \"{{data.original_title}}\"\n\n[providers.tencent]\ntemplate_id = \"1234570\"\n\n[providers.aliyun]\ntemplate_code = \"SMS_000000004\"\n",
    );
    let mut original = release(
        "wrong-2",
        Some("2026-12-01T10:00:00+08:00"),
        "2026-12-09T18:00:00+08:00",
    );
    original["channels"] = json!(["website", "sms"]);
    original["audience"]["groups"] = json!(["subscribers"]);
    let file = sign(&s, &original, "wrong-2");
    let run = |clock: &str, job: &str| {
        let out = s
            .command(&["dispatch", "--directory", "examples/directory", job])
            .env("DISCLOSE_PATHS_TEMPLATES_DIR", &templates)
            .env("DISCLOSE_CLOCK", clock)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
        stdout(&out)
    };
    run("2026-12-01T10:00:00+08:00", &file);
    let mut retraction = original.clone();
    retraction["id"] = json!("retract-2");
    retraction["kind"] = json!("retraction");
    retraction["corrects"] = json!("wrong-2");
    retraction["template"] = json!("retraction_notice");
    retraction["data"] = json!({"original_title": original["title"], "reason": "拟任人选信息有误"});
    retraction["schedule"] = json!({});
    let retraction = sign(&s, &retraction, "retract-2");
    let out = run("2026-12-01T11:00:00+08:00", &retraction);
    let page = s.read("out/site/website/wrong-2.html");
    assert!(page.contains("本条信息已撤回"), "{out}\n{page}");
    assert_eq!(
        reached(&s, "sms", "retract-2"),
        reached(&s, "sms", "wrong-2")
    );
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// `disclose cancel` before `publish_at`: nothing of the job goes out, not even after a restart
/// past its time; the cancellation is in the audit trail with its reason, and an event says so.
#[test]
fn a_cancelled_schedule_never_goes_out_even_after_a_restart() {
    let s = Scratch::new("life-cancel");
    let job = sign(
        &s,
        &release(
            "cancel-1",
            Some("2026-12-01T09:00:00+08:00"),
            "2026-12-08T18:00:00+08:00",
        ),
        "cancel-1",
    );
    let out = dispatch(&s, "2026-11-30T10:00:00+08:00", &[&job]);
    assert!(out.contains("scheduled: goes out at"), "{out}");

    let out = ok(
        &s,
        "2026-11-30T15:00:00+08:00",
        &[
            "cancel",
            "cancel-1",
            "--reason",
            "拟任人选情况发生变化，暂缓公示",
        ],
    );
    // 4 SMS, 4 WeChat, 2 press e-mails and the page were waiting; the skipped ones stay skipped.
    assert!(
        out.contains(
            "cancel-1: cancelled 11 deliveries not yet sent (email 2, sms 4, website 1, wechat 4)"
        ),
        "{out}"
    );
    assert!(!out.contains("handed"), "{out}");

    // The next run, past publish_at: nothing goes out.
    let out = dispatch(&s, "2026-12-01T09:30:00+08:00", &[&job]);
    assert!(out.contains("duplicate"), "{out}");
    assert!(sent(&s, "sms").is_empty() && sent(&s, "wechat").is_empty());
    assert!(reached(&s, "email", "cancel-1").is_empty());
    assert!(!s.path("out/site/website/cancel-1.html").exists());
    let st = states(&s, "2026-12-01T09:30:00+08:00", "cancel-1");
    assert!(
        st.iter().all(
            |(_, state, code)| (state == "cancelled" && code == "cancelled") || state == "skipped"
        ),
        "{st:?}"
    );

    // Recorded: an audit entry with the reason and the counts, the chain intact; an event.
    let db = rusqlite::Connection::open(s.path("ledger.db")).unwrap();
    let body: String = db
        .query_row(
            "SELECT body FROM audit WHERE kind = 'job.cancelled' AND job_id = 'cancel-1'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["reason"], "拟任人选情况发生变化，暂缓公示");
    assert_eq!(body["cancelled"]["sms"], 4);
    let event: String = db
        .query_row(
            "SELECT payload FROM events WHERE name = 'job.cancelled' AND job_id = 'cancel-1'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(event.contains("暂缓公示"), "{event}");
    assert!(ok(&s, "2026-12-01T09:30:00+08:00", &["audit", "verify"]).contains("intact"));
    let v: Value = serde_json::from_str(&ok(
        &s,
        "2026-12-01T09:30:00+08:00",
        &["status", "cancel-1", "--json"],
    ))
    .unwrap();
    assert_eq!(v["job"]["status"], "cancelled", "{v:#}");

    // Cancelling again: nothing is left, and nothing more is written.
    let out = at(
        &s,
        "2026-12-01T09:31:00+08:00",
        &["cancel", "cancel-1", "--reason", "again"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("nothing left to cancel"),
        "{}",
        stderr(&out)
    );
    let entries: i64 = db
        .query_row(
            "SELECT count(*) FROM audit WHERE kind = 'job.cancelled'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(entries, 1);
}

/// What `cancel` cannot do, it says, with exit status 1: an unknown or refused job, a job that
/// has gone out (a retraction is the way, Art 17). Part gone out: the rest is cancelled.
#[test]
fn cancel_says_what_it_cannot_do() {
    let s = Scratch::new("life-cancel-limits");
    let clock = "2026-12-01T22:00:00+08:00";
    let out = at(&s, clock, &["cancel", "no-such-job", "--reason", "x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no job \"no-such-job\" in the ledger"),
        "{}",
        stderr(&out)
    );

    let refused = at(
        &s,
        clock,
        &["dispatch", "examples/refused/anonymous-complainant.json"],
    );
    assert_eq!(refused.status.code(), Some(1));
    let id = "zzb-2026-0160";
    let out = at(&s, clock, &["cancel", id, "--reason", "x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("was refused"), "{}", stderr(&out));

    // The letters went out at once: nothing to cancel; a retraction is the way.
    let out = at(
        &s,
        clock,
        &[
            "dispatch",
            "examples/jobs/03-investigation-result-letters.json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = at(&s, clock, &["cancel", "zzb-2026-0155", "--reason", "x"]);
    assert_eq!(out.status.code(), Some(1));
    let e = stderr(&out);
    assert!(
        e.contains("nothing left to cancel")
            && e.contains("delivered 2")
            && e.contains("retraction")
            && e.contains("Art 17"),
        "{e}"
    );

    // Half out: the page went up at 22:00, the SMS waits for the morning (quiet hours).
    let ch = quiet_channels(&s);
    let mut job = release(
        "half-1",
        Some("2026-12-01T22:00:00+08:00"),
        "2026-12-09T18:00:00+08:00",
    );
    job["channels"] = json!(["website", "sms"]);
    job["audience"]["groups"] = json!(["subscribers"]);
    let file = sign(&s, &job, "half-1");
    dispatch_with(&s, &ch, clock, &[&file]);
    assert!(s.path("out/site/website/half-1.html").exists());
    let out = at(
        &s,
        "2026-12-01T23:00:00+08:00",
        &["cancel", "half-1", "--reason", "发现错误"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("cancelled 4 deliveries not yet sent (sms 4)")
            && text.contains("1 had already been handed to their channels")
            && text.contains("retraction"),
        "{text}"
    );
    dispatch_with(&s, &ch, "2026-12-02T08:30:00+08:00", &[&file]);
    assert!(sent(&s, "sms").is_empty(), "{:?}", sent(&s, "sms"));

    // A reason is required, and not blank.
    let out = at(&s, clock, &["cancel", "half-1", "--reason", "  "]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--reason"), "{}", stderr(&out));
}

/// The README's walk-through ("The life of a disclosure"), run as written (its `var/` moved into
/// a scratch directory), so that the documentation cannot drift from what the binary does.
#[test]
fn the_readme_walk_through_runs_as_written() {
    let s = Scratch::new("life-readme");
    let readme = std::fs::read_to_string(common::repo().join("README.md")).unwrap();
    let section = readme
        .split("## The life of a disclosure")
        .nth(1)
        .expect("README has the section")
        .split("\n## ")
        .next()
        .unwrap();
    let script = section
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("the section has a sh block");
    let var = s.path("var");
    let script = format!(
        "disclose() {{ \"{}\" \"$@\"; }}\n{}",
        common::BIN,
        script.replace("var/", &format!("{}/", var.display()))
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(common::repo())
        .env_remove("DISCLOSE_LOG")
        .env_remove("DISCLOSE_CLOCK")
        .output()
        .unwrap();
    let (o, e) = (stdout(&out), stderr(&out));
    // The last command is the report; `obligations` before it exits 1 (overdue), as documented.
    assert!(out.status.success(), "{o}\n{e}");
    assert!(
        o.contains("zzb-2026-0150: cancelled 6 deliveries not yet sent"),
        "{o}"
    );
    assert!(
        o.contains(
            "change 2026-11-20  OVERDUE: due 2026-12-04, not disclosed 6 days later [副县长调整]"
        ),
        "{o}"
    );
    let site = var.join("life/site/website");
    let read =
        |p: PathBuf| std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    assert!(read(site.join("zzb-2026-0142.html")).contains("本条信息已撤回"));
    for listing in ["index.html", "archive.html", "feed.xml"] {
        assert!(
            !read(site.join(listing)).contains("zzb-2026-0142.html"),
            "{listing}"
        );
    }
    let report = read(var.join("life/report.html"));
    assert!(report.contains("data-verified=\"true\""), "{report}");
    assert!(
        report.contains("拟任人选另有任用，原公示撤回"),
        "the retraction's reason"
    );
    assert!(
        report.contains("职位调整，暂缓竞争上岗"),
        "the cancellation's reason"
    );
}
