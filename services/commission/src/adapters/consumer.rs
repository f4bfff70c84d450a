//! The bus edge: one subscription per consumed event type, each handled by its use case.
//!
//! - Campaign lifecycle (`CampaignCreated`, `CampaignActivated`, `CampaignPaused`,
//!   `CampaignCompleted`) → the campaign's budget.
//! - `ConversionAttributed` → the saga's commission, reserved or rejected.
//! - `FraudDetected`, `SagaTimedOut` → the saga's commission reverted (compensation).
//!
//! Outcomes: a store outage or writers that kept colliding is retried; a sale of a campaign
//! not known here yet is retried too (its events may still be on their way) and, on the last
//! attempt, rejected `CAMPAIGN_UNKNOWN` (a business refusal is an event, never a dead letter);
//! anything else can never succeed because the message itself is invalid (bad terms, no
//! credited partner, a negative amount, no saga id) or stored data is unreadable, and is
//! dead-lettered at once with its reason.

use alpes_bus::{Failure, Handler};
use alpes_contracts::events::attribution::ConversionAttributed;
use alpes_contracts::events::marketing::{
    CampaignActivated, CampaignCompleted, CampaignCreated, CampaignPaused, FraudDetected,
    SagaTimedOut,
};
use alpes_eventstore::EventStore;

use crate::app::{AppError, Attempt, Commissions, Compensated};

/// The default subscription name every commission replica shares.
pub const SUBSCRIPTION: &str = "commission";

impl Failure for AppError {
    fn is_retryable(&self) -> bool {
        match self {
            AppError::Store(e) => e.is_retryable(),
            AppError::CampaignUnknown(_) => true,
            AppError::Invalid(_) | AppError::NoSaga(_) | AppError::UnknownCommission(_) => false,
        }
    }
}

/// A campaign's lifecycle: its budget follows.
macro_rules! lifecycle {
    ($($fact:ty => $use_case:ident, $what:literal;)*) => {$(
        impl<S: EventStore> Handler<$fact> for Commissions<S> {
            type Error = AppError;

            async fn handle(&self, event: &$fact, _: Attempt) -> Result<(), AppError> {
                let changed = self.$use_case(event).await?;
                tracing::info!(campaign = %event.campaign_id, changed, $what);
                Ok(())
            }
        }
    )*};
}

lifecycle! {
    CampaignCreated => open_budget, "campaign created";
    CampaignActivated => activate_campaign, "campaign activated";
    CampaignPaused => pause_campaign, "campaign paused";
    CampaignCompleted => complete_campaign, "campaign completed";
}

impl<S: EventStore> Handler<ConversionAttributed> for Commissions<S> {
    type Error = AppError;

    async fn handle(&self, event: &ConversionAttributed, attempt: Attempt) -> Result<(), AppError> {
        let status = self.reserve(event, attempt).await?;
        tracing::debug!(
            saga = ?event.metadata.saga_id,
            campaign = %event.campaign_id,
            ?status,
            "conversion handled"
        );
        Ok(())
    }
}

impl<S: EventStore> Handler<FraudDetected> for Commissions<S> {
    type Error = AppError;

    async fn handle(&self, event: &FraudDetected, _: Attempt) -> Result<(), AppError> {
        let compensated = self.revert_for_fraud(event).await?;
        log_compensation(event.metadata.saga_id.as_deref(), &compensated, "fraud");
        Ok(())
    }
}

impl<S: EventStore> Handler<SagaTimedOut> for Commissions<S> {
    type Error = AppError;

    async fn handle(&self, event: &SagaTimedOut, _: Attempt) -> Result<(), AppError> {
        let compensated = self.revert_for_timeout(event).await?;
        log_compensation(event.metadata.saga_id.as_deref(), &compensated, "timeout");
        Ok(())
    }
}

fn log_compensation(saga: Option<&str>, compensated: &Compensated, cause: &str) {
    match compensated {
        Compensated::Reverted { released } => {
            tracing::info!(?saga, ?released, cause, "commission reverted");
        }
        Compensated::AlreadyReverted => {
            tracing::info!(?saga, cause, "commission already reverted");
        }
        Compensated::TimeoutVoid => {
            tracing::info!(
                ?saga,
                cause,
                "commission reserved by the deadline: timeout void"
            );
        }
    }
}
