//! The outbox relay: publishes what commits recorded, then tells the store they are out.
//!
//! Publishing happens strictly after the commit is durable and the mark strictly after the
//! broker's receipt, so a crash anywhere republishes rather than loses (at least once; consumers
//! deduplicate by event id). Sends of one batch are pipelined and leave in commit order.
//!
//! When the broker goes away, the `pulsar` client re-creates the producers and resends what
//! they had pending; a send it gives up on fails the flush, and the commits stay unpublished
//! in the store, to be sent again after a backoff until the broker takes them. The outage is
//! logged once when it starts and once when publishing works again.

use std::time::{Duration, Instant};

use alpes_bus::{Backoff, BusError, Publisher, Shutdown};

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
            alpes_bus::fault::before_publish(commits.iter().flat_map(|c| &c.outbox)).await;
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
    /// After a failed flush it waits a growing backoff (0.5 s doubling up to 10 s) before the
    /// next, whatever the appends, so that an unreachable broker is not hammered.
    pub async fn run(self, shutdown: Shutdown) {
        // Since when, and how many flushes in a row, publishing has failed.
        let mut failing: Option<(Instant, u32)> = None;
        loop {
            match self.flush().await {
                Ok(_) => {
                    if let Some((since, failures)) = failing.take() {
                        tracing::info!(
                            failures,
                            down_ms = since.elapsed().as_millis() as u64,
                            "outbox relay: publishing again"
                        );
                    }
                }
                Err(e) => {
                    let (since, failures) = failing.unwrap_or_else(|| (Instant::now(), 0));
                    if failures == 0 {
                        tracing::warn!(error = %e, "outbox relay: publishing failed; the outbox is kept and sent again until the broker takes it");
                    } else {
                        tracing::debug!(error = %e, failures, "outbox relay: publishing still fails");
                    }
                    failing = Some((since, failures + 1));
                }
            }
            if let Some((_, failures)) = failing {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(retry_delay(failures)) => {}
                }
                continue;
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

/// The wait after `failures` failed flushes in a row: 0.5 s, doubling, at most 10 s.
fn retry_delay(failures: u32) -> Duration {
    Backoff {
        initial: Duration::from_millis(500),
        max: Duration::from_secs(10),
    }
    .delay(failures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_relay_waits_longer_each_time_up_to_ten_seconds() {
        let delays: Vec<u128> = (1..=7).map(|f| retry_delay(f).as_millis()).collect();
        assert_eq!(delays, [500, 1_000, 2_000, 4_000, 8_000, 10_000, 10_000]);
    }
}
