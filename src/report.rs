//! The compliance report for a period (Art 17: 建立干部工作信息公开责任追究制度 — the department
//! answers for what should have been disclosed and was not, what should not have been and was,
//! what went beyond its range, and what was inaccurate).
//!
//! One [`Report`] is built from the ledger, then written as JSON (the whole structure), CSV (one
//! flat table, a `section` column saying what each row is) or HTML (one self-contained printable
//! page, Chinese headings citing the articles, for a supervisor). It shows:
//!
//! - what was disclosed in the period, by category (Art 6–9), scope and channel (Art 10–13),
//!   with recipient counts and outcomes, and each job;
//! - every refusal, with its code and article (what was stopped from going beyond its range);
//! - corrections, retractions and cancellations, with their reasons (inaccurate information
//!   set right);
//! - obligations overdue, or met late in the period (what should have been disclosed and was not);
//! - whether the audit chain verifies: a report read from a tampered ledger says so first.
//!
//! The period is whole days in China Standard Time, both ends included. A job belongs to it when
//! it was accepted in it or reached someone in it; its outcomes are counted as the ledger holds
//! them when the report is made.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, TimeZone};
use serde::Serialize;

use crate::calendar::WorkCalendar;
use crate::ledger::{ChainStatus, JobRecord, Ledger, LedgerError, audit};
use crate::obligations::{self, Obligations, ObligationsError, Status};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{0}")]
    Period(String),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Obligations(#[from] ObligationsError),
}

/// The forms the report is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Html,
    Csv,
    Json,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        match s {
            "html" => Ok(Format::Html),
            "csv" => Ok(Format::Csv),
            "json" => Ok(Format::Json),
            _ => Err(format!("{s:?}: the report is written as html, csv or json")),
        }
    }
}

/// Days `from..=to`, China Standard Time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Period {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl Period {
    /// From the command line's `YYYY-MM-DD` strings.
    pub fn parse(from: &str, to: &str) -> Result<Period, ReportError> {
        let day = |flag: &str, s: &str| {
            NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|e| {
                ReportError::Period(format!(
                    "--{flag} {s:?} is not a day written YYYY-MM-DD (China Standard Time): {e}"
                ))
            })
        };
        let (from, to) = (day("from", from)?, day("to", to)?);
        if to < from {
            return Err(ReportError::Period(format!(
                "--to {to} is before --from {from}"
            )));
        }
        Ok(Period { from, to })
    }

    /// The first instant of the period.
    pub fn start(&self) -> DateTime<FixedOffset> {
        midnight(self.from)
    }

    /// The first instant after the period.
    pub fn end(&self) -> DateTime<FixedOffset> {
        midnight(self.to + Duration::days(1))
    }
}

fn midnight(d: NaiveDate) -> DateTime<FixedOffset> {
    let china = crate::clock::china();
    china
        .from_local_datetime(&d.and_time(chrono::NaiveTime::MIN))
        .single()
        .unwrap_or_else(|| china.from_utc_datetime(&d.and_time(chrono::NaiveTime::MIN)))
}

/// Deliveries by outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Every planned delivery (each page counts one).
    pub planned: u64,
    pub delivered: u64,
    pub failed: u64,
    pub skipped: u64,
    pub unknown: u64,
    pub pending: u64,
    pub sending: u64,
    pub cancelled: u64,
}

impl Counts {
    fn add_state(&mut self, state: &str, n: u64) {
        self.planned += n;
        match state {
            "delivered" => self.delivered += n,
            "failed" => self.failed += n,
            "skipped" => self.skipped += n,
            "unknown" => self.unknown += n,
            "pending" => self.pending += n,
            "sending" => self.sending += n,
            "cancelled" => self.cancelled += n,
            _ => {}
        }
    }

    fn add(&mut self, o: &Counts) {
        self.planned += o.planned;
        self.delivered += o.delivered;
        self.failed += o.failed;
        self.skipped += o.skipped;
        self.unknown += o.unknown;
        self.pending += o.pending;
        self.sending += o.sending;
        self.cancelled += o.cancelled;
    }

    /// Deliveries that reached someone or may have (delivered, unknown).
    pub fn reached(&self) -> u64 {
        self.delivered + self.unknown
    }
}

