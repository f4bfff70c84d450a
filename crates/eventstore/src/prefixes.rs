//! The commits of recently used streams, kept in memory.
//!
//! Commits are immutable and a stream only grows, so a cached prefix of a stream is never
//! wrong, only possibly short: a load takes the prefix and asks the database for the commits
//! after it, which also catches up with other replicas' writes. A stream touched by every sale
//! (a campaign's budget) then costs one lookup per load instead of one per commit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::Commit;

/// Streams per generation: the cache holds between one and two generations' worth.
const GENERATION: usize = 4096;

/// Two generations of streams: a stream used in the current one stays; one not used since the
/// previous one began is dropped when the current one fills up. An LRU in all but name,
/// without a dependency.
#[derive(Default)]
pub(crate) struct Prefixes {
    inner: Mutex<Generations>,
}

#[derive(Default)]
struct Generations {
    current: HashMap<String, Arc<Vec<Commit>>>,
    previous: HashMap<String, Arc<Vec<Commit>>>,
}

impl Prefixes {
    /// The cached commits of `stream`, from version 1 (empty if none).
    pub(crate) fn get(&self, stream: &str) -> Arc<Vec<Commit>> {
        let mut generations = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(commits) = generations.current.get(stream) {
            return commits.clone();
        }
        match generations.previous.remove(stream) {
            Some(commits) => {
                generations.insert(stream, commits.clone());
                commits
            }
            None => Arc::default(),
        }
    }

    /// Remembers `commits` as `stream`'s, unless a longer prefix is already known.
    pub(crate) fn put(&self, stream: &str, commits: Arc<Vec<Commit>>) {
        let mut generations = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let known = generations
            .current
            .get(stream)
            .or_else(|| generations.previous.get(stream))
            .map_or(0, |c| c.len());
        if commits.len() > known {
            generations.previous.remove(stream);
            generations.insert(stream, commits);
        }
    }

    /// `commit` was just appended: extends the cached prefix if it ends right before it.
    pub(crate) fn appended(&self, commit: &Commit) {
        let cached = self.get(&commit.stream);
        if cached.len() as u64 + 1 == commit.version {
            let mut longer = Vec::with_capacity(cached.len() + 1);
            longer.extend(cached.iter().cloned());
            longer.push(commit.clone());
            self.put(&commit.stream, Arc::new(longer));
        }
    }
}

impl Generations {
    fn insert(&mut self, stream: &str, commits: Arc<Vec<Commit>>) {
        if self.current.len() >= GENERATION {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert(stream.to_owned(), commits);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn commit(stream: &str, version: u64) -> Commit {
        Commit {
            stream: stream.into(),
            version,
            events: Vec::new(),
            outbox: Vec::new(),
            handled: Some(format!("m-{version}")),
            recorded_at: Utc::now(),
            published: true,
        }
    }

    #[test]
    fn a_prefix_only_grows_and_appends_extend_it() {
        let prefixes = Prefixes::default();
        assert!(prefixes.get("s").is_empty());
        prefixes.put("s", Arc::new(vec![commit("s", 1), commit("s", 2)]));
        prefixes.put("s", Arc::new(vec![commit("s", 1)]));
        assert_eq!(
            prefixes.get("s").len(),
            2,
            "a shorter prefix never replaces a longer"
        );
        prefixes.appended(&commit("s", 3));
        assert_eq!(prefixes.get("s").len(), 3);
        prefixes.appended(&commit("s", 5));
        assert_eq!(
            prefixes.get("s").len(),
            3,
            "a gap is left for the next load to fill"
        );
    }

    #[test]
    fn streams_not_used_for_a_generation_are_dropped_and_used_ones_kept() {
        let prefixes = Prefixes::default();
        prefixes.put("hot", Arc::new(vec![commit("hot", 1)]));
        for i in 0..GENERATION {
            let name = format!("cold-{i}");
            prefixes.put(&name, Arc::new(vec![commit(&name, 1)]));
            if i % 100 == 0 {
                assert_eq!(prefixes.get("hot").len(), 1);
            }
        }
        for i in 0..GENERATION {
            let name = format!("colder-{i}");
            prefixes.put(&name, Arc::new(vec![commit(&name, 1)]));
        }
        assert!(
            prefixes.get("cold-1").is_empty(),
            "dropped after two generations unused"
        );
        assert_eq!(prefixes.get("colder-1").len(), 1);
    }
}
