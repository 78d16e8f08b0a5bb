//! The delivery engine: claim due deliveries from the ledger, rate-limit, hand them to the
//! channel, record each outcome, retry transient failures with exponential backoff and jitter
//! (honouring Retry-After), and give up after the configured attempts, recording why.
//!
//! Channels report what happened ([`Outcome`]); only the engine decides what happens next. Each
//! channel is a lane of its own, so a slow or failing medium never holds up another.

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, FixedOffset};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::channels::{Batch, Channel, ChannelConfig, Item, Outcome, RetryPolicy};
use crate::clock;
use crate::job::{ChannelKind, Job};
use crate::ledger::{Claimed, Ledger, LedgerError, Record, State};
use crate::pace::{QuietHours, RecipientLimiter};
use crate::render::{RecipientView, Rendered, Templates};
use crate::shutdown::Shutdown;
use tokio::sync::Notify;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("a ledger task stopped unexpectedly: {0}")]
    Task(String),
}

struct Lane {
    channel: Arc<dyn Channel>,
    batch_size: usize,
    concurrency: usize,
    retry: RetryPolicy,
    limiter: Option<DefaultDirectRateLimiter>,
    quiet: Option<QuietHours>,
    recipients: Option<RecipientLimiter>,
}

/// A batch claimed and sent, its outcomes not yet recorded.
struct Sent {
    /// How many deliveries were claimed (at least one).
    claimed: usize,
    records: Vec<Record>,
    now: DateTime<FixedOffset>,
}

impl Lane {
    /// While in the channel's quiet hours: when they end.
    fn quiet_until(&self, now: DateTime<FixedOffset>) -> Option<DateTime<FixedOffset>> {
        self.quiet.filter(|q| q.contains(now)).map(|q| q.ends(now))
    }
}

pub struct Engine {
    ledger: Arc<dyn Ledger>,
    templates: Arc<Templates>,
    lanes: BTreeMap<ChannelKind, Lane>,
    lease: Duration,
    jobs: std::sync::Mutex<HashMap<String, Arc<Job>>>,
    rendered: std::sync::Mutex<HashMap<(String, ChannelKind), Arc<Rendered>>>,
    /// Deliveries that reached an outcome (for progress).
    pub finished: AtomicU64,
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, LedgerError> + Send + 'static,
) -> Result<T, EngineError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| EngineError::Task(e.to_string()))?
        .map_err(EngineError::from)
}

/// How long a status query waits before asking again about a delivery that is still unknown.
const UNKNOWN_RECHECK: Duration = Duration::from_secs(300);
const JOB_CACHE: usize = 256;
/// How long deliveries wait when the ledger's shared recipient counts cannot be read.
const QUOTA_UNAVAILABLE_RETRY_MS: i64 = 30_000;
/// Channel calls' worth of deliveries claimed (and recorded) per ledger transaction.
const CALLS_PER_CLAIM: usize = 5;
const MAX_CLAIM: usize = 1_000;
/// How many unknown deliveries one worker claims for the status query when the channel asks
/// one query per delivery at `per_second` (shared by the lane's `workers`): what all of them can
/// settle in half the lease. A claim larger than that outlived its lease while its queries
/// waited for the rate limit, went back to `unknown`, and was claimed and asked about again by
/// the next worker, over and over, while the lane's pending deliveries waited behind it (the
/// chaos test, with a 1 s lease and 20 queries a second, stalled for a minute).
fn status_claim(per_second: u32, lease: Duration, workers: usize) -> usize {
    let n = f64::from(per_second) * lease.as_secs_f64() / (2.0 * workers.max(1) as f64);
    (n as usize).max(1)
}

/// Backoff while the outcomes of a send cannot be written (see [`Engine::record`]).
const RECORD_RETRY_FIRST: Duration = Duration::from_millis(250);
const RECORD_RETRY_MAX: Duration = Duration::from_secs(5);

