//! The step: one command against one instance, as a pure function of the definition version,
//! the snapshot and the command.
//!
//! The checks run in a fixed order, cheapest and most basic first, so that the reason given
//! for a refusal is the one a user should fix first: finished, stale, unknown payload keys,
//! types and lengths, event, role (and its scope), fields the event may not write, required
//! fields, four-eyes, guards, comment, the action, then the fixed fields the step (its payload
//! or its action) would change.
//!
//! Cost. A step allocates only what its entry keeps and what its scripts need. The entry's
//! short texts (instance id, workflow, states, event, actor, role) are [`Text`]s, kept inline,
//! and so are the snapshot's id, workflow and state: a step copies them without a heap
//! allocation each, and reads them from the snapshot's own memory rather than from seven
//! places on the heap. What is left to allocate is the three 64-character hex texts (version,
//! previous hash, its own hash). The scripts' view of the context is built part by part on
//! first use, only the names a script reads ([`crate::script::Script::reads`]), an
//! expression's scope holds only those names, and the branches an actor may take are found
//! without collecting them.
//!
//! On the four-step workload (10,000 instances in flight; `cargo run --release --example
//! four_step 3`, which also counts one instance's allocations): 3, 12, 3 and 3 allocations
//! (review, approve with its guard `data.amount < 15000`, pay, close; 5.2 on average, against
//! 12.2 with `String` texts), and 1.35-1.50 µs per step (1.55-1.60 µs before the entry's rare
//! parts were boxed, see [`Entry`]); criterion (`cargo bench --bench runtime -- four_step/`)
//! gives 1.39-1.55 µs, beside 5.7-6.5 µs per XState `actor.send` in the same run
//! (`benches/compare-xstate.sh`), 3.7-4.2 times faster. The 1.3 µs aimed at is not reached:
//! `perf` puts a fifth of a step in SHA-256 of the ~600-byte canonical JSON, which the stored
//! format fixes, a tenth in copying memory (entries, most of it), and most of the rest in the
//! allocator and in writing that JSON.

use super::access::{self, acting_role, names};
use super::approval::{self, dedup};
use super::audit;
use super::command::{Actor, Command, Start};
use super::context::{Context, guard_holds, run_action};
use super::enter::{enter, spawn_children};
use super::entry::{Entry, EntryKind, GuardResult, Signature, Text};
use super::instance::Instance;
use super::refusal::Refusal;
use super::value;
use super::writes::{check_fixed, check_required, check_writable};
use crate::definition::Definition;
use crate::definition::located::Located;
use crate::definition::model::{COMMENT, START, SYSTEM_ROLE, Spawn, State, Transition, Workflow};
use crate::script::Sandbox;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// The longest business key accepted, in characters: a contract, unit or permit number.
pub const MAX_BUSINESS_KEY: usize = 100;

/// Starts an instance: the entry that creates it.
pub fn start(def: &Definition, command: &Start, sandbox: &Sandbox) -> Result<Entry, Refusal> {
    let workflow = &def.workflow;
    let role = access::start_role(workflow, &command.actor)?;
    if let Some(key) = &command.business_key {
        check_business_key(key)?;
    }
    let data = convert_payload(workflow, &command.data, false)?;
    check_writable(workflow, START, &data)?;
    check_required(workflow, START, &data)?;
    let initial = workflow.initial.as_str();
    let state = state_of(workflow, initial)?;
    let no_payload = Map::new();
    let ctx = Context::new(def, &data, &no_payload, &command.actor, command.at);
    let mut guards = Vec::new();
    let entering = enter(def, state, &ctx, 0, &command.id, &[], &mut guards, sandbox)?;
    let mut entry = Entry::first(command, workflow.id.as_str(), &def.hash, initial);
    entry.finished = state.is_final;
    entry.role = role.as_deref().map(crate::machine::Text::from);
    entry.changes = data;
    entry.guards = guards;
    entry.signers = entering.signers;
    entry.timers_armed = entering.timers;
    entry.seal();
    Ok(entry)
}

