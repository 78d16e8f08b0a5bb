//! RabbitMQ intake: consume jobs from a durable quorum queue, decide each through
//! [`Intake::admit`], and acknowledge a message only once its decision is committed (SPEC §5).
//!
//! Topology (declared at every start and every reconnect; the same as
//! `deploy/rabbitmq/definitions.json`):
//!
//! ```text
//! jobs_exchange (fanout, durable) ──▶ jobs_queue (quorum: delivery limit, at-least-once DLX,
//!                                                 reject-publish on overflow)
//!                                           │ refused (by us) or past the delivery limit (by the broker)
//!                                           ▼
//! dead_letter_exchange (fanout, durable) ──▶ dead_letter_queue (quorum)
//! ```
//!
//! Both exchanges are fanout so that the routing key never matters: the approval system may
//! publish with any key, and the broker dead-letters with the original key.
//!
//! Per message:
//! - accepted or duplicate → ack, then wake the delivery workers (at most every 25 ms). The
//!   acks of a batch go out as one `basic.ack` with `multiple` set, once every earlier message
//!   of the channel is answered too ([`Acks`]);
//! - refused → the original body is republished (persistent, confirmed) to the dead-letter
//!   exchange with headers `x-refusal-code` (codes joined by `,`) and `x-refusal-reason`
//!   (messages joined by `; `), then acked — the ledger has the refusal too;
//! - the ledger failed (an internal error, not the job's fault) → nack with requeue after a short
//!   pause; the broker redelivers, and past `delivery_limit` deliveries the quorum queue
//!   dead-letters it by itself (`x-first-death-reason: delivery_limit`).
//!
//! Deliveries are processed concurrently, up to `prefetch` at a time (the broker never hands out
//! more), each decision on the blocking pool: parsing, signature checking, policy and rendering
//! run in parallel; only the ledger commit itself is serial.
//!
//! Reconnection is our own loop around connect + declare + consume rather than lapin's
//! auto-recovery: any connection or channel error ends the session, and a new one starts with
//! backoff 0.5 s → 10 s. Unacknowledged messages of the lost connection return to the queue by
//! themselves; a job decided but not acked is redelivered and answered `duplicate`
//! (a refused one is refused, recorded and dead-lettered again: at-least-once). A broker that
//! goes silent is a lost connection too: the heartbeat ([`connect`]) and a bound on every
//! handshake, declaration and close ([`patience`]) see to it that no session waits for ever.
//!
//! lapin is built with `default-features = false, features = ["tokio"]`: plain `amqp://` only,
//! no TLS crypto tree (SPEC's deployments talk to a local or in-cluster broker). `amqps://` URLs
//! are refused at start-up.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use futures_lite::StreamExt;
use lapin::Acker;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions,
    BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Connection, ConnectionProperties, ErrorKind, ExchangeKind};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use super::{DecisionKind, Intake};
use crate::config::QueueSection;
use crate::shutdown::Shutdown;

/// An AMQP channel: in this crate "channel" means a medium (SMS, website …).
pub type AmqpChannel = lapin::Channel;

/// How long a message whose decision could not be recorded is held before it is handed back:
/// without the pause a short ledger outage would burn through the delivery limit in milliseconds.
const INTERNAL_ERROR_PAUSE: Duration = Duration::from_secs(1);
/// How often jobs held through a ledger outage are tried again: from this …
const OUTAGE_BACKOFF_MIN: Duration = Duration::from_millis(250);
/// … doubling up to this.
const OUTAGE_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// At most this many messages already in hand are decided in one ledger transaction (and
/// acknowledged with one ack): 64 held 50,000 jobs to 38–47% of the broker's raw rate, 256 to
/// 48–50% at the same prefetch.
const GROUP_COMMIT_MAX: usize = 256;

