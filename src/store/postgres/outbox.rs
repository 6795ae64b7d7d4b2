//! The outbox in PostgreSQL ([`crate::store::outbox`]; tables in `migrations/V4__outbox.sql`).
//!
//! A step's outbox row is inserted by the statement that commits its entry (`commit.rs`), so
//! the two are one transaction. Routing is one transaction too: it locks the feed's head row
//! first, so that routers on several nodes take turns, positions are given without gaps, and a
//! reader sees them become visible in order; then it takes the committed outbox rows (only
//! those: a transaction sees no other's uncommitted rows), in (instance, seq) order. Deliveries
//! are claimed like timers: the first of each (channel, instance), due, its lease free or run
//! out on the database's clock, for a lease; `FOR UPDATE SKIP LOCKED`, so two nodes never
//! claim one message, and a head still leased holds its instance's later messages back.

use super::PgStore;
use super::commit::seq;
use super::connection::Connection;
use super::reads::{affected, all, decode, one};
use crate::machine::Entry;
use crate::store::StoreError;
use crate::store::outbox::{
    Delivery, DeliveryKey, FeedItem, InboxItem, OutboxCounts, PendingStep, Routed,
};
use chrono::{DateTime, Utc};

fn encode(delivery: &Delivery) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(delivery).map_err(|e| StoreError::Encode {
        key: delivery.key.to_string(),
        detail: e.to_string(),
    })
}

fn n(key: &DeliveryKey) -> i64 {
    i64::from(key.n)
}

/// A delivery's columns: channel, instance, seq, n.
fn columns(key: &DeliveryKey) -> Result<(String, String, i64, i64), StoreError> {
    Ok((
        key.channel.clone(),
        key.instance.clone(),
        seq(key.seq)?,
        n(key),
    ))
}

/// Routed messages as columns, for `unnest`.
#[derive(Default)]
struct DeliveryRows {
    channel: Vec<String>,
    instance: Vec<String>,
    seq: Vec<i64>,
    n: Vec<i64>,
    record: Vec<Vec<u8>>,
}

/// Routed inbox items as columns, for `unnest`.
#[derive(Default)]
struct InboxRows {
    recipient: Vec<String>,
    key: Vec<String>,
    at: Vec<i64>,
    notice: Vec<Vec<u8>>,
}

