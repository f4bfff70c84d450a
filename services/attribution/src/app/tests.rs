//! The use cases over the in-memory store: routing, idempotency and arrival order, checked on
//! what is stored and what the outbox would publish.

use alpes_contracts::events::attribution::{
    AttributionModel, AttributionReverted, ConversionAttributed, ConversionRejected,
    ConversionRejectionReason,
};
use alpes_contracts::events::commission::{CommissionKind, CommissionReverted, CommissionTerms};
use alpes_contracts::events::marketing::{CampaignActivated, CampaignCreated};
use alpes_contracts::events::tracking::{
    InteractionKind, InteractionTracked, PageContext, Purchase as Order, Target, TrackingParams,
    Visitor,
};
use alpes_contracts::{Event, EventMetadata, Money, codec};
use alpes_eventstore::{EventStore, MemoryStore};
use chrono::{TimeDelta, Utc};

use super::*;
use crate::domain::{CampaignCommand, JourneyStatus};

fn app() -> (Attribution<MemoryStore>, MemoryStore) {
    let store = MemoryStore::new();
    (Attribution::new(store.clone()), store)
}

/// Every message of type `E` the outbox holds, in order.
async fn published<E: Event>(store: &MemoryStore) -> Vec<E> {
    let commits = store.replay(None, 10_000).await.unwrap();
    commits
        .iter()
        .flat_map(|c| &c.outbox)
        .filter(|o| o.event_type.as_deref() == Some(E::event_type().name))
        .map(|o| codec::decode::<E>(&o.payload).unwrap())
        .collect()
}

async fn spring(app: &Attribution<MemoryStore>) {
    let created = CampaignCreated {
        metadata: EventMetadata::new::<CampaignCreated>(),
        campaign_id: "spring".into(),
        name: "Spring".into(),
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
        campaign_id: "spring".into(),
        reason: None,
    };
    for (metadata, command) in [
        (&created.metadata, CampaignCommand::from(&created)),
        (&activated.metadata, CampaignCommand::from(&activated)),
    ] {
        assert!(
            app.record_campaign_fact("spring", metadata, command)
                .await
                .unwrap()
        );
    }
}

