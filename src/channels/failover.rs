//! Provider failover for one channel (issue 4, item 7): a second provider takes over when the
//! first is down — a run of calls that all failed for want of the provider (5xx, no
//! connection, timeouts) — and keeps the channel for a cool-down before the first is tried
//! again. Which provider carried a delivery is recorded with it: its reference (or, for a
//! failure, its detail) begins with the provider's name, e.g. `aliyun_sms:BIZ123`.
//!
//! Failover never sends a message twice. Deliveries the first provider surely did not send
//! (refused connection, 5xx: `Failed { permanent: false }`) go to the second provider at once;
//! deliveries it may have sent (a timeout: `Unknown`) stay unknown, and the status query asks
//! both providers: only when neither has it is it resent.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Batch, BoxFuture, Channel, Outcome};
use crate::job::ChannelKind;

pub struct Failover {
    primary: (String, Arc<dyn Channel>),
    secondary: (String, Arc<dyn Channel>),
    after_failed_calls: u32,
    cool_down: Duration,
    state: Mutex<Health>,
    transport: String,
}

#[derive(Default)]
struct Health {
    /// Calls in a row to the primary that failed as a whole.
    failed_calls: u32,
    /// While set and in the future, the secondary carries the channel.
    failed_over_until: Option<Instant>,
}

impl Failover {
    pub fn new(
        primary: (String, Arc<dyn Channel>),
        secondary: (String, Arc<dyn Channel>),
        after_failed_calls: u32,
        cool_down: Duration,
    ) -> Failover {
        let transport = format!("{} (failover: {})", primary.0, secondary.0);
        Failover {
            primary,
            secondary,
            after_failed_calls: after_failed_calls.max(1),
            cool_down,
            state: Mutex::new(Health::default()),
            transport,
        }
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn failed_over(&self) -> bool {
        self.health()
            .failed_over_until
            .is_some_and(|t| t > Instant::now())
    }

    /// A call in which nothing got through, and not because of the recipients.
    fn provider_down(outcomes: &[Outcome]) -> bool {
        !outcomes.is_empty()
            && outcomes.iter().all(|o| {
                matches!(
                    o,
                    Outcome::Failed {
                        permanent: false,
                        ..
                    } | Outcome::Unknown { .. }
                )
            })
    }

    /// Note a primary call's result; true when this call tipped the channel over.
    fn note(&self, outcomes: &[Outcome]) -> bool {
        let mut h = self.health();
        if !Self::provider_down(outcomes) {
            h.failed_calls = 0;
            return false;
        }
        h.failed_calls += 1;
        if h.failed_calls >= self.after_failed_calls {
            h.failed_calls = 0;
            h.failed_over_until = Some(Instant::now() + self.cool_down);
            return true;
        }
        false
    }
}

/// The outcome with the provider's name on it, so the ledger shows who carried the delivery.
fn tag(provider: &str, o: Outcome) -> Outcome {
    match o {
        Outcome::Delivered { reference } => Outcome::Delivered {
            reference: Some(match reference {
                Some(r) => format!("{provider}:{r}"),
                None => provider.to_string(),
            }),
        },
        Outcome::Failed {
            code,
            permanent,
            detail,
        } => Outcome::Failed {
            code,
            permanent,
            detail: format!("[{provider}] {detail}"),
        },
        Outcome::Unknown { detail } => Outcome::Unknown {
            detail: format!("[{provider}] {detail}"),
        },
        other => other,
    }
}

fn not_sent(o: &Outcome) -> bool {
    matches!(o, Outcome::Failed { code, permanent: false, .. } if code == "not_sent")
}

fn settled(o: &Outcome) -> bool {
    matches!(
        o,
        Outcome::Delivered { .. }
            | Outcome::Failed {
                permanent: true,
                ..
            }
    )
}

impl Channel for Failover {
    fn kind(&self) -> ChannelKind {
        self.primary.1.kind()
    }

