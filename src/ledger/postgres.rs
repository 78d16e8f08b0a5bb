//! The PostgreSQL ledger: one database shared by several `serve` replicas (issue 7 item 4).
//!
//! Same tables, states, audit chain and outbox as the SQLite ledger, and the same shared test
//! suite (`tests/ledger.rs`). What changes is that several processes write at once:
//!
//! - Claims are `FOR UPDATE SKIP LOCKED` with leases, so replicas share the due deliveries and
//!   none is claimed twice; a replica that dies leaves `sending` rows whose lease runs out and
//!   `expire_leases` (any replica) makes them `unknown`, as on SQLite.
//! - The audit trail is one hash chain (Art 17): every transaction that appends to it first takes
//!   a transaction-scoped advisory lock keyed by the schema, so appends from two replicas never
//!   read the same chain head. Those transactions (decisions, outcomes, cancellations, imports)
//!   are thereby serial, as they are on SQLite; claims take no such lock.
//! - The events outbox is read by every replica's publisher: two may publish the same event
//!   before either marks it (at-least-once, as after a crash on SQLite; consumers key on `seq`).
//! - Migrations run at start-up in one transaction under an advisory lock, so replicas starting
//!   together do not race to create the same tables.
//!
//! The client is the blocking `postgres` crate, which runs its own runtime and panics when used
//! from inside a tokio context. Ledger methods are called from async code too, so every query
//! runs on a small pool of dedicated threads, each owning one connection; a method sends its
//! work there as a closure and waits for the answer on a std channel. A broken connection is
//! dropped and the next call on that thread connects afresh.
//!
//! Schema: the first name of the connection's `search_path` (`?options=-c search_path=NAME` in
//! the URL) is created if missing, so a URL alone selects an isolated ledger (tests, staging).
//! Text columns compared or sorted use the "C" collation: the same byte order as SQLite, whatever
//! the database's locale.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use ::postgres::{Client, NoTls, Transaction};
use chrono::{DateTime, FixedOffset};
use serde_json::json;

use super::audit::{self, GENESIS};
use super::json_text::{self, Changed};
use super::sqlite::{PAGE_RECIPIENT, named_address, ts};
use super::*;
use crate::job::{Kind, NamedRecipient, Scope};

/// Connections per ledger when the URL does not say (`pool_size=N`): enough for the engine's
/// channels, the outbox and the API to query at once without one waiting on another.
pub const DEFAULT_POOL_SIZE: usize = 4;

/// The schema version this build writes. A database at a later version is refused at start-up
/// rather than written with an older idea of the tables.
///
/// 2: `recipient_counts` (per-recipient limits shared by replicas).
const SCHEMA_VERSION: i32 = 2;

/// Advisory lock classes (the first key of the two-key form; the second is the schema's hash).
const MIGRATION_LOCK: i32 = 0x6473_6d01;
const CHAIN_LOCK: i32 = 0x6473_6301;

/// Members sent to the database per statement when a group is imported.
const IMPORT_BATCH: usize = 5_000;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER NOT NULL,
    applied_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS groups (
    name TEXT COLLATE "C" PRIMARY KEY,
    kind TEXT NOT NULL,
    members BIGINT NOT NULL,
    imported_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS members (
    grp TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    name TEXT NOT NULL,
    phone TEXT,
    email TEXT,
    wechat_openid TEXT,
    wecom_userid TEXT,
    postcode TEXT,
    address TEXT,
    opted_out BOOLEAN NOT NULL DEFAULT false,
    PRIMARY KEY (grp, id)
);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT COLLATE "C" PRIMARY KEY,
    kind TEXT NOT NULL,
    category TEXT NOT NULL,
    scope TEXT NOT NULL,
    title TEXT NOT NULL,
    corrects TEXT COLLATE "C",
    publish_at TEXT,
    expires_at TEXT,
    accepted_at TEXT COLLATE "C" NOT NULL,
    channels TEXT NOT NULL,
    groups TEXT NOT NULL,
    body BYTEA NOT NULL
);
-- "Which retraction withdrew this job?", asked for every job of a compliance report.
CREATE INDEX IF NOT EXISTS jobs_corrects ON jobs (corrects) WHERE corrects IS NOT NULL;
CREATE TABLE IF NOT EXISTS refusals (
    seq BIGSERIAL PRIMARY KEY,
    at TEXT NOT NULL,
    job_id TEXT COLLATE "C",
    refusals TEXT NOT NULL,
    body_sha256 TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS refusals_job ON refusals (job_id);
CREATE TABLE IF NOT EXISTS deliveries (
    id BIGSERIAL PRIMARY KEY,
    job_id TEXT COLLATE "C" NOT NULL,
    channel TEXT COLLATE "C" NOT NULL,
    recipient TEXT COLLATE "C" NOT NULL,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    address TEXT,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    due_at BIGINT NOT NULL,
    lease_until BIGINT,
    code TEXT,
    detail TEXT,
    updated_at BIGINT NOT NULL,
    UNIQUE (job_id, channel, recipient)
);
-- Partial indexes, as on SQLite: a delivery is in one only while it waits in that state.
CREATE INDEX IF NOT EXISTS deliveries_pending ON deliveries (channel, due_at, id) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS deliveries_unknown ON deliveries (channel, due_at, id) WHERE state = 'unknown';
CREATE INDEX IF NOT EXISTS deliveries_sending ON deliveries (lease_until) WHERE state = 'sending';
-- Deliveries waiting for a retry (`next_retry`), as in the SQLite ledger.
CREATE INDEX IF NOT EXISTS deliveries_retry ON deliveries (channel, due_at) WHERE state = 'pending' AND attempts > 0;
CREATE INDEX IF NOT EXISTS deliveries_open ON deliveries (job_id) WHERE state IN ('pending', 'sending', 'unknown');
-- The transactional outbox (SPEC §7).
CREATE TABLE IF NOT EXISTS events (
    seq BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    job_id TEXT,
    payload TEXT NOT NULL,
    published_at TEXT
);
CREATE INDEX IF NOT EXISTS events_unpublished ON events (seq) WHERE published_at IS NULL;
-- `seq` is the chain position, assigned under the chain lock; the primary key makes a second
-- writer at the same position fail instead of forking the chain.
CREATE TABLE IF NOT EXISTS audit (
    seq BIGINT PRIMARY KEY,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    job_id TEXT,
    body TEXT NOT NULL,
    prev TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_kind ON audit (kind);
-- Per-recipient limits shared by the replicas (pace.rs, issue 4): per channel, address and
-- window length, which natural window (its index since the epoch, UTC+8) and how many messages
-- it has had. The address is kept only as its SHA-256: no phone number in yet another table.
-- A row of a past window counts as zero, so such rows may be deleted at any time. Rows are
-- updated on every message: room on each page lets most updates stay in place (HOT).
CREATE TABLE IF NOT EXISTS recipient_counts (
    channel TEXT COLLATE "C" NOT NULL,
    address_hash TEXT COLLATE "C" NOT NULL,
    window_secs INTEGER NOT NULL,
    window_idx BIGINT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (channel, address_hash, window_secs)
) WITH (fillfactor = 70);
CREATE INDEX IF NOT EXISTS recipient_counts_window ON recipient_counts (window_secs, window_idx);
CREATE TABLE IF NOT EXISTS obligation_changes (
    seq BIGSERIAL PRIMARY KEY,
    obligation TEXT NOT NULL,
    on_date TEXT COLLATE "C" NOT NULL,
    note TEXT NOT NULL,
    recorded_at TEXT NOT NULL
);
"#;

impl From<::postgres::Error> for LedgerError {
    fn from(e: ::postgres::Error) -> Self {
        // The server's message (and SQLSTATE) when there is one: `Display` alone says only
        // "db error". Neither carries the connection's password.
        match e.as_db_error() {
            // SQLSTATE classes 08 (connection), 53 (insufficient resources: disk full, out of
            // memory, too many connections), 57 (operator intervention: shutting down) and 58
            // (system error, I/O): the server, not the request.
            Some(db) if ["08", "53", "57", "58"].contains(&&db.code().code()[..2]) => {
                LedgerError::PgUnavailable(format!("{} ({})", db.message(), db.code().code()))
            }
            Some(db) => LedgerError::Pg(format!("{} ({})", db.message(), db.code().code())),
            None => {
                let mut text = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    let more = s.to_string();
                    if !text.contains(&more) {
                        text = format!("{text}: {more}");
                    }
                    source = s.source();
                }
                // No answer from the server at all: the connection is gone or never came up.
                LedgerError::PgUnavailable(text)
            }
        }
    }
}

/// Work for a pool thread: it gets the thread's connection, or why there is none.
type Task = Box<dyn FnOnce(Result<&mut Client, LedgerError>) + Send>;

pub struct PgLedger {
    tasks: Option<mpsc::Sender<Task>>,
    workers: Vec<JoinHandle<()>>,
    /// Second key of the chain lock: replicas on one schema share it, ledgers in other schemas
    /// of the same database (tests) do not wait on each other.
    chain_key: i32,
}

/// The URL without the `pool_size` parameter (ours, not libpq's), and the pool size.
fn split_pool_size(url: &str) -> Result<(String, usize), LedgerError> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), DEFAULT_POOL_SIZE));
    };
    let mut size = DEFAULT_POOL_SIZE;
    let mut kept = Vec::new();
    for pair in query.split('&') {
        match pair.strip_prefix("pool_size=") {
            Some(n) => {
                size = n.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    LedgerError::Pg(format!("pool_size={n}: expected a whole number above 0"))
                })?;
            }
            None => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, size))
}

