//! Tencent Cloud SMS (API 2021-01-11, providers.md §2): `SendSms` with up to 200 numbers a call,
//! signed with TC3-HMAC-SHA256, and `PullSmsSendStatusByPhoneNumber` as the status query for
//! deliveries left unknown. Art 10 names SMS among the channels of public disclosure; mainland
//! SMS carries a registered template and its parameters, never free text (SPEC §4).
//!
//! What each answer means for a delivery (the outcome contract of [`super::Outcome`]):
//!
//! | answer | outcome |
//! |---|---|
//! | `SendStatusSet[n].Code == "Ok"` | `Delivered`, reference = `SerialNo` |
//! | invalid number, blacklist, template, sign, content, account, `AuthFailure.*` | `Failed`, permanent (configuration problems logged as errors) |
//! | `LimitExceeded.*`, `RequestLimitExceeded` | `RetryAfter` the window the code names |
//! | `InternalError.*` | `Failed`, transient — except `InternalError.Timeout` and `.SendAndRecvFail`, which Tencent gives when its own hand-over to the carrier timed out: the message may be out, so `Unknown` |
//! | HTTP 429 | `RetryAfter` honouring `Retry-After` |
//! | HTTP 5xx | `Failed`, transient — except 504 (a gateway gave up waiting on Tencent: `Unknown`) |
//! | no connection | `Failed`, transient ([`http::call_failed`]) |
//! | timeout, connection lost, a 200 whose body cannot be read | `Unknown` |
//!
//! Per-number results are matched to deliveries by `PhoneNumber`, never by position. A number
//! the answer does not mention is `Unknown`. A number-specific error for the whole call (e.g.
//! `InvalidParameterValue.IncorrectPhoneNumber` as `Response.Error`) says that nothing of the call
//! went out but not which number is at fault, so the call is repeated one number per call.
//!
//! **The status query** ([`Channel::resolve`]) pulls the number's receipts over the look-back
//! window and looks for this job's `SessionContext`. Tencent lists a message there only once the
//! carrier's receipt is in, so "no record" may mean "receipt not in yet": it becomes `not_sent`
//! (and the engine sends again) only after Tencent has gone on showing nothing for
//! `resolve_after_secs` ([`Absence`]). A phone switched off for longer than that has no receipt
//! yet, and would get the message twice; where a duplicate is worse than a delay, raise
//! `resolve_after_secs` towards the pull's 7 days. Receipts carry `SessionContext` only once
//! Tencent's SMS helper enables it for the account; until then a receipt cannot be attributed,
//! and a delivery with any receipt in the window stays unknown rather than being resent.
//!
//! ```toml
//! # channels/sms.toml
//! channel = "sms"
//! batch_size = 200                 # Tencent takes at most 200 numbers a call
//! calls_per_second = 50            # SendSms allows 3000/s per account
//! quiet_hours = { from = "21:00", to = "08:00" }
//!
//! [transport]
//! type = "tencent_sms"
//! sms_sdk_app_id = "1400006666"
//! secret_id_env = "TENCENTCLOUD_SECRET_ID"     # names of variables, never the values
//! secret_key_env = "TENCENTCLOUD_SECRET_KEY"
//! # endpoint = "https://sms.tencentcloudapi.com/"   region = "ap-guangzhou"
//! # sign_name = "某县组工"   (else each template's)   timeout_ms = 10000
//! # resolve_lookback_secs = 86400   resolve_after_secs = 600   status_queries_per_second = 20
//! ```

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Duration;

use governor::DefaultDirectRateLimiter;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::http::{self, Secret, hmac_sha256};
use super::sms::{self, Absence, NumberKey};
use super::{Batch, BoxFuture, Channel, Item, Outcome};
use crate::job::ChannelKind;
use crate::ledger::audit::sha256_hex;
use crate::phone::mask;

mod quick;

pub const DEFAULT_ENDPOINT: &str = "https://sms.tencentcloudapi.com/";
const VERSION: &str = "2021-01-11";
/// The service in the credential scope must match the host prefix `sms` (providers.md §2.2).
const SERVICE: &str = "sms";
const CONTENT_TYPE: &str = "application/json";
/// `PhoneNumberSet` takes at most 200 numbers (providers.md §2.3).
pub const MAX_NUMBERS: usize = 200;
/// `PullSmsSendStatusByPhoneNumber`: `Limit` at most 100, `Offset` fixed at 0 (SDK models).
const PULL_LIMIT: usize = 100;
/// The pull reaches at most 7 days back (providers.md §2.6).
pub const MAX_LOOKBACK_SECS: u64 = 7 * 86_400;

fn default_endpoint() -> String {
    DEFAULT_ENDPOINT.into()
}
fn default_region() -> String {
    "ap-guangzhou".into()
}
fn default_timeout_ms() -> u64 {
    10_000
}
fn default_lookback() -> u64 {
    86_400
}
fn default_resolve_after() -> u64 {
    600
}
fn default_status_qps() -> u32 {
    20
}

