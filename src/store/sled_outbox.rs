//! The outbox in sled ([`crate::store::outbox`]).
//!
//! Trees: `outbox` (log key -> the step's notices, written by `append` just before the step's
//! log entry, so that sled's prefix recovery never keeps an entry without its record), `feed`
//! (position, big-endian -> log key), `deliveries` and `dead` (channel, NUL, log key, n ->
//! [`Delivery`] as JSON: key order is the order a channel receives an instance's messages in),
//! `inbox` (recipient, NUL, newest-first time, notice key -> [`Stored`] notice) and
//! `inbox_read` (user, NUL, notice key).
//!
//! One process holds a sled store, so the router's lock and the claims on deliveries are kept
//! in memory: a router run is one sled transaction, flushed before it returns (a position
//! handed out survives a crash), and a record is routed only once its instance has no entry
//! appended and not yet flushed ([`SledStore::pending`]), so nothing of an unacknowledged step
//! is ever sent. Attempts and dead letters are written without a flush of their own: the next
//! flush carries them, and a crash before it costs one message sent twice, with the same id.

use super::{SledStore, decode, io, log_key, poisoned, split_log_key};
use crate::machine::Entry;
use crate::store::StoreError;
use crate::store::outbox::{
    Delivery, DeliveryKey, FeedItem, InboxItem, OutboxCounts, PendingStep, Routed,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// An inbox item as stored (its recipient and key are in the tree's key).
#[derive(Serialize, Deserialize)]
struct Stored {
    key: String,
    at: DateTime<Utc>,
    notice: serde_json::Value,
}

/// The outbox's in-memory state: the router's turn, and which deliveries are being sent.
#[derive(Default)]
pub(super) struct Outbox {
    router: std::sync::Mutex<()>,
    claims: std::sync::Mutex<HashMap<DeliveryKey, Instant>>,
}

fn delivery_key(key: &DeliveryKey) -> Vec<u8> {
    let mut bytes = key.channel.as_bytes().to_vec();
    bytes.push(0);
    bytes.extend_from_slice(&log_key(&key.instance, key.seq));
    bytes.extend_from_slice(&key.n.to_be_bytes());
    bytes
}

fn inbox_key(recipient: &str, at: DateTime<Utc>, key: &str) -> Vec<u8> {
    let mut bytes = recipient.as_bytes().to_vec();
    bytes.push(0);
    bytes.extend_from_slice(&(i64::MAX - at.timestamp_millis()).to_be_bytes());
    bytes.extend_from_slice(key.as_bytes());
    bytes
}

fn read_key(user: &str, key: &str) -> Vec<u8> {
    let mut bytes = user.as_bytes().to_vec();
    bytes.push(0);
    bytes.extend_from_slice(key.as_bytes());
    bytes
}

fn encode<T: Serialize>(what: &str, value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Encode {
        key: what.to_string(),
        detail: e.to_string(),
    })
}

fn tx_error(err: TransactionError<StoreError>) -> StoreError {
    match err {
        TransactionError::Abort(err) => err,
        TransactionError::Storage(err) => io(err),
    }
}

/// Which (channel, instance) a `deliveries` key belongs to: everything before its log key's
/// seq and n.
fn group(key: &[u8]) -> &[u8] {
    &key[..key.len().saturating_sub(12)]
}

