//! `fraud-latency`: time from `FraudDetected` to COMPENSATED in the saga log, over sagas that
//! completed first, against running services and the real stack (`scripts/services.sh up`).
//!
//! ```text
//! eval "$(scripts/stack.sh env)"
//! cargo run --release -p alpes-e2e --bin fraud-latency -- --sagas 100
//! ```
//!
//! Two figures per saga: as the log recorded it (the `FraudDetected` step's time to the
//! `InteractionsDiscarded` step's, both stamped by the services that announced them), and as a
//! client sees it (the fraud report's POST to the first poll that reads COMPENSATED, polling
//! every 20 ms). Sales are driven `--concurrency` at a time; fraud is reported one saga at a
//! time, so each measures an idle platform.

use std::time::{Duration, Instant};

use alpes_e2e::{Endpoints, PlatformClient, print_percentiles};
use clap::Parser;
use serde_json::Value;

#[derive(Parser)]
#[command(about = "Measures FraudDetected → COMPENSATED over sagas that completed first.")]
struct Args {
    #[arg(long, default_value_t = 100)]
    sagas: usize,
    /// Sales driven at once while preparing.
    #[arg(long, default_value_t = 10)]
    concurrency: usize,
    #[command(flatten)]
    endpoints: Endpoints,
}

const WAIT: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        !args.endpoints.token.is_empty(),
        "set ALPES_API_TOKEN (eval \"$(scripts/stack.sh env)\") or --token"
    );
    let platform = args.endpoints.platform();
    let campaign = platform.active_campaign(1_000_000_000, 1_000).await?;
    tokio::time::sleep(Duration::from_secs(1)).await; // the campaign reaches attribution and commission

    eprintln!("driving {} sales to COMPLETED…", args.sagas);
    let mut sagas = Vec::with_capacity(args.sagas);
    for chunk in (0..args.sagas)
        .collect::<Vec<_>>()
        .chunks(args.concurrency.max(1))
    {
        let sales = chunk.iter().map(|_| completed_sale(&platform, &campaign));
        for saga in futures::future::join_all(sales).await {
            sagas.push(saga?);
        }
    }

    eprintln!("reporting fraud on each, one at a time…");
    let (mut logged, mut observed) = (Vec::new(), Vec::new());
    let started = Instant::now();
    for saga in &sagas {
        let t0 = Instant::now();
        platform.report_fraud(saga, "chargeback").await?;
        let compensated = loop {
            let (code, body) = platform.saga(saga).await?;
            if code == 200 && body["status"] == "COMPENSATED" {
                break body;
            }
            anyhow::ensure!(
                t0.elapsed() < WAIT,
                "saga {saga} not COMPENSATED within {WAIT:?}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        observed.push(t0.elapsed());
        logged.push(step_gap(
            &compensated,
            "FraudDetected",
            "InteractionsDiscarded",
        )?);
    }
    let total = started.elapsed();
    print_percentiles("log: FraudDetected → InteractionsDiscarded", &mut logged);
    print_percentiles(
        "client: POST /fraud-reports → COMPENSATED read",
        &mut observed,
    );
    println!(
        "{} sagas compensated in {total:?} ({:.1} sequential compensations/s)",
        sagas.len(),
        sagas.len() as f64 / total.as_secs_f64()
    );
    Ok(())
}

/// A click and a purchase; returns the saga once the log has it COMPLETED.
async fn completed_sale(platform: &PlatformClient, campaign: &str) -> anyhow::Result<String> {
    let visitor = format!("fraud-bench-{}", uuid::Uuid::new_v4().simple());
    platform
        .track("CLICK", &visitor, campaign, Some("partner-1"), None)
        .await?;
    let purchase = platform
        .track(
            "PURCHASE",
            &visitor,
            campaign,
            Some("partner-1"),
            Some(12_000),
        )
        .await?;
    let saga = purchase["saga_id"].as_str().unwrap_or_default().to_owned();
    platform.saga_reaching(&saga, "COMPLETED", WAIT).await?;
    Ok(saga)
}

/// The time between the first `from` step and the first `to` step of `saga`.
fn step_gap(saga: &Value, from: &str, to: &str) -> anyhow::Result<Duration> {
    let at = |event_type: &str| -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
        let step = saga["steps"]
            .as_array()
            .and_then(|steps| steps.iter().find(|s| s["event_type"] == event_type))
            .ok_or_else(|| anyhow::anyhow!("no {event_type} step in {saga}"))?;
        let text = step["occurred_at"].as_str().unwrap_or_default();
        Ok(chrono::DateTime::parse_from_rfc3339(text)?.to_utc())
    };
    Ok((at(to)? - at(from)?).to_std().unwrap_or_default())
}
