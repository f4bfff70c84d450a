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
//! - [`limits`] says what each string field may hold; every event is checked against it when
//!   decoded, and every entry point (HTTP, CLI) applies the same rules.
//! - [`Namespace`] is the Pulsar tenant/namespace the process's topics live in, chosen once at
//!   start-up (`alpes/events` unless said otherwise; test suites use their own).

pub mod codec;
pub mod compat;
mod event;
pub mod events;
pub mod limits;
mod metadata;
mod money;
mod namespace;

pub use event::{Event, EventType};
pub use metadata::{EventMetadata, Timestamp};
pub use money::Money;
pub use namespace::{DEFAULT_NAMESPACE, Namespace, NamespaceError};
