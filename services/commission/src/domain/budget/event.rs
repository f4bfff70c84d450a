//! What happened to a campaign's budget: the facts its stream is made of.
//!
//! Each event carries what the app needs to publish the integration event it feeds, so nothing
//! has to be looked up again after a crash between storing and publishing.

use alpes_contracts::{Money, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::{DomainEvent, RejectionReason, Terms, terms};

/// What happened to a campaign's budget.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum BudgetEvent {
    /// The budget was opened with its total and the campaign's terms.
    Opened {
        /// The campaign.
        campaign_id: String,
        /// What it may spend on commissions.
        budget: Money,
        /// How commissions are computed.
        terms: Terms,
    },
    /// The campaign became active.
    Activated {
        /// When.
        at: Timestamp,
    },
    /// The campaign was paused.
    Paused {
        /// When.
        at: Timestamp,
    },
    /// The campaign was completed.
    Completed {
        /// When.
        at: Timestamp,
    },
    /// A commission was reserved: feeds `CommissionReserved`.
    Reserved {
        /// The sale's saga.
        saga_id: String,
        /// The commission.
        commission_id: String,
        /// The sale.
        sale: Money,
        /// The reserved commission.
        amount: Money,
        /// The budget left after it.
        remaining: Money,
    },
    /// No commission could be reserved: feeds `CommissionRejected`.
    Rejected {
        /// The sale's saga.
        saga_id: String,
        /// The commission.
        commission_id: String,
        /// Why.
        reason: RejectionReason,
        /// Human-readable detail.
        detail: String,
    },
    /// A reservation is owed to the partner.
    Confirmed {
        /// The saga.
        saga_id: String,
        /// The commission.
        commission_id: String,
        /// The confirmed amount.
        amount: Money,
    },
    /// A reservation went back to the budget: feeds `CommissionReverted.released`.
    Released {
        /// The saga.
        saga_id: String,
        /// The commission.
        commission_id: String,
        /// The amount given back.
        amount: Money,
    },
    /// A saga was compensated before it reserved anything; it never will.
    Closed {
        /// The saga.
        saga_id: String,
    },
}

impl DomainEvent for BudgetEvent {
    /// 2: `BudgetOpened` stores its terms in their own shape, not the contract's.
    const VERSION: u32 = 2;

    fn upcast(kind: &str, version: u32, mut data: Value) -> Result<Value, String> {
        match (kind, version) {
            ("BudgetOpened", 1) => {
                let terms = data
                    .get_mut("terms")
                    .map(Value::take)
                    .ok_or("BudgetOpened without terms")?;
                data["terms"] = terms::upcast_v1(terms)?;
                Ok(data)
            }
            (_, 1) => Ok(data),
            _ => Err(format!("{kind} has no version {version}")),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::Opened { .. } => "BudgetOpened",
            Self::Activated { .. } => "BudgetActivated",
            Self::Paused { .. } => "BudgetPaused",
            Self::Completed { .. } => "BudgetCompleted",
            Self::Reserved { .. } => "BudgetReserved",
            Self::Rejected { .. } => "BudgetRejected",
            Self::Confirmed { .. } => "BudgetConfirmed",
            Self::Released { .. } => "BudgetReleased",
            Self::Closed { .. } => "BudgetClosed",
        }
    }
}
