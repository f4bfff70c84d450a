//! The batching writer: every append of the process goes through one task, which writes
//! whatever appends are waiting as one `insert_many` (57 µs a document on FerretDB/SQLite,
//! against 520 µs for an `insert_one`), each commit still conflict-checked on its own by its
//! unique `_id`.
//!
//! An append may be a **chain** of commits, each to be stored only if the one before it was
//! (`EventStore::append_chain`): a use case that decides several commits at once, across
//! streams, pays one write for them where appending them one after the other would pay one
//! each. The `insert_many` is *ordered*, so the server stops at the first refused document;
//! the documents after it that do not depend on it go again in the next command. Refusals are
//! rare (another replica, a stale copy), so nearly every batch is one command.
//!
//! One write is in flight at a time: while it is, the next appends queue, and become the next
//! batch (group commit). Alone, an append costs one round trip. Under load a write also waits
//! a little ([`LINGER`]) for more appends to join it before it goes: at a few hundred appends
//! a second the round trips are short, so the queue alone gathers one or two, and each
//! `insert_many` costs the server about as much as a single insert. [`Pace`] decides: never
//! in a quiet process, nor in one whose appends come one at a time.
//!
//! A write whose outcome is unknown (the connection dropped mid-way) is sent again, the same
//! documents, until the answer is definite; a duplicate `_id` then is either this write's own
//! document from the earlier attempt (its `write` mark says so) or another writer's (a
//! conflict). Nothing is answered, and no later write starts, before that: reading back instead
//! could run before the interrupted insert lands and lose what it stored. So a ledger seq, once
//! sent, is never used again, and ledgers have no gaps (see `outbox`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mongodb::Collection;
use mongodb::bson::{Document, doc};
use mongodb::error::ErrorKind;
use tokio::sync::{Notify, mpsc, oneshot};

use super::document::{CommitDocument, LedgerDocument, commit_id, ledger_id, to_document};
use super::lock;
use super::outbox::Outbox;
use crate::{Commit, StoreError};

const DUPLICATE_KEY: i32 = 11000;

/// Commits per `insert_many` at most.
const MAX_BATCH: usize = 256;

/// How long a write waits at most for more appends (see [`Pace`]).
const LINGER: Duration = Duration::from_millis(10);

/// The window over which the rate of appends is measured.
const PACE_WINDOW: Duration = Duration::from_millis(100);

/// After lingering stopped paying, one write in this many lingers again to see whether it
/// pays now.
const PROBE_EVERY: u32 = 16;

/// When a write waits for company, and for how much.
///
/// It waits when appends come fast enough that at least one more is expected within
/// [`LINGER`] (the rate of the last [`PACE_WINDOW`]), and only while waiting pays: a process
/// whose appends come one after the other (each caller waits for its answer before the next,
/// as a consumer handling one message at a time does) would only add the wait to every append,
/// so after lingers that gathered nothing it stops, and tries again now and then. It stops
/// waiting as soon as the appends expected within the linger have come.
#[derive(Debug)]
struct Pace {
    window_start: Instant,
    in_window: usize,
    /// Appends per second in the last full window.
    rate: f64,
    /// Appends gathered per linger, smoothed.
    gathered: f64,
    /// Writes since the last linger, while lingering does not pay.
    since_probe: u32,
}

/// What the next write waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Linger {
    /// At most this long...
    wait: Duration,
    /// ...until the batch holds this many more appends.
    more: usize,
}

impl Pace {
    fn new(now: Instant) -> Self {
        Self {
            window_start: now,
            in_window: 0,
            rate: 0.0,
            gathered: 1.0,
            since_probe: 0,
        }
    }

    /// `count` appends arrived by `now`.
    fn arrived(&mut self, count: usize, now: Instant) {
        let elapsed = now.saturating_duration_since(self.window_start);
        if elapsed >= PACE_WINDOW {
            self.rate = self.in_window as f64 / elapsed.as_secs_f64();
            self.window_start = now;
            self.in_window = 0;
        }
        self.in_window += count;
    }

