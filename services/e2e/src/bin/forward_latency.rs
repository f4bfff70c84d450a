//! `forward-latency`: time from a purchase's POST to its `CommissionReserved`, over sequential
//! sagas, against running services and the real broker (`scripts/services.sh up`).
//!
//! ```text
//! cargo run --release -p alpes-e2e --bin forward-latency -- --sagas 100
//! ```

use std::time::{Duration, Instant};

use alpes_contracts::events::commission::CommissionReserved;
use alpes_e2e::{Endpoints, print_percentiles};
use alpes_testkit::Observer;
use clap::Parser;

#[derive(Parser)]
#[command(about = "Measures purchase POST → CommissionReserved over sequential sagas.")]
struct Args {
    #[arg(long, default_value_t = 100)]
    sagas: usize,
    #[command(flatten)]
    endpoints: Endpoints,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let platform = args.endpoints.platform();
    let bus = args.endpoints.bus("forward-latency").await?;
    let mut reserved = Observer::<CommissionReserved>::try_listen(&bus).await?;
    let campaign = platform.active_campaign(1_000_000_000, 1_000).await?;
    tokio::time::sleep(Duration::from_secs(1)).await; // the campaign reaches attribution and commission

    let mut latencies = Vec::with_capacity(args.sagas);
    let started = Instant::now();
    for i in 0..args.sagas {
        let visitor = format!("bench-{}-{i}", uuid::Uuid::new_v4().simple());
        platform
            .track("CLICK", &visitor, &campaign, Some("partner-1"), None)
            .await?;
        let t0 = Instant::now();
        let purchase = platform
            .track(
                "PURCHASE",
                &visitor,
                &campaign,
                Some("partner-1"),
                Some(12_000),
            )
            .await?;
        let saga = purchase["saga_id"].as_str().unwrap_or_default().to_owned();
        reserved
            .next_of_saga_within(&saga, Duration::from_secs(30))
            .await?;
        latencies.push(t0.elapsed());
    }
    let total = started.elapsed();
    println!("sagas: {}", latencies.len());
    print_percentiles("purchase POST -> CommissionReserved", &mut latencies);
    println!(
        "wall time {total:?} ({:.1} sequential sagas/s)",
        latencies.len() as f64 / total.as_secs_f64()
    );
    Ok(())
}
