//! What a caller asks the machine to do.

use crate::definition::model::SYSTEM_ROLE;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Who acts: a person (or program) and the roles they hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The person's (or program's) id, recorded in every entry they make.
    pub id: String,
    /// The roles they act in; the definition decides what each may do.
    pub roles: Vec<String>,
}

impl Actor {
    /// An actor holding `roles`.
    pub fn new(id: impl Into<String>, roles: impl IntoIterator<Item = impl Into<String>>) -> Actor {
        Actor {
            id: id.into(),
            roles: roles.into_iter().map(Into::into).collect(),
        }
    }

    /// The engine itself, firing timers and child completions.
    pub fn system() -> Actor {
        Actor::new(SYSTEM_ROLE, [SYSTEM_ROLE])
    }

    /// Whether this is the engine's own actor.
    pub fn is_system(&self) -> bool {
        self.roles.iter().any(|r| r == SYSTEM_ROLE)
    }
}

/// Fire `event` on an instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Command {
    /// The event, as the current state's `on:` names it.
    pub event: String,
    /// Who fires it.
    pub actor: Actor,
    /// Values for declared fields, and an optional `comment`.
    pub payload: Map<String, Value>,
    /// A key the caller chooses so that a retried command is applied once.
    pub idempotency_key: Option<String>,
    /// When the command happens; the machine never reads a clock.
    pub at: DateTime<Utc>,
    /// The step the caller saw; the command is refused if the instance has moved on.
    pub expected_seq: Option<u64>,
}

/// Start an instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Start {
    /// The new instance's id, chosen by the engine.
    pub id: String,
    /// Who starts it.
    pub actor: Actor,
    /// Initial values for declared fields.
    pub data: Map<String, Value>,
    /// The business key (a contract or unit number) the instance is found by.
    pub business_key: Option<String>,
    /// The parent instance, when a step of another workflow started this one.
    pub parent: Option<String>,
    /// A key the caller chooses so that a retried start creates one instance only.
    pub idempotency_key: Option<String>,
    /// When it starts; the machine never reads a clock.
    pub at: DateTime<Utc>,
    /// The readable number the engine gave it (its workflow's `number` format), if any.
    #[serde(default)]
    pub number: Option<String>,
}