    /// Whether, and how long, the next write waits for company.
    fn linger(&mut self) -> Option<Linger> {
        let expected = self.rate * LINGER.as_secs_f64();
        if expected < 1.0 {
            return None;
        }
        if self.gathered < 0.5 && self.since_probe + 1 < PROBE_EVERY {
            self.since_probe += 1;
            return None;
        }
        self.since_probe = 0;
        Some(Linger {
            wait: LINGER,
            more: expected.ceil() as usize,
        })
    }

    /// A linger gathered `count` more appends.
    fn lingered(&mut self, count: usize) {
        self.gathered = 0.8 * self.gathered + 0.2 * count as f64;
    }
}

/// One append, a chain of commits, waiting for its write.
pub(crate) struct Write {
    pub(crate) commits: Vec<Commit>,
    pub(crate) done: oneshot::Sender<Answer>,
}

/// How far a chain got: its first `stored` commits are stored, and `refused` says why the next
/// one was not (the rest were not tried).
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) stored: usize,
    pub(crate) refused: Option<StoreError>,
}

pub(crate) struct Writer {
    pub(crate) appends: mpsc::Receiver<Write>,
    pub(crate) commits: Collection<Document>,
    pub(crate) instance: String,
    pub(crate) outbox: Arc<Mutex<Outbox>>,
    pub(crate) appended: Arc<Notify>,
    /// Writes sent so far, for their marks.
    pub(crate) writes: u64,
    /// Since when the write in flight has been waiting for its answer, if one is.
    pub(crate) busy_since: Arc<Mutex<Option<Instant>>>,
}

/// What became of one document of a write.
#[derive(Debug, Clone, PartialEq)]
enum Written {
    Stored,
    Duplicate,
    Failed(String),
    /// Not tried: the server stopped at a document before it (an ordered insert).
    NotTried,
    /// Not sent: the commit before it in its chain was not stored.
    Skipped,
}

