//! The MongoDB store: one collection of commit documents, written in batches and read only when
//! the process does not already hold the stream.
//!
//! A commit's `_id` is `<stream>#<version>`. Appending is an insert: the unique `_id` makes a
//! second writer at the same version fail with a duplicate key, which becomes
//! [`StoreError::Conflict`]. No transaction, no read-modify-write, no update per commit.
//!
//! The access pattern is the design (figures in `shared/PERFORMANCE.md`): FerretDB 1.24 on
//! SQLite pushes nothing but `_id` equality down, so any other filter decodes every document.
//! So:
//! - loads come from the in-process copy of the stream (`streams`) and, for a stream not held
//!   or not confirmed lately, from consecutive `_id` lookups;
//! - appends are batched into one `insert_many` by the `writer` task;
//! - the outbox is published from memory; a dead process's is found through its ledger by
//!   `_id` lookups (`outbox`), never by a sweep of the collection.
//!
//! Only [`EventStore::replay`], the rebuild of a read model, reads the whole collection.

mod document;
mod outbox;
mod writer;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use mongodb::bson::{self, Document, doc};
use mongodb::options::{FindOptions, IndexOptions};
use mongodb::{Collection, IndexModel};
use tokio::sync::{Notify, mpsc, oneshot};

use crate::streams::{self, Streams};
use crate::{Commit, EventStore, NewCommit, StoreError, Stream};
use document::{CommitDocument, commit_id, from_document};
use outbox::{Identity, Keeper, Outbox};
use writer::{Answer, Write, Writer};

/// Appends waiting for the writer at most; more wait to be queued (back-pressure).
const QUEUE: usize = 4096;

/// How long an append waits for its write's answer before it fails (and is retried).
const APPEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Event streams in the `commits` collection of one database. Cloning shares everything.
#[derive(Clone)]
pub struct MongoStore {
    inner: Arc<Inner>,
}

