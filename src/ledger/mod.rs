//! The durable record (SPEC §7): jobs, planned deliveries, outcomes, the recipient directory and
//! the hash-chained audit trail. The ledger is the source of truth and the outbox: intake commits
//! a decision and every planned delivery in one transaction before a job is acknowledged, and the
//! delivery engine claims due deliveries from it. Retries, schedules, corrections ("who got the
//! original?") and status queries are all the same table.
//!
//! Two implementations pass one shared test suite (`tests/ledger.rs`): [`SqliteLedger`], the
//! embedded default for one machine, and [`PgLedger`] (`postgres://…`), which several `serve`
//! replicas share: claims with `FOR UPDATE SKIP LOCKED` and leases, one audit chain serialised
//! by an advisory lock, migrations at start-up. [`open`] picks one from the configured URL.
//!
//! [`Ledger`] is synchronous: SQLite is an in-process library, and PostgreSQL runs its blocking
//! client on threads of its own (so it may be called from async code without panicking); async
//! callers still go through `spawn_blocking` so as not to hold up the runtime.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

use crate::job::{ChannelKind, Job};
use crate::policy::{GroupKind, Plan, Refusal, Target};

pub mod audit;
mod json_text;
pub mod postgres;
pub mod sqlite;

pub use postgres::PgLedger;
pub use sqlite::SqliteLedger;

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("ledger database error: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("ledger I/O error at {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// The input of a transaction failed part-way; nothing was written.
    #[error("{0}")]
    Aborted(String),
    #[error("ledger data is inconsistent: {0}")]
    Corrupt(String),
    /// PostgreSQL's answer (never with the connection's password).
    #[error("ledger database error (PostgreSQL): {0}")]
    Pg(String),
    /// PostgreSQL cannot be reached or cannot take writes now (connection lost, server shutting
    /// down, disk full): nothing about the request, which works once the server is back.
    #[error("ledger unavailable (PostgreSQL): {0}")]
    PgUnavailable(String),
    /// The URL, with any password masked.
    #[error("unsupported ledger url {0:?}: use a file path, sqlite://PATH, or postgres://…")]
    UnsupportedUrl(String),
}

impl LedgerError {
    /// The ledger as a whole cannot record anything now — its disk is full or read-only, an I/O
    /// error, the database server is gone — as opposed to something about one request. Intake
    /// holds its jobs through such an outage instead of handing them back to the broker, whose
    /// delivery limit would otherwise dead-letter approved jobs for a full disk (SPEC §5).
    pub fn is_unavailable(&self) -> bool {
        use rusqlite::ErrorCode as C;
        match self {
            LedgerError::Io { .. } | LedgerError::PgUnavailable(_) => true,
            LedgerError::Db(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.code,
                C::DiskFull
                    | C::SystemIoFailure
                    | C::ReadOnly
                    | C::CannotOpen
                    | C::DatabaseBusy
                    | C::DatabaseLocked
                    | C::OutOfMemory
                    | C::FileLockingProtocolFailed
            ),
            _ => false,
        }
    }
}

/// One row of the recipient directory.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub id: String,
    pub name: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub wechat_openid: Option<String>,
    pub wecom_userid: Option<String>,
    pub postcode: Option<String>,
    pub address: Option<String>,
    pub opted_out: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupInfo {
    pub name: String,
    pub kind: GroupKind,
    pub members: u64,
    pub imported_at: String,
}

/// State of one planned delivery (SPEC §4: every recipient gets an explicit outcome).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Planned; due at `due_at` (a retry or a `publish_at` in the future).
    Pending,
    /// Claimed by a worker and handed to the channel; a lease that expires makes it `Unknown`.
    Sending,
    Delivered,
    Failed,
    /// Not sent on purpose: opted out, or no address for this channel.
    Skipped,
    /// Sent, result not known: resolved by the channel's status query, never blindly resent.
    Unknown,
    /// Withdrawn before it went out (a retraction or a cancelled schedule).
    Cancelled,
}

