//! Copying a whole store into another (a sled folder into PostgreSQL): histories in key order
//! with their hashes, committed instance by instance so that the target derives its
//! snapshots, indexes, timer queue and idempotency keys exactly as its own commits do; then the
//! numbers, schedule marks, definition versions, deployed set and console sessions. The copy
//! ends by comparing the store digest of both sides ([`crate::audit::verify::digest`]): a copy
//! whose digest differs is an error, never a quiet success.

use crate::machine::{Entry, Instance};
use crate::store::{Committed, Store, StoreError};
use chrono::{DateTime, Datelike, Utc};
use std::collections::BTreeSet;

/// How many entries one commit into the target carries (whole instances, so at least one).
const BATCH_ENTRIES: usize = 1000;

/// Why a copy failed.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The target already holds records.
    #[error(
        "the target store {target} already holds {what}; copy into an empty database (or pass --allow-non-empty to add to it, which fails on any instance it already has)"
    )]
    NotEmpty {
        /// The target, as shown.
        target: String,
        /// What it holds.
        what: &'static str,
    },
    /// A record of the source cannot be read: the copy stopped.
    #[error(
        "the source's record of `{instance}` step {seq} cannot be read ({detail}), so the copy stopped; run `sopflow audit verify` on the source"
    )]
    BadSource {
        /// The instance.
        instance: String,
        /// The step.
        seq: u64,
        /// Why.
        detail: String,
    },
    /// The digests of the two stores differ after the copy.
    #[error(
        "the copy does not match its source: the store digest as of {as_of} is {source_digest} on the source and {target_digest} on the target; do not use the target, and run `sopflow audit verify` on both"
    )]
    DigestMismatch {
        /// The time the digests cover.
        as_of: DateTime<Utc>,
        /// The source's digest.
        source_digest: String,
        /// The target's.
        target_digest: String,
    },
    /// Either store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a copy did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// Instances copied.
    pub instances: u64,
    /// History entries copied.
    pub entries: u64,
    /// Definition versions copied.
    pub definitions: u64,
    /// Console sessions copied.
    pub sessions: u64,
    /// Schedule marks copied.
    pub schedule_marks: u64,
    /// The digest both sides have (`TIME:HEX`, as `audit verify --digest` takes it).
    pub digest: crate::audit::verify::Digest,
}

/// Copies everything in `from` into `to` (see the module's notes), calling `progress` with the
/// number of entries copied so far. `to` must be empty unless `allow_non_empty`. Blocking.
pub fn copy(
    from: &dyn Store,
    to: &dyn Store,
    target: &str,
    allow_non_empty: bool,
    progress: &mut dyn FnMut(u64),
) -> Result<Copied, CopyError> {
    if !allow_non_empty {
        if to.scan_log().next().is_some() {
            return Err(CopyError::NotEmpty {
                target: target.to_string(),
                what: "histories",
            });
        }
        if to.scan_definitions().next().is_some() {
            return Err(CopyError::NotEmpty {
                target: target.to_string(),
                what: "definition versions",
            });
        }
    }
    from.checkpoint()?;
    let as_of = covering(from)?;

    let mut definitions = 0;
    for record in from.scan_definitions() {
        let record = record?;
        let definition = record.definition.map_err(|detail| CopyError::BadSource {
            instance: format!("definition {}", record.hash),
            seq: 0,
            detail,
        })?;
        to.save_definition(&definition)?;
        definitions += 1;
    }

    let mut copied = Copied {
        instances: 0,
        entries: 0,
        definitions,
        sessions: 0,
        schedule_marks: 0,
        digest: crate::audit::verify::digest(from, as_of)?,
    };
    let mut workflows = BTreeSet::new();
    let mut years = BTreeSet::new();
    let mut batch: Vec<Committed> = Vec::new();
    let mut current: Option<Instance> = None;
    let mut flush = |batch: &mut Vec<Committed>, copied: &mut Copied| -> Result<(), CopyError> {
        if !batch.is_empty() {
            to.commit(batch)?;
            copied.entries += batch.len() as u64;
            batch.clear();
            progress(copied.entries);
        }
        Ok(())
    };
    for record in from.scan_log() {
        let record = record?;
        let entry: Entry = record.entry.map_err(|detail| CopyError::BadSource {
            instance: record.instance.clone(),
            seq: record.seq,
            detail,
        })?;
        let bad = |e: crate::machine::ChainError| CopyError::BadSource {
            instance: record.instance.clone(),
            seq: record.seq,
            detail: e.to_string(),
        };
        let continues = current.as_ref().is_some_and(|i| i.id == entry.instance);
        if !continues {
            // A new instance: the batch may end here, between whole histories.
            if batch.len() >= BATCH_ENTRIES {
                flush(&mut batch, &mut copied)?;
            }
            copied.instances += 1;
        }
        let snapshot = match current.take() {
            Some(mut instance) if continues => {
                instance.apply(&entry).map_err(bad)?;
                instance
            }
            _ => Instance::begin(&entry).map_err(bad)?,
        };
        workflows.insert(snapshot.workflow.clone());
        years.insert(entry.at.year());
        current = Some(snapshot.clone());
        batch.push(Committed::new(entry, snapshot)?);
    }
    flush(&mut batch, &mut copied)?;

    // Numbers: each workflow's last instance number, and its readable numbers' `{seq}` per
    // period (a year around any entry, or none).
    for workflow in &workflows {
        let last = from.last_number(workflow)?;
        if last > 0 {
            to.set_last_number(workflow, last)?;
        }
        let first = years.first().copied().unwrap_or(1970) - 1;
        let end = years.last().copied().unwrap_or(1970) + 1;
        let periods = std::iter::once(String::new()).chain((first..=end).map(|y| y.to_string()));
        for period in periods {
            let seq = from.last_sequence(workflow, &period)?;
            if seq > 0 {
                to.set_last_sequence(workflow, &period, seq)?;
            }
        }
    }
    for (key, at) in from.schedule_marks()? {
        to.set_schedule_mark(&key, at)?;
        copied.schedule_marks += 1;
    }
    if let Some(set) = from.deployed()? {
        to.deploy(&[], &set)?;
    }
    for (key, session) in from.sessions()? {
        to.save_session(&key, &session)?;
        copied.sessions += 1;
    }
    to.checkpoint()?;

    let target_digest = crate::audit::verify::digest(to, as_of)?;
    if target_digest.hash != copied.digest.hash || target_digest.entries != copied.digest.entries {
        return Err(CopyError::DigestMismatch {
            as_of: copied.digest.as_of,
            source_digest: copied.digest.hash.clone(),
            target_digest: target_digest.hash,
        });
    }
    Ok(copied)
}

/// A time for the digests that covers every entry of `from`: its latest entry's time (or now,
/// if later) rounded up to the next whole second, since a digest's time is kept to the second
/// and leaves out what falls after it. Taking now alone would let entries made in the same
/// second as the copy fall out of both digests, which would then agree whatever was copied.
fn covering(from: &dyn Store) -> Result<DateTime<Utc>, CopyError> {
    let mut latest = Utc::now();
    for record in from.scan_log() {
        if let Ok(entry) = record?.entry {
            latest = latest.max(entry.at);
        }
    }
    let next_second = latest.timestamp().saturating_add(1);
    Ok(DateTime::from_timestamp(next_second, 0).unwrap_or(latest))
}
