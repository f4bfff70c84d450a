//! The tracking use cases: load an interaction's stream, decide with the domain, append the
//! facts together with the integration events to publish (one document, see the event store).

use alpes_bus::Outgoing;
use alpes_contracts::events::attribution::AttributionReverted;
use alpes_contracts::events::tracking::{
    InteractionKind, InteractionTracked, InteractionsDiscarded, PageContext, Purchase, Target,
    TrackingParams, Visitor,
};
use alpes_contracts::{EventMetadata, Timestamp};
use alpes_eventstore::{EventStore, NewCommit, StoreError, StoredEvent, retry_on_conflict};
use alpes_runtime::trace::TraceContext;
use chrono::{SubsecRound, Utc};

use crate::domain::{self, DomainError, Interaction, InteractionEvent, InteractionState, Status};

/// Conflicting writers retry this many times before giving up.
const ATTEMPTS: u32 = 5;

/// Why a use case failed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Invalid(#[from] DomainError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored data does not read back: {0}")]
    Corrupt(String),
    /// A compensation names interactions this service never registered: it can never apply.
    #[error("none of the interactions {0:?} is known here")]
    UnknownInteractions(Vec<String>),
}

/// An interaction as the HTTP API receives it.
#[derive(Debug, Clone)]
pub struct NewInteraction {
    pub kind: InteractionKind,
    /// When it happened; now when absent.
    pub interacted_at: Option<Timestamp>,
    pub visitor: Visitor,
    pub tracking: TrackingParams,
    pub target: Target,
    pub context: PageContext,
    pub purchase: Option<Purchase>,
}

/// What tracking an interaction produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracked {
    pub interaction_id: String,
    /// For a purchase: the saga every later event of this sale carries.
    pub saga_id: Option<String>,
}

/// The tracking service's use cases over an event store.
#[derive(Clone)]
pub struct Tracking<S> {
    store: S,
}

fn stream_of(interaction_id: &str) -> String {
    format!("interaction-{interaction_id}")
}

impl<S: EventStore> Tracking<S> {
    pub fn new(store: S) -> Self {
        Self { store }
    }

    /// Registers an interaction and queues its `InteractionTracked`; a purchase opens a saga.
    pub async fn track(
        &self,
        new: NewInteraction,
        trace: &TraceContext,
    ) -> Result<Tracked, AppError> {
        let now = Utc::now().trunc_subsecs(6);
        let interaction_id = uuid::Uuid::now_v7().to_string();
        let saga_id =
            (new.kind == InteractionKind::Purchase).then(|| uuid::Uuid::now_v7().to_string());
        let interaction = Interaction {
            interaction_id: interaction_id.clone(),
            kind: new.kind,
            interacted_at: new.interacted_at.map_or(now, |t| t.trunc_subsecs(6)),
            visitor: new.visitor,
            tracking: new.tracking,
            target: new.target,
            context: new.context,
            purchase: new.purchase,
            saga_id: saga_id.clone(),
        };
        let events = domain::register(&InteractionState::default(), interaction.clone(), now)?;
        let mut metadata = EventMetadata::new::<InteractionTracked>();
        metadata.saga_id = saga_id.clone();
        metadata.traceparent = Some(trace.traceparent.clone());
        metadata.tracestate = trace.tracestate.clone();
        let tracked = InteractionTracked {
            metadata,
            interaction_id: interaction.interaction_id,
            kind: interaction.kind,
            interacted_at: interaction.interacted_at,
            visitor: interaction.visitor,
            tracking: interaction.tracking,
            target: interaction.target,
            context: interaction.context,
            purchase: interaction.purchase,
        };
        self.store
            .append(NewCommit {
                stream: stream_of(&interaction_id),
                expected_version: 0,
                events: stored(&events)?,
                outbox: vec![outgoing(&tracked)?],
                handled: None,
            })
            .await?;
        Ok(Tracked {
            interaction_id,
            saga_id,
        })
    }

