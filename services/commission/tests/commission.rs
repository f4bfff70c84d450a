//! The commission service from the outside: its real wiring started in-process on a random
//! port, against the local stack's Pulsar and FerretDB, fed over the bus, read over HTTP.
//!
//! Tests run concurrently and every instance consumes the shared topics, so every instance
//! handles every test's events and announces its own outcome of them. Each test therefore uses
//! a campaign and sagas of its own, picks the events it observes by saga id, and counts what
//! happened (one reservation, an untouched budget) through its own instance's API, not on the
//! topics. That each instance announces an outcome exactly once is shown by the app's tests.
//! Instances start their subscriptions at the latest message, so that none replays every saga
//! the topics retain.

// Money is written as units_cents (`120_00` is 120.00 EUR), which this lint calls inconsistent.
#![allow(clippy::inconsistent_digit_grouping)]

use std::ops::Deref;

use alpes_bus::Bus;
use alpes_commission::domain::{CommissionEvent, DomainEvent, Sale};
use alpes_commission::service::{self, Config};
use alpes_contracts::events::attribution::{AttributionModel, ConversionAttributed, Credit};
use alpes_contracts::events::commission::{
    CommissionConfirmed, CommissionRejected, CommissionRejectionReason, CommissionReserved,
    CommissionReverted,
};
use alpes_contracts::events::marketing::{FraudDetected, SagaTimedOut};
use alpes_contracts::{EventMetadata, Money};
use alpes_eventstore::{EventStore, MongoStore, NewCommit, StoredEvent};
use alpes_testkit::fixtures::{campaign_activated, campaign_created, percentage};
use alpes_testkit::{Observer, Service, TRACEPARENT, bus, database, env, unique};
use serde_json::{Value, json};

fn eur(amount_minor: i64) -> Money {
    Money::new(amount_minor, "EUR")
}

/// The service, and the MongoDB database it keeps its streams in.
struct App {
    service: Service,
    database: String,
}

impl Deref for App {
    type Target = Service;

    fn deref(&self) -> &Service {
        &self.service
    }
}

impl App {
    async fn stop(self) {
        self.service.stop().await;
    }
}

/// Starts the service with a database and subscription of its own; returns once it is ready.
async fn spawn_app() -> App {
    let database = database("commission_test");
    let config = |common| Config {
        common,
        database: database.clone(),
        subscription: unique("commission-test"),
    };
    let service = Service::spawn(config, service::run).await;
    App { service, database }
}

async fn observer() -> Bus {
    bus("commission-tests").await
}

/// Publishes a new active campaign (10 % of each sale, at least 1.00, at most 50.00) and waits
/// until the app's budget shows it active.
async fn active_campaign(app: &App, bus: &Bus, budget_minor: i64) -> String {
    let campaign = unique("campaign");
    let terms = percentage(1_000, 1_00, Some(50_00));
    let created = campaign_created(&campaign, budget_minor, terms);
    bus.publisher().publish(&created).await.unwrap();
    bus.publisher()
        .publish(&campaign_activated(&campaign))
        .await
        .unwrap();
    app.wait_for(&format!("/budgets/{campaign}"), |b| b["status"] == "ACTIVE")
        .await;
    campaign
}

fn attributed(saga: &str, campaign: &str, amount_minor: i64) -> ConversionAttributed {
    let mut metadata = EventMetadata::new::<ConversionAttributed>().in_saga(saga);
    metadata.traceparent = Some(TRACEPARENT.to_owned());
    ConversionAttributed {
        metadata,
        journey_id: unique("journey"),
        interaction_id: unique("purchase"),
        order_id: unique("order"),
        campaign_id: campaign.to_owned(),
        amount: eur(amount_minor),
        model: AttributionModel::LastTouch,
        credits: vec![Credit {
            interaction_id: unique("click"),
            partner_id: "partner-7".to_owned(),
            campaign_id: Some(campaign.to_owned()),
            weight_ppm: 1_000_000,
            amount: eur(amount_minor),
        }],
        fraud_score: 3,
    }
}

