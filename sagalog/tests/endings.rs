//! How sagas end in the log against the local stack's Postgres (`scripts/stack.sh up`): a
//! deadline counts from the saga's own time with a grace period from when the log first saw it,
//! and a timeout that came after the reservation is void.

mod common;

use std::time::Duration;

use alpes_contracts::events::marketing::SagaTimedOut;
use alpes_contracts::{EventMetadata, Money, Timestamp};
use alpes_sagalog::{Direction, Facts, SagaLog, Status, Step};
use chrono::{SubsecRound, Utc};

const DEADLINE: Duration = Duration::from_secs(30);

async fn log() -> SagaLog {
    common::log_with(DEADLINE).await
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7())
}

/// A step of `saga` that happened at `at`.
fn step(saga: &str, event_type: &str, at: Timestamp) -> Step {
    Step {
        event_id: uuid::Uuid::new_v4().to_string(),
        saga_id: saga.to_owned(),
        event_type: event_type.to_owned(),
        service: "test".to_owned(),
        direction: Direction::Forward,
        payload: serde_json::json!({ "kind": event_type }),
        occurred_at: at,
        facts: Facts {
            campaign_id: Some("c-endings".to_owned()),
            partner_id: Some("partner-1".to_owned()),
            amount: Some(Money::new(10_000, "EUR")),
        },
    }
}

fn due_ids(due: Vec<alpes_sagalog::Due>, saga: &str) -> Vec<String> {
    due.into_iter()
        .map(|d| d.saga_id)
        .filter(|id| id == saga)
        .collect()
}

#[tokio::test]
async fn a_purchase_that_reaches_the_log_late_gets_a_whole_deadline_from_when_it_arrived() {
    let log = log().await;
    let saga = unique("late");
    // It happened 2 minutes ago; the relay only now catches up.
    let happened = Utc::now().trunc_subsecs(6) - chrono::Duration::minutes(2);
    log.record(&[step(&saga, "InteractionTracked", happened)])
        .await
        .unwrap();
    let arrived = Utc::now();

    let summary = log.saga(&saga).await.unwrap().unwrap().summary;
    assert_eq!(summary.status, Status::Started);
    assert_eq!(summary.started_at, happened, "its own time is kept");
    let deadline = summary.deadline.expect("an open saga has a deadline");
    let grace = chrono::Duration::from_std(DEADLINE).unwrap();
    assert!(
        deadline >= arrived - chrono::Duration::seconds(1) + grace,
        "deadline {deadline} is not a whole deadline after {arrived}"
    );
    assert!(
        due_ids(
            log.due(arrived, 10_000, Duration::ZERO).await.unwrap(),
            &saga
        )
        .is_empty()
    );
    // Its later steps do not move the grace period.
    log.record(&[step(&saga, "ConversionAttributed", happened)])
        .await
        .unwrap();
    let summary = log.saga(&saga).await.unwrap().unwrap().summary;
    assert_eq!(summary.deadline, Some(deadline));
    // It does time out once that deadline passes.
    assert_eq!(
        due_ids(
            log.due(deadline, 10_000, Duration::ZERO).await.unwrap(),
            &saga
        ),
        vec![saga.clone()]
    );
}

#[tokio::test]
async fn a_saga_already_completed_when_first_seen_never_times_out() {
    let log = log().await;
    let saga = unique("late-done");
    let happened = Utc::now().trunc_subsecs(6) - chrono::Duration::minutes(2);
    log.record(&[
        step(&saga, "InteractionTracked", happened),
        step(&saga, "ConversionAttributed", happened),
        step(&saga, "CommissionReserved", happened),
    ])
    .await
    .unwrap();
    let summary = log.saga(&saga).await.unwrap().unwrap().summary;
    assert_eq!(
        (summary.status, summary.deadline),
        (Status::Completed, None)
    );
    let much_later = Utc::now() + chrono::Duration::hours(1);
    assert!(
        due_ids(
            log.due(much_later, 10_000, Duration::ZERO).await.unwrap(),
            &saga
        )
        .is_empty()
    );
}

/// The deadline sweeper and the reservation race; whichever the log records first, the saga
/// ends by the times: COMPLETED when the reservation came by the deadline, compensated when it
/// came after.
#[tokio::test]
async fn a_timeout_racing_the_reservation_is_decided_by_the_deadline_not_by_arrival() {
    let log = log().await;
    let t0 = Utc::now().trunc_subsecs(6);
    let reserved_at = t0 + chrono::Duration::milliseconds(500);
    for (deadline_ms, timeout_first, expected) in [
        (500, true, Status::Completed),
        (500, false, Status::Completed),
        (900, true, Status::Completed),
        (499, true, Status::TimedOut),
        (499, false, Status::TimedOut),
    ] {
        let saga = unique("race");
        let mut timeout = SagaTimedOut {
            metadata: EventMetadata::new::<SagaTimedOut>().in_saga(saga.clone()),
            deadline: t0 + chrono::Duration::milliseconds(deadline_ms),
            last_status: "ATTRIBUTED".to_owned(),
        };
        // Announced later than its deadline, as a sweeper or a hand does.
        timeout.metadata.occurred_at = t0 + chrono::Duration::seconds(5);
        let timeout = Step::of(&timeout).expect("a timeout is a step");
        let reserved = step(&saga, "CommissionReserved", reserved_at);
        log.record(&[
            step(&saga, "InteractionTracked", t0),
            step(&saga, "ConversionAttributed", t0),
        ])
        .await
        .unwrap();
        let order = if timeout_first {
            [timeout, reserved]
        } else {
            [reserved, timeout]
        };
        for one in order {
            log.record(&[one]).await.unwrap();
        }
        let saga = log.saga(&saga).await.unwrap().unwrap();
        assert_eq!(
            saga.summary.status, expected,
            "deadline at {deadline_ms} ms, reservation at 500 ms, timeout first: {timeout_first}"
        );
        let timed_out = saga
            .steps
            .iter()
            .find(|s| s.event_type == "SagaTimedOut")
            .unwrap();
        assert_eq!(
            timed_out.occurred_at,
            t0 + chrono::Duration::milliseconds(deadline_ms),
            "a timeout happened at its deadline"
        );
    }
}
