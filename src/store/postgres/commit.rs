//! The write path: one transaction per batch, whose COMMIT is the durability point.
//!
//! A batch's entries go into `sopflow_log`, its idempotency keys into their table, and the last
//! snapshot of each instance in it (with its index columns) and that snapshot's timers replace
//! what was stored, all in one transaction, with a constant number of statements whatever
//! the batch's size (arrays unnested server-side). `synchronous_commit` is left as the server
//! has it (on by default): when COMMIT returns, the batch is on disk, and a batch is either
//! all there or not at all, so nothing is ever rebuilt on open.
//!
//! Two entries for one (instance, seq) are refused by the log's primary key: the whole batch
//! is rolled back and fails with [`StoreError::Conflict`], having written nothing.

use super::connection::{Connection, is_unique_violation};
use crate::store::{Committed, StoreError};
use std::collections::HashMap;

const INSERT_LOG: &str = "INSERT INTO sopflow_log (instance, seq, entry) \
     SELECT * FROM unnest($1::text[], $2::bigint[], $3::bytea[])";

const INSERT_KEYS: &str = "INSERT INTO sopflow_idempotency_keys (key, instance, seq) \
     SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])";

const UPSERT_SNAPSHOTS: &str = "INSERT INTO sopflow_instances \
     (id, workflow, state, business_key, number, seq, snapshot) \
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
         $6::bigint[], $7::bytea[]) \
     ON CONFLICT (id) DO UPDATE SET workflow = EXCLUDED.workflow, state = EXCLUDED.state, \
         business_key = EXCLUDED.business_key, number = EXCLUDED.number, seq = EXCLUDED.seq, \
         snapshot = EXCLUDED.snapshot";

const DELETE_TIMERS: &str = "DELETE FROM sopflow_timers WHERE instance = ANY($1::text[])";

const INSERT_TIMERS: &str = "INSERT INTO sopflow_timers (instance, timer, due, event) \
     SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[])";

/// Writes `batch` in one transaction and commits it.
pub(super) async fn commit(connection: &Connection, batch: &[Committed]) -> Result<(), StoreError> {
    if batch.is_empty() {
        return Ok(());
    }
    let rows = Rows::of(batch)?;
    let mut client = connection.client().await?;
    let written = async {
        let tx = client.transaction().await?;
        let insert_log = tx.prepare_cached(INSERT_LOG).await?;
        tx.execute(
            &insert_log,
            &[&rows.log_instance, &rows.log_seq, &rows.log_entry],
        )
        .await?;
        if !rows.key.is_empty() {
            let insert_keys = tx.prepare_cached(INSERT_KEYS).await?;
            tx.execute(
                &insert_keys,
                &[&rows.key, &rows.key_instance, &rows.key_seq],
            )
            .await?;
        }
        let upsert = tx.prepare_cached(UPSERT_SNAPSHOTS).await?;
        tx.execute(
            &upsert,
            &[
                &rows.id,
                &rows.workflow,
                &rows.state,
                &rows.business_key,
                &rows.number,
                &rows.seq,
                &rows.snapshot,
            ],
        )
        .await?;
        let delete_timers = tx.prepare_cached(DELETE_TIMERS).await?;
        tx.execute(&delete_timers, &[&rows.id]).await?;
        if !rows.timer.is_empty() {
            let insert_timers = tx.prepare_cached(INSERT_TIMERS).await?;
            tx.execute(
                &insert_timers,
                &[
                    &rows.timer_instance,
                    &rows.timer,
                    &rows.timer_due,
                    &rows.timer_event,
                ],
            )
            .await?;
        }
        tx.commit().await
    }
    .await;
    match written {
        Ok(()) => Ok(()),
        Err(err) if is_unique_violation(&err) => {
            drop(client);
            Err(conflict(connection, batch, &err).await)
        }
        Err(err) => Err(connection.error(err)),
    }
}

