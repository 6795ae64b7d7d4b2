//! The write path: one transaction per batch, whose COMMIT is the durability point.
//!
//! A batch's entries go into `sopflow_log`, their outbox records into `sopflow_outbox`, its
//! idempotency keys into their table, and the last
//! snapshot of each instance in it (with its index columns) and that snapshot's timers replace
//! what was stored, all in one statement whatever the batch's size (arrays unnested
//! server-side, the tables written by the parts of one `WITH`). Without a start's numbers to
//! claim, that statement is the whole transaction (the server commits it before it answers);
//! with them, the claims, the statement and `COMMIT` are sent in one pipeline. Either way a
//! batch costs one round trip. `synchronous_commit` is left as the server has it (on by
//! default): when the commit is answered, the batch is on disk, and a batch is either all
//! there or not at all, so nothing is ever rebuilt on open.
//!
//! One statement rather than `BEGIN`, a statement per table and `COMMIT`, each waiting for
//! the one before: `examples/store_load.rs` counts 2.13 transactions and 2.61 statements per
//! step at one client (the other transaction reads the instance; the engine resolves an id it
//! has seen without reading it again), where statement by statement it counted 3 and 7.27.
//!
//! Several processes (nodes) may commit to one database at once; the database, not a lock of
//! ours, decides between them, and a batch that loses writes nothing (its transaction is
//! rolled back):
//!
//! - two entries for one (instance, seq) are refused by the log's primary key (or the
//!   outbox's, which has the same): the batch fails with [`StoreError::Conflict`] naming the
//!   step. Every step's seq is its snapshot's plus one, so a step computed on a snapshot that
//!   another node has moved on always meets that node's entry for the same seq;
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
use std::future::Future;
use std::task::Poll;
use tokio_postgres::error::SqlState;

/// A batch's rows in one statement (so, without a claim of numbers, in one implicit
/// transaction, committed before the server answers): the log's entries, the idempotency keys,
/// the timers of the instances written (those their snapshots no longer hold deleted, the
/// others inserted or updated, their leases cleared) and the snapshots. Its parts touch
/// disjoint rows, as one statement's parts must.
const WRITE: &str = "WITH log AS (\
         INSERT INTO sopflow_log (instance, seq, entry) \
         SELECT * FROM unnest($1::text[], $2::bigint[], $3::bytea[])), \
     keys AS (\
         INSERT INTO sopflow_idempotency_keys (key, instance, seq) \
         SELECT * FROM unnest($11::text[], $12::text[], $13::bigint[])), \
     gone AS (\
         DELETE FROM sopflow_timers t WHERE t.instance = ANY($4::text[]) AND NOT EXISTS (\
             SELECT 1 FROM unnest($14::text[], $15::text[]) AS kept (instance, timer) \
             WHERE kept.instance = t.instance AND kept.timer = t.timer)), \
     armed AS (\
         INSERT INTO sopflow_timers (instance, timer, due, event) \
         SELECT * FROM unnest($14::text[], $15::text[], $16::bigint[], $17::text[]) \
         ON CONFLICT (instance, timer) DO UPDATE SET due = EXCLUDED.due, \
             event = EXCLUDED.event, lease_until = NULL, node = NULL), \
     outbox AS (\
         INSERT INTO sopflow_outbox (instance, seq, notices) \
         SELECT * FROM unnest($18::text[], $19::bigint[], $20::bytea[])) \
     INSERT INTO sopflow_instances \
     (id, workflow, state, business_key, number, seq, snapshot) \
     SELECT * FROM unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::text[], \
         $9::bigint[], $10::bytea[]) \
     ON CONFLICT (id) DO UPDATE SET workflow = EXCLUDED.workflow, state = EXCLUDED.state, \
         business_key = EXCLUDED.business_key, number = EXCLUDED.number, seq = EXCLUDED.seq, \
         snapshot = EXCLUDED.snapshot \
     WHERE sopflow_instances.seq < EXCLUDED.seq";

/// Takes instance number `$2` of workflow `$1` if the last one given is `$2 - 1`, or, when
/// none is recorded, if it is the first or instance `$2 - 1` is in the log (a new workflow; a
/// store filled by other means, whose count starts after its highest instance); and otherwise
/// fails, aborting its transaction, with [`NOT_TAKEN`]: so that it can be sent in one pipeline
/// with the rows it guards and the `COMMIT`, which then rolls back. A number whose predecessor
/// is not committed never starts a count: a start that reached the database before the first
/// one of its workflow (from another lane, or the direct path) would otherwise take `2` and
/// leave `1` untaken for ever (`tests/nodes.rs` caught that once).
const TAKE_NUMBER: &str = "WITH moved AS (\
         UPDATE sopflow_instance_numbers SET last = $2::bigint \
         WHERE workflow = $1::text AND last = $2::bigint - 1 RETURNING 1), \
     started AS (\
         INSERT INTO sopflow_instance_numbers (workflow, last) SELECT $1::text, $2::bigint \
         WHERE $2::bigint = 1 OR EXISTS (SELECT 1 FROM sopflow_log \
             WHERE instance = $1::text || '-' || ($2::bigint - 1)::text AND seq = 0) \
         ON CONFLICT (workflow) DO NOTHING RETURNING 1) \
     SELECT 1 / ((SELECT count(*) FROM moved) + (SELECT count(*) FROM started))::int";

