//! The outbox in PostgreSQL ([`crate::store::outbox`]). Not written yet: every method says so.

use super::PgStore;
use crate::machine::Entry;
use crate::store::StoreError;
use crate::store::outbox::{
    Delivery, DeliveryKey, FeedItem, InboxItem, OutboxCounts, PendingStep, Routed,
};
use chrono::{DateTime, Utc};

fn unsupported(store: &PgStore) -> StoreError {
    StoreError::Unsupported {
        store: store.shown().to_string(),
        detail: "notifications are not delivered from a PostgreSQL store yet".into(),
    }
}

impl PgStore {
    pub(super) fn route_outbox_records(
        &self,
        _limit: usize,
        _at: DateTime<Utc>,
        _route: &(dyn Fn(&PendingStep, &Entry) -> Routed + Sync),
    ) -> Result<usize, StoreError> {
        Err(unsupported(self))
    }

    pub(super) fn due_delivery_records(
        &self,
        _now: DateTime<Utc>,
        _limit: usize,
        _lease: std::time::Duration,
    ) -> Result<Vec<Delivery>, StoreError> {
        Err(unsupported(self))
    }

    pub(super) fn finish_delivery(&self, _key: &DeliveryKey) -> Result<(), StoreError> {
        Err(unsupported(self))
    }

    pub(super) fn fail_delivery(
        &self,
        _key: &DeliveryKey,
        _error: &str,
        _retry_at: Option<DateTime<Utc>>,
        _now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        Err(unsupported(self))
    }

    pub(super) fn dead_letter_records(&self, _limit: usize) -> Result<Vec<Delivery>, StoreError> {
        Err(unsupported(self))
    }

    pub(super) fn revive_records(
        &self,
        _key: Option<&DeliveryKey>,
        _at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        Err(unsupported(self))
    }

    pub(super) fn feed_items(
        &self,
        _after: u64,
        _limit: usize,
    ) -> Result<Vec<FeedItem>, StoreError> {
        Err(unsupported(self))
    }

    pub(super) fn inbox_items(
        &self,
        _recipients: &[String],
        _limit: usize,
    ) -> Result<Vec<InboxItem>, StoreError> {
        Err(unsupported(self))
    }

    pub(super) fn mark_read_records(
        &self,
        _user: &str,
        _keys: &[String],
    ) -> Result<(), StoreError> {
        Err(unsupported(self))
    }

    pub(super) fn read_mark_records(
        &self,
        _user: &str,
        _keys: &[String],
    ) -> Result<Vec<String>, StoreError> {
        Err(unsupported(self))
    }

    pub(super) fn outbox_count_records(&self) -> Result<OutboxCounts, StoreError> {
        Err(unsupported(self))
    }
}
