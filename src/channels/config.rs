//! Operator configuration of channels: one TOML file per channel instance in `channels/`
//! (e.g. `channels/sms.toml`), each a closed, tagged description with a pure [`ChannelConfig::validate`]
//! and an I/O [`ChannelConfig::build`]. With no `channels/` directory, [`defaults`] gives every
//! channel a file transport under the output directory, so the dispatcher runs with no set-up.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::Channel;
use crate::job::ChannelKind;
use crate::pace::{QuietHours, RecipientLimits};

#[derive(Debug, thiserror::Error)]
pub enum ChannelsError {
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    #[error("{path}: cannot be read: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("channel {channel} is configured twice: {first} and {second}")]
    Twice {
        channel: ChannelKind,
        first: String,
        second: String,
    },
}

/// How a channel sends.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Transport {
    /// Dry run: write exactly what would be sent to `dir` (default `<output>/outbox`).
    Outbox {
        #[serde(default)]
        dir: Option<PathBuf>,
    },
    /// The static disclosure column (website, intranet): pages, index and feed in `dir`.
    StaticSite {
        #[serde(default)]
        dir: Option<PathBuf>,
        site_title: String,
        base_url: String,
    },
    /// Tencent Cloud SMS (API 2021-01-11); see [`super::tencent`].
    TencentSms(super::tencent::TencentConfig),
    /// Alibaba Cloud SMS (Dysmsapi 2017-05-25); see [`super::aliyun`].
    AliyunSms(super::aliyun::AliyunConfig),
    /// WeChat official-account template messages (providers.md §3).
    WechatTemplate(super::wechat::WechatConfig),
    /// WeCom application messages (providers.md §4).
    WecomApp(super::wecom::WecomConfig),
    /// Official letters as PDF (GB/T 9704) for the print room: see [`super::letter`].
    PdfLetters(super::letter::PdfLettersConfig),
    /// E-mail over SMTP (lettre, pooled): see [`super::email`].
    Smtp(super::email::SmtpConfig),
}

impl Transport {
    /// The `type` of the transport, as written in the channel file.
    pub fn name(&self) -> &'static str {
        match self {
            Transport::Outbox { .. } => "outbox",
            Transport::StaticSite { .. } => "static_site",
            Transport::TencentSms(_) => "tencent_sms",
            Transport::AliyunSms(_) => "aliyun_sms",
            Transport::WechatTemplate(_) => "wechat_template",
            Transport::WecomApp(_) => "wecom_app",
            Transport::PdfLetters(_) => "pdf_letters",
            Transport::Smtp(_) => "smtp",
        }
    }
}

/// Retries of transient failures: exponential backoff with jitter, honouring Retry-After.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    #[serde(default = "default_base_ms")]
    pub base_ms: u64,
    #[serde(default = "default_max_ms")]
    pub max_ms: u64,
}

