//! The e-mail transport (`type = "smtp"`): the press list (Art 10) and unit documents (Art 11)
//! over SMTP, with lettre's pooled async transport.
//!
//! Each recipient gets a message of their own (the templates address the person): multipart
//! text + HTML, the subject RFC 2047-encoded, a `Message-ID` derived from job and recipient
//! (`<zzb-2026-0142.3f2a…@zzb.example.gov.cn>`, so a message sent twice is recognisably the
//! same one and a recipient's mail client can fold the copies), `List-Unsubscribe` on public
//! lists when configured, and the letter attached as PDF when the template asks for it
//! (`email.toml` with `attach_letter = true`, see [`crate::render`]).
//!
//! # What a reply means (SPEC §4: an explicit outcome for every recipient)
//! | what happened | outcome |
//! |---|---|
//! | `250` after the message | `Delivered`, reference = the Message-ID |
//! | `5xx` (to `MAIL`, `RCPT`, `DATA` or the message) | `Failed { permanent }`, code `smtp_550` … — that recipient will never take it |
//! | `4xx` | `Failed { transient }`, code `smtp_451` …: retried with backoff (greylisting, a full queue) |
//! | `530`/`534`/`535`/`538` (credentials refused) | `Failed { transient }`: not the recipient's fault, retried while an operator fixes the password |
//! | no connection, TLS handshake failed | `Failed { transient }`, `smtp_connect` / `smtp_tls`: nothing was sent |
//! | timeout, connection lost mid-session, unreadable reply | `Unknown`: the server may have taken the message |
//!
//! SMTP has no status query, so a delivery left `unknown` stays unknown ([`Channel::resolve`]
//! says so) until a person looks in the server's log for its Message-ID: it is never resent on
//! a guess.
//!
//! Credentials come from the environment variables the channel file names; they never appear
//! in logs or errors. Recipients are masked in logs (`z***@czj.example.gov.cn`).
//!
//! ```toml
//! channel = "email"
//! batch_size = 50
//! [transport]
//! type = "smtp"
//! host = "smtp.example.gov.cn"
//! port = 587                                   # default: 587 starttls, 465 implicit, 25 none
//! tls = "starttls"                             # "starttls" | "implicit" | "none" (a local relay)
//! ca_file = "/etc/disclose/office-ca.pem"      # optional: the office's own CA
//! username_env = "DISCLOSE_SMTP_USER"          # optional, both or neither
//! password_env = "DISCLOSE_SMTP_PASSWORD"
//! from = "中共示例县委组织部 <noreply@zzb.example.gov.cn>"
//! reply_to = "zzb@example.gov.cn"              # optional
//! list_unsubscribe = "<mailto:unsubscribe@zzb.example.gov.cn?subject=unsubscribe>"  # public lists
//! messages_per_second = 10                     # the server's limit (governor), optional
//! pool_size = 4                                # connections kept open, messages in flight
//! timeout_secs = 30
//! [transport.letter]                           # attached letters: the keys of pdf_letters
//! organ_mark = "中共示例县委组织部"
//! ```

use std::num::NonZeroU32;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::{AsyncSmtpTransport, PoolConfig};
use lettre::{AsyncTransport, Message, Tokio1Executor};
use serde::Deserialize;

use super::http::Secret;
use super::letter::PdfLettersConfig;
use super::{Batch, BoxFuture, Channel, Item, Outcome};
use crate::job::{ChannelKind, Job, Scope};
use crate::letter::{self, Letter, Typesetter};
use crate::render::Rendered;

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsMode {
    /// Plain connection upgraded with STARTTLS, required (never falls back to plain text).
    Starttls,
    /// TLS from the first byte (SMTPS, port 465).
    Implicit,
    /// No encryption: only for a relay on the same machine or a trusted network.
    None,
}

