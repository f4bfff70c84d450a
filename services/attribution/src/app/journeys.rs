//! A journey's stream: loading it into the domain's [`Journey`], and appending to it.
//!
//! The stream holds the journey's domain events and, as the first event of its first commit, an
//! owner record naming the visitor. The owner is not a domain event (the domain needs no
//! visitor), but the read side does, and the journey's own stream is the one place it can be
//! written atomically with the journey's first fact.

use alpes_bus::Outgoing;
use alpes_contracts::EventMetadata;
use alpes_contracts::events::attribution::{
    AttributionReverted, ConversionAttributed, ConversionRejected,
};
use alpes_eventstore::{EventStore, NewCommit, StoredEvent, Stream};
use serde::{Deserialize, Serialize};

use super::{AppError, Attribution, outgoing, stored};
use crate::domain::{Aggregate, Journey, JourneyEvent};

/// The stored kind of the owner record.
const OWNER: &str = "JourneyOwner";

/// The stream of journey `journey_id`.
pub(super) fn journey_stream(journey_id: &str) -> String {
    format!("journey-{journey_id}")
}

/// Whose journey it is.
#[derive(Debug, Serialize, Deserialize)]
struct Owner {
    visitor_id: String,
}

/// A journey as loaded: its stream (for the version to expect), its owner and its state.
#[derive(Debug, Clone)]
pub(super) struct LoadedJourney {
    pub id: String,
    pub stream: Stream,
    /// The visitor whose journey it is: stored, or given by the routing of a new journey.
    pub owner: Option<String>,
    pub state: Journey,
}

/// What a journey's stream holds, decoded.
pub(super) struct JourneyHistory {
    /// The visitor whose journey it is, once its first fact is stored.
    pub visitor_id: Option<String>,
    /// Every domain event, each with the outbox of the commit that stored it.
    pub events: Vec<(JourneyEvent, Vec<Outgoing>)>,
}

impl JourneyHistory {
    /// Decodes `stream`.
    pub(super) fn of(stream: &Stream) -> Result<Self, AppError> {
        let corrupt = |e: serde_json::Error| AppError::Corrupt(format!("{}: {e}", stream.name));
        let mut history = Self {
            visitor_id: None,
            events: Vec::new(),
        };
        for commit in stream.commits.iter() {
            for event in &commit.events {
                if event.kind == OWNER {
                    history.visitor_id = Some(event.decode::<Owner>().map_err(corrupt)?.visitor_id);
                } else {
                    let decoded = event.decode::<JourneyEvent>().map_err(corrupt)?;
                    history.events.push((decoded, commit.outbox.clone()));
                }
            }
        }
        Ok(history)
    }

    /// The journey these events fold into.
    pub(super) fn journey(&self) -> Journey {
        Journey::from_events(self.events.iter().map(|(e, _)| e))
    }
}

impl LoadedJourney {
    /// A journey that does not exist yet: open, empty, at version 0.
    pub(super) fn new(journey_id: &str) -> Self {
        Self {
            id: journey_id.to_owned(),
            state: Journey::from_events(std::iter::empty()),
            owner: None,
            stream: Stream {
                name: journey_stream(journey_id),
                ..Stream::default()
            },
        }
    }
}

impl<S: EventStore> Attribution<S> {
    /// Journey `journey_id`; the default (open, empty) journey when its stream is empty.
    pub(super) async fn load_journey(&self, journey_id: &str) -> Result<LoadedJourney, AppError> {
        let stream = self.store.load(&journey_stream(journey_id)).await?;
        let history = JourneyHistory::of(&stream)?;
        Ok(LoadedJourney {
            id: journey_id.to_owned(),
            state: history.journey(),
            owner: history.visitor_id,
            stream,
        })
    }

    /// Appends `events` and `outbox` to `journey`, as the handling of message `handled`, if
    /// the journey has not moved since it was loaded; its first commit also records its owner.
    pub(super) async fn append_journey(
        &self,
        journey: &LoadedJourney,
        events: &[JourneyEvent],
        outbox: Vec<Outgoing>,
        handled: &str,
    ) -> Result<(), AppError> {
        let mut records = Vec::with_capacity(events.len() + 1);
        if let Some(visitor_id) = journey
            .owner
            .clone()
            .filter(|_| journey.stream.version() == 0)
        {
            let owner = Owner { visitor_id };
            records.push(
                StoredEvent::new(OWNER, &owner).map_err(|e| AppError::Corrupt(e.to_string()))?,
            );
        }
        records.extend(stored(events)?);
        self.store
            .append(NewCommit {
                stream: journey.stream.name.clone(),
                expected_version: journey.stream.version(),
                events: records,
                outbox,
                handled: Some(handled.to_owned()),
            })
            .await?;
        Ok(())
    }
}

/// The integration events announcing `events` of journey `journey_id`, caused by the message
/// with metadata `cause` (same saga, same trace).
pub(super) fn announcements(
    events: &[JourneyEvent],
    journey_id: &str,
    cause: &EventMetadata,
) -> Result<Vec<Outgoing>, AppError> {
    events
        .iter()
        .filter_map(|event| match event {
            JourneyEvent::TouchpointRecorded(_) => None,
            JourneyEvent::Attributed(a) => Some(outgoing(&a.to_contract(
                journey_id,
                EventMetadata::caused_by::<ConversionAttributed>(cause),
            ))),
            JourneyEvent::Rejected(r) => Some(outgoing(&r.to_contract(
                journey_id,
                EventMetadata::caused_by::<ConversionRejected>(cause),
            ))),
            JourneyEvent::Reverted(r) => Some(outgoing(&r.to_contract(
                journey_id,
                EventMetadata::caused_by::<AttributionReverted>(cause),
            ))),
        })
        .collect()
}
