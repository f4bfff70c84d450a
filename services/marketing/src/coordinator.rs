//! The saga coordinator: it observes every saga event into the log, times out the sagas that
//! stop moving, and takes fraud reports. It never commands the forward path: a timeout or a
//! fraud report is an event the other services react to, like any other.
//!
//! A timeout is published a little after its deadline, so it may race the saga's completion.
//! The outcome does not depend on who wins: the timeout carries its `deadline`, and a saga
//! whose commission was reserved by then stays COMPLETED (the log counts the timeout void, and
//! commission ignores it). A deadline counts from the saga's own time, with a grace period from
//! when the log first saw it (see `alpes_sagalog::derive_seen`).
//!
//! The one exception to "every event goes out through an outbox": fraud reports and timeouts
//! are published straight to Pulsar, because no aggregate changes with them. A fraud report is
//! answered only once the broker has it, so a crash before that is an error the reporter sends
//! again (the same report is the same event id). A timeout is noted in the log after the broker
//! has it; a replica that dies before the note leaves the saga claimed for `TIMEOUT_LEASE`,
//! after which a sweep publishes it again under the same event id (tested in
//! `tests/campaigns.rs`).

use std::time::Duration;

use alpes_bus::{BusError, Outgoing, Publisher, Receipt, Shutdown};
use alpes_contracts::codec::CodecError;
use alpes_contracts::events::marketing::{FraudDetected, SagaTimedOut};
use alpes_contracts::{EventMetadata, Timestamp};
use alpes_runtime::trace::TraceContext;
use alpes_sagalog::{Due, LogError, Observation, Recorder, SagaEvent, SagaLog, Step};

/// How many overdue sagas one sweep times out.
const SWEEP: i64 = 200;

/// How long a sweep holds the sagas it found due (see `SagaLog::due`): long enough to publish
/// their timeouts; if this replica dies first, another publishes them that much later.
const TIMEOUT_LEASE: Duration = Duration::from_secs(30);

/// Ids of `SagaTimedOut` events: the same for every replica and every retry of one saga, so a
/// timeout published twice is one step in the log.
const TIMEOUT_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x5a6a_7469_6d65_6f75_7400_616c_7065_7301);

/// Ids of `FraudDetected` events: one per report (saga, reporter, reason and score), so a report
/// sent again (a client retrying after a broken connection or a 503) is the same event, one
/// step in the log. Another report of the same saga is another step (compensation is once
/// anyway).
const FRAUD_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x5a6a_6672_6175_6400_0000_616c_7065_7302);

/// Why the coordinator could not do something.
#[derive(Debug, thiserror::Error)]
pub enum SagaError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("encoding an event: {0}")]
    Encode(#[from] CodecError),
}

/// A fraud report as users send it.
#[derive(Debug, Clone)]
pub struct FraudReport {
    pub saga_id: String,
    pub reason: String,
    pub reporter: String,
    pub score: Option<i32>,
}

/// The coordinator over the log and the bus.
#[derive(Clone)]
pub struct SagaCoordinator {
    log: SagaLog,
    recorder: Recorder,
    publisher: Publisher,
}

impl SagaCoordinator {
    /// The coordinator writing to `log` through `recorder` and publishing with `publisher`.
    pub fn new(log: SagaLog, recorder: Recorder, publisher: Publisher) -> Self {
        Self {
            log,
            recorder,
            publisher,
        }
    }

    /// The log, for queries.
    pub fn log(&self) -> &SagaLog {
        &self.log
    }

    /// Records `event`'s step, if it is one, and its count in its campaign's statistics, if
    /// it counts, in one transaction. Durable on return.
    pub async fn observe<E: SagaEvent>(&self, event: &E) -> Result<(), LogError> {
        let observation = Observation::of(event);
        if observation.is_empty() {
            return Ok(());
        }
        self.recorder.observe(observation).await
    }

