//! The two indexes the use cases need to find a journey: by visitor and by saga.
//!
//! - By visitor, a journey is found by its id alone: the visitor's `n`-th journey has an id
//!   derived from the visitor and `n` (see `journeys::journey_id`), so the journeys of a visitor
//!   are found by looking at the 1st, the 2nd, ... until one is open, and nothing is written to
//!   find them. Versions before this one kept `visitor-{anonymous_id}`, a stream of its own
//!   saying which journeys the visitor had (random ids, the last opened is current) and where
//!   each interaction was assigned. Those streams stay as written and are read, never written:
//!   their journeys come before the derived ones ([`LegacyVisitorIndex`]). An old version
//!   knows nothing of derived journeys, so it must not run beside this one (roll out by
//!   stopping the old replicas first, and do not roll back once derived journeys exist).
//! - `saga-{saga_id}` links a saga to the journey its purchase converted, and records that the
//!   saga was compensated. It is a stream of its own because a compensation names only the
//!   saga (`CommissionReverted` carries no visitor and no journey), and it is written with
//!   optimistic concurrency like any stream, so a purchase and a compensation racing over one
//!   saga cannot both miss the other: whichever is written second sees the first and makes sure
//!   the journey is reverted.

use alpes_bus::Outgoing;
use alpes_contracts::EventMetadata;
use alpes_eventstore::{EventStore, NewCommit, Stream};
use serde::{Deserialize, Serialize};

use super::{AppError, Attribution, decoded, stored};
use crate::domain::DomainEvent;

/// The stream of a visitor's index, as versions before derived journey ids wrote it.
pub(super) fn visitor_stream(anonymous_id: &str) -> String {
    format!("visitor-{anonymous_id}")
}

/// The stream of a saga's index.
pub(super) fn saga_stream(saga_id: &str) -> String {
    format!("saga-{saga_id}")
}

/// What happened to a visitor's index, as versions before derived journey ids wrote it.
/// Only read now; the names and shapes must keep decoding what was stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum VisitorEvent {
    /// A new journey became the visitor's current one.
    JourneyOpened { journey_id: String },
    /// An interaction went to this journey. Written before the journey was, so that a
    /// redelivery after a crash would find the same journey; not needed any more, since an
    /// interaction is now routed and recorded in one write, and the routing gives the same
    /// answer without it (see `interactions`).
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

/// The journeys a visitor opened before journey ids were derived, oldest first: only the last
/// may still be open.
#[derive(Debug, Default)]
pub(super) struct LegacyVisitorIndex {
    journeys: Vec<String>,
}

impl LegacyVisitorIndex {
    /// The index folded from its stream (empty for a visitor the old versions never saw).
    pub(super) fn of(stream: &Stream) -> Result<Self, AppError> {
        let mut index = Self::default();
        for event in decoded::<VisitorEvent>(stream)? {
            if let VisitorEvent::JourneyOpened { journey_id } = event {
                index.journeys.push(journey_id);
            }
        }
        Ok(index)
    }

    /// The journeys, in the order they were opened.
    pub(super) fn journeys(&self) -> &[String] {
        &self.journeys
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
