//! After the sagas settled: what the money and the saga log say, beyond each saga's status.
//!
//! - each saga's commission is live (RESERVED or CONFIRMED) exactly when its saga COMPLETED: a
//!   compensated or rejected saga keeps no reservation, and one compensated after it COMPLETED
//!   (fraud reported once the sale went through) has its commission REVERTED;
//! - the campaign's budget has reserved exactly the sum of the live commissions (only for a
//!   campaign the run created: another's may carry other traffic);
//! - no step is in a saga's log twice (two events of one type: a hop applied twice, e.g. by two
//!   replicas).
//!
//! Each finding is a [`Discrepancy`]; a saga the services cannot show is one too.

use std::collections::BTreeMap;

use alpes_contracts::Money;
use futures::StreamExt;
use serde::Deserialize;

use super::platform::PlatformApi;
use super::report::{Discrepancy, Outcome};

/// A commission as `GET /commissions/{id}` shows it (what the audit reads of it).
#[derive(Debug, Deserialize)]
struct Commission {
    status: String,
    amount: Option<Money>,
}

/// A budget as `GET /budgets/{campaign}` shows it.
#[derive(Debug, Deserialize)]
struct Budget {
    reserved: Money,
}

/// Whether a commission in `status` holds money in its budget.
fn live(status: &str) -> bool {
    matches!(status, "RESERVED" | "CONFIRMED")
}

/// What is wrong with saga `outcome`'s commission (`None`: it has none), if anything.
fn commission_problem(outcome: &Outcome, commission: Option<&Commission>) -> Option<String> {
    let held = commission.is_some_and(|c| live(&c.status));
    let shown = commission.map_or("none", |c| c.status.as_str());
    match outcome.status.as_deref() {
        Some("COMPENSATED") if outcome.reported_completed && shown != "REVERTED" => Some(format!(
            "COMPENSATED after it COMPLETED, but its commission is {shown}, not REVERTED"
        )),
        Some("COMPLETED") if !held => Some(format!("COMPLETED, but its commission is {shown}")),
        Some("COMPENSATED" | "REJECTED") if held => Some(format!(
            "{}, but its commission is still {shown}",
            outcome.status.as_deref().unwrap_or_default()
        )),
        _ => None,
    }
}

/// Event types that appear more than once in `steps`.
fn repeated(event_types: impl IntoIterator<Item = String>) -> Vec<(String, usize)> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for event_type in event_types {
        *counts.entry(event_type).or_default() += 1;
    }
    counts.into_iter().filter(|(_, n)| *n > 1).collect()
}

/// Checks every saga of `outcomes` (`concurrency` at a time) and, when `campaign` is given, its
/// budget against the live commissions.
pub async fn audit(
    platform: &PlatformApi,
    outcomes: &[Outcome],
    campaign: Option<&str>,
    concurrency: usize,
) -> Vec<Discrepancy> {
    let found: Vec<(Vec<Discrepancy>, i64)> = futures::stream::iter(outcomes)
        .map(|outcome| audit_saga(platform, outcome))
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut discrepancies: Vec<Discrepancy> =
        found.iter().flat_map(|(d, _)| d.iter().cloned()).collect();
    if let Some(campaign) = campaign {
        let held: i64 = found.iter().map(|(_, amount)| amount).sum();
        let budget = platform.commission.url(&["budgets", campaign], &[]);
        match platform.commission.get::<Budget>(budget).await {
            Ok(budget) if budget.reserved.amount_minor == held => {}
            Ok(budget) => discrepancies.push(Discrepancy {
                saga_id: format!("(budget of campaign {campaign})"),
                problem: format!(
                    "reserved {} while its live commissions add up to {held}",
                    budget.reserved.amount_minor
                ),
            }),
            Err(e) => discrepancies.push(Discrepancy {
                saga_id: format!("(budget of campaign {campaign})"),
                problem: format!("cannot be read: {e}"),
            }),
        }
    }
    discrepancies.sort_by(|a, b| a.saga_id.cmp(&b.saga_id));
    discrepancies
}

