//! The documents in the `commits` collection, and how commits map to them.
//!
//! Two kinds share the collection so that one `insert_many` writes a batch of commits and the
//! ledger entry naming them:
//!
//! - a commit, `_id` `<stream>#<version>` (zero-padded, so ids sort in stream order);
//! - a ledger entry, `_id` `outbox:<instance>#<seq>`: the commits with an outbox that one write
//!   of one process carried (see `outbox`).
//!
//! A commit's events are one JSON text, not an array of documents: FerretDB stores the type of
//! every field beside it and re-encodes the whole tree on each insert (a fifth of its CPU in its
//! own profile). As text, FerretDB's CPU per saga fell by a fifth (4.9 → 3.9 ms at 100 sagas/s,
//! `scripts/bench.sh`, README Performance). Nothing queries inside events: stores read commits
//! by `_id` only.
//! Outgoing payloads are BSON binary: as a `Vec<u8>` they became arrays of integers, 13 times
//! their size; their properties are one string. Older documents (events as an array, payloads
//! as integers, properties as a document) still read.

use std::collections::BTreeMap;

use alpes_bus::Outgoing;
use chrono::{DateTime, Utc};
use mongodb::bson::{self, Document};
use serde::{Deserialize, Serialize};

use crate::{Commit, StoreError, StoredEvent};

/// The `_id` of `stream`'s commit `version`.
pub(crate) fn commit_id(stream: &str, version: u64) -> String {
    format!("{stream}#{version:010}")
}

/// The `_id` prefix of ledger entries, which no stream name starts with.
pub(crate) const LEDGER_PREFIX: &str = "outbox:";

/// The `_id` of `instance`'s ledger entry `seq`.
pub(crate) fn ledger_id(instance: &str, seq: u64) -> String {
    format!("{LEDGER_PREFIX}{instance}#{seq:012}")
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct CommitDocument {
    #[serde(rename = "_id")]
    pub(crate) id: String,
    stream: String,
    version: i64,
    #[serde(with = "events_text")]
    events: Vec<StoredEvent>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    outbox: Vec<OutboxMessage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    handled: Option<String>,
    recorded_at: bson::DateTime,
    /// The ledger entry that names this commit, when it has an outbox: a recovering process
    /// publishes the commits of a dead process's entry that this field says are that entry's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ledger: Option<String>,
    /// The write that stored it (`<instance>#<n>`): when an interrupted write is sent again, a
    /// duplicate `_id` carrying this write's mark is its own commit, not another writer's.
    #[serde(default)]
    pub(crate) write: String,
}

/// An outgoing message as stored.
#[derive(Debug, Serialize, Deserialize)]
struct OutboxMessage {
    topic: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    event_type: Option<String>,
    key: String,
    #[serde(with = "serde_bytes")]
    payload: Vec<u8>,
    /// The message properties as one JSON text: as a document, FerretDB stores the type of
    /// every property beside it, doubling the commit.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    headers: String,
    /// How earlier versions stored them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    properties: BTreeMap<String, String>,
    event_time_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deliver_at_ms: Option<i64>,
}

/// A ledger entry: the commits one write carried that have an outbox.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct LedgerDocument {
    #[serde(rename = "_id")]
    pub(crate) id: String,
    pub(crate) commits: Vec<String>,
}

impl CommitDocument {
    pub(crate) fn new(commit: &Commit, ledger: Option<&str>, write: &str) -> Self {
        Self {
            id: commit_id(&commit.stream, commit.version),
            stream: commit.stream.clone(),
            version: commit.version as i64,
            events: commit.events.clone(),
            outbox: commit.outbox.iter().map(OutboxMessage::from).collect(),
            handled: commit.handled.clone(),
            recorded_at: bson::DateTime::from_millis(commit.recorded_at.timestamp_millis()),
            ledger: ledger.map(str::to_owned),
            write: write.to_owned(),
        }
    }
}

impl From<CommitDocument> for Commit {
    fn from(d: CommitDocument) -> Self {
        Self {
            stream: d.stream,
            version: d.version as u64,
            events: d.events,
            outbox: d.outbox.into_iter().map(Outgoing::from).collect(),
            handled: d.handled,
            recorded_at: DateTime::<Utc>::from_timestamp_millis(d.recorded_at.timestamp_millis())
                .unwrap_or_default(),
        }
    }
}

impl From<&Outgoing> for OutboxMessage {
    fn from(o: &Outgoing) -> Self {
        Self {
            topic: o.topic.clone(),
            event_type: o.event_type.clone(),
            key: o.key.clone(),
            payload: o.payload.clone(),
            headers: serde_json::to_string(&o.properties).unwrap_or_default(),
            properties: BTreeMap::new(),
            event_time_ms: o.event_time_ms as i64,
            deliver_at_ms: o.deliver_at_ms,
        }
    }
}

