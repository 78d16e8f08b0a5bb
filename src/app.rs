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

impl App {
    pub fn start(config: Config) -> anyhow::Result<App> {
        let mut problems: Vec<String> = Vec::new();
        let ledger: Option<Arc<dyn Ledger>> = match ledger::open(&config.ledger.url) {
            Ok(l) => Some(Arc::from(l)),
            Err(e) => {
                problems.push(format!("ledger {}: {e}", config.ledger.url));
                None
            }
        };
        let keys = KeyStore::load(&config.approval.keys_dir)
            .map_err(|e| problems.push(format!("approval keys: {e}")))
            .ok();
        let policy_path = config.paths.channels_dir.join("policy.toml");
        let policy = if policy_path.exists() {
            PolicyConfig::load(&policy_path)
                .map_err(|e| problems.push(format!("policy: {e}")))
                .ok()
        } else {
            Some(PolicyConfig::defaults())
        };
        let templates = Templates::load(&config.paths.templates_dir)
            .map_err(|e| {
                problems.push(format!(
                    "templates ({}): {e}",
                    config.paths.templates_dir.display()
                ))
            })
            .ok();
        let channel_configs = channel_configs(&config.paths.channels_dir)
            .map_err(|e| problems.extend(e))
            .ok();
        let mut built: Vec<(ChannelConfig, Arc<dyn Channel>)> = Vec::new();
        for cfg in channel_configs.into_iter().flatten() {
            match cfg.build(&config.paths.output_dir) {
                Ok(ch) => built.push((cfg, ch)),
                Err(e) => problems.push(format!("channel {}: {e}", cfg.channel)),
            }
        }
        let (Some(ledger), Some(keys), Some(policy), Some(templates)) =
            (ledger, keys, policy, templates)
        else {
            return Err(anyhow!(
                "the configuration has problems:\n  - {}",
                problems.join("\n  - ")
            ));
        };
        if !problems.is_empty() {
            return Err(anyhow!(
                "the configuration has problems:\n  - {}",
                problems.join("\n  - ")
            ));
        }
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
pub(crate) fn channel_configs(dir: &Path) -> Result<Vec<ChannelConfig>, Vec<String>> {
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
