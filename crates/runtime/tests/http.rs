//! The shared HTTP surface, served for real on a loopback port.

use alpes_bus::Shutdown;
use alpes_runtime::health::Readiness;
use alpes_runtime::http::{self, JsonBody};
use alpes_runtime::metrics::Metrics;
use alpes_runtime::trace::TraceContext;
use axum::Router;
use axum::routing::post;
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
#[allow(dead_code)]
struct Order {
    id: String,
    amount: Amount,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Amount {
    minor: i64,
}

async fn start(
    database_up: bool,
) -> (
    String,
    Shutdown,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let shutdown = Shutdown::new();
    let readiness = Readiness::new(shutdown.clone())
        .check("pulsar", || async { Ok(()) })
        .check("mongo", move || async move {
            if database_up {
                Ok(())
            } else {
                Err("connection refused".to_owned())
            }
        });
    let api =
        Router::new().route(
            "/orders",
            post(
                |trace: TraceContext, JsonBody(_order): JsonBody<Order>| async move {
                    trace.traceparent
                },
            ),
        );
    let router = http::router(api, readiness, Metrics::new("test"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(http::serve(listener, router, shutdown.clone()));
    (base, shutdown, server)
}

#[tokio::test]
async fn probes_metrics_errors_and_trace_context() {
    let (base, shutdown, server) = start(true).await;
    let client = reqwest::Client::new();
    let get = |path: &str| client.get(format!("{base}{path}")).send();

    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    let ready = get("/readyz").await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["checks"]["mongo"], "ok");

    let missing = get("/nowhere").await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.json::<Value>().await.unwrap()["code"], "not_found");

    let post = |body: &'static str| {
        client
            .post(format!("{base}/orders"))
            .header("content-type", "application/json")
            .header(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )
            .body(body)
            .send()
    };
    let ok = post(r#"{"id":"o-1","amount":{"minor":5}}"#).await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(
        ok.headers()["traceparent"],
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    );
    assert_eq!(
        ok.text().await.unwrap(),
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    );

    let wrong_type = post(r#"{"id":"o-1","amount":{"minor":"five"}}"#)
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), 400);
    let error: Value = wrong_type.json().await.unwrap();
    assert_eq!(error["code"], "validation_failed");
    assert_eq!(error["field"], "amount.minor", "{error}");

    let not_json = post("{").await.unwrap();
    assert_eq!(not_json.status(), 400);
    assert_eq!(
        not_json.json::<Value>().await.unwrap()["code"],
        "malformed_request"
    );

    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains(r#"alpes_http_requests_total{service="test",method="POST",route="/orders",status="400"} 2"#),
        "{metrics}"
    );

    shutdown.cancel();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn readiness_fails_with_a_failing_dependency_and_during_shutdown() {
    let (base, shutdown, server) = start(false).await;
    let ready = reqwest::get(format!("{base}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 503);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["checks"]["mongo"], "connection refused");
    assert_eq!(body["checks"]["pulsar"], "ok");
    shutdown.cancel();
    server.await.unwrap().unwrap();
}