impl Engine {
    pub fn new(
        ledger: Arc<dyn Ledger>,
        templates: Arc<Templates>,
        channels: Vec<(ChannelConfig, Arc<dyn Channel>)>,
        lease: Duration,
    ) -> Engine {
        let lanes = channels
            .into_iter()
            .map(|(cfg, channel)| {
                let limiter = cfg.calls_per_second.and_then(NonZeroU32::new).map(|n| {
                    RateLimiter::direct(Quota::per_second(n).allow_burst(NonZeroU32::MIN))
                });
                let concurrency = cfg
                    .concurrency
                    .unwrap_or_else(|| channel.default_concurrency())
                    .max(1);
                (
                    cfg.channel,
                    Lane {
                        channel,
                        batch_size: cfg.batch_size(),
                        concurrency,
                        retry: cfg.retry,
                        limiter,
                        quiet: cfg.quiet_hours,
                        recipients: RecipientLimiter::new(&cfg.recipient_limits),
                    },
                )
            })
            .collect();
        Engine {
            ledger,
            templates,
            lanes,
            lease,
            jobs: Default::default(),
            rendered: Default::default(),
            finished: AtomicU64::new(0),
        }
    }

    pub fn channels(&self) -> impl Iterator<Item = (ChannelKind, &dyn Channel)> {
        self.lanes.iter().map(|(k, l)| (*k, l.channel.as_ref()))
    }

    /// When the quiet hours of `channel` that hold `now` end, if they do.
    pub fn quiet_until(
        &self,
        channel: ChannelKind,
        now: DateTime<FixedOffset>,
    ) -> Option<DateTime<FixedOffset>> {
        self.lanes.get(&channel)?.quiet_until(now)
    }

    pub fn configured(&self) -> std::collections::BTreeSet<ChannelKind> {
        self.lanes.keys().copied().collect()
    }

    async fn job(&self, id: &str) -> Result<Option<Arc<Job>>, EngineError> {
        if let Some(j) = self.jobs.lock().unwrap_or_else(|e| e.into_inner()).get(id) {
            return Ok(Some(j.clone()));
        }
        let ledger = self.ledger.clone();
        let key = id.to_string();
        let Some(job) = blocking(move || ledger.job(&key)).await? else {
            return Ok(None);
        };
        let job = Arc::new(job);
        let mut cache = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= JOB_CACHE {
            cache.clear();
            self.rendered
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clear();
        }
        cache.insert(id.to_string(), job.clone());
        Ok(Some(job))
    }

    /// The content of one delivery of a personal channel (e-mail, letters): rendered for its
    /// recipient.
    fn personal_content(
        &self,
        job: &Job,
        channel: ChannelKind,
        c: &Claimed,
    ) -> Result<Arc<Rendered>, String> {
        let who = RecipientView {
            id: c.recipient.clone(),
            name: c.name.clone(),
            role: c.role.clone(),
        };
        self.templates
            .render(job, channel, Some(&who))
            .map(Arc::new)
            .map_err(|e| e.to_string())
    }

