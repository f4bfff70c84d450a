//! The wiring: configuration, connections, the relay, the HTTP server, and the order things
//! stop in. `main` runs it; the tests run it in-process against the real stack.

use std::time::Duration;

use alpes_bus::Shutdown;
use alpes_bus::admin::Admin;
use alpes_contracts::Event;
use alpes_contracts::events::attribution::{
    AttributionReverted, ConversionAttributed, ConversionRejected,
};
use alpes_contracts::events::commission::{
    CommissionConfirmed, CommissionRejected, CommissionReserved, CommissionReverted,
};
use alpes_contracts::events::marketing::{
    CampaignActivated, CampaignCompleted, CampaignCreated, CampaignPaused, FraudDetected,
    SagaTimedOut,
};
use alpes_contracts::events::tracking::{InteractionTracked, InteractionsDiscarded};
use alpes_eventstore::MongoStore;
use alpes_runtime::config::{CommonArgs, parse_duration};
use alpes_runtime::http;
use alpes_runtime::service::{RuntimeError, ServiceConfig, ServiceRuntime};
use alpes_sagalog::{Recorder, SagaEvent, SagaLog};
use anyhow::Context;
use tokio::net::TcpListener;

use crate::adapters;
use crate::adapters::consumer::{Announcement, SUBSCRIPTION};
use crate::app::{AppError, Marketing};
use crate::coordinator::SagaCoordinator;
use crate::read_models::{ReadError, ReadModels};

/// Messages each saga-log subscription handles at once, at least.
const SAGA_LOG_CONCURRENCY: usize = 64;

/// The marketing service's configuration.
#[derive(clap::Parser, Debug, Clone)]
#[command(
    name = "marketing",
    about = "Campaigns (create, activate, pause, complete) and the saga log: every saga's steps in Postgres, deadlines, fraud reports and the inspection API.",
    after_help = "Example:\n  eval \"$(scripts/stack.sh env)\"\n  marketing --http-addr 127.0.0.1:8084"
)]
pub struct Config {
    #[command(flatten)]
    pub common: CommonArgs,
    /// MongoDB database holding the campaign streams.
    #[arg(
        long,
        env = "ALPES_MARKETING_DATABASE",
        default_value = "alpes_marketing"
    )]
    pub database: String,
    /// Pulsar subscription the replicas share (a second deployment needs its own).
    #[arg(long, env = "ALPES_MARKETING_SUBSCRIPTION", default_value = SUBSCRIPTION)]
    pub subscription: String,
    #[command(flatten)]
    pub saga_log: SagaLogArgs,
}

impl ServiceConfig for Config {
    fn common(&self) -> &CommonArgs {
        &self.common
    }
}

/// The saga log's configuration.
#[derive(clap::Args, Debug, Clone)]
pub struct SagaLogArgs {
    /// Postgres holding the saga log (migrated at start-up).
    #[arg(
        long,
        env = "ALPES_POSTGRES_URL",
        default_value = "postgres://alpes@127.0.0.1:5433/alpes"
    )]
    pub postgres_url: String,
    /// How long a saga has, from its first step, to reach a final status before it is timed
    /// out and compensated (e.g. 30s, 500ms, 2m).
    #[arg(long, env = "ALPES_SAGA_DEADLINE", default_value = "30s", value_parser = parse_duration)]
    pub saga_deadline: Duration,
}

/// Runs the service on `listener` until `shutdown`; then finishes the requests and messages in
/// hand, flushes the outbox, and returns.
pub async fn run(config: Config, listener: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
    let log = SagaLog::connect(&config.saga_log.postgres_url, config.saga_log.saga_deadline)
        .await
        .context("opening the saga log in Postgres")?;
    let mut runtime =
        ServiceRuntime::start(&config.common, "marketing", &config.database, &shutdown).await?;
    let ping = log.clone();
    runtime.check("postgres", move || {
        let log = ping.clone();
        async move { log.ping().await.map_err(|e| e.to_string()) }
    });

    retire_statistics_subscriptions(&config).await;
    let app = Marketing::new(runtime.store().clone(), ReadModels::in_log(log.clone()));
    let importing = app.clone();
    let source = format!("event store database {}", config.database);
    runtime.spawn_until_done("read model import", move || {
        import_legacy(importing.clone(), source.clone())
    });
    // Ends once the consumers, the API and the deadline sweep, which hand it steps, are done.
    let (recorder, writer) = Recorder::new(log.clone());
    runtime.spawn("saga log writer", |_| writer);
    let sagas = SagaCoordinator::new(log.clone(), recorder, runtime.publisher().clone());
    let follow = Follow {
        sagas: &sagas,
        config: &config,
    };
    follow.topic::<InteractionTracked>(&mut runtime).await?;
    follow.topic::<ConversionAttributed>(&mut runtime).await?;
    follow.topic::<ConversionRejected>(&mut runtime).await?;
    follow.topic::<CommissionReserved>(&mut runtime).await?;
    follow.topic::<CommissionRejected>(&mut runtime).await?;
    follow.topic::<CommissionConfirmed>(&mut runtime).await?;
    follow.topic::<FraudDetected>(&mut runtime).await?;
    follow.topic::<SagaTimedOut>(&mut runtime).await?;
    follow.topic::<CommissionReverted>(&mut runtime).await?;
    follow.topic::<AttributionReverted>(&mut runtime).await?;
    follow.topic::<InteractionsDiscarded>(&mut runtime).await?;
    follow
        .campaigns::<CampaignCreated>(&app, &mut runtime)
        .await?;
    follow
        .campaigns::<CampaignActivated>(&app, &mut runtime)
        .await?;
    follow
        .campaigns::<CampaignPaused>(&app, &mut runtime)
        .await?;
    follow
        .campaigns::<CampaignCompleted>(&app, &mut runtime)
        .await?;
    let deadlines = sagas.clone();
    runtime.spawn("deadline sweep", |stop| deadlines.run_deadlines(stop));

    let access = runtime.access().clone();
    let api = adapters::http::routes(app, &access)
        .merge(adapters::saga_api::routes(sagas, &access))
        .merge(http::openapi(adapters::openapi::DOCUMENT));
    runtime.serve(listener, api, shutdown).await?;
    Ok(())
}

