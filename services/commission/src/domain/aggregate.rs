//! What every aggregate of this domain is: a decision from a command, and a fold of events.
//!
//! Deciding never changes state; only applying a recorded event does. So the same `apply`
//! serves a fresh decision and a replay of the stored stream, and a decision can be tested
//! from a list of past events alone.

use super::DomainError;

/// A consistency boundary stored as one event stream.
pub trait Aggregate: Default {
    /// What can be asked of it.
    type Command;
    /// What it records; serialized as JSON by the event store.
    type Event;

    /// The events `command` causes in this state: none when it was already done.
    fn decide(&self, command: Self::Command) -> Result<Vec<Self::Event>, DomainError>;

    /// The state after `event`; never fails, since events are facts already decided.
    fn apply(&mut self, event: &Self::Event);

    /// The state after every event of a stream, oldest first.
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
