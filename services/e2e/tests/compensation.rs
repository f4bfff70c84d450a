//! Fraud compensation, deadlines and the saga log, with the four services' real wiring
//! in-process against the local stack. Each scenario checks the outcome the way a user would:
//! through the saga log's endpoint and each service's own API.
//!
//! One test function runs every scenario on one platform (see `common`).

use std::time::Duration;

use alpes_contracts::EventMetadata;
use alpes_contracts::events::marketing::FraudDetected;
use alpes_e2e::{PlatformClient, timeline};
use serde_json::Value;

mod common;

/// Sagas time out this long after they start; long enough for the forward path under load.
const DEADLINE: Duration = Duration::from_secs(10);
const WAIT: Duration = Duration::from_secs(45);

const COMPENSATED_TIMELINE: [&str; 7] = [
    "InteractionTracked",
    "ConversionAttributed",
    "CommissionReserved",
    "FraudDetected",
    "CommissionReverted",
    "AttributionReverted",
    "InteractionsDiscarded",
];

fn count(saga: &Value, event_type: &str) -> usize {
    timeline(saga).iter().filter(|t| *t == event_type).count()
}

/// Checks through each service's own API that nothing of `saga` is live any more.
async fn assert_undone(platform: &PlatformClient, saga: &str, purchase: &str) {
    let commission = platform.commission_status(saga).await.unwrap();
    assert!(
        !matches!(commission.as_deref(), Some("RESERVED") | Some("CONFIRMED")),
        "saga {saga} still holds a commission: {commission:?}"
    );
    let (_, attribution) = platform
        .get(format!("{}/attributions/{saga}", platform.attribution))
        .await
        .unwrap();
    assert_eq!(attribution["reverted"], true, "{attribution}");
    let journey = attribution["journey_id"].as_str().unwrap();
    let (_, journey) = platform
        .get(format!("{}/journeys/{journey}", platform.attribution))
        .await
        .unwrap();
    assert_eq!(journey["status"], "REVERTED", "{journey}");
    for interaction in journey["interaction_ids"].as_array().unwrap() {
        let id = interaction.as_str().unwrap();
        let (_, tracked) = platform
            .get(format!("{}/interactions/{id}", platform.tracking))
            .await
            .unwrap();
        assert_eq!(tracked["status"], "DISCARDED", "{tracked}");
    }
    let (_, tracked) = platform
        .get(format!("{}/interactions/{purchase}", platform.tracking))
        .await
        .unwrap();
    assert_eq!(
        tracked["status"], "DISCARDED",
        "the purchase itself: {tracked}"
    );
}

async fn publish_fraud(services: &common::InProcess, saga: &str) {
    let fraud = FraudDetected {
        metadata: EventMetadata::new::<FraudDetected>()
            .in_saga(saga)
            .produced_by("e2e"),
        reason: "chargeback".into(),
        reporter: "e2e".into(),
        score: Some(90),
    };
    services.bus.publisher().publish(&fraud).await.unwrap();
}

