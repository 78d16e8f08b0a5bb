//! Wiring: configuration in, a running dispatcher out. Everything that can be wrong with the
//! set-up (ledger, keys, policy, templates, channels) is found here, at start-up, and reported
//! all at once — after this, nothing fails on configuration.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow};

use crate::approval::KeyStore;
use crate::calendar::WorkCalendar;
use crate::channels::{self, Channel, ChannelConfig};
use crate::config::Config;
use crate::deliver::Engine;
use crate::intake::Intake;
use crate::ledger::{self, Ledger};
use crate::policy::PolicyConfig;
use crate::render::Templates;

pub struct App {
    pub config: Config,
    pub ledger: Arc<dyn Ledger>,
    pub intake: Arc<Intake>,
    pub engine: Arc<Engine>,
}

/// Each part the configuration names, opened, or why it cannot be: shared by [`App::start`]
/// (which needs every part) and `disclose config check` (which reports on each).
pub(crate) struct Parts {
    pub ledger: Result<Arc<dyn Ledger>, String>,
    pub keys: Result<KeyStore, String>,
    /// `Ok(None)`: no policy.toml, the built-in defaults apply.
    pub policy: Result<Option<PolicyConfig>, String>,
    pub templates: Result<Templates, String>,
    /// Each channel file with its opened transport; `Err`: the files themselves are wrong.
    pub channels: Result<Vec<OpenedChannel>, Vec<String>>,
}

/// A channel file and its transport, opened or not (why not).
pub(crate) type OpenedChannel = (ChannelConfig, Result<Arc<dyn Channel>, String>);

impl Parts {
    pub(crate) fn open(config: &Config) -> Parts {
        let policy_path = config.paths.channels_dir.join("policy.toml");
        Parts {
            ledger: ledger::open(&config.ledger.url)
                .map(Arc::from)
                .map_err(|e| format!("ledger {}: {e}", ledger::redact_url(&config.ledger.url))),
            keys: KeyStore::load(&config.approval.keys_dir)
                .map_err(|e| format!("approval keys: {e}")),
            policy: if policy_path.exists() {
                PolicyConfig::load(&policy_path)
                    .map(Some)
                    .map_err(|e| format!("policy: {e}"))
            } else {
                Ok(None)
            },
            templates: Templates::load(&config.paths.templates_dir)
                .map_err(|e| format!("templates ({}): {e}", config.paths.templates_dir.display())),
            channels: channel_configs(&config.paths.channels_dir).map(|configs| {
                configs
                    .into_iter()
                    .map(|cfg| {
                        let built = cfg
                            .build(&config.paths.output_dir)
                            .map_err(|e| format!("channel {}: {e}", cfg.channel));
                        (cfg, built)
                    })
                    .collect()
            }),
        }
    }
}

impl App {
    pub fn start(config: Config) -> anyhow::Result<App> {
        let parts = Parts::open(&config);
        let mut problems: Vec<String> = Vec::new();
        let ledger = parts.ledger.map_err(|e| problems.push(e)).ok();
        let keys = parts.keys.map_err(|e| problems.push(e)).ok();
        let policy = parts
            .policy
            .map(|p| p.unwrap_or_else(PolicyConfig::defaults))
            .map_err(|e| problems.push(e))
            .ok();
        let templates = parts.templates.map_err(|e| problems.push(e)).ok();
        let mut built: Vec<(ChannelConfig, Arc<dyn Channel>)> = Vec::new();
        match parts.channels {
            Ok(channels) => {
                for (cfg, channel) in channels {
                    match channel {
                        Ok(ch) => built.push((cfg, ch)),
                        Err(e) => problems.push(e),
                    }
                }
            }
            Err(e) => problems.extend(e),
        }
        let (Some(ledger), Some(keys), Some(policy), Some(templates), true) =
            (ledger, keys, policy, templates, problems.is_empty())
        else {
            return Err(anyhow!(
                "the configuration has problems:\n  - {}",
                problems.join("\n  - ")
            ));
        };
        let templates = Arc::new(templates);
        let engine = Arc::new(Engine::new(
            ledger.clone(),
            templates.clone(),
            built,
            Duration::from_secs(config.engine.lease_secs.max(1)),
        ));
        let intake = Arc::new(Intake {
            ledger: ledger.clone(),
            keys,
            policy,
            templates,
            calendar: WorkCalendar::embedded().with_overrides(&config.calendar),
            configured: engine.configured(),
        });
        Ok(App {
            config,
            ledger,
            intake,
            engine,
        })
    }
}

/// The channel files in `dir`, or the built-in defaults when the directory holds none.
fn channel_configs(dir: &Path) -> Result<Vec<ChannelConfig>, Vec<String>> {
    let has_channel_files = std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.filter_map(|e| e.ok()).any(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.ends_with(".toml") && name != "policy.toml" && name != "obligations.toml"
        })
    });
    if !has_channel_files {
        return Ok(channels::config::defaults().into_values().collect());
    }
    channels::config::load_dir(dir)
        .map(|m| m.into_values().collect())
        .map_err(|es| es.iter().map(|e| e.to_string()).collect())
}

/// Read a job file; a file that cannot be read is answered like bad input, never a crash.
pub fn read_job(path: &Path) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path)
        .with_context(|| path.display().to_string())
        .map_err(|e| format!("{e:#}"))?;
    if meta.len() > crate::job::MAX_JOB_BYTES as u64 {
        return Err(format!(
            "job is {} bytes; the limit is {} bytes (1 MiB)",
            meta.len(),
            crate::job::MAX_JOB_BYTES
        ));
    }
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Job files named on the command line: files as given, directories as their `*.json` in name order.
pub fn job_files(args: &[std::path::PathBuf]) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    for a in args {
        if a.is_dir() {
            let mut files: Vec<_> = std::fs::read_dir(a)
                .with_context(|| a.display().to_string())?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "json"))
                .collect();
            files.sort();
            out.extend(files);
        } else {
            out.push(a.clone());
        }
    }
    Ok(out)
}
