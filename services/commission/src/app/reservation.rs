//! `ConversionAttributed` → the saga's commission, reserved against the campaign's budget or
//! rejected, announced by `CommissionReserved` or `CommissionRejected`.
//!
//! Three commits, in the order `crate::domain` documents, decided together and appended as one
//! chain (`EventStore::append_chain`: one write, each commit stored only if the one before it
//! was):
//!
//! 1. the commission is attributed (a compensated saga is rejected `SAGA_COMPENSATED` here, in
//!    the same commit that announces it, and never reaches the budget);
//! 2. the budget reserves, or refuses, for the saga;
//! 3. the budget's answer for the saga is recorded on the commission, in the commit that
//!    announces it.
//!
//! The commission's stream and then the budget's are held for the whole decision (this
//! process's only writer of either meanwhile; compensations take them one after the other,
//! never the budget first). Another replica's write to either makes one commit of the chain
//! conflict: those before it are stored, those after it are not, and the decision is taken
//! again on the streams as they are now.
//!
//! A sale refused in step 1 (its saga compensated, or its campaign unknown for good) reaches no
//! budget, so the listing's registry names it first (see `registry`); every other one is listed
//! through its budget from step 2 on.
//!
//! A crash (or a conflict) after 1 or 2 leaves the commission pending; the redelivered message
//! finds 1 (and 2) deciding nothing and carries on. If a compensation released or closed the
//! saga in the budget meanwhile, there is no answer to record: the compensation announces the
//! saga's end.
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
use alpes_contracts::events::commission::{CommissionRejected, CommissionReserved};
use alpes_eventstore::{EventStore, NewCommit};

use super::{
    AppError, Commissions, applied, budget_stream, commission_stream, new_commit, outgoing, saga_of,
};
use crate::domain::{
    Aggregate, BudgetCommand, BudgetEntry, Commission, CommissionCommand, CommissionEvent,
    CommissionStatus, RejectionReason, Sale,
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
        let cause = &attributed.metadata;
        let name = commission_stream(saga_id);
        let budget_name = budget_stream(&sale.campaign_id);
        self.step(&name, || async {
            // The budget's turn as well, so that its writers find the folded budget unshared
            // and update it in place instead of copying it.
            let _budget_turn = self.writers.lock(&budget_name).await;
            // Taken as new when unknown here: on a new commission, attributing appends, and a
            // refusal for an unknown campaign changes nothing until the last attempt appends.
            let (stream, commission) = self.load_new::<Commission>(&name).await?;
            let (budget_stream, budget) = self.load_budget(&budget_name).await?;
            let mut chain = Vec::new();

            // Step 1: the commission learns its sale, unless its saga was compensated first.
            let mut command = CommissionCommand::Attribute {
                saga_id: saga_id.to_owned(),
                sale: sale.clone(),
            };
            if commission.status() == CommissionStatus::Unattributed
                && budget.campaign_id().is_none()
            {
                if attempt == Attempt::Retryable {
                    return Ok(Err(AppError::CampaignUnknown(sale.campaign_id.clone())));
                }
                command = CommissionCommand::Refuse {
                    saga_id: saga_id.to_owned(),
                    sale: sale.clone(),
                    reason: RejectionReason::CampaignUnknown,
                    detail: format!("campaign {} is not known", sale.campaign_id),
                };
            }
            let events = match commission.decide(command) {
                Ok(events) => events,
                Err(e) => return Ok(Err(e.into())),
            };
            let outbox = match events.first() {
                Some(CommissionEvent::Rejected {
                    sale,
                    reason,
                    detail,
                }) => {
                    // Refused before reaching any budget: the listing's registry names it.
                    self.list_commission(&name, Some(&sale.campaign_id)).await?;
                    vec![outgoing(&rejected(cause, sale, *reason, detail))?]
                }
                _ => Vec::new(),
            };
            let mut version = stream.version();
            if !events.is_empty() {
                chain.push(new_commit(
                    &name,
                    version,
                    &events,
                    outbox,
                    Some(&cause.event_id),
                )?);
                version += 1;
            }
            let commission = applied(commission, &events);
            let (Some(sale), Some(commission_id), CommissionStatus::Pending) = (
                commission.sale(),
                commission.commission_id(),
                commission.status(),
            ) else {
                self.store.append_chain(chain).await?;
                return Ok(Ok(commission.status()));
            };

            // Step 2: the budget reserves for the saga, or refuses.
            let command = BudgetCommand::Reserve {
                saga_id: saga_id.to_owned(),
                commission_id: commission_id.to_owned(),
                sale: sale.amount.clone(),
            };
            let events = match budget.decide(command) {
                Ok(events) => events,
                Err(e) => {
                    self.store.append_chain(chain).await?;
                    return Ok(Err(e.into()));
                }
            };
            let entry = match events.first() {
                Some(event) => BudgetEntry::answered_by(event),
                None => budget.entry(saga_id).cloned(),
            };
            if !events.is_empty() {
                let handled = Some(cause.event_id.as_str());
                let at = budget_stream.version();
                chain.push(new_commit(&budget_name, at, &events, Vec::new(), handled)?);
            }

            // Step 3: the budget's answer is recorded on the commission and announced.
            let answer = match self.answer(saga_id, &commission, entry, cause, version) {
                Ok(answer) => answer,
                Err(e) => {
                    self.store.append_chain(chain).await?;
                    return Ok(Err(e));
                }
            };
            let Some((answer, status)) = answer else {
                // Released or closed: a compensation got there first and announces the end.
                self.store.append_chain(chain).await?;
                drop(budget);
                let (_, commission) = self.load::<Commission>(&name).await?;
                return Ok(Ok(commission.status()));
            };
            chain.extend(answer);
            self.store.append_chain(chain).await?;
            Ok(Ok(status))
        })
        .await
    }

    /// The commit recording the budget's answer `entry` on `commission` (at `version` of its
    /// stream), and the commission's status after it; `None` when there is no answer to
    /// record (released or closed by a compensation).
    fn answer(
        &self,
        saga_id: &str,
        commission: &Commission,
        entry: Option<BudgetEntry>,
        cause: &EventMetadata,
        version: u64,
    ) -> Result<Option<(Option<NewCommit>, CommissionStatus)>, AppError> {
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
            Some(BudgetEntry::Released(_) | BudgetEntry::Closed) | None => return Ok(None),
        };
        let events = commission.decide(command)?;
        if events.is_empty() {
            return Ok(Some((None, commission.status())));
        }
        let after = applied(commission.clone(), &events);
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
        let name = commission_stream(saga_id);
        let commit = new_commit(&name, version, &events, outbox, Some(&cause.event_id))?;
        Ok(Some((Some(commit), after.status())))
    }
}

/// `CommissionRejected` for `sale`, caused by the attribution.
fn rejected(
    cause: &EventMetadata,
    sale: &Sale,
    reason: RejectionReason,
    detail: &str,
) -> CommissionRejected {
    CommissionRejected {
        metadata: EventMetadata::caused_by::<CommissionRejected>(cause),
        campaign_id: sale.campaign_id.clone(),
        partner_id: Some(sale.partner_id.clone()),
        order_id: sale.order_id.clone(),
        reason: reason.into(),
        detail: detail.to_owned(),
    }
}
