//! The embedded store on sled 0.34.
//!
//! A step costs one `insert` into `log` (and, the first time an instance changes after a
//! checkpoint, one small `dirty` marker written just before it), then one `flush` shared by
//! every step in the batch. Measured on sled 0.34.7, a 2-key batch or a 2-tree transaction
//! costs 10-15x a single insert, so derived records are not written per step: the snapshots
//! of changed instances are kept in memory (`overlay`) and written with their indexes at the
//! next checkpoint. sled has one log for all trees and recovers a prefix of it, so after a
//! crash every `log` entry present has its `dirty` marker too, and [`SledStore::open`] replays
//! the log tail of each marked instance onto its last written snapshot.

use super::{Committed, Query, QueuedTimer, Store, StoreError, StoredDefinition};
use crate::machine::{Entry, Instance};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

const FORMAT: &[u8] = b"sopflow-store-v1";

/// How a [`SledStore`] behaves.
#[derive(Debug, Clone)]
pub struct Options {
    /// Create the folder if it does not exist.
    pub create: bool,
    /// Checkpoint once this many instances have changed since the last one.
    pub checkpoint_every: usize,
    /// Flush before `commit` returns. Only the crash test's negative control turns this off,
    /// to show that the test catches a store that acknowledges too early.
    #[doc(hidden)]
    pub flush: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            create: true,
            checkpoint_every: 4096,
            flush: true,
        }
    }
}

/// Snapshots and idempotency keys committed since the last checkpoint.
#[derive(Default)]
struct Overlay {
    snapshots: HashMap<String, Instance>,
    keys: HashMap<String, (String, u64)>,
}

/// The sled-backed [`Store`].
pub struct SledStore {
    path: PathBuf,
    options: Options,
    db: sled::Db,
    log: sled::Tree,
    instances: sled::Tree,
    by_workflow: sled::Tree,
    by_state: sled::Tree,
    by_business_key: sled::Tree,
    idempotency: sled::Tree,
    timers: sled::Tree,
    definitions: sled::Tree,
    dirty: sled::Tree,
    overlay: RwLock<Overlay>,
    /// Held by whoever writes (commits and checkpoints), so that a checkpoint never removes
    /// the marker of a step committed while it ran.
    writer: Mutex<()>,
    recovered: Vec<String>,
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore")
            .field("path", &self.path)
            .finish()
    }
}

impl SledStore {
    /// Opens (or creates) the store in `path` and rebuilds what a crash may have left behind.
    pub fn open(path: &Path, options: Options) -> Result<SledStore, StoreError> {
        let shown = path.display().to_string();
        let exists = path.exists();
        if !exists && !options.create {
            return Err(StoreError::Missing { path: shown });
        }
        if exists && !path.is_dir() {
            return Err(StoreError::NotAStore {
                path: shown,
                detail: "it is a file, not a folder".into(),
            });
        }
        let fresh = !exists
            || std::fs::read_dir(path)
                .map(|mut d| d.next().is_none())
                .unwrap_or(false);
        if !fresh && !path.join("conf").exists() && !path.join("db").exists() {
            return Err(StoreError::NotAStore {
                path: shown,
                detail: "it holds other files".into(),
            });
        }
        let db = sled::Config::new()
            .path(path)
            .open()
            .map_err(|e| open_error(&shown, e))?;
        let format = db.get(b"format").map_err(|e| open_error(&shown, e))?;
        match format {
            Some(f) if f.as_ref() == FORMAT => {}
            Some(other) => {
                return Err(StoreError::NotAStore {
                    path: shown,
                    detail: format!("format `{}`", String::from_utf8_lossy(&other)),
                });
            }
            None => {
                if !fresh && db.tree_names().len() > 1 {
                    return Err(StoreError::NotAStore {
                        path: shown,
                        detail: "a sled database of another program".into(),
                    });
                }
                db.insert(b"format", FORMAT)
                    .map_err(|e| open_error(&shown, e))?;
                db.flush().map_err(|e| open_error(&shown, e))?;
            }
        }
        let tree = |name: &str| db.open_tree(name).map_err(|e| open_error(&shown, e));
        let mut store = SledStore {
            log: tree("log")?,
            instances: tree("instances")?,
            by_workflow: tree("by_workflow")?,
            by_state: tree("by_state")?,
            by_business_key: tree("by_business_key")?,
            idempotency: tree("idempotency")?,
            timers: tree("timers")?,
            definitions: tree("definitions")?,
            dirty: tree("dirty")?,
            db,
            path: path.to_path_buf(),
            options,
            overlay: RwLock::new(Overlay::default()),
            writer: Mutex::new(()),
            recovered: Vec::new(),
        };
        store.recover()?;
        Ok(store)
    }

