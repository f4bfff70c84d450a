//! Marketing restarting in the middle of a saga and of its compensation: every step is logged,
//! once. This binary runs a platform of its own (see `common`): it stops one of its services.

use std::time::Duration;

use alpes_e2e::timeline;
use common::{COMPENSATED_TIMELINE, publish_fraud};

mod common;

/// Long enough that the saga does not time out while marketing is down.
const DEADLINE: Duration = Duration::from_secs(60);
const WAIT: Duration = Duration::from_secs(45);

#[tokio::test]
async fn marketing_restarting_mid_saga_and_mid_compensation_logs_every_step_once() {
    let mut services = common::InProcess::start(DEADLINE).await;
    let platform = services.platform.clone();
    let campaign = platform.known_campaign(100_000, 1_000).await.unwrap();

    let (restarted, _) = platform.sale(&campaign, 15_000).await.unwrap();
    services.stop("marketing").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    publish_fraud(&services.bus, &restarted).await;
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

    services.shutdown().await;
}
