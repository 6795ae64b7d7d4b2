//! Replay: every recorded command run again through the pure step, with the definition
//! version it was recorded under, and the entry it produces compared with the one recorded.
//!
//! Each entry is turned back into the command that made it: a start (the actor in the
//! recorded role, the recorded data, business key, parent and idempotency key), an event (the
//! actor in the recorded role, or the `system` actor; the recorded payload, comment included),
//! a timer firing ([`machine::fire_timer`] with the recorded timer id) or a child's completion
//! ([`machine::child_finished`]). The command runs against the instance folded so far from the
//! *recorded* entries, so one difference does not cascade into every later step.
//!
//! A difference is either a step that now produces another entry (a guard that decides
//! otherwise, another target state, other changes, signers, timers, children), a step that is
//! now refused, or a step that cannot be replayed at all (its definition version is missing,
//! its record unreadable, its history broken).
//!
//! What a recorded entry does not keep cannot be replayed exactly. The actor is rebuilt with
//! the one role the entry records; when that does not reproduce the entry, the step is tried
//! once more with the roles the recorded guards show the actor also held (a guard is only
//! evaluated on a branch the actor may take), and the entry counts as reproduced if that
//! gives it exactly. A guard that reads `actor.roles` may still decide otherwise. Due times
//! are computed on the business calendar, which is not part of the version hash.
//!
//! The definition of a version is rebuilt from the store's copy of its sources. When those
//! sources no longer hash to the version (they were changed in the store), replay runs them
//! as stored and says so in a note: that is how an auditor sees what the altered rule would
//! have decided.

use crate::definition::Definition;
use crate::definition::model::SYSTEM_ROLE;
use crate::engine::{Engine, EngineError, rebuild};
use crate::machine::{self, Actor, Command, Entry, EntryKind, Instance, Start};
use crate::script::Sandbox;
use crate::store::StoredDefinition;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

/// What a replay found, for one instance or (summed) for many.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReplayReport {
    /// Instances replayed.
    pub instances: u64,
    /// Entries replayed.
    pub entries: u64,
    /// Every step that did not replay to itself, in history order.
    pub differences: Vec<Difference>,
    /// Things an auditor should know that are not differences (a version whose stored sources
    /// were altered, for example).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl ReplayReport {
    /// Whether every step replayed to exactly the recorded entry.
    pub fn is_clean(&self) -> bool {
        self.differences.is_empty()
    }
}

/// The totals of [`Engine::replay_all`] (each instance's report went to its callback).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReplaySummary {
    /// Instances replayed.
    pub instances: u64,
    /// Entries replayed.
    pub entries: u64,
    /// Steps that did not replay to themselves, over all instances.
    pub differences: u64,
    /// What the instances' reports noted that is not a difference (altered version sources).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// One recorded step that did not replay to itself.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Difference {
    /// The instance the step belongs to.
    pub instance: String,
    /// The workflow's id.
    pub workflow: String,
    /// The step's number in the instance's history (0 for the start).
    pub seq: u64,
    /// The kind of step (`None` when its record cannot be read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<EntryKind>,
    /// The event the step fired.
    pub event: String,
    /// Who took the step.
    pub actor: String,
    /// The role the actor acted in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// When the step was recorded (`None` when its record cannot be read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
    /// The definition version the step was recorded under.
    pub version: String,
    /// What replaying the step gave instead.
    #[serde(flatten)]
    pub found: Found,
}

/// What replaying a step gave instead of the recorded entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Found {
    /// The step produces another entry; these parts differ.
    Differs {
        /// The entry's fields whose recorded and replayed values differ.
        parts: Vec<Part>,
    },
    /// The step is refused now.
    Refused {
        /// The refusal's machine-readable name (`role_not_allowed`, `guard_failed`...).
        code: &'static str,
        /// The refusal's message, as a person would read it.
        reason: String,
    },
    /// The step could not be run: its definition version cannot be loaded, its record cannot
    /// be read, or its history is broken (the rest of the instance is not replayed).
    NotReplayed {
        /// Why the step could not be run.
        reason: String,
    },
}

