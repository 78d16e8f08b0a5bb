//! The regulation as code: who may learn what, through which medium, and when.
//!
//! The Measures (`regulation/measures.zh.txt`) decide, for every piece of cadre-work
//! information, the range it may reach (Art 6–9), the media that may carry it (Art 10–13),
//! what must never be disclosed (Art 3, Art 4), and that disclosing outside the rules is itself
//! a breach (Art 17: 不应当公开而公开、不按规定范围公开). This module is the one place those
//! rules live. It is pure: [`decide`] looks only at the [`Job`] and the [`Context`] it is given
//! (directory kinds, roster, configured channels, calendar, the clock, the correction target)
//! and returns either a delivery [`Plan`] or every independent reason to refuse.
//!
//! Each rule is its own function and reports with a stable [`Code`] and the article behind it:
//!
//! | rule | code | article |
//! |---|---|---|
//! | `classified` state secrets need declassification | `classified` | Art 4 |
//! | `internal_to_public` `internal` never goes public | `internal_to_public` | Art 3 |
//! | `scope_exceeds_category` the category's article fixes the widest scope | `scope_exceeds_category` | Art 6–9, 17 |
//! | `justification_required` the catch-all 7th items need a reason | `justification_required` | Art 6–9 (7th item) |
//! | `channel_not_allowed` the channel matrix of `channels/policy.toml` | `channel_not_allowed` | Art 10–13 (the row), 17 |
//! | `audience_outside_scope` groups and named recipients fit the scope | `audience_outside_scope` | Art 8–9, 17 |
//! | `complainant_not_signed` complainants learn results of signed reports only | `complainant_not_signed` | Art 9(5) |
//! | `schedule_invalid` expiry after publication; 6.3 publicity ≥ 5 working days | `schedule_invalid` | Art 3 (timely) |
//! | `unknown_target`, `correction_widens` corrections act on what was delivered, never wider | `unknown_target`, … | Art 17 |
//!
//! The rules do not short-circuit: a job that breaks three rules is refused with three reasons,
//! so the approval side can fix them all at once and the audit trail shows them all.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset, NaiveDate, Offset, Utc};
use serde::{Deserialize, Serialize};

use crate::calendar::{CalendarError, WorkCalendar};
use crate::job::{Category, ChannelKind, Classification, Job, Kind, NamedRecipient, Scope};

/// The shipped channel matrix; [`PolicyConfig::defaults`] parses exactly this.
const DEFAULT_POLICY_TOML: &str = include_str!("../channels/policy.toml");

/// Minimum publicity period of a pre-appointment notice (任前公示, Art 6(3)), in working days,
/// set by the national selection-and-appointment rules (《党政领导干部选拔任用工作条例》).
pub const PRE_APPOINTMENT_PUBLICITY_DAYS: u32 = 5;

/// Stable, machine-readable refusal codes (SPEC §2). The snake_case names are the wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    Malformed,
    Unapproved,
    Classified,
    InternalToPublic,
    ScopeExceedsCategory,
    ChannelNotAllowed,
    AudienceOutsideScope,
    ComplainantNotSigned,
    JustificationRequired,
    TemplateError,
    ScheduleInvalid,
    UnknownTarget,
}

impl Code {
    pub const ALL: [Code; 12] = [
        Code::Malformed,
        Code::Unapproved,
        Code::Classified,
        Code::InternalToPublic,
        Code::ScopeExceedsCategory,
        Code::ChannelNotAllowed,
        Code::AudienceOutsideScope,
        Code::ComplainantNotSigned,
        Code::JustificationRequired,
        Code::TemplateError,
        Code::ScheduleInvalid,
        Code::UnknownTarget,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Code::Malformed => "malformed",
            Code::Unapproved => "unapproved",
            Code::Classified => "classified",
            Code::InternalToPublic => "internal_to_public",
            Code::ScopeExceedsCategory => "scope_exceeds_category",
            Code::ChannelNotAllowed => "channel_not_allowed",
            Code::AudienceOutsideScope => "audience_outside_scope",
            Code::ComplainantNotSigned => "complainant_not_signed",
            Code::JustificationRequired => "justification_required",
            Code::TemplateError => "template_error",
            Code::ScheduleInvalid => "schedule_invalid",
            Code::UnknownTarget => "unknown_target",
        }
    }

    /// The article a refusal with this code cites unless the rule names a more precise one
    /// (the channel matrix cites its row, e.g. "Art 12"; corrections cite "Art 17").
    pub fn article(self) -> &'static str {
        match self {
            // Not rules of the Measures: only well-formed, approved jobs are dispatched at all.
            Code::Malformed | Code::Unapproved => "–",
            Code::Classified => "Art 4",
            Code::InternalToPublic => "Art 3",
            Code::ScopeExceedsCategory => "Art 6–9, 17",
            Code::ChannelNotAllowed => "Art 10–13, 17",
            Code::AudienceOutsideScope => "Art 8–9, 17",
            Code::ComplainantNotSigned => "Art 9(5)",
            Code::JustificationRequired => "Art 6–9 (7th item)",
            Code::TemplateError => "Art 3",
            Code::ScheduleInvalid => "Art 3",
            Code::UnknownTarget => "Art 17",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One reason a job is refused: a stable code, the article behind it, and a sentence that names
/// the offending thing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    pub code: Code,
    pub article: String,
    pub message: String,
}

