//! Which outboxes are not published yet, and how a dead process's are found: O(unpublished)
//! `_id` lookups, no scan, no update per commit.
//!
//! Every process that writes is an *instance* with its own ledger: each write that carries
//! commits with an outbox also inserts, in the same `insert_many`, the ledger entry
//! `outbox:<instance>#<seq>` naming them (seq counts up from 1 without gaps). The process
//! publishes from memory and, at most once a second, records in one registry document how far
//! its ledger is published (`through`), with a heartbeat. Nothing is written per commit.
//!
//! A process that dies leaves its registry entry behind. Another process of the same service
//! (its replacement, or a sibling replica) adopts it — at once when the entry names a process of
//! this host that is gone, otherwise once its heartbeat is [`STALE_AFTER`] old — by reading the
//! dead instance's ledger entries after `through` by `_id` until the first missing one, then
//! each commit they name by `_id`, publishing those whose `ledger` field points back at the
//! entry (a commit that lost its `_id` race belongs to another writer). The adopted entry is
//! removed once all of it is published. A crash meanwhile leaves the entry for the next adopter:
//! at least once, and consumers deduplicate by event id.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use mongodb::Collection;
use mongodb::bson::{self, Document, doc};

use super::document::{CommitDocument, LEDGER_PREFIX, LedgerDocument, from_document, ledger_id};
use super::{Inner, lock};
use crate::{Commit, StoreError};

/// A heartbeat this old means its instance is gone, wherever it ran.
pub(crate) const STALE_AFTER: Duration = Duration::from_secs(30);
/// How often the registry is read for dead instances.
const ADOPT_EVERY: Duration = Duration::from_secs(10);
/// How often progress is recorded while there is progress.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// The registry document's `_id` in the `relays` collection.
const REGISTRY: &str = "relays";
/// The pseudo-instance whose outbox is what versions before the ledger left unpublished.
const LEGACY: &str = "legacy";
/// The registry's flag that they were published.
const LEGACY_SWEPT: &str = "legacy_swept";

/// Instances alive in this process, so that a sibling store (tests run several in one process)
/// is not mistaken for a dead one of the same pid.
static LIVE: LazyLock<Mutex<HashSet<String>>> = LazyLock::new(Mutex::default);

/// Where a pending commit comes from: a ledger entry and its position there.
type PendingKey = (String, usize);

/// The unpublished outboxes this process knows of.
pub(crate) struct Outbox {
    instance: String,
    pending: BTreeMap<PendingKey, Commit>,
    /// Pending commits per ledger entry.
    remaining: HashMap<String, usize>,
    /// Own ledger entries written (or being written) and not all published.
    open: BTreeSet<u64>,
    /// The last own ledger entry used.
    last_seq: u64,
    /// Adopted instances being published, with the heartbeat they were adopted at.
    adopted: HashMap<String, bson::DateTime>,
}

impl Outbox {
    pub(crate) fn new(instance: String, last_seq: u64) -> Self {
        Self {
            instance,
            pending: BTreeMap::new(),
            remaining: HashMap::new(),
            open: BTreeSet::new(),
            last_seq,
            adopted: HashMap::new(),
        }
    }

    /// Starts a write with an outbox: its ledger entry's seq.
    pub(crate) fn begin(&mut self) -> u64 {
        self.last_seq += 1;
        self.open.insert(self.last_seq);
        self.last_seq
    }

    /// The write of entry `seq` is known not to have happened: the seq is used again.
    pub(crate) fn unused(&mut self, seq: u64) {
        self.open.remove(&seq);
        if self.last_seq == seq {
            self.last_seq -= 1;
        }
    }

    /// `commits` were stored under own entry `seq`: they wait for the relay.
    pub(crate) fn written(&mut self, seq: u64, commits: Vec<Commit>) {
        let id = ledger_id(&self.instance, seq);
        if commits.is_empty() {
            self.open.remove(&seq);
        }
        self.add(&id, commits);
    }

    fn add(&mut self, ledger: &str, commits: Vec<Commit>) {
        if commits.is_empty() {
            return;
        }
        self.remaining.insert(ledger.to_owned(), commits.len());
        for (i, commit) in commits.into_iter().enumerate() {
            self.pending.insert((ledger.to_owned(), i), commit);
        }
    }

