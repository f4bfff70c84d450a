//! Fraud compensation and the saga log, with the four services' real wiring in-process against
//! the local stack. Each scenario checks the outcome the way a user would: through the saga
//! log's endpoint and each service's own API.
//!
//! One test per scenario, all on the platform this binary shares (see `common`), each with a
//! campaign and sagas of its own. Compensation while a service is down or restarting has
//! binaries of its own (`deadline.rs`, `restart.rs`): they stop services.

use std::time::Duration;

use alpes_e2e::{PlatformClient, timeline};
use alpes_testkit::{bus, unique};
use common::{COMPENSATED_TIMELINE, assert_undone, count, publish_fraud};
use serde_json::Value;

mod common;

/// Long enough that no saga of these tests times out while its forward path runs.
const DEADLINE: Duration = Duration::from_secs(60);
const WAIT: Duration = Duration::from_secs(45);

/// The shared platform, and a campaign of the test's own paying 10 % of each sale (min 5.00,
/// max 50.00) from a 1,000.00 EUR budget.
async fn platform_and_campaign() -> (PlatformClient, String) {
    common::shared_with_campaign(DEADLINE).await
}

/// A sale that completed, then was reported as fraud and compensated: saga and purchase ids,
/// and the report's answer.
async fn compensated_sale(platform: &PlatformClient, campaign: &str) -> (String, String, Value) {
    let (saga, purchase) = platform.sale(campaign, 12_000).await.unwrap();
    platform
        .saga_reaching(&saga, "COMPLETED", WAIT)
        .await
        .unwrap();
    let report = platform.report_fraud(&saga, "chargeback").await.unwrap();
    assert_eq!(report["saga_id"], saga.as_str());
    platform
        .saga_reaching(&saga, "COMPENSATED", WAIT)
        .await
        .unwrap();
    (saga, purchase, report)
}

#[tokio::test]
async fn fraud_after_completion_is_undone_in_reverse_order_and_the_budget_released() {
    let (platform, campaign) = platform_and_campaign().await;
    let (saga, purchase) = platform.sale(&campaign, 12_000).await.unwrap();
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
    assert_eq!(
        timeline(&compensated),
        COMPENSATED_TIMELINE,
        "{compensated}"
    );
    let directions: Vec<&str> = compensated["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["direction"].as_str().unwrap())
        .collect();
    assert_eq!(
        directions,
        [
            "forward",
            "forward",
            "terminal",
            "compensation",
            "compensation",
            "compensation",
            "compensation"
        ]
    );
    assert_eq!(
        platform.commission_status(&saga).await.unwrap().as_deref(),
        Some("REVERTED")
    );
    assert_eq!(
        platform.reserved_minor(&campaign).await.unwrap(),
        0,
        "budget released"
    );
    assert_undone(&platform, &saga, &purchase).await;
}

#[tokio::test]
async fn fraud_reported_twice_undoes_nothing_twice_and_a_report_sent_again_is_one_step() {
    let (platform, campaign) = platform_and_campaign().await;
    let (saga, _, report) = compensated_sale(&platform, &campaign).await;

    let again = platform.report_fraud(&saga, "chargeback").await.unwrap();
    assert_eq!(again["event_id"], report["event_id"], "{again}");
    platform
        .report_fraud(&saga, "chargeback again")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, twice) = platform.saga(&saga).await.unwrap();
    assert_eq!(twice["status"], "COMPENSATED");
    assert_eq!(count(&twice, "FraudDetected"), 2, "{twice}");
    for once in [
        "CommissionReverted",
        "AttributionReverted",
        "InteractionsDiscarded",
    ] {
        assert_eq!(count(&twice, once), 1, "{once} twice: {twice}");
    }
    assert_eq!(platform.reserved_minor(&campaign).await.unwrap(), 0);
}

