//! The facts marketing counts for campaign statistics, from the events the other services
//! announce. One handler for every such event type: each says which campaign it is about and
//! what it counts as.

use alpes_bus::{Delivery, Outcome};
use alpes_contracts::Event;
use alpes_contracts::events::attribution::{ConversionAttributed, ConversionRejected};
use alpes_contracts::events::commission::{
    CommissionRejected, CommissionReserved, CommissionReverted,
};
use alpes_contracts::events::tracking::InteractionTracked;
use alpes_eventstore::EventStore;

use crate::app::{AppError, Marketing};
use crate::domain::Observed;

/// The default subscription name every marketing replica shares.
pub const SUBSCRIPTION: &str = "marketing";

/// An event that counts in a campaign's statistics.
pub trait Observable: Event {
    /// The campaign it is about and the fact it adds, if it is about a campaign.
    fn observed(&self) -> Option<(String, Observed)>;
}

impl Observable for InteractionTracked {
    fn observed(&self) -> Option<(String, Observed)> {
        let campaign = self.tracking.campaign_id.clone()?;
        Some((campaign, Observed::Interaction { kind: self.kind }))
    }
}

impl Observable for ConversionAttributed {
    fn observed(&self) -> Option<(String, Observed)> {
        let fact = Observed::Conversion {
            amount_minor: self.amount.amount_minor,
        };
        Some((self.campaign_id.clone(), fact))
    }
}

impl Observable for ConversionRejected {
    fn observed(&self) -> Option<(String, Observed)> {
        Some((self.campaign_id.clone()?, Observed::ConversionRejected))
    }
}

impl Observable for CommissionReserved {
    fn observed(&self) -> Option<(String, Observed)> {
        let fact = Observed::CommissionReserved {
            amount_minor: self.commission.amount_minor,
        };
        Some((self.campaign_id.clone(), fact))
    }
}

impl Observable for CommissionRejected {
    fn observed(&self) -> Option<(String, Observed)> {
        Some((self.campaign_id.clone(), Observed::CommissionRejected))
    }
}

impl Observable for CommissionReverted {
    fn observed(&self) -> Option<(String, Observed)> {
        let released_minor = self.released.as_ref().map_or(0, |m| m.amount_minor);
        Some((
            self.campaign_id.clone()?,
            Observed::CommissionReverted { released_minor },
        ))
    }
}

/// Records one announced fact; a store outage is retried, a corrupt store dead-letters.
pub async fn on_observable<E: Observable, S: EventStore>(
    app: &Marketing<S>,
    delivery: Delivery<E>,
) -> Outcome {
    match delivery.event.observed() {
        None => Outcome::Done,
        Some((campaign, fact)) => {
            match app
                .observe(&campaign, &delivery.event.metadata().event_id, &fact)
                .await
            {
                Ok(()) => Outcome::Done,
                Err(AppError::Store(e)) => Outcome::Retry(e.to_string()),
                Err(e) => Outcome::Reject(e.to_string()),
            }
        }
    }
}
