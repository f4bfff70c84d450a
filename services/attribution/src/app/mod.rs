//! The attribution use cases: load the streams a message concerns, decide with the domain,
//! append the facts together with the integration events to publish (one document each, see
//! the event store), so that a crash at any point loses nothing and publishes nothing twice.
//!
//! Streams, one per thing that must change atomically:
//!
//! - `campaign-{campaign_id}`: the mirrored [`Campaign`](crate::domain::Campaign) settings.
//! - `journey-{journey_id}`: a [`Journey`](crate::domain::Journey)'s events, the outbox of its
//!   outcomes (`ConversionAttributed`/`ConversionRejected`, `AttributionReverted`), the ids of
//!   the messages that made them, and, first, which visitor it belongs to. A visitor's journeys
//!   have ids derived from the visitor and their rank, so they need no index (see `journeys`).
//! - `saga-{saga_id}`: the index from a saga to the journey its purchase converted, and whether
//!   the saga was compensated, whichever arrived first (see `index`).
//! - `visitor-{anonymous_id}`: written by earlier versions, read only: the journeys a visitor
//!   opened before journey ids were derived (see `index`).
//! - `legacy-visitors`: which visitors have such a stream, found once per database.
//!
//! The modules hold one use case each: `campaigns`, `interactions`, `compensation`, and
//! the read side in `views`.

mod campaigns;
mod compensation;
mod index;
mod interactions;
mod journeys;
#[cfg(test)]
mod tests;
mod views;

use std::future::Future;
use std::sync::Arc;

use alpes_bus::Outgoing;
use alpes_eventstore::{EventStore, StoreError};

use crate::domain::DomainError;

pub use compensation::Compensated;
pub use interactions::Tracked;
pub use views::{CampaignView, JourneyView, Published, SagaOutcome, SagaView};

/// Conflicting writers retry this many times before the message is retried later.
const ATTEMPTS: u32 = 5;

/// Why a use case failed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The domain refuses the command: the message can never be handled.
    #[error(transparent)]
    Invalid(#[from] DomainError),
    /// The store is unavailable or kept conflicting: try again later.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stream does not fold back into what it should be.
    #[error("stored data does not read back: {0}")]
    Corrupt(String),
    /// The message lacks what handling it needs (a purchase without its order or its saga).
    #[error("malformed message: {0}")]
    Malformed(String),
    /// A purchase would be refused for want of what another topic may still bring (a click, its
    /// campaign's facts), and another attempt follows (see `interactions`). Nothing was
    /// written; try again later.
    #[error("{0}")]
    NotYet(String),
}

impl AppError {
    fn is_conflict(&self) -> bool {
        matches!(self, Self::Store(StoreError::Conflict { .. }))
    }
}

/// The attribution service's use cases over an event store.
#[derive(Clone)]
pub struct Attribution<S> {
    store: S,
    /// Which visitors have a legacy index, once swept (see `index`).
    legacy: Arc<tokio::sync::OnceCell<index::LegacyVisitors>>,
}

impl<S: EventStore> Attribution<S> {
    /// The use cases over `store`.
    pub fn new(store: S) -> Self {
        Self {
            store,
            legacy: Arc::default(),
        }
    }
}

/// Runs `attempt` (load, decide, append) until it does not conflict, at most [`ATTEMPTS`]
/// times; the last conflict is returned, and the consumer retries the message later.
async fn retrying<T, F, Fut>(mut attempt: F) -> Result<T, AppError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, AppError>>,
{
    let mut tries = 1;
    loop {
        match attempt().await {
            Err(e) if e.is_conflict() && tries < ATTEMPTS => {
                tracing::debug!(error = %e, tries, "conflict, reloading");
                tries += 1;
            }
            outcome => return outcome,
        }
    }
}

/// `event` encoded for the outbox.
fn outgoing<E: alpes_contracts::Event>(event: &E) -> Result<Outgoing, AppError> {
    Outgoing::event(event).map_err(|e| AppError::Corrupt(e.to_string()))
}
