//! What every saga log test starts from: the local stack's Postgres (`scripts/stack.sh up`).

use std::time::Duration;

use alpes_sagalog::SagaLog;

/// The log in a database of the tests' own (open sagas left there must not time out on the
/// dev stack's log), giving sagas `deadline`.
pub async fn log_with(deadline: Duration) -> SagaLog {
    log_in("alpes_sagalog_test", deadline).await
}

/// The log in database `database` (made if missing), giving sagas `deadline`: for a test whose
/// writes other tests must not see.
pub async fn log_in(database: &str, deadline: Duration) -> SagaLog {
    let url = std::env::var("ALPES_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://alpes@127.0.0.1:5433/alpes".into());
    let url = alpes_sagalog::ensure_database(&url, database)
        .await
        .expect("Postgres of the local stack (scripts/stack.sh up)");
    SagaLog::connect(&url, deadline).await.unwrap()
}
