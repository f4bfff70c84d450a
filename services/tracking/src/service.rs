//! The wiring: configuration, connections, the relay, the consumer, the HTTP server, and the
//! order things stop in. `main` runs it; the tests run it in-process against the real stack.

use alpes_bus::admin::Admin;
use alpes_bus::{Bus, Shutdown};
use alpes_contracts::events::attribution::AttributionReverted;
use alpes_eventstore::{MongoStore, Relay};
use alpes_runtime::config::CommonArgs;
use alpes_runtime::health::Readiness;
use alpes_runtime::http;
use alpes_runtime::metrics::Metrics;
use anyhow::Context;
use tokio::net::TcpListener;

use crate::adapters::{self, consumer::SUBSCRIPTION};
use crate::app::Tracking;

/// The tracking service's configuration.
#[derive(clap::Parser, Debug, Clone)]
#[command(
    name = "tracking",
    about = "Records views, clicks and purchases; discards them when a sale is compensated.",
    after_help = "Example:\n  eval \"$(scripts/stack.sh env)\"\n  tracking --http-addr 127.0.0.1:8081"
)]
pub struct Config {
    #[command(flatten)]
    pub common: CommonArgs,
    /// MongoDB database holding the interaction streams.
    #[arg(
        long,
        env = "ALPES_TRACKING_DATABASE",
        default_value = "alpes_tracking"
    )]
    pub database: String,
    /// Pulsar subscription the replicas share (a second deployment needs its own).
    #[arg(long, env = "ALPES_TRACKING_SUBSCRIPTION", default_value = SUBSCRIPTION)]
    pub subscription: String,
}

/// Runs the service on `listener` until `shutdown`; then stops taking requests and messages,
/// finishes those in hand, flushes the outbox, and returns.
pub async fn run(config: Config, listener: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
    let common = &config.common;
    let admin = Admin::new(&common.pulsar_admin_url);
    admin.bootstrap().await.context("bootstrapping Pulsar")?;
    let bus = Bus::connect(&common.pulsar_url, &common.pulsar_admin_url, "tracking")
        .await
        .context("connecting to Pulsar")?;
    let store = MongoStore::connect(&common.mongo_url, &config.database)
        .await
        .context("connecting to MongoDB")?;
    let app = Tracking::new(store.clone());
    let metrics = Metrics::new("tracking");

    let relay_stop = Shutdown::new();
    let relay =
        tokio::spawn(Relay::new(store.clone(), bus.publisher().clone()).run(relay_stop.clone()));
    let subscription = bus
        .subscribe::<AttributionReverted>(common.subscription(&config.subscription))
        .await
        .context("subscribing to AttributionReverted")?;
    let consumer = {
        let (app, metrics) = (app.clone(), metrics.clone());
        let name = config.subscription.clone();
        tokio::spawn(subscription.run(
            move |delivery| {
                let (app, metrics, name) = (app.clone(), metrics.clone(), name.clone());
                async move {
                    adapters::consumer::on_attribution_reverted(&app, &metrics, &name, delivery)
                        .await
                }
            },
            shutdown.clone(),
        ))
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

    // Requests are finished; let the consumer finish its message, then flush what both wrote.
    consumer
        .await
        .context("consumer task")?
        .context("consumer")?;
    relay_stop.cancel();
    relay.await.context("relay task")?;
    bus.publisher().close().await;
    tracing::info!("tracking stopped");
    Ok(())
}
