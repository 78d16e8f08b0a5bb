//! The outbox transport: the dry run, and the embedded default for every per-person channel.
//! It writes exactly what would be sent — one JSON line per delivery in `<dir>/<channel>.jsonl`,
//! or one RFC 5322 `.eml` file per e-mail in `<dir>/email/<job>/` — and nothing leaves the machine.
//! Named as such wherever it is reported ("outbox (dry run)"), so nobody mistakes it for sending.
//!
//! Lines are written (not fsynced) before the outcome is recorded: a killed process leaves them in
//! the page cache, and [`Channel::resolve`] finds them, so a delivery left `unknown` by a crash is
//! resolved from the file instead of being written twice.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use base64::Engine as _;

use super::{Batch, BoxFuture, Channel, Item, Outcome};
use crate::job::ChannelKind;
use crate::render::Rendered;

const LINE_PREFIX: &str = "{\"delivery_id\":";

/// `s` as a JSON string.
fn json_text(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// The parts of a batch's lines that every line shares, serialized as JSON once.
struct Shared {
    at: String,
    channel: String,
    job_id: String,
}

pub struct Outbox {
    channel: ChannelKind,
    dir: PathBuf,
    /// The `.jsonl` file (all channels but e-mail).
    file: Option<Mutex<std::fs::File>>,
    path: PathBuf,
}

impl Outbox {
    pub fn open(channel: ChannelKind, dir: &Path) -> Result<Outbox, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("outbox {}: {e}", dir.display()))?;
        let (file, path) = if channel == ChannelKind::Email {
            (None, dir.join("email"))
        } else {
            let path = dir.join(format!("{channel}.jsonl"));
            let cut =
                drop_torn_line(&path).map_err(|e| format!("outbox {}: {e}", path.display()))?;
            if cut > 0 {
                tracing::warn!(
                    file = %path.display(),
                    bytes = cut,
                    "the outbox ended in a line cut short by a crash; removed it (its delivery is resolved by the status query)"
                );
            }
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| format!("outbox {}: {e}", path.display()))?;
            (Some(Mutex::new(f)), path)
        };
        Ok(Outbox {
            channel,
            dir: dir.to_path_buf(),
            file,
            path,
        })
    }

    fn eml_path(&self, batch: &Batch, item: &Item) -> PathBuf {
        self.dir
            .join("email")
            .join(&batch.job.id)
            .join(format!("{}.eml", item.delivery_id))
    }

    /// One line: the delivery id first (`resolve` finds a line by this prefix), then the rest
    /// with its keys in order, as `serde_json` would write the whole object. The batch's shared
    /// parts (the time, the job, the content, serialized once per distinct content) are passed
    /// in already serialized: serializing the content anew for every line was a fifth of a
    /// million-recipient dry run.
    fn line(buf: &mut String, shared: &Shared, content: &str, item: &Item) {
        use std::fmt::Write as _;
        let _ = writeln!(
            buf,
            "{LINE_PREFIX}{},\"address\":{},\"at\":{},\"attempt\":{},\"channel\":{},\"content\":{content},\"job_id\":{},\"name\":{},\"recipient\":{},\"role\":{}}}",
            item.delivery_id,
            item.address
                .as_deref()
                .map_or_else(|| "null".to_string(), json_text),
            shared.at,
            item.attempt,
            shared.channel,
            shared.job_id,
            json_text(&item.name),
            json_text(&item.recipient),
            json_text(&item.role),
        );
    }

    fn write_lines(&self, batch: &Batch) -> std::io::Result<()> {
        let shared = Shared {
            at: json_text(&batch.now.to_rfc3339()),
            channel: json_text(batch.channel.as_str()),
            job_id: json_text(&batch.job.id),
        };
        let mut buf = String::with_capacity(batch.items.len() * 256);
        let mut last: Option<(&std::sync::Arc<Rendered>, String)> = None;
        for item in &batch.items {
            if !last
                .as_ref()
                .is_some_and(|(c, _)| std::sync::Arc::ptr_eq(c, &item.content))
            {
                let json = serde_json::to_value(&*item.content)
                    .map(|v| v.to_string())
                    .unwrap_or_default();
                last = Some((&item.content, json));
            }
            let content = last.as_ref().map_or("", |(_, j)| j.as_str());
            Self::line(&mut buf, &shared, content, item);
        }
        let file = self.file.as_ref().expect("jsonl outbox has a file");
        let mut f = file.lock().unwrap_or_else(|e| e.into_inner());
        f.write_all(buf.as_bytes())?;
        f.flush()
    }

    fn write_emails(&self, batch: &Batch) -> Vec<Outcome> {
        batch
            .items
            .iter()
            .map(|item| {
                let Some(to) = &item.address else {
                    return Outcome::Skipped {
                        reason: "no_address".into(),
                    };
                };
                let eml = eml(batch, item, to);
                match super::write_atomic(&self.eml_path(batch, item), eml.as_bytes()) {
                    Ok(()) => Outcome::Delivered {
                        reference: Some(message_id(&batch.job.id, &item.recipient)),
                    },
                    Err(e) => Outcome::Failed {
                        code: "outbox_io".into(),
                        permanent: false,
                        detail: e.to_string(),
                    },
                }
            })
            .collect()
    }

    /// Delivery ids present in the `.jsonl` file (a set: after a crash in a fan-out to a
    /// million, the file has a million lines to look each claimed id up against).
    fn written(&self, wanted: &[i64]) -> std::io::Result<std::collections::HashSet<i64>> {
        let wanted: std::collections::HashSet<i64> = wanted.iter().copied().collect();
        let mut found = std::collections::HashSet::new();
        let f = std::fs::File::open(&self.path)?;
        let mut reader = std::io::BufReader::new(f);
        let mut line = Vec::new();
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            // Only whole lines count: one without its newline is still being written (or was
            // cut short by a crash), and its delivery has not been written yet.
            if line.last() != Some(&b'\n') {
                continue;
            }
            let Some(rest) = line.strip_prefix(LINE_PREFIX.as_bytes()) else {
                continue;
            };
            let digits: String = rest
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .map(|&b| char::from(b))
                .collect();
            if let Ok(id) = digits.parse::<i64>()
                && wanted.contains(&id)
            {
                found.insert(id);
            }
        }
        Ok(found)
    }
}

