//! The bench's result: the sagas' fate and latency, then what one completed saga cost in CPU
//! per process, store commands and Pulsar messages; as tables for people, as one JSON object
//! for scripts (`--json`).
//!
//! Every cost is divided by the sagas *completed* (outcome heard): work spent on sagas still
//! open at the end is included, so a run that leaves many open overstates the cost per saga,
//! and says so by its stuck count.

use std::time::Duration;

use serde::Serialize;

use super::observe::Ending;
use super::probe::Costs;
use super::probe::ferretdb::is_admin;
use super::tally::Tally;
use crate::simulate::report::percentile;
use crate::table::Table;

/// Stuck sagas named in the result; the rest are counted.
const STUCK_SHOWN: usize = 20;

/// Errors quoted in the result; the rest are counted.
const ERRORS_SHOWN: usize = 10;

/// Everything a run reports.
#[derive(Debug, Clone, Serialize)]
pub struct Results {
    pub run_id: String,
    pub campaign_id: String,
    /// Sagas started per second, as asked.
    pub offered_rate: f64,
    pub duration_s: f64,
    pub views: u32,
    pub clicks: u32,
    pub fraud_rate: f64,
    pub sagas: Sagas,
    /// Purchase answered → outcome heard, in milliseconds.
    pub latency_ms: Latency,
    /// Fraud report answered → `InteractionsDiscarded` heard (the compensation's last step), in
    /// milliseconds; absent when the run reports no fraud.
    pub compensation_ms: Option<Latency>,
    pub cpu: Cpu,
    /// FerretDB commands; absent when its metrics could not be read.
    pub store: Option<Store>,
    /// Pulsar messages; absent when its stats could not be read.
    pub pulsar: Option<Messages>,
    /// What was left out of the figures, and why.
    pub notes: Vec<String>,
}

/// What became of the sagas.
#[derive(Debug, Clone, Serialize)]
pub struct Sagas {
    pub planned: usize,
    pub started: usize,
    /// Outcome heard: reserved, rejected or (fraud) reverted.
    pub completed: usize,
    pub reserved: usize,
    pub rejected: usize,
    pub reverted: usize,
    /// Started, no outcome heard by the end of the settle time.
    pub stuck: usize,
    /// Visitors whose requests failed before a saga started.
    pub failed: usize,
    pub fraud_reported: usize,
    /// Reported as fraud, and heard to end their compensation.
    pub compensated: usize,
    /// Reported as fraud, compensation not heard to end by the end of the settle time.
    pub uncompensated: usize,
    /// From the first arrival to the last outcome heard.
    pub window_s: f64,
    /// Completed sagas per second over the window.
    pub completed_per_s: f64,
    /// Up to 20 of the stuck sagas (forward path or compensation unfinished).
    pub stuck_sample: Vec<String>,
    pub errors: usize,
    /// Up to 10 of the errors.
    pub error_sample: Vec<String>,
}

/// Latency percentiles in milliseconds (nearest rank).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Latency {
    pub count: usize,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
}

impl Latency {
    pub fn of(latencies: &[Duration]) -> Self {
        let micros: Vec<i64> = latencies
            .iter()
            .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
            .collect();
        let ms = |p: f64| percentile(&micros, p).map(|us| us as f64 / 1000.0);
        Self {
            count: micros.len(),
            p50: ms(50.0),
            p90: ms(90.0),
            p99: ms(99.0),
            max: ms(100.0),
        }
    }
}

/// CPU time during the run.
#[derive(Debug, Clone, Serialize)]
pub struct Cpu {
    pub ticks_per_second: u64,
    pub processes: Vec<ProcessCpu>,
    /// The platform: every process measured.
    pub total_ms: f64,
    pub total_ms_per_saga: Option<f64>,
    /// The bench itself, not part of the total.
    pub client_ms: Option<f64>,
    pub client_ms_per_saga: Option<f64>,
    /// Cores of this machine; `cores × 1000 / total_ms_per_saga` bounds the sagas per second.
    pub cores: usize,
    pub capacity_sagas_per_s: Option<f64>,
}

