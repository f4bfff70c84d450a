//! The use cases against the in-memory store: what each message writes and announces, that a
//! redelivery or a second compensation announces nothing again, that a crash between the two
//! aggregates' writes is resumed, and that concurrent sales never overspend a budget.

use alpes_contracts::events::attribution::{AttributionModel, ConversionAttributed, Credit};
use alpes_contracts::events::commission::{
    CommissionConfirmed, CommissionKind, CommissionRejected, CommissionRejectionReason,
    CommissionReserved, CommissionReverted, CommissionTerms,
};
use alpes_contracts::events::marketing::{
    CampaignActivated, CampaignCreated, CampaignPaused, FraudDetected, SagaTimedOut,
};
use alpes_contracts::{Event, EventMetadata, Money, codec};
use alpes_eventstore::{EventStore, MemoryStore, NewCommit, StoredEvent};
use alpes_runtime::trace::TraceContext;

use super::*;
use crate::domain::{BudgetEvent, CampaignStatus, CommissionEvent, CommissionStatus, Sale};

mod listing;

const CAMPAIGN: &str = "spring-sale";

fn eur(amount_minor: i64) -> Money {
    Money::new(amount_minor, "EUR")
}

fn app() -> (Commissions<MemoryStore>, MemoryStore) {
    let store = MemoryStore::new();
    (Commissions::new(store.clone()), store)
}

/// 10 % of the sale, at least 1.00, at most 50.00.
fn created(campaign: &str, budget_minor: i64) -> CampaignCreated {
    CampaignCreated {
        metadata: EventMetadata::new::<CampaignCreated>(),
        campaign_id: campaign.to_owned(),
        name: "Spring sale".to_owned(),
        budget: eur(budget_minor),
        terms: CommissionTerms {
            kind: CommissionKind::Percentage,
            percentage_bps: Some(1_000),
            fixed_minor: None,
            minimum_minor: 1_00,
            maximum_minor: Some(50_00),
        },
        attribution_model: AttributionModel::LastTouch,
        attribution_window_days: 30,
        fraud_threshold: 80,
    }
}

fn activated(campaign: &str) -> CampaignActivated {
    CampaignActivated {
        metadata: EventMetadata::new::<CampaignActivated>(),
        campaign_id: campaign.to_owned(),
        reason: None,
    }
}

/// An active campaign with a budget of `budget_minor`.
async fn campaign<S: EventStore>(app: &Commissions<S>, campaign: &str, budget_minor: i64) {
    assert!(
        app.open_budget(&created(campaign, budget_minor))
            .await
            .unwrap()
    );
    assert!(app.activate_campaign(&activated(campaign)).await.unwrap());
}

fn attributed(saga: &str, campaign: &str, amount_minor: i64) -> ConversionAttributed {
    ConversionAttributed {
        metadata: EventMetadata::new::<ConversionAttributed>().in_saga(saga),
        journey_id: format!("journey-{saga}"),
        interaction_id: format!("purchase-{saga}"),
        order_id: format!("order-{saga}"),
        campaign_id: campaign.to_owned(),
        amount: eur(amount_minor),
        model: AttributionModel::LastTouch,
        credits: vec![Credit {
            interaction_id: format!("click-{saga}"),
            partner_id: "partner-7".to_owned(),
            campaign_id: Some(campaign.to_owned()),
            weight_ppm: 1_000_000,
            amount: eur(amount_minor),
        }],
        fraud_score: 0,
    }
}

fn fraud(saga: &str) -> FraudDetected {
    FraudDetected {
        metadata: EventMetadata::new::<FraudDetected>().in_saga(saga),
        reason: "stolen card".to_owned(),
        reporter: "tests".to_owned(),
        score: Some(95),
    }
}

fn timeout(saga: &str) -> SagaTimedOut {
    SagaTimedOut {
        metadata: EventMetadata::new::<SagaTimedOut>().in_saga(saga),
        deadline: chrono::Utc::now(),
        last_status: "ATTRIBUTED".to_owned(),
    }
}

/// Every `E` queued in any outbox, oldest first.
async fn queued<E: Event>(store: &MemoryStore) -> Vec<E> {
    let name = E::event_type().name;
    store
        .unpublished(usize::MAX)
        .await
        .unwrap()
        .iter()
        .flat_map(|c| &c.outbox)
        .filter(|o| o.event_type.as_deref() == Some(name))
        .map(|o| codec::decode::<E>(&o.payload).unwrap())
        .collect()
}

