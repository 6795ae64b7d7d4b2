//! Verification: is the store exactly what the engine wrote?
//!
//! One pass over the log in key order (instance, then sequence number) checks, for each entry,
//! that it decodes, that it is stored where it says it belongs, that its hash matches its
//! content and links to the entry before, and that its definition version is stored with
//! sources that still hash to it; it folds the entries of each instance through
//! [`Instance::apply`] and compares the result with the stored snapshot (a merge with the
//! snapshots, which are in the same order). Then the derived records (indexes, timer queue,
//! idempotency keys) are checked against the snapshots.
//!
//! Hash chains alone cannot show that a whole instance was deleted, or that someone rewrote
//! a history and recomputed every hash after it. The [`Digest`] covers that: a SHA-256 over
//! the (instance, sequence number, hash) of every entry made up to a time, in key order. An
//! auditor writes it down; entries are never rewritten and later entries are made later, so
//! recomputing the digest for the same time must give the same value for as long as the
//! store lives.
//!
//! Memory stays constant: one instance's snapshot is held at a time, plus the set of
//! definition versions (a few per workflow).

use crate::engine::Engine;
use crate::machine::{Entry, Instance};
use crate::store::{LogRecord, SnapshotRecord, Store, StoreError};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::iter::Peekable;

/// Something in the store that is not as the engine wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "VerifyProblem")]
pub struct Problem {
    /// A stable name for the kind of break: `altered`, `broken_link`, `missing`,
    /// `misplaced`, `bad_record`, `snapshot_mismatch`, `snapshot_without_history`,
    /// `history_without_snapshot`, `unknown_version`, `definition_altered`, `derived`,
    /// `digest_mismatch`.
    pub code: Cow<'static, str>,
    /// The instance it concerns, if it concerns one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// The entry it concerns, if it concerns one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// What is wrong, in words.
    pub detail: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.instance, self.seq) {
            (Some(instance), Some(seq)) => write!(f, "{instance} #{seq}: ")?,
            (Some(instance), None) => write!(f, "{instance}: ")?,
            _ => {}
        }
        write!(f, "{} [{}]", self.detail, self.code)
    }
}

/// A value that pins down every entry made up to `as_of`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Digest {
    /// The instant the digest covers: every entry made up to then.
    pub as_of: DateTime<Utc>,
    /// Instances with at least one entry by then.
    pub instances: u64,
    /// Entries made by then.
    pub entries: u64,
    /// SHA-256, lower-case hex.
    pub hash: String,
}

impl Digest {
    /// `TIME:HEX`, the form an auditor writes down and gives back to `audit verify --digest`.
    pub fn token(&self) -> String {
        format!(
            "{}:{}",
            self.as_of.to_rfc3339_opts(SecondsFormat::Secs, true),
            self.hash
        )
    }

    /// Reads a `TIME:HEX` token.
    pub fn parse_token(token: &str) -> Result<(DateTime<Utc>, String), String> {
        let (time, hash) = token.trim().rsplit_once(':').ok_or_else(|| {
            format!("`{token}` is not a digest: expected TIME:HEX, as `audit verify` prints it")
        })?;
        let as_of = DateTime::parse_from_rfc3339(time)
            .map_err(|e| format!("the time `{time}` of the digest: {e}"))?
            .with_timezone(&Utc);
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "`{hash}` is not a digest: expected 64 hex digits after the time"
            ));
        }
        Ok((as_of, hash.to_ascii_lowercase()))
    }
}

/// What a verification went over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "VerifySummary")]
pub struct Summary {
    /// Instances verified.
    pub instances: u64,
    /// Entries verified.
    pub entries: u64,
    /// Definition versions verified against their hashes.
    pub definitions: u64,
    /// Problems found (each was handed to the callback).
    pub problems: u64,
    /// The store's digest up to the `as_of` verified at.
    pub digest: Digest,
}

impl Summary {
    /// Whether nothing was found that is not as the engine wrote it.
    pub fn is_clean(&self) -> bool {
        self.problems == 0
    }
}

/// How often (in entries) the progress callback is called.
pub const PROGRESS_EVERY: u64 = 10_000;

