//! `CampaignBudget`: one per campaign, the only place that decides whether money is reserved.
//!
//! It mirrors the campaign from marketing's events (created, activated, paused, completed) and
//! keeps, per saga, what that saga got from the budget ([`BudgetEntry`]). Rules:
//!
//! - Never overspent: a commission is reserved whole or not at all (no partial reservation);
//!   more than what remains is a `BUDGET_EXHAUSTED` rejection. `remaining = total − reserved`,
//!   where confirmed commissions stay counted in `reserved`.
//! - A rejection is an event, not an error: it is a business outcome the app publishes as
//!   `CommissionRejected` (unknown or inactive campaign, a sale in another currency than the
//!   budget's, budget exhausted). Errors are for input that breaks a rule (bad terms).
//! - One answer per saga: once a saga has an entry, reserving again decides nothing, whatever
//!   the first answer was. Releasing a saga that holds nothing closes it, so that a reservation
//!   arriving after its compensation is never made.
//! - Campaign events arrive on different topics, so in any order: a status change older than
//!   the current one is ignored, completion is final, and a status seen before the creation is
//!   kept. A created campaign earns nothing until it is activated.

mod command;
mod event;

use std::collections::BTreeMap;
use std::ops::Bound;

use alpes_contracts::events::commission::CommissionTerms;
use alpes_contracts::{Money, Timestamp};
use serde::{Deserialize, Serialize};

pub use command::BudgetCommand;
pub use event::BudgetEvent;

use super::{Aggregate, DomainError, RejectionReason, Terms};

/// The campaign's lifecycle as the budget knows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CampaignStatus {
    /// No campaign event seen yet.
    #[default]
    Unknown,
    /// Created, not activated yet: its sales earn nothing.
    Created,
    /// Its sales earn commissions.
    Active,
    /// Its sales earn nothing until it is activated again.
    Paused,
    /// Finished for good.
    Completed,
}

/// A commission reserved against the budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// The commission it pays.
    pub commission_id: String,
    /// The reserved amount.
    pub amount: Money,
    /// The budget left right after it was reserved.
    pub remaining_after: Money,
}

/// What one saga got from the budget: its answer, and what it holds now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BudgetEntry {
    /// Reserved and still held.
    Held(Reservation),
    /// Reserved and owed to the partner; still counted against the budget.
    Confirmed(Reservation),
    /// Refused, for this reason.
    Rejected {
        /// Why.
        reason: RejectionReason,
        /// Human-readable detail.
        detail: String,
    },
    /// Reserved, then given back to the budget by a compensation.
    Released(Reservation),
    /// Compensated before anything was reserved: it may never reserve.
    Closed,
}

