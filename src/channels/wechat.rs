//! WeChat official-account template messages (模板消息, providers.md §3) for the `wechat`
//! channel: Art 10 lets public disclosures go out "through the network", and the county's
//! official account is where its followers read them.
//!
//! # What a delivery is
//! One `POST /cgi-bin/message/template/send` per openid (the API takes one recipient a call);
//! the calls of a batch run concurrently, at most `parallel_calls` at once, and the engine's
//! `calls_per_second` paces the batches. Each carries a `client_msg_id` derived from the job and
//! the recipient ([`client_msg_id`]), so every attempt of one delivery carries the same id.
//!
//! # Configuration
//! ```toml
//! channel = "wechat"
//! batch_size = 100
//! calls_per_second = 50                  # the engine's pace for the account
//! [transport]
//! type = "wechat_template"
//! appid = "wx0123456789abcdef"
//! secret_env = "WECHAT_APPSECRET"        # the variable's name; the secret stays in the environment
//! # endpoint = "https://api.weixin.qq.com"   timeout_ms = 10000   parallel_calls = 8
//! ```
//!
//! # The access token
//! A stable token (`POST /cgi-bin/stable_token`, `force_refresh: false`) is fetched by one
//! central fetcher per account (`TokenCache`): concurrent sends wait for the one fetch in
//! flight instead of each fetching (providers.md §3.1: "use one central fetcher"). It is renewed
//! when less than five minutes are left (the platform rotates stable tokens five minutes before
//! expiry). A send refused with 40001/40014/42001/41001 drops that token, fetches once more and
//! retries that send once; a second token error is a failure ("not sent"), never a loop.
//!
//! # Outcomes (providers.md §3.4)
//! | answer | outcome |
//! |---|---|
//! | errcode 0 | `Delivered { reference: msgid }` |
//! | 43004 not a follower, 40003 invalid openid, 43101 refused | `Failed { permanent }` for that openid |
//! | 47003 argument invalid | `Failed { permanent }`: the template data does not fit the registered template |
//! | 40013, 40037, 40164, 48001 | `Failed { permanent }` and an error log: the deployment is misconfigured |
//! | 45009 daily quota | `RetryAfter` until 00:00 UTC+8 (the quota's day), and no more calls until then |
//! | 45011 per-minute quota | `RetryAfter` 60 s, and no more calls for that minute |
//! | -1 busy, other errcodes | `Failed { permanent: false }` (refused, so surely not sent) |
//! | HTTP 429 | `RetryAfter` (its `Retry-After`, else 60 s) |
//! | HTTP 503 | `Failed { permanent: false }`: the service took nothing |
//! | other HTTP 5xx, a timeout, a connection lost mid-call, an unreadable answer | `Unknown`: it may have been sent |
//!
//! # Resolving unknowns
//! WeChat has no status query for template messages (the `TEMPLATESENDJOBFINISH` event goes to
//! the account's own callback server, not to us). What it has is `client_msg_id`: the same openid
//! and id send once within ten minutes (§3.2). So [`Channel::resolve`] resends an unknown
//! delivery with its original id while that window is surely still open — then the answer is
//! the answer for the original too: sent once either way. The window is measured from the first
//! attempt this process made, taking the larger of the engine clock's and the monotonic clock's
//! elapsed time, and leaving the call timeout plus a minute in reserve. Outside the window, or
//! when this process holds no record of the first attempt (it was restarted), a resend could
//! deliver the notice twice, so the delivery stays `Unknown` for an operator to decide — the
//! honest answer (SPEC §4: "never blindly resent"). The engine asks again after five minutes,
//! well inside the ten.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, TimeZone};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::http::{self, Secret};
use super::{Batch, BoxFuture, Channel, Outcome};
use crate::job::ChannelKind;
use crate::render::Rendered;

pub const DEFAULT_ENDPOINT: &str = "https://api.weixin.qq.com";

/// `client_msg_id` dedups the same openid and id within ten minutes (providers.md §3.2).
pub const DEDUP_WINDOW: Duration = Duration::from_secs(600);

/// What a resend inside a dedup window keeps in hand beyond its own timeout: clock drift
/// between us and the provider, and the time from the check to the request's arrival.
pub(crate) const WINDOW_RESERVE: Duration = Duration::from_secs(60);

/// Renew a token when less than this is left (stable tokens rotate five minutes before expiry).
pub(crate) const RENEW_MARGIN: Duration = Duration::from_secs(300);

/// `type = "wechat_template"` in `channels/wechat.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WechatConfig {
    /// Base URL of the API (the emulator's in tests).
    #[serde(default = "default_endpoint")]
    pub endpoint: String,
    /// The official account's AppID.
    pub appid: String,
    /// Name of the environment variable holding the AppSecret (never the secret itself).
    pub secret_env: String,
    /// Timeout of one HTTP call, token fetch or send.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Sends of one batch in flight at once.
    #[serde(default = "default_parallel_calls")]
    pub parallel_calls: usize,
}

fn default_endpoint() -> String {
    DEFAULT_ENDPOINT.to_string()
}
pub(crate) fn default_timeout_ms() -> u64 {
    10_000
}
fn default_parallel_calls() -> usize {
    8
}

impl WechatConfig {
    /// Pure checks; every problem at once.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = common_problems(&self.endpoint, &self.secret_env, self.timeout_ms);
        if self.appid.is_empty() || !self.appid.bytes().all(|b| b.is_ascii_alphanumeric()) {
            problems.push(format!(
                "appid {:?} must be the official account's AppID (letters and digits, e.g. wx0123456789abcdef)",
                self.appid
            ));
        }
        if self.parallel_calls == 0 || self.parallel_calls > 64 {
            problems.push(format!(
                "parallel_calls {} must be 1–64",
                self.parallel_calls
            ));
        }
        problems
    }
}

