//! The batching writer against FerretDB: whatever way concurrent appends interleave — to the
//! same streams and to different ones, from two processes' stores on one database — the streams
//! end as some serial order of the appends would leave them, and a conflict never loses or
//! duplicates an event.

use std::collections::BTreeMap;

use alpes_eventstore::{EventStore, MongoStore, NewCommit, StoredEvent, retry_on_conflict};
use proptest::prelude::*;
use serde_json::json;

const STREAMS: usize = 3;

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// One writer's deposits: the stream each goes to, in the order the writer makes them.
fn writers() -> impl Strategy<Value = Vec<Vec<usize>>> {
    prop::collection::vec(prop::collection::vec(0..STREAMS, 1..6), 2..7)
}

/// Deposit `(writer, n)` to stream `stream`, as a load-decide-append step retried on conflict.
async fn deposit(store: &MongoStore, stream: &str, writer: usize, n: usize) {
    let message = format!("w{writer}-{n}");
    retry_on_conflict(100, || async {
        let loaded = store.load(stream).await?;
        if loaded.has_handled(&message) {
            return Ok(());
        }
        let event = StoredEvent::new("Deposited", &json!({ "writer": writer, "n": n })).unwrap();
        store
            .append(NewCommit {
                stream: stream.to_owned(),
                expected_version: loaded.version(),
                events: vec![event],
                outbox: Vec::new(),
                handled: Some(message.clone()),
            })
            .await
            .map(drop)
    })
    .await
    .unwrap_or_else(|e| panic!("{message}: {e}"));
}

async fn run(plan: Vec<Vec<usize>>) -> Result<(), TestCaseError> {
    let url = env("ALPES_MONGO_URL", "mongodb://127.0.0.1:27017");
    let database = format!("test_{}", uuid::Uuid::new_v4().simple());
    let replicas = [
        MongoStore::connect(&url, &database).await.unwrap(),
        MongoStore::connect(&url, &database).await.unwrap(),
    ];
    let tasks: Vec<_> = plan
        .iter()
        .enumerate()
        .map(|(writer, deposits)| {
            let store = replicas[writer % 2].clone();
            let deposits = deposits.clone();
            tokio::spawn(async move {
                for (n, stream) in deposits.into_iter().enumerate() {
                    deposit(&store, &format!("s{stream}"), writer, n).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }

    let fresh = MongoStore::connect(&url, &database).await.unwrap();
    for stream in 0..STREAMS {
        let loaded = fresh.load(&format!("s{stream}")).await.unwrap();
        let versions: Vec<u64> = loaded.commits.iter().map(|c| c.version).collect();
        prop_assert_eq!(
            versions,
            (1..=loaded.commits.len() as u64).collect::<Vec<_>>()
        );
        // Each writer's deposits to this stream: all there, once each, in the writer's order.
        let mut seen: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for event in loaded.events() {
            let writer = event.data["writer"].as_u64().unwrap() as usize;
            seen.entry(writer)
                .or_default()
                .push(event.data["n"].as_u64().unwrap() as usize);
        }
        for (writer, deposits) in plan.iter().enumerate() {
            let expected: Vec<usize> = deposits
                .iter()
                .enumerate()
                .filter(|(_, s)| **s == stream)
                .map(|(n, _)| n)
                .collect();
            prop_assert_eq!(
                seen.remove(&writer).unwrap_or_default(),
                expected,
                "writer {} on s{}",
                writer,
                stream
            );
        }
    }
    Ok(())
}

proptest! {
    // Each case is a fresh database on the real server: few cases, each a real interleaving.
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn concurrent_appends_end_as_a_serial_order(plan in writers()) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(run(plan))?;
    }
}
