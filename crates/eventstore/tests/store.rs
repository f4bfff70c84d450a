//! The store's contract, run against FerretDB (the real MongoDB wire protocol, from the local
//! stack) and against the in-memory store, which must behave the same.

use std::sync::Arc;
use std::time::Duration;

use alpes_bus::admin::Admin;
use alpes_bus::{Bus, Delivery, Outcome, Outgoing, Shutdown, StartAt, SubscriptionConfig};
use alpes_contracts::EventMetadata;
use alpes_contracts::events::marketing::FraudDetected;
use alpes_eventstore::{
    Commit, EventStore, MemoryStore, MongoStore, NewCommit, Projection, Relay, StoreError,
    StoredEvent, rebuild, retry_on_conflict,
};
use serde_json::json;
use tokio::sync::{Barrier, mpsc};

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// A database of its own on the stack's FerretDB.
async fn mongo() -> MongoStore {
    let url = env("ALPES_MONGO_URL", "mongodb://127.0.0.1:27017");
    let database = format!("test_{}", uuid::Uuid::new_v4().simple());
    MongoStore::connect(&url, &database)
        .await
        .expect("cannot reach FerretDB: is the stack up? (scripts/stack.sh up)")
}

/// `N` stores over one database of their own: the same service's replicas.
async fn replicas<const N: usize>() -> [MongoStore; N] {
    let url = env("ALPES_MONGO_URL", "mongodb://127.0.0.1:27017");
    let database = format!("test_{}", uuid::Uuid::new_v4().simple());
    let mut stores = Vec::with_capacity(N);
    for _ in 0..N {
        stores.push(MongoStore::connect(&url, &database).await.unwrap());
    }
    stores.try_into().unwrap_or_else(|_| unreachable!())
}

fn deposit(stream: &str, expected_version: u64, amount: i64, handled: Option<&str>) -> NewCommit {
    NewCommit {
        stream: stream.to_owned(),
        expected_version,
        events: vec![StoredEvent::new("Deposited", &json!({ "amount": amount })).unwrap()],
        outbox: Vec::new(),
        handled: handled.map(str::to_owned),
    }
}