/// One part of an entry that differs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Part {
    /// The entry's field: `to`, `changes`, `guards`, `signers`, `timers_armed`...
    pub part: String,
    /// What the field means, in words.
    pub title: &'static str,
    /// The field's value in the stored entry.
    pub recorded: Value,
    /// The field's value as the step computes it now.
    pub replayed: Value,
    /// What may explain the difference (a changed calendar, a hash that is not its content's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Why only a calendar can explain a due time that differs.
pub const CALENDAR_NOTE: &str = "due times are computed on the business calendar, which is not part of the version hash: a changed calendar file (holidays published, opening hours) moves them without a new version";

impl Difference {
    fn at_entry(entry: &Entry, found: Found) -> Difference {
        Difference {
            instance: entry.instance.to_string(),
            workflow: entry.workflow.to_string(),
            seq: entry.seq,
            kind: Some(entry.kind),
            event: entry.event.to_string(),
            actor: entry.actor.to_string(),
            role: entry.role.as_deref().map(str::to_string),
            at: Some(entry.at),
            version: entry.version.clone(),
            found,
        }
    }

    /// The step, as a person reads it: `expense-3 #2 approve by li (finance) at ...`.
    pub fn heading(&self) -> String {
        let Some(at) = self.at else {
            return format!("{} #{} (unreadable record)", self.instance, self.seq);
        };
        let role = self
            .role
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        format!(
            "{} #{} `{}` by {}{} at {} (version {})",
            self.instance,
            self.seq,
            self.event,
            self.actor,
            role,
            at.to_rfc3339_opts(SecondsFormat::Secs, true),
            short(&self.version)
        )
    }