fn default_attempts() -> u32 {
    5
}
fn default_base_ms() -> u64 {
    2_000
}
fn default_max_ms() -> u64 {
    600_000
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: default_attempts(),
            base_ms: default_base_ms(),
            max_ms: default_max_ms(),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1`: `base · 2^(attempt-1)`, capped, with "equal jitter"
    /// (half fixed, half random) so that many failed deliveries do not return all at once.
    pub fn backoff(&self, attempt: u32, random: f64) -> Duration {
        let exp = self
            .base_ms
            .saturating_mul(1u64 << (attempt.saturating_sub(1)).min(30));
        let capped = exp.min(self.max_ms) as f64;
        Duration::from_millis((capped / 2.0 + capped / 2.0 * random.clamp(0.0, 1.0)) as u64)
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    pub channel: ChannelKind,
    pub transport: Transport,
    /// Deliveries handed to the transport per call (SMS providers take up to 200 numbers a call).
    #[serde(default)]
    pub batch_size: Option<usize>,
    /// Calls to the transport per second (governor); none: unlimited.
    #[serde(default)]
    pub calls_per_second: Option<u32>,
    /// Workers delivering on this channel at once in `serve` (default 1).
    #[serde(default)]
    pub concurrency: Option<usize>,
    #[serde(default)]
    pub retry: RetryPolicy,
    /// A daily window (UTC+8) in which this channel sends nothing; deliveries due in it wait for
    /// its end, e.g. `quiet_hours = { from = "21:00", to = "08:00" }` for SMS.
    #[serde(default)]
    pub quiet_hours: Option<QuietHours>,
    /// At most so many messages to one address per natural minute, hour and day (UTC+8), e.g.
    /// `recipient_limits = { per_minute = 1, per_hour = 5, per_day = 10 }`.
    #[serde(default)]
    pub recipient_limits: RecipientLimits,
    /// A second provider that takes over when the first is down.
    #[serde(default)]
    pub failover: Option<FailoverConfig>,
}

/// `[failover]` of a channel file: after `after_failed_calls` calls in a row that failed for want
/// of the provider (5xx, no connection, timeouts), `transport` carries the channel for
/// `cool_down_secs`, then the first provider is tried again.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailoverConfig {
    #[serde(default = "default_failed_calls")]
    pub after_failed_calls: u32,
    #[serde(default = "default_cool_down")]
    pub cool_down_secs: u64,
    pub transport: Transport,
}

fn default_failed_calls() -> u32 {
    3
}
fn default_cool_down() -> u64 {
    300
}

impl ChannelConfig {
    pub fn batch_size(&self) -> usize {
        self.batch_size.unwrap_or(match self.channel {
            ChannelKind::Sms => 200,
            ChannelKind::Website | ChannelKind::Intranet => 1,
            _ => 100,
        })
    }

    /// Pure checks; every problem at once.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(n) = self.batch_size
            && (n == 0 || n > 1000)
        {
            problems.push(format!("batch_size {n} must be 1–1000"));
        }
        if let Some(n) = self.concurrency.filter(|n| *n == 0 || *n > 64) {
            problems.push(format!("concurrency {n} must be 1–64"));
        }
        if self.calls_per_second == Some(0) {
            problems.push("calls_per_second must be at least 1 (leave it out for no limit)".into());
        }
        problems.extend(self.recipient_limits.validate());
        if let Some(f) = &self.failover {
            if f.after_failed_calls == 0 {
                problems.push("failover.after_failed_calls must be at least 1".into());
            }
            if f.transport.name() == self.transport.name() {
                problems.push(format!(
                    "failover.transport is {} again; fail over to a different provider",
                    f.transport.name()
                ));
            }
            if matches!(f.transport, Transport::StaticSite { .. }) {
                problems.push("failover.transport cannot be a static site".into());
            }
        }
        if self.retry.max_attempts == 0 {
            problems.push("retry.max_attempts must be at least 1".into());
        }
        if self.retry.base_ms == 0 || self.retry.base_ms > self.retry.max_ms {
            problems.push("retry.base_ms must be at least 1 and at most retry.max_ms".into());
        }
        match (&self.transport, self.channel.is_publication()) {
            (Transport::StaticSite { .. }, false) => problems.push(format!(
                "the static_site transport serves website and intranet, not {}",
                self.channel
            )),
            (Transport::StaticSite { base_url, .. }, true) if !base_url.ends_with('/') => {
                problems.push("base_url must end with '/'".into())
            }
            (Transport::TencentSms(c), _) => {
                problems.extend(c.validate(self.channel, self.batch_size()))
            }
            (Transport::AliyunSms(c), _) => {
                problems.extend(c.validate(self.channel, self.batch_size()))
            }
            (Transport::WechatTemplate(c), _) => {
                if self.channel != ChannelKind::Wechat {
                    problems.push(format!(
                        "the wechat_template transport serves wechat, not {}",
                        self.channel
                    ));
                }
                problems.extend(c.validate());
            }
            (Transport::WecomApp(c), _) => {
                if self.channel != ChannelKind::Wecom {
                    problems.push(format!(
                        "the wecom_app transport serves wecom, not {}",
                        self.channel
                    ));
                }
                problems.extend(c.validate());
            }
            _ => {}
        }
        match &self.transport {
            Transport::PdfLetters(c) => problems.extend(c.validate(self.channel)),
            Transport::Smtp(c) => problems.extend(c.validate(self.channel)),
            _ => {}
        }
        problems
    }

    /// Open the transport (and its failover, if any). `output` is the default parent of file
    /// outputs.
    pub fn build(&self, output: &Path) -> Result<Arc<dyn Channel>, String> {
        let primary = self.build_transport(&self.transport, output)?;
        let Some(f) = &self.failover else {
            return Ok(primary);
        };
        let secondary = self.build_transport(&f.transport, output)?;
        Ok(Arc::new(super::failover::Failover::new(
            (self.transport.name().to_string(), primary),
            (f.transport.name().to_string(), secondary),
            f.after_failed_calls,
            Duration::from_secs(f.cool_down_secs),
        )))
    }

    fn build_transport(
        &self,
        transport: &Transport,
        output: &Path,
    ) -> Result<Arc<dyn Channel>, String> {
        match transport {
            Transport::Outbox { dir } => {
                let dir = dir.clone().unwrap_or_else(|| output.join("outbox"));
                super::outbox::Outbox::open(self.channel, &dir)
                    .map(|o| Arc::new(o) as Arc<dyn Channel>)
            }
            Transport::StaticSite {
                dir,
                site_title,
                base_url,
            } => {
                let dir = dir
                    .clone()
                    .unwrap_or_else(|| output.join("site").join(self.channel.as_str()));
                super::website::Website::open(
                    self.channel,
                    dir,
                    site_title.clone(),
                    base_url.clone(),
                )
                .map(|w| Arc::new(w) as Arc<dyn Channel>)
            }
            Transport::TencentSms(c) => {
                super::tencent::Tencent::from_config(c).map(|t| Arc::new(t) as Arc<dyn Channel>)
            }
            Transport::AliyunSms(c) => {
                super::aliyun::Aliyun::from_config(c).map(|a| Arc::new(a) as Arc<dyn Channel>)
            }
            Transport::WechatTemplate(c) => {
                super::wechat::WechatTemplate::new(c).map(|w| Arc::new(w) as Arc<dyn Channel>)
            }
            Transport::WecomApp(c) => {
                super::wecom::WecomApp::new(c).map(|w| Arc::new(w) as Arc<dyn Channel>)
            }
            Transport::PdfLetters(c) => {
                super::letter::PdfLetters::open(c, output).map(|l| Arc::new(l) as Arc<dyn Channel>)
            }
            Transport::Smtp(c) => {
                super::email::Smtp::open(c).map(|s| Arc::new(s) as Arc<dyn Channel>)
            }
        }
    }
}

/// Built-in defaults: the static column for website and intranet, the outbox for the rest.
pub fn defaults() -> BTreeMap<ChannelKind, ChannelConfig> {
    ChannelKind::ALL
        .into_iter()
        .map(|channel| {
            let transport = match channel {
                ChannelKind::Website => Transport::StaticSite {
                    dir: None,
                    site_title: "县委组织部 干部工作信息公开".into(),
                    base_url: "https://zzb.example.gov.cn/gk/".into(),
                },
                ChannelKind::Intranet => Transport::StaticSite {
                    dir: None,
                    site_title: "县委组织部 内网 干部工作信息".into(),
                    base_url: "http://intranet.zzb.example/gk/".into(),
                },
                _ => Transport::Outbox { dir: None },
            };
            (
                channel,
                ChannelConfig {
                    channel,
                    transport,
                    batch_size: None,
                    calls_per_second: None,
                    concurrency: None,
                    retry: RetryPolicy::default(),
                    quiet_hours: None,
                    recipient_limits: RecipientLimits::default(),
                    failover: None,
                },
            )
        })
        .collect()
}

/// Load every `*.toml` in `dir` except `policy.toml` and `obligations.toml`; all problems at once.
pub fn load_dir(dir: &Path) -> Result<BTreeMap<ChannelKind, ChannelConfig>, Vec<ChannelsError>> {
    let mut out: BTreeMap<ChannelKind, (ChannelConfig, String)> = BTreeMap::new();
    let mut errors = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(source) => {
            return Err(vec![ChannelsError::Io {
                path: dir.display().to_string(),
                source,
            }]);
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .filter(|p| {
            !matches!(
                p.file_name().and_then(|n| n.to_str()),
                Some("policy.toml" | "obligations.toml")
            )
        })
        .collect();
    paths.sort();
    for path in paths {
        let shown = path.display().to_string();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(source) => {
                errors.push(ChannelsError::Io {
                    path: shown,
                    source,
                });
                continue;
            }
        };
        let cfg: ChannelConfig = match toml::from_str(&text) {
            Ok(c) => c,
            Err(e) => {
                errors.push(ChannelsError::Invalid {
                    path: shown,
                    message: e.to_string().trim().to_string(),
                });
                continue;
            }
        };
        for message in cfg.validate() {
            errors.push(ChannelsError::Invalid {
                path: shown.clone(),
                message,
            });
        }
        if let Some((_, first)) = out.get(&cfg.channel) {
            errors.push(ChannelsError::Twice {
                channel: cfg.channel,
                first: first.clone(),
                second: shown,
            });
            continue;
        }
        out.insert(cfg.channel, (cfg, shown));
    }
    if errors.is_empty() {
        Ok(out.into_iter().map(|(k, (c, _))| (k, c)).collect())
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let p = RetryPolicy {
            max_attempts: 5,
            base_ms: 1000,
            max_ms: 10_000,
        };
        assert_eq!(p.backoff(1, 1.0), Duration::from_millis(1000));
        assert_eq!(p.backoff(1, 0.0), Duration::from_millis(500));
        assert_eq!(p.backoff(3, 1.0), Duration::from_millis(4000));
        assert_eq!(p.backoff(10, 1.0), Duration::from_millis(10_000));
        assert_eq!(p.backoff(60, 0.0), Duration::from_millis(5_000));
    }

    #[test]
    fn the_shipped_channel_files_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("channels");
        let loaded = load_dir(&dir).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(loaded.len(), ChannelKind::ALL.len());
    }

    #[test]
    fn the_operator_examples_of_the_provider_transports_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/channels");
        let loaded = load_dir(&dir).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(loaded[&ChannelKind::Sms].transport.name(), "tencent_sms");
        let failover = loaded[&ChannelKind::Sms].failover.as_ref().unwrap();
        assert_eq!(failover.transport.name(), "aliyun_sms");
        assert_eq!(
            loaded[&ChannelKind::Wechat].transport.name(),
            "wechat_template"
        );
        assert_eq!(loaded[&ChannelKind::Wecom].transport.name(), "wecom_app");
    }

    #[test]
    fn bad_files_report_every_problem() {
        let cfg: ChannelConfig = toml::from_str(
            "channel = \"sms\"\nbatch_size = 0\ncalls_per_second = 0\n[transport]\ntype = \"static_site\"\nsite_title = \"x\"\nbase_url = \"y\"\n",
        )
        .unwrap();
        assert_eq!(cfg.validate().len(), 3, "{:?}", cfg.validate());
        let e =
            toml::from_str::<ChannelConfig>("channel = \"fax\"\n[transport]\ntype = \"outbox\"\n")
                .unwrap_err();
        assert!(e.to_string().contains("fax"), "{e}");
    }
}
