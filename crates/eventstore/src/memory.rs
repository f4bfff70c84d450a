//! The in-memory store: the same contract, for domain and application tests without I/O.

use std::sync::{Arc, Mutex};

use chrono::Utc;
use tokio::sync::Notify;

use crate::{Commit, EventStore, NewCommit, StoreError, Stream};

/// Commits in a vector, in recording order. Cloning shares the same data.
#[derive(Clone, Default)]
pub struct MemoryStore {
    commits: Arc<Mutex<Vec<Commit>>>,
    /// Positions in `commits` whose outbox is not published yet.
    unpublished: Arc<Mutex<Vec<usize>>>,
    appended: Arc<Notify>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn commits(&self) -> std::sync::MutexGuard<'_, Vec<Commit>> {
        lock(&self.commits)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl EventStore for MemoryStore {
    async fn load(&self, stream: &str) -> Result<Stream, StoreError> {
        let commits = self.commits();
        Ok(Stream {
            name: stream.to_owned(),
            commits: Arc::new(
                commits
                    .iter()
                    .filter(|c| c.stream == stream)
                    .map(|c| Arc::new(c.clone()))
                    .collect(),
            ),
        })
    }

    async fn append(&self, commit: NewCommit) -> Result<Commit, StoreError> {
        let mut commits = self.commits();
        let current = commits
            .iter()
            .filter(|c| c.stream == commit.stream)
            .map(|c| c.version)
            .max()
            .unwrap_or(0);
        if current != commit.expected_version {
            return Err(StoreError::Conflict {
                stream: commit.stream,
                expected: commit.expected_version,
            });
        }
        let stored = commit.into_commit(Utc::now());
        commits.push(stored.clone());
        if !stored.outbox.is_empty() {
            lock(&self.unpublished).push(commits.len() - 1);
        }
        drop(commits);
        self.appended.notify_one();
        Ok(stored)
    }

    async fn unpublished(&self, limit: usize) -> Result<Vec<Commit>, StoreError> {
        let commits = self.commits();
        Ok(lock(&self.unpublished)
            .iter()
            .take(limit)
            .map(|&i| commits[i].clone())
            .collect())
    }

    async fn mark_published(&self, published: &[Commit]) -> Result<(), StoreError> {
        let commits = self.commits();
        lock(&self.unpublished).retain(|&i| {
            !published
                .iter()
                .any(|p| p.stream == commits[i].stream && p.version == commits[i].version)
        });
        Ok(())
    }

    async fn replay(
        &self,
        after: Option<&Commit>,
        limit: usize,
    ) -> Result<Vec<Commit>, StoreError> {
        let commits = self.commits();
        let start = match after {
            None => 0,
            Some(after) => commits
                .iter()
                .position(|c| c.stream == after.stream && c.version == after.version)
                .map_or(commits.len(), |i| i + 1),
        };
        Ok(commits.iter().skip(start).take(limit).cloned().collect())
    }

    fn appended(&self) -> &Notify {
        &self.appended
    }
}

/// The in-memory store with a hand on it, for tests that put a crash or a race between two
/// writes of a use case: the next append to a stream whose name starts with a prefix fails as
/// if the process died before it ([`Probe::crash_before`]), or waits until let go
/// ([`Probe::pause_before`]). It also notes the streams loaded and counts the replays, for
/// tests of what a use case reads. Cloning shares the same store and the same hand.
#[derive(Clone, Default)]
pub struct Probe {
    store: MemoryStore,
    crash: Arc<Mutex<Option<String>>>,
    pause: Arc<Mutex<Option<Pause>>>,
    loads: Arc<Mutex<Vec<String>>>,
    replays: Arc<Mutex<usize>>,
}

struct Pause {
    prefix: String,
    reached: Arc<Notify>,
    resume: Arc<Notify>,
}

impl Probe {
    /// A probe over `store` (what an earlier test wrote, say).
    pub fn over(store: MemoryStore) -> Self {
        Self {
            store,
            ..Self::default()
        }
    }

    /// The store behind the probe, to read or write without the hand.
    pub fn store(&self) -> &MemoryStore {
        &self.store
    }

    /// The next append to a stream named `prefix…` fails with a write error, unwritten.
    pub fn crash_before(&self, prefix: &str) {
        *lock(&self.crash) = Some(prefix.into());
    }

    /// The next append to a stream named `prefix…` waits: the first [`Notify`] is told when it
    /// arrives, and it goes on when the second is.
    pub fn pause_before(&self, prefix: &str) -> (Arc<Notify>, Arc<Notify>) {
        let (reached, resume) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        *lock(&self.pause) = Some(Pause {
            prefix: prefix.into(),
            reached: reached.clone(),
            resume: resume.clone(),
        });
        (reached, resume)
    }

    /// The streams loaded since the probe was made or [`Probe::forget_loads`], in order.
    pub fn loads(&self) -> Vec<String> {
        lock(&self.loads).clone()
    }

    pub fn forget_loads(&self) {
        lock(&self.loads).clear();
    }

    /// How many pages were replayed.
    pub fn replays(&self) -> usize {
        *lock(&self.replays)
    }
}

/// Takes what `slot` holds if `applies` says it is for this append.
fn take_if<T>(slot: &Mutex<Option<T>>, applies: impl Fn(&T) -> bool) -> Option<T> {
    let mut slot = lock(slot);
    slot.as_ref().is_some_and(applies).then(|| slot.take())?
}

impl EventStore for Probe {
    async fn load(&self, stream: &str) -> Result<Stream, StoreError> {
        lock(&self.loads).push(stream.to_owned());
        self.store.load(stream).await
    }

    async fn append(&self, commit: NewCommit) -> Result<Commit, StoreError> {
        if take_if(&self.crash, |p| commit.stream.starts_with(p.as_str())).is_some() {
            return Err(StoreError::Write("crashed before the write".into()));
        }
        if let Some(pause) = take_if(&self.pause, |p| commit.stream.starts_with(&p.prefix)) {
            pause.reached.notify_one();
            pause.resume.notified().await;
        }
        self.store.append(commit).await
    }

    async fn unpublished(&self, limit: usize) -> Result<Vec<Commit>, StoreError> {
        self.store.unpublished(limit).await
    }

    async fn mark_published(&self, commits: &[Commit]) -> Result<(), StoreError> {
        self.store.mark_published(commits).await
    }

    async fn replay(
        &self,
        after: Option<&Commit>,
        limit: usize,
    ) -> Result<Vec<Commit>, StoreError> {
        *lock(&self.replays) += 1;
        self.store.replay(after, limit).await
    }

    fn appended(&self) -> &Notify {
        self.store.appended()
    }
}
