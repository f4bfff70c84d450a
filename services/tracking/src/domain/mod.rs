//! The tracking domain: interactions and their two facts, registered and discarded.

mod interaction;

pub use interaction::{
    DomainError, Interaction, InteractionEvent, InteractionState, Status, discard, register,
};
