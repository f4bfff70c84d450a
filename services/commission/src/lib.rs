//! The commission service: computes a partner's commission from the campaign's terms and
//! reserves it against the campaign's budget, never beyond it; reverts it when the sale's saga
//! is compensated.
//!
//! - `domain`: the `CampaignBudget` and `Commission` aggregates, pure: no I/O, no Pulsar, no
//!   MongoDB; tested given/when/then.
//! - `app`: loads, decides, appends (with the outbox), across the two aggregates in the order
//!   the domain documents — the use cases.
//! - `adapters`: the HTTP API and the bus consumers.
//! - `service`: the wiring `main` runs, also started in-process by the tests.

// Tests write money as units_cents (`120_00` is 120.00 EUR), which this lint calls inconsistent.
#![cfg_attr(test, allow(clippy::inconsistent_digit_grouping))]

pub mod adapters;
pub mod app;
pub mod domain;
pub mod service;
