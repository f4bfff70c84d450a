//! The tracking domain: interactions and their two facts, registered and discarded.

mod interaction;
mod parts;

pub use alpes_aggregate::{Aggregate, DomainEvent};
pub use interaction::{
    DomainError, Interaction, InteractionCommand, InteractionEvent, InteractionState, Status,
};
pub use parts::{InteractionKind, PageContext, Purchase, Target, TrackingParams, Visitor};
