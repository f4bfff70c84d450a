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

use crate::domain::{
    self, Aggregate, DomainError, Interaction, InteractionCommand, InteractionEvent,
    InteractionState, Status,
};

/// Conflicting writers retry this many times before giving up.
const ATTEMPTS: u32 = 5;

/// Ids of interactions, and of the sagas their purchases open, tracked with an idempotency key.
const INTERACTION_KEYS: uuid::Uuid =
    uuid::Uuid::from_u128(0x5a6a_7472_6163_6b00_0000_616c_7065_7303);
const SAGA_KEYS: uuid::Uuid = uuid::Uuid::from_u128(0x5a6a_7472_6163_6b00_0073_6167_6173_7304);

/// Why a use case failed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Invalid(#[from] DomainError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored data does not read back: {0}")]
    Corrupt(String),
    /// The idempotency key names an interaction of another kind, visitor or order.
    #[error("the Idempotency-Key {0:?} already names another interaction")]
    KeyReused(String),
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

/// A purchase's order id, what tells one purchase of a visitor from another.
fn order_of(purchase: Option<&domain::Purchase>) -> Option<String> {
    purchase.map(|p| p.order_id.clone())
}

fn stream_of(interaction_id: &str) -> String {
    format!("interaction-{interaction_id}")
}

impl<S: EventStore> Tracking<S> {
    pub fn new(store: S) -> Self {
        Self { store }
    }

