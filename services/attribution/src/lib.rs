//! The attribution service: folds a visitor's interactions into journeys, attributes each
//! purchase to the partners and campaign that brought it, and reverts the attribution when the
//! sale is compensated.
//!
//! - `domain`: journeys, campaign settings, attribution models, fraud scoring — pure, tested
//!   given/when/then.
//! - `app`: loads, decides, appends (with the outbox) — the use cases and their read side.
//! - `adapters`: the HTTP API and the bus consumers.
//! - `service`: the wiring `main` runs, also started in-process by the tests.

#![warn(missing_docs)]

pub mod adapters;
pub mod app;
pub mod domain;
pub mod service;
