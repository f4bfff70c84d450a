//! Liveness and readiness.
//!
//! `/healthz` answers while the process runs. `/readyz` answers 200 only when every dependency
//! check passes and the service is not shutting down, so an orchestrator stops sending traffic
//! the moment SIGTERM arrives.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use alpes_bus::Shutdown;
use axum::Json;
use axum::http::StatusCode;
use futures::future::{BoxFuture, join_all};
use serde_json::{Value, json};

type Check = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// The service's dependency checks, and whether it is shutting down.
#[derive(Clone)]
pub struct Readiness {
    checks: Vec<(&'static str, Check)>,
    shutdown: Shutdown,
}

impl Readiness {
    /// No checks yet; not ready once `shutdown` is cancelled.
    pub fn new(shutdown: Shutdown) -> Self {
        Self {
            checks: Vec::new(),
            shutdown,
        }
    }

    /// Adds a dependency check named `name` (e.g. `mongo`, `pulsar`).
    pub fn check<F, Fut>(mut self, name: &'static str, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.checks
            .push((name, Arc::new(move || Box::pin(check()))));
        self
    }

    /// Runs every check (2 s each, concurrently) and reports.
    pub async fn report(&self) -> (StatusCode, Json<Value>) {
        if self.shutdown.is_cancelled() {
            let body = json!({ "status": "shutting_down" });
            return (StatusCode::SERVICE_UNAVAILABLE, Json(body));
        }
        let results = join_all(self.checks.iter().map(|(name, check)| async move {
            let outcome = tokio::time::timeout(Duration::from_secs(2), check())
                .await
                .unwrap_or_else(|_| Err("no answer within 2 s".to_owned()));
            (*name, outcome)
        }))
        .await;
        let ready = results.iter().all(|(_, r)| r.is_ok());
        let checks: serde_json::Map<String, Value> = results
            .into_iter()
            .map(|(name, r)| {
                (
                    name.to_owned(),
                    json!(r.err().unwrap_or_else(|| "ok".into())),
                )
            })
            .collect();
        let status = if ready { "ready" } else { "not_ready" };
        let code = if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        (code, Json(json!({ "status": status, "checks": checks })))
    }
}
