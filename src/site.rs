//! The static disclosure column (信息公开专栏) behind the `website` and `intranet` channels.
//!
//! The column is a directory a web server serves: one page per notice (`<id>.html`), the current
//! notices (`index.html`), the notices whose publicity period has closed (`archive.html`) and an
//! Atom feed (`feed.xml`). Its state is the manifest: one record per page, `<id>.json` in the
//! directory `<dir>.manifest` beside the column — not in it, as the manifest keeps what
//! corrections replaced and withdrawals took down, which must not stay reachable on the web
//! server. Every other file is derived from the manifest and can be rebuilt from it (`refresh`
//! does), so the column needs no database and survives a crash between any two writes. A change
//! rewrites only its page's record. (Earlier versions kept one `pages.json` for every page inside
//! the column, rewritten in full at every publication; it is taken over and removed when found.)
//!
//! Every file is written atomically (temporary file in the same directory, fsync, rename, fsync
//! of the directory), and a file whose content would not change is not rewritten, so publishing
//! the same page twice leaves the same files. Rendering depends only on the manifest, never on
//! the clock: `now` decides status changes (公示中 → 公示期满), which are recorded in the
//! manifest, and the timestamps shown come from the notices themselves.
//!
//! Corrections keep the URL (Guarantees: "the website shows the correction in place of the
//! original") and show the correction note; withdrawals replace the page with a short notice
//! and take it out of the index, the archive and the feed.
//!
//! One `Site` is the only writer of its directory; within a process its methods serialise on an
//! internal mutex.

use std::collections::{BTreeMap, btree_map};
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Datelike, FixedOffset, SecondsFormat};
use serde::{Deserialize, Serialize};

/// The manifest as earlier versions kept it, one file for every page; read and converted.
const LEGACY_MANIFEST: &str = "pages.json";
/// Appended to the column directory's name for the manifest's directory beside it.
const MANIFEST_SUFFIX: &str = ".manifest";
const INDEX: &str = "index.html";
const ARCHIVE: &str = "archive.html";
const FEED: &str = "feed.xml";
const MANIFEST_FORMAT: u32 = 1;
/// Characters of plain text in an Atom entry's summary.
const SUMMARY_CHARS: usize = 120;

/// One notice as the column publishes it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PageInput {
    /// Job id, `[A-Za-z0-9._-]{1,64}`; the page is `<id>.html`.
    pub id: String,
    pub title: String,
    /// Category, e.g. `"6.3"` (Art 6(3)).
    pub category: String,
    /// The article body rendered from the notice template, already HTML-escaped.
    pub body_html: String,
    pub published_at: DateTime<FixedOffset>,
    /// End of the publicity period (公示期), if the notice has one.
    pub expires_at: Option<DateTime<FixedOffset>>,
    /// The approval reference, e.g. 组干审〔2026〕12号.
    pub reference: String,
}

#[derive(Debug, Clone)]
pub struct SiteConfig {
    /// The output directory the web server serves.
    pub dir: PathBuf,
    /// Shown in every page header, e.g. "某县委组织部 干部工作信息公开".
    pub site_title: String,
    /// The public URL of `dir`, for the Atom feed, e.g. "https://zzb.example.gov.cn/gk/".
    pub base_url: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("corrupt site manifest {}: {message}", path.display())]
    CorruptManifest { path: PathBuf, message: String },
    #[error(
        "page id {id:?} is not usable as a file name: use 1-64 of [A-Za-z0-9._-], not starting with '.', and not index/archive/feed"
    )]
    InvalidId { id: String },
    #[error("no page {id:?} has been published")]
    UnknownPage { id: String },
    #[error("page {id:?} has been withdrawn; it can no longer be published or corrected")]
    Withdrawn { id: String },
    #[error("page {id:?} has been corrected; publish a further correction instead of the page")]
    Corrected { id: String },
    #[error("correction {correction:?} of page {id:?} was already applied with different content")]
    CorrectionConflict { id: String, correction: String },
}

/// Where a page stands. Corrections do not change the status: a corrected notice is still
/// published (or closed), at the same URL.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PageStatus {
    /// Listed in the index and the feed; its publicity period (if any) is running.
    Published,
    /// Its publicity period has closed: marked 公示期满, listed in the archive and the feed.
    Closed,
    /// Replaced by a withdrawal notice; listed nowhere.
    Withdrawn,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Correction {
    /// The id of the correction job.
    job: String,
    note: String,
    at: DateTime<FixedOffset>,
    /// The content the correction set, to recognise a replayed correction.
    page: PageInput,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Withdrawal {
    reason: String,
    at: DateTime<FixedOffset>,
}

/// One page in the manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Entry {
    status: PageStatus,
    /// What the page shows now (the latest correction, if any; its `id` is the page id).
    page: PageInput,
    /// The page as first published, kept when a correction replaced it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    original: Option<PageInput>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    corrections: Vec<Correction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    withdrawal: Option<Withdrawal>,
}

impl Entry {
    fn listed(&self) -> bool {
        self.status != PageStatus::Withdrawn
    }

    /// When the entry last changed in a way a reader should notice (Atom `updated`). Derived
    /// from the data, not the clock, so re-rendering gives the same feed.
    fn updated(&self) -> DateTime<FixedOffset> {
        let mut t = self.original.as_ref().unwrap_or(&self.page).published_at;
        if self.status == PageStatus::Closed
            && let Some(e) = self.page.expires_at
        {
            t = t.max(e);
        }
        for c in &self.corrections {
            t = t.max(c.at);
        }
        if let Some(w) = &self.withdrawal {
            t = t.max(w.at);
        }
        t
    }

    fn first_version(&self) -> PageInput {
        self.original.clone().unwrap_or_else(|| self.page.clone())
    }

    /// The date shown as 发布日期 and used for ordering: first publication, kept by corrections.
    fn first_published(&self) -> DateTime<FixedOffset> {
        self.original.as_ref().unwrap_or(&self.page).published_at
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    format: u32,
    pages: Vec<Entry>,
}

/// One page's record in the manifest (`manifest/<id>.json`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PageRecord {
    format: u32,
    entry: Entry,
}

/// The disclosure column in one directory.
pub struct Site {
    config: SiteConfig,
    /// The manifest's directory ([`records_dir`]).
    records: PathBuf,
    /// The manifest's entries by page id; replaced only after the manifest is durably written.
    state: Mutex<BTreeMap<String, Entry>>,
    /// Every derived file was rebuilt from the manifest since the site was opened, and no write
    /// has failed since: [`Site::refresh`] then touches only what changes.
    rebuilt: std::sync::atomic::AtomicBool,
}

