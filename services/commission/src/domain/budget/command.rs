//! What the app asks of a campaign's budget, one command per message it reacts to.
//!
//! Campaign commands carry the time marketing changed the status, because campaign events come
//! on different topics and the budget must tell a late, older change from a newer one.

use alpes_contracts::events::commission::CommissionTerms;
use alpes_contracts::{Money, Timestamp};

/// What can be asked of a campaign's budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BudgetCommand {
    /// Open the budget of a created campaign (`CampaignCreated`).
    Open {
        /// The campaign.
        campaign_id: String,
        /// What it may spend on commissions.
        budget: Money,
        /// How commissions are computed, in the budget's currency.
        terms: CommissionTerms,
    },
    /// The campaign was activated at `at` (`CampaignActivated`).
    Activate {
        /// When, to ignore an older status change arriving late.
        at: Timestamp,
    },
    /// The campaign was paused at `at` (`CampaignPaused`).
    Pause {
        /// When, to ignore an older status change arriving late.
        at: Timestamp,
    },
    /// The campaign was completed at `at` (`CampaignCompleted`).
    Complete {
        /// When it was completed.
        at: Timestamp,
    },
    /// Reserve the commission the campaign's terms give on `sale`.
    Reserve {
        /// The sale's saga.
        saga_id: String,
        /// The commission to reserve for.
        commission_id: String,
        /// The sale, in the budget's currency.
        sale: Money,
    },
    /// The saga's reservation is owed to the partner.
    Confirm {
        /// The saga.
        saga_id: String,
    },
    /// The saga was compensated: give back what it holds, and close it.
    Release {
        /// The saga.
        saga_id: String,
    },
}