impl BudgetEntry {
    /// The answer a reservation's `event` gives its saga: `Reserved` holds, `Rejected`
    /// refuses; `None` for any other event.
    pub fn answered_by(event: &BudgetEvent) -> Option<Self> {
        match event {
            BudgetEvent::Reserved {
                commission_id,
                amount,
                remaining,
                ..
            } => Some(Self::Held(Reservation {
                commission_id: commission_id.clone(),
                amount: amount.clone(),
                remaining_after: remaining.clone(),
            })),
            BudgetEvent::Rejected { reason, detail, .. } => Some(Self::Rejected {
                reason: *reason,
                detail: detail.clone(),
            }),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Opening {
    campaign_id: String,
    total: Money,
    terms: Terms,
}

/// A campaign's budget: its status, terms, and what each saga holds of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CampaignBudget {
    opening: Option<Opening>,
    status: CampaignStatus,
    status_since: Option<Timestamp>,
    reserved_minor: i64,
    entries: BTreeMap<String, BudgetEntry>,
}

impl CampaignBudget {
    /// The campaign, once its budget is opened.
    pub fn campaign_id(&self) -> Option<&str> {
        self.opening.as_ref().map(|o| o.campaign_id.as_str())
    }

    /// The campaign's status.
    pub fn status(&self) -> CampaignStatus {
        self.status
    }

    /// The campaign's commission terms, once its budget is opened.
    pub fn terms(&self) -> Option<&Terms> {
        self.opening.as_ref().map(|o| &o.terms)
    }

    /// The whole budget, once opened.
    pub fn total(&self) -> Option<&Money> {
        self.opening.as_ref().map(|o| &o.total)
    }

    /// Minor units reserved or confirmed.
    pub fn reserved_minor(&self) -> i64 {
        self.reserved_minor
    }

    /// Minor units left to reserve: total − reserved (0 before the budget is opened).
    pub fn remaining_minor(&self) -> i64 {
        self.opening
            .as_ref()
            .map_or(0, |o| o.total.amount_minor - self.reserved_minor)
    }

    /// What `saga_id` got from the budget, if it asked or was released.
    pub fn entry(&self, saga_id: &str) -> Option<&BudgetEntry> {
        self.entries.get(saga_id)
    }

    /// Every saga that asked or was released, with what it got, in saga id order; only those
    /// after `after` if given.
    pub fn entries_after<'a>(
        &'a self,
        after: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a str, &'a BudgetEntry)> + 'a {
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        self.entries
            .range::<str, _>((start, Bound::Unbounded))
            .map(|(saga_id, entry)| (saga_id.as_str(), entry))
    }

    fn open(
        &self,
        campaign_id: String,
        budget: Money,
        terms: CommissionTerms,
    ) -> Result<Vec<BudgetEvent>, DomainError> {
        if self.opening.is_some() {
            return Ok(vec![]);
        }
        check_currency(&budget.currency)?;
        if budget.amount_minor < 0 {
            return Err(DomainError::NegativeAmount {
                what: "budget",
                amount_minor: budget.amount_minor,
            });
        }
        let terms = Terms::try_from(terms)?;
        Ok(vec![BudgetEvent::Opened {
            campaign_id,
            budget,
            terms,
        }])
    }

    fn change_status(&self, to: CampaignStatus, at: Timestamp) -> Vec<BudgetEvent> {
        let stale = self.status_since.is_some_and(|since| at < since);
        let unchanged = self.status == to;
        let finished = self.status == CampaignStatus::Completed;
        if unchanged || finished || (stale && to != CampaignStatus::Completed) {
            return vec![];
        }
        vec![match to {
            CampaignStatus::Active => BudgetEvent::Activated { at },
            CampaignStatus::Paused => BudgetEvent::Paused { at },
            _ => BudgetEvent::Completed { at },
        }]
    }

    fn reserve(
        &self,
        saga_id: String,
        commission_id: String,
        sale: Money,
    ) -> Result<Vec<BudgetEvent>, DomainError> {
        if self.entries.contains_key(&saga_id) {
            return Ok(vec![]);
        }
        let reject = |reason, detail| {
            Ok(vec![BudgetEvent::Rejected {
                saga_id: saga_id.clone(),
                commission_id: commission_id.clone(),
                reason,
                detail,
            }])
        };
        let Some(opening) = &self.opening else {
            return reject(
                RejectionReason::CampaignUnknown,
                "the campaign is not known".to_owned(),
            );
        };
        if self.status != CampaignStatus::Active {
            return reject(
                RejectionReason::CampaignInactive,
                format!("campaign {} is {:?}", opening.campaign_id, self.status),
            );
        }
        let currency = &opening.total.currency;
        if sale.currency != *currency {
            // Version 1 of the contract has no reason for it (a new symbol would break its
            // readers): the campaign known here does not pay in the sale's currency.
            return reject(
                RejectionReason::CampaignUnknown,
                format!(
                    "the sale is in {}, campaign {} pays in {currency}",
                    sale.currency, opening.campaign_id
                ),
            );
        }
        let amount = opening.terms.commission_on(sale.amount_minor)?;
        let remaining = self.remaining_minor();
        if amount > remaining {
            return reject(
                RejectionReason::BudgetExhausted,
                format!(
                    "a commission of {amount} minor units of {currency} exceeds the {remaining} \
                     left of campaign {}",
                    opening.campaign_id
                ),
            );
        }
        Ok(vec![BudgetEvent::Reserved {
            saga_id,
            commission_id,
            sale,
            amount: Money::new(amount, currency),
            remaining: Money::new(remaining - amount, currency),
        }])
    }

    fn confirm(&self, saga_id: String) -> Result<Vec<BudgetEvent>, DomainError> {
        match self.entries.get(&saga_id) {
            Some(BudgetEntry::Held(held)) => Ok(vec![BudgetEvent::Confirmed {
                commission_id: held.commission_id.clone(),
                amount: held.amount.clone(),
                saga_id,
            }]),
            Some(BudgetEntry::Confirmed(_)) => Ok(vec![]),
            _ => Err(DomainError::NothingReserved { saga_id }),
        }
    }

    fn release(&self, saga_id: String) -> Vec<BudgetEvent> {
        match self.entries.get(&saga_id) {
            Some(BudgetEntry::Held(held) | BudgetEntry::Confirmed(held)) => {
                vec![BudgetEvent::Released {
                    commission_id: held.commission_id.clone(),
                    amount: held.amount.clone(),
                    saga_id,
                }]
            }
            None => vec![BudgetEvent::Closed { saga_id }],
            Some(BudgetEntry::Rejected { .. } | BudgetEntry::Released(_) | BudgetEntry::Closed) => {
                vec![]
            }
        }
    }
}

impl Aggregate for CampaignBudget {
    type Command = BudgetCommand;
    type Event = BudgetEvent;
    type Error = DomainError;

    fn decide(&self, command: BudgetCommand) -> Result<Vec<BudgetEvent>, DomainError> {
        match command {
            BudgetCommand::Open {
                campaign_id,
                budget,
                terms,
            } => self.open(campaign_id, budget, terms),
            BudgetCommand::Activate { at } => Ok(self.change_status(CampaignStatus::Active, at)),
            BudgetCommand::Pause { at } => Ok(self.change_status(CampaignStatus::Paused, at)),
            BudgetCommand::Complete { at } => Ok(self.change_status(CampaignStatus::Completed, at)),
            BudgetCommand::Reserve {
                saga_id,
                commission_id,
                sale,
            } => self.reserve(saga_id, commission_id, sale),
            BudgetCommand::Confirm { saga_id } => self.confirm(saga_id),
            BudgetCommand::Release { saga_id } => Ok(self.release(saga_id)),
        }
    }

    fn apply(&mut self, event: &BudgetEvent) {
        match event {
            BudgetEvent::Opened {
                campaign_id,
                budget,
                terms,
            } => {
                self.opening = Some(Opening {
                    campaign_id: campaign_id.clone(),
                    total: budget.clone(),
                    terms: terms.clone(),
                });
                if self.status == CampaignStatus::Unknown {
                    self.status = CampaignStatus::Created;
                }
            }
            BudgetEvent::Activated { at } => self.set_status(CampaignStatus::Active, *at),
            BudgetEvent::Paused { at } => self.set_status(CampaignStatus::Paused, *at),
            BudgetEvent::Completed { at } => self.set_status(CampaignStatus::Completed, *at),
            BudgetEvent::Reserved {
                saga_id, amount, ..
            } => {
                self.reserved_minor += amount.amount_minor;
                self.entries
                    .extend(BudgetEntry::answered_by(event).map(|e| (saga_id.clone(), e)));
            }
            BudgetEvent::Rejected { saga_id, .. } => {
                self.entries
                    .extend(BudgetEntry::answered_by(event).map(|e| (saga_id.clone(), e)));
            }
            BudgetEvent::Confirmed { saga_id, .. } => {
                if let Some(entry) = self.entries.get_mut(saga_id)
                    && let BudgetEntry::Held(held) = entry
                {
                    *entry = BudgetEntry::Confirmed(held.clone());
                }
            }
            BudgetEvent::Released { saga_id, .. } => {
                if let Some(entry) = self.entries.get_mut(saga_id)
                    && let BudgetEntry::Held(held) | BudgetEntry::Confirmed(held) = entry
                {
                    self.reserved_minor -= held.amount.amount_minor;
                    *entry = BudgetEntry::Released(held.clone());
                }
            }
            BudgetEvent::Closed { saga_id } => {
                self.entries.insert(saga_id.clone(), BudgetEntry::Closed);
            }
        }
    }
}

impl CampaignBudget {
    fn set_status(&mut self, status: CampaignStatus, at: Timestamp) {
        self.status = status;
        self.status_since = Some(at);
    }
}

/// ISO 4217 alphabetic codes are three uppercase letters.
fn check_currency(code: &str) -> Result<(), DomainError> {
    if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(DomainError::InvalidCurrency(code.to_owned()))
    }
}

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;