/// Two writers load the same version; exactly one append wins, the other conflicts, reloads
/// and succeeds: both deposits are in the stream.
async fn concurrent_writers_conflict_once_and_lose_nothing(store: impl EventStore) {
    let barrier = Arc::new(Barrier::new(2));
    let conflicts = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let writer = |amount: i64| {
        let (store, barrier, conflicts) = (store.clone(), barrier.clone(), conflicts.clone());
        async move {
            let mut first = true;
            retry_on_conflict(5, || {
                let (store, barrier, conflicts) = (&store, &barrier, &conflicts);
                let wait = std::mem::take(&mut first);
                async move {
                    let stream = store.load("account-1").await?;
                    if wait {
                        barrier.wait().await; // both have loaded version 0
                    }
                    let result = store
                        .append(deposit("account-1", stream.version(), amount, None))
                        .await;
                    if matches!(result, Err(StoreError::Conflict { .. })) {
                        conflicts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    result
                }
            })
            .await
        }
    };
    let (a, b) = tokio::join!(writer(10), writer(20));
    a.unwrap();
    b.unwrap();
    assert_eq!(conflicts.load(std::sync::atomic::Ordering::SeqCst), 1);
    let stream = store.load("account-1").await.unwrap();
    assert_eq!(stream.version(), 2);
    let mut amounts: Vec<i64> = stream
        .events()
        .map(|e| e.data["amount"].as_i64().unwrap())
        .collect();
    amounts.sort();
    assert_eq!(amounts, [10, 20]);
}

/// Handles a message at most once per stream: the dedup check and the effect are one commit.
async fn handle_once(store: &impl EventStore, message_id: &str) -> Result<bool, StoreError> {
    retry_on_conflict(5, || async {
        let stream = store.load("account-2").await?;
        if stream.has_handled(message_id) {
            return Ok(false);
        }
        store
            .append(deposit("account-2", stream.version(), 5, Some(message_id)))
            .await?;
        Ok(true)
    })
    .await
}

async fn the_same_message_twice_has_one_effect(store: impl EventStore) {
    let (a, b) = tokio::join!(handle_once(&store, "msg-1"), handle_once(&store, "msg-1"));
    let applied = [
        a.unwrap(),
        b.unwrap(),
        handle_once(&store, "msg-1").await.unwrap(),
    ];
    assert_eq!(applied.iter().filter(|&&x| x).count(), 1, "{applied:?}");
    assert!(
        handle_once(&store, "msg-2").await.unwrap(),
        "another message still applies"
    );
    assert_eq!(store.load("account-2").await.unwrap().version(), 2);
}

#[derive(Default, PartialEq, Debug)]
struct Balances(std::collections::BTreeMap<String, i64>);

impl Projection for Balances {
    fn apply(&mut self, commit: &Commit) {
        for event in &commit.events {
            *self.0.entry(commit.stream.clone()).or_default() +=
                event.data["amount"].as_i64().unwrap();
        }
    }
}

async fn a_rebuild_equals_the_incrementally_built_read_model(store: impl EventStore) {
    let mut incremental = Balances::default();
    for i in 0..23u64 {
        let stream = format!("acct-{}", i % 4);
        let version = store.load(&stream).await.unwrap().version();
        let commit = store
            .append(deposit(&stream, version, i as i64, None))
            .await
            .unwrap();
        incremental.apply(&commit);
    }
    let mut rebuilt = Balances::default();
    let mut pages = Vec::new();
    let total = rebuild(&store, &mut rebuilt, 5, |n| pages.push(n))
        .await
        .unwrap();
    assert_eq!(total, 23);
    assert_eq!(pages, [5, 10, 15, 20, 23], "progress after every page");
    assert_eq!(rebuilt, incremental);

    // One pass in no order gives the same sums (this model does not depend on order), each
    // commit once, and no ledger entry or other document of the store's own.
    let mut scanned = Balances::default();
    let mut seen = std::collections::HashSet::new();
    let total = store
        .scan(&mut |commit| {
            assert!(
                seen.insert((commit.stream.clone(), commit.version)),
                "{} #{} twice",
                commit.stream,
                commit.version
            );
            scanned.apply(&commit);
        })
        .await
        .unwrap();
    assert_eq!(total, 23);
    assert_eq!(scanned, incremental);
}

/// An outbox of one `FraudDetected`, to see which commits' outboxes are queued.
fn announced(mut commit: NewCommit) -> NewCommit {
    let event = FraudDetected {
        metadata: EventMetadata::new::<FraudDetected>().in_saga(&commit.stream),
        reason: "chain".into(),
        reporter: "eventstore-tests".into(),
        score: None,
    };
    commit.outbox.push(Outgoing::event(&event).unwrap());
    commit
}

/// The streams' versions, as a fresh load sees them.
async fn versions(store: &impl EventStore, streams: &[&str]) -> Vec<u64> {
    let mut versions = Vec::new();
    for stream in streams {
        versions.push(store.load(stream).await.unwrap().version());
    }
    versions
}

/// A chain is stored up to its first refused commit, and nothing after it, even when a commit
/// after it would have been accepted on its own; appends beside it in the same write are not
/// held back by its refusal; only the stored commits' outboxes are queued.
async fn a_chain_is_stored_up_to_its_first_refused_commit(store: impl EventStore) {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let [a, b, c, d] = ["a", "b", "c", "d"].map(|s| format!("{s}-{id}"));
    store.append(deposit(&a, 0, 1, None)).await.unwrap();

    // b is new and stored; a is not at 0 any more: refused; c and d (new) are not tried.
    let refused = vec![
        announced(deposit(&b, 0, 2, None)),
        deposit(&a, 0, 3, None),
        announced(deposit(&c, 0, 4, None)),
        deposit(&d, 0, 5, None),
    ];
    // Another append, started at the same moment, shares the write (where the store batches).
    let beside = store.append(deposit(&d, 0, 6, None));
    let (chain, beside) = tokio::join!(store.append_chain(refused), beside);
    match chain {
        Err(StoreError::Conflict { stream, expected }) => {
            assert_eq!((stream, expected), (a.clone(), 0))
        }
        other => panic!("expected a conflict on {a}: {other:?}"),
    }
    beside.expect("an append beside a refused chain is stored");
    assert_eq!(
        versions(&store, [&a, &b, &c, &d].map(String::as_str).as_slice()).await,
        [1, 1, 0, 1]
    );
    let queued: Vec<String> = store
        .unpublished(10)
        .await
        .unwrap()
        .into_iter()
        .map(|commit| commit.stream)
        .collect();
    assert_eq!(
        queued,
        std::slice::from_ref(&b),
        "only the stored commit's outbox is queued"
    );

    // Retried as a caller does after a conflict: what is stored is not appended again.
    let stored = store
        .append_chain(vec![
            deposit(&a, 1, 3, None),
            deposit(&c, 0, 4, None),
            deposit(&c, 1, 7, None),
        ])
        .await
        .expect("a chain at the streams' versions is stored whole");
    assert_eq!(
        stored
            .iter()
            .map(|c| (c.stream.as_str(), c.version))
            .collect::<Vec<_>>(),
        [(a.as_str(), 2), (c.as_str(), 1), (c.as_str(), 2)]
    );
    assert_eq!(
        versions(&store, [&a, &b, &c, &d].map(String::as_str).as_slice()).await,
        [2, 1, 2, 1]
    );
    assert!(store.append_chain(Vec::new()).await.unwrap().is_empty());
}

#[tokio::test]
async fn ferretdb_chain() {
    a_chain_is_stored_up_to_its_first_refused_commit(mongo().await).await;
}

#[tokio::test]
async fn memory_chain() {
    a_chain_is_stored_up_to_its_first_refused_commit(MemoryStore::new()).await;
}

#[tokio::test]
async fn ferretdb_concurrent_writers() {
    concurrent_writers_conflict_once_and_lose_nothing(mongo().await).await;
}

#[tokio::test]
async fn memory_concurrent_writers() {
    concurrent_writers_conflict_once_and_lose_nothing(MemoryStore::new()).await;
}

#[tokio::test]
async fn ferretdb_deduplication() {
    the_same_message_twice_has_one_effect(mongo().await).await;
}

#[tokio::test]
async fn memory_deduplication() {
    the_same_message_twice_has_one_effect(MemoryStore::new()).await;
}

#[tokio::test]
async fn ferretdb_rebuild() {
    a_rebuild_equals_the_incrementally_built_read_model(mongo().await).await;
}

#[tokio::test]
async fn memory_rebuild() {
    a_rebuild_equals_the_incrementally_built_read_model(MemoryStore::new()).await;
}

/// The process wrote its commit and died before publishing: a new process's relay publishes
/// the outbox to the real broker, exactly the stored event, and only once.
#[tokio::test]
async fn an_outbox_written_before_a_crash_is_published_after_restart() {
    let pulsar_url = env("ALPES_PULSAR_URL", "pulsar://127.0.0.1:6650");
    let admin_url = env("ALPES_PULSAR_ADMIN_URL", "http://127.0.0.1:8080");
    // The test suites' own namespace: a platform left running never sees these events.
    alpes_contracts::Namespace::parse("alpes/test")
        .unwrap()
        .install()
        .unwrap();
    Admin::authenticated(&admin_url, alpes_bus::PulsarToken::from_env().unwrap())
        .bootstrap()
        .await
        .expect("Pulsar bootstrap: is the stack up?");
    let bus = Bus::connect_with(
        &pulsar_url,
        &admin_url,
        "eventstore-tests",
        alpes_bus::PulsarToken::from_env().unwrap(),
    )
    .await
    .unwrap();
    let mut config = SubscriptionConfig::new(format!("test-{}", uuid::Uuid::new_v4().simple()));
    config.start_at = StartAt::Latest;
    let subscription = bus.subscribe::<FraudDetected>(config).await.unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let shutdown = Shutdown::new();
    let handler = move |d: Delivery<FraudDetected>| {
        let _ = tx.send(d.event);
        std::future::ready(Outcome::Done)
    };
    let running = tokio::spawn(subscription.run(handler, shutdown.clone()));

    let saga = uuid::Uuid::now_v7().to_string();
    let event = FraudDetected {
        metadata: EventMetadata::new::<FraudDetected>().in_saga(&saga),
        reason: "outbox".into(),
        reporter: "eventstore-tests".into(),
        score: None,
    };
    let url = env("ALPES_MONGO_URL", "mongodb://127.0.0.1:27017");
    let database = format!("test_{}", uuid::Uuid::new_v4().simple());
    {
        // The process that crashes: it commits, and never runs its relay.
        let store = MongoStore::connect(&url, &database).await.unwrap();
        let mut commit = deposit(&saga, 0, 1, None);
        commit.outbox.push(Outgoing::event(&event).unwrap());
        store.append(commit).await.unwrap();
    }
    let restarted = MongoStore::connect(&url, &database).await.unwrap();
    assert_eq!(restarted.unpublished(10).await.unwrap().len(), 1);
    let relay = Relay::new(restarted.clone(), bus.publisher().clone());
    assert_eq!(relay.flush().await.unwrap(), 1);
    let received = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let got = rx.recv().await.expect("subscription stopped");
            if got.metadata.saga_id.as_deref() == Some(saga.as_str()) {
                return got;
            }
        }
    })
    .await
    .expect("the relayed event did not arrive");
    assert_eq!(received, event);
    assert!(
        restarted.unpublished(10).await.unwrap().is_empty(),
        "marked published"
    );
    assert_eq!(
        relay.flush().await.unwrap(),
        0,
        "nothing is published twice"
    );

    shutdown.cancel();
    running.await.unwrap().unwrap();
}

