//! The history entry: one step as the auditor sees it, and the hash that chains it to the
//! step before.
//!
//! An entry is self-contained: replaying every entry of an instance through
//! [`crate::machine::Instance::apply`] rebuilds the instance exactly, so snapshots and indexes
//! are only caches. The hash covers every field (with `hash` itself left empty) in serde_json's
//! canonical form: struct fields in declaration order, map keys sorted.

use super::command::Start;
use super::instance::Instance;
pub use super::migrate::Migration;
pub use crate::definition::model::AuditKind;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// A short text of an entry (an id, a state, an event, a person): kept inline, without a
/// heap allocation, up to 24 bytes, which every identifier in the shipped workflows fits.
/// It stores, hashes and reads as a plain JSON string.
pub type Text = compact_str::CompactString;

/// What kind of step an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// The instance was started.
    Start,
    /// An event was fired by a person or by the system.
    Event,
    /// A child instance finished; recorded in the parent.
    ChildFinished,
    /// A timer fell due and fired its event as the `system` actor (or, when the event was
    /// refused, lapsed without moving the instance; `timer.refused` says why).
    Timer,
    /// A process owner moved the instance to another version of its workflow (`migration`
    /// says from which, how, and why); no event was fired.
    Migrate,
}

/// One step of an instance, appended once and never changed.
///
/// The parts only some kinds of step have (a signature, a child's end, a timer's firing, a
/// migration) are boxed: an entry is moved a few times in each step (built, sealed, returned,
/// batched), and boxing them makes it 568 bytes instead of 944, which took 12-20% off the pure
/// step in runs taken alternately (criterion's `four_step/step`: 1.39 µs against 1.73 µs;
/// `cargo run --release --example four_step 3`: 1.35-1.42 µs against 1.55-1.60 µs). Boxes are
/// invisible to the stored JSON and to its hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Entry {
    /// The instance it belongs to.
    pub instance: Text,
    /// 0 for the start, then one more per step.
    pub seq: u64,
    /// Who made the step happen: a start, a person's command, a timer, a child finishing.
    pub kind: EntryKind,
    /// The workflow the instance runs.
    pub workflow: Text,
    /// The definition version (hash of YAML and rules) the step ran under.
    pub version: String,
    /// The event fired (for the start, `start`).
    pub event: Text,
    /// The state before the step (`None` for the start).
    pub from: Option<Text>,
    /// The state after the step.
    pub to: Text,
    /// Whether the step entered `to` (cancelling and arming timers); a partial approval
    /// stays in its state without re-entering it.
    pub entered: bool,
    /// Whether `to` is a final state.
    pub finished: bool,
    /// Who took the step (`system` for the engine's own steps).
    pub actor: Text,
    /// The role the actor acted in (`None` only for steps no role governs).
    pub role: Option<Text>,
    /// The payload as converted to the declared field types.
    pub payload: Map<String, Value>,
    /// Fields set by this step (payload fields and the action's result).
    pub changes: Map<String, Value>,
    /// Every guard evaluated, in order, with its result.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guards: Vec<GuardResult>,
    /// The signature this step added to the state's approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<Box<Signature>>,
    /// What a person's step was to an auditor (approval, rejection, decision), decided by the
    /// definition when the step was taken. Absent on the engine's own steps, and on entries
    /// recorded before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<AuditKind>,
    /// Which of the event's guarded branches the step took (its position in the state's list
    /// for the event, from 0). Absent for approvals and on entries recorded before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<u32>,
    /// On entering a state with an approval: who must sign (after evaluating `when`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signers: Option<Vec<PendingSigner>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    /// Timers armed on entering `to`.
    pub timers_armed: Vec<ArmedTimer>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    /// Ids of the timers of the state left, cancelled by leaving it.
    pub timers_cancelled: Vec<String>,
    /// Child instances started by this step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spawned: Vec<SpawnedChild>,
    /// For [`EntryKind::ChildFinished`]: the child and the final state it reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child: Option<Box<ChildStatus>>,
    /// For [`EntryKind::Timer`]: the timer that fired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timer: Option<Box<TimerFiring>>,
    /// For [`EntryKind::Migrate`]: the version before, the mapping, the approval after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration: Option<Box<Migration>>,
    /// For the start: the business key (a contract or unit number) the instance is found by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_key: Option<String>,
    /// For the start of a child instance: its parent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// For the start: the readable number (`DH-2026-0001`) of a workflow with a `number`
    /// format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    /// When the step was taken (the command's time, never a clock read by the machine).
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The caller's key for a retried command, answered with this entry again.
    pub idempotency_key: Option<String>,
    /// The hash of the entry before (empty for the start).
    pub prev_hash: String,
    /// SHA-256 of this entry's canonical JSON, `prev_hash` included: the chain's link.
    pub hash: String,
}