/// The `[transport]` table of an `smtp` channel.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default = "default_tls")]
    pub tls: TlsMode,
    /// PEM file of the CA that signed the server's certificate, for a server of the office's
    /// own CA; trusted besides the public web roots.
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,
    #[serde(default)]
    pub username_env: Option<String>,
    #[serde(default)]
    pub password_env: Option<String>,
    pub from: String,
    #[serde(default)]
    pub reply_to: Option<String>,
    /// RFC 2369 value for public lists (SPEC Art 10 subscribers, the press list).
    #[serde(default)]
    pub list_unsubscribe: Option<String>,
    #[serde(default)]
    pub messages_per_second: Option<u32>,
    #[serde(default = "default_pool")]
    pub pool_size: u32,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// How a letter attached to an e-mail is laid out (organ, reference prefix, fonts): the
    /// keys of a `pdf_letters` transport (`dir` is not used). Default: its defaults.
    #[serde(default)]
    pub letter: Option<PdfLettersConfig>,
}

fn default_tls() -> TlsMode {
    TlsMode::Starttls
}
fn default_pool() -> u32 {
    4
}
fn default_timeout() -> u64 {
    30
}

impl SmtpConfig {
    /// Pure checks, every problem at once.
    pub fn validate(&self, channel: ChannelKind) -> Vec<String> {
        let mut p = Vec::new();
        if channel != ChannelKind::Email {
            p.push(format!(
                "the smtp transport serves the email channel, not {channel}"
            ));
        }
        if self.host.trim().is_empty() || self.host.contains([' ', '/', ':']) {
            p.push(format!(
                "host {:?} must be a host name or address (the port goes in port)",
                self.host
            ));
        }
        if self.ca_file.is_some() && self.tls == TlsMode::None {
            p.push(
                "ca_file is for TLS: set tls = \"starttls\" or \"implicit\", or leave ca_file out"
                    .into(),
            );
        }
        if self.port == Some(0) {
            p.push("port must be 1–65535".into());
        }
        if let Err(e) = self.from.parse::<Mailbox>() {
            p.push(format!(
                "from {:?} is not an address ({e}); write e.g. \"中共示例县委组织部 <noreply@zzb.example.gov.cn>\"",
                self.from
            ));
        }
        if let Some(r) = &self.reply_to
            && r.parse::<Mailbox>().is_err()
        {
            p.push(format!("reply_to {r:?} is not an address"));
        }
        if self.username_env.is_some() != self.password_env.is_some() {
            p.push("username_env and password_env go together: give both or neither".into());
        }
        if let Some(l) = &self.list_unsubscribe
            && (!l.trim_start().starts_with('<') || !l.trim_end().ends_with('>'))
        {
            p.push(format!(
                "list_unsubscribe {l:?} must be RFC 2369 URIs in angle brackets, e.g. \"<mailto:unsubscribe@example.gov.cn>\""
            ));
        }
        if self.messages_per_second == Some(0) {
            p.push("messages_per_second must be at least 1 (leave it out for no limit)".into());
        }
        if !(1..=64).contains(&self.pool_size) {
            p.push(format!("pool_size {} must be 1–64", self.pool_size));
        }
        if !(1..=600).contains(&self.timeout_secs) {
            p.push(format!("timeout_secs {} must be 1–600", self.timeout_secs));
        }
        if let Some(l) = &self.letter {
            p.extend(
                l.validate(ChannelKind::Letter)
                    .into_iter()
                    .map(|m| format!("letter: {m}")),
            );
        }
        p
    }

    fn port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            TlsMode::Starttls => 587,
            TlsMode::Implicit => 465,
            TlsMode::None => 25,
        })
    }
}

/// lettre's pool spawns tasks on the runtime it is created in and when it is dropped, so it is
/// created on first use (inside the engine's runtime, not at start-up where there is none) and
/// dropped inside a runtime even when the process's runtime is already gone.
struct Pooled(Option<AsyncSmtpTransport<Tokio1Executor>>);

