//! `disclose check --json` against every rule of SPEC §2, end to end through the binary.
//!
//! Jobs are signed by `tests/support/sign_job.py`, an independent approval system in Python with
//! its own RFC 8785 canonicalisation, so an accepted job proves that both sides of the contract
//! agree, not that `disclose` agrees with itself. Each test runs in its own temporary directory
//! (ledger, trusted keys, outputs) with a small directory of groups of every kind, and asserts the
//! decision, the exact refusal codes and the article each refusal cites.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::{Value, json};

const REPO: &str = env!("CARGO_MANIFEST_DIR");
const BIN: &str = env!("CARGO_BIN_EXE_disclose");
/// The trusted approval key every test signs with unless it says otherwise.
const KEY_ID: &str = "approval-2026";

/// The recipient directory every test starts from: one group of each kind of SPEC §2.
const GROUPS: &[(&str, &str, &str)] = &[
    (
        "subscribers",
        "public",
        "id,name,phone,wechat_openid,opted_out\n\
         s001,王建国,13800138000,oWx_s001,\n\
         s002,李秀英,13900139001,,no\n\
         s003,刘洋,15800158003,oWx_s003,yes\n\
         s004,赵敏,,oWx_s004,\n",
    ),
    (
        "press",
        "public",
        "id,name,email\n\
         p001,县融媒体中心,news@rmt.example.cn\n\
         p002,市日报社驻县记者站,county@daily.example.cn\n",
    ),
    (
        "unit:czj",
        "unit",
        "id,name,email,wecom_userid,postcode,address\n\
         c001,周明,zhouming@czj.example.gov.cn,zhouming,100000,某县人民路1号县财政局\n\
         c002,吴芳,,wufang,100000,某县人民路1号县财政局\n",
    ),
    (
        "leadership",
        "leadership",
        "id,name,postcode,address\n\
         l001,孙书记,100000,某县政府路8号县委办公室\n\
         l002,钱县长,100000,某县政府路8号县政府办公室\n",
    ),
    (
        "committee",
        "committee",
        "id,name,postcode,address\nm001,冯委员,100000,某县政府路8号\n",
    ),
    (
        "tuijian-2026",
        "ad_hoc",
        "id,name,postcode,address\n\
         a001,褚代表,100000,某县某镇人民政府\n\
         a002,卫代表,100000,某县某镇人民政府\n",
    ),
];

/// One test's world: a temporary directory with `disclose.toml`, a ledger, trusted keys, the
/// signer's secret keys and outputs. Removed when dropped.
struct World {
    dir: PathBuf,
    jobs: AtomicU32,
}

impl World {
    fn new(name: &str) -> World {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "disclose-check-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(dir.join("keys")).unwrap();
        let toml_path = |p: &Path| format!("{:?}", p.display().to_string());
        let config = format!(
            "[ledger]\nurl = {}\n\n[approval]\nkeys_dir = {}\n\n[queue]\nspool_dir = {}\n\n\
             [paths]\nchannels_dir = {}\ntemplates_dir = {}\noutput_dir = {}\n",
            toml_path(&dir.join("ledger.db")),
            toml_path(&dir.join("keys")),
            toml_path(&dir.join("spool")),
            toml_path(&Path::new(REPO).join("channels")),
            toml_path(&Path::new(REPO).join("templates")),
            toml_path(&dir.join("out")),
        );
        std::fs::write(dir.join("disclose.toml"), config).unwrap();
        let world = World {
            dir,
            jobs: AtomicU32::new(0),
        };
        world.keygen(KEY_ID, &world.dir.join("keys"));
        for (group, kind, csv) in GROUPS {
            let file = world.dir.join(format!("{}.csv", group.replace(':', "-")));
            std::fs::write(&file, csv).unwrap();
            let out = world.disclose(&[
                "directory".as_ref(),
                "import".as_ref(),
                "--group".as_ref(),
                group.as_ref(),
                "--kind".as_ref(),
                kind.as_ref(),
                file.as_os_str(),
            ]);
            assert!(out.status.success(), "import {group}: {}", text(&out));
            // Every row is valid: an import that drops a field would skew the deliveries below.
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert_eq!(stdout.lines().count(), 1, "import {group}: {stdout}");
        }
        world
    }

