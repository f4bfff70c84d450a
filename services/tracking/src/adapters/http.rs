//! `POST /interactions` and `GET /interactions/{id}`.

use alpes_contracts::Timestamp;
use alpes_contracts::events::tracking::{
    InteractionKind, PageContext, Purchase, Target, TrackingParams, Visitor,
};
use alpes_eventstore::EventStore;
use alpes_runtime::ApiError;
use alpes_runtime::http::JsonBody;
use alpes_runtime::trace::TraceContext;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::app::{AppError, NewInteraction, Tracking};

/// The body of `POST /interactions`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrackRequest {
    kind: InteractionKind,
    /// RFC 3339; now when absent.
    #[serde(default)]
    interacted_at: Option<Timestamp>,
    visitor: Visitor,
    #[serde(default)]
    tracking: TrackingParams,
    target: Target,
    #[serde(default)]
    context: PageContext,
    #[serde(default)]
    purchase: Option<Purchase>,
}

/// The tracking API over `app`.
pub fn routes<S: EventStore>(app: Tracking<S>) -> Router {
    Router::new()
        .route("/interactions", post(track::<S>))
        .route("/interactions/{id}", get(interaction::<S>))
        .with_state(app)
}

async fn track<S: EventStore>(
    State(app): State<Tracking<S>>,
    trace: TraceContext,
    JsonBody(request): JsonBody<TrackRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let new = NewInteraction {
        kind: request.kind,
        interacted_at: request.interacted_at,
        visitor: request.visitor,
        tracking: request.tracking,
        target: request.target,
        context: request.context,
        purchase: request.purchase,
    };
    let tracked = app.track(new, &trace).await.map_err(api_error)?;
    let location = format!("/interactions/{}", tracked.interaction_id);
    let body = json!({ "interaction_id": tracked.interaction_id, "saga_id": tracked.saga_id });
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(body),
    ))
}

async fn interaction<S: EventStore>(
    State(app): State<Tracking<S>>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let (interaction, status) = app
        .interaction(&id)
        .await
        .map_err(api_error)?
        .ok_or_else(|| ApiError::not_found(format!("no interaction {id}")))?;
    let mut body =
        serde_json::to_value(&interaction).map_err(|e| ApiError::internal(e.to_string()))?;
    body["status"] = json!(status);
    Ok(Json(body))
}

fn api_error(error: AppError) -> ApiError {
    match error {
        AppError::Invalid(e) => ApiError::invalid(e.field, e.message),
        AppError::Store(e) => {
            tracing::error!(error = %e, "event store unavailable");
            ApiError::unavailable("the event store is unavailable, try again")
        }
        AppError::UnknownInteractions(ids) => {
            ApiError::not_found(format!("no interactions {ids:?}"))
        }
        AppError::Corrupt(e) => {
            tracing::error!(error = %e, "corrupt stream");
            ApiError::internal("stored data could not be read")
        }
    }
}
