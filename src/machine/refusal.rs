//! Why the machine refused a command. A refusal changes nothing: no entry is written.
//!
//! Each variant names what was wrong in the user's terms and, through its message, what to do
//! instead. `code()` gives a stable identifier for programs (the CLI's JSON, the HTTP API).

use crate::script::ScriptError;

/// A command the machine will not carry out, and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    /// The instance is in a final state.
    #[error("the instance has finished (in state `{state}`): it takes no more events")]
    Finished {
        /// The final state it is in.
        state: String,
    },
    /// The instance took a step since the caller read it.
    #[error(
        "the instance has moved on: the command expected step {expected}, the instance is at step {actual}; reload it and decide again"
    )]
    Stale {
        /// The step the command was decided on (its `expected_seq`).
        expected: u64,
        /// The step the instance is at.
        actual: u64,
    },
    /// The current state has no such event.
    #[error("state `{state}` has no event `{event}`{}", available_list(.available))]
    UnknownEvent {
        /// The event the person tried.
        event: String,
        /// The state the instance is in.
        state: String,
        /// The events the state does have.
        available: Vec<String>,
    },
    /// A person fired an event that only timers and child instances fire.
    #[error("`{event}` can only be fired by the system (a timer or a child instance finishing)")]
    SystemOnly {
        /// The event the person tried.
        event: String,
    },
    /// A person claimed the role `system`.
    #[error("the role `system` is reserved for the engine's own steps (timers, child instances)")]
    ReservedRole,
    /// None of the actor's roles may take the step.
    #[error("`{event}` needs one of the roles {}; the actor has {}", list(.allowed), roles(.held))]
    RoleNotAllowed {
        /// The event the person tried.
        event: String,
        /// The roles that may fire it.
        allowed: Vec<String>,
        /// The roles the actor has.
        held: Vec<String>,
    },
    /// A sequential approval waits for an earlier signer.
    #[error("the approval waits for `{waiting_for}` to sign first (signatures go in order)")]
    NotYourTurn {
        /// The role whose signature comes next.
        waiting_for: String,
    },
    /// The person has signed this approval already.
    #[error("`{actor}` has already signed this approval; another person must sign")]
    AlreadySigned {
        /// Who tried to sign again.
        actor: String,
    },
    /// A guard of the step does not hold.
    ///
    /// With the rule's reasons, the message is the reasons alone, in the process owner's
    /// words: they are what the person refused reads; `guard` stays for programs.
    #[error("{}", guard_failed(guard, reasons))]
    GuardFailed {
        /// The guard that did not hold, as written.
        guard: String,
        /// What the guards that threw a reason (`throw "..."`) said, in the manual's words.
        reasons: Vec<String>,
    },
    /// A guard could not be evaluated (a rule's error or a sandbox limit).
    #[error("guard `{guard}` could not be evaluated: {error}")]
    GuardError {
        /// The guard, as written.
        guard: String,
        /// What stopped it.
        error: ScriptError,
    },
    /// An action, deadline or timer of the step failed.
    #[error("{purpose} `{script}` failed: {reason}")]
    ScriptFailed {
        /// What the script was for: `action`, `deadline`, `timer`...
        purpose: &'static str,
        /// The script, as written.
        script: String,
        /// Why it failed.
        reason: String,
        /// The rule's own reason when it stopped with `throw "..."`: the process owner's words,
        /// which a person may read (the `reason` of any other failure is for engineers).
        thrown: Option<String>,
    },
    /// The step needs a field its payload does not give.
    #[error("`{event}` needs the field `{field}` in its payload")]
    MissingField {
        /// The event fired.
        event: String,
        /// The field it needs.
        field: String,
    },
    /// The step needs a comment and was given none.
    #[error("`{event}` needs a comment (give one with the reason)")]
    CommentRequired {
        /// The event fired.
        event: String,
    },
    /// The payload names a field the workflow does not declare.
    #[error("the workflow has no field `{field}`{hint}")]
    UnknownField {
        /// The name given.
        field: String,
        /// What to write instead, ready to append to the message (`: did you mean ...?`).
        hint: String,
    },
    /// The step may not write this field.
    #[error("`{event}` may not write the field `{field}`{}", writable_list(.writable))]
    FieldNotWritable {
        /// The field the payload sets.
        field: String,
        /// The event fired.
        event: String,
        /// The fields the event may write.
        writable: Vec<String>,
    },
    /// The step would change a field that is fixed once set.
    #[error(
        "the field `{field}` is fixed once set (it is {current}); `{event}` may not change it: a decision was based on it"
    )]
    FieldFixed {
        /// The fixed field.
        field: String,
        /// The event fired.
        event: String,
        /// The value it keeps, as shown to the user.
        current: String,
    },
    /// A value is longer than its field allows.
    #[error("field `{field}` is too long: {length} {unit}, at most {limit}")]
    TooLong {
        /// The field (or `business_key`).
        field: String,
        /// The value's length, in `unit`.
        length: usize,
        /// The longest allowed, in `unit`.
        limit: usize,
        /// What is counted: `characters`, or `items` of a list.
        unit: &'static str,
    },
    /// An own-scoped role acts only on instances that name the actor.
    #[error(
        "in the role `{role}` one acts only on one's own instances: `{actor}` did not start this one, take part in it, or get named in it"
    )]
    NotAParty {
        /// Who tried to act.
        actor: String,
        /// The own-scoped role they acted in.
        role: String,
    },
    /// A value is not of its field's type.
    #[error("field `{field}` must be {expected}: {problem}")]
    IllTyped {
        /// The field (or `business_key`, `comment`).
        field: String,
        /// What the field takes, in words (`a date like 2026-03-01`, `one of ...`).
        expected: String,
        /// What is wrong with the value given.
        problem: String,
    },
    /// The same person may not take both steps of a `distinct_actors` constraint.
    #[error(
        "four-eyes: `{actor}` already did `{earlier}`, and `{step}` must be done by someone else"
    )]
    FourEyes {
        /// Who tried to act.
        actor: String,
        /// The step they took before, as `state.event`.
        earlier: String,
        /// The step they tried, as `state.event`.
        step: String,
    },
    /// The instance's state is not in its definition version (a damaged snapshot or store).
    #[error("the instance's state `{state}` is not in its definition version")]
    UnknownState {
        /// The state the snapshot names.
        state: String,
    },
    /// The timer to fire is no longer pending.
    #[error(
        "timer `{timer}` is not pending on this instance (it fired, or was cancelled when the instance left its state)"
    )]
    TimerNotPending {
        /// The timer's id.
        timer: String,
    },
    /// The business calendar cannot compute a deadline of the step.
    #[error("the calendar cannot compute this deadline: {reason}")]
    Calendar {
        /// Why (a year without holiday data, a calendar not loaded).
        reason: String,
    },
}