    /// The finding, in lines: a heading, then one line per differing part.
    pub fn message(&self) -> String {
        let mut out = self.heading();
        match &self.found {
            Found::Differs { parts } => {
                out.push_str(": replays differently");
                for part in parts {
                    let _ = write!(
                        out,
                        "\n  {} ({}): recorded {}, replayed {}",
                        part.title,
                        part.part,
                        compact(&part.recorded),
                        compact(&part.replayed)
                    );
                    if let Some(note) = &part.note {
                        let _ = write!(out, "\n    note: {note}");
                    }
                }
            }
            Found::Refused { code, reason } => {
                let _ = write!(out, ": the step is now refused: {reason} ({code})");
            }
            Found::NotReplayed { reason } => {
                let _ = write!(out, ": not replayed: {reason}");
            }
        }
        out
    }
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

fn compact(value: &Value) -> String {
    match value {
        Value::Null => "nothing".into(),
        Value::String(s) => format!("`{s}`"),
        other => other.to_string(),
    }
}

/// Replays one instance's history (oldest first): see the module's documentation.
/// `definition` gives the compiled definition of a version hash.
pub fn replay(
    history: &[Entry],
    definition: &dyn Fn(&str) -> Result<Arc<Definition>, String>,
    sandbox: &Sandbox,
) -> ReplayReport {
    let mut report = ReplayReport {
        instances: u64::from(!history.is_empty()),
        ..ReplayReport::default()
    };
    let mut folded: Option<Instance> = None;
    // A version that cannot be loaded is reported once per instance.
    let mut unloadable: BTreeSet<String> = BTreeSet::new();
    for entry in history {
        report.entries += 1;
        match replay_step(entry, folded.as_ref(), definition, sandbox) {
            Ok(None) => {}
            Ok(Some(found)) => report.differences.push(Difference::at_entry(entry, found)),
            Err(Unloadable { version, reason }) => {
                if unloadable.insert(version) {
                    report
                        .differences
                        .push(Difference::at_entry(entry, Found::NotReplayed { reason }));
                }
            }
        }
        let next = match folded.take() {
            None => Instance::begin(entry),
            Some(mut instance) => instance.apply(entry).map(|()| instance),
        };
        match next {
            Ok(instance) => folded = Some(instance),
            Err(err) => {
                report.differences.push(Difference::at_entry(
                    entry,
                    Found::NotReplayed {
                        reason: format!(
                            "{err}: the history is broken here (`sopflow audit verify` says more); the rest of the instance is not replayed"
                        ),
                    },
                ));
                break;
            }
        }
    }
    report
}

/// A definition version that cannot be loaded.
struct Unloadable {
    version: String,
    reason: String,
}

/// Replays one entry against the instance folded so far: `None` when it replays to itself.
fn replay_step(
    entry: &Entry,
    folded: Option<&Instance>,
    definition: &dyn Fn(&str) -> Result<Arc<Definition>, String>,
    sandbox: &Sandbox,
) -> Result<Option<Found>, Unloadable> {
    let load = |version: &str| {
        definition(version).map_err(|why| Unloadable {
            version: version.to_string(),
            reason: format!("definition version {version} cannot be loaded: {why}"),
        })
    };
    let not_replayed = |reason: &str| {
        Ok(Some(Found::NotReplayed {
            reason: reason.into(),
        }))
    };
    let produced = match (entry.kind, folded) {
        (EntryKind::Start, None) => {
            let def = load(&entry.version)?;
            let command = Start {
                id: entry.instance.to_string(),
                actor: actor_of(entry),
                data: entry.changes.clone(),
                business_key: entry.business_key.clone(),
                parent: entry.parent.clone(),
                idempotency_key: entry.idempotency_key.clone(),
                at: entry.at,
                number: entry.number.clone(),
            };
            machine::start(&def, &command, sandbox)
        }
        (EntryKind::Start, Some(_)) => {
            return not_replayed("a start in the middle of a history");
        }
        (_, None) => return not_replayed("the history does not begin with a start"),
        (EntryKind::Event, Some(instance)) => {
            let def = load(&instance.version)?;
            let command = Command {
                event: entry.event.to_string(),
                actor: actor_of(entry),
                payload: entry.payload.clone(),
                idempotency_key: entry.idempotency_key.clone(),
                at: entry.at,
                expected_seq: None,
            };
            let produced = machine::step(&def, instance, &command, sandbox);
            match (&produced, wider_actor(&def, instance, entry)) {
                (Ok(replayed), _) if reproduces(entry, replayed) => produced,
                (_, Some(actor)) => {
                    let retried =
                        machine::step(&def, instance, &Command { actor, ..command }, sandbox);
                    match retried {
                        Ok(replayed) if reproduces(entry, &replayed) => Ok(replayed),
                        _ => produced,
                    }
                }
                (_, None) => produced,
            }
        }
        (EntryKind::Timer, Some(instance)) => {
            let Some(timer) = &entry.timer else {
                return not_replayed("a timer entry that does not say which timer fired");
            };
            let def = load(&instance.version)?;
            machine::fire_timer(&def, instance, &timer.id, entry.at, sandbox)
        }
        (EntryKind::Migrate, Some(instance)) => {
            let Some(migration) = &entry.migration else {
                return not_replayed("a migration that does not record how it moved the instance");
            };
            let old = load(&instance.version)?;
            let new = load(&entry.version)?;
            let command = machine::Migrate {
                actor: actor_of(entry),
                mapping: migration.mapping.clone(),
                comment: migration.comment.clone(),
                at: entry.at,
            };
            return Ok(
                match machine::migrate(&old, &new, instance, &command, sandbox) {
                    Ok(replayed) if reproduces(entry, &replayed) => None,
                    Ok(replayed) => Some(Found::Differs {
                        parts: compare(entry, &replayed),
                    }),
                    Err(plan) => Some(Found::Refused {
                        code: plan.blockers.first().map_or("blocked", |b| b.code()),
                        reason: format!("the migration is now blocked: {:?}", plan.blockers),
                    }),
                },
            );
        }
        (EntryKind::ChildFinished, Some(instance)) => {
            let Some(child) = &entry.child else {
                return not_replayed("a child's completion that does not name the child");
            };
            Ok(machine::child_finished(
                instance,
                &child.id,
                &child.state,
                entry.at,
            ))
        }
    };
    // The ids of spawned children are the engine's to give, like an instance's own id: the
    // replayed step's children take the recorded ids.
    let produced = produced.map(|mut replayed| {
        if !replayed.spawned.is_empty() {
            let names: Vec<machine::entry::ChildName> = entry
                .spawned
                .iter()
                .map(|c| machine::entry::ChildName {
                    id: c.id.clone(),
                    number: c.number.clone(),
                })
                .collect();
            replayed.name_children(&names);
        }
        replayed
    });
    Ok(match produced {
        Ok(replayed) if reproduces(entry, &replayed) => None,
        Ok(replayed) => Some(Found::Differs {
            parts: compare(entry, &replayed),
        }),
        Err(refusal) => Some(Found::Refused {
            code: refusal.code(),
            reason: refusal.to_string(),
        }),
    })
}

/// The actor as the entry records them: the one role they acted in (none when no role
/// governed the step). The engine's own steps carry the `system` role, which makes the actor
/// the system again.
fn actor_of(entry: &Entry) -> Actor {
    Actor::new(entry.actor.clone(), entry.role.clone())
}

/// The actor with the roles the recorded guards show they also held: a guard is evaluated
/// only on a branch the actor may take, so each recorded guard of a branch for other roles
/// means the actor held one of them. `None` when the guards show nothing more.
fn wider_actor(def: &Definition, instance: &Instance, entry: &Entry) -> Option<Actor> {
    let role = entry.role.as_deref().filter(|r| *r != SYSTEM_ROLE)?;
    let branches = &def
        .workflow
        .states
        .get(&instance.state)?
        .on
        .get(&entry.event)?
        .value
        .0;
    let mut roles = vec![role.to_string()];
    for branch in branches {
        let Some(guard) = &branch.guard else {
            continue;
        };
        if !entry.guards.iter().any(|g| g.guard == guard.value)
            || branch.roles.iter().any(|r| r.value == role)
        {
            continue;
        }
        if let Some(first) = branch.roles.first()
            && !roles.contains(&first.value)
        {
            roles.push(first.value.clone());
        }
    }
    (roles.len() > 1).then(|| Actor::new(entry.actor.clone(), roles))
}

/// What an entry's fields mean, for messages.
fn title_of(field: &str) -> &'static str {
    match field {
        "to" => "to state",
        "from" => "from state",
        "entered" => "entered the state",
        "finished" => "finished",
        "changes" => "changes to the data",
        "payload" => "payload",
        "guards" => "guards and their results",
        "audit" => "kind of step for an auditor",
        "branch" => "branch taken",
        "signature" => "signature",
        "signers" => "signers",
        "timers_armed" => "timers armed",
        "timers_cancelled" => "timers cancelled",
        "spawned" => "children spawned",
        "child" => "child finished",
        "timer" => "timer fired",
        "role" => "role",
        "actor" => "actor",
        "version" => "definition version",
        "workflow" => "workflow",
        "kind" => "kind of step",
        "event" => "event",
        "business_key" => "business key",
        "parent" => "parent",
        "number" => "readable number",
        "idempotency_key" => "idempotency key",
        "prev_hash" => "link to the entry before",
        "hash" => "hash",
        "at" => "time",
        _ => "field",
    }
}