    /// Run the binary with this world's configuration, isolated from the caller's environment.
    fn disclose(&self, args: &[&std::ffi::OsStr]) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.arg("--config")
            .arg(self.dir.join("disclose.toml"))
            .args(args)
            .current_dir(&self.dir);
        for (var, _) in std::env::vars() {
            if var.starts_with("DISCLOSE_") {
                cmd.env_remove(var);
            }
        }
        cmd.output().expect("run disclose")
    }

    /// A new key pair from the independent signer: `<pub_dir>/<id>.pub`, `signer/<id>.key`.
    fn keygen(&self, id: &str, pub_dir: &Path) -> PathBuf {
        let secret_dir = self.dir.join("signer");
        python(&[
            "keygen".as_ref(),
            "--id".as_ref(),
            id.as_ref(),
            "--pub-dir".as_ref(),
            pub_dir.as_os_str(),
            "--secret-dir".as_ref(),
            secret_dir.as_os_str(),
        ]);
        secret_dir.join(format!("{id}.key"))
    }

    /// Write bytes as a new job file.
    fn file(&self, bytes: &[u8]) -> PathBuf {
        let n = self.jobs.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.join(format!("job-{n:03}.json"));
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// Write a job unsigned.
    fn unsigned(&self, job: &Value) -> PathBuf {
        self.file(serde_json::to_string_pretty(job).unwrap().as_bytes())
    }

    /// Write a job signed by the approval system with `key` (a `.key` file), claiming `key_id`.
    fn signed_with(&self, job: &Value, key: &Path, key_id: &str) -> PathBuf {
        let path = self.unsigned(job);
        python(&[
            "sign".as_ref(),
            "--key".as_ref(),
            key.as_os_str(),
            "--key-id".as_ref(),
            key_id.as_ref(),
            path.as_os_str(),
        ]);
        path
    }

    /// Write a job signed with the trusted approval key.
    fn signed(&self, job: &Value) -> PathBuf {
        let key = self.dir.join("signer").join(format!("{KEY_ID}.key"));
        self.signed_with(job, &key, KEY_ID)
    }

    /// `disclose check --json FILES…`: one parsed object per line, and the exit code.
    fn check(&self, files: &[PathBuf]) -> (Vec<Value>, i32) {
        let mut args: Vec<&std::ffi::OsStr> = vec!["check".as_ref(), "--json".as_ref()];
        args.extend(files.iter().map(|f| f.as_os_str()));
        let out = self.disclose(&args);
        let stdout = String::from_utf8(out.stdout.clone()).expect("stdout is UTF-8");
        let verdicts: Vec<Value> = stdout
            .lines()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("{e}: not JSON: {l}\n{}", text(&out)))
            })
            .collect();
        assert_eq!(
            verdicts.len(),
            files.len(),
            "one object per job: {}",
            text(&out)
        );
        for v in &verdicts {
            for key in ["id", "decision", "refusals", "deliveries", "previews"] {
                assert!(v.get(key).is_some(), "{key} missing from {v}");
            }
        }
        (verdicts, out.status.code().expect("exit code"))
    }

    /// Check one job; it must be the only object printed.
    fn check_one(&self, file: PathBuf) -> (Value, i32) {
        let (mut v, code) = self.check(&[file]);
        (v.remove(0), code)
    }

    /// Check one job, expect it refused, and return its refusals.
    fn refused(&self, file: PathBuf) -> Vec<Value> {
        let (v, code) = self.check_one(file);
        assert_eq!(v["decision"], "refused", "{v:#}");
        assert_eq!(code, 1, "a refused job exits 1: {v:#}");
        assert_eq!(
            v["deliveries"],
            json!([]),
            "nothing is planned for a refused job"
        );
        v["refusals"].as_array().unwrap().clone()
    }

    /// Check one job, expect it accepted, and return the whole object.
    fn accepted(&self, file: PathBuf) -> Value {
        let (v, code) = self.check_one(file);
        assert_eq!(v["decision"], "accepted", "{v:#}");
        assert_eq!(v["refusals"], json!([]), "{v:#}");
        assert_eq!(code, 0, "an accepted job exits 0: {v:#}");
        v
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn python(args: &[&std::ffi::OsStr]) {
    let script = Path::new(REPO).join("tests/support/sign_job.py");
    let out = Command::new("python3")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs (the signer needs the `cryptography` package)");
    assert!(out.status.success(), "sign_job.py {args:?}: {}", text(&out));
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The refusal codes, in the order reported.
fn codes(refusals: &[Value]) -> Vec<&str> {
    refusals
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect()
}

/// Exactly one refusal with `code` citing `article`; returns its message.
fn only(refusals: &[Value], code: &str, article: &str) -> String {
    assert_eq!(codes(refusals), vec![code], "{refusals:#?}");
    assert_eq!(refusals[0]["article"], article, "{refusals:#?}");
    refusals[0]["message"].as_str().unwrap().to_string()
}

/// The planned deliveries as sorted `channel recipient` strings.
fn deliveries(v: &Value) -> Vec<String> {
    let mut d: Vec<String> = v["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            format!(
                "{} {}",
                d["channel"].as_str().unwrap(),
                d["recipient"].as_str().unwrap()
            )
        })
        .collect();
    d.sort();
    d
}

fn approval() -> Value {
    json!({"approver": "李四", "reference": "组干审〔2026〕12号",
           "approved_at": "2026-11-19T16:00:00+08:00", "key_id": KEY_ID, "signature": ""})
}

