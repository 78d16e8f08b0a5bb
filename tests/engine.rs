//! The delivery engine against a scripted channel: what the engine does with each kind of
//! outcome — retry with backoff, honour Retry-After, give up after the limit, keep permanent
//! failures final, and resolve unknowns by the status query instead of resending.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use disclose::channels::{Batch, BoxFuture, Channel, Outcome, Transport};
use disclose::job::ChannelKind;
use disclose::ledger::{Member, State};
use disclose::policy::GroupKind;

use common::engine::{Setup, channel_config, release};

/// Answers for each recipient, one per attempt; the last answer repeats.
struct Scripted {
    script: HashMap<String, Vec<Outcome>>,
    calls: Mutex<HashMap<String, usize>>,
    resolved: Mutex<Vec<String>>,
    batches: AtomicUsize,
}

impl Channel for Scripted {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Sms
    }
    fn transport(&self) -> &str {
        "scripted"
    }
    fn deliver<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Vec<Outcome>> {
        self.batches.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            let mut calls = self.calls.lock().unwrap();
            batch
                .items
                .iter()
                .map(|item| {
                    let n = calls.entry(item.recipient.clone()).or_insert(0);
                    let script = &self.script[&item.recipient];
                    let outcome = script[(*n).min(script.len() - 1)].clone();
                    *n += 1;
                    outcome
                })
                .collect()
        })
    }
    fn resolve<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Vec<Outcome>> {
        Box::pin(async move {
            let mut resolved = self.resolved.lock().unwrap();
            batch
                .items
                .iter()
                .map(|i| {
                    resolved.push(i.recipient.clone());
                    Outcome::Delivered {
                        reference: Some("from-status-query".into()),
                    }
                })
                .collect()
        })
    }
}