/// The error of a batch refused for a duplicate key: the first step whose (instance, seq) is
/// already in the log, or the idempotency key already used.
async fn conflict(
    connection: &Connection,
    batch: &[Committed],
    err: &tokio_postgres::Error,
) -> StoreError {
    let constraint = err
        .as_db_error()
        .and_then(|db| db.constraint())
        .unwrap_or_default()
        .to_string();
    if constraint.starts_with("sopflow_log") {
        for step in batch {
            let taken = crate::store::postgres::reads::entry_bytes(
                connection,
                &step.entry.instance,
                step.entry.seq,
            )
            .await;
            if matches!(taken, Ok(Some(_))) {
                return StoreError::Conflict {
                    instance: step.entry.instance.clone(),
                    seq: step.entry.seq,
                };
            }
        }
    }
    let detail = err
        .as_db_error()
        .map(|db| format!("{} ({})", db.message(), db.detail().unwrap_or_default()))
        .unwrap_or_else(|| err.to_string());
    match batch.first() {
        Some(step) if constraint.starts_with("sopflow_log") => StoreError::Conflict {
            instance: step.entry.instance.clone(),
            seq: step.entry.seq,
        },
        _ => StoreError::Io(format!(
            "PostgreSQL at {} refused a duplicate record, and the batch wrote nothing: {detail}; \
             retry the command",
            connection.shown
        )),
    }
}

/// A batch as columns, for `unnest`.
#[derive(Default)]
struct Rows {
    log_instance: Vec<String>,
    log_seq: Vec<i64>,
    log_entry: Vec<Vec<u8>>,
    key: Vec<String>,
    key_instance: Vec<String>,
    key_seq: Vec<i64>,
    id: Vec<String>,
    workflow: Vec<String>,
    state: Vec<String>,
    business_key: Vec<Option<String>>,
    number: Vec<Option<String>>,
    seq: Vec<i64>,
    snapshot: Vec<Vec<u8>>,
    timer_instance: Vec<String>,
    timer: Vec<String>,
    timer_due: Vec<i64>,
    timer_event: Vec<String>,
}

impl Rows {
    fn of(batch: &[Committed]) -> Result<Rows, StoreError> {
        let mut rows = Rows::default();
        // The last snapshot of each instance in the batch is the one to keep.
        let mut last: HashMap<&str, usize> = HashMap::new();
        for (at, step) in batch.iter().enumerate() {
            let entry = &step.entry;
            rows.log_instance.push(entry.instance.clone());
            rows.log_seq.push(seq(entry.seq)?);
            rows.log_entry.push(step.encoded.clone());
            if let Some(key) = &entry.idempotency_key {
                rows.key.push(key.clone());
                rows.key_instance.push(entry.instance.clone());
                rows.key_seq.push(seq(entry.seq)?);
            }
            last.insert(step.snapshot.id.as_str(), at);
        }
        let mut kept: Vec<usize> = last.into_values().collect();
        kept.sort_unstable();
        for at in kept {
            let snapshot = &batch[at].snapshot;
            rows.id.push(snapshot.id.clone());
            rows.workflow.push(snapshot.workflow.clone());
            rows.state.push(snapshot.state.clone());
            rows.business_key.push(snapshot.business_key.clone());
            rows.number.push(snapshot.number.clone());
            rows.seq.push(seq(snapshot.seq)?);
            rows.snapshot
                .push(serde_json::to_vec(snapshot).map_err(|e| StoreError::Encode {
                    key: format!("snapshot {}", snapshot.id),
                    detail: e.to_string(),
                })?);
            for timer in &snapshot.timers {
                rows.timer_instance.push(snapshot.id.clone());
                rows.timer.push(timer.id.clone());
                rows.timer_due.push(timer.due.timestamp_millis());
                rows.timer_event.push(timer.event.clone());
            }
        }
        Ok(rows)
    }
}

/// A sequence number as PostgreSQL's `bigint`.
pub(super) fn seq(seq: u64) -> Result<i64, StoreError> {
    i64::try_from(seq).map_err(|_| StoreError::Io(format!("sequence number {seq} is too large")))
}