#[tokio::test]
async fn fraud_and_deadlines_compensate_every_saga_in_reverse_order() {
    let mut services = common::InProcess::start(DEADLINE).await;
    let platform = services.platform.clone();
    // 10 % of each sale, min 5.00, max 50.00, from a 1,000.00 EUR budget.
    let campaign = platform.active_campaign(100_000, 1_000).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;

    // 1. Fraud after completion: undone in reverse order, budget released.
    let (saga, purchase) = platform.sale(&campaign, 12_000).await.unwrap();
    platform
        .saga_reaching(&saga, "COMPLETED", WAIT)
        .await
        .unwrap();
    assert_eq!(platform.reserved_minor(&campaign).await.unwrap(), 1_200);
    let report = platform.report_fraud(&saga, "chargeback").await.unwrap();
    assert_eq!(report["saga_id"], saga.as_str());
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

    // 2. Fraud reported twice: the second report is logged, nothing is undone twice; the
    //    first one sent again (a client retrying) is the same event, not another step.
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

    // 3. Fraud racing the forward path: published right after the purchase.
    let (raced, raced_purchase) = platform.sale(&campaign, 20_000).await.unwrap();
    publish_fraud(&services, &raced).await;
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

    // 4. Fraud for a saga that ended REJECTED: what exists is compensated.
    let stranger = format!("stranger-{}", uuid::Uuid::new_v4().simple());
    let lone = platform
        .track("PURCHASE", &stranger, &campaign, None, Some(5_000))
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

    // 5. Fraud for a saga nobody knows: an orphan report, visible, and nothing stuck.
    let unknown = format!("no-such-saga-{}", uuid::Uuid::new_v4().simple());
    platform.report_fraud(&unknown, "typo").await.unwrap();
    let orphan = platform
        .saga_reaching(&unknown, "ORPHANED", WAIT)
        .await
        .unwrap();
    assert_eq!(orphan["orphan"], true);
    assert_eq!(orphan["deadline"], Value::Null, "an orphan never times out");

    // 6. A stuck saga: commission is down, the deadline passes, compensation runs once
    //    commission is back.
    services.stop("commission").await;
    let (stuck, stuck_purchase) = platform.sale(&campaign, 30_000).await.unwrap();
    platform
        .saga_reaching(&stuck, "ATTRIBUTED", WAIT)
        .await
        .unwrap();
    let timed_out = platform
        .saga_reaching(&stuck, "TIMED_OUT", DEADLINE + WAIT)
        .await
        .unwrap();
    assert_eq!(count(&timed_out, "SagaTimedOut"), 1, "{timed_out}");
    services.restart("commission").await;
    let recovered = platform
        .saga_reaching(&stuck, "COMPENSATED", WAIT)
        .await
        .unwrap();
    assert_eq!(
        count(&recovered, "SagaTimedOut"),
        1,
        "timed out once: {recovered}"
    );
    assert_undone(&platform, &stuck, &stuck_purchase).await;
    assert_eq!(platform.reserved_minor(&campaign).await.unwrap(), 0);

    // 7. Marketing restarts in the middle of a saga and of its compensation: every step is
    //    logged, once.
    let (restarted, _) = platform.sale(&campaign, 15_000).await.unwrap();
    services.stop("marketing").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    publish_fraud(&services, &restarted).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    services.restart("marketing").await;
    let after_restart = platform
        .saga_reaching(&restarted, "COMPENSATED", WAIT)
        .await
        .unwrap();
    let mut seen = timeline(&after_restart);
    seen.sort();
    let mut wanted: Vec<String> = COMPENSATED_TIMELINE.iter().map(|s| s.to_string()).collect();
    wanted.sort();
    // The fraud may beat the reservation: then commission rejects the late attribution.
    seen.retain(|t| t != "CommissionRejected");
    wanted.retain(|t| t != "CommissionReserved" || seen.contains(&t.to_string()));
    assert_eq!(seen, wanted, "{after_restart}");

    // 8. The endpoint: the token, parameters, lists, statistics, the page, the description.
    let marketing = &platform.marketing;
    let http = &platform.http;
    let unauthorized = http
        .get(format!("{marketing}/sagas/{saga}"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), 401);
    let body: Value = unauthorized.json().await.unwrap();
    assert_eq!(body["code"], "unauthorized");
    let wrong = http
        .get(format!("{marketing}/sagas/{saga}"))
        .bearer_auth("not-the-token")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let in_query = http
        .get(format!(
            "{marketing}/sagas/{saga}?access_token={}",
            common::TOKEN
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        in_query.status(),
        401,
        "JSON endpoints take no token in the query"
    );
    let bad = http
        .get(format!("{marketing}/sagas?status=FINISHED"))
        .bearer_auth(common::TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.unwrap();
    assert_eq!(body["field"], "status", "{body}");

    let list: Value = http
        .get(format!(
            "{marketing}/sagas?campaign={campaign}&status=COMPENSATED&limit=2"
        ))
        .bearer_auth(common::TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["sagas"].as_array().unwrap().len(), 2, "{list}");
    let next = list["next_cursor"].as_str().expect("more than one page");
    let rest: Value = http
        .get(format!(
            "{marketing}/sagas?campaign={campaign}&status=COMPENSATED&limit=500&cursor={next}"
        ))
        .bearer_auth(common::TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let compensated_sagas = 2 + rest["sagas"].as_array().unwrap().len();
    assert_eq!(
        compensated_sagas, 5,
        "1, 3, 4, 6 and 7 are compensated: {rest}"
    );

    let stats: Value = http
        .get(format!("{marketing}/sagas/stats?campaign={campaign}"))
        .bearer_auth(common::TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["by_status"]["COMPENSATED"], 5, "{stats}");
    assert_eq!(stats["duration_ms"]["count"], 5, "{stats}");
    assert!(stats["duration_ms"]["p50"].as_i64().unwrap() > 0, "{stats}");

    let page = http
        .get(format!(
            "{marketing}/sagas/{saga}/view?access_token={}",
            common::TOKEN
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
    assert!(html.contains(&saga) && html.contains("InteractionsDiscarded"));

    let openapi: Value = http
        .get(format!("{marketing}/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(openapi["paths"]["/sagas/{id}"].is_object(), "{openapi}");

    services.shutdown().await;
}
