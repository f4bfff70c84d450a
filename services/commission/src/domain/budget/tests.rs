//! The budget's rules, given/when/then.

use alpes_contracts::events::commission::CommissionKind;
use chrono::DateTime;

use super::*;
use crate::domain::DomainEvent;
use alpes_aggregate::given;

const CAMPAIGN: &str = "spring-sale";

fn eur(amount_minor: i64) -> Money {
    Money::new(amount_minor, "EUR")
}

fn at(second: i64) -> Timestamp {
    DateTime::from_timestamp(second, 0).unwrap()
}

/// 10 % of the sale, at least 5.00 and at most 10.00.
fn ten_percent() -> CommissionTerms {
    CommissionTerms {
        kind: CommissionKind::Percentage,
        percentage_bps: Some(1_000),
        fixed_minor: None,
        minimum_minor: 5_00,
        maximum_minor: Some(10_00),
    }
}

fn opened(budget_minor: i64) -> BudgetEvent {
    BudgetEvent::Opened {
        campaign_id: CAMPAIGN.to_owned(),
        budget: eur(budget_minor),
        terms: Terms::try_from(ten_percent()).unwrap(),
    }
}

fn activated() -> BudgetEvent {
    BudgetEvent::Activated { at: at(1) }
}

fn reserve(saga: &str, sale_minor: i64) -> BudgetCommand {
    BudgetCommand::Reserve {
        saga_id: saga.to_owned(),
        commission_id: format!("commission-{saga}"),
        sale: eur(sale_minor),
    }
}

fn reserved(saga: &str, sale_minor: i64, amount: i64, remaining: i64) -> BudgetEvent {
    BudgetEvent::Reserved {
        saga_id: saga.to_owned(),
        commission_id: format!("commission-{saga}"),
        sale: eur(sale_minor),
        amount: eur(amount),
        remaining: eur(remaining),
    }
}

fn rejected(saga: &str, reason: RejectionReason, detail: &str) -> BudgetEvent {
    BudgetEvent::Rejected {
        saga_id: saga.to_owned(),
        commission_id: format!("commission-{saga}"),
        reason,
        detail: detail.to_owned(),
    }
}

fn release(saga: &str) -> BudgetCommand {
    BudgetCommand::Release {
        saga_id: saga.to_owned(),
    }
}

fn confirm(saga: &str) -> BudgetCommand {
    BudgetCommand::Confirm {
        saga_id: saga.to_owned(),
    }
}

#[test]
fn a_created_campaign_opens_its_budget_inactive() {
    let budget = given::<CampaignBudget>([])
        .when(BudgetCommand::Open {
            campaign_id: CAMPAIGN.to_owned(),
            budget: eur(100_00),
            terms: ten_percent(),
        })
        .then([opened(100_00)]);

    assert_eq!(budget.status(), CampaignStatus::Created);
    assert_eq!(budget.remaining_minor(), 100_00);
}

#[test]
fn a_duplicate_creation_changes_nothing() {
    given::<CampaignBudget>([opened(100_00)])
        .when(BudgetCommand::Open {
            campaign_id: CAMPAIGN.to_owned(),
            budget: eur(999_00),
            terms: ten_percent(),
        })
        .then_nothing();
}

#[test]
fn a_budget_with_invalid_terms_or_money_is_not_opened() {
    let open = |budget, terms| BudgetCommand::Open {
        campaign_id: CAMPAIGN.to_owned(),
        budget,
        terms,
    };

    given::<CampaignBudget>([])
        .when(open(
            eur(100_00),
            CommissionTerms {
                maximum_minor: Some(1_00),
                ..ten_percent()
            },
        ))
        .then_error(DomainError::MinimumAboveMaximum {
            minimum_minor: 5_00,
            maximum_minor: 1_00,
        });
    given::<CampaignBudget>([])
        .when(open(eur(-1), ten_percent()))
        .then_error(DomainError::NegativeAmount {
            what: "budget",
            amount_minor: -1,
        });
    given::<CampaignBudget>([])
        .when(open(Money::new(100_00, "euro"), ten_percent()))
        .then_error(DomainError::InvalidCurrency("euro".to_owned()));
}