fn fraud(saga: &str) -> FraudDetected {
    FraudDetected {
        metadata: EventMetadata::new::<FraudDetected>().in_saga(saga),
        reason: "stolen card".to_owned(),
        reporter: "commission-tests".to_owned(),
        score: Some(97),
    }
}

fn money(value: &Value) -> Money {
    serde_json::from_value(value.clone()).unwrap()
}

#[tokio::test]
async fn an_attributed_sale_reserves_its_commission_once_however_often_it_arrives() {
    let app = spawn_app().await;
    let bus = observer().await;
    let campaign = active_campaign(&app, &bus, 1_000_00).await;
    let mut reserved = Observer::<CommissionReserved>::listen(&bus).await;
    let mut confirmed = Observer::<CommissionConfirmed>::listen(&bus).await;
    let (small, large) = (unique("saga"), unique("saga"));
    let sale = attributed(&small, &campaign, 120_00);

    // The same message twice (a redelivery), then a sale whose 10 % is above the maximum.
    for event in [&sale, &sale, &attributed(&large, &campaign, 1_000_00)] {
        bus.publisher().publish(event).await.unwrap();
    }

    let announced = reserved.next_of_saga(&small).await;
    assert_eq!(announced.campaign_id, campaign);
    assert_eq!(announced.partner_id, "partner-7");
    assert_eq!(announced.sale_amount, eur(120_00));
    assert_eq!(announced.commission, eur(12_00));
    assert_eq!(announced.budget_remaining, eur(988_00));
    assert_eq!(
        announced.metadata.causation_id.as_deref(),
        Some(sale.metadata.event_id.as_str())
    );
    assert_eq!(announced.metadata.traceparent.as_deref(), Some(TRACEPARENT));

    // One topic, one consumer: once the later sale is reserved, the redelivery was handled.
    let capped = app
        .wait_for(&format!("/commissions/commission-{large}"), |c| {
            c["status"] == "RESERVED"
        })
        .await;
    assert_eq!(money(&capped["amount"]), eur(50_00), "{capped}");
    let (_, budget) = app.get(&format!("/budgets/{campaign}")).await;
    assert_eq!(money(&budget["total"]), eur(1_000_00), "{budget}");
    assert_eq!(money(&budget["reserved"]), eur(62_00), "{budget}");
    assert_eq!(money(&budget["remaining"]), eur(938_00), "{budget}");

    let commission = format!("commission-{small}");
    let (status, body) = app.get(&format!("/commissions/{commission}")).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "RESERVED");
    assert_eq!(body["saga_id"], small.as_str());
    assert_eq!(money(&body["amount"]), eur(12_00));

    let (status, body) = app
        .post(&format!("/commissions/{commission}/confirm"), None)
        .await;
    assert_eq!(
        (status, &body["status"]),
        (200, &json!("CONFIRMED")),
        "{body}"
    );
    let owed = confirmed.next_of_saga(&small).await;
    assert_eq!(owed.amount, eur(12_00));
    assert_eq!(owed.metadata.traceparent.as_deref(), Some(TRACEPARENT));
    let (status, _) = app
        .post(&format!("/commissions/{commission}/confirm"), None)
        .await;
    assert_eq!(status, 200, "confirming again changes nothing");

    let (_, page) = app.get(&format!("/commissions?campaign={campaign}")).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2, "{page}");
    let (_, page) = app
        .get(&format!(
            "/commissions?campaign={campaign}&status=CONFIRMED"
        ))
        .await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page}");
    assert_eq!(items[0]["commission_id"], commission.as_str());
    let (_, first) = app
        .get(&format!("/commissions?campaign={campaign}&limit=1"))
        .await;
    let cursor = first["next_cursor"].as_str().expect("a second page");
    let (_, second) = app
        .get(&format!(
            "/commissions?campaign={campaign}&limit=1&cursor={cursor}"
        ))
        .await;
    assert_eq!(second["items"].as_array().unwrap().len(), 1, "{second}");
    assert_ne!(first["items"][0], second["items"][0]);
    assert!(second["next_cursor"].is_null());
    app.stop().await;
}

