//! The HTTP server every service runs: its API plus `/healthz`, `/readyz` and `/metrics`,
//! request counting, trace context, JSON bodies with JSON errors, graceful shutdown.
//!
//! Errors are JSON everywhere, in the [`ApiError`] shape: a service's own errors are built as
//! such; whatever the framework answers by itself (an extractor's rejection, an unknown route
//! or method, a body over the limit) is turned into one by [`json_errors`]; and the few answers
//! hyper writes before any of this runs are rewritten on the connection
//! (`crate::protocol_errors`). A path or query parameter carrying a control character is
//! refused at the edge, naming the parameter, before any handler can store it.
//!
//! The server protects itself ([`Limits`]): a client has [`HEADER_READ_TIMEOUT`] to send a
//! request's head (slow or half-sent requests are dropped, so idle sockets cannot pile up), a
//! request has [`REQUEST_TIMEOUT`] to be answered, at most [`MAX_IN_FLIGHT`] requests are
//! handled at once (the next ones get `503` with `Retry-After` at once, probes excepted), and a
//! body may not exceed [`BODY_LIMIT`] (`413`).
//!
//! Memory per service is bounded by the last two. A request holds at most its buffered body
//! and the value decoded from it, about the same size again for these flat JSON documents, so
//! the requests in flight hold at most `MAX_IN_FLIGHT × BODY_LIMIT × 2` = 64 × 1 MiB × 2 =
//! 128 MiB; each connection's header buffer is capped at [`HEADER_BUFFER`] (128 KiB) and lives
//! at most [`HEADER_READ_TIMEOUT`]. With the ~30 MB a service holds at rest, that is well under
//! half of the 384 Mi memory limit of `k8s/base` (before these bounds, concurrent 2 MB bodies
//! took tracking from 28 MB to 215 MB).

use std::sync::Arc;
use std::time::Duration;

use alpes_bus::Shutdown;
use axum::extract::rejection::JsonRejection;
use axum::extract::{
    DefaultBodyLimit, FromRequest, FromRequestParts, MatchedPath, RawPathParams, Request, State,
};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::ApiError;
use crate::health::Readiness;
use crate::metrics::Metrics;
use crate::protocol_errors::JsonProtocolErrors;
use crate::trace::TraceContext;

/// Time a client has to send a request's line and headers, from its first byte (or from the
/// connection, or from the previous response on a kept-alive connection).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a request has, body included, to be answered; then `503 timed_out`.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Requests one service handles at once; more get `503 overloaded` with `Retry-After`.
pub const MAX_IN_FLIGHT: usize = 64;
/// Largest request body accepted; a larger one gets `413 payload_too_large`.
pub const BODY_LIMIT: usize = 1024 * 1024;
/// Largest request head (line and headers) a connection buffers: room for hyper's 64 KiB URI
/// limit, so an over-long URI still gets its `414`.
pub const HEADER_BUFFER: usize = 128 * 1024;
/// What a client is told to wait before retrying a `503`, in seconds.
const RETRY_AFTER_SECONDS: &str = "1";

/// The protections the server applies; [`Limits::default`] is what services run with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub request_timeout: Duration,
    pub max_in_flight: usize,
    pub body_limit: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: HEADER_READ_TIMEOUT,
            request_timeout: REQUEST_TIMEOUT,
            max_in_flight: MAX_IN_FLIGHT,
            body_limit: BODY_LIMIT,
        }
    }
}

/// `api` with the probes, metrics and middleware every service has, and the default [`Limits`].
pub fn router(api: Router, readiness: Readiness, metrics: Metrics) -> Router {
    router_with(api, readiness, metrics, Limits::default())
}

