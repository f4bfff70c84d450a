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

impl LogError {
    /// Whether trying again cannot help: Postgres refused the data itself (a data exception,
    /// class 22, e.g. a NUL in text; an integrity violation, class 23; a program limit, class
    /// 54, e.g. an index row too large), or the data could not be encoded or decoded. A lost
    /// connection, a serialization failure, a deadlock or a timeout may pass, so they are not.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Database(e) => match e.as_ref() {
                sqlx::Error::Database(e) => e
                    .code()
                    .is_some_and(|code| matches!(code.get(..2), Some("22" | "23" | "54"))),
                sqlx::Error::Encode(_)
                | sqlx::Error::Decode(_)
                | sqlx::Error::ColumnDecode { .. } => true,
                _ => false,
            },
            Self::Migration(_) | Self::Stopped => false,
        }
    }
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

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::error::Error as StdError;

    use super::*;

    /// A database error with SQLSTATE `code`, as Postgres reports one.
    #[derive(Debug)]
    struct Sqlstate(&'static str);

    impl std::fmt::Display for Sqlstate {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "SQLSTATE {}", self.0)
        }
    }

    impl StdError for Sqlstate {}

    impl sqlx::error::DatabaseError for Sqlstate {
        fn message(&self) -> &str {
            self.0
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            Some(Cow::Borrowed(self.0))
        }
        fn as_error(&self) -> &(dyn StdError + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn StdError + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn StdError + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }

    fn sqlstate(code: &'static str) -> LogError {
        sqlx::Error::Database(Box::new(Sqlstate(code))).into()
    }

    #[test]
    fn refusals_of_the_data_are_permanent_and_the_rest_may_pass() {
        // NUL in jsonb, invalid UTF-8 byte, check violation, unique violation, index row too
        // large.
        for code in ["22P05", "22021", "23514", "23505", "54000"] {
            assert!(sqlstate(code).is_permanent(), "{code}");
        }
        // Serialization failure, deadlock, connection failure, too many connections, admin
        // shutdown, query canceled.
        for code in ["40001", "40P01", "08006", "53300", "57P01", "57014"] {
            assert!(!sqlstate(code).is_permanent(), "{code}");
        }
        assert!(!LogError::from(sqlx::Error::PoolTimedOut).is_permanent());
        assert!(!LogError::Stopped.is_permanent());
    }
}
