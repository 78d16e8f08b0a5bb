//! The events publisher survives the broker going away while it publishes (issue 8, 1(b);
//! SPEC §5): the broker application stopped and started, and every connection closed by the
//! broker, in the middle of a stream of thousands of events. Every event the ledger holds reaches
//! a consumer bound to the events exchange; none is lost.
//!
//! Events are at least once by design (src/events.rs): an event the broker took but whose confirm
//! was lost with the connection is published again. Raw duplicates cannot be ruled out by the
//! publisher alone (only the broker knows whether it enqueued a message whose confirm never
//! arrived), so every message carries `message_id = disclose-event-<seq>` and these tests check
//! what a consumer relies on: after dedup by message id, exactly the ledger's events, each
//! duplicate byte-for-byte the same event. They print how many raw duplicates they saw.
//!
//! These tests disturb every client of the shared broker, so they live in their own test binary
//! (cargo runs test binaries one after another) and take a lock to run one at a time here.

mod amqp_common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use amqp_common::{BIN, Setup, drain_until, rabbitmqctl, repo, wait_until};

static ALONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Jobs per test: each gives `job.accepted`, a `delivery.delivered` and a `job.completed`
/// event (one SMS each).
const JOBS: usize = 1000;

/// Starts the broker application again whatever happens to the test.
struct BrokerUp;

impl Drop for BrokerUp {
    fn drop(&mut self) {
        rabbitmqctl(&["start_app"]);
        rabbitmqctl(&["await_startup"]);
    }
}

/// The shipped channel files with the SMS lane (the outbox: a line per message) paced at 100
/// messages a second, one per call, so that the deliveries and their events stream for about
/// ten seconds instead of finishing before the broker can be disturbed. Quiet hours and
/// per-number limits are left out: every job goes to the same one subscriber, at any hour.
fn paced_channels(s: &Setup) -> String {
    let dir = s.path("channels");
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(repo().join("channels")).unwrap() {
        let path = entry.unwrap().path();
        let text: String = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("quiet_hours") && !l.starts_with("recipient_limits"))
            .map(|l| format!("{l}\n"))
            .collect();
        let text = if path.file_name().unwrap() == "sms.toml" {
            let paced = text.replace(
                "batch_size = 200\n",
                "batch_size = 1\ncalls_per_second = 100\n",
            );
            assert_ne!(paced, text, "sms.toml changed shape");
            paced
        } else {
            text
        };
        std::fs::write(dir.join(path.file_name().unwrap()), text).unwrap();
    }
    dir.to_str().unwrap().to_string()
}

