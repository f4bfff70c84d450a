//! `FraudDetected` / `SagaTimedOut` → the saga's commission reverted and whatever it held given
//! back to the budget, announced by exactly one `CommissionReverted` per saga.
//!
//! Writes, in the order `crate::domain` documents:
//!
//! 1. the commission is compensated. When it can hold nothing (never attributed, or rejected)
//!    this write also announces the revert, with nothing released; a late attribution is then
//!    rejected `SAGA_COMPENSATED` and never reaches the budget. A commission never attributed
//!    is in no budget, so the listing's registry names it first (see `registry`).
//! 2. otherwise the campaign's budget releases the saga: what it holds goes back
//!    (`released`), and a saga that holds nothing yet is closed so a racing reservation is
//!    never made. This write announces the revert.
//! 3. one case is left: the budget had already refused the saga when the compensation won the
//!    race to the commission (so its rejection was never recorded or announced). The budget
//!    releases nothing and announces nothing, so the revert is announced by a commit of its own
//!    on the commission's stream, once: a stream whose outbox already holds a
//!    `CommissionReverted` is not announced again.
//!
//! A crash between 1 and 2 is resumed by the redelivery: 1 decides nothing, the commission
//! still names the campaign to release from, and 2 runs. A second compensation of the same
//! saga (fraud then timeout) finds every step done and announces nothing: the first one's
//! `CommissionReverted` already carries the saga's compensation on.
//!
//! A `SagaTimedOut` whose deadline is at or after the commission's reservation is void (see
//! `crate::domain::commission`): nothing is written or announced, the saga stays completed,
//! and its `CommissionReserved` is the answer the saga log ends it with. Answering with a
//! `CommissionReverted` instead would make attribution and tracking undo a sale that stands.

use alpes_contracts::events::commission::CommissionReverted;
use alpes_contracts::events::marketing::{FraudDetected, SagaTimedOut};
use alpes_contracts::{Event, EventMetadata, Money, Timestamp};
use alpes_eventstore::{EventStore, Stream};

use super::{AppError, Commissions, applied, budget_stream, commission_stream, outgoing, saga_of};
use crate::domain::{
    Aggregate, BudgetCommand, BudgetEntry, BudgetEvent, Commission, CommissionCommand,
    CommissionEvent,
};

/// What a compensation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compensated {
    /// `CommissionReverted` was queued now; `released` went back to the budget.
    Reverted {
        /// The amount given back, if the saga held any.
        released: Option<Money>,
    },
    /// The saga was compensated before: nothing changed, nothing was queued.
    AlreadyReverted,
    /// A timeout of a saga whose commission was reserved by its deadline: void, nothing
    /// changed, nothing was queued.
    TimeoutVoid,
}

/// What releasing the saga in its campaign's budget did.
enum Release {
    /// Released or closed now; the revert is announced.
    Announced(Option<Money>),
    /// Released or closed before; the revert was announced then.
    Done,
    /// The budget had refused the saga: nothing to release, nothing announced by the budget.
    Refused,
}

impl<S: EventStore> Commissions<S> {
    /// `FraudDetected`: compensates the saga's commission.
    pub async fn revert_for_fraud(&self, fraud: &FraudDetected) -> Result<Compensated, AppError> {
        let reason = format!("fraud reported by {}: {}", fraud.reporter, fraud.reason);
        self.compensate(&fraud.metadata, "FraudDetected", reason, None)
            .await
    }

    /// `SagaTimedOut`: compensates the saga's commission, unless it was reserved by the
    /// deadline (then the timeout is void).
    pub async fn revert_for_timeout(
        &self,
        timeout: &SagaTimedOut,
    ) -> Result<Compensated, AppError> {
        let reason = format!(
            "saga timed out at {} while {}",
            timeout.deadline.to_rfc3339(),
            timeout.last_status
        );
        self.compensate(
            &timeout.metadata,
            "SagaTimedOut",
            reason,
            Some(timeout.deadline),
        )
        .await
    }

    async fn compensate(
        &self,
        cause: &EventMetadata,
        what: &'static str,
        reason: String,
        deadline: Option<Timestamp>,
    ) -> Result<Compensated, AppError> {
        let saga_id = saga_of(cause, what)?;
        let (commission, reverted_now) = self
            .revert_commission(saga_id, cause, &reason, deadline)
            .await?;
        if deadline.is_some_and(|deadline| commission.outlives_timeout(deadline)) {
            return Ok(Compensated::TimeoutVoid);
        }
        let Some(campaign_id) = commission.release_from() else {
            return Ok(if reverted_now {
                Compensated::Reverted { released: None }
            } else {
                Compensated::AlreadyReverted
            });
        };
        match self
            .release_in_budget(saga_id, campaign_id, cause, &reason)
            .await?
        {
            Release::Announced(released) => Ok(Compensated::Reverted { released }),
            Release::Done => Ok(Compensated::AlreadyReverted),
            Release::Refused => {
                let announced = self.announce_once(saga_id, cause, &reason).await?;
                Ok(if announced {
                    Compensated::Reverted { released: None }
                } else {
                    Compensated::AlreadyReverted
                })
            }
        }
    }

