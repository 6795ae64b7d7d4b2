//! The approval chain of one instance, in business words.
//!
//! An auditor asks of an instance: who decided each step, in which role, when (in the site's
//! local time as well as UTC), with what comment, which rule routed it and why, and under which
//! definition version. [`approval_chain`] answers from the history alone: it folds the entries
//! through [`Instance::apply`] as it walks them, so each guard is explained with the values it
//! read *before* the step (and each signer's `when` condition with the values after the step's
//! changes, which is when the engine evaluated it).
//!
//! Each step is one [`Link`], of one [`LinkKind`]:
//!
//! - `start`: the instance was started by a person;
//! - `approval`, `rejection`, `decision`: a person's step, as the step recorded it (a
//!   signature of a state's `approval` is always an approval; see [`crate::machine::audit`]
//!   for how a transition's kind is decided, and how entries recorded before the kind was
//!   kept are classified the same way);
//! - `system`: what the engine did by itself: timers and escalations, child completions,
//!   `await_children` events, starts by a schedule or a parent.
//!
//! The chain is pure: it takes the history and a way to get the definition of a version, so
//! the engine ([`Engine::approval_chain`]), the exporter ([`crate::audit::export`]) and tests
//! share it. A version whose definition cannot be had still gives a chain, with identifiers
//! only and times in China Standard Time (the default calendar's).

use crate::definition::Definition;
use crate::definition::model::AuditKind;
use crate::definition::model::{COMMENT, PROCESS_OWNER_ROLE, SYSTEM_ROLE, State, Transition};
use crate::engine::{Engine, EngineError};
use crate::machine::entry::{Entry, EntryKind, PendingSigner};
use crate::machine::{Instance, audit};
use crate::script::Script;
use crate::script::lint::{self, Root};
use chrono::{DateTime, FixedOffset, Offset as _, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

/// The offset of the default calendar (`cn_mainland`, Asia/Shanghai, UTC+8), used for local
/// times when a version's definition cannot be loaded.
pub const DEFAULT_OFFSET_SECONDS: i32 = 8 * 3600;

/// The default local offset, UTC+8.
pub fn default_offset() -> FixedOffset {
    FixedOffset::east_opt(DEFAULT_OFFSET_SECONDS).unwrap_or_else(|| Utc.fix())
}

/// What kind of step a link is (see the module's documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LinkKind {
    /// The instance was started by a person.
    Start,
    /// A person agreed to what was asked: a signature, a review passed.
    Approval,
    /// A person refused or sent the case back.
    Rejection,
    /// Any other step a person took: submitting, sealing, distributing, recording.
    Decision,
    /// What the engine did by itself: timers, escalations, children, scheduled starts.
    System,
    /// A process owner moved the instance to another version of its workflow.
    Migration,
}

impl LinkKind {
    /// The kind's name, as in JSON and CSV.
    pub fn name(self) -> &'static str {
        match self {
            LinkKind::Start => "start",
            LinkKind::Approval => "approval",
            LinkKind::Rejection => "rejection",
            LinkKind::Decision => "decision",
            LinkKind::System => "system",
            LinkKind::Migration => "migration",
        }
    }

    /// The kind in the manuals' words: 发起, 审批, 退回, 办理, 系统, 版本迁移.
    pub fn title(self) -> &'static str {
        match self {
            LinkKind::Start => "发起",
            LinkKind::Approval => "审批",
            LinkKind::Rejection => "退回",
            LinkKind::Decision => "办理",
            LinkKind::System => "系统",
            LinkKind::Migration => "版本迁移",
        }
    }

    /// Whether a person took the step (everything but `system`): the steps an export lists.
    pub fn by_person(self) -> bool {
        self != LinkKind::System
    }
}

