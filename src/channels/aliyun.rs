//! Alibaba Cloud SMS (Dysmsapi 2017-05-25, providers.md §1): `SendSms`, signed with the V3
//! signature `ACS3-HMAC-SHA256` (§1.7), and `QuerySendDetails` as the status query for
//! deliveries left unknown (§1.4). Art 10 names SMS among the channels of public disclosure.
//!
//! **One answer per call.** `SendSms` takes up to 1000 numbers but answers once: a `Code` and,
//! only when the code is `OK`, one `BizId` for the whole call. So the call is all or nothing:
//! `OK` means every number of it was accepted (each delivery's reference is the call's `BizId`),
//! and any other code means none was. A number-specific refusal (`isv.MOBILE_NUMBER_ILLEGAL`, a
//! number's frequency limit `isv.BUSINESS_LIMIT_CONTROL`) therefore stops the valid numbers too,
//! without naming the bad one: such a call is repeated one number per call, which is safe because
//! nothing of it went out, and gives every number its own answer. (`SendBatchSms` has the same
//! one-answer shape and no more than 100 numbers; it is not used.)
//!
//! | answer | outcome |
//! |---|---|
//! | `Code == "OK"` | `Delivered`, reference = `BizId` |
//! | `isv.MOBILE_NUMBER_ILLEGAL` (one number) | `Failed`, permanent |
//! | sign name, template, parameters, content, account, credentials, signature | `Failed`, permanent, logged as a configuration problem |
//! | `isv.BUSINESS_LIMIT_CONTROL` (one number), `isv.DAY_LIMIT_CONTROL`, `isv.MONTH_LIMIT_CONTROL`, `Throttling*` | `RetryAfter` the window |
//! | `isp.SYSTEM_ERROR`, `InternalError`, `ServiceUnavailable`, HTTP 5xx | `Failed`, transient (504: `Unknown`) |
//! | HTTP 429 | `RetryAfter` honouring `Retry-After` |
//! | no connection | `Failed`, transient |
//! | timeout, connection lost, a 200 whose body cannot be read | `Unknown` |
//!
//! Alibaba says its sends are not idempotent and that a timed-out send must be checked against
//! the receipts before it is sent again (§1.1): that is what `resolve` does. `QuerySendDetails`
//! lists a message from its submission on, with the `OutId` it was sent with, so a message of
//! this job that is not listed was not sent; it becomes `not_sent` (and the engine sends again)
//! only after Alibaba has gone on showing nothing for `resolve_after_secs` ([`Absence`]).
//!
//! ```toml
//! # channels/sms.toml
//! channel = "sms"
//! batch_size = 200
//! quiet_hours = { from = "21:00", to = "08:00" }
//!
//! [transport]
//! type = "aliyun_sms"
//! access_key_id_env = "ALIBABA_CLOUD_ACCESS_KEY_ID"       # names of variables, never the values
//! access_key_secret_env = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"
//! # endpoint = "https://dysmsapi.aliyuncs.com/"   sign_name = "某县组工" (else each template's)
//! # timeout_ms = 10000   numbers_per_call = 200   resolve_lookback_secs = 86400
//! # resolve_after_secs = 600   status_queries_per_second = 50
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use governor::DefaultDirectRateLimiter;
use serde::Deserialize;

use super::http::{self, Secret, hmac_sha256};
use super::sms::{self, Absence};
use super::{Batch, BoxFuture, Channel, Item, Outcome};
use crate::job::ChannelKind;
use crate::ledger::audit::sha256_hex;
use crate::phone::mask;

pub const DEFAULT_ENDPOINT: &str = "https://dysmsapi.aliyuncs.com/";
const VERSION: &str = "2017-05-25";
const FORM: &str = "application/x-www-form-urlencoded";
/// `PhoneNumbers` takes at most 1000 numbers (providers.md §1.2).
pub const MAX_NUMBERS: usize = 1000;
/// `QuerySendDetails`: `PageSize` 1–50 (providers.md §1.4).
const PAGE_SIZE: usize = 50;
/// Pages read per number and day before giving up (1,000 messages to one number in a day).
const MAX_PAGES: usize = 20;
/// `SendDate` may be at most 30 days back (providers.md §1.4).
pub const MAX_LOOKBACK_SECS: u64 = 30 * 86_400;