/// `[transport] type = "tencent_sms"` in a channel file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TencentConfig {
    /// The API's URL; an emulator's in tests.
    #[serde(default = "default_endpoint")]
    pub endpoint: String,
    /// `X-TC-Region`, required by API 2021-01-11.
    #[serde(default = "default_region")]
    pub region: String,
    /// The SMS application (`SmsSdkAppId`, e.g. `1400006666`).
    pub sms_sdk_app_id: String,
    /// Overrides the sign name of every template (the signature's content, not its id).
    #[serde(default)]
    pub sign_name: Option<String>,
    /// Names of the environment variables holding the credentials (never the values).
    pub secret_id_env: String,
    pub secret_key_env: String,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// How far back the status query looks for a delivery's message (at most 7 days).
    #[serde(default = "default_lookback")]
    pub resolve_lookback_secs: u64,
    /// How long Tencent must go on showing no record of a message before it counts as not sent
    /// (and is sent again); see [`Absence`].
    #[serde(default = "default_resolve_after")]
    pub resolve_after_secs: u64,
    /// Status queries per second (Tencent allows 20 for this API, providers.md §2.6).
    #[serde(default = "default_status_qps")]
    pub status_queries_per_second: u32,
}

impl TencentConfig {
    /// Pure checks; every problem at once.
    pub fn validate(&self, channel: ChannelKind, batch_size: usize) -> Vec<String> {
        let mut problems = Vec::new();
        sms::transport_problems(
            &mut problems,
            "tencent_sms",
            channel,
            &self.endpoint,
            DEFAULT_ENDPOINT,
        );
        if self.region.trim().is_empty() {
            problems.push("region must not be empty (e.g. \"ap-guangzhou\")".into());
        }
        if self.sms_sdk_app_id.is_empty()
            || !self.sms_sdk_app_id.chars().all(|c| c.is_ascii_digit())
        {
            problems.push(format!(
                "sms_sdk_app_id {:?} must be the digits of the SMS application (e.g. \"1400006666\")",
                self.sms_sdk_app_id
            ));
        }
        sms::sign_name_problems(&mut problems, self.sign_name.as_deref());
        sms::env_name_problems(
            &mut problems,
            &[
                ("secret_id_env", &self.secret_id_env),
                ("secret_key_env", &self.secret_key_env),
            ],
        );
        if self.timeout_ms == 0 || self.timeout_ms > 120_000 {
            problems.push(format!("timeout_ms {} must be 1–120000", self.timeout_ms));
        }
        if self.resolve_lookback_secs == 0 || self.resolve_lookback_secs > MAX_LOOKBACK_SECS {
            problems.push(format!(
                "resolve_lookback_secs {} must be 1–{MAX_LOOKBACK_SECS} (Tencent keeps 7 days of receipts)",
                self.resolve_lookback_secs
            ));
        }
        if self.status_queries_per_second == 0 || self.status_queries_per_second > 20 {
            problems.push(format!(
                "status_queries_per_second {} must be 1–20 (Tencent's limit for the status query)",
                self.status_queries_per_second
            ));
        }
        if batch_size > MAX_NUMBERS {
            problems.push(format!(
                "batch_size {batch_size} exceeds Tencent's {MAX_NUMBERS} numbers per call"
            ));
        }
        problems
    }
}

pub(super) fn is_env_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The Tencent Cloud SMS transport.
pub struct Tencent {
    cfg: TencentConfig,
    url: reqwest::Url,
    /// The `Host` header, sent and signed as one string.
    host: String,
    secret_id: Secret,
    secret_key: Secret,
    client: reqwest::Client,
    status_limiter: DefaultDirectRateLimiter,
    absence: Absence,
}

impl Tencent {
    /// Open the transport with the credentials named in the channel file.
    pub fn from_config(cfg: &TencentConfig) -> Result<Tencent, String> {
        let what = "channel sms (tencent_sms)";
        let id = Secret::from_env(&cfg.secret_id_env, what)?;
        let key = Secret::from_env(&cfg.secret_key_env, what)?;
        Tencent::new(cfg.clone(), id, key)
    }

    pub fn new(
        cfg: TencentConfig,
        secret_id: Secret,
        secret_key: Secret,
    ) -> Result<Tencent, String> {
        let (url, host) = http::endpoint("tencent_sms", &cfg.endpoint)?;
        let client = http::client(Duration::from_millis(cfg.timeout_ms))?;
        Ok(Tencent {
            status_limiter: http::per_second(cfg.status_queries_per_second),
            absence: Absence::new(Duration::from_secs(cfg.resolve_after_secs)),
            url,
            host,
            secret_id,
            secret_key,
            client,
            cfg,
        })
    }

