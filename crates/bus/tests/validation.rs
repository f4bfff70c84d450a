//! An event that breaks its contract's limits (`alpes_contracts::limits`) is poison for every
//! consumer: the bus dead-letters it with the field and why, the handler never sees it, and
//! the next message goes through. Against the real broker of the local stack.

mod common;

use std::time::Duration;

use alpes_bus::{Shutdown, property};
use common::*;
use tokio::sync::mpsc;

/// The reasons of the first `want` messages on `topic`, read from its start.
async fn dead_letter_reasons(topic: &str, want: usize) -> Vec<String> {
    dead_letters(topic, want)
        .await
        .iter()
        .map(|message| {
            message
                .metadata()
                .properties
                .iter()
                .find(|kv| kv.key == property::DEAD_LETTER_REASON)
                .map(|kv| kv.value.clone())
                .expect("a dead letter says why")
        })
        .collect()
}

#[tokio::test]
async fn an_event_that_breaks_a_limit_is_dead_lettered_naming_the_field_and_never_handled() {
    let bus = bus().await;
    let saga = unique("limits");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let subscription = bus
        .subscribe::<alpes_contracts::events::marketing::FraudDetected>(fresh_subscription())
        .await
        .unwrap();
    let dlq = subscription.dead_letter_topic().to_owned();
    let shutdown = Shutdown::new();
    let running = tokio::spawn(subscription.run(forward(saga.clone(), tx), shutdown.clone()));

    // Publishing does not check (a producer's own events come from checked input): these reach
    // the topic as a client outside alpes could send them.
    let nul = fraud(&saga, "chargeback\u{0}");
    bus.publisher().publish(&nul).await.unwrap();
    let oversize = fraud(&format!("{saga}-{}", "s".repeat(3_000)), "chargeback");
    bus.publisher().publish(&oversize).await.unwrap();
    let good = fraud(&saga, "after the invalid ones");
    bus.publisher().publish(&good).await.unwrap();

    assert_eq!(
        next(&mut rx, 20).await.event,
        good,
        "the handler sees only the valid event, and the consumer moved on"
    );
    let mut reasons = dead_letter_reasons(&dlq, 2).await;
    reasons.sort();
    assert_eq!(
        reasons[0],
        "FraudDetected is not valid: metadata.saga_id: is 3040 bytes long; at most 128 are \
         allowed"
    );
    assert_eq!(
        reasons[1],
        "FraudDetected is not valid: reason: contains the control character U+0000 at byte 10"
    );
    let extra = tokio::time::timeout(Duration::from_secs(2), rx.recv()).await;
    assert!(
        extra.is_err(),
        "an invalid event reached the handler: {extra:?}"
    );

    shutdown.cancel();
    running.await.unwrap().unwrap();
}
