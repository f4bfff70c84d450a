//! What a simulation found: how each saga ended against what its script implies, how fast,
//! and the summary printed at the end.
//!
//! The rule, kept simple on purpose:
//! - a sale reported as fraud must end COMPENSATED;
//! - any other sale must end COMPLETED;
//! - REJECTED is accepted for either only when the user set `--budget`, because then running out
//!   of budget is what they asked to see; without it the budget covers every sale, so a
//!   rejection is a bug.
//!
//! Anything else, including a saga still moving when the timeout passed, is a discrepancy and
//! makes the run fail.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::format;
use crate::table::Table;

/// How one saga of the run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub saga_id: String,
    /// Whether its script reported it as fraud.
    pub fraud: bool,
    /// Whether that report went out once the saga log showed the sale COMPLETED: its
    /// commission was reserved, so compensation must leave it REVERTED.
    pub reported_completed: bool,
    /// The last status seen; `None` when the saga log never showed the saga.
    pub status: Option<String>,
    /// Whether `status` is final for this saga's script.
    pub settled: bool,
    /// Purchase to final status, as the saga log measured it.
    pub log_ms: Option<i64>,
    /// Purchase request to the poll that saw the final status.
    pub observed_ms: Option<i64>,
}

/// Whether `status` ends a saga whose script is `fraud`: nothing will change it any more.
///
/// A fraud saga that reads COMPLETED is not settled: its report is on its way.
pub fn settles(fraud: bool, status: &str) -> bool {
    match status {
        "COMPENSATED" | "REJECTED" => true,
        "COMPLETED" => !fraud,
        _ => false,
    }
}

/// What is wrong with a saga ending in `status`, if anything (see the module's rule).
pub fn discrepancy(fraud: bool, status: Option<&str>, budget_set: bool) -> Option<String> {
    let expected = if fraud { "COMPENSATED" } else { "COMPLETED" };
    match status {
        Some(s) if s == expected => None,
        Some("REJECTED") if budget_set => None,
        Some("REJECTED") => Some(format!(
            "expected {expected}, got REJECTED (the default budget covers every sale; set \
             --budget to simulate running out)"
        )),
        Some(s) => Some(format!("expected {expected}, got {s}")),
        None => Some(format!(
            "expected {expected}, but the saga log never showed it"
        )),
    }
}

/// The `p`th percentile (0 < p ≤ 100) of `values` by the nearest-rank method: the smallest
/// value with at least p % of the values at or below it.
pub fn percentile(values: &[i64], p: f64) -> Option<i64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// p50, p95 and p99 of a set of durations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Latency {
    pub count: usize,
    pub p50: Option<i64>,
    pub p95: Option<i64>,
    pub p99: Option<i64>,
}

impl Latency {
    pub fn of(values: &[i64]) -> Self {
        Self {
            count: values.len(),
            p50: percentile(values, 50.0),
            p95: percentile(values, 95.0),
            p99: percentile(values, 99.0),
        }
    }
}

/// A saga that did not end as its script implies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Discrepancy {
    pub saga_id: String,
    pub problem: String,
}

/// Everything the run reports, printed as text or JSON.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub campaign_id: String,
    pub seed: u64,
    pub visitors: u32,
    pub sales: usize,
    pub frauds_planned: usize,
    pub frauds_reported: usize,
    /// Sagas whose status is final for their script.
    pub settled: usize,
    pub by_status: BTreeMap<String, usize>,
    /// Seconds from the first purchase to the last saga settling.
    pub elapsed_s: f64,
    /// Settled sagas per second over `elapsed_s`.
    pub throughput: f64,
    /// Purchase to final status, from the saga log (`duration_ms`), per script.
    pub log_latency_ms: BTreeMap<&'static str, Latency>,
    /// Purchase to final status as this run observed it (includes polling), per script.
    pub observed_latency_ms: BTreeMap<&'static str, Latency>,
    /// Requests that failed while driving visitors or reporting fraud.
    pub errors: Vec<String>,
    pub discrepancies: Vec<Discrepancy>,
    pub ok: bool,
}

/// What a run looked like, for [`summarise`].
pub struct Run {
    pub campaign_id: String,
    pub seed: u64,
    pub visitors: u32,
    pub frauds_reported: usize,
    pub budget_set: bool,
    pub elapsed_s: f64,
    pub errors: Vec<String>,
}

