//! The job envelope (SPEC §3): the one place where untrusted bytes become a [`Job`].
//!
//! Parsing happens once, at the edge, in three steps that each fail with a specific error:
//! size and UTF-8, strict JSON (duplicate keys refused, see [`crate::jcs::parse_strict`]),
//! then the typed envelope with unknown fields refused and every error naming the field path
//! (`audience.recipients[0].role`). Everything after this module works on [`Job`], never on
//! raw JSON; the raw value is kept only because the approval signature covers it
//! ([`crate::approval`]).

use std::fmt;

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Times in a job must say their offset: "09:00" means nothing without knowing where.
mod datetime {
    use chrono::{DateTime, FixedOffset};
    use serde::{Deserialize, Deserializer};

    fn parse<E: serde::de::Error>(s: &str) -> Result<DateTime<FixedOffset>, E> {
        DateTime::parse_from_rfc3339(s).map_err(|e| {
            let hint = if chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").is_ok() {
                "it has no UTC offset".to_string()
            } else {
                e.to_string()
            };
            E::custom(format!(
                "{s:?} is not an RFC 3339 date-time with a UTC offset ({hint}); write e.g. \"2026-12-01T09:00:00+08:00\""
            ))
        })
    }

    pub fn required<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<FixedOffset>, D::Error> {
        parse(&String::deserialize(d)?)
    }

    pub fn optional<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<DateTime<FixedOffset>>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| parse(&s))
            .transpose()
    }
}

/// SPEC §3: a job is at most 1 MiB of UTF-8 JSON.
pub const MAX_JOB_BYTES: usize = 1 << 20;

/// Why bytes could not become a job. Every variant is refused with code `malformed`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    #[error("job is {size} bytes; the limit is {limit} bytes (1 MiB)")]
    TooLarge { size: usize, limit: usize },
    #[error("job is not valid UTF-8 (first bad byte at offset {offset})")]
    NotUtf8 { offset: usize },
    #[error("job is not valid JSON: {0}")]
    NotJson(String),
    #[error("{path}: {message}")]
    Field { path: String, message: String },
}

impl JobError {
    fn field(path: impl Into<String>, message: impl Into<String>) -> Self {
        JobError::Field {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// `release` and `notice` disclose something new; `correction` and `retraction` act on an
/// earlier job named by `corrects` (Art 17: inaccurate or wrongly disclosed information).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Release,
    Notice,
    Correction,
    Retraction,
}

/// Scopes of disclosure (Art 6–9). `Public > Unit > Leadership` is a chain from widest to
/// narrowest; `Specific` (Art 9) stands apart from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Public,
    Unit,
    Leadership,
    Specific,
}

impl Scope {
    pub const ALL: [Scope; 4] = [
        Scope::Public,
        Scope::Unit,
        Scope::Leadership,
        Scope::Specific,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Public => "public",
            Scope::Unit => "unit",
            Scope::Leadership => "leadership",
            Scope::Specific => "specific",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Art 4 and Art 3: state-secret levels are never disclosed without declassification;
/// `internal` never goes to the public.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Classification {
    None,
    Internal,
    Secret,
    Confidential,
    TopSecret,
}

impl Classification {
    pub fn is_state_secret(self) -> bool {
        matches!(
            self,
            Classification::Secret | Classification::Confidential | Classification::TopSecret
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Classification::None => "none",
            Classification::Internal => "internal",
            Classification::Secret => "secret",
            Classification::Confidential => "confidential",
            Classification::TopSecret => "top_secret",
        }
    }
}

/// A medium of disclosure. "Channel" in this crate always means one of these, never an AMQP
/// channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    Website,
    Intranet,
    Wechat,
    Sms,
    Email,
    Wecom,
    Letter,
}

impl ChannelKind {
    pub const ALL: [ChannelKind; 7] = [
        ChannelKind::Website,
        ChannelKind::Intranet,
        ChannelKind::Wechat,
        ChannelKind::Sms,
        ChannelKind::Email,
        ChannelKind::Wecom,
        ChannelKind::Letter,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Website => "website",
            ChannelKind::Intranet => "intranet",
            ChannelKind::Wechat => "wechat",
            ChannelKind::Sms => "sms",
            ChannelKind::Email => "email",
            ChannelKind::Wecom => "wecom",
            ChannelKind::Letter => "letter",
        }
    }

