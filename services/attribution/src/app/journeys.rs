//! A journey's stream: naming it, loading it into the domain's [`Journey`], and appending to it.
//!
//! A visitor's journeys are numbered, and the `n`-th one's id is derived from the visitor and
//! `n` ([`journey_id`]): whoever knows the visitor finds their journeys without an index, and
//! the journey is still found by its id alone (the HTTP API, a saga's link). Journeys opened by
//! earlier versions have random ids, listed in the visitor's legacy index (see `index`).
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
use uuid::Uuid;

use super::{AppError, Attribution, outgoing};
use crate::domain::{Aggregate, Journey, JourneyEvent, JourneyStatus};

/// The stored kind of the owner record.
const OWNER: &str = "JourneyOwner";

/// The namespace of derived journey ids. Never change it: stored journeys are found by it.
const JOURNEY_IDS: Uuid = Uuid::from_u128(0x5a1e_7c3e_90b4_4d0f_a2a8_63c1_7e95_d2f4);

/// The id of the `ordinal`-th journey (from 1) of visitor `visitor_id`: a name-based UUID, so
/// every replica derives the same one. The line feed between the two keeps `("a1", 2)` and
/// `("a", 12)` apart.
pub(super) fn journey_id(visitor_id: &str, ordinal: u64) -> String {
    Uuid::new_v5(&JOURNEY_IDS, format!("{visitor_id}\n{ordinal}").as_bytes()).to_string()
}

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
                    let decoded = event.read::<JourneyEvent>().map_err(corrupt)?;
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
    /// Whether the journey already has the interaction: the message is a redelivery.
    pub(super) fn has(&self, interaction_id: &str) -> bool {
        self.state.has_interaction(interaction_id)
    }

    /// Whether the journey still takes interactions (an empty stream is an open journey).
    pub(super) fn is_open(&self) -> bool {
        self.state.status() == JourneyStatus::Open
    }
}

impl<S: EventStore> Attribution<S> {
    /// Journey `journey_id`; the default (open, empty) journey when its stream is empty.
    pub(super) async fn load_journey(&self, journey_id: &str) -> Result<LoadedJourney, AppError> {
        let stream = self.store.load(&journey_stream(journey_id)).await?;
        Self::loaded(journey_id, stream)
    }

    /// Journey `journey_id` as the database has it now, for a decision that appends nothing
    /// (see `EventStore::load_latest`).
    pub(super) async fn load_journey_latest(
        &self,
        journey_id: &str,
    ) -> Result<LoadedJourney, AppError> {
        let stream = self.store.load_latest(&journey_stream(journey_id)).await?;
        Self::loaded(journey_id, stream)
    }

    /// A visitor's first journey as far as this process knows it: one it knows nothing of is
    /// taken as new, without the read that would nearly always find nothing (see
    /// `EventStore::load_known`). Sound because deciding anything on an empty journey appends
    /// to it (a touchpoint, or a purchase's outcome), and that append conflicts if the journey
    /// exists after all; the next attempt reads it. Not for later journeys: a returning
    /// visitor's would conflict once per journey after a restart.
    pub(super) async fn load_first_journey(
        &self,
        journey_id: &str,
    ) -> Result<LoadedJourney, AppError> {
        let name = journey_stream(journey_id);
        let known = self.store.load_known(&name).await?;
        Self::loaded(journey_id, known.unwrap_or_else(|| Stream::empty(name)))
    }

    fn loaded(journey_id: &str, stream: Stream) -> Result<LoadedJourney, AppError> {
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
        let commit = self.journey_commit(journey, events, outbox, handled)?;
        self.store.append(commit).await?;
        Ok(())
    }

    /// The commit [`Attribution::append_journey`] appends.
    pub(super) fn journey_commit(
        &self,
        journey: &LoadedJourney,
        events: &[JourneyEvent],
        outbox: Vec<Outgoing>,
        handled: &str,
    ) -> Result<NewCommit, AppError> {
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
        records.extend(StoredEvent::all(events)?);
        Ok(NewCommit {
            stream: journey.stream.name.clone(),
            expected_version: journey.stream.version(),
            events: records,
            outbox,
            handled: Some(handled.to_owned()),
        })
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
