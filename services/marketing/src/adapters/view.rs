//! `GET /sagas/{id}/view`: a saga's timeline as a self-contained HTML page.
//!
//! The page is for people without tools (support, a partner manager): one request, no script,
//! no external asset, so it works offline and can be saved and mailed. Each step is a row in
//! time order placed in its service's lane, so the forward path reads left to right and the
//! compensation right to left. Every value that came from outside is escaped with [`escape`];
//! a content security policy that allows nothing but the inline style backs that up.

use alpes_contracts::{Money, Timestamp};
use alpes_sagalog::{Direction, RecordedStep, Saga, SagaSummary, Status};
use chrono::SecondsFormat;

/// The lanes, in the order the forward path visits the services.
const LANES: [&str; 4] = ["tracking", "attribution", "commission", "marketing"];

const STYLE: &str = "\
body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#222}\
h1{font-size:1.2rem;word-break:break-all}\
dl{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem}dt{color:#666}dd{margin:0}\
.badge{color:#fff;padding:.1rem .5rem;border-radius:.6rem;font-size:.8rem;font-weight:600}\
.green{background:#2e7d32}.grey{background:#757575}.purple{background:#6a1b9a}\
.orange{background:#e65100}.red{background:#c62828}.blue{background:#1565c0}\
.notice{border-left:4px solid #c62828;background:#fdecea;padding:.5rem 1rem}\
table{border-collapse:collapse;width:100%;table-layout:fixed}\
th,td{border-left:1px solid #ddd;padding:.3rem .5rem;vertical-align:top;text-align:left}\
th.offset,td.offset{width:7rem;border-left:0;color:#666;font-variant-numeric:tabular-nums}\
td.event{border-radius:.3rem;overflow-wrap:anywhere}\
tr.forward td.event{background:#e3f2fd}tr.terminal td.event{background:#e8f5e9}\
tr.compensation td.event{background:#f3e5f5}\
.arrow{font-weight:700}tr.forward .arrow{color:#1565c0}tr.terminal .arrow{color:#2e7d32}\
tr.compensation .arrow{color:#6a1b9a}small{color:#666;display:block}\
pre{font-size:.75rem;white-space:pre-wrap;overflow-wrap:anywhere;margin:.3rem 0}";

/// The HTML page drawing `saga`'s timeline.
pub fn render(saga: &Saga) -> String {
    let summary = &saga.summary;
    let orphan = if summary.orphan {
        "<p class=\"notice orphan\"><strong>Orphan saga.</strong> Compensation was asked for a \
         saga no service saw start, so there was nothing to undo. It becomes an ordinary saga \
         if its purchase turns up.</p>\n"
    } else {
        ""
    };
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" \
         content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>saga {id}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         {header}{orphan}{timeline}</body>\n</html>\n",
        id = escape(&summary.saga_id),
        header = header(summary),
        timeline = timeline(saga),
    )
}

/// The saga's identity, status and facts.
fn header(summary: &SagaSummary) -> String {
    let or_dash = |value: Option<String>| value.unwrap_or_else(|| "—".to_owned());
    let fields = [
        (
            "Campaign",
            or_dash(summary.campaign_id.as_deref().map(escape)),
        ),
        (
            "Partner",
            or_dash(summary.partner_id.as_deref().map(escape)),
        ),
        ("Amount", or_dash(summary.amount.as_ref().map(money))),
        ("Started", time(summary.started_at)),
        ("Updated", time(summary.updated_at)),
        ("Finished", or_dash(summary.finished_at.map(time))),
        ("Deadline", or_dash(summary.deadline.map(time))),
        ("Duration", or_dash(summary.duration_ms.map(span))),
    ];
    let rows: String = fields
        .iter()
        .map(|(name, value)| format!("<dt>{name}</dt><dd>{value}</dd>\n"))
        .collect();
    format!(
        "<h1>Saga {id} <span class=\"badge {tone}\">{status}</span></h1>\n<dl>\n{rows}</dl>\n",
        id = escape(&summary.saga_id),
        tone = tone(summary.status),
        status = summary.status,
    )
}

