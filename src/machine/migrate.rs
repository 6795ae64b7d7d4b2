//! Moving a running instance to another version of its workflow: what the move would do to it
//! (its [`Plan`]), and, when nothing blocks it, the `migrate` history entry that records it.
//!
//! Like [`super::step`], this is pure: the plan is a function of the two versions, the
//! snapshot, the process owner's [`Mapping`] and the time, so `migrate plan` shows exactly what
//! `migrate apply` writes, and audit replay makes the same entry again from what it recorded.
//!
//! What a migration never does silently: drop a signature, change recorded data, fire an event
//! or finish an instance. Dropping signatures and setting fields are options of the mapping that
//! show in the plan and in the entry; firing an event and finishing are not done at all (the
//! instance lands in a state and waits there for its next step, as after any step).
//!
//! The instance keeps its data, its children and its history; what changes is its version,
//! maybe its state (a renamed or removed state is mapped), the signers of its approval
//! (re-evaluated under the new rules, signatures kept by role) and its timers: by default each
//! pending timer whose event a timer of the new state still fires is kept with its due time,
//! the others are cancelled, and a timer the new state adds (one the state the instance was in
//! did not have) is armed from the time of the move.

use super::approval;
use super::command::Actor;
use super::context::{Context, guard_holds};
use super::enter::enter;
use super::entry::{ArmedTimer, Entry, EntryKind, PendingSigner, Signature};
use super::instance::{ApprovalProgress, Instance};
use super::step::convert_payload;
use crate::definition::Definition;
use crate::definition::model::State;
use crate::script::Sandbox;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The event name a migration entry records.
pub const MIGRATE_EVENT: &str = "migrate";

/// The longest way ahead a plan follows.
const ROUTE_LIMIT: usize = 32;

/// How instances move to the new version, as the process owner decides it (on the command
/// line, in a request, or in a YAML file kept next to the workflow).
// Inlined where it is used: a request body and an answer (the `migrate` entry) both hold it,
// and the API's two schema generators must not each define it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(inline)]
pub struct Mapping {
    /// Old state -> new state, for the states the new version renames or removes (or where the
    /// instances should wait from now on). A state not named keeps its name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub states: BTreeMap<String, String>,
    /// Values given to fields: a migration changes no recorded data unless told to here, for
    /// example a field the new version requires from the start.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub set: Map<String, Value>,
    /// Drop the signatures the new approval has no signer for, instead of leaving the instance
    /// where it is.
    #[serde(default, skip_serializing_if = "is_false")]
    pub drop_signatures: bool,
    /// What happens to pending timers.
    #[serde(default, skip_serializing_if = "TimerPolicy::is_keep")]
    pub timers: TimerPolicy,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// What happens to the timers pending in the state an instance leaves.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[schemars(inline)]
#[serde(rename_all = "snake_case")]
pub enum TimerPolicy {
    /// Keep each timer whose event a timer of the new state still fires, with its due time;
    /// cancel the others; arm the timers the new state adds from the time of the move (not
    /// those the old state had, which fired already or were not armed).
    #[default]
    Keep,
    /// Cancel every pending timer and arm the new state's timers from the time of the move.
    Rearm,
}

impl TimerPolicy {
    fn is_keep(&self) -> bool {
        *self == TimerPolicy::Keep
    }
}

/// A migration as a command: who moves the instance, how, when, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Migrate {
    /// The process owner taking the step.
    pub actor: Actor,
    /// How states, fields, signatures and timers move.
    pub mapping: Mapping,
    /// Why, in the process owner's words (recorded in the entry).
    pub comment: Option<String>,
    /// When (the engine's clock, never read here).
    pub at: DateTime<Utc>,
}

/// What a `migrate` entry records beyond an ordinary step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Migration {
    /// The version the instance ran on before (the entry's `version` is the one after).
    pub from_version: String,
    /// The mapping the process owner gave, as given.
    pub mapping: Mapping,
    /// Why, in the process owner's words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The approval of the state after the move: its signers under the new rules and the
    /// signatures kept (`None`: the state has no approval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalProgress>,
    /// Signatures dropped because the mapping said so.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dropped_signatures: Vec<Signature>,
    /// Pending timers kept with their due time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kept_timers: Vec<String>,
}

