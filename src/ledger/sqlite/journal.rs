//! The claim journal: how the SQLite ledger claims pending deliveries and records their outcomes
//! with a row per claimed batch instead of two updates of every delivery.
//!
//! SPEC §7 marks a delivery `sending` before the provider call and `delivered`/`failed` after:
//! done row by row, that is two updates of each delivery and its indexes, and for a call of 200
//! numbers it cost SQLite more than the whole call to a provider on loopback (BENCHMARKS.md:
//! 18% of a bare client's call rate). Here a claim is one row (`claims`: its lease and the ids
//! it holds, durable before anything is sent, so a crash still never leads to a blind resend)
//! and what a recorded batch answered one more (`claim_outcomes`: the ids, and the batch's
//! `deliveries.recorded` audit entry, which lists every outcome with its code and detail, so
//! they are written once); the deliveries themselves stay `pending` in their table meanwhile.
//! Outcomes that are not final (retry later, unknown) are written to the deliveries at once, as
//! the statuses they are waited on by.
//!
//! Folding writes the journal into the deliveries in bulk — final outcomes as they were
//! recorded, claims not yet recorded as `sending` under their lease, exactly what the
//! row-by-row claim would have left — and empties it. Everything else that reads or changes
//! deliveries folds first (see `SqliteLedger::folded`), so the rest of the ledger, every
//! report and every other process on the same file see deliveries as SPEC §7 describes them;
//! a worker whose claim was folded meanwhile records through the row-by-row path, which finds
//! its deliveries `sending` under its lease.
//!
//! Which pending deliveries are free to claim: those past the channel's cursor (`claim_cursor`:
//! the last delivery claimed, in claim order, while the journal holds anything of the
//! channel). A delivery planned since with an earlier due time waits behind the cursor until
//! the journal is folded: when a claim finds nothing past the cursor, after `FOLD_AFTER`
//! recorded batches, or when anything else reads the deliveries.

use std::hash::Hasher;

use super::planned::Planned;
use super::*;
use crate::ledger::json_text::{ListedOutcome, RecordedBody};