    /// Publishes `FraudDetected` for the report; compensation follows from the services. The
    /// same report is the same event (same id), so sending it again is safe.
    pub async fn report_fraud(
        &self,
        report: FraudReport,
        trace: &TraceContext,
    ) -> Result<(FraudDetected, Receipt), SagaError> {
        let mut metadata = EventMetadata::new::<FraudDetected>()
            .in_saga(report.saga_id.clone())
            .produced_by("marketing");
        metadata.event_id = fraud_event_id(&report);
        metadata.traceparent = Some(trace.traceparent.clone());
        metadata.tracestate = trace.tracestate.clone();
        let fraud = FraudDetected {
            metadata,
            reason: report.reason,
            reporter: report.reporter,
            score: report.score,
        };
        let receipt = self.publisher.publish(&fraud).await?;
        Ok((fraud, receipt))
    }

    /// Publishes `SagaTimedOut` for every saga overdue at `now` (up to one sweep's worth) and
    /// notes each in the log once the broker has it. Returns how many were timed out.
    pub async fn time_out_overdue(&self, now: Timestamp) -> Result<usize, SagaError> {
        let due = self.log.due(now, SWEEP, TIMEOUT_LEASE).await?;
        let timeouts: Vec<SagaTimedOut> = due.iter().map(timed_out).collect();
        // The log hears of each timeout before any service can answer it, so it never holds an
        // answer (a revert) without its cause, not even for a moment. The copy it consumes
        // later is the same step (same event id). Best effort: if this fails, that copy is
        // how the log learns of the timeout, as before.
        let steps: Vec<Step> = timeouts.iter().filter_map(Step::of).collect();
        for (step, recorded) in steps.iter().zip(self.log.record_each(&steps).await) {
            if let Err(e) = recorded {
                tracing::warn!(saga_id = %step.saga_id, error = %e, "recording a timeout before publishing it failed");
            }
        }
        let mut pending = Vec::with_capacity(due.len());
        for timeout in &timeouts {
            pending.push(self.publisher.send(Outgoing::event(timeout)?).await?);
        }
        for (saga, receipt) in due.iter().zip(pending) {
            receipt.confirmed().await?;
            self.log.timeout_published(&saga.saga_id).await?;
            tracing::info!(saga_id = %saga.saga_id, status = %saga.status, "saga timed out");
        }
        Ok(due.len())
    }

    /// Sweeps for overdue sagas until `shutdown`, often enough that a timeout is published
    /// within a second (or a tenth of the deadline, if shorter) of its deadline.
    pub async fn run_deadlines(self, shutdown: Shutdown) {
        let every = (self.log.deadline_after() / 10)
            .clamp(Duration::from_millis(50), Duration::from_secs(1));
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            if let Err(e) = self.time_out_overdue(chrono::Utc::now()).await {
                tracing::warn!(error = %e, "timing out overdue sagas failed; trying again");
            }
        }
    }
}

/// The id of `report`'s `FraudDetected`, whichever replica publishes it, however often.
fn fraud_event_id(report: &FraudReport) -> String {
    // JSON keeps the fields apart whatever they contain.
    let name = serde_json::json!([report.saga_id, report.reporter, report.reason, report.score]);
    uuid::Uuid::new_v5(&FRAUD_NAMESPACE, name.to_string().as_bytes()).to_string()
}

/// The `SagaTimedOut` for `due`, with the id every replica gives it.
fn timed_out(due: &Due) -> SagaTimedOut {
    let mut metadata = EventMetadata::new::<SagaTimedOut>()
        .in_saga(due.saga_id.clone())
        .produced_by("marketing");
    metadata.event_id = uuid::Uuid::new_v5(&TIMEOUT_NAMESPACE, due.saga_id.as_bytes()).to_string();
    SagaTimedOut {
        metadata,
        deadline: due.deadline,
        last_status: due.status.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(saga_id: &str, reason: &str) -> FraudReport {
        FraudReport {
            saga_id: saga_id.into(),
            reason: reason.into(),
            reporter: "risk-team".into(),
            score: Some(90),
        }
    }

    #[test]
    fn a_report_sent_again_is_the_same_event_and_another_report_is_another() {
        let once = fraud_event_id(&report("saga-1", "chargeback"));
        assert_eq!(once, fraud_event_id(&report("saga-1", "chargeback")));
        assert_ne!(once, fraud_event_id(&report("saga-1", "chargeback again")));
        assert_ne!(once, fraud_event_id(&report("saga-2", "chargeback")));
        assert_ne!(
            fraud_event_id(&report("a\",\"b", "c")),
            fraud_event_id(&report("a", "b\",\"c")),
            "fields do not run into each other"
        );
    }
}
