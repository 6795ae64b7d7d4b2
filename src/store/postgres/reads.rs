//! Reads by key and small lists: snapshots, histories, entries, queries, idempotency keys,
//! due timers, schedule marks, definitions, and the instance and readable-number counts.
//! Everything is read from the tables as committed: there is no cache to fall behind.

use super::commit::seq;
use super::connection::Connection;
use crate::machine::{Entry, Instance};
use crate::store::{Query, QueuedTimer, StoreError, StoredDefinition};
use chrono::{DateTime, Utc};

/// Decodes a stored record (JSON), naming it by `key` when it cannot be read.
pub(super) fn decode<T: serde::de::DeserializeOwned>(
    key: &str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::BadRecord {
        key: key.to_string(),
        detail: e.to_string(),
    })
}

/// The stored bytes of one entry.
pub(super) async fn entry_bytes(
    connection: &Connection,
    id: &str,
    seq_no: u64,
) -> Result<Option<Vec<u8>>, StoreError> {
    let client = connection.client().await?;
    let statement = client
        .prepare_cached("SELECT entry FROM sopflow_log WHERE instance = $1 AND seq = $2")
        .await
        .map_err(|e| connection.error(e))?;
    let row = client
        .query_opt(&statement, &[&id, &seq(seq_no)?])
        .await
        .map_err(|e| connection.error(e))?;
    Ok(row.map(|row| row.get(0)))
}

pub(super) async fn entry(
    connection: &Connection,
    id: &str,
    seq_no: u64,
) -> Result<Option<Entry>, StoreError> {
    match entry_bytes(connection, id, seq_no).await? {
        Some(bytes) => Ok(Some(decode(&format!("{id}/{seq_no}"), &bytes)?)),
        None => Ok(None),
    }
}

pub(super) async fn instance(
    connection: &Connection,
    id: &str,
) -> Result<Option<Instance>, StoreError> {
    let row = one(
        connection,
        "SELECT snapshot FROM sopflow_instances WHERE id = $1",
        &[&id],
    )
    .await?;
    match row {
        Some(row) => Ok(Some(decode(id, row.get::<_, &[u8]>(0))?)),
        None => Ok(None),
    }
}

pub(super) async fn history(connection: &Connection, id: &str) -> Result<Vec<Entry>, StoreError> {
    let rows = all(
        connection,
        "SELECT seq, entry FROM sopflow_log WHERE instance = $1 ORDER BY seq",
        &[&id],
    )
    .await?;
    rows.iter()
        .map(|row| {
            decode(
                &format!("{id}/{}", row.get::<_, i64>(0)),
                row.get::<_, &[u8]>(1),
            )
        })
        .collect()
}

pub(super) async fn find(
    connection: &Connection,
    query: &Query,
) -> Result<Vec<Instance>, StoreError> {
    // One statement per shape of query, so that each is planned for its index.
    let mut conditions = Vec::new();
    let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = Vec::new();
    for (column, value) in [
        ("workflow", &query.workflow),
        ("state", &query.state),
        ("business_key", &query.business_key),
    ] {
        if let Some(value) = value {
            params.push(value);
            conditions.push(format!("{column} = ${}", params.len()));
        }
    }
    let limit = query.limit.map(|l| i64::try_from(l).unwrap_or(i64::MAX));
    params.push(&limit);
    let sql = format!(
        "SELECT id, snapshot FROM sopflow_instances {} ORDER BY id LIMIT ${}",
        if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        },
        params.len()
    );
    let rows = all(connection, &sql, &params).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let instance: Instance = decode(row.get(0), row.get::<_, &[u8]>(1))?;
        if query.matches(&instance) {
            out.push(instance);
        }
    }
    Ok(out)
}

pub(super) async fn idempotent(
    connection: &Connection,
    key: &str,
) -> Result<Option<(String, u64)>, StoreError> {
    let row = one(
        connection,
        "SELECT instance, seq FROM sopflow_idempotency_keys WHERE key = $1",
        &[&key],
    )
    .await?;
    Ok(row.map(|row| (row.get(0), count(row.get(1)))))
}

pub(super) async fn due_timers(
    connection: &Connection,
    until: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<QueuedTimer>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = all(
        connection,
        "SELECT due, instance, timer, event FROM sopflow_timers WHERE due <= $1 \
         ORDER BY due, instance, timer LIMIT $2",
        &[&until.timestamp_millis(), &limit],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|row| QueuedTimer {
            due: DateTime::from_timestamp_millis(row.get(0)).unwrap_or(until),
            instance: row.get(1),
            timer: row.get(2),
            event: row.get(3),
        })
        .collect())
}

