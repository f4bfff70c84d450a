//! Folded states of streams, kept so that a load folds only the commits it has not folded yet.
//!
//! A stream that every sale appends to (a campaign's budget) would otherwise be folded whole for
//! every sale: quadratic in the campaign's sales. Commits are immutable and a stream only grows,
//! so a state folded up to version `v` stays right for the stream's first `v` commits whatever
//! happened since; a load folds the commits after `v` onto it.
//!
//! The state is handed out shared. When nobody else holds it (the usual case: the previous
//! handler is done with it), the next fold updates it in place; otherwise it is copied first.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::{StoredEvent, Stream};

/// Streams whose state is kept, at most; the least recently folded half goes when full.
const CAPACITY: usize = 4096;

type Entry = (u64, u64, Arc<dyn Any + Send + Sync>);

/// Folded states by stream; cloning shares them.
#[derive(Clone, Default)]
pub struct States {
    inner: Arc<Mutex<HashMap<String, Entry>>>,
}

impl States {
    /// `stream` folded with `apply` from `A::default()`, reusing the state kept from an earlier
    /// fold of a prefix of it.
    pub fn fold<A, E>(
        &self,
        stream: &Stream,
        mut apply: impl FnMut(&mut A, &StoredEvent) -> Result<(), E>,
    ) -> Result<Arc<A>, E>
    where
        A: Default + Clone + Send + Sync + 'static,
    {
        let kept = self.lock().remove(&stream.name);
        let (mut folded, mut state) = kept
            .and_then(|(version, _, state)| {
                let state = state.downcast::<A>().ok()?;
                (version <= stream.version()).then_some((version, state))
            })
            .unwrap_or_default();
        let from = folded;
        // Commits are in version order: find the first one not folded yet, not walk the stream.
        let first = stream.commits.partition_point(|c| c.version <= from);
        for commit in &stream.commits[first..] {
            let state = Arc::make_mut(&mut state);
            for event in &commit.events {
                apply(state, event)?;
            }
            folded = commit.version;
        }
        let mut states = self.lock();
        if states.len() >= CAPACITY {
            let mut ages: Vec<u64> = states.values().map(|(_, used, _)| *used).collect();
            ages.sort_unstable();
            let cut = ages[ages.len() / 2];
            states.retain(|_, (_, used, _)| *used > cut);
        }
        let used = TICK.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        states.insert(stream.name.clone(), (folded, used, state.clone()));
        Ok(state)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A logical clock for "least recently folded".
static TICK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Commit;
    use chrono::Utc;

    fn stream(amounts: &[i64]) -> Stream {
        let commits = amounts
            .iter()
            .enumerate()
            .map(|(i, amount)| {
                Arc::new(Commit {
                    stream: "s".into(),
                    version: i as u64 + 1,
                    events: vec![StoredEvent::new("Deposited", amount).unwrap()],
                    outbox: Vec::new(),
                    handled: None,
                    recorded_at: Utc::now(),
                })
            })
            .collect();
        Stream {
            name: "s".into(),
            commits: Arc::new(commits),
        }
    }

    #[test]
    fn only_new_commits_are_folded_and_the_result_is_the_whole_fold() {
        let states = States::default();
        let folds = std::cell::Cell::new(0);
        let mut sum = |total: &mut i64, e: &StoredEvent| {
            folds.set(folds.get() + 1);
            *total += e.decode::<i64>()?;
            Ok::<_, serde_json::Error>(())
        };
        assert_eq!(*states.fold(&stream(&[1, 2]), &mut sum).unwrap(), 3);
        assert_eq!(*states.fold(&stream(&[1, 2, 4]), &mut sum).unwrap(), 7);
        assert_eq!(folds.get(), 3, "the first two commits were folded once");
        let held = states.fold(&stream(&[1, 2, 4]), &mut sum).unwrap();
        assert_eq!(*states.fold(&stream(&[1, 2, 4, 8]), &mut sum).unwrap(), 15);
        assert_eq!(*held, 7, "a state someone holds is not changed under them");
    }

    #[test]
    fn a_shorter_stream_than_the_kept_state_is_folded_from_scratch() {
        let states = States::default();
        let sum = |total: &mut i64, e: &StoredEvent| {
            *total += e.decode::<i64>()?;
            Ok::<_, serde_json::Error>(())
        };
        states.fold(&stream(&[1, 2, 3]), sum).unwrap();
        assert_eq!(*states.fold(&stream(&[5]), sum).unwrap(), 5);
    }
}