/// The connections' settings and the pool's size from the ledger URL, with our defaults for
/// what the URL leaves unsaid.
fn pool_config(url: &str) -> Result<(::postgres::Config, usize), LedgerError> {
    let (url, size) = split_pool_size(url)?;
    let mut config: ::postgres::Config = url
        .parse()
        .map_err(|e: ::postgres::Error| LedgerError::Pg(format!("ledger url: {e}")))?;
    if config.get_application_name().is_none() {
        // So that an operator can tell the ledger's connections apart in pg_stat_activity.
        config.application_name("disclose");
    }
    if config.get_connect_timeout().is_none() {
        // An unreachable server is reported at start-up, not waited on for minutes.
        config.connect_timeout(Duration::from_secs(10));
    }
    if config.get_tcp_user_timeout().is_none() {
        // A network partition holds a query for as long as TCP retransmits what the server
        // never acknowledges (about a quarter of an hour on Linux's defaults): bounded, the
        // call fails and the pool thread connects again.
        config.tcp_user_timeout(Duration::from_secs(30));
    }
    if config.get_keepalives_idle() == LIBPQ_KEEPALIVES_IDLE {
        // An idle pooled connection whose server went away is found within a minute, not two
        // hours (the client's default, libpq's).
        config.keepalives_idle(Duration::from_secs(30));
    }
    Ok((config, size))
}

/// The client's default idle time before TCP keepalive probes (libpq's): taken to mean the URL
/// did not set `keepalives_idle`.
const LIBPQ_KEEPALIVES_IDLE: Duration = Duration::from_secs(2 * 60 * 60);

fn connect(config: &::postgres::Config) -> Result<Client, LedgerError> {
    config.connect(NoTls).map_err(LedgerError::from)
}

/// A connection unused for this long is checked before it is used: the server may have been
/// restarted, or a proxy may have dropped it, while nothing noticed.
const IDLE_CHECK: Duration = Duration::from_secs(10);

/// One pool thread: takes the next task, connecting first when it has no connection.
fn worker(config: ::postgres::Config, tasks: Arc<Mutex<mpsc::Receiver<Task>>>) {
    let mut client: Option<Client> = None;
    let mut last_used = std::time::Instant::now();
    loop {
        let task = {
            let rx = tasks.lock().unwrap_or_else(|e| e.into_inner());
            match rx.recv() {
                Ok(t) => t,
                // The ledger was dropped.
                Err(_) => return,
            }
        };
        // The blocking client reads its socket only during a call, so a connection the server
        // closed meanwhile still looks open: after a pause, ask before trusting it.
        if let Some(c) = client.as_mut()
            && (c.is_closed()
                || (last_used.elapsed() > IDLE_CHECK
                    && c.is_valid(Duration::from_secs(5)).is_err()))
        {
            client = None;
        }
        last_used = std::time::Instant::now();
        if client.is_none() {
            match connect(&config) {
                Ok(c) => client = Some(c),
                Err(e) => {
                    task(Err(e));
                    continue;
                }
            }
        }
        let Some(c) = client.as_mut() else { continue };
        // A panic in a task must not take the thread (and the pool) down with it; the caller
        // sees its reply channel close. The connection may be mid-transaction: start afresh.
        if std::panic::catch_unwind(AssertUnwindSafe(|| task(Ok(c)))).is_err() {
            client = None;
        }
    }
}

impl PgLedger {
    /// Connect, apply the migrations and start the pool (size: `pool_size=N` in the URL, or
    /// [`DEFAULT_POOL_SIZE`]).
    pub fn open(url: &str) -> Result<PgLedger, LedgerError> {
        let (config, size) = pool_config(url)?;
        let (tx, rx) = mpsc::channel::<Task>();
        let rx = Arc::new(Mutex::new(rx));
        let mut workers = Vec::with_capacity(size);
        for i in 0..size {
            let (config, rx) = (config.clone(), rx.clone());
            let handle = std::thread::Builder::new()
                .name(format!("ledger-pg-{i}"))
                .spawn(move || worker(config, rx))
                .map_err(|e| LedgerError::Pg(format!("cannot start a pool thread: {e}")))?;
            workers.push(handle);
        }
        let mut ledger = PgLedger {
            tasks: Some(tx),
            workers,
            chain_key: 0,
        };
        ledger.chain_key = ledger.run(migrate)?;
        Ok(ledger)
    }

    /// Run `f` on a pool thread with its connection and wait for the answer.
    fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, LedgerError> + Send + 'static,
    ) -> Result<T, LedgerError> {
        let (reply, answer) = mpsc::sync_channel(1);
        let task: Task = Box::new(move |client| {
            let _ = reply.send(client.and_then(f));
        });
        let stopped = || LedgerError::PgUnavailable("the database worker stopped".into());
        self.tasks
            .as_ref()
            .ok_or_else(stopped)?
            .send(task)
            .map_err(|_| stopped())?;
        answer.recv().map_err(|_| stopped())?
    }

    /// Run `f` in one transaction that holds the audit chain's lock (see the module docs).
    fn chained<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<T, LedgerError> + Send + 'static,
    ) -> Result<T, LedgerError> {
        let key = self.chain_key;
        self.run(move |c| {
            let mut tx = c.transaction()?;
            tx.execute("SELECT pg_advisory_xact_lock($1, $2)", &[&CHAIN_LOCK, &key])?;
            let out = f(&mut tx)?;
            tx.commit()?;
            Ok(out)
        })
    }
}

impl Drop for PgLedger {
    fn drop(&mut self) {
        // Closing the channel ends each thread after its current task; their connections close.
        self.tasks = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// Apply the schema in one transaction; returns the chain lock key of the schema in use.
fn migrate(c: &mut Client) -> Result<i32, LedgerError> {
    let mut tx = c.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1, 0)", &[&MIGRATION_LOCK])?;
    let path: String = tx.query_one("SHOW search_path", &[])?.get(0);
    if let Some(first) = path.split(',').next().map(str::trim)
        && !first.is_empty()
        && first != "\"$user\""
    {
        // As PostgreSQL reads the setting: a quoted name as written, an unquoted one folded.
        let name = match first.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
            Some(quoted) => quoted.replace("\"\"", "\""),
            None => first.to_lowercase(),
        };
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {quoted}"))?;
    }
    tx.batch_execute(SCHEMA)?;
    let version: Option<i32> = tx
        .query_one("SELECT max(version) FROM schema_version", &[])?
        .get(0);
    match version {
        Some(v) if v > SCHEMA_VERSION => {
            return Err(LedgerError::Corrupt(format!(
                "the database schema is at version {v}, newer than this build ({SCHEMA_VERSION}); upgrade disclose"
            )));
        }
        Some(v) if v == SCHEMA_VERSION => {}
        _ => {
            tx.execute(
                "INSERT INTO schema_version (version, applied_at) VALUES ($1, $2)",
                &[&SCHEMA_VERSION, &ts(crate::clock::now())],
            )?;
        }
    }
    let key: i32 = tx
        .query_one("SELECT hashtext(current_schema())", &[])?
        .get(0);
    tx.commit()?;
    Ok(key)
}

/// Rows of past windows deleted per window length by a call that found a window rolled over:
/// enough to keep up with the rows written, few enough to keep the call short.
const QUOTA_SWEEP: i64 = 1_000;

