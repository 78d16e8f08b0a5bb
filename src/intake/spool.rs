//! The spool directory: the embedded default queue. (being written)

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::Notify;

use super::Intake;
use crate::shutdown::Shutdown;

/// Consume jobs dropped into `dir` until shutdown.
pub async fn run(
    _intake: Arc<Intake>,
    dir: PathBuf,
    _wake: Arc<Notify>,
    _shutdown: Shutdown,
) -> anyhow::Result<()> {
    anyhow::bail!("spool intake at {} is not written yet", dir.display())
}

/// Drop a job into the spool atomically (write, then rename). Returns the spooled file.
pub fn submit(dir: &Path, _name: &str, _bytes: &[u8]) -> std::io::Result<PathBuf> {
    Err(std::io::Error::other(format!(
        "spool submit to {} is not written yet",
        dir.display()
    )))
}
