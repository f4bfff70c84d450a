//! The two indexes the use cases need to find a journey: by visitor and by saga.
//!
//! They are streams of their own, not fields of the journey, because they must be found by a
//! key the journey's id does not contain, and each is written with optimistic concurrency like
//! any stream, so two messages racing over one visitor or one saga cannot both win.
//!
//! - `visitor-{anonymous_id}` says which journeys a visitor has (the last opened is current)
//!   and which journey each of their interactions was assigned to. The assignment is what
//!   makes a redelivered interaction find the journey it went to the first time, even after
//!   that journey has closed and the visitor has moved on to a new one.
//! - `saga-{saga_id}` links a saga to the journey its purchase converted, and records that the
//!   saga was compensated. Compensation and purchase may arrive in either order; whichever is
//!   written second sees the first and makes sure the journey is reverted.

use alpes_bus::Outgoing;
use alpes_contracts::EventMetadata;
use alpes_eventstore::{EventStore, NewCommit, Stream};
use serde::{Deserialize, Serialize};

use super::{AppError, Attribution, decoded, stored};
use crate::domain::DomainEvent;

/// The stream of a visitor's index.
pub(super) fn visitor_stream(anonymous_id: &str) -> String {
    format!("visitor-{anonymous_id}")
}

/// The stream of a saga's index.
pub(super) fn saga_stream(saga_id: &str) -> String {
    format!("saga-{saga_id}")
}

/// What happened to a visitor's index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum VisitorEvent {
    /// A new journey became the visitor's current one.
    JourneyOpened { journey_id: String },
    /// An interaction goes to this journey (a later assignment of the same one overrides it).
    InteractionAssigned {
        interaction_id: String,
        journey_id: String,
    },
}

impl DomainEvent for VisitorEvent {
    fn kind(&self) -> &'static str {
        match self {
            Self::JourneyOpened { .. } => "JourneyOpened",
            Self::InteractionAssigned { .. } => "InteractionAssigned",
        }
    }
}

/// A visitor's journeys and where each interaction went.
#[derive(Debug, Default)]
pub(super) struct VisitorIndex {
    current: Option<String>,
    assignments: Vec<(String, String)>,
}

impl VisitorIndex {
    /// The index folded from its stream.
    pub(super) fn of(stream: &Stream) -> Result<Self, AppError> {
        let mut index = Self::default();
        for event in decoded::<VisitorEvent>(stream)? {
            match event {
                VisitorEvent::JourneyOpened { journey_id } => index.current = Some(journey_id),
                VisitorEvent::InteractionAssigned {
                    interaction_id,
                    journey_id,
                } => index.assignments.push((interaction_id, journey_id)),
            }
        }
        Ok(index)
    }

    /// The journey opened last, if any.
    pub(super) fn current(&self) -> Option<&str> {
        self.current.as_deref()
    }

    /// The journey `interaction_id` was last assigned to, if any.
    pub(super) fn journey_of(&self, interaction_id: &str) -> Option<&str> {
        self.assignments
            .iter()
            .rev()
            .find(|(interaction, _)| interaction == interaction_id)
            .map(|(_, journey)| journey.as_str())
    }
}

/// What happened to a saga's index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum SagaEvent {
    /// The saga's purchase converted this journey.
    Converted {
        journey_id: String,
        purchase_interaction_id: String,
    },
    /// The saga is compensated: its journey must be reverted, now or when its purchase comes.
    CompensationRequested {
        reason: String,
        /// The compensation's metadata, so the reversal it causes, whenever it happens, names
        /// it as its cause and joins its trace.
        cause: EventMetadata,
    },
}

impl DomainEvent for SagaEvent {
    fn kind(&self) -> &'static str {
        match self {
            Self::Converted { .. } => "SagaConverted",
            Self::CompensationRequested { .. } => "SagaCompensationRequested",
        }
    }
}

/// A requested compensation: why, and the message that asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Compensation {
    pub reason: String,
    pub cause: EventMetadata,
}

/// What attribution knows of a saga.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct SagaIndex {
    /// The journey its purchase converted, once seen.
    pub journey_id: Option<String>,
    /// The first compensation that arrived, if any; later ones change nothing.
    pub compensation: Option<Compensation>,
}

impl SagaIndex {
    /// The index folded from its stream.
    pub(super) fn of(stream: &Stream) -> Result<Self, AppError> {
        let mut index = Self::default();
        for event in decoded::<SagaEvent>(stream)? {
            index.apply(event);
        }
        Ok(index)
    }

    /// Folds one event in; the first link and the first compensation stay.
    pub(super) fn apply(&mut self, event: SagaEvent) {
        match event {
            SagaEvent::Converted { journey_id, .. } => {
                self.journey_id.get_or_insert(journey_id);
            }
            SagaEvent::CompensationRequested { reason, cause } => {
                self.compensation
                    .get_or_insert(Compensation { reason, cause });
            }
        }
    }
}

impl<S: EventStore> Attribution<S> {
    /// Saga `saga_id`'s index and its stream.
    pub(super) async fn load_saga(&self, saga_id: &str) -> Result<(Stream, SagaIndex), AppError> {
        let stream = self.store.load(&saga_stream(saga_id)).await?;
        let index = SagaIndex::of(&stream)?;
        Ok((stream, index))
    }

    /// Appends `event` and `outbox` to the saga's `stream` as the handling of message
    /// `handled`, if the stream has not moved since it was loaded.
    pub(super) async fn append_saga(
        &self,
        stream: &Stream,
        event: &SagaEvent,
        outbox: Vec<Outgoing>,
        handled: &str,
    ) -> Result<(), AppError> {
        self.store
            .append(NewCommit {
                stream: stream.name.clone(),
                expected_version: stream.version(),
                events: stored(std::slice::from_ref(event))?,
                outbox,
                handled: Some(handled.to_owned()),
            })
            .await?;
        Ok(())
    }
}
