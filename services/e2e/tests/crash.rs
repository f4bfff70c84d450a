//! A service process killed with SIGKILL at the two moments where a crash could lose an event
//! or apply one twice, then started again as its pod would be (a new process, same database,
//! same subscription, same host):
//!
//! - between storing and publishing: tracking has stored an interaction and answered 202, and
//!   dies before its relay sent `InteractionTracked`. Only the next process's adoption of the
//!   dead one's outbox (`alpes_eventstore`'s ledger) can publish it.
//! - between publishing and acknowledging: commission has reserved a commission for a
//!   `ConversionAttributed` and its relay has published `CommissionReserved`, and it dies before
//!   it acknowledged the message. The broker delivers the message again to the next process,
//!   which must recognise it (the handled event id is stored with the effect) and change
//!   nothing.
//!
//! Each time the saga must still complete, once: one reservation off the budget, one
//! `CommissionReserved` (copies of the same event id are fine: consumers deduplicate by it), and
//! each step once in the saga log.
//!
//! The moment is exact, not a race: the killed process runs with `ALPES_FAULT` (see
//! `alpes_bus::fault`), which holds it at that point, and says so, until the test kills it. The
//! other services run in-process (`common::InProcess`, whose instance of the killed service is
//! stopped first); the killed one is this binary itself, started in child mode
//! (`common/process.rs`), hence its own `main`. The tests run one after the other, each on a
//! runtime and platform of its own: two platforms at once would answer each other's sagas.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use std::time::Duration;

use alpes_contracts::Event;
use alpes_contracts::events::attribution::ConversionAttributed;
use alpes_contracts::events::commission::{CommissionRejected, CommissionReserved};
use alpes_contracts::events::tracking::InteractionKind;
use alpes_contracts::events::tracking::InteractionTracked;
use alpes_e2e::{PlatformClient, timeline};
use alpes_testkit::Observer;
use alpes_testkit::fixtures::{interaction, purchase};
use serde_json::Value;

mod common;
#[path = "common/process.rs"]
mod process;

use process::ServiceProcess;

/// Long enough that no saga times out while a service is down: each must complete for real.
const DEADLINE: Duration = Duration::from_secs(900);
/// For anything to happen on a busy 2-core machine.
const WAIT: Duration = Duration::from_secs(60);
/// How long a second, different outcome is given to show up before the test says there is none.
const SETTLE: Duration = Duration::from_secs(5);
const AMOUNT_MINOR: i64 = 12_000;
/// 10 % of the sale.
const COMMISSION_MINOR: i64 = 1_200;
/// The forward saga's steps, each once.
const STEPS: [&str; 3] = [
    "InteractionTracked",
    "ConversionAttributed",
    "CommissionReserved",
];

type Running = Pin<Box<dyn Future<Output = ()> + Send>>;
type Test = fn() -> Running;

const TESTS: [(&str, Test); 2] = [
    (
        "a_service_killed_between_storing_and_publishing_publishes_after_restart_and_applies_once",
        || -> Running { Box::pin(killed_between_storing_and_publishing()) },
    ),
    (
        "a_service_killed_between_publishing_and_acknowledging_applies_the_redelivery_once",
        || -> Running { Box::pin(killed_between_publishing_and_acknowledging()) },
    ),
];