/// Take one message per address (`hashes`, SHA-256 of each, in order) in one transaction; see
/// [`Ledger::take_recipient_quota`]. The rows of these addresses are locked in a stable order, so
/// two replicas taking for the same recipients wait for each other instead of deadlocking, and
/// the second sees the first's counts.
fn take_quota(
    c: &mut Client,
    channel: &str,
    hashes: &[String],
    windows: &[(u32, u32)],
    now_ms: i64,
) -> Result<Vec<Option<i64>>, LedgerError> {
    if hashes.is_empty() || windows.is_empty() {
        return Ok(vec![None; hashes.len()]);
    }
    // As RecipientLimiter::take: natural windows in China Standard Time.
    let local = now_ms + crate::pace::CHINA_MS;
    // (length in seconds, messages allowed, current window's index, ms until it ends)
    let current: Vec<(i32, u32, i64, i64)> = windows
        .iter()
        .map(|&(secs, n)| {
            let len = i64::from(secs) * 1000;
            let idx = local.div_euclid(len);
            (secs as i32, n, idx, (idx + 1) * len - local)
        })
        .collect();
    let secs: Vec<i32> = current.iter().map(|w| w.0).collect();
    let idxs: Vec<i64> = current.iter().map(|w| w.2).collect();
    let mut distinct: Vec<&str> = hashes.iter().map(String::as_str).collect();
    distinct.sort_unstable();
    distinct.dedup();
    let expected = distinct.len() * secs.len();

    let mut tx = c.transaction()?;
    let mut rows: HashMap<(String, i32), (i64, i32)> = HashMap::new();
    // A row of a past window found by the insert may be swept by another replica before the
    // select locks it; then insert it again. Locked rows stay, so this settles at once.
    for _ in 0..3 {
        tx.execute(
            "INSERT INTO recipient_counts (channel, address_hash, window_secs, window_idx, count)
             SELECT $1::text, h, w, i, 0
             FROM unnest($2::text[]) AS a(h) CROSS JOIN unnest($3::int[], $4::bigint[]) AS x(w, i)
             ORDER BY h, w
             ON CONFLICT DO NOTHING",
            &[&channel, &distinct, &secs, &idxs],
        )?;
        rows = tx
            .query(
                // A join on the primary key, not `= ANY($2)`: with a thousand addresses the
                // planner would read the whole table for the latter.
                "SELECT r.address_hash, r.window_secs, r.window_idx, r.count
                 FROM unnest($2::text[]) AS a(h) CROSS JOIN unnest($3::int[]) AS x(w)
                 JOIN recipient_counts AS r
                   ON r.channel = $1 AND r.address_hash = a.h AND r.window_secs = x.w
                 ORDER BY r.address_hash, r.window_secs
                 FOR UPDATE OF r",
                &[&channel, &distinct, &secs],
            )?
            .into_iter()
            .map(|r| ((r.get(0), r.get(1)), (r.get(2), r.get(3))))
            .collect();
        if rows.len() == expected {
            break;
        }
    }
    if rows.len() != expected {
        return Err(LedgerError::Pg(format!(
            "recipient counts: {} of {expected} rows could be locked",
            rows.len()
        )));
    }

    // A new window starts at zero. A row already in a later window (another replica's clock is
    // ahead) keeps its count: counting there too errs towards fewer messages, never more.
    let mut dirty: HashSet<(String, i32)> = HashSet::new();
    let mut rolled = false;
    for ((h, w), (idx, count)) in rows.iter_mut() {
        let now_idx = current.iter().find(|c| c.0 == *w).map_or(*idx, |c| c.2);
        if *idx < now_idx {
            *idx = now_idx;
            *count = 0;
            rolled = true;
            dirty.insert((h.clone(), *w));
        }
    }
    let mut out = Vec::with_capacity(hashes.len());
    for h in hashes {
        let mut wait = 0i64;
        for &(w, n, _, rest) in &current {
            let (_, count) = rows[&(h.clone(), w)];
            if i64::from(count) >= i64::from(n) {
                wait = wait.max(rest);
            }
        }
        if wait > 0 {
            out.push(Some(wait));
            continue;
        }
        for &(w, ..) in &current {
            let key = (h.clone(), w);
            if let Some((_, count)) = rows.get_mut(&key) {
                *count = count.saturating_add(1);
            }
            dirty.insert(key);
        }
        out.push(None);
    }

    if !dirty.is_empty() {
        let (mut uh, mut uw, mut ui, mut un) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for key in &dirty {
            let (idx, count) = rows[key];
            uh.push(key.0.as_str());
            uw.push(key.1);
            ui.push(idx);
            un.push(count);
        }
        tx.execute(
            "UPDATE recipient_counts AS r SET window_idx = u.i, count = u.n
             FROM unnest($2::text[], $3::int[], $4::bigint[], $5::int[]) AS u(h, w, i, n)
             WHERE r.channel = $1 AND r.address_hash = u.h AND r.window_secs = u.w",
            &[&channel, &uh, &uw, &ui, &un],
        )?;
    }
    if rolled {
        // Bounded clean-up of past windows (any channel; they count as zero anyway). Rows
        // another replica holds are skipped, not waited for.
        for &(w, _, idx, _) in &current {
            tx.execute(
                "DELETE FROM recipient_counts WHERE ctid = ANY(ARRAY(
                     SELECT ctid FROM recipient_counts WHERE window_secs = $1 AND window_idx < $2
                     LIMIT $3 FOR UPDATE SKIP LOCKED))",
                &[&w, &idx, &QUOTA_SWEEP],
            )?;
        }
    }
    tx.commit()?;
    Ok(out)
}

fn append_audit(
    tx: &mut Transaction<'_>,
    at: &str,
    kind: &str,
    job_id: Option<&str>,
    body: &str,
) -> Result<(), LedgerError> {
    // The caller holds the chain lock (`PgLedger::chained`), so no one else reads this head.
    let last = tx.query_opt("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", &[])?;
    let (seq, prev) = match last {
        Some(r) => (r.get::<_, i64>(0) + 1, r.get::<_, String>(1)),
        None => (1, GENESIS.to_string()),
    };
    let hash = audit::entry_hash(seq, at, kind, job_id, body, &prev);
    tx.execute(
        "INSERT INTO audit (seq, at, kind, job_id, body, prev, hash) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[&seq, &at, &kind, &job_id, &body, &prev, &hash],
    )?;
    Ok(())
}

/// Queue an event for publishing, in the transaction of the change it reports.
fn emit(
    tx: &mut Transaction<'_>,
    at: &str,
    name: &str,
    job_id: Option<&str>,
    body: serde_json::Value,
) -> Result<(), LedgerError> {
    let seq = next_event_seq(tx)?;
    let payload = super::event_payload(body, name, seq, at, job_id);
    insert_event(tx, seq, name, job_id, &payload)
}

/// The sequence number the next event takes (its payload names it).
fn next_event_seq(tx: &mut Transaction<'_>) -> Result<i64, LedgerError> {
    Ok(tx
        .query_one(
            "SELECT nextval(pg_get_serial_sequence('events', 'seq'))",
            &[],
        )?
        .get(0))
}

fn insert_event(
    tx: &mut Transaction<'_>,
    seq: i64,
    name: &str,
    job_id: Option<&str>,
    payload: &str,
) -> Result<(), LedgerError> {
    tx.execute(
        "INSERT INTO events (seq, name, job_id, payload) VALUES ($1, $2, $3, $4)",
        &[&seq, &name, &job_id, &payload],
    )?;
    Ok(())
}

/// `delivery.<state>` events for recorded outcomes, one per job, channel and state, and
/// `job.completed` for each job that has nothing left open (as on SQLite).
fn emit_outcomes(
    tx: &mut Transaction<'_>,
    at: &str,
    changed: &[Changed],
) -> Result<(), LedgerError> {
    for (job, name, fields) in json_text::outcome_events(changed) {
        let seq = next_event_seq(tx)?;
        let payload = json_text::event_payload(&fields, &name, seq, at, job);
        insert_event(tx, seq, &name, Some(job), &payload)?;
    }
    let mut jobs: Vec<&str> = changed.iter().map(|c| c.1.as_str()).collect();
    jobs.sort_unstable();
    jobs.dedup();
    for job in jobs {
        let open = tx
            .query_opt(
                "SELECT 1 FROM deliveries WHERE job_id = $1 AND state IN ('pending', 'sending', 'unknown') LIMIT 1",
                &[&job],
            )?
            .is_some();
        if !open {
            let mut counts = serde_json::Map::new();
            for row in tx.query(
                "SELECT channel, state, count(*) FROM deliveries WHERE job_id = $1 GROUP BY channel, state",
                &[&job],
            )? {
                let (ch, st, n): (String, String, i64) = (row.get(0), row.get(1), row.get(2));
                let entry = counts.entry(ch).or_insert_with(|| json!({}));
                entry[st] = json!(n);
            }
            emit(
                tx,
                at,
                "job.completed",
                Some(job),
                json!({"outcomes": counts}),
            )?;
        }
    }
    Ok(())
}

/// The directory column that holds a channel's address, as an SQL expression over `members m`:
/// the same text SQLite writes (letters: compact JSON with the postcode and the lines).
fn address_sql(channel: ChannelKind) -> &'static str {
    match channel {
        ChannelKind::Sms => "m.phone",
        ChannelKind::Email => "m.email",
        ChannelKind::Wechat => "m.wechat_openid",
        ChannelKind::Wecom => "m.wecom_userid",
        ChannelKind::Letter => {
            "CASE WHEN m.address IS NULL THEN NULL ELSE '{\"postcode\":' || COALESCE(to_json(m.postcode)::text, 'null') || ',\"lines\":[' || to_json(m.address)::text || ']}' END"
        }
        ChannelKind::Website | ChannelKind::Intranet => "NULL",
    }
}

/// A decision with its data owned, to be sent to a pool thread.
enum OwnedDecision {
    Accept {
        job: Box<Job>,
        body: Vec<u8>,
        plan: Plan,
        now: DateTime<FixedOffset>,
    },
    Refuse {
        job_id: Option<String>,
        body: Vec<u8>,
        refusals: Vec<Refusal>,
        now: DateTime<FixedOffset>,
    },
}

