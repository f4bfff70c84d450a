//! The marketing domain: the campaign lifecycle. (Campaign statistics are counted where the
//! saga log is kept, in the same transaction as each event's step: `alpes_sagalog::campaign`.)

mod campaign;

pub use alpes_aggregate::{Aggregate, DomainEvent};
pub use campaign::{
    Campaign, CampaignCommand, CampaignDefinition, CampaignEvent, CampaignState, CampaignStatus,
    DomainError, Model, RateKind, Terms, Transition,
};