/// A guard and whether it held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GuardResult {
    /// The guard as written in the workflow.
    pub guard: String,
    /// Whether it held.
    pub passed: bool,
}

/// A recorded approval signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Signature {
    /// Index of the signer in the approval's `signers`.
    pub signer: usize,
    /// The role the signer signed in.
    pub role: String,
    /// Who signed.
    pub actor: String,
    /// When they signed.
    pub at: DateTime<Utc>,
}

/// A signer of an approval, as evaluated on entering its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PendingSigner {
    /// The role that must (or may) sign.
    pub role: String,
    /// The signer's title in the approval, as written.
    pub title: Option<String>,
    /// False when the signer's `when` condition did not hold: the signer is skipped.
    pub required: bool,
}

/// A timer armed by a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ArmedTimer {
    /// Unique within the instance: `{seq}-{index}`.
    pub id: String,
    /// The event it fires when due.
    pub event: String,
    /// When it falls due, computed on the definition's calendar when armed.
    pub due: DateTime<Utc>,
    /// Its title for people, as written.
    pub title: Option<String>,
    /// Set when the due time had to be adjusted: a deadline script returned a time already
    /// past (the timer fires at once), for example.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A timer that fell due.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TimerFiring {
    /// The timer's id, as armed.
    pub id: String,
    /// When it was due; the entry's `at` is when it fired (later after a restart).
    pub due: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Its title for people, as written.
    pub title: Option<String>,
    /// Why its event was refused (a guard did not hold, for example): the timer lapsed and
    /// the instance stayed where it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

/// A child instance started by a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SpawnedChild {
    /// The child's id: its own workflow's next (`hot_work_permit-3`), given by the engine
    /// with the step (see [`Entry::name_children`]). The pure step, and entries recorded
    /// before children were numbered, have the id derived from the step instead,
    /// `{parent}.{seq}.{n}`.
    pub id: String,
    /// The child's workflow.
    pub workflow: String,
    /// The data offered to the child: the parent's data (and `item` for `for_each`); the
    /// child keeps the fields it declares.
    pub data: Map<String, Value>,
    /// The derived `{parent}.{seq}.{n}` of a child the engine numbered: which of the step's
    /// children this is, whatever its id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The child's readable number, when its workflow has a `number` format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
}

/// The id and readable number the engine gives a spawned child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildName {
    /// Its id: its own workflow's next (`hot_work_permit-3`).
    pub id: String,
    /// Its readable number, when its workflow has a `number` format.
    pub number: Option<String>,
}

/// A child's outcome, recorded in its parent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ChildStatus {
    /// The child instance.
    pub id: String,
    /// The final state it reached.
    pub state: String,
}

const DOMAIN: &[u8] = b"sopflow-entry-v1\0";

/// The largest JSON buffer a thread keeps between entries (an entry with a large payload
/// leaves a buffer this size at most).
const KEPT_BUFFER: usize = 64 * 1024;