    /// The interaction and whether it still counts, if it exists.
    pub async fn interaction(&self, id: &str) -> Result<Option<(Interaction, Status)>, AppError> {
        let (_, state) = self.load(id).await?;
        Ok(state.interaction.zip(state.status))
    }

    /// Compensation: discards every interaction of a reverted journey, then queues one
    /// `InteractionsDiscarded`. Redeliveries and repeated reverts of the same journey change
    /// nothing and publish nothing again. Returns how many interactions were discarded now.
    pub async fn discard_journey(&self, reverted: &AttributionReverted) -> Result<usize, AppError> {
        let message_id = &reverted.metadata.event_id;
        let mut discarded = 0;
        let mut known = 0;
        let mut visitor_id = None;
        for id in &reverted.interaction_ids {
            let (changed, visitor) = retry_on_conflict(ATTEMPTS, || async {
                let (stream, state) = self.load(id).await.map_err(into_store_error)?;
                let visitor = state
                    .interaction
                    .as_ref()
                    .map(|i| i.visitor.anonymous_id.clone());
                let events = domain::discard(&state, &reverted.reason);
                if events.is_empty() {
                    return Ok((false, visitor));
                }
                self.store
                    .append(NewCommit {
                        expected_version: stream.version(),
                        stream: stream.name,
                        events: stored(&events).map_err(into_store_error)?,
                        outbox: Vec::new(),
                        handled: Some(message_id.clone()),
                    })
                    .await?;
                Ok((true, visitor))
            })
            .await?;
            discarded += usize::from(changed);
            known += usize::from(visitor.is_some());
            visitor_id = visitor_id.or(visitor);
        }

        if known == 0 {
            return Err(AppError::UnknownInteractions(
                reverted.interaction_ids.clone(),
            ));
        }
        let summary = InteractionsDiscarded {
            metadata: EventMetadata::caused_by::<InteractionsDiscarded>(&reverted.metadata),
            visitor_id: visitor_id.unwrap_or_default(),
            interaction_ids: reverted.interaction_ids.clone(),
            reason: reverted.reason.clone(),
        };
        let outbox = vec![outgoing(&summary)?];
        let journey_stream = format!("journey-discard-{}", reverted.journey_id);
        retry_on_conflict(ATTEMPTS, || async {
            let stream = self.store.load(&journey_stream).await?;
            if stream.version() > 0 {
                return Ok(()); // this journey's discarding was already announced
            }
            self.store
                .append(NewCommit {
                    stream: stream.name,
                    expected_version: 0,
                    events: Vec::new(),
                    outbox: outbox.clone(),
                    handled: Some(message_id.clone()),
                })
                .await
                .map(|_| ())
        })
        .await?;
        Ok(discarded)
    }

    async fn load(
        &self,
        id: &str,
    ) -> Result<(alpes_eventstore::Stream, InteractionState), AppError> {
        let stream = self.store.load(&stream_of(id)).await?;
        let mut state = InteractionState::default();
        for event in stream.events() {
            let event: InteractionEvent = event
                .decode()
                .map_err(|e| AppError::Corrupt(format!("{}: {e}", stream.name)))?;
            state.apply(&event);
        }
        Ok((stream, state))
    }
}

fn stored(events: &[InteractionEvent]) -> Result<Vec<StoredEvent>, AppError> {
    events
        .iter()
        .map(|e| {
            let kind = match e {
                InteractionEvent::Registered { .. } => "Registered",
                InteractionEvent::Discarded { .. } => "Discarded",
            };
            StoredEvent::new(kind, e).map_err(|e| AppError::Corrupt(e.to_string()))
        })
        .collect()
}

fn outgoing<E: alpes_contracts::Event>(event: &E) -> Result<Outgoing, AppError> {
    Outgoing::event(event).map_err(|e| AppError::Corrupt(e.to_string()))
}

fn into_store_error(e: AppError) -> StoreError {
    match e {
        AppError::Store(e) => e,
        other => StoreError::Corrupt(other.to_string()),
    }
}
