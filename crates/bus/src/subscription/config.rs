//! How a subscription behaves — attempts, backoff, prefetch, where it starts, how many messages
//! at once — where it sends what it retries and gives up on, and what a handler says of a
//! message.

use std::time::Duration;

/// What became of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Its effect is durable: acknowledge it.
    Done,
    /// It could not be handled now (a dependency is down, a conflict): deliver it again after a
    /// backoff. After the subscription's last attempt it is dead-lettered.
    Retry(String),
    /// It can never be handled (failed validation, impossible state): dead-letter it with this
    /// reason.
    Reject(String),
}

/// Delay before the next attempt: `initial`, doubling per attempt, at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The delay after failed attempt number `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(20);
        self.initial.saturating_mul(factor).min(self.max)
    }
}

/// How a subscription behaves.
#[derive(Debug, Clone)]
pub struct SubscriptionConfig {
    /// Subscription name, shared by every replica of a service (e.g. `commission`).
    pub name: String,
    /// Deliveries before a message that keeps asking for retries is dead-lettered.
    pub max_attempts: u32,
    pub backoff: Backoff,
    /// Messages prefetched per consumer.
    pub receiver_queue_size: u32,
    /// Where a subscription that does not exist yet starts reading.
    pub start_at: StartAt,
    /// Messages handled at once by one consumer. Messages with the same key are still handled
    /// one after the other, in the order they arrived; different keys overlap.
    pub concurrency: usize,
    /// Delay before subscribing again after the consumers were lost (jittered: between half
    /// and all of it).
    pub resubscribe: Backoff,
}

/// Where a new subscription starts; an existing one resumes where it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// The oldest retained message: a new service replica misses nothing.
    Earliest,
    /// Only messages published after subscribing.
    Latest,
}

impl SubscriptionConfig {
    /// Defaults: 5 attempts, backoff from 1 s doubling up to 1 min, new subscriptions start
    /// at the earliest message, one message at a time; a lost subscription is made again after
    /// 0.5 s, doubling up to 15 s.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            max_attempts: 5,
            backoff: Backoff {
                initial: Duration::from_secs(1),
                max: Duration::from_secs(60),
            },
            receiver_queue_size: 100,
            start_at: StartAt::Earliest,
            concurrency: 1,
            resubscribe: Backoff {
                initial: Duration::from_millis(500),
                max: Duration::from_secs(15),
            },
        }
    }
}

/// Where subscription `subscription` of `topic` (full or short name, the answer is alike) sends
/// the messages it retries later: its own topic, which it consumes too.
pub fn retry_topic(topic: &str, subscription: &str) -> String {
    format!("{topic}-{subscription}-retry")
}

/// Where subscription `subscription` of `topic` (full or short name) sends the messages it
/// gives up on.
pub fn dead_letter_topic(topic: &str, subscription: &str) -> String {
    format!("{topic}-{subscription}-dlq")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_per_attempt_up_to_its_cap() {
        let backoff = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(500),
        };
        let delays: Vec<_> = (1..=5).map(|a| backoff.delay(a).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 500, 500]);
    }
}