/// Every refusal code, with what it means to the person refused: the README's table of codes,
/// and what a scenario's `refused:` may name.
pub const CODES: &[(&str, &str)] = &[
    (
        "finished",
        "the instance has finished; it takes no more events",
    ),
    (
        "stale",
        "the instance moved on since the caller read it (expected_seq); reload and decide again",
    ),
    ("unknown_event", "the current state has no such event"),
    (
        "system_only",
        "only the engine fires this event (a timer, a child finishing)",
    ),
    ("reserved_role", "the role `system` belongs to the engine"),
    (
        "role_not_allowed",
        "none of the actor's roles may take this step",
    ),
    (
        "not_your_turn",
        "a sequential approval waits for an earlier signer",
    ),
    (
        "already_signed",
        "this person has signed this approval already",
    ),
    (
        "guard_failed",
        "a condition of the step does not hold (with the rule's reason when it gives one)",
    ),
    (
        "guard_error",
        "a condition could not be evaluated (a rule's error or limit)",
    ),
    (
        "script_failed",
        "an action or deadline rule failed (its reason says why)",
    ),
    (
        "missing_field",
        "the step needs a field its payload does not give",
    ),
    ("comment_required", "the step needs a comment"),
    ("unknown_field", "the workflow declares no such field"),
    ("field_not_writable", "this step may not write that field"),
    (
        "field_fixed",
        "the field was fixed once set: a decision was based on it",
    ),
    ("too_long", "a text is longer than its field allows"),
    (
        "not_a_party",
        "an own-scoped role acts only on instances that name the actor",
    ),
    ("ill_typed", "a value is not of its field's type"),
    ("four_eyes", "the same person may not take both steps"),
    (
        "unknown_state",
        "the instance's state is not in its definition version",
    ),
    (
        "timer_not_pending",
        "the timer fired already or was cancelled",
    ),
    (
        "calendar",
        "the business calendar cannot compute the deadline",
    ),
];