impl State {
    pub const ALL: [State; 7] = [
        State::Pending,
        State::Sending,
        State::Delivered,
        State::Failed,
        State::Skipped,
        State::Unknown,
        State::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Sending => "sending",
            State::Delivered => "delivered",
            State::Failed => "failed",
            State::Skipped => "skipped",
            State::Unknown => "unknown",
            State::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|x| x.as_str() == s)
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            State::Delivered | State::Failed | State::Skipped | State::Cancelled
        )
    }
}

/// What intake asks the ledger to record for an accepted job.
#[derive(Debug, Clone)]
pub struct Acceptance<'a> {
    pub job: &'a Job,
    /// The exact bytes received, kept for audit and re-rendering.
    pub body: &'a [u8],
    pub plan: &'a Plan,
    pub now: DateTime<FixedOffset>,
}

/// One decision to record with [`Ledger::commit`].
#[derive(Debug, Clone)]
pub enum Decision<'a> {
    Accept(Acceptance<'a>),
    Refuse {
        job_id: Option<&'a str>,
        body: &'a [u8],
        refusals: &'a [Refusal],
        now: DateTime<FixedOffset>,
    },
}

/// What [`Ledger::commit`] recorded for each decision, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Committed {
    Accepted(Accepted),
    /// The sequence number of the refusal record.
    Refused(i64),
}

/// The result of [`Ledger::accept`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// Committed; the number of deliveries planned per channel (skipped ones included).
    New { planned: BTreeMap<ChannelKind, u64> },
    /// The job id was seen before: nothing planned (SPEC §2: a duplicate is not a refusal).
    Duplicate,
}

/// A delivery claimed by a worker.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    pub id: i64,
    /// Shared: the SQLite ledger gives a claim's deliveries of one job one string.
    pub job_id: Arc<str>,
    pub channel: ChannelKind,
    pub recipient: String,
    pub name: String,
    pub role: String,
    pub address: Option<String>,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// When this claim's lease runs out (milliseconds since the epoch); it also names the claim,
    /// so that an outcome is recorded only while the claim still holds the delivery.
    pub lease_until: i64,
}

/// What the engine decided about one claimed delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub id: i64,
    pub state: State,
    /// Provider code or reason (`opted_out`, `isv.MOBILE_NUMBER_ILLEGAL`, …).
    pub code: Option<String>,
    pub detail: Option<String>,
    /// For `Pending`: when to try again (milliseconds since the epoch).
    pub retry_at: Option<i64>,
    /// Pending again without having been handed to the channel (a recipient's limit): the
    /// claim's attempt is given back, so waiting never uses up the retries.
    pub deferred: bool,
    /// The claim this outcome belongs to ([`Claimed::lease_until`]). It is recorded only if
    /// that claim still holds the delivery, or nobody does (its lease ran out and it is
    /// `unknown`): a worker whose lease ran out must not overwrite what the worker that claimed
    /// the delivery after it is doing. `None`: no such check (tests).
    pub lease_until: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobSummary {
    pub id: String,
    pub kind: String,
    pub category: String,
    pub scope: String,
    pub title: String,
    pub accepted_at: String,
    pub publish_at: Option<String>,
    pub status: String,
    /// channel → state → count
    pub outcomes: BTreeMap<String, BTreeMap<String, u64>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryRow {
    pub id: i64,
    pub channel: String,
    pub recipient: String,
    pub name: String,
    pub role: String,
    pub state: String,
    pub attempts: u32,
    pub code: Option<String>,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RefusalRow {
    pub seq: i64,
    pub at: String,
    pub job_id: Option<String>,
    pub refusals: Vec<Refusal>,
}

/// An event for upstream systems: `job.accepted`, `job.refused`, `delivery.delivered`,
/// `delivery.failed`, `delivery.unknown`, `job.completed`, `job.cancelled`. `payload` is the JSON
/// to publish.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub seq: i64,
    pub name: String,
    pub job_id: Option<String>,
    pub payload: String,
}

/// The first broken link of the audit chain, or how many entries verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainStatus {
    Intact { entries: u64 },
    Broken { seq: i64, reason: String },
}

