//! Every integration event type, one module per producing service.

pub mod attribution;
pub mod commission;
pub mod marketing;
pub mod tracking;

use crate::{Event, EventType};

/// Every event type alpes knows, in a stable order: forward path, compensation, campaigns.
pub fn all() -> [&'static EventType; 15] {
    [
        tracking::InteractionTracked::event_type(),
        attribution::ConversionAttributed::event_type(),
        attribution::ConversionRejected::event_type(),
        commission::CommissionReserved::event_type(),
        commission::CommissionRejected::event_type(),
        commission::CommissionConfirmed::event_type(),
        marketing::FraudDetected::event_type(),
        marketing::SagaTimedOut::event_type(),
        commission::CommissionReverted::event_type(),
        attribution::AttributionReverted::event_type(),
        tracking::InteractionsDiscarded::event_type(),
        marketing::CampaignCreated::event_type(),
        marketing::CampaignActivated::event_type(),
        marketing::CampaignPaused::event_type(),
        marketing::CampaignCompleted::event_type(),
    ]
}

/// The event type called `name` (e.g. `FraudDetected`), if alpes knows it.
pub fn by_name(name: &str) -> Option<&'static EventType> {
    all().into_iter().find(|t| t.name == name)
}
