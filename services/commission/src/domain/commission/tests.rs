//! The commission's rules, given/when/then, and the property that compensation is final.

use proptest::prelude::*;

use super::*;
use alpes_aggregate::given;

const SAGA: &str = "saga-1";

fn eur(amount_minor: i64) -> Money {
    Money::new(amount_minor, "EUR")
}

fn sale() -> Sale {
    Sale {
        campaign_id: "spring-sale".to_owned(),
        partner_id: "partner-7".to_owned(),
        order_id: "order-42".to_owned(),
        amount: eur(120_00),
    }
}

fn attribute() -> CommissionCommand {
    CommissionCommand::Attribute {
        saga_id: SAGA.to_owned(),
        sale: sale(),
    }
}

fn attributed() -> CommissionEvent {
    CommissionEvent::Attributed {
        commission_id: "commission-saga-1".to_owned(),
        sale: sale(),
    }
}

/// `second` seconds into the test's day.
fn at(second: i64) -> Timestamp {
    chrono::DateTime::from_timestamp(1_800_000_000 + second, 0).unwrap()
}

fn reserved() -> CommissionEvent {
    CommissionEvent::Reserved {
        amount: eur(10_00),
        budget_remaining: eur(90_00),
        reserved_at: Some(at(10)),
    }
}

fn rejected(reason: RejectionReason, detail: &str) -> CommissionEvent {
    CommissionEvent::Rejected {
        sale: sale(),
        reason,
        detail: detail.to_owned(),
    }
}

fn compensate() -> CommissionCommand {
    CommissionCommand::Compensate {
        reason: "fraud".to_owned(),
        deadline: None,
    }
}

fn time_out(deadline: Timestamp) -> CommissionCommand {
    CommissionCommand::Compensate {
        reason: "fraud".to_owned(),
        deadline: Some(deadline),
    }
}

fn reverted(release_from: Option<&str>) -> CommissionEvent {
    CommissionEvent::Reverted {
        reason: "fraud".to_owned(),
        release_from: release_from.map(str::to_owned),
    }
}

#[test]
fn an_attributed_sale_waits_for_the_budget() {
    let commission = given::<Commission>([])
        .when(attribute())
        .then([attributed()]);

    assert_eq!(commission.status(), CommissionStatus::Pending);
    assert_eq!(commission.commission_id(), Some("commission-saga-1"));
}

#[test]
fn a_redelivered_attribution_decides_nothing() {
    given::<Commission>([attributed()])
        .when(attribute())
        .then_nothing();
    given::<Commission>([attributed(), reserved()])
        .when(attribute())
        .then_nothing();
}

#[test]
fn the_budget_reservation_is_recorded() {
    let commission = given::<Commission>([attributed()])
        .when(CommissionCommand::RecordReserved {
            amount: eur(10_00),
            budget_remaining: eur(90_00),
            at: at(10),
        })
        .then([reserved()]);

    assert_eq!(commission.status(), CommissionStatus::Reserved);
    assert_eq!(commission.amount(), Some(&eur(10_00)));
}

#[test]
fn the_budget_rejection_is_recorded() {
    let commission = given::<Commission>([attributed()])
        .when(CommissionCommand::RecordRejected {
            reason: RejectionReason::BudgetExhausted,
            detail: "no money left".to_owned(),
        })
        .then([rejected(RejectionReason::BudgetExhausted, "no money left")]);

    assert_eq!(commission.status(), CommissionStatus::Rejected);
}

#[test]
fn a_budget_answer_without_an_attribution_is_refused() {
    given::<Commission>([])
        .when(CommissionCommand::RecordReserved {
            amount: eur(10_00),
            budget_remaining: eur(90_00),
            at: at(10),
        })
        .then_error(DomainError::NotAttributed);
}

#[test]
fn a_budget_answer_after_compensation_decides_nothing() {
    given::<Commission>([attributed(), reverted(Some("spring-sale"))])
        .when(CommissionCommand::RecordReserved {
            amount: eur(10_00),
            budget_remaining: eur(90_00),
            at: at(10),
        })
        .then_nothing();
}