pub(super) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS claims (
    -- The claim's lease, unique: it names the claim (Claimed::lease_until).
    lease_until INTEGER PRIMARY KEY,
    channel TEXT NOT NULL,
    -- The claimed delivery ids, as runs of consecutive ids: [[first, last], …].
    ids TEXT NOT NULL,
    claimed_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS claim_outcomes (
    seq INTEGER PRIMARY KEY,
    lease_until INTEGER NOT NULL,
    -- Every delivery of the claim this record answered, as runs: [[first, last], …].
    ids TEXT NOT NULL,
    -- Written before `audit_seq` (kept to fold a journal left by then): their final outcomes,
    -- still to be written to the deliveries: [[id, state, code, detail], …]; '' since.
    final TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS claim_outcomes_lease ON claim_outcomes (lease_until);
-- The last lease given to a claim: a lease names its claim for as long as the claim may be
-- answered, folded or not, so a lease is never given twice (kept when the journal is folded).
CREATE TABLE IF NOT EXISTS claim_lease (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    last INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS claim_cursor (
    channel TEXT PRIMARY KEY,
    due_at INTEGER NOT NULL,
    id INTEGER NOT NULL
) WITHOUT ROWID;
"#;

/// `claim_outcomes.audit_seq`: the `deliveries.recorded` audit entry that lists the batch's
/// outcomes, each with its state, code and detail, from which the fold writes the final ones
/// (before it, the row held them a second time, a third of what recording a batch wrote). A
/// journal written before the column keeps its outcomes in `final`.
pub(super) fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    add_column(conn, "claim_outcomes", "audit_seq", "INTEGER")
}

/// After this many recorded batches the journal is folded at the next claim, so that it stays a
/// bounded part of the ledger and nothing waits behind the cursor for long.
const FOLD_AFTER: i64 = 2048;

/// The deliveries of this process's claims still waiting for their outcomes, per claim (its
/// lease): id → job, for the events and the audit entry of the outcomes.
pub(super) type ClaimCache = HashMap<i64, Held>;

/// One claim's deliveries still waiting for their outcomes: their ids, ascending, each with its
/// job (one string per job: a claim is mostly of one), and which of them still wait. A sorted
/// list and not a hash map: built by the claim on one thread and read by the record on another,
/// the map's thousand entries a claim, their hashing and their `Arc` counts were 3–4% of the
/// CPU of sending SMS (BENCHMARKS.md, session 16), and the records come in the claim's order.
#[derive(Default)]
pub(super) struct Held {
    ids: Vec<i64>,
    /// Each delivery's job, as its place in `jobs`.
    job_of: Vec<u32>,
    jobs: Vec<Arc<str>>,
    waiting: Vec<bool>,
    left: usize,
    /// Where the last delivery looked up was, plus one.
    next: std::cell::Cell<usize>,
}

impl Held {
    /// The deliveries `(id, job)` of one claim, in any order.
    fn new(mut of: Vec<(i64, Arc<str>)>) -> Held {
        of.sort_unstable_by_key(|(id, _)| *id);
        let mut held = Held {
            ids: Vec::with_capacity(of.len()),
            job_of: Vec::with_capacity(of.len()),
            waiting: vec![true; of.len()],
            left: of.len(),
            ..Held::default()
        };
        for (id, job) in of {
            // A job is kept once per run of its deliveries (a job can come back after another).
            if held
                .jobs
                .last()
                .is_none_or(|j| !Arc::ptr_eq(j, &job) && *j != job)
            {
                held.jobs.push(job);
            }
            held.ids.push(id);
            held.job_of.push((held.jobs.len() - 1) as u32);
        }
        held
    }

    fn position(&self, id: i64) -> Option<usize> {
        position_hinted(&self.ids, 0, &self.next, &id)
    }

    /// Whether delivery `id` still waits for its outcome.
    pub fn contains(&self, id: i64) -> bool {
        self.position(id).is_some_and(|at| self.waiting[at])
    }

    /// Delivery `id` no longer waits: its job, if it did.
    pub fn remove(&mut self, id: i64) -> Option<Arc<str>> {
        let at = self.position(id)?;
        if !std::mem::replace(&mut self.waiting[at], false) {
            return None;
        }
        self.left -= 1;
        Some(self.jobs[self.job_of[at] as usize].clone())
    }

    /// Whether nothing waits any more.
    pub fn is_empty(&self) -> bool {
        self.left == 0
    }
}

/// Hashes a delivery id by one multiplication: the ids are the ledger's own, not chosen by
/// anyone who could aim at collisions, and SipHash on a thousand of them per claim and per
/// record was 2% of the sending (it keys the records written row by row; a claim's own
/// deliveries are a sorted list, [`Held`]).
#[derive(Default)]
pub(super) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_i64(&mut self, n: i64) {
        self.0 = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// What a claim reads of each delivery.
#[derive(Clone, Copy)]
pub(super) enum Columns {
    All,
    /// Not the recipient's id, name and role (left empty): for a channel that sends by address.
    Addresses,
}

/// Claims up to `limit` pending deliveries of `channel` due by `now_ms`, in due order.
#[allow(clippy::too_many_arguments)]
pub(super) fn claim(
    tx: &Transaction<'_>,
    cache: &mut ClaimCache,
    planned: &mut Planned,
    channel: ChannelKind,
    now_ms: i64,
    lease_ms: i64,
    limit: usize,
    columns: Columns,
) -> Result<Vec<Claimed>, LedgerError> {
    let ch = channel.as_str();
    planned.check(data_version(tx)?);
    // Kept as planned: what the claim takes of each delivery is read from there (by address
    // only), and its rows only for the ids the index gives.
    let kept = match columns {
        Columns::Addresses if planned.has(channel) => Some(&*planned),
        _ => None,
    };
    let cursor: Option<(i64, i64)> = tx
        .prepare_cached("SELECT due_at, id FROM claim_cursor WHERE channel = ?1")?
        .query_row(params![ch], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let mut rows: Vec<Claimed> = Vec::with_capacity(limit);
    // The due time of the last delivery claimed, for the cursor.
    let mut last_due = None;
    if cursor.is_none() && is_empty(tx)? {
        // No cursor, no journal (they are written and folded together): nothing is held, and
        // what this process remembers of claims folded by others can go.
        cache.clear();
    }
    if let Some(after) = cursor {
        // Each bound alone, so that SQLite reads it off the end of the table: asked together,
        // they walked every recorded batch at every claim.
        let batches: i64 = tx
            .prepare_cached(
                "SELECT coalesce((SELECT max(seq) FROM claim_outcomes)
                                 - (SELECT min(seq) FROM claim_outcomes) + 1, 0)",
            )?
            .query_row([], |r| r.get(0))?;
        if batches < FOLD_AFTER {
            last_due = pending_after(
                tx,
                channel,
                now_ms,
                Some(after),
                limit,
                columns,
                kept,
                &mut rows,
            )?;
        }
        // Only a claim that finds nothing past the cursor folds. A short one (the last of a
        // fan-out that is not a multiple of the claim) is sent as it is: folding first held the
        // last calls of a million SMS back for the two seconds the fold took, all workers
        // waiting on it, and halved the call rate measured over the sending (BENCHMARKS.md,
        // session 13). The next claim finds the run dry and folds.
        if rows.is_empty() {
            fold(tx)?;
            cache.clear();
            last_due = pending_after(tx, channel, now_ms, None, limit, columns, kept, &mut rows)?;
        }
    } else {
        last_due = pending_after(tx, channel, now_ms, None, limit, columns, kept, &mut rows)?;
    }
    let (Some(last), Some(last_due)) = (rows.last(), last_due) else {
        return Ok(Vec::new());
    };
    let last_id = last.id;
    // The lease names the claim, here and (once folded) on its deliveries: never one given
    // before, or a worker's outcomes could be taken for another claim's (two claims in the same
    // millisecond; a claim folded and its lease given again).
    let last: Option<i64> = tx
        .prepare_cached("SELECT last FROM claim_lease WHERE one = 1")?
        .query_row([], |r| r.get(0))
        .optional()?;
    let lease = last.map_or(now_ms + lease_ms, |last| (now_ms + lease_ms).max(last + 1));
    tx.prepare_cached("INSERT OR REPLACE INTO claim_lease (one, last) VALUES (1, ?1)")?
        .execute(params![lease])?;
    let ids = runs(rows.iter().map(|c| c.id));
    tx.prepare_cached(
        "INSERT INTO claims (lease_until, channel, ids, claimed_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![lease, ch, ids, now_ms])?;
    tx.prepare_cached(
        "INSERT INTO claim_cursor (channel, due_at, id) VALUES (?1, ?2, ?3)
         ON CONFLICT (channel) DO UPDATE SET due_at = excluded.due_at, id = excluded.id",
    )?
    .execute(params![ch, last_due, last_id])?;
    let mut of = Vec::with_capacity(rows.len());
    for c in &mut rows {
        c.lease_until = lease;
        of.push((c.id, c.job_id.clone()));
    }
    let held = Held::new(of);
    // What the claim took is no longer as planned (its ids, ascending, as the claim holds them).
    planned.take(&held.ids);
    cache.insert(lease, held);
    Ok(rows)
}

/// Pending deliveries of `channel` due by `now_ms` and after `after` (due time, id), in that
/// order, up to `limit` in all in `out`; the due time of the last, if any. With `kept`, each
/// delivery's job and address come from there when it is kept, and only the others' rows are
/// read.
#[allow(clippy::too_many_arguments)]
fn pending_after(
    tx: &Transaction<'_>,
    channel: ChannelKind,
    now_ms: i64,
    after: Option<(i64, i64)>,
    limit: usize,
    columns: Columns,
    kept: Option<&Planned>,
    out: &mut Vec<Claimed>,
) -> Result<Option<i64>, LedgerError> {
    let all = matches!(columns, Columns::All);
    let columns = match (columns, kept) {
        (_, Some(_)) => "id, due_at",
        (Columns::All, None) => "id, job_id, address, attempts, due_at, recipient, name, role",
        (Columns::Addresses, None) => "id, job_id, address, attempts, due_at",
    };
    // The job's string is read once and shared while the rows are of the same job (a claim is
    // mostly one), and the columns a claim by address leaves out are not read at all: the
    // rows' reading was a fifth of the CPU of sending SMS.
    let mut job: Option<Arc<str>> = None;
    let mut last_due = None;
    // Where in `out` the deliveries not kept are, to be read from their rows.
    let mut unkept: Vec<usize> = Vec::new();
    // `due`: the due time of every row the statement gives, when it asks for one (not read
    // again from each row).
    let mut read = |stmt: &mut rusqlite::CachedStatement<'_>,
                    params: &[&dyn rusqlite::ToSql],
                    due: Option<i64>,
                    out: &mut Vec<Claimed>|
     -> rusqlite::Result<()> {
        let mut rows = stmt.query(params)?;
        while let Some(r) = rows.next()? {
            last_due = match due {
                Some(due) => Some(due),
                None => Some(r.get(if kept.is_some() { 1 } else { 4 })?),
            };
            let id = r.get(0)?;
            if let Some(kept) = kept {
                // Kept as planned, and still due as planned (`last_due`: this row's).
                let found = kept
                    .find(channel, id)
                    .filter(|f| Some(f.due_at) == last_due);
                let job_id = match &found {
                    Some(f) => match &job {
                        Some(j) if Arc::ptr_eq(j, f.job) => j.clone(),
                        _ => job.insert(f.job.clone()).clone(),
                    },
                    None => {
                        unkept.push(out.len());
                        Arc::from("")
                    }
                };
                out.push(Claimed {
                    id,
                    job_id,
                    channel,
                    recipient: String::new(),
                    name: String::new(),
                    role: String::new(),
                    address: found.and_then(|f| f.address.map(str::to_string)),
                    attempt: 1,
                    lease_until: 0,
                });
                continue;
            }
            let job_id = r.get_ref(1)?.as_str()?;
            let job_id = match &job {
                Some(j) if **j == *job_id => j.clone(),
                _ => job.insert(Arc::from(job_id)).clone(),
            };
            let text = |i: usize| -> rusqlite::Result<String> {
                if all { r.get(i) } else { Ok(String::new()) }
            };
            out.push(Claimed {
                id,
                job_id,
                channel,
                recipient: text(5)?,
                name: text(6)?,
                role: text(7)?,
                address: r.get(2)?,
                attempt: r.get::<_, u32>(3)?.saturating_add(1),
                lease_until: 0,
            });
        }
        Ok(())
    };
    let ch = channel.as_str();
    let (due, id) = after.unwrap_or((i64::MIN, 0));
    if after.is_some() {
        // The rest of the cursor's due time, by id. `INDEXED BY`: asked as one range over
        // (due_at, id), SQLite seeks by due_at alone and walks every delivery of a fan-out
        // (they share one due time) at each claim.
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT {columns} FROM deliveries INDEXED BY deliveries_pending
             WHERE channel = ?1 AND state = 'pending' AND due_at = ?2 AND id > ?3 AND due_at <= ?4
             ORDER BY id LIMIT ?5"
        ))?;
        read(
            &mut stmt,
            params![ch, due, id, now_ms, limit as i64],
            Some(due),
            out,
        )?;
    }
    if out.len() < limit {
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT {columns} FROM deliveries INDEXED BY deliveries_pending
             WHERE channel = ?1 AND state = 'pending' AND due_at > ?2 AND due_at <= ?3
             ORDER BY due_at, id LIMIT ?4"
        ))?;
        let rest = (limit - out.len()) as i64;
        read(&mut stmt, params![ch, due, now_ms, rest], None, out)?;
    }
    if !unkept.is_empty() {
        let mut stmt =
            tx.prepare_cached("SELECT job_id, address, attempts FROM deliveries WHERE id = ?1")?;
        for i in unkept {
            let c = &mut out[i];
            let (job_id, address, attempts): (String, Option<String>, u32) =
                stmt.query_row(params![c.id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            c.job_id = Arc::from(job_id);
            c.address = address;
            c.attempt = attempts.saturating_add(1);
        }
    }
    Ok(last_due)
}

/// A delivery whose outcome was recorded: id, job, channel.
pub(super) type Recorded = (i64, Arc<str>, ChannelKind);

/// A record the journal took, with its delivery's job and channel.
pub(super) type Took<'a> = (&'a Record, Arc<str>, ChannelKind);

/// The deliveries of one claim a record answered: its lease and their ids (as [`runs`]). Their
/// final outcomes are written to the deliveries when the journal is folded, from the audit
/// entry that lists them ([`answered`]).
pub(super) type Answered = (i64, String);

/// What [`record`] did with a batch of records.
pub(super) struct Taken<'a> {
    /// The records it took.
    pub recorded: Vec<Took<'a>>,
    /// What it answered of each claim, for [`answered`] once the audit entry is written.
    pub answered: Vec<Answered>,
    /// The records it did not take (their claim is not in the journal: folded, or never in
    /// it), for the row-by-row path.
    pub rest: Vec<Record>,
}