impl Drop for Pooled {
    fn drop(&mut self) {
        let Some(t) = self.0.take() else { return };
        if tokio::runtime::Handle::try_current().is_ok() {
            drop(t);
        } else if let Ok(rt) = tokio::runtime::Builder::new_current_thread().build() {
            rt.block_on(async move { drop(t) });
        } else {
            // No runtime can be had: the process is ending and the OS closes the sockets.
            std::mem::forget(t);
        }
    }
}

pub struct Smtp {
    builder: lettre::transport::smtp::AsyncSmtpTransportBuilder,
    /// The pool in use; replaced after a send that broke off, whose connection may still hold
    /// the late reply (a pooled connection must never read one message's answer for another).
    transport: std::sync::Mutex<Option<Arc<Pooled>>>,
    /// The deadline of one send (lettre's async transport times out only the connect).
    timeout: Duration,
    from: Mailbox,
    reply_to: Option<Mailbox>,
    domain: String,
    list_unsubscribe: Option<String>,
    limiter: Option<DefaultDirectRateLimiter>,
    in_flight: usize,
    described: String,
    letter: PdfLettersConfig,
    /// Loaded on first use: most deployments never attach a letter.
    typesetter: OnceLock<Result<Arc<Typesetter>, String>>,
}

impl Smtp {
    /// Build the pooled transport. Credentials are read here, from the variables the file
    /// names: a missing one fails start-up, naming the variable.
    pub fn open(cfg: &SmtpConfig) -> Result<Smtp, String> {
        let what = "channel email";
        let from: Mailbox = cfg
            .from
            .parse()
            .map_err(|e| format!("from {:?}: {e}", cfg.from))?;
        let reply_to = cfg
            .reply_to
            .as_deref()
            .map(|r| {
                r.parse::<Mailbox>()
                    .map_err(|e| format!("reply_to {r:?}: {e}"))
            })
            .transpose()?;
        let tls = match cfg.tls {
            TlsMode::None => Tls::None,
            TlsMode::Starttls | TlsMode::Implicit => {
                let mut params = TlsParameters::builder(cfg.host.clone());
                if let Some(ca) = &cfg.ca_file {
                    let pem =
                        std::fs::read(ca).map_err(|e| format!("ca_file {}: {e}", ca.display()))?;
                    let cert = Certificate::from_pem(&pem).map_err(|e| {
                        format!("ca_file {}: not a PEM certificate: {e}", ca.display())
                    })?;
                    params = params.add_root_certificate(cert);
                }
                let params = params
                    .build()
                    .map_err(|e| format!("TLS for {}: {e}", cfg.host))?;
                if cfg.tls == TlsMode::Starttls {
                    Tls::Required(params)
                } else {
                    Tls::Wrapper(params)
                }
            }
        };
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(cfg.host.clone())
            .port(cfg.port())
            .tls(tls)
            .timeout(Some(Duration::from_secs(cfg.timeout_secs)))
            .pool_config(
                PoolConfig::new()
                    .max_size(cfg.pool_size)
                    .idle_timeout(Duration::from_secs(60)),
            );
        if let (Some(u), Some(p)) = (&cfg.username_env, &cfg.password_env) {
            let user = Secret::from_env(u, what)?;
            let pass = Secret::from_env(p, what)?;
            b = b.credentials(Credentials::new(
                user.expose().to_string(),
                pass.expose().to_string(),
            ));
        }
        let limiter = cfg
            .messages_per_second
            .and_then(NonZeroU32::new)
            .map(|n| RateLimiter::direct(Quota::per_second(n).allow_burst(NonZeroU32::MIN)));
        Ok(Smtp {
            builder: b,
            transport: std::sync::Mutex::new(None),
            timeout: Duration::from_secs(cfg.timeout_secs),
            domain: from.email.domain().to_string(),
            from,
            reply_to,
            list_unsubscribe: cfg.list_unsubscribe.clone(),
            limiter,
            in_flight: cfg.pool_size as usize,
            described: format!(
                "smtp {}:{} ({})",
                cfg.host,
                cfg.port(),
                match cfg.tls {
                    TlsMode::Starttls => "starttls",
                    TlsMode::Implicit => "implicit tls",
                    TlsMode::None => "no tls",
                }
            ),
            letter: cfg
                .letter
                .clone()
                .unwrap_or_else(PdfLettersConfig::defaults),
            typesetter: OnceLock::new(),
        })
    }