/// What a migration would do to one running instance. Nothing in it is written.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Plan {
    /// The instance.
    pub instance: String,
    /// Its readable number, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    /// The version it runs on now.
    pub from_version: String,
    /// The version it would run on.
    pub to_version: String,
    /// The state it is in.
    pub state: String,
    /// The state it would be in (`None` when no state of the new version takes it).
    pub lands_in: Option<String>,
    /// Whether `lands_in` comes from the mapping rather than the same name.
    pub mapped: bool,
    /// Fields the move concerns: kept though no longer declared, set by the mapping, missing.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldMove>,
    /// The approval of the state it lands in: signers re-evaluated, signatures kept or dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalMove>,
    /// Each pending timer and each timer the new state arms, and what happens to it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub timers: Vec<TimerMove>,
    /// Children still running, and whether the new state still waits for them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<ChildMove>,
    /// The way ahead by each state's first action, before and after, when it changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<RouteChange>,
    /// Why the instance would not be moved; empty when the plan is clean.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub blockers: Vec<Blocker>,
}

impl Plan {
    /// Whether the instance can be moved as planned.
    pub fn is_clean(&self) -> bool {
        self.blockers.is_empty()
    }
}

/// A field the move concerns.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct FieldMove {
    /// The field.
    pub field: String,
    /// What happens to it.
    pub change: FieldChange,
}

/// What a migration does to a field.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FieldChange {
    /// The new version no longer declares it: its value stays in the record (and in the
    /// history), and the new version's forms and scripts no longer use it.
    Undeclared,
    /// The mapping sets it.
    Set {
        /// Its value before (`None`: it had none).
        before: Option<Value>,
        /// Its value after.
        after: Value,
    },
}

/// The approval after the move.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ApprovalMove {
    /// The signers under the new rules (each `when` evaluated on the instance's data).
    pub signers: Vec<PendingSigner>,
    /// Signatures kept, each under the new signer of its role.
    pub kept: Vec<Signature>,
    /// Signatures dropped (only with `drop_signatures`; otherwise they block).
    pub dropped: Vec<Signature>,
    /// Whether the signers before and after differ.
    pub signers_changed: bool,
}

/// A timer and what the move does to it.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct TimerMove {
    /// The timer: its id, event, title and due time.
    pub timer: ArmedTimer,
    /// What happens to it.
    pub fate: TimerFate,
}

/// What happens to a timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TimerFate {
    /// Kept with its due time: a timer of the new state fires the same event.
    Kept,
    /// Cancelled: no timer of the new state fires its event (or the mapping re-arms all).
    Cancelled,
    /// Armed by the move, due counted from the time of the move under the new rules.
    Armed,
}

/// A child still running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ChildMove {
    /// The child instance.
    pub id: String,
    /// Its workflow.
    pub workflow: String,
    /// Whether the state the parent lands in waits for it to finish.
    pub awaited: bool,
}

/// The way ahead before and after: from the state, each state's first action, on the data as
/// it stands (guards that read what a person will enter end the walk).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct RouteChange {
    /// Under the old version, from the state the instance is in.
    pub before: Vec<String>,
    /// Under the new version, from the state it lands in.
    pub after: Vec<String>,
}

/// Why an instance would not be moved. Each has a stable code and says what would unblock it.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Blocker {
    /// The new version has no state of that name: map it to one.
    StateRemoved {
        /// The state.
        state: String,
    },
    /// The mapping names a state the new version does not have.
    UnknownTarget {
        /// The state mapped from.
        state: String,
        /// The state mapped to.
        to: String,
    },
    /// The instance would land in a final state: a migration does not finish an instance.
    LandsInFinal {
        /// The final state.
        state: String,
    },
    /// No action, approval, timer or awaited child leads out of the state it would land in.
    Stuck {
        /// The state.
        state: String,
    },
    /// A signature the new approval has no signer for (set `drop_signatures` to drop it).
    SignatureWithoutSigner {
        /// The role it was given in.
        role: String,
        /// Who gave it.
        actor: String,
    },
    /// The signatures kept already complete the new approval: nothing would move the instance
    /// on (map it to the state after the approval).
    ApprovalComplete {
        /// The state with the approval.
        state: String,
    },
    /// The new version requires a field at a step the instance has passed, and it has no
    /// value (give one with `set`).
    FieldMissing {
        /// The field.
        field: String,
        /// The step (`start`, or an event already taken) that requires it.
        event: String,
    },
    /// `set` names a field the new version does not declare, or a value it refuses.
    BadValue {
        /// The field.
        field: String,
        /// Why.
        reason: String,
    },
    /// The new state waits for children, but none is running: its event would never fire.
    NothingAwaited {
        /// The state.
        state: String,
    },
    /// A script of the new version failed while arming timers or evaluating signers.
    ScriptFailed {
        /// What the refusal said.
        reason: String,
    },
}