impl Refusal {
    /// A refusal citing the code's default article.
    pub fn new(code: Code, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            article: code.article().to_string(),
            message: message.into(),
        }
    }

    /// A refusal citing a more precise article than the code's default.
    pub fn with_article(
        code: Code,
        article: impl Into<String>,
        message: impl Into<String>,
    ) -> Refusal {
        Refusal {
            code,
            article: article.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.article, self.message)
    }
}

/// The kinds of group in the recipient directory (SPEC §2 Audience). A group name
/// `unit:<code>` is always [`GroupKind::Unit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupKind {
    /// The public at large (`subscribers`, `press`): Art 6, Art 10.
    Public,
    /// The staff of one organ or unit (`unit:<code>`): Art 7, Art 11.
    Unit,
    /// The county committee leadership team (the roster): Art 8, Art 12.
    Leadership,
    /// Members of the plenary committee (全委会), e.g. Art 9(4).
    Committee,
    /// A range assembled for one occasion, e.g. participants of a recommendation meeting, Art 9(2).
    AdHoc,
}

impl GroupKind {
    pub const ALL: [GroupKind; 5] = [
        GroupKind::Public,
        GroupKind::Unit,
        GroupKind::Leadership,
        GroupKind::Committee,
        GroupKind::AdHoc,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GroupKind::Public => "public",
            GroupKind::Unit => "unit",
            GroupKind::Leadership => "leadership",
            GroupKind::Committee => "committee",
            GroupKind::AdHoc => "ad_hoc",
        }
    }

    pub fn parse(s: &str) -> Option<GroupKind> {
        GroupKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for GroupKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why `channels/policy.toml` (or the operator's replacement) could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyConfigError {
    #[error("cannot read the channel policy {}: {message}", path.display())]
    Read { path: PathBuf, message: String },
    #[error("{}: {source}", path.display())]
    InFile {
        path: PathBuf,
        source: Box<PolicyConfigError>,
    },
    #[error("the channel policy is not valid TOML for [scope.<name>] tables: {0}")]
    Toml(String),
    #[error(
        "[scope.{0}]: unknown scope {0:?}; the scopes of Art 6–9 are public, unit, leadership, specific"
    )]
    UnknownScope(String),
    #[error(
        "[scope.{scope}] channels: unknown channel {channel:?}; channels are website, intranet, wechat, sms, email, wecom, letter"
    )]
    UnknownChannel { scope: Scope, channel: String },
    #[error("[scope.{scope}] channels: channel {channel} is listed twice")]
    DuplicateChannel { scope: Scope, channel: ChannelKind },
    #[error(
        "[scope.{0}] is missing: every scope needs its row of the channel matrix (an empty `channels = []` forbids all)"
    )]
    MissingScope(Scope),
    #[error(
        "[scope.{0}] has no `article`: every row must cite the article that permits its channels (e.g. \"Art 10\")"
    )]
    MissingArticle(Scope),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ScopeRow {
    article: String,
    channels: Vec<ChannelKind>,
}

/// The channel matrix (SPEC §2 table, Art 10–13) loaded from `channels/policy.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyConfig {
    rows: BTreeMap<Scope, ScopeRow>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    scope: BTreeMap<String, RawRow>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRow {
    #[serde(default)]
    article: Option<String>,
    channels: Vec<String>,
}

