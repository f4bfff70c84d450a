//! `alpes publish`: refusals without a broker, and a real round trip through the Apache Pulsar
//! standalone of the local stack (`scripts/stack.sh up`), read back with a bus subscription.

mod run;

use std::time::Duration;

use alpes_bus::admin::Admin;
use alpes_bus::{Bus, Outcome, Shutdown, StartAt, SubscriptionConfig, property};
use alpes_contracts::events::marketing::FraudDetected;
use run::alpes;
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// A broker address where nothing listens: a refused document must never get that far.
const NO_BROKER: [(&str, &str); 1] = [("ALPES_PULSAR_URL", "pulsar://127.0.0.1:9")];

fn pulsar_url() -> String {
    std::env::var("ALPES_PULSAR_URL").unwrap_or_else(|_| "pulsar://127.0.0.1:6650".into())
}

fn admin_url() -> String {
    std::env::var("ALPES_PULSAR_ADMIN_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into())
}

/// The test suites' own Pulsar namespace, installed for this process: a platform left running
/// (`scripts/demo.sh`, in `alpes/events`) never sees what these tests publish.
const NAMESPACE: &str = "alpes/test";

fn test_namespace() {
    alpes_contracts::Namespace::parse(NAMESPACE)
        .unwrap()
        .install()
        .unwrap();
}

#[tokio::test]
async fn an_invalid_document_is_refused_with_exit_code_2_and_nothing_published() {
    let document = json!({
        "metadata": {"saga_id": "s-1"},
        "reason": "chargeback",
        "score": "high"
    });
    let ran = alpes(
        &["publish", "FraudDetected", "-"],
        &document.to_string(),
        &NO_BROKER,
    )
    .await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("nothing was published"),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr
            .contains("reporter: missing required field (expected string)"),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr
            .contains("score: expected int, got string \"high\""),
        "{}",
        ran.stderr
    );
    assert_eq!(ran.stdout, "");
}

#[tokio::test]
async fn an_unknown_event_type_or_broken_json_is_refused() {
    let ran = alpes(&["publish", "Fraud", "-"], "{}", &NO_BROKER).await;
    assert_eq!(ran.code, 2);
    assert!(
        ran.stderr
            .contains("unknown event type \"Fraud\"; known: InteractionTracked")
    );

    let ran = alpes(&["publish", "FraudDetected"], "{\"reason\": ", &NO_BROKER).await;
    assert_eq!(ran.code, 2);
    assert!(
        ran.stderr.contains("the document is not JSON"),
        "{}",
        ran.stderr
    );
}

#[tokio::test]
async fn a_dry_run_shows_the_completed_document_without_a_broker() {
    let document = json!({"metadata": {"saga_id": "s-7"}, "reason": "r", "reporter": "me"});
    let ran = alpes(
        &["publish", "FraudDetected", "--dry-run", "--key", "k-1"],
        &document.to_string(),
        &NO_BROKER,
    )
    .await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let shown: Value = serde_json::from_str(&ran.stdout).unwrap();
    assert_eq!(
        shown["topic"],
        "persistent://alpes/events/fraud-detected-v1"
    );
    assert_eq!(shown["key"], "k-1");
    assert_eq!(shown["event"]["metadata"]["producer"], "alpes-cli");
    assert_eq!(shown["event"]["metadata"]["event_id"], shown["event_id"]);
}