impl Writer {
    /// Writes batches until every store handle is gone.
    pub(crate) async fn run(mut self) {
        let mut batch = Vec::new();
        let mut pace = Pace::new(Instant::now());
        while self.appends.recv_many(&mut batch, MAX_BATCH).await > 0 {
            pace.arrived(batch.len(), Instant::now());
            if let Some(linger) = pace.linger() {
                let until = tokio::time::Instant::now() + linger.wait;
                let (before, enough) = (batch.len(), batch.len() + linger.more);
                while batch.len() < enough.min(MAX_BATCH) {
                    let room = MAX_BATCH - batch.len();
                    let more = self.appends.recv_many(&mut batch, room);
                    match tokio::time::timeout_at(until, more).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => pace.arrived(n, Instant::now()),
                    }
                }
                pace.lingered(batch.len() - before);
            }
            self.write(std::mem::take(&mut batch)).await;
        }
    }

    async fn write(&mut self, batch: Vec<Write>) {
        self.writes += 1;
        let mark = format!("{}#{}", self.instance, self.writes);
        let commits = || batch.iter().flat_map(|w| &w.commits);
        let with_outbox: Vec<String> = commits()
            .filter(|c| !c.outbox.is_empty())
            .map(|c| commit_id(&c.stream, c.version))
            .collect();
        let seq = (!with_outbox.is_empty()).then(|| lock(&self.outbox).begin());
        let ledger = seq.map(|seq| ledger_id(&self.instance, seq));

        // The ledger entry goes first: a write cut short leaves no commit without its entry.
        let mut documents = Vec::with_capacity(batch.len() + 1);
        let mut after = Vec::with_capacity(batch.len() + 1);
        if let Some(id) = &ledger {
            let entry = LedgerDocument {
                id: id.clone(),
                commits: with_outbox,
            };
            match to_document(&entry) {
                Ok(document) => documents.push(document),
                Err(e) => return self.fail_all(batch, seq, &e.to_string()),
            }
            after.push(None);
        }
        let offset = documents.len();
        for w in &batch {
            for (i, commit) in w.commits.iter().enumerate() {
                let ledger = (!commit.outbox.is_empty())
                    .then_some(ledger.as_deref())
                    .flatten();
                match to_document(&CommitDocument::new(commit, ledger, &mark)) {
                    Ok(document) => documents.push(document),
                    Err(e) => return self.fail_all(batch, seq, &e.to_string()),
                }
                after.push((i > 0).then(|| documents.len() - 2));
            }
        }

        *lock(&self.busy_since) = Some(Instant::now());
        let outcomes = self.insert_chains(&documents, &after, &mark).await;
        *lock(&self.busy_since) = None;
        let mut stored = Vec::new();
        let mut fates = outcomes[offset..].iter();
        for w in batch {
            let mut answer = Answer {
                stored: 0,
                refused: None,
            };
            for (commit, fate) in w.commits.iter().zip(fates.by_ref()) {
                match fate {
                    Written::Stored if answer.refused.is_none() => {
                        answer.stored += 1;
                        if !commit.outbox.is_empty() {
                            stored.push(commit.clone());
                        }
                    }
                    Written::Duplicate if answer.refused.is_none() => {
                        answer.refused = Some(StoreError::Conflict {
                            stream: commit.stream.clone(),
                            expected: commit.version - 1,
                        });
                    }
                    Written::Failed(reason) if answer.refused.is_none() => {
                        answer.refused = Some(StoreError::Write(reason.clone()));
                    }
                    _ => {}
                }
            }
            let _ = w.done.send(answer);
        }
        if let Some(seq) = seq {
            lock(&self.outbox).written(seq, stored);
            self.appended.notify_one();
        }
    }

    /// Nothing of `batch` was sent: every append fails with `reason`.
    fn fail_all(&self, batch: Vec<Write>, seq: Option<u64>, reason: &str) {
        if let Some(seq) = seq {
            lock(&self.outbox).unused(seq);
        }
        for w in batch {
            let _ = w.done.send(Answer {
                stored: 0,
                refused: Some(StoreError::Write(reason.to_owned())),
            });
        }
    }

    /// Sends `documents` in order until each one's fate is known; `after[i]` is the document
    /// that must be stored for document `i` to be sent (the one before it in its chain). Each
    /// command is one ordered `insert_many` of the documents still to send: it stores at
    /// least the first of them or says why not, so this ends.
    async fn insert_chains(
        &self,
        documents: &[Document],
        after: &[Option<usize>],
        mark: &str,
    ) -> Vec<Written> {
        let mut fates = vec![Written::NotTried; documents.len()];
        loop {
            for i in 0..documents.len() {
                let blocked = after[i].is_some_and(|before| {
                    !matches!(fates[before], Written::Stored | Written::NotTried)
                });
                if blocked && fates[i] == Written::NotTried {
                    fates[i] = Written::Skipped;
                }
            }
            let todo: Vec<usize> = (0..documents.len())
                .filter(|&i| fates[i] == Written::NotTried)
                .collect();
            if todo.is_empty() {
                return fates;
            }
            let sent: Vec<&Document> = todo.iter().map(|&i| &documents[i]).collect();
            let outcomes = self.insert_until_definite(&sent, mark).await;
            for (&i, outcome) in todo.iter().zip(outcomes) {
                fates[i] = outcome;
            }
            if let Some(entry) = sent.first().filter(|d| is_ledger_entry(d))
                && matches!(fates[todo[0]], Written::Failed(_))
            {
                // The commits must not go without the entry that names them.
                self.insert_entry(entry).await;
                fates[todo[0]] = Written::Stored;
            }
        }
    }

    /// Sends `documents` (one ordered `insert_many`) until each one's fate is known. After an
    /// interrupted attempt, a duplicate that carries `mark` (or is the ledger entry, whose id
    /// is this write's alone) was stored by that attempt.
    async fn insert_until_definite(&self, documents: &[&Document], mark: &str) -> Vec<Written> {
        let mut delay = Duration::from_millis(100);
        let mut interrupted = false;
        loop {
            let result = self
                .commits
                .insert_many(documents.iter().copied())
                .ordered(true)
                .await;
            let known = match outcomes(result, documents.len()) {
                Ok(outcomes) if interrupted => self.own_duplicates(documents, outcomes, mark).await,
                known => known,
            };
            match known {
                Ok(outcomes) => return outcomes,
                Err(e) => {
                    tracing::warn!(error = %e, "a write was interrupted; sending it again");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                    interrupted = true;
                }
            }
        }
    }

    /// `outcomes` with the duplicates that are this write's own documents counted as stored.
    async fn own_duplicates(
        &self,
        documents: &[&Document],
        mut outcomes: Vec<Written>,
        mark: &str,
    ) -> Result<Vec<Written>, mongodb::error::Error> {
        for (document, outcome) in documents.iter().zip(outcomes.iter_mut()) {
            if *outcome != Written::Duplicate {
                continue;
            }
            let id = document.get_str("_id").unwrap_or_default();
            let own = if is_ledger_entry(document) {
                true
            } else {
                let stored = self.commits.find_one(doc! { "_id": id }).await?;
                stored.is_some_and(|d| d.get_str("write").is_ok_and(|w| w == mark))
            };
            if own {
                *outcome = Written::Stored;
            }
        }
        Ok(outcomes)
    }

    /// Inserts a ledger entry on its own until it is there.
    async fn insert_entry(&self, entry: &Document) {
        let mut delay = Duration::from_millis(100);
        loop {
            match self.commits.insert_one(entry).await {
                Ok(_) => return,
                Err(e) if duplicate(&e) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "storing a ledger entry; trying again");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

fn is_ledger_entry(document: &Document) -> bool {
    document
        .get_str("_id")
        .is_ok_and(|id| id.starts_with(super::document::LEDGER_PREFIX))
}

fn duplicate(error: &mongodb::error::Error) -> bool {
    matches!(error.kind.as_ref(), ErrorKind::Write(mongodb::error::WriteFailure::WriteError(e)) if e.code == DUPLICATE_KEY)
}

/// Each of `count` documents' fate after an ordered `insert_many`, or the error that leaves
/// it unknown: the documents before the first refused one are stored, those after it were not
/// tried.
fn outcomes(
    result: mongodb::error::Result<impl Sized>,
    count: usize,
) -> Result<Vec<Written>, mongodb::error::Error> {
    let error = match result {
        Ok(_) => return Ok(vec![Written::Stored; count]),
        Err(e) => e,
    };
    match error.kind.as_ref() {
        ErrorKind::InsertMany(failure) if failure.write_concern_error.is_none() => {
            let mut outcomes = vec![Written::Stored; count];
            let errors = failure.write_errors.iter().flatten();
            if let Some(first) = errors.clone().map(|e| e.index).min() {
                outcomes[first.min(count)..].fill(Written::NotTried);
            }
            for e in errors {
                if let Some(slot) = outcomes.get_mut(e.index) {
                    *slot = if e.code == DUPLICATE_KEY {
                        Written::Duplicate
                    } else {
                        Written::Failed(format!("{} ({})", e.message, e.code))
                    };
                }
            }
            Ok(outcomes)
        }
        _ => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quiet_process_never_lingers_and_a_busy_one_does() {
        let start = Instant::now();
        let mut pace = Pace::new(start);
        assert_eq!(pace.linger(), None, "nothing measured yet");
        // 50 appends a second: less than one expected within a linger.
        for i in 1..=20 {
            pace.arrived(1, start + Duration::from_millis(20 * i));
        }
        assert_eq!(pace.linger(), None);
        // 400 a second: four expected.
        let busy = start + Duration::from_millis(400);
        for i in 1..=80 {
            pace.arrived(1, busy + Duration::from_micros(2_500 * i));
        }
        let linger = pace.linger().expect("busy");
        assert_eq!((linger.wait, linger.more), (LINGER, 4));
        // Quiet again: the first append after a pause does not wait.
        pace.arrived(1, busy + Duration::from_secs(5));
        assert_eq!(pace.linger(), None);
    }

    #[test]
    fn lingering_that_gathers_nothing_stops_and_is_tried_again_now_and_then() {
        let start = Instant::now();
        let mut pace = Pace::new(start);
        for i in 1..=100 {
            pace.arrived(1, start + Duration::from_millis(2 * i));
        }
        // Appends one after the other: every linger comes back alone.
        let mut lingered = 0;
        for _ in 0..100 {
            if pace.linger().is_some() {
                lingered += 1;
                pace.lingered(0);
            }
        }
        assert!(
            (6..=12).contains(&lingered),
            "a few lingers, then one in {PROBE_EVERY}: {lingered}"
        );
        // Concurrent appends: a probe that gathers some makes it linger every time again.
        while pace.linger().is_none() {}
        for _ in 0..5 {
            pace.lingered(3);
        }
        assert!((0..10).all(|_| pace.linger().is_some()));
    }
}