impl From<OutboxMessage> for Outgoing {
    fn from(m: OutboxMessage) -> Self {
        Self {
            topic: m.topic,
            event_type: m.event_type,
            key: m.key,
            payload: m.payload,
            properties: match serde_json::from_str(&m.headers) {
                Ok(headers) => headers,
                Err(_) => m.properties,
            },
            event_time_ms: m.event_time_ms.max(0) as u64,
            deliver_at_ms: m.deliver_at_ms,
        }
    }
}

/// A commit's events as one JSON text; read back from that or from the array of documents
/// earlier versions stored.
mod events_text {
    use serde::de::Error as _;
    use serde::ser::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::StoredEvent;

    pub(super) fn serialize<S: Serializer>(
        events: &[StoredEvent],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let text = serde_json::to_string(events).map_err(S::Error::custom)?;
        serializer.serialize_str(&text)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<StoredEvent>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Stored {
            Text(String),
            Documents(Vec<StoredEvent>),
        }
        match Stored::deserialize(deserializer)? {
            Stored::Text(text) => serde_json::from_str(&text).map_err(D::Error::custom),
            Stored::Documents(events) => Ok(events),
        }
    }
}

/// `value` as a BSON document.
pub(crate) fn to_document(value: &impl Serialize) -> Result<Document, StoreError> {
    bson::to_document(value).map_err(|e| StoreError::Corrupt(format!("encoding a document: {e}")))
}

/// A stored document as `T`.
pub(crate) fn from_document<T: serde::de::DeserializeOwned>(
    document: Document,
) -> Result<T, StoreError> {
    let id = document.get_str("_id").unwrap_or("?").to_owned();
    bson::from_document(document).map_err(|e| StoreError::Corrupt(format!("{id}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit() -> Commit {
        Commit {
            stream: "s".into(),
            version: 3,
            events: vec![
                StoredEvent {
                    kind: "Happened".into(),
                    version: 1,
                    data: serde_json::json!({"amount": 5}),
                },
                StoredEvent {
                    kind: "HappenedAgain".into(),
                    version: 2,
                    data: serde_json::json!({"cents": 500}),
                },
            ],
            outbox: vec![Outgoing {
                topic: "persistent://alpes/events/t".into(),
                event_type: Some("T".into()),
                key: "k".into(),
                payload: (0..=255).collect(),
                properties: BTreeMap::from([("a".into(), "b".into())]),
                event_time_ms: 1_700_000_000_000,
                deliver_at_ms: None,
            }],
            handled: Some("m".into()),
            recorded_at: DateTime::from_timestamp_millis(1_700_000_000_123).unwrap(),
        }
    }

    #[test]
    fn a_commit_reads_back_as_written_with_its_payload_as_binary() {
        let document =
            to_document(&CommitDocument::new(&commit(), Some("outbox:i#1"), "i#1")).unwrap();
        let payload = document.get_array("outbox").unwrap()[0]
            .as_document()
            .unwrap()
            .get("payload")
            .unwrap();
        assert!(matches!(payload, bson::Bson::Binary(b) if b.bytes.len() == 256));
        let events: serde_json::Value =
            serde_json::from_str(document.get_str("events").unwrap()).unwrap();
        assert_eq!(events[0].get("version"), None, "version 1 is left out");
        assert_eq!(events[1]["version"], 2);
        assert_eq!(events[1]["data"], serde_json::json!({"cents": 500}));
        let back: CommitDocument = from_document(document).unwrap();
        assert_eq!(back.ledger.as_deref(), Some("outbox:i#1"));
        assert_eq!(Commit::from(back), commit());
    }

    #[test]
    fn a_commit_as_earlier_versions_stored_it_still_reads() {
        let mut document = to_document(&CommitDocument::new(&commit(), None, "i#1")).unwrap();
        let integers: Vec<bson::Bson> = (0..=255).map(bson::Bson::Int32).collect();
        let message = document.get_array_mut("outbox").unwrap()[0]
            .as_document_mut()
            .unwrap();
        message.insert("payload", integers);
        message.remove("headers");
        message.insert("properties", bson::doc! { "a": "b" });
        let events = bson::to_bson(&commit().events).unwrap();
        assert!(matches!(events, bson::Bson::Array(_)));
        document.insert("events", events);
        let back: CommitDocument = from_document(document).unwrap();
        assert_eq!(Commit::from(back), commit());
    }
}