fn default_endpoint() -> String {
    DEFAULT_ENDPOINT.into()
}
fn default_timeout_ms() -> u64 {
    10_000
}
fn default_numbers_per_call() -> usize {
    200
}
fn default_lookback() -> u64 {
    86_400
}
fn default_resolve_after() -> u64 {
    600
}
fn default_status_qps() -> u32 {
    50
}

/// `[transport] type = "aliyun_sms"` in a channel file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AliyunConfig {
    /// The API's URL; an emulator's in tests.
    #[serde(default = "default_endpoint")]
    pub endpoint: String,
    /// Names of the environment variables holding the AccessKey (never the values).
    pub access_key_id_env: String,
    pub access_key_secret_env: String,
    /// Overrides the sign name of every template (without 【】).
    #[serde(default)]
    pub sign_name: Option<String>,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Numbers per `SendSms` call (at most 1000).
    #[serde(default = "default_numbers_per_call")]
    pub numbers_per_call: usize,
    /// How far back the status query looks for a delivery's message (at most 30 days).
    #[serde(default = "default_lookback")]
    pub resolve_lookback_secs: u64,
    /// How long Alibaba must go on showing no record of a message before it counts as not sent
    /// (and is sent again); see [`Absence`].
    #[serde(default = "default_resolve_after")]
    pub resolve_after_secs: u64,
    /// `QuerySendDetails` calls per second (they share the account's 5000/s with `SendSms`).
    #[serde(default = "default_status_qps")]
    pub status_queries_per_second: u32,
}

impl AliyunConfig {
    /// Pure checks; every problem at once.
    pub fn validate(&self, channel: ChannelKind, _batch_size: usize) -> Vec<String> {
        let mut problems = Vec::new();
        sms::transport_problems(
            &mut problems,
            "aliyun_sms",
            channel,
            &self.endpoint,
            DEFAULT_ENDPOINT,
        );
        sms::env_name_problems(
            &mut problems,
            &[
                ("access_key_id_env", &self.access_key_id_env),
                ("access_key_secret_env", &self.access_key_secret_env),
            ],
        );
        sms::sign_name_problems(&mut problems, self.sign_name.as_deref());
        if self.timeout_ms == 0 || self.timeout_ms > 120_000 {
            problems.push(format!("timeout_ms {} must be 1–120000", self.timeout_ms));
        }
        if self.numbers_per_call == 0 || self.numbers_per_call > MAX_NUMBERS {
            problems.push(format!(
                "numbers_per_call {} must be 1–{MAX_NUMBERS} (Alibaba's limit per SendSms call)",
                self.numbers_per_call
            ));
        }
        if self.resolve_lookback_secs == 0 || self.resolve_lookback_secs > MAX_LOOKBACK_SECS {
            problems.push(format!(
                "resolve_lookback_secs {} must be 1–{MAX_LOOKBACK_SECS} (QuerySendDetails reaches 30 days back)",
                self.resolve_lookback_secs
            ));
        }
        if self.status_queries_per_second == 0 || self.status_queries_per_second > 5000 {
            problems.push(format!(
                "status_queries_per_second {} must be 1–5000",
                self.status_queries_per_second
            ));
        }
        problems
    }
}

/// The Alibaba Cloud SMS transport.
pub struct Aliyun {
    cfg: AliyunConfig,
    url: reqwest::Url,
    /// The `host` header, sent and signed as one string.
    host: String,
    access_key_id: Secret,
    access_key_secret: Secret,
    client: reqwest::Client,
    status_limiter: DefaultDirectRateLimiter,
    absence: Absence,
}

impl Aliyun {
    /// Open the transport with the credentials named in the channel file.
    pub fn from_config(cfg: &AliyunConfig) -> Result<Aliyun, String> {
        let what = "channel sms (aliyun_sms)";
        let id = Secret::from_env(&cfg.access_key_id_env, what)?;
        let secret = Secret::from_env(&cfg.access_key_secret_env, what)?;
        Aliyun::new(cfg.clone(), id, secret)
    }

    pub fn new(
        cfg: AliyunConfig,
        access_key_id: Secret,
        access_key_secret: Secret,
    ) -> Result<Aliyun, String> {
        let (url, host) = http::endpoint("aliyun_sms", &cfg.endpoint)?;
        let client = http::client(Duration::from_millis(cfg.timeout_ms))?;
        Ok(Aliyun {
            status_limiter: http::per_second(cfg.status_queries_per_second),
            absence: Absence::new(Duration::from_secs(cfg.resolve_after_secs)),
            url,
            host,
            access_key_id,
            access_key_secret,
            client,
            cfg,
        })
    }