    /// The folder the store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replays the log tail of every instance marked dirty onto its last written snapshot.
    fn recover(&mut self) -> Result<(), StoreError> {
        let mut overlay = Overlay::default();
        for item in self.dirty.iter() {
            let (key, _) = item.map_err(io)?;
            let id = String::from_utf8_lossy(&key).into_owned();
            let base = self.read_snapshot(&id)?;
            let from = base.as_ref().map_or(0, |s| s.seq + 1);
            let mut snapshot = base;
            for entry in self.entries_from(&id, from)? {
                match &mut snapshot {
                    None => snapshot = Some(Instance::begin(&entry)?),
                    Some(s) => s.apply(&entry)?,
                }
                if let Some(key) = &entry.idempotency_key {
                    overlay.keys.insert(key.clone(), (id.clone(), entry.seq));
                }
            }
            if let Some(snapshot) = snapshot {
                overlay.snapshots.insert(id.clone(), snapshot);
                self.recovered.push(id);
            }
        }
        self.overlay = RwLock::new(overlay);
        Ok(())
    }

    fn read_snapshot(&self, id: &str) -> Result<Option<Instance>, StoreError> {
        match self.instances.get(id.as_bytes()).map_err(io)? {
            Some(bytes) => Ok(Some(decode(id, &bytes)?)),
            None => Ok(None),
        }
    }

    fn entries_from(&self, id: &str, from: u64) -> Result<Vec<Entry>, StoreError> {
        let start = log_key(id, from);
        let end = log_key(id, u64::MAX);
        self.log
            .range(start..=end)
            .map(|item| {
                let (key, value) = item.map_err(io)?;
                decode(&String::from_utf8_lossy(&key), &value)
            })
            .collect()
    }
}

impl Store for SledStore {
    fn commit(&self, batch: &[Committed]) -> Result<(), StoreError> {
        let writing = self.writer.lock().map_err(|_| poisoned())?;
        {
            let overlay = self.overlay.read().map_err(|_| poisoned())?;
            let mut marked: Vec<&str> = Vec::new();
            for step in batch {
                let id = step.entry.instance.as_str();
                if !overlay.snapshots.contains_key(id) && !marked.contains(&id) {
                    self.dirty.insert(id.as_bytes(), &[]).map_err(io)?;
                    marked.push(id);
                }
                let bytes =
                    serde_json::to_vec(&step.entry).map_err(|e| StoreError::Io(e.to_string()))?;
                self.log
                    .insert(log_key(id, step.entry.seq), bytes)
                    .map_err(io)?;
            }
        }
        if self.options.flush {
            self.db.flush().map_err(io)?;
        }
        let changed = {
            let mut overlay = self.overlay.write().map_err(|_| poisoned())?;
            for step in batch {
                if let Some(key) = &step.entry.idempotency_key {
                    overlay
                        .keys
                        .insert(key.clone(), (step.entry.instance.clone(), step.entry.seq));
                }
                overlay
                    .snapshots
                    .insert(step.entry.instance.clone(), step.snapshot.clone());
            }
            overlay.snapshots.len()
        };
        drop(writing);
        if changed >= self.options.checkpoint_every {
            self.write_checkpoint()?;
        }
        Ok(())
    }

    fn instance(&self, id: &str) -> Result<Option<Instance>, StoreError> {
        if let Some(snapshot) = self
            .overlay
            .read()
            .map_err(|_| poisoned())?
            .snapshots
            .get(id)
        {
            return Ok(Some(snapshot.clone()));
        }
        self.read_snapshot(id)
    }

    fn history(&self, id: &str) -> Result<Vec<Entry>, StoreError> {
        self.entries_from(id, 0)
    }

    fn entry(&self, id: &str, seq: u64) -> Result<Option<Entry>, StoreError> {
        match self.log.get(log_key(id, seq)).map_err(io)? {
            Some(bytes) => Ok(Some(decode(id, &bytes)?)),
            None => Ok(None),
        }
    }