/// Judges every outcome and gathers the numbers.
pub fn summarise(run: Run, outcomes: &[Outcome]) -> Summary {
    let mut by_status = BTreeMap::new();
    let mut log: BTreeMap<&'static str, Vec<i64>> = BTreeMap::new();
    let mut observed: BTreeMap<&'static str, Vec<i64>> = BTreeMap::new();
    let mut discrepancies = Vec::new();
    for outcome in outcomes {
        let status = outcome.status.as_deref();
        *by_status
            .entry(status.unwrap_or("(not in the log)").to_owned())
            .or_insert(0) += 1;
        let problem = if outcome.settled {
            discrepancy(outcome.fraud, status, run.budget_set)
        } else {
            Some(format!(
                "still {} when the timeout passed (expected {})",
                status.unwrap_or("unknown to the saga log"),
                if outcome.fraud {
                    "COMPENSATED"
                } else {
                    "COMPLETED"
                }
            ))
        };
        if let Some(problem) = problem {
            discrepancies.push(Discrepancy {
                saga_id: outcome.saga_id.clone(),
                problem,
            });
        }
        if outcome.settled {
            let script = if outcome.fraud { "fraud" } else { "sale" };
            log.entry(script).or_default().extend(outcome.log_ms);
            observed
                .entry(script)
                .or_default()
                .extend(outcome.observed_ms);
        }
    }
    let settled = outcomes.iter().filter(|o| o.settled).count();
    let latency = |values: BTreeMap<&'static str, Vec<i64>>| {
        values
            .into_iter()
            .map(|(script, v)| (script, Latency::of(&v)))
            .collect()
    };
    Summary {
        campaign_id: run.campaign_id,
        seed: run.seed,
        visitors: run.visitors,
        sales: outcomes.len(),
        frauds_planned: outcomes.iter().filter(|o| o.fraud).count(),
        frauds_reported: run.frauds_reported,
        settled,
        by_status,
        elapsed_s: run.elapsed_s,
        throughput: if run.elapsed_s > 0.0 {
            settled as f64 / run.elapsed_s
        } else {
            0.0
        },
        log_latency_ms: latency(log),
        observed_latency_ms: latency(observed),
        ok: discrepancies.is_empty() && run.errors.is_empty(),
        errors: run.errors,
        discrepancies,
    }
}

impl Summary {
    /// Adds what a later check found (see `audit`); any of them fails the run.
    pub fn add_discrepancies(&mut self, found: Vec<Discrepancy>) {
        if !found.is_empty() {
            self.ok = false;
        }
        self.discrepancies.extend(found);
    }
}

