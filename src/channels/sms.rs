//! What the two SMS transports ([`super::tencent`], [`super::aliyun`]) share: the reference each
//! call carries so that the status query can tell this job's messages from any other, the rule
//! that decides when "the provider has no record" may be taken as "it was not sent", the content
//! of a batch, and the clock arithmetic of the providers' frequency windows.
//!
//! The one rule behind all of it (SPEC §5): a delivery whose fate is unknown is resent only when
//! the provider positively shows it did not go out. Neither provider can be asked "did call X
//! arrive?": both answer only "what do you have for this phone number?". So every call carries
//! our reference (Tencent `SessionContext`, Alibaba `OutId`), and the status query looks for it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Datelike, FixedOffset, NaiveTime, TimeZone};

use super::{Batch, BoxFuture, Item, Outcome};
use crate::job::ChannelKind;
use crate::render::Rendered;

const PREFIX: &str = "disclose:";

/// The reference a call carries: `disclose:<job id>:<lowest delivery id>-<highest delivery id>`.
/// Job ids are `[A-Za-z0-9._-]{1,64}` (SPEC §3), so this is at most 107 characters, well under
/// Tencent's 512 bytes and Alibaba's 256 characters (providers.md §1.2, §2.3). The id range lets
/// `resolve` tell which deliveries a call may have carried without listing 200 ids.
pub fn reference(job_id: &str, items: &[&Item]) -> String {
    let lo = items.iter().map(|i| i.delivery_id).min().unwrap_or(0);
    let hi = items.iter().map(|i| i.delivery_id).max().unwrap_or(0);
    format!("{PREFIX}{job_id}:{lo}-{hi}")
}

/// Whether a reference read back from the provider names a call that carried this delivery.
pub fn is_ours(reference: &str, job_id: &str, delivery_id: i64) -> bool {
    let Some(rest) = reference.strip_prefix(PREFIX) else {
        return false;
    };
    let Some((job, range)) = rest.rsplit_once(':') else {
        return false;
    };
    let Some((lo, hi)) = range.split_once('-') else {
        return false;
    };
    match (lo.parse::<i64>(), hi.parse::<i64>()) {
        (Ok(lo), Ok(hi)) => job == job_id && (lo..=hi).contains(&delivery_id),
        _ => false,
    }
}

/// When "no record" becomes "not sent".
///
/// A delivery comes to the status query without the time of the call that left it unknown, and
/// a provider's record can lag behind the call (Tencent lists a message only once its receipt is
/// in; Alibaba lists it on submission, providers.md §1.4, §2.6). So one empty answer proves
/// nothing. This remembers when this process first saw the provider show no record of a
/// delivery; only when the provider still shows none `after` that (measured on the engine's
/// clock, `batch.now`) is the delivery reported `not_sent`, and the engine sends it again.
/// The call was made before the delivery became unknown, hence before the first look, so the
/// rule gives the provider at least `after` to show the message. A restart forgets the first
/// looks: that only makes the wait longer, never shorter.
pub struct Absence {
    after: Duration,
    first: Mutex<HashMap<i64, i64>>,
}

/// First looks older than this are forgotten (a delivery is not unknown for a week).
const FORGET_MS: i64 = 7 * 86_400_000;

impl Absence {
    pub fn new(after: Duration) -> Absence {
        Absence {
            after,
            first: Mutex::new(HashMap::new()),
        }
    }