    /// One signed call. The timestamp is the real clock, not the engine's (`DISCLOSE_CLOCK`):
    /// Tencent refuses signatures more than 5 minutes off its own (providers.md §2.2).
    async fn call(&self, action: &str, body: String) -> Result<Reply, reqwest::Error> {
        let timestamp = chrono::Utc::now().timestamp();
        let authorization = tc3_authorization(
            self.secret_id.expose(),
            self.secret_key.expose(),
            SERVICE,
            &self.host,
            CONTENT_TYPE,
            timestamp,
            body.as_bytes(),
        );
        let resp = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::HOST, &self.host)
            .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
            .header(reqwest::header::AUTHORIZATION, authorization)
            .header("X-TC-Action", action)
            .header("X-TC-Version", VERSION)
            .header("X-TC-Timestamp", timestamp.to_string())
            .header("X-TC-Region", &self.cfg.region)
            .body(body)
            .send()
            .await?;
        let status = resp.status();
        let retry_after = http::retry_after(resp.headers());
        let body = resp.bytes().await?;
        Ok(Reply {
            status,
            retry_after,
            body,
        })
    }

    /// Match `SendStatusSet` to the deliveries by number (each status used once, so a number
    /// given twice gets two answers); a number the answer leaves out is unknown.
    fn per_number(&self, batch: &Batch, items: &[&Item], set: Vec<SendStatus<'_>>) -> Vec<Outcome> {
        fn number(item: &Item) -> &str {
            item.address.as_deref().unwrap_or_default()
        }
        let same_length = set.len() == items.len();
        let mut set: Vec<Option<SendStatus<'_>>> = set.into_iter().map(Some).collect();
        // Tencent answers in the order of `PhoneNumberSet`, but does not promise to: matched by
        // position while the numbers agree (as sent, or as the same number written another way),
        // by number for the rest (the first unused status of the number, then the next).
        // Built when position first fails: the unused statuses by number, the first at the end
        // of each list.
        let mut by_number: Option<HashMap<NumberKey, Vec<usize>>> = None;
        let mut status_of = |i: usize, item: &Item| -> Option<SendStatus<'_>> {
            if by_number.is_none() && same_length {
                let agrees = set[i].as_ref().is_some_and(|s| {
                    *s.phone_number == *number(item)
                        || sms::number_key_value(&s.phone_number)
                            == sms::number_key_value(number(item))
                });
                if agrees {
                    return set[i].take();
                }
            }
            let by_number = by_number.get_or_insert_with(|| {
                let mut map: HashMap<NumberKey, Vec<usize>> = HashMap::new();
                for (j, s) in set.iter().enumerate().rev() {
                    if let Some(s) = s {
                        map.entry(sms::number_key_value(&s.phone_number))
                            .or_default()
                            .push(j);
                    }
                }
                map
            });
            let j = by_number
                .get_mut(&sms::number_key_value(number(item)))?
                .pop()?;
            set[j].take()
        };
        let mut failures: HashMap<String, (usize, Vec<String>)> = HashMap::new();
        let out: Vec<Outcome> = items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let Some(s) = status_of(i, item) else {
                    return Outcome::Unknown {
                        detail:
                            "Tencent's answer has no status for this number; it may have been sent"
                                .into(),
                    };
                };
                if s.code == "Ok" {
                    return Outcome::Delivered {
                        reference: Some(s.serial_no.into_owned()),
                    };
                }
                let f = failures.entry(s.code.to_string()).or_default();
                f.0 += 1;
                if f.1.len() < 3 {
                    f.1.push(mask(number(item)));
                }
                outcome(&s.code, &s.message, batch.now)
            })
            .collect();
        for (code, (count, some)) in failures {
            if classify(&code, batch.now) == Class::Config {
                tracing::error!(channel = "sms", transport = "tencent_sms", job = %batch.job.id, %code, count, "Tencent refused numbers for a configuration problem (sign name, template, application or account): fix the channel or template");
            } else {
                tracing::warn!(channel = "sms", transport = "tencent_sms", job = %batch.job.id, %code, count, numbers = ?some, "Tencent refused some numbers");
            }
        }
        out
    }

    /// What Tencent holds for one delivery: its receipts for the number over the look-back
    /// window, searched for this job's `SessionContext` (providers.md §2.6).
    async fn status(&self, batch: &Batch, item: &Item, number: &str) -> Outcome {
        let end = chrono::Utc::now().timestamp();
        let begin = end - self.cfg.resolve_lookback_secs.min(MAX_LOOKBACK_SECS) as i64;
        let body = json!({
            "BeginTime": begin,
            "EndTime": end,
            "Offset": 0,
            "Limit": PULL_LIMIT,
            "PhoneNumber": number,
            "SmsSdkAppId": self.cfg.sms_sdk_app_id,
        })
        .to_string();
        let unknown = |detail: String| Outcome::Unknown { detail };
        let reply = match self.call("PullSmsSendStatusByPhoneNumber", body).await {
            Ok(r) => r,
            Err(e) => {
                let why = match http::call_failed(&e) {
                    Outcome::Failed { detail, .. } | Outcome::Unknown { detail } => detail,
                    other => format!("{other:?}"),
                };
                return unknown(format!("the status query failed: {why}"));
            }
        };
        if !reply.status.is_success() {
            return unknown(format!(
                "the status query was answered with HTTP {}",
                reply.status.as_u16()
            ));
        }
        let env: Envelope<PullReply> = match serde_json::from_slice(&reply.body) {
            Ok(env) => env,
            Err(e) => return unknown(format!("the status query's answer cannot be read: {e}")),
        };
        if let Some(err) = env.response.error {
            if classify(&err.code, batch.now) == Class::Config {
                tracing::error!(channel = "sms", transport = "tencent_sms", code = %err.code, message = %err.message, "Tencent refused the status query: a configuration problem");
            }
            return unknown(format!(
                "the status query was refused: {}: {}",
                err.code, err.message
            ));
        }
        let Some(set) = env.response.pull_sms_send_status_set else {
            return unknown("the status query's answer has no PullSmsSendStatusSet".into());
        };
        let key = sms::number_key(number);
        let ours: Vec<&PullStatus> = set
            .iter()
            .filter(|s| s.phone_number.is_empty() || sms::number_key(&s.phone_number) == key)
            .filter(|s| {
                s.session_context
                    .as_deref()
                    .is_some_and(|c| sms::is_ours(c, &batch.job.id, item.delivery_id))
            })
            .collect();
        if let Some(s) = ours
            .iter()
            .find(|s| s.report_status.eq_ignore_ascii_case("SUCCESS"))
        {
            self.absence.found(item.delivery_id);
            return Outcome::Delivered {
                reference: Some(s.serial_no.clone()),
            };
        }
        if let Some(s) = ours
            .iter()
            .find(|s| s.report_status.eq_ignore_ascii_case("FAIL"))
        {
            self.absence.found(item.delivery_id);
            return Outcome::Failed {
                code: "report_fail".into(),
                permanent: true,
                detail: format!(
                    "Tencent's receipt says the message did not reach the phone: {} (SerialNo {})",
                    s.description, s.serial_no
                ),
            };
        }
        if let Some(s) = ours.first() {
            self.absence.found(item.delivery_id);
            return unknown(format!(
                "Tencent has the message (SerialNo {}) with receipt status {:?}",
                s.serial_no, s.report_status
            ));
        }
        // Nothing of ours. Only a complete list with every receipt attributable shows that.
        if set
            .iter()
            .any(|s| s.session_context.as_deref().is_none_or(str::is_empty))
        {
            return unknown("Tencent holds receipts for this number without a SessionContext, so one of them may be this message (Tencent returns SessionContext in receipts only once its SMS helper enables it)".into());
        }
        if set.len() >= PULL_LIMIT {
            return unknown(format!(
                "Tencent returned its maximum of {PULL_LIMIT} receipts for this number; this message may be among those not returned"
            ));
        }
        self.absence
            .none_found(item.delivery_id, batch.now, "Tencent")
    }
}

