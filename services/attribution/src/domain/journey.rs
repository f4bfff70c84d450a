//! The journey: one visitor's touchpoints up to the purchase they convert into.
//!
//! A journey is OPEN while it collects views and clicks. A purchase CONVERTS it, whether the
//! purchase is attributed or rejected, and closes it: the visitor's next interaction belongs to
//! a new journey, so no touchpoint is ever credited for two sales. The journey refuses to take
//! it with [`DomainError::JourneyClosed`], the signal for the application to open a new journey.
//! A saga's compensation REVERTS a converted journey and hands back all its interactions, so
//! tracking can discard them.
//!
//! Redelivered messages change nothing: a touchpoint already recorded, a purchase already
//! converted and a reversal already done decide no events.
//!
//! Attributing a purchase checks, in this order, and rejects at the first failure:
//! 1. the campaign — the purchase's, or else that of its latest partner touchpoint — is known;
//! 2. the campaign is ACTIVE;
//! 3. the purchase is in the campaign's currency;
//! 4. the fraud score is below the campaign's threshold;
//! 5. some touchpoint names a partner and lies in the campaign's window before the purchase.
//!
//! Each of these is a business outcome, a rejection the saga ends with. Only a purchase with a
//! negative amount, which tracking never sends, is an invalid command refused with a
//! [`DomainError`].

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{
    Aggregate, Attribution, CampaignSettings, CampaignStatus, Credit, DomainError, DomainEvent,
    FraudAssessment, Purchase, Rejection, RejectionReason, Reversal, Touchpoint, Weights,
};

/// Where a journey is in its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JourneyStatus {
    /// Collecting touchpoints.
    #[default]
    Open,
    /// A purchase closed it.
    Converted,
    /// Its saga was compensated.
    Reverted,
}

impl fmt::Display for JourneyStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Open => "OPEN",
            Self::Converted => "CONVERTED",
            Self::Reverted => "REVERTED",
        })
    }
}

/// What can be asked of a journey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JourneyCommand {
    /// Add a view or click of the visitor.
    RecordTouchpoint(Touchpoint),
    /// Convert the journey with a purchase.
    Convert {
        /// The purchase.
        purchase: Purchase,
        /// The settings of the campaign [`Journey::campaign_for`] names, or `None` when it
        /// names none or attribution does not know it.
        campaign: Option<CampaignSettings>,
    },
    /// Undo the conversion: the saga is compensated.
    Revert {
        /// Why, e.g. the fraud report's reason.
        reason: String,
    },
}

/// What happened to a journey.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum JourneyEvent {
    /// A view or click joined the journey.
    TouchpointRecorded(Touchpoint),
    /// A purchase converted the journey and was attributed.
    Attributed(Attribution),
    /// A purchase converted the journey but could not be attributed.
    Rejected(Rejection),
    /// The conversion was undone.
    Reverted(Reversal),
}

impl DomainEvent for JourneyEvent {
    fn kind(&self) -> &'static str {
        match self {
            Self::TouchpointRecorded(_) => "TouchpointRecorded",
            Self::Attributed(_) => "ConversionAttributed",
            Self::Rejected(_) => "ConversionRejected",
            Self::Reverted(_) => "JourneyReverted",
        }
    }
}

/// One visitor's journey.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Journey {
    status: JourneyStatus,
    touchpoints: Vec<Touchpoint>,
    purchase_interaction_id: Option<String>,
}

impl Journey {
    /// Where the journey is in its life.
    pub fn status(&self) -> JourneyStatus {
        self.status
    }

    /// The touchpoints, in the order they were recorded.
    pub fn touchpoints(&self) -> &[Touchpoint] {
        &self.touchpoints
    }

    /// The purchase that converted the journey, once converted.
    pub fn purchase_interaction_id(&self) -> Option<&str> {
        self.purchase_interaction_id.as_deref()
    }

    /// Every interaction of the journey: touchpoints in the order recorded, then the purchase.
    pub fn interaction_ids(&self) -> Vec<String> {
        self.touchpoints
            .iter()
            .map(|t| t.interaction_id.clone())
            .chain(self.purchase_interaction_id.clone())
            .collect()
    }