#[test]
fn a_commission_within_the_budget_is_reserved() {
    let budget = given::<CampaignBudget>([opened(100_00), activated()])
        .when(reserve("saga-1", 120_00))
        .then([reserved("saga-1", 120_00, 10_00, 90_00)]);

    assert_eq!(budget.reserved_minor(), 10_00);
    assert_eq!(budget.remaining_minor(), 90_00);
    assert!(matches!(
        budget.entry("saga-1"),
        Some(BudgetEntry::Held(held)) if held.amount == eur(10_00)
    ));
}

#[test]
fn a_commission_beyond_what_remains_is_rejected_budget_exhausted() {
    let budget = given::<CampaignBudget>([
        opened(15_00),
        activated(),
        reserved("saga-1", 120_00, 10_00, 5_00),
    ])
    .when(reserve("saga-2", 120_00))
    .then([rejected(
        "saga-2",
        RejectionReason::BudgetExhausted,
        "a commission of 1000 minor units of EUR exceeds the 500 left of campaign spring-sale",
    )]);

    assert_eq!(budget.remaining_minor(), 5_00, "no partial reservation");
}

#[test]
fn a_commission_using_exactly_what_remains_is_reserved() {
    given::<CampaignBudget>([opened(10_00), activated()])
        .when(reserve("saga-1", 120_00))
        .then([reserved("saga-1", 120_00, 10_00, 0)]);
}

#[test]
fn a_paused_campaign_rejects_campaign_inactive() {
    given::<CampaignBudget>([
        opened(100_00),
        activated(),
        BudgetEvent::Paused { at: at(2) },
    ])
    .when(reserve("saga-1", 120_00))
    .then([rejected(
        "saga-1",
        RejectionReason::CampaignInactive,
        "campaign spring-sale is Paused",
    )]);
}

#[test]
fn a_campaign_never_activated_rejects_campaign_inactive() {
    given::<CampaignBudget>([opened(100_00)])
        .when(reserve("saga-1", 120_00))
        .then([rejected(
            "saga-1",
            RejectionReason::CampaignInactive,
            "campaign spring-sale is Created",
        )]);
}

#[test]
fn an_unknown_campaign_rejects_campaign_unknown() {
    given::<CampaignBudget>([activated()])
        .when(reserve("saga-1", 120_00))
        .then([rejected(
            "saga-1",
            RejectionReason::CampaignUnknown,
            "the campaign is not known",
        )]);
}

#[test]
fn a_second_reserve_for_the_same_saga_decides_nothing() {
    given::<CampaignBudget>([
        opened(100_00),
        activated(),
        reserved("saga-1", 120_00, 10_00, 90_00),
    ])
    .when(reserve("saga-1", 120_00))
    .then_nothing();
}

#[test]
fn a_saga_once_rejected_stays_rejected() {
    given::<CampaignBudget>([
        opened(100_00),
        rejected("saga-1", RejectionReason::CampaignInactive, "x"),
        activated(),
    ])
    .when(reserve("saga-1", 120_00))
    .then_nothing();
}

#[test]
fn a_sale_in_another_currency_is_rejected_with_the_reason() {
    let budget = given::<CampaignBudget>([opened(100_00), activated()])
        .when(BudgetCommand::Reserve {
            saga_id: "saga-1".to_owned(),
            commission_id: "commission-saga-1".to_owned(),
            sale: Money::new(120_00, "USD"),
        })
        .then([BudgetEvent::Rejected {
            saga_id: "saga-1".to_owned(),
            commission_id: "commission-saga-1".to_owned(),
            reason: RejectionReason::CampaignUnknown,
            detail: "the sale is in USD, campaign spring-sale pays in EUR".to_owned(),
        }]);
    assert_eq!(budget.reserved_minor(), 0);
}