    /// One V3-signed RPC call with the parameters in a form body. `x-acs-date` is the real
    /// clock, not the engine's (`DISCLOSE_CLOCK`): Alibaba refuses a date more than 15 minutes
    /// off its own (providers.md §1.7).
    async fn call(&self, action: &str, params: &[(&str, String)]) -> Result<Reply, reqwest::Error> {
        let body = form(params);
        let hashed = sha256_hex(body.as_bytes());
        let mut nonce = [0u8; 16];
        if getrandom::fill(&mut nonce).is_err() {
            nonce = fastrand::u128(..).to_le_bytes();
        }
        let headers: BTreeMap<String, String> = [
            ("host", self.host.clone()),
            ("content-type", FORM.to_string()),
            ("x-acs-action", action.to_string()),
            ("x-acs-version", VERSION.to_string()),
            (
                "x-acs-date",
                chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            ),
            ("x-acs-signature-nonce", http::hex(&nonce)),
            ("x-acs-content-sha256", hashed),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let authorization = acs3_authorization(
            "POST",
            self.url.path(),
            &[],
            &headers,
            self.access_key_id.expose(),
            self.access_key_secret.expose(),
        );
        let mut req = self.client.post(self.url.clone());
        for (k, v) in &headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let resp = req
            .header(reqwest::header::AUTHORIZATION, authorization)
            .body(body)
            .send()
            .await?;
        let status = resp.status();
        let retry_after = http::retry_after(resp.headers());
        let body = resp.bytes().await?.to_vec();
        Ok(Reply {
            status,
            retry_after,
            body,
        })
    }

    /// What Alibaba holds for one delivery: `QuerySendDetails` for the number on each day of the
    /// look-back window (newest first, every page), searched for this job's `OutId`.
    async fn status(&self, batch: &Batch, item: &Item, number: &str) -> Outcome {
        let unknown = |detail: String| Outcome::Unknown { detail };
        let now = chrono::Utc::now().with_timezone(&crate::clock::china());
        let lookback = self.cfg.resolve_lookback_secs.min(MAX_LOOKBACK_SECS) as i64;
        let first = (now - chrono::Duration::seconds(lookback)).date_naive();
        let mut day = now.date_naive();
        let mut records: Vec<Detail> = Vec::new();
        while day >= first {
            let mut page = 1;
            loop {
                self.status_limiter.until_ready().await;
                let params = [
                    ("PhoneNumber", aliyun_number(number)),
                    ("SendDate", day.format("%Y%m%d").to_string()),
                    ("PageSize", PAGE_SIZE.to_string()),
                    ("CurrentPage", page.to_string()),
                ];
                let reply = match self.call("QuerySendDetails", &params).await {
                    Ok(r) => r,
                    Err(e) => {
                        let why = match http::call_failed(&e) {
                            Outcome::Failed { detail, .. } | Outcome::Unknown { detail } => detail,
                            other => format!("{other:?}"),
                        };
                        return unknown(format!("the status query failed: {why}"));
                    }
                };
                let answer: QueryReply = match serde_json::from_slice(&reply.body) {
                    Ok(a) => a,
                    Err(_) => {
                        return unknown(format!(
                            "the status query's answer (HTTP {}) cannot be read",
                            reply.status.as_u16()
                        ));
                    }
                };
                if answer.code.as_deref() != Some("OK") || !reply.status.is_success() {
                    let code = answer.code.unwrap_or_default();
                    if classify(&code, "", batch.now) == Class::Config {
                        tracing::error!(channel = "sms", transport = "aliyun_sms", %code, "Alibaba refused the status query: a configuration problem");
                    }
                    return unknown(format!(
                        "the status query was refused: HTTP {}, {code}: {}",
                        reply.status.as_u16(),
                        answer.message.unwrap_or_default()
                    ));
                }
                let Some(total) = answer.total_count.as_ref().and_then(count) else {
                    return unknown("the status query's answer has no TotalCount".into());
                };
                let got = answer
                    .sms_send_detail_dtos
                    .map(|d| d.sms_send_detail_dto)
                    .unwrap_or_default();
                let n = got.len();
                records.extend(got);
                if n == 0 || page * PAGE_SIZE >= total {
                    break;
                }
                page += 1;
                if page > MAX_PAGES {
                    return unknown(format!(
                        "Alibaba holds more than {} messages to this number on {day}; not all could be read",
                        MAX_PAGES * PAGE_SIZE
                    ));
                }
            }
            let Some(prev) = day.pred_opt() else { break };
            day = prev;
        }
        let key = sms::number_key(number);
        let ours: Vec<&Detail> = records
            .iter()
            .filter(|d| d.phone_num.is_empty() || sms::number_key(&d.phone_num) == key)
            .filter(|d| sms::is_ours(&d.out_id, &batch.job.id, item.delivery_id))
            .collect();
        if ours.is_empty() {
            // Alibaba lists a message from its submission on, always with the OutId it was
            // sent with (providers.md §1.4), so an empty list is a real absence.
            return self
                .absence
                .none_found(item.delivery_id, batch.now, "Alibaba");
        }
        self.absence.found(item.delivery_id);
        if ours.iter().any(|d| d.send_status == Some(3)) {
            return Outcome::Delivered { reference: None };
        }
        if let Some(d) = ours.iter().find(|d| d.send_status == Some(2)) {
            return Outcome::Failed {
                code: "report_fail".into(),
                permanent: true,
                detail: format!(
                    "Alibaba's receipt says the message did not reach the phone: {}",
                    d.err_code
                ),
            };
        }
        unknown(format!(
            "Alibaba has the message (sent {}), waiting for the carrier's receipt",
            ours[0].send_date
        ))
    }
}

impl sms::Sender for Aliyun {
    /// One `SendSms` call; one outcome per delivery, in order.
    fn send<'s>(
        &'s self,
        batch: &'s Batch,
        items: Vec<&'s Item>,
        content: &'s sms::Content<'s>,
    ) -> BoxFuture<'s, Vec<Outcome>> {
        Box::pin(async move {
            let numbers: Vec<String> = items
                .iter()
                .map(|i| aliyun_number(i.address.as_deref().unwrap_or_default()))
                .collect();
            // Values must be strings (isv.INVALID_JSON_PARAM otherwise, providers.md §1.2).
            let template_param: serde_json::Map<String, serde_json::Value> = content
                .params
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect();
            let mut params = vec![
                ("PhoneNumbers", numbers.join(",")),
                ("SignName", content.sign_name.to_string()),
                ("TemplateCode", content.template.to_string()),
                ("OutId", sms::reference(&batch.job.id, &items)),
            ];
            if !template_param.is_empty() {
                params.push((
                    "TemplateParam",
                    serde_json::Value::Object(template_param).to_string(),
                ));
            }
            let reply = match self.call("SendSms", &params).await {
                Ok(r) => r,
                Err(e) => {
                    let outcome = http::call_failed(&e);
                    tracing::warn!(channel = "sms", transport = "aliyun_sms", job = %batch.job.id, numbers = items.len(), ?outcome, "SendSms call failed");
                    return vec![outcome; items.len()];
                }
            };
            match read_send(&reply) {
                Answer::Accepted(biz_id) => items
                    .iter()
                    .map(|_| Outcome::Delivered {
                        reference: biz_id.clone(),
                    })
                    .collect(),
                Answer::Error(err) if items.len() > 1 && number_specific(&err.code) => {
                    tracing::info!(channel = "sms", transport = "aliyun_sms", job = %batch.job.id, code = %err.code, numbers = items.len(), "a number-specific refusal of the whole call (nothing went out); sending one number per call");
                    let mut out = Vec::with_capacity(items.len());
                    for item in &items {
                        out.extend(self.send(batch, vec![*item], content).await);
                    }
                    out
                }
                Answer::Error(err) => {
                    let class = classify(&err.code, &err.message, batch.now);
                    let shown: Vec<String> = items
                        .iter()
                        .take(3)
                        .map(|i| mask(i.address.as_deref().unwrap_or_default()))
                        .collect();
                    if class == Class::Config {
                        tracing::error!(channel = "sms", transport = "aliyun_sms", job = %batch.job.id, code = %err.code, message = %err.message, numbers = items.len(), "Alibaba refused the call: a configuration problem (AccessKey, clock, sign name, template, parameters or account); every delivery of the call fails");
                    } else {
                        tracing::warn!(channel = "sms", transport = "aliyun_sms", job = %batch.job.id, code = %err.code, message = %err.message, numbers = ?shown, "Alibaba refused the call");
                    }
                    let mut outcome = outcome(&err.code, &err.message, batch.now);
                    if let (Outcome::Failed { detail, .. }, Some(id)) =
                        (&mut outcome, &err.request_id)
                    {
                        detail.push_str(&format!(" (RequestId {id})"));
                    }
                    vec![outcome; items.len()]
                }
                Answer::Outcome(outcome) => {
                    tracing::warn!(channel = "sms", transport = "aliyun_sms", job = %batch.job.id, numbers = items.len(), status = reply.status.as_u16(), ?outcome, "SendSms answered without a result");
                    vec![outcome; items.len()]
                }
            }
        })
    }
}

