//! The campaign use cases: load a campaign's stream, decide, append the facts together with
//! the campaign events attribution and commission rely on (one document: the outbox).

use alpes_bus::Outgoing;
use alpes_contracts::EventMetadata;
use alpes_contracts::events::marketing::{
    CampaignActivated, CampaignCompleted, CampaignCreated, CampaignPaused,
};
use alpes_eventstore::{
    Commit, EventStore, NewCommit, Projection, StoreError, StoredEvent, Stream, rebuild,
    retry_on_conflict,
};
use alpes_runtime::trace::TraceContext;

use crate::domain::{
    Campaign, CampaignDefinition, CampaignEvent, CampaignState, CampaignStats, CampaignStatus,
    DomainError, Observed, Transition,
};

const ATTEMPTS: u32 = 5;
const STREAM_PREFIX: &str = "campaign-";

/// Why a use case failed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored data does not read back: {0}")]
    Corrupt(String),
}

/// The campaign use cases over an event store.
#[derive(Clone)]
pub struct Marketing<S> {
    store: S,
}

impl<S: EventStore> Marketing<S> {
    pub fn new(store: S) -> Self {
        Self { store }
    }

    /// Creates a campaign (DRAFT) and announces it; returns its id.
    pub async fn create(
        &self,
        definition: CampaignDefinition,
        trace: &TraceContext,
    ) -> Result<String, AppError> {
        let campaign_id = uuid::Uuid::now_v7().to_string();
        let events = CampaignState::default().create(definition.clone())?;
        let created = CampaignCreated {
            metadata: traced(EventMetadata::new::<CampaignCreated>(), trace),
            campaign_id: campaign_id.clone(),
            name: definition.name,
            budget: definition.budget,
            terms: definition.terms,
            attribution_model: definition.attribution_model,
            attribution_window_days: definition.attribution_window_days,
            fraud_threshold: definition.fraud_threshold,
        };
        self.store
            .append(NewCommit {
                stream: format!("{STREAM_PREFIX}{campaign_id}"),
                expected_version: 0,
                events: stored(&events)?,
                outbox: vec![outgoing(&created)?],
                handled: None,
            })
            .await?;
        Ok(campaign_id)
    }

    /// Activates, pauses or completes a campaign and announces the change; asking for the
    /// status it already has changes and announces nothing.
    pub async fn transition(
        &self,
        campaign_id: &str,
        transition: Transition,
        reason: Option<String>,
        trace: &TraceContext,
    ) -> Result<Campaign, AppError> {
        // The store's conflicts are retried; the domain's refusal is the inner result.
        let outcome = retry_on_conflict(ATTEMPTS, || async {
            let (stream, state) = self.load(campaign_id).await.map_err(store_error)?;
            let events = match state.transition(transition, reason.clone()) {
                Ok(events) => events,
                Err(refused) => return Ok(Err(refused)),
            };
            let mut next = state.clone();
            events.iter().for_each(|e| next.apply(e));
            let campaign = next
                .0
                .expect("a campaign that accepted a transition exists");
            if events.is_empty() {
                return Ok(Ok(campaign));
            }
            let announced = announcement(campaign_id, campaign.status, reason.clone(), trace);
            self.store
                .append(NewCommit {
                    expected_version: stream.version(),
                    stream: stream.name,
                    events: stored(&events).map_err(store_error)?,
                    outbox: vec![announced.map_err(store_error)?],
                    handled: None,
                })
                .await?;
            Ok(Ok(campaign))
        })
        .await?;
        Ok(outcome?)
    }

    /// One campaign, if it exists.
    pub async fn campaign(&self, campaign_id: &str) -> Result<Option<Campaign>, AppError> {
        Ok(self.load(campaign_id).await?.1.0)
    }

    /// Every campaign, oldest first: a projection rebuilt from the campaign streams.
    pub async fn campaigns(&self) -> Result<Vec<(String, Campaign)>, AppError> {
        let mut list = CampaignList::default();
        rebuild(&self.store, &mut list, 500, |_| {}).await?;
        list.into_campaigns()
    }

