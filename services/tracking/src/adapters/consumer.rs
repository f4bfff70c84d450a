//! Compensation: `AttributionReverted` → discard the journey's interactions.
//!
//! A store outage is retried; anything else that fails can never succeed and is dead-lettered.

use alpes_bus::{Attempt, Failure, Handler};
use alpes_contracts::events::attribution::AttributionReverted;
use alpes_eventstore::EventStore;

use crate::app::{AppError, Tracking};

/// The default subscription name every tracking replica shares.
pub const SUBSCRIPTION: &str = "tracking";

impl<S: EventStore> Handler<AttributionReverted> for Tracking<S> {
    type Error = AppError;

    async fn handle(&self, event: &AttributionReverted, _: Attempt) -> Result<(), AppError> {
        let discarded = self.discard_journey(event).await?;
        tracing::info!(
            journey = %event.journey_id,
            saga = ?event.metadata.saga_id,
            discarded,
            "journey's interactions discarded"
        );
        Ok(())
    }
}

impl Failure for AppError {
    fn is_retryable(&self) -> bool {
        match self {
            AppError::Store(e) => e.is_retryable(),
            AppError::Invalid(_) | AppError::Corrupt(_) | AppError::KeyReused(_) => false,
        }
    }
}