/// Takes `{seq}` `$3` of workflow `$1`'s readable numbers in period `$2`, likewise (a period's
/// count starts at 1).
const TAKE_SEQUENCE: &str = "WITH moved AS (\
         UPDATE sopflow_readable_sequences SET last = $3::bigint \
         WHERE workflow = $1::text AND period = $2::text AND last = $3::bigint - 1 RETURNING 1), \
     started AS (\
         INSERT INTO sopflow_readable_sequences (workflow, period, last) \
         SELECT $1::text, $2::text, $3::bigint WHERE $3::bigint = 1 \
         ON CONFLICT (workflow, period) DO NOTHING RETURNING 1) \
     SELECT 1 / ((SELECT count(*) FROM moved) + (SELECT count(*) FROM started))::int";

/// How [`TAKE_NUMBER`] and [`TAKE_SEQUENCE`] fail when the count is not one below the claim:
/// a division by the zero rows they changed.
const NOT_TAKEN: SqlState = SqlState::DIVISION_BY_ZERO;

/// Writes `batch` in one transaction and commits it: without numbers to claim, one statement
/// ([`WRITE`]) that is its own transaction, so one round trip; with them, `BEGIN`, each
/// compare-and-set, [`WRITE`] and `COMMIT` pipelined (sent together, answered together: if a
/// claim is not taken or the rows are refused, the transaction is aborted and `COMMIT` rolls
/// it back), one round trip too.
pub(super) async fn commit(connection: &Connection, batch: &[Committed]) -> Result<(), StoreError> {
    if batch.is_empty() {
        return Ok(());
    }
    let client = connection.client().await?;
    write(connection, client, batch, false).await
}

/// Writes `batch` on `client` and commits it, as [`commit`] does; `begun`: a transaction is
/// open on the client already (`numbered`, which holds the counts the batch claims), so the
/// claims, the rows and `COMMIT` go in one pipeline without `BEGIN`. The transaction ends
/// either way: `COMMIT` after a failed statement rolls it back.
pub(super) async fn write(
    connection: &Connection,
    client: deadpool_postgres::Object,
    batch: &[Committed],
    begun: bool,
) -> Result<(), StoreError> {
    let rows = match Rows::of(batch) {
        Ok(rows) => rows,
        Err(err) => {
            if begun {
                super::numbered::abandon(client).await;
            }
            return Err(err);
        }
    };
    let written = async {
        let write = client.prepare_cached(WRITE).await?;
        let params: [&Param; 20] = [
            &rows.log_instance,
            &rows.log_seq,
            &rows.log_entry,
            &rows.id,
            &rows.workflow,
            &rows.state,
            &rows.business_key,
            &rows.number,
            &rows.seq,
            &rows.snapshot,
            &rows.key,
            &rows.key_instance,
            &rows.key_seq,
            &rows.timer_instance,
            &rows.timer,
            &rows.timer_due,
            &rows.timer_event,
            &rows.outbox_instance,
            &rows.outbox_seq,
            &rows.outbox_notices,
        ];
        if rows.numbers.is_empty() && !begun {
            // One statement, its own transaction: durable when the server answers.
            return client.execute(&write, &params).await.map(|_| Ok(()));
        }
        let take_number = client.prepare_cached(TAKE_NUMBER).await?;
        let take_sequence = client.prepare_cached(TAKE_SEQUENCE).await?;
        // BEGIN, each claim (its instance number, then its `{seq}`), the rows and COMMIT, in
        // one round trip. A claim not taken, or rows refused, abort the transaction, and the
        // COMMIT at the end rolls it back.
        let claims: Vec<_> = rows
            .numbers
            .iter()
            .map(|claim| (claim, claim.number_params(), claim.sequence_params()))
            .collect();
        let mut pipeline: Vec<Pending<'_>> = Vec::new();
        let mut claimants = Vec::new();
        if !begun {
            pipeline.push(Box::pin(async {
                client.batch_execute("BEGIN").await.map(|()| 0)
            }));
            claimants.push(None);
        }
        for (claim, number, sequence) in &claims {
            pipeline.push(Box::pin(client.execute(&take_number, number)));
            claimants.push(Some(*claim));
            if let Some(sequence) = sequence {
                pipeline.push(Box::pin(client.execute(&take_sequence, sequence)));
                claimants.push(Some(*claim));
            }
        }
        pipeline.push(Box::pin(client.execute(&write, &params)));
        pipeline.push(Box::pin(async {
            client.batch_execute("COMMIT").await.map(|()| 0)
        }));
        let failed = in_order(pipeline)
            .await
            .into_iter()
            .zip(claimants.into_iter().chain(std::iter::repeat(None)))
            .find_map(|(result, claim)| result.err().map(|err| (err, claim)));
        match failed {
            None => Ok(Ok(())),
            Some((err, Some(claim))) if err.code() == Some(&NOT_TAKEN) => {
                Ok(Err(StoreError::Conflict {
                    instance: claim.instance.clone(),
                    seq: 0,
                }))
            }
            Some((err, _)) => Err(err),
        }
    }
    .await;
    if matches!(written, Ok(Ok(()))) {
        return Ok(());
    }
    // A failed pipeline's `COMMIT` rolled the transaction back, unless the failure came before
    // it was sent: on a transaction opened before (`begun`), make sure it is over.
    if begun {
        super::numbered::abandon(client).await;
    } else {
        drop(client);
    }
    match written {
        Ok(result) => result,
        Err(err) if is_unique_violation(&err) => Err(conflict(connection, batch, &err).await),
        Err(err) => Err(failed(connection, err)),
    }
}

