//! Consuming one event type: decode, hand to the handler, then ack, retry later or dead-letter.
//!
//! A subscription holds two consumers under one subscription name: a Key_Shared one on the
//! event's topic, and a Shared one on the subscription's own retry topic. A retry is a copy of
//! the message published to the retry topic with a delivery time (Pulsar's delayed delivery),
//! the attempt count in its properties, and the original acknowledged once the copy is stored.
//! The retry topic is Shared because the broker ignores delivery times on Key_Shared
//! subscriptions that keep key order (apache/pulsar#20233), and a retried message has left its
//! key's order anyway. Nothing is acknowledged before what replaces it is durable, so a crash at
//! any point redelivers rather than loses.
//!
//! Handlers must therefore not depend on order across retries; alpes handlers don't: saga state
//! is a function of the set of events.
//!
//! When a consumer's stream ends or fails on its connection (a broker restart), the
//! subscription makes both consumers again after a backoff, as often as it takes, while the
//! messages in hand finish; its [`SubscriptionHealth`] is down meanwhile. What was received and
//! not acknowledged comes back from the broker, and handlers deduplicate.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::future::Future;
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alpes_contracts::Event;
use alpes_contracts::codec;
use apache_avro::Schema;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use pulsar::consumer::{InitialPosition, Message};
use pulsar::error::ConsumerError;
use pulsar::{Consumer, ConsumerOptions, Pulsar, SubType, TokioExecutor};

use crate::admin::Admin;
use crate::publisher::format_message_id;
use crate::reconnect::{self, SubscriptionHealth};
use crate::{BusError, Delivery, Outgoing, Publisher, Shutdown, property};

/// What became of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Its effect is durable: acknowledge it.
    Done,
    /// It could not be handled now (a dependency is down, a conflict): deliver it again after a
    /// backoff. After the subscription's last attempt it is dead-lettered.
    Retry(String),
    /// It can never be handled (failed validation, impossible state): dead-letter it with this
    /// reason.
    Reject(String),
}

/// Delay before the next attempt: `initial`, doubling per attempt, at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The delay after failed attempt number `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(20);
        self.initial.saturating_mul(factor).min(self.max)
    }
}

/// How a subscription behaves.
#[derive(Debug, Clone)]
pub struct SubscriptionConfig {
    /// Subscription name, shared by every replica of a service (e.g. `commission`).
    pub name: String,
    /// Deliveries before a message that keeps asking for retries is dead-lettered.
    pub max_attempts: u32,
    pub backoff: Backoff,
    /// Messages prefetched per consumer.
    pub receiver_queue_size: u32,
    /// Where a subscription that does not exist yet starts reading.
    pub start_at: StartAt,
    /// Messages handled at once by one consumer. Messages with the same key are still handled
    /// one after the other, in the order they arrived; different keys overlap.
    pub concurrency: usize,
    /// Delay before subscribing again after the consumers were lost (jittered: between half
    /// and all of it).
    pub resubscribe: Backoff,
}

/// Where a new subscription starts; an existing one resumes where it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// The oldest retained message: a new service replica misses nothing.
    Earliest,
    /// Only messages published after subscribing.
    Latest,
}

impl SubscriptionConfig {
    /// Defaults: 5 attempts, backoff from 1 s doubling up to 1 min, new subscriptions start
    /// at the earliest message, one message at a time; a lost subscription is made again after
    /// 0.5 s, doubling up to 15 s.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            max_attempts: 5,
            backoff: Backoff {
                initial: Duration::from_secs(1),
                max: Duration::from_secs(60),
            },
            receiver_queue_size: 100,
            start_at: StartAt::Earliest,
            concurrency: 1,
            resubscribe: Backoff {
                initial: Duration::from_millis(500),
                max: Duration::from_secs(15),
            },
        }
    }
}