/// Verifies the whole store; see the module's documentation. Each problem is handed to
/// `on_problem` as it is found, and `on_progress` gets the number of entries checked so far.
pub fn verify(
    store: &dyn Store,
    as_of: DateTime<Utc>,
    on_problem: &mut dyn FnMut(Problem),
    on_progress: &mut dyn FnMut(u64),
) -> Result<Summary, StoreError> {
    store.checkpoint()?;
    let as_of = whole_seconds(as_of);
    let mut problems = 0u64;
    let mut report = |problem: Problem| {
        problems += 1;
        on_problem(problem);
    };
    let versions = check_definitions(store, &mut report)?;
    let mut walk = Walk {
        store,
        versions: &versions,
        snapshots: store.scan_snapshots().peekable(),
        current: None,
        digest: DigestBuilder::new(whole_seconds(as_of)),
        entries: 0,
        instances: 0,
    };
    for record in store.scan_log() {
        walk.record(record?, &mut report)?;
        if walk.entries.is_multiple_of(PROGRESS_EVERY) {
            on_progress(walk.entries);
        }
    }
    walk.finish_instance(&mut report)?;
    for snapshot in walk.snapshots.by_ref() {
        let snapshot = snapshot?;
        report(orphan_snapshot(&snapshot.id));
    }
    on_progress(walk.entries);
    store.check_derived(&mut |derived| {
        report(Problem {
            code: "derived".into(),
            instance: (!derived.instance.is_empty()).then(|| derived.instance.clone()),
            seq: None,
            detail: format!("{}: {}", derived.records, derived.detail),
        })
    })?;
    let digest = walk.digest.finish();
    Ok(Summary {
        instances: walk.instances,
        entries: walk.entries,
        definitions: versions.len() as u64,
        problems,
        digest,
    })
}

/// Computes only the digest as of `as_of` (the same walk as [`verify`] without the checks).
pub fn digest(store: &dyn Store, as_of: DateTime<Utc>) -> Result<Digest, StoreError> {
    store.checkpoint()?;
    let mut builder = DigestBuilder::new(whole_seconds(as_of));
    for record in store.scan_log() {
        builder.add(&record?);
    }
    Ok(builder.finish())
}

/// A digest's time is kept to the second, the precision of its token, so that the token
/// written down recomputes to the same value: entries made in the last fraction of a second
/// fall to the next digest.
fn whole_seconds(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(at.timestamp(), 0).unwrap_or(at)
}

/// Checks every stored definition's sources against its hash; returns the workflow of each
/// version that is intact.
fn check_definitions(
    store: &dyn Store,
    report: &mut dyn FnMut(Problem),
) -> Result<BTreeMap<String, String>, StoreError> {
    let mut versions = BTreeMap::new();
    for record in store.scan_definitions() {
        let record = record?;
        let problem = |detail: String| Problem {
            code: "definition_altered".into(),
            instance: None,
            seq: None,
            detail,
        };
        match record.definition {
            Err(why) => report(problem(format!(
                "the stored sources of version {} cannot be read: {why}",
                record.hash
            ))),
            Ok(stored) => {
                let recomputed = stored.recomputed_hash();
                if recomputed != record.hash || stored.hash != record.hash {
                    report(problem(format!(
                        "the stored sources of version {} of `{}` hash to {recomputed}: they were changed after they were stored",
                        record.hash, stored.workflow
                    )));
                } else {
                    versions.insert(record.hash, stored.workflow);
                }
            }
        }
    }
    Ok(versions)
}

/// The instance whose entries are being read.
struct Current {
    id: String,
    /// The sequence number the next entry should have.
    next: u64,
    /// The hash the next entry should link to.
    last_hash: String,
    /// The entries folded so far; `None` once an entry could not be folded.
    folded: Option<Instance>,
    /// Whether any entry of this instance was found broken (the snapshot comparison would
    /// only repeat it).
    broken: bool,
}

struct Walk<'a, S: Iterator<Item = Result<SnapshotRecord, StoreError>>> {
    store: &'a dyn Store,
    versions: &'a BTreeMap<String, String>,
    snapshots: Peekable<S>,
    current: Option<Current>,
    digest: DigestBuilder,
    entries: u64,
    instances: u64,
}