fn transient() -> Outcome {
    Outcome::Failed {
        code: "InternalError".into(),
        permanent: false,
        detail: "503".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_retries_gives_up_and_resolves_as_the_outcomes_say() {
    let setup = Setup::new("engine");
    let ledger = setup.ledger.clone();
    let people = ["ok", "flaky", "throttled", "hopeless", "invalid", "lost"];
    let members: Vec<Member> = people
        .iter()
        .enumerate()
        .map(|(i, id)| Member {
            id: id.to_string(),
            name: id.to_string(),
            phone: Some(format!("+861390000000{i}")),
            ..Member::default()
        })
        .collect();
    let body = release("engine-1", "6.1", "public");
    let job = disclose::job::parse(body.as_bytes()).unwrap().job;
    setup.accept(
        ("subscribers", GroupKind::Public),
        members,
        &job,
        &body,
        ChannelKind::Sms,
    );

    let delivered = || Outcome::Delivered { reference: None };
    let script: HashMap<String, Vec<Outcome>> = [
        ("ok", vec![delivered()]),
        ("flaky", vec![transient(), transient(), delivered()]),
        (
            "throttled",
            vec![
                Outcome::RetryAfter {
                    after: Duration::from_millis(300),
                    code: "LimitExceeded".into(),
                },
                delivered(),
            ],
        ),
        ("hopeless", vec![transient()]),
        (
            "invalid",
            vec![Outcome::Failed {
                code: "InvalidParameterValue.IncorrectPhoneNumber".into(),
                permanent: true,
                detail: String::new(),
            }],
        ),
        (
            "lost",
            vec![Outcome::Unknown {
                detail: "timed out after handing over".into(),
            }],
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let channel = Arc::new(Scripted {
        script,
        calls: Default::default(),
        resolved: Default::default(),
        batches: AtomicUsize::new(0),
    });
    let config = channel_config(ChannelKind::Sms, Transport::Outbox { dir: None }, 200, None);
    let engine = setup.engine(&config, channel.clone());
    let started = std::time::Instant::now();
    engine.drain().await.unwrap();

    let rows: HashMap<String, (String, u32, Option<String>)> = ledger
        .deliveries("engine-1", 100)
        .unwrap()
        .into_iter()
        .map(|d| (d.recipient, (d.state, d.attempts, d.code)))
        .collect();
    let calls = channel.calls.lock().unwrap().clone();
    assert_eq!(rows["ok"], ("delivered".into(), 1, None));
    assert_eq!(
        (rows["flaky"].0.as_str(), rows["flaky"].1),
        ("delivered", 3)
    );
    assert_eq!(
        (rows["throttled"].0.as_str(), rows["throttled"].1),
        ("delivered", 2)
    );
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "Retry-After was not honoured"
    );
    assert_eq!(rows["hopeless"].0, "failed");
    assert_eq!(calls["hopeless"], 3, "gave up after max_attempts, no more");
    assert_eq!(
        rows["invalid"],
        (
            "failed".into(),
            1,
            Some("InvalidParameterValue.IncorrectPhoneNumber".into())
        )
    );
    assert_eq!(calls["invalid"], 1, "a permanent failure is not retried");
    assert_eq!(
        rows["lost"].0, "unknown",
        "an unknown is an outcome, not a failure to retry"
    );
    assert_eq!(calls["lost"], 1, "never resent blindly");

    // A later pass asks the status query about the unknown one instead of sending again.
    setup.recheck_unknown_now();
    let engine = setup.engine(&config, channel.clone());
    engine.drain().await.unwrap();
    assert_eq!(*channel.resolved.lock().unwrap(), ["lost"]);
    assert_eq!(channel.calls.lock().unwrap()["lost"], 1);
    let lost = ledger
        .deliveries("engine-1", 100)
        .unwrap()
        .into_iter()
        .find(|d| d.recipient == "lost")
        .unwrap();
    assert_eq!(
        (lost.state.as_str(), lost.code.as_deref()),
        ("delivered", Some("from-status-query"))
    );
    assert_eq!(ledger.counts(&[]).unwrap().get(&State::Pending), None);
}

/// Delivers every item, and fires the service's shutdown from inside its first call: the worker
/// stops with that batch sent and its outcomes not yet recorded.
struct StopsTheService {
    stop: Mutex<Option<disclose::shutdown::Trigger>>,
    sent: AtomicUsize,
}

impl Channel for StopsTheService {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Sms
    }
    fn transport(&self) -> &str {
        "stops-the-service"
    }
    fn deliver<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Vec<Outcome>> {
        if let Some(stop) = self.stop.lock().unwrap().take() {
            stop.fire();
        }
        self.sent.fetch_add(batch.items.len(), Ordering::SeqCst);
        Box::pin(async move {
            batch
                .items
                .iter()
                .map(|item| Outcome::Delivered {
                    reference: Some(format!("ref-{}", item.recipient)),
                })
                .collect()
        })
    }
    fn resolve<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Vec<Outcome>> {
        Box::pin(async move {
            vec![
                Outcome::Unknown {
                    detail: "not asked".into()
                };
                batch.items.len()
            ]
        })
    }
}

/// A worker records each batch while it sends the next (`Engine::step_behind`); when the
/// service stops, the batch it sent last is recorded before it goes, not left `sending` for the
/// lease to run out and a status query to learn what the worker knew.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_worker_records_the_batch_it_sent_last() {
    let setup = Setup::new("engine-stop");
    let job = disclose::job::parse(release("engine-stop", "6.1", "public").as_bytes())
        .unwrap()
        .job;
    setup.accept_sms_subscribers(&job, 30);
    let (trigger, shutdown) = disclose::shutdown::channel();
    let channel = Arc::new(StopsTheService {
        stop: Mutex::new(Some(trigger)),
        sent: AtomicUsize::new(0),
    });
    let mut config = channel_config(ChannelKind::Sms, Transport::Outbox { dir: None }, 10, None);
    config.concurrency = Some(1);
    let engine = setup.engine(&config, channel.clone());
    tokio::time::timeout(
        Duration::from_secs(30),
        engine.run(shutdown, Arc::new(tokio::sync::Notify::new())),
    )
    .await
    .expect("the service stops");

    assert_eq!(
        channel.sent.load(Ordering::SeqCst),
        30,
        "one claim, sent once"
    );
    let rows = setup.ledger.deliveries("engine-stop", 100).unwrap();
    assert_eq!(rows.len(), 30);
    for d in &rows {
        assert_eq!(
            (d.state.as_str(), d.code.as_deref()),
            ("delivered", Some(format!("ref-{}", d.recipient).as_str())),
            "{d:?}"
        );
    }
}
