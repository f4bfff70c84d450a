use std::sync::Arc;

/// Why the saga log could not do what was asked.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LogError {
    /// Postgres refused or could not be reached; worth retrying.
    #[error("saga log database: {0}")]
    Database(Arc<sqlx::Error>),
    /// The schema could not be brought up to date.
    #[error("saga log migration: {0}")]
    Migration(Arc<sqlx::migrate::MigrateError>),
    /// The batching writer has stopped (the service is shutting down).
    #[error("the saga log's writer has stopped")]
    Stopped,
}

impl From<sqlx::Error> for LogError {
    fn from(e: sqlx::Error) -> Self {
        Self::Database(Arc::new(e))
    }
}

impl From<sqlx::migrate::MigrateError> for LogError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        Self::Migration(Arc::new(e))
    }
}
