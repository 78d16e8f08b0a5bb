//! Recurring duties of disclosure, and whether each was met (Art 17: 应当公开而未公开 — what
//! should have been disclosed and was not).
//!
//! Some disclosures are not decided case by case but owed: the yearly report on cadre selection
//! and appointment work (Art 7(4)) every year, the leadership team's composition (Art 6(2))
//! after every change. The operator lists them in `obligations.toml` in the channels directory;
//! this module reads that file (every problem at once, like the rest of the configuration),
//! works out each duty's periods and due dates with the working-day calendar, and finds in the
//! ledger the job that met each period, if any: an accepted release or notice of the duty's
//! category that reached someone, and was not retracted.
//!
//! A due date that falls on a rest day moves to the next working day, as every time limit in
//! PRC procedure does (期间届满的最后一日是法定休假日的，以休假日后的第一日为期间届满的日期).
//! A date in a year the calendar does not know is never guessed: that period says so, with the
//! calendar's own message, and the other periods are still worked out.

use std::path::{Path, PathBuf};

use chrono::{Datelike, Duration, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::calendar::WorkCalendar;
use crate::job::Category;
use crate::ledger::{JobRecord, Ledger, LedgerError};

/// The file, in `[paths] channels_dir`.
pub const FILE: &str = "obligations.toml";

/// Days before a due date from which an open period is "due soon", unless a duty says otherwise.
pub const DEFAULT_REMIND_DAYS: u32 = 14;

#[derive(Debug, thiserror::Error)]
pub enum ObligationsError {
    #[error("{path}: cannot be read: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} has problems:\n  - {}", problems.join("\n  - "))]
    Invalid { path: String, problems: Vec<String> },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// One recurring duty.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Duty {
    pub id: String,
    pub title: String,
    /// The article the duty comes from, e.g. "Art 7(4)".
    pub article: String,
    /// The job category that meets it, e.g. "7.4".
    pub category: String,
    pub due: Due,
    pub remind_days: u32,
}

/// When a duty falls due.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "after", rename_all = "snake_case")]
pub enum Due {
    /// The work of each year from `first_year` on, disclosed by `month`-`day` of the next year.
    Year {
        month: u32,
        day: u32,
        first_year: i32,
    },
    /// Within `working_days` working days after each change an operator records.
    Change { working_days: u32 },
}

impl Due {
    /// In words, for listings.
    pub fn describe(&self) -> String {
        match self {
            Due::Year { month, day, .. } => {
                format!("each year's work by {month:02}-{day:02} of the following year")
            }
            Due::Change { working_days } => {
                format!("within {working_days} working days of each recorded change")
            }
        }
    }
}

/// The duties of a deployment.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Obligations {
    pub duties: Vec<Duty>,
    /// Where they were read from (`None`: no file, no duties).
    pub source: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    obligation: Vec<RawDuty>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDuty {
    id: Option<String>,
    title: Option<String>,
    article: Option<String>,
    category: Option<String>,
    due: Option<RawDue>,
    remind_days: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDue {
    every: Option<String>,
    by: Option<String>,
    first_year: Option<i32>,
    after: Option<String>,
    working_days: Option<u32>,
}

impl Obligations {
    /// `obligations.toml` in `channels_dir`; no file means no duties.
    pub fn load(channels_dir: &Path) -> Result<Obligations, ObligationsError> {
        let path = channels_dir.join(FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Obligations::default());
            }
            Err(source) => {
                return Err(ObligationsError::Io {
                    path: path.display().to_string(),
                    source,
                });
            }
        };
        let mut o = Obligations::parse(&text).map_err(|problems| ObligationsError::Invalid {
            path: path.display().to_string(),
            problems,
        })?;
        o.source = Some(path);
        Ok(o)
    }

    /// Parse and validate, reporting every problem at once.
    pub fn parse(text: &str) -> Result<Obligations, Vec<String>> {
        let raw: RawFile = toml::from_str(text).map_err(|e| vec![e.to_string().trim().into()])?;
        let mut problems = Vec::new();
        let mut duties = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for (i, d) in raw.obligation.into_iter().enumerate() {
            let name = format!(
                "obligation {} ({})",
                i + 1,
                d.id.as_deref().unwrap_or("no id")
            );
            let mut p = |m: String| problems.push(format!("{name}: {m}"));
            let mut required = |field: &str, v: Option<String>| match v {
                Some(v) if !v.trim().is_empty() => Some(v),
                _ => {
                    p(format!("`{field}` is required"));
                    None
                }
            };
            let id = required("id", d.id);
            let title = required("title", d.title);
            let article = required("article", d.article);
            let category = required("category", d.category);
            if let Some(id) = &id {
                if !crate::job::valid_id(id) {
                    p(format!("id {id:?} must be 1-64 of [A-Za-z0-9._-]"));
                } else if !seen.insert(id.clone()) {
                    p(format!("id {id:?} is used twice"));
                }
            }
            if let Some(a) = &article
                && !a.starts_with("Art ")
            {
                p(format!(
                    "article {a:?} must name the article it comes from, e.g. \"Art 7(4)\""
                ));
            }
            let category = category.and_then(|c| match Category::parse(&c) {
                Ok(cat) => Some(cat.to_string()),
                Err(e) => {
                    p(e);
                    None
                }
            });
            let due = match d.due {
                None => {
                    p("`due` is required: { every = \"year\", by = \"MM-DD\", first_year = YYYY } or { after = \"change\", working_days = N }".into());
                    None
                }
                Some(raw) => validate_due(raw, &mut p),
            };
            if let (Some(id), Some(title), Some(article), Some(category), Some(due)) =
                (id, title, article, category, due)
            {
                duties.push(Duty {
                    id,
                    title,
                    article,
                    category,
                    due,
                    remind_days: d.remind_days.unwrap_or(DEFAULT_REMIND_DAYS),
                });
            }
        }
        if problems.is_empty() {
            Ok(Obligations {
                duties,
                source: None,
            })
        } else {
            Err(problems)
        }
    }

    pub fn get(&self, id: &str) -> Option<&Duty> {
        self.duties.iter().find(|d| d.id == id)
    }
}

