//! The bus edge: one subscription per consumed event type, each feeding its use case, and what
//! becomes of each message.
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

use std::future::Future;

use alpes_bus::{Delivery, Outcome};
use alpes_contracts::Event;
use alpes_contracts::events::attribution::ConversionAttributed;
use alpes_contracts::events::marketing::{
    CampaignActivated, CampaignCompleted, CampaignCreated, CampaignPaused, FraudDetected,
    SagaTimedOut,
};
use alpes_eventstore::{EventStore, StoreError};

use crate::app::{AppError, Attempt, Commissions, Compensated};

/// The default subscription name every commission replica shares.
pub const SUBSCRIPTION: &str = "commission";

/// An event this service consumes, and the use case it feeds.
pub trait Consumed: Event {
    /// Runs the use case for this event; `Ok` once its effect is durable. `attempt` says
    /// whether a retry may follow.
    fn feed<S: EventStore>(
        &self,
        app: &Commissions<S>,
        attempt: Attempt,
    ) -> impl Future<Output = Result<(), AppError>> + Send;
}

/// Handles one delivery of `E`: feeds it to the app, then says what becomes of the message.
pub async fn on_delivery<E: Consumed, S: EventStore>(
    app: &Commissions<S>,
    delivery: Delivery<E>,
) -> Outcome {
    let attempt = delivery.kind_of_attempt();
    match delivery.event.feed(app, attempt).await {
        Ok(()) => Outcome::Done,
        Err(error) => {
            tracing::warn!(
                event = E::event_type().name,
                event_id = %delivery.event.metadata().event_id,
                saga = ?delivery.event.metadata().saga_id,
                attempt = delivery.attempt,
                %error,
                "message not handled"
            );
            outcome_of(error)
        }
    }
}

/// What becomes of a message whose use case failed with `error`.
fn outcome_of(error: AppError) -> Outcome {
    match error {
        AppError::Store(
            StoreError::Mongo(_) | StoreError::Write(_) | StoreError::Conflict { .. },
        )
        | AppError::CampaignUnknown(_) => Outcome::Retry(error.to_string()),
        AppError::Store(StoreError::Corrupt(_))
        | AppError::Invalid(_)
        | AppError::NoSaga(_)
        | AppError::UnknownCommission(_) => Outcome::Reject(error.to_string()),
    }
}

impl Consumed for CampaignCreated {
    async fn feed<S: EventStore>(
        &self,
        app: &Commissions<S>,
        _attempt: Attempt,
    ) -> Result<(), AppError> {
        let changed = app.open_budget(self).await?;
        tracing::info!(campaign = %self.campaign_id, changed, "campaign created");
        Ok(())
    }
}

impl Consumed for CampaignActivated {
    async fn feed<S: EventStore>(
        &self,
        app: &Commissions<S>,
        _attempt: Attempt,
    ) -> Result<(), AppError> {
        let changed = app.activate_campaign(self).await?;
        tracing::info!(campaign = %self.campaign_id, changed, "campaign activated");
        Ok(())
    }
}

impl Consumed for CampaignPaused {
    async fn feed<S: EventStore>(
        &self,
        app: &Commissions<S>,
        _attempt: Attempt,
    ) -> Result<(), AppError> {
        let changed = app.pause_campaign(self).await?;
        tracing::info!(campaign = %self.campaign_id, changed, "campaign paused");
        Ok(())
    }
}

impl Consumed for CampaignCompleted {
    async fn feed<S: EventStore>(
        &self,
        app: &Commissions<S>,
        _attempt: Attempt,
    ) -> Result<(), AppError> {
        let changed = app.complete_campaign(self).await?;
        tracing::info!(campaign = %self.campaign_id, changed, "campaign completed");
        Ok(())
    }
}

impl Consumed for ConversionAttributed {
    async fn feed<S: EventStore>(
        &self,
        app: &Commissions<S>,
        attempt: Attempt,
    ) -> Result<(), AppError> {
        let status = app.reserve(self, attempt).await?;
        tracing::debug!(
            saga = ?self.metadata.saga_id,
            campaign = %self.campaign_id,
            ?status,
            "conversion handled"
        );
        Ok(())
    }
}

impl Consumed for FraudDetected {
    async fn feed<S: EventStore>(
        &self,
        app: &Commissions<S>,
        _attempt: Attempt,
    ) -> Result<(), AppError> {
        let compensated = app.revert_for_fraud(self).await?;
        log_compensation(self.metadata.saga_id.as_deref(), &compensated, "fraud");
        Ok(())
    }
}

impl Consumed for SagaTimedOut {
    async fn feed<S: EventStore>(
        &self,
        app: &Commissions<S>,
        _attempt: Attempt,
    ) -> Result<(), AppError> {
        let compensated = app.revert_for_timeout(self).await?;
        log_compensation(self.metadata.saga_id.as_deref(), &compensated, "timeout");
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