thread_local! {
    /// The buffer [`Entry::compute_hash`] writes an entry's JSON into.
    static JSON: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Entry {
    /// An unsealed entry that records nothing yet but its kind, event and time: the one
    /// place an entry is written out field by field (steps start from [`Entry::first`] or
    /// [`Entry::next`]).
    pub fn blank(kind: EntryKind, event: &str, at: DateTime<Utc>) -> Entry {
        Entry {
            instance: Default::default(),
            seq: 0,
            kind,
            workflow: Default::default(),
            version: String::new(),
            event: event.into(),
            from: None,
            to: Default::default(),
            entered: false,
            finished: false,
            actor: Default::default(),
            role: None,
            payload: Map::new(),
            changes: Map::new(),
            guards: Vec::new(),
            signature: None,
            audit: None,
            branch: None,
            signers: None,
            timers_armed: Vec::new(),
            timers_cancelled: Vec::new(),
            spawned: Vec::new(),
            child: None,
            timer: None,
            migration: None,
            business_key: None,
            parent: None,
            number: None,
            at,
            idempotency_key: None,
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    /// The unsealed start entry of a new instance, entering `state`; the step that makes it
    /// fills in the data, role, timers and the rest.
    pub fn first(command: &Start, workflow: &str, version: &str, state: &str) -> Entry {
        Entry {
            instance: command.id.as_str().into(),
            workflow: workflow.into(),
            version: version.to_string(),
            to: state.into(),
            entered: true,
            actor: command.actor.id.as_str().into(),
            business_key: command.business_key.clone(),
            parent: command.parent.clone(),
            number: command.number.clone(),
            idempotency_key: command.idempotency_key.clone(),
            ..Entry::blank(
                EntryKind::Start,
                crate::definition::model::START,
                command.at,
            )
        }
    }

    /// The unsealed next entry of `instance`, by `actor`, leaving it where it is; the step that
    /// makes it records what it did (and where it went).
    pub fn next(
        instance: &Instance,
        kind: EntryKind,
        event: &str,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Entry {
        Entry::towards(instance, kind, event, actor, at, instance.state.clone())
    }

    /// [`Entry::next`], recording a step to `to` (a step that has decided where it goes, and
    /// spares copying the state it leaves twice).
    pub fn towards(
        instance: &Instance,
        kind: EntryKind,
        event: &str,
        actor: &str,
        at: DateTime<Utc>,
        to: Text,
    ) -> Entry {
        Entry {
            instance: instance.id.clone(),
            seq: instance.seq + 1,
            workflow: instance.workflow.clone(),
            version: instance.version.clone(),
            from: Some(instance.state.clone()),
            to,
            finished: instance.finished,
            actor: actor.into(),
            prev_hash: instance.last_hash.clone(),
            ..Entry::blank(kind, event, at)
        }
    }

    /// The SHA-256 (hex) of the entry's canonical encoding: a domain tag, then the entry's
    /// JSON with its `hash` field empty.
    pub fn compute_hash(&self) -> String {
        // The JSON is written into a buffer kept by the thread, so that a step allocates
        // nothing for it (growing a fresh buffer to an entry's size cost a tenth of a step, in
        // reallocations and in the allocator sorting its free lists for each request of a
        // kilobyte or more), by the canonical writer (see `canonical` for what it spares and
        // how it is held to serde_json's bytes). Hashing one buffer is faster than feeding the
        // hasher token by token.
        JSON.with(|buffer| match buffer.try_borrow_mut() {
            Ok(mut json) => self.hash_in(&mut json),
            Err(_) => self.hash_in(&mut Vec::new()),
        })
    }

    fn hash_in(&self, json: &mut Vec<u8>) -> String {
        json.clear();
        super::canonical::write_entry(json, self, "");
        debug_assert_eq!(
            String::from_utf8_lossy(json),
            String::from_utf8_lossy(&self.hashed_json()),
            "the canonical writer must write serde_json's bytes"
        );
        let mut hasher = Sha256::new();
        hasher.update(DOMAIN);
        hasher.update(json.as_slice());
        if json.capacity() > KEPT_BUFFER {
            *json = Vec::new();
        }
        to_hex(&hasher.finalize())
    }

    /// The entry's JSON as serde_json stores it, with `hash` empty: what the hash covers, by
    /// definition (the canonical writer is checked against it).
    fn hashed_json(&self) -> Vec<u8> {
        let blank = Entry {
            hash: String::new(),
            ..self.clone()
        };
        // Serialising plain data to memory does not fail.
        serde_json::to_vec(&blank).unwrap_or_default()
    }

    /// The entry's field names in declaration order, which is the order they are stored and
    /// hashed in (the order serde's derived code lists them in).
    pub fn field_names() -> &'static [&'static str] {
        field_names::<Entry>()
    }

    /// Gives the children this step spawned the ids the engine chose (their own workflows'
    /// numbers), keeping each derived id as its `key`, and seals the entry again. Ids equal to
    /// the derived ones, or missing, leave a child as it is.
    pub fn name_children(&mut self, names: &[ChildName]) {
        for (child, name) in self.spawned.iter_mut().zip(names) {
            if child.id != name.id {
                child.key = Some(std::mem::replace(&mut child.id, name.id.clone()));
            }
            child.number = name.number.clone();
        }
        self.seal();
    }

    /// Sets `hash` from the content.
    pub fn seal(&mut self) {
        self.hash = self.compute_hash();
    }

    /// Whether `hash` matches the content.
    pub fn verify(&self) -> bool {
        self.hash == self.compute_hash()
    }
}

/// Lower-case hex, without `hex::encode`'s per-character iterator (a measurable part of a
/// step).
fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// The names of a struct's fields in declaration order, as its derived `Deserialize` lists
/// them (serde hands them to `deserialize_struct`): the order they are serialised in.
fn field_names<T: serde::de::DeserializeOwned>() -> &'static [&'static str] {
    struct Names(Option<&'static [&'static str]>);
    #[derive(Debug)]
    struct Stop;
    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("stop")
        }
    }
    impl std::error::Error for Stop {}
    impl serde::de::Error for Stop {
        fn custom<M: std::fmt::Display>(_: M) -> Stop {
            Stop
        }
    }
    impl<'de> serde::Deserializer<'de> for &mut Names {
        type Error = Stop;
        fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: serde::de::Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            self.0 = Some(fields);
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }
    let mut names = Names(None);
    let _ = T::deserialize(&mut names);
    names.0.unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Entry {
        let mut payload = Map::new();
        payload.insert("amount".into(), json!(18000.0));
        let at = DateTime::parse_from_rfc3339("2026-11-28T09:00:00Z")
            .expect("valid")
            .with_timezone(&Utc);
        Entry {
            instance: "expense-1".into(),
            seq: 3,
            workflow: "expense".into(),
            version: "abc".into(),
            from: Some("review".into()),
            to: "paid".into(),
            entered: true,
            actor: "li".into(),
            role: Some("finance".into()),
            payload: payload.clone(),
            changes: payload,
            guards: vec![GuardResult {
                guard: "data.amount >= 15000".into(),
                passed: true,
            }],
            audit: Some(AuditKind::Approval),
            branch: Some(1),
            signers: Some(vec![]),
            timers_cancelled: vec!["1-0".into()],
            timer: Some(Box::new(TimerFiring {
                id: "2-0".into(),
                due: DateTime::parse_from_rfc3339("2026-11-28T08:00:00Z")
                    .expect("valid")
                    .with_timezone(&Utc),
                title: None,
                refused: None,
            })),
            idempotency_key: Some("k".into()),
            prev_hash: "00".into(),
            ..Entry::blank(EntryKind::Event, "approve", at)
        }
    }

    /// The rare parts stay boxed: a field of a few hundred bytes added inline would make every
    /// step copy it several times (see the type's documentation).
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn an_entry_stays_small_enough_to_move_cheaply() {
        assert!(
            std::mem::size_of::<Entry>() <= 600,
            "Entry is {} bytes: box the parts only some steps have",
            std::mem::size_of::<Entry>()
        );
    }

    #[test]
    fn hex_is_lower_case_and_complete() {
        assert_eq!(to_hex(&[0x00, 0x9f, 0xa5, 0xff]), "009fa5ff");
        assert_eq!(to_hex(&[0xab; 32]), hex::encode([0xab; 32]));
    }

    #[test]
    fn the_hash_covers_exactly_the_serialised_entry() {
        let mut entry = sample();
        entry.hash = "a stale hash, with \"quotes\" and \\ to escape".into();
        let mut hasher = Sha256::new();
        hasher.update(DOMAIN);
        hasher.update(entry.hashed_json());
        assert_eq!(entry.compute_hash(), to_hex(&hasher.finalize()));
        assert!(
            String::from_utf8(entry.hashed_json())
                .expect("utf-8")
                .ends_with(r#","hash":""}"#),
            "the hash covers the entry as stored, with `hash` empty"
        );
        assert_eq!(Entry::field_names().last(), Some(&"hash"));
    }

    #[test]
    fn entries_without_the_newer_fields_hash_as_they_always_did() {
        // An entry recorded before `audit` and `branch` were kept: its stored JSON has neither
        // key, and its hash must still verify.
        let mut old = sample();
        old.audit = None;
        old.branch = None;
        old.seal();
        let stored = serde_json::to_string(&old).expect("serialises");
        assert!(!stored.contains("\"audit\"") && !stored.contains("\"branch\""));
        let read: Entry = serde_json::from_str(&stored).expect("reads");
        assert!(read.verify());
    }

    #[test]
    fn any_change_breaks_the_seal_and_a_round_trip_keeps_it() {
        let mut entry = sample();
        entry.seal();
        assert!(entry.verify());
        let stored = serde_json::to_vec(&entry).expect("serialises");
        let read: Entry = serde_json::from_slice(&stored).expect("reads");
        assert!(read.verify(), "a stored entry verifies when read back");
        let mut altered = entry.clone();
        altered.actor = "wang".into();
        assert!(!altered.verify());
        let mut altered = entry;
        altered.payload.insert("amount".into(), json!(1800.0));
        assert!(!altered.verify());
    }

    fn time(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("valid")
            .with_timezone(&Utc)
    }

    /// A start as the engine makes one, with nothing optional set: what most stored entries
    /// look like.
    fn golden_start() -> Entry {
        let command = Start {
            id: "expense-1".into(),
            actor: crate::machine::Actor::new("xiao", ["applicant"]),
            data: Map::new(),
            business_key: None,
            parent: None,
            idempotency_key: None,
            at: time("2026-11-28T09:00:00Z"),
            number: None,
        };
        let mut entry = Entry::first(&command, "expense", "v1", "drafted");
        entry.role = Some("applicant".into());
        entry.seal();
        entry
    }

    /// A step with every field set (in combinations no step makes), so that the encoding of
    /// each one is pinned.
    fn golden_full() -> Entry {
        let instance = Instance::begin(&golden_start()).expect("a start");
        let mut entry = Entry::next(
            &instance,
            EntryKind::Event,
            "approve",
            "li",
            time("2026-11-28T10:00:00Z"),
        );
        entry.to = "paid".into();
        entry.entered = true;
        entry.finished = true;
        entry.role = Some("finance".into());
        entry.payload = json!({"amount": 18000.5, "comment": "同意"})
            .as_object()
            .cloned()
            .expect("an object");
        entry.changes = json!({"amount": 18000.5, "paid": true})
            .as_object()
            .cloned()
            .expect("an object");
        entry.guards = vec![GuardResult {
            guard: "data.amount >= 15000".into(),
            passed: true,
        }];
        entry.signature = Some(Box::new(Signature {
            signer: 0,
            role: "finance".into(),
            actor: "li".into(),
            at: time("2026-11-28T10:00:00Z"),
        }));
        entry.audit = Some(AuditKind::Approval);
        entry.branch = Some(1);
        entry.signers = Some(vec![PendingSigner {
            role: "finance".into(),
            title: Some("财务".into()),
            required: true,
        }]);
        entry.timers_armed = vec![ArmedTimer {
            id: "1-0".into(),
            event: "remind".into(),
            due: time("2026-12-01T01:00:00Z"),
            title: Some("催办".into()),
            note: Some("moved".into()),
        }];
        entry.timers_cancelled = vec!["0-0".into()];
        entry.spawned = vec![SpawnedChild {
            id: "permit-3".into(),
            workflow: "permit".into(),
            data: json!({"item": 1}).as_object().cloned().expect("an object"),
            key: Some("expense-1.1.1".into()),
            number: Some("P-2026-0003".into()),
        }];
        entry.child = Some(Box::new(ChildStatus {
            id: "permit-2".into(),
            state: "done".into(),
        }));
        entry.timer = Some(Box::new(TimerFiring {
            id: "0-0".into(),
            due: time("2026-11-28T09:30:00Z"),
            title: Some("提醒".into()),
            refused: Some("guard".into()),
        }));
        entry.business_key = Some("EX-1".into());
        entry.parent = Some("site-1".into());
        entry.number = Some("EX-2026-0001".into());
        entry.idempotency_key = Some("k-1".into());
        entry.seal();
        entry
    }

    /// The canonical encoding and hash of fixed entries, byte for byte. Every stored entry is
    /// verified against a hash of exactly this encoding, so a change here (a new field written
    /// when empty, a field renamed or moved, a type encoded otherwise) would make `audit
    /// verify` fail on every entry of every store. A new field must be `#[serde(default,
    /// skip_serializing_if = ...)]`, so that an entry without it encodes as before: then this
    /// test still passes. The hashes were checked outside Rust, as SHA-256 of
    /// `sopflow-entry-v1\0` and the JSON with `"hash":""`.
    #[test]
    fn the_canonical_encoding_and_hash_of_an_entry_never_change() {
        const START: &str = concat!(
            r#"{"instance":"expense-1","seq":0,"kind":"start","workflow":"expense","#,
            r#""version":"v1","event":"start","from":null,"to":"drafted","entered":true,"#,
            r#""finished":false,"actor":"xiao","role":"applicant","payload":{},"changes":{},"#,
            r#""at":"2026-11-28T09:00:00Z","prev_hash":"","#,
            r#""hash":"4445c2d48755df033c03c223d5eeda055cd950b0f86df310ab6a78ae0c851312"}"#
        );
        const FULL: &str = concat!(
            r#"{"instance":"expense-1","seq":1,"kind":"event","workflow":"expense","#,
            r#""version":"v1","event":"approve","from":"drafted","to":"paid","entered":true,"#,
            r#""finished":true,"actor":"li","role":"finance","#,
            r#""payload":{"amount":18000.5,"comment":"同意"},"#,
            r#""changes":{"amount":18000.5,"paid":true},"#,
            r#""guards":[{"guard":"data.amount >= 15000","passed":true}],"#,
            r#""signature":{"signer":0,"role":"finance","actor":"li","at":"2026-11-28T10:00:00Z"},"#,
            r#""audit":"approval","branch":1,"#,
            r#""signers":[{"role":"finance","title":"财务","required":true}],"#,
            r#""timers_armed":[{"id":"1-0","event":"remind","due":"2026-12-01T01:00:00Z","#,
            r#""title":"催办","note":"moved"}],"timers_cancelled":["0-0"],"#,
            r#""spawned":[{"id":"permit-3","workflow":"permit","data":{"item":1},"#,
            r#""key":"expense-1.1.1","number":"P-2026-0003"}],"#,
            r#""child":{"id":"permit-2","state":"done"},"#,
            r#""timer":{"id":"0-0","due":"2026-11-28T09:30:00Z","title":"提醒","refused":"guard"},"#,
            r#""business_key":"EX-1","parent":"site-1","number":"EX-2026-0001","#,
            r#""at":"2026-11-28T10:00:00Z","idempotency_key":"k-1","#,
            r#""prev_hash":"4445c2d48755df033c03c223d5eeda055cd950b0f86df310ab6a78ae0c851312","#,
            r#""hash":"70f2b780f0c449a616b89cd22ae1eb80469a6c014b758b94cf44c47854abf752"}"#
        );
        for (entry, golden) in [(golden_start(), START), (golden_full(), FULL)] {
            let encoded = serde_json::to_string(&entry).expect("serialises");
            assert_eq!(encoded, golden, "the stored encoding of an entry changed");
            // The hash is SHA-256 of the domain tag and the encoding with `hash` empty.
            let (before, _) = golden.rsplit_once(r#""hash":"#).expect("hash is last");
            let mut hasher = Sha256::new();
            hasher.update(b"sopflow-entry-v1\0");
            hasher.update(format!(r#"{before}"hash":""}}"#).as_bytes());
            assert_eq!(entry.hash, hex::encode(hasher.finalize()));
            assert!(entry.verify());
            // A stored entry reads back to the same bytes, and verifies.
            let read: Entry = serde_json::from_str(golden).expect("reads");
            assert_eq!(read, entry);
            assert_eq!(serde_json::to_string(&read).expect("serialises"), golden);
        }
    }
}
