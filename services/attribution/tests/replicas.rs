//! Two attribution replicas over one database, as `scripts/services.sh up --replicas 2` runs
//! them: each holds its own copy of the streams it handled, so one's copy of a visitor's
//! journeys goes stale when the other writes. The routing of a visitor's interactions to
//! journeys (derived journey ids, no index to keep) must come out as one process would make it:
//! a purchase credits the click the other replica took, a stale replica never adds to a journey
//! the other converted, and a click both take at once lands in one journey. And a compensation
//! handled by the replica whose copy predates the conversion still undoes it.

use alpes_attribution::app::{Attribution, Compensated, Tracked};
use alpes_attribution::domain::CampaignCommand;
use alpes_bus::Attempt;
use alpes_contracts::events::attribution::AttributionModel;
use alpes_contracts::events::commission::{CommissionKind, CommissionReverted, CommissionTerms};
use alpes_contracts::events::marketing::{CampaignActivated, CampaignCreated};
use alpes_contracts::events::tracking::{
    InteractionKind, InteractionTracked, PageContext, Purchase, Target, TrackingParams, Visitor,
};
use alpes_contracts::{EventMetadata, Money};
use alpes_eventstore::MongoStore;
use chrono::{TimeDelta, Utc};

const CAMPAIGN: &str = "replicas";

async fn replica(database: &str) -> Attribution<MongoStore> {
    let url =
        std::env::var("ALPES_MONGO_URL").unwrap_or_else(|_| "mongodb://127.0.0.1:27017".to_owned());
    let store = MongoStore::connect(&url, database)
        .await
        .expect("cannot reach FerretDB: is the stack up? (scripts/stack.sh up)");
    Attribution::new(store)
}

async fn active_campaign(app: &Attribution<MongoStore>) {
    let created = CampaignCreated {
        metadata: EventMetadata::new::<CampaignCreated>(),
        campaign_id: CAMPAIGN.into(),
        name: "Replicas".into(),
        budget: Money::new(1_000_000, "EUR"),
        terms: CommissionTerms {
            kind: CommissionKind::Percentage,
            percentage_bps: Some(1_000),
            fixed_minor: None,
            minimum_minor: 0,
            maximum_minor: None,
        },
        attribution_model: AttributionModel::LastTouch,
        attribution_window_days: 30,
        fraud_threshold: 70,
    };
    let activated = CampaignActivated {
        metadata: EventMetadata::new::<CampaignActivated>(),
        campaign_id: CAMPAIGN.into(),
        reason: None,
    };
    app.record_campaign_fact(CAMPAIGN, &created.metadata, CampaignCommand::from(&created))
        .await
        .unwrap();
    app.record_campaign_fact(
        CAMPAIGN,
        &activated.metadata,
        CampaignCommand::from(&activated),
    )
    .await
    .unwrap();
}

/// A click of `visitor` through `partner`, `minutes_ago` minutes ago.
fn click(visitor: &str, partner: &str, minutes_ago: i64) -> InteractionTracked {
    InteractionTracked {
        metadata: EventMetadata::new::<InteractionTracked>(),
        interaction_id: uuid::Uuid::now_v7().to_string(),
        kind: InteractionKind::Click,
        interacted_at: Utc::now() - TimeDelta::minutes(minutes_ago),
        visitor: Visitor {
            user_id: None,
            anonymous_id: visitor.into(),
            ip: None,
            user_agent: None,
        },
        tracking: TrackingParams {
            campaign_id: Some(CAMPAIGN.into()),
            partner_id: Some(partner.into()),
            ..TrackingParams::default()
        },
        target: Target {
            url: "https://shop.example/".into(),
            element: None,
        },
        context: PageContext::default(),
        purchase: None,
    }
}

fn purchase(visitor: &str, saga: &str) -> InteractionTracked {
    let mut tracked = click(visitor, "unused", 0);
    tracked.kind = InteractionKind::Purchase;
    tracked.tracking.partner_id = None;
    tracked.metadata = tracked.metadata.in_saga(saga);
    tracked.purchase = Some(Purchase {
        order_id: format!("order-{saga}"),
        amount: Money::new(12_000, "EUR"),
    });
    tracked
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
    let database = format!("attribution_replicas_{}", uuid::Uuid::new_v4().simple());
    let (a, b) = (replica(&database).await, replica(&database).await);
    active_campaign(&a).await;
    let visitor = format!("visitor-{}", uuid::Uuid::new_v4().simple());

    // A takes the click, B the purchase: B reads the journey A wrote and credits the click.
    let first_click = a
        .track(&click(&visitor, "ada", 10), Attempt::Last)
        .await
        .unwrap();
    let saga = uuid::Uuid::now_v7().to_string();
    let bought = b
        .track(&purchase(&visitor, &saga), Attempt::Retryable)
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
    let next_click = click(&visitor, "grace", 5);
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
        let raced = click(&visitor, "hedy", 4 - round / 2);
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
    let second = uuid::Uuid::now_v7().to_string();
    let bought_again = a
        .track(&purchase(&visitor, &second), Attempt::Last)
        .await
        .unwrap();
    assert_eq!(journey(&bought_again), journey(&next));
    assert_eq!(credited(&a, &second).await, ["hedy"]);
}

#[tokio::test]
async fn a_compensation_reverts_the_journey_another_replica_converted_a_moment_ago() {
    let database = format!("attribution_replicas_{}", uuid::Uuid::new_v4().simple());
    let (a, b) = (replica(&database).await, replica(&database).await);
    active_campaign(&a).await;
    let visitor = format!("visitor-{}", uuid::Uuid::new_v4().simple());
    let saga = uuid::Uuid::now_v7().to_string();

    // B took the click, so it holds a fresh copy of the journey, open; A converts it.
    b.track(&click(&visitor, "ada", 10), Attempt::Last)
        .await
        .unwrap();
    let bought = a
        .track(&purchase(&visitor, &saga), Attempt::Last)
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
    let reverted = CommissionReverted {
        metadata: EventMetadata::new::<CommissionReverted>().in_saga(&saga),
        commission_id: None,
        campaign_id: Some(CAMPAIGN.into()),
        released: None,
        reason: "fraud reported".into(),
    };
    let compensated = b.compensate(&reverted).await.unwrap();
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