    /// The provider showed, for certain, no record of this delivery in the window asked about.
    pub fn none_found(&self, delivery_id: i64, now: DateTime<FixedOffset>, what: &str) -> Outcome {
        let now_ms = now.timestamp_millis();
        let mut first = self.first.lock().unwrap_or_else(|e| e.into_inner());
        if first.len() > 10_000 {
            first.retain(|_, t| now_ms - *t < FORGET_MS);
        }
        let since = *first.entry(delivery_id).or_insert(now_ms);
        let waited = Duration::from_millis((now_ms - since).max(0) as u64);
        if waited >= self.after {
            first.remove(&delivery_id);
            Outcome::Failed {
                code: "not_sent".into(),
                permanent: false,
                detail: format!(
                    "{what} has no record of this message, {} s after it first had none: it was not sent",
                    waited.as_secs()
                ),
            }
        } else {
            Outcome::Unknown {
                detail: format!(
                    "{what} has no record of this message yet; taken as not sent if it still has none {} s from now",
                    (self.after - waited).as_secs()
                ),
            }
        }
    }

    /// The provider answered about this delivery: its first look no longer matters.
    pub fn found(&self, delivery_id: i64) {
        self.first
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&delivery_id);
    }
}

/// What an SMS call sends, taken from the batch's rendered content.
pub struct Content<'a> {
    pub template: &'a str,
    pub sign_name: &'a str,
    pub params: &'a [(String, String)],
}

/// The template of `rendered` for `provider` (`tencent`, `aliyun`). The sign name configured on
/// the channel wins over the template's. Any problem is a permanent failure of the deliveries:
/// the notice cannot go out as registered, and sending something else would break Art 3
/// (accuracy).
pub fn content<'a>(
    batch: &Batch,
    rendered: &'a Rendered,
    provider: &str,
    key: &str,
    sign_override: Option<&'a str>,
) -> Result<Content<'a>, Outcome> {
    let fail = |code: &str, detail: String| Outcome::Failed {
        code: code.into(),
        permanent: true,
        detail,
    };
    let Rendered::Sms {
        sign_name,
        params,
        template_ids,
        ..
    } = rendered
    else {
        return Err(fail(
            "wrong_content",
            format!("the {provider} SMS transport was handed content that is not an SMS"),
        ));
    };
    let Some(template) = template_ids.get(provider) else {
        return Err(fail(
            "template_id_missing",
            format!(
                "template {} has no {provider} template ([providers.{provider}] {key} in its sms.toml)",
                batch.job.template
            ),
        ));
    };
    let Some(sign_name) = sign_override.or(sign_name.as_deref()) else {
        return Err(fail(
            "sign_name_missing",
            format!(
                "no sign name: set sign_name in template {}'s sms.toml or in the channel file",
                batch.job.template
            ),
        ));
    };
    Ok(Content {
        template,
        sign_name,
        params,
    })
}

/// The deliveries that have a number, grouped by content (one call carries one text). The
/// engine hands SMS batches that share one rendering; should one ever mix them, each group is
/// still sent with its own. The others are skipped (`no_address`), in `out`.
pub fn sendable(batch: &Batch, out: &mut [Option<Outcome>]) -> Vec<(usize, Vec<usize>)> {
    let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
    for (i, item) in batch.items.iter().enumerate() {
        if item.address.as_deref().is_none_or(|a| a.trim().is_empty()) {
            out[i] = Some(Outcome::Skipped {
                reason: "no_address".into(),
            });
            continue;
        }
        let same = |g: &&mut (usize, Vec<usize>)| {
            let first = &batch.items[g.0].content;
            std::sync::Arc::ptr_eq(first, &item.content) || **first == *item.content
        };
        match groups.iter_mut().find(same) {
            Some(g) => g.1.push(i),
            None => groups.push((i, vec![i])),
        }
    }
    groups
}

/// The checks of an SMS transport's channel file that both providers make, in the order each
/// reports them: the transport serves `sms`, and its `endpoint` is an http(s) URL.
pub fn transport_problems(
    problems: &mut Vec<String>,
    transport: &str,
    channel: ChannelKind,
    endpoint: &str,
    default_endpoint: &str,
) {
    if channel != ChannelKind::Sms {
        problems.push(format!(
            "the {transport} transport serves sms, not {channel}"
        ));
    }
    match reqwest::Url::parse(endpoint) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
        _ => problems.push(format!(
            "endpoint {endpoint:?} is not an http(s) URL such as {default_endpoint}"
        )),
    }
}