/// Checks shared by the WeChat and WeCom transports.
pub(crate) fn common_problems(endpoint: &str, secret_env: &str, timeout_ms: u64) -> Vec<String> {
    let mut problems = Vec::new();
    if !(endpoint.starts_with("https://") || endpoint.starts_with("http://")) {
        problems.push(format!(
            "endpoint {endpoint:?} must be an http:// or https:// URL"
        ));
    }
    if secret_env.is_empty()
        || !secret_env
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    {
        problems.push(format!(
            "secret_env {secret_env:?} must name an environment variable (A–Z, 0–9, _); the secret itself never goes in this file"
        ));
    }
    if !(100..=120_000).contains(&timeout_ms) {
        problems.push(format!("timeout_ms {timeout_ms} must be 100–120000"));
    }
    problems
}

// ---------------------------------------------------------------------------------------------
// Pieces shared with WeCom: the token cache, the record of first attempts, the window check.
// ---------------------------------------------------------------------------------------------

/// An access token as handed out by a [`TokenCache`]; `generation` tells a token from its
/// successor, so that a send refused with an old token does not drop a fresh one.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub(crate) value: Secret,
    pub(crate) generation: u64,
}

struct Cached {
    token: Token,
    renew_at: Instant,
}

/// How long a failed fetch is remembered, so a batch of concurrent sends facing a broken token
/// endpoint costs one fetch, not one each.
const FAILED_FETCH_HOLD: Duration = Duration::from_secs(2);

/// One central fetcher per account: the lock is held across the fetch, so concurrent callers
/// wait for the fetch in flight and then share its token (single flight).
/// The cached token, and the last failed fetch with when it failed.
type Slot = (Option<Cached>, Option<(Instant, Outcome)>);

pub(crate) struct TokenCache {
    slot: tokio::sync::Mutex<Slot>,
    generation: AtomicU64,
    fetches: AtomicU64,
    /// The monotonic clock; tests set their own to step through a token's life.
    clock: Box<dyn Fn() -> Instant + Send + Sync>,
}

impl TokenCache {
    pub(crate) fn new() -> TokenCache {
        TokenCache::with_clock(Box::new(Instant::now))
    }

    pub(crate) fn with_clock(clock: Box<dyn Fn() -> Instant + Send + Sync>) -> TokenCache {
        TokenCache {
            slot: tokio::sync::Mutex::new((None, None)),
            generation: AtomicU64::new(0),
            fetches: AtomicU64::new(0),
            clock,
        }
    }

    /// The cached token, or a fresh one from `fetch` (token and lifetime) when there is none or
    /// less than [`RENEW_MARGIN`] (at most half its life) is left. A failed fetch gives the
    /// outcome for the sends that needed it; it is never `Unknown` (nothing was sent).
    pub(crate) async fn get<F, Fut>(&self, fetch: F) -> Result<Token, Outcome>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(Secret, Duration), Outcome>>,
    {
        let mut slot = self.slot.lock().await;
        let now = (self.clock)();
        if let Some(c) = &slot.0
            && now < c.renew_at
        {
            return Ok(c.token.clone());
        }
        if let Some((at, outcome)) = &slot.1
            && now.duration_since(*at) < FAILED_FETCH_HOLD
        {
            return Err(outcome.clone());
        }
        self.fetches.fetch_add(1, Ordering::Relaxed);
        match fetch().await {
            Ok((value, ttl)) => {
                let token = Token {
                    value,
                    generation: self.generation.fetch_add(1, Ordering::Relaxed) + 1,
                };
                let margin = RENEW_MARGIN.min(ttl / 2);
                *slot = (
                    Some(Cached {
                        token: token.clone(),
                        renew_at: (self.clock)() + ttl - margin,
                    }),
                    None,
                );
                Ok(token)
            }
            Err(outcome) => {
                slot.1 = Some(((self.clock)(), outcome.clone()));
                Err(outcome)
            }
        }
    }

    /// Drop `used` because the provider refused it; a newer token already in the cache stays.
    pub(crate) async fn invalidate(&self, used: &Token) {
        let mut slot = self.slot.lock().await;
        if slot
            .0
            .as_ref()
            .is_some_and(|c| c.token.generation == used.generation)
        {
            slot.0 = None;
        }
        slot.1 = None;
    }

    /// Fetches made so far (for tests and the start-up log).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }
}

/// The token cache of one account in this process, shared by every channel built for it
/// (providers.md §3.1, §4.1: one fetcher per account and secret). The key holds a hash of the
/// secret, never the secret.
pub(crate) fn shared_token_cache(
    endpoint: &str,
    account: &str,
    secret: &Secret,
) -> Arc<TokenCache> {
    static CACHES: OnceLock<Mutex<HashMap<String, Arc<TokenCache>>>> = OnceLock::new();
    let key = format!(
        "{endpoint}\n{account}\n{}",
        crate::ledger::audit::sha256_hex(secret.expose().as_bytes())
    );
    CACHES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(key)
        .or_insert_with(|| Arc::new(TokenCache::new()))
        .clone()
}

/// When a request was first made: by the engine's clock (tests and drills set it) and by the
/// monotonic clock (which no setting moves).
#[derive(Debug, Clone, Copy)]
pub(crate) struct FirstAttempt {
    pub(crate) at: DateTime<FixedOffset>,
    pub(crate) instant: Instant,
}

impl FirstAttempt {
    pub(crate) fn new(at: DateTime<FixedOffset>) -> FirstAttempt {
        FirstAttempt {
            at,
            instant: Instant::now(),
        }
    }

    /// Whether a request made now surely reaches the provider while a dedup `window` opened by
    /// this first attempt is still open: the provider's window starts no earlier than the first
    /// attempt, and the request may take `timeout` to arrive. The larger of the two clocks'
    /// elapsed times counts, so neither a clock set back nor a stale `now` can stretch it.
    pub(crate) fn inside(
        &self,
        now: DateTime<FixedOffset>,
        window: Duration,
        timeout: Duration,
    ) -> bool {
        let by_clock = (now - self.at).to_std().unwrap_or(Duration::ZERO);
        let elapsed = by_clock.max(self.instant.elapsed());
        elapsed + timeout + WINDOW_RESERVE < window
    }
}

/// First attempts of the last `keep` (real time), oldest first so pruning is cheap.
pub(crate) struct SentLog<K, V> {
    map: HashMap<K, (FirstAttempt, V)>,
    order: VecDeque<(Instant, K)>,
    keep: Duration,
}

