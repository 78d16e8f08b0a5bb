//! JSON text as both ledgers write it for a recorded batch: the audit entry's body and the
//! `delivery.<state>` events, one writer for both (upstream systems read them from either; the
//! shared ledger tests check their fields, and that each is compact JSON in key order, on both).

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::{Record, State};

/// A delivery whose state a transaction changed: id, job_id, channel, recipient, new state, code.
pub(super) type Changed = (i64, String, String, String, State, Option<String>);

/// A delivery as a `deliveries.recorded` audit entry lists it: id, state, code, detail.
pub(super) type Listed<'a> = (i64, State, Option<&'a str>, Option<&'a str>);

/// The body of a `deliveries.recorded` audit entry:
/// `{"deliveries":[[id,state,code,detail],…],"jobs":[…]}`, deliveries in the order given. The
/// code of a delivered message is the provider's reference (Tencent's `SerialNo`, …), of a
/// failed one the reason, and the detail says what went wrong: the chain holds what went where,
/// and the SQLite ledger's claim journal writes final outcomes into the deliveries from it
/// (src/ledger/sqlite/journal.rs).
pub(super) fn recorded_body(entries: &[Listed<'_>], jobs: &[&str]) -> String {
    let mut body = JsonText::new(entries.len() * 64 + 64);
    body.raw("{\"deliveries\":[");
    for &(id, state, code, detail) in entries {
        body.listed(id, state, code, detail).raw("]");
    }
    body.raw("],\"jobs\":[");
    for job in jobs {
        body.next().str(job);
    }
    body.raw("]}");
    body.into_string()
}

/// An outcome as a `deliveries.recorded` audit entry lists it, read back:
/// `[id, state, code, detail]` (entries written before the detail have three), its text
/// borrowed where it has no escapes.
#[derive(serde::Deserialize)]
pub(super) struct ListedOutcome<'a>(
    pub i64,
    #[serde(borrow)] pub Cow<'a, str>,
    #[serde(borrow)] pub Option<Cow<'a, str>>,
    #[serde(borrow, default)] pub Option<Cow<'a, str>>,
);

/// What is read back of a `deliveries.recorded` audit entry: the outcomes it lists.
#[derive(serde::Deserialize)]
pub(super) struct RecordedBody<'a> {
    #[serde(borrow)]
    pub deliveries: Vec<ListedOutcome<'a>>,
}

/// The `delivery.<state>` events of recorded outcomes (delivered, failed, unknown), one per job,
/// channel and state: (job, event name, its own fields as JSON text, see [`OutcomeFields`]).
pub(super) fn outcome_events(changed: &[Changed]) -> Vec<(&str, String, String)> {
    let mut groups: BTreeMap<(&str, &str, State), OutcomeFields> = BTreeMap::new();
    for (id, job, channel, recipient, state, code) in changed {
        if has_event(*state) {
            groups
                .entry((job.as_str(), channel.as_str(), *state))
                .or_insert_with(|| OutcomeFields::new(channel, changed.len()))
                .push(*id, code.as_deref(), recipient);
        }
    }
    groups
        .into_iter()
        .map(|((job, _, state), fields)| (job, event_name(state), fields.finish()))
        .collect()
}

/// Whether an outcome in this state is announced by a `delivery.<state>` event: delivered,
/// failed and unknown (a retry later is not an outcome yet).
pub(super) fn has_event(state: State) -> bool {
    matches!(state, State::Delivered | State::Failed | State::Unknown)
}

/// `delivery.<state>`.
pub(super) fn event_name(state: State) -> String {
    format!("delivery.{}", state.as_str())
}

/// A `delivery.<state>` event's own fields as JSON text:
/// `"channel":…,"deliveries":[{"code":…,"delivery":…,"recipient":…},…]`, deliveries in the order
/// pushed.
pub(super) struct OutcomeFields(JsonText);

impl OutcomeFields {
    pub(super) fn new(channel: &str, deliveries: usize) -> OutcomeFields {
        let mut t = JsonText::new(64 * deliveries + 64);
        t.raw("\"channel\":").str(channel).raw(",\"deliveries\":[");
        OutcomeFields(t)
    }