/// Records the outcomes of deliveries whose claim is in the journal.
pub(super) fn record<'a>(
    tx: &Transaction<'_>,
    cache: &mut ClaimCache,
    records: &'a [Record],
    now_ms: i64,
) -> Result<Taken<'a>, LedgerError> {
    if records.iter().any(|r| r.lease_until.is_none()) {
        // Outcomes that name no claim (the ledger's tests record such) match the deliveries in
        // flight by id alone: that is the row-by-row path's, with the journal folded.
        fold_if_any(tx)?;
        cache.clear();
        return Ok(Taken {
            recorded: Vec::new(),
            answered: Vec::new(),
            rest: records.to_vec(),
        });
    }
    let mut rest = Vec::new();
    let mut recorded = Vec::with_capacity(records.len());
    let mut answered = Vec::new();
    let mut by_lease: BTreeMap<i64, Vec<&Record>> = BTreeMap::new();
    for r in records {
        if let Some(lease) = r.lease_until {
            by_lease.entry(lease).or_default().push(r);
        }
    }
    for (lease, records) in by_lease {
        let claim: Option<(String, String)> = tx
            .prepare_cached("SELECT channel, ids FROM claims WHERE lease_until = ?1")?
            .query_row(params![lease], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let Some((channel, ids)) = claim else {
            // Folded since (its deliveries are `sending` under this lease now), or never here.
            cache.remove(&lease);
            rest.extend(records.into_iter().cloned());
            continue;
        };
        let channel = ChannelKind::parse(&channel).ok_or_else(|| {
            LedgerError::Corrupt(format!("claim journal: no such channel: {channel:?}"))
        })?;
        // Who each delivery is for: known to the process that claimed it, read back otherwise.
        let mut fetched;
        let held = match cache.get_mut(&lease) {
            Some(held) => held,
            None => {
                fetched = claimed_rows(tx, &ids)?;
                &mut fetched
            }
        };
        let (mine, others): (Vec<&Record>, Vec<&Record>) =
            records.into_iter().partition(|r| held.contains(r.id));
        rest.extend(others.into_iter().cloned());
        if mine.is_empty() {
            continue;
        }
        let mut open = JsonText::new(64);
        open.raw("[");
        let mut any_open = false;
        for r in mine.iter().filter(|r| !r.state.is_final()) {
            any_open = true;
            open.outcome(r)
                .raw(",")
                .opt_int(r.retry_at)
                .raw(",")
                .int(i64::from(r.deferred))
                .raw("]");
        }
        open.raw("]");
        if any_open {
            // To try again later, or to ask about: the statuses they are waited on by.
            tx.prepare_cached(
                "UPDATE deliveries SET state = j.state, code = j.code, detail = j.detail,
                        due_at = COALESCE(j.retry_at, due_at), lease_until = NULL, updated_at = ?1,
                        attempts = attempts + 1 - j.deferred
                 FROM (SELECT value ->> 0 AS id, value ->> 1 AS state, value ->> 2 AS code,
                              value ->> 3 AS detail, value ->> 4 AS retry_at, value ->> 5 AS deferred
                       FROM json_each(?2)) AS j
                 WHERE deliveries.id = j.id AND deliveries.state = 'pending'",
            )?
            .execute(params![now_ms, open.into_string()])?;
        }
        answered.push((lease, runs(mine.iter().map(|r| r.id))));
        // Answered: no longer waited for.
        for r in &mine {
            if let Some(job) = held.remove(r.id) {
                recorded.push((*r, job, channel));
            }
        }
        if held.is_empty() && cache.remove(&lease).is_some() {
            // Every delivery of the claim answered: nothing of it is in flight any more.
            tx.prepare_cached("DELETE FROM claims WHERE lease_until = ?1")?
                .execute(params![lease])?;
        }
    }
    Ok(Taken {
        recorded,
        answered,
        rest,
    })
}