impl Channel for Aliyun {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Sms
    }

    fn sends_by_address(&self) -> bool {
        true
    }

    fn status_queries_per_second(&self) -> Option<u32> {
        Some(self.cfg.status_queries_per_second)
    }

    fn transport(&self) -> &str {
        "aliyun_sms"
    }

    fn deliver<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Vec<Outcome>> {
        let provider = sms::Provider {
            transport: "aliyun_sms",
            name: "aliyun",
            template_key: "template_code",
        };
        let per_call = self.cfg.numbers_per_call.clamp(1, MAX_NUMBERS);
        Box::pin(sms::deliver(
            self,
            batch,
            provider,
            self.cfg.sign_name.as_deref(),
            per_call,
        ))
    }

    /// `QuerySendDetails` per number: `SendStatus` 3 → delivered, 2 → failed for good with the
    /// carrier's `ErrCode`, 1 (waiting for the receipt) → still unknown; no message of this job
    /// → `not_sent` by the rule of [`Absence`]; a failed query → still unknown.
    fn resolve<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Vec<Outcome>> {
        Box::pin(sms::resolve(batch, move |item, number| {
            self.status(batch, item, number)
        }))
    }
}

/// Mainland numbers as Alibaba's examples write them (11 digits); others as country code and
/// number without `+` (providers.md §1.2).
fn aliyun_number(e164: &str) -> String {
    match e164.strip_prefix("+86") {
        Some(national) if national.len() == 11 => national.to_string(),
        _ => e164.trim_start_matches('+').to_string(),
    }
}

