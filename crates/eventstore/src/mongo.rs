//! The MongoDB store: one collection of commit documents.
//!
//! A commit's `_id` is `<stream>#<version>` (version zero-padded, so ids sort in stream order).
//! Appending is a plain insert: the unique `_id` makes a second writer at the same version fail
//! with a duplicate-key error, which becomes [`StoreError::Conflict`]. No transaction, no
//! read-modify-write: the single insert is atomic on MongoDB and on FerretDB alike.
//!
//! Hot paths query by `_id` equality only. FerretDB 1.24 on SQLite pushes nothing else down
//! to the database: a filter on `stream` or `published` reads every document (measured: 0.4 to
//! 0.7 s on 300 commits under load, against 0.03 s for an `_id` lookup). So a stream loads by
//! point lookups of its consecutive commit ids (after the prefix this process already holds,
//! see `prefixes`), and the relay learns of this process's new
//! commits from the appends themselves; only its start-up and a periodic sweep (for commits
//! another replica wrote and could not publish) scan for unpublished commits.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alpes_bus::Outgoing;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use mongodb::bson::{self, doc};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::{FindOptions, IndexOptions};
use mongodb::{Collection, IndexModel};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, Notify};

use crate::prefixes::Prefixes;
use crate::{Commit, EventStore, NewCommit, StoreError, StoredEvent, Stream};

const DUPLICATE_KEY: i32 = 11000;

/// How often the relay's query also sweeps the whole collection for unpublished commits (left
/// by a replica that crashed between its write and its publish). On FerretDB/SQLite the sweep
/// reads every document, which stalls the shared writer for a second or more on a large
/// collection; a crashed replica's outbox waits at most this long, or until a restart.
const SWEEP_EVERY: Duration = Duration::from_secs(120);

/// Event streams in the `commits` collection of one database.
#[derive(Clone)]
pub struct MongoStore {
    commits: Collection<CommitDocument>,
    appended: Arc<Notify>,
    outbox: Arc<Mutex<Outbox>>,
    prefixes: Arc<Prefixes>,
}

/// This process's unpublished commits, and when the collection was last swept for others'.
#[derive(Default)]
struct Outbox {
    pending: BTreeMap<(i64, String), Commit>,
    last_sweep: Option<Instant>,
}

fn outbox_key(commit: &Commit) -> (i64, String) {
    (
        commit.recorded_at.timestamp_millis(),
        commit_id(&commit.stream, commit.version),
    )
}

#[derive(Debug, Serialize, Deserialize)]
struct CommitDocument {
    #[serde(rename = "_id")]
    id: String,
    stream: String,
    version: i64,
    events: Vec<StoredEvent>,
    outbox: Vec<Outgoing>,
    handled: Option<String>,
    recorded_at: bson::DateTime,
    published: bool,
}

fn commit_id(stream: &str, version: u64) -> String {
    format!("{stream}#{version:010}")
}

impl From<&Commit> for CommitDocument {
    fn from(c: &Commit) -> Self {
        Self {
            id: commit_id(&c.stream, c.version),
            stream: c.stream.clone(),
            version: c.version as i64,
            events: c.events.clone(),
            outbox: c.outbox.clone(),
            handled: c.handled.clone(),
            recorded_at: bson::DateTime::from_millis(c.recorded_at.timestamp_millis()),
            published: c.published,
        }
    }
}

impl From<CommitDocument> for Commit {
    fn from(d: CommitDocument) -> Self {
        Self {
            stream: d.stream,
            version: d.version as u64,
            events: d.events,
            outbox: d.outbox,
            handled: d.handled,
            recorded_at: DateTime::<Utc>::from_timestamp_millis(d.recorded_at.timestamp_millis())
                .unwrap_or_default(),
            published: d.published,
        }
    }
}

impl MongoStore {
    /// Connects to `url` (e.g. `mongodb://127.0.0.1:27017`) and uses database `database`,
    /// creating the indexes the store queries by.
    pub async fn connect(url: &str, database: &str) -> Result<Self, StoreError> {
        let client = mongodb::Client::with_uri_str(url).await?;
        let commits = client
            .database(database)
            .collection::<CommitDocument>("commits");
        // Only the missing ones: FerretDB 1.24 drops the connection when asked to create an
        // index that already exists (a restart of any service would do that).
        let existing = commits.list_index_names().await.unwrap_or_default();
        let wanted = [
            ("stream_version", doc! { "stream": 1, "version": 1 }),
            ("unpublished", doc! { "published": 1, "recorded_at": 1 }),
            ("recorded", doc! { "recorded_at": 1, "_id": 1 }),
        ];
        let missing: Vec<IndexModel> = wanted
            .into_iter()
            .filter(|(name, _)| !existing.iter().any(|e| e == name))
            .map(|(name, keys)| {
                let options = IndexOptions::builder().name(name.to_owned()).build();
                IndexModel::builder().keys(keys).options(options).build()
            })
            .collect();
        if !missing.is_empty() {
            commits.create_indexes(missing).await?;
        }
        Ok(Self {
            commits,
            appended: Arc::default(),
            outbox: Arc::default(),
            prefixes: Arc::default(),
        })
    }

