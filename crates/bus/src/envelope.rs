//! What travels with an event's bytes: message properties, key and times.
//!
//! The event's metadata lives inside the Avro record; it is copied into message properties too,
//! so that tools, dead-letter inspection and tracing can read it without the schema.

use std::collections::BTreeMap;

use alpes_contracts::codec::{self, CodecError};
use alpes_contracts::{Event, EventMetadata};
use serde::{Deserialize, Serialize};

/// Names of the message properties alpes sets.
pub mod property {
    pub const EVENT_ID: &str = "alpes-event-id";
    pub const EVENT_TYPE: &str = "alpes-event-type";
    pub const SCHEMA_VERSION: &str = "alpes-schema-version";
    pub const OCCURRED_AT: &str = "alpes-occurred-at";
    pub const PRODUCER: &str = "alpes-producer";
    pub const SAGA_ID: &str = "alpes-saga-id";
    pub const CAUSATION_ID: &str = "alpes-causation-id";
    /// W3C trace context, under its standard names.
    pub const TRACEPARENT: &str = "traceparent";
    pub const TRACESTATE: &str = "tracestate";
    /// Delivery attempt, 1 for the first; set on copies sent to a retry topic.
    pub const ATTEMPT: &str = "alpes-attempt";
    /// Why the previous attempt asked for a retry.
    pub const RETRY_REASON: &str = "alpes-retry-reason";
    /// Why a message was dead-lettered.
    pub const DEAD_LETTER_REASON: &str = "alpes-dead-letter-reason";
    /// Topic and message id a retried or dead-lettered copy came from.
    pub const ORIGINAL_TOPIC: &str = "alpes-original-topic";
    pub const ORIGINAL_MESSAGE_ID: &str = "alpes-original-message-id";
    /// The broker's schema version of the original message, hex; copies keep decoding with it.
    pub const WRITER_SCHEMA_VERSION: &str = "alpes-writer-schema-version";
}

/// A message ready to publish: encoded, keyed and labelled. Also what an outbox stores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outgoing {
    /// Full topic name.
    pub topic: String,
    /// The event type, when the topic is an event topic whose schema the producer declares.
    pub event_type: Option<String>,
    /// Message key: Key_Shared keeps one key's messages in order on one consumer.
    pub key: String,
    /// Plain Avro binary (or, for dead letters, whatever bytes arrived).
    pub payload: Vec<u8>,
    pub properties: BTreeMap<String, String>,
    /// When the fact happened, milliseconds since the epoch.
    pub event_time_ms: u64,
    /// Deliver no earlier than this, milliseconds since the epoch (Shared/Key_Shared only).
    pub deliver_at_ms: Option<i64>,
}

impl Outgoing {
    /// Encodes `event` for its own topic.
    pub fn event<E: Event>(event: &E) -> Result<Self, CodecError> {
        let ty = E::event_type();
        let metadata = event.metadata();
        Ok(Self {
            topic: ty.topic(),
            event_type: Some(ty.name.to_owned()),
            key: event.key().to_owned(),
            payload: codec::encode(event)?,
            properties: metadata_properties(metadata),
            event_time_ms: metadata.occurred_at.timestamp_millis().max(0) as u64,
            deliver_at_ms: None,
        })
    }
}

fn metadata_properties(m: &EventMetadata) -> BTreeMap<String, String> {
    let mut properties = BTreeMap::from([
        (property::EVENT_ID.to_owned(), m.event_id.clone()),
        (property::EVENT_TYPE.to_owned(), m.event_type.clone()),
        (
            property::SCHEMA_VERSION.to_owned(),
            m.schema_version.to_string(),
        ),
        (property::OCCURRED_AT.to_owned(), m.occurred_at.to_rfc3339()),
        (property::PRODUCER.to_owned(), m.producer.clone()),
    ]);
    let optional = [
        (property::SAGA_ID, &m.saga_id),
        (property::CAUSATION_ID, &m.causation_id),
        (property::TRACEPARENT, &m.traceparent),
        (property::TRACESTATE, &m.tracestate),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            properties.insert(name.to_owned(), value.clone());
        }
    }
    properties
}

/// One decoded message handed to a subscription's handler.
#[derive(Debug, Clone)]
pub struct Delivery<E> {
    pub event: E,
    /// 1 for the first delivery, then one more per retry.
    pub attempt: u32,
    /// How many attempts the subscription makes at a message: a retry asked for on the last
    /// one is a dead letter instead.
    pub max_attempts: u32,
    /// The topic it was read from (the event topic or the subscription's retry topic).
    pub topic: String,
    /// The broker's message id, `ledger:entry:partition:batch`.
    pub message_id: String,
    /// The message key (saga, visitor or campaign).
    pub key: Option<String>,
    pub properties: BTreeMap<String, String>,
    /// Pulsar's event time, milliseconds since the epoch, when the producer set one.
    pub event_time_ms: Option<u64>,
}

impl<E> Delivery<E> {
    /// Whether another attempt may follow this one: a use case that waits for something still
    /// on its way (another topic's event) decides for good on the last one, because a
    /// business refusal is an event, never a dead letter.
    pub fn kind_of_attempt(&self) -> Attempt {
        if self.attempt >= self.max_attempts {
            Attempt::Last
        } else {
            Attempt::Retryable
        }
    }
}

/// Whether a message may still be retried after this attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Another attempt may follow.
    Retryable,
    /// No attempt follows.
    Last,
}
