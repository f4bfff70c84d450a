//! The saga log against the local stack's Postgres (`scripts/stack.sh up`).

mod common;

use std::time::Duration;

use alpes_contracts::{Money, Timestamp};
use alpes_sagalog::{Cursor, Direction, Facts, ListQuery, Recorder, Status, Step};
use chrono::Utc;
use common::log_with;

const DEADLINE: Duration = Duration::from_secs(30);

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7())
}

/// A step of `saga`, `ms` after `t0`, stating `campaign` and a sale of 100.00 EUR.
fn step(saga: &str, event_type: &str, t0: Timestamp, ms: i64, campaign: &str) -> Step {
    let direction = match event_type {
        "CommissionReserved" | "ConversionRejected" | "CommissionRejected" => Direction::Terminal,
        "FraudDetected"
        | "SagaTimedOut"
        | "CommissionReverted"
        | "AttributionReverted"
        | "InteractionsDiscarded" => Direction::Compensation,
        _ => Direction::Forward,
    };
    Step {
        event_id: uuid::Uuid::new_v4().to_string(),
        saga_id: saga.to_owned(),
        event_type: event_type.to_owned(),
        service: "test".to_owned(),
        direction,
        payload: serde_json::json!({ "kind": event_type }),
        occurred_at: t0 + chrono::Duration::milliseconds(ms),
        facts: Facts {
            campaign_id: Some(campaign.to_owned()),
            partner_id: Some("partner-1".to_owned()),
            amount: Some(Money::new(10_000, "EUR")),
        },
    }
}

const COMPENSATED: [&str; 7] = [
    "InteractionTracked",
    "ConversionAttributed",
    "CommissionReserved",
    "FraudDetected",
    "CommissionReverted",
    "AttributionReverted",
    "InteractionsDiscarded",
];

fn saga_steps(saga: &str, types: &[&str], campaign: &str) -> Vec<Step> {
    let t0 = Utc::now();
    types
        .iter()
        .enumerate()
        .map(|(i, t)| step(saga, t, t0, 100 * i as i64, campaign))
        .collect()
}

#[tokio::test]
async fn steps_recorded_out_of_order_and_twice_give_the_saga_of_the_in_order_run() {
    let log = log_with(DEADLINE).await;
    let saga = unique("saga");
    let steps = saga_steps(&saga, &COMPENSATED, "c-order");

    // Compensation first, then the forward path, each delivered twice, in three batches.
    let mut delivered: Vec<Step> = steps.iter().rev().cloned().collect();
    delivered.extend(steps.iter().cloned());
    let mut new = 0;
    for batch in delivered.chunks(5) {
        new += log.record(batch).await.unwrap();
    }
    assert_eq!(new, steps.len(), "each step is new exactly once");

    let recorded = log.saga(&saga).await.unwrap().expect("the saga is logged");
    assert_eq!(recorded.summary.status, Status::Compensated);
    let types: Vec<&str> = recorded
        .steps
        .iter()
        .map(|s| s.event_type.as_str())
        .collect();
    assert_eq!(
        types, COMPENSATED,
        "one row per step, in the order they happened"
    );
    assert_eq!(recorded.summary.duration_ms, Some(600));
    assert_eq!(recorded.summary.deadline, None);
    assert_eq!(recorded.summary.amount, Some(Money::new(10_000, "EUR")));
    assert_eq!(recorded.steps[3].direction, Direction::Compensation);
    assert_eq!(recorded.steps[3].payload["kind"], "FraudDetected");
}

#[tokio::test]
async fn two_replicas_recording_one_saga_at_once_agree_on_its_status() {
    let (a, b) = (log_with(DEADLINE).await, log_with(DEADLINE).await);
    for _ in 0..10 {
        let saga = unique("race");
        let steps = saga_steps(&saga, &COMPENSATED, "c-race");
        let (odd, even): (Vec<_>, Vec<_>) = steps
            .iter()
            .cloned()
            .enumerate()
            .partition(|(i, _)| i % 2 == 1);
        let odd: Vec<Step> = odd.into_iter().map(|(_, s)| s).collect();
        let even: Vec<Step> = even.into_iter().map(|(_, s)| s).collect();
        let (x, y) = tokio::join!(a.record(&odd), b.record(&even));
        assert_eq!(x.unwrap() + y.unwrap(), steps.len());
        let saga = a.saga(&saga).await.unwrap().unwrap();
        assert_eq!(saga.summary.status, Status::Compensated);
        assert_eq!(saga.steps.len(), steps.len());
    }
}