/// Each `(key, value)` names an environment variable (credentials come only from the
/// environment, named in the channel file).
pub fn env_name_problems(problems: &mut Vec<String>, keys: &[(&str, &str)]) {
    for (key, var) in keys {
        if !super::tencent::is_env_name(var) {
            problems.push(format!(
                "{key} must name an environment variable (letters, digits, _), not {var:?}"
            ));
        }
    }
}

/// A sign name given in the channel file is not blank.
pub fn sign_name_problems(problems: &mut Vec<String>, sign_name: Option<&str>) {
    if sign_name.is_some_and(|s| s.trim().is_empty()) {
        problems.push("sign_name, when given, must not be empty".into());
    }
}

/// One provider call of at most its limit of numbers, all with the same content.
pub trait Sender {
    /// One outcome per item, in order.
    fn send<'s>(
        &'s self,
        batch: &'s Batch,
        items: Vec<&'s Item>,
        content: &'s Content<'s>,
    ) -> BoxFuture<'s, Vec<Outcome>>;
}

/// A provider's names, as [`deliver`] logs and reports them.
pub struct Provider<'a> {
    /// The channel's transport, for logs (`tencent_sms`).
    pub transport: &'a str,
    /// The provider's key in a template's sms.toml (`tencent`).
    pub name: &'a str,
    /// The key of the template's id there (`template_id`), named when it is missing.
    pub template_key: &'a str,
}

/// A batch through an SMS provider, the same for each: deliveries without a number are skipped
/// ([`sendable`]); each group of one content is checked against its registered template
/// ([`content`]) and sent in calls of at most `per_call` numbers; a delivery that no answer
/// was matched to is unknown, since it may have been sent (SPEC §5).
pub async fn deliver(
    sender: &(impl Sender + ?Sized),
    batch: &Batch,
    provider: Provider<'_>,
    sign_name: Option<&str>,
    per_call: usize,
) -> Vec<Outcome> {
    let mut out: Vec<Option<Outcome>> = vec![None; batch.items.len()];
    for (first, group) in sendable(batch, &mut out) {
        let rendered = &batch.items[first].content;
        match content(
            batch,
            rendered,
            provider.name,
            provider.template_key,
            sign_name,
        ) {
            Err(outcome) => {
                tracing::error!(channel = "sms", transport = provider.transport, job = %batch.job.id, template = %batch.job.template, ?outcome, "the SMS cannot be sent as registered");
                for &i in &group {
                    out[i] = Some(outcome.clone());
                }
            }
            Ok(content) => {
                for chunk in group.chunks(per_call) {
                    let items: Vec<&Item> = chunk.iter().map(|&i| &batch.items[i]).collect();
                    let outcomes = sender.send(batch, items, &content).await;
                    for (&i, o) in chunk.iter().zip(outcomes) {
                        out[i] = Some(o);
                    }
                }
            }
        }
    }
    out.into_iter()
        .map(|o| {
            o.unwrap_or(Outcome::Unknown {
                detail: "no answer was matched to this delivery".into(),
            })
        })
        .collect()
}

/// The status query of a batch, number by number: a delivery without a number is skipped
/// (`no_address`), every other one is settled by `status`.
pub async fn resolve<'a, Fut>(
    batch: &'a Batch,
    mut status: impl FnMut(&'a Item, &'a str) -> Fut,
) -> Vec<Outcome>
where
    Fut: std::future::Future<Output = Outcome>,
{
    let mut out = Vec::with_capacity(batch.items.len());
    for item in &batch.items {
        let Some(number) = item.address.as_deref().filter(|a| !a.trim().is_empty()) else {
            out.push(Outcome::Skipped {
                reason: "no_address".into(),
            });
            continue;
        };
        out.push(status(item, number).await);
    }
    out
}