/// The approval chain of one instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ApprovalChain {
    /// The instance's id.
    pub instance: String,
    /// The workflow's id (`lease_renewal`).
    pub workflow: String,
    /// The workflow's title, when its definition could be loaded.
    pub workflow_title: Option<String>,
    /// The business key (a contract or unit number) the instance is found by.
    pub business_key: Option<String>,
    /// The parent instance, for a child.
    pub parent: Option<String>,
    /// Where the instance stands now.
    pub state: String,
    /// The title of the current state.
    pub state_title: Option<String>,
    /// Whether the instance has reached a final state.
    pub finished: bool,
    /// The definition version the instance started on (each link names its own).
    pub version: String,
    /// The local offset of the workflow's calendar, in which `at_local` is given (`+08:00`).
    pub timezone: String,
    /// The calendar's id (`cn_mainland`), when the definition could be loaded.
    pub calendar: Option<String>,
    /// Every step, oldest first, the start included.
    pub links: Vec<Link>,
    /// What could not be explained: a version whose definition is not available, a history
    /// that does not chain (`sopflow audit verify` says more).
    pub notes: Vec<String>,
}

/// One step of the chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Link {
    /// The step's number in the history: 0 for the start, then one more per step.
    pub seq: u64,
    /// Who took the step and how: a person's start, approval, rejection or decision, or the system.
    pub kind: LinkKind,
    /// The event fired (for the start, `start`).
    pub event: String,
    /// The transition's title (`初审通过`), or for a signature the signer's title.
    pub event_title: Option<String>,
    /// The state the step left (`None` for the start).
    pub from: Option<String>,
    /// The title of the state the step left.
    pub from_title: Option<String>,
    /// The state the instance was in after the step.
    pub to: String,
    /// The title of the state after the step.
    pub to_title: Option<String>,
    /// False when the step stayed in its state (a signature that did not complete its
    /// approval, a child finishing, a lapsed timer).
    pub moved: bool,
    /// Whether the step finished the instance.
    pub finished: bool,
    /// Who took the step (`system` for the engine's own steps).
    pub actor: String,
    /// The role the actor acted in (`None` only for steps no role governs).
    pub role: Option<String>,
    /// The role's title (`财务主管`).
    pub role_title: Option<String>,
    /// When the step was taken, in UTC.
    pub at_utc: DateTime<Utc>,
    /// The same instant in the workflow calendar's local time.
    pub at_local: DateTime<FixedOffset>,
    /// The step's `comment` (the reason of a rejection, an approver's opinion).
    pub comment: Option<String>,
    /// Fields the step set (its payload, less the comment, and its action's result).
    pub changes: Vec<FieldValue>,
    /// Every guard evaluated in the step, explained.
    pub guards: Vec<GuardExplained>,
    /// For a signature: which signer of the approval signed.
    pub signature: Option<SignatureInfo>,
    /// For a signature: every signer of the approval, required or skipped, and why.
    pub signers: Vec<SignerExplained>,
    /// For system steps and spawning steps: the timer that fired, the child that finished,
    /// the children started.
    pub notes: Vec<String>,
    /// The definition version the step ran under (for a migration, the one it moved to).
    pub version: String,
    /// For a migration: the version the instance ran on before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_version: Option<String>,
}

/// A value a guard read, or a field a step set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FieldValue {
    /// `amount` for a data field, `payload.amount`, `params.landlord_threshold`.
    pub field: String,
    /// The field's or parameter's title (`审批金额(元)`).
    pub title: Option<String>,
    /// The value (null when the field was not set).
    pub value: Value,
}

/// Why a guard was evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GuardPurpose {
    /// A transition's guard, evaluated on the data before the step.
    Transition,
    /// A signer's `when` condition, evaluated on entering the approval's state, on the data
    /// after the step's changes.
    Signer,
}

/// A guard, what it read and whether it held.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GuardExplained {
    /// The guard as written (`data.amount >= 15000`, `expense::needs_chairman`).
    pub guard: String,
    /// Whether the guard held.
    pub passed: bool,
    /// Whether it guarded a transition or decided a signer.
    pub purpose: GuardPurpose,
    /// The data fields (and payload fields and parameters) it reads, with their values then.
    pub values: Vec<FieldValue>,
    /// `data.amount >= 15000 (amount = 18000): held`.
    pub text: String,
}

