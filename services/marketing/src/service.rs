//! The wiring: configuration, connections, the relay, the HTTP server, and the order things
//! stop in. `main` runs it; the tests run it in-process against the real stack.

use alpes_bus::admin::Admin;
use alpes_bus::{Bus, Shutdown};
use alpes_contracts::events::attribution::{ConversionAttributed, ConversionRejected};
use alpes_contracts::events::commission::{
    CommissionRejected, CommissionReserved, CommissionReverted,
};
use alpes_contracts::events::tracking::InteractionTracked;
use alpes_eventstore::{MongoStore, Relay};
use alpes_runtime::config::CommonArgs;
use alpes_runtime::health::Readiness;
use alpes_runtime::http;
use alpes_runtime::metrics::Metrics;
use anyhow::Context;
use tokio::net::TcpListener;

use crate::adapters;
use crate::adapters::consumer::{Observable, SUBSCRIPTION, on_observable};
use crate::app::Marketing;

/// The marketing service's configuration.
#[derive(clap::Parser, Debug, Clone)]
#[command(
    name = "marketing",
    about = "Campaigns: create, activate, pause, complete; announces them to the other services.",
    after_help = "Example:\n  eval \"$(scripts/stack.sh env)\"\n  marketing --http-addr 127.0.0.1:8084"
)]
pub struct Config {
    #[command(flatten)]
    pub common: CommonArgs,
    /// MongoDB database holding the campaign streams.
    #[arg(
        long,
        env = "ALPES_MARKETING_DATABASE",
        default_value = "alpes_marketing"
    )]
    pub database: String,
    /// Pulsar subscription the replicas share (a second deployment needs its own).
    #[arg(long, env = "ALPES_MARKETING_SUBSCRIPTION", default_value = SUBSCRIPTION)]
    pub subscription: String,
}

/// Runs the service on `listener` until `shutdown`; then finishes the requests in hand,
/// flushes the outbox, and returns.
pub async fn run(config: Config, listener: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
    let common = &config.common;
    let admin = Admin::new(&common.pulsar_admin_url);
    admin.bootstrap().await.context("bootstrapping Pulsar")?;
    let bus = Bus::connect(&common.pulsar_url, &common.pulsar_admin_url, "marketing")
        .await
        .context("connecting to Pulsar")?;
    let store = MongoStore::connect(&common.mongo_url, &config.database)
        .await
        .context("connecting to MongoDB")?;
    let app = Marketing::new(store.clone());
    let metrics = Metrics::new("marketing");

    let relay_stop = Shutdown::new();
    let relay =
        tokio::spawn(Relay::new(store.clone(), bus.publisher().clone()).run(relay_stop.clone()));
    let observe = Observing {
        bus: &bus,
        app: &app,
        metrics: &metrics,
        common,
        subscription: &config.subscription,
        shutdown: &shutdown,
    };
    let consumers = vec![
        observe.start::<InteractionTracked>().await?,
        observe.start::<ConversionAttributed>().await?,
        observe.start::<ConversionRejected>().await?,
        observe.start::<CommissionReserved>().await?,
        observe.start::<CommissionRejected>().await?,
        observe.start::<CommissionReverted>().await?,
    ];
    let readiness = Readiness::new(shutdown.clone())
        .check("mongo", move || {
            let store = store.clone();
            async move { store.ping().await.map_err(|e| e.to_string()) }
        })
        .check("pulsar", move || {
            let admin = admin.clone();
            async move { admin.clusters().await.map(drop).map_err(|e| e.to_string()) }
        });
    let router = http::router(
        adapters::http::routes(app.clone()),
        readiness,
        metrics.clone(),
    );
    http::serve(listener, router, shutdown.clone())
        .await
        .context("HTTP server")?;

    for consumer in consumers {
        consumer
            .await
            .context("consumer task")?
            .context("consumer")?;
    }
    relay_stop.cancel();
    relay.await.context("relay task")?;
    bus.publisher().close().await;
    tracing::info!("marketing stopped");
    Ok(())
}

/// What every statistics consumer shares.
struct Observing<'a> {
    bus: &'a Bus,
    app: &'a Marketing<MongoStore>,
    metrics: &'a Metrics,
    common: &'a CommonArgs,
    subscription: &'a str,
    shutdown: &'a Shutdown,
}

impl Observing<'_> {
    /// Subscribes to `E` and records its facts until shutdown.
    async fn start<E: Observable>(
        &self,
    ) -> anyhow::Result<tokio::task::JoinHandle<Result<(), alpes_bus::BusError>>> {
        let subscription = self
            .bus
            .subscribe::<E>(self.common.subscription(self.subscription))
            .await
            .with_context(|| format!("subscribing to {}", E::event_type().name))?;
        let (app, metrics, name) = (
            self.app.clone(),
            self.metrics.clone(),
            self.subscription.to_owned(),
        );
        Ok(tokio::spawn(subscription.run(
            move |delivery| {
                let (app, metrics, name) = (app.clone(), metrics.clone(), name.clone());
                async move { on_observable(&app, &metrics, &name, delivery).await }
            },
            self.shutdown.clone(),
        )))
    }
}
