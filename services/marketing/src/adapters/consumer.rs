//! What marketing consumes:
//!
//! - every saga event, once, for two uses kept by the saga log in one transaction — the step
//!   it is in its saga, and what it counts for in its campaign's statistics (each event type
//!   says which, see `alpes_sagalog::SagaEvent`);
//! - its own campaign announcements, to repair the campaign list (see `read_models`).

use alpes_bus::{Delivery, Outcome};
use alpes_contracts::Event;
use alpes_contracts::events::marketing::{
    CampaignActivated, CampaignCompleted, CampaignCreated, CampaignPaused,
};
use alpes_eventstore::EventStore;
use alpes_sagalog::{LogError, SagaEvent};

use crate::app::{AppError, Marketing};
use crate::sagas::Sagas;

/// A campaign event marketing announced.
pub trait Announcement: Event {
    /// The campaign it is about.
    fn campaign_id(&self) -> &str;
}

impl Announcement for CampaignCreated {
    fn campaign_id(&self) -> &str {
        &self.campaign_id
    }
}

impl Announcement for CampaignActivated {
    fn campaign_id(&self) -> &str {
        &self.campaign_id
    }
}

impl Announcement for CampaignPaused {
    fn campaign_id(&self) -> &str {
        &self.campaign_id
    }
}

impl Announcement for CampaignCompleted {
    fn campaign_id(&self) -> &str {
        &self.campaign_id
    }
}

/// Lists the announced campaign as the store holds it; an outage is retried.
pub async fn on_announcement<E: Announcement, S: EventStore>(
    app: &Marketing<S>,
    event: &E,
) -> Outcome {
    match app.relist(event.campaign_id()).await {
        Ok(()) => Outcome::Done,
        Err(e @ (AppError::Store(_) | AppError::ReadModel(_))) => Outcome::Retry(e.to_string()),
        Err(e) => Outcome::Reject(e.to_string()),
    }
}

/// The default subscription name every marketing replica shares.
pub const SUBSCRIPTION: &str = "marketing";

/// Records a saga event in the saga log and counts it in its campaign's statistics. The log
/// being unreachable is retried (the event waits on the retry topic); an event the log refuses
/// for what it holds can never be recorded, so it goes to the dead-letter topic at once, with
/// Postgres's reason.
pub async fn on_saga_event<E: SagaEvent>(sagas: &Sagas, delivery: Delivery<E>) -> Outcome {
    outcome_of(sagas.observe(&delivery.event).await)
}

/// What becomes of a saga event the log answered `written` for.
fn outcome_of(written: Result<(), LogError>) -> Outcome {
    match written {
        Ok(()) => Outcome::Done,
        Err(e) if e.is_permanent() => Outcome::Reject(format!("the saga log refuses it: {e}")),
        Err(e) => Outcome::Retry(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn database(error: sqlx::Error) -> LogError {
        LogError::Database(Arc::new(error))
    }

    #[test]
    fn a_refused_step_is_dead_lettered_at_once_and_an_outage_retried() {
        // Which database errors are permanent is the saga log's call (its tests cover the
        // SQLSTATE classes); here, that the consumer follows it.
        let refused = database(sqlx::Error::Decode("not a step".into()));
        assert!(refused.is_permanent());
        match outcome_of(Err(refused)) {
            Outcome::Reject(reason) => assert!(reason.contains("not a step"), "{reason}"),
            other => panic!("{other:?}"),
        }
        let outage = database(sqlx::Error::PoolTimedOut);
        assert!(matches!(outcome_of(Err(outage)), Outcome::Retry(_)));
        assert!(matches!(
            outcome_of(Err(LogError::Stopped)),
            Outcome::Retry(_)
        ));
        assert!(matches!(outcome_of(Ok(())), Outcome::Done));
    }
}