/// The signature a step added.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SignatureInfo {
    /// The signer's position in the approval's `signers`, from 1.
    pub signer: usize,
    /// How many signers the approval lists.
    pub of: usize,
    /// The signer's title (`业户签名`).
    pub title: Option<String>,
    /// The role the signer signed in.
    pub role: String,
    /// The role's title (`业主方`).
    pub role_title: Option<String>,
    /// Who signed.
    pub actor: String,
    /// When they signed.
    pub at: DateTime<Utc>,
    /// Whether this signature completed the approval.
    pub completed: bool,
    /// `signer 2 of 3: 业主方 (landlord)`.
    pub text: String,
}

/// A signer of an approval, as evaluated on entering its state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SignerExplained {
    /// Position in the approval's `signers`, from 1.
    pub index: usize,
    /// The role that must (or may) sign.
    pub role: String,
    /// The role's title.
    pub role_title: Option<String>,
    /// The signer's own title in the approval (`业户签名`).
    pub title: Option<String>,
    /// The signer's condition, if it has one.
    pub when: Option<String>,
    /// Whether the signer must sign: it has no condition, its condition held, or no signer's
    /// condition held (then every signer signs).
    pub required: bool,
    /// What the condition read, after the changes of the step that entered the state.
    pub values: Vec<FieldValue>,
    /// `业主方 landlord: required, because data.amount >= 15000 (amount = 18000)`.
    pub text: String,
}

/// The approval chain of the instance whose whole history is `history` (oldest first), or
/// `None` for an empty history. `definition` gives the definition of a version hash (`None`
/// when it cannot be had; the chain then names identifiers only).
pub fn approval_chain(
    history: &[Entry],
    mut definition: impl FnMut(&str) -> Option<Arc<Definition>>,
) -> Option<ApprovalChain> {
    let first = history.first()?;
    let mut walker = Walker::new(&mut definition);
    let links: Vec<Link> = history.iter().map(|entry| walker.link(entry)).collect();
    let start_definition = walker.definition(&first.version);
    let last = history.last().unwrap_or(first);
    let instance = walker.instance.as_ref();
    let state = instance.map_or_else(|| last.to.clone(), |i| i.state.as_str().into());
    let offset = start_definition
        .as_ref()
        .map_or_else(default_offset, |d| d.calendar.offset());
    Some(ApprovalChain {
        instance: first.instance.to_string(),
        workflow: first.workflow.to_string(),
        workflow_title: start_definition
            .as_ref()
            .map(|d| d.workflow.title.clone())
            .filter(|t| !t.is_empty()),
        business_key: instance
            .and_then(|i| i.business_key.clone())
            .or_else(|| first.business_key.clone()),
        parent: instance
            .and_then(|i| i.parent.clone())
            .or_else(|| first.parent.clone()),
        state_title: state_title(
            start_definition
                .as_deref()
                .or(walker.definition(&last.version).as_deref()),
            &state,
        ),
        state: state.to_string(),
        finished: last.finished,
        version: first.version.clone(),
        timezone: offset.to_string(),
        calendar: start_definition
            .as_ref()
            .map(|d| d.calendar.id().to_string()),
        links,
        notes: std::mem::take(&mut walker.notes),
    })
}

impl Engine {
    /// The approval chain of an instance (see [`approval_chain`]): one prefix read of its
    /// history, explained with the definition versions it ran under.
    pub async fn approval_chain(&self, id: &str) -> Result<ApprovalChain, EngineError> {
        let history = self.history(id).await?;
        approval_chain(&history, |version| self.definition(version).ok())
            .ok_or_else(|| EngineError::UnknownInstance { id: id.to_string() })
    }
}

/// What a script reads from its context.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Read {
    root: Root,
    name: String,
}

