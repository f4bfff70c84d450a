//! The marketing domain: the campaign lifecycle and the campaign statistics.

mod campaign;
mod stats;

pub use campaign::{
    Campaign, CampaignDefinition, CampaignEvent, CampaignState, CampaignStatus, DomainError,
    Transition,
};
pub use stats::{CampaignStats, Observed};
