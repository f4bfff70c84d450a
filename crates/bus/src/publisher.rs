//! Publishing: one producer per topic, created on first use, batching off.
//!
//! Batching stays off because acknowledging one message of a batch can acknowledge the whole
//! batch on some brokers, and each alpes message must be acknowledged on its own merits.

use std::collections::HashMap;
use std::sync::Arc;

use alpes_contracts::Event;
use alpes_contracts::events;
use pulsar::producer::{self, SendFuture};
use pulsar::proto::{self, MessageIdData};
use pulsar::{Producer, ProducerOptions, Pulsar, TokioExecutor};
use tokio::sync::Mutex;

use crate::{BusError, Outgoing};

/// Sends messages; cheap to clone, shared by every task of a process.
///
/// Each topic has its own producer behind its own lock, so a producer being made (which waits
/// for the broker, for as long as a restart takes) or a full queue holds up sends to that
/// topic only: the relay, the retry and dead-letter copies and the sweeper do not queue behind
/// each other.
#[derive(Clone)]
pub struct Publisher {
    client: Pulsar<TokioExecutor>,
    producers: Arc<std::sync::Mutex<HashMap<String, Slot>>>,
}

/// A topic's producer, once made (again after a failed send).
type Slot = Arc<Mutex<Option<Producer<TokioExecutor>>>>;

/// Where the broker stored a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub topic: String,
    /// `ledger:entry:partition:batch`, as Pulsar's tools print it.
    pub message_id: String,
}

/// A message the broker has accepted into its queue but not yet confirmed.
pub struct PendingReceipt {
    topic: String,
    future: SendFuture,
}

impl PendingReceipt {
    /// Waits until the broker has persisted the message.
    pub async fn confirmed(self) -> Result<Receipt, BusError> {
        let receipt = self.future.await.map_err(|source| BusError::Publish {
            topic: self.topic.clone(),
            source,
        })?;
        Ok(Receipt {
            message_id: receipt
                .message_id
                .as_ref()
                .map(format_message_id)
                .unwrap_or_default(),
            topic: self.topic,
        })
    }
}

impl Publisher {
    pub(crate) fn new(client: Pulsar<TokioExecutor>) -> Self {
        Self {
            client,
            producers: Arc::default(),
        }
    }

    /// Publishes `event` to its topic and waits for the broker's receipt.
    pub async fn publish<E: Event>(&self, event: &E) -> Result<Receipt, BusError> {
        self.send(Outgoing::event(event)?).await?.confirmed().await
    }

    /// Enqueues `message` and returns its pending receipt, so that callers can pipeline many
    /// sends and await the receipts afterwards. Waits when the outbound queue is full.
    pub async fn send(&self, message: Outgoing) -> Result<PendingReceipt, BusError> {
        let topic = message.topic.clone();
        let publish_error = |source| BusError::Publish {
            topic: topic.clone(),
            source,
        };
        let slot = self.slot(&topic);
        let mut slot = slot.lock().await;
        let producer = match &mut *slot {
            Some(producer) => producer,
            empty => empty.insert(
                self.client
                    .producer()
                    .with_topic(&topic)
                    .with_options(producer_options(message.event_type.as_deref()))
                    .build()
                    .await
                    .map_err(publish_error)?,
            ),
        };
        match producer.send_non_blocking(into_pulsar(message)).await {
            Ok(future) => Ok(PendingReceipt {
                topic: topic.clone(),
                future,
            }),
            Err(source) => {
                // Start afresh with a new producer on the next send.
                *slot = None;
                Err(publish_error(source))
            }
        }
    }

    /// The producer slot of `topic`, made empty on first use.
    fn slot(&self, topic: &str) -> Slot {
        let mut producers = self.producers.lock().expect("no panic while held");
        producers.entry(topic.to_owned()).or_default().clone()
    }

    /// Closes every producer, after their queued messages were sent.
    pub async fn close(&self) {
        let slots: Vec<(String, Slot)> = self
            .producers
            .lock()
            .expect("no panic while held")
            .drain()
            .collect();
        for (topic, slot) in slots {
            let Some(mut producer) = slot.lock().await.take() else {
                continue;
            };
            match producer.close().await {
                Ok(()) => {}
                // Its connection is gone (a broker restart since its last send): so is it.
                Err(pulsar::Error::Connection(pulsar::error::ConnectionError::Disconnected)) => {
                    tracing::debug!(%topic, "producer already disconnected");
                }
                Err(e) => tracing::warn!(%topic, error = %e, "closing producer failed"),
            }
        }
    }
}

fn producer_options(event_type: Option<&str>) -> ProducerOptions {
    ProducerOptions {
        schema: event_type
            .and_then(events::by_name)
            .map(|ty| proto::Schema {
                name: ty.name.to_owned(),
                schema_data: ty.schema_text.as_bytes().to_vec(),
                r#type: proto::schema::Type::Avro as i32,
                properties: Vec::new(),
            }),
        block_queue_if_full: true,
        ..ProducerOptions::default()
    }
}

fn into_pulsar(message: Outgoing) -> producer::Message {
    producer::Message {
        payload: message.payload,
        properties: message.properties.into_iter().collect(),
        partition_key: Some(message.key),
        event_time: Some(message.event_time_ms),
        deliver_at_time: message.deliver_at_ms,
        ..producer::Message::default()
    }
}

/// Formats a message id the way Pulsar's tools do.
pub(crate) fn format_message_id(id: &MessageIdData) -> String {
    format!(
        "{}:{}:{}:{}",
        id.ledger_id,
        id.entry_id,
        id.partition.unwrap_or(-1),
        id.batch_index.unwrap_or(-1)
    )
}
