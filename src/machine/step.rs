//! The step: one command against one instance, as a pure function of the definition version,
//! the snapshot and the command.
//!
//! The checks run in a fixed order, cheapest and most basic first, so that the reason given
//! for a refusal is the one a user should fix first: finished, stale, unknown payload keys,
//! types, event, role, required fields, guards, comment, four-eyes, then the action.

use super::command::{Actor, Command, Start};
use super::entry::{
    ArmedTimer, ChildStatus, Entry, EntryKind, GuardResult, PendingSigner, Signature, SpawnedChild,
};
use super::instance::Instance;
use super::refusal::Refusal;
use super::value::{self, from_dynamic, to_rhai_map};
use crate::definition::Definition;
use crate::definition::duration::Duration;
use crate::definition::model::{Approval, ApprovalMode, COMMENT, State, Transition, Workflow};
use crate::script::{Input, Sandbox};
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use rhai::Dynamic;
use serde_json::{Map, Value};

/// Starts an instance: the entry that creates it.
pub fn start(def: &Definition, command: &Start, sandbox: &Sandbox) -> Result<Entry, Refusal> {
    let workflow = &def.workflow;
    let role = start_role(workflow, &command.actor)?;
    let data = convert_payload(workflow, &command.data, false)?;
    for (name, field) in workflow.fields.iter() {
        if field.required_on.iter().any(|e| e.as_str() == "start") && !present(&data, name.as_str())
        {
            return Err(Refusal::MissingField {
                event: "start".into(),
                field: name.value.clone(),
            });
        }
    }
    let initial = workflow.initial.as_str();
    let state = state_of(workflow, initial)?;
    let no_payload = Map::new();
    let ctx = Context::new(def, &data, &no_payload, &command.actor, command.at);
    let mut guards = Vec::new();
    let entering = enter(def, state, &ctx, 0, &command.id, &[], &mut guards, sandbox)?;
    let mut entry = Entry {
        instance: command.id.clone(),
        seq: 0,
        kind: EntryKind::Start,
        workflow: workflow.id.value.clone(),
        version: def.hash.clone(),
        event: "start".into(),
        from: None,
        to: initial.to_string(),
        entered: true,
        finished: state.is_final,
        actor: command.actor.id.clone(),
        role,
        payload: Map::new(),
        changes: data,
        guards,
        signature: None,
        signers: entering.signers,
        timers_armed: entering.timers,
        timers_cancelled: Vec::new(),
        spawned: Vec::new(),
        child: None,
        timer: None,
        business_key: command.business_key.clone(),
        parent: command.parent.clone(),
        at: command.at,
        idempotency_key: command.idempotency_key.clone(),
        prev_hash: String::new(),
        hash: String::new(),
    };
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
            approve(def, instance, approval, &ctx)?
        } else if let Some(rejection) = approval
            .on_reject
            .as_ref()
            .filter(|r| r.reject_event() == event)
        {
            let role = signer_role_for_reject(instance, approval, &command.actor)?;
            admitted(def, instance, event, &ctx)?;
            require(&rejection.requires, event, &payload)?;
            Decision {
                to: rejection.to.value.clone(),
                role: Some(role),
                entered: true,
                signature: None,
                changes: Map::new(),
                spawn: &[],
            }
        } else {
            return Err(unknown_event(state, event, &instance.state));
        }
    } else {
        return Err(unknown_event(state, event, &instance.state));
    };

    let seq = instance.seq + 1;
    let mut changes: Map<String, Value> = payload
        .iter()
        .filter(|(k, _)| k.as_str() != COMMENT)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    changes.extend(decision.changes);

    let target = state_of(workflow, &decision.to)?;
    let (signers, timers_armed, timers_cancelled, spawned) = if decision.entered {
        // Conditions, deadlines and spawned children see the data after the step's changes;
        // most states have none of them, and skip the copy.
        let needs_data = target.timers.iter().any(|t| t.value.at.is_some())
            || target
                .approval
                .as_ref()
                .is_some_and(|a| a.value.signers.iter().any(|s| s.value.when.is_some()));
        let needs_data = needs_data || !decision.spawn.is_empty();
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
        let cancelled = instance.timers.iter().map(|t| t.id.clone()).collect();
        (
            entering.signers,
            entering.timers,
            cancelled,
            entering.spawned,
        )
    } else if !decision.spawn.is_empty() {
        // A transition that stays in its state still starts the children it names.
        let mut data = instance.data.clone();
        data.extend(changes.iter().map(|(k, v)| (k.clone(), v.clone())));
        let spawned = spawn_children(decision.spawn, &data, seq, &instance.id);
        (None, Vec::new(), Vec::new(), spawned)
    } else {
        (None, Vec::new(), Vec::new(), Vec::new())
    };

    let mut entry = Entry {
        instance: instance.id.clone(),
        seq,
        kind: EntryKind::Event,
        workflow: workflow.id.value.clone(),
        version: instance.version.clone(),
        event: event.to_string(),
        from: Some(instance.state.clone()),
        to: decision.to,
        entered: decision.entered,
        finished: target.is_final,
        actor: command.actor.id.clone(),
        role: decision.role,
        payload,
        changes,
        guards,
        signature: decision.signature,
        signers,
        timers_armed,
        timers_cancelled,
        spawned,
        child: None,
        timer: None,
        business_key: None,
        parent: None,
        at: command.at,
        idempotency_key: command.idempotency_key.clone(),
        prev_hash: instance.last_hash.clone(),
        hash: String::new(),
    };
    entry.seal();
    Ok(entry)
}

