//! `ConversionAttributed` → the saga's commission, reserved against the campaign's budget or
//! rejected, announced by `CommissionReserved` or `CommissionRejected`.
//!
//! Three writes, in the order `crate::domain` documents:
//!
//! 1. the commission is attributed (a compensated saga is rejected `SAGA_COMPENSATED` here, in
//!    the same write that announces it, and never reaches the budget);
//! 2. the budget reserves, or refuses, for the saga;
//! 3. the budget's answer for the saga is recorded on the commission, in the write that
//!    announces it.
//!
//! A sale refused in step 1 (its saga compensated, or its campaign unknown for good) reaches no
//! budget, so the listing's registry names it first (see `registry`); every other one is listed
//! through its budget from step 2 on.
//!
//! A crash after 1 or 2 leaves the commission pending; the redelivered message finds 1 (and 2)
//! deciding nothing and carries on. If a compensation released or closed the saga in the budget
//! meanwhile, there is no answer to record: the compensation announces the saga's end.
//!
//! A sale of a campaign this instance has never heard of is not answered `CAMPAIGN_UNKNOWN`
//! at once: attribution only attributes to campaigns it knows, so here it usually means the
//! campaign's events have not arrived yet (they come on other topics). Nothing is written and
//! [`AppError::CampaignUnknown`] is returned; the consumer retries it with backoff. On the last
//! attempt ([`Attempt::Last`]) the campaign is taken as unknown for good (or belonging to another
//! deployment sharing the topics) and the sale is rejected `CAMPAIGN_UNKNOWN`, announced like
//! any other rejection: a business refusal ends the saga, it is never a dead letter.

use alpes_bus::Attempt;
use alpes_contracts::EventMetadata;
use alpes_contracts::events::attribution::ConversionAttributed;
use alpes_contracts::events::commission::{
    CommissionRejected, CommissionRejectionReason, CommissionReserved,
};
use alpes_eventstore::EventStore;

use super::{AppError, Commissions, applied, budget_stream, commission_stream, outgoing, saga_of};
use crate::domain::{
    Aggregate, BudgetCommand, BudgetEntry, Commission, CommissionCommand, CommissionEvent,
    CommissionStatus, Sale,
};

impl<S: EventStore> Commissions<S> {
    /// Reserves the commission of an attributed sale, or records why not, and queues
    /// `CommissionReserved` or `CommissionRejected`. A redelivery, or another attribution of the
    /// same saga, changes nothing. Returns the commission's status afterwards.
    pub async fn reserve(
        &self,
        attributed: &ConversionAttributed,
        attempt: Attempt,
    ) -> Result<CommissionStatus, AppError> {
        let saga_id = saga_of(&attributed.metadata, "ConversionAttributed")?;
        let sale = Sale::from_conversion(attributed)?;
        let commission = self
            .attribute(saga_id, sale, &attributed.metadata, attempt)
            .await?;
        if commission.status() != CommissionStatus::Pending {
            return Ok(commission.status());
        }
        let entry = self
            .reserve_in_budget(saga_id, &commission, &attributed.metadata.event_id)
            .await?;
        self.record_answer(saga_id, entry, &attributed.metadata)
            .await
    }

    /// Step 1: the commission learns its sale, unless its saga was compensated first.
    async fn attribute(
        &self,
        saga_id: &str,
        sale: Sale,
        cause: &EventMetadata,
        attempt: Attempt,
    ) -> Result<Commission, AppError> {
        let name = commission_stream(saga_id);
        self.step(&name, || async {
            // Taken as new when unknown here: on a new commission, attributing appends, and a
            // refusal for an unknown campaign changes nothing until the last attempt appends.
            let (stream, commission) = self.load_new::<Commission>(&name).await?;
            let mut command = CommissionCommand::Attribute {
                saga_id: saga_id.to_owned(),
                sale: sale.clone(),
            };
            if commission.status() == CommissionStatus::Unattributed
                && !self.campaign_known(&sale.campaign_id).await?
            {
                if attempt == Attempt::Retryable {
                    return Ok(Err(AppError::CampaignUnknown(sale.campaign_id.clone())));
                }
                command = CommissionCommand::Refuse {
                    saga_id: saga_id.to_owned(),
                    sale: sale.clone(),
                    reason: CommissionRejectionReason::CampaignUnknown,
                    detail: format!("campaign {} is not known", sale.campaign_id),
                };
            }
            let events = match commission.decide(command) {
                Ok(events) => events,
                Err(e) => return Ok(Err(e.into())),
            };
            let outbox = match events.first() {
                None => return Ok(Ok(commission)),
                Some(CommissionEvent::Rejected {
                    sale,
                    reason,
                    detail,
                }) => {
                    // Refused before reaching any budget: the listing's registry names it.
                    self.list_commission(&name, Some(&sale.campaign_id)).await?;
                    vec![outgoing(&rejected(cause, sale, *reason, detail))?]
                }
                Some(_) => Vec::new(),
            };
            self.append(stream, &events, outbox, Some(&cause.event_id))
                .await?;
            Ok(Ok(applied(commission, &events)))
        })
        .await
    }