/// Claims up to `limit` timers due at or before `until` (the engine's clock) whose lease is
/// free or has run out (the database's clock), for `lease` from now, for `node`: rows another
/// node is claiming this moment are skipped, not waited for. A timer waits while an earlier
/// one of its instance is leased: an instance's timers fire in due order on any number of
/// nodes, as on one, even when the node holding the earlier one died before firing it (the
/// later one could otherwise end the instance and cancel the earlier one unfired).
pub(super) async fn claim_due_timers(
    connection: &Connection,
    until: DateTime<Utc>,
    limit: usize,
    lease: std::time::Duration,
    node: &str,
) -> Result<Vec<QueuedTimer>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let lease = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
    let rows = all(
        connection,
        "WITH clock AS (SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS now), \
         due AS (SELECT instance, timer FROM sopflow_timers, clock \
             WHERE due <= $1 AND (lease_until IS NULL OR lease_until < clock.now) \
             AND NOT EXISTS (SELECT 1 FROM sopflow_timers earlier \
                 WHERE earlier.instance = sopflow_timers.instance \
                 AND (earlier.due, earlier.timer) < (sopflow_timers.due, sopflow_timers.timer) \
                 AND earlier.lease_until >= clock.now) \
             ORDER BY due, instance, timer LIMIT $2 FOR UPDATE OF sopflow_timers SKIP LOCKED) \
         UPDATE sopflow_timers t SET lease_until = clock.now + $3, node = $4 \
         FROM due, clock WHERE t.instance = due.instance AND t.timer = due.timer \
         RETURNING t.due, t.instance, t.timer, t.event",
        &[&until.timestamp_millis(), &limit, &lease, &node],
    )
    .await?;
    let mut claimed: Vec<QueuedTimer> = rows
        .iter()
        .map(|row| QueuedTimer {
            due: DateTime::from_timestamp_millis(row.get(0)).unwrap_or(until),
            instance: row.get(1),
            timer: row.get(2),
            event: row.get(3),
        })
        .collect();
    claimed.sort_by(|a, b| (a.due, &a.instance, &a.timer).cmp(&(b.due, &b.instance, &b.timer)));
    Ok(claimed)
}

pub(super) async fn schedule_mark(
    connection: &Connection,
    key: &str,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let row = one(
        connection,
        "SELECT at FROM sopflow_schedule_marks WHERE key = $1",
        &[&key],
    )
    .await?;
    Ok(row.and_then(|row| DateTime::from_timestamp_millis(row.get(0))))
}

pub(super) async fn set_schedule_mark(
    connection: &Connection,
    key: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    execute(
        connection,
        "INSERT INTO sopflow_schedule_marks (key, at) VALUES ($1, $2) \
         ON CONFLICT (key) DO UPDATE SET at = EXCLUDED.at",
        &[&key, &at.timestamp_millis()],
    )
    .await
}

/// Inserts a first mark unless there is one; the mark in force.
pub(super) async fn first_schedule_mark(
    connection: &Connection,
    key: &str,
    at: DateTime<Utc>,
) -> Result<DateTime<Utc>, StoreError> {
    let row = one(
        connection,
        "WITH inserted AS (INSERT INTO sopflow_schedule_marks (key, at) VALUES ($1, $2) \
             ON CONFLICT (key) DO NOTHING RETURNING at) \
         SELECT at FROM inserted UNION ALL SELECT at FROM sopflow_schedule_marks WHERE key = $1",
        &[&key, &at.timestamp_millis()],
    )
    .await?;
    Ok(row
        .and_then(|row| DateTime::from_timestamp_millis(row.get(0)))
        .unwrap_or(at))
}

/// Moves a mark forward only: a compare-and-set, so that of several nodes seeing one
/// occurrence, one moves it.
pub(super) async fn advance_schedule_mark(
    connection: &Connection,
    key: &str,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let row = one(
        connection,
        "INSERT INTO sopflow_schedule_marks (key, at) VALUES ($1, $2) \
         ON CONFLICT (key) DO UPDATE SET at = EXCLUDED.at \
         WHERE sopflow_schedule_marks.at < EXCLUDED.at RETURNING at",
        &[&key, &at.timestamp_millis()],
    )
    .await?;
    Ok(row.is_some())
}

pub(super) async fn save_definition(
    connection: &Connection,
    definition: &StoredDefinition,
) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(definition).map_err(|e| StoreError::Encode {
        key: format!("definition {}", definition.hash),
        detail: e.to_string(),
    })?;
    execute(
        connection,
        "INSERT INTO sopflow_definitions (hash, sources) VALUES ($1, $2) \
         ON CONFLICT (hash) DO NOTHING",
        &[&definition.hash, &bytes],
    )
    .await
}