    /// The attached letter of a template with `attach_letter = true`, laid out as the letter
    /// channel lays it out (same reference number, same date).
    fn letter_pdf(&self, job: &Job, item: &Item, body_html: &str) -> Result<Vec<u8>, String> {
        let ts = self
            .typesetter
            .get_or_init(|| {
                Typesetter::new(&self.letter.fonts, self.letter.style())
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .clone()?;
        let l = Letter {
            reference: letter::document_number(job, &ts.style.reference_prefix),
            title: job.title.clone(),
            addressee: format!("{}{}", item.name, ts.style.salutation),
            body_html: body_html.to_string(),
            date: letter::chinese_date(job.approval.approved_at),
        };
        ts.letter(&l).map(|p| p.bytes).map_err(|e| e.to_string())
    }

    fn pool(&self) -> Arc<Pooled> {
        let mut g = self.transport.lock().unwrap_or_else(|e| e.into_inner());
        g.get_or_insert_with(|| Arc::new(Pooled(Some(self.builder.clone().build()))))
            .clone()
    }

    fn discard(&self, pooled: &Arc<Pooled>) {
        let mut g = self.transport.lock().unwrap_or_else(|e| e.into_inner());
        if g.as_ref().is_some_and(|p| Arc::ptr_eq(p, pooled)) {
            *g = None;
        }
    }

    /// `<job.hash@domain>`: the same job and recipient always give the same id.
    pub fn message_id(&self, job_id: &str, recipient: &str) -> String {
        let h = crate::ledger::audit::sha256_hex(format!("{job_id}\n{recipient}").as_bytes());
        format!("<{job_id}.{}@{}>", &h[..16], self.domain)
    }

    /// The message for one recipient, or the reason it cannot be built (permanent).
    pub fn message(&self, job: &Job, item: &Item) -> Result<Message, Outcome> {
        let permanent = |code: &str, detail: String| Outcome::Failed {
            code: code.into(),
            permanent: true,
            detail,
        };
        let Some(address) = item.address.as_deref() else {
            return Err(Outcome::Skipped {
                reason: "no_address".into(),
            });
        };
        let Rendered::Email {
            subject,
            text,
            html,
            letter,
        } = &*item.content
        else {
            return Err(permanent(
                "not_an_email",
                "the rendered content is not an e-mail".into(),
            ));
        };
        let to = address
            .trim()
            .parse()
            .map(|email| Mailbox::new(Some(item.name.clone()), email))
            .map_err(|e| permanent("invalid_address", format!("{}: {e}", mask(address))))?;
        let mut b = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject.clone())
            .message_id(Some(self.message_id(&job.id, &item.recipient)));
        if let Some(r) = &self.reply_to {
            b = b.reply_to(r.clone());
        }
        // RFC 2369: public lists (Art 10) say how to leave them.
        if job.scope == Scope::Public
            && let Some(l) = &self.list_unsubscribe
        {
            b = b.raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe"),
                l.clone(),
            ));
        }
        let body = MultiPart::alternative_plain_html(text.clone(), html.clone());
        let built = match letter {
            None => b.multipart(body),
            Some(letter_html) => {
                let pdf = self
                    .letter_pdf(job, item, letter_html)
                    .map_err(|e| permanent("letter_layout", e))?;
                let name = format!("{}.pdf", job.id);
                let attachment: SinglePart = Attachment::new(name).body(
                    pdf,
                    ContentType::parse("application/pdf").expect("a valid content type"),
                );
                b.multipart(MultiPart::mixed().multipart(body).singlepart(attachment))
            }
        };
        built.map_err(|e| permanent("message", e.to_string()))
    }

    async fn send_one(&self, job: &Job, item: &Item) -> Outcome {
        let message = match self.message(job, item) {
            Ok(m) => m,
            Err(o) => return o,
        };
        if let Some(l) = &self.limiter {
            l.until_ready().await;
        }
        let id = self.message_id(&job.id, &item.recipient);
        let pooled = self.pool();
        let transport = pooled.0.as_ref().expect("built");
        let to = mask(item.address.as_deref().unwrap_or(""));
        match tokio::time::timeout(self.timeout, transport.send(message)).await {
            Ok(Ok(_)) => Outcome::Delivered {
                reference: Some(id),
            },
            Ok(Err(e)) => {
                let o = classify(&e);
                if matches!(o, Outcome::Unknown { .. }) {
                    self.discard(&pooled);
                }
                tracing::warn!(channel = "email", delivery = item.delivery_id, %to, error = %e, outcome = ?o, "smtp send failed");
                o
            }
            Err(_) => {
                self.discard(&pooled);
                tracing::warn!(channel = "email", delivery = item.delivery_id, %to, timeout_s = self.timeout.as_secs(), "smtp send timed out; the message may have been accepted");
                Outcome::Unknown {
                    detail: format!(
                        "the SMTP server did not finish within {} s; the message may have been accepted",
                        self.timeout.as_secs()
                    ),
                }
            }
        }
    }
}

