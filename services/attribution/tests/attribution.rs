//! The attribution service from the outside: its real wiring started in-process on a random
//! port, against the local stack's Pulsar and FerretDB, fed and observed over the bus and
//! asked over HTTP.
//!
//! Every app instance consumes the shared topics with a subscription of its own (starting at the
//! moment the instance starts: `SubscribeFrom::Latest`), so while these tests run concurrently
//! each instance also handles the other tests' events, and publishes its own outcome for their
//! sagas (often a different one: an instance that sees a purchase before its campaign rejects
//! it as CAMPAIGN_UNKNOWN). The bus alone therefore cannot say which instance said what. The tests ask the instance under test
//! for the id of the event it announced (`GET /attributions/{saga}`), follow that id on the
//! bus, and count what the instance queued by reading its own outbox in its own database.

use std::ops::Deref;
use std::time::Duration;

use alpes_attribution::app::{Attribution, Compensated, Tracked};
use alpes_attribution::domain::CampaignCommand;
use alpes_attribution::service::{self, Config};
use alpes_bus::{Attempt, Bus, property};
use alpes_contracts::events::attribution::{
    AttributionModel, AttributionReverted, ConversionAttributed, ConversionRejected,
    ConversionRejectionReason,
};
use alpes_contracts::events::commission::CommissionReverted;
use alpes_contracts::events::marketing::{CampaignActivated, CampaignCreated};
use alpes_contracts::events::tracking::{InteractionKind, InteractionTracked};
use alpes_contracts::{Event, EventMetadata, Money, codec};
use alpes_eventstore::{EventStore, MongoStore};
use alpes_testkit::fixtures::{
    campaign_activated, campaign_created, interaction, percentage, purchase,
};
use alpes_testkit::{Observer, Service, TRACEPARENT, bus, database, env, unique};
use serde_json::Value;

/// The service, where it keeps its state, and that state, to read what it queued.
struct App {
    service: Service,
    database: String,
    subscription: String,
    store: MongoStore,
}

impl Deref for App {
    type Target = Service;

    fn deref(&self) -> &Service {
        &self.service
    }
}

/// Starts the service with a database and subscription of its own; returns once it is ready.
async fn spawn_app() -> App {
    spawn_app_on(&database("attribution_test"), &unique("attribution-test")).await
}

/// Starts the service on `database` and `subscription` (another instance's after it stopped:
/// a restart, with nothing in the process's memory).
async fn spawn_app_on(database: &str, subscription: &str) -> App {
    let config = |common| Config {
        common,
        database: database.to_owned(),
        subscription: subscription.to_owned(),
    };
    let service = Service::spawn(config, service::run).await;
    let mongo_url = env("ALPES_MONGO_URL", "mongodb://127.0.0.1:27017");
    App {
        service,
        database: database.to_owned(),
        subscription: subscription.to_owned(),
        store: MongoStore::connect(&mongo_url, database).await.unwrap(),
    }
}

impl App {
    /// The events of type `E` of saga `saga` this instance queued in its outbox.
    async fn queued<E: Event>(&self, saga: &str) -> Vec<E> {
        let mut queued = Vec::new();
        let mut after = None;
        loop {
            let page = self.store.replay(after.as_ref(), 500).await.unwrap();
            let Some(last) = page.last().cloned() else {
                return queued;
            };
            queued.extend(
                page.iter()
                    .flat_map(|c| &c.outbox)
                    .filter(|o| o.event_type.as_deref() == Some(E::event_type().name))
                    .filter(|o| {
                        o.properties.get(property::SAGA_ID).map(String::as_str) == Some(saga)
                    })
                    .map(|o| codec::decode::<E>(&o.payload).unwrap()),
            );
            after = Some(last);
        }
    }

    async fn stop(self) {
        self.service.stop().await;
    }

    /// Stops this instance and starts another on its database and subscription.
    async fn restart(self) -> App {
        let (database, subscription) = (self.database.clone(), self.subscription.clone());
        self.stop().await;
        spawn_app_on(&database, &subscription).await
    }
}

async fn observer() -> Bus {
    bus("attribution-tests").await
}

/// The event with id `event_id` the observer sees.
async fn published<E: Event>(observer: &mut Observer<E>, event_id: &str) -> E {
    observer
        .next_where(|e| e.metadata().event_id == event_id)
        .await
}

