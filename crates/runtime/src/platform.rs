//! The wiring every service shares, so that a service's `run` says only what is its own: its
//! routes and the events it consumes.
//!
//! Start: bootstrap Pulsar, connect the bus and the event store, start the outbox relay.
//! Then the service adds its consumers and serves its API. Stop, in this order: the HTTP server
//! finishes its requests; consumers finish the message in hand; the relay flushes what both
//! wrote; producers close.

use std::future::Future;

use alpes_bus::admin::Admin;
use alpes_bus::permissions;
use alpes_bus::{
    Bus, BusError, Handler, Outcome, Publisher, Shutdown, SubscriptionConfig, SubscriptionHealth,
    settle,
};
use alpes_contracts::Event;
use alpes_eventstore::{MongoStore, Relay, StoreError};
use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::auth::Access;
use crate::config::CommonArgs;
use crate::health::Readiness;
use crate::http;
use crate::metrics::Metrics;

/// Why a service could not start, or stopped badly.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error("choosing the Pulsar namespace: {0}")]
    Namespace(#[source] alpes_contracts::NamespaceError),
    #[error("bootstrapping Pulsar: {0}")]
    Bootstrap(#[source] BusError),
    #[error("connecting to Pulsar: {0}")]
    Bus(#[source] BusError),
    #[error("subscribing to {event}: {source}")]
    Subscribe {
        event: &'static str,
        #[source]
        source: BusError,
    },
    #[error("connecting to MongoDB: {0}")]
    Store(#[source] StoreError),
    #[error("HTTP server: {0}")]
    Http(#[source] std::io::Error),
    #[error("a consumer stopped badly: {0}")]
    Consumer(String),
}

/// A service's connections and background tasks.
pub struct Platform {
    service: &'static str,
    admin: Admin,
    bus: Bus,
    store: MongoStore,
    metrics: Metrics,
    access: Access,
    /// Consumers stop with the service, or at once if a later one cannot start.
    consuming: Shutdown,
    consumers: Vec<JoinHandle<Result<(), BusError>>>,
    /// Whether each consumer is connected, for readiness.
    subscriptions: Vec<SubscriptionHealth>,
    relay_stop: Shutdown,
    relay: JoinHandle<()>,
    /// Checks beyond MongoDB and Pulsar, for dependencies only this service has.
    readiness: Readiness,
}

impl Platform {
    /// Bootstraps Pulsar in the process's namespace (installed here from `common`; every
    /// service of one process must agree on it), connects, and starts the outbox relay of
    /// `service`'s store in MongoDB database `database`.
    pub async fn start(
        common: &CommonArgs,
        service: &'static str,
        database: &str,
        shutdown: &Shutdown,
    ) -> Result<Self, PlatformError> {
        common
            .pulsar_namespace
            .clone()
            .install()
            .map_err(PlatformError::Namespace)?;
        let token = common.pulsar_token().map_err(PlatformError::Bus)?;
        let admin = Admin::authenticated(&common.pulsar_admin_url, token.clone());
        match admin.bootstrap().await {
            Ok(_) => {}
            // A role of its own may not create topics nor upload schemas: `alpes bootstrap`
            // did, as the admin role; what this service reads and writes must be there.
            Err(refused) if refused.is_refused_by_authorization() => {
                let names = permissions::SubscriptionNames::default();
                let types = permissions::platform(&names)
                    .into_iter()
                    .find(|access| access.service == service)
                    .map(|access| access.event_types())
                    .unwrap_or_default();
                admin
                    .check_schemas(&types)
                    .await
                    .map_err(PlatformError::Bootstrap)?;
            }
            Err(e) => return Err(PlatformError::Bootstrap(e)),
        }
        let bus = Bus::connect_with(&common.pulsar_url, &common.pulsar_admin_url, service, token)
            .await
            .map_err(PlatformError::Bus)?;
        let store = MongoStore::connect(&common.mongo_url, database)
            .await
            .map_err(PlatformError::Store)?;
        let access = common.access();
        if access.is_closed() {
            tracing::warn!(
                "no API token configured (ALPES_API_TOKEN, ALPES_API_TOKENS): every protected \
                 endpoint refuses every request"
            );
        }
        let relay_stop = Shutdown::new();
        let relay = Relay::new(store.clone(), bus.publisher().clone()).run(relay_stop.clone());
        Ok(Self {
            service,
            admin,
            bus,
            metrics: Metrics::new(service),
            access,
            store,
            consuming: shutdown.child_token(),
            consumers: Vec::new(),
            subscriptions: Vec::new(),
            relay_stop,
            relay: tokio::spawn(relay),
            readiness: Readiness::new(shutdown.clone()),
        })
    }

    /// The HTTP API's tokens, to guard the service's routes with ([`crate::auth`]).
    pub fn access(&self) -> &Access {
        &self.access
    }

    /// The service's event store.
    pub fn store(&self) -> &MongoStore {
        &self.store
    }

    /// Publishes straight to Pulsar, for events that change no aggregate of the service.
    pub fn publisher(&self) -> &Publisher {
        self.bus.publisher()
    }

    /// Makes `/readyz` also require `check` (named `name`) to pass.
    pub fn check<F, Fut>(&mut self, name: &'static str, check: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.readiness = self.readiness.clone().check(name, check);
    }

    /// Subscribes to `E` and hands each message to `handler` until shutdown, counting the
    /// outcomes ([`alpes_bus::settle`]). If the subscription cannot be made, everything started
    /// so far is stopped. Once made, it subscribes again by itself after losing the broker, and
    /// `/readyz` says not ready meanwhile.
    pub async fn consume<E: Event>(
        &mut self,
        config: SubscriptionConfig,
        handler: impl Handler<E>,
    ) -> Result<(), PlatformError> {
        let name = config.name.clone();
        let subscription = match self.bus.subscribe::<E>(config).await {
            Ok(subscription) => subscription,
            Err(source) => {
                self.consuming.cancel();
                self.relay_stop.cancel();
                return Err(PlatformError::Subscribe {
                    event: E::event_type().name,
                    source,
                });
            }
        };
        self.metrics.watch(subscription.health());
        self.subscriptions.push(subscription.health());
        let metrics = self.metrics.clone();
        let counted = move |delivery| {
            let (handler, metrics, name) = (handler.clone(), metrics.clone(), name.clone());
            async move {
                let outcome = settle(&handler, delivery).await;
                let label = match outcome {
                    Outcome::Done => "done",
                    Outcome::Retry(_) => "retry",
                    Outcome::Reject(_) => "reject",
                };
                metrics.message_handled(&name, label);
                outcome
            }
        };
        let run = subscription.run(counted, self.consuming.clone());
        self.consumers.push(tokio::spawn(run));
        Ok(())
    }

    /// Serves `api` (with probes checking MongoDB and Pulsar, and metrics) on `listener` until
    /// `shutdown`; then stops everything in order.
    pub async fn serve(
        self,
        listener: TcpListener,
        api: Router,
        shutdown: Shutdown,
    ) -> Result<(), PlatformError> {
        let (store, admin) = (self.store.clone(), self.admin.clone());
        let readiness = self
            .readiness
            .clone()
            .check("mongo", move || {
                let store = store.clone();
                async move { store.ping().await.map_err(|e| e.to_string()) }
            })
            .check("pulsar", move || {
                let admin = admin.clone();
                async move { admin.clusters().await.map(drop).map_err(|e| e.to_string()) }
            })
            .subscriptions(self.subscriptions.clone());
        let router = http::router(api, readiness, self.metrics.clone());
        let served = http::serve(listener, router, shutdown).await;

        // Requests are finished; consumers finish their message, then the relay flushes.
        self.consuming.cancel();
        let mut consumed = Ok(());
        for consumer in self.consumers {
            let stopped = match consumer.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(PlatformError::Consumer(e.to_string())),
                Err(e) => Err(PlatformError::Consumer(e.to_string())),
            };
            consumed = consumed.and(stopped);
        }
        self.relay_stop.cancel();
        if let Err(e) = self.relay.await {
            tracing::warn!(error = %e, "outbox relay task failed");
        }
        self.bus.publisher().close().await;
        tracing::info!(service = self.service, "stopped");
        served.map_err(PlatformError::Http)?;
        consumed
    }
}
