//! Entering a state: the timers it arms (due times on the business calendar, each `when`
//! evaluated on the data after the step), the signers its approval needs (likewise), and the
//! children the step starts.

use super::context::{Context, deadline, guard_holds};
use super::entry::{ArmedTimer, GuardResult, PendingSigner, SpawnedChild};
use super::refusal::Refusal;
use crate::definition::Definition;
use crate::definition::duration::Duration;
use crate::definition::located::Located;
use crate::definition::model::{Spawn, State};
use crate::script::Sandbox;
use serde_json::{Map, Value};

/// What entering a state produces.
pub(super) struct Entering {
    pub(super) signers: Option<Vec<PendingSigner>>,
    pub(super) timers: Vec<ArmedTimer>,
    pub(super) spawned: Vec<SpawnedChild>,
}

#[allow(clippy::too_many_arguments)]
pub(super) fn enter(
    def: &Definition,
    state: &State,
    ctx: &Context,
    seq: u64,
    instance: &str,
    spawn: &[Located<Spawn>],
    guards: &mut Vec<GuardResult>,
    sandbox: &Sandbox,
) -> Result<Entering, Refusal> {
    let mut timers = Vec::new();
    for (i, timer) in state.timers.iter().enumerate() {
        if let Some(when) = &timer.value.when {
            let armed = guard_holds(def, when.as_str(), ctx, sandbox, &mut Vec::new())?;
            guards.push(GuardResult {
                guard: when.value.clone(),
                passed: armed,
            });
            if !armed {
                continue;
            }
        }
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
                        thrown: None,
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
                    thrown: None,
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
                        let passed =
                            guard_holds(def, when.as_str(), ctx, sandbox, &mut Vec::new())?;
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
pub(super) fn spawn_children(
    spawn: &[Located<Spawn>],
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
                key: None,
                number: None,
            });
        }
    }
    spawned
}