/// SPEC §1 flow 1: the spokesperson office's pre-appointment notice (Art 6(3)) to the public
/// website, WeChat, SMS subscribers and the press list; Mon 7 – Mon 14 December 2026, six
/// working days.
fn release() -> Value {
    json!({
        "id": "zzb-2026-0142",
        "kind": "release",
        "category": "6.3",
        "scope": "public",
        "classification": "none",
        "title": "关于张三同志任职前公示的公告",
        "template": "pre_appointment_notice",
        "data": {
            "candidates": [{"name": "张三", "current_post": "县财政局副局长", "proposed_post": "县财政局局长"}],
            "report_phone": "0000-12380",
            "report_address": "县委组织部干部监督室（县政府路8号）"
        },
        "channels": ["website", "wechat", "sms", "email"],
        "audience": {"groups": ["subscribers", "press"], "recipients": []},
        "schedule": {"publish_at": "2026-12-07T09:00:00+08:00", "expires_at": "2026-12-14T18:00:00+08:00"},
        "approval": approval()
    })
}

/// SPEC §1 flow 2: an internal notice scheduled for a unit's staff (Art 7(1)).
fn unit_notice() -> Value {
    json!({
        "id": "zzb-2026-0150",
        "kind": "notice",
        "category": "7.1",
        "scope": "unit",
        "classification": "internal",
        "title": "关于县财政局副局长职位竞争上岗的通知",
        "template": "general",
        "data": {"body": "经研究，县财政局拟通过竞争上岗方式选拔副局长1名。\n报名时间：2026年12月7日至12月11日。"},
        "channels": ["intranet", "email", "wecom"],
        "audience": {"groups": ["unit:czj"], "recipients": []},
        "schedule": {"publish_at": "2026-12-07T09:00:00+08:00", "expires_at": "2026-12-11T18:00:00+08:00"},
        "approval": approval()
    })
}

/// SPEC §1 flow 3: the result of investigating a signed report (Art 9(5)), by letter to the
/// reported person and the complainant.
fn letters() -> Value {
    json!({
        "id": "zzb-2026-0155",
        "kind": "notice",
        "category": "9.5",
        "scope": "specific",
        "classification": "none",
        "title": "关于信访举报问题调查结果的告知",
        "template": "investigation_result",
        "data": {
            "case_no": "组信〔2026〕9号",
            "summary": "反映某镇在2026年6月干部选拔中存在违规推荐问题。",
            "conclusion": "经调查，所反映的违规推荐问题不属实。"
        },
        "channels": ["letter"],
        "audience": {"groups": [], "recipients": [
            {"id": "r-0001", "name": "王五", "role": "reported",
             "address": {"postcode": "100000", "lines": ["某县某镇人民政府"]}},
            {"id": "c-0001", "name": "赵六", "role": "complainant",
             "address": {"postcode": "100001", "lines": ["某县城关镇幸福路12号"]}}
        ]},
        "complaint": {"signed": true, "case_no": "组信〔2026〕9号"},
        "approval": approval()
    })
}

/// A plain `general` notice of `category` in `scope` on `channels` to `groups`.
fn general(category: &str, scope: &str, channels: &[&str], groups: &[&str]) -> Value {
    json!({
        "id": format!("zzb-2026-{}", category.replace('.', "")),
        "kind": "notice",
        "category": category,
        "scope": scope,
        "classification": "none",
        "title": "关于干部工作有关事项的通知",
        "template": "general",
        "data": {"body": "现将有关事项通知如下。"},
        "channels": channels,
        "audience": {"groups": groups, "recipients": []},
        "approval": approval()
    })
}

// ---- SPEC §1: the three flows are accepted ----------------------------------------------------

#[test]
fn the_three_flows_are_accepted_with_their_deliveries_and_previews() {
    let w = World::new("flows");
    let files = vec![
        w.signed(&release()),
        w.signed(&unit_notice()),
        w.signed(&letters()),
    ];
    let (v, code) = w.check(&files);
    assert_eq!(code, 0, "all accepted: {v:#?}");
    for v in &v {
        assert_eq!(v["decision"], "accepted", "{v:#}");
        assert_eq!(v["refusals"], json!([]));
    }

    // Flow 1: one page on the website; WeChat and SMS to subscribers who can receive them and
    // have not opted out (s003 has); e-mail to the press list.
    assert_eq!(v[0]["id"], "zzb-2026-0142");
    assert_eq!(
        deliveries(&v[0]),
        vec![
            "email p001",
            "email p002",
            "sms s001",
            "sms s002",
            "website page",
            "wechat s001",
            "wechat s004",
        ]
    );
    let previews = v[0]["previews"].as_object().unwrap();
    let mut channels: Vec<&str> = previews.keys().map(String::as_str).collect();
    channels.sort();
    assert_eq!(channels, ["email", "sms", "website", "wechat"]);
    let sms = previews["sms"].as_str().unwrap();
    assert!(sms.contains("关于张三同志任职前公示的公告"), "{sms}");
    assert!(
        sms.contains("segments"),
        "the SMS preview gives its segment count: {sms}"
    );
    assert!(
        previews["website"].as_str().unwrap().contains("张三"),
        "{previews:#?}"
    );

    // Flow 2: the unit's staff on the intranet, e-mail and WeCom.
    assert_eq!(
        deliveries(&v[1]),
        vec!["email c001", "intranet page", "wecom c001", "wecom c002"]
    );
    let previews = v[1]["previews"].as_object().unwrap();
    let mut channels: Vec<&str> = previews.keys().map(String::as_str).collect();
    channels.sort();
    assert_eq!(channels, ["email", "intranet", "wecom"]);
    assert!(
        previews["intranet"].as_str().unwrap().contains("竞争上岗"),
        "{previews:#?}"
    );

    // Flow 3: a letter each to the reported person and the complainant of a signed report.
    assert_eq!(deliveries(&v[2]), vec!["letter c-0001", "letter r-0001"]);
    let letter = v[2]["previews"]["letter"].as_str().unwrap();
    assert!(letter.contains("不属实"), "{letter}");
}