/// Two replicas (two connections, each with its own copy of the streams it used) take turns on
/// one stream: a copy is trusted without reading for a moment, so a replica that has not seen
/// the other's commit conflicts on its append, reads the stream again and then sees it all; a
/// copy older than that moment is checked on load.
#[tokio::test]
async fn ferretdb_replicas_see_each_others_commits_through_their_caches() {
    let [a, b] = replicas().await;

    a.append(deposit("budget", 0, 1, None)).await.unwrap();
    assert_eq!(a.load("budget").await.unwrap().version(), 1);
    assert_eq!(b.load("budget").await.unwrap().version(), 1);
    b.append(deposit("budget", 1, 2, None)).await.unwrap();

    let stale = a.load("budget").await.unwrap();
    assert_eq!(stale.version(), 1, "a trusts its copy for a moment");
    assert_eq!(
        a.load_latest("budget").await.unwrap().version(),
        2,
        "unless it asks for the latest: a decision that appends nothing must"
    );
    let conflict = a.append(deposit("budget", stale.version(), 3, None)).await;
    assert!(
        matches!(conflict, Err(StoreError::Conflict { .. })),
        "a's copy was one behind: {conflict:?}"
    );
    let reread = a.load("budget").await.unwrap();
    assert_eq!(reread.version(), 2, "after the conflict a reads b's commit");
    a.append(deposit("budget", 2, 3, None)).await.unwrap();

    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let amounts: Vec<i64> = b
        .load("budget")
        .await
        .unwrap()
        .events()
        .map(|e| {
            e.decode::<serde_json::Value>().unwrap()["amount"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(amounts, [1, 2, 3], "an aged copy is checked on load");
}

/// A stream this process knows nothing of is taken as new without a read; if another process
/// wrote it, the append at version 1 conflicts and the next look reads it, whole.
#[tokio::test]
async fn ferretdb_a_stream_taken_as_new_is_read_once_an_append_to_it_conflicts() {
    let [a, b, c] = replicas().await;

    assert!(a.load_known("fresh").await.unwrap().is_none());
    a.append(deposit("fresh", 0, 1, None)).await.unwrap();
    let known = a.load_known("fresh").await.unwrap().expect("written here");
    assert_eq!(known.version(), 1);

    b.append(deposit("theirs", 0, 1, None)).await.unwrap();
    b.append(deposit("theirs", 1, 2, None)).await.unwrap();
    assert!(
        a.load_known("theirs").await.unwrap().is_none(),
        "unknown here: taken as new"
    );
    let conflict = a.append(deposit("theirs", 0, 3, None)).await;
    assert!(
        matches!(conflict, Err(StoreError::Conflict { .. })),
        "{conflict:?}"
    );
    let read = a
        .load_known("theirs")
        .await
        .unwrap()
        .expect("known to exist now");
    assert_eq!(read.version(), 2, "read whole after the conflict");
    a.append(deposit("theirs", 2, 3, None)).await.unwrap();
    assert_eq!(c.load("theirs").await.unwrap().version(), 3);
}

/// A commit an earlier version of the store left unpublished (marked `published: false`, its
/// payload an array of integers) is published by the first process of the new version, once.
#[tokio::test]
async fn what_the_previous_version_left_unpublished_is_published_once() {
    let url = env("ALPES_MONGO_URL", "mongodb://127.0.0.1:27017");
    let database = format!("test_{}", uuid::Uuid::new_v4().simple());
    let client = mongodb::Client::with_uri_str(&url).await.unwrap();
    let commits = client
        .database(&database)
        .collection::<mongodb::bson::Document>("commits");
    let payload: Vec<i32> = vec![1, 2, 3];
    let old = |stream: &str, published: bool| {
        mongodb::bson::doc! {
            "_id": format!("{stream}#0000000001"), "stream": stream, "version": 1_i64,
            "events": [], "handled": null, "recorded_at": mongodb::bson::DateTime::now(),
            "published": published,
            "outbox": [{ "topic": "persistent://alpes/events/t", "event_type": null, "key": "k",
                         "payload": payload.clone(), "properties": {}, "event_time_ms": 1_i64,
                         "deliver_at_ms": null }],
        }
    };
    commits
        .insert_many([old("left", false), old("done", true)])
        .await
        .unwrap();

    let store = MongoStore::connect(&url, &database).await.unwrap();
    let pending = store.unpublished(10).await.unwrap();
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0].stream, "left");
    assert_eq!(pending[0].outbox[0].payload, [1, 2, 3]);
    store.mark_published(&pending).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    drop(store);
    let next = MongoStore::connect(&url, &database).await.unwrap();
    assert!(
        next.unpublished(10).await.unwrap().is_empty(),
        "swept once per database"
    );
}