/// A statement's failure as a store error: a deadlock or serialization failure, which the
/// server ended by rolling one transaction back, is [`StoreError::Contended`] (a lost race,
/// computed again); anything else as [`Connection::error`] maps it.
pub(super) fn failed(connection: &Connection, err: tokio_postgres::Error) -> StoreError {
    if err.code() == Some(&SqlState::T_R_DEADLOCK_DETECTED)
        || err.code() == Some(&SqlState::T_R_SERIALIZATION_FAILURE)
    {
        StoreError::Contended {
            store: connection.shown.clone(),
            detail: err
                .as_db_error()
                .map(|db| db.message().to_string())
                .unwrap_or_else(|| err.to_string()),
        }
    } else {
        connection.error(err)
    }
}

/// A statement's parameter.
pub(super) type Param = dyn tokio_postgres::types::ToSql + Sync;

/// A statement sent and its answer still to come.
pub(super) type Pending<'a, T = u64> =
    std::pin::Pin<Box<dyn Future<Output = Result<T, tokio_postgres::Error>> + Send + 'a>>;

/// Awaits every statement of `pipeline`, the first poll of each in order (which is when
/// tokio-postgres sends it), so that the server receives them in order, each without waiting
/// for the answer to the one before; their answers in the same order.
pub(super) async fn in_order<T>(
    mut pipeline: Vec<Pending<'_, T>>,
) -> Vec<Result<T, tokio_postgres::Error>> {
    let mut answers: Vec<Option<Result<T, tokio_postgres::Error>>> =
        pipeline.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut waiting = false;
        for (statement, answer) in pipeline.iter_mut().zip(answers.iter_mut()) {
            if answer.is_none() {
                match statement.as_mut().poll(cx) {
                    Poll::Ready(result) => *answer = Some(result),
                    Poll::Pending => waiting = true,
                }
            }
        }
        if waiting {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    answers.into_iter().flatten().collect()
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
    // The outbox is keyed by (instance, seq) like the log, and the statement's parts run in no
    // set order: either may be the one that meets the other node's step first.
    let step_taken =
        constraint.starts_with("sopflow_log") || constraint.starts_with("sopflow_outbox");
    if step_taken {
        for step in batch {
            let taken = crate::store::postgres::reads::entry_bytes(
                connection,
                &step.entry.instance,
                step.entry.seq,
            )
            .await;
            if matches!(taken, Ok(Some(_))) {
                return StoreError::Conflict {
                    instance: step.entry.instance.to_string(),
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
        Some(step) if step_taken => StoreError::Conflict {
            instance: step.entry.instance.to_string(),
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

impl Claim {
    /// [`TAKE_NUMBER`]'s parameters.
    fn number_params(&self) -> [&Param; 2] {
        [&self.workflow, &self.n]
    }

    /// [`TAKE_SEQUENCE`]'s parameters, when the start has a readable number.
    fn sequence_params(&self) -> Option<[&Param; 3]> {
        let (period, seq) = self.sequence.as_ref()?;
        Some([&self.workflow, period, seq])
    }
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
    outbox_instance: Vec<String>,
    outbox_seq: Vec<i64>,
    outbox_notices: Vec<Vec<u8>>,
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
            rows.log_instance.push(entry.instance.to_string());
            rows.log_seq.push(seq(entry.seq)?);
            rows.log_entry.push(step.encoded.clone());
            if let Some(key) = &entry.idempotency_key {
                keys.insert(key, (&entry.instance, seq(entry.seq)?));
            }
            if let Some(notices) = &step.outbox {
                rows.outbox_instance.push(entry.instance.to_string());
                rows.outbox_seq.push(seq(entry.seq)?);
                rows.outbox_notices.push(notices.clone());
            }
            if let Some(claim) = &step.numbers {
                rows.numbers.push(Claim {
                    instance: entry.instance.to_string(),
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
            rows.id.push(snapshot.id.to_string());
            rows.workflow.push(snapshot.workflow.to_string());
            rows.state.push(snapshot.state.to_string());
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
                rows.timer_instance.push(snapshot.id.to_string());
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
