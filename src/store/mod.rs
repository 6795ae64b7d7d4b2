//! The store: where histories, snapshots and definition versions are kept.
//!
//! The history is the source of truth. Everything else the store keeps (instance snapshots,
//! the timer queue, the indexes by workflow, state, business key, readable number and
//! idempotency key) is
//! derived from it and can be rebuilt from it. [`Store`] is small on purpose, so that another
//! backend can take sled's place; [`SledStore`] is the embedded one, and (feature `postgres`)
//! `PgStore` (`store::postgres`) keeps the same records in PostgreSQL. [`open`] opens the one a
//! [`StoreLocation`] names.
//!
//! A `Store` is a blocking interface, like `std::fs`: its methods may wait for a disk or a
//! database, so async code calls them on a blocking thread (`tokio::task::spawn_blocking`),
//! never on an async worker thread.

pub mod copy;
pub mod location;
pub mod outbox;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod shared;
pub mod sled_store;

pub use location::StoreLocation;
pub use outbox::{
    Delivery, DeliveryKey, FeedItem, InboxItem, NewDelivery, OutboxCounts, PendingStep, Routed,
};
pub use shared::{DeployedFile, DeployedSet, FileKind, StoredSession};
pub use sled_store::{Options, SledStore};

use std::sync::Arc;

/// Opens (or, with `options.create`, creates) the store `location` names.
pub fn open(location: &StoreLocation, options: Options) -> Result<Arc<dyn Store>, StoreError> {
    match location {
        StoreLocation::Sled(path) => Ok(Arc::new(SledStore::open(path, options)?)),
        #[cfg(feature = "postgres")]
        StoreLocation::Postgres(url) => Ok(Arc::new(postgres::PgStore::open(url, options)?)),
        #[cfg(not(feature = "postgres"))]
        StoreLocation::Postgres(_) => Err(StoreError::Unsupported {
            store: location.redacted(),
            detail: "this sopflow was built without PostgreSQL support (the `postgres` feature); \
                     build it with that feature, or pass a data folder"
                .into(),
        }),
    }
}

use crate::machine::{ChainError, Entry, Instance};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A step to commit: its history entry, the entry as stored, and the snapshot it leads to.
#[derive(Debug, Clone)]
pub struct Committed {
    /// The history entry to append.
    pub entry: Entry,
    /// The entry's JSON, encoded by the caller so that the commit thread only writes.
    pub encoded: Vec<u8>,
    /// The instance as it is after the entry.
    pub snapshot: Instance,
    /// For a start, the numbers it takes (its id's and its readable number's), which a store
    /// that [takes numbers in its commit](Store::numbers_in_commit) moves on only if they are
    /// still the next ones.
    pub numbers: Option<NumberClaim>,
    /// The step's outbox record, written in the same commit as its entry: JSON of the list of
    /// notices it causes (`notify::Notice`, often none), which also puts the step in the feed
    /// once routed ([`outbox`]). `None` writes none: a copied history, whose notices were
    /// delivered where it was first committed.
    pub outbox: Option<Vec<u8>>,
}

/// The numbers a start takes: `workflow-n`, and the `{seq}` of its readable number in its
/// period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberClaim {
    /// The workflow whose count it is.
    pub workflow: String,
    /// The instance number (`workflow-n`).
    pub n: u64,
    /// The readable number's period (a year, or `""`) and `{seq}`, when the workflow has a
    /// number format.
    pub sequence: Option<(String, u64)>,
}

impl Committed {
    /// The step to commit, with its entry encoded as it is stored. An entry that cannot be
    /// encoded is an error, never an empty record in the chain.
    pub fn new(entry: Entry, snapshot: Instance) -> Result<Committed, StoreError> {
        let encoded = serde_json::to_vec(&entry).map_err(|e| StoreError::Encode {
            key: format!("{}/{}", entry.instance, entry.seq),
            detail: e.to_string(),
        })?;
        Ok(Committed {
            entry,
            encoded,
            snapshot,
            numbers: None,
            outbox: None,
        })
    }
}

/// Which instances to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// Only instances of this workflow.
    pub workflow: Option<String>,
    /// Only instances in this state.
    pub state: Option<String>,
    /// Only instances with this business key.
    pub business_key: Option<String>,
    /// At most this many (all when `None`).
    pub limit: Option<usize>,
}

