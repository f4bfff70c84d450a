//! The wiring: configuration, connections, the relay, one consumer per consumed event type,
//! the HTTP server, and the order things stop in. `main` runs it; the tests run it in-process
//! against the real stack.

use alpes_bus::Shutdown;
use alpes_contracts::events::attribution::ConversionAttributed;
use alpes_contracts::events::marketing::{
    CampaignActivated, CampaignCompleted, CampaignCreated, CampaignPaused, FraudDetected,
    SagaTimedOut,
};
use alpes_runtime::config::CommonArgs;
use alpes_runtime::http;
use alpes_runtime::service::{ServiceConfig, ServiceRuntime};
use tokio::net::TcpListener;

use crate::adapters;
use crate::adapters::consumer::SUBSCRIPTION;
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

impl ServiceConfig for Config {
    fn common(&self) -> &CommonArgs {
        &self.common
    }
}

/// Runs the service on `listener` until `shutdown`; then stops taking requests and messages,
/// finishes those in hand, flushes the outbox, and returns.
pub async fn run(config: Config, listener: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
    let mut runtime =
        ServiceRuntime::start(&config.common, "commission", &config.database, &shutdown).await?;
    let app = Commissions::new(runtime.store().clone());
    // Once per database, the list of commissions needs a sweep of what earlier versions wrote:
    // started now so that no request waits for it (one that comes first does).
    let listing = app.clone();
    runtime.spawn_until_done("commission listing", move || {
        let listing = listing.clone();
        async move { listing.prepare_listing().await }
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
        .consume::<ConversionAttributed>(&config.subscription, app.clone())
        .await?;
    runtime
        .consume::<FraudDetected>(&config.subscription, app.clone())
        .await?;
    runtime
        .consume::<SagaTimedOut>(&config.subscription, app.clone())
        .await?;
    let api = adapters::http::routes(app, runtime.access())
        .merge(http::openapi(include_str!("../openapi.json")));
    runtime.serve(listener, api, shutdown).await?;
    Ok(())
}
