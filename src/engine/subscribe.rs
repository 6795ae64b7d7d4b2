//! Subscriptions: the committed steps of an engine's store, in feed order, for an embedding
//! application (and the server's `GET /api/events`).
//!
//! The feed ([`crate::store::outbox`]) gives every routed step a position, 1, 2, 3... with no
//! gaps, each instance's steps in their order, the same on every node sharing the store. A
//! [`Subscription`] reads it from a position on, a page at a time (memory stays bounded), and
//! waits when it has caught up: woken as soon as this engine routes more steps, and looking
//! again every [`POLL`] for steps another process routed. Resuming after a disconnect is
//! subscribing again after the last position seen: nothing is missed, nothing repeated.
//!
//! Steps reach the feed when they are routed, which the delivery loop does (`sopflow serve`
//! runs it; an embedding application runs `delivery::worker::Worker` or calls
//! [`Outbox::route`](super::Outbox::route) itself).

use super::{Engine, EngineError};
use crate::machine::Entry;
use std::collections::VecDeque;
use std::time::Duration;

/// How often a caught-up subscription looks at the feed again without being woken.
pub const POLL: Duration = Duration::from_millis(250);

/// Feed positions read per page.
const PAGE: usize = 256;

/// Which steps a subscription yields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepFilter {
    /// Only steps of instances of this workflow.
    pub workflow: Option<String>,
    /// Only steps of this instance.
    pub instance: Option<String>,
}

impl StepFilter {
    fn keeps(&self, entry: &Entry) -> bool {
        self.workflow.as_ref().is_none_or(|w| *w == entry.workflow)
            && self.instance.as_ref().is_none_or(|i| *i == entry.instance)
    }
}

/// One committed step and its place in the feed.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedStep {
    /// Its feed position: resume after it with [`Engine::subscribe`].
    pub position: u64,
    /// The step's history entry.
    pub entry: Entry,
}

/// Committed steps in feed order ([`Engine::subscribe`]).
pub struct Subscription {
    engine: Engine,
    filter: StepFilter,
    /// The last position read (kept or not).
    after: u64,
    ready: VecDeque<FeedStep>,
    routed: tokio::sync::watch::Receiver<u64>,
}

impl Engine {
    /// The steps after feed position `after` (0: from the first) that `filter` keeps, in feed
    /// order, as they are committed and routed.
    pub fn subscribe(&self, after: u64, filter: StepFilter) -> Subscription {
        Subscription {
            engine: self.clone(),
            filter,
            after,
            ready: VecDeque::new(),
            routed: self.inner.routed.subscribe(),
        }
    }
}

impl Subscription {
    /// The next step, waiting for one if need be.
    pub async fn next(&mut self) -> Result<FeedStep, EngineError> {
        loop {
            if let Some(step) = self.ready.pop_front() {
                return Ok(step);
            }
            self.routed.mark_unchanged();
            if !self.fill().await? {
                tokio::select! {
                    _ = self.routed.changed() => {}
                    () = tokio::time::sleep(POLL) => {}
                }
            }
        }
    }

    /// The last feed position read: a subscription made after it misses nothing this one
    /// has not yielded (or skipped by its filter).
    pub fn position(&self) -> u64 {
        self.after
    }

    /// Reads the next page of the feed and the entries of the steps it keeps; false when the
    /// feed had nothing after the last position.
    async fn fill(&mut self) -> Result<bool, EngineError> {
        let items = self.engine.outbox().feed(self.after, PAGE).await?;
        let Some(last) = items.last().map(|i| i.position) else {
            return Ok(false);
        };
        let filter = self.filter.clone();
        let steps = self
            .engine
            .blocking(move |engine| {
                let store = &engine.inner.store;
                let mut steps = Vec::new();
                for item in items {
                    if filter
                        .instance
                        .as_ref()
                        .is_some_and(|i| *i != item.instance)
                    {
                        continue;
                    }
                    if let Some(entry) = store.entry(&item.instance, item.seq)?
                        && filter.keeps(&entry)
                    {
                        steps.push(FeedStep {
                            position: item.position,
                            entry,
                        });
                    }
                }
                Ok(steps)
            })
            .await?;
        self.after = last;
        self.ready.extend(steps);
        Ok(true)
    }
}