/// Notes in the journal what [`record`] answered, with the audit entry that lists the outcomes
/// (`listed_in`, in the same transaction): the fold writes the final ones from there.
pub(super) fn answered(
    tx: &Transaction<'_>,
    answered: Vec<Answered>,
    listed_in: Option<i64>,
    now_ms: i64,
) -> Result<(), LedgerError> {
    if answered.is_empty() {
        return Ok(());
    }
    let Some(audit_seq) = listed_in else {
        // What the journal answered is always in the audit entry of its transaction.
        return Err(LedgerError::Corrupt(
            "outcomes recorded in the claim journal without their audit entry".into(),
        ));
    };
    let mut insert = tx.prepare_cached(
        "INSERT INTO claim_outcomes (lease_until, ids, final, at, audit_seq)
         VALUES (?1, ?2, '', ?3, ?4)",
    )?;
    for (lease, ids) in answered {
        insert.execute(params![lease, ids, now_ms, audit_seq])?;
    }
    Ok(())
}

/// id → job of the deliveries in a claim's `ids`.
fn claimed_rows(tx: &Transaction<'_>, ids: &str) -> Result<Held, LedgerError> {
    let mut stmt = tx.prepare_cached(
        "SELECT id, job_id FROM deliveries WHERE id IN (SELECT value FROM json_each(?1))",
    )?;
    let rows = stmt.query_map(params![id_array(&id_list(ids)?)], |r| {
        Ok((r.get::<_, i64>(0)?, Arc::from(r.get::<_, String>(1)?)))
    })?;
    Ok(Held::new(rows.collect::<Result<_, _>>()?))
}

