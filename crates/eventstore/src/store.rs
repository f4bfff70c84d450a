//! The store's contract, its errors, and the reload-and-retry loop for conflicts.

use std::future::Future;

use crate::{Commit, NewCommit, Stream};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another writer appended to the stream since it was loaded: reload and decide again.
    #[error("stream {stream} moved past version {expected}: concurrent write")]
    Conflict { stream: String, expected: u64 },
    #[error("MongoDB: {0}")]
    Mongo(#[from] mongodb::error::Error),
    /// A write failed, or its outcome is unknown: the stream is read again before the next try.
    #[error("MongoDB write: {0}")]
    Write(String),
    #[error("stored data does not read back: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether the same operation may succeed later: an outage, an unknown write outcome and a
    /// conflict may pass; data that does not read back stays so.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, Self::Corrupt(_))
    }
}

/// Event streams with conditional append and an outbox.
pub trait EventStore: Clone + Send + Sync + 'static {
    /// Every commit of `stream`, oldest first (empty for a new stream).
    fn load(&self, stream: &str) -> impl Future<Output = Result<Stream, StoreError>> + Send;

    /// `stream` as far as this process knows it, without reading the database when it knows
    /// nothing of it: then `None`, and the caller takes the stream as new. For streams that are
    /// nearly always new when first touched (a new visitor's first journey), whose read would
    /// find nothing. The caller must append to the stream (at version 1) for its decision to
    /// stand: if the stream exists after all, that append conflicts, and the next call reads it.
    /// The default reads, as [`EventStore::load`] does.
    fn load_known(
        &self,
        stream: &str,
    ) -> impl Future<Output = Result<Option<Stream>, StoreError>> + Send {
        async move { self.load(stream).await.map(Some) }
    }

    /// `stream` as the database has it now: [`EventStore::load`] without trusting a copy held
    /// in memory, however recent (when nothing is newer, one `_id` lookup says so). For a
    /// decision that appends nothing ("nothing to undo", "nothing to credit yet"): with
    /// replicas, a copy read a moment ago may lack what another replica just appended, and only
    /// an append would have revealed it. The default is `load`.
    fn load_latest(&self, stream: &str) -> impl Future<Output = Result<Stream, StoreError>> + Send {
        self.load(stream)
    }

    /// Appends `commit` if its stream is still at `commit.expected_version`, in one atomic
    /// write; otherwise fails with [`StoreError::Conflict`] and writes nothing.
    fn append(&self, commit: NewCommit) -> impl Future<Output = Result<Commit, StoreError>> + Send;

    /// Appends `commits` in order, each only if every one before it was stored and its stream
    /// is still at its `expected_version`: the same as appending them one after the other and
    /// stopping at the first that fails, in one write where the store can (a use case that
    /// decides several commits at once pays for one). Returns them stored; otherwise the error
    /// of the first that was not, when those before it are stored and those after it are not
    /// (a caller retries as after a crash between two appends: it reloads and decides again).
    fn append_chain(
        &self,
        commits: Vec<NewCommit>,
    ) -> impl Future<Output = Result<Vec<Commit>, StoreError>> + Send {
        async move {
            let mut stored = Vec::with_capacity(commits.len());
            for commit in commits {
                stored.push(self.append(commit).await?);
            }
            Ok(stored)
        }
    }

    /// Up to `limit` commits whose outbox is not published yet, in the order they must go out.
    fn unpublished(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Commit>, StoreError>> + Send;

    /// Records that the outboxes of `commits` (as returned by [`EventStore::unpublished`]) are
    /// published, so that neither this process nor a recovering one publishes them again.
    fn mark_published(
        &self,
        commits: &[Commit],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every commit of every stream, in the order they were recorded: the input of a
    /// projection rebuild. `after` is the last commit of the previous page.
    fn replay(
        &self,
        after: Option<&Commit>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Commit>, StoreError>> + Send;

    /// Every commit of every stream, each once, in no particular order (not even within a
    /// stream), handed to `visit` as it is read; returns how many. For one-time imports: on a
    /// server that pushes down nothing but `_id` equality (FerretDB/SQLite), each ordered page
    /// of [`EventStore::replay`] reads the whole collection, so a replay costs pages × size,
    /// while this reads it once. The default pages through `replay`.
    fn scan(
        &self,
        visit: &mut (dyn FnMut(Commit) + Send),
    ) -> impl Future<Output = Result<u64, StoreError>> + Send {
        async move {
            let mut seen = 0;
            let mut last: Option<Commit> = None;
            loop {
                let page = self.replay(last.as_ref(), 500).await?;
                let Some(tail) = page.last().cloned() else {
                    return Ok(seen);
                };
                seen += page.len() as u64;
                page.into_iter().for_each(&mut *visit);
                last = Some(tail);
            }
        }
    }

    /// Wakes the relay after an append, so outboxes go out without waiting for its poll.
    fn appended(&self) -> &tokio::sync::Notify;
}

/// Runs `attempt` (load, decide, append) until it does not conflict, at most `attempts` times.
pub async fn retry_on_conflict<T, F, Fut>(attempts: u32, mut attempt: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut tries = 1;
    loop {
        match attempt().await {
            Err(StoreError::Conflict { stream, expected }) if tries < attempts => {
                tracing::debug!(%stream, expected, tries, "conflict, reloading");
                tries += 1;
            }
            outcome => return outcome,
        }
    }
}
