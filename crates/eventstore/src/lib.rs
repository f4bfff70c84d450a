//! Event streams on MongoDB: optimistic concurrency, and a transactional outbox without
//! multi-document transactions.
//!
//! The unit of storage is a [`Commit`]: everything one command changed, in **one document** —
//! the new domain events, the integration events to publish (the outbox), and the id of the
//! message that caused it (consumer-side deduplication). A commit's id is its stream and its
//! position in the stream, so two writers that loaded the same version race for the same id and
//! the database's unique `_id` lets exactly one win; the other gets [`StoreError::Conflict`],
//! reloads and decides again ([`retry_on_conflict`]).
//!
//! The [`Relay`] publishes the outboxes of unpublished commits through the bus, in order, and
//! marks them published. A crash between the write and the publish leaves the commit
//! unpublished, so the relay publishes it on restart: at least once. Consumers deduplicate by
//! event id ([`Stream::has_handled`]), in the same commit as their effect: exactly once.
//!
//! A [`Projection`] folds commits from every stream into a read model; [`rebuild`] replays
//! them all from scratch, reporting progress.
//!
//! [`MongoStore`] is the real store (tested against FerretDB); [`MemoryStore`] implements the
//! same [`EventStore`] trait for fast domain and application tests.

mod commit;
mod memory;
mod mongo;
mod prefixes;
mod projection;
mod relay;
mod store;

pub use commit::{Commit, NewCommit, StoredEvent, Stream};
pub use memory::MemoryStore;
pub use mongo::MongoStore;
pub use projection::{Projection, rebuild};
pub use relay::{Relay, RelayError};
pub use store::{EventStore, StoreError, retry_on_conflict};
