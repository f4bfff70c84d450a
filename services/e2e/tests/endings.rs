//! Every saga reaches exactly one final state, with the four services' real wiring in-process
//! against the local stack: a compensation hop with nothing to undo still answers, a business
//! refusal is a rejection (never a dead letter), and a timeout announced after the saga
//! completed in time is void.
//!
//! One test per ending, each with a campaign of its own, on the platform the tests of this
//! binary share (`common::shared`).

use std::time::Duration;

use alpes_contracts::events::marketing::SagaTimedOut;
use alpes_contracts::events::tracking::InteractionKind;
use alpes_contracts::{EventMetadata, Timestamp};
use alpes_e2e::timeline;
use alpes_testkit::bus;
use alpes_testkit::fixtures::{interaction, purchase};
use serde_json::{Value, json};

mod common;

/// Long enough that no saga here times out by itself: timeouts are published by hand.
const DEADLINE: Duration = Duration::from_secs(60);
const WAIT: Duration = Duration::from_secs(45);

fn step<'a>(saga: &'a Value, event_type: &str) -> &'a Value {
    saga["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["event_type"] == event_type)
        .unwrap_or_else(|| panic!("no {event_type} in {saga}"))
}

/// A `SagaTimedOut` for `saga` with `deadline`, published by hand (a fresh event id).
async fn publish_timeout(bus: &alpes_bus::Bus, saga: &str, deadline: Timestamp) {
    let timeout = SagaTimedOut {
        metadata: EventMetadata::new::<SagaTimedOut>()
            .in_saga(saga)
            .produced_by("e2e"),
        deadline,
        last_status: "ATTRIBUTED".into(),
    };
    bus.publisher().publish(&timeout).await.unwrap();
}

fn time_of(step: &Value) -> Timestamp {
    step["occurred_at"].as_str().unwrap().parse().unwrap()
}

/// A sale that completed, and when its commission was reserved.
async fn completed_sale(
    platform: &alpes_e2e::PlatformClient,
    campaign: &str,
    amount_minor: i64,
) -> (String, Timestamp) {
    let saga = platform.sale(campaign, amount_minor).await.unwrap().0;
    let completed = platform
        .saga_reaching(&saga, "COMPLETED", WAIT)
        .await
        .unwrap();
    (saga, time_of(step(&completed, "CommissionReserved")))
}

#[tokio::test]
async fn a_saga_tracking_never_saw_is_compensated_to_the_end() {
    let bus = bus("e2e-endings").await;
    let (platform, campaign) = common::shared_with_campaign(DEADLINE).await;
    // Published straight to the topic: tracking never stored these interactions.
    let saga = format!("published-{}", uuid::Uuid::new_v4().simple());
    let visitor = format!("visitor-{}", uuid::Uuid::new_v4().simple());
    let publisher = bus.publisher();
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
        .publish(&purchase(&visitor, &campaign, &saga, 12_000))
        .await
        .unwrap();
    platform
        .saga_reaching(&saga, "COMPLETED", WAIT)
        .await
        .unwrap();
    assert_eq!(platform.reserved_minor(&campaign).await.unwrap(), 1_200);
    platform.report_fraud(&saga, "chargeback").await.unwrap();
    let compensated = platform
        .saga_reaching(&saga, "COMPENSATED", WAIT)
        .await
        .unwrap();
    let discarded = step(&compensated, "InteractionsDiscarded");
    assert_eq!(
        discarded["payload"]["interaction_ids"],
        json!([]),
        "tracking discarded nothing and answered all the same: {compensated}"
    );
    assert_eq!(
        platform.commission_status(&saga).await.unwrap().as_deref(),
        Some("REVERTED")
    );
    assert_eq!(platform.reserved_minor(&campaign).await.unwrap(), 0);
}