    /// Answers when the database does: a readiness check.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.commits.count_documents(doc! { "_id": "" }).await?;
        Ok(())
    }

    async fn find(
        &self,
        filter: bson::Document,
        sort: bson::Document,
        limit: Option<usize>,
    ) -> Result<Vec<Commit>, StoreError> {
        let options = FindOptions::builder()
            .sort(sort)
            .limit(limit.map(|l| l as i64))
            .build();
        let documents: Vec<CommitDocument> = self
            .commits
            .find(filter)
            .with_options(options)
            .await?
            .try_collect()
            .await?;
        Ok(documents.into_iter().map(Commit::from).collect())
    }
}

impl EventStore for MongoStore {
    async fn load(&self, stream: &str) -> Result<Stream, StoreError> {
        let cached = self.prefixes.get(stream);
        let mut commits: Vec<Commit> = cached.iter().cloned().collect();
        while let Some(document) = self
            .commits
            .find_one(doc! { "_id": commit_id(stream, commits.len() as u64 + 1) })
            .await?
        {
            commits.push(Commit::from(document));
        }
        if commits.len() > cached.len() {
            self.prefixes.put(stream, Arc::new(commits.clone()));
        }
        Ok(Stream {
            name: stream.to_owned(),
            commits,
        })
    }

    async fn append(&self, commit: NewCommit) -> Result<Commit, StoreError> {
        let (stream, expected) = (commit.stream.clone(), commit.expected_version);
        let stored = commit.into_commit(Utc::now());
        match self.commits.insert_one(CommitDocument::from(&stored)).await {
            Ok(_) => {
                self.prefixes.appended(&stored);
                if !stored.published {
                    let mut outbox = self.outbox.lock().await;
                    outbox.pending.insert(outbox_key(&stored), stored.clone());
                }
                self.appended.notify_one();
                Ok(stored)
            }
            Err(e) if is_duplicate_key(&e) => Err(StoreError::Conflict { stream, expected }),
            Err(e) => Err(e.into()),
        }
    }

    async fn unpublished(&self, limit: usize) -> Result<Vec<Commit>, StoreError> {
        let mut outbox = self.outbox.lock().await;
        if outbox
            .last_sweep
            .is_none_or(|at| at.elapsed() >= SWEEP_EVERY)
        {
            let swept = self
                .find(
                    doc! { "published": false },
                    doc! { "recorded_at": 1, "_id": 1 },
                    Some(limit),
                )
                .await?;
            for commit in swept {
                outbox.pending.insert(outbox_key(&commit), commit);
            }
            outbox.last_sweep = Some(Instant::now());
        }
        Ok(outbox.pending.values().take(limit).cloned().collect())
    }

    async fn mark_published(&self, stream: &str, version: u64) -> Result<(), StoreError> {
        let id = commit_id(stream, version);
        self.commits
            .update_one(doc! { "_id": &id }, doc! { "$set": { "published": true } })
            .await?;
        self.outbox
            .lock()
            .await
            .pending
            .retain(|(_, pending), _| *pending != id);
        Ok(())
    }

    async fn replay(
        &self,
        after: Option<&Commit>,
        limit: usize,
    ) -> Result<Vec<Commit>, StoreError> {
        let filter = match after {
            None => doc! {},
            Some(after) => {
                let at = bson::DateTime::from_millis(after.recorded_at.timestamp_millis());
                let id = commit_id(&after.stream, after.version);
                doc! { "$or": [
                    { "recorded_at": { "$gt": at } },
                    { "recorded_at": at, "_id": { "$gt": id } },
                ] }
            }
        };
        self.find(filter, doc! { "recorded_at": 1, "_id": 1 }, Some(limit))
            .await
    }

    fn appended(&self) -> &Notify {
        &self.appended
    }
}

fn is_duplicate_key(error: &mongodb::error::Error) -> bool {
    match error.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(e)) => e.code == DUPLICATE_KEY,
        ErrorKind::InsertMany(e) => e
            .write_errors
            .as_ref()
            .is_some_and(|errors| errors.iter().any(|e| e.code == DUPLICATE_KEY)),
        _ => false,
    }
}
