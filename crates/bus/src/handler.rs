//! The one shape of a consumer: a use case that handles an event, and an error that says
//! whether trying again may help.
//!
//! Every service implements [`Handler`] for each event type it consumes (its wiring then only
//! names the event types), and [`settle`] turns what the use case answered into the message's
//! [`Outcome`] the same way everywhere: done when the effect is durable, retried when the
//! failure may pass (an outage, writers colliding, a fact still on its way), dead-lettered with
//! the error as reason when the message can never be handled. A business refusal is not an
//! error here: the use case records it as an event and answers `Ok`.

use std::fmt::Display;
use std::future::Future;

use alpes_contracts::Event;

use crate::{Attempt, Delivery, Outcome};

/// A use case's failure, classified for the message that caused it.
pub trait Failure: Display {
    /// Whether handling the same message later may succeed. If not, it is dead-lettered at
    /// once, with this error as the reason.
    fn is_retryable(&self) -> bool;
}

/// Handles one consumed event type. Implemented by a service's use cases, once per event type.
pub trait Handler<E: Event>: Clone + Send + Sync + 'static {
    /// Why handling failed.
    type Error: Failure + Send;

    /// Runs the use case for `event`; `Ok` once its effect is durable. `attempt` says whether
    /// another delivery may follow if this one fails.
    fn handle(
        &self,
        event: &E,
        attempt: Attempt,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// Hands `delivery` to `handler` and says what becomes of the message.
pub async fn settle<E: Event, H: Handler<E>>(handler: &H, delivery: Delivery<E>) -> Outcome {
    let handled = handler
        .handle(&delivery.event, delivery.kind_of_attempt())
        .await;
    let error = match handled {
        Ok(()) => return Outcome::Done,
        Err(error) => error,
    };
    let metadata = delivery.event.metadata();
    // A failure that may pass (a fact still on its way, an outage) is part of normal operation;
    // one that dead-letters the message is not. (A tracing level is fixed where it is written.)
    if error.is_retryable() {
        tracing::info!(
            event = E::event_type().name,
            event_id = %metadata.event_id,
            saga = ?metadata.saga_id,
            attempt = delivery.attempt,
            %error,
            "message not handled yet"
        );
        Outcome::Retry(error.to_string())
    } else {
        tracing::warn!(
            event = E::event_type().name,
            event_id = %metadata.event_id,
            saga = ?metadata.saga_id,
            attempt = delivery.attempt,
            %error,
            "message cannot be handled"
        );
        Outcome::Reject(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use alpes_contracts::EventMetadata;
    use alpes_contracts::events::attribution::AttributionReverted;

    use super::*;

    #[derive(Debug)]
    struct Failed {
        retryable: bool,
    }

    impl Display for Failed {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "failed (retryable: {})", self.retryable)
        }
    }

    impl Failure for Failed {
        fn is_retryable(&self) -> bool {
            self.retryable
        }
    }

    /// Answers what it was told to, and remembers the attempts it was shown.
    #[derive(Clone)]
    struct Scripted {
        answer: Option<bool>,
        seen: Arc<Mutex<Vec<Attempt>>>,
    }

    impl Handler<AttributionReverted> for Scripted {
        type Error = Failed;

        async fn handle(&self, _: &AttributionReverted, attempt: Attempt) -> Result<(), Failed> {
            self.seen.lock().unwrap().push(attempt);
            match self.answer {
                None => Ok(()),
                Some(retryable) => Err(Failed { retryable }),
            }
        }
    }

    fn delivery(attempt: u32) -> Delivery<AttributionReverted> {
        Delivery {
            event: AttributionReverted {
                metadata: EventMetadata::new::<AttributionReverted>().in_saga("saga-1"),
                journey_id: "journey-1".into(),
                interaction_ids: vec!["i-1".into()],
                reason: "fraud".into(),
            },
            attempt,
            max_attempts: 3,
            topic: "t".into(),
            message_id: "1:1:-1:-1".into(),
            key: Some("saga-1".into()),
            properties: BTreeMap::new(),
            event_time_ms: None,
        }
    }

    async fn settled(answer: Option<bool>, attempt: u32) -> (Outcome, Vec<Attempt>) {
        let handler = Scripted {
            answer,
            seen: Arc::default(),
        };
        let outcome = settle(&handler, delivery(attempt)).await;
        let seen = handler.seen.lock().unwrap().clone();
        (outcome, seen)
    }

    #[tokio::test]
    async fn a_handled_event_is_done_a_passing_failure_retried_and_any_other_dead_lettered() {
        assert_eq!(settled(None, 1).await.0, Outcome::Done);
        assert_eq!(
            settled(Some(true), 1).await.0,
            Outcome::Retry("failed (retryable: true)".into())
        );
        assert_eq!(
            settled(Some(false), 1).await.0,
            Outcome::Reject("failed (retryable: false)".into())
        );
    }

    #[tokio::test]
    async fn the_handler_is_told_whether_another_attempt_may_follow() {
        assert_eq!(settled(None, 2).await.1, [Attempt::Retryable]);
        assert_eq!(settled(None, 3).await.1, [Attempt::Last]);
    }
}
