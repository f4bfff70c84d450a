//! Compensation: `AttributionReverted` → discard the journey's interactions.

use alpes_bus::{Delivery, Outcome};
use alpes_contracts::events::attribution::AttributionReverted;
use alpes_eventstore::EventStore;

use crate::app::{AppError, Tracking};

/// The default subscription name every tracking replica shares.
pub const SUBSCRIPTION: &str = "tracking";

/// Handles one `AttributionReverted`: a store outage is retried, anything else that fails can
/// never succeed and is dead-lettered.
pub async fn on_attribution_reverted<S: EventStore>(
    app: &Tracking<S>,
    delivery: Delivery<AttributionReverted>,
) -> Outcome {
    match app.discard_journey(&delivery.event).await {
        Ok(discarded) => {
            tracing::info!(
                journey = %delivery.event.journey_id,
                saga = ?delivery.event.metadata.saga_id,
                discarded,
                "journey's interactions discarded"
            );
            Outcome::Done
        }
        Err(AppError::Store(e)) => Outcome::Retry(e.to_string()),
        Err(e) => Outcome::Reject(e.to_string()),
    }
}
