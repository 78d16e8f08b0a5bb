//! Benchmark (run by hand; figures in the README): one public notice to N SMS subscribers
//! (default 1,000,000) through the Tencent emulator on loopback — SendSms calls of 200 numbers,
//! the last of fewer when N is not a multiple of 200 — measured end to end (`disclose
//! dispatch`: verify, plan, deliver, record every outcome), beside the raw rate at which a bare
//! reqwest client posts the same calls, signed the same way, to the same emulator in the same
//! run: once before `disclose` and once after (after an untimed pass that warms the emulator),
//! disclose compared with the mean of the two.
//!
//! ```sh
//! cargo build --release --bin disclose --example bench_sms
//! target/release/examples/bench_sms [N]
//! ```
//!
//! An N that is not a multiple of `disclose`'s claim (1,000 deliveries), 999,937 say, is worth a
//! run beside the default: until session 13 its last, short claim waited for the claim journal's
//! fold, and the call rate over the sending halved.
//!
//! `BENCH_CONCURRENCY` sets the SMS lane's workers (default 4); `BENCH_WRAP="perf record -g --"`
//! runs the timed `disclose` commands under a profiler; `BENCH_KEEP=1` keeps the ledger and the
//! rest of the run's files, and prints where.
//!
//! `BENCH_ROUNDS=R` sends the notice R times, each from the ledger as the directory import left
//! it and each followed by the bare client, so that every round is compared with the bare
//! client's runs on either side of it; it ends with each round's figure and their median. On a
//! machine whose speed wanders by a third within minutes (sessions 14 and 15), one round says
//! little: the same build gave 59% and 82% in two runs back to back.
//!
//! `BENCH_AB=PATH` makes the rounds take turns between this build's `disclose` (A, the odd
//! rounds) and another build of it at PATH (B, the even ones; a file named `disclose`), and ends with each one's median:
//! a change measured against the build before it in the same minutes, on a machine whose speed
//! moves more between two runs than most changes do.
//!
//! `BENCH_FLOOR=1` runs the bare client once more, before `disclose`, committing each answer to
//! SQLite as it comes (as `disclose`'s ledger commits): what keeping a durable record of the
//! answers, and nothing else, costs a client beside the bare one.
//!
//! The bare client runs as a process of its own (this program with `--bare`), as `disclose`
//! does; `BENCH_BARE=in-process` runs it inside this process instead, on the emulator's runtime,
//! as the benchmark did before session 11 (there it made about 10% fewer calls a second).
//! `BENCH_PIN=1` gives the emulator (this process) core 0 and the client under test core 1 —
//! `disclose`, or the bare client — as when the provider answers from machines of its own:
//! unpinned, on two cores, every instruction either client spends is taken from the emulator.

#[path = "../tests/emulators/tencent.rs"]
mod tencent_emulator;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use tencent_emulator::{Emulator, SECRET_ID, SECRET_KEY, SMS_SDK_APP_ID};

/// Calls in flight at once for the bare client: as many as `disclose` can have (SMS lane
/// concurrency × 5 calls per claim).
const CALLS_PER_CLAIM: usize = 5;

