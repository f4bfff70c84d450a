//! Events the marketing service produces: campaign lifecycle, fraud reports, saga deadlines.

use serde::{Deserialize, Serialize};

use crate::event::{impl_event, saga_key};
use crate::events::attribution::AttributionModel;
use crate::events::commission::CommissionTerms;
use crate::limits::{At, ID, Invalid, NAME, REASON, Validate};
use crate::{EventMetadata, Money, Timestamp};

/// A sale was reported as fraudulent: everything its saga caused must be compensated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FraudDetected {
    pub metadata: EventMetadata,
    /// Why the sale is considered fraudulent.
    pub reason: String,
    /// Who reported it (a person, a fraud system, the simulation script).
    pub reporter: String,
    /// Fraud score 0..100 when the reporter has one.
    pub score: Option<i32>,
}
impl_event!(FraudDetected, "marketing", |e| saga_key(&e.metadata));

/// A saga's deadline passed before it ended: whatever it did must be compensated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SagaTimedOut {
    pub metadata: EventMetadata,
    /// The deadline that passed.
    #[serde(with = "chrono::serde::ts_microseconds")]
    pub deadline: Timestamp,
    /// The saga's status when its deadline passed.
    pub last_status: String,
}
impl_event!(SagaTimedOut, "marketing", |e| saga_key(&e.metadata));

/// A campaign was created with its budget, commission terms and attribution settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignCreated {
    pub metadata: EventMetadata,
    /// Id of the campaign.
    pub campaign_id: String,
    /// Display name of the campaign.
    pub name: String,
    /// The total the campaign may spend on commissions.
    pub budget: Money,
    /// How partners' commissions are computed, in the budget's currency.
    pub terms: CommissionTerms,
    /// How conversions are credited to touchpoints.
    pub attribution_model: AttributionModel,
    /// How many days before a purchase a touchpoint still counts.
    pub attribution_window_days: i32,
    /// Fraud score 0..100 at or above which a conversion is rejected.
    pub fraud_threshold: i32,
}
impl_event!(CampaignCreated, "marketing", |e| &e.campaign_id);

/// A campaign was activated: its conversions earn commissions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignActivated {
    pub metadata: EventMetadata,
    /// The activated campaign.
    pub campaign_id: String,
    /// Why it was activated, if said.
    pub reason: Option<String>,
}
impl_event!(CampaignActivated, "marketing", |e| &e.campaign_id);

/// A campaign was paused: its conversions are rejected until it is activated again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignPaused {
    pub metadata: EventMetadata,
    /// The paused campaign.
    pub campaign_id: String,
    /// Why it was paused, if said.
    pub reason: Option<String>,
}
impl_event!(CampaignPaused, "marketing", |e| &e.campaign_id);

/// A campaign was completed for good: it earns no more commissions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignCompleted {
    pub metadata: EventMetadata,
    /// The completed campaign.
    pub campaign_id: String,
    /// Why it was completed, if said.
    pub reason: Option<String>,
}
impl_event!(CampaignCompleted, "marketing", |e| &e.campaign_id);

impl Validate for FraudDetected {
    fn validate_at(&self, at: &str) -> Result<(), Invalid> {
        let at = At(at);
        at.nested("metadata", &self.metadata)?;
        at.check("reason", REASON, &self.reason)?;
        at.check("reporter", NAME, &self.reporter)
    }
}

impl Validate for SagaTimedOut {
    fn validate_at(&self, at: &str) -> Result<(), Invalid> {
        let at = At(at);
        at.nested("metadata", &self.metadata)?;
        at.check("last_status", NAME, &self.last_status)
    }
}

impl Validate for CampaignCreated {
    fn validate_at(&self, at: &str) -> Result<(), Invalid> {
        let at = At(at);
        at.nested("metadata", &self.metadata)?;
        at.check("campaign_id", ID, &self.campaign_id)?;
        at.check("name", NAME, &self.name)?;
        at.nested("budget", &self.budget)
    }
}

/// The lifecycle events share their shape: a campaign and an optional reason.
macro_rules! validate_lifecycle {
    ($($ty:ident),+) => {$(
        impl Validate for $ty {
            fn validate_at(&self, at: &str) -> Result<(), Invalid> {
                let at = At(at);
                at.nested("metadata", &self.metadata)?;
                at.check("campaign_id", ID, &self.campaign_id)?;
                at.check_opt("reason", REASON, &self.reason)
            }
        }
    )+};
}
validate_lifecycle!(CampaignActivated, CampaignPaused, CampaignCompleted);
