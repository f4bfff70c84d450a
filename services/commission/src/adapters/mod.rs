//! The edges of the commission service: its HTTP API and its bus consumers.

pub mod consumer;
pub mod http;