fn validate_due(raw: RawDue, p: &mut impl FnMut(String)) -> Option<Due> {
    match (raw.every.as_deref(), raw.after.as_deref()) {
        (Some(_), Some(_)) => {
            p("due: give either `every` (a yearly duty) or `after` (a duty after each change), not both".into());
            None
        }
        (None, None) => {
            p("due: give `every = \"year\"` or `after = \"change\"`".into());
            None
        }
        (Some(every), None) => {
            if raw.working_days.is_some() {
                p("due.working_days belongs to a duty `after = \"change\"`".into());
            }
            if every != "year" {
                p(format!("due.every = {every:?}: only \"year\" is known"));
            }
            let by = match raw.by.as_deref() {
                None => {
                    p("due.by is required for a yearly duty: the day of the following year, \"MM-DD\"".into());
                    None
                }
                // 2023 is not a leap year: a due date must exist every year.
                Some(by) => match NaiveDate::parse_from_str(&format!("2023-{by}"), "%Y-%m-%d") {
                    Ok(d) if by.len() == 5 => Some((d.month(), d.day())),
                    _ => {
                        p(format!(
                            "due.by = {by:?} is not a day that exists every year, written \"MM-DD\" (e.g. \"03-31\")"
                        ));
                        None
                    }
                },
            };
            let first_year = match raw.first_year {
                None => {
                    p("due.first_year is required for a yearly duty: the first year whose work is owed".into());
                    None
                }
                Some(y) if !(2000..=2100).contains(&y) => {
                    p(format!("due.first_year = {y} is not a plausible year"));
                    None
                }
                Some(y) => Some(y),
            };
            let ((month, day), first_year) = (by?, first_year?);
            (every == "year").then_some(Due::Year {
                month,
                day,
                first_year,
            })
        }
        (None, Some(after)) => {
            if raw.by.is_some() || raw.first_year.is_some() {
                p("due.by and due.first_year belong to a yearly duty (`every = \"year\"`)".into());
            }
            if after != "change" {
                p(format!("due.after = {after:?}: only \"change\" is known"));
            }
            let working_days = match raw.working_days {
                None => {
                    p("due.working_days is required for a duty after a change".into());
                    None
                }
                Some(0) => {
                    p("due.working_days must be 1 or more".into());
                    None
                }
                Some(n) => Some(n),
            };
            let working_days = working_days?;
            (after == "change").then_some(Due::Change { working_days })
        }
    }
}

