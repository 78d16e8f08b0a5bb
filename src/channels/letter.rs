//! The letter transport (`type = "pdf_letters"`): official letters for the print room — to the
//! leadership team (Art 12), to specific ranges (Art 13) and to the reported person and a signed
//! complainant (Art 9(5)). Each batch becomes one directory under `<dir>/<job id>/`:
//!
//! ```text
//! letters/zzb-2026-0155/batch-000041/
//!   000041-r-0001.pdf        one letter per recipient (GB/T 9704, see crate::letter)
//!   000042-c-0001.pdf
//!   addresses.pdf            the envelopes: postcode boxes, address, name; or "专人送达"
//!   manifest.csv             what the print room prints, posts or hands over
//! ```
//!
//! The directory is built under a hidden temporary name and renamed into place when every file
//! in it is written and synced, so the print room sees a whole batch or nothing — never letters
//! without their manifest. A letter is `Delivered` when its PDF is in place (the reference is
//! `batch-…/file.pdf`); printing and posting are the print room's. A letter left `unknown` by a
//! crash is resolved by looking for its file: found, it was written; not found, it was surely
//! not (the batch directory appears whole or not at all), and it is written again.
//!
//! ```toml
//! channel = "letter"
//! batch_size = 50
//! [transport]
//! type = "pdf_letters"
//! dir = "/srv/print-room/letters"            # default <output>/letters
//! organ_mark = "中共示例县委组织部"            # red, at the head of the first page
//! signature = "中共示例县委组织部"             # default: organ_mark
//! reference_prefix = "组干函"                 # 组干函〔2026〕7号
//! salutation = "同志"                         # 王五同志：
//! sender_address = "示例县政府路8号"           # on the address sheet (optional)
//! sender_postcode = "100000"
//! [transport.fonts]                           # default: Noto CJK SC from fonts-noto-cjk
//! body = { path = "/usr/share/fonts/office/FangSong_GB2312.ttf" }
//! title = { path = "/usr/share/fonts/office/FZXiaoBiaoSong-B05S.ttf" }
//! heading = { path = "/usr/share/fonts/office/SimHei.ttf" }
//! kai = { path = "/usr/share/fonts/office/KaiTi_GB2312.ttf" }
//! [transport.page]                            # default: GB/T 9704 (37/28 mm, 156 × 225 mm, 28 × 22, 16 pt)
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use super::{Batch, BoxFuture, Channel, Item, Outcome};
use crate::job::{ChannelKind, Job};
use crate::letter::{self, Envelope, FontSet, Letter, PageSpec, Style, Typesetter};
use crate::render::Rendered;

/// The `[transport]` table of a `pdf_letters` channel.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PdfLettersConfig {
    /// Default `<output>/letters`.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    #[serde(default = "default_organ")]
    pub organ_mark: String,
    /// Default: the organ mark.
    #[serde(default)]
    pub signature: Option<String>,
    #[serde(default = "default_prefix")]
    pub reference_prefix: String,
    #[serde(default = "default_salutation")]
    pub salutation: String,
    #[serde(default)]
    pub sender_address: Option<String>,
    #[serde(default)]
    pub sender_postcode: Option<String>,
    #[serde(default)]
    pub fonts: FontSet,
    #[serde(default)]
    pub page: PageSpec,
}

fn default_organ() -> String {
    Style::default().organ_mark
}
fn default_prefix() -> String {
    Style::default().reference_prefix
}
fn default_salutation() -> String {
    Style::default().salutation
}

impl PdfLettersConfig {
    /// Pure checks, every problem at once.
    pub fn validate(&self, channel: ChannelKind) -> Vec<String> {
        let mut p = Vec::new();
        if channel != ChannelKind::Letter {
            p.push(format!(
                "the pdf_letters transport serves the letter channel, not {channel}"
            ));
        }
        if self.organ_mark.trim().is_empty() {
            p.push("organ_mark must name the issuing organ (发文机关标志)".into());
        }
        if self.signature.as_ref().is_some_and(|s| s.trim().is_empty()) {
            p.push("signature must not be empty (leave it out to sign with organ_mark)".into());
        }
        if self.reference_prefix.trim().is_empty()
            || self.reference_prefix.contains(['〔', '〕', '[', ']'])
        {
            p.push(
                "reference_prefix must be the organ's code alone, e.g. \"组干函\" (the year in 〔〕 and the number are added)"
                    .into(),
            );
        }
        if let Some(pc) = &self.sender_postcode
            && (pc.len() != 6 || !pc.bytes().all(|b| b.is_ascii_digit()))
        {
            p.push(format!("sender_postcode {pc:?} must be six digits"));
        }
        p.extend(self.page.validate());
        p
    }