/// Whether the journal holds anything (of any process).
pub(super) fn is_empty(conn: &Connection) -> Result<bool, LedgerError> {
    Ok(!conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM claim_cursor) OR EXISTS (SELECT 1 FROM claims)
                 OR EXISTS (SELECT 1 FROM claim_outcomes)",
        )?
        .query_row([], |r| r.get::<_, bool>(0))?)
}

/// Whether the journal holds anything of `channel`.
pub(super) fn holds(conn: &Connection, channel: ChannelKind) -> Result<bool, LedgerError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM claim_cursor WHERE channel = ?1")?
        .exists(params![channel.as_str()])?)
}

/// Whether a claim in the journal has a lease that ran out before `now_ms`.
pub(super) fn has_expired(tx: &Transaction<'_>, now_ms: i64) -> Result<bool, LedgerError> {
    Ok(tx
        .prepare_cached("SELECT 1 FROM claims WHERE lease_until < ?1")?
        .exists(params![now_ms])?)
}

/// [`fold`] if the journal holds anything.
pub(super) fn fold_if_any(tx: &Transaction<'_>) -> Result<(), LedgerError> {
    if !is_empty(tx)? {
        fold(tx)?;
    }
    Ok(())
}

/// Writes the journal into the deliveries and empties it (the module's comment says what that
/// leaves). What this process holds of it in memory ([`ClaimCache`]) is cleared by the next
/// claim, which finds the journal empty.
pub(super) fn fold(tx: &Transaction<'_>) -> Result<(), LedgerError> {
    // Claims still waiting for some outcome (fully answered ones are gone): lease → (claimed
    // ids, when).
    let mut open: HashMap<i64, (Vec<i64>, i64)> = HashMap::new();
    {
        let mut stmt = tx.prepare_cached("SELECT lease_until, ids, claimed_at FROM claims")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        for row in rows {
            let (lease, ids, at) = row?;
            open.insert(lease, (id_list(&ids)?, at));
        }
    }
    // Final outcomes as recorded, a statement per delivery: read here rather than by SQLite's
    // JSON functions (`value ->> n` parses the element again for each of its four fields, a
    // quarter of the fold's time), from the audit entry that lists them (several claims
    // answered in one transaction share it: read once).
    let mut answered: HashMap<i64, HashSet<i64>> = HashMap::new();
    {
        let mut apply = tx.prepare_cached(
            "UPDATE deliveries SET state = ?2, code = ?3, detail = ?4,
                    lease_until = NULL, updated_at = ?5, attempts = attempts + 1
             WHERE id = ?1 AND state = 'pending'",
        )?;
        let mut audit_body = tx.prepare_cached(
            "SELECT body FROM audit WHERE seq = ?1 AND kind = 'deliveries.recorded'",
        )?;
        let mut listed: Option<(i64, String)> = None;
        let mut stmt = tx.prepare_cached(
            "SELECT lease_until, ids, final, at, audit_seq FROM claim_outcomes ORDER BY seq",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let lease: i64 = r.get(0)?;
            let at: i64 = r.get(3)?;
            let audit_seq: Option<i64> = r.get(4)?;
            let corrupt = |e: &dyn std::fmt::Display| {
                LedgerError::Corrupt(format!("a recorded batch in the claim journal: {e}"))
            };
            let ids = id_list(r.get_ref(1)?.as_str().map_err(|e| corrupt(&e))?)?;
            let finals: Vec<ListedOutcome<'_>> = match audit_seq {
                Some(seq) => {
                    if listed.as_ref().is_none_or(|(s, _)| *s != seq) {
                        let body: String = audit_body
                            .query_row(params![seq], |r| r.get(0))
                            .optional()?
                            .ok_or_else(|| corrupt(&format!("audit entry {seq} is missing")))?;
                        listed = Some((seq, body));
                    }
                    let body = listed.as_ref().map_or("", |(_, b)| b.as_str());
                    let entry: RecordedBody<'_> =
                        serde_json::from_str(body).map_err(|e| corrupt(&e))?;
                    // The entry lists the transaction's every outcome: this claim's final ones.
                    let mine: HashSet<i64> = ids.iter().copied().collect();
                    entry
                        .deliveries
                        .into_iter()
                        .filter(|f| mine.contains(&f.0) && is_final(&f.1))
                        .collect()
                }
                None => {
                    let text = r.get_ref(2)?.as_str().map_err(|e| corrupt(&e))?;
                    serde_json::from_str(text).map_err(|e| corrupt(&e))?
                }
            };
            for ListedOutcome(id, state, code, detail) in finals {
                apply.execute(params![id, state, code, detail, at])?;
            }
            if open.contains_key(&lease) {
                answered.entry(lease).or_default().extend(ids);
            }
        }
    }
    // What was claimed and not answered is in flight: `sending` under its claim's lease.
    let mut mark = tx.prepare_cached(
        "UPDATE deliveries SET state = 'sending', lease_until = ?1, updated_at = ?2,
                attempts = attempts + 1
         WHERE id IN (SELECT value FROM json_each(?3)) AND state = 'pending'",
    )?;
    for (lease, (mut ids, at)) in open {
        let done = answered.remove(&lease).unwrap_or_default();
        ids.retain(|id| !done.contains(id));
        mark.execute(params![lease, at, id_array(&ids)])?;
    }
    tx.execute_batch("DELETE FROM claim_outcomes; DELETE FROM claims; DELETE FROM claim_cursor;")?;
    Ok(())
}