/// One row per step, one column per service; services outside [`LANES`] get a lane of their
/// own rather than disappearing.
fn timeline(saga: &Saga) -> String {
    let mut lanes: Vec<&str> = LANES.to_vec();
    for step in &saga.steps {
        if !lanes.contains(&step.service.as_str()) {
            lanes.push(&step.service);
        }
    }
    let heads: String = lanes
        .iter()
        .map(|lane| format!("<th>{}</th>", escape(lane)))
        .collect();
    let rows: String = if saga.steps.is_empty() {
        format!(
            "<tr><td colspan=\"{}\">No steps recorded.</td></tr>\n",
            lanes.len() + 1
        )
    } else {
        let start = saga.summary.started_at;
        saga.steps.iter().map(|s| row(s, start, &lanes)).collect()
    };
    format!(
        "<h2>Timeline</h2>\n<table>\n<thead><tr><th class=\"offset\">since start</th>{heads}\
         </tr></thead>\n<tbody>\n{rows}</tbody>\n</table>\n"
    )
}

/// A step's row: its offset, then its cell in its service's lane.
fn row(step: &RecordedStep, start: Timestamp, lanes: &[&str]) -> String {
    let payload = serde_json::to_string_pretty(&step.payload).unwrap_or_default();
    let cells: String = lanes
        .iter()
        .map(|lane| {
            if *lane != step.service {
                return "<td></td>".to_owned();
            }
            format!(
                "<td class=\"event\"><span class=\"arrow\">{arrow}</span> <strong>{kind}</strong>\
                 <small>{occurred}</small><details><summary>event {id}</summary>\
                 <small>recorded {recorded}</small><pre>{payload}</pre></details></td>",
                arrow = arrow(step.direction),
                kind = escape(&step.event_type),
                occurred = time(step.occurred_at),
                id = escape(&step.event_id),
                recorded = time(step.recorded_at),
                payload = escape(&payload),
            )
        })
        .collect();
    format!(
        "<tr class=\"step {direction}\"><td class=\"offset\">+{offset}</td>{cells}</tr>\n",
        direction = step.direction.as_str(),
        offset = span((step.occurred_at - start).num_milliseconds()),
    )
}

/// The badge colour of a status: green done, grey refused, purple undone, orange undoing,
/// red orphaned, blue under way.
fn tone(status: Status) -> &'static str {
    match status {
        Status::Completed => "green",
        Status::Rejected => "grey",
        Status::Compensated => "purple",
        Status::Compensating | Status::TimedOut => "orange",
        Status::Orphaned => "red",
        Status::Started | Status::Attributed => "blue",
    }
}

/// Forward moves on, terminal stops, compensation goes back.
fn arrow(direction: Direction) -> &'static str {
    match direction {
        Direction::Forward => "→",
        Direction::Terminal => "■",
        Direction::Compensation => "←",
    }
}

/// `amount` in major units, e.g. `120.00 EUR`; JPY and KRW have no minor unit.
fn money(amount: &Money) -> String {
    let decimals = match amount.currency.as_str() {
        "JPY" | "KRW" => 0,
        _ => 2,
    };
    let sign = if amount.amount_minor < 0 { "-" } else { "" };
    let minor = amount.amount_minor.unsigned_abs();
    let number = if decimals == 0 {
        minor.to_string()
    } else {
        format!("{}.{:02}", minor / 100, minor % 100)
    };
    format!("{sign}{number} {}", escape(&amount.currency))
}

/// `ms` milliseconds as people read them: `245 ms`, `1.204 s`, `2 min 5.000 s`.
fn span(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let ms = ms.unsigned_abs();
    match ms {
        0..1_000 => format!("{sign}{ms} ms"),
        1_000..60_000 => format!("{sign}{}.{:03} s", ms / 1_000, ms % 1_000),
        _ => format!(
            "{sign}{} min {}.{:03} s",
            ms / 60_000,
            ms % 60_000 / 1_000,
            ms % 1_000
        ),
    }
}

