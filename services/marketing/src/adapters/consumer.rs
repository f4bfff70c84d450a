//! What marketing consumes: every saga event, once, for two uses — the facts it counts for
//! campaign statistics (each event type says which campaign it is about and what it counts as,
//! if anything), and the step it is in the saga log.

use alpes_bus::{Delivery, Outcome};
use alpes_contracts::Event;
use alpes_contracts::events::attribution::{
    AttributionReverted, ConversionAttributed, ConversionRejected,
};
use alpes_contracts::events::commission::{
    CommissionConfirmed, CommissionRejected, CommissionReserved, CommissionReverted,
};
use alpes_contracts::events::marketing::{FraudDetected, SagaTimedOut};
use alpes_contracts::events::tracking::{InteractionTracked, InteractionsDiscarded};
use alpes_eventstore::EventStore;
use alpes_sagalog::{LogError, SagaEvent};

use crate::app::{AppError, Marketing};
use crate::domain::Observed;
use crate::sagas::Sagas;

/// The default subscription name every marketing replica shares.
pub const SUBSCRIPTION: &str = "marketing";

/// A saga event, as it counts in a campaign's statistics.
pub trait Observable: Event {
    /// The campaign it is about and the fact it adds, if it adds one.
    fn observed(&self) -> Option<(String, Observed)> {
        None
    }
}

/// Saga events that add nothing to a campaign's statistics.
impl Observable for CommissionConfirmed {}
impl Observable for FraudDetected {}
impl Observable for SagaTimedOut {}
impl Observable for AttributionReverted {}
impl Observable for InteractionsDiscarded {}

impl Observable for InteractionTracked {
    fn observed(&self) -> Option<(String, Observed)> {
        let campaign = self.tracking.campaign_id.clone()?;
        Some((campaign, Observed::Interaction { kind: self.kind }))
    }
}

impl Observable for ConversionAttributed {
    fn observed(&self) -> Option<(String, Observed)> {
        let fact = Observed::Conversion {
            amount_minor: self.amount.amount_minor,
        };
        Some((self.campaign_id.clone(), fact))
    }
}

impl Observable for ConversionRejected {
    fn observed(&self) -> Option<(String, Observed)> {
        Some((self.campaign_id.clone()?, Observed::ConversionRejected))
    }
}

impl Observable for CommissionReserved {
    fn observed(&self) -> Option<(String, Observed)> {
        let fact = Observed::CommissionReserved {
            amount_minor: self.commission.amount_minor,
        };
        Some((self.campaign_id.clone(), fact))
    }
}

impl Observable for CommissionRejected {
    fn observed(&self) -> Option<(String, Observed)> {
        Some((self.campaign_id.clone(), Observed::CommissionRejected))
    }
}

impl Observable for CommissionReverted {
    fn observed(&self) -> Option<(String, Observed)> {
        let released_minor = self.released.as_ref().map_or(0, |m| m.amount_minor);
        Some((
            self.campaign_id.clone()?,
            Observed::CommissionReverted { released_minor },
        ))
    }
}

/// Records one announced fact; a store outage is retried, a corrupt store dead-letters.
pub async fn on_observable<E: Observable, S: EventStore>(
    app: &Marketing<S>,
    delivery: &Delivery<E>,
) -> Outcome {
    match delivery.event.observed() {
        None => Outcome::Done,
        Some((campaign, fact)) => {
            match app
                .observe(&campaign, &delivery.event.metadata().event_id, &fact)
                .await
            {
                Ok(()) => Outcome::Done,
                Err(AppError::Store(e)) => Outcome::Retry(e.to_string()),
                Err(e) => Outcome::Reject(e.to_string()),
            }
        }
    }
}

/// Records a saga event in the saga log. The log being unreachable is retried (the step waits
/// on the retry topic); a step the log refuses for what it holds can never be recorded, so it
/// goes to the dead-letter topic at once, with Postgres's reason.
pub async fn on_saga_event<E: SagaEvent>(sagas: &Sagas, delivery: Delivery<E>) -> Outcome {
    outcome_of(sagas.observe(&delivery.event).await.map(drop))
}

/// What becomes of a saga event the log answered `written` for.
fn outcome_of(written: Result<(), LogError>) -> Outcome {
    match written {
        Ok(()) => Outcome::Done,
        Err(e) if e.is_permanent() => Outcome::Reject(format!("the saga log refuses it: {e}")),
        Err(e) => Outcome::Retry(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn database(error: sqlx::Error) -> LogError {
        LogError::Database(Arc::new(error))
    }

    #[test]
    fn a_refused_step_is_dead_lettered_at_once_and_an_outage_retried() {
        // Which database errors are permanent is the saga log's call (its tests cover the
        // SQLSTATE classes); here, that the consumer follows it.
        let refused = database(sqlx::Error::Decode("not a step".into()));
        assert!(refused.is_permanent());
        match outcome_of(Err(refused)) {
            Outcome::Reject(reason) => assert!(reason.contains("not a step"), "{reason}"),
            other => panic!("{other:?}"),
        }
        let outage = database(sqlx::Error::PoolTimedOut);
        assert!(matches!(outcome_of(Err(outage)), Outcome::Retry(_)));
        assert!(matches!(
            outcome_of(Err(LogError::Stopped)),
            Outcome::Retry(_)
        ));
        assert!(matches!(outcome_of(Ok(())), Outcome::Done));
    }
}
