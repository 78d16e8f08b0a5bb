//! The spool directory: the embedded default queue, for a deployment with no RabbitMQ
//! (`[queue] amqp_url` unset). It gives the same guarantee as the broker: a job is taken
//! at least once, and its file leaves the spool only after its decision is committed.
//!
//! # The life of a job file
//!
//! ```text
//!  submit: DIR/.<name>.<pid>.<nanos>.tmp ──write, fsync, rename──▶ DIR/<timestamp>-<name>.json
//!  run:    DIR/*.json, in name order ──read, Intake::admit (commit)──▶ DIR/done/<file>
//!                                                                 or DIR/refused/<file>
//!                                                                    + DIR/refused/<file>.reason
//! ```
//!
//! - A writer must never let the service see half a job, so jobs are written under a dotted
//!   temporary name and renamed into place ([`submit`] does this). Dotfiles, `*.tmp`, anything
//!   not `*.json` and subdirectories are never taken.
//! - Name order is submission order: [`submit`] prefixes a UTC timestamp with nanoseconds, so a
//!   correction spooled after its original is decided after it.
//! - The move into `done/` or `refused/` is the acknowledgement, and it happens only after
//!   [`Intake::admit`] returned `Ok` (the decision and every planned delivery are durable). A
//!   crash between the commit and the move leaves the file in the spool: it is taken again at
//!   the next start and answered as a duplicate — nothing lost, nothing planned twice. (A refused
//!   job taken again is refused again: refusals are recorded, never planned.)
//! - `refused/<file>.reason` holds one line per refusal, `code (article): message`, written
//!   before the job file is moved beside it.
//! - When the ledger is unavailable, the file stays where it is and the intake backs off
//!   (1 s, doubling to 30 s) and tries again, logging the outage once and its end once; the
//!   service keeps running. Later files wait too, so name order holds across an outage.
//! - A file that cannot be read, or is over the 1 MiB limit, is refused as `malformed` (and
//!   recorded) without being read into memory.
//!
//! One service consumes a spool directory. Should two ever share one, the ledger still decides
//! each job once (the second is a duplicate) and a file already moved by the other is skipped.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::Notify;

use super::{DecisionKind, Intake};
use crate::clock;
use crate::ledger::LedgerError;
use crate::policy::{Code, Refusal};
use crate::shutdown::Shutdown;

/// Where taken jobs go, relative to the spool directory.
pub const DONE: &str = "done";
pub const REFUSED: &str = "refused";

/// How often an idle spool is looked at again (there is no inotify here; 200 ms is well within
/// what a disclosure needs and costs one `readdir`).
const POLL: Duration = Duration::from_millis(200);
/// Backoff while the ledger (or the spool directory itself) is unavailable.
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Consume jobs dropped into `dir` until shutdown.
pub async fn run(
    intake: Arc<Intake>,
    dir: PathBuf,
    wake: Arc<Notify>,
    mut shutdown: Shutdown,
) -> anyhow::Result<()> {
    // Fail fast at start-up: a spool that cannot even be created is a configuration error.
    for d in [dir.clone(), dir.join(DONE), dir.join(REFUSED)] {
        tokio::fs::create_dir_all(&d)
            .await
            .with_context(|| format!("creating the spool directory {}", d.display()))?;
    }
    let mut outage = Outage::default();
    loop {
        if shutdown.is_set() {
            return Ok(());
        }
        let (intake2, dir2, wake2, stop) =
            (intake.clone(), dir.clone(), wake.clone(), shutdown.clone());
        // Blocking file and ledger work, one pass over the spool in name order.
        let pass = tokio::task::spawn_blocking(move || pass(&intake2, &dir2, &wake2, &stop))
            .await
            .context("the spool intake task failed")?;
        let wait = match pass {
            Ok(0) => {
                outage.over();
                POLL
            }
            Ok(_) => {
                outage.over();
                continue; // more may have arrived meanwhile
            }
            Err(stall) => outage.begin(&dir, &stall),
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.wait() => return Ok(()),
        }
    }
}

/// Drop a job into the spool atomically (write, then rename). Returns the spooled file.
///
/// The file is fsynced before the rename and the directory after it, so once this returns the
/// job survives a crash; the service never sees it half-written.
pub fn submit(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let name = file_safe(name);
    let nanos = unique_nanos();
    let tmp = dir.join(format!(".{name}.{}.{nanos}.tmp", std::process::id()));
    let stamp = chrono::DateTime::from_timestamp_nanos(nanos).format("%Y%m%dT%H%M%S%.9fZ");
    let dest = dir.join(format!("{stamp}-{name}.json"));
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        if std::fs::symlink_metadata(&dest).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("{} already exists", dest.display()),
            ));
        }
        std::fs::rename(&tmp, &dest)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::File::open(dir)?.sync_all()?;
    Ok(dest)
}

