//! `alpes simulate`: a load generator that plays visitors against a running platform over
//! HTTP and checks that every saga ends as its script implies.
//!
//! Three parts run side by side: the plan (decided up front from the seed, see [`plan`]), the
//! drivers (view, click, maybe purchase, maybe an immediate fraud report; `--concurrency` at a
//! time) and the watcher, which polls `GET /sagas/{id}` for every saga started, reports fraud
//! once a fraud saga has COMPLETED (unless `--fraud-when at-once`), and notes when each saga
//! reaches its final status. When the drivers are done the watcher gets `--timeout` more to see
//! every saga settle; then [`audit`] reads the money and the log, [`report`] judges the
//! outcomes, and `--timelines` prints every saga as `alpes saga show` does.

pub(crate) mod audit;
mod drive;
pub(crate) mod plan;
pub(crate) mod platform;
pub(crate) mod progress;
pub(crate) mod report;
mod watch;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alpes_bus::Bus;
use alpes_contracts::events::marketing::FraudDetected;
use alpes_contracts::{EventMetadata, Money};
use anyhow::Context;
use clap::{Args, ValueEnum};
use serde_json::json;
use tokio::sync::{Mutex, mpsc};

use crate::PulsarArgs;
use drive::drive_all;
use plan::{FraudShare, PlanConfig};
use platform::{PlatformApi, ServiceArgs};
pub(crate) use progress::Bars;
use report::Run;
use watch::watch;

/// Who a simulation's fraud reports say they come from.
pub const REPORTER: &str = "alpes simulate";

/// How often the watcher asks the saga log about unsettled sagas.
const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// How long attribution and commission get to learn of a new campaign.
pub(crate) const CAMPAIGN_READY_TIMEOUT: Duration = Duration::from_secs(30);

pub const EXAMPLES: &str = "Examples:
  alpes simulate --visitors 100 --purchase-rate 0.3 --fraud-rate 0.2 --seed 42
  alpes simulate --visitors 1000 --purchase-rate 0.5 --fraud-rate 0.1 --concurrency 16 --json
  alpes simulate --visitors 50 --purchase-rate 1 --fraud-rate 0 --budget 20000   (runs out of budget)
  alpes simulate --campaign c-spring --fraud-via topic --fraud-when at-once
  alpes simulate --visitors 6 --purchase-rate 1 --frauds 3 --fraud-via topic --timelines

Each visitor views and clicks a partner's link, then buys with probability --purchase-rate.
round(--fraud-rate × sales) of the sales (or exactly --frauds), chosen by the seed, are reported
as fraud: by default once their saga is COMPLETED, with --fraud-when at-once right after the
purchase.
Verdict: a fraud sale must end COMPENSATED, any other sale COMPLETED; REJECTED is accepted
only when --budget was set (running out of budget is then the point). Then the money and the
log: a COMPLETED saga's commission is RESERVED or CONFIRMED, any other's holds nothing (and is
REVERTED when fraud was reported after the sale COMPLETED), the campaign's budget reserved exactly their sum (when the run created it), and no event type is
in a saga's log twice. Anything else, or a saga still moving --timeout after the last purchase,
exits 1.";

/// Where fraud reports go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FraudVia {
    /// `POST /fraud-reports` on marketing, with the API token.
    Http,
    /// `FraudDetected` published straight to its Pulsar topic.
    Topic,
}

/// When a fraud sale is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FraudWhen {
    /// Once the saga log shows the sale COMPLETED: fraud found after the fact.
    Completed,
    /// Right after the purchase: the report races the forward path.
    AtOnce,
}

