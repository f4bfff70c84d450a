//! Marketing's campaign lifecycle → the campaign's budget: `CampaignCreated` opens it with its
//! total and terms; activation, pause and completion move its status.
//!
//! The campaign is registered for the list of commissions before its budget is opened (see
//! `registry`); a redelivery finds it registered. Each event is then one write to one stream, so the handled message id in that write makes a
//! redelivery a no-op; the budget itself ignores an older status change arriving late (campaign
//! events come on different topics, in any order).

use alpes_contracts::EventMetadata;
use alpes_contracts::events::marketing::{
    CampaignActivated, CampaignCompleted, CampaignCreated, CampaignPaused,
};
use alpes_eventstore::EventStore;

use super::{AppError, Commissions, budget_stream};
use crate::domain::{Aggregate, BudgetCommand};

impl<S: EventStore> Commissions<S> {
    /// `CampaignCreated`: opens the campaign's budget, once the listing's registry names the
    /// campaign. Returns whether the budget changed.
    pub async fn open_budget(&self, created: &CampaignCreated) -> Result<bool, AppError> {
        self.list_campaign(&created.campaign_id).await?;
        let command = BudgetCommand::Open {
            campaign_id: created.campaign_id.clone(),
            budget: created.budget.clone(),
            terms: created.terms.clone(),
        };
        self.change_budget(&created.campaign_id, &created.metadata, command)
            .await
    }

    /// `CampaignActivated`: its sales earn commissions. Returns whether anything changed.
    pub async fn activate_campaign(&self, activated: &CampaignActivated) -> Result<bool, AppError> {
        let at = activated.metadata.occurred_at;
        self.change_budget(
            &activated.campaign_id,
            &activated.metadata,
            BudgetCommand::Activate { at },
        )
        .await
    }

    /// `CampaignPaused`: its sales earn nothing for now. Returns whether anything changed.
    pub async fn pause_campaign(&self, paused: &CampaignPaused) -> Result<bool, AppError> {
        let at = paused.metadata.occurred_at;
        self.change_budget(
            &paused.campaign_id,
            &paused.metadata,
            BudgetCommand::Pause { at },
        )
        .await
    }

    /// `CampaignCompleted`: its sales earn nothing any more. Returns whether anything changed.
    pub async fn complete_campaign(&self, completed: &CampaignCompleted) -> Result<bool, AppError> {
        let at = completed.metadata.occurred_at;
        self.change_budget(
            &completed.campaign_id,
            &completed.metadata,
            BudgetCommand::Complete { at },
        )
        .await
    }

    async fn change_budget(
        &self,
        campaign_id: &str,
        cause: &EventMetadata,
        command: BudgetCommand,
    ) -> Result<bool, AppError> {
        let name = budget_stream(campaign_id);
        let message_id = cause.event_id.as_str();
        self.step(&name, || async {
            let (stream, budget) = self.load_budget(&name).await?;
            if stream.has_handled(message_id) {
                return Ok(Ok(false));
            }
            let events = match budget.decide(command.clone()) {
                Ok(events) if events.is_empty() => return Ok(Ok(false)),
                Ok(events) => events,
                Err(e) => return Ok(Err(e.into())),
            };
            self.append(stream, &events, Vec::new(), Some(message_id))
                .await?;
            Ok(Ok(true))
        })
        .await
    }
}
