//! Events out: the ledger's transactional outbox (SPEC §7) drained to the topic exchange
//! `[queue] events_exchange`, routing key = the event name (`job.accepted`, `job.refused`,
//! `delivery.delivered`, `delivery.failed`, `delivery.unknown`, `job.completed`), body = the
//! event's JSON payload.
//!
//! Every event is written in the same ledger transaction as the change it reports, then
//! published from here in order, persistent, with publisher confirms; only confirmed events are
//! marked published. Delivery is therefore **at least once**: an event published but not yet
//! marked when the process dies (or the connection drops before the confirm) is published again
//! at the next pass. Each message carries `message_id = disclose-event-<seq>`, stable across
//! re-publication, so consumers deduplicate by message id.
//!
//! While the broker is away the events wait in the ledger; the publisher reconnects with the
//! same backoff as the intake. At shutdown it drains what is pending if the broker is up.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::{FieldTable, ShortString};
use lapin::{BasicProperties, Connection, ExchangeKind};

use crate::config::QueueSection;
use crate::intake::amqp::{
    AmqpChannel, Ended, Up, checked_url, close, connect, is_fatal, patience, reconnecting, within,
};
use crate::ledger::{Event, Ledger, LedgerError};
use crate::shutdown::Shutdown;

/// Events read from the outbox per pass.
const BATCH: usize = 500;
/// How long the publisher waits when the outbox is empty.
const IDLE: Duration = Duration::from_millis(200);
/// The longest wait between attempts to mark published events while the ledger cannot write.
const MARK_BACKOFF_MAX: Duration = Duration::from_secs(10);
/// How long the broker may take to confirm a batch of events before the connection is given up
/// and made again (the batch is then published again: at least once). A broker that stops
/// answering altogether is noticed sooner, by the heartbeat; this bounds one that heartbeats
/// but never confirms.
const CONFIRM_PATIENCE: Duration = Duration::from_secs(60);

