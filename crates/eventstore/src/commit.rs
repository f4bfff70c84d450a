//! What is stored: commits, and the streams they make up.

use std::sync::Arc;

use alpes_bus::Outgoing;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A domain event as stored: its kind and its fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// The domain event's name, e.g. `BudgetReserved`.
    pub kind: String,
    pub data: serde_json::Value,
}

impl StoredEvent {
    /// Stores a serializable domain event under `kind`.
    pub fn new(kind: impl Into<String>, event: &impl Serialize) -> Result<Self, serde_json::Error> {
        Ok(Self {
            kind: kind.into(),
            data: serde_json::to_value(event)?,
        })
    }

    /// The event as a domain type.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        T::deserialize(&self.data)
    }
}

/// One command's effect, to be appended if the stream is still at `expected_version`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCommit {
    pub stream: String,
    /// The stream's version the command decided on (0 for a new stream).
    pub expected_version: u64,
    pub events: Vec<StoredEvent>,
    /// Integration events to publish once the commit is stored.
    pub outbox: Vec<Outgoing>,
    /// The id of the message whose handling this is (its event id), for deduplication.
    pub handled: Option<String>,
}

/// A stored commit. A stream's version counts its commits.
#[derive(Debug, Clone, PartialEq)]
pub struct Commit {
    pub stream: String,
    /// This commit's position in its stream, from 1.
    pub version: u64,
    pub events: Vec<StoredEvent>,
    pub outbox: Vec<Outgoing>,
    pub handled: Option<String>,
    pub recorded_at: DateTime<Utc>,
}

#[cfg(test)]
impl Commit {
    /// An empty commit of `stream` at `version`, for tests of what tracks commits.
    pub(crate) fn empty(stream: &str, version: u64) -> Self {
        Self {
            stream: stream.into(),
            version,
            events: Vec::new(),
            outbox: Vec::new(),
            handled: None,
            recorded_at: Utc::now(),
        }
    }
}

impl NewCommit {
    pub(crate) fn into_commit(self, recorded_at: DateTime<Utc>) -> Commit {
        Commit {
            version: self.expected_version + 1,
            stream: self.stream,
            events: self.events,
            outbox: self.outbox,
            handled: self.handled,
            recorded_at,
        }
    }
}

/// A loaded stream: its commits in order, shared with the store's copy (a load copies nothing,
/// and extending the copy by an append copies pointers, not commits).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Stream {
    pub name: String,
    pub commits: Arc<Vec<Arc<Commit>>>,
}

impl Stream {
    /// A stream with no commits yet.
    pub fn empty(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            commits: Arc::default(),
        }
    }

    /// The version to expect when appending: the number of commits.
    pub fn version(&self) -> u64 {
        self.commits.last().map_or(0, |c| c.version)
    }

    /// Every domain event of the stream, oldest first: fold them to get the current state.
    pub fn events(&self) -> impl Iterator<Item = &StoredEvent> {
        self.commits.iter().flat_map(|c| &c.events)
    }

    /// Whether the message with this id was already handled on this stream.
    pub fn has_handled(&self, message_id: &str) -> bool {
        self.commits
            .iter()
            .any(|c| c.handled.as_deref() == Some(message_id))
    }
}
