//! CPU time of the stack's processes, read from `/proc/<pid>/stat` — the figure
//! `shared/PERFORMANCE.md` compares runs by, because wall-clock throughput on shared, noisy
//! machines says little.
//!
//! A process's `utime + stime` (fields 14 and 15, in clock ticks) covers all of its threads,
//! live and exited. Postgres is a tree, not a process: the postmaster forks a backend per
//! connection and a few workers, so its figure is the postmaster's own time, plus the time of
//! the children it has reaped (`cutime + cstime`, fields 16 and 17), plus that of its live
//! children (found by scanning `/proc/*/stat` for their parent). A child that exits between the
//! snapshots is therefore counted once the postmaster has reaped it, which it does at once; only
//! a child still unreaped at the second snapshot loses the CPU it spent. Grandchildren are not
//! looked for: Postgres has none.
//!
//! Where the pids come from: the pid files `scripts/stack.sh` and `scripts/services.sh` write
//! under the stack directory. A missing pid file or a dead process is reported, not fatal: the
//! bench then measures the rest.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A process (or process tree) of the platform, and where its pid is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    /// What the tables call it, e.g. `pulsar`.
    pub name: String,
    /// The file whose first line is its pid.
    pub pid_file: PathBuf,
    /// Whether its children count too (Postgres).
    pub tree: bool,
}

/// The processes of the local stack and the four services, under `stack_dir` (`.stack`).
pub fn platform(stack_dir: &Path) -> Vec<Process> {
    let process = |name: &str, pid_file: PathBuf, tree: bool| Process {
        name: name.to_owned(),
        pid_file: stack_dir.join(pid_file),
        tree,
    };
    let mut processes = vec![
        process("pulsar", ["pulsar", "pulsar.pid"].iter().collect(), false),
        process(
            "ferretdb",
            ["ferretdb", "ferretdb.pid"].iter().collect(),
            false,
        ),
        process(
            "postgres",
            ["postgres", "data", "postmaster.pid"].iter().collect(),
            true,
        ),
    ];
    // Replicas beyond the first (`scripts/services.sh up --replicas N`) write `<service>-<r>.pid`.
    let mut replicas: Vec<String> = std::fs::read_dir(stack_dir.join("services"))
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter_map(|file| file.strip_suffix(".pid").map(str::to_owned))
        .collect();
    replicas.sort_by_key(|name| replica_order(name));
    for service in ["tracking", "attribution", "commission", "marketing"] {
        let pid_file = ["services", &format!("{service}.pid")].iter().collect();
        processes.push(process(service, pid_file, false));
        for replica in replicas.iter().filter(|name| is_replica_of(name, service)) {
            let pid_file = ["services", &format!("{replica}.pid")].iter().collect();
            processes.push(process(replica, pid_file, false));
        }
    }
    processes
}

/// Whether `name` is `<service>-<r>` for a number `r`.
fn is_replica_of(name: &str, service: &str) -> bool {
    name.strip_prefix(service)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()))
}

/// `tracking-2` before `tracking-10`.
fn replica_order(name: &str) -> (String, u32) {
    match name.rsplit_once('-') {
        Some((service, r)) => (service.to_owned(), r.parse().unwrap_or(u32::MAX)),
        None => (name.to_owned(), 0),
    }
}

/// The fields of `/proc/<pid>/stat` the bench reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub ppid: u32,
    /// User and system time of the process's threads, in clock ticks.
    pub own: u64,
    /// User and system time of its reaped children, in clock ticks.
    pub children: u64,
}

/// Parses one `/proc/<pid>/stat` line. The second field, the command name in parentheses, may
/// itself hold spaces and parentheses, so the fields are counted from after the *last* `)`.
pub fn parse_stat(line: &str) -> Option<Stat> {
    let rest = &line[line.rfind(')')? + 1..];
    // Field 3 (state) is the first after the name; field n is at index n - 3.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(Stat {
        ppid: u32::try_from(field(4)?).ok()?,
        own: field(14)? + field(15)?,
        children: field(16)? + field(17)?,
    })
}

/// One reading of a process: its pid and CPU ticks so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    pub pid: u32,
    pub ticks: u64,
}

/// Reads every process in `processes`; each gets its reading or why there is none.
pub fn read_all(processes: &[Process]) -> Vec<(String, Result<Reading, String>)> {
    let stats = if processes.iter().any(|p| p.tree) {
        all_stats()
    } else {
        HashMap::new()
    };
    processes
        .iter()
        .map(|process| (process.name.clone(), read(process, &stats)))
        .collect()
}