async fn route(
    connection: &Connection,
    limit: usize,
    at: DateTime<Utc>,
    route: &(dyn Fn(&PendingStep, &Entry) -> Routed + Sync),
) -> Result<usize, StoreError> {
    let error = |e| connection.error(e);
    let mut client = connection.client().await?;
    let transaction = client.transaction().await.map_err(error)?;
    let head: i64 = transaction
        .query_one(
            "SELECT last FROM sopflow_feed_head WHERE one FOR UPDATE",
            &[],
        )
        .await
        .map_err(error)?
        .get(0);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = transaction
        .query(
            "SELECT o.instance, o.seq, o.notices, l.entry FROM sopflow_outbox o \
             LEFT JOIN sopflow_log l ON l.instance = o.instance AND l.seq = o.seq \
             ORDER BY o.instance, o.seq LIMIT $1 FOR UPDATE OF o SKIP LOCKED",
            &[&limit],
        )
        .await
        .map_err(error)?;
    if rows.is_empty() {
        return Ok(0);
    }
    let millis = at.timestamp_millis();
    let mut position = head;
    let (mut gone_instance, mut gone_seq) = (Vec::new(), Vec::new());
    let (mut feed_position, mut feed_instance, mut feed_seq) = (Vec::new(), Vec::new(), Vec::new());
    let mut deliveries = DeliveryRows::default();
    let mut inbox = InboxRows::default();
    for row in &rows {
        let instance: String = row.get(0);
        let step_seq: i64 = row.get(1);
        gone_instance.push(instance.clone());
        gone_seq.push(step_seq);
        let Some(bytes) = row.get::<_, Option<Vec<u8>>>(3) else {
            continue;
        };
        // An entry that cannot be read is for `sopflow audit verify` to report; its step
        // tells nobody rather than stopping every later one.
        let Ok(entry) = serde_json::from_slice::<Entry>(&bytes) else {
            continue;
        };
        let step = PendingStep {
            instance: instance.clone(),
            seq: u64::try_from(step_seq).unwrap_or(0),
            notices: row.get(2),
        };
        let made = route(&step, &entry);
        position += 1;
        feed_position.push(position);
        feed_instance.push(instance.clone());
        feed_seq.push(step_seq);
        for delivery in made.deliveries {
            let record = Delivery {
                key: DeliveryKey {
                    channel: delivery.channel,
                    instance: instance.clone(),
                    seq: step.seq,
                    n: delivery.n,
                },
                payload: delivery.payload,
                attempts: 0,
                next_at: at,
                last_error: None,
                queued_at: at,
            };
            deliveries.record.push(encode(&record)?);
            deliveries.channel.push(record.key.channel);
            deliveries.instance.push(instance.clone());
            deliveries.seq.push(step_seq);
            deliveries.n.push(i64::from(record.key.n));
        }
        for item in made.inbox {
            inbox.recipient.push(item.recipient);
            inbox.key.push(item.key);
            inbox.at.push(item.at.timestamp_millis());
            inbox.notice.push(item.notice);
        }
    }
    transaction
        .execute(
            "WITH feed AS (\
                 INSERT INTO sopflow_feed (position, instance, seq) \
                 SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[])), \
             deliveries AS (\
                 INSERT INTO sopflow_deliveries (channel, instance, seq, n, record, next_at) \
                 SELECT c, i, s, n, r, $13::bigint \
                 FROM unnest($4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::bytea[]) \
                     AS d (c, i, s, n, r) \
                 ON CONFLICT DO NOTHING), \
             inbox AS (\
                 INSERT INTO sopflow_inbox (recipient, key, at, notice) \
                 SELECT * FROM unnest($9::text[], $10::text[], $11::bigint[], $12::bytea[]) \
                 ON CONFLICT DO NOTHING), \
             gone AS (\
                 DELETE FROM sopflow_outbox o USING unnest($14::text[], $15::bigint[]) AS g (i, s) \
                 WHERE o.instance = g.i AND o.seq = g.s) \
             UPDATE sopflow_feed_head SET last = $16 WHERE one",
            &[
                &feed_position,
                &feed_instance,
                &feed_seq,
                &deliveries.channel,
                &deliveries.instance,
                &deliveries.seq,
                &deliveries.n,
                &deliveries.record,
                &inbox.recipient,
                &inbox.key,
                &inbox.at,
                &inbox.notice,
                &millis,
                &gone_instance,
                &gone_seq,
                &position,
            ],
        )
        .await
        .map_err(error)?;
    transaction.commit().await.map_err(error)?;
    Ok(feed_position.len())
}

async fn due(
    connection: &Connection,
    now: DateTime<Utc>,
    limit: usize,
    lease: std::time::Duration,
) -> Result<Vec<Delivery>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let lease = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
    let rows = all(
        connection,
        "WITH clock AS (SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS now), \
         heads AS (SELECT DISTINCT ON (channel, instance) channel, instance, seq, n \
             FROM sopflow_deliveries ORDER BY channel, instance, seq, n), \
         due AS (SELECT d.channel, d.instance, d.seq, d.n FROM sopflow_deliveries d \
             JOIN heads h ON (h.channel, h.instance, h.seq, h.n) = (d.channel, d.instance, d.seq, d.n), \
             clock \
             WHERE d.next_at <= $1 AND (d.lease_until IS NULL OR d.lease_until < clock.now) \
             ORDER BY d.next_at LIMIT $2 FOR UPDATE OF d SKIP LOCKED) \
         UPDATE sopflow_deliveries t SET lease_until = clock.now + $3 FROM due, clock \
         WHERE (t.channel, t.instance, t.seq, t.n) = (due.channel, due.instance, due.seq, due.n) \
         RETURNING t.record",
        &[&now.timestamp_millis(), &limit, &lease],
    )
    .await?;
    rows.iter()
        .map(|row| decode::<Delivery>("delivery", &row.get::<_, Vec<u8>>(0)))
        .collect()
}

async fn done(connection: &Connection, key: &DeliveryKey) -> Result<(), StoreError> {
    let (channel, instance, step, n) = columns(key)?;
    affected(
        connection,
        "DELETE FROM sopflow_deliveries WHERE channel = $1 AND instance = $2 AND seq = $3 AND n = $4",
        &[&channel, &instance, &step, &n],
    )
    .await
    .map(|_| ())
}

