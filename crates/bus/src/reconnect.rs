//! Staying subscribed through a broker restart, and saying so while it is not.
//!
//! The `pulsar` crate re-creates a producer on its own and resends what it had pending, but a
//! consumer whose connection dropped ends its message stream once the client's own
//! reconnection gives up, and nothing brings that stream back (see `shared/NOTES-pulsar.md`).
//! So a [`crate::Subscription`] rebuilds its consumers itself, after a capped, jittered
//! exponential backoff, until shutdown; and it keeps its state in a [`SubscriptionHealth`] that
//! readiness probes and metrics read without touching the broker.
//!
//! The consumers' client is told to give up reconnecting after a few quick attempts
//! ([`consumer_connection_retries`]): a dropped connection then shows as a subscription that
//! is down within seconds, retried at our own pace, instead of hiding behind the client's
//! silent retries for the better part of a minute.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use pulsar::{ConnectionRetryOptions, OperationRetryOptions};

/// Whether a subscription is consuming, readable from anywhere at the cost of an atomic load.
/// Cheap to clone: clones share the state.
#[derive(Debug, Clone)]
pub struct SubscriptionHealth {
    inner: Arc<State>,
}

#[derive(Debug)]
struct State {
    name: String,
    topic: String,
    up: AtomicBool,
    reconnects: AtomicU64,
}

impl SubscriptionHealth {
    /// The state of subscription `name` on `topic`, consuming. A [`crate::Subscription`] makes
    /// its own; this is public so that what reads the state can be tested without a broker.
    pub fn new(name: &str, topic: &str) -> Self {
        Self {
            inner: Arc::new(State {
                name: name.to_owned(),
                topic: topic.to_owned(),
                up: AtomicBool::new(true),
                reconnects: AtomicU64::new(0),
            }),
        }
    }

    /// The subscription's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The event topic it consumes.
    pub fn topic(&self) -> &str {
        &self.inner.topic
    }

    /// Whether its consumers are connected: false from the moment a stream ends until the
    /// subscription is made again.
    pub fn is_up(&self) -> bool {
        self.inner.up.load(Ordering::Acquire)
    }

    /// How many times it subscribed again after losing its consumers.
    pub fn reconnects(&self) -> u64 {
        self.inner.reconnects.load(Ordering::Relaxed)
    }

    /// Marks it down; true if it was up (so that the loss is logged once).
    pub fn lost(&self) -> bool {
        self.inner.up.swap(false, Ordering::AcqRel)
    }

    /// Marks it up again after a successful re-subscription, and counts that.
    pub fn resubscribed(&self) {
        self.inner.reconnects.fetch_add(1, Ordering::Relaxed);
        self.inner.up.store(true, Ordering::Release);
    }
}

/// `delay` shortened by a random part of up to half, so that the replicas of a service (and
/// the subscriptions of one process) do not all knock at a restarted broker at the same moment.
pub(crate) fn jittered(delay: Duration) -> Duration {
    // A v4 uuid is 122 random bits: enough randomness without another dependency.
    let random = uuid::Uuid::new_v4().as_u128() as u64;
    let fraction = (random % 1_000) as u32;
    delay - delay / 2 * fraction / 1_000
}

/// Connection retries of the consumers' client: a few quick ones (about a second in all), then
/// the consumer's stream ends and the subscription's own loop takes over.
pub(crate) fn consumer_connection_retries() -> (ConnectionRetryOptions, OperationRetryOptions) {
    let connection = ConnectionRetryOptions {
        min_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(1),
        max_retries: 3,
        connection_timeout: Duration::from_secs(5),
        ..ConnectionRetryOptions::default()
    };
    // A broker that is starting answers "service not ready": the client would retry that
    // without end (every 5 s by default), with the subscription looking healthy meanwhile.
    let operation = OperationRetryOptions {
        operation_timeout: Duration::from_secs(30),
        retry_delay: Duration::from_secs(1),
        max_retries: Some(3),
    };
    (connection, operation)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_keeps_a_delay_between_half_and_all_of_it() {
        let delay = Duration::from_millis(800);
        let delays: Vec<Duration> = (0..200).map(|_| jittered(delay)).collect();
        assert!(delays.iter().all(|d| *d >= delay / 2 && *d <= delay));
        let distinct: std::collections::HashSet<_> = delays.iter().collect();
        assert!(distinct.len() > 10, "the delays vary: {distinct:?}");
    }

    #[test]
    fn health_reports_a_loss_once_and_counts_re_subscriptions() {
        let health = SubscriptionHealth::new("commission", "persistent://alpes/events/x");
        let seen_by_readiness = health.clone();
        assert!(seen_by_readiness.is_up());
        assert!(health.lost(), "the first loss is reported");
        assert!(!health.lost(), "a second one, while down, is not");
        assert!(!seen_by_readiness.is_up());
        health.resubscribed();
        assert!(seen_by_readiness.is_up());
        assert_eq!(seen_by_readiness.reconnects(), 1);
    }
}
