//! E-mail over SMTP against a real server: aiosmtpd (Debian's python3-aiosmtpd) on 127.0.0.1,
//! started by each test on a free port and writing a Maildir in the test's temp directory. The
//! messages are read back with Python's own MIME parser (tests/support/read_mail.py), so what is
//! checked is what a mail client would see: headers, the decoded Chinese subject and text, both
//! parts, the attachment. The server answers by recipient (tests/support/smtp_server.py):
//! `reject…` gets 550, `tempfail…` 451 once, `slow…` an answer after the client's timeout.
//!
//! Flows 1 and 2 of SPEC §1 run end to end through `disclose dispatch` with the e-mail channel
//! pointing at the server.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::DateTime;
use common::{Scratch, repo, stdout, write};
use disclose::channels::email::{Smtp, SmtpConfig};
use disclose::channels::{Batch, Channel, Item, Outcome};
use disclose::job::{ChannelKind, Job};
use disclose::render::{RecipientView, Rendered, Templates};
use serde_json::Value;

const PYTHON: &str = "/usr/bin/python3";

/// aiosmtpd on a free port, writing `<dir>/Maildir`; stopped when dropped.
struct Server {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Server {
    fn start(dir: &Path) -> Server {
        Server::start_with(dir, &[])
    }

    /// `args`: `starttls|implicit CERT KEY [USER PASS]` (see smtp_server.py).
    fn start_with(dir: &Path, args: &[&str]) -> Server {
        let ok = Command::new(PYTHON)
            .args(["-c", "import aiosmtpd"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "{PYTHON} cannot import aiosmtpd: install python3-aiosmtpd (apt-get install python3-aiosmtpd; .ci/run does this)"
        );
        std::fs::create_dir_all(dir).unwrap();
        let mut child = Command::new(PYTHON)
            .arg(repo().join("tests/support/smtp_server.py"))
            .arg(dir.join("Maildir"))
            .args(args)
            .stdin(Stdio::piped())
            // The server's own log (sessions refused on purpose print tracebacks).
            .stderr(std::fs::File::create(dir.join("server.log")).unwrap())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .strip_prefix("READY ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("the SMTP server did not start: {line:?}"));
        Server {
            child,
            port,
            dir: dir.to_path_buf(),
        }
    }

    /// Every message in the Maildir, decoded; attachments saved under `<dir>/attachments`.
    fn messages(&self) -> Vec<Value> {
        let out = Command::new(PYTHON)
            .arg(repo().join("tests/support/read_mail.py"))
            .arg(self.dir.join("Maildir"))
            .arg(self.dir.join("attachments"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Accepted recipients, counted (each DATA that reached the server).
    fn accepted(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        if let Ok(t) = std::fs::read_to_string(self.dir.join("rcpt.log")) {
            for l in t.lines() {
                *m.entry(l.to_string()).or_default() += 1;
            }
        }
        m
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config(port: u16, extra: &str) -> SmtpConfig {
    let timeout = if extra.contains("timeout_secs") {
        ""
    } else {
        "timeout_secs = 5\n"
    };
    let tls = if extra.contains("tls =") {
        ""
    } else {
        "tls = \"none\"\n"
    };
    let cfg: SmtpConfig = toml::from_str(&format!(
        "host = \"127.0.0.1\"\nport = {port}\n{tls}from = \"中共示例县委组织部 <noreply@zzb.example.gov.cn>\"\nlist_unsubscribe = \"<mailto:unsubscribe@zzb.example.gov.cn?subject=unsubscribe>\"\n{timeout}{extra}"
    ))
    .unwrap();
    assert!(
        cfg.validate(ChannelKind::Email).is_empty(),
        "{:?}",
        cfg.validate(ChannelKind::Email)
    );
    cfg
}

fn job(file: &str) -> Job {
    let text = std::fs::read_to_string(repo().join("examples/jobs").join(file)).unwrap();
    disclose::job::parse(text.as_bytes()).unwrap().job
}

fn email(templates: &Templates, job: &Job, id: &str, name: &str) -> Arc<Rendered> {
    let who = RecipientView {
        id: id.into(),
        name: name.into(),
        role: "member".into(),
    };
    Arc::new(
        templates
            .render(job, ChannelKind::Email, Some(&who))
            .unwrap(),
    )
}

fn item(n: i64, id: &str, name: &str, address: &str, content: Arc<Rendered>) -> Item {
    Item {
        delivery_id: n,
        recipient: id.into(),
        name: name.into(),
        role: "member".into(),
        address: Some(address.into()),
        attempt: 1,
        content,
    }
}

fn batch(job: Job, items: Vec<Item>) -> Batch {
    Batch {
        job: Arc::new(job),
        channel: ChannelKind::Email,
        items,
        now: DateTime::parse_from_rfc3339("2026-11-26T10:00:00+08:00").unwrap(),
    }
}

/// One runtime per test: the transport's pooled connections belong to the runtime they were
/// opened in.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn part<'a>(m: &'a Value, ty: &str) -> &'a Value {
    m["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["type"] == ty)
        .unwrap_or_else(|| panic!("no {ty} part in {m}"))
}

#[test]
fn messages_read_back_with_chinese_subject_both_parts_and_stable_ids() {
    let rt = runtime();
    let s = Scratch::new("smtp-read");
    let server = Server::start(&s.path("smtp"));
    let ch = Smtp::open(&config(server.port, "")).unwrap();
    let t = Templates::load(&repo().join("templates")).unwrap();
    let j = job("01-pre-appointment-release.json");
    let items = vec![
        item(
            1,
            "p001",
            "县融媒体中心",
            "news@rmt.example.cn",
            email(&t, &j, "p001", "县融媒体中心"),
        ),
        item(
            2,
            "p002",
            "市日报社驻县记者站",
            "county@daily.example.cn",
            email(&t, &j, "p002", "市日报社驻县记者站"),
        ),
    ];
    let out = rt.block_on(ch.deliver(&batch(j.clone(), items)));
    let ids: Vec<String> = out
        .iter()
        .map(|o| match o {
            Outcome::Delivered { reference: Some(r) } => r.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(ids[0], ch.message_id("zzb-2026-0142", "p001"));
    assert!(ids[0].starts_with("<zzb-2026-0142.") && ids[0].ends_with("@zzb.example.gov.cn>"));

    let msgs = server.messages();
    assert_eq!(msgs.len(), 2);
    let m = msgs
        .iter()
        .find(|m| m["to"].as_str().unwrap().contains("news@rmt.example.cn"))
        .unwrap();
    assert_eq!(m["subject"], "关于张三同志任职前公示的公告");
    // On the wire the subject is an RFC 2047 encoded word, not raw UTF-8.
    let raw = m["raw_subject"].as_str().unwrap();
    assert!(
        raw.is_ascii() && raw.to_ascii_lowercase().contains("=?utf-8?"),
        "{raw}"
    );
    assert_eq!(m["to"], "县融媒体中心 <news@rmt.example.cn>");
    assert_eq!(m["from"], "中共示例县委组织部 <noreply@zzb.example.gov.cn>");
    assert_eq!(m["message_id"], ids[0]);
    // A public list (Art 10) says how to leave it.
    assert_eq!(
        m["list_unsubscribe"],
        "<mailto:unsubscribe@zzb.example.gov.cn?subject=unsubscribe>"
    );
    assert_eq!(m["parts"][0]["type"], "multipart/alternative");
    let text = part(m, "text/plain")["text"].as_str().unwrap();
    let html = part(m, "text/html")["text"].as_str().unwrap();
    assert!(
        text.starts_with("县融媒体中心：")
            && text.contains("张三，现任县财政局副局长，拟任县财政局局长。"),
        "{text}"
    );
    assert!(
        html.contains("<td>张三</td>") && html.contains("举报电话：0000-12380"),
        "{html}"
    );

    // Sent again (a resend after an unknown): the same Message-ID, recognisably the same message.
    let again = rt.block_on(ch.deliver(&batch(
        j.clone(),
        vec![item(
            1,
            "p001",
            "县融媒体中心",
            "news@rmt.example.cn",
            email(&t, &j, "p001", "县融媒体中心"),
        )],
    )));
    assert_eq!(
        again[0],
        Outcome::Delivered {
            reference: Some(ids[0].clone())
        }
    );
    let ids_now: Vec<Value> = server
        .messages()
        .iter()
        .map(|m| m["message_id"].clone())
        .collect();
    assert_eq!(ids_now.iter().filter(|i| **i == ids[0]).count(), 2);
}

#[test]
fn a_unit_document_has_no_unsubscribe_and_can_carry_its_letter_as_pdf() {
    let rt = runtime();
    let s = Scratch::new("smtp-attach");
    let server = Server::start(&s.path("smtp"));
    let ch = Smtp::open(&config(server.port, "")).unwrap();
    // The general template, asking for its letter to be attached.
    let templates = s.path("templates/general");
    for f in [
        "email.subject.hbs",
        "email.txt.hbs",
        "email.html.hbs",
        "letter.html.hbs",
    ] {
        std::fs::create_dir_all(&templates).unwrap();
        std::fs::copy(repo().join("templates/general").join(f), templates.join(f)).unwrap();
    }
    write(&templates.join("email.toml"), "attach_letter = true\n");
    let t = Templates::load(&s.path("templates")).unwrap();
    let j = job("02-scheduled-unit-notice.json");
    let content = email(&t, &j, "c001", "周明");
    assert!(matches!(
        &*content,
        Rendered::Email {
            letter: Some(_),
            ..
        }
    ));
    let out = rt.block_on(ch.deliver(&batch(
        j,
        vec![item(
            5,
            "c001",
            "周明",
            "zhouming@czj.example.gov.cn",
            content,
        )],
    )));
    assert!(matches!(out[0], Outcome::Delivered { .. }), "{out:?}");
    let msgs = server.messages();
    let m = &msgs[0];
    assert_eq!(m["subject"], "关于县财政局副局长职位竞争上岗的通知");
    assert!(
        m["list_unsubscribe"].is_null(),
        "a unit document is not a list: {m}"
    );
    assert_eq!(m["parts"][0]["type"], "multipart/mixed");
    assert!(
        part(m, "text/plain")["text"]
            .as_str()
            .unwrap()
            .contains("周明：")
    );
    let pdf = part(m, "application/pdf");
    assert_eq!(pdf["filename"], "zzb-2026-0150.pdf");
    let saved = server.dir.join("attachments/zzb-2026-0150.pdf");
    let text = Command::new("pdftotext")
        .args(["-layout", saved.to_str().unwrap(), "-"])
        .output()
        .unwrap_or_else(|e| {
            panic!("pdftotext ({e}): apt-get install poppler-utils; .ci/run does this")
        });
    let text = String::from_utf8(text.stdout).unwrap();
    for want in [
        "中共示例县委组织部",
        "组干函〔2026〕15号",
        "周明同志：",
        "竞争上岗方式选拔副局长1名",
        "特此函告。",
    ] {
        assert!(
            text.contains(want),
            "{want:?} not in the attached letter:\n{text}"
        );
    }
}

#[test]
fn replies_are_classified_451_retried_550_permanent_for_that_recipient_only() {
    let rt = runtime();
    let s = Scratch::new("smtp-codes");
    let server = Server::start(&s.path("smtp"));
    let ch = Smtp::open(&config(server.port, "")).unwrap();
    let t = Templates::load(&repo().join("templates")).unwrap();
    let j = job("01-pre-appointment-release.json");
    let c = email(&t, &j, "x", "记者");
    let items = vec![
        item(1, "a", "甲", "ok@example.cn", c.clone()),
        item(2, "b", "乙", "tempfail@example.cn", c.clone()),
        item(3, "c", "丙", "reject@example.cn", c.clone()),
    ];
    let out = rt.block_on(ch.deliver(&batch(j.clone(), items.clone())));
    assert!(matches!(&out[0], Outcome::Delivered { .. }), "{out:?}");
    assert!(
        matches!(&out[1], Outcome::Failed { code, permanent: false, .. } if code == "smtp_451"),
        "{out:?}"
    );
    assert!(
        matches!(&out[2], Outcome::Failed { code, permanent: true, detail } if code == "smtp_550" && detail.contains("mailbox unavailable")),
        "{out:?}"
    );
    // The retry (the engine's, after its backoff) is accepted.
    let retry = rt.block_on(ch.deliver(&batch(j, vec![items[1].clone()])));
    assert!(matches!(&retry[0], Outcome::Delivered { .. }), "{retry:?}");
    let accepted = server.accepted();
    assert_eq!(
        accepted,
        BTreeMap::from([
            ("ok@example.cn".to_string(), 1),
            ("tempfail@example.cn".to_string(), 1)
        ])
    );
}

#[test]
fn no_connection_is_transient_and_a_reply_lost_after_data_is_unknown() {
    let rt = runtime();
    let s = Scratch::new("smtp-broken");
    let t = Templates::load(&repo().join("templates")).unwrap();
    let j = job("01-pre-appointment-release.json");
    let c = email(&t, &j, "x", "记者");
    // Nothing listens: surely not sent, retried later.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let ch = Smtp::open(&config(port, "")).unwrap();
    let out = rt.block_on(ch.deliver(&batch(
        j.clone(),
        vec![item(1, "a", "甲", "ok@example.cn", c.clone())],
    )));
    assert!(
        matches!(&out[0], Outcome::Failed { code, permanent: false, .. } if code == "smtp_connect"),
        "{out:?}"
    );

    // The server takes the message but answers after the client gave up: it may have been
    // sent (it was), so it is unknown — and the status query cannot tell, so it stays unknown.
    let server = Server::start(&s.path("smtp"));
    let ch = Smtp::open(&config(server.port, "timeout_secs = 1")).unwrap();
    let b = batch(j, vec![item(1, "a", "甲", "slow@example.cn", c)]);
    let out = rt.block_on(ch.deliver(&b));
    assert!(matches!(&out[0], Outcome::Unknown { .. }), "{out:?}");
    assert_eq!(
        server.accepted().get("slow@example.cn"),
        Some(&1),
        "it did reach the server"
    );
    let resolved = rt.block_on(ch.resolve(&b));
    assert!(
        matches!(&resolved[0], Outcome::Unknown { detail } if detail.contains("Message-ID")),
        "{resolved:?}"
    );
    // The connection that missed the reply is not reused: the next message gets its own answer.
    let next = rt.block_on(ch.deliver(&batch(
        job("01-pre-appointment-release.json"),
        vec![item(
            2,
            "b",
            "乙",
            "reject-b@example.cn",
            email(&t, &job("01-pre-appointment-release.json"), "b", "乙"),
        )],
    )));
    assert!(
        matches!(&next[0], Outcome::Failed { code, permanent: true, .. } if code == "smtp_550"),
        "{next:?}"
    );
}

#[test]
fn the_per_server_rate_limit_paces_messages() {
    let rt = runtime();
    let s = Scratch::new("smtp-rate");
    let server = Server::start(&s.path("smtp"));
    let ch = Smtp::open(&config(server.port, "messages_per_second = 10")).unwrap();
    let t = Templates::load(&repo().join("templates")).unwrap();
    let j = job("01-pre-appointment-release.json");
    let c = email(&t, &j, "x", "记者");
    let items: Vec<Item> = (0..11)
        .map(|i| {
            item(
                i,
                &format!("r{i}"),
                "记者",
                &format!("r{i}@example.cn"),
                c.clone(),
            )
        })
        .collect();
    let start = Instant::now();
    let out = rt.block_on(ch.deliver(&batch(j, items)));
    let took = start.elapsed();
    assert!(
        out.iter().all(|o| matches!(o, Outcome::Delivered { .. })),
        "{out:?}"
    );
    // 11 messages at 10 a second, no burst: at least one second.
    assert!(took >= Duration::from_millis(950), "{took:?}");
    assert_eq!(server.accepted().len(), 11);
}

/// Channel files for a dispatch: the shipped ones, with e-mail going to `server`.
fn channels(s: &Scratch, server: &Server) -> PathBuf {
    let dir = common::daytime_channels(s);
    write(
        &dir.join("email.toml"),
        &format!(
            "channel = \"email\"\nbatch_size = 50\n[transport]\ntype = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nfrom = \"中共示例县委组织部 <noreply@zzb.example.gov.cn>\"\nlist_unsubscribe = \"<mailto:unsubscribe@zzb.example.gov.cn>\"\n[retry]\nmax_attempts = 3\nbase_ms = 100\nmax_ms = 200\n",
            server.port
        ),
    );
    dir
}

fn ledger_rows(s: &Scratch, job: &str) -> Vec<(String, String, Option<String>, i64)> {
    let conn = rusqlite::Connection::open(s.path("ledger.db")).unwrap();
    let mut st = conn
        .prepare("SELECT recipient, state, code, attempts FROM deliveries WHERE job_id = ?1 AND channel = 'email' ORDER BY recipient")
        .unwrap();
    st.query_map([job], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

/// SPEC §1 flow 1: the pre-appointment release reaches the press list by e-mail.
#[test]
fn flow_1_dispatch_mails_the_press_list_once() {
    let s = Scratch::new("smtp-flow1");
    let server = Server::start(&s.path("smtp"));
    let dir = channels(&s, &server);
    let run = || {
        s.command(&[
            "dispatch",
            "--directory",
            "examples/directory",
            "examples/jobs/01-pre-appointment-release.json",
        ])
        .env("DISCLOSE_PATHS_CHANNELS_DIR", &dir)
        .output()
        .unwrap()
    };
    let out = run();
    assert!(
        out.status.success(),
        "{}\n{}",
        stdout(&out),
        common::stderr(&out)
    );
    let msgs = server.messages();
    let mut to: Vec<&str> = msgs.iter().map(|m| m["to"].as_str().unwrap()).collect();
    to.sort();

    assert_eq!(
        to,
        [
            "县融媒体中心 <news@rmt.example.cn>",
            "市日报社驻县记者站 <county@daily.example.cn>"
        ]
    );
    for m in &msgs {
        assert_eq!(m["subject"], "关于张三同志任职前公示的公告");
        assert!(
            part(m, "text/plain")["text"]
                .as_str()
                .unwrap()
                .contains("拟任县财政局局长")
        );
        assert!(!m["list_unsubscribe"].is_null());
    }
    // Subscribers have no e-mail address: skipped, not sent.
    let rows: Vec<_> = ledger_rows(&s, "zzb-2026-0142")
        .into_iter()
        .filter(|r| r.1 != "skipped")
        .collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    for (_, state, code, _) in &rows {
        assert_eq!(state, "delivered");
        assert!(
            code.as_deref()
                .is_some_and(|c| c.starts_with("<zzb-2026-0142.")),
            "{code:?}"
        );
    }
    // Again: a duplicate, nothing mailed twice.
    let again = run();
    assert!(stdout(&again).contains("duplicate"));
    assert_eq!(server.messages().len(), 2);
}

/// SPEC §1 flow 2: the unit notice, approved ahead and sent when its time comes (the clock set
/// past `publish_at`), reaches the unit by e-mail; a greylisting server is retried with backoff,
/// a refused mailbox fails for that person only.
#[test]
fn flow_2_dispatch_mails_the_unit_when_due_retrying_451_and_recording_550() {
    let s = Scratch::new("smtp-flow2");
    let server = Server::start(&s.path("smtp"));
    let dir = channels(&s, &server);
    write(
        &s.path("directory/groups.toml"),
        "[[group]]\nname = \"unit:czj\"\nkind = \"unit\"\nfile = \"unit-czj.csv\"\n",
    );
    write(
        &s.path("directory/unit-czj.csv"),
        "id,name,email\nc001,周明,zhouming@czj.example.gov.cn\nc002,吴芳,tempfail-wufang@czj.example.gov.cn\nc003,郑伟,reject-zhengwei@czj.example.gov.cn\n",
    );
    let out = s
        .command(&[
            "dispatch",
            "--directory",
            s.path("directory").to_str().unwrap(),
            "examples/jobs/02-scheduled-unit-notice.json",
        ])
        .env("DISCLOSE_PATHS_CHANNELS_DIR", &dir)
        .env("DISCLOSE_CLOCK", "2026-12-07T10:00:00+08:00")
        .output()
        .unwrap();
    assert!(
        stdout(&out).contains("zzb-2026-0150"),
        "{}\n{}",
        stdout(&out),
        common::stderr(&out)
    );
    let rows = ledger_rows(&s, "zzb-2026-0150");
    let by: BTreeMap<&str, (&str, Option<&str>, i64)> = rows
        .iter()
        .map(|(r, st, c, a)| (r.as_str(), (st.as_str(), c.as_deref(), *a)))
        .collect();
    assert_eq!(by["c001"].0, "delivered");
    assert_eq!(
        (by["c002"].0, by["c002"].2),
        ("delivered", 2),
        "accepted on the second attempt"
    );
    assert_eq!((by["c003"].0, by["c003"].1), ("failed", Some("smtp_550")));
    let accepted = server.accepted();
    assert_eq!(accepted.values().sum::<usize>(), 2, "{accepted:?}");
    assert_eq!(accepted.get("tempfail-wufang@czj.example.gov.cn"), Some(&1));
    let msgs = server.messages();
    for m in &msgs {
        assert_eq!(m["subject"], "关于县财政局副局长职位竞争上岗的通知");
        assert!(
            m["list_unsubscribe"].is_null(),
            "unit scope is not a public list"
        );
        assert!(part(m, "text/html")["text"].as_str().unwrap().contains(
            "<p>推荐方式：个人报名与组织推荐相结合。报名时间：2026年12月7日至12月11日。</p>"
        ));
    }
}

/// A CA and a certificate for 127.0.0.1 signed by it (openssl), in `dir`.
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap_or_else(|e| panic!("openssl ({e}): apt-get install openssl"));
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=disclose test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign",
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        ]
        .concat(),
    );
    write(
        &dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    );
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

/// STARTTLS (required, never a fall-back to plain text) and implicit TLS against servers of
/// the office's own CA, with the credentials read from the variables the channel file names.
#[test]
fn starttls_and_implicit_tls_with_the_offices_ca_and_credentials_from_the_environment() {
    let rt = runtime();
    let s = Scratch::new("smtp-tls");
    let (ca, cert, key) = certificates(&s.path("tls"));
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let user_var = format!("DISCLOSE_TEST_SMTP_USER_{}", std::process::id());
    let pass_var = format!("DISCLOSE_TEST_SMTP_PASS_{}", std::process::id());
    // SAFETY: variables of this test's own names, set before any thread reads them.
    unsafe {
        std::env::set_var(&user_var, "zzb-mailer");
        std::env::set_var(&pass_var, "s3cret-pass");
    }
    let t = Templates::load(&repo().join("templates")).unwrap();
    let j = job("01-pre-appointment-release.json");
    let c = email(&t, &j, "x", "记者");
    let one = |ch: &Smtp, to: &str| {
        rt.block_on(ch.deliver(&batch(j.clone(), vec![item(1, "a", "甲", to, c.clone())])))
    };
    let tls_cfg =
        |port: u16, mode: &str, extra: &str| config(port, &format!("tls = \"{mode}\"\n{extra}"));

    let server = Server::start_with(
        &s.path("starttls"),
        &["starttls", cert, key, "zzb-mailer", "s3cret-pass"],
    );
    let creds = format!(
        "ca_file = \"{}\"\nusername_env = \"{user_var}\"\npassword_env = \"{pass_var}\"",
        ca.display()
    );
    let ch = Smtp::open(&tls_cfg(server.port, "starttls", &creds)).unwrap();
    assert!(ch.transport().contains("starttls"));
    let out = one(&ch, "ok@example.cn");
    assert!(matches!(&out[0], Outcome::Delivered { .. }), "{out:?}");
    assert_eq!(server.messages().len(), 1);
    // A wrong password: refused (535) — retried, not the recipient's fault — and the password
    // appears nowhere in what is reported.
    unsafe { std::env::set_var(&pass_var, "wrong-pass") };
    let ch = Smtp::open(&tls_cfg(server.port, "starttls", &creds)).unwrap();
    let out = one(&ch, "ok@example.cn");
    assert!(
        matches!(&out[0], Outcome::Failed { code, permanent: false, .. } if code == "smtp_535"),
        "{out:?}"
    );
    assert!(!format!("{out:?}").contains("wrong-pass"));
    // Without the office's CA the server is not trusted: nothing is sent, retried later.
    let ch = Smtp::open(&tls_cfg(server.port, "starttls", "")).unwrap();
    let out = one(&ch, "ok@example.cn");
    assert!(
        matches!(
            &out[0],
            Outcome::Failed {
                permanent: false,
                ..
            }
        ),
        "{out:?}"
    );
    assert_eq!(server.messages().len(), 1);

    let server = Server::start_with(&s.path("implicit"), &["implicit", cert, key]);
    let ch = Smtp::open(&tls_cfg(
        server.port,
        "implicit",
        &format!("ca_file = \"{}\"", ca.display()),
    ))
    .unwrap();
    let out = one(&ch, "ok@example.cn");
    assert!(matches!(&out[0], Outcome::Delivered { .. }), "{out:?}");
    assert_eq!(
        server.messages()[0]["subject"],
        "关于张三同志任职前公示的公告"
    );
}