/// What [`Ledger::cancel`] did to a job's deliveries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Cancellation {
    /// Deliveries cancelled now (they were pending: scheduled, waiting for a retry, or held by
    /// quiet hours or a recipient's limit), per channel.
    pub cancelled: BTreeMap<String, u64>,
    /// Every other delivery of the job, untouched, per state (`sending`, `delivered`, `failed`,
    /// `unknown`: handed to a channel; `skipped`, `cancelled`: never going out).
    pub untouched: BTreeMap<String, u64>,
}

impl Cancellation {
    pub fn cancelled_total(&self) -> u64 {
        self.cancelled.values().sum()
    }

    /// Deliveries already handed to a channel, which only a retraction can answer (Art 17).
    pub fn handed_over(&self) -> u64 {
        ["sending", "delivered", "failed", "unknown"]
            .iter()
            .filter_map(|s| self.untouched.get(*s))
            .sum()
    }
}

/// A job as the compliance report (Art 17) and the obligations see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobRecord {
    pub id: String,
    pub kind: String,
    pub category: String,
    pub scope: String,
    pub title: String,
    pub corrects: Option<String>,
    pub accepted_at: String,
    pub publish_at: Option<String>,
    pub expires_at: Option<String>,
    /// When a delivery of it first reached someone (delivered or unknown), if one did.
    pub first_out: Option<DateTime<FixedOffset>>,
    /// The retraction that withdrew it, if any.
    pub retracted_by: Option<String>,
    /// channel → state → count
    pub outcomes: BTreeMap<String, BTreeMap<String, u64>>,
    /// The approval reference (文号) of the job as accepted.
    pub reference: Option<String>,
    /// `data.reason` of a correction or retraction, or the correction text (`data.correction`).
    pub reason: Option<String>,
}

/// One entry of the audit trail.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: String,
    pub kind: String,
    pub job_id: Option<String>,
    /// The entry's JSON body as recorded (not re-verified here: see [`Ledger::verify_audit`]).
    pub body: serde_json::Value,
}

/// A change an operator recorded for an obligation that falls due after a change (e.g. the
/// leadership team's composition after a change, Art 6(2)).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangeRecord {
    pub seq: i64,
    pub obligation: String,
    /// The day the change took effect (China Standard Time).
    pub on: chrono::NaiveDate,
    pub note: String,
    pub recorded_at: String,
}