/// Why a pass over the spool stopped before its end. Either way the file in hand stays in the
/// spool and is taken again later.
#[derive(Debug, thiserror::Error)]
enum Stall {
    #[error("the ledger is unavailable: {0}")]
    Ledger(#[from] LedgerError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Stall + '_ {
    move |source| Stall::Io {
        path: path.display().to_string(),
        source,
    }
}

/// One outage of the ledger or the spool: logged when it begins and when it ends, not on every
/// retry, with a backoff that grows while it lasts.
#[derive(Default)]
struct Outage {
    since: Option<Instant>,
    backoff: Duration,
}

impl Outage {
    fn begin(&mut self, dir: &Path, stall: &Stall) -> Duration {
        match self.since {
            None => {
                tracing::error!(spool = %dir.display(), error = %stall, "spool intake stalled; jobs stay in the spool and are retried");
                self.since = Some(Instant::now());
                self.backoff = BACKOFF_FIRST;
            }
            Some(_) => self.backoff = (self.backoff * 2).min(BACKOFF_MAX),
        }
        self.backoff
    }

    fn over(&mut self) {
        if let Some(since) = self.since.take() {
            tracing::info!(
                after_secs = since.elapsed().as_secs(),
                "spool intake: working again"
            );
        }
    }
}

/// Take every job waiting in the spool, in name order; the number taken. Stops at the first
/// stall (so later files keep their order) or when shutdown is asked for.
fn pass(intake: &Intake, dir: &Path, wake: &Notify, shutdown: &Shutdown) -> Result<usize, Stall> {
    let mut taken = 0;
    for name in pending(dir).map_err(io(dir))? {
        if shutdown.is_set() {
            break;
        }
        match take(intake, dir, &name)? {
            Some(DecisionKind::Accepted) => {
                wake.notify_waiters();
                taken += 1;
            }
            Some(_) => taken += 1,
            None => {}
        }
    }
    Ok(taken)
}

/// The job files waiting in `dir`, in name order: `*.json` regular files (or links to them),
/// never dotfiles (a writer's temporary files) nor directories.
pub fn pending(dir: &Path) -> std::io::Result<Vec<OsString>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let bytes = name.as_encoded_bytes();
        if bytes.starts_with(b".") || !bytes.ends_with(b".json") {
            continue;
        }
        // Follows a link; a file gone since the listing is simply not there.
        if std::fs::metadata(entry.path()).is_ok_and(|m| m.is_file()) {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Decide about one spooled file and move it: the decision, or `None` if the file vanished
/// (another consumer took it).
fn take(intake: &Intake, dir: &Path, name: &OsString) -> Result<Option<DecisionKind>, Stall> {
    let path = dir.join(name);
    let now = clock::now();
    let (id, decision, refusals) = match crate::app::read_job(&path) {
        Ok(bytes) => {
            let v = intake.admit(&bytes, now)?;
            (v.id, v.decision, v.refusals)
        }
        Err(_) if std::fs::symlink_metadata(&path).is_err() => return Ok(None),
        Err(message) => {
            // Unreadable or too large: answered and recorded like any malformed job.
            let refusals = vec![Refusal::new(Code::Malformed, message)];
            intake.ledger.refuse(None, b"", &refusals, now)?;
            tracing::warn!(file = %path.display(), codes = "malformed", "spooled file refused");
            (None, DecisionKind::Refused, refusals)
        }
    };
    // The decision is committed: from here on the file may leave the spool.
    let moved = match decision {
        DecisionKind::Accepted | DecisionKind::Duplicate => move_into(dir, name, DONE, None)?,
        DecisionKind::Refused => move_into(dir, name, REFUSED, Some(&reason(&refusals)))?,
    };
    if !moved {
        return Ok(None);
    }
    tracing::info!(
        file = %name.to_string_lossy(),
        job = id.as_deref().unwrap_or("?"),
        decision = ?decision,
        "spooled job taken"
    );
    Ok(Some(decision))
}

/// The `.reason` file: one line per refusal, `code (article): message`.
pub fn reason(refusals: &[Refusal]) -> String {
    refusals
        .iter()
        .map(|r| {
            let message = r.message.replace(['\r', '\n'], " ");
            format!("{} ({}): {message}\n", r.code.as_str(), r.article)
        })
        .collect()
}

/// Move `dir/name` into `dir/sub/`, never over an existing file (a clash gets `.1`, `.2`, …
/// before `.json`), writing `<dest>.reason` first when given. `false` if the file was gone.
fn move_into(dir: &Path, name: &OsString, sub: &str, reason: Option<&str>) -> Result<bool, Stall> {
    let to = dir.join(sub);
    std::fs::create_dir_all(&to).map_err(io(&to))?;
    let dest = free_name(&to, name);
    if let Some(text) = reason {
        let mut reason_name = dest.file_name().unwrap_or_default().to_owned();
        reason_name.push(".reason");
        let mut tmp_name = OsString::from(".");
        tmp_name.push(&reason_name);
        tmp_name.push(".tmp");
        let tmp = to.join(tmp_name);
        std::fs::write(&tmp, text).map_err(io(&tmp))?;
        let final_reason = to.join(reason_name);
        std::fs::rename(&tmp, &final_reason).map_err(io(&final_reason))?;
    }
    let from = dir.join(name);
    match std::fs::rename(&from, &dest) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !from.exists() => Ok(false),
        Err(e) => Err(io(&dest)(e)),
    }
}

/// `to/name`, or `to/<stem>.<n>.json` for the first `n` not taken.
fn free_name(to: &Path, name: &OsString) -> PathBuf {
    let first = to.join(name);
    if std::fs::symlink_metadata(&first).is_err() {
        return first;
    }
    let s = name.to_string_lossy();
    let stem = s.strip_suffix(".json").unwrap_or(&s);
    (1u64..)
        .map(|n| to.join(format!("{stem}.{n}.json")))
        .find(|p| std::fs::symlink_metadata(p).is_err())
        .expect("some suffix is free")
}

/// A job id as a file name part: `[A-Za-z0-9._-]`, at most 64 characters, never empty.
fn file_safe(name: &str) -> String {
    let s: String = name
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() { "job".into() } else { s }
}

/// Nanoseconds since the epoch, strictly increasing within this process, so that two jobs
/// submitted one after the other never share a timestamp and keep their order.
fn unique_nanos() -> i64 {
    static LAST: AtomicI64 = AtomicI64::new(0);
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(last + 1);
        match LAST.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("disclose-spool-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn submissions_are_taken_in_submission_order() {
        let dir = scratch("order");
        // Ids that sort the other way round: the timestamp prefix decides, not the id.
        let ids = ["z-first", "m-second", "a-third", "a-third", "0-fifth"];
        let paths: Vec<PathBuf> = ids
            .iter()
            .map(|id| submit(&dir, id, id.as_bytes()).unwrap())
            .collect();
        let names: Vec<OsString> = paths
            .iter()
            .map(|p| p.file_name().unwrap().into())
            .collect();
        assert_eq!(pending(&dir).unwrap(), names);
        let contents: Vec<String> = pending(&dir)
            .unwrap()
            .iter()
            .map(|n| std::fs::read_to_string(dir.join(n)).unwrap())
            .collect();
        assert_eq!(contents, ids);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_finished_json_files_are_pending() {
        let dir = scratch("pending");
        for name in [
            "b.json",
            ".a.json",
            ".x.json.1.tmp",
            "c.json.tmp",
            "notes.txt",
            "a.json",
        ] {
            std::fs::write(dir.join(name), "{}").unwrap();
        }
        std::fs::create_dir_all(dir.join("d.json")).unwrap();
        std::fs::create_dir_all(dir.join(DONE)).unwrap();
        std::fs::write(dir.join(DONE).join("e.json"), "{}").unwrap();
        assert_eq!(pending(&dir).unwrap(), ["a.json", "b.json"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn submit_leaves_the_whole_job_and_no_temporary_file() {
        let dir = scratch("submit").join("not-yet-created");
        let bytes: Vec<u8> = (0..300_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let path = submit(&dir, "zzb-2026/../0142 ✓", &bytes).unwrap();
        assert_eq!(path.parent().unwrap(), dir);
        let name = path.file_name().unwrap().to_str().unwrap();
        // 20261126T205000.123456789Z-<name>.json
        assert_eq!(name.as_bytes()[8], b'T');
        assert_eq!(&name[25..27], "Z-");
        assert!(name.ends_with("-zzb-2026_.._0142__.json"), "{name}");
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
        let all: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(all.len(), 1, "no temporary file is left behind");
        std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_move_never_overwrites() {
        let dir = scratch("clash");
        std::fs::create_dir_all(dir.join(DONE)).unwrap();
        std::fs::write(dir.join(DONE).join("j.json"), "old").unwrap();
        std::fs::write(dir.join(DONE).join("j.1.json"), "older").unwrap();
        std::fs::write(dir.join("j.json"), "new").unwrap();
        assert!(move_into(&dir, &"j.json".into(), DONE, None).unwrap());
        assert_eq!(
            std::fs::read_to_string(dir.join(DONE).join("j.json")).unwrap(),
            "old"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join(DONE).join("j.2.json")).unwrap(),
            "new"
        );
        assert!(!dir.join("j.json").exists());
        // Gone before it could be moved (another consumer took it): not an error.
        assert!(!move_into(&dir, &"j.json".into(), DONE, None).unwrap());

        std::fs::write(dir.join("r.json"), "bad").unwrap();
        let why = reason(&[
            Refusal::new(Code::Malformed, "line 1\nline 2"),
            Refusal::new(Code::Unapproved, "no signature"),
        ]);
        assert!(move_into(&dir, &"r.json".into(), REFUSED, Some(&why)).unwrap());
        let text = std::fs::read_to_string(dir.join(REFUSED).join("r.json.reason")).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].starts_with("malformed (") && lines[0].ends_with("): line 1 line 2"));
        assert!(lines[1].starts_with("unapproved ("), "{text}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
