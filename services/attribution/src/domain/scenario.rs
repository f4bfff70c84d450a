//! Given events, when a command, then events (or an error): business rules as tests.
//!
//! Every `then` also checks what the event store will rely on: each decided event survives a
//! JSON round trip unchanged, and folding the decided events is possible, so the returned state
//! can be inspected by the test.

use super::{Aggregate, DomainError, DomainEvent};

/// Starts a scenario from the events already in the stream.
pub(crate) fn given<A: Aggregate>(history: &[A::Event]) -> Given<A> {
    Given {
        state: A::from_events(history),
    }
}

/// The state a scenario starts from.
pub(crate) struct Given<A> {
    state: A,
}

impl<A: Aggregate> Given<A> {
    /// Decides `command` against the given state.
    pub(crate) fn when(self, command: A::Command) -> When<A> {
        let outcome = self.state.decide(command);
        When {
            state: self.state,
            outcome,
        }
    }
}

/// A decided command, waiting for its expectation.
pub(crate) struct When<A: Aggregate> {
    state: A,
    outcome: Result<Vec<A::Event>, DomainError>,
}

impl<A: Aggregate> When<A> {
    /// Expects exactly `expected`; returns the state after them.
    #[track_caller]
    pub(crate) fn then(self, expected: &[A::Event]) -> A {
        let events = self.decided();
        assert_eq!(events, expected);
        self.fold(&events)
    }

    /// Expects the command to succeed; returns its events and the state after them, for rules
    /// that are easier to check field by field.
    #[track_caller]
    pub(crate) fn then_events(self) -> (Vec<A::Event>, A) {
        let events = self.decided();
        let state = self.fold(&events);
        (events, state)
    }

    /// Expects the command to be refused with `expected`.
    #[track_caller]
    pub(crate) fn then_error(self, expected: DomainError) {
        assert_eq!(self.outcome.err(), Some(expected));
    }

    #[track_caller]
    fn decided(&self) -> Vec<A::Event> {
        let events = match &self.outcome {
            Ok(events) => events.clone(),
            Err(e) => panic!("expected events, the command was refused: {e}"),
        };
        for event in &events {
            let json = serde_json::to_string(event).expect("an event serializes");
            let back: A::Event = serde_json::from_str(&json).expect("an event deserializes");
            assert_eq!(&back, event, "{} does not survive JSON", event.kind());
        }
        events
    }

    fn fold(mut self, events: &[A::Event]) -> A {
        for event in events {
            self.state.apply(event);
        }
        self.state
    }
}
