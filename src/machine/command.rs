//! What a caller asks the machine to do.

use crate::definition::model::SYSTEM_ROLE;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Who acts: a person (or program) and the roles they hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub id: String,
    pub roles: Vec<String>,
}

impl Actor {
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
    pub event: String,
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
    pub actor: Actor,
    /// Initial values for declared fields.
    pub data: Map<String, Value>,
    pub business_key: Option<String>,
    pub parent: Option<String>,
    pub idempotency_key: Option<String>,
    pub at: DateTime<Utc>,
    /// The readable number the engine gave it (its workflow's `number` format), if any.
    #[serde(default)]
    pub number: Option<String>,
}
