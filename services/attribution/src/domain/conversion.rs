//! What a purchase did to a journey, and what a compensation undid: the payloads of the
//! journey's outcome events, and their translation into the integration events other services
//! consume.
//!
//! The payloads are the domain's own (stored as JSON in the journey's stream) so the stored
//! history does not move when a contract gains a field; `to_contract` is the one place where
//! they meet the contracts, given the ids and metadata only the application knows.

use alpes_contracts::events::attribution::{
    AttributionReverted, ConversionAttributed, ConversionRejected, ConversionRejectionReason,
    Credit as ContractCredit,
};
use alpes_contracts::{EventMetadata, Money, Timestamp};
use serde::{Deserialize, Serialize};

use super::Model;

/// The share of a conversion credited to one touchpoint, in the sale's currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credit {
    /// The credited touchpoint.
    pub interaction_id: String,
    /// The partner the touchpoint came through.
    pub partner_id: String,
    /// The campaign of the touchpoint, if it had one.
    pub campaign_id: Option<String>,
    /// Parts per million of the conversion; a conversion's credits sum to 1_000_000.
    pub weight_ppm: u32,
    /// The part of the sale's amount, in its minor units; a conversion's credits sum to it.
    pub amount_minor: i64,
}

/// A purchase attributed to the touchpoints of its journey.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribution {
    /// The purchase interaction.
    pub purchase_interaction_id: String,
    /// The shop's order id.
    pub order_id: String,
    /// The campaign the conversion is attributed to.
    pub campaign_id: String,
    /// The sale's amount.
    pub amount: Money,
    /// When the visitor bought.
    pub purchased_at: Timestamp,
    /// The model the credits were computed with.
    pub model: Model,
    /// The credited touchpoints, oldest first; only those with a weight above zero.
    pub credits: Vec<Credit>,
    /// Fraud score 0..=100, below the campaign's threshold.
    pub fraud_score: u8,
}

impl Attribution {
    /// The `ConversionAttributed` integration event of journey `journey_id`.
    pub fn to_contract(&self, journey_id: &str, metadata: EventMetadata) -> ConversionAttributed {
        ConversionAttributed {
            metadata,
            journey_id: journey_id.to_owned(),
            interaction_id: self.purchase_interaction_id.clone(),
            order_id: self.order_id.clone(),
            campaign_id: self.campaign_id.clone(),
            amount: self.amount.clone(),
            model: self.model.into(),
            credits: self
                .credits
                .iter()
                .map(|c| ContractCredit {
                    interaction_id: c.interaction_id.clone(),
                    partner_id: c.partner_id.clone(),
                    campaign_id: c.campaign_id.clone(),
                    weight_ppm: c.weight_ppm as i32,
                    amount: Money::new(c.amount_minor, self.amount.currency.clone()),
                })
                .collect(),
            fraud_score: i32::from(self.fraud_score),
        }
    }
}

/// Why a purchase could not be attributed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RejectionReason {
    /// No touchpoint names a partner inside the campaign's window.
    NoEligibleTouchpoint,
    /// The purchase and its touchpoints name no campaign, or attribution does not know it.
    CampaignUnknown,
    /// The campaign is a draft, paused or completed.
    CampaignInactive,
    /// The fraud score reached the campaign's threshold.
    FraudSuspected,
    /// The purchase is in another currency than its campaign.
    CurrencyMismatch,
}

impl From<RejectionReason> for ConversionRejectionReason {
    fn from(reason: RejectionReason) -> Self {
        match reason {
            RejectionReason::NoEligibleTouchpoint => Self::NoEligibleTouchpoint,
            RejectionReason::CampaignUnknown => Self::CampaignUnknown,
            RejectionReason::CampaignInactive => Self::CampaignInactive,
            RejectionReason::FraudSuspected => Self::FraudSuspected,
            // Version 1 of the contract has no symbol for it, and a new symbol would break its
            // readers: no campaign known here pays in the purchase's currency, and `detail`
            // names both currencies.
            RejectionReason::CurrencyMismatch => Self::CampaignUnknown,
        }
    }
}

/// A purchase that converted its journey but earned no one anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// The purchase interaction.
    pub purchase_interaction_id: String,
    /// The shop's order id.
    pub order_id: String,
    /// The campaign, if one could be determined.
    pub campaign_id: Option<String>,
    /// When the visitor bought.
    pub purchased_at: Timestamp,
    /// Why it was rejected.
    pub reason: RejectionReason,
    /// Human-readable detail of the reason.
    pub detail: String,
    /// Fraud score 0..=100.
    pub fraud_score: u8,
}

impl Rejection {
    /// The `ConversionRejected` integration event of journey `journey_id`.
    pub fn to_contract(&self, journey_id: &str, metadata: EventMetadata) -> ConversionRejected {
        ConversionRejected {
            metadata,
            journey_id: Some(journey_id.to_owned()),
            interaction_id: self.purchase_interaction_id.clone(),
            order_id: self.order_id.clone(),
            campaign_id: self.campaign_id.clone(),
            reason: self.reason.into(),
            detail: self.detail.clone(),
            fraud_score: i32::from(self.fraud_score),
        }
    }
}

/// A converted journey undone by a saga's compensation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reversal {
    /// Every interaction of the journey, touchpoints in the order recorded, then the purchase.
    pub interaction_ids: Vec<String>,
    /// Why it was reverted.
    pub reason: String,
}

impl Reversal {
    /// The `AttributionReverted` integration event of journey `journey_id`.
    pub fn to_contract(&self, journey_id: &str, metadata: EventMetadata) -> AttributionReverted {
        AttributionReverted {
            metadata,
            journey_id: journey_id.to_owned(),
            interaction_ids: self.interaction_ids.clone(),
            reason: self.reason.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    fn metadata() -> EventMetadata {
        EventMetadata::new::<ConversionAttributed>()
    }

    #[test]
    fn an_attribution_becomes_conversion_attributed_with_money_in_the_sale_currency() {
        let attribution = Attribution {
            purchase_interaction_id: "p".into(),
            order_id: "o-1".into(),
            campaign_id: "spring".into(),
            amount: Money::new(100, "EUR"),
            purchased_at: Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap(),
            model: Model::Linear,
            credits: vec![Credit {
                interaction_id: "t".into(),
                partner_id: "ada".into(),
                campaign_id: None,
                weight_ppm: 1_000_000,
                amount_minor: 100,
            }],
            fraud_score: 30,
        };
        let event = attribution.to_contract("j-1", metadata());
        assert_eq!(event.journey_id, "j-1");
        assert_eq!(event.interaction_id, "p");
        assert_eq!(event.credits[0].weight_ppm, 1_000_000);
        assert_eq!(event.credits[0].amount, Money::new(100, "EUR"));
        assert_eq!(event.fraud_score, 30);
    }

    #[test]
    fn every_rejection_reason_has_its_contract_reason() {
        let pairs = [
            (
                RejectionReason::NoEligibleTouchpoint,
                ConversionRejectionReason::NoEligibleTouchpoint,
            ),
            (
                RejectionReason::CampaignUnknown,
                ConversionRejectionReason::CampaignUnknown,
            ),
            (
                RejectionReason::CampaignInactive,
                ConversionRejectionReason::CampaignInactive,
            ),
            (
                RejectionReason::FraudSuspected,
                ConversionRejectionReason::FraudSuspected,
            ),
            (
                RejectionReason::CurrencyMismatch,
                ConversionRejectionReason::CampaignUnknown,
            ),
        ];
        for (ours, theirs) in pairs {
            assert_eq!(ConversionRejectionReason::from(ours), theirs);
        }
    }
}
