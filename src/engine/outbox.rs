//! The engine's handle on the outbox ([`crate::store::outbox`]): what delivery, the feed's
//! readers and the console's notifications page call, each call on the blocking pool (the
//! store blocks).
//!
//! The engine itself only writes outbox records, in the commit of each step (see
//! [`Committed::outbox`](crate::store::Committed::outbox)). Routing them, sending messages
//! and reading the feed are for whoever holds this handle: `sopflow serve` runs the delivery
//! loop (`delivery::worker`), an embedding application may run its own.

use super::{Engine, EngineError};
use crate::machine::Entry;
use crate::store::{Delivery, DeliveryKey, FeedItem, InboxItem, OutboxCounts, PendingStep, Routed};
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// What routing makes of one step (see [`Outbox::route`]).
pub type Router = Arc<dyn Fn(&PendingStep, &Entry) -> Routed + Send + Sync>;

/// What became of one delivery tried ([`Outbox::record`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tried {
    /// The channel said it arrived: it leaves the queue.
    Arrived,
    /// It did not arrive: tried again at `retry_at`, or, when `None`, a dead letter.
    Failed {
        /// Why, for the operator.
        error: String,
        /// When to try again.
        retry_at: Option<DateTime<Utc>>,
    },
}

/// The outbox of an [`Engine`]'s store.
#[derive(Clone)]
pub struct Outbox {
    engine: Engine,
}

impl Engine {
    /// The outbox: routing, deliveries, dead letters, the feed and people's notices.
    pub fn outbox(&self) -> Outbox {
        Outbox {
            engine: self.clone(),
        }
    }
}

impl Outbox {
    /// The engine's time (its clock may be a test's).
    pub fn now(&self) -> DateTime<Utc> {
        self.engine.now()
    }

    /// Routes up to `limit` committed steps with `route`, at the engine's time; returns how
    /// many ([`Store::route_outbox`](crate::store::Store::route_outbox)).
    pub async fn route(&self, limit: usize, route: Router) -> Result<usize, EngineError> {
        let at = self.engine.now();
        let routed = self
            .engine
            .blocking(move |engine| {
                Ok(engine
                    .inner
                    .store
                    .route_outbox(limit, at, &|step, entry| route(step, entry))?)
            })
            .await?;
        if routed > 0 {
            self.engine
                .inner
                .routed
                .send_modify(|count| *count += routed as u64);
        }
        Ok(routed)
    }

    /// Completes once a step is committed by this engine after the last call (or since it
    /// opened): what a delivery loop waits on between its looks. Steps other processes commit
    /// to a shared store are not told: a loop looks every so often as well.
    pub async fn committed(&self) {
        self.engine.inner.committed.notified().await
    }

    /// Records what became of deliveries tried, in one call.
    pub async fn record(&self, attempts: Vec<(DeliveryKey, Tried)>) -> Result<(), EngineError> {
        let now = self.engine.now();
        self.engine
            .blocking(move |engine| {
                let store = &engine.inner.store;
                for (key, result) in attempts {
                    match result {
                        Tried::Arrived => store.delivery_done(&key)?,
                        Tried::Failed { error, retry_at } => {
                            store.delivery_failed(&key, &error, retry_at, now)?
                        }
                    }
                }
                Ok(())
            })
            .await
    }

    /// Claims up to `limit` deliveries due now, for `lease`.
    pub async fn due(
        &self,
        limit: usize,
        lease: std::time::Duration,
    ) -> Result<Vec<Delivery>, EngineError> {
        let now = self.engine.now();
        self.engine
            .blocking(move |engine| Ok(engine.inner.store.due_deliveries(now, limit, lease)?))
            .await
    }

    /// Records that a delivery arrived.
    pub async fn done(&self, key: DeliveryKey) -> Result<(), EngineError> {
        self.engine
            .blocking(move |engine| Ok(engine.inner.store.delivery_done(&key)?))
            .await
    }

    /// Records a failed attempt: tried again at `retry_at`, or a dead letter when `None`.
    pub async fn failed(
        &self,
        key: DeliveryKey,
        error: String,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), EngineError> {
        let now = self.engine.now();
        self.engine
            .blocking(move |engine| {
                Ok(engine
                    .inner
                    .store
                    .delivery_failed(&key, &error, retry_at, now)?)
            })
            .await
    }

    /// The dead letters, at most `limit`.
    pub async fn dead_letters(&self, limit: usize) -> Result<Vec<Delivery>, EngineError> {
        self.engine
            .blocking(move |engine| Ok(engine.inner.store.dead_letters(limit)?))
            .await
    }

    /// Sends a dead letter (or, with `None`, every one) again from its first attempt; returns
    /// how many.
    pub async fn revive(&self, key: Option<DeliveryKey>) -> Result<u64, EngineError> {
        let now = self.engine.now();
        self.engine
            .blocking(move |engine| Ok(engine.inner.store.revive(key.as_ref(), now)?))
            .await
    }

    /// The feed after `after`, at most `limit` steps.
    pub async fn feed(&self, after: u64, limit: usize) -> Result<Vec<FeedItem>, EngineError> {
        self.engine
            .blocking(move |engine| Ok(engine.inner.store.feed(after, limit)?))
            .await
    }

    /// The newest `limit` notices for these recipients (`role:..`, `user:..`).
    pub async fn notices(
        &self,
        recipients: Vec<String>,
        limit: usize,
    ) -> Result<Vec<InboxItem>, EngineError> {
        self.engine
            .blocking(move |engine| Ok(engine.inner.store.inbox(&recipients, limit)?))
            .await
    }

    /// Records that `user` has read these notices.
    pub async fn mark_read(&self, user: String, keys: Vec<String>) -> Result<(), EngineError> {
        self.engine
            .blocking(move |engine| Ok(engine.inner.store.mark_read(&user, &keys)?))
            .await
    }

    /// Which of these notices `user` has read.
    pub async fn read_marks(
        &self,
        user: String,
        keys: Vec<String>,
    ) -> Result<Vec<String>, EngineError> {
        self.engine
            .blocking(move |engine| Ok(engine.inner.store.read_marks(&user, &keys)?))
            .await
    }

    /// How the outbox stands.
    pub async fn counts(&self) -> Result<OutboxCounts, EngineError> {
        self.engine
            .blocking(|engine| Ok(engine.inner.store.outbox_counts()?))
            .await
    }
}
