//! `InteractionTracked` → the visitor's journey: a view or click is recorded as a touchpoint,
//! a purchase converts the journey and announces the outcome.
//!
//! Handling one interaction takes three steps, each one atomic write, each safe to repeat:
//!
//! 1. **Route** it through the visitor's index: the journey it was assigned to before (a
//!    redelivery), else the visitor's current journey if it is still open, else a new journey.
//!    The assignment is written before the journey is touched, so a redelivery after a crash
//!    finds the same journey even if the visitor has moved on to another one since.
//! 2. **Decide** on the journey and append the events with their outbox and the message's id.
//!    The journey itself ignores an interaction it already has, so a redelivery decides nothing
//!    and publishes nothing. If a purchase closed the journey after the routing (a race), the
//!    interaction is routed again, to a new journey.
//! 3. For a purchase, **link** the saga to the journey, and revert the journey if the saga was
//!    compensated before or while the purchase was handled (see `compensation`). When the
//!    compensation is already known at step 2, the conversion and its reversal are written in
//!    the same commit, so the late purchase's outcome is never published without its reversal.

use alpes_contracts::events::tracking::InteractionTracked;
use alpes_eventstore::{EventStore, NewCommit, StoreError};

use super::index::{SagaEvent, SagaIndex, VisitorEvent, VisitorIndex, visitor_stream};
use super::journeys::{LoadedJourney, announcements};
use super::{AppError, Attribution, retrying, stored};
use crate::domain::{
    Aggregate, DomainError, JourneyCommand, JourneyEvent, JourneyStatus, Purchase, Touchpoint,
};

/// What handling an interaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tracked {
    /// A view or click joined a journey.
    Touchpoint {
        /// The journey it joined.
        journey_id: String,
        /// False when the journey already had it (a redelivery).
        recorded: bool,
    },
    /// A purchase converted a journey.
    Purchase {
        /// The converted journey.
        journey_id: String,
        /// The purchase's saga.
        saga_id: String,
        /// False when the journey was already converted by it (a redelivery).
        converted: bool,
        /// True when its saga's compensation, already known, reverted the journey right away.
        reverted: bool,
    },
}

/// What an interaction is to attribution.
enum Arrival {
    Touchpoint(Touchpoint),
    Purchase { purchase: Purchase, saga_id: String },
}

impl Arrival {
    fn of(tracked: &InteractionTracked) -> Result<Self, AppError> {
        if tracked.visitor.anonymous_id.trim().is_empty() {
            return Err(AppError::Malformed(format!(
                "interaction {} names no visitor",
                tracked.interaction_id
            )));
        }
        if let Some(touchpoint) = Touchpoint::from_interaction(tracked) {
            return Ok(Self::Touchpoint(touchpoint));
        }
        let purchase = Purchase::from_interaction(tracked).ok_or_else(|| {
            AppError::Malformed(format!("purchase {} has no order", tracked.interaction_id))
        })?;
        let saga_id = tracked
            .metadata
            .saga_id
            .clone()
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| {
                AppError::Malformed(format!(
                    "purchase {} belongs to no saga",
                    tracked.interaction_id
                ))
            })?;
        Ok(Self::Purchase { purchase, saga_id })
    }
}

impl<S: EventStore> Attribution<S> {
    /// Folds a tracked interaction into its visitor's journey; a purchase converts it and queues
    /// `ConversionAttributed` or `ConversionRejected`. Redeliveries change nothing.
    pub async fn track(&self, tracked: &InteractionTracked) -> Result<Tracked, AppError> {
        match Arrival::of(tracked)? {
            Arrival::Touchpoint(touchpoint) => {
                retrying(|| self.record_touchpoint(tracked, &touchpoint)).await
            }
            Arrival::Purchase { purchase, saga_id } => {
                let (journey_id, converted, reverted_now) =
                    retrying(|| self.convert(tracked, &purchase, &saga_id)).await?;
                let saga =
                    retrying(|| self.link_saga(tracked, &saga_id, &journey_id, &purchase)).await?;
                let reverted_later = match &saga.compensation {
                    Some(compensation) => self.revert_journey(&journey_id, compensation).await?,
                    None => false,
                };
                Ok(Tracked::Purchase {
                    journey_id,
                    saga_id,
                    converted,
                    reverted: reverted_now || reverted_later,
                })
            }
        }
    }

    async fn record_touchpoint(
        &self,
        tracked: &InteractionTracked,
        touchpoint: &Touchpoint,
    ) -> Result<Tracked, AppError> {
        let journey = self
            .route(&tracked.visitor.anonymous_id, &touchpoint.interaction_id)
            .await?;
        let command = JourneyCommand::RecordTouchpoint(touchpoint.clone());
        let events = decide_routed(&journey, command)?;
        let recorded = !events.is_empty();
        if recorded {
            self.append_journey(&journey, &events, Vec::new(), &tracked.metadata.event_id)
                .await?;
        }
        Ok(Tracked::Touchpoint {
            journey_id: journey.id,
            recorded,
        })
    }

