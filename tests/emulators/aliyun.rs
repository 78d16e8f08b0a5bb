//! A local Alibaba Cloud SMS (Dysmsapi 2017-05-25) for tests, benchmarks and demos: an axum
//! server on 127.0.0.1 that checks V3 `ACS3-HMAC-SHA256` signatures as Alibaba does (its own
//! implementation, written apart from `disclose`'s), answers `SendSms` and `QuerySendDetails` in
//! Alibaba's JSON, and records every message it "sent".
//!
//! ```ignore
//! #[path = "emulators/aliyun.rs"] mod aliyun_emulator;
//! let emu = aliyun_emulator::Emulator::start().await;    // emu.url = "http://127.0.0.1:PORT/"
//! emu.set_mode(aliyun_emulator::Mode::CallError("isv.SMS_TEMPLATE_ILLEGAL".into()));
//! assert!(emu.received().values().all(|&n| n == 1));
//! ```
//!
//! Like Alibaba, it answers a `SendSms` call once: `OK` and one `BizId` when every number is
//! sent, otherwise one error code and nothing sent.
#![allow(dead_code)]

// Each emulator includes it; `tests/providers.rs` includes all four, hence four copies there.
#[path = "server.rs"]
#[allow(clippy::duplicate_mod)]
mod server;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::{Digest, Sha256};

pub const ACCESS_KEY_ID: &str = "LTAI5tDiscloseEmulator01";
pub const ACCESS_KEY_SECRET: &str = "discloseEmulatorAccessKeySecret0";

/// How the emulator answers. `set_mode` for `SendSms`, `set_query_mode` for `QuerySendDetails`.
#[derive(Clone, Debug)]
pub enum Mode {
    /// Every call of valid numbers is sent (a number that is not a mobile number refuses the
    /// call with `isv.MOBILE_NUMBER_ILLEGAL`, as Alibaba would).
    Ok,
    /// A call holding one of these numbers (E.164) is refused with its code; nothing is sent.
    /// Calls without them are sent.
    Partial(HashMap<String, String>),
    /// Every call is refused with this code (and the HTTP status Alibaba gives it).
    CallError(String),
    /// HTTP 429 with `Retry-After`; nothing is sent.
    TooMany { retry_after_secs: u64 },
    /// HTTP 500 `InternalError`; nothing is sent.
    ServerError,
    /// The messages are sent at once, the answer comes after this long.
    Hang(Duration),
    /// The messages are sent, and the answer is cut off mid-JSON.
    Malformed,
    /// Every call is refused with `SignatureDoesNotMatch`, whatever its signature.
    WrongSignature,
}

impl Mode {
    pub fn partial<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Mode {
        Mode::Partial(
            pairs
                .into_iter()
                .map(|(n, c)| (e164(n), c.to_string()))
                .collect(),
        )
    }
}

/// The receipt `QuerySendDetails` shows for a number's messages.
#[derive(Clone, Debug, PartialEq)]
pub enum Receipt {
    /// `SendStatus` 3, `ErrCode` DELIVERED.
    Delivered,
    /// `SendStatus` 2 with this carrier code.
    Failed(String),
    /// `SendStatus` 1: waiting for the receipt.
    Waiting,
}

#[derive(Clone, Debug)]
pub struct Sent {
    pub number: String,
    pub biz_id: Arc<str>,
    pub out_id: Arc<str>,
    pub template_code: Arc<str>,
    pub template_param: Arc<str>,
    pub sign_name: Arc<str>,
    /// Unix seconds.
    pub at: i64,
}

pub struct Emulator {
    pub url: String,
    pub state: Arc<Shared>,
}

pub struct Shared {
    inner: Mutex<Inner>,
    counter: AtomicU64,
    requests: AtomicU64,
}

struct Inner {
    mode: Mode,
    query_mode: Mode,
    sent: HashMap<String, Vec<Sent>>,
    receipts: HashMap<String, Receipt>,
    nonces: HashSet<String>,
}

