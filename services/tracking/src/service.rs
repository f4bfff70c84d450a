//! The wiring: configuration, connections, the relay, the consumer, the HTTP server, and the
//! order things stop in. `main` runs it; the tests run it in-process against the real stack.

use alpes_bus::Shutdown;
use alpes_contracts::events::attribution::AttributionReverted;
use alpes_runtime::config::CommonArgs;
use alpes_runtime::http;
use alpes_runtime::service::{ServiceConfig, ServiceRuntime};
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

impl ServiceConfig for Config {
    fn common(&self) -> &CommonArgs {
        &self.common
    }
}

/// Runs the service on `listener` until `shutdown`; then stops taking requests and messages,
/// finishes those in hand, flushes the outbox, and returns.
pub async fn run(config: Config, listener: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
    let mut runtime =
        ServiceRuntime::start(&config.common, "tracking", &config.database, &shutdown).await?;
    let app = Tracking::new(runtime.store().clone());
    runtime
        .consume::<AttributionReverted>(&config.subscription, app.clone())
        .await?;
    let api = adapters::http::routes(app, runtime.access())
        .merge(http::openapi(include_str!("../openapi.json")));
    runtime.serve(listener, api, shutdown).await?;
    Ok(())
}
