//! The marketing domain: the campaign lifecycle.

mod campaign;

pub use campaign::{
    Campaign, CampaignDefinition, CampaignEvent, CampaignState, CampaignStatus, DomainError,
    Transition,
};
