//! The schema: versioned migrations (`migrations/V{n}__{name}.sql`, embedded in the binary and
//! applied by refinery, which records them in `sopflow_schema_history`), run under an advisory
//! lock so that two processes opening one new database do not both create it, and the format
//! check that refuses a database holding something else.

use super::connection::Connection;
use crate::store::StoreError;

mod embedded {
    refinery::embed_migrations!("src/store/postgres/migrations");
}

/// The format this code reads and writes, recorded in `sopflow_meta`.
const FORMAT: &str = "sopflow-store-v1";

/// refinery's record of the migrations applied.
const HISTORY_TABLE: &str = "sopflow_schema_history";

/// Any number, the same in every sopflow: the advisory lock held while migrating.
const MIGRATION_LOCK: i64 = 0x736f_7066_6c6f_7731; // "sopflow1"

/// Brings the database's schema up to date (creating it in an empty database when `create`),
/// and checks that it is a sopflow store.
pub(super) async fn prepare(connection: &Connection, create: bool) -> Result<(), StoreError> {
    let shown = &connection.shown;
    let mut client = connection.dedicated().await?;
    let error = |e| super::connection::error(shown, e);
    let exists = client
        .query_one("SELECT to_regclass('sopflow_meta') IS NOT NULL", &[])
        .await
        .map_err(error)?
        .get::<_, bool>(0);
    if !exists && !create {
        return Err(StoreError::Missing {
            path: shown.clone(),
        });
    }
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(error)?;
    let mut runner = embedded::migrations::runner().set_abort_divergent(true);
    runner.set_migration_table_name(HISTORY_TABLE);
    let migrated = runner.run_async(&mut client).await;
    let format = client
        .query_opt("SELECT value FROM sopflow_meta WHERE key = 'format'", &[])
        .await;
    let recorded = match (migrated, format) {
        (Err(e), _) => Err(StoreError::NotAStore {
            path: shown.clone(),
            detail: format!(
                "its schema cannot be brought up to date ({e}); give sopflow a database of its own"
            ),
        }),
        (Ok(_), Err(e)) => Err(error(e)),
        (Ok(_), Ok(Some(row))) => {
            let value: String = row.get(0);
            if value == FORMAT {
                Ok(())
            } else {
                Err(StoreError::NotAStore {
                    path: shown.clone(),
                    detail: format!("format `{value}`; use a sopflow that reads it"),
                })
            }
        }
        (Ok(_), Ok(None)) => client
            .execute(
                "INSERT INTO sopflow_meta (key, value) VALUES ('format', $1)",
                &[&FORMAT],
            )
            .await
            .map(|_| ())
            .map_err(error),
    };
    // Closing the connection releases the lock too; unlocking first frees it at once.
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    recorded
}
