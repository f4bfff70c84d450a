//! The commission API: read commissions and budgets, confirm a reserved commission.
//!
//! - `GET /commissions/{id}`: one commission (404 when unknown).
//! - `GET /commissions?campaign=&status=&cursor=&limit=`: a page of commissions in id order,
//!   with `next_cursor` when there may be more: follow it until it is absent. A page with a
//!   status filter may hold fewer than `limit` (even none) and still name a next one: a request
//!   examines a bounded number of commissions (see `app::listing`). A bad parameter is a 400
//!   naming it.
//! - `POST /commissions/{id}/confirm`: the commission is owed to the partner (404 unknown, 409
//!   when it is not RESERVED; confirming a CONFIRMED one again is a harmless 200).
//! - `GET /budgets/{campaign_id}`: the campaign's total, reserved and remaining budget.
//!
//! Ids in paths and queries are checked against `alpes_contracts::limits`: one with a control
//! character or over its length is a 400 naming it, never a store lookup.

use std::collections::BTreeSet;

use alpes_contracts::limits;
use alpes_eventstore::{EventStore, StoreError};
use alpes_runtime::ApiError;
use alpes_runtime::auth::{Access, Scope};
use alpes_runtime::trace::TraceContext;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::app::{
    AppError, BudgetView, CommissionFilter, CommissionPage, CommissionView, Commissions,
};
use crate::domain::{Commission, CommissionStatus, DomainError};

/// Commissions per page unless `limit` says otherwise.
const DEFAULT_LIMIT: usize = 50;
/// The most commissions a page holds.
const MAX_LIMIT: usize = 200;

/// The commission API over `app`: reading needs scope `read` from `access`, confirming
/// `operate`.
pub fn routes<S: EventStore>(app: Commissions<S>, access: &Access) -> Router {
    let read = access.need(Scope::Read);
    Router::new()
        .route("/commissions", get(list::<S>).route_layer(read.clone()))
        .route(
            "/commissions/{id}",
            get(commission::<S>).route_layer(read.clone()),
        )
        .route(
            "/commissions/{id}/confirm",
            post(confirm::<S>).route_layer(access.need(Scope::Operate)),
        )
        .route("/budgets/{campaign_id}", get(budget::<S>).route_layer(read))
        .with_state(app)
}

async fn commission<S: EventStore>(
    State(app): State<Commissions<S>>,
    Path(id): Path<String>,
) -> Result<Json<CommissionView>, ApiError> {
    limits::COMPOSITE_ID.check("id", &id)?;
    app.commission(&id)
        .await
        .map_err(api_error)?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no commission {id}")))
}