    pub(crate) fn unpublished(&self, limit: usize) -> Vec<Commit> {
        self.pending.values().take(limit).cloned().collect()
    }

    pub(crate) fn published(&mut self, commits: &[Commit]) {
        let done: HashSet<(&str, u64)> = commits
            .iter()
            .map(|c| (c.stream.as_str(), c.version))
            .collect();
        let keys: Vec<PendingKey> = self
            .pending
            .iter()
            .filter(|(_, c)| done.contains(&(c.stream.as_str(), c.version)))
            .map(|(k, _)| k.clone())
            .collect();
        for key in keys {
            self.pending.remove(&key);
            let left = self.remaining.get_mut(&key.0).map(|n| {
                *n -= 1;
                *n
            });
            if left == Some(0) {
                self.remaining.remove(&key.0);
                if let Some(seq) = self.own_seq(&key.0) {
                    self.open.remove(&seq);
                }
            }
        }
    }

    /// Every own entry up to this one is published.
    pub(crate) fn through(&self) -> u64 {
        self.open.first().map_or(self.last_seq, |first| first - 1)
    }

    fn own_seq(&self, ledger: &str) -> Option<u64> {
        let rest = ledger.strip_prefix(LEDGER_PREFIX)?;
        let (instance, seq) = rest.rsplit_once('#')?;
        (instance == self.instance).then(|| seq.parse().ok())?
    }

    /// Adopted instances with nothing left to publish.
    fn finished_adoptions(&self) -> Vec<(String, bson::DateTime)> {
        self.adopted
            .iter()
            .filter(|(instance, _)| {
                let prefix = format!("{LEDGER_PREFIX}{instance}#");
                !self.remaining.keys().any(|l| l.starts_with(&prefix))
            })
            .map(|(i, seen)| (i.clone(), *seen))
            .collect()
    }
}

/// This process's identity in the registry.
#[derive(Clone)]
pub(crate) struct Identity {
    pub(crate) instance: String,
    host: String,
    pid: u32,
}

impl Identity {
    pub(crate) fn new() -> Self {
        let instance = uuid::Uuid::now_v7().simple().to_string();
        lock(&LIVE).insert(instance.clone());
        Self {
            instance,
            host: host_name(),
            pid: std::process::id(),
        }
    }

    /// Whether a registry entry written by `host`/`pid` belongs to a process that is gone.
    fn is_gone(&self, instance: &str, host: &str, pid: i64, seen: bson::DateTime) -> bool {
        let age = bson::DateTime::now().timestamp_millis() - seen.timestamp_millis();
        if age >= STALE_AFTER.as_millis() as i64 {
            return true;
        }
        if host != self.host {
            return false;
        }
        if pid == i64::from(self.pid) {
            return !lock(&LIVE).contains(instance);
        }
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
    }

    pub(crate) fn release(&self) {
        lock(&LIVE).remove(&self.instance);
    }
}

fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

/// The registry and the ledger, as the keeper task works on them.
pub(crate) struct Keeper {
    pub(crate) registry: Collection<Document>,
    pub(crate) commits: Collection<Document>,
    pub(crate) identity: Identity,
    pub(crate) outbox: Arc<Mutex<Outbox>>,
    checkpointed: Option<(u64, Instant)>,
    adopt_checked: Option<Instant>,
}

impl Keeper {
    pub(crate) fn new(
        registry: Collection<Document>,
        commits: Collection<Document>,
        identity: Identity,
        outbox: Arc<Mutex<Outbox>>,
    ) -> Self {
        Self {
            registry,
            commits,
            identity,
            outbox,
            checkpointed: None,
            adopt_checked: None,
        }
    }

    /// Records progress and heartbeats, adopts dead instances, until the store is dropped.
    pub(crate) async fn run(mut self, store: Weak<Inner>) {
        loop {
            tokio::time::sleep(CHECKPOINT_EVERY).await;
            let Some(inner) = store.upgrade() else {
                return;
            };
            if let Err(e) = self.tick().await {
                tracing::warn!(error = %e, "outbox registry: will try again");
            }
            if !lock(&self.outbox).pending.is_empty() {
                inner.appended.notify_one();
            }
        }
    }