#[tokio::test]
async fn a_published_event_arrives_on_its_topic_with_its_key_and_metadata() {
    test_namespace();
    Admin::authenticated(&admin_url(), alpes_bus::PulsarToken::from_env().unwrap())
        .bootstrap()
        .await
        .expect("Pulsar bootstrap failed: is the stack up? (scripts/stack.sh up)");
    let bus = Bus::connect_with(
        &pulsar_url(),
        &admin_url(),
        "cli-tests",
        alpes_bus::PulsarToken::from_env().unwrap(),
    )
    .await
    .expect("cannot connect to Pulsar: is the stack up? (scripts/stack.sh up)");
    let mut config = SubscriptionConfig::new(format!("cli-test-{}", uuid::Uuid::new_v4().simple()));
    config.start_at = StartAt::Latest;
    let subscription = bus.subscribe::<FraudDetected>(config).await.unwrap();
    let saga = format!("cli-{}", uuid::Uuid::new_v4());
    let (tx, mut rx) = mpsc::unbounded_channel();
    let shutdown = Shutdown::new();
    let wanted = saga.clone();
    let running = tokio::spawn(subscription.run(
        move |delivery| {
            if delivery.event.metadata.saga_id.as_deref() == Some(wanted.as_str()) {
                let _ = tx.send(delivery);
            }
            std::future::ready(Outcome::Done)
        },
        shutdown.clone(),
    ));

    let document = json!({
        "metadata": {"saga_id": saga, "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
        "reason": "chargeback",
        "reporter": "cli-tests",
        "score": {"int": 97}
    });
    let env = [
        ("ALPES_PULSAR_URL", pulsar_url()),
        ("ALPES_PULSAR_ADMIN_URL", admin_url()),
        ("ALPES_PULSAR_NAMESPACE", NAMESPACE.to_owned()),
        // A broker with token authentication (scripts/test.sh) refuses a CLI without one.
        (
            "ALPES_PULSAR_TOKEN",
            std::env::var("ALPES_PULSAR_TOKEN").unwrap_or_default(),
        ),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let ran = alpes(
        &["publish", "FraudDetected", "--json"],
        &document.to_string(),
        &env,
    )
    .await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let printed: Value = serde_json::from_str(&ran.stdout).unwrap();

    let delivery = tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("the event did not arrive within 30 s")
        .unwrap();
    let event = &delivery.event;
    assert_eq!(event.reason, "chargeback");
    assert_eq!(event.reporter, "cli-tests");
    assert_eq!(event.score, Some(97));
    assert_eq!(event.metadata.producer, "alpes-cli");
    assert_eq!(
        event.metadata.traceparent.as_deref(),
        Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    );
    assert_eq!(
        delivery.key.as_deref(),
        Some(saga.as_str()),
        "keyed by saga"
    );
    assert_eq!(
        delivery.properties[property::EVENT_ID],
        event.metadata.event_id
    );
    assert_eq!(printed["event_id"], event.metadata.event_id.as_str());
    assert_eq!(printed["message_id"], delivery.message_id.as_str());
    assert_eq!(
        printed["topic"], "persistent://alpes/test/fraud-detected-v1",
        "published in the namespace it was told"
    );

    shutdown.cancel();
    running.await.unwrap().unwrap();
}

#[tokio::test]
async fn every_command_names_topics_in_the_namespace_it_is_given() {
    let listed = alpes(&["events"], "", &[("ALPES_PULSAR_NAMESPACE", NAMESPACE)]).await;
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    assert!(
        listed
            .stdout
            .contains("persistent://alpes/test/interaction-tracked-v1"),
        "{}",
        listed.stdout
    );
    assert!(!listed.stdout.contains("alpes/events"), "{}", listed.stdout);

    let by_flag = alpes(&["--pulsar-namespace", "alpes/staging", "events"], "", &[]).await;
    assert_eq!(by_flag.code, 0, "{}", by_flag.stderr);
    assert!(
        by_flag
            .stdout
            .contains("persistent://alpes/staging/fraud-detected-v1"),
        "{}",
        by_flag.stdout
    );

    let by_default = alpes(&["events"], "", &[]).await;
    assert!(
        by_default
            .stdout
            .contains("persistent://alpes/events/fraud-detected-v1"),
        "{}",
        by_default.stdout
    );

    let refused = alpes(&["events", "--pulsar-namespace", "no-slash"], "", &[]).await;
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("tenant/namespace"),
        "{}",
        refused.stderr
    );
}
