//! `GET /journeys/{id}`, `GET /attributions/{saga_id}` and `GET /campaigns/{id}`: what
//! attribution knows, read from its streams. Unknown ids answer 404 with a JSON error; an id
//! that breaks `alpes_contracts::limits` (a control character, too long) answers 400 naming it.

use alpes_contracts::limits;
use alpes_eventstore::EventStore;
use alpes_runtime::ApiError;
use alpes_runtime::auth::{Access, Scope};
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use crate::app::{AppError, Attribution};

/// The attribution API over `app`; every route needs scope `read` from `access`.
pub fn routes<S: EventStore>(app: Attribution<S>, access: &Access) -> Router {
    Router::new()
        .route("/journeys/{id}", get(journey::<S>))
        .route("/attributions/{saga_id}", get(attribution::<S>))
        .route("/campaigns/{id}", get(campaign::<S>))
        .route_layer(access.need(Scope::Read))
        .with_state(app)
}

async fn journey<S: EventStore>(
    State(app): State<Attribution<S>>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    limits::ID.check("id", &id)?;
    let journey = app.journey(&id).await.map_err(api_error)?;
    journey
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no journey {id}")))
}

async fn attribution<S: EventStore>(
    State(app): State<Attribution<S>>,
    Path(saga_id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    limits::ID.check("saga_id", &saga_id)?;
    let saga = app.saga(&saga_id).await.map_err(api_error)?;
    saga.map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no attribution for saga {saga_id}")))
}

async fn campaign<S: EventStore>(
    State(app): State<Attribution<S>>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    limits::ID.check("id", &id)?;
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

#[cfg(test)]
mod tests {
    use alpes_eventstore::MemoryStore;
    use serde_json::Value;

    use alpes_runtime::auth::testing;

    use super::*;

    async fn get(url: &str) -> reqwest::Response {
        let client = reqwest::Client::new();
        let token = testing::only(Scope::Read);
        client.get(url).bearer_auth(token).send().await.unwrap()
    }

    #[tokio::test]
    async fn every_route_needs_scope_read() {
        let router = routes(Attribution::new(MemoryStore::new()), &testing::access());
        for path in ["/journeys/j-1", "/attributions/s-1", "/campaigns/c-1"] {
            testing::assert_guarded(&router, "GET", path, Scope::Read).await;
        }
    }

    #[tokio::test]
    async fn a_path_id_that_breaks_its_limit_is_a_400_naming_it() {
        let router = routes(Attribution::new(MemoryStore::new()), &testing::access());
        let base = alpes_testkit::serve(router).await;
        let long = "x".repeat(129);
        for (path, field) in [
            ("journeys/a%00b".to_owned(), "id"),
            (format!("journeys/{long}"), "id"),
            ("attributions/s%0A1".to_owned(), "saga_id"),
            (format!("campaigns/{long}"), "id"),
        ] {
            let response = get(&format!("{base}/{path}")).await;
            assert_eq!(response.status().as_u16(), 400, "{path}");
            let error: Value = response.json().await.unwrap();
            assert_eq!(error["field"], field, "{path}: {error}");
        }
        let unknown = get(&format!("{base}/journeys/unknown")).await;
        assert_eq!(unknown.status().as_u16(), 404);
    }
}
