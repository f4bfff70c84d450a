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
//!
//!   Looking that stream up would cost every new visitor a database read that finds nothing,
//!   so the store is swept once per database for which visitors have one, and the answer
//!   recorded in `legacy-visitors` ([`LegacyVisitors`]): a process reads it once, and then looks
//!   up only the visitors it names. Until the sweep is done, every visitor is looked up.
//! - `saga-{saga_id}` links a saga to the journey its purchase converted, and records that the
//!   saga was compensated. It is a stream of its own because a compensation names only the
//!   saga (`CommissionReverted` carries no visitor and no journey), and it is written with
//!   optimistic concurrency like any stream, so a purchase and a compensation racing over one
//!   saga cannot both miss the other: whichever is written second sees the first and makes sure
//!   the journey is reverted.

use std::collections::HashSet;

use alpes_bus::Outgoing;
use alpes_contracts::EventMetadata;
use alpes_eventstore::{
    Commit, EventStore, NewCommit, Projection, StoreError, StoredEvent, Stream, scan,
};
use serde::{Deserialize, Serialize};

use super::{AppError, Attribution};
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
        for event in stream.read::<VisitorEvent>()? {
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

/// The stream of the legacy sweep's answer (see [`LegacyVisitors`]).
const LEGACY_VISITORS: &str = "legacy-visitors";

/// The most visitors the sweep's answer names; with more, every visitor is looked up.
const MAX_NAMED: usize = 100_000;

/// The legacy sweep's answer, written once per database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum SweepEvent {
    /// The visitors with a `visitor-{id}` stream; `None` when too many to name.
    Swept { visitors: Option<Vec<String>> },
}

impl DomainEvent for SweepEvent {
    fn kind(&self) -> &'static str {
        "LegacyVisitorsSwept"
    }
}

/// Which visitors have an index written by versions before derived journey ids. No version
/// writes one any more, so the answer, once found, holds for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LegacyVisitors {
    /// `None`: too many to name, any visitor may have one.
    named: Option<HashSet<String>>,
}

impl LegacyVisitors {
    /// Whether `visitor_id` may have a legacy index, which must then be looked up.
    pub(super) fn may_have(&self, visitor_id: &str) -> bool {
        self.named
            .as_ref()
            .is_none_or(|named| named.contains(visitor_id))
    }

    fn of(event: SweepEvent) -> Self {
        let SweepEvent::Swept { visitors } = event;
        Self {
            named: visitors.map(|v| v.into_iter().collect()),
        }
    }
}

/// The visitors the commits of a store have legacy indexes for.
#[derive(Default)]
struct Sweep {
    visitors: HashSet<String>,
}

impl Projection for Sweep {
    fn apply(&mut self, commit: &Commit) {
        if let Some(visitor_id) = commit.stream.strip_prefix("visitor-") {
            self.visitors.insert(visitor_id.to_owned());
        }
    }
}

impl<S: EventStore> Attribution<S> {
    /// Which visitors have a legacy index: the recorded answer, or, the first time in a
    /// database, a sweep of the whole store (the one scan attribution ever makes) whose answer
    /// is then recorded. Done once per process; until it is, routing looks every visitor up.
    pub async fn sweep_legacy_visitors(&self) -> Result<(), AppError> {
        self.legacy
            .get_or_try_init(|| async {
                if let Some(known) = self.recorded_sweep().await? {
                    return Ok(known);
                }
                tracing::info!("attribution: sweeping the store once for legacy visitor indexes");
                let mut sweep = Sweep::default();
                let replayed = scan(&self.store, &mut sweep).await?;
                let mut visitors: Vec<String> = sweep.visitors.into_iter().collect();
                visitors.sort_unstable();
                tracing::info!(
                    replayed,
                    visitors = visitors.len(),
                    "attribution: legacy sweep done"
                );
                let event = SweepEvent::Swept {
                    visitors: (visitors.len() <= MAX_NAMED).then_some(visitors),
                };
                let written = self
                    .store
                    .append(NewCommit {
                        stream: LEGACY_VISITORS.to_owned(),
                        expected_version: 0,
                        events: StoredEvent::all(std::slice::from_ref(&event))?,
                        outbox: Vec::new(),
                        handled: None,
                    })
                    .await;
                match written {
                    Ok(_) => Ok(LegacyVisitors::of(event)),
                    // Another process recorded it first: its answer is the same.
                    Err(StoreError::Conflict { .. }) => self
                        .recorded_sweep()
                        .await?
                        .ok_or_else(|| AppError::Corrupt(format!("{LEGACY_VISITORS} is empty"))),
                    Err(e) => Err(e.into()),
                }
            })
            .await?;
        Ok(())
    }

