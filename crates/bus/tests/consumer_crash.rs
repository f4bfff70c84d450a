//! A consumer process killed with SIGKILL mid-stream: what it acknowledged stays consumed,
//! what it held unacknowledged comes back to the next consumer of the subscription.
//!
//! The binary is its own child: run with `ALPES_CRASH_CHILD=<subscription>:<saga>` it becomes
//! the consumer that acknowledges the first `ACKED` messages of `saga`, then stalls on the next
//! one until it is killed.

mod common;

use std::process::{ExitCode, Stdio};
use std::time::Duration;

use alpes_bus::{Delivery, Outcome, Shutdown, StartAt, SubscriptionConfig};
use alpes_contracts::events::marketing::FraudDetected;
use common::*;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;

const MESSAGES: usize = 10;
const ACKED: usize = 4;
const CHILD: &str = "ALPES_CRASH_CHILD";

fn main() -> ExitCode {
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    if let Ok(spec) = std::env::var(CHILD) {
        runtime.block_on(child(spec));
        return ExitCode::SUCCESS;
    }
    let name = "a_killed_consumer_loses_nothing_and_replays_only_unacknowledged_messages";
    // Test-harness flags (`--list`, filters) from `cargo test`: this file has one test.
    if std::env::args().any(|a| a == "--list") {
        println!("{name}: test");
        return ExitCode::SUCCESS;
    }
    println!("\nrunning 1 test");
    match runtime.block_on(async { tokio::spawn(parent()).await }) {
        Ok(()) => {
            println!("test {name} ... ok\n\ntest result: ok. 1 passed; 0 failed; 0 ignored");
            ExitCode::SUCCESS
        }
        Err(panic) => {
            println!("test {name} ... FAILED: {panic}\n\ntest result: FAILED. 0 passed; 1 failed");
            ExitCode::FAILURE
        }
    }
}

/// The child creates the subscription before anything is published, so Latest loses nothing
/// and skips the topic's history; the replacement consumer resumes the existing cursor.
fn config(subscription: &str) -> SubscriptionConfig {
    let mut config = SubscriptionConfig::new(subscription);
    config.start_at = StartAt::Latest;
    config.receiver_queue_size = MESSAGES as u32;
    config
}

async fn child(spec: String) {
    let (subscription, saga) = spec.split_once(':').expect("subscription:saga");
    let bus = bus().await;
    let consumer = bus
        .subscribe::<FraudDetected>(config(subscription))
        .await
        .unwrap();
    println!("READY");
    let saga = saga.to_owned();
    let mut acked = 0;
    let handler = move |d: Delivery<FraudDetected>| {
        let mine = d.event.metadata.saga_id.as_deref() == Some(saga.as_str());
        let stall = mine && acked == ACKED;
        if mine && !stall {
            acked += 1;
            println!("ACKED {}", d.event.reason);
        }
        async move {
            if stall {
                println!("STALLED");
                std::future::pending::<()>().await;
            }
            Outcome::Done
        }
    };
    consumer.run(handler, Shutdown::new()).await.unwrap();
}

async fn parent() {
    let bus = bus().await;
    let subscription = unique("crash");
    let saga = unique("crash");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(CHILD, format!("{subscription}:{saga}"))
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut expect_line = async |wanted: &str| {
        loop {
            let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
                .await
                .unwrap_or_else(|_| panic!("child never printed {wanted}"))
                .unwrap()
                .unwrap_or_else(|| panic!("child exited before printing {wanted}"));
            if line == wanted {
                return;
            }
            eprintln!("child: {line}");
        }
    };
    expect_line("READY").await;

    for seq in 0..MESSAGES {
        bus.publisher()
            .publish(&fraud(&saga, &seq.to_string()))
            .await
            .unwrap();
    }
    expect_line(&format!("ACKED {}", ACKED - 1)).await;
    expect_line("STALLED").await;
    // Acks are sent without a receipt; give the last one time to cross the loopback.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let pid = child.id().expect("child running") as i32;
    // SIGKILL: no shutdown hook, no close; the broker only sees the connection drop.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    child.wait().await.unwrap();

    let (tx, mut rx) = mpsc::unbounded_channel();
    let consumer = bus
        .subscribe::<FraudDetected>(config(&subscription))
        .await
        .unwrap();
    let shutdown = Shutdown::new();
    let running = tokio::spawn(consumer.run(forward(saga.clone(), tx), shutdown.clone()));
    let mut replayed = Vec::new();
    for _ in ACKED..MESSAGES {
        replayed.push(
            next(&mut rx, 30)
                .await
                .event
                .reason
                .parse::<usize>()
                .unwrap(),
        );
    }
    assert_eq!(
        replayed,
        (ACKED..MESSAGES).collect::<Vec<_>>(),
        "unacknowledged ones, in order"
    );
    let extra = tokio::time::timeout(Duration::from_secs(3), rx.recv()).await;
    assert!(
        extra.is_err(),
        "an acknowledged message came back: {extra:?}"
    );
    shutdown.cancel();
    running.await.unwrap().unwrap();
}