/// Earlier versions read six topics a second time for statistics, under the subscription
/// name itself; nothing reads those subscriptions now, and the broker would keep their backlog
/// for ever. Deleting them is best effort: an older replica still attached keeps its own.
async fn retire_statistics_subscriptions(config: &Config) {
    // ServiceRuntime::start parsed the same setting already.
    let token = config.common.pulsar_token().ok().flatten();
    let admin = Admin::authenticated(&config.common.pulsar_admin_url, token);
    let topics = [
        InteractionTracked::event_type(),
        ConversionAttributed::event_type(),
        ConversionRejected::event_type(),
        CommissionReserved::event_type(),
        CommissionRejected::event_type(),
        CommissionReverted::event_type(),
    ];
    let mut not_ours = Vec::new();
    for ty in topics {
        let topic = ty.topic_name();
        let retries = format!("{topic}-{}-retry", config.subscription);
        for topic in [topic, retries] {
            match admin
                .delete_subscription(&topic, &config.subscription)
                .await
            {
                Ok(()) => {}
                // Under authorization the service's role holds nothing on topics it no longer
                // uses (least privilege): retiring what is left there is the admin's.
                Err(e) if e.is_refused_by_authorization() => not_ours.push(topic),
                Err(e) => {
                    tracing::warn!(%topic, error = %e, "an old statistics subscription stays")
                }
            }
        }
    }
    if !not_ours.is_empty() {
        tracing::info!(
            subscription = %config.subscription,
            topics = ?not_ours,
            "not retiring subscriptions of earlier versions where this role holds no rights; \
             if they exist, an admin deletes them (pulsar-admin topics unsubscribe)"
        );
    }
}

/// Imports, once per event store database, what earlier versions kept there that the read
/// models now hold (see `read_models`), in the background: a large store takes a while to
/// read, and nothing else waits for it but reads of the list and statistics.
async fn import_legacy(app: Marketing<MongoStore>, source: String) -> Result<(), ReadError> {
    app.read_models()
        .import(&source, || async {
            app.legacy().await.map_err(|e| match e {
                AppError::ReadModel(e) => e,
                other => ReadError::Corrupt(other.to_string()),
            })
        })
        .await
}

/// What marketing does with each saga topic it follows.
struct Follow<'a> {
    sagas: &'a SagaCoordinator,
    config: &'a Config,
}

impl Follow<'_> {
    /// Consumes marketing's own announcement `E` to list its campaign as the store holds it:
    /// the repair of a list entry whose write after the change was lost.
    async fn campaigns<E: Announcement>(
        &self,
        app: &Marketing<MongoStore>,
        runtime: &mut ServiceRuntime,
    ) -> Result<(), RuntimeError> {
        let subscription = format!("{}-campaigns", self.config.subscription);
        runtime.consume::<E>(&subscription, app.clone()).await
    }

    /// Consumes `E` once for both of marketing's uses, the saga log and the campaign
    /// statistics, written in one transaction, idempotent by event id. A log outage is retried
    /// for about half an hour.
    async fn topic<E: SagaEvent>(&self, runtime: &mut ServiceRuntime) -> Result<(), RuntimeError> {
        // The saga log's subscription name, kept so that existing subscriptions resume.
        let mut subscription =
            runtime.subscription(&format!("{}-sagalog", self.config.subscription));
        subscription.max_attempts = 30;
        // Each message waits for the saga log's group commit (up to its linger), so the
        // subscription keeps more in flight than the default to fill a commit.
        subscription.concurrency = subscription.concurrency.max(SAGA_LOG_CONCURRENCY);
        runtime
            .consume_with::<E>(subscription, self.sagas.clone())
            .await
    }
}
