//! The one way alpes services publish and consume integration events over Apache Pulsar.
//!
//! - [`Bus`] holds two client connections: one for producers and one for consumers, because acks
//!   sent on a producer's connection stall its sends (see `shared/NOTES-pulsar.md`).
//! - [`Publisher`] sends an event's Avro bytes with the saga (or visitor) as message key, the
//!   event's metadata and `traceparent` as message properties, and the event time set. Sends are
//!   pipelined: [`Publisher::send`] enqueues and hands back the receipt to await later.
//! - [`Subscription`] consumes one event type with a Key_Shared subscription. Its handler says
//!   what became of each message ([`Outcome`]; a service's use cases are a [`Handler`], whose
//!   errors say whether they may pass, and [`settle`] makes the outcome of that): done (ack), retry later (redelivered after a
//!   growing backoff through a delayed retry topic), or reject (dead-letter topic, with the
//!   reason). Undecodable bytes are dead-lettered with the decode error. When the broker goes
//!   away, it subscribes again on its own, with backoff, and its [`SubscriptionHealth`] says it
//!   is down meanwhile (readiness reads it).
//! - [`admin`] bootstraps the tenant, namespace, compatibility strategy, topics and schemas
//!   through Pulsar's admin REST API.
//! - On a broker with token authentication and authorization, each service connects with its
//!   role's [`PulsarToken`] ([`Bus::connect_with`], [`admin::Admin::with_token`]), and
//!   [`permissions`] says, and grants, what each role may produce and consume.
//!
//! Shutdown is a [`Shutdown`] token: cancelling it makes every subscription stop taking
//! messages, finish the one in hand, and close.

pub mod admin;
mod envelope;
mod error;
pub mod fault;
mod handler;
pub mod permissions;
mod publisher;
mod reconnect;
mod subscription;
mod token;

use pulsar::{Pulsar, TokioExecutor};

pub use envelope::{Attempt, Delivery, Outgoing, property};
pub use error::BusError;
pub use handler::{Failure, Handler, settle};
pub use publisher::{PendingReceipt, Publisher, Receipt};
pub use reconnect::SubscriptionHealth;
pub use subscription::{
    Backoff, Outcome, StartAt, Subscription, SubscriptionConfig, dead_letter_topic, retry_topic,
};
pub use token::PulsarToken;
pub use tokio_util::sync::CancellationToken as Shutdown;

/// Connections to one Pulsar cluster: a publishing one and a consuming one.
#[derive(Clone)]
pub struct Bus {
    publisher: Publisher,
    consumers: Pulsar<TokioExecutor>,
    admin: admin::Admin,
    service: String,
}

impl Bus {
    /// Connects to the broker at `url` (e.g. `pulsar://127.0.0.1:6650`) on behalf of `service`,
    /// whose name appears in consumer names. `admin_url` is the broker's admin REST API (e.g.
    /// `http://127.0.0.1:8080`), where subscriptions look up the writer schemas of messages
    /// written with other schema versions.
    pub async fn connect(url: &str, admin_url: &str, service: &str) -> Result<Self, BusError> {
        Self::connect_with(url, admin_url, service, None).await
    }

    /// [`Bus::connect`], presenting `token` (the service's role) to the broker and to its admin
    /// API when there is one: what a broker with token authentication requires. A broker
    /// without authentication ignores it.
    pub async fn connect_with(
        url: &str,
        admin_url: &str,
        service: &str,
        token: Option<PulsarToken>,
    ) -> Result<Self, BusError> {
        let builder = || {
            let builder = Pulsar::builder(url.to_owned(), TokioExecutor)
                // Enough room to pipeline; when full, sends wait instead of failing (back-pressure).
                .with_outbound_channel_size(1_000);
            match &token {
                Some(token) => builder.with_auth(token.authentication()),
                None => builder,
            }
        };
        let connect_error = |source| BusError::Connect {
            url: url.to_owned(),
            source,
        };
        // Producers keep the client's own reconnection: it re-creates a producer and resends
        // its pending messages, and what fails after that is sent again by its caller (the
        // outbox relay keeps every entry until the broker confirmed it).
        let producers = builder().build().await.map_err(connect_error)?;
        // Consumers give up quickly and let their subscription re-subscribe (see `reconnect`).
        let (connection, operation) = reconnect::consumer_connection_retries();
        let consumers = builder()
            .with_connection_retry_options(connection)
            .with_operation_retry_options(operation)
            .build()
            .await
            .map_err(connect_error)?;
        Ok(Self {
            publisher: Publisher::new(producers),
            consumers,
            admin: admin::Admin::authenticated(admin_url, token.clone()),
            service: service.to_owned(),
        })
    }

    /// The publisher all of this process's sends go through.
    pub fn publisher(&self) -> &Publisher {
        &self.publisher
    }

    /// The service this bus acts for.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// Subscribes to the topic of `E` (and the subscription's retry topic).
    pub async fn subscribe<E: alpes_contracts::Event>(
        &self,
        config: SubscriptionConfig,
    ) -> Result<Subscription<E>, BusError> {
        let links = subscription::Links {
            client: self.consumers.clone(),
            publisher: self.publisher.clone(),
            admin: self.admin.clone(),
        };
        Subscription::open(links, &self.service, config).await
    }
}