/// Applies `command` to `instance`: the entry to append, or why not.
pub fn step(
    def: &Definition,
    instance: &Instance,
    command: &Command,
    sandbox: &Sandbox,
) -> Result<Entry, Refusal> {
    let workflow = &def.workflow;
    if instance.finished {
        return Err(Refusal::Finished {
            state: instance.state.to_string(),
        });
    }
    if let Some(expected) = command.expected_seq
        && expected != instance.seq
    {
        return Err(Refusal::Stale {
            expected,
            actual: instance.seq,
        });
    }
    let state = state_of(workflow, &instance.state)?;
    let event = command.event.as_str();
    let payload = convert_payload(workflow, &command.payload, true)?;
    let ctx = Context::new(def, &instance.data, &payload, &command.actor, command.at);

    let mut guards = Vec::new();
    let decision = if let Some(branches) = state.on.get(event) {
        transition(
            def,
            instance,
            event,
            &branches.value.0,
            &ctx,
            &mut guards,
            sandbox,
        )?
    } else if let Some(approval) = state.approval.as_ref().map(|a| &a.value) {
        if approval.approve_event() == event {
            approval::approve(def, instance, approval, &ctx)?
        } else if let Some(rejection) = approval
            .on_reject
            .as_ref()
            .filter(|r| r.reject_event() == event)
        {
            let role = approval::reject_role(workflow, instance, approval, &command.actor)?;
            admitted(def, instance, event, &ctx)?;
            require(&rejection.requires, event, &payload)?;
            Decision {
                to: rejection.to.value.as_str().into(),
                role: Some(role.into()),
                entered: true,
                signature: None,
                branch: None,
                changes: Map::new(),
                spawn: &[],
            }
        } else {
            return Err(unknown_event(state, event, &instance.state));
        }
    } else {
        return Err(unknown_event(state, event, &instance.state));
    };

    let mut entry = Entry::towards(
        instance,
        EntryKind::Event,
        event,
        &command.actor.id,
        command.at,
        decision.to,
    );
    entry.audit = (!command.actor.is_system()).then(|| {
        let branch = decision
            .branch
            .and_then(|i| state.on.get(event)?.value.0.get(i as usize));
        audit::kind_in(workflow, state, &instance.state, event, &entry.to, branch)
    });
    entry.branch = decision.branch;
    let mut changes: Map<String, Value> = payload
        .iter()
        .filter(|(k, _)| k.as_str() != COMMENT)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    changes.extend(decision.changes);
    check_fixed(workflow, &instance.data, event, decision.entered, &changes)?;

    let seq = entry.seq;
    let target = state_of(workflow, &entry.to)?;
    if decision.entered {
        // Conditions, deadlines and spawned children see the data after the step's changes;
        // most states have none of them, and skip the copy.
        let needs_data = target
            .timers
            .iter()
            .any(|t| t.value.at.is_some() || t.value.when.is_some())
            || target
                .approval
                .as_ref()
                .is_some_and(|a| a.value.signers.iter().any(|s| s.value.when.is_some()))
            || !decision.spawn.is_empty();
        let mut data = Map::new();
        if needs_data {
            data = instance.data.clone();
            data.extend(changes.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        let after = ctx.after(&data);
        let entering = enter(
            def,
            target,
            &after,
            seq,
            &instance.id,
            decision.spawn,
            &mut guards,
            sandbox,
        )?;
        entry.signers = entering.signers;
        entry.timers_armed = entering.timers;
        entry.timers_cancelled = instance.timers.iter().map(|t| t.id.clone()).collect();
        entry.spawned = entering.spawned;
    } else if !decision.spawn.is_empty() {
        // A transition that stays in its state still starts the children it names.
        let mut data = instance.data.clone();
        data.extend(changes.iter().map(|(k, v)| (k.clone(), v.clone())));
        entry.spawned = spawn_children(decision.spawn, &data, seq, &instance.id);
    }

    entry.entered = decision.entered;
    entry.finished = target.is_final;
    entry.role = decision.role.as_deref().map(crate::machine::Text::from);
    entry.payload = payload;
    entry.changes = changes;
    entry.guards = guards;
    entry.signature = decision.signature.map(Box::new);
    entry.idempotency_key = command.idempotency_key.clone();
    entry.seal();
    Ok(entry)
}

/// Records in a parent that one of its children finished in `state`.
pub fn child_finished(instance: &Instance, child: &str, state: &str, at: DateTime<Utc>) -> Entry {
    let mut entry = Entry::next(
        instance,
        EntryKind::ChildFinished,
        "child_finished",
        SYSTEM_ROLE,
        at,
    );
    entry.child = Some(Box::new(super::entry::ChildStatus {
        id: child.to_string(),
        state: state.to_string(),
    }));
    entry.seal();
    entry
}

/// The event the current state's `await_children` fires, once every awaited child has
/// finished (and at least one was started).
pub fn children_done(def: &Definition, instance: &Instance) -> Option<String> {
    if instance.finished {
        return None;
    }
    let state = def.workflow.states.get(&instance.state)?;
    let wait = &state.await_children.as_ref()?.value;
    let awaited: Vec<_> = instance
        .children
        .iter()
        .filter(|c| {
            wait.workflows.is_empty() || wait.workflows.iter().any(|w| w.as_str() == c.workflow)
        })
        .collect();
    (!awaited.is_empty() && awaited.iter().all(|c| c.finished_in.is_some()))
        .then(|| wait.fire.value.clone())
}

/// An event the actor may fire now, as far as roles, scopes, turns and four-eyes go (guards
/// that read the payload, and payloads, are checked when it is fired).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct Available {
    /// The event to fire (for an approval, its approve or reject event).
    pub event: String,
    /// The title of the branch it would take (none for an approval's events).
    pub title: Option<String>,
    /// Which of the actor's roles the step would be taken in.
    pub role: String,
    /// Set when the actor holds a role for the event but no branch of it can be taken on the
    /// instance's data as it stands: what the guards said (their `throw` texts, in the process
    /// owner's words; empty when a guard only returned false). [`available`] never returns
    /// these; [`offered`] does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked: Option<Vec<String>>,
}

/// Whether `actor`'s roles are named by an event of `state`, or the state has an approval
/// (whose signers may depend on the instance's data): a superset of the states in which
/// [`available`] can find something for them, so that a task list reads only those states.
pub fn may_act_in(def: &Definition, state: &str, actor: &Actor) -> bool {
    let Ok(state) = state_of(&def.workflow, state) else {
        return false;
    };
    state.approval.is_some()
        || state.on.iter().any(|(_, branches)| {
            branches
                .value
                .0
                .iter()
                .any(|b| actor.roles.iter().any(|r| names(&b.roles, r)))
        })
}

/// The events `actor` may fire on `instance` now, each under the title of the branch it
/// would take: a branch whose guard reads only the instance's data (and the time) is decided
/// here, so that a step is offered as what it will do (`通告业户:装修方案需修改`, not the first
/// branch's `审核通过`), and an event none of whose branches can hold on this data is not
/// offered. A guard that reads the payload cannot be decided before the payload is given: its
/// branch is offered as written.
pub fn available(
    def: &Definition,
    instance: &Instance,
    actor: &Actor,
    sandbox: &Sandbox,
    at: DateTime<Utc>,
) -> Vec<Available> {
    offered(def, instance, actor, sandbox, at)
        .into_iter()
        .filter(|a| a.blocked.is_none())
        .collect()
}

/// [`available`], and also the events the actor's roles name here that the instance's data
/// keeps closed for now (every branch's guard decided on the data, and false), each marked
/// [`Available::blocked`] with what its guards said, under the title of its first branch for
/// the actor: a person sees the step as theirs and why it cannot be taken yet.
pub fn offered(
    def: &Definition,
    instance: &Instance,
    actor: &Actor,
    sandbox: &Sandbox,
    at: DateTime<Utc>,
) -> Vec<Available> {
    let workflow = &def.workflow;
    let no_payload = Map::new();
    let ctx = Context::new(def, &instance.data, &no_payload, actor, at);
    let mut out = Vec::new();
    let Ok(state) = state_of(workflow, &instance.state) else {
        return out;
    };
    if instance.finished {
        return out;
    }
    let allowed =
        |event: &str| four_eyes(workflow, instance, &instance.state, event, actor).is_ok();
    for (event, branches) in state.on.iter() {
        if !allowed(event.as_str()) {
            continue;
        }
        let mut first = None;
        let mut reasons = Vec::new();
        let mut open = None;
        for branch in &branches.value.0 {
            let Ok(role) =
                acting_role(workflow, Some(instance), |r| names(&branch.roles, r), actor)
            else {
                continue;
            };
            if first.is_none() {
                first = Some((branch, role.clone()));
            }
            if may_take(def, branch, &ctx, sandbox, &mut reasons) {
                open = Some((branch, role));
                break;
            }
        }
        let (branch, role, blocked) = match (open, first) {
            (Some((branch, role)), _) => (branch, role, None),
            (None, Some((branch, role))) => {
                let mut said: Vec<String> = Vec::new();
                for reason in reasons {
                    if !said.contains(&reason) {
                        said.push(reason);
                    }
                }
                (branch, role, Some(said))
            }
            (None, None) => continue,
        };
        out.push(Available {
            event: event.value.clone(),
            title: branch.title.clone(),
            role: role.to_string(),
            blocked,
        });
    }
    if let Some(approval) = state.approval.as_ref().map(|a| &a.value) {
        if let Ok((_, role)) = approval::candidate(workflow, instance, approval, actor)
            && allowed(approval.approve_event())
        {
            out.push(Available {
                event: approval.approve_event().to_string(),
                title: None,
                role,
                blocked: None,
            });
        }
        if let Some(rejection) = &approval.on_reject
            && let Ok(role) = approval::reject_role(workflow, instance, approval, actor)
        {
            out.push(Available {
                event: rejection.reject_event().to_string(),
                title: None,
                role,
                blocked: None,
            });
        }
    }
    out
}

/// Whether a branch may be the one taken, judged before any payload is given: no guard, a
/// guard that reads the payload (undecided), or one that holds on the data. A guard that
/// fails to run counts as open: the step itself will say what is wrong. What a failing guard
/// said goes into `reasons`.
fn may_take(
    def: &Definition,
    branch: &Transition,
    ctx: &Context,
    sandbox: &Sandbox,
    reasons: &mut Vec<String>,
) -> bool {
    let Some(guard) = &branch.guard else {
        return true;
    };
    let decided = def
        .scripts
        .get(guard.as_str())
        .is_some_and(|script| !script.reads_payload());
    if !decided {
        return true;
    }
    let said = reasons.len();
    let holds = guard_holds(def, guard.as_str(), ctx, sandbox, reasons).unwrap_or(true);
    if !holds {
        declared_reason(branch, said, reasons);
    }
    holds
}

/// A guard that did not hold and gave no reason of its own (`reasons` has no more than the
/// `said` it had before) says what its branch declares, if it declares anything.
fn declared_reason(branch: &Transition, said: usize, reasons: &mut Vec<String>) {
    if reasons.len() == said
        && let Some(message) = &branch.guard_message
    {
        reasons.push(message.value.clone());
    }
}

/// Whose turn it is on an instance: the steps people may take in its current state, by role,
/// its pending deadlines and the children it waits for. Nothing for a finished instance.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct Next {
    /// Who may act now: for each person's event, the roles of the branches the instance's
    /// data leaves open (a guard that reads the payload counts as open); for an approval, the
    /// signers still to sign (in a sequence, only the one whose turn it is).
    pub turns: Vec<Turn>,
    /// The pending timers of the current state, earliest first.
    pub timers: Vec<super::entry::ArmedTimer>,
    /// The children the state awaits that have not finished yet.
    pub children: Vec<String>,
}