/// Why a session with the broker ended.
pub(crate) enum Ended {
    /// The shutdown fired and the session closed cleanly.
    Shutdown,
    /// The connection or a channel was lost (or never came up): try again.
    Lost(lapin::Error),
    /// Retrying cannot help (the topology on the broker contradicts ours).
    Fatal(anyhow::Error),
}

impl From<lapin::Error> for Ended {
    fn from(e: lapin::Error) -> Ended {
        Ended::Lost(e)
    }
}

/// Declare the topology and consume jobs until shutdown.
///
/// Returns `Ok` on shutdown; `Err` only for a configuration that can never work (no or bad URL,
/// a queue already declared with other arguments). Losing the broker is not an error: the
/// intake reconnects and the rest of the service goes on meanwhile.
pub async fn run(
    intake: Arc<Intake>,
    cfg: QueueSection,
    wake: Arc<Notify>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let url = checked_url(&cfg)?;
    let state = Arc::new(State {
        intake,
        wake,
        wake_pending: AtomicBool::new(false),
        ledger_down: AtomicBool::new(false),
    });
    let waker = tokio::spawn(coalesce_wakes(state.clone(), shutdown.clone()));
    let result = reconnecting("intake", shutdown.clone(), |reconnected| {
        session(state.clone(), &cfg, &url, shutdown.clone(), reconnected)
    })
    .await;
    waker.abort();
    result
}

/// How often accepted jobs wake the delivery workers at most. Waking every worker lane for every
/// job cost a quarter of the CPU at 1,000 jobs/s (each lane queries the ledger when woken).
const WAKE_EVERY: Duration = Duration::from_millis(25);

async fn coalesce_wakes(state: Arc<State>, mut shutdown: Shutdown) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(WAKE_EVERY) => {}
            _ = shutdown.wait() => return,
        }
        if state.wake_pending.swap(false, Ordering::SeqCst) {
            state.wake.notify_waiters();
        }
    }
}

/// The parts every message handler needs.
struct State {
    intake: Arc<Intake>,
    wake: Arc<Notify>,
    /// A job was accepted since the workers were last woken.
    wake_pending: AtomicBool,
    /// Set while the ledger fails, so the outage is logged once, not once per message.
    ledger_down: AtomicBool,
}

/// Told by a session when it is connected and working, so the reconnection is logged when it
/// happens rather than when the session ends.
pub(crate) struct Up {
    what: &'static str,
    after_loss: bool,
    up: AtomicBool,
}

impl Up {
    pub(crate) fn connected(&self) {
        if !self.up.swap(true, Ordering::SeqCst) && self.after_loss {
            tracing::info!(task = self.what, "reconnected to RabbitMQ");
        }
    }
}

/// Run `session` again and again until it ends with shutdown or a fatal error, with backoff
/// 0.5 s → 10 s between attempts. A loss is logged once, and so is the recovery.
pub(crate) async fn reconnecting<F, Fut>(
    what: &'static str,
    mut shutdown: Shutdown,
    mut session: F,
) -> anyhow::Result<()>
where
    F: FnMut(Arc<Up>) -> Fut,
    Fut: std::future::Future<Output = Ended>,
{
    const FIRST: Duration = Duration::from_millis(500);
    const MAX: Duration = Duration::from_secs(10);
    let mut backoff = FIRST;
    let mut lost = false;
    loop {
        let up = Arc::new(Up {
            what,
            after_loss: lost,
            up: AtomicBool::new(false),
        });
        let ended = session(up.clone()).await;
        if up.up.load(Ordering::SeqCst) {
            backoff = FIRST;
            lost = false;
        }
        match ended {
            Ended::Shutdown => return Ok(()),
            Ended::Fatal(e) => return Err(e),
            Ended::Lost(e) => {
                if !lost {
                    tracing::warn!(task = what, error = %e, "lost connection to RabbitMQ; reconnecting with backoff");
                    lost = true;
                } else {
                    tracing::debug!(task = what, error = %e, "RabbitMQ still unreachable");
                }
            }
        }
        if shutdown.is_set() {
            return Ok(());
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.wait() => return Ok(()),
        }
        backoff = (backoff * 2).min(MAX);
    }
}