    /// The content of a channel whose text is the same for every recipient: rendered once per
    /// job and channel.
    fn shared_content(&self, job: &Job, channel: ChannelKind) -> Result<Arc<Rendered>, String> {
        let key = (job.id.clone(), channel);
        if let Some(r) = self
            .rendered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(r.clone());
        }
        let r = Arc::new(
            self.templates
                .render(job, channel, None)
                .map_err(|e| e.to_string())?,
        );
        self.rendered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, r.clone());
        Ok(r)
    }

    /// Claim one batch of due deliveries of a channel (or, with `unknown`, of deliveries left
    /// unknown, for the status query), hand it over and record the outcomes. Returns how many.
    pub async fn step(&self, channel: ChannelKind, unknown: bool) -> Result<usize, EngineError> {
        let mut sent = None;
        let n = self.step_behind(channel, unknown, &mut sent).await?;
        self.record_behind(channel, &mut sent).await?;
        Ok(n)
    }

    /// [`Engine::step`] with the recording of each batch moved under the sending of the next: the
    /// batch sent by the previous call (`behind`) is recorded while this one is claimed and
    /// sent, and this one is left in `behind` for the next call (or [`Engine::record_behind`]).
    /// A worker that recorded each batch before it claimed the next had nothing in flight while
    /// it recorded: sending a million SMS this way, the machine stood idle less (0.19 of its two
    /// cores, from 0.26), and with a core for `disclose` alone it sent 4% more calls a second
    /// (BENCHMARKS.md, session 11).
    /// The claim is durable before anything is sent either way, so a crash with a batch behind
    /// leaves it `sending`, to become `unknown` and go to the status query, never resent blind.
    /// The batch behind is recorded also when this claim fails; when its recording fails, this
    /// call's batch stays behind to be recorded by the next. A worker that stops records what it
    /// has behind first: dropped, those outcomes would wait out the lease and a status query to
    /// learn what the worker knew. How many deliveries this call claimed.
    async fn step_behind(
        &self,
        channel: ChannelKind,
        unknown: bool,
        behind: &mut Option<Sent>,
    ) -> Result<usize, EngineError> {
        let mut earlier = behind.take();
        let (sent, recorded) = tokio::join!(
            self.claim_and_send(channel, unknown),
            self.record_behind(channel, &mut earlier)
        );
        let sent = match (sent, recorded) {
            (Ok(sent), Ok(())) => sent,
            // What was just sent is kept to be recorded by the next call.
            (Ok(sent), Err(e)) => {
                *behind = sent;
                return Err(e);
            }
            (Err(e), _) => return Err(e),
        };
        let Some(sent) = sent else { return Ok(0) };
        let n = sent.claimed;
        *behind = Some(sent);
        Ok(n)
    }

    /// Records the batch `behind`, if any (see [`Engine::step_behind`]).
    async fn record_behind(
        &self,
        channel: ChannelKind,
        behind: &mut Option<Sent>,
    ) -> Result<(), EngineError> {
        match behind.take() {
            Some(sent) => self.record_sent(channel, sent).await,
            None => Ok(()),
        }
    }

    async fn record_sent(&self, channel: ChannelKind, sent: Sent) -> Result<(), EngineError> {
        let done = sent
            .records
            .iter()
            .filter(|r| r.state != State::Pending)
            .count() as u64;
        let records = self.record(channel, sent.records, sent.now).await?;
        crate::metrics::recorded(channel, &records);
        self.finished.fetch_add(done, Ordering::Relaxed);
        Ok(())
    }

    /// Claims what is due on `channel` and sends it; the outcomes, not yet recorded.
    async fn claim_and_send(
        &self,
        channel: ChannelKind,
        unknown: bool,
    ) -> Result<Option<Sent>, EngineError> {
        let Some(lane) = self.lanes.get(&channel) else {
            return Ok(None);
        };
        let now = clock::now();
        // Quiet hours: nothing is claimed, so nothing is sent and nothing is used up; what is due
        // waits in the ledger for the window's end. Status queries wait too (a dedup resend is
        // still a message on the recipient's phone).
        if lane.quiet_until(now).is_some() {
            return Ok(None);
        }
        // Claim several calls' worth at once and record them in one transaction: the ledger's
        // cost is per transaction far more than per row.
        let mut limit = (lane.batch_size * CALLS_PER_CLAIM)
            .min(MAX_CLAIM)
            .max(lane.batch_size);
        if unknown && let Some(per_second) = lane.channel.status_queries_per_second() {
            limit = limit.min(status_claim(per_second, self.lease, lane.concurrency));
        }
        let (ledger, lease) = (self.ledger.clone(), self.lease.as_millis() as i64);
        let now_ms = now.timestamp_millis();
        let by_address = lane.channel.sends_by_address();
        let claimed = blocking(move || {
            if unknown {
                ledger.claim_unknown(channel, now_ms, lease, limit)
            } else if by_address {
                ledger.claim_addresses(channel, now_ms, lease, limit)
            } else {
                ledger.claim(channel, now_ms, lease, limit)
            }
        })
        .await?;
        if claimed.is_empty() {
            return Ok(None);
        }
        let n = claimed.len();
        let mut by_job: Vec<(Arc<str>, Vec<Claimed>)> = Vec::new();
        if claimed.iter().all(|c| c.job_id == claimed[0].job_id) {
            // Mostly one job (a fan-out): the claim as it is, not moved delivery by delivery.
            by_job.push((claimed[0].job_id.clone(), claimed));
        } else {
            for c in claimed {
                match by_job.iter_mut().find(|(j, _)| *j == c.job_id) {
                    Some((_, v)) => v.push(c),
                    None => by_job.push((c.job_id.clone(), vec![c])),
                }
            }
        }
        let mut records = Vec::with_capacity(n);
        for (job_id, claimed) in by_job {
            self.send(lane, channel, &job_id, claimed, unknown, now, &mut records)
                .await?;
        }
        Ok(Some(Sent {
            claimed: n,
            records,
            now,
        }))
    }

    /// Record the outcomes of a send. What was handed to the channel has gone out, so its
    /// outcomes are kept and written again with backoff while the ledger cannot write (disk
    /// full, read-only, I/O error) instead of being dropped: dropped, the deliveries would stay
    /// `sending` until their lease ran out and then need a status query (or, on a channel
    /// without one, a resend) to learn what this worker already knows. The retries stop when
    /// the claim's lease runs out: from then on the delivery is `unknown` and the status query
    /// owns it, and the error goes back to the worker loop.
    async fn record(
        &self,
        channel: ChannelKind,
        records: Vec<Record>,
        now: DateTime<FixedOffset>,
    ) -> Result<Vec<Record>, EngineError> {
        let records = Arc::new(records);
        let started = std::time::Instant::now();
        let mut backoff = RECORD_RETRY_FIRST;
        let mut outage = false;
        loop {
            let (ledger, batch) = (self.ledger.clone(), records.clone());
            match blocking(move || ledger.record(&batch, now)).await {
                Ok(()) => {
                    crate::events::written();
                    if outage {
                        tracing::info!(channel = %channel, deliveries = records.len(), "delivery outcomes recorded after the ledger came back");
                    }
                    return Ok(Arc::try_unwrap(records).unwrap_or_else(|r| (*r).clone()));
                }
                Err(EngineError::Ledger(LedgerError::Corrupt(d))) => {
                    return Err(EngineError::Ledger(LedgerError::Corrupt(d)));
                }
                Err(error) if started.elapsed() + backoff < self.lease => {
                    if !outage {
                        tracing::error!(channel = %channel, deliveries = records.len(), %error, "cannot record delivery outcomes; keeping them and retrying with backoff");
                        outage = true;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(RECORD_RETRY_MAX);
                }
                Err(error) => return Err(error),
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn send(
        &self,
        lane: &Lane,
        channel: ChannelKind,
        job_id: &str,
        claimed: Vec<Claimed>,
        unknown: bool,
        now: DateTime<FixedOffset>,
        records: &mut Vec<Record>,
    ) -> Result<(), EngineError> {
        let fail = |c: &Claimed, code: &str, detail: String| Record {
            id: c.id,
            state: State::Failed,
            code: Some(code.into()),
            detail: Some(detail),
            retry_at: None,
            deferred: false,
            lease_until: Some(c.lease_until),
        };
        let job = match self.job(job_id).await {
            Ok(Some(job)) => job,
            Ok(None) => {
                let detail = format!("job {job_id} is not in the ledger");
                records.extend(
                    claimed
                        .iter()
                        .map(|c| fail(c, "job_missing", detail.clone())),
                );
                return Ok(());
            }
            // One unreadable job must not stop the deliveries of every other job.
            Err(EngineError::Ledger(LedgerError::Corrupt(detail))) => {
                tracing::error!(job = job_id, %detail, "stored job cannot be read; its deliveries fail");
                records.extend(
                    claimed
                        .iter()
                        .map(|c| fail(c, "job_unreadable", detail.clone())),
                );
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let mut items = Vec::with_capacity(claimed.len());
        let mut sendable = Vec::with_capacity(claimed.len());
        // Looked up once for the claim's deliveries of the job, not once each.
        let shared = (!Templates::is_personal(channel)).then(|| self.shared_content(&job, channel));
        for mut c in claimed {
            let content = match &shared {
                Some(shared) => shared.clone(),
                None => self.personal_content(&job, channel, &c),
            };
            match content {
                Ok(content) => {
                    // Who it is for goes with the item; the claim keeps what recording needs.
                    items.push(Item {
                        delivery_id: c.id,
                        recipient: std::mem::take(&mut c.recipient),
                        name: std::mem::take(&mut c.name),
                        role: std::mem::take(&mut c.role),
                        address: c.address.take(),
                        attempt: c.attempt,
                        content,
                    });
                    sendable.push(c);
                }
                // Art 3 (accuracy): a notice that no longer renders is not sent at all.
                Err(e) => records.push(fail(&c, "template_error", e)),
            }
        }
        // A recipient's limit: what is over it waits for the window that allows it, without
        // using up an attempt. Status queries send nothing new and are not counted.
        if let (Some(limiter), false) = (&lane.recipients, unknown) {
            let addresses: Vec<&str> = items
                .iter()
                .map(|i| i.address.as_deref().unwrap_or(""))
                .collect();
            // Replicas on one PostgreSQL ledger share the counts there; a ledger that keeps
            // none (SQLite: one process) leaves them to this process's limiter. Only items with
            // an address go to the ledger: the others are never held back (below).
            let now_ms = now.timestamp_millis();
            let (positions, owned): (Vec<usize>, Vec<String>) = items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| item.address.clone().map(|a| (i, a)))
                .unzip();
            let (ledger, windows) = (self.ledger.clone(), limiter.windows.clone());
            let shared = blocking(move || {
                let addresses: Vec<&str> = owned.iter().map(String::as_str).collect();
                ledger.take_recipient_quota(channel, &addresses, &windows, now_ms)
            })
            .await;
            // Without the shared counts nothing is known about these recipients today: hold the
            // deliveries back briefly (no attempt used) rather than fail the claim, whose other
            // jobs may already have gone out and must be recorded.
            let unavailable = shared.is_err();
            let shared = shared.unwrap_or_else(|error| {
                tracing::warn!(channel = %channel, %error, "shared recipient counts unavailable; deferring");
                Some(vec![Some(QUOTA_UNAVAILABLE_RETRY_MS); positions.len()])
            });
            let waits = match shared {
                Some(shared) => {
                    let mut waits = vec![None; items.len()];
                    for (i, wait) in positions.into_iter().zip(shared) {
                        waits[i] = wait.map(|ms| Duration::from_millis(ms.max(0) as u64));
                    }
                    waits
                }
                None => limiter.take(&addresses, now_ms),
            };
            let mut kept = Vec::with_capacity(items.len());
            let mut kept_claims = Vec::with_capacity(items.len());
            for ((item, c), wait) in items.into_iter().zip(sendable).zip(waits) {
                match wait {
                    Some(wait) if item.address.is_some() => {
                        tracing::info!(delivery = c.id, channel = %channel, wait_s = wait.as_secs(), "recipient over the channel's limit; deferred");
                        records.push(Record {
                            id: c.id,
                            state: State::Pending,
                            code: Some("recipient_limit".into()),
                            detail: Some(if unavailable {
                                format!(
                                    "the recipient counts could not be read; deferred {} s",
                                    wait.as_secs()
                                )
                            } else {
                                format!(
                                    "this recipient reached the channel's limit; deferred {} s",
                                    wait.as_secs()
                                )
                            }),
                            retry_at: Some(now.timestamp_millis() + wait.as_millis() as i64),
                            deferred: true,
                            lease_until: Some(c.lease_until),
                        });
                    }
                    _ => {
                        kept.push(item);
                        kept_claims.push(c);
                    }
                }
            }
            items = kept;
            sendable = kept_claims;
        }
        if items.is_empty() {
            return Ok(());
        }
        // One call to the channel per `batch_size` (e.g. 200 numbers per SMS API call); the
        // calls of one claim go out together (each still waits for the account's rate limit),
        // so a provider's latency is paid once per claim, not once per call.
        let mut items = items.into_iter();
        let mut calls = tokio::task::JoinSet::new();
        // Each call's deliveries, as a range of `sendable` (which items follow, one for one).
        let mut claims: Vec<std::ops::Range<usize>> = Vec::new();
        loop {
            let chunk: Vec<Item> = items.by_ref().take(lane.batch_size).collect();
            if chunk.is_empty() {
                break;
            }
            let start = claims.last().map_or(0, |r| r.end);
            claims.push(start..start + chunk.len());
            if let Some(limiter) = &lane.limiter {
                let waiting = std::time::Instant::now();
                limiter.until_ready().await;
                crate::metrics::rate_limit_wait(channel, waiting.elapsed());
            }
            let batch = Batch {
                job: job.clone(),
                channel,
                items: chunk,
                now,
            };
            let (n, transport) = (claims.len() - 1, lane.channel.clone());
            calls.spawn(async move {
                let started = std::time::Instant::now();
                let outcomes = if unknown {
                    transport.resolve(&batch).await
                } else {
                    transport.deliver(&batch).await
                };
                crate::metrics::provider_call(channel, started.elapsed());
                (n, outcomes)
            });
        }
        let mut answers: Vec<Option<Vec<Outcome>>> = vec![None; claims.len()];
        while let Some(done) = calls.join_next().await {
            match done {
                Ok((n, outcomes)) => answers[n] = Some(outcomes),
                // A channel that panicked: what it held may have been sent.
                Err(e) => {
                    tracing::error!(channel = %channel, error = %e, "a channel call failed unexpectedly; its deliveries are unknown")
                }
            }
        }
        for (claimed, outcomes) in claims.into_iter().zip(answers) {
            let mut outcomes = outcomes.unwrap_or_default().into_iter();
            for c in &sendable[claimed] {
                let outcome = outcomes.next().unwrap_or(Outcome::Unknown {
                    detail: "the channel returned no outcome for this delivery".into(),
                });
                records.push(decide(c, outcome, &lane.retry, now, fastrand::f64()));
            }
        }
        Ok(())
    }

    /// Housekeeping of every channel (publicity periods closing, …).
    pub fn tick(&self) {
        let now = clock::now();
        for (kind, lane) in &self.lanes {
            if let Err(error) = lane.channel.tick(now) {
                tracing::warn!(channel = %kind, %error, "channel housekeeping failed");
            }
        }
    }

    /// Run every lane until nothing is due and no retry is pending: deliveries scheduled for
    /// later (`publish_at`) stay pending, and deliveries left unknown get one status query.
    pub async fn drain(self: &Arc<Self>) -> Result<(), EngineError> {
        let ledger = self.ledger.clone();
        let now_ms = clock::now().timestamp_millis();
        let expired = blocking(move || ledger.expire_leases(now_ms)).await?;
        if expired > 0 {
            tracing::warn!(
                deliveries = expired,
                "deliveries left in flight by an earlier run are now unknown; asking their channels"
            );
        }
        self.tick();
        let mut set = tokio::task::JoinSet::new();
        for (&channel, lane) in &self.lanes {
            for _ in 0..lane.concurrency {
                let engine = self.clone();
                set.spawn(async move { engine.drain_lane(channel).await });
            }
        }
        let mut first_error = None;
        while let Some(res) = set.join_next().await {
            let res = res
                .map_err(|e| EngineError::Task(e.to_string()))
                .and_then(|r| r);
            if let (Err(e), None) = (res, &first_error) {
                first_error = Some(e);
            }
        }
        self.tick();
        first_error.map_or(Ok(()), Err)
    }

    async fn drain_lane(&self, channel: ChannelKind) -> Result<(), EngineError> {
        while self.step(channel, true).await? > 0 {}
        let mut behind = None;
        loop {
            match self.step_behind(channel, false, &mut behind).await {
                Ok(0) => {}
                Ok(_) => continue,
                Err(e) => {
                    // What was sent is recorded before the error goes up, if the ledger lets it.
                    let _ = self.record_behind(channel, &mut behind).await;
                    return Err(e);
                }
            }
            if let Some(end) = self
                .lanes
                .get(&channel)
                .and_then(|l| l.quiet_until(clock::now()))
            {
                // A one-shot run does not wait for the morning: what is due stays pending and
                // goes out at the next run or in `serve` once the window ends.
                tracing::info!(channel = %channel, until = %end.format("%Y-%m-%d %H:%M"), "quiet hours: deliveries deferred to the end of the window");
                return Ok(());
            }
            let ledger = self.ledger.clone();
            match blocking(move || ledger.next_retry(channel)).await? {
                Some(due) => {
                    let wait = (due - clock::now().timestamp_millis()).max(0) as u64;
                    tokio::time::sleep(Duration::from_millis(wait.min(60_000))).await;
                }
                None => return Ok(()),
            }
        }
    }
}

/// How long an idle worker sleeps before looking again (a job accepted wakes it sooner).
const IDLE_POLL: Duration = Duration::from_secs(1);
/// How often the service looks for claims whose lease ran out, and runs channel housekeeping.
const HOUSEKEEPING: Duration = Duration::from_secs(5);

impl Engine {
    /// The service's delivery workers: every lane runs until `shutdown`, each with its own
    /// workers (so a slow or failing channel never holds up another), waking when a job is
    /// accepted (`wake`) or a delivery falls due. A worker finishes the batch in hand before it
    /// stops; what a hard stop cuts off is `sending` in the ledger and becomes `unknown` when its
    /// lease runs out, to be resolved by the status query at the next start.
    pub async fn run(self: Arc<Self>, shutdown: Shutdown, wake: Arc<Notify>) {
        let mut set = tokio::task::JoinSet::new();
        for (&channel, lane) in &self.lanes {
            for _ in 0..lane.concurrency {
                let (engine, shutdown, wake) = (self.clone(), shutdown.clone(), wake.clone());
                set.spawn(async move { engine.work(channel, shutdown, wake).await });
            }
        }
        let engine = self.clone();
        let mut stop = shutdown.clone();
        set.spawn(async move {
            loop {
                let ledger = engine.ledger.clone();
                let now_ms = clock::now().timestamp_millis();
                match blocking(move || ledger.expire_leases(now_ms)).await {
                    Ok(0) => {}
                    Ok(n) => tracing::warn!(
                        deliveries = n,
                        "leases ran out; those deliveries are unknown and go to the status query"
                    ),
                    Err(error) => tracing::warn!(%error, "could not look for expired leases"),
                }
                engine.tick();
                tokio::select! {
                    _ = tokio::time::sleep(HOUSEKEEPING) => {}
                    _ = stop.wait() => return,
                }
            }
        });
        while set.join_next().await.is_some() {}
    }

    async fn work(&self, channel: ChannelKind, mut shutdown: Shutdown, wake: Arc<Notify>) {
        let mut failing = false;
        // The batch sent and not yet recorded (see `step_behind`).
        let mut behind = None;
        loop {
            if shutdown.is_set() {
                return self.stop_worker(channel, &mut behind).await;
            }
            let behind = &mut behind;
            let done = async {
                let unknown = self.step(channel, true).await?;
                Ok::<usize, EngineError>(unknown + self.step_behind(channel, false, behind).await?)
            };
            let quiet = self
                .lanes
                .get(&channel)
                .and_then(|l| l.quiet_until(clock::now()));
            let wait = match done.await {
                Ok(_) if quiet.is_some() => IDLE_POLL,
                Ok(n) if n > 0 => {
                    failing = false;
                    continue;
                }
                Ok(_) => {
                    if failing {
                        tracing::info!(channel = %channel, "delivery worker: ledger reachable again");
                        failing = false;
                    }
                    let ledger = self.ledger.clone();
                    match blocking(move || ledger.next_due(channel)).await {
                        Ok(Some(due)) => Duration::from_millis(
                            (due - clock::now().timestamp_millis()).max(0) as u64,
                        )
                        .min(IDLE_POLL),
                        _ => IDLE_POLL,
                    }
                }
                Err(error) => {
                    // Logged once per outage, not once per retry.
                    if !failing {
                        tracing::error!(channel = %channel, %error, "delivery worker: ledger unavailable; retrying every second");
                        failing = true;
                    }
                    IDLE_POLL
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = wake.notified() => {}
                _ = shutdown.wait() => return self.stop_worker(channel, behind).await,
            }
        }
    }

    /// A worker stops: it records the batch it sent last, if that is not recorded yet.
    async fn stop_worker(&self, channel: ChannelKind, behind: &mut Option<Sent>) {
        if let Err(error) = self.record_behind(channel, behind).await {
            tracing::error!(channel = %channel, %error, "delivery worker stopping: the outcomes of its last batch are not recorded; they go to the status query when the lease runs out");
        }
    }
}

/// What the engine makes of a channel's outcome: final, or pending again with a retry time.
pub fn decide(
    c: &Claimed,
    outcome: Outcome,
    retry: &RetryPolicy,
    now: DateTime<FixedOffset>,
    random: f64,
) -> Record {
    let now_ms = now.timestamp_millis();
    let record = |state, code: Option<String>, detail: Option<String>, retry_at| Record {
        id: c.id,
        state,
        code,
        detail,
        retry_at,
        deferred: false,
        lease_until: Some(c.lease_until),
    };
    let again = |code: String, detail: String, at_least: Duration| {
        if c.attempt >= retry.max_attempts {
            tracing::warn!(delivery = c.id, channel = %c.channel, attempts = c.attempt, %code, "delivery failed; giving up");
            return record(
                State::Failed,
                Some(code.clone()),
                Some(format!(
                    "gave up after {} attempts; last: {code}: {detail}",
                    c.attempt
                )),
                None,
            );
        }
        let wait = retry.backoff(c.attempt, random).max(at_least);
        tracing::info!(delivery = c.id, channel = %c.channel, attempt = c.attempt, %code, wait_ms = wait.as_millis() as u64, "delivery failed; retrying");
        record(
            State::Pending,
            Some(code),
            Some(detail),
            Some(now_ms + wait.as_millis() as i64),
        )
    };
    match outcome {
        Outcome::Delivered { reference } => record(State::Delivered, reference, None, None),
        Outcome::Failed {
            code,
            permanent: true,
            detail,
        } => record(State::Failed, Some(code), Some(detail), None),
        Outcome::Failed {
            code,
            permanent: false,
            detail,
        } => again(code, detail, Duration::ZERO),
        Outcome::RetryAfter { after, code } => again(
            code,
            format!("asked to retry after {} s", after.as_secs()),
            after,
        ),
        Outcome::Skipped { reason } => record(State::Skipped, Some(reason), None, None),
        Outcome::Unknown { detail } => record(
            State::Unknown,
            Some("unknown".into()),
            Some(detail),
            Some(now_ms + UNKNOWN_RECHECK.as_millis() as i64),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claimed(attempt: u32) -> Claimed {
        Claimed {
            id: 7,
            job_id: "j".into(),
            channel: ChannelKind::Sms,
            recipient: "r".into(),
            name: "n".into(),
            role: "member".into(),
            address: None,
            attempt,
            lease_until: 0,
        }
    }

    fn now() -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339("2026-12-01T09:00:00+08:00").unwrap()
    }

    const POLICY: RetryPolicy = RetryPolicy {
        max_attempts: 3,
        base_ms: 1000,
        max_ms: 60_000,
    };

    #[test]
    fn a_status_claim_is_what_the_workers_can_settle_in_half_the_lease() {
        // The chaos test's lane: 20 queries a second, a 1 s lease, four workers.
        assert_eq!(status_claim(20, Duration::from_secs(1), 4), 2);
        // The shipped defaults: a claim is never the limit.
        assert_eq!(status_claim(20, Duration::from_secs(120), 1), 1_200);
        // Never nothing: one query at a time still settles.
        assert_eq!(status_claim(1, Duration::from_secs(1), 8), 1);
        assert_eq!(status_claim(5, Duration::from_secs(1), 0), 2);
    }

    #[test]
    fn transient_failures_are_retried_with_backoff_then_given_up() {
        let t = now().timestamp_millis();
        let fail = || Outcome::Failed {
            code: "E5xx".into(),
            permanent: false,
            detail: "503".into(),
        };
        let r = decide(&claimed(1), fail(), &POLICY, now(), 1.0);
        assert_eq!((r.state, r.retry_at), (State::Pending, Some(t + 1000)));
        let r = decide(&claimed(2), fail(), &POLICY, now(), 1.0);
        assert_eq!(r.retry_at, Some(t + 2000));
        let r = decide(&claimed(3), fail(), &POLICY, now(), 1.0);
        assert_eq!(r.state, State::Failed);
        assert!(r.detail.unwrap().starts_with("gave up after 3 attempts"));
    }

    #[test]
    fn retry_after_is_honoured_when_longer_than_the_backoff() {
        let t = now().timestamp_millis();
        let r = decide(
            &claimed(1),
            Outcome::RetryAfter {
                after: Duration::from_secs(30),
                code: "429".into(),
            },
            &POLICY,
            now(),
            1.0,
        );
        assert_eq!((r.state, r.retry_at), (State::Pending, Some(t + 30_000)));
    }

    #[test]
    fn permanent_failures_skips_and_unknowns_are_not_retried() {
        let r = decide(
            &claimed(1),
            Outcome::Failed {
                code: "bad_number".into(),
                permanent: true,
                detail: String::new(),
            },
            &POLICY,
            now(),
            0.5,
        );
        assert_eq!(r.state, State::Failed);
        let r = decide(
            &claimed(1),
            Outcome::Skipped {
                reason: "opted_out".into(),
            },
            &POLICY,
            now(),
            0.5,
        );
        assert_eq!(r.state, State::Skipped);
        let r = decide(
            &claimed(1),
            Outcome::Unknown {
                detail: "timeout".into(),
            },
            &POLICY,
            now(),
            0.5,
        );
        assert_eq!(r.state, State::Unknown);
    }
}
