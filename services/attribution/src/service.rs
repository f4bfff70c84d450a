//! The wiring: configuration, connections, the relay, one consumer per consumed event type,
//! the HTTP server, and the order things stop in. `main` runs it; the tests run it in-process
//! against the real stack.

use alpes_bus::{Handler, Shutdown};
use alpes_contracts::Event;
use alpes_contracts::events::commission::CommissionReverted;
use alpes_contracts::events::marketing::{
    CampaignActivated, CampaignCompleted, CampaignCreated, CampaignPaused,
};
use alpes_contracts::events::tracking::InteractionTracked;
use alpes_eventstore::MongoStore;
use alpes_runtime::config::CommonArgs;
use alpes_runtime::http;
use alpes_runtime::platform::{Platform, PlatformError};
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

/// Runs the service on `listener` until `shutdown`; then stops taking requests and messages,
/// finishes those in hand, flushes the outbox, and returns.
pub async fn run(config: Config, listener: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
    let mut platform =
        Platform::start(&config.common, "attribution", &config.database, &shutdown).await?;
    let app = Attribution::new(platform.store().clone());
    // Until this is done, every new visitor costs a lookup of an index earlier versions kept.
    let sweeping = app.clone();
    tokio::spawn(async move {
        let mut backoff = std::time::Duration::from_secs(1);
        while let Err(e) = sweeping.sweep_legacy_visitors().await {
            tracing::warn!(error = %e, "legacy visitor sweep failed; trying again");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(std::time::Duration::from_secs(60));
        }
    });
    consume::<CampaignCreated>(&mut platform, &app, &config).await?;
    consume::<CampaignActivated>(&mut platform, &app, &config).await?;
    consume::<CampaignPaused>(&mut platform, &app, &config).await?;
    consume::<CampaignCompleted>(&mut platform, &app, &config).await?;
    consume::<InteractionTracked>(&mut platform, &app, &config).await?;
    consume::<CommissionReverted>(&mut platform, &app, &config).await?;
    let api = adapters::http::routes(app, platform.access())
        .merge(http::openapi(include_str!("../openapi.json")));
    platform.serve(listener, api, shutdown).await?;
    Ok(())
}

/// Subscribes to `E` and hands each message to the use cases.
async fn consume<E: Event>(
    platform: &mut Platform,
    app: &Attribution<MongoStore>,
    config: &Config,
) -> Result<(), PlatformError>
where
    Attribution<MongoStore>: Handler<E>,
{
    let subscription = config.common.subscription(&config.subscription);
    platform.consume::<E>(subscription, app.clone()).await
}