/// One role that may take one step now.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct Turn {
    /// The event to fire.
    pub event: String,
    /// The step's title: the branch's, or the signer's for an approval.
    pub title: Option<String>,
    /// The role that may fire it.
    pub role: String,
    /// The role's title from the definition (its id when it has none).
    pub role_title: String,
}

/// Who acts next on `instance` (see [`Next`]).
pub fn next(def: &Definition, instance: &Instance, sandbox: &Sandbox, at: DateTime<Utc>) -> Next {
    let workflow = &def.workflow;
    let mut out = Next::default();
    let Ok(state) = state_of(workflow, &instance.state) else {
        return out;
    };
    if instance.finished {
        return out;
    }
    let role_title = |role: &str| {
        workflow
            .roles
            .get(role)
            .map(|r| r.title.clone())
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| role.to_string())
    };
    let nobody = Actor::new("", Vec::<String>::new());
    let no_payload = Map::new();
    let ctx = Context::new(def, &instance.data, &no_payload, &nobody, at);
    let mut turn = |event: &str, title: Option<String>, role: &str| {
        if !out.turns.iter().any(|t| t.event == event && t.role == role) {
            out.turns.push(Turn {
                event: event.to_string(),
                title,
                role: role.to_string(),
                role_title: role_title(role),
            });
        }
    };
    for (event, branches) in state.on.iter() {
        let mut title: Option<Option<String>> = None;
        for branch in &branches.value.0 {
            if branch.roles.is_empty() || !may_take(def, branch, &ctx, sandbox, &mut Vec::new()) {
                continue;
            }
            let shown = title.get_or_insert_with(|| branch.title.clone()).clone();
            for role in &branch.roles {
                turn(event.as_str(), shown.clone(), role.as_str());
            }
        }
    }
    if let Some(approval) = state.approval.as_ref().map(|a| &a.value) {
        for signer in approval::still_to_sign(instance, approval) {
            turn(approval.approve_event(), signer.title, &signer.role);
        }
    }
    out.timers = instance.timers.clone();
    out.timers.sort_by_key(|t| t.due);
    if let Some(wait) = state.await_children.as_ref().map(|w| &w.value) {
        out.children = instance
            .children
            .iter()
            .filter(|c| {
                c.finished_in.is_none()
                    && (wait.workflows.is_empty()
                        || wait.workflows.iter().any(|w| w.as_str() == c.workflow))
            })
            .map(|c| c.id.clone())
            .collect();
    }
    out
}