/// The durable record. Implementations: [`SqliteLedger`], [`PgLedger`].
pub trait Ledger: Send + Sync {
    /// Replace a group of the directory in one transaction (SPEC: re-import replaces the group).
    fn replace_group(
        &self,
        name: &str,
        kind: GroupKind,
        members: &mut dyn Iterator<Item = Result<Member, String>>,
        now: DateTime<FixedOffset>,
    ) -> Result<u64, LedgerError>;
    /// Kinds of the named groups that exist (for the policy's audience rules).
    fn group_kinds(&self, names: &[String]) -> Result<HashMap<String, GroupKind>, LedgerError>;
    /// Which of `ids` are members of a leadership group (Art 8: the roster).
    fn on_roster(&self, ids: &[String]) -> Result<HashSet<String>, LedgerError>;
    fn groups(&self) -> Result<Vec<GroupInfo>, LedgerError>;
    /// Members of a group with the address each channel would use, in id order (for `check`).
    fn members(
        &self,
        group: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Member>, LedgerError>;

    /// Whether a job id is already recorded.
    fn has_job(&self, id: &str) -> Result<bool, LedgerError>;
    /// Which of these job ids are already recorded (a batch at intake asks once, not per job).
    fn known_jobs(&self, ids: &[String]) -> Result<HashSet<String>, LedgerError> {
        let mut out = HashSet::new();
        for id in ids {
            if self.has_job(id)? {
                out.insert(id.clone());
            }
        }
        Ok(out)
    }
    /// Record decisions in one transaction (group commit: many jobs arriving at once cost one
    /// commit): each accepted job with every planned delivery and its audit entry and event, or
    /// each refusal with its reasons. All or nothing.
    fn commit(&self, decisions: &[Decision<'_>]) -> Result<Vec<Committed>, LedgerError>;
    /// Record one accepted job and every planned delivery in one transaction.
    fn accept(&self, a: &Acceptance<'_>) -> Result<Accepted, LedgerError> {
        match self.commit(&[Decision::Accept(a.clone())])?.pop() {
            Some(Committed::Accepted(a)) => Ok(a),
            _ => Err(LedgerError::Corrupt(
                "commit answered an acceptance with something else".into(),
            )),
        }
    }
    /// Record a refusal with its audit entry. Refused attempts do not occupy the job id: a forged
    /// job must not be able to block the real one.
    fn refuse(
        &self,
        job_id: Option<&str>,
        body: &[u8],
        refusals: &[Refusal],
        now: DateTime<FixedOffset>,
    ) -> Result<i64, LedgerError> {
        match self
            .commit(&[Decision::Refuse {
                job_id,
                body,
                refusals,
                now,
            }])?
            .pop()
        {
            Some(Committed::Refused(seq)) => Ok(seq),
            _ => Err(LedgerError::Corrupt(
                "commit answered a refusal with something else".into(),
            )),
        }
    }
    /// What a correction or retraction refers to (None: never accepted).
    fn target(&self, id: &str) -> Result<Option<Target>, LedgerError>;
    /// The job as accepted.
    fn job(&self, id: &str) -> Result<Option<Job>, LedgerError>;

    /// Deliveries whose lease expired while `sending` become `unknown` (the process died or the
    /// call hung between handing over and recording). Returns how many.
    fn expire_leases(&self, now_ms: i64) -> Result<u64, LedgerError>;
    /// Claim up to `limit` due deliveries of one channel, marking them `sending` with a lease.
    fn claim(
        &self,
        channel: ChannelKind,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<Claimed>, LedgerError>;
    /// [`Ledger::claim`] for a channel that sends by address alone
    /// ([`crate::channels::Channel::sends_by_address`]): the claimed deliveries' recipient,
    /// name and role may be left empty, which spares reading them.
    fn claim_addresses(
        &self,
        channel: ChannelKind,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<Claimed>, LedgerError> {
        self.claim(channel, now_ms, lease_ms, limit)
    }
    /// Claim up to `limit` `unknown` deliveries of one channel for a status query.
    fn claim_unknown(
        &self,
        channel: ChannelKind,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<Claimed>, LedgerError>;
    /// Record outcomes of claimed deliveries in one transaction, with one audit entry.
    fn record(&self, records: &[Record], now: DateTime<FixedOffset>) -> Result<(), LedgerError>;
    /// Earliest `due_at` of pending or unknown deliveries of a channel, if any.
    fn next_due(&self, channel: ChannelKind) -> Result<Option<i64>, LedgerError>;
    /// Earliest `due_at` of a retry (a pending delivery already attempted) of a channel.
    fn next_retry(&self, channel: ChannelKind) -> Result<Option<i64>, LedgerError>;
    /// Count of deliveries of the given jobs per state (all jobs when `jobs` is empty).
    fn counts(&self, jobs: &[String]) -> Result<BTreeMap<State, u64>, LedgerError>;
    /// Count of the open deliveries of all jobs (pending, sending, unknown) per state: what the
    /// partial indexes of the open states answer without walking every delivery ever planned.
    fn open_counts(&self) -> Result<BTreeMap<State, u64>, LedgerError>;

    /// Take one message per address against per-recipient limits kept in the ledger, so that
    /// replicas sharing one ledger share the counts (issue 4: "per recipient … so that no
    /// citizen is flooded"). `windows` are (window length in seconds, messages per window),
    /// natural windows in UTC+8 as [`crate::pace::RecipientLimiter`] counts them. Per address,
    /// in order: `None` taken (counted in every window), or `Some(ms)` over a limit, to wait until
    /// the window that allows it ends. An address appearing twice is counted twice.
    ///
    /// `Ok(None)`: this ledger keeps no shared counts (one process owns it, as SQLite); the
    /// caller counts in memory.
    fn take_recipient_quota(
        &self,
        channel: ChannelKind,
        addresses: &[&str],
        windows: &[(u32, u32)],
        now_ms: i64,
    ) -> Result<Option<Vec<Option<i64>>>, LedgerError> {
        let _ = (channel, addresses, windows, now_ms);
        Ok(None)
    }

    /// Events not yet published, oldest first (the transactional outbox).
    fn pending_events(&self, limit: usize) -> Result<Vec<Event>, LedgerError>;
    /// Mark events as published (after the broker confirmed them).
    fn mark_published(&self, seqs: &[i64], now: DateTime<FixedOffset>) -> Result<(), LedgerError>;

    fn jobs(&self, limit: usize) -> Result<Vec<JobSummary>, LedgerError>;
    fn job_summary(&self, id: &str) -> Result<Option<JobSummary>, LedgerError>;
    fn deliveries(&self, job_id: &str, limit: usize) -> Result<Vec<DeliveryRow>, LedgerError>;
    fn refusals(&self, limit: usize) -> Result<Vec<RefusalRow>, LedgerError>;

    /// Recompute the audit chain from the first entry and name the first broken one.
    fn verify_audit(&self) -> Result<ChainStatus, LedgerError>;

    /// Cancel the deliveries of job `job_id` not yet handed to any channel (state `pending`:
    /// scheduled, waiting for a retry, or held by quiet hours or a limit), in one transaction
    /// with an audit entry (`job.cancelled`, with the reason and counts) and a `job.cancelled`
    /// event. Deliveries in flight or done are untouched. `None`: no such accepted job. When
    /// nothing was pending, nothing is written.
    fn cancel(
        &self,
        job_id: &str,
        reason: &str,
        now: DateTime<FixedOffset>,
    ) -> Result<Option<Cancellation>, LedgerError>;
    /// Whether a refusal was recorded for this job id (a cancel of a refused job says so).
    fn was_refused(&self, job_id: &str) -> Result<bool, LedgerError>;
    /// Accepted jobs active in `[from, to)`: accepted then, or with a delivery that reached
    /// someone then. Oldest first.
    fn jobs_active_between(
        &self,
        from: DateTime<FixedOffset>,
        to: DateTime<FixedOffset>,
    ) -> Result<Vec<JobRecord>, LedgerError>;
    /// Accepted releases and notices (not corrections or retractions) of a category, oldest first.
    fn jobs_in_category(&self, category: &str) -> Result<Vec<JobRecord>, LedgerError>;
    /// Refusals recorded in `[from, to)`, oldest first.
    fn refusals_between(
        &self,
        from: DateTime<FixedOffset>,
        to: DateTime<FixedOffset>,
    ) -> Result<Vec<RefusalRow>, LedgerError>;
    /// Audit entries of one kind recorded in `[from, to)`, oldest first.
    fn audit_entries(
        &self,
        kind: &str,
        from: DateTime<FixedOffset>,
        to: DateTime<FixedOffset>,
    ) -> Result<Vec<AuditEntry>, LedgerError>;
    /// Record that the change an obligation follows took place on `on`, with an audit entry.
    fn record_change(
        &self,
        obligation: &str,
        on: chrono::NaiveDate,
        note: &str,
        now: DateTime<FixedOffset>,
    ) -> Result<ChangeRecord, LedgerError>;
    /// The changes recorded for an obligation, in date order.
    fn changes(&self, obligation: &str) -> Result<Vec<ChangeRecord>, LedgerError>;
}

/// An event's payload: its own `body` with the fields every event carries (`event`, `seq`,
/// `at`, `job_id`), as both ledgers write it to their outbox of events.
fn event_payload(
    mut body: serde_json::Value,
    name: &str,
    seq: i64,
    at: &str,
    job_id: Option<&str>,
) -> String {
    if let Some(obj) = body.as_object_mut() {
        obj.insert("event".into(), name.into());
        obj.insert("seq".into(), seq.into());
        obj.insert("at".into(), at.into());
        if let Some(j) = job_id {
            obj.insert("job_id".into(), j.into());
        }
    }
    body.to_string()
}

/// Open the ledger named by a URL: a path or `sqlite://PATH` (SQLite, the embedded default), or
/// `postgres://…` / `postgresql://…` (PostgreSQL: connects and applies the migrations now, so an
/// unreachable server is reported at start-up).
pub fn open(url: &str) -> Result<Box<dyn Ledger>, LedgerError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Box::new(PgLedger::open(url)?));
    }
    let Some(path) = url.strip_prefix("sqlite://") else {
        if url.contains("://") {
            return Err(LedgerError::UnsupportedUrl(redact_url(url)));
        }
        return Ok(Box::new(SqliteLedger::open(std::path::Path::new(url))?));
    };
    // `sqlite://PATH?cache_mib=N`: the page cache's bound (default 64 MiB). The cache grows with
    // the ledger file up to it; a small host can hold the service's memory lower, at some cost
    // to large fan-outs.
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let mut cache_mib = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("cache_mib", n)) => match n.parse::<u32>() {
                Ok(n) if (1..=65_536).contains(&n) => cache_mib = Some(n),
                _ => {
                    return Err(LedgerError::Aborted(format!(
                        "ledger url {url:?}: cache_mib={n}: expected a whole number of MiB from 1 to 65536"
                    )));
                }
            },
            _ => {
                return Err(LedgerError::Aborted(format!(
                    "ledger url {url:?}: unknown parameter {pair:?} (a SQLite ledger takes cache_mib=N)"
                )));
            }
        }
    }
    if path.contains("://") {
        return Err(LedgerError::UnsupportedUrl(redact_url(url)));
    }
    let ledger = SqliteLedger::open(std::path::Path::new(path))?;
    if let Some(mib) = cache_mib {
        ledger.set_cache_mib(mib)?;
    }
    Ok(Box::new(ledger))
}

