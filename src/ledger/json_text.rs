//! JSON text as both ledgers write it for a recorded batch: the audit entry's body and the
//! `delivery.<state>` events, one writer for both (upstream systems read them from either; the
//! shared ledger tests check their fields, and that each is compact JSON in key order, on both).

use std::collections::BTreeMap;

use super::{Record, State};

/// A delivery whose state a transaction changed: id, job_id, channel, recipient, new state, code.
pub(super) type Changed = (i64, String, String, String, State, Option<String>);

/// The body of a `deliveries.recorded` audit entry: `{"deliveries":[[id,state,code],…],"jobs":[…]}`,
/// deliveries in the order given.
pub(super) fn recorded_body(entries: &[(i64, State, Option<&str>)], jobs: &[&str]) -> String {
    let mut body = JsonText::new(entries.len() * 32 + 64);
    body.raw("{\"deliveries\":[");
    for (id, state, code) in entries {
        body.next()
            .raw("[")
            .int(*id)
            .raw(",")
            .str(state.as_str())
            .raw(",")
            .opt_str(*code)
            .raw("]");
    }
    body.raw("],\"jobs\":[");
    for job in jobs {
        body.next().str(job);
    }
    body.raw("]}");
    body.into_string()
}

/// The `delivery.<state>` events of recorded outcomes (delivered, failed, unknown), one per job,
/// channel and state: (job, event name, its own fields as JSON text,
/// `"channel":…,"deliveries":[{"code":…,"delivery":…,"recipient":…},…]`).
pub(super) fn outcome_events(changed: &[Changed]) -> Vec<(&str, String, String)> {
    let mut groups: BTreeMap<(&str, &str, State), JsonText> = BTreeMap::new();
    for (id, job, channel, recipient, state, code) in changed {
        if matches!(state, State::Delivered | State::Failed | State::Unknown) {
            let text = groups
                .entry((job.as_str(), channel.as_str(), *state))
                .or_insert_with(|| {
                    let mut t = JsonText::new(64 * changed.len());
                    t.raw("\"channel\":").str(channel).raw(",\"deliveries\":[");
                    t
                });
            text.next()
                .raw("{\"code\":")
                .opt_str(code.as_deref())
                .raw(",\"delivery\":")
                .int(*id)
                .raw(",\"recipient\":")
                .str(recipient)
                .raw("}");
        }
    }
    groups
        .into_iter()
        .map(|((job, _, state), mut fields)| {
            fields.raw("]");
            (
                job,
                format!("delivery.{}", state.as_str()),
                fields.into_string(),
            )
        })
        .collect()
}

/// An event's payload from its own `fields` as JSON text (keys that sort before `event`) and the
/// fields every event carries, in the key order `serde_json` gives every other event.
pub(super) fn event_payload(fields: &str, name: &str, seq: i64, at: &str, job_id: &str) -> String {
    let mut payload = JsonText::new(fields.len() + 128);
    payload
        .raw("{\"at\":")
        .str(at)
        .raw(",")
        .raw(fields)
        .raw(",\"event\":")
        .str(name)
        .raw(",\"job_id\":")
        .str(job_id)
        .raw(",\"seq\":")
        .int(seq)
        .raw("}");
    payload.into_string()
}

/// JSON text written straight into a buffer: the audit entries and events of a recorded batch
/// list every delivery in it, and building them as `serde_json::Value`s first (a map per
/// delivery) was a tenth of a large fan-out.
pub(super) struct JsonText(Vec<u8>);

impl JsonText {
    pub(super) fn new(capacity: usize) -> JsonText {
        JsonText(Vec::with_capacity(capacity))
    }

    pub(super) fn raw(&mut self, s: &str) -> &mut Self {
        self.0.extend_from_slice(s.as_bytes());
        self
    }

    /// Starts the next element of the array being written: a comma unless it is the first.
    pub(super) fn next(&mut self) -> &mut Self {
        if !self.0.ends_with(b"[") {
            self.0.push(b',');
        }
        self
    }

    pub(super) fn str(&mut self, s: &str) -> &mut Self {
        // Writing to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut self.0, s);
        self
    }

    pub(super) fn opt_str(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            Some(s) => self.str(s),
            None => self.raw("null"),
        }
    }

    pub(super) fn int(&mut self, n: i64) -> &mut Self {
        use std::io::Write as _;
        let _ = write!(self.0, "{n}");
        self
    }

    pub(super) fn opt_int(&mut self, n: Option<i64>) -> &mut Self {
        match n {
            Some(n) => self.int(n),
            None => self.raw("null"),
        }
    }

    /// Starts the next element with a recorded outcome's `[id,state,code,detail` (the caller
    /// adds what else it needs, and the closing `]`).
    pub(super) fn outcome(&mut self, r: &Record) -> &mut Self {
        self.next()
            .raw("[")
            .int(r.id)
            .raw(",")
            .str(r.state.as_str())
            .raw(",")
            .opt_str(r.code.as_deref())
            .raw(",")
            .opt_str(r.detail.as_deref())
    }

    pub(super) fn into_string(self) -> String {
        // serde_json and the literals above write UTF-8 only.
        String::from_utf8(self.0).unwrap_or_default()
    }
}
