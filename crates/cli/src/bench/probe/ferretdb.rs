//! Store operations, counted by FerretDB itself: the `ferretdb_client_requests_total` counter
//! of its Prometheus endpoint (`--debug-addr`, `/debug/metrics`), labelled by `opcode` and
//! `command`.
//!
//! Counting at the server rather than in the services means nothing has to be instrumented and
//! every client is seen. A bulk write counts once (one `insert` command carrying many
//! documents), which is what costs: FerretDB's price is per command far more than per document
//! (`shared/PERFORMANCE.md`). Connection handshakes and health checks (`hello`, `ping`, ...)
//! are kept apart from the data commands a saga causes.

use std::collections::BTreeMap;

/// The counter of commands received.
const REQUESTS: &str = "ferretdb_client_requests_total";

/// Commands that are handshakes, health checks or session bookkeeping rather than work on the
/// data; compared lowercase.
const ADMIN_COMMANDS: &[&str] = &[
    "hello",
    "ismaster",
    "ping",
    "buildinfo",
    "getparameter",
    "getcmdlineopts",
    "getlog",
    "hostinfo",
    "whatsmyuri",
    "connectionstatus",
    "serverstatus",
    "saslstart",
    "saslcontinue",
    "endsessions",
    "getfreemonitoringstatus",
    "listdatabases",
];

/// Whether `command` is an administrative one (see [`ADMIN_COMMANDS`]).
pub fn is_admin(command: &str) -> bool {
    ADMIN_COMMANDS.contains(&command.to_ascii_lowercase().as_str())
}

/// Commands received so far, by command name, summed over opcodes, from a Prometheus text
/// exposition.
pub fn requests_by_command(exposition: &str) -> BTreeMap<String, u64> {
    let mut by_command = BTreeMap::new();
    for line in exposition.lines() {
        let Some(sample) = parse_sample(line) else {
            continue;
        };
        if sample.name != REQUESTS {
            continue;
        }
        let command = sample
            .labels
            .into_iter()
            .find(|(name, _)| name == "command")
            .map_or_else(|| "(none)".to_owned(), |(_, value)| value);
        *by_command.entry(command).or_insert(0) += sample.value.round() as u64;
    }
    by_command
}

/// One sample line: `name{label="value",...} value [timestamp]`.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

/// Parses a sample line; comments, blank lines and malformed lines give `None`.
fn parse_sample(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .unwrap_or(line.len());
    let name = &line[..name_end];
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let (parsed, after) = parse_labels(inner)?;
        labels = parsed;
        rest = after;
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// Parses `label="value",...}` (escapes `\\`, `\"`, `\n` in values); the labels and what
/// follows the closing brace.
fn parse_labels(mut text: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut labels = Vec::new();
    loop {
        text = text.trim_start();
        if let Some(after) = text.strip_prefix('}') {
            return Some((labels, after));
        }
        let eq = text.find('=')?;
        let name = text[..eq].trim().to_owned();
        text = text[eq + 1..].trim_start().strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = text.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                (_, c) => value.push(c),
            }
        };
        labels.push((name, value));
        text = text[end + 1..].trim_start();
        text = text.strip_prefix(',').unwrap_or(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPOSITION: &str = r#"# HELP ferretdb_client_requests_total Total number of requests.
# TYPE ferretdb_client_requests_total counter
ferretdb_client_requests_total{command="find",opcode="OP_MSG"} 13
ferretdb_client_requests_total{command="hello",opcode="OP_MSG"} 4
ferretdb_client_requests_total{command="insert",opcode="OP_MSG"} 1.8e+01
ferretdb_client_requests_total{command="isMaster",opcode="OP_QUERY"} 2
ferretdb_client_requests_total{opcode="OP_QUERY",command="find"} 1
# HELP ferretdb_client_responses_total Total number of responses.
ferretdb_client_responses_total{argument="unknown",command="find",opcode="OP_MSG",result="ok"} 13
ferretdb_client_requests_total_other{command="find"} 99
go_goroutines 42
"#;

    #[test]
    fn requests_are_summed_by_command_over_opcodes() {
        let by_command = requests_by_command(EXPOSITION);
        assert_eq!(
            by_command.into_iter().collect::<Vec<_>>(),
            [
                ("find".to_owned(), 14),
                ("hello".to_owned(), 4),
                ("insert".to_owned(), 18),
                ("isMaster".to_owned(), 2),
            ]
        );
    }

    #[test]
    fn label_values_may_hold_commas_braces_and_escaped_quotes() {
        let sample =
            parse_sample(r#"m{a="x,y}",b="say \"hi\"\n", c = "\\"} 3 1700000000000"#).unwrap();
        assert_eq!(sample.name, "m");
        assert_eq!(
            sample.labels,
            [
                ("a".to_owned(), "x,y}".to_owned()),
                ("b".to_owned(), "say \"hi\"\n".to_owned()),
                ("c".to_owned(), "\\".to_owned()),
            ]
        );
        assert_eq!(sample.value, 3.0);
        assert_eq!(parse_sample("plain 2.5").unwrap().value, 2.5);
        assert_eq!(parse_sample(r#"broken{a="x} 1"#), None);
        assert_eq!(parse_sample("# TYPE m counter"), None);
    }

    #[test]
    fn handshakes_and_health_checks_are_admin_commands() {
        assert!(is_admin("hello") && is_admin("isMaster") && is_admin("buildInfo"));
        assert!(!is_admin("insert") && !is_admin("find") && !is_admin("update"));
    }
}