fn count(v: &serde_json::Value) -> Option<usize> {
    match v {
        serde_json::Value::String(s) => s.trim().parse().ok(),
        serde_json::Value::Number(n) => n.as_u64().map(|n| n as usize),
        _ => None,
    }
}

struct Reply {
    status: reqwest::StatusCode,
    retry_after: Option<Duration>,
    body: Vec<u8>,
}

enum Answer {
    Accepted(Option<String>),
    Error(ApiError),
    Outcome(Outcome),
}

struct ApiError {
    code: String,
    message: String,
    request_id: Option<String>,
}

fn read_send(reply: &Reply) -> Answer {
    let status = reply.status;
    if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        return Answer::Outcome(Outcome::RetryAfter {
            after: reply.retry_after.unwrap_or(Duration::from_secs(1)),
            code: "http_429".into(),
        });
    }
    if status == reqwest::StatusCode::GATEWAY_TIMEOUT {
        return Answer::Outcome(Outcome::Unknown {
            detail: "HTTP 504: a gateway gave up waiting for Alibaba; it may have been sent".into(),
        });
    }
    match serde_json::from_slice::<SendReply>(&reply.body) {
        Ok(SendReply {
            code: Some(code),
            biz_id,
            ..
        }) if code == "OK" && status.is_success() => Answer::Accepted(biz_id),
        // Gateway errors come with their HTTP status (403 SignatureDoesNotMatch, 503 …) and the
        // same body shape; business errors with 200 (providers.md §1.8).
        Ok(SendReply {
            code: Some(code),
            message,
            request_id,
            ..
        }) if code != "OK" => Answer::Error(ApiError {
            code,
            message: message.unwrap_or_default(),
            request_id,
        }),
        _ if !status.is_success() => Answer::Outcome(Outcome::Failed {
            code: format!("http_{}", status.as_u16()),
            permanent: false,
            detail: format!("answered HTTP {status} without Alibaba's error body"),
        }),
        Ok(_) => Answer::Outcome(Outcome::Unknown {
            detail: "Alibaba's answer to SendSms has no Code; it may have been sent".into(),
        }),
        Err(e) => Answer::Outcome(Outcome::Unknown {
            detail: format!(
                "Alibaba's answer to SendSms cannot be read ({e}); it may have been sent"
            ),
        }),
    }
}

