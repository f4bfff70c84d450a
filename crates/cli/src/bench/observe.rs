//! Hearing sagas end without asking about each: the bench subscribes to the commission's
//! outcome topics and notes when each saga's `CommissionReserved` or `CommissionRejected`
//! arrives.
//!
//! Why not poll the saga log like `alpes simulate`: every poll is a request to marketing and a
//! read of its store, a cost that would land in the very figures the bench measures and grow
//! with the number of open sagas. A subscription costs the broker one delivery per outcome,
//! whatever the load.
//!
//! The subscription has a name of its own (`alpes-bench-<uuid>`), so it gets every message
//! rather than sharing them with the services, starts at the latest message, and is made before
//! the load starts, so no outcome is missed. [`Trail::remove`] deletes it afterwards, with the
//! retry topics the bus made for it: a forgotten durable subscription would keep a backlog
//! forever.
//!
//! A saga reported as fraud at once may be compensated before the commission reserves
//! anything; then `CommissionReverted` is its outcome, so that topic is heard too when the run
//! reports fraud. So is `InteractionsDiscarded`, the compensation's last step: the time from a
//! fraud report's answer to it is how long undoing a saga takes.

use std::time::Instant;

use alpes_bus::{Bus, Delivery, Outcome, Shutdown, StartAt, Subscription, SubscriptionConfig};
use alpes_contracts::Event;
use alpes_contracts::events::commission::{
    CommissionRejected, CommissionReserved, CommissionReverted,
};
use alpes_contracts::events::tracking::InteractionsDiscarded;
use anyhow::Context;
use tokio::sync::mpsc;

use super::probe::pulsar::{BENCH_PREFIX, PulsarAdmin};
use crate::PulsarArgs;

/// How a saga's forward path ended, as the commission announced it, or that its compensation
/// did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Reserved,
    Rejected,
    /// Compensated (fraud) before anything was reserved.
    Reverted,
    /// Its interactions discarded: the last step of a compensation.
    Discarded,
}

/// An outcome heard: which saga, how it ended, when the bench received it.
#[derive(Debug, Clone)]
pub struct Heard {
    pub saga_id: String,
    pub ending: Ending,
    pub at: Instant,
}

/// The bench's subscriptions, open and not yet listening.
pub struct Observer {
    _bus: Bus,
    reserved: Subscription<CommissionReserved>,
    rejected: Subscription<CommissionRejected>,
    /// `CommissionReverted` and `InteractionsDiscarded`, when the run reports fraud.
    compensation: Option<(
        Subscription<CommissionReverted>,
        Subscription<InteractionsDiscarded>,
    )>,
    trail: Trail,
}

/// What the bench's subscriptions leave in Pulsar.
#[derive(Debug, Clone)]
pub struct Trail {
    /// The subscription's name.
    pub name: String,
    /// The topics it subscribed to.
    topics: Vec<String>,
    /// The retry topics the bus made for it.
    retry_topics: Vec<String>,
}

/// Messages prefetched per consumer: enough for a burst of outcomes.
const RECEIVER_QUEUE: u32 = 1_000;

/// Outcomes handled at once; handling one is a channel send.
const CONCURRENCY: usize = 256;

