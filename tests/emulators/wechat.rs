//! A local WeChat official-account API (providers.md §3) for tests, benchmarks and demos: an
//! axum server on 127.0.0.1 that answers `POST /cgi-bin/stable_token` and
//! `POST /cgi-bin/message/template/send` in WeChat's format.
//!
//! It checks what WeChat checks — the AppID and AppSecret of a token request (40013 / 40125),
//! the access token of a send (41001 missing, 40001 not the current one, 42001 expired), the body
//! of a send (touser, template_id, data) — and honours `client_msg_id` (the same openid and id
//! send once within ten minutes). It counts what each openid actually received, so a test can
//! assert "no duplicate". At run time it can be told to answer with any errcode, per openid or
//! for every send, with HTTP 429 and Retry-After, a bare 5xx, a hang past the client's timeout
//! (the message still counts as received) or a body that is not JSON.
//!
//! ```ignore
//! #[path = "emulators/wechat.rs"] mod wechat_emulator;
//! let emu = wechat_emulator::Emulator::start().await;
//! emu.script("o-non-follower", wechat_emulator::Mode::Errcode(43004));
//! // … point a `wechat_template` channel at emu.url with appid APPID and the secret SECRET …
//! assert_eq!(emu.received()["o-follower"], 1);
//! ```
#![allow(dead_code)]

// Each emulator includes it; `tests/providers.rs` includes all four, hence four copies there.
#[path = "server.rs"]
#[allow(clippy::duplicate_mod)]
mod server;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// The AppID the emulator knows.
pub const APPID: &str = "wx0123456789abcdef";
/// The AppSecret the emulator knows.
pub const SECRET: &str = "emu-appsecret-9c2f6b1e44d07a35";
/// `client_msg_id` dedup window (§3.2).
pub const DEDUP_WINDOW: Duration = Duration::from_secs(600);

/// How the emulator answers a send.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// As WeChat does when all is well.
    Normal,
    /// Refuse with this errcode, taking nothing (43004 not a follower, 45009 daily quota, -1 …).
    Errcode(i64),
    /// HTTP 429 with `Retry-After: secs`, taking nothing.
    TooMany(u64),
    /// This HTTP status with an empty body, taking nothing.
    Status(u16),
    /// Take the message (it counts as received), then answer only after this long.
    Hang(Duration),
    /// Take the message, then answer 200 with a body that is not JSON.
    Malformed,
}

/// One message an openid received.
#[derive(Debug, Clone)]
pub struct Received {
    pub openid: String,
    pub template_id: String,
    pub client_msg_id: Option<String>,
    pub url: Option<String>,
    pub data: Value,
    pub msgid: i64,
}

struct IssuedToken {
    value: String,
    issued: Instant,
    /// Set when the test expired or invalidated it: the errcode a send with it gets.
    refused_with: Option<i64>,
}

pub struct Inner {
    mode: Mode,
    scripts: HashMap<String, Mode>,
    token_ttl: u64,
    token: Option<IssuedToken>,
    /// Every issued token, for "never in a detail" checks.
    issued: Vec<String>,
    reject_all_tokens: Option<i64>,
    token_failure: Option<u16>,
    template_ids: Option<HashSet<String>>,
    received: Vec<Received>,
    dedup: HashMap<(String, String), (Instant, i64)>,
    deduplicated: usize,
    send_calls: usize,
    token_fetches: usize,
    next_msgid: i64,
}

/// The emulator's state, shared with its handlers.
pub struct Shared {
    inner: Mutex<Inner>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub struct Emulator {
    /// Base URL, e.g. `http://127.0.0.1:41234` (the channel's `endpoint`).
    pub url: String,
    pub state: Arc<Shared>,
}

impl Emulator {
    /// Start on a free port of 127.0.0.1 (the server runs until the runtime ends).
    pub async fn start() -> Emulator {
        let state = Arc::new(Shared {
            inner: Mutex::new(Inner {
                mode: Mode::Normal,
                scripts: HashMap::new(),
                token_ttl: 7200,
                token: None,
                issued: Vec::new(),
                reject_all_tokens: None,
                token_failure: None,
                template_ids: None,
                received: Vec::new(),
                dedup: HashMap::new(),
                deduplicated: 0,
                send_calls: 0,
                token_fetches: 0,
                next_msgid: 2_002_283_320,
            }),
        });
        let app = Router::new()
            .route("/cgi-bin/stable_token", post(stable_token))
            .route("/cgi-bin/message/template/send", post(template_send))
            .with_state(state.clone());
        let addr = server::serve(app).await;
        Emulator {
            url: format!("http://{addr}"),
            state,
        }
    }

