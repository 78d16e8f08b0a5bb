//! `GET /metrics`: the Prometheus text exposition format (version 0.0.4), written by hand — a
//! dozen families do not justify a client library.
//!
//! Counters come from [`crate::metrics`] (since the process started). Two gauges are read from
//! the ledger at scrape time, because only the ledger knows them across restarts and replicas:
//! deliveries per state, and the queue lag per channel — how long the oldest delivery that is
//! due has been waiting (0 when nothing is due).

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::Shared;
use crate::clock;
use crate::job::ChannelKind;
use crate::ledger::{Ledger, State as DeliveryState};
use crate::metrics::{LATENCY_BUCKETS, Snapshot, snapshot};

pub async fn scrape(State(state): State<Shared>) -> Response {
    let ledger = state.ledger.clone();
    let channels: Vec<ChannelKind> = state.engine.configured().into_iter().collect();
    let text = tokio::task::spawn_blocking(move || {
        let mut out = String::new();
        render_counters(&mut out, &snapshot());
        render_ledger(&mut out, ledger.as_ref(), &channels)?;
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

fn render_ledger(
    out: &mut String,
    ledger: &dyn Ledger,
    channels: &[ChannelKind],
) -> Result<(), crate::ledger::LedgerError> {
    let counts = ledger.counts(&[])?;
    family(
        out,
        "disclose_ledger_deliveries",
        "gauge",
        "Deliveries in the ledger, by state.",
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
