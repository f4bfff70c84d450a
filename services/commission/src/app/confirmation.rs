//! Confirming a reserved commission: it is owed to the partner, announced by
//! `CommissionConfirmed`.
//!
//! The commission decides and announces (fraud wins over confirmation: a reverted commission
//! cannot be confirmed, and a confirmed one is still clawed back by a compensation). The budget
//! then books the reservation as confirmed; that write is bookkeeping only (a confirmed
//! reservation stays counted as reserved), so a crash before it is repaired by confirming
//! again, which is idempotent, and a compensation that released the saga meanwhile leaves
//! nothing to book.

use alpes_contracts::EventMetadata;
use alpes_contracts::events::commission::CommissionConfirmed;
use alpes_eventstore::EventStore;
use alpes_runtime::trace::TraceContext;

use super::{
    AppError, CommissionView, Commissions, applied, budget_stream, commission_stream, outgoing,
};
use crate::domain::{
    Aggregate, BudgetCommand, Commission, CommissionCommand, CommissionStatus, DomainError,
};

impl<S: EventStore> Commissions<S> {
    /// Confirms the reserved commission `commission_id` and queues `CommissionConfirmed`;
    /// confirming it again changes nothing. Fails with [`DomainError::NotReserved`] when it is
    /// neither reserved nor confirmed.
    pub async fn confirm(
        &self,
        commission_id: &str,
        trace: &TraceContext,
    ) -> Result<CommissionView, AppError> {
        let unknown = || AppError::UnknownCommission(commission_id.to_owned());
        let saga_id = Commission::saga_of(commission_id).ok_or_else(unknown)?;
        let name = commission_stream(saga_id);
        let commission = self
            .step(&name, || async {
                let (stream, commission) = self.load::<Commission>(&name).await?;
                if stream.version() == 0 {
                    return Ok(Err(unknown()));
                }
                let events = match commission.decide(CommissionCommand::Confirm) {
                    Ok(events) if events.is_empty() => return Ok(Ok(commission)),
                    Ok(events) => events,
                    Err(e) => return Ok(Err(e.into())),
                };
                let after = applied(commission, &events);
                let outbox = match (after.sale(), after.amount()) {
                    (Some(sale), Some(amount)) => {
                        let mut metadata =
                            EventMetadata::new::<CommissionConfirmed>().in_saga(saga_id);
                        metadata.traceparent = Some(trace.traceparent.clone());
                        metadata.tracestate = trace.tracestate.clone();
                        vec![outgoing(&CommissionConfirmed {
                            metadata,
                            commission_id: Commission::id_for(saga_id),
                            campaign_id: sale.campaign_id.clone(),
                            partner_id: sale.partner_id.clone(),
                            amount: amount.clone(),
                        })?]
                    }
                    _ => Vec::new(),
                };
                self.append(stream, &events, outbox, None).await?;
                Ok(Ok(after))
            })
            .await?;

        if let (CommissionStatus::Confirmed, Some(sale)) = (commission.status(), commission.sale())
        {
            self.book_confirmation(saga_id, &sale.campaign_id).await?;
        }
        self.commission(commission_id).await?.ok_or_else(unknown)
    }

    /// The budget counts the saga's reservation as confirmed.
    async fn book_confirmation(&self, saga_id: &str, campaign_id: &str) -> Result<(), AppError> {
        let name = budget_stream(campaign_id);
        self.step(&name, || async {
            let (stream, budget) = self.load_budget(&name).await?;
            let command = BudgetCommand::Confirm {
                saga_id: saga_id.to_owned(),
            };
            match budget.decide(command) {
                Ok(events) if events.is_empty() => Ok(Ok(())),
                Ok(events) => {
                    self.append(stream, &events, Vec::new(), None).await?;
                    Ok(Ok(()))
                }
                // Released by a compensation since: nothing is held, nothing to book.
                Err(DomainError::NothingReserved { .. }) => Ok(Ok(())),
                Err(e) => Ok(Err(e.into())),
            }
        })
        .await
    }
}
