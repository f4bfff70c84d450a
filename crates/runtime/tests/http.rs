//! The shared HTTP surface, served for real on a loopback port.

use alpes_bus::Shutdown;
use alpes_runtime::health::Readiness;
use alpes_runtime::http::{self, JsonBody, Limits};
use alpes_runtime::metrics::Metrics;
use alpes_runtime::trace::TraceContext;
use axum::Router;
use axum::extract::{Path, Query};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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

#[derive(Deserialize)]
#[allow(dead_code)]
struct Count {
    n: u32,
}

async fn start(
    database_up: bool,
) -> (
    String,
    Shutdown,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    start_with(database_up, Limits::default()).await
}

/// The server with `limits`, an API of a JSON `POST /orders`, `GET /orders/{id}` echoing its
/// path and query parameters, a typed query at `GET /count`, and `GET /slow` (2 s).
async fn start_with(
    database_up: bool,
    limits: Limits,
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
    let api = Router::new()
        .route(
            "/orders",
            post(
                |trace: TraceContext, JsonBody(_order): JsonBody<Order>| async move {
                    trace.traceparent
                },
            ),
        )
        .route(
            "/orders/{id}",
            get(
                |Path(id): Path<String>, Query(query): Query<Vec<(String, String)>>| async move {
                    format!("{id} {query:?}")
                },
            ),
        )
        .route("/count", get(|Query(_count): Query<Count>| async { "ok" }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(2)).await;
                "slow"
            }),
        );
    let router = http::router_with(api, readiness, Metrics::new("test"), limits);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(http::serve_with(listener, router, shutdown.clone(), limits));
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

/// Sends `request` as raw bytes (clients would normalise what these tests send) and reads the
/// answer until the server closes: status, head and body.
async fn raw(base: &str, request: &[u8]) -> (u16, String, String) {
    let mut stream = TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("the server answered and closed within 10 s")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

/// The answer is `status` with a JSON error body of `code`; the body, parsed.
fn json_error(answer: &(u16, String, String), status: u16, code: &str) -> Value {
    let (got, head, body) = answer;
    assert_eq!(*got, status, "{head}\n\n{body}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    let error: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body:?}"));
    assert_eq!(error["code"], code, "{error}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{error}"
    );
    error
}

fn get_closing(target: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").into_bytes()
}

