//! The HTTP server every service runs: its API plus `/healthz`, `/readyz` and `/metrics`,
//! request counting, trace context, JSON bodies with JSON errors, graceful shutdown.

use alpes_bus::Shutdown;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::de::DeserializeOwned;

use crate::ApiError;
use crate::health::Readiness;
use crate::metrics::Metrics;
use crate::trace::TraceContext;

/// `api` with the probes, metrics and middleware every service has.
pub fn router(api: Router, readiness: Readiness, metrics: Metrics) -> Router {
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
    api.merge(probes)
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .layer(middleware::from_fn_with_state(metrics, observe))
}

/// Serves `router` on `listener` until `shutdown`, then finishes the requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    tracing::info!(addr = %listener.local_addr()?, "HTTP listening");
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
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
        _ => ApiError::malformed(text),
    }
}
