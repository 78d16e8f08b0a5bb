//! WeCom (企业微信) application messages (providers.md §4) for the `wecom` channel: Art 11 lets
//! unit-scope information go out through internal documents and postings, and the county's WeCom
//! application is the internal posting that reaches each cadre.
//!
//! # What a delivery is
//! One `POST /cgi-bin/message/send` per up to 1,000 users (`touser` joined by `|`, sorted and
//! without repeats), `markdown` by default or a `textcard` (title = the job's title, description
//! = the rendered markdown as plain text, link = the job's `data.url` or the channel's
//! `card_url`). Every call asks for `enable_duplicate_check: 1` with the configured
//! `duplicate_check_interval`. The per-member limits (30 a minute, 1,000 an hour — excess is
//! silently dropped by WeCom, §4.3) are the engine's `recipient_limits` in the channel file.
//!
//! # Configuration
//! ```toml
//! channel = "wecom"
//! batch_size = 100
//! recipient_limits = { per_minute = 30, per_hour = 1000 }   # WeCom drops the excess silently
//! [transport]
//! type = "wecom_app"
//! corpid = "ww0123456789abcdef"
//! agentid = 1000002
//! secret_env = "WECOM_APP_SECRET"        # the variable's name; the secret stays in the environment
//! # msgtype = "markdown" | "textcard"    card_url = "http://intranet.zzb.example/gk/"
//! # duplicate_check_interval = 1800      timeout_ms = 10000   endpoint = "https://qyapi.weixin.qq.com"
//! ```
//!
//! # Outcomes (providers.md §4.2, §4.4)
//! | answer | outcome |
//! |---|---|
//! | errcode 0 | `Delivered { reference: msgid }`, except users listed in `invaliduser` (lower-cased by WeCom) → `Failed { permanent, code: "invaliduser" }` |
//! | 81013 (all invalid) | `Failed { permanent }` for every user of the call |
//! | 40014, 42001, 41001 | drop the token, fetch once more, retry the call once; again → `Failed { permanent: false }` |
//! | 40001, 40013, 40056, 48002, 60020, 301002 | `Failed { permanent }` and an error log: the deployment is misconfigured |
//! | -1 busy | `Failed { permanent: false }` |
//! | 45009 / 45033 | `RetryAfter` 60 s / 10 s, and no calls meanwhile |
//! | other errcodes | `Failed { permanent }`: WeCom's guidance is to retry only system failures |
//! | HTTP 429 / 503 / other 5xx, timeouts, unreadable answers | as for WeChat (see [`super::wechat`]) |
//!
//! # Resolving unknowns
//! WeCom has no status query for application messages. Its duplicate check only refuses an
//! *identical* request JSON within the interval. So this transport keeps the exact bytes of each
//! call it made (in memory, for the interval), and [`Channel::resolve`] resends those bytes —
//! the same users in the same order, the same content — while the interval is surely still open
//! (as for WeChat: the larger of the two clocks' elapsed times, the timeout and a minute in
//! reserve). If the original went out, WeCom drops the copy; if it did not, the copy is the
//! message: sent once either way, and the answer is the answer. The answer is kept with the
//! call, so the other deliveries of that call are resolved from it without another request.
//! A request cannot be rebuilt byte-identical from the deliveries alone (which deliveries shared
//! a call is not in the ledger), so after a restart, or once the interval has passed, an unknown
//! stays `Unknown` for an operator to decide, and says why.
//!
//! The copies are held for the interval: about one request body (the user list and the content)
//! per call made in the last `duplicate_check_interval` seconds.
//!
//! A consequence of the duplicate check worth knowing: a second job with exactly the same
//! content to exactly the same users within the interval is dropped by WeCom as a duplicate.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, FixedOffset};
use serde::Deserialize;
use serde_json::{Value, json};

