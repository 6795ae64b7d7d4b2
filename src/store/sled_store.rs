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

use super::{
    Committed, DefinitionRecord, DeployedSet, DerivedProblem, LogRecord, Query, QueuedTimer, Scan,
    SnapshotRecord, Store, StoreError, StoredDefinition, StoredSession,
};
use crate::machine::{Entry, Instance};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLock};

const FORMAT: &[u8] = b"sopflow-store-v1";

#[path = "sled_shared.rs"]
mod shared;

#[path = "sled_outbox.rs"]
mod outbox;

/// The shape of the stored snapshots. Snapshots are derived from the log, so when an engine
/// derives more from it (2: who started an instance and the roles that acted on it), every
/// snapshot is rebuilt from the log once, on the first open.
const SNAPSHOT_FORMAT: &[u8] = b"2";
const SNAPSHOT_FORMAT_KEY: &[u8] = b"snapshot_format";

/// The file that marks a folder as a sopflow store.
const MARKER: &str = "sopflow-store";

/// The file a process holding the store keeps locked.
const LOCK: &str = "sopflow-lock";

/// How a store opens and behaves ([`open`](super::open)); a store ignores what does not concern
/// it (PostgreSQL: all but `create`).
#[derive(Debug, Clone)]
pub struct Options {
    /// Create the folder if it does not exist.
    pub create: bool,
    /// Checkpoint once this many instances have changed since the last one.
    pub checkpoint_every: usize,
    /// The most memory sled may use to cache pages, in bytes. sled's own default is 1 GiB;
    /// the store reads by key and never scans, so a smaller cache costs little.
    pub cache_bytes: u64,
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
            cache_bytes: 128 * 1024 * 1024,
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
    /// Readable number, NUL, instance id.
    by_number: sled::Tree,
    idempotency: sled::Tree,
    timers: sled::Tree,
    /// Schedule key -> the occurrence it last fired for (millis, big-endian).
    schedules: sled::Tree,
    /// Workflow id -> the last number given to one of its instances (big-endian); workflow
    /// id, NUL, period -> the last `{seq}` of its readable numbers in that period.
    numbers: sled::Tree,
    definitions: sled::Tree,
    dirty: sled::Tree,
    /// The outbox and what routing makes of it (`sled_outbox.rs`).
    outbox: sled::Tree,
    feed: sled::Tree,
    deliveries: sled::Tree,
    dead: sled::Tree,
    inbox: sled::Tree,
    inbox_read: sled::Tree,
    outbox_state: outbox::Outbox,
    overlay: RwLock<Overlay>,
    /// Held by whoever writes to the log or checkpoints. Holds the instances whose `dirty`
    /// marker is written since the last checkpoint.
    writer: Mutex<HashSet<String>>,
    /// Instances with entries appended but not yet synced, by count: a checkpoint leaves them
    /// (and their markers) alone.
    pending: Mutex<HashMap<String, usize>>,
    /// Set when a write or flush failed: what is on disk is then unknown, and the store
    /// refuses further writes until it is reopened (which recovers from the log).
    failed: AtomicBool,
    /// Set by `sync` when enough instances changed; the next `append` checkpoints first.
    checkpoint_wanted: AtomicBool,
    recovered: Vec<String>,
    /// Held (locked) for as long as the store is open; declared last, so that it is released
    /// after sled has closed.
    _lock: std::fs::File,
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
        if exists && !path.is_dir() {
            return Err(StoreError::NotAStore {
                path: shown,
                detail: "it is a file, not a folder".into(),
            });
        }
        // The marker lives outside sled: sled opens a damaged log as an empty database, which
        // must not be mistaken for a new store. It is written when creation has finished,
        // before any step: a folder without it that holds nothing but our lock and sled's own
        // files is a creation that was interrupted (killed), and carries on as a new store.
        let marker = path.join(MARKER);
        let fresh = !exists
            || (!marker.exists()
                && std::fs::read_dir(path)
                    .map(|d| d.flatten().all(|e| is_creation_leftover(&e.file_name())))
                    .unwrap_or(false));
        if fresh && !options.create {
            return Err(StoreError::Missing { path: shown });
        }
        if !fresh && !marker.exists() {
            return Err(StoreError::NotAStore {
                path: shown,
                detail: format!("it has no `{MARKER}` file"),
            });
        }
        // Our own lock, taken before sled's: only the process holding it may tidy sled's files.
        std::fs::create_dir_all(path).map_err(|e| StoreError::Io(e.to_string()))?;
        let lock = take_lock(path, &shown)?;
        remove_unfinished_snapshots(path).map_err(|e| StoreError::Io(e.to_string()))?;
        let db = open_sled(path, &shown, options.cache_bytes)?;
        let format = db.get(b"format").map_err(|e| open_error(&shown, e))?;
        match format {
            Some(f) if f.as_ref() == FORMAT => {}
            Some(other) => {
                return Err(StoreError::NotAStore {
                    path: shown,
                    detail: format!("format `{}`", String::from_utf8_lossy(&other)),
                });
            }
            None if !fresh => {
                return Err(StoreError::Corrupt {
                    path: shown,
                    detail: "its records cannot be read back".into(),
                });
            }
            None => {
                db.insert(b"format", FORMAT)
                    .map_err(|e| open_error(&shown, e))?;
                db.flush().map_err(|e| open_error(&shown, e))?;
            }
        }
        if !marker.exists() {
            std::fs::write(&marker, FORMAT).map_err(|e| StoreError::Io(e.to_string()))?;
        }
        let tree = |name: &str| db.open_tree(name).map_err(|e| open_error(&shown, e));
        let mut store = SledStore {
            _lock: lock,
            log: tree("log")?,
            instances: tree("instances")?,
            by_workflow: tree("by_workflow")?,
            by_state: tree("by_state")?,
            by_business_key: tree("by_business_key")?,
            by_number: tree("by_number")?,
            idempotency: tree("idempotency")?,
            timers: tree("timers")?,
            schedules: tree("schedules")?,
            numbers: tree("numbers")?,
            definitions: tree("definitions")?,
            dirty: tree("dirty")?,
            outbox: tree("outbox")?,
            feed: tree("feed")?,
            deliveries: tree("deliveries")?,
            dead: tree("dead")?,
            inbox: tree("inbox")?,
            inbox_read: tree("inbox_read")?,
            outbox_state: outbox::Outbox::default(),
            db,
            path: path.to_path_buf(),
            options,
            overlay: RwLock::new(Overlay::default()),
            writer: Mutex::new(HashSet::new()),
            pending: Mutex::new(HashMap::new()),
            failed: AtomicBool::new(false),
            checkpoint_wanted: AtomicBool::new(false),
            recovered: Vec::new(),
        };
        store.upgrade_snapshots()?;
        store.recover()?;
        Ok(store)
    }

    /// The highest `n` of the instances `workflow-n` in the log, for a store written before
    /// numbers were kept per workflow (their numbers came from sled's id generator). One seek
    /// per instance, once per workflow: the number is kept from then on.
    fn highest_number_in_log(&self, workflow: &str) -> Result<u64, StoreError> {
        let prefix = format!("{workflow}-");
        let mut from = prefix.clone().into_bytes();
        let mut highest = 0;
        while let Some((key, _)) = self
            .log
            .range(from.clone()..)
            .next()
            .transpose()
            .map_err(io)?
        {
            if !key.starts_with(prefix.as_bytes()) {
                break;
            }
            let id_len = key.iter().position(|&b| b == 0).unwrap_or(key.len());
            let id = &key[..id_len];
            if let Some(n) = std::str::from_utf8(&id[prefix.len()..])
                .ok()
                .filter(|digits| digits.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|digits| digits.parse::<u64>().ok())
            {
                highest = highest.max(n);
            }
            // Past every entry of this instance: its id followed by a byte above the separator.
            from = id.to_vec();
            from.push(1);
        }
        Ok(highest)
    }

    /// Rebuilds every snapshot from the log when they were written in an older shape, a
    /// thousand at a time, then records the shape. Killed half-way, it starts over on the next
    /// open: a rebuilt snapshot is the same whichever time it is rebuilt.
    fn upgrade_snapshots(&self) -> Result<(), StoreError> {
        let current = self.db.get(SNAPSHOT_FORMAT_KEY).map_err(io)?;
        if current.as_deref() == Some(SNAPSHOT_FORMAT) {
            return Ok(());
        }
        let mut after: Option<sled::IVec> = None;
        loop {
            let range = match &after {
                Some(last) => self.instances.range::<&[u8], _>((
                    std::ops::Bound::Excluded(last.as_ref()),
                    std::ops::Bound::Unbounded,
                )),
                None => self.instances.iter(),
            };
            let ids: Vec<sled::IVec> = range
                .keys()
                .take(1024)
                .collect::<Result<_, _>>()
                .map_err(io)?;
            let Some(last) = ids.last().cloned() else {
                break;
            };
            for key in &ids {
                let id = String::from_utf8_lossy(key).into_owned();
                let entries = self.entries_from(&id, 0)?;
                if let Some(snapshot) = Instance::replay(&entries)? {
                    let bytes =
                        serde_json::to_vec(&snapshot).map_err(|e| StoreError::Io(e.to_string()))?;
                    self.instances.insert(key, bytes).map_err(io)?;
                }
            }
            after = Some(last);
        }
        self.db
            .insert(SNAPSHOT_FORMAT_KEY, SNAPSHOT_FORMAT)
            .map_err(io)?;
        self.db.flush().map_err(io)?;
        Ok(())
    }

    /// The folder the store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Puts the store in the state a failed write leaves it in: every later write is refused
    /// until it is reopened. For tests of what callers do when the store fails.
    #[cfg(test)]
    pub(crate) fn refuse_writes(&self) {
        self.failed.store(true, Ordering::Release);
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
            match snapshot {
                Some(snapshot) => {
                    overlay.snapshots.insert(id.clone(), snapshot);
                    self.recovered.push(id);
                }
                // The marker was written but the instance's first entry was not.
                None => {
                    self.dirty.remove(&key).map_err(io)?;
                }
            }
        }
        self.writer = Mutex::new(overlay.snapshots.keys().cloned().collect());
        self.overlay = RwLock::new(overlay);
        Ok(())
    }

    fn read_snapshot(&self, id: &str) -> Result<Option<Instance>, StoreError> {
        match self.instances.get(id.as_bytes()).map_err(io)? {
            Some(bytes) => Ok(Some(decode(id, &bytes)?)),
            None => Ok(None),
        }
    }

    /// The entries of exactly `id` from `from` on. The range of `id`'s keys also holds the
    /// keys of any id that starts with `id` and a NUL (`x\0\0...` sorts between `x\0` + 0 and
    /// `x\0` + `u64::MAX`), so every key is split and its id compared whole.
    fn entries_from(&self, id: &str, from: u64) -> Result<Vec<Entry>, StoreError> {
        let start = log_key(id, from);
        let end = log_key(id, u64::MAX);
        let mut entries = Vec::new();
        for item in self.log.range(start..=end) {
            let (key, value) = item.map_err(io)?;
            if key.len() != id.len() + 9 || !key.starts_with(id.as_bytes()) {
                continue;
            }
            entries.push(decode(&String::from_utf8_lossy(&key), &value)?);
        }
        Ok(entries)
    }
}

