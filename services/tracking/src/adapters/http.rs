//! `POST /interactions` and `GET /interactions/{id}`.
//!
//! Every string of the body and the path is checked against `alpes_contracts::limits` before
//! anything is stored: a value the saga log or another service would refuse later is a 400
//! naming its field here.

use alpes_contracts::Timestamp;
use alpes_contracts::events::tracking::{
    InteractionKind, PageContext, Purchase, Target, TrackingParams, Visitor,
};
use alpes_contracts::limits::{self, At, Invalid, Validate};
use alpes_eventstore::EventStore;
use alpes_runtime::ApiError;
use alpes_runtime::auth::{Access, Scope};
use alpes_runtime::http::JsonBody;
use alpes_runtime::trace::TraceContext;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
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

impl Validate for TrackRequest {
    fn validate_at(&self, at: &str) -> Result<(), Invalid> {
        let at = At(at);
        at.nested("visitor", &self.visitor)?;
        at.nested("tracking", &self.tracking)?;
        at.nested("target", &self.target)?;
        at.nested("context", &self.context)?;
        at.nested_opt("purchase", &self.purchase)
    }
}

/// The tracking API over `app`: `POST /interactions` is public (browsers send it), reading an
/// interaction (a visitor's data) needs scope `read` from `access`.
pub fn routes<S: EventStore>(app: Tracking<S>, access: &Access) -> Router {
    Router::new()
        .route("/interactions", post(track::<S>))
        .route(
            "/interactions/{id}",
            get(interaction::<S>).route_layer(access.need(Scope::Read)),
        )
        .with_state(app)
}

/// The header naming a request so that sending it again is safe.
const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The request's idempotency key, if it has one: 1 to 200 visible ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let invalid = |message: &str| ApiError::invalid("Idempotency-Key", message);
    let key = value
        .to_str()
        .map_err(|_| invalid("must be visible ASCII characters"))?;
    if key.is_empty() || key.len() > 200 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(
            "must be 1 to 200 visible ASCII characters, no spaces",
        ));
    }
    Ok(Some(key))
}

