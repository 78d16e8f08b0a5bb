//! A local Tencent Cloud SMS (API 2021-01-11) for tests, benchmarks and `disclose dispatch`
//! demos: an axum server on 127.0.0.1 that checks TC3-HMAC-SHA256 signatures exactly as Tencent
//! does (its own implementation, written apart from `disclose`'s, so that one bug cannot hide in
//! both), answers `SendSms` and `PullSmsSendStatusByPhoneNumber` in Tencent's JSON, and records
//! every message it "sent" so a test can assert that no number got one twice.
//!
//! ```ignore
//! #[path = "emulators/tencent.rs"] mod tencent_emulator;
//! let emu = tencent_emulator::Emulator::start().await;       // emu.url = "http://127.0.0.1:PORT/"
//! emu.set_mode(tencent_emulator::Mode::Hang(Duration::from_secs(3)));
//! // … point a tencent_sms transport at emu.url with SECRET_ID / SECRET_KEY …
//! assert!(emu.received().values().all(|&n| n == 1));
//! ```
//!
//! Per request it does a signature check, one JSON parse and one lock: fast enough for 5,000
//! calls of 200 numbers. It logs nothing.
#![allow(dead_code)]

// Each emulator includes it; `tests/providers.rs` includes all four, hence four copies there.
#[path = "server.rs"]
#[allow(clippy::duplicate_mod)]
mod server;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The credentials the emulator accepts.
pub const SECRET_ID: &str = "AKIDdiscloseEmulator0000000000000000";
pub const SECRET_KEY: &str = "discloseEmulatorSecretKey0000000";
/// The SMS application the emulator knows.
pub const SMS_SDK_APP_ID: &str = "1400006666";

/// How the emulator answers. `set_mode` for `SendSms`, `set_query_mode` for the status pull.
#[derive(Clone, Debug)]
pub enum Mode {
    /// Every valid number is sent (a number that is not a mainland mobile number gets
    /// `InvalidParameterValue.IncorrectPhoneNumber`, as Tencent would).
    Ok,
    /// These numbers (E.164) get this per-number code, not sent; the others are sent.
    Partial(HashMap<String, String>),
    /// The whole call is refused with `Response.Error` of this code; nothing is sent.
    CallError(String),
    /// A call holding one of these numbers (E.164) is refused as a whole with `Response.Error`
    /// of its code (as Tencent may do for a malformed number); other calls are sent.
    CallErrorFor(HashMap<String, String>),
    /// HTTP 429 with `Retry-After`; nothing is sent.
    TooMany { retry_after_secs: u64 },
    /// HTTP 500; nothing is sent.
    ServerError,
    /// The messages are sent at once, but the answer comes only after this long: longer than
    /// the client's timeout, it leaves the client not knowing what it knows here.
    Hang(Duration),
    /// The messages are sent, and the answer is cut off mid-JSON.
    Malformed,
    /// Every call is refused with `AuthFailure.SignatureFailure`, whatever its signature.
    WrongSignature,
}

impl Mode {
    /// `Partial` from pairs of number and code.
    pub fn partial<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Mode {
        Mode::Partial(
            pairs
                .into_iter()
                .map(|(n, c)| (e164(n), c.to_string()))
                .collect(),
        )
    }
}

/// What the carrier reports for a number's messages, as `PullSmsSendStatusByPhoneNumber` shows.
#[derive(Clone, Debug, PartialEq)]
pub enum Receipt {
    Success,
    /// `ReportStatus` FAIL with this description.
    Fail(String),
    /// No receipt yet: Tencent lists a message only once its receipt is in.
    Pending,
}

/// One message the emulator sent.
#[derive(Clone, Debug)]
pub struct Sent {
    pub number: String,
    pub serial_no: String,
    pub session_context: Arc<str>,
    pub template_id: Arc<str>,
    pub params: Arc<[String]>,
    /// Unix seconds.
    pub at: i64,
}

pub struct Emulator {
    /// `http://127.0.0.1:PORT/`, the transport's `endpoint`.
    pub url: String,
    pub state: Arc<Shared>,
}

pub struct Shared {
    inner: Mutex<Inner>,
    serial: AtomicU64,
    requests: AtomicU64,
    /// `PullSmsSendStatusByPhoneNumber` requests received.
    queries: AtomicU64,
    /// When the first and the last `SendSms` request arrived.
    window: Mutex<Option<(std::time::Instant, std::time::Instant)>>,
}

