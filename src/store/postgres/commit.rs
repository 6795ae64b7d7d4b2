//! The write path: one transaction per batch, whose COMMIT is the durability point.
//!
//! A batch's entries go into `sopflow_log`, its idempotency keys into their table, and the last
//! snapshot of each instance in it (with its index columns) and that snapshot's timers replace
//! what was stored, all in one transaction, with a constant number of statements whatever
//! the batch's size (arrays unnested server-side). `synchronous_commit` is left as the server
//! has it (on by default): when COMMIT returns, the batch is on disk, and a batch is either
//! all there or not at all, so nothing is ever rebuilt on open.
//!
//! Several processes (nodes) may commit to one database at once; the database, not a lock of
//! ours, decides between them, and a batch that loses writes nothing (its transaction is
//! rolled back):
//!
//! - two entries for one (instance, seq) are refused by the log's primary key: the batch
//!   fails with [`StoreError::Conflict`] naming the step. Every step's seq is its snapshot's
//!   plus one, so a step computed on a snapshot that another node has moved on always meets
//!   that node's entry for the same seq;
//! - a start's numbers ([`Committed::numbers`]) are a compare-and-set in the same transaction:
//!   each count moves to the claimed number only if it is still one below it, else the batch
//!   fails with [`StoreError::Conflict`] for the start's step 0. A number is thus taken only by
//!   the commit of its instance's first entry: no gaps, and none used by a start that fails.
//!   A node hands out numbers ahead of the commits of its earlier starts (`engine::numbering`),
//!   so a batch may carry several starts of one workflow: their claims are checked in number
//!   order, and a claim whose predecessor is neither stored nor earlier in the batch (a start
//!   that reached the database before the one before it) fails the batch like any lost race;
//! - a second use of an idempotency key is refused by the keys' primary key:
//!   [`StoreError::KeyTaken`];
//! - a deadlock between two nodes' transactions, which PostgreSQL breaks by ending one:
//!   [`StoreError::Contended`]. Rows are written in key order (log by instance and seq,
//!   numbers, keys, snapshots by id) so that two batches wait for each other in one order and
//!   such deadlocks are rare;
//! - a snapshot is replaced only by one of a later seq, a guard the log's key already implies.

use super::connection::{Connection, is_unique_violation};
use crate::store::{Committed, StoreError};
use std::collections::{BTreeMap, HashMap};
use tokio_postgres::error::SqlState;

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
         snapshot = EXCLUDED.snapshot \
     WHERE sopflow_instances.seq < EXCLUDED.seq";

/// Takes instance number `$2` of workflow `$1` if the last one given is `$2 - 1` (or none is
/// recorded: a new workflow, or a store filled by other means, whose count starts here).
const TAKE_NUMBER: &str = "INSERT INTO sopflow_instance_numbers (workflow, last) VALUES ($1, $2) \
     ON CONFLICT (workflow) DO UPDATE SET last = EXCLUDED.last \
     WHERE sopflow_instance_numbers.last = EXCLUDED.last - 1";

