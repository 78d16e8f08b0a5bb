//! RabbitMQ intake. (being written)

use std::sync::Arc;

use tokio::sync::Notify;

use super::Intake;
use crate::config::QueueSection;
use crate::shutdown::Shutdown;

/// Declare the topology and consume jobs until shutdown.
pub async fn run(
    _intake: Arc<Intake>,
    _cfg: QueueSection,
    _wake: Arc<Notify>,
    _shutdown: Shutdown,
) -> anyhow::Result<()> {
    anyhow::bail!("AMQP intake is not written yet")
}

/// Publish job bodies to the jobs exchange, persistent, with publisher confirms.
pub async fn publish(_cfg: &QueueSection, _bodies: Vec<(String, Vec<u8>)>) -> anyhow::Result<()> {
    anyhow::bail!("AMQP publishing is not written yet")
}