impl Refusal {
    /// A stable, machine-readable name for the kind of refusal.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Finished { .. } => "finished",
            Refusal::Stale { .. } => "stale",
            Refusal::UnknownEvent { .. } => "unknown_event",
            Refusal::SystemOnly { .. } => "system_only",
            Refusal::ReservedRole => "reserved_role",
            Refusal::RoleNotAllowed { .. } => "role_not_allowed",
            Refusal::NotYourTurn { .. } => "not_your_turn",
            Refusal::AlreadySigned { .. } => "already_signed",
            Refusal::GuardFailed { .. } => "guard_failed",
            Refusal::GuardError { .. } => "guard_error",
            Refusal::ScriptFailed { .. } => "script_failed",
            Refusal::MissingField { .. } => "missing_field",
            Refusal::CommentRequired { .. } => "comment_required",
            Refusal::UnknownField { .. } => "unknown_field",
            Refusal::FieldNotWritable { .. } => "field_not_writable",
            Refusal::FieldFixed { .. } => "field_fixed",
            Refusal::TooLong { .. } => "too_long",
            Refusal::NotAParty { .. } => "not_a_party",
            Refusal::IllTyped { .. } => "ill_typed",
            Refusal::FourEyes { .. } => "four_eyes",
            Refusal::UnknownState { .. } => "unknown_state",
            Refusal::TimerNotPending { .. } => "timer_not_pending",
            Refusal::Calendar { .. } => "calendar",
        }
    }
}

fn list(items: &[String]) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn roles(held: &[String]) -> String {
    if held.is_empty() {
        "none".to_string()
    } else {
        list(held)
    }
}

fn writable_list(writable: &[String]) -> String {
    if writable.is_empty() {
        " (it writes no fields; give only a comment)".to_string()
    } else {
        format!(" (it may write {})", list(writable))
    }
}

fn available_list(available: &[String]) -> String {
    if available.is_empty() {
        String::new()
    } else {
        format!(" (it handles {})", list(available))
    }
}

fn guard_failed(guard: &str, reasons: &[String]) -> String {
    if reasons.is_empty() {
        format!("guard `{guard}` is false")
    } else {
        reasons.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One refusal of each kind: `CODES` names every code `code()` gives, once.
    #[test]
    fn the_table_of_codes_has_every_refusal() {
        let text = || String::new();
        let all = [
            Refusal::Finished { state: text() },
            Refusal::Stale {
                expected: 1,
                actual: 2,
            },
            Refusal::UnknownEvent {
                event: text(),
                state: text(),
                available: vec![],
            },
            Refusal::SystemOnly { event: text() },
            Refusal::ReservedRole,
            Refusal::RoleNotAllowed {
                event: text(),
                allowed: vec![],
                held: vec![],
            },
            Refusal::NotYourTurn {
                waiting_for: text(),
            },
            Refusal::AlreadySigned { actor: text() },
            Refusal::GuardFailed {
                guard: text(),
                reasons: vec![],
            },
            Refusal::GuardError {
                guard: text(),
                error: ScriptError::Runtime(text()),
            },
            Refusal::ScriptFailed {
                purpose: "action",
                script: text(),
                reason: text(),
                thrown: None,
            },
            Refusal::MissingField {
                event: text(),
                field: text(),
            },
            Refusal::CommentRequired { event: text() },
            Refusal::UnknownField {
                field: text(),
                hint: text(),
            },
            Refusal::FieldNotWritable {
                field: text(),
                event: text(),
                writable: vec![],
            },
            Refusal::FieldFixed {
                field: text(),
                event: text(),
                current: text(),
            },
            Refusal::TooLong {
                field: text(),
                length: 2,
                limit: 1,
                unit: "characters",
            },
            Refusal::NotAParty {
                actor: text(),
                role: text(),
            },
            Refusal::IllTyped {
                field: text(),
                expected: text(),
                problem: text(),
            },
            Refusal::FourEyes {
                actor: text(),
                earlier: text(),
                step: text(),
            },
            Refusal::UnknownState { state: text() },
            Refusal::TimerNotPending { timer: text() },
            Refusal::Calendar { reason: text() },
        ];
        let codes: Vec<&str> = all.iter().map(Refusal::code).collect();
        let table: Vec<&str> = CODES.iter().map(|(code, _)| *code).collect();
        assert_eq!(codes, table);
    }
}