impl Query {
    /// Whether `instance` passes the query's filters (the limit aside).
    pub fn matches(&self, instance: &Instance) -> bool {
        self.workflow
            .as_ref()
            .is_none_or(|w| *w == instance.workflow)
            && self.state.as_ref().is_none_or(|s| *s == instance.state)
            && self
                .business_key
                .as_ref()
                .is_none_or(|k| instance.business_key.as_ref() == Some(k))
    }
}

/// A definition version as stored: the exact sources it was built from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StoredDefinition {
    /// The version hash ([`crate::catalog::version_hash`] of the sources).
    pub hash: String,
    /// The workflow's id.
    pub workflow: String,
    /// The file it was read from, for messages.
    pub file: String,
    /// The workflow file's text.
    pub yaml: String,
    /// Rules files it uses, by name.
    pub rules: BTreeMap<String, String>,
    /// Parameter values set from outside the YAML (a scenario's `params:`), by name. Absent
    /// in the records of versions that use only their defaults.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub parameters: serde_json::Map<String, serde_json::Value>,
}

impl StoredDefinition {
    /// The version hash these sources give now; a record whose stored hash differs was altered.
    pub fn recomputed_hash(&self) -> String {
        crate::catalog::version_hash(&self.yaml, &self.rules, &self.parameters)
    }
}

/// A timer waiting in the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedTimer {
    /// When it falls due (to the millisecond).
    pub due: chrono::DateTime<chrono::Utc>,
    /// The instance it belongs to.
    pub instance: String,
    /// The timer's id within the instance.
    pub timer: String,
    /// The event it fires.
    pub event: String,
}

/// One record of the history log as stored, for audits: where it is kept (the instance and
/// sequence number of its key) and what it holds.
#[derive(Debug, Clone)]
pub struct LogRecord {
    /// The instance its key names.
    pub instance: String,
    /// The sequence number its key names.
    pub seq: u64,
    /// The entry, or why the stored bytes are not one.
    pub entry: Result<Entry, String>,
}

/// One stored snapshot, for audits.
#[derive(Debug, Clone)]
pub struct SnapshotRecord {
    /// The instance id it is stored under.
    pub id: String,
    /// The snapshot, or why the stored bytes are not one.
    pub instance: Result<Instance, String>,
}

/// One stored definition version, for audits.
#[derive(Debug, Clone)]
pub struct DefinitionRecord {
    /// The hash it is stored under.
    pub hash: String,
    /// The sources, or why the stored bytes are not a definition.
    pub definition: Result<StoredDefinition, String>,
}

/// A derived record (index, timer queue, idempotency key) that disagrees with the snapshots
/// or the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DerivedProblem {
    /// Which records: `index by_state`, `timer queue`, `idempotency keys`...
    pub records: String,
    /// The instance concerned (empty when the record names none that can be read).
    pub instance: String,
    /// What disagrees.
    pub detail: String,
}

/// A lazy walk over stored records.
pub type Scan<'a, T> = Box<dyn Iterator<Item = Result<T, StoreError>> + Send + 'a>;