/// [`router`] with `limits` of its own (tests use short ones).
pub fn router_with(api: Router, readiness: Readiness, metrics: Metrics, limits: Limits) -> Router {
    let probes = Router::new()
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({ "status": "alive" })) }),
        )
        .route(
            "/readyz",
            get(move || async move { readiness.report().await }),
        )
        .route(
            "/metrics",
            get(|State(metrics): State<Metrics>| async move { metrics.render() }),
        )
        .with_state(metrics.clone());
    let in_flight = Arc::new(Semaphore::new(limits.max_in_flight));
    // Listed innermost first: the outer layers see what the inner ones answer.
    api.merge(probes)
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .layer(DefaultBodyLimit::max(limits.body_limit))
        .layer(middleware::from_fn(clean_parameters))
        .layer(middleware::from_fn_with_state(
            limits.request_timeout,
            time_limit,
        ))
        .layer(middleware::from_fn_with_state(in_flight, shed_load))
        .layer(middleware::from_fn(json_errors))
        .layer(middleware::from_fn_with_state(metrics, observe))
}

/// `GET /openapi.json`, answering `document` (a service's OpenAPI description, embedded with
/// `include_str!`): public, like the probes.
pub fn openapi(document: &'static str) -> Router {
    Router::new().route(
        "/openapi.json",
        get(move || async move { ([(header::CONTENT_TYPE, "application/json")], document) }),
    )
}

/// Serves `router` on `listener` until `shutdown`, then finishes the requests in flight, with
/// the default [`Limits`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    serve_with(listener, router, shutdown, Limits::default()).await
}

/// [`serve`] with `limits` of its own; the header-read timeout is the one applied here (the
/// others are the router's, see [`router_with`]).
///
/// One task per connection, served by hyper's HTTP/1 with a timer, so that a head not read in
/// time closes the connection. On `shutdown`, no new connection is accepted, each connection
/// finishes the request it is handling and closes, and this returns when all have, or, at the
/// latest, a second after the request timeout, closing what is left.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: Shutdown,
    limits: Limits,
) -> std::io::Result<()> {
    tracing::info!(addr = %listener.local_addr()?, "HTTP listening");
    let service = TowerToHyperService::new(router);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(HEADER_BUFFER);
    let mut connections = JoinSet::new();
    loop {
        let (stream, _peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(JsonProtocolErrors::new(stream));
        let connection = http.serve_connection(io, service.clone());
        let stop = shutdown.clone();
        connections.spawn(async move {
            tokio::pin!(connection);
            let served = tokio::select! {
                served = connection.as_mut() => served,
                () = stop.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = served {
                tracing::debug!(error = %e, "HTTP connection ended with an error");
            }
        });
    }
    // No new connection from here on: refused, not left waiting in the backlog.
    drop(listener);
    // A request has `request_timeout` to finish; a client that reads its answer slowly (or
    // never) must not hold up the rest of the stop (consumers, the outbox's last flush), so
    // what is still open a moment after that is cut.
    let drain = async { while connections.join_next().await.is_some() {} };
    let bound = limits.request_timeout + Duration::from_secs(1);
    if tokio::time::timeout(bound, drain).await.is_err() {
        tracing::warn!(
            open = connections.len(),
            "HTTP connections still open after the drain; closing them"
        );
        connections.shutdown().await;
    }
    Ok(())
}

/// Answers any error the framework produced without a JSON body (an extractor's rejection in
/// plain text, an empty `405`, ...) with the same status as an [`ApiError`], keeping headers
/// such as `Allow`.
async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    // Rejections explain themselves in a line or two; anything longer is cut.
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_owned())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("the request failed")
            .to_owned()
    } else {
        text
    };
    let mut replaced = ApiError::from_status(status, message).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            replaced.headers_mut().insert(name.clone(), value.clone());
        }
    }
    replaced
}

/// Refuses a path or query parameter that is not UTF-8 or carries a control character (a
/// NUL that Postgres would refuse after the sale was accepted), naming the parameter.
async fn clean_parameters(request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let control = |text: &str| text.chars().any(char::is_control);
    match RawPathParams::from_request_parts(&mut parts, &()).await {
        Ok(params) => {
            for (name, value) in &params {
                if control(value) {
                    return ApiError::invalid(name, "must not contain control characters")
                        .into_response();
                }
            }
        }
        Err(rejection) => return ApiError::invalid("path", rejection.body_text()).into_response(),
    }
    for pair in parts.uri.query().unwrap_or("").split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = match decode_query_part(name) {
            Some(name) => name,
            None => {
                return ApiError::invalid("query", "must be percent-encoded UTF-8").into_response();
            }
        };
        match decode_query_part(value) {
            Some(value) if !control(&name) && !control(&value) => {}
            Some(_) => {
                return ApiError::invalid(name, "must not contain control characters")
                    .into_response();
            }
            None => {
                return ApiError::invalid(name, "must be percent-encoded UTF-8").into_response();
            }
        }
    }
    next.run(Request::from_parts(parts, body)).await
}

