//! A local WeCom (企业微信) API (providers.md §4) for tests, benchmarks and demos: an axum server
//! on 127.0.0.1 that answers `GET /cgi-bin/gettoken` and `POST /cgi-bin/message/send` in WeCom's
//! format.
//!
//! It checks what WeCom checks — the CorpID and Secret of a token request (40013 / 40001), the
//! access token of a send (41001 missing, 40014 invalid, 42001 expired), the AgentId (40056), the
//! message body (markdown content, textcard title/description/url, ≤ 1,000 users) — lists users
//! outside the application's range in `invaliduser` (lower-cased, as WeCom does; 81013 when none
//! is valid), and honours `enable_duplicate_check`: an identical request JSON within
//! `duplicate_check_interval` is answered as before and delivered to nobody. It counts what each
//! user actually received. At run time it can answer any errcode, HTTP 429 with Retry-After, a
//! bare 5xx, a hang past the client's timeout (the message still counts as received) or a body
//! that is not JSON.
//!
//! ```ignore
//! #[path = "emulators/wecom.rs"] mod wecom_emulator;
//! let emu = wecom_emulator::Emulator::start().await;
//! emu.set_users(&["zhangsan", "lisi"]);
//! // … point a `wecom_app` channel at emu.url with CORPID, AGENTID and the secret SECRET …
//! assert_eq!(emu.received()["zhangsan"], 1);
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
use axum::routing::{get, post};
use serde_json::{Value, json};

pub const CORPID: &str = "ww0123456789abcdef";
pub const SECRET: &str = "emu-wecom-secret-3e8a71c5f0b24d96";
pub const AGENTID: u64 = 1000002;

/// How the emulator answers a send.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// As WeCom does when all is well.
    Normal,
    /// Refuse with this errcode, taking nothing (-1 busy, 45009, 45033, 60020 …).
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

struct IssuedToken {
    value: String,
    refused_with: Option<i64>,
}

pub struct Inner {
    mode: Mode,
    /// Users in the application's visible range (lower-cased); `None`: everyone.
    users: Option<HashSet<String>>,
    token: Option<IssuedToken>,
    issued: Vec<String>,
    reject_all_tokens: Option<i64>,
    /// Lower-cased user → messages received.
    received: HashMap<String, usize>,
    /// Raw bodies of every send request, in order.
    requests: Vec<String>,
    /// Raw body → (when, the answer given).
    dedup: HashMap<String, (Instant, Value)>,
    deduplicated: usize,
    send_calls: usize,
    token_fetches: usize,
    next_msgid: u64,
}

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
                users: None,
                token: None,
                issued: Vec::new(),
                reject_all_tokens: None,
                received: HashMap::new(),
                requests: Vec::new(),
                dedup: HashMap::new(),
                deduplicated: 0,
                send_calls: 0,
                token_fetches: 0,
                next_msgid: 1,
            }),
        });
        let app = Router::new()
            .route("/cgi-bin/gettoken", get(gettoken))
            .route("/cgi-bin/message/send", post(message_send))
            .with_state(state.clone());
        let addr = server::serve(app).await;
        Emulator {
            url: format!("http://{addr}"),
            state,
        }
    }

    /// How every send is answered from now on.
    pub fn set_mode(&self, mode: Mode) {
        self.state.lock().mode = mode;
    }

    /// Only these users are in the application's range; the others come back in `invaliduser`.
    pub fn set_users(&self, users: &[&str]) {
        self.state.lock().users = Some(users.iter().map(|u| u.to_lowercase()).collect());
    }

    /// The current token is refused from now on with `errcode` (42001 expired, 40014 invalid);
    /// the next gettoken issues a new one.
    pub fn invalidate_token(&self, errcode: i64) {
        if let Some(t) = self.state.lock().token.as_mut() {
            t.refused_with = Some(errcode);
        }
    }

    /// Refuse every token, even fresh ones, with `errcode` (None: back to normal).
    pub fn reject_all_tokens(&self, errcode: Option<i64>) {
        self.state.lock().reject_all_tokens = errcode;
    }

    /// Messages each user (lower-cased) actually received (duplicates dropped not counted).
    pub fn received(&self) -> HashMap<String, usize> {
        self.state.lock().received.clone()
    }

    /// The raw JSON of every send request, in order.
    pub fn requests(&self) -> Vec<String> {
        self.state.lock().requests.clone()
    }

    /// Requests dropped by the duplicate check.
    pub fn deduplicated(&self) -> usize {
        self.state.lock().deduplicated
    }

    /// message/send requests, whatever their answer.
    pub fn send_calls(&self) -> usize {
        self.state.lock().send_calls
    }

    /// gettoken requests with the right credentials.
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
        [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
        v.to_string(),
    )
        .into_response()
}