/// The bench's own CPU ticks: it runs on the same cores and is not part of the platform.
pub fn own_ticks() -> Option<u64> {
    let stat = parse_stat(&std::fs::read_to_string("/proc/self/stat").ok()?)?;
    Some(stat.own)
}

/// Clock ticks per second (`getconf CLK_TCK`), 100 when it cannot be asked: that is every
/// Linux on x86 and ARM.
pub fn ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .filter(|&ticks| ticks > 0)
        .unwrap_or(100)
}

fn read(process: &Process, stats: &HashMap<u32, Stat>) -> Result<Reading, String> {
    let text = std::fs::read_to_string(&process.pid_file)
        .map_err(|e| format!("no pid file {}: {e}", process.pid_file.display()))?;
    let pid: u32 = text
        .lines()
        .next()
        .and_then(|line| line.trim().parse().ok())
        .ok_or_else(|| format!("{} holds no pid", process.pid_file.display()))?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|line| parse_stat(&line))
        .ok_or_else(|| {
            format!(
                "pid {pid} (from {}) is not running",
                process.pid_file.display()
            )
        })?;
    let ticks = if process.tree {
        stat.own + stat.children + children_ticks(pid, stats)
    } else {
        stat.own
    };
    Ok(Reading { pid, ticks })
}

/// The own ticks of the live children of `parent`.
fn children_ticks(parent: u32, stats: &HashMap<u32, Stat>) -> u64 {
    stats
        .iter()
        .filter(|(pid, stat)| stat.ppid == parent && **pid != parent)
        .map(|(_, stat)| stat.own)
        .sum()
}

/// Every process's stat, by pid; processes that vanish while being read are left out.
fn all_stats() -> HashMap<u32, Stat> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return HashMap::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let line = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            Some((pid, parse_stat(&line)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_counted_after_the_last_parenthesis_of_the_name() {
        let line = "4242 (postgres: alpes (x) idle) S 4200 4200 4200 0 -1 4194560 1133 0 0 0 \
                    37 12 5 3 20 0 1 0 1234 220000000 5000 18446744073709551615 0 0 0 0 0 0 \
                    0 16781312 18947 0 0 0 17 1 0 0 0 0 0";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                ppid: 4200,
                own: 37 + 12,
                children: 5 + 3,
            })
        );
    }

    #[test]
    fn a_line_that_is_cut_short_or_not_a_stat_is_refused() {
        assert_eq!(parse_stat("1 (init) S 0 1 1 0 -1 4194560 10 0 0 0"), None);
        assert_eq!(parse_stat("no parenthesis here"), None);
    }

    #[test]
    fn this_process_can_read_itself() {
        let line = std::fs::read_to_string("/proc/self/stat").unwrap();
        let stat = parse_stat(&line).expect("our own stat parses");
        assert_eq!(stat.ppid, std::os::unix::process::parent_id());
        assert!(own_ticks().is_some());
    }

    #[test]
    fn a_missing_pid_file_is_a_note_not_a_failure() {
        let processes = platform(Path::new("/nonexistent/stack"));
        assert_eq!(processes.len(), 7);
        assert!(processes.iter().any(|p| p.name == "postgres" && p.tree));
        for (name, reading) in read_all(&processes) {
            let why = reading.expect_err(&name);
            assert!(why.contains("no pid file"), "{why}");
        }
    }

    #[test]
    fn replicas_are_measured_beside_the_first_in_their_order() {
        let stack = std::env::temp_dir().join(format!("alpes-cpu-{}", std::process::id()));
        let services = stack.join("services");
        std::fs::create_dir_all(&services).unwrap();
        for file in [
            "tracking-10",
            "tracking-2",
            "marketing-2",
            "tracking-x",
            "trackingX-2",
        ] {
            std::fs::write(services.join(format!("{file}.pid")), "1\n").unwrap();
        }
        let names: Vec<String> = platform(&stack).into_iter().map(|p| p.name).collect();
        std::fs::remove_dir_all(&stack).unwrap();
        assert_eq!(
            names,
            [
                "pulsar",
                "ferretdb",
                "postgres",
                "tracking",
                "tracking-2",
                "tracking-10",
                "attribution",
                "commission",
                "marketing",
                "marketing-2"
            ]
        );
    }
}
