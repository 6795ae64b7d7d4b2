//! Starts numbered under their counts' row locks, held in the commit's own transaction: the
//! way starts of one workflow on several nodes share its gapless numbers without racing for
//! them.
//!
//! One transaction: `BEGIN` and the locks of the workflow's instance count (and, for a
//! readable number, of its period's `{seq}` count) in one round trip; the engine computes the
//! starts on the counts as they are now; then their claims, rows and `COMMIT` in another
//! (`commit::write`). Another node's start of the same workflow waits for the lock and then
//! reads the count this one committed, so no start is ever computed on a number that is
//! taken: none loses a race, and none is computed twice. The claims' compare-and-set still
//! runs, and holds by construction. A count that is not there yet (a workflow's first start,
//! a period's first readable number) is inserted in the same transaction, so two nodes'
//! first starts also wait for each other.
//!
//! The rows are held from the lock to the commit (two round trips and the computing of the
//! starts, which the engine gathers per workflow, so one transaction numbers every start
//! that arrived meanwhile, those that arrive while it waits for the lock included).
//! `engine::starts` has the figures.

use super::commit::{Pending, failed, in_order, write};
use super::connection::Connection;
use crate::store::{Committed, StoreError};

/// The workflow's instance count, locked.
const LOCK_NUMBER: &str =
    "SELECT last FROM sopflow_instance_numbers WHERE workflow = $1 FOR UPDATE";

/// The workflow's instance count, inserted at `$2` if it is not there yet, locked either way.
const START_NUMBER: &str = "INSERT INTO sopflow_instance_numbers (workflow, last) \
     VALUES ($1, $2) ON CONFLICT (workflow) DO UPDATE SET last = sopflow_instance_numbers.last \
     RETURNING last";

/// The `{seq}` count of period `$2`, locked.
const LOCK_SEQUENCE: &str = "SELECT last FROM sopflow_readable_sequences \
     WHERE workflow = $1 AND period = $2 FOR UPDATE";

/// The `{seq}` count of period `$2`, inserted at 0 if it is not there yet, locked either way.
const START_SEQUENCE: &str = "INSERT INTO sopflow_readable_sequences (workflow, period, last) \
     VALUES ($1, $2, 0) ON CONFLICT (workflow, period) \
     DO UPDATE SET last = sopflow_readable_sequences.last RETURNING last";

/// See [`Store::commit_numbered`](crate::store::Store::commit_numbered).
pub(super) async fn commit_numbered(
    connection: &Connection,
    workflow: &str,
    period: Option<&str>,
    number: &mut dyn FnMut(u64, Option<u64>) -> Vec<Committed>,
) -> Result<Vec<Committed>, StoreError> {
    let client = connection.client().await?;
    let (last, last_seq) = match lock(connection, &client, workflow, period).await {
        Ok(counts) => counts,
        Err(err) => {
            abandon(client).await;
            return Err(err);
        }
    };
    let batch = number(last, last_seq);
    if batch.is_empty() {
        abandon(client).await;
        return Ok(batch);
    }
    write(connection, client, &batch, true).await?;
    Ok(batch)
}

/// Opens the transaction and locks the counts: the last instance number and, with `period`,
/// the period's last `{seq}`.
async fn lock(
    connection: &Connection,
    client: &deadpool_postgres::Object,
    workflow: &str,
    period: Option<&str>,
) -> Result<(u64, Option<u64>), StoreError> {
    let locked = async {
        let number = client.prepare_cached(LOCK_NUMBER).await?;
        let sequence = client.prepare_cached(LOCK_SEQUENCE).await?;
        let mut pipeline: Vec<Pending<'_, Option<i64>>> = vec![
            Box::pin(async { client.batch_execute("BEGIN").await.map(|()| None) }),
            Box::pin(async {
                let row = client.query_opt(&number, &[&workflow]).await?;
                Ok(row.map(|row| row.get(0)))
            }),
        ];
        if let Some(period) = period {
            pipeline.push(Box::pin(async move {
                let row = client.query_opt(&sequence, &[&workflow, &period]).await?;
                Ok(row.map(|row| row.get(0)))
            }));
        }
        let mut answers = in_order(pipeline).await.into_iter();
        let _begun = answers.next().transpose()?;
        let number = answers.next().transpose()?.flatten();
        let sequence = answers.next().transpose()?.flatten();
        Ok::<_, tokio_postgres::Error>((number, sequence))
    }
    .await
    .map_err(|err| failed(connection, err))?;
    let (number, sequence) = locked;
    let number = match number {
        Some(last) => last,
        None => {
            // The first start of this workflow, or a store whose count starts after the
            // highest instance in its log (a copy): counted from the log, read outside this
            // transaction, which is safe because every start of the workflow waits for the
            // count inserted here.
            let counted = super::reads::last_number(connection, workflow).await?;
            let counted = i64::try_from(counted).unwrap_or(i64::MAX);
            one(connection, client, START_NUMBER, &[&workflow, &counted]).await?
        }
    };
    let sequence = match (period, sequence) {
        (Some(_), Some(last)) => Some(last),
        (Some(period), None) => {
            Some(one(connection, client, START_SEQUENCE, &[&workflow, &period]).await?)
        }
        (None, _) => None,
    };
    let count = |last: i64| u64::try_from(last).unwrap_or(0);
    Ok((count(number), sequence.map(count)))
}

/// The one `bigint` that `statement` returns.
async fn one(
    connection: &Connection,
    client: &deadpool_postgres::Object,
    statement: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<i64, StoreError> {
    let row = async {
        let statement = client.prepare_cached(statement).await?;
        client.query_one(&statement, params).await
    }
    .await
    .map_err(|err| failed(connection, err))?;
    Ok(row.get(0))
}

/// Ends the transaction open on `client` without writing anything: rolled back, and the
/// connection back in the pool; or, if even that fails, the connection closed (which ends
/// the transaction on the server) rather than handed to the next caller with it open.
pub(super) async fn abandon(client: deadpool_postgres::Object) {
    if client.batch_execute("ROLLBACK").await.is_err() {
        drop(deadpool_postgres::Object::take(client));
    }
}