    /// The campaign `purchase` is attributed to, whose settings the application must look up
    /// before converting: the purchase's own, or else that of the latest touchpoint up to the
    /// purchase that names both a partner and a campaign.
    pub fn campaign_for(&self, purchase: &Purchase) -> Option<String> {
        if let Some(campaign) = purchase.campaign() {
            return Some(campaign.to_owned());
        }
        self.touchpoints
            .iter()
            .filter(|t| t.at <= purchase.at && t.partner().is_some())
            .filter_map(|t| t.campaign().map(|c| (t.at, &t.interaction_id, c)))
            .max()
            .map(|(_, _, campaign)| campaign.to_owned())
    }

    /// Whether the interaction is one of the journey's (a touchpoint or its purchase).
    pub fn has_interaction(&self, interaction_id: &str) -> bool {
        self.purchase_interaction_id.as_deref() == Some(interaction_id)
            || self
                .touchpoints
                .iter()
                .any(|t| t.interaction_id == interaction_id)
    }

    fn record(&self, touchpoint: Touchpoint) -> Result<Vec<JourneyEvent>, DomainError> {
        if self.has_interaction(&touchpoint.interaction_id) {
            return Ok(vec![]);
        }
        if self.status != JourneyStatus::Open {
            return Err(DomainError::JourneyClosed {
                status: self.status,
            });
        }
        Ok(vec![JourneyEvent::TouchpointRecorded(touchpoint)])
    }

    fn convert(
        &self,
        purchase: Purchase,
        campaign: Option<CampaignSettings>,
    ) -> Result<Vec<JourneyEvent>, DomainError> {
        if self.purchase_interaction_id.as_deref() == Some(purchase.interaction_id.as_str()) {
            return Ok(vec![]);
        }
        if self.status != JourneyStatus::Open {
            return Err(DomainError::JourneyClosed {
                status: self.status,
            });
        }
        if purchase.amount.amount_minor < 0 {
            return Err(DomainError::NegativeAmount {
                amount_minor: purchase.amount.amount_minor,
            });
        }
        let expected = self.campaign_for(&purchase);
        if let Some(settings) = &campaign
            && expected.as_deref() != Some(settings.campaign_id.as_str())
        {
            return Err(DomainError::WrongCampaign {
                expected,
                given: settings.campaign_id.clone(),
            });
        }
        let fraud = FraudAssessment::of(&purchase, &self.touchpoints);
        let outcome = match campaign {
            None => {
                let detail = match &expected {
                    Some(id) => format!("campaign {id} is not known"),
                    None => "neither the purchase nor its touchpoints name a campaign".to_owned(),
                };
                reject(
                    &purchase,
                    expected,
                    &fraud,
                    RejectionReason::CampaignUnknown,
                    detail,
                )
            }
            Some(settings) => self.attribute(purchase, settings, &fraud)?,
        };
        Ok(vec![outcome])
    }

