//! What every alpes service binary shares, so that a service is mostly its domain.
//!
//! - [`config::CommonArgs`]: the settings every service reads, from flags or `ALPES_*`
//!   environment variables (one mechanism: clap), flattened into each service's own config.
//! - [`auth`]: bearer tokens with scopes (`read`, `operate`, `ingest`) and the layer that
//!   guards each protected route with one.
//! - [`telemetry::init`]: JSON (or human) logs through `tracing`.
//! - [`http`]: the axum server with `/healthz`, `/readyz`, `/metrics`, trace context on every
//!   request, JSON errors with a stable `code` (from the framework and hyper too), timeouts,
//!   a limit of requests in flight and of body size, and graceful shutdown.
//! - [`service::ServiceRuntime`]: the wiring every service repeats otherwise — bootstrap, bus,
//!   event store, outbox relay, consumers, readiness, HTTP, and the order they stop in.
//! - [`shutdown::on_signals`]: a [`Shutdown`](alpes_bus::Shutdown) token cancelled by SIGTERM
//!   or SIGINT. Readiness turns false at once; consumers drain; the relay flushes.
//! - [`service::main`]: a service binary's whole `main` (configuration, logs, the listener,
//!   signals) around its `run`.
//!
//! Every binary that links this crate allocates with mimalloc: under `alpes bench`, glibc's
//! malloc and free were about a fifth of a service's CPU (perf), mostly small short-lived
//! buffers of messages and documents.

pub mod auth;
pub mod config;
pub mod error;
pub mod health;
pub mod http;
pub mod metrics;
mod protocol_errors;
pub mod service;
pub mod shutdown;
pub mod telemetry;
pub mod trace;

pub use error::ApiError;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
