//! Coverage: which transitions, timers and refusal paths of a workflow the scenarios exercised,
//! and which they did not.

use super::run::Exercised;
use crate::definition::Definition;

/// Coverage of one workflow.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Coverage {
    /// The workflow's id.
    pub workflow: String,
    /// Every `state.event` a person or a timer can take.
    pub transitions: Vec<Item>,
    /// Every timer, as `state.event` it fires.
    pub timers: Vec<Item>,
    /// Every step people take (an event with roles, an approval), and whether a scenario saw
    /// it refused (wrong role, failed guard, four-eyes...).
    pub refusals: Vec<Item>,
}

/// A `state.event` and whether the scenarios exercised it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Item {
    /// `state.event`.
    pub step: String,
    /// Whether some scenario took it (for a refusal: saw it refused).
    pub covered: bool,
}

impl Coverage {
    /// Whether everything is covered.
    pub fn complete(&self) -> bool {
        [&self.transitions, &self.timers, &self.refusals]
            .iter()
            .all(|items| items.iter().all(|i| i.covered))
    }
}

/// What of `def` the scenarios exercised.
pub fn coverage(def: &Definition, seen: &Exercised) -> Coverage {
    let id = def.id().to_string();
    let key = |state: &str, event: &str| (id.clone(), state.to_string(), event.to_string());
    let mut transitions = Vec::new();
    let mut timers = Vec::new();
    let mut refusals = Vec::new();
    for (state, body) in def.workflow.states.iter() {
        let state = state.as_str();
        for event in body.events() {
            let step = format!("{state}.{event}");
            transitions.push(Item {
                covered: seen.transitions.contains(&key(state, event)),
                step: step.clone(),
            });
            let by_people = body.approval.is_some() && body.on.get(event).is_none()
                || body
                    .on
                    .get(event)
                    .is_some_and(|branches| branches.value.0.iter().any(|b| !b.roles.is_empty()));
            if by_people {
                refusals.push(Item {
                    covered: seen
                        .refusals
                        .iter()
                        .any(|(w, s, e, _)| *w == id && s == state && e == event),
                    step,
                });
            }
        }
        for timer in &body.timers {
            let event = timer.value.fire.as_str();
            timers.push(Item {
                step: format!("{state}.{event}"),
                covered: seen.timers.contains(&key(state, event)),
            });
        }
    }
    Coverage {
        workflow: id,
        transitions,
        timers,
        refusals,
    }
}
