//! The tracking service from the outside: its real wiring started in-process on a random port,
//! against the local stack's Pulsar and FerretDB, spoken to over HTTP and the bus.

use std::time::Duration;

use alpes_contracts::EventMetadata;
use alpes_contracts::events::attribution::AttributionReverted;
use alpes_contracts::events::tracking::{
    InteractionKind, InteractionTracked, InteractionsDiscarded,
};
use alpes_testkit::{Observer, Service, TRACEPARENT, bus, database, unique};
use alpes_tracking::service::{self, Config};
use serde_json::{Value, json};

/// Starts the service with a database and subscription of its own; returns once it is ready.
async fn spawn_app() -> Service {
    let config = |common| Config {
        common,
        database: database("tracking_test"),
        subscription: unique("tracking-test"),
    };
    Service::spawn(config, service::run).await
}

fn purchase(visitor: &str) -> Value {
    json!({
        "kind": "PURCHASE",
        "visitor": { "anonymous_id": visitor, "user_agent": "Firefox" },
        "tracking": { "campaign_id": "campaign-1", "partner_id": "partner-1", "medium": "affiliate" },
        "target": { "url": "https://shop.example/checkout" },
        "purchase": { "order_id": "order-1", "amount": { "amount_minor": 12000, "currency": "EUR" } }
    })
}

#[tokio::test]
async fn a_purchase_is_registered_and_published_with_its_saga_and_trace() {
    let app = spawn_app().await;
    let bus = bus("tracking-tests").await;
    let mut tracked = Observer::<InteractionTracked>::listen(&bus).await;
    let visitor = unique("visitor");

    let (status, body) = app.post("/interactions", Some(purchase(&visitor))).await;
    assert_eq!(status, 202, "{body}");
    let id = body["interaction_id"].as_str().unwrap().to_owned();
    let saga = body["saga_id"]
        .as_str()
        .expect("a purchase opens a saga")
        .to_owned();

    let event = tracked.next_where(|e| e.interaction_id == id).await;
    assert_eq!(event.kind, InteractionKind::Purchase);
    assert_eq!(event.metadata.saga_id.as_deref(), Some(saga.as_str()));
    assert_eq!(event.visitor.anonymous_id, visitor);
    assert_eq!(event.purchase.unwrap().amount.amount_minor, 12_000);
    assert_eq!(
        event.metadata.traceparent.as_deref(),
        Some(TRACEPARENT),
        "the request's trace travels with the event"
    );

    let (status, body) = app.get(&format!("/interactions/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "REGISTERED");
    assert_eq!(body["saga_id"], saga.as_str());

    let click = json!({ "kind": "CLICK", "visitor": { "anonymous_id": visitor },
        "target": { "url": "https://shop.example/" } });
    let (status, body) = app.post("/interactions", Some(click)).await;
    assert_eq!(status, 202);
    assert!(body["saga_id"].is_null(), "a click opens no saga");

    app.stop().await;
}

#[tokio::test]
async fn bad_input_gets_a_json_error_naming_the_field() {
    let app = spawn_app().await;
    let mut no_amount = purchase("v");
    no_amount["purchase"]["amount"]["amount_minor"] = json!(0);
    let mut bad_kind = purchase("v");
    bad_kind["kind"] = json!("HOVER");
    let mut unknown_field = purchase("v");
    unknown_field["colour"] = json!("red");
    let mut no_purchase = purchase("v");
    no_purchase.as_object_mut().unwrap().remove("purchase");
    for (body, field) in [
        (no_amount, "purchase.amount.amount_minor"),
        (bad_kind, "kind"),
        (no_purchase, "purchase"),
    ] {
        let (status, error) = app.post("/interactions", Some(body)).await;
        assert_eq!(status, 400, "{error}");
        assert_eq!(error["code"], "validation_failed");
        assert_eq!(error["field"], field, "{error}");
    }
    let (status, error) = app.post("/interactions", Some(unknown_field)).await;
    assert_eq!(status, 400);
    assert!(
        error["message"].as_str().unwrap().contains("colour"),
        "{error}"
    );

    let (status, error) = app.get("/interactions/nope").await;
    assert_eq!((status, error["code"].as_str()), (404, Some("not_found")));
    app.stop().await;
}

#[tokio::test]
async fn a_reverted_journey_is_discarded_once_however_often_the_revert_arrives() {
    let app = spawn_app().await;
    let bus = bus("tracking-tests").await;
    let mut discarded = Observer::<InteractionsDiscarded>::listen(&bus).await;
    let visitor = unique("visitor");
    let click = json!({ "kind": "CLICK", "visitor": { "anonymous_id": visitor },
        "tracking": { "partner_id": "partner-1" }, "target": { "url": "https://shop.example/" } });
    let (_, clicked) = app.post("/interactions", Some(click)).await;
    let (_, bought) = app.post("/interactions", Some(purchase(&visitor))).await;
    let ids: Vec<String> = [&clicked, &bought]
        .iter()
        .map(|b| b["interaction_id"].as_str().unwrap().to_owned())
        .collect();
    let saga = bought["saga_id"].as_str().unwrap();

    let reverted = AttributionReverted {
        metadata: EventMetadata::new::<AttributionReverted>().in_saga(saga),
        journey_id: unique("journey"),
        interaction_ids: ids.clone(),
        reason: "fraud reported".into(),
    };
    let again = AttributionReverted {
        metadata: EventMetadata::new::<AttributionReverted>().in_saga(saga),
        ..reverted.clone()
    };
    // A redelivery (same event id) and a second revert of the same journey (new event id).
    for event in [&reverted, &reverted, &again] {
        bus.publisher().publish(event).await.unwrap();
    }

    // Other instances on the topic (this binary's other tests) never tracked these interactions
    // and answer the revert naming none: only this instance's answer names them.
    let ours = |e: &InteractionsDiscarded| {
        e.metadata.saga_id.as_deref() == Some(saga) && !e.interaction_ids.is_empty()
    };
    let announced = discarded.next_where(ours).await;
    assert_eq!(announced.interaction_ids, ids);
    assert_eq!(announced.visitor_id, visitor);
    assert_eq!(
        announced.metadata.causation_id.as_deref(),
        Some(reverted.metadata.event_id.as_str())
    );
    for id in &ids {
        let (_, body) = app.get(&format!("/interactions/{id}")).await;
        assert_eq!(body["status"], "DISCARDED", "{id}");
    }
    let extra = discarded.next_within(Duration::from_secs(3), ours).await;
    assert!(extra.is_err(), "InteractionsDiscarded was published twice");

    app.stop().await;
}
