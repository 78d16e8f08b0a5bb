//! Process-wide counters for `GET /metrics` (Prometheus text format, written by hand in
//! [`crate::api`]). A leaf module: the intake and the engine only add to it, nothing here calls
//! back into them. Counters start at zero with the process, as Prometheus expects; what the
//! ledger holds (deliveries per state, queue lag) is read at scrape time instead.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::intake::{DecisionKind, Verdict};
use crate::job::ChannelKind;
use crate::ledger::{Record, State};

/// Upper bounds (seconds) of the provider latency histogram: a file write takes milliseconds, an
/// SMS API call tens to hundreds, a provider timing out tens of seconds.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Debug, Clone, Default)]
pub struct Histogram {
    /// Cumulative counts per bound of [`LATENCY_BUCKETS`] (Prometheus `le` semantics).
    pub buckets: [u64; LATENCY_BUCKETS.len()],
    pub count: u64,
    pub sum: f64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        for (b, le) in self.buckets.iter_mut().zip(LATENCY_BUCKETS) {
            if secs <= le {
                *b += 1;
            }
        }
        self.count += 1;
        self.sum += secs;
    }
}

/// A copy of every counter, for rendering.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// decision (`accepted`, `refused`, `duplicate`) → jobs.
    pub jobs: BTreeMap<String, u64>,
    /// refusal code → refusals (a refused job with three reasons counts three).
    pub refusals: BTreeMap<String, u64>,
    /// (channel, outcome state) → deliveries recorded.
    pub deliveries: BTreeMap<(String, String), u64>,
    /// channel → deliveries rescheduled after a transient failure.
    pub retries: BTreeMap<String, u64>,
    /// channel → deliveries held back by a recipient's limit (not an attempt).
    pub deferrals: BTreeMap<String, u64>,
    /// channel → provider calls (`deliver` and status queries), timed.
    pub latency: BTreeMap<String, Histogram>,
    /// channel → (waits for the account's rate limit, seconds waited).
    pub rate_limit_waits: BTreeMap<String, (u64, f64)>,
}

static METRICS: Mutex<Option<Snapshot>> = Mutex::new(None);

fn with(f: impl FnOnce(&mut Snapshot)) {
    let mut m = METRICS.lock().unwrap_or_else(|e| e.into_inner());
    f(m.get_or_insert_with(Snapshot::default));
}

pub fn snapshot() -> Snapshot {
    METRICS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .unwrap_or_default()
}

/// The intake recorded these decisions.
pub fn decided(verdicts: &[Verdict]) {
    with(|m| {
        for v in verdicts {
            let d = match v.decision {
                DecisionKind::Accepted => "accepted",
                DecisionKind::Refused => "refused",
                DecisionKind::Duplicate => "duplicate",
            };
            *m.jobs.entry(d.into()).or_default() += 1;
            for r in &v.refusals {
                *m.refusals.entry(r.code.as_str().into()).or_default() += 1;
            }
        }
    });
}

/// The engine recorded these outcomes of one channel's claim.
pub fn recorded(channel: ChannelKind, records: &[Record]) {
    // Counted here first: a batch is a thousand records of two or three kinds.
    let mut counts: Vec<((State, bool), u64)> = Vec::new();
    for r in records {
        let kind = (r.state, r.state == State::Pending && r.deferred);
        match counts.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => counts.push((kind, 1)),
        }
    }
    with(|m| {
        for ((state, deferred), n) in counts {
            let ch = channel.as_str().to_string();
            match (state, deferred) {
                (State::Pending, true) => *m.deferrals.entry(ch).or_default() += n,
                (State::Pending, false) => *m.retries.entry(ch).or_default() += n,
                (state, _) => *m.deliveries.entry((ch, state.as_str().into())).or_default() += n,
            }
        }
    });
}

/// One call to a channel's provider (a batch handed over, or a status query) took `took`.
pub fn provider_call(channel: ChannelKind, took: Duration) {
    with(|m| {
        m.latency
            .entry(channel.as_str().into())
            .or_default()
            .observe(took.as_secs_f64())
    });
}

/// A call waited `waited` for the channel account's rate limit (`calls_per_second`); a wait
/// under a millisecond is no wait.
pub fn rate_limit_wait(channel: ChannelKind, waited: Duration) {
    if waited < Duration::from_millis(1) {
        return;
    }
    with(|m| {
        let e = m
            .rate_limit_waits
            .entry(channel.as_str().into())
            .or_default();
        e.0 += 1;
        e.1 += waited.as_secs_f64();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_histogram_is_cumulative() {
        let mut h = Histogram::default();
        h.observe(0.003);
        h.observe(0.2);
        h.observe(100.0);
        assert_eq!(h.buckets[0], 1); // ≤ 5 ms
        assert_eq!(h.buckets[5], 2); // ≤ 250 ms
        assert_eq!(h.buckets[11], 2); // ≤ 30 s: the 100 s call only in +Inf (count)
        assert_eq!(h.count, 3);
        assert!((h.sum - 100.203).abs() < 1e-9);
    }
}