/// A line of a summary table: a category, a scope or a channel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    pub key: String,
    /// How the HTML names it, with its article.
    pub label: String,
    pub jobs: u64,
    pub counts: Counts,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobLine {
    pub id: String,
    pub kind: String,
    pub category: String,
    pub scope: String,
    pub title: String,
    pub reference: Option<String>,
    pub accepted_at: String,
    /// When it first reached someone.
    pub first_out: Option<String>,
    pub corrects: Option<String>,
    pub retracted_by: Option<String>,
    pub channels: BTreeMap<String, Counts>,
    pub counts: Counts,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RefusalLine {
    pub at: String,
    pub job_id: Option<String>,
    pub code: String,
    pub article: String,
    pub message: String,
}

/// A correction, retraction or cancellation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Amendment {
    /// `correction`, `retraction` or `cancellation`.
    pub kind: String,
    pub at: String,
    /// The correction or retraction job; for a cancellation, the cancelled job.
    pub job_id: String,
    /// The job corrected or retracted.
    pub target: Option<String>,
    pub target_title: Option<String>,
    pub reason: Option<String>,
    /// Deliveries it made (a correction or retraction: to those the original reached) or
    /// cancelled (a cancellation).
    pub deliveries: u64,
    /// What it did, in a sentence.
    pub effect: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObligationLine {
    pub id: String,
    pub title: String,
    pub article: String,
    pub category: String,
    pub period: String,
    pub due: Option<NaiveDate>,
    pub status: Status,
    pub job: Option<String>,
    /// The day the job that met it reached someone.
    pub on: Option<NaiveDate>,
    pub days_late: Option<i64>,
    pub message: String,
}

/// Whether the audit chain verified when the report was made.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditCheck {
    pub verified: bool,
    pub entries: Option<u64>,
    pub broken_at: Option<i64>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub period: Period,
    /// When the report was made (China Standard Time).
    pub generated_at: String,
    /// Obligations are judged as of the end of this day: the period's last day, or today.
    pub obligations_as_of: NaiveDate,
    pub audit: AuditCheck,
    pub totals: Group,
    pub by_category: Vec<Group>,
    pub by_scope: Vec<Group>,
    pub by_channel: Vec<Group>,
    pub jobs: Vec<JobLine>,
    pub refusals: Vec<RefusalLine>,
    pub amendments: Vec<Amendment>,
    pub obligations: Vec<ObligationLine>,
}

/// Build the report of `period` from the ledger as it stands at `now`.
pub fn build(
    ledger: &dyn Ledger,
    duties: &Obligations,
    calendar: &WorkCalendar,
    period: Period,
    now: DateTime<FixedOffset>,
) -> Result<Report, ReportError> {
    let (start, end) = (period.start(), period.end());
    let records = ledger.jobs_active_between(start, end)?;

    let mut by_category: BTreeMap<String, Group> = BTreeMap::new();
    let mut by_scope: BTreeMap<String, Group> = BTreeMap::new();
    let mut by_channel: BTreeMap<String, Group> = BTreeMap::new();
    let mut totals = Group {
        key: "total".into(),
        label: "合计".into(),
        jobs: 0,
        counts: Counts::default(),
    };
    let mut jobs = Vec::new();
    let mut amendments = Vec::new();
    for r in &records {
        let line = job_line(r);
        let group = |map: &mut BTreeMap<String, Group>, key: &str, label: String| {
            let g = map.entry(key.to_string()).or_insert_with(|| Group {
                key: key.to_string(),
                label,
                jobs: 0,
                counts: Counts::default(),
            });
            g.jobs += 1;
            g.counts.add(&line.counts);
        };
        group(&mut by_category, &r.category, category_label(&r.category));
        group(&mut by_scope, &r.scope, scope_label(&r.scope));
        for (channel, counts) in &line.channels {
            let g = by_channel.entry(channel.clone()).or_insert_with(|| Group {
                key: channel.clone(),
                label: channel_label(channel),
                jobs: 0,
                counts: Counts::default(),
            });
            g.jobs += 1;
            g.counts.add(counts);
        }
        totals.jobs += 1;
        totals.counts.add(&line.counts);
        if matches!(r.kind.as_str(), "correction" | "retraction") {
            let target_title = match &r.corrects {
                Some(t) => ledger.job_summary(t)?.map(|s| s.title),
                None => None,
            };
            let reached = line.counts.reached();
            let effect = if r.kind == "correction" {
                format!(
                    "the page replaced in place; {reached} delivery(ies) of the correction to those the original reached"
                )
            } else {
                format!(
                    "the page withdrawn; deliveries of the original not yet sent cancelled; {reached} retraction notice(s) to those it reached"
                )
            };
            amendments.push(Amendment {
                kind: r.kind.clone(),
                at: local_time(&r.accepted_at),
                job_id: r.id.clone(),
                target: r.corrects.clone(),
                target_title,
                reason: r.reason.clone(),
                deliveries: reached,
                effect,
            });
        }
        jobs.push(line);
    }
    for e in ledger.audit_entries(audit::JOB_CANCELLED, start, end)? {
        let job_id = e.job_id.clone().unwrap_or_default();
        let title = ledger.job_summary(&job_id)?.map(|s| s.title);
        let cancelled: u64 = e.body["cancelled"]
            .as_object()
            .map(|m| m.values().filter_map(|v| v.as_u64()).sum())
            .unwrap_or(0);
        amendments.push(Amendment {
            kind: "cancellation".into(),
            at: local_time(&e.at),
            job_id: job_id.clone(),
            target: Some(job_id),
            target_title: title,
            reason: e.body["reason"].as_str().map(str::to_string),
            deliveries: cancelled,
            effect: format!("{cancelled} delivery(ies) not yet sent cancelled"),
        });
    }
    amendments.sort_by(|a, b| a.at.cmp(&b.at).then(a.job_id.cmp(&b.job_id)));

    let refusals = ledger
        .refusals_between(start, end)?
        .into_iter()
        .flat_map(|row| {
            let at = local_time(&row.at);
            row.refusals.into_iter().map(move |r| RefusalLine {
                at: at.clone(),
                job_id: row.job_id.clone(),
                code: r.code.as_str().to_string(),
                article: r.article,
                message: r.message,
            })
        })
        .collect();

    let today = now.with_timezone(&crate::clock::china()).date_naive();
    let as_of = period.to.min(today);
    let mut overdue = Vec::new();
    for state in obligations::evaluate(duties, ledger, calendar, as_of)? {
        for p in state.periods {
            let in_period_late = p.status == Status::MetLate
                && p.on.is_some_and(|d| d >= period.from && d <= period.to);
            if p.status.is_alarm() || in_period_late {
                overdue.push(ObligationLine {
                    id: state.duty.id.clone(),
                    title: state.duty.title.clone(),
                    article: state.duty.article.clone(),
                    category: state.duty.category.clone(),
                    period: p.label,
                    due: p.due,
                    status: p.status,
                    job: p.job,
                    on: p.on,
                    days_late: p.days_late,
                    message: p.message,
                });
            }
        }
    }

    let audit = match ledger.verify_audit()? {
        ChainStatus::Intact { entries } => AuditCheck {
            verified: true,
            entries: Some(entries),
            broken_at: None,
            reason: None,
        },
        ChainStatus::Broken { seq, reason } => AuditCheck {
            verified: false,
            entries: None,
            broken_at: Some(seq),
            reason: Some(reason),
        },
    };

    Ok(Report {
        period,
        generated_at: now
            .with_timezone(&crate::clock::china())
            .format("%Y-%m-%d %H:%M:%S")
            .to_string(),
        obligations_as_of: as_of,
        audit,
        totals,
        by_category: by_category.into_values().collect(),
        by_scope: sorted_scopes(by_scope),
        by_channel: sorted_channels(by_channel),
        jobs,
        refusals,
        amendments,
        obligations: overdue,
    })
}

