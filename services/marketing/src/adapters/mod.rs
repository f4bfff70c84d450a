//! The edges of the marketing service: its HTTP API.

pub mod http;
