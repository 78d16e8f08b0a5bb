//! The ledger's disk full for a while (issue 8, 1(c); SPEC §5): the ledger (SQLite) lives on a
//! small tmpfs of its own, as an operator would give it a volume of its own, while the spool and
//! the outputs stay on the ordinary disk. The file system is filled up with a filler file, the
//! service is watched while it cannot write, and the filler is deleted.
//!
//! - Intake: jobs dropped into the spool while the disk is full stay in the spool (nothing
//!   acknowledged, nothing moved to `refused/`), the service says once why (SQLite's "database or
//!   disk is full"), keeps running without spinning, and takes every job once space is back.
//! - Delivery: workers holding claims when the disk fills cannot record their outcomes; they keep
//!   them and back off, claim nothing new, and once space is back every delivery ends with an
//!   outcome and nothing is sent twice (the outbox channel's file counts the sends).
//!
//! - Events: the publisher that sent a batch to RabbitMQ but cannot mark it published keeps it
//!   and retries the marking; it does not put the same batch on the broker again on every pass.
//! - Read-only: a file system cannot be made read-only under the running service — Linux
//!   refuses `mount -o remount,ro` (EBUSY) while a process holds a file on it open for writing,
//!   as the service does its ledger, and ext4's own error remount (`errors=remount-ro`) sticks
//!   (`emergency_ro`) until unmounted. What an operator does meet is a service (re)started on a
//!   ledger remounted read-only: it must refuse to start saying why, touch no job, and take
//!   them all once the file system is writable again.
//!
//! Mounting needs root (CI runs as root): without it these tests fail saying so, never skip.

mod amqp_common;
mod common;

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::service::Service;
use common::{Scratch, repo, stderr, stdout, write};
use serde_json::Value;

/// A tmpfs mounted for one test, unmounted (lazily, so a failing test never leaves it behind
/// busy) when dropped. Declared after the [`Scratch`] it lives in, so it goes first.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: PathBuf, size: &str) -> Tmpfs {
        std::fs::create_dir_all(&dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .output()
            .unwrap_or_else(|e| panic!("cannot run mount(8): {e}; this test needs it (as root)"));
        assert!(
            out.status.success(),
            "cannot mount a tmpfs at {} for the ledger ({}): this test needs root and permission \
             to mount (CI runs as root); it does not skip",
            dir.display(),
            stderr(&out).trim()
        );
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fill the file system holding `dir` until it refuses more (ENOSPC); the filler file.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    for chunk in [vec![0xA5u8; 64 * 1024], vec![0xA5u8; 512]] {
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
    }
    let err = f.write_all(&[0u8; 4096]).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::StorageFull, "{err}");
    path
}

/// Fold the ledger's write-ahead log into the database and truncate it, so that the service's
/// next write needs new space (a WAL that had wrapped round could take a few commits in space
/// it already holds, and the test would race that).
fn checkpoint(ledger: &Path) {
    let db = rusqlite::Connection::open(ledger).unwrap();
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    let busy: i64 = db
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
        .unwrap();
    assert_eq!(busy, 0, "the checkpoint could not finish");
}

/// CPU seconds (user + system, every thread) the process has used so far.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let hz: f64 = String::from_utf8(
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .parse()
    .unwrap();
    ticks as f64 / hz
}

/// `disclose ARGS` with the ledger on the tmpfs and the spool on the ordinary disk.
fn cmd(s: &Scratch, ledger: &Path, args: &[&str]) -> Command {
    let mut c = s.command(args);
    c.env("DISCLOSE_LEDGER_URL", ledger)
        .env("DISCLOSE_QUEUE_SPOOL_DIR", s.path("spool"))
        .env_remove("DISCLOSE_QUEUE_AMQP_URL");
    c
}

