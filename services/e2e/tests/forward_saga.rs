//! The forward saga with the four services' real wiring started in-process (each on its own
//! port, database and subscriptions) against the local stack's Pulsar and FerretDB.
//!
//! One test function runs every scenario on one platform: each service instance consumes the
//! shared topics, so two platforms in one process would answer each other's sagas.

use std::time::Duration;

use alpes_contracts::events::attribution::ConversionRejectionReason;
use alpes_contracts::events::attribution::{ConversionAttributed, ConversionRejected};
use alpes_contracts::events::commission::CommissionRejectionReason;
use alpes_contracts::events::commission::{CommissionRejected, CommissionReserved};
use alpes_contracts::events::tracking::InteractionTracked;
use alpes_testkit::Observer;

mod common;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn the_forward_saga_reserves_commissions_and_rejects_what_it_must() {
    let services = common::InProcess::start(Duration::from_secs(60)).await;
    let (platform, bus) = (&services.platform, &services.bus);
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let mut tracked = Observer::<InteractionTracked>::try_listen(bus)
        .await
        .unwrap();
    let mut attributed = Observer::<ConversionAttributed>::try_listen(bus)
        .await
        .unwrap();
    let mut conversion_rejected = Observer::<ConversionRejected>::try_listen(bus)
        .await
        .unwrap();
    let mut reserved = Observer::<CommissionReserved>::try_listen(bus)
        .await
        .unwrap();
    let mut commission_rejected = Observer::<CommissionRejected>::try_listen(bus)
        .await
        .unwrap();

    // A campaign paying 10 % (min 5.00, max 50.00) from a 60.00 EUR budget.
    let campaign = platform.active_campaign(6_000, 1_000).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;

    // 1. Views and clicks from a partner, then a purchase of 120.00 → 12.00 reserved.
    let visitor = format!("visitor-{run_id}");
    platform
        .track("VIEW", &visitor, &campaign, Some("partner-7"), None)
        .await
        .unwrap();
    platform
        .track("CLICK", &visitor, &campaign, Some("partner-7"), None)
        .await
        .unwrap();
    let purchase = platform
        .track(
            "PURCHASE",
            &visitor,
            &campaign,
            Some("partner-7"),
            Some(12_000),
        )
        .await
        .unwrap();
    let saga = purchase["saga_id"].as_str().unwrap().to_owned();
    let credited = attributed.next_of_saga_within(&saga, WAIT).await.unwrap();
    assert_eq!(credited.credits.len(), 1);
    assert_eq!(credited.credits[0].partner_id, "partner-7");
    let commission = reserved.next_of_saga_within(&saga, WAIT).await.unwrap();
    assert_eq!(commission.commission.amount_minor, 1_200);
    assert_eq!(commission.partner_id, "partner-7");
    assert_eq!(commission.budget_remaining.amount_minor, 4_800);

    // 2. The same InteractionTracked delivered twice reserves one commission, not two.
    let purchase_event = tracked.next_of_saga_within(&saga, WAIT).await.unwrap();
    bus.publisher().publish(&purchase_event).await.unwrap();
    let again = reserved
        .next_of_saga_within(&saga, Duration::from_secs(5))
        .await;
    assert!(
        again.is_err(),
        "a duplicate purchase reserved again: {again:?}"
    );
    let (_, budget) = platform
        .get(format!("{}/budgets/{campaign}", platform.commission))
        .await
        .unwrap();
    assert_eq!(budget["reserved"]["amount_minor"], 1_200, "{budget}");

    // 3. A purchase without any partner touchpoint is not attributed.
    let stranger = format!("stranger-{run_id}");
    let lone = platform
        .track("PURCHASE", &stranger, &campaign, None, Some(5_000))
        .await
        .unwrap();
    let lone_saga = lone["saga_id"].as_str().unwrap().to_owned();
    let rejected = conversion_rejected
        .next_of_saga_within(&lone_saga, WAIT)
        .await
        .unwrap();
    assert_eq!(
        rejected.reason,
        ConversionRejectionReason::NoEligibleTouchpoint
    );

    // 4. Commissions beyond the budget are rejected: 48.00 left, a 500.00 sale earns 50.00.
    let big_spender = format!("big-{run_id}");
    platform
        .track("CLICK", &big_spender, &campaign, Some("partner-8"), None)
        .await
        .unwrap();
    let big = platform
        .track(
            "PURCHASE",
            &big_spender,
            &campaign,
            Some("partner-8"),
            Some(50_000),
        )
        .await
        .unwrap();
    let big_saga = big["saga_id"].as_str().unwrap().to_owned();
    let refused = commission_rejected
        .next_of_saga_within(&big_saga, WAIT)
        .await
        .unwrap();
    assert_eq!(refused.reason, CommissionRejectionReason::BudgetExhausted);
    let (_, budget) = platform
        .get(format!("{}/budgets/{campaign}", platform.commission))
        .await
        .unwrap();
    assert_eq!(
        budget["reserved"]["amount_minor"], 1_200,
        "the budget is untouched: {budget}"
    );

    // 5. Marketing's statistics, folded from what the other services announced.
    let wanted = serde_json::json!({
        "views": 1, "clicks": 2, "purchases": 3,
        "conversions": 2, "conversions_rejected": 1, "sales_attributed_minor": 62_000,
        "commissions_reserved": 1, "commissions_rejected": 1, "commissions_reverted": 0,
        "commission_reserved_minor": 1_200, "commission_released_minor": 0,
    });
    let url = format!("{}/campaigns/{campaign}/stats", platform.marketing);
    let mut stats = serde_json::Value::Null;
    for _ in 0..100 {
        stats = platform.get(url.clone()).await.unwrap().1["stats"].clone();
        if stats == wanted {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(stats, wanted);

    // 6. The saga log tells the same story: one saga completed, two rejected.
    let completed = platform
        .saga_reaching(&saga, "COMPLETED", WAIT)
        .await
        .unwrap();
    let steps: Vec<&str> = completed["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "InteractionTracked",
            "ConversionAttributed",
            "CommissionReserved"
        ],
        "each step once, the redelivered purchase included: {completed}"
    );
    assert_eq!(completed["partner_id"], "partner-7");
    assert_eq!(completed["amount"]["amount_minor"], 12_000);
    for rejected in [&lone_saga, &big_saga] {
        platform
            .saga_reaching(rejected, "REJECTED", WAIT)
            .await
            .unwrap();
    }

    services.shutdown().await;
}
