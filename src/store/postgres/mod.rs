//! The store on PostgreSQL (feature `postgres`): the same records as [`SledStore`]'s, in
//! tables (`migrations/`), through tokio-postgres connections from a deadpool pool.
//!
//! - `connection`: the store's own tokio runtime, the pool, and errors.
//! - `schema`: refinery migrations and the format check.
//! - `commit`: the write path, one durable transaction per batch.
//! - `numbered`: starts numbered under their counts' locks, in their commit's transaction.
//! - `reads`: reads by key and queries.
//! - `scan`: cursors for audits, and the check of derived records.
//! - `outbox`: routing, the delivery queue, dead letters, the feed and people's notices.
//!
//! Differences from [`SledStore`] that no caller can observe: the snapshots, indexes, timer
//! queue and idempotency keys are written in the same transaction as the entries, so they
//! never lag ([`Store::checkpoint`] has nothing to do, and nothing is rebuilt on open:
//! [`Store::recovered`] is empty); `append` commits (its batch is durable when it returns)
//! and `sync` only answers; counts and schedule marks are durable as soon as they are set.
//! A key column is text, which PostgreSQL does not let hold a NUL: a business key with one
//! fails its commit.
//!
//! Several processes (nodes) may open one database at once, and every guarantee of the store
//! holds among them, decided by the database: a step, a start's numbers and an idempotency
//! key are taken by the commit that writes them (`commit`: a batch that loses a race fails
//! with [`StoreError::Conflict`], [`StoreError::KeyTaken`] or [`StoreError::Contended`] and
//! writes nothing); a due timer is claimed by one node for a lease
//! ([`Store::claim_due_timers`], `FOR UPDATE SKIP LOCKED`); schedule marks move forward only
//! ([`Store::advance_schedule_mark`], a compare-and-set).
//!
//! [`SledStore`]: crate::store::SledStore

mod commit;
mod connection;
mod numbered;
mod outbox;
mod reads;
mod scan;
mod schema;
mod shared;

use crate::machine::{Entry, Instance};
use crate::store::{
    Committed, DefinitionRecord, DerivedProblem, LogRecord, Options, Query, QueuedTimer, Scan,
    SnapshotRecord, Store, StoreError, StoredDefinition,
};
use crate::store::{DeployedSet, StoredSession};
use chrono::{DateTime, Utc};
use connection::Connection;

/// The PostgreSQL-backed [`Store`].
///
/// Its methods block the calling thread (on a runtime of the store's own): call them from a
/// blocking thread, never from an async worker thread, where they panic.
pub struct PgStore {
    connection: Connection,
    /// This process's name in timer claims (for people reading the table).
    node: String,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("store", &self.connection.shown)
            .finish()
    }
}

impl PgStore {
    /// Connects to the database `url` names and brings its schema up to date: creates it in an
    /// empty database when `options.create`, else fails with [`StoreError::Missing`].
    /// `options`' other fields concern sled and are ignored (a commit is always durable).
    pub fn open(url: &str, options: Options) -> Result<PgStore, StoreError> {
        let shown = crate::store::location::redact_url(url);
        let connection = Connection::new(url, shown)?;
        connection.run(schema::prepare(&connection, options.create))?;
        let host = std::env::var("HOSTNAME").unwrap_or_default();
        let node = format!("{host}:{}", std::process::id());
        Ok(PgStore { connection, node })
    }

    /// The database's URL, its password hidden.
    pub fn shown(&self) -> &str {
        &self.connection.shown
    }
}

impl Store for PgStore {
    fn route_outbox(
        &self,
        limit: usize,
        at: DateTime<Utc>,
        route: &(dyn Fn(&super::PendingStep, &Entry) -> super::Routed + Sync),
    ) -> Result<usize, StoreError> {
        self.route_outbox_records(limit, at, route)
    }