#[tokio::test]
async fn a_purchase_in_another_currency_is_rejected_with_the_reason() {
    let (platform, campaign) = common::shared_with_campaign(DEADLINE).await;
    let visitor = format!("visitor-{}", uuid::Uuid::new_v4().simple());
    platform
        .track("CLICK", &visitor, &campaign, Some("partner-1"), None)
        .await
        .unwrap();
    let (status, dollars) = platform
        .post(
            format!("{}/interactions", platform.tracking),
            json!({
                "kind": "PURCHASE",
                "visitor": { "anonymous_id": visitor, "user_agent": "Mozilla/5.0" },
                "tracking": { "campaign_id": campaign, "partner_id": "partner-1" },
                "target": { "url": "https://shop.example/p/1" },
                "purchase": {
                    "order_id": format!("order-{}", uuid::Uuid::new_v4().simple()),
                    "amount": { "amount_minor": 12_000, "currency": "USD" },
                },
            }),
        )
        .await
        .unwrap();
    assert_eq!(status, 202, "{dollars}");
    let dollars = dollars["saga_id"].as_str().unwrap();
    let rejected = platform
        .saga_reaching(dollars, "REJECTED", WAIT)
        .await
        .unwrap();
    let detail = step(&rejected, "ConversionRejected")["payload"]["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        detail.contains("USD") && detail.contains("EUR"),
        "the reason names both currencies: {detail}"
    );
    assert_eq!(
        rejected["deadline"],
        Value::Null,
        "a rejected saga is final"
    );
    assert_eq!(platform.reserved_minor(&campaign).await.unwrap(), 0);
}

/// A timeout announced after the saga completed, with a deadline at or after the reservation
/// (the sweeper raced the completion, or a hand published it): void. The sale stays paid and
/// the saga COMPLETED.
#[tokio::test]
async fn a_timeout_with_a_deadline_after_the_reservation_is_void() {
    let bus = bus("e2e-endings").await;
    let (platform, campaign) = common::shared_with_campaign(DEADLINE).await;
    let (paid, reserved_at) = completed_sale(&platform, &campaign, 20_000).await;
    assert_eq!(platform.reserved_minor(&campaign).await.unwrap(), 2_000);
    publish_timeout(&bus, &paid, reserved_at).await;
    publish_timeout(&bus, &paid, chrono::Utc::now()).await;
    // Both timeouts reach the log, and change nothing.
    let deadline = tokio::time::Instant::now() + WAIT;
    let logged = loop {
        let (_, saga) = platform.saga(&paid).await.unwrap();
        let timeouts = timeline(&saga)
            .iter()
            .filter(|t| *t == "SagaTimedOut")
            .count();
        if timeouts == 2 {
            break saga;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timeouts never logged: {saga}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, after) = platform.saga(&paid).await.unwrap();
    assert_eq!(after["status"], "COMPLETED", "{logged}");
    assert_eq!(after["deadline"], Value::Null, "{after}");
    assert!(
        !timeline(&after).contains(&"CommissionReverted".to_owned()),
        "nothing reverted: {after}"
    );
    assert_eq!(
        platform.commission_status(&paid).await.unwrap().as_deref(),
        Some("RESERVED")
    );
    assert_eq!(platform.reserved_minor(&campaign).await.unwrap(), 2_000);
}

/// A timeout whose deadline came before the reservation stands: the saga is compensated to the
/// end and the budget released.
#[tokio::test]
async fn a_timeout_with_a_deadline_before_the_reservation_compensates_the_saga() {
    let bus = bus("e2e-endings").await;
    let (platform, campaign) = common::shared_with_campaign(DEADLINE).await;
    let (late, reserved_at) = completed_sale(&platform, &campaign, 30_000).await;
    assert_eq!(platform.reserved_minor(&campaign).await.unwrap(), 3_000);
    publish_timeout(&bus, &late, reserved_at - chrono::Duration::milliseconds(1)).await;
    platform
        .saga_reaching(&late, "COMPENSATED", WAIT)
        .await
        .unwrap();
    assert_eq!(
        platform.commission_status(&late).await.unwrap().as_deref(),
        Some("REVERTED")
    );
    assert_eq!(platform.reserved_minor(&campaign).await.unwrap(), 0);
}
