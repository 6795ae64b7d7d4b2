//! Who may start an instance, who may act on it in a role scoped to one's own instances, and
//! who may read it.
//!
//! These are the controls an auditor signs off on, so they are declared in the workflow
//! (`access:`, a role's `scope`, a field's `party`) and decided here, once, for every
//! interface: the step calls `start_role` and `party_check`; the engine, the server, the
//! console and the exports filter with [`may_read`].
//!
//! - Starting: the roles of `access.start`, or by default the roles that act in the initial
//!   state (not every role that appears somewhere in the workflow).
//! - Acting in an `own`-scoped role (an applicant, an owner, a customer, a contractor): only
//!   on an instance one started, took a step in, or is named in by a `party` field.
//! - Reading: the people taking part (the same three ways), holders of a department role
//!   (`scope: all`) that acts in the current state or has acted on the instance, holders of
//!   the roles in `access.read`, and the server's auditors. Holding an `own`-scoped role
//!   never opens anyone else's instance.

use super::command::Actor;
use super::entry::Text;
use super::instance::Instance;
use super::refusal::Refusal;
use crate::definition::located::Located;
use crate::definition::model::{AUDITOR_ROLE, SYSTEM_ROLE, State, Workflow};
use serde_json::Value;

/// The roles that may start an instance of `workflow`.
pub fn start_roles(workflow: &Workflow) -> Vec<&str> {
    if let Some(start) = workflow.access.as_ref().and_then(|a| a.start.as_ref()) {
        return start.iter().map(|r| r.as_str()).collect();
    }
    let mut roles = Vec::new();
    if let Some(initial) = workflow.states.get(workflow.initial.as_str()) {
        for role in acting_roles(initial) {
            if !roles.contains(&role) {
                roles.push(role);
            }
        }
    }
    roles
}

/// Whether `actor` may start an instance of `workflow`.
pub fn may_start(workflow: &Workflow, actor: &Actor) -> bool {
    !actor.is_system() && start_role(workflow, actor).is_ok()
}

/// The role `actor` starts an instance in, or why they may not.
pub(super) fn start_role(workflow: &Workflow, actor: &Actor) -> Result<Option<String>, Refusal> {
    if actor.is_system() {
        return Ok(Some(SYSTEM_ROLE.to_string()));
    }
    // A workflow that declares no roles (a test of the engine itself) lets anyone start it.
    if workflow.roles.is_empty() {
        return Ok(actor.roles.first().cloned());
    }
    let allowed = start_roles(workflow);
    actor
        .roles
        .iter()
        .find(|held| allowed.contains(&held.as_str()))
        .cloned()
        .map(Some)
        .ok_or_else(|| Refusal::RoleNotAllowed {
            event: crate::definition::model::START.into(),
            allowed: allowed.iter().map(|r| r.to_string()).collect(),
            held: actor.roles.clone(),
        })
}

/// Whether holders of `role` act only on their own instances.
pub fn is_own_role(workflow: &Workflow, role: &str) -> bool {
    workflow.roles.get(role).is_some_and(|r| r.0.is_own())
}

/// Whether `actor` takes part in `instance`: started it, took a step in it, or is named in
/// one of its `party` fields.
pub fn is_party(workflow: &Workflow, instance: &Instance, actor: &str) -> bool {
    instance.took_part(actor) || named(workflow, instance, actor, |_| true)
}

/// Whether a `party` field whose role `role_fits` names `actor`.
fn named(
    workflow: &Workflow,
    instance: &Instance,
    actor: &str,
    role_fits: impl Fn(&str) -> bool,
) -> bool {
    workflow.fields.iter().any(|(name, field)| {
        field.party.as_ref().is_some_and(|r| role_fits(r.as_str()))
            && matches!(instance.data.get(name.as_str()), Some(Value::String(s)) if s == actor)
    })
}

/// Refuses `actor` acting in an `own`-scoped `role` on an instance they did not start, took no
/// step in, and are not named in for that role (a field with `party: <role>`).
pub(super) fn party_check(
    workflow: &Workflow,
    instance: Option<&Instance>,
    role: &str,
    actor: &Actor,
) -> Result<(), Refusal> {
    let Some(instance) = instance else {
        return Ok(());
    };
    if actor.is_system()
        || !is_own_role(workflow, role)
        || instance.took_part(&actor.id)
        || named(workflow, instance, &actor.id, |r| r == role)
    {
        return Ok(());
    }
    Err(Refusal::NotAParty {
        actor: actor.id.clone(),
        role: role.to_string(),
    })
}

/// The role `actor` acts in among the roles `allows` accepts: the first they hold that lets
/// them act on this instance. `Err(Some(refusal))` when they hold one but only in a scope that
/// excludes this instance; `Err(None)` when they hold none.
pub(super) fn acting_role(
    workflow: &Workflow,
    instance: Option<&Instance>,
    allows: impl Fn(&str) -> bool,
    actor: &Actor,
) -> Result<Text, Option<Refusal>> {
    if actor.is_system() {
        return Ok(Text::const_new(SYSTEM_ROLE));
    }
    let mut refused = None;
    for held in &actor.roles {
        if !allows(held) {
            continue;
        }
        match party_check(workflow, instance, held, actor) {
            Ok(()) => return Ok(Text::from(held.as_str())),
            Err(refusal) => refused = refused.or(Some(refusal)),
        }
    }
    Err(refused)
}

/// Whether `actor` may read `instance` (see the module's documentation).
pub fn may_read(workflow: &Workflow, instance: &Instance, actor: &Actor) -> bool {
    if actor.roles.iter().any(|r| r == AUDITOR_ROLE) || actor.is_system() {
        return true;
    }
    if is_party(workflow, instance, &actor.id) {
        return true;
    }
    let readers = workflow.access.as_ref().map(|a| a.read.as_slice());
    let department = |role: &str| !is_own_role(workflow, role);
    actor.roles.iter().any(|held| {
        let held = held.as_str();
        readers.is_some_and(|r| r.iter().any(|x| x.as_str() == held))
            || (department(held)
                && (instance.roles.iter().any(|r| r == held)
                    || (!instance.finished
                        && workflow
                            .states
                            .get(&instance.state)
                            .is_some_and(|s| acting_roles(s).any(|r| r == held)))))
    })
}

/// The roles that act in a state: its transitions' roles and its approval's signers.
fn acting_roles(state: &State) -> impl Iterator<Item = &str> {
    let transitions = state
        .on
        .iter()
        .flat_map(|(_, branches)| branches.value.0.iter())
        .flat_map(|b| b.roles.iter().map(|r| r.as_str()));
    let signers = state
        .approval
        .iter()
        .flat_map(|a| a.value.signers.iter().map(|s| s.value.role.as_str()));
    transitions.chain(signers)
}

/// Whether `roles` names `role`.
pub(super) fn names(roles: &[Located<String>], role: &str) -> bool {
    roles.iter().any(|r| r.as_str() == role)
}