/// Whether an outcome's state (as text) is final.
fn is_final(state: &str) -> bool {
    State::parse(state).is_some_and(State::is_final)
}

/// Delivery ids as the journal writes them: runs of consecutive ids, `[[first, last], …]` (a
/// claim is mostly one run, a thousandth of the text of its ids one by one).
fn runs(ids: impl IntoIterator<Item = i64>) -> String {
    let mut out = JsonText::new(32);
    out.raw("[");
    let mut run: Option<(i64, i64)> = None;
    let put = |out: &mut JsonText, (first, last): (i64, i64)| {
        out.next().raw("[").int(first).raw(",").int(last).raw("]");
    };
    for id in ids {
        run = match run {
            Some((first, last)) if id == last + 1 => Some((first, id)),
            Some(done) => {
                put(&mut out, done);
                Some((id, id))
            }
            None => Some((id, id)),
        };
    }
    if let Some(done) = run {
        put(&mut out, done);
    }
    out.raw("]");
    out.into_string()
}

/// The ids of [`runs`] text, in order.
fn id_list(text: &str) -> Result<Vec<i64>, LedgerError> {
    let runs: Vec<(i64, i64)> = serde_json::from_str(text)
        .map_err(|e| LedgerError::Corrupt(format!("claim journal: {e}: {text:.80}")))?;
    Ok(runs
        .into_iter()
        .flat_map(|(first, last)| first..=last)
        .collect())
}