async fn failed(
    connection: &Connection,
    key: &DeliveryKey,
    error_text: &str,
    retry_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let (channel, instance, step, n) = columns(key)?;
    let error = |e| connection.error(e);
    let mut client = connection.client().await?;
    let transaction = client.transaction().await.map_err(error)?;
    let Some(row) = transaction
        .query_opt(
            "SELECT record FROM sopflow_deliveries \
             WHERE channel = $1 AND instance = $2 AND seq = $3 AND n = $4 FOR UPDATE",
            &[&channel, &instance, &step, &n],
        )
        .await
        .map_err(error)?
    else {
        return Ok(());
    };
    let mut delivery: Delivery = decode(&key.to_string(), &row.get::<_, Vec<u8>>(0))?;
    delivery.attempts = delivery.attempts.saturating_add(1);
    delivery.last_error = Some(error_text.to_string());
    match retry_at {
        Some(at) => {
            delivery.next_at = at;
            transaction
                .execute(
                    "UPDATE sopflow_deliveries SET record = $5, next_at = $6, lease_until = NULL \
                     WHERE channel = $1 AND instance = $2 AND seq = $3 AND n = $4",
                    &[
                        &channel,
                        &instance,
                        &step,
                        &n,
                        &encode(&delivery)?,
                        &at.timestamp_millis(),
                    ],
                )
                .await
                .map_err(error)?;
        }
        None => {
            delivery.next_at = now;
            transaction
                .execute(
                    "WITH gone AS (DELETE FROM sopflow_deliveries \
                         WHERE channel = $1 AND instance = $2 AND seq = $3 AND n = $4) \
                     INSERT INTO sopflow_dead_letters (channel, instance, seq, n, record) \
                     VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (channel, instance, seq, n) DO UPDATE SET record = EXCLUDED.record",
                    &[&channel, &instance, &step, &n, &encode(&delivery)?],
                )
                .await
                .map_err(error)?;
        }
    }
    transaction.commit().await.map_err(error)
}

async fn dead_letters(connection: &Connection, limit: usize) -> Result<Vec<Delivery>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = all(
        connection,
        "SELECT record FROM sopflow_dead_letters ORDER BY channel, instance, seq, n LIMIT $1",
        &[&limit],
    )
    .await?;
    rows.iter()
        .map(|row| decode::<Delivery>("dead letter", &row.get::<_, Vec<u8>>(0)))
        .collect()
}

async fn revive(
    connection: &Connection,
    key: Option<&DeliveryKey>,
    at: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let error = |e| connection.error(e);
    let mut client = connection.client().await?;
    let transaction = client.transaction().await.map_err(error)?;
    let rows = match key {
        Some(key) => {
            let (channel, instance, step, n) = columns(key)?;
            transaction
                .query(
                    "DELETE FROM sopflow_dead_letters \
                     WHERE channel = $1 AND instance = $2 AND seq = $3 AND n = $4 RETURNING record",
                    &[&channel, &instance, &step, &n],
                )
                .await
        }
        None => {
            transaction
                .query("DELETE FROM sopflow_dead_letters RETURNING record", &[])
                .await
        }
    }
    .map_err(error)?;
    let insert = transaction
        .prepare(
            "INSERT INTO sopflow_deliveries (channel, instance, seq, n, record, next_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .await
        .map_err(error)?;
    for row in &rows {
        let mut delivery: Delivery = decode("dead letter", &row.get::<_, Vec<u8>>(0))?;
        delivery.attempts = 0;
        delivery.next_at = at;
        let (channel, instance, step, n) = columns(&delivery.key)?;
        transaction
            .execute(
                &insert,
                &[
                    &channel,
                    &instance,
                    &step,
                    &n,
                    &encode(&delivery)?,
                    &at.timestamp_millis(),
                ],
            )
            .await
            .map_err(error)?;
    }
    transaction.commit().await.map_err(error)?;
    Ok(rows.len() as u64)
}

async fn feed(
    connection: &Connection,
    after: u64,
    limit: usize,
) -> Result<Vec<FeedItem>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    let rows = all(
        connection,
        "SELECT position, instance, seq FROM sopflow_feed WHERE position > $1 \
         ORDER BY position LIMIT $2",
        &[&after, &limit],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|row| FeedItem {
            position: u64::try_from(row.get::<_, i64>(0)).unwrap_or(0),
            instance: row.get(1),
            seq: u64::try_from(row.get::<_, i64>(2)).unwrap_or(0),
        })
        .collect())
}