/// Whether a replayed step is the recorded one: the same hash; or, for an entry recorded before
/// steps kept their audit kind and branch, the same hash once those are left out.
fn reproduces(recorded: &Entry, replayed: &Entry) -> bool {
    if replayed.hash == recorded.hash {
        return true;
    }
    if recorded.audit.is_some() || recorded.branch.is_some() {
        return false;
    }
    let mut older = replayed.clone();
    older.audit = None;
    older.branch = None;
    older.seal();
    older.hash == recorded.hash
}

/// The parts of two entries that differ, field by field.
fn compare(recorded: &Entry, replayed: &Entry) -> Vec<Part> {
    let as_map = |entry: &Entry| match serde_json::to_value(entry) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    let (left, right) = (as_map(recorded), as_map(replayed));
    let mut fields: Vec<&String> = left.keys().chain(right.keys()).collect();
    fields.sort_by_key(|f| order_of(f));
    fields.dedup();
    let mut parts = Vec::new();
    for field in fields {
        if field == "hash" {
            continue;
        }
        // Entries recorded before the step kept its audit kind and branch lack them; the
        // replayed step has them. That is not a difference in what the step did.
        if matches!(field.as_str(), "audit" | "branch") && !left.contains_key(field) {
            continue;
        }
        let (a, b) = (
            left.get(field).cloned().unwrap_or(Value::Null),
            right.get(field).cloned().unwrap_or(Value::Null),
        );
        if a == b {
            continue;
        }
        let note = (field == "timers_armed" && due_times_differ(recorded, replayed))
            .then(|| CALENDAR_NOTE.to_string());
        parts.push(Part {
            part: field.clone(),
            title: title_of(field),
            recorded: a,
            replayed: b,
            note,
        });
    }
    if parts.is_empty() {
        // Every field agrees but the hashes do not: the recorded hash is not its content's.
        parts.push(Part {
            part: "hash".into(),
            title: title_of("hash"),
            recorded: Value::String(recorded.hash.clone()),
            replayed: Value::String(replayed.hash.clone()),
            note: Some(
                "the recorded entry's hash does not match its content (`sopflow audit verify`)"
                    .into(),
            ),
        });
    }
    parts
}