async fn list<S: EventStore>(
    State(app): State<Commissions<S>>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<CommissionPage>, ApiError> {
    let Query(parameters) = query.map_err(|e| ApiError::malformed(e.body_text()))?;
    let filter = filter_from(&parameters)?;
    app.commissions(&filter).await.map(Json).map_err(api_error)
}

async fn confirm<S: EventStore>(
    State(app): State<Commissions<S>>,
    Path(id): Path<String>,
    trace: TraceContext,
) -> Result<Json<CommissionView>, ApiError> {
    limits::COMPOSITE_ID.check("id", &id)?;
    app.confirm(&id, &trace).await.map(Json).map_err(api_error)
}

async fn budget<S: EventStore>(
    State(app): State<Commissions<S>>,
    Path(campaign_id): Path<String>,
) -> Result<Json<BudgetView>, ApiError> {
    limits::ID.check("campaign_id", &campaign_id)?;
    app.budget(&campaign_id)
        .await
        .map_err(api_error)?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no budget for campaign {campaign_id}")))
}

/// The list's filter from its query parameters; each may be given once.
fn filter_from(parameters: &[(String, String)]) -> Result<CommissionFilter, ApiError> {
    let mut filter = CommissionFilter {
        campaign: None,
        status: None,
        after: None,
        limit: DEFAULT_LIMIT,
    };
    let mut seen = BTreeSet::new();
    for (name, value) in parameters {
        if !seen.insert(name.as_str()) {
            return Err(ApiError::invalid(name, "given more than once"));
        }
        match name.as_str() {
            "campaign" if value.is_empty() => {
                return Err(ApiError::invalid(name, "must not be empty"));
            }
            "campaign" => {
                limits::ID.check(name, value)?;
                filter.campaign = Some(value.clone());
            }
            "status" => filter.status = Some(status_from(value)?),
            "cursor" => {
                limits::COMPOSITE_ID.check(name, value)?;
                if Commission::saga_of(value).is_none() {
                    return Err(ApiError::invalid(
                        name,
                        format!("{value:?} is not a cursor this API returned"),
                    ));
                }
                filter.after = Some(value.clone());
            }
            "limit" => {
                filter.limit = value
                    .parse()
                    .ok()
                    .filter(|limit| (1..=MAX_LIMIT).contains(limit))
                    .ok_or_else(|| {
                        ApiError::invalid(
                            name,
                            format!("{value:?} is not a whole number from 1 to {MAX_LIMIT}"),
                        )
                    })?;
            }
            _ => {
                return Err(ApiError::invalid(
                    name,
                    "unknown parameter: expected campaign, status, cursor or limit",
                ));
            }
        }
    }
    Ok(filter)
}

/// A status a listed commission can be in.
fn status_from(value: &str) -> Result<CommissionStatus, ApiError> {
    let listed = [
        CommissionStatus::Pending,
        CommissionStatus::Reserved,
        CommissionStatus::Confirmed,
        CommissionStatus::Rejected,
        CommissionStatus::Reverted,
    ];
    serde_json::from_value::<CommissionStatus>(serde_json::Value::from(value))
        .ok()
        .filter(|status| listed.contains(status))
        .ok_or_else(|| {
            ApiError::invalid(
                "status",
                format!("{value:?} is not one of PENDING, RESERVED, CONFIRMED, REJECTED, REVERTED"),
            )
        })
}

fn api_error(error: AppError) -> ApiError {
    match error {
        AppError::UnknownCommission(id) => ApiError::not_found(format!("no commission {id}")),
        AppError::Invalid(DomainError::NotReserved(status)) => {
            let status = serde_json::to_value(status)
                .ok()
                .and_then(|s| s.as_str().map(str::to_owned))
                .unwrap_or_else(|| format!("{status:?}"));
            ApiError::conflict(format!(
                "only a RESERVED commission can be confirmed; this one is {status}"
            ))
        }
        AppError::Invalid(e) => ApiError::conflict(e.to_string()),
        AppError::Store(StoreError::Corrupt(e)) => {
            tracing::error!(error = %e, "corrupt stream");
            ApiError::internal("stored data could not be read")
        }
        AppError::Store(e) => {
            tracing::error!(error = %e, "event store unavailable");
            ApiError::unavailable("the event store is unavailable, try again")
        }
        e @ (AppError::NoSaga(_) | AppError::CampaignUnknown(_)) => {
            tracing::error!(error = %e, "unexpected error in an HTTP request");
            ApiError::internal("unexpected error")
        }
    }
}

#[cfg(test)]
mod tests {
    use alpes_eventstore::MemoryStore;
    use serde_json::Value;

    use alpes_runtime::auth::testing;

    use super::*;

    #[tokio::test]
    async fn reading_needs_scope_read_and_confirming_scope_operate() {
        let router = routes(Commissions::new(MemoryStore::new()), &testing::access());
        for (method, path, scope) in [
            ("GET", "/commissions", Scope::Read),
            ("GET", "/commissions?campaign=c-1", Scope::Read),
            ("GET", "/commissions/commission-s-1", Scope::Read),
            (
                "POST",
                "/commissions/commission-s-1/confirm",
                Scope::Operate,
            ),
            ("GET", "/budgets/c-1", Scope::Read),
        ] {
            testing::assert_guarded(&router, method, path, scope).await;
        }
    }

    #[tokio::test]
    async fn ids_in_paths_and_queries_that_break_their_limits_are_a_400_naming_them() {
        let router = routes(Commissions::new(MemoryStore::new()), &testing::access());
        let base = alpes_testkit::serve(router).await;
        let http = reqwest::Client::new();
        let long = "x".repeat(300);
        let cases = [
            ("GET", "commissions/commission-a%00b".to_owned(), "id"),
            ("GET", format!("commissions/{long}"), "id"),
            (
                "POST",
                "commissions/commission-%1B/confirm".to_owned(),
                "id",
            ),
            ("GET", "budgets/c%00".to_owned(), "campaign_id"),
            ("GET", "commissions?campaign=c%00".to_owned(), "campaign"),
            (
                "GET",
                format!("commissions?campaign={}", "c".repeat(129)),
                "campaign",
            ),
            (
                "GET",
                "commissions?cursor=commission-s%07".to_owned(),
                "cursor",
            ),
        ];
        for (method, path, field) in cases {
            let url = format!("{base}/{path}");
            let request = match method {
                "POST" => http.post(url).bearer_auth(testing::only(Scope::Operate)),
                _ => http.get(url).bearer_auth(testing::only(Scope::Read)),
            };
            let response = request.send().await.unwrap();
            assert_eq!(response.status().as_u16(), 400, "{path}");
            let error: Value = response.json().await.unwrap();
            assert_eq!(error["field"], field, "{path}: {error}");
        }
        // A commission id may be longer than a plain id: it is `commission-` and a saga id.
        let longest = format!("commission-{}", "s".repeat(limits::ID.max_bytes));
        let response = http
            .get(format!("{base}/commissions/{longest}"))
            .bearer_auth(testing::only(Scope::Read))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 404);
    }
}