    fn find(&self, query: &Query) -> Result<Vec<Instance>, StoreError> {
        self.checkpoint()?;
        let (tree, prefix) = match (&query.workflow, &query.state, &query.business_key) {
            (_, _, Some(key)) => (&self.by_business_key, join(&[key, ""])),
            (Some(w), Some(s), None) => (&self.by_state, join(&[s, w, ""])),
            (None, Some(s), None) => (&self.by_state, join(&[s, ""])),
            (Some(w), None, None) => (&self.by_workflow, join(&[w, ""])),
            (None, None, None) => (&self.instances, Vec::new()),
        };
        let limit = query.limit.unwrap_or(usize::MAX);
        let mut out = Vec::new();
        for item in tree.scan_prefix(&prefix) {
            if out.len() >= limit {
                break;
            }
            let (key, _) = item.map_err(io)?;
            let id = match key.iter().rposition(|b| *b == 0) {
                Some(at) => String::from_utf8_lossy(&key[at + 1..]).into_owned(),
                None => String::from_utf8_lossy(&key).into_owned(),
            };
            let Some(instance) = self.read_snapshot(&id)? else {
                continue;
            };
            let matches = query
                .workflow
                .as_ref()
                .is_none_or(|w| *w == instance.workflow)
                && query.state.as_ref().is_none_or(|s| *s == instance.state)
                && query
                    .business_key
                    .as_ref()
                    .is_none_or(|k| instance.business_key.as_ref() == Some(k));
            if matches {
                out.push(instance);
            }
        }
        Ok(out)
    }

    fn idempotent(&self, key: &str) -> Result<Option<(String, u64)>, StoreError> {
        if let Some(found) = self.overlay.read().map_err(|_| poisoned())?.keys.get(key) {
            return Ok(Some(found.clone()));
        }
        match self.idempotency.get(key.as_bytes()).map_err(io)? {
            Some(bytes) => {
                let (id, seq) = bytes.split_at(bytes.len().saturating_sub(8));
                let seq =
                    u64::from_be_bytes(seq.try_into().map_err(|_| StoreError::BadRecord {
                        key: key.to_string(),
                        detail: "short idempotency record".into(),
                    })?);
                let id = String::from_utf8_lossy(id.strip_suffix(&[0]).unwrap_or(id)).into_owned();
                Ok(Some((id, seq)))
            }
            None => Ok(None),
        }
    }