struct Inner {
    commits: Collection<Document>,
    writes: mpsc::Sender<Write>,
    streams: Streams,
    outbox: Arc<Mutex<Outbox>>,
    appended: Arc<Notify>,
    identity: Identity,
    /// Since when the writer's write in flight has been waiting, if one is.
    busy_since: Arc<Mutex<Option<Instant>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.identity.release();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl MongoStore {
    /// Connects to `url` (e.g. `mongodb://127.0.0.1:27017`) and uses database `database`.
    /// Before it returns, the outboxes of this database's dead writers (a crashed predecessor)
    /// are adopted, so the relay publishes them first.
    pub async fn connect(url: &str, database: &str) -> Result<Self, StoreError> {
        let client = mongodb::Client::with_uri_str(url).await?;
        let database = client.database(database);
        let commits = database.collection::<Document>("commits");
        prepare_indexes(&database, &commits).await?;
        let identity = Identity::new();
        let outbox = Arc::new(Mutex::new(Outbox::new(identity.instance.clone(), 0)));
        let appended = Arc::new(Notify::new());
        let mut keeper = Keeper::new(
            database.collection("relays"),
            commits.clone(),
            identity.clone(),
            outbox.clone(),
        );
        // A registry that cannot be read now must not keep the service from starting: the
        // keeper tries again every second.
        if let Err(e) = keeper.tick().await {
            tracing::warn!(error = %e, "outbox registry: adopting dead instances later");
        }

        let (writes, appends) = mpsc::channel(QUEUE);
        let busy_since = Arc::new(Mutex::new(None));
        tokio::spawn(
            Writer {
                appends,
                commits: commits.clone(),
                instance: identity.instance.clone(),
                outbox: outbox.clone(),
                appended: appended.clone(),
                writes: 0,
                busy_since: busy_since.clone(),
            }
            .run(),
        );
        let inner = Arc::new(Inner {
            commits,
            writes,
            streams: Streams::default(),
            outbox,
            appended,
            identity,
            busy_since,
        });
        tokio::spawn(keeper.run(Arc::downgrade(&inner)));
        Ok(Self { inner })
    }

    /// Answers when the database does and the writer is moving: a readiness check.
    pub async fn ping(&self) -> Result<(), StoreError> {
        if self.inner.writes.is_closed() {
            return Err(StoreError::Write("the writer stopped".into()));
        }
        let waiting = lock(&self.inner.busy_since).map(|since| since.elapsed());
        if let Some(waiting) = waiting.filter(|w| *w > APPEND_TIMEOUT) {
            return Err(StoreError::Write(format!(
                "a write has waited {} s for the database",
                waiting.as_secs()
            )));
        }
        self.inner.commits.find_one(doc! { "_id": "" }).await?;
        Ok(())
    }

    /// The commits of `stream` after the first `known`, by `_id` lookups until one misses.
    async fn commits_after(&self, stream: &str, known: usize) -> Result<Vec<Commit>, StoreError> {
        let mut found = Vec::new();
        loop {
            let id = commit_id(stream, (known + found.len()) as u64 + 1);
            let Some(document) = self.inner.commits.find_one(doc! { "_id": id }).await? else {
                return Ok(found);
            };
            found.push(Commit::from(from_document::<CommitDocument>(document)?));
        }
    }
}

/// The one index besides `_id`'s: replay's order, for MongoDB. FerretDB/SQLite never uses an
/// index but `_id`'s, and each one costs every insert, so there the store keeps none, and drops
/// those older versions created.
async fn prepare_indexes(
    database: &mongodb::Database,
    commits: &Collection<Document>,
) -> Result<(), StoreError> {
    let build = database.run_command(doc! { "buildInfo": 1 }).await?;
    let ferretdb = build.contains_key("ferretdbVersion");
    let existing = commits.list_index_names().await.unwrap_or_default();
    for unused in ["stream_version", "unpublished"]
        .into_iter()
        .chain(ferretdb.then_some("recorded"))
    {
        if existing.iter().any(|e| e == unused) {
            commits.drop_index(unused).await?;
        }
    }
    // Only when missing: FerretDB 1.24 drops the connection when asked to create an existing one.
    if !ferretdb && !existing.iter().any(|e| e == "recorded") {
        let options = IndexOptions::builder().name("recorded".to_owned()).build();
        let index = IndexModel::builder()
            .keys(doc! { "recorded_at": 1, "_id": 1 })
            .options(options)
            .build();
        commits.create_index(index).await?;
    }
    Ok(())
}

impl MongoStore {
    /// `stream` from the copy held here when `trust_copy` accepts it, else from that copy and
    /// the commits after it, read by `_id`.
    async fn load_from(
        &self,
        stream: &str,
        trust_copy: impl FnOnce(&streams::Cached) -> bool,
    ) -> Result<Stream, StoreError> {
        let cached = self.inner.streams.get(stream);
        let commits = match cached {
            Some(cached) if trust_copy(&cached) => cached.commits,
            cached => {
                let known = cached.map(|c| c.commits).unwrap_or_default();
                let newer = self.commits_after(stream, known.len()).await?;
                let commits = if newer.is_empty() {
                    known
                } else {
                    let mut commits = Vec::with_capacity(known.len() + newer.len());
                    commits.extend(known.iter().cloned());
                    commits.extend(newer.into_iter().map(Arc::new));
                    Arc::new(commits)
                };
                self.inner.streams.put(stream, commits.clone());
                commits
            }
        };
        Ok(Stream {
            name: stream.to_owned(),
            commits,
        })
    }
}

impl EventStore for MongoStore {
    async fn load(&self, stream: &str) -> Result<Stream, StoreError> {
        self.load_from(stream, streams::Cached::is_fresh).await
    }

    async fn load_latest(&self, stream: &str) -> Result<Stream, StoreError> {
        self.load_from(stream, |_| false).await
    }

    async fn load_known(&self, stream: &str) -> Result<Option<Stream>, StoreError> {
        if self.inner.streams.get(stream).is_none() {
            return Ok(None);
        }
        self.load(stream).await.map(Some)
    }

