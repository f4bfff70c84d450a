//! The tracking service from the outside: its real wiring started in-process on a random port,
//! against the local stack's Pulsar and FerretDB, spoken to over HTTP and the bus.

use std::net::SocketAddr;
use std::time::Duration;

use alpes_bus::{Bus, Delivery, Outcome, Shutdown, StartAt, SubscriptionConfig};
use alpes_contracts::EventMetadata;
use alpes_contracts::events::attribution::AttributionReverted;
use alpes_contracts::events::tracking::{
    InteractionKind, InteractionTracked, InteractionsDiscarded,
};
use alpes_runtime::auth::testing;
use alpes_runtime::config::CommonArgs;
use alpes_tracking::service::{self, Config};
use serde_json::{Value, json};
use tokio::sync::mpsc;

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// The test suites' own Pulsar namespace, installed for this process: a platform left running
/// (`scripts/demo.sh`, in `alpes/events`) and these tests never consume each other's events.
fn test_namespace() -> alpes_contracts::Namespace {
    let namespace = alpes_contracts::Namespace::parse("alpes/test").unwrap();
    namespace.clone().install().unwrap();
    namespace
}

struct App {
    base: String,
    http: reqwest::Client,
    shutdown: Shutdown,
    running: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Starts the service with a database and subscription of its own; returns once it is ready.
async fn spawn_app() -> App {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let config = Config {
        common: CommonArgs {
            pulsar_namespace: test_namespace(),
            ..CommonArgs::for_tests(addr)
        },
        database: unique("tracking_test").replace('-', "_"),
        subscription: unique("tracking-test"),
    };
    let shutdown = Shutdown::new();
    let running = tokio::spawn(service::run(config, listener, shutdown.clone()));
    let app = App {
        base: format!("http://{addr}"),
        http: testing::client(),
        shutdown,
        running,
    };
    for _ in 0..100 {
        let ready = app.http.get(format!("{}/readyz", app.base)).send().await;
        if ready.is_ok_and(|r| r.status() == 200) {
            return app;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("tracking never became ready: is the stack up? (scripts/stack.sh up)");
}

impl App {
    async fn post(&self, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}/interactions", self.base))
            .header(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )
            .json(&body)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.running.await.unwrap().unwrap();
    }
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

async fn listen<E: alpes_contracts::Event>(bus: &Bus) -> (mpsc::UnboundedReceiver<E>, Shutdown) {
    let mut config = SubscriptionConfig::new(unique("observer"));
    config.start_at = StartAt::Latest;
    let subscription = bus.subscribe::<E>(config).await.unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let stop = Shutdown::new();
    tokio::spawn(subscription.run(
        move |d: Delivery<E>| {
            let _ = tx.send(d.event);
            std::future::ready(Outcome::Done)
        },
        stop.clone(),
    ));
    (rx, stop)
}

async fn observer() -> Bus {
    test_namespace();
    Bus::connect_with(
        &env("ALPES_PULSAR_URL", "pulsar://127.0.0.1:6650"),
        &env("ALPES_PULSAR_ADMIN_URL", "http://127.0.0.1:8080"),
        "tracking-tests",
        alpes_bus::PulsarToken::from_env().unwrap(),
    )
    .await
    .unwrap()
}

/// The next event on `rx` that `wanted` accepts, within 20 s.
async fn next_matching<E>(rx: &mut mpsc::UnboundedReceiver<E>, wanted: impl Fn(&E) -> bool) -> E {
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let event = rx.recv().await.expect("observer stopped");
            if wanted(&event) {
                return event;
            }
        }
    })
    .await
    .expect("the event did not arrive within 20 s")
}

#[tokio::test]
async fn a_purchase_is_registered_and_published_with_its_saga_and_trace() {
    let app = spawn_app().await;
    let bus = observer().await;
    let (mut tracked, stop) = listen::<InteractionTracked>(&bus).await;
    let visitor = unique("visitor");

    let (status, body) = app.post(purchase(&visitor)).await;
    assert_eq!(status, 202, "{body}");
    let id = body["interaction_id"].as_str().unwrap().to_owned();
    let saga = body["saga_id"]
        .as_str()
        .expect("a purchase opens a saga")
        .to_owned();

    let event = next_matching(&mut tracked, |e| e.interaction_id == id).await;
    assert_eq!(event.kind, InteractionKind::Purchase);
    assert_eq!(event.metadata.saga_id.as_deref(), Some(saga.as_str()));
    assert_eq!(event.visitor.anonymous_id, visitor);
    assert_eq!(event.purchase.unwrap().amount.amount_minor, 12_000);
    assert_eq!(
        event.metadata.traceparent.as_deref(),
        Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        "the request's trace travels with the event"
    );

    let (status, body) = app.get(&format!("/interactions/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "REGISTERED");
    assert_eq!(body["saga_id"], saga.as_str());

    let (status, body) = app
        .post(json!({ "kind": "CLICK", "visitor": { "anonymous_id": visitor }, "target": { "url": "https://shop.example/" } }))
        .await;
    assert_eq!(status, 202);
    assert!(body["saga_id"].is_null(), "a click opens no saga");

    stop.cancel();
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
        let (status, error) = app.post(body).await;
        assert_eq!(status, 400, "{error}");
        assert_eq!(error["code"], "validation_failed");
        assert_eq!(error["field"], field, "{error}");
    }
    let (status, error) = app.post(unknown_field).await;
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
    let bus = observer().await;
    let (mut discarded, stop) = listen::<InteractionsDiscarded>(&bus).await;
    let visitor = unique("visitor");
    let click = json!({ "kind": "CLICK", "visitor": { "anonymous_id": visitor },
        "tracking": { "partner_id": "partner-1" }, "target": { "url": "https://shop.example/" } });
    let (_, clicked) = app.post(click).await;
    let (_, bought) = app.post(purchase(&visitor)).await;
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
    let announced = next_matching(&mut discarded, |e| {
        e.metadata.saga_id.as_deref() == Some(saga) && !e.interaction_ids.is_empty()
    })
    .await;
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
    let extra = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            let e = discarded.recv().await.unwrap();
            if e.metadata.saga_id.as_deref() == Some(saga) && !e.interaction_ids.is_empty() {
                return e;
            }
        }
    })
    .await;
    assert!(extra.is_err(), "InteractionsDiscarded was published twice");

    stop.cancel();
    app.stop().await;
}
