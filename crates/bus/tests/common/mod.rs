//! Shared set-up for the bus tests: they run against the Apache Pulsar standalone of the local
//! stack (`scripts/stack.sh up`), located by the same variables the services read, in the
//! test suites' own namespace ([`NAMESPACE`]): a platform left running never sees their events.

#![allow(dead_code)]

use std::time::Duration;

use alpes_bus::admin::Admin;
use alpes_bus::{Bus, Delivery, Outcome, StartAt, SubscriptionConfig};
use alpes_contracts::EventMetadata;
use alpes_contracts::events::marketing::FraudDetected;
use futures::StreamExt;
use pulsar::consumer::InitialPosition;
use pulsar::{ConsumerOptions, SubType};
use tokio::sync::{OnceCell, mpsc};

pub fn pulsar_url() -> String {
    std::env::var("ALPES_PULSAR_URL").unwrap_or_else(|_| "pulsar://127.0.0.1:6650".into())
}

pub fn admin_url() -> String {
    std::env::var("ALPES_PULSAR_ADMIN_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into())
}

/// The token of the stack's admin role when its broker requires one (`ALPES_PULSAR_TOKEN`).
pub fn token() -> Option<alpes_bus::PulsarToken> {
    alpes_bus::PulsarToken::from_env().expect("ALPES_PULSAR_TOKEN")
}

/// A plain `pulsar` client of the stack's broker, for what a test inspects past the bus.
pub async fn raw_client() -> pulsar::Pulsar<pulsar::TokioExecutor> {
    let mut builder = pulsar::Pulsar::builder(pulsar_url(), pulsar::TokioExecutor);
    if let Some(token) = token() {
        builder = builder.with_auth(token.authentication());
    }
    builder
        .build()
        .await
        .expect("a client of the stack's broker")
}

/// The Pulsar namespace of the test suites.
pub const NAMESPACE: &str = "alpes/test";

/// A bus connected to the real broker in [`NAMESPACE`], after the (idempotent) bootstrap ran
/// once.
pub async fn bus() -> Bus {
    alpes_contracts::Namespace::parse(NAMESPACE)
        .unwrap()
        .install()
        .unwrap();
    // Bus logs go to the test's captured output, shown when it fails.
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .try_init();
    static BOOTSTRAPPED: OnceCell<()> = OnceCell::const_new();
    BOOTSTRAPPED
        .get_or_init(|| async {
            Admin::authenticated(&admin_url(), token())
                .bootstrap()
                .await
                .expect("Pulsar bootstrap failed: is the stack up? (scripts/stack.sh up)");
        })
        .await;
    Bus::connect_with(&pulsar_url(), &admin_url(), "bus-tests", token())
        .await
        .expect("cannot connect to Pulsar: is the stack up? (scripts/stack.sh up)")
}

/// A name no earlier run used.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// A subscription of its own that only sees messages published after it exists.
pub fn fresh_subscription() -> SubscriptionConfig {
    let mut config = SubscriptionConfig::new(unique("test"));
    config.start_at = StartAt::Latest;
    config
}

/// A fraud report in saga `saga` whose reason tells messages of one test apart.
pub fn fraud(saga: &str, reason: &str) -> FraudDetected {
    FraudDetected {
        metadata: EventMetadata::new::<FraudDetected>().in_saga(saga),
        reason: reason.to_owned(),
        reporter: "bus-tests".to_owned(),
        score: Some(97),
    }
}

/// Waits for the next delivery on `rx`, failing the test after `seconds`.
pub async fn next<T>(rx: &mut mpsc::UnboundedReceiver<T>, seconds: u64) -> T {
    tokio::time::timeout(Duration::from_secs(seconds), rx.recv())
        .await
        .unwrap_or_else(|_| panic!("nothing arrived within {seconds} s"))
        .expect("the subscription stopped")
}

/// A handler that forwards deliveries whose saga starts with `prefix` and acks everything.
pub fn forward(
    prefix: String,
    tx: mpsc::UnboundedSender<Delivery<FraudDetected>>,
) -> impl FnMut(Delivery<FraudDetected>) -> std::future::Ready<Outcome> {
    move |delivery| {
        if delivery
            .event
            .metadata
            .saga_id
            .as_deref()
            .unwrap_or("")
            .starts_with(&prefix)
        {
            let _ = tx.send(delivery);
        }
        std::future::ready(Outcome::Done)
    }
}

/// Reads everything that arrives on `topic` for a subscription of its own from the start.
pub async fn dead_letters(topic: &str, want: usize) -> Vec<pulsar::consumer::Message<Vec<u8>>> {
    let client = raw_client().await;
    let mut consumer: pulsar::Consumer<Vec<u8>, _> = client
        .consumer()
        .with_topic(topic)
        .with_subscription(unique("inspect"))
        .with_subscription_type(SubType::Exclusive)
        .with_options(ConsumerOptions::default().with_initial_position(InitialPosition::Earliest))
        .build()
        .await
        .unwrap();
    let mut messages = Vec::new();
    while messages.len() < want {
        let message = tokio::time::timeout(Duration::from_secs(20), consumer.next())
            .await
            .expect("dead letter did not arrive")
            .unwrap()
            .unwrap();
        consumer.ack(&message).await.unwrap();
        messages.push(message);
    }
    messages
}