use super::http::{self, Secret};
use super::wechat::{
    Blocked, FirstAttempt, SentLog, Token, TokenCache, common_problems, default_timeout_ms,
    errtext, log_config_problems, mask_id, post_json, scrub_credentials, scrub_outcome,
    shared_token_cache, status_outcome, token_call_failed, token_refused_twice,
    token_status_outcome,
};
use super::{Batch, BoxFuture, Channel, Outcome};
use crate::job::{ChannelKind, Job};
use crate::render::Rendered;

pub const DEFAULT_ENDPOINT: &str = "https://qyapi.weixin.qq.com";

/// `touser` takes at most 1,000 ids (§4.2).
pub const MAX_USERS_PER_CALL: usize = 1000;

/// `markdown.content` and `text.content` are at most 2,048 bytes (§4.2).
pub const MAX_MARKDOWN_BYTES: usize = 2048;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WecomMsgType {
    /// The rendered `wecom.md.hbs` as is (renders in the WeCom client).
    #[default]
    Markdown,
    /// A card: the job's title, the text as plain text, and a link to the full notice.
    Textcard,
}

/// `type = "wecom_app"` in `channels/wecom.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WecomConfig {
    #[serde(default = "default_endpoint")]
    pub endpoint: String,
    /// The organisation's CorpID.
    pub corpid: String,
    /// The application's AgentId.
    pub agentid: u64,
    /// Name of the environment variable holding the application's Secret.
    pub secret_env: String,
    #[serde(default)]
    pub msgtype: WecomMsgType,
    /// The card's link when the job's `data.url` gives none (required for `textcard`).
    #[serde(default)]
    pub card_url: Option<String>,
    /// Seconds in which WeCom drops an identical request (default 1800).
    #[serde(default = "default_interval")]
    pub duplicate_check_interval: u64,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_endpoint() -> String {
    DEFAULT_ENDPOINT.to_string()
}
fn default_interval() -> u64 {
    1800
}

impl WecomConfig {
    /// Pure checks; every problem at once.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = common_problems(&self.endpoint, &self.secret_env, self.timeout_ms);
        if self.corpid.is_empty() || !self.corpid.bytes().all(|b| b.is_ascii_alphanumeric()) {
            problems.push(format!(
                "corpid {:?} must be the organisation's CorpID (letters and digits, e.g. ww0123456789abcdef)",
                self.corpid
            ));
        }
        if self.agentid == 0 {
            problems.push("agentid must be the application's AgentId (a positive number)".into());
        }
        // The upper bound is from SDK comments (4 h), not the official page (providers.md §4.2).
        if !(1..=14_400).contains(&self.duplicate_check_interval) {
            problems.push(format!(
                "duplicate_check_interval {} must be 1–14400 seconds",
                self.duplicate_check_interval
            ));
        }
        match (&self.msgtype, &self.card_url) {
            (WecomMsgType::Textcard, None) => problems.push(
                "msgtype \"textcard\" needs card_url: the card's link when a job's data has no url"
                    .into(),
            ),
            (_, Some(u)) if !(u.starts_with("https://") || u.starts_with("http://")) => {
                problems.push(format!("card_url {u:?} must be an http:// or https:// URL"))
            }
            _ => {}
        }
        problems
    }
}

/// errcodes that mean the deployment, not the message, is wrong (§4.4).
const CONFIG_CODES: &[&str] = &[
    "40001", "40013", "40056", "48002", "60020", "301002", "40091", "41002", "41004",
];

/// errcodes of a stale or invalid token (40001 is the *secret* in WeCom, not the token).
const TOKEN_CODES: &[i64] = &[40014, 42001, 41001];

