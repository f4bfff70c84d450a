//! Event streams on MongoDB: optimistic concurrency, and a transactional outbox without
//! multi-document transactions.
//!
//! The unit of storage is a [`Commit`]: everything one command changed, in **one document** —
//! the new domain events, the integration events to publish (the outbox), and the id of the
//! message that caused it (consumer-side deduplication). A commit's id is its stream and its
//! position in the stream, so two writers that decided on the same version race for the same id
//! and the database's unique `_id` lets exactly one win; the other gets [`StoreError::Conflict`],
//! reloads and decides again ([`retry_on_conflict`]).
//!
//! The hot path does not read: a process keeps the streams it works on, and appends at the
//! version it holds (Key_Shared gives it the key); a conflict is what makes it read again.
//! Appends that are ready together go to the database as one write, and so do the commits one
//! use case decides together ([`EventStore::append_chain`]: each stored only if the one before
//! it was).
//!
//! The [`Relay`] publishes the outboxes of stored commits through the bus, in order. A crash
//! between the write and the publish leaves them to the process that adopts the dead one's
//! ledger (see the Mongo store): at least once. Consumers deduplicate by event id
//! ([`Stream::has_handled`]), in the same commit as their effect: exactly once.
//!
//! A [`Projection`] folds commits from every stream into a read model; [`rebuild`] replays
//! them all from scratch, reporting progress.
//!
//! [`MongoStore`] is the real store (tested against FerretDB); [`MemoryStore`] implements the
//! same [`EventStore`] trait for fast domain and application tests.

mod commit;
mod locks;
mod memory;
mod mongo;
mod projection;
mod relay;
mod states;
mod store;
mod streams;

pub use commit::{Commit, NewCommit, StoredEvent, Stream};
pub use locks::StreamLocks;
pub use memory::{MemoryStore, Probe};
pub use mongo::MongoStore;
pub use projection::{Projection, rebuild, scan};
pub use relay::{Relay, RelayError};
pub use states::States;
pub use store::{EventStore, StoreError, retry_on_conflict};