/// Why the store failed. Clonable, so that one failure of a group commit reaches every caller
/// whose steps were in the batch as the same typed error (a backend's error with a source that
/// is not `Clone` keeps it behind an `Arc`).
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// Another process holds the data folder (sled's: one process at a time).
    #[error(
        "the store {path} is in use by another sopflow process; stop it, or reach it over its server, or use another --data-dir (or --store)"
    )]
    Locked {
        /// The folder.
        path: String,
    },
    /// There is no store where one was expected (and it was not to be created).
    #[error(
        "no sopflow data at {path}: start an instance first, or pass the right --data-dir (or --store)"
    )]
    Missing {
        /// The folder or (redacted) URL.
        path: String,
    },
    /// The folder or database holds something other than a sopflow store.
    #[error("{path} is not a sopflow data folder ({detail}); pass the right --data-dir")]
    NotAStore {
        /// The folder or (redacted) URL.
        path: String,
        /// What was found instead.
        detail: String,
    },
    /// The store's records are damaged.
    #[error(
        "the data folder {path} is damaged ({detail}); restore it from a backup, and run `sopflow audit verify` on the copy"
    )]
    Corrupt {
        /// The folder or (redacted) URL.
        path: String,
        /// What is damaged.
        detail: String,
    },
    /// One stored record cannot be decoded.
    #[error(
        "stored record {key} cannot be read: {detail}; run `sopflow audit verify` to see what else is damaged"
    )]
    BadRecord {
        /// The record's key.
        key: String,
        /// Why it cannot be read.
        detail: String,
    },
    /// A record could not be encoded to be stored (nothing was written).
    #[error("record {key} cannot be encoded to be stored, so nothing was written: {detail}")]
    Encode {
        /// The record's key.
        key: String,
        /// Why it cannot be encoded.
        detail: String,
    },
    /// Entries that do not continue their history.
    #[error("the history does not chain: {0}")]
    Chain(#[from] ChainError),
    /// The database cannot be reached, or the connection broke.
    #[error(
        "the store {store} cannot be reached ({detail}); check that PostgreSQL is running and that the URL's host, port, user and database are right, then try again"
    )]
    Unreachable {
        /// The (redacted) URL.
        store: String,
        /// What failed.
        detail: String,
    },
    /// Another command wrote the same step first: the batch was written not at all.
    #[error(
        "step {seq} of `{instance}` was written by another command first, and this one wrote nothing; read the instance again and retry"
    )]
    Conflict {
        /// The instance.
        instance: String,
        /// The sequence number both wanted.
        seq: u64,
    },
    /// Another command used the same idempotency key first (on this node or another): the
    /// batch was written not at all.
    #[error(
        "the idempotency key `{key}` was used by another command first, and this one wrote nothing; send the command again to get the first one's answer"
    )]
    KeyTaken {
        /// The key.
        key: String,
    },
    /// The database ended the commit to let a concurrent one through (a deadlock between
    /// two nodes' transactions): the batch was written not at all.
    #[error(
        "the store {store} ended this commit in favour of a concurrent one ({detail}), and it wrote nothing; retry the command"
    )]
    Contended {
        /// The (redacted) URL.
        store: String,
        /// What the database said.
        detail: String,
    },
    /// This build or this store cannot do what was asked.
    #[error("{store}: {detail}")]
    Unsupported {
        /// The folder or (redacted) URL.
        store: String,
        /// What is missing, and what to do instead.
        detail: String,
    },
    /// Any other failure of the storage underneath.
    #[error("storage error: {0}")]
    Io(String),
}

impl StoreError {
    /// Whether the commit lost a race with another command (on this node or another) and
    /// wrote nothing: the command may be computed again on what is stored now.
    pub fn lost_race(&self) -> bool {
        matches!(
            self,
            StoreError::Conflict { .. }
                | StoreError::KeyTaken { .. }
                | StoreError::Contended { .. }
        )
    }
}

