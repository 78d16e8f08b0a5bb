//! Two `disclose serve` replicas on one PostgreSQL ledger and one RabbitMQ queue (issue 7;
//! SPEC §5: exactly once per job, channel and recipient, also when a process dies).
//!
//! Four public notices to 25,000 SMS subscribers each — 100,000 deliveries — are published to
//! the queue; both replicas take jobs from it and claim deliveries from the ledger with
//! `FOR UPDATE SKIP LOCKED`, sending through the Tencent emulator on 127.0.0.1. One replica is
//! killed with SIGKILL midway; the other finishes everything, including what the dead one had in
//! flight: its leases run out, those deliveries become `unknown`, and the status query settles
//! them. The emulator, which records what really went out, must have received every number
//! exactly once.
//!
//! Runs alone (its own test binary): it loads the machine for a minute or two.

mod amqp_common;

#[path = "emulators/tencent.rs"]
mod tencent_emulator;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use amqp_common::{Serve, Setup};
use tencent_emulator::Emulator;

#[path = "common/pg.rs"]
mod pg;

use pg::PgSchema;

const GROUPS: usize = 4;
const PER_GROUP: usize = 25_000;

/// One number from the ledger. The blocking client runs on a thread of its own: it must not be
/// called on the test's async runtime.
fn count(schema: &PgSchema, sql: &str) -> i64 {
    let (url, sql) = (schema.url(), sql.to_string());
    std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).ok()?;
        c.query_one(sql.as_str(), &[])
            .ok()?
            .try_get::<_, i64>(0)
            .ok()
    })
    .join()
    .unwrap()
    .unwrap_or(-1)
}

/// Deliveries per state.
fn states(schema: &PgSchema) -> HashMap<String, i64> {
    let url = schema.url();
    std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        c.query("SELECT state, count(*) FROM deliveries GROUP BY state", &[])
            .unwrap()
            .into_iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1)))
            .collect()
    })
    .join()
    .unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// SMS deliveries a replica recorded as delivered, from its own `/metrics`.
async fn delivered_by(port: u16) -> u64 {
    let text = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .bearer_auth("replicas-test")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| {
            l.strip_prefix("disclose_deliveries_total{channel=\"sms\",outcome=\"delivered\"} ")
        })
        .map_or(0, |n| n.trim().parse().unwrap())
}

fn number(i: usize) -> String {
    format!("+86139{i:08}")
}