/// A query name or value as `application/x-www-form-urlencoded` decodes it, or `None` when
/// its bytes are not UTF-8 (decoders elsewhere would replace them silently).
fn decode_query_part(text: &str) -> Option<String> {
    percent_encoding::percent_decode_str(&text.replace('+', " "))
        .decode_utf8()
        .ok()
        .map(|decoded| decoded.into_owned())
}

/// Answers `503 timed_out` when the request (reading its body included) takes longer than
/// `limit`. The handler is dropped: what it already handed the event store still completes.
async fn time_limit(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => retry_after(ApiError::timed_out(format!(
            "the request was not answered within {limit:?}"
        ))),
    }
}

/// Handles at most as many requests at once as `in_flight` has permits; the others are
/// refused at once with `503 overloaded` rather than queued (a queue would hold their bodies).
/// Probes and metrics are exempt: an overloaded service is alive, and says so.
async fn shed_load(
    State(in_flight): State<Arc<Semaphore>>,
    request: Request,
    next: Next,
) -> Response {
    if matches!(request.uri().path(), "/healthz" | "/readyz" | "/metrics") {
        return next.run(request).await;
    }
    match in_flight.try_acquire_owned() {
        Ok(_permit) => next.run(request).await,
        Err(_) => retry_after(ApiError::overloaded(
            "too many requests in flight; retry shortly",
        )),
    }
}

fn retry_after(error: ApiError) -> Response {
    let mut response = error.into_response();
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(RETRY_AFTER_SECONDS),
    );
    response
}

/// Attaches the trace context, counts the request, and echoes `traceparent`.
async fn observe(State(metrics): State<Metrics>, mut request: Request, next: Next) -> Response {
    let trace = TraceContext::from_headers(request.headers());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().to_string();
    request.extensions_mut().insert(trace.clone());
    let mut response = next.run(request).await;
    metrics.http_request(&method, &route, response.status().as_u16());
    if let Ok(value) = HeaderValue::from_str(&trace.traceparent) {
        response.headers_mut().insert("traceparent", value);
    }
    response
}

/// A JSON request body whose problems become [`ApiError`]s naming the field at fault.
pub struct JsonBody<T>(pub T);

impl<T, S> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_error(rejection).into_response()),
        }
    }
}

fn json_error(rejection: JsonRejection) -> ApiError {
    let text = rejection.body_text();
    match rejection {
        // "Failed to deserialize the JSON body into the target type: visitor.anonymous_id: ..."
        JsonRejection::JsonDataError(_) => {
            let detail = text
                .split_once("target type: ")
                .map_or(text.as_str(), |(_, d)| d);
            match detail.split_once(": ") {
                Some((field, message)) if !field.contains(' ') => {
                    ApiError::invalid(field, message.to_owned())
                }
                _ => ApiError::invalid(".", detail.to_owned()),
            }
        }
        _ if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::too_large("the body is larger than this endpoint accepts")
        }
        _ => ApiError::malformed(text),
    }
}

#[cfg(test)]
mod tests {
    use super::decode_query_part;

    #[test]
    fn query_parts_decode_as_forms_do_and_non_utf8_is_refused() {
        assert_eq!(decode_query_part("a+b%2Fc").as_deref(), Some("a b/c"));
        assert_eq!(decode_query_part("50%").as_deref(), Some("50%"));
        assert_eq!(decode_query_part("%zz%4").as_deref(), Some("%zz%4"));
        assert_eq!(decode_query_part("caf%C3%A9").as_deref(), Some("café"));
        assert_eq!(decode_query_part("a%00b").as_deref(), Some("a\0b"));
        assert_eq!(decode_query_part("%FF"), None);
    }
}