fn main() -> ExitCode {
    if let Ok(spec) = std::env::var(process::CHILD) {
        return process::child_main(&spec);
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let exact = args.iter().any(|a| a == "--exact");
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let skips: Vec<&str> = args
        .iter()
        .filter_map(|a| a.strip_prefix("--skip="))
        .collect();
    let selected: Vec<&(&str, Test)> = TESTS
        .iter()
        .filter(|(name, _)| {
            filters.is_empty()
                || filters.iter().any(|f| {
                    if exact {
                        name == f
                    } else {
                        name.contains(f.as_str())
                    }
                })
        })
        .filter(|(name, _)| !skips.iter().any(|s| name.contains(s)))
        .collect();
    if args.iter().any(|a| a == "--list") {
        for (name, _) in &selected {
            println!("{name}: test");
        }
        return ExitCode::SUCCESS;
    }
    println!("\nrunning {} tests", selected.len());
    let mut failed = Vec::new();
    for (name, test) in &selected {
        // A runtime per test: whatever a failed test left running stops with it.
        let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
        let outcome = runtime.block_on(async { tokio::spawn(test()).await });
        runtime.shutdown_timeout(Duration::from_secs(10));
        match outcome {
            Ok(()) => println!("test {name} ... ok"),
            Err(panic) => {
                println!("test {name} ... FAILED: {panic}");
                failed.push(*name);
            }
        }
    }
    let passed = selected.len() - failed.len();
    if failed.is_empty() {
        println!("\ntest result: ok. {passed} passed; 0 failed; 0 ignored\n");
        ExitCode::SUCCESS
    } else {
        println!("\nfailures:\n    {}", failed.join("\n    "));
        println!(
            "\ntest result: FAILED. {passed} passed; {} failed; 0 ignored\n",
            failed.len()
        );
        ExitCode::FAILURE
    }
}

/// Tracking stores a click and a purchase (both answered 202) while its relay is held before
/// its first send, and is killed; the next tracking process publishes both, and the saga
/// completes once.
///
/// How it fails: without the adoption of a dead instance's outbox the two interactions are
/// stored and never published, so no `InteractionTracked` arrives and the saga never starts
/// (the wait for them times out). An adoption that published something twice under new event
/// ids, or downstream handlers that did not deduplicate, would show as a second
/// `CommissionReserved`, a budget reserved twice, or a step twice in the saga log.
async fn killed_between_storing_and_publishing() {
    let mut services = common::InProcess::start(DEADLINE).await;
    services.stop("tracking").await;
    let run = uuid::Uuid::new_v4().simple().to_string();
    let name = format!("crash_tracking_{run}");
    let visitor = format!("visitor-{run}");
    // The fault names the visitor (the key of its interactions): another test's traffic on
    // the shared topics never holds this process, and this test's always does.
    let fault = format!("before-publish:interaction-tracked:{visitor}");
    let mut tracking = ServiceProcess::start("tracking", &name, &name, Some(&fault)).await;
    let mut platform = services.platform.clone();
    platform.tracking = tracking.url.clone();
    let mut tracked = Observer::<InteractionTracked>::try_listen(&services.bus)
        .await
        .unwrap();
    let mut reserved = Observer::<CommissionReserved>::try_listen(&services.bus)
        .await
        .unwrap();
    let campaign = known_campaign(&platform, &platform.commission).await;

    platform
        .track("CLICK", &visitor, &campaign, Some("partner-1"), None)
        .await
        .unwrap();
    // The click is stored, and the relay holds before sending anything: from now on this
    // process publishes nothing.
    tracking.line_with("ALPES_FAULT held before-publish").await;
    let purchase = platform
        .track(
            "PURCHASE",
            &visitor,
            &campaign,
            Some("partner-1"),
            Some(AMOUNT_MINOR),
        )
        .await
        .unwrap();
    let saga = purchase["saga_id"].as_str().unwrap().to_owned();
    tracking.kill().await;

    let tracking = ServiceProcess::start("tracking", &name, &name, None).await;
    platform.tracking = tracking.url.clone();
    let published = interactions_of(&mut tracked, &visitor, 2).await;
    let purchases = published.values().filter(|s| s.as_deref() == Some(&*saga));
    assert_eq!(
        (published.len(), purchases.count()),
        (2, 1),
        "the click and the purchase, each under one event id: {published:?}"
    );

    let completed = platform
        .saga_reaching(&saga, "COMPLETED", WAIT)
        .await
        .unwrap();
    assert_eq!(timeline(&completed), STEPS, "each step once: {completed}");
    let commission = reserved.next_of_saga_within(&saga, WAIT).await.unwrap();
    assert_eq!(commission.commission.amount_minor, COMMISSION_MINOR);
    only_once(&mut reserved, &saga, &commission.metadata.event_id).await;
    assert_eq!(
        platform.reserved_minor(&campaign).await.unwrap(),
        COMMISSION_MINOR,
        "the budget is reduced once"
    );
    let interactions_again = interactions_of(&mut tracked, &visitor, 0).await;
    assert!(
        interactions_again
            .keys()
            .all(|id| published.contains_key(id)),
        "no interaction was published under a second event id: {interactions_again:?}"
    );

    tracking.kill().await;
    services.shutdown().await;
}

/// Commission reserves for a `ConversionAttributed`, its relay publishes `CommissionReserved`,
/// and it is killed before acknowledging the message; the next commission process gets the
/// message again, acknowledges it and changes nothing.
///
/// How it fails: a handler that did not recognise the redelivered message would reserve again
/// (the budget reserved twice, a `CommissionReserved` under a second event id) or refuse it
/// (a `CommissionRejected`, a `CommissionRejected` step in the saga log); an ack sent before
/// the process was held would leave no backlog to redeliver (the backlog assertion); a message
/// never redelivered or never acknowledged leaves the backlog above zero (the wait for it
/// times out).
async fn killed_between_publishing_and_acknowledging() {
    let mut services = common::InProcess::start(DEADLINE).await;
    services.stop("commission").await;
    let run = uuid::Uuid::new_v4().simple().to_string();
    let name = format!("crash_commission_{run}");
    // The purchase is published here, not through tracking, so that its saga is known before
    // commission starts and the fault can name it (the key of `ConversionAttributed`).
    let saga = uuid::Uuid::now_v7().to_string();
    let fault = format!("before-ack:conversion-attributed:{saga}");
    let mut commission = ServiceProcess::start("commission", &name, &name, Some(&fault)).await;
    let mut platform = services.platform.clone();
    platform.commission = commission.url.clone();
    let mut reserved = Observer::<CommissionReserved>::try_listen(&services.bus)
        .await
        .unwrap();
    let mut refused = Observer::<CommissionRejected>::try_listen(&services.bus)
        .await
        .unwrap();
    let campaign = known_campaign(&platform, &commission.url).await;

    let visitor = format!("visitor-{run}");
    let publisher = services.bus.publisher();
    publisher
        .publish(&interaction(
            &visitor,
            InteractionKind::Click,
            &campaign,
            Some("partner-1"),
        ))
        .await
        .unwrap();
    publisher
        .publish(&purchase(&visitor, &campaign, &saga, AMOUNT_MINOR))
        .await
        .unwrap();
    // Handled, its effect durable, not acknowledged; and the outcome is out.
    commission.line_with("ALPES_FAULT held before-ack").await;
    let outcome = reserved.next_of_saga_within(&saga, WAIT).await.unwrap();
    assert_eq!(outcome.commission.amount_minor, COMMISSION_MINOR);
    assert_eq!(
        platform.reserved_minor(&campaign).await.unwrap(),
        COMMISSION_MINOR
    );
    let topic = ConversionAttributed::event_type().topic();
    assert!(
        backlog(&topic, &name).await >= 1,
        "the conversion was acknowledged before the kill"
    );
    commission.kill().await;

    let commission = ServiceProcess::start("commission", &name, &name, None).await;
    platform.commission = commission.url.clone();
    // Redelivered to the new process, handled and acknowledged.
    poll(WAIT, "the redelivered conversion acknowledged", || async {
        backlog(&topic, &name).await == 0
    })
    .await;

    let completed = platform
        .saga_reaching(&saga, "COMPLETED", WAIT)
        .await
        .unwrap();
    assert_eq!(timeline(&completed), STEPS, "each step once: {completed}");
    only_once(&mut reserved, &saga, &outcome.metadata.event_id).await;
    assert_eq!(
        platform.reserved_minor(&campaign).await.unwrap(),
        COMMISSION_MINOR,
        "the budget is reduced once"
    );
    while let Some(rejected) = refused.try_next() {
        assert_ne!(
            rejected.metadata.saga_id.as_deref(),
            Some(&*saga),
            "the redelivery was refused: {rejected:?}"
        );
    }
    let (status, view) = platform
        .get(format!(
            "{}/commissions/commission-{saga}",
            platform.commission
        ))
        .await
        .unwrap();
    assert_eq!((status, view["status"].as_str()), (200, Some("RESERVED")));

    commission.kill().await;
    services.shutdown().await;
}

/// An active campaign paying 10 % (min 5.00, max 50.00) of a 60.00 EUR budget, once attribution
/// and the commission service at `commission` both know it is active.
async fn known_campaign(platform: &PlatformClient, commission: &str) -> String {
    let platform = PlatformClient {
        commission: commission.to_owned(),
        ..platform.clone()
    };
    platform.known_campaign(6_000, 1_000).await.unwrap()
}

/// `visitor`'s interactions seen on `rx` (event id → saga), until `count` different ones came
/// (within [`WAIT`]), then those arriving within [`SETTLE`].
async fn interactions_of(
    rx: &mut Observer<InteractionTracked>,
    visitor: &str,
    count: usize,
) -> BTreeMap<String, Option<String>> {
    let mut seen = BTreeMap::new();
    let wait = tokio::time::Instant::now() + WAIT;
    while seen.len() < count {
        let event = rx
            .next_before(wait)
            .await
            .unwrap_or_else(|| panic!("only {seen:?} of {visitor} published within {WAIT:?}"));
        if event.visitor.anonymous_id == visitor {
            seen.insert(event.metadata.event_id, event.metadata.saga_id);
        }
    }
    let settle = tokio::time::Instant::now() + SETTLE;
    while let Some(event) = rx.next_before(settle).await {
        if event.visitor.anonymous_id == visitor {
            seen.insert(event.metadata.event_id, event.metadata.saga_id);
        }
    }
    seen
}

/// Whatever else of `saga` arrives on `rx` within [`SETTLE`] is a copy of event `event_id`.
async fn only_once<E: Event + std::fmt::Debug>(rx: &mut Observer<E>, saga: &str, event_id: &str) {
    let settle = tokio::time::Instant::now() + SETTLE;
    while let Some(event) = rx.next_before(settle).await {
        if event.metadata().saga_id.as_deref() == Some(saga) {
            assert_eq!(
                event.metadata().event_id,
                event_id,
                "a second, different outcome: {event:?}"
            );
        }
    }
}

/// Messages of `topic` that `subscription` has not acknowledged, as the broker counts them.
async fn backlog(topic: &str, subscription: &str) -> u64 {
    let admin = alpes_bus::admin::Admin::authenticated(
        &alpes_testkit::env("ALPES_PULSAR_ADMIN_URL", "http://127.0.0.1:8080"),
        alpes_bus::PulsarToken::from_env().unwrap(),
    );
    let path = topic.trim_start_matches("persistent://");
    let stats: Value = admin
        .get_json(&format!("/admin/v2/persistent/{path}/stats"))
        .await
        .unwrap_or_else(|e| panic!("the stats of {topic}: {e}"));
    stats["subscriptions"][subscription]["msgBacklog"]
        .as_u64()
        .unwrap_or_else(|| panic!("no subscription {subscription} on {topic}: {stats}"))
}

/// Polls `condition` every 200 ms until it holds; fails naming `what` after `timeout`.
async fn poll<F, Fut>(timeout: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {timeout:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
