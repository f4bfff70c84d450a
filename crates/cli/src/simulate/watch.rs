//! The watcher: polls the saga log for every saga the drivers started, reports a fraud saga
//! once it has COMPLETED (unless it was reported at once), and notes when each saga reaches its
//! final status. When the drivers are done it gets `--timeout` more to see every saga settle.

use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use tokio::sync::mpsc;

use super::progress::Bars;
use super::report::{self, Outcome};
use super::{POLL_INTERVAL, Simulation, Started};

/// What the watcher saw.
pub(super) struct Watched {
    pub(super) outcomes: Vec<Outcome>,
    pub(super) reported: usize,
    /// From the first purchase to the last saga settling.
    pub(super) elapsed: Duration,
}

/// Polls the saga log for every saga started until each settles, or until `timeout` after the
/// drivers finished. A 401 or 403 stops the run: no poll will ever succeed.
pub(super) async fn watch(
    context: &Simulation,
    mut incoming: mpsc::UnboundedReceiver<Started>,
    timeout: Duration,
    bars: &Bars,
) -> anyhow::Result<Watched> {
    let mut watch = Watch::new(context, bars);
    let mut deadline: Option<Instant> = None;
    loop {
        loop {
            match incoming.try_recv() {
                Ok(started) => watch.take(started),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    deadline.get_or_insert_with(|| Instant::now() + timeout);
                    break;
                }
            }
        }
        let drivers_done = deadline.is_some();
        if (watch.pending.is_empty() && drivers_done)
            || deadline.is_some_and(|d| Instant::now() >= d)
        {
            break;
        }
        if !watch.pending.is_empty() {
            watch.poll().await?;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    Ok(watch.finish().await)
}

/// What the watcher does next with a saga the log answered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// A fraud saga that COMPLETED and is not reported yet: report it.
    ReportFraud,
    /// It reached its final status.
    Settled,
    /// It is still moving.
    Wait,
}

fn next_for(fraud: bool, reported: bool, status: &str) -> Next {
    if fraud && !reported && status == "COMPLETED" {
        Next::ReportFraud
    } else if report::settles(fraud, status) {
        Next::Settled
    } else {
        Next::Wait
    }
}

/// A saga being watched.
struct Watching {
    started: Started,
    last_status: Option<String>,
    log_ms: Option<i64>,
}

/// The watcher's state across polls.
struct Watch<'a> {
    context: &'a Simulation,
    bars: &'a Bars,
    pending: Vec<Watching>,
    outcomes: Vec<Outcome>,
    reported: usize,
    first_purchase: Option<Instant>,
    last_settled: Option<Instant>,
    poll_failures: usize,
    last_poll_error: Option<String>,
}

impl<'a> Watch<'a> {
    fn new(context: &'a Simulation, bars: &'a Bars) -> Self {
        Self {
            context,
            bars,
            pending: Vec::new(),
            outcomes: Vec::new(),
            reported: 0,
            first_purchase: None,
            last_settled: None,
            poll_failures: 0,
            last_poll_error: None,
        }
    }

    /// Starts watching a saga a driver started.
    fn take(&mut self, started: Started) {
        self.reported += usize::from(started.reported);
        self.first_purchase.get_or_insert(started.purchased);
        self.pending.push(Watching {
            started,
            last_status: None,
            log_ms: None,
        });
    }

