//! The wiring: configuration, connections, the relay, the HTTP server, and the order things
//! stop in. `main` runs it; the tests run it in-process against the real stack.

use alpes_bus::Shutdown;
use alpes_contracts::events::attribution::{ConversionAttributed, ConversionRejected};
use alpes_contracts::events::commission::{
    CommissionRejected, CommissionReserved, CommissionReverted,
};
use alpes_contracts::events::tracking::InteractionTracked;
use alpes_eventstore::MongoStore;
use alpes_runtime::config::CommonArgs;
use alpes_runtime::platform::{Platform, PlatformError};
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

/// Runs the service on `listener` until `shutdown`; then finishes the requests and messages in
/// hand, flushes the outbox, and returns.
pub async fn run(config: Config, listener: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
    let mut platform =
        Platform::start(&config.common, "marketing", &config.database, &shutdown).await?;
    let app = Marketing::new(platform.store().clone());
    observe::<InteractionTracked>(&mut platform, &app, &config).await?;
    observe::<ConversionAttributed>(&mut platform, &app, &config).await?;
    observe::<ConversionRejected>(&mut platform, &app, &config).await?;
    observe::<CommissionReserved>(&mut platform, &app, &config).await?;
    observe::<CommissionRejected>(&mut platform, &app, &config).await?;
    observe::<CommissionReverted>(&mut platform, &app, &config).await?;
    platform
        .serve(listener, adapters::http::routes(app), shutdown)
        .await?;
    Ok(())
}

/// Records the facts `E` announces for the campaign statistics.
async fn observe<E: Observable>(
    platform: &mut Platform,
    app: &Marketing<MongoStore>,
    config: &Config,
) -> Result<(), PlatformError> {
    let app = app.clone();
    let subscription = config.common.subscription(&config.subscription);
    platform
        .consume::<E, _, _>(subscription, move |delivery| {
            let app = app.clone();
            async move { on_observable(&app, delivery).await }
        })
        .await
}
