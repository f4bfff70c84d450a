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
use serde_json::Value;

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

/// A domain event as the event store keeps it: a stable name, a version of its shape, and a
/// JSON body.
///
/// Stored events are the service's own types, never the integration contract's: a change to
/// `schema/v1` must not change what replay reads. When a stored shape has to change, its
/// [`DomainEvent::VERSION`] goes up by one and [`DomainEvent::upcast`] learns to bring the
/// previous version's JSON up to it; [`read`] applies the chain to what earlier versions
/// stored, so the domain only ever sees the current shape.
pub trait DomainEvent: Serialize + DeserializeOwned + Clone + Debug + PartialEq {
    /// The version of the stored shape written now; 1 until the shape first changes.
    const VERSION: u32 = 1;

    /// The event's stored name, e.g. `TouchpointRecorded`; never changes once released.
    fn kind(&self) -> &'static str;

    /// Brings `data`, stored under `kind` at `version` (below [`DomainEvent::VERSION`]), to
    /// `version + 1`. Only events that have had a version 2 need to say how.
    fn upcast(kind: &str, version: u32, data: Value) -> Result<Value, String> {
        let _ = data;
        Err(format!("{kind} has no version {version} to read"))
    }
}

/// Reads an event stored under `kind` at `version`: brings its data up to the current version,
/// then decodes it. An event stored by a newer version of the service than this one is an
/// error, not a guess. Data at the current version is decoded where it is, without a copy.
pub fn read<E: DomainEvent>(kind: &str, version: u32, data: &Value) -> Result<E, String> {
    let decoded = match version.cmp(&E::VERSION) {
        std::cmp::Ordering::Equal => E::deserialize(data),
        std::cmp::Ordering::Less => {
            let mut data = data.clone();
            for from in version..E::VERSION {
                data = E::upcast(kind, from, data)?;
            }
            E::deserialize(&data)
        }
        std::cmp::Ordering::Greater => {
            return Err(format!(
                "{kind} is stored at version {version}; this build reads up to {}",
                E::VERSION
            ));
        }
    };
    decoded.map_err(|e| format!("{kind} (version {}): {e}", E::VERSION))
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};
    use serde_json::json;

    use super::*;

    /// Version 1 stored `{"amount": 5}` (whole euros); version 2 renamed it `euros`; version 3
    /// keeps cents.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Paid {
        cents: i64,
    }

    impl DomainEvent for Paid {
        const VERSION: u32 = 3;

        fn kind(&self) -> &'static str {
            "Paid"
        }

        fn upcast(kind: &str, version: u32, mut data: Value) -> Result<Value, String> {
            let field = |data: &mut Value, name: &str| {
                data.as_object_mut()
                    .and_then(|fields| fields.remove(name))
                    .ok_or_else(|| format!("{kind} v{version} has no {name}"))
            };
            match version {
                1 => Ok(json!({ "euros": field(&mut data, "amount")? })),
                2 => {
                    let euros = field(&mut data, "euros")?.as_i64().ok_or("euros")?;
                    Ok(json!({ "cents": euros * 100 }))
                }
                _ => Err(format!("{kind} has no version {version}")),
            }
        }
    }

    #[test]
    fn an_event_stored_at_any_earlier_version_reads_as_the_current_shape() {
        let paid = Paid { cents: 500 };
        assert_eq!(
            read::<Paid>("Paid", 1, &json!({ "amount": 5 })),
            Ok(paid.clone())
        );
        assert_eq!(
            read::<Paid>("Paid", 2, &json!({ "euros": 5 })),
            Ok(paid.clone())
        );
        assert_eq!(read::<Paid>("Paid", 3, &json!({ "cents": 500 })), Ok(paid));
    }

    #[test]
    fn an_event_stored_by_a_newer_build_or_in_a_broken_shape_is_an_error() {
        let newer = read::<Paid>("Paid", 4, &json!({ "cents": 500 })).unwrap_err();
        assert!(newer.contains("version 4"), "{newer}");
        let broken = read::<Paid>("Paid", 1, &json!({ "cents": 500 })).unwrap_err();
        assert!(broken.contains("no amount"), "{broken}");
    }
}
