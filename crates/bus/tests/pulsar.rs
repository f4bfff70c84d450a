//! The bus against the real Apache Pulsar standalone broker of the local stack.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alpes_bus::{Backoff, BusError, Delivery, Outcome, Outgoing, Shutdown, property};
use alpes_contracts::codec;
use alpes_contracts::events::marketing::FraudDetected;
use alpes_contracts::{Event, EventMetadata};
use common::*;
use tokio::sync::mpsc;

#[tokio::test]
async fn an_event_round_trips_with_all_its_metadata() {
    let bus = bus().await;
    let saga = unique("roundtrip");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let subscription = bus
        .subscribe::<FraudDetected>(fresh_subscription())
        .await
        .unwrap();
    let shutdown = Shutdown::new();
    let running = tokio::spawn(subscription.run(forward(saga.clone(), tx), shutdown.clone()));

    let cause = EventMetadata::new::<FraudDetected>();
    let mut event = fraud(&saga, "chargeback");
    event.metadata = EventMetadata::caused_by::<FraudDetected>(&cause).in_saga(&saga);
    event.metadata.traceparent =
        Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned());
    event.metadata.tracestate = Some("alpes=1".to_owned());
    let receipt = bus.publisher().publish(&event).await.unwrap();
    assert_eq!(
        receipt.topic,
        format!("persistent://{NAMESPACE}/fraud-detected-v1")
    );

    let delivery = next(&mut rx, 20).await;
    assert_eq!(
        delivery.event, event,
        "the Avro record, metadata included, is unchanged"
    );
    assert_eq!(delivery.attempt, 1);
    assert_eq!(
        delivery.key.as_deref(),
        Some(saga.as_str()),
        "keyed by saga"
    );
    assert_eq!(
        delivery.event_time_ms,
        Some(event.metadata.occurred_at.timestamp_millis() as u64)
    );
    let p = &delivery.properties;
    assert_eq!(p[property::EVENT_ID], event.metadata.event_id);
    assert_eq!(p[property::EVENT_TYPE], "FraudDetected");
    assert_eq!(p[property::SCHEMA_VERSION], "1");
    assert_eq!(p[property::PRODUCER], "marketing");
    assert_eq!(p[property::SAGA_ID], saga);
    assert_eq!(p[property::CAUSATION_ID], cause.event_id);
    assert_eq!(
        p[property::TRACEPARENT],
        event.metadata.traceparent.clone().unwrap()
    );
    assert_eq!(p[property::TRACESTATE], "alpes=1");

    shutdown.cancel();
    running.await.unwrap().unwrap();
}

#[tokio::test]
async fn key_shared_consumers_split_the_keys_and_keep_each_keys_order() {
    const KEYS: usize = 16;
    const PER_KEY: usize = 12;
    let bus = bus().await;
    let prefix = unique("order");
    let config = fresh_subscription();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let shutdown = Shutdown::new();
    let mut running = Vec::new();
    for consumer in 0..2 {
        let subscription = bus
            .subscribe::<FraudDetected>(config.clone())
            .await
            .unwrap();
        let tx = tx.clone();
        let prefix = prefix.clone();
        let handler = move |d: Delivery<FraudDetected>| {
            let saga = d.event.metadata.saga_id.clone().unwrap_or_default();
            if saga.starts_with(&prefix) {
                let _ = tx.send((consumer, saga, d.event.reason.parse::<usize>().unwrap()));
            }
            std::future::ready(Outcome::Done)
        };
        running.push(tokio::spawn(subscription.run(handler, shutdown.clone())));
    }

    // Pipelined: every send is enqueued before any receipt is awaited.
    let mut receipts = Vec::new();
    for seq in 0..PER_KEY {
        for key in 0..KEYS {
            let event = fraud(&format!("{prefix}-{key}"), &seq.to_string());
            let pending = bus.publisher().send(Outgoing::event(&event).unwrap()).await;
            receipts.push(pending.unwrap());
        }
    }
    for receipt in receipts {
        receipt.confirmed().await.unwrap();
    }

    let mut seen: HashMap<String, Vec<usize>> = HashMap::new();
    let mut consumer_of: HashMap<String, usize> = HashMap::new();
    let mut per_consumer = [0usize; 2];
    for _ in 0..KEYS * PER_KEY {
        let (consumer, saga, seq) = next(&mut rx, 30).await;
        per_consumer[consumer] += 1;
        let owner = *consumer_of.entry(saga.clone()).or_insert(consumer);
        assert_eq!(owner, consumer, "key {saga} moved between consumers");
        seen.entry(saga).or_default().push(seq);
    }
    assert_eq!(seen.len(), KEYS);
    for (saga, seqs) in &seen {
        assert_eq!(*seqs, (0..PER_KEY).collect::<Vec<_>>(), "order of {saga}");
    }
    assert!(
        per_consumer.iter().all(|&n| n > 0),
        "both consumers got keys: {per_consumer:?}"
    );

    shutdown.cancel();
    for r in running {
        r.await.unwrap().unwrap();
    }
}