impl<S: Iterator<Item = Result<SnapshotRecord, StoreError>>> Walk<'_, S> {
    fn record(
        &mut self,
        record: LogRecord,
        report: &mut dyn FnMut(Problem),
    ) -> Result<(), StoreError> {
        self.entries += 1;
        self.digest.add(&record);
        if self
            .current
            .as_ref()
            .is_none_or(|c| c.id != record.instance)
        {
            self.finish_instance(report)?;
            self.instances += 1;
            self.current = Some(Current {
                id: record.instance.clone(),
                next: 0,
                last_hash: String::new(),
                folded: None,
                broken: false,
            });
        }
        let Some(current) = self.current.as_mut() else {
            return Ok(());
        };
        let at = |code: &'static str, detail: String| Problem {
            code: code.into(),
            instance: Some(record.instance.clone()),
            seq: (record.seq != u64::MAX).then_some(record.seq),
            detail,
        };
        let entry = match &record.entry {
            Ok(entry) => entry,
            Err(why) => {
                report(at(
                    "bad_record",
                    format!("the stored entry cannot be read: {why}"),
                ));
                current.broken = true;
                current.folded = None;
                current.next = record.seq.saturating_add(1);
                return Ok(());
            }
        };
        if record.seq > current.next {
            let missing = if record.seq - current.next == 1 {
                format!("entry {} is missing", current.next)
            } else {
                format!("entries {} to {} are missing", current.next, record.seq - 1)
            };
            report(at(
                "missing",
                format!("{missing}: deleted from the history"),
            ));
            current.broken = true;
        }
        if entry.instance != record.instance || entry.seq != record.seq {
            report(at(
                "misplaced",
                format!(
                    "the entry stored here says it is {} #{}: entries were moved or reordered",
                    entry.instance, entry.seq
                ),
            ));
            current.broken = true;
        }
        if !entry.verify() {
            report(at(
                "altered",
                format!(
                    "`{}` by {} at {}: its content does not match its hash; it was changed after it was written",
                    entry.event,
                    entry.actor,
                    entry.at.to_rfc3339_opts(SecondsFormat::Secs, true)
                ),
            ));
            current.broken = true;
        } else if record.seq == current.next && entry.prev_hash != current.last_hash {
            report(at(
                "broken_link",
                "it does not link to the hash of the entry before: an earlier entry was changed, replaced or removed".into(),
            ));
            current.broken = true;
        }
        match self.versions.get(&entry.version) {
            None => report(at(
                "unknown_version",
                format!(
                    "it ran under definition version {}, whose intact sources are not in the store",
                    entry.version
                ),
            )),
            Some(workflow) if *workflow != entry.workflow => report(at(
                "unknown_version",
                format!(
                    "it names workflow `{}`, but version {} is of `{workflow}`",
                    entry.workflow, entry.version
                ),
            )),
            Some(_) => {}
        }
        current.folded = fold(current.folded.take(), entry, current.broken);
        current.next = record.seq.saturating_add(1);
        current.last_hash = entry.hash.clone();
        Ok(())
    }

    /// Whether the instance took a step while it was being read (on a store an engine is
    /// writing to): its history, read again whole, then folds to its snapshot read again.
    fn moved_on(&self, id: &str) -> Result<bool, StoreError> {
        let history = self.store.history(id)?;
        let mut folded: Option<Instance> = None;
        for entry in &history {
            folded = fold(folded, entry, false);
        }
        Ok(folded.is_some() && folded == self.store.instance(id)?)
    }

    /// Compares the instance just read with its snapshot, and reports the snapshots that sort
    /// before it (they have no history).
    fn finish_instance(&mut self, report: &mut dyn FnMut(Problem)) -> Result<(), StoreError> {
        let Some(current) = self.current.take() else {
            return Ok(());
        };
        while let Some(next) = self.snapshots.peek() {
            let id = match next {
                Ok(snapshot) => snapshot.id.clone(),
                Err(_) => {
                    if let Some(Err(err)) = self.snapshots.next() {
                        return Err(err);
                    }
                    continue;
                }
            };
            if id.as_str() >= current.id.as_str() {
                break;
            }
            self.snapshots.next();
            report(orphan_snapshot(&id));
        }
        let snapshot = match self.snapshots.peek() {
            Some(Ok(snapshot)) if snapshot.id == current.id => self.snapshots.next(),
            _ => None,
        };
        let problem = |code: &'static str, detail: String| Problem {
            code: code.into(),
            instance: Some(current.id.clone()),
            seq: None,
            detail,
        };
        match snapshot {
            None => report(problem(
                "history_without_snapshot",
                "it has a history but no snapshot: the snapshot was deleted".into(),
            )),
            Some(Err(err)) => return Err(err),
            Some(Ok(SnapshotRecord {
                instance: Err(why), ..
            })) => report(problem(
                "bad_record",
                format!("its snapshot cannot be read: {why}"),
            )),
            Some(Ok(SnapshotRecord {
                instance: Ok(stored),
                ..
            })) => {
                if let Some(folded) = &current.folded
                    && !current.broken
                    && *folded != stored
                    && !self.moved_on(&current.id)?
                {
                    report(problem(
                        "snapshot_mismatch",
                        format!(
                            "its snapshot does not match its history: {}",
                            differences(folded, &stored)
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Folds one more entry, or gives up on the instance's fold.
fn fold(folded: Option<Instance>, entry: &Entry, broken: bool) -> Option<Instance> {
    if broken {
        return None;
    }
    match folded {
        None if entry.seq == 0 => Instance::begin(entry).ok(),
        None => None,
        Some(mut instance) => instance.apply(entry).ok().map(|()| instance),
    }
}

fn orphan_snapshot(id: &str) -> Problem {
    Problem {
        code: "snapshot_without_history".into(),
        instance: Some(id.to_string()),
        seq: None,
        detail: "it has a snapshot but no history: its entries were deleted".into(),
    }
}

/// What differs between the snapshot the history gives and the stored one, in words.
fn differences(history: &Instance, stored: &Instance) -> String {
    let mut out = Vec::new();
    if history.seq != stored.seq {
        out.push(format!(
            "the history ends at entry {}, the snapshot at {}",
            history.seq, stored.seq
        ));
    }
    if history.state != stored.state {
        out.push(format!(
            "state `{}` by the history, `{}` in the snapshot",
            history.state, stored.state
        ));
    }
    for (key, value) in &history.data {
        match stored.data.get(key) {
            Some(other) if other == value => {}
            Some(other) => out.push(format!(
                "{key} = {value} by the history, {other} in the snapshot"
            )),
            None => out.push(format!(
                "{key} = {value} by the history, absent from the snapshot"
            )),
        }
    }
    for key in stored
        .data
        .keys()
        .filter(|k| !history.data.contains_key(*k))
    {
        out.push(format!("{key} is in the snapshot only"));
    }
    if history.last_hash != stored.last_hash {
        out.push("the last hash differs".into());
    }
    if out.is_empty() {
        out.push("approvals, timers, children or times differ".into());
    }
    out.join("; ")
}

/// The running hash of [`Digest`].
struct DigestBuilder {
    as_of: DateTime<Utc>,
    hasher: Sha256,
    instances: u64,
    entries: u64,
    last_instance: Option<String>,
}

impl DigestBuilder {
    fn new(as_of: DateTime<Utc>) -> DigestBuilder {
        let mut hasher = Sha256::new();
        hasher.update(b"sopflow-digest-v1\0");
        DigestBuilder {
            as_of,
            hasher,
            instances: 0,
            entries: 0,
            last_instance: None,
        }
    }

    /// Adds an entry made by `as_of`. An undecodable record counts with its key, so that
    /// it too changes the digest.
    fn add(&mut self, record: &LogRecord) {
        let hash = match &record.entry {
            Ok(entry) if entry.at > self.as_of => return,
            Ok(entry) => entry.hash.as_str(),
            Err(_) => "undecodable",
        };
        self.hasher.update(record.instance.as_bytes());
        self.hasher.update([0]);
        self.hasher.update(record.seq.to_be_bytes());
        self.hasher.update(hash.as_bytes());
        self.hasher.update(b"\n");
        self.entries += 1;
        if self.last_instance.as_deref() != Some(record.instance.as_str()) {
            self.instances += 1;
            self.last_instance = Some(record.instance.clone());
        }
    }

    fn finish(self) -> Digest {
        Digest {
            as_of: self.as_of,
            instances: self.instances,
            entries: self.entries,
            hash: hex::encode(self.hasher.finalize()),
        }
    }
}

impl Engine {
    /// Verifies the whole store (see [`verify`]). It reads the whole log: call it from a
    /// blocking context (`tokio::task::spawn_blocking` in async code).
    pub fn verify_store(
        &self,
        as_of: DateTime<Utc>,
        on_problem: &mut dyn FnMut(Problem),
        on_progress: &mut dyn FnMut(u64),
    ) -> Result<Summary, crate::engine::EngineError> {
        Ok(verify(
            self.store().as_ref(),
            as_of,
            on_problem,
            on_progress,
        )?)
    }

    /// The store's digest as of `as_of` (see [`Digest`]). Blocking, like [`Engine::verify_store`].
    pub fn store_digest(&self, as_of: DateTime<Utc>) -> Result<Digest, crate::engine::EngineError> {
        Ok(digest(self.store().as_ref(), as_of)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_token_reads_back() {
        let digest = Digest {
            as_of: DateTime::parse_from_rfc3339("2026-11-29T05:00:00Z")
                .expect("time")
                .with_timezone(&Utc),
            instances: 1,
            entries: 2,
            hash: "ab".repeat(32),
        };
        let (as_of, hash) = Digest::parse_token(&digest.token()).expect("reads");
        assert_eq!(as_of, digest.as_of);
        assert_eq!(hash, digest.hash);
        assert!(Digest::parse_token("2026-11-29T05:00:00Z").is_err());
        assert!(Digest::parse_token("2026-11-29T05:00:00Z:abc").is_err());
        assert!(Digest::parse_token("yesterday:".to_string().as_str()).is_err());
    }
}