pub(super) async fn definition(
    connection: &Connection,
    hash: &str,
) -> Result<Option<StoredDefinition>, StoreError> {
    let row = one(
        connection,
        "SELECT sources FROM sopflow_definitions WHERE hash = $1",
        &[&hash],
    )
    .await?;
    match row {
        Some(row) => Ok(Some(decode(hash, row.get::<_, &[u8]>(0))?)),
        None => Ok(None),
    }
}

pub(super) async fn last_number(
    connection: &Connection,
    workflow: &str,
) -> Result<u64, StoreError> {
    let row = one(
        connection,
        "SELECT last FROM sopflow_instance_numbers WHERE workflow = $1",
        &[&workflow],
    )
    .await?;
    if let Some(row) = row {
        return Ok(count(row.get(0)));
    }
    // A store filled by other means than this engine (a copy): the highest `workflow-n` in
    // the log.
    let prefix = format!("{workflow}-");
    let rows = all(
        connection,
        "SELECT DISTINCT instance FROM sopflow_log WHERE starts_with(instance, $1)",
        &[&prefix],
    )
    .await?;
    Ok(rows
        .iter()
        .filter_map(|row| {
            let id: &str = row.get(0);
            let digits = &id[prefix.len()..];
            digits
                .bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| digits.parse::<u64>().ok())
                .flatten()
        })
        .max()
        .unwrap_or(0))
}

pub(super) async fn set_last_number(
    connection: &Connection,
    workflow: &str,
    number: u64,
) -> Result<(), StoreError> {
    execute(
        connection,
        "INSERT INTO sopflow_instance_numbers (workflow, last) VALUES ($1, $2) \
         ON CONFLICT (workflow) DO UPDATE SET last = EXCLUDED.last",
        &[&workflow, &seq(number)?],
    )
    .await
}

pub(super) async fn last_sequence(
    connection: &Connection,
    workflow: &str,
    period: &str,
) -> Result<u64, StoreError> {
    let row = one(
        connection,
        "SELECT last FROM sopflow_readable_sequences WHERE workflow = $1 AND period = $2",
        &[&workflow, &period],
    )
    .await?;
    Ok(row.map_or(0, |row| count(row.get(0))))
}

pub(super) async fn set_last_sequence(
    connection: &Connection,
    workflow: &str,
    period: &str,
    value: u64,
) -> Result<(), StoreError> {
    execute(
        connection,
        "INSERT INTO sopflow_readable_sequences (workflow, period, last) VALUES ($1, $2, $3) \
         ON CONFLICT (workflow, period) DO UPDATE SET last = EXCLUDED.last",
        &[&workflow, &period, &seq(value)?],
    )
    .await
}

pub(super) async fn find_number(
    connection: &Connection,
    number: &str,
) -> Result<Vec<String>, StoreError> {
    let rows = all(
        connection,
        "SELECT id FROM sopflow_instances WHERE number = $1 ORDER BY id",
        &[&number],
    )
    .await?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

/// A stored count or sequence number (never negative: written from a `u64`).
pub(super) fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

type Params<'a> = [&'a (dyn tokio_postgres::types::ToSql + Sync)];

/// Runs one query (prepared once per connection); its row, if any.
pub(super) async fn one(
    connection: &Connection,
    sql: &str,
    params: &Params<'_>,
) -> Result<Option<tokio_postgres::Row>, StoreError> {
    let client = connection.client().await?;
    let statement = client
        .prepare_cached(sql)
        .await
        .map_err(|e| connection.error(e))?;
    client
        .query_opt(&statement, params)
        .await
        .map_err(|e| connection.error(e))
}

pub(super) async fn all(
    connection: &Connection,
    sql: &str,
    params: &Params<'_>,
) -> Result<Vec<tokio_postgres::Row>, StoreError> {
    let client = connection.client().await?;
    let statement = client
        .prepare_cached(sql)
        .await
        .map_err(|e| connection.error(e))?;
    client
        .query(&statement, params)
        .await
        .map_err(|e| connection.error(e))
}

async fn execute(
    connection: &Connection,
    sql: &str,
    params: &Params<'_>,
) -> Result<(), StoreError> {
    affected(connection, sql, params).await.map(|_| ())
}

/// Runs one statement (prepared once per connection); the number of rows it changed.
pub(super) async fn affected(
    connection: &Connection,
    sql: &str,
    params: &Params<'_>,
) -> Result<u64, StoreError> {
    let client = connection.client().await?;
    let statement = client
        .prepare_cached(sql)
        .await
        .map_err(|e| connection.error(e))?;
    client
        .execute(&statement, params)
        .await
        .map_err(|e| connection.error(e))
}