/// The summary for people.
pub fn render(summary: &Summary) -> String {
    let mut out = format!(
        "campaign {} (seed {}): {} visitors, {} sales, {} reported as fraud ({} planned)\n\n",
        summary.campaign_id,
        summary.seed,
        summary.visitors,
        summary.sales,
        summary.frauds_reported,
        summary.frauds_planned
    );
    let mut statuses = Table::new(&["FINAL STATUS", "SAGAS"]).right_align(&[1]);
    for (status, count) in &summary.by_status {
        statuses.row([status.clone(), count.to_string()]);
    }
    if !statuses.is_empty() {
        out.push_str(&statuses.render());
        out.push('\n');
    }
    out.push_str(&format!(
        "throughput  {:.1} sagas/s ({} settled in {:.1} s)\n\n",
        summary.throughput, summary.settled, summary.elapsed_s
    ));
    let mut latency = Table::new(&["LATENCY (purchase → final)", "SAGAS", "P50", "P95", "P99"])
        .right_align(&[1, 2, 3, 4]);
    let sources = [
        ("saga log", &summary.log_latency_ms),
        ("observed", &summary.observed_latency_ms),
    ];
    for (source, by_script) in sources {
        for (script, l) in by_script {
            let label = match *script {
                "fraud" => "fraud → COMPENSATED",
                _ => "sale → COMPLETED",
            };
            latency.row([
                format!("{source}, {label}"),
                l.count.to_string(),
                format::maybe_millis(l.p50),
                format::maybe_millis(l.p95),
                format::maybe_millis(l.p99),
            ]);
        }
    }
    if !latency.is_empty() {
        out.push_str(&latency.render());
        out.push('\n');
    }
    for error in &summary.errors {
        out.push_str(&format!("error: {error}\n"));
    }
    for d in &summary.discrepancies {
        out.push_str(&format!("discrepancy: saga {}: {}\n", d.saga_id, d.problem));
    }
    if summary.ok {
        out.push_str("verdict: ok, every saga ended as its script implies\n");
    } else {
        out.push_str(&format!(
            "verdict: FAILED, {} discrepanc{} and {} error{}\n",
            summary.discrepancies.len(),
            if summary.discrepancies.len() == 1 {
                "y"
            } else {
                "ies"
            },
            summary.errors.len(),
            if summary.errors.len() == 1 { "" } else { "s" }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fraud_must_be_compensated_and_sales_completed() {
        assert_eq!(discrepancy(true, Some("COMPENSATED"), false), None);
        assert_eq!(discrepancy(false, Some("COMPLETED"), false), None);
        assert_eq!(
            discrepancy(true, Some("COMPLETED"), false).as_deref(),
            Some("expected COMPENSATED, got COMPLETED")
        );
        assert_eq!(
            discrepancy(false, Some("COMPENSATED"), true).as_deref(),
            Some("expected COMPLETED, got COMPENSATED")
        );
        assert!(
            discrepancy(false, None, false)
                .unwrap()
                .contains("never showed it")
        );
    }

    #[test]
    fn rejected_is_accepted_only_when_the_budget_was_set() {
        assert_eq!(discrepancy(false, Some("REJECTED"), true), None);
        assert_eq!(discrepancy(true, Some("REJECTED"), true), None);
        let problem = discrepancy(false, Some("REJECTED"), false).unwrap();
        assert!(problem.contains("set --budget"), "{problem}");
    }

    #[test]
    fn a_fraud_saga_is_not_settled_by_completing() {
        assert!(settles(false, "COMPLETED"));
        assert!(!settles(true, "COMPLETED"));
        assert!(settles(true, "COMPENSATED"));
        assert!(settles(false, "REJECTED"));
        for moving in [
            "STARTED",
            "ATTRIBUTED",
            "COMPENSATING",
            "TIMED_OUT",
            "ORPHANED",
        ] {
            assert!(
                !settles(false, moving) && !settles(true, moving),
                "{moving}"
            );
        }
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let values: Vec<i64> = (1..=100).rev().collect();
        assert_eq!(percentile(&values, 50.0), Some(50));
        assert_eq!(percentile(&values, 95.0), Some(95));
        assert_eq!(percentile(&values, 99.0), Some(99));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile(&[10, 20, 30], 50.0), Some(20));
        assert_eq!(percentile(&[10, 20, 30], 95.0), Some(30));
        assert_eq!(percentile(&[], 50.0), None);
    }

    fn outcome(saga: &str, fraud: bool, status: &str, settled: bool, ms: i64) -> Outcome {
        Outcome {
            saga_id: saga.into(),
            fraud,
            reported_completed: false,
            status: Some(status.into()),
            settled,
            log_ms: Some(ms),
            observed_ms: Some(ms + 100),
        }
    }

    fn run(budget_set: bool, errors: Vec<String>) -> Run {
        Run {
            campaign_id: "c-1".into(),
            seed: 7,
            visitors: 10,
            frauds_reported: 1,
            budget_set,
            elapsed_s: 2.0,
            errors,
        }
    }

    #[test]
    fn a_clean_run_passes_and_counts_per_status_and_script() {
        let outcomes = [
            outcome("a", false, "COMPLETED", true, 100),
            outcome("b", false, "COMPLETED", true, 300),
            outcome("c", true, "COMPENSATED", true, 2000),
        ];
        let summary = summarise(run(false, vec![]), &outcomes);
        assert!(summary.ok);
        assert_eq!(summary.by_status["COMPLETED"], 2);
        assert_eq!(summary.by_status["COMPENSATED"], 1);
        assert_eq!(summary.throughput, 1.5);
        assert_eq!(summary.log_latency_ms["sale"].p99, Some(300));
        assert_eq!(summary.observed_latency_ms["fraud"].p50, Some(2100));
        let text = render(&summary);
        assert!(text.contains("verdict: ok"), "{text}");
        assert!(text.contains("saga log, fraud → COMPENSATED"), "{text}");
    }

    #[test]
    fn an_unsettled_or_wrong_saga_or_an_error_fails_the_run() {
        let outcomes = [
            outcome("a", false, "COMPLETED", true, 100),
            outcome("b", true, "COMPLETED", false, 100),
        ];
        let summary = summarise(run(false, vec![]), &outcomes);
        assert!(!summary.ok);
        assert_eq!(
            summary.discrepancies,
            [Discrepancy {
                saga_id: "b".into(),
                problem: "still COMPLETED when the timeout passed (expected COMPENSATED)".into()
            }]
        );
        assert!(render(&summary).contains("verdict: FAILED, 1 discrepancy and 0 errors"));

        let clean = [outcome("a", false, "COMPLETED", true, 100)];
        let failed = summarise(run(false, vec!["tracking answered 503".into()]), &clean);
        assert!(!failed.ok);
    }
}
