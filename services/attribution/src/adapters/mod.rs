//! The edges of the attribution service: its HTTP API and its bus consumers.

pub mod consumer;
pub mod http;
