//! The bus consumers: each consumed event type goes to its use case.
//!
//! - campaign facts (`CampaignCreated`, `…Activated`, `…Paused`, `…Completed`) → mirrored
//!   campaign settings;
//! - `InteractionTracked` → the visitor's journey (a purchase converts it);
//! - `CommissionReverted` → the saga's journey is reverted.
//!
//! A store outage or a write that kept conflicting is retried later, and so is a purchase with
//! no touchpoint to credit or no active campaign before its last attempt (the click or the
//! campaign's facts may be late); anything else can never succeed (invalid command, malformed
//! message, unreadable stream) and is dead-lettered with its reason.

use alpes_bus::{Attempt, Failure, Handler};
use alpes_contracts::events::commission::CommissionReverted;
use alpes_contracts::events::marketing::{
    CampaignActivated, CampaignCompleted, CampaignCreated, CampaignPaused,
};
use alpes_contracts::events::tracking::InteractionTracked;
use alpes_eventstore::EventStore;

use crate::app::{AppError, Attribution};
use crate::domain::CampaignCommand;

/// The default subscription name every attribution replica shares.
pub const SUBSCRIPTION: &str = "attribution";

impl<S: EventStore> Handler<InteractionTracked> for Attribution<S> {
    type Error = AppError;

    async fn handle(&self, event: &InteractionTracked, attempt: Attempt) -> Result<(), AppError> {
        let tracked = self.track(event, attempt).await?;
        tracing::debug!(interaction = %event.interaction_id, ?tracked, "interaction handled");
        Ok(())
    }
}

impl<S: EventStore> Handler<CommissionReverted> for Attribution<S> {
    type Error = AppError;

    async fn handle(&self, event: &CommissionReverted, _: Attempt) -> Result<(), AppError> {
        let compensated = self.compensate(event).await?;
        tracing::info!(saga = ?event.metadata.saga_id, ?compensated, "commission reverted");
        Ok(())
    }
}

/// Campaign facts: mirrored as the campaign's settings.
macro_rules! campaign_fact {
    ($($fact:ty),*) => {$(
        impl<S: EventStore> Handler<$fact> for Attribution<S> {
            type Error = AppError;

            async fn handle(&self, event: &$fact, _: Attempt) -> Result<(), AppError> {
                let command = CampaignCommand::from(event);
                let changed = self
                    .record_campaign_fact(&event.campaign_id, &event.metadata, command)
                    .await?;
                tracing::debug!(campaign = %event.campaign_id, changed, "campaign fact handled");
                Ok(())
            }
        }
    )*};
}

campaign_fact!(
    CampaignCreated,
    CampaignActivated,
    CampaignPaused,
    CampaignCompleted
);

impl Failure for AppError {
    fn is_retryable(&self) -> bool {
        match self {
            AppError::Store(e) => e.is_retryable(),
            AppError::NotYet(_) => true,
            AppError::Invalid(_) | AppError::Corrupt(_) | AppError::Malformed(_) => false,
        }
    }
}
