//! The saga log's inspection API as the marketing service serves it: one saga with its
//! timeline, pages of sagas, and counts and durations.
//!
//! Unknown fields are ignored, so a server that adds fields does not break the CLI; `--json`
//! prints the server's JSON as it came.

use std::collections::BTreeMap;

use alpes_contracts::{Money, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// Every status a saga can be in, in the order of a saga's life.
pub const STATUSES: [&str; 8] = [
    "STARTED",
    "ATTRIBUTED",
    "COMPLETED",
    "REJECTED",
    "COMPENSATING",
    "TIMED_OUT",
    "COMPENSATED",
    "ORPHANED",
];

/// One saga: `GET /sagas/{id}` (with steps) or an item of `GET /sagas` (without).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saga {
    pub saga_id: String,
    pub status: String,
    /// A fraud report for a saga no purchase started (yet).
    #[serde(default)]
    pub orphan: bool,
    pub campaign_id: Option<String>,
    pub partner_id: Option<String>,
    pub amount: Option<Money>,
    pub started_at: Timestamp,
    pub updated_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    pub deadline: Option<Timestamp>,
    pub duration_ms: Option<i64>,
    /// The timeline, oldest first; absent from lists.
    #[serde(default)]
    pub steps: Vec<Step>,
}

/// One event the saga log recorded for a saga.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub event_id: String,
    pub event_type: String,
    /// The service that produced the event.
    pub service: String,
    /// `forward`, `compensation` or `terminal`.
    pub direction: String,
    pub occurred_at: Timestamp,
    pub recorded_at: Timestamp,
    #[serde(default)]
    pub payload: Json,
}

/// A page of `GET /sagas`, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SagaPage {
    pub sagas: Vec<Saga>,
    pub next_cursor: Option<String>,
}

/// `GET /sagas/stats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub total: u64,
    pub by_status: BTreeMap<String, u64>,
    pub duration_ms: Durations,
    #[serde(default)]
    pub campaigns: Vec<CampaignStats>,
}

/// Durations of finished sagas, in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Durations {
    pub count: u64,
    pub p50: Option<i64>,
    pub p95: Option<i64>,
    pub p99: Option<i64>,
}

/// The statistics of one campaign's sagas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignStats {
    pub campaign_id: String,
    pub total: u64,
    pub by_status: BTreeMap<String, u64>,
    pub duration_ms: Durations,
}

/// `status` in upper case if it is one the saga log knows.
pub fn parse_status(status: &str) -> Result<String, String> {
    let upper = status.trim().to_uppercase();
    if STATUSES.contains(&upper.as_str()) {
        Ok(upper)
    } else {
        Err(format!(
            "{status:?} is not a saga status: use {}",
            STATUSES.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixtures_of_the_contract_parse() {
        let saga: Saga =
            serde_json::from_str(include_str!("../../tests/fixtures/saga.json")).unwrap();
        assert_eq!(saga.status, "COMPENSATED");
        assert_eq!(saga.steps.len(), 7);
        assert_eq!(saga.amount, Some(Money::new(12000, "EUR")));
        let page: SagaPage =
            serde_json::from_str(include_str!("../../tests/fixtures/sagas.json")).unwrap();
        assert_eq!(page.sagas.len(), 3);
        assert!(page.sagas.iter().all(|s| s.steps.is_empty()));
        assert_eq!(page.next_cursor.as_deref(), Some("c2FnYS0z"));
        let stats: Stats =
            serde_json::from_str(include_str!("../../tests/fixtures/stats.json")).unwrap();
        assert_eq!(stats.by_status["COMPLETED"], 40);
        assert_eq!(stats.campaigns[1].duration_ms.p50, None);
    }

    #[test]
    fn statuses_are_checked_and_upper_cased() {
        assert_eq!(parse_status("compensated"), Ok("COMPENSATED".into()));
        let error = parse_status("DONE").unwrap_err();
        assert!(error.contains("STARTED, ATTRIBUTED"), "{error}");
    }
}
