//! The campaign settings attribution needs, mirrored from marketing's campaign facts.
//!
//! Marketing owns campaigns; attribution keeps only what it needs to attribute a purchase
//! (model, window, fraud threshold, currency, status). It is a small aggregate, one stream per
//! campaign, because the facts arrive on separate topics and therefore in any order:
//!
//! - a status fact that arrives before `CampaignCreated` is kept, and creation does not reset it;
//! - between status facts the most recent one (by the time it happened) wins, so a late
//!   `CampaignPaused` does not undo a later `CampaignActivated`;
//! - completion is for good: nothing after it reopens the campaign;
//! - a duplicate fact changes nothing.

use std::fmt;

use alpes_contracts::Timestamp;
use alpes_contracts::events::marketing::{
    CampaignActivated, CampaignCompleted, CampaignCreated, CampaignPaused,
};
use serde::{Deserialize, Serialize};

use super::{Aggregate, DomainError, DomainEvent, Model};

/// Where a campaign is in its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CampaignStatus {
    /// Created, not active yet: its conversions are rejected.
    #[default]
    Draft,
    /// Its conversions are attributed.
    Active,
    /// Its conversions are rejected until it is activated again.
    Paused,
    /// Over for good: its conversions are rejected.
    Completed,
}

impl fmt::Display for CampaignStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Draft => "DRAFT",
            Self::Active => "ACTIVE",
            Self::Paused => "PAUSED",
            Self::Completed => "COMPLETED",
        })
    }
}

/// Everything attribution needs to know about a campaign to attribute a purchase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignSettings {
    /// Id of the campaign.
    pub campaign_id: String,
    /// Where the campaign is in its life.
    pub status: CampaignStatus,
    /// How conversions are credited to touchpoints.
    pub model: Model,
    /// How many days before a purchase a touchpoint still counts.
    pub window_days: u32,
    /// Fraud score at or above which a conversion is rejected, 0..=100.
    pub fraud_threshold: u8,
    /// ISO 4217 code of the campaign's money; purchases must be in it.
    pub currency: String,
}

/// What marketing told us about a campaign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CampaignCommand {
    /// `CampaignCreated`: the campaign exists with these attribution settings.
    Register {
        /// Id of the campaign.
        campaign_id: String,
        /// How conversions are credited.
        model: Model,
        /// Window in days, as marketing sent it.
        window_days: i32,
        /// Fraud threshold, as marketing sent it.
        fraud_threshold: i32,
        /// The campaign's currency (its budget's).
        currency: String,
    },
    /// `CampaignActivated` at `at`.
    Activate {
        /// When marketing activated it.
        at: Timestamp,
    },
    /// `CampaignPaused` at `at`.
    Pause {
        /// When marketing paused it.
        at: Timestamp,
    },
    /// `CampaignCompleted` at `at`.
    Complete {
        /// When marketing completed it.
        at: Timestamp,
    },
}

/// What happened to the mirrored campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CampaignEvent {
    /// The campaign's attribution settings became known.
    Registered {
        /// Id of the campaign.
        campaign_id: String,
        /// How conversions are credited.
        model: Model,
        /// Window in days.
        window_days: u32,
        /// Fraud threshold 0..=100.
        fraud_threshold: u8,
        /// ISO 4217 code.
        currency: String,
    },
    /// The campaign's status changed at `at`.
    StatusChanged {
        /// The new status.
        status: CampaignStatus,
        /// When the change happened at marketing.
        at: Timestamp,
    },
}

impl DomainEvent for CampaignEvent {
    fn kind(&self) -> &'static str {
        match self {
            Self::Registered { .. } => "CampaignRegistered",
            Self::StatusChanged { .. } => "CampaignStatusChanged",
        }
    }
}

/// The settings registered at creation, without the status that moves on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Registration {
    campaign_id: String,
    model: Model,
    window_days: u32,
    fraud_threshold: u8,
    currency: String,
}

