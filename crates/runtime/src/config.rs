//! Settings every service reads. Flags and environment variables carry the same names the
//! local stack prints (`scripts/stack.sh env`), so one `eval` configures every process.

use std::net::SocketAddr;
use std::time::Duration;

use alpes_bus::{BusError, PulsarToken, StartAt, SubscriptionConfig};
use alpes_contracts::{DEFAULT_NAMESPACE, Namespace};

use crate::auth::{Access, Scope, Tokens};

/// The API token [`CommonArgs::for_tests`] configures, holding every scope.
pub const TEST_API_TOKEN: &str = "alpes-test-token";

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
    /// Pulsar tenant/namespace of every topic the service reads and writes. The platform runs
    /// in `alpes/events`; a test suite in a namespace of its own, so that a platform left
    /// running and the tests never consume each other's events.
    #[arg(long, env = "ALPES_PULSAR_NAMESPACE", default_value = DEFAULT_NAMESPACE)]
    pub pulsar_namespace: Namespace,
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
    /// Where the service's subscriptions begin when they do not exist yet: `earliest` (a new
    /// deployment misses nothing) or `latest` (only what is published from now on: a
    /// throwaway instance on shared topics, such as a test's, that must not replay history).
    #[arg(long, env = "ALPES_SUBSCRIBE_FROM", value_enum, default_value_t = SubscribeFrom::Earliest)]
    pub subscribe_from: SubscribeFrom,
    /// Messages one consumer handles at once (one key's messages stay one at a time, in
    /// order). A service whose messages all write one hot stream sets its own lower value.
    #[arg(long, env = "ALPES_CONSUMER_CONCURRENCY", default_value_t = 8)]
    pub consumer_concurrency: usize,
    /// The wait before a message's first retry; it doubles per attempt (five attempts, the
    /// last about fifteen times this after the first). What waits for another topic's event
    /// (a campaign, a late click) waits that long before it decides without it.
    #[arg(long, env = "ALPES_RETRY_BACKOFF", default_value = "1s", value_parser = parse_duration)]
    pub retry_backoff: Duration,
    /// The JWT this service presents to Pulsar (binary protocol and admin API) on a broker with
    /// token authentication: its own role's (`alpes-<service>`), which may produce its events
    /// and consume its subscriptions only. Where the broker refuses that role to bootstrap, the
    /// service checks instead that the schemas of its topics are registered (`alpes bootstrap`
    /// registers them, as the admin role).
    #[arg(long, env = "ALPES_PULSAR_TOKEN", hide_env_values = true)]
    pub pulsar_token: Option<String>,
    /// A bearer token holding every scope of the HTTP API (the operator's); see [`crate::auth`].
    #[arg(long, env = "ALPES_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
    /// Further bearer tokens and their scopes: `read=…,read+operate=…,ingest=…` (comma or
    /// newline separated; a scope may be held by several tokens, to rotate them).
    #[arg(long, env = "ALPES_API_TOKENS", hide_env_values = true, value_parser = Tokens::parse)]
    pub api_tokens: Option<Tokens>,
}

impl CommonArgs {
    /// Settings for a service a test runs in process, listening on `http_addr`: the local
    /// stack's addresses (and Pulsar token) from the environment (as `scripts/stack.sh env`
    /// prints them), text logs,
    /// new subscriptions from the latest message, and [`TEST_API_TOKEN`] as the API token. A
    /// test changes what it needs with `CommonArgs { .., ..CommonArgs::for_tests(addr) }`.
    pub fn for_tests(http_addr: SocketAddr) -> Self {
        let env = |name: &str, default: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_owned())
        };
        Self {
            http_addr,
            pulsar_url: env("ALPES_PULSAR_URL", "pulsar://127.0.0.1:6650"),
            pulsar_admin_url: env("ALPES_PULSAR_ADMIN_URL", "http://127.0.0.1:8080"),
            pulsar_namespace: DEFAULT_NAMESPACE
                .parse()
                .expect("the default namespace is valid"),
            mongo_url: env("ALPES_MONGO_URL", "mongodb://127.0.0.1:27017"),
            log_format: LogFormat::Text,
            subscribe_from: SubscribeFrom::Latest,
            consumer_concurrency: 8,
            retry_backoff: Duration::from_secs(1),
            pulsar_token: std::env::var("ALPES_PULSAR_TOKEN")
                .ok()
                .filter(|t| !t.is_empty()),
            api_token: Some(TEST_API_TOKEN.to_owned()),
            api_tokens: None,
        }
    }

    /// The Pulsar token to present ([`CommonArgs::pulsar_token`]); `None` when unset or empty
    /// (a deployment passing an empty setting means none).
    pub fn pulsar_token(&self) -> Result<Option<PulsarToken>, BusError> {
        PulsarToken::optional(self.pulsar_token.as_deref())
    }

    /// The HTTP API's tokens: [`CommonArgs::api_token`] with every scope, and
    /// [`CommonArgs::api_tokens`].
    pub fn access(&self) -> Access {
        let mut tokens = self.api_tokens.clone().unwrap_or_default();
        if let Some(token) = &self.api_token {
            tokens.add(token, &Scope::ALL);
        }
        Access::new(tokens)
    }

    /// The configuration of subscription `name`, starting where [`CommonArgs::subscribe_from`] says.
    pub fn subscription(&self, name: &str) -> SubscriptionConfig {
        let mut config = SubscriptionConfig::new(name);
        config.concurrency = self.consumer_concurrency.max(1);
        config.backoff.initial = self.retry_backoff;
        config.start_at = match self.subscribe_from {
            SubscribeFrom::Earliest => StartAt::Earliest,
            SubscribeFrom::Latest => StartAt::Latest,
        };
        config
    }
}

/// Where a new subscription starts reading.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscribeFrom {
    /// The oldest retained message.
    Earliest,
    /// The next message published.
    Latest,
}

/// How logs are written.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

/// A duration as people write it in flags and environment variables: a whole number and a
/// unit, `ms`, `s`, `m` or `h` (`500ms`, `30s`, `2m`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?} has no unit; write e.g. 30s, 500ms, 2m"))?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} does not start with a whole number"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!(
            "unknown unit {unit:?} in {text:?}; use ms, s, m or h"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_written() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration(" 2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        for bad in ["30", "s", "-1s", "1.5s", "3d", ""] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
