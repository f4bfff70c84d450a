//! Events the commission service produces: reservations against budgets and their outcomes.

use serde::{Deserialize, Serialize};

use crate::event::{impl_event, saga_key};
use crate::limits::{At, COMPOSITE_ID, DETAIL, ID, Invalid, Validate};
use crate::{EventMetadata, Money};

/// How a commission is computed from a sale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CommissionKind {
    /// A share of the sale, in basis points.
    Percentage,
    /// A fixed amount per sale.
    Fixed,
}

/// A campaign's commission terms; amounts are minor units of the budget's currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommissionTerms {
    /// Percentage of the sale or fixed amount.
    pub kind: CommissionKind,
    /// Basis points of the sale, for PERCENTAGE.
    pub percentage_bps: Option<i32>,
    /// Minor units per sale, for FIXED.
    pub fixed_minor: Option<i64>,
    /// The least commission of a sale.
    pub minimum_minor: i64,
    /// The most commission of a sale, if capped.
    pub maximum_minor: Option<i64>,
}

/// A partner's commission on an attributed sale was reserved against the campaign's budget.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommissionReserved {
    pub metadata: EventMetadata,
    /// Id of the commission.
    pub commission_id: String,
    /// The campaign whose budget pays it.
    pub campaign_id: String,
    /// The partner who earns it.
    pub partner_id: String,
    /// The shop's order id.
    pub order_id: String,
    /// The sale's amount.
    pub sale_amount: Money,
    /// The reserved commission.
    pub commission: Money,
    /// The campaign's budget left after this reservation.
    pub budget_remaining: Money,
}
impl_event!(CommissionReserved, "commission", |e| saga_key(&e.metadata));

/// Why no commission could be reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CommissionRejectionReason {
    /// The campaign's budget cannot cover the commission.
    BudgetExhausted,
    /// The campaign is not active.
    CampaignInactive,
    /// The campaign is not known.
    CampaignUnknown,
    /// The saga was already compensated (fraud or timeout arrived first).
    SagaCompensated,
}

/// No commission could be reserved for an attributed sale; its saga ends REJECTED.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommissionRejected {
    pub metadata: EventMetadata,
    /// The campaign of the sale.
    pub campaign_id: String,
    /// The partner who would have earned it, if known.
    pub partner_id: Option<String>,
    /// The shop's order id.
    pub order_id: String,
    /// Why it was rejected.
    pub reason: CommissionRejectionReason,
    /// Human-readable detail of the reason.
    pub detail: String,
}
impl_event!(CommissionRejected, "commission", |e| saga_key(&e.metadata));

/// A compensated saga's commission was reverted and returned to the campaign's budget.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommissionReverted {
    pub metadata: EventMetadata,
    /// The reverted commission; `None` when nothing had been reserved.
    pub commission_id: Option<String>,
    /// The campaign whose budget got the amount back, if any.
    pub campaign_id: Option<String>,
    /// The amount returned to the budget.
    pub released: Option<Money>,
    /// Why it was reverted.
    pub reason: String,
}
impl_event!(CommissionReverted, "commission", |e| saga_key(&e.metadata));

/// A reserved commission was confirmed: it is owed to the partner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommissionConfirmed {
    pub metadata: EventMetadata,
    /// The confirmed commission.
    pub commission_id: String,
    /// The campaign whose budget pays it.
    pub campaign_id: String,
    /// The partner who earns it.
    pub partner_id: String,
    /// The confirmed amount.
    pub amount: Money,
}
impl_event!(CommissionConfirmed, "commission", |e| saga_key(&e.metadata));

impl Validate for CommissionReserved {
    fn validate_at(&self, at: &str) -> Result<(), Invalid> {
        let at = At(at);
        at.nested("metadata", &self.metadata)?;
        at.check("commission_id", COMPOSITE_ID, &self.commission_id)?;
        at.check("campaign_id", ID, &self.campaign_id)?;
        at.check("partner_id", ID, &self.partner_id)?;
        at.check("order_id", ID, &self.order_id)?;
        at.nested("sale_amount", &self.sale_amount)?;
        at.nested("commission", &self.commission)?;
        at.nested("budget_remaining", &self.budget_remaining)
    }
}

impl Validate for CommissionRejected {
    fn validate_at(&self, at: &str) -> Result<(), Invalid> {
        let at = At(at);
        at.nested("metadata", &self.metadata)?;
        at.check("campaign_id", ID, &self.campaign_id)?;
        at.check_opt("partner_id", ID, &self.partner_id)?;
        at.check("order_id", ID, &self.order_id)?;
        at.check("detail", DETAIL, &self.detail)
    }
}

impl Validate for CommissionReverted {
    fn validate_at(&self, at: &str) -> Result<(), Invalid> {
        let at = At(at);
        at.nested("metadata", &self.metadata)?;
        at.check_opt("commission_id", COMPOSITE_ID, &self.commission_id)?;
        at.check_opt("campaign_id", ID, &self.campaign_id)?;
        at.nested_opt("released", &self.released)?;
        at.check("reason", DETAIL, &self.reason)
    }
}

impl Validate for CommissionConfirmed {
    fn validate_at(&self, at: &str) -> Result<(), Invalid> {
        let at = At(at);
        at.nested("metadata", &self.metadata)?;
        at.check("commission_id", COMPOSITE_ID, &self.commission_id)?;
        at.check("campaign_id", ID, &self.campaign_id)?;
        at.check("partner_id", ID, &self.partner_id)?;
        at.nested("amount", &self.amount)
    }
}
