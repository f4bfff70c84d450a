//! Events the attribution service produces: conversions attributed, rejected and reverted.

use serde::{Deserialize, Serialize};

use crate::event::{impl_event, saga_key};
use crate::limits::{At, DETAIL, ID, Invalid, Validate};
use crate::{EventMetadata, Money};

/// How a conversion is credited to the touchpoints of its journey; chosen per campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AttributionModel {
    /// All credit to the last touchpoint (the default).
    LastTouch,
    /// All credit to the first touchpoint.
    FirstTouch,
    /// Equal credit to every touchpoint.
    Linear,
    /// 40% to the first, 40% to the last, 20% shared by those in between.
    PositionBased,
    /// Credit halving for every 7 days before the conversion.
    TimeDecay,
}

/// The share of a conversion credited to one touchpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credit {
    /// The credited touchpoint.
    pub interaction_id: String,
    /// The partner the touchpoint came through.
    pub partner_id: String,
    /// The campaign of the touchpoint, if it had one.
    pub campaign_id: Option<String>,
    /// Parts per million; the credits' weights of a conversion sum to 1_000_000.
    pub weight_ppm: i32,
    /// The part of the sale's amount this credit stands for.
    pub amount: Money,
}

/// A purchase was attributed to the touchpoints of the visitor's journey.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversionAttributed {
    pub metadata: EventMetadata,
    /// The journey the purchase converted.
    pub journey_id: String,
    /// The purchase interaction.
    pub interaction_id: String,
    /// The shop's order id.
    pub order_id: String,
    /// The campaign the conversion is attributed to.
    pub campaign_id: String,
    /// The sale's amount.
    pub amount: Money,
    /// The model the credits were computed with.
    pub model: AttributionModel,
    /// The credited touchpoints.
    pub credits: Vec<Credit>,
    /// Fraud score 0..100.
    pub fraud_score: i32,
}
impl_event!(ConversionAttributed, "attribution", |e| saga_key(
    &e.metadata
));

/// Why a purchase could not be attributed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConversionRejectionReason {
    /// No touchpoint of the journey can be credited.
    NoEligibleTouchpoint,
    /// The campaign is not known.
    CampaignUnknown,
    /// The campaign is not active.
    CampaignInactive,
    /// The fraud score reached the campaign's threshold.
    FraudSuspected,
}

/// A purchase could not be attributed; its saga ends REJECTED.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversionRejected {
    pub metadata: EventMetadata,
    /// The visitor's journey, if there was one.
    pub journey_id: Option<String>,
    /// The purchase interaction.
    pub interaction_id: String,
    /// The shop's order id.
    pub order_id: String,
    /// The campaign, if one could be determined.
    pub campaign_id: Option<String>,
    /// Why the purchase was rejected.
    pub reason: ConversionRejectionReason,
    /// Human-readable detail of the reason.
    pub detail: String,
    /// Fraud score 0..100.
    pub fraud_score: i32,
}
impl_event!(ConversionRejected, "attribution", |e| saga_key(&e.metadata));

/// A compensated saga's attribution was undone and its journey REVERTED.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributionReverted {
    pub metadata: EventMetadata,
    /// The reverted journey.
    pub journey_id: String,
    /// Every interaction of the reverted journey, for tracking to discard.
    pub interaction_ids: Vec<String>,
    /// Why it was reverted.
    pub reason: String,
}
impl_event!(AttributionReverted, "attribution", |e| saga_key(
    &e.metadata
));

impl Validate for Credit {
    fn validate_at(&self, at: &str) -> Result<(), Invalid> {
        let at = At(at);
        at.check("interaction_id", ID, &self.interaction_id)?;
        at.check("partner_id", ID, &self.partner_id)?;
        at.check_opt("campaign_id", ID, &self.campaign_id)?;
        at.nested("amount", &self.amount)
    }
}

impl Validate for ConversionAttributed {
    fn validate_at(&self, at: &str) -> Result<(), Invalid> {
        let at = At(at);
        at.nested("metadata", &self.metadata)?;
        at.check("journey_id", ID, &self.journey_id)?;
        at.check("interaction_id", ID, &self.interaction_id)?;
        at.check("order_id", ID, &self.order_id)?;
        at.check("campaign_id", ID, &self.campaign_id)?;
        at.nested("amount", &self.amount)?;
        at.nested_each("credits", &self.credits)
    }
}

impl Validate for ConversionRejected {
    fn validate_at(&self, at: &str) -> Result<(), Invalid> {
        let at = At(at);
        at.nested("metadata", &self.metadata)?;
        at.check_opt("journey_id", ID, &self.journey_id)?;
        at.check("interaction_id", ID, &self.interaction_id)?;
        at.check("order_id", ID, &self.order_id)?;
        at.check_opt("campaign_id", ID, &self.campaign_id)?;
        at.check("detail", DETAIL, &self.detail)
    }
}

impl Validate for AttributionReverted {
    fn validate_at(&self, at: &str) -> Result<(), Invalid> {
        let at = At(at);
        at.nested("metadata", &self.metadata)?;
        at.check("journey_id", ID, &self.journey_id)?;
        at.check_each("interaction_ids", ID, &self.interaction_ids)?;
        at.check("reason", DETAIL, &self.reason)
    }
}
