//! How fast the saga log records steps against the local stack's Postgres, with and without
//! group commit. Producers stand in for marketing's subscriptions: each hands in one step at a
//! time and waits until it is durable, as a consumer does before it acknowledges.
//!
//! ```text
//! cargo bench -p alpes-sagalog --bench record
//! ```

use std::time::{Duration, Instant};

use alpes_contracts::Money;
use alpes_sagalog::{Direction, Facts, Recorder, SagaLog, Step};

const SAGAS: usize = 2_000;
const STEPS: [&str; 5] = [
    "InteractionTracked",
    "ConversionAttributed",
    "CommissionReserved",
    "FraudDetected",
    "InteractionsDiscarded",
];
/// One per subscription of the marketing service's saga log.
const PRODUCERS: usize = 11;

fn steps(run: &str) -> Vec<Step> {
    let t0 = chrono::Utc::now();
    (0..SAGAS)
        .flat_map(|i| {
            let saga = format!("{run}-{i}");
            STEPS.iter().enumerate().map(move |(j, t)| Step {
                event_id: uuid::Uuid::new_v4().to_string(),
                saga_id: saga.clone(),
                event_type: (*t).to_owned(),
                service: "bench".to_owned(),
                direction: Direction::Forward,
                payload: serde_json::json!({ "i": i, "j": j }),
                occurred_at: t0 + chrono::Duration::milliseconds(j as i64),
                facts: Facts {
                    campaign_id: Some(run.to_owned()),
                    partner_id: Some("p".to_owned()),
                    amount: Some(Money::new(100, "EUR")),
                },
            })
        })
        .collect()
}

/// Records `steps` from `PRODUCERS` tasks, each through `record`; returns the elapsed time.
async fn drive<F, Fut>(steps: Vec<Step>, record: F) -> Duration
where
    F: Fn(Step) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let mut lanes: Vec<Vec<Step>> = vec![Vec::new(); PRODUCERS];
    for (i, step) in steps.into_iter().enumerate() {
        lanes[i % PRODUCERS].push(step);
    }
    let started = Instant::now();
    let tasks: Vec<_> = lanes
        .into_iter()
        .map(|lane| {
            let record = record.clone();
            tokio::spawn(async move {
                for step in lane {
                    record(step).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    started.elapsed()
}

fn report(what: &str, elapsed: Duration) {
    let steps = (SAGAS * STEPS.len()) as f64;
    println!(
        "{what}: {} steps of {SAGAS} sagas in {elapsed:.2?}: {:.0} steps/s, {:.0} sagas/s",
        SAGAS * STEPS.len(),
        steps / elapsed.as_secs_f64(),
        SAGAS as f64 / elapsed.as_secs_f64()
    );
}

#[tokio::main]
async fn main() {
    let url = std::env::var("ALPES_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://alpes@127.0.0.1:5433/alpes".into());
    let url = alpes_sagalog::ensure_database(&url, "alpes_sagalog_bench")
        .await
        .expect("Postgres of the local stack (scripts/stack.sh up)");
    let log = SagaLog::connect(&url, Duration::from_secs(30))
        .await
        .unwrap();
    let run = uuid::Uuid::new_v4().simple().to_string();

    let one_by_one = log.clone();
    let elapsed = drive(steps(&format!("{run}-single")), move |step| {
        let log = one_by_one.clone();
        async move {
            log.record(&[step]).await.unwrap();
        }
    })
    .await;
    report("one transaction per step ", elapsed);

    let (recorder, writer) = Recorder::spawn(log.clone());
    let grouped = recorder.clone();
    let elapsed = drive(steps(&format!("{run}-grouped")), move |step| {
        let recorder = grouped.clone();
        async move {
            recorder.record(step).await.unwrap();
        }
    })
    .await;
    report("group commit (Recorder)   ", elapsed);
    drop(recorder);
    writer.await.unwrap();
}
