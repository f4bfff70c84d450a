//! The integration events of alpes: the contracts the four services exchange over Pulsar.
//!
//! The `.avsc` files under `schema/v<major>/<service>/` are the single source of truth. This
//! crate embeds them at compile time, gives each event a Rust type, and encodes and decodes
//! plain Avro binary: the same bytes the official Java and Python Pulsar clients write with an
//! `AvroSchema`, so events stay readable from other languages.
//!
//! - [`Event`] ties a Rust type to its [`EventType`] (name, owning service, topic, schema).
//! - [`codec`] turns events into bytes and back, resolving older writer schemas.
//! - [`compat`] checks that each schema stays compatible with the earlier revisions of its major
//!   version.
//! - [`events`] holds the types, one module per producing service.

pub mod codec;
pub mod compat;
mod event;
pub mod events;
mod metadata;
mod money;

pub use event::{Event, EventType, TENANT_NAMESPACE};
pub use metadata::{EventMetadata, Timestamp};
pub use money::Money;