#[test]
fn fraud_before_reservation_then_a_late_attribution_is_rejected_saga_compensated() {
    let commission = given::<Commission>([])
        .when(compensate())
        .then([reverted(None)]);
    assert_eq!(commission.status(), CommissionStatus::Reverted);
    assert_eq!(commission.release_from(), None, "nothing to release");

    let commission = given::<Commission>([reverted(None)])
        .when(attribute())
        .then([rejected(
            RejectionReason::SagaCompensated,
            "saga saga-1 was compensated before its sale was attributed",
        )]);
    assert_eq!(commission.status(), CommissionStatus::Reverted);
    assert_eq!(commission.amount(), None, "never reserved");

    given::<Commission>([
        reverted(None),
        rejected(RejectionReason::SagaCompensated, "x"),
    ])
    .when(attribute())
    .then_nothing();
}

#[test]
fn compensating_twice_decides_nothing() {
    given::<Commission>([attributed(), reserved(), reverted(Some("spring-sale"))])
        .when(compensate())
        .then_nothing();
    given::<Commission>([reverted(None)])
        .when(compensate())
        .then_nothing();
}

#[test]
fn compensating_a_reserved_commission_releases_it_from_its_campaign() {
    let commission = given::<Commission>([attributed(), reserved()])
        .when(compensate())
        .then([reverted(Some("spring-sale"))]);

    assert_eq!(commission.release_from(), Some("spring-sale"));
}

#[test]
fn compensating_a_pending_commission_asks_its_campaign_to_release_whatever_it_holds() {
    given::<Commission>([attributed()])
        .when(compensate())
        .then([reverted(Some("spring-sale"))]);
}

#[test]
fn compensating_a_rejected_commission_reverts_with_nothing_released() {
    given::<Commission>([
        attributed(),
        rejected(RejectionReason::CampaignInactive, "paused"),
    ])
    .when(compensate())
    .then([reverted(None)]);
}

#[test]
fn fraud_claws_back_a_confirmed_commission() {
    given::<Commission>([
        attributed(),
        reserved(),
        CommissionEvent::Confirmed { amount: eur(10_00) },
    ])
    .when(compensate())
    .then([reverted(Some("spring-sale"))]);
}

#[test]
fn only_a_reserved_commission_is_confirmed() {
    let commission = given::<Commission>([attributed(), reserved()])
        .when(CommissionCommand::Confirm)
        .then([CommissionEvent::Confirmed { amount: eur(10_00) }]);
    assert_eq!(commission.status(), CommissionStatus::Confirmed);

    given::<Commission>([
        attributed(),
        reserved(),
        CommissionEvent::Confirmed { amount: eur(10_00) },
    ])
    .when(CommissionCommand::Confirm)
    .then_nothing();
    given::<Commission>([attributed()])
        .when(CommissionCommand::Confirm)
        .then_error(DomainError::NotReserved(CommissionStatus::Pending));
    given::<Commission>([attributed(), reserved(), reverted(Some("spring-sale"))])
        .when(CommissionCommand::Confirm)
        .then_error(DomainError::NotReserved(CommissionStatus::Reverted));
}

#[test]
fn a_sale_with_a_negative_amount_is_refused() {
    given::<Commission>([])
        .when(CommissionCommand::Attribute {
            saga_id: SAGA.to_owned(),
            sale: Sale {
                amount: eur(-1),
                ..sale()
            },
        })
        .then_error(DomainError::NegativeAmount {
            what: "sale",
            amount_minor: -1,
        });
}

#[test]
fn commission_events_read_back_from_json() {
    let events = [
        attributed(),
        reserved(),
        rejected(RejectionReason::SagaCompensated, "late"),
        CommissionEvent::Confirmed { amount: eur(10_00) },
        reverted(Some("spring-sale")),
    ];
    for event in events {
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["type"], event.kind().trim_start_matches("Commission"));
        assert_eq!(
            serde_json::from_value::<CommissionEvent>(json).unwrap(),
            event
        );
    }
}

fn any_command() -> impl Strategy<Value = CommissionCommand> {
    prop_oneof![
        Just(attribute()),
        Just(CommissionCommand::RecordReserved {
            amount: eur(10_00),
            budget_remaining: eur(90_00),
            at: at(10),
        }),
        Just(CommissionCommand::RecordRejected {
            reason: RejectionReason::BudgetExhausted,
            detail: "no money left".to_owned(),
        }),
        Just(CommissionCommand::Confirm),
        Just(compensate()),
        Just(time_out(at(5))),
        Just(time_out(at(10))),
    ]
}