impl Observer {
    /// Connects to Pulsar and subscribes, from now on, to the outcome topics (and to
    /// `CommissionReverted` and `InteractionsDiscarded` when `compensations`).
    pub async fn subscribe(pulsar: &PulsarArgs, compensations: bool) -> anyhow::Result<Self> {
        let name = format!("{BENCH_PREFIX}{}", uuid::Uuid::new_v4().simple());
        let bus = pulsar.connect("alpes-bench").await?;
        let mut trail = Trail {
            name,
            topics: Vec::new(),
            retry_topics: Vec::new(),
        };
        let opened = async {
            let reserved = open::<CommissionReserved>(&bus, &mut trail).await?;
            let rejected = open::<CommissionRejected>(&bus, &mut trail).await?;
            let compensation = if compensations {
                Some((
                    open::<CommissionReverted>(&bus, &mut trail).await?,
                    open::<InteractionsDiscarded>(&bus, &mut trail).await?,
                ))
            } else {
                None
            };
            anyhow::Ok((reserved, rejected, compensation))
        }
        .await;
        match opened {
            Ok((reserved, rejected, compensation)) => Ok(Self {
                _bus: bus,
                reserved,
                rejected,
                compensation,
                trail,
            }),
            Err(error) => {
                // Leave nothing behind: the subscriptions made so far would keep a backlog.
                trail
                    .remove(&PulsarAdmin::new(
                        &pulsar.pulsar_admin_url,
                        pulsar.token().ok().flatten(),
                    ))
                    .await;
                Err(error)
            }
        }
    }

    /// What the subscriptions leave in Pulsar, to remove once the run is over.
    pub fn trail(&self) -> &Trail {
        &self.trail
    }

    /// Sends every outcome heard to `heard` until `shutdown`, then closes the consumers; the
    /// first failure of a subscription, if one failed.
    pub async fn listen(
        self,
        heard: mpsc::UnboundedSender<Heard>,
        shutdown: Shutdown,
    ) -> anyhow::Result<()> {
        let reserved = hear(self.reserved, Ending::Reserved, &heard, &shutdown);
        let rejected = hear(self.rejected, Ending::Rejected, &heard, &shutdown);
        let compensation = async {
            match self.compensation {
                Some((reverted, discarded)) => {
                    let reverted = hear(reverted, Ending::Reverted, &heard, &shutdown);
                    let discarded = hear(discarded, Ending::Discarded, &heard, &shutdown);
                    let (reverted, discarded) = tokio::join!(reverted, discarded);
                    reverted.and(discarded)
                }
                None => Ok(()),
            }
        };
        let results = tokio::join!(reserved, rejected, compensation);
        [results.0, results.1, results.2]
            .into_iter()
            .collect::<Result<Vec<()>, _>>()
            .map(|_| ())
            .context("listening for the sagas' outcomes")
    }
}

impl Trail {
    /// Deletes the subscriptions and their retry topics; what could not be deleted.
    pub async fn remove(&self, admin: &PulsarAdmin) -> Vec<String> {
        let mut failures = Vec::new();
        for topic in &self.topics {
            if let Err(e) = admin.delete_subscription(topic, &self.name).await {
                failures.push(e);
            }
        }
        for topic in &self.retry_topics {
            if let Err(e) = admin.delete_topic(topic).await {
                failures.push(e);
            }
        }
        failures
    }
}

async fn open<E: Event>(bus: &Bus, trail: &mut Trail) -> anyhow::Result<Subscription<E>> {
    let mut config = SubscriptionConfig::new(trail.name.clone());
    config.start_at = StartAt::Latest;
    config.receiver_queue_size = RECEIVER_QUEUE;
    config.concurrency = CONCURRENCY;
    let topic = E::event_type().topic();
    let subscription = bus
        .subscribe::<E>(config)
        .await
        .with_context(|| format!("subscribing to {topic} (has `alpes bootstrap` run?)"))?;
    trail.topics.push(topic);
    trail
        .retry_topics
        .push(subscription.retry_topic().to_owned());
    Ok(subscription)
}

/// Runs one subscription, sending each event's saga and the time it arrived.
async fn hear<E: Event>(
    subscription: Subscription<E>,
    ending: Ending,
    heard: &mpsc::UnboundedSender<Heard>,
    shutdown: &Shutdown,
) -> Result<(), alpes_bus::BusError> {
    let handler = |delivery: Delivery<E>| {
        let at = Instant::now();
        if let Some(saga_id) = delivery.event.metadata().saga_id.clone() {
            let _ = heard.send(Heard {
                saga_id,
                ending,
                at,
            });
        }
        std::future::ready(Outcome::Done)
    };
    subscription.run(handler, shutdown.clone()).await
}
