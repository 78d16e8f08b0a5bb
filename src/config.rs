//! Configuration (SPEC §6): one TOML file (`--config PATH`; `./disclose.toml` when present;
//! otherwise built-in defaults that need no services), every key overridable from the
//! environment as `DISCLOSE_<SECTION>_<KEY>` (e.g. `DISCLOSE_LEDGER_URL`). Secrets never live
//! here: they come from the environment, named by the channel files that need them.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::calendar::CalendarOverrides;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot be read: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LedgerSection {
    /// A file path or `sqlite://PATH` (default `var/ledger.db`), or `postgres://…` (see README).
    pub url: String,
}

impl Default for LedgerSection {
    fn default() -> Self {
        LedgerSection {
            url: "var/ledger.db".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApprovalSection {
    /// Trusted approval keys: files `<key_id>.pub` holding the base64 of the raw 32-byte key.
    pub keys_dir: PathBuf,
}

impl Default for ApprovalSection {
    fn default() -> Self {
        ApprovalSection {
            keys_dir: "keys".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueSection {
    /// Unset: the spool directory is the queue.
    pub amqp_url: Option<String>,
    pub spool_dir: PathBuf,
    /// Where the approval system publishes jobs.
    pub jobs_exchange: String,
    /// A durable quorum queue.
    pub jobs_queue: String,
    /// Refused jobs and jobs past the delivery limit end here.
    pub dead_letter_exchange: String,
    pub dead_letter_queue: String,
    /// A topic exchange; routing key = event name.
    pub events_exchange: String,
    /// Unacknowledged job messages a consumer may hold. Jobs are acknowledged a batch (of up to
    /// 256) at a time, after their commit: with room for several batches the broker keeps
    /// sending while one is decided and another committed (50,000 jobs: at 64, one batch at a
    /// time, 29–40% of the broker's raw rate; at 512, 51–52%; at 1,024, 53–61%: BENCHMARKS.md).
    pub prefetch: u16,
    /// Deliveries of one message before the broker dead-letters it (set explicitly: RabbitMQ
    /// 3.x has no default, 4.x defaults to 20).
    pub delivery_limit: u32,
}

impl QueueSection {
    /// The environment that gives a `disclose` process this section (`DISCLOSE_QUEUE_*`, the
    /// overrides of [`Config::load`]), for the programs and tests that start `serve` on queues
    /// of their own.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            (
                "DISCLOSE_QUEUE_SPOOL_DIR",
                self.spool_dir.display().to_string(),
            ),
            ("DISCLOSE_QUEUE_JOBS_EXCHANGE", self.jobs_exchange.clone()),
            ("DISCLOSE_QUEUE_JOBS_QUEUE", self.jobs_queue.clone()),
            (
                "DISCLOSE_QUEUE_DEAD_LETTER_EXCHANGE",
                self.dead_letter_exchange.clone(),
            ),
            (
                "DISCLOSE_QUEUE_DEAD_LETTER_QUEUE",
                self.dead_letter_queue.clone(),
            ),
            (
                "DISCLOSE_QUEUE_EVENTS_EXCHANGE",
                self.events_exchange.clone(),
            ),
            ("DISCLOSE_QUEUE_PREFETCH", self.prefetch.to_string()),
            (
                "DISCLOSE_QUEUE_DELIVERY_LIMIT",
                self.delivery_limit.to_string(),
            ),
        ];
        if let Some(url) = &self.amqp_url {
            env.push(("DISCLOSE_QUEUE_AMQP_URL", url.clone()));
        }
        env
    }
}

impl Default for QueueSection {
    fn default() -> Self {
        QueueSection {
            amqp_url: None,
            spool_dir: "var/spool".into(),
            jobs_exchange: "disclose.jobs".into(),
            jobs_queue: "disclose.jobs".into(),
            dead_letter_exchange: "disclose.dlx".into(),
            dead_letter_queue: "disclose.jobs.dead".into(),
            events_exchange: "disclose.events".into(),
            prefetch: 1024,
            delivery_limit: 5,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeSection {
    /// After SIGTERM/SIGINT: how long in-flight work may take before the process exits anyway
    /// (what is cut off stays in the ledger and resumes at the next start).
    pub grace_secs: u64,
    /// Where the HTTP API, the console and `/metrics` listen (e.g. `127.0.0.1:8080`). Unset
    /// (the default): no HTTP server, so the embedded defaults never occupy a port and two
    /// services on one machine never fight over one. Bind to loopback unless a reverse proxy
    /// with TLS stands in front: the API carries personal data (masked) and bearer tokens.
    pub http_addr: Option<String>,
    /// The environment variable holding the API's bearer token. The token itself never lives in
    /// this file (STYLE: secrets only from the environment). Unset or empty variable: the API
    /// answers only `/healthz` and refuses the rest with 503 and this variable's name.
    pub api_token_env: String,
}

impl Default for ServeSection {
    fn default() -> Self {
        ServeSection {
            grace_secs: 30,
            http_addr: None,
            api_token_env: "DISCLOSE_API_TOKEN".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PathsSection {
    /// One TOML per channel instance, plus `policy.toml`. Missing: built-in defaults.
    pub channels_dir: PathBuf,
    pub templates_dir: PathBuf,
    /// Parent of file outputs (site, outbox) unless a channel names its own directory.
    pub output_dir: PathBuf,
}

impl Default for PathsSection {
    fn default() -> Self {
        PathsSection {
            channels_dir: "channels".into(),
            templates_dir: "templates".into(),
            output_dir: "var".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineSection {
    /// How long a claimed delivery may stay `sending` before it is presumed lost (`unknown`).
    pub lease_secs: u64,
}

impl Default for EngineSection {
    fn default() -> Self {
        EngineSection { lease_secs: 120 }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub ledger: LedgerSection,
    pub approval: ApprovalSection,
    pub queue: QueueSection,
    pub paths: PathsSection,
    pub engine: EngineSection,
    pub serve: ServeSection,
    /// Holidays and adjusted working days for years the built-in calendar does not know.
    pub calendar: CalendarOverrides,
}

/// Keys that the environment may override, with whether the value is a number.
const ENV_KEYS: &[(&str, &str, bool)] = &[
    ("ledger", "url", false),
    ("approval", "keys_dir", false),
    ("queue", "amqp_url", false),
    ("queue", "spool_dir", false),
    ("queue", "jobs_exchange", false),
    ("queue", "jobs_queue", false),
    ("queue", "dead_letter_exchange", false),
    ("queue", "dead_letter_queue", false),
    ("queue", "events_exchange", false),
    ("queue", "prefetch", true),
    ("queue", "delivery_limit", true),
    ("serve", "grace_secs", true),
    ("serve", "http_addr", false),
    ("serve", "api_token_env", false),
    ("paths", "channels_dir", false),
    ("paths", "templates_dir", false),
    ("paths", "output_dir", false),
    ("engine", "lease_secs", true),
];

impl Config {
    /// Load `path`, or `./disclose.toml` when present, or the defaults; then the environment.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let default_path = Path::new("disclose.toml");
        let (text, shown) = match path {
            Some(p) => (read(p)?, p.display().to_string()),
            None if default_path.exists() => {
                (read(default_path)?, default_path.display().to_string())
            }
            None => (String::new(), "(built-in defaults)".to_string()),
        };
        Self::from_toml(&text, &shown, |k| std::env::var(k).ok())
    }

    /// Parse TOML text and apply overrides from `env` (a lookup, so tests need not touch the process environment).
    pub fn from_toml(
        text: &str,
        shown: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut table: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Invalid {
            path: shown.into(),
            message: e.to_string().trim().into(),
        })?;
        for &(section, key, numeric) in ENV_KEYS {
            let var = format!("DISCLOSE_{}_{}", section.to_uppercase(), key.to_uppercase());
            let Some(value) = env(&var) else { continue };
            let value = if numeric {
                toml::Value::Integer(value.trim().parse().map_err(|_| ConfigError::Env {
                    var: var.clone(),
                    message: format!("{value:?} is not a whole number"),
                })?)
            } else {
                toml::Value::String(value)
            };
            let entry = table
                .entry(section)
                .or_insert_with(|| toml::Value::Table(Default::default()));
            match entry.as_table_mut() {
                Some(t) => {
                    t.insert(key.into(), value);
                }
                None => {
                    return Err(ConfigError::Invalid {
                        path: shown.into(),
                        message: format!("[{section}] must be a table"),
                    });
                }
            }
        }
        Config::deserialize(toml::Value::Table(table)).map_err(|e| ConfigError::Invalid {
            path: shown.into(),
            message: e.to_string().trim().into(),
        })
    }
}

fn read(p: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(p).map_err(|source| ConfigError::Io {
        path: p.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `env()` writes, the configuration reads back: a program that starts `serve` with
    /// it gets exactly its queue section.
    #[test]
    fn queue_env_round_trips_through_the_overrides() {
        let q = QueueSection {
            amqp_url: Some("amqp://guest:guest@127.0.0.1:5672/%2f".into()),
            spool_dir: "/tmp/spool-x".into(),
            jobs_exchange: "x.jobs".into(),
            jobs_queue: "x.q".into(),
            dead_letter_exchange: "x.dlx".into(),
            dead_letter_queue: "x.dead".into(),
            events_exchange: "x.events".into(),
            prefetch: 7,
            delivery_limit: 3,
        };
        let env: std::collections::HashMap<&str, String> = q.env().into_iter().collect();
        let c = Config::from_toml("", "test", |k| env.get(k).cloned()).unwrap();
        assert_eq!(format!("{:?}", c.queue), format!("{q:?}"));
        assert!(
            !QueueSection::default()
                .env()
                .iter()
                .any(|(k, _)| *k == "DISCLOSE_QUEUE_AMQP_URL")
        );
    }

    #[test]
    fn defaults_need_no_services() {
        let c = Config::from_toml("", "t", |_| None).unwrap();
        assert_eq!(c.ledger.url, "var/ledger.db");
        assert!(c.queue.amqp_url.is_none());
        assert!(c.serve.http_addr.is_none());
        assert_eq!(c.serve.api_token_env, "DISCLOSE_API_TOKEN");
    }

    #[test]
    fn the_http_address_comes_from_the_environment() {
        let c = Config::from_toml("", "t", |k| {
            (k == "DISCLOSE_SERVE_HTTP_ADDR").then(|| "127.0.0.1:0".into())
        })
        .unwrap();
        assert_eq!(c.serve.http_addr.as_deref(), Some("127.0.0.1:0"));
    }

    #[test]
    fn the_environment_overrides_the_file() {
        let c = Config::from_toml("[ledger]\nurl = \"a.db\"\n", "t", |k| match k {
            "DISCLOSE_LEDGER_URL" => Some("b.db".into()),
            "DISCLOSE_ENGINE_LEASE_SECS" => Some("30".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.ledger.url, "b.db");
        assert_eq!(c.engine.lease_secs, 30);
        let e = Config::from_toml("", "t", |k| {
            (k == "DISCLOSE_ENGINE_LEASE_SECS").then(|| "soon".into())
        })
        .unwrap_err();
        assert!(e.to_string().contains("DISCLOSE_ENGINE_LEASE_SECS"), "{e}");
    }

    #[test]
    fn unknown_keys_are_refused_with_the_file_named() {
        let e = Config::from_toml(
            "[ledger]\nurl = \"a\"\npasword = \"x\"\n",
            "disclose.toml",
            |_| None,
        )
        .unwrap_err();
        assert!(
            e.to_string().starts_with("disclose.toml") && e.to_string().contains("pasword"),
            "{e}"
        );
    }
}
