//! Settings every service reads. Flags and environment variables carry the same names the
//! local stack prints (`scripts/stack.sh env`), so one `eval` configures every process.

use std::net::SocketAddr;

/// Connection settings shared by every service; `#[command(flatten)]` it into a service's own.
#[derive(clap::Args, Debug, Clone)]
pub struct CommonArgs {
    /// Address the HTTP API (and /healthz, /readyz, /metrics) listens on.
    #[arg(long, env = "ALPES_HTTP_ADDR")]
    pub http_addr: SocketAddr,
    /// Pulsar broker.
    #[arg(
        long,
        env = "ALPES_PULSAR_URL",
        default_value = "pulsar://127.0.0.1:6650"
    )]
    pub pulsar_url: String,
    /// Pulsar admin REST API (bootstrap, schema registry).
    #[arg(
        long,
        env = "ALPES_PULSAR_ADMIN_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub pulsar_admin_url: String,
    /// MongoDB (or FerretDB) holding the service's event streams.
    #[arg(
        long,
        env = "ALPES_MONGO_URL",
        default_value = "mongodb://127.0.0.1:27017"
    )]
    pub mongo_url: String,
    /// Log output: `json` for machines, `text` for people.
    #[arg(long, env = "ALPES_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
}

/// How logs are written.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}
