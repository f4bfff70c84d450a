//! A subscription and a publisher outlive a broker restart.
//!
//! This test kills the broker (`kill -9`) and starts it again through the stack script
//! (`ALPES_STACK_SCRIPT`, by default this repository's `scripts/stack.sh restart-pulsar`), so it
//! must own the broker it runs against: it is a test binary of its own, and cargo runs test
//! binaries one at a time. Against a stack shared with other work, point it at a second stack
//! (the `ALPES_*_PORT` overrides, see `scripts/stack.sh`).

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use alpes_bus::{Shutdown, SubscriptionHealth};
use common::*;
use tokio::sync::mpsc;

/// The stack script this test restarts the broker with.
fn stack_script() -> PathBuf {
    std::env::var_os("ALPES_STACK_SCRIPT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/stack.sh"))
}

/// Runs `stack.sh restart-pulsar` while recording whether `health` was seen down; returns that.
async fn restart_broker_watching(health: &SubscriptionHealth) -> bool {
    let script = stack_script();
    let mut restart = tokio::process::Command::new(&script)
        .arg("restart-pulsar")
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let mut seen_down = false;
    let started = Instant::now();
    let status = loop {
        tokio::select! {
            status = restart.wait() => break status.unwrap(),
            _ = tokio::time::sleep(Duration::from_millis(100)) => {
                seen_down |= !health.is_up();
                assert!(
                    started.elapsed() < Duration::from_secs(300),
                    "{} restart-pulsar did not finish within 5 min",
                    script.display()
                );
            }
        }
    };
    assert!(
        status.success(),
        "{} restart-pulsar: {status}",
        script.display()
    );
    seen_down
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_consumes_again_and_a_publisher_sends_again_after_a_broker_restart() {
    let bus = bus().await;
    let saga = unique("restart");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let subscription = bus
        .subscribe::<alpes_contracts::events::marketing::FraudDetected>(fresh_subscription())
        .await
        .unwrap();
    let health = subscription.health();
    let shutdown = Shutdown::new();
    let running = tokio::spawn(subscription.run(forward(saga.clone(), tx), shutdown.clone()));

    // Before: the subscription consumes, through a producer the restart will cut off.
    bus.publisher()
        .publish(&fraud(&saga, "before"))
        .await
        .unwrap();
    assert_eq!(next(&mut rx, 20).await.event.reason, "before");
    assert!(health.is_up());
    assert_eq!(health.reconnects(), 0);

    let seen_down = restart_broker_watching(&health).await;
    assert!(
        seen_down,
        "the subscription never said it was down while the broker was away"
    );

    // The subscription comes back on its own.
    let back = Instant::now();
    while !health.is_up() {
        assert!(
            back.elapsed() < Duration::from_secs(120),
            "the subscription was not made again within 2 min of the broker being ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(health.reconnects() >= 1, "it subscribed again");

    // After: the same publisher's producer recovers by itself (the client re-creates it), and
    // what is published now is consumed.
    for reason in ["after-1", "after-2", "after-3"] {
        bus.publisher()
            .publish(&fraud(&saga, reason))
            .await
            .unwrap_or_else(|e| panic!("publishing {reason} after the restart: {e}"));
    }
    let mut reasons = Vec::new();
    while reasons.len() < 3 {
        let delivery = next(&mut rx, 60).await;
        // "before" may come again: the broker forgets an ack it had not stored when killed.
        if delivery.event.reason != "before" && !reasons.contains(&delivery.event.reason) {
            reasons.push(delivery.event.reason);
        }
    }
    reasons.sort();
    assert_eq!(reasons, ["after-1", "after-2", "after-3"]);
    assert!(health.is_up());

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("the subscription stops on shutdown")
        .unwrap()
        .unwrap();
}
