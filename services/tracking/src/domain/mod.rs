//! The tracking domain: interactions and their two facts, registered and discarded.

mod interaction;

pub use alpes_aggregate::{Aggregate, DomainEvent};
pub use interaction::{
    DomainError, Interaction, InteractionCommand, InteractionEvent, InteractionState, Status,
};
