//! The use cases over the in-memory store: routing, idempotency, arrival order, crashes between
//! writes, data stored by earlier versions, and how many commits a saga costs, checked on what
//! is stored and what the outbox would publish.

use alpes_contracts::events::attribution::{
    AttributionReverted, ConversionAttributed, ConversionRejected, ConversionRejectionReason,
};
use alpes_contracts::events::commission::CommissionReverted;
use alpes_contracts::events::marketing::{CampaignActivated, CampaignPaused};
use alpes_contracts::events::tracking::{InteractionKind, InteractionTracked, Purchase as Order};

use alpes_bus::Attempt;
use alpes_contracts::{Event, EventMetadata, Money, codec};
use alpes_eventstore::{Commit, EventStore, MemoryStore, NewCommit, Probe, StoredEvent};
use alpes_testkit::fixtures;
use chrono::Utc;

use super::index::{SagaLinkEvent, VisitorEvent, visitor_stream};
use super::journeys::{announcements, journey_id};
use super::*;
use crate::domain::{
    Aggregate, CampaignCommand, JourneyCommand, JourneyEvent, JourneyStatus, Purchase, Touchpoint,
};

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

async fn spring<S: EventStore>(app: &Attribution<S>) {
    let created =
        fixtures::campaign_created("spring", 1_000_000, fixtures::percentage(1_000, 0, None));
    let activated = fixtures::campaign_activated("spring");
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

/// A `kind` interaction of `visitor` through the spring campaign's link (of `partner`).
fn interaction(visitor: &str, kind: InteractionKind, partner: Option<&str>) -> InteractionTracked {
    fixtures::interaction(visitor, kind, "spring", partner)
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
    let clicked = app.track(&click("v"), Attempt::Last).await.unwrap();
    let bought = purchase("v", "saga-1");
    let tracked = app.track(&bought, Attempt::Last).await.unwrap();
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
    app.track(&first_click, Attempt::Last).await.unwrap();
    app.track(&bought, Attempt::Last).await.unwrap();
    let next = app.track(&click("v"), Attempt::Last).await.unwrap();

    let again = app.track(&first_click, Attempt::Last).await.unwrap();
    let bought_again = app.track(&bought, Attempt::Last).await.unwrap();

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
    app.track(&click("v"), Attempt::Last).await.unwrap();
    app.track(&purchase("v", "saga-1"), Attempt::Last)
        .await
        .unwrap();
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
    app.track(&clicked, Attempt::Last).await.unwrap();
    app.track(&bought, Attempt::Last).await.unwrap();
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

    app.track(&click("v"), Attempt::Last).await.unwrap();
    let tracked = app
        .track(&purchase("v", "saga-1"), Attempt::Last)
        .await
        .unwrap();
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
async fn a_purchase_that_overtook_its_click_waits_for_it_and_is_refused_only_on_its_last_attempt() {
    let (app, store) = app();
    spring(&app).await;
    let clicked = click("v");
    let bought = purchase("v", "saga-1");

    // The purchase comes first (the click's tracking replica died before publishing it).
    let before = store.replay(None, 10_000).await.unwrap().len();
    let early = app.track(&bought, Attempt::Retryable).await;
    assert!(matches!(early, Err(AppError::NotYet(_))), "{early:?}");
    assert_eq!(
        store.replay(None, 10_000).await.unwrap().len(),
        before,
        "nothing is written"
    );
    app.track(&clicked, Attempt::Retryable).await.unwrap();
    let retried = app.track(&bought, Attempt::Retryable).await.unwrap();
    assert!(matches!(
        retried,
        Tracked::Purchase {
            converted: true,
            ..
        }
    ));
    let [attributed] = &published::<ConversionAttributed>(&store).await[..] else {
        panic!("one attribution");
    };
    assert_eq!(attributed.credits[0].partner_id, "ada");
    assert!(published::<ConversionRejected>(&store).await.is_empty());

    // A purchase naming no campaign of its own takes its campaign from its click: without the
    // click, it waits for it all the same.
    let mut campaignless = purchase("u", "saga-3");
    campaignless.tracking.campaign_id = None;
    let early = app.track(&campaignless, Attempt::Retryable).await;
    assert!(matches!(early, Err(AppError::NotYet(_))), "{early:?}");
    app.track(&click("u"), Attempt::Retryable).await.unwrap();
    let late = app.track(&campaignless, Attempt::Retryable).await.unwrap();
    assert!(matches!(
        late,
        Tracked::Purchase {
            converted: true,
            ..
        }
    ));
    assert_eq!(published::<ConversionAttributed>(&store).await.len(), 2);

    // A purchase whose click never comes is refused on its last attempt, as an event.
    let alone = purchase("w", "saga-2");
    for _ in 0..3 {
        assert!(app.track(&alone, Attempt::Retryable).await.is_err());
    }
    app.track(&alone, Attempt::Last).await.unwrap();
    let [refused] = &published::<ConversionRejected>(&store).await[..] else {
        panic!("one refusal");
    };
    assert_eq!(
        refused.reason,
        ConversionRejectionReason::NoEligibleTouchpoint
    );
}

#[tokio::test]
async fn a_purchase_waits_for_its_campaigns_facts_but_not_for_a_paused_campaign() {
    let (app, store) = app();
    app.track(&click("v"), Attempt::Last).await.unwrap();
    let bought = purchase("v", "saga-1");
    // Marketing's topics are in no order with tracking's: the campaign may come after.
    let early = app.track(&bought, Attempt::Retryable).await;
    assert!(matches!(early, Err(AppError::NotYet(_))), "{early:?}");
    spring(&app).await;
    let tracked = app.track(&bought, Attempt::Retryable).await.unwrap();
    assert!(matches!(
        tracked,
        Tracked::Purchase {
            converted: true,
            ..
        }
    ));
    assert_eq!(published::<ConversionAttributed>(&store).await.len(), 1);

    // Paused is a fact, not a campaign still on its way: refused at once.
    let paused = CampaignPaused {
        metadata: EventMetadata::new::<CampaignPaused>(),
        campaign_id: "spring".into(),
        reason: None,
    };
    app.record_campaign_fact("spring", &paused.metadata, CampaignCommand::from(&paused))
        .await
        .unwrap();
    app.track(&click("w"), Attempt::Last).await.unwrap();
    app.track(&purchase("w", "saga-2"), Attempt::Retryable)
        .await
        .unwrap();
    let [refused] = &published::<ConversionRejected>(&store).await[..] else {
        panic!("one refusal");
    };
    assert_eq!(refused.reason, ConversionRejectionReason::CampaignInactive);
}

#[tokio::test]
async fn a_purchase_without_its_saga_is_malformed() {
    let (app, _) = app();
    let mut bought = purchase("v", "saga-1");
    bought.metadata.saga_id = None;
    assert!(matches!(
        app.track(&bought, Attempt::Last).await,
        Err(AppError::Malformed(_))
    ));
}

#[tokio::test]
async fn a_purchase_in_another_currency_than_its_campaign_is_rejected_not_refused() {
    let (app, store) = app();
    spring(&app).await;
    app.track(&click("v"), Attempt::Last).await.unwrap();
    let mut dollars = purchase("v", "saga-usd");
    dollars.purchase.as_mut().unwrap().amount = Money::new(12_000, "USD");
    let tracked = app.track(&dollars, Attempt::Last).await.unwrap();
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

fn view(visitor: &str) -> InteractionTracked {
    interaction(visitor, InteractionKind::View, Some("ada"))
}

/// Every commit stored so far.
async fn commits(store: &impl EventStore) -> Vec<Commit> {
    store.replay(None, 10_000).await.unwrap()
}

#[tokio::test]
async fn a_forward_saga_costs_one_commit_per_interaction_and_one_for_the_saga_link() {
    let (app, store) = app();
    spring(&app).await;
    for (round, saga) in ["saga-1", "saga-2"].into_iter().enumerate() {
        let before = commits(&store).await.len();
        let sale = [view("v"), click("v"), purchase("v", saga)];
        for tracked in &sale {
            app.track(tracked, Attempt::Last).await.unwrap();
        }
        let written = commits(&store).await;
        let streams: Vec<&str> = written[before..]
            .iter()
            .map(|c| c.stream.as_str())
            .collect();
        let journey = format!("journey-{}", journey_id("v", round as u64 + 1));
        assert_eq!(
            streams,
            [&journey, &journey, &journey, &format!("saga-{saga}")],
            "round {round}"
        );
        for tracked in &sale {
            app.track(tracked, Attempt::Last).await.unwrap();
        }
        assert_eq!(
            commits(&store).await.len(),
            written.len(),
            "redeliveries write nothing"
        );
    }
    let attributed = published::<ConversionAttributed>(&store).await;
    assert_eq!(attributed.len(), 2);
    assert_ne!(attributed[0].journey_id, attributed[1].journey_id);
}

#[test]
fn derived_journey_ids_are_stable_and_distinct() {
    assert_eq!(
        journey_id("v", 1),
        "b6a5daef-56c2-53ba-b0d0-2b325e0c3346",
        "stored journeys are found by this id: never change how it is derived"
    );
    assert_ne!(journey_id("v", 1), journey_id("v", 2));
    assert_ne!(journey_id("a1", 2), journey_id("a", 12));
    assert!(uuid::Uuid::parse_str(&journey_id("v", 1)).is_ok());
}

#[tokio::test]
async fn a_crash_between_the_conversion_and_the_saga_link_is_resumed_by_the_redelivery() {
    let probe = Probe::default();
    let app = Attribution::new(probe.clone());
    let store = probe.store().clone();
    spring(&app).await;
    app.track(&click("v"), Attempt::Last).await.unwrap();
    let bought = purchase("v", "saga-1");
    probe.crash_before("saga-");
    assert!(matches!(
        app.track(&bought, Attempt::Last).await,
        Err(AppError::Store(_))
    ));
    // The compensation comes before the redelivery: the saga names no journey yet.
    let compensation = commission_reverted("saga-1");
    assert_eq!(
        app.compensate(&compensation).await.unwrap(),
        Compensated::NothingToUndo
    );

    let redelivered = app.track(&bought, Attempt::Last).await.unwrap();

    assert!(matches!(
        redelivered,
        Tracked::Purchase {
            converted: false,
            reverted: true,
            ..
        }
    ));
    assert_eq!(published::<ConversionAttributed>(&store).await.len(), 1);
    let [empty, reverted] = &published::<AttributionReverted>(&store).await[..] else {
        panic!("the empty answer, then the journey's revert");
    };
    assert!(empty.interaction_ids.is_empty());
    assert_eq!(reverted.journey_id, journey_of(&redelivered));
    assert_eq!(reverted.interaction_ids.len(), 2);
    let saga = app.saga("saga-1").await.unwrap().unwrap();
    assert!(saga.compensated && saga.reverted);
}

#[tokio::test]
async fn a_click_that_loses_the_race_to_the_purchase_goes_to_the_next_journey() {
    let probe = Probe::default();
    let app = Attribution::new(probe.clone());
    spring(&app).await;
    let first = app.track(&click("v"), Attempt::Last).await.unwrap();
    let (reached, resume) = probe.pause_before("journey-");
    let late = click("v");
    let racing = tokio::spawn({
        let (app, late) = (app.clone(), late.clone());
        async move { app.track(&late, Attempt::Last).await }
    });
    reached.notified().await;
    // The click was routed to the open journey; the purchase converts it first.
    app.track(&purchase("v", "saga-1"), Attempt::Last)
        .await
        .unwrap();
    resume.notify_one();

    let raced = racing.await.unwrap().unwrap();

    assert!(matches!(raced, Tracked::Touchpoint { recorded: true, .. }));
    assert_eq!(journey_of(&raced), journey_id("v", 2));
    let converted = app.journey(journey_of(&first)).await.unwrap().unwrap();
    assert_eq!(converted.status, JourneyStatus::Converted);
    assert_eq!(
        converted.touchpoints.len(),
        1,
        "the late click is not credited"
    );
    let next = app.journey(&journey_id("v", 2)).await.unwrap().unwrap();
    assert_eq!(next.interaction_ids, [late.interaction_id]);
}

/// What the version before derived journey ids stored: a visitor index routing interactions
/// to journeys with random ids, written before the journeys themselves.
struct Legacy<'a, S> {
    app: &'a Attribution<S>,
    store: &'a MemoryStore,
    visitor: &'a str,
}

impl<S: EventStore> Legacy<'_, S> {
    async fn index(&self, events: &[VisitorEvent]) {
        let stream = self
            .store
            .load(&visitor_stream(self.visitor))
            .await
            .unwrap();
        self.store
            .append(NewCommit {
                expected_version: stream.version(),
                stream: stream.name,
                events: StoredEvent::all(events).unwrap(),
                outbox: Vec::new(),
                handled: None,
            })
            .await
            .unwrap();
    }

    /// Opens a journey in the index, as the old routing did.
    async fn open(&self) -> String {
        let journey_id = uuid::Uuid::now_v7().to_string();
        let opened = VisitorEvent::JourneyOpened {
            journey_id: journey_id.clone(),
        };
        self.index(&[opened]).await;
        journey_id
    }

    /// Assigns `tracked` to `journey_id` in the index, and stops there (a crash) unless
    /// `record`: then the journey records it, converting it if it is a purchase.
    async fn route(&self, tracked: &InteractionTracked, journey_id: &str, record: bool) {
        let assigned = VisitorEvent::InteractionAssigned {
            interaction_id: tracked.interaction_id.clone(),
            journey_id: journey_id.to_owned(),
        };
        self.index(&[assigned]).await;
        if !record {
            return;
        }
        let mut journey = self.app.load_journey(journey_id).await.unwrap();
        journey.owner = Some(self.visitor.to_owned());
        let (events, outbox) = match (
            Touchpoint::from_interaction(tracked),
            Purchase::from_interaction(tracked),
        ) {
            (Some(touchpoint), _) => (vec![JourneyEvent::TouchpointRecorded(touchpoint)], vec![]),
            (None, Some(purchase)) => {
                let campaign = self.app.campaign("spring").await.unwrap().unwrap();
                let command = JourneyCommand::Convert {
                    purchase: purchase.clone(),
                    campaign: campaign.settings(),
                };
                let events = journey.state.decide(command).unwrap();
                let outbox = announcements(&events, journey_id, &tracked.metadata).unwrap();
                let saga_id = tracked.metadata.saga_id.clone().unwrap();
                let (saga, _) = self.app.load_saga(&saga_id).await.unwrap();
                let link = SagaLinkEvent::Converted {
                    journey_id: journey_id.to_owned(),
                    purchase_interaction_id: purchase.interaction_id,
                };
                self.app
                    .append_journey(&journey, &events, outbox, &tracked.metadata.event_id)
                    .await
                    .unwrap();
                self.app
                    .append_saga(&saga, &link, Vec::new(), &tracked.metadata.event_id)
                    .await
                    .unwrap();
                return;
            }
            (None, None) => unreachable!("a purchase without its order"),
        };
        self.app
            .append_journey(&journey, &events, outbox, &tracked.metadata.event_id)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn once_swept_only_the_visitors_named_by_the_sweep_have_their_old_index_looked_up() {
    let probe = Probe::default();
    let app = Attribution::new(probe.clone());
    let store = probe.store().clone();
    spring(&app).await;
    let legacy = Legacy {
        app: &app,
        store: &store,
        visitor: "old",
    };
    let old = legacy.open().await;
    let before = app.track(&click("new"), Attempt::Last).await.unwrap();
    assert!(
        probe.loads().contains(&visitor_stream("new")),
        "before the sweep, every visitor is looked up"
    );

    app.sweep_legacy_visitors().await.unwrap();
    probe.forget_loads();
    let new_click = app.track(&click("newer"), Attempt::Last).await.unwrap();
    let old_click = app.track(&click("old"), Attempt::Last).await.unwrap();

    assert_eq!(journey_of(&before), journey_id("new", 1));
    assert_eq!(journey_of(&new_click), journey_id("newer", 1));
    assert_eq!(
        journey_of(&old_click),
        old,
        "a named visitor's old journey goes on"
    );
    let loads = probe.loads();
    assert!(!loads.contains(&visitor_stream("newer")), "{loads:?}");
    assert!(loads.contains(&visitor_stream("old")), "{loads:?}");

    let replays = probe.replays();
    let restarted = Attribution::new(probe.clone());
    restarted.sweep_legacy_visitors().await.unwrap();
    assert_eq!(
        probe.replays(),
        replays,
        "the next process reads the answer instead of sweeping again"
    );
    probe.forget_loads();
    restarted
        .track(&click("newest"), Attempt::Last)
        .await
        .unwrap();
    restarted.track(&click("old"), Attempt::Last).await.unwrap();
    let loads = probe.loads();
    assert!(!loads.contains(&visitor_stream("newest")), "{loads:?}");
    assert!(loads.contains(&visitor_stream("old")), "{loads:?}");
}

#[tokio::test]
async fn an_open_journey_of_the_old_layout_is_continued_and_its_interactions_count_once() {
    let (app, store) = app();
    spring(&app).await;
    let legacy = Legacy {
        app: &app,
        store: &store,
        visitor: "v",
    };
    let old_click = click("v");
    let old = legacy.open().await;
    legacy.route(&old_click, &old, true).await;
    let index_version = store.load("visitor-v").await.unwrap().version();

    let new_click = app.track(&click("v"), Attempt::Last).await.unwrap();
    let again = app.track(&old_click, Attempt::Last).await.unwrap();
    let bought = purchase("v", "saga-1");
    let converted = app.track(&bought, Attempt::Last).await.unwrap();
    let next = app.track(&click("v"), Attempt::Last).await.unwrap();
    let old_again = app.track(&old_click, Attempt::Last).await.unwrap();

    assert_eq!(journey_of(&new_click), old);
    assert_eq!(
        again,
        Tracked::Touchpoint {
            journey_id: old.clone(),
            recorded: false
        }
    );
    assert_eq!(journey_of(&converted), old);
    assert_eq!(journey_of(&next), journey_id("v", 1), "then derived ids");
    assert_eq!(
        old_again,
        Tracked::Touchpoint {
            journey_id: old.clone(),
            recorded: false
        }
    );
    let journey = app.journey(&old).await.unwrap().unwrap();
    assert_eq!(journey.visitor_id.as_deref(), Some("v"));
    assert_eq!(journey.interaction_ids.len(), 3);
    assert_eq!(published::<ConversionAttributed>(&store).await.len(), 1);
    let index = store.load("visitor-v").await.unwrap();
    assert_eq!(index.version(), index_version, "the old index is only read");

    let compensated = app
        .compensate(&commission_reverted("saga-1"))
        .await
        .unwrap();
    assert_eq!(compensated, Compensated::Reverted { journey_id: old });
}

#[tokio::test]
async fn a_sale_converted_the_old_way_is_redelivered_and_compensated_once() {
    let (app, store) = app();
    spring(&app).await;
    let legacy = Legacy {
        app: &app,
        store: &store,
        visitor: "v",
    };
    let (old_click, bought) = (click("v"), purchase("v", "saga-1"));
    let old = legacy.open().await;
    legacy.route(&old_click, &old, true).await;
    legacy.route(&bought, &old, true).await;
    assert_eq!(published::<ConversionAttributed>(&store).await.len(), 1);

    let redelivered = app.track(&bought, Attempt::Last).await.unwrap();
    let compensated = app
        .compensate(&commission_reverted("saga-1"))
        .await
        .unwrap();
    let next = app.track(&click("v"), Attempt::Last).await.unwrap();

    assert_eq!(
        redelivered,
        Tracked::Purchase {
            journey_id: old.clone(),
            saga_id: "saga-1".into(),
            converted: false,
            reverted: false,
        }
    );
    assert_eq!(
        compensated,
        Compensated::Reverted {
            journey_id: old.clone()
        }
    );
    assert_eq!(journey_of(&next), journey_id("v", 1));
    assert_eq!(published::<ConversionAttributed>(&store).await.len(), 1);
    let [reverted] = &published::<AttributionReverted>(&store).await[..] else {
        panic!("one AttributionReverted expected");
    };
    assert_eq!(reverted.journey_id, old);
    assert_eq!(
        reverted.interaction_ids,
        [old_click.interaction_id, bought.interaction_id]
    );
    let saga = app.saga("saga-1").await.unwrap().unwrap();
    assert_eq!(saga.journey_id.as_deref(), Some(old.as_str()));
    assert!(saga.reverted);
}

#[tokio::test]
async fn an_interaction_assigned_the_old_way_but_not_recorded_goes_where_the_old_routing_sent_it() {
    let (app, store) = app();
    spring(&app).await;
    let legacy = Legacy {
        app: &app,
        store: &store,
        visitor: "v",
    };
    let old = legacy.open().await;
    legacy.route(&click("v"), &old, true).await;
    // A crash after assigning each of these clicks to the open journey, before recording it.
    let (resumed, late) = (click("v"), click("v"));
    legacy.route(&resumed, &old, false).await;
    legacy.route(&late, &old, false).await;

    // The journey is still open: the redelivery joins it, as the assignment said.
    let redelivered = app.track(&resumed, Attempt::Last).await.unwrap();
    assert_eq!(
        redelivered,
        Tracked::Touchpoint {
            journey_id: old.clone(),
            recorded: true
        }
    );
    // A purchase converts it first: the redelivery goes to the visitor's next journey.
    app.track(&purchase("v", "saga-1"), Attempt::Last)
        .await
        .unwrap();
    let redelivered = app.track(&late, Attempt::Last).await.unwrap();
    assert_eq!(
        redelivered,
        Tracked::Touchpoint {
            journey_id: journey_id("v", 1),
            recorded: true
        }
    );
    let closed = app.journey(&old).await.unwrap().unwrap();
    assert_eq!(closed.touchpoints.len(), 2);
}
