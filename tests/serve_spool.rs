//! `disclose serve` on the embedded defaults (SQLite ledger, spool directory, file outputs), run
//! as the real binary: jobs taken in name order and moved only after their decision is
//! committed, bad input refused with its reasons while the service keeps running, a SIGTERM
//! mid-fan-out stopping cleanly and resuming, a SIGKILL mid-intake losing and repeating nothing,
//! and a ledger outage waited out (SPEC §5).

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::service::Service;
use common::{Scratch, repo, stdout, write};
use serde_json::Value;

/// `disclose ARGS` with the scratch ledger and outputs, and the spool under the scratch too.
fn cmd(s: &Scratch, args: &[&str]) -> Command {
    let mut c = s.command(args);
    c.env("DISCLOSE_QUEUE_SPOOL_DIR", s.path("spool"))
        .env_remove("DISCLOSE_QUEUE_AMQP_URL");
    c
}

fn run(s: &Scratch, args: &[&str]) -> String {
    let out = cmd(s, args).output().unwrap();
    assert!(
        out.status.success(),
        "disclose {args:?}\n{}\n{}",
        stdout(&out),
        common::stderr(&out)
    );
    stdout(&out)
}

/// `disclose serve` on this test's spool, with `config` if given.
fn serve(s: &Scratch, config: Option<&Path>, log: &str) -> Service {
    let mut args = Vec::new();
    if let Some(c) = config {
        args.extend(["--config", c.to_str().unwrap()]);
    }
    args.push("serve");
    Service::spawn(cmd(s, &args), s.path(log))
}

/// The `*.json` names in a directory (sorted), or none if it does not exist.
fn json_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".json"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

fn ledger(s: &Scratch) -> rusqlite::Connection {
    rusqlite::Connection::open(s.path("ledger.db")).unwrap()
}

