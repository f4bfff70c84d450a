//! The marketing domain: the campaign lifecycle. (Campaign statistics are counted where the
//! saga log is kept, in the same transaction as each event's step: `alpes_sagalog::campaign`.)

mod campaign;

pub use campaign::{
    Campaign, CampaignDefinition, CampaignEvent, CampaignState, CampaignStatus, DomainError,
    Transition,
};
