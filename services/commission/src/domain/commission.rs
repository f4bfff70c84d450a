//! `Commission`: one per saga, a partner's commission on one sale, from attribution to its end.
//!
//! ```text
//! Unattributed ──Attribute──▶ Pending ──RecordReserved──▶ Reserved ──Confirm──▶ Confirmed
//!      │                         │ └──RecordRejected──▶ Rejected                    │
//!      ├──Refuse (campaign never known here)──────────▶ Rejected                    │
//!      └──────────── Compensate (from any of them) ──────────▶ Reverted ◀───────────┘
//! ```
//!
//! Pending means the budget was asked and its answer is not recorded yet. Compensation must
//! hold whatever the timing, so `Compensate` is accepted in every state:
//!
//! - before attribution, it reverts with nothing to release; the saga is closed here, and a late
//!   `Attribute` is rejected `SAGA_COMPENSATED` without reaching the budget;
//! - while pending, reserved or confirmed, it reverts and names the campaign whose budget must
//!   release ([`Commission::release_from`]); fraud wins over confirmation, which is clawed back;
//! - once rejected, it reverts with nothing to release, so the saga can finish compensating;
//! - once reverted, it decides nothing: compensating twice changes nothing.
//!
//! One compensation is void: a timeout whose deadline is at or after the time the commission
//! was reserved. The saga completed in time; only the timeout's announcement was late (the
//! deadline sweeper raced the reservation, or someone published it by hand), so a correctly
//! paid sale is not reversed. It decides nothing, like the saga log, which keeps such a saga
//! COMPLETED: a timeout is judged by its `deadline` against the reservation's `occurred_at`, the
//! same two times on both sides. A fraud report is never void.
//!
//! Its id is derived from the saga's ([`Commission::id_for`]), so redeliveries find it again.

use alpes_contracts::{Money, Timestamp};
use serde::{Deserialize, Serialize};

use super::{Aggregate, DomainError, DomainEvent, RejectionReason, Sale};

/// Where a commission is in its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CommissionStatus {
    /// Nothing known of its sale yet.
    #[default]
    Unattributed,
    /// Attributed; the budget's answer is not recorded yet.
    Pending,
    /// Reserved against the campaign's budget.
    Reserved,
    /// Owed to the partner.
    Confirmed,
    /// Refused by the budget, or attributed after its saga was compensated.
    Rejected,
    /// Compensated: reverted, whatever it held given back.
    Reverted,
}

/// What can be asked of a commission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommissionCommand {
    /// The saga's sale was attributed (`ConversionAttributed`).
    Attribute {
        /// The saga, from which the commission's id is derived.
        saga_id: String,
        /// The attributed sale.
        sale: Sale,
    },
    /// The budget reserved the commission.
    RecordReserved {
        /// The reserved commission.
        amount: Money,
        /// The budget left after it.
        budget_remaining: Money,
        /// When: the `occurred_at` of the `CommissionReserved` that announces it.
        at: Timestamp,
    },
    /// The sale can never be reserved (its campaign is not known here): it is rejected before
    /// reaching any budget.
    Refuse {
        /// The saga, from which the commission's id is derived.
        saga_id: String,
        /// The refused sale.
        sale: Sale,
        /// Why.
        reason: RejectionReason,
        /// Human-readable detail.
        detail: String,
    },
    /// The budget refused the commission.
    RecordRejected {
        /// Why.
        reason: RejectionReason,
        /// Human-readable detail.
        detail: String,
    },
    /// The commission is owed to the partner.
    Confirm,
    /// The saga is compensated (`FraudDetected`, `SagaTimedOut`).
    Compensate {
        /// Why, as `CommissionReverted.reason` will say.
        reason: String,
        /// For a timeout, its deadline: void if the commission was reserved by then.
        deadline: Option<Timestamp>,
    },
}

