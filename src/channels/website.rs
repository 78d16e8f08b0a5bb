//! The `website` and `intranet` channels over the static disclosure column ([`crate::site`]):
//! a delivery is the job's page; a correction replaces the original's page in place (same URL,
//! with a visible correction note) and a retraction withdraws it (SPEC §5).

use std::path::{Path, PathBuf};

use super::{Batch, BoxFuture, Channel, Outcome};
use crate::job::{ChannelKind, Kind};
use crate::render::Rendered;
use crate::site::{PageInput, Site, SiteConfig};

pub struct Website {
    channel: ChannelKind,
    site: Site,
    dir: PathBuf,
}

impl Website {
    pub fn open(
        channel: ChannelKind,
        dir: PathBuf,
        site_title: String,
        base_url: String,
    ) -> Result<Website, String> {
        let site = Site::open(SiteConfig {
            dir: dir.clone(),
            site_title,
            base_url,
        })
        .map_err(|e| e.to_string())?;
        Ok(Website { channel, site, dir })
    }

    fn publish(&self, batch: &Batch, content: &Rendered) -> Result<String, String> {
        let job = &batch.job;
        let Rendered::Page { title, html } = content else {
            return Err(format!("template rendered {content:?} for a page"));
        };
        let page = PageInput {
            id: job.id.clone(),
            title: title.clone(),
            category: job.category.to_string(),
            body_html: html.clone(),
            published_at: job.schedule.publish_at.unwrap_or(batch.now),
            expires_at: job.schedule.expires_at,
            reference: job.approval.reference.clone(),
        };
        let path = match (job.kind, &job.corrects) {
            (Kind::Correction, Some(original)) => {
                let note = format!(
                    "本文已于{}更正（{}）。",
                    batch.now.format("%Y年%-m月%-d日"),
                    job.approval.reference
                );
                self.site
                    .correct(original, &page, &note, batch.now)
                    .map_err(|e| e.to_string())?
            }
            (Kind::Retraction, Some(original)) => {
                let reason = job
                    .data
                    .get("reason")
                    .and_then(|v| v.as_str())
                    .unwrap_or(&job.title)
                    .to_string();
                self.site
                    .withdraw(original, &reason, batch.now)
                    .map_err(|e| e.to_string())?;
                self.site.page_path(original)
            }
            _ => self
                .site
                .publish(&page, batch.now)
                .map_err(|e| e.to_string())?,
        };
        Ok(path.display().to_string())
    }
}

impl Channel for Website {
    fn kind(&self) -> ChannelKind {
        self.channel
    }

    fn transport(&self) -> &str {
        "static site"
    }

    fn location(&self) -> Option<&Path> {
        Some(&self.dir)
    }

    /// Close publicity periods that have ended (公示期满): the page is marked and leaves the index.
    fn tick(&self, now: chrono::DateTime<chrono::FixedOffset>) -> Result<(), String> {
        self.site
            .refresh(now)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn deliver<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Vec<Outcome>> {
        Box::pin(async move {
            batch
                .items
                .iter()
                .map(|item| match self.publish(batch, &item.content) {
                    Ok(path) => Outcome::Delivered {
                        reference: Some(path),
                    },
                    Err(detail) => Outcome::Failed {
                        code: "site_io".into(),
                        permanent: false,
                        detail,
                    },
                })
                .collect()
        })
    }

    /// Publishing is idempotent (same input, same files), so an unknown page is simply published again.
    fn resolve<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Vec<Outcome>> {
        self.deliver(batch)
    }
}