impl<K: Eq + Hash + Clone, V: Clone> SentLog<K, V> {
    pub(crate) fn new(keep: Duration) -> SentLog<K, V> {
        SentLog {
            map: HashMap::new(),
            order: VecDeque::new(),
            keep,
        }
    }

    fn prune(&mut self) {
        while let Some((at, _)) = self.order.front() {
            if at.elapsed() <= self.keep {
                break;
            }
            let (at, key) = self.order.pop_front().expect("front exists");
            if self.map.get(&key).is_some_and(|(f, _)| f.instant == at) {
                self.map.remove(&key);
            }
        }
    }

    /// Record a first attempt unless one is recorded (the earliest bounds the window).
    pub(crate) fn first(&mut self, key: K, at: DateTime<FixedOffset>, value: V) {
        self.prune();
        if !self.map.contains_key(&key) {
            let first = FirstAttempt::new(at);
            self.order.push_back((first.instant, key.clone()));
            self.map.insert(key, (first, value));
        }
    }

    /// Record an attempt, replacing an earlier one (WeCom: a new request under that key).
    pub(crate) fn replace(&mut self, key: K, at: DateTime<FixedOffset>, value: V) {
        self.prune();
        let first = FirstAttempt::new(at);
        self.order.push_back((first.instant, key.clone()));
        self.map.insert(key, (first, value));
    }

    pub(crate) fn get(&self, key: &K) -> Option<(FirstAttempt, V)> {
        self.map.get(key).cloned()
    }
}

/// 00:00 of the next day in UTC+8 — when a WeChat daily quota starts again (providers.md §3.4,
/// 45009; §4.3: "day limits the natural day").
pub fn until_next_day(now: DateTime<FixedOffset>) -> Duration {
    let china = crate::clock::china();
    let local = now.with_timezone(&china);
    let next = local.date_naive().succ_opt().unwrap_or(local.date_naive());
    let midnight = china
        .from_local_datetime(&next.and_hms_opt(0, 0, 0).expect("00:00 exists"))
        .single()
        .expect("UTC+8 has no gaps");
    (midnight - local).to_std().unwrap_or(Duration::ZERO)
}

/// Provider text in a detail or log, with the secret and the token blanked out in case it was
/// ever echoed back.
pub(crate) fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut s: String = text.chars().take(300).collect();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        s = s.replace(secret, "***");
    }
    s
}

/// Answer text of a provider: `errcode errmsg`.
pub(crate) fn errtext(v: &Value) -> String {
    let code = v.get("errcode").and_then(Value::as_i64).unwrap_or(0);
    let msg = v.get("errmsg").and_then(Value::as_str).unwrap_or("");
    format!("{code} {msg}")
}

/// An openid or userid for a log line: enough to tell two apart, not enough to use.
pub(crate) fn mask_id(id: &str) -> String {
    crate::phone::mask(id)
}

/// The outcome of an HTTP status other than 2xx on a *send* (not a token fetch).
pub(crate) fn status_outcome(status: u16, retry_after: Option<Duration>) -> Outcome {
    match status {
        429 => Outcome::RetryAfter {
            after: retry_after.unwrap_or(Duration::from_secs(60)),
            code: "http_429".into(),
        },
        // 503 and 408 say the request was not taken; 500, 502 and 504 come from a gateway that
        // may have passed it on.
        503 | 408 => Outcome::Failed {
            code: format!("http_{status}"),
            permanent: false,
            detail: format!("HTTP {status}: the provider took nothing"),
        },
        s if s >= 500 => Outcome::Unknown {
            detail: format!("HTTP {status} from the provider; the message may have been taken"),
        },
        s => Outcome::Failed {
            code: format!("http_{s}"),
            permanent: true,
            detail: format!("HTTP {s}: the provider refused the request (check endpoint)"),
        },
    }
}

/// The outcome of an HTTP status other than 2xx on a token fetch: nothing was sent, so never
/// `Unknown`.
pub(crate) fn token_status_outcome(status: u16, retry_after: Option<Duration>) -> Outcome {
    match status {
        429 => Outcome::RetryAfter {
            after: retry_after.unwrap_or(Duration::from_secs(60)),
            code: "http_429".into(),
        },
        s => Outcome::Failed {
            code: "token_unavailable".into(),
            permanent: false,
            detail: format!("the token endpoint answered HTTP {s}; nothing was sent"),
        },
    }
}

/// A transport failure of a token fetch: nothing was sent.
pub(crate) fn token_call_failed(e: &reqwest::Error) -> Outcome {
    let detail = match http::call_failed(e) {
        Outcome::Failed { detail, .. } | Outcome::Unknown { detail } => detail,
        _ => String::new(),
    };
    Outcome::Failed {
        code: "token_unavailable".into(),
        permanent: false,
        detail: format!("fetching the access token failed; nothing was sent: {detail}"),
    }
}

/// The calls an account (WeChat) or application (WeCom) may not make before a time: a quota or
/// rate limit reached is the whole account's, so until it resets no token is fetched and no call
/// is made (each would only be refused again). Times are the engine's clock.
pub(crate) struct Blocked {
    until: Mutex<Option<(DateTime<FixedOffset>, String)>>,
    /// `channel` of the log line.
    channel: &'static str,
    /// What was reached, for the log line ("WeChat quota").
    what: &'static str,
}

impl Blocked {
    pub(crate) fn new(channel: &'static str, what: &'static str) -> Blocked {
        Blocked {
            until: Mutex::new(None),
            channel,
            what,
        }
    }

    /// While a block holds: how long it still does, with the code that set it.
    pub(crate) fn check(&self, now: DateTime<FixedOffset>) -> Option<Outcome> {
        let b = self.until.lock().unwrap_or_else(|e| e.into_inner());
        let (until, code) = b.as_ref()?;
        let left = (*until - now).to_std().ok().filter(|d| !d.is_zero())?;
        Some(Outcome::RetryAfter {
            after: left,
            code: code.clone(),
        })
    }