fn err(code: i64, msg: &str) -> Response {
    answer(json!({
        "errcode": code,
        "errmsg": format!("{msg}, hint: [emu{code}], from ip: 127.0.0.1, more info at https://open.work.weixin.qq.com/devtool/query?e={code}")
    }))
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

async fn gettoken(
    State(s): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut st = s.lock();
    let corpid = q.get("corpid").map(String::as_str).unwrap_or("");
    let secret = q.get("corpsecret").map(String::as_str).unwrap_or("");
    if corpid.is_empty() {
        return err(41002, "corpid missing");
    }
    if corpid != CORPID {
        return err(40013, "invalid corpid");
    }
    if secret.is_empty() {
        return err(41004, "corpsecret missing");
    }
    if secret != SECRET {
        return err(40001, "invalid credential");
    }
    st.token_fetches += 1;
    if st.token.as_ref().is_none_or(|t| t.refused_with.is_some()) {
        let n = st.issued.len() + 1;
        let value = format!(
            "WWEMU_{n}_{:016x}{:016x}",
            fastrand::u64(..),
            fastrand::u64(..)
        );
        st.issued.push(value.clone());
        st.token = Some(IssuedToken {
            value,
            refused_with: None,
        });
    }
    let t = st.token.as_ref().expect("just issued");
    answer(json!({ "errcode": 0, "errmsg": "ok", "access_token": t.value, "expires_in": 7200 }))
}

/// Whether a message body is what WeCom accepts for its msgtype; the errcode otherwise.
fn check_content(v: &Value) -> Result<(), (i64, &'static str)> {
    let text = |path: &[&str]| {
        let mut cur = v;
        for p in path {
            cur = cur.get(*p).unwrap_or(&Value::Null);
        }
        cur.as_str().unwrap_or("").to_string()
    };
    match v.get("msgtype").and_then(Value::as_str).unwrap_or("") {
        "markdown" => {
            let c = text(&["markdown", "content"]);
            if c.is_empty() {
                return Err((44004, "empty content"));
            }
            if c.len() > 2048 {
                return Err((45002, "content size out of limit"));
            }
        }
        "textcard" => {
            for f in ["title", "description", "url"] {
                if text(&["textcard", f]).is_empty() {
                    return Err((44004, "empty content"));
                }
            }
        }
        "text" => {
            if text(&["text", "content"]).is_empty() {
                return Err((44004, "empty content"));
            }
        }
        _ => return Err((40008, "invalid message type")),
    }
    Ok(())
}

async fn message_send(
    State(s): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let hang;
    let reply;
    {
        let mut st = s.lock();
        st.send_calls += 1;
        let raw = String::from_utf8_lossy(&body).into_owned();
        st.requests.push(raw.clone());
        if let Some(r) = gateway(&st.mode.clone()) {
            return r;
        }
        let Some(token) = q.get("access_token").filter(|t| !t.is_empty()) else {
            return err(41001, "access_token missing");
        };
        if let Some(code) = st.reject_all_tokens {
            return err(code, "invalid access_token");
        }
        match &st.token {
            Some(t) if t.value == *token => match t.refused_with {
                Some(42001) => return err(42001, "access_token expired"),
                Some(code) => return err(code, "invalid access_token"),
                None => {}
            },
            _ => return err(40014, "invalid access_token"),
        }
        let Ok(v) = serde_json::from_str::<Value>(&raw) else {
            return err(47001, "data format error");
        };
        if v.get("agentid").and_then(Value::as_u64) != Some(AGENTID) {
            return err(40056, "invalid agentid");
        }
        if let Err((code, msg)) = check_content(&v) {
            return err(code, msg);
        }
        let touser: Vec<String> = v
            .get("touser")
            .and_then(Value::as_str)
            .unwrap_or("")
            .split('|')
            .filter(|u| !u.is_empty())
            .map(str::to_string)
            .collect();
        if touser.len() > 1000 {
            return err(40031, "invalid userid list: more than 1000");
        }
        if let Mode::Errcode(code) = st.mode {
            let msg = match code {
                -1 => "system busy",
                45009 => "api freq out of limit",
                45033 => "api concurrent out of limit",
                60020 => "not allow to access from your ip",
                _ => "refused",
            };
            return err(code, msg);
        }
        let dedup = v.get("enable_duplicate_check").and_then(Value::as_i64) == Some(1);
        let interval = Duration::from_secs(
            v.get("duplicate_check_interval")
                .and_then(Value::as_u64)
                .unwrap_or(1800),
        );
        if dedup
            && let Some((when, previous)) = st.dedup.get(&raw).cloned()
            && when.elapsed() < interval
        {
            st.deduplicated += 1;
            return answer(previous);
        }
        let (valid, invalid): (Vec<String>, Vec<String>) = touser
            .iter()
            .map(|u| u.to_lowercase())
            .partition(|u| st.users.as_ref().is_none_or(|set| set.contains(u)));
        if valid.is_empty() {
            return answer(json!({
                "errcode": 81013,
                "errmsg": "user & party & tag all invalid",
                "invaliduser": invalid.join("|"),
            }));
        }
        for u in valid {
            *st.received.entry(u).or_insert(0) += 1;
        }
        let msgid = format!("emu-msg-{:08}", st.next_msgid);
        st.next_msgid += 1;
        let ok = json!({
            "errcode": 0,
            "errmsg": "ok",
            "invaliduser": invalid.join("|"),
            "msgid": msgid,
        });
        if dedup {
            st.dedup.insert(raw, (Instant::now(), ok.clone()));
        }
        hang = match st.mode {
            Mode::Hang(d) => Some(d),
            _ => None,
        };
        reply = if st.mode == Mode::Malformed {
            (StatusCode::OK, "upstream connect error or disconnect").into_response()
        } else {
            answer(ok)
        };
    }
    if let Some(d) = hang {
        tokio::time::sleep(d).await;
    }
    reply
}