/// The facts of a LAST_TOUCH campaign in EUR, 10 % commission: created, then activated.
fn campaign_facts(campaign_id: &str) -> (CampaignCreated, CampaignActivated) {
    let terms = percentage(1_000, 0, None);
    (
        campaign_created(campaign_id, 10_000_000, terms),
        campaign_activated(campaign_id),
    )
}

/// Publishes an active LAST_TOUCH campaign in EUR and waits until `app` knows it.
async fn active_campaign(bus: &Bus, app: &App) -> String {
    let campaign_id = unique("campaign");
    let (created, activated) = campaign_facts(&campaign_id);
    bus.publisher().publish(&created).await.unwrap();
    bus.publisher().publish(&activated).await.unwrap();
    app.wait_for(&format!("/campaigns/{campaign_id}"), |c| {
        c["status"] == "ACTIVE" && c["settings"]["model"] == "LAST_TOUCH"
    })
    .await;
    campaign_id
}

fn commission_reverted(saga: &str) -> CommissionReverted {
    CommissionReverted {
        metadata: EventMetadata::new::<CommissionReverted>().in_saga(saga),
        commission_id: Some(unique("commission")),
        campaign_id: None,
        released: None,
        reason: "fraud reported".into(),
    }
}

/// A partner's click, then the visitor's purchase, both published.
struct Sale {
    click: InteractionTracked,
    purchase: InteractionTracked,
    saga: String,
    partner: String,
}

async fn sale(bus: &Bus, campaign: &str) -> Sale {
    let visitor = unique("visitor");
    let partner = unique("partner");
    let saga = unique("saga");
    let click = interaction(&visitor, InteractionKind::Click, campaign, Some(&partner));
    let purchase = purchase(&visitor, campaign, &saga, 12_000);
    bus.publisher().publish(&click).await.unwrap();
    bus.publisher().publish(&purchase).await.unwrap();
    Sale {
        click,
        purchase,
        saga,
        partner,
    }
}

fn text(value: &Value) -> &str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value}"))
}

#[tokio::test]
async fn a_purchase_is_attributed_to_the_partner_who_brought_it_once_however_often_it_arrives() {
    let app = spawn_app().await;
    let bus = observer().await;
    let mut attributed = Observer::<ConversionAttributed>::listen(&bus).await;
    let campaign = active_campaign(&bus, &app).await;

    let sale = sale(&bus, &campaign).await;
    bus.publisher().publish(&sale.purchase).await.unwrap(); // a redelivery: same event id

    let view = app
        .wait_for(&format!("/attributions/{}", sale.saga), |v| {
            v["outcome"] != "AWAITING_PURCHASE"
        })
        .await;
    assert_eq!(view["outcome"], "ATTRIBUTED", "{view}");
    assert_eq!(view["attribution"]["model"], "LAST_TOUCH");
    assert_eq!(view["reverted"], false);
    let event = published(&mut attributed, text(&view["attribution"]["event_id"])).await;
    assert_eq!(event.metadata.saga_id.as_deref(), Some(sale.saga.as_str()));
    assert_eq!(
        event.metadata.causation_id.as_deref(),
        Some(sale.purchase.metadata.event_id.as_str())
    );
    assert_eq!(event.metadata.traceparent.as_deref(), Some(TRACEPARENT));
    assert_eq!(event.interaction_id, sale.purchase.interaction_id);
    assert_eq!(event.campaign_id, campaign);
    assert_eq!(event.model, AttributionModel::LastTouch);
    assert_eq!(event.amount, Money::new(12_000, "EUR"));
    let [credit] = &event.credits[..] else {
        panic!("one credit expected: {:?}", event.credits);
    };
    assert_eq!(credit.partner_id, sale.partner);
    assert_eq!(credit.interaction_id, sale.click.interaction_id);
    assert_eq!(credit.weight_ppm, 1_000_000);
    assert_eq!(credit.amount, Money::new(12_000, "EUR"));

    let (status, journey) = app.get(&format!("/journeys/{}", event.journey_id)).await;
    assert_eq!(status, 200, "{journey}");
    assert_eq!(journey["status"], "CONVERTED");
    assert_eq!(
        journey["visitor_id"],
        sale.click.visitor.anonymous_id.as_str()
    );
    assert_eq!(journey["touchpoints"].as_array().unwrap().len(), 1);

    // Give the redelivered purchase time to be handled, then count what this instance queued.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let queued = app.queued::<ConversionAttributed>(&sale.saga).await;
    assert_eq!(
        queued.len(),
        1,
        "ConversionAttributed queued twice: {queued:?}"
    );
    assert_eq!(queued[0].metadata.event_id, event.metadata.event_id);
    app.stop().await;
}