    /// How every send is answered from now on (per-openid scripts take precedence).
    pub fn set_mode(&self, mode: Mode) {
        self.state.lock().mode = mode;
    }

    /// How sends to one openid are answered, e.g. `Mode::Errcode(43004)` for a non-follower.
    pub fn script(&self, openid: &str, mode: Mode) {
        self.state.lock().scripts.insert(openid.to_string(), mode);
    }

    /// The current token is refused from now on with `errcode` (42001 expired, 40001 invalid);
    /// the next stable_token call issues a new one.
    pub fn invalidate_token(&self, errcode: i64) {
        if let Some(t) = self.state.lock().token.as_mut() {
            t.refused_with = Some(errcode);
        }
    }

    /// Refuse every token, even fresh ones, with `errcode` (None: back to normal).
    pub fn reject_all_tokens(&self, errcode: Option<i64>) {
        self.state.lock().reject_all_tokens = errcode;
    }

    /// stable_token answers this HTTP status (None: back to normal).
    pub fn fail_token_fetch(&self, status: Option<u16>) {
        self.state.lock().token_failure = status;
    }

    /// `expires_in` of tokens issued from now on.
    pub fn set_token_ttl(&self, secs: u64) {
        self.state.lock().token_ttl = secs;
    }

    /// Only these template ids exist (40037 for others); by default any non-empty id does.
    pub fn set_template_ids(&self, ids: &[&str]) {
        self.state.lock().template_ids = Some(ids.iter().map(|s| s.to_string()).collect());
    }

    /// Messages each openid actually received (deduplicated resends not counted).
    pub fn received(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for r in &self.state.lock().received {
            *counts.entry(r.openid.clone()).or_insert(0) += 1;
        }
        counts
    }

    /// Every message received, in order.
    pub fn messages(&self) -> Vec<Received> {
        self.state.lock().received.clone()
    }

    /// Sends answered "ok" without a second message because of `client_msg_id`.
    pub fn deduplicated(&self) -> usize {
        self.state.lock().deduplicated
    }

    /// template/send requests, whatever their answer.
    pub fn send_calls(&self) -> usize {
        self.state.lock().send_calls
    }

    /// stable_token requests with the right credentials.
    pub fn token_fetches(&self) -> usize {
        self.state.lock().token_fetches
    }

    /// Every token issued so far.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.state.lock().issued.clone()
    }
}

fn answer(v: Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json; encoding=utf-8")],
        v.to_string(),
    )
        .into_response()
}

fn err(code: i64, msg: &str) -> Response {
    answer(json!({ "errcode": code, "errmsg": format!("{msg} rid: emu-{code}") }))
}

fn gateway(mode: &Mode) -> Option<Response> {
    match mode {
        Mode::TooMany(secs) => Some(
            (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, secs.to_string())],
                "",
            )
                .into_response(),
        ),
        Mode::Status(s) => Some(
            StatusCode::from_u16(*s)
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
                .into_response(),
        ),
        _ => None,
    }
}

async fn stable_token(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let mut st = s.lock();
    if let Some(status) = st.token_failure {
        return StatusCode::from_u16(status)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            .into_response();
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return err(47001, "data format error");
    };
    let field = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("");
    if field("grant_type") != "client_credential" {
        return err(40002, "invalid grant_type");
    }
    if field("appid") != APPID {
        return err(40013, "invalid appid");
    }
    if field("secret") != SECRET {
        return err(40125, "invalid appsecret");
    }
    st.token_fetches += 1;
    let ttl = st.token_ttl;
    let usable = st
        .token
        .as_ref()
        .is_some_and(|t| t.refused_with.is_none() && t.issued.elapsed().as_secs() < ttl);
    if !usable {
        let n = st.issued.len() + 1;
        let value = format!("EMU_{n}_{:016x}", fastrand::u64(..));
        st.issued.push(value.clone());
        st.token = Some(IssuedToken {
            value,
            issued: Instant::now(),
            refused_with: None,
        });
    }
    let t = st.token.as_ref().expect("just issued");
    let left = ttl.saturating_sub(t.issued.elapsed().as_secs());
    answer(json!({ "access_token": t.value, "expires_in": left }))
}

