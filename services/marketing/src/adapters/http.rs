//! The campaign API: create, activate, pause, complete, read, list.

use alpes_contracts::Money;
use alpes_contracts::events::attribution::AttributionModel;
use alpes_contracts::events::commission::{CommissionKind, CommissionTerms};
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
use serde_json::{Value, json};

use crate::app::{AppError, Marketing};
use crate::domain::{Campaign, CampaignDefinition, DomainError, Transition};

/// The body of `POST /campaigns`; everything but name, budget and terms has a default.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateCampaign {
    name: String,
    budget: Money,
    terms: Terms,
    #[serde(default = "default_model")]
    attribution_model: AttributionModel,
    #[serde(default = "default_window")]
    attribution_window_days: i32,
    #[serde(default = "default_threshold")]
    fraud_threshold: i32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Terms {
    kind: CommissionKind,
    percentage_bps: Option<i32>,
    fixed_minor: Option<i64>,
    #[serde(default)]
    minimum_minor: i64,
    maximum_minor: Option<i64>,
}

fn default_model() -> AttributionModel {
    AttributionModel::LastTouch
}

fn default_window() -> i32 {
    30
}

fn default_threshold() -> i32 {
    80
}

/// The optional body of a lifecycle step.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Reason {
    reason: Option<String>,
}

/// The campaign API over `app`.
pub fn routes<S: EventStore>(app: Marketing<S>) -> Router {
    Router::new()
        .route("/campaigns", post(create::<S>).get(list::<S>))
        .route("/campaigns/{id}", get(one::<S>))
        .route("/campaigns/{id}/stats", get(stats::<S>))
        .route("/campaigns/{id}/{step}", post(step::<S>))
        .with_state(app)
}

async fn create<S: EventStore>(
    State(app): State<Marketing<S>>,
    trace: TraceContext,
    JsonBody(body): JsonBody<CreateCampaign>,
) -> Result<impl IntoResponse, ApiError> {
    let definition = CampaignDefinition {
        name: body.name,
        budget: body.budget,
        terms: CommissionTerms {
            kind: body.terms.kind,
            percentage_bps: body.terms.percentage_bps,
            fixed_minor: body.terms.fixed_minor,
            minimum_minor: body.terms.minimum_minor,
            maximum_minor: body.terms.maximum_minor,
        },
        attribution_model: body.attribution_model,
        attribution_window_days: body.attribution_window_days,
        fraud_threshold: body.fraud_threshold,
    };
    let id = app.create(definition, &trace).await.map_err(api_error)?;
    let campaign = app
        .campaign(&id)
        .await
        .map_err(api_error)?
        .ok_or_else(|| ApiError::internal("the campaign just created cannot be read"))?;
    let location = format!("/campaigns/{id}");
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(view(&id, &campaign)),
    ))
}

async fn step<S: EventStore>(
    State(app): State<Marketing<S>>,
    Path((id, step)): Path<(String, String)>,
    trace: TraceContext,
    body: Option<Json<Reason>>,
) -> Result<impl IntoResponse, ApiError> {
    let transition = match step.as_str() {
        "activate" => Transition::Activate,
        "pause" => Transition::Pause,
        "complete" => Transition::Complete,
        _ => {
            return Err(ApiError::not_found(format!(
                "no campaign step `{step}`; use activate, pause or complete"
            )));
        }
    };
    let reason = body.and_then(|Json(r)| r.reason);
    let campaign = app
        .transition(&id, transition, reason, &trace)
        .await
        .map_err(api_error)?;
    Ok(Json(view(&id, &campaign)))
}

async fn one<S: EventStore>(
    State(app): State<Marketing<S>>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let campaign = app
        .campaign(&id)
        .await
        .map_err(api_error)?
        .ok_or_else(|| ApiError::not_found(format!("no campaign {id}")))?;
    Ok(Json(view(&id, &campaign)))
}

async fn stats<S: EventStore>(
    State(app): State<Marketing<S>>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    if app.campaign(&id).await.map_err(api_error)?.is_none() {
        return Err(ApiError::not_found(format!("no campaign {id}")));
    }
    let stats = app.stats(&id).await.map_err(api_error)?;
    Ok(Json(json!({ "campaign_id": id, "stats": stats })))
}

async fn list<S: EventStore>(
    State(app): State<Marketing<S>>,
) -> Result<impl IntoResponse, ApiError> {
    let campaigns = app.campaigns().await.map_err(api_error)?;
    let items: Vec<Value> = campaigns.iter().map(|(id, c)| view(id, c)).collect();
    Ok(Json(json!({ "items": items })))
}

fn view(id: &str, campaign: &Campaign) -> Value {
    let mut body = serde_json::to_value(&campaign.definition).unwrap_or_default();
    body["campaign_id"] = json!(id);
    body["status"] = json!(campaign.status);
    body
}

fn api_error(error: AppError) -> ApiError {
    match error {
        AppError::Domain(DomainError::Invalid { field, message }) => {
            ApiError::invalid(field, message)
        }
        AppError::Domain(DomainError::Unknown) => ApiError::not_found("no such campaign"),
        AppError::Domain(refused) => ApiError::conflict(refused.to_string()),
        AppError::Store(e) => {
            tracing::error!(error = %e, "event store unavailable");
            ApiError::unavailable("the event store is unavailable, try again")
        }
        AppError::Corrupt(e) => {
            tracing::error!(error = %e, "corrupt stream");
            ApiError::internal("stored data could not be read")
        }
    }
}