struct Inner {
    mode: Mode,
    query_mode: Mode,
    sent: HashMap<String, Vec<Sent>>,
    receipts: HashMap<String, Receipt>,
    session_in_receipts: bool,
    reversed: bool,
    /// Numbers sent but left out of `SendStatusSet` (the answer is short of them).
    omitted: std::collections::HashSet<String>,
}

impl Emulator {
    /// Listen on 127.0.0.1 on a free port (inside a tokio runtime).
    pub async fn start() -> Emulator {
        let state = Arc::new(Shared {
            inner: Mutex::new(Inner {
                mode: Mode::Ok,
                query_mode: Mode::Ok,
                sent: HashMap::new(),
                receipts: HashMap::new(),
                session_in_receipts: true,
                reversed: false,
                omitted: Default::default(),
            }),
            serial: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            queries: AtomicU64::new(0),
            window: Mutex::new(None),
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(state.clone());
        let addr = server::serve(app).await;
        Emulator {
            url: format!("http://{addr}/"),
            state,
        }
    }

    pub fn set_mode(&self, mode: Mode) {
        self.state.lock().mode = mode;
    }

    pub fn set_query_mode(&self, mode: Mode) {
        self.state.lock().query_mode = mode;
    }

    /// The receipt of every message to `number` (default: `Success`).
    pub fn set_receipt(&self, number: &str, receipt: Receipt) {
        self.state.lock().receipts.insert(e164(number), receipt);
    }

    /// Whether pulled receipts carry `SessionContext` (on here; off on a Tencent account until
    /// its SMS helper enables it).
    pub fn set_session_context_in_receipts(&self, on: bool) {
        self.state.lock().session_in_receipts = on;
    }

    /// Answer `SendStatusSet` in the reverse order of `PhoneNumberSet` (Tencent does not
    /// promise the order: a client must match statuses by number).
    pub fn set_answer_order_reversed(&self, on: bool) {
        self.state.lock().reversed = on;
    }

    /// Send to `number` (E.164) but leave it out of the answer's `SendStatusSet`.
    pub fn leave_out_of_answers(&self, number: &str) {
        self.state.lock().omitted.insert(number.to_string());
    }

    /// Messages sent, per number (E.164). A number sent twice shows 2.
    pub fn received(&self) -> HashMap<String, usize> {
        self.state
            .lock()
            .sent
            .iter()
            .map(|(n, v)| (n.clone(), v.len()))
            .collect()
    }

    /// Every message sent, in no particular order.
    pub fn sent(&self) -> Vec<Sent> {
        self.state.lock().sent.values().flatten().cloned().collect()
    }

    /// `SendSms` requests received (signed correctly or not).
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::Relaxed)
    }

    /// Status queries (`PullSmsSendStatusByPhoneNumber`) received.
    pub fn status_queries(&self) -> u64 {
        self.state.queries.load(Ordering::Relaxed)
    }