fn job_line(r: &JobRecord) -> JobLine {
    let mut channels = BTreeMap::new();
    let mut counts = Counts::default();
    for (channel, states) in &r.outcomes {
        let mut c = Counts::default();
        for (state, n) in states {
            c.add_state(state, *n);
        }
        counts.add(&c);
        channels.insert(channel.clone(), c);
    }
    JobLine {
        id: r.id.clone(),
        kind: r.kind.clone(),
        category: r.category.clone(),
        scope: r.scope.clone(),
        title: r.title.clone(),
        reference: r.reference.clone(),
        accepted_at: local_time(&r.accepted_at),
        first_out: r.first_out.map(|t| {
            t.with_timezone(&crate::clock::china())
                .format("%Y-%m-%d %H:%M")
                .to_string()
        }),
        corrects: r.corrects.clone(),
        retracted_by: r.retracted_by.clone(),
        channels,
        counts,
    }
}

const SCOPES: [&str; 4] = ["public", "unit", "leadership", "specific"];
const CHANNELS: [&str; 7] = [
    "website", "intranet", "wechat", "sms", "email", "wecom", "letter",
];

fn sorted_scopes(mut m: BTreeMap<String, Group>) -> Vec<Group> {
    let mut out: Vec<Group> = SCOPES.iter().filter_map(|s| m.remove(*s)).collect();
    out.extend(m.into_values());
    out
}

fn sorted_channels(mut m: BTreeMap<String, Group>) -> Vec<Group> {
    let mut out: Vec<Group> = CHANNELS.iter().filter_map(|s| m.remove(*s)).collect();
    out.extend(m.into_values());
    out
}