impl Blocker {
    /// The stable code programs read.
    pub fn code(&self) -> &'static str {
        match self {
            Blocker::StateRemoved { .. } => "state_removed",
            Blocker::UnknownTarget { .. } => "unknown_target",
            Blocker::LandsInFinal { .. } => "lands_in_final",
            Blocker::Stuck { .. } => "stuck",
            Blocker::SignatureWithoutSigner { .. } => "signature_without_signer",
            Blocker::ApprovalComplete { .. } => "approval_complete",
            Blocker::FieldMissing { .. } => "field_missing",
            Blocker::BadValue { .. } => "bad_value",
            Blocker::NothingAwaited { .. } => "nothing_awaited",
            Blocker::ScriptFailed { .. } => "script_failed",
        }
    }
}

/// The whole move of one instance: its plan and, when clean, the entry.
struct Move {
    plan: Plan,
    entry: Option<Entry>,
}

/// What moving `instance` from `old` to `new` would do. Nothing is written.
pub fn plan(
    old: &Definition,
    new: &Definition,
    instance: &Instance,
    command: &Migrate,
    sandbox: &Sandbox,
) -> Plan {
    work_out(old, new, instance, command, sandbox).plan
}

/// The `migrate` entry that moves `instance` to `new`, or the plan that says why it cannot be
/// moved.
pub fn migrate(
    old: &Definition,
    new: &Definition,
    instance: &Instance,
    command: &Migrate,
    sandbox: &Sandbox,
) -> Result<Entry, Box<Plan>> {
    let Move { plan, entry } = work_out(old, new, instance, command, sandbox);
    entry.ok_or_else(|| Box::new(plan))
}

fn work_out(
    old: &Definition,
    new: &Definition,
    instance: &Instance,
    command: &Migrate,
    sandbox: &Sandbox,
) -> Move {
    let mapping = &command.mapping;
    let mut plan = Plan {
        instance: instance.id.to_string(),
        number: instance.number.clone(),
        from_version: instance.version.clone(),
        to_version: new.hash.clone(),
        state: instance.state.to_string(),
        lands_in: None,
        mapped: false,
        fields: Vec::new(),
        approval: None,
        timers: Vec::new(),
        children: Vec::new(),
        route: None,
        blockers: Vec::new(),
    };
    let states = &new.workflow.states;
    let (target, mapped) = match mapping.states.get(instance.state.as_str()) {
        Some(to) => (to.clone(), true),
        None => (instance.state.to_string(), false),
    };
    plan.mapped = mapped;
    let Some(state) = states.get(&target) else {
        plan.blockers.push(if mapped {
            Blocker::UnknownTarget {
                state: instance.state.to_string(),
                to: target,
            }
        } else {
            Blocker::StateRemoved {
                state: instance.state.to_string(),
            }
        });
        return Move { plan, entry: None };
    };
    plan.lands_in = Some(target.clone());
    if state.is_final {
        plan.blockers.push(Blocker::LandsInFinal {
            state: target.clone(),
        });
    }

    // Data: what the new version no longer declares stays; what the mapping sets is converted
    // to the new version's types; what it requires at a step already passed must be there.
    let set = match convert_payload(&new.workflow, &mapping.set, false) {
        Ok(set) => set,
        Err(refusal) => {
            plan.blockers.push(Blocker::BadValue {
                field: refused_field(&refusal),
                reason: refusal.to_string(),
            });
            Map::new()
        }
    };
    let mut data = instance.data.clone();
    for (field, value) in &set {
        plan.fields.push(FieldMove {
            field: field.clone(),
            change: FieldChange::Set {
                before: instance.data.get(field).cloned(),
                after: value.clone(),
            },
        });
        data.insert(field.clone(), value.clone());
    }
    for field in instance.data.keys() {
        if !new.workflow.fields.contains(field) {
            plan.fields.push(FieldMove {
                field: field.clone(),
                change: FieldChange::Undeclared,
            });
        }
    }
    for (field, declared) in new.workflow.fields.iter() {
        if super::writes::present(&data, field.as_str()) {
            continue;
        }
        if let Some(event) = declared
            .required_on
            .iter()
            .map(|e| e.as_str())
            .find(|event| passed(instance, event))
        {
            plan.blockers.push(Blocker::FieldMissing {
                field: field.value.clone(),
                event: event.to_string(),
            });
        }
    }

    // What entering the new state would arm and whom its approval would need, under the new
    // rules and at the time of the move. Nothing is entered: only these are taken from it.
    let no_payload = Map::new();
    let ctx = Context::new(new, &data, &no_payload, &command.actor, command.at);
    let seq = instance.seq + 1;
    let entering = match enter(
        new,
        state,
        &ctx,
        seq,
        &instance.id,
        &[],
        &mut Vec::new(),
        sandbox,
    ) {
        Ok(entering) => Some(entering),
        Err(refusal) => {
            plan.blockers.push(Blocker::ScriptFailed {
                reason: refusal.to_string(),
            });
            None
        }
    };
    let (signers, fresh_timers) = entering.map(|e| (e.signers, e.timers)).unwrap_or_default();

    let progress = approval_after(state, instance, signers, mapping, &target, &mut plan);
    // Timers the state had before (fired, or not armed by their `when`) are not the new
    // version's additions: they are not armed again by keeping.
    let had: Vec<&str> = old
        .workflow
        .states
        .get(&instance.state)
        .map(|s| s.timers.iter().map(|t| t.value.fire.as_str()).collect())
        .unwrap_or_default();
    let (armed, cancelled, kept) =
        timers_after(instance, fresh_timers, &had, mapping.timers, &mut plan);

    for child in instance.children.iter().filter(|c| c.finished_in.is_none()) {
        plan.children.push(ChildMove {
            id: child.id.clone(),
            workflow: child.workflow.clone(),
            awaited: awaits(state, &child.workflow),
        });
    }
    if state.await_children.is_some() && !plan.children.iter().any(|c| c.awaited) {
        plan.blockers.push(Blocker::NothingAwaited {
            state: target.clone(),
        });
    }
    if !state.is_final
        && state.on.is_empty()
        && state.approval.is_none()
        && armed.is_empty()
        && kept.is_empty()
        && state.await_children.is_none()
    {
        plan.blockers.push(Blocker::Stuck {
            state: target.clone(),
        });
    }

    let before = route(old, &instance.state, &instance.data, sandbox, command.at);
    let after = route(new, &target, &data, sandbox, command.at);
    if before != after {
        plan.route = Some(RouteChange { before, after });
    }

    if !plan.is_clean() {
        return Move { plan, entry: None };
    }
    let mut entry = Entry::towards(
        instance,
        EntryKind::Migrate,
        MIGRATE_EVENT,
        &command.actor.id,
        command.at,
        target.into(),
    );
    entry.version = new.hash.clone();
    entry.role = command
        .actor
        .roles
        .first()
        .cloned()
        .as_deref()
        .map(crate::machine::Text::from);
    entry.changes = set;
    entry.timers_armed = armed;
    entry.timers_cancelled = cancelled;
    entry.migration = Some(Box::new(Migration {
        from_version: instance.version.clone(),
        mapping: mapping.clone(),
        comment: command.comment.clone(),
        approval: progress,
        dropped_signatures: plan
            .approval
            .as_ref()
            .map(|a| a.dropped.clone())
            .unwrap_or_default(),
        kept_timers: kept,
    }));
    entry.seal();
    Move {
        plan,
        entry: Some(entry),
    }
}

