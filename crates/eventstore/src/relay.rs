//! The outbox relay: publishes what commits recorded, then tells the store they are out.
//!
//! Publishing happens strictly after the commit is durable and the mark strictly after the
//! broker's receipt, so a crash anywhere republishes rather than loses (at least once; consumers
//! deduplicate by event id). Sends of one batch are pipelined and leave in commit order.

use std::time::Duration;

use alpes_bus::{BusError, Publisher, Shutdown};

use crate::{EventStore, StoreError};

/// Why a flush stopped; the relay's loop logs it and tries again.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Bus(#[from] BusError),
}

/// Publishes the outboxes of a store's unpublished commits.
pub struct Relay<S> {
    store: S,
    publisher: Publisher,
    batch: usize,
    poll: Duration,
}

impl<S: EventStore> Relay<S> {
    /// A relay for `store` publishing through `publisher`: batches of 100 commits, polling
    /// every second when no append wakes it.
    pub fn new(store: S, publisher: Publisher) -> Self {
        Self {
            store,
            publisher,
            batch: 100,
            poll: Duration::from_secs(1),
        }
    }

    /// Publishes every pending outbox; returns how many messages went out.
    pub async fn flush(&self) -> Result<usize, RelayError> {
        let mut published = 0;
        loop {
            let commits = self.store.unpublished(self.batch).await?;
            if commits.is_empty() {
                return Ok(published);
            }
            let mut pending = Vec::new();
            for commit in &commits {
                for message in &commit.outbox {
                    pending.push(self.publisher.send(message.clone()).await?);
                }
            }
            published += pending.len();
            for receipt in pending {
                receipt.confirmed().await?;
            }
            self.store.mark_published(&commits).await?;
        }
    }

    /// Flushes whenever an append wakes it, or every poll interval, until `shutdown`; then
    /// flushes one last time so that nothing committed before shutdown waits for a restart.
    pub async fn run(self, shutdown: Shutdown) {
        loop {
            if let Err(e) = self.flush().await {
                tracing::warn!(error = %e, "outbox relay: publishing failed, will retry");
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.store.appended().notified() => {}
                _ = tokio::time::sleep(self.poll) => {}
            }
        }
        if let Err(e) = self.flush().await {
            tracing::warn!(error = %e, "outbox relay: final flush failed; the next start publishes the rest");
        }
    }
}