/// Walks one instance's history at a time, explaining each entry with the instance as it was
/// before it. Memory: the current instance, and per definition version what each script reads.
pub(crate) struct Walker<'d> {
    definitions: &'d mut dyn FnMut(&str) -> Option<Arc<Definition>>,
    versions: HashMap<String, Option<Arc<Definition>>>,
    reads: HashMap<(String, String), Arc<[Read]>>,
    /// The instance as of the last entry walked.
    pub(crate) instance: Option<Instance>,
    /// The signers of the approval in progress, explained when its state was entered.
    signers: Vec<SignerExplained>,
    pub(crate) notes: Vec<String>,
}

impl<'d> Walker<'d> {
    pub(crate) fn new(definitions: &'d mut dyn FnMut(&str) -> Option<Arc<Definition>>) -> Self {
        Walker {
            definitions,
            versions: HashMap::new(),
            reads: HashMap::new(),
            instance: None,
            signers: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Forgets the current instance: the next entry starts another.
    pub(crate) fn reset(&mut self) {
        self.instance = None;
        self.signers.clear();
        self.notes.clear();
    }

    /// The definition of a version, asked for once.
    pub(crate) fn definition(&mut self, version: &str) -> Option<Arc<Definition>> {
        if let Some(found) = self.versions.get(version) {
            return found.clone();
        }
        let found = (self.definitions)(version);
        if found.is_none() {
            self.notes.push(format!(
                "definition version {version} cannot be loaded: steps under it are shown without titles, and times in UTC+08:00"
            ));
        }
        self.versions.insert(version.to_string(), found.clone());
        found
    }

    /// The link of the next entry, explained with the instance before it; then folds it.
    pub(crate) fn link(&mut self, entry: &Entry) -> Link {
        let def = self.definition(&entry.version);
        let def = def.as_deref();
        let empty = Map::new();
        let before_instance = self
            .instance
            .as_ref()
            .filter(|i| i.id == entry.instance && entry.kind != EntryKind::Start);
        let before = before_instance.map_or(&empty, |i| &i.data);
        let kind = classify(entry, def);
        let offset = def.map_or_else(default_offset, |d| d.calendar.offset());

        // Signer conditions come last among the guards, evaluated on the data after the step.
        let conditions = if entry.signers.is_some() && entry.entered {
            def.and_then(|d| d.workflow.states.get(&entry.to))
                .and_then(|s| s.approval.as_ref())
                .map_or(0, |a| a.signers.iter().filter(|s| s.when.is_some()).count())
        } else {
            0
        };
        let conditions = if entry.kind == EntryKind::Start && def.is_none() {
            entry.guards.len()
        } else {
            conditions.min(entry.guards.len())
        };
        let split = entry.guards.len() - conditions;
        let after = (conditions > 0).then(|| {
            let mut data = before.clone();
            data.extend(entry.changes.iter().map(|(k, v)| (k.clone(), v.clone())));
            data
        });
        let mut guards = Vec::with_capacity(entry.guards.len());
        for (i, guard) in entry.guards.iter().enumerate() {
            let (data, purpose) = match (&after, i >= split) {
                (Some(after), true) => (after, GuardPurpose::Signer),
                _ => (before, GuardPurpose::Transition),
            };
            let values = values(
                &mut self.reads,
                def,
                &entry.version,
                &guard.guard,
                data,
                &entry.payload,
            );
            guards.push(GuardExplained {
                text: guard_text(&guard.guard, &values, guard.passed),
                guard: guard.guard.clone(),
                passed: guard.passed,
                purpose,
                values,
            });
        }

        let from_state = def
            .zip(entry.from.as_deref())
            .and_then(|(d, f)| d.workflow.states.get(f));
        let signature = entry.signature.as_ref().map(|s| {
            let of = before_instance
                .and_then(|i| i.approval.as_ref())
                .map_or(0, |a| a.signers.len())
                .max(
                    from_state
                        .and_then(|s| s.approval.as_ref())
                        .map_or(0, |a| a.signers.len()),
                );
            let title = from_state
                .and_then(|st| st.approval.as_ref())
                .and_then(|a| a.signers.get(s.signer))
                .and_then(|x| x.title.clone());
            let role_title = role_title(def, &s.role);
            let text = format!(
                "signer {} of {}: {}",
                s.signer + 1,
                of.max(s.signer + 1),
                named_with(&s.role, title.as_deref().or(role_title.as_deref()))
            );
            SignatureInfo {
                signer: s.signer + 1,
                of: of.max(s.signer + 1),
                title,
                role: s.role.clone(),
                role_title,
                actor: s.actor.clone(),
                at: s.at,
                completed: entry.entered,
                text,
            }
        });
        let signers = if signature.is_some() {
            self.signers.clone()
        } else {
            Vec::new()
        };
        let event_title = match (&signature, def, from_state) {
            (Some(s), _, _) => s.title.clone(),
            (None, Some(_), Some(state)) => taken(state, entry).and_then(|t| t.title.clone()),
            _ => None,
        };
        let mut notes = Vec::new();
        if let Some(timer) = &entry.timer {
            let name = timer.title.as_deref().unwrap_or(&timer.id);
            let due = timer.due.with_timezone(&offset);
            match &timer.refused {
                Some(why) => {
                    notes.push(format!("timer {name} (due {}) lapsed: {why}", local(&due)))
                }
                None => notes.push(format!("timer {name} fell due {}", local(&due))),
            }
        }
        if let Some(child) = &entry.child {
            notes.push(format!("child {} finished in {}", child.id, child.state));
        }
        for child in &entry.spawned {
            notes.push(format!("started child {} ({})", child.id, child.workflow));
        }
        if kind == LinkKind::System && entry.kind == EntryKind::Event {
            notes.push("fired by the engine".to_string());
        }
        let changes = entry
            .changes
            .iter()
            .filter(|(k, _)| k.as_str() != COMMENT)
            .map(|(k, v)| FieldValue {
                field: k.clone(),
                title: field_title(def, k),
                value: v.clone(),
            })
            .collect();

        // A migration left a state of the version before it.
        let from_title = match (&entry.migration, entry.from.as_deref()) {
            (Some(migration), Some(from)) => {
                let before = self.definition(&migration.from_version);
                state_title(before.as_deref(), from)
            }
            (None, Some(from)) => state_title(def, from),
            (_, None) => None,
        };
        let link = Link {
            seq: entry.seq,
            kind,
            event: entry.event.to_string(),
            event_title,
            from: entry.from.as_deref().map(str::to_string),
            from_title,
            to: entry.to.to_string(),
            to_title: state_title(def, &entry.to),
            moved: entry.entered || entry.from.as_deref() != Some(entry.to.as_str()),
            finished: entry.finished,
            actor: entry.actor.to_string(),
            role: entry.role.as_deref().map(str::to_string),
            role_title: entry.role.as_deref().and_then(|r| role_title(def, r)),
            at_utc: entry.at,
            at_local: entry.at.with_timezone(&offset),
            comment: comment(entry),
            changes,
            guards,
            signature,
            signers,
            notes,
            version: entry.version.clone(),
            from_version: entry.migration.as_ref().map(|m| m.from_version.clone()),
        };
        self.fold(entry);
        link
    }

    /// Applies an entry without explaining it.
    pub(crate) fn fold(&mut self, entry: &Entry) {
        match &mut self.instance {
            Some(instance) if instance.id == entry.instance && entry.kind != EntryKind::Start => {
                if let Err(error) = instance.apply(entry) {
                    self.notes.push(format!(
                        "entry {} of {}: {error}; the values shown after it may be incomplete (`sopflow audit verify` shows the break)",
                        entry.seq, entry.instance
                    ));
                    if let Some(seq) = entry.seq.checked_sub(1) {
                        instance.seq = seq;
                        instance.last_hash = entry.prev_hash.clone();
                        let _ = instance.apply(entry);
                    }
                }
            }
            _ => match Instance::begin(entry) {
                Ok(instance) => self.instance = Some(instance),
                Err(error) => {
                    self.notes.push(format!(
                        "{error}: the history is shown from entry {}, without what came before",
                        entry.seq
                    ));
                    self.instance = Some(Instance::from_entry(entry));
                }
            },
        }
        if entry.entered {
            self.signers.clear();
            if let Some(signers) = &entry.signers {
                self.signers = self.explain_signers(entry, signers);
            }
        }
    }

    /// The signers of the approval a step entered, with the data after the step.
    fn explain_signers(
        &mut self,
        entry: &Entry,
        signers: &[PendingSigner],
    ) -> Vec<SignerExplained> {
        let def = self.definition(&entry.version);
        let def = def.as_deref();
        let declared = def
            .and_then(|d| d.workflow.states.get(&entry.to))
            .and_then(|s| s.approval.as_ref());
        let empty = Map::new();
        let data = self.instance.as_ref().map_or(&empty, |i| &i.data);
        let data = data.clone();
        let nobody = !signers.iter().any(|s| s.required);
        let mut out = Vec::with_capacity(signers.len());
        for (i, signer) in signers.iter().enumerate() {
            let when = declared
                .and_then(|a| a.signers.get(i))
                .and_then(|s| s.when.as_ref())
                .map(|w| w.value.clone());
            let values = match &when {
                Some(w) => values(
                    &mut self.reads,
                    def,
                    &entry.version,
                    w,
                    &data,
                    &entry.payload,
                ),
                None => Vec::new(),
            };
            let role_title = role_title(def, &signer.role);
            let name = format!(
                "{} {}",
                signer
                    .title
                    .as_deref()
                    .or(role_title.as_deref())
                    .unwrap_or(&signer.role),
                signer.role
            );
            let name = if signer.title.is_none() && role_title.is_none() {
                signer.role.clone()
            } else {
                name
            };
            let reads = with_values(when.as_deref().unwrap_or(""), &values);
            let text = match (&when, signer.required) {
                (None, _) => format!("{name}: required (always)"),
                (Some(_), true) => format!("{name}: required, because {reads}"),
                (Some(_), false) if nobody => format!(
                    "{name}: required, because no signer's condition held (then every signer signs); {reads} did not hold"
                ),
                (Some(_), false) => format!("{name}: skipped, because {reads} did not hold"),
            };
            out.push(SignerExplained {
                index: i + 1,
                role: signer.role.clone(),
                role_title,
                title: signer.title.clone(),
                when,
                required: signer.required || nobody,
                values,
                text,
            });
        }
        out
    }
}

/// The values a script reads: data fields from `data`, payload fields from `payload`,
/// parameters from the definition.
fn values(
    cache: &mut HashMap<(String, String), Arc<[Read]>>,
    def: Option<&Definition>,
    version: &str,
    script: &str,
    data: &Map<String, Value>,
    payload: &Map<String, Value>,
) -> Vec<FieldValue> {
    let key = (version.to_string(), script.to_string());
    let reads = match cache.get(&key) {
        Some(reads) => reads.clone(),
        None => {
            let reads: Arc<[Read]> = reads_of(def, script).into();
            cache.insert(key, reads.clone());
            reads
        }
    };
    let params = def.and_then(|d| d.params.read_lock::<rhai::Map>());
    reads
        .iter()
        .filter_map(|read| {
            let (field, title, value) = match read.root {
                Root::Data => (
                    read.name.clone(),
                    field_title(def, &read.name),
                    data.get(&read.name).cloned(),
                ),
                Root::Payload => (
                    format!("payload.{}", read.name),
                    field_title(def, &read.name),
                    payload.get(&read.name).cloned(),
                ),
                Root::Params => (
                    format!("params.{}", read.name),
                    def.and_then(|d| d.workflow.parameters.get(&read.name))
                        .and_then(|p| p.title.clone()),
                    params
                        .as_deref()
                        .and_then(|p| p.get(read.name.as_str()))
                        .and_then(crate::machine::value::from_dynamic),
                ),
                Root::Actor => return None,
            };
            Some(FieldValue {
                field,
                title,
                value: value.unwrap_or(Value::Null),
            })
        })
        .collect()
}

/// What a script reads: from its compiled AST (following calls between the functions of a
/// rules file), or, without its definition, the `data.NAME`, `payload.NAME` and `params.NAME`
/// written in it.
fn reads_of(def: Option<&Definition>, script: &str) -> Vec<Read> {
    let mut out: Vec<Read> = Vec::new();
    let mut add = |root: Root, name: &str| {
        if root != Root::Actor && !out.iter().any(|r| r.root == root && r.name == name) {
            out.push(Read {
                root,
                name: name.to_string(),
            });
        }
    };
    match def.and_then(|d| d.scripts.get(script)) {
        Some(Script::Inline { ast, .. }) => {
            for access in lint::facts(ast).accesses {
                add(access.root, &access.name);
            }
        }
        Some(Script::Rule { function, ast, .. }) => {
            let defined: HashSet<&str> = ast.iter_functions().map(|f| f.name).collect();
            let mut queue = VecDeque::from([function.clone()]);
            let mut seen = HashSet::new();
            while let Some(name) = queue.pop_front() {
                if !seen.insert(name.clone()) || seen.len() > 64 {
                    continue;
                }
                let facts = lint::function_facts(ast, &name);
                for access in &facts.accesses {
                    add(access.root, &access.name);
                }
                for call in facts.calls {
                    if defined.contains(call.name.as_str()) {
                        queue.push_back(call.name);
                    }
                }
            }
        }
        None => {
            for (root, prefix) in [
                (Root::Data, "data."),
                (Root::Payload, "payload."),
                (Root::Params, "params."),
            ] {
                for name in written_reads(script, prefix) {
                    add(root, name);
                }
            }
        }
    }
    out
}

/// `NAME` of each `prefix NAME` in a text, where the prefix starts a word.
fn written_reads<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find(prefix) {
        let start = from + at;
        let after = start + prefix.len();
        from = after;
        if text[..start].chars().next_back().is_some_and(word) {
            continue;
        }
        let len = text[after..]
            .find(|c: char| !word(c))
            .unwrap_or(text.len() - after);
        if len > 0 {
            out.push(&text[after..after + len]);
        }
    }
    out
}

/// The kind of step an entry records (see the module's documentation).
fn classify(entry: &Entry, def: Option<&Definition>) -> LinkKind {
    let system = entry.role.as_deref() == Some(SYSTEM_ROLE)
        || (entry.role.is_none() && entry.actor == SYSTEM_ROLE);
    match entry.kind {
        EntryKind::Timer | EntryKind::ChildFinished => return LinkKind::System,
        EntryKind::Start if system => return LinkKind::System,
        EntryKind::Start => return LinkKind::Start,
        EntryKind::Event if system => return LinkKind::System,
        EntryKind::Migrate => return LinkKind::Migration,
        EntryKind::Event => {}
    }
    if entry.signature.is_some() {
        return LinkKind::Approval;
    }
    // Recorded by the step since the kind was kept; worked out the same way for older entries.
    let kind = entry
        .audit
        .unwrap_or_else(|| match (def, entry.from.as_deref()) {
            (Some(def), Some(from)) => {
                let branch = def
                    .workflow
                    .states
                    .get(from)
                    .and_then(|state| taken(state, entry));
                audit::kind_of(&def.workflow, from, &entry.event, &entry.to, branch)
            }
            _ => audit::by_name(&entry.event).unwrap_or(AuditKind::Decision),
        });
    match kind {
        AuditKind::Approval => LinkKind::Approval,
        AuditKind::Rejection => LinkKind::Rejection,
        AuditKind::Decision => LinkKind::Decision,
    }
}

/// The branch of the entry's event that the step took: as recorded, or for entries made
/// before it was recorded, the first whose guard held (as recorded) and that leads to where
/// the step went.
fn taken<'s>(state: &'s State, entry: &Entry) -> Option<&'s Transition> {
    let branches = &state.on.get(&entry.event)?.value.0;
    if let Some(recorded) = entry.branch {
        return branches.get(recorded as usize);
    }
    let mut recorded = entry.guards.iter();
    for branch in branches {
        let role_fits = branch.roles.is_empty()
            || entry
                .role
                .as_deref()
                .is_some_and(|r| branch.roles.iter().any(|x| x.as_str() == r));
        if !role_fits {
            continue;
        }
        if let Some(guard) = &branch.guard {
            match recorded.next() {
                Some(result) if result.guard == guard.value && !result.passed => continue,
                _ => {}
            }
        }
        if branch.to.as_str() == entry.to {
            return Some(branch);
        }
    }
    branches.iter().find(|b| b.to.as_str() == entry.to)
}