    fn due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        lease: std::time::Duration,
    ) -> Result<Vec<super::Delivery>, StoreError> {
        self.due_delivery_records(now, limit, lease)
    }

    fn delivery_done(&self, key: &super::DeliveryKey) -> Result<(), StoreError> {
        self.finish_delivery(key)
    }

    fn delivery_failed(
        &self,
        key: &super::DeliveryKey,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.fail_delivery(key, error, retry_at, now)
    }

    fn dead_letters(&self, limit: usize) -> Result<Vec<super::Delivery>, StoreError> {
        self.dead_letter_records(limit)
    }

    fn revive(
        &self,
        key: Option<&super::DeliveryKey>,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.revive_records(key, at)
    }

    fn feed(&self, after: u64, limit: usize) -> Result<Vec<super::FeedItem>, StoreError> {
        self.feed_items(after, limit)
    }

    fn inbox(
        &self,
        recipients: &[String],
        limit: usize,
    ) -> Result<Vec<super::InboxItem>, StoreError> {
        self.inbox_items(recipients, limit)
    }

    fn mark_read(&self, user: &str, keys: &[String]) -> Result<(), StoreError> {
        self.mark_read_records(user, keys)
    }

    fn read_marks(&self, user: &str, keys: &[String]) -> Result<Vec<String>, StoreError> {
        self.read_mark_records(user, keys)
    }

    fn outbox_counts(&self) -> Result<super::OutboxCounts, StoreError> {
        self.outbox_count_records()
    }

    fn commit(&self, batch: &[Committed]) -> Result<(), StoreError> {
        self.connection.run(commit::commit(&self.connection, batch))
    }

    /// Commits the batch: its entries and derived records are durable when this returns.
    fn append(&self, batch: &[Committed]) -> Result<(), StoreError> {
        self.commit(batch)
    }

    /// Nothing left to do: the batch was committed by [`Store::append`].
    fn sync(&self, _batch: &[Committed]) -> Result<(), StoreError> {
        Ok(())
    }

    /// Two (`COMMIT_LANES`, measured): each commit holds one of the pool's connections while it
    /// waits for the server, and the rest of the pool is left to reads.
    fn concurrent_commits(&self) -> usize {
        connection::COMMIT_LANES
    }

    fn waits_on_a_runtime(&self) -> bool {
        true
    }

    fn instance(&self, id: &str) -> Result<Option<Instance>, StoreError> {
        self.connection.run(reads::instance(&self.connection, id))
    }

    fn history(&self, id: &str) -> Result<Vec<Entry>, StoreError> {
        self.connection.run(reads::history(&self.connection, id))
    }

    fn entry(&self, id: &str, seq: u64) -> Result<Option<Entry>, StoreError> {
        self.connection.run(reads::entry(&self.connection, id, seq))
    }

    fn find(&self, query: &Query) -> Result<Vec<Instance>, StoreError> {
        self.connection.run(reads::find(&self.connection, query))
    }

    fn idempotent(&self, key: &str) -> Result<Option<(String, u64)>, StoreError> {
        self.connection
            .run(reads::idempotent(&self.connection, key))
    }

    fn due_timers(
        &self,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<QueuedTimer>, StoreError> {
        self.connection
            .run(reads::due_timers(&self.connection, until, limit))
    }

    fn claim_due_timers(
        &self,
        until: DateTime<Utc>,
        limit: usize,
        lease: std::time::Duration,
    ) -> Result<Vec<QueuedTimer>, StoreError> {
        self.connection.run(reads::claim_due_timers(
            &self.connection,
            until,
            limit,
            lease,
            &self.node,
        ))
    }

    fn first_schedule_mark(
        &self,
        key: &str,
        at: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, StoreError> {
        self.connection
            .run(reads::first_schedule_mark(&self.connection, key, at))
    }

    fn advance_schedule_mark(&self, key: &str, at: DateTime<Utc>) -> Result<bool, StoreError> {
        self.connection
            .run(reads::advance_schedule_mark(&self.connection, key, at))
    }

    /// True: a start's numbers are a compare-and-set in its commit (see `commit`), on counts
    /// locked in its transaction (`numbered`).
    fn numbers_in_commit(&self) -> bool {
        true
    }

    /// The counts locked in the commit's transaction (see `numbered`).
    fn commit_numbered(
        &self,
        workflow: &str,
        period: Option<&str>,
        number: &mut dyn FnMut(u64, Option<u64>) -> Vec<Committed>,
    ) -> Result<Vec<Committed>, StoreError> {
        self.connection.run(numbered::commit_numbered(
            &self.connection,
            workflow,
            period,
            number,
        ))
    }

    fn schedule_mark(&self, key: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.connection
            .run(reads::schedule_mark(&self.connection, key))
    }

    fn set_schedule_mark(&self, key: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.connection
            .run(reads::set_schedule_mark(&self.connection, key, at))
    }

    fn save_definition(&self, definition: &StoredDefinition) -> Result<(), StoreError> {
        self.connection
            .run(reads::save_definition(&self.connection, definition))
    }

    fn definition(&self, hash: &str) -> Result<Option<StoredDefinition>, StoreError> {
        self.connection
            .run(reads::definition(&self.connection, hash))
    }

    fn last_number(&self, workflow: &str) -> Result<u64, StoreError> {
        self.connection
            .run(reads::last_number(&self.connection, workflow))
    }

    fn set_last_number(&self, workflow: &str, number: u64) -> Result<(), StoreError> {
        self.connection
            .run(reads::set_last_number(&self.connection, workflow, number))
    }

    fn last_sequence(&self, workflow: &str, period: &str) -> Result<u64, StoreError> {
        self.connection
            .run(reads::last_sequence(&self.connection, workflow, period))
    }

    fn set_last_sequence(&self, workflow: &str, period: &str, seq: u64) -> Result<(), StoreError> {
        self.connection.run(reads::set_last_sequence(
            &self.connection,
            workflow,
            period,
            seq,
        ))
    }

    fn find_number(&self, number: &str) -> Result<Vec<String>, StoreError> {
        self.connection
            .run(reads::find_number(&self.connection, number))
    }

    fn schedule_marks(&self) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
        self.connection
            .run(shared::schedule_marks(&self.connection))
    }

    fn sessions(&self) -> Result<Vec<(String, StoredSession)>, StoreError> {
        self.connection.run(shared::sessions(&self.connection))
    }

    fn save_session(&self, key: &str, session: &StoredSession) -> Result<(), StoreError> {
        self.connection
            .run(shared::save_session(&self.connection, key, session))
    }

    fn session(&self, key: &str) -> Result<Option<StoredSession>, StoreError> {
        self.connection.run(shared::session(&self.connection, key))
    }

    fn delete_session(&self, key: &str) -> Result<(), StoreError> {
        self.connection
            .run(shared::delete_session(&self.connection, key))
    }

    fn prune_sessions(&self, unused_since: DateTime<Utc>) -> Result<u64, StoreError> {
        self.connection
            .run(shared::prune_sessions(&self.connection, unused_since))
    }

    /// One transaction: the versions, the set's row, and a notification to every node.
    fn deploy(
        &self,
        definitions: &[StoredDefinition],
        set: &DeployedSet,
    ) -> Result<(), StoreError> {
        self.connection
            .run(shared::deploy(&self.connection, definitions, set))
    }

    fn deployed(&self) -> Result<Option<DeployedSet>, StoreError> {
        self.connection.run(shared::deployed(&self.connection))
    }

    fn deployed_id(&self) -> Result<Option<String>, StoreError> {
        self.connection.run(shared::deployed_id(&self.connection))
    }

    /// LISTEN on the deploy channel; `None` (polling only) if the connection cannot be made.
    fn deploy_notifications(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<()>> {
        self.connection.run(shared::listen(&self.connection)).ok()
    }

    /// Nothing to do: derived records are written with each commit.
    fn checkpoint(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn scan_log(&self) -> Scan<'_, LogRecord> {
        scan::log(&self.connection)
    }

    fn scan_snapshots(&self) -> Scan<'_, SnapshotRecord> {
        scan::snapshots(&self.connection)
    }

    fn scan_definitions(&self) -> Scan<'_, DefinitionRecord> {
        scan::definitions(&self.connection)
    }

    fn check_derived(&self, report: &mut dyn FnMut(DerivedProblem)) -> Result<(), StoreError> {
        scan::check_derived(&self.connection, report)
    }

    /// Always empty: a batch is committed whole or not at all, so no follow-up work is ever
    /// left half-done by a crash.
    fn recovered(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Deploys a definition set to the database `url` (creating the store if it is new) without
/// taking the database from the process that serves it: a deploy writes only definition
/// versions, which are content-addressed and never rewritten, and a new row of deployed sets,
/// which servers only read, so it needs no exclusive hold. Servers following the store are
/// notified when it commits.
pub fn deploy_unlocked(
    url: &str,
    definitions: &[StoredDefinition],
    set: &DeployedSet,
) -> Result<crate::deploy::Deployed, StoreError> {
    let connection = Connection::new(url, crate::store::location::redact_url(url))?;
    connection.run(shared::deploy_unless_deployed(
        &connection,
        definitions,
        set,
    ))
}