/// The URL, refused at start-up if it cannot work with this build.
pub(crate) fn checked_url(cfg: &QueueSection) -> anyhow::Result<String> {
    let url = cfg
        .amqp_url
        .clone()
        .ok_or_else(|| anyhow!("[queue] amqp_url is not set"))?;
    let parsed: lapin::uri::AMQPUri = url
        .parse()
        .map_err(|e: String| anyhow!("[queue] amqp_url is not a valid AMQP URL: {e}"))?;
    if parsed.scheme != lapin::uri::AMQPScheme::AMQP {
        bail!("[queue] amqp_url: only amqp:// is supported by this build (no TLS)");
    }
    Ok(url)
}

/// The heartbeat asked of the broker when the URL names none (`?heartbeat=N` in the URL, in
/// seconds, overrides it; `0` turns heartbeats off). RabbitMQ's own default is 60 s, and lapin
/// gives a connection up after two silent heartbeat intervals: a broker that stopped answering
/// without closing the connection (a hung node, a network partition) went unnoticed for two
/// minutes, and the events publisher stayed stuck on it.
const HEARTBEAT_SECS: u16 = 10;

/// How long one step with the broker may take (the handshake, a declaration, a clean close)
/// before the connection is given up as lost and made again: twice the heartbeat, or 20 s with
/// heartbeats off. A broker that accepts the connection and never answers left the handshake
/// waiting for ever, since heartbeats only start once it is done.
pub(crate) fn patience(url: &str) -> Duration {
    let heartbeat = url
        .parse::<lapin::uri::AMQPUri>()
        .ok()
        .and_then(|uri| uri.query.heartbeat);
    patience_at(heartbeat.unwrap_or(HEARTBEAT_SECS))
}

/// [`patience`] at a heartbeat of `secs`.
fn patience_at(secs: u16) -> Duration {
    match secs {
        0 => Duration::from_secs(20),
        secs => Duration::from_secs(2 * u64::from(secs)),
    }
}

/// `step`, or a connection error if the broker has not answered it within `limit`.
pub(crate) async fn within<T>(
    limit: Duration,
    what: &str,
    step: impl std::future::Future<Output = lapin::Result<T>>,
) -> lapin::Result<T> {
    match tokio::time::timeout(limit, step).await {
        Ok(result) => result,
        Err(_) => Err(lapin::Error::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!(
                "RabbitMQ did not answer {what} within {} s",
                limit.as_secs_f32()
            ),
        ))),
    }
}

/// Connect, with the default heartbeat unless the URL names one, within [`patience`].
pub(crate) async fn connect(url: &str, name: &str) -> lapin::Result<Connection> {
    let mut uri: lapin::uri::AMQPUri = url.parse().map_err(|e: String| {
        lapin::Error::from(std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
    })?;
    let heartbeat = *uri.query.heartbeat.get_or_insert(HEARTBEAT_SECS);
    let props =
        ConnectionProperties::default().with_connection_name(format!("disclose {name}").into());
    within(
        patience_at(heartbeat),
        "the connection handshake",
        Connection::connect_uri(uri, props),
    )
    .await
}

/// Close `conn`, waiting at most [`patience`] for the broker's answer: a connection whose broker
/// stopped answering would otherwise hold the session (and its reconnection) for ever.
pub(crate) async fn close(conn: &Connection, patience: Duration) {
    let _ = within(
        patience,
        "the connection's close",
        conn.close(200, "OK".into()),
    )
    .await;
}

/// A declaration refused because the broker holds something different: retrying cannot help.
pub(crate) fn is_fatal(e: &lapin::Error) -> bool {
    matches!(e.kind(), ErrorKind::ProtocolError(amqp) if matches!(
        amqp.kind(),
        AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED | AMQPSoftError::ACCESSREFUSED)
    ))
}

