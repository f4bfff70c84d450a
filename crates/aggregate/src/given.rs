//! Given events, when a command, then events (or an error): business rules as tests.
//!
//! Every expectation of events also checks what the event store relies on: each decided event
//! survives a JSON round trip unchanged.

use std::fmt::{Debug, Display};

use crate::{Aggregate, DomainEvent};

/// Starts a scenario from the events already in the stream, oldest first.
pub fn given<A: Aggregate>(history: impl AsRef<[A::Event]>) -> Given<A> {
    Given {
        state: A::from_events(history.as_ref()),
    }
}

/// The state a scenario starts from.
pub struct Given<A> {
    state: A,
}

impl<A: Aggregate> Given<A> {
    /// Decides `command` against the given state.
    pub fn when(self, command: A::Command) -> When<A> {
        let outcome = self.state.decide(command);
        When {
            state: self.state,
            outcome,
        }
    }
}

/// A decided command, waiting for its expectation.
pub struct When<A: Aggregate> {
    state: A,
    outcome: Result<Vec<A::Event>, A::Error>,
}

impl<A> When<A>
where
    A: Aggregate,
    A::Event: DomainEvent,
    A::Error: Debug + Display + PartialEq,
{
    /// Expects exactly `expected`; returns the state after them.
    #[track_caller]
    pub fn then(self, expected: impl AsRef<[A::Event]>) -> A {
        let events = self.decided();
        assert_eq!(events, expected.as_ref(), "decided events");
        self.fold(&events)
    }

    /// Expects that nothing new happens (the command was already done); returns the state.
    #[track_caller]
    pub fn then_nothing(self) -> A {
        self.then([])
    }

    /// Expects the command to succeed; returns its events and the state after them, for rules
    /// that are easier to check field by field.
    #[track_caller]
    pub fn then_events(self) -> (Vec<A::Event>, A) {
        let events = self.decided();
        let state = self.fold(&events);
        (events, state)
    }

    /// Expects the command to be refused with `expected`.
    #[track_caller]
    pub fn then_error(self, expected: A::Error) {
        match self.outcome {
            Ok(events) => panic!("expected the error {expected}, got {events:?}"),
            Err(error) => assert_eq!(error, expected),
        }
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

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;

    /// A counter that may not go below zero.
    #[derive(Debug, Default, PartialEq)]
    struct Counter(u32);

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum Counted {
        Up,
        Down,
    }

    impl DomainEvent for Counted {
        fn kind(&self) -> &'static str {
            match self {
                Self::Up => "Up",
                Self::Down => "Down",
            }
        }
    }

    impl Aggregate for Counter {
        type Command = i32;
        type Event = Counted;
        type Error = String;

        fn decide(&self, by: i32) -> Result<Vec<Counted>, String> {
            if by < 0 && by.unsigned_abs() > self.0 {
                return Err(format!("{} is below zero", self.0 as i32 + by));
            }
            let step = if by < 0 { Counted::Down } else { Counted::Up };
            Ok(vec![step; by.unsigned_abs() as usize])
        }

        fn apply(&mut self, event: &Counted) {
            match event {
                Counted::Up => self.0 += 1,
                Counted::Down => self.0 -= 1,
            }
        }
    }

    #[test]
    fn a_scenario_folds_the_history_and_the_decided_events() {
        let after = given::<Counter>([Counted::Up, Counted::Up])
            .when(-1)
            .then(&[Counted::Down]);
        assert_eq!(after, Counter(1));
        given::<Counter>(&[Counted::Up]).when(0).then_nothing();
        let (events, after) = given::<Counter>(Vec::<Counted>::new())
            .when(2)
            .then_events();
        assert_eq!((events.len(), after), (2, Counter(2)));
        given::<Counter>([Counted::Up])
            .when(-2)
            .then_error("-1 is below zero".to_owned());
    }

    #[test]
    #[should_panic(expected = "decided events")]
    fn other_events_than_expected_fail_the_scenario() {
        given::<Counter>([Counted::Up])
            .when(1)
            .then([Counted::Down]);
    }
}