impl Store for SledStore {
    fn append(&self, batch: &[Committed]) -> Result<(), StoreError> {
        if self.failed.load(Ordering::Acquire) {
            return Err(failed());
        }
        let mut marked = self.writer.lock().map_err(|_| poisoned())?;
        if self.checkpoint_wanted.swap(false, Ordering::AcqRel) {
            self.checkpoint_locked(&mut marked)?;
        }
        {
            let mut pending = self.pending.lock().map_err(|_| poisoned())?;
            for step in batch {
                *pending.entry(step.entry.instance.to_string()).or_default() += 1;
            }
        }
        let written = (|| {
            for step in batch {
                let id = step.entry.instance.as_str();
                if !marked.contains(id) {
                    self.dirty.insert(id.as_bytes(), &[]).map_err(io)?;
                    marked.insert(id.to_string());
                }
                // Before the entry: sled recovers a prefix of its log, so an entry that
                // survives a crash has its outbox record too.
                if let Some(notices) = &step.outbox {
                    self.outbox
                        .insert(log_key(id, step.entry.seq), notices.as_slice())
                        .map_err(io)?;
                }
                self.log
                    .insert(log_key(id, step.entry.seq), step.encoded.as_slice())
                    .map_err(io)?;
            }
            Ok(())
        })();
        if written.is_err() {
            self.failed.store(true, Ordering::Release);
        }
        written
    }

