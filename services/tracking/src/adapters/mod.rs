//! The edges of the tracking service: its HTTP API and its bus consumer.

pub mod consumer;
pub mod http;
