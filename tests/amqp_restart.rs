//! The intake survives the broker going away: every connection closed by the broker, and the
//! broker application stopped and started again, in the middle of intake. Nothing is lost and
//! nothing recorded twice; events stay at least once and deduplicable by message id.
//!
//! These tests disturb every client of the shared broker, so they live in their own test binary
//! (cargo runs test binaries one after another) and take a lock to run one at a time here.

mod amqp_common;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use amqp_common::{Setup, drain_until, rabbitmqctl, ready, wait_empty, wait_until};

static ALONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Starts the broker application again whatever happens to the test.
struct BrokerUp;

impl Drop for BrokerUp {
    fn drop(&mut self) {
        rabbitmqctl(&["start_app"]);
        rabbitmqctl(&["await_startup"]);
    }
}

fn jobs(s: &Setup, prefix: &str, n: usize) -> Vec<(String, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let id = format!("{prefix}-{i:05}");
            (id.clone(), s.job(&id))
        })
        .collect()
}

/// Every job once in the ledger, one delivery each, the queue empty, and at least one
/// `job.accepted` event per job whose duplicates share a message id.
async fn everything_once(s: &Setup, tap: &str, total: usize) {
    let t = std::time::Instant::now();
    wait_until("every job in the ledger", 240, || s.jobs() >= total as i64).await;
    eprintln!("all jobs in after {:?}", t.elapsed());
    wait_empty(&s.jobs_queue, 60).await;
    assert_eq!(s.jobs(), total as i64);
    assert_eq!(s.count("SELECT count(*) FROM deliveries"), total as i64);
    assert_eq!(ready(&s.dlq).await, 0, "nothing dead-lettered");
    wait_until("every event published", 120, || {
        s.count("SELECT count(*) FROM events WHERE published_at IS NULL AND name = 'job.accepted'")
            == 0
    })
    .await;
    eprintln!("all events published after {:?}", t.elapsed());
    // Delivery events keep coming while the pages go out; the job.accepted ones are enough here.
    let got = drain_until(tap, Duration::from_secs(5), |got| {
        got.iter()
            .filter(|m| m.routing_key == "job.accepted")
            .filter_map(|m| m.message_id.as_deref())
            .collect::<HashSet<_>>()
            .len()
            >= total
    })
    .await;
    let mut ids_by_message: BTreeMap<String, String> = BTreeMap::new();
    let mut jobs_accepted = HashSet::new();
    for m in got.iter().filter(|m| m.routing_key == "job.accepted") {
        let body = String::from_utf8_lossy(&m.body).into_owned();
        let mid = m.message_id.clone().expect("message id");
        // A re-published event is the same event: same message id, same body.
        if let Some(prev) = ids_by_message.insert(mid.clone(), body.clone()) {
            assert_eq!(prev, body, "{mid} published twice with different bodies");
        }
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let job = v["job_id"]
            .as_str()
            .or_else(|| v["job"].as_str())
            .unwrap_or_else(|| panic!("job.accepted without its job: {body}"))
            .to_owned();
        jobs_accepted.insert(job);
    }
    assert_eq!(
        jobs_accepted.len(),
        total,
        "a job.accepted event for every job"
    );
    assert_eq!(
        ids_by_message.len(),
        total,
        "one distinct event per job after dedup"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn all_connections_closed_by_the_broker_during_intake_recovers_by_itself() {
    let _alone = ALONE.lock().await;
    let s = Setup::new("closeall");
    let t0 = std::time::Instant::now();
    let tap = s.bind_events().await;
    let total = 1500;
    let bodies = jobs(&s, "c", total);
    eprintln!("signed after {:?}", t0.elapsed());
    // The ledger held so that intake has messages in hand, unacknowledged, when the broker
    // closes the connection: their commits land after the close, their acks are lost, and the
    // broker redelivers them.
    let (mut serve, hold) = s.serve_with_jobs_in_hand(bodies).await;
    eprintln!("under way after {:?}", t0.elapsed());
    let at_close = s.jobs();
    assert!(
        at_close < total as i64,
        "intake finished before the close ({at_close}); the test proves nothing"
    );
    assert!(rabbitmqctl(&["close_all_connections", "test"]));
    eprintln!("closed after {:?}", t0.elapsed());
    drop(hold);
    everything_once(&s, &tap, total).await;
    serve.assert_running();
    let log = serve.log();
    assert!(log.contains("lost connection to RabbitMQ"), "{log}");
    assert!(log.contains("reconnected to RabbitMQ"), "{log}");
    eprintln!("checked after {:?}", t0.elapsed());
    assert_eq!(serve.stop().code(), Some(0));
    eprintln!("stopped after {:?}", t0.elapsed());
    drop(s);
    eprintln!("cleaned up after {:?}", t0.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broker_restart_during_intake_loses_nothing_and_records_nothing_twice() {
    let _alone = ALONE.lock().await;
    let s = Setup::new("restart");
    let tap = s.bind_events().await;
    let total = 1500;
    // The ledger held while the broker stops: intake surely has messages in hand whose acks
    // cannot reach the broker, which must redeliver them; the ledger must not record them twice.
    let (mut serve, hold) = s.serve_with_jobs_in_hand(jobs(&s, "r", total)).await;
    let at_stop = s.jobs();
    assert!(
        at_stop < total as i64,
        "intake finished before the stop ({at_stop}); the test proves nothing"
    );
    let _up = BrokerUp;
    assert!(rabbitmqctl(&["stop_app"]), "rabbitmqctl stop_app");
    drop(hold);
    // While the broker is away the service keeps running (deliveries go on from the ledger).
    tokio::time::sleep(Duration::from_secs(2)).await;
    serve.assert_running();
    assert!(rabbitmqctl(&["start_app"]), "rabbitmqctl start_app");
    assert!(rabbitmqctl(&["await_startup"]));
    everything_once(&s, &tap, total).await;
    serve.assert_running();
    let log = serve.log();
    assert!(log.contains("lost connection to RabbitMQ"), "{log}");
    assert!(log.contains("reconnected to RabbitMQ"), "{log}");
    assert_eq!(serve.stop().code(), Some(0));
}
