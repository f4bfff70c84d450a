//! Whatever happens to a budget, it is never overspent and its books always balance.

use chrono::DateTime;
use proptest::prelude::*;

use super::*;
use crate::domain::terms::{Rate, WHOLE_BPS};

const SAGAS: u8 = 6;

#[derive(Debug, Clone)]
enum Step {
    Reserve { saga: u8, sale_minor: i64 },
    Release { saga: u8 },
    Confirm { saga: u8 },
    Pause,
    Activate,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..SAGAS, 0..=1_000_000_i64)
            .prop_map(|(saga, sale_minor)| Step::Reserve { saga, sale_minor }),
        2 => (0..SAGAS).prop_map(|saga| Step::Release { saga }),
        2 => (0..SAGAS).prop_map(|saga| Step::Confirm { saga }),
        1 => Just(Step::Pause),
        1 => Just(Step::Activate),
    ]
}

fn terms() -> impl Strategy<Value = CommissionTerms> {
    let rate = prop_oneof![
        (0..=WHOLE_BPS).prop_map(|bps| Rate::Percentage { bps }),
        (0..=100_000_i64).prop_map(|amount_minor| Rate::Fixed { amount_minor }),
    ];
    (rate, 0..=10_000_i64, proptest::option::of(0..=200_000_i64)).prop_map(
        |(rate, minimum, extra)| {
            Terms::new(rate, minimum, extra.map(|extra| minimum + extra))
                .unwrap()
                .into()
        },
    )
}

fn saga(n: u8) -> String {
    format!("saga-{n}")
}

fn command(step: &Step, second: i64) -> BudgetCommand {
    let at = DateTime::from_timestamp(second, 0).unwrap();
    match *step {
        Step::Reserve {
            saga: n,
            sale_minor,
        } => BudgetCommand::Reserve {
            saga_id: saga(n),
            commission_id: format!("commission-{n}"),
            sale: Money::new(sale_minor, "EUR"),
        },
        Step::Release { saga: n } => BudgetCommand::Release { saga_id: saga(n) },
        Step::Confirm { saga: n } => BudgetCommand::Confirm { saga_id: saga(n) },
        Step::Pause => BudgetCommand::Pause { at },
        Step::Activate => BudgetCommand::Activate { at },
    }
}

fn held_by_sagas(budget: &CampaignBudget) -> i64 {
    (0..SAGAS)
        .filter_map(|n| match budget.entry(&saga(n)) {
            Some(BudgetEntry::Held(r) | BudgetEntry::Confirmed(r)) => Some(r.amount.amount_minor),
            _ => None,
        })
        .sum()
}

proptest! {
    #[test]
    fn a_budget_is_never_overspent(
        total in 0..=2_000_000_i64,
        terms in terms(),
        steps in proptest::collection::vec(step(), 0..60),
    ) {
        let mut budget = CampaignBudget::default();
        let mut history = vec![];
        let opening = [
            BudgetCommand::Open {
                campaign_id: "campaign".to_owned(),
                budget: Money::new(total, "EUR"),
                terms,
            },
            BudgetCommand::Activate { at: DateTime::from_timestamp(0, 0).unwrap() },
        ];
        let commands = opening
            .into_iter()
            .chain(steps.iter().zip(1..).map(|(step, second)| command(step, second)));

        for command in commands {
            // A refused command (confirming what is not held) changes nothing; that is its rule.
            let Ok(events) = budget.decide(command) else { continue };
            for event in &events {
                budget.apply(event);
            }
            history.extend(events);

            prop_assert!(budget.reserved_minor() <= total);
            prop_assert!(budget.remaining_minor() >= 0);
            prop_assert_eq!(budget.remaining_minor() + budget.reserved_minor(), total);
            prop_assert_eq!(budget.reserved_minor(), held_by_sagas(&budget));
        }

        prop_assert!(budget.total().is_some(), "the budget was opened");
        prop_assert_eq!(CampaignBudget::from_events(&history), budget);
    }
}