async fn inbox(
    connection: &Connection,
    recipients: &[String],
    limit: usize,
) -> Result<Vec<InboxItem>, StoreError> {
    let most = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut found: std::collections::BTreeMap<(std::cmp::Reverse<i64>, String), InboxItem> =
        std::collections::BTreeMap::new();
    for recipient in recipients {
        let rows = all(
            connection,
            "SELECT key, at, notice FROM sopflow_inbox WHERE recipient = $1 \
             ORDER BY at DESC, key LIMIT $2",
            &[recipient, &most],
        )
        .await?;
        for row in rows {
            let key: String = row.get(0);
            let at: i64 = row.get(1);
            found
                .entry((std::cmp::Reverse(at), key.clone()))
                .or_insert_with(|| InboxItem {
                    recipient: recipient.clone(),
                    key,
                    at: DateTime::from_timestamp_millis(at).unwrap_or_default(),
                    notice: row.get(2),
                });
        }
    }
    Ok(found.into_values().take(limit).collect())
}

async fn mark_read(connection: &Connection, user: &str, keys: &[String]) -> Result<(), StoreError> {
    affected(
        connection,
        "INSERT INTO sopflow_inbox_read (user_id, key) SELECT $1, k FROM unnest($2::text[]) AS k \
         ON CONFLICT DO NOTHING",
        &[&user, &keys],
    )
    .await
    .map(|_| ())
}

async fn read_marks(
    connection: &Connection,
    user: &str,
    keys: &[String],
) -> Result<Vec<String>, StoreError> {
    let rows = all(
        connection,
        "SELECT key FROM sopflow_inbox_read WHERE user_id = $1 AND key = ANY($2::text[])",
        &[&user, &keys],
    )
    .await?;
    let read: std::collections::HashSet<String> = rows.iter().map(|row| row.get(0)).collect();
    Ok(keys.iter().filter(|k| read.contains(*k)).cloned().collect())
}

async fn counts(connection: &Connection) -> Result<OutboxCounts, StoreError> {
    let row = one(
        connection,
        "SELECT (SELECT count(*) FROM sopflow_outbox), (SELECT count(*) FROM sopflow_deliveries), \
         (SELECT count(*) FROM sopflow_dead_letters), (SELECT last FROM sopflow_feed_head WHERE one)",
        &[],
    )
    .await?;
    let count = |at: usize| {
        row.as_ref()
            .and_then(|r| r.get::<_, Option<i64>>(at))
            .map_or(0, |v| u64::try_from(v).unwrap_or(0))
    };
    Ok(OutboxCounts {
        unrouted: count(0),
        queued: count(1),
        dead: count(2),
        feed_head: count(3),
    })
}

impl PgStore {
    pub(super) fn route_outbox_records(
        &self,
        limit: usize,
        at: DateTime<Utc>,
        router: &(dyn Fn(&PendingStep, &Entry) -> Routed + Sync),
    ) -> Result<usize, StoreError> {
        self.connection
            .run(route(&self.connection, limit, at, router))
    }

    pub(super) fn due_delivery_records(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        lease: std::time::Duration,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.connection
            .run(due(&self.connection, now, limit, lease))
    }

    pub(super) fn finish_delivery(&self, key: &DeliveryKey) -> Result<(), StoreError> {
        self.connection.run(done(&self.connection, key))
    }

    pub(super) fn fail_delivery(
        &self,
        key: &DeliveryKey,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.connection
            .run(failed(&self.connection, key, error, retry_at, now))
    }

    pub(super) fn dead_letter_records(&self, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        self.connection.run(dead_letters(&self.connection, limit))
    }

    pub(super) fn revive_records(
        &self,
        key: Option<&DeliveryKey>,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.connection.run(revive(&self.connection, key, at))
    }

    pub(super) fn feed_items(&self, after: u64, limit: usize) -> Result<Vec<FeedItem>, StoreError> {
        self.connection.run(feed(&self.connection, after, limit))
    }

    pub(super) fn inbox_items(
        &self,
        recipients: &[String],
        limit: usize,
    ) -> Result<Vec<InboxItem>, StoreError> {
        self.connection
            .run(inbox(&self.connection, recipients, limit))
    }

    pub(super) fn mark_read_records(&self, user: &str, keys: &[String]) -> Result<(), StoreError> {
        self.connection.run(mark_read(&self.connection, user, keys))
    }

    pub(super) fn read_mark_records(
        &self,
        user: &str,
        keys: &[String],
    ) -> Result<Vec<String>, StoreError> {
        self.connection
            .run(read_marks(&self.connection, user, keys))
    }

    pub(super) fn outbox_count_records(&self) -> Result<OutboxCounts, StoreError> {
        self.connection.run(counts(&self.connection))
    }
}