/// Records in a parent that one of its children finished in `state`.
pub fn child_finished(instance: &Instance, child: &str, state: &str, at: DateTime<Utc>) -> Entry {
    let mut entry = in_place(instance, EntryKind::ChildFinished, "child_finished", at);
    entry.child = Some(ChildStatus {
        id: child.to_string(),
        state: state.to_string(),
    });
    entry.seal();
    entry
}

/// An unsealed entry of the `system` actor that leaves the instance where it is: the base of
/// child notices and lapsed timers.
pub(super) fn in_place(
    instance: &Instance,
    kind: EntryKind,
    event: &str,
    at: DateTime<Utc>,
) -> Entry {
    Entry {
        instance: instance.id.clone(),
        seq: instance.seq + 1,
        kind,
        workflow: instance.workflow.clone(),
        version: instance.version.clone(),
        event: event.to_string(),
        from: Some(instance.state.clone()),
        to: instance.state.clone(),
        entered: false,
        finished: instance.finished,
        actor: Actor::system().id,
        role: None,
        payload: Map::new(),
        changes: Map::new(),
        guards: Vec::new(),
        signature: None,
        signers: None,
        timers_armed: Vec::new(),
        timers_cancelled: Vec::new(),
        spawned: Vec::new(),
        child: None,
        timer: None,
        business_key: None,
        parent: None,
        at,
        idempotency_key: None,
        prev_hash: instance.last_hash.clone(),
        hash: String::new(),
    }
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

/// An event the actor may fire now, as far as roles, turns and four-eyes go (guards and
/// payloads are checked when it is fired).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
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
                .any(|b| matching_role(&b.roles, actor).is_some())
        })
}

/// The events `actor` may fire on `instance` now.
pub fn available(def: &Definition, instance: &Instance, actor: &Actor) -> Vec<Available> {
    let mut out = Vec::new();
    let Ok(state) = state_of(&def.workflow, &instance.state) else {
        return out;
    };
    if instance.finished {
        return out;
    }
    let allowed =
        |event: &str| four_eyes(&def.workflow, instance, &instance.state, event, actor).is_ok();
    for (event, branches) in state.on.iter() {
        if let Some((branch, role)) = branches
            .value
            .0
            .iter()
            .find_map(|b| matching_role(&b.roles, actor).map(|r| (b, r)))
            && allowed(event.as_str())
        {
            out.push(Available {
                event: event.value.clone(),
                title: branch.title.clone(),
                role,
            });
        }
    }
    if let Some(approval) = state.approval.as_ref().map(|a| &a.value) {
        let ctx_free = approval_candidate(instance, approval, actor);
        if let Ok((_, role)) = ctx_free
            && allowed(approval.approve_event())
        {
            out.push(Available {
                event: approval.approve_event().to_string(),
                title: None,
                role,
            });
        }
        if let Some(rejection) = &approval.on_reject
            && let Ok(role) = signer_role_for_reject(instance, approval, actor)
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
struct Decision<'d> {
    to: String,
    role: Option<String>,
    entered: bool,
    signature: Option<Signature>,
    changes: Map<String, Value>,
    spawn: &'d [crate::definition::located::Located<crate::definition::model::Spawn>],
}

/// What a step's checks and scripts read. The scripts' view (`Input`) is built on first use:
/// a step without guards, actions or conditions never converts its data to rhai.
struct Context<'a> {
    input: std::cell::OnceCell<Input>,
    params: &'a Dynamic,
    calendar: &'a Dynamic,
    at: DateTime<Utc>,
    actor: &'a Actor,
    data: &'a Map<String, Value>,
    payload: &'a Map<String, Value>,
}

