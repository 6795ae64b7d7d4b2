//! The store: where histories, snapshots and definition versions are kept.
//!
//! The history is the source of truth. Everything else the store keeps (instance snapshots,
//! the timer queue, the indexes by workflow, state, business key, readable number and
//! idempotency key) is
//! derived from it and can be rebuilt from it. [`Store`] is small on purpose, so that another
//! backend can take sled's place; [`SledStore`] is the embedded one.

pub mod sled_store;

pub use sled_store::SledStore;

use crate::machine::{ChainError, Entry, Instance};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A step to commit: its history entry, the entry as stored, and the snapshot it leads to.
#[derive(Debug, Clone)]
pub struct Committed {
    pub entry: Entry,
    /// The entry's JSON, encoded by the caller so that the commit thread only writes.
    pub encoded: Vec<u8>,
    pub snapshot: Instance,
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
        })
    }
}

/// Which instances to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pub workflow: Option<String>,
    pub state: Option<String>,
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
    pub hash: String,
    pub workflow: String,
    /// The file it was read from, for messages.
    pub file: String,
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
    pub due: chrono::DateTime<chrono::Utc>,
    pub instance: String,
    pub timer: String,
    pub event: String,
}

/// One record of the history log as stored, for audits: where it is kept (the instance and
/// sequence number of its key) and what it holds.
#[derive(Debug, Clone)]
pub struct LogRecord {
    pub instance: String,
    pub seq: u64,
    /// The entry, or why the stored bytes are not one.
    pub entry: Result<Entry, String>,
}

/// One stored snapshot, for audits.
#[derive(Debug, Clone)]
pub struct SnapshotRecord {
    pub id: String,
    /// The snapshot, or why the stored bytes are not one.
    pub instance: Result<Instance, String>,
}

/// One stored definition version, for audits.
#[derive(Debug, Clone)]
pub struct DefinitionRecord {
    /// The hash it is stored under.
    pub hash: String,
    pub definition: Result<StoredDefinition, String>,
}

/// A derived record (index, timer queue, idempotency key) that disagrees with the snapshots
/// or the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DerivedProblem {
    /// Which records: `index by_state`, `timer queue`, `idempotency keys`...
    pub records: String,
    pub instance: String,
    pub detail: String,
}

/// A lazy walk over stored records.
pub type Scan<'a, T> = Box<dyn Iterator<Item = Result<T, StoreError>> + Send + 'a>;

/// Why the store failed. Clonable, so that one failure of a group commit reaches every caller
/// whose steps were in the batch as the same typed error (a backend's error with a source that
/// is not `Clone` keeps it behind an `Arc`).
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the data folder {path} is in use by another sopflow process; stop it, or reach it over its server, or use another --data-dir"
    )]
    Locked { path: String },
    #[error("no sopflow data at {path}: start an instance first, or pass the right --data-dir")]
    Missing { path: String },
    #[error("{path} is not a sopflow data folder ({detail}); pass the right --data-dir")]
    NotAStore { path: String, detail: String },
    #[error(
        "the data folder {path} is damaged ({detail}); restore it from a backup, and run `sopflow audit verify` on the copy"
    )]
    Corrupt { path: String, detail: String },
    #[error("stored record {key} cannot be read: {detail}")]
    BadRecord { key: String, detail: String },
    /// A record could not be encoded to be stored (nothing was written).
    #[error("record {key} cannot be encoded to be stored, so nothing was written: {detail}")]
    Encode { key: String, detail: String },
    #[error("the history does not chain: {0}")]
    Chain(#[from] ChainError),
    #[error("storage error: {0}")]
    Io(String),
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
    /// The occurrence a schedule (`workflow/schedule`) last fired for, or first saw.
    fn schedule_mark(&self, key: &str)
    -> Result<Option<chrono::DateTime<chrono::Utc>>, StoreError>;
    /// Records that a schedule fired for (or first saw) the occurrence `at`, durably.
    fn set_schedule_mark(
        &self,
        key: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError>;
    /// Stores a definition version under its hash (no-op if present).
    fn save_definition(&self, definition: &StoredDefinition) -> Result<(), StoreError>;
    fn definition(&self, hash: &str) -> Result<Option<StoredDefinition>, StoreError>;
    /// The last number given to an instance of `workflow` (0 before the first), so that ids
    /// run `workflow-1`, `workflow-2`, ... with no gaps, across restarts. In a store whose
    /// instances were numbered before numbers were kept, the highest number in the log.
    fn last_number(&self, workflow: &str) -> Result<u64, StoreError>;
    /// Records that `number` was given to an instance of `workflow`; durable with the next
    /// flush, which is the one that makes that instance's first entry durable.
    fn set_last_number(&self, workflow: &str, number: u64) -> Result<(), StoreError>;
    /// The last `{seq}` of `workflow`'s readable numbers in `period` (a year, or `""` for a
    /// count that never restarts); 0 before the first.
    fn last_sequence(&self, workflow: &str, period: &str) -> Result<u64, StoreError>;
    /// Records that `seq` was given in `period`, like [`Store::set_last_number`].
    fn set_last_sequence(&self, workflow: &str, period: &str, seq: u64) -> Result<(), StoreError>;
    /// The instances whose readable number is `number`, in id order (one, unless two
    /// workflows share a format).
    fn find_number(&self, number: &str) -> Result<Vec<String>, StoreError>;
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
}
