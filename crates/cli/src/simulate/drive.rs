//! The drivers: each visitor's script played over HTTP — view, click, maybe purchase, maybe an
//! immediate fraud report — `--concurrency` at a time (and at most `--rate` a second), each
//! saga started handed to the watcher.

use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::sync::mpsc;

use super::plan::VisitorPlan;
use super::platform::{Step, interaction};
use super::progress::Bars;
use super::{FraudWhen, Simulation, Started};
use crate::api::RequestError;

/// Plays every visitor, `concurrency` at a time, handing each saga started to the watcher.
pub(super) async fn drive_all(
    context: &Simulation,
    plan: Vec<VisitorPlan>,
    started: mpsc::UnboundedSender<Started>,
    bars: &Bars,
) {
    let start = tokio::time::Instant::now();
    futures::stream::iter(plan.into_iter().enumerate())
        .map(|(n, visitor)| async move {
            if let Some(rate) = context.rate {
                tokio::time::sleep_until(start + Duration::from_secs_f64(n as f64 / rate)).await;
            }
            drive(context, visitor).await
        })
        .buffer_unordered(context.concurrency)
        .for_each(|result| {
            bars.visitors.inc(1);
            let started = &started;
            async move {
                match result {
                    Ok(Some(saga)) => {
                        let _ = started.send(saga);
                    }
                    Ok(None) => {}
                    Err(error) => context.error(error).await,
                }
            }
        })
        .await;
}

/// One visitor's script: view, click, and maybe purchase (and report it at once).
async fn drive(context: &Simulation, visitor: VisitorPlan) -> Result<Option<Started>, String> {
    let body = |step| {
        interaction(
            step,
            &context.run_id,
            &visitor,
            &context.campaign,
            &context.currency,
        )
    };
    let visitor_error = |e: RequestError| format!("visitor {}: {e}", visitor.index);
    let key = |step| format!("simulate-{}-{}-{step:?}", context.run_id, visitor.index);
    for step in [Step::View, Step::Click] {
        context
            .platform
            .track(&key(step), &body(step))
            .await
            .map_err(visitor_error)?;
    }
    let Some(purchase) = visitor.purchase else {
        return Ok(None);
    };
    let purchased = Instant::now();
    let saga_id = context
        .platform
        .track(&key(Step::Purchase), &body(Step::Purchase))
        .await
        .map_err(visitor_error)?
        .ok_or_else(|| {
            format!(
                "visitor {}: tracking accepted the purchase without a saga_id",
                visitor.index
            )
        })?;
    let mut started = Started {
        saga_id,
        fraud: purchase.fraud,
        reported: false,
        reported_completed: false,
        purchased,
    };
    if started.fraud && context.fraud_when == FraudWhen::AtOnce {
        match context.report_fraud(&started.saga_id).await {
            Ok(()) => started.reported = true,
            Err(error) => {
                // Not reported: the sale is expected to complete after all.
                context.error(error).await;
                started.fraud = false;
            }
        }
    }
    Ok(Some(started))
}