impl Emulator {
    pub async fn start() -> Emulator {
        let state = Arc::new(Shared {
            inner: Mutex::new(Inner {
                mode: Mode::Ok,
                query_mode: Mode::Ok,
                sent: HashMap::new(),
                receipts: HashMap::new(),
                nonces: HashSet::new(),
            }),
            counter: AtomicU64::new(0),
            requests: AtomicU64::new(0),
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

    /// The receipt of every message to `number` (default: `Delivered`).
    pub fn set_receipt(&self, number: &str, receipt: Receipt) {
        self.state.lock().receipts.insert(e164(number), receipt);
    }

    /// Messages sent, per number (E.164).
    pub fn received(&self) -> HashMap<String, usize> {
        self.state
            .lock()
            .sent
            .iter()
            .map(|(n, v)| (n.clone(), v.len()))
            .collect()
    }

    pub fn sent(&self) -> Vec<Sent> {
        self.state.lock().sent.values().flatten().cloned().collect()
    }

    /// `SendSms` requests received (signed correctly or not).
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::Relaxed)
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `+86` and 11 digits for a mainland number however written; `+` and digits otherwise.
pub fn e164(n: &str) -> String {
    let n = n.trim();
    let digits = n.trim_start_matches('+');
    if let Some(rest) = digits.strip_prefix("0086") {
        return format!("+86{rest}");
    }
    if digits.len() == 11 && digits.starts_with('1') && !n.starts_with('+') {
        return format!("+86{digits}");
    }
    format!("+{digits}")
}

fn valid(n: &str) -> bool {
    let d = n.trim_start_matches('+');
    d.bytes().all(|b| b.is_ascii_digit())
        && match d.strip_prefix("86") {
            Some(m) if d.len() == 13 => {
                m.starts_with('1') && matches!(m.as_bytes()[1], b'3'..=b'9')
            }
            _ => (8..=15).contains(&d.len()) && !d.starts_with('0'),
        }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `yyyy-MM-dd HH:mm:ss` and `yyyyMMdd` in China time.
fn china(t: i64) -> (String, String) {
    let t = chrono::DateTime::from_timestamp(t + 8 * 3600, 0).unwrap_or_default();
    (
        t.format("%Y-%m-%d %H:%M:%S").to_string(),
        t.format("%Y%m%d").to_string(),
    )
}

async fn handle(
    State(s): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let action = header(&headers, "x-acs-action").to_string();
    if action == "SendSms" {
        s.requests.fetch_add(1, Ordering::Relaxed);
    }
    let rid = request_id(&s);
    if let Err((status, code, message)) = verify(&s, &method, &uri, &headers, &body) {
        return error(&rid, status, code, &message);
    }
    if header(&headers, "x-acs-version") != "2017-05-25" {
        return error(
            &rid,
            StatusCode::BAD_REQUEST,
            "InvalidVersion",
            "Specified parameter Version is not valid.",
        );
    }
    let mut params: HashMap<String, String> = pairs(uri.query().unwrap_or(""));
    if header(&headers, "content-type").starts_with("application/x-www-form-urlencoded") {
        params.extend(pairs(std::str::from_utf8(&body).unwrap_or("")));
    }
    match action.as_str() {
        "SendSms" => send(&s, &rid, &params).await,
        "QuerySendDetails" => query(&s, &rid, &params).await,
        _ => error(
            &rid,
            StatusCode::NOT_FOUND,
            "InvalidAction.NotFound",
            "Specified api is not found, please check your url and method.",
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
    let n = s.counter.fetch_add(1, Ordering::Relaxed);
    format!("F655A8D5-B967-440B-8683-{n:012X}")
}

fn error(rid: &str, status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({"RequestId": rid, "HostId": "dysmsapi.aliyuncs.com", "Code": code, "Message": message, "Recommend": "https://api.aliyun.com/troubleshoot"});
    json(status, body.to_string())
}

fn json(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json;charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

/// The HTTP status Alibaba gives a code: gateway errors their own, business errors 200.
fn status_of(code: &str) -> StatusCode {
    match code {
        "SignatureDoesNotMatch" | "Forbidden.RAM" => StatusCode::FORBIDDEN,
        c if c.starts_with("InvalidAccessKeyId") => StatusCode::NOT_FOUND,
        "InternalError" => StatusCode::INTERNAL_SERVER_ERROR,
        "ServiceUnavailable" => StatusCode::SERVICE_UNAVAILABLE,
        c if c.starts_with("Throttling")
            || c.starts_with("MissingParameter")
            || c.starts_with("InvalidParameter")
            || c == "IncompleteSignature" =>
        {
            StatusCode::BAD_REQUEST
        }
        _ => StatusCode::OK,
    }
}

fn message_of(code: &str) -> &'static str {
    match code {
        "isv.MOBILE_NUMBER_ILLEGAL" => "非法手机号",
        "isv.BUSINESS_LIMIT_CONTROL" => "触发小时级流控Permits:5",
        "isv.DAY_LIMIT_CONTROL" => "触发日发送限额",
        "isv.SMS_TEMPLATE_ILLEGAL" => "该账号下找不到对应模板",
        "isv.SMS_SIGNATURE_ILLEGAL" => "该账号下找不到对应签名",
        "isv.AMOUNT_NOT_ENOUGH" => "账户余额不足",
        "isp.SYSTEM_ERROR" => "系统错误",
        "Throttling.User" => "Request was denied due to user flow control.",
        "InternalError" => "The request processing has failed due to some unknown error.",
        "ServiceUnavailable" => "The request has failed due to a temporary failure of the server.",
        _ => "error",
    }
}

/// Split `a=b&c=d`, percent-decoded (`+` as space, as in a form).
fn pairs(s: &str) -> HashMap<String, String> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
                {
                    Ok(v) => {
                        out.push(v);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// RFC 3986: unreserved characters as they are, every other byte `%XY`.
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

type Refusal = (StatusCode, &'static str, String);

/// ACS3-HMAC-SHA256 as Alibaba checks it: the AccessKey, the body hash, the headers that must
/// be signed, the date, the nonce, then the signature recomputed.
fn verify(
    s: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), Refusal> {
    let incomplete = || {
        (
            StatusCode::BAD_REQUEST,
            "IncompleteSignature",
            "The request signature does not conform to Aliyun standards.".to_string(),
        )
    };
    let mismatch = || {
        (
            StatusCode::FORBIDDEN,
            "SignatureDoesNotMatch",
            "Specified signature does not match our calculation.".to_string(),
        )
    };
    let auth = header(headers, "authorization");
    let Some(rest) = auth.strip_prefix("ACS3-HMAC-SHA256 ") else {
        return Err(incomplete());
    };
    let fields: HashMap<&str, &str> = rest
        .split(',')
        .filter_map(|p| p.trim().split_once('='))
        .collect();
    let (Some(&id), Some(&signed), Some(&signature)) = (
        fields.get("Credential"),
        fields.get("SignedHeaders"),
        fields.get("Signature"),
    ) else {
        return Err(incomplete());
    };
    if id != ACCESS_KEY_ID {
        return Err((
            StatusCode::NOT_FOUND,
            "InvalidAccessKeyId.NotFound",
            "Specified access key is not found.".into(),
        ));
    }
    let names: Vec<&str> = signed.split(';').collect();
    let present_acs = headers
        .keys()
        .map(|k| k.as_str())
        .filter(|k| k.starts_with("x-acs-"));
    let must: Vec<&str> = ["host"]
        .into_iter()
        .chain(present_acs)
        .chain(
            headers
                .contains_key("content-type")
                .then_some("content-type"),
        )
        .collect();
    if must.iter().any(|m| !names.contains(m)) {
        return Err(incomplete());
    }
    if header(headers, "x-acs-content-sha256") != hex(&Sha256::digest(body)) {
        return Err(mismatch());
    }
    // The date must be within 15 minutes (providers.md §1.7); the code name is unconfirmed.
    let date = header(headers, "x-acs-date");
    match chrono::DateTime::parse_from_rfc3339(date) {
        Ok(t) if (now() - t.timestamp()).abs() <= 900 => {}
        _ => {
            return Err((
                StatusCode::BAD_REQUEST,
                "InvalidTimeStamp.Expired",
                "Specified time stamp or date value is expired.".into(),
            ));
        }
    }
    let mut query: Vec<(String, String)> = pairs(uri.query().unwrap_or(""))
        .into_iter()
        .map(|(k, v)| (encode(&k), encode(&v)))
        .collect();
    query.sort();
    let canonical_query = query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut canonical_headers = String::new();
    for name in &names {
        canonical_headers.push_str(&format!("{name}:{}\n", header(headers, name)));
    }
    let canonical = format!(
        "{}\n{}\n{canonical_query}\n{canonical_headers}\n{signed}\n{}",
        method.as_str(),
        uri.path(),
        header(headers, "x-acs-content-sha256")
    );
    let to_sign = format!(
        "ACS3-HMAC-SHA256\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(ACCESS_KEY_SECRET.as_bytes()).expect("any key");
    mac.update(to_sign.as_bytes());
    let expected = hex(&mac.finalize().into_bytes());
    let mut inner = s.lock();
    if matches!(inner.mode, Mode::WrongSignature) || expected != signature {
        return Err(mismatch());
    }
    // A nonce is good once (anti-replay); the code name is unconfirmed.
    if !inner
        .nonces
        .insert(header(headers, "x-acs-signature-nonce").to_string())
    {
        return Err((
            StatusCode::BAD_REQUEST,
            "SignatureNonceUsed",
            "Specified signature nonce was used already.".into(),
        ));
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn send(s: &Shared, rid: &str, p: &HashMap<String, String>) -> Response {
    let bad = |code: &str, message: &str| error(rid, status_of(code), code, message);
    let numbers: Vec<String> = p
        .get("PhoneNumbers")
        .map(|v| {
            v.split(',')
                .filter(|n| !n.trim().is_empty())
                .map(e164)
                .collect()
        })
        .unwrap_or_default();
    if numbers.is_empty() {
        return bad(
            "MissingParameter",
            "PhoneNumbers is mandatory for this action.",
        );
    }
    if numbers.len() > 1000 {
        return bad("isv.MOBILE_COUNT_OVER_LIMIT", "手机号码数量超过限制");
    }
    let (Some(sign), Some(template)) = (p.get("SignName"), p.get("TemplateCode")) else {
        return bad(
            "MissingParameter",
            "SignName and TemplateCode are mandatory for this action.",
        );
    };
    let param = p.get("TemplateParam").cloned().unwrap_or_default();
    if !param.is_empty() {
        let ok = serde_json::from_str::<serde_json::Value>(&param)
            .ok()
            .and_then(|v| v.as_object().map(|o| o.values().all(|v| v.is_string())))
            .unwrap_or(false);
        if !ok {
            return bad("isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值");
        }
    }
    let out_id: Arc<str> = p.get("OutId").map(String::as_str).unwrap_or("").into();
    if out_id.chars().count() >= 256 {
        return bad("isv.INVALID_PARAMETERS", "OutId 超长");
    }
    let mode = s.lock().mode.clone();
    match &mode {
        Mode::CallError(code) => return bad(code, message_of(code)),
        Mode::TooMany { retry_after_secs } => {
            let mut r = error(
                rid,
                StatusCode::TOO_MANY_REQUESTS,
                "Throttling.User",
                message_of("Throttling.User"),
            );
            r.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                HeaderValue::from_str(&retry_after_secs.to_string()).expect("digits"),
            );
            return r;
        }
        Mode::ServerError => return bad("InternalError", message_of("InternalError")),
        Mode::Partial(map) => {
            if let Some(code) = numbers.iter().find_map(|n| map.get(n)) {
                return bad(code, message_of(code));
            }
        }
        _ => {}
    }
    if numbers.iter().any(|n| !valid(n)) {
        return bad(
            "isv.MOBILE_NUMBER_ILLEGAL",
            message_of("isv.MOBILE_NUMBER_ILLEGAL"),
        );
    }
    let n = s.counter.fetch_add(1, Ordering::Relaxed);
    let biz_id: Arc<str> = format!("{}^0", 900_619_746_936_498_440u64 + n).into();
    let at = now();
    {
        let (sign, template, param): (Arc<str>, Arc<str>, Arc<str>) =
            (sign.as_str().into(), template.as_str().into(), param.into());
        let mut inner = s.lock();
        for number in &numbers {
            inner.sent.entry(number.clone()).or_default().push(Sent {
                number: number.clone(),
                biz_id: biz_id.clone(),
                out_id: out_id.clone(),
                template_code: template.clone(),
                template_param: param.clone(),
                sign_name: sign.clone(),
                at,
            });
        }
    }
    let body =
        serde_json::json!({"Code": "OK", "Message": "OK", "BizId": &*biz_id, "RequestId": rid})
            .to_string();
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
struct Detail<'a> {
    phone_num: &'a str,
    send_status: i64,
    err_code: &'a str,
    template_code: &'a str,
    content: String,
    send_date: String,
    receive_date: String,
    out_id: &'a str,
}

async fn query(s: &Shared, rid: &str, p: &HashMap<String, String>) -> Response {
    let bad = |code: &str, message: &str| error(rid, status_of(code), code, message);
    let (Some(number), Some(date)) = (p.get("PhoneNumber"), p.get("SendDate")) else {
        return bad(
            "MissingParameter",
            "PhoneNumber and SendDate are mandatory.",
        );
    };
    let number = e164(number);
    let page_size: usize = p.get("PageSize").and_then(|v| v.parse().ok()).unwrap_or(0);
    let page: usize = p
        .get("CurrentPage")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if !(1..=50).contains(&page_size) || page == 0 {
        return bad(
            "isv.INVALID_PARAMETERS",
            "PageSize must be 1-50 and CurrentPage at least 1.",
        );
    }
    let mode = s.lock().query_mode.clone();
    match &mode {
        Mode::CallError(code) => return bad(code, message_of(code)),
        Mode::ServerError => return bad("InternalError", message_of("InternalError")),
        Mode::TooMany { .. } => {
            return error(
                rid,
                StatusCode::TOO_MANY_REQUESTS,
                "Throttling.User",
                message_of("Throttling.User"),
            );
        }
        Mode::WrongSignature => {
            return error(
                rid,
                StatusCode::FORBIDDEN,
                "SignatureDoesNotMatch",
                "Specified signature does not match our calculation.",
            );
        }
        _ => {}
    }
    let body = {
        let inner = s.lock();
        let receipt = inner
            .receipts
            .get(&number)
            .cloned()
            .unwrap_or(Receipt::Delivered);
        let biz = p.get("BizId");
        let all: Vec<&Sent> = inner
            .sent
            .get(&number)
            .map(|v| {
                v.iter()
                    .filter(|m| china(m.at).1 == *date)
                    .filter(|m| biz.is_none_or(|b| *b == *m.biz_id))
                    .collect()
            })
            .unwrap_or_default();
        let phone = number.strip_prefix("+86").unwrap_or(&number);
        let details: Vec<Detail> = all
            .iter()
            .skip((page - 1) * page_size)
            .take(page_size)
            .map(|m| {
                let (send_date, _) = china(m.at);
                let (status, err) = match &receipt {
                    Receipt::Delivered => (3, "DELIVERED"),
                    Receipt::Failed(code) => (2, code.as_str()),
                    Receipt::Waiting => (1, ""),
                };
                Detail {
                    phone_num: phone,
                    send_status: status,
                    err_code: err,
                    template_code: &m.template_code,
                    content: format!("【{}】{}", m.sign_name, m.template_param),
                    receive_date: if status == 1 {
                        String::new()
                    } else {
                        china(m.at + 2).0
                    },
                    send_date,
                    out_id: &m.out_id,
                }
            })
            .collect();
        serde_json::json!({
            "Code": "OK", "Message": "OK", "RequestId": rid,
            "TotalCount": all.len().to_string(),
            "SmsSendDetailDTOs": {"SmsSendDetailDTO": details},
        })
        .to_string()
    };
    match mode {
        Mode::Hang(d) => {
            tokio::time::sleep(d).await;
            json(StatusCode::OK, body)
        }
        Mode::Malformed => json(StatusCode::OK, body[..body.len() / 2].to_string()),
        _ => json(StatusCode::OK, body),
    }
}