fn time(at: Timestamp) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `text` safe inside HTML elements and quoted attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn at(ms: i64) -> Timestamp {
        chrono::Utc
            .timestamp_millis_opt(1_800_000_000_000 + ms)
            .unwrap()
    }

    fn step(event_type: &str, service: &str, direction: Direction, ms: i64) -> RecordedStep {
        RecordedStep {
            event_id: format!("e-{event_type}"),
            event_type: event_type.into(),
            service: service.into(),
            direction,
            occurred_at: at(ms),
            recorded_at: at(ms + 3),
            payload: json!({ "note": format!("{event_type} payload") }),
        }
    }

    fn saga(saga_id: &str, status: Status, orphan: bool, steps: Vec<RecordedStep>) -> Saga {
        Saga {
            summary: SagaSummary {
                saga_id: saga_id.into(),
                status,
                orphan,
                campaign_id: (!orphan).then(|| "c-1".into()),
                partner_id: (!orphan).then(|| "p-1".into()),
                amount: (!orphan).then(|| Money::new(12_000, "EUR")),
                started_at: at(0),
                updated_at: at(6_100),
                finished_at: Some(at(6_000)),
                deadline: None,
                duration_ms: Some(6_000),
            },
            steps,
        }
    }

    /// Each step row's direction class, event type and lane (column index among the lanes).
    fn rows(html: &str) -> Vec<(&str, &str, usize)> {
        html.split("<tr class=\"step ")
            .skip(1)
            .map(|row| {
                let (class, row) = row.split_once('"').unwrap();
                let row = row.split_once("</tr>").unwrap().0;
                let kind = row.split_once("<strong>").unwrap().1;
                let kind = kind.split_once("</strong>").unwrap().0;
                // The first cell is the offset; the lanes follow.
                let mut cells = row.split("<td").skip(2);
                let lane = cells.position(|c| c.contains("<strong>")).unwrap();
                (class, kind, lane)
            })
            .collect()
    }

    #[test]
    fn a_compensated_saga_shows_every_step_in_order_in_its_lane() {
        use Direction::*;
        let steps = vec![
            step("InteractionTracked", "tracking", Forward, 0),
            step("ConversionAttributed", "attribution", Forward, 120),
            step("CommissionReserved", "commission", Terminal, 250),
            step("FraudDetected", "marketing", Compensation, 4_000),
            step("CommissionReverted", "commission", Compensation, 4_300),
            step("AttributionReverted", "attribution", Compensation, 4_500),
            step("InteractionsDiscarded", "tracking", Compensation, 6_000),
        ];
        let html = render(&saga("s-1", Status::Compensated, false, steps));

        assert_eq!(
            rows(&html),
            [
                ("forward", "InteractionTracked", 0),
                ("forward", "ConversionAttributed", 1),
                ("terminal", "CommissionReserved", 2),
                ("compensation", "FraudDetected", 3),
                ("compensation", "CommissionReverted", 2),
                ("compensation", "AttributionReverted", 1),
                ("compensation", "InteractionsDiscarded", 0),
            ]
        );
        for text in [
            "<span class=\"badge purple\">COMPENSATED</span>",
            "120.00 EUR",
            "<dt>Duration</dt><dd>6.000 s</dd>",
            "<td class=\"offset\">+120 ms</td>",
            "<td class=\"offset\">+4.300 s</td>",
            "&quot;note&quot;: &quot;FraudDetected payload&quot;",
        ] {
            assert!(html.contains(text), "{text} missing from\n{html}");
        }
        assert!(!html.contains("notice orphan"));
    }

    #[test]
    fn an_orphan_saga_says_so() {
        let fraud = step("FraudDetected", "marketing", Direction::Compensation, 0);
        let html = render(&saga("s-2", Status::Orphaned, true, vec![fraud]));
        assert!(html.contains("<p class=\"notice orphan\">"));
        assert!(html.contains("<span class=\"badge red\">ORPHANED</span>"));
        assert!(html.contains("<dt>Campaign</dt><dd>—</dd>"));
        assert_eq!(rows(&html).len(), 1);
    }

    #[test]
    fn user_text_cannot_inject_markup() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        let evil = "</pre><script>alert(1)</script>";
        let mut hostile = step(evil, evil, Direction::Forward, 0);
        hostile.payload = json!({ "reason": evil });
        let html = render(&saga(evil, Status::Started, false, vec![hostile]));
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;"));
    }

    #[test]
    fn amounts_and_spans_read_as_people_write_them() {
        assert_eq!(money(&Money::new(12_000, "EUR")), "120.00 EUR");
        assert_eq!(money(&Money::new(-5, "USD")), "-0.05 USD");
        assert_eq!(money(&Money::new(1_500, "JPY")), "1500 JPY");
        assert_eq!(span(245), "245 ms");
        assert_eq!(span(125_007), "2 min 5.007 s");
    }
}