/// What a handler decided.
pub(super) struct Decision<'d> {
    pub(super) to: Text,
    pub(super) role: Option<Text>,
    pub(super) entered: bool,
    pub(super) signature: Option<Signature>,
    /// The position of the transition's branch taken, for transitions.
    pub(super) branch: Option<u32>,
    pub(super) changes: Map<String, Value>,
    pub(super) spawn: &'d [Located<Spawn>],
}

fn state_of<'w>(workflow: &'w Workflow, name: &str) -> Result<&'w State, Refusal> {
    workflow
        .states
        .get(name)
        .ok_or_else(|| Refusal::UnknownState {
            state: name.to_string(),
        })
}

fn unknown_event(state: &State, event: &str, name: &str) -> Refusal {
    Refusal::UnknownEvent {
        event: event.to_string(),
        state: name.to_string(),
        available: state.events().map(str::to_string).collect(),
    }
}

/// Refuses a business key longer than [`MAX_BUSINESS_KEY`] or with a control character (a
/// NUL, a line break...): it is one line of text, and the store keeps it in index keys whose
/// parts a NUL separates. The engine checks it before it takes any lock; a start checks it
/// again.
pub fn check_business_key(key: &str) -> Result<(), Refusal> {
    let length = key.chars().count();
    if length > MAX_BUSINESS_KEY {
        return Err(Refusal::TooLong {
            field: "business_key".into(),
            length,
            limit: MAX_BUSINESS_KEY,
            unit: "characters",
        });
    }
    if key.chars().any(char::is_control) {
        return Err(Refusal::IllTyped {
            field: "business_key".into(),
            expected: "a one-line text".into(),
            problem: "got control characters".into(),
        });
    }
    Ok(())
}