/// A campaign as attribution sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Campaign {
    registration: Option<Registration>,
    status: CampaignStatus,
    status_at: Option<Timestamp>,
}

impl Campaign {
    /// The campaign's settings, once its creation is known.
    pub fn settings(&self) -> Option<CampaignSettings> {
        self.registration.as_ref().map(|r| CampaignSettings {
            campaign_id: r.campaign_id.clone(),
            status: self.status,
            model: r.model,
            window_days: r.window_days,
            fraud_threshold: r.fraud_threshold,
            currency: r.currency.clone(),
        })
    }

    /// The campaign's current status (DRAFT until a status fact arrives).
    pub fn status(&self) -> CampaignStatus {
        self.status
    }

    fn change_status(&self, status: CampaignStatus, at: Timestamp) -> Vec<CampaignEvent> {
        let unchanged = self.status == status;
        let completed_for_good = self.status == CampaignStatus::Completed;
        let stale = status != CampaignStatus::Completed && self.status_at.is_some_and(|t| at <= t);
        if unchanged || completed_for_good || stale {
            return vec![];
        }
        vec![CampaignEvent::StatusChanged { status, at }]
    }
}

impl Aggregate for Campaign {
    type Command = CampaignCommand;
    type Event = CampaignEvent;
    type Error = DomainError;

    fn decide(&self, command: CampaignCommand) -> Result<Vec<CampaignEvent>, DomainError> {
        match command {
            CampaignCommand::Register {
                campaign_id,
                model,
                window_days,
                fraud_threshold,
                currency,
            } => {
                let window_days = u32::try_from(window_days)
                    .map_err(|_| DomainError::InvalidAttributionWindow(window_days))?;
                let fraud_threshold = u8::try_from(fraud_threshold)
                    .ok()
                    .filter(|t| *t <= 100)
                    .ok_or(DomainError::InvalidFraudThreshold(fraud_threshold))?;
                if self.registration.is_some() {
                    return Ok(vec![]);
                }
                Ok(vec![CampaignEvent::Registered {
                    campaign_id,
                    model,
                    window_days,
                    fraud_threshold,
                    currency,
                }])
            }
            CampaignCommand::Activate { at } => Ok(self.change_status(CampaignStatus::Active, at)),
            CampaignCommand::Pause { at } => Ok(self.change_status(CampaignStatus::Paused, at)),
            CampaignCommand::Complete { at } => {
                Ok(self.change_status(CampaignStatus::Completed, at))
            }
        }
    }

    fn apply(&mut self, event: &CampaignEvent) {
        match event {
            CampaignEvent::Registered {
                campaign_id,
                model,
                window_days,
                fraud_threshold,
                currency,
            } => {
                self.registration = Some(Registration {
                    campaign_id: campaign_id.clone(),
                    model: *model,
                    window_days: *window_days,
                    fraud_threshold: *fraud_threshold,
                    currency: currency.clone(),
                });
            }
            CampaignEvent::StatusChanged { status, at } => {
                self.status = *status;
                self.status_at = Some(*at);
            }
        }
    }
}

impl From<&CampaignCreated> for CampaignCommand {
    fn from(fact: &CampaignCreated) -> Self {
        Self::Register {
            campaign_id: fact.campaign_id.clone(),
            model: fact.attribution_model.into(),
            window_days: fact.attribution_window_days,
            fraud_threshold: fact.fraud_threshold,
            currency: fact.budget.currency.clone(),
        }
    }
}

impl From<&CampaignActivated> for CampaignCommand {
    fn from(fact: &CampaignActivated) -> Self {
        Self::Activate {
            at: fact.metadata.occurred_at,
        }
    }
}

impl From<&CampaignPaused> for CampaignCommand {
    fn from(fact: &CampaignPaused) -> Self {
        Self::Pause {
            at: fact.metadata.occurred_at,
        }
    }
}