impl Site {
    /// Opens the column in `config.dir`, creating the directory, and reads the manifest. A
    /// `pages.json` of an earlier version is taken over: its pages are written to `manifest/`
    /// (where a page has no record yet), then it is removed.
    pub fn open(mut config: SiteConfig) -> Result<Site, SiteError> {
        fs::create_dir_all(&config.dir).map_err(|e| io_err(&config.dir, e))?;
        let records = records_dir(&config.dir);
        fs::create_dir_all(&records).map_err(|e| io_err(&records, e))?;
        if !config.base_url.ends_with('/') {
            config.base_url.push('/');
        }
        let mut entries = read_records(&records)?;
        let legacy = config.dir.join(LEGACY_MANIFEST);
        match fs::read(&legacy) {
            Ok(bytes) => {
                for (id, entry) in parse_manifest(&legacy, &bytes)? {
                    if let btree_map::Entry::Vacant(slot) = entries.entry(id) {
                        write_record(&records, &entry)?;
                        slot.insert(entry);
                    }
                }
                fs::remove_file(&legacy).map_err(|e| io_err(&legacy, e))?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&legacy, e)),
        }
        Ok(Site {
            config,
            records,
            state: Mutex::new(entries),
            rebuilt: std::sync::atomic::AtomicBool::new(false),
        })
    }

    pub fn page_path(&self, id: &str) -> PathBuf {
        self.config.dir.join(format!("{id}.html"))
    }

    /// Writes (or overwrites) `<id>.html` and updates the manifest, index, archive and feed.
    /// Publishing the same page again changes nothing; publishing the original again after it
    /// was corrected or withdrawn (a replayed delivery) changes nothing either, while different
    /// content for a corrected or withdrawn page is refused.
    pub fn publish(
        &self,
        page: &PageInput,
        now: DateTime<FixedOffset>,
    ) -> Result<PathBuf, SiteError> {
        validate_id(&page.id)?;
        let mut state = self.lock();
        let mut next = state.clone();
        let existing = next.get(&page.id);
        let status = match existing {
            Some(e) if e.status == PageStatus::Withdrawn => {
                if same(&e.first_version(), page) {
                    return Ok(self.page_path(&page.id));
                }
                return Err(SiteError::Withdrawn {
                    id: page.id.clone(),
                });
            }
            Some(e) if !e.corrections.is_empty() => {
                if same(&e.first_version(), page) {
                    return Ok(self.page_path(&page.id));
                }
                return Err(SiteError::Corrected {
                    id: page.id.clone(),
                });
            }
            // The same page again stays as it is, even if `now` is earlier than the close.
            Some(e) if same(&e.page, page) => e.status,
            _ => status_at(page, now),
        };
        next.insert(
            page.id.clone(),
            Entry {
                status,
                page: page.clone(),
                original: None,
                corrections: Vec::new(),
                withdrawal: None,
            },
        );
        self.commit(&mut state, next, &[page.id.as_str()])?;
        Ok(self.page_path(&page.id))
    }

    /// Closes the pages whose publicity period ended by `now` (公示期满; they move from the
    /// index to the archive) and returns how many did. The first call after opening, and the
    /// first after a failed write, also rebuilds every derived file from the manifest, which
    /// repairs the column after a crash between writes; later calls touch only the pages that
    /// close. (The service calls this every few seconds: rebuilding every page each time made
    /// its work grow with the column, a thousand pages re-rendered and re-read every 5 s.)
    pub fn refresh(&self, now: DateTime<FixedOffset>) -> Result<usize, SiteError> {
        let mut state = self.lock();
        let closing: Vec<String> = state
            .iter()
            .filter(|(_, e)| {
                e.status == PageStatus::Published && status_at(&e.page, now) == PageStatus::Closed
            })
            .map(|(id, _)| id.clone())
            .collect();
        let rebuild = !self.rebuilt.load(Ordering::SeqCst);
        if closing.is_empty() && !rebuild {
            return Ok(0);
        }
        let mut next = state.clone();
        for id in &closing {
            if let Some(entry) = next.get_mut(id) {
                entry.status = PageStatus::Closed;
            }
        }
        let ids: Vec<String> = if rebuild {
            next.keys().cloned().collect()
        } else {
            closing.clone()
        };
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        self.commit(&mut state, next, &ids)?;
        if rebuild {
            self.rebuilt.store(true, Ordering::SeqCst);
        }
        Ok(closing.len())
    }

    /// Replaces page `original_id` with `corrected` (its `id` is the correction job's; the page
    /// keeps the original URL and first publication date) and shows `note` as a correction note.
    /// Applying the same correction again changes nothing.
    pub fn correct(
        &self,
        original_id: &str,
        corrected: &PageInput,
        note: &str,
        now: DateTime<FixedOffset>,
    ) -> Result<PathBuf, SiteError> {
        validate_id(original_id)?;
        let mut state = self.lock();
        let mut next = state.clone();
        let Some(entry) = next.get_mut(original_id) else {
            return Err(SiteError::UnknownPage {
                id: original_id.to_string(),
            });
        };
        if entry.status == PageStatus::Withdrawn {
            return Err(SiteError::Withdrawn {
                id: original_id.to_string(),
            });
        }
        if let Some(prior) = entry.corrections.iter().find(|c| c.job == corrected.id) {
            if same(&prior.page, corrected) && prior.note == note {
                return Ok(self.page_path(original_id));
            }
            return Err(SiteError::CorrectionConflict {
                id: original_id.to_string(),
                correction: corrected.id.clone(),
            });
        }
        if entry.original.is_none() {
            entry.original = Some(entry.page.clone());
        }
        entry.corrections.push(Correction {
            job: corrected.id.clone(),
            note: note.to_string(),
            at: now,
            page: corrected.clone(),
        });
        let mut page = corrected.clone();
        page.id = original_id.to_string();
        // A corrected publicity period is judged afresh; a closed one does not reopen by itself.
        entry.status = match (entry.status, status_at(&page, now)) {
            (PageStatus::Closed, _) if page.expires_at == entry.page.expires_at => {
                PageStatus::Closed
            }
            (_, s) => s,
        };
        entry.page = page;
        self.commit(&mut state, next, &[original_id])?;
        Ok(self.page_path(original_id))
    }

    /// Replaces page `id` with a short withdrawal notice and removes it from the index, the
    /// archive and the feed. Withdrawing again changes nothing (the first reason stands).
    pub fn withdraw(
        &self,
        id: &str,
        reason: &str,
        now: DateTime<FixedOffset>,
    ) -> Result<(), SiteError> {
        validate_id(id)?;
        let mut state = self.lock();
        let mut next = state.clone();
        let Some(entry) = next.get_mut(id) else {
            return Err(SiteError::UnknownPage { id: id.to_string() });
        };
        if entry.status == PageStatus::Withdrawn {
            return Ok(());
        }
        entry.status = PageStatus::Withdrawn;
        entry.withdrawal = Some(Withdrawal {
            reason: reason.to_string(),
            at: now,
        });
        self.commit(&mut state, next, &[id])
    }

    /// The status of page `id`, if it was ever published.
    pub fn status(&self, id: &str) -> Option<PageStatus> {
        self.lock().get(id).map(|e| e.status)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry>> {
        // State is replaced only after a successful manifest write, so a panic elsewhere
        // cannot leave it half-updated: a poisoned lock is safe to take over.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes the records of the pages `changed` in the manifest (the source of truth) first,
    /// then those pages and the listings derived from it; adopts `next` as the state once the
    /// records are durable.
    fn commit(
        &self,
        state: &mut BTreeMap<String, Entry>,
        next: BTreeMap<String, Entry>,
        changed: &[&str],
    ) -> Result<(), SiteError> {
        for id in changed {
            if let Some(entry) = next.get(*id) {
                write_record(&self.records, entry)?;
            }
        }
        *state = next;
        // The manifest holds the change; should a derived file fail to be written, the next
        // refresh rebuilds them all.
        let rebuilt = self.rebuilt.swap(false, Ordering::SeqCst);
        self.write_derived(state, changed)?;
        self.rebuilt.store(rebuilt, Ordering::SeqCst);
        Ok(())
    }

    fn write_derived(
        &self,
        state: &BTreeMap<String, Entry>,
        changed: &[&str],
    ) -> Result<(), SiteError> {
        for id in changed {
            if let Some(entry) = state.get(*id) {
                let html = render_page(&self.config, entry);
                write_atomic(&self.config.dir, &format!("{id}.html"), html.as_bytes())?;
            }
        }
        let entries = listed_newest_first(state);
        let current: Vec<&Entry> = entries
            .iter()
            .copied()
            .filter(|e| e.status == PageStatus::Published)
            .collect();
        let closed: Vec<&Entry> = entries
            .iter()
            .copied()
            .filter(|e| e.status == PageStatus::Closed)
            .collect();
        let index = render_listing(&self.config, Listing::Current, &current);
        write_atomic(&self.config.dir, INDEX, index.as_bytes())?;
        let archive = render_listing(&self.config, Listing::Archive, &closed);
        write_atomic(&self.config.dir, ARCHIVE, archive.as_bytes())?;
        let feed = render_feed(
            &self.config,
            state,
            &entries[..entries.len().min(FEED_ENTRIES)],
        );
        write_atomic(&self.config.dir, FEED, feed.as_bytes())?;
        Ok(())
    }
}

fn io_err(path: &Path, source: io::Error) -> SiteError {
    SiteError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Compares pages including the UTC offsets of their times (which `PartialEq` on `DateTime`
/// ignores, but which decide the dates shown).
fn same(a: &PageInput, b: &PageInput) -> bool {
    a == b
        && a.published_at.offset() == b.published_at.offset()
        && a.expires_at.map(|t| *t.offset()) == b.expires_at.map(|t| *t.offset())
}

fn status_at(page: &PageInput, now: DateTime<FixedOffset>) -> PageStatus {
    match page.expires_at {
        Some(end) if now >= end => PageStatus::Closed,
        _ => PageStatus::Published,
    }
}

fn validate_id(id: &str) -> Result<(), SiteError> {
    let ok = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && !id.starts_with('.')
        && !matches!(id, "index" | "archive" | "feed");
    if ok {
        Ok(())
    } else {
        Err(SiteError::InvalidId { id: id.to_string() })
    }
}

/// Where the manifest of the column in `dir` is kept: beside it, `<dir>.manifest/`.
pub fn records_dir(dir: &Path) -> PathBuf {
    match dir.file_name() {
        Some(name) => {
            let mut name = name.to_os_string();
            name.push(MANIFEST_SUFFIX);
            dir.with_file_name(name)
        }
        // A column at the root of the file system (never configured so): a hidden directory.
        None => dir.join(MANIFEST_SUFFIX),
    }
}

/// Writes one page's record, atomically (unchanged, it is not rewritten).
fn write_record(records: &Path, entry: &Entry) -> Result<(), SiteError> {
    let record = PageRecord {
        format: MANIFEST_FORMAT,
        entry: entry.clone(),
    };
    let mut json = serde_json::to_vec_pretty(&record).expect("a page record serialises");
    json.push(b'\n');
    write_atomic(records, &format!("{}.json", entry.page.id), &json)
}

/// Every page's record in `manifest/`; temporary files of an interrupted write are skipped.
fn read_records(records: &Path) -> Result<BTreeMap<String, Entry>, SiteError> {
    let mut entries = BTreeMap::new();
    for item in fs::read_dir(records).map_err(|e| io_err(records, e))? {
        let item = item.map_err(|e| io_err(records, e))?;
        let name = item.file_name().to_string_lossy().into_owned();
        let Some(id) = name
            .strip_suffix(".json")
            .filter(|_| !name.starts_with('.'))
        else {
            continue;
        };
        let path = item.path();
        let corrupt = |message: String| SiteError::CorruptManifest {
            path: path.clone(),
            message,
        };
        let bytes = fs::read(&path).map_err(|e| io_err(&path, e))?;
        let record: PageRecord =
            serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        if record.format != MANIFEST_FORMAT {
            return Err(corrupt(format!(
                "format {} is not the supported format {MANIFEST_FORMAT}",
                record.format
            )));
        }
        if record.entry.page.id != id || validate_id(id).is_err() {
            return Err(corrupt(format!(
                "the record of page {:?} is named {name:?}",
                record.entry.page.id
            )));
        }
        entries.insert(id.to_string(), record.entry);
    }
    Ok(entries)
}

fn parse_manifest(path: &Path, bytes: &[u8]) -> Result<BTreeMap<String, Entry>, SiteError> {
    let corrupt = |message: String| SiteError::CorruptManifest {
        path: path.to_path_buf(),
        message,
    };
    let manifest: Manifest = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
    if manifest.format != MANIFEST_FORMAT {
        return Err(corrupt(format!(
            "format {} is not the supported format {MANIFEST_FORMAT}",
            manifest.format
        )));
    }
    let mut entries = BTreeMap::new();
    for entry in manifest.pages {
        let id = entry.page.id.clone();
        if validate_id(&id).is_err() {
            return Err(corrupt(format!("invalid page id {id:?}")));
        }
        if entries.insert(id.clone(), entry).is_some() {
            return Err(corrupt(format!("page {id:?} appears twice")));
        }
    }
    Ok(entries)
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Replaces `dir/name` with `bytes` so that a reader (or a crash) sees the old file or the new
/// one, never a mix: temporary file in the same directory, fsync, rename, fsync of the directory.
/// An identical file is left alone.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), SiteError> {
    let target = dir.join(name);
    match fs::read(&target) {
        Ok(existing) if existing == bytes => return Ok(()),
        _ => {}
    }
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
    let result = (|| {
        let mut f = fs::File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
        f.write_all(bytes).map_err(|e| io_err(&tmp, e))?;
        f.sync_all().map_err(|e| io_err(&tmp, e))?;
        drop(f);
        fs::rename(&tmp, &target).map_err(|e| io_err(&target, e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        return result;
    }
    // Make the rename itself durable. Directories cannot be opened for sync on every platform.
    #[cfg(unix)]
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(dir, e))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Rendering: pure functions of the configuration and the manifest.

/// Entries the Atom feed carries: the newest. Readers poll it for what is new; the index and the
/// archive list every page. A feed of every page ever published grew by half a kilobyte a page
/// and was rewritten at each one (half a megabyte after 800 pages in the soak).
const FEED_ENTRIES: usize = 50;

fn listed_newest_first(state: &BTreeMap<String, Entry>) -> Vec<&Entry> {
    let mut entries: Vec<&Entry> = state.values().filter(|e| e.listed()).collect();
    entries.sort_by(|a, b| {
        b.first_published()
            .cmp(&a.first_published())
            .then_with(|| a.page.id.cmp(&b.page.id))
    });
    entries
}

/// Escapes text for HTML and XML content and attribute values, dropping the control characters
/// XML 1.0 forbids (which would make the feed unreadable).
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// 2026年12月1日, in the notice's own UTC offset.
fn zh_date(t: DateTime<FixedOffset>) -> String {
    format!("{}年{}月{}日", t.year(), t.month(), t.day())
}

fn zh_number(n: u32) -> String {
    const DIGITS: [&str; 10] = ["零", "一", "二", "三", "四", "五", "六", "七", "八", "九"];
    match n {
        0..=9 => DIGITS[n as usize].to_string(),
        10..=19 => format!(
            "十{}",
            if n == 10 {
                ""
            } else {
                DIGITS[(n - 10) as usize]
            }
        ),
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

/// "6.3" → "第六条第（三）项"; anything else is shown as given.
fn category_label(category: &str) -> String {
    let parsed = category
        .split_once('.')
        .and_then(|(a, i)| Some((a.parse::<u32>().ok()?, i.parse::<u32>().ok()?)));
    match parsed {
        Some((article, item)) if article > 0 && item > 0 => format!(
            "{category}（第{}条第（{}）项）",
            zh_number(article),
            zh_number(item)
        ),
        _ => category.to_string(),
    }
}

const CSS: &str = "\
body{margin:0;background:#f4f4f4;color:#222;font:16px/1.8 \"Noto Serif CJK SC\",\"Source Han Serif SC\",\"SimSun\",serif}\
.wrap{max-width:860px;margin:0 auto;background:#fff;min-height:100vh}\
header.site{background:#a40000;color:#fff;padding:14px 28px}\
header.site a{color:#fff;text-decoration:none;font-size:20px;font-weight:bold;letter-spacing:1px}\
main{padding:20px 28px 32px}\
h1{font-size:24px;text-align:center;line-height:1.5;margin:12px 0}\
.meta{text-align:center;color:#555;font-size:14px;border-bottom:1px solid #ddd;padding-bottom:10px;margin-bottom:18px}\
.meta span{margin:0 .8em;white-space:nowrap}\
.period{border:1px solid #c8a46a;background:#fffaf0;padding:8px 14px;margin:0 0 18px}\
.label{display:inline-block;padding:0 8px;margin-left:8px;border-radius:3px;font-size:13px;line-height:1.7;white-space:nowrap}\
.open{background:#e6f4ea;color:#1e6b35;border:1px solid #1e6b35}\
.closed{background:#eee;color:#555;border:1px solid #777}\
.correction{border-left:4px solid #a40000;background:#fdf2f2;padding:8px 14px;margin:0 0 18px}\
.withdrawn{border:1px solid #777;background:#f6f6f6;padding:16px 20px;margin:24px 0}\
.body p{text-indent:2em;margin:.6em 0}\
.body p.signature,.body p.date{text-align:right;text-indent:0;margin:.2em 2em 0 0}\
.body table{border-collapse:collapse;margin:.8em auto;min-width:70%}\
.body th,.body td{border:1px solid #999;padding:.35em .8em;text-align:center}\
.body th{background:#f4efe6;font-weight:600}\
ul.list{list-style:none;padding:0;margin:0}\
ul.list li{display:flex;gap:1em;align-items:baseline;border-bottom:1px dashed #ddd;padding:8px 0}\
ul.list li a{flex:1;color:#222;text-decoration:none}\
ul.list li a:hover{color:#a40000;text-decoration:underline}\
ul.list .date{color:#777;font-size:14px;white-space:nowrap}\
nav.tabs{margin-bottom:14px}\
nav.tabs a{margin-right:1.5em;color:#a40000}\
footer{border-top:1px solid #ddd;color:#777;font-size:13px;padding:12px 28px;text-align:center}\
footer a{color:#555;margin:0 .8em}\
@media print{body{background:#fff}.wrap{max-width:none}header.site{background:none;color:#000;border-bottom:2px solid #a40000}\
header.site a{color:#000}nav.tabs,footer a{display:none}a{color:#000;text-decoration:none}}";

fn html_document(config: &SiteConfig, title: &str, main: &str) -> String {
    let site = esc(&config.site_title);
    let feed = esc(&format!("{}{FEED}", config.base_url));
    format!(
        "<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<title>{title}</title>\n\
<link rel=\"alternate\" type=\"application/atom+xml\" title=\"{site}\" href=\"{feed}\">\n\
<style>{CSS}</style>\n</head>\n<body>\n<div class=\"wrap\">\n\
<header class=\"site\"><a href=\"index.html\">{site}</a></header>\n\
<main>\n{main}</main>\n\
<footer>{site}<br><a href=\"index.html\">当前公示</a><a href=\"archive.html\">往期信息</a><a href=\"feed.xml\">订阅（Atom）</a></footer>\n\
</div>\n</body>\n</html>\n"
    )
}

fn status_label(entry: &Entry) -> &'static str {
    match (entry.status, entry.page.expires_at) {
        (PageStatus::Closed, _) => "<span class=\"label closed\">公示期满</span>",
        (PageStatus::Published, Some(_)) => "<span class=\"label open\">公示中</span>",
        _ => "",
    }
}

fn render_page(config: &SiteConfig, entry: &Entry) -> String {
    let page = &entry.page;
    if let Some(w) = &entry.withdrawal {
        // The withdrawn notice's title and body are not repeated: what was withdrawn may be
        // exactly what must no longer be shown.
        let main = format!(
            "<h1>本条信息已撤回</h1>\n<div class=\"withdrawn\">\n\
<p>本栏目于{published}发布的信息（{reference}）已于{withdrawn}撤回。</p>\n\
<p>撤回原因：{reason}</p>\n</div>\n\
<p><a href=\"index.html\">返回信息公开专栏</a></p>\n",
            published = zh_date(entry.first_published()),
            reference = esc(&page.reference),
            withdrawn = zh_date(w.at),
            reason = esc(&w.reason),
        );
        let title = format!("本条信息已撤回 - {}", config.site_title);
        return html_document(config, &esc(&title), &main);
    }

    let mut main = String::new();
    let _ = write!(main, "<article>\n<h1>{}</h1>\n", esc(&page.title));
    let _ = writeln!(
        main,
        "<p class=\"meta\"><span>发布日期：{}</span><span>文号：{}</span><span>类别：{}</span></p>",
        zh_date(entry.first_published()),
        esc(&page.reference),
        esc(&category_label(&page.category)),
    );
    for c in &entry.corrections {
        let _ = writeln!(
            main,
            "<div class=\"correction\"><strong>更正说明</strong>（{}）：{}</div>",
            zh_date(c.at),
            esc(&c.note)
        );
    }
    if let Some(end) = page.expires_at {
        let _ = writeln!(
            main,
            "<div class=\"period\">公示期：{}至{}{}</div>",
            zh_date(entry.first_published()),
            zh_date(end),
            status_label(entry)
        );
    }
    let _ = write!(
        main,
        "<div class=\"body\">\n{}\n</div>\n</article>\n",
        page.body_html
    );
    let title = format!("{} - {}", page.title, config.site_title);
    html_document(config, &esc(&title), &main)
}

#[derive(Clone, Copy)]
enum Listing {
    Current,
    Archive,
}

fn render_listing(config: &SiteConfig, which: Listing, entries: &[&Entry]) -> String {
    let (heading, tabs) = match which {
        Listing::Current => (
            "当前公示",
            "<nav class=\"tabs\"><strong>当前公示</strong> <a href=\"archive.html\">往期信息</a></nav>",
        ),
        Listing::Archive => (
            "往期信息",
            "<nav class=\"tabs\"><a href=\"index.html\">当前公示</a> <strong>往期信息</strong></nav>",
        ),
    };
    let mut main = format!("{tabs}\n<h1>{heading}</h1>\n");
    if entries.is_empty() {
        main.push_str("<p>暂无信息。</p>\n");
    } else {
        main.push_str("<ul class=\"list\">\n");
        for e in entries {
            let correction = if e.corrections.is_empty() {
                ""
            } else {
                "<span class=\"label closed\">已更正</span>"
            };
            let _ = writeln!(
                main,
                "<li><a href=\"{href}\">{title}</a>{correction}{label}<span class=\"date\">{date}</span></li>",
                href = esc(&format!("{}.html", e.page.id)),
                title = esc(&e.page.title),
                label = status_label(e),
                date = zh_date(e.first_published()),
            );
        }
        main.push_str("</ul>\n");
    }
    let title = format!("{heading} - {}", config.site_title);
    html_document(config, &esc(&title), &main)
}

fn rfc3339(t: DateTime<FixedOffset>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The Atom feed (RFC 4287) of every listed page, newest first. Withdrawn pages leave it.
fn render_feed(config: &SiteConfig, all: &BTreeMap<String, Entry>, listed: &[&Entry]) -> String {
    let base = &config.base_url;
    // The feed changed when any entry did, including one that left it by withdrawal.
    let updated = all.values().map(Entry::updated).max();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    out.push_str("<feed xmlns=\"http://www.w3.org/2005/Atom\" xml:lang=\"zh-CN\">\n");
    let _ = writeln!(out, "  <id>{}</id>", esc(base));
    let _ = writeln!(out, "  <title>{}</title>", esc(&config.site_title));
    if let Some(t) = updated {
        let _ = writeln!(out, "  <updated>{}</updated>", rfc3339(t));
    }
    let _ = writeln!(
        out,
        "  <link rel=\"self\" type=\"application/atom+xml\" href=\"{}\"/>",
        esc(&format!("{base}{FEED}"))
    );
    let _ = writeln!(
        out,
        "  <link rel=\"alternate\" type=\"text/html\" href=\"{}\"/>",
        esc(base)
    );
    let _ = writeln!(
        out,
        "  <author><name>{}</name></author>",
        esc(&config.site_title)
    );
    for e in listed {
        let url = format!("{base}{}.html", e.page.id);
        let mut summary = String::new();
        if let Some(c) = e.corrections.last() {
            let _ = write!(summary, "【更正】{} ", c.note);
        }
        if e.status == PageStatus::Closed {
            summary.push_str("【公示期满】");
        }
        summary.push_str(&plain_text_start(&e.page.body_html, SUMMARY_CHARS));
        out.push_str("  <entry>\n");
        let _ = writeln!(out, "    <id>{}</id>", esc(&url));
        let _ = writeln!(out, "    <title>{}</title>", esc(&e.page.title));
        let _ = writeln!(
            out,
            "    <published>{}</published>",
            rfc3339(e.first_published())
        );
        let _ = writeln!(out, "    <updated>{}</updated>", rfc3339(e.updated()));
        let _ = writeln!(
            out,
            "    <link rel=\"alternate\" type=\"text/html\" href=\"{}\"/>",
            esc(&url)
        );
        let _ = writeln!(out, "    <category term=\"{}\"/>", esc(&e.page.category));
        let _ = writeln!(out, "    <summary>{}</summary>", esc(summary.trim()));
        out.push_str("  </entry>\n");
    }
    out.push_str("</feed>\n");
    out
}

/// The first `max` characters of the text of an HTML fragment: tags dropped (block ends become
/// spaces), the common entities decoded, whitespace collapsed; "…" when cut.
fn plain_text_start(html: &str, max: usize) -> String {
    let mut text = String::new();
    let mut rest = html;
    while let Some(c) = rest.chars().next() {
        if c == '<' {
            match rest.find('>') {
                Some(end) => {
                    text.push(' ');
                    rest = &rest[end + 1..];
                }
                None => break,
            }
        } else if c == '&' {
            let (decoded, len) = decode_entity(rest);
            text.push_str(&decoded);
            rest = &rest[len..];
        } else {
            text.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    let collapsed = words.join(" ");
    let mut chars = collapsed.chars();
    let head: String = chars.by_ref().take(max).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}

/// Decodes the entity at the start of `s` (which starts with '&'); returns the text and the
/// bytes consumed. An unknown entity is kept literally.
fn decode_entity(s: &str) -> (String, usize) {
    let Some(end) = s[..s.len().min(12)].find(';') else {
        return ("&".to_string(), 1);
    };
    let name = &s[1..end];
    let decoded = match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        "nbsp" => Some(' '),
        _ => name
            .strip_prefix("#x")
            .or_else(|| name.strip_prefix("#X"))
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
            .and_then(char::from_u32),
    };
    match decoded {
        Some(c) => (c.to_string(), end + 1),
        None => ("&".to_string(), 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A unique directory under the system temp dir, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            static N: AtomicU64 = AtomicU64::new(0);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            let dir = std::env::temp_dir().join(format!(
                "disclose-site-{tag}-{}-{nanos}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
            let _ = fs::remove_dir_all(records_dir(&self.0));
        }
    }

    fn t(s: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(s).unwrap()
    }

    fn config(dir: &Path) -> SiteConfig {
        SiteConfig {
            dir: dir.to_path_buf(),
            site_title: "某县委组织部 干部工作信息公开".to_string(),
            base_url: "https://zzb.example.gov.cn/gk".to_string(),
        }
    }

    fn notice(id: &str) -> PageInput {
        PageInput {
            id: id.to_string(),
            title: "关于张三同志任职前公示的公告".to_string(),
            category: "6.3".to_string(),
            body_html: "<p>张三，男，1980年5月生，拟任县财政局局长。</p>\n<p>举报电话：0000-12380 &amp; 来信。</p>".to_string(),
            published_at: t("2026-12-01T09:00:00+08:00"),
            expires_at: Some(t("2026-12-08T18:00:00+08:00")),
            reference: "组干审〔2026〕12号".to_string(),
        }
    }

    fn read(dir: &Path, name: &str) -> String {
        fs::read_to_string(dir.join(name)).unwrap()
    }

    /// Every file under `dir`, by its path relative to `dir`.
    fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
        let mut files = BTreeMap::new();
        for e in fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            if e.file_type().unwrap().is_dir() {
                for (inner, bytes) in snapshot(&e.path()) {
                    files.insert(format!("{name}/{inner}"), bytes);
                }
            } else {
                files.insert(name, fs::read(e.path()).unwrap());
            }
        }
        files
    }

    /// The text between `<tag>` and `</tag>` for every occurrence.
    fn elements<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
        let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
        xml.split(open.as_str())
            .skip(1)
            .map(|s| &s[..s.find(close.as_str()).expect("closed element")])
            .collect()
    }

    #[test]
    fn publish_writes_page_index_archive_feed_and_manifest() {
        let tmp = TempDir::new("publish");
        let site = Site::open(config(&tmp.0)).unwrap();
        let path = site
            .publish(&notice("zzb-2026-0142"), t("2026-12-01T09:00:00+08:00"))
            .unwrap();
        assert_eq!(path, tmp.0.join("zzb-2026-0142.html"));
        assert_eq!(path, site.page_path("zzb-2026-0142"));

        let page = read(&tmp.0, "zzb-2026-0142.html");
        assert!(page.contains("<meta charset=\"utf-8\">"));
        assert!(page.contains("<html lang=\"zh-CN\">"));
        assert!(page.contains("某县委组织部 干部工作信息公开"));
        assert!(page.contains("<h1>关于张三同志任职前公示的公告</h1>"));
        assert!(page.contains("发布日期：2026年12月1日"));
        assert!(page.contains("组干审〔2026〕12号"));
        assert!(page.contains("6.3（第六条第（三）项）"));
        assert!(page.contains("公示期：2026年12月1日至2026年12月8日"));
        assert!(page.contains("公示中"));
        assert!(!page.contains("公示期满"));
        // The body is inserted as rendered, not escaped a second time.
        assert!(page.contains("<p>举报电话：0000-12380 &amp; 来信。</p>"));
        assert!(
            !page.contains("http://") && !page.contains("<script"),
            "no external assets"
        );

        let index = read(&tmp.0, "index.html");
        assert!(index.contains("href=\"zzb-2026-0142.html\""));
        assert!(index.contains("公示中"));
        assert!(index.contains("2026年12月1日"));
        assert!(!read(&tmp.0, "archive.html").contains("zzb-2026-0142"));

        let feed = read(&tmp.0, "feed.xml");
        assert_eq!(elements(&feed, "entry").len(), 1);
        assert!(feed.contains("<id>https://zzb.example.gov.cn/gk/zzb-2026-0142.html</id>"));
        assert!(feed.contains("<updated>2026-12-01T09:00:00+08:00</updated>"));

        let record: serde_json::Value =
            serde_json::from_str(&read(&records_dir(&tmp.0), "zzb-2026-0142.json")).unwrap();
        assert_eq!(record["entry"]["status"], "published");
        assert_eq!(record["entry"]["page"]["id"], "zzb-2026-0142");
    }

    #[test]
    fn titles_and_meta_are_escaped_in_html_and_xml() {
        let tmp = TempDir::new("escape");
        let site = Site::open(config(&tmp.0)).unwrap();
        let mut page = notice("evil");
        page.title = "<script>alert(\"x\")</script> & 'q'".to_string();
        page.reference = "组干审<b>".to_string();
        site.publish(&page, t("2026-12-01T09:00:00+08:00")).unwrap();
        let escaped = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;q&#39;";
        for name in ["evil.html", "index.html", "feed.xml"] {
            let text = read(&tmp.0, name);
            assert!(!text.contains("<script>"), "{name} carries a raw <script>");
            assert!(text.contains(escaped), "{name} lacks the escaped title");
        }
        assert!(read(&tmp.0, "evil.html").contains("组干审&lt;b&gt;"));
    }

    #[test]
    fn publishing_twice_leaves_the_same_files() {
        let tmp = TempDir::new("idempotent");
        let site = Site::open(config(&tmp.0)).unwrap();
        site.publish(&notice("a"), t("2026-12-01T09:00:00+08:00"))
            .unwrap();
        let first = snapshot(&tmp.0);
        // A later `now` (still within the period) must not show in any file.
        site.publish(&notice("a"), t("2026-12-02T10:00:00+08:00"))
            .unwrap();
        assert_eq!(first, snapshot(&tmp.0));
        // Nor does reopening the site and publishing again.
        let reopened = Site::open(config(&tmp.0)).unwrap();
        reopened
            .publish(&notice("a"), t("2026-12-03T10:00:00+08:00"))
            .unwrap();
        assert_eq!(first, snapshot(&tmp.0));
    }

    /// Page `a` with a publicity period that closes 2026-12-08 18:00, page `b` without one.
    fn publish_closing_a_and_open_ended_b(site: &Site) {
        site.publish(&notice("a"), t("2026-12-01T09:00:00+08:00"))
            .unwrap();
        let mut open_ended = notice("b");
        open_ended.expires_at = None;
        site.publish(&open_ended, t("2026-12-01T09:00:00+08:00"))
            .unwrap();
    }

    #[test]
    fn refresh_after_expiry_closes_the_page_and_moves_it_to_the_archive() {
        let tmp = TempDir::new("refresh");
        let site = Site::open(config(&tmp.0)).unwrap();
        publish_closing_a_and_open_ended_b(&site);

        assert_eq!(site.refresh(t("2026-12-08T17:59:59+08:00")).unwrap(), 0);
        assert!(!read(&tmp.0, "a.html").contains("公示期满"));

        assert_eq!(site.refresh(t("2026-12-08T18:00:00+08:00")).unwrap(), 1);
        assert_eq!(site.status("a"), Some(PageStatus::Closed));
        let page = read(&tmp.0, "a.html");
        assert!(page.contains("公示期满"));
        assert!(!page.contains("公示中"));
        let index = read(&tmp.0, "index.html");
        assert!(!index.contains("a.html"));
        assert!(
            index.contains("b.html"),
            "a page without a period stays current"
        );
        let archive = read(&tmp.0, "archive.html");
        assert!(archive.contains("href=\"a.html\""));
        assert!(archive.contains("公示期满"));
        // Closed pages stay in the feed, updated at the close.
        let feed = read(&tmp.0, "feed.xml");
        assert_eq!(elements(&feed, "entry").len(), 2);
        assert!(feed.contains("<updated>2026-12-08T18:00:00+08:00</updated>"));

        // Nothing further to close; the state survives reopening.
        assert_eq!(site.refresh(t("2026-12-09T00:00:00+08:00")).unwrap(), 0);
        let reopened = Site::open(config(&tmp.0)).unwrap();
        assert_eq!(reopened.status("a"), Some(PageStatus::Closed));
        assert_eq!(reopened.refresh(t("2026-12-10T00:00:00+08:00")).unwrap(), 0);
    }

    #[test]
    fn the_first_refresh_repairs_the_column_and_later_ones_touch_only_what_closes() {
        let tmp = TempDir::new("repair");
        let site = Site::open(config(&tmp.0)).unwrap();
        publish_closing_a_and_open_ended_b(&site);
        let whole = snapshot(&tmp.0);
        // A crash between writes left a page and the index missing.
        fs::remove_file(tmp.0.join("b.html")).unwrap();
        fs::remove_file(tmp.0.join("index.html")).unwrap();
        let reopened = Site::open(config(&tmp.0)).unwrap();
        assert_eq!(reopened.refresh(t("2026-12-02T09:00:00+08:00")).unwrap(), 0);
        assert_eq!(
            snapshot(&tmp.0),
            whole,
            "the first refresh rebuilds every derived file"
        );
        // Later refreshes with nothing to close leave the directory alone (the service runs
        // one every few seconds) …
        fs::remove_file(tmp.0.join("b.html")).unwrap();
        assert_eq!(reopened.refresh(t("2026-12-03T09:00:00+08:00")).unwrap(), 0);
        assert!(!tmp.0.join("b.html").exists());
        // … and one that closes a page rewrites that page and the listings, not the others.
        assert_eq!(reopened.refresh(t("2026-12-08T18:00:00+08:00")).unwrap(), 1);
        assert!(read(&tmp.0, "a.html").contains("公示期满"));
        assert!(read(&tmp.0, "archive.html").contains("href=\"a.html\""));
        assert!(!tmp.0.join("b.html").exists());
        // A column that lost a file while running is repaired by the next start.
        let restarted = Site::open(config(&tmp.0)).unwrap();
        restarted.refresh(t("2026-12-09T09:00:00+08:00")).unwrap();
        assert!(tmp.0.join("b.html").exists());
    }

    #[test]
    fn publishing_after_expiry_goes_straight_to_the_archive() {
        let tmp = TempDir::new("late");
        let site = Site::open(config(&tmp.0)).unwrap();
        site.publish(&notice("a"), t("2026-12-09T09:00:00+08:00"))
            .unwrap();
        assert_eq!(site.status("a"), Some(PageStatus::Closed));
        assert!(read(&tmp.0, "archive.html").contains("a.html"));
        assert!(!read(&tmp.0, "index.html").contains("a.html"));
    }

    #[test]
    fn index_lists_newest_first() {
        let tmp = TempDir::new("order");
        let site = Site::open(config(&tmp.0)).unwrap();
        let mut older = notice("older");
        older.published_at = t("2026-11-20T09:00:00+08:00");
        older.expires_at = Some(t("2026-12-20T09:00:00+08:00"));
        site.publish(&notice("newer"), t("2026-12-01T09:00:00+08:00"))
            .unwrap();
        site.publish(&older, t("2026-12-01T09:00:00+08:00"))
            .unwrap();
        let index = read(&tmp.0, "index.html");
        assert!(index.find("newer.html").unwrap() < index.find("older.html").unwrap());
        let feed = read(&tmp.0, "feed.xml");
        assert!(feed.find("newer.html").unwrap() < feed.find("older.html").unwrap());
    }

    #[test]
    fn every_feed_entry_has_id_title_updated_link_and_summary() {
        let tmp = TempDir::new("feed");
        let site = Site::open(config(&tmp.0)).unwrap();
        for id in ["a", "b", "c"] {
            site.publish(&notice(id), t("2026-12-01T09:00:00+08:00"))
                .unwrap();
        }
        let feed = read(&tmp.0, "feed.xml");
        assert!(feed.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?>"));
        assert!(feed.contains("<feed xmlns=\"http://www.w3.org/2005/Atom\""));
        assert!(feed.trim_end().ends_with("</feed>"));
        let head = &feed[..feed.find("<entry>").unwrap()];
        assert!(head.contains("<id>https://zzb.example.gov.cn/gk/</id>"));
        assert!(head.contains("<title>某县委组织部 干部工作信息公开</title>"));
        assert!(head.contains("<updated>"));
        assert!(head.contains("href=\"https://zzb.example.gov.cn/gk/feed.xml\""));
        assert_eq!(feed.matches("<entry>").count(), 3);
        assert_eq!(feed.matches("</entry>").count(), 3);
        for entry in elements(&feed, "entry") {
            assert_eq!(elements(entry, "id").len(), 1);
            assert_eq!(elements(entry, "title").len(), 1);
            assert_eq!(elements(entry, "updated").len(), 1);
            assert!(entry.contains("<link rel=\"alternate\""));
            let summary = elements(entry, "summary")[0];
            // Plain text: tags gone, the body's &amp; still escaped exactly once.
            assert_eq!(
                summary,
                "张三，男，1980年5月生，拟任县财政局局长。 举报电话：0000-12380 &amp; 来信。"
            );
        }
    }

    /// The feed carries the newest 50 pages, newest first; the index still lists every one.
    #[test]
    fn the_feed_carries_the_newest_fifty_and_the_index_lists_all() {
        let tmp = TempDir::new("feed-cap");
        let site = Site::open(config(&tmp.0)).unwrap();
        for i in 0..60 {
            let mut page = notice(&format!("n{i:02}"));
            page.published_at = t("2026-12-01T09:00:00+08:00") + chrono::Duration::minutes(i);
            site.publish(&page, page.published_at).unwrap();
        }
        let feed = read(&tmp.0, "feed.xml");
        assert_eq!(feed.matches("<entry>").count(), 50);
        assert!(feed.find("n59.html").unwrap() < feed.find("n58.html").unwrap());
        assert!(feed.contains("n10.html") && !feed.contains("n09.html"));
        let index = read(&tmp.0, "index.html");
        assert!((0..60).all(|i| index.contains(&format!("n{i:02}.html"))));
    }

    #[test]
    fn atomic_writes_leave_no_temporary_files() {
        let tmp = TempDir::new("atomic");
        let site = Site::open(config(&tmp.0)).unwrap();
        site.publish(&notice("a"), t("2026-12-01T09:00:00+08:00"))
            .unwrap();
        site.refresh(t("2026-12-09T09:00:00+08:00")).unwrap();
        site.withdraw("a", "信息有误", t("2026-12-10T09:00:00+08:00"))
            .unwrap();
        let mut names: Vec<String> = snapshot(&tmp.0).into_keys().collect();
        names.sort();
        assert_eq!(names, ["a.html", "archive.html", "feed.xml", "index.html",]);
    }

    #[test]
    fn a_corrupt_manifest_is_an_error_naming_the_file() {
        let tmp = TempDir::new("corrupt");
        fs::create_dir_all(&tmp.0).unwrap();
        fs::write(tmp.0.join("pages.json"), b"{\"format\":1,\"pages\":[{").unwrap();
        let err = match Site::open(config(&tmp.0)) {
            Err(e) => e,
            Ok(_) => panic!("a truncated manifest was accepted"),
        };
        assert!(matches!(err, SiteError::CorruptManifest { .. }));
        assert!(err.to_string().contains("pages.json"), "{err}");

        fs::write(
            tmp.0.join("pages.json"),
            b"{\"format\":1,\"pages\":[],\"x\":1}",
        )
        .unwrap();
        assert!(matches!(
            Site::open(config(&tmp.0)),
            Err(SiteError::CorruptManifest { .. })
        ));

        // A page's record cut short names its own file.
        fs::remove_file(tmp.0.join("pages.json")).unwrap();
        fs::write(
            records_dir(&tmp.0).join("a.json"),
            b"{\"format\":1,\"entry\":{",
        )
        .unwrap();
        let err = match Site::open(config(&tmp.0)) {
            Err(e) => e,
            Ok(_) => panic!("a truncated page record was accepted"),
        };
        assert!(err.to_string().contains(".manifest/a.json"), "{err}");
    }

    /// A column written by an earlier version (one `pages.json` for every page) is taken over:
    /// the same pages, a record each, and the old file gone.
    #[test]
    fn a_whole_column_manifest_is_taken_over_page_by_page() {
        let tmp = TempDir::new("legacy");
        let site = Site::open(config(&tmp.0)).unwrap();
        site.publish(&notice("a"), t("2026-12-01T09:00:00+08:00"))
            .unwrap();
        site.publish(&notice("b"), t("2026-12-01T10:00:00+08:00"))
            .unwrap();
        let entries: Vec<Entry> = ["a", "b"]
            .iter()
            .map(|id| {
                let record: PageRecord =
                    serde_json::from_str(&read(&records_dir(&tmp.0), &format!("{id}.json")))
                        .unwrap();
                record.entry
            })
            .collect();
        drop(site);
        let legacy = Manifest {
            format: MANIFEST_FORMAT,
            pages: entries,
        };
        fs::remove_dir_all(records_dir(&tmp.0)).unwrap();
        fs::write(
            tmp.0.join("pages.json"),
            serde_json::to_vec_pretty(&legacy).unwrap(),
        )
        .unwrap();
        let before = snapshot(&tmp.0);
        let reopened = Site::open(config(&tmp.0)).unwrap();
        assert_eq!(reopened.status("a"), Some(PageStatus::Published));
        assert_eq!(reopened.status("b"), Some(PageStatus::Published));
        assert!(!tmp.0.join("pages.json").exists());
        assert!(records_dir(&tmp.0).join("a.json").exists());
        assert!(records_dir(&tmp.0).join("b.json").exists());
        reopened.refresh(t("2026-12-02T09:00:00+08:00")).unwrap();
        let after = snapshot(&tmp.0);
        for name in ["a.html", "b.html", "index.html", "archive.html", "feed.xml"] {
            assert_eq!(before[name], after[name], "{name} unchanged");
        }
    }

    #[test]
    fn ids_that_are_not_safe_file_names_are_refused() {
        let tmp = TempDir::new("ids");
        let site = Site::open(config(&tmp.0)).unwrap();
        for id in [
            "",
            "../x",
            "a/b",
            ".hidden",
            "index",
            "feed",
            "中文",
            &"x".repeat(65),
        ] {
            let err = site
                .publish(&notice(id), t("2026-12-01T09:00:00+08:00"))
                .unwrap_err();
            assert!(matches!(err, SiteError::InvalidId { .. }), "{id:?}: {err}");
        }
        assert!(!tmp.0.join("index.html").exists());
    }

    #[test]
    fn a_correction_replaces_the_page_at_the_same_url_with_a_note() {
        let tmp = TempDir::new("correct");
        let site = Site::open(config(&tmp.0)).unwrap();
        site.publish(&notice("orig"), t("2026-12-01T09:00:00+08:00"))
            .unwrap();
        let mut fixed = notice("orig-corr-1");
        fixed.title = "关于张三同志任职前公示的公告（更正）".to_string();
        fixed.body_html = "<p>张三，男，1980年6月生，拟任县财政局局长。</p>".to_string();
        fixed.published_at = t("2026-12-02T09:00:00+08:00");
        let path = site
            .correct(
                "orig",
                &fixed,
                "出生年月更正为1980年6月",
                t("2026-12-02T09:00:00+08:00"),
            )
            .unwrap();
        assert_eq!(path, site.page_path("orig"));
        assert!(!tmp.0.join("orig-corr-1.html").exists());

        let page = read(&tmp.0, "orig.html");
        assert!(page.contains("1980年6月生"));
        assert!(!page.contains("1980年5月生"));
        assert!(page.contains("更正说明"));
        assert!(page.contains("出生年月更正为1980年6月"));
        assert!(
            page.contains("发布日期：2026年12月1日"),
            "first publication date stays"
        );
        let index = read(&tmp.0, "index.html");
        assert!(index.contains("已更正"));
        assert!(index.contains("（更正）"));
        let feed = read(&tmp.0, "feed.xml");
        assert_eq!(feed.matches("<entry>").count(), 1);
        assert!(feed.contains("<updated>2026-12-02T09:00:00+08:00</updated>"));
        assert!(feed.contains("【更正】出生年月更正为1980年6月"));

        // Replays change nothing: the same correction, and the original publication.
        let before = snapshot(&tmp.0);
        site.correct(
            "orig",
            &fixed,
            "出生年月更正为1980年6月",
            t("2026-12-03T09:00:00+08:00"),
        )
        .unwrap();
        site.publish(&notice("orig"), t("2026-12-03T09:00:00+08:00"))
            .unwrap();
        assert_eq!(before, snapshot(&tmp.0));
        // But different content under the corrected id is refused.
        let mut other = notice("orig");
        other.title = "别的".to_string();
        assert!(matches!(
            site.publish(&other, t("2026-12-03T09:00:00+08:00")),
            Err(SiteError::Corrected { .. })
        ));
        assert!(matches!(
            site.correct("nope", &fixed, "x", t("2026-12-03T09:00:00+08:00")),
            Err(SiteError::UnknownPage { .. })
        ));
    }

    /// What a correction replaced or a withdrawal took down is kept in the manifest (to know a
    /// replayed delivery), and the manifest is not in the directory the web server serves.
    #[test]
    fn nothing_replaced_or_withdrawn_stays_in_the_served_directory() {
        let tmp = TempDir::new("unreachable");
        let site = Site::open(config(&tmp.0)).unwrap();
        site.publish(&notice("fixed"), t("2026-12-01T09:00:00+08:00"))
            .unwrap();
        site.publish(&notice("gone"), t("2026-12-01T09:00:00+08:00"))
            .unwrap();
        let mut fixed = notice("fix-1");
        fixed.title = "关于李四同志任职前公示的公告".to_string();
        fixed.body_html = "<p>李四，男，1980年6月生，拟任县财政局局长。</p>".to_string();
        site.correct("fixed", &fixed, "姓名更正", t("2026-12-02T09:00:00+08:00"))
            .unwrap();
        site.withdraw("gone", "信息有误", t("2026-12-02T10:00:00+08:00"))
            .unwrap();
        for (name, bytes) in snapshot(&tmp.0) {
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains("张三"),
                "{name} still holds what was taken down"
            );
        }
        // The manifest beside the column still knows both, so replays change nothing.
        let kept: String = snapshot(&records_dir(&tmp.0))
            .values()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect();
        assert!(kept.contains("张三"));
        let before = snapshot(&tmp.0);
        site.publish(&notice("gone"), t("2026-12-03T09:00:00+08:00"))
            .unwrap();
        site.publish(&notice("fixed"), t("2026-12-03T09:00:00+08:00"))
            .unwrap();
        assert_eq!(before, snapshot(&tmp.0));
    }

    #[test]
    fn a_withdrawn_page_shows_a_notice_and_leaves_index_archive_and_feed() {
        let tmp = TempDir::new("withdraw");
        let site = Site::open(config(&tmp.0)).unwrap();
        site.publish(&notice("keep"), t("2026-12-01T09:00:00+08:00"))
            .unwrap();
        site.publish(&notice("gone"), t("2026-12-01T09:00:00+08:00"))
            .unwrap();
        site.withdraw("gone", "<误发>", t("2026-12-03T10:00:00+08:00"))
            .unwrap();

        let page = read(&tmp.0, "gone.html");
        assert!(page.contains("本条信息已撤回"));
        assert!(page.contains("撤回原因：&lt;误发&gt;"));
        assert!(page.contains("2026年12月3日撤回"));
        assert!(
            !page.contains("张三"),
            "the withdrawn content is no longer shown"
        );
        assert!(!read(&tmp.0, "index.html").contains("gone.html"));
        assert!(read(&tmp.0, "index.html").contains("keep.html"));
        let feed = read(&tmp.0, "feed.xml");
        assert!(!feed.contains("gone.html"));
        assert_eq!(feed.matches("<entry>").count(), 1);
        assert!(feed.contains("<updated>2026-12-03T10:00:00+08:00</updated>"));

        // It stays out of the archive after its period ends, and replays change nothing.
        site.refresh(t("2026-12-09T00:00:00+08:00")).unwrap();
        assert!(!read(&tmp.0, "archive.html").contains("gone.html"));
        let before = snapshot(&tmp.0);
        site.withdraw("gone", "再次", t("2026-12-10T10:00:00+08:00"))
            .unwrap();
        site.publish(&notice("gone"), t("2026-12-10T10:00:00+08:00"))
            .unwrap();
        assert_eq!(before, snapshot(&tmp.0));
        assert!(matches!(
            site.correct("gone", &notice("x"), "n", t("2026-12-10T10:00:00+08:00")),
            Err(SiteError::Withdrawn { .. })
        ));
        assert!(matches!(
            site.withdraw("never", "n", t("2026-12-10T10:00:00+08:00")),
            Err(SiteError::UnknownPage { .. })
        ));
    }

    #[test]
    fn concurrent_publishers_all_land_in_the_manifest_and_index() {
        let tmp = TempDir::new("threads");
        let site = std::sync::Arc::new(Site::open(config(&tmp.0)).unwrap());
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let site = site.clone();
                std::thread::spawn(move || {
                    site.publish(&notice(&format!("p{i}")), t("2026-12-01T09:00:00+08:00"))
                        .unwrap();
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let index = read(&tmp.0, "index.html");
        let reopened = Site::open(config(&tmp.0)).unwrap();
        for i in 0..8 {
            assert!(index.contains(&format!("p{i}.html")));
            assert_eq!(
                reopened.status(&format!("p{i}")),
                Some(PageStatus::Published)
            );
        }
    }

    #[test]
    fn plain_text_start_strips_tags_decodes_entities_and_cuts() {
        assert_eq!(
            plain_text_start("<p>a&lt;b</p><p>c&#x4e2d;&#25991;</p>", 50),
            "a<b c中文"
        );
        assert_eq!(plain_text_start("一二三四五", 3), "一二三…");
        assert_eq!(plain_text_start("a & b &bogus; <", 50), "a & b &bogus;");
    }
}