/// Where one period of a duty stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Disclosed by its due date.
    Met,
    /// Disclosed, after its due date.
    MetLate,
    /// A job that would meet it is accepted and waits for its `publish_at`, before the due date.
    Scheduled,
    /// Not yet disclosed; due within the reminder days.
    DueSoon,
    /// Not yet disclosed; not yet due soon.
    Open,
    /// Not disclosed, and the due date has passed (Art 17: 应当公开而未公开).
    Overdue,
    /// The due date cannot be worked out (a year the calendar does not know).
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Met => "met",
            Status::MetLate => "met_late",
            Status::Scheduled => "scheduled",
            Status::DueSoon => "due_soon",
            Status::Open => "open",
            Status::Overdue => "overdue",
            Status::Unknown => "unknown",
        }
    }

    /// Needs someone's attention: overdue, or not determinable.
    pub fn is_alarm(self) -> bool {
        matches!(self, Status::Overdue | Status::Unknown)
    }
}

/// One period of a duty: a year's work, or one change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Period {
    /// "2025" (the year whose work is owed) or "change 2026-11-20".
    pub label: String,
    /// The first day a disclosure counts for this period.
    pub opens: NaiveDate,
    /// The due date (a working day), unless the calendar cannot say.
    pub due: Option<NaiveDate>,
    pub status: Status,
    /// The job that met it (or is scheduled to).
    pub job: Option<String>,
    /// The day that job reached someone (or is to be published).
    pub on: Option<NaiveDate>,
    /// Days past the due date: of the disclosure when late, of `as_of` when overdue.
    pub days_late: Option<i64>,
    /// The note recorded with the change, if any.
    pub note: Option<String>,
    /// A sentence saying all of it.
    pub message: String,
}

/// A duty and its periods as of a day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DutyState {
    #[serde(flatten)]
    pub duty: Duty,
    pub periods: Vec<Period>,
}

/// A job that counts for a duty: it reached someone on `out`, or waits to be published on `scheduled`.
struct Candidate {
    id: String,
    out: Option<NaiveDate>,
    scheduled: Option<NaiveDate>,
}

fn candidates(jobs: Vec<JobRecord>, as_of: NaiveDate) -> Vec<Candidate> {
    let china = crate::clock::china();
    jobs.into_iter()
        // A retracted disclosure is withdrawn: it meets nothing (its replacement must).
        .filter(|j| j.retracted_by.is_none())
        .filter_map(|j| {
            let out = j
                .first_out
                .map(|t| t.with_timezone(&china).date_naive())
                .filter(|d| *d <= as_of);
            let pending = j.outcomes.values().any(|s| s.contains_key("pending"));
            let scheduled = match (out, pending, &j.publish_at) {
                (None, true, Some(p)) => chrono::DateTime::parse_from_rfc3339(p)
                    .ok()
                    .map(|t| t.with_timezone(&china).date_naive()),
                _ => None,
            };
            (out.is_some() || scheduled.is_some()).then_some(Candidate {
                id: j.id,
                out,
                scheduled,
            })
        })
        .collect()
}

/// Every duty's periods as of `as_of` (a day, China Standard Time): what the ledger shows
/// happened by the end of that day.
pub fn evaluate(
    obligations: &Obligations,
    ledger: &dyn Ledger,
    calendar: &WorkCalendar,
    as_of: NaiveDate,
) -> Result<Vec<DutyState>, ObligationsError> {
    let mut out = Vec::new();
    for duty in &obligations.duties {
        let jobs = candidates(ledger.jobs_in_category(&duty.category)?, as_of);
        let mut periods = Vec::new();
        match duty.due {
            Due::Year {
                month,
                day,
                first_year,
            } => {
                // A year's period opens when the year is over; the first year still running is
                // not listed yet.
                for year in first_year..as_of.year() {
                    let opens = ymd(year + 1, 1, 1);
                    let closes = ymd(year + 2, 1, 1);
                    let due = NaiveDate::from_ymd_opt(year + 1, month, day)
                        .ok_or_else(|| {
                            format!("{month:02}-{day:02} does not exist in {}", year + 1)
                        })
                        .and_then(|d| calendar.add_working_days(d, 1).map_err(|e| e.to_string()));
                    periods.push(judge(
                        year.to_string(),
                        opens,
                        Some(closes),
                        due,
                        None,
                        &jobs,
                        as_of,
                        duty.remind_days,
                    ));
                }
            }
            Due::Change { working_days } => {
                for change in ledger.changes(&duty.id)? {
                    if change.on > as_of {
                        continue;
                    }
                    let due = calendar
                        .add_working_days(change.on + Duration::days(1), working_days)
                        .map_err(|e| e.to_string());
                    let note = (!change.note.is_empty()).then(|| change.note.clone());
                    periods.push(judge(
                        format!("change {}", change.on),
                        change.on,
                        None,
                        due,
                        note,
                        &jobs,
                        as_of,
                        duty.remind_days,
                    ));
                }
            }
        }
        out.push(DutyState {
            duty: duty.clone(),
            periods,
        });
    }
    Ok(out)
}

fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or(NaiveDate::MIN)
}

/// Where one period stands as of `as_of`: the earliest disclosure in `[opens, closes)` meets it.
#[allow(clippy::too_many_arguments)]
fn judge(
    label: String,
    opens: NaiveDate,
    closes: Option<NaiveDate>,
    due: Result<NaiveDate, String>,
    note: Option<String>,
    jobs: &[Candidate],
    as_of: NaiveDate,
    remind_days: u32,
) -> Period {
    let inside = |d: NaiveDate| d >= opens && closes.is_none_or(|c| d < c);
    let met = jobs
        .iter()
        .filter_map(|j| j.out.filter(|d| inside(*d)).map(|d| (d, j)))
        .min_by_key(|(d, j)| (*d, j.id.clone()));
    let scheduled = jobs
        .iter()
        .filter_map(|j| j.scheduled.filter(|d| inside(*d)).map(|d| (d, j)))
        .min_by_key(|(d, j)| (*d, j.id.clone()));
    let mut p = Period {
        label,
        opens,
        due: due.as_ref().ok().copied(),
        status: Status::Open,
        job: None,
        on: None,
        days_late: None,
        note,
        message: String::new(),
    };
    let due = match due {
        Ok(d) => d,
        Err(e) => {
            p.status = Status::Unknown;
            p.message = match met {
                Some((on, j)) => format!(
                    "disclosed by {} on {on}, but whether on time cannot be told: {e}",
                    j.id
                ),
                None => format!("the due date cannot be worked out: {e}"),
            };
            if let Some((on, j)) = met {
                p.job = Some(j.id.clone());
                p.on = Some(on);
            }
            return p;
        }
    };
    if let Some((on, j)) = met {
        p.job = Some(j.id.clone());
        p.on = Some(on);
        if on <= due {
            p.status = Status::Met;
            p.message = format!("met by {} on {on} (due {due})", j.id);
        } else {
            let late = (on - due).num_days();
            p.status = Status::MetLate;
            p.days_late = Some(late);
            p.message = format!(
                "met late by {} on {on}, {late} day{} after the due date {due}",
                j.id,
                plural(late)
            );
        }
        return p;
    }
    if as_of > due {
        let late = (as_of - due).num_days();
        p.status = Status::Overdue;
        p.days_late = Some(late);
        p.message = format!(
            "OVERDUE: due {due}, not disclosed {late} day{} later",
            plural(late)
        );
        if let Some((on, j)) = scheduled {
            p.job = Some(j.id.clone());
            p.on = Some(on);
            p.message
                .push_str(&format!(" ({} is scheduled for {on})", j.id));
        }
        return p;
    }
    if let Some((on, j)) = scheduled {
        p.status = Status::Scheduled;
        p.job = Some(j.id.clone());
        p.on = Some(on);
        p.message = format!("scheduled: {} goes out on {on} (due {due})", j.id);
        return p;
    }
    let left = (due - as_of).num_days();
    if left <= i64::from(remind_days) {
        p.status = Status::DueSoon;
        p.message = format!("due soon: by {due}, {left} day{} left", plural(left));
    } else {
        p.message = format!("open: due {due}");
    }
    p
}