    pub(super) fn push(&mut self, id: i64, code: Option<&str>, recipient: &str) {
        self.0
            .next()
            .raw("{\"code\":")
            .opt_str(code)
            .raw(",\"delivery\":")
            .int(id)
            .raw(",\"recipient\":")
            .str(recipient)
            .raw("}");
    }

    pub(super) fn finish(mut self) -> String {
        self.0.raw("]");
        self.0.into_string()
    }
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

/// Whether JSON text must escape this byte of a string (serde_json escapes exactly these: the
/// quote, the backslash and the control characters).
fn needs_escape(b: u8) -> bool {
    b == b'"' || b == b'\\' || b < 0x20
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
        if s.bytes().any(needs_escape) {
            // Writing to a Vec cannot fail.
            let _ = serde_json::to_writer(&mut self.0, s);
        } else {
            // What serde_json writes for text with nothing to escape (providers' references,
            // job ids, codes: most of what a batch lists), without its byte-by-byte escaping,
            // which was a tenth of recording a batch.
            self.0.reserve(s.len() + 2);
            self.0.push(b'"');
            self.0.extend_from_slice(s.as_bytes());
            self.0.push(b'"');
        }
        self
    }

    pub(super) fn opt_str(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            Some(s) => self.str(s),
            None => self.raw("null"),
        }
    }

    pub(super) fn int(&mut self, n: i64) -> &mut Self {
        self.0
            .extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
        self
    }

    pub(super) fn opt_int(&mut self, n: Option<i64>) -> &mut Self {
        match n {
            Some(n) => self.int(n),
            None => self.raw("null"),
        }
    }

    /// Starts the next element with an outcome's `[id,state,code,detail` (the caller adds what
    /// else it needs, and the closing `]`): as the audit entry lists it, and the journal and the
    /// row-by-row path pass it to SQLite.
    pub(super) fn listed(
        &mut self,
        id: i64,
        state: State,
        code: Option<&str>,
        detail: Option<&str>,
    ) -> &mut Self {
        self.next()
            .raw("[")
            .int(id)
            .raw(",\"")
            .raw(state.as_str())
            .raw("\",")
            .opt_str(code)
            .raw(",")
            .opt_str(detail)
    }

    /// [`JsonText::listed`] of a recorded outcome.
    pub(super) fn outcome(&mut self, r: &Record) -> &mut Self {
        self.listed(r.id, r.state, r.code.as_deref(), r.detail.as_deref())
    }

    pub(super) fn into_string(self) -> String {
        // serde_json and the literals above write UTF-8 only.
        String::from_utf8(self.0).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_numbers_are_written_as_serde_json_writes_them() {
        let mut rng = fastrand::Rng::with_seed(9704);
        let alphabet = [
            'a', 'Z', '0', ':', '"', '\\', '\n', '\u{1}', '\u{1f}', '\u{7f}', '公', '😀', ' ',
        ];
        for _ in 0..5_000 {
            let len = rng.usize(0..12);
            let s: String = (0..len)
                .map(|_| alphabet[rng.usize(..alphabet.len())])
                .collect();
            let n = match rng.u8(..4) {
                0 => i64::MIN,
                1 => i64::MAX,
                _ => rng.i64(..) >> rng.u32(0..63),
            };
            let mut t = JsonText::new(0);
            t.raw("[").str(&s).raw(",").int(n).raw("]");
            assert_eq!(
                t.into_string(),
                serde_json::json!([s, n]).to_string(),
                "{s:?} {n}"
            );
        }
    }

    #[test]
    fn a_listed_outcome_is_compact_json_of_its_four_fields() {
        let mut t = JsonText::new(0);
        t.raw("[")
            .listed(7, State::Delivered, Some("2433:\"x\""), None)
            .raw("]")
            .listed(-1, State::Failed, None, Some("a\nb"))
            .raw("]]");
        assert_eq!(
            t.into_string(),
            serde_json::json!([
                [7, "delivered", "2433:\"x\"", null],
                [-1, "failed", null, "a\nb"]
            ])
            .to_string()
        );
    }
}