/// Checks payload keys against the declared fields and converts their values.
pub(super) fn convert_payload(
    workflow: &Workflow,
    payload: &Map<String, Value>,
    allow_comment: bool,
) -> Result<Map<String, Value>, Refusal> {
    let mut out = Map::new();
    for (key, raw) in payload {
        if allow_comment && key == COMMENT {
            match raw {
                Value::String(text) => {
                    value::within(
                        COMMENT,
                        raw,
                        crate::definition::model::DEFAULT_TEXT_LENGTH as usize,
                    )?;
                    if text
                        .chars()
                        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
                    {
                        return Err(Refusal::IllTyped {
                            field: COMMENT.into(),
                            expected: "a text".into(),
                            problem:
                                "got control characters (only tabs and line breaks are allowed)"
                                    .into(),
                        });
                    }
                    out.insert(key.clone(), raw.clone());
                }
                Value::Null => {}
                _ => {
                    return Err(Refusal::IllTyped {
                        field: COMMENT.into(),
                        expected: "a text".into(),
                        problem: format!("got {raw}"),
                    });
                }
            }
            continue;
        }
        let Some(field) = workflow.fields.get(key) else {
            let mut names: Vec<&str> = workflow.fields.keys().collect();
            if allow_comment {
                names.push(COMMENT);
            }
            return Err(Refusal::UnknownField {
                field: key.clone(),
                hint: format!(
                    ": {}",
                    crate::diagnostic::suggestion(key, names.iter().copied())
                ),
            });
        };
        out.insert(key.clone(), value::convert(key, field, raw)?);
    }
    Ok(out)
}