/// What an SMTP error means for the message (see the module's table).
pub fn classify(e: &lettre::transport::smtp::Error) -> Outcome {
    let detail = e.to_string();
    if let Some(code) = e.status() {
        let text = code.to_string();
        // 530/534/535/538 refuse the sender's credentials, not the recipient: every message
        // fails alike until an operator fixes them, so they are retried, not given up on.
        let auth = matches!(text.as_str(), "530" | "534" | "535" | "538");
        if auth {
            tracing::error!(code = %text, "the SMTP server refuses the channel's credentials");
        }
        return Outcome::Failed {
            permanent: e.is_permanent() && !auth,
            code: format!("smtp_{text}"),
            detail,
        };
    }
    // lettre names a failed connect "Connection error" (its Kind::Connection, which has no
    // accessor); nothing was sent over a connection that never opened.
    if detail.starts_with("Connection error") {
        return Outcome::Failed {
            code: "smtp_connect".into(),
            permanent: false,
            detail,
        };
    }
    if e.is_tls() {
        return Outcome::Failed {
            code: "smtp_tls".into(),
            permanent: false,
            detail,
        };
    }
    if e.is_transport_shutdown() {
        return Outcome::Failed {
            code: "smtp_shutdown".into(),
            permanent: false,
            detail,
        };
    }
    if e.is_client() {
        return Outcome::Failed {
            code: "smtp_client".into(),
            permanent: true,
            detail,
        };
    }
    Outcome::Unknown {
        detail: if e.is_timeout() {
            format!(
                "the SMTP server did not answer in time; the message may have been accepted: {detail}"
            )
        } else {
            format!("the SMTP session broke off; the message may have been accepted: {detail}")
        },
    }
}

/// `z***@czj.example.gov.cn`: enough to tell recipients apart in a log, not to write to them.
pub fn mask(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".into(),
    }
}