    /// Every key at its default.
    pub fn defaults() -> PdfLettersConfig {
        toml::from_str("").expect("every key has a default")
    }

    pub(crate) fn style(&self) -> Style {
        Style {
            organ_mark: self.organ_mark.clone(),
            signature: self
                .signature
                .clone()
                .unwrap_or_else(|| self.organ_mark.clone()),
            reference_prefix: self.reference_prefix.clone(),
            salutation: self.salutation.clone(),
            sender_address: self.sender_address.clone(),
            sender_postcode: self.sender_postcode.clone(),
            page: self.page,
        }
    }
}

pub struct PdfLetters {
    dir: PathBuf,
    ts: Arc<Typesetter>,
}

impl PdfLetters {
    /// Load the fonts and make the directory: a missing font fails start-up, naming it.
    pub fn open(cfg: &PdfLettersConfig, output: &Path) -> Result<PdfLetters, String> {
        let dir = cfg.dir.clone().unwrap_or_else(|| output.join("letters"));
        std::fs::create_dir_all(&dir).map_err(|e| format!("letters {}: {e}", dir.display()))?;
        let ts = Typesetter::new(&cfg.fonts, cfg.style()).map_err(|e| e.to_string())?;
        Ok(PdfLetters {
            dir,
            ts: Arc::new(ts),
        })
    }

    pub fn typesetter(&self) -> &Arc<Typesetter> {
        &self.ts
    }
}

/// `000041-r-0001.pdf`: the delivery id first (unique, sorts in planning order), then the
/// recipient id reduced to safe characters so the print room can tell letters apart.
pub fn file_name(item: &Item) -> String {
    let id: String = item
        .recipient
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    format!("{:06}-{id}.pdf", item.delivery_id)
}