/// The entry's field order, so that parts are listed as the entry lists them (anything else
/// last).
fn order_of(field: &str) -> usize {
    let fields = Entry::field_names();
    fields
        .iter()
        .position(|f| *f == field)
        .unwrap_or(fields.len())
}

/// Whether armed timers differ in their due times (or the notes about them).
fn due_times_differ(recorded: &Entry, replayed: &Entry) -> bool {
    recorded.timers_armed.len() != replayed.timers_armed.len()
        || recorded
            .timers_armed
            .iter()
            .zip(&replayed.timers_armed)
            .any(|(a, b)| a.due != b.due || a.note != b.note)
}

/// The definition versions of one replay (or SoD check): each rebuilt once from the store's
/// copy of its sources, remembered by hash (a few per workflow), with notes about versions
/// whose sources were altered.
pub(crate) struct StoredVersions<'e> {
    engine: &'e Engine,
    cache: Mutex<HashMap<String, Result<Arc<Definition>, String>>>,
    notes: Mutex<Vec<String>>,
    known: Mutex<Option<BTreeSet<String>>>,
}

impl<'e> StoredVersions<'e> {
    pub(crate) fn new(engine: &'e Engine) -> StoredVersions<'e> {
        StoredVersions {
            engine,
            cache: Mutex::new(HashMap::new()),
            notes: Mutex::new(Vec::new()),
            known: Mutex::new(None),
        }
    }

    /// The compiled definition of a version.
    pub(crate) fn get(&self, hash: &str) -> Result<Arc<Definition>, String> {
        if let Some(found) = self.lock_cache().get(hash) {
            return found.clone();
        }
        let loaded = self.load(hash);
        self.lock_cache().insert(hash.to_string(), loaded.clone());
        loaded
    }

    /// Notes gathered so far (and forgotten here).
    pub(crate) fn take_notes(&self) -> Vec<String> {
        std::mem::take(&mut *self.notes.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn lock_cache(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, Result<Arc<Definition>, String>>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn load(&self, hash: &str) -> Result<Arc<Definition>, String> {
        let stored = self
            .engine
            .store()
            .definition(hash)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "its sources are not in the store".to_string())?;
        let recomputed = stored.recomputed_hash();
        if recomputed == hash {
            // Intact: the engine's copy (loaded from the files, or rebuilt from these sources)
            // is the same text. Without the files, the engine knows only the workflows it
            // loaded; a version that starts children of others is rebuilt here knowing every
            // stored workflow.
            return match self.engine.definition(hash) {
                Ok(definition) => Ok(definition),
                Err(err) => rebuild(&stored, self.engine.sandbox(), &self.known())
                    .map(Arc::new)
                    .map_err(|_| match err {
                        EngineError::Definition { detail, .. } => detail,
                        other => other.to_string(),
                    }),
            };
        }
        let known = self.known();
        let mut definition = rebuild(&stored, self.engine.sandbox(), &known).map_err(|e| {
            format!("its stored sources were altered (they hash to {recomputed}), and {e}")
        })?;
        definition.hash = hash.to_string();
        self.notes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(format!(
                "the stored sources of version {hash} of `{}` hash to {recomputed}: they were changed after they were stored; they are used as they are now",
                stored.workflow
            ));
        Ok(Arc::new(definition))
    }

    /// Workflows a definition may name (children): those loaded and those stored.
    fn known(&self) -> BTreeSet<String> {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        known
            .get_or_insert_with(|| {
                let mut names: BTreeSet<String> = self.engine.workflows().into_iter().collect();
                for record in self.engine.store().scan_definitions().flatten() {
                    if let Ok(stored) = record.definition {
                        names.insert(stored.workflow);
                    }
                }
                names
            })
            .clone()
    }
}

/// A stored definition version found by its hash or a prefix of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FoundDefinition {
    /// The version's hash (the key it is stored under).
    pub hash: String,
    /// The version's sources and what was recorded with them.
    pub stored: StoredDefinition,
    /// What its sources hash to now; equal to `hash` unless they were altered.
    pub recomputed: String,
}

impl FoundDefinition {
    /// Whether the sources still hash to the version they are stored as.
    pub fn intact(&self) -> bool {
        self.recomputed == self.hash && self.stored.hash == self.hash
    }
}

/// Why a stored definition version was not found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// The text given is not hex digits.
    #[error("`{0}` is not a version hash: give its hex digits (at least 8)")]
    NotAHash(String),
    /// The text given has fewer than [`MIN_PREFIX`] digits.
    #[error("`{0}` is too short: give at least 8 hex digits of the version hash")]
    TooShort(String),
    #[error(
        "no definition version {0} in the store (`sopflow history INSTANCE` shows the versions steps ran under)"
    )]
    /// No stored version begins with the digits given.
    Unknown(String),
    /// More than one stored version begins with the digits given.
    #[error("`{prefix}` is ambiguous: it begins {} versions ({}); give more digits", .matches.len(), .matches.join(", "))]
    Ambiguous {
        /// The digits given.
        prefix: String,
        /// The hashes of every stored version they begin.
        matches: Vec<String>,
    },
    /// The store could not be read, or a stored version could not be decoded.
    #[error("{0}")]
    Store(String),
}