/// A Key_Shared consumer of events of type `E`.
pub struct Subscription<E> {
    /// Key_Shared on the event topic.
    consumer: Consumer<Vec<u8>, TokioExecutor>,
    /// Shared on the retry topic, where delivery times are honoured.
    retries: Consumer<Vec<u8>, TokioExecutor>,
    /// Where both consumers are made again after a broker restart.
    client: Pulsar<TokioExecutor>,
    consumer_name: String,
    health: SubscriptionHealth,
    publisher: Publisher,
    /// Where writer schemas are looked up: over HTTP, not the consumer's connection, whose
    /// reader blocks while the consumer's queue is full and would never see the answer.
    admin: Admin,
    config: SubscriptionConfig,
    topic: String,
    retry_topic: String,
    dead_letter_topic: String,
    /// Writer schemas by the broker's schema version; `None` when it is our current schema.
    writer_schemas: HashMap<Vec<u8>, Option<Arc<Schema>>>,
    _event: PhantomData<fn() -> E>,
}

/// What a subscription needs from its [`crate::Bus`].
pub(crate) struct Links {
    pub client: Pulsar<TokioExecutor>,
    pub publisher: Publisher,
    pub admin: Admin,
}

/// A subscription's two consumers: on the event topic, and on its retry topic.
type Consumers = (
    Consumer<Vec<u8>, TokioExecutor>,
    Consumer<Vec<u8>, TokioExecutor>,
);

/// Making the consumers again, after a backoff.
type Resubscribing = Pin<Box<dyn Future<Output = Result<Consumers, BusError>> + Send>>;

/// A received message while its handler runs: what finishing it needs.
struct Ticket {
    source: Source,
    key: Option<String>,
    message: Message<Vec<u8>>,
    properties: BTreeMap<String, String>,
    attempt: u32,
}

/// A decoded message waiting for its handler.
struct Ready<E> {
    ticket: Ticket,
    delivery: Delivery<E>,
}

impl<E> Ready<E> {
    fn key(&self) -> Option<&str> {
        self.ticket.key.as_deref()
    }

    /// Hands the delivery to `handler`; the future yields the ticket back with the outcome.
    fn start<F, Fut>(
        self,
        handler: &mut F,
    ) -> impl Future<Output = (Ticket, Outcome)> + use<E, F, Fut>
    where
        F: FnMut(Delivery<E>) -> Fut,
        Fut: Future<Output = Outcome>,
    {
        let Self { ticket, delivery } = self;
        // A handler that panics is a bug, but one bad message must not end the subscription
        // (its task would die and nothing would consume again): the panic becomes a retry, so
        // the message comes back and, if it keeps panicking, ends in the dead-letter topic.
        let handled = std::panic::catch_unwind(AssertUnwindSafe(|| handler(delivery)));
        async move {
            let outcome = match handled {
                Ok(handled) => AssertUnwindSafe(handled)
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|panic| panicked(panic.as_ref())),
                Err(panic) => panicked(panic.as_ref()),
            };
            (ticket, outcome)
        }
    }
}

/// Where subscription `subscription` of `topic` (full or short name, the answer is alike) sends
/// the messages it retries later: its own topic, which it consumes too.
pub fn retry_topic(topic: &str, subscription: &str) -> String {
    format!("{topic}-{subscription}-retry")
}

/// Where subscription `subscription` of `topic` (full or short name) sends the messages it
/// gives up on.
pub fn dead_letter_topic(topic: &str, subscription: &str) -> String {
    format!("{topic}-{subscription}-dlq")
}

/// The outcome of a handler that panicked with `payload`.
fn panicked(payload: &(dyn std::any::Any + Send)) -> Outcome {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_owned());
    tracing::error!(panic = %message, "a message handler panicked");
    Outcome::Retry(format!("the handler panicked: {message}"))
}

/// Marks a subscription down when its loop ends for whatever reason (shutdown, an error, an
/// unwinding panic), so readiness never reports a subscription nothing consumes any more.
struct DownOnExit(SubscriptionHealth);

impl Drop for DownOnExit {
    fn drop(&mut self) {
        self.0.lost();
    }
}

/// Which of a subscription's two consumers a message came from.
#[derive(Debug, Clone, Copy)]
enum Source {
    Topic,
    Retries,
}

/// Why a message could not be decoded.
enum Undecodable {
    /// It never will be: dead-letter it.
    Poison(String),
    /// The writer schema could not be fetched now: try again later.
    Transient(String),
}