impl PolicyConfig {
    /// The shipped `channels/policy.toml`, which is the SPEC §2 table.
    pub fn defaults() -> PolicyConfig {
        // The shipped file is part of the build and checked by the test suite
        // (`the_shipped_matrix_is_the_spec_table`); failing here is failing at start-up.
        PolicyConfig::from_toml(DEFAULT_POLICY_TOML)
            .expect("channels/policy.toml, compiled in, is a valid channel policy")
    }

    pub fn load(path: &Path) -> Result<PolicyConfig, PolicyConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| PolicyConfigError::Read {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        PolicyConfig::from_toml(&text).map_err(|e| PolicyConfigError::InFile {
            path: path.to_path_buf(),
            source: Box::new(e),
        })
    }

    pub fn from_toml(text: &str) -> Result<PolicyConfig, PolicyConfigError> {
        let raw: RawPolicy =
            toml::from_str(text).map_err(|e| PolicyConfigError::Toml(e.to_string()))?;
        let mut rows = BTreeMap::new();
        for (name, row) in raw.scope {
            let scope = Scope::ALL
                .into_iter()
                .find(|s| s.as_str() == name)
                .ok_or_else(|| PolicyConfigError::UnknownScope(name.clone()))?;
            let article = match row.article {
                Some(a) if !a.trim().is_empty() => a.trim().to_string(),
                _ => return Err(PolicyConfigError::MissingArticle(scope)),
            };
            let mut channels = Vec::with_capacity(row.channels.len());
            for c in &row.channels {
                let channel =
                    ChannelKind::parse(c).ok_or_else(|| PolicyConfigError::UnknownChannel {
                        scope,
                        channel: c.clone(),
                    })?;
                if channels.contains(&channel) {
                    return Err(PolicyConfigError::DuplicateChannel { scope, channel });
                }
                channels.push(channel);
            }
            rows.insert(scope, ScopeRow { article, channels });
        }
        if let Some(missing) = Scope::ALL.into_iter().find(|s| !rows.contains_key(s)) {
            return Err(PolicyConfigError::MissingScope(missing));
        }
        Ok(PolicyConfig { rows })
    }

    pub fn allows(&self, scope: Scope, channel: ChannelKind) -> bool {
        self.rows
            .get(&scope)
            .is_some_and(|r| r.channels.contains(&channel))
    }

    /// The channels the scope allows, in [`ChannelKind::ALL`] order.
    pub fn allowed(&self, scope: Scope) -> Vec<ChannelKind> {
        ChannelKind::ALL
            .into_iter()
            .filter(|c| self.allows(scope, *c))
            .collect()
    }

    /// The article of the scope's row, e.g. "Art 10".
    pub fn article(&self, scope: Scope) -> &str {
        // Every scope has a row once loaded; the fallback only keeps this total.
        self.rows
            .get(&scope)
            .map_or(Code::ChannelNotAllowed.article(), |r| r.article.as_str())
    }
}

/// What a correction or retraction refers to, looked up in the ledger by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub id: String,
    pub scope: Scope,
    pub channels: Vec<ChannelKind>,
    pub groups: Vec<String>,
    pub recipient_ids: Vec<String>,
    /// Any of its deliveries is `delivered` or `unknown`.
    pub reached: bool,
}

/// Everything besides the job that a decision depends on. All of it is data the caller read.
pub struct Context<'a> {
    pub config: &'a PolicyConfig,
    /// Kinds of the groups that exist in the directory (a group missing here does not exist).
    pub groups: &'a HashMap<String, GroupKind>,
    /// Recipient ids on the leadership roster (members of Leadership groups).
    pub roster: &'a HashSet<String>,
    /// Channels this deployment has configured.
    pub configured: &'a BTreeSet<ChannelKind>,
    pub calendar: &'a WorkCalendar,
    pub now: DateTime<FixedOffset>,
    /// For a correction/retraction: `None` = the target job is unknown or was never delivered.
    pub target: Option<&'a Target>,
}

/// What an accepted job is to do. Groups are expanded to people later, from the directory.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub channels: Vec<ChannelKind>,
    pub groups: Vec<String>,
    pub recipients: Vec<NamedRecipient>,
    /// `None`: at once.
    pub publish_at: Option<DateTime<FixedOffset>>,
    pub expires_at: Option<DateTime<FixedOffset>>,
}

