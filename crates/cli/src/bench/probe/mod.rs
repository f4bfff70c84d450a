//! The counters the bench reads before and after the load; their differences, divided by the
//! sagas completed, are its figures.
//!
//! Three sources, each counted by the thing that does the work, so that no service needs
//! instrumenting and nothing is estimated: CPU ticks from `/proc` ([`cpu`]), commands received
//! by FerretDB ([`ferretdb`]), messages through Pulsar's topics ([`pulsar`]). Postgres commits
//! are read by `scripts/bench.sh` with `psql`: the CLI has no Postgres driver, and one query
//! does not justify one.
//!
//! Reading costs: every topic's stats is a REST call the broker serves, the metrics page is
//! work for FerretDB. So the snapshot before the load reads those first and the CPU last, and
//! the one after reads the CPU first: neither reading falls inside the measured window.
//!
//! A source that cannot be read is a note in the report, not a failed run: CPU per process is
//! worth having even when the FerretDB endpoint is elsewhere.

pub mod cpu;
pub mod ferretdb;
pub mod pulsar;

use std::collections::BTreeMap;
use std::path::Path;

use pulsar::{PulsarAdmin, TopicCounters};

/// Where the counters are.
pub struct Probes {
    processes: Vec<cpu::Process>,
    ferretdb_metrics: String,
    http: reqwest::Client,
    pulsar: PulsarAdmin,
}

/// Which side of the load a snapshot is on (see the module's note on reading costs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Before,
    After,
}

/// Every counter at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Ticks by process, or why there is no reading.
    pub cpu: Vec<(String, Result<cpu::Reading, String>)>,
    /// The bench's own ticks.
    pub client: Option<u64>,
    /// FerretDB's commands received, by command.
    pub store: Result<BTreeMap<String, u64>, String>,
    /// Messages by topic, and the topics whose stats could not be read.
    pub pulsar: Result<(BTreeMap<String, TopicCounters>, Vec<String>), String>,
}

impl Probes {
    /// Probes of the stack whose pid files are under `stack_dir`, FerretDB's metrics at
    /// `ferretdb_metrics`, Pulsar through `pulsar`.
    pub fn new(stack_dir: &Path, ferretdb_metrics: &str, pulsar: PulsarAdmin) -> Self {
        Self {
            processes: cpu::platform(stack_dir),
            ferretdb_metrics: ferretdb_metrics.to_owned(),
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            pulsar,
        }
    }

    /// Reads every counter, in the order `side` asks for.
    pub async fn snapshot(&self, side: Side) -> Snapshot {
        let read_cpu = || (cpu::read_all(&self.processes), cpu::own_ticks());
        let (cpu, client, store, pulsar) = match side {
            Side::Before => {
                let store = self.store().await;
                let pulsar = self.pulsar.counters().await;
                let (cpu, client) = read_cpu();
                (cpu, client, store, pulsar)
            }
            Side::After => {
                let (cpu, client) = read_cpu();
                let store = self.store().await;
                let pulsar = self.pulsar.counters().await;
                (cpu, client, store, pulsar)
            }
        };
        Snapshot {
            cpu,
            client,
            store,
            pulsar,
        }
    }

    async fn store(&self) -> Result<BTreeMap<String, u64>, String> {
        let url = &self.ferretdb_metrics;
        let response = self
            .http
            .get(url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| format!("FerretDB metrics at {url}: {e}"))?;
        let text = response
            .text()
            .await
            .map_err(|e| format!("FerretDB metrics at {url}: {e}"))?;
        let by_command = ferretdb::requests_by_command(&text);
        if by_command.is_empty() {
            return Err(format!(
                "FerretDB metrics at {url} hold no ferretdb_client_requests_total"
            ));
        }
        Ok(by_command)
    }
}

/// CPU ticks one process spent during the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessTicks {
    pub name: String,
    pub pid: u32,
    pub ticks: u64,
}

/// What the run cost: the differences between two snapshots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Costs {
    /// The processes that could be read both times.
    pub processes: Vec<ProcessTicks>,
    pub client_ticks: Option<u64>,
    /// Commands by name; only those that moved.
    pub store: Option<BTreeMap<String, u64>>,
    /// Messages by topic; only the topics that moved.
    pub pulsar: Option<BTreeMap<String, TopicCounters>>,
    /// What was left out, and why.
    pub notes: Vec<String>,
}