/// A JSON array of ids, for `json_each`.
pub(super) fn id_array(ids: &[i64]) -> String {
    let mut out = JsonText::new(ids.len() * 10);
    out.raw("[");
    for &id in ids {
        out.next().int(id);
    }
    out.raw("]");
    out.into_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_written_as_runs_and_read_back_in_order() {
        assert_eq!(runs([]), "[]");
        assert_eq!(runs([7]), "[[7,7]]");
        assert_eq!(runs([1, 2, 3, 5, 6, 9, 4]), "[[1,3],[5,6],[9,9],[4,4]]");
        assert_eq!(
            id_list(&runs([1, 2, 3, 5, 6, 9, 4])).unwrap(),
            [1, 2, 3, 5, 6, 9, 4]
        );
        assert_eq!(id_array(&[3, 1]), "[3,1]");
        assert!(matches!(id_list("[1,2]"), Err(LedgerError::Corrupt(_))));
    }

    #[test]
    fn a_claims_deliveries_wait_until_each_is_answered_once() {
        let (a, b): (Arc<str>, Arc<str>) = (Arc::from("job-a"), Arc::from("job-b"));
        // Claim order is by due time, then id; a job can come back after another.
        let mut held = Held::new(vec![
            (30, a.clone()),
            (31, a.clone()),
            (10, b.clone()),
            (11, b.clone()),
            (40, Arc::from("job-a")),
        ]);
        assert!(!held.is_empty());
        assert!(held.contains(10) && held.contains(40) && !held.contains(12));
        // In order, out of order, twice.
        assert_eq!(held.remove(30).as_deref(), Some("job-a"));
        assert_eq!(held.remove(10).as_deref(), Some("job-b"));
        assert_eq!(held.remove(30), None);
        assert!(!held.contains(30));
        assert_eq!(held.remove(99), None);
        for id in [40, 11, 31] {
            assert!(held.contains(id));
            assert!(held.remove(id).is_some());
        }
        assert!(held.is_empty());
    }
}
