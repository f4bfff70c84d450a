//! The streams this process works on, kept in memory so that the hot path does not read.
//!
//! Key_Shared gives one consumer per key, so the process that handles a saga's (or a visitor's,
//! or a campaign's) messages is normally the only writer of its streams: the cached stream *is*
//! the stream, and an append goes to cached version + 1 without asking the database first. When
//! it is not (another replica wrote, a rebalancing moved the key), the append's `_id` collides,
//! the append fails with a conflict, the stream is dropped from here, and the next load reads it
//! again by `_id` lookups.
//!
//! Reads that decide nothing by appending (is this campaign active?) must not trust a copy
//! forever, so an entry is trusted for [`FRESH_FOR`] after it was last read or written; after
//! that a load asks for the next version once (one `_id` lookup) before trusting it again. Under
//! load a hot stream is re-checked once per interval, however many messages touch it. A decision
//! that would be wrong on a copy a moment old and appends nothing to reveal it ("nothing to
//! undo") asks the database every time (`EventStore::load_latest`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::Commit;

/// How long a cached stream is trusted without checking the database for newer commits.
pub(crate) const FRESH_FOR: Duration = Duration::from_secs(1);

/// Streams per generation: the cache holds between one and two generations' worth.
const GENERATION: usize = 4096;

/// A stream as last seen: every commit, and when the database last confirmed that was all
/// (never, for a copy known to be behind).
#[derive(Clone)]
pub(crate) struct Cached {
    pub(crate) commits: Arc<Vec<Arc<Commit>>>,
    pub(crate) checked: Option<Instant>,
}

impl Cached {
    /// Whether the copy can be used without asking the database.
    pub(crate) fn is_fresh(&self) -> bool {
        self.checked
            .is_some_and(|checked| checked.elapsed() < FRESH_FOR)
    }
}

/// Two generations of streams: a stream used in the current one stays; one not used since the
/// previous one began is dropped when the current one fills up. An LRU in all but name,
/// without a dependency.
#[derive(Default)]
pub(crate) struct Streams {
    inner: Mutex<Generations>,
}

#[derive(Default)]
struct Generations {
    current: HashMap<String, Cached>,
    previous: HashMap<String, Cached>,
}

impl Streams {
    /// The cached copy of `stream`, if any.
    pub(crate) fn get(&self, stream: &str) -> Option<Cached> {
        let mut generations = self.lock();
        if let Some(cached) = generations.current.get(stream) {
            return Some(cached.clone());
        }
        let cached = generations.previous.remove(stream)?;
        generations.insert(stream, cached.clone());
        Some(cached)
    }

    /// `commits` are all of `stream` as of now (just read from the database). A longer copy
    /// already here stays: both are prefixes of the stream, and an append may have extended
    /// the copy while this one was being read.
    pub(crate) fn put(&self, stream: &str, commits: Arc<Vec<Arc<Commit>>>) {
        let mut generations = self.lock();
        let known = generations
            .current
            .get(stream)
            .or_else(|| generations.previous.get(stream))
            .map(|c| c.commits.len());
        if known.is_some_and(|known| known > commits.len()) {
            return;
        }
        let cached = Cached {
            commits,
            checked: Some(Instant::now()),
        };
        generations.previous.remove(stream);
        generations.insert(stream, cached);
    }

    /// `commit` was just appended: extends the cached stream if it ends right before it, and
    /// forgets the stream otherwise (the next load reads it).
    pub(crate) fn appended(&self, commit: &Commit) {
        let cached = self.get(&commit.stream);
        match cached {
            Some(cached) if cached.commits.len() as u64 + 1 == commit.version => {
                let mut longer = Vec::with_capacity(cached.commits.len() + 1);
                longer.extend(cached.commits.iter().cloned());
                longer.push(Arc::new(commit.clone()));
                self.put(&commit.stream, Arc::new(longer));
            }
            Some(_) => self.forget(&commit.stream),
            // A stream written blind (a new stream at version 1) is known whole.
            None if commit.version == 1 => {
                self.put(&commit.stream, Arc::new(vec![Arc::new(commit.clone())]))
            }
            None => {}
        }
    }