/// How a `Code` is to be taken (providers.md §1.8).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Class {
    /// The number cannot be sent to.
    Permanent,
    /// AccessKey, signature, clock, sign name, template, parameters, content or account:
    /// permanent for the deliveries, and a person has to act.
    Config,
    /// Surely not sent; try again later.
    Transient,
    Retry(Duration),
}

fn classify(code: &str, message: &str, now: chrono::DateTime<chrono::FixedOffset>) -> Class {
    match code {
        // A number's frequency limit; the message names the window, e.g. "触发天级流控Permits:10"
        // (§1.8). Minute and hour windows are natural windows, the day a rolling 24 h (§1.9).
        "isv.BUSINESS_LIMIT_CONTROL" => Class::Retry(if message.contains("分钟") {
            Duration::from_secs(60)
        } else if message.contains("小时") {
            Duration::from_secs(3600)
        } else if message.contains('天') {
            Duration::from_secs(86_400)
        } else {
            Duration::from_secs(60)
        }),
        "isv.DAY_LIMIT_CONTROL" => Class::Retry(sms::until_next_day(now)),
        "isv.MONTH_LIMIT_CONTROL" => Class::Retry(sms::until_next_month(now)),
        c if c == "Throttling" || c.starts_with("Throttling.") => {
            Class::Retry(Duration::from_secs(1))
        }
        "isp.SYSTEM_ERROR" | "InternalError" | "ServiceUnavailable" | "SignatureNonceUsed" => {
            Class::Transient
        }
        c if c.starts_with("InternalError.") || c.starts_with("ServiceUnavailable.") => {
            Class::Transient
        }
        "isv.MOBILE_NUMBER_ILLEGAL" => Class::Permanent,
        // Only in a call of several numbers, which is then split.
        "isv.MOBILE_COUNT_OVER_LIMIT" => Class::Transient,
        c if c.starts_with("isv.")
            || c.starts_with("isp.")
            || c.starts_with("SignatureDoesNotMatch")
            || c.starts_with("IncompleteSignature")
            || c.starts_with("InvalidAccessKeyId")
            || c.starts_with("InvalidTimeStamp")
            || c.starts_with("Forbidden")
            || c.starts_with("MissingParameter")
            || c.starts_with("InvalidParameter") =>
        {
            Class::Config
        }
        // A code we do not know refused the call: not sent, so worth another try.
        _ => Class::Transient,
    }
}

/// Refusals about one number that Alibaba gives for the whole call.
fn number_specific(code: &str) -> bool {
    matches!(
        code,
        "isv.MOBILE_NUMBER_ILLEGAL" | "isv.BUSINESS_LIMIT_CONTROL" | "isv.MOBILE_COUNT_OVER_LIMIT"
    )
}