/// The checks after the role and before any script: the fields the event may write and must
/// supply, and four-eyes. A user who may not act at all
/// hears that first; one who may, hears what is wrong with the payload before a guard reads
/// it.
pub(super) fn admitted(
    def: &Definition,
    instance: &Instance,
    event: &str,
    ctx: &Context,
) -> Result<(), Refusal> {
    let workflow = &def.workflow;
    check_writable(workflow, event, ctx.payload)?;
    check_required(workflow, event, ctx.payload)?;
    four_eyes(workflow, instance, &instance.state, event, ctx.actor)
}

fn require(
    requires: &[Located<String>],
    event: &str,
    payload: &Map<String, Value>,
) -> Result<(), Refusal> {
    for name in requires {
        if !super::writes::present(payload, name.as_str()) {
            return Err(if name.as_str() == COMMENT {
                Refusal::CommentRequired {
                    event: event.to_string(),
                }
            } else {
                Refusal::MissingField {
                    event: event.to_string(),
                    field: name.value.clone(),
                }
            });
        }
    }
    Ok(())
}

fn transition<'d>(
    def: &'d Definition,
    instance: &Instance,
    event: &str,
    branches: &'d [Transition],
    ctx: &Context,
    guards: &mut Vec<GuardResult>,
    sandbox: &Sandbox,
) -> Result<Decision<'d>, Refusal> {
    let workflow = &def.workflow;
    let mut out_of_scope = None;
    // The branches the actor may take, found as the loop below reaches them (no list: most
    // events have one branch). `acting_role` is pure, so finding them lazily finds the same.
    let mut allowed = branches
        .iter()
        .enumerate()
        .filter_map(|(i, b)| {
            match acting_role(workflow, Some(instance), |r| names(&b.roles, r), ctx.actor) {
                Ok(role) => Some((i, b, role)),
                Err(refusal) => {
                    out_of_scope = out_of_scope.take().or(refusal);
                    None
                }
            }
        })
        .peekable();
    if allowed.peek().is_none() {
        // Every branch was tried: `out_of_scope` holds the first scope refusal, if any.
        drop(allowed);
        if let Some(refusal) = out_of_scope {
            return Err(refusal);
        }
        let roles: Vec<String> = branches
            .iter()
            .flat_map(|b| b.roles.iter().map(|r| r.value.clone()))
            .collect();
        if roles.is_empty() {
            return Err(Refusal::SystemOnly {
                event: event.to_string(),
            });
        }
        return Err(Refusal::RoleNotAllowed {
            event: event.to_string(),
            allowed: dedup(roles),
            held: ctx.actor.roles.clone(),
        });
    }
    admitted(def, instance, event, ctx)?;
    let mut failed = Vec::new();
    let mut reasons = Vec::new();
    for (index, branch, role) in allowed {
        if let Some(guard) = &branch.guard {
            let said = reasons.len();
            let passed = guard_holds(def, guard.as_str(), ctx, sandbox, &mut reasons)?;
            guards.push(GuardResult {
                guard: guard.value.clone(),
                passed,
            });
            if !passed {
                declared_reason(branch, said, &mut reasons);
                failed.push(guard.value.clone());
                continue;
            }
        }
        require(&branch.requires, event, ctx.payload)?;
        let changes = match &branch.action {
            Some(action) => run_action(def, action.as_str(), ctx, sandbox)?,
            None => Map::new(),
        };
        // A transition back to its own state stays in it (timers keep running, an approval
        // keeps its signatures) unless it asks to re-enter.
        let entered = branch.reenter || branch.to.as_str() != instance.state;
        return Ok(Decision {
            to: Text::from(branch.to.value.as_str()),
            role: Some(role),
            entered,
            signature: None,
            branch: u32::try_from(index).ok(),
            changes,
            spawn: &branch.spawn,
        });
    }
    Err(Refusal::GuardFailed {
        guard: failed.join("`, `"),
        reasons,
    })
}