/// Decide a job: the delivery plan, or every independent reason to refuse it.
pub fn decide(job: &Job, cx: &Context) -> Result<Plan, Vec<Refusal>> {
    let mut refusals = Vec::new();
    refusals.extend(classified(job));
    refusals.extend(internal_to_public(job));
    refusals.extend(scope_exceeds_category(job));
    refusals.extend(justification_required(job));
    let (channels, channel_refusals) = channel_not_allowed(job, cx);
    refusals.extend(channel_refusals);
    refusals.extend(audience_outside_scope(job, cx));
    refusals.extend(complaint_required(job));
    refusals.extend(complainant_not_signed(job));
    refusals.extend(schedule_invalid(job, cx));
    refusals.extend(unknown_target(job, cx));
    refusals.extend(correction_widens(job, cx, &channels));
    if !refusals.is_empty() {
        return Err(refusals);
    }
    Ok(Plan {
        channels,
        groups: job.audience.groups.clone(),
        recipients: job.audience.recipients.clone(),
        publish_at: job.schedule.publish_at,
        expires_at: job.schedule.expires_at,
    })
}

/// Art 4: 涉及国家秘密…不公开，但经主管机关同意公开的事项，可以予以公开.
fn classified(job: &Job) -> Option<Refusal> {
    if !job.classification.is_state_secret() || job.declassification.is_some() {
        return None;
    }
    Some(Refusal::new(
        Code::Classified,
        format!(
            "classification {} is a state-secret level; it may be disclosed only with a \
             `declassification` approval by the competent authority, and the job has none",
            job.classification.as_str()
        ),
    ))
}

/// Art 3: 严守保密纪律 — information marked internal never goes to society at large.
fn internal_to_public(job: &Job) -> Option<Refusal> {
    if job.classification != Classification::Internal || job.scope != Scope::Public {
        return None;
    }
    Some(Refusal::new(
        Code::InternalToPublic,
        "classification internal may not be disclosed in the public scope; \
         choose unit, leadership or specific, or have it reclassified",
    ))
}

/// Rank on the chain `public > unit > leadership` (0 widest); `specific` is not on it.
fn chain_rank(scope: Scope) -> Option<u8> {
    match scope {
        Scope::Public => Some(0),
        Scope::Unit => Some(1),
        Scope::Leadership => Some(2),
        Scope::Specific => None,
    }
}

/// `narrow` is `wide` or narrower on the chain; `specific` is within `specific` only.
fn within(narrow: Scope, wide: Scope) -> bool {
    match (chain_rank(narrow), chain_rank(wide)) {
        (Some(n), Some(w)) => n >= w,
        (None, None) => true,
        _ => false,
    }
}

/// Whether a category's article lets it go to `scope` (Art 6–9): its own scope or narrower on
/// the chain; what Art 6 lets society know may also go to any narrower range, `specific`
/// included; Art 9 matters stay within their specific range.
fn category_allows(category: Category, scope: Scope) -> bool {
    category.scope() == Scope::Public || within(scope, category.scope())
}

/// Art 6–9 fix each category's range; Art 17 (不按规定范围公开) makes exceeding it a breach.
fn scope_exceeds_category(job: &Job) -> Option<Refusal> {
    let category = job.category;
    if category_allows(category, job.scope) {
        return None;
    }
    let allowed: Vec<&str> = Scope::ALL
        .into_iter()
        .filter(|s| category_allows(category, *s))
        .map(Scope::as_str)
        .collect();
    Some(Refusal::new(
        Code::ScopeExceedsCategory,
        format!(
            "category {category} belongs to the {} scope of Art {}, which may go only to {}; \
             the job asks for the {} scope",
            category.scope(),
            category.article,
            allowed.join(" or "),
            job.scope
        ),
    ))
}

/// Art 6–9, 7th item (其他需要公开的事项): the catch-all clauses need a stated reason.
fn justification_required(job: &Job) -> Option<Refusal> {
    if !job.category.is_catch_all()
        || job
            .justification
            .as_deref()
            .is_some_and(|j| !j.trim().is_empty())
    {
        return None;
    }
    Some(Refusal::new(
        Code::JustificationRequired,
        format!(
            "category {} is the catch-all \"other matters\" item of Art {} and needs a \
             non-empty `justification`",
            job.category, job.category.article
        ),
    ))
}