/// `alpes simulate` flags.
#[derive(Args, Debug)]
pub struct SimulateArgs {
    /// How many visitors to play.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub visitors: u32,
    /// Probability that a visitor buys (0 to 1).
    #[arg(long, default_value_t = 0.3, value_parser = rate)]
    pub purchase_rate: f64,
    /// Fraction of the sales reported as fraud (0 to 1).
    #[arg(long, default_value_t = 0.1, value_parser = rate)]
    pub fraud_rate: f64,
    /// Exactly this many sales reported as fraud, instead of --fraud-rate (refused when the
    /// plan has fewer sales).
    #[arg(long, conflicts_with = "fraud_rate")]
    pub frauds: Option<u32>,
    /// An existing ACTIVE campaign; by default the run creates and activates one.
    #[arg(long)]
    pub campaign: Option<String>,
    /// Budget of the campaign the run creates, in minor units; by default one that covers
    /// every sale. Setting it makes REJECTED an acceptable outcome.
    #[arg(long, conflicts_with = "campaign", value_parser = clap::value_parser!(i64).range(1..))]
    pub budget: Option<i64>,
    /// Currency of the campaign and the purchases.
    #[arg(long, default_value = "EUR")]
    pub currency: String,
    /// How many partners the traffic comes through.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub partners: u32,
    /// Requests in flight at once, for driving and for polling each.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub concurrency: u32,
    /// Visitors started per second at most (a steady load); as fast as --concurrency allows
    /// by default. Tracking takes interactions far faster than the sagas behind them settle,
    /// so an unpaced run of thousands queues sagas past their deadline.
    #[arg(long, value_parser = positive_rate)]
    pub rate: Option<f64>,
    /// How long to wait, after the last purchase, for every saga to settle.
    #[arg(long, default_value = "120s", value_parser = crate::when::parse_duration)]
    pub timeout: Duration,
    /// Seed of the random choices; the same seed plays the same script. Random by default
    /// (the summary says which).
    #[arg(long)]
    pub seed: Option<u64>,
    /// How fraud is reported.
    #[arg(long, value_enum, default_value_t = FraudVia::Http)]
    pub fraud_via: FraudVia,
    /// When fraud is reported.
    #[arg(long, value_enum, default_value_t = FraudWhen::Completed)]
    pub fraud_when: FraudWhen,
    /// Print the summary and every saga's outcome as JSON.
    #[arg(long)]
    pub json: bool,
    /// Before the summary, print every saga's timeline as `alpes saga show` does.
    #[arg(long, conflicts_with = "json")]
    pub timelines: bool,
    #[command(flatten)]
    pub services: ServiceArgs,
    #[command(flatten)]
    pub pulsar: PulsarArgs,
}

/// `--rate`: a positive number of visitors per second.
fn positive_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err(format!(
            "{text:?} is not a positive number of visitors per second"
        )),
    }
}

/// A `--…-rate` flag: a fraction from 0 to 1.
pub(crate) fn rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(format!("{text:?} is not a rate from 0 to 1")),
    }
}

/// A saga a driver started.
#[derive(Debug, Clone)]
struct Started {
    saga_id: String,
    /// Whether its script reports it as fraud (and, at once, whether that report went out).
    fraud: bool,
    reported: bool,
    /// Whether the report went out once the saga log showed it COMPLETED.
    reported_completed: bool,
    purchased: Instant,
}

/// Where fraud reports are sent.
enum FraudSink {
    Http,
    Topic(Box<Bus>),
}

/// What every task of a run shares.
struct Simulation {
    platform: PlatformApi,
    sink: FraudSink,
    run_id: String,
    campaign: String,
    currency: String,
    fraud_when: FraudWhen,
    concurrency: usize,
    /// Visitors started per second at most.
    rate: Option<f64>,
    errors: Mutex<Vec<String>>,
}

impl Simulation {
    async fn error(&self, error: String) {
        self.errors.lock().await.push(error);
    }

    async fn report_fraud(&self, saga_id: &str) -> Result<(), String> {
        let reason = format!("simulated fraud (run {})", self.run_id);
        match &self.sink {
            FraudSink::Http => self
                .platform
                .report_fraud(saga_id, &reason)
                .await
                .map_err(|e| format!("reporting fraud on saga {saga_id}: {e}")),
            FraudSink::Topic(bus) => {
                let event = FraudDetected {
                    metadata: EventMetadata::new::<FraudDetected>()
                        .in_saga(saga_id)
                        .produced_by(crate::publish::PRODUCER),
                    reason,
                    reporter: REPORTER.to_owned(),
                    score: Some(90),
                };
                bus.publisher()
                    .publish(&event)
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("publishing FraudDetected for saga {saga_id}: {e}"))
            }
        }
    }
}