fn four_eyes(
    workflow: &Workflow,
    instance: &Instance,
    state: &str,
    event: &str,
    actor: &Actor,
) -> Result<(), Refusal> {
    if actor.is_system()
        || !workflow
            .constraints
            .iter()
            .any(|c| c.value.distinct_actors.is_some())
    {
        return Ok(());
    }
    let step = format!("{state}.{event}");
    for constraint in &workflow.constraints {
        let Some(steps) = &constraint.value.distinct_actors else {
            continue;
        };
        if !steps.iter().any(|s| s.as_str() == step) {
            continue;
        }
        let others: Vec<&str> = steps
            .iter()
            .map(|s| s.as_str())
            .filter(|s| *s != step)
            .collect();
        if let Some(earlier) = instance.acted(&actor.id, &others) {
            return Err(Refusal::FourEyes {
                actor: actor.id.clone(),
                earlier: earlier.to_string(),
                step,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{self, Sources};
    use std::path::PathBuf;

    const WORKFLOW: &str = r#"id: w
title: 测试
roles:
  clerk: 客服
  head: 主管
fields:
  amount: {type: money, optional_on: [start, note]}
  ok: {type: bool, optional_on: [start, note]}
initial: a
states:
  a:
    on:
      note: {to: a, roles: [clerk]}
      send: {to: b, roles: [clerk], guard: "checks::ready", title: 送审}
      size:
        - {to: b, roles: [head], guard: "data.amount > 100", title: 大额}
        - {to: c, roles: [head], title: 小额}
  b:
    approval:
      mode: sequence
      signers: [{role: head, title: 主管签字}, {role: clerk, title: 客服签字}]
      to: c
  c: {final: true}
"#;

    const RULES: &str = r#"
fn ready(data) {
    if data.ok != true {
        throw "请先确认资料";
    }
    true
}
"#;

    fn fixture() -> (std::sync::Arc<Definition>, Sandbox) {
        let sandbox = Sandbox::default();
        let report = catalog::build(
            Sources::from_texts(
                vec![(PathBuf::from("w.yaml"), WORKFLOW.to_string())],
                vec![(PathBuf::from("checks.rhai"), RULES.to_string())],
            ),
            &sandbox,
        );
        assert!(
            !report.diagnostics.iter().any(|d| d.is_error()),
            "{:?}",
            report.diagnostics
        );
        let def = report.catalog.get("w").expect("w builds").clone();
        (def, sandbox)
    }

    fn started(def: &Definition, sandbox: &Sandbox, data: Value) -> Instance {
        let command = Start {
            id: "w-1".into(),
            actor: Actor::new("zhao", ["clerk"]),
            data: data.as_object().cloned().unwrap_or_default(),
            business_key: None,
            number: None,
            parent: None,
            idempotency_key: None,
            at: Utc::now(),
        };
        let entry = start(def, &command, sandbox).expect("starts");
        Instance::begin(&entry).expect("begins")
    }

    #[test]
    fn a_step_the_data_keeps_closed_is_offered_blocked_with_the_guards_words() {
        let (def, sandbox) = fixture();
        let instance = started(&def, &sandbox, serde_json::json!({}));
        let clerk = Actor::new("zhao", ["clerk"]);
        let offered = offered(&def, &instance, &clerk, &sandbox, Utc::now());
        let send = offered.iter().find(|a| a.event == "send").expect("send");
        assert_eq!(send.blocked, Some(vec!["请先确认资料".to_string()]));
        assert_eq!(send.title.as_deref(), Some("送审"));
        assert!(
            offered
                .iter()
                .any(|a| a.event == "note" && a.blocked.is_none())
        );
        // `available` offers only what can be taken.
        let available = available(&def, &instance, &clerk, &sandbox, Utc::now());
        assert!(available.iter().all(|a| a.event != "send"));
        // The head is not offered the clerk's steps, and sees the branch the data chooses.
        let head = Actor::new("wu", ["head"]);
        let offered = super::offered(&def, &instance, &head, &sandbox, Utc::now());
        assert_eq!(
            offered
                .iter()
                .map(|a| (a.event.as_str(), a.title.as_deref(), a.blocked.is_some()))
                .collect::<Vec<_>>(),
            vec![("size", Some("小额"), false)]
        );
    }

    #[test]
    fn the_next_turn_names_roles_by_title_and_only_open_branches() {
        let (def, sandbox) = fixture();
        let instance = started(
            &def,
            &sandbox,
            serde_json::json!({"ok": true, "amount": 500}),
        );
        let next = next(&def, &instance, &sandbox, Utc::now());
        let turns: Vec<(&str, &str, Option<&str>)> = next
            .turns
            .iter()
            .map(|t| (t.event.as_str(), t.role_title.as_str(), t.title.as_deref()))
            .collect();
        assert_eq!(
            turns,
            vec![
                ("note", "客服", None),
                ("send", "客服", Some("送审")),
                ("size", "主管", Some("大额")),
            ]
        );
        // In a sequence, only the signer whose turn it is.
        let entry = step(
            &def,
            &instance,
            &Command {
                event: "send".into(),
                actor: Actor::new("zhao", ["clerk"]),
                payload: Map::new(),
                idempotency_key: None,
                at: Utc::now(),
                expected_seq: None,
            },
            &sandbox,
        )
        .expect("sends");
        let mut instance = instance;
        instance.apply(&entry).expect("applies");
        let next = super::next(&def, &instance, &sandbox, Utc::now());
        assert_eq!(
            next.turns
                .iter()
                .map(|t| (t.role.as_str(), t.title.as_deref()))
                .collect::<Vec<_>>(),
            vec![("head", Some("主管签字"))]
        );
    }
}