impl sms::Sender for Tencent {
    /// Send one call of at most [`MAX_NUMBERS`] deliveries; one outcome each, in order.
    fn send<'s>(
        &'s self,
        batch: &'s Batch,
        items: Vec<&'s Item>,
        content: &'s sms::Content<'s>,
    ) -> BoxFuture<'s, Vec<Outcome>> {
        Box::pin(async move {
            let numbers: Vec<&str> = items
                .iter()
                .map(|i| i.address.as_deref().unwrap_or_default())
                .collect();
            let params: Vec<&str> = content.params.iter().map(|(_, v)| v.as_str()).collect();
            let body = serde_json::to_string(&SendSms {
                phone_number_set: numbers,
                session_context: sms::reference(&batch.job.id, &items),
                sign_name: content.sign_name,
                sms_sdk_app_id: &self.cfg.sms_sdk_app_id,
                template_id: content.template,
                template_param_set: params,
            })
            .unwrap_or_default();
            let reply = match self.call("SendSms", body).await {
                Ok(r) => r,
                Err(e) => {
                    let outcome = http::call_failed(&e);
                    tracing::warn!(channel = "sms", transport = "tencent_sms", job = %batch.job.id, numbers = items.len(), ?outcome, "SendSms call failed");
                    return vec![outcome; items.len()];
                }
            };
            match read_send(&reply) {
                Answer::PerNumber(set) => self.per_number(batch, &items, set),
                Answer::Error(err) if items.len() > 1 && number_specific(&err.code) => {
                    // Nothing of the call went out, and Tencent does not say which number is at
                    // fault: one call per number gives each its own answer.
                    tracing::info!(channel = "sms", transport = "tencent_sms", job = %batch.job.id, code = %err.code, numbers = items.len(), "a number-specific error for the whole call; sending one number per call");
                    let mut out = Vec::with_capacity(items.len());
                    for item in &items {
                        out.extend(self.send(batch, vec![*item], content).await);
                    }
                    out
                }
                Answer::Error(err) => {
                    let outcome = whole_call(&err, batch, items.len());
                    vec![outcome; items.len()]
                }
                Answer::Outcome(outcome) => {
                    tracing::warn!(channel = "sms", transport = "tencent_sms", job = %batch.job.id, numbers = items.len(), status = reply.status.as_u16(), ?outcome, "SendSms answered without per-number results");
                    vec![outcome; items.len()]
                }
            }
        })
    }
}

