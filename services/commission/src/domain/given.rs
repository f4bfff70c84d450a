//! Given past events, when a command, then these events (or this error): business rules as
//! tests, with no store in sight.

use std::fmt::Debug;

use super::{Aggregate, DomainError};

/// An aggregate rebuilt from the events it already recorded.
pub struct Given<A>(A);

/// The decision a command led to, and the state it was decided in.
pub struct When<A: Aggregate> {
    state: A,
    decided: Result<Vec<A::Event>, DomainError>,
}

/// The state after `events`.
pub fn given<A: Aggregate>(events: impl IntoIterator<Item = A::Event>) -> Given<A> {
    let events: Vec<_> = events.into_iter().collect();
    Given(A::from_events(&events))
}

impl<A: Aggregate> Given<A> {
    /// Decides `command` in that state.
    pub fn when(self, command: A::Command) -> When<A> {
        let decided = self.0.decide(command);
        When {
            state: self.0,
            decided,
        }
    }
}

impl<A: Aggregate> When<A>
where
    A::Event: Debug + PartialEq,
{
    /// Asserts the decided events and returns the state after them.
    #[track_caller]
    pub fn then(self, expected: impl IntoIterator<Item = A::Event>) -> A {
        let expected: Vec<_> = expected.into_iter().collect();
        let mut state = self.state;
        match self.decided {
            Ok(events) => {
                assert_eq!(events, expected, "decided events");
                for event in &events {
                    state.apply(event);
                }
                state
            }
            Err(error) => panic!("expected {expected:?}, got the error {error}"),
        }
    }

    /// Asserts that nothing new happens: the command was already done.
    #[track_caller]
    pub fn then_nothing(self) -> A {
        self.then([])
    }

    /// Asserts the command is refused with `expected`.
    #[track_caller]
    pub fn then_error(self, expected: DomainError) {
        match self.decided {
            Ok(events) => panic!("expected the error {expected}, got {events:?}"),
            Err(error) => assert_eq!(error, expected),
        }
    }
}
