//! The forward saga with the four services' real wiring started in-process (each on its own
//! port, database and subscriptions) against the local stack's Pulsar and FerretDB.
//!
//! One test function runs every scenario on one platform: each service instance consumes the
//! shared topics, so two platforms in one process would answer each other's sagas.

use std::future::Future;
use std::time::Duration;

use alpes_bus::{Bus, Shutdown};
use alpes_contracts::events::attribution::ConversionRejectionReason;
use alpes_contracts::events::attribution::{ConversionAttributed, ConversionRejected};
use alpes_contracts::events::commission::CommissionRejectionReason;
use alpes_contracts::events::commission::{CommissionRejected, CommissionReserved};
use alpes_contracts::events::tracking::InteractionTracked;
use alpes_e2e::{Platform, next_of_saga, watch};
use alpes_runtime::config::{CommonArgs, LogFormat, SubscribeFrom};
use tokio::net::TcpListener;

const WAIT: Duration = Duration::from_secs(30);

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn common(listener: &TcpListener) -> CommonArgs {
    CommonArgs {
        http_addr: listener.local_addr().unwrap(),
        pulsar_url: env("ALPES_PULSAR_URL", "pulsar://127.0.0.1:6650"),
        pulsar_admin_url: env("ALPES_PULSAR_ADMIN_URL", "http://127.0.0.1:8080"),
        mongo_url: env("ALPES_MONGO_URL", "mongodb://127.0.0.1:27017"),
        log_format: LogFormat::Text,
        subscribe_from: SubscribeFrom::Latest,
    }
}

/// Binds a port, starts `run` on it, returns its base URL once `/readyz` answers.
async fn start<F, Fut>(
    run: F,
    shutdown: &Shutdown,
    tasks: &mut Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
) -> String
where
    F: FnOnce(TcpListener, Shutdown) -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tasks.push(tokio::spawn(run(listener, shutdown.clone())));
    for _ in 0..200 {
        let ready = reqwest::get(format!("{base}/readyz")).await;
        if ready.is_ok_and(|r| r.status() == 200) {
            return base;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{base} never became ready: is the stack up? (scripts/stack.sh up)");
}

#[tokio::test]
async fn the_forward_saga_reserves_commissions_and_rejects_what_it_must() {
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let name = |service: &str| format!("e2e_{service}_{run_id}");
    let shutdown = Shutdown::new();
    let mut tasks = Vec::new();

    let tracking = start(
        |l, s| {
            let config = alpes_tracking::service::Config {
                common: common(&l),
                database: name("tracking"),
                subscription: name("tracking"),
            };
            alpes_tracking::service::run(config, l, s)
        },
        &shutdown,
        &mut tasks,
    )
    .await;
    let attribution = start(
        |l, s| {
            let config = alpes_attribution::service::Config {
                common: common(&l),
                database: name("attribution"),
                subscription: name("attribution"),
            };
            alpes_attribution::service::run(config, l, s)
        },
        &shutdown,
        &mut tasks,
    )
    .await;
    let commission = start(
        |l, s| {
            let config = alpes_commission::service::Config {
                common: common(&l),
                database: name("commission"),
                subscription: name("commission"),
            };
            alpes_commission::service::run(config, l, s)
        },
        &shutdown,
        &mut tasks,
    )
    .await;
    let marketing = start(
        |l, s| {
            let config = alpes_marketing::service::Config {
                common: common(&l),
                database: name("marketing"),
                subscription: name("marketing"),
            };
            alpes_marketing::service::run(config, l, s)
        },
        &shutdown,
        &mut tasks,
    )
    .await;
    let platform = Platform {
        tracking,
        attribution,
        commission,
        marketing,
        http: reqwest::Client::new(),
    };
    let bus = Bus::connect(
        &env("ALPES_PULSAR_URL", "pulsar://127.0.0.1:6650"),
        &env("ALPES_PULSAR_ADMIN_URL", "http://127.0.0.1:8080"),
        "e2e",
    )
    .await
    .unwrap();
    let mut tracked = watch::<InteractionTracked>(&bus).await.unwrap();
    let mut attributed = watch::<ConversionAttributed>(&bus).await.unwrap();
    let mut conversion_rejected = watch::<ConversionRejected>(&bus).await.unwrap();
    let mut reserved = watch::<CommissionReserved>(&bus).await.unwrap();
    let mut commission_rejected = watch::<CommissionRejected>(&bus).await.unwrap();

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
    let credited = next_of_saga(&mut attributed, &saga, WAIT).await.unwrap();
    assert_eq!(credited.credits.len(), 1);
    assert_eq!(credited.credits[0].partner_id, "partner-7");
    let commission = next_of_saga(&mut reserved, &saga, WAIT).await.unwrap();
    assert_eq!(commission.commission.amount_minor, 1_200);
    assert_eq!(commission.partner_id, "partner-7");
    assert_eq!(commission.budget_remaining.amount_minor, 4_800);

    // 2. The same InteractionTracked delivered twice reserves one commission, not two.
    let purchase_event = next_of_saga(&mut tracked, &saga, WAIT).await.unwrap();
    bus.publisher().publish(&purchase_event).await.unwrap();
    let again = next_of_saga(&mut reserved, &saga, Duration::from_secs(5)).await;
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
    let rejected = next_of_saga(&mut conversion_rejected, &lone_saga, WAIT)
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
    let refused = next_of_saga(&mut commission_rejected, &big_saga, WAIT)
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

    shutdown.cancel();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
}