/// Phone numbers compared the way providers echo them: mainland numbers by their 11 digits
/// (`+8613800000000`, `8613800000000` and `13800000000` are one number), others by all digits.
pub fn number_key(number: &str) -> String {
    let digits: String = number.chars().filter(|c| c.is_ascii_digit()).collect();
    match digits.strip_prefix("86") {
        Some(national) if national.len() == 11 && national.starts_with('1') => national.into(),
        _ => digits,
    }
}

/// [`number_key`] as a value to match on, built without a string: the key's digits as (how
/// many, their value), one to one with the key up to 19 digits (every phone number: E.164 allows
/// 15), or the key itself past that.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NumberKey {
    Digits(u8, u64),
    Long(String),
}

/// [`NumberKey`] of `number`: equal for two numbers exactly when their [`number_key`]s are.
pub fn number_key_value(number: &str) -> NumberKey {
    const NATIONAL: u64 = 100_000_000_000; // 10^11: the 11 digits of a mainland mobile number
    let (mut n, mut v) = (0u8, 0u64);
    for b in number.bytes().filter(u8::is_ascii_digit) {
        if n == 19 {
            return NumberKey::Long(number_key(number));
        }
        n += 1;
        v = v * 10 + u64::from(b - b'0');
    }
    // "86" and 11 digits starting with 1: the national number, as `number_key` has it.
    if n == 13 && v / NATIONAL == 86 && (v % NATIONAL) / (NATIONAL / 10) == 1 {
        return NumberKey::Digits(11, v % NATIONAL);
    }
    NumberKey::Digits(n, v)
}

/// Until the next natural day in China (00:00 UTC+8), where the providers' daily caps reset
/// (providers.md §1.9, §2.7), plus a minute so the retry lands after the reset.
pub fn until_next_day(now: DateTime<FixedOffset>) -> Duration {
    let local = now.with_timezone(&crate::clock::china());
    let next = local.date_naive().succ_opt().unwrap_or(local.date_naive());
    until(local, next.and_time(NaiveTime::MIN))
}

/// Until the first day of next month, 00:00 UTC+8 (monthly caps), plus a minute.
pub fn until_next_month(now: DateTime<FixedOffset>) -> Duration {
    let local = now.with_timezone(&crate::clock::china());
    let (y, m) = match local.month() {
        12 => (local.year() + 1, 1),
        m => (local.year(), m + 1),
    };
    let first = chrono::NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(local.date_naive());
    until(local, first.and_time(NaiveTime::MIN))
}

/// Until `hour`:00 UTC+8, today if still ahead, else tomorrow.
pub fn until_hour(now: DateTime<FixedOffset>, hour: u32) -> Duration {
    let local = now.with_timezone(&crate::clock::china());
    let at = NaiveTime::from_hms_opt(hour, 0, 0).unwrap_or(NaiveTime::MIN);
    let today = local.date_naive().and_time(at);
    let target = if today > local.naive_local() {
        today
    } else {
        local
            .date_naive()
            .succ_opt()
            .unwrap_or(local.date_naive())
            .and_time(at)
    };
    until(local, target)
}