    /// Registers an interaction and queues its `InteractionTracked`; a purchase opens a saga.
    ///
    /// With an idempotency `key` (the client's name for this interaction, for its visitor), the
    /// interaction's and the saga's ids derive from the visitor and the key, so the same request
    /// again (a client retrying after a broken connection or a 503) appends nothing and answers
    /// what the first one recorded: its stream exists, the append conflicts, and the stored
    /// interaction is read back. A key reused for another kind of interaction or another order
    /// is refused ([`AppError::KeyReused`]).
    pub async fn track(
        &self,
        new: NewInteraction,
        key: Option<&str>,
        trace: &TraceContext,
    ) -> Result<Tracked, AppError> {
        let now = Utc::now().trunc_subsecs(6);
        let scoped = key.map(|key| format!("{}\n{key}", new.visitor.anonymous_id));
        let id = |namespace: &uuid::Uuid| match &scoped {
            Some(name) => uuid::Uuid::new_v5(namespace, name.as_bytes()).to_string(),
            None => uuid::Uuid::now_v7().to_string(),
        };
        let interaction_id = id(&INTERACTION_KEYS);
        let saga_id = (new.kind == InteractionKind::Purchase).then(|| id(&SAGA_KEYS));
        let interaction = Interaction {
            interaction_id: interaction_id.clone(),
            kind: new.kind.into(),
            interacted_at: new.interacted_at.map_or(now, |t| t.trunc_subsecs(6)),
            visitor: new.visitor.into(),
            tracking: new.tracking.into(),
            target: new.target.into(),
            context: new.context.into(),
            purchase: new.purchase.map(Into::into),
            saga_id: saga_id.clone(),
        };
        let asked = (interaction.kind, order_of(interaction.purchase.as_ref()));
        let register = InteractionCommand::Register {
            interaction: Box::new(interaction.clone()),
            now,
        };
        let events = InteractionState::default().decide(register)?;
        let mut metadata = EventMetadata::new::<InteractionTracked>();
        metadata.saga_id = saga_id.clone();
        metadata.traceparent = Some(trace.traceparent.clone());
        metadata.tracestate = trace.tracestate.clone();
        let tracked = interaction.announced(metadata);
        let appended = self
            .store
            .append(NewCommit {
                stream: stream_of(&interaction_id),
                expected_version: 0,
                events: StoredEvent::all(&events)?,
                outbox: vec![outgoing(&tracked)?],
                handled: None,
            })
            .await;
        match appended {
            Ok(_) => Ok(Tracked {
                interaction_id,
                saga_id,
            }),
            Err(StoreError::Conflict { .. }) if key.is_some() => {
                let (_, state) = self.load(&interaction_id).await?;
                let first = state.interaction.ok_or_else(|| {
                    AppError::Corrupt(format!("interaction {interaction_id} has no registration"))
                })?;
                if (first.kind, order_of(first.purchase.as_ref())) != asked {
                    return Err(AppError::KeyReused(key.unwrap_or_default().to_owned()));
                }
                Ok(Tracked {
                    interaction_id,
                    saga_id: first.saga_id,
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The interaction and whether it still counts, if it exists.
    pub async fn interaction(&self, id: &str) -> Result<Option<(Interaction, Status)>, AppError> {
        let (_, state) = self.load(id).await?;
        Ok(state.interaction.zip(state.status))
    }

    /// Compensation: discards every interaction of a reverted journey, then queues one
    /// `InteractionsDiscarded`, the saga's last step. Redeliveries and repeated reverts of the
    /// same journey change nothing and publish nothing again. A revert none of whose
    /// interactions is known here (published straight to the topic, or a revert with nothing to
    /// undo) discards nothing and is answered all the same, with no interaction named, so the
    /// saga always ends. Returns how many interactions were discarded now.
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
                let discard = InteractionCommand::Discard {
                    reason: reverted.reason.clone(),
                };
                let events = state
                    .decide(discard)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                if events.is_empty() {
                    return Ok((false, visitor));
                }
                self.store
                    .append(NewCommit {
                        expected_version: stream.version(),
                        stream: stream.name,
                        events: StoredEvent::all(&events)?,
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

        // Interactions published straight to the topic, or a journey attribution reverted with
        // nothing in it, are not known here: there is nothing to discard, but the saga's
        // compensation still ends here, so the answer is announced all the same, naming no
        // interaction.
        let interaction_ids = if known == 0 {
            Vec::new()
        } else {
            reverted.interaction_ids.clone()
        };
        let summary = InteractionsDiscarded {
            metadata: EventMetadata::caused_by::<InteractionsDiscarded>(&reverted.metadata),
            visitor_id: visitor_id.unwrap_or_default(),
            interaction_ids,
            reason: reverted.reason.clone(),
        };
        let outbox = vec![outgoing(&summary)?];
        let journey_stream = announcement_stream(reverted);
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
        let state = InteractionState::from_events(&stream.read::<InteractionEvent>()?);
        Ok((stream, state))
    }
}

/// The stream whose first commit announces the discarding for `reverted`, once: one per
/// journey, or, for a revert that names no journey (attribution had nothing to undo), one per
/// saga.
fn announcement_stream(reverted: &AttributionReverted) -> String {
    match (
        reverted.journey_id.trim(),
        reverted.metadata.saga_id.as_deref(),
    ) {
        ("", Some(saga_id)) => format!("saga-discard-{saga_id}"),
        ("", None) => format!("revert-discard-{}", reverted.metadata.event_id),
        (journey_id, _) => format!("journey-discard-{journey_id}"),
    }
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

#[cfg(test)]
mod tests {
    use alpes_contracts::{Event, codec};
    use alpes_eventstore::MemoryStore;

    use super::*;

    /// Every `E` queued in any outbox, oldest first.
    async fn queued<E: Event>(store: &MemoryStore) -> Vec<E> {
        store
            .unpublished(usize::MAX)
            .await
            .unwrap()
            .iter()
            .flat_map(|c| &c.outbox)
            .filter(|o| o.event_type.as_deref() == Some(E::event_type().name))
            .map(|o| codec::decode(&o.payload).unwrap())
            .collect()
    }

    fn reverted(journey_id: &str, interaction_ids: &[&str]) -> AttributionReverted {
        AttributionReverted {
            metadata: EventMetadata::new::<AttributionReverted>().in_saga("saga-1"),
            journey_id: journey_id.into(),
            interaction_ids: interaction_ids.iter().map(|&i| i.to_owned()).collect(),
            reason: "fraud reported".into(),
        }
    }

    #[tokio::test]
    async fn a_revert_of_interactions_never_tracked_here_is_answered_once_naming_none() {
        let store = MemoryStore::new();
        let tracking = Tracking::new(store.clone());
        let revert = reverted("journey-1", &["click-1", "purchase-1"]);

        assert_eq!(tracking.discard_journey(&revert).await.unwrap(), 0);
        assert_eq!(tracking.discard_journey(&revert).await.unwrap(), 0);

        let discarded: Vec<InteractionsDiscarded> = queued(&store).await;
        assert_eq!(discarded.len(), 1, "answered once: {discarded:?}");
        assert_eq!(discarded[0].interaction_ids, Vec::<String>::new());
        assert_eq!(discarded[0].metadata.saga_id.as_deref(), Some("saga-1"));
        assert_eq!(
            discarded[0].metadata.causation_id.as_deref(),
            Some(revert.metadata.event_id.as_str())
        );
    }

    #[tokio::test]
    async fn a_revert_that_names_no_journey_is_answered_once_per_saga() {
        let store = MemoryStore::new();
        let tracking = Tracking::new(store.clone());
        tracking.discard_journey(&reverted("", &[])).await.unwrap();
        tracking.discard_journey(&reverted("", &[])).await.unwrap();
        let discarded: Vec<InteractionsDiscarded> = queued(&store).await;
        assert_eq!(discarded.len(), 1, "answered once: {discarded:?}");
    }
}
