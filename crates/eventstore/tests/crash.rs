//! A writer process killed with SIGKILL between storing commits and publishing their outboxes:
//! the process that starts next on the same database publishes exactly what was not published,
//! found through the dead process's ledger, without scanning; and so does a replica already
//! running beside it when the dead one never comes back, within its adoption round.
//!
//! The binary is its own child: run with `ALPES_OUTBOX_CHILD=<database>:<saga>` it becomes the
//! writer, which publishes its first `PUBLISHED` commits, lets its progress be recorded, stores
//! the rest without publishing them and waits to be killed.

use std::collections::BTreeMap;
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use alpes_bus::admin::Admin;
use alpes_bus::{Bus, Delivery, Outcome, Outgoing, Shutdown, StartAt, SubscriptionConfig};
use alpes_contracts::EventMetadata;
use alpes_contracts::events::marketing::FraudDetected;
use alpes_eventstore::{EventStore, MongoStore, NewCommit, Relay};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;

const COMMITS: usize = 10;
const PUBLISHED: usize = 4;
const CHILD: &str = "ALPES_OUTBOX_CHILD";

fn main() -> ExitCode {
    // The test suites' own namespace: a platform left running never sees these events.
    alpes_contracts::Namespace::parse("alpes/test")
        .unwrap()
        .install()
        .unwrap();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    if let Ok(spec) = std::env::var(CHILD) {
        runtime.block_on(child(spec));
        return ExitCode::SUCCESS;
    }
    let tests = [
        (
            "a_writer_killed_before_publishing_loses_nothing_and_repeats_nothing_published",
            Adopter::Successor,
        ),
        (
            "a_replica_that_never_comes_back_has_its_outbox_published_by_a_live_sibling",
            Adopter::Sibling,
        ),
    ];
    if std::env::args().any(|a| a == "--list") {
        for (name, _) in tests {
            println!("{name}: test");
        }
        return ExitCode::SUCCESS;
    }
    println!("\nrunning {} tests", tests.len());
    let mut failed = 0;
    for (name, adopter) in tests {
        match runtime.block_on(async { tokio::spawn(parent(adopter)).await }) {
            Ok(()) => println!("test {name} ... ok"),
            Err(panic) => {
                println!("test {name} ... FAILED: {panic}");
                failed += 1;
            }
        }
    }
    let passed = tests.len() - failed;
    if failed == 0 {
        println!("\ntest result: ok. {passed} passed; 0 failed; 0 ignored");
        ExitCode::SUCCESS
    } else {
        println!("\ntest result: FAILED. {passed} passed; {failed} failed");
        ExitCode::FAILURE
    }
}

/// Who publishes what the killed writer left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Adopter {
    /// A process started after the death on the same database (a restart): before its store
    /// connects, it has the outbox.
    Successor,
    /// A replica running since before the death, whose relay runs all along: it finds the
    /// dead instance on its own, in an adoption round (every 10 s).
    Sibling,
}

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

async fn store(database: &str) -> MongoStore {
    let url = env("ALPES_MONGO_URL", "mongodb://127.0.0.1:27017");
    MongoStore::connect(&url, database)
        .await
        .expect("cannot reach FerretDB: is the stack up? (scripts/stack.sh up)")
}

async fn bus() -> Bus {
    let url = env("ALPES_PULSAR_URL", "pulsar://127.0.0.1:6650");
    let admin_url = env("ALPES_PULSAR_ADMIN_URL", "http://127.0.0.1:8080");
    Admin::authenticated(&admin_url, alpes_bus::PulsarToken::from_env().unwrap())
        .bootstrap()
        .await
        .expect("Pulsar bootstrap: is the stack up?");
    Bus::connect_with(
        &url,
        &admin_url,
        "eventstore-crash-tests",
        alpes_bus::PulsarToken::from_env().unwrap(),
    )
    .await
    .unwrap()
}

/// Commit `n` of the saga: one event, announced by `FraudDetected` with reason `n`.
fn commit(saga: &str, n: usize) -> NewCommit {
    let event = FraudDetected {
        metadata: EventMetadata::new::<FraudDetected>().in_saga(saga),
        reason: n.to_string(),
        reporter: "eventstore-crash-tests".into(),
        score: None,
    };
    NewCommit {
        stream: format!("report-{saga}-{n}"),
        expected_version: 0,
        events: Vec::new(),
        outbox: vec![Outgoing::event(&event).unwrap()],
        handled: None,
    }
}

