//! Every saga ends although the broker crashed in the middle of them.
//!
//! The four services run in process; sagas are started, then the Pulsar broker is killed
//! (`kill -9`) and started again through the stack script, and more sagas are started while it
//! is away. Consumers must subscribe again on their own (and say they are not ready
//! meanwhile), producers and outbox relays must send what they hold once it is back, and
//! every saga must end: none is lost, none is paid twice.
//!
//! The restart goes through `ALPES_STACK_SCRIPT` (by default this repository's
//! `scripts/stack.sh`) `restart-pulsar`, which only ever kills the broker that stack started.
//! This binary must own that broker while it runs: cargo runs test binaries one at a time, and
//! against a stack shared with other work, point it at a second stack (the `ALPES_*_PORT`
//! overrides of `scripts/stack.sh`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use alpes_e2e::PlatformClient;
use serde_json::Value;

mod common;

/// Long enough that no saga times out because of the restart: each must complete for real.
const DEADLINE: Duration = Duration::from_secs(900);
/// The restart itself (kill, start, wait until the broker is ready) takes 30–90 s here.
const RESTART_LIMIT: Duration = Duration::from_secs(300);
/// Once the broker is back, every saga must have ended within this.
const SETTLE: Duration = Duration::from_secs(240);
/// How long a lost subscription may take to come back once the broker is up: the longest
/// resubscription backoff (1 min), jitter included.
const RESUBSCRIBED: Duration = Duration::from_secs(90);
const AMOUNT_MINOR: i64 = 10_000;
/// 10 % of each sale.
const COMMISSION_MINOR: i64 = 1_000;

fn stack_script() -> PathBuf {
    std::env::var_os("ALPES_STACK_SCRIPT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/stack.sh"))
}

/// The saga log's status of each of `sagas` (`-` when the log does not know it).
async fn statuses(platform: &PlatformClient, sagas: &[String]) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    for saga in sagas {
        let status = match platform.saga(saga).await {
            Ok((200, body)) => body["status"].as_str().unwrap_or("?").to_owned(),
            Ok((code, _)) => format!("- ({code})"),
            Err(e) => format!("- ({e})"),
        };
        found.insert(saga.clone(), status);
    }
    found
}

/// Waits until every one of `sagas` has status `wanted`; fails naming those that did not.
async fn all_reach(platform: &PlatformClient, sagas: &[String], wanted: &str, within: Duration) {
    let started = Instant::now();
    loop {
        let found = statuses(platform, sagas).await;
        let behind: BTreeMap<_, _> = found.into_iter().filter(|(_, s)| s != wanted).collect();
        if behind.is_empty() {
            return;
        }
        assert!(
            started.elapsed() < within,
            "{} of {} sagas not {wanted} within {within:?} of the broker being back: {behind:#?}",
            behind.len(),
            sagas.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// `/readyz` of the service at `base`: status code and body.
async fn readiness(platform: &PlatformClient, base: &str) -> Option<(u16, Value)> {
    platform.get(format!("{base}/readyz")).await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_saga_ends_although_the_broker_was_killed_in_their_middle() {
    // The services' own logs (each loss and return of the broker), when asked for.
    if std::env::var_os("RUST_LOG").is_some() {
        alpes_runtime::telemetry::init(alpes_runtime::config::LogFormat::Text);
    }
    let services = common::InProcess::start(DEADLINE).await;
    let platform = services.platform.clone();
    let campaign = platform.known_campaign(10_000_000, 1_000).await.unwrap();

    // Sagas in flight when the broker dies.
    let mut sagas = Vec::new();
    for _ in 0..10 {
        sagas.push(platform.sale(&campaign, AMOUNT_MINOR).await.unwrap().0);
    }
    let script = stack_script();
    let mut restart = std::process::Command::new(&script)
        .arg("restart-pulsar")
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));

    // While it is away: tracking still takes purchases (its outbox keeps them), and the
    // consuming services say which subscription is down.
    let mut started_while_away = 0;
    let mut subscription_down_seen = false;
    let began = Instant::now();
    let status = loop {
        if let Some(status) = restart.try_wait().unwrap() {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            began.elapsed() < RESTART_LIMIT,
            "{} restart-pulsar did not finish within {RESTART_LIMIT:?}",
            script.display()
        );
        if started_while_away < 5 && began.elapsed() > Duration::from_secs(3) {
            sagas.push(platform.sale(&campaign, AMOUNT_MINOR).await.unwrap().0);
            started_while_away += 1;
        }
        if let Some((503, body)) = readiness(&platform, &platform.commission).await {
            subscription_down_seen |= body["checks"]["subscriptions"]
                .as_str()
                .is_some_and(|s| s.contains("lost the broker"));
        }
    };
    assert!(
        status.success(),
        "{} restart-pulsar: {status}",
        script.display()
    );
    assert!(
        subscription_down_seen,
        "commission's /readyz never named a lost subscription while the broker was away"
    );

    // Every saga completes, each paid once.
    all_reach(&platform, &sagas, "COMPLETED", SETTLE).await;
    assert_eq!(
        platform.reserved_minor(&campaign).await.unwrap(),
        COMMISSION_MINOR * sagas.len() as i64,
        "one commission per saga, none twice"
    );
    // A subscription idle since the restart may still wait out its backoff (up to a minute,
    // from the attempts made while the broker was away): each comes back within that.
    for base in [
        &platform.tracking,
        &platform.attribution,
        &platform.commission,
        &platform.marketing,
    ] {
        let waited = Instant::now();
        loop {
            let (code, body) = readiness(&platform, base).await.unwrap();
            if code == 200 {
                break;
            }
            assert!(
                waited.elapsed() < RESUBSCRIBED,
                "{base}/readyz {RESUBSCRIBED:?} after the sagas completed: {code} {body}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    // Compensation runs through every service's consumers and producers after the restart too.
    let frauds: Vec<String> = sagas.iter().take(3).cloned().collect();
    for saga in &frauds {
        platform.report_fraud(saga, "chargeback").await.unwrap();
    }
    all_reach(&platform, &frauds, "COMPENSATED", SETTLE).await;
    assert_eq!(
        platform.reserved_minor(&campaign).await.unwrap(),
        COMMISSION_MINOR * (sagas.len() - frauds.len()) as i64,
    );

    services.shutdown().await;
}