async fn track<S: EventStore>(
    State(app): State<Tracking<S>>,
    trace: TraceContext,
    headers: HeaderMap,
    JsonBody(request): JsonBody<TrackRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let key = idempotency_key(&headers)?;
    request.validate()?;
    let new = NewInteraction {
        kind: request.kind,
        interacted_at: request.interacted_at,
        visitor: request.visitor,
        tracking: request.tracking,
        target: request.target,
        context: request.context,
        purchase: request.purchase,
    };
    let tracked = app.track(new, key, &trace).await.map_err(api_error)?;
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
    limits::ID.check("id", &id)?;
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
        AppError::Corrupt(e) => {
            tracing::error!(error = %e, "corrupt stream");
            ApiError::internal("stored data could not be read")
        }
        e @ AppError::KeyReused(_) => ApiError::conflict(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use alpes_eventstore::MemoryStore;
    use alpes_runtime::auth::{Tokens, testing};
    use serde_json::Value;

    use super::*;

    const TOKEN: &str = "operator";

    /// Serves the API over an in-memory store; returns its base URL.
    async fn serve() -> String {
        let access = Access::new(Tokens::all_scopes(TOKEN));
        let router = routes(Tracking::new(MemoryStore::new()), &access);
        alpes_testkit::serve(router).await
    }

    fn purchase() -> Value {
        json!({
            "kind": "PURCHASE",
            "visitor": {"anonymous_id": "visitor-1", "user_agent": "Firefox"},
            "tracking": {"campaign_id": "campaign-1", "partner_id": "partner-1"},
            "target": {"url": "https://shop.example/checkout"},
            "purchase": {"order_id": "order-1", "amount": {"amount_minor": 1200, "currency": "EUR"}}
        })
    }

    async fn post(base: &str, body: &Value) -> (u16, Value) {
        let response = reqwest::Client::new()
            .post(format!("{base}/interactions"))
            .json(body)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    #[tokio::test]
    async fn strings_that_break_their_limits_are_a_400_naming_the_field() {
        let base = serve().await;
        assert_eq!(post(&base, &purchase()).await.0, 202);
        let cases = [
            (
                "/visitor/anonymous_id",
                json!("a\u{0}b"),
                "visitor.anonymous_id",
            ),
            (
                "/tracking/campaign_id",
                json!("c".repeat(3_000)),
                "tracking.campaign_id",
            ),
            (
                "/target/url",
                json!(format!("https://x/{}", "p".repeat(3_000))),
                "target.url",
            ),
            (
                "/visitor/user_agent",
                json!("bot\u{7}"),
                "visitor.user_agent",
            ),
            ("/purchase/order_id", json!("o\nrder"), "purchase.order_id"),
        ];
        for (pointer, value, field) in cases {
            let mut body = purchase();
            *body
                .pointer_mut(pointer)
                .unwrap_or_else(|| panic!("{pointer}")) = value;
            let (status, error) = post(&base, &body).await;
            assert_eq!(status, 400, "{pointer}: {error}");
            assert_eq!(error["field"], field, "{error}");
            assert_eq!(error["code"], "validation_failed");
        }
    }

    #[tokio::test]
    async fn the_same_idempotency_key_again_is_the_same_interaction_and_saga() {
        let base = serve().await;
        let send = |key: &'static str| {
            let url = format!("{base}/interactions");
            async move {
                let response = reqwest::Client::new()
                    .post(url)
                    .header("Idempotency-Key", key)
                    .json(&purchase())
                    .send()
                    .await
                    .unwrap();
                (
                    response.status().as_u16(),
                    response.json::<Value>().await.unwrap(),
                )
            }
        };
        let (status, first) = send("visitor-1/purchase").await;
        assert_eq!(status, 202, "{first}");
        let (status, again) = send("visitor-1/purchase").await;
        assert_eq!(status, 202, "{again}");
        assert_eq!(again, first, "one interaction, one saga");
        let (_, other) = send("visitor-2/purchase").await;
        assert_ne!(other["saga_id"], first["saga_id"]);
        let (_, unkeyed) = post(&base, &purchase()).await;
        assert_ne!(unkeyed["interaction_id"], first["interaction_id"]);

        let (status, error) = send("two words").await;
        assert_eq!(status, 400, "{error}");
        assert_eq!(error["field"], "Idempotency-Key");

        // The same key for another order of the visitor is refused, not answered with the first.
        let mut other_order = purchase();
        other_order["purchase"]["order_id"] = json!("order-2");
        let response = reqwest::Client::new()
            .post(format!("{base}/interactions"))
            .header("Idempotency-Key", "visitor-1/purchase")
            .json(&other_order)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 409);
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["code"], "conflict", "{error}");
    }

    #[tokio::test]
    async fn a_path_id_that_breaks_its_limit_is_a_400() {
        let base = serve().await;
        let get = |id: String| {
            let url = format!("{base}/interactions/{id}");
            async move {
                let client = reqwest::Client::new();
                client.get(url).bearer_auth(TOKEN).send().await.unwrap()
            }
        };
        let response = get("a%00b".to_owned()).await;
        assert_eq!(response.status().as_u16(), 400);
        assert_eq!(response.json::<Value>().await.unwrap()["field"], "id");
        assert_eq!(get("i".repeat(200)).await.status().as_u16(), 400);
        assert_eq!(get("unknown".to_owned()).await.status().as_u16(), 404);
    }

    #[tokio::test]
    async fn interactions_are_tracked_by_anyone_and_read_only_with_scope_read() {
        let router = routes(Tracking::new(MemoryStore::new()), &testing::access());
        testing::assert_guarded(&router, "GET", "/interactions/i-1", Scope::Read).await;

        let base = alpes_testkit::serve(router).await;
        let (status, tracked) = post(&base, &purchase()).await;
        assert_eq!(status, 202, "no token needed: {tracked}");
    }
}
