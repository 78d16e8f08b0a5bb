//! `disclose config check`: everything the configuration names, checked at once — the ledger,
//! the trusted approval keys, the policy, the templates, every channel (its file, and opening
//! its transport: credentials present in the environment, fonts readable, endpoints well
//! formed), the obligations, the calendar, the queue (the broker reachable, or the spool
//! directory writable) and the output directory. Every problem is reported, not just the first,
//! and nothing is sent or changed (the ledger is opened, which creates it if missing).

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::app::Parts;
use crate::config::Config;

/// One line of the check: what was looked at, and what was found.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub area: String,
    pub ok: bool,
    pub detail: String,
}

fn found(out: &mut Vec<Finding>, area: &str, result: Result<String, String>) {
    let (ok, detail) = match result {
        Ok(d) => (true, d),
        Err(d) => (false, d),
    };
    out.push(Finding {
        area: area.to_string(),
        ok,
        detail,
    });
}

/// Check everything; the findings in a fixed order.
pub fn check(config: &Config) -> Vec<Finding> {
    let mut out = Vec::new();
    let parts = Parts::open(config);
    found(
        &mut out,
        "ledger",
        parts
            .ledger
            .map(|_| crate::ledger::redact_url(&config.ledger.url)),
    );
    found(
        &mut out,
        "approval keys",
        parts.keys.and_then(|k| {
            let ids: Vec<&str> = k.key_ids().collect();
            if ids.is_empty() {
                Err(format!(
                    "{}: no <key_id>.pub files: no job could be approved",
                    config.approval.keys_dir.display()
                ))
            } else {
                Ok(format!("{} trusted ({})", ids.len(), ids.join(", ")))
            }
        }),
    );
    let channels_dir = &config.paths.channels_dir;
    found(
        &mut out,
        "policy",
        parts.policy.map(|p| match p {
            Some(_) => channels_dir.join("policy.toml").display().to_string(),
            None => "built-in defaults (SPEC's channel matrix)".into(),
        }),
    );
    found(
        &mut out,
        "templates",
        parts.templates.map(|t| {
            format!(
                "{} notices in {}",
                t.names().len(),
                config.paths.templates_dir.display()
            )
        }),
    );
    match parts.channels {
        Err(problems) => {
            for p in problems {
                found(&mut out, "channels", Err(p));
            }
        }
        Ok(channels) => {
            for (cfg, built) in channels {
                let transport = match &cfg.failover {
                    Some(f) => format!(
                        "{} (failover: {})",
                        cfg.transport.name(),
                        f.transport.name()
                    ),
                    None => cfg.transport.name().to_string(),
                };
                let area = format!("channel {}", cfg.channel);
                found(&mut out, &area, built.map(|_| transport));
            }
        }
    }
    let obligations = channels_dir.join("obligations.toml");
    if obligations.exists() {
        found(
            &mut out,
            "obligations",
            crate::obligations::Obligations::load(channels_dir)
                .map(|_| obligations.display().to_string())
                .map_err(|e| e.to_string()),
        );
    }
    let calendar = crate::calendar::WorkCalendar::embedded().with_overrides(&config.calendar);
    let years = calendar.known_years();
    found(
        &mut out,
        "calendar",
        match (years.first(), years.last()) {
            (Some(a), Some(b)) => Ok(format!(
                "working days known for {a}–{b}; dates outside are refused until [calendar] adds them"
            )),
            _ => Err("no year has calendar data".into()),
        },
    );
    match &config.queue.amqp_url {
        Some(url) => found(&mut out, "queue", broker_reachable(url)),
        None => found(
            &mut out,
            "queue",
            writable(&config.queue.spool_dir).map(|d| format!("spool directory {d}")),
        ),
    }
    found(
        &mut out,
        "output",
        writable(&config.paths.output_dir).map(|d| format!("output directory {d}")),
    );
    out
}

/// The directory exists (or can be made) and a file can be written in it.
fn writable(dir: &Path) -> Result<String, String> {
    let shown = dir.display().to_string();
    std::fs::create_dir_all(dir).map_err(|e| format!("{shown}: cannot be created: {e}"))?;
    let probe = dir.join(format!(".disclose-check-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|e| format!("{shown}: cannot be written: {e}"))?;
    let _ = std::fs::remove_file(&probe);
    Ok(shown)
}

/// Connect to the broker and close again, within a few seconds. The URL's password is never shown.
fn broker_reachable(url: &str) -> Result<String, String> {
    let shown = without_password(url);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        match tokio::time::timeout(
            Duration::from_secs(5),
            crate::intake::amqp::connect(url, "disclose config check"),
        )
        .await
        {
            Ok(Ok(conn)) => {
                let _ = conn.close(200, "checked".into()).await;
                Ok(format!("RabbitMQ at {shown} reachable"))
            }
            Ok(Err(e)) => Err(format!("RabbitMQ at {shown}: {e}")),
            Err(_) => Err(format!("RabbitMQ at {shown}: no answer within 5 s")),
        }
    })
}

fn without_password(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_passwords_are_not_shown() {
        assert_eq!(
            without_password("amqp://guest:s3cret@127.0.0.1:5672/%2f"),
            "amqp://guest:***@127.0.0.1:5672/%2f"
        );
        assert_eq!(without_password("amqp://127.0.0.1"), "amqp://127.0.0.1");
    }
}