#[tokio::test]
async fn fraud_racing_the_forward_path_compensates_what_exists() {
    let bus = bus("e2e-compensation").await;
    let (platform, campaign) = platform_and_campaign().await;
    let (raced, raced_purchase) = platform.sale(&campaign, 20_000).await.unwrap();
    publish_fraud(&bus, &raced).await;
    let raced_log = platform
        .saga_reaching(&raced, "COMPENSATED", WAIT)
        .await
        .unwrap();
    assert_eq!(count(&raced_log, "InteractionsDiscarded"), 1, "{raced_log}");
    assert_undone(&platform, &raced, &raced_purchase).await;
    assert_eq!(
        platform.reserved_minor(&campaign).await.unwrap(),
        0,
        "no live commission"
    );
}

#[tokio::test]
async fn fraud_for_a_rejected_saga_compensates_what_exists() {
    let (platform, campaign) = platform_and_campaign().await;
    let lone = platform
        .track(
            "PURCHASE",
            &unique("stranger"),
            &campaign,
            None,
            Some(5_000),
        )
        .await
        .unwrap();
    let lone_saga = lone["saga_id"].as_str().unwrap().to_owned();
    platform
        .saga_reaching(&lone_saga, "REJECTED", WAIT)
        .await
        .unwrap();
    platform.report_fraud(&lone_saga, "bot").await.unwrap();
    platform
        .saga_reaching(&lone_saga, "COMPENSATED", WAIT)
        .await
        .unwrap();
}

#[tokio::test]
async fn fraud_for_a_saga_nobody_knows_is_a_visible_orphan_that_never_times_out() {
    let platform = common::shared(DEADLINE);
    let unknown = unique("no-such-saga");
    platform.report_fraud(&unknown, "typo").await.unwrap();
    let orphan = platform
        .saga_reaching(&unknown, "ORPHANED", WAIT)
        .await
        .unwrap();
    assert_eq!(orphan["orphan"], true);
    assert_eq!(orphan["deadline"], Value::Null, "an orphan never times out");
}

#[tokio::test]
async fn the_saga_log_endpoint_lists_counts_and_shows_the_compensated_sagas() {
    let (platform, campaign) = platform_and_campaign().await;
    let mut sagas = Vec::new();
    for _ in 0..3 {
        sagas.push(compensated_sale(&platform, &campaign).await.0);
    }
    let saga = &sagas[0];
    let marketing = &platform.marketing;
    let http = &platform.http;
    let token = common::TOKEN;

    // Who may read it (no token, a wrong one, one in the query of a JSON endpoint) is
    // marketing's own test (`every_endpoint_but_the_probes_needs_a_token_with_its_scope`).
    let bad = http
        .get(format!("{marketing}/sagas?status=FINISHED"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.unwrap();
    assert_eq!(body["field"], "status", "{body}");

    let get = |url: String| async move {
        http.get(url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    let list = get(format!(
        "{marketing}/sagas?campaign={campaign}&status=COMPENSATED&limit=2"
    ))
    .await;
    assert_eq!(list["sagas"].as_array().unwrap().len(), 2, "{list}");
    let next = list["next_cursor"].as_str().expect("more than one page");
    let rest = get(format!(
        "{marketing}/sagas?campaign={campaign}&status=COMPENSATED&limit=500&cursor={next}"
    ))
    .await;
    assert_eq!(rest["sagas"].as_array().unwrap().len(), 1, "{rest}");
    assert!(rest["next_cursor"].is_null(), "{rest}");

    let stats = get(format!("{marketing}/sagas/stats?campaign={campaign}")).await;
    assert_eq!(stats["by_status"]["COMPENSATED"], 3, "{stats}");
    assert_eq!(stats["duration_ms"]["count"], 3, "{stats}");
    assert!(stats["duration_ms"]["p50"].as_i64().unwrap() > 0, "{stats}");

    let page = http
        .get(format!(
            "{marketing}/sagas/{saga}/view?access_token={token}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let header = |name: &str| page.headers()[name].to_str().unwrap().to_owned();
    assert!(header("content-security-policy").contains("frame-ancestors 'none'"));
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert_eq!(header("referrer-policy"), "no-referrer");
    let html = page.text().await.unwrap();
    assert!(html.contains(saga.as_str()) && html.contains("InteractionsDiscarded"));

    let openapi: Value = http
        .get(format!("{marketing}/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(openapi["paths"]["/sagas/{id}"].is_object(), "{openapi}");
}
