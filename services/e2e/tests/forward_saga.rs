//! The forward saga with the four services' real wiring started in-process (each on its own
//! port, database and subscriptions) against the local stack's Pulsar and FerretDB.
//!
//! One test per scenario, all on the platform this binary shares (see `common`): each has a
//! campaign and visitors of its own, so none depends on which ran before it.

use std::time::Duration;

use alpes_contracts::events::attribution::ConversionRejectionReason;
use alpes_contracts::events::attribution::{ConversionAttributed, ConversionRejected};
use alpes_contracts::events::commission::CommissionRejectionReason;
use alpes_contracts::events::commission::{CommissionRejected, CommissionReserved};
use alpes_contracts::events::tracking::InteractionTracked;
use alpes_e2e::{PlatformClient, timeline};
use alpes_testkit::{Observer, bus, unique};

mod common;

const WAIT: Duration = Duration::from_secs(30);

/// The shared platform, and a campaign of the test's own paying 10 % of each sale (at least
/// 5.00, at most 50.00) from a 60.00 EUR budget.
async fn platform_and_campaign() -> (PlatformClient, String) {
    let platform = common::shared(Duration::from_secs(60));
    let campaign = platform.known_campaign(6_000, 1_000).await.unwrap();
    (platform, campaign)
}

/// Views and a click of `partner`, then the same visitor's purchase of `amount_minor`: the
/// saga id.
async fn partner_sale(
    platform: &PlatformClient,
    campaign: &str,
    partner: &str,
    amount_minor: i64,
) -> String {
    let visitor = unique("visitor");
    for kind in ["VIEW", "CLICK"] {
        platform
            .track(kind, &visitor, campaign, Some(partner), None)
            .await
            .unwrap();
    }
    let purchase = platform
        .track(
            "PURCHASE",
            &visitor,
            campaign,
            Some(partner),
            Some(amount_minor),
        )
        .await
        .unwrap();
    purchase["saga_id"].as_str().unwrap().to_owned()
}

/// A purchase by a visitor who never came through a partner: the saga id.
async fn lone_purchase(platform: &PlatformClient, campaign: &str, amount_minor: i64) -> String {
    let stranger = unique("stranger");
    let lone = platform
        .track("PURCHASE", &stranger, campaign, None, Some(amount_minor))
        .await
        .unwrap();
    lone["saga_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_partner_sale_reserves_its_commission_once_however_often_its_purchase_arrives() {
    let bus = bus("e2e-forward").await;
    let mut tracked = Observer::<InteractionTracked>::listen(&bus).await;
    let mut attributed = Observer::<ConversionAttributed>::listen(&bus).await;
    let mut reserved = Observer::<CommissionReserved>::listen(&bus).await;
    let (platform, campaign) = platform_and_campaign().await;

    // Views and a click from a partner, then a purchase of 120.00 → 12.00 reserved.
    let saga = partner_sale(&platform, &campaign, "partner-7", 12_000).await;
    let credited = attributed.next_of_saga_within(&saga, WAIT).await.unwrap();
    assert_eq!(credited.credits.len(), 1);
    assert_eq!(credited.credits[0].partner_id, "partner-7");
    let commission = reserved.next_of_saga_within(&saga, WAIT).await.unwrap();
    assert_eq!(commission.commission.amount_minor, 1_200);
    assert_eq!(commission.partner_id, "partner-7");
    assert_eq!(commission.budget_remaining.amount_minor, 4_800);

    // The same InteractionTracked delivered again reserves nothing more.
    let purchase_event = tracked.next_of_saga_within(&saga, WAIT).await.unwrap();
    bus.publisher().publish(&purchase_event).await.unwrap();
    let again = reserved
        .next_of_saga_within(&saga, Duration::from_secs(5))
        .await;
    assert!(
        again.is_err(),
        "a duplicate purchase reserved again: {again:?}"
    );
    assert_eq!(platform.reserved_minor(&campaign).await.unwrap(), 1_200);

    // The saga log tells the same story: each step once, the redelivered purchase included.
    let completed = platform
        .saga_reaching(&saga, "COMPLETED", WAIT)
        .await
        .unwrap();
    assert_eq!(
        timeline(&completed),
        [
            "InteractionTracked",
            "ConversionAttributed",
            "CommissionReserved"
        ],
        "{completed}"
    );
    assert_eq!(completed["partner_id"], "partner-7");
    assert_eq!(completed["amount"]["amount_minor"], 12_000);
}

#[tokio::test]
async fn a_purchase_no_partner_brought_is_not_attributed() {
    let bus = bus("e2e-forward").await;
    let mut rejected = Observer::<ConversionRejected>::listen(&bus).await;
    let (platform, campaign) = platform_and_campaign().await;

    let saga = lone_purchase(&platform, &campaign, 5_000).await;
    let refused = rejected.next_of_saga_within(&saga, WAIT).await.unwrap();
    assert_eq!(
        refused.reason,
        ConversionRejectionReason::NoEligibleTouchpoint
    );
    platform
        .saga_reaching(&saga, "REJECTED", WAIT)
        .await
        .unwrap();
    assert_eq!(platform.reserved_minor(&campaign).await.unwrap(), 0);
}

#[tokio::test]
async fn a_commission_the_budget_cannot_cover_is_rejected_and_the_budget_left_alone() {
    let bus = bus("e2e-forward").await;
    let mut rejected = Observer::<CommissionRejected>::listen(&bus).await;
    let (platform, campaign) = platform_and_campaign().await;

    // 12.00 of the 60.00 reserved first; then a 500.00 sale earns 50.00, and 48.00 are left.
    let first = partner_sale(&platform, &campaign, "partner-7", 12_000).await;
    platform
        .saga_reaching(&first, "COMPLETED", WAIT)
        .await
        .unwrap();
    let big = partner_sale(&platform, &campaign, "partner-8", 50_000).await;
    let refused = rejected.next_of_saga_within(&big, WAIT).await.unwrap();
    assert_eq!(refused.reason, CommissionRejectionReason::BudgetExhausted);
    platform
        .saga_reaching(&big, "REJECTED", WAIT)
        .await
        .unwrap();
    assert_eq!(
        platform.reserved_minor(&campaign).await.unwrap(),
        1_200,
        "the budget is untouched"
    );
}

#[tokio::test]
async fn the_campaign_statistics_count_what_the_services_announced() {
    let (platform, campaign) = platform_and_campaign().await;

    // One reserved sale, one purchase no partner brought, one sale beyond the budget.
    let reserved = partner_sale(&platform, &campaign, "partner-7", 12_000).await;
    platform
        .saga_reaching(&reserved, "COMPLETED", WAIT)
        .await
        .unwrap();
    let lone = lone_purchase(&platform, &campaign, 5_000).await;
    let big = partner_sale(&platform, &campaign, "partner-8", 50_000).await;
    for saga in [&lone, &big] {
        platform
            .saga_reaching(saga, "REJECTED", WAIT)
            .await
            .unwrap();
    }

    let wanted = serde_json::json!({
        "views": 2, "clicks": 2, "purchases": 3,
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
}