/// What WeCom settled for one call: who got it, or that nobody could.
#[derive(Debug, Clone, PartialEq)]
enum Settled {
    Sent {
        msgid: Option<String>,
        /// Lower-cased, as WeCom lists them.
        invalid: HashSet<String>,
        unlicensed: HashSet<String>,
    },
    AllInvalid(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Answer {
    Settled(Settled),
    TokenRejected(String),
    Done(Outcome),
}

fn id_set(v: &Value, field: &str) -> HashSet<String> {
    v.get(field)
        .and_then(Value::as_str)
        .unwrap_or("")
        .split('|')
        .filter(|s| !s.is_empty())
        .map(|s| s.to_lowercase())
        .collect()
}

/// Read a message/send answer (pure: tested without a network).
fn classify_send(status: u16, retry_after: Option<Duration>, body: &str) -> Answer {
    if !(200..300).contains(&status) {
        return Answer::Done(status_outcome(status, retry_after));
    }
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return Answer::Done(Outcome::Unknown {
            detail: "the answer to the send was not JSON; it may have been sent".into(),
        });
    };
    let Some(code) = v.get("errcode").and_then(Value::as_i64) else {
        return Answer::Done(Outcome::Unknown {
            detail: "the answer to the send had no errcode; it may have been sent".into(),
        });
    };
    let text = errtext(&v);
    let failed = |permanent: bool, what: &str| {
        Answer::Done(Outcome::Failed {
            code: code.to_string(),
            permanent,
            detail: format!("{what} ({text})"),
        })
    };
    match code {
        0 => Answer::Settled(Settled::Sent {
            msgid: v.get("msgid").and_then(|m| match m {
                Value::String(s) if !s.is_empty() => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            }),
            invalid: id_set(&v, "invaliduser"),
            unlicensed: id_set(&v, "unlicenseduser"),
        }),
        c if TOKEN_CODES.contains(&c) => Answer::TokenRejected(text),
        81013 => Answer::Settled(Settled::AllInvalid(text)),
        -1 => failed(false, "WeCom was busy and took nothing"),
        45009 => Answer::Done(Outcome::RetryAfter {
            after: Duration::from_secs(60),
            code: "45009".into(),
        }),
        45033 => Answer::Done(Outcome::RetryAfter {
            after: Duration::from_secs(10),
            code: "45033".into(),
        }),
        40001 => failed(true, "invalid secret: check secret_env"),
        40013 => failed(true, "invalid corpid: check corpid in the channel file"),
        40056 => failed(true, "invalid agentid: check agentid in the channel file"),
        48002 => failed(true, "the application may not use this API"),
        60020 => failed(
            true,
            "this server's IP is not in the application's trusted IPs",
        ),
        301002 => failed(true, "the token belongs to a different application"),
        _ => failed(true, "WeCom refused the message"),
    }
}

/// Read a gettoken answer (pure). Nothing is sent by a token fetch, so never `Unknown`.
fn classify_token(
    status: u16,
    retry_after: Option<Duration>,
    body: &str,
) -> Result<(Secret, Duration), Outcome> {
    if !(200..300).contains(&status) {
        return Err(token_status_outcome(status, retry_after));
    }
    let unavailable = |detail: String| Outcome::Failed {
        code: "token_unavailable".into(),
        permanent: false,
        detail,
    };
    let v: Value = serde_json::from_str(body)
        .map_err(|_| unavailable("the gettoken answer was not JSON; nothing was sent".into()))?;
    let code = v.get("errcode").and_then(Value::as_i64).unwrap_or(0);
    if code == 0
        && let (Some(token), Some(ttl)) = (
            v.get("access_token").and_then(Value::as_str),
            v.get("expires_in").and_then(Value::as_u64),
        )
        && !token.is_empty()
    {
        return Ok((Secret::new(token), Duration::from_secs(ttl)));
    }
    let text = errtext(&v);
    Err(match code {
        40001 | 40013 | 60020 | 40091 | 41002 | 41004 => Outcome::Failed {
            code: code.to_string(),
            permanent: true,
            detail: format!("gettoken refused the corpid or the secret from secret_env ({text})"),
        },
        45009 | 45033 => Outcome::RetryAfter {
            after: Duration::from_secs(60),
            code: code.to_string(),
        },
        _ => unavailable(format!("gettoken failed ({text}); nothing was sent")),
    })
}

/// One request made: its exact bytes (for the duplicate check) and, once known, what WeCom
/// settled for it.
struct Call {
    body: String,
    settled: Mutex<Option<Settled>>,
}

/// The `wecom_app` transport.
pub struct WecomApp {
    cfg: WecomConfig,
    secret: Secret,
    client: reqwest::Client,
    tokens: Arc<TokenCache>,
    /// Delivery id → the call that carried it, since its first attempt.
    calls: Mutex<SentLog<i64, Arc<Call>>>,
    /// A limit reached: no calls before its time.
    blocked: Blocked,
}

impl WecomApp {
    /// Build from the channel file; reads the Secret from `secret_env` (fails fast, naming the
    /// variable, when it is missing).
    pub fn new(cfg: &WecomConfig) -> Result<WecomApp, String> {
        let problems = cfg.validate();
        if !problems.is_empty() {
            return Err(format!("channel wecom: {}", problems.join("; ")));
        }
        let secret = Secret::from_env(&cfg.secret_env, "channel wecom")?;
        let mut cfg = cfg.clone();
        cfg.endpoint = cfg.endpoint.trim_end_matches('/').to_string();
        let client = http::client(Duration::from_millis(cfg.timeout_ms))?;
        let tokens = shared_token_cache(&cfg.endpoint, &cfg.corpid, &secret);
        let keep = Duration::from_secs(cfg.duplicate_check_interval);
        Ok(WecomApp {
            cfg,
            secret,
            client,
            tokens,
            calls: Mutex::new(SentLog::new(keep)),
            blocked: Blocked::new("wecom", "WeCom limit"),
        })
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.cfg.timeout_ms)
    }

