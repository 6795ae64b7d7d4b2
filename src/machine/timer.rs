//! A timer falling due: the step its event makes, as the `system` actor.
//!
//! A timer fires exactly once. Its firing is always recorded, even when its event is refused
//! (a guard that no longer holds, say): the entry then records that the timer lapsed and why,
//! and the instance stays where it was. Either way the timer leaves the snapshot, so the
//! runtime never fires it again, whatever happens to the queue it was found in.

use super::command::{Actor, Command};
use super::entry::{Entry, EntryKind, TimerFiring};
use super::instance::Instance;
use super::refusal::Refusal;
use super::step::step;
use crate::definition::Definition;
use crate::definition::model::SYSTEM_ROLE;
use crate::script::Sandbox;
use chrono::{DateTime, Utc};
use serde_json::Map;

/// Fires the pending timer `timer` of `instance` at `at`.
///
/// Refused only when the timer is not pending (it fired already, or was cancelled): the
/// runtime skips such leftovers from its queue.
pub fn fire_timer(
    def: &Definition,
    instance: &Instance,
    timer: &str,
    at: DateTime<Utc>,
    sandbox: &Sandbox,
) -> Result<Entry, Refusal> {
    let armed = instance
        .timers
        .iter()
        .find(|t| t.id == timer)
        .filter(|_| !instance.finished)
        .ok_or_else(|| Refusal::TimerNotPending {
            timer: timer.to_string(),
        })?;
    let firing = TimerFiring {
        id: armed.id.clone(),
        due: armed.due,
        title: armed.title.clone(),
        refused: None,
    };
    let command = Command {
        event: armed.event.clone(),
        actor: Actor::system(),
        payload: Map::new(),
        idempotency_key: None,
        at,
        expected_seq: None,
    };
    let mut entry = match step(def, instance, &command, sandbox) {
        Ok(entry) => entry,
        Err(refusal) => lapsed(instance, &command, &firing, &refusal),
    };
    entry.kind = EntryKind::Timer;
    if !entry.timers_cancelled.contains(&firing.id) {
        entry.timers_cancelled.push(firing.id.clone());
    }
    entry.timer = Some(Box::new(TimerFiring {
        refused: entry.timer.take().and_then(|t| t.refused),
        ..firing
    }));
    entry.seal();
    Ok(entry)
}

/// The entry of a timer whose event was refused: nothing moves but the timer.
fn lapsed(instance: &Instance, command: &Command, firing: &TimerFiring, why: &Refusal) -> Entry {
    let mut entry = Entry::next(
        instance,
        EntryKind::Timer,
        &command.event,
        SYSTEM_ROLE,
        command.at,
    );
    entry.timer = Some(Box::new(TimerFiring {
        refused: Some(format!("{} ({})", why, why.code())),
        ..firing.clone()
    }));
    entry
}