impl SledStore {
    pub(super) fn route_outbox_records(
        &self,
        limit: usize,
        at: DateTime<Utc>,
        route: &(dyn Fn(&PendingStep, &Entry) -> Routed + Sync),
    ) -> Result<usize, StoreError> {
        self.refuse_if_failed()?;
        let _turn = self.outbox_state.router.lock().map_err(|_| poisoned())?;
        let mut records = Vec::new();
        for item in self.outbox.iter() {
            if records.len() >= limit {
                break;
            }
            records.push(item.map_err(io)?);
        }
        // Only steps whose flush has returned: an instance with an entry still unflushed waits
        // (its records come in seq order, so the earlier ones wait with it).
        {
            let pending = self.pending.lock().map_err(|_| poisoned())?;
            records.retain(|(key, _)| {
                split_log_key(key).is_some_and(|(instance, _)| !pending.contains_key(&instance))
            });
        }
        if records.is_empty() {
            return Ok(0);
        }
        let mut head = match self.feed.last().map_err(io)? {
            Some((key, _)) => u64::from_be_bytes(key.as_ref().try_into().unwrap_or([0; 8])),
            None => 0,
        };
        let mut feed = sled::Batch::default();
        let mut deliveries = sled::Batch::default();
        let mut inbox = sled::Batch::default();
        let mut done = sled::Batch::default();
        let mut routed = 0;
        for (key, notices) in &records {
            done.remove(key.clone());
            let Some((instance, seq)) = split_log_key(key) else {
                continue;
            };
            // A record without its entry: the commit that wrote it never finished.
            let Some(bytes) = self.log.get(key).map_err(io)? else {
                continue;
            };
            // An entry that cannot be read is for `sopflow audit verify` to report; its step
            // tells nobody rather than stopping every later one.
            let Ok(entry) = serde_json::from_slice::<Entry>(&bytes) else {
                continue;
            };
            let step = PendingStep {
                instance,
                seq,
                notices: notices.to_vec(),
            };
            let made = route(&step, &entry);
            head += 1;
            routed += 1;
            feed.insert(&head.to_be_bytes(), key.as_ref());
            for delivery in made.deliveries {
                let key = DeliveryKey {
                    channel: delivery.channel,
                    instance: step.instance.clone(),
                    seq,
                    n: delivery.n,
                };
                let record = Delivery {
                    payload: delivery.payload,
                    attempts: 0,
                    next_at: at,
                    last_error: None,
                    queued_at: at,
                    key,
                };
                deliveries.insert(delivery_key(&record.key), encode("delivery", &record)?);
            }
            for item in made.inbox {
                let notice: serde_json::Value =
                    serde_json::from_slice(&item.notice).unwrap_or_default();
                let stored = Stored {
                    key: item.key.clone(),
                    at: item.at,
                    notice,
                };
                inbox.insert(
                    inbox_key(&item.recipient, item.at, &item.key),
                    encode("inbox", &stored)?,
                );
            }
        }
        (&self.outbox, &self.feed, &self.deliveries, &self.inbox)
            .transaction(|(outbox, feed_tree, deliveries_tree, inbox_tree)| {
                outbox.apply_batch(&done)?;
                feed_tree.apply_batch(&feed)?;
                deliveries_tree.apply_batch(&deliveries)?;
                inbox_tree.apply_batch(&inbox)?;
                Ok::<(), ConflictableTransactionError<StoreError>>(())
            })
            .map_err(tx_error)?;
        self.db.flush().map_err(io)?;
        Ok(routed)
    }