    pub fn parse(s: &str) -> Option<ChannelKind> {
        ChannelKind::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Channels that publish one page for the whole job rather than a message per person.
    pub fn is_publication(self) -> bool {
        matches!(self, ChannelKind::Website | ChannelKind::Intranet)
    }
}

impl fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A clause of Art 6–9, written `"6.3"`. The article fixes the scope (6 public, 7 unit,
/// 8 leadership, 9 specific); the last item of each article is the catch-all "other matters".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Category {
    pub article: u8,
    pub item: u8,
}

impl Category {
    /// Number of items in each of Art 6, 7, 8, 9 of the measures.
    pub fn items_in(article: u8) -> Option<u8> {
        match article {
            6 => Some(7),
            7 => Some(5),
            8 => Some(7),
            9 => Some(7),
            _ => None,
        }
    }

    pub fn parse(s: &str) -> Result<Category, String> {
        let (a, i) = s.split_once('.').ok_or_else(|| {
            format!("category {s:?} is not of the form \"<article>.<item>\", e.g. \"6.3\"")
        })?;
        let article: u8 = a
            .parse()
            .map_err(|_| format!("category {s:?}: article {a:?} is not a number"))?;
        let item: u8 = i
            .parse()
            .map_err(|_| format!("category {s:?}: item {i:?} is not a number"))?;
        let Some(n) = Category::items_in(article) else {
            return Err(format!(
                "category {s:?}: only Art 6–9 define categories of disclosure"
            ));
        };
        if item == 0 || item > n {
            return Err(format!("category {s:?}: Art {article} has items 1–{n}"));
        }
        Ok(Category { article, item })
    }

    /// The scope the article itself fixes.
    pub fn scope(self) -> Scope {
        match self.article {
            6 => Scope::Public,
            7 => Scope::Unit,
            8 => Scope::Leadership,
            _ => Scope::Specific,
        }
    }

    /// 6.7, 7.5, 8.7 and 9.7: "other matters that need disclosing" — these need a justification.
    pub fn is_catch_all(self) -> bool {
        Category::items_in(self.article) == Some(self.item)
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.article, self.item)
    }
}

impl Serialize for Category {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Category {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Category::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Art 4: the competent authority's consent to disclose otherwise classified information.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Declassification {
    pub authority: String,
    pub reference: String,
    #[serde(deserialize_with = "datetime::required")]
    pub approved_at: DateTime<FixedOffset>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Audience {
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub recipients: Vec<NamedRecipient>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostalAddress {
    pub postcode: String,
    pub lines: Vec<String>,
}

/// A person named in the job itself (e.g. the reported person and the complainant of Art 9(5)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedRecipient {
    pub id: String,
    pub name: String,
    /// `reported`, `complainant`, `participant`, `member`, …
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<PostalAddress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wechat_openid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wecom_userid: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    #[serde(
        default,
        deserialize_with = "datetime::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub publish_at: Option<DateTime<FixedOffset>>,
    #[serde(
        default,
        deserialize_with = "datetime::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub expires_at: Option<DateTime<FixedOffset>>,
}

/// Art 9(5): whether the report was signed decides whether the complainant may learn the result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Complaint {
    pub signed: bool,
    pub case_no: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    pub approver: String,
    pub reference: String,
    #[serde(deserialize_with = "datetime::required")]
    pub approved_at: DateTime<FixedOffset>,
    pub key_id: String,
    /// Base64 (standard alphabet) Ed25519 signature; see [`crate::approval`].
    #[serde(default)]
    pub signature: String,
}

/// A disclosure job as approved upstream (SPEC §3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Job {
    pub id: String,
    pub kind: Kind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrects: Option<String>,
    pub category: Category,
    pub scope: Scope,
    pub classification: Classification,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declassification: Option<Declassification>,
    pub title: String,
    pub template: String,
    #[serde(default)]
    pub data: Map<String, Value>,
    /// `None`: every channel the scope allows and the deployment configures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<Vec<ChannelKind>>,
    #[serde(default)]
    pub audience: Audience,
    #[serde(default)]
    pub schedule: Schedule,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complaint: Option<Complaint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub justification: Option<String>,
    pub approval: Approval,
}

/// A job together with the exact JSON value the approval signature covers.
#[derive(Debug, Clone)]
pub struct ParsedJob {
    pub job: Job,
    pub raw: Value,
}

/// Parse untrusted bytes into a job. Never panics; every failure names what is wrong and where.
pub fn parse(bytes: &[u8]) -> Result<ParsedJob, JobError> {
    if bytes.len() > MAX_JOB_BYTES {
        return Err(JobError::TooLarge {
            size: bytes.len(),
            limit: MAX_JOB_BYTES,
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|e| JobError::NotUtf8 {
        offset: e.valid_up_to(),
    })?;
    let raw = crate::jcs::parse_strict(text).map_err(|e| JobError::NotJson(e.to_string()))?;
    if !raw.is_object() {
        return Err(JobError::field("(root)", "a job must be a JSON object"));
    }
    let job: Job = serde_path_to_error::deserialize(&raw).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." {
            "(root)".to_string()
        } else {
            path
        };
        JobError::field(path, e.inner().to_string())
    })?;
    job.validate()?;
    Ok(ParsedJob { job, raw })
}

