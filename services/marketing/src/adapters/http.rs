//! The campaign API: create, activate, pause, complete, read, list.
//!
//! Ids in paths and reasons in bodies are checked against `alpes_contracts::limits` here; the
//! definition of a campaign (name, money) is checked by the domain. Either way a bad value is a
//! 400 naming its field.

use alpes_contracts::Money;
use alpes_contracts::limits;
use alpes_eventstore::EventStore;
use alpes_runtime::ApiError;
use alpes_runtime::auth::{Access, Scope};
use alpes_runtime::http::JsonBody;
use alpes_runtime::trace::TraceContext;
use alpes_sagalog::CampaignStats;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::app::{AppError, Marketing};
use crate::domain::{
    Campaign, CampaignDefinition, DomainError, Model, RateKind, Terms, Transition,
};
use crate::read_models::ReadError;

/// The body of `POST /campaigns`; everything but name, budget and terms has a default.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateCampaign {
    name: String,
    budget: Money,
    terms: TermsBody,
    #[serde(default = "default_model")]
    attribution_model: Model,
    #[serde(default = "default_window")]
    attribution_window_days: i32,
    #[serde(default = "default_threshold")]
    fraud_threshold: i32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TermsBody {
    kind: RateKind,
    percentage_bps: Option<i32>,
    fixed_minor: Option<i64>,
    #[serde(default)]
    minimum_minor: i64,
    maximum_minor: Option<i64>,
}

fn default_model() -> Model {
    Model::LastTouch
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

/// The campaign API over `app`: reading needs scope `read` from `access`, creating a campaign
/// and moving it through its lifecycle `operate`.
pub fn routes<S: EventStore>(app: Marketing<S>, access: &Access) -> Router {
    let (read, operate) = (access.need(Scope::Read), access.need(Scope::Operate));
    Router::new()
        .route(
            "/campaigns",
            get(list::<S>)
                .route_layer(read.clone())
                .merge(post(create::<S>).route_layer(operate.clone())),
        )
        .route("/campaigns/{id}", get(one::<S>).route_layer(read.clone()))
        .route("/campaigns/{id}/stats", get(stats::<S>).route_layer(read))
        .route(
            "/campaigns/{id}/{step}",
            post(step::<S>).route_layer(operate),
        )
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
        terms: Terms {
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
    limits::ID.check("id", &id)?;
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
    if let Some(reason) = &reason {
        limits::REASON.check("reason", reason)?;
    }
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
    limits::ID.check("id", &id)?;
    let campaign = app
        .campaign(&id)
        .await
        .map_err(api_error)?
        .ok_or_else(|| ApiError::not_found(format!("no campaign {id}")))?;
    Ok(Json(view(&id, &campaign)))
}

/// A campaign's statistics: a read model kept up to date as events arrive, one lookup.
async fn stats<S: EventStore>(
    State(app): State<Marketing<S>>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    limits::ID.check("id", &id)?;
    if app.campaign(&id).await.map_err(api_error)?.is_none() {
        return Err(ApiError::not_found(format!("no campaign {id}")));
    }
    let stats = app
        .read_models()
        .stats(&id)
        .await
        .map_err(|e| api_error(e.into()))?;
    // Typed, not a `json!` value: totals may exceed what a `serde_json::Value` number holds.
    Ok(Json(StatsBody {
        campaign_id: &id,
        stats: &stats,
    })
    .into_response())
}

/// The body of `GET /campaigns/{id}/stats`.
#[derive(Serialize)]
struct StatsBody<'a> {
    campaign_id: &'a str,
    stats: &'a CampaignStats,
}

/// The most campaigns one page holds, and how many when the client does not say.
const MAX_LIMIT: u32 = 500;
const DEFAULT_LIMIT: u32 = 100;

/// The campaign list, a read model, in campaign id order (creation order), a page at a time.
/// A parameter that is unknown or not understood is a 400 naming it.
async fn list<S: EventStore>(
    State(app): State<Marketing<S>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<impl IntoResponse, ApiError> {
    let (mut after, mut limit) = (None, DEFAULT_LIMIT);
    for (name, value) in &params {
        match name.as_str() {
            "after" => {
                limits::ID.check(name, value)?;
                after = Some(value.clone());
            }
            "limit" => {
                limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        ApiError::invalid(name, format!("a number from 1 to {MAX_LIMIT}"))
                    })?;
            }
            _ => {
                return Err(ApiError::invalid(
                    name,
                    "unknown parameter; the list takes `after` and `limit`",
                ));
            }
        }
    }
    let page = app
        .read_models()
        .campaigns(after.as_deref(), limit)
        .await
        .map_err(|e| api_error(e.into()))?;
    let items: Vec<Value> = page.items.iter().map(|(id, c)| view(id, c)).collect();
    Ok(Json(
        json!({ "items": items, "next_cursor": page.next_cursor }),
    ))
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
        AppError::ReadModel(ReadError::Importing) => ApiError::unavailable(
            "the campaign list and statistics are being imported from an earlier version; try again shortly",
        ),
        AppError::ReadModel(e) => {
            tracing::error!(error = %e, "read model unavailable");
            ApiError::unavailable("the campaign list and statistics are unavailable, try again")
        }
        AppError::Corrupt(e) => {
            tracing::error!(error = %e, "corrupt stream");
            ApiError::internal("stored data could not be read")
        }
    }
}