#[tokio::test]
async fn every_error_the_framework_or_hyper_answers_is_json() {
    let (base, shutdown, server) = start(true).await;

    // hyper's own answers: a URI over its limit, too many header fields, not HTTP at all.
    let long = format!("/orders/{}", "a".repeat(100_000));
    json_error(&raw(&base, &get_closing(&long)).await, 414, "uri_too_long");
    let mut many = String::from("GET /healthz HTTP/1.1\r\nHost: test\r\n");
    for i in 0..150 {
        many.push_str(&format!("x-field-{i}: {i}\r\n"));
    }
    many.push_str("\r\n");
    json_error(&raw(&base, many.as_bytes()).await, 431, "headers_too_large");
    json_error(
        &raw(&base, b"NOT HTTP\r\n\r\n").await,
        400,
        "malformed_request",
    );

    // Path and query parameters: not UTF-8, or carrying a NUL, are refused naming them.
    let error = json_error(
        &raw(&base, &get_closing("/orders/%FF")).await,
        400,
        "validation_failed",
    );
    assert_eq!(error["field"], "path", "{error}");
    let error = json_error(
        &raw(&base, &get_closing("/orders/a%00b")).await,
        400,
        "validation_failed",
    );
    assert_eq!(error["field"], "id", "{error}");
    let error = json_error(
        &raw(&base, &get_closing("/orders/o-1?note=a%00b")).await,
        400,
        "validation_failed",
    );
    assert_eq!(error["field"], "note", "{error}");
    let error = json_error(
        &raw(&base, &get_closing("/orders/o-1?note=%FF")).await,
        400,
        "validation_failed",
    );
    assert_eq!(error["field"], "note", "{error}");
    let (status, _, body) = raw(&base, &get_closing("/orders/o-1?note=fine")).await;
    assert_eq!((status, body.as_str()), (200, r#"o-1 [("note", "fine")]"#));

    // Extractor rejections, unknown routes and methods.
    json_error(
        &raw(&base, &get_closing("/count?n=many")).await,
        400,
        "malformed_request",
    );
    json_error(
        &raw(&base, &get_closing("/nowhere")).await,
        404,
        "not_found",
    );
    let wrong_method = raw(
        &base,
        b"DELETE /orders HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
    )
    .await;
    json_error(&wrong_method, 405, "method_not_allowed");
    assert!(
        wrong_method.1.to_ascii_lowercase().contains("allow: post"),
        "{}",
        wrong_method.1
    );

    // A body over the limit is 413, not 400.
    let too_large = reqwest::Client::new()
        .post(format!("{base}/orders"))
        .header("content-type", "application/json")
        .body(format!(r#"{{"id":"{}"}}"#, "x".repeat(http::BODY_LIMIT)))
        .send()
        .await
        .unwrap();
    assert_eq!(too_large.status(), 413);
    let error: Value = too_large.json().await.unwrap();
    assert_eq!(error["code"], "payload_too_large", "{error}");

    shutdown.cancel();
    server.await.unwrap().unwrap();
}

fn short_limits() -> Limits {
    Limits {
        header_read_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_millis(700),
        max_in_flight: 2,
        body_limit: 4096,
    }
}

/// Reads until the server closes the connection; how long that took.
async fn closed_after(stream: &mut TcpStream, within: Duration) -> Duration {
    let started = Instant::now();
    let mut sink = Vec::new();
    let read = tokio::time::timeout(within, stream.read_to_end(&mut sink)).await;
    assert!(
        read.is_ok(),
        "still open after {within:?}; received {:?}",
        String::from_utf8_lossy(&sink)
    );
    started.elapsed()
}

#[tokio::test]
async fn half_sent_requests_are_closed_and_a_slowloris_does_not_stop_service() {
    let limits = short_limits();
    let (base, shutdown, server) = start_with(true, limits).await;
    let addr = base.trim_start_matches("http://").to_owned();

    // A head that never ends: dropped at the header-read timeout.
    let mut half_head = TcpStream::connect(&addr).await.unwrap();
    half_head
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n")
        .await
        .unwrap();
    let waited = closed_after(&mut half_head, Duration::from_secs(5)).await;
    assert!(waited >= Duration::from_millis(800), "{waited:?}");

    // A body that never ends: answered 503 at the request timeout, and closed.
    let mut half_body = TcpStream::connect(&addr).await.unwrap();
    half_body
        .write_all(b"POST /orders HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"id\":")
        .await
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), half_body.read_to_end(&mut answer))
        .await
        .expect("a half-sent body is not held open")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(3));
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains(r#""code":"timed_out""#), "{answer}");

    // Many connections trickling their heads a byte at a time...
    let mut slow = Vec::new();
    for _ in 0..200 {
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nX-Slow: ")
            .await
            .unwrap();
        slow.push(stream);
    }
    let trickle = tokio::spawn(async move {
        for _ in 0..8 {
            for stream in &mut slow {
                let _ = stream.write_all(b"a").await;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        slow
    });
    // ...do not stop a normal request from being served at once...
    let started = Instant::now();
    let served = reqwest::Client::new()
        .post(format!("{base}/orders"))
        .header("content-type", "application/json")
        .body(r#"{"id":"o-1","amount":{"minor":5}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), 200);
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    // ...and are all dropped by the header-read timeout, however much they trickle.
    let mut slow = trickle.await.unwrap();
    for stream in &mut slow {
        closed_after(stream, Duration::from_secs(2)).await;
    }

    shutdown.cancel();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn requests_beyond_the_in_flight_limit_are_shed_and_slow_ones_time_out() {
    let limits = Limits {
        request_timeout: Duration::from_secs(5),
        ..short_limits()
    };
    let (base, shutdown, server) = start_with(true, limits).await;
    let client = reqwest::Client::new();

    let busy: Vec<_> = (0..2)
        .map(|_| tokio::spawn(client.get(format!("{base}/slow")).send()))
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let shed = client
        .get(format!("{base}/orders/o-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(shed.status(), 503);
    assert_eq!(shed.headers()["retry-after"], "1");
    assert_eq!(shed.json::<Value>().await.unwrap()["code"], "overloaded");
    let alive = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(alive.status(), 200, "probes are never shed");
    for request in busy {
        assert_eq!(request.await.unwrap().unwrap().status(), 200);
    }
    let again = client
        .get(format!("{base}/orders/o-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200, "permits come back");
    shutdown.cancel();
    server.await.unwrap().unwrap();

    // A handler slower than the request timeout: 503 timed_out, with Retry-After.
    let (base, shutdown, server) = start_with(true, short_limits()).await;
    let started = Instant::now();
    let late = client.get(format!("{base}/slow")).send().await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(1500));
    assert_eq!(late.status(), 503);
    assert_eq!(late.headers()["retry-after"], "1");
    assert_eq!(late.json::<Value>().await.unwrap()["code"], "timed_out");
    shutdown.cancel();
    server.await.unwrap().unwrap();
}
