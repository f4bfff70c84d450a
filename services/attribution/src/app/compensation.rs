//! `CommissionReverted` → revert the saga's journey and queue `AttributionReverted`.
//!
//! Order does not matter: the compensation may arrive before the purchase it compensates (the
//! purchase is on another topic, or was retried). So the compensation is first recorded in the
//! saga's index (`saga-{id}`), then:
//!
//! - if the saga's purchase already converted a journey, that journey is reverted now;
//! - if not, nothing more happens now and the message is done: when the purchase arrives, it
//!   converts its journey as usual (its `ConversionAttributed` or `ConversionRejected` is
//!   published, so every service learns what the sale was and commission can refuse it as
//!   compensated), and the same commit reverts the journey and queues `AttributionReverted`,
//!   caused by the recorded compensation.
//!
//! Either way the journey's `Reverted` event is decided once (the journey ignores a second
//! revert) and its announcement lives in the same commit, so `AttributionReverted` is
//! published exactly once per saga however often, and in whatever order, compensations and
//! purchases arrive. Only the first compensation of a saga is recorded; later ones (new event
//! ids, e.g. fraud and a timeout both compensating) change nothing.

use alpes_contracts::events::commission::CommissionReverted;
use alpes_eventstore::EventStore;

use super::index::{Compensation, SagaEvent};
use super::journeys::announcements;
use super::{AppError, Attribution, retrying};
use crate::domain::{Aggregate, JourneyCommand};

/// What a compensation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compensated {
    /// The saga's journey was reverted now.
    Reverted {
        /// The reverted journey.
        journey_id: String,
    },
    /// The saga's journey had already been reverted.
    AlreadyReverted {
        /// The reverted journey.
        journey_id: String,
    },
    /// The saga's purchase has not been seen yet; it will be reverted when it arrives.
    AwaitingPurchase,
}

impl<S: EventStore> Attribution<S> {
    /// Compensates the saga of `reverted`: records the compensation and reverts the saga's
    /// journey if its purchase is known.
    pub async fn compensate(&self, reverted: &CommissionReverted) -> Result<Compensated, AppError> {
        let saga_id = reverted
            .metadata
            .saga_id
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| AppError::Malformed("CommissionReverted names no saga".into()))?;
        let saga = retrying(|| async {
            let (stream, mut saga) = self.load_saga(saga_id).await?;
            if saga.compensation.is_some() {
                return Ok(saga);
            }
            let event = SagaEvent::CompensationRequested {
                reason: reverted.reason.clone(),
                cause: reverted.metadata.clone(),
            };
            self.append_saga(&stream, &event, &reverted.metadata.event_id)
                .await?;
            saga.apply(event);
            Ok(saga)
        })
        .await?;
        let (Some(journey_id), Some(compensation)) = (saga.journey_id, &saga.compensation) else {
            return Ok(Compensated::AwaitingPurchase);
        };
        Ok(if self.revert_journey(&journey_id, compensation).await? {
            Compensated::Reverted { journey_id }
        } else {
            Compensated::AlreadyReverted { journey_id }
        })
    }

    /// Reverts converted journey `journey_id` for `compensation`, queueing its
    /// `AttributionReverted`; false when it was already reverted.
    pub(super) async fn revert_journey(
        &self,
        journey_id: &str,
        compensation: &Compensation,
    ) -> Result<bool, AppError> {
        retrying(|| async {
            let journey = self.load_journey(journey_id).await?;
            let events = journey.state.decide(JourneyCommand::Revert {
                reason: compensation.reason.clone(),
            })?;
            if events.is_empty() {
                return Ok(false);
            }
            let outbox = announcements(&events, journey_id, &compensation.cause)?;
            self.append_journey(&journey, &events, outbox, &compensation.cause.event_id)
                .await?;
            Ok(true)
        })
        .await
    }
}