/// `disclose ARGS` on this test's ledger and channels, which must succeed.
fn disclose(s: &Setup, channels: &str, args: &[&str]) {
    let out = Command::new(BIN)
        .current_dir(repo())
        .args(args)
        .env("DISCLOSE_LEDGER_URL", s.ledger())
        .env("DISCLOSE_PATHS_CHANNELS_DIR", channels)
        .env("DISCLOSE_PATHS_OUTPUT_DIR", s.path("out"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "disclose {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A public notice by SMS to the one subscriber, signed with this test's key.
fn sms_job(s: &Setup, id: &str) -> Vec<u8> {
    let mut raw = s.job_value(id);
    raw["channels"] = serde_json::json!(["sms"]);
    raw["audience"] = serde_json::json!({"groups": ["subscribers"], "recipients": []});
    disclose::approval::sign(&mut raw, &s.key_id, &s.key).unwrap();
    serde_json::to_vec(&raw).unwrap()
}

async fn start(s: &Setup, prefix: &str) -> (String, amqp_common::Serve) {
    start_with(s, prefix, &[]).await
}

/// [`start`], with more of `serve`'s environment (another broker URL).
async fn start_with(s: &Setup, prefix: &str, env: &[(&str, &str)]) -> (String, amqp_common::Serve) {
    let channels = paced_channels(s);
    let csv = s.path("subscribers.csv");
    std::fs::write(&csv, "id,name,phone\nm1,订阅者,+8613900000001\n").unwrap();
    disclose(
        s,
        &channels,
        &[
            "directory",
            "import",
            "--group",
            "subscribers",
            "--kind",
            "public",
            csv.to_str().unwrap(),
        ],
    );
    let tap = s.bind_events().await;
    let bodies = (0..JOBS)
        .map(|i| {
            let id = format!("{prefix}-{i:05}");
            (id.clone(), sms_job(s, &id))
        })
        .collect();
    s.publish(bodies).await;
    let mut env = env.to_vec();
    env.push(("DISCLOSE_PATHS_CHANNELS_DIR", &channels));
    let serve = s.serve_with(&env);
    (tap, serve)
}

fn delivered(s: &Setup) -> i64 {
    s.count("SELECT count(*) FROM deliveries WHERE state = 'delivered'")
}

fn unpublished(s: &Setup) -> i64 {
    s.count("SELECT count(*) FROM events WHERE published_at IS NULL")
}

/// The ledger's events: message id → (name, payload), read through the ledger (an outcome's
/// event is spelled out from its audit entry when read).
fn ledger_events(ledger: &Path) -> BTreeMap<String, (String, String)> {
    let ledger = disclose::ledger::sqlite::SqliteLedger::open(ledger).unwrap();
    ledger
        .events(0, 1 << 20)
        .unwrap()
        .into_iter()
        .map(|e| (format!("disclose-event-{}", e.seq), (e.name, e.payload)))
        .collect()
}

/// Every delivery done and every event published; then the tap holds exactly the ledger's
/// events after dedup by message id, each duplicate the same event. Returns the raw duplicates.
/// A wait that runs out shows the service's log, which says what the publisher was doing.
async fn every_event_once(s: &Setup, tap: &str, serve: &amqp_common::Serve) -> usize {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let (delivered, jobs, unpublished) = (delivered(s), s.jobs(), unpublished(s));
        if delivered >= JOBS as i64 && jobs == JOBS as i64 && unpublished == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after 180 s waiting for every delivery and every event published: \
             {delivered} delivered, {jobs} jobs, {unpublished} events unpublished; the log:\n{}",
            serve.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let expected = ledger_events(&s.ledger());
    // Each job: job.accepted, at least one delivery.delivered, job.completed.
    assert!(
        expected.len() >= 3 * JOBS,
        "only {} events in the ledger",
        expected.len()
    );
    let want: BTreeSet<String> = expected.keys().cloned().collect();
    let got = drain_until(tap, Duration::from_secs(5), |got| {
        got.iter()
            .filter_map(|m| m.message_id.as_deref())
            .collect::<BTreeSet<_>>()
            .len()
            >= want.len()
    })
    .await;
    // Anything still on its way would come within this quiet second.
    let late = amqp_common::drain(tap, Duration::from_secs(1)).await;
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for m in got.iter().chain(&late) {
        let id = m
            .message_id
            .clone()
            .unwrap_or_else(|| panic!("an event without a message id: {m:?}"));
        let (name, payload) = expected
            .get(&id)
            .unwrap_or_else(|| panic!("{id} is not an event of the ledger"));
        assert_eq!(&m.routing_key, name, "{id}: routing key = event name");
        assert_eq!(
            String::from_utf8_lossy(&m.body),
            *payload,
            "{id}: every copy is the ledger's event"
        );
        *seen.entry(id).or_default() += 1;
    }
    let missing: Vec<&String> = want.iter().filter(|id| !seen.contains_key(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} events never arrived, e.g. {:?}",
        missing.len(),
        want.len(),
        &missing[..missing.len().min(5)]
    );
    assert_eq!(
        seen.len(),
        want.len(),
        "after dedup: exactly the ledger's events"
    );
    let raw_duplicates: usize = seen.values().map(|n| n - 1).sum();
    eprintln!(
        "{} events, {} messages received, {raw_duplicates} raw duplicates (same message id)",
        want.len(),
        got.len() + late.len()
    );
    raw_duplicates
}

/// How many log lines of the events publisher say `what`.
fn events_lines(log: &str, what: &str) -> usize {
    task_lines(log, "events", what)
}

/// How many log lines of the reconnecting `task` (`events`, `intake`) say `what`.
fn task_lines(log: &str, task: &str, what: &str) -> usize {
    log.lines()
        .filter(|l| l.contains(what) && l.contains(&format!("task=\"{task}\"")))
        .count()
}

/// `task` logged `times` losses of the broker and as many recoveries: each once, however many
/// reconnection attempts it took.
fn assert_lost_and_back(log: &str, task: &str, times: usize) {
    for what in ["lost connection to RabbitMQ", "reconnected to RabbitMQ"] {
        assert_eq!(
            task_lines(log, task, what),
            times,
            "{task}: {what:?}\n{log}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broker_restart_while_events_are_published_loses_none() {
    let _alone = ALONE.lock().await;
    let s = Setup::new("ev-restart");
    let t0 = Instant::now();
    let (tap, mut serve) = start(&s, "er").await;
    wait_until("deliveries and events under way", 60, || {
        delivered(&s) >= 100
            && s.count("SELECT count(*) FROM events WHERE published_at IS NOT NULL") > 0
    })
    .await;
    let _up = BrokerUp;
    assert!(rabbitmqctl(&["stop_app"]), "rabbitmqctl stop_app");
    let at_stop = delivered(&s);
    eprintln!(
        "broker stopped after {:?} at {at_stop} delivered",
        t0.elapsed()
    );
    assert!(
        at_stop < JOBS as i64 - 200,
        "the fan-out was nearly over when the broker stopped; the test proves little"
    );
    // While the broker is away deliveries go on, and their events wait in the ledger.
    tokio::time::sleep(Duration::from_secs(2)).await;
    serve.assert_running();
    assert!(
        delivered(&s) > at_stop,
        "deliveries must go on while the broker is away"
    );
    let waiting = unpublished(&s);
    assert!(waiting > 0, "events of the outage wait in the ledger");
    assert!(rabbitmqctl(&["start_app"]), "rabbitmqctl start_app");
    assert!(rabbitmqctl(&["await_startup"]));
    eprintln!(
        "broker up again after {:?}; {waiting} events were waiting",
        t0.elapsed()
    );
    every_event_once(&s, &tap, &serve).await;
    serve.assert_running();
    let log = serve.log();
    assert_lost_and_back(&log, "events", 1);
    assert_eq!(serve.stop().code(), Some(0));
    eprintln!("done after {:?}", t0.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_closed_by_the_broker_while_events_are_published_lose_none() {
    let _alone = ALONE.lock().await;
    let s = Setup::new("ev-close");
    let t0 = Instant::now();
    let (tap, mut serve) = start(&s, "ec").await;
    // Twice, a few seconds apart, while events stream out.
    for (round, at_least) in [(1, 100), (2, 400)] {
        wait_until("deliveries and events under way", 60, || {
            delivered(&s) >= at_least
        })
        .await;
        let at_close = delivered(&s);
        assert!(
            at_close < JOBS as i64 - 100,
            "the fan-out was nearly over at close {round}; the test proves little"
        );
        assert!(rabbitmqctl(&["close_all_connections", "test"]));
        eprintln!(
            "close {round} after {:?} at {at_close} delivered",
            t0.elapsed()
        );
        wait_until("the publisher to reconnect", 30, || {
            events_lines(&serve.log(), "reconnected to RabbitMQ") >= round
        })
        .await;
    }
    every_event_once(&s, &tap, &serve).await;
    serve.assert_running();
    let log = serve.log();
    assert_lost_and_back(&log, "events", 2);
    assert_eq!(serve.stop().code(), Some(0));
    eprintln!("done after {:?}", t0.elapsed());
}

/// A broker that stops answering without closing its connections (a hung node, a network
/// partition: here a proxy that goes silent both ways) is noticed by the heartbeat `disclose`
/// asks for when the URL names none (10 s: given up after 20 s), and new connections carry
/// every event. Before, the broker's 60 s heartbeat held the publisher for two minutes.
#[tokio::test(flavor = "multi_thread")]
async fn a_broker_gone_silent_is_given_up_and_loses_no_event() {
    let _alone = ALONE.lock().await;
    let s = Setup::new("ev-silent");
    let t0 = Instant::now();
    let proxy = amqp_common::Proxy::start().await;
    let url = proxy.url("");
    let (tap, mut serve) = start_with(&s, "es", &[("DISCLOSE_QUEUE_AMQP_URL", &url)]).await;
    wait_until("deliveries and events under way", 60, || {
        delivered(&s) >= 100
            && s.count("SELECT count(*) FROM events WHERE published_at IS NOT NULL") > 0
    })
    .await;
    proxy.silence();
    let at_silence = delivered(&s);
    eprintln!(
        "the broker went silent after {:?} at {at_silence} delivered",
        t0.elapsed()
    );
    assert!(
        at_silence < JOBS as i64 - 200,
        "the fan-out was nearly over when the broker went silent; the test proves little"
    );
    wait_until("both tasks to reconnect", 60, || {
        let log = serve.log();
        events_lines(&log, "reconnected to RabbitMQ") >= 1
            && task_lines(&log, "intake", "reconnected to RabbitMQ") >= 1
    })
    .await;
    eprintln!("both tasks reconnected after {:?}", t0.elapsed());
    every_event_once(&s, &tap, &serve).await;
    serve.assert_running();
    let log = serve.log();
    assert_lost_and_back(&log, "events", 1);
    assert_lost_and_back(&log, "intake", 1);
    assert_eq!(serve.stop().code(), Some(0));
    eprintln!("done after {:?}", t0.elapsed());
}

/// A broker that accepts connections and never answers the handshake is given up after twice
/// the heartbeat and tried again; once it answers, every job is taken and every event
/// published. Before, the first connection attempt waited for ever: heartbeats only start once
/// the handshake is done.
#[tokio::test(flavor = "multi_thread")]
async fn a_broker_that_never_answers_the_handshake_is_tried_again() {
    let _alone = ALONE.lock().await;
    let s = Setup::new("ev-mute");
    let proxy = amqp_common::Proxy::start().await;
    proxy.hold_new(true);
    let url = proxy.url("heartbeat=2");
    let (tap, mut serve) = start_with(&s, "em", &[("DISCLOSE_QUEUE_AMQP_URL", &url)]).await;
    // A handshake may take 4 s (twice the heartbeat); then each task gives its attempt up.
    wait_until("both tasks to give the handshake up", 30, || {
        let log = serve.log();
        events_lines(&log, "lost connection to RabbitMQ") == 1
            && task_lines(&log, "intake", "lost connection to RabbitMQ") == 1
    })
    .await;
    serve.assert_running();
    assert_eq!(
        s.jobs(),
        0,
        "no job can arrive through a broker that never answers"
    );
    let log = serve.log();
    assert!(
        log.contains("did not answer the connection handshake within 4 s"),
        "{log}"
    );
    proxy.hold_new(false);
    every_event_once(&s, &tap, &serve).await;
    serve.assert_running();
    let log = serve.log();
    assert!(log.contains("consuming jobs from RabbitMQ"), "{log}");
    assert_lost_and_back(&log, "events", 1);
    assert_lost_and_back(&log, "intake", 1);
    assert_eq!(serve.stop().code(), Some(0));
}