/// Art 10–13: the media each scope may use (the matrix of `channels/policy.toml`), and only
/// those this deployment can reach. Returns the channels to plan with the refusals.
///
/// `channels` omitted means every channel the scope allows and the deployment configures; for
/// a correction or retraction, only those among the original's channels (Art 17).
fn channel_not_allowed(job: &Job, cx: &Context) -> (Vec<ChannelKind>, Vec<Refusal>) {
    let scope = job.scope;
    let row_article = cx.config.article(scope);
    let Some(requested) = &job.channels else {
        let corrected = corrected_target(job, cx);
        let channels: Vec<ChannelKind> = ChannelKind::ALL
            .into_iter()
            .filter(|c| cx.config.allows(scope, *c) && cx.configured.contains(c))
            .filter(|c| corrected.is_none_or(|t| t.channels.contains(c)))
            .collect();
        if !channels.is_empty() || (corrected.is_none() && is_correction(job)) {
            // An unknown target is reported by `unknown_target`; no second reason here.
            return (channels, Vec::new());
        }
        // An accepted job that reaches no one would be 应当公开而未公开 (Art 17) in silence.
        let allowed = names(&cx.config.allowed(scope));
        let message = match corrected {
            Some(t) => format!(
                "no channel is both allowed in the {scope} scope ({allowed}), configured in \
                 this deployment and used by the original job {}",
                t.id
            ),
            None => format!(
                "no channel that the {scope} scope allows ({allowed}) is configured in this \
                 deployment"
            ),
        };
        return (
            channels,
            vec![Refusal::with_article(
                Code::ChannelNotAllowed,
                row_article,
                message,
            )],
        );
    };
    if requested.is_empty() {
        return (
            Vec::new(),
            vec![Refusal::new(
                Code::Malformed,
                "channels: an empty list sends nothing; list the channels, or omit `channels` \
                 for every channel the scope allows",
            )],
        );
    }
    let mut refusals = Vec::new();
    for &channel in requested {
        if !cx.config.allows(scope, channel) {
            refusals.push(Refusal::with_article(
                Code::ChannelNotAllowed,
                row_article,
                format!(
                    "channel {channel} is not allowed in the {scope} scope ({row_article} allows: {})",
                    names(&cx.config.allowed(scope))
                ),
            ));
        } else if !cx.configured.contains(&channel) {
            refusals.push(Refusal::new(
                Code::ChannelNotAllowed,
                format!(
                    "channel {channel} is allowed in the {scope} scope but is not configured in \
                     this deployment"
                ),
            ));
        }
    }
    (requested.clone(), refusals)
}

