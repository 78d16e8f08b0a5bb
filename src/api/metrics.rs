//! `GET /metrics`: the Prometheus text exposition format (version 0.0.4), written by hand — a
//! dozen families do not justify a client library.
//!
//! Counters come from [`crate::metrics`] (since the process started). Two gauges are read from
//! the ledger, because only the ledger knows them across restarts and replicas: deliveries per
//! state, and the queue lag per channel — how long the oldest delivery that is due has been
//! waiting (0 when nothing is due). The open states (pending, sending, unknown) and the lag are
//! read at every scrape from the ledger's partial indexes; the finished states need a walk over
//! every delivery ever planned, so that count is taken at most once a minute
//! ([`FINAL_COUNTS_MAX_AGE`]) — every 15 s it held the ledger for a whole table scan.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::Shared;
use crate::clock;
use crate::job::ChannelKind;
use crate::ledger::{Ledger, State as DeliveryState};
use crate::metrics::{LATENCY_BUCKETS, Snapshot, snapshot};

/// How old the count of finished deliveries per state may be when a scrape shows it.
pub const FINAL_COUNTS_MAX_AGE: Duration = Duration::from_secs(60);

/// The last count of finished deliveries per state, and when it was taken.
pub type FinalCounts = Mutex<Option<(Instant, BTreeMap<DeliveryState, u64>)>>;

pub async fn scrape(State(state): State<Shared>) -> Response {
    let channels: Vec<ChannelKind> = state.engine.configured().into_iter().collect();
    let text = tokio::task::spawn_blocking(move || {
        let mut out = String::new();
        render_counters(&mut out, &snapshot());
        render_ledger(
            &mut out,
            state.ledger.as_ref(),
            &state.final_counts,
            &channels,
        )?;
        Ok::<_, crate::ledger::LedgerError>(out)
    })
    .await;
    match text {
        Ok(Ok(text)) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Ok(Err(e)) => super::error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the ledger could not be read: {e}"),
        ),
        Err(e) => super::error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// A label value with `\`, `"` and newlines escaped, as the format requires.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

pub fn render_counters(out: &mut String, m: &Snapshot) {
    family(
        out,
        "disclose_jobs_total",
        "counter",
        "Jobs decided by the intake, by decision.",
    );
    for d in ["accepted", "refused", "duplicate"] {
        let n = m.jobs.get(d).copied().unwrap_or(0);
        let _ = writeln!(out, "disclose_jobs_total{{decision=\"{d}\"}} {n}");
    }
    family(
        out,
        "disclose_job_refusals_total",
        "counter",
        "Reasons of refused jobs, by refusal code (a job refused for three reasons counts three).",
    );
    for (code, n) in &m.refusals {
        let _ = writeln!(
            out,
            "disclose_job_refusals_total{{code=\"{}\"}} {n}",
            label(code)
        );
    }
    family(
        out,
        "disclose_deliveries_total",
        "counter",
        "Delivery outcomes recorded, by channel and outcome.",
    );
    for ((ch, outcome), n) in &m.deliveries {
        let _ = writeln!(
            out,
            "disclose_deliveries_total{{channel=\"{}\",outcome=\"{}\"}} {n}",
            label(ch),
            label(outcome)
        );
    }
    family(
        out,
        "disclose_delivery_retries_total",
        "counter",
        "Deliveries rescheduled after a transient failure, by channel.",
    );
    for (ch, n) in &m.retries {
        let _ = writeln!(
            out,
            "disclose_delivery_retries_total{{channel=\"{}\"}} {n}",
            label(ch)
        );
    }
    family(
        out,
        "disclose_delivery_deferrals_total",
        "counter",
        "Deliveries held back by a recipient's limit (no attempt used), by channel.",
    );
    for (ch, n) in &m.deferrals {
        let _ = writeln!(
            out,
            "disclose_delivery_deferrals_total{{channel=\"{}\"}} {n}",
            label(ch)
        );
    }
    family(
        out,
        "disclose_provider_call_duration_seconds",
        "histogram",
        "Time of each call handing a batch to a channel (or asking its status), by channel.",
    );
    for (ch, h) in &m.latency {
        let ch = label(ch);
        for (le, n) in LATENCY_BUCKETS.iter().zip(h.buckets) {
            let _ = writeln!(
                out,
                "disclose_provider_call_duration_seconds_bucket{{channel=\"{ch}\",le=\"{le}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "disclose_provider_call_duration_seconds_bucket{{channel=\"{ch}\",le=\"+Inf\"}} {}",
            h.count
        );
        let _ = writeln!(
            out,
            "disclose_provider_call_duration_seconds_sum{{channel=\"{ch}\"}} {}",
            h.sum
        );
        let _ = writeln!(
            out,
            "disclose_provider_call_duration_seconds_count{{channel=\"{ch}\"}} {}",
            h.count
        );
    }
    family(
        out,
        "disclose_rate_limit_waits_total",
        "counter",
        "Calls that waited for the channel account's rate limit, by channel.",
    );
    for (ch, (n, _)) in &m.rate_limit_waits {
        let _ = writeln!(
            out,
            "disclose_rate_limit_waits_total{{channel=\"{}\"}} {n}",
            label(ch)
        );
    }
    family(
        out,
        "disclose_rate_limit_wait_seconds_total",
        "counter",
        "Seconds spent waiting for the channel account's rate limit, by channel.",
    );
    for (ch, (_, secs)) in &m.rate_limit_waits {
        let _ = writeln!(
            out,
            "disclose_rate_limit_wait_seconds_total{{channel=\"{}\"}} {secs}",
            label(ch)
        );
    }
}

/// Deliveries per state: the open ones counted now, the finished ones as counted at most
/// [`FINAL_COUNTS_MAX_AGE`] ago.
fn state_counts(
    ledger: &dyn Ledger,
    cache: &FinalCounts,
) -> Result<BTreeMap<DeliveryState, u64>, crate::ledger::LedgerError> {
    let mut cached = cache.lock().unwrap_or_else(|e| e.into_inner());
    let mut counts = match &*cached {
        Some((at, finished)) if at.elapsed() < FINAL_COUNTS_MAX_AGE => finished.clone(),
        _ => {
            let mut finished = ledger.counts(&[])?;
            finished.retain(|s, _| s.is_final());
            *cached = Some((Instant::now(), finished.clone()));
            finished
        }
    };
    counts.extend(ledger.open_counts()?);
    Ok(counts)
}

fn render_ledger(
    out: &mut String,
    ledger: &dyn Ledger,
    cache: &FinalCounts,
    channels: &[ChannelKind],
) -> Result<(), crate::ledger::LedgerError> {
    let counts = state_counts(ledger, cache)?;
    family(
        out,
        "disclose_ledger_deliveries",
        "gauge",
        "Deliveries in the ledger, by state (the finished states as counted up to a minute ago).",
    );
    for s in DeliveryState::ALL {
        let n = counts.get(&s).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "disclose_ledger_deliveries{{state=\"{}\"}} {n}",
            s.as_str()
        );
    }
    family(
        out,
        "disclose_queue_lag_seconds",
        "gauge",
        "How long the oldest due delivery of a channel has been waiting (0: nothing due).",
    );
    let now = clock::now().timestamp_millis();
    for ch in channels {
        let lag = ledger
            .next_due(*ch)?
            .map_or(0.0, |due| (now - due).max(0) as f64 / 1000.0);
        let _ = writeln!(
            out,
            "disclose_queue_lag_seconds{{channel=\"{}\"}} {lag}",
            ch.as_str()
        );
    }
    Ok(())
}
