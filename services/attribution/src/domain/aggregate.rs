//! What every aggregate of this service is: a decision and a fold.
//!
//! `decide` looks at the current state and a command and says what happened (events) or why the
//! command is invalid; it never changes anything. `apply` folds one event into the state and can
//! not fail, because an event is a fact that was already accepted. Keeping the two apart lets
//! the application layer load a stream, decide, and append the events with the same fold it
//! uses on replay, and lets tests state business rules as given events / when command / then
//! events, with no storage at all.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::DomainError;

/// An event-sourced aggregate: state folded from its own events.
pub trait Aggregate: Default {
    /// What can be asked of the aggregate.
    type Command;
    /// What can happen to it; stored as JSON by the event store.
    type Event: DomainEvent;

    /// What `command` causes given the current state; an empty list means "already done".
    fn decide(&self, command: Self::Command) -> Result<Vec<Self::Event>, DomainError>;

    /// Folds one accepted event into the state.
    fn apply(&mut self, event: &Self::Event);

    /// The state after `events`, oldest first.
    fn from_events<'a>(events: impl IntoIterator<Item = &'a Self::Event>) -> Self
    where
        Self::Event: 'a,
    {
        let mut state = Self::default();
        for event in events {
            state.apply(event);
        }
        state
    }
}

/// A domain event as the event store keeps it: a stable name and a JSON body.
pub trait DomainEvent: Serialize + DeserializeOwned + Clone + std::fmt::Debug + PartialEq {
    /// The event's stored name, e.g. `TouchpointRecorded`; never changes once released.
    fn kind(&self) -> &'static str;
}
