//! The media of disclosure. Every channel implements [`Channel`]: it is handed a batch of claimed
//! deliveries of one job and answers with one [`Outcome`] per delivery. It never decides what
//! happens next — retry, give up, wait — that is the engine's job ([`crate::deliver`]).
//!
//! Transports: [`website`] (the static disclosure column for `website` and `intranet`),
//! [`outbox`] (the dry run and the embedded default for every per-person channel: it writes
//! exactly what would be sent), the SMS providers [`tencent`] and [`aliyun`] (what they share is
//! in [`sms`]), [`wechat`] (official-account template messages), [`wecom`] (application
//! messages), [`email`] (SMTP) and [`letter`] (GB/T 9704 PDF letters for the print room), and
//! [`failover`], which puts a second provider behind a first. [`http`] holds what the HTTP
//! providers share: credentials from the environment and the rule that a call whose fate is not
//! known is `unknown`, never resent blindly.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, FixedOffset};

use crate::job::{ChannelKind, Job};
use crate::render::Rendered;

pub mod aliyun;
pub mod config;
pub mod email;
pub mod failover;
pub mod http;
pub mod letter;
pub mod outbox;
pub mod sms;
pub mod tencent;
pub mod website;
pub mod wechat;
pub mod wecom;

pub use config::{ChannelConfig, ChannelsError, RetryPolicy, Transport};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One claimed delivery with what to send.
#[derive(Debug, Clone)]
pub struct Item {
    pub delivery_id: i64,
    pub recipient: String,
    pub name: String,
    pub role: String,
    /// The channel's address (E.164 phone, e-mail, openid, userid, postal address JSON); `None`
    /// for publications and for letters delivered by hand.
    pub address: Option<String>,
    pub attempt: u32,
    /// Shared by the whole batch unless the channel is personal (e-mail, letters).
    pub content: Arc<Rendered>,
}

/// Deliveries of one job on one channel.
#[derive(Debug, Clone)]
pub struct Batch {
    pub job: Arc<Job>,
    pub channel: ChannelKind,
    pub items: Vec<Item>,
    pub now: DateTime<FixedOffset>,
}

/// What happened to one delivery, as the channel saw it.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Accepted by the provider (or written, for files); `reference` is its id for the message.
    Delivered {
        reference: Option<String>,
    },
    /// `permanent`: retrying cannot help (invalid number, unsubscribed). Otherwise retried.
    Failed {
        code: String,
        permanent: bool,
        detail: String,
    },
    Skipped {
        reason: String,
    },
    /// Handed over, result not known: resolved later by [`Channel::resolve`], never resent blindly.
    Unknown {
        detail: String,
    },
    /// Rate limited or asked to come back later (HTTP 429 / Retry-After).
    RetryAfter {
        after: Duration,
        code: String,
    },
}

pub trait Channel: Send + Sync {
    fn kind(&self) -> ChannelKind;
    /// How the channel sends, for summaries: `"outbox (dry run)"`, `"static site"`, …
    fn transport(&self) -> &str;
    /// Where a person can look at what was sent, if anywhere.
    fn location(&self) -> Option<&Path> {
        None
    }
    /// How many status queries a second the channel may ask, when [`Channel::resolve`] asks
    /// one per delivery under a rate limit (the SMS providers); `None`: no such limit.
    fn status_queries_per_second(&self) -> Option<u32> {
        None
    }
    /// Workers of the channel's lane when its configuration names no `concurrency`.
    fn default_concurrency(&self) -> usize {
        1
    }
    /// Whether the channel reads nothing of a delivery but its address (the SMS providers,
    /// WeCom): its recipient's id, name and role are then not read from the ledger at all
    /// ([`crate::ledger::Ledger::claim_addresses`]), three strings a delivery spared.
    fn sends_by_address(&self) -> bool {
        false
    }
    /// Housekeeping on each pass of the engine (e.g. closing publicity periods that have ended).
    fn tick(&self, _now: DateTime<FixedOffset>) -> Result<(), String> {
        Ok(())
    }
    /// Send a batch; exactly one outcome per item, in order.
    fn deliver<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Vec<Outcome>>;
    /// The status query for deliveries left `unknown`: what became of them. The default knows
    /// nothing, so they stay unknown.
    fn resolve<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Vec<Outcome>> {
        Box::pin(async move {
            batch
                .items
                .iter()
                .map(|_| Outcome::Unknown {
                    detail: "no status query for this transport".into(),
                })
                .collect()
        })
    }
}

/// Write `bytes` to `path` atomically: a temp file in the same directory, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp: PathBuf = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}
