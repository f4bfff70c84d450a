//! The in-memory store: the same contract, for domain and application tests without I/O.

use std::sync::{Arc, Mutex};

use chrono::Utc;
use tokio::sync::Notify;

use crate::{Commit, EventStore, NewCommit, StoreError, Stream};

/// Commits in a vector, in recording order. Cloning shares the same data.
#[derive(Clone, Default)]
pub struct MemoryStore {
    commits: Arc<Mutex<Vec<Commit>>>,
    appended: Arc<Notify>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn commits(&self) -> std::sync::MutexGuard<'_, Vec<Commit>> {
        self.commits
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl EventStore for MemoryStore {
    async fn load(&self, stream: &str) -> Result<Stream, StoreError> {
        let commits = self.commits();
        Ok(Stream {
            name: stream.to_owned(),
            commits: commits
                .iter()
                .filter(|c| c.stream == stream)
                .cloned()
                .collect(),
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
        drop(commits);
        self.appended.notify_one();
        Ok(stored)
    }

    async fn unpublished(&self, limit: usize) -> Result<Vec<Commit>, StoreError> {
        let commits = self.commits();
        Ok(commits
            .iter()
            .filter(|c| !c.published)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn mark_published(&self, stream: &str, version: u64) -> Result<(), StoreError> {
        let mut commits = self.commits();
        if let Some(c) = commits
            .iter_mut()
            .find(|c| c.stream == stream && c.version == version)
        {
            c.published = true;
        }
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
