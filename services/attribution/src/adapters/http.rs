//! `GET /journeys/{id}`, `GET /attributions/{saga_id}` and `GET /campaigns/{id}`: what
//! attribution knows, read from its streams. Unknown ids answer 404 with a JSON error.

use alpes_eventstore::EventStore;
use alpes_runtime::ApiError;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use crate::app::{AppError, Attribution};

/// The attribution API over `app`.
pub fn routes<S: EventStore>(app: Attribution<S>) -> Router {
    Router::new()
        .route("/journeys/{id}", get(journey::<S>))
        .route("/attributions/{saga_id}", get(attribution::<S>))
        .route("/campaigns/{id}", get(campaign::<S>))
        .with_state(app)
}

async fn journey<S: EventStore>(
    State(app): State<Attribution<S>>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let journey = app.journey(&id).await.map_err(api_error)?;
    journey
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no journey {id}")))
}

async fn attribution<S: EventStore>(
    State(app): State<Attribution<S>>,
    Path(saga_id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let saga = app.saga(&saga_id).await.map_err(api_error)?;
    saga.map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no attribution for saga {saga_id}")))
}

async fn campaign<S: EventStore>(
    State(app): State<Attribution<S>>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let campaign = app.campaign_view(&id).await.map_err(api_error)?;
    campaign
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no campaign {id}")))
}

fn api_error(error: AppError) -> ApiError {
    match error {
        AppError::Store(e) => {
            tracing::error!(error = %e, "event store unavailable");
            ApiError::unavailable("the event store is unavailable, try again")
        }
        other => {
            tracing::error!(error = %other, "stored data could not be read");
            ApiError::internal("stored data could not be read")
        }
    }
}