/// The postal address the planner stored: `{"postcode": "100000", "lines": ["…"]}`.
fn envelope(item: &Item, tag: String) -> Envelope {
    let (postcode, address) = match item.address.as_deref() {
        None => (None, Vec::new()),
        Some(text) => match serde_json::from_str::<serde_json::Value>(text) {
            Ok(v) => (
                v.get("postcode")
                    .and_then(|p| p.as_str())
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(String::from),
                v.get("lines")
                    .and_then(|l| l.as_array())
                    .map(|l| {
                        l.iter()
                            .filter_map(|x| x.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
            Err(_) => (None, vec![text.to_string()]),
        },
    };
    // An address with no lines cannot be posted, whatever the postcode says.
    let postcode = if address.is_empty() {
        None
    } else {
        Some(postcode.unwrap_or_default())
    };
    Envelope {
        name: item.name.clone(),
        postcode,
        address,
        tag,
    }
}

struct Written {
    file: String,
    pdf: letter::Pdf,
    envelope: Envelope,
}

/// One letter, or why it cannot be made (permanent: the same content fails the same way).
fn lay_out(
    ts: &Typesetter,
    job: &Job,
    item: &Item,
    reference: &str,
    date: &str,
) -> Result<letter::Pdf, Outcome> {
    let Rendered::Letter { html } = &*item.content else {
        return Err(Outcome::Failed {
            code: "not_a_letter".into(),
            permanent: true,
            detail: "the rendered content is not a letter body".into(),
        });
    };
    let l = Letter {
        reference: reference.to_string(),
        title: job.title.clone(),
        addressee: format!("{}{}", item.name, ts.style.salutation),
        body_html: html.clone(),
        date: date.to_string(),
    };
    ts.letter(&l).map_err(|e| {
        tracing::error!(delivery = item.delivery_id, error = %e, "letter cannot be laid out");
        Outcome::Failed {
            code: "letter_layout".into(),
            permanent: true,
            detail: e.to_string(),
        }
    })
}

/// Lay out and write one batch; one outcome per item.
fn write_batch(ts: &Typesetter, dir: &Path, job: &Job, items: &[Item]) -> Vec<Outcome> {
    let reference = letter::document_number(job, &ts.style.reference_prefix);
    let date = letter::chinese_date(job.approval.approved_at);
    let mut outcomes: Vec<Option<Outcome>> = vec![None; items.len()];
    let mut written: Vec<(usize, Written)> = Vec::new();
    // Layout is the costly part (≈ 9 ms a letter, most of it subsetting the fonts): the batch
    // is shared among the cores, in order.
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8);
    let chunk = items.len().div_ceil(threads).max(1);
    let laid_out: Vec<Result<letter::Pdf, Outcome>> = std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| {
                let (reference, date) = (&reference, &date);
                s.spawn(move || {
                    part.iter()
                        .map(|item| lay_out(ts, job, item, reference, date))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join().unwrap_or_else(|_| {
                    vec![Err(Outcome::Failed {
                        code: "letter_layout".into(),
                        permanent: false,
                        detail: "the layout thread stopped".into(),
                    })]
                })
            })
            .collect()
    });
    for (i, (item, result)) in items.iter().zip(laid_out).enumerate() {
        match result {
            Ok(pdf) => {
                let file = file_name(item);
                let envelope = envelope(item, format!("{reference}　{file}"));
                written.push((
                    i,
                    Written {
                        file,
                        pdf,
                        envelope,
                    },
                ));
            }
            Err(o) => outcomes[i] = Some(o),
        }
    }
    if !written.is_empty() {
        let first = items[written[0].0].delivery_id;
        match publish(ts, dir, job, first, &reference, items, &written) {
            Ok(batch) => {
                for (i, w) in &written {
                    outcomes[*i] = Some(Outcome::Delivered {
                        reference: Some(format!("{batch}/{}", w.file)),
                    });
                }
            }
            Err(e) => {
                tracing::warn!(job = %job.id, error = %e, "letter batch could not be written; retrying");
                for (i, _) in &written {
                    outcomes[*i] = Some(Outcome::Failed {
                        code: "letter_io".into(),
                        permanent: false,
                        detail: e.clone(),
                    });
                }
            }
        }
    }
    outcomes
        .into_iter()
        .map(|o| {
            o.unwrap_or(Outcome::Unknown {
                detail: "no outcome".into(),
            })
        })
        .collect()
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Write the batch into a hidden directory, then rename it into place. Returns its name.
fn publish(
    ts: &Typesetter,
    dir: &Path,
    job: &Job,
    first: i64,
    reference: &str,
    items: &[Item],
    written: &[(usize, Written)],
) -> Result<String, String> {
    let job_dir = dir.join(&job.id);
    std::fs::create_dir_all(&job_dir).map_err(|e| format!("{}: {e}", job_dir.display()))?;
    let tmp = job_dir.join(format!(".batch-{first:06}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let result = (|| -> Result<String, String> {
        let io = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
        std::fs::create_dir(&tmp).map_err(|e| io(&tmp, e))?;
        // Each file synced before the rename makes the batch visible; the syncs run side by
        // side (a sync waits on the disk, not on the CPU).
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) * 4;
        let chunk = written.len().div_ceil(threads).max(1);
        std::thread::scope(|s| {
            let handles: Vec<_> = written
                .chunks(chunk)
                .map(|part| {
                    let tmp = &tmp;
                    s.spawn(move || {
                        for (_, w) in part {
                            let p = tmp.join(&w.file);
                            write_synced(&p, &w.pdf.bytes).map_err(|e| io(&p, e))?;
                        }
                        Ok::<(), String>(())
                    })
                })
                .collect();
            handles.into_iter().try_for_each(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("a writing thread stopped".into()))
            })
        })?;
        let envelopes: Vec<Envelope> = written.iter().map(|(_, w)| w.envelope.clone()).collect();
        let sheet = ts
            .address_sheet(&format!("{}　{reference}", job.title), &envelopes)
            .map_err(|e| e.to_string())?;
        let p = tmp.join("addresses.pdf");
        write_synced(&p, &sheet.bytes).map_err(|e| io(&p, e))?;
        let p = tmp.join("manifest.csv");
        write_synced(&p, &manifest(job, reference, items, written)?).map_err(|e| io(&p, e))?;
        std::fs::File::open(&tmp)
            .and_then(|d| d.sync_all())
            .map_err(|e| io(&tmp, e))?;
        // The batch's name: its first delivery; a later batch starting with the same delivery
        // (a retry after a failed write) takes the next free suffix.
        let mut name = format!("batch-{first:06}");
        let mut n = 1;
        while job_dir.join(&name).exists() {
            n += 1;
            name = format!("batch-{first:06}-{n}");
        }
        std::fs::rename(&tmp, job_dir.join(&name)).map_err(|e| io(&job_dir.join(&name), e))?;
        std::fs::File::open(&job_dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io(&job_dir, e))?;
        Ok(name)
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

/// The print room's list: one row per letter, in delivery order.
fn manifest(
    job: &Job,
    reference: &str,
    items: &[Item],
    written: &[(usize, Written)],
) -> Result<Vec<u8>, String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let e = |e: csv::Error| e.to_string();
    w.write_record([
        "file",
        "job_id",
        "reference_number",
        "delivery_id",
        "recipient",
        "name",
        "role",
        "delivery",
        "postcode",
        "address",
        "pages",
        "bytes",
        "sha256",
    ])
    .map_err(e)?;
    for (i, l) in written {
        let item = &items[*i];
        let sha = crate::ledger::audit::sha256_hex(&l.pdf.bytes);
        w.write_record([
            l.file.as_str(),
            job.id.as_str(),
            reference,
            &item.delivery_id.to_string(),
            &item.recipient,
            &item.name,
            &item.role,
            if l.envelope.postcode.is_some() {
                "post"
            } else {
                "hand"
            },
            l.envelope.postcode.as_deref().unwrap_or(""),
            &l.envelope.address.join(" "),
            &l.pdf.pages.to_string(),
            &l.pdf.bytes.len().to_string(),
            &sha,
        ])
        .map_err(e)?;
    }
    w.into_inner().map_err(|e| e.to_string())
}

/// Where a delivery's letter is, if it was written: `batch-…/file.pdf`.
fn find(dir: &Path, job: &Job, item: &Item) -> std::io::Result<Option<String>> {
    let job_dir = dir.join(&job.id);
    let entries = match std::fs::read_dir(&job_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let file = file_name(item);
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("batch-") && entry.path().join(&file).is_file() {
            return Ok(Some(format!("{name}/{file}")));
        }
    }
    Ok(None)
}

impl Channel for PdfLetters {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Letter
    }

    fn transport(&self) -> &str {
        "pdf letters (GB/T 9704)"
    }

    fn location(&self) -> Option<&Path> {
        Some(&self.dir)
    }

    fn deliver<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Vec<Outcome>> {
        Box::pin(async move {
            // Layout is CPU work: off the async threads.
            let (ts, dir, job, items) = (
                self.ts.clone(),
                self.dir.clone(),
                batch.job.clone(),
                batch.items.clone(),
            );
            let n = items.len();
            match tokio::task::spawn_blocking(move || write_batch(&ts, &dir, &job, &items)).await {
                Ok(o) => o,
                Err(e) => (0..n)
                    .map(|_| Outcome::Unknown {
                        detail: format!("the letter task stopped: {e}"),
                    })
                    .collect(),
            }
        })
    }

    fn resolve<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Vec<Outcome>> {
        Box::pin(async move {
            batch
                .items
                .iter()
                .map(|item| match find(&self.dir, &batch.job, item) {
                    Ok(Some(reference)) => Outcome::Delivered {
                        reference: Some(reference),
                    },
                    // A batch appears whole or not at all: no file, surely not written.
                    Ok(None) => Outcome::Failed {
                        code: "not_sent".into(),
                        permanent: false,
                        detail: "no letter was written".into(),
                    },
                    Err(e) => Outcome::Unknown {
                        detail: format!("the letters directory cannot be read: {e}"),
                    },
                })
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::{ChannelConfig, Transport};

    #[test]
    fn a_channel_file_names_the_transport_and_unknown_keys_are_refused() {
        let cfg: ChannelConfig = toml::from_str(
            "channel = \"letter\"\n[transport]\ntype = \"pdf_letters\"\nreference_prefix = \"组干函\"\n[transport.fonts]\nbody = { path = \"/x/FangSong.ttf\" }\n",
        )
        .unwrap();
        let Transport::PdfLetters(t) = &cfg.transport else {
            panic!("{cfg:?}")
        };
        assert_eq!(t.fonts.body.path, Path::new("/x/FangSong.ttf"));
        assert_eq!(t.organ_mark, "中共示例县委组织部");
        assert!(cfg.validate().is_empty(), "{:?}", cfg.validate());
        let e = toml::from_str::<ChannelConfig>(
            "channel = \"letter\"\n[transport]\ntype = \"pdf_letters\"\norgan = \"x\"\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("organ"), "{e}");
        // The transport serves letters only.
        let cfg: ChannelConfig =
            toml::from_str("channel = \"sms\"\n[transport]\ntype = \"pdf_letters\"\n").unwrap();
        assert_eq!(cfg.validate().len(), 1, "{:?}", cfg.validate());
    }

    #[test]
    fn file_names_are_safe_and_ordered_by_delivery() {
        let item = Item {
            delivery_id: 42,
            recipient: "../张三 x".into(),
            name: "张三".into(),
            role: "member".into(),
            address: None,
            attempt: 1,
            content: Arc::new(Rendered::Letter {
                html: String::new(),
            }),
        };
        // `../` cannot climb out of the batch directory; Chinese becomes `_`.
        assert_eq!(file_name(&item), "000042-______x.pdf");
    }
}
