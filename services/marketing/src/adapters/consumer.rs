//! What marketing consumes:
//!
//! - every saga event, once, for two uses kept by the saga log in one transaction — the step
//!   it is in its saga, and what it counts for in its campaign's statistics (each event type
//!   says which, see `alpes_sagalog::SagaEvent`);
//! - its own campaign announcements, to repair the campaign list (see `read_models`).

use std::fmt;

use alpes_bus::{Attempt, Failure, Handler};
use alpes_contracts::Event;
use alpes_contracts::events::marketing::{
    CampaignActivated, CampaignCompleted, CampaignCreated, CampaignPaused,
};
use alpes_eventstore::EventStore;
use alpes_sagalog::{LogError, SagaEvent};

use crate::app::{AppError, Marketing};
use crate::coordinator::SagaCoordinator;

/// The default subscription name every marketing replica shares.
pub const SUBSCRIPTION: &str = "marketing";

/// A campaign event marketing announced.
pub trait Announcement: Event {
    /// The campaign it is about.
    fn campaign_id(&self) -> &str;
}

macro_rules! announcement {
    ($($event:ty),*) => {$(
        impl Announcement for $event {
            fn campaign_id(&self) -> &str {
                &self.campaign_id
            }
        }
    )*};
}

announcement!(
    CampaignCreated,
    CampaignActivated,
    CampaignPaused,
    CampaignCompleted
);

/// Lists the announced campaign as the store holds it; an outage is retried.
impl<E: Announcement, S: EventStore> Handler<E> for Marketing<S> {
    type Error = AppError;

    async fn handle(&self, event: &E, _: Attempt) -> Result<(), AppError> {
        self.relist(event.campaign_id()).await
    }
}

impl Failure for AppError {
    fn is_retryable(&self) -> bool {
        match self {
            AppError::Store(e) => e.is_retryable(),
            AppError::ReadModel(_) => true,
            AppError::Domain(_) | AppError::Corrupt(_) => false,
        }
    }
}

/// Records a saga event in the saga log and counts it in its campaign's statistics. The log
/// being unreachable is retried (the event waits on the retry topic); an event the log refuses
/// for what it holds can never be recorded, so it goes to the dead-letter topic at once, with
/// Postgres's reason.
impl<E: SagaEvent> Handler<E> for SagaCoordinator {
    type Error = NotLogged;

    async fn handle(&self, event: &E, _: Attempt) -> Result<(), NotLogged> {
        self.observe(event).await.map_err(NotLogged)
    }
}

/// Why the saga log did not record an event.
#[derive(Debug)]
pub struct NotLogged(LogError);

impl fmt::Display for NotLogged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_permanent() {
            write!(f, "the saga log refuses it: {}", self.0)
        } else {
            self.0.fmt(f)
        }
    }
}

/// Which errors are permanent is the saga log's call.
impl Failure for NotLogged {
    fn is_retryable(&self) -> bool {
        !self.0.is_permanent()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn database(error: sqlx::Error) -> NotLogged {
        NotLogged(LogError::Database(Arc::new(error)))
    }

    #[test]
    fn a_refused_step_is_dead_lettered_at_once_and_an_outage_retried() {
        // Which database errors are permanent is the saga log's call (its tests cover the
        // SQLSTATE classes); here, that the consumer follows it and says why.
        let refused = database(sqlx::Error::Decode("not a step".into()));
        assert!(!refused.is_retryable());
        let reason = refused.to_string();
        assert!(reason.starts_with("the saga log refuses it:"), "{reason}");
        assert!(reason.contains("not a step"), "{reason}");
        assert!(database(sqlx::Error::PoolTimedOut).is_retryable());
        assert!(NotLogged(LogError::Stopped).is_retryable());
    }
}