/// Wait for `done`, failing with both replicas' logs after `secs`.
fn until(what: &str, secs: u64, logs: &[&Serve], mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        if Instant::now() > deadline {
            let tails: Vec<String> = logs
                .iter()
                .map(|s| {
                    let log = s.log();
                    let lines: Vec<&str> = log.lines().collect();
                    lines[lines.len().saturating_sub(25)..].join("\n")
                })
                .collect();
            panic!(
                "waited {secs} s for {what}; the replicas' logs:\n{}",
                tails.join("\n----\n")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_share_the_work_and_one_finishes_what_a_killed_one_left() {
    let s = Setup::new("replicas");
    let schema = PgSchema::new("replicas");
    let tencent = Emulator::start().await;
    // Each call is answered 40 ms after its messages went out, as a provider takes its time: a
    // replica's workers then have calls in flight nearly always, so the kill below leaves some
    // (answered at once, a kill could fall between two calls and leave nothing to settle).
    tencent.set_mode(tencent_emulator::Mode::Hang(Duration::from_millis(40)));

    // The shipped channels with SMS through the emulator: batches of 50 and two workers per
    // replica, so that a kill leaves at most 500 deliveries in flight (the status query that
    // settles them runs at Tencent's 20 a second), and a status query that may settle an
    // unknown at once.
    let channels = s.path("channels");
    std::fs::create_dir_all(&channels).unwrap();
    for entry in std::fs::read_dir(amqp_common::repo().join("channels")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, channels.join(path.file_name().unwrap())).unwrap();
    }
    std::fs::write(
        channels.join("sms.toml"),
        format!(
            "channel = \"sms\"\nbatch_size = 50\nconcurrency = 2\n\
             [retry]\nmax_attempts = 10\nbase_ms = 50\nmax_ms = 500\n\
             [transport]\ntype = \"tencent_sms\"\nendpoint = \"{}\"\nsms_sdk_app_id = \"{}\"\n\
             secret_id_env = \"TEST_TENCENT_ID\"\nsecret_key_env = \"TEST_TENCENT_KEY\"\n\
             timeout_ms = 5000\nresolve_after_secs = 0\nstatus_queries_per_second = 20\n",
            tencent.url,
            tencent_emulator::SMS_SDK_APP_ID
        ),
    )
    .unwrap();
    let env: Vec<(&str, String)> = vec![
        ("DISCLOSE_LEDGER_URL", schema.url()),
        (
            "DISCLOSE_PATHS_CHANNELS_DIR",
            channels.display().to_string(),
        ),
        ("DISCLOSE_ENGINE_LEASE_SECS", "2".into()),
        ("TEST_TENCENT_ID", tencent_emulator::SECRET_ID.into()),
        ("TEST_TENCENT_KEY", tencent_emulator::SECRET_KEY.into()),
    ];

    // The directory: four public groups of 25,000 subscribers, imported into PostgreSQL.
    for g in 0..GROUPS {
        let mut csv = String::from("id,name,phone\n");
        for i in g * PER_GROUP..(g + 1) * PER_GROUP {
            csv.push_str(&format!("s{i:06},订阅者{i},{}\n", number(i)));
        }
        let file = s.path(&format!("g{g}.csv"));
        std::fs::write(&file, csv).unwrap();
        let out = std::process::Command::new(amqp_common::BIN)
            .current_dir(amqp_common::repo())
            .args([
                "directory",
                "import",
                "--group",
                &format!("g{g}"),
                "--kind",
                "public",
            ])
            .arg(&file)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // Each replica with its own HTTP port, to read its own /metrics: how much each delivered.
    let ports = [free_port(), free_port()];
    let with_port = |port: u16| {
        let mut e = env.clone();
        e.push(("DISCLOSE_SERVE_HTTP_ADDR", format!("127.0.0.1:{port}")));
        e.push(("DISCLOSE_API_TOKEN", "replicas-test".into()));
        e
    };
    let serve = |port: u16| {
        let env = with_port(port);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        s.serve_with(&env)
    };
    let mut a = serve(ports[0]);
    let mut b = serve(ports[1]);
    until("both replicas to consume", 60, &[&a, &b], || {
        a.log().contains("consuming jobs from RabbitMQ")
            && b.log().contains("consuming jobs from RabbitMQ")
    });
    let jobs: Vec<(String, Vec<u8>)> = (0..GROUPS)
        .map(|g| {
            let id = format!("replicas-{g}");
            let mut raw = s.job_value(&id);
            raw["channels"] = serde_json::json!(["sms"]);
            raw["audience"] = serde_json::json!({"groups": [format!("g{g}")], "recipients": []});
            disclose::approval::sign(&mut raw, &s.key_id, &s.key).unwrap();
            (id, serde_json::to_vec(&raw).unwrap())
        })
        .collect();
    let n = GROUPS * PER_GROUP;
    let started = Instant::now();
    s.publish(jobs).await;

    // Midway: a quarter of the numbers out. SIGKILL replica A.
    until("the fan-out to progress", 180, &[&a, &b], || {
        tencent.received().len() >= n / 4
    });
    a.assert_running();
    b.assert_running();
    let (by_a, by_b) = (delivered_by(ports[0]).await, delivered_by(ports[1]).await);
    eprintln!("before the kill: replica A delivered {by_a}, replica B {by_b}");
    assert!(
        by_a > 0 && by_b > 0,
        "both replicas share the work (A {by_a}, B {by_b})"
    );
    a.kill9();
    let at_kill = tencent.received().len();
    assert!(
        at_kill < n,
        "the fan-out finished before the kill; the test proves nothing"
    );
    eprintln!(
        "replica A killed after {at_kill} of {n} numbers, {:?} in",
        started.elapsed()
    );

    let mut last = Instant::now();
    until("replica B to settle every delivery", 600, &[&b], || {
        let st = states(&schema);
        if last.elapsed() > Duration::from_secs(10) {
            eprintln!("{:?}: {st:?}", started.elapsed());
            last = Instant::now();
        }
        st.get("delivered").copied().unwrap_or(0) as usize == n
    });
    eprintln!("all {n} delivered {:?} after publishing", started.elapsed());
    // Anything sent twice would show by now: the workers poll every second.
    std::thread::sleep(Duration::from_millis(2_000));
    b.assert_running();
    let status = b.stop();
    assert!(status.success(), "{status}\n{}", b.log());

    // Each job accepted exactly once, whichever replica took it.
    assert_eq!(count(&schema, "SELECT count(*) FROM jobs"), GROUPS as i64);
    assert_eq!(
        states(&schema),
        HashMap::from([("delivered".to_string(), n as i64)])
    );
    let received = tencent.received();
    let twice: Vec<_> = received.iter().filter(|(_, c)| **c > 1).take(10).collect();
    assert!(twice.is_empty(), "numbers sent more than once: {twice:?}");
    assert_eq!(received.len(), n, "every number, none missing");
    for i in 0..n {
        assert_eq!(received.get(&number(i)), Some(&1), "{}", number(i));
    }
    // The kill left deliveries in flight, which the survivor settled by the status query.
    let expired = count(
        &schema,
        "SELECT count(*) FROM audit WHERE kind = 'deliveries.recorded' AND body LIKE '%lease_expired%'",
    );
    assert!(
        expired > 0,
        "the kill left nothing in flight; the test proves less than it says"
    );
    let verify = std::process::Command::new(amqp_common::BIN)
        .current_dir(amqp_common::repo())
        .args(["audit", "verify"])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}
