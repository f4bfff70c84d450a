//! The marketing service: the saga log, and campaigns — their budget, commission terms, attribution model,
//! window and fraud threshold — and the campaign events attribution and commission rely on.
//!
//! - `domain`: the `Campaign` aggregate, pure.
//! - `app`: the use cases (create, activate, pause, complete, read).
//! - `read_models`: the campaign list and statistics, kept up to date in the saga log's
//!   Postgres as things happen.
//! - `coordinator`: the saga coordinator: records every saga event in the saga log (`alpes-sagalog`),
//!   times out sagas that stop moving, publishes fraud reports.
//! - `adapters`: the HTTP APIs (campaigns; sagas, fraud reports, HTML view, OpenAPI) and the
//!   consumers.
//! - `service`: the wiring `main` runs, also started in-process by the tests.

pub mod adapters;
pub mod app;
pub mod coordinator;
pub mod domain;
pub mod read_models;
pub mod service;