    fn interval(&self) -> Duration {
        Duration::from_secs(self.cfg.duplicate_check_interval)
    }

    fn scrub(&self, text: &str, token: Option<&Token>) -> String {
        scrub_credentials(text, &self.secret, token)
    }

    fn scrub_outcome(&self, o: Outcome, token: Option<&Token>) -> Outcome {
        scrub_outcome(o, &self.secret, token)
    }

    async fn token(&self) -> Result<Token, Outcome> {
        self.tokens
            .get(|| async move {
                let url = format!("{}/cgi-bin/gettoken", self.cfg.endpoint);
                let resp = self
                    .client
                    .get(&url)
                    .query(&[
                        ("corpid", self.cfg.corpid.as_str()),
                        ("corpsecret", self.secret.expose()),
                    ])
                    .send()
                    .await
                    .map_err(|e| self.scrub_outcome(token_call_failed(&e), None))?;
                let status = resp.status().as_u16();
                let retry = http::retry_after(resp.headers());
                let text = resp
                    .text()
                    .await
                    .map_err(|e| self.scrub_outcome(token_call_failed(&e), None))?;
                classify_token(status, retry, &text).map_err(|o| self.scrub_outcome(o, None))
            })
            .await
    }

    async fn post(&self, token: &Token, body: &str) -> Answer {
        let url = format!("{}/cgi-bin/message/send", self.cfg.endpoint);
        let (status, retry, text) =
            match post_json(&self.client, &url, body, &self.secret, token).await {
                Ok(answer) => answer,
                Err(outcome) => return Answer::Done(outcome),
            };
        match classify_send(status, retry, &text) {
            Answer::Done(o) => Answer::Done(self.scrub_outcome(o, Some(token))),
            Answer::TokenRejected(t) => Answer::TokenRejected(self.scrub(&t, Some(token))),
            a => a,
        }
    }

