//! Sagas as people read them: one saga as a header and a timeline, lists and statistics as
//! tables.

use std::collections::BTreeMap;

use alpes_contracts::Money;
use serde_json::Value as Json;

use super::model::{Durations, STATUSES, Saga, SagaPage, Stats};
use crate::format;
use crate::table::Table;

/// Longest step detail shown before it is cut.
const DETAIL_WIDTH: usize = 72;

/// One saga: what it is about, where it stands, then every step with its time since the start.
pub fn saga(saga: &Saga) -> String {
    let mut out = String::new();
    let dash = || "-".to_owned();
    let finished = match (&saga.finished_at, saga.duration_ms) {
        (Some(at), Some(ms)) => format!("{}  ({})", format::instant(at), format::millis(ms)),
        (Some(at), None) => format::instant(at),
        (None, _) => dash(),
    };
    let status = if saga.orphan && saga.status != "ORPHANED" {
        format!(
            "{} (orphan: fraud reported before its purchase)",
            saga.status
        )
    } else {
        saga.status.clone()
    };
    let fields = [
        ("saga", saga.saga_id.clone()),
        ("status", status),
        ("campaign", saga.campaign_id.clone().unwrap_or_else(dash)),
        ("partner", saga.partner_id.clone().unwrap_or_else(dash)),
        (
            "amount",
            saga.amount.as_ref().map_or_else(dash, format::money),
        ),
        ("started", format::instant(&saga.started_at)),
        ("updated", format::instant(&saga.updated_at)),
        ("finished", finished),
        (
            "deadline",
            saga.deadline.as_ref().map_or_else(dash, format::instant),
        ),
    ];
    for (name, value) in fields {
        out.push_str(&format!("{name:<10}{value}\n"));
    }
    out.push('\n');
    if saga.steps.is_empty() {
        out.push_str("no steps recorded\n");
        return out;
    }
    let mut table = Table::new(&[
        "#",
        "AT",
        "OCCURRED",
        "SERVICE",
        "EVENT",
        "DIRECTION",
        "DETAIL",
    ])
    .right_align(&[0, 1]);
    for (i, step) in saga.steps.iter().enumerate() {
        let since_start = (step.occurred_at - saga.started_at).num_milliseconds();
        table.row([
            (i + 1).to_string(),
            format!("+{}", format::millis(since_start)),
            step.occurred_at.format("%H:%M:%S%.3f").to_string(),
            step.service.clone(),
            step.event_type.clone(),
            step.direction.clone(),
            detail(&step.payload),
        ]);
    }
    out.push_str(&table.render());
    out
}

/// A page of sagas, newest first.
pub fn list(page: &SagaPage) -> String {
    if page.sagas.is_empty() {
        return "no sagas match\n".to_owned();
    }
    let mut table = Table::new(&[
        "SAGA", "STATUS", "CAMPAIGN", "PARTNER", "AMOUNT", "STARTED", "DURATION",
    ])
    .right_align(&[4, 6]);
    for saga in &page.sagas {
        table.row([
            saga.saga_id.clone(),
            saga.status.clone(),
            saga.campaign_id.clone().unwrap_or_else(|| "-".into()),
            saga.partner_id.clone().unwrap_or_else(|| "-".into()),
            saga.amount
                .as_ref()
                .map_or_else(|| "-".into(), format::money),
            format::instant(&saga.started_at),
            format::maybe_millis(saga.duration_ms),
        ]);
    }
    table.render()
}

/// Counts by status and durations, overall and per campaign.
pub fn stats(stats: &Stats) -> String {
    let mut out = format!(
        "{} saga{}; {}\n\n",
        stats.total,
        if stats.total == 1 { "" } else { "s" },
        durations(&stats.duration_ms)
    );
    let mut by_status = Table::new(&["STATUS", "SAGAS", "SHARE"]).right_align(&[1, 2]);
    for (status, count) in ordered(&stats.by_status) {
        let share = if stats.total == 0 {
            0.0
        } else {
            count as f64 * 100.0 / stats.total as f64
        };
        by_status.row([status, count.to_string(), format!("{share:.1}%")]);
    }
    if by_status.is_empty() {
        out.push_str("no sagas yet\n");
        return out;
    }
    out.push_str(&by_status.render());
    if stats.campaigns.is_empty() {
        return out;
    }
    let statuses: Vec<&str> = STATUSES
        .iter()
        .copied()
        .filter(|s| stats.campaigns.iter().any(|c| c.by_status.contains_key(*s)))
        .collect();
    let mut header = vec!["CAMPAIGN", "SAGAS"];
    header.extend(&statuses);
    header.extend(["P50", "P95", "P99"]);
    let mut campaigns = Table::new(&header).right_align(&(1..header.len()).collect::<Vec<_>>());
    for campaign in &stats.campaigns {
        let mut row = vec![campaign.campaign_id.clone(), campaign.total.to_string()];
        row.extend(statuses.iter().map(|s| {
            campaign
                .by_status
                .get(*s)
                .map_or_else(|| "0".into(), u64::to_string)
        }));
        let d = &campaign.duration_ms;
        row.extend([d.p50, d.p95, d.p99].map(format::maybe_millis));
        campaigns.row(row);
    }
    out.push('\n');
    out.push_str(&campaigns.render());
    out
}

fn durations(d: &Durations) -> String {
    if d.count == 0 {
        return "none finished yet".to_owned();
    }
    format!(
        "{} finished: duration p50 {}, p95 {}, p99 {}",
        d.count,
        format::maybe_millis(d.p50),
        format::maybe_millis(d.p95),
        format::maybe_millis(d.p99)
    )
}

