//! The recipient directory: named groups of people (SPEC §2 Audience) imported from CSV.
//!
//! Columns are found by header name (`id`, `name` required; `phone`, `email`, `wechat_openid`,
//! `wecom_userid`, `postcode`, `address`, `opted_out` optional), so an export from any office
//! system works whatever its column order. Rows stream from the file into one ledger transaction:
//! a million-row import never holds the file in memory, and a re-import replaces the group
//! atomically (readers see the old group or the new one, never half of each).

use std::io::Read;

use chrono::{DateTime, FixedOffset};

use crate::ledger::{Ledger, LedgerError, Member};
use crate::policy::GroupKind;

/// At most this many problems are listed one by one; the rest are counted.
const MAX_LISTED_PROBLEMS: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("group name {0:?} must be 1–64 characters of letters, digits, '.', '_', '-' or ':'")]
    BadGroupName(String),
    #[error("group {group:?} starts with \"unit:\" and so is a unit group, not {kind}")]
    KindConflict { group: String, kind: &'static str },
    #[error("the CSV has no {0:?} column (columns are found by header name; required: id, name)")]
    MissingColumn(&'static str),
    #[error("the CSV header cannot be read: {0}")]
    Header(String),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// A row that was imported with a field dropped, or not imported at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: u64,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub imported: u64,
    /// Rows left out (no id or name).
    pub rejected: u64,
    /// Problems, at most [`MAX_LISTED_PROBLEMS`] of them; `problem_count` counts them all.
    pub problems: Vec<Problem>,
    pub problem_count: u64,
}

impl ImportReport {
    fn problem(&mut self, line: u64, message: String) {
        self.problem_count += 1;
        if self.problems.len() < MAX_LISTED_PROBLEMS {
            self.problems.push(Problem { line, message });
        }
    }
}

/// The kind a group name implies: `unit:<code>` is always a unit group.
pub fn resolve_kind(group: &str, kind: GroupKind) -> Result<GroupKind, DirectoryError> {
    let valid = (1..=64).contains(&group.len())
        && group
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'));
    if !valid {
        return Err(DirectoryError::BadGroupName(group.to_string()));
    }
    if group.starts_with("unit:") && kind != GroupKind::Unit {
        return Err(DirectoryError::KindConflict {
            group: group.to_string(),
            kind: kind.as_str(),
        });
    }
    Ok(kind)
}

struct Columns {
    id: usize,
    name: usize,
    phone: Option<usize>,
    email: Option<usize>,
    wechat_openid: Option<usize>,
    wecom_userid: Option<usize>,
    postcode: Option<usize>,
    address: Option<usize>,
    opted_out: Option<usize>,
}

impl Columns {
    fn from_header(header: &csv::StringRecord) -> Result<Columns, DirectoryError> {
        let find = |want: &str| {
            header.iter().position(|h| {
                h.trim_start_matches('\u{feff}')
                    .trim()
                    .eq_ignore_ascii_case(want)
            })
        };
        Ok(Columns {
            id: find("id").ok_or(DirectoryError::MissingColumn("id"))?,
            name: find("name").ok_or(DirectoryError::MissingColumn("name"))?,
            phone: find("phone"),
            email: find("email"),
            wechat_openid: find("wechat_openid"),
            wecom_userid: find("wecom_userid"),
            postcode: find("postcode"),
            address: find("address"),
            opted_out: find("opted_out"),
        })
    }
}

fn field(rec: &csv::StringRecord, col: Option<usize>) -> Option<String> {
    let v = rec.get(col?)?.trim();
    (!v.is_empty()).then(|| v.to_string())
}

fn truthy(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "" | "0" | "false" | "no" | "n" | "否" => Some(false),
        "1" | "true" | "yes" | "y" | "是" => Some(true),
        _ => None,
    }
}

/// Turn one CSV row into a member, reporting what had to be dropped. `None`: row rejected.
fn member(
    rec: &csv::StringRecord,
    cols: &Columns,
    line: u64,
    report: &mut ImportReport,
) -> Option<Member> {
    let id = field(rec, Some(cols.id));
    let name = field(rec, Some(cols.name));
    let (Some(id), Some(name)) = (id, name) else {
        report.rejected += 1;
        report.problem(line, "row left out: id and name are required".into());
        return None;
    };
    let mut m = Member {
        id,
        name,
        ..Member::default()
    };
    if let Some(p) = field(rec, cols.phone) {
        match crate::phone::normalize(&p) {
            Ok(e164) => m.phone = Some(e164),
            Err(e) => report.problem(line, format!("phone dropped: {e}")),
        }
    }
    if let Some(e) = field(rec, cols.email) {
        if crate::job::plausible_email(&e) {
            m.email = Some(e);
        } else {
            report.problem(line, "email dropped: not an e-mail address".into());
        }
    }
    m.wechat_openid = field(rec, cols.wechat_openid);
    m.wecom_userid = field(rec, cols.wecom_userid);
    if let Some(pc) = field(rec, cols.postcode) {
        if pc.len() == 6 && pc.bytes().all(|b| b.is_ascii_digit()) {
            m.postcode = Some(pc);
        } else {
            report.problem(line, "postcode dropped: must be six digits".into());
        }
    }
    m.address = field(rec, cols.address);
    if let Some(v) = field(rec, cols.opted_out) {
        match truthy(&v) {
            Some(b) => m.opted_out = b,
            None => {
                // Unclear consent is treated as opted out: never send to someone who may have said no.
                m.opted_out = true;
                report.problem(
                    line,
                    format!("opted_out {v:?} is not yes/no; treated as opted out"),
                );
            }
        }
    }
    Some(m)
}

/// Import a CSV as group `group`, replacing what the group held.
pub fn import_csv(
    ledger: &dyn Ledger,
    group: &str,
    kind: GroupKind,
    input: impl Read,
    now: DateTime<FixedOffset>,
) -> Result<ImportReport, DirectoryError> {
    let kind = resolve_kind(group, kind)?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(std::io::BufReader::with_capacity(1 << 16, input));
    let cols = Columns::from_header(
        reader
            .headers()
            .map_err(|e| DirectoryError::Header(e.to_string()))?,
    )?;
    let mut report = ImportReport::default();
    let mut rec = csv::StringRecord::new();
    let imported = {
        let report = &mut report;
        let mut rows = std::iter::from_fn(|| {
            loop {
                match reader.read_record(&mut rec) {
                    Ok(false) => return None,
                    Ok(true) => {
                        let line = rec.position().map(|p| p.line()).unwrap_or(0);
                        if let Some(m) = member(&rec, &cols, line, report) {
                            return Some(Ok(m));
                        }
                    }
                    Err(e) => {
                        let line = e.position().map(|p| p.line()).unwrap_or(0);
                        let hint = if matches!(e.kind(), csv::ErrorKind::Utf8 { .. }) {
                            " (the file must be UTF-8; save a GBK export as UTF-8)"
                        } else {
                            ""
                        };
                        return Some(Err(format!(
                            "line {line}: the CSV cannot be read: {e}{hint}"
                        )));
                    }
                }
            }
        });
        // A file that breaks off mid-way is not half-imported: the group keeps its previous members.
        ledger.replace_group(group, kind, &mut rows, now)?
    };
    report.imported = imported;
    Ok(report)
}