fn plan_channel(
    tx: &mut Transaction<'_>,
    job: &Job,
    plan: &Plan,
    channel: ChannelKind,
    due: i64,
    now_ms: i64,
) -> Result<u64, LedgerError> {
    let ch = channel.as_str();
    if let (Kind::Correction | Kind::Retraction, Some(target)) = (job.kind, &job.corrects) {
        // Exactly the recipients the original reached on this channel, no one else (SPEC §5).
        let n = tx.execute(
            "INSERT INTO deliveries (job_id, channel, recipient, name, role, address, state, due_at, updated_at)
             SELECT $1::text, channel, recipient, name, role, address, 'pending', $2::bigint, $3::bigint FROM deliveries
             WHERE job_id = $4 AND channel = $5 AND state IN ('delivered', 'unknown')
             ORDER BY id
             ON CONFLICT DO NOTHING",
            &[&job.id, &due, &now_ms, target, &ch],
        )?;
        return Ok(n);
    }
    if channel.is_publication() {
        let n = tx.execute(
            "INSERT INTO deliveries (job_id, channel, recipient, name, role, state, due_at, updated_at)
             VALUES ($1, $2, $3, $4, 'page', 'pending', $5, $6) ON CONFLICT DO NOTHING",
            &[&job.id, &ch, &PAGE_RECIPIENT, &job.title, &due, &now_ms],
        )?;
        return Ok(n);
    }
    let mut planned = 0u64;
    let addr = address_sql(channel);
    // Art 10 opt-out: never sent to, recorded as skipped. No address for this medium: skipped
    // too, except letters, which without a postal address go by hand.
    let no_addr_state = if channel == ChannelKind::Letter {
        "pending"
    } else {
        "skipped"
    };
    // One statement per group: the fan-out never passes through Rust memory.
    let sql = format!(
        "INSERT INTO deliveries (job_id, channel, recipient, name, role, address, state, code, due_at, updated_at)
         SELECT $1::text, $2::text, m.id, m.name, 'member', {addr},
                CASE WHEN m.opted_out THEN 'skipped' WHEN ({addr}) IS NULL THEN '{no_addr_state}' ELSE 'pending' END,
                CASE WHEN m.opted_out THEN 'opted_out' WHEN ({addr}) IS NULL AND '{no_addr_state}' = 'skipped' THEN 'no_address' ELSE NULL END,
                $3::bigint, $4::bigint
         FROM members m WHERE m.grp = $5 ORDER BY m.id
         ON CONFLICT DO NOTHING"
    );
    let stmt = tx.prepare(&sql)?;
    for group in &plan.groups {
        planned += tx.execute(&stmt, &[&job.id, &ch, &due, &now_ms, group])?;
    }
    if !plan.recipients.is_empty() {
        planned += plan_named(tx, job, &plan.recipients, channel, due, now_ms)?;
    }
    Ok(planned)
}

/// The people named in the job itself, in one statement.
fn plan_named(
    tx: &mut Transaction<'_>,
    job: &Job,
    recipients: &[NamedRecipient],
    channel: ChannelKind,
    due: i64,
    now_ms: i64,
) -> Result<u64, LedgerError> {
    let n = recipients.len();
    let (mut ids, mut names, mut roles) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut addresses, mut states, mut codes) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for r in recipients {
        let address = named_address(r, channel);
        let (state, code) = match (&address, channel) {
            (None, ChannelKind::Letter) => ("pending", None),
            (None, _) => ("skipped", Some("no_address")),
            _ => ("pending", None),
        };
        ids.push(r.id.as_str());
        names.push(r.name.as_str());
        roles.push(r.role.as_str());
        addresses.push(address);
        states.push(state);
        codes.push(code);
    }
    Ok(tx.execute(
        "INSERT INTO deliveries (job_id, channel, recipient, name, role, address, state, code, due_at, updated_at)
         SELECT $1::text, $2::text, r.id, r.name, r.role, r.address, r.state, r.code, $3::bigint, $4::bigint
         FROM UNNEST($5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[])
              WITH ORDINALITY AS r(id, name, role, address, state, code, n)
         ORDER BY r.n
         ON CONFLICT DO NOTHING",
        &[
            &job.id,
            &channel.as_str(),
            &due,
            &now_ms,
            &ids,
            &names,
            &roles,
            &addresses,
            &states,
            &codes,
        ],
    )?)
}

fn accept_in(
    tx: &mut Transaction<'_>,
    job: &Job,
    body: &[u8],
    plan: &Plan,
    now: DateTime<FixedOffset>,
) -> Result<Accepted, LedgerError> {
    if tx
        .query_opt("SELECT 1 FROM jobs WHERE id = $1", &[&job.id])?
        .is_some()
    {
        return Ok(Accepted::Duplicate);
    }
    let at = ts(now);
    let now_ms = now.timestamp_millis();
    let due = plan
        .publish_at
        .map(|t| t.timestamp_millis())
        .unwrap_or(now_ms)
        .max(0);
    let channels: Vec<&str> = plan.channels.iter().map(|c| c.as_str()).collect();
    let kind = serde_json::to_value(job.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string));
    tx.execute(
        "INSERT INTO jobs (id, kind, category, scope, title, corrects, publish_at, expires_at, accepted_at, channels, groups, body)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        &[
            &job.id,
            &kind,
            &job.category.to_string(),
            &job.scope.as_str(),
            &job.title,
            &job.corrects,
            &plan.publish_at.map(ts),
            &plan.expires_at.map(ts),
            &at,
            &serde_json::to_string(&channels).unwrap_or_default(),
            &serde_json::to_string(&plan.groups).unwrap_or_default(),
            &body,
        ],
    )?;
    if job.kind == Kind::Retraction
        && let Some(target) = &job.corrects
    {
        // Deliveries of the original not yet sent are cancelled (issue: retractions).
        tx.execute(
            "UPDATE deliveries SET state = 'cancelled', code = 'retracted', detail = $1, updated_at = $2
             WHERE job_id = $3 AND state = 'pending'",
            &[&format!("retracted by {}", job.id), &now_ms, target],
        )?;
    }
    let mut planned = BTreeMap::new();
    for &channel in &plan.channels {
        planned.insert(channel, plan_channel(tx, job, plan, channel, due, now_ms)?);
    }
    let audit_body = json!({
        "id": job.id, "kind": job.kind, "category": job.category, "scope": job.scope,
        "title": job.title, "corrects": job.corrects, "body_sha256": audit::sha256_hex(body),
        "approval": {"approver": job.approval.approver, "reference": job.approval.reference, "key_id": job.approval.key_id},
        "groups": plan.groups, "planned": planned.iter().map(|(c, n)| (c.as_str(), *n)).collect::<BTreeMap<_, _>>(),
    })
    .to_string();
    append_audit(tx, &at, audit::JOB_ACCEPTED, Some(&job.id), &audit_body)?;
    let event = json!({
        "kind": job.kind, "category": job.category, "scope": job.scope, "title": job.title,
        "publish_at": plan.publish_at.map(ts),
        "planned": planned.iter().map(|(c, n)| (c.as_str(), *n)).collect::<BTreeMap<_, _>>(),
    });
    emit(tx, &at, "job.accepted", Some(&job.id), event)?;
    Ok(Accepted::New { planned })
}

fn refuse_in(
    tx: &mut Transaction<'_>,
    job_id: Option<&str>,
    body: &[u8],
    refusals: &[Refusal],
    now: DateTime<FixedOffset>,
) -> Result<i64, LedgerError> {
    let at = ts(now);
    let sha = audit::sha256_hex(body);
    let list = serde_json::to_string(refusals).unwrap_or_default();
    let seq: i64 = tx
        .query_one(
            "INSERT INTO refusals (at, job_id, refusals, body_sha256) VALUES ($1, $2, $3, $4) RETURNING seq",
            &[&at, &job_id, &list, &sha],
        )?
        .get(0);
    let audit_body =
        json!({"refusal": seq, "job_id": job_id, "body_sha256": sha, "refusals": refusals})
            .to_string();
    append_audit(tx, &at, audit::JOB_REFUSED, job_id, &audit_body)?;
    emit(
        tx,
        &at,
        "job.refused",
        job_id,
        json!({"refusals": refusals}),
    )?;
    Ok(seq)
}

fn refusal_rows(rows: Vec<::postgres::Row>) -> Result<Vec<RefusalRow>, LedgerError> {
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let seq: i64 = r.get(0);
        let list: String = r.get(3);
        let refusals: Vec<Refusal> = serde_json::from_str(&list)
            .map_err(|e| LedgerError::Corrupt(format!("refusal {seq}: {e}")))?;
        out.push(RefusalRow {
            seq,
            at: r.get(1),
            job_id: r.get(2),
            refusals,
        });
    }
    Ok(out)
}

fn count(n: i64) -> u64 {
    n.max(0) as u64
}

const JOB_COLUMNS: &str = "id, kind, category, scope, title, accepted_at, publish_at";

fn summary_from_row(c: &mut Client, row: &::postgres::Row) -> Result<JobSummary, LedgerError> {
    let id: String = row.get(0);
    let mut outcomes: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let mut open = 0u64;
    let (mut cancelled, mut total) = (0u64, 0u64);
    for r in c.query(
        "SELECT channel, state, count(*) FROM deliveries WHERE job_id = $1 GROUP BY channel, state",
        &[&id],
    )? {
        let (ch, st, n): (String, String, u64) = (r.get(0), r.get(1), count(r.get(2)));
        if matches!(st.as_str(), "pending" | "sending" | "unknown") {
            open += n;
        }
        if st == "cancelled" {
            cancelled += n;
        }
        if st != "skipped" {
            total += n;
        }
        outcomes.entry(ch).or_default().insert(st, n);
    }
    let mut scheduled = 0u64;
    if open > 0 {
        let now = crate::clock::now().timestamp_millis();
        scheduled = count(
            c.query_one(
                "SELECT count(*) FROM deliveries WHERE job_id = $1 AND state = 'pending' AND attempts = 0 AND due_at > $2",
                &[&id, &now],
            )?
            .get(0),
        );
    }
    let status = if open == 0 && cancelled > 0 && cancelled == total {
        // Nothing went out: cancelled before publication, or retracted before it was sent.
        "cancelled"
    } else if open == 0 {
        "completed"
    } else if scheduled == open {
        "scheduled"
    } else {
        "in_progress"
    };
    Ok(JobSummary {
        id,
        kind: row.get(1),
        category: row.get(2),
        scope: row.get(3),
        title: row.get(4),
        accepted_at: row.get(5),
        publish_at: row.get(6),
        status: status.to_string(),
        outcomes,
    })
}