/// Cut off a last line that does not end the file with a newline: a process killed while it
/// wrote a batch (the kernel stops a write to a file at a page when the process is being killed)
/// leaves a line cut short. Its delivery is `sending` in the ledger; the status query, which
/// counts only whole lines, finds it not written and it is written again, whole. Returns how
/// many bytes it cut off.
fn drop_torn_line(path: &Path) -> std::io::Result<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    if len == 0 {
        return Ok(0);
    }
    let mut end = len;
    let mut buf = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(chunk)?;
        if end == len && chunk.last() == Some(&b'\n') {
            return Ok(0);
        }
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            end = start + i as u64 + 1;
            break;
        }
        end = start;
    }
    f.set_len(end)?;
    f.sync_all()?;
    Ok(len - end)
}

/// `<job.recipient-hash@disclose>`: derived from job and recipient, so a resend is recognisably
/// the same message.
pub fn message_id(job_id: &str, recipient: &str) -> String {
    let h = crate::ledger::audit::sha256_hex(format!("{job_id}\n{recipient}").as_bytes());
    format!("<{job_id}.{}@disclose.invalid>", &h[..16])
}

/// RFC 2047 encoded-word for a UTF-8 header value (base64), split to keep lines short.
pub fn encode_header(value: &str) -> String {
    if value.is_ascii() {
        return value.to_string();
    }
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in value.chars() {
        if chunk.len() + c.len_utf8() > 45 {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(chunk);
    }
    words
        .iter()
        .map(|w| {
            format!(
                "=?UTF-8?B?{}?=",
                base64::engine::general_purpose::STANDARD.encode(w.as_bytes())
            )
        })
        .collect::<Vec<_>>()
        .join("\r\n ")
}

fn b64_lines(text: &str) -> String {
    let enc = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
    enc.as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\r\n")
}

fn eml(batch: &Batch, item: &Item, to: &str) -> String {
    let (subject, text, html) = match &*item.content {
        Rendered::Email {
            subject,
            text,
            html,
            ..
        } => (subject.clone(), text.clone(), html.clone()),
        other => (batch.job.title.clone(), other.preview(), String::new()),
    };
    let boundary = format!("disclose-{}", item.delivery_id);
    let mut m = String::new();
    m.push_str("From: =?UTF-8?B?5Y6/5aeU57uE57uH6YOo?= <noreply@zzb.example.gov.cn>\r\n");
    m.push_str(&format!("To: {} <{to}>\r\n", encode_header(&item.name)));
    m.push_str(&format!("Subject: {}\r\n", encode_header(&subject)));
    m.push_str(&format!("Date: {}\r\n", batch.now.to_rfc2822()));
    m.push_str(&format!(
        "Message-ID: {}\r\n",
        message_id(&batch.job.id, &item.recipient)
    ));
    m.push_str("MIME-Version: 1.0\r\n");
    m.push_str("X-Disclose-Transport: outbox (dry run)\r\n");
    m.push_str(&format!(
        "Content-Type: multipart/alternative; boundary=\"{boundary}\"\r\n\r\n"
    ));
    for (ct, body) in [("text/plain", &text), ("text/html", &html)] {
        m.push_str(&format!("--{boundary}\r\nContent-Type: {ct}; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"));
        m.push_str(&b64_lines(body));
        m.push_str("\r\n");
    }
    m.push_str(&format!("--{boundary}--\r\n"));
    m
}

impl Channel for Outbox {
    fn kind(&self) -> ChannelKind {
        self.channel
    }

    fn transport(&self) -> &str {
        "outbox (dry run)"
    }

    fn location(&self) -> Option<&Path> {
        Some(&self.path)
    }

    /// Two: writing a batch's lines is local work, so while one worker writes, the other's
    /// claim or outcomes go through the ledger (one worker left a core idle half the time of a
    /// million-recipient dry run). The lines of two batches never mix: each batch is one write.
    fn default_concurrency(&self) -> usize {
        2
    }

    fn deliver<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Vec<Outcome>> {
        Box::pin(async move {
            if self.channel == ChannelKind::Email {
                return self.write_emails(batch);
            }
            match self.write_lines(batch) {
                Ok(()) => batch
                    .items
                    .iter()
                    .map(|_| Outcome::Delivered { reference: None })
                    .collect(),
                Err(e) => batch
                    .items
                    .iter()
                    .map(|_| Outcome::Failed {
                        code: "outbox_io".into(),
                        permanent: false,
                        detail: e.to_string(),
                    })
                    .collect(),
            }
        })
    }

    fn resolve<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Vec<Outcome>> {
        Box::pin(async move {
            if self.channel == ChannelKind::Email {
                return batch
                    .items
                    .iter()
                    .map(|item| {
                        if self.eml_path(batch, item).exists() {
                            Outcome::Delivered {
                                reference: Some(message_id(&batch.job.id, &item.recipient)),
                            }
                        } else {
                            Outcome::Failed {
                                code: "not_sent".into(),
                                permanent: false,
                                detail: "no .eml was written".into(),
                            }
                        }
                    })
                    .collect();
            }
            let ids: Vec<i64> = batch.items.iter().map(|i| i.delivery_id).collect();
            match self.written(&ids) {
                Ok(found) => batch
                    .items
                    .iter()
                    .map(|i| {
                        if found.contains(&i.delivery_id) {
                            Outcome::Delivered { reference: None }
                        } else {
                            // The status query says it did not go out: only now is a resend safe.
                            Outcome::Failed {
                                code: "not_sent".into(),
                                permanent: false,
                                detail: "not in the outbox".into(),
                            }
                        }
                    })
                    .collect(),
                Err(e) => batch
                    .items
                    .iter()
                    .map(|_| Outcome::Unknown {
                        detail: e.to_string(),
                    })
                    .collect(),
            }
        })
    }
}

#[cfg(test)]
mod line_tests {
    use std::sync::Arc;

    /// A line cut short by a kill is cut off when the outbox opens; whole lines stay, and a line
    /// without its newline is never counted as written.
    #[test]
    fn a_line_cut_short_by_a_crash_is_removed_and_never_counted() {
        let dir = std::env::temp_dir().join(format!("disclose-outbox-torn-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sms.jsonl");
        let whole = "{\"delivery_id\":1,\"address\":\"+8613900000001\"}\n{\"delivery_id\":2,\"content\":{}}\n";
        std::fs::write(
            &path,
            format!("{whole}{{\"delivery_id\":3,\"content\":{{}}"),
        )
        .unwrap();
        let outbox = Outbox {
            channel: ChannelKind::Sms,
            dir: dir.clone(),
            file: None,
            path: path.clone(),
        };
        assert_eq!(
            outbox.written(&[1, 2, 3]).unwrap(),
            [1, 2].into_iter().collect(),
            "the cut line's delivery is not written"
        );
        assert_eq!(drop_torn_line(&path).unwrap(), 29, "the cut line's bytes");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), whole);
        // Whole files and empty ones are left as they are, and nothing is reported cut.
        assert_eq!(drop_torn_line(&path).unwrap(), 0);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), whole);
        std::fs::write(&path, "").unwrap();
        assert_eq!(
            drop_torn_line(&path).unwrap(),
            0,
            "an empty outbox has no cut line"
        );
        std::fs::write(&path, "{\"delivery_id\":9").unwrap();
        Outbox::open(ChannelKind::Sms, &dir).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
        let _ = std::fs::remove_dir_all(&dir);
    }

    use serde_json::json;

    use super::*;

    /// What a line was when it was built as a `serde_json` object: the format readers rely on.
    fn as_object(batch: &Batch, item: &Item) -> String {
        let v = json!({
            "job_id": batch.job.id,
            "channel": batch.channel,
            "recipient": item.recipient,
            "name": item.name,
            "role": item.role,
            "address": item.address,
            "attempt": item.attempt,
            "at": batch.now.to_rfc3339(),
            "content": &*item.content,
        });
        format!(
            "{LINE_PREFIX}{},{}\n",
            item.delivery_id,
            &v.to_string()[1..]
        )
    }

    #[test]
    fn lines_are_the_json_objects_they_always_were_with_escapes_and_shared_content() {
        let job: crate::job::Job = serde_json::from_str(
            &std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("examples/jobs/01-pre-appointment-release.json"),
            )
            .unwrap(),
        )
        .unwrap();
        let one = Arc::new(Rendered::Wecom {
            markdown: "任前公示 \"引号\" \\ </script>\n第二行".into(),
        });
        let two = Arc::new(Rendered::Wecom {
            markdown: "另一条".into(),
        });
        let item = |i: i64, content: &Arc<Rendered>, address: Option<&str>| Item {
            delivery_id: i,
            recipient: format!("s{i}\"x"),
            name: "张三\u{1}".into(),
            role: "member".into(),
            address: address.map(str::to_string),
            attempt: 2,
            content: content.clone(),
        };
        let batch = Batch {
            job: Arc::new(job),
            channel: ChannelKind::Sms,
            items: vec![
                item(1, &one, Some("+8613800000001")),
                item(2, &one, None),
                item(3, &two, Some("+8613800000003")),
                item(4, &one, Some("+8613800000004")),
            ],
            now: crate::clock::now(),
        };
        let dir =
            std::env::temp_dir().join(format!("disclose-outbox-lines-{}", std::process::id()));
        let outbox = Outbox::open(ChannelKind::Sms, &dir).unwrap();
        outbox.write_lines(&batch).unwrap();
        let written = std::fs::read_to_string(dir.join("sms.jsonl")).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let expected: String = batch.items.iter().map(|i| as_object(&batch, i)).collect();
        assert_eq!(written, expected);
    }
}