#[test]
fn releasing_returns_the_amount_and_frees_the_budget() {
    let budget = given::<CampaignBudget>([
        opened(100_00),
        activated(),
        reserved("saga-1", 120_00, 10_00, 90_00),
    ])
    .when(release("saga-1"))
    .then([BudgetEvent::Released {
        saga_id: "saga-1".to_owned(),
        commission_id: "commission-saga-1".to_owned(),
        amount: eur(10_00),
    }]);

    assert_eq!(budget.remaining_minor(), 100_00);
    assert_eq!(budget.reserved_minor(), 0);
}

#[test]
fn releasing_twice_decides_nothing() {
    given::<CampaignBudget>([
        opened(100_00),
        activated(),
        reserved("saga-1", 120_00, 10_00, 90_00),
        BudgetEvent::Released {
            saga_id: "saga-1".to_owned(),
            commission_id: "commission-saga-1".to_owned(),
            amount: eur(10_00),
        },
    ])
    .when(release("saga-1"))
    .then_nothing();
}

#[test]
fn releasing_a_saga_that_holds_nothing_closes_it_so_it_never_reserves() {
    let closed = BudgetEvent::Closed {
        saga_id: "saga-1".to_owned(),
    };
    let budget = given::<CampaignBudget>([opened(100_00), activated()])
        .when(release("saga-1"))
        .then([closed.clone()]);
    assert_eq!(budget.remaining_minor(), 100_00, "nothing released");

    given::<CampaignBudget>([opened(100_00), activated(), closed])
        .when(reserve("saga-1", 120_00))
        .then_nothing();
}

#[test]
fn releasing_a_rejected_saga_decides_nothing() {
    given::<CampaignBudget>([
        opened(100_00),
        rejected("saga-1", RejectionReason::CampaignInactive, "x"),
    ])
    .when(release("saga-1"))
    .then_nothing();
}

#[test]
fn a_confirmed_commission_stays_counted_until_released() {
    let budget = given::<CampaignBudget>([
        opened(100_00),
        activated(),
        reserved("saga-1", 120_00, 10_00, 90_00),
    ])
    .when(confirm("saga-1"))
    .then([BudgetEvent::Confirmed {
        saga_id: "saga-1".to_owned(),
        commission_id: "commission-saga-1".to_owned(),
        amount: eur(10_00),
    }]);

    assert_eq!(budget.remaining_minor(), 90_00);
    assert!(matches!(
        budget.entry("saga-1"),
        Some(BudgetEntry::Confirmed(_))
    ));
}

#[test]
fn confirming_twice_decides_nothing_and_without_a_reservation_is_refused() {
    given::<CampaignBudget>([
        opened(100_00),
        activated(),
        reserved("saga-1", 120_00, 10_00, 90_00),
        BudgetEvent::Confirmed {
            saga_id: "saga-1".to_owned(),
            commission_id: "commission-saga-1".to_owned(),
            amount: eur(10_00),
        },
    ])
    .when(confirm("saga-1"))
    .then_nothing();

    given::<CampaignBudget>([opened(100_00), activated()])
        .when(confirm("saga-2"))
        .then_error(DomainError::NothingReserved {
            saga_id: "saga-2".to_owned(),
        });
}

#[test]
fn a_status_change_older_than_the_current_one_is_ignored() {
    let budget = given::<CampaignBudget>([opened(100_00), BudgetEvent::Activated { at: at(10) }])
        .when(BudgetCommand::Pause { at: at(5) })
        .then_nothing();

    assert_eq!(budget.status(), CampaignStatus::Active);
}

#[test]
fn an_activation_that_arrives_before_the_creation_is_kept() {
    let budget = given::<CampaignBudget>([activated()])
        .when(BudgetCommand::Open {
            campaign_id: CAMPAIGN.to_owned(),
            budget: eur(100_00),
            terms: ten_percent(),
        })
        .then([opened(100_00)]);

    assert_eq!(budget.status(), CampaignStatus::Active);
}

