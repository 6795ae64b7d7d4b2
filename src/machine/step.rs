//! The step: one command against one instance, as a pure function of the definition version,
//! the snapshot and the command.
//!
//! The checks run in a fixed order, cheapest and most basic first, so that the reason given
//! for a refusal is the one a user should fix first: finished, stale, unknown payload keys,
//! types and lengths, event, role (and its scope), fields the event may not write, required
//! fields, four-eyes, guards, comment, the action, then the fixed fields the step (its payload
//! or its action) would change.

use super::access::{self, acting_role, names};
use super::approval::{self, dedup};
use super::audit;
use super::command::{Actor, Command, Start};
use super::context::{Context, guard_holds, run_action};
use super::enter::{enter, spawn_children};
use super::entry::{Entry, EntryKind, GuardResult, Signature};
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
    entry.role = role;
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
            state: instance.state.clone(),
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
                to: rejection.to.value.clone(),
                role: Some(role),
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

    let mut entry = Entry::next(
        instance,
        EntryKind::Event,
        event,
        &command.actor.id,
        command.at,
    );
    entry.audit = (!command.actor.is_system()).then(|| {
        let branch = decision
            .branch
            .and_then(|i| state.on.get(event)?.value.0.get(i as usize));
        audit::kind_in(
            workflow,
            state,
            &instance.state,
            event,
            &decision.to,
            branch,
        )
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
    let target = state_of(workflow, &decision.to)?;
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

    entry.to = decision.to;
    entry.entered = decision.entered;
    entry.finished = target.is_final;
    entry.role = decision.role;
    entry.payload = payload;
    entry.changes = changes;
    entry.guards = guards;
    entry.signature = decision.signature;
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
    entry.child = Some(super::entry::ChildStatus {
        id: child.to_string(),
        state: state.to_string(),
    });
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
/// and payloads are checked when it is fired).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct Available {
    pub event: String,
    pub title: Option<String>,
    pub role: String,
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
    let workflow = &def.workflow;
    let no_payload = Map::new();
    let ctx = Context::new(def, &instance.data, &no_payload, actor, at);
    // Whether a branch may be the one taken, judged before any payload is given.
    let may_take = |branch: &Transition| match &branch.guard {
        None => true,
        Some(guard) => {
            let decided = def
                .scripts
                .get(guard.as_str())
                .is_some_and(|script| !script.reads_payload());
            !decided
                || guard_holds(def, guard.as_str(), &ctx, sandbox, &mut Vec::new()).unwrap_or(true)
        }
    };
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
        if let Some((branch, role)) = branches.value.0.iter().find_map(|b| {
            acting_role(workflow, Some(instance), |r| names(&b.roles, r), actor)
                .ok()
                .filter(|_| may_take(b))
                .map(|r| (b, r))
        }) && allowed(event.as_str())
        {
            out.push(Available {
                event: event.value.clone(),
                title: branch.title.clone(),
                role,
            });
        }
    }
    if let Some(approval) = state.approval.as_ref().map(|a| &a.value) {
        if let Ok((_, role)) = approval::candidate(workflow, instance, approval, actor)
            && allowed(approval.approve_event())
        {
            out.push(Available {
                event: approval.approve_event().to_string(),
                title: None,
                role,
            });
        }
        if let Some(rejection) = &approval.on_reject
            && let Ok(role) = approval::reject_role(workflow, instance, approval, actor)
        {
            out.push(Available {
                event: rejection.reject_event().to_string(),
                title: None,
                role,
            });
        }
    }
    out
}

/// What a handler decided.
pub(super) struct Decision<'d> {
    pub(super) to: String,
    pub(super) role: Option<String>,
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

fn check_business_key(key: &str) -> Result<(), Refusal> {
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
fn convert_payload(
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
    let allowed: Vec<(usize, &Transition, String)> = branches
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
        .collect();
    if allowed.is_empty() {
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
            let passed = guard_holds(def, guard.as_str(), ctx, sandbox, &mut reasons)?;
            guards.push(GuardResult {
                guard: guard.value.clone(),
                passed,
            });
            if !passed {
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
            to: branch.to.value.clone(),
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
