//! A saga stuck because a service is down ends too: its deadline passes, marketing times it
//! out, and compensation runs once the service is back. This binary runs a platform of its
//! own (see `common`): it stops one of its services.

use std::time::Duration;

use common::{assert_undone, count};

mod common;

/// Sagas time out this long after they start: soon, so the stuck one does.
const DEADLINE: Duration = Duration::from_secs(10);
const WAIT: Duration = Duration::from_secs(45);

#[tokio::test]
async fn a_saga_stuck_while_commission_is_down_times_out_and_compensates_once_it_is_back() {
    let mut services = common::InProcess::start(DEADLINE).await;
    let platform = services.platform.clone();
    let campaign = platform.known_campaign(100_000, 1_000).await.unwrap();

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

    services.shutdown().await;
}