/// The id of a job if the bytes carry one, for recording refusals of jobs that did not parse.
pub fn sniff_id(bytes: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(bytes).ok()?;
    let id = v.get("id")?.as_str()?;
    valid_id(id).then(|| id.to_string())
}

/// SPEC §3: `[A-Za-z0-9._-]{1,64}`, the idempotency key.
pub fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn non_empty(path: &str, value: &str) -> Result<(), JobError> {
    if value.trim().is_empty() {
        return Err(JobError::field(path, "must not be empty"));
    }
    Ok(())
}

impl Job {
    /// Shape rules serde cannot express. Rules of the regulation are the policy's, not these.
    fn validate(&self) -> Result<(), JobError> {
        if !valid_id(&self.id) {
            return Err(JobError::field("id", "must match [A-Za-z0-9._-]{1,64}"));
        }
        non_empty("title", &self.title)?;
        non_empty("template", &self.template)?;
        if !self
            .template
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(JobError::field(
                "template",
                "must be a template name of [A-Za-z0-9_-]",
            ));
        }
        match (self.kind, &self.corrects) {
            (Kind::Correction | Kind::Retraction, None) => {
                return Err(JobError::field(
                    "corrects",
                    "a correction or retraction must name the job it corrects",
                ));
            }
            (Kind::Release | Kind::Notice, Some(_)) => {
                return Err(JobError::field(
                    "corrects",
                    "only a correction or retraction may name a job it corrects",
                ));
            }
            (_, Some(target)) if !valid_id(target) => {
                return Err(JobError::field(
                    "corrects",
                    "must be a job id of [A-Za-z0-9._-]{1,64}",
                ));
            }
            (_, Some(target)) if target == &self.id => {
                return Err(JobError::field("corrects", "a job cannot correct itself"));
            }
            _ => {}
        }
        if let Some(channels) = &self.channels {
            for (i, c) in channels.iter().enumerate() {
                if channels[..i].contains(c) {
                    return Err(JobError::field(
                        format!("channels[{i}]"),
                        format!("channel {c} is listed twice"),
                    ));
                }
            }
        }
        for (i, g) in self.audience.groups.iter().enumerate() {
            non_empty(&format!("audience.groups[{i}]"), g)?;
        }
        for (i, r) in self.audience.recipients.iter().enumerate() {
            let p = format!("audience.recipients[{i}]");
            non_empty(&format!("{p}.id"), &r.id)?;
            non_empty(&format!("{p}.name"), &r.name)?;
            non_empty(&format!("{p}.role"), &r.role)?;
            if self.audience.recipients[..i].iter().any(|o| o.id == r.id) {
                return Err(JobError::field(
                    format!("{p}.id"),
                    format!("recipient {:?} is listed twice", r.id),
                ));
            }
            if let Some(phone) = &r.phone
                && let Err(e) = crate::phone::normalize(phone)
            {
                return Err(JobError::field(format!("{p}.phone"), e.to_string()));
            }
            if let Some(email) = &r.email
                && !plausible_email(email)
            {
                return Err(JobError::field(
                    format!("{p}.email"),
                    "is not an e-mail address",
                ));
            }
            if let Some(addr) = &r.address {
                if !(addr.postcode.len() == 6 && addr.postcode.bytes().all(|b| b.is_ascii_digit()))
                {
                    return Err(JobError::field(
                        format!("{p}.address.postcode"),
                        "must be six digits",
                    ));
                }
                if addr.lines.iter().all(|l| l.trim().is_empty()) {
                    return Err(JobError::field(
                        format!("{p}.address.lines"),
                        "must hold at least one line",
                    ));
                }
            }
        }
        if let Some(c) = &self.complaint {
            non_empty("complaint.case_no", &c.case_no)?;
        }
        let a = &self.approval;
        non_empty("approval.approver", &a.approver)?;
        non_empty("approval.reference", &a.reference)?;
        non_empty("approval.key_id", &a.key_id)?;
        if !valid_id(&a.key_id) {
            return Err(JobError::field(
                "approval.key_id",
                "must match [A-Za-z0-9._-]{1,64}",
            ));
        }
        Ok(())
    }

    /// Where the job's effect begins: `publish_at`, or at once.
    pub fn publish_at(&self) -> Option<DateTime<FixedOffset>> {
        self.schedule.publish_at
    }
}

