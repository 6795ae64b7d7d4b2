//! Scans for audits: every log record, snapshot and definition in key order, read through a
//! server-side cursor a page at a time ([`PAGE`] rows per `FETCH`), so that memory does not
//! grow with the store; and the check of the derived records against the snapshots.
//!
//! Each scan runs in a read-only, repeatable-read transaction on a connection of its own, so
//! it sees one consistent state of the store however long it takes, and an audit may hold
//! several scans open at once (the log beside the snapshots) without waiting for the pool.

use super::connection::Connection;
use super::reads::{count, decode};
use crate::machine::{Entry, Instance};
use crate::store::{DefinitionRecord, DerivedProblem, LogRecord, Scan, SnapshotRecord, StoreError};
use std::collections::VecDeque;

/// Rows fetched from a cursor at a time.
const PAGE: i64 = 1000;

/// A cursor over `sql`'s rows, each turned into a `T` by `map`.
pub(super) struct Cursor<'a, T> {
    connection: &'a Connection,
    sql: &'static str,
    map: fn(&tokio_postgres::Row) -> T,
    client: Option<tokio_postgres::Client>,
    page: VecDeque<tokio_postgres::Row>,
    done: bool,
}

impl<'a, T> Cursor<'a, T> {
    pub(super) fn new(
        connection: &'a Connection,
        sql: &'static str,
        map: fn(&tokio_postgres::Row) -> T,
    ) -> Cursor<'a, T> {
        Cursor {
            connection,
            sql,
            map,
            client: None,
            page: VecDeque::new(),
            done: false,
        }
    }

    /// The next page of rows (opening the cursor on the first call); empty at the end.
    fn fetch(&mut self) -> Result<VecDeque<tokio_postgres::Row>, StoreError> {
        let connection = self.connection;
        let sql = self.sql;
        let client = self.client.take();
        let (client, rows) = connection.run(async move {
            let client = match client {
                Some(client) => client,
                None => {
                    let client = connection.dedicated().await?;
                    client
                        .batch_execute(&format!(
                            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; \
                             DECLARE sopflow_scan NO SCROLL CURSOR FOR {sql}"
                        ))
                        .await
                        .map_err(|e| connection.error(e))?;
                    client
                }
            };
            let rows = client
                .query(&format!("FETCH {PAGE} FROM sopflow_scan"), &[])
                .await
                .map_err(|e| connection.error(e))?;
            Ok((client, rows))
        })?;
        if rows.is_empty() {
            // Dropping the client closes its connection, which ends the transaction.
            drop(client);
        } else {
            self.client = Some(client);
        }
        Ok(rows.into())
    }
}

impl<T> Iterator for Cursor<'_, T> {
    type Item = Result<T, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.page.is_empty() && !self.done {
            match self.fetch() {
                Ok(page) => {
                    self.done = page.is_empty();
                    self.page = page;
                }
                Err(err) => {
                    self.done = true;
                    return Some(Err(err));
                }
            }
        }
        self.page.pop_front().map(|row| Ok((self.map)(&row)))
    }
}

pub(super) fn log(connection: &Connection) -> Scan<'_, LogRecord> {
    Box::new(Cursor::new(
        connection,
        "SELECT instance, seq, entry FROM sopflow_log ORDER BY instance, seq",
        |row| LogRecord {
            instance: row.get(0),
            seq: count(row.get(1)),
            entry: serde_json::from_slice::<Entry>(row.get::<_, &[u8]>(2))
                .map_err(|e| e.to_string()),
        },
    ))
}

pub(super) fn snapshots(connection: &Connection) -> Scan<'_, SnapshotRecord> {
    Box::new(Cursor::new(
        connection,
        "SELECT id, snapshot FROM sopflow_instances ORDER BY id",
        |row| SnapshotRecord {
            id: row.get(0),
            instance: serde_json::from_slice::<Instance>(row.get::<_, &[u8]>(1))
                .map_err(|e| e.to_string()),
        },
    ))
}

pub(super) fn definitions(connection: &Connection) -> Scan<'_, DefinitionRecord> {
    Box::new(Cursor::new(
        connection,
        "SELECT hash, sources FROM sopflow_definitions ORDER BY hash",
        |row| DefinitionRecord {
            hash: row.get(0),
            definition: serde_json::from_slice(row.get::<_, &[u8]>(1)).map_err(|e| e.to_string()),
        },
    ))
}

/// A snapshot row with its index columns.
struct Indexed {
    id: String,
    workflow: String,
    state: String,
    business_key: Option<String>,
    number: Option<String>,
    snapshot: Result<Instance, String>,
}

/// A queued timer row.
struct Queued {
    instance: String,
    timer: String,
    due: i64,
    event: String,
}