fn until(local: DateTime<FixedOffset>, target: chrono::NaiveDateTime) -> Duration {
    let target = crate::clock::china()
        .from_local_datetime(&target)
        .single()
        .unwrap_or(local);
    let secs = (target - local).num_seconds().max(0) as u64;
    Duration::from_secs(secs + 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(s).unwrap()
    }

    #[test]
    fn references_name_the_job_and_the_deliveries_of_the_call() {
        assert!(is_ours(
            "disclose:zzb-2026-0142:10-209",
            "zzb-2026-0142",
            10
        ));
        assert!(is_ours(
            "disclose:zzb-2026-0142:10-209",
            "zzb-2026-0142",
            209
        ));
        assert!(!is_ours(
            "disclose:zzb-2026-0142:10-209",
            "zzb-2026-0142",
            210
        ));
        assert!(!is_ours(
            "disclose:zzb-2026-0143:10-209",
            "zzb-2026-0142",
            11
        ));
        assert!(!is_ours("", "zzb-2026-0142", 11));
        assert!(!is_ours("disclose:zzb:x-y", "zzb", 1));
    }

    #[test]
    fn no_record_becomes_not_sent_only_after_the_wait() {
        let a = Absence::new(Duration::from_secs(600));
        let t0 = at("2026-12-01T10:00:00+08:00");
        let first = a.none_found(7, t0, "the provider");
        assert!(matches!(first, Outcome::Unknown { .. }), "{first:?}");
        let early = a.none_found(7, t0 + chrono::Duration::seconds(599), "the provider");
        assert!(matches!(early, Outcome::Unknown { .. }), "{early:?}");
        let later = a.none_found(7, t0 + chrono::Duration::seconds(600), "the provider");
        assert!(
            matches!(&later, Outcome::Failed { code, permanent: false, .. } if code == "not_sent"),
            "{later:?}"
        );
        // A record seen in between starts the wait again.
        let b = Absence::new(Duration::from_secs(600));
        b.none_found(8, t0, "p");
        b.found(8);
        let again = b.none_found(8, t0 + chrono::Duration::seconds(700), "p");
        assert!(matches!(again, Outcome::Unknown { .. }), "{again:?}");
        // No wait configured: the first empty answer decides.
        let c = Absence::new(Duration::ZERO);
        assert!(matches!(c.none_found(9, t0, "p"), Outcome::Failed { .. }));
    }

    #[test]
    fn numbers_compare_by_their_national_digits() {
        assert_eq!(number_key("+8613800138000"), "13800138000");
        assert_eq!(number_key("8613800138000"), "13800138000");
        assert_eq!(number_key("13800138000"), "13800138000");
        assert_eq!(number_key("+85291234567"), "85291234567");
    }

    #[test]
    fn number_key_values_are_equal_exactly_when_the_keys_are() {
        let numbers = [
            "+8613800138000",
            "8613800138000",
            "13800138000",
            "138-0013-8000",
            "+86 138 0013 8001",
            "+85291234567",
            "85291234567",
            "0085291234567",
            "+8623800138000",
            "8623800138000",
            "23800138000",
            "861380013800",
            "+861380013800",
            "1380013800",
            "",
            "no digits",
            "0",
            "00",
            "1234567890123456789",
            "12345678901234567890",
            "012345678901234567890",
            "+12345678901234567890123",
        ];
        for a in numbers {
            for b in numbers {
                assert_eq!(
                    number_key_value(a) == number_key_value(b),
                    number_key(a) == number_key(b),
                    "{a:?} and {b:?}"
                );
            }
        }
        assert_eq!(
            number_key_value("+8613800138000"),
            NumberKey::Digits(11, 13800138000)
        );
        assert!(matches!(
            number_key_value("12345678901234567890"),
            NumberKey::Long(_)
        ));
    }

    #[test]
    fn windows_end_at_china_midnight_and_the_month() {
        let now = at("2026-12-01T23:00:00+08:00");
        assert_eq!(until_next_day(now), Duration::from_secs(3600 + 60));
        // 15:00 UTC is 23:00 in China: the same instant, the same answer.
        assert_eq!(
            until_next_day(at("2026-12-01T15:00:00+00:00")),
            Duration::from_secs(3600 + 60)
        );
        assert_eq!(
            until_next_month(at("2026-12-31T23:00:00+08:00")),
            Duration::from_secs(3600 + 60)
        );
        assert_eq!(
            until_hour(at("2026-12-01T22:30:00+08:00"), 8),
            Duration::from_secs(9 * 3600 + 1800 + 60)
        );
        assert_eq!(
            until_hour(at("2026-12-01T07:00:00+08:00"), 8),
            Duration::from_secs(3600 + 60)
        );
    }
}