/// One process's CPU time during the run.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessCpu {
    pub name: String,
    pub pid: u32,
    pub ms: f64,
    pub ms_per_saga: Option<f64>,
}

/// FerretDB commands during the run.
#[derive(Debug, Clone, Serialize)]
pub struct Store {
    /// Commands on data, by name.
    pub commands: Vec<Count>,
    pub total: u64,
    pub total_per_saga: Option<f64>,
    /// Handshakes and health checks, by name.
    pub admin: Vec<Count>,
    pub admin_per_saga: Option<f64>,
}

/// How often something happened during the run.
#[derive(Debug, Clone, Serialize)]
pub struct Count {
    pub name: String,
    pub count: u64,
    pub per_saga: Option<f64>,
}

/// Pulsar messages during the run.
#[derive(Debug, Clone, Serialize)]
pub struct Messages {
    pub topics: Vec<TopicMessages>,
    pub published: u64,
    pub delivered: u64,
    pub published_per_saga: Option<f64>,
    pub delivered_per_saga: Option<f64>,
}

/// One topic's messages during the run.
#[derive(Debug, Clone, Serialize)]
pub struct TopicMessages {
    /// The topic's short name.
    pub topic: String,
    pub published: u64,
    pub delivered: u64,
}

/// The run's settings, for [`results`].
pub struct Settings {
    pub run_id: String,
    pub campaign_id: String,
    pub rate: f64,
    pub duration: Duration,
    pub views: u32,
    pub clicks: u32,
    pub fraud_rate: f64,
    pub planned: usize,
    pub ticks_per_second: u64,
    pub cores: usize,
}