/// The URL as it may be shown in logs and errors: a password (`user:PASSWORD@` or
/// `password=…`) replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let rest = scheme_end + 3;
        let authority_end = out[rest..].find(['/', '?']).map_or(out.len(), |i| rest + i);
        if let Some(at) = out[rest..authority_end].rfind('@').map(|i| rest + i)
            && let Some(colon) = out[rest..at].find(':').map(|i| rest + i)
        {
            out.replace_range(colon + 1..at, "***");
        }
    }
    if let Some(q) = out.find('?') {
        let (base, query) = out.split_at(q + 1);
        let query: Vec<String> = query
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => p.to_string(),
            })
            .collect();
        out = format!("{base}{}", query.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sqlite_url_may_bound_the_page_cache_and_nothing_else() {
        let dir = std::env::temp_dir().join(format!("disclose-cache-mib-{}", std::process::id()));
        let db = dir.join("l.db");
        let url = |q: &str| format!("sqlite://{}{q}", db.display());
        assert!(open(&url("?cache_mib=8")).is_ok());
        let cache: i64 = rusqlite::Connection::open(&db)
            .unwrap()
            .query_row("PRAGMA cache_size", [], |r| r.get(0))
            .unwrap();
        // A pragma of the connection, not of the file: a new connection has SQLite's default.
        assert_ne!(cache, -8 * 1024);
        for bad in ["?cache_mib=0", "?cache_mib=lots", "?pool_size=4"] {
            let err = open(&url(bad))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains("cache_mib"), "{bad}: {err}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn urls_are_shown_without_their_password() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/ledger?options=-c search_path=x"),
            "postgres://app:***@db:5432/ledger?options=-c search_path=x"
        );
        assert_eq!(
            redact_url("postgresql://db/ledger?user=app&password=s3cret"),
            "postgresql://db/ledger?user=app&password=***"
        );
        assert_eq!(redact_url("postgres://app@db/l"), "postgres://app@db/l");
        assert_eq!(redact_url("var/ledger.db"), "var/ledger.db");
        let e = open("mysql://root:s3cret@h/db").err().unwrap().to_string();
        assert!(!e.contains("s3cret"), "{e}");
    }

    #[test]
    fn an_unreachable_postgres_is_an_error_that_hides_the_password() {
        // Port 1 on loopback: nothing listens, the connection is refused at once.
        let e = open("postgres://app:s3cret@127.0.0.1:1/db")
            .err()
            .expect("no server there")
            .to_string();
        assert!(e.contains("PostgreSQL"), "{e}");
        assert!(!e.contains("s3cret"), "{e}");
    }
}
