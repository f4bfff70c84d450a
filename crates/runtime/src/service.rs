//! The wiring every service shares, so that a service's `run` says only what is its own: its
//! routes and the events it consumes.
//!
//! Start: bootstrap Pulsar, connect the bus and the event store, start the outbox relay.
//! Then the service adds its consumers and its own background tasks, and serves its API. Stop,
//! in this order: the HTTP server finishes its requests; consumers finish the message in hand;
//! background tasks are told to stop and are waited for; the relay flushes what all of them
//! wrote; producers close.

use std::future::Future;
use std::time::Duration;

use alpes_bus::admin::Admin;
use alpes_bus::permissions;
use alpes_bus::{
    Backoff, Bus, BusError, Handler, Outcome, Publisher, Shutdown, SubscriptionConfig,
    SubscriptionHealth, settle,
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

/// A service's configuration: its clap flags, with the [`CommonArgs`] every service reads
/// flattened in.
pub trait ServiceConfig: clap::Parser {
    /// The settings every service shares.
    fn common(&self) -> &CommonArgs;
}

/// A service binary's whole `main`: reads the configuration from flags and `ALPES_*`
/// variables, starts the logs, binds the HTTP address and runs `run` until SIGTERM or SIGINT
/// (the tests call `run` with a listener and a token of their own).
pub async fn main<C, Fut, E>(run: impl FnOnce(C, TcpListener, Shutdown) -> Fut) -> Result<(), E>
where
    C: ServiceConfig,
    Fut: Future<Output = Result<(), E>>,
    E: From<std::io::Error>,
{
    let config = C::parse();
    crate::telemetry::init(config.common().log_format);
    let shutdown = crate::shutdown::on_signals();
    let addr = config.common().http_addr;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("binding {addr}: {e}")))?;
    run(config, listener, shutdown).await
}

/// Why a service could not start, or stopped badly.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
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
pub struct ServiceRuntime {
    service: &'static str,
    /// The settings it started with.
    common: CommonArgs,
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
    /// The service's own background tasks, stopped after the consumers.
    tasks_stop: Shutdown,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
    relay_stop: Shutdown,
    relay: JoinHandle<()>,
    /// Checks beyond MongoDB and Pulsar, for dependencies only this service has.
    readiness: Readiness,
}

impl ServiceRuntime {
    /// Bootstraps Pulsar in the process's namespace (installed here from `common`; every
    /// service of one process must agree on it), connects, and starts the outbox relay of
    /// `service`'s store in MongoDB database `database`.
    pub async fn start(
        common: &CommonArgs,
        service: &'static str,
        database: &str,
        shutdown: &Shutdown,
    ) -> Result<Self, RuntimeError> {
        common
            .pulsar_namespace
            .clone()
            .install()
            .map_err(RuntimeError::Namespace)?;
        let token = common.pulsar_token().map_err(RuntimeError::Bus)?;
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
                    .map_err(RuntimeError::Bootstrap)?;
            }
            Err(e) => return Err(RuntimeError::Bootstrap(e)),
        }
        let bus = Bus::connect_with(&common.pulsar_url, &common.pulsar_admin_url, service, token)
            .await
            .map_err(RuntimeError::Bus)?;
        let store = MongoStore::connect(&common.mongo_url, database)
            .await
            .map_err(RuntimeError::Store)?;
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
            common: common.clone(),
            service,
            admin,
            bus,
            metrics: Metrics::new(service),
            access,
            store,
            consuming: shutdown.child_token(),
            consumers: Vec::new(),
            subscriptions: Vec::new(),
            tasks_stop: Shutdown::new(),
            tasks: Vec::new(),
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

    /// Runs `task`, a background job of the service's own (a sweep, a writer, an import),
    /// within the service's lifecycle: `task` is given a token that is cancelled once the
    /// consumers have stopped, and the service waits for it then, before the relay flushes and
    /// producers close (so it may still publish and write). A task may also end by itself
    /// earlier. One that panics is logged with `name` when the service stops.
    pub fn spawn<Fut>(&mut self, name: &'static str, task: impl FnOnce(Shutdown) -> Fut)
    where
        Fut: Future<Output = ()> + Send + 'static,
    {
        let handle = tokio::spawn(task(self.tasks_stop.clone()));
        self.tasks.push((name, handle));
    }

    /// Runs `job` as a background task ([`ServiceRuntime::spawn`]) until it succeeds once,
    /// trying again after a failure (1 s, doubling up to a minute) until the service stops:
    /// for one-off work at start-up, such as a migration of what earlier versions stored,
    /// that nothing else must wait for. `job` must be safe to stop half way and run again.
    pub fn spawn_until_done<F, Fut, E>(&mut self, name: &'static str, job: F)
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), E>> + Send,
        E: std::fmt::Display,
    {
        let backoff = Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
        };
        self.spawn(name, move |stop| async move {
            for failures in 1.. {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    done = job() => match done {
                        Ok(()) => return,
                        Err(e) => tracing::warn!(task = name, error = %e, "failed; trying again"),
                    },
                }
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(backoff.delay(failures)) => {}
                }
            }
        });
    }

    /// The configuration of subscription `name` as the service's settings make it
    /// ([`CommonArgs::subscription`]), for a service that tunes it before
    /// [`ServiceRuntime::consume_with`].
    pub fn subscription(&self, name: &str) -> SubscriptionConfig {
        self.common.subscription(name)
    }

    /// Subscribes to `E` as `subscription` (the name every replica shares) and hands each
    /// message to `handler` until shutdown ([`ServiceRuntime::consume_with`]).
    pub async fn consume<E: Event>(
        &mut self,
        subscription: &str,
        handler: impl Handler<E>,
    ) -> Result<(), RuntimeError> {
        let config = self.subscription(subscription);
        self.consume_with(config, handler).await
    }

    /// Subscribes to `E` and hands each message to `handler` until shutdown, counting the
    /// outcomes ([`alpes_bus::settle`]). If the subscription cannot be made, everything started
    /// so far is stopped. Once made, it subscribes again by itself after losing the broker, and
    /// `/readyz` says not ready meanwhile.
    pub async fn consume_with<E: Event>(
        &mut self,
        config: SubscriptionConfig,
        handler: impl Handler<E>,
    ) -> Result<(), RuntimeError> {
        let name = config.name.clone();
        let subscription = match self.bus.subscribe::<E>(config).await {
            Ok(subscription) => subscription,
            Err(source) => {
                self.consuming.cancel();
                self.tasks_stop.cancel();
                self.relay_stop.cancel();
                return Err(RuntimeError::Subscribe {
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
    ) -> Result<(), RuntimeError> {
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

        // Requests are finished; consumers finish their message, background tasks end, then
        // the relay flushes.
        self.consuming.cancel();
        let mut consumed = Ok(());
        for consumer in self.consumers {
            let stopped = match consumer.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(RuntimeError::Consumer(e.to_string())),
                Err(e) => Err(RuntimeError::Consumer(e.to_string())),
            };
            consumed = consumed.and(stopped);
        }
        self.tasks_stop.cancel();
        for (task, handle) in self.tasks {
            if let Err(e) = handle.await {
                tracing::error!(task, error = %e, "background task failed");
            }
        }
        self.relay_stop.cancel();
        if let Err(e) = self.relay.await {
            tracing::warn!(error = %e, "outbox relay task failed");
        }
        self.bus.publisher().close().await;
        tracing::info!(service = self.service, "stopped");
        served.map_err(RuntimeError::Http)?;
        consumed
    }
}
