//! A step Postgres refuses is isolated: the steps batched with it are recorded, and its error
//! is permanent (the consumer dead-letters it at once instead of retrying). Against the local
//! stack's Postgres (`scripts/stack.sh up`).

mod common;

use std::time::Duration;

use alpes_contracts::Money;
use alpes_sagalog::{Direction, Facts, Recorder, SagaLog, Step};
use chrono::Utc;

async fn log() -> SagaLog {
    common::log_with(Duration::from_secs(30)).await
}

/// The `InteractionTracked` step of a new saga of its own.
fn step() -> Step {
    Step {
        event_id: uuid::Uuid::new_v4().to_string(),
        saga_id: format!("isolation-{}", uuid::Uuid::now_v7()),
        event_type: "InteractionTracked".to_owned(),
        service: "tracking".to_owned(),
        direction: Direction::Forward,
        payload: serde_json::json!({ "kind": "PURCHASE" }),
        occurred_at: Utc::now(),
        facts: Facts {
            campaign_id: Some("campaign-1".to_owned()),
            partner_id: Some("partner-1".to_owned()),
            amount: Some(Money::new(10_000, "EUR")),
        },
    }
}

/// A step whose payload holds a NUL: `jsonb` refuses it (22P05).
fn nul_in_payload() -> Step {
    Step {
        payload: serde_json::json!({ "visitor": { "anonymous_id": "a\u{0}b" } }),
        ..step()
    }
}

/// A step whose campaign is too large for a btree index row (54000); hex, so that Postgres
/// cannot compress it under the limit.
fn oversize_campaign() -> Step {
    let campaign: String = (0..100)
        .map(|_| uuid::Uuid::new_v4().simple().to_string())
        .collect();
    let mut step = step();
    step.facts.campaign_id = Some(campaign);
    step
}

async fn recorded(log: &SagaLog, step: &Step) -> bool {
    log.saga(&step.saga_id).await.unwrap().is_some()
}

#[tokio::test]
async fn a_refused_step_fails_alone_and_the_rest_of_its_batch_is_recorded() {
    let log = log().await;
    let steps = vec![
        step(),
        nul_in_payload(),
        step(),
        step(),
        oversize_campaign(),
        step(),
    ];
    let results = log.record_each(&steps).await;
    for (i, (step, result)) in steps.iter().zip(&results).enumerate() {
        match i {
            1 | 4 => {
                let error = result.as_ref().expect_err("a refused step fails");
                assert!(error.is_permanent(), "step {i}: {error}");
                assert!(!recorded(&log, step).await, "step {i} is not in the log");
            }
            _ => {
                assert!(result.is_ok(), "step {i}: {result:?}");
                assert!(recorded(&log, step).await, "step {i} is in the log");
            }
        }
    }
    // Recording the batch again changes nothing for the good ones and refuses the bad ones.
    let again = log.record_each(&steps).await;
    assert_eq!(again.iter().filter(|r| r.is_err()).count(), 2);
}

#[tokio::test]
async fn concurrent_writers_of_good_steps_are_not_failed_by_a_refused_one() {
    let log = log().await;
    let (recorder, _writer) = Recorder::spawn(log.clone());
    let bad = nul_in_payload();
    let good: Vec<Step> = (0..40).map(|_| step()).collect();
    let mut writers = tokio::task::JoinSet::new();
    for step in good.iter().cloned().chain([bad.clone()]) {
        let recorder = recorder.clone();
        let id = step.event_id.clone();
        writers.spawn(async move { (id, recorder.record(step).await) });
    }
    while let Some(written) = writers.join_next().await {
        let (id, result) = written.unwrap();
        if id == bad.event_id {
            assert!(result.unwrap_err().is_permanent());
        } else {
            assert!(result.is_ok(), "{id}: {result:?}");
        }
    }
    for step in &good {
        assert!(recorded(&log, step).await);
    }
}

#[tokio::test]
async fn an_unreachable_database_is_not_a_permanent_error() {
    let error = SagaLog::connect("postgres://alpes@127.0.0.1:1/alpes", Duration::from_secs(1))
        .await
        .err()
        .expect("nothing listens on port 1");
    assert!(!error.is_permanent(), "{error}");
}
