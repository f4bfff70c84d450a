//! A saga's status and summary as a function of the *set* of its steps.
//!
//! Nothing here depends on the order steps arrived in, or on how often: the log re-derives a
//! saga from all of its recorded steps each time one is added, so a step that comes late, twice,
//! or before the step that caused it gives the same saga as the in-order run.
//!
//! Two rules keep a delay inside the platform from reversing a sale:
//!
//! - **A timeout that came too late is void.** A `SagaTimedOut` step happened at its deadline
//!   (see `Step::of`). If the forward path ended at or before that deadline (its earliest
//!   `CommissionReserved`, `ConversionRejected` or `CommissionRejected` happened no later), the
//!   saga was final in time and only the timeout's announcement was late: the sweeper raced the
//!   end, or the event was published by hand. The step is kept on the timeline but does not
//!   count. A reserved saga stays COMPLETED: commission, which judges the same two times the
//!   same way, ignores such a timeout. A rejected saga stays REJECTED, although its services
//!   still answer the timeout (commission with `CommissionReverted`, attribution with
//!   `AttributionReverted`, tracking with `InteractionsDiscarded`, each with nothing to undo):
//!   when every timeout is void and no fraud was reported, those answers do not count either,
//!   so the saga ends as its forward path did whichever message reached the log first. A
//!   `FraudDetected` is never void, and a forward step after the deadline voids nothing.
//! - **A deadline counts from the saga's own time, with a grace period from when the log first
//!   saw it.** A saga times out `deadline_after` after its earliest step happened, but never
//!   sooner than `deadline_after` after the log first recorded any of its steps
//!   ([`derive_seen`]): a purchase whose events reach the log late (a relay catching up after a
//!   crash, a consumer that was down) still has a whole deadline to finish, instead of timing
//!   out the moment it appears. A saga already COMPLETED or REJECTED when first seen has no
//!   deadline at all, like any final saga.

use std::collections::BTreeSet;
use std::time::Duration;

use alpes_contracts::Timestamp;
use serde::{Deserialize, Serialize};

use crate::step::{Facts, Step};

/// Where a saga stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// The purchase is recorded; attribution has not answered.
    Started,
    /// Attributed to a campaign; commission has not answered.
    Attributed,
    /// Commission reserved. Terminal.
    Completed,
    /// Attribution or commission refused the sale. Terminal.
    Rejected,
    /// Fraud was reported (or a revert was seen); compensation is under way.
    Compensating,
    /// The deadline passed before a terminal status; compensation is under way.
    TimedOut,
    /// Everything the saga did is undone. Terminal.
    Compensated,
    /// A fraud report (and what followed it) for a saga no service has seen start: nothing to
    /// compensate. It becomes a saga like any other if its purchase turns up.
    Orphaned,
}

impl Status {
    /// Every status, in the order a saga moves through them.
    pub const ALL: [Status; 8] = [
        Self::Started,
        Self::Attributed,
        Self::Completed,
        Self::Rejected,
        Self::Compensating,
        Self::TimedOut,
        Self::Compensated,
        Self::Orphaned,
    ];

    /// The name stored and served, e.g. `TIMED_OUT`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Started => "STARTED",
            Self::Attributed => "ATTRIBUTED",
            Self::Completed => "COMPLETED",
            Self::Rejected => "REJECTED",
            Self::Compensating => "COMPENSATING",
            Self::TimedOut => "TIMED_OUT",
            Self::Compensated => "COMPENSATED",
            Self::Orphaned => "ORPHANED",
        }
    }

    /// The status named `name` (case-insensitive).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(name.trim()))
    }

    /// Whether the saga is done moving: it has no deadline any more.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Rejected | Self::Compensated | Self::Orphaned
        )
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the log keeps about a saga, derived from its steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derived {
    pub status: Status,
    /// Compensation was asked for a saga whose start no step shows.
    pub orphan: bool,
    pub facts: Facts,
    /// When its earliest step happened.
    pub started_at: Timestamp,
    /// When the step that gave it its final status happened (not for orphans).
    pub finished_at: Option<Timestamp>,
    /// When it times out, while it is not final.
    pub deadline: Option<Timestamp>,
}

/// The saga made of `steps` (any order, duplicates allowed), which times out `deadline_after`
/// its start. `None` for no steps.
pub fn derive<'a>(
    steps: impl IntoIterator<Item = &'a Step>,
    deadline_after: Duration,
) -> Option<Derived> {
    derive_seen(steps, deadline_after, None)
}

