//! The `delivery.<state>` events of a recorded batch, written as a reference to the batch's audit
//! entry and spelled out when they are read for publishing.
//!
//! The event of a batch lists each delivery with its code and recipient: for a call of 200 SMS
//! that is 11 KB of JSON, written in the transaction that records the outcomes beside the audit
//! entry that already lists each delivery with its state and code. A build that left the events
//! out spent 8–20% less CPU per SMS call (BENCHMARKS.md "SMS", session 8: the bytes written, not
//! the JSON built, were the cost).
//! Here the event row holds its job, channel and the audit entry's sequence number, and
//! [`spell_out`] builds the payload from that entry (id, state, code) and the deliveries'
//! job, channel and recipient, which never change once planned: the same JSON, byte for byte,
//! whenever it is read. The transactional outbox is kept (SPEC §7): the row is committed with
//! the outcomes it reports, and published from the ledger.

use std::borrow::Cow;

use super::*;

/// Columns added to `events` for the reference; a ledger written before them gets them on open.
pub(super) fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    add_column(conn, "events", "audit_seq", "INTEGER")?;
    add_column(conn, "events", "channel", "TEXT")
}

/// Queues a `delivery.<state>` event for each (job, channel, state) of `announced`, as a
/// reference to the audit entry `audit_seq` that lists those deliveries.
pub(super) fn emit(
    tx: &Transaction<'_>,
    announced: BTreeSet<(&str, &str, State)>,
    audit_seq: i64,
) -> Result<(), LedgerError> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO events (name, job_id, payload, audit_seq, channel) VALUES (?1, ?2, '', ?3, ?4)",
    )?;
    for (job, channel, state) in announced {
        insert.execute(params![
            json_text::event_name(state),
            job,
            audit_seq,
            channel
        ])?;
    }
    Ok(())
}

/// The payload of the event `seq` (`delivery.<state>` of `job_id` on `channel`) that refers to
/// the audit entry `audit_seq`.
pub(super) fn spell_out(
    conn: &Connection,
    seq: i64,
    name: &str,
    job_id: &str,
    channel: &str,
    audit_seq: i64,
) -> Result<String, LedgerError> {
    let corrupt = |what: &dyn std::fmt::Display| {
        LedgerError::Corrupt(format!(
            "event {seq} ({name}) refers to audit entry {audit_seq}: {what}"
        ))
    };
    let state = name
        .strip_prefix("delivery.")
        .and_then(State::parse)
        .ok_or_else(|| corrupt(&"not an outcome event"))?;
    let (at, body): (String, String) = conn
        .prepare_cached("SELECT at, body FROM audit WHERE seq = ?1")?
        .query_row(params![audit_seq], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .ok_or_else(|| corrupt(&"no such entry"))?;
    let recorded: json_text::RecordedBody<'_> =
        serde_json::from_str(&body).map_err(|e| corrupt(&e))?;
    let listed: Vec<(i64, Option<Cow<'_, str>>)> = recorded
        .deliveries
        .into_iter()
        .filter(|o| o.1 == state.as_str())
        .map(|o| (o.0, o.2))
        .collect();
    let ids: Vec<i64> = listed.iter().map(|(id, _)| *id).collect();
    // The entry lists the batch's deliveries of every job and channel: this event's are those
    // of its own.
    let mut recipients: HashMap<i64, String> = HashMap::with_capacity(listed.len());
    {
        let mut stmt = conn.prepare_cached(
            "SELECT id, recipient FROM deliveries
             WHERE id IN (SELECT value FROM json_each(?1)) AND job_id = ?2 AND channel = ?3",
        )?;
        let rows = stmt.query_map(params![journal::id_array(&ids), job_id, channel], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
        for row in rows {
            let (id, recipient) = row?;
            recipients.insert(id, recipient);
        }
    }
    let mut fields = OutcomeFields::new(channel, recipients.len());
    for (id, code) in &listed {
        if let Some(recipient) = recipients.get(id) {
            fields.push(*id, code.as_deref(), recipient);
        }
    }
    Ok(json_text::event_payload(
        &fields.finish(),
        name,
        seq,
        &at,
        job_id,
    ))
}
