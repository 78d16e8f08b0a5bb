//! Intake throughput against the broker of this machine, run by hand:
//!
//! ```text
//! cargo build --release --bin disclose --example bench_intake
//! /work/target/release/examples/bench_intake [JOBS]      # default 50000
//! ```
//!
//! `BENCH_PREFETCH` sets the prefetch, `BENCH_AMQP_URL` another broker.
//!
//! Publishes JOBS small signed website jobs and measures, in the same run,
//! (b) the raw rate of the broker: a bare lapin consumer (same prefetch) acking the same bodies
//!     from a quorum queue declared like the jobs queue, and
//! (a) the dispatcher's intake rate: `disclose serve` (the release binary beside this example)
//!     consuming them, counted as jobs committed in its SQLite ledger over time.
//! Each job's one website delivery is scheduled a month ahead, so the delivery workers idle and
//! the figure is the intake's alone (decision, approval check and ledger commit per job).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures_lite::StreamExt;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use serde_json::Value;

/// The broker: this machine's, or `BENCH_AMQP_URL` (e.g. a second node started for measuring
/// while the first carries other work).
fn url() -> String {
    std::env::var("BENCH_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_string())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(50_000);
    // The consumer's prefetch, the same for the bare consumer and `serve` ([queue] prefetch).
    let prefetch: u16 = std::env::var("BENCH_PREFETCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(disclose::config::QueueSection::default().prefetch);
    let name = format!("bench-{}", std::process::id());
    let dir = std::env::temp_dir().join(format!("disclose-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let (secret, _) = disclose::approval::generate_key("bench", &dir.join("keys"))?;
    let (key_id, key) = disclose::approval::load_signing_key(&secret)?;

    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let template: Value = serde_json::from_str(&std::fs::read_to_string(
        repo.join("examples/jobs/src/01-pre-appointment-release.json"),
    )?)?;
    let now = disclose::clock::now();
    let t = Instant::now();
    let bodies: Vec<(String, Vec<u8>)> = (0..n)
        .map(|i| {
            let id = format!("b-{i:06}");
            let mut raw = template.clone();
            raw["id"] = id.clone().into();
            raw["channels"] = serde_json::json!(["website"]);
            raw["audience"] = serde_json::json!({"groups": [], "recipients": []});
            // Scheduled for later: the measure is intake (decision and planned deliveries
            // committed), not delivery competing with it for the two cores. 6.1 has no
            // publicity period, so no calendar year limits when this can be run.
            raw["category"] = "6.1".into();
            raw["template"] = "general".into();
            raw["data"] = serde_json::json!({"body": "干部工作信息公开基准测试。"});
            raw["schedule"] = serde_json::json!({
                "publish_at": (now + chrono::Duration::days(30)).to_rfc3339(),
            });
            raw["approval"]["approved_at"] = (now - chrono::Duration::hours(2)).to_rfc3339().into();
            disclose::approval::sign(&mut raw, &key_id, &key).unwrap();
            (id, serde_json::to_vec(&raw).unwrap())
        })
        .collect();
    let size = bodies[0].1.len();
    eprintln!(
        "signed {n} jobs of {size} bytes in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let cfg = disclose::config::QueueSection {
        amqp_url: Some(url()),
        jobs_exchange: format!("{name}.jobs"),
        jobs_queue: format!("{name}.jobs"),
        dead_letter_exchange: format!("{name}.dlx"),
        dead_letter_queue: format!("{name}.dead"),
        events_exchange: format!("{name}.events"),
        prefetch,
        ..Default::default()
    };

    // (b) The broker alone: the same bodies through a quorum queue like ours, consume + ack.
    let raw_cfg = disclose::config::QueueSection {
        jobs_exchange: format!("{name}.raw"),
        jobs_queue: format!("{name}.raw"),
        ..cfg.clone()
    };
    let t = Instant::now();
    disclose::intake::amqp::publish(&raw_cfg, bodies.clone()).await?;
    let publish_rate = n as f64 / t.elapsed().as_secs_f64();
    let conn = Connection::connect(&url(), ConnectionProperties::default()).await?;
    let ch = conn.create_channel().await?;
    ch.basic_qos(prefetch, BasicQosOptions::default()).await?;
    let mut consumer = ch
        .basic_consume(
            raw_cfg.jobs_queue.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let t = Instant::now();
    for _ in 0..n {
        let d = consumer.next().await.expect("consumer ended")?;
        d.ack(BasicAckOptions::default()).await?;
    }
    let raw_rate = n as f64 / t.elapsed().as_secs_f64();

    // (a) The dispatcher: publish, then let `disclose serve` take them.
    disclose::intake::amqp::publish(&cfg, bodies).await?;
    let bin = std::env::current_exe()?
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("disclose"))
        .expect("target dir");
    let ledger = dir.join("ledger.db");
    let mut serve = Command::new(&bin)
        .current_dir(&repo)
        .arg("serve")
        .env("DISCLOSE_LEDGER_URL", &ledger)
        .env("DISCLOSE_PATHS_OUTPUT_DIR", dir.join("out"))
        .env("DISCLOSE_APPROVAL_KEYS_DIR", dir.join("keys"))
        .envs(cfg.env())
        .env("DISCLOSE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()?;
    let count = || -> i64 {
        rusqlite::Connection::open_with_flags(&ledger, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .and_then(|db| db.query_row("SELECT count(*) FROM jobs", [], |r| r.get(0)))
            .unwrap_or(0)
    };
    let started = Instant::now();
    let mut first: Option<Instant> = None;
    let deadline = started + Duration::from_secs(1800);
    let mut last_report = Instant::now();
    loop {
        let c = count();
        if c > 0 && first.is_none() {
            first = Some(Instant::now());
        }
        if c as usize >= n {
            break;
        }
        if last_report.elapsed() > Duration::from_secs(5) {
            eprintln!("  {c} jobs after {:.0} s", started.elapsed().as_secs_f64());
            last_report = Instant::now();
        }
        if Instant::now() > deadline {
            anyhow::bail!("not all jobs in after 30 min ({c})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let first = first.unwrap_or(started);
    let intake_rate = n as f64 / first.elapsed().as_secs_f64();
    let _ = Command::new("kill")
        .args(["-TERM", &serve.id().to_string()])
        .status();
    let _ = serve.wait();

    // Clean up the broker side.
    for q in [&raw_cfg.jobs_queue, &cfg.jobs_queue, &cfg.dead_letter_queue] {
        let _ = ch
            .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
    for e in [
        &raw_cfg.jobs_exchange,
        &cfg.jobs_exchange,
        &cfg.dead_letter_exchange,
        &cfg.events_exchange,
    ] {
        let _ = ch
            .exchange_delete(e.as_str().into(), ExchangeDeleteOptions::default())
            .await;
    }
    let _ = conn.close(200, "OK".into()).await;
    let _ = std::fs::remove_dir_all(&dir);
    let _ = BasicProperties::default();

    println!("jobs: {n} × {size} bytes, prefetch {prefetch}");
    println!("publish + confirm (quorum):      {publish_rate:>8.0} msg/s");
    println!("(b) raw consume + ack (quorum):  {raw_rate:>8.0} msg/s");
    println!(
        "(a) disclose intake (committed): {intake_rate:>8.0} jobs/s  ({:.0}% of raw)",
        100.0 * intake_rate / raw_rate
    );
    Ok(())
}