async fn child(spec: String) {
    let (database, saga) = spec.split_once(':').expect("database:saga");
    let store = store(database).await;
    let relay = Relay::new(store.clone(), bus().await.publisher().clone());
    for n in 0..PUBLISHED {
        store.append(commit(saga, n)).await.unwrap();
    }
    assert_eq!(relay.flush().await.unwrap(), PUBLISHED);
    // The store records how far it published about once a second.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    for n in PUBLISHED..COMMITS {
        store.append(commit(saga, n)).await.unwrap();
    }
    println!("WRITTEN");
    std::future::pending::<()>().await;
}

async fn parent(adopter: Adopter) {
    let bus = bus().await;
    let saga = uuid::Uuid::now_v7().to_string();
    let database = format!("test_{}", uuid::Uuid::new_v4().simple());

    let mut config = SubscriptionConfig::new(format!("crash-{}", uuid::Uuid::new_v4().simple()));
    config.start_at = StartAt::Latest;
    let subscription = bus.subscribe::<FraudDetected>(config).await.unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mine = saga.clone();
    let handler = move |d: Delivery<FraudDetected>| {
        if d.event.metadata.saga_id.as_deref() == Some(mine.as_str()) {
            let _ = tx.send(d.event.reason.parse::<usize>().unwrap());
        }
        std::future::ready(Outcome::Done)
    };
    let shutdown = Shutdown::new();
    let running = tokio::spawn(subscription.run(handler, shutdown.clone()));

    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(CHILD, format!("{database}:{saga}"))
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    loop {
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("the child never stored its commits")
            .unwrap()
            .expect("the child exited early");
        if line == "WRITTEN" {
            break;
        }
        eprintln!("child: {line}");
    }
    let sibling = match adopter {
        Adopter::Sibling => {
            let sibling = store(&database).await;
            assert!(sibling.unpublished(100).await.unwrap().is_empty(), "alive");
            let relay = Relay::new(sibling.clone(), bus.publisher().clone());
            Some((sibling, tokio::spawn(relay.run(shutdown.clone()))))
        }
        Adopter::Successor => None,
    };
    // SIGKILL: no shutdown, no final flush.
    child.start_kill().unwrap();
    child.wait().await.unwrap();

    let (restarted, wait) = match sibling {
        Some((sibling, relay)) => {
            // Its relay publishes what its keeper adopts: nothing to do but wait.
            (sibling, Some(relay))
        }
        None => {
            let restarted = store(&database).await;
            let adopted = restarted.unpublished(100).await.unwrap();
            assert_eq!(
                adopted.len(),
                COMMITS - PUBLISHED,
                "exactly the unpublished commits are adopted"
            );
            let relay = Relay::new(restarted.clone(), bus.publisher().clone());
            assert_eq!(relay.flush().await.unwrap(), COMMITS - PUBLISHED);
            (restarted, None)
        }
    };

    let mut received: BTreeMap<usize, usize> = BTreeMap::new();
    // A sibling adopts within an adoption round (10 s) of the death.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while received.len() < COMMITS {
        let n = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("only {received:?} arrived"))
            .expect("subscription stopped");
        *received.entry(n).or_default() += 1;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    while let Ok(n) = rx.try_recv() {
        *received.entry(n).or_default() += 1;
    }
    assert!(
        received.values().all(|&times| times == 1),
        "each event once: {received:?}"
    );
    assert!(
        restarted.unpublished(100).await.unwrap().is_empty(),
        "nothing left to publish"
    );

    // A third process finds nothing to adopt: the dead writer's entry is gone from the
    // registry within a second of its outbox being published.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    drop(restarted);
    assert!(
        store(&database)
            .await
            .unpublished(100)
            .await
            .unwrap()
            .is_empty()
    );

    shutdown.cancel();
    running.await.unwrap().unwrap();
    if let Some(relay) = wait {
        relay.await.unwrap();
    }
}