    /// `stream` has commits this copy lacks (an append to it conflicted): the next load reads
    /// them, after what is kept. A stream not kept here is kept as known to exist, so that a
    /// load expecting it new reads it instead.
    pub(crate) fn behind(&self, stream: &str) {
        let mut generations = self.lock();
        let kept = generations
            .current
            .remove(stream)
            .or_else(|| generations.previous.remove(stream));
        let cached = Cached {
            commits: kept.map(|k| k.commits).unwrap_or_default(),
            checked: None,
        };
        generations.insert(stream, cached);
    }

    /// Drops `stream`: a write's outcome is unknown.
    pub(crate) fn forget(&self, stream: &str) {
        let mut generations = self.lock();
        generations.current.remove(stream);
        generations.previous.remove(stream);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Generations> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Generations {
    fn insert(&mut self, stream: &str, cached: Cached) {
        if self.current.len() >= GENERATION && !self.current.contains_key(stream) {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert(stream.to_owned(), cached);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(stream: &str, version: u64) -> Commit {
        Commit::empty(stream, version)
    }

    fn len(streams: &Streams, stream: &str) -> Option<usize> {
        streams.get(stream).map(|c| c.commits.len())
    }

    #[test]
    fn appends_extend_a_cached_stream_and_a_gap_forgets_it() {
        let streams = Streams::default();
        assert!(streams.get("s").is_none());
        streams.appended(&commit("s", 1));
        assert_eq!(len(&streams, "s"), Some(1), "a new stream is known whole");
        streams.appended(&commit("s", 2));
        assert_eq!(len(&streams, "s"), Some(2));
        streams.appended(&commit("s", 4));
        assert_eq!(len(&streams, "s"), None, "a gap: read it again");
        streams.appended(&commit("t", 3));
        assert_eq!(len(&streams, "t"), None, "the start of t is unknown here");
    }

    #[test]
    fn a_shorter_read_never_replaces_a_longer_copy() {
        let streams = Streams::default();
        streams.put(
            "s",
            Arc::new(vec![Arc::new(commit("s", 1)), Arc::new(commit("s", 2))]),
        );
        streams.put("s", Arc::new(vec![Arc::new(commit("s", 1))]));
        assert_eq!(len(&streams, "s"), Some(2));
    }

    #[test]
    fn a_copy_behind_is_kept_but_not_trusted_and_an_unknown_one_is_known_to_exist() {
        let streams = Streams::default();
        streams.put("s", Arc::new(vec![Arc::new(commit("s", 1))]));
        streams.behind("s");
        let kept = streams.get("s").unwrap();
        assert_eq!(kept.commits.len(), 1, "what it had is still folded on");
        assert!(!kept.is_fresh());
        streams.behind("t");
        let t = streams.get("t").expect("a stream that conflicted exists");
        assert!(t.commits.is_empty() && !t.is_fresh());
        streams.put("t", Arc::new(vec![Arc::new(commit("t", 1))]));
        assert!(
            streams.get("t").unwrap().is_fresh(),
            "read again, trusted again"
        );
    }

    #[test]
    fn a_fresh_copy_is_trusted_and_a_forgotten_one_is_gone() {
        let streams = Streams::default();
        streams.put("s", Arc::new(vec![Arc::new(commit("s", 1))]));
        assert!(streams.get("s").unwrap().is_fresh());
        streams.forget("s");
        assert!(streams.get("s").is_none());
    }

    #[test]
    fn streams_not_used_for_a_generation_are_dropped_and_used_ones_kept() {
        let streams = Streams::default();
        streams.put("hot", Arc::new(vec![Arc::new(commit("hot", 1))]));
        for i in 0..GENERATION {
            let name = format!("cold-{i}");
            streams.put(&name, Arc::new(vec![Arc::new(commit(&name, 1))]));
            if i % 100 == 0 {
                assert_eq!(len(&streams, "hot"), Some(1));
            }
        }
        for i in 0..GENERATION {
            let name = format!("colder-{i}");
            streams.put(&name, Arc::new(vec![Arc::new(commit(&name, 1))]));
        }
        assert_eq!(
            len(&streams, "cold-1"),
            None,
            "dropped after two generations unused"
        );
        assert_eq!(len(&streams, "colder-1"), Some(1));
    }
}
