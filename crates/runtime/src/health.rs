//! Liveness and readiness.
//!
//! `/healthz` answers while the process runs. `/readyz` answers 200 only when every dependency
//! check passes and the service is not shutting down, so an orchestrator stops sending traffic
//! the moment SIGTERM arrives. A subscription that lost the broker makes the service not ready
//! until it has subscribed again: a replica that cannot consume should not look healthy.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use alpes_bus::{Shutdown, SubscriptionHealth};
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

    /// Requires every one of `subscriptions` to be consuming (check `subscriptions`, whose
    /// message names those that are down). Reads their state only: no broker round trip.
    pub fn subscriptions(self, subscriptions: Vec<SubscriptionHealth>) -> Self {
        let subscriptions = Arc::new(subscriptions);
        self.check("subscriptions", move || {
            let down: Vec<String> = subscriptions
                .iter()
                .filter(|s| !s.is_up())
                .map(|s| format!("`{}` on {}", s.name(), s.topic()))
                .collect();
            std::future::ready(if down.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "lost the broker, subscribing again: {}",
                    down.join(", ")
                ))
            })
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_subscription_that_lost_the_broker_makes_the_service_not_ready_until_it_is_back() {
        let commission = SubscriptionHealth::new("commission", "persistent://alpes/events/a-v1");
        let other = SubscriptionHealth::new("commission", "persistent://alpes/events/b-v1");
        let readiness =
            Readiness::new(Shutdown::new()).subscriptions(vec![commission.clone(), other]);
        assert_eq!(readiness.report().await.0, StatusCode::OK);

        commission.lost();
        let (code, Json(body)) = readiness.report().await;
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["status"], "not_ready");
        let message = body["checks"]["subscriptions"].as_str().unwrap();
        assert!(
            message.contains("`commission` on persistent://alpes/events/a-v1")
                && !message.contains("b-v1"),
            "names the subscription that is down, and only it: {message}"
        );

        commission.resubscribed();
        let (code, Json(body)) = readiness.report().await;
        assert_eq!(code, StatusCode::OK);
        assert_eq!(body["checks"]["subscriptions"], "ok");
    }
}
