//! The WAL checkpoint, on a thread of its own.
//!
//! SQLite's own checkpoint runs inside the commit that takes the WAL past its limit, so the
//! ledger's one connection — and every delivery worker waiting for it — stood still while the
//! checkpoint copied 64 MiB into the database and waited for two `fsync`s: 40–100 ms. Sending a
//! million SMS, that was the emulator standing idle for want of calls (0.21–0.26 of the two cores
//! idle, against 0.15–0.17 with no checkpoint while sending; BENCHMARKS.md, session 16).
//!
//! Here a commit that takes the WAL past the limit wakes a thread with a connection of its own,
//! which checkpoints (`PASSIVE`: it never blocks the writer) while the ledger goes on committing,
//! and is woken again for each quarter of the limit the WAL grows meanwhile. While the ledger
//! commits without a pause the WAL cannot start over (SQLite starts it over only at a commit that
//! finds all of it in the database), so the commit that takes it to twice the limit checkpoints
//! itself, as SQLite would have at the limit: by then the thread has copied all but the last
//! quarter, and what that commit waits for is that quarter and the two `fsync`s. The same
//! commits checkpoint themselves at the limit when the thread cannot open the ledger. Sending a
//! million SMS, the thread ran two checkpoints and the commits two; the machine stood idle as
//! little as under the bare client (0.15–0.19 of the two cores).
//!
//! A commit never fails for a checkpoint: SQLite would report the error of a commit that has
//! happened. A failed checkpoint is logged and tried again at the next commit or wake.

use std::ffi::c_int;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, TrySendError, sync_channel};
use std::thread::JoinHandle;

use rusqlite::Connection;
use rusqlite::hooks::Wal;
use rusqlite::wal::CheckpointMode;

/// The thread, and the way to stop it.
pub(super) struct Checkpointer {
    handle: Option<JoinHandle<()>>,
    /// Checkpoints the thread ran, and the commits ran themselves.
    pub counts: Arc<Counts>,
    /// WAL pages past which the thread is woken.
    pub limit: i64,
}

#[derive(Default)]
pub(super) struct Counts {
    pub by_thread: AtomicU64,
    pub in_commits: AtomicU64,
}

impl Checkpointer {
    /// Starts the thread for the ledger at `path` and makes `conn`'s commits wake it past
    /// `limit` pages of WAL (and checkpoint themselves past twice that).
    pub fn start(conn: &mut Connection, path: &Path, limit: i64) -> rusqlite::Result<Checkpointer> {
        let (wake, woken) = sync_channel::<()>(1);
        // Whether the thread has its connection (until then, and if it cannot open one, commits
        // checkpoint at the limit themselves).
        let running = Arc::new(AtomicBool::new(false));
        let counts = Arc::new(Counts::default());
        let handle = {
            let (path, running, counts) = (path.to_path_buf(), running.clone(), counts.clone());
            std::thread::Builder::new()
                .name("ledger-checkpoint".into())
                .spawn(move || run(&path, &running, &counts, woken))
                .ok()
        };
        let in_commits = counts.clone();
        // Pages in the WAL at the commit before, and at the last wake (0 since the WAL started
        // over): the thread is woken at the limit, and again each quarter of it the WAL grows
        // while the ledger commits on, so that what is left to a commit at twice the limit is
        // little (the WAL starts over only once it is all in the database as a commit begins).
        let (mut last, mut woken_at) = (0, 0);
        let step = (limit / 4).max(1);
        conn.wal_hook(Some(move |wal: &mut Wal, pages: c_int| {
            let pages = i64::from(pages);
            if pages < last {
                woken_at = 0;
            }
            last = pages;
            let by_thread = running.load(Ordering::Acquire);
            if pages >= limit * 2 || (pages >= limit && !by_thread) {
                // An error here would fail a commit that has happened; the next commit tries again.
                match wal.checkpoint_v2(CheckpointMode::PASSIVE) {
                    Ok(_) => {
                        in_commits.in_commits.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(error) => {
                        tracing::warn!(%error, "ledger checkpoint failed; the next commit tries again")
                    }
                }
            } else if pages >= limit && pages - woken_at >= step {
                match wake.try_send(()) {
                    Ok(()) | Err(TrySendError::Full(())) => woken_at = pages,
                    Err(TrySendError::Disconnected(())) => {}
                }
            }
            Ok(())
        }))?;
        Ok(Checkpointer {
            handle,
            counts,
            limit,
        })
    }

    /// Stops the thread once the checkpoint in hand is done: `conn`'s commits no longer wake it,
    /// and SQLite checkpoints the WAL when the last connection closes.
    pub fn stop(&mut self, conn: &mut Connection) {
        // Dropping the hook drops the thread's only sender.
        let _ = conn.wal_hook(None::<fn(&mut Wal, c_int) -> rusqlite::Result<()>>);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
        tracing::debug!(
            by_thread = self.counts.by_thread.load(Ordering::Relaxed),
            in_commits = self.counts.in_commits.load(Ordering::Relaxed),
            limit_pages = self.limit,
            "ledger checkpoints"
        );
    }
}

/// The thread: a connection of its own, and a checkpoint each time a commit wakes it.
fn run(path: &Path, running: &AtomicBool, counts: &Counts, woken: Receiver<()>) {
    let conn = match Connection::open(path).and_then(|c| {
        c.busy_timeout(std::time::Duration::from_secs(10))?;
        Ok(c)
    }) {
        Ok(c) => c,
        Err(error) => {
            tracing::warn!(%error, "cannot open the ledger for checkpoints; commits checkpoint themselves");
            return;
        }
    };
    running.store(true, Ordering::Release);
    while woken.recv().is_ok() {
        match conn.wal_checkpoint_v2(None::<&str>, CheckpointMode::PASSIVE) {
            Ok(_) => {
                counts.by_thread.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) => {
                tracing::warn!(%error, "ledger checkpoint failed; trying again at the next")
            }
        }
    }
    running.store(false, Ordering::Release);
}