    fn sync(&self, batch: &[Committed]) -> Result<(), StoreError> {
        if self.options.flush
            && let Err(err) = self.db.flush()
        {
            self.failed.store(true, Ordering::Release);
            return Err(io(err));
        }
        if self.failed.load(Ordering::Acquire) {
            return Err(failed());
        }
        let changed = {
            let mut overlay = self.overlay.write().map_err(|_| poisoned())?;
            for step in batch {
                if let Some(key) = &step.entry.idempotency_key {
                    overlay.keys.insert(
                        key.clone(),
                        (step.entry.instance.to_string(), step.entry.seq),
                    );
                }
                overlay
                    .snapshots
                    .insert(step.entry.instance.to_string(), step.snapshot.clone());
            }
            overlay.snapshots.len()
        };
        {
            let mut pending = self.pending.lock().map_err(|_| poisoned())?;
            for step in batch {
                if let Some(count) = pending.get_mut(step.entry.instance.as_str()) {
                    *count -= 1;
                    if *count == 0 {
                        pending.remove(step.entry.instance.as_str());
                    }
                }
            }
        }
        if changed >= self.options.checkpoint_every {
            self.checkpoint_wanted.store(true, Ordering::Release);
        }
        Ok(())
    }

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
            if query.matches(&instance) {
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

    fn schedule_mark(&self, key: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        match self.schedules.get(key.as_bytes()).map_err(io)? {
            Some(bytes) => {
                let millis = i64::from_be_bytes(bytes.as_ref().try_into().map_err(|_| {
                    StoreError::BadRecord {
                        key: format!("schedule {key}"),
                        detail: "not a time".into(),
                    }
                })?);
                Ok(DateTime::from_timestamp_millis(millis))
            }
            None => Ok(None),
        }
    }

    fn set_schedule_mark(&self, key: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        if self.failed.load(Ordering::Acquire) {
            return Err(failed());
        }
        self.schedules
            .insert(key.as_bytes(), &at.timestamp_millis().to_be_bytes())
            .map_err(io)?;
        self.db.flush().map_err(io)?;
        Ok(())
    }

    fn save_definition(&self, definition: &StoredDefinition) -> Result<(), StoreError> {
        if self.failed.load(Ordering::Acquire) {
            return Err(failed());
        }
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

    fn last_number(&self, workflow: &str) -> Result<u64, StoreError> {
        match self.numbers.get(workflow.as_bytes()).map_err(io)? {
            Some(bytes) => count(&bytes, &format!("numbers/{workflow}")),
            None => self.highest_number_in_log(workflow),
        }
    }

    fn set_last_number(&self, workflow: &str, number: u64) -> Result<(), StoreError> {
        if self.failed.load(Ordering::Acquire) {
            return Err(failed());
        }
        self.numbers
            .insert(workflow.as_bytes(), &number.to_be_bytes())
            .map(|_| ())
            .map_err(io)
    }

    fn last_sequence(&self, workflow: &str, period: &str) -> Result<u64, StoreError> {
        match self.numbers.get(join(&[workflow, period])).map_err(io)? {
            Some(bytes) => count(&bytes, &format!("numbers/{workflow}/{period}")),
            None => Ok(0),
        }
    }

    fn set_last_sequence(&self, workflow: &str, period: &str, seq: u64) -> Result<(), StoreError> {
        if self.failed.load(Ordering::Acquire) {
            return Err(failed());
        }
        self.numbers
            .insert(join(&[workflow, period]), &seq.to_be_bytes())
            .map(|_| ())
            .map_err(io)
    }

    fn find_number(&self, number: &str) -> Result<Vec<String>, StoreError> {
        // An instance's number never changes, so the index holds no stale record: what it
        // lacks is only in the snapshots not yet checkpointed.
        let mut ids: Vec<String> = self
            .overlay
            .read()
            .map_err(|_| poisoned())?
            .snapshots
            .values()
            .filter(|s| s.number.as_deref() == Some(number))
            .map(|s| s.id.to_string())
            .collect();
        let prefix = join(&[number, ""]);
        for item in self.by_number.scan_prefix(&prefix) {
            let (key, _) = item.map_err(io)?;
            ids.push(String::from_utf8_lossy(&key[prefix.len()..]).into_owned());
        }
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    fn schedule_marks(&self) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
        self.schedule_mark_records()
    }

    fn sessions(&self) -> Result<Vec<(String, StoredSession)>, StoreError> {
        self.session_records()
    }

    fn save_session(&self, key: &str, session: &StoredSession) -> Result<(), StoreError> {
        self.save_session_record(key, session)
    }

    fn session(&self, key: &str) -> Result<Option<StoredSession>, StoreError> {
        self.session_record(key)
    }

    fn delete_session(&self, key: &str) -> Result<(), StoreError> {
        self.delete_session_record(key)
    }

    fn prune_sessions(&self, unused_since: DateTime<Utc>) -> Result<u64, StoreError> {
        self.prune_session_records(unused_since)
    }

    fn deploy(
        &self,
        definitions: &[StoredDefinition],
        set: &DeployedSet,
    ) -> Result<(), StoreError> {
        self.deploy_set(definitions, set)
    }

    fn deployed(&self) -> Result<Option<DeployedSet>, StoreError> {
        self.deployed_set()
    }

    fn deployed_id(&self) -> Result<Option<String>, StoreError> {
        Ok(self.deployed_set()?.map(|set| set.id))
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
        let mut marked = self.writer.lock().map_err(|_| poisoned())?;
        self.checkpoint_locked(&mut marked)
    }

    fn recovered(&self) -> Vec<String> {
        self.recovered.clone()
    }

    fn scan_log(&self) -> Scan<'_, LogRecord> {
        Box::new(self.log.iter().map(|item| {
            let (key, value) = item.map_err(io)?;
            Ok(match split_log_key(&key) {
                Some((instance, seq)) => LogRecord {
                    entry: serde_json::from_slice(&value).map_err(|e| e.to_string()),
                    instance,
                    seq,
                },
                None => LogRecord {
                    instance: String::from_utf8_lossy(&key).into_owned(),
                    seq: u64::MAX,
                    entry: Err("the record's key is not an instance and a sequence number".into()),
                },
            })
        }))
    }

    fn scan_snapshots(&self) -> Scan<'_, SnapshotRecord> {
        Box::new(self.instances.iter().map(|item| {
            let (key, value) = item.map_err(io)?;
            Ok(SnapshotRecord {
                id: String::from_utf8_lossy(&key).into_owned(),
                instance: serde_json::from_slice(&value).map_err(|e| e.to_string()),
            })
        }))
    }