    async fn append(&self, commit: NewCommit) -> Result<Commit, StoreError> {
        let mut stored = self.append_chain(vec![commit]).await?;
        stored
            .pop()
            .ok_or_else(|| StoreError::Write("an append stored nothing".into()))
    }

    async fn append_chain(&self, commits: Vec<NewCommit>) -> Result<Vec<Commit>, StoreError> {
        let recorded_at = chrono::Utc::now();
        let commits: Vec<Commit> = commits
            .into_iter()
            .map(|c| c.into_commit(recorded_at))
            .collect();
        if commits.is_empty() {
            return Ok(commits);
        }
        let (done, written) = oneshot::channel();
        let write = Write {
            commits: commits.clone(),
            done,
        };
        // A caller that gives up does not stop the write: if it lands, its outbox is published,
        // and the caller's retry finds the commits (a conflict, then `has_handled`).
        let unknown = |reason: String| Answer {
            stored: 0,
            refused: Some(StoreError::Write(reason)),
        };
        let (answer, known) = match self.inner.writes.send(write).await {
            Ok(()) => match tokio::time::timeout(APPEND_TIMEOUT, written).await {
                Ok(Ok(answer)) => (answer, true),
                Ok(Err(_)) => (unknown("the writer stopped".into()), false),
                Err(_) => (
                    unknown(format!(
                        "no answer from the database within {APPEND_TIMEOUT:?}"
                    )),
                    false,
                ),
            },
            Err(_) => (unknown("the writer stopped".into()), false),
        };
        for commit in &commits[..answer.stored] {
            self.inner.streams.appended(commit);
        }
        let Some(refused) = answer.refused else {
            return Ok(commits);
        };
        match &refused {
            StoreError::Conflict { stream, .. } => self.inner.streams.behind(stream),
            // What was written is not known: the next load reads these streams.
            _ if !known => commits
                .iter()
                .for_each(|c| self.inner.streams.forget(&c.stream)),
            _ => self.inner.streams.forget(&commits[answer.stored].stream),
        }
        Err(refused)
    }

    async fn unpublished(&self, limit: usize) -> Result<Vec<Commit>, StoreError> {
        Ok(lock(&self.inner.outbox).unpublished(limit))
    }

    async fn mark_published(&self, commits: &[Commit]) -> Result<(), StoreError> {
        lock(&self.inner.outbox).published(commits);
        Ok(())
    }

    async fn replay(
        &self,
        after: Option<&Commit>,
        limit: usize,
    ) -> Result<Vec<Commit>, StoreError> {
        // Commits only: ledger entries have no stream.
        let filter = match after {
            None => doc! { "stream": { "$exists": true } },
            Some(after) => {
                let at = bson::DateTime::from_millis(after.recorded_at.timestamp_millis());
                let id = commit_id(&after.stream, after.version);
                doc! { "stream": { "$exists": true }, "$or": [
                    { "recorded_at": { "$gt": at } },
                    { "recorded_at": at, "_id": { "$gt": id } },
                ] }
            }
        };
        let options = FindOptions::builder()
            .sort(doc! { "recorded_at": 1, "_id": 1 })
            .limit(limit as i64)
            .build();
        let documents: Vec<Document> = self
            .inner
            .commits
            .find(filter)
            .with_options(options)
            .await?
            .try_collect()
            .await?;
        documents
            .into_iter()
            .map(|d| from_document::<CommitDocument>(d).map(Commit::from))
            .collect()
    }

    async fn scan(&self, visit: &mut (dyn FnMut(Commit) + Send)) -> Result<u64, StoreError> {
        // One query, no sort: the server reads the collection once, in batches.
        let options = FindOptions::builder().batch_size(1_000).build();
        let mut cursor = self
            .inner
            .commits
            .find(doc! { "stream": { "$exists": true } })
            .with_options(options)
            .await?;
        let mut seen = 0;
        while let Some(document) = cursor.try_next().await? {
            visit(from_document::<CommitDocument>(document).map(Commit::from)?);
            seen += 1;
        }
        Ok(seen)
    }

    fn appended(&self) -> &Notify {
        &self.inner.appended
    }
}
