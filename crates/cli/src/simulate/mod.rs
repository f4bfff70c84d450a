//! `alpes simulate`: a load generator that plays visitors against a running platform over
//! HTTP and checks that every saga ends as its script implies.
//!
//! Three parts run side by side: the plan (decided up front from the seed, see [`plan`]), the
//! drivers (view, click, maybe purchase, maybe an immediate fraud report; `--concurrency` at a
//! time) and the watcher, which polls `GET /sagas/{id}` for every saga started, reports fraud
//! once a fraud saga has COMPLETED (unless `--fraud-when at-once`), and notes when each saga
//! reaches its final status. When the drivers are done the watcher gets `--timeout` more to see
//! every saga settle; then [`report`] judges the outcomes.

pub(crate) mod audit;
pub(crate) mod plan;
pub(crate) mod platform;
pub(crate) mod report;

use std::collections::HashSet;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alpes_bus::Bus;
use alpes_contracts::events::marketing::FraudDetected;
use alpes_contracts::{EventMetadata, Money};
use anyhow::Context;
use clap::{Args, ValueEnum};
use futures::StreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use tokio::sync::{Mutex, mpsc};

use crate::PulsarArgs;
use crate::api::RequestError;
use plan::{PlanConfig, VisitorPlan};
use platform::{PlatformApi, ServiceArgs, Step, interaction};
use report::{Outcome, Run};

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

Each visitor views and clicks a partner's link, then buys with probability --purchase-rate.
round(--fraud-rate × sales) of the sales, chosen by the seed, are reported as fraud: by default
once their saga is COMPLETED, with --fraud-when at-once right after the purchase.
Verdict: a fraud sale must end COMPENSATED, any other sale COMPLETED; REJECTED is accepted
only when --budget was set (running out of budget is then the point). Then the money and the
log: a COMPLETED saga's commission is RESERVED or CONFIRMED, any other's holds nothing, the
campaign's budget reserved exactly their sum (when the run created it), and no event type is
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
        fraud_rate: args.fraud_rate,
        partners: args.partners,
        seed,
    });
    let sales = plan.iter().filter(|v| v.purchase.is_some()).count();
    let frauds = plan
        .iter()
        .filter(|v| v.purchase.is_some_and(|p| p.fraud))
        .count();
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
        print!("{}", report::render(&summary));
    }
    Ok(if summary.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn random_seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    plan::Rng::new(nanos ^ u64::from(std::process::id())).next_u64() >> 16
}

/// Plays every visitor, `concurrency` at a time, handing each saga started to the watcher.
async fn drive_all(
    context: &Simulation,
    plan: Vec<VisitorPlan>,
    started: mpsc::UnboundedSender<Started>,
    bars: &Bars,
) {
    let start = tokio::time::Instant::now();
    futures::stream::iter(plan.into_iter().enumerate())
        .map(|(n, visitor)| async move {
            if let Some(rate) = context.rate {
                tokio::time::sleep_until(start + Duration::from_secs_f64(n as f64 / rate)).await;
            }
            drive(context, visitor).await
        })
        .buffer_unordered(context.concurrency)
        .for_each(|result| {
            bars.visitors.inc(1);
            let started = &started;
            async move {
                match result {
                    Ok(Some(saga)) => {
                        let _ = started.send(saga);
                    }
                    Ok(None) => {}
                    Err(error) => context.error(error).await,
                }
            }
        })
        .await;
}

/// One visitor's script: view, click, and maybe purchase (and report it at once).
async fn drive(context: &Simulation, visitor: VisitorPlan) -> Result<Option<Started>, String> {
    let body = |step| {
        interaction(
            step,
            &context.run_id,
            &visitor,
            &context.campaign,
            &context.currency,
        )
    };
    let visitor_error = |e: RequestError| format!("visitor {}: {e}", visitor.index);
    let key = |step| format!("simulate-{}-{}-{step:?}", context.run_id, visitor.index);
    for step in [Step::View, Step::Click] {
        context
            .platform
            .track(&key(step), &body(step))
            .await
            .map_err(visitor_error)?;
    }
    let Some(purchase) = visitor.purchase else {
        return Ok(None);
    };
    let purchased = Instant::now();
    let saga_id = context
        .platform
        .track(&key(Step::Purchase), &body(Step::Purchase))
        .await
        .map_err(visitor_error)?
        .ok_or_else(|| {
            format!(
                "visitor {}: tracking accepted the purchase without a saga_id",
                visitor.index
            )
        })?;
    let mut started = Started {
        saga_id,
        fraud: purchase.fraud,
        reported: false,
        purchased,
    };
    if started.fraud && context.fraud_when == FraudWhen::AtOnce {
        match context.report_fraud(&started.saga_id).await {
            Ok(()) => started.reported = true,
            Err(error) => {
                // Not reported: the sale is expected to complete after all.
                context.error(error).await;
                started.fraud = false;
            }
        }
    }
    Ok(Some(started))
}

/// What the watcher saw.
struct Watched {
    outcomes: Vec<Outcome>,
    reported: usize,
    /// From the first purchase to the last saga settling.
    elapsed: Duration,
}

/// A saga being watched.
struct Watching {
    started: Started,
    last_status: Option<String>,
    log_ms: Option<i64>,
}

