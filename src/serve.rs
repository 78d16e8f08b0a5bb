//! `disclose serve`: the long-running service. One process holds
//!
//! - the intake: RabbitMQ ([`crate::intake::amqp`]) when `[queue] amqp_url` is set, else the
//!   spool directory ([`crate::intake::spool`]) — either way a job is acknowledged only after
//!   its decision and planned deliveries are committed;
//! - the delivery workers and the scheduler ([`crate::deliver::Engine::run`]): one lane per
//!   channel, deliveries due later wait in the ledger;
//! - the events publisher ([`crate::events`]) draining the ledger's outbox to RabbitMQ;
//! - when `[serve] http_addr` is set, the HTTP API, console and metrics ([`crate::api`]).
//!
//! SIGTERM or SIGINT stops the intake first, lets the workers finish the batch in hand, and
//! exits 0 within `[serve] grace_secs`. Nothing accepted is lost by stopping at any point:
//! the ledger holds it, and the next start resumes.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Notify;

use crate::app::App;
use crate::shutdown;

pub async fn serve(app: App) -> anyhow::Result<()> {
    let (trigger, shutdown) = shutdown::channel();
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let wake = Arc::new(Notify::new());
    let listener = match &app.config.serve.http_addr {
        Some(addr) => Some(crate::api::bind(addr).await?),
        None => None,
    };
    let queue = app.config.queue.clone();
    if let Some(at) = crate::clock::set_to() {
        tracing::warn!(%at, "the clock was set by {}: this is a drill, not the real time", crate::clock::CLOCK_ENV);
    }

    let workers = tokio::spawn(app.engine.clone().run(shutdown.clone(), wake.clone()));
    let mut intake = match &queue.amqp_url {
        Some(_) => {
            tracing::info!(queue = %queue.jobs_queue, "serving: intake from RabbitMQ");
            tokio::spawn(crate::intake::amqp::run(
                app.intake.clone(),
                queue.clone(),
                wake.clone(),
                shutdown.clone(),
            ))
        }
        None => {
            tracing::info!(dir = %queue.spool_dir.display(), "serving: intake from the spool directory");
            tokio::spawn(crate::intake::spool::run(
                app.intake.clone(),
                queue.spool_dir.clone(),
                wake.clone(),
                shutdown.clone(),
            ))
        }
    };
    let events = queue.amqp_url.is_some().then(|| {
        tokio::spawn(crate::events::run(
            app.ledger.clone(),
            queue.clone(),
            shutdown.clone(),
        ))
    });

    let http = listener.map(|listener| {
        let state = Arc::new(crate::api::ApiState::new(&app, wake.clone()));
        tokio::spawn(crate::api::run(state, listener, shutdown.clone()))
    });

    let trim = tokio::spawn(async {
        let mut every = tokio::time::interval(crate::memory::TRIM_EVERY);
        every.tick().await;
        loop {
            every.tick().await;
            let _ = tokio::task::spawn_blocking(crate::memory::trim).await;
        }
    });

    let mut failure = None;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: stopping intake, finishing work in hand"),
        _ = int.recv() => tracing::info!("SIGINT: stopping intake, finishing work in hand"),
        res = &mut intake => {
            let e = match res {
                Ok(Ok(())) => anyhow::anyhow!("the intake stopped unexpectedly"),
                Ok(Err(e)) => e,
                Err(e) => anyhow::anyhow!("the intake task failed: {e}"),
            };
            tracing::error!(error = %format!("{e:#}"), "intake failed; shutting down");
            failure = Some(e);
        }
    }
    trigger.fire();
    trim.abort();

    let grace = Duration::from_secs(app.config.serve.grace_secs);
    let finish = async {
        if !intake.is_finished() {
            match intake.await {
                Ok(Err(e)) => {
                    tracing::warn!(error = %format!("{e:#}"), "intake ended with an error")
                }
                Err(e) => tracing::warn!(error = %e, "intake task failed"),
                Ok(Ok(())) => {}
            }
        }
        let _ = workers.await;
        if let Some(http) = http
            && let Ok(Err(e)) = http.await
        {
            tracing::warn!(error = %format!("{e:#}"), "HTTP API ended with an error");
        }
        if let Some(events) = events
            && let Ok(Err(e)) = events.await
        {
            tracing::warn!(error = %format!("{e:#}"), "events publisher ended with an error");
        }
    };
    if tokio::time::timeout(grace, finish).await.is_err() {
        tracing::warn!(
            grace_secs = grace.as_secs(),
            "grace period over; deliveries still in flight stay in the ledger and are resolved at the next start"
        );
    } else {
        tracing::info!("stopped cleanly");
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
