//! `alpes`: the command line users drive the platform with.
//!
//! Configuration comes from flags or the environment variables the services read
//! (`ALPES_PULSAR_URL`, `ALPES_PULSAR_ADMIN_URL`, `ALPES_PULSAR_NAMESPACE`, `ALPES_MARKETING_URL`,
//! `ALPES_API_TOKEN`, ...), so one `eval "$(scripts/stack.sh env)"` configures both. The Pulsar
//! namespace is a global flag: every command that names a topic (events, bootstrap, publish,
//! simulate, bench) speaks to the platform running in that namespace.
//!
//! Exit codes: 0 success, 1 failure (including a simulation whose sagas did not end as
//! expected, or a benchmark whose sagas did not all end), 2 refused input (an unknown event
//! type, a document that does not fit its schema, bad flags) — nothing was done.

mod api;
mod bench;
mod events;
mod format;
mod json_avro;
mod publish;
mod saga;
mod simulate;
mod table;
mod when;

use std::path::PathBuf;
use std::process::ExitCode;

use alpes_bus::admin::Admin;
use alpes_bus::permissions::{self, SubscriptionNames};
use alpes_bus::{Bus, PulsarToken};
use alpes_contracts::{DEFAULT_NAMESPACE, Namespace, compat};
use anyhow::Context;
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "alpes",
    version,
    about = "Drive and inspect the alpes saga platform.",
    after_help = "Examples:
  alpes events
  echo '{\"metadata\":{\"saga_id\":\"s-1\"},\"reason\":\"chargeback\",\"reporter\":\"me\"}' | alpes publish FraudDetected -
  alpes saga list --status COMPENSATED --since 1h
  alpes simulate --visitors 200 --purchase-rate 0.3 --fraud-rate 0.2 --seed 7
  alpes bench --rate 20 --duration 1m"
)]
struct Cli {
    /// The Pulsar tenant/namespace of the platform's topics (a test suite runs in its own).
    #[arg(
        long,
        global = true,
        env = "ALPES_PULSAR_NAMESPACE",
        default_value = DEFAULT_NAMESPACE
    )]
    pulsar_namespace: Namespace,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List every event type with its owning service, topic and schema file.
    #[command(after_help = "Example:\n  alpes events")]
    Events,
    /// Work with the Avro contracts under schema/.
    #[command(subcommand)]
    Schema(SchemaCommand),
    /// Create the tenant, namespace, topics and schemas in Pulsar (idempotent), in
    /// `--pulsar-namespace`; on a broker with token authentication (`--pulsar-token`, the admin
    /// role's), also grant each service's role what it produces and consumes.
    #[command(after_help = "Example:\n  alpes bootstrap --admin-url http://127.0.0.1:8080")]
    Bootstrap {
        /// Pulsar's admin REST API.
        #[arg(
            long,
            env = "ALPES_PULSAR_ADMIN_URL",
            default_value = "http://127.0.0.1:8080"
        )]
        admin_url: String,
        /// The admin role's JWT, on a broker with token authentication and authorization.
        #[arg(long, env = "ALPES_PULSAR_TOKEN", hide_env_values = true)]
        pulsar_token: Option<String>,
    },
    /// Validate a JSON event against its Avro schema and publish it to the event's topic.
    #[command(after_help = publish::EXAMPLES)]
    Publish(publish::PublishArgs),
    /// Inspect sagas through the marketing service's saga log.
    Saga(saga::SagaArgs),
    /// Drive visitors, purchases and fraud reports through a running platform and check that
    /// every saga ends as its script implies.
    #[command(after_help = simulate::EXAMPLES)]
    Simulate(simulate::SimulateArgs),
    /// Start sagas at a fixed rate against the local stack and report what one saga costs:
    /// CPU per process, store commands and Pulsar messages, and how long sagas take.
    #[command(after_help = bench::EXAMPLES)]
    Bench(bench::BenchArgs),
}

#[derive(Subcommand)]
enum SchemaCommand {
    /// Check every schema against the earlier revisions of its major version (full
    /// compatibility: backward and forward). Exits 1 on any incompatibility.
    #[command(after_help = "Example:\n  alpes schema check --dir schema")]
    Check {
        /// The schema root holding v1/, v2/, ...
        #[arg(long, default_value = "schema")]
        dir: PathBuf,
    },
}