impl<'a> Context<'a> {
    fn new(
        def: &'a Definition,
        data: &'a Map<String, Value>,
        payload: &'a Map<String, Value>,
        actor: &'a Actor,
        at: DateTime<Utc>,
    ) -> Context<'a> {
        Context {
            input: std::cell::OnceCell::new(),
            params: &def.params,
            calendar: &def.calendar_value,
            at,
            actor,
            data,
            payload,
        }
    }

    /// The same context after the step's changes to `data`.
    fn after<'b>(&'b self, data: &'b Map<String, Value>) -> Context<'b> {
        Context {
            input: std::cell::OnceCell::new(),
            params: self.params,
            calendar: self.calendar,
            at: self.at,
            actor: self.actor,
            data,
            payload: self.payload,
        }
    }

    fn input(&self) -> &Input {
        self.input.get_or_init(|| {
            let mut actor = rhai::Map::new();
            actor.insert("id".into(), Dynamic::from(self.actor.id.clone()));
            actor.insert(
                "roles".into(),
                Dynamic::from_array(
                    self.actor
                        .roles
                        .iter()
                        .map(|r| Dynamic::from(r.clone()))
                        .collect(),
                ),
            );
            Input::new(
                to_rhai_map(self.data),
                to_rhai_map(self.payload),
                actor,
                self.params.clone(),
                Dynamic::from(self.at.to_rfc3339_opts(SecondsFormat::Secs, true)),
                self.calendar.clone(),
            )
        })
    }
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

