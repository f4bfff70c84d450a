//! `CommissionReverted` → revert the saga's journey and queue `AttributionReverted`.
//!
//! Order does not matter: the compensation may arrive before the purchase it compensates (the
//! purchase is on another topic, or was retried). So the compensation is first recorded in the
//! saga's index (`saga-{id}`), then:
//!
//! - if the saga's purchase already converted a journey, that journey is reverted now;
//! - if not, there is nothing to undo here now, and the hop still answers: the commit that
//!   records the compensation queues an `AttributionReverted` naming no journey and no
//!   interaction, so the saga's compensation goes on to tracking and ends even if the purchase
//!   never comes (dead-lettered as invalid, or never published). If the purchase does arrive
//!   later, it converts its journey as usual (its `ConversionAttributed` or `ConversionRejected`
//!   is published, so every service learns what the sale was and commission can refuse it as
//!   compensated), and the same commit reverts the journey and queues a second
//!   `AttributionReverted`, naming the journey's interactions, caused by the recorded
//!   compensation: tracking discards them then.
//!
//! Either way the journey's `Reverted` event is decided once (the journey ignores a second
//! revert) and its announcement lives in the same commit, so `AttributionReverted` is
//! published at most once per journey (and the empty answer at most once per saga) however
//! often, and in whatever order, compensations and purchases arrive. Only the first compensation of a saga is recorded; later ones (new event
//! ids, e.g. fraud and a timeout both compensating) change nothing.

use alpes_contracts::EventMetadata;
use alpes_contracts::events::attribution::AttributionReverted;
use alpes_contracts::events::commission::CommissionReverted;
use alpes_eventstore::EventStore;

use super::index::{Compensation, SagaLinkEvent};
use super::journeys::announcements;
use super::{AppError, Attribution, outgoing, retrying};
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
    /// The saga's purchase has not been seen: nothing to undo, answered with an empty
    /// `AttributionReverted`; its journey will be reverted if it arrives.
    NothingToUndo,
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
            let event = SagaLinkEvent::CompensationRequested {
                reason: reverted.reason.clone(),
                cause: reverted.metadata.clone(),
            };
            let answer = match saga.journey_id {
                Some(_) => Vec::new(),
                None => vec![outgoing(&nothing_reverted(reverted))?],
            };
            self.append_saga(&stream, &event, answer, &reverted.metadata.event_id)
                .await?;
            saga.apply(event);
            Ok(saga)
        })
        .await?;
        let (Some(journey_id), Some(compensation)) = (saga.journey_id, &saga.compensation) else {
            return Ok(Compensated::NothingToUndo);
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
        let revert = || JourneyCommand::Revert {
            reason: compensation.reason.clone(),
        };
        retrying(|| async {
            let mut journey = self.load_journey(journey_id).await?;
            let mut decided = journey.state.decide(revert());
            if !decided.as_ref().is_ok_and(|events| !events.is_empty()) {
                // "Nothing to undo" (or a refusal) is decided without an append, which is what
                // would reveal a copy lacking the conversion another replica just wrote: ask
                // the database before answering it.
                journey = self.load_journey_latest(journey_id).await?;
                decided = journey.state.decide(revert());
            }
            let events = decided?;
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

/// The answer to a compensation of a saga whose purchase attribution has not seen: no journey
/// (an empty `journey_id`) and no interaction reverted.
fn nothing_reverted(reverted: &CommissionReverted) -> AttributionReverted {
    AttributionReverted {
        metadata: EventMetadata::caused_by::<AttributionReverted>(&reverted.metadata),
        journey_id: String::new(),
        interaction_ids: Vec::new(),
        reason: reverted.reason.clone(),
    }
}