/// Takes `{seq}` `$3` of workflow `$1`'s readable numbers in period `$2`, likewise.
const TAKE_SEQUENCE: &str = "INSERT INTO sopflow_readable_sequences (workflow, period, last) \
     VALUES ($1, $2, $3) \
     ON CONFLICT (workflow, period) DO UPDATE SET last = EXCLUDED.last \
     WHERE sopflow_readable_sequences.last = EXCLUDED.last - 1";

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
        if !rows.numbers.is_empty() {
            let take_number = tx.prepare_cached(TAKE_NUMBER).await?;
            let take_sequence = tx.prepare_cached(TAKE_SEQUENCE).await?;
            for claim in &rows.numbers {
                let mut taken = tx
                    .execute(&take_number, &[&claim.workflow, &claim.n])
                    .await?
                    == 1;
                if let (true, Some((period, seq))) = (taken, &claim.sequence) {
                    taken = tx
                        .execute(&take_sequence, &[&claim.workflow, period, seq])
                        .await?
                        == 1;
                }
                if !taken {
                    // Dropping the transaction rolls it back.
                    return Ok(Err(StoreError::Conflict {
                        instance: claim.instance.clone(),
                        seq: 0,
                    }));
                }
            }
        }
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
        tx.commit().await.map(Ok)
    }
    .await;
    match written {
        Ok(result) => result,
        Err(err) if is_unique_violation(&err) => {
            drop(client);
            Err(conflict(connection, batch, &err).await)
        }
        Err(err)
            if err.code() == Some(&SqlState::T_R_DEADLOCK_DETECTED)
                || err.code() == Some(&SqlState::T_R_SERIALIZATION_FAILURE) =>
        {
            Err(StoreError::Contended {
                store: connection.shown.clone(),
                detail: err
                    .as_db_error()
                    .map(|db| db.message().to_string())
                    .unwrap_or_else(|| err.to_string()),
            })
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
    if constraint.starts_with("sopflow_idempotency_keys") {
        let keys = batch
            .iter()
            .filter_map(|step| step.entry.idempotency_key.as_ref());
        for key in keys {
            let taken = super::reads::idempotent(connection, key).await;
            if matches!(taken, Ok(Some(_))) {
                return StoreError::KeyTaken { key: key.clone() };
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

/// A start's numbers, as the database's columns.
struct Claim {
    instance: String,
    workflow: String,
    n: i64,
    sequence: Option<(String, i64)>,
}

/// A batch as columns, for `unnest`, each table's rows in key order.
#[derive(Default)]
struct Rows {
    numbers: Vec<Claim>,
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
        let mut order: Vec<usize> = (0..batch.len()).collect();
        order.sort_by(|&a, &b| {
            let (a, b) = (&batch[a].entry, &batch[b].entry);
            (a.instance.as_str(), a.seq).cmp(&(b.instance.as_str(), b.seq))
        });
        let mut keys: BTreeMap<&str, (&str, i64)> = BTreeMap::new();
        for &at in &order {
            let step = &batch[at];
            let entry = &step.entry;
            rows.log_instance.push(entry.instance.clone());
            rows.log_seq.push(seq(entry.seq)?);
            rows.log_entry.push(step.encoded.clone());
            if let Some(key) = &entry.idempotency_key {
                keys.insert(key, (&entry.instance, seq(entry.seq)?));
            }
            if let Some(claim) = &step.numbers {
                rows.numbers.push(Claim {
                    instance: entry.instance.clone(),
                    workflow: claim.workflow.clone(),
                    n: seq(claim.n)?,
                    sequence: match &claim.sequence {
                        Some((period, value)) => Some((period.clone(), seq(*value)?)),
                        None => None,
                    },
                });
            }
        }
        for (at, step) in batch.iter().enumerate() {
            last.insert(step.snapshot.id.as_str(), at);
        }
        rows.numbers
            .sort_by(|a, b| (&a.workflow, a.n).cmp(&(&b.workflow, b.n)));
        for (key, (instance, at)) in keys {
            rows.key.push(key.to_string());
            rows.key_instance.push(instance.to_string());
            rows.key_seq.push(at);
        }
        let mut kept: Vec<(&str, usize)> = last.into_iter().collect();
        kept.sort_unstable();
        for (_, at) in kept {
            let snapshot = &batch[at].snapshot;
            rows.id.push(snapshot.id.clone());
            rows.workflow.push(snapshot.workflow.clone());
            rows.state.push(snapshot.state.clone());
            rows.business_key.push(snapshot.business_key.clone());
            rows.number.push(snapshot.number.clone());
            rows.seq.push(seq(snapshot.seq)?);
            rows.snapshot.push(
                serde_json::to_vec(snapshot).map_err(|e| StoreError::Encode {
                    key: format!("snapshot {}", snapshot.id),
                    detail: e.to_string(),
                })?,
            );
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