/// Polls the saga log for every saga started until each settles, or until `timeout` after the
/// drivers finished. A 401 or 403 stops the run: no poll will ever succeed.
async fn watch(
    context: &Simulation,
    mut incoming: mpsc::UnboundedReceiver<Started>,
    timeout: Duration,
    bars: &Bars,
) -> anyhow::Result<Watched> {
    let mut pending: Vec<Watching> = Vec::new();
    let mut outcomes = Vec::new();
    let mut reported = 0;
    let mut first_purchase: Option<Instant> = None;
    let mut last_settled: Option<Instant> = None;
    let mut deadline: Option<Instant> = None;
    let mut poll_failures = 0usize;
    let mut last_poll_error = None;
    loop {
        loop {
            match incoming.try_recv() {
                Ok(started) => {
                    reported += usize::from(started.reported);
                    first_purchase.get_or_insert(started.purchased);
                    pending.push(Watching {
                        started,
                        last_status: None,
                        log_ms: None,
                    });
                }
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    deadline.get_or_insert_with(|| Instant::now() + timeout);
                    break;
                }
            }
        }
        if pending.is_empty() {
            if deadline.is_some() {
                break;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
            continue;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }

        let polls: Vec<_> = futures::stream::iter(pending.iter().enumerate())
            .map(|(i, w)| async move { (i, context.platform.saga(&w.started.saga_id).await) })
            .buffer_unordered(context.concurrency)
            .collect()
            .await;
        let seen_at = Instant::now();
        let mut to_report = Vec::new();
        let mut settled = HashSet::new();
        for (i, poll) in polls {
            let w = &mut pending[i];
            let saga = match poll {
                Ok(Some(saga)) => saga,
                Ok(None) => continue,
                Err(e) if matches!(e.status(), Some(401 | 403)) => {
                    return Err(e).context("asking the saga log how the sagas are doing");
                }
                Err(e) => {
                    poll_failures += 1;
                    last_poll_error = Some(e.to_string());
                    continue;
                }
            };
            w.last_status = Some(saga.status.clone());
            w.log_ms = saga.duration_ms;
            let fraud = w.started.fraud;
            if fraud && !w.started.reported && saga.status == "COMPLETED" {
                to_report.push(i);
            } else if report::settles(fraud, &saga.status) {
                settled.insert(i);
                outcomes.push(Outcome {
                    saga_id: w.started.saga_id.clone(),
                    fraud,
                    status: Some(saga.status.clone()),
                    settled: true,
                    log_ms: saga.duration_ms,
                    observed_ms: Some(
                        seen_at.duration_since(w.started.purchased).as_millis() as i64
                    ),
                });
                last_settled = Some(seen_at);
                bars.sagas.inc(1);
            }
        }
        let reports: Vec<_> = futures::stream::iter(to_report)
            .map(|i| {
                let saga_id = pending[i].started.saga_id.clone();
                async move { (i, context.report_fraud(&saga_id).await) }
            })
            .buffer_unordered(context.concurrency)
            .collect()
            .await;
        for (i, result) in reports {
            let w = &mut pending[i];
            match result {
                Ok(()) => {
                    w.started.reported = true;
                    reported += 1;
                    bars.sagas
                        .set_message(format!("{reported} reported as fraud"));
                }
                Err(error) => {
                    context.error(error).await;
                    // Not reported: COMPLETED is its final status after all.
                    w.started.fraud = false;
                }
            }
        }
        let mut i = 0;
        pending.retain(|_| {
            i += 1;
            !settled.contains(&(i - 1))
        });
        tokio::time::sleep(POLL_INTERVAL).await;
    }

    for w in pending {
        outcomes.push(Outcome {
            saga_id: w.started.saga_id,
            fraud: w.started.fraud,
            status: w.last_status,
            settled: false,
            log_ms: w.log_ms,
            observed_ms: None,
        });
    }
    if poll_failures > 0 {
        context
            .error(format!(
                "{poll_failures} saga log poll(s) failed; the last: {}",
                last_poll_error.unwrap_or_default()
            ))
            .await;
    }
    let elapsed = match (first_purchase, last_settled) {
        (Some(first), Some(last)) => last.duration_since(first),
        _ => Duration::ZERO,
    };
    Ok(Watched {
        outcomes,
        reported,
        elapsed,
    })
}

/// Progress on standard error: visitors driven and sagas settled; hidden when it is not a
/// terminal, so logs and pipes stay clean.
pub(crate) struct Bars {
    _multi: MultiProgress,
    pub(crate) visitors: ProgressBar,
    pub(crate) sagas: ProgressBar,
}

impl Bars {
    pub(crate) fn new(visitors: u32, sagas: usize) -> Self {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let multi = MultiProgress::with_draw_target(target);
        let style = ProgressStyle::with_template(
            "{prefix:>8} [{bar:40}] {pos:>6}/{len:<6} {elapsed:>4} {msg}",
        )
        .expect("the template is valid")
        .progress_chars("=> ");
        let bar = |len: u64, prefix: &'static str| {
            let bar = multi.add(ProgressBar::new(len));
            bar.set_style(style.clone());
            bar.set_prefix(prefix);
            bar
        };
        Self {
            visitors: bar(u64::from(visitors), "visitors"),
            sagas: bar(sagas as u64, "sagas"),
            _multi: multi,
        }
    }

    pub(crate) fn finish(&self) {
        self.visitors.finish();
        self.sagas.finish();
    }
}