fn state_title(def: Option<&Definition>, state: &str) -> Option<String> {
    def?.workflow.states.get(state)?.title.clone()
}

fn role_title(def: Option<&Definition>, role: &str) -> Option<String> {
    if role == PROCESS_OWNER_ROLE {
        // Server-wide: no workflow declares it.
        return Some("流程负责人".to_string());
    }
    let title = &def?.workflow.roles.get(role)?.0.title;
    (!title.is_empty()).then(|| title.clone())
}

fn field_title(def: Option<&Definition>, field: &str) -> Option<String> {
    def?.workflow.fields.get(field)?.title.clone()
}

fn comment(entry: &Entry) -> Option<String> {
    if let Some(migration) = &entry.migration {
        return migration.comment.clone();
    }
    match entry.payload.get(COMMENT)? {
        Value::String(text) => Some(text.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// `name (title)`, or the name alone.
fn named_with(name: &str, title: Option<&str>) -> String {
    match title.filter(|t| !t.is_empty()) {
        Some(title) => format!("{title} ({name})"),
        None => name.to_string(),
    }
}

/// A value as an auditor reads it: `18000` (not `18000.0`), `"out"`, `true`, `(not set)`.
pub fn show_value(value: &Value) -> String {
    match value {
        Value::Null => "(not set)".to_string(),
        Value::Number(n) => match n.as_f64() {
            Some(x) if n.is_f64() && x.fract() == 0.0 && x.abs() < 1e15 => format!("{x:.0}"),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

/// `GUARD (a = 1, b = "x")`, or the guard alone when it reads nothing.
fn with_values(guard: &str, values: &[FieldValue]) -> String {
    if values.is_empty() {
        return guard.to_string();
    }
    let list: Vec<String> = values
        .iter()
        .map(|v| format!("{} = {}", v.field, show_value(&v.value)))
        .collect();
    format!("{guard} ({})", list.join(", "))
}

fn guard_text(guard: &str, values: &[FieldValue], passed: bool) -> String {
    let result = if passed { "held" } else { "did not hold" };
    format!("{}: {result}", with_values(guard, values))
}

/// `2026-11-03 10:15:00 +08:00`.
pub fn local(at: &DateTime<FixedOffset>) -> String {
    at.format("%Y-%m-%d %H:%M:%S %:z").to_string()
}

/// `2026-11-03T02:15:00Z`.
pub fn utc(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn money_shows_without_a_fraction_and_texts_quoted() {
        assert_eq!(show_value(&json!(18000.0)), "18000");
        assert_eq!(show_value(&json!(199.5)), "199.5");
        assert_eq!(show_value(&json!(3)), "3");
        assert_eq!(show_value(&json!("out")), "\"out\"");
        assert_eq!(show_value(&Value::Null), "(not set)");
    }

    #[test]
    fn written_reads_find_whole_words_only() {
        assert_eq!(
            written_reads(
                "data.amount >= params.limit && mydata.x == data.budget_type",
                "data."
            ),
            ["amount", "budget_type"]
        );
        assert_eq!(written_reads("params.limit", "params."), ["limit"]);
    }

    #[test]
    fn guard_texts_read_like_a_sentence() {
        let values = vec![FieldValue {
            field: "amount".into(),
            title: None,
            value: json!(18000.0),
        }];
        assert_eq!(
            guard_text("data.amount >= 15000", &values, true),
            "data.amount >= 15000 (amount = 18000): held"
        );
        assert_eq!(guard_text("x", &[], false), "x: did not hold");
    }
}
