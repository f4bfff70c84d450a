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