#[cfg(test)]
mod tests {
    use alpes_eventstore::MemoryStore;
    use alpes_runtime::auth::Tokens;

    use crate::read_models::ReadModels;

    use super::*;

    const TOKEN: &str = "operator";

    /// Serves the API over an in-memory store; returns its base URL.
    async fn serve() -> String {
        let router = routes(
            Marketing::new(MemoryStore::new(), ReadModels::in_memory()),
            &Access::new(Tokens::all_scopes(TOKEN)),
        );
        alpes_testkit::serve(router).await
    }

    fn campaign() -> Value {
        json!({
            "name": "Black Friday",
            "budget": {"amount_minor": 100_000, "currency": "EUR"},
            "terms": {"kind": "PERCENTAGE", "percentage_bps": 1_000}
        })
    }

    async fn create(base: &str, body: &Value) -> (u16, Value) {
        let response = reqwest::Client::new()
            .post(format!("{base}/campaigns"))
            .bearer_auth(TOKEN)
            .json(body)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    #[tokio::test]
    async fn negative_money_and_oversize_names_are_a_400_naming_the_field() {
        let base = serve().await;
        assert_eq!(create(&base, &campaign()).await.0, 201);
        let cases = [
            ("/terms/fixed_minor", json!(-1), "terms.fixed_minor"),
            ("/terms/maximum_minor", json!(-1), "terms.maximum_minor"),
            ("/terms/minimum_minor", json!(-1), "terms.minimum_minor"),
            ("/budget/amount_minor", json!(-1), "budget.amount_minor"),
            ("/name", json!("n".repeat(10_000)), "name"),
            ("/name", json!("Black\u{0}Friday"), "name"),
        ];
        for (pointer, value, field) in cases {
            let mut body = campaign();
            match body.pointer_mut(pointer) {
                Some(slot) => *slot = value,
                None => {
                    let (parent, name) = pointer.rsplit_once('/').unwrap();
                    body.pointer_mut(parent).unwrap()[name] = value;
                }
            }
            let (status, error) = create(&base, &body).await;
            assert_eq!(status, 400, "{pointer}: {error}");
            assert_eq!(error["field"], field, "{error}");
        }
    }

    #[tokio::test]
    async fn ids_and_reasons_that_break_their_limits_are_a_400_naming_them() {
        let base = serve().await;
        let (_, created) = create(&base, &campaign()).await;
        let id = created["campaign_id"].as_str().unwrap().to_owned();
        let http = reqwest::Client::new();
        for path in ["campaigns/c%00"] {
            let response = http.get(format!("{base}/{path}")).bearer_auth(TOKEN);
            let response = response.send().await.unwrap();
            assert_eq!(response.status().as_u16(), 400, "{path}");
            assert_eq!(response.json::<Value>().await.unwrap()["field"], "id");
        }
        let response = http
            .post(format!("{base}/campaigns/{id}/pause"))
            .bearer_auth(TOKEN)
            .json(&json!({"reason": "stock\u{0}out"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 400);
        assert_eq!(response.json::<Value>().await.unwrap()["field"], "reason");
        let response = http
            .post(format!("{base}/campaigns/{id}/activate"))
            .bearer_auth(TOKEN)
            .json(&json!({"reason": "launch\nday"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "a reason may have lines");
    }
}