#[tokio::test]
async fn a_sale_beyond_the_budget_is_rejected_budget_exhausted() {
    let app = spawn_app().await;
    let bus = observer().await;
    let campaign = active_campaign(&app, &bus, 20_00).await;
    let mut rejected = Observer::<CommissionRejected>::listen(&bus).await;
    let (first, second) = (unique("saga"), unique("saga"));

    // One after the other: handled concurrently, either sale could take the budget first.
    bus.publisher()
        .publish(&attributed(&first, &campaign, 120_00))
        .await
        .unwrap();
    app.wait_for(&format!("/commissions/commission-{first}"), |c| {
        c["status"] == "RESERVED"
    })
    .await;
    bus.publisher()
        .publish(&attributed(&second, &campaign, 120_00))
        .await
        .unwrap();

    // An instance that heard of the campaign's creation but not its activation would say
    // CAMPAIGN_INACTIVE: look for the answer of one that heard of both.
    let refused = rejected
        .next_of_saga_where(&second, |r| {
            r.reason == CommissionRejectionReason::BudgetExhausted
        })
        .await;
    assert_eq!(refused.campaign_id, campaign);
    assert_eq!(refused.partner_id.as_deref(), Some("partner-7"));
    let body = app
        .wait_for(&format!("/commissions/commission-{second}"), |c| {
            c["status"] == "REJECTED"
        })
        .await;
    assert_eq!(body["rejection"]["reason"], "BUDGET_EXHAUSTED");
    let (_, budget) = app.get(&format!("/budgets/{campaign}")).await;
    assert_eq!(money(&budget["reserved"]), eur(12_00), "{budget}");
    assert_eq!(money(&budget["remaining"]), eur(8_00), "{budget}");

    let (status, error) = app
        .post(&format!("/commissions/commission-{second}/confirm"), None)
        .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (409, Some("conflict")),
        "{error}"
    );
    app.stop().await;
}

#[tokio::test]
async fn fraud_on_a_reserved_sale_gives_its_commission_back_to_the_budget() {
    let app = spawn_app().await;
    let bus = observer().await;
    let campaign = active_campaign(&app, &bus, 1_000_00).await;
    let mut reverted = Observer::<CommissionReverted>::listen(&bus).await;
    let saga = unique("saga");
    let path = format!("/commissions/commission-{saga}");
    bus.publisher()
        .publish(&attributed(&saga, &campaign, 120_00))
        .await
        .unwrap();
    app.wait_for(&path, |c| c["status"] == "RESERVED").await;

    // Reported twice (a redelivery).
    let fraud = fraud(&saga);
    bus.publisher().publish(&fraud).await.unwrap();
    bus.publisher().publish(&fraud).await.unwrap();

    // Instances started after this campaign was created never heard of it, so never reserved
    // and announce that nothing was released: look for the announcement of one that did.
    let announced = reverted
        .next_of_saga_where(&saga, |r| r.released.is_some())
        .await;
    assert_eq!(announced.released, Some(eur(12_00)));
    assert_eq!(announced.campaign_id.as_deref(), Some(campaign.as_str()));
    assert_eq!(announced.commission_id, Some(format!("commission-{saga}")));
    assert_eq!(
        announced.metadata.causation_id.as_deref(),
        Some(fraud.metadata.event_id.as_str())
    );
    let body = app.wait_for(&path, |c| c["status"] == "REVERTED").await;
    assert!(
        body["revert_reason"]
            .as_str()
            .unwrap()
            .contains("stolen card"),
        "{body}"
    );
    let budget = app
        .wait_for(&format!("/budgets/{campaign}"), |b| {
            b["reserved"]["amount_minor"] == 0
        })
        .await;
    assert_eq!(money(&budget["remaining"]), eur(1_000_00), "{budget}");

    // Then its deadline passes too; once a later timeout of another saga is handled (one
    // topic, one consumer), this one was, and changed nothing.
    let sentinel = unique("saga");
    for timed_out in [&saga, &sentinel] {
        let timeout = SagaTimedOut {
            metadata: EventMetadata::new::<SagaTimedOut>().in_saga(timed_out.as_str()),
            deadline: chrono::Utc::now(),
            last_status: "ATTRIBUTED".to_owned(),
        };
        bus.publisher().publish(&timeout).await.unwrap();
    }
    app.wait_for(&format!("/commissions/commission-{sentinel}"), |c| {
        c["status"] == "REVERTED"
    })
    .await;
    let (_, after) = app.get(&path).await;
    assert_eq!(after, body, "a second compensation changes nothing");
    let (_, budget) = app.get(&format!("/budgets/{campaign}")).await;
    assert_eq!(money(&budget["remaining"]), eur(1_000_00), "{budget}");
    app.stop().await;
}

