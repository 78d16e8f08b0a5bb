//! Chaos: the promises of SPEC §5 under faults that really happen, against the real binary and
//! the Tencent SMS emulator on 127.0.0.1.
//!
//! - `disclose serve` killed with SIGKILL at random points of a 20,000-number SMS fan-out, five
//!   times in a row, restarted each time: every number reached exactly once, none twice, none
//!   missing; what each kill left in flight became `unknown` and was settled by the status query.
//! - A provider answering slowly, 5xx, 429 and garbage for a while: the engine backs off (the
//!   calls are counted over time — no tight loop), gives up after `max_attempts` with the reason
//!   recorded, and every delivery ends with an outcome.

mod common;

#[path = "emulators/tencent.rs"]
mod tencent_emulator;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::service::Service;
use common::{Scratch, stdout, write};
use tencent_emulator::{Emulator, Mode};

/// A `[transport]` table pointing the SMS channel at the emulator, credentials by variable name.
fn tencent_transport(url: &str, extra: &str) -> String {
    format!(
        "[transport]\ntype = \"tencent_sms\"\nendpoint = \"{url}\"\nsms_sdk_app_id = \"{}\"\n\
         secret_id_env = \"TEST_TENCENT_ID\"\nsecret_key_env = \"TEST_TENCENT_KEY\"\n{extra}",
        tencent_emulator::SMS_SDK_APP_ID
    )
}

/// The daytime channel files (no quiet hours, no per-number limits) with `sms.toml` replaced.
fn channels_with_sms(s: &Scratch, sms: &str) -> PathBuf {
    let dir = common::daytime_channels(s);
    write(&dir.join("sms.toml"), sms);
    dir
}

/// `disclose ARGS` with the scratch ledger, the spool under the scratch, `config`, and the
/// emulator's credentials in the variables the channel file names.
fn cmd(s: &Scratch, config: &Path, args: &[&str]) -> Command {
    let mut all = vec!["--config", config.to_str().unwrap()];
    all.extend_from_slice(args);
    let mut c = s.command(&all);
    c.env("DISCLOSE_QUEUE_SPOOL_DIR", s.path("spool"))
        .env_remove("DISCLOSE_QUEUE_AMQP_URL")
        .env("TEST_TENCENT_ID", tencent_emulator::SECRET_ID)
        .env("TEST_TENCENT_KEY", tencent_emulator::SECRET_KEY);
    c
}

fn run(s: &Scratch, config: &Path, args: &[&str]) -> String {
    let out = cmd(s, config, args).output().unwrap();
    assert!(
        out.status.success(),
        "disclose {args:?}\n{}\n{}",
        stdout(&out),
        common::stderr(&out)
    );
    stdout(&out)
}

/// `disclose serve` with `config`.
fn serve(s: &Scratch, config: &Path, log: &str) -> Service {
    Service::spawn(cmd(s, config, &["serve"]), s.path(log))
}

fn ledger(s: &Scratch) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(s.path("ledger.db")).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    c
}