impl Channel for Tencent {
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
        "tencent_sms"
    }

    fn deliver<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Vec<Outcome>> {
        let provider = sms::Provider {
            transport: "tencent_sms",
            name: "tencent",
            template_key: "template_id",
        };
        let per_call = MAX_NUMBERS;
        Box::pin(sms::deliver(
            self,
            batch,
            provider,
            self.cfg.sign_name.as_deref(),
            per_call,
        ))
    }

    /// `PullSmsSendStatusByPhoneNumber` per number, at most `status_queries_per_second`.
    /// Receipt `SUCCESS` → delivered (reference `SerialNo`); `FAIL` → failed for good, with the
    /// receipt's description; no message of this job → `not_sent` by the rule of [`Absence`];
    /// anything the answer cannot settle → still unknown. (`PullSmsSendStatus`, the other pull,
    /// hands each receipt out once only and must be enabled by Tencent: with several replicas
    /// or a retry, a receipt taken by one look would be lost to the next, so it is not used.)
    fn resolve<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Vec<Outcome>> {
        Box::pin(sms::resolve(batch, move |item, number| async move {
            self.status_limiter.until_ready().await;
            self.status(batch, item, number).await
        }))
    }
}

struct Reply {
    status: reqwest::StatusCode,
    retry_after: Option<Duration>,
    /// As the client collected it (not copied again: an answer to `SendSms` is 34 KB).
    body: bytes::Bytes,
}

/// What an answer to `SendSms` says.
enum Answer<'a> {
    PerNumber(Vec<SendStatus<'a>>),
    /// `Response.Error`: the whole call was refused.
    Error(ApiError),
    /// The HTTP status or an unreadable body decides for the whole call.
    Outcome(Outcome),
}

fn read_send(reply: &Reply) -> Answer<'_> {
    let status = reply.status;
    if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        return Answer::Outcome(Outcome::RetryAfter {
            after: reply.retry_after.unwrap_or(Duration::from_secs(1)),
            code: "http_429".into(),
        });
    }
    if status == reqwest::StatusCode::GATEWAY_TIMEOUT {
        return Answer::Outcome(Outcome::Unknown {
            detail: "HTTP 504: a gateway gave up waiting for Tencent; it may have been sent".into(),
        });
    }
    if status.is_server_error() {
        return Answer::Outcome(Outcome::Failed {
            code: format!("http_{}", status.as_u16()),
            permanent: false,
            detail: format!("Tencent answered HTTP {status}"),
        });
    }
    // The body checked as UTF-8 once, not string by string as `from_slice` does (200 statuses
    // of four strings each): an answer that is not UTF-8 cannot be read, like any other.
    let text = std::str::from_utf8(&reply.body).map_err(|e| e.to_string());
    // The plain shape of a success read straight off the text; anything else by serde_json.
    if status.is_success()
        && let Ok(text) = text
        && let Some(set) = quick::statuses(text)
    {
        return Answer::PerNumber(set);
    }
    let parsed = text.and_then(|text| {
        serde_json::from_str::<Envelope<SendReply>>(text).map_err(|e| e.to_string())
    });
    match parsed {
        Ok(Envelope {
            response:
                SendReply {
                    error: Some(mut err),
                    request_id,
                    ..
                },
        }) => {
            err.request_id = request_id;
            Answer::Error(err)
        }
        Ok(Envelope {
            response: SendReply {
                send_status_set: Some(set),
                ..
            },
        }) if status.is_success() => Answer::PerNumber(set),
        // Tencent answers every call with HTTP 200; another status without an error body came
        // from something in front of it, which did not pass the call on.
        _ if !status.is_success() => Answer::Outcome(Outcome::Failed {
            code: format!("http_{}", status.as_u16()),
            permanent: false,
            detail: format!("answered HTTP {status} without Tencent's error body"),
        }),
        Ok(_) => Answer::Outcome(Outcome::Unknown {
            detail: "Tencent's answer to SendSms has neither SendStatusSet nor Error; it may have been sent".into(),
        }),
        Err(e) => Answer::Outcome(Outcome::Unknown {
            detail: format!("Tencent's answer to SendSms cannot be read ({e}); it may have been sent"),
        }),
    }
}