/// The shortest prefix `audit definition` accepts.
pub const MIN_PREFIX: usize = 8;

impl Engine {
    /// Replays one instance (see [`replay`]) with the recorded definition versions, rebuilt
    /// from the store's copy of their sources.
    pub async fn replay(&self, id: &str) -> Result<ReplayReport, EngineError> {
        let history = self.history(id).await?;
        // Versions may be read from the store, and the steps run scripts: off the async threads.
        self.blocking(move |engine| {
            let versions = StoredVersions::new(engine);
            let mut report = replay(&history, &|hash| versions.get(hash), engine.sandbox());
            report.notes = versions.take_notes();
            Ok(report)
        })
        .await
    }

    /// Replays every instance in the store, one history at a time, in id order; `each` gets
    /// each instance's report as soon as it is done. The store is read lazily, so memory
    /// stays that of one history (and of the definition versions used). The store is read and
    /// the steps run on a blocking thread; `each` is called here, as reports come.
    pub async fn replay_all(
        &self,
        each: &mut (dyn FnMut(&ReplayReport) + Send),
    ) -> Result<ReplaySummary, EngineError> {
        let (reports, mut coming) = tokio::sync::mpsc::channel::<ReplayReport>(16);
        let work = self.blocking(move |engine| {
            engine.replay_all_blocking(&mut |report| {
                let _ = reports.blocking_send(report.clone());
            })
        });
        tokio::pin!(work);
        let mut summary = None;
        loop {
            tokio::select! {
                report = coming.recv() => match report {
                    Some(report) => each(&report),
                    None => break,
                },
                done = &mut work, if summary.is_none() => summary = Some(done),
            }
        }
        match summary {
            Some(summary) => summary,
            None => work.await,
        }
    }