/// What happened to a commission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum CommissionEvent {
    /// The sale was attributed; the budget is asked next.
    Attributed {
        /// The commission.
        commission_id: String,
        /// The sale.
        sale: Sale,
    },
    /// The commission was reserved: feeds `CommissionReserved`.
    Reserved {
        /// The reserved commission.
        amount: Money,
        /// The budget left after it.
        budget_remaining: Money,
        /// When (absent from reservations stored before it was recorded).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reserved_at: Option<Timestamp>,
    },
    /// The commission was refused: feeds `CommissionRejected`.
    Rejected {
        /// The sale it was refused for.
        sale: Sale,
        /// Why.
        reason: RejectionReason,
        /// Human-readable detail.
        detail: String,
    },
    /// The commission is owed to the partner: feeds `CommissionConfirmed`.
    Confirmed {
        /// The confirmed amount.
        amount: Money,
    },
    /// The saga was compensated: feeds `CommissionReverted`.
    Reverted {
        /// Why.
        reason: String,
        /// The campaign whose budget must release the saga, when it may hold something.
        release_from: Option<String>,
    },
}

impl DomainEvent for CommissionEvent {
    fn kind(&self) -> &'static str {
        match self {
            Self::Attributed { .. } => "CommissionAttributed",
            Self::Reserved { .. } => "CommissionReserved",
            Self::Rejected { .. } => "CommissionRejected",
            Self::Confirmed { .. } => "CommissionConfirmed",
            Self::Reverted { .. } => "CommissionReverted",
        }
    }
}

/// A partner's commission on one saga's sale.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Commission {
    status: CommissionStatus,
    commission_id: Option<String>,
    sale: Option<Sale>,
    amount: Option<Money>,
    reserved_at: Option<Timestamp>,
    release_from: Option<String>,
}

impl Commission {
    /// The id of the commission of saga `saga_id`.
    pub fn id_for(saga_id: &str) -> String {
        format!("commission-{saga_id}")
    }

    /// The saga of the commission `commission_id`, if it is an id [`Commission::id_for`] made.
    pub fn saga_of(commission_id: &str) -> Option<&str> {
        commission_id
            .strip_prefix("commission-")
            .filter(|saga_id| !saga_id.is_empty())
    }

    /// Where it is in its life.
    pub fn status(&self) -> CommissionStatus {
        self.status
    }

    /// Its id, once attributed.
    pub fn commission_id(&self) -> Option<&str> {
        self.commission_id.as_deref()
    }

    /// The sale it is for, once attributed.
    pub fn sale(&self) -> Option<&Sale> {
        self.sale.as_ref()
    }

    /// The reserved amount, once reserved.
    pub fn amount(&self) -> Option<&Money> {
        self.amount.as_ref()
    }

    /// When it was reserved, once reserved (unknown for reservations stored before this was).
    pub fn reserved_at(&self) -> Option<Timestamp> {
        self.reserved_at
    }

    /// Whether a timeout with `deadline` is void: the commission was reserved (or confirmed)
    /// at or before it. A reservation of unknown time counts as in time.
    pub fn outlives_timeout(&self, deadline: Timestamp) -> bool {
        matches!(
            self.status,
            CommissionStatus::Reserved | CommissionStatus::Confirmed
        ) && self.reserved_at.is_none_or(|at| at <= deadline)
    }

    /// After a revert, the campaign whose budget must release what the saga holds.
    pub fn release_from(&self) -> Option<&str> {
        self.release_from.as_deref()
    }

    fn attribute(&self, saga_id: &str, sale: Sale) -> Result<Vec<CommissionEvent>, DomainError> {
        if sale.amount.amount_minor < 0 {
            return Err(DomainError::NegativeAmount {
                what: "sale",
                amount_minor: sale.amount.amount_minor,
            });
        }
        Ok(match (self.status, &self.sale) {
            (CommissionStatus::Unattributed, _) => vec![CommissionEvent::Attributed {
                commission_id: Self::id_for(saga_id),
                sale,
            }],
            (CommissionStatus::Reverted, None) => vec![CommissionEvent::Rejected {
                sale,
                reason: RejectionReason::SagaCompensated,
                detail: format!("saga {saga_id} was compensated before its sale was attributed"),
            }],
            _ => vec![],
        })
    }

    fn record(&self, event: CommissionEvent) -> Result<Vec<CommissionEvent>, DomainError> {
        match self.status {
            CommissionStatus::Pending => Ok(vec![event]),
            CommissionStatus::Unattributed => Err(DomainError::NotAttributed),
            _ => Ok(vec![]),
        }
    }