    /// Make (or, with `window`, repeat byte for byte) one call: token, request, and on a token
    /// error one refresh and one retry of the same bytes. What WeCom settles is kept with the
    /// call.
    async fn call(
        &self,
        call: &Call,
        now: DateTime<FixedOffset>,
        window: Option<FirstAttempt>,
    ) -> Result<Settled, Outcome> {
        if let Some(b) = self.blocked.check(now) {
            return Err(b);
        }
        let mut token = self.token().await?;
        let mut refreshed = false;
        loop {
            if let Some(b) = self.blocked.check(now) {
                return Err(b);
            }
            if window.is_some_and(|w| !w.inside(now, self.interval(), self.timeout())) {
                return Err(outside_interval());
            }
            match self.post(&token, &call.body).await {
                Answer::Settled(s) => {
                    *call.settled.lock().unwrap_or_else(|e| e.into_inner()) = Some(s.clone());
                    return Ok(s);
                }
                Answer::Done(outcome) => {
                    if let Outcome::RetryAfter { after, code } = &outcome {
                        self.blocked.block(now, *after, code);
                    }
                    return Err(outcome);
                }
                Answer::TokenRejected(text) if !refreshed => {
                    refreshed = true;
                    tracing::info!(channel = "wecom", answer = %text, "access token refused; fetching a fresh one and retrying once");
                    self.tokens.invalidate(&token).await;
                    token = self.token().await?;
                }
                Answer::TokenRejected(text) => {
                    tracing::error!(channel = "wecom", answer = %text, "a freshly fetched access token was refused too; giving this call up for now");
                    return Err(token_refused_twice(&text));
                }
            }
        }
    }

    /// The `msgtype` part of a request for this content.
    fn content(&self, job: &Job, rendered: &Rendered) -> Result<(&'static str, Value), Outcome> {
        let Rendered::Wecom { markdown } = rendered else {
            return Err(Outcome::Failed {
                code: "wrong_content".into(),
                permanent: true,
                detail: "the wecom channel was handed content that is not a WeCom message".into(),
            });
        };
        match self.cfg.msgtype {
            WecomMsgType::Markdown => {
                // Art 3 (accuracy): a notice is not cut short silently; the template must be.
                if markdown.len() > MAX_MARKDOWN_BYTES {
                    return Err(Outcome::Failed {
                        code: "content_too_long".into(),
                        permanent: true,
                        detail: format!(
                            "the rendered wecom.md.hbs is {} bytes; WeCom takes at most {MAX_MARKDOWN_BYTES} (shorten the template or use msgtype = \"textcard\")",
                            markdown.len()
                        ),
                    });
                }
                Ok(("markdown", json!({ "content": markdown })))
            }
            WecomMsgType::Textcard => {
                let url = job
                    .data
                    .get("url")
                    .and_then(Value::as_str)
                    .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
                    .map(str::to_string)
                    .or_else(|| self.cfg.card_url.clone())
                    .unwrap_or_default();
                // A card is a pointer to the full notice: title and summary may be shortened
                // (WeCom would cut them anyway, §4.2), the link carries the whole text.
                Ok((
                    "textcard",
                    json!({
                        "title": truncate_bytes(&job.title, 128),
                        "description": truncate_bytes(&plain_text(markdown), 512),
                        "url": url,
                    }),
                ))
            }
        }
    }

