//! Why the machine refused a command. A refusal changes nothing: no entry is written.
//!
//! Each variant names what was wrong in the user's terms and, through its message, what to do
//! instead. `code()` gives a stable identifier for programs (the CLI's JSON, the HTTP API).

use crate::script::ScriptError;

/// A command the machine will not carry out, and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    #[error("the instance has finished (in state `{state}`): it takes no more events")]
    Finished { state: String },
    #[error(
        "the instance has moved on: the command expected step {expected}, the instance is at step {actual}; reload it and decide again"
    )]
    Stale { expected: u64, actual: u64 },
    #[error("state `{state}` has no event `{event}`{}", available_list(.available))]
    UnknownEvent {
        event: String,
        state: String,
        available: Vec<String>,
    },
    #[error("`{event}` can only be fired by the system (a timer or a child instance finishing)")]
    SystemOnly { event: String },
    #[error("the role `system` is reserved for the engine's own steps (timers, child instances)")]
    ReservedRole,
    #[error("`{event}` needs one of the roles {}; the actor has {}", list(.allowed), roles(.held))]
    RoleNotAllowed {
        event: String,
        allowed: Vec<String>,
        held: Vec<String>,
    },
    #[error("the approval waits for `{waiting_for}` to sign first (signatures go in order)")]
    NotYourTurn { waiting_for: String },
    #[error("`{actor}` has already signed this approval; another person must sign")]
    AlreadySigned { actor: String },
    #[error("guard `{guard}` is false{}", because(reasons))]
    GuardFailed {
        guard: String,
        /// What the guards that threw a reason (`throw "..."`) said, in the manual's words.
        reasons: Vec<String>,
    },
    #[error("guard `{guard}` could not be evaluated: {error}")]
    GuardError { guard: String, error: ScriptError },
    #[error("{purpose} `{script}` failed: {reason}")]
    ScriptFailed {
        purpose: &'static str,
        script: String,
        reason: String,
    },
    #[error("`{event}` needs the field `{field}` in its payload")]
    MissingField { event: String, field: String },
    #[error("`{event}` needs a comment (give one with the reason)")]
    CommentRequired { event: String },
    #[error("the workflow has no field `{field}`{hint}")]
    UnknownField { field: String, hint: String },
    #[error("`{event}` may not write the field `{field}`{}", writable_list(.writable))]
    FieldNotWritable {
        field: String,
        event: String,
        /// The fields the event may write.
        writable: Vec<String>,
    },
    #[error(
        "the field `{field}` is fixed once set (it is {current}); `{event}` may not change it: a decision was based on it"
    )]
    FieldFixed {
        field: String,
        event: String,
        /// The value it keeps, as shown to the user.
        current: String,
    },
    #[error("field `{field}` is too long: {length} {unit}, at most {limit}")]
    TooLong {
        field: String,
        length: usize,
        limit: usize,
        unit: &'static str,
    },
    #[error(
        "in the role `{role}` one acts only on one's own instances: `{actor}` did not start this one, take part in it, or get named in it"
    )]
    NotAParty { actor: String, role: String },
    #[error("field `{field}` must be {expected}: {problem}")]
    IllTyped {
        field: String,
        expected: String,
        problem: String,
    },
    #[error(
        "four-eyes: `{actor}` already did `{earlier}`, and `{step}` must be done by someone else"
    )]
    FourEyes {
        actor: String,
        earlier: String,
        step: String,
    },
    #[error("the instance's state `{state}` is not in its definition version")]
    UnknownState { state: String },
    #[error(
        "timer `{timer}` is not pending on this instance (it fired, or was cancelled when the instance left its state)"
    )]
    TimerNotPending { timer: String },
    #[error("the calendar cannot compute this deadline: {reason}")]
    Calendar { reason: String },
}

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

fn because(reasons: &[String]) -> String {
    if reasons.is_empty() {
        String::new()
    } else {
        format!(": {}", reasons.join("; "))
    }
}