#[test]
fn a_completed_campaign_is_never_active_again() {
    given::<CampaignBudget>([
        opened(100_00),
        activated(),
        BudgetEvent::Completed { at: at(5) },
    ])
    .when(BudgetCommand::Activate { at: at(9) })
    .then_nothing();

    given::<CampaignBudget>([opened(100_00), BudgetEvent::Activated { at: at(9) }])
        .when(BudgetCommand::Complete { at: at(5) })
        .then([BudgetEvent::Completed { at: at(5) }]);
}

#[test]
fn budget_events_read_back_from_json() {
    let events = [
        opened(100_00),
        activated(),
        reserved("saga-1", 120_00, 10_00, 90_00),
        rejected("saga-2", RejectionReason::BudgetExhausted, "x"),
        BudgetEvent::Closed {
            saga_id: "saga-3".to_owned(),
        },
    ];
    for event in events {
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["type"], event.kind().trim_start_matches("Budget"));
        assert_eq!(serde_json::from_value::<BudgetEvent>(json).unwrap(), event);
    }
}

/// How version 1 stored `BudgetOpened`: the terms in the contract's shape of that time.
fn opened_v1(terms: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "type": "Opened",
        "campaign_id": CAMPAIGN,
        "budget": { "amount_minor": 1_000_00, "currency": "EUR" },
        "terms": terms,
    })
}

#[test]
fn a_budget_opened_by_version_1_replays_as_the_same_budget() {
    let v1 = opened_v1(serde_json::json!({
        "kind": "PERCENTAGE",
        "percentage_bps": 1_000,
        "fixed_minor": null,
        "minimum_minor": 5_00,
        "maximum_minor": 10_00,
    }));
    let read = alpes_aggregate::read::<BudgetEvent>("BudgetOpened", 1, &v1).unwrap();
    assert_eq!(read, opened(1_000_00));
    // The events version 1 stored around it read unchanged, and the budget folds the same.
    let v1_reserved = serde_json::to_value(reserved("saga-1", 120_00, 10_00, 990_00)).unwrap();
    let reserved_read = alpes_aggregate::read::<BudgetEvent>("BudgetReserved", 1, &v1_reserved);
    let replayed = CampaignBudget::from_events(&[read, reserved_read.unwrap()]);
    let today =
        CampaignBudget::from_events(&[opened(1_000_00), reserved("saga-1", 120_00, 10_00, 990_00)]);
    assert_eq!(replayed, today);
    assert_eq!(replayed.remaining_minor(), 990_00);

    // Today's shape is the domain's own: a rate tagged with its kind.
    let stored = serde_json::to_value(opened(1_000_00)).unwrap();
    assert_eq!(
        stored["terms"]["rate"],
        serde_json::json!({ "kind": "PERCENTAGE", "bps": 1_000 })
    );
    assert_eq!(BudgetEvent::VERSION, 2);
}

#[test]
fn fixed_terms_of_version_1_read_too_and_broken_ones_are_an_error() {
    let fixed = opened_v1(serde_json::json!({
        "kind": "FIXED", "percentage_bps": null, "fixed_minor": 7_00,
        "minimum_minor": 0, "maximum_minor": null,
    }));
    let BudgetEvent::Opened { terms, .. } =
        alpes_aggregate::read::<BudgetEvent>("BudgetOpened", 1, &fixed).unwrap()
    else {
        panic!("not an opening");
    };
    assert_eq!(
        terms.rate(),
        crate::domain::Rate::Fixed { amount_minor: 7_00 }
    );

    let without_rate = opened_v1(serde_json::json!({
        "kind": "FIXED", "percentage_bps": null, "fixed_minor": null,
        "minimum_minor": 0, "maximum_minor": null,
    }));
    assert!(alpes_aggregate::read::<BudgetEvent>("BudgetOpened", 1, &without_rate).is_err());
    let from_the_future = serde_json::to_value(opened(1_000_00)).unwrap();
    assert!(alpes_aggregate::read::<BudgetEvent>("BudgetOpened", 3, &from_the_future).is_err());
}
