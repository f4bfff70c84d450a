//! The campaign use cases: load a campaign's stream, decide, append the facts together with
//! the campaign events attribution and commission rely on (one document: the outbox).

use std::collections::BTreeMap;

use alpes_bus::Outgoing;
use alpes_contracts::EventMetadata;
use alpes_contracts::events::commission::CommissionTerms;
use alpes_contracts::events::marketing::{
    CampaignActivated, CampaignCompleted, CampaignCreated, CampaignPaused,
};
use alpes_eventstore::{
    Commit, EventStore, NewCommit, Projection, StoreError, StoredEvent, Stream, retry_on_conflict,
    scan,
};
use alpes_runtime::trace::TraceContext;
use alpes_sagalog::{Count, Counted};

use crate::read_models::{Legacy, ReadError, ReadModels};

use crate::domain::{
    Aggregate, Campaign, CampaignCommand, CampaignDefinition, CampaignEvent, CampaignState,
    CampaignStatus, DomainError, Transition,
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
    #[error(transparent)]
    ReadModel(#[from] ReadError),
}

/// The campaign use cases over an event store, keeping the read models up to date.
#[derive(Clone)]
pub struct Marketing<S> {
    store: S,
    read: ReadModels,
}

impl<S: EventStore> Marketing<S> {
    /// The use cases over `store`, listing campaigns in `read`.
    pub fn new(store: S, read: ReadModels) -> Self {
        Self { store, read }
    }

    /// The read models: campaign list and statistics.
    pub fn read_models(&self) -> &ReadModels {
        &self.read
    }

    /// Creates a campaign (DRAFT) and announces it; returns its id.
    pub async fn create(
        &self,
        definition: CampaignDefinition,
        trace: &TraceContext,
    ) -> Result<String, AppError> {
        let campaign_id = uuid::Uuid::now_v7().to_string();
        let create = CampaignCommand::Create(Box::new(definition.clone()));
        let events = CampaignState::default().decide(create)?;
        let created = CampaignCreated {
            metadata: traced(EventMetadata::new::<CampaignCreated>(), trace),
            campaign_id: campaign_id.clone(),
            name: definition.name,
            budget: definition.budget,
            terms: CommissionTerms::from(&definition.terms),
            attribution_model: definition.attribution_model.into(),
            attribution_window_days: definition.attribution_window_days,
            fraud_threshold: definition.fraud_threshold,
        };
        self.store
            .append(NewCommit {
                stream: format!("{STREAM_PREFIX}{campaign_id}"),
                expected_version: 0,
                events: StoredEvent::all(&events)?,
                outbox: vec![outgoing(&created)?],
                handled: None,
            })
            .await?;
        let mut state = CampaignState::default();
        events.iter().for_each(|e| state.apply(e));
        if let Some(campaign) = &state.0 {
            self.list(&campaign_id, 1, campaign).await;
        }
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
            let command = CampaignCommand::Transition {
                transition,
                reason: reason.clone(),
            };
            let events = match state.decide(command) {
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
            let version = stream.version() + 1;
            self.store
                .append(NewCommit {
                    expected_version: stream.version(),
                    stream: stream.name,
                    events: StoredEvent::all(&events)?,
                    outbox: vec![announced.map_err(store_error)?],
                    handled: None,
                })
                .await?;
            self.list(campaign_id, version, &campaign).await;
            Ok(Ok(campaign))
        })
        .await?;
        Ok(outcome?)
    }

    /// One campaign, if it exists.
    pub async fn campaign(&self, campaign_id: &str) -> Result<Option<Campaign>, AppError> {
        Ok(self.load(campaign_id).await?.1.0)
    }

    /// Lists campaign `campaign_id` as it is in the store now: how a list entry that missed
    /// its write (a crash right after the change) is repaired, when the change's announcement
    /// is consumed.
    pub async fn relist(&self, campaign_id: &str) -> Result<(), AppError> {
        let (stream, state) = self.load(campaign_id).await?;
        if let Some(campaign) = &state.0 {
            self.read
                .list(campaign_id, stream.version(), campaign)
                .await?;
        }
        Ok(())
    }

    /// What earlier versions kept in this store that the read models now hold: the statistics
    /// facts (`stats-{campaign}-{event id}` streams, one per counted event) and every campaign.
    /// Reads the whole store: for the one-time import ([`ReadModels::import`]).
    pub async fn legacy(&self) -> Result<Legacy, AppError> {
        let mut legacy = LegacyProjection::default();
        scan(&self.store, &mut legacy).await?;
        if let Some(e) = legacy.corrupt {
            return Err(AppError::Corrupt(e));
        }
        // The scan comes in no order: each campaign's commits are folded in version order.
        let mut campaigns = Vec::with_capacity(legacy.campaigns.len());
        for (id, mut commits) in legacy.campaigns {
            commits.sort_by_key(|commit| commit.version);
            let mut state = CampaignState::default();
            for commit in &commits {
                for event in &commit.events {
                    let event = event.read().map_err(|e| AppError::Corrupt(e.to_string()))?;
                    state.apply(&event);
                }
            }
            let version = commits.last().map_or(0, |commit| commit.version);
            if let Some(campaign) = state.0 {
                campaigns.push((id, version, campaign));
            }
        }
        Ok(Legacy {
            counted: legacy.counted,
            campaigns,
        })
    }

    /// Lists a campaign just changed; a failure is repaired when its announcement is consumed.
    async fn list(&self, campaign_id: &str, version: u64, campaign: &Campaign) {
        if let Err(e) = self.read.list(campaign_id, version, campaign).await {
            tracing::warn!(%campaign_id, error = %e, "listing a changed campaign failed; its announcement will");
        }
    }

    async fn load(&self, campaign_id: &str) -> Result<(Stream, CampaignState), AppError> {
        let stream = self
            .store
            .load(&format!("{STREAM_PREFIX}{campaign_id}"))
            .await?;
        let state = CampaignState::from_events(&stream.read::<CampaignEvent>()?);
        Ok((stream, state))
    }
}

/// What earlier versions kept: statistics facts (the event id is the commit's handled message,
/// the campaign what lies between the prefix and it) and each campaign's commits.
#[derive(Default)]
struct LegacyProjection {
    counted: Vec<Counted>,
    campaigns: BTreeMap<String, Vec<Commit>>,
    corrupt: Option<String>,
}

impl Projection for LegacyProjection {
    fn apply(&mut self, commit: &Commit) {
        if let Some(id) = commit.stream.strip_prefix(STREAM_PREFIX) {
            let commits = self.campaigns.entry(id.to_owned()).or_default();
            commits.push(commit.clone());
            return;
        }
        let (Some(rest), Some(event_id)) = (commit.stream.strip_prefix("stats-"), &commit.handled)
        else {
            return;
        };
        let Some(campaign_id) = rest
            .strip_suffix(event_id.as_str())
            .and_then(|c| c.strip_suffix('-'))
        else {
            return;
        };
        for event in &commit.events {
            match event.decode::<Count>() {
                Ok(count) => self.counted.push(Counted {
                    event_id: event_id.clone(),
                    campaign_id: campaign_id.to_owned(),
                    count,
                }),
                Err(e) => self.corrupt = Some(format!("{}: {e}", commit.stream)),
            }
        }
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

fn outgoing<E: alpes_contracts::Event>(event: &E) -> Result<Outgoing, AppError> {
    Outgoing::event(event).map_err(|e| AppError::Corrupt(e.to_string()))
}

fn store_error(e: AppError) -> StoreError {
    match e {
        AppError::Store(e) => e,
        other => StoreError::Corrupt(other.to_string()),
    }
}
