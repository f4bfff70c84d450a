//! The bus consumers: each consumed event type goes to its use case, and what became of it is
//! turned into an [`Outcome`].
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

use std::fmt::Debug;
use std::future::Future;

use alpes_bus::{Attempt, Delivery, Outcome};
use alpes_contracts::Event;
use alpes_contracts::events::commission::CommissionReverted;
use alpes_contracts::events::marketing::{
    CampaignActivated, CampaignCompleted, CampaignCreated, CampaignPaused,
};
use alpes_contracts::events::tracking::InteractionTracked;
use alpes_eventstore::EventStore;

use crate::app::{AppError, Attribution, Compensated, Tracked};
use crate::domain::CampaignCommand;

/// The default subscription name every attribution replica shares.
pub const SUBSCRIPTION: &str = "attribution";

/// An event type attribution consumes, and the use case it goes to.
pub trait Consumed: Event {
    /// What handling it did, for the log.
    type Done: Debug + Send;

    /// Hands `event` to its use case; `attempt` says whether a retry may follow.
    fn handle<S: EventStore>(
        app: &Attribution<S>,
        event: &Self,
        attempt: Attempt,
    ) -> impl Future<Output = Result<Self::Done, AppError>> + Send;
}

/// Handles one delivery of `E`: done when its effect is stored, retried when the store is
/// unavailable, dead-lettered when it can never be handled.
pub async fn on_event<E: Consumed, S: EventStore>(
    app: &Attribution<S>,
    delivery: Delivery<E>,
) -> Outcome {
    let event = &delivery.event;
    let metadata = event.metadata();
    match E::handle(app, event, delivery.kind_of_attempt()).await {
        Ok(done) => {
            tracing::debug!(
                event = %metadata.event_type,
                event_id = %metadata.event_id,
                saga = ?metadata.saga_id,
                ?done,
                "handled"
            );
            Outcome::Done
        }
        Err(e @ (AppError::Store(_) | AppError::NotYet(_))) => Outcome::Retry(e.to_string()),
        Err(e) => Outcome::Reject(e.to_string()),
    }
}

impl Consumed for InteractionTracked {
    type Done = Tracked;

    async fn handle<S: EventStore>(
        app: &Attribution<S>,
        event: &Self,
        attempt: Attempt,
    ) -> Result<Tracked, AppError> {
        app.track(event, attempt).await
    }
}

impl Consumed for CommissionReverted {
    type Done = Compensated;

    async fn handle<S: EventStore>(
        app: &Attribution<S>,
        event: &Self,
        _attempt: Attempt,
    ) -> Result<Compensated, AppError> {
        app.compensate(event).await
    }
}

/// Campaign facts: whether the fact changed what attribution knows.
macro_rules! campaign_fact {
    ($($fact:ty),*) => {$(
        impl Consumed for $fact {
            type Done = bool;

            async fn handle<S: EventStore>(
                app: &Attribution<S>,
                event: &Self,
                _attempt: Attempt,
            ) -> Result<bool, AppError> {
                let command = CampaignCommand::from(event);
                app.record_campaign_fact(&event.campaign_id, &event.metadata, command)
                    .await
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
