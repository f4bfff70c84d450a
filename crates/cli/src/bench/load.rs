//! The open-loop driver: saga `i` starts at `t0 + i / rate`, whatever became of the sagas
//! started before it.
//!
//! Why open: a closed loop (a few clients, each waiting for its answer before the next request)
//! slows its own arrivals when the platform slows, so a saturated platform looks merely a
//! little slower. Here each saga is its own task, started on schedule; a platform that cannot
//! keep up shows it as growing latency and sagas still open when the run ends, which is what a
//! shop's traffic would do to it.
//!
//! Each task plays one fresh visitor with the request bodies `alpes simulate` uses
//! ([`interaction`]): its views, its clicks and its purchase, one after the other, then, for a
//! saga picked as fraud, `POST /fraud-reports` at once. The platform's clients ride out a service
//! restarting or shedding load ([`crate::api::Api::riding_out_restarts`]); anything else ends the
//! visitor and is reported.

use std::sync::Arc;
use std::time::{Duration, Instant};

use alpes_bus::Shutdown;
use serde_json::Value as Json;
use tokio::sync::mpsc;

use crate::simulate::plan::VisitorPlan;
use crate::simulate::platform::{PlatformApi, Step, interaction};

/// What every saga of a run does, besides its own visitor.
#[derive(Debug, Clone)]
pub struct Script {
    /// Names the run's visitors and orders, so that every run's visitors are fresh.
    pub run_id: String,
    pub campaign: String,
    pub currency: String,
    /// Views, then clicks, before the purchase.
    pub views: u32,
    pub clicks: u32,
}

/// What a driver task reports.
#[derive(Debug, Clone)]
pub enum Driven {
    /// Tracking answered the purchase with its saga at `purchased`.
    Started { saga_id: String, purchased: Instant },
    /// The saga's fraud report was accepted, answered at `reported`.
    FraudReported { saga_id: String, reported: Instant },
    /// The visitor failed before a saga started.
    Failed(String),
    /// Something failed after the saga started (its fraud report).
    Error(String),
}

/// Starts one task per visitor, visitor `i` at `t0 + i / rate`; returns once the last is
/// started, or at once when `stop` is cancelled. The tasks report on `driven`; it closes when
/// every task is done.
pub async fn drive(
    platform: Arc<PlatformApi>,
    script: Arc<Script>,
    visitors: Vec<VisitorPlan>,
    rate: f64,
    t0: Instant,
    driven: mpsc::UnboundedSender<Driven>,
    stop: Shutdown,
) {
    let t0 = tokio::time::Instant::from_std(t0);
    for (i, visitor) in visitors.into_iter().enumerate() {
        let at = t0 + Duration::from_secs_f64(i as f64 / rate);
        tokio::select! {
            () = tokio::time::sleep_until(at) => {}
            () = stop.cancelled() => return,
        }
        let (platform, script, driven) = (platform.clone(), script.clone(), driven.clone());
        tokio::spawn(async move { play(&platform, &script, &visitor, &driven).await });
    }
}

/// One visitor: views, clicks, purchase, and maybe a fraud report.
async fn play(
    platform: &PlatformApi,
    script: &Script,
    visitor: &VisitorPlan,
    driven: &mpsc::UnboundedSender<Driven>,
) {
    let body = |step| {
        interaction(
            step,
            &script.run_id,
            visitor,
            &script.campaign,
            &script.currency,
        )
    };
    // Each request names its interaction, so one whose answer was lost is sent again safely.
    let key = |n: usize| format!("bench-{}-{}-{n}", script.run_id, visitor.index);
    let track = |n: usize, body: Json| async move { platform.track(&key(n), &body).await };
    let failed = |what: String| {
        let _ = driven.send(Driven::Failed(format!("visitor {}: {what}", visitor.index)));
    };
    let browsing = std::iter::repeat_n(Step::View, script.views as usize)
        .chain(std::iter::repeat_n(Step::Click, script.clicks as usize));
    let mut steps = 0;
    for step in browsing {
        steps += 1;
        if let Err(e) = track(steps, body(step)).await {
            return failed(e.to_string());
        }
    }
    let saga_id = match track(steps + 1, body(Step::Purchase)).await {
        Ok(Some(saga_id)) => saga_id,
        Ok(None) => return failed("tracking accepted the purchase without a saga_id".into()),
        Err(e) => return failed(e.to_string()),
    };
    let _ = driven.send(Driven::Started {
        saga_id: saga_id.clone(),
        purchased: Instant::now(),
    });
    if visitor.purchase.is_some_and(|p| p.fraud) {
        let reason = format!("benchmark fraud (run {})", script.run_id);
        let reported = platform.report_fraud(&saga_id, &reason).await;
        let _ = driven.send(match reported {
            Ok(()) => Driven::FraudReported {
                saga_id,
                reported: Instant::now(),
            },
            Err(e) => Driven::Error(format!("reporting fraud on saga {saga_id}: {e}")),
        });
    }
}