    /// No calls for `after` from `now` (a later block already set is kept).
    pub(crate) fn block(&self, now: DateTime<FixedOffset>, after: Duration, code: &str) {
        let until = now + chrono::Duration::from_std(after).unwrap_or(chrono::Duration::zero());
        let mut b = self.until.lock().unwrap_or_else(|e| e.into_inner());
        if b.as_ref().is_none_or(|(u, _)| *u < until) {
            tracing::warn!(channel = self.channel, code, until = %until.format("%Y-%m-%d %H:%M:%S"), "{} reached; no calls until then", self.what);
            *b = Some((until, code.to_string()));
        }
    }
}

/// [`scrub`] with the app secret and, when given, the access token.
pub(crate) fn scrub_credentials(text: &str, secret: &Secret, token: Option<&Token>) -> String {
    let mut secrets = vec![secret.expose()];
    if let Some(t) = token {
        secrets.push(t.value.expose());
    }
    scrub(text, &secrets)
}

/// `o` with its detail scrubbed of the app secret and the access token.
pub(crate) fn scrub_outcome(o: Outcome, secret: &Secret, token: Option<&Token>) -> Outcome {
    match o {
        Outcome::Failed {
            code,
            permanent,
            detail,
        } => Outcome::Failed {
            code,
            permanent,
            detail: scrub_credentials(&detail, secret, token),
        },
        Outcome::Unknown { detail } => Outcome::Unknown {
            detail: scrub_credentials(&detail, secret, token),
        },
        other => other,
    }
}

/// POST a JSON `body` to `url` with the access token in the query, as both APIs take a send:
/// the answer's HTTP status, Retry-After and text, or the failure of the call (scrubbed).
pub(crate) async fn post_json(
    client: &reqwest::Client,
    url: &str,
    body: &str,
    secret: &Secret,
    token: &Token,
) -> Result<(u16, Option<Duration>, String), Outcome> {
    let failed = |e: reqwest::Error| scrub_outcome(http::call_failed(&e), secret, Some(token));
    let resp = client
        .post(url)
        .query(&[("access_token", token.value.expose())])
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(failed)?;
    let status = resp.status().as_u16();
    let retry = http::retry_after(resp.headers());
    let text = resp.text().await.map_err(failed)?;
    Ok((status, retry, text))
}

/// A token refused again just after a refresh: nothing was sent, and the next attempt (not a
/// loop here) may find the provider settled.
pub(crate) fn token_refused_twice(text: &str) -> Outcome {
    Outcome::Failed {
        code: text.split(' ').next().unwrap_or("token").to_string(),
        permanent: false,
        detail: format!(
            "the access token was refused twice, the second time just after a refresh ({text}); not sent"
        ),
    }
}

