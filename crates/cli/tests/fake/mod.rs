//! A fake alpes platform on one loopback port, speaking the HTTP contracts the CLI codes
//! against: marketing's campaigns, saga log and fraud reports, tracking's interactions, and the
//! campaign look-ups of attribution and commission. Sagas move one status per poll, so a
//! simulation sees them progress; a fraud report compensates them unless told not to.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

pub const TOKEN: &str = "s3cret";

/// What the fake knows and what it was asked.
#[derive(Default)]
pub struct FakePlatform {
    /// Status per saga id.
    pub sagas: HashMap<String, String>,
    /// Sagas reported as fraud.
    pub fraud: Vec<String>,
    /// Whether fraud reports are ignored (a broken compensation path).
    pub ignore_fraud: bool,
    /// Interactions by kind.
    pub interactions: HashMap<String, usize>,
    /// Query strings of `GET /sagas`, in order.
    pub list_queries: Vec<String>,
    pub campaigns: usize,
    /// Added to the budget's reserved amount (a budget that lost track of its commissions).
    pub budget_skew: i64,
}

/// What each commission of a COMPLETED saga holds, in minor units.
pub const COMMISSION: i64 = 500;

pub type Shared = Arc<Mutex<FakePlatform>>;

/// Serves the fake on a random loopback port; its base URL and state.
pub async fn serve(platform: FakePlatform) -> (String, Shared) {
    let state: Shared = Arc::new(Mutex::new(platform));
    let app = Router::new()
        .route(
            "/readyz",
            get(|| async { Json(json!({"status": "ready"})) }),
        )
        .route("/campaigns", post(create_campaign))
        .route("/campaigns/{id}/activate", post(activate))
        .route("/campaigns/{id}", get(known_campaign))
        .route("/budgets/{id}", get(budget))
        .route("/commissions/{id}", get(commission))
        .route("/interactions", post(track))
        .route("/fraud-reports", post(report_fraud))
        .route("/sagas", get(list))
        .route("/sagas/stats", get(stats))
        .route("/sagas/{id}", get(saga))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, state)
}

/// A 401 unless the request carries the token.
fn unauthorised(headers: &HeaderMap) -> Option<Response> {
    let expected = format!("Bearer {TOKEN}");
    if headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str()) {
        None
    } else {
        Some(
            (
                StatusCode::UNAUTHORIZED,
                Json(
                    json!({"code": "unauthorized", "message": "a valid bearer token is required"}),
                ),
            )
                .into_response(),
        )
    }
}

async fn create_campaign(State(state): State<Shared>, Json(body): Json<Value>) -> Response {
    assert!(body["budget"]["amount_minor"].as_i64().unwrap() > 0);
    assert_eq!(body["terms"]["kind"], "PERCENTAGE");
    let mut platform = state.lock().unwrap();
    platform.campaigns += 1;
    let id = format!("c-{}", platform.campaigns);
    (
        StatusCode::CREATED,
        Json(json!({"campaign_id": id, "status": "DRAFT"})),
    )
        .into_response()
}

async fn activate(Path(id): Path<String>) -> Json<Value> {
    Json(json!({"campaign_id": id, "status": "ACTIVE"}))
}

async fn known_campaign(Path(id): Path<String>) -> Json<Value> {
    Json(json!({"campaign_id": id, "status": "ACTIVE"}))
}

/// An ACTIVE campaign's budget: a [`COMMISSION`] reserved per COMPLETED saga (plus the skew).
async fn budget(State(state): State<Shared>, Path(id): Path<String>) -> Json<Value> {
    let platform = state.lock().unwrap();
    let completed = platform
        .sagas
        .values()
        .filter(|s| *s == "COMPLETED")
        .count() as i64;
    let reserved = completed * COMMISSION + platform.budget_skew;
    Json(json!({
        "campaign_id": id,
        "status": "ACTIVE",
        "reserved": {"amount_minor": reserved, "currency": "EUR"},
    }))
}

/// `commission-<saga>`: RESERVED while its saga is COMPLETED, REVERTED once compensated.
async fn commission(State(state): State<Shared>, Path(id): Path<String>) -> Response {
    let platform = state.lock().unwrap();
    let status = id
        .strip_prefix("commission-")
        .and_then(|saga| platform.sagas.get(saga));
    let (status, amount) = match status.map(String::as_str) {
        Some("COMPLETED") => (
            "RESERVED",
            json!({"amount_minor": COMMISSION, "currency": "EUR"}),
        ),
        Some("COMPENSATED" | "COMPENSATING") => ("REVERTED", Value::Null),
        Some(_) => ("PENDING", Value::Null),
        None => {
            return (
                StatusCode::NOT_FOUND,
                Json(json!({"code": "not_found", "message": format!("no commission {id}")})),
            )
                .into_response();
        }
    };
    Json(json!({"commission_id": id, "status": status, "amount": amount})).into_response()
}

