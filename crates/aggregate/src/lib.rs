//! What every event-sourced aggregate of alpes is: a decision and a fold — and business rules
//! stated as given events / when a command / then events, with no storage at all.
//!
//! `decide` looks at the current state and a command and says what happened (events) or why
//! the command is invalid; it never changes anything. `apply` folds one event into the state and
//! cannot fail, because an event is a fact already accepted. Keeping the two apart lets a
//! service load a stream, decide, and append the events with the same fold it uses on replay,
//! and lets tests state each rule from a list of past events alone ([`given`]).
//!
//! No I/O here, and nothing about Pulsar or MongoDB: each service's domain depends on this
//! crate alone of the platform's.

mod given;

use std::fmt::Debug;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use given::{Given, When, given};

/// An event-sourced aggregate: state folded from its own events.
pub trait Aggregate: Default {
    /// What can be asked of the aggregate.
    type Command;
    /// What can happen to it.
    type Event;
    /// Why a command is refused: the input breaks a rule (a business refusal that must be
    /// announced is an event, not an error).
    type Error;

    /// What `command` causes given the current state; an empty list means "already done".
    fn decide(&self, command: Self::Command) -> Result<Vec<Self::Event>, Self::Error>;

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
pub trait DomainEvent: Serialize + DeserializeOwned + Clone + Debug + PartialEq {
    /// The event's stored name, e.g. `TouchpointRecorded`; never changes once released.
    fn kind(&self) -> &'static str;
}