/// Puts the tally and the costs together.
pub fn results(settings: Settings, tally: &Tally, window: Duration, costs: Costs) -> Results {
    let completed = tally.finished.len();
    let per_saga = |x: f64| (completed > 0).then(|| x / completed as f64);
    let count = |name: &str, n: u64| Count {
        name: name.to_owned(),
        count: n,
        per_saga: per_saga(n as f64),
    };
    let ending = |e: Ending| tally.finished.iter().filter(|f| f.ending == e).count();
    let latencies: Vec<Duration> = tally.finished.iter().map(|f| f.latency).collect();
    let mut stuck_sample: Vec<String> =
        tally.open().chain(tally.uncompensated()).cloned().collect();
    stuck_sample.sort();
    stuck_sample.truncate(STUCK_SHOWN);

    let ms = |ticks: u64| ticks as f64 * 1000.0 / settings.ticks_per_second as f64;
    let processes: Vec<ProcessCpu> = costs
        .processes
        .iter()
        .map(|p| ProcessCpu {
            name: p.name.clone(),
            pid: p.pid,
            ms: ms(p.ticks),
            ms_per_saga: per_saga(ms(p.ticks)),
        })
        .collect();
    let total_ms: f64 = processes.iter().map(|p| p.ms).sum();
    let total_ms_per_saga = per_saga(total_ms);
    let client_ms = costs.client_ticks.map(ms);

    let store = costs.store.map(|by_command| {
        let (admin, data): (Vec<_>, Vec<_>) = by_command
            .into_iter()
            .partition(|(command, _)| is_admin(command));
        let total: u64 = data.iter().map(|(_, n)| n).sum();
        let admin_total: u64 = admin.iter().map(|(_, n)| n).sum();
        Store {
            commands: data.iter().map(|(c, n)| count(c, *n)).collect(),
            total,
            total_per_saga: per_saga(total as f64),
            admin: admin.iter().map(|(c, n)| count(c, *n)).collect(),
            admin_per_saga: per_saga(admin_total as f64),
        }
    });
    let pulsar = costs.pulsar.map(|by_topic| {
        let topics: Vec<TopicMessages> = by_topic
            .into_iter()
            .map(|(topic, c)| TopicMessages {
                topic: short_topic(&topic).to_owned(),
                published: c.published,
                delivered: c.delivered,
            })
            .collect();
        let published = topics.iter().map(|t| t.published).sum();
        let delivered = topics.iter().map(|t| t.delivered).sum();
        Messages {
            topics,
            published,
            delivered,
            published_per_saga: per_saga(published as f64),
            delivered_per_saga: per_saga(delivered as f64),
        }
    });

    Results {
        run_id: settings.run_id,
        campaign_id: settings.campaign_id,
        offered_rate: settings.rate,
        duration_s: settings.duration.as_secs_f64(),
        views: settings.views,
        clicks: settings.clicks,
        fraud_rate: settings.fraud_rate,
        sagas: Sagas {
            planned: settings.planned,
            started: tally.started,
            completed,
            reserved: ending(Ending::Reserved),
            rejected: ending(Ending::Rejected),
            reverted: ending(Ending::Reverted),
            stuck: tally.open().count(),
            failed: tally.failed,
            fraud_reported: tally.fraud_reported,
            compensated: tally.compensations.len(),
            uncompensated: tally.uncompensated().count(),
            window_s: window.as_secs_f64(),
            completed_per_s: if window.is_zero() {
                0.0
            } else {
                completed as f64 / window.as_secs_f64()
            },
            stuck_sample,
            errors: tally.errors.len(),
            error_sample: tally.errors.iter().take(ERRORS_SHOWN).cloned().collect(),
        },
        latency_ms: Latency::of(&latencies),
        compensation_ms: (settings.fraud_rate > 0.0).then(|| Latency::of(&tally.compensations)),
        cpu: Cpu {
            ticks_per_second: settings.ticks_per_second,
            processes,
            total_ms,
            total_ms_per_saga,
            client_ms,
            client_ms_per_saga: client_ms.and_then(per_saga),
            cores: settings.cores,
            capacity_sagas_per_s: total_ms_per_saga
                .filter(|&ms| ms > 0.0)
                .map(|ms| settings.cores as f64 * 1000.0 / ms),
        },
        store,
        pulsar,
        notes: costs.notes,
    }
}

/// `persistent://alpes/events/x` → `x`.
fn short_topic(topic: &str) -> &str {
    topic.rsplit('/').next().unwrap_or(topic)
}

