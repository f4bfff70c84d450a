//! Group commit: what is handed in concurrently (one event per subscription: its step and its
//! campaign count, see [`Observation`]) is written together.
//!
//! One Postgres commit costs a few milliseconds of fsync whatever it holds, so the log keeps up
//! with the forward path by writing whatever has queued up since the last commit in one
//! transaction, not by committing faster. At moderate load little queues up during one commit,
//! so the writer also waits up to [`LINGER`] after the first observation of a batch for others
//! to join it: a saga's steps reach the log that much later, and a commit holds several of them
//! instead of one (about one commit per saga instead of five at 20 sagas/s).
//!
//! One transaction means one step Postgres refuses (a NUL in its payload, an id too large for
//! an index) would fail every step that shared it, again on each retry. So a batch that fails
//! for what it holds ([`LogError::is_permanent`]) is split in halves until the refused steps
//! stand alone: the others are recorded, and only the refused ones get the permanent error. A
//! batch that fails for a reason that may pass (the connection) fails whole, to be retried.

use std::future::Future;
use std::ops::Range;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout_at};

use crate::error::LogError;
use crate::step::{Observation, Step};
use crate::store::SagaLog;

/// The most steps one transaction takes.
const MAX_BATCH: usize = 512;

/// How long the first observation of a batch waits for others before the batch is written.
const LINGER: Duration = Duration::from_millis(25);

type Ack = oneshot::Sender<Result<(), LogError>>;
type Queued = (Observation, Ack);

/// Hands observations to the log's writer task. Cheap to clone; the task ends when every clone is
/// dropped, after writing what it holds.
#[derive(Clone)]
pub struct Recorder {
    queue: mpsc::Sender<Queued>,
}

impl Recorder {
    /// Starts the writer for `log` on its own task.
    pub fn spawn(log: SagaLog) -> (Self, JoinHandle<()>) {
        let (recorder, writer) = Self::new(log);
        (recorder, tokio::spawn(writer))
    }

    /// A recorder for `log`, and the writer to run for it: the writer ends once every clone
    /// of the recorder is dropped and what they handed it is written.
    pub fn new(log: SagaLog) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let (queue, mut pending) = mpsc::channel::<Queued>(4 * MAX_BATCH);
        let writer = async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            while pending.recv_many(&mut batch, MAX_BATCH).await > 0 {
                let deadline = Instant::now() + LINGER;
                while batch.len() < MAX_BATCH {
                    let room = MAX_BATCH - batch.len();
                    let more = timeout_at(deadline, pending.recv_many(&mut batch, room)).await;
                    if !matches!(more, Ok(n) if n > 0) {
                        break;
                    }
                }
                let (observed, acks): (Vec<Observation>, Vec<Ack>) = batch.drain(..).unzip();
                let written = log.observe_each(&observed).await;
                for (ack, written) in acks.into_iter().zip(written) {
                    let _ = ack.send(written);
                }
            }
        };
        (Self { queue }, writer)
    }

    /// Records `step`; returns once it is durable (or was recorded before). An error for
    /// which [`LogError::is_permanent`] holds is about this step alone.
    pub async fn record(&self, step: Step) -> Result<(), LogError> {
        self.observe(step.into()).await
    }

    /// Records what `observation` holds; returns once it is durable (or was recorded before).
    /// An error for which [`LogError::is_permanent`] holds is about this observation alone.
    pub async fn observe(&self, observation: Observation) -> Result<(), LogError> {
        let (ack, written) = oneshot::channel();
        self.queue
            .send((observation, ack))
            .await
            .map_err(|_| LogError::Stopped)?;
        written.await.map_err(|_| LogError::Stopped)?
    }
}

impl SagaLog {
    /// Records `steps` in as few transactions as it can and says, step by step, whether each
    /// was recorded: a batch Postgres refuses for what it holds is halved until each refused
    /// step fails alone with its permanent error, and the rest are recorded.
    pub async fn record_each(&self, steps: &[Step]) -> Vec<Result<(), LogError>> {
        let observed: Vec<Observation> = steps.iter().cloned().map(Observation::from).collect();
        self.observe_each(&observed).await
    }

    /// [`SagaLog::record_each`] for observations: steps and counts, refused one by one.
    pub async fn observe_each(&self, steps: &[Observation]) -> Vec<Result<(), LogError>> {
        let mut results = vec![Ok(()); steps.len()];
        // The ranges of `steps` still to record, one transaction each.
        let mut pending: Vec<Range<usize>> = Vec::new();
        pending.push(0..steps.len());
        while let Some(range) = pending.pop() {
            if range.is_empty() {
                continue;
            }
            match self.observe(&steps[range.clone()]).await {
                Ok(_) => {}
                Err(e) if e.is_permanent() && range.len() > 1 => {
                    let middle = range.start + range.len() / 2;
                    pending.push(middle..range.end);
                    pending.push(range.start..middle);
                }
                Err(e) => {
                    if e.is_permanent() {
                        let refused = &steps[range.start];
                        let (event_id, saga_id) = match (&refused.step, &refused.counted) {
                            (Some(step), _) => (step.event_id.as_str(), step.saga_id.as_str()),
                            (None, Some(counted)) => (counted.event_id.as_str(), ""),
                            (None, None) => ("", ""),
                        };
                        tracing::warn!(
                            %event_id, %saga_id, error = %e,
                            "the saga log refuses this step"
                        );
                    } else {
                        tracing::warn!(steps = range.len(), error = %e, "recording saga steps failed");
                    }
                    results[range].fill(Err(e));
                }
            }
        }
        results
    }
}