    fn confirm(&self) -> Result<Vec<CommissionEvent>, DomainError> {
        match (self.status, &self.amount) {
            (CommissionStatus::Reserved, Some(amount)) => Ok(vec![CommissionEvent::Confirmed {
                amount: amount.clone(),
            }]),
            (CommissionStatus::Confirmed, _) => Ok(vec![]),
            (status, _) => Err(DomainError::NotReserved(status)),
        }
    }

    fn refuse(
        &self,
        saga_id: &str,
        sale: Sale,
        reason: RejectionReason,
        detail: String,
    ) -> Vec<CommissionEvent> {
        match (self.status, &self.sale) {
            (CommissionStatus::Unattributed, _) => vec![CommissionEvent::Rejected {
                sale,
                reason,
                detail,
            }],
            (CommissionStatus::Reverted, None) => vec![CommissionEvent::Rejected {
                sale,
                reason: RejectionReason::SagaCompensated,
                detail: format!("saga {saga_id} was compensated before its sale was attributed"),
            }],
            _ => vec![],
        }
    }

    fn compensate(&self, reason: String, deadline: Option<Timestamp>) -> Vec<CommissionEvent> {
        if deadline.is_some_and(|deadline| self.outlives_timeout(deadline)) {
            return vec![];
        }
        let release_from = match self.status {
            CommissionStatus::Reverted => return vec![],
            CommissionStatus::Unattributed | CommissionStatus::Rejected => None,
            CommissionStatus::Pending
            | CommissionStatus::Reserved
            | CommissionStatus::Confirmed => {
                self.sale.as_ref().map(|sale| sale.campaign_id.clone())
            }
        };
        vec![CommissionEvent::Reverted {
            reason,
            release_from,
        }]
    }
}

impl Aggregate for Commission {
    type Command = CommissionCommand;
    type Event = CommissionEvent;
    type Error = DomainError;

    fn decide(&self, command: CommissionCommand) -> Result<Vec<CommissionEvent>, DomainError> {
        match command {
            CommissionCommand::Attribute { saga_id, sale } => self.attribute(&saga_id, sale),
            CommissionCommand::RecordReserved {
                amount,
                budget_remaining,
                at,
            } => self.record(CommissionEvent::Reserved {
                amount,
                budget_remaining,
                reserved_at: Some(at),
            }),
            CommissionCommand::Refuse {
                saga_id,
                sale,
                reason,
                detail,
            } => {
                if sale.amount.amount_minor < 0 {
                    return Err(DomainError::NegativeAmount {
                        what: "sale",
                        amount_minor: sale.amount.amount_minor,
                    });
                }
                Ok(self.refuse(&saga_id, sale, reason, detail))
            }
            CommissionCommand::RecordRejected { reason, detail } => {
                let sale = match (&self.sale, self.status) {
                    (Some(sale), _) => sale.clone(),
                    (None, CommissionStatus::Unattributed) => {
                        return Err(DomainError::NotAttributed);
                    }
                    (None, _) => return Ok(vec![]),
                };
                self.record(CommissionEvent::Rejected {
                    sale,
                    reason,
                    detail,
                })
            }
            CommissionCommand::Confirm => self.confirm(),
            CommissionCommand::Compensate { reason, deadline } => {
                Ok(self.compensate(reason, deadline))
            }
        }
    }

    fn apply(&mut self, event: &CommissionEvent) {
        match event {
            CommissionEvent::Attributed {
                commission_id,
                sale,
            } => {
                self.status = CommissionStatus::Pending;
                self.commission_id = Some(commission_id.clone());
                self.sale = Some(sale.clone());
            }
            CommissionEvent::Reserved {
                amount,
                reserved_at,
                ..
            } => {
                self.status = CommissionStatus::Reserved;
                self.amount = Some(amount.clone());
                self.reserved_at = *reserved_at;
            }
            CommissionEvent::Rejected { sale, .. } => {
                // A late attribution of a compensated saga is refused but stays compensated.
                if self.status != CommissionStatus::Reverted {
                    self.status = CommissionStatus::Rejected;
                }
                self.sale = Some(sale.clone());
            }
            CommissionEvent::Confirmed { .. } => self.status = CommissionStatus::Confirmed,
            CommissionEvent::Reverted { release_from, .. } => {
                self.status = CommissionStatus::Reverted;
                self.release_from = release_from.clone();
            }
        }
    }
}

#[cfg(test)]
mod tests;