fn outcome(code: &str, message: &str, now: chrono::DateTime<chrono::FixedOffset>) -> Outcome {
    match classify(code, message, now) {
        Class::Permanent | Class::Config => Outcome::Failed {
            code: code.into(),
            permanent: true,
            detail: message.into(),
        },
        Class::Transient => Outcome::Failed {
            code: code.into(),
            permanent: false,
            detail: message.into(),
        },
        Class::Retry(after) => Outcome::RetryAfter {
            after,
            code: code.into(),
        },
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SendReply {
    code: Option<String>,
    message: Option<String>,
    biz_id: Option<String>,
    request_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct QueryReply {
    code: Option<String>,
    message: Option<String>,
    /// A string in the SDK's model; a number is taken too.
    total_count: Option<serde_json::Value>,
    #[serde(rename = "SmsSendDetailDTOs")]
    sms_send_detail_dtos: Option<Dtos>,
}

#[derive(Deserialize)]
struct Dtos {
    #[serde(rename = "SmsSendDetailDTO", default)]
    sms_send_detail_dto: Vec<Detail>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Detail {
    #[serde(default)]
    phone_num: String,
    send_status: Option<i64>,
    #[serde(default)]
    err_code: String,
    #[serde(default)]
    send_date: String,
    #[serde(default)]
    out_id: String,
}

/// RFC 3986 percent-encoding as Alibaba's signatures want it: `A–Z a–z 0–9 - _ . ~` as they are,
/// every other byte of the UTF-8 as `%XY` (upper-case hex); so space is `%20`, `*` is `%2A`
/// (providers.md §1.6).
pub fn pct(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len() * 3);
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
    }
    out
}

/// `k=v&…`, names and values encoded by [`pct`], sorted by name: the canonical query string
/// (§1.7), and the form body (whose bytes are hashed as they are sent).
fn form(params: &[(&str, String)]) -> String {
    let mut pairs: Vec<(String, String)> = params.iter().map(|(k, v)| (pct(k), pct(v))).collect();
    pairs.sort();
    pairs
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// `Authorization` for an `ACS3-HMAC-SHA256` signed request (providers.md §1.7). `headers` are
/// every header to sign, names in lower case, including `x-acs-content-sha256` (the hex SHA-256
/// of the body): `host`, `content-type` and every `x-acs-*` header.
pub fn acs3_authorization(
    method: &str,
    path: &str,
    query: &[(&str, String)],
    headers: &BTreeMap<String, String>,
    access_key_id: &str,
    access_key_secret: &str,
) -> String {
    let (canonical, signed) = acs3_canonical_request(method, path, query, headers);
    let to_sign = format!("ACS3-HMAC-SHA256\n{}", sha256_hex(canonical.as_bytes()));
    let signature =
        http::hex(hmac_sha256(access_key_secret.as_bytes(), to_sign.as_bytes()).as_ref());
    format!(
        "ACS3-HMAC-SHA256 Credential={access_key_id},SignedHeaders={signed},Signature={signature}"
    )
}

/// The canonical request and the signed-header list.
fn acs3_canonical_request(
    method: &str,
    path: &str,
    query: &[(&str, String)],
    headers: &BTreeMap<String, String>,
) -> (String, String) {
    let canonical_headers: String = headers
        .iter()
        .map(|(k, v)| format!("{}:{}\n", k.to_ascii_lowercase(), v.trim()))
        .collect();
    let signed = headers
        .keys()
        .map(|k| k.to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(";");
    let payload_hash = headers
        .get("x-acs-content-sha256")
        .cloned()
        .unwrap_or_else(|| sha256_hex(b""));
    let canonical = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed}\n{payload_hash}",
        method.to_ascii_uppercase(),
        if path.is_empty() { "/" } else { path },
        form(query),
    );
    (canonical, signed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of Alibaba's "V3 request structure and signature" page (ECS
    /// RunInstances, 2023-10-26), reproduced by many independent signers.
    #[test]
    fn acs3_matches_alibabas_documented_example() {
        let headers: BTreeMap<String, String> = [
            ("host", "ecs.cn-shanghai.aliyuncs.com"),
            ("x-acs-action", "RunInstances"),
            ("x-acs-version", "2014-05-26"),
            ("x-acs-date", "2023-10-26T10:22:32Z"),
            ("x-acs-signature-nonce", "3156853299f313e23d1673dc12e1703d"),
            (
                "x-acs-content-sha256",
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let query = [
            ("RegionId", "cn-shanghai".to_string()),
            (
                "ImageId",
                "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd".to_string(),
            ),
        ];
        let (canonical, _) = acs3_canonical_request("POST", "/", &query, &headers);
        assert_eq!(
            canonical,
            "POST\n/\nImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai\nhost:ecs.cn-shanghai.aliyuncs.com\nx-acs-action:RunInstances\nx-acs-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\nx-acs-date:2023-10-26T10:22:32Z\nx-acs-signature-nonce:3156853299f313e23d1673dc12e1703d\nx-acs-version:2014-05-26\n\nhost;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            acs3_authorization(
                "POST",
                "/",
                &query,
                &headers,
                "YourAccessKeyId",
                "YourAccessKeySecret"
            ),
            "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
        );
    }

    #[test]
    fn percent_encoding_is_rfc3986_with_upper_case_hex() {
        assert_eq!(pct("a b*c~d/é+="), "a%20b%2Ac~d%2F%C3%A9%2B%3D");
        assert_eq!(pct("某县组工"), "%E6%9F%90%E5%8E%BF%E7%BB%84%E5%B7%A5");
        assert_eq!(
            form(&[("b", "2".into()), ("a", "x y".into()), ("c", String::new())]),
            "a=x%20y&b=2&c="
        );
    }

    fn now() -> chrono::DateTime<chrono::FixedOffset> {
        chrono::DateTime::parse_from_rfc3339("2026-12-01T10:00:00+08:00").unwrap()
    }

    #[test]
    fn codes_map_to_the_outcome_contract() {
        let o = |code: &str, msg: &str| outcome(code, msg, now());
        assert!(matches!(
            o("isv.MOBILE_NUMBER_ILLEGAL", ""),
            Outcome::Failed {
                permanent: true,
                ..
            }
        ));
        assert!(matches!(
            o("isv.SMS_TEMPLATE_ILLEGAL", ""),
            Outcome::Failed {
                permanent: true,
                ..
            }
        ));
        assert!(matches!(
            o("SignatureDoesNotMatch", ""),
            Outcome::Failed {
                permanent: true,
                ..
            }
        ));
        assert!(matches!(
            o("isp.SYSTEM_ERROR", ""),
            Outcome::Failed {
                permanent: false,
                ..
            }
        ));
        assert!(matches!(
            o("ServiceUnavailable", ""),
            Outcome::Failed {
                permanent: false,
                ..
            }
        ));
        assert_eq!(
            o("isv.BUSINESS_LIMIT_CONTROL", "触发分钟级流控Permits:1"),
            Outcome::RetryAfter {
                after: Duration::from_secs(60),
                code: "isv.BUSINESS_LIMIT_CONTROL".into()
            }
        );
        assert!(
            matches!(o("isv.BUSINESS_LIMIT_CONTROL", "触发小时级流控Permits:5"), Outcome::RetryAfter { after, .. } if after == Duration::from_secs(3600))
        );
        assert!(
            matches!(o("isv.BUSINESS_LIMIT_CONTROL", "触发天级流控Permits:10"), Outcome::RetryAfter { after, .. } if after == Duration::from_secs(86_400))
        );
        assert!(
            matches!(o("Throttling.User", ""), Outcome::RetryAfter { after, .. } if after == Duration::from_secs(1))
        );
        assert!(
            matches!(o("isv.DAY_LIMIT_CONTROL", ""), Outcome::RetryAfter { after, .. } if after == Duration::from_secs(14 * 3600 + 60))
        );
        assert_eq!(classify("isv.AMOUNT_NOT_ENOUGH", "", now()), Class::Config);
        assert!(number_specific("isv.BUSINESS_LIMIT_CONTROL"));
        assert!(!number_specific("isv.DAY_LIMIT_CONTROL"));
    }

    #[test]
    fn numbers_are_written_as_alibaba_expects() {
        assert_eq!(aliyun_number("+8613800138000"), "13800138000");
        assert_eq!(aliyun_number("+85291234567"), "85291234567");
    }

    fn config() -> AliyunConfig {
        toml::from_str(
            "access_key_id_env = \"ALIBABA_CLOUD_ACCESS_KEY_ID\"\naccess_key_secret_env = \"ALIBABA_CLOUD_ACCESS_KEY_SECRET\"\n",
        )
        .unwrap()
    }

    #[test]
    fn configuration_has_defaults_and_reports_every_problem() {
        let c = config();
        assert_eq!(c.endpoint, DEFAULT_ENDPOINT);
        assert_eq!((c.timeout_ms, c.numbers_per_call), (10_000, 200));
        assert!(c.validate(ChannelKind::Sms, 200).is_empty());
        let bad = AliyunConfig {
            endpoint: "ftp://x/".into(),
            access_key_id_env: String::new(),
            numbers_per_call: 1001,
            resolve_lookback_secs: 0,
            ..c
        };
        let problems = bad.validate(ChannelKind::Wechat, 200);
        assert_eq!(problems.len(), 5, "{problems:#?}");
    }

    #[test]
    fn a_channel_file_names_the_transport() {
        use crate::channels::{ChannelConfig, Transport};
        let file = "channel = \"sms\"\n[transport]\ntype = \"aliyun_sms\"\naccess_key_id_env = \"A\"\naccess_key_secret_env = \"B\"\nsign_name = \"某县组工\"\n";
        let cfg: ChannelConfig = toml::from_str(file).unwrap();
        assert!(
            matches!(&cfg.transport, Transport::AliyunSms(c) if c.sign_name.as_deref() == Some("某县组工"))
        );
        assert!(cfg.validate().is_empty(), "{:?}", cfg.validate());
        let wrong =
            toml::from_str::<ChannelConfig>(&file.replace("sms\"\n[", "wechat\"\n[")).unwrap();
        assert_eq!(wrong.validate().len(), 1, "{:?}", wrong.validate());
    }
}
