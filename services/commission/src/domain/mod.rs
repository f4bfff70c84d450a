//! The commission domain, pure: no clock, no I/O, only decisions and the facts they record.
//!
//! Two aggregates, each an event stream of its own ([`Aggregate`]: `decide` a command into
//! events, `apply` an event to the state):
//!
//! - [`CampaignBudget`], one per campaign: the campaign's status, budget and [`Terms`], and what
//!   each saga holds of it. It alone decides whether money can be reserved, so it is where the
//!   budget can never be overspent.
//! - [`Commission`], one per saga: the partner's commission on one sale, from attribution to
//!   reservation, confirmation or revert. It alone decides whether a saga may still reserve, so
//!   it is where compensation wins over a late attribution.
//!
//! The two streams cannot be written atomically, so each step is idempotent and the order of
//! writes makes any crash or race safe:
//!
//! 1. `ConversionAttributed`: [`CommissionCommand::Attribute`] (a compensated saga is rejected
//!    here and never reaches the budget), then [`BudgetCommand::Reserve`], then the budget's
//!    answer for the saga ([`CampaignBudget::entry`]) is recorded on the commission with
//!    [`CommissionCommand::RecordReserved`] or [`CommissionCommand::RecordRejected`]; that last
//!    write publishes `CommissionReserved` or `CommissionRejected`.
//! 2. `FraudDetected` / `SagaTimedOut`: [`CommissionCommand::Compensate`], then, if
//!    [`Commission::release_from`] names a campaign, [`BudgetCommand::Release`], whose write
//!    publishes `CommissionReverted` (`released` from its `Released` event, none if `Closed`);
//!    otherwise the commission's own write publishes it. Releasing a saga that holds nothing yet
//!    closes it in the budget, so a reservation racing the compensation is never made.
//!
//! Redelivering any message repeats these steps; a step already done decides no events.

#![warn(missing_docs)]

pub mod budget;
pub mod commission;
mod sale;
pub mod terms;

pub use alpes_aggregate::{Aggregate, DomainEvent};
use alpes_contracts::events::commission::CommissionRejectionReason;
pub use alpes_contracts::events::commission::{CommissionKind, CommissionTerms};
pub use budget::{
    BudgetCommand, BudgetEntry, BudgetEvent, CampaignBudget, CampaignStatus, Reservation,
};
pub use commission::{Commission, CommissionCommand, CommissionEvent, CommissionStatus};
pub use sale::Sale;
use serde::{Deserialize, Serialize};
pub use terms::{Rate, Terms};

/// Why no commission could be reserved, as the domain stores it; the contract's
/// `CommissionRejectionReason` is what it is announced as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RejectionReason {
    /// The campaign's budget cannot cover the commission.
    BudgetExhausted,
    /// The campaign is not active.
    CampaignInactive,
    /// The campaign is not known.
    CampaignUnknown,
    /// The saga was compensated first.
    SagaCompensated,
}

impl From<RejectionReason> for CommissionRejectionReason {
    fn from(reason: RejectionReason) -> Self {
        match reason {
            RejectionReason::BudgetExhausted => Self::BudgetExhausted,
            RejectionReason::CampaignInactive => Self::CampaignInactive,
            RejectionReason::CampaignUnknown => Self::CampaignUnknown,
            RejectionReason::SagaCompensated => Self::SagaCompensated,
        }
    }
}

/// Why a command is refused: the input breaks a rule, as opposed to a business outcome (a
/// rejected reservation is an event, not an error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// A percentage outside 0..=10 000 basis points.
    #[error("{0} basis points is not a percentage between 0 and 10000")]
    BasisPointsOutOfRange(i64),
    /// Terms of a kind without the field that kind needs.
    #[error("{0:?} terms without their rate")]
    MissingRate(CommissionKind),
    /// A negative amount where only zero or more makes sense.
    #[error("{what} of {amount_minor} minor units is negative")]
    NegativeAmount {
        /// What the amount is.
        what: &'static str,
        /// The offending amount.
        amount_minor: i64,
    },
    /// Terms whose minimum is above their maximum.
    #[error("minimum commission {minimum_minor} is above the maximum {maximum_minor}")]
    MinimumAboveMaximum {
        /// The minimum, in minor units.
        minimum_minor: i64,
        /// The maximum, in minor units.
        maximum_minor: i64,
    },
    /// A currency code that is not three uppercase ASCII letters.
    #[error("{0:?} is not an ISO 4217 currency code")]
    InvalidCurrency(String),
    /// A budget asked to confirm a saga that holds no reservation.
    #[error("saga {saga_id} holds no reservation to confirm")]
    NothingReserved {
        /// The saga.
        saga_id: String,
    },
    /// A budget answer recorded on a commission that was never attributed.
    #[error("the commission was never attributed")]
    NotAttributed,
    /// A commission confirmed while it is not reserved.
    #[error("only a reserved commission can be confirmed, not a {0:?} one")]
    NotReserved(CommissionStatus),
    /// A conversion that credits no partner.
    #[error("conversion of order {order_id} credits no partner")]
    NoCreditedPartner {
        /// The shop's order id.
        order_id: String,
    },
}