    pub(super) fn due_delivery_records(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Delivery>, StoreError> {
        let mut claims = self.outbox_state.claims.lock().map_err(|_| poisoned())?;
        let clock = Instant::now();
        claims.retain(|_, until| *until > clock);
        let mut due = Vec::new();
        let mut last_group: Option<Vec<u8>> = None;
        for item in self.deliveries.iter() {
            if due.len() >= limit {
                break;
            }
            let (key, value) = item.map_err(io)?;
            if last_group.as_deref() == Some(group(&key)) {
                continue;
            }
            last_group = Some(group(&key).to_vec());
            let delivery: Delivery = decode("delivery", &value)?;
            if delivery.next_at > now || claims.contains_key(&delivery.key) {
                continue;
            }
            claims.insert(delivery.key.clone(), clock + lease);
            due.push(delivery);
        }
        Ok(due)
    }

    pub(super) fn finish_delivery(&self, key: &DeliveryKey) -> Result<(), StoreError> {
        self.refuse_if_failed()?;
        self.deliveries.remove(delivery_key(key)).map_err(io)?;
        self.release(key)
    }

    fn release(&self, key: &DeliveryKey) -> Result<(), StoreError> {
        self.outbox_state
            .claims
            .lock()
            .map_err(|_| poisoned())?
            .remove(key);
        Ok(())
    }

    pub(super) fn fail_delivery(
        &self,
        key: &DeliveryKey,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.refuse_if_failed()?;
        let stored_key = delivery_key(key);
        let Some(bytes) = self.deliveries.get(&stored_key).map_err(io)? else {
            return self.release(key);
        };
        let mut delivery: Delivery = decode("delivery", &bytes)?;
        delivery.attempts = delivery.attempts.saturating_add(1);
        delivery.last_error = Some(error.to_string());
        match retry_at {
            Some(at) => {
                delivery.next_at = at;
                self.deliveries
                    .insert(stored_key, encode("delivery", &delivery)?)
                    .map_err(io)?;
            }
            None => {
                delivery.next_at = now;
                let bytes = encode("delivery", &delivery)?;
                (&self.deliveries, &self.dead)
                    .transaction(|(deliveries, dead)| {
                        dead.insert(stored_key.as_slice(), bytes.as_slice())?;
                        deliveries.remove(stored_key.as_slice())?;
                        Ok::<(), ConflictableTransactionError<StoreError>>(())
                    })
                    .map_err(tx_error)?;
            }
        }
        self.release(key)
    }

    pub(super) fn dead_letter_records(&self, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        self.dead
            .iter()
            .take(limit)
            .map(|item| {
                let (_, value) = item.map_err(io)?;
                decode("dead letter", &value)
            })
            .collect()
    }

    pub(super) fn revive_records(
        &self,
        key: Option<&DeliveryKey>,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.refuse_if_failed()?;
        let keys: Vec<sled::IVec> = match key {
            Some(key) => vec![delivery_key(key).into()],
            None => self
                .dead
                .iter()
                .keys()
                .collect::<Result<_, _>>()
                .map_err(io)?,
        };
        let mut revived = 0;
        for stored_key in keys {
            let Some(bytes) = self.dead.get(&stored_key).map_err(io)? else {
                continue;
            };
            let mut delivery: Delivery = decode("dead letter", &bytes)?;
            delivery.attempts = 0;
            delivery.next_at = at;
            let bytes = encode("delivery", &delivery)?;
            (&self.deliveries, &self.dead)
                .transaction(|(deliveries, dead)| {
                    deliveries.insert(stored_key.as_ref(), bytes.as_slice())?;
                    dead.remove(stored_key.as_ref())?;
                    Ok::<(), ConflictableTransactionError<StoreError>>(())
                })
                .map_err(tx_error)?;
            revived += 1;
        }
        self.db.flush().map_err(io)?;
        Ok(revived)
    }

    pub(super) fn feed_items(&self, after: u64, limit: usize) -> Result<Vec<FeedItem>, StoreError> {
        let start = after.saturating_add(1).to_be_bytes();
        self.feed
            .range(start..)
            .take(limit)
            .map(|item| {
                let (key, value) = item.map_err(io)?;
                let position = u64::from_be_bytes(key.as_ref().try_into().map_err(|_| {
                    StoreError::BadRecord {
                        key: "feed".into(),
                        detail: "a position is 8 bytes".into(),
                    }
                })?);
                let (instance, seq) = split_log_key(&value).ok_or(StoreError::BadRecord {
                    key: format!("feed/{position}"),
                    detail: "not a step's key".into(),
                })?;
                Ok(FeedItem {
                    position,
                    instance,
                    seq,
                })
            })
            .collect()
    }

    pub(super) fn inbox_items(
        &self,
        recipients: &[String],
        limit: usize,
    ) -> Result<Vec<InboxItem>, StoreError> {
        // Newest first per recipient, merged by time; a notice for two recipients once.
        let mut found: BTreeMap<(std::cmp::Reverse<DateTime<Utc>>, String), InboxItem> =
            BTreeMap::new();
        for recipient in recipients {
            let mut prefix = recipient.as_bytes().to_vec();
            prefix.push(0);
            for item in self.inbox.scan_prefix(&prefix).take(limit) {
                let (_, value) = item.map_err(io)?;
                let stored: Stored = decode("inbox", &value)?;
                found
                    .entry((std::cmp::Reverse(stored.at), stored.key.clone()))
                    .or_insert_with(|| InboxItem {
                        recipient: recipient.clone(),
                        key: stored.key,
                        at: stored.at,
                        notice: serde_json::to_vec(&stored.notice).unwrap_or_default(),
                    });
            }
        }
        Ok(found.into_values().take(limit).collect())
    }

    pub(super) fn mark_read_records(&self, user: &str, keys: &[String]) -> Result<(), StoreError> {
        self.refuse_if_failed()?;
        let mut batch = sled::Batch::default();
        for key in keys {
            batch.insert(read_key(user, key), &[]);
        }
        self.inbox_read.apply_batch(batch).map_err(io)?;
        Ok(())
    }

    pub(super) fn read_mark_records(
        &self,
        user: &str,
        keys: &[String],
    ) -> Result<Vec<String>, StoreError> {
        let mut read = Vec::new();
        for key in keys {
            if self
                .inbox_read
                .contains_key(read_key(user, key))
                .map_err(io)?
            {
                read.push(key.clone());
            }
        }
        Ok(read)
    }

    pub(super) fn outbox_count_records(&self) -> Result<OutboxCounts, StoreError> {
        let head = match self.feed.last().map_err(io)? {
            Some((key, _)) => u64::from_be_bytes(key.as_ref().try_into().unwrap_or([0; 8])),
            None => 0,
        };
        Ok(OutboxCounts {
            unrouted: self.outbox.len() as u64,
            queued: self.deliveries.len() as u64,
            dead: self.dead.len() as u64,
            feed_head: head,
        })
    }
}
