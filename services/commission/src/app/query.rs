//! What the API shows: one commission, a page of commissions, a campaign's budget.
//!
//! One commission or budget is a fold of its stream. The list is a read model made of streams
//! already written — the campaigns' budgets and a small registry — kept up to date by the
//! handlers that write them, and paged in commission id order (the cursor is the last id of the
//! previous page): see `listing` and `registry`. Nothing here replays the store.

use alpes_contracts::Money;
use alpes_contracts::events::commission::CommissionRejectionReason;
use alpes_eventstore::EventStore;
use serde::Serialize;

use super::{AppError, Commissions, budget_stream, commission_stream};
use crate::domain::{Aggregate, CampaignStatus, Commission, CommissionEvent, CommissionStatus};

/// A commission as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommissionView {
    /// Its id, `commission-{saga_id}`.
    pub commission_id: String,
    /// The sale's saga.
    pub saga_id: String,
    /// Where it is in its life.
    pub status: CommissionStatus,
    /// The campaign whose budget pays it, once attributed.
    pub campaign_id: Option<String>,
    /// The partner who earns it, once attributed.
    pub partner_id: Option<String>,
    /// The shop's order id, once attributed.
    pub order_id: Option<String>,
    /// The sale's amount, once attributed.
    pub sale_amount: Option<Money>,
    /// The reserved commission, once reserved.
    pub amount: Option<Money>,
    /// The campaign's budget left right after it was reserved.
    pub budget_remaining: Option<Money>,
    /// Why no commission was reserved, if it was refused.
    pub rejection: Option<Rejection>,
    /// Why it was reverted, if its saga was compensated.
    pub revert_reason: Option<String>,
}

/// Why a commission was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    /// The reason's code.
    pub reason: CommissionRejectionReason,
    /// Human-readable detail.
    pub detail: String,
}

impl CommissionView {
    /// The view of saga `saga_id`'s commission after `events`.
    fn of(saga_id: &str, events: &[CommissionEvent]) -> Self {
        let commission = Commission::from_events(events);
        let sale = commission.sale();
        let mut view = Self {
            commission_id: Commission::id_for(saga_id),
            saga_id: saga_id.to_owned(),
            status: commission.status(),
            campaign_id: sale.map(|s| s.campaign_id.clone()),
            partner_id: sale.map(|s| s.partner_id.clone()),
            order_id: sale.map(|s| s.order_id.clone()),
            sale_amount: sale.map(|s| s.amount.clone()),
            amount: commission.amount().cloned(),
            budget_remaining: None,
            rejection: None,
            revert_reason: None,
        };
        for event in events {
            match event {
                CommissionEvent::Reserved {
                    budget_remaining, ..
                } => view.budget_remaining = Some(budget_remaining.clone()),
                CommissionEvent::Rejected { reason, detail, .. } => {
                    view.rejection = Some(Rejection {
                        reason: (*reason).into(),
                        detail: detail.clone(),
                    });
                }
                CommissionEvent::Reverted { reason, .. } => {
                    view.revert_reason = Some(reason.clone());
                }
                CommissionEvent::Attributed { .. } | CommissionEvent::Confirmed { .. } => {}
            }
        }
        view
    }
}

/// A campaign's budget as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BudgetView {
    /// The campaign.
    pub campaign_id: String,
    /// The campaign's status as the budget knows it.
    pub status: CampaignStatus,
    /// What the campaign may spend on commissions.
    pub total: Money,
    /// Reserved or confirmed commissions.
    pub reserved: Money,
    /// What is left to reserve: total − reserved.
    pub remaining: Money,
}

/// Which commissions to list, and where the page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommissionFilter {
    /// Only this campaign's.
    pub campaign: Option<String>,
    /// Only those in this status.
    pub status: Option<CommissionStatus>,
    /// Only those after this commission id: the previous page's cursor.
    pub after: Option<String>,
    /// At most this many.
    pub limit: usize,
}

/// One page of commissions, in commission id order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommissionPage {
    /// The commissions of this page.
    pub items: Vec<CommissionView>,
    /// The cursor of the next page, if there is one.
    pub next_cursor: Option<String>,
}

impl<S: EventStore> Commissions<S> {
    /// The commission `commission_id`, if it exists.
    pub async fn commission(
        &self,
        commission_id: &str,
    ) -> Result<Option<CommissionView>, AppError> {
        let Some(saga_id) = Commission::saga_of(commission_id) else {
            return Ok(None);
        };
        let stream = self.store.load(&commission_stream(saga_id)).await?;
        let events = stream.read::<CommissionEvent>()?;
        Ok((!events.is_empty()).then(|| CommissionView::of(saga_id, &events)))
    }

    /// The budget of campaign `campaign_id`, once opened.
    pub async fn budget(&self, campaign_id: &str) -> Result<Option<BudgetView>, AppError> {
        let (_, budget) = self.load_budget(&budget_stream(campaign_id)).await?;
        let (Some(campaign_id), Some(total)) = (budget.campaign_id(), budget.total()) else {
            return Ok(None);
        };
        let currency = &total.currency;
        Ok(Some(BudgetView {
            campaign_id: campaign_id.to_owned(),
            status: budget.status(),
            total: total.clone(),
            reserved: Money::new(budget.reserved_minor(), currency),
            remaining: Money::new(budget.remaining_minor(), currency),
        }))
    }
}