impl<E: Event> Subscription<E> {
    pub(crate) async fn open(
        links: Links,
        service: &str,
        config: SubscriptionConfig,
    ) -> Result<Self, BusError> {
        let Links {
            client,
            publisher,
            admin,
        } = links;
        let topic = E::event_type().topic();
        let retry_topic = retry_topic(&topic, &config.name);
        let dead_letter_topic = dead_letter_topic(&topic, &config.name);
        let consumer_name = format!("{service}-{}", uuid::Uuid::new_v4().simple());
        let (consumer, retries) =
            subscribe(&client, &config, &consumer_name, &topic, &retry_topic).await?;
        Ok(Self {
            consumer,
            retries,
            client,
            consumer_name,
            health: SubscriptionHealth::new(&config.name, &topic),
            publisher,
            admin,
            config,
            topic,
            retry_topic,
            dead_letter_topic,
            writer_schemas: HashMap::new(),
            _event: PhantomData,
        })
    }

    /// Whether this subscription is consuming; clones keep reading it after [`Self::run`]
    /// took the subscription.
    pub fn health(&self) -> SubscriptionHealth {
        self.health.clone()
    }

    /// Where delayed retries of this subscription go.
    pub fn retry_topic(&self) -> &str {
        &self.retry_topic
    }

    /// Where messages this subscription gives up on go, with the reason in
    /// [`property::DEAD_LETTER_REASON`].
    pub fn dead_letter_topic(&self) -> &str {
        &self.dead_letter_topic
    }

    /// Handles messages until `shutdown` is cancelled: then stops taking new ones, finishes the
    /// ones in hand, and closes the consumer. Unacknowledged prefetched messages go back to the
    /// broker for other consumers.
    ///
    /// Up to [`SubscriptionConfig::concurrency`] messages are handled at once; a message whose
    /// key is being handled waits for it, so one key's messages keep their order.
    pub async fn run<F, Fut>(mut self, mut handler: F, shutdown: Shutdown) -> Result<(), BusError>
    where
        F: FnMut(Delivery<E>) -> Fut,
        Fut: Future<Output = Outcome>,
    {
        let _down_on_exit = DownOnExit(self.health.clone());
        let limit = self.config.concurrency.max(1);
        let mut in_flight = FuturesUnordered::new();
        let mut busy: HashSet<String> = HashSet::new();
        let mut waiting: VecDeque<Ready<E>> = VecDeque::new();
        let mut stopping = false;
        // While the consumers are lost: the attempt under way, and since when and how often.
        let mut resubscribing: Option<Resubscribing> = None;
        let mut lost: Option<(Instant, u32)> = None;
        loop {
            // Every received message queues here; the oldest whose key is free starts.
            while in_flight.len() < limit {
                let Some(i) = waiting
                    .iter()
                    .position(|r| r.key().is_none_or(|k| !busy.contains(k)))
                else {
                    break;
                };
                let ready = waiting.remove(i).expect("an index from position");
                if let Some(key) = ready.key() {
                    busy.insert(key.to_owned());
                }
                in_flight.push(ready.start(&mut handler));
            }
            let room = !stopping && lost.is_none() && in_flight.len() + waiting.len() < limit;
            let next = tokio::select! {
                biased;
                Some((ticket, outcome)) = in_flight.next(), if !in_flight.is_empty() => {
                    let ticket: Ticket = ticket;
                    if let Some(key) = &ticket.key {
                        busy.remove(key);
                    }
                    self.finish(ticket, outcome).await;
                    continue;
                }
                _ = shutdown.cancelled(), if !stopping => {
                    stopping = true;
                    resubscribing = None;
                    continue;
                }
                made = async { resubscribing.as_mut().expect("guarded").await },
                    if resubscribing.is_some() =>
                {
                    let (since, attempts) = lost.expect("lost while resubscribing");
                    match made {
                        Ok((consumer, retries)) => {
                            // The lost consumers close as they drop.
                            self.consumer = consumer;
                            self.retries = retries;
                            resubscribing = None;
                            lost = None;
                            self.health.resubscribed();
                            tracing::info!(
                                subscription = %self.config.name,
                                topic = %self.topic,
                                attempts,
                                down_ms = since.elapsed().as_millis() as u64,
                                "subscribed again"
                            );
                        }
                        Err(e) => {
                            tracing::debug!(subscription = %self.config.name, attempts, error = %e, "subscribing again failed");
                            lost = Some((since, attempts + 1));
                            resubscribing = Some(self.resubscribe(attempts + 1));
                        }
                    }
                    continue;
                }
                next = self.consumer.next(), if room => (Source::Topic, next),
                next = self.retries.next(), if room => (Source::Retries, next),
                else => break,
            };
            let lost_because = match next {
                (_, None) => "the message stream ended".to_owned(),
                (source, Some(Ok(message))) => {
                    if let Some(ready) = self.prepare(source, message).await {
                        waiting.push_back(ready);
                    }
                    continue;
                }
                (_, Some(Err(e))) if is_connection_error(&e) => e.to_string(),
                (_, Some(Err(e))) => {
                    tracing::warn!(subscription = %self.config.name, error = %e, "receive failed");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            if self.health.lost() {
                tracing::warn!(
                    subscription = %self.config.name,
                    topic = %self.topic,
                    reason = %lost_because,
                    "lost the broker: subscribing again until it answers"
                );
            }
            lost = Some((Instant::now(), 1));
            resubscribing = Some(self.resubscribe(1));
        }
        // Messages not started stay unacknowledged: the broker redelivers them.
        drop(waiting);
        if lost.is_none() {
            for consumer in [&mut self.consumer, &mut self.retries] {
                if let Err(e) = consumer.close().await {
                    tracing::warn!(subscription = %self.config.name, error = %e, "closing consumer failed");
                }
            }
        }
        Ok(())
    }

    /// Attempt number `attempt` at making the consumers again, after its backoff.
    fn resubscribe(&self, attempt: u32) -> Resubscribing {
        let delay = reconnect::jittered(self.config.resubscribe.delay(attempt));
        let client = self.client.clone();
        let config = self.config.clone();
        let name = self.consumer_name.clone();
        let (topic, retry_topic) = (self.topic.clone(), self.retry_topic.clone());
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            subscribe(&client, &config, &name, &topic, &retry_topic).await
        })
    }

