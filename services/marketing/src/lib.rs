//! The marketing service: campaigns — their budget, commission terms, attribution model,
//! window and fraud threshold — and the campaign events attribution and commission rely on.
//!
//! - `domain`: the `Campaign` aggregate, pure.
//! - `app`: the use cases (create, activate, pause, complete, read).
//! - `adapters`: the HTTP API.
//! - `service`: the wiring `main` runs, also started in-process by the tests.

pub mod adapters;
pub mod app;
pub mod domain;
pub mod service;