    fn scan_definitions(&self) -> Scan<'_, DefinitionRecord> {
        Box::new(self.definitions.iter().map(|item| {
            let (key, value) = item.map_err(io)?;
            Ok(DefinitionRecord {
                hash: String::from_utf8_lossy(&key).into_owned(),
                definition: serde_json::from_slice(&value).map_err(|e| e.to_string()),
            })
        }))
    }

    fn check_derived(&self, report: &mut dyn FnMut(DerivedProblem)) -> Result<(), StoreError> {
        let mut problem = |records: &str, instance: &str, detail: String| {
            report(DerivedProblem {
                records: records.to_string(),
                instance: instance.to_string(),
                detail,
            })
        };
        // Every snapshot is found by each index that should find it, and its timers queued.
        for item in self.instances.iter() {
            let (key, value) = item.map_err(io)?;
            let id = String::from_utf8_lossy(&key).into_owned();
            let Ok(snapshot) = serde_json::from_slice::<Instance>(&value) else {
                continue; // reported by the snapshot check
            };
            let has = |tree: &sled::Tree, key: Vec<u8>| tree.contains_key(key).map_err(io);
            if !has(&self.by_workflow, join(&[&snapshot.workflow, &id]))? {
                problem(
                    "index by_workflow",
                    &id,
                    format!("`{id}` is missing under workflow `{}`", snapshot.workflow),
                );
            }
            if !has(
                &self.by_state,
                join(&[&snapshot.state, &snapshot.workflow, &id]),
            )? {
                problem(
                    "index by_state",
                    &id,
                    format!("`{id}` is missing under state `{}`", snapshot.state),
                );
            }
            if let Some(business_key) = &snapshot.business_key
                && !has(&self.by_business_key, join(&[business_key, &id]))?
            {
                problem(
                    "index by_business_key",
                    &id,
                    format!("`{id}` is missing under business key `{business_key}`"),
                );
            }
            if let Some(number) = &snapshot.number
                && !has(&self.by_number, join(&[number, &id]))?
            {
                problem(
                    "index by_number",
                    &id,
                    format!("`{id}` is missing under number `{number}`"),
                );
            }
            for timer in &snapshot.timers {
                if !has(&self.timers, timer_key(timer.due, &id, &timer.id))? {
                    problem(
                        "timer queue",
                        &id,
                        format!(
                            "timer {} (`{}`, due {}) is not queued: it would never fire",
                            timer.id,
                            timer.event,
                            timer.due.to_rfc3339()
                        ),
                    );
                }
            }
        }
        // Every index record names an instance that is where the index says.
        let indexes: [(&str, &sled::Tree); 4] = [
            ("index by_workflow", &self.by_workflow),
            ("index by_state", &self.by_state),
            ("index by_business_key", &self.by_business_key),
            ("index by_number", &self.by_number),
        ];
        for (name, tree) in indexes {
            for item in tree.iter() {
                let (key, _) = item.map_err(io)?;
                let parts: Vec<String> = key
                    .split(|b| *b == 0)
                    .map(|p| String::from_utf8_lossy(p).into_owned())
                    .collect();
                let Some(id) = parts.last() else { continue };
                let Some(snapshot) = self.read_snapshot(id).ok().flatten() else {
                    problem(name, id, format!("names `{id}`, which has no snapshot"));
                    continue;
                };
                let agrees = match (name, parts.as_slice()) {
                    ("index by_workflow", [workflow, _]) => *workflow == snapshot.workflow,
                    ("index by_state", [state, workflow, _]) => {
                        *state == snapshot.state && *workflow == snapshot.workflow
                    }
                    ("index by_business_key", [business_key, _]) => {
                        snapshot.business_key.as_ref() == Some(business_key)
                    }
                    ("index by_number", [number, _]) => snapshot.number.as_ref() == Some(number),
                    _ => false,
                };
                if !agrees {
                    problem(
                        name,
                        id,
                        format!(
                            "the record `{}` disagrees with the snapshot (workflow `{}`, state `{}`)",
                            parts.join("/"),
                            snapshot.workflow,
                            snapshot.state
                        ),
                    );
                }
            }
        }
        // Every queued timer is pending in its instance.
        for item in self.timers.iter() {
            let (key, _) = item.map_err(io)?;
            if key.len() < 9 {
                problem("timer queue", "", "a record with a short key".into());
                continue;
            }
            let rest = String::from_utf8_lossy(&key[8..]).into_owned();
            let (id, timer) = rest.split_once('\0').unwrap_or((&rest, ""));
            let pending = self
                .read_snapshot(id)
                .ok()
                .flatten()
                .is_some_and(|s| s.timers.iter().any(|t| t.id == timer));
            if !pending {
                problem(
                    "timer queue",
                    id,
                    format!("timer {timer} is queued but not pending in the instance"),
                );
            }
        }
        // Every idempotency key points at an entry that carries it.
        for item in self.idempotency.iter() {
            let (key, value) = item.map_err(io)?;
            let key = String::from_utf8_lossy(&key).into_owned();
            let found = value.len().checked_sub(9).and_then(|at| {
                let id = String::from_utf8_lossy(&value[..at]).into_owned();
                let seq = u64::from_be_bytes(value[at + 1..].try_into().ok()?);
                Some((id, seq))
            });
            let Some((id, seq)) = found else {
                problem(
                    "idempotency keys",
                    "",
                    format!("the record of key `{key}` cannot be read"),
                );
                continue;
            };
            let carries = self
                .entry(&id, seq)
                .ok()
                .flatten()
                .is_some_and(|e| e.idempotency_key.as_deref() == Some(key.as_str()));
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
}

impl SledStore {
    /// Writes the snapshots and indexes of every changed instance that has no entry in
    /// flight, then removes their markers. The caller holds the writer lock, so no entry is
    /// appended meanwhile; entries in flight (appended, not yet synced) keep their instance
    /// dirty until a later checkpoint.
    fn checkpoint_locked(&self, marked: &mut HashSet<String>) -> Result<(), StoreError> {
        if self.failed.load(Ordering::Acquire) {
            return Err(failed());
        }
        let (snapshots, keys) = {
            let pending = self.pending.lock().map_err(|_| poisoned())?;
            let overlay = self.overlay.read().map_err(|_| poisoned())?;
            let snapshots: Vec<Instance> = overlay
                .snapshots
                .values()
                .filter(|s| !pending.contains_key(s.id.as_str()))
                .cloned()
                .collect();
            let keys: Vec<(String, (String, u64))> = overlay
                .keys
                .iter()
                .filter(|(_, (id, _))| !pending.contains_key(id))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            (snapshots, keys)
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
            if let Some(number) = &snapshot.number {
                self.by_number
                    .insert(join(&[number, &snapshot.id]), &[])
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
            marked.remove(snapshot.id.as_str());
        }
        let mut overlay = self.overlay.write().map_err(|_| poisoned())?;
        for snapshot in &snapshots {
            overlay.snapshots.remove(snapshot.id.as_str());
        }
        for (key, _) in &keys {
            overlay.keys.remove(key);
        }
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

/// Opens sled. With our own lock held, sled's lock can only be held by a store of this process
/// that is still closing (sled's background threads let go of it a moment after the last
/// handle is dropped), so a busy lock is retried for a short while.
pub(crate) fn open_sled(
    path: &Path,
    shown: &str,
    cache_bytes: u64,
) -> Result<sled::Db, StoreError> {
    let mut waited = std::time::Duration::ZERO;
    let step = std::time::Duration::from_millis(20);
    loop {
        match sled::Config::new()
            .path(path)
            .cache_capacity(cache_bytes)
            .open()
        {
            Ok(db) => return Ok(db),
            Err(err) => match open_error(shown, err) {
                StoreError::Locked { .. } if waited < std::time::Duration::from_secs(5) => {
                    std::thread::sleep(step);
                    waited += step;
                }
                other => return Err(other),
            },
        }
    }
}

/// Locks the store's folder for this process, or says who has it.
fn take_lock(path: &Path, shown: &str) -> Result<std::fs::File, StoreError> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path.join(LOCK))
        .map_err(|e| StoreError::Io(format!("{shown}: {e}")))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Locked {
            path: shown.to_string(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(StoreError::Io(format!("{shown}: {e}"))),
    }
}

/// Removes snapshot files sled began but did not finish.
///
/// sled 0.34.7 writes a snapshot as `snap.<lsn>.generating`, syncs it and renames it to
/// `snap.<lsn>`. A process killed before the rename leaves the `.generating` file behind, and
/// the next open takes it for the newest snapshot, fails its checksum and reports the whole
/// store as corrupt, although the last complete snapshot and the log are intact
/// (spacejam/sled#1527). An unfinished file is never needed: sled rebuilds from the last
/// complete snapshot and the log.
/// What a store's folder holds before its marker is written: our lock and sled's files.
fn is_creation_leftover(name: &std::ffi::OsStr) -> bool {
    let name = name.to_string_lossy();
    name == LOCK || name == "conf" || name == "db" || name == "blobs" || name.starts_with("snap.")
}

fn remove_unfinished_snapshots(path: &Path) -> std::io::Result<()> {
    let Ok(entries) = std::fs::read_dir(path) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.") && name.ends_with(".generating") {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

fn log_key(id: &str, seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(id.len() + 9);
    key.extend_from_slice(id.as_bytes());
    key.push(0);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// The instance and sequence number of a `log` key.
fn split_log_key(key: &[u8]) -> Option<(String, u64)> {
    let at = key.len().checked_sub(9)?;
    if key[at] != 0 {
        return None;
    }
    let seq = u64::from_be_bytes(key[at + 1..].try_into().ok()?);
    Some((String::from_utf8_lossy(&key[..at]).into_owned(), seq))
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

/// A count of the `numbers` tree: 8 bytes, big-endian.
fn count(bytes: &[u8], key: &str) -> Result<u64, StoreError> {
    let bytes: [u8; 8] = bytes.try_into().map_err(|_| StoreError::BadRecord {
        key: key.to_string(),
        detail: "a count is 8 bytes".into(),
    })?;
    Ok(u64::from_be_bytes(bytes))
}

fn io(err: sled::Error) -> StoreError {
    StoreError::Io(err.to_string())
}

fn failed() -> StoreError {
    StoreError::Io(
        "an earlier write to the store failed; restart to recover the store from its log".into(),
    )
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