async fn track(State(state): State<Shared>, Json(body): Json<Value>) -> Response {
    let kind = body["kind"].as_str().unwrap().to_owned();
    assert!(body["tracking"]["partner_id"].is_string());
    let mut platform = state.lock().unwrap();
    *platform.interactions.entry(kind.clone()).or_insert(0) += 1;
    let saga = (kind == "PURCHASE").then(|| {
        assert!(body["purchase"]["amount"]["amount_minor"].is_i64());
        let id = uuid::Uuid::new_v4().to_string();
        platform.sagas.insert(id.clone(), "NEW".into());
        id
    });
    (
        StatusCode::ACCEPTED,
        Json(json!({"interaction_id": uuid::Uuid::new_v4().to_string(), "saga_id": saga})),
    )
        .into_response()
}

async fn report_fraud(
    State(state): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(refused) = unauthorised(&headers) {
        return refused;
    }
    let saga = body["saga_id"].as_str().unwrap().to_owned();
    assert!(body["reason"].is_string() && body["reporter"].is_string());
    state.lock().unwrap().fraud.push(saga.clone());
    (
        StatusCode::ACCEPTED,
        Json(json!({"saga_id": saga, "event_id": uuid::Uuid::new_v4().to_string()})),
    )
        .into_response()
}

/// One step further along the saga's path per poll.
fn advance(status: &str, fraud: bool) -> &'static str {
    match (status, fraud) {
        ("NEW", _) => "STARTED",
        ("STARTED", _) => "ATTRIBUTED",
        ("ATTRIBUTED", false) => "COMPLETED",
        ("ATTRIBUTED" | "COMPLETED", true) => "COMPENSATING",
        ("COMPENSATING", _) => "COMPENSATED",
        ("COMPLETED", false) => "COMPLETED",
        _ => "COMPENSATED",
    }
}

async fn saga(State(state): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Some(refused) = unauthorised(&headers) {
        return refused;
    }
    let fixture: Value = serde_json::from_str(include_str!("../fixtures/saga.json")).unwrap();
    if id == fixture["saga_id"] {
        return Json(fixture).into_response();
    }
    let mut platform = state.lock().unwrap();
    let fraud = platform.fraud.contains(&id) && !platform.ignore_fraud;
    let Some(status) = platform.sagas.get_mut(&id) else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"code": "not_found", "message": format!("no saga {id}")})),
        )
            .into_response();
    };
    *status = advance(status, fraud).to_owned();
    if status == "STARTED" {
        // The saga log has not heard of it on the first poll.
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"code": "not_found", "message": format!("no saga {id}")})),
        )
            .into_response();
    }
    let finished = matches!(status.as_str(), "COMPLETED" | "COMPENSATED");
    let mut saga = fixture.clone();
    saga["saga_id"] = json!(id);
    saga["status"] = json!(status);
    saga["steps"] = json!([]);
    saga["duration_ms"] = if finished { json!(1234) } else { Value::Null };
    Json(saga).into_response()
}

async fn list(
    State(state): State<Shared>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Some(refused) = unauthorised(&headers) {
        return refused;
    }
    let query = query.unwrap_or_default();
    state.lock().unwrap().list_queries.push(query.clone());
    if query.contains("limit=0") {
        return (
            StatusCode::BAD_REQUEST,
            Json(
                json!({"code": "validation_failed", "message": "must be 1..500", "field": "limit"}),
            ),
        )
            .into_response();
    }
    let first: Value = serde_json::from_str(include_str!("../fixtures/sagas.json")).unwrap();
    if query.contains("cursor=c2FnYS0z") {
        let mut last = first["sagas"][1].clone();
        last["saga_id"] = json!("saga-0");
        Json(json!({"sagas": [last], "next_cursor": null})).into_response()
    } else {
        Json(first).into_response()
    }
}

async fn stats(headers: HeaderMap) -> Response {
    if let Some(refused) = unauthorised(&headers) {
        return refused;
    }
    let stats: Value = serde_json::from_str(include_str!("../fixtures/stats.json")).unwrap();
    Json(stats).into_response()
}
