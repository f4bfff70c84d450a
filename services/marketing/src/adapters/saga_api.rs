//! The saga inspection API and fraud reports, behind bearer tokens (`alpes_runtime::auth`).
//!
//! `GET /sagas/{id}`, `GET /sagas/{id}/view` (HTML), `GET /sagas`, `GET /sagas/stats` (scope
//! `read`), and `POST /fraud-reports` (scope `ingest`). The token comes as `Authorization:
//! Bearer <token>` or, for a browser opening the HTML view only, as the `access_token` query
//! parameter (RFC 6750 §2.3).
//!
//! Every id in a path or query and every string of a fraud report is checked against
//! `alpes_contracts::limits` first: a 400 naming the field, rather than a query Postgres
//! refuses (a NUL) or a `FraudDetected` that no consumer would accept.

use alpes_contracts::limits;
use alpes_runtime::ApiError;
use alpes_runtime::auth::{Access, Scope};
use alpes_runtime::http::JsonBody;
use alpes_runtime::trace::TraceContext;
use alpes_sagalog::{Cursor, ListQuery, LogError, Status};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::http::header::{self, HeaderValue};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::adapters::view;
use crate::coordinator::{FraudReport, SagaCoordinator, SagaError};

/// The most sagas one page holds, and how many when the client does not say.
const MAX_LIMIT: u32 = 500;
const DEFAULT_LIMIT: u32 = 50;

/// The routes over `sagas`: reading needs scope `read` from `access` (the HTML view also takes
/// the token in its query, for a browser opening a link), reporting fraud `ingest`.
pub fn routes(sagas: SagaCoordinator, access: &Access) -> Router {
    let read = access.need(Scope::Read);
    Router::new()
        .route("/sagas", get(list).route_layer(read.clone()))
        .route("/sagas/stats", get(stats).route_layer(read.clone()))
        .route("/sagas/{id}", get(one).route_layer(read))
        .route(
            "/sagas/{id}/view",
            get(page).route_layer(access.need_in_query(Scope::Read)),
        )
        .route(
            "/fraud-reports",
            post(report).route_layer(access.need(Scope::Ingest)),
        )
        .with_state(sagas)
}

async fn one(
    State(sagas): State<SagaCoordinator>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    limits::ID.check("id", &id)?;
    match sagas.log().saga(&id).await.map_err(unavailable)? {
        Some(saga) => Ok(Json(saga).into_response()),
        None => Err(ApiError::not_found(format!("no saga {id} in the log"))),
    }
}

/// The HTML view's headers: nothing but its own inline style may load, no page may frame it,
/// and its URL (which may carry the token) is neither sent on as a referrer nor cached.
const PAGE_HEADERS: [(header::HeaderName, HeaderValue); 5] = [
    (
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; \
             base-uri 'none'; form-action 'none'",
        ),
    ),
    (
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    ),
    (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
    (
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    ),
    (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
];

async fn page(
    State(sagas): State<SagaCoordinator>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    limits::ID.check("id", &id)?;
    match sagas.log().saga(&id).await.map_err(unavailable)? {
        Some(saga) => Ok((PAGE_HEADERS, Html(view::render(&saga))).into_response()),
        None => Err(ApiError::not_found(format!("no saga {id} in the log"))),
    }
}

async fn list(
    State(sagas): State<SagaCoordinator>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let query = list_query(&params)?;
    let page = sagas.log().list(&query).await.map_err(unavailable)?;
    Ok(Json(page).into_response())
}

/// The list query `params` ask for; a parameter that is unknown or not understood is a 400
/// naming it.
fn list_query(params: &[(String, String)]) -> Result<ListQuery, ApiError> {
    let mut query = ListQuery {
        limit: DEFAULT_LIMIT,
        ..ListQuery::default()
    };
    for (name, value) in params {
        let invalid = |message: String| ApiError::invalid(name.clone(), message);
        match name.as_str() {
            "status" => {
                for status in value.split(',').filter(|s| !s.trim().is_empty()) {
                    let status = Status::parse(status).ok_or_else(|| {
                        let known: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
                        invalid(format!(
                            "unknown status {status:?}; one of {}",
                            known.join(", ")
                        ))
                    })?;
                    query.statuses.push(status);
                }
            }
            "campaign" => {
                limits::ID.check(name, value)?;
                query.campaign_id = Some(value.clone());
            }
            "partner" => {
                limits::ID.check(name, value)?;
                query.partner_id = Some(value.clone());
            }
            "since" | "until" => {
                let at = chrono::DateTime::parse_from_rfc3339(value)
                    .map_err(|e| invalid(format!("not an RFC 3339 time ({e}): {value:?}")))?
                    .to_utc();
                if name == "since" {
                    query.since = Some(at);
                } else {
                    query.until = Some(at);
                }
            }
            "limit" => {
                query.limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        invalid(format!("must be a whole number from 1 to {MAX_LIMIT}"))
                    })?;
            }
            "cursor" => {
                query.cursor =
                    Some(Cursor::decode(value).ok_or_else(|| {
                        invalid("not a cursor this endpoint returned".to_owned())
                    })?);
            }
            _ => {
                return Err(invalid(
                    "unknown parameter; use status, campaign, partner, since, until, limit, cursor"
                        .to_owned(),
                ));
            }
        }
    }
    if let (Some(since), Some(until)) = (query.since, query.until)
        && since >= until
    {
        return Err(ApiError::invalid("until", "must be after since"));
    }
    Ok(query)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatsQuery {
    campaign: Option<String>,
}