    /// The slower of the two: a status query goes to whichever provider sent the message.
    fn status_queries_per_second(&self) -> Option<u32> {
        match (
            self.primary.1.status_queries_per_second(),
            self.secondary.1.status_queries_per_second(),
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn transport(&self) -> &str {
        &self.transport
    }

    fn sends_by_address(&self) -> bool {
        self.primary.1.sends_by_address() && self.secondary.1.sends_by_address()
    }

    fn deliver<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Vec<Outcome>> {
        Box::pin(async move {
            let (primary, secondary) = (&self.primary, &self.secondary);
            if self.failed_over() {
                let out = secondary.1.deliver(batch).await;
                return out.into_iter().map(|o| tag(&secondary.0, o)).collect();
            }
            let mut out = primary.1.deliver(batch).await;
            if !self.note(&out) {
                return out.into_iter().map(|o| tag(&primary.0, o)).collect();
            }
            tracing::warn!(
                channel = %self.kind(), from = %primary.0, to = %secondary.0,
                calls = self.after_failed_calls, cool_down_s = self.cool_down.as_secs(),
                "provider down; failing over"
            );
            // What the primary surely did not send goes through the secondary now.
            let retry: Vec<usize> = out
                .iter()
                .enumerate()
                .filter(|(_, o)| {
                    matches!(
                        o,
                        Outcome::Failed {
                            permanent: false,
                            ..
                        }
                    )
                })
                .map(|(i, _)| i)
                .collect();
            let mut tagged: Vec<Outcome> = out.drain(..).map(|o| tag(&primary.0, o)).collect();
            if !retry.is_empty() {
                let again = Batch {
                    items: retry.iter().map(|&i| batch.items[i].clone()).collect(),
                    ..batch.clone()
                };
                let second = secondary.1.deliver(&again).await;
                for (&i, o) in retry.iter().zip(second) {
                    tagged[i] = tag(&secondary.0, o);
                }
            }
            tagged
        })
    }

    fn resolve<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Vec<Outcome>> {
        Box::pin(async move {
            let first = self.primary.1.resolve(batch).await;
            let open: Vec<usize> = (0..batch.items.len())
                .filter(|&i| !first.get(i).is_some_and(settled))
                .collect();
            let mut out: Vec<Outcome> =
                first.into_iter().map(|o| tag(&self.primary.0, o)).collect();
            out.resize(
                batch.items.len(),
                Outcome::Unknown {
                    detail: "no answer from the status query".into(),
                },
            );
            if open.is_empty() {
                return out;
            }
            let ask = Batch {
                items: open.iter().map(|&i| batch.items[i].clone()).collect(),
                ..batch.clone()
            };
            let second = self.secondary.1.resolve(&ask).await;
            for (&i, o) in open.iter().zip(second) {
                let primary_says_not_sent = not_sent(&out[i]);
                out[i] = if settled(&o) {
                    tag(&self.secondary.0, o)
                } else if primary_says_not_sent && not_sent(&o) {
                    // Neither provider has it: only now may it be sent again.
                    Outcome::Failed {
                        code: "not_sent".into(),
                        permanent: false,
                        detail: format!(
                            "neither {} nor {} has a record of it",
                            self.primary.0, self.secondary.0
                        ),
                    }
                } else {
                    Outcome::Unknown {
                        detail: format!(
                            "neither {} nor {} can say yet",
                            self.primary.0, self.secondary.0
                        ),
                    }
                };
            }
            out
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::Item;
    use crate::render::Rendered;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A provider that answers every delivery with one scripted outcome and counts calls.
    struct Fake {
        deliver: Mutex<Outcome>,
        resolve: Outcome,
        calls: AtomicUsize,
        sent: AtomicUsize,
    }

    impl Fake {
        fn new(deliver: Outcome, resolve: Outcome) -> Arc<Fake> {
            Arc::new(Fake {
                deliver: Mutex::new(deliver),
                resolve,
                calls: AtomicUsize::new(0),
                sent: AtomicUsize::new(0),
            })
        }
    }

    impl Channel for Fake {
        fn kind(&self) -> ChannelKind {
            ChannelKind::Sms
        }
        fn transport(&self) -> &str {
            "fake"
        }
        fn deliver<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Vec<Outcome>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.sent.fetch_add(batch.items.len(), Ordering::SeqCst);
            let o = self.deliver.lock().unwrap().clone();
            Box::pin(async move { batch.items.iter().map(|_| o.clone()).collect() })
        }
        fn resolve<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Vec<Outcome>> {
            let o = self.resolve.clone();
            Box::pin(async move { batch.items.iter().map(|_| o.clone()).collect() })
        }
    }

    fn batch(n: usize) -> Batch {
        let job: crate::job::Job = serde_json::from_str(
            &std::fs::read_to_string(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("examples/jobs/01-pre-appointment-release.json"),
            )
            .unwrap(),
        )
        .unwrap();
        let content = Arc::new(Rendered::Wecom {
            markdown: "x".into(),
        });
        Batch {
            job: Arc::new(job),
            channel: ChannelKind::Sms,
            items: (0..n)
                .map(|i| Item {
                    delivery_id: i as i64,
                    recipient: format!("s{i}"),
                    name: "n".into(),
                    role: "subscriber".into(),
                    address: Some(format!("+86138000000{i:02}")),
                    attempt: 1,
                    content: content.clone(),
                })
                .collect(),
            now: crate::clock::now(),
        }
    }

    fn down() -> Outcome {
        Outcome::Failed {
            code: "http_503".into(),
            permanent: false,
            detail: "503".into(),
        }
    }
    fn ok(r: &str) -> Outcome {
        Outcome::Delivered {
            reference: Some(r.into()),
        }
    }
    fn unknown() -> Outcome {
        Outcome::Unknown {
            detail: "timed out".into(),
        }
    }
    fn not_sent_o() -> Outcome {
        Outcome::Failed {
            code: "not_sent".into(),
            permanent: false,
            detail: "no record".into(),
        }
    }

    #[tokio::test]
    async fn the_second_provider_takes_over_after_the_threshold_and_is_recorded() {
        let a = Fake::new(down(), unknown());
        let b = Fake::new(ok("B1"), unknown());
        let f = Failover::new(
            ("tencent_sms".into(), a.clone()),
            ("aliyun_sms".into(), b.clone()),
            2,
            Duration::from_secs(60),
        );
        // First failed call: below the threshold, the engine retries it later.
        let out = f.deliver(&batch(3)).await;
        assert!(
            matches!(&out[0], Outcome::Failed { detail, .. } if detail.starts_with("[tencent_sms]"))
        );
        assert_eq!(b.calls.load(Ordering::SeqCst), 0);
        // Second: the channel fails over and the same items go through the secondary at once.
        let out = f.deliver(&batch(3)).await;
        assert_eq!(out, vec![ok("aliyun_sms:B1"); 3]);
        // Then the secondary carries the channel; the primary is left alone.
        let out = f.deliver(&batch(2)).await;
        assert_eq!(out, vec![ok("aliyun_sms:B1"); 2]);
        assert_eq!(a.calls.load(Ordering::SeqCst), 2);
        assert_eq!(b.sent.load(Ordering::SeqCst), 5);
    }

    #[tokio::test]
    async fn a_healthy_call_resets_the_count_and_references_name_the_primary() {
        let a = Fake::new(down(), unknown());
        let b = Fake::new(ok("B"), unknown());
        let f = Failover::new(
            ("tencent_sms".into(), a.clone()),
            ("aliyun_sms".into(), b.clone()),
            2,
            Duration::from_secs(60),
        );
        f.deliver(&batch(1)).await;
        *a.deliver.lock().unwrap() = ok("A");
        assert_eq!(f.deliver(&batch(1)).await, vec![ok("tencent_sms:A")]);
        *a.deliver.lock().unwrap() = down();
        f.deliver(&batch(1)).await;
        assert_eq!(
            b.calls.load(Ordering::SeqCst),
            0,
            "one failure after a success"
        );
    }

    #[tokio::test]
    async fn what_may_have_gone_out_is_never_sent_again_by_the_other_provider() {
        let a = Fake::new(unknown(), unknown());
        let b = Fake::new(ok("B"), unknown());
        let f = Failover::new(
            ("tencent_sms".into(), a.clone()),
            ("aliyun_sms".into(), b.clone()),
            1,
            Duration::from_secs(60),
        );
        let out = f.deliver(&batch(2)).await;
        assert!(
            out.iter().all(|o| matches!(o, Outcome::Unknown { .. })),
            "{out:?}"
        );
        assert_eq!(b.sent.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn the_status_query_asks_both_and_resends_only_when_neither_has_it() {
        // The primary knows nothing of them; the secondary delivered them.
        let f = Failover::new(
            ("tencent_sms".into(), Fake::new(down(), not_sent_o())),
            ("aliyun_sms".into(), Fake::new(down(), ok("B9"))),
            1,
            Duration::from_secs(60),
        );
        assert_eq!(f.resolve(&batch(2)).await, vec![ok("aliyun_sms:B9"); 2]);
        // Neither has it: not sent, may go again.
        let f = Failover::new(
            ("tencent_sms".into(), Fake::new(down(), not_sent_o())),
            ("aliyun_sms".into(), Fake::new(down(), not_sent_o())),
            1,
            Duration::from_secs(60),
        );
        assert!(f.resolve(&batch(1)).await.iter().all(not_sent));
        // One cannot tell yet: still unknown.
        let f = Failover::new(
            ("tencent_sms".into(), Fake::new(down(), unknown())),
            ("aliyun_sms".into(), Fake::new(down(), not_sent_o())),
            1,
            Duration::from_secs(60),
        );
        assert!(matches!(
            f.resolve(&batch(1)).await[0],
            Outcome::Unknown { .. }
        ));
    }
}