/// Checks the index columns and the timer queue against the snapshots (walking both in id
/// order side by side), and every idempotency key against the entry it points at.
pub(super) fn check_derived(
    connection: &Connection,
    report: &mut dyn FnMut(DerivedProblem),
) -> Result<(), StoreError> {
    let mut problem = |records: &str, instance: &str, detail: String| {
        report(DerivedProblem {
            records: records.to_string(),
            instance: instance.to_string(),
            detail,
        })
    };
    let snapshots = Cursor::new(
        connection,
        "SELECT id, workflow, state, business_key, number, snapshot FROM sopflow_instances \
         ORDER BY id",
        |row| Indexed {
            id: row.get(0),
            workflow: row.get(1),
            state: row.get(2),
            business_key: row.get(3),
            number: row.get(4),
            snapshot: serde_json::from_slice(row.get::<_, &[u8]>(5)).map_err(|e| e.to_string()),
        },
    );
    let mut timers = Cursor::new(
        connection,
        "SELECT instance, timer, due, event FROM sopflow_timers ORDER BY instance, timer",
        |row| Queued {
            instance: row.get(0),
            timer: row.get(1),
            due: row.get(2),
            event: row.get(3),
        },
    )
    .peekable();
    for row in snapshots {
        let row = row?;
        let id = row.id.as_str();
        // Queued timers of instances that sort before this one have no snapshot.
        let mut queued = Vec::new();
        while let Some(next) = timers.peek() {
            match next {
                Ok(timer) if timer.instance.as_str() < id => {
                    problem(
                        "timer queue",
                        &timer.instance,
                        format!(
                            "timer {} is queued but not pending in the instance",
                            timer.timer
                        ),
                    );
                    timers.next();
                }
                Ok(timer) if timer.instance == id => {
                    if let Some(Ok(timer)) = timers.next() {
                        queued.push(timer);
                    }
                }
                Ok(_) => break,
                Err(_) => {
                    if let Some(Err(err)) = timers.next() {
                        return Err(err);
                    }
                }
            }
        }
        let Ok(snapshot) = &row.snapshot else {
            continue; // reported by the snapshot check
        };
        if row.workflow != snapshot.workflow {
            problem(
                "index by_workflow",
                id,
                format!("`{id}` is missing under workflow `{}`", snapshot.workflow),
            );
        }
        if row.state != snapshot.state || row.workflow != snapshot.workflow {
            problem(
                "index by_state",
                id,
                format!("`{id}` is missing under state `{}`", snapshot.state),
            );
        }
        if row.business_key != snapshot.business_key {
            problem(
                "index by_business_key",
                id,
                match &snapshot.business_key {
                    Some(key) => format!("`{id}` is missing under business key `{key}`"),
                    None => format!(
                        "the record `{}` disagrees with the snapshot (workflow `{}`, state `{}`)",
                        row.business_key.as_deref().unwrap_or_default(),
                        snapshot.workflow,
                        snapshot.state
                    ),
                },
            );
        }
        if row.number != snapshot.number {
            problem(
                "index by_number",
                id,
                match &snapshot.number {
                    Some(number) => format!("`{id}` is missing under number `{number}`"),
                    None => format!(
                        "the record `{}` disagrees with the snapshot (workflow `{}`, state `{}`)",
                        row.number.as_deref().unwrap_or_default(),
                        snapshot.workflow,
                        snapshot.state
                    ),
                },
            );
        }
        for timer in &snapshot.timers {
            let found = queued.iter().any(|q| {
                q.timer == timer.id
                    && q.due == timer.due.timestamp_millis()
                    && q.event == timer.event
            });
            if !found {
                problem(
                    "timer queue",
                    id,
                    format!(
                        "timer {} (`{}`, due {}) is not queued: it would never fire",
                        timer.id,
                        timer.event,
                        timer.due.to_rfc3339()
                    ),
                );
            }
        }
        for q in &queued {
            if !snapshot.timers.iter().any(|t| t.id == q.timer) {
                problem(
                    "timer queue",
                    id,
                    format!(
                        "timer {} is queued but not pending in the instance",
                        q.timer
                    ),
                );
            }
        }
    }
    for timer in timers {
        let timer = timer?;
        problem(
            "timer queue",
            &timer.instance,
            format!(
                "timer {} is queued but not pending in the instance",
                timer.timer
            ),
        );
    }
    // Every idempotency key points at an entry that carries it.
    let keys = Cursor::new(
        connection,
        "SELECT k.key, k.instance, k.seq, l.entry FROM sopflow_idempotency_keys k \
         LEFT JOIN sopflow_log l ON l.instance = k.instance AND l.seq = k.seq ORDER BY k.key",
        |row| {
            let entry: Option<&[u8]> = row.get(3);
            (
                row.get::<_, String>(0),
                row.get::<_, String>(1),
                count(row.get(2)),
                entry.and_then(|bytes| decode::<Entry>("", bytes).ok()),
            )
        },
    );
    for row in keys {
        let (key, id, seq, entry) = row?;
        let carries = entry.is_some_and(|e| e.idempotency_key.as_deref() == Some(key.as_str()));
        if !carries {
            problem(
                "idempotency keys",
                &id,
                format!("key `{key}` points at entry {seq}, which does not carry it"),
            );
        }
    }
    Ok(())
}
