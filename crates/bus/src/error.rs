//! The bus's error type.

use alpes_contracts::codec::CodecError;

/// What can go wrong talking to Pulsar.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("cannot connect to Pulsar at {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: pulsar::Error,
    },
    #[error("cannot publish to {topic}: {source}")]
    Publish {
        topic: String,
        #[source]
        source: pulsar::Error,
    },
    #[error("cannot subscribe `{subscription}` to {topic}: {source}")]
    Subscribe {
        subscription: String,
        topic: String,
        #[source]
        source: pulsar::Error,
    },
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error("the schema registry refused the schema for {topic}: {detail}")]
    SchemaRefused { topic: String, detail: String },
    #[error("Pulsar admin API: {method} {url} failed: {detail}")]
    Admin {
        method: &'static str,
        url: String,
        detail: String,
    },
    #[error("Pulsar token: {0}")]
    Token(String),
}

impl BusError {
    /// Whether the admin API refused the caller's credentials (401) or their role (403): what
    /// a service's own role meets where only the superuser may act.
    pub fn is_refused_by_authorization(&self) -> bool {
        matches!(self, BusError::Admin { detail, .. }
            if detail.starts_with("401") || detail.starts_with("403"))
    }
}