fn run(s: &Scratch, ledger: &Path, args: &[&str]) -> String {
    let out = cmd(s, ledger, args).output().unwrap();
    assert!(
        out.status.success(),
        "disclose {args:?}\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

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

/// The complete lines of an outbox file (the service may be writing the last one).
fn sent(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text[..text.rfind('\n').map_or(0, |i| i + 1)]
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn count(ledger: &Path, sql: &str) -> i64 {
    let db =
        rusqlite::Connection::open_with_flags(ledger, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    db.query_row(sql, [], |r| r.get(0)).unwrap()
}

fn audit_verify(s: &Scratch, ledger: &Path) {
    let out = cmd(s, ledger, &["audit", "verify"]).output().unwrap();
    assert!(
        out.status.success(),
        "audit verify: {}{}",
        stdout(&out),
        stderr(&out)
    );
}

/// Drop `n` signed letter jobs (two letters each) into the spool; their file names.
fn spool_letters(spool: &Path, prefix: &str, n: usize) -> Vec<String> {
    let (key_id, key) =
        disclose::approval::load_signing_key(&repo().join("examples/keys/example-2026.key"))
            .unwrap();
    let template = common::example("03-investigation-result-letters.json");
    for i in 0..n {
        let mut job = template.clone();
        let id = format!("{prefix}-{i:03}");
        job["id"] = id.clone().into();
        disclose::approval::sign(&mut job, &key_id, &key).unwrap();
        disclose::intake::spool::submit(spool, &id, &serde_json::to_vec(&job).unwrap()).unwrap();
    }
    let spooled = json_files(spool);
    assert_eq!(spooled.len(), n);
    spooled
}

/// The letters outbox holds the two letters of each of `n` jobs, each exactly once.
fn every_letter_once(outbox: &Path, n: usize) {
    let letters = sent(outbox);
    let pairs: HashSet<(&str, &str)> = letters
        .iter()
        .map(|l| {
            (
                l["job_id"].as_str().unwrap(),
                l["recipient"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        (letters.len(), pairs.len()),
        (2 * n, 2 * n),
        "every letter exactly once"
    );
}

/// Jobs spooled while the ledger's disk is full stay in the spool, the stall is logged once
/// with its cause, the service neither dies nor spins, and once the filler is gone every job is
/// taken once and every letter goes out once.
#[test]
fn a_full_ledger_disk_holds_jobs_in_the_spool_until_space_is_back() {
    let s = Scratch::new("disk-full-intake");
    let fs = Tmpfs::mount(s.path("ledgerfs"), "8m");
    let ledger = fs.0.join("ledger.db");
    let spool = s.path("spool");
    let mut svc = Service::spawn(cmd(&s, &ledger, &["serve"]), s.path("serve.log"));

    checkpoint(&ledger);
    let filler = fill(&fs.0);
    let n = 40;
    let spooled = spool_letters(&spool, "full", n);

    svc.until("the stall to be logged", 30, |svc| {
        svc.log().contains("spool intake stalled")
    });
    // Watch the service for a while with the disk still full: long enough for three retries
    // (after 1, 2 and 4 s).
    let (cpu0, t0) = (cpu_secs(svc.pid()), Instant::now());
    std::thread::sleep(Duration::from_secs(5));
    let cpu = cpu_secs(svc.pid()) - cpu0;
    let wall = t0.elapsed().as_secs_f64();
    assert!(svc.running(), "a full disk must not stop the service");
    assert!(
        cpu < 0.25 * wall,
        "the service used {cpu:.2} s of CPU in {wall:.1} s with the disk full: a tight retry loop"
    );
    assert_eq!(json_files(&spool), spooled, "every job stays in the spool");
    assert!(json_files(&spool.join("done")).is_empty());
    assert!(
        json_files(&spool.join("refused")).is_empty(),
        "a full disk is no reason to refuse a job"
    );
    assert_eq!(count(&ledger, "SELECT count(*) FROM jobs"), 0);
    let log = svc.log();
    let stalls: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("spool intake stalled"))
        .collect();
    assert_eq!(stalls.len(), 1, "logged once per outage:\n{log}");
    assert!(
        stalls[0].contains("disk is full"),
        "the log says why: {}",
        stalls[0]
    );
    eprintln!("disk full: {cpu:.2} s CPU in {wall:.1} s; {}", stalls[0]);

    std::fs::remove_file(&filler).unwrap();
    let letters = s.path("out/outbox/letter.jsonl");
    svc.until("every job taken and every letter sent", 60, |_| {
        json_files(&spool).is_empty() && sent(&letters).len() >= 2 * n
    });
    std::thread::sleep(Duration::from_millis(1_000)); // anything more would show up by now
    assert!(svc.log().contains("spool intake: working again"));
    assert_eq!(json_files(&spool.join("done")), spooled);
    assert!(json_files(&spool.join("refused")).is_empty());
    every_letter_once(&letters, n);
    assert_eq!(
        count(
            &ledger,
            "SELECT count(*) FROM audit WHERE kind = 'job.accepted'"
        ),
        n as i64,
        "each job decided once"
    );
    assert!(svc.terminate(30).success());
    audit_verify(&s, &ledger);
    drop(svc);
}

/// The disk fills while deliveries are being recorded: the workers that sent a batch keep its
/// outcomes and retry with backoff, no worker claims or sends anything more, and once space is
/// back every delivery ends `delivered`, each number in the outbox exactly once. The claims in
/// hand are made certain by holding SQLite's write lock while the disk is filled: the workers
/// finish their sends, and their records wait for the lock and then meet the full disk.
#[test]
fn deliveries_recorded_on_a_full_disk_wait_and_nothing_is_sent_twice() {
    let s = Scratch::new("disk-full-deliver");
    let fs = Tmpfs::mount(s.path("ledgerfs"), "16m");
    let ledger = fs.0.join("ledger.db");
    let n = 2_000;
    common::small_batch_channels(&s);
    // Two workers, 25 calls of 10 numbers a second: the fan-out lasts about eight seconds.
    let sms = s.path("channels/sms.toml");
    let text = std::fs::read_to_string(&sms).unwrap().replace(
        "channel = \"sms\"\n",
        "channel = \"sms\"\ncalls_per_second = 25\nconcurrency = 2\n",
    );
    assert!(
        text.contains("calls_per_second = 25"),
        "sms.toml changed shape"
    );
    write(&sms, &text);
    let config = s.path("disclose.toml");
    write(
        &config,
        &format!(
            "[paths]\nchannels_dir = \"{}\"\n",
            s.path("channels").display()
        ),
    );
    let c = config.to_str().unwrap();
    let path = common::mass_sms_job(&s, "full-fanout", n, |args| {
        let mut all = vec!["--config", c];
        all.extend_from_slice(args);
        run(&s, &ledger, &all);
    });
    let outbox = s.path("out/outbox/sms.jsonl");

    let mut svc = Service::spawn(
        cmd(&s, &ledger, &["--config", c, "serve"]),
        s.path("serve.log"),
    );
    run(&s, &ledger, &["--config", c, "submit", &path]);
    svc.until("the fan-out to get going", 60, |_| {
        sent(&outbox).len() >= 300
    });

    checkpoint(&ledger);
    let hold = rusqlite::Connection::open(&ledger).unwrap();
    hold.busy_timeout(Duration::from_secs(10)).unwrap();
    hold.execute_batch("BEGIN IMMEDIATE").unwrap();
    std::thread::sleep(Duration::from_millis(600));
    // Claimed and not recorded: `sending`, or held by a claim in the ledger's claim journal
    // (src/ledger/sqlite/journal.rs: its ids as runs [first, last]).
    let in_hand: i64 = hold
        .query_row(
            "SELECT (SELECT count(*) FROM deliveries WHERE state = 'sending')
                  + (SELECT coalesce(sum((r.value ->> 1) - (r.value ->> 0) + 1), 0)
                     FROM claims, json_each(claims.ids) AS r)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let at_hold = sent(&outbox).len();
    assert!(
        in_hand > 0 && at_hold < n,
        "no claim in hand ({in_hand}) or the fan-out over ({at_hold}); the test proves nothing"
    );
    let filler = fill(&fs.0);
    hold.execute_batch("ROLLBACK").unwrap();
    drop(hold);

    svc.until("the workers to meet the full disk", 30, |svc| {
        let log = svc.log();
        log.contains("cannot record delivery outcomes")
            || log.contains("delivery worker: ledger unavailable")
    });
    let at_full = sent(&outbox).len();
    let (cpu0, t0) = (cpu_secs(svc.pid()), Instant::now());
    std::thread::sleep(Duration::from_secs(5));
    let cpu = cpu_secs(svc.pid()) - cpu0;
    let wall = t0.elapsed().as_secs_f64();
    assert!(svc.running(), "a full disk must not stop the service");
    assert!(
        cpu < 0.25 * wall,
        "the service used {cpu:.2} s of CPU in {wall:.1} s with the disk full: a tight retry loop"
    );
    let after = sent(&outbox).len();
    assert_eq!(
        after, at_full,
        "nothing is sent while nothing can be recorded"
    );
    assert!(
        after <= at_hold + in_hand as usize,
        "only the claims in hand went out ({at_hold} + {in_hand} ≥ {after})"
    );
    let log = svc.log();
    let outage_lines = log
        .lines()
        .filter(|l| {
            l.contains("cannot record delivery outcomes")
                || l.contains("delivery worker: ledger unavailable")
        })
        .count();
    assert!(
        (1..=4).contains(&outage_lines),
        "each of the two workers logs the outage once, not every retry ({outage_lines} lines):\n{log}"
    );
    eprintln!(
        "disk full with {in_hand} deliveries in hand: {cpu:.2} s CPU in {wall:.1} s, {outage_lines} log lines, {after}/{n} sent"
    );

    std::fs::remove_file(&filler).unwrap();
    svc.until("every delivery recorded", 60, |_| {
        count(
            &ledger,
            "SELECT count(*) FROM deliveries WHERE job_id = 'full-fanout' AND state = 'delivered'",
        ) == n as i64
    });
    std::thread::sleep(Duration::from_millis(1_000)); // anything more would show up by now
    assert!(
        svc.log()
            .contains("delivery outcomes recorded after the ledger came back"),
        "{}",
        svc.tail()
    );
    let lines = sent(&outbox);
    let numbers: HashSet<&str> = lines
        .iter()
        .map(|l| l["address"].as_str().unwrap())
        .collect();
    assert_eq!(
        (lines.len(), numbers.len()),
        (n, n),
        "every number exactly once"
    );
    assert_eq!(
        count(
            &ledger,
            "SELECT count(*) FROM deliveries WHERE state NOT IN ('delivered')"
        ),
        0,
        "every delivery has its outcome"
    );
    assert!(svc.terminate(30).success());
    audit_verify(&s, &ledger);
    drop(svc);
}

/// The ledger's file system read-only when the service starts (remounted read-only after an
/// error, say, and the service restarted by systemd): it refuses to start, naming the ledger and
/// the reason, and leaves the spool alone; once the file system is writable again, the next start
/// takes every job spooled meanwhile, once. (A file system cannot be made read-only under a
/// running service: see the module comment.)
#[test]
fn a_read_only_ledger_file_system_stops_the_start_saying_why_and_loses_no_job() {
    let s = Scratch::new("disk-read-only");
    let fs = Tmpfs::mount(s.path("ledgerfs"), "8m");
    let ledger = fs.0.join("ledger.db");
    let spool = s.path("spool");
    run(&s, &ledger, &["audit", "verify"]); // creates the ledger
    let remount = |how: &str| {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,{how}")])
            .arg(&fs.0)
            .output()
            .unwrap();
        assert!(out.status.success(), "remount,{how}: {}", stderr(&out));
    };
    remount("ro");
    let n = 10;
    let spooled = spool_letters(&spool, "ro", n);

    let mut child = cmd(&s, &ledger, &["serve"])
        .env("DISCLOSE_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve still running after 20 s on a read-only ledger");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut why = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut why).unwrap();
    assert!(!status.success(), "{why}");
    assert!(
        why.contains(ledger.to_str().unwrap()) && why.contains("Read-only file system"),
        "names the ledger and the reason: {why}"
    );
    assert_eq!(json_files(&spool), spooled, "the spool is left alone");
    assert!(json_files(&spool.join("done")).is_empty());
    assert!(json_files(&spool.join("refused")).is_empty());

    remount("rw");
    let mut svc = Service::spawn(cmd(&s, &ledger, &["serve"]), s.path("serve.log"));
    let letters = s.path("out/outbox/letter.jsonl");
    svc.until("every job taken and every letter sent", 60, |_| {
        json_files(&spool).is_empty() && sent(&letters).len() >= 2 * n
    });
    std::thread::sleep(Duration::from_millis(1_000));
    assert_eq!(json_files(&spool.join("done")), spooled);
    every_letter_once(&letters, n);
    assert!(svc.terminate(30).success());
    audit_verify(&s, &ledger);
    drop(svc);
}

/// Starts the broker application again whatever happens to the test.
struct BrokerUp;

impl Drop for BrokerUp {
    fn drop(&mut self) {
        amqp_common::rabbitmqctl(&["start_app"]);
        amqp_common::rabbitmqctl(&["await_startup"]);
    }
}

/// The events outbox when the ledger's disk is full: the publisher sends a batch, the broker
/// confirms it, and the ledger cannot mark it published. The batch must not go out again on
/// every pass while the disk stays full (a flood of copies for every consumer); it is held,
/// marked once space is back, and the consumer gets each event exactly once. To put the events
/// certainly between their publication and their marking when the disk is full, they are written
/// into the outbox while the broker is stopped, and the disk filled before it starts again.
#[tokio::test(flavor = "multi_thread")]
async fn events_confirmed_while_the_disk_is_full_are_not_published_again_and_again() {
    let mut s = amqp_common::Setup::new("disk-full-events");
    let fs = Tmpfs::mount(s.path("ledgerfs"), "8m");
    s.ledger_path = fs.0.join("ledger.db");
    let tap = s.bind_events().await;
    let mut serve = s.serve();
    amqp_common::wait_until("the service to start", 30, || {
        serve.log().contains("serving: intake from RabbitMQ") && s.ledger().exists()
    })
    .await;

    let _up = BrokerUp;
    assert!(
        amqp_common::rabbitmqctl(&["stop_app"]),
        "rabbitmqctl stop_app"
    );
    let n = 100;
    let db = rusqlite::Connection::open(s.ledger()).unwrap();
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    db.execute_batch("BEGIN IMMEDIATE").unwrap();
    for i in 0..n {
        let payload = serde_json::json!({"event": "job.accepted", "job_id": format!("disk-{i}")});
        db.execute(
            "INSERT INTO events (name, job_id, payload) VALUES ('job.accepted', ?1, ?2)",
            rusqlite::params![format!("disk-{i}"), payload.to_string()],
        )
        .unwrap();
    }
    db.execute_batch("COMMIT").unwrap();
    drop(db);
    checkpoint(&s.ledger());
    let filler = fill(&fs.0);
    assert!(
        amqp_common::rabbitmqctl(&["start_app"]),
        "rabbitmqctl start_app"
    );
    assert!(amqp_common::rabbitmqctl(&["await_startup"]));

    let deadline = Instant::now() + Duration::from_secs(60);
    while amqp_common::ready(&tap).await < n {
        assert!(
            Instant::now() < deadline,
            "the events never went out:\n{}",
            serve.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Long enough for a dozen passes of the publisher (every 200 ms when it is idle).
    tokio::time::sleep(Duration::from_secs(3)).await;
    serve.assert_running();
    let on_the_broker = amqp_common::ready(&tap).await;
    assert_eq!(
        on_the_broker, n,
        "each event once on the broker while the disk is full"
    );
    let log = serve.log();
    assert_eq!(
        log.matches("cannot mark published events").count(),
        1,
        "logged once per outage:\n{log}"
    );

    std::fs::remove_file(&filler).unwrap();
    amqp_common::wait_until("the events to be marked published", 30, || {
        s.count("SELECT count(*) FROM events WHERE published_at IS NULL") == 0
    })
    .await;
    assert!(serve.log().contains("the events outbox is writable again"));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let got = amqp_common::drain(&tap, Duration::from_secs(1)).await;
    let ids: HashSet<String> = got.iter().filter_map(|m| m.message_id.clone()).collect();
    assert_eq!(
        (got.len(), ids.len()),
        (n as usize, n as usize),
        "each event exactly once"
    );
    assert_eq!(serve.stop().code(), Some(0));
}