/// The result for people.
pub fn render(r: &Results) -> String {
    let s = &r.sagas;
    let plural = |n: u32, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    let mut out = format!(
        "run {}, campaign {}: {:.1} sagas/s offered for {:.0} s ({} and {} per saga, {:.0} % \
         reported as fraud)\n\n",
        r.run_id,
        r.campaign_id,
        r.offered_rate,
        r.duration_s,
        plural(r.views, "view"),
        plural(r.clicks, "click"),
        r.fraud_rate * 100.0
    );
    out.push_str(&format!(
        "sagas       {} planned, {} started, {} completed ({} reserved, {} rejected, {} \
         reverted), {} stuck, {} failed to start\n",
        s.planned, s.started, s.completed, s.reserved, s.rejected, s.reverted, s.stuck, s.failed
    ));
    out.push_str(&format!(
        "throughput  {:.1} sagas/s completed, {:.1} offered ({} completed in {:.1} s, first \
         arrival to last outcome)\n",
        s.completed_per_s, r.offered_rate, s.completed, s.window_s
    ));
    let l = &r.latency_ms;
    out.push_str(&format!(
        "latency     purchase → commission outcome: p50 {}  p90 {}  p99 {}  max {}\n",
        millis(l.p50),
        millis(l.p90),
        millis(l.p99),
        millis(l.max)
    ));
    if let Some(c) = &r.compensation_ms {
        out.push_str(&format!(
            "compensation fraud report → interactions discarded: p50 {}  p90 {}  p99 {}  max {} \
             ({} of {} reported compensated, {} not heard to end)\n",
            millis(c.p50),
            millis(c.p90),
            millis(c.p99),
            millis(c.max),
            s.compensated,
            s.fraud_reported,
            s.uncompensated
        ));
    }
    out.push('\n');

    let mut cpu = Table::new(&["PROCESS", "PID", "CPU", "MS/SAGA"]).right_align(&[1, 2, 3]);
    for p in &r.cpu.processes {
        cpu.row([
            p.name.clone(),
            p.pid.to_string(),
            seconds(p.ms),
            decimal(p.ms_per_saga, 2),
        ]);
    }
    cpu.row([
        "platform".to_owned(),
        String::new(),
        seconds(r.cpu.total_ms),
        decimal(r.cpu.total_ms_per_saga, 2),
    ]);
    if let Some(client) = r.cpu.client_ms {
        cpu.row([
            "(bench client, not in the platform)".to_owned(),
            std::process::id().to_string(),
            seconds(client),
            decimal(r.cpu.client_ms_per_saga, 2),
        ]);
    }
    out.push_str(&cpu.render());
    if let Some(capacity) = r.cpu.capacity_sagas_per_s {
        out.push_str(&format!(
            "capacity bound: {} cores × 1000 / {} ms per saga ≈ {capacity:.0} sagas/s\n",
            r.cpu.cores,
            decimal(r.cpu.total_ms_per_saga, 1)
        ));
    }
    out.push('\n');

    if let Some(store) = &r.store {
        let mut table = Table::new(&["STORE COMMAND", "OPS", "PER SAGA"]).right_align(&[1, 2]);
        for c in &store.commands {
            table.row([c.name.clone(), c.count.to_string(), decimal(c.per_saga, 2)]);
        }
        table.row([
            "total".to_owned(),
            store.total.to_string(),
            decimal(store.total_per_saga, 2),
        ]);
        out.push_str(&table.render());
        if !store.admin.is_empty() {
            let admin: Vec<String> = store
                .admin
                .iter()
                .map(|c| format!("{} {}", c.name, c.count))
                .collect();
            out.push_str(&format!(
                "not counted (handshakes, health checks): {}; {} per saga\n",
                admin.join(", "),
                decimal(store.admin_per_saga, 2)
            ));
        }
        out.push('\n');
    }

    if let Some(pulsar) = &r.pulsar {
        let mut table =
            Table::new(&["PULSAR TOPIC", "PUBLISHED", "DELIVERED"]).right_align(&[1, 2]);
        for t in &pulsar.topics {
            table.row([
                t.topic.clone(),
                t.published.to_string(),
                t.delivered.to_string(),
            ]);
        }
        table.row([
            "total".to_owned(),
            pulsar.published.to_string(),
            pulsar.delivered.to_string(),
        ]);
        table.row([
            "per saga".to_owned(),
            decimal(pulsar.published_per_saga, 2),
            decimal(pulsar.delivered_per_saga, 2),
        ]);
        out.push_str(&table.render());
        out.push('\n');
    }

    for note in &r.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    for error in &s.error_sample {
        out.push_str(&format!("error: {error}\n"));
    }
    if s.errors > s.error_sample.len() {
        out.push_str(&format!(
            "... and {} more errors\n",
            s.errors - s.error_sample.len()
        ));
    }
    if s.stuck > 0 {
        out.push_str(&format!(
            "stuck: {} saga(s) without an outcome, e.g. {}\n",
            s.stuck,
            s.stuck_sample.join(", ")
        ));
    }
    out
}

fn millis(ms: Option<f64>) -> String {
    ms.map_or_else(|| "-".to_owned(), |ms| format!("{ms:.0} ms"))
}

fn seconds(ms: f64) -> String {
    format!("{:.2} s", ms / 1000.0)
}

