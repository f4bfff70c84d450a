//! The tracking service: records what visitors do and, when a sale is compensated, discards
//! the interactions of its journey.
//!
//! - `domain`: the `Interaction` aggregate, pure.
//! - `app`: loads, decides, appends (with the outbox) — the use cases.
//! - `adapters`: HTTP API and the `AttributionReverted` consumer.
//! - `service`: the wiring `main` runs, also started in-process by the tests.

pub mod adapters;
pub mod app;
pub mod domain;
pub mod service;