pub async fn run(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let seed = args.seed.unwrap_or_else(random_seed);
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let platform = args.services.platform()?;
    let plan = plan::plan(&PlanConfig {
        visitors: args.visitors,
        purchase_rate: args.purchase_rate,
        frauds: args
            .frauds
            .map_or(FraudShare::Rate(args.fraud_rate), FraudShare::Count),
        partners: args.partners,
        seed,
    });
    let sales = plan.iter().filter(|v| v.purchase.is_some()).count();
    let frauds = plan
        .iter()
        .filter(|v| v.purchase.is_some_and(|p| p.fraud))
        .count();
    if let Some(wanted) = args.frauds.filter(|&wanted| wanted as usize > sales) {
        return Err(crate::Refused(format!(
            "--frauds {wanted}, but seed {seed} plans {sales} sales: raise --visitors or \
             --purchase-rate"
        ))
        .into());
    }
    platform.ensure_ready().await?;
    let sink = match args.fraud_via {
        FraudVia::Topic if frauds > 0 => FraudSink::Topic(Box::new(
            args.pulsar.connect(crate::publish::PRODUCER).await?,
        )),
        _ => FraudSink::Http,
    };
    let campaign = match &args.campaign {
        Some(campaign) => campaign.clone(),
        None => {
            let amount = args
                .budget
                .unwrap_or_else(|| platform::ample_budget(args.visitors));
            let budget = Money::new(amount, &args.currency);
            let name = format!("alpes simulate {run_id}");
            let id = platform
                .open_campaign(&name, &budget)
                .await
                .context("creating the simulation's campaign")?;
            eprintln!(
                "campaign {id} created and activated, budget {}",
                crate::format::money(&budget)
            );
            id
        }
    };
    platform
        .wait_until_active(&campaign, CAMPAIGN_READY_TIMEOUT)
        .await?;
    eprintln!(
        "run {run_id}, seed {seed}: {} visitors, {sales} sales, {frauds} to report as fraud",
        args.visitors
    );

    let context = Arc::new(Simulation {
        platform,
        sink,
        run_id,
        campaign: campaign.clone(),
        currency: args.currency.clone(),
        fraud_when: args.fraud_when,
        concurrency: args.concurrency as usize,
        rate: args.rate,
        errors: Mutex::new(Vec::new()),
    });
    let bars = Bars::new(args.visitors, sales);
    let (tx, rx) = mpsc::unbounded_channel();
    let drive = drive_all(&context, plan, tx, &bars);
    let watch = watch(&context, rx, args.timeout, &bars);
    let ((), watched) = tokio::join!(drive, watch);
    let watched = watched?;
    bars.finish();
    if let FraudSink::Topic(bus) = &context.sink {
        bus.publisher().close().await;
    }

    let errors = std::mem::take(&mut *context.errors.lock().await);
    // The budget is the run's alone only when the run created the campaign.
    let own_campaign = args.campaign.is_none().then_some(campaign.as_str());
    let audited = audit::audit(
        &context.platform,
        &watched.outcomes,
        own_campaign,
        context.concurrency,
    )
    .await;
    let mut summary = report::summarise(
        Run {
            campaign_id: campaign,
            seed,
            visitors: args.visitors,
            frauds_reported: watched.reported,
            budget_set: args.budget.is_some(),
            elapsed_s: watched.elapsed.as_secs_f64(),
            errors,
        },
        &watched.outcomes,
    );
    summary.add_discrepancies(audited);
    if args.json {
        let body = json!({"summary": summary, "sagas": watched.outcomes});
        println!("{}", serde_json::to_string_pretty(&body)?);
    } else {
        if args.timelines {
            print_timelines(&context.platform, &watched.outcomes).await;
        }
        print!("{}", report::render(&summary));
    }
    Ok(if summary.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Every saga's timeline as the saga log now shows it, in the order the sagas settled.
async fn print_timelines(platform: &PlatformApi, outcomes: &[report::Outcome]) {
    for outcome in outcomes {
        let what = if outcome.fraud {
            "reported as fraud"
        } else {
            "a sale"
        };
        println!("--- saga {} ({what})", outcome.saga_id);
        match platform.saga(&outcome.saga_id).await {
            Ok(Some(saga)) => println!("{}", crate::saga::render::saga(&saga)),
            Ok(None) => println!("(the saga log does not know it)\n"),
            Err(e) => println!("(the saga log did not answer: {e})\n"),
        }
    }
}

fn random_seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    plan::Rng::new(nanos ^ u64::from(std::process::id())).next_u64() >> 16
}