/// [`derive`] for a saga whose first step the log recorded at `first_seen`: its deadline is
/// `deadline_after` after its start, but no sooner than `deadline_after` after `first_seen`.
pub fn derive_seen<'a>(
    steps: impl IntoIterator<Item = &'a Step>,
    deadline_after: Duration,
    first_seen: Option<Timestamp>,
) -> Option<Derived> {
    // Dedup by event id and fix an order that does not depend on arrival.
    let mut steps: Vec<&Step> = steps.into_iter().collect();
    steps.sort_by(|a, b| a.event_id.cmp(&b.event_id));
    steps.dedup_by(|a, b| a.event_id == b.event_id);
    let started_at = steps.iter().map(|s| s.occurred_at).min()?;
    let first = |names: &[&str]| {
        steps
            .iter()
            .filter(|s| names.contains(&s.event_type.as_str()))
            .map(|s| s.occurred_at)
            .min()
    };
    let ended_at = first(&ENDS);
    let timeouts = || steps.iter().filter(|s| s.event_type == "SagaTimedOut");
    // Compensation that only answered void timeouts undoes nothing that counts.
    let only_void_answered = !steps.iter().any(|s| s.event_type == "FraudDetected")
        && timeouts().next().is_some()
        && timeouts().all(|s| is_void_timeout(s, ended_at));
    let types: BTreeSet<&str> = steps
        .iter()
        .filter(|s| !is_void_timeout(s, ended_at))
        .filter(|s| !(only_void_answered && ANSWERS.contains(&s.event_type.as_str())))
        .map(|s| s.event_type.as_str())
        .collect();
    let has = |t: &str| types.contains(t);

    // Not `AttributionReverted`: attribution answers a compensation of a saga it never saw
    // too (with no journey), so it proves nothing started.
    const STARTS: [&str; 6] = [
        "InteractionTracked",
        "ConversionAttributed",
        "ConversionRejected",
        "CommissionReserved",
        "CommissionRejected",
        "CommissionConfirmed",
    ];
    const COMPENSATES: [&str; 5] = [
        "FraudDetected",
        "SagaTimedOut",
        "CommissionReverted",
        "AttributionReverted",
        "InteractionsDiscarded",
    ];
    const REJECTS: [&str; 2] = ["ConversionRejected", "CommissionRejected"];
    let started = STARTS.iter().any(|t| has(t));
    let compensating = COMPENSATES.iter().any(|t| has(t));

    // An orphan's compensation runs to its end too (each hop answers with nothing undone), and
    // it stays an orphan until its purchase shows up.
    let (status, finished_at) = if compensating && !started {
        (Status::Orphaned, None)
    } else if has("InteractionsDiscarded") {
        (Status::Compensated, first(&["InteractionsDiscarded"]))
    } else if has("SagaTimedOut") {
        (Status::TimedOut, None)
    } else if compensating {
        (Status::Compensating, None)
    } else if has("CommissionReserved") {
        (Status::Completed, first(&["CommissionReserved"]))
    } else if REJECTS.iter().any(|t| has(t)) {
        (Status::Rejected, first(&REJECTS))
    } else if has("ConversionAttributed") {
        (Status::Attributed, None)
    } else {
        (Status::Started, None)
    };
    let after = chrono::Duration::from_std(deadline_after).unwrap_or(chrono::Duration::MAX);
    let deadline = (!status.is_final()).then(|| {
        let own = started_at
            .checked_add_signed(after)
            .unwrap_or(Timestamp::MAX_UTC);
        let grace =
            first_seen.map(|seen| seen.checked_add_signed(after).unwrap_or(Timestamp::MAX_UTC));
        own.max(grace.unwrap_or(own))
    });
    Some(Derived {
        status,
        orphan: compensating && !started,
        facts: facts(&steps),
        started_at,
        finished_at,
        deadline,
    })
}

/// The steps that end the forward path: a reservation or a refusal.
const ENDS: [&str; 3] = [
    "CommissionReserved",
    "ConversionRejected",
    "CommissionRejected",
];

/// The compensation hops' answers: each follows a `FraudDetected` or a `SagaTimedOut`.
const ANSWERS: [&str; 3] = [
    "CommissionReverted",
    "AttributionReverted",
    "InteractionsDiscarded",
];