/// One accepted job with its outcomes, as the report and the obligations read it.
fn job_record(c: &mut Client, id: &str) -> Result<Option<JobRecord>, LedgerError> {
    let Some(row) = c.query_opt(
        "SELECT id, kind, category, scope, title, corrects, accepted_at, publish_at, expires_at, body
         FROM jobs WHERE id = $1",
        &[&id],
    )?
    else {
        return Ok(None);
    };
    let mut outcomes: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for r in c.query(
        "SELECT channel, state, count(*) FROM deliveries WHERE job_id = $1 GROUP BY channel, state",
        &[&id],
    )? {
        outcomes
            .entry(r.get(0))
            .or_default()
            .insert(r.get(1), count(r.get(2)));
    }
    let first_out: Option<i64> = c
        .query_one(
            "SELECT min(updated_at) FROM deliveries WHERE job_id = $1 AND state IN ('delivered', 'unknown')",
            &[&id],
        )?
        .get(0);
    let first_out = first_out
        .and_then(DateTime::from_timestamp_millis)
        .map(|t| t.with_timezone(&crate::clock::china()));
    let retracted_by: Option<String> = c
        .query_opt(
            "SELECT id FROM jobs WHERE kind = 'retraction' AND corrects = $1
             ORDER BY accepted_at::timestamptz, id LIMIT 1",
            &[&id],
        )?
        .map(|r| r.get(0));
    let body: Vec<u8> = row.get(9);
    // Read leniently: the report must come out even about a job whose body is damaged.
    let raw: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let text = |v: &serde_json::Value| v.as_str().map(str::to_string);
    let reference = text(&raw["approval"]["reference"]);
    let reason = text(&raw["data"]["reason"]).or_else(|| text(&raw["data"]["correction"]));
    Ok(Some(JobRecord {
        id: row.get(0),
        kind: row.get(1),
        category: row.get(2),
        scope: row.get(3),
        title: row.get(4),
        corrects: row.get(5),
        accepted_at: row.get(6),
        publish_at: row.get(7),
        expires_at: row.get(8),
        first_out,
        retracted_by,
        outcomes,
        reference,
        reason,
    }))
}

fn job_records(c: &mut Client, ids: Vec<String>) -> Result<Vec<JobRecord>, LedgerError> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(r) = job_record(c, &id)? {
            out.push(r);
        }
    }
    Ok(out)
}

impl PgLedger {
    fn claim_where(
        &self,
        from_state: &'static str,
        channel: ChannelKind,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
        count_attempt: bool,
    ) -> Result<Vec<Claimed>, LedgerError> {
        let bump = if count_attempt {
            "attempts + 1"
        } else {
            "attempts"
        };
        // SKIP LOCKED: replicas claiming at once each take different rows instead of waiting on
        // (or both taking) the same ones. Locking re-checks `state` on a row another replica
        // changed meanwhile, so a row it claimed and committed is not taken again. The rows are
        // chosen once, in a materialised CTE: as `WHERE id IN (subquery)` the planner may rescan
        // the subquery, which then skips the rows this statement already updated and takes more
        // than the limit. Joined by `= ANY (ARRAY(…))`, primary-key lookups: as a join the planner
        // reads the whole table to hash it. The state is a literal for the partial index.
        let sql = format!(
            "WITH due AS MATERIALIZED (
                 SELECT id FROM deliveries WHERE channel = $3 AND state = '{from_state}' AND due_at <= $2
                 ORDER BY due_at, id LIMIT $4 FOR UPDATE SKIP LOCKED)
             UPDATE deliveries d SET state = 'sending', lease_until = $1, attempts = d.{bump}, updated_at = $2
             WHERE d.id = ANY (ARRAY(SELECT id FROM due)) AND d.state = '{from_state}'
             RETURNING d.id, d.job_id, d.recipient, d.name, d.role, d.address, d.attempts"
        );
        let lease_until = now_ms + lease_ms;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut out = self.run(move |c| {
            let rows = c.query(&sql, &[&lease_until, &now_ms, &channel.as_str(), &limit])?;
            Ok(rows
                .iter()
                .map(|r| Claimed {
                    id: r.get(0),
                    job_id: r.get::<_, &str>(1).into(),
                    channel,
                    recipient: r.get(2),
                    name: r.get(3),
                    role: r.get(4),
                    address: r.get(5),
                    attempt: r.get::<_, i32>(6).max(0) as u32,
                    lease_until,
                })
                .collect::<Vec<_>>())
        })?;
        out.sort_by_key(|c| c.id);
        Ok(out)
    }
}

/// What a group import streams to the pool thread that holds its transaction.
enum ImportMsg {
    Batch(Vec<Member>),
    /// The input failed part-way: roll back, leaving the group as it was.
    Abort(String),
    /// Every member was sent: commit. Without it (the caller panicked) nothing is committed.
    End,
}

fn insert_members(
    tx: &mut Transaction<'_>,
    group: &str,
    batch: Vec<Member>,
) -> Result<(), LedgerError> {
    // `INSERT OR REPLACE` on SQLite: the last row of an id wins. One statement cannot update a
    // row twice, so a repeated id within the batch keeps only its last occurrence.
    let mut last: HashMap<&str, usize> = HashMap::with_capacity(batch.len());
    for (i, m) in batch.iter().enumerate() {
        last.insert(m.id.as_str(), i);
    }
    let rows = batch
        .iter()
        .enumerate()
        .filter(|(i, m)| last.get(m.id.as_str()) == Some(i))
        .map(|(_, m)| m);
    let mut cols: [Vec<Option<&str>>; 8] = Default::default();
    let mut opted: Vec<bool> = Vec::with_capacity(batch.len());
    for m in rows {
        for (col, v) in cols.iter_mut().zip([
            Some(m.id.as_str()),
            Some(m.name.as_str()),
            m.phone.as_deref(),
            m.email.as_deref(),
            m.wechat_openid.as_deref(),
            m.wecom_userid.as_deref(),
            m.postcode.as_deref(),
            m.address.as_deref(),
        ]) {
            col.push(v);
        }
        opted.push(m.opted_out);
    }
    let [
        ids,
        names,
        phones,
        emails,
        openids,
        userids,
        postcodes,
        addresses,
    ] = &cols;
    tx.execute(
        "INSERT INTO members (grp, id, name, phone, email, wechat_openid, wecom_userid, postcode, address, opted_out)
         SELECT $1::text, r.* FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::bool[])
              AS r(id, name, phone, email, wechat_openid, wecom_userid, postcode, address, opted_out)
         ON CONFLICT (grp, id) DO UPDATE SET name = EXCLUDED.name, phone = EXCLUDED.phone, email = EXCLUDED.email,
             wechat_openid = EXCLUDED.wechat_openid, wecom_userid = EXCLUDED.wecom_userid,
             postcode = EXCLUDED.postcode, address = EXCLUDED.address, opted_out = EXCLUDED.opted_out",
        &[
            &group, ids, names, phones, emails, openids, userids, postcodes, addresses, &opted,
        ],
    )?;
    Ok(())
}