async fn template_send(
    State(s): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let hang;
    let reply;
    {
        let mut st = s.lock();
        st.send_calls += 1;
        if let Some(r) = gateway(&st.mode.clone()) {
            return r;
        }
        let Some(token) = q.get("access_token").filter(|t| !t.is_empty()) else {
            return err(41001, "access_token missing");
        };
        if let Some(code) = st.reject_all_tokens {
            return err(
                code,
                "invalid credential, access_token is invalid or not latest",
            );
        }
        match &st.token {
            Some(t) if t.value == *token => match t.refused_with {
                Some(42001) => return err(42001, "access_token expired"),
                Some(code) => {
                    return err(
                        code,
                        "invalid credential, access_token is invalid or not latest",
                    );
                }
                None if t.issued.elapsed().as_secs() >= st.token_ttl => {
                    return err(42001, "access_token expired");
                }
                None => {}
            },
            _ => {
                return err(
                    40001,
                    "invalid credential, access_token is invalid or not latest",
                );
            }
        }
        let Ok(v) = serde_json::from_slice::<Value>(&body) else {
            return err(47001, "data format error");
        };
        let openid = v.get("touser").and_then(Value::as_str).unwrap_or("");
        if openid.is_empty() {
            return err(40003, "invalid openid");
        }
        let template_id = v.get("template_id").and_then(Value::as_str).unwrap_or("");
        let known = st
            .template_ids
            .as_ref()
            .is_none_or(|ids| ids.contains(template_id));
        if template_id.is_empty() || !known {
            return err(40037, "invalid template_id");
        }
        let data_ok = v.get("data").and_then(Value::as_object).is_some_and(|d| {
            d.values()
                .all(|f| f.get("value").and_then(Value::as_str).is_some())
        });
        if !data_ok {
            return err(47003, "argument invalid! data.value invalid");
        }
        let mode = st.scripts.get(openid).cloned().unwrap_or(st.mode.clone());
        if let Some(r) = gateway(&mode) {
            return r;
        }
        if let Mode::Errcode(code) = mode {
            let msg = match code {
                43004 => "require subscribe",
                45009 => "reach max api daily quota limit",
                45011 => "api minute-quota reach limit  mustslower  retry next minute",
                -1 => "system error",
                _ => "refused",
            };
            return err(code, msg);
        }
        let client_msg_id = v
            .get("client_msg_id")
            .and_then(Value::as_str)
            .map(str::to_string);
        if let Some(id) = &client_msg_id {
            let key = (openid.to_string(), id.clone());
            if let Some((at, msgid)) = st.dedup.get(&key).copied()
                && at.elapsed() < DEDUP_WINDOW
            {
                st.deduplicated += 1;
                return answer(json!({ "errcode": 0, "errmsg": "ok", "msgid": msgid }));
            }
        }
        st.next_msgid += 1;
        let msgid = st.next_msgid;
        if let Some(id) = &client_msg_id {
            st.dedup
                .insert((openid.to_string(), id.clone()), (Instant::now(), msgid));
        }
        st.received.push(Received {
            openid: openid.to_string(),
            template_id: template_id.to_string(),
            client_msg_id,
            url: v.get("url").and_then(Value::as_str).map(str::to_string),
            data: v["data"].clone(),
            msgid,
        });
        hang = match mode {
            Mode::Hang(d) => Some(d),
            _ => None,
        };
        reply = if mode == Mode::Malformed {
            (StatusCode::OK, "<html><body>502 Bad Gateway</body></html>").into_response()
        } else {
            answer(json!({ "errcode": 0, "errmsg": "ok", "msgid": msgid }))
        };
    }
    if let Some(d) = hang {
        tokio::time::sleep(d).await;
    }
    reply
}