/// The differences from `before` to `after`. A process whose pid changed (restarted) and a
/// counter that went backwards (reset) are left out with a note: their difference means
/// nothing.
pub fn costs(before: &Snapshot, after: &Snapshot) -> Costs {
    let mut costs = Costs::default();
    for (name, reading) in &after.cpu {
        let earlier = before.cpu.iter().find(|(n, _)| n == name).map(|(_, r)| r);
        match (earlier, reading) {
            (Some(Ok(b)), Ok(a)) if a.pid == b.pid && a.ticks >= b.ticks => {
                costs.processes.push(ProcessTicks {
                    name: name.clone(),
                    pid: a.pid,
                    ticks: a.ticks - b.ticks,
                });
            }
            (Some(Ok(b)), Ok(a)) if a.pid != b.pid => costs.notes.push(format!(
                "{name}: skipped, restarted during the run (pid {} then {})",
                b.pid, a.pid
            )),
            (Some(Ok(_)), Ok(_)) => {
                costs
                    .notes
                    .push(format!("{name}: skipped, its CPU time went backwards"));
            }
            (Some(Err(why)), _) | (_, Err(why)) => {
                costs.notes.push(format!("{name}: skipped, {why}"));
            }
            (None, Ok(_)) => costs
                .notes
                .push(format!("{name}: skipped, not read before")),
        }
    }
    costs.client_ticks = match (before.client, after.client) {
        (Some(b), Some(a)) => a.checked_sub(b),
        _ => None,
    };
    costs.store = match (&before.store, &after.store) {
        (Ok(b), Ok(a)) => {
            let moved = differences(b, a);
            match moved {
                Ok(moved) => Some(moved),
                Err(command) => {
                    costs.notes.push(format!(
                        "store: skipped, FerretDB's count of {command} went backwards (restarted?)"
                    ));
                    None
                }
            }
        }
        (Err(why), _) | (_, Err(why)) => {
            costs.notes.push(format!("store: skipped, {why}"));
            None
        }
    };
    costs.pulsar = match (&before.pulsar, &after.pulsar) {
        (Ok((b, _)), Ok((a, unreadable))) => {
            costs.notes.extend(
                unreadable
                    .iter()
                    .map(|why| format!("pulsar: a topic skipped, {why}")),
            );
            let mut moved = BTreeMap::new();
            for (topic, now) in a {
                let was = b.get(topic).copied().unwrap_or_default();
                match (
                    now.published.checked_sub(was.published),
                    now.delivered.checked_sub(was.delivered),
                ) {
                    (Some(0), Some(0)) => {}
                    (Some(published), Some(delivered)) => {
                        moved.insert(
                            topic.clone(),
                            TopicCounters {
                                published,
                                delivered,
                            },
                        );
                    }
                    _ => costs.notes.push(format!(
                        "pulsar: {topic} skipped, its counters went backwards (topic reloaded?)"
                    )),
                }
            }
            Some(moved)
        }
        (Err(why), _) | (_, Err(why)) => {
            costs.notes.push(format!("pulsar: skipped, {why}"));
            None
        }
    };
    costs
}

/// `after - before` per key, keeping only what moved; `Err(key)` for a key that went
/// backwards. Keys new in `after` count from zero.
fn differences(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
) -> Result<BTreeMap<String, u64>, String> {
    let mut moved = BTreeMap::new();
    for (key, now) in after {
        let was = before.get(key).copied().unwrap_or(0);
        let delta = now.checked_sub(was).ok_or_else(|| key.clone())?;
        if delta > 0 {
            moved.insert(key.clone(), delta);
        }
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::cpu::Reading;
    use super::*;

    /// A process's name, and its pid and ticks or why it has none.
    type Process<'a> = (&'a str, Result<(u32, u64), &'a str>);

    fn snapshot(cpu: &[Process], store: &[(&str, u64)], topics: &[(&str, u64, u64)]) -> Snapshot {
        Snapshot {
            cpu: cpu
                .iter()
                .map(|(name, r)| {
                    let r = (*r)
                        .map(|(pid, ticks)| Reading { pid, ticks })
                        .map_err(str::to_owned);
                    ((*name).to_owned(), r)
                })
                .collect(),
            client: Some(10),
            store: Ok(store.iter().map(|(c, n)| ((*c).to_owned(), *n)).collect()),
            pulsar: Ok((
                topics
                    .iter()
                    .map(|(t, published, delivered)| {
                        (
                            (*t).to_owned(),
                            TopicCounters {
                                published: *published,
                                delivered: *delivered,
                            },
                        )
                    })
                    .collect(),
                Vec::new(),
            )),
        }
    }

    #[test]
    fn costs_are_differences_and_what_cannot_be_compared_is_noted() {
        let before = snapshot(
            &[
                ("pulsar", Ok((1, 100))),
                ("ferretdb", Ok((2, 50))),
                ("tracking", Err("no pid file x")),
            ],
            &[("insert", 10), ("find", 5)],
            &[("t1", 7, 14), ("t2", 3, 3)],
        );
        let after = snapshot(
            &[
                ("pulsar", Ok((1, 160))),
                ("ferretdb", Ok((9, 80))),
                ("tracking", Err("no pid file x")),
            ],
            &[("insert", 28), ("find", 5), ("update", 4)],
            &[("t1", 12, 24), ("t2", 3, 3), ("t3", 1, 2)],
        );
        let costs = costs(&before, &after);
        assert_eq!(
            costs.processes,
            [ProcessTicks {
                name: "pulsar".into(),
                pid: 1,
                ticks: 60
            }]
        );
        assert_eq!(costs.client_ticks, Some(0));
        let store = costs.store.unwrap();
        assert_eq!(
            store.into_iter().collect::<Vec<_>>(),
            [("insert".to_owned(), 18), ("update".to_owned(), 4)]
        );
        let pulsar = costs.pulsar.unwrap();
        assert_eq!(
            pulsar.into_iter().collect::<Vec<_>>(),
            [
                (
                    "t1".to_owned(),
                    TopicCounters {
                        published: 5,
                        delivered: 10
                    }
                ),
                (
                    "t3".to_owned(),
                    TopicCounters {
                        published: 1,
                        delivered: 2
                    }
                ),
            ]
        );
        assert_eq!(costs.notes.len(), 2, "{:?}", costs.notes);
        assert!(costs.notes[0].contains("ferretdb: skipped, restarted"));
        assert!(costs.notes[1].contains("tracking: skipped, no pid file"));
    }

    #[test]
    fn counters_that_went_backwards_are_left_out() {
        let before = snapshot(&[], &[("insert", 10)], &[("t1", 7, 14)]);
        let after = snapshot(&[], &[("insert", 2)], &[("t1", 1, 1)]);
        let costs = costs(&before, &after);
        assert_eq!(costs.store, None);
        assert_eq!(costs.pulsar, Some(BTreeMap::new()));
        assert_eq!(costs.notes.len(), 2, "{:?}", costs.notes);
    }
}
