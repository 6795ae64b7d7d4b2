//! Sign-offs held in one state: who may sign now (in turn, once each, in their role and
//! scope), when an approval is complete, and who may reject instead.

use super::access::acting_role;
use super::command::Actor;
use super::context::Context;
use super::entry::{PendingSigner, Signature};
use super::instance::{ApprovalProgress, Instance};
use super::refusal::Refusal;
use super::step::{Decision, admitted};
use crate::definition::Definition;
use crate::definition::model::{Approval, ApprovalMode, SYSTEM_ROLE, Workflow};
use serde_json::Map;

/// Which signer the actor signs as, or why they cannot sign now.
pub(super) fn candidate(
    workflow: &Workflow,
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
    // The role the actor would sign signer `i` in, or why their scope keeps them out.
    let mut out_of_scope = None;
    let mut holds =
        |i: usize| match acting_role(workflow, Some(instance), |r| r == signers[i].role, actor) {
            Ok(_) => true,
            Err(refusal) => {
                out_of_scope = out_of_scope.take().or(refusal);
                false
            }
        };
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
        match open.first().copied() {
            Some(i) if holds(i) => Some(i),
            Some(i) if (0..signers.len()).any(&mut holds) => {
                return Err(Refusal::NotYourTurn {
                    waiting_for: signers[i].role.clone(),
                });
            }
            _ => None,
        }
    } else {
        open.iter().copied().find(|&i| holds(i))
    };
    match mine {
        Some(i) => {
            let role = if actor.is_system() {
                SYSTEM_ROLE.to_string()
            } else {
                signers[i].role.clone()
            };
            Ok((i, role))
        }
        None => Err(out_of_scope.unwrap_or_else(|| Refusal::RoleNotAllowed {
            event: approval.approve_event().to_string(),
            allowed: dedup(open.iter().map(|&i| signers[i].role.clone()).collect()),
            held: actor.roles.clone(),
        })),
    }
}

/// The signers who have not signed yet and are needed: in a sequence only the one whose turn
/// it is, otherwise every open one.
pub(super) fn still_to_sign(instance: &Instance, approval: &Approval) -> Vec<PendingSigner> {
    let signers = signers_of(instance, approval);
    let signatures = instance
        .approval
        .as_ref()
        .map(|p| p.signatures.as_slice())
        .unwrap_or(&[]);
    let open = signers
        .into_iter()
        .enumerate()
        .filter(|(i, s)| s.required && !signatures.iter().any(|x| x.signer == *i))
        .map(|(_, s)| s);
    if approval.mode.value == ApprovalMode::Sequence {
        open.take(1).collect()
    } else {
        open.collect()
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

/// A signature: the approval moves on once enough signers have signed.
pub(super) fn approve<'d>(
    def: &'d Definition,
    instance: &Instance,
    approval: &'d Approval,
    ctx: &Context,
) -> Result<Decision<'d>, Refusal> {
    let actor = ctx.actor;
    let (index, role) = candidate(&def.workflow, instance, approval, actor)?;
    admitted(def, instance, approval.approve_event(), ctx)?;
    let signers = signers_of(instance, approval);
    let signed = instance.approval.as_ref().map_or(0, |p| {
        p.signatures
            .iter()
            .filter(|s| signers.get(s.signer).is_some_and(|x| x.required))
            .count()
    }) + 1;
    let complete = signed >= needed(approval, &signers);
    Ok(Decision {
        to: if complete {
            approval.to.value.as_str().into()
        } else {
            instance.state.as_str().into()
        },
        role: Some(role.as_str().into()),
        entered: complete,
        signature: Some(Signature {
            signer: index,
            role,
            actor: actor.id.clone(),
            at: ctx.at,
        }),
        branch: None,
        changes: Map::new(),
        spawn: &[],
    })
}

/// How many required signatures complete the approval.
fn needed(approval: &Approval, signers: &[PendingSigner]) -> usize {
    let required = signers.iter().filter(|s| s.required).count();
    match approval.mode.value {
        ApprovalMode::Sequence | ApprovalMode::All => required,
        ApprovalMode::Any => 1,
        ApprovalMode::Quorum => approval
            .quorum
            .as_ref()
            .map_or(required, |q| (q.value as usize).min(required)),
    }
}

/// Whether `progress` already completes the approval: enough required signers have signed.
pub(super) fn complete(approval: &Approval, progress: &ApprovalProgress) -> bool {
    let instance_view = |signers: &[PendingSigner]| {
        let mut signers = signers.to_vec();
        if !signers.iter().any(|s| s.required) {
            for s in &mut signers {
                s.required = true;
            }
        }
        signers
    };
    let signers = instance_view(&progress.signers);
    let signed = progress
        .signatures
        .iter()
        .filter(|s| signers.get(s.signer).is_some_and(|x| x.required))
        .count();
    signed >= needed(approval, &signers)
}

/// The role in which `actor` may reject: whoever may sign now may reject instead; a signer
/// who has signed may not take it back.
pub(super) fn reject_role(
    workflow: &Workflow,
    instance: &Instance,
    approval: &Approval,
    actor: &Actor,
) -> Result<String, Refusal> {
    let Some(rejection) = &approval.on_reject else {
        return Err(Refusal::UnknownEvent {
            event: "reject".into(),
            state: instance.state.to_string(),
            available: vec![approval.approve_event().to_string()],
        });
    };
    match candidate(workflow, instance, approval, actor) {
        Ok((_, role)) => Ok(role),
        Err(Refusal::RoleNotAllowed { allowed, held, .. }) => Err(Refusal::RoleNotAllowed {
            event: rejection.reject_event().to_string(),
            allowed,
            held,
        }),
        Err(other) => Err(other),
    }
}

pub(super) fn dedup(mut items: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    items.retain(|i| seen.insert(i.clone()));
    items
}