fn start_role(workflow: &Workflow, actor: &Actor) -> Result<Option<String>, Refusal> {
    if actor.is_system() {
        return Ok(Some(crate::definition::model::SYSTEM_ROLE.to_string()));
    }
    if workflow.roles.is_empty() {
        return Ok(actor.roles.first().cloned());
    }
    actor
        .roles
        .iter()
        .find(|r| workflow.roles.contains(r))
        .cloned()
        .map(Some)
        .ok_or_else(|| Refusal::RoleNotAllowed {
            event: "start".into(),
            allowed: workflow.roles.keys().map(str::to_string).collect(),
            held: actor.roles.clone(),
        })
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
                Value::String(_) => {
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

fn present(payload: &Map<String, Value>, name: &str) -> bool {
    match payload.get(name) {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.trim().is_empty(),
        Some(_) => true,
    }
}

/// The checks after the role and before any script: the fields the event requires, and
/// four-eyes. A user who may not act at all hears that first; one who may, hears what is
/// missing before a guard reads it as absent.
fn admitted(
    def: &Definition,
    instance: &Instance,
    event: &str,
    ctx: &Context,
) -> Result<(), Refusal> {
    required_on(&def.workflow, event, ctx.payload)?;
    four_eyes(&def.workflow, instance, &instance.state, event, ctx.actor)
}

fn required_on(
    workflow: &Workflow,
    event: &str,
    payload: &Map<String, Value>,
) -> Result<(), Refusal> {
    for (name, field) in workflow.fields.iter() {
        if field.required_on.iter().any(|e| e.as_str() == event) && !present(payload, name.as_str())
        {
            return Err(Refusal::MissingField {
                event: event.to_string(),
                field: name.value.clone(),
            });
        }
    }
    Ok(())
}

fn require(
    requires: &[crate::definition::located::Located<String>],
    event: &str,
    payload: &Map<String, Value>,
) -> Result<(), Refusal> {
    for name in requires {
        if !present(payload, name.as_str()) {
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

/// The first of the actor's roles that `roles` allows; the system may fire anything.
fn matching_role(
    roles: &[crate::definition::located::Located<String>],
    actor: &Actor,
) -> Option<String> {
    if actor.is_system() {
        return Some(crate::definition::model::SYSTEM_ROLE.to_string());
    }
    actor
        .roles
        .iter()
        .find(|held| roles.iter().any(|r| r.as_str() == held.as_str()))
        .cloned()
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
    let allowed: Vec<(&Transition, String)> = branches
        .iter()
        .filter_map(|b| matching_role(&b.roles, ctx.actor).map(|r| (b, r)))
        .collect();
    if allowed.is_empty() {
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
    for (branch, role) in allowed {
        if let Some(guard) = &branch.guard {
            let passed = guard_holds(def, guard.as_str(), ctx, sandbox)?;
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
            changes,
            spawn: &branch.spawn,
        });
    }
    Err(Refusal::GuardFailed {
        guard: failed.join("`, `"),
    })
}

fn dedup(mut items: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    items.retain(|i| seen.insert(i.clone()));
    items
}

fn guard_holds(
    def: &Definition,
    guard: &str,
    ctx: &Context,
    sandbox: &Sandbox,
) -> Result<bool, Refusal> {
    let script = def.scripts.get(guard).ok_or_else(|| Refusal::GuardError {
        guard: guard.to_string(),
        error: crate::script::ScriptError::Runtime(
            "the guard was not compiled with its definition".into(),
        ),
    })?;
    let result = sandbox
        .evaluate(script, ctx.input())
        .map_err(|error| Refusal::GuardError {
            guard: guard.to_string(),
            error,
        })?;
    result.as_bool().map_err(|type_name| Refusal::GuardError {
        guard: guard.to_string(),
        error: crate::script::ScriptError::Runtime(format!(
            "it returned {type_name}, not true or false"
        )),
    })
}

fn run_action(
    def: &Definition,
    action: &str,
    ctx: &Context,
    sandbox: &Sandbox,
) -> Result<Map<String, Value>, Refusal> {
    let fail = |reason: String| Refusal::ScriptFailed {
        purpose: "action",
        script: action.to_string(),
        reason,
    };
    let script = def
        .scripts
        .get(action)
        .ok_or_else(|| fail("the action was not compiled with its definition".into()))?;
    let result = sandbox
        .evaluate(script, ctx.input())
        .map_err(|e| fail(e.to_string()))?;
    let map = result.try_cast::<rhai::Map>().ok_or_else(|| {
        fail("it must return a map of fields to set, like #{ field: value }".into())
    })?;
    let mut changes = Map::new();
    for (key, value) in map {
        let key = key.to_string();
        let field = def.workflow.fields.get(&key).ok_or_else(|| {
            fail(format!(
                "it sets `{key}`, which the workflow does not declare"
            ))
        })?;
        let json = from_dynamic(&value).ok_or_else(|| {
            fail(format!(
                "the value for `{key}` is not data ({})",
                value.type_name()
            ))
        })?;
        changes.insert(key.clone(), value::convert(&key, field, &json)?);
    }
    Ok(changes)
}

/// Which signer the actor signs as, or why they cannot sign now.
fn approval_candidate(
    instance: &Instance,
    approval: &Approval,
    actor: &Actor,
) -> Result<(usize, String), Refusal> {
    let signers = signers_of(instance, approval);
    let signatures = instance
        .approval
        .as_ref()
        .map(|p| p.signatures.as_slice())
        .unwrap_or(&[]);
    let signed = |i: usize| signatures.iter().any(|s| s.signer == i);
    let holds = |role: &str| actor.is_system() || actor.roles.iter().any(|r| r == role);
    if approval.distinct_signers
        && !actor.is_system()
        && signatures.iter().any(|s| s.actor == actor.id)
    {
        return Err(Refusal::AlreadySigned {
            actor: actor.id.clone(),
        });
    }
    let open: Vec<usize> = (0..signers.len())
        .filter(|&i| signers[i].required && !signed(i))
        .collect();
    let mine = if approval.mode.value == ApprovalMode::Sequence {
        let next = open.first().copied();
        match next {
            Some(i) if holds(&signers[i].role) => Some(i),
            Some(i) if signers.iter().any(|s| holds(&s.role)) => {
                return Err(Refusal::NotYourTurn {
                    waiting_for: signers[i].role.clone(),
                });
            }
            _ => None,
        }
    } else {
        open.iter().copied().find(|&i| holds(&signers[i].role))
    };
    match mine {
        Some(i) => {
            let role = if actor.is_system() {
                crate::definition::model::SYSTEM_ROLE.to_string()
            } else {
                signers[i].role.clone()
            };
            Ok((i, role))
        }
        None => Err(Refusal::RoleNotAllowed {
            event: approval.approve_event().to_string(),
            allowed: dedup(open.iter().map(|&i| signers[i].role.clone()).collect()),
            held: actor.roles.clone(),
        }),
    }
}

/// The signers as evaluated on entry; if none is required (every `when` false), all are, so
/// that the approval can still be passed.
fn signers_of(instance: &Instance, approval: &Approval) -> Vec<PendingSigner> {
    let mut signers = instance
        .approval
        .as_ref()
        .map(|p| p.signers.clone())
        .unwrap_or_else(|| {
            approval
                .signers
                .iter()
                .map(|s| PendingSigner {
                    role: s.role.value.clone(),
                    title: s.title.clone(),
                    required: true,
                })
                .collect()
        });
    if !signers.iter().any(|s| s.required) {
        for s in &mut signers {
            s.required = true;
        }
    }
    signers
}

fn approve<'d>(
    def: &'d Definition,
    instance: &Instance,
    approval: &'d Approval,
    ctx: &Context,
) -> Result<Decision<'d>, Refusal> {
    let actor = ctx.actor;
    let (index, role) = approval_candidate(instance, approval, actor)?;
    admitted(def, instance, approval.approve_event(), ctx)?;
    let signers = signers_of(instance, approval);
    let required = signers.iter().filter(|s| s.required).count();
    let signed = instance.approval.as_ref().map_or(0, |p| {
        p.signatures
            .iter()
            .filter(|s| signers.get(s.signer).is_some_and(|x| x.required))
            .count()
    }) + 1;
    let needed = match approval.mode.value {
        ApprovalMode::Sequence | ApprovalMode::All => required,
        ApprovalMode::Any => 1,
        ApprovalMode::Quorum => approval
            .quorum
            .as_ref()
            .map_or(required, |q| (q.value as usize).min(required)),
    };
    let complete = signed >= needed;
    Ok(Decision {
        to: if complete {
            approval.to.value.clone()
        } else {
            instance.state.clone()
        },
        role: Some(role.clone()),
        entered: complete,
        signature: Some(Signature {
            signer: index,
            role,
            actor: actor.id.clone(),
            at: ctx.at,
        }),
        changes: Map::new(),
        spawn: &[],
    })
}

fn signer_role_for_reject(
    instance: &Instance,
    approval: &Approval,
    actor: &Actor,
) -> Result<String, Refusal> {
    if approval.on_reject.is_none() {
        return Err(Refusal::UnknownEvent {
            event: "reject".into(),
            state: instance.state.clone(),
            available: vec![approval.approve_event().to_string()],
        });
    }
    // Whoever may sign now may reject instead; a signer who has signed may not take it back.
    match approval_candidate(instance, approval, actor) {
        Ok((_, role)) => Ok(role),
        Err(Refusal::RoleNotAllowed { allowed, held, .. }) => Err(Refusal::RoleNotAllowed {
            event: approval
                .on_reject
                .as_ref()
                .map_or("reject", |r| r.reject_event())
                .to_string(),
            allowed,
            held,
        }),
        Err(other) => Err(other),
    }
}

fn four_eyes(
    workflow: &Workflow,
    instance: &Instance,
    state: &str,
    event: &str,
    actor: &Actor,
) -> Result<(), Refusal> {
    if actor.is_system() {
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

/// What entering a state produces.
struct Entering {
    signers: Option<Vec<PendingSigner>>,
    timers: Vec<ArmedTimer>,
    spawned: Vec<SpawnedChild>,
}

#[allow(clippy::too_many_arguments)]
fn enter(
    def: &Definition,
    state: &State,
    ctx: &Context,
    seq: u64,
    instance: &str,
    spawn: &[crate::definition::located::Located<crate::definition::model::Spawn>],
    guards: &mut Vec<GuardResult>,
    sandbox: &Sandbox,
) -> Result<Entering, Refusal> {
    let mut timers = Vec::new();
    for (i, timer) in state.timers.iter().enumerate() {
        let calendar_name = timer.value.calendar.as_ref().map(|c| c.as_str());
        let calendar = def
            .calendar_named(calendar_name)
            .ok_or_else(|| Refusal::Calendar {
                reason: format!("no calendar `{}` is loaded", calendar_name.unwrap_or("")),
            })?;
        let due = match (&timer.value.after, &timer.value.at) {
            (Some(after), _) => {
                let duration: Duration =
                    after.as_str().parse().map_err(|e| Refusal::ScriptFailed {
                        purpose: "timer",
                        script: after.value.clone(),
                        reason: format!("{e}"),
                    })?;
                calendar
                    .add(ctx.at, duration)
                    .map_err(|e| Refusal::Calendar {
                        reason: e.to_string(),
                    })?
            }
            (None, Some(at)) => deadline(def, &calendar, at.as_str(), ctx, sandbox)?,
            (None, None) => {
                return Err(Refusal::ScriptFailed {
                    purpose: "timer",
                    script: timer.value.fire.value.clone(),
                    reason: "the timer has neither `after` nor `at`".into(),
                });
            }
        };
        // A deadline already past fires at once, and the history says so.
        let (due, note) = if due < ctx.at {
            (
                ctx.at,
                Some(format!(
                    "the deadline {} was already past when the timer was armed; it fires at once",
                    calendar.local(due).to_rfc3339()
                )),
            )
        } else {
            (due, None)
        };
        timers.push(ArmedTimer {
            id: format!("{seq}-{i}"),
            event: timer.value.fire.value.clone(),
            due,
            title: timer.value.title.clone(),
            note,
        });
    }
    let signers = match &state.approval {
        Some(approval) => {
            let mut signers = Vec::new();
            for signer in &approval.value.signers {
                let required = match &signer.value.when {
                    Some(when) => {
                        let passed = guard_holds(def, when.as_str(), ctx, sandbox)?;
                        guards.push(GuardResult {
                            guard: when.value.clone(),
                            passed,
                        });
                        passed
                    }
                    None => true,
                };
                signers.push(PendingSigner {
                    role: signer.value.role.value.clone(),
                    title: signer.value.title.clone(),
                    required,
                });
            }
            Some(signers)
        }
        None => None,
    };
    let spawned = spawn_children(spawn, ctx.data, seq, instance);
    Ok(Entering {
        signers,
        timers,
        spawned,
    })
}

/// The children a step starts: one per item of a `for_each` list, each offered the parent's
/// data (and `item`). Ids derive from the step, so a replay starts the same children.
fn spawn_children(
    spawn: &[crate::definition::located::Located<crate::definition::model::Spawn>],
    data: &Map<String, Value>,
    seq: u64,
    instance: &str,
) -> Vec<SpawnedChild> {
    let mut spawned = Vec::new();
    for child in spawn {
        let items: Vec<Option<Value>> = match &child.value.for_each {
            Some(field) => match data.get(field.as_str()) {
                Some(Value::Array(items)) => items.iter().cloned().map(Some).collect(),
                _ => Vec::new(),
            },
            None => vec![None],
        };
        for item in items {
            let mut child_data = data.clone();
            if let Some(item) = item {
                child_data.insert("item".into(), item);
            }
            spawned.push(SpawnedChild {
                id: format!("{instance}.{seq}.{}", spawned.len() + 1),
                workflow: child.value.workflow.value.clone(),
                data: child_data,
            });
        }
    }
    spawned
}

/// A computed deadline: the script returns a date-time (RFC 3339) or a date (local midnight
/// on the timer's calendar).
fn deadline(
    def: &Definition,
    calendar: &crate::calendar::Calendar,
    script: &str,
    ctx: &Context,
    sandbox: &Sandbox,
) -> Result<DateTime<Utc>, Refusal> {
    let fail = |reason: String| Refusal::ScriptFailed {
        purpose: "deadline",
        script: script.to_string(),
        reason,
    };
    let compiled = def
        .scripts
        .get(script)
        .ok_or_else(|| fail("the deadline was not compiled with its definition".into()))?;
    let result = sandbox
        .evaluate(compiled, ctx.input())
        .map_err(|e| fail(e.to_string()))?;
    let text = result.into_string().map_err(|t| {
        fail(format!(
            "it returned {t}, not a date or time (return `calendar.add(now, \"2 working days\")` or a text like \"2026-03-01T09:00:00+08:00\")"
        ))
    })?;
    if let Ok(t) = DateTime::parse_from_rfc3339(text.trim()) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map(|d| calendar.at(d, chrono::NaiveTime::MIN))
        .map_err(|_| {
            fail(format!(
                "it returned `{text}`, not a date (2026-03-01) or time (2026-03-01T09:00:00+08:00)"
            ))
        })
}