/// A `Response.Error`: one outcome for every delivery of the call. A configuration problem is
/// logged as an error, loudly, once per call: every message will fail until someone fixes it.
fn whole_call(err: &ApiError, batch: &Batch, numbers: usize) -> Outcome {
    let class = classify(&err.code, batch.now);
    if class == Class::Config {
        tracing::error!(channel = "sms", transport = "tencent_sms", job = %batch.job.id, code = %err.code, message = %err.message, numbers, "Tencent refused the call: a configuration problem (credentials, clock, application, sign name, template or account); every delivery of the call fails");
    } else {
        tracing::warn!(channel = "sms", transport = "tencent_sms", job = %batch.job.id, code = %err.code, message = %err.message, numbers, "Tencent refused the call");
    }
    let mut outcome = outcome(&err.code, &err.message, batch.now);
    if let (Outcome::Failed { detail, .. }, Some(id)) = (&mut outcome, &err.request_id) {
        detail.push_str(&format!(" (RequestId {id})"));
    }
    outcome
}

/// How an error code is to be taken (providers.md §2.5).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Class {
    /// The recipient's number cannot be sent to: invalid, unsubscribed, blacklisted.
    Permanent,
    /// Credentials, application, sign name, template, content or account: permanent for the
    /// deliveries, and a person has to act.
    Config,
    /// Surely not sent; try again later.
    Transient,
    /// Tencent timed out handing over to the carrier: it may have gone out.
    Unknown,
    Retry(Duration),
}

fn classify(code: &str, now: chrono::DateTime<chrono::FixedOffset>) -> Class {
    match code {
        "LimitExceeded.PhoneNumberThirtySecondLimit" => Class::Retry(Duration::from_secs(30)),
        "LimitExceeded.PhoneNumberOneHourLimit" => Class::Retry(Duration::from_secs(3600)),
        // Daily caps count natural days (providers.md §2.7).
        "LimitExceeded.PhoneNumberDailyLimit"
        | "LimitExceeded.PhoneNumberSameContentDailyLimit"
        | "LimitExceeded.AppDailyLimit"
        | "LimitExceeded.DailyLimit" => Class::Retry(sms::until_next_day(now)),
        // A policy set in the console whose window the code does not name.
        "LimitExceeded.DeliveryFrequencyLimit" => Class::Retry(Duration::from_secs(3600)),
        // We never send more than 200; should it happen, the call is split (number_specific).
        "LimitExceeded.PhoneNumberCountLimit" => Class::Transient,
        // The account's API rate: a short wait.
        c if c == "RequestLimitExceeded" || c.starts_with("RequestLimitExceeded.") => {
            Class::Retry(Duration::from_secs(1))
        }
        c if c.starts_with("LimitExceeded.") => Class::Retry(Duration::from_secs(60)),
        // Marketing SMS only 08:00–22:00; a notice is not marketing, but should Tencent say so,
        // the morning will do.
        "FailedOperation.MarketingSendTimeConstraint" => Class::Retry(sms::until_hour(now, 8)),
        "InternalError.Timeout" | "InternalError.SendAndRecvFail" => Class::Unknown,
        c if c.starts_with("InternalError") => Class::Transient,
        "InvalidParameterValue.IncorrectPhoneNumber"
        | "FailedOperation.PhoneNumberInBlacklist"
        | "UnsupportedOperation.UnsuportedRegion"
        | "UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber" => Class::Permanent,
        c if [
            "AuthFailure",
            "UnauthorizedOperation",
            "FailedOperation",
            "InvalidParameter",
            "MissingParameter",
            "UnsupportedOperation",
        ]
        .iter()
        .any(|p| c == *p || c.starts_with(&format!("{p}."))) =>
        {
            Class::Config
        }
        // A code we do not know refused the call: not sent, so worth another try.
        _ => Class::Transient,
    }
}

/// Codes about one number that Tencent may give for the whole call.
fn number_specific(code: &str) -> bool {
    matches!(
        code,
        "InvalidParameterValue.IncorrectPhoneNumber"
            | "FailedOperation.PhoneNumberInBlacklist"
            | "UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber"
            | "LimitExceeded.PhoneNumberCountLimit"
    ) || code.starts_with("LimitExceeded.PhoneNumber")
}

fn outcome(code: &str, message: &str, now: chrono::DateTime<chrono::FixedOffset>) -> Outcome {
    match classify(code, now) {
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
        Class::Unknown => Outcome::Unknown {
            detail: format!("{code}: {message}; it may have been sent"),
        },
        Class::Retry(after) => Outcome::RetryAfter {
            after,
            code: code.into(),
        },
    }
}

/// The body of `SendSms` (providers.md §2.3), keys in the order `serde_json` gives a map.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct SendSms<'a> {
    phone_number_set: Vec<&'a str>,
    session_context: String,
    sign_name: &'a str,
    sms_sdk_app_id: &'a str,
    template_id: &'a str,
    template_param_set: Vec<&'a str>,
}

#[derive(Deserialize)]
struct Envelope<T> {
    #[serde(rename = "Response")]
    response: T,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SendReply<'a> {
    error: Option<ApiError>,
    #[serde(borrow)]
    send_status_set: Option<Vec<SendStatus<'a>>>,
    request_id: Option<String>,
}