    /// Step 2: the budget reserves for the saga, or refuses; returns its answer for the saga.
    async fn reserve_in_budget(
        &self,
        saga_id: &str,
        commission: &Commission,
        message_id: &str,
    ) -> Result<Option<BudgetEntry>, AppError> {
        let (Some(sale), Some(commission_id)) = (commission.sale(), commission.commission_id())
        else {
            return Ok(None); // a pending commission always has both
        };
        let name = budget_stream(&sale.campaign_id);
        self.step(&name, || async {
            let (stream, budget) = self.load_budget(&name).await?;
            let command = BudgetCommand::Reserve {
                saga_id: saga_id.to_owned(),
                commission_id: commission_id.to_owned(),
                sale: sale.amount.clone(),
            };
            let events = match budget.decide(command) {
                Ok(events) => events,
                Err(e) => return Ok(Err(e.into())),
            };
            if events.is_empty() {
                return Ok(Ok(budget.entry(saga_id).cloned()));
            }
            self.append(stream, &events, Vec::new(), Some(message_id))
                .await?;
            // Folding the new commit onto the kept budget updates it in place once this copy
            // is gone.
            drop(budget);
            let (_, after) = self.load_budget(&name).await?;
            Ok(Ok(after.entry(saga_id).cloned()))
        })
        .await
    }

    /// Step 3: the budget's answer is recorded on the commission and announced.
    async fn record_answer(
        &self,
        saga_id: &str,
        entry: Option<BudgetEntry>,
        cause: &EventMetadata,
    ) -> Result<CommissionStatus, AppError> {
        let name = commission_stream(saga_id);
        // The reservation's time is the announcement's: a timeout is judged against it here
        // and in the saga log alike.
        let announced = EventMetadata::caused_by::<CommissionReserved>(cause);
        let command = match entry {
            Some(BudgetEntry::Held(held) | BudgetEntry::Confirmed(held)) => {
                CommissionCommand::RecordReserved {
                    amount: held.amount,
                    budget_remaining: held.remaining_after,
                    at: announced.occurred_at,
                }
            }
            Some(BudgetEntry::Rejected { reason, detail }) => {
                CommissionCommand::RecordRejected { reason, detail }
            }
            // Released or closed: a compensation got there first and announces the saga's end.
            Some(BudgetEntry::Released(_) | BudgetEntry::Closed) | None => {
                let (_, commission) = self.load::<Commission>(&name).await?;
                return Ok(commission.status());
            }
        };
        self.step(&name, || async {
            let (stream, commission) = self.load::<Commission>(&name).await?;
            let events = match commission.decide(command.clone()) {
                Ok(events) if events.is_empty() => return Ok(Ok(commission.status())),
                Ok(events) => events,
                Err(e) => return Ok(Err(e.into())),
            };
            let after = applied(commission, &events);
            let outbox = match (events.first(), after.sale()) {
                (
                    Some(CommissionEvent::Reserved {
                        amount,
                        budget_remaining,
                        ..
                    }),
                    Some(sale),
                ) => vec![outgoing(&CommissionReserved {
                    metadata: announced.clone(),
                    commission_id: Commission::id_for(saga_id),
                    campaign_id: sale.campaign_id.clone(),
                    partner_id: sale.partner_id.clone(),
                    order_id: sale.order_id.clone(),
                    sale_amount: sale.amount.clone(),
                    commission: amount.clone(),
                    budget_remaining: budget_remaining.clone(),
                })?],
                (
                    Some(CommissionEvent::Rejected {
                        sale,
                        reason,
                        detail,
                    }),
                    _,
                ) => vec![outgoing(&rejected(cause, sale, *reason, detail))?],
                _ => Vec::new(),
            };
            self.append(stream, &events, outbox, Some(&cause.event_id))
                .await?;
            Ok(Ok(after.status()))
        })
        .await
    }
}

/// `CommissionRejected` for `sale`, caused by the attribution.
fn rejected(
    cause: &EventMetadata,
    sale: &Sale,
    reason: CommissionRejectionReason,
    detail: &str,
) -> CommissionRejected {
    CommissionRejected {
        metadata: EventMetadata::caused_by::<CommissionRejected>(cause),
        campaign_id: sale.campaign_id.clone(),
        partner_id: Some(sale.partner_id.clone()),
        order_id: sale.order_id.clone(),
        reason,
        detail: detail.to_owned(),
    }
}
