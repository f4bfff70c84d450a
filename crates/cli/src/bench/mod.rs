//! `alpes bench`: an open-loop benchmark of a running platform that answers "what does one
//! saga cost?" — CPU per process, store commands and Pulsar messages per completed saga — and
//! how long sagas take at a given arrival rate.
//!
//! Why these figures: the machines are shared and noisy, so `shared/PERFORMANCE.md` compares
//! runs by CPU-seconds and operations per completed saga, not by wall-clock throughput. The
//! bench reads every counter before and after the load ([`probe`]), and only the work done in
//! between is charged to the sagas.
//!
//! The parts, in the order a run uses them:
//! - [`observe`] subscribes to the commission's outcome topics before anything starts, so the
//!   end of every saga is heard without polling (polling would cost the platform what the
//!   bench is measuring);
//! - a campaign is opened with a budget that covers every sale (as `alpes simulate` does);
//! - [`probe`] takes the first snapshot;
//! - [`load`] starts saga `i` at `i / --rate` seconds, each a fresh visitor's views, clicks and
//!   purchase; [`tally`] matches each purchase with its outcome, until every saga has one or
//!   `--settle` has passed since the last purchase was answered;
//! - the second snapshot, then [`report`] divides the differences by the completed sagas.

mod load;
mod observe;
mod probe;
mod report;
mod tally;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alpes_bus::Shutdown;
use alpes_contracts::Money;
use anyhow::Context;
use clap::Args;
use tokio::sync::mpsc;

use crate::simulate::plan::{self, PlanConfig};
use crate::simulate::platform::{PlatformApi, ServiceArgs, ample_budget};
use crate::simulate::{Bars, CAMPAIGN_READY_TIMEOUT};
use crate::{PulsarArgs, Refused};
use load::{Driven, Script};
use observe::{Heard, Observer};
use probe::pulsar::PulsarAdmin;
use probe::{Probes, Side};
use tally::Tally;

pub const EXAMPLES: &str = "Examples:
  alpes bench
  alpes bench --rate 20 --duration 2m --json bench.json
  alpes bench --rate 100 --duration 10s --views 3 --clicks 2 --fraud-rate 0.1
  scripts/bench.sh --rate 50        (brings the stack and services up; adds Postgres commits)

Saga i starts at i / --rate seconds whatever became of the ones before (an open loop): a
fresh visitor's views, clicks and purchase on tracking. A saga is complete when its
CommissionReserved or CommissionRejected is heard on Pulsar. CPU time of Pulsar, FerretDB,
Postgres and the four services (pid files under --stack-dir), FerretDB's commands and Pulsar's
messages are read before and after, and divided by the completed sagas.
Exit code 1 when a started saga has no outcome --settle after the last purchase was answered,
or a visitor's requests failed.";

/// What the campaign and the purchases are paid in.
const CURRENCY: &str = "EUR";

/// Partners the traffic comes through.
const PARTNERS: u32 = 5;

/// The seed of the sagas' amounts, partners and fraud picks: the same every run, so that runs
/// compare. Visitors and orders are still new each run (they are named after the run).
const SEED: u64 = 1;

/// `alpes bench` flags.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Sagas started per second.
    #[arg(long, default_value_t = 50.0, value_parser = sagas_per_second)]
    pub rate: f64,
    /// How long sagas keep arriving.
    #[arg(long, default_value = "30s", value_parser = crate::when::parse_duration)]
    pub duration: Duration,
    /// Page views of each visitor before its clicks.
    #[arg(long, default_value_t = 1)]
    pub views: u32,
    /// Clicks on the partner's link before the purchase.
    #[arg(long, default_value_t = 1)]
    pub clicks: u32,
    /// Fraction of the sagas reported as fraud right after their purchase (0 to 1).
    #[arg(long, default_value_t = 0.0, value_parser = crate::simulate::rate)]
    pub fraud_rate: f64,
    /// How long to wait for outcomes once every purchase has been answered.
    #[arg(long, default_value = "60s", value_parser = crate::when::parse_duration)]
    pub settle: Duration,
    /// Also write the result, as one JSON object, to this file.
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
    /// Where the local stack keeps its pid files (scripts/stack.sh, scripts/services.sh;
    /// `scripts/stack.sh env` exports it).
    #[arg(long, env = "ALPES_STACK_DIR", default_value = ".stack")]
    pub stack_dir: PathBuf,
    /// FerretDB's Prometheus metrics (its --debug-addr; `scripts/stack.sh env` exports it).
    #[arg(
        long,
        env = "ALPES_FERRETDB_METRICS_URL",
        default_value = "http://127.0.0.1:8088/debug/metrics"
    )]
    pub ferretdb_metrics: String,
    #[command(flatten)]
    pub services: ServiceArgs,
    #[command(flatten)]
    pub pulsar: PulsarArgs,
}

fn sagas_per_second(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!(
            "{text:?} is not a positive number of sagas per second"
        )),
    }
}

pub async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let planned = (args.rate * args.duration.as_secs_f64()).round();
    if !(1.0..=f64::from(u32::MAX)).contains(&planned) {
        return Err(Refused(format!(
            "--rate {} for --duration {:?} makes {planned} sagas: at least 1 is needed",
            args.rate, args.duration
        ))
        .into());
    }
    let planned = planned as u32;
    let platform = Arc::new(args.services.platform()?);
    let admin = PulsarAdmin::new(&args.pulsar.pulsar_admin_url, args.pulsar.token()?);
    let observer = Observer::subscribe(&args.pulsar, args.fraud_rate > 0.0).await?;
    let trail = observer.trail().clone();
    let result = measure(&args, planned, platform, observer, admin.clone()).await;
    for failure in trail.remove(&admin).await {
        eprintln!(
            "warning: the bench's subscription {} is left: {failure}",
            trail.name
        );
    }
    result
}