fn plural(n: i64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../channels/obligations.toml");

    #[test]
    fn the_shipped_file_is_valid_and_has_a_yearly_and_a_change_duty() {
        let o = Obligations::parse(SHIPPED).unwrap();
        let yearly = o.get("cadre-selection-yearly").unwrap();
        assert_eq!(
            (yearly.category.as_str(), yearly.article.as_str()),
            ("7.4", "Art 7(4)")
        );
        assert!(matches!(
            yearly.due,
            Due::Year {
                month: 3,
                day: 31,
                ..
            }
        ));
        let change = o.get("leadership-composition").unwrap();
        assert_eq!(
            (change.category.as_str(), change.article.as_str()),
            ("6.2", "Art 6(2)")
        );
        assert!(matches!(change.due, Due::Change { .. }));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = r#"
[[obligation]]
id = "a"
title = "x"
article = "7(4)"
category = "7.9"
due = { every = "year", by = "02-29", first_year = 2025 }

[[obligation]]
id = "a"
title = ""
article = "Art 6(2)"
category = "6.2"
due = { after = "change", working_days = 0, by = "03-31" }

[[obligation]]
id = "b"
title = "t"
article = "Art 6(2)"
category = "6.2"
due = { every = "year", after = "change" }
"#;
        let problems = Obligations::parse(text).unwrap_err();
        let all = problems.join("\n");
        for needle in [
            "obligation 1 (a): article \"7(4)\"",
            "obligation 1 (a): category \"7.9\"",
            "obligation 1 (a): due.by = \"02-29\"",
            "obligation 2 (a): `title` is required",
            "obligation 2 (a): id \"a\" is used twice",
            "obligation 2 (a): due.working_days must be 1 or more",
            "obligation 2 (a): due.by and due.first_year belong to a yearly duty",
            "obligation 3 (b): due: give either `every`",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
        assert_eq!(problems.len(), 8, "{all}");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = Obligations::parse("[[obligation]]\nid = \"a\"\ntitel = \"x\"\n").unwrap_err();
        assert!(e[0].contains("titel"), "{e:?}");
    }

    fn cand(id: &str, out: Option<&str>, scheduled: Option<&str>) -> Candidate {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        Candidate {
            id: id.into(),
            out: out.map(d),
            scheduled: scheduled.map(d),
        }
    }

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn judged(jobs: &[Candidate], as_of: &str) -> Period {
        judge(
            "2025".into(),
            d("2026-01-01"),
            Some(d("2027-01-01")),
            Ok(d("2026-03-31")),
            None,
            jobs,
            d(as_of),
            14,
        )
    }

    #[test]
    fn a_period_is_met_late_overdue_scheduled_due_soon_or_open() {
        let p = judged(&[cand("j1", Some("2026-03-20"), None)], "2026-12-01");
        assert_eq!((p.status, p.job.as_deref()), (Status::Met, Some("j1")));
        let p = judged(&[cand("j1", Some("2026-04-02"), None)], "2026-12-01");
        assert_eq!((p.status, p.days_late), (Status::MetLate, Some(2)));
        // A disclosure outside the window (the year before) meets nothing.
        let p = judged(&[cand("j0", Some("2025-12-30"), None)], "2026-04-01");
        assert_eq!((p.status, p.days_late), (Status::Overdue, Some(1)));
        let p = judged(&[cand("j2", None, Some("2026-03-30"))], "2026-03-01");
        assert_eq!(p.status, Status::Scheduled);
        let p = judged(&[], "2026-03-17");
        assert_eq!(p.status, Status::DueSoon);
        let p = judged(&[], "2026-03-16");
        assert_eq!(p.status, Status::Open);
        // The due date itself is still in time.
        let p = judged(&[], "2026-03-31");
        assert_eq!(p.status, Status::DueSoon);
    }

    #[test]
    fn a_period_whose_due_date_is_unknowable_says_why() {
        let p = judge(
            "2026".into(),
            d("2027-01-01"),
            Some(d("2028-01-01")),
            Err("no working-day calendar for 2027".into()),
            None,
            &[],
            d("2027-02-01"),
            14,
        );
        assert_eq!(p.status, Status::Unknown);
        assert!(
            p.message.contains("no working-day calendar for 2027"),
            "{}",
            p.message
        );
    }
}
