//! Mirroring marketing's campaign facts into `campaign-{id}` streams, and reading them back.
//!
//! A fact is handled at most once: a redelivered message (same event id) is recognised by
//! [`Stream::has_handled`](alpes_eventstore::Stream::has_handled), and a new message saying
//! what is already known decides no events. Facts may arrive in any order; the `Campaign`
//! aggregate decides what a late one still changes.

use alpes_contracts::EventMetadata;
use alpes_eventstore::{EventStore, NewCommit, StoredEvent, Stream};

use super::{AppError, Attribution, retrying};
use crate::domain::{Aggregate, Campaign, CampaignCommand, CampaignEvent};

/// The stream of campaign `campaign_id`.
fn campaign_stream(campaign_id: &str) -> String {
    format!("campaign-{campaign_id}")
}

impl<S: EventStore> Attribution<S> {
    /// Records one campaign fact (created, activated, paused, completed) carried by the message
    /// with `metadata`. Returns whether it changed what attribution knows of the campaign.
    pub async fn record_campaign_fact(
        &self,
        campaign_id: &str,
        metadata: &EventMetadata,
        command: CampaignCommand,
    ) -> Result<bool, AppError> {
        retrying(|| async {
            let (stream, campaign) = self.load_campaign(campaign_id).await?;
            if stream.has_handled(&metadata.event_id) {
                return Ok(false);
            }
            let events = campaign.decide(command.clone())?;
            if events.is_empty() {
                return Ok(false);
            }
            self.store
                .append(NewCommit {
                    expected_version: stream.version(),
                    stream: stream.name,
                    events: StoredEvent::all(&events)?,
                    outbox: Vec::new(),
                    handled: Some(metadata.event_id.clone()),
                })
                .await?;
            Ok(true)
        })
        .await
    }

    /// What attribution knows of campaign `campaign_id`, if anything.
    pub async fn campaign(&self, campaign_id: &str) -> Result<Option<Campaign>, AppError> {
        let (stream, campaign) = self.load_campaign(campaign_id).await?;
        Ok((stream.version() > 0).then_some(campaign))
    }

    /// [`Attribution::campaign`] as the database has it now, for a refusal that appends nothing
    /// to the campaign (see `EventStore::load_latest`).
    pub(super) async fn campaign_latest(
        &self,
        campaign_id: &str,
    ) -> Result<Option<Campaign>, AppError> {
        let stream = self
            .store
            .load_latest(&campaign_stream(campaign_id))
            .await?;
        let events = stream.read::<CampaignEvent>()?;
        Ok((stream.version() > 0).then(|| Campaign::from_events(&events)))
    }

    async fn load_campaign(&self, campaign_id: &str) -> Result<(Stream, Campaign), AppError> {
        let stream = self.store.load(&campaign_stream(campaign_id)).await?;
        let events = stream.read::<CampaignEvent>()?;
        Ok((stream, Campaign::from_events(&events)))
    }
}
