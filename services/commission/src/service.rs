//! The wiring: configuration, connections, the relay, one consumer per consumed event type,
//! the HTTP server, and the order things stop in. `main` runs it; the tests run it in-process
//! against the real stack.

use alpes_bus::admin::Admin;
use alpes_bus::{Bus, BusError, Shutdown};
use alpes_contracts::events::attribution::ConversionAttributed;
use alpes_contracts::events::marketing::{
    CampaignActivated, CampaignCompleted, CampaignCreated, CampaignPaused, FraudDetected,
    SagaTimedOut,
};
use alpes_eventstore::{MongoStore, Relay};
use alpes_runtime::config::CommonArgs;
use alpes_runtime::health::Readiness;
use alpes_runtime::http;
use alpes_runtime::metrics::Metrics;
use anyhow::Context;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::adapters;
use crate::adapters::consumer::{self, Consumed, SUBSCRIPTION};
use crate::app::Commissions;

/// The commission service's configuration.
#[derive(clap::Parser, Debug, Clone)]
#[command(
    name = "commission",
    about = "Reserves partners' commissions against campaign budgets; reverts them when a sale is compensated.",
    after_help = "Example:\n  eval \"$(scripts/stack.sh env)\"\n  commission --http-addr 127.0.0.1:8083"
)]
pub struct Config {
    /// The settings every service shares.
    #[command(flatten)]
    pub common: CommonArgs,
    /// MongoDB database holding the budget and commission streams.
    #[arg(
        long,
        env = "ALPES_COMMISSION_DATABASE",
        default_value = "alpes_commission"
    )]
    pub database: String,
    /// Pulsar subscription the replicas share (a second deployment needs its own).
    #[arg(long, env = "ALPES_COMMISSION_SUBSCRIPTION", default_value = SUBSCRIPTION)]
    pub subscription: String,
}

/// A running consumer.
type Consumer = JoinHandle<Result<(), BusError>>;

/// What every consumer shares.
struct Consuming<'a> {
    bus: &'a Bus,
    app: &'a Commissions<MongoStore>,
    metrics: &'a Metrics,
    subscription: &'a str,
    common: &'a CommonArgs,
    shutdown: &'a Shutdown,
}

impl Consuming<'_> {
    /// Subscribes to `E` and handles its messages until shutdown.
    async fn start<E: Consumed>(&self) -> anyhow::Result<Consumer> {
        let config = self.common.subscription(self.subscription);
        let subscription = self
            .bus
            .subscribe::<E>(config)
            .await
            .with_context(|| format!("subscribing to {}", E::event_type().name))?;
        let (app, metrics) = (self.app.clone(), self.metrics.clone());
        let name = self.subscription.to_owned();
        Ok(tokio::spawn(subscription.run(
            move |delivery| {
                let (app, metrics, name) = (app.clone(), metrics.clone(), name.clone());
                async move { consumer::on_delivery(&app, &metrics, &name, delivery).await }
            },
            self.shutdown.clone(),
        )))
    }

    /// Every consumer of the service.
    async fn start_all(&self) -> anyhow::Result<Vec<Consumer>> {
        Ok(vec![
            self.start::<CampaignCreated>().await?,
            self.start::<CampaignActivated>().await?,
            self.start::<CampaignPaused>().await?,
            self.start::<CampaignCompleted>().await?,
            self.start::<ConversionAttributed>().await?,
            self.start::<FraudDetected>().await?,
            self.start::<SagaTimedOut>().await?,
        ])
    }
}

/// Runs the service on `listener` until `shutdown`; then stops taking requests and messages,
/// finishes those in hand, flushes the outbox, and returns.
pub async fn run(config: Config, listener: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
    let common = &config.common;
    let admin = Admin::new(&common.pulsar_admin_url);
    admin.bootstrap().await.context("bootstrapping Pulsar")?;
    let bus = Bus::connect(&common.pulsar_url, &common.pulsar_admin_url, "commission")
        .await
        .context("connecting to Pulsar")?;
    let store = MongoStore::connect(&common.mongo_url, &config.database)
        .await
        .context("connecting to MongoDB")?;
    let app = Commissions::new(store.clone());
    let metrics = Metrics::new("commission");

    let relay_stop = Shutdown::new();
    let relay =
        tokio::spawn(Relay::new(store.clone(), bus.publisher().clone()).run(relay_stop.clone()));
    // Consumers stop with the service, or at once if one of them cannot start.
    let consuming = shutdown.child_token();
    let started = Consuming {
        bus: &bus,
        app: &app,
        metrics: &metrics,
        subscription: &config.subscription,
        common: &config.common,
        shutdown: &consuming,
    }
    .start_all()
    .await;
    let consumers = match started {
        Ok(consumers) => consumers,
        Err(e) => {
            consuming.cancel();
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
    for consumer in consumers {
        consumer
            .await
            .context("consumer task")?
            .context("consumer")?;
    }
    relay_stop.cancel();
    relay.await.context("relay task")?;
    bus.publisher().close().await;
    tracing::info!("commission stopped");
    Ok(())
}
