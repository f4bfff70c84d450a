//! A saga as the log serves it, and the queries over many.

use std::collections::BTreeMap;

use alpes_contracts::{Money, Timestamp};
use serde::{Deserialize, Serialize};

use crate::status::Status;
use crate::step::Direction;

/// A saga without its steps: a list entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SagaSummary {
    pub saga_id: String,
    pub status: Status,
    /// A fraud report (or timeout) for a saga no step shows starting.
    pub orphan: bool,
    pub campaign_id: Option<String>,
    pub partner_id: Option<String>,
    /// The sale's amount.
    pub amount: Option<Money>,
    /// When its earliest step happened.
    pub started_at: Timestamp,
    /// When its last step was recorded.
    pub updated_at: Timestamp,
    /// When the step that made it final happened.
    pub finished_at: Option<Timestamp>,
    /// When it times out unless it becomes final.
    pub deadline: Option<Timestamp>,
    /// From start to its final status, in milliseconds.
    pub duration_ms: Option<i64>,
}

/// A saga with its timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saga {
    #[serde(flatten)]
    pub summary: SagaSummary,
    /// Its steps, in the order they happened.
    pub steps: Vec<RecordedStep>,
}

/// A step as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedStep {
    pub event_id: String,
    pub event_type: String,
    /// The service that announced it.
    pub service: String,
    pub direction: Direction,
    pub occurred_at: Timestamp,
    pub recorded_at: Timestamp,
    /// The event as JSON.
    pub payload: serde_json::Value,
}

/// Which sagas to list, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// Any of these statuses (all when empty).
    pub statuses: Vec<Status>,
    pub campaign_id: Option<String>,
    pub partner_id: Option<String>,
    /// Started at or after.
    pub since: Option<Timestamp>,
    /// Started before.
    pub until: Option<Timestamp>,
    /// Continue after the page that returned this cursor.
    pub cursor: Option<Cursor>,
    /// At most this many (1..=500).
    pub limit: u32,
}

/// Where a page ended: the last saga's start and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub started_at: Timestamp,
    pub saga_id: String,
}

impl Cursor {
    /// The opaque text handed to clients: `<start in µs>.<saga id>`.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.started_at.timestamp_micros(), self.saga_id)
    }

    /// The cursor `text` encodes, if it is one.
    pub fn decode(text: &str) -> Option<Self> {
        let (micros, saga_id) = text.split_once('.')?;
        let started_at = Timestamp::from_timestamp_micros(micros.parse().ok()?)?;
        (!saga_id.is_empty()).then(|| Self {
            started_at,
            saga_id: saga_id.to_owned(),
        })
    }
}

/// One page of sagas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    pub sagas: Vec<SagaSummary>,
    /// Pass back as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// Percentiles of the time from start to a final status, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Durations {
    /// How many sagas reached a final status.
    pub count: i64,
    pub p50: Option<i64>,
    pub p95: Option<i64>,
    pub p99: Option<i64>,
}

/// Counts and durations of a set of sagas.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub total: i64,
    pub by_status: BTreeMap<Status, i64>,
    pub duration_ms: Durations,
}

/// Counts and durations overall and per campaign.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    #[serde(flatten)]
    pub overall: Tally,
    pub campaigns: Vec<CampaignTally>,
}

/// One campaign's counts and durations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignTally {
    pub campaign_id: String,
    #[serde(flatten)]
    pub tally: Tally,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_survives_its_text_and_nonsense_is_refused() {
        let cursor = Cursor {
            started_at: Timestamp::from_timestamp_micros(1_800_000_000_123_456).unwrap(),
            saga_id: "0199-abc.def".into(),
        };
        assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        for bad in ["", "abc", "12", "12.", "x.saga", "99999999999999999999.s"] {
            assert_eq!(Cursor::decode(bad), None, "{bad:?}");
        }
    }
}