    /// One round: checkpoint if due, forget adopted instances now published, adopt if due.
    pub(crate) async fn tick(&mut self) -> Result<(), StoreError> {
        self.checkpoint().await?;
        self.release_adopted().await?;
        if self
            .adopt_checked
            .is_none_or(|at| at.elapsed() >= ADOPT_EVERY)
        {
            self.adopt().await?;
            self.adopt_checked = Some(Instant::now());
        }
        Ok(())
    }

    async fn checkpoint(&mut self) -> Result<(), StoreError> {
        let through = lock(&self.outbox).through();
        let due = match self.checkpointed {
            None => true,
            Some((done, at)) => done != through || at.elapsed() >= ADOPT_EVERY,
        };
        if !due {
            return Ok(());
        }
        let field = format!("instances.{}", self.identity.instance);
        self.registry
            .update_one(
                doc! { "_id": REGISTRY },
                doc! { "$set": { field: {
                    "through": through as i64,
                    "seen": bson::DateTime::now(),
                    "host": &self.identity.host,
                    "pid": i64::from(self.identity.pid),
                } } },
            )
            .upsert(true)
            .await?;
        self.checkpointed = Some((through, Instant::now()));
        Ok(())
    }

    /// Removes from the registry the adopted instances whose outbox is all published.
    async fn release_adopted(&mut self) -> Result<(), StoreError> {
        let finished = lock(&self.outbox).finished_adoptions();
        for (instance, seen) in finished {
            if instance == LEGACY {
                self.registry
                    .update_one(
                        doc! { "_id": REGISTRY },
                        doc! { "$set": { LEGACY_SWEPT: true } },
                    )
                    .upsert(true)
                    .await?;
                lock(&self.outbox).adopted.remove(&instance);
                continue;
            }
            let field = format!("instances.{instance}");
            self.registry
                .update_one(
                    doc! { "_id": REGISTRY, format!("{field}.seen"): seen },
                    doc! { "$unset": { field: "" } },
                )
                .await?;
            lock(&self.outbox).adopted.remove(&instance);
            tracing::info!(%instance, "outbox of a dead instance published");
        }
        Ok(())
    }

    /// Adopts every dead instance in the registry.
    async fn adopt(&mut self) -> Result<(), StoreError> {
        let registry = self.registry.find_one(doc! { "_id": REGISTRY }).await?;
        let swept = registry
            .as_ref()
            .is_some_and(|r| r.get_bool(LEGACY_SWEPT).unwrap_or(false));
        if !swept && !lock(&self.outbox).adopted.contains_key(LEGACY) {
            self.adopt_legacy().await?;
        }
        let Some(registry) = registry else {
            return Ok(());
        };
        let Ok(instances) = registry.get_document("instances") else {
            return Ok(());
        };
        for (instance, entry) in instances {
            let Some(entry) = entry.as_document() else {
                continue;
            };
            let (Ok(seen), Ok(through)) = (entry.get_datetime("seen"), entry.get_i64("through"))
            else {
                continue;
            };
            let host = entry.get_str("host").unwrap_or_default();
            let pid = entry.get_i64("pid").unwrap_or_default();
            let adopted = lock(&self.outbox).adopted.contains_key(instance);
            if instance == &self.identity.instance
                || adopted
                || !self.identity.is_gone(instance, host, pid, *seen)
            {
                continue;
            }
            let recovered = self.ledger_after(instance, through as u64).await?;
            let count: usize = recovered.iter().map(|(_, c)| c.len()).sum();
            tracing::info!(%instance, commits = count, "adopting the outbox of a dead instance");
            let mut outbox = lock(&self.outbox);
            for (ledger, commits) in recovered {
                outbox.add(&ledger, commits);
            }
            outbox.adopted.insert(instance.clone(), *seen);
        }
        Ok(())
    }