/// Statuses in the order of a saga's life, unknown ones after them.
fn ordered(by_status: &BTreeMap<String, u64>) -> Vec<(String, u64)> {
    let known = STATUSES
        .iter()
        .filter_map(|s| by_status.get(*s).map(|n| ((*s).to_owned(), *n)));
    let unknown = by_status
        .iter()
        .filter(|(s, _)| !STATUSES.contains(&s.as_str()))
        .map(|(s, n)| (s.clone(), *n));
    known.chain(unknown).collect()
}

/// A step's payload in one line: its leaf values as `name=value` (amounts and times formatted,
/// lists counted, metadata left out, ids after everything else), cut to [`DETAIL_WIDTH`].
fn detail(payload: &Json) -> String {
    let mut parts = Vec::new();
    leaves(payload, "", &mut parts);
    // Stable: the fields that say what happened first, the ids that say to what after.
    parts.sort_by_key(|(name, _)| name.ends_with("_id") || name.ends_with("_ids"));
    let line = parts
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join(" ");
    if line.chars().count() > DETAIL_WIDTH {
        let cut: String = line.chars().take(DETAIL_WIDTH - 1).collect();
        format!("{cut}…")
    } else {
        line
    }
}

fn leaves(json: &Json, name: &str, parts: &mut Vec<(String, String)>) {
    let name_of = || name.to_owned();
    match json {
        Json::Object(fields) => {
            if let Ok(money) = serde_json::from_value::<Money>(json.clone()) {
                parts.push((name_of(), format::money(&money)));
                return;
            }
            // By name: the order must not depend on whether serde_json preserves insertion
            // order, which another crate in the build may switch on.
            let mut fields: Vec<_> = fields.iter().collect();
            fields.sort_by(|a, b| a.0.cmp(b.0));
            for (key, value) in fields {
                if key != "metadata" {
                    leaves(value, key, parts);
                }
            }
        }
        Json::Null => {}
        Json::Array(items) => parts.push((name_of(), format!("[{}]", items.len()))),
        Json::String(s) => parts.push((name_of(), s.clone())),
        // Events carry their instants as Avro timestamp-micros.
        Json::Number(n) if name.ends_with("_at") || name == "deadline" => {
            let at = n.as_i64().and_then(chrono::DateTime::from_timestamp_micros);
            let text = at.map_or_else(|| n.to_string(), |at| format::instant(&at));
            parts.push((name_of(), text));
        }
        other => parts.push((name_of(), other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture<T: serde::de::DeserializeOwned>(text: &str) -> T {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn a_saga_shows_its_header_and_timeline_with_offsets_from_its_start() {
        let text = saga(&fixture(include_str!("../../tests/fixtures/saga.json")));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "saga      0195a3c1-5e2f-7a10-8c1d-3b4e5f607182");
        assert_eq!(lines[1], "status    COMPENSATED");
        assert_eq!(lines[4], "amount    120.00 EUR");
        assert_eq!(lines[7], "finished  2025-03-01 12:00:03.350  (3.25 s)");
        assert_eq!(lines[8], "deadline  -");
        assert!(
            lines[10].starts_with("#       AT  OCCURRED"),
            "{}",
            lines[10]
        );
        assert_eq!(
            lines[11],
            "1    +0 ms  12:00:00.100  tracking     InteractionTracked     forward       \
             interacted_at=2025-03-01 12:00:00.100 kind=PURCHASE amount=120.00 EUR i…"
        );
        assert!(lines[14].contains("+2.90 s  12:00:03.000  marketing    FraudDetected"));
        assert!(
            lines[14]
                .ends_with("compensation  reason=chargeback reporter=simulate-fraud.sh score=95")
        );
        assert!(
            lines[17].contains(
                "terminal      reason=fraud: chargeback interaction_ids=[2] visitor_id=v-1"
            )
        );
        assert_eq!(lines.len(), 18);
    }

    #[test]
    fn a_list_is_one_row_per_saga_with_dashes_for_what_is_unknown() {
        let text = list(&fixture(include_str!("../../tests/fixtures/sagas.json")));
        assert_eq!(
            text,
            "\
SAGA    STATUS     CAMPAIGN  PARTNER       AMOUNT  STARTED                  DURATION
saga-3  STARTED    c-spring  -          45.00 EUR  2025-03-01 12:05:00.000         -
saga-2  COMPLETED  c-spring  partner-7  80.00 EUR  2025-03-01 12:01:00.000    420 ms
saga-1  ORPHANED   -         -                  -  2025-03-01 12:00:00.000         -
"
        );
    }

    #[test]
    fn stats_show_counts_in_life_order_and_durations_per_campaign() {
        let text = stats(&fixture(include_str!("../../tests/fixtures/stats.json")));
        assert_eq!(
            text,
            "\
57 sagas; 55 finished: duration p50 420 ms, p95 3.25 s, p99 1 min 01 s

STATUS       SAGAS  SHARE
STARTED          2   3.5%
COMPLETED       40  70.2%
REJECTED         3   5.3%
COMPENSATED     12  21.1%

CAMPAIGN  SAGAS  STARTED  COMPLETED  REJECTED  COMPENSATED     P50     P95         P99
c-spring     55        0         40         3           12  420 ms  3.25 s  1 min 01 s
c-new         2        2          0         0            0       -       -           -
"
        );
    }

    #[test]
    fn empty_answers_say_so() {
        let page = SagaPage {
            sagas: vec![],
            next_cursor: None,
        };
        assert_eq!(list(&page), "no sagas match\n");
        let empty = Stats {
            total: 0,
            by_status: BTreeMap::new(),
            duration_ms: Durations {
                count: 0,
                p50: None,
                p95: None,
                p99: None,
            },
            campaigns: vec![],
        };
        assert_eq!(
            stats(&empty),
            "0 sagas; none finished yet\n\nno sagas yet\n"
        );
    }
}