impl Ledger for PgLedger {
    fn replace_group(
        &self,
        name: &str,
        kind: GroupKind,
        members: &mut dyn Iterator<Item = Result<Member, String>>,
        now: DateTime<FixedOffset>,
    ) -> Result<u64, LedgerError> {
        // The members are read here, on the caller's thread, and streamed in batches to the pool
        // thread that holds the transaction: a million-member import never sits in memory whole.
        let (batches, incoming) = mpsc::sync_channel::<ImportMsg>(2);
        let (group, at) = (name.to_string(), ts(now));
        let key = self.chain_key;
        let (reply, answer) = mpsc::sync_channel(1);
        let task: Task = Box::new(move |client| {
            let result = client.and_then(|c| {
                let mut tx = c.transaction()?;
                tx.execute("SELECT pg_advisory_xact_lock($1, $2)", &[&CHAIN_LOCK, &key])?;
                tx.execute("DELETE FROM members WHERE grp = $1", &[&group])?;
                let mut n = 0u64;
                loop {
                    match incoming.recv() {
                        Ok(ImportMsg::Batch(b)) => {
                            n += b.len() as u64;
                            insert_members(&mut tx, &group, b)?;
                        }
                        // Dropping the transaction rolls it back.
                        Ok(ImportMsg::Abort(e)) => return Err(LedgerError::Aborted(e)),
                        Ok(ImportMsg::End) => break,
                        Err(_) => {
                            return Err(LedgerError::Aborted(
                                "the import stopped before its end".into(),
                            ));
                        }
                    }
                }
                tx.execute(
                    "INSERT INTO groups (name, kind, members, imported_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (name) DO UPDATE SET kind = EXCLUDED.kind, members = EXCLUDED.members, imported_at = EXCLUDED.imported_at",
                    &[&group, &kind.as_str(), &(n as i64), &at],
                )?;
                let body = json!({"group": group, "kind": kind.as_str(), "members": n}).to_string();
                append_audit(&mut tx, &at, audit::DIRECTORY_IMPORTED, None, &body)?;
                tx.commit()?;
                Ok(n)
            });
            let _ = reply.send(result);
        });
        let stopped = || LedgerError::PgUnavailable("the database worker stopped".into());
        self.tasks
            .as_ref()
            .ok_or_else(stopped)?
            .send(task)
            .map_err(|_| stopped())?;
        let mut batch = Vec::with_capacity(IMPORT_BATCH);
        // A failed send means the transaction already failed: its answer says why.
        let mut end = ImportMsg::End;
        for m in members {
            match m {
                Ok(m) => batch.push(m),
                Err(e) => {
                    end = ImportMsg::Abort(e);
                    batch.clear();
                    break;
                }
            }
            if batch.len() == IMPORT_BATCH {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(IMPORT_BATCH));
                if batches.send(ImportMsg::Batch(full)).is_err() {
                    break;
                }
            }
        }
        if !batch.is_empty() {
            let _ = batches.send(ImportMsg::Batch(batch));
        }
        let _ = batches.send(end);
        drop(batches);
        answer.recv().map_err(|_| stopped())?
    }

    fn group_kinds(&self, names: &[String]) -> Result<HashMap<String, GroupKind>, LedgerError> {
        let names = names.to_vec();
        self.run(move |c| {
            let mut out = HashMap::new();
            for r in c.query(
                "SELECT name, kind FROM groups WHERE name = ANY($1)",
                &[&names],
            )? {
                let (name, kind): (String, String) = (r.get(0), r.get(1));
                let kind = GroupKind::parse(&kind).ok_or_else(|| {
                    LedgerError::Corrupt(format!("group {name:?} has kind {kind:?}"))
                })?;
                out.insert(name, kind);
            }
            Ok(out)
        })
    }

    fn on_roster(&self, ids: &[String]) -> Result<HashSet<String>, LedgerError> {
        let ids = ids.to_vec();
        self.run(move |c| {
            Ok(c.query(
                "SELECT DISTINCT m.id FROM groups g JOIN members m ON m.grp = g.name
                 WHERE g.kind = 'leadership' AND m.id = ANY($1)",
                &[&ids],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect())
        })
    }

    fn groups(&self) -> Result<Vec<GroupInfo>, LedgerError> {
        self.run(|c| {
            let mut out = Vec::new();
            for r in c.query(
                "SELECT name, kind, members, imported_at FROM groups ORDER BY name",
                &[],
            )? {
                let (name, kind): (String, String) = (r.get(0), r.get(1));
                let kind = GroupKind::parse(&kind).ok_or_else(|| {
                    LedgerError::Corrupt(format!("group {name:?} has kind {kind:?}"))
                })?;
                out.push(GroupInfo {
                    name,
                    kind,
                    members: count(r.get(2)),
                    imported_at: r.get(3),
                });
            }
            Ok(out)
        })
    }

    fn members(
        &self,
        group: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Member>, LedgerError> {
        let (group, after) = (group.to_string(), after.unwrap_or("").to_string());
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(move |c| {
            Ok(c.query(
                "SELECT id, name, phone, email, wechat_openid, wecom_userid, postcode, address, opted_out FROM members
                 WHERE grp = $1 AND id > $2 ORDER BY id LIMIT $3",
                &[&group, &after, &limit],
            )?
            .iter()
            .map(|r| Member {
                id: r.get(0),
                name: r.get(1),
                phone: r.get(2),
                email: r.get(3),
                wechat_openid: r.get(4),
                wecom_userid: r.get(5),
                postcode: r.get(6),
                address: r.get(7),
                opted_out: r.get(8),
            })
            .collect())
        })
    }

    fn has_job(&self, id: &str) -> Result<bool, LedgerError> {
        let id = id.to_string();
        self.run(move |c| {
            Ok(c.query_opt("SELECT 1 FROM jobs WHERE id = $1", &[&id])?
                .is_some())
        })
    }

    fn known_jobs(&self, ids: &[String]) -> Result<HashSet<String>, LedgerError> {
        let ids = ids.to_vec();
        self.run(move |c| {
            Ok(c.query("SELECT id FROM jobs WHERE id = ANY($1)", &[&ids])?
                .iter()
                .map(|r| r.get(0))
                .collect())
        })
    }

    fn commit(&self, decisions: &[Decision<'_>]) -> Result<Vec<Committed>, LedgerError> {
        let owned: Vec<OwnedDecision> = decisions
            .iter()
            .map(|d| match d {
                Decision::Accept(a) => OwnedDecision::Accept {
                    job: Box::new(a.job.clone()),
                    body: a.body.to_vec(),
                    plan: a.plan.clone(),
                    now: a.now,
                },
                Decision::Refuse {
                    job_id,
                    body,
                    refusals,
                    now,
                } => OwnedDecision::Refuse {
                    job_id: job_id.map(str::to_string),
                    body: body.to_vec(),
                    refusals: refusals.to_vec(),
                    now: *now,
                },
            })
            .collect();
        self.chained(move |tx| {
            let mut out = Vec::with_capacity(owned.len());
            for d in &owned {
                out.push(match d {
                    OwnedDecision::Accept {
                        job,
                        body,
                        plan,
                        now,
                    } => Committed::Accepted(accept_in(tx, job, body, plan, *now)?),
                    OwnedDecision::Refuse {
                        job_id,
                        body,
                        refusals,
                        now,
                    } => {
                        Committed::Refused(refuse_in(tx, job_id.as_deref(), body, refusals, *now)?)
                    }
                });
            }
            Ok(out)
        })
    }

    fn target(&self, id: &str) -> Result<Option<Target>, LedgerError> {
        let id = id.to_string();
        self.run(move |c| {
            let Some(row) = c.query_opt(
                "SELECT scope, channels, groups FROM jobs WHERE id = $1",
                &[&id],
            )?
            else {
                return Ok(None);
            };
            let (scope, channels, groups): (String, String, String) =
                (row.get(0), row.get(1), row.get(2));
            let scope: Scope = serde_json::from_value(json!(scope))
                .map_err(|_| LedgerError::Corrupt(format!("job {id:?} has scope {scope:?}")))?;
            let channels: Vec<ChannelKind> = serde_json::from_str(&channels)
                .map_err(|e| LedgerError::Corrupt(format!("job {id:?} channels: {e}")))?;
            let groups: Vec<String> = serde_json::from_str(&groups)
                .map_err(|e| LedgerError::Corrupt(format!("job {id:?} groups: {e}")))?;
            let recipient_ids = c
                .query(
                    "SELECT DISTINCT recipient FROM deliveries WHERE job_id = $1 AND role NOT IN ('member', 'page')
                     ORDER BY recipient",
                    &[&id],
                )?
                .iter()
                .map(|r| r.get(0))
                .collect();
            let reached = c
                .query_opt(
                    "SELECT 1 FROM deliveries WHERE job_id = $1 AND state IN ('delivered', 'unknown') LIMIT 1",
                    &[&id],
                )?
                .is_some();
            Ok(Some(Target {
                id,
                scope,
                channels,
                groups,
                recipient_ids,
                reached,
            }))
        })
    }

    fn job(&self, id: &str) -> Result<Option<Job>, LedgerError> {
        let id = id.to_string();
        self.run(move |c| {
            let Some(row) = c.query_opt("SELECT body FROM jobs WHERE id = $1", &[&id])? else {
                return Ok(None);
            };
            let body: Vec<u8> = row.get(0);
            crate::job::parse(&body).map(|p| Some(p.job)).map_err(|e| {
                LedgerError::Corrupt(format!("stored job {id:?} no longer parses: {e}"))
            })
        })
    }

    fn expire_leases(&self, now_ms: i64) -> Result<u64, LedgerError> {
        self.chained(move |tx| {
            let mut ids: Vec<Changed> = tx
                .query(
                    "UPDATE deliveries SET state = 'unknown', code = 'lease_expired', lease_until = NULL, updated_at = $1
                     WHERE state = 'sending' AND lease_until < $1 RETURNING id, job_id, channel, recipient",
                    &[&now_ms],
                )?
                .iter()
                .map(|r| {
                    (
                        r.get(0),
                        r.get(1),
                        r.get(2),
                        r.get(3),
                        State::Unknown,
                        Some("lease_expired".to_string()),
                    )
                })
                .collect();
            if !ids.is_empty() {
                ids.sort_unstable_by_key(|c| c.0);
                let at = ts(crate::clock::now());
                let list: Vec<i64> = ids.iter().map(|c| c.0).collect();
                let body = json!({"unknown": list, "code": "lease_expired"}).to_string();
                append_audit(tx, &at, audit::DELIVERIES_RECORDED, None, &body)?;
                emit_outcomes(tx, &at, &ids)?;
            }
            Ok(ids.len() as u64)
        })
    }

    fn claim(
        &self,
        channel: ChannelKind,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<Claimed>, LedgerError> {
        self.claim_where("pending", channel, now_ms, lease_ms, limit, true)
    }

    fn claim_unknown(
        &self,
        channel: ChannelKind,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<Claimed>, LedgerError> {
        self.claim_where("unknown", channel, now_ms, lease_ms, limit, false)
    }

    fn record(&self, records: &[Record], now: DateTime<FixedOffset>) -> Result<(), LedgerError> {
        if records.is_empty() {
            return Ok(());
        }
        let records = records.to_vec();
        self.chained(move |tx| {
            let now_ms = now.timestamp_millis();
            let n = records.len();
            let mut ids = Vec::with_capacity(n);
            let mut states = Vec::with_capacity(n);
            let mut codes = Vec::with_capacity(n);
            let mut details = Vec::with_capacity(n);
            let mut retries = Vec::with_capacity(n);
            let mut deferred = Vec::with_capacity(n);
            let mut leases = Vec::with_capacity(n);
            for r in &records {
                ids.push(r.id);
                states.push(r.state.as_str());
                codes.push(r.code.as_deref());
                details.push(r.detail.as_deref());
                retries.push(r.retry_at);
                deferred.push(i32::from(r.deferred));
                leases.push(r.lease_until);
            }
            // The whole batch in one statement, each row with its own outcome. Recorded only
            // while the claim still holds the delivery, or nobody does (see `Record`).
            let returned = tx.query(
                "UPDATE deliveries d SET state = r.state, code = r.code, detail = r.detail,
                        due_at = COALESCE(r.retry_at, d.due_at), lease_until = NULL, updated_at = $1,
                        attempts = GREATEST(d.attempts - r.deferred, 0)
                 FROM UNNEST($2::bigint[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::int[], $8::bigint[])
                      AS r(id, state, code, detail, retry_at, deferred, lease)
                 WHERE d.id = r.id
                   AND (d.state = 'unknown' OR (d.state = 'sending' AND (r.lease IS NULL OR d.lease_until = r.lease)))
                 RETURNING d.id, d.job_id, d.channel, d.recipient",
                &[&now_ms, &ids, &states, &codes, &details, &retries, &deferred, &leases],
            )?;
            let by_id: HashMap<i64, &Record> = records.iter().map(|r| (r.id, r)).collect();
            let mut jobs: Vec<String> = Vec::new();
            let mut entries = Vec::with_capacity(returned.len());
            let mut changed: Vec<Changed> = Vec::with_capacity(returned.len());
            // A record for a delivery no longer in flight (cancelled meanwhile) changes nothing.
            for row in &returned {
                let id: i64 = row.get(0);
                let Some(r) = by_id.get(&id) else { continue };
                let job: String = row.get(1);
                if !jobs.contains(&job) {
                    jobs.push(job.clone());
                }
                entries.push((id, r.state, r.code.as_deref(), r.detail.as_deref()));
                changed.push((id, job, row.get(2), row.get(3), r.state, r.code.clone()));
            }
            entries.sort_by_key(|e| e.0);
            if !entries.is_empty() {
                let jobs: Vec<&str> = jobs.iter().map(String::as_str).collect();
                let body = json_text::recorded_body(&entries, &jobs);
                let job_id = if jobs.len() == 1 {
                    Some(jobs[0])
                } else {
                    None
                };
                let at = ts(now);
                append_audit(tx, &at, audit::DELIVERIES_RECORDED, job_id, &body)?;
                emit_outcomes(tx, &at, &changed)?;
            }
            Ok(())
        })
    }

    fn next_due(&self, channel: ChannelKind) -> Result<Option<i64>, LedgerError> {
        self.run(move |c| {
            Ok(c.query_one(
                // One question per state, each answered by its partial index (with `state IN
                // (…)` the planner scanned every delivery ever planned).
                "SELECT min(m) FROM (
                   SELECT min(due_at) AS m FROM deliveries WHERE channel = $1 AND state = 'pending'
                   UNION ALL
                   SELECT min(due_at) FROM deliveries WHERE channel = $1 AND state = 'unknown') AS due",
                &[&channel.as_str()],
            )?
            .get(0))
        })
    }

    fn next_retry(&self, channel: ChannelKind) -> Result<Option<i64>, LedgerError> {
        self.run(move |c| {
            Ok(c.query_one(
                "SELECT min(due_at) FROM deliveries WHERE channel = $1 AND state = 'pending' AND attempts > 0",
                &[&channel.as_str()],
            )?
            .get(0))
        })
    }

    fn counts(&self, jobs: &[String]) -> Result<BTreeMap<State, u64>, LedgerError> {
        let jobs = jobs.to_vec();
        self.run(move |c| {
            let rows = if jobs.is_empty() {
                c.query("SELECT state, count(*) FROM deliveries GROUP BY state", &[])?
            } else {
                c.query(
                    "SELECT state, count(*) FROM deliveries WHERE job_id = ANY($1) GROUP BY state",
                    &[&jobs],
                )?
            };
            let mut out = BTreeMap::new();
            for r in rows {
                let st: String = r.get(0);
                let s = State::parse(&st)
                    .ok_or_else(|| LedgerError::Corrupt(format!("delivery state {st:?}")))?;
                *out.entry(s).or_insert(0) += count(r.get(1));
            }
            Ok(out)
        })
    }

    fn open_counts(&self) -> Result<BTreeMap<State, u64>, LedgerError> {
        self.run(move |c| {
            // One count per state, each from its partial index (`state IN (…)` would walk the
            // whole table).
            let row = c.query_one(
                "SELECT (SELECT count(*) FROM deliveries WHERE state = 'pending'),
                        (SELECT count(*) FROM deliveries WHERE state = 'sending'),
                        (SELECT count(*) FROM deliveries WHERE state = 'unknown')",
                &[],
            )?;
            let mut out = BTreeMap::new();
            for (i, state) in [State::Pending, State::Sending, State::Unknown]
                .into_iter()
                .enumerate()
            {
                let n = count(row.get(i));
                if n > 0 {
                    out.insert(state, n);
                }
            }
            Ok(out)
        })
    }

    fn pending_events(&self, limit: usize) -> Result<Vec<Event>, LedgerError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(move |c| {
            Ok(c.query(
                "SELECT seq, name, job_id, payload FROM events WHERE published_at IS NULL ORDER BY seq LIMIT $1",
                &[&limit],
            )?
            .iter()
            .map(|r| Event {
                seq: r.get(0),
                name: r.get(1),
                job_id: r.get(2),
                payload: r.get(3),
            })
            .collect())
        })
    }

    fn mark_published(&self, seqs: &[i64], now: DateTime<FixedOffset>) -> Result<(), LedgerError> {
        if seqs.is_empty() {
            return Ok(());
        }
        let seqs = seqs.to_vec();
        self.run(move |c| {
            c.execute(
                "UPDATE events SET published_at = $1 WHERE seq = ANY($2) AND published_at IS NULL",
                &[&ts(now), &seqs],
            )?;
            Ok(())
        })
    }

    fn jobs(&self, limit: usize) -> Result<Vec<JobSummary>, LedgerError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(move |c| {
            let rows = c.query(
                &format!("SELECT {JOB_COLUMNS} FROM jobs ORDER BY accepted_at DESC, id LIMIT $1"),
                &[&limit],
            )?;
            rows.iter().map(|r| summary_from_row(c, r)).collect()
        })
    }

    fn job_summary(&self, id: &str) -> Result<Option<JobSummary>, LedgerError> {
        let id = id.to_string();
        self.run(move |c| {
            let row = c.query_opt(
                &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"),
                &[&id],
            )?;
            row.map(|r| summary_from_row(c, &r)).transpose()
        })
    }

    fn deliveries(&self, job_id: &str, limit: usize) -> Result<Vec<DeliveryRow>, LedgerError> {
        let job_id = job_id.to_string();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(move |c| {
            Ok(c.query(
                "SELECT id, channel, recipient, name, role, state, attempts, code, detail FROM deliveries
                 WHERE job_id = $1 ORDER BY channel, id LIMIT $2",
                &[&job_id, &limit],
            )?
            .iter()
            .map(|r| DeliveryRow {
                id: r.get(0),
                channel: r.get(1),
                recipient: r.get(2),
                name: r.get(3),
                role: r.get(4),
                state: r.get(5),
                attempts: r.get::<_, i32>(6).max(0) as u32,
                code: r.get(7),
                detail: r.get(8),
            })
            .collect())
        })
    }

    fn refusals(&self, limit: usize) -> Result<Vec<RefusalRow>, LedgerError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(move |c| {
            refusal_rows(c.query(
                "SELECT seq, at, job_id, refusals FROM refusals ORDER BY seq DESC LIMIT $1",
                &[&limit],
            )?)
        })
    }

    fn verify_audit(&self) -> Result<ChainStatus, LedgerError> {
        self.run(|c| {
            use ::postgres::fallible_iterator::FallibleIterator;
            let mut rows = c.query_raw(
                "SELECT seq, at, kind, job_id, body, prev, hash FROM audit ORDER BY seq",
                std::iter::empty::<i64>(),
            )?;
            let mut expected_seq = 1i64;
            let mut prev_hash = GENESIS.to_string();
            let mut n = 0u64;
            while let Some(r) = rows.next()? {
                let seq: i64 = r.get(0);
                let at: &str = r.get(1);
                let kind: &str = r.get(2);
                let job_id: Option<&str> = r.get(3);
                let body: &str = r.get(4);
                let prev: &str = r.get(5);
                let hash: &str = r.get(6);
                if seq != expected_seq {
                    return Ok(ChainStatus::Broken {
                        seq: expected_seq,
                        reason: format!(
                            "entry {expected_seq} is missing (the next entry is {seq})"
                        ),
                    });
                }
                if prev != prev_hash {
                    return Ok(ChainStatus::Broken {
                        seq,
                        reason: "its link to the previous entry does not match".into(),
                    });
                }
                if audit::entry_hash(seq, at, kind, job_id, body, prev) != hash {
                    return Ok(ChainStatus::Broken {
                        seq,
                        reason: "its contents do not match its hash (changed after writing)".into(),
                    });
                }
                prev_hash = hash.to_string();
                expected_seq += 1;
                n += 1;
            }
            Ok(ChainStatus::Intact { entries: n })
        })
    }

    fn cancel(
        &self,
        job_id: &str,
        reason: &str,
        now: DateTime<FixedOffset>,
    ) -> Result<Option<Cancellation>, LedgerError> {
        let (job_id, reason) = (job_id.to_string(), reason.to_string());
        self.chained(move |tx| {
            if tx
                .query_opt("SELECT 1 FROM jobs WHERE id = $1", &[&job_id])?
                .is_none()
            {
                return Ok(None);
            }
            let now_ms = now.timestamp_millis();
            let mut out = Cancellation::default();
            let mut changed: Vec<Changed> = Vec::new();
            // Only `pending`: what is `sending` is in a channel's hands, and what is final stays
            // as it is (see the SQLite ledger).
            for r in tx.query(
                "UPDATE deliveries SET state = 'cancelled', code = 'cancelled', detail = $1, lease_until = NULL, updated_at = $2
                 WHERE job_id = $3 AND state = 'pending' RETURNING id, channel, recipient",
                &[&reason, &now_ms, &job_id],
            )? {
                let channel: String = r.get(1);
                *out.cancelled.entry(channel.clone()).or_default() += 1;
                changed.push((
                    r.get(0),
                    job_id.clone(),
                    channel,
                    r.get(2),
                    State::Cancelled,
                    Some("cancelled".into()),
                ));
            }
            changed.sort_unstable_by_key(|c| c.0);
            for r in tx.query(
                "SELECT state, count(*) FROM deliveries WHERE job_id = $1 GROUP BY state",
                &[&job_id],
            )? {
                let (state, n): (String, u64) = (r.get(0), count(r.get(1)));
                let n = if state == "cancelled" {
                    n - out.cancelled_total()
                } else {
                    n
                };
                if n > 0 {
                    out.untouched.insert(state, n);
                }
            }
            if !changed.is_empty() {
                let at = ts(now);
                let body = json!({
                    "job_id": job_id, "reason": reason,
                    "cancelled": out.cancelled, "untouched": out.untouched,
                });
                append_audit(
                    tx,
                    &at,
                    audit::JOB_CANCELLED,
                    Some(&job_id),
                    &body.to_string(),
                )?;
                emit(tx, &at, "job.cancelled", Some(&job_id), body)?;
                emit_outcomes(tx, &at, &changed)?;
            }
            Ok(Some(out))
        })
    }

    fn was_refused(&self, job_id: &str) -> Result<bool, LedgerError> {
        let job_id = job_id.to_string();
        self.run(move |c| {
            Ok(c.query_opt(
                "SELECT 1 FROM refusals WHERE job_id = $1 LIMIT 1",
                &[&job_id],
            )?
            .is_some())
        })
    }

    fn jobs_active_between(
        &self,
        from: DateTime<FixedOffset>,
        to: DateTime<FixedOffset>,
    ) -> Result<Vec<JobRecord>, LedgerError> {
        self.run(move |c| {
            // Times are compared as instants (`timestamptz`), whatever zone each was written in.
            let ids: Vec<String> = c
                .query(
                    "SELECT id FROM jobs j
                     WHERE j.accepted_at::timestamptz < $2::text::timestamptz
                       AND (j.accepted_at::timestamptz >= $1::text::timestamptz
                            OR EXISTS (SELECT 1 FROM deliveries d WHERE d.job_id = j.id
                                       AND d.state IN ('delivered', 'unknown')
                                       AND d.updated_at >= $3 AND d.updated_at < $4))
                     ORDER BY j.accepted_at::timestamptz, j.id",
                    &[
                        &ts(from),
                        &ts(to),
                        &from.timestamp_millis(),
                        &to.timestamp_millis(),
                    ],
                )?
                .iter()
                .map(|r| r.get(0))
                .collect();
            job_records(c, ids)
        })
    }

    fn jobs_in_category(&self, category: &str) -> Result<Vec<JobRecord>, LedgerError> {
        let category = category.to_string();
        self.run(move |c| {
            let ids: Vec<String> = c
                .query(
                    "SELECT id FROM jobs WHERE category = $1 AND kind IN ('release', 'notice')
                     ORDER BY accepted_at::timestamptz, id",
                    &[&category],
                )?
                .iter()
                .map(|r| r.get(0))
                .collect();
            job_records(c, ids)
        })
    }

    fn refusals_between(
        &self,
        from: DateTime<FixedOffset>,
        to: DateTime<FixedOffset>,
    ) -> Result<Vec<RefusalRow>, LedgerError> {
        self.run(move |c| {
            refusal_rows(c.query(
                "SELECT seq, at, job_id, refusals FROM refusals
                 WHERE at::timestamptz >= $1::text::timestamptz AND at::timestamptz < $2::text::timestamptz
                 ORDER BY seq",
                &[&ts(from), &ts(to)],
            )?)
        })
    }

    fn audit_entries(
        &self,
        kind: &str,
        from: DateTime<FixedOffset>,
        to: DateTime<FixedOffset>,
    ) -> Result<Vec<AuditEntry>, LedgerError> {
        let kind = kind.to_string();
        self.run(move |c| {
            Ok(c.query(
                "SELECT seq, at, kind, job_id, body FROM audit
                 WHERE kind = $1 AND at::timestamptz >= $2::text::timestamptz AND at::timestamptz < $3::text::timestamptz
                 ORDER BY seq",
                &[&kind, &ts(from), &ts(to)],
            )?
            .iter()
            .map(|r| {
                let body: String = r.get(4);
                AuditEntry {
                    seq: r.get(0),
                    at: r.get(1),
                    kind: r.get(2),
                    job_id: r.get(3),
                    // A body that is not JSON (it was changed by hand) is shown as it stands.
                    body: serde_json::from_str(&body)
                        .unwrap_or(serde_json::Value::String(body)),
                }
            })
            .collect())
        })
    }

    fn record_change(
        &self,
        obligation: &str,
        on: chrono::NaiveDate,
        note: &str,
        now: DateTime<FixedOffset>,
    ) -> Result<ChangeRecord, LedgerError> {
        let (obligation, note) = (obligation.to_string(), note.to_string());
        self.chained(move |tx| {
            let at = ts(now);
            let on_text = on.format("%Y-%m-%d").to_string();
            let seq: i64 = tx
                .query_one(
                    "INSERT INTO obligation_changes (obligation, on_date, note, recorded_at) VALUES ($1, $2, $3, $4) RETURNING seq",
                    &[&obligation, &on_text, &note, &at],
                )?
                .get(0);
            let body =
                json!({"obligation": obligation, "on": on_text, "note": note, "change": seq});
            append_audit(tx, &at, audit::OBLIGATION_CHANGE, None, &body.to_string())?;
            Ok(ChangeRecord {
                seq,
                obligation,
                on,
                note,
                recorded_at: at,
            })
        })
    }

    fn take_recipient_quota(
        &self,
        channel: ChannelKind,
        addresses: &[&str],
        windows: &[(u32, u32)],
        now_ms: i64,
    ) -> Result<Option<Vec<Option<i64>>>, LedgerError> {
        let hashes: Vec<String> = addresses
            .iter()
            .map(|a| audit::sha256_hex(a.as_bytes()))
            .collect();
        let windows = windows.to_vec();
        let channel = channel.as_str();
        self.run(move |c| take_quota(c, channel, &hashes, &windows, now_ms))
            .map(Some)
    }

    fn changes(&self, obligation: &str) -> Result<Vec<ChangeRecord>, LedgerError> {
        let obligation = obligation.to_string();
        self.run(move |c| {
            let mut out = Vec::new();
            for r in c.query(
                "SELECT seq, on_date, note, recorded_at FROM obligation_changes WHERE obligation = $1 ORDER BY on_date, seq",
                &[&obligation],
            )? {
                let seq: i64 = r.get(0);
                let on: String = r.get(1);
                let on = chrono::NaiveDate::parse_from_str(&on, "%Y-%m-%d").map_err(|e| {
                    LedgerError::Corrupt(format!("obligation change {seq} has date {on:?}: {e}"))
                })?;
                out.push(ChangeRecord {
                    seq,
                    obligation: obligation.clone(),
                    on,
                    note: r.get(2),
                    recorded_at: r.get(3),
                });
            }
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_size_is_ours_and_stripped_from_the_url() {
        assert_eq!(
            split_pool_size("postgres://h/db").unwrap(),
            ("postgres://h/db".into(), DEFAULT_POOL_SIZE)
        );
        assert_eq!(
            split_pool_size("postgres://h/db?pool_size=2&options=-c search_path=x").unwrap(),
            ("postgres://h/db?options=-c search_path=x".into(), 2)
        );
        assert_eq!(
            split_pool_size("postgres://h/db?pool_size=9").unwrap(),
            ("postgres://h/db".into(), 9)
        );
        assert!(split_pool_size("postgres://h/db?pool_size=0").is_err());
    }

    #[test]
    fn connections_give_up_on_a_silent_server_unless_the_url_says_otherwise() {
        let (config, size) = pool_config("postgres://h/db?pool_size=3").unwrap();
        assert_eq!(size, 3);
        assert_eq!(
            config.get_tcp_user_timeout(),
            Some(&Duration::from_secs(30))
        );
        assert!(config.get_keepalives());
        assert_eq!(config.get_keepalives_idle(), Duration::from_secs(30));
        assert_eq!(config.get_connect_timeout(), Some(&Duration::from_secs(10)));
        assert_eq!(config.get_application_name(), Some("disclose"));
        let (config, _) = pool_config(
            "postgres://h/db?tcp_user_timeout=5&keepalives_idle=600&connect_timeout=3\
             &application_name=x",
        )
        .unwrap();
        assert_eq!(config.get_tcp_user_timeout(), Some(&Duration::from_secs(5)));
        assert_eq!(config.get_keepalives_idle(), Duration::from_secs(600));
        assert_eq!(config.get_connect_timeout(), Some(&Duration::from_secs(3)));
        assert_eq!(config.get_application_name(), Some("x"));
    }
}