/// The field a refusal of the mapping's values names.
fn refused_field(refusal: &super::refusal::Refusal) -> String {
    use super::refusal::Refusal;
    match refusal {
        Refusal::UnknownField { field, .. }
        | Refusal::IllTyped { field, .. }
        | Refusal::TooLong { field, .. } => field.clone(),
        _ => String::new(),
    }
}

/// Whether the instance has passed a step of `event`: its start, or an event someone took.
fn passed(instance: &Instance, event: &str) -> bool {
    event == crate::definition::model::START
        || instance
            .acts
            .iter()
            .any(|act| act.step.rsplit('.').next() == Some(event))
}

/// Whether `state` waits for children of `workflow`.
fn awaits(state: &State, workflow: &str) -> bool {
    state.await_children.as_ref().is_some_and(|wait| {
        wait.value.workflows.is_empty()
            || wait.value.workflows.iter().any(|w| w.as_str() == workflow)
    })
}

/// The approval after the move: the new signers, each signature kept under the first new
/// signer of its role not taken yet, or dropped, or blocking.
fn approval_after(
    state: &State,
    instance: &Instance,
    signers: Option<Vec<PendingSigner>>,
    mapping: &Mapping,
    target: &str,
    plan: &mut Plan,
) -> Option<ApprovalProgress> {
    let signatures = instance
        .approval
        .as_ref()
        .map(|p| p.signatures.as_slice())
        .unwrap_or(&[]);
    let Some(signers) = signers else {
        for signature in signatures {
            if mapping.drop_signatures {
                continue;
            }
            plan.blockers.push(Blocker::SignatureWithoutSigner {
                role: signature.role.clone(),
                actor: signature.actor.clone(),
            });
        }
        if !signatures.is_empty() && mapping.drop_signatures {
            plan.approval = Some(ApprovalMove {
                signers: Vec::new(),
                kept: Vec::new(),
                dropped: signatures.to_vec(),
                signers_changed: true,
            });
        }
        return None;
    };
    let mut kept: Vec<Signature> = Vec::new();
    let mut dropped = Vec::new();
    for signature in signatures {
        let free = signers
            .iter()
            .enumerate()
            .position(|(i, s)| s.role == signature.role && !kept.iter().any(|k| k.signer == i));
        match free {
            Some(i) => kept.push(Signature {
                signer: i,
                ..signature.clone()
            }),
            None if mapping.drop_signatures => dropped.push(signature.clone()),
            None => plan.blockers.push(Blocker::SignatureWithoutSigner {
                role: signature.role.clone(),
                actor: signature.actor.clone(),
            }),
        }
    }
    let progress = ApprovalProgress {
        signers: signers.clone(),
        signatures: kept.clone(),
    };
    if let Some(definition) = &state.approval
        && !kept.is_empty()
        && approval::complete(&definition.value, &progress)
    {
        plan.blockers.push(Blocker::ApprovalComplete {
            state: target.to_string(),
        });
    }
    let before = instance.approval.as_ref().map(|p| &p.signers);
    plan.approval = Some(ApprovalMove {
        signers_changed: before != Some(&signers),
        signers,
        kept,
        dropped,
    });
    Some(progress)
}