/// A deliberately loose check: one `@`, something on both sides, a dot in the domain, no spaces.
/// The mail server is the judge of deliverability; this only catches data-entry slips.
pub fn plausible_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Value {
        serde_json::json!({
            "id": "zzb-2026-0142",
            "kind": "release",
            "category": "6.3",
            "scope": "public",
            "classification": "none",
            "title": "关于张三同志任职前公示的公告",
            "template": "pre_appointment_notice",
            "data": {"candidates": [{"name": "张三", "current_post": "县财政局副局长", "proposed_post": "县财政局局长"}],
                     "report_phone": "0000-12380", "report_address": "县委组织部干部监督室"},
            "channels": ["website", "wechat", "sms", "email"],
            "audience": {"groups": ["subscribers", "press"], "recipients": []},
            "schedule": {"publish_at": "2026-12-01T09:00:00+08:00", "expires_at": "2026-12-08T18:00:00+08:00"},
            "approval": {"approver": "李四", "reference": "组干审〔2026〕12号", "approved_at": "2026-11-28T16:00:00+08:00",
                         "key_id": "approval-2026", "signature": ""}
        })
    }

    fn parse_value(v: &Value) -> Result<ParsedJob, JobError> {
        parse(serde_json::to_string(v).unwrap().as_bytes())
    }

    #[test]
    fn the_spec_example_parses() {
        let p = parse_value(&sample()).unwrap();
        assert_eq!(
            p.job.category,
            Category {
                article: 6,
                item: 3
            }
        );
        assert_eq!(p.job.scope, Scope::Public);
        assert_eq!(p.job.channels.as_ref().unwrap().len(), 4);
    }

    #[test]
    fn unknown_fields_are_refused_with_their_path() {
        let mut v = sample();
        v["audience"]["recipients"] =
            serde_json::json!([{"id": "r1", "name": "王五", "role": "member", "fax": "1"}]);
        let e = parse_value(&v).unwrap_err();
        assert!(
            matches!(&e, JobError::Field { path, message } if path == "audience.recipients[0].fax" && message.contains("unknown field")),
            "{e}"
        );
        let mut v = sample();
        v["colour"] = Value::from("red");
        let e = parse_value(&v).unwrap_err();
        assert!(e.to_string().contains("colour"), "{e}");
    }

    #[test]
    fn wrong_types_name_the_field() {
        let mut v = sample();
        v["schedule"]["publish_at"] = Value::from("2026-12-01 09:00");
        let e = parse_value(&v).unwrap_err();
        assert!(
            matches!(&e, JobError::Field { path, .. } if path == "schedule.publish_at"),
            "{e}"
        );
        let mut v = sample();
        v["channels"][1] = Value::from("fax");
        let e = parse_value(&v).unwrap_err();
        assert!(
            matches!(&e, JobError::Field { path, .. } if path == "channels[1]"),
            "{e}"
        );
    }

    #[test]
    fn categories_are_clauses_of_art_6_to_9() {
        for (s, ok) in [
            ("6.1", true),
            ("6.7", true),
            ("7.5", true),
            ("7.6", false),
            ("9.7", true),
            ("5.1", false),
            ("6.0", false),
            ("6", false),
            ("x.1", false),
        ] {
            assert_eq!(Category::parse(s).is_ok(), ok, "{s}");
        }
        assert!(Category::parse("7.5").unwrap().is_catch_all());
        assert!(!Category::parse("9.5").unwrap().is_catch_all());
        assert_eq!(Category::parse("8.2").unwrap().scope(), Scope::Leadership);
    }

    #[test]
    fn size_and_encoding_are_checked_first() {
        let big = vec![b' '; MAX_JOB_BYTES + 1];
        assert!(matches!(parse(&big), Err(JobError::TooLarge { .. })));
        assert!(matches!(
            parse(b"{\"id\": \"\xff\"}"),
            Err(JobError::NotUtf8 { offset: 8 })
        ));
        assert!(matches!(parse(b"{\"id\": "), Err(JobError::NotJson(_))));
        assert!(matches!(parse(b"[1,2]"), Err(JobError::Field { .. })));
    }

    #[test]
    fn ids_and_corrections_are_checked() {
        let mut v = sample();
        v["id"] = Value::from("has space");
        assert!(matches!(parse_value(&v), Err(JobError::Field { path, .. }) if path == "id"));
        let mut v = sample();
        v["kind"] = Value::from("correction");
        assert!(matches!(parse_value(&v), Err(JobError::Field { path, .. }) if path == "corrects"));
        v["corrects"] = Value::from("zzb-2026-0100");
        assert!(parse_value(&v).is_ok());
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let e = parse(br#"{"id": "a", "id": "b"}"#).unwrap_err();
        assert!(
            matches!(e, JobError::NotJson(ref m) if m.contains("duplicate")),
            "{e}"
        );
    }
}