/// A stored RFC 3339 time as `YYYY-MM-DD HH:MM` China Standard Time (as stored if it is not one).
fn local_time(s: &str) -> String {
    DateTime::parse_from_rfc3339(s)
        .map(|t| {
            t.with_timezone(&crate::clock::china())
                .format("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_else(|_| s.to_string())
}

fn zh_number(n: u32) -> String {
    const DIGITS: [&str; 10] = ["零", "一", "二", "三", "四", "五", "六", "七", "八", "九"];
    match n {
        0..=9 => DIGITS[n as usize].to_string(),
        10 => "十".into(),
        11..=19 => format!("十{}", DIGITS[(n - 10) as usize]),
        20..=99 => format!(
            "{}十{}",
            DIGITS[(n / 10) as usize],
            if n.is_multiple_of(10) {
                ""
            } else {
                DIGITS[(n % 10) as usize]
            }
        ),
        _ => n.to_string(),
    }
}

/// "6.3" → "6.3 第六条第（三）项".
pub fn category_label(category: &str) -> String {
    match category
        .split_once('.')
        .and_then(|(a, i)| Some((a.parse::<u32>().ok()?, i.parse::<u32>().ok()?)))
    {
        Some((a, i)) => format!("{category} 第{}条第（{}）项", zh_number(a), zh_number(i)),
        None => category.to_string(),
    }
}

/// The scope with the article that defines it (Art 6–9).
pub fn scope_label(scope: &str) -> String {
    match scope {
        "public" => "向社会公开（第六条）".into(),
        "unit" => "党政机关、本单位内公开（第七条）".into(),
        "leadership" => "县委领导班子内公开（第八条）".into(),
        "specific" => "特定范围内公开（第九条）".into(),
        other => other.to_string(),
    }
}

/// The channel with the article that permits it (Art 10–13).
pub fn channel_label(channel: &str) -> String {
    match channel {
        "website" => "门户网站（第十条 网络）".into(),
        "intranet" => "内网（第十一条 网站）".into(),
        "wechat" => "微信公众号（第十条 网络）".into(),
        "sms" => "手机短信（第十条）".into(),
        "email" => "电子邮件（第十条、第十一条）".into(),
        "wecom" => "企业微信（第十一条）".into(),
        "letter" => "信函（第十一条至第十三条）".into(),
        other => other.to_string(),
    }
}

fn kind_label(kind: &str) -> &str {
    match kind {
        "release" => "发布",
        "notice" => "通知",
        "correction" => "更正",
        "retraction" => "撤回",
        "cancellation" => "取消",
        other => other,
    }
}

fn status_label(s: Status) -> &'static str {
    match s {
        Status::Met => "已按期公开",
        Status::MetLate => "逾期后公开",
        Status::Scheduled => "已排期",
        Status::DueSoon => "即将到期",
        Status::Open => "未到期",
        Status::Overdue => "逾期未公开",
        Status::Unknown => "无法判断",
    }
}

impl Report {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    /// One flat table; `section` says what a row is: `audit`, `total`, `category`, `scope`,
    /// `channel` (the summaries), `job` (one row per job and channel), `refusal`, `correction`,
    /// `retraction`, `cancellation`, `obligation`. Starts with a UTF-8 byte-order mark, so that
    /// the spreadsheet programs supervisors use read the Chinese text correctly.
    pub fn to_csv(&self) -> String {
        const HEADER: [&str; 18] = [
            "section",
            "date",
            "job_id",
            "kind",
            "category",
            "scope",
            "channel",
            "title",
            "planned",
            "delivered",
            "failed",
            "skipped",
            "unknown",
            "pending",
            "cancelled",
            "code",
            "article",
            "detail",
        ];
        let mut w = csv::Writer::from_writer(Vec::new());
        let mut row = |cells: [String; 18]| {
            let _ = w.write_record(&cells);
        };
        row(HEADER.map(str::to_string));
        let blank = || String::new();
        let counts = |c: &Counts| {
            [
                c.planned,
                c.delivered,
                c.failed,
                c.skipped,
                c.unknown,
                c.pending,
                c.cancelled,
            ]
            .map(|n| n.to_string())
        };
        let audit = &self.audit;
        row([
            "audit".into(),
            self.generated_at.clone(),
            blank(),
            blank(),
            blank(),
            blank(),
            blank(),
            blank(),
            blank(),
            blank(),
            blank(),
            blank(),
            blank(),
            blank(),
            blank(),
            if audit.verified { "intact" } else { "broken" }.into(),
            "Art 17".into(),
            audit_sentence(audit),
        ]);
        let summary = |section: &str, g: &Group, row: &mut dyn FnMut([String; 18])| {
            let [p, d, f, s, u, pe, c] = counts(&g.counts);
            let (category, scope, channel) = match section {
                "category" => (g.key.clone(), blank(), blank()),
                "scope" => (blank(), g.key.clone(), blank()),
                "channel" => (blank(), blank(), g.key.clone()),
                _ => (blank(), blank(), blank()),
            };
            row([
                section.into(),
                blank(),
                blank(),
                blank(),
                category,
                scope,
                channel,
                g.label.clone(),
                p,
                d,
                f,
                s,
                u,
                pe,
                c,
                blank(),
                blank(),
                format!("{} job(s)", g.jobs),
            ]);
        };
        summary("total", &self.totals, &mut row);
        for g in &self.by_category {
            summary("category", g, &mut row);
        }
        for g in &self.by_scope {
            summary("scope", g, &mut row);
        }
        for g in &self.by_channel {
            summary("channel", g, &mut row);
        }
        for j in &self.jobs {
            for (channel, c) in &j.channels {
                let [p, d, f, s, u, pe, ca] = counts(c);
                row([
                    "job".into(),
                    j.first_out.clone().unwrap_or_else(|| j.accepted_at.clone()),
                    j.id.clone(),
                    j.kind.clone(),
                    j.category.clone(),
                    j.scope.clone(),
                    channel.clone(),
                    j.title.clone(),
                    p,
                    d,
                    f,
                    s,
                    u,
                    pe,
                    ca,
                    blank(),
                    blank(),
                    j.retracted_by
                        .as_ref()
                        .map(|r| format!("retracted by {r}"))
                        .unwrap_or_default(),
                ]);
            }
        }
        for r in &self.refusals {
            row([
                "refusal".into(),
                r.at.clone(),
                r.job_id.clone().unwrap_or_default(),
                blank(),
                blank(),
                blank(),
                blank(),
                blank(),
                blank(),
                blank(),
                blank(),
                blank(),
                blank(),
                blank(),
                blank(),
                r.code.clone(),
                r.article.clone(),
                r.message.clone(),
            ]);
        }
        for a in &self.amendments {
            row([
                a.kind.clone(),
                a.at.clone(),
                a.job_id.clone(),
                a.kind.clone(),
                blank(),
                blank(),
                blank(),
                a.target_title.clone().unwrap_or_default(),
                blank(),
                blank(),
                blank(),
                blank(),
                blank(),
                blank(),
                blank(),
                a.target.clone().unwrap_or_default(),
                "Art 17".into(),
                format!(
                    "{}{}",
                    a.reason
                        .as_ref()
                        .map(|r| format!("reason: {r}; "))
                        .unwrap_or_default(),
                    a.effect
                ),
            ]);
        }
        for o in &self.obligations {
            row([
                "obligation".into(),
                o.due.map(|d| d.to_string()).unwrap_or_default(),
                o.job.clone().unwrap_or_default(),
                blank(),
                o.category.clone(),
                blank(),
                blank(),
                format!("{} ({})", o.title, o.period),
                blank(),
                blank(),
                blank(),
                blank(),
                blank(),
                blank(),
                blank(),
                o.status.as_str().into(),
                o.article.clone(),
                o.message.clone(),
            ]);
        }
        let bytes = w.into_inner().unwrap_or_default();
        format!("\u{feff}{}", String::from_utf8_lossy(&bytes))
    }

    /// One self-contained printable page (no external assets): inline CSS, Chinese headings
    /// citing the articles, the audit verification first.
    pub fn to_html(&self) -> String {
        let mut h = String::with_capacity(16 * 1024);
        let p = &self.period;
        let _ = write!(
            h,
            "<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n\
<title>干部工作信息公开情况报告 {from} 至 {to}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n\
<h1>干部工作信息公开情况报告</h1>\n\
<p class=\"sub\">报告期：<span id=\"period\">{from_zh}至{to_zh}</span>（北京时间）　生成时间：{generated}<br>\
依据《干部工作信息公开管理办法》第十七条：对应当公开而未公开、不应当公开而公开、不按规定范围公开或失实信息的，应责令其改正。</p>\n",
            from = p.from,
            to = p.to,
            from_zh = zh_date(p.from),
            to_zh = zh_date(p.to),
            generated = esc(&self.generated_at),
        );

        // The audit chain first: everything below is only as good as the ledger it comes from.
        let a = &self.audit;
        let _ = writeln!(
            h,
            "<section id=\"audit\" class=\"audit {cls}\" data-verified=\"{v}\"><strong>审计链校验：{word}</strong>　{detail}</section>",
            cls = if a.verified { "ok" } else { "broken" },
            v = a.verified,
            word = if a.verified { "通过" } else { "未通过" },
            detail = esc(&match (a.verified, a.entries, a.broken_at) {
                (true, Some(n), _) => format!("全部 {n} 条审计记录的哈希链完整，未发现篡改。"),
                (_, _, Some(seq)) => format!(
                    "第 {seq} 条审计记录校验失败（{}）。该记录之后的内容不可信，请立即核查账本。",
                    a.reason.as_deref().unwrap_or("")
                ),
                _ => String::new(),
            }),
        );

        // 一、summary.
        let t = &self.totals.counts;
        let _ = write!(
            h,
            "<h2>一、公开情况汇总（第六条至第十三条）</h2>\n<div class=\"figures\">\
<div><b id=\"total-jobs\">{jobs}</b>公开事项</div>\
<div><b id=\"total-delivered\">{delivered}</b>已送达</div>\
<div><b id=\"total-failed\">{failed}</b>失败</div>\
<div><b id=\"total-unknown\">{unknown}</b>结果未知</div>\
<div><b id=\"total-pending\">{pending}</b>待发送</div>\
<div><b id=\"total-cancelled\">{cancelled}</b>已取消</div>\
<div><b id=\"total-refusals\">{refusals}</b>拒绝公开</div>\
<div><b id=\"total-overdue\">{overdue}</b>逾期义务</div></div>\n",
            jobs = self.totals.jobs,
            delivered = t.delivered,
            failed = t.failed,
            unknown = t.unknown,
            pending = t.pending + t.sending,
            cancelled = t.cancelled,
            refusals = self.refusals.len(),
            overdue = self
                .obligations
                .iter()
                .filter(|o| o.status == Status::Overdue)
                .count(),
        );
        for (caption, id, groups) in [
            ("按类别（第六条至第九条）", "by-category", &self.by_category),
            ("按公开范围（第六条至第九条）", "by-scope", &self.by_scope),
            (
                "按公开渠道（第十条至第十三条）",
                "by-channel",
                &self.by_channel,
            ),
        ] {
            let _ = write!(
                h,
                "<table id=\"{id}\"><caption>{caption}</caption>\n<thead><tr><th></th><th>事项</th>{COUNT_HEADS}</tr></thead>\n<tbody>\n"
            );
            if groups.is_empty() {
                h.push_str("<tr><td colspan=\"10\" class=\"none\">本期无公开事项。</td></tr>\n");
            }
            for g in groups {
                let _ = writeln!(
                    h,
                    "<tr data-key=\"{key}\"><th scope=\"row\">{label}</th><td class=\"n\">{jobs}</td>{cells}</tr>",
                    key = esc(&g.key),
                    label = esc(&g.label),
                    jobs = g.jobs,
                    cells = count_cells(&g.counts),
                );
            }
            h.push_str("</tbody>\n</table>\n");
        }

        // 二、each job.
        h.push_str("<h2>二、公开事项明细</h2>\n");
        if self.jobs.is_empty() {
            h.push_str("<p class=\"none\">本期无公开事项。</p>\n");
        } else {
            h.push_str(
                "<table id=\"jobs\">\n<thead><tr><th>编号</th><th>标题</th><th>类型</th><th>类别</th><th>范围</th><th>首次送达</th><th>渠道与结果</th></tr></thead>\n<tbody>\n",
            );
            for j in &self.jobs {
                let mut outcome = String::new();
                for (channel, c) in &j.channels {
                    let _ = write!(
                        outcome,
                        "<div>{}：计划 {}，送达 {}{}</div>",
                        esc(channel_short(channel)),
                        c.planned,
                        c.delivered,
                        outcome_extras(c)
                    );
                }
                let mut note = String::new();
                if let Some(t) = &j.corrects {
                    let _ = write!(note, "<div class=\"small\">针对 {}</div>", esc(t));
                }
                if let Some(r) = &j.retracted_by {
                    let _ = write!(note, "<div class=\"small warn\">已由 {} 撤回</div>", esc(r));
                }
                let _ = writeln!(
                    h,
                    "<tr id=\"job-{id}\"><td class=\"mono\">{id}</td><td>{title}{reference}{note}</td><td>{kind}</td><td>{category}</td><td>{scope}</td><td>{first}</td><td>{outcome}</td></tr>",
                    id = esc(&j.id),
                    title = esc(&j.title),
                    reference = j
                        .reference
                        .as_ref()
                        .map(|r| format!("<div class=\"small\">{}</div>", esc(r)))
                        .unwrap_or_default(),
                    kind = kind_label(&j.kind),
                    category = esc(&j.category),
                    scope = esc(scope_short(&j.scope)),
                    first = esc(j.first_out.as_deref().unwrap_or("未送达")),
                );
            }
            h.push_str("</tbody>\n</table>\n");
        }

        // 三、refusals.
        h.push_str("<h2>三、拒绝公开的事项（第十七条：不应当公开而公开、不按规定范围公开）</h2>\n");
        if self.refusals.is_empty() {
            h.push_str("<p class=\"none\">本期无被拒绝的公开申请。</p>\n");
        } else {
            h.push_str("<table id=\"refusals\">\n<thead><tr><th>时间</th><th>编号</th><th>代码</th><th>依据</th><th>说明</th></tr></thead>\n<tbody>\n");
            for r in &self.refusals {
                let _ = writeln!(
                    h,
                    "<tr><td class=\"nowrap\">{}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td><td class=\"nowrap\">{}</td><td>{}</td></tr>",
                    esc(&r.at),
                    esc(r.job_id.as_deref().unwrap_or("（无编号）")),
                    esc(&r.code),
                    esc(&r.article),
                    esc(&r.message)
                );
            }
            h.push_str("</tbody>\n</table>\n");
        }

        // 四、corrections, retractions, cancellations.
        h.push_str("<h2>四、更正、撤回与取消（第十七条：失实信息应责令改正）</h2>\n");
        if self.amendments.is_empty() {
            h.push_str("<p class=\"none\">本期无更正、撤回或取消。</p>\n");
        } else {
            h.push_str("<table id=\"amendments\">\n<thead><tr><th>时间</th><th>类型</th><th>编号</th><th>涉及事项</th><th>原因</th><th>处理情况</th></tr></thead>\n<tbody>\n");
            for a in &self.amendments {
                let target = match (&a.target, &a.target_title) {
                    (Some(t), Some(title)) => {
                        format!("{}<div class=\"small\">{}</div>", esc(title), esc(t))
                    }
                    (Some(t), None) => esc(t),
                    _ => String::new(),
                };
                let _ = writeln!(
                    h,
                    "<tr class=\"{kind}\"><td class=\"nowrap\">{at}</td><td>{label}</td><td class=\"mono\">{id}</td><td>{target}</td><td>{reason}</td><td class=\"small\">{effect}</td></tr>",
                    kind = esc(&a.kind),
                    at = esc(&a.at),
                    label = kind_label(&a.kind),
                    id = esc(&a.job_id),
                    reason = esc(a.reason.as_deref().unwrap_or("（未说明）")),
                    effect = esc(&amendment_zh(a)),
                );
            }
            h.push_str("</tbody>\n</table>\n");
        }

        // 五、obligations.
        let _ = writeln!(
            h,
            "<h2>五、逾期未公开的事项（第十七条：应当公开而未公开）</h2>\n<p class=\"small\">截至 {} 的履行情况。</p>",
            zh_date(self.obligations_as_of)
        );
        if self.obligations.is_empty() {
            h.push_str("<p class=\"none\">无逾期未公开的事项。</p>\n");
        } else {
            h.push_str("<table id=\"obligations\">\n<thead><tr><th>公开义务</th><th>依据</th><th>期间</th><th>应公开日期</th><th>状态</th><th>说明</th></tr></thead>\n<tbody>\n");
            for o in &self.obligations {
                let _ = writeln!(
                    h,
                    "<tr data-id=\"{id}\" data-status=\"{status}\"><td>{title}<div class=\"small\">类别 {category}</div></td><td class=\"nowrap\">{article}</td><td class=\"nowrap\">{period}</td><td class=\"nowrap\">{due}</td><td class=\"{cls}\">{label}</td><td class=\"small\">{message}</td></tr>",
                    id = esc(&o.id),
                    status = o.status.as_str(),
                    title = esc(&o.title),
                    category = esc(&o.category),
                    article = esc(&o.article),
                    period = esc(&period_zh(&o.period)),
                    due = o.due.map(zh_date).unwrap_or_else(|| "—".into()),
                    cls = if o.status == Status::MetLate {
                        "late"
                    } else {
                        "overdue"
                    },
                    label = status_label(o.status),
                    message = esc(&obligation_zh(o, self.obligations_as_of)),
                );
            }
            h.push_str("</tbody>\n</table>\n");
        }
        h.push_str(
            "<footer>本报告由 disclose 依据账本（ledger）生成；送达结果为生成时的状态。审计链校验结果见页首。</footer>\n</main>\n</body>\n</html>\n",
        );
        h
    }
}

/// What a correction, retraction or cancellation did, for the HTML page.
fn amendment_zh(a: &Amendment) -> String {
    let n = a.deliveries;
    match a.kind.as_str() {
        "correction" => format!("原页面已原址更正并标注更正说明；向原接收人发送更正 {n} 人次"),
        "retraction" => format!(
            "页面已从栏目、索引和订阅中撤回，原事项尚未发送的投递已取消；向已接收人发送撤回通知 {n} 人次"
        ),
        "cancellation" => format!("取消尚未发送的投递 {n} 项"),
        _ => a.effect.clone(),
    }
}

/// "2025" → "2025年度"; "change 2026-11-20" → "2026-11-20 变动后".
fn period_zh(label: &str) -> String {
    match label.strip_prefix("change ") {
        Some(d) => format!("{d} 变动后"),
        None if label.parse::<i32>().is_ok() => format!("{label}年度"),
        None => label.to_string(),
    }
}

/// Where an obligation stands, for the HTML page.
fn obligation_zh(o: &ObligationLine, as_of: NaiveDate) -> String {
    let due = o.due.map(zh_date).unwrap_or_default();
    let job = o.job.as_deref().unwrap_or("");
    match (o.status, o.days_late, o.on) {
        (Status::Overdue, Some(n), _) => {
            let mut s = format!(
                "应于{due}前公开，截至{}仍未公开，已逾期 {n} 天",
                zh_date(as_of)
            );
            if let (Some(on), false) = (o.on, job.is_empty()) {
                s.push_str(&format!("（{job} 排期于{}发布）", zh_date(on)));
            }
            s
        }
        (Status::MetLate, Some(n), Some(on)) => {
            format!("由 {job} 于{}公开，晚于应公开日期{due} {n} 天", zh_date(on))
        }
        _ => o.message.clone(),
    }
}

fn audit_sentence(a: &AuditCheck) -> String {
    match (a.verified, a.entries, a.broken_at) {
        (true, Some(n), _) => format!("audit chain intact: {n} entries verified"),
        (_, _, Some(seq)) => format!(
            "audit chain BROKEN at entry {seq}: {}",
            a.reason.as_deref().unwrap_or("")
        ),
        _ => "audit chain not checked".into(),
    }
}

const COUNT_HEADS: &str = "<th>计划</th><th>已送达</th><th>失败</th><th>跳过</th><th>结果未知</th><th>待发送</th><th>已取消</th><th>送达率</th>";

fn count_cells(c: &Counts) -> String {
    let rate = if c.planned - c.skipped - c.cancelled > 0 {
        format!(
            "{:.1}%",
            100.0 * c.delivered as f64 / (c.planned - c.skipped - c.cancelled) as f64
        )
    } else {
        "—".into()
    };
    format!(
        "<td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{rate}</td>",
        c.planned,
        c.delivered,
        c.failed,
        c.skipped,
        c.unknown,
        c.pending + c.sending,
        c.cancelled
    )
}

fn outcome_extras(c: &Counts) -> String {
    let mut s = String::new();
    for (n, word) in [
        (c.failed, "失败"),
        (c.skipped, "跳过"),
        (c.unknown, "未知"),
        (c.pending + c.sending, "待发送"),
        (c.cancelled, "已取消"),
    ] {
        if n > 0 {
            let _ = write!(s, "，{word} {n}");
        }
    }
    s
}

fn channel_short(channel: &str) -> &str {
    match channel {
        "website" => "门户网站",
        "intranet" => "内网",
        "wechat" => "微信公众号",
        "sms" => "短信",
        "email" => "电子邮件",
        "wecom" => "企业微信",
        "letter" => "信函",
        other => other,
    }
}

fn scope_short(scope: &str) -> &str {
    match scope {
        "public" => "社会",
        "unit" => "本单位",
        "leadership" => "领导班子",
        "specific" => "特定范围",
        other => other,
    }
}

fn zh_date(d: NaiveDate) -> String {
    d.format("%Y年%-m月%-d日").to_string()
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const CSS: &str = "\
@page{size:A4;margin:16mm 14mm}\
*{box-sizing:border-box}\
body{margin:0;color:#111;background:#fff;font:14px/1.55 \"Noto Serif CJK SC\",\"Source Han Serif SC\",\"Songti SC\",SimSun,serif}\
main{max-width:1080px;margin:0 auto;padding:28px 32px}\
h1{text-align:center;font-size:26px;letter-spacing:4px;margin:8px 0 6px}\
.sub{text-align:center;color:#444;font-size:13px;margin:0 0 18px}\
h2{font-size:17px;border-bottom:2px solid #a40000;padding-bottom:3px;margin:26px 0 10px;break-after:avoid;page-break-after:avoid}\
.audit{padding:10px 14px;margin:0 0 8px;border-left:6px solid}\
.audit.ok{border-color:#2a7d2a;background:#eef7ee}\
.audit.broken{border-color:#b00000;background:#fdecec;color:#8a0000}\
.figures{display:flex;flex-wrap:wrap;gap:8px;margin:6px 0 12px}\
.figures div{flex:1 0 110px;border:1px solid #ccc;padding:6px 8px;text-align:center;font-size:12px;color:#444}\
.figures b{display:block;font-size:22px;color:#111;font-family:\"Noto Sans CJK SC\",sans-serif}\
table{border-collapse:collapse;width:100%;margin:6px 0 14px;font-size:12.5px}\
caption{text-align:left;font-weight:bold;padding:4px 0}\
th,td{border:1px solid #999;padding:4px 6px;vertical-align:top;text-align:left}\
thead th{background:#f1f1f1}\
tbody th{font-weight:normal}\
tr{break-inside:avoid;page-break-inside:avoid}\
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\
.mono{font-family:\"DejaVu Sans Mono\",monospace;font-size:11.5px;white-space:nowrap}\
.nowrap{white-space:nowrap}\
.small{font-size:11.5px;color:#444}\
.warn,.overdue{color:#b00000;font-weight:bold}\
.late{color:#a35a00;font-weight:bold}\
.none{color:#555}\
footer{margin-top:28px;padding-top:8px;border-top:1px solid #ccc;font-size:11.5px;color:#555}\
@media print{main{padding:0;max-width:none}.figures div{border-color:#999}}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_cite_the_articles() {
        assert_eq!(category_label("6.3"), "6.3 第六条第（三）项");
        assert_eq!(category_label("7.4"), "7.4 第七条第（四）项");
        assert_eq!(zh_number(17), "十七");
        assert!(scope_label("leadership").contains("第八条"));
        assert!(channel_label("sms").contains("第十条"));
    }

    #[test]
    fn the_period_is_whole_days_in_china_standard_time() {
        let p = Period::parse("2026-12-01", "2026-12-31").unwrap();
        assert_eq!(p.start().to_rfc3339(), "2026-12-01T00:00:00+08:00");
        assert_eq!(p.end().to_rfc3339(), "2027-01-01T00:00:00+08:00");
        let e = Period::parse("2026-12-31", "2026-12-01").unwrap_err();
        assert!(e.to_string().contains("before"), "{e}");
        let e = Period::parse("2026-13-01", "2026-12-01").unwrap_err();
        assert!(e.to_string().contains("--from \"2026-13-01\""), "{e}");
    }

    #[test]
    fn html_escapes_what_comes_from_jobs() {
        assert_eq!(esc("<b>&\"'"), "&lt;b&gt;&amp;&quot;&#39;");
    }

    #[test]
    fn formats_are_named() {
        assert_eq!("csv".parse::<Format>(), Ok(Format::Csv));
        assert!(
            "pdf"
                .parse::<Format>()
                .unwrap_err()
                .contains("html, csv or json")
        );
    }
}