#[tokio::test]
async fn fraud_before_the_attribution_rejects_the_late_sale_and_leaves_the_budget_alone() {
    let app = spawn_app().await;
    let bus = observer().await;
    let campaign = active_campaign(&app, &bus, 1_000_00).await;
    let mut reverted = Observer::<CommissionReverted>::listen(&bus).await;
    let mut rejected = Observer::<CommissionRejected>::listen(&bus).await;
    let saga = unique("saga");
    let path = format!("/commissions/commission-{saga}");

    bus.publisher().publish(&fraud(&saga)).await.unwrap();
    let announced = reverted.next_of_saga(&saga).await;
    assert_eq!(announced.released, None, "nothing was reserved");
    assert_eq!(announced.commission_id, None);
    app.wait_for(&path, |c| c["status"] == "REVERTED").await;

    let late = attributed(&saga, &campaign, 120_00);
    bus.publisher().publish(&late).await.unwrap();
    let refused = rejected
        .next_of_saga_where(&saga, |r| {
            r.reason == CommissionRejectionReason::SagaCompensated
        })
        .await;
    assert_eq!(
        refused.metadata.causation_id.as_deref(),
        Some(late.metadata.event_id.as_str())
    );
    let body = app
        .wait_for(&path, |c| c["rejection"]["reason"] == "SAGA_COMPENSATED")
        .await;
    assert_eq!(
        body["status"], "REVERTED",
        "a compensated saga stays compensated"
    );
    let (_, budget) = app.get(&format!("/budgets/{campaign}")).await;
    assert_eq!(money(&budget["reserved"]), eur(0), "{budget}");
    app.stop().await;
}

#[tokio::test]
async fn the_api_answers_bad_requests_with_json_naming_what_is_wrong() {
    let app = spawn_app().await;
    for (query, field) in [
        ("status=LOST", "status"),
        ("status=UNATTRIBUTED", "status"),
        ("limit=0", "limit"),
        ("limit=ten", "limit"),
        ("cursor=somewhere", "cursor"),
        ("campaign=", "campaign"),
        ("campaign=a&campaign=b", "campaign"),
        ("colour=red", "colour"),
    ] {
        let (status, error) = app.get(&format!("/commissions?{query}")).await;
        assert_eq!(status, 400, "{query}: {error}");
        assert_eq!(error["code"], "validation_failed", "{query}: {error}");
        assert_eq!(error["field"], field, "{query}: {error}");
    }
    let (status, page) = app.get("/commissions?status=RESERVED&limit=5").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["items"], json!([]));

    for path in [
        "/commissions/commission-nope",
        "/commissions/nope",
        "/budgets/nope",
    ] {
        let (status, error) = app.get(path).await;
        assert_eq!(
            (status, error["code"].as_str()),
            (404, Some("not_found")),
            "{path}"
        );
    }
    let (status, error) = app.post("/commissions/commission-nope/confirm", None).await;
    assert_eq!((status, error["code"].as_str()), (404, Some("not_found")));
    app.stop().await;
}