/// Name order, bad input of three kinds, and delivery, all through a running service: the spool
/// is taken in name order (the audit trail records the decisions in that order); every file
/// leaves the spool only for done/ or refused/ (+ its reasons); the service keeps running after
/// bad input and a good job after it still goes out; a job spooled twice goes out once.
#[test]
fn spooled_jobs_are_taken_in_name_order_and_bad_input_is_refused_with_reasons() {
    let s = Scratch::new("serve-spool-flow");
    run(
        &s,
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
    run(
        &s,
        &[
            "directory",
            "import",
            "--group",
            "press",
            "--kind",
            "public",
            "examples/directory/press.csv",
        ],
    );
    let spool = s.path("spool");

    // Spooled before the service starts, so its first look sees all three at once.
    let out = run(
        &s,
        &[
            "submit",
            "examples/refused/anonymous-complainant.json",
            "examples/jobs/03-investigation-result-letters.json",
        ],
    );
    assert_eq!(out.matches("spooled as").count(), 2, "{out}");
    // Not JSON, dropped in by hand (write, then rename); its name sorts first.
    write(&spool.join(".garbage.tmp"), "这不是 JSON");
    std::fs::rename(
        spool.join(".garbage.tmp"),
        spool.join("00000000T000000.000000000Z-garbage.json"),
    )
    .unwrap();
    let order = json_files(&spool);
    assert_eq!(order.len(), 3);

    let mut svc = serve(&s, None, "serve.log");
    svc.until("the three spooled files to be taken", 30, |_| {
        json_files(&spool).is_empty()
    });
    assert_eq!(
        json_files(&spool.join("done")),
        [order[2].clone()],
        "the accepted job"
    );
    assert_eq!(
        json_files(&spool.join("refused")),
        [order[0].clone(), order[1].clone()]
    );
    // Name order: the garbage, the anonymous complaint, the letters.
    let decided: Vec<(String, Option<String>)> = ledger(&s)
        .prepare("SELECT kind, job_id FROM audit WHERE kind IN ('job.accepted', 'job.refused') ORDER BY seq")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        decided,
        [
            ("job.refused".to_string(), None),
            ("job.refused".to_string(), Some("zzb-2026-0160".to_string())),
            (
                "job.accepted".to_string(),
                Some("zzb-2026-0155".to_string())
            ),
        ]
    );
    // One reason a line, `code (article): message`, naming the code.
    let reason = |name: &str| s.read(&format!("spool/refused/{name}.reason"));
    let garbage = reason(&order[0]);
    assert!(
        garbage.starts_with("malformed (") && garbage.lines().count() == 1,
        "{garbage}"
    );
    let anonymous = reason(&order[1]);
    assert!(
        anonymous
            .lines()
            .any(|l| l.starts_with("complainant_not_signed (") && l.contains("): ")),
        "{anonymous}"
    );
    svc.until("the letters to go out", 30, |_| {
        lines(&s.path("out/outbox/letter.jsonl")) == 2
    });

    // Submitted while the service runs, after the bad input: the release goes out on every
    // channel; the letters spooled again are a duplicate and go nowhere twice.
    run(
        &s,
        &[
            "submit",
            "examples/jobs/01-pre-appointment-release.json",
            "examples/jobs/03-investigation-result-letters.json",
        ],
    );
    svc.until("the release to go out", 30, |_| {
        json_files(&spool).is_empty()
            && json_files(&spool.join("done")).len() == 3
            && lines(&s.path("out/outbox/sms.jsonl")) == 4
            && s.path("out/site/website/zzb-2026-0142.html").exists()
    });
    assert_eq!(json_files(&spool.join("refused")).len(), 2);
    assert!(
        svc.log().contains("decision=Duplicate"),
        "the letters spooled twice: {}",
        svc.log()
    );
    // Over the 1 MiB limit: refused without being read, and the service goes on.
    let big = spool.join("99999999T999999.999999999Z-big.json");
    std::fs::write(spool.join(".big.tmp"), vec![b' '; (1 << 20) + 1]).unwrap();
    std::fs::rename(spool.join(".big.tmp"), &big).unwrap();
    svc.until("the oversized file to be refused", 30, |_| {
        json_files(&spool.join("refused")).len() == 3
    });
    let too_big = reason("99999999T999999.999999999Z-big.json");
    assert!(
        too_big.starts_with("malformed (") && too_big.contains("1 MiB"),
        "{too_big}"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(svc.running(), "bad input must not stop the service");
    assert_eq!(lines(&s.path("out/outbox/letter.jsonl")), 2);
    assert_eq!(lines(&s.path("out/outbox/sms.jsonl")), 4);

    let status = svc.terminate(30);
    assert!(status.success(), "{status:?}\n{}", svc.log());
    let verify = s.disclose(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", stdout(&verify));
}

/// SIGTERM in the middle of a fan-out: the service exits 0 within its grace period, and started
/// again it finishes the rest — every number in the outbox exactly once, none missing.
#[test]
fn sigterm_mid_fanout_exits_cleanly_and_a_restart_finishes_exactly_once() {
    let s = Scratch::new("serve-spool-term");
    let n = 5_000;
    common::small_batch_channels(&s);
    let config = s.path("disclose.toml");
    write(
        &config,
        &format!(
            "[paths]\nchannels_dir = \"{}\"\n[engine]\nlease_secs = 1\n[serve]\ngrace_secs = 10\n",
            s.path("channels").display()
        ),
    );
    let c = config.to_str().unwrap();
    let path = common::mass_sms_job(&s, "mass-term", n, |args| {
        let mut all = vec!["--config", c];
        all.extend_from_slice(args);
        run(&s, &all);
    });
    let outbox = s.path("out/outbox/sms.jsonl");

    let mut svc = serve(&s, Some(&config), "serve-1.log");
    run(&s, &["--config", c, "submit", &path]);
    svc.until("the fan-out to start", 60, |_| lines(&outbox) >= 500);
    let started = Instant::now();
    let status = svc.terminate(10 + 5);
    let took = started.elapsed();
    assert!(status.success(), "{status:?}\n{}", svc.log());
    let at_stop = lines(&outbox);
    assert!(
        at_stop < n,
        "stopped after the fan-out finished; the test proves nothing"
    );
    assert!(svc.log().contains("SIGTERM"), "{}", svc.log());
    eprintln!("SIGTERM: exited 0 in {took:?} with {at_stop}/{n} sent");
    drop(svc);

    let mut svc = serve(&s, Some(&config), "serve-2.log");
    svc.until("the rest of the fan-out", 120, |_| lines(&outbox) >= n);
    std::thread::sleep(Duration::from_millis(1_500)); // anything more would show up by now
    assert!(svc.terminate(15).success());

    let text = std::fs::read_to_string(&outbox).unwrap();
    let sent: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let numbers: HashSet<&str> = sent
        .iter()
        .map(|l| l["address"].as_str().unwrap())
        .collect();
    assert_eq!(
        (sent.len(), numbers.len()),
        (n, n),
        "every number exactly once"
    );
    let delivered: i64 = ledger(&s)
        .query_row(
            "SELECT count(*) FROM deliveries WHERE job_id = 'mass-term' AND state = 'delivered'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(delivered as usize, n);
}

/// SIGKILL while many spooled jobs are being taken: after a restart every job is in the ledger
/// exactly once, every file in done/, none left in the spool, every letter sent exactly once —
/// whether or not the kill fell between a commit and its move (then the file is a duplicate).
#[test]
fn sigkill_mid_intake_loses_nothing_and_decides_nothing_twice() {
    let s = Scratch::new("serve-spool-kill");
    let n = 300;
    let spool = s.path("spool");
    // Signed in-process: the CLI would take a process per job.
    let (key_id, key) =
        disclose::approval::load_signing_key(&repo().join("examples/keys/example-2026.key"))
            .unwrap();
    let template = common::example("03-investigation-result-letters.json");
    for i in 0..n {
        let mut job = template.clone();
        let id = format!("bulk-{i:04}");
        job["id"] = id.clone().into();
        disclose::approval::sign(&mut job, &key_id, &key).unwrap();
        disclose::intake::spool::submit(&spool, &id, &serde_json::to_vec(&job).unwrap()).unwrap();
    }
    assert_eq!(json_files(&spool).len(), n);
    // Letters the killed process had in flight become unknown (and are resolved from the
    // outbox) one second after, not two minutes.
    let config = s.path("disclose.toml");
    write(&config, "[engine]\nlease_secs = 1\n");

    let mut svc = serve(&s, Some(&config), "serve-1.log");
    svc.until("intake to get going", 60, |_| {
        json_files(&spool.join("done")).len() >= 20
    });
    svc.kill9();
    let done_at_kill = json_files(&spool.join("done")).len();
    let committed_at_kill: i64 = ledger(&s)
        .query_row("SELECT count(*) FROM jobs", [], |r| r.get(0))
        .unwrap();
    assert!(
        done_at_kill < n,
        "killed after intake finished; the test proves nothing"
    );
    assert_eq!(json_files(&spool).len() + done_at_kill, n, "no file lost");
    eprintln!(
        "SIGKILL: {done_at_kill} files moved, {committed_at_kill} jobs committed ({} committed but not yet moved)",
        committed_at_kill - done_at_kill as i64
    );
    drop(svc);

    std::thread::sleep(Duration::from_millis(1_100)); // the killed process's leases run out
    let letters = s.path("out/outbox/letter.jsonl");
    let mut svc = serve(&s, Some(&config), "serve-2.log");
    svc.until("every job and letter", 120, |_| {
        json_files(&spool).is_empty() && lines(&letters) >= 2 * n
    });
    std::thread::sleep(Duration::from_millis(1_500));
    assert!(svc.terminate(30).success());

    assert_eq!(json_files(&spool.join("done")).len(), n);
    assert!(json_files(&spool.join("refused")).is_empty());
    let conn = ledger(&s);
    let (jobs, distinct): (i64, i64) = conn
        .query_row(
            "SELECT count(*), count(DISTINCT id) FROM jobs WHERE id LIKE 'bulk-%'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((jobs, distinct), (n as i64, n as i64));
    let accepted: i64 = conn
        .query_row(
            "SELECT count(*) FROM audit WHERE kind = 'job.accepted'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(accepted, n as i64, "each job decided once");
    let sent: Vec<Value> = std::fs::read_to_string(&letters)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let pairs: HashSet<(String, String)> = sent
        .iter()
        .map(|l| {
            (
                l["job_id"].as_str().unwrap().to_string(),
                l["recipient"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        (sent.len(), pairs.len()),
        (2 * n, 2 * n),
        "every letter exactly once"
    );
}

/// The ledger failing for a while: the spooled job stays in the spool, the outage is logged
/// once however often the intake retries, the service keeps running, and once the ledger is back
/// the job is taken and goes out.
///
/// The fault is injected into the ledger itself: a trigger that aborts every insert into `jobs`,
/// so `Intake::admit` returns `Err` at the commit, as on a full disk or an I/O error. (Permission
/// bits cannot do it: the tests run as root. Holding SQLite's write lock from outside works too,
/// but the service's one connection is then held for a 10 s busy wait by each delivery worker in
/// turn, and in a trial the intake's own error had not come after 30 s.)
#[test]
fn a_ledger_outage_leaves_the_job_in_the_spool_until_the_ledger_is_back() {
    let s = Scratch::new("serve-spool-outage");
    let spool = s.path("spool");
    let mut svc = serve(&s, None, "serve.log");

    let fault = ledger(&s);
    fault
        .execute_batch(
            "CREATE TABLE fault (x);
             INSERT INTO fault VALUES (1);
             CREATE TRIGGER fault BEFORE INSERT ON jobs WHEN EXISTS (SELECT 1 FROM fault)
             BEGIN SELECT RAISE(ABORT, 'injected fault: disk I/O error'); END;",
        )
        .unwrap();
    run(
        &s,
        &[
            "submit",
            "examples/jobs/03-investigation-result-letters.json",
        ],
    );
    let spooled = json_files(&spool);
    assert_eq!(spooled.len(), 1);
    svc.until("the outage to be logged", 30, |svc| {
        svc.log().contains("spool intake stalled")
    });
    // Long enough for two retries (after 1 s and 2 s more).
    std::thread::sleep(Duration::from_millis(3_500));
    assert_eq!(json_files(&spool), spooled, "the job stays in the spool");
    assert!(json_files(&spool.join("done")).is_empty());
    assert!(svc.running());
    let log = svc.log();
    assert!(log.contains("injected fault"), "{log}");

    fault
        .execute_batch("DROP TRIGGER fault; DROP TABLE fault;")
        .unwrap();
    // The end of the outage is logged when the pass that took the job returns: after the job is
    // in `done/` and its letters may be written, so it is waited for too.
    svc.until("the job to be taken after the outage", 60, |svc| {
        json_files(&spool.join("done")) == spooled
            && lines(&s.path("out/outbox/letter.jsonl")) == 2
            && svc.log().contains("spool intake: working again")
    });
    let log = svc.log();
    assert_eq!(
        log.matches("spool intake stalled").count(),
        1,
        "logged once per outage:\n{log}"
    );
    assert!(svc.terminate(30).success());
    let jobs: i64 = ledger(&s)
        .query_row("SELECT count(*) FROM jobs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(jobs, 1);
}