    /// Send one group of deliveries with the same content; outcomes by index into the batch.
    async fn send_group(
        &self,
        batch: &Batch,
        idx: &[usize],
        msgtype: &str,
        part: &Value,
        out: &mut [Option<Outcome>],
    ) {
        // Sorted, without repeats (WeCom ids are case-insensitive): the request is a pure
        // function of who and what.
        let mut users: BTreeMap<String, String> = BTreeMap::new();
        for &i in idx {
            let id = batch.items[i].address.clone().unwrap_or_default();
            users.entry(id.to_lowercase()).or_insert(id);
        }
        let users: Vec<(String, String)> = users.into_iter().collect();
        for chunk in users.chunks(MAX_USERS_PER_CALL) {
            let touser: Vec<&str> = chunk.iter().map(|(_, id)| id.as_str()).collect();
            let lower: HashSet<&str> = chunk.iter().map(|(l, _)| l.as_str()).collect();
            let mut body = json!({
                "touser": touser.join("|"),
                "msgtype": msgtype,
                "agentid": self.cfg.agentid,
                "enable_duplicate_check": 1,
                "duplicate_check_interval": self.cfg.duplicate_check_interval,
            });
            body[msgtype] = part.clone();
            let call = Arc::new(Call {
                body: body.to_string(),
                settled: Mutex::new(None),
            });
            let members: Vec<usize> = idx
                .iter()
                .copied()
                .filter(|&i| {
                    let id = batch.items[i].address.as_deref().unwrap_or("");
                    lower.contains(id.to_lowercase().as_str())
                })
                .collect();
            {
                let mut log = self.calls.lock().unwrap_or_else(|e| e.into_inner());
                for &i in &members {
                    log.replace(batch.items[i].delivery_id, batch.now, call.clone());
                }
            }
            let result = self.call(&call, batch.now, None).await;
            for &i in &members {
                out[i] = Some(item_outcome(&batch.items[i].address, &result));
            }
            if let Err(o) = &result
                && !matches!(
                    o,
                    Outcome::Failed {
                        permanent: true,
                        ..
                    }
                )
            {
                tracing::info!(channel = "wecom", users = chunk.len(), outcome = ?o, "application message not delivered");
            }
        }
    }

