//! What becomes of a handled message: acknowledged, copied to the retry topic with a delivery
//! time, or copied to the dead-letter topic with the reason; the original is acknowledged only
//! once its copy is stored.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alpes_contracts::Event;
use pulsar::consumer::Message;
use pulsar::{Consumer, TokioExecutor};

use super::keys::Ticket;
use super::schemas::encode_hex;
use super::{Outcome, Source, Subscription};
use crate::publisher::format_message_id;
use crate::{Outgoing, property};

impl<E: Event> Subscription<E> {
    /// Acknowledges, retries or dead-letters the message of `ticket` as `outcome` says.
    pub(super) async fn finish(&mut self, ticket: Ticket, outcome: Outcome) {
        let Ticket {
            source,
            message,
            properties,
            attempt,
            ..
        } = ticket;
        match outcome {
            Outcome::Done => {
                crate::fault::before_ack(&message).await;
                self.ack(source, &message).await
            }
            Outcome::Retry(reason) if attempt < self.config.max_attempts => {
                self.retry(source, &message, &properties, attempt, reason)
                    .await;
            }
            Outcome::Retry(reason) => {
                let reason = format!("gave up after {attempt} attempts: {reason}");
                self.dead_letter(source, &message, &properties, reason)
                    .await;
            }
            Outcome::Reject(reason) => {
                self.dead_letter(source, &message, &properties, reason)
                    .await;
            }
        }
    }

    fn consumer_of(&mut self, source: Source) -> &mut Consumer<Vec<u8>, TokioExecutor> {
        match source {
            Source::Topic => &mut self.consumer,
            Source::Retries => &mut self.retries,
        }
    }

    async fn ack(&mut self, source: Source, message: &Message<Vec<u8>>) {
        if let Err(e) = self.consumer_of(source).ack(message).await {
            // The message comes back and the handler's deduplication absorbs it. While the
            // broker is away every ack fails, and the loss was logged already.
            if self.health.is_up() {
                tracing::warn!(subscription = %self.config.name, error = %e, "ack failed");
            }
        }
    }

    /// Leaves the message unacknowledged for a moment, then asks the broker to redeliver it.
    pub(super) async fn later(&mut self, source: Source, message: &Message<Vec<u8>>, reason: &str) {
        tracing::warn!(subscription = %self.config.name, %reason, "message will be redelivered");
        tokio::time::sleep(Duration::from_secs(1)).await;
        if let Err(e) = self.consumer_of(source).nack(message).await
            && self.health.is_up()
        {
            tracing::warn!(subscription = %self.config.name, error = %e, "nack failed");
        }
    }

    async fn retry(
        &mut self,
        source: Source,
        message: &Message<Vec<u8>>,
        properties: &BTreeMap<String, String>,
        attempt: u32,
        reason: String,
    ) {
        let delay = self.config.backoff.delay(attempt);
        let deliver_at = SystemTime::now() + delay;
        let mut copy = self.copy(message, properties, self.retry_topic.clone());
        copy.deliver_at_ms = deliver_at
            .duration_since(UNIX_EPOCH)
            .ok()
            .map(|d| d.as_millis() as i64);
        copy.properties
            .insert(property::ATTEMPT.to_owned(), (attempt + 1).to_string());
        copy.properties
            .insert(property::RETRY_REASON.to_owned(), reason.clone());
        tracing::info!(subscription = %self.config.name, attempt, ?delay, %reason, "retry scheduled");
        self.replace(source, message, copy).await;
    }

    pub(super) async fn dead_letter(
        &mut self,
        source: Source,
        message: &Message<Vec<u8>>,
        properties: &BTreeMap<String, String>,
        reason: String,
    ) {
        let mut copy = self.copy(message, properties, self.dead_letter_topic.clone());
        copy.properties
            .insert(property::DEAD_LETTER_REASON.to_owned(), reason.clone());
        tracing::warn!(
            subscription = %self.config.name,
            topic = %self.dead_letter_topic,
            %reason,
            "message dead-lettered"
        );
        self.replace(source, message, copy).await;
    }

    /// A copy of `message` bound for `topic`, remembering where it came from.
    fn copy(
        &self,
        message: &Message<Vec<u8>>,
        properties: &BTreeMap<String, String>,
        topic: String,
    ) -> Outgoing {
        let metadata = message.metadata();
        let mut properties = properties.clone();
        if !properties.contains_key(property::ORIGINAL_TOPIC) {
            properties.insert(property::ORIGINAL_TOPIC.to_owned(), message.topic.clone());
            properties.insert(
                property::ORIGINAL_MESSAGE_ID.to_owned(),
                format_message_id(message.message_id()),
            );
        }
        if let Some(version) = metadata.schema_version.as_ref().filter(|v| !v.is_empty()) {
            properties
                .entry(property::WRITER_SCHEMA_VERSION.to_owned())
                .or_insert_with(|| encode_hex(version));
        }
        Outgoing {
            topic,
            event_type: None,
            key: metadata.partition_key.clone().unwrap_or_default(),
            payload: message.payload.data.clone(),
            properties,
            event_time_ms: metadata.event_time.unwrap_or(0),
            deliver_at_ms: None,
        }
    }

    /// Publishes `replacement`, then acknowledges `message`; if the replacement cannot be
    /// stored, the message stays unacknowledged and comes back.
    async fn replace(&mut self, source: Source, message: &Message<Vec<u8>>, replacement: Outgoing) {
        let stored = match self.publisher.send(replacement).await {
            Ok(pending) => pending.confirmed().await.map(|_| ()),
            Err(e) => Err(e),
        };
        match stored {
            Ok(()) => self.ack(source, message).await,
            Err(e) => self.later(source, message, &e.to_string()).await,
        }
    }
}
