//! The edges of the marketing service: its HTTP APIs (campaigns; sagas and fraud reports, with
//! the HTML view and the OpenAPI document) and the consumers feeding the statistics and the
//! saga log.

pub mod consumer;
pub mod http;
pub mod openapi;
pub mod saga_api;
pub mod view;