/// Whether `step` is a timeout whose deadline (its time) is at or after the forward path's end
/// at `ended_at`: the saga was final in time, so the timeout does not count.
fn is_void_timeout(step: &Step, ended_at: Option<Timestamp>) -> bool {
    step.event_type == "SagaTimedOut" && ended_at.is_some_and(|at| at <= step.occurred_at)
}

/// The sale's facts, each from the most telling step that states it.
fn facts(steps: &[&Step]) -> Facts {
    fn pick<T: Clone>(
        steps: &[&Step],
        order: &[&str],
        get: impl Fn(&Facts) -> Option<&T>,
    ) -> Option<T> {
        order.iter().find_map(|t| {
            steps
                .iter()
                .filter(|s| s.event_type == *t)
                .find_map(|s| get(&s.facts).cloned())
        })
    }
    Facts {
        campaign_id: pick(
            steps,
            &[
                "InteractionTracked",
                "ConversionAttributed",
                "CommissionReserved",
                "CommissionRejected",
                "ConversionRejected",
                "CommissionConfirmed",
                "CommissionReverted",
            ],
            |f| f.campaign_id.as_ref(),
        ),
        partner_id: pick(
            steps,
            &[
                "CommissionReserved",
                "CommissionConfirmed",
                "CommissionRejected",
                "ConversionAttributed",
                "InteractionTracked",
            ],
            |f| f.partner_id.as_ref(),
        ),
        amount: pick(
            steps,
            &[
                "InteractionTracked",
                "ConversionAttributed",
                "CommissionReserved",
            ],
            |f| f.amount.as_ref(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::step::Direction;
    use alpes_contracts::Money;
    use chrono::TimeZone;
    use proptest::prelude::*;

    const DEADLINE: Duration = Duration::from_secs(30);

    fn at(second: i64) -> Timestamp {
        chrono::Utc
            .timestamp_opt(1_800_000_000 + second, 0)
            .unwrap()
    }

    fn step(event_type: &str, second: i64) -> Step {
        let facts = match event_type {
            "InteractionTracked" => Facts {
                campaign_id: Some("c-1".into()),
                partner_id: None,
                amount: Some(Money::new(10_000, "EUR")),
            },
            "ConversionAttributed" => Facts {
                campaign_id: Some("c-1".into()),
                partner_id: Some("p-1".into()),
                amount: Some(Money::new(10_000, "EUR")),
            },
            "CommissionReserved" => Facts {
                campaign_id: Some("c-1".into()),
                partner_id: Some("p-1".into()),
                amount: Some(Money::new(10_000, "EUR")),
            },
            _ => Facts::default(),
        };
        Step {
            event_id: format!("{event_type}-{second}"),
            saga_id: "s-1".into(),
            event_type: event_type.into(),
            service: "test".into(),
            direction: Direction::Forward,
            payload: serde_json::Value::Null,
            occurred_at: at(second),
            facts,
        }
    }

    fn status_of(types: &[&str]) -> Status {
        let steps: Vec<Step> = types
            .iter()
            .enumerate()
            .map(|(i, t)| step(t, i as i64))
            .collect();
        derive(&steps, DEADLINE).unwrap().status
    }

    #[test]
    fn the_forward_path_moves_through_started_attributed_completed() {
        assert_eq!(status_of(&["InteractionTracked"]), Status::Started);
        assert_eq!(
            status_of(&["InteractionTracked", "ConversionAttributed"]),
            Status::Attributed
        );
        assert_eq!(
            status_of(&[
                "InteractionTracked",
                "ConversionAttributed",
                "CommissionReserved"
            ]),
            Status::Completed
        );
        assert_eq!(
            status_of(&["InteractionTracked", "ConversionRejected"]),
            Status::Rejected
        );
        assert_eq!(
            status_of(&[
                "InteractionTracked",
                "ConversionAttributed",
                "CommissionRejected"
            ]),
            Status::Rejected
        );
    }

    #[test]
    fn compensation_wins_over_the_forward_path_and_ends_compensated() {
        let forward = [
            "InteractionTracked",
            "ConversionAttributed",
            "CommissionReserved",
        ];
        let mut steps = forward.to_vec();
        steps.push("FraudDetected");
        assert_eq!(status_of(&steps), Status::Compensating);
        steps.push("CommissionReverted");
        steps.push("AttributionReverted");
        assert_eq!(status_of(&steps), Status::Compensating);
        steps.push("InteractionsDiscarded");
        assert_eq!(status_of(&steps), Status::Compensated);

        let timed_out = ["InteractionTracked", "SagaTimedOut", "CommissionReverted"];
        assert_eq!(status_of(&timed_out), Status::TimedOut);
        let mut done = timed_out.to_vec();
        done.push("InteractionsDiscarded");
        assert_eq!(status_of(&done), Status::Compensated);
    }

    #[test]
    fn fraud_for_a_saga_nobody_started_is_an_orphan_until_its_purchase_appears() {
        let derived = derive(
            &[step("FraudDetected", 0), step("CommissionReverted", 1)],
            DEADLINE,
        )
        .unwrap();
        assert_eq!(derived.status, Status::Orphaned);
        assert!(derived.orphan);
        assert_eq!(derived.deadline, None);
        // Every hop answers it with nothing undone, and it stays an orphan.
        let answered = [
            "FraudDetected",
            "CommissionReverted",
            "AttributionReverted",
            "InteractionsDiscarded",
        ];
        assert_eq!(status_of(&answered), Status::Orphaned);
        let mut found = answered.to_vec();
        found.push("InteractionTracked");
        assert_eq!(status_of(&found), Status::Compensated);
        assert_eq!(
            status_of(&["FraudDetected", "CommissionReverted", "InteractionTracked"]),
            Status::Compensating
        );
    }

    #[test]
    fn the_deadline_runs_from_the_start_until_the_saga_is_final() {
        let open = derive(&[step("InteractionTracked", 5)], DEADLINE).unwrap();
        assert_eq!(open.started_at, at(5));
        assert_eq!(open.deadline, Some(at(35)));
        assert_eq!(open.finished_at, None);
        let done = derive(
            &[step("InteractionTracked", 5), step("CommissionReserved", 7)],
            DEADLINE,
        )
        .unwrap();
        assert_eq!(done.deadline, None);
        assert_eq!(done.finished_at, Some(at(7)));
        assert_eq!(done.facts.partner_id.as_deref(), Some("p-1"));
        assert_eq!(done.facts.amount, Some(Money::new(10_000, "EUR")));
    }

    #[test]
    fn a_timeout_at_or_after_the_reservation_is_void_and_the_saga_stays_completed() {
        for deadline in [5, 6, 60] {
            let steps = [
                step("InteractionTracked", 0),
                step("ConversionAttributed", 1),
                step("CommissionReserved", 5),
                step("SagaTimedOut", deadline),
            ];
            let derived = derive(&steps, DEADLINE).unwrap();
            assert_eq!(derived.status, Status::Completed, "deadline {deadline}");
            assert_eq!(derived.finished_at, Some(at(5)));
            assert_eq!(derived.deadline, None);
        }
        // A fraud report still compensates a completed saga whose timeout was void.
        assert_eq!(
            status_of(&[
                "InteractionTracked",
                "CommissionReserved",
                "SagaTimedOut",
                "FraudDetected"
            ]),
            Status::Compensating
        );
    }

    #[test]
    fn a_timeout_whose_deadline_came_before_the_reservation_stands() {
        let mut steps = vec![
            step("InteractionTracked", 0),
            step("ConversionAttributed", 1),
            step("SagaTimedOut", 4),
            step("CommissionReserved", 5),
        ];
        assert_eq!(derive(&steps, DEADLINE).unwrap().status, Status::TimedOut);
        steps.push(step("CommissionReverted", 6));
        steps.push(step("AttributionReverted", 7));
        steps.push(step("InteractionsDiscarded", 8));
        assert_eq!(
            derive(&steps, DEADLINE).unwrap().status,
            Status::Compensated
        );
    }

    /// `steps` derived as given and in reverse arrival order, which must agree.
    fn derive_both_ways(steps: &[Step]) -> Derived {
        let forward = derive(steps, DEADLINE).unwrap();
        let backward = derive(steps.iter().rev(), DEADLINE).unwrap();
        assert_eq!(forward, backward, "arrival order changed the saga");
        forward
    }

    /// The timeout at `deadline` and what the services answer it with, nothing to undo.
    fn timeout_answered(deadline: i64) -> Vec<Step> {
        vec![
            step("SagaTimedOut", deadline),
            step("CommissionReverted", deadline + 1),
            step("AttributionReverted", deadline + 2),
            step("InteractionsDiscarded", deadline + 3),
        ]
    }

    #[test]
    fn a_timeout_at_or_after_a_rejection_is_void_and_the_saga_stays_rejected() {
        let refusals = [
            vec![step("InteractionTracked", 0), step("ConversionRejected", 5)],
            vec![
                step("InteractionTracked", 0),
                step("ConversionAttributed", 1),
                step("CommissionRejected", 5),
            ],
        ];
        for refused in refusals {
            for deadline in [5, 6, 60] {
                // The sweeper's timeout and its answers reached the log before the refusal, or
                // after it.
                let race: Vec<Step> = timeout_answered(deadline)
                    .into_iter()
                    .chain(refused.iter().cloned())
                    .collect();
                let late: Vec<Step> = refused
                    .iter()
                    .cloned()
                    .chain(timeout_answered(deadline))
                    .collect();
                for steps in [race, late] {
                    let derived = derive_both_ways(&steps);
                    assert_eq!(derived.status, Status::Rejected, "deadline {deadline}");
                    assert_eq!(derived.finished_at, Some(at(5)));
                    assert_eq!(derived.deadline, None);
                }
                // Half-answered, it is already what it ends as.
                let mut partial = refused.clone();
                partial.extend(timeout_answered(deadline).into_iter().take(2));
                assert_eq!(derive_both_ways(&partial).status, Status::Rejected);
            }
        }
    }

    #[test]
    fn answers_to_a_void_timeout_leave_a_saga_reserved_in_time_completed() {
        let mut steps = vec![
            step("InteractionTracked", 0),
            step("ConversionAttributed", 1),
            step("CommissionReserved", 5),
        ];
        steps.extend(timeout_answered(30));
        let derived = derive_both_ways(&steps);
        assert_eq!(derived.status, Status::Completed);
        assert_eq!(derived.finished_at, Some(at(5)));
    }

    #[test]
    fn a_rejection_after_the_deadline_does_not_void_the_timeout() {
        let mut steps = vec![step("InteractionTracked", 0), step("SagaTimedOut", 30)];
        steps.push(step("ConversionRejected", 31));
        assert_eq!(derive_both_ways(&steps).status, Status::TimedOut);
        steps.extend(timeout_answered(30).into_iter().skip(1));
        let derived = derive_both_ways(&steps);
        assert_eq!(derived.status, Status::Compensated);
        assert_eq!(derived.finished_at, Some(at(33)));
        // A second timeout, void, does not void the first, whose deadline came before the refusal.
        steps.push(Step {
            event_id: "SagaTimedOut-again".into(),
            ..step("SagaTimedOut", 40)
        });
        assert_eq!(derive_both_ways(&steps).status, Status::Compensated);
    }

    #[test]
    fn fraud_after_a_rejection_still_compensates_void_timeout_or_not() {
        let rejected = [step("InteractionTracked", 0), step("ConversionRejected", 5)];
        let mut steps = rejected.to_vec();
        steps.push(step("FraudDetected", 10));
        assert_eq!(derive_both_ways(&steps).status, Status::Compensating);
        steps.extend(timeout_answered(10).into_iter().skip(1));
        let fraud_only = derive_both_ways(&steps);
        assert_eq!(fraud_only.status, Status::Compensated);
        assert_eq!(fraud_only.finished_at, Some(at(13)));
        // The sweeper's void timeout raced the rejection too: the fraud still counts.
        steps.push(step("SagaTimedOut", 30));
        assert_eq!(derive_both_ways(&steps).status, Status::Compensated);
        let mut unanswered = rejected.to_vec();
        unanswered.extend([step("SagaTimedOut", 30), step("FraudDetected", 40)]);
        assert_eq!(derive_both_ways(&unanswered).status, Status::Compensating);
    }

    #[test]
    fn a_saga_first_seen_late_gets_a_whole_deadline_from_when_it_was_seen() {
        let purchase = [step("InteractionTracked", 0)];
        let on_time = derive_seen(&purchase, DEADLINE, Some(at(0))).unwrap();
        assert_eq!(on_time.deadline, Some(at(30)));
        // Reached the log 2 minutes late (a relay catching up after a crash).
        let late = derive_seen(&purchase, DEADLINE, Some(at(120))).unwrap();
        assert_eq!(late.started_at, at(0), "its own time is kept");
        assert_eq!(late.deadline, Some(at(150)));
        // Already completed when first seen: never times out.
        let completed = [
            step("InteractionTracked", 0),
            step("ConversionAttributed", 1),
            step("CommissionReserved", 2),
        ];
        let done = derive_seen(&completed, DEADLINE, Some(at(120))).unwrap();
        assert_eq!(done.status, Status::Completed);
        assert_eq!(done.deadline, None);
        let rejected = [step("InteractionTracked", 0), step("ConversionRejected", 1)];
        assert_eq!(
            derive_seen(&rejected, DEADLINE, Some(at(120)))
                .unwrap()
                .deadline,
            None
        );
    }

    const TYPES: [&str; 11] = [
        "InteractionTracked",
        "ConversionAttributed",
        "ConversionRejected",
        "CommissionReserved",
        "CommissionRejected",
        "CommissionConfirmed",
        "FraudDetected",
        "SagaTimedOut",
        "CommissionReverted",
        "AttributionReverted",
        "InteractionsDiscarded",
    ];

    /// Any set of steps, then the same steps shuffled with some delivered again.
    fn saga_and_redelivery() -> impl Strategy<Value = (Vec<Step>, Vec<Step>)> {
        prop::collection::vec((0..TYPES.len(), 0i64..120), 1..12)
            .prop_flat_map(|picks| {
                let steps: Vec<Step> = picks.iter().map(|&(t, s)| step(TYPES[t], s)).collect();
                let n = steps.len();
                let delivered = prop::collection::vec(0..n, 0..2 * n)
                    .prop_map(move |again| {
                        let mut all: Vec<usize> = (0..n).collect();
                        all.extend(again);
                        all
                    })
                    .prop_shuffle();
                (Just(steps), delivered)
            })
            .prop_map(|(steps, order)| {
                let delivered = order.iter().map(|&i| steps[i].clone()).collect();
                (steps, delivered)
            })
    }

    proptest! {
        #[test]
        fn order_and_duplicates_do_not_change_the_saga((steps, delivered) in saga_and_redelivery()) {
            let in_order = derive(&steps, DEADLINE);
            let as_delivered = derive(&delivered, DEADLINE);
            prop_assert_eq!(in_order, as_delivered);
        }

        #[test]
        fn a_late_first_sight_never_brings_a_deadline_forward(
            (steps, _) in saga_and_redelivery(), seen in 0i64..600
        ) {
            let own = derive(&steps, DEADLINE).unwrap();
            let late = derive_seen(&steps, DEADLINE, Some(at(seen))).unwrap();
            prop_assert_eq!(own.status, late.status);
            match (own.deadline, late.deadline) {
                (Some(own), Some(late)) => {
                    prop_assert!(late >= own);
                    prop_assert!(late >= at(seen) + chrono::Duration::from_std(DEADLINE).unwrap());
                }
                (own, late) => prop_assert_eq!(own, late),
            }
        }

        #[test]
        fn a_started_saga_with_discarded_interactions_is_compensated_whatever_else_it_holds(
            (steps, _) in saga_and_redelivery()
        ) {
            let mut steps = steps;
            steps.push(step("InteractionTracked", 0));
            steps.push(step("InteractionsDiscarded", 200));
            let derived = derive(&steps, DEADLINE).unwrap();
            // Unless all it answered was timeouts at or after its forward path's end.
            let ended_at = steps
                .iter()
                .filter(|s| ENDS.contains(&s.event_type.as_str()))
                .map(|s| s.occurred_at)
                .min();
            let timeouts: Vec<&Step> =
                steps.iter().filter(|s| s.event_type == "SagaTimedOut").collect();
            let only_void = !timeouts.is_empty()
                && timeouts.iter().all(|s| ended_at.is_some_and(|at| at <= s.occurred_at))
                && !steps.iter().any(|s| s.event_type == "FraudDetected");
            if only_void {
                prop_assert!(
                    matches!(derived.status, Status::Completed | Status::Rejected),
                    "{:?}", derived.status
                );
            } else {
                prop_assert_eq!(derived.status, Status::Compensated);
            }
            prop_assert_eq!(derived.deadline, None);
        }
    }
}