    /// Versions before the ledger marked each commit `published` and swept for the unmarked
    /// ones. Once per database, what they left unpublished is found by that sweep (the one
    /// scan the store ever makes) and published like a dead instance's outbox.
    async fn adopt_legacy(&mut self) -> Result<(), StoreError> {
        let mut found = Vec::new();
        let mut cursor = self.commits.find(doc! { "published": false }).await?;
        while let Some(document) = cursor.try_next().await? {
            match from_document::<CommitDocument>(document) {
                Ok(document) => found.push(Commit::from(document)),
                Err(e) => tracing::error!(error = %e, "an unpublished commit does not read back"),
            }
        }
        found.sort_by_key(|c| (c.recorded_at, c.version));
        if !found.is_empty() {
            tracing::info!(
                commits = found.len(),
                "publishing what an earlier version left"
            );
        }
        let mut outbox = lock(&self.outbox);
        outbox.add(&format!("{LEDGER_PREFIX}{LEGACY}#0"), found);
        outbox
            .adopted
            .insert(LEGACY.to_owned(), bson::DateTime::now());
        Ok(())
    }

    /// `instance`'s ledger entries after `through`, each with the commits it wrote.
    async fn ledger_after(
        &self,
        instance: &str,
        through: u64,
    ) -> Result<Vec<(String, Vec<Commit>)>, StoreError> {
        let mut found = Vec::new();
        for seq in through + 1.. {
            let id = ledger_id(instance, seq);
            match written_under(&self.commits, &id).await? {
                Some(commits) => found.push((id, commits)),
                None => return Ok(found),
            }
        }
        Ok(found)
    }
}

/// The commits ledger entry `id` names and wrote, or `None` if the entry does not exist.
pub(crate) async fn written_under(
    commits: &Collection<Document>,
    id: &str,
) -> Result<Option<Vec<Commit>>, StoreError> {
    let Some(entry) = commits.find_one(doc! { "_id": id }).await? else {
        return Ok(None);
    };
    let entry: LedgerDocument = from_document(entry)?;
    let mut written = Vec::with_capacity(entry.commits.len());
    for commit_id in &entry.commits {
        let Some(document) = commits.find_one(doc! { "_id": commit_id }).await? else {
            continue;
        };
        match from_document::<CommitDocument>(document) {
            Ok(document) if document.ledger.as_deref() == Some(id) => {
                written.push(Commit::from(document));
            }
            Ok(_) => {}
            // Not this entry's to publish if it cannot be read; skipping it keeps the rest going.
            Err(e) => tracing::error!(ledger = %id, error = %e, "a commit does not read back"),
        }
    }
    Ok(Some(written))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(stream: &str, version: u64) -> Commit {
        Commit::empty(stream, version)
    }

    #[test]
    fn through_stops_before_the_first_entry_not_all_published() {
        let mut outbox = Outbox::new("me".into(), 0);
        let (one, two, three) = (outbox.begin(), outbox.begin(), outbox.begin());
        outbox.written(one, vec![commit("a", 1), commit("b", 1)]);
        outbox.written(two, vec![commit("c", 1)]);
        assert_eq!(outbox.through(), 0);
        outbox.published(&[commit("c", 1), commit("a", 1)]);
        assert_eq!(outbox.through(), 0, "entry 1 still has b");
        outbox.published(&[commit("b", 1)]);
        assert_eq!(outbox.through(), 2, "entry 3 is still being written");
        outbox.unused(three);
        assert_eq!(outbox.through(), 2);
        assert_eq!(outbox.begin(), 3, "an entry never written is used again");
    }

    #[test]
    fn pending_commits_go_out_in_entry_order() {
        let mut outbox = Outbox::new("me".into(), 8);
        let (nine, ten) = (outbox.begin(), outbox.begin());
        outbox.written(ten, vec![commit("b", 1)]);
        outbox.written(nine, vec![commit("a", 1), commit("a", 2)]);
        let order: Vec<_> = outbox
            .unpublished(10)
            .iter()
            .map(|c| (c.stream.clone(), c.version))
            .collect();
        assert_eq!(order, [("a".into(), 1), ("a".into(), 2), ("b".into(), 1)]);
    }

    #[test]
    fn an_adoption_is_finished_when_its_entries_are_published() {
        let mut outbox = Outbox::new("me".into(), 0);
        outbox.add(&ledger_id("dead", 4), vec![commit("x", 2)]);
        outbox
            .adopted
            .insert("dead".into(), bson::DateTime::from_millis(1));
        assert!(outbox.finished_adoptions().is_empty());
        outbox.published(&[commit("x", 2)]);
        assert_eq!(outbox.finished_adoptions().len(), 1);
        assert_eq!(
            outbox.through(),
            0,
            "another instance's entries are not ours"
        );
    }
}
