//! A walk through the bus against a running broker: bootstrap, subscribe, publish a
//! `FraudDetected`, and print what the subscriber received.
//!
//! ```text
//! eval "$(scripts/stack.sh env)"
//! cargo run -p alpes-bus --example roundtrip
//! ```

use std::time::Duration;

use alpes_bus::admin::Admin;
use alpes_bus::{Bus, Delivery, Outcome, Shutdown, StartAt, SubscriptionConfig};
use alpes_contracts::EventMetadata;
use alpes_contracts::events::marketing::FraudDetected;
use tokio::sync::mpsc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let env = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    let pulsar_url = env("ALPES_PULSAR_URL", "pulsar://127.0.0.1:6650");
    let admin_url = env("ALPES_PULSAR_ADMIN_URL", "http://127.0.0.1:8080");

    let bootstrapped = Admin::new(&admin_url).bootstrap().await?;
    println!(
        "bootstrapped {} topics with their schemas",
        bootstrapped.topics.len()
    );

    let bus = Bus::connect(&pulsar_url, &admin_url, "demo").await?;
    let mut config = SubscriptionConfig::new(format!("demo-{}", uuid::Uuid::new_v4().simple()));
    config.start_at = StartAt::Latest;
    let subscription = bus.subscribe::<FraudDetected>(config).await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let shutdown = Shutdown::new();
    let handler = move |delivery: Delivery<FraudDetected>| {
        let _ = tx.send(delivery);
        std::future::ready(Outcome::Done)
    };
    let running = tokio::spawn(subscription.run(handler, shutdown.clone()));

    let saga = uuid::Uuid::now_v7().to_string();
    let event = FraudDetected {
        metadata: EventMetadata::new::<FraudDetected>().in_saga(&saga),
        reason: "card reported stolen".into(),
        reporter: "demo".into(),
        score: Some(91),
    };
    let receipt = bus.publisher().publish(&event).await?;
    println!(
        "published FraudDetected for saga {saga} as {}",
        receipt.message_id
    );

    let delivery = tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await?
        .ok_or("subscription stopped")?;
    println!(
        "received from {} (attempt {}):",
        delivery.topic, delivery.attempt
    );
    println!("  event     {:?}", delivery.event);
    for (name, value) in &delivery.properties {
        println!("  property  {name} = {value}");
    }
    assert_eq!(delivery.event, event, "what arrived is what was sent");

    shutdown.cancel();
    running.await??;
    bus.publisher().close().await;
    Ok(())
}