async fn budget(app: &Commissions<MemoryStore>, campaign: &str) -> BudgetView {
    app.budget(campaign)
        .await
        .unwrap()
        .expect("an opened budget")
}

/// Writes `events` to `stream` as a step would have before a crash.
async fn crashed_after<E: DomainEvent>(store: &MemoryStore, stream: &str, events: &[E]) {
    let version = store.load(stream).await.unwrap().version();
    store
        .append(NewCommit {
            stream: stream.to_owned(),
            expected_version: version,
            events: events
                .iter()
                .map(|e| StoredEvent::new(e.kind(), e).unwrap())
                .collect(),
            outbox: Vec::new(),
            handled: None,
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn a_sale_reserves_its_commission_once_however_often_it_arrives() {
    let (app, store) = app();
    campaign(&app, CAMPAIGN, 1_000_00).await;
    let sale = attributed("saga-1", CAMPAIGN, 120_00);
    let again = ConversionAttributed {
        metadata: EventMetadata::new::<ConversionAttributed>().in_saga("saga-1"),
        ..sale.clone()
    };

    for event in [&sale, &sale, &again] {
        assert_eq!(
            app.reserve(event, Attempt::Retryable).await.unwrap(),
            CommissionStatus::Reserved
        );
    }

    let reserved = queued::<CommissionReserved>(&store).await;
    assert_eq!(reserved.len(), 1, "{reserved:?}");
    let reserved = &reserved[0];
    assert_eq!(reserved.commission_id, "commission-saga-1");
    assert_eq!(reserved.commission, eur(12_00));
    assert_eq!(reserved.budget_remaining, eur(988_00));
    assert_eq!(reserved.partner_id, "partner-7");
    assert_eq!(reserved.metadata.saga_id.as_deref(), Some("saga-1"));
    assert_eq!(
        reserved.metadata.causation_id.as_deref(),
        Some(sale.metadata.event_id.as_str())
    );
    assert_eq!(budget(&app, CAMPAIGN).await.reserved, eur(12_00));
    let view = app.commission("commission-saga-1").await.unwrap().unwrap();
    assert_eq!(view.status, CommissionStatus::Reserved);
    assert_eq!(view.amount, Some(eur(12_00)));
    assert_eq!(view.budget_remaining, Some(eur(988_00)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_sales_never_overspend_the_budget() {
    let (app, store) = app();
    campaign(&app, CAMPAIGN, 100_00).await; // room for eight commissions of 12.00
    let sales = (0..30).map(|i| {
        let app = app.clone();
        tokio::spawn(async move {
            let sale = attributed(&format!("saga-{i}"), CAMPAIGN, 120_00);
            loop {
                // What the bus does with a message that kept conflicting: deliver it again.
                match app.reserve(&sale, Attempt::Retryable).await {
                    Err(AppError::Store(StoreError::Conflict { .. })) => continue,
                    outcome => return outcome.unwrap(),
                }
            }
        })
    });
    let mut statuses = Vec::new();
    for sale in sales.collect::<Vec<_>>() {
        statuses.push(sale.await.unwrap());
    }

    let reserved = statuses
        .iter()
        .filter(|s| **s == CommissionStatus::Reserved)
        .count();
    assert_eq!(reserved, 8);
    assert_eq!(queued::<CommissionReserved>(&store).await.len(), 8);
    let rejected = queued::<CommissionRejected>(&store).await;
    assert_eq!(rejected.len(), 22);
    assert!(
        rejected
            .iter()
            .all(|r| r.reason == CommissionRejectionReason::BudgetExhausted)
    );
    let budget = budget(&app, CAMPAIGN).await;
    assert_eq!((budget.reserved, budget.remaining), (eur(96_00), eur(4_00)));
}

#[tokio::test]
async fn a_sale_of_a_campaign_not_known_here_writes_nothing_and_asks_to_be_retried() {
    let (app, store) = app();

    let error = app
        .reserve(
            &attributed("saga-1", "elsewhere", 120_00),
            Attempt::Retryable,
        )
        .await
        .unwrap_err();

    assert!(matches!(error, AppError::CampaignUnknown(c) if c == "elsewhere"));
    assert!(store.replay(None, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_sale_of_a_created_or_paused_campaign_is_rejected_inactive() {
    let (app, store) = app();
    app.open_budget(&created(CAMPAIGN, 1_000_00)).await.unwrap();
    app.reserve(&attributed("saga-1", CAMPAIGN, 120_00), Attempt::Retryable)
        .await
        .unwrap();
    app.activate_campaign(&activated(CAMPAIGN)).await.unwrap();
    let paused = CampaignPaused {
        metadata: EventMetadata::new::<CampaignPaused>(),
        campaign_id: CAMPAIGN.to_owned(),
        reason: None,
    };
    app.pause_campaign(&paused).await.unwrap();
    app.reserve(&attributed("saga-2", CAMPAIGN, 120_00), Attempt::Retryable)
        .await
        .unwrap();

    let rejected = queued::<CommissionRejected>(&store).await;
    assert_eq!(rejected.len(), 2);
    assert!(
        rejected
            .iter()
            .all(|r| r.reason == CommissionRejectionReason::CampaignInactive)
    );
    assert_eq!(budget(&app, CAMPAIGN).await.status, CampaignStatus::Paused);
}

#[tokio::test]
async fn campaign_events_are_applied_once_and_in_any_order() {
    let (app, _) = app();
    let created = created(CAMPAIGN, 1_000_00);

    assert!(app.activate_campaign(&activated(CAMPAIGN)).await.unwrap());
    assert!(app.open_budget(&created).await.unwrap());
    assert!(!app.open_budget(&created).await.unwrap());

    let budget = budget(&app, CAMPAIGN).await;
    assert_eq!(budget.status, CampaignStatus::Active);
    assert_eq!(budget.total, eur(1_000_00));
    assert_eq!(budget.remaining, eur(1_000_00));
}

#[tokio::test]
async fn bad_input_is_refused_for_good() {
    let (app, _) = app();
    let mut bad_terms = created(CAMPAIGN, 1_000_00);
    bad_terms.terms.percentage_bps = Some(20_000);
    assert!(matches!(
        app.open_budget(&bad_terms).await,
        Err(AppError::Invalid(_))
    ));
    let mut no_saga = attributed("saga-1", CAMPAIGN, 120_00);
    no_saga.metadata.saga_id = None;
    assert!(matches!(
        app.reserve(&no_saga, Attempt::Retryable).await,
        Err(AppError::NoSaga(_))
    ));
    let mut no_credit = attributed("saga-1", CAMPAIGN, 120_00);
    no_credit.credits.clear();
    assert!(matches!(
        app.reserve(&no_credit, Attempt::Retryable).await,
        Err(AppError::Invalid(_))
    ));
}

#[tokio::test]
async fn fraud_releases_the_reservation_and_is_announced_once() {
    let (app, store) = app();
    campaign(&app, CAMPAIGN, 1_000_00).await;
    app.reserve(&attributed("saga-1", CAMPAIGN, 120_00), Attempt::Retryable)
        .await
        .unwrap();
    let fraud = fraud("saga-1");

    assert_eq!(
        app.revert_for_fraud(&fraud).await.unwrap(),
        Compensated::Reverted {
            released: Some(eur(12_00))
        }
    );
    assert_eq!(
        app.revert_for_fraud(&fraud).await.unwrap(),
        Compensated::AlreadyReverted
    );
    assert_eq!(
        app.revert_for_timeout(&timeout("saga-1")).await.unwrap(),
        Compensated::AlreadyReverted
    );

    let reverted = queued::<CommissionReverted>(&store).await;
    assert_eq!(reverted.len(), 1, "{reverted:?}");
    assert_eq!(reverted[0].released, Some(eur(12_00)));
    assert_eq!(
        reverted[0].commission_id.as_deref(),
        Some("commission-saga-1")
    );
    assert_eq!(reverted[0].campaign_id.as_deref(), Some(CAMPAIGN));
    assert_eq!(
        reverted[0].metadata.causation_id.as_deref(),
        Some(fraud.metadata.event_id.as_str())
    );
    let budget = budget(&app, CAMPAIGN).await;
    assert_eq!((budget.reserved, budget.remaining), (eur(0), eur(1_000_00)));
    let view = app.commission("commission-saga-1").await.unwrap().unwrap();
    assert_eq!(view.status, CommissionStatus::Reverted);
    assert_eq!(
        view.revert_reason.as_deref(),
        Some("fraud reported by tests: stolen card")
    );
}

#[tokio::test]
async fn fraud_before_the_attribution_rejects_the_late_sale_without_touching_the_budget() {
    let (app, store) = app();
    campaign(&app, CAMPAIGN, 1_000_00).await;
    let sale = attributed("saga-1", CAMPAIGN, 120_00);

    assert_eq!(
        app.revert_for_fraud(&fraud("saga-1")).await.unwrap(),
        Compensated::Reverted { released: None }
    );
    for _ in 0..2 {
        assert_eq!(
            app.reserve(&sale, Attempt::Retryable).await.unwrap(),
            CommissionStatus::Reverted
        );
    }
    assert_eq!(
        app.revert_for_timeout(&timeout("saga-1")).await.unwrap(),
        Compensated::AlreadyReverted
    );

    let reverted = queued::<CommissionReverted>(&store).await;
    assert_eq!(reverted.len(), 1);
    assert_eq!(reverted[0].released, None);
    let rejected = queued::<CommissionRejected>(&store).await;
    assert_eq!(rejected.len(), 1);
    assert_eq!(
        rejected[0].reason,
        CommissionRejectionReason::SagaCompensated
    );
    assert!(queued::<CommissionReserved>(&store).await.is_empty());
    assert_eq!(budget(&app, CAMPAIGN).await.reserved, eur(0));
}

#[tokio::test]
async fn a_rejected_sale_is_reverted_with_nothing_released() {
    let (app, store) = app();
    campaign(&app, CAMPAIGN, 5_00).await;
    app.reserve(&attributed("saga-1", CAMPAIGN, 120_00), Attempt::Retryable)
        .await
        .unwrap();

    assert_eq!(
        app.revert_for_fraud(&fraud("saga-1")).await.unwrap(),
        Compensated::Reverted { released: None }
    );
    assert_eq!(
        app.revert_for_fraud(&fraud("saga-1")).await.unwrap(),
        Compensated::AlreadyReverted
    );

    let rejected = queued::<CommissionRejected>(&store).await;
    assert_eq!(
        rejected[0].reason,
        CommissionRejectionReason::BudgetExhausted
    );
    assert_eq!(queued::<CommissionReverted>(&store).await.len(), 1);
}

#[tokio::test]
async fn a_crash_between_attributing_and_reserving_is_resumed_by_the_redelivery() {
    let (app, store) = app();
    campaign(&app, CAMPAIGN, 1_000_00).await;
    let sale = attributed("saga-1", CAMPAIGN, 120_00);
    crashed_after(
        &store,
        "commission-saga-1",
        &[CommissionEvent::Attributed {
            commission_id: "commission-saga-1".to_owned(),
            sale: Sale::from_conversion(&sale).unwrap(),
        }],
    )
    .await;

    assert_eq!(
        app.reserve(&sale, Attempt::Retryable).await.unwrap(),
        CommissionStatus::Reserved
    );
    assert_eq!(queued::<CommissionReserved>(&store).await.len(), 1);
}

#[tokio::test]
async fn a_crash_between_reverting_and_releasing_is_resumed_by_the_redelivery() {
    let (app, store) = app();
    campaign(&app, CAMPAIGN, 1_000_00).await;
    app.reserve(&attributed("saga-1", CAMPAIGN, 120_00), Attempt::Retryable)
        .await
        .unwrap();
    crashed_after(
        &store,
        "commission-saga-1",
        &[CommissionEvent::Reverted {
            reason: "fraud".to_owned(),
            release_from: Some(CAMPAIGN.to_owned()),
        }],
    )
    .await;

    assert_eq!(
        app.revert_for_fraud(&fraud("saga-1")).await.unwrap(),
        Compensated::Reverted {
            released: Some(eur(12_00))
        }
    );
    assert_eq!(queued::<CommissionReverted>(&store).await.len(), 1);
    assert_eq!(budget(&app, CAMPAIGN).await.reserved, eur(0));
}

#[tokio::test]
async fn a_compensation_that_overtakes_a_refusal_is_announced_once() {
    let (app, store) = app();
    campaign(&app, CAMPAIGN, 5_00).await;
    let sale = attributed("saga-1", CAMPAIGN, 120_00);
    // The sale was attributed and refused by the budget, then the process died before the
    // refusal reached the commission; fraud arrives before the redelivery.
    crashed_after(
        &store,
        "commission-saga-1",
        &[CommissionEvent::Attributed {
            commission_id: "commission-saga-1".to_owned(),
            sale: Sale::from_conversion(&sale).unwrap(),
        }],
    )
    .await;
    crashed_after(
        &store,
        &format!("budget-{CAMPAIGN}"),
        &[BudgetEvent::Rejected {
            saga_id: "saga-1".to_owned(),
            commission_id: "commission-saga-1".to_owned(),
            reason: crate::domain::RejectionReason::BudgetExhausted,
            detail: "too much".to_owned(),
        }],
    )
    .await;

    assert_eq!(
        app.revert_for_fraud(&fraud("saga-1")).await.unwrap(),
        Compensated::Reverted { released: None }
    );
    assert_eq!(
        app.revert_for_timeout(&timeout("saga-1")).await.unwrap(),
        Compensated::AlreadyReverted
    );
    assert_eq!(
        app.reserve(&sale, Attempt::Retryable).await.unwrap(),
        CommissionStatus::Reverted
    );

    assert_eq!(queued::<CommissionReverted>(&store).await.len(), 1);
    assert!(queued::<CommissionRejected>(&store).await.is_empty());
}

#[tokio::test]
async fn a_reserved_commission_is_confirmed_once_and_fraud_still_claws_it_back() {
    let (app, store) = app();
    campaign(&app, CAMPAIGN, 1_000_00).await;
    app.reserve(&attributed("saga-1", CAMPAIGN, 120_00), Attempt::Retryable)
        .await
        .unwrap();
    let trace = TraceContext::new_trace();

    for _ in 0..2 {
        let view = app.confirm("commission-saga-1", &trace).await.unwrap();
        assert_eq!(view.status, CommissionStatus::Confirmed);
    }
    let confirmed = queued::<CommissionConfirmed>(&store).await;
    assert_eq!(confirmed.len(), 1);
    assert_eq!(confirmed[0].amount, eur(12_00));
    assert_eq!(
        confirmed[0].metadata.traceparent.as_deref(),
        Some(trace.traceparent.as_str())
    );
    assert_eq!(budget(&app, CAMPAIGN).await.reserved, eur(12_00));

    assert_eq!(
        app.revert_for_fraud(&fraud("saga-1")).await.unwrap(),
        Compensated::Reverted {
            released: Some(eur(12_00))
        }
    );
    assert!(matches!(
        app.confirm("commission-saga-1", &trace).await,
        Err(AppError::Invalid(DomainError::NotReserved(
            CommissionStatus::Reverted
        )))
    ));
    assert!(matches!(
        app.confirm("commission-nope", &trace).await,
        Err(AppError::UnknownCommission(_))
    ));
    assert!(matches!(
        app.confirm("budget-spring", &trace).await,
        Err(AppError::UnknownCommission(_))
    ));
}

#[tokio::test]
async fn commissions_are_listed_by_campaign_and_status_a_page_at_a_time() {
    let (app, _) = app();
    campaign(&app, CAMPAIGN, 1_000_00).await;
    campaign(&app, "autumn", 1_000_00).await;
    for saga in ["saga-a", "saga-b", "saga-c"] {
        app.reserve(&attributed(saga, CAMPAIGN, 120_00), Attempt::Retryable)
            .await
            .unwrap();
    }
    app.reserve(&attributed("saga-d", "autumn", 120_00), Attempt::Retryable)
        .await
        .unwrap();
    app.revert_for_fraud(&fraud("saga-b")).await.unwrap();
    let filter = |status, after: Option<&str>, limit| CommissionFilter {
        campaign: Some(CAMPAIGN.to_owned()),
        status,
        after: after.map(str::to_owned),
        limit,
    };
    let ids = |page: &CommissionPage| -> Vec<String> {
        page.items.iter().map(|v| v.commission_id.clone()).collect()
    };

    let reserved = app
        .commissions(&filter(Some(CommissionStatus::Reserved), None, 10))
        .await
        .unwrap();
    assert_eq!(ids(&reserved), ["commission-saga-a", "commission-saga-c"]);
    assert_eq!(reserved.next_cursor, None);

    let first = app.commissions(&filter(None, None, 2)).await.unwrap();
    assert_eq!(ids(&first), ["commission-saga-a", "commission-saga-b"]);
    let cursor = first.next_cursor.as_deref();
    assert_eq!(cursor, Some("commission-saga-b"));
    let second = app.commissions(&filter(None, cursor, 2)).await.unwrap();
    assert_eq!(ids(&second), ["commission-saga-c"]);
    assert_eq!(second.next_cursor, None);
}

#[tokio::test]
async fn a_sale_of_a_campaign_still_unknown_on_the_last_attempt_is_rejected_not_dead_lettered() {
    let (app, store) = app();
    let sale = attributed("saga-1", "nowhere", 120_00);
    assert!(matches!(
        app.reserve(&sale, Attempt::Retryable).await,
        Err(AppError::CampaignUnknown(_))
    ));
    assert_eq!(
        app.reserve(&sale, Attempt::Last).await.unwrap(),
        CommissionStatus::Rejected
    );
    // A redelivery answers nothing new.
    app.reserve(&sale, Attempt::Last).await.unwrap();
    let [rejected] = &queued::<CommissionRejected>(&store).await[..] else {
        panic!("one CommissionRejected expected");
    };
    assert_eq!(rejected.reason, CommissionRejectionReason::CampaignUnknown);
    assert_eq!(rejected.metadata.saga_id.as_deref(), Some("saga-1"));
    // Its compensation still ends the saga: reverted, nothing released.
    app.revert_for_timeout(&timeout("saga-1")).await.unwrap();
    let [reverted] = &queued::<CommissionReverted>(&store).await[..] else {
        panic!("one CommissionReverted expected");
    };
    assert_eq!(reverted.released, None);
}

#[tokio::test]
async fn a_sale_in_another_currency_than_its_budget_is_rejected_not_dead_lettered() {
    let (app, store) = app();
    campaign(&app, CAMPAIGN, 1_000_00).await;
    let mut dollars = attributed("saga-1", CAMPAIGN, 120_00);
    dollars.amount = Money::new(120_00, "USD");
    assert_eq!(
        app.reserve(&dollars, Attempt::Retryable).await.unwrap(),
        CommissionStatus::Rejected
    );
    let [rejected] = &queued::<CommissionRejected>(&store).await[..] else {
        panic!("one CommissionRejected expected");
    };
    assert!(rejected.detail.contains("USD"), "{}", rejected.detail);
    assert_eq!(budget(&app, CAMPAIGN).await.reserved.amount_minor, 0);
}

/// The sweeper and the reservation race: whichever message commission sees first, a timeout
/// whose deadline is at or after the reservation changes nothing, and one whose deadline came
/// before it reverts the sale.
#[tokio::test]
async fn a_timeout_racing_the_reservation_is_void_exactly_when_the_reservation_was_in_time() {
    // The reservation first, then a timeout whose deadline is its own time or later: void.
    let (app, store) = app();
    campaign(&app, CAMPAIGN, 1_000_00).await;
    app.reserve(&attributed("saga-1", CAMPAIGN, 120_00), Attempt::Retryable)
        .await
        .unwrap();
    let [reserved] = &queued::<CommissionReserved>(&store).await[..] else {
        panic!("one CommissionReserved expected");
    };
    let mut late_announcement = timeout("saga-1");
    late_announcement.deadline = reserved.metadata.occurred_at;
    assert_eq!(
        app.revert_for_timeout(&late_announcement).await.unwrap(),
        Compensated::TimeoutVoid
    );
    late_announcement.deadline = reserved.metadata.occurred_at + chrono::Duration::seconds(5);
    assert_eq!(
        app.revert_for_timeout(&late_announcement).await.unwrap(),
        Compensated::TimeoutVoid
    );
    assert!(queued::<CommissionReverted>(&store).await.is_empty());
    assert_eq!(budget(&app, CAMPAIGN).await.reserved.amount_minor, 12_00);

    // A deadline before the reservation: the timeout stands and the reservation goes back.
    let mut in_time = timeout("saga-1");
    in_time.deadline = reserved.metadata.occurred_at - chrono::Duration::microseconds(1);
    assert!(matches!(
        app.revert_for_timeout(&in_time).await.unwrap(),
        Compensated::Reverted { released: Some(_) }
    ));
    assert_eq!(budget(&app, CAMPAIGN).await.reserved.amount_minor, 0);

    // The timeout first: the saga closes and the late sale never reaches the budget.
    let (app, store) = app_with_campaign().await;
    app.revert_for_timeout(&timeout("saga-2")).await.unwrap();
    app.reserve(&attributed("saga-2", CAMPAIGN, 120_00), Attempt::Retryable)
        .await
        .unwrap();
    assert!(queued::<CommissionReserved>(&store).await.is_empty());
    assert_eq!(budget(&app, CAMPAIGN).await.reserved.amount_minor, 0);
}

async fn app_with_campaign() -> (Commissions<MemoryStore>, MemoryStore) {
    let (app, store) = app();
    campaign(&app, CAMPAIGN, 1_000_00).await;
    (app, store)
}