    /// [`Engine::replay_all`] on the calling thread, which must be a blocking one.
    fn replay_all_blocking(
        &self,
        each: &mut dyn FnMut(&ReplayReport),
    ) -> Result<ReplaySummary, EngineError> {
        let versions = StoredVersions::new(self);
        let mut summary = ReplaySummary::default();
        let mut finish = |history: &mut Vec<Entry>, bad: Option<Difference>| {
            let mut report = replay(history, &|hash| versions.get(hash), self.sandbox());
            if let Some(bad) = bad {
                report.instances = 1;
                report.differences.push(bad);
            }
            report.notes = versions.take_notes();
            summary.instances += report.instances;
            summary.entries += report.entries;
            summary.differences += report.differences.len() as u64;
            summary.notes.extend(report.notes.iter().cloned());
            each(&report);
            history.clear();
        };
        let mut current: Option<String> = None;
        let mut history: Vec<Entry> = Vec::new();
        // Set when a record of the current instance cannot be read: the rest is skipped.
        let mut bad: Option<Difference> = None;
        for record in self.store().scan_log() {
            let record = record?;
            if current.as_deref() != Some(record.instance.as_str()) {
                if current.is_some() {
                    finish(&mut history, bad.take());
                }
                current = Some(record.instance.clone());
            }
            if bad.is_some() {
                continue;
            }
            match record.entry {
                Ok(entry) => history.push(entry),
                Err(why) => {
                    bad = Some(Difference {
                        instance: record.instance.clone(),
                        workflow: history
                            .first()
                            .map(|e| e.workflow.to_string())
                            .unwrap_or_default(),
                        seq: record.seq,
                        kind: None,
                        event: String::new(),
                        actor: String::new(),
                        role: None,
                        at: None,
                        version: history
                            .first()
                            .map(|e| e.version.clone())
                            .unwrap_or_default(),
                        found: Found::NotReplayed {
                            reason: format!(
                                "the stored entry cannot be read ({why}); the rest of the instance is not replayed"
                            ),
                        },
                    });
                }
            }
        }
        if current.is_some() {
            finish(&mut history, bad.take());
        }
        Ok(summary)
    }

    /// A stored definition version by its hash, or by a unique prefix of at least
    /// [`MIN_PREFIX`] hex digits, with what its sources hash to now.
    pub async fn find_definition(&self, hash: &str) -> Result<FoundDefinition, LookupError> {
        let hash = hash.to_string();
        self.blocking(move |engine| Ok(engine.find_definition_blocking(&hash)))
            .await
            .map_err(|e| LookupError::Store(e.to_string()))?
    }

