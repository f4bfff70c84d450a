//! `alpes`: the command line users drive the platform with.
//!
//! Configuration comes from flags or the environment variables the services read
//! (`ALPES_PULSAR_URL`, `ALPES_PULSAR_ADMIN_URL`), so one `eval "$(scripts/stack.sh env)"`
//! configures both.

use std::path::PathBuf;
use std::process::ExitCode;

use alpes_bus::admin::Admin;
use alpes_contracts::{compat, events};
use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "alpes",
    version,
    about = "Drive and inspect the alpes saga platform."
)]
struct Cli {
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
    /// Create the tenant, namespace, topics and schemas in Pulsar (idempotent).
    #[command(after_help = "Example:\n  alpes bootstrap --admin-url http://127.0.0.1:8080")]
    Bootstrap {
        /// Pulsar's admin REST API.
        #[arg(
            long,
            env = "ALPES_PULSAR_ADMIN_URL",
            default_value = "http://127.0.0.1:8080"
        )]
        admin_url: String,
    },
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

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    match Cli::parse().command {
        Command::Events => {
            print_events();
            Ok(ExitCode::SUCCESS)
        }
        Command::Schema(SchemaCommand::Check { dir }) => schema_check(&dir),
        Command::Bootstrap { admin_url } => {
            let done = Admin::new(&admin_url)
                .bootstrap()
                .await
                .with_context(|| format!("bootstrapping Pulsar at {admin_url}"))?;
            for (topic, version) in done.topics {
                println!("{topic}\tschema version {version}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_events() {
    let rows: Vec<[String; 4]> = events::all()
        .iter()
        .map(|ty| {
            [
                ty.name.to_owned(),
                ty.service.to_owned(),
                ty.topic(),
                format!("schema/{}", ty.schema_path()),
            ]
        })
        .collect();
    let header = ["EVENT", "SERVICE", "TOPIC", "SCHEMA"].map(str::to_owned);
    let mut widths = [0usize; 4];
    for row in std::iter::once(&header).chain(&rows) {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:width$}"))
            .collect();
        println!("{}", line.join("  ").trim_end());
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
