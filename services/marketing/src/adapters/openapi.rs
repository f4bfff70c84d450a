//! `GET /openapi.json`: the OpenAPI description of the marketing endpoints.

/// The document, as committed in `openapi.json` next to the crate's manifest.
pub const DOCUMENT: &str = include_str!("../../openapi.json");