    fn find_definition_blocking(&self, hash: &str) -> Result<FoundDefinition, LookupError> {
        let wanted = hash.trim().to_ascii_lowercase();
        if wanted.is_empty() || !wanted.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(LookupError::NotAHash(hash.to_string()));
        }
        if wanted.len() < MIN_PREFIX {
            return Err(LookupError::TooShort(hash.to_string()));
        }
        let store = self.store();
        let (key, found) = match store
            .definition(&wanted)
            .map_err(|e| LookupError::Store(e.to_string()))?
        {
            Some(stored) => (wanted, stored),
            None => {
                let mut matches = Vec::new();
                let mut first = None;
                for record in store.scan_definitions() {
                    let record = record.map_err(|e| LookupError::Store(e.to_string()))?;
                    if record.hash.starts_with(&wanted) {
                        matches.push(record.hash.clone());
                        if first.is_none() {
                            first = Some(record);
                        }
                    }
                }
                match (matches.len(), first) {
                    (1, Some(record)) => {
                        let stored = record.definition.map_err(|why| {
                            LookupError::Store(format!(
                                "the stored sources of version {} cannot be read: {why}",
                                record.hash
                            ))
                        })?;
                        (record.hash, stored)
                    }
                    (0, _) | (_, None) => return Err(LookupError::Unknown(hash.to_string())),
                    _ => {
                        return Err(LookupError::Ambiguous {
                            prefix: hash.to_string(),
                            matches,
                        });
                    }
                }
            }
        };
        let recomputed = found.recomputed_hash();
        Ok(FoundDefinition {
            hash: key,
            stored: found,
            recomputed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_follow_the_entry_order() {
        assert!(order_of("to") < order_of("guards"));
        assert!(order_of("guards") < order_of("timers_armed"));
        assert_eq!(order_of("unknown"), order_of("hash") + 1);
    }

    fn entry(timers: Value) -> Entry {
        let mut entry: Entry = serde_json::from_value(serde_json::json!({
            "instance": "w-1", "seq": 1, "kind": "event", "workflow": "w", "version": "v",
            "event": "submit", "from": "a", "to": "b", "entered": true, "finished": false,
            "actor": "li", "role": "clerk", "payload": {}, "changes": {},
            "timers_armed": timers, "at": "2026-03-02T02:00:00Z", "prev_hash": "p",
            "hash": ""
        }))
        .expect("an entry");
        entry.seal();
        entry
    }

    #[test]
    fn a_due_time_that_differs_is_put_down_to_the_calendar() {
        let timer = |due: &str| serde_json::json!([{"id": "1-0", "event": "late", "due": due, "title": null}]);
        let recorded = entry(timer("2026-03-11T01:30:00Z"));
        let replayed = entry(timer("2026-03-12T01:30:00Z"));
        let parts = compare(&recorded, &replayed);
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].part, "timers_armed");
        assert_eq!(parts[0].note.as_deref(), Some(CALENDAR_NOTE));
        let other_event = entry(serde_json::json!([
            {"id": "1-0", "event": "early", "due": "2026-03-11T01:30:00Z", "title": null}
        ]));
        assert_eq!(compare(&recorded, &other_event)[0].note, None);
        let mut altered = recorded.clone();
        altered.hash = "0".repeat(64);
        assert_eq!(compare(&altered, &recorded)[0].part, "hash");
    }

    #[test]
    fn an_entry_recorded_before_audit_kinds_were_kept_still_reproduces() {
        let older = entry(serde_json::json!([]));
        let mut replayed = older.clone();
        replayed.audit = Some(crate::definition::model::AuditKind::Decision);
        replayed.branch = Some(0);
        replayed.seal();
        assert!(reproduces(&older, &replayed));
        assert!(compare(&older, &replayed).iter().all(|p| p.part == "hash"));
        let mut moved = replayed.clone();
        moved.to = "c".into();
        moved.seal();
        assert!(
            !reproduces(&older, &moved),
            "a step that went elsewhere does not"
        );
        let mut recorded_now = replayed.clone();
        recorded_now.branch = Some(1);
        recorded_now.seal();
        assert!(
            !reproduces(&recorded_now, &replayed),
            "an entry that recorded its branch must match it"
        );
    }

    #[test]
    fn values_read_plainly() {
        assert_eq!(compact(&Value::Null), "nothing");
        assert_eq!(compact(&Value::String("a".into())), "`a`");
        assert_eq!(compact(&serde_json::json!([1, 2])), "[1,2]");
    }
}