/// The arguments of the jobs queue (and, without the dead-lettering ones, of the DLQ).
pub fn jobs_queue_args(cfg: &QueueSection) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), long_string("quorum"));
    args.insert(
        "x-delivery-limit".into(),
        AMQPValue::LongLongInt(i64::from(cfg.delivery_limit)),
    );
    args.insert(
        "x-dead-letter-exchange".into(),
        long_string(&cfg.dead_letter_exchange),
    );
    // At-least-once dead-lettering requires reject-publish overflow.
    args.insert(
        "x-dead-letter-strategy".into(),
        long_string("at-least-once"),
    );
    args.insert("x-overflow".into(), long_string("reject-publish"));
    args
}

fn long_string(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s))
}

/// Declare both exchanges, both quorum queues and their bindings (idempotent).
pub async fn declare_topology(ch: &AmqpChannel, cfg: &QueueSection) -> lapin::Result<()> {
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    for exchange in [&cfg.jobs_exchange, &cfg.dead_letter_exchange] {
        ch.exchange_declare(
            exchange.as_str().into(),
            ExchangeKind::Fanout,
            durable,
            FieldTable::default(),
        )
        .await?;
    }
    let mut dlq_args = FieldTable::default();
    dlq_args.insert("x-queue-type".into(), long_string("quorum"));
    for (queue, exchange, args) in [
        (&cfg.jobs_queue, &cfg.jobs_exchange, jobs_queue_args(cfg)),
        (&cfg.dead_letter_queue, &cfg.dead_letter_exchange, dlq_args),
    ] {
        ch.queue_declare(queue.as_str().into(), QueueDeclareOptions::durable(), args)
            .await?;
        ch.queue_bind(
            queue.as_str().into(),
            exchange.as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    }
    Ok(())
}

/// One connection: declare, consume until shutdown or until something breaks.
async fn session(
    state: Arc<State>,
    cfg: &QueueSection,
    url: &str,
    mut shutdown: Shutdown,
    up: Arc<Up>,
) -> Ended {
    let conn = match connect(url, "intake").await {
        Ok(c) => c,
        Err(e) => return Ended::Lost(e),
    };
    let patience = patience(url);
    let result = consume(&state, cfg, &conn, &mut shutdown, &up, patience).await;
    // Closing returns every message still unacknowledged to the queue.
    close(&conn, patience).await;
    result
}

async fn consume(
    state: &Arc<State>,
    cfg: &QueueSection,
    conn: &Connection,
    shutdown: &mut Shutdown,
    up: &Up,
    patience: Duration,
) -> Ended {
    let setup = async {
        let publisher = conn.create_channel().await?;
        declare_topology(&publisher, cfg).await?;
        publisher
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let consumer_ch = conn.create_channel().await?;
        consumer_ch
            .basic_qos(cfg.prefetch.max(1), BasicQosOptions { global: false })
            .await?;
        let consumer = consumer_ch
            .basic_consume(
                cfg.jobs_queue.as_str().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok((publisher, consumer_ch, consumer))
    };
    let (publisher, consumer_ch, mut consumer) =
        match within(patience, "the declarations", setup).await {
            Ok(parts) => parts,
            Err(e) if is_fatal(&e) => {
                return Ended::Fatal(anyhow!(
                    "RabbitMQ refused the topology of [queue] (exchange {:?}, queue {:?}): {e}; \
                 a queue declared earlier with other arguments must be deleted or migrated",
                    cfg.jobs_exchange,
                    cfg.jobs_queue
                ));
            }
            Err(e) => return Ended::Lost(e),
        };
    up.connected();
    tracing::info!(queue = %cfg.jobs_queue, prefetch = cfg.prefetch, "consuming jobs from RabbitMQ");
    let answers = Arc::new(Answers {
        publisher,
        dead_letter_exchange: cfg.dead_letter_exchange.clone(),
        acks: tokio::sync::Mutex::new(Acks::default()),
    });
    let mut in_hand: JoinSet<lapin::Result<()>> = JoinSet::new();
    let ended = loop {
        tokio::select! {
            _ = shutdown.wait() => break Ended::Shutdown,
            Some(done) = in_hand.join_next(), if !in_hand.is_empty() => match done {
                Ok(Ok(())) => {}
                Ok(Err(e)) => break Ended::Lost(e),
                Err(e) => {
                    // Its messages are never answered, and acknowledgements go in order: start
                    // afresh, so that they (and any decided after them) are redelivered.
                    tracing::error!(error = %e, "a job handler failed; reconnecting so that its messages are redelivered");
                    break Ended::Lost(lapin::Error::from(std::io::Error::other(format!("job handler failed: {e}"))));
                }
            },
            next = consumer.next() => match next {
                Some(Ok(delivery)) => {
                    // Group commit: take what else the broker has already sent, decide it all
                    // with one ledger transaction.
                    let mut batch = vec![delivery];
                    let mut lost = None;
                    while batch.len() < GROUP_COMMIT_MAX {
                        match futures_lite::future::poll_once(consumer.next()).await {
                            Some(Some(Ok(d))) => batch.push(d),
                            Some(Some(Err(e))) => {
                                lost = Some(e);
                                break;
                            }
                            Some(None) | None => break,
                        }
                    }
                    in_hand.spawn(handle(state.clone(), answers.clone(), batch, shutdown.clone()));
                    if let Some(e) = lost {
                        break Ended::Lost(e);
                    }
                }
                Some(Err(e)) => break Ended::Lost(e),
                None => break Ended::Lost(lapin::Error::from(std::io::Error::other(
                    "the broker cancelled the consumer (queue deleted?)",
                ))),
            },
        }
    };
    if let Ended::Shutdown = ended {
        // Stop the flow, finish what is in hand; what the broker sent but we never started
        // returns to the queue when the channel closes.
        let cancel = consumer_ch.basic_cancel(consumer.tag(), BasicCancelOptions::default());
        let _ = within(patience, "the consumer's cancel", cancel).await;
        while let Some(done) = in_hand.join_next().await {
            if let Ok(Err(e)) = done {
                tracing::warn!(error = %e, "could not acknowledge a job at shutdown; it will be redelivered");
            }
        }
        let closing = async {
            let consumer = consumer_ch.close(200, "OK".into()).await;
            answers
                .publisher
                .close(200, "OK".into())
                .await
                .and(consumer)
        };
        let _ = within(patience, "the channels' close", closing).await;
    }
    ended
}

/// Decide a batch of messages with one ledger commit, then answer the broker for each. An `Err`
/// means the AMQP channel is gone (unanswered messages return to the queue by themselves).
///
/// When the ledger cannot record anything (disk full, database gone: [`LedgerError::is_unavailable`])
/// the batch is held unacknowledged and tried again with backoff until it can be recorded or the
/// service stops: the prefetch is then used up, so no more jobs are taken meanwhile, and no
/// approved job is dead-lettered for a full disk. Any other failure is about the messages: the
/// batch is decided again one message at a time, and a message that fails alone is handed back
/// to the broker, which dead-letters it past the delivery limit (never an endless loop).
async fn handle(
    state: Arc<State>,
    answers: Arc<Answers>,
    batch: Vec<lapin::message::Delivery>,
    shutdown: Shutdown,
) -> lapin::Result<()> {
    let mut wait = OUTAGE_BACKOFF_MIN;
    let verdicts = loop {
        match admit(&state, &batch).await? {
            Ok(v) => break v,
            Err(e) if e.is_unavailable() => {
                if !state.ledger_down.swap(true, Ordering::SeqCst) {
                    tracing::error!(error = %e, "cannot record job decisions: the ledger is unavailable; \
                        jobs in hand are held unacknowledged and no more are taken until it is back");
                }
                if shutdown.is_set() {
                    // Unanswered, they return to the queue when the channel closes.
                    return Ok(());
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(OUTAGE_BACKOFF_MAX);
            }
            Err(e) if batch.len() > 1 => {
                tracing::warn!(error = %e, jobs = batch.len(), "a batch of job decisions failed; deciding its jobs one at a time");
                for delivery in batch {
                    Box::pin(handle(
                        state.clone(),
                        answers.clone(),
                        vec![delivery],
                        shutdown.clone(),
                    ))
                    .await?;
                }
                return Ok(());
            }
            Err(e) => {
                tracing::error!(error = %e, job = crate::job::sniff_id(&batch[0].data).as_deref().unwrap_or("?"),
                    "cannot record the decision about a job; the message is handed back to the broker \
                     (dead-lettered past the delivery limit)");
                tokio::time::sleep(INTERNAL_ERROR_PAUSE).await;
                let mut answered = Vec::with_capacity(batch.len());
                for delivery in batch {
                    delivery
                        .acker
                        .nack(BasicNackOptions {
                            requeue: true,
                            multiple: false,
                        })
                        .await?;
                    answered.push((delivery.delivery_tag, None));
                }
                return answers.settle(answered).await;
            }
        }
    };
    if state.ledger_down.swap(false, Ordering::SeqCst) {
        tracing::info!("the ledger records decisions again");
    }
    let mut settled = Vec::with_capacity(batch.len());
    for (delivery, verdict) in batch.into_iter().zip(verdicts) {
        settled.push(answer(&state, &answers, delivery, verdict).await?);
    }
    answers.settle(settled).await
}

/// Decide the messages' jobs and record the decisions in one ledger transaction.
async fn admit(
    state: &State,
    batch: &[lapin::message::Delivery],
) -> lapin::Result<Result<Vec<super::Verdict>, crate::ledger::LedgerError>> {
    let bodies: Vec<Vec<u8>> = batch.iter().map(|d| d.data.clone()).collect();
    let intake = state.intake.clone();
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
        intake.admit_many(&refs, crate::clock::now())
    })
    .await
    .map_err(|e| lapin::Error::from(std::io::Error::other(format!("admit task: {e}"))))
}

/// How a session answers the broker: the channel for dead-lettered copies, and the acks.
struct Answers {
    publisher: AmqpChannel,
    dead_letter_exchange: String,
    acks: tokio::sync::Mutex<Acks<Acker>>,
}

impl Answers {
    /// Count the batch's messages as answered, and acknowledge every run that is now complete.
    /// The lock is held while the ack goes out, so that acks leave in the order of their tags
    /// (a `multiple` ack for a tag already covered would be a channel error).
    async fn settle(&self, settled: Vec<(u64, Option<Acker>)>) -> lapin::Result<()> {
        let mut acks = self.acks.lock().await;
        for (tag, acker) in settled {
            acks.settle(tag, acker);
        }
        if let Some(acker) = acks.ready() {
            acker.ack(BasicAckOptions { multiple: true }).await?;
        }
        Ok(())
    }
}

/// Acknowledgements many at a time, in order. `basic.ack` with `multiple` set acknowledges every
/// outstanding message of the channel up to the tag given: one frame, and one settlement in the
/// quorum queue, for a run of jobs instead of one per job. It may only be sent once every lower
/// tag is answered, and batches are decided concurrently and finish in any order, so a batch
/// that finishes early waits here for those before it. Messages answered on their own (a
/// refused job's dead-lettered copy, a message handed back) are only counted.
///
/// Tags are the channel's: they start at 1 on every new channel, so each session has its own.
struct Acks<A> {
    /// Every tag up to this one is answered or covered by an ack already sent.
    floor: u64,
    /// Answered tags above `floor`: `Some` to be acknowledged by a `multiple` ack, `None`
    /// answered on their own already.
    settled: BTreeMap<u64, Option<A>>,
}

impl<A> Default for Acks<A> {
    fn default() -> Self {
        Acks {
            floor: 0,
            settled: BTreeMap::new(),
        }
    }
}

impl<A> Acks<A> {
    fn settle(&mut self, tag: u64, acker: Option<A>) {
        if tag > self.floor {
            self.settled.insert(tag, acker);
        }
    }

    /// The acker to send a `multiple` ack with, when a run above the floor is complete and
    /// holds a message to acknowledge; the floor moves past the run.
    fn ready(&mut self) -> Option<A> {
        let mut top = None;
        while let Some(entry) = self.settled.first_entry() {
            if *entry.key() != self.floor + 1 {
                break;
            }
            self.floor += 1;
            if let Some(a) = entry.remove() {
                top = Some(a);
            }
        }
        top
    }
}

/// Answer the broker for one decided message: an accepted one is left to [`Answers::settle`]
/// (returned with its acker); a refused one is dead-lettered with the refusal and acked.
async fn answer(
    state: &State,
    answers: &Answers,
    delivery: lapin::message::Delivery,
    verdict: super::Verdict,
) -> lapin::Result<(u64, Option<Acker>)> {
    let lapin::message::Delivery {
        delivery_tag,
        data,
        acker,
        properties,
        ..
    } = delivery;
    match verdict.decision {
        DecisionKind::Accepted | DecisionKind::Duplicate => {
            if verdict.due_now(crate::clock::now()) {
                state.wake_pending.store(true, Ordering::SeqCst);
            }
            return Ok((delivery_tag, Some(acker)));
        }
        DecisionKind::Refused => {
            let mut headers = properties.headers().clone().unwrap_or_default();
            headers.insert(
                "x-refusal-code".into(),
                long_string(&super::codes(&verdict.refusals)),
            );
            let reasons: Vec<&str> = verdict
                .refusals
                .iter()
                .map(|r| r.message.as_str())
                .collect();
            headers.insert("x-refusal-reason".into(), long_string(&reasons.join("; ")));
            let props = properties.with_headers(headers).with_delivery_mode(2);
            let confirm = answers
                .publisher
                .basic_publish(
                    answers.dead_letter_exchange.as_str().into(),
                    "refused".into(),
                    BasicPublishOptions::default(),
                    &data,
                    props,
                )
                .await?
                .await?;
            if confirm.is_ack() {
                acker.ack(BasicAckOptions::default()).await?;
            } else {
                // Keep the message: it comes back and is refused (and dead-lettered) again.
                tracing::warn!(
                    job = verdict.id.as_deref().unwrap_or("?"),
                    "the broker did not confirm the dead-lettered copy of a refused job; handing the message back"
                );
                acker
                    .nack(BasicNackOptions {
                        requeue: true,
                        multiple: false,
                    })
                    .await?;
            }
        }
    }
    Ok((delivery_tag, None))
}

/// Publish job bodies to the jobs exchange, persistent, with publisher confirms.
pub async fn publish(cfg: &QueueSection, bodies: Vec<(String, Vec<u8>)>) -> anyhow::Result<()> {
    let url = checked_url(cfg)?;
    let conn = connect(&url, "submit")
        .await
        .with_context(|| format!("connecting to RabbitMQ ({})", masked(&url)))?;
    let ch = conn.create_channel().await?;
    declare_topology(&ch, cfg)
        .await
        .context("declaring the queue topology")?;
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    let mut confirms = Vec::with_capacity(bodies.len());
    for (id, body) in &bodies {
        let props = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into())
            .with_message_id(ShortString::from(id.as_str()));
        let confirm = ch
            .basic_publish(
                cfg.jobs_exchange.as_str().into(),
                "job".into(),
                BasicPublishOptions::default(),
                body,
                props,
            )
            .await
            .with_context(|| format!("publishing {id}"))?;
        confirms.push((id, confirm));
    }
    let mut refused = Vec::new();
    for (id, confirm) in confirms {
        if !confirm
            .await
            .with_context(|| format!("confirming {id}"))?
            .is_ack()
        {
            refused.push(id.as_str());
        }
    }
    let _ = ch.close(200, "OK".into()).await;
    let _ = conn.close(200, "OK".into()).await;
    if !refused.is_empty() {
        bail!(
            "the broker refused (nacked) {} job(s): {}",
            refused.len(),
            refused.join(", ")
        );
    }
    Ok(())
}

