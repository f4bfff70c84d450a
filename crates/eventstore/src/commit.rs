//! What is stored: commits, and the streams they make up.

use std::sync::Arc;

use alpes_aggregate::DomainEvent;
use alpes_bus::Outgoing;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::StoreError;

/// A domain event as stored: its kind, the version of its shape, and its fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// The domain event's name, e.g. `BudgetReserved`.
    pub kind: String,
    /// The version of the shape `data` was written in (absent, so 1, in what was stored before
    /// versions were kept, and left out while it is 1).
    #[serde(default = "first_version", skip_serializing_if = "is_first_version")]
    pub version: u32,
    pub data: serde_json::Value,
}

fn first_version() -> u32 {
    1
}

fn is_first_version(version: &u32) -> bool {
    *version == 1
}

impl StoredEvent {
    /// Stores a domain event, at its current version.
    pub fn of<E: DomainEvent>(event: &E) -> Result<Self, serde_json::Error> {
        Ok(Self {
            kind: event.kind().to_owned(),
            version: E::VERSION,
            data: serde_json::to_value(event)?,
        })
    }

    /// The domain event, brought up to its current version first (see
    /// [`alpes_aggregate::read`]).
    pub fn read<E: DomainEvent>(&self) -> Result<E, serde_json::Error> {
        alpes_aggregate::read(&self.kind, self.version, &self.data)
            .map_err(serde::de::Error::custom)
    }

    /// `events`, to store in one commit.
    pub fn all<E: DomainEvent>(events: &[E]) -> Result<Vec<Self>, StoreError> {
        events
            .iter()
            .map(|event| {
                Self::of(event).map_err(|e| {
                    StoreError::Corrupt(format!("encoding {} for storage: {e}", event.kind()))
                })
            })
            .collect()
    }

    /// Stores a record that is not a domain event (a marker, an index entry) under `kind`.
    /// Such records have one shape, version 1, for ever.
    pub fn new(
        kind: impl Into<String>,
        record: &impl Serialize,
    ) -> Result<Self, serde_json::Error> {
        Ok(Self {
            kind: kind.into(),
            version: 1,
            data: serde_json::to_value(record)?,
        })
    }

    /// A record stored with [`StoredEvent::new`]; domain events are [`StoredEvent::read`].
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

    /// Every domain event of the stream read as `E`, oldest first (see [`StoredEvent::read`]).
    pub fn read<E: DomainEvent>(&self) -> Result<Vec<E>, StoreError> {
        self.events()
            .map(|event| {
                event.read().map_err(|e| {
                    StoreError::Corrupt(format!("{} ({}): {e}", self.name, event.kind))
                })
            })
            .collect()
    }

    /// Whether the message with this id was already handled on this stream.
    pub fn has_handled(&self, message_id: &str) -> bool {
        self.commits
            .iter()
            .any(|c| c.handled.as_deref() == Some(message_id))
    }
}