/// The prefix that runs a client under test on core 1 (`BENCH_PIN=1`).
const ON_CORE_1: [&str; 3] = ["taskset", "-c", "1"];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--bare") {
        // The bare client as a process of its own (unless `BENCH_BARE=in-process`): URL NUMBERS
        // IN_FLIGHT [SQLITE_FILE]; prints the seconds its calls took.
        let [url, numbers, in_flight] = [2, 3, 4].map(|i| args[i].clone());
        let rt = tokio::runtime::Runtime::new().unwrap();
        let t = Instant::now();
        rt.block_on(bare_client(
            &url,
            numbers.parse().unwrap(),
            in_flight.parse().unwrap(),
            args.get(5).map(|p| answers_file(Path::new(p))),
        ));
        println!("{}", t.elapsed().as_secs_f64());
        return;
    }
    let pin = std::env::var("BENCH_PIN").is_ok_and(|v| v == "1");
    // `disclose serve` taking the job from its spool, instead of `disclose dispatch`.
    let serve = std::env::var("BENCH_SERVE").is_ok_and(|v| v == "1");
    // The bare client once more, writing each answer to SQLite (see `answers_file`).
    let floor = std::env::var("BENCH_FLOOR").is_ok_and(|v| v == "1");
    // The bare client inside this process, on the emulator's runtime, as before session 11.
    let in_process = !pin && std::env::var("BENCH_BARE").is_ok_and(|v| v == "in-process");
    let cores = std::thread::available_parallelism().map_or(0, |p| p.get());
    if pin {
        // Before any other thread starts: the threads started after inherit core 0.
        let pinned = Command::new("taskset")
            .args(["-a", "-p", "-c", "0", &std::process::id().to_string()])
            .output()
            .expect("taskset (Debian package util-linux)");
        assert!(pinned.status.success(), "taskset: {pinned:?}");
    }
    // The SMS lane's workers (`concurrency` in sms.toml): BENCH_CONCURRENCY, default 4.
    let concurrency: usize = std::env::var("BENCH_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let in_flight = concurrency * CALLS_PER_CLAIM;
    // Rounds of `disclose` and the bare client after it, each `disclose` compared with the
    // bare client's runs on either side: BENCH_ROUNDS, default 1.
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1);
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("N: a number of subscribers"))
        .unwrap_or(1_000_000);
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("disclose"))
        .expect("target/release/disclose");
    assert!(
        bin.exists(),
        "build it first: cargo build --release --bin disclose"
    );
    // The other build the rounds take turns with (`BENCH_AB`).
    let other: Option<PathBuf> = std::env::var_os("BENCH_AB").map(PathBuf::from);
    if let Some(b) = &other {
        assert!(b.exists(), "BENCH_AB: no file {}", b.display());
        // The CPU sampler finds `disclose` by its command name.
        assert!(
            b.file_name().is_some_and(|f| f == "disclose"),
            "BENCH_AB: the other build must be a file named disclose (in a directory of its own)"
        );
    }
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let work = std::env::temp_dir().join(format!("disclose-bench-sms-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(work.join("channels")).unwrap();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let emu = rt.block_on(Emulator::start());
    println!(
        "one public notice to {n} SMS subscribers through the Tencent emulator on loopback, {cores} cores{}",
        if pin {
            ", the emulator pinned to core 0 and the client under test to core 1"
        } else {
            ""
        }
    );

    // 1. The bare client: the same calls, signed the same way, IN_FLIGHT at a time. First once
    // untimed: the emulator's first pass grows its tables and touches its memory, and made
    // whatever ran first about a fifth slower than the same run after it.
    let calls = n.div_ceil(200);
    // The bare client's seconds and its CPU and the emulator's (user + system), both.
    // `answers`: each answer also written to SQLite, in a file there (`BENCH_FLOOR=1`).
    let bare_run = |rt: &tokio::runtime::Runtime, answers: Option<&Path>| -> (f64, f64) {
        let cpu0 = process_cpu("self");
        if in_process {
            let t = Instant::now();
            rt.block_on(bare_client(
                &emu.url,
                n,
                in_flight,
                answers.map(answers_file),
            ));
            return (t.elapsed().as_secs_f64(), process_cpu("self") - cpu0);
        }
        let idle0 = machine_idle();
        let mut bare = Command::new("/usr/bin/time");
        bare.args(["-f", "%U %S"]);
        if pin {
            bare.args(ON_CORE_1);
        }
        let out = bare
            .arg(&exe)
            .args(["--bare", &emu.url, &n.to_string(), &in_flight.to_string()])
            .args(answers)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let secs: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        let cpu: f64 = String::from_utf8_lossy(&out.stderr)
            .lines()
            .last()
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|v| v.parse::<f64>().ok())
            .sum();
        let emulator = process_cpu("self") - cpu0;
        eprintln!(
            "  (CPU per call: the bare client {:.2} ms, the emulator {:.2} ms; the machine idle {:.2} of 2 cores)",
            cpu * 1000.0 / calls as f64,
            emulator * 1000.0 / calls as f64,
            (machine_idle() - idle0) / secs
        );
        (secs, cpu + emulator)
    };
    // `bare_run` on an emulator that has received nothing yet; every call lands.
    let bare = |rt: &tokio::runtime::Runtime, answers: Option<&Path>| -> (f64, f64) {
        emu.state.clear();
        let measured = bare_run(rt, answers);
        assert_eq!(
            emu.received().len(),
            n,
            "the bare client's calls all landed"
        );
        measured
    };
    bare(&rt, None);
    let (bare_secs, bare_cpu) = bare(&rt, None);
    let bare_rate = calls as f64 / bare_secs;
    println!(
        "bare reqwest client:   {in_flight} in flight{}, {calls} calls in {bare_secs:.2} s = {bare_rate:.0} calls/s ({:.0} numbers/s)",
        if pin {
            ", a process of its own on core 1 (the emulator on core 0)"
        } else if in_process {
            ", in the emulator's process"
        } else {
            ", a process of its own"
        },
        bare_rate * 200.0
    );
    // The bare client's latest rate: the first round of `disclose` is compared with it.
    let mut bare_before = bare_rate;
    if floor {
        // The same client writing each answer to SQLite as it comes, each in a commit of its
        // own, the file opened as `disclose` opens its ledger (`answers_file`): a client that
        // keeps a durable record of every call's outcomes and does nothing else, with no claim
        // before the call, no audit chain and nothing read back. Beside the bare client's runs
        // on either side.
        let file = work.join("answers.db");
        let (secs, _) = bare(&rt, Some(&file));
        let after = calls as f64 / bare(&rt, None).0;
        bare_before = after;
        let rate = calls as f64 / secs;
        println!(
            "bare client + SQLite:  {rate:.0} calls/s = {:.0}% of the bare client's runs before and after it ({after:.0} calls/s after)",
            200.0 * rate / (bare_rate + after)
        );
    }

    // 2. disclose: import the directory, then dispatch the notice, timed.
    let csv = work.join("subscribers.csv");
    let mut text = String::with_capacity(n * 40);
    text.push_str("id,name,phone\n");
    for i in 0..n {
        text.push_str(&format!("s{i:07},订阅者{i},+86139{i:08}\n"));
    }
    std::fs::write(&csv, text).unwrap();
    for entry in std::fs::read_dir(repo.join("channels")).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_owned();
        std::fs::copy(&p, work.join("channels").join(name)).unwrap();
    }
    std::fs::write(
        work.join("channels/sms.toml"),
        format!(
            "channel = \"sms\"\nbatch_size = 200\nconcurrency = {concurrency}\n[transport]\ntype = \"tencent_sms\"\n\
             endpoint = \"{}\"\nsms_sdk_app_id = \"{SMS_SDK_APP_ID}\"\n\
             secret_id_env = \"BENCH_TENCENT_ID\"\nsecret_key_env = \"BENCH_TENCENT_KEY\"\n",
            emu.url
        ),
    )
    .unwrap();
    let mut job: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo.join("examples/jobs/src/01-pre-appointment-release.json"))
            .unwrap(),
    )
    .unwrap();
    job["id"] = "bench-sms".into();
    job["channels"] = serde_json::json!(["sms"]);
    job["audience"] = serde_json::json!({"groups": ["subscribers"], "recipients": []});
    std::fs::write(work.join("job.json"), job.to_string()).unwrap();

    let disclose_of = |bin: &Path, args: &[&str]| {
        let mut c = Command::new(bin);
        c.current_dir(&repo)
            .args(args)
            .env("DISCLOSE_LEDGER_URL", work.join("ledger.db"))
            .env("DISCLOSE_PATHS_OUTPUT_DIR", work.join("out"))
            .env("DISCLOSE_PATHS_CHANNELS_DIR", work.join("channels"))
            .env("BENCH_TENCENT_ID", SECRET_ID)
            .env("BENCH_TENCENT_KEY", SECRET_KEY)
            .env("DISCLOSE_CLOCK", "2026-11-26T10:00:00+08:00");
        c
    };
    let disclose = |args: &[&str]| disclose_of(&bin, args);
    let signed = disclose(&[
        "sign",
        "--key",
        "examples/keys/example-2026.key",
        work.join("job.json").to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert!(signed.status.success());
    std::fs::write(work.join("signed.json"), &signed.stdout).unwrap();
    let timed = |c: Command, work: &Path| timed(c, work, pin);
    let (secs, mb, _) = timed(
        disclose(&[
            "directory",
            "import",
            "--group",
            "subscribers",
            "--kind",
            "public",
            csv.to_str().unwrap(),
        ]),
        &work,
    );
    println!("directory import:      {secs:.2} s, {mb:.0} MB peak (not part of the end to end)");
    // Each round sends the notice again from the ledger as the import left it.
    let imported = work.join("ledger.imported.db");
    if rounds > 1 {
        // The import's last connection has checkpointed its WAL into the file and removed it.
        assert!(
            !work.join("ledger.db-wal").exists(),
            "the import left a WAL"
        );
        std::fs::copy(work.join("ledger.db"), &imported).unwrap();
    }
    // Each round's sending rate (% of the bare client's) and `disclose`'s CPU per call ÷ the
    // emulator's.
    // With `BENCH_AB`, which build each figure is of: A (this one) or B.
    let mut results: Vec<(f64, f64)> = Vec::new();
    let mut builds: Vec<char> = Vec::new();
    for round in 1..=rounds {
        let (build, bin) = match &other {
            Some(b) if round % 2 == 0 => ('B', b.as_path()),
            _ => ('A', bin.as_path()),
        };
        let label = match (rounds > 1, &other) {
            (true, Some(_)) => format!("round {round} of {rounds} ({build}): "),
            (true, None) => format!("round {round} of {rounds}: "),
            _ => String::new(),
        };
        if round > 1 {
            for leftover in [
                "ledger.db",
                "ledger.db-wal",
                "ledger.db-shm",
                "out",
                "spool",
            ] {
                let p = work.join(leftover);
                let _ = std::fs::remove_file(&p).or_else(|_| std::fs::remove_dir_all(&p));
            }
            std::fs::copy(&imported, work.join("ledger.db")).unwrap();
        }
        emu.state.clear();
        let sampler = CpuSampler::start();
        let (secs, mb, out) = if serve {
            let (secs, mb) = served(
                disclose_of(bin, &["serve"]),
                &work,
                pin,
                &work.join("signed.json"),
                calls as u64,
                &emu,
            );
            (secs, mb, String::new())
        } else {
            timed(
                disclose_of(
                    bin,
                    &["dispatch", work.join("signed.json").to_str().unwrap()],
                ),
                &work,
            )
        };
        let samples = sampler.stop();
        let got = emu.received();
        let once = got.values().all(|&c| c == 1);
        let sending = emu.send_instants();
        // 3. The bare client again: this machine's speed wanders by a quarter within a minute,
        // so disclose is compared with the mean of the bare client's rates before and after it.
        let after = calls as f64 / bare(&rt, None).0;
        let bare_rate = (bare_before + after) / 2.0;
        bare_before = after;
        println!(
            "{label}bare client again:     {after:.0} calls/s after disclose; the mean of the two, {bare_rate:.0} calls/s, is what disclose is compared with"
        );
        let disclose_rate = calls as f64 / secs;
        let (command, measured) = if serve {
            ("disclose serve:       ", " (start to the last call)")
        } else {
            ("disclose dispatch:    ", "")
        };
        println!(
            "{label}{command} SMS lane concurrency {concurrency}: {secs:.2} s end to end{measured}, {mb:.0} MB peak; {} numbers received, each once: {once}",
            got.len()
        );
        println!(
            "{label}disclose call rate:    {disclose_rate:.0} calls/s = {:.0}% of the bare client's",
            100.0 * disclose_rate / bare_rate
        );
        if let Some((first, last)) = sending {
            let window = last - first;
            let rate = calls as f64 / window.as_secs_f64();
            println!(
                "{label}disclose sending:      first call to last {:.2} s = {rate:.0} calls/s = {:.0}% of the bare client's",
                window.as_secs_f64(),
                100.0 * rate / bare_rate
            );
            // CPU spent in that window, per call: what sets the rate when both cores are busy.
            let cpu = |f: fn(&Sample) -> f64| {
                (cpu_at(&samples, last, f) - cpu_at(&samples, first, f)) * 1000.0 / calls as f64
            };
            println!(
                "{label}CPU per call sending:  disclose {:.2} ms, emulator {:.2} ms (bare client + emulator {:.2} ms); the two busy {:.2} of 2 cores, the machine idle {:.2}",
                cpu(|s| s.disclose),
                cpu(|s| s.bench),
                bare_cpu * 1000.0 / calls as f64,
                (cpu(|s| s.disclose) + cpu(|s| s.bench)) * calls as f64
                    / 1000.0
                    / window.as_secs_f64(),
                cpu(|s| s.idle) * calls as f64 / 1000.0 / window.as_secs_f64()
            );
            results.push((
                100.0 * rate / bare_rate,
                cpu(|s| s.disclose) / cpu(|s| s.bench),
            ));
            builds.push(build);
        }
        if let Some(line) = out.lines().find(|l| l.starts_with("bench-sms")) {
            println!("{label}summary: {line}");
        }
        assert_eq!(got.len(), n, "every subscriber got the notice");
        assert!(once, "nobody got it twice");
    }
    if rounds > 1 && !results.is_empty() {
        // One figure of each of a build's rounds, as listed and its median.
        let list = |of: char, figure: fn(&(f64, f64)) -> f64, digits: usize| {
            let mut v: Vec<f64> = results
                .iter()
                .zip(&builds)
                .filter(|(_, b)| **b == of)
                .map(|(r, _)| figure(r))
                .collect();
            let shown: Vec<String> = v.iter().map(|x| format!("{x:.digits$}")).collect();
            v.sort_by(f64::total_cmp);
            let median = (v[(v.len() - 1) / 2] + v[v.len() / 2]) / 2.0;
            (shown.join(", "), median)
        };
        for build in ['A', 'B'] {
            if !builds.contains(&build) {
                continue;
            }
            let (rates, median) = list(build, |r| r.0, 0);
            let (ratios, ratio) = list(build, |r| r.1, 2);
            let which = match (build, &other) {
                (_, None) => String::new(),
                ('A', Some(_)) => format!(" of A ({})", bin.display()),
                (_, Some(b)) => format!(" of B ({})", b.display()),
            };
            println!(
                "rounds{which}: sending at {rates}% of the bare client's (median {median:.0}%); disclose's CPU per call ÷ the emulator's {ratios} (median {ratio:.2})"
            );
        }
    }
    if std::env::var_os("BENCH_KEEP").is_some() {
        println!("kept: {}", work.display());
    } else {
        let _ = std::fs::remove_dir_all(&work);
    }
    drop(Arc::clone(&emu.state));
}

/// Run under `/usr/bin/time`: (seconds, peak MB, stdout).
/// `pin`: on core 1.
fn timed(c: Command, work: &Path, pin: bool) -> (f64, f64, String) {
    let (mut t, time) = under_time(&c, work, pin);
    let out = t.output().expect("/usr/bin/time (Debian package `time`)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (secs, mb) = read_time(&time);
    (secs, mb, text)
}

/// `c` under `/usr/bin/time` (and `BENCH_WRAP`, and on core 1 with `pin`), and the file the
/// figures go to.
fn under_time(c: &Command, work: &Path, pin: bool) -> (Command, PathBuf) {
    let time = work.join("time.txt");
    let mut t = Command::new("/usr/bin/time");
    t.arg("-f").arg("%e %M %U %S").arg("-o").arg(&time);
    if pin {
        t.args(ON_CORE_1);
    }
    if let Ok(w) = std::env::var("BENCH_WRAP") {
        t.args(w.split_whitespace());
    }
    t.arg(c.get_program());
    t.args(c.get_args());
    for (k, v) in c.get_envs() {
        if let Some(v) = v {
            t.env(k, v);
        }
    }
    if let Some(d) = c.get_current_dir() {
        t.current_dir(d);
    }
    (t, time)
}

/// (seconds, peak MB) from `/usr/bin/time`'s file; prints the CPU.
fn read_time(time: &Path) -> (f64, f64) {
    let line = std::fs::read_to_string(time).unwrap();
    let mut parts = line.split_whitespace();
    let secs: f64 = parts.next().unwrap().parse().unwrap();
    let kb: f64 = parts.next().unwrap().parse().unwrap();
    let user: f64 = parts.next().unwrap().parse().unwrap();
    let system: f64 = parts.next().unwrap().parse().unwrap();
    eprintln!("  (CPU of that command: user {user:.2} s, system {system:.2} s)");
    (secs, kb / 1024.0)
}

/// `BENCH_SERVE=1`: `disclose serve` (`c`) takes the job from its spool directory and sends it;
/// stopped with SIGTERM once the emulator has had every call and the outcomes a moment to be
/// recorded. (Seconds from start to the last call, peak MB.)
fn served(
    mut c: Command,
    work: &Path,
    pin: bool,
    job: &Path,
    calls: u64,
    emu: &Emulator,
) -> (f64, f64) {
    let spool = work.join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    c.env("DISCLOSE_QUEUE_SPOOL_DIR", &spool);
    let (mut t, time) = under_time(&c, work, pin);
    // Counted since the emulator started, the bare client's calls too.
    let before = emu.requests();
    let started = Instant::now();
    let mut child = t.spawn().expect("/usr/bin/time (Debian package `time`)");
    // As `disclose submit` does: written beside, then renamed in.
    let tmp = spool.join(".bench-sms.json.tmp");
    std::fs::copy(job, &tmp).unwrap();
    std::fs::rename(&tmp, spool.join("bench-sms.json")).unwrap();
    while emu.requests() - before < calls {
        assert!(
            started.elapsed().as_secs() < 300,
            "serve sent {} calls of {calls} in 300 s",
            emu.requests() - before
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let secs = started.elapsed().as_secs_f64();
    std::thread::sleep(std::time::Duration::from_secs(2));
    let pid = find_process("disclose").expect("disclose serve is running");
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    assert!(
        child.wait().unwrap().success(),
        "serve exits 0 after SIGTERM"
    );
    (secs, read_time(&time).1)
}

/// A SQLite file for the answers of the bare client (`BENCH_FLOOR=1`), as `disclose` opens its
/// ledger on a roomy disk: WAL, synchronous=NORMAL, a checkpoint every 64 MiB of WAL.
fn answers_file(path: &Path) -> Arc<std::sync::Mutex<rusqlite::Connection>> {
    let _ = std::fs::remove_file(path);
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
    conn.pragma_update(None, "wal_autocheckpoint", 16_384)
        .unwrap();
    conn.execute_batch("CREATE TABLE answers (call INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        .unwrap();
    Arc::new(std::sync::Mutex::new(conn))
}

/// SendSms calls of 200 of `n` numbers (the last may have fewer), `in_flight` at a time, signed
/// as Tencent requires; with `answers`, each answer written there before the next call.
async fn bare_client(
    url: &str,
    n: usize,
    in_flight: usize,
    answers: Option<Arc<std::sync::Mutex<rusqlite::Connection>>>,
) {
    let calls = n.div_ceil(200);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let host = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..in_flight {
        let (client, url, host, next, answers) = (
            client.clone(),
            url.to_string(),
            host.clone(),
            next.clone(),
            answers.clone(),
        );
        set.spawn(async move {
            loop {
                let call = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if call >= calls {
                    return;
                }
                let (first, end) = (call * 200, (call * 200 + 200).min(n));
                let numbers: Vec<String> =
                    (first..end).map(|i| format!("+86139{i:08}")).collect();
                let body = serde_json::json!({
                    "PhoneNumberSet": numbers,
                    "SmsSdkAppId": SMS_SDK_APP_ID,
                    "TemplateId": "1234568",
                    "SignName": "某县组工",
                    "TemplateParamSet": ["关于张三同志任职前公示的公告", "2026-11-27", "0000-12380"],
                    // As `disclose` names a call (sms::reference): the emulator echoes it in
                    // every number's status, so its length is part of the call's cost.
                    "SessionContext": format!("disclose:bench-sms:{}-{end}", first + 1),
                })
                .to_string();
                let ts = chrono::Utc::now().timestamp();
                let auth = disclose::channels::tencent::tc3_authorization(
                    SECRET_ID,
                    SECRET_KEY,
                    "sms",
                    &host,
                    "application/json",
                    ts,
                    body.as_bytes(),
                );
                let resp = client
                    .post(&url)
                    .header("Host", &host)
                    .header("Content-Type", "application/json")
                    .header("Authorization", auth)
                    .header("X-TC-Action", "SendSms")
                    .header("X-TC-Version", "2021-01-11")
                    .header("X-TC-Timestamp", ts.to_string())
                    .header("X-TC-Region", "ap-guangzhou")
                    .body(body)
                    .send()
                    .await
                    .expect("the emulator answers");
                let text = resp.text().await.unwrap();
                assert!(text.contains("\"Code\":\"Ok\""), "{}", &text[..text.len().min(300)]);
                if let Some(answers) = answers.clone() {
                    tokio::task::spawn_blocking(move || {
                        answers
                            .lock()
                            .unwrap()
                            .prepare_cached("INSERT INTO answers (call, body) VALUES (?1, ?2)")?
                            .execute(rusqlite::params![call as i64, text])
                    })
                    .await
                    .unwrap()
                    .expect("the answer written to SQLite");
                }
            }
        });
    }
    while set.join_next().await.is_some() {}
}

/// CPU seconds (user + system) a process has used so far, from `/proc/<pid>/stat`.
fn process_cpu(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // After the command name in parentheses: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        f.get(i - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(14) + ticks(15)) / 100.0
}

/// CPU seconds all cores have been idle (or waiting for I/O) so far, from `/proc/stat`.
fn machine_idle() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    (f.get(3).copied().unwrap_or(0.0) + f.get(4).copied().unwrap_or(0.0)) / 100.0
}

/// CPU used so far by the `disclose` process and by this one (the emulator), at an instant.
struct Sample {
    at: Instant,
    disclose: f64,
    bench: f64,
    /// CPU the whole machine has been idle so far (`/proc/stat`, all cores).
    idle: f64,
}

/// Samples every 20 ms until stopped.
struct CpuSampler {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Vec<Sample>>,
}

impl CpuSampler {
    fn start() -> Self {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut out = Vec::new();
            let mut pid = None;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                if pid.is_none() {
                    pid = find_process("disclose");
                }
                out.push(Sample {
                    at: Instant::now(),
                    disclose: pid.as_deref().map_or(0.0, process_cpu),
                    bench: process_cpu("self"),
                    idle: machine_idle(),
                });
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            out
        });
        CpuSampler { stop, thread }
    }

    fn stop(self) -> Vec<Sample> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

/// The pid of a running process with this command name.
fn find_process(name: &str) -> Option<String> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid = e.file_name().into_string().ok()?;
        pid.parse::<u32>().ok()?;
        let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
        (comm.trim() == name).then_some(pid)
    })
}

/// A process's CPU at `at`, read off the nearest sample at or after it.
fn cpu_at(samples: &[Sample], at: Instant, f: fn(&Sample) -> f64) -> f64 {
    samples
        .iter()
        .find(|s| s.at >= at)
        .or(samples.last())
        .map_or(0.0, f)
}