#[tokio::test]
async fn a_purchase_without_a_partner_touchpoint_is_rejected() {
    let app = spawn_app().await;
    let bus = observer().await;
    let mut rejected = Observer::<ConversionRejected>::listen(&bus).await;
    let campaign = active_campaign(&bus, &app).await;
    let visitor = unique("visitor");
    let saga = unique("saga");
    let view = interaction(&visitor, InteractionKind::View, &campaign, None);
    bus.publisher().publish(&view).await.unwrap();
    bus.publisher()
        .publish(&purchase(&visitor, &campaign, &saga, 12_000))
        .await
        .unwrap();

    let outcome = app
        .wait_for(&format!("/attributions/{saga}"), |v| {
            v["outcome"] != "AWAITING_PURCHASE"
        })
        .await;
    assert_eq!(outcome["outcome"], "REJECTED", "{outcome}");
    assert_eq!(outcome["rejection"]["reason"], "NO_ELIGIBLE_TOUCHPOINT");
    let event = published(&mut rejected, text(&outcome["rejection"]["event_id"])).await;
    assert_eq!(
        event.reason,
        ConversionRejectionReason::NoEligibleTouchpoint
    );
    assert_eq!(event.metadata.saga_id.as_deref(), Some(saga.as_str()));
    assert_eq!(event.campaign_id.as_deref(), Some(campaign.as_str()));
    app.stop().await;
}