/// Where Pulsar is, for the commands that publish.
#[derive(Args, Debug, Clone)]
pub struct PulsarArgs {
    /// Pulsar's binary protocol endpoint.
    #[arg(
        long,
        env = "ALPES_PULSAR_URL",
        default_value = "pulsar://127.0.0.1:6650"
    )]
    pub pulsar_url: String,
    /// Pulsar's admin REST API (writer schemas are looked up there).
    #[arg(
        long,
        env = "ALPES_PULSAR_ADMIN_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub pulsar_admin_url: String,
    /// The JWT to present on a broker with token authentication (a role that may produce what
    /// the command publishes, or the admin role's).
    #[arg(long, env = "ALPES_PULSAR_TOKEN", hide_env_values = true)]
    pub pulsar_token: Option<String>,
}

impl PulsarArgs {
    /// [`PulsarArgs::pulsar_token`], parsed; `None` when unset or empty.
    pub fn token(&self) -> anyhow::Result<Option<PulsarToken>> {
        Ok(PulsarToken::optional(self.pulsar_token.as_deref())?)
    }

    /// A connection to the broker on behalf of `client`, with the token if there is one.
    pub async fn connect(&self, client: &str) -> anyhow::Result<Bus> {
        Bus::connect_with(
            &self.pulsar_url,
            &self.pulsar_admin_url,
            client,
            self.token()?,
        )
        .await
        .with_context(|| format!("connecting to Pulsar at {}", self.pulsar_url))
    }
}

/// The input was refused before anything was done: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let cli = Cli::parse();
    // Before any topic is named, so that every command speaks to the same namespace.
    if let Err(error) = cli.pulsar_namespace.install() {
        eprintln!("error: {error}");
        return ExitCode::from(2);
    }
    match run(cli.command).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            if error.is::<Refused>() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// `name` from the environment, or `default` when unset or empty.
fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Events => {
            print!("{}", events::table());
            Ok(ExitCode::SUCCESS)
        }
        Command::Schema(SchemaCommand::Check { dir }) => schema_check(&dir),
        Command::Bootstrap {
            admin_url,
            pulsar_token,
        } => {
            let token = PulsarToken::optional(pulsar_token.as_deref())?;
            let authorized = token.is_some();
            let admin = Admin::authenticated(&admin_url, token);
            let done = admin
                .bootstrap()
                .await
                .with_context(|| format!("bootstrapping Pulsar at {admin_url}"))?;
            for (topic, version) in done.topics {
                println!("{topic}\tschema version {version}");
            }
            if authorized {
                let names = SubscriptionNames {
                    tracking: env_or("ALPES_TRACKING_SUBSCRIPTION", "tracking"),
                    attribution: env_or("ALPES_ATTRIBUTION_SUBSCRIPTION", "attribution"),
                    commission: env_or("ALPES_COMMISSION_SUBSCRIPTION", "commission"),
                    marketing: env_or("ALPES_MARKETING_SUBSCRIPTION", "marketing"),
                };
                let plan = permissions::plan(Namespace::current(), &permissions::platform(&names));
                let applied = admin
                    .apply(&plan)
                    .await
                    .with_context(|| format!("granting the services' roles at {admin_url}"))?;
                println!("permissions: {applied:?}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Publish(args) => publish::run(args).await,
        Command::Saga(args) => saga::run(args).await,
        Command::Simulate(args) => simulate::run(args).await,
        Command::Bench(args) => bench::run(args).await,
    }
}

fn schema_check(dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    let report = compat::check(dir).with_context(|| format!("checking {}", dir.display()))?;
    for incompatibility in &report.incompatibilities {
        eprintln!("incompatible: {incompatibility}");
    }
    println!(
        "{} schema(s) checked against {} earlier revision(s): {} incompatibilit{}",
        report.schemas,
        report.revisions,
        report.incompatibilities.len(),
        if report.incompatibilities.len() == 1 {
            "y"
        } else {
            "ies"
        }
    );
    Ok(if report.incompatibilities.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
