//! The wiring: configuration, connections, the relay, one consumer per consumed event type,
//! the HTTP server, and the order things stop in. `main` runs it; the tests run it in-process
//! against the real stack.

use alpes_bus::Shutdown;
use alpes_contracts::events::commission::CommissionReverted;
use alpes_contracts::events::marketing::{
    CampaignActivated, CampaignCompleted, CampaignCreated, CampaignPaused,
};
use alpes_contracts::events::tracking::InteractionTracked;
use alpes_runtime::config::CommonArgs;
use alpes_runtime::http;
use alpes_runtime::service::{ServiceConfig, ServiceRuntime};
use tokio::net::TcpListener;

use crate::adapters;
use crate::adapters::consumer::SUBSCRIPTION;
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

impl ServiceConfig for Config {
    fn common(&self) -> &CommonArgs {
        &self.common
    }
}

/// Runs the service on `listener` until `shutdown`; then stops taking requests and messages,
/// finishes those in hand, flushes the outbox, and returns.
pub async fn run(config: Config, listener: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
    let mut runtime =
        ServiceRuntime::start(&config.common, "attribution", &config.database, &shutdown).await?;
    let app = Attribution::new(runtime.store().clone());
    // Until this is done, every new visitor costs a lookup of an index earlier versions kept.
    let sweeping = app.clone();
    runtime.spawn_until_done("legacy visitor sweep", move || {
        let sweeping = sweeping.clone();
        async move { sweeping.sweep_legacy_visitors().await }
    });
    runtime
        .consume::<CampaignCreated>(&config.subscription, app.clone())
        .await?;
    runtime
        .consume::<CampaignActivated>(&config.subscription, app.clone())
        .await?;
    runtime
        .consume::<CampaignPaused>(&config.subscription, app.clone())
        .await?;
    runtime
        .consume::<CampaignCompleted>(&config.subscription, app.clone())
        .await?;
    runtime
        .consume::<InteractionTracked>(&config.subscription, app.clone())
        .await?;
    runtime
        .consume::<CommissionReverted>(&config.subscription, app.clone())
        .await?;
    let api = adapters::http::routes(app, runtime.access())
        .merge(http::openapi(include_str!("../openapi.json")));
    runtime.serve(listener, api, shutdown).await?;
    Ok(())
}