    /// Converts the purchase's journey: `(journey, converted now, reverted now)`.
    async fn convert(
        &self,
        tracked: &InteractionTracked,
        purchase: &Purchase,
        saga_id: &str,
    ) -> Result<(String, bool, bool), AppError> {
        let journey = self
            .route(&tracked.visitor.anonymous_id, &purchase.interaction_id)
            .await?;
        let campaign = match journey.state.campaign_for(purchase) {
            Some(id) => self.campaign(&id).await?.and_then(|c| c.settings()),
            None => None,
        };
        let command = JourneyCommand::Convert {
            purchase: purchase.clone(),
            campaign,
        };
        let mut events = decide_routed(&journey, command)?;
        if events.is_empty() {
            return Ok((journey.id, false, false));
        }
        let mut outbox = announcements(&events, &journey.id, &tracked.metadata)?;
        let (_, saga) = self.load_saga(saga_id).await?;
        let mut reverted = false;
        if let Some(compensation) = &saga.compensation {
            let mut converted = journey.state.clone();
            events.iter().for_each(|e| converted.apply(e));
            let reversal = converted.decide(JourneyCommand::Revert {
                reason: compensation.reason.clone(),
            })?;
            outbox.extend(announcements(&reversal, &journey.id, &compensation.cause)?);
            reverted = !reversal.is_empty();
            events.extend(reversal);
        }
        self.append_journey(&journey, &events, outbox, &tracked.metadata.event_id)
            .await?;
        Ok((journey.id, true, reverted))
    }

    /// Records that the saga's purchase converted `journey_id`; returns the saga as it stands.
    async fn link_saga(
        &self,
        tracked: &InteractionTracked,
        saga_id: &str,
        journey_id: &str,
        purchase: &Purchase,
    ) -> Result<SagaIndex, AppError> {
        let (stream, mut saga) = self.load_saga(saga_id).await?;
        if let Some(linked) = &saga.journey_id {
            if linked != journey_id {
                tracing::warn!(
                    saga = saga_id,
                    linked,
                    journey = journey_id,
                    "saga already linked to another journey"
                );
            }
            return Ok(saga);
        }
        let event = SagaEvent::Converted {
            journey_id: journey_id.to_owned(),
            purchase_interaction_id: purchase.interaction_id.clone(),
        };
        self.append_saga(&stream, &event, Vec::new(), &tracked.metadata.event_id)
            .await?;
        saga.apply(event);
        Ok(saga)
    }

    /// The journey `interaction_id` of `visitor_id` goes to, assigning it first if needed.
    async fn route(
        &self,
        visitor_id: &str,
        interaction_id: &str,
    ) -> Result<LoadedJourney, AppError> {
        let stream = self.store.load(&visitor_stream(visitor_id)).await?;
        let index = VisitorIndex::of(&stream)?;
        if let Some(assigned) = index.journey_of(interaction_id) {
            let journey = self.load_journey(assigned).await?;
            let has_it = journey
                .state
                .interaction_ids()
                .iter()
                .any(|i| i == interaction_id);
            if has_it || journey.state.status() == JourneyStatus::Open {
                return Ok(with_owner(journey, visitor_id));
            }
        }
        let current = match index.current() {
            Some(id) => Some(self.load_journey(id).await?)
                .filter(|j| j.state.status() == JourneyStatus::Open),
            None => None,
        };
        let mut events = Vec::new();
        let journey = match current {
            Some(journey) => journey,
            None => {
                let journey_id = uuid::Uuid::now_v7().to_string();
                events.push(VisitorEvent::JourneyOpened {
                    journey_id: journey_id.clone(),
                });
                // A new id: its stream is empty, no need to ask.
                LoadedJourney::new(&journey_id)
            }
        };
        events.push(VisitorEvent::InteractionAssigned {
            interaction_id: interaction_id.to_owned(),
            journey_id: journey.id.clone(),
        });
        self.store
            .append(NewCommit {
                expected_version: stream.version(),
                stream: stream.name,
                events: stored(&events)?,
                outbox: Vec::new(),
                handled: None,
            })
            .await?;
        Ok(with_owner(journey, visitor_id))
    }
}

/// `journey`, owned by `visitor_id` unless its stream says otherwise.
fn with_owner(mut journey: LoadedJourney, visitor_id: &str) -> LoadedJourney {
    journey.owner.get_or_insert_with(|| visitor_id.to_owned());
    journey
}

/// Decides `command` on a routed journey. A journey that closed since the routing is a
/// conflict: reloading routes the interaction again, to the visitor's next journey.
fn decide_routed(
    journey: &LoadedJourney,
    command: JourneyCommand,
) -> Result<Vec<JourneyEvent>, AppError> {
    match journey.state.decide(command) {
        Err(DomainError::JourneyClosed { .. }) => Err(AppError::Store(StoreError::Conflict {
            stream: journey.stream.name.clone(),
            expected: journey.stream.version(),
        })),
        decided => Ok(decided?),
    }
}