/// One number's status, borrowed from the answer where it has no escapes (200 a call: owned,
/// they were the most of the time spent reading it).
#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
#[serde(rename_all = "PascalCase")]
struct SendStatus<'a> {
    #[serde(default, borrow)]
    serial_no: Cow<'a, str>,
    #[serde(default, borrow)]
    phone_number: Cow<'a, str>,
    #[serde(default, borrow)]
    code: Cow<'a, str>,
    #[serde(default, borrow)]
    message: Cow<'a, str>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ApiError {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
    #[serde(skip)]
    request_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PullReply {
    error: Option<ApiError>,
    pull_sms_send_status_set: Option<Vec<PullStatus>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PullStatus {
    #[serde(default)]
    serial_no: String,
    #[serde(default)]
    phone_number: String,
    #[serde(default)]
    report_status: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    session_context: Option<String>,
}

/// `Authorization` for a TC3-HMAC-SHA256 signed POST of `payload` (providers.md §2.2; Tencent's
/// "signature v3" walkthrough). Signs `content-type` and `host` only, as the SDKs do.
pub fn tc3_authorization(
    secret_id: &str,
    secret_key: &str,
    service: &str,
    host: &str,
    content_type: &str,
    timestamp: i64,
    payload: &[u8],
) -> String {
    let canonical = canonical_request(host, content_type, payload);
    let (date, to_sign) = string_to_sign(service, timestamp, &canonical);
    let k_date = hmac_sha256(format!("TC3{secret_key}").as_bytes(), date.as_bytes());
    let k_service = hmac_sha256(k_date.as_ref(), service.as_bytes());
    let k_signing = hmac_sha256(k_service.as_ref(), b"tc3_request");
    let signature = http::hex(hmac_sha256(k_signing.as_ref(), to_sign.as_bytes()).as_ref());
    format!(
        "TC3-HMAC-SHA256 Credential={secret_id}/{date}/{service}/tc3_request, SignedHeaders=content-type;host, Signature={signature}"
    )
}

/// Header names and values in lower case, trimmed (Tencent's signature v3 documentation).
fn canonical_request(host: &str, content_type: &str, payload: &[u8]) -> String {
    format!(
        "POST\n/\n\ncontent-type:{}\nhost:{}\n\ncontent-type;host\n{}",
        content_type.trim().to_ascii_lowercase(),
        host.trim().to_ascii_lowercase(),
        sha256_hex(payload)
    )
}

/// The UTC date of the timestamp and the string to sign.
fn string_to_sign(service: &str, timestamp: i64, canonical: &str) -> (String, String) {
    let date = chrono::DateTime::from_timestamp(timestamp, 0)
        .unwrap_or_default()
        .format("%Y-%m-%d")
        .to_string();
    let to_sign = format!(
        "TC3-HMAC-SHA256\n{timestamp}\n{date}/{service}/tc3_request\n{}",
        sha256_hex(canonical.as_bytes())
    );
    (date, to_sign)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of Tencent's "signature v3" documentation (CVM DescribeInstances,
    /// 2019-02-25), reproduced by the SDKs' tests: the intermediate hashes and the signature.
    #[test]
    fn tc3_matches_tencents_documented_example() {
        let payload = r#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#;
        let ct = "application/json; charset=utf-8";
        let host = "cvm.tencentcloudapi.com";
        assert_eq!(
            sha256_hex(payload.as_bytes()),
            "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
        );
        let canonical = canonical_request(host, ct, payload.as_bytes());
        assert_eq!(
            canonical,
            "POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n\ncontent-type;host\n35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
        );
        let (date, to_sign) = string_to_sign("cvm", 1551113065, &canonical);
        assert_eq!(date, "2019-02-25");
        assert_eq!(
            to_sign,
            "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
        );
        assert_eq!(
            tc3_authorization(
                "AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******",
                "Gu5t9xGARNpq86cd98joQYCN3*******",
                "cvm",
                host,
                ct,
                1551113065,
                payload.as_bytes()
            ),
            "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature=2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"
        );
    }

    #[test]
    fn a_different_key_or_body_changes_the_signature() {
        let sign = |key: &str, body: &[u8]| {
            tc3_authorization(
                "id",
                key,
                "sms",
                "sms.tencentcloudapi.com",
                CONTENT_TYPE,
                1_700_000_000,
                body,
            )
        };
        assert_ne!(sign("k1", b"{}"), sign("k2", b"{}"));
        assert_ne!(sign("k1", b"{}"), sign("k1", b"{ }"));
    }

    fn now() -> chrono::DateTime<chrono::FixedOffset> {
        chrono::DateTime::parse_from_rfc3339("2026-12-01T10:00:00+08:00").unwrap()
    }

    #[test]
    fn codes_map_to_the_outcome_contract() {
        let o = |code: &str| outcome(code, "m", now());
        assert!(matches!(
            o("InvalidParameterValue.IncorrectPhoneNumber"),
            Outcome::Failed {
                permanent: true,
                ..
            }
        ));
        assert!(matches!(
            o("FailedOperation.PhoneNumberInBlacklist"),
            Outcome::Failed {
                permanent: true,
                ..
            }
        ));
        assert!(matches!(
            o("FailedOperation.TemplateIncorrectOrUnapproved"),
            Outcome::Failed {
                permanent: true,
                ..
            }
        ));
        assert!(matches!(
            o("AuthFailure.SignatureFailure"),
            Outcome::Failed {
                permanent: true,
                ..
            }
        ));
        assert!(matches!(
            o("InternalError.OtherError"),
            Outcome::Failed {
                permanent: false,
                ..
            }
        ));
        assert!(matches!(
            o("InternalError.Timeout"),
            Outcome::Unknown { .. }
        ));
        assert!(matches!(
            o("SomethingNew.Entirely"),
            Outcome::Failed {
                permanent: false,
                ..
            }
        ));
        assert_eq!(
            o("LimitExceeded.PhoneNumberThirtySecondLimit"),
            Outcome::RetryAfter {
                after: Duration::from_secs(30),
                code: "LimitExceeded.PhoneNumberThirtySecondLimit".into()
            }
        );
        // 10:00 in China: the daily cap resets in 14 hours (plus a minute).
        assert!(
            matches!(o("LimitExceeded.PhoneNumberDailyLimit"), Outcome::RetryAfter { after, .. } if after == Duration::from_secs(14 * 3600 + 60))
        );
        assert!(
            matches!(o("RequestLimitExceeded"), Outcome::RetryAfter { after, .. } if after == Duration::from_secs(1))
        );
        assert_eq!(
            classify("AuthFailure.SecretIdNotFound", now()),
            Class::Config
        );
        assert_eq!(
            classify("InvalidParameterValue.IncorrectPhoneNumber", now()),
            Class::Permanent
        );
        assert!(number_specific("LimitExceeded.PhoneNumberDailyLimit"));
        assert!(!number_specific("LimitExceeded.AppDailyLimit"));
        assert!(!number_specific("AuthFailure.SignatureFailure"));
    }

    fn config() -> TencentConfig {
        toml::from_str(
            "sms_sdk_app_id = \"1400006666\"\nsecret_id_env = \"TENCENTCLOUD_SECRET_ID\"\nsecret_key_env = \"TENCENTCLOUD_SECRET_KEY\"\n",
        )
        .unwrap()
    }

    #[test]
    fn configuration_has_defaults_and_reports_every_problem() {
        let c = config();
        assert_eq!(c.endpoint, DEFAULT_ENDPOINT);
        assert_eq!(c.region, "ap-guangzhou");
        assert_eq!(
            (c.timeout_ms, c.resolve_lookback_secs, c.resolve_after_secs),
            (10_000, 86_400, 600)
        );
        assert!(c.validate(ChannelKind::Sms, 200).is_empty());
        let bad = TencentConfig {
            endpoint: "sms.tencentcloudapi.com".into(),
            sms_sdk_app_id: "app".into(),
            secret_key_env: "not a name".into(),
            timeout_ms: 0,
            resolve_lookback_secs: 30 * 86_400,
            ..c
        };
        let problems = bad.validate(ChannelKind::Email, 500);
        assert_eq!(problems.len(), 7, "{problems:#?}");
        let e = toml::from_str::<TencentConfig>("sms_sdk_app_id = \"1\"\nsecret_id_env = \"A\"\nsecret_key_env = \"B\"\nsecret_key = \"x\"\n").unwrap_err();
        assert!(e.to_string().contains("secret_key"), "{e}");
    }

    #[test]
    fn secrets_come_from_the_named_variables() {
        let mut c = config();
        c.secret_id_env = "DISCLOSE_TEST_TENCENT_NO_SUCH_ID".into();
        let e = Tencent::from_config(&c).err().unwrap();
        assert!(
            e.contains("DISCLOSE_TEST_TENCENT_NO_SUCH_ID is not set"),
            "{e}"
        );
    }

    #[test]
    fn a_channel_file_names_the_transport() {
        use crate::channels::{ChannelConfig, Transport};
        let file = "channel = \"sms\"\n[transport]\ntype = \"tencent_sms\"\nsms_sdk_app_id = \"1400006666\"\nsecret_id_env = \"A\"\nsecret_key_env = \"B\"\n";
        let cfg: ChannelConfig = toml::from_str(file).unwrap();
        assert!(matches!(&cfg.transport, Transport::TencentSms(c) if c.region == "ap-guangzhou"));
        assert!(cfg.validate().is_empty(), "{:?}", cfg.validate());
        let wrong = toml::from_str::<ChannelConfig>(&format!("{file}secret_key = \"inline\"\n"))
            .unwrap_err();
        assert!(wrong.to_string().contains("secret_key"), "{wrong}");
        let big: ChannelConfig =
            toml::from_str(&file.replace("[transport]", "batch_size = 500\n[transport]")).unwrap();
        assert_eq!(big.validate().len(), 1, "{:?}", big.validate());
    }
}
