//! A message in hand: what finishing it needs, and its handler's run, which a panic does not
//! escape. The subscription starts the oldest waiting message whose key is free, so one key's
//! messages are handled one after the other, in order.

use std::collections::BTreeMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use pulsar::consumer::Message;

use super::{Outcome, Source};
use crate::Delivery;

/// A received message while its handler runs: what finishing it needs.
pub(super) struct Ticket {
    pub(super) source: Source,
    pub(super) key: Option<String>,
    pub(super) message: Message<Vec<u8>>,
    pub(super) properties: BTreeMap<String, String>,
    pub(super) attempt: u32,
}

/// A decoded message waiting for its handler.
pub(super) struct Ready<E> {
    pub(super) ticket: Ticket,
    pub(super) delivery: Delivery<E>,
}

impl<E> Ready<E> {
    pub(super) fn key(&self) -> Option<&str> {
        self.ticket.key.as_deref()
    }

    /// Hands the delivery to `handler`; the future yields the ticket back with the outcome.
    pub(super) fn start<F, Fut>(
        self,
        handler: &mut F,
    ) -> impl Future<Output = (Ticket, Outcome)> + use<E, F, Fut>
    where
        F: FnMut(Delivery<E>) -> Fut,
        Fut: Future<Output = Outcome>,
    {
        let Self { ticket, delivery } = self;
        // A handler that panics is a bug, but one bad message must not end the subscription
        // (its task would die and nothing would consume again): the panic becomes a retry, so
        // the message comes back and, if it keeps panicking, ends in the dead-letter topic.
        let handled = std::panic::catch_unwind(AssertUnwindSafe(|| handler(delivery)));
        async move {
            let outcome = match handled {
                Ok(handled) => AssertUnwindSafe(handled)
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|panic| panicked(panic.as_ref())),
                Err(panic) => panicked(panic.as_ref()),
            };
            (ticket, outcome)
        }
    }
}

/// The outcome of a handler that panicked with `payload`.
fn panicked(payload: &(dyn std::any::Any + Send)) -> Outcome {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_owned());
    tracing::error!(panic = %message, "a message handler panicked");
    Outcome::Retry(format!("the handler panicked: {message}"))
}