/// Rung when this process has committed events (a decision, recorded outcomes), so that the
/// publisher sends them at once instead of at its next look: waiting for the next look was most
/// of the time from a job's arrival to its `job.completed` (the soak: p50 ≈ 120 ms). Events
/// written by another replica on a shared ledger are found by the look every [`IDLE`].
static WRITTEN: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Tell the publisher that events were committed (a permit is kept if it is busy, so none is
/// missed).
pub fn written() {
    WRITTEN.notify_one();
}

/// Publish the ledger's outbox of events to the events exchange until shutdown.
pub async fn run(
    ledger: Arc<dyn Ledger>,
    cfg: QueueSection,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let url = checked_url(&cfg)?;
    let ledger_down = Arc::new(AtomicBool::new(false));
    reconnecting("events", shutdown.clone(), |up| {
        session(
            ledger.clone(),
            &cfg,
            &url,
            shutdown.clone(),
            up,
            ledger_down.clone(),
        )
    })
    .await
}

async fn session(
    ledger: Arc<dyn Ledger>,
    cfg: &QueueSection,
    url: &str,
    mut shutdown: Shutdown,
    up: Arc<Up>,
    ledger_down: Arc<AtomicBool>,
) -> Ended {
    let conn = match connect(url, "events").await {
        Ok(c) => c,
        Err(e) => return Ended::Lost(e),
    };
    let patience = patience(url);
    let ended = publish_loop(
        &ledger,
        cfg,
        &conn,
        patience,
        &mut shutdown,
        &up,
        &ledger_down,
    )
    .await;
    close(&conn, patience).await;
    ended
}

async fn publish_loop(
    ledger: &Arc<dyn Ledger>,
    cfg: &QueueSection,
    conn: &Connection,
    patience: Duration,
    shutdown: &mut Shutdown,
    up: &Up,
    ledger_down: &AtomicBool,
) -> Ended {
    let setup = async {
        let ch = conn.create_channel().await?;
        ch.exchange_declare(
            cfg.events_exchange.as_str().into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
        ch.confirm_select(ConfirmSelectOptions::default()).await?;
        Ok::<_, lapin::Error>(ch)
    };
    let ch = match within(patience, "the events exchange's declaration", setup).await {
        Ok(ch) => ch,
        Err(e) if is_fatal(&e) => {
            return Ended::Fatal(anyhow::anyhow!(
                "RabbitMQ refused the events exchange {:?}: {e}",
                cfg.events_exchange
            ));
        }
        Err(e) => return Ended::Lost(e),
    };
    up.connected();
    // Events the broker confirmed that the ledger could not mark published (disk full, I/O
    // error). They are marked first, with backoff, before the outbox is read again: read again,
    // they would go out once more on every pass for as long as the ledger cannot write.
    let mut unmarked: Vec<i64> = Vec::new();
    let mut backoff = IDLE;
    loop {
        let stopping = shutdown.is_set();
        if !unmarked.is_empty() {
            let (ledger, seqs) = (ledger.clone(), unmarked.clone());
            let marked = match tokio::task::spawn_blocking(move || {
                ledger.mark_published(&seqs, crate::clock::now())
            })
            .await
            {
                Ok(r) => r,
                Err(e) => Err(LedgerError::Aborted(format!("marking task failed: {e}"))),
            };
            match marked {
                Ok(()) => {
                    unmarked.clear();
                    backoff = IDLE;
                    if ledger_down.swap(false, Ordering::SeqCst) {
                        tracing::info!("the events outbox is writable again");
                    }
                }
                Err(error) => {
                    if !ledger_down.swap(true, Ordering::SeqCst) {
                        tracing::error!(%error, events = unmarked.len(), "cannot mark published events in the ledger; holding them (not publishing again) and retrying with backoff");
                    }
                    if stopping {
                        // Left unmarked: published again at the next start (at least once).
                        break;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.wait() => {}
                    }
                    backoff = (backoff * 2).min(MARK_BACKOFF_MAX);
                    continue;
                }
            }
        }
        let events = match pending(ledger).await {
            Ok(events) => {
                if ledger_down.swap(false, Ordering::SeqCst) {
                    tracing::info!("the events outbox is readable again");
                }
                events
            }
            Err(e) => {
                if !ledger_down.swap(true, Ordering::SeqCst) {
                    tracing::error!(error = %e, "cannot read the events outbox; retrying");
                }
                if stopping {
                    break;
                }
                Vec::new()
            }
        };
        if events.is_empty() {
            if stopping {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(IDLE) => {}
                _ = WRITTEN.notified() => {}
                _ = shutdown.wait() => {}
            }
            continue;
        }
        let batch = publish_batch(&ch, &cfg.events_exchange, &events);
        let published = match within(CONFIRM_PATIENCE, "a batch of events", batch).await {
            Ok(seqs) => seqs,
            Err(e) => return Ended::Lost(e),
        };
        let full = published.len() == events.len();
        // Marked at the top of the next pass. Should the process die first, they go out again
        // at the next start (at least once, the same message id).
        unmarked = published;
        if !full {
            tracing::warn!("the broker did not confirm some events; publishing them again");
            tokio::time::sleep(IDLE).await;
        }
    }
    let _ = within(patience, "the channel's close", ch.close(200, "OK".into())).await;
    Ended::Shutdown
}

async fn pending(ledger: &Arc<dyn Ledger>) -> Result<Vec<Event>, LedgerError> {
    let ledger = ledger.clone();
    match tokio::task::spawn_blocking(move || ledger.pending_events(BATCH)).await {
        Ok(r) => r,
        Err(e) => Err(LedgerError::Aborted(format!("outbox task failed: {e}"))),
    }
}

/// Publish in order with pipelined confirms; the sequence numbers the broker confirmed, up to
/// the first it did not (so the outbox stays in order).
async fn publish_batch(
    ch: &AmqpChannel,
    exchange: &str,
    events: &[Event],
) -> lapin::Result<Vec<i64>> {
    let mut confirms = Vec::with_capacity(events.len());
    for event in events {
        let props = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into())
            .with_message_id(ShortString::from(format!("disclose-event-{}", event.seq)))
            .with_type(ShortString::from(event.name.as_str()));
        let confirm = ch
            .basic_publish(
                exchange.into(),
                event.name.as_str().into(),
                BasicPublishOptions::default(),
                event.payload.as_bytes(),
                props,
            )
            .await?;
        confirms.push((event.seq, confirm));
    }
    let mut acked = Vec::with_capacity(confirms.len());
    let mut in_order = true;
    for (seq, confirm) in confirms {
        let ok = confirm.await?.is_ack();
        in_order &= ok;
        if in_order {
            acked.push(seq);
        }
    }
    Ok(acked)
}