    fn attribute(
        &self,
        purchase: Purchase,
        campaign: CampaignSettings,
        fraud: &FraudAssessment,
    ) -> Result<JourneyEvent, DomainError> {
        let id = Some(campaign.campaign_id.clone());
        if campaign.status != CampaignStatus::Active {
            let detail = format!("campaign {} is {}", campaign.campaign_id, campaign.status);
            return Ok(reject(
                &purchase,
                id,
                fraud,
                RejectionReason::CampaignInactive,
                detail,
            ));
        }
        if purchase.amount.currency != campaign.currency {
            let detail = format!(
                "the purchase is in {}, its campaign {} in {}",
                purchase.amount.currency, campaign.campaign_id, campaign.currency
            );
            return Ok(reject(
                &purchase,
                id,
                fraud,
                RejectionReason::CurrencyMismatch,
                detail,
            ));
        }
        if fraud.is_suspected(campaign.fraud_threshold) {
            let detail = format!(
                "{} reaches the campaign's threshold {}",
                fraud.describe(),
                campaign.fraud_threshold
            );
            return Ok(reject(
                &purchase,
                id,
                fraud,
                RejectionReason::FraudSuspected,
                detail,
            ));
        }
        let mut eligible: Vec<&Touchpoint> = self
            .touchpoints
            .iter()
            .filter(|t| t.is_eligible(purchase.at, campaign.window_days))
            .collect();
        eligible.sort_by(|a, b| (a.at, &a.interaction_id).cmp(&(b.at, &b.interaction_id)));
        let times: Vec<_> = eligible.iter().map(|t| t.at).collect();
        let Some(weights) = Weights::for_model(campaign.model, &times, purchase.at) else {
            let detail = format!(
                "no touchpoint names a partner in the {} days before the purchase",
                campaign.window_days
            );
            return Ok(reject(
                &purchase,
                id,
                fraud,
                RejectionReason::NoEligibleTouchpoint,
                detail,
            ));
        };
        let amounts = weights.split(purchase.amount.amount_minor);
        let credits = eligible
            .iter()
            .zip(weights.ppm().iter().zip(amounts))
            .filter(|(_, (weight, _))| **weight > 0)
            .map(|(touchpoint, (weight, amount_minor))| Credit {
                interaction_id: touchpoint.interaction_id.clone(),
                partner_id: touchpoint.partner().unwrap_or_default().to_owned(),
                campaign_id: touchpoint.campaign().map(str::to_owned),
                weight_ppm: *weight,
                amount_minor,
            })
            .collect();
        Ok(JourneyEvent::Attributed(Attribution {
            purchase_interaction_id: purchase.interaction_id,
            order_id: purchase.order_id,
            campaign_id: campaign.campaign_id,
            amount: purchase.amount,
            purchased_at: purchase.at,
            model: campaign.model,
            credits,
            fraud_score: fraud.score,
        }))
    }

    fn revert(&self, reason: String) -> Result<Vec<JourneyEvent>, DomainError> {
        match self.status {
            JourneyStatus::Open => Err(DomainError::NothingToRevert),
            JourneyStatus::Reverted => Ok(vec![]),
            JourneyStatus::Converted => Ok(vec![JourneyEvent::Reverted(Reversal {
                interaction_ids: self.interaction_ids(),
                reason,
            })]),
        }
    }
}

fn reject(
    purchase: &Purchase,
    campaign_id: Option<String>,
    fraud: &FraudAssessment,
    reason: RejectionReason,
    detail: String,
) -> JourneyEvent {
    JourneyEvent::Rejected(Rejection {
        purchase_interaction_id: purchase.interaction_id.clone(),
        order_id: purchase.order_id.clone(),
        campaign_id,
        purchased_at: purchase.at,
        reason,
        detail,
        fraud_score: fraud.score,
    })
}

impl Aggregate for Journey {
    type Command = JourneyCommand;
    type Event = JourneyEvent;
    type Error = DomainError;

    fn decide(&self, command: JourneyCommand) -> Result<Vec<JourneyEvent>, DomainError> {
        match command {
            JourneyCommand::RecordTouchpoint(touchpoint) => self.record(touchpoint),
            JourneyCommand::Convert { purchase, campaign } => self.convert(purchase, campaign),
            JourneyCommand::Revert { reason } => self.revert(reason),
        }
    }

    fn apply(&mut self, event: &JourneyEvent) {
        match event {
            JourneyEvent::TouchpointRecorded(touchpoint) => {
                self.touchpoints.push(touchpoint.clone());
            }
            JourneyEvent::Attributed(Attribution {
                purchase_interaction_id,
                ..
            })
            | JourneyEvent::Rejected(Rejection {
                purchase_interaction_id,
                ..
            }) => {
                self.status = JourneyStatus::Converted;
                self.purchase_interaction_id = Some(purchase_interaction_id.clone());
            }
            JourneyEvent::Reverted(_) => self.status = JourneyStatus::Reverted,
        }
    }
}

#[cfg(test)]
mod tests;