/// One saga's findings, and the amount its commission holds.
async fn audit_saga(platform: &PlatformApi, outcome: &Outcome) -> (Vec<Discrepancy>, i64) {
    let mut problems = Vec::new();
    let id = format!("commission-{}", outcome.saga_id);
    let commission = platform.commission.url(&["commissions", &id], &[]);
    let commission = match platform.commission.get::<Commission>(commission).await {
        Ok(commission) => Some(commission),
        Err(e) if e.status() == Some(404) => None,
        Err(e) => {
            problems.push(format!("its commission cannot be read: {e}"));
            None
        }
    };
    problems.extend(commission_problem(outcome, commission.as_ref()));
    let held = commission
        .as_ref()
        .filter(|c| live(&c.status))
        .and_then(|c| c.amount.as_ref())
        .map_or(0, |amount| amount.amount_minor);
    match platform.saga(&outcome.saga_id).await {
        Ok(Some(saga)) => {
            for (event_type, n) in repeated(saga.steps.into_iter().map(|s| s.event_type)) {
                problems.push(format!("{event_type} is in its log {n} times"));
            }
        }
        Ok(None) => {} // the status check already says so
        Err(e) => problems.push(format!("its log cannot be read: {e}")),
    }
    let discrepancies = problems
        .into_iter()
        .map(|problem| Discrepancy {
            saga_id: outcome.saga_id.clone(),
            problem,
        })
        .collect();
    (discrepancies, held)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(status: &str) -> Outcome {
        Outcome {
            saga_id: "s".into(),
            fraud: status == "COMPENSATED",
            reported_completed: false,
            status: Some(status.into()),
            settled: true,
            log_ms: None,
            observed_ms: None,
        }
    }

    fn commission(status: &str) -> Commission {
        Commission {
            status: status.into(),
            amount: Some(Money::new(500, "EUR")),
        }
    }

    #[test]
    fn a_completed_saga_holds_its_commission_and_an_ended_one_holds_none() {
        let completed = outcome("COMPLETED");
        for live in ["RESERVED", "CONFIRMED"] {
            assert_eq!(
                commission_problem(&completed, Some(&commission(live))),
                None
            );
        }
        assert!(commission_problem(&completed, Some(&commission("REVERTED"))).is_some());
        assert!(commission_problem(&completed, None).is_some());
        for ended in ["COMPENSATED", "REJECTED"] {
            let ended = outcome(ended);
            for dead in ["REVERTED", "REJECTED"] {
                assert_eq!(commission_problem(&ended, Some(&commission(dead))), None);
            }
            assert_eq!(commission_problem(&ended, None), None);
            let problem = commission_problem(&ended, Some(&commission("RESERVED"))).unwrap();
            assert!(problem.contains("still RESERVED"), "{problem}");
        }
    }

    #[test]
    fn a_sale_compensated_after_it_completed_leaves_its_commission_reverted() {
        let compensated = Outcome {
            reported_completed: true,
            ..outcome("COMPENSATED")
        };
        assert_eq!(
            commission_problem(&compensated, Some(&commission("REVERTED"))),
            None
        );
        for wrong in [Some(commission("REJECTED")), None] {
            let problem = commission_problem(&compensated, wrong.as_ref()).unwrap();
            assert!(problem.contains("not REVERTED"), "{problem}");
        }
    }

    #[test]
    fn an_event_type_logged_twice_is_named_with_its_count() {
        let steps = [
            "InteractionTracked",
            "CommissionReserved",
            "CommissionReserved",
        ];
        assert_eq!(
            repeated(steps.map(String::from)),
            [("CommissionReserved".to_owned(), 2)]
        );
        assert!(repeated(["A", "B"].map(String::from)).is_empty());
    }
}