impl Channel for Smtp {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Email
    }

    fn transport(&self) -> &str {
        &self.described
    }

    fn deliver<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Vec<Outcome>> {
        Box::pin(async move {
            // Up to `pool_size` messages in flight, one per pooled connection; outcomes in order.
            let mut outcomes = Vec::with_capacity(batch.items.len());
            for chunk in batch.items.chunks(self.in_flight.max(1)) {
                let sends = chunk.iter().map(|item| self.send_one(&batch.job, item));
                outcomes.extend(join_all(sends).await);
            }
            outcomes
        })
    }

    fn resolve<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Vec<Outcome>> {
        Box::pin(async move {
            batch
                .items
                .iter()
                .map(|item| Outcome::Unknown {
                    detail: format!(
                        "SMTP has no status query: look for Message-ID {} in the server's log",
                        self.message_id(&batch.job.id, &item.recipient)
                    ),
                })
                .collect()
        })
    }
}

/// Run futures concurrently on this task; results in order.
async fn join_all<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut futures: Vec<_> = futures.map(|f| Some(Box::pin(f))).collect();
    let mut out: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, o) in futures.iter_mut().zip(out.iter_mut()) {
            if let Some(fut) = f {
                match fut.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        *o = Some(v);
                        *f = None;
                    }
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter()
        .map(|o| o.expect("every future finished"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(extra: &str) -> SmtpConfig {
        toml::from_str(&format!(
            "host = \"127.0.0.1\"\nfrom = \"中共示例县委组织部 <noreply@zzb.example.gov.cn>\"\n{extra}"
        ))
        .unwrap()
    }

    #[test]
    fn the_config_reports_every_problem() {
        assert!(cfg("").validate(ChannelKind::Email).is_empty());
        let c: SmtpConfig = toml::from_str(
            "host = \"smtp.example:25\"\nfrom = \"nobody\"\nusername_env = \"U\"\nlist_unsubscribe = \"mailto:x@y\"\nmessages_per_second = 0\npool_size = 0\n",
        )
        .unwrap();
        let p = c.validate(ChannelKind::Sms);
        assert_eq!(p.len(), 7, "{p:#?}");
        assert!(p[0].contains("email channel, not sms"));
        let e = toml::from_str::<SmtpConfig>("host = \"h\"\nfrom = \"a@b\"\npassword = \"x\"\n")
            .unwrap_err();
        assert!(e.to_string().contains("password"), "{e}");
        let e = toml::from_str::<SmtpConfig>("host = \"h\"\nfrom = \"a@b\"\ntls = \"ssl\"\n")
            .unwrap_err();
        assert!(e.to_string().contains("starttls"), "{e}");
    }

    #[test]
    fn ports_follow_the_tls_mode() {
        assert_eq!(cfg("").port(), 587);
        assert_eq!(cfg("tls = \"implicit\"").port(), 465);
        assert_eq!(cfg("tls = \"none\"").port(), 25);
        assert_eq!(cfg("tls = \"none\"\nport = 2525").port(), 2525);
    }

    #[test]
    fn a_missing_credential_names_the_variable_not_a_value() {
        let c = cfg(
            "username_env = \"DISCLOSE_TEST_NO_SMTP_USER\"\npassword_env = \"DISCLOSE_TEST_NO_SMTP_PASS\"",
        );
        let e = Smtp::open(&c).err().unwrap();
        assert!(e.contains("DISCLOSE_TEST_NO_SMTP_USER"), "{e}");
    }

    #[test]
    fn message_ids_are_stable_per_job_and_recipient() {
        let s = Smtp::open(&cfg("tls = \"none\"")).unwrap();
        let a = s.message_id("zzb-2026-0142", "p001");
        assert_eq!(a, s.message_id("zzb-2026-0142", "p001"));
        assert_ne!(a, s.message_id("zzb-2026-0142", "p002"));
        assert!(
            a.starts_with("<zzb-2026-0142.") && a.ends_with("@zzb.example.gov.cn>"),
            "{a}"
        );
    }

    #[test]
    fn addresses_are_masked() {
        assert_eq!(
            mask("zhouming@czj.example.gov.cn"),
            "z***@czj.example.gov.cn"
        );
        assert_eq!(mask("nonsense"), "***");
    }
}