async fn stats(
    State(sagas): State<SagaCoordinator>,
    query: Result<Query<StatsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    if let Some(campaign) = &query.campaign {
        limits::ID.check("campaign", campaign)?;
    }
    let stats = sagas
        .log()
        .stats(query.campaign.as_deref())
        .await
        .map_err(unavailable)?;
    Ok(Json(stats).into_response())
}

/// The body of `POST /fraud-reports`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FraudReportBody {
    saga_id: String,
    reason: String,
    reporter: String,
    score: Option<i32>,
}

async fn report(
    State(sagas): State<SagaCoordinator>,
    trace: TraceContext,
    JsonBody(body): JsonBody<FraudReportBody>,
) -> Result<Response, ApiError> {
    let report = fraud_report(body)?;
    let (fraud, receipt) = sagas
        .report_fraud(report, &trace)
        .await
        .map_err(|e: SagaError| {
            tracing::error!(error = %e, "publishing FraudDetected failed");
            ApiError::unavailable("the fraud report could not be published, try again")
        })?;
    let body = json!({
        "saga_id": fraud.metadata.saga_id,
        "event_id": fraud.metadata.event_id,
        "message_id": receipt.message_id,
    });
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// The report a body asks for, or a 400 naming the first field at fault.
fn fraud_report(body: FraudReportBody) -> Result<FraudReport, ApiError> {
    let saga_id = body.saga_id.trim();
    let fields = [
        ("saga_id", saga_id, limits::ID),
        ("reason", body.reason.as_str(), limits::REASON),
        ("reporter", body.reporter.as_str(), limits::NAME),
    ];
    for (field, value, limit) in fields {
        if value.trim().is_empty() {
            return Err(ApiError::invalid(field, "must not be empty"));
        }
        limit.check(field, value)?;
    }
    if let Some(score) = body.score.filter(|s| !(0..=100).contains(s)) {
        return Err(ApiError::invalid(
            "score",
            format!("must be from 0 to 100, got {score}"),
        ));
    }
    Ok(FraudReport {
        saga_id: saga_id.to_owned(),
        reason: body.reason,
        reporter: body.reporter,
        score: body.score,
    })
}

fn unavailable(error: LogError) -> ApiError {
    tracing::error!(error = %error, "saga log unavailable");
    ApiError::unavailable("the saga log is unavailable, try again")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn field_of(pairs: &[(&str, &str)]) -> Option<String> {
        list_query(&params(pairs)).err().and_then(|e| e.field)
    }

    #[test]
    fn a_list_query_reads_every_filter() {
        let query = list_query(&params(&[
            ("status", "completed,TIMED_OUT"),
            ("campaign", "c-1"),
            ("partner", "p-1"),
            ("since", "2026-11-26T00:00:00Z"),
            ("until", "2026-11-27T00:00:00+01:00"),
            ("limit", "10"),
        ]))
        .unwrap();
        assert_eq!(query.statuses, vec![Status::Completed, Status::TimedOut]);
        assert_eq!(query.campaign_id.as_deref(), Some("c-1"));
        assert_eq!(query.partner_id.as_deref(), Some("p-1"));
        assert_eq!(query.limit, 10);
        assert_eq!(
            query.until.unwrap().to_rfc3339(),
            "2026-11-26T23:00:00+00:00"
        );
    }

    #[test]
    fn a_bad_parameter_is_named() {
        assert_eq!(field_of(&[("status", "DONE")]), Some("status".into()));
        assert_eq!(field_of(&[("limit", "0")]), Some("limit".into()));
        assert_eq!(field_of(&[("limit", "501")]), Some("limit".into()));
        assert_eq!(field_of(&[("since", "yesterday")]), Some("since".into()));
        assert_eq!(field_of(&[("cursor", "nonsense")]), Some("cursor".into()));
        assert_eq!(field_of(&[("stauts", "COMPLETED")]), Some("stauts".into()));
        assert_eq!(
            field_of(&[
                ("since", "2026-11-27T00:00:00Z"),
                ("until", "2026-11-26T00:00:00Z")
            ]),
            Some("until".into())
        );
    }

    #[test]
    fn ids_in_the_list_query_are_checked_against_their_limit() {
        assert_eq!(field_of(&[("campaign", "c\u{0}")]), Some("campaign".into()));
        let long = "p".repeat(limits::ID.max_bytes + 1);
        assert_eq!(field_of(&[("partner", &long)]), Some("partner".into()));
        assert_eq!(field_of(&[("campaign", "c-1"), ("partner", "p-1")]), None);
    }

    fn report(saga_id: &str, reason: &str, reporter: &str) -> FraudReportBody {
        FraudReportBody {
            saga_id: saga_id.into(),
            reason: reason.into(),
            reporter: reporter.into(),
            score: None,
        }
    }

    #[test]
    fn a_fraud_report_that_breaks_a_limit_names_the_field() {
        let field = |body| fraud_report(body).err().and_then(|e| e.field);
        assert_eq!(
            field(report("s-1", "chargeback\u{0}", "ops")),
            Some("reason".into())
        );
        assert_eq!(
            field(report("s\u{0}1", "chargeback", "ops")),
            Some("saga_id".into())
        );
        let long = "s".repeat(3_000);
        assert_eq!(
            field(report(&long, "chargeback", "ops")),
            Some("saga_id".into())
        );
        let reason = "r".repeat(limits::REASON.max_bytes + 1);
        assert_eq!(field(report("s-1", &reason, "ops")), Some("reason".into()));
        assert_eq!(
            field(report("s-1", "chargeback", "o\u{1b}ps")),
            Some("reporter".into())
        );
        let accepted = fraud_report(report(" s-1 ", "chargeback\nby the bank", "ops")).unwrap();
        assert_eq!(accepted.saga_id, "s-1");
    }
}
