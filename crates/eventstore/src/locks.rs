//! One writer at a time per stream, within a process.
//!
//! Key_Shared keeps one key's messages in order, but handlers of different keys run at once,
//! and some streams are written by many keys (a campaign's budget by every sale of the
//! campaign). Left to race, those writers would conflict in the store and read the stream again
//! each time; taking turns here costs nothing but the wait.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::OwnedMutexGuard;

/// Entries kept before the unused ones are dropped.
const PRUNE_AT: usize = 1024;

/// Per-stream turns; cloning shares them.
#[derive(Clone, Default)]
pub struct StreamLocks {
    streams: Arc<Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>>,
}

impl StreamLocks {
    /// Waits for `stream`'s turn; the turn lasts as long as the guard.
    pub async fn lock(&self, stream: &str) -> OwnedMutexGuard<()> {
        let turn = {
            let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
            match streams.get(stream).and_then(Weak::upgrade) {
                Some(turn) => turn,
                None => {
                    if streams.len() >= PRUNE_AT {
                        streams.retain(|_, turn| turn.strong_count() > 0);
                    }
                    let turn = Arc::new(tokio::sync::Mutex::new(()));
                    streams.insert(stream.to_owned(), Arc::downgrade(&turn));
                    turn
                }
            }
        };
        turn.lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn writers_of_one_stream_take_turns_and_others_do_not_wait() {
        let locks = StreamLocks::default();
        let held = locks.lock("budget-a").await;
        let same = tokio::time::timeout(Duration::from_millis(50), locks.lock("budget-a")).await;
        assert!(same.is_err(), "the second writer of budget-a waits");
        let other = tokio::time::timeout(Duration::from_millis(50), locks.lock("budget-b")).await;
        assert!(other.is_ok(), "budget-b is not held");
        drop(held);
        let after = tokio::time::timeout(Duration::from_millis(50), locks.lock("budget-a")).await;
        assert!(after.is_ok(), "released with the guard");
    }
}