    fn due_timers(
        &self,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<QueuedTimer>, StoreError> {
        self.checkpoint()?;
        let end = timer_time(until).wrapping_add(1).to_be_bytes();
        let mut out = Vec::new();
        for item in self.timers.range(..end) {
            if out.len() >= limit {
                break;
            }
            let (key, value) = item.map_err(io)?;
            if key.len() < 9 {
                continue;
            }
            let millis = i64::from_be_bytes(key[..8].try_into().unwrap_or([0; 8])) ^ i64::MIN;
            if millis > until.timestamp_millis() {
                break;
            }
            let rest = String::from_utf8_lossy(&key[8..]).into_owned();
            let (instance, timer) = rest.split_once('\0').unwrap_or((&rest, ""));
            out.push(QueuedTimer {
                due: DateTime::from_timestamp_millis(millis).unwrap_or(until),
                instance: instance.to_string(),
                timer: timer.to_string(),
                event: String::from_utf8_lossy(&value).into_owned(),
            });
        }
        Ok(out)
    }

    fn save_definition(&self, definition: &StoredDefinition) -> Result<(), StoreError> {
        if self
            .definitions
            .contains_key(definition.hash.as_bytes())
            .map_err(io)?
        {
            return Ok(());
        }
        let bytes = serde_json::to_vec(definition).map_err(|e| StoreError::Io(e.to_string()))?;
        self.definitions
            .insert(definition.hash.as_bytes(), bytes)
            .map_err(io)?;
        self.db.flush().map_err(io)?;
        Ok(())
    }

    fn definition(&self, hash: &str) -> Result<Option<StoredDefinition>, StoreError> {
        match self.definitions.get(hash.as_bytes()).map_err(io)? {
            Some(bytes) => Ok(Some(decode(hash, &bytes)?)),
            None => Ok(None),
        }
    }

    fn next_number(&self) -> Result<u64, StoreError> {
        self.db.generate_id().map(|n| n + 1).map_err(io)
    }

    fn checkpoint(&self) -> Result<(), StoreError> {
        if self
            .overlay
            .read()
            .map_err(|_| poisoned())?
            .snapshots
            .is_empty()
        {
            return Ok(());
        }
        self.write_checkpoint()
    }

    fn recovered(&self) -> Vec<String> {
        self.recovered.clone()
    }
}

impl SledStore {
    fn write_checkpoint(&self) -> Result<(), StoreError> {
        let _writing = self.writer.lock().map_err(|_| poisoned())?;
        let (snapshots, keys): (Vec<Instance>, Vec<(String, (String, u64))>) = {
            let overlay = self.overlay.read().map_err(|_| poisoned())?;
            (
                overlay.snapshots.values().cloned().collect(),
                overlay
                    .keys
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            )
        };
        for snapshot in &snapshots {
            if let Some(old) = self.read_snapshot(&snapshot.id)? {
                self.by_state
                    .remove(join(&[&old.state, &old.workflow, &old.id]))
                    .map_err(io)?;
                for timer in &old.timers {
                    self.timers
                        .remove(timer_key(timer.due, &old.id, &timer.id))
                        .map_err(io)?;
                }
            }
            let bytes = serde_json::to_vec(snapshot).map_err(|e| StoreError::Io(e.to_string()))?;
            self.instances
                .insert(snapshot.id.as_bytes(), bytes)
                .map_err(io)?;
            self.by_workflow
                .insert(join(&[&snapshot.workflow, &snapshot.id]), &[])
                .map_err(io)?;
            self.by_state
                .insert(
                    join(&[&snapshot.state, &snapshot.workflow, &snapshot.id]),
                    &[],
                )
                .map_err(io)?;
            if let Some(key) = &snapshot.business_key {
                self.by_business_key
                    .insert(join(&[key, &snapshot.id]), &[])
                    .map_err(io)?;
            }
            for timer in &snapshot.timers {
                self.timers
                    .insert(
                        timer_key(timer.due, &snapshot.id, &timer.id),
                        timer.event.as_bytes(),
                    )
                    .map_err(io)?;
            }
        }
        for (key, (id, seq)) in &keys {
            let mut value = id.as_bytes().to_vec();
            value.push(0);
            value.extend_from_slice(&seq.to_be_bytes());
            self.idempotency.insert(key.as_bytes(), value).map_err(io)?;
        }
        self.db.flush().map_err(io)?;
        for snapshot in &snapshots {
            self.dirty.remove(snapshot.id.as_bytes()).map_err(io)?;
        }
        let mut overlay = self.overlay.write().map_err(|_| poisoned())?;
        overlay.snapshots.clear();
        overlay.keys.clear();
        Ok(())
    }
}

impl Drop for SledStore {
    fn drop(&mut self) {
        // Leaving derived records behind is safe (they are rebuilt on open); this only makes
        // the next open faster.
        let _ = self.checkpoint();
    }
}

fn log_key(id: &str, seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(id.len() + 9);
    key.extend_from_slice(id.as_bytes());
    key.push(0);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// Keys joined by NUL, which no identifier contains.
fn join(parts: &[&str]) -> Vec<u8> {
    parts.join("\0").into_bytes()
}

/// Milliseconds with the sign bit flipped, so that big-endian bytes sort by time.
fn timer_time(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis() ^ i64::MIN
}

fn timer_key(due: DateTime<Utc>, instance: &str, timer: &str) -> Vec<u8> {
    let mut key = timer_time(due).to_be_bytes().to_vec();
    key.extend_from_slice(instance.as_bytes());
    key.push(0);
    key.extend_from_slice(timer.as_bytes());
    key
}

fn decode<T: serde::de::DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::BadRecord {
        key: key.replace('\0', "/"),
        detail: e.to_string(),
    })
}

fn io(err: sled::Error) -> StoreError {
    StoreError::Io(err.to_string())
}

fn poisoned() -> StoreError {
    StoreError::Io("a thread panicked while holding the store's lock".into())
}

fn open_error(path: &str, err: sled::Error) -> StoreError {
    match err {
        sled::Error::Io(ref e)
            if e.kind() == std::io::ErrorKind::WouldBlock || e.to_string().contains("lock") =>
        {
            StoreError::Locked {
                path: path.to_string(),
            }
        }
        sled::Error::Corruption { .. } | sled::Error::ReportableBug(_) => StoreError::Corrupt {
            path: path.to_string(),
            detail: err.to_string(),
        },
        sled::Error::Unsupported(detail) => StoreError::NotAStore {
            path: path.to_string(),
            detail,
        },
        other => StoreError::Io(other.to_string()),
    }
}
