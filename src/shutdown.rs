//! One shutdown signal for every task of the service: fired once (SIGTERM, SIGINT, or a fatal
//! error), seen by all.

use tokio::sync::watch;

/// Fires the shutdown.
pub struct Trigger(watch::Sender<bool>);

/// Watches for the shutdown; cheap to clone into every task.
#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

pub fn channel() -> (Trigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (Trigger(tx), Shutdown(rx))
}

impl Trigger {
    pub fn fire(&self) {
        let _ = self.0.send(true);
    }
}

impl Shutdown {
    pub fn is_set(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once the shutdown has fired (or its trigger is gone).
    pub async fn wait(&mut self) {
        while !*self.0.borrow_and_update() {
            if self.0.changed().await.is_err() {
                return;
            }
        }
    }
}