impl From<&CampaignCompleted> for CampaignCommand {
    fn from(fact: &CampaignCompleted) -> Self {
        Self::Complete {
            at: fact.metadata.occurred_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use alpes_aggregate::given;

    fn at(minute: u32) -> Timestamp {
        Utc.with_ymd_and_hms(2025, 3, 1, 12, minute, 0).unwrap()
    }

    fn register() -> CampaignCommand {
        CampaignCommand::Register {
            campaign_id: "spring".into(),
            model: Model::Linear,
            window_days: 30,
            fraud_threshold: 70,
            currency: "EUR".into(),
        }
    }

    fn registered() -> CampaignEvent {
        CampaignEvent::Registered {
            campaign_id: "spring".into(),
            model: Model::Linear,
            window_days: 30,
            fraud_threshold: 70,
            currency: "EUR".into(),
        }
    }

    fn status(status: CampaignStatus, minute: u32) -> CampaignEvent {
        CampaignEvent::StatusChanged {
            status,
            at: at(minute),
        }
    }

    #[test]
    fn a_created_campaign_is_registered_as_draft() {
        let state = given::<Campaign>(&[])
            .when(register())
            .then(&[registered()]);
        assert_eq!(
            state.settings(),
            Some(CampaignSettings {
                campaign_id: "spring".into(),
                status: CampaignStatus::Draft,
                model: Model::Linear,
                window_days: 30,
                fraud_threshold: 70,
                currency: "EUR".into(),
            })
        );
    }

    #[test]
    fn a_duplicate_creation_changes_nothing() {
        given::<Campaign>(&[registered()])
            .when(register())
            .then(&[]);
    }

    #[test]
    fn a_negative_window_is_refused() {
        given::<Campaign>(&[])
            .when(CampaignCommand::Register {
                campaign_id: "spring".into(),
                model: Model::LastTouch,
                window_days: -1,
                fraud_threshold: 70,
                currency: "EUR".into(),
            })
            .then_error(DomainError::InvalidAttributionWindow(-1));
    }

    #[test]
    fn a_fraud_threshold_above_100_is_refused() {
        given::<Campaign>(&[])
            .when(CampaignCommand::Register {
                campaign_id: "spring".into(),
                model: Model::LastTouch,
                window_days: 30,
                fraud_threshold: 101,
                currency: "EUR".into(),
            })
            .then_error(DomainError::InvalidFraudThreshold(101));
    }

    #[test]
    fn activation_makes_the_campaign_active() {
        let state = given::<Campaign>(&[registered()])
            .when(CampaignCommand::Activate { at: at(1) })
            .then(&[status(CampaignStatus::Active, 1)]);
        assert_eq!(state.settings().unwrap().status, CampaignStatus::Active);
    }

    #[test]
    fn a_status_that_arrives_before_creation_survives_it() {
        let state = given::<Campaign>(&[status(CampaignStatus::Active, 1)])
            .when(register())
            .then(&[registered()]);
        assert_eq!(state.settings().unwrap().status, CampaignStatus::Active);
    }

    #[test]
    fn a_late_pause_does_not_undo_a_later_activation() {
        given::<Campaign>(&[registered(), status(CampaignStatus::Active, 5)])
            .when(CampaignCommand::Pause { at: at(2) })
            .then(&[]);
    }

    #[test]
    fn a_duplicate_activation_changes_nothing() {
        given::<Campaign>(&[registered(), status(CampaignStatus::Active, 5)])
            .when(CampaignCommand::Activate { at: at(5) })
            .then(&[]);
    }

    #[test]
    fn completion_is_for_good() {
        given::<Campaign>(&[registered(), status(CampaignStatus::Completed, 5)])
            .when(CampaignCommand::Activate { at: at(9) })
            .then(&[]);
    }

    #[test]
    fn completion_wins_even_when_it_arrives_late() {
        given::<Campaign>(&[registered(), status(CampaignStatus::Paused, 5)])
            .when(CampaignCommand::Complete { at: at(1) })
            .then(&[status(CampaignStatus::Completed, 1)]);
    }

    #[test]
    fn an_unknown_campaign_has_no_settings() {
        assert_eq!(Campaign::default().settings(), None);
    }
}
