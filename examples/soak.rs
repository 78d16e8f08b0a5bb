//! Soak (issue 8; run by hand, figures in BENCHMARKS.md): mixed traffic through `disclose serve`
//! for a long while — RabbitMQ intake, SMS through the Tencent emulator, the public website and
//! official letters — sampling the service once a minute from the outside: resident memory,
//! open files, sockets, threads, and the latency from publishing a job to its `job.completed`
//! event. A healthy service shows flat lines.
//!
//! ```sh
//! cargo build --release --bin disclose --example soak
//! target/release/examples/soak [MINUTES] [JOBS_PER_MINUTE] [SUBSCRIBERS]   # 60 30 200
//! ```
//!
//! Each minute it publishes JOBS_PER_MINUTE jobs, evenly spaced, in turn: a public notice to
//! the SUBSCRIBERS by SMS and on the website, a website-only notice, and investigation-result
//! letters to two named people. Needs RabbitMQ on 127.0.0.1:5672 and Debian's fonts-noto-cjk.
//! `SOAK_CACHE_MIB=N` bounds the ledger's page cache; `MALLOC_ARENA_MAX` reaches `serve` too.

#[path = "../tests/emulators/tencent.rs"]
mod tencent_emulator;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures_lite::StreamExt;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties, ExchangeKind};
use serde_json::Value;
use tencent_emulator::{Emulator, SECRET_ID, SECRET_KEY, SMS_SDK_APP_ID};

const URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<u64>());
    let minutes = args.next().transpose()?.unwrap_or(60);
    let per_minute = args.next().transpose()?.unwrap_or(30).max(1);
    let subscribers = args.next().transpose()?.unwrap_or(200);

    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let name = format!("soak-{}", std::process::id());
    let work = std::env::temp_dir().join(format!("disclose-{name}"));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(work.join("channels"))?;
    let emu = Emulator::start().await;

    // The shipped channels, SMS through the emulator, without quiet hours (the soak runs at
    // any time of day) and without per-recipient limits (the same subscribers get a notice
    // every few seconds here, which the limits would rightly hold back).
    for entry in std::fs::read_dir(repo.join("channels"))? {
        let p = entry?.path();
        std::fs::copy(&p, work.join("channels").join(p.file_name().unwrap()))?;
    }
    std::fs::write(
        work.join("channels/sms.toml"),
        format!(
            "channel = \"sms\"\nbatch_size = 200\nconcurrency = 2\n[transport]\ntype = \"tencent_sms\"\n\
             endpoint = \"{}\"\nsms_sdk_app_id = \"{SMS_SDK_APP_ID}\"\n\
             secret_id_env = \"SOAK_TENCENT_ID\"\nsecret_key_env = \"SOAK_TENCENT_KEY\"\n",
            emu.url
        ),
    )?;
    let mut csv = String::from("id,name,phone\n");
    for i in 0..subscribers {
        csv.push_str(&format!("s{i:07},订阅者{i},+86139{i:08}\n"));
    }
    std::fs::write(work.join("subscribers.csv"), csv)?;

    let queue = disclose::config::QueueSection {
        amqp_url: Some(URL.into()),
        jobs_exchange: format!("{name}.jobs"),
        jobs_queue: format!("{name}.jobs"),
        dead_letter_exchange: format!("{name}.dlx"),
        dead_letter_queue: format!("{name}.dead"),
        events_exchange: format!("{name}.events"),
        ..Default::default()
    };
    // SOAK_CACHE_MIB=N: the ledger's page cache bounded to N MiB (sqlite://…?cache_mib=N), to
    // see the service's memory level off once the ledger file outgrows it.
    let ledger_url = match std::env::var("SOAK_CACHE_MIB") {
        Ok(n) => format!(
            "sqlite://{}?cache_mib={n}",
            work.join("ledger.db").display()
        ),
        Err(_) => work.join("ledger.db").display().to_string(),
    };
    let bin = std::env::current_exe()?
        .parent()
        .and_then(Path::parent)
        .map(|p| p.join("disclose"))
        .expect("target dir");
    let disclose = |args: &[&str]| {
        let mut c = Command::new(&bin);
        c.current_dir(&repo)
            .args(args)
            .env("DISCLOSE_LEDGER_URL", &ledger_url)
            .env("DISCLOSE_PATHS_OUTPUT_DIR", work.join("out"))
            .env("DISCLOSE_PATHS_CHANNELS_DIR", work.join("channels"))
            .envs(queue.env())
            .env("SOAK_TENCENT_ID", SECRET_ID)
            .env("SOAK_TENCENT_KEY", SECRET_KEY)
            .env("DISCLOSE_LOG", "warn");
        c
    };
    let import = disclose(&[
        "directory",
        "import",
        "--group",
        "subscribers",
        "--kind",
        "public",
        work.join("subscribers.csv").to_str().unwrap(),
    ])
    .output()?;
    anyhow::ensure!(import.status.success(), "import: {import:?}");

    // The events, seen as an upstream system sees them: declared before the service starts so
    // that none is missed.
    let events_q = format!("{name}.completed");
    let (mut conn, mut ch, mut completed) = {
        let mut tries = 0;
        loop {
            match subscribe(&queue.events_exchange, &events_q).await {
                Ok(parts) => break parts,
                Err(e) if tries < 120 => {
                    tries += 1;
                    eprintln!("waiting for the broker: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => return Err(e),
            }
        }
    };

    let log = std::fs::File::create(work.join("serve.log"))?;
    let mut serve = KillOnDrop(
        disclose(&["serve"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?,
    );
    let pid = serve.0.id();

    let templates = [
        "examples/jobs/src/01-pre-appointment-release.json",
        "examples/jobs/src/01-pre-appointment-release.json",
        "examples/jobs/src/03-investigation-result-letters.json",
    ]
    .map(|p| -> anyhow::Result<Value> {
        Ok(serde_json::from_str(&std::fs::read_to_string(
            repo.join(p),
        )?)?)
    });
    let [sms_web, web_only, letters] = templates;
    let (sms_web, web_only, letters) = (sms_web?, web_only?, letters?);
    let (key_id, key) =
        disclose::approval::load_signing_key(&repo.join("examples/keys/example-2026.key"))?;
    let job = |i: u64| -> Vec<u8> {
        let now = disclose::clock::now();
        let mut raw = match i % 3 {
            0 => {
                let mut j = sms_web.clone();
                j["channels"] = serde_json::json!(["sms", "website"]);
                j["audience"] = serde_json::json!({"groups": ["subscribers"], "recipients": []});
                j
            }
            1 => {
                let mut j = web_only.clone();
                j["channels"] = serde_json::json!(["website"]);
                j["audience"] = serde_json::json!({"groups": [], "recipients": []});
                j
            }
            _ => letters.clone(),
        };
        raw["id"] = format!("{name}-{i:06}").into();
        raw["approval"]["approved_at"] = (now - chrono::Duration::minutes(5)).to_rfc3339().into();
        if raw.get("schedule").is_some() {
            // Out now, with a publicity period of 14 days (Art 3: at least 5 working days).
            raw["schedule"] = serde_json::json!({
                "publish_at": now.to_rfc3339(),
                "expires_at": (now + chrono::Duration::days(14)).to_rfc3339(),
            });
        }
        disclose::approval::sign(&mut raw, &key_id, &key).expect("signs");
        serde_json::to_vec(&raw).expect("serialises")
    };

    println!(
        "soak: {minutes} min, {per_minute} jobs/min (SMS + website to {subscribers}, website only, two letters, in turn), serve pid {pid}"
    );
    println!(
        "| minute | RSS MB | open files | sockets | threads | published | completed | latency p50 ms | p95 ms | max ms |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let started = Instant::now();
    let gap = Duration::from_millis(60_000 / per_minute);
    let mut published_at: HashMap<String, Instant> = HashMap::new();
    let mut latencies: Vec<u64> = Vec::new();
    let (mut published, mut done) = (0u64, 0u64);
    let mut samples: Vec<(u64, u64, usize, usize)> = Vec::new();
    let mut next_job = Instant::now();
    let mut next_sample = Instant::now() + Duration::from_secs(60);
    let end = started + Duration::from_secs(60 * minutes);
    let mut finishing_until = None;
    let mut reconnects = 0u32;
    loop {
        let now = Instant::now();
        if now < end && now >= next_job {
            let id = format!("{name}-{published:06}");
            let body = job(published);
            // The broker may be restarting (other tests on this machine, or a drill): the
            // upstream system would retry, and so does the soak.
            let mut tries = 0;
            while let Err(e) =
                disclose::intake::amqp::publish(&queue, vec![(id.clone(), body.clone())]).await
            {
                tries += 1;
                anyhow::ensure!(tries < 120, "cannot publish for 2 minutes: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            published_at.insert(id, Instant::now());
            published += 1;
            next_job += gap;
        }
        if now >= next_sample {
            let minute = (now - started).as_secs() / 60;
            let (rss, fds, sockets, threads) = sample(pid);
            latencies.sort_unstable();
            let pct = |p: f64| {
                latencies
                    .get(((latencies.len() as f64 - 1.0) * p).round() as usize)
                    .copied()
                    .unwrap_or(0)
            };
            println!(
                "| {minute} | {:.1} | {fds} | {sockets} | {threads} | {published} | {done} | {} | {} | {} |",
                rss as f64 / 1024.0,
                pct(0.5),
                pct(0.95),
                latencies.last().copied().unwrap_or(0)
            );
            samples.push((minute, rss, fds, sockets));
            latencies.clear();
            next_sample += Duration::from_secs(60);
            anyhow::ensure!(
                serve.0.try_wait()?.is_none(),
                "serve exited; see {}",
                work.join("serve.log").display()
            );
        }
        if now >= end && finishing_until.is_none() {
            finishing_until = Some(now + Duration::from_secs(120));
        }
        if let Some(t) = finishing_until
            && (done == published || now >= t)
        {
            break;
        }
        let wait = next_job
            .min(next_sample)
            .saturating_duration_since(Instant::now());
        let got = tokio::time::timeout(wait.min(Duration::from_millis(200)), completed.next());
        let d = match got.await {
            Ok(Some(Ok(d))) => Some(d),
            Ok(Some(Err(_)) | None) => {
                // A dead consumer may never answer again: subscribe afresh, until it works.
                reconnects += 1;
                let mut tries = 0;
                (conn, ch, completed) = loop {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    match subscribe(&queue.events_exchange, &events_q).await {
                        Ok(parts) => break parts,
                        Err(e) if tries < 120 => {
                            tries += 1;
                            eprintln!("waiting for the broker: {e}");
                        }
                        Err(e) => return Err(e),
                    }
                };
                None
            }
            Err(_) => None,
        };
        if let Some(d) = d {
            let v: Value = serde_json::from_slice(&d.data).unwrap_or_default();
            if let Some(t) = v["job_id"].as_str().and_then(|id| published_at.remove(id)) {
                latencies.push(t.elapsed().as_millis() as u64);
                done += 1;
            }
        }
    }

    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let status = serve.0.wait()?;
    let numbers = emu.received();
    // Every third job is the SMS notice to every subscriber: each number gets exactly that many.
    let sms_jobs = published.div_ceil(3) as usize;
    let more = numbers.values().filter(|&&c| c > sms_jobs).count();
    let fewer = subscribers as usize - numbers.values().filter(|&&c| c >= sms_jobs).count();
    println!();
    println!(
        "published {published}, completed {done}; the emulator received {} SMS for {sms_jobs} SMS notices to {subscribers}: {more} numbers got one twice, {fewer} missed one; serve exit {status}",
        numbers.values().sum::<usize>(),
    );
    if let (Some(first), Some(last)) = (samples.get(1).or(samples.first()), samples.last()) {
        println!(
            "RSS minute {} → {}: {:.1} → {:.1} MB; open files {} → {}; sockets {} → {}",
            first.0,
            last.0,
            first.1 as f64 / 1024.0,
            last.1 as f64 / 1024.0,
            first.2,
            last.2,
            first.3,
            last.3
        );
    }
    if reconnects > 0 {
        println!("the soak's event consumer reconnected {reconnects} times (the broker went away)");
    }
    for q in [&queue.jobs_queue, &queue.dead_letter_queue, &events_q] {
        let _ = ch
            .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
    for e in [
        &queue.jobs_exchange,
        &queue.dead_letter_exchange,
        &queue.events_exchange,
    ] {
        let _ = ch
            .exchange_delete(e.as_str().into(), ExchangeDeleteOptions::default())
            .await;
    }
    let _ = conn.close(200, "OK".into()).await;
    if done == published {
        let _ = std::fs::remove_dir_all(&work);
    } else {
        println!("kept for a look: {}", work.display());
    }
    Ok(())
}

/// Resident memory (KiB), open file descriptors, of them sockets, and threads of a process.
fn sample(pid: u32) -> (u64, usize, usize, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let (mut fds, mut sockets) = (0, 0);
    if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        for e in dir.flatten() {
            fds += 1;
            if std::fs::read_link(e.path())
                .map(|t| t.to_string_lossy().starts_with("socket:"))
                .unwrap_or(false)
            {
                sockets += 1;
            }
        }
    }
    (field("VmRSS:"), fds, sockets, field("Threads:") as usize)
}

/// A durable queue bound to `job.completed` on the events exchange, and a consumer of it. The
/// queue outlives a connection, so events published while the soak reconnects wait in it.
async fn subscribe(
    exchange: &str,
    queue: &str,
) -> anyhow::Result<(Connection, lapin::Channel, lapin::Consumer)> {
    let conn = Connection::connect(URL, ConnectionProperties::default()).await?;
    let ch = conn.create_channel().await?;
    ch.exchange_declare(
        exchange.into(),
        ExchangeKind::Topic,
        ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await?;
    ch.queue_declare(
        queue.into(),
        QueueDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await?;
    ch.queue_bind(
        queue.into(),
        exchange.into(),
        "job.completed".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await?;
    let consumer = ch
        .basic_consume(
            queue.into(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    Ok((conn, ch, consumer))
}

/// The service, killed if the soak ends early (an error, a panic) so that none is left behind.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
