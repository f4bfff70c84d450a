//! The edges of the marketing service: its HTTP API and the consumers feeding its statistics.

pub mod consumer;
pub mod http;