    /// When the first and the last `SendSms` since the last `clear` were received.
    pub fn send_instants(&self) -> Option<(std::time::Instant, std::time::Instant)> {
        *self.state.window.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Shared {
    /// Forget every message sent so far (between the runs of a benchmark).
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.sent.clear();
        inner.receipts.clear();
        *self.window.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `+86` and 11 digits for a mainland number however written; anything else as given.
pub fn e164(n: &str) -> String {
    let n = n.trim();
    if let Some(rest) = n.strip_prefix("0086") {
        return format!("+86{rest}");
    }
    if n.len() == 13 && n.starts_with("86") && n.bytes().all(|b| b.is_ascii_digit()) {
        return format!("+{n}");
    }
    if n.len() == 11 && n.starts_with('1') && n.bytes().all(|b| b.is_ascii_digit()) {
        return format!("+86{n}");
    }
    n.to_string()
}

fn is_mainland_mobile(n: &str) -> bool {
    match n.strip_prefix("+86") {
        Some(d) => {
            d.len() == 11
                && d.bytes().all(|b| b.is_ascii_digit())
                && matches!(d.as_bytes()[1], b'3'..=b'9')
                && d.starts_with('1')
        }
        None => false,
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

async fn handle(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let action = header(&headers, "x-tc-action").to_string();
    if action == "SendSms" {
        s.requests.fetch_add(1, Ordering::Relaxed);
        let now = std::time::Instant::now();
        let mut w = s.window.lock().unwrap_or_else(|e| e.into_inner());
        *w = Some(w.map_or((now, now), |(first, _)| (first, now)));
    }
    let rid = request_id(&s);
    if let Err((code, message)) = verify(&s, &headers, &body) {
        return error(&rid, code, &message);
    }
    if header(&headers, "x-tc-version") != "2021-01-11" {
        return error(
            &rid,
            "NoSuchVersion",
            "The requested version does not exist.",
        );
    }
    if header(&headers, "x-tc-region").is_empty() {
        return error(
            &rid,
            "MissingParameter",
            "The request is missing a required parameter `Region`.",
        );
    }
    let req: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => {
            return error(
                &rid,
                "FailedOperation.JsonParseFail",
                "Failed to parse the request body.",
            );
        }
    };
    match action.as_str() {
        "SendSms" => send(&s, &rid, &req).await,
        "PullSmsSendStatusByPhoneNumber" => pull(&s, &rid, &req).await,
        _ => error(
            &rid,
            "InvalidAction",
            "The requested action does not exist.",
        ),
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim()
}

fn request_id(s: &Shared) -> String {
    let n = s.serial.fetch_add(1, Ordering::Relaxed);
    format!("0a9e7c3e-0000-4000-8000-{n:012x}")
}

/// Tencent's error envelope (always HTTP 200).
fn error(rid: &str, code: &str, message: &str) -> Response {
    let body = serde_json::json!({"Response": {"Error": {"Code": code, "Message": message}, "RequestId": rid}});
    json(StatusCode::OK, body.to_string())
}

fn json(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// TC3-HMAC-SHA256 as Tencent checks it: the credential, the clock, then the signature
/// recomputed over the headers the client says it signed.
fn verify(s: &Shared, headers: &HeaderMap, body: &[u8]) -> Result<(), (&'static str, String)> {
    let failure = || {
        (
            "AuthFailure.SignatureFailure",
            "The provided credentials could not be validated. Please check your signature is correct."
                .to_string(),
        )
    };
    let auth = header(headers, "authorization");
    let Some(rest) = auth.strip_prefix("TC3-HMAC-SHA256 ") else {
        return Err((
            "AuthFailure.InvalidAuthorization",
            "Authorization header is not in the TC3-HMAC-SHA256 format.".into(),
        ));
    };
    let mut fields: HashMap<&str, &str> = HashMap::new();
    for part in rest.split(',') {
        if let Some((k, v)) = part.trim().split_once('=') {
            fields.insert(k, v);
        }
    }
    let (Some(credential), Some(signed), Some(signature)) = (
        fields.get("Credential"),
        fields.get("SignedHeaders"),
        fields.get("Signature"),
    ) else {
        return Err((
            "AuthFailure.InvalidAuthorization",
            "Authorization header lacks Credential, SignedHeaders or Signature.".into(),
        ));
    };
    let scope: Vec<&str> = credential.split('/').collect();
    let [id, date, service, "tc3_request"] = scope[..] else {
        return Err(failure());
    };
    if id != SECRET_ID {
        return Err((
            "AuthFailure.SecretIdNotFound",
            "The SecretId is not found, please ensure that your SecretId is correct.".into(),
        ));
    }
    let Ok(ts) = header(headers, "x-tc-timestamp").parse::<i64>() else {
        return Err(failure());
    };
    if (now() - ts).abs() > 300 {
        return Err((
            "AuthFailure.SignatureExpire",
            "Signature expired. Timestamp and server time cannot differ by more than 5 minutes."
                .into(),
        ));
    }
    let day = chrono::DateTime::from_timestamp(ts, 0)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    if date != day || service != "sms" {
        return Err(failure());
    }
    let names: Vec<&str> = signed.split(';').collect();
    if !names.contains(&"content-type") || !names.contains(&"host") {
        return Err(failure());
    }
    let mut canonical_headers = String::new();
    for name in &names {
        canonical_headers.push_str(name);
        canonical_headers.push(':');
        canonical_headers.push_str(&header(headers, name).to_ascii_lowercase());
        canonical_headers.push('\n');
    }
    let canonical = format!(
        "POST\n/\n\n{canonical_headers}\n{signed}\n{}",
        hex(&Sha256::digest(body))
    );
    let to_sign = format!(
        "TC3-HMAC-SHA256\n{ts}\n{date}/sms/tc3_request\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let mut key = mac(format!("TC3{SECRET_KEY}").as_bytes(), date.as_bytes());
    key = mac(&key, b"sms");
    key = mac(&key, b"tc3_request");
    let expected = hex(&mac(&key, to_sign.as_bytes()));
    let forced = matches!(s.lock().mode, Mode::WrongSignature);
    if forced || expected != *signature {
        return Err(failure());
    }
    Ok(())
}

fn mac(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
    m.update(msg);
    m.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct SendStatus<'a> {
    serial_no: String,
    phone_number: &'a str,
    fee: u32,
    session_context: &'a str,
    code: &'a str,
    message: &'a str,
    iso_code: &'a str,
}

fn message_of(code: &str) -> &'static str {
    match code {
        "Ok" => "send success",
        "InvalidParameterValue.IncorrectPhoneNumber" => "incorrect phone number",
        "FailedOperation.PhoneNumberInBlacklist" => "phone number in black list",
        "LimitExceeded.PhoneNumberThirtySecondLimit" => {
            "the number of sms messages sent from a single mobile number within 30 seconds exceeds the upper limit"
        }
        "LimitExceeded.PhoneNumberDailyLimit" => {
            "the number of sms messages sent from a single mobile number every day exceeds the upper limit"
        }
        "InternalError.Timeout" => "request timeout",
        "InternalError.OtherError" => "other error",
        "FailedOperation.TemplateIncorrectOrUnapproved" => {
            "template is not approved or request content does not match the approved template content"
        }
        "FailedOperation.SignatureIncorrectOrUnapproved" => {
            "signature is not approved or request content does not match the approved signature content"
        }
        _ => "error",
    }
}

async fn send(s: &Shared, rid: &str, req: &serde_json::Value) -> Response {
    let numbers: Vec<String> = req["PhoneNumberSet"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str()).map(e164).collect())
        .unwrap_or_default();
    if numbers.is_empty() {
        return error(
            rid,
            "MissingParameter.EmptyPhoneNumberSet",
            "The phone number set is empty.",
        );
    }
    if numbers.len() > 200 {
        return error(
            rid,
            "LimitExceeded.PhoneNumberCountLimit",
            "The number of phone numbers in one request exceeds 200.",
        );
    }
    if req["SmsSdkAppId"].as_str() != Some(SMS_SDK_APP_ID) {
        return error(
            rid,
            "InvalidParameterValue.SdkAppIdNotExist",
            "SdkAppId does not exist.",
        );
    }
    let (Some(template_id), Some(_sign)) = (req["TemplateId"].as_str(), req["SignName"].as_str())
    else {
        return error(
            rid,
            "FailedOperation.TemplateIncorrectOrUnapproved",
            message_of("FailedOperation.TemplateIncorrectOrUnapproved"),
        );
    };
    let session: Arc<str> = req["SessionContext"].as_str().unwrap_or("").into();
    if session.len() >= 512 {
        return error(
            rid,
            "InvalidParameterValue",
            "SessionContext must be shorter than 512 bytes.",
        );
    }
    let template_id: Arc<str> = template_id.into();
    let params: Arc<[String]> = req["TemplateParamSet"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| v.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default();
    let mode = s.lock().mode.clone();
    let failing = match &mode {
        Mode::CallError(code) => return error(rid, code, message_of(code)),
        Mode::TooMany { retry_after_secs } => {
            let body = serde_json::json!({"Response": {"Error": {"Code": "RequestLimitExceeded", "Message": "Your current request times equals to `3001` in a second, which exceeds the frequency limit `3000` for a second."}, "RequestId": rid}});
            let mut r = json(StatusCode::TOO_MANY_REQUESTS, body.to_string());
            r.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                HeaderValue::from_str(&retry_after_secs.to_string()).expect("digits"),
            );
            return r;
        }
        Mode::ServerError => {
            return (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response();
        }
        Mode::CallErrorFor(map) => {
            if let Some(code) = numbers.iter().find_map(|n| map.get(n)) {
                return error(rid, code, message_of(code));
            }
            None
        }
        Mode::Partial(map) => Some(map),
        _ => None,
    };
    let at = now();
    let mut statuses: Vec<(usize, String, &str)> = Vec::with_capacity(numbers.len());
    let reversed;
    let omitted;
    {
        let mut inner = s.lock();
        reversed = inner.reversed;
        omitted = inner.omitted.clone();
        for (i, n) in numbers.iter().enumerate() {
            let code = match failing.and_then(|m| m.get(n)) {
                Some(code) => code.as_str(),
                None if !is_mainland_mobile(n) => "InvalidParameterValue.IncorrectPhoneNumber",
                None => "Ok",
            };
            let serial_no = if code == "Ok" {
                let serial = format!(
                    "2433:{}",
                    100_000_000_000_000 + s.serial.fetch_add(1, Ordering::Relaxed)
                );
                inner.sent.entry(n.clone()).or_default().push(Sent {
                    number: n.clone(),
                    serial_no: serial.clone(),
                    session_context: session.clone(),
                    template_id: template_id.clone(),
                    params: params.clone(),
                    at,
                });
                serial
            } else {
                String::new()
            };
            statuses.push((i, serial_no, code));
        }
    }
    if reversed {
        statuses.reverse();
    }
    statuses.retain(|(i, _, _)| !omitted.contains(&numbers[*i]));
    let set: Vec<SendStatus> = statuses
        .into_iter()
        .map(|(i, serial_no, code)| SendStatus {
            fee: u32::from(code == "Ok"),
            serial_no,
            phone_number: &numbers[i],
            session_context: &session,
            code,
            message: message_of(code),
            iso_code: "CN",
        })
        .collect();
    let body =
        serde_json::json!({"Response": {"SendStatusSet": set, "RequestId": rid}}).to_string();
    match mode {
        Mode::Hang(d) => {
            tokio::time::sleep(d).await;
            json(StatusCode::OK, body)
        }
        Mode::Malformed => json(StatusCode::OK, body[..body.len() / 2].to_string()),
        _ => json(StatusCode::OK, body),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct PullStatus<'a> {
    user_receive_time: i64,
    country_code: &'a str,
    subscriber_number: &'a str,
    phone_number: &'a str,
    serial_no: &'a str,
    report_status: &'a str,
    description: &'a str,
    session_context: Option<&'a str>,
}

async fn pull(s: &Shared, rid: &str, req: &serde_json::Value) -> Response {
    s.queries.fetch_add(1, Ordering::Relaxed);
    let number = e164(req["PhoneNumber"].as_str().unwrap_or(""));
    let (Some(begin), Some(end), Some(limit)) = (
        req["BeginTime"].as_i64(),
        req["EndTime"].as_i64(),
        req["Limit"].as_u64(),
    ) else {
        return error(
            rid,
            "MissingParameter",
            "BeginTime, EndTime and Limit are required.",
        );
    };
    if limit == 0 || limit > 100 {
        return error(
            rid,
            "InvalidParameterValue.LimitVerifyFail",
            "Limit must be 1-100.",
        );
    }
    if begin > end || now() - begin > 7 * 86_400 + 60 {
        return error(
            rid,
            "InvalidParameterValue.BeginTimeVerifyFail",
            "BeginTime is invalid: at most 7 days back, and not after EndTime.",
        );
    }
    if req["SmsSdkAppId"].as_str() != Some(SMS_SDK_APP_ID) {
        return error(
            rid,
            "InvalidParameterValue.SdkAppIdNotExist",
            "SdkAppId does not exist.",
        );
    }
    let mode = s.lock().query_mode.clone();
    match &mode {
        Mode::CallError(code) => return error(rid, code, message_of(code)),
        Mode::TooMany { retry_after_secs } => {
            let mut r = json(StatusCode::TOO_MANY_REQUESTS, String::new());
            r.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                HeaderValue::from_str(&retry_after_secs.to_string()).expect("digits"),
            );
            return r;
        }
        Mode::ServerError => {
            return (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response();
        }
        _ => {}
    }
    let body = {
        let inner = s.lock();
        let receipt = inner
            .receipts
            .get(&number)
            .cloned()
            .unwrap_or(Receipt::Success);
        let subscriber = number.strip_prefix("+86").unwrap_or(&number);
        let set: Vec<PullStatus> = match (&receipt, inner.sent.get(&number)) {
            (Receipt::Pending, _) | (_, None) => vec![],
            (_, Some(list)) => list
                .iter()
                .filter(|m| (begin..=end).contains(&m.at))
                .take(limit as usize)
                .map(|m| PullStatus {
                    user_receive_time: m.at + 1,
                    country_code: "86",
                    subscriber_number: subscriber,
                    phone_number: &number,
                    serial_no: &m.serial_no,
                    report_status: if receipt == Receipt::Success {
                        "SUCCESS"
                    } else {
                        "FAIL"
                    },
                    description: match &receipt {
                        Receipt::Fail(d) => d,
                        _ => "用户接收成功",
                    },
                    session_context: inner.session_in_receipts.then_some(&*m.session_context),
                })
                .collect(),
        };
        serde_json::json!({"Response": {"PullSmsSendStatusSet": set, "RequestId": rid}}).to_string()
    };
    match mode {
        Mode::Hang(d) => {
            tokio::time::sleep(d).await;
            json(StatusCode::OK, body)
        }
        Mode::Malformed => json(StatusCode::OK, body[..body.len() / 2].to_string()),
        Mode::WrongSignature => error(
            rid,
            "AuthFailure.SignatureFailure",
            "The provided credentials could not be validated. Please check your signature is correct.",
        ),
        _ => json(StatusCode::OK, body),
    }
}
