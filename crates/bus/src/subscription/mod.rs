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
//!
//! - `config`: how a subscription behaves, and what a handler says of a message;
//! - `keys`: the messages in hand, one key at a time;
//! - `schemas`: decoding with the schema each message was written with;
//! - `settle`: acknowledging, retrying later, or dead-lettering a message.

mod config;
mod keys;
mod schemas;
mod settle;

pub use config::{Backoff, Outcome, StartAt, SubscriptionConfig, dead_letter_topic, retry_topic};

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alpes_contracts::Event;
use apache_avro::Schema;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use pulsar::consumer::{InitialPosition, Message};
use pulsar::error::ConsumerError;
use pulsar::{Consumer, ConsumerOptions, Pulsar, SubType, TokioExecutor};

use crate::admin::Admin;
use crate::publisher::format_message_id;
use crate::reconnect::{self, SubscriptionHealth};
use crate::{BusError, Delivery, Publisher, Shutdown, property};

use keys::{Ready, Ticket};

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
                if let Err(e) = close(consumer).await {
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
/// Closes `consumer`, letting go of what it received and did not hand out: dropped
/// unacknowledged, the broker delivers it again to the next consumer. While the consumer's
/// queue is full, the connection's reader waits to hand it the next message and reads nothing
/// else, not even the answer to the close: so the queue is emptied before each try.
async fn close(consumer: &mut Consumer<Vec<u8>, TokioExecutor>) -> Result<(), String> {
    const TRIES: u32 = 10;
    for _ in 0..TRIES {
        while let Some(Some(_)) = consumer.next().now_or_never() {}
        match tokio::time::timeout(Duration::from_secs(1), consumer.close()).await {
            Ok(closed) => return closed.map_err(|e| e.to_string()),
            Err(_) => continue,
        }
    }
    Err(format!("no answer to the close after {TRIES} tries"))
}

fn is_connection_error(error: &pulsar::Error) -> bool {
    matches!(
        error,
        pulsar::Error::Connection(_) | pulsar::Error::Consumer(ConsumerError::Connection(_))
    )
}
