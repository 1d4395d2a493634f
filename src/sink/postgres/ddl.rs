//! Running `CREATE … IF NOT EXISTS` when several workers start at once:
//! PostgreSQL's `IF NOT EXISTS` is not safe against a concurrent creator
//! (the loser gets a unique or duplicate-object error), so such errors are
//! retried, and the retry finds the object.

use tokio_postgres::error::SqlState;

/// Runs `ddl`, retrying a few times when a concurrent creation made it fail.
pub(super) async fn create_if_missing(
    client: &tokio_postgres::Client,
    ddl: &str,
) -> Result<(), tokio_postgres::Error> {
    let mut attempt = 0;
    loop {
        match client.batch_execute(ddl).await {
            Err(err) if attempt < 3 && is_creation_race(&err) => {
                attempt += 1;
                tracing::debug!("another worker created the same objects at once; retrying: {err}");
            }
            other => return other,
        }
    }
}

fn is_creation_race(err: &tokio_postgres::Error) -> bool {
    // CREATE OR REPLACE VIEW racing another worker's.
    let concurrent = err
        .as_db_error()
        .is_some_and(|db| db.message().contains("tuple concurrently updated"));
    concurrent
        || err.code().is_some_and(|code| {
            [
                &SqlState::UNIQUE_VIOLATION,
                &SqlState::DUPLICATE_SCHEMA,
                &SqlState::DUPLICATE_TABLE,
                &SqlState::DUPLICATE_OBJECT,
            ]
            .contains(&code)
        })
}