    async fn deliver_batch(&self, batch: &Batch) -> Vec<Outcome> {
        let mut out: Vec<Option<Outcome>> = vec![None; batch.items.len()];
        let blocked = self.blocked.check(batch.now);
        // Group the deliveries by content (one per job and channel in practice).
        let mut groups: Vec<(&'static str, Value, Vec<usize>)> = Vec::new();
        for (i, item) in batch.items.iter().enumerate() {
            if item.address.as_deref().is_none_or(|a| a.trim().is_empty()) {
                out[i] = Some(Outcome::Skipped {
                    reason: "no_address".into(),
                });
                continue;
            }
            if let Some(b) = &blocked {
                out[i] = Some(b.clone());
                continue;
            }
            match self.content(&batch.job, &item.content) {
                Ok((msgtype, part)) => {
                    match groups
                        .iter_mut()
                        .find(|(t, p, _)| *t == msgtype && *p == part)
                    {
                        Some(g) => g.2.push(i),
                        None => groups.push((msgtype, part, vec![i])),
                    }
                }
                Err(o) => out[i] = Some(o),
            }
        }
        for (msgtype, part, idx) in &groups {
            self.send_group(batch, idx, msgtype, part, &mut out).await;
        }
        let outcomes: Vec<Outcome> = out
            .into_iter()
            .map(|o| {
                o.unwrap_or(Outcome::Unknown {
                    detail: "no answer was recorded for this delivery".into(),
                })
            })
            .collect();
        log_config_problems("wecom", CONFIG_CODES, &outcomes);
        outcomes
    }

    async fn resolve_batch(&self, batch: &Batch) -> Vec<Outcome> {
        let mut out: Vec<Option<Outcome>> = vec![None; batch.items.len()];
        // Deliveries grouped by the call that carried them.
        let mut groups: Vec<(Arc<Call>, FirstAttempt, Vec<usize>)> = Vec::new();
        {
            let log = self.calls.lock().unwrap_or_else(|e| e.into_inner());
            for (i, item) in batch.items.iter().enumerate() {
                match log.get(&item.delivery_id) {
                    Some((first, call)) => {
                        match groups.iter_mut().find(|(c, _, _)| Arc::ptr_eq(c, &call)) {
                            Some(g) => g.2.push(i),
                            None => groups.push((call, first, vec![i])),
                        }
                    }
                    None => out[i] = Some(no_record()),
                }
            }
        }
        for (call, first, idx) in groups {
            let known = call
                .settled
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            let result = match known {
                Some(s) => Ok(s),
                None => self.call(&call, batch.now, Some(first)).await,
            };
            for i in idx {
                out[i] = Some(match &result {
                    Ok(_) => item_outcome(&batch.items[i].address, &result),
                    Err(o @ Outcome::Unknown { .. }) => o.clone(),
                    Err(o) => Outcome::Unknown {
                        detail: format!(
                            "a byte-identical resend inside the duplicate-check interval did not settle it: {o:?}"
                        ),
                    },
                });
            }
        }
        out.into_iter()
            .map(|o| o.unwrap_or_else(no_record))
            .collect()
    }
}

fn outside_interval() -> Outcome {
    Outcome::Unknown {
        detail: "outside the duplicate-check interval: a resend could deliver it twice; WeCom has no status query, so an operator must decide".into(),
    }
}

fn no_record() -> Outcome {
    Outcome::Unknown {
        detail: "WeCom has no status query, and this process holds no copy of the original request (restarted?), so it cannot be repeated byte for byte for the duplicate check; not resent — an operator must decide".into(),
    }
}

/// One delivery's outcome from its call's result.
fn item_outcome(address: &Option<String>, result: &Result<Settled, Outcome>) -> Outcome {
    let id = address.as_deref().unwrap_or("").to_lowercase();
    match result {
        Ok(Settled::Sent {
            msgid,
            invalid,
            unlicensed,
        }) => {
            if invalid.contains(&id) {
                tracing::info!(channel = "wecom", userid = %mask_id(&id), "WeCom listed the user as invalid");
                Outcome::Failed {
                    code: "invaliduser".into(),
                    permanent: true,
                    detail: "WeCom does not know this userid, or it is outside the application's visible range".into(),
                }
            } else if unlicensed.contains(&id) {
                Outcome::Failed {
                    code: "unlicenseduser".into(),
                    permanent: true,
                    detail: "this user has no WeCom licence for the application".into(),
                }
            } else {
                Outcome::Delivered {
                    reference: msgid.clone(),
                }
            }
        }
        Ok(Settled::AllInvalid(text)) => Outcome::Failed {
            code: "81013".into(),
            permanent: true,
            detail: format!(
                "WeCom found every user of the call invalid or out of the application's range ({text})"
            ),
        },
        Err(o) => o.clone(),
    }
}

/// At most `max` bytes, cut at a character boundary, with "…" when cut.
fn truncate_bytes(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The markdown of `wecom.md.hbs` as plain text for a card: emphasis, quote and heading marks
/// dropped, links reduced to their text, blank lines removed.
fn plain_text(markdown: &str) -> String {
    let mut lines = Vec::new();
    for line in markdown.lines() {
        let mut l = line.trim();
        l = l.trim_start_matches('#').trim_start();
        l = l.trim_start_matches('>').trim_start();
        if let Some(rest) = l.strip_prefix("- ").or_else(|| l.strip_prefix("* ")) {
            l = rest;
        }
        let mut s = l.replace("**", "").replace("__", "").replace('`', "");
        // [text](url) → text
        while let Some(open) = s.find('[') {
            let Some(close) = s[open..].find("](").map(|c| open + c) else {
                break;
            };
            let Some(end) = s[close..].find(')').map(|e| close + e) else {
                break;
            };
            s = format!("{}{}{}", &s[..open], &s[open + 1..close], &s[end + 1..]);
        }
        if !s.trim().is_empty() {
            lines.push(s.trim().to_string());
        }
    }
    lines.join("\n")
}

impl Channel for WecomApp {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Wecom
    }

    fn sends_by_address(&self) -> bool {
        true
    }

    fn transport(&self) -> &str {
        "WeCom application messages"
    }

    fn deliver<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Vec<Outcome>> {
        Box::pin(self.deliver_batch(batch))
    }

    fn resolve<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Vec<Outcome>> {
        Box::pin(self.resolve_batch(batch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_answers_map_to_outcomes() {
        let ok = classify_send(
            200,
            None,
            r#"{"errcode":0,"errmsg":"ok","invaliduser":"wangwu|zhaoliu","msgid":"abc"}"#,
        );
        let Answer::Settled(Settled::Sent { msgid, invalid, .. }) = ok else {
            panic!("{ok:?}")
        };
        assert_eq!(msgid.as_deref(), Some("abc"));
        assert_eq!(invalid, HashSet::from(["wangwu".into(), "zhaoliu".into()]));
        assert!(matches!(
            classify_send(
                200,
                None,
                r#"{"errcode":81013,"errmsg":"user & party & tag all invalid"}"#
            ),
            Answer::Settled(Settled::AllInvalid(_))
        ));
        for code in [40014, 42001, 41001] {
            assert!(matches!(
                classify_send(200, None, &format!(r#"{{"errcode":{code},"errmsg":"x"}}"#)),
                Answer::TokenRejected(_)
            ));
        }
        for code in [40001, 40013, 40056, 48002, 60020, 301002] {
            assert!(
                matches!(
                    classify_send(200, None, &format!(r#"{{"errcode":{code},"errmsg":"x"}}"#)),
                    Answer::Done(Outcome::Failed {
                        permanent: true,
                        ..
                    })
                ),
                "{code}"
            );
        }
        assert!(matches!(
            classify_send(200, None, r#"{"errcode":-1,"errmsg":"system busy"}"#),
            Answer::Done(Outcome::Failed {
                permanent: false,
                ..
            })
        ));
        for code in [45009, 45033] {
            assert!(matches!(
                classify_send(200, None, &format!(r#"{{"errcode":{code},"errmsg":"x"}}"#)),
                Answer::Done(Outcome::RetryAfter { .. })
            ));
        }
        assert!(matches!(
            classify_send(200, None, "not json"),
            Answer::Done(Outcome::Unknown { .. })
        ));
    }

    #[test]
    fn cards_are_plain_and_short() {
        let md = "**关于张三同志任职的通知**\n\n经研究，决定：\n> 县委组织部　2026年12月1日\n[全文](https://x.example/1)";
        assert_eq!(
            plain_text(md),
            "关于张三同志任职的通知\n经研究，决定：\n县委组织部　2026年12月1日\n全文"
        );
        let long = "公".repeat(100); // 300 bytes
        let t = truncate_bytes(&long, 128);
        assert!(t.len() <= 128 && t.ends_with('…'), "{t}");
        assert_eq!(truncate_bytes("短", 128), "短");
    }

    #[test]
    fn config_problems_are_reported_together() {
        let cfg = WecomConfig {
            endpoint: "https://qyapi.weixin.qq.com".into(),
            corpid: "".into(),
            agentid: 0,
            secret_env: "WECOM_SECRET".into(),
            msgtype: WecomMsgType::Textcard,
            card_url: None,
            duplicate_check_interval: 0,
            timeout_ms: 10_000,
        };
        assert_eq!(cfg.validate().len(), 4, "{:?}", cfg.validate());
    }

    #[test]
    fn the_channel_file_parses_with_defaults() {
        use crate::channels::{ChannelConfig, Transport};
        let text = "channel = \"wecom\"\n[transport]\ntype = \"wecom_app\"\ncorpid = \"ww0123456789abcdef\"\nagentid = 1000002\nsecret_env = \"WECOM_SECRET\"\n";
        let cfg: ChannelConfig = toml::from_str(text).unwrap();
        let Transport::WecomApp(w) = &cfg.transport else {
            panic!("{cfg:?}")
        };
        assert_eq!(
            (w.endpoint.as_str(), w.msgtype, w.duplicate_check_interval),
            (DEFAULT_ENDPOINT, WecomMsgType::Markdown, 1800)
        );
        assert!(cfg.validate().is_empty(), "{:?}", cfg.validate());
        let card: ChannelConfig =
            toml::from_str(&format!("{text}msgtype = \"textcard\"\n")).unwrap();
        assert_eq!(card.validate().len(), 1, "textcard without card_url");
        assert!(toml::from_str::<ChannelConfig>(&format!("{text}msgtype = \"video\"\n")).is_err());
    }
}