    /// Decodes `message` into a delivery ready for the handler; a message that cannot be
    /// decoded is dead-lettered (or, if the reason may pass, redelivered) here.
    async fn prepare(&mut self, source: Source, message: Message<Vec<u8>>) -> Option<Ready<E>> {
        let properties: BTreeMap<String, String> = message
            .metadata()
            .properties
            .iter()
            .map(|kv| (kv.key.clone(), kv.value.clone()))
            .collect();
        let attempt = properties
            .get(property::ATTEMPT)
            .and_then(|a| a.parse().ok())
            .unwrap_or(1u32);
        let event = match self.decode(&message, &properties).await {
            Ok(event) => event,
            Err(Undecodable::Poison(reason)) => {
                self.dead_letter(source, &message, &properties, reason)
                    .await;
                return None;
            }
            Err(Undecodable::Transient(reason)) => {
                self.later(source, &message, &reason).await;
                return None;
            }
        };
        let delivery = Delivery {
            event,
            attempt,
            max_attempts: self.config.max_attempts,
            topic: message.topic.clone(),
            message_id: format_message_id(message.message_id()),
            key: message.metadata().partition_key.clone(),
            properties: properties.clone(),
            event_time_ms: message.metadata().event_time.filter(|t| *t > 0),
        };
        let ticket = Ticket {
            source,
            key: message.metadata().partition_key.clone(),
            message,
            properties,
            attempt,
        };
        Some(Ready { ticket, delivery })
    }