    /// Step 1: the commission is reverted; announced here when it can hold nothing. Returns it
    /// and whether it was reverted now.
    async fn revert_commission(
        &self,
        saga_id: &str,
        cause: &EventMetadata,
        reason: &str,
        deadline: Option<Timestamp>,
    ) -> Result<(Commission, bool), AppError> {
        let name = commission_stream(saga_id);
        self.step(&name, || async {
            let (stream, commission) = self.load::<Commission>(&name).await?;
            let command = CommissionCommand::Compensate {
                reason: reason.to_owned(),
                deadline,
            };
            let events = match commission.decide(command) {
                Ok(events) if events.is_empty() => return Ok(Ok((commission, false))),
                Ok(events) => events,
                Err(e) => return Ok(Err(e.into())),
            };
            if commission.sale().is_none() {
                // Compensated before its sale: no budget will name it, the registry does.
                self.list_commission(&name, None).await?;
            }
            let after = applied(commission, &events);
            let outbox = match after.release_from() {
                None => vec![outgoing(&reverted(cause, reason, None))?],
                Some(_) => Vec::new(),
            };
            self.append(stream, &events, outbox, Some(&cause.event_id))
                .await?;
            Ok(Ok((after, true)))
        })
        .await
    }

    /// Step 2: the budget gives back what the saga holds, or closes it, and announces it.
    async fn release_in_budget(
        &self,
        saga_id: &str,
        campaign_id: &str,
        cause: &EventMetadata,
        reason: &str,
    ) -> Result<Release, AppError> {
        let name = budget_stream(campaign_id);
        self.step(&name, || async {
            let (stream, budget) = self.load_budget(&name).await?;
            let command = BudgetCommand::Release {
                saga_id: saga_id.to_owned(),
            };
            let events = match budget.decide(command) {
                Ok(events) => events,
                Err(e) => return Ok(Err(e.into())),
            };
            let released = match events.first() {
                None => {
                    return Ok(Ok(match budget.entry(saga_id) {
                        Some(BudgetEntry::Rejected { .. }) => Release::Refused,
                        _ => Release::Done,
                    }));
                }
                Some(BudgetEvent::Released {
                    commission_id,
                    amount,
                    ..
                }) => Some(Returned {
                    commission_id,
                    campaign_id,
                    amount,
                }),
                Some(_) => None,
            };
            let outbox = vec![outgoing(&reverted(cause, reason, released.as_ref()))?];
            let amount = released.map(|r| r.amount.clone());
            self.append(stream, &events, outbox, Some(&cause.event_id))
                .await?;
            Ok(Ok(Release::Announced(amount)))
        })
        .await
    }

    /// Step 3: announces the revert on the commission's stream, unless it already was there.
    async fn announce_once(
        &self,
        saga_id: &str,
        cause: &EventMetadata,
        reason: &str,
    ) -> Result<bool, AppError> {
        let name = commission_stream(saga_id);
        self.step(&name, || async {
            let stream = self.store.load(&name).await?;
            if announces_revert(&stream) {
                return Ok(Ok(false));
            }
            let outbox = vec![outgoing(&reverted(cause, reason, None))?];
            self.append::<CommissionEvent>(stream, &[], outbox, Some(&cause.event_id))
                .await?;
            Ok(Ok(true))
        })
        .await
    }
}

/// What went back to a budget.
struct Returned<'a> {
    commission_id: &'a str,
    campaign_id: &'a str,
    amount: &'a Money,
}

/// `CommissionReverted` caused by the compensation; commission and campaign are named only when
/// something was released, as the contract says.
fn reverted(
    cause: &EventMetadata,
    reason: &str,
    released: Option<&Returned<'_>>,
) -> CommissionReverted {
    CommissionReverted {
        metadata: EventMetadata::caused_by::<CommissionReverted>(cause),
        commission_id: released.map(|r| r.commission_id.to_owned()),
        campaign_id: released.map(|r| r.campaign_id.to_owned()),
        released: released.map(|r| r.amount.clone()),
        reason: reason.to_owned(),
    }
}

/// Whether a commit of `stream` already queued a `CommissionReverted`.
fn announces_revert(stream: &Stream) -> bool {
    let name = CommissionReverted::event_type().name;
    stream
        .commits
        .iter()
        .flat_map(|c| &c.outbox)
        .any(|o| o.event_type.as_deref() == Some(name))
}