#[tokio::test]
async fn listing_filters_and_pages_newest_first() {
    let log = log_with(DEADLINE).await;
    let campaign = unique("campaign");
    let mut ids = Vec::new();
    let t0 = Utc::now();
    for i in 0..7 {
        let saga = unique("list");
        let types: &[&str] = if i % 2 == 0 {
            &[
                "InteractionTracked",
                "ConversionAttributed",
                "CommissionReserved",
            ]
        } else {
            &["InteractionTracked", "ConversionRejected"]
        };
        let steps: Vec<Step> = types
            .iter()
            .enumerate()
            .map(|(j, t)| step(&saga, t, t0, 1000 * i + 10 * j as i64, &campaign))
            .collect();
        log.record(&steps).await.unwrap();
        ids.push(saga);
    }
    let query = ListQuery {
        campaign_id: Some(campaign.clone()),
        limit: 3,
        ..ListQuery::default()
    };
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = log
            .list(&ListQuery {
                cursor: cursor.as_deref().map(|c| Cursor::decode(c).unwrap()),
                ..query.clone()
            })
            .await
            .unwrap();
        assert!(page.sagas.len() <= 3);
        seen.extend(page.sagas.into_iter().map(|s| s.saga_id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first);

    let rejected = log
        .list(&ListQuery {
            statuses: vec![Status::Rejected],
            ..query.clone()
        })
        .await
        .unwrap();
    assert_eq!(rejected.sagas.len(), 3);
    assert!(rejected.sagas.iter().all(|s| s.status == Status::Rejected));

    let window = log
        .list(&ListQuery {
            since: Some(t0 + chrono::Duration::milliseconds(2000)),
            until: Some(t0 + chrono::Duration::milliseconds(4000)),
            limit: 100,
            ..query
        })
        .await
        .unwrap();
    let in_window: Vec<String> = window.sagas.into_iter().map(|s| s.saga_id).collect();
    assert_eq!(in_window, vec![ids[3].clone(), ids[2].clone()]);
}

#[tokio::test]
async fn stats_count_by_status_and_measure_time_to_a_final_status() {
    let log = log_with(DEADLINE).await;
    let campaign = unique("stats");
    let t0 = Utc::now();
    // Completed after 100, 200, ..., 1000 ms; one still attributed.
    for i in 1..=10 {
        let saga = unique("s");
        log.record(&[
            step(&saga, "InteractionTracked", t0, 0, &campaign),
            step(&saga, "CommissionReserved", t0, 100 * i, &campaign),
        ])
        .await
        .unwrap();
    }
    let open = unique("s");
    log.record(&[step(&open, "ConversionAttributed", t0, 0, &campaign)])
        .await
        .unwrap();

    let stats = log.stats(Some(&campaign)).await.unwrap();
    assert_eq!(stats.overall.total, 11);
    assert_eq!(stats.overall.by_status[&Status::Completed], 10);
    assert_eq!(stats.overall.by_status[&Status::Attributed], 1);
    let d = &stats.overall.duration_ms;
    assert_eq!(
        (d.count, d.p50, d.p95, d.p99),
        (10, Some(500), Some(1000), Some(1000))
    );
    assert_eq!(stats.campaigns.len(), 1);
    assert_eq!(stats.campaigns[0].campaign_id, campaign);
    assert_eq!(stats.campaigns[0].tally, stats.overall);
}

#[tokio::test]
async fn an_open_saga_falls_due_at_its_deadline_once_and_a_final_one_never() {
    let log = log_with(Duration::from_millis(200)).await;
    let campaign = unique("due");
    let (open, done) = (unique("open"), unique("done"));
    let t0 = Utc::now();
    log.record(&[step(&open, "InteractionTracked", t0, 0, &campaign)])
        .await
        .unwrap();
    log.record(&[
        step(&done, "InteractionTracked", t0, 0, &campaign),
        step(&done, "CommissionReserved", t0, 50, &campaign),
    ])
    .await
    .unwrap();
    let due_ids = |due: Vec<alpes_sagalog::Due>| -> Vec<String> {
        due.into_iter()
            .map(|d| d.saga_id)
            .filter(|id| *id == open || *id == done)
            .collect()
    };

    let before = log
        .due(
            t0 + chrono::Duration::milliseconds(100),
            10_000,
            Duration::ZERO,
        )
        .await
        .unwrap();
    assert!(
        due_ids(before).is_empty(),
        "nothing is due before the deadline"
    );
    let after = log
        .due(
            t0 + chrono::Duration::milliseconds(300),
            10_000,
            Duration::ZERO,
        )
        .await
        .unwrap();
    assert_eq!(due_ids(after), vec![open.clone()]);

    log.timeout_published(&open).await.unwrap();
    let later = log
        .due(t0 + chrono::Duration::seconds(10), 10_000, Duration::ZERO)
        .await
        .unwrap();
    assert!(due_ids(later).is_empty(), "a timeout is published once");

    // The timeout's own step makes it TIMED_OUT; compensation completing makes it final.
    log.record(&[step(&open, "SagaTimedOut", t0, 300, &campaign)])
        .await
        .unwrap();
    assert_eq!(
        log.saga(&open).await.unwrap().unwrap().summary.status,
        Status::TimedOut
    );
    log.record(&[step(&open, "InteractionsDiscarded", t0, 400, &campaign)])
        .await
        .unwrap();
    let closed = log.saga(&open).await.unwrap().unwrap().summary;
    assert_eq!(
        (closed.status, closed.deadline),
        (Status::Compensated, None)
    );
}

/// Two replicas' deadline sweepers: each overdue saga goes to one of them, and one that dies
/// holding sagas gives them up when its lease lapses.
#[tokio::test]
async fn replicas_claim_each_overdue_saga_once_and_a_lapsed_claim_goes_to_another() {
    // A database of its own: a lease here holds every overdue saga of the database.
    let (first, second) = (
        common::log_in("alpes_sagalog_claims_test", Duration::from_millis(1)).await,
        common::log_in("alpes_sagalog_claims_test", Duration::from_millis(1)).await,
    );
    let campaign = unique("claims");
    let sagas: Vec<String> = (0..20).map(|_| unique("claimed")).collect();
    let t0 = Utc::now();
    for saga in &sagas {
        first
            .record(&[step(saga, "InteractionTracked", t0, 0, &campaign)])
            .await
            .unwrap();
    }
    let ours = |due: Vec<alpes_sagalog::Due>, of: &[String]| -> Vec<String> {
        due.into_iter()
            .map(|d| d.saga_id)
            .filter(|id| of.contains(id))
            .collect()
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let now = Utc::now();
    let lease = Duration::from_secs(30);
    let (a, b) = tokio::join!(
        first.due(now, 10_000, lease),
        second.due(now, 10_000, lease)
    );
    let (a, b) = (ours(a.unwrap(), &sagas), ours(b.unwrap(), &sagas));
    let mut both: Vec<String> = a.iter().chain(&b).cloned().collect();
    both.sort();
    let mut all = sagas.clone();
    all.sort();
    assert_eq!(
        both, all,
        "each overdue saga to exactly one sweeper: {a:?} / {b:?}"
    );
    assert!(
        ours(first.due(now, 10_000, lease).await.unwrap(), &sagas).is_empty(),
        "claimed sagas are not handed out again while their lease runs"
    );

    // A sweeper claims a saga and dies before publishing: the claim lapses.
    let orphan = unique("orphaned");
    first
        .record(&[step(&orphan, "InteractionTracked", t0, 0, &campaign)])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let one = std::slice::from_ref(&orphan);
    let now = Utc::now();
    let short = Duration::from_millis(300);
    assert_eq!(ours(first.due(now, 10_000, short).await.unwrap(), one), one);
    assert!(ours(second.due(now, 10_000, short).await.unwrap(), one).is_empty());
    tokio::time::sleep(short + Duration::from_millis(200)).await;
    assert_eq!(
        ours(second.due(now, 10_000, short).await.unwrap(), one),
        one,
        "the lapsed claim goes to the other sweeper"
    );
    second.timeout_published(&orphan).await.unwrap();
    tokio::time::sleep(short + Duration::from_millis(200)).await;
    assert!(
        ours(
            first.due(Utc::now(), 10_000, Duration::ZERO).await.unwrap(),
            one
        )
        .is_empty(),
        "a published timeout is never due again"
    );
}

#[tokio::test]
async fn the_recorder_writes_concurrent_steps_and_loses_none() {
    let log = log_with(DEADLINE).await;
    let (recorder, writer) = Recorder::spawn(log.clone());
    let campaign = unique("recorder");
    let sagas: Vec<String> = (0..100).map(|_| unique("r")).collect();
    let steps: Vec<Step> = sagas
        .iter()
        .flat_map(|s| saga_steps(s, &COMPENSATED[..3], &campaign))
        .collect();
    let handles: Vec<_> = steps
        .iter()
        .cloned()
        .map(|step| {
            let recorder = recorder.clone();
            tokio::spawn(async move { recorder.record(step).await })
        })
        .collect();
    for handle in handles {
        handle.await.unwrap().unwrap();
    }
    // Recording again is harmless.
    recorder.record(steps[0].clone()).await.unwrap();
    drop(recorder);
    writer.await.unwrap();

    let stats = log.stats(Some(&campaign)).await.unwrap();
    assert_eq!(stats.overall.total, 100);
    assert_eq!(stats.overall.by_status[&Status::Completed], 100);
}