    /// Whether `visitor_id`'s legacy index must be looked up: unless the sweep says it has none.
    pub(super) fn may_have_legacy_index(&self, visitor_id: &str) -> bool {
        self.legacy
            .get()
            .is_none_or(|known| known.may_have(visitor_id))
    }

    async fn recorded_sweep(&self) -> Result<Option<LegacyVisitors>, AppError> {
        let stream = self.store.load(LEGACY_VISITORS).await?;
        Ok(stream
            .read::<SweepEvent>()?
            .into_iter()
            .next()
            .map(LegacyVisitors::of))
    }
}

/// What happened to a saga's link to the journey its purchase converted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum SagaLinkEvent {
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

impl DomainEvent for SagaLinkEvent {
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
        for event in stream.read::<SagaLinkEvent>()? {
            index.apply(event);
        }
        Ok(index)
    }

    /// Folds one event in; the first link and the first compensation stay.
    pub(super) fn apply(&mut self, event: SagaLinkEvent) {
        match event {
            SagaLinkEvent::Converted { journey_id, .. } => {
                self.journey_id.get_or_insert(journey_id);
            }
            SagaLinkEvent::CompensationRequested { reason, cause } => {
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

    /// Saga `saga_id`'s index as far as this process knows it, for a purchase's handling: a
    /// saga it knows nothing of is taken as new, without the read that nearly always finds
    /// nothing (a purchase starts its saga; see `EventStore::load_known`). Sound because the
    /// purchase's handling then appends to the saga (`link_saga`, at version 1), which
    /// conflicts if a compensation got there first; the next attempt reads it, and the
    /// journey is reverted then.
    pub(super) async fn load_new_saga(
        &self,
        saga_id: &str,
    ) -> Result<(Stream, SagaIndex), AppError> {
        let name = saga_stream(saga_id);
        let stream = self
            .store
            .load_known(&name)
            .await?
            .unwrap_or_else(|| Stream::empty(name));
        let index = SagaIndex::of(&stream)?;
        Ok((stream, index))
    }

    /// Appends `event` and `outbox` to the saga's `stream` as the handling of message
    /// `handled`, if the stream has not moved since it was loaded.
    pub(super) async fn append_saga(
        &self,
        stream: &Stream,
        event: &SagaLinkEvent,
        outbox: Vec<Outgoing>,
        handled: &str,
    ) -> Result<(), AppError> {
        self.store
            .append(saga_commit(stream, event, outbox, handled)?)
            .await?;
        Ok(())
    }
}

/// The commit of `event` and `outbox` to the saga's `stream` as loaded, as the handling of
/// message `handled`.
pub(super) fn saga_commit(
    stream: &Stream,
    event: &SagaLinkEvent,
    outbox: Vec<Outgoing>,
    handled: &str,
) -> Result<NewCommit, AppError> {
    Ok(NewCommit {
        stream: stream.name.clone(),
        expected_version: stream.version(),
        events: StoredEvent::all(std::slice::from_ref(event))?,
        outbox,
        handled: Some(handled.to_owned()),
    })
}