    /// Acknowledges, retries or dead-letters the message of `ticket` as `outcome` says.
    async fn finish(&mut self, ticket: Ticket, outcome: Outcome) {
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

    async fn decode(
        &mut self,
        message: &Message<Vec<u8>>,
        properties: &BTreeMap<String, String>,
    ) -> Result<E, Undecodable> {
        // A retried copy carries its original's schema version in a property.
        let version = properties
            .get(property::WRITER_SCHEMA_VERSION)
            .and_then(|hex| decode_hex(hex))
            .or_else(|| message.metadata().schema_version.clone())
            // Producers without a schema send an empty version: read with the current schema.
            .filter(|version| !version.is_empty());
        let writer = match version {
            Some(version) => self.writer_schema(version).await?,
            None => None,
        };
        let data = &message.payload.data;
        let decoded = match writer {
            Some(writer) => codec::decode_with_writer::<E>(data, &writer),
            None => codec::decode::<E>(data),
        };
        decoded.map_err(|e| Undecodable::Poison(e.to_string()))
    }

    async fn writer_schema(
        &mut self,
        version: Vec<u8>,
    ) -> Result<Option<Arc<Schema>>, Undecodable> {
        if let Some(known) = self.writer_schemas.get(&version) {
            return Ok(known.clone());
        }
        let number = <[u8; 8]>::try_from(version.as_slice())
            .map(i64::from_be_bytes)
            .map_err(|_| {
                Undecodable::Poison(format!("malformed schema version {}", encode_hex(&version)))
            })?;
        let topic_name = E::event_type().topic_name();
        let text = self
            .admin
            .schema_at(&topic_name, number)
            .await
            .map_err(|e| Undecodable::Transient(format!("fetching writer schema: {e}")))?
            .ok_or_else(|| {
                Undecodable::Poison(format!(
                    "schema version {number} is unknown to the registry of {}",
                    self.topic
                ))
            })?;
        let writer = Schema::parse_str(&text)
            .map_err(|e| Undecodable::Poison(format!("writer schema is not valid Avro: {e}")))?;
        let writer = (&writer != E::event_type().schema()).then(|| Arc::new(writer));
        self.writer_schemas.insert(version, writer.clone());
        Ok(writer)
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
    async fn later(&mut self, source: Source, message: &Message<Vec<u8>>, reason: &str) {
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

    async fn dead_letter(
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

/// Subscribes `name` to `topic` (Key_Shared) and to its `retry_topic` (Shared).
async fn subscribe(
    client: &Pulsar<TokioExecutor>,
    config: &SubscriptionConfig,
    name: &str,
    topic: &str,
    retry_topic: &str,
) -> Result<Consumers, BusError> {
    let open = |topic: &str, sub_type: SubType| {
        client
            .consumer()
            .with_topic(topic)
            .with_subscription(&config.name)
            .with_subscription_type(sub_type)
            .with_consumer_name(name)
            .with_options(
                ConsumerOptions::default()
                    .durable(true)
                    .with_initial_position(match config.start_at {
                        StartAt::Earliest => InitialPosition::Earliest,
                        StartAt::Latest => InitialPosition::Latest,
                    })
                    .with_receiver_queue_size(config.receiver_queue_size),
            )
            .build()
    };
    let subscribe_error = |topic: &str| {
        let topic = topic.to_owned();
        let subscription = config.name.clone();
        move |source| BusError::Subscribe {
            subscription,
            topic,
            source,
        }
    };
    let consumer = open(topic, SubType::KeyShared)
        .await
        .map_err(subscribe_error(topic))?;
    let retries = open(retry_topic, SubType::Shared)
        .await
        .map_err(subscribe_error(retry_topic))?;
    Ok((consumer, retries))
}

/// Whether a receive error means the consumer lost its broker, rather than one bad message.
fn is_connection_error(error: &pulsar::Error) -> bool {
    matches!(
        error,
        pulsar::Error::Connection(_) | pulsar::Error::Consumer(ConsumerError::Connection(_))
    )
}

fn encode_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_per_attempt_up_to_its_cap() {
        let backoff = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(500),
        };
        let delays: Vec<_> = (1..=5).map(|a| backoff.delay(a).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 500, 500]);
    }

    #[test]
    fn schema_versions_survive_the_hex_round_trip() {
        let version = vec![0, 0, 0, 0, 0, 0, 1, 0xff];
        assert_eq!(decode_hex(&encode_hex(&version)), Some(version));
        assert_eq!(decode_hex("abc"), None);
        assert_eq!(decode_hex("zz"), None);
    }
}