    /// Records, once, a fact another service announced about a campaign: each fact is a
    /// stream of its own named by the announcing event, so a redelivery is a conflict and
    /// changes nothing.
    pub async fn observe(
        &self,
        campaign_id: &str,
        event_id: &str,
        fact: &Observed,
    ) -> Result<(), AppError> {
        let event =
            StoredEvent::new("Observed", fact).map_err(|e| AppError::Corrupt(e.to_string()))?;
        let commit = NewCommit {
            stream: format!("{}{event_id}", stats_prefix(campaign_id)),
            expected_version: 0,
            events: vec![event],
            outbox: Vec::new(),
            handled: Some(event_id.to_owned()),
        };
        match self.store.append(commit).await {
            Ok(_) | Err(StoreError::Conflict { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// A campaign's statistics, folded from every fact recorded about it.
    pub async fn stats(&self, campaign_id: &str) -> Result<CampaignStats, AppError> {
        let mut projection = StatsOf {
            prefix: stats_prefix(campaign_id),
            stats: CampaignStats::default(),
            corrupt: None,
        };
        rebuild(&self.store, &mut projection, 500, |_| {}).await?;
        match projection.corrupt {
            Some(e) => Err(AppError::Corrupt(e)),
            None => Ok(projection.stats),
        }
    }

    async fn load(&self, campaign_id: &str) -> Result<(Stream, CampaignState), AppError> {
        let stream = self
            .store
            .load(&format!("{STREAM_PREFIX}{campaign_id}"))
            .await?;
        let mut state = CampaignState::default();
        for event in stream.events() {
            state.apply(&decode(event)?);
        }
        Ok((stream, state))
    }
}

fn stats_prefix(campaign_id: &str) -> String {
    format!("stats-{campaign_id}-")
}

/// One campaign's statistics, from the facts recorded about it.
struct StatsOf {
    prefix: String,
    stats: CampaignStats,
    corrupt: Option<String>,
}

impl Projection for StatsOf {
    fn apply(&mut self, commit: &Commit) {
        if !commit.stream.starts_with(&self.prefix) {
            return;
        }
        for event in &commit.events {
            match event.decode::<Observed>() {
                Ok(fact) => self.stats.apply(&fact),
                Err(e) => self.corrupt = Some(e.to_string()),
            }
        }
    }
}

/// Campaigns by id, in creation order.
#[derive(Default)]
struct CampaignList {
    order: Vec<String>,
    states: std::collections::HashMap<String, CampaignState>,
    corrupt: Option<String>,
}

impl Projection for CampaignList {
    fn apply(&mut self, commit: &Commit) {
        let Some(id) = commit.stream.strip_prefix(STREAM_PREFIX) else {
            return;
        };
        if !self.states.contains_key(id) {
            self.order.push(id.to_owned());
        }
        let state = self.states.entry(id.to_owned()).or_default();
        for event in &commit.events {
            match decode(event) {
                Ok(event) => state.apply(&event),
                Err(e) => self.corrupt = Some(e.to_string()),
            }
        }
    }
}

impl CampaignList {
    fn into_campaigns(mut self) -> Result<Vec<(String, Campaign)>, AppError> {
        if let Some(e) = self.corrupt {
            return Err(AppError::Corrupt(e));
        }
        Ok(self
            .order
            .into_iter()
            .filter_map(|id| {
                let campaign = self.states.remove(&id)?.0?;
                Some((id, campaign))
            })
            .collect())
    }
}

fn announcement(
    campaign_id: &str,
    status: CampaignStatus,
    reason: Option<String>,
    trace: &TraceContext,
) -> Result<Outgoing, AppError> {
    let id = campaign_id.to_owned();
    match status {
        CampaignStatus::Active => outgoing(&CampaignActivated {
            metadata: traced(EventMetadata::new::<CampaignActivated>(), trace),
            campaign_id: id,
            reason,
        }),
        CampaignStatus::Paused => outgoing(&CampaignPaused {
            metadata: traced(EventMetadata::new::<CampaignPaused>(), trace),
            campaign_id: id,
            reason,
        }),
        CampaignStatus::Completed => outgoing(&CampaignCompleted {
            metadata: traced(EventMetadata::new::<CampaignCompleted>(), trace),
            campaign_id: id,
            reason,
        }),
        CampaignStatus::Draft => Err(AppError::Corrupt(
            "no transition leads back to DRAFT".into(),
        )),
    }
}

fn traced(mut metadata: EventMetadata, trace: &TraceContext) -> EventMetadata {
    metadata.traceparent = Some(trace.traceparent.clone());
    metadata.tracestate = trace.tracestate.clone();
    metadata
}

fn decode(event: &StoredEvent) -> Result<CampaignEvent, AppError> {
    event.decode().map_err(|e| AppError::Corrupt(e.to_string()))
}

fn stored(events: &[CampaignEvent]) -> Result<Vec<StoredEvent>, AppError> {
    events
        .iter()
        .map(|e| {
            let kind = match e {
                CampaignEvent::Created { .. } => "CampaignCreated",
                CampaignEvent::StatusChanged { .. } => "CampaignStatusChanged",
            };
            StoredEvent::new(kind, e).map_err(|e| AppError::Corrupt(e.to_string()))
        })
        .collect()
}

fn outgoing<E: alpes_contracts::Event>(event: &E) -> Result<Outgoing, AppError> {
    Outgoing::event(event).map_err(|e| AppError::Corrupt(e.to_string()))
}

fn store_error(e: AppError) -> StoreError {
    match e {
        AppError::Store(e) => e,
        other => StoreError::Corrupt(other.to_string()),
    }
}
