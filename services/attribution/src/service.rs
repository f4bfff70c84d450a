//! The wiring: configuration, connections, the relay, one consumer per consumed event type,
//! the HTTP server, and the order things stop in. `main` runs it; the tests run it in-process
//! against the real stack.

use alpes_bus::admin::Admin;
use alpes_bus::{Bus, BusError, Shutdown};
use alpes_contracts::events::commission::CommissionReverted;
use alpes_contracts::events::marketing::{
    CampaignActivated, CampaignCompleted, CampaignCreated, CampaignPaused,
};
use alpes_contracts::events::tracking::InteractionTracked;
use alpes_eventstore::{EventStore, MongoStore, Relay};
use alpes_runtime::config::CommonArgs;
use alpes_runtime::health::Readiness;
use alpes_runtime::http;
use alpes_runtime::metrics::Metrics;
use anyhow::Context;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::adapters::{self, consumer::Consumed, consumer::SUBSCRIPTION};
use crate::app::Attribution;

/// The attribution service's configuration.
#[derive(clap::Parser, Debug, Clone)]
#[command(
    name = "attribution",
    about = "Folds interactions into journeys, attributes purchases to partners, reverts them on compensation.",
    after_help = "Example:\n  eval \"$(scripts/stack.sh env)\"\n  attribution --http-addr 127.0.0.1:8082"
)]
pub struct Config {
    /// Addresses of the HTTP API, Pulsar and MongoDB; log format.
    #[command(flatten)]
    pub common: CommonArgs,
    /// MongoDB database holding the journey, visitor, saga and campaign streams.
    #[arg(
        long,
        env = "ALPES_ATTRIBUTION_DATABASE",
        default_value = "alpes_attribution"
    )]
    pub database: String,
    /// Pulsar subscription the replicas share, on every consumed topic (a second deployment
    /// needs its own).
    #[arg(long, env = "ALPES_ATTRIBUTION_SUBSCRIPTION", default_value = SUBSCRIPTION)]
    pub subscription: String,
}

/// Runs the service on `listener` until `shutdown`; then stops taking requests and messages,
/// finishes those in hand, flushes the outbox, and returns.
pub async fn run(config: Config, listener: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
    let common = &config.common;
    let admin = Admin::new(&common.pulsar_admin_url);
    admin.bootstrap().await.context("bootstrapping Pulsar")?;
    let bus = Bus::connect(&common.pulsar_url, &common.pulsar_admin_url, "attribution")
        .await
        .context("connecting to Pulsar")?;
    let store = MongoStore::connect(&common.mongo_url, &config.database)
        .await
        .context("connecting to MongoDB")?;
    let app = Attribution::new(store.clone());
    let metrics = Metrics::new("attribution");

    let relay_stop = Shutdown::new();
    let relay =
        tokio::spawn(Relay::new(store.clone(), bus.publisher().clone()).run(relay_stop.clone()));
    // A child token, so that consumers already running stop if a later subscription fails.
    let consumers_stop = shutdown.child_token();
    let consumers = Consumers {
        bus: &bus,
        app: &app,
        metrics: &metrics,
        common: &config.common,
        subscription: &config.subscription,
        shutdown: &consumers_stop,
    };
    let consumers = match consumers.spawn_all().await {
        Ok(consumers) => consumers,
        Err(e) => {
            consumers_stop.cancel();
            relay_stop.cancel();
            return Err(e);
        }
    };

    let readiness = Readiness::new(shutdown.clone())
        .check("mongo", move || {
            let store = store.clone();
            async move { store.ping().await.map_err(|e| e.to_string()) }
        })
        .check("pulsar", move || {
            let admin = admin.clone();
            async move { admin.clusters().await.map(drop).map_err(|e| e.to_string()) }
        });
    let router = http::router(adapters::http::routes(app), readiness, metrics);
    http::serve(listener, router, shutdown.clone())
        .await
        .context("HTTP server")?;

    // Requests are finished; let the consumers finish their messages, then flush what all wrote.
    let mut consumed = Ok(());
    for consumer in consumers {
        let stopped = consumer
            .await
            .context("consumer task")
            .and_then(|r| r.context("consumer"));
        consumed = consumed.and(stopped);
    }
    relay_stop.cancel();
    relay.await.context("relay task")?;
    bus.publisher().close().await;
    tracing::info!("attribution stopped");
    consumed
}

/// What every consumer shares.
struct Consumers<'a, S> {
    bus: &'a Bus,
    app: &'a Attribution<S>,
    metrics: &'a Metrics,
    common: &'a CommonArgs,
    subscription: &'a str,
    shutdown: &'a Shutdown,
}

type ConsumerTask = JoinHandle<Result<(), BusError>>;

impl<S: EventStore> Consumers<'_, S> {
    /// One consumer per consumed event type.
    async fn spawn_all(&self) -> anyhow::Result<Vec<ConsumerTask>> {
        let mut tasks = Vec::new();
        tasks.push(self.spawn::<CampaignCreated>().await?);
        tasks.push(self.spawn::<CampaignActivated>().await?);
        tasks.push(self.spawn::<CampaignPaused>().await?);
        tasks.push(self.spawn::<CampaignCompleted>().await?);
        tasks.push(self.spawn::<InteractionTracked>().await?);
        tasks.push(self.spawn::<CommissionReverted>().await?);
        Ok(tasks)
    }

    /// Subscribes to the topic of `E` and handles its messages until shutdown.
    async fn spawn<E: Consumed>(&self) -> anyhow::Result<ConsumerTask> {
        let subscription = self
            .bus
            .subscribe::<E>(self.common.subscription(self.subscription))
            .await
            .with_context(|| format!("subscribing to {}", E::event_type().name))?;
        let (app, metrics) = (self.app.clone(), self.metrics.clone());
        let name = self.subscription.to_owned();
        Ok(tokio::spawn(subscription.run(
            move |delivery| {
                let (app, metrics, name) = (app.clone(), metrics.clone(), name.clone());
                async move {
                    adapters::consumer::on_event::<E, S>(&app, &metrics, &name, delivery).await
                }
            },
            self.shutdown.clone(),
        )))
    }
}