/// Every commission id `GET /commissions?{query}` lists, following the cursors.
async fn listed(app: &App, query: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/commissions?{query}&limit=2&cursor={cursor}"),
            None => format!("/commissions?{query}&limit=2"),
        };
        let (status, page) = app.get(&path).await;
        assert_eq!(status, 200, "{page}");
        ids.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["commission_id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return ids,
        }
    }
}

/// The list is kept by the handlers (budgets and a registry), not replayed from the store: a
/// commission stream written into the app's database behind its back — what a process leaves
/// when it dies between a reservation's first and second write — is in the store, where a
/// replay would find it, and is not listed until its redelivered sale reaches the budget.
#[tokio::test]
async fn the_list_is_kept_as_events_are_handled_not_replayed_from_the_store() {
    let app = spawn_app().await;
    let bus = observer().await;
    let campaign = active_campaign(&app, &bus, 1_000_00).await;
    let (reserved, refused, ghost) = (unique("saga"), unique("saga"), unique("saga"));
    let compensated = unique("saga");
    bus.publisher()
        .publish(&attributed(&reserved, &campaign, 120_00))
        .await
        .unwrap();
    // Compensated before its sale: in no budget.
    bus.publisher().publish(&fraud(&compensated)).await.unwrap();
    app.wait_for(&format!("/commissions/commission-{reserved}"), |c| {
        c["status"] == "RESERVED"
    })
    .await;
    app.wait_for(&format!("/commissions/commission-{compensated}"), |c| {
        c["status"] == "REVERTED"
    })
    .await;
    // Refused by the budget: a sale in another currency than the campaign pays in.
    let mut dollars = attributed(&refused, &campaign, 120_00);
    dollars.amount = Money::new(120_00, "USD");
    bus.publisher().publish(&dollars).await.unwrap();
    app.wait_for(&format!("/commissions/commission-{refused}"), |c| {
        c["status"] == "REJECTED"
    })
    .await;

    let mut ours = vec![
        format!("commission-{reserved}"),
        format!("commission-{refused}"),
    ];
    ours.sort();
    assert_eq!(listed(&app, &format!("campaign={campaign}")).await, ours);
    let everything = listed(&app, "").await;
    for id in ours.iter().chain([&format!("commission-{compensated}")]) {
        assert!(everything.contains(id), "{id} not in {everything:?}");
    }
    let mut sorted = everything.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(everything, sorted, "in id order, each once");
    let rejected = listed(&app, &format!("campaign={campaign}&status=REJECTED")).await;
    assert_eq!(rejected, [format!("commission-{refused}")]);

    // Behind the app's back: its sale's first write, and nothing else.
    let store = MongoStore::connect(
        &env("ALPES_MONGO_URL", "mongodb://127.0.0.1:27017"),
        &app.database,
    )
    .await
    .unwrap();
    let sale = attributed(&ghost, &campaign, 120_00);
    let attributed_event = CommissionEvent::Attributed {
        commission_id: format!("commission-{ghost}"),
        sale: Sale::from_conversion(&sale).unwrap(),
    };
    store
        .append(NewCommit {
            stream: format!("commission-{ghost}"),
            expected_version: 0,
            events: vec![StoredEvent::new(attributed_event.kind(), &attributed_event).unwrap()],
            outbox: Vec::new(),
            handled: None,
        })
        .await
        .unwrap();
    let (status, body) = app.get(&format!("/commissions/commission-{ghost}")).await;
    assert_eq!(
        (status, &body["status"]),
        (200, &json!("PENDING")),
        "{body}"
    );
    assert_eq!(
        listed(&app, &format!("campaign={campaign}")).await,
        ours,
        "a replay would list commission-{ghost}"
    );

    // The redelivery reaches the budget: listed from then on.
    bus.publisher().publish(&sale).await.unwrap();
    app.wait_for(&format!("/commissions/commission-{ghost}"), |c| {
        c["status"] == "RESERVED"
    })
    .await;
    ours.push(format!("commission-{ghost}"));
    ours.sort();
    assert_eq!(listed(&app, &format!("campaign={campaign}")).await, ours);

    app.stop().await;
}