    /// Asks the log about every pending saga once; settles those that reached their final
    /// status and reports the fraud sagas that completed.
    async fn poll(&mut self) -> anyhow::Result<()> {
        let context = self.context;
        let polls: Vec<_> = futures::stream::iter(self.pending.iter().enumerate())
            .map(|(i, w)| async move { (i, context.platform.saga(&w.started.saga_id).await) })
            .buffer_unordered(context.concurrency)
            .collect()
            .await;
        let seen_at = Instant::now();
        let mut to_report = Vec::new();
        let mut settled = vec![false; self.pending.len()];
        for (i, poll) in polls {
            let saga = match poll {
                Ok(Some(saga)) => saga,
                Ok(None) => continue,
                Err(e) if matches!(e.status(), Some(401 | 403)) => {
                    return Err(e).context("asking the saga log how the sagas are doing");
                }
                Err(e) => {
                    self.poll_failures += 1;
                    self.last_poll_error = Some(e.to_string());
                    continue;
                }
            };
            let w = &mut self.pending[i];
            w.last_status = Some(saga.status.clone());
            w.log_ms = saga.duration_ms;
            match next_for(w.started.fraud, w.started.reported, &saga.status) {
                Next::ReportFraud => to_report.push(i),
                Next::Settled => {
                    settled[i] = true;
                    self.outcomes.push(Outcome {
                        saga_id: w.started.saga_id.clone(),
                        fraud: w.started.fraud,
                        reported_completed: w.started.reported_completed,
                        status: Some(saga.status.clone()),
                        settled: true,
                        log_ms: saga.duration_ms,
                        observed_ms: Some(
                            seen_at.duration_since(w.started.purchased).as_millis() as i64
                        ),
                    });
                    self.last_settled = Some(seen_at);
                    self.bars.sagas.inc(1);
                }
                Next::Wait => {}
            }
        }
        self.report(to_report).await;
        let mut settled = settled.into_iter();
        self.pending
            .retain(|_| !settled.next().expect("one flag per pending saga"));
        Ok(())
    }

    /// Reports the pending sagas at `indices` as fraud.
    async fn report(&mut self, indices: Vec<usize>) {
        let context = self.context;
        let reports: Vec<_> = futures::stream::iter(indices)
            .map(|i| {
                let saga_id = self.pending[i].started.saga_id.clone();
                async move { (i, context.report_fraud(&saga_id).await) }
            })
            .buffer_unordered(context.concurrency)
            .collect()
            .await;
        for (i, result) in reports {
            let w = &mut self.pending[i];
            match result {
                Ok(()) => {
                    w.started.reported = true;
                    w.started.reported_completed = true;
                    self.reported += 1;
                    self.bars
                        .sagas
                        .set_message(format!("{} reported as fraud", self.reported));
                }
                Err(error) => {
                    context.error(error).await;
                    // Not reported: COMPLETED is its final status after all.
                    w.started.fraud = false;
                }
            }
        }
    }

    /// What was seen: the settled sagas, then those still moving when time ran out.
    async fn finish(mut self) -> Watched {
        for w in self.pending {
            self.outcomes.push(Outcome {
                saga_id: w.started.saga_id,
                fraud: w.started.fraud,
                reported_completed: w.started.reported_completed,
                status: w.last_status,
                settled: false,
                log_ms: w.log_ms,
                observed_ms: None,
            });
        }
        if self.poll_failures > 0 {
            self.context
                .error(format!(
                    "{} saga log poll(s) failed; the last: {}",
                    self.poll_failures,
                    self.last_poll_error.unwrap_or_default()
                ))
                .await;
        }
        let elapsed = match (self.first_purchase, self.last_settled) {
            (Some(first), Some(last)) => last.duration_since(first),
            _ => Duration::ZERO,
        };
        Watched {
            outcomes: self.outcomes,
            reported: self.reported,
            elapsed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fraud_sale_is_reported_once_completed_and_settles_compensated() {
        assert_eq!(next_for(true, false, "COMPLETED"), Next::ReportFraud);
        assert_eq!(next_for(true, true, "COMPLETED"), Next::Wait);
        assert_eq!(next_for(true, true, "COMPENSATED"), Next::Settled);
        assert_eq!(next_for(true, false, "ATTRIBUTED"), Next::Wait);
    }

    #[test]
    fn any_other_sale_settles_at_its_final_status() {
        assert_eq!(next_for(false, false, "COMPLETED"), Next::Settled);
        assert_eq!(next_for(false, false, "REJECTED"), Next::Settled);
        assert_eq!(next_for(false, false, "STARTED"), Next::Wait);
    }
}