/// Replicas come and go while a topic flows: a consumer that joins mid-stream, and one that
/// leaves mid-stream with messages in hand (they go to the one that stays), never get a key's
/// messages handled out of order: each key's messages are first handled in the order they were
/// published, and none is lost.
#[tokio::test]
async fn a_consumer_joining_and_one_leaving_mid_stream_keep_each_keys_order() {
    const KEYS: usize = 12;
    const PER_KEY: usize = 40;
    let bus = bus().await;
    let prefix = unique("rebalance");
    let config = fresh_subscription();
    // (key, seq, consumer) in the order handlers ran.
    let handled: Arc<Mutex<Vec<(String, usize, usize)>>> = Arc::default();
    let start = |consumer: usize| {
        let (bus, config, prefix, handled) =
            (bus.clone(), config.clone(), prefix.clone(), handled.clone());
        async move {
            let subscription = bus.subscribe::<FraudDetected>(config).await.unwrap();
            let stop = Shutdown::new();
            let handler = move |d: Delivery<FraudDetected>| {
                let (prefix, handled) = (prefix.clone(), handled.clone());
                async move {
                    let key = d.event.metadata.saga_id.clone().unwrap_or_default();
                    if key.starts_with(&prefix) {
                        // Slow enough that a consumer holds messages when it leaves.
                        tokio::time::sleep(Duration::from_millis(3)).await;
                        let seq = d.event.reason.parse::<usize>().unwrap();
                        handled.lock().unwrap().push((key, seq, consumer));
                    }
                    Outcome::Done
                }
            };
            let running = tokio::spawn(subscription.run(handler, stop.clone()));
            (stop, running)
        }
    };
    let (first_stop, first) = start(0).await;
    let publisher = {
        let (bus, prefix) = (bus.clone(), prefix.clone());
        tokio::spawn(async move {
            for seq in 0..PER_KEY {
                let mut receipts = Vec::new();
                for key in 0..KEYS {
                    let event = fraud(&format!("{prefix}-{key}"), &seq.to_string());
                    let pending = bus.publisher().send(Outgoing::event(&event).unwrap()).await;
                    receipts.push(pending.unwrap());
                }
                for receipt in receipts {
                    receipt.confirmed().await.unwrap();
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        })
    };
    let handled_count = || handled.lock().unwrap().len();
    let wait_for = |n: usize| async move {
        let deadline = Instant::now() + Duration::from_secs(60);
        while handled_count() < n {
            assert!(
                Instant::now() < deadline,
                "only {} handled",
                handled_count()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    wait_for(KEYS * PER_KEY / 4).await;
    let (second_stop, second) = start(1).await;
    wait_for(KEYS * PER_KEY / 2).await;
    first_stop.cancel();
    first.await.unwrap().unwrap();
    publisher.await.unwrap();
    wait_for(KEYS * PER_KEY).await;
    // Redeliveries of what the leaver held have had time to come.
    tokio::time::sleep(Duration::from_secs(2)).await;
    second_stop.cancel();
    second.await.unwrap().unwrap();

    let handled = handled.lock().unwrap().clone();
    let mut firsts: HashMap<String, Vec<usize>> = HashMap::new();
    let mut by_consumer = [0usize; 2];
    for (key, seq, consumer) in &handled {
        by_consumer[*consumer] += 1;
        let seen = firsts.entry(key.clone()).or_default();
        if !seen.contains(seq) {
            seen.push(*seq);
        }
    }
    assert_eq!(firsts.len(), KEYS);
    for (key, seqs) in &firsts {
        assert_eq!(*seqs, (0..PER_KEY).collect::<Vec<_>>(), "order of {key}");
    }
    assert!(
        by_consumer.iter().all(|&n| n > 0),
        "both consumers handled some: {by_consumer:?}"
    );
}

/// With concurrency, different keys are handled at once while each key's messages are still
/// handled one at a time, in order.
#[tokio::test]
async fn a_concurrent_consumer_overlaps_keys_and_keeps_each_keys_order() {
    const KEYS: usize = 8;
    const PER_KEY: usize = 6;
    let bus = bus().await;
    let prefix = unique("concurrent");
    let mut config = fresh_subscription();
    config.concurrency = 8;
    let subscription = bus.subscribe::<FraudDetected>(config).await.unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let active = Arc::new(Mutex::new((
        HashMap::<String, usize>::new(),
        0usize,
        0usize,
    )));
    let handler = {
        let (prefix, active) = (prefix.clone(), active.clone());
        move |d: Delivery<FraudDetected>| {
            let (tx, prefix, active) = (tx.clone(), prefix.clone(), active.clone());
            async move {
                let saga = d.event.metadata.saga_id.clone().unwrap_or_default();
                if !saga.starts_with(&prefix) {
                    return Outcome::Done;
                }
                {
                    let mut guard = active.lock().unwrap();
                    let (per_key, now, most) = &mut *guard;
                    let same_key = per_key.entry(saga.clone()).or_default();
                    *same_key += 1;
                    assert_eq!(*same_key, 1, "two messages of {saga} at once");
                    *now += 1;
                    *most = (*most).max(*now);
                }
                tokio::time::sleep(Duration::from_millis(30)).await;
                {
                    let mut guard = active.lock().unwrap();
                    let (per_key, now, _) = &mut *guard;
                    *per_key.get_mut(&saga).unwrap() -= 1;
                    *now -= 1;
                }
                let _ = tx.send((0, saga, d.event.reason.parse::<usize>().unwrap()));
                Outcome::Done
            }
        }
    };
    let shutdown = Shutdown::new();
    let running = tokio::spawn(subscription.run(handler, shutdown.clone()));

    let mut receipts = Vec::new();
    for seq in 0..PER_KEY {
        for key in 0..KEYS {
            let event = fraud(&format!("{prefix}-{key}"), &seq.to_string());
            receipts.push(
                bus.publisher()
                    .send(Outgoing::event(&event).unwrap())
                    .await
                    .unwrap(),
            );
        }
    }
    for receipt in receipts {
        receipt.confirmed().await.unwrap();
    }
    let mut seen: HashMap<String, Vec<usize>> = HashMap::new();
    for _ in 0..KEYS * PER_KEY {
        let (_, saga, seq) = next(&mut rx, 30).await;
        seen.entry(saga).or_default().push(seq);
    }
    for (saga, seqs) in &seen {
        assert_eq!(*seqs, (0..PER_KEY).collect::<Vec<_>>(), "order of {saga}");
    }
    let most = active.lock().unwrap().2;
    assert!(
        most > 1,
        "keys were handled one at a time (at most {most} at once)"
    );

    shutdown.cancel();
    running.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_retry_comes_back_after_a_growing_backoff_then_succeeds() {
    let bus = bus().await;
    let saga = unique("retry");
    let mut config = fresh_subscription();
    config.backoff = Backoff {
        initial: Duration::from_secs(1),
        max: Duration::from_secs(10),
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let subscription = bus.subscribe::<FraudDetected>(config).await.unwrap();
    let shutdown = Shutdown::new();
    let wanted = saga.clone();
    let handler = move |d: Delivery<FraudDetected>| {
        let mine = d.event.metadata.saga_id.as_deref() == Some(wanted.as_str());
        if mine {
            let _ = tx.send((Instant::now(), d.attempt, d.topic.clone()));
        }
        std::future::ready(match (mine, d.attempt) {
            (true, 1 | 2) => Outcome::Retry(format!("dependency down (attempt {})", d.attempt)),
            _ => Outcome::Done,
        })
    };
    let running = tokio::spawn(subscription.run(handler, shutdown.clone()));
    bus.publisher()
        .publish(&fraud(&saga, "retry me"))
        .await
        .unwrap();

    let (t1, a1, topic1) = next(&mut rx, 20).await;
    let (t2, a2, topic2) = next(&mut rx, 20).await;
    let (t3, a3, _) = next(&mut rx, 20).await;
    assert_eq!((a1, a2, a3), (1, 2, 3));
    assert!(topic1.ends_with("fraud-detected-v1"));
    assert!(
        topic2.ends_with("-retry"),
        "retries come through the retry topic: {topic2}"
    );
    let (first, second) = (t2 - t1, t3 - t2);
    assert!(
        first >= Duration::from_millis(950),
        "first backoff {first:?}"
    );
    assert!(
        second >= Duration::from_millis(1950),
        "second backoff {second:?}"
    );
    assert!(
        second > first,
        "the backoff grew: {first:?} then {second:?}"
    );
    // Done on attempt 3: nothing more arrives.
    let extra = tokio::time::timeout(Duration::from_secs(3), rx.recv()).await;
    assert!(extra.is_err(), "acknowledged message came back: {extra:?}");

    shutdown.cancel();
    running.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_handler_that_panics_does_not_end_the_subscription_and_its_message_comes_back() {
    let bus = bus().await;
    let saga = unique("panic");
    let mut config = fresh_subscription();
    config.backoff = Backoff {
        initial: Duration::from_millis(200),
        max: Duration::from_secs(1),
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let subscription = bus.subscribe::<FraudDetected>(config).await.unwrap();
    let health = subscription.health();
    let shutdown = Shutdown::new();
    let wanted = saga.clone();
    let handler = move |d: Delivery<FraudDetected>| {
        let mine = d.event.metadata.saga_id.as_deref() == Some(wanted.as_str());
        let tx = tx.clone();
        async move {
            if mine && d.attempt == 1 && d.event.reason == "first" {
                panic!("a bug in the handler");
            }
            if mine {
                let _ = tx.send((d.attempt, d.event.reason.clone()));
            }
            Outcome::Done
        }
    };
    let running = tokio::spawn(subscription.run(handler, shutdown.clone()));
    bus.publisher()
        .publish(&fraud(&saga, "first"))
        .await
        .unwrap();

    let (attempt, reason) = next(&mut rx, 20).await;
    assert_eq!(
        (attempt, reason.as_str()),
        (2, "first"),
        "the message that panicked comes back as a retry"
    );
    bus.publisher()
        .publish(&fraud(&saga, "second"))
        .await
        .unwrap();
    let (_, reason) = next(&mut rx, 20).await;
    assert_eq!(reason, "second", "the subscription still consumes");
    assert!(health.is_up(), "and still says it is up");
    assert!(!running.is_finished());

    shutdown.cancel();
    running.await.unwrap().unwrap();
    assert!(
        !health.is_up(),
        "a subscription whose loop has ended never reads as up"
    );
}

fn property_of(message: &pulsar::consumer::Message<Vec<u8>>, name: &str) -> Option<String> {
    message
        .metadata()
        .properties
        .iter()
        .find(|kv| kv.key == name)
        .map(|kv| kv.value.clone())
}

#[tokio::test]
async fn poison_bytes_are_dead_lettered_with_the_reason_and_the_next_message_goes_through() {
    let bus = bus().await;
    let saga = unique("poison");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let subscription = bus
        .subscribe::<FraudDetected>(fresh_subscription())
        .await
        .unwrap();
    let dlq = subscription.dead_letter_topic().to_owned();
    let shutdown = Shutdown::new();
    let running = tokio::spawn(subscription.run(forward(saga.clone(), tx), shutdown.clone()));

    let poison = Outgoing {
        topic: FraudDetected::event_type().topic(),
        event_type: None,
        key: saga.clone(),
        payload: vec![0xff, 0xff, 0xff, 0xff, 0x0f, 0x42],
        properties: [("marker".to_owned(), saga.clone())].into(),
        event_time_ms: 1,
        deliver_at_ms: None,
    };
    bus.publisher()
        .send(poison.clone())
        .await
        .unwrap()
        .confirmed()
        .await
        .unwrap();
    let good = fraud(&saga, "after the poison");
    bus.publisher().publish(&good).await.unwrap();

    assert_eq!(next(&mut rx, 20).await.event, good, "the consumer moved on");
    let [letter] = <[_; 1]>::try_from(dead_letters(&dlq, 1).await).unwrap();
    assert_eq!(
        letter.payload.data, poison.payload,
        "the bytes are kept as they came"
    );
    assert_eq!(property_of(&letter, "marker"), Some(saga.clone()));
    let reason = property_of(&letter, property::DEAD_LETTER_REASON).unwrap();
    assert!(reason.contains("cannot decode FraudDetected"), "{reason}");
    assert!(
        property_of(&letter, property::ORIGINAL_TOPIC)
            .unwrap()
            .ends_with("fraud-detected-v1")
    );

    shutdown.cancel();
    running.await.unwrap().unwrap();
}

#[tokio::test]
async fn rejected_and_exhausted_messages_are_dead_lettered_with_their_reasons() {
    let bus = bus().await;
    let saga = unique("reject");
    let mut config = fresh_subscription();
    config.max_attempts = 2;
    config.backoff = Backoff {
        initial: Duration::from_millis(200),
        max: Duration::from_millis(200),
    };
    let subscription = bus.subscribe::<FraudDetected>(config).await.unwrap();
    let dlq = subscription.dead_letter_topic().to_owned();
    let shutdown = Shutdown::new();
    let wanted = saga.clone();
    let handler = move |d: Delivery<FraudDetected>| {
        let mine = d.event.metadata.saga_id.as_deref() == Some(wanted.as_str());
        std::future::ready(match (mine, d.event.reason.as_str()) {
            (true, "invalid") => Outcome::Reject("amount must be positive".to_owned()),
            (true, _) => Outcome::Retry("still failing".to_owned()),
            _ => Outcome::Done,
        })
    };
    let running = tokio::spawn(subscription.run(handler, shutdown.clone()));
    let rejected = fraud(&saga, "invalid");
    let exhausted = fraud(&saga, "flaky");
    bus.publisher().publish(&rejected).await.unwrap();
    bus.publisher().publish(&exhausted).await.unwrap();

    let letters = dead_letters(&dlq, 2).await;
    let mut reasons: HashMap<String, String> = HashMap::new();
    for letter in &letters {
        let event: FraudDetected = codec::decode(&letter.payload.data).unwrap();
        let reason = property_of(letter, property::DEAD_LETTER_REASON).unwrap();
        reasons.insert(event.metadata.event_id, reason);
    }
    assert_eq!(
        reasons[&rejected.metadata.event_id],
        "amount must be positive"
    );
    assert_eq!(
        reasons[&exhausted.metadata.event_id],
        "gave up after 2 attempts: still failing"
    );

    shutdown.cancel();
    running.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_schema_registry_accepts_a_compatible_evolution_and_refuses_a_breaking_one() {
    let admin = alpes_bus::admin::Admin::authenticated(&admin_url(), token());
    bus().await; // bootstrap: the namespace and its compatibility strategy exist
    let topic = unique("schema-probe");
    let current = FraudDetected::event_type().schema_text;
    let first = admin.upload_schema_text(&topic, current).await.unwrap();
    assert_eq!(
        admin.upload_schema_text(&topic, current).await.unwrap(),
        first,
        "idempotent"
    );

    let evolved = current.replace(
        r#"{"name": "reporter", "type": "string"},"#,
        r#"{"name": "reporter", "type": "string"},
    {"name": "channel", "type": ["null", "string"], "default": null},"#,
    );
    assert_ne!(evolved, current, "the fixture edit applied");
    assert_eq!(
        admin.upload_schema_text(&topic, &evolved).await.unwrap(),
        first + 1
    );

    let breaking = current.replace(
        r#"{"name": "reason", "type": "string"}"#,
        r#"{"name": "reason", "type": "long"}"#,
    );
    assert_ne!(breaking, current, "the fixture edit applied");
    match admin.upload_schema_text(&topic, &breaking).await {
        Err(BusError::SchemaRefused { topic: refused, .. }) => assert_eq!(refused, topic),
        other => panic!("expected the registry to refuse, got {other:?}"),
    }
}

#[tokio::test]
async fn a_new_subscription_from_the_earliest_message_works_through_a_backlog() {
    // More than the consumer's queue and the client's buffers hold: the subscription must keep
    // reading (and resolving writer schemas) while its queue is full.
    const BACKLOG: usize = 400;
    let bus = bus().await;
    let prefix = unique("backlog");
    let mut receipts = Vec::new();
    for seq in 0..BACKLOG {
        let event = fraud(&format!("{prefix}-{}", seq % 7), &seq.to_string());
        receipts.push(
            bus.publisher()
                .send(Outgoing::event(&event).unwrap())
                .await
                .unwrap(),
        );
    }
    for receipt in receipts {
        receipt.confirmed().await.unwrap();
    }

    let mut config = fresh_subscription();
    config.start_at = alpes_bus::StartAt::Earliest;
    config.receiver_queue_size = 20;
    let subscription = bus.subscribe::<FraudDetected>(config).await.unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let shutdown = Shutdown::new();
    let running = tokio::spawn(subscription.run(forward(prefix, tx), shutdown.clone()));
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < BACKLOG {
        seen.insert(
            next(&mut rx, 60)
                .await
                .event
                .reason
                .parse::<usize>()
                .unwrap(),
        );
    }
    assert_eq!(seen, (0..BACKLOG).collect());

    shutdown.cancel();
    running.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_namespace_keeps_what_it_holds_for_a_week_even_on_topics_nobody_reads() {
    bus().await; // bootstrap
    let admin = alpes_bus::admin::Admin::authenticated(&admin_url(), token());
    let namespace = format!("/admin/v2/namespaces/{NAMESPACE}");
    let retention: serde_json::Value = admin
        .get_json(&format!("{namespace}/retention"))
        .await
        .unwrap();
    assert_eq!(
        retention["retentionTimeInMinutes"],
        7 * 24 * 60,
        "{retention}"
    );
    // The broker's default deletes a topic without subscriptions after a minute idle, with
    // its messages, schema and grants: every unread dead letter would go with it.
    let inactive: serde_json::Value = admin
        .get_json(&format!("{namespace}/inactiveTopicPolicies"))
        .await
        .unwrap();
    assert_eq!(inactive["deleteWhileInactive"], false, "{inactive}");
}
