//! Group commit: steps handed in concurrently (one per subscription) are written together.
//!
//! One Postgres commit costs a few milliseconds of fsync whatever it holds, so the log keeps up
//! with the forward path by writing whatever has queued up since the last commit in one
//! transaction, not by committing faster.

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::error::LogError;
use crate::step::Step;
use crate::store::SagaLog;

/// The most steps one transaction takes.
const MAX_BATCH: usize = 512;

type Ack = oneshot::Sender<Result<(), LogError>>;

/// Hands steps to the log's writer task. Cheap to clone; the task ends when every clone is
/// dropped, after writing what it holds.
#[derive(Clone)]
pub struct Recorder {
    queue: mpsc::Sender<(Step, Ack)>,
}

impl Recorder {
    /// Starts the writer for `log`.
    pub fn spawn(log: SagaLog) -> (Self, JoinHandle<()>) {
        let (queue, mut pending) = mpsc::channel::<(Step, Ack)>(4 * MAX_BATCH);
        let writer = tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            while pending.recv_many(&mut batch, MAX_BATCH).await > 0 {
                let (steps, acks): (Vec<Step>, Vec<Ack>) = batch.drain(..).unzip();
                let written = log.record(&steps).await.map(drop);
                if let Err(e) = &written {
                    tracing::warn!(steps = steps.len(), error = %e, "recording saga steps failed");
                }
                for ack in acks {
                    let _ = ack.send(written.clone());
                }
            }
        });
        (Self { queue }, writer)
    }

    /// Records `step`; returns once it is durable (or was recorded before).
    pub async fn record(&self, step: Step) -> Result<(), LogError> {
        let (ack, written) = oneshot::channel();
        self.queue
            .send((step, ack))
            .await
            .map_err(|_| LogError::Stopped)?;
        written.await.map_err(|_| LogError::Stopped)?
    }
}