/// Where histories and everything derived from them are kept.
///
/// `commit` is durable when it returns: a step acknowledged to a user survives a crash.
pub trait Store: Send + Sync {
    /// Appends entries (each continuing its instance's history) and records their snapshots,
    /// with one flush for the whole batch.
    fn commit(&self, batch: &[Committed]) -> Result<(), StoreError> {
        self.append(batch)?;
        self.sync(batch)
    }
    /// Writes a batch's entries, not yet durably. Batches appended one after another may be
    /// synced together.
    fn append(&self, batch: &[Committed]) -> Result<(), StoreError>;
    /// Makes every entry appended so far durable, then records the snapshots of `batch` (which
    /// was appended before): only then are its steps visible and acknowledged.
    fn sync(&self, batch: &[Committed]) -> Result<(), StoreError>;
    /// How many batches the engine may have committing at once. 1 (the default): `append`
    /// only writes and `sync` flushes, and the committer overlaps one batch's append with the
    /// last one's flush. More: `append` is itself the durable commit (and `sync` has nothing
    /// to do), and batches on different instances may be committed side by side, each on a
    /// connection of its own (PostgreSQL).
    fn concurrent_commits(&self) -> usize {
        1
    }
    /// Whether the store's blocking methods wait on an async runtime of its own
    /// (`Handle::block_on`: PostgreSQL). The engine then never calls them inside tokio's
    /// `block_in_place`: on the thread of a runtime's `block_on`, that inner wait parks on the
    /// same thread parker as the outer one, takes the wake-ups meant for the outer future
    /// (another future of the same `join!`), and the outer one then never wakes.
    fn waits_on_a_runtime(&self) -> bool {
        false
    }
    /// The current snapshot of an instance.
    fn instance(&self, id: &str) -> Result<Option<Instance>, StoreError>;
    /// Every entry of an instance, in order.
    fn history(&self, id: &str) -> Result<Vec<Entry>, StoreError>;
    /// One entry of an instance.
    fn entry(&self, id: &str, seq: u64) -> Result<Option<Entry>, StoreError>;
    /// Instances matching a query, in id order.
    fn find(&self, query: &Query) -> Result<Vec<Instance>, StoreError>;
    /// The step an idempotency key was first used for: (instance, sequence number).
    fn idempotent(&self, key: &str) -> Result<Option<(String, u64)>, StoreError>;
    /// Timers due at or before `until`, earliest first.
    fn due_timers(
        &self,
        until: chrono::DateTime<chrono::Utc>,
        limit: usize,
    ) -> Result<Vec<QueuedTimer>, StoreError>;
    /// Timers due at or before `until`, earliest first, claimed for this process for `lease`:
    /// until the lease runs out, no other process sharing the store is given them. A store
    /// only one process opens (sled) gives the same as [`Store::due_timers`]. A claim is not a
    /// firing: a timer fires only by a committed step, which removes it.
    fn claim_due_timers(
        &self,
        until: chrono::DateTime<chrono::Utc>,
        limit: usize,
        lease: std::time::Duration,
    ) -> Result<Vec<QueuedTimer>, StoreError> {
        let _ = lease;
        self.due_timers(until, limit)
    }
    /// The occurrence a schedule (`workflow/schedule`) last fired for, or first saw.
    fn schedule_mark(&self, key: &str)
    -> Result<Option<chrono::DateTime<chrono::Utc>>, StoreError>;
    /// Records that a schedule fired for (or first saw) the occurrence `at`, durably.
    fn set_schedule_mark(
        &self,
        key: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError>;
    /// Gives a schedule its first mark, `at`, unless it has one: returns the mark in force
    /// (whoever set it).
    fn first_schedule_mark(
        &self,
        key: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<chrono::DateTime<chrono::Utc>, StoreError> {
        match self.schedule_mark(key)? {
            Some(mark) => Ok(mark),
            None => {
                self.set_schedule_mark(key, at)?;
                Ok(at)
            }
        }
    }
    /// Moves a schedule's mark forward to `at`, durably, if it is earlier (or missing): true
    /// when this call moved it, false when it was at `at` or later already.
    fn advance_schedule_mark(
        &self,
        key: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, StoreError> {
        if self.schedule_mark(key)?.is_some_and(|mark| mark >= at) {
            return Ok(false);
        }
        self.set_schedule_mark(key, at)?;
        Ok(true)
    }
    /// Stores a definition version under its hash (no-op if present).
    fn save_definition(&self, definition: &StoredDefinition) -> Result<(), StoreError>;
    /// The stored sources of a definition version.
    fn definition(&self, hash: &str) -> Result<Option<StoredDefinition>, StoreError>;
    /// The last number given to an instance of `workflow` (0 before the first), so that ids
    /// run `workflow-1`, `workflow-2`, ... with no gaps, across restarts. In a store whose
    /// instances were numbered before numbers were kept, the highest number in the log.
    fn last_number(&self, workflow: &str) -> Result<u64, StoreError>;
    /// Records that `number` was given to an instance of `workflow`; durable with the next
    /// flush, which is the one that makes that instance's first entry durable.
    fn set_last_number(&self, workflow: &str, number: u64) -> Result<(), StoreError>;
    /// Whether this store takes a start's numbers in the commit of its first entry, with
    /// [`Committed::numbers`]: it moves each count on only if the claimed number is still the
    /// next one, and otherwise refuses the batch with [`StoreError::Conflict`] (so numbers
    /// stay without gaps across processes sharing the store; a claim whose predecessor is not
    /// committed yet is refused likewise, so the engine may hand a child's numbers out before
    /// the start before it is committed; a start of its own is numbered with
    /// [`Store::commit_numbered`]). The engine then never calls
    /// [`Store::set_last_number`] or [`Store::set_last_sequence`]. False: the engine records
    /// numbers with those, under its own lock, before the commit (sled).
    fn numbers_in_commit(&self) -> bool {
        false
    }
    /// Commits starts of `workflow` numbered on its counts as they are at the commit, which
    /// the store holds against every other process sharing it from reading them to the
    /// commit (PostgreSQL: their rows locked in the commit's own transaction), so that starts
    /// on several nodes wait for each other's numbers rather than race for them. `number` is
    /// given the last instance number and, with `period`, that period's last `{seq}`, and
    /// returns the starts to commit, whose claims ([`Committed::numbers`]) follow those
    /// counts; they are committed as one batch and returned. None: nothing is written.
    ///
    /// The default is for a store only one process opens (the engine's own lock then keeps
    /// the counts): it reads them, records the claims with [`Store::set_last_number`] and
    /// [`Store::set_last_sequence`], and commits.
    fn commit_numbered(
        &self,
        workflow: &str,
        period: Option<&str>,
        number: &mut dyn FnMut(u64, Option<u64>) -> Vec<Committed>,
    ) -> Result<Vec<Committed>, StoreError> {
        let last = self.last_number(workflow)?;
        let last_seq = match period {
            Some(period) => Some(self.last_sequence(workflow, period)?),
            None => None,
        };
        let batch = number(last, last_seq);
        for claim in batch.iter().filter_map(|step| step.numbers.as_ref()) {
            self.set_last_number(&claim.workflow, claim.n)?;
            if let Some((period, seq)) = &claim.sequence {
                self.set_last_sequence(&claim.workflow, period, *seq)?;
            }
        }
        self.commit(&batch)?;
        Ok(batch)
    }
    /// The last `{seq}` of `workflow`'s readable numbers in `period` (a year, or `""` for a
    /// count that never restarts); 0 before the first.
    fn last_sequence(&self, workflow: &str, period: &str) -> Result<u64, StoreError>;
    /// Records that `seq` was given in `period`, like [`Store::set_last_number`].
    fn set_last_sequence(&self, workflow: &str, period: &str, seq: u64) -> Result<(), StoreError>;
    /// The instances whose readable number is `number`, in id order (one, unless two
    /// workflows share a format).
    fn find_number(&self, number: &str) -> Result<Vec<String>, StoreError>;
    /// Records a console session under `key` (the SHA-256 of its cookie), replacing any
    /// record of that key; durable when it returns.
    fn save_session(&self, key: &str, session: &StoredSession) -> Result<(), StoreError>;
    /// The session recorded under `key`, ended or not (the caller judges its age).
    fn session(&self, key: &str) -> Result<Option<StoredSession>, StoreError>;
    /// Forgets the session under `key` (signing out), durably; no error if there is none.
    fn delete_session(&self, key: &str) -> Result<(), StoreError>;
    /// Forgets every session last used before `unused_since`; returns how many.
    fn prune_sessions(
        &self,
        unused_since: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64, StoreError>;
    /// Every schedule mark (`workflow/schedule` and the occurrence), for copying a store.
    fn schedule_marks(&self) -> Result<Vec<(String, chrono::DateTime<chrono::Utc>)>, StoreError>;
    /// Every recorded session with its key, ended or not, for copying a store (ended ones are
    /// pruned as sessions open, so there are few).
    fn sessions(&self) -> Result<Vec<(String, StoredSession)>, StoreError>;
    /// Stores every definition version of a set and makes `set` the deployed set, as one
    /// change: a failure leaves the set deployed before (versions already stored are kept,
    /// being content-addressed and harmless). Nodes following the store are told.
    fn deploy(&self, definitions: &[StoredDefinition], set: &DeployedSet)
    -> Result<(), StoreError>;
    /// The deployed set, if one was ever deployed.
    fn deployed(&self) -> Result<Option<DeployedSet>, StoreError>;
    /// Only the deployed set's id: what a node polls to see whether a new set was deployed.
    fn deployed_id(&self) -> Result<Option<String>, StoreError>;
    /// A channel that receives a message soon after any process deploys a set to this store,
    /// when the backend can tell (PostgreSQL's LISTEN/NOTIFY); `None` when it cannot, and the
    /// caller polls [`Store::deployed_id`]. The channel closes if the notifications stop (a
    /// lost connection): polling carries on.
    fn deploy_notifications(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<()>> {
        None
    }
    /// Writes derived records for everything committed so far.
    fn checkpoint(&self) -> Result<(), StoreError>;
    /// Every history record in key order (instance id, then sequence number), read lazily, so
    /// that an audit walks a store of any size in constant memory.
    fn scan_log(&self) -> Scan<'_, LogRecord>;
    /// Every written snapshot in id order (call [`Store::checkpoint`] first to include the
    /// latest).
    fn scan_snapshots(&self) -> Scan<'_, SnapshotRecord>;
    /// Every stored definition version, by hash.
    fn scan_definitions(&self) -> Scan<'_, DefinitionRecord>;
    /// Checks the derived records against the written snapshots and the log, and reports
    /// every disagreement (call [`Store::checkpoint`] first).
    fn check_derived(&self, report: &mut dyn FnMut(DerivedProblem)) -> Result<(), StoreError>;
    /// Instances whose derived records were rebuilt from the log when the store opened: the
    /// engine finishes their follow-up work (children to start or notify).
    fn recovered(&self) -> Vec<String>;

    /// Routes up to `limit` committed outbox records ([`outbox`]), each instance's in seq
    /// order: in one transaction, gives each step the next feed position, stores what `route`
    /// makes of it (deliveries due at `at`, inbox items), and removes the record. `route` is
    /// given the step's entry as stored; a record whose entry is not in the log (left by a
    /// crash between the two writes of a commit that was never acknowledged) is removed unrouted.
    /// Records routed by another process at the same time are skipped. Returns how many steps
    /// were routed.
    fn route_outbox(
        &self,
        limit: usize,
        at: chrono::DateTime<chrono::Utc>,
        route: &(dyn Fn(&PendingStep, &Entry) -> Routed + Sync),
    ) -> Result<usize, StoreError>;
    /// Deliveries due at `now`, at most `limit`, claimed for `lease` (as
    /// [`Store::claim_due_timers`] claims timers): of each (channel, instance), only the first
    /// in (seq, n) order, and none while that one is claimed, so that a channel receives an
    /// instance's messages in order.
    fn due_deliveries(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        limit: usize,
        lease: std::time::Duration,
    ) -> Result<Vec<Delivery>, StoreError>;
    /// Records that a delivery arrived: it leaves the queue, durably.
    fn delivery_done(&self, key: &DeliveryKey) -> Result<(), StoreError>;
    /// Records a failed attempt: one more attempt and `error`; tried again at `retry_at`, or,
    /// when `None`, moved to the dead letters (its `next_at` then says when).
    fn delivery_failed(
        &self,
        key: &DeliveryKey,
        error: &str,
        retry_at: Option<chrono::DateTime<chrono::Utc>>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError>;
    /// Dead letters in key order, at most `limit`.
    fn dead_letters(&self, limit: usize) -> Result<Vec<Delivery>, StoreError>;
    /// Puts a dead letter (or, with `None`, every one) back in the queue, due at `at`, with
    /// its attempts counted from zero; returns how many.
    fn revive(
        &self,
        key: Option<&DeliveryKey>,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64, StoreError>;
    /// The feed after position `after`, in order, at most `limit` steps.
    fn feed(&self, after: u64, limit: usize) -> Result<Vec<FeedItem>, StoreError>;
    /// The newest `limit` notices for any of `recipients` (`role:..`, `user:..`), newest first,
    /// each once (a notice for two of them is one item, of the first recipient).
    fn inbox(&self, recipients: &[String], limit: usize) -> Result<Vec<InboxItem>, StoreError>;
    /// Records that `user` has read the notices `keys`.
    fn mark_read(&self, user: &str, keys: &[String]) -> Result<(), StoreError>;
    /// Which of `keys` `user` has read.
    fn read_marks(&self, user: &str, keys: &[String]) -> Result<Vec<String>, StoreError>;
    /// How the outbox stands.
    fn outbox_counts(&self) -> Result<OutboxCounts, StoreError>;
}