#[test]
fn a_job_signed_by_disclose_sign_is_accepted_and_both_signers_agree() {
    let w = World::new("disclose-sign");
    // `disclose keys new` puts the key pair straight into the trusted keys directory.
    let out = w.disclose(&[
        "keys".as_ref(),
        "new".as_ref(),
        "--id".as_ref(),
        "desk-2026".as_ref(),
        "--dir".as_ref(),
        w.dir.join("keys").as_os_str(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let key = w.dir.join("keys/desk-2026.key");
    let unsigned = w.unsigned(&release());
    let out = w.disclose(&[
        "sign".as_ref(),
        "--key".as_ref(),
        key.as_os_str(),
        unsigned.as_os_str(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let by_disclose = w.file(&out.stdout);
    let v = w.accepted(by_disclose.clone());
    assert_eq!(v["id"], "zzb-2026-0142");

    // Ed25519 is deterministic: the Python signer with the same key must produce the very same
    // signature, which it can only do if both canonicalise the job byte for byte alike.
    let by_python = w.signed_with(&release(), &key, "desk-2026");
    let sig = |p: &Path| -> Value {
        let v: Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
        v["approval"]["signature"].clone()
    };
    assert_eq!(sig(&by_disclose), sig(&by_python));
    assert!(sig(&by_python).as_str().is_some_and(|s| s.len() == 88));
}

#[test]
fn exit_code_is_1_when_any_job_is_refused() {
    let w = World::new("exit-code");
    let mut bad = release();
    bad["classification"] = json!("internal");
    bad["id"] = json!("zzb-2026-0143");
    let (v, code) = w.check(&[w.signed(&release()), w.signed(&bad)]);
    assert_eq!(code, 1, "{v:#?}");
    assert_eq!(v[0]["decision"], "accepted");
    assert_eq!(v[1]["decision"], "refused");
    let (_, code) = w.check(&[w.signed(&release())]);
    assert_eq!(code, 0);
}

// ---- malformed ---------------------------------------------------------------------------------

/// A malformed job is still answered: one object, refused, code `malformed`, no article.
fn malformed(w: &World, bytes: &[u8]) -> (Value, String) {
    let (v, code) = w.check_one(w.file(bytes));
    assert_eq!(v["decision"], "refused", "{v:#}");
    assert_eq!(code, 1);
    let message = only(v["refusals"].as_array().unwrap(), "malformed", "–");
    (v, message)
}

#[test]
fn malformed_not_json_at_all_is_still_answered() {
    let w = World::new("not-json");
    let (v, message) = malformed(&w, b"this is not a job\n");
    assert_eq!(v["id"], Value::Null);
    assert_eq!(v["deliveries"], json!([]));
    assert_eq!(v["previews"], json!({}));
    assert!(message.contains("not valid JSON"), "{message}");
    // An empty file and a JSON value that is not an object are refused the same way.
    malformed(&w, b"");
    let (_, message) = malformed(&w, b"[1, 2]");
    assert!(message.contains("object"), "{message}");
}

#[test]
fn malformed_unknown_field_names_its_path() {
    let w = World::new("unknown-field");
    let mut job = release();
    job["audience"]["recipients"] =
        json!([{"id": "x1", "name": "王五", "role": "member", "fax": "0000"}]);
    let (v, message) = malformed(&w, serde_json::to_string(&job).unwrap().as_bytes());
    assert_eq!(v["id"], "zzb-2026-0142", "the id is still reported");
    assert!(message.starts_with("audience.recipients[0]"), "{message}");
    assert!(message.contains("fax"), "{message}");

    let mut job = release();
    job["approval"]["comment"] = json!("ok");
    let (_, message) = malformed(&w, serde_json::to_string(&job).unwrap().as_bytes());
    assert!(
        message.starts_with("approval") && message.contains("comment"),
        "{message}"
    );
}

#[test]
fn malformed_wrong_type_names_its_path() {
    let w = World::new("wrong-type");
    let mut job = letters();
    job["complaint"]["signed"] = json!("yes");
    let (_, message) = malformed(&w, serde_json::to_string(&job).unwrap().as_bytes());
    assert!(message.starts_with("complaint.signed"), "{message}");
    let mut job = release();
    job["channels"] = json!("website");
    let (_, message) = malformed(&w, serde_json::to_string(&job).unwrap().as_bytes());
    assert!(message.starts_with("channels"), "{message}");
    let mut job = release();
    job["channels"][1] = json!("fax");
    let (_, message) = malformed(&w, serde_json::to_string(&job).unwrap().as_bytes());
    assert!(message.starts_with("channels[1]"), "{message}");
}

#[test]
fn malformed_over_one_mib() {
    let w = World::new("too-large");
    let mut job = unit_notice();
    job["data"]["body"] = json!("字".repeat(400_000)); // 1.2 MB of UTF-8
    let (_, message) = malformed(&w, serde_json::to_string(&job).unwrap().as_bytes());
    assert!(message.contains("1 MiB"), "{message}");
    // Just under the limit is not refused for its size.
    let mut job = unit_notice();
    job["data"]["body"] = json!("x".repeat(1_000_000));
    let v = w.accepted(w.signed(&job));
    assert_eq!(v["id"], "zzb-2026-0150");
}

#[test]
fn malformed_invalid_utf8() {
    let w = World::new("utf8");
    let mut bytes = serde_json::to_vec(&release()).unwrap();
    let at = bytes.windows(3).position(|s| s == "关".as_bytes()).unwrap();
    bytes[at] = 0xff;
    let (_, message) = malformed(&w, &bytes);
    assert!(message.contains("UTF-8"), "{message}");
}

#[test]
fn malformed_duplicate_keys() {
    let w = World::new("duplicate-keys");
    // Two readers could see two different jobs behind one signature (I-JSON, RFC 8785).
    let text = serde_json::to_string(&release()).unwrap();
    let text = text.replacen(
        r#""scope":"public""#,
        r#""scope":"specific","scope":"public""#,
        1,
    );
    assert!(text.contains(r#""scope":"specific","scope":"public""#));
    let (_, message) = malformed(&w, text.as_bytes());
    assert!(
        message.contains("duplicate") && message.contains("scope"),
        "{message}"
    );
}

#[test]
fn malformed_date_without_zone() {
    let w = World::new("date-zone");
    let mut job = release();
    job["schedule"]["publish_at"] = json!("2026-12-07T09:00:00");
    let (_, message) = malformed(&w, serde_json::to_string(&job).unwrap().as_bytes());
    assert!(message.starts_with("schedule.publish_at"), "{message}");
}

#[test]
fn malformed_date_without_zone_says_what_is_missing() {
    let w = World::new("date-zone-message");
    let mut job = release();
    job["schedule"]["publish_at"] = json!("2026-12-07T09:00:00");
    let (_, message) = malformed(&w, serde_json::to_string(&job).unwrap().as_bytes());
    assert!(
        message.contains("offset") || message.contains("zone"),
        "a human sentence, not the parser's: {message}"
    );
}

// ---- unapproved --------------------------------------------------------------------------------

#[test]
fn unapproved_without_signature() {
    let w = World::new("no-signature");
    let mut job = release();
    job["approval"].as_object_mut().unwrap().remove("signature");
    let message = only(&w.refused(w.unsigned(&job)), "unapproved", "–");
    assert!(message.contains("missing"), "{message}");
    // An empty signature is no signature.
    let message = only(&w.refused(w.unsigned(&release())), "unapproved", "–");
    assert!(message.contains("missing"), "{message}");
}

#[test]
fn unapproved_when_tampered_after_signing() {
    let w = World::new("tampered");
    let file = w.signed(&release());
    let mut job: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    job["audience"]["groups"] = json!(["subscribers"]);
    std::fs::write(&file, serde_json::to_vec(&job).unwrap()).unwrap();
    let message = only(&w.refused(file), "unapproved", "–");
    assert!(message.contains("does not verify"), "{message}");
}

#[test]
fn unapproved_unknown_key_id() {
    let w = World::new("unknown-key");
    // A well-formed signature by a key the deployment does not know at all.
    let key = w.keygen("rogue-2026", &w.dir.join("elsewhere"));
    let message = only(
        &w.refused(w.signed_with(&release(), &key, "rogue-2026")),
        "unapproved",
        "–",
    );
    assert!(
        message.contains("rogue-2026") && message.contains("not a trusted key"),
        "{message}"
    );
}

#[test]
fn unapproved_signed_with_an_untrusted_key() {
    let w = World::new("untrusted-key");
    // Another key claiming to be the trusted one.
    let impostor = w.keygen("impostor", &w.dir.join("elsewhere"));
    let message = only(
        &w.refused(w.signed_with(&release(), &impostor, KEY_ID)),
        "unapproved",
        "–",
    );
    assert!(message.contains("does not verify"), "{message}");
}

// ---- Art 4: classified -------------------------------------------------------------------------

#[test]
fn classified_needs_declassification() {
    let w = World::new("classified");
    let mut job = unit_notice();
    job["classification"] = json!("secret");
    let message = only(&w.refused(w.signed(&job)), "classified", "Art 4");
    assert!(
        message.contains("secret") && message.contains("declassification"),
        "{message}"
    );
    for level in ["confidential", "top_secret"] {
        job["classification"] = json!(level);
        only(&w.refused(w.signed(&job)), "classified", "Art 4");
    }
    // With the competent authority's consent it may be disclosed.
    job["classification"] = json!("secret");
    job["declassification"] = json!({"authority": "县保密局", "reference": "县保密〔2026〕3号",
                                     "approved_at": "2026-11-18T10:00:00+08:00"});
    w.accepted(w.signed(&job));
}

// ---- Art 3: internal_to_public -----------------------------------------------------------------

#[test]
fn internal_never_goes_public() {
    let w = World::new("internal");
    let mut job = release();
    job["classification"] = json!("internal");
    let message = only(&w.refused(w.signed(&job)), "internal_to_public", "Art 3");
    assert!(
        message.contains("internal") && message.contains("public"),
        "{message}"
    );
    // The same job is fine within the unit (flow 2 is internal, unit scope).
    w.accepted(w.signed(&unit_notice()));
}

// ---- Art 6–9, 17: scope_exceeds_category -------------------------------------------------------

#[test]
fn scope_exceeds_category_unit_matter_to_public() {
    let w = World::new("scope-7-public");
    let job = general("7.1", "public", &["website"], &["subscribers"]);
    let message = only(
        &w.refused(w.signed(&job)),
        "scope_exceeds_category",
        "Art 6–9, 17",
    );
    assert!(
        message.contains("7.1") && message.contains("public"),
        "{message}"
    );
}

#[test]
fn scope_exceeds_category_leadership_matter_to_unit() {
    let w = World::new("scope-8-unit");
    let job = general("8.1", "unit", &["intranet"], &["unit:czj"]);
    let message = only(
        &w.refused(w.signed(&job)),
        "scope_exceeds_category",
        "Art 6–9, 17",
    );
    assert!(
        message.contains("8.1") && message.contains("unit"),
        "{message}"
    );
    // Narrower than its own scope is fine: 7.x to the leadership.
    w.accepted(w.signed(&general("7.2", "leadership", &["letter"], &["leadership"])));
}

#[test]
fn scope_exceeds_category_specific_matter_to_public() {
    let w = World::new("scope-9-public");
    let job = general("9.1", "public", &["website"], &["subscribers"]);
    let message = only(
        &w.refused(w.signed(&job)),
        "scope_exceeds_category",
        "Art 6–9, 17",
    );
    assert!(
        message.contains("9.1") && message.contains("specific"),
        "{message}"
    );
}

// ---- Art 10–13: channel_not_allowed ------------------------------------------------------------

#[test]
fn channel_not_allowed_sms_in_unit_scope() {
    let w = World::new("sms-unit");
    let mut job = unit_notice();
    job["channels"] = json!(["intranet", "sms"]);
    let message = only(&w.refused(w.signed(&job)), "channel_not_allowed", "Art 11");
    assert!(
        message.contains("sms") && message.contains("unit"),
        "{message}"
    );
}

#[test]
fn channel_not_allowed_website_for_leadership() {
    let w = World::new("website-leadership");
    let job = general("8.1", "leadership", &["letter", "website"], &["leadership"]);
    let message = only(&w.refused(w.signed(&job)), "channel_not_allowed", "Art 12");
    assert!(
        message.contains("website") && message.contains("leadership"),
        "{message}"
    );
    // In writing it is fine: one letter to each member of the roster.
    let v = w.accepted(w.signed(&general("8.1", "leadership", &["letter"], &["leadership"])));
    assert_eq!(deliveries(&v), vec!["letter l001", "letter l002"]);
}

// ---- Art 8–9, 17: audience_outside_scope -------------------------------------------------------

#[test]
fn audience_outside_scope_public_group_in_specific_scope() {
    let w = World::new("public-in-specific");
    let job = general(
        "9.2",
        "specific",
        &["letter"],
        &["tuijian-2026", "subscribers"],
    );
    let message = only(
        &w.refused(w.signed(&job)),
        "audience_outside_scope",
        "Art 8–9, 17",
    );
    assert!(
        message.contains("\"subscribers\"") && message.contains("public"),
        "{message}"
    );
    // The recommendation meeting's participants alone are its specific range.
    let v = w.accepted(w.signed(&general("9.2", "specific", &["letter"], &["tuijian-2026"])));
    assert_eq!(deliveries(&v), vec!["letter a001", "letter a002"]);
}

#[test]
fn audience_outside_scope_unit_group_in_public_scope() {
    let w = World::new("unit-in-public");
    let job = general(
        "6.1",
        "public",
        &["website", "sms"],
        &["subscribers", "unit:czj"],
    );
    let message = only(
        &w.refused(w.signed(&job)),
        "audience_outside_scope",
        "Art 8–9, 17",
    );
    assert!(
        message.contains("\"unit:czj\"") && message.contains("unit group"),
        "{message}"
    );
}

#[test]
fn audience_outside_scope_named_recipient_not_on_the_roster() {
    let w = World::new("not-on-roster");
    let mut job = general("8.2", "leadership", &["letter"], &[]);
    let person = |id: &str| {
        json!({"id": id, "name": "某某", "role": "member",
               "address": {"postcode": "100000", "lines": ["某县政府路8号"]}})
    };
    job["audience"]["recipients"] = json!([person("l001"), person("c001")]);
    let message = only(
        &w.refused(w.signed(&job)),
        "audience_outside_scope",
        "Art 8–9, 17",
    );
    assert!(
        message.contains("\"c001\"") && message.contains("roster"),
        "{message}"
    );
    // The roster member alone is fine.
    job["audience"]["recipients"] = json!([person("l001")]);
    let v = w.accepted(w.signed(&job));
    assert_eq!(deliveries(&v), vec!["letter l001"]);
}

#[test]
fn audience_outside_scope_group_that_does_not_exist() {
    let w = World::new("no-such-group");
    let job = general("7.1", "unit", &["intranet"], &["unit:czj", "unit:nosuch"]);
    let message = only(
        &w.refused(w.signed(&job)),
        "audience_outside_scope",
        "Art 8–9, 17",
    );
    assert!(
        message.contains("\"unit:nosuch\"") && message.contains("does not exist"),
        "{message}"
    );
}

// ---- Art 9(5): complainant_not_signed ----------------------------------------------------------

#[test]
fn complainant_of_an_unsigned_report_is_refused() {
    let w = World::new("unsigned-report");
    let mut job = letters();
    job["complaint"]["signed"] = json!(false);
    let message = only(
        &w.refused(w.signed(&job)),
        "complainant_not_signed",
        "Art 9(5)",
    );
    assert!(
        message.contains("\"c-0001\"") && message.contains("signed"),
        "{message}"
    );
    // The reported person alone still learns the result.
    job["audience"]["recipients"].as_array_mut().unwrap().pop();
    let v = w.accepted(w.signed(&job));
    assert_eq!(deliveries(&v), vec!["letter r-0001"]);
}

// ---- Art 6–9 (7th item): justification_required ------------------------------------------------

#[test]
fn catch_all_category_needs_a_justification() {
    let w = World::new("justification");
    let mut job = general("6.7", "public", &["website", "wechat"], &["subscribers"]);
    let message = only(
        &w.refused(w.signed(&job)),
        "justification_required",
        "Art 6–9 (7th item)",
    );
    assert!(
        message.contains("6.7") && message.contains("justification"),
        "{message}"
    );
    job["justification"] = json!("   ");
    only(
        &w.refused(w.signed(&job)),
        "justification_required",
        "Art 6–9 (7th item)",
    );
    job["justification"] = json!("县委决定向社会通报干部队伍建设有关情况");
    let v = w.accepted(w.signed(&job));
    assert_eq!(
        deliveries(&v),
        vec!["website page", "wechat s001", "wechat s004"]
    );
}

// ---- Art 3 (accuracy): template_error ----------------------------------------------------------

#[test]
fn template_error_unknown_template() {
    let w = World::new("unknown-template");
    let mut job = unit_notice();
    job["template"] = json!("no_such_notice");
    let message = only(&w.refused(w.signed(&job)), "template_error", "Art 3");
    assert!(message.contains("no_such_notice"), "{message}");
}

#[test]
fn template_error_missing_variable_is_named() {
    let w = World::new("missing-variable");
    let mut job = release();
    job["data"].as_object_mut().unwrap().remove("report_phone");
    let refusals = w.refused(w.signed(&job));
    assert!(!refusals.is_empty());
    for r in &refusals {
        assert_eq!(
            (r["code"].as_str(), r["article"].as_str()),
            (Some("template_error"), Some("Art 3")),
            "{r}"
        );
    }
    assert!(
        refusals.iter().any(|r| r["message"]
            .as_str()
            .unwrap()
            .contains("`data.report_phone` is missing")),
        "{refusals:#?}"
    );
}

// ---- Art 3 (timely): schedule_invalid ----------------------------------------------------------

#[test]
fn schedule_invalid_expires_before_publish() {
    let w = World::new("expires-first");
    let mut job = unit_notice();
    job["schedule"] = json!({"publish_at": "2026-12-07T09:00:00+08:00", "expires_at": "2026-12-06T18:00:00+08:00"});
    let message = only(&w.refused(w.signed(&job)), "schedule_invalid", "Art 3");
    assert!(
        message.contains("expires_at") && message.contains("publish_at"),
        "{message}"
    );
}

#[test]
fn schedule_invalid_pre_appointment_publicity_of_four_working_days() {
    let w = World::new("four-days");
    let mut job = release();
    // Mon 7 – Thu 10 December 2026.
    job["schedule"]["expires_at"] = json!("2026-12-10T18:00:00+08:00");
    let message = only(&w.refused(w.signed(&job)), "schedule_invalid", "Art 3");
    assert!(
        message.contains("4 working days") && message.contains("at least 5"),
        "{message}"
    );
    // Mon 7 – Fri 11 December is five: enough.
    job["schedule"]["expires_at"] = json!("2026-12-11T18:00:00+08:00");
    w.accepted(w.signed(&job));
}

#[test]
fn schedule_invalid_pre_appointment_publicity_over_national_day() {
    let w = World::new("national-day");
    let mut job = release();
    // Wed 30 September – Thu 8 October 2026: seven weekdays, but 1–7 October is the National Day
    // holiday, so two working days (30 September and 8 October).
    job["schedule"] = json!({"publish_at": "2026-09-30T09:00:00+08:00", "expires_at": "2026-10-08T18:00:00+08:00"});
    let message = only(&w.refused(w.signed(&job)), "schedule_invalid", "Art 3");
    assert!(
        message.contains("2026-09-30 to 2026-10-08") && message.contains("2 working days"),
        "{message}"
    );
    // Through Mon 12 October: 30 Sep, 8, 9, 10 (a Saturday worked in lieu) and 12 October.
    job["schedule"]["expires_at"] = json!("2026-10-12T18:00:00+08:00");
    w.accepted(w.signed(&job));
}

#[test]
fn schedule_invalid_in_a_year_without_calendar_data() {
    let w = World::new("year-2027");
    let mut job = release();
    job["schedule"] = json!({"publish_at": "2027-03-01T09:00:00+08:00", "expires_at": "2027-03-12T18:00:00+08:00"});
    let message = only(&w.refused(w.signed(&job)), "schedule_invalid", "Art 3");
    assert!(
        message.contains("no working-day calendar for 2027") && message.contains("[calendar]"),
        "{message}"
    );
}

// ---- Art 17: unknown_target --------------------------------------------------------------------

#[test]
fn unknown_target_correction_of_a_job_never_seen() {
    let w = World::new("unknown-target");
    let mut job = release();
    job["id"] = json!("zzb-2026-0170");
    job["kind"] = json!("correction");
    job["category"] = json!("6.1");
    job["corrects"] = json!("zzb-2026-0999");
    job["template"] = json!("correction_notice");
    job["data"] = json!({"original_title": "关于张三同志任职前公示的公告", "correction": "张三同志现任职务应为县财政局副局长。"});
    let message = only(&w.refused(w.signed(&job)), "unknown_target", "Art 17");
    assert!(message.contains("zzb-2026-0999"), "{message}");
    job["kind"] = json!("retraction");
    let message = only(&w.refused(w.signed(&job)), "unknown_target", "Art 17");
    assert!(
        message.contains("zzb-2026-0999") && message.contains("retraction"),
        "{message}"
    );
}

// ---- every reason at once ----------------------------------------------------------------------

#[test]
fn independent_violations_are_reported_together() {
    let w = World::new("all-at-once");
    // An anonymous report's result, marked internal, sent to the public by letter and SMS with
    // the complainant named, on a template without an SMS text, and not signed.
    let mut job = letters();
    job["scope"] = json!("public");
    job["classification"] = json!("internal");
    job["channels"] = json!(["letter", "sms"]);
    job["audience"]["groups"] = json!(["subscribers"]);
    job["audience"]["recipients"] =
        json!([{"id": "c-0002", "name": "某某", "role": "complainant"}]);
    job["complaint"]["signed"] = json!(false);
    let refusals = w.refused(w.unsigned(&job));
    let mut got = codes(&refusals);
    got.sort();
    assert_eq!(
        got,
        vec![
            "audience_outside_scope", // a named recipient in the public scope
            "channel_not_allowed",    // letter in the public scope
            "complainant_not_signed",
            "internal_to_public",
            "scope_exceeds_category", // 9.5 to the public
            "template_error",         // investigation_result has no SMS text
            "unapproved",
        ],
        "{refusals:#?}"
    );
    for r in &refusals {
        let expected = match r["code"].as_str().unwrap() {
            "unapproved" => "–",
            "internal_to_public" | "template_error" => "Art 3",
            "scope_exceeds_category" => "Art 6–9, 17",
            "channel_not_allowed" => "Art 10",
            "audience_outside_scope" => "Art 8–9, 17",
            "complainant_not_signed" => "Art 9(5)",
            other => panic!("unexpected {other}"),
        };
        assert_eq!(r["article"], expected, "{r}");
    }
}

// ---- a job id seen before ----------------------------------------------------------------------

#[test]
fn a_dispatched_job_is_a_duplicate_when_checked_again() {
    let w = World::new("duplicate");
    // No publish_at: the letters go out at once, so dispatch finishes.
    let file = w.signed(&letters());
    let out = w.disclose(&["dispatch".as_ref(), file.as_os_str()]);
    assert!(out.status.success(), "{}", text(&out));
    let (v, code) = w.check_one(file);
    assert_eq!(v["decision"], "duplicate", "{v:#}");
    assert_eq!(v["id"], "zzb-2026-0155");
    assert_eq!(v["refusals"], json!([]));
    assert_eq!(v["deliveries"], json!([]), "nothing is planned again");
    assert_eq!(code, 0, "a duplicate is not a refusal");
}

#[test]
fn a_correction_of_a_delivered_job_goes_to_those_it_reached() {
    // The counterpart of `unknown_target`: once the original is delivered, its correction is
    // accepted and planned for exactly the original's recipients (Art 17).
    let w = World::new("known-target");
    let original = w.signed(&letters());
    let out = w.disclose(&["dispatch".as_ref(), original.as_os_str()]);
    assert!(out.status.success(), "{}", text(&out));
    let mut job = letters();
    job["id"] = json!("zzb-2026-0156");
    job["kind"] = json!("correction");
    job["corrects"] = json!("zzb-2026-0155");
    let v = w.accepted(w.signed(&job));
    assert_eq!(deliveries(&v), vec!["letter c-0001", "letter r-0001"]);
}