proptest! {
    #[test]
    fn once_compensated_a_commission_stays_reverted_and_reserves_nothing_more(
        commands in proptest::collection::vec(any_command(), 0..20),
    ) {
        let mut commission = Commission::default();
        let mut reverted_holding: Option<Option<Money>> = None;
        for command in commands {
            let Ok(events) = commission.decide(command) else { continue };
            for event in &events {
                commission.apply(event);
            }
            if let Some(amount) = &reverted_holding {
                prop_assert_eq!(commission.status(), CommissionStatus::Reverted);
                prop_assert_eq!(commission.amount(), amount.as_ref());
            } else if commission.status() == CommissionStatus::Reverted {
                reverted_holding = Some(commission.amount().cloned());
            }
        }
    }
}

#[test]
fn a_timeout_whose_deadline_is_at_or_after_the_reservation_is_void() {
    for deadline in [at(10), at(11), at(1_000)] {
        let commission = given::<Commission>([attributed(), reserved()])
            .when(time_out(deadline))
            .then_nothing();
        assert_eq!(commission.status(), CommissionStatus::Reserved);
    }
    let confirmed = CommissionEvent::Confirmed { amount: eur(10_00) };
    given::<Commission>([attributed(), reserved(), confirmed])
        .when(time_out(at(10)))
        .then_nothing();
}

#[test]
fn a_timeout_whose_deadline_came_before_the_reservation_reverts_it() {
    let commission = given::<Commission>([attributed(), reserved()])
        .when(time_out(at(9)))
        .then([reverted(Some("spring-sale"))]);
    assert_eq!(commission.status(), CommissionStatus::Reverted);
}

#[test]
fn a_timeout_before_any_reservation_reverts_and_fraud_is_never_void() {
    given::<Commission>([attributed()])
        .when(time_out(at(1_000)))
        .then([reverted(Some("spring-sale"))]);
    given::<Commission>([])
        .when(time_out(at(1_000)))
        .then([reverted(None)]);
    given::<Commission>([attributed(), reserved()])
        .when(compensate())
        .then([reverted(Some("spring-sale"))]);
}

#[test]
fn a_reservation_stored_without_its_time_outlives_any_timeout() {
    let untimed = CommissionEvent::Reserved {
        amount: eur(10_00),
        budget_remaining: eur(90_00),
        reserved_at: None,
    };
    let stored = serde_json::json!({
        "type": "Reserved",
        "amount": {"amount_minor": 1000, "currency": "EUR"},
        "budget_remaining": {"amount_minor": 9000, "currency": "EUR"},
    });
    assert_eq!(
        serde_json::from_value::<CommissionEvent>(stored).unwrap(),
        untimed
    );
    given::<Commission>([attributed(), untimed])
        .when(time_out(at(0)))
        .then_nothing();
}

#[test]
fn a_sale_of_an_unknown_campaign_is_refused_once_and_a_compensated_saga_stays_so() {
    let refuse = CommissionCommand::Refuse {
        saga_id: SAGA.to_owned(),
        sale: sale(),
        reason: RejectionReason::CampaignUnknown,
        detail: "campaign spring-sale is not known".to_owned(),
    };
    let commission = given::<Commission>([]).when(refuse.clone()).then([rejected(
        RejectionReason::CampaignUnknown,
        "campaign spring-sale is not known",
    )]);
    assert_eq!(commission.status(), CommissionStatus::Rejected);
    let refused = rejected(
        RejectionReason::CampaignUnknown,
        "campaign spring-sale is not known",
    );
    given::<Commission>([refused])
        .when(refuse.clone())
        .then_nothing();
    let commission = given::<Commission>([reverted(None)])
        .when(refuse)
        .then([rejected(
            RejectionReason::SagaCompensated,
            "saga saga-1 was compensated before its sale was attributed",
        )]);
    assert_eq!(commission.status(), CommissionStatus::Reverted);
}

#[test]
fn a_commission_id_leads_back_to_its_saga() {
    let id = Commission::id_for(SAGA);

    assert_eq!(Commission::saga_of(&id), Some(SAGA));
    assert_eq!(Commission::saga_of("commission-"), None);
    assert_eq!(Commission::saga_of("budget-spring"), None);
}
