//! `attribution`: the attribution service binary. Wiring only; see `service`.

use alpes_attribution::service::{self, Config};
use alpes_runtime::{shutdown, telemetry};
use anyhow::Context;
use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    telemetry::init(config.common.log_format);
    let shutdown = shutdown::on_signals();
    let listener = tokio::net::TcpListener::bind(config.common.http_addr)
        .await
        .with_context(|| format!("binding {}", config.common.http_addr))?;
    service::run(config, listener, shutdown).await
}
