//! The read side: a journey, a saga's outcome and a campaign as the HTTP API shows them,
//! folded from the same streams the use cases write.
//!
//! An outcome shows the id of the integration event that announced it, read from the outbox
//! of the commit that stored it, so an operator can follow it onto the bus.

use alpes_bus::{Outgoing, property};
use alpes_eventstore::EventStore;
use serde::Serialize;

use super::journeys::{JourneyHistory, journey_stream};
use super::{AppError, Attribution};
use crate::domain::{
    self, CampaignSettings, CampaignStatus, JourneyEvent, JourneyStatus, Rejection, Reversal,
    Touchpoint,
};

/// A fact of a journey with the id of the event that announced it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Published<T> {
    /// The announcing integration event's id.
    pub event_id: Option<String>,
    /// The fact.
    #[serde(flatten)]
    pub fact: T,
}

/// A journey: its touchpoints, and what its purchase and compensation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JourneyView {
    /// Id of the journey.
    pub journey_id: String,
    /// The visitor's anonymous id.
    pub visitor_id: Option<String>,
    /// OPEN, CONVERTED or REVERTED.
    pub status: JourneyStatus,
    /// Views and clicks, in the order recorded.
    pub touchpoints: Vec<Touchpoint>,
    /// The purchase that converted it, once converted.
    pub purchase_interaction_id: Option<String>,
    /// Touchpoints, then the purchase.
    pub interaction_ids: Vec<String>,
    /// How its purchase was credited, when attributed.
    pub attribution: Option<Published<domain::Attribution>>,
    /// Why its purchase was not attributed, when rejected.
    pub rejection: Option<Published<Rejection>>,
    /// The undoing of its conversion, when its saga was compensated.
    pub reversal: Option<Published<Reversal>>,
}

/// What a saga's purchase became.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SagaOutcome {
    /// Only the compensation is known so far.
    AwaitingPurchase,
    /// Credited to the touchpoints of its journey.
    Attributed,
    /// Not attributed; see the rejection's reason.
    Rejected,
}

/// A saga as attribution saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SagaView {
    /// Id of the saga.
    pub saga_id: String,
    /// The journey its purchase converted.
    pub journey_id: Option<String>,
    /// What its purchase became.
    pub outcome: SagaOutcome,
    /// Credits, model and fraud score, when attributed.
    pub attribution: Option<Published<domain::Attribution>>,
    /// Reason and fraud score, when rejected.
    pub rejection: Option<Published<Rejection>>,
    /// Whether a compensation of the saga arrived.
    pub compensated: bool,
    /// Whether the journey was reverted.
    pub reverted: bool,
    /// Reason and reverted interactions, once reverted.
    pub reversal: Option<Published<Reversal>>,
}

/// A campaign's settings as attribution mirrors them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CampaignView {
    /// Id of the campaign.
    pub campaign_id: String,
    /// DRAFT until a status fact arrives.
    pub status: CampaignStatus,
    /// `None` until its `CampaignCreated` arrives (status facts may come first).
    pub settings: Option<CampaignSettings>,
}

impl<S: EventStore> Attribution<S> {
    /// Journey `journey_id`, if it has any fact.
    pub async fn journey(&self, journey_id: &str) -> Result<Option<JourneyView>, AppError> {
        let stream = self.store.load(&journey_stream(journey_id)).await?;
        if stream.version() == 0 {
            return Ok(None);
        }
        let history = JourneyHistory::of(&stream)?;
        let journey = history.journey();
        let mut view = JourneyView {
            journey_id: journey_id.to_owned(),
            visitor_id: history.visitor_id.clone(),
            status: journey.status(),
            touchpoints: journey.touchpoints().to_vec(),
            purchase_interaction_id: journey.purchase_interaction_id().map(str::to_owned),
            interaction_ids: journey.interaction_ids(),
            attribution: None,
            rejection: None,
            reversal: None,
        };
        for (event, outbox) in history.events {
            match event {
                JourneyEvent::TouchpointRecorded(_) => {}
                JourneyEvent::Attributed(fact) => {
                    view.attribution = Some(published(&outbox, "ConversionAttributed", fact));
                }
                JourneyEvent::Rejected(fact) => {
                    view.rejection = Some(published(&outbox, "ConversionRejected", fact));
                }
                JourneyEvent::Reverted(fact) => {
                    view.reversal = Some(published(&outbox, "AttributionReverted", fact));
                }
            }
        }
        Ok(Some(view))
    }

    /// Saga `saga_id`, if its purchase or its compensation arrived.
    pub async fn saga(&self, saga_id: &str) -> Result<Option<SagaView>, AppError> {
        let (stream, saga) = self.load_saga(saga_id).await?;
        if stream.version() == 0 {
            return Ok(None);
        }
        let journey = match &saga.journey_id {
            Some(id) => self.journey(id).await?,
            None => None,
        };
        let (attribution, rejection, reversal) = journey
            .map(|j| (j.attribution, j.rejection, j.reversal))
            .unwrap_or_default();
        let outcome = match (&attribution, &rejection) {
            (Some(_), _) => SagaOutcome::Attributed,
            (None, Some(_)) => SagaOutcome::Rejected,
            (None, None) => SagaOutcome::AwaitingPurchase,
        };
        Ok(Some(SagaView {
            saga_id: saga_id.to_owned(),
            journey_id: saga.journey_id,
            outcome,
            attribution,
            rejection,
            compensated: saga.compensation.is_some(),
            reverted: reversal.is_some(),
            reversal,
        }))
    }

    /// Campaign `campaign_id`, if any of its facts arrived.
    pub async fn campaign_view(&self, campaign_id: &str) -> Result<Option<CampaignView>, AppError> {
        Ok(self.campaign(campaign_id).await?.map(|c| CampaignView {
            campaign_id: campaign_id.to_owned(),
            status: c.status(),
            settings: c.settings(),
        }))
    }
}

fn published<T>(outbox: &[Outgoing], event_type: &str, fact: T) -> Published<T> {
    let event_id = outbox
        .iter()
        .find(|o| o.event_type.as_deref() == Some(event_type))
        .and_then(|o| o.properties.get(property::EVENT_ID).cloned());
    Published { event_id, fact }
}