fn interaction(visitor: &str, kind: InteractionKind, partner: Option<&str>) -> InteractionTracked {
    InteractionTracked {
        metadata: EventMetadata::new::<InteractionTracked>(),
        interaction_id: uuid::Uuid::now_v7().to_string(),
        kind,
        interacted_at: Utc::now() - TimeDelta::minutes(10),
        visitor: Visitor {
            user_id: None,
            anonymous_id: visitor.into(),
            ip: None,
            user_agent: Some("Firefox".into()),
        },
        tracking: TrackingParams {
            campaign_id: Some("spring".into()),
            partner_id: partner.map(Into::into),
            medium: Some("affiliate".into()),
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

fn click(visitor: &str) -> InteractionTracked {
    interaction(visitor, InteractionKind::Click, Some("ada"))
}

fn purchase(visitor: &str, saga: &str) -> InteractionTracked {
    let mut tracked = interaction(visitor, InteractionKind::Purchase, None);
    tracked.metadata = tracked.metadata.in_saga(saga);
    tracked.interacted_at = Utc::now();
    tracked.purchase = Some(Order {
        order_id: "o-1".into(),
        amount: Money::new(12_000, "EUR"),
    });
    tracked
}

fn commission_reverted(saga: &str) -> CommissionReverted {
    CommissionReverted {
        metadata: EventMetadata::new::<CommissionReverted>().in_saga(saga),
        commission_id: None,
        campaign_id: Some("spring".into()),
        released: None,
        reason: "fraud reported".into(),
    }
}

fn journey_of(tracked: &Tracked) -> &str {
    match tracked {
        Tracked::Touchpoint { journey_id, .. } | Tracked::Purchase { journey_id, .. } => journey_id,
    }
}

#[tokio::test]
async fn a_purchase_is_attributed_to_the_clicked_partner_in_the_purchase_saga() {
    let (app, store) = app();
    spring(&app).await;
    let clicked = app.track(&click("v")).await.unwrap();
    let bought = purchase("v", "saga-1");
    let tracked = app.track(&bought).await.unwrap();
    assert_eq!(journey_of(&clicked), journey_of(&tracked));

    let [attributed] = &published::<ConversionAttributed>(&store).await[..] else {
        panic!("one ConversionAttributed expected");
    };
    assert_eq!(attributed.metadata.saga_id.as_deref(), Some("saga-1"));
    assert_eq!(
        attributed.metadata.causation_id.as_deref(),
        Some(bought.metadata.event_id.as_str())
    );
    assert_eq!(attributed.credits.len(), 1);
    assert_eq!(attributed.credits[0].partner_id, "ada");
    assert_eq!(attributed.credits[0].amount, Money::new(12_000, "EUR"));

    let saga = app.saga("saga-1").await.unwrap().unwrap();
    assert_eq!(saga.outcome, SagaOutcome::Attributed);
    assert_eq!(
        saga.attribution.unwrap().event_id.as_deref(),
        Some(attributed.metadata.event_id.as_str())
    );
}

#[tokio::test]
async fn redelivered_interactions_change_nothing_even_after_the_journey_closed() {
    let (app, store) = app();
    spring(&app).await;
    let first_click = click("v");
    let bought = purchase("v", "saga-1");
    app.track(&first_click).await.unwrap();
    app.track(&bought).await.unwrap();
    let next = app.track(&click("v")).await.unwrap();

    let again = app.track(&first_click).await.unwrap();
    let bought_again = app.track(&bought).await.unwrap();

    assert!(matches!(
        again,
        Tracked::Touchpoint {
            recorded: false,
            ..
        }
    ));
    assert!(matches!(
        bought_again,
        Tracked::Purchase {
            converted: false,
            ..
        }
    ));
    let new_journey = app.journey(journey_of(&next)).await.unwrap().unwrap();
    assert_eq!(new_journey.status, JourneyStatus::Open);
    assert_eq!(
        new_journey.touchpoints.len(),
        1,
        "the old click stays in the old journey"
    );
    assert_eq!(published::<ConversionAttributed>(&store).await.len(), 1);
}

#[tokio::test]
async fn a_purchase_of_an_unknown_campaign_is_rejected() {
    let (app, store) = app();
    app.track(&click("v")).await.unwrap();
    app.track(&purchase("v", "saga-1")).await.unwrap();
    let [rejected] = &published::<ConversionRejected>(&store).await[..] else {
        panic!("one ConversionRejected expected");
    };
    assert_eq!(rejected.reason, ConversionRejectionReason::CampaignUnknown);
    let saga = app.saga("saga-1").await.unwrap().unwrap();
    assert_eq!(saga.outcome, SagaOutcome::Rejected);
}

#[tokio::test]
async fn a_compensation_reverts_the_journey_once_however_often_it_arrives() {
    let (app, store) = app();
    spring(&app).await;
    let clicked = click("v");
    let bought = purchase("v", "saga-1");
    app.track(&clicked).await.unwrap();
    app.track(&bought).await.unwrap();
    let compensation = commission_reverted("saga-1");

    let first = app.compensate(&compensation).await.unwrap();
    let redelivered = app.compensate(&compensation).await.unwrap();
    let another = app
        .compensate(&commission_reverted("saga-1"))
        .await
        .unwrap();

    assert!(matches!(first, Compensated::Reverted { .. }));
    assert!(matches!(redelivered, Compensated::AlreadyReverted { .. }));
    assert!(matches!(another, Compensated::AlreadyReverted { .. }));
    let [reverted] = &published::<AttributionReverted>(&store).await[..] else {
        panic!("one AttributionReverted expected");
    };
    assert_eq!(
        reverted.interaction_ids,
        [clicked.interaction_id, bought.interaction_id]
    );
    assert_eq!(
        reverted.metadata.causation_id.as_deref(),
        Some(compensation.metadata.event_id.as_str())
    );
    assert_eq!(reverted.metadata.saga_id.as_deref(), Some("saga-1"));
    assert!(app.saga("saga-1").await.unwrap().unwrap().reverted);
}

#[tokio::test]
async fn a_compensation_with_nothing_to_undo_is_answered_once_with_an_empty_revert() {
    let (app, store) = app();
    let compensation = commission_reverted("saga-1");
    let answered = app.compensate(&compensation).await.unwrap();
    assert_eq!(answered, Compensated::NothingToUndo);
    // A redelivery, and a second compensation of the same saga, answer nothing new.
    app.compensate(&compensation).await.unwrap();
    app.compensate(&commission_reverted("saga-1"))
        .await
        .unwrap();
    let [reverted] = &published::<AttributionReverted>(&store).await[..] else {
        panic!("one AttributionReverted expected");
    };
    assert_eq!(reverted.journey_id, "");
    assert!(reverted.interaction_ids.is_empty());
    assert_eq!(reverted.metadata.saga_id.as_deref(), Some("saga-1"));
    assert_eq!(
        reverted.metadata.causation_id.as_deref(),
        Some(compensation.metadata.event_id.as_str())
    );
}

#[tokio::test]
async fn a_compensation_before_its_purchase_reverts_the_late_purchase_in_the_same_commit() {
    let (app, store) = app();
    spring(&app).await;
    let compensation = commission_reverted("saga-1");
    let answered = app.compensate(&compensation).await.unwrap();
    assert_eq!(answered, Compensated::NothingToUndo);
    let view = app.saga("saga-1").await.unwrap().unwrap();
    assert_eq!(view.outcome, SagaOutcome::AwaitingPurchase);
    assert!(view.compensated && !view.reverted);

    app.track(&click("v")).await.unwrap();
    let tracked = app.track(&purchase("v", "saga-1")).await.unwrap();
    assert!(matches!(
        tracked,
        Tracked::Purchase {
            converted: true,
            reverted: true,
            ..
        }
    ));
    app.compensate(&compensation).await.unwrap();

    let commits = store.replay(None, 10_000).await.unwrap();
    let announcing: Vec<_> = commits
        .iter()
        .filter(|c| c.outbox.iter().any(|o| o.topic.contains("conversion")))
        .collect();
    assert_eq!(announcing.len(), 1, "conversion and reversal in one commit");
    assert_eq!(
        announcing[0].outbox.len(),
        2,
        "conversion and reversal in one commit"
    );
    assert_eq!(published::<ConversionAttributed>(&store).await.len(), 1);
    // The empty answer first, then the late journey's revert naming its interactions.
    let [empty, reverted] = &published::<AttributionReverted>(&store).await[..] else {
        panic!("two AttributionReverted expected");
    };
    assert!(empty.interaction_ids.is_empty());
    assert_eq!(reverted.interaction_ids.len(), 2);
    assert_eq!(
        reverted.metadata.causation_id.as_deref(),
        Some(compensation.metadata.event_id.as_str())
    );
    let view = app.saga("saga-1").await.unwrap().unwrap();
    assert!(view.reverted);
    assert_eq!(view.outcome, SagaOutcome::Attributed);
}

#[tokio::test]
async fn a_redelivered_campaign_fact_changes_nothing() {
    let (app, _) = app();
    let activated = CampaignActivated {
        metadata: EventMetadata::new::<CampaignActivated>(),
        campaign_id: "spring".into(),
        reason: None,
    };
    let record = || app.record_campaign_fact("spring", &activated.metadata, (&activated).into());
    assert!(record().await.unwrap());
    assert!(!record().await.unwrap());
    let view = app.campaign_view("spring").await.unwrap().unwrap();
    assert_eq!(view.settings, None, "activation known, creation not yet");
}

#[tokio::test]
async fn a_purchase_without_its_saga_is_malformed() {
    let (app, _) = app();
    let mut bought = purchase("v", "saga-1");
    bought.metadata.saga_id = None;
    assert!(matches!(
        app.track(&bought).await,
        Err(AppError::Malformed(_))
    ));
}

#[tokio::test]
async fn an_interaction_routed_to_a_journey_that_closed_before_it_was_recorded_opens_a_new_one() {
    let (app, store) = app();
    spring(&app).await;
    let first = app.track(&click("v")).await.unwrap();
    let journey_id = journey_of(&first).to_owned();
    // A crash after routing the second click, before recording it; then the purchase converts
    // the journey the click was routed to.
    let late = click("v");
    let visitor = store.load("visitor-v").await.unwrap();
    let assigned = index::VisitorEvent::InteractionAssigned {
        interaction_id: late.interaction_id.clone(),
        journey_id: journey_id.clone(),
    };
    store
        .append(alpes_eventstore::NewCommit {
            stream: visitor.name.clone(),
            expected_version: visitor.version(),
            events: stored(&[assigned]).unwrap(),
            outbox: Vec::new(),
            handled: None,
        })
        .await
        .unwrap();
    app.track(&purchase("v", "saga-1")).await.unwrap();

    let redelivered = app.track(&late).await.unwrap();

    assert!(matches!(
        redelivered,
        Tracked::Touchpoint { recorded: true, .. }
    ));
    assert_ne!(journey_of(&redelivered), journey_id);
    let closed = app.journey(&journey_id).await.unwrap().unwrap();
    assert_eq!(closed.touchpoints.len(), 1);
}

#[tokio::test]
async fn a_purchase_in_another_currency_than_its_campaign_is_rejected_not_refused() {
    let (app, store) = app();
    spring(&app).await;
    app.track(&click("v")).await.unwrap();
    let mut dollars = purchase("v", "saga-usd");
    dollars.purchase.as_mut().unwrap().amount = Money::new(12_000, "USD");
    let tracked = app.track(&dollars).await.unwrap();
    assert!(matches!(
        tracked,
        Tracked::Purchase {
            converted: true,
            ..
        }
    ));
    let [rejected] = &published::<ConversionRejected>(&store).await[..] else {
        panic!("one ConversionRejected expected");
    };
    assert_eq!(rejected.metadata.saga_id.as_deref(), Some("saga-usd"));
    assert_eq!(rejected.campaign_id.as_deref(), Some("spring"));
    assert_eq!(
        rejected.detail,
        "the purchase is in USD, its campaign spring in EUR"
    );
    assert!(published::<ConversionAttributed>(&store).await.is_empty());
}