/// The timers after the move: (armed, cancelled ids, kept ids), each noted in the plan. By
/// keeping, a timer of the new state is armed only when the state the instance was in had no
/// timer for its event (one that fired already is not armed again); by re-arming, all are.
fn timers_after(
    instance: &Instance,
    fresh: Vec<ArmedTimer>,
    had: &[&str],
    policy: TimerPolicy,
    plan: &mut Plan,
) -> (Vec<ArmedTimer>, Vec<String>, Vec<String>) {
    let mut kept = Vec::new();
    let mut cancelled = Vec::new();
    let mut kept_events: Vec<&str> = Vec::new();
    for pending in &instance.timers {
        let keep = policy == TimerPolicy::Keep
            && !kept_events.contains(&pending.event.as_str())
            && fresh.iter().any(|t| t.event == pending.event);
        let fate = if keep {
            kept_events.push(&pending.event);
            kept.push(pending.id.clone());
            TimerFate::Kept
        } else {
            cancelled.push(pending.id.clone());
            TimerFate::Cancelled
        };
        plan.timers.push(TimerMove {
            timer: pending.clone(),
            fate,
        });
    }
    let armed: Vec<ArmedTimer> = fresh
        .into_iter()
        .filter(|t| match policy {
            TimerPolicy::Rearm => true,
            TimerPolicy::Keep => {
                !kept_events.contains(&t.event.as_str()) && !had.contains(&t.event.as_str())
            }
        })
        .collect();
    for timer in &armed {
        plan.timers.push(TimerMove {
            timer: timer.clone(),
            fate: TimerFate::Armed,
        });
    }
    (armed, cancelled, kept)
}

/// The states ahead of `from`: each state's first action (its approval's, for a sign-off),
/// the branch its data-only guards choose, until a final state, a state seen before, or a
/// guard that needs what a person will enter.
fn route(
    def: &Definition,
    from: &str,
    data: &Map<String, Value>,
    sandbox: &Sandbox,
    at: DateTime<Utc>,
) -> Vec<String> {
    let system = Actor::system();
    let no_payload = Map::new();
    let ctx = Context::new(def, data, &no_payload, &system, at);
    let mut way = vec![from.to_string()];
    let mut here = from.to_string();
    while way.len() < ROUTE_LIMIT {
        let Some(state) = def.workflow.states.get(&here) else {
            break;
        };
        if state.is_final {
            break;
        }
        let next = if let Some(approval) = &state.approval {
            Some(approval.value.to.value.clone())
        } else if let Some((_, branches)) = state.on.iter().next() {
            let mut chosen = None;
            for branch in &branches.value.0 {
                let holds = match &branch.guard {
                    None => true,
                    Some(guard) => {
                        match guard_holds(def, guard.as_str(), &ctx, sandbox, &mut Vec::new()) {
                            Ok(holds) => holds,
                            Err(_) => break,
                        }
                    }
                };
                if holds {
                    chosen = Some(branch.to.value.clone());
                    break;
                }
            }
            chosen
        } else {
            None
        };
        let Some(next) = next else { break };
        if way.contains(&next) {
            break;
        }
        way.push(next.clone());
        here = next;
    }
    way
}