/// Run `work` for each input with at most `limit` in flight; outcomes in input order. A task
/// that dies mid-call leaves its delivery `Unknown` (it may have sent).
pub(crate) async fn run_bounded<T, F, Fut>(inputs: Vec<T>, limit: usize, work: F) -> Vec<Outcome>
where
    T: Send + 'static,
    F: Fn(T) -> Fut,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let n = inputs.len();
    let permits = Arc::new(tokio::sync::Semaphore::new(limit.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for (i, input) in inputs.into_iter().enumerate() {
        let fut = work(input);
        let permits = permits.clone();
        set.spawn(async move {
            let _permit = permits.acquire_owned().await;
            (i, fut.await)
        });
    }
    let mut out: Vec<Option<Outcome>> = vec![None; n];
    while let Some(res) = set.join_next().await {
        if let Ok((i, outcome)) = res {
            out[i] = Some(outcome);
        }
    }
    out.into_iter()
        .map(|o| {
            o.unwrap_or(Outcome::Unknown {
                detail: "the send task stopped mid-call; it may have been sent".into(),
            })
        })
        .collect()
}

/// Log configuration problems once per batch, loudly, with how many deliveries they cost.
pub(crate) fn log_config_problems(channel: &str, config_codes: &[&str], outcomes: &[Outcome]) {
    let mut seen: Vec<(&str, &str, usize)> = Vec::new();
    for o in outcomes {
        if let Outcome::Failed {
            code,
            permanent: true,
            detail,
        } = o
            && config_codes.contains(&code.as_str())
        {
            match seen.iter_mut().find(|(c, _, _)| *c == code) {
                Some(s) => s.2 += 1,
                None => seen.push((code, detail, 1)),
            }
        }
    }
    for (code, detail, deliveries) in seen {
        tracing::error!(
            channel,
            code,
            deliveries,
            detail,
            "provider refused the deployment's configuration; these deliveries failed permanently — fix the channel file or the account"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The WeChat transport.
// ---------------------------------------------------------------------------------------------

/// errcodes that mean the deployment, not the message, is wrong (providers.md §3.4).
const CONFIG_CODES: &[&str] = &[
    "40001", "40002", "40013", "40037", "40125", "40164", "41004", "48001",
];

/// errcodes of a stale or invalid token: refresh and retry once (§3.1; WxJava's list plus
/// 41001 "token missing").
const TOKEN_CODES: &[i64] = &[40001, 40014, 42001, 41001];

/// The `client_msg_id` of one delivery: the first 32 hex digits of SHA-256 over job id,
/// channel and recipient id. Deterministic, so every attempt and the status query's resend
/// carry the same id; 32 characters of `[0-9a-f]` because WeChat documents no format beyond
/// "a string" and short plain ids are what its examples use.
pub fn client_msg_id(job_id: &str, recipient: &str) -> String {
    let mut id =
        crate::ledger::audit::sha256_hex(format!("{job_id}\nwechat\n{recipient}").as_bytes());
    id.truncate(32);
    id
}

/// What one template/send call came to.
#[derive(Debug, Clone, PartialEq)]
enum SendAnswer {
    Accepted(Option<String>),
    TokenRejected(String),
    Done(Outcome),
}

/// Read a template/send answer (pure: tested without a network).
fn classify_send(
    status: u16,
    retry_after: Option<Duration>,
    body: &str,
    now: DateTime<FixedOffset>,
) -> SendAnswer {
    if !(200..300).contains(&status) {
        return SendAnswer::Done(status_outcome(status, retry_after));
    }
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return SendAnswer::Done(Outcome::Unknown {
            detail: "the answer to the send was not JSON; it may have been sent".into(),
        });
    };
    let msgid = v.get("msgid").and_then(|m| match m {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    });
    let Some(code) = v
        .get("errcode")
        .and_then(Value::as_i64)
        .or(msgid.as_ref().map(|_| 0))
    else {
        return SendAnswer::Done(Outcome::Unknown {
            detail: "the answer to the send had neither errcode nor msgid; it may have been sent"
                .into(),
        });
    };
    let text = errtext(&v);
    let failed = |permanent: bool, what: &str| {
        SendAnswer::Done(Outcome::Failed {
            code: code.to_string(),
            permanent,
            detail: format!("{what} ({text})"),
        })
    };
    match code {
        0 => SendAnswer::Accepted(msgid),
        c if TOKEN_CODES.contains(&c) => SendAnswer::TokenRejected(text),
        43004 => failed(true, "the recipient does not follow the official account"),
        40003 => failed(true, "WeChat does not know this openid for the account"),
        43101 => failed(true, "the user refused messages from the account"),
        47003 => failed(
            true,
            "the template data does not fit the registered template (fix templates/*/wechat.toml)",
        ),
        40013 => failed(true, "invalid appid: check appid in the channel file"),
        40037 => failed(true, "invalid template_id: check templates/*/wechat.toml"),
        40164 => failed(
            true,
            "this server's IP is not on the account's IP whitelist",
        ),
        48001 => failed(true, "the account is not authorised for template messages"),
        45009 => SendAnswer::Done(Outcome::RetryAfter {
            after: until_next_day(now),
            code: "45009".into(),
        }),
        45011 => SendAnswer::Done(Outcome::RetryAfter {
            after: Duration::from_secs(60),
            code: "45011".into(),
        }),
        -1 => failed(false, "WeChat was busy and took nothing"),
        _ => failed(false, "WeChat refused the message"),
    }
}

/// Read a stable_token answer (pure).
fn classify_token(
    status: u16,
    retry_after: Option<Duration>,
    body: &str,
    now: DateTime<FixedOffset>,
) -> Result<(Secret, Duration), Outcome> {
    if !(200..300).contains(&status) {
        return Err(token_status_outcome(status, retry_after));
    }
    let unavailable = |detail: String| Outcome::Failed {
        code: "token_unavailable".into(),
        permanent: false,
        detail,
    };
    let v: Value = serde_json::from_str(body).map_err(|_| {
        unavailable("the stable_token answer was not JSON; nothing was sent".into())
    })?;
    if let (Some(token), Some(ttl)) = (
        v.get("access_token").and_then(Value::as_str),
        v.get("expires_in").and_then(Value::as_u64),
    ) && !token.is_empty()
    {
        return Ok((Secret::new(token), Duration::from_secs(ttl)));
    }
    let code = v.get("errcode").and_then(Value::as_i64).unwrap_or(0);
    let text = errtext(&v);
    Err(match code {
        45009 => Outcome::RetryAfter {
            after: until_next_day(now),
            code: "45009".into(),
        },
        45011 => Outcome::RetryAfter {
            after: Duration::from_secs(60),
            code: "45011".into(),
        },
        // 40001 here is "AppSecret wrong" (§3.1), 40125 "invalid appsecret".
        40001 | 40125 | 41004 | 40002 => Outcome::Failed {
            code: code.to_string(),
            permanent: true,
            detail: format!("stable_token refused the AppSecret from secret_env ({text})"),
        },
        40013 | 40164 => Outcome::Failed {
            code: code.to_string(),
            permanent: true,
            detail: format!("stable_token refused the account's configuration ({text})"),
        },
        0 => unavailable("the stable_token answer had no access_token; nothing was sent".into()),
        _ => unavailable(format!("stable_token failed ({text}); nothing was sent")),
    })
}

struct Inner {
    cfg: WechatConfig,
    secret: Secret,
    client: reqwest::Client,
    tokens: Arc<TokenCache>,
    /// First attempt of each (openid, client_msg_id): the start of its dedup window.
    sent: Mutex<SentLog<(String, String), ()>>,
    /// A quota reached: no calls before its time.
    blocked: Blocked,
}

/// The `wechat_template` transport.
pub struct WechatTemplate {
    inner: Arc<Inner>,
}

impl WechatTemplate {
    /// Build from the channel file; reads the AppSecret from `secret_env` (fails fast, naming
    /// the variable, when it is missing).
    pub fn new(cfg: &WechatConfig) -> Result<WechatTemplate, String> {
        let problems = cfg.validate();
        if !problems.is_empty() {
            return Err(format!("channel wechat: {}", problems.join("; ")));
        }
        let secret = Secret::from_env(&cfg.secret_env, "channel wechat")?;
        let mut cfg = cfg.clone();
        cfg.endpoint = cfg.endpoint.trim_end_matches('/').to_string();
        let client = http::client(Duration::from_millis(cfg.timeout_ms))?;
        let tokens = shared_token_cache(&cfg.endpoint, &cfg.appid, &secret);
        Ok(WechatTemplate {
            inner: Arc::new(Inner {
                cfg,
                secret,
                client,
                tokens,
                sent: Mutex::new(SentLog::new(DEDUP_WINDOW)),
                blocked: Blocked::new("wechat", "WeChat quota"),
            }),
        })
    }
}

/// One message to send: who, with which id, and the body.
struct Message {
    openid: String,
    id: String,
    body: String,
}

impl Inner {
    fn timeout(&self) -> Duration {
        Duration::from_millis(self.cfg.timeout_ms)
    }

    fn scrub(&self, text: &str, token: Option<&Token>) -> String {
        scrub_credentials(text, &self.secret, token)
    }

    async fn token(&self, now: DateTime<FixedOffset>) -> Result<Token, Outcome> {
        self.tokens
            .get(|| async move {
                let url = format!("{}/cgi-bin/stable_token", self.cfg.endpoint);
                let body = json!({
                    "grant_type": "client_credential",
                    "appid": self.cfg.appid,
                    "secret": self.secret.expose(),
                    "force_refresh": false,
                });
                let resp = self
                    .client
                    .post(&url)
                    .json(&body)
                    .send()
                    .await
                    .map_err(|e| token_call_failed(&e))?;
                let status = resp.status().as_u16();
                let retry = http::retry_after(resp.headers());
                let text = resp.text().await.map_err(|e| token_call_failed(&e))?;
                classify_token(status, retry, &text, now).map_err(|o| self.scrub_outcome(o, None))
            })
            .await
    }

    fn scrub_outcome(&self, o: Outcome, token: Option<&Token>) -> Outcome {
        scrub_outcome(o, &self.secret, token)
    }

    /// One template/send call.
    async fn post(&self, token: &Token, body: &str, now: DateTime<FixedOffset>) -> SendAnswer {
        let url = format!("{}/cgi-bin/message/template/send", self.cfg.endpoint);
        let (status, retry, text) =
            match post_json(&self.client, &url, body, &self.secret, token).await {
                Ok(answer) => answer,
                Err(outcome) => return SendAnswer::Done(outcome),
            };
        match classify_send(status, retry, &text, now) {
            SendAnswer::Done(o) => SendAnswer::Done(self.scrub_outcome(o, Some(token))),
            SendAnswer::TokenRejected(t) => SendAnswer::TokenRejected(self.scrub(&t, Some(token))),
            a => a,
        }
    }

    /// Send one message: token, call, and on a token error one refresh and one retry. With
    /// `window`, each call is made only while the dedup window of that first attempt is surely
    /// open (the status query's resend).
    async fn send(
        &self,
        m: &Message,
        now: DateTime<FixedOffset>,
        window: Option<FirstAttempt>,
    ) -> Outcome {
        // A quota spent is the account's: no token fetch, no call.
        if let Some(b) = self.blocked.check(now) {
            return b;
        }
        let mut token = match self.token(now).await {
            Ok(t) => t,
            Err(o) => return o,
        };
        let mut refreshed = false;
        loop {
            if let Some(b) = self.blocked.check(now) {
                return b;
            }
            if window.is_some_and(|w| !w.inside(now, DEDUP_WINDOW, self.timeout())) {
                return outside_window();
            }
            if window.is_none() {
                self.sent.lock().unwrap_or_else(|e| e.into_inner()).first(
                    (m.openid.clone(), m.id.clone()),
                    now,
                    (),
                );
            }
            match self.post(&token, &m.body, now).await {
                SendAnswer::Accepted(msgid) => {
                    tracing::debug!(channel = "wechat", openid = %mask_id(&m.openid), msgid = ?msgid, "template message accepted");
                    return Outcome::Delivered { reference: msgid };
                }
                SendAnswer::Done(outcome) => {
                    if let Outcome::RetryAfter { after, code } = &outcome {
                        self.blocked.block(now, *after, code);
                    }
                    if !matches!(
                        outcome,
                        Outcome::Failed {
                            permanent: true,
                            ..
                        }
                    ) {
                        tracing::info!(channel = "wechat", openid = %mask_id(&m.openid), ?outcome, "template message not delivered");
                    }
                    return outcome;
                }
                SendAnswer::TokenRejected(text) if !refreshed => {
                    refreshed = true;
                    tracing::info!(channel = "wechat", answer = %text, "access token refused; fetching a fresh one and retrying once");
                    self.tokens.invalidate(&token).await;
                    token = match self.token(now).await {
                        Ok(t) => t,
                        Err(o) => return o,
                    };
                }
                SendAnswer::TokenRejected(text) => {
                    tracing::error!(channel = "wechat", answer = %text, "a freshly fetched access token was refused too; giving this send up for now");
                    return token_refused_twice(&text);
                }
            }
        }
    }
}

fn outside_window() -> Outcome {
    Outcome::Unknown {
        detail: "outside the 10-minute client_msg_id window: a resend could deliver it twice; WeChat has no status query, so an operator must decide".into(),
    }
}

fn wechat_body(openid: &str, id: &str, content: &Rendered) -> Result<String, Outcome> {
    let Rendered::Wechat {
        template_id,
        url,
        data,
    } = content
    else {
        return Err(Outcome::Failed {
            code: "wrong_content".into(),
            permanent: true,
            detail: "the wechat channel was handed content that is not a template message".into(),
        });
    };
    let mut fields = Map::new();
    for (k, v) in data {
        fields.insert(k.clone(), json!({ "value": v }));
    }
    let mut body = json!({
        "touser": openid,
        "template_id": template_id,
        "client_msg_id": id,
        "data": fields,
    });
    if let Some(url) = url {
        body["url"] = Value::String(url.clone());
    }
    Ok(body.to_string())
}

impl WechatTemplate {
    /// The sends of a batch, or the outcome of items that cannot be sent at all.
    fn prepare(batch: &Batch) -> Vec<Result<Message, Outcome>> {
        batch
            .items
            .iter()
            .map(|item| {
                let Some(openid) = item.address.clone().filter(|a| !a.trim().is_empty()) else {
                    return Err(Outcome::Skipped {
                        reason: "no_address".into(),
                    });
                };
                let id = client_msg_id(&batch.job.id, &item.recipient);
                let body = wechat_body(&openid, &id, &item.content)?;
                Ok(Message { openid, id, body })
            })
            .collect()
    }

    async fn run(&self, batch: &Batch, resolving: bool) -> Vec<Outcome> {
        let now = batch.now;
        let inner = self.inner.clone();
        let prepared = Self::prepare(batch);
        let outcomes = run_bounded(prepared, self.inner.cfg.parallel_calls, move |p| {
            let inner = inner.clone();
            async move {
                let m = match p {
                    Ok(m) => m,
                    Err(o) => return o,
                };
                if !resolving {
                    return inner.send(&m, now, None).await;
                }
                let first = inner
                    .sent
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&(m.openid.clone(), m.id.clone()));
                let Some((first, ())) = first else {
                    return Outcome::Unknown {
                        detail: "WeChat has no status query, and this process holds no record of the first attempt (restarted?), so the 10-minute client_msg_id window cannot be vouched for; not resent — an operator must decide".into(),
                    };
                };
                match inner.send(&m, now, Some(first)).await {
                    o @ (Outcome::Delivered { .. } | Outcome::Failed { permanent: true, .. }) => o,
                    o @ Outcome::Unknown { .. } => o,
                    other => Outcome::Unknown {
                        detail: format!(
                            "a resend with the same client_msg_id inside the window did not settle it: {other:?}"
                        ),
                    },
                }
            }
        })
        .await;
        log_config_problems("wechat", CONFIG_CODES, &outcomes);
        outcomes
    }
}

impl Channel for WechatTemplate {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Wechat
    }

    fn transport(&self) -> &str {
        "WeChat official-account template messages"
    }

    fn deliver<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Vec<Outcome>> {
        Box::pin(self.run(batch, false))
    }

    fn resolve<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Vec<Outcome>> {
        Box::pin(self.run(batch, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(s).unwrap()
    }

    #[test]
    fn the_daily_quota_waits_until_midnight_in_china() {
        // 14:30 UTC+8 → 9.5 hours; 23:59:59 → 1 s; exactly 00:00 → a whole day.
        assert_eq!(
            until_next_day(at("2026-12-01T14:30:00+08:00")),
            Duration::from_secs(9 * 3600 + 1800)
        );
        assert_eq!(
            until_next_day(at("2026-12-01T23:59:59+08:00")),
            Duration::from_secs(1)
        );
        assert_eq!(
            until_next_day(at("2026-12-01T00:00:00+08:00")),
            Duration::from_secs(86_400)
        );
        // Given in UTC: 20:00Z on 1 Dec is 04:00 on 2 Dec in China → 20 hours.
        assert_eq!(
            until_next_day(at("2026-12-01T20:00:00+00:00")),
            Duration::from_secs(20 * 3600)
        );
    }

    #[test]
    fn client_msg_id_is_stable_short_and_per_recipient() {
        let a = client_msg_id("zzb-2026-0142", "m00001");
        assert_eq!(a, client_msg_id("zzb-2026-0142", "m00001"));
        assert_ne!(a, client_msg_id("zzb-2026-0142", "m00002"));
        assert_ne!(a, client_msg_id("zzb-2026-0143", "m00001"));
        assert_eq!(a.len(), 32);
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
    }

    #[test]
    fn send_answers_map_to_outcomes() {
        let now = at("2026-12-01T09:00:00+08:00");
        let c = |status, body: &str| classify_send(status, None, body, now);
        assert_eq!(
            c(200, r#"{"errcode":0,"errmsg":"ok","msgid":200228332}"#),
            SendAnswer::Accepted(Some("200228332".into()))
        );
        for code in [40001, 40014, 42001] {
            assert!(matches!(
                c(200, &format!(r#"{{"errcode":{code},"errmsg":"x"}}"#)),
                SendAnswer::TokenRejected(_)
            ));
        }
        let permanent = |body: &str| match c(200, body) {
            SendAnswer::Done(Outcome::Failed {
                permanent, code, ..
            }) => Some((permanent, code)),
            _ => None,
        };
        for code in [43004, 40003, 43101, 40013, 40037, 40164, 48001] {
            assert_eq!(
                permanent(&format!(r#"{{"errcode":{code},"errmsg":"x"}}"#)),
                Some((true, code.to_string()))
            );
        }
        assert_eq!(
            permanent(r#"{"errcode":-1,"errmsg":"system error"}"#),
            Some((false, "-1".into()))
        );
        assert_eq!(
            c(
                200,
                r#"{"errcode":45009,"errmsg":"reach max api daily quota limit"}"#
            ),
            SendAnswer::Done(Outcome::RetryAfter {
                after: Duration::from_secs(15 * 3600),
                code: "45009".into()
            })
        );
        assert!(matches!(
            c(200, r#"{"errcode":45011,"errmsg":"api minute-quota reach limit"}"#),
            SendAnswer::Done(Outcome::RetryAfter { after, .. }) if after >= Duration::from_secs(60)
        ));
        assert!(matches!(
            c(200, "<html>"),
            SendAnswer::Done(Outcome::Unknown { .. })
        ));
        assert!(matches!(
            c(200, "{}"),
            SendAnswer::Done(Outcome::Unknown { .. })
        ));
        assert!(matches!(
            c(502, ""),
            SendAnswer::Done(Outcome::Unknown { .. })
        ));
        assert!(matches!(
            c(503, ""),
            SendAnswer::Done(Outcome::Failed {
                permanent: false,
                ..
            })
        ));
        assert_eq!(
            classify_send(429, Some(Duration::from_secs(7)), "", now),
            SendAnswer::Done(Outcome::RetryAfter {
                after: Duration::from_secs(7),
                code: "http_429".into()
            })
        );
    }

    #[test]
    fn token_failures_are_never_unknown() {
        let now = at("2026-12-01T09:00:00+08:00");
        for (status, body) in [
            (200, "garbage"),
            (500, ""),
            (502, ""),
            (200, r#"{"errcode":-1,"errmsg":"busy"}"#),
            (200, r#"{"errcode":40125,"errmsg":"invalid appsecret"}"#),
        ] {
            let o = classify_token(status, None, body, now).unwrap_err();
            assert!(
                matches!(o, Outcome::Failed { .. }),
                "{status} {body}: {o:?}"
            );
        }
        let (token, ttl) =
            classify_token(200, None, r#"{"access_token":"T","expires_in":7200}"#, now).unwrap();
        assert_eq!((token.expose(), ttl), ("T", Duration::from_secs(7200)));
    }

    /// A clock the test moves by hand.
    fn manual_clock() -> (Arc<AtomicU64>, Box<dyn Fn() -> Instant + Send + Sync>) {
        let base = Instant::now();
        let offset = Arc::new(AtomicU64::new(0));
        let o = offset.clone();
        (
            offset,
            Box::new(move || base + Duration::from_secs(o.load(Ordering::SeqCst))),
        )
    }

    #[tokio::test]
    async fn one_fetch_serves_concurrent_callers_and_renewal_comes_before_expiry() {
        let (offset, clock) = manual_clock();
        let cache = Arc::new(TokenCache::with_clock(clock));
        let (open, gate) = tokio::sync::watch::channel(false);
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..20 {
            let (cache, mut gate) = (cache.clone(), gate.clone());
            set.spawn(async move {
                let fetch = || async move {
                    let _ = gate.wait_for(|open| *open).await;
                    Ok((Secret::new("t1"), Duration::from_secs(7200)))
                };
                cache.get(fetch).await.unwrap().value
            });
        }
        // On this single-threaded runtime the tasks run when the test yields: one is fetching
        // (held at the gate), the other nineteen wait for it.
        for _ in 0..5 {
            tokio::task::yield_now().await;
        }
        assert_eq!(cache.fetches(), 1);
        open.send(true).unwrap();
        while let Some(t) = set.join_next().await {
            assert_eq!(t.unwrap().expose(), "t1");
        }
        assert_eq!(cache.fetches(), 1, "twenty concurrent callers, one fetch");
        let fetch =
            |s: &'static str| async move { Ok((Secret::new(s), Duration::from_secs(7200))) };
        // 6 minutes before expiry: still the cached token.
        offset.store(7200 - 360, Ordering::SeqCst);
        assert_eq!(
            cache.get(|| fetch("t2")).await.unwrap().value.expose(),
            "t1"
        );
        // 4 minutes before expiry: renewed (stable tokens rotate at five).
        offset.store(7200 - 240, Ordering::SeqCst);
        assert_eq!(
            cache.get(|| fetch("t2")).await.unwrap().value.expose(),
            "t2"
        );
        assert_eq!(cache.fetches(), 2);
    }

    #[tokio::test]
    async fn a_refused_old_token_does_not_drop_its_successor() {
        let cache = TokenCache::new();
        let ok = |s: &'static str| async move { Ok((Secret::new(s), Duration::from_secs(7200))) };
        let old = cache.get(|| ok("old")).await.unwrap();
        cache.invalidate(&old).await;
        let new = cache.get(|| ok("new")).await.unwrap();
        cache.invalidate(&old).await; // a late refusal of the old token
        assert_eq!(
            cache.get(|| ok("newer")).await.unwrap().value.expose(),
            "new"
        );
        assert_eq!(new.generation, old.generation + 1);
        assert_eq!(cache.fetches(), 2);
    }

    #[tokio::test]
    async fn a_failed_fetch_is_not_repeated_by_every_waiting_sender() {
        let (offset, clock) = manual_clock();
        let cache = TokenCache::with_clock(clock);
        let fail = || async {
            Err(Outcome::Failed {
                code: "token_unavailable".into(),
                permanent: false,
                detail: "down".into(),
            })
        };
        assert!(cache.get(fail).await.is_err());
        assert!(cache.get(fail).await.is_err());
        assert_eq!(cache.fetches(), 1);
        offset.store(FAILED_FETCH_HOLD.as_secs() + 1, Ordering::SeqCst);
        assert!(cache.get(fail).await.is_err());
        assert_eq!(cache.fetches(), 2);
    }

    #[test]
    fn the_dedup_window_is_judged_by_the_later_clock_with_reserve() {
        let t0 = at("2026-12-01T09:00:00+08:00");
        let first = FirstAttempt::new(t0);
        let timeout = Duration::from_secs(10);
        let after = |s: i64| t0 + chrono::Duration::seconds(s);
        assert!(first.inside(after(300), DEDUP_WINDOW, timeout));
        // 600 − 60 reserve − 10 timeout = 530 s is the last safe moment.
        assert!(first.inside(after(529), DEDUP_WINDOW, timeout));
        assert!(!first.inside(after(530), DEDUP_WINDOW, timeout));
        assert!(!first.inside(after(3600), DEDUP_WINDOW, timeout));
        // A clock set back does not reopen it: the monotonic clock still counts.
        assert!(first.inside(after(-3600), DEDUP_WINDOW, timeout));
    }

    #[test]
    fn the_log_keeps_the_first_attempt() {
        let mut log: SentLog<&str, u8> = SentLog::new(DEDUP_WINDOW);
        let t0 = at("2026-12-01T09:00:00+08:00");
        log.first("a", t0, 1);
        log.first("a", t0 + chrono::Duration::seconds(100), 2);
        let (first, v) = log.get(&"a").unwrap();
        assert_eq!((first.at, v), (t0, 1));
        log.replace("a", t0 + chrono::Duration::seconds(100), 3);
        assert_eq!(log.get(&"a").unwrap().1, 3);
        assert!(log.get(&"b").is_none());
    }

    #[test]
    fn config_problems_are_reported_together() {
        let cfg = WechatConfig {
            endpoint: "api.weixin.qq.com".into(),
            appid: "".into(),
            secret_env: "the secret".into(),
            timeout_ms: 5,
            parallel_calls: 0,
        };
        assert_eq!(cfg.validate().len(), 5, "{:?}", cfg.validate());
    }

    #[test]
    fn secrets_are_scrubbed_from_provider_text() {
        assert_eq!(
            scrub("invalid credential SECRET-123 rid: 1", &["SECRET-123"]),
            "invalid credential *** rid: 1"
        );
    }

    #[test]
    fn the_channel_file_parses_with_defaults_and_refuses_unknown_keys() {
        use crate::channels::{ChannelConfig, Transport};
        let text = "channel = \"wechat\"\n[transport]\ntype = \"wechat_template\"\nappid = \"wx0123456789abcdef\"\nsecret_env = \"WECHAT_APPSECRET\"\n";
        let cfg: ChannelConfig = toml::from_str(text).unwrap();
        let Transport::WechatTemplate(w) = &cfg.transport else {
            panic!("{cfg:?}")
        };
        assert_eq!(
            (w.endpoint.as_str(), w.timeout_ms, w.parallel_calls),
            (DEFAULT_ENDPOINT, 10_000, 8)
        );
        assert!(cfg.validate().is_empty(), "{:?}", cfg.validate());
        let e = toml::from_str::<ChannelConfig>(&format!("{text}secret = \"x\"\n")).unwrap_err();
        assert!(e.to_string().contains("secret"), "{e}");
        let wrong: ChannelConfig =
            toml::from_str(&text.replace("\"wechat\"\n[", "\"sms\"\n[")).unwrap();
        assert_eq!(wrong.validate().len(), 1, "{:?}", wrong.validate());
    }
}