fn names(channels: &[ChannelKind]) -> String {
    if channels.is_empty() {
        return "none".to_string();
    }
    channels
        .iter()
        .map(|c| c.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The directory kind of a group, `None` if the directory has no such group.
fn group_kind(name: &str, groups: &HashMap<String, GroupKind>) -> Option<GroupKind> {
    let kind = groups.get(name).copied()?;
    // SPEC §2: `unit:<code>` names a unit group whatever else the directory says.
    Some(if name.starts_with("unit:") {
        GroupKind::Unit
    } else {
        kind
    })
}

/// The group kinds each scope admits (SPEC §2 Audience, from Art 6–9).
fn admitted_groups(scope: Scope) -> &'static [GroupKind] {
    match scope {
        Scope::Public => &[GroupKind::Public],
        Scope::Unit => &[GroupKind::Unit, GroupKind::Leadership, GroupKind::Committee],
        Scope::Leadership => &[GroupKind::Leadership],
        Scope::Specific => &[GroupKind::AdHoc, GroupKind::Committee, GroupKind::Unit],
    }
}

/// Art 8–9, 17: every group and named person must lie inside the scope's range. One refusal
/// per offending group or recipient. No audience at all is not a refusal: publication channels
/// need none, and per-person channels then simply have no one to plan.
fn audience_outside_scope(job: &Job, cx: &Context) -> Vec<Refusal> {
    let scope = job.scope;
    let admitted = admitted_groups(scope);
    let mut refusals = Vec::new();
    for group in &job.audience.groups {
        match group_kind(group, cx.groups) {
            None => refusals.push(Refusal::new(
                Code::AudienceOutsideScope,
                format!("group {group:?} does not exist in the recipient directory"),
            )),
            Some(kind) if !admitted.contains(&kind) => {
                let admitted: Vec<&str> = admitted.iter().map(|k| k.as_str()).collect();
                refusals.push(Refusal::new(
                    Code::AudienceOutsideScope,
                    format!(
                        "group {group:?} is a {kind} group; the {scope} scope admits only {} groups",
                        admitted.join(", ")
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    for r in &job.audience.recipients {
        let why = match scope {
            Scope::Public => Some(
                "named recipients are not allowed in the public scope; society is reached \
                 through public groups"
                    .to_string(),
            ),
            Scope::Unit => Some(
                "named recipients are not allowed in the unit scope; name them through a unit group"
                    .to_string(),
            ),
            // Art 8: 在县委领导班子内公开 — the roster and no one else.
            Scope::Leadership if !cx.roster.contains(&r.id) => Some(
                "the leadership scope admits only members of the county committee leadership \
                 roster, and this recipient is not on it"
                    .to_string(),
            ),
            Scope::Leadership | Scope::Specific => None,
        };
        if let Some(why) = why {
            refusals.push(Refusal::new(
                Code::AudienceOutsideScope,
                format!("recipient {:?} ({}): {why}", r.id, r.role),
            ));
        }
    }
    refusals
}

/// Art 9(5): the result of a report goes to the reported person, and to the complainant only
/// when the report was signed (署名举报). Category 9.5 must therefore carry the `complaint`.
fn complaint_required(job: &Job) -> Option<Refusal> {
    if job.category != (Category { article: 9, item: 5 }) || job.complaint.is_some() {
        return None;
    }
    Some(Refusal::with_article(
        Code::Malformed,
        "Art 9(5)",
        "complaint: category 9.5 (result of investigating a report) requires a `complaint` \
         object {signed, case_no} saying whether the report was signed",
    ))
}

/// Art 9(5): 署名举报的同时向举报人公开 — one refusal per complainant of an unsigned report.
fn complainant_not_signed(job: &Job) -> Vec<Refusal> {
    let signed = job.complaint.as_ref().is_some_and(|c| c.signed);
    if signed {
        return Vec::new();
    }
    let why = match &job.complaint {
        Some(_) => "the report was not signed (complaint.signed is false)",
        None => "the job has no `complaint` showing that the report was signed",
    };
    job.audience
        .recipients
        .iter()
        .filter(|r| r.role.trim().eq_ignore_ascii_case("complainant"))
        .map(|r| {
            Refusal::new(
                Code::ComplainantNotSigned,
                format!(
                    "recipient {:?} is a complainant, but {why}; the result goes to the \
                     complainant only for a signed report",
                    r.id
                ),
            )
        })
        .collect()
}

/// Asia/Shanghai: UTC+8 all year, no daylight saving.
fn shanghai() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| Utc.fix())
}

fn calendar_refusal(e: &CalendarError) -> Refusal {
    Refusal::new(
        Code::ScheduleInvalid,
        format!(
            "the publicity period of category 6.3 cannot be checked against the national \
             selection-and-appointment rules: {e}"
        ),
    )
}

/// Art 3 (适时, timely): a disclosure must close after it opens, and a pre-appointment notice
/// (Art 6(3), 任前公示) must stay up at least 5 working days under the national
/// selection-and-appointment rules. Days are dates in Asia/Shanghai, both ends counted.
fn schedule_invalid(job: &Job, cx: &Context) -> Vec<Refusal> {
    let publish = job.schedule.publish_at.unwrap_or(cx.now);
    let mut refusals = Vec::new();
    if let Some(expires) = job.schedule.expires_at {
        if expires <= publish {
            let from = match job.schedule.publish_at {
                Some(_) => "publish_at",
                None => "now (no publish_at)",
            };
            refusals.push(Refusal::new(
                Code::ScheduleInvalid,
                format!(
                    "schedule.expires_at {} is not after {from} {}",
                    expires.to_rfc3339(),
                    publish.to_rfc3339()
                ),
            ));
            return refusals;
        }
    }
    // A retraction withdraws a notice; it has no publicity period of its own.
    let pre_appointment = job.category == (Category { article: 6, item: 3 });
    if !pre_appointment || job.kind == Kind::Retraction {
        return refusals;
    }
    let Some(expires) = job.schedule.expires_at else {
        refusals.push(Refusal::new(
            Code::ScheduleInvalid,
            format!(
                "category 6.3 (pre-appointment publicity) needs schedule.expires_at: the national \
                 selection-and-appointment rules require a publicity period of at least \
                 {PRE_APPOINTMENT_PUBLICITY_DAYS} working days"
            ),
        ));
        return refusals;
    };
    let from: NaiveDate = publish.with_timezone(&shanghai()).date_naive();
    let to: NaiveDate = expires.with_timezone(&shanghai()).date_naive();
    match cx.calendar.working_days_between(from, to) {
        Err(e) => refusals.push(calendar_refusal(&e)),
        Ok(days) if days < PRE_APPOINTMENT_PUBLICITY_DAYS => refusals.push(Refusal::new(
            Code::ScheduleInvalid,
            format!(
                "the publicity period of category 6.3 from {from} to {to} (Asia/Shanghai) is \
                 {days} working day{}; the national selection-and-appointment rules require at \
                 least {PRE_APPOINTMENT_PUBLICITY_DAYS}",
                if days == 1 { "" } else { "s" }
            ),
        )),
        Ok(_) => {}
    }
    refusals
}

fn is_correction(job: &Job) -> bool {
    matches!(job.kind, Kind::Correction | Kind::Retraction)
}

fn kind_word(job: &Job) -> &'static str {
    match job.kind {
        Kind::Retraction => "retraction",
        _ => "correction",
    }
}

/// The target a correction acts on, if known and it is the job the correction names.
fn corrected_target<'a>(job: &Job, cx: &Context<'a>) -> Option<&'a Target> {
    if !is_correction(job) {
        return None;
    }
    cx.target
        .filter(|t| job.corrects.as_deref() == Some(t.id.as_str()))
}

/// Art 17 (失实信息…应责令其改正): a correction or retraction acts on a job that reached
/// someone. Nothing delivered means nothing to correct.
fn unknown_target(job: &Job, cx: &Context) -> Option<Refusal> {
    if !is_correction(job) {
        return None;
    }
    let word = kind_word(job);
    let corrects = job.corrects.as_deref().unwrap_or("");
    let message = match cx.target {
        None => format!("the {word} names job {corrects:?}, which is unknown or was never delivered"),
        Some(t) if t.id != corrects => format!(
            "the {word} names job {corrects:?}, but the ledger looked up job {:?}",
            t.id
        ),
        Some(t) if !t.reached => format!(
            "the {word} names job {:?}, which was never delivered; there is nothing to {}",
            t.id,
            if job.kind == Kind::Retraction { "retract" } else { "correct" }
        ),
        Some(_) => return None,
    };
    Some(Refusal::new(Code::UnknownTarget, message))
}

/// Art 17: a correction goes to (at most) whom the original went; it can never widen it —
/// not to a wider scope, another channel, another group or another person.
fn correction_widens(job: &Job, cx: &Context, channels: &[ChannelKind]) -> Vec<Refusal> {
    let Some(t) = corrected_target(job, cx) else {
        return Vec::new();
    };
    let word = kind_word(job);
    let art17 = |code, what: String| {
        Refusal::with_article(
            code,
            "Art 17",
            format!("a {word} cannot widen the original job {:?}: {what}", t.id),
        )
    };
    let mut refusals = Vec::new();
    if !within(job.scope, t.scope) {
        refusals.push(art17(
            Code::ScopeExceedsCategory,
            format!(
                "it went to the {} scope and the {word} asks for the {} scope",
                t.scope, job.scope
            ),
        ));
    }
    for c in channels.iter().filter(|c| !t.channels.contains(c)) {
        refusals.push(art17(
            Code::ChannelNotAllowed,
            format!("channel {c} did not carry it"),
        ));
    }
    for g in job.audience.groups.iter().filter(|g| !t.groups.contains(g)) {
        refusals.push(art17(
            Code::AudienceOutsideScope,
            format!("group {g:?} did not receive it"),
        ));
    }
    for r in job
        .audience
        .recipients
        .iter()
        .filter(|r| !t.recipient_ids.contains(&r.id))
    {
        refusals.push(art17(
            Code::AudienceOutsideScope,
            format!("recipient {:?} did not receive it", r.id),
        ));
    }
    refusals
}
