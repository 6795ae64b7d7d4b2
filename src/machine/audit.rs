//! What a person's step is to an auditor: an approval, a rejection or any other decision.
//!
//! The step decides it from the definition and records it in the entry, so the approval chain
//! reads it instead of guessing, and renaming an event in a later version cannot change what
//! an auditor reads about earlier steps. A transition's `audit:` says it outright; otherwise:
//!
//! - the approve event of a state's `approval` is an approval, its reject event a rejection;
//! - an event named `approve` (also `approve_*`, `*_approve`) is an approval;
//! - an event named `reject`, `refuse` or `decline` (also `reject_*`, `*_reject`,
//!   `return_for_*`, `send_back*`, `require_revision`, `require_modification`) is a rejection,
//!   and so is a step that leads back to the initial state from elsewhere;
//! - anything else (submitting, sealing, distributing) is a decision.
//!
//! [`kind_of`] also classifies entries recorded before the kind was kept.

use crate::definition::model::{AuditKind, State, Transition, Workflow};

/// The kind of the step `event` from state `from` to `to`, taking `branch` if it is a
/// transition's branch.
pub fn kind_of(
    workflow: &Workflow,
    from: &str,
    event: &str,
    to: &str,
    branch: Option<&Transition>,
) -> AuditKind {
    match workflow.states.get(from) {
        Some(state) => kind_in(workflow, state, from, event, to, branch),
        None => by_name(event).unwrap_or(AuditKind::Decision),
    }
}

/// [`kind_of`] for a step whose state `from` is at hand.
pub fn kind_in(
    workflow: &Workflow,
    state: &State,
    from: &str,
    event: &str,
    to: &str,
    branch: Option<&Transition>,
) -> AuditKind {
    if let Some(kind) = branch.and_then(|b| b.audit.as_ref()) {
        return kind.value;
    }
    if let Some(approval) = &state.approval {
        if approval
            .on_reject
            .as_ref()
            .is_some_and(|r| r.reject_event() == event)
        {
            return AuditKind::Rejection;
        }
        if approval.approve_event() == event {
            return AuditKind::Approval;
        }
    }
    by_name(event).unwrap_or_else(|| {
        let initial = workflow.initial.as_str();
        if to == initial && from != initial {
            AuditKind::Rejection
        } else {
            AuditKind::Decision
        }
    })
}

/// The kind an event's name says, if it says one (for entries whose definition version
/// cannot be read).
pub fn by_name(event: &str) -> Option<AuditKind> {
    let first = event.split_once('_').map_or(event, |(first, _)| first);
    let last = event.rsplit_once('_').map_or(event, |(_, last)| last);
    if matches!(first, "reject" | "refuse" | "decline")
        || last == "reject"
        || event.starts_with("return_for")
        || event.starts_with("send_back")
        || matches!(event, "require_revision" | "require_modification")
    {
        return Some(AuditKind::Rejection);
    }
    if first == "approve" || last == "approve" {
        return Some(AuditKind::Approval);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_say_approvals_and_rejections() {
        assert_eq!(by_name("approve"), Some(AuditKind::Approval));
        assert_eq!(by_name("gm_approve"), Some(AuditKind::Approval));
        assert_eq!(by_name("reject_application"), Some(AuditKind::Rejection));
        assert_eq!(by_name("send_back_for_edits"), Some(AuditKind::Rejection));
        assert_eq!(by_name("require_revision"), Some(AuditKind::Rejection));
        assert_eq!(by_name("affix_seal"), None);
        assert_eq!(by_name("approved_elsewhere_note"), None);
    }
}
