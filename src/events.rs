//! Events out. (being written)

use std::sync::Arc;

use crate::config::QueueSection;
use crate::ledger::Ledger;
use crate::shutdown::Shutdown;

/// Publish the ledger's outbox of events to the events exchange until shutdown.
pub async fn run(
    _ledger: Arc<dyn Ledger>,
    _cfg: QueueSection,
    _shutdown: Shutdown,
) -> anyhow::Result<()> {
    anyhow::bail!("the events publisher is not written yet")
}