/// Deliveries of `job` per state.
fn states(s: &Scratch, job: &str) -> HashMap<String, i64> {
    ledger(s)
        .prepare("SELECT state, count(*) FROM deliveries WHERE job_id = ?1 GROUP BY state")
        .unwrap()
        .query_map([job], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn total(m: &HashMap<String, usize>) -> usize {
    m.values().sum()
}

/// Import `n` subscribers and sign a release addressed to them over SMS only; the signed file.
fn mass_sms_job(s: &Scratch, config: &Path, id: &str, n: usize) -> String {
    common::mass_sms_job(s, id, n, |args| {
        run(s, config, args);
    })
}

/// SIGKILL at five random points of a 20,000-number fan-out, a restart after each, then the run
/// to the end: the emulator — which records what really went out — received every number
/// exactly once. A batch the kill cut off is `sending` in the ledger; its lease (1 s) runs out,
/// it becomes `unknown`, and the status query settles it: found at Tencent → delivered, not
/// found → sent again (`resolve_after_secs = 0`, so the test need not wait ten minutes).
#[tokio::test(flavor = "multi_thread")]
async fn sigkill_five_times_mid_fanout_every_number_reached_exactly_once() {
    let s = Scratch::new("chaos-kill");
    let n = 20_000;
    let tencent = Emulator::start().await;
    // Batches of 20 so that a kill lands mid-way with a few batches in flight; four workers.
    let sms = format!(
        "channel = \"sms\"\nbatch_size = 20\nconcurrency = 4\n[retry]\nmax_attempts = 10\nbase_ms = 50\nmax_ms = 500\n{}",
        tencent_transport(
            &tencent.url,
            "timeout_ms = 5000\nresolve_after_secs = 0\nstatus_queries_per_second = 20\n"
        )
    );
    let channels = channels_with_sms(&s, &sms);
    let config = s.path("disclose.toml");
    write(
        &config,
        &format!(
            "[paths]\nchannels_dir = \"{}\"\n[engine]\nlease_secs = 1\n[serve]\ngrace_secs = 10\n",
            channels.display()
        ),
    );
    let job = mass_sms_job(&s, &config, "chaos-kill", n);

    let mut rng = fastrand::Rng::new();
    let started = Instant::now();
    let mut svc = serve(&s, &config, "serve-0.log");
    run(&s, &config, &["submit", &job]);
    let mut kills = Vec::new();
    for round in 1..=5 {
        // A random point in its own stretch of the fan-out (5–15%, 20–30%, … 65–75% of it),
        // killed within a few milliseconds of reaching it. (Points chosen as "some hundreds
        // more than at the last kill", then a sleep of up to 150 ms, let a fast machine run
        // thousands past each point, and now and then past the end before the fifth kill.)
        let point = n * (15 * round - 10) / 100 + rng.usize(0..n / 10);
        svc.until("the fan-out to progress", 60, |_| {
            total(&tencent.received()) >= point
        });
        std::thread::sleep(Duration::from_millis(rng.u64(0..20)));
        svc.kill9();
        let at_kill = total(&tencent.received());
        assert!(
            at_kill < n,
            "round {round}: the fan-out finished before the kill; the test proves nothing"
        );
        kills.push(at_kill);
        drop(svc);
        // Each restart: what the killed process had in flight is `sending` with a lease of 1 s.
        std::thread::sleep(Duration::from_millis(1_100));
        svc = serve(&s, &config, &format!("serve-{round}.log"));
    }
    eprintln!(
        "SIGKILL after {kills:?} of {n} messages; five kills in {:?}",
        started.elapsed()
    );
    let mut last = (0, Instant::now());

    svc.until("every delivery to be settled", 120, |_| {
        let st = states(&s, "chaos-kill");
        if last.1.elapsed() > Duration::from_secs(5) {
            eprintln!("{:?}: {st:?}", started.elapsed());
            last = (0, Instant::now());
        }
        st.get("delivered").copied().unwrap_or(0) as usize == n
    });
    // Anything sent twice would show up by now (the workers poll every second).
    std::thread::sleep(Duration::from_millis(1_500));
    let status = svc.terminate(30);
    assert!(status.success(), "{status}\n{}", svc.tail());

    let received = tencent.received();
    let twice: Vec<_> = received.iter().filter(|(_, c)| **c > 1).collect();
    assert!(twice.is_empty(), "numbers sent more than once: {twice:?}");
    assert_eq!(received.len(), n, "every number, none missing");
    for i in 0..n {
        let number = format!("+86139{i:08}");
        assert_eq!(received.get(&number), Some(&1), "{number}");
    }
    assert_eq!(
        states(&s, "chaos-kill"),
        HashMap::from([("delivered".into(), n as i64)])
    );

    // Each delivery's reference is the serial number of the one message Tencent sent for it —
    // also for those the status query settled (it reports the serial it found).
    let conn = ledger(&s);
    let serials: HashMap<String, String> = tencent
        .sent()
        .into_iter()
        .map(|m| (m.serial_no.to_string(), m.number.to_string()))
        .collect();
    let refs: Vec<(String, String)> = conn
        .prepare("SELECT address, code FROM deliveries WHERE job_id = 'chaos-kill'")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut unmatched = Vec::new();
    for (address, code) in &refs {
        let serial = code.strip_prefix("tencent_sms:").unwrap_or(code);
        if serials.get(serial) != Some(address) {
            unmatched.push((address, code));
        }
    }
    assert!(
        unmatched.is_empty(),
        "{} references match no message sent to that number, e.g. {:?}",
        unmatched.len(),
        &unmatched[..unmatched.len().min(5)]
    );

    // The kills left deliveries in flight; their leases ran out and the status query settled
    // every one (none is left unknown, and none of them reached Tencent twice).
    let expired: usize = conn
        .prepare("SELECT body FROM audit WHERE kind = 'deliveries.recorded' AND body LIKE '%lease_expired%'")
        .unwrap()
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|b| {
            let v: serde_json::Value = serde_json::from_str(&b.unwrap()).unwrap();
            v["unknown"].as_array().map_or(0, Vec::len)
        })
        .sum();
    assert!(
        expired > 0,
        "no kill left anything in flight; the test proves less than it says"
    );
    eprintln!("{expired} deliveries left in flight by the kills were settled by the status query");
    let verify = cmd(&s, &config, &["audit", "verify"]).output().unwrap();
    assert!(verify.status.success(), "{}", stdout(&verify));
}

/// `disclose ARGS` run to its end off the async runtime (the emulator lives on it), with
/// `DISCLOSE_CLOCK` when given; success and the output.
async fn run_async(
    s: &Scratch,
    config: &Path,
    clock: Option<String>,
    args: &[&str],
) -> (bool, String) {
    let mut c = cmd(s, config, args);
    if let Some(at) = clock {
        c.env("DISCLOSE_CLOCK", at);
    }
    let out = tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap();
    (
        out.status.success(),
        format!("{}\n{}", stdout(&out), common::stderr(&out)),
    )
}

/// One delivery as the ledger holds it: state, attempts, code, detail.
type Row = (String, i64, Option<String>, Option<String>);

fn deliveries(s: &Scratch, job: &str) -> Vec<Row> {
    ledger(s)
        .prepare(
            "SELECT state, attempts, code, detail FROM deliveries WHERE job_id = ?1 ORDER BY id",
        )
        .unwrap()
        .query_map([job], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// A group of `n` numbers of its own (`+86137PP…`), so that each phase's messages are told
/// apart at the emulator, and a signed SMS job to it.
fn phase_job(s: &Scratch, config: &Path, phase: usize, n: usize) -> (String, Vec<String>) {
    let numbers: Vec<String> = (0..n).map(|i| format!("+86137{phase:02}{i:06}")).collect();
    let mut csv = String::from("id,name,phone\n");
    for (i, number) in numbers.iter().enumerate() {
        csv.push_str(&format!("p{phase}m{i},订阅者{i},{number}\n"));
    }
    let group = format!("phase{phase}");
    let path = s.path(&format!("{group}.csv"));
    write(&path, &csv);
    run(
        s,
        config,
        &[
            "directory",
            "import",
            "--group",
            &group,
            "--kind",
            "public",
            path.to_str().unwrap(),
        ],
    );
    let id = format!("chaos-phase-{phase}");
    let mut job = common::example("01-pre-appointment-release.json");
    job["id"] = id.clone().into();
    job["channels"] = serde_json::json!(["sms"]);
    job["audience"]["groups"] = serde_json::json!([group]);
    (common::sign(s, &job, &id), numbers)
}

/// Requests the emulator has taken, sampled every 5 ms until `stop`: (time since start, count).
fn sample_requests(
    tencent: &Emulator,
) -> (
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    std::thread::JoinHandle<Vec<(Duration, u64)>>,
) {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let state = tencent.state.clone();
    let flag = stop.clone();
    let handle = std::thread::spawn(move || {
        let start = Instant::now();
        let mut seen = Vec::new();
        let probe = Emulator {
            url: String::new(),
            state,
        };
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            seen.push((start.elapsed(), probe.requests()));
            std::thread::sleep(Duration::from_millis(5));
        }
        seen
    });
    (stop, handle)
}

/// A provider in trouble for a while — 5xx, 429, garbage, hanging — and the engine's answers:
/// backoff between attempts (the calls are counted over time; no tight loop), give-up after
/// `max_attempts` recorded as `failed` with the last reason, Retry-After honoured, an answer that
/// cannot be read or never comes recorded as `unknown` (the message may be out) and settled by
/// the status query later without a second message. Every delivery ends with an outcome.
#[tokio::test(flavor = "multi_thread")]
async fn a_provider_in_trouble_gets_backoff_then_give_up_and_every_delivery_an_outcome() {
    let s = Scratch::new("chaos-trouble");
    let tencent = Emulator::start().await;
    let attempts = 4;
    let sms = format!(
        "channel = \"sms\"\nbatch_size = 5\n[retry]\nmax_attempts = {attempts}\nbase_ms = 200\nmax_ms = 2000\n{}",
        tencent_transport(&tencent.url, "timeout_ms = 500\nresolve_after_secs = 0\n")
    );
    let channels = channels_with_sms(&s, &sms);
    let config = s.path("disclose.toml");
    write(
        &config,
        &format!("[paths]\nchannels_dir = \"{}\"\n", channels.display()),
    );
    let n = 20;

    // 1. HTTP 500 to everything: every delivery tried exactly `max_attempts` times, with the
    // backoff between (at least 100 + 200 + 400 ms, half of base · 2^k with equal jitter), then
    // failed with the last reason; nothing reached anyone.
    let (job, _) = phase_job(&s, &config, 1, n);
    tencent.set_mode(Mode::ServerError);
    let (stop, sampler) = sample_requests(&tencent);
    let started = Instant::now();
    let (ok, out) = run_async(&s, &config, None, &["dispatch", &job]).await;
    let took = started.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let seen = sampler.join().unwrap();
    assert!(ok, "{out}");
    let calls = tencent.requests();
    let rows = deliveries(&s, "chaos-phase-1");
    assert_eq!(rows.len(), n);
    for (state, tries, code, detail) in &rows {
        assert_eq!((state.as_str(), *tries), ("failed", attempts), "{rows:?}");
        let detail = detail.as_deref().unwrap_or_default();
        assert!(
            detail.starts_with(&format!("gave up after {attempts} attempts; last: "))
                && detail.contains("500"),
            "{detail} ({code:?})"
        );
    }
    assert!(tencent.received().is_empty());
    // At most one call per batch per attempt: 4 batches of 5 → 16 when the batches stay
    // together, 80 if every number went alone; a tight loop would be thousands.
    assert!((16..=80).contains(&calls), "{calls} calls");
    assert!(
        took >= Duration::from_millis(700),
        "four attempts in {took:?}: no backoff"
    );
    // Over time: within 90 ms of the first call only first attempts can have gone out (the
    // first wait is at least 100 ms).
    let first = seen.iter().find(|(_, c)| *c > 0).map(|(t, _)| *t).unwrap();
    let early = seen
        .iter()
        .filter(|(t, _)| *t <= first + Duration::from_millis(90))
        .map(|(_, c)| *c)
        .max()
        .unwrap();
    assert!(early <= n as u64, "{early} calls within 90 ms of the first");
    eprintln!("HTTP 500: {calls} calls for {n} deliveries × {attempts} attempts in {took:?}");

    // 2. HTTP 429 with Retry-After: 1 — for the first call only, then the provider recovers:
    // nothing is retried before the second is up, and every number gets its message once.
    let before = tencent.requests();
    let (job, numbers) = phase_job(&s, &config, 2, n);
    tencent.set_mode(Mode::TooMany {
        retry_after_secs: 1,
    });
    let (ok, out, took) = {
        let started = Instant::now();
        let args = ["dispatch", job.as_str()];
        let dispatch = run_async(&s, &config, None, &args);
        let recover = async {
            while tencent.requests() == before {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            tencent.set_mode(Mode::Ok);
        };
        let ((ok, out), ()) = tokio::join!(dispatch, recover);
        (ok, out, started.elapsed())
    };
    assert!(ok, "{out}");
    assert!(
        took >= Duration::from_secs(1),
        "Retry-After not honoured: {took:?}"
    );
    let rows = deliveries(&s, "chaos-phase-2");
    assert!(rows.iter().all(|r| r.0 == "delivered"), "{rows:?}");
    let received = tencent.received();
    for number in &numbers {
        assert_eq!(received.get(number), Some(&1), "{number}");
    }
    // A rate-limited call is retried at most once per batch and per number.
    assert!(
        tencent.requests() - before <= 2 * n as u64,
        "{} calls",
        tencent.requests() - before
    );

    // 3. Garbage (the messages go out, the answer is cut off mid-JSON) and an answer that comes
    // after the client's 500 ms timeout: the message may be out, so `unknown`, not sent again.
    let mut unknown = Vec::new();
    for (phase, mode) in [
        (3, Mode::Malformed),
        (4, Mode::Hang(Duration::from_millis(1_500))),
    ] {
        let (job, numbers) = phase_job(&s, &config, phase, n);
        tencent.set_mode(mode);
        let (ok, out) = run_async(&s, &config, None, &["dispatch", &job]).await;
        assert!(ok, "{out}");
        let rows = deliveries(&s, &format!("chaos-phase-{phase}"));
        assert!(
            rows.iter().all(|r| r.0 == "unknown" && r.1 == 1),
            "{rows:?}"
        );
        let received = tencent.received();
        for number in &numbers {
            assert_eq!(received.get(number), Some(&1), "{number}");
        }
        unknown.push((job, numbers));
    }
    // Later (the engine asks again after five minutes; the clock is set ten minutes on), with
    // the provider well again: the status query finds every message, nothing is sent twice.
    tokio::time::sleep(Duration::from_millis(1_600)).await; // the hanging answers are done
    tencent.set_mode(Mode::Ok);
    let later = (chrono::Utc::now() + chrono::Duration::minutes(10)).to_rfc3339();
    let jobs: Vec<&str> = unknown.iter().map(|(j, _)| j.as_str()).collect();
    let mut args = vec!["dispatch"];
    args.extend(jobs);
    let (ok, out) = run_async(&s, &config, Some(later), &args).await;
    assert!(ok, "{out}");
    for phase in [3, 4] {
        let rows = deliveries(&s, &format!("chaos-phase-{phase}"));
        assert!(
            rows.iter().all(|r| r.0 == "delivered"),
            "phase {phase}: {rows:?}"
        );
    }
    let received = tencent.received();
    for (_, numbers) in &unknown {
        for number in numbers {
            assert_eq!(received.get(number), Some(&1), "{number}");
        }
    }
    // Every delivery of every phase has an outcome; none is left open.
    let open: i64 = ledger(&s)
        .query_row(
            "SELECT count(*) FROM deliveries WHERE state IN ('pending', 'sending', 'unknown')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(open, 0);
}