fn decimal(x: Option<f64>, places: usize) -> String {
    x.map_or_else(|| "-".to_owned(), |x| format!("{x:.places$}"))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Instant;

    use super::super::observe::Heard;
    use super::super::probe::ProcessTicks;
    use super::super::probe::pulsar::TopicCounters;
    use super::*;

    #[test]
    fn latency_percentiles_are_nearest_rank_in_milliseconds() {
        let latencies: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        assert_eq!(
            Latency::of(&latencies),
            Latency {
                count: 100,
                p50: Some(50.0),
                p90: Some(90.0),
                p99: Some(99.0),
                max: Some(100.0),
            }
        );
        let one = Latency::of(&[Duration::from_micros(1_500)]);
        assert_eq!((one.p50, one.max), (Some(1.5), Some(1.5)));
        assert_eq!(Latency::of(&[]).p99, None);
    }

    #[test]
    fn costs_are_divided_by_the_completed_sagas() {
        let t = Instant::now();
        let mut tally = Tally::default();
        for (i, ending) in [
            Ending::Reserved,
            Ending::Reserved,
            Ending::Rejected,
            Ending::Reserved,
        ]
        .into_iter()
        .enumerate()
        {
            let saga_id = format!("s{i}");
            tally.started(saga_id.clone(), t);
            tally.heard(Heard {
                saga_id,
                ending,
                at: t + Duration::from_millis(10),
            });
        }
        tally.started("stuck".into(), t);
        let store: BTreeMap<String, u64> = [
            ("insert".into(), 72),
            ("find".into(), 52),
            ("hello".into(), 2),
        ]
        .into();
        let costs = Costs {
            processes: vec![
                ProcessTicks {
                    name: "pulsar".into(),
                    pid: 7,
                    ticks: 8,
                },
                ProcessTicks {
                    name: "ferretdb".into(),
                    pid: 8,
                    ticks: 24,
                },
            ],
            client_ticks: Some(2),
            store: Some(store),
            pulsar: Some(
                [(
                    "persistent://alpes/events/commission-reserved-v1".to_owned(),
                    TopicCounters {
                        published: 3,
                        delivered: 6,
                    },
                )]
                .into(),
            ),
            notes: vec!["tracking: skipped, no pid file".into()],
        };
        let settings = Settings {
            run_id: "r".into(),
            campaign_id: "c".into(),
            rate: 5.0,
            duration: Duration::from_secs(1),
            views: 1,
            clicks: 1,
            fraud_rate: 0.0,
            planned: 5,
            ticks_per_second: 100,
            cores: 2,
        };
        let r = results(settings, &tally, Duration::from_secs(2), costs);
        assert_eq!((r.sagas.completed, r.sagas.stuck), (4, 1));
        assert_eq!((r.sagas.reserved, r.sagas.rejected), (3, 1));
        assert_eq!(r.sagas.completed_per_s, 2.0);
        assert_eq!(r.cpu.total_ms, 320.0);
        assert_eq!(r.cpu.total_ms_per_saga, Some(80.0));
        assert_eq!(r.cpu.client_ms_per_saga, Some(5.0));
        assert_eq!(r.cpu.capacity_sagas_per_s, Some(25.0));
        let store = r.store.as_ref().unwrap();
        assert_eq!((store.total, store.total_per_saga), (124, Some(31.0)));
        assert_eq!(store.admin[0].name, "hello");
        let pulsar = r.pulsar.as_ref().unwrap();
        assert_eq!(pulsar.topics[0].topic, "commission-reserved-v1");
        assert_eq!(pulsar.delivered_per_saga, Some(1.5));
        let text = render(&r);
        assert!(
            text.contains("4 completed (3 reserved, 1 rejected"),
            "{text}"
        );
        assert!(text.contains("note: tracking: skipped"), "{text}");
        assert!(
            text.contains("stuck: 1 saga(s) without an outcome, e.g. stuck"),
            "{text}"
        );
    }
}