/// Everything after subscribing: campaign, load, snapshots, report.
async fn measure(
    args: &BenchArgs,
    planned: u32,
    platform: Arc<PlatformApi>,
    observer: Observer,
    admin: PulsarAdmin,
) -> anyhow::Result<ExitCode> {
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let budget = Money::new(ample_budget(planned), CURRENCY);
    let campaign = platform
        .open_campaign(&format!("alpes bench {run_id}"), &budget)
        .await
        .context("creating the bench's campaign")?;
    platform
        .wait_until_active(&campaign, CAMPAIGN_READY_TIMEOUT)
        .await?;
    eprintln!(
        "run {run_id}: campaign {campaign} active; {planned} sagas at {} per second, outcomes \
         heard as subscription {}",
        args.rate,
        observer.trail().name
    );
    let visitors = plan::plan(&PlanConfig {
        visitors: planned,
        purchase_rate: 1.0,
        frauds: plan::FraudShare::Rate(args.fraud_rate),
        partners: PARTNERS,
        seed: SEED,
    });
    let script = Arc::new(Script {
        run_id: run_id.clone(),
        campaign: campaign.clone(),
        currency: CURRENCY.to_owned(),
        views: args.views,
        clicks: args.clicks,
    });
    let probes = Probes::new(&args.stack_dir, &args.ferretdb_metrics, admin);
    let before = probes.snapshot(Side::Before).await;

    let bars = Bars::new(planned, planned as usize);
    let shutdown = Shutdown::new();
    let (heard_tx, heard_rx) = mpsc::unbounded_channel();
    let (driven_tx, driven_rx) = mpsc::unbounded_channel();
    let t0 = Instant::now();
    let listening = observer.listen(heard_tx, shutdown.clone());
    let driving = load::drive(
        platform,
        script,
        visitors,
        args.rate,
        t0,
        driven_tx,
        shutdown.clone(),
    );
    let watching = async {
        let tally = watch(driven_rx, heard_rx, args.settle, &bars).await;
        // Before the consumers close: closing is work for the broker too.
        let after = probes.snapshot(Side::After).await;
        shutdown.cancel();
        (tally, after)
    };
    let (listened, (), (tally, after)) = tokio::join!(listening, driving, watching);
    bars.finish();

    let mut costs = probe::costs(&before, &after);
    if let Err(e) = listened {
        costs.notes.push(format!("{e:#}"));
    }
    let window = tally
        .last_finished()
        .map_or(Duration::ZERO, |last| last.saturating_duration_since(t0));
    let settings = report::Settings {
        run_id,
        campaign_id: campaign,
        rate: args.rate,
        duration: args.duration,
        views: args.views,
        clicks: args.clicks,
        fraud_rate: args.fraud_rate,
        planned: planned as usize,
        ticks_per_second: probe::cpu::ticks_per_second(),
        cores: std::thread::available_parallelism().map_or(1, usize::from),
    };
    let results = report::results(settings, &tally, window, costs);
    print!("{}", report::render(&results));
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&results)? + "\n";
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    let sagas = &results.sagas;
    Ok(
        if sagas.stuck > 0 || sagas.uncompensated > 0 || sagas.failed > 0 || sagas.completed == 0 {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        },
    )
}

/// Tallies what the drivers and the subscriptions report until every saga started has its
/// outcome, `settle` after the drivers are done, or Ctrl-C.
async fn watch(
    mut driven: mpsc::UnboundedReceiver<Driven>,
    mut heard: mpsc::UnboundedReceiver<Heard>,
    settle: Duration,
    bars: &Bars,
) -> Tally {
    let mut tally = Tally::default();
    let mut deadline: Option<tokio::time::Instant> = None;
    // Ctrl-C ends the run early: what was measured is still reported, the subscription removed.
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        if deadline.is_some() && tally.open_count() == 0 {
            break;
        }
        tokio::select! {
            next = driven.recv(), if deadline.is_none() => match next {
                Some(Driven::Started { saga_id, purchased }) => {
                    bars.visitors.inc(1);
                    if tally.started(saga_id, purchased) {
                        bars.sagas.inc(1);
                    }
                }
                Some(Driven::FraudReported { saga_id, reported }) => {
                    tally.fraud_reported(saga_id, reported)
                }
                Some(Driven::Failed(error)) => {
                    bars.visitors.inc(1);
                    tally.failed(error);
                }
                Some(Driven::Error(error)) => tally.errors.push(error),
                None => deadline = Some(tokio::time::Instant::now() + settle),
            },
            next = heard.recv() => match next {
                Some(outcome) => {
                    if tally.heard(outcome) {
                        bars.sagas.inc(1);
                    }
                }
                None => {
                    tally.errors.push("the outcome subscriptions stopped early".into());
                    break;
                }
            },
            () = sleep_until(deadline), if deadline.is_some() => break,
            _ = &mut interrupted => {
                tally.errors.push("interrupted (Ctrl-C) before every saga ended".into());
                break;
            }
        }
        bars.sagas
            .set_message(format!("{} open", tally.open_count()));
    }
    tally
}

/// Sleeps until `deadline`; forever without one.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_a_positive_number() {
        assert_eq!(sagas_per_second("2.5"), Ok(2.5));
        for bad in ["0", "-1", "NaN", "inf", "fast"] {
            assert!(sagas_per_second(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