/// The URL without its password, for messages.
pub(crate) fn masked(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..s + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_go_out_for_complete_runs_only_at_their_highest_tag_to_acknowledge() {
        let mut acks: Acks<u64> = Acks::default();
        // The second batch (4..=6) is decided before the first (1..=3): nothing may go out yet.
        for t in 4..=6 {
            acks.settle(t, Some(t));
        }
        assert_eq!(acks.ready(), None);
        // The first batch: 3 was refused and acked alone; one ack for 1..=6 at tag 6.
        acks.settle(1, Some(1));
        acks.settle(2, Some(2));
        acks.settle(3, None);
        assert_eq!(acks.ready(), Some(6));
        assert_eq!(acks.floor, 6);
        // A run ending in messages answered alone is acked at its last tag to acknowledge.
        acks.settle(7, Some(7));
        acks.settle(8, None);
        assert_eq!(acks.ready(), Some(7));
        assert_eq!(acks.floor, 8);
        // A run answered entirely alone needs no ack, and a gap holds back what follows it.
        acks.settle(9, None);
        acks.settle(11, Some(11));
        assert_eq!(acks.ready(), None);
        assert_eq!(acks.floor, 9);
        acks.settle(10, Some(10));
        assert_eq!(acks.ready(), Some(11));
        // A tag at or below the floor (impossible on one channel) changes nothing.
        acks.settle(5, Some(5));
        assert_eq!(acks.ready(), None);
    }

    #[test]
    fn the_password_never_appears_in_messages() {
        assert_eq!(
            masked("amqp://guest:secret@127.0.0.1:5672/%2f"),
            "amqp://guest:***@127.0.0.1:5672/%2f"
        );
        assert_eq!(masked("amqp://127.0.0.1"), "amqp://127.0.0.1");
    }

    #[test]
    fn urls_that_can_never_work_are_refused_at_start_up() {
        let mut cfg = QueueSection::default();
        assert!(checked_url(&cfg).is_err());
        cfg.amqp_url = Some("amqps://h/".into());
        assert!(checked_url(&cfg).is_err());
        cfg.amqp_url = Some("http://h/".into());
        assert!(checked_url(&cfg).is_err());
        cfg.amqp_url = Some("amqp://guest:guest@127.0.0.1:5672/%2f".into());
        assert!(checked_url(&cfg).is_ok());
    }

    #[test]
    fn the_jobs_queue_is_a_quorum_queue_that_dead_letters_at_least_once() {
        let cfg = QueueSection::default();
        let args = jobs_queue_args(&cfg);
        let get = |k: &str| args.inner().get(k).cloned();
        assert_eq!(get("x-queue-type"), Some(long_string("quorum")));
        assert_eq!(get("x-delivery-limit"), Some(AMQPValue::LongLongInt(5)));
        assert_eq!(
            get("x-dead-letter-strategy"),
            Some(long_string("at-least-once"))
        );
        assert_eq!(get("x-overflow"), Some(long_string("reject-publish")));
        assert_eq!(
            get("x-dead-letter-exchange"),
            Some(long_string("disclose.dlx"))
        );
    }

    #[test]
    fn a_step_with_the_broker_may_take_twice_the_heartbeat() {
        let url = "amqp://guest:guest@127.0.0.1:5672/%2f";
        assert_eq!(patience(url), Duration::from_secs(20), "the default 10 s");
        assert_eq!(
            patience(&format!("{url}?heartbeat=2")),
            Duration::from_secs(4)
        );
        assert_eq!(
            patience(&format!("{url}?heartbeat=0")),
            Duration::from_secs(20),
            "heartbeats off"
        );
    }
}