#[tokio::test]
async fn a_compensated_sale_is_reverted_once_with_every_interaction_of_its_journey() {
    let app = spawn_app().await;
    let bus = observer().await;
    let mut reverted = Observer::<AttributionReverted>::listen(&bus).await;
    let campaign = active_campaign(&bus, &app).await;
    let sale = sale(&bus, &campaign).await;
    app.wait_for(&format!("/attributions/{}", sale.saga), |v| {
        v["outcome"] == "ATTRIBUTED"
    })
    .await;

    let compensation = commission_reverted(&sale.saga);
    // A redelivery (same event id), then a second compensation of the same saga.
    for event in [
        &compensation,
        &compensation,
        &commission_reverted(&sale.saga),
    ] {
        bus.publisher().publish(event).await.unwrap();
    }

    let view = app
        .wait_for(&format!("/attributions/{}", sale.saga), |v| {
            v["reverted"] == true
        })
        .await;
    assert_eq!(view["compensated"], true);
    let event = published(&mut reverted, text(&view["reversal"]["event_id"])).await;
    assert_eq!(
        event.interaction_ids,
        [
            sale.click.interaction_id.clone(),
            sale.purchase.interaction_id.clone()
        ]
    );
    assert_eq!(event.metadata.saga_id.as_deref(), Some(sale.saga.as_str()));
    assert_eq!(
        event.metadata.causation_id.as_deref(),
        Some(compensation.metadata.event_id.as_str())
    );
    assert_eq!(event.reason, "fraud reported");
    let (_, journey) = app.get(&format!("/journeys/{}", event.journey_id)).await;
    assert_eq!(journey["status"], "REVERTED");

    tokio::time::sleep(Duration::from_secs(3)).await;
    let queued = app.queued::<AttributionReverted>(&sale.saga).await;
    assert_eq!(
        queued.len(),
        1,
        "AttributionReverted queued twice: {queued:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_compensation_that_arrives_before_its_purchase_reverts_the_purchase_when_it_comes() {
    compensation_before_purchase(false).await;
}

/// The same, with a restart in between: the new process knows nothing of the saga, takes it
/// as new without reading it, and learns of the compensation from the conflict.
#[tokio::test]
async fn a_compensation_before_its_purchase_and_a_restart_reverts_the_purchase_when_it_comes() {
    compensation_before_purchase(true).await;
}

async fn compensation_before_purchase(restart_in_between: bool) {
    let mut app = spawn_app().await;
    let bus = observer().await;
    let mut attributed = Observer::<ConversionAttributed>::listen(&bus).await;
    let mut reverted = Observer::<AttributionReverted>::listen(&bus).await;
    let campaign = active_campaign(&bus, &app).await;
    let visitor = unique("visitor");
    let saga = unique("saga");
    let compensation = commission_reverted(&saga);
    bus.publisher().publish(&compensation).await.unwrap();
    let waiting = app
        .wait_for(&format!("/attributions/{saga}"), |v| {
            v["compensated"] == true
        })
        .await;
    assert_eq!(waiting["outcome"], "AWAITING_PURCHASE");
    assert_eq!(waiting["reverted"], false);
    if restart_in_between {
        app = app.restart().await;
    }

    let click = interaction(
        &visitor,
        InteractionKind::Click,
        &campaign,
        Some("partner-1"),
    );
    let late = purchase(&visitor, &campaign, &saga, 12_000);
    bus.publisher().publish(&click).await.unwrap();
    bus.publisher().publish(&late).await.unwrap();

    let view = app
        .wait_for(&format!("/attributions/{saga}"), |v| v["reverted"] == true)
        .await;
    assert_eq!(view["outcome"], "ATTRIBUTED", "{view}");
    published(&mut attributed, text(&view["attribution"]["event_id"])).await;
    let event = published(&mut reverted, text(&view["reversal"]["event_id"])).await;
    assert_eq!(
        event.interaction_ids,
        [click.interaction_id.clone(), late.interaction_id.clone()]
    );
    assert_eq!(
        event.metadata.causation_id.as_deref(),
        Some(compensation.metadata.event_id.as_str())
    );

    // The compensation again, now that the purchase is known: nothing more. Two reverts in
    // all: the answer with nothing to undo when the compensation came first (so the saga ends
    // even if the purchase never does), then the late journey's, naming its interactions.
    bus.publisher().publish(&compensation).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let reverts = app.queued::<AttributionReverted>(&saga).await;
    let mut named: Vec<usize> = reverts.iter().map(|r| r.interaction_ids.len()).collect();
    named.sort_unstable();
    assert_eq!(named, [0, 2], "{reverts:?}");
    assert_eq!(app.queued::<ConversionAttributed>(&saga).await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn unknown_journeys_sagas_and_campaigns_answer_404_in_json() {
    let app = spawn_app().await;
    for path in ["/journeys/nope", "/attributions/nope", "/campaigns/nope"] {
        let (status, error) = app.get(path).await;
        assert_eq!(status, 404, "{path}: {error}");
        assert_eq!(error["code"], "not_found", "{path}");
    }
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Two replicas over one database, as `scripts/services.sh up --replicas 2` runs them, each with
// its own copy of the streams it handled (the use cases on `MongoStore`, without the bus): one's
// copy of a visitor's journeys goes stale when the other writes. The routing of a visitor's
// interactions to journeys must come out as one process would make it (a purchase credits the
// click the other replica took, a stale replica never adds to a journey the other converted, a
// click both take at once lands in one journey), and a compensation handled by the replica
// whose copy predates the conversion still undoes it.

async fn replica(database: &str) -> Attribution<MongoStore> {
    let url = env("ALPES_MONGO_URL", "mongodb://127.0.0.1:27017");
    let store = MongoStore::connect(&url, database)
        .await
        .expect("cannot reach FerretDB: is the stack up? (scripts/stack.sh up)");
    Attribution::new(store)
}

/// Two replicas over a database of their own, and an active campaign both can read.
async fn replicas() -> (String, String, [Attribution<MongoStore>; 2]) {
    let database = format!("attribution_replicas_{}", uuid::Uuid::new_v4().simple());
    let (a, b) = (replica(&database).await, replica(&database).await);
    let campaign = unique("campaign");
    let (created, activated) = campaign_facts(&campaign);
    let facts = [
        (&created.metadata, CampaignCommand::from(&created)),
        (&activated.metadata, CampaignCommand::from(&activated)),
    ];
    for (metadata, command) in facts {
        a.record_campaign_fact(&campaign, metadata, command)
            .await
            .unwrap();
    }
    (database, campaign, [a, b])
}

fn click(visitor: &str, campaign: &str, partner: &str) -> InteractionTracked {
    interaction(visitor, InteractionKind::Click, campaign, Some(partner))
}

fn journey(tracked: &Tracked) -> String {
    match tracked {
        Tracked::Touchpoint { journey_id, .. } | Tracked::Purchase { journey_id, .. } => {
            journey_id.clone()
        }
    }
}

/// The partners `saga`'s attribution credits, as `app` reads it.
async fn credited(app: &Attribution<MongoStore>, saga: &str) -> Vec<String> {
    let view = app.saga(saga).await.unwrap().expect("the saga is known");
    let attribution = view.attribution.expect("attributed");
    attribution
        .fact
        .credits
        .into_iter()
        .map(|c| c.partner_id)
        .collect()
}

#[tokio::test]
async fn two_replicas_route_a_visitors_interactions_as_one_process_would() {
    let (_, campaign, [a, b]) = replicas().await;
    let visitor = unique("visitor");

    // A takes the click, B the purchase: B reads the journey A wrote and credits the click.
    let first_click = a
        .track(&click(&visitor, &campaign, "ada"), Attempt::Last)
        .await
        .unwrap();
    let saga = unique("saga");
    let bought = b
        .track(
            &purchase(&visitor, &campaign, &saga, 12_000),
            Attempt::Retryable,
        )
        .await
        .expect("the click A took is found: nothing to wait for");
    assert!(
        matches!(
            &bought,
            Tracked::Purchase {
                converted: true,
                ..
            }
        ),
        "{bought:?}"
    );
    assert_eq!(journey(&bought), journey(&first_click));
    assert_eq!(credited(&b, &saga).await, ["ada"]);

    // A still holds that journey as it was, open; the visitor's next click must not join the
    // journey B converted: A's append conflicts, it reloads, and routes to the next journey.
    let next_click = click(&visitor, &campaign, "grace");
    let next = a.track(&next_click, Attempt::Last).await.unwrap();
    assert_ne!(journey(&next), journey(&first_click), "{next:?}");
    // Redelivered to B, the click is found where A put it.
    let again = b.track(&next_click, Attempt::Last).await.unwrap();
    assert!(
        matches!(
            &again,
            Tracked::Touchpoint {
                recorded: false,
                ..
            }
        ),
        "{again:?}"
    );
    assert_eq!(journey(&again), journey(&next));

    // Both at once, each click handed to both replicas (a redelivery racing the original):
    // every click is recorded once, in one journey, whoever wins.
    for round in 0..8 {
        let raced = click(&visitor, &campaign, "hedy");
        let (on_a, on_b) = tokio::join!(
            a.track(&raced, Attempt::Last),
            b.track(&raced, Attempt::Last)
        );
        let (on_a, on_b) = (on_a.unwrap(), on_b.unwrap());
        assert_eq!(journey(&on_a), journey(&on_b), "round {round}");
        let recorded = [&on_a, &on_b]
            .iter()
            .filter(|t| matches!(t, Tracked::Touchpoint { recorded: true, .. }))
            .count();
        assert_eq!(recorded, 1, "round {round}: {on_a:?} {on_b:?}");
    }
    // A second sale, on A, credits the last click, not one of the converted journey's.
    let second = unique("saga");
    let bought_again = a
        .track(
            &purchase(&visitor, &campaign, &second, 12_000),
            Attempt::Last,
        )
        .await
        .unwrap();
    assert_eq!(journey(&bought_again), journey(&next));
    assert_eq!(credited(&a, &second).await, ["hedy"]);
}

#[tokio::test]
async fn a_compensation_reverts_the_journey_another_replica_converted_a_moment_ago() {
    let (database, campaign, [a, b]) = replicas().await;
    let visitor = unique("visitor");
    let saga = unique("saga");

    // B took the click, so it holds a fresh copy of the journey, open; A converts it.
    b.track(&click(&visitor, &campaign, "ada"), Attempt::Last)
        .await
        .unwrap();
    let bought = a
        .track(&purchase(&visitor, &campaign, &saga, 12_000), Attempt::Last)
        .await
        .unwrap();
    assert!(matches!(
        &bought,
        Tracked::Purchase {
            converted: true,
            ..
        }
    ));

    // The compensation reaches B (its key is the saga's, not the visitor's) at once.
    let compensated = b.compensate(&commission_reverted(&saga)).await.unwrap();
    assert_eq!(
        compensated,
        Compensated::Reverted {
            journey_id: journey(&bought)
        },
        "B's copy of the journey predates the conversion: nothing to undo is not the answer"
    );
    // As the database has it (A's own copies are trusted for a second).
    let view = replica(&database).await.saga(&saga).await.unwrap().unwrap();
    assert!(view.compensated && view.reverted, "{view:?}");
}
