//! What the engine reports when it cannot carry out a request.

use crate::catalog::CatalogError;
use crate::machine::Refusal;
use crate::store::StoreError;

/// Why a request to the [`crate::engine::Engine`] failed. [`EngineError::Refused`] is a
/// business answer (the step is not allowed); the others are problems to fix.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("refused: {0}")]
    Refused(#[from] Refusal),
    #[error("no workflow `{id}`{hint}")]
    UnknownWorkflow { id: String, hint: String },
    #[error("no instance `{id}`; `sopflow list` shows the instances")]
    UnknownInstance { id: String },
    /// An instance id with a control character (a NUL, a newline...): no instance has one,
    /// and the store's keys must never be given one to match by prefix.
    #[error(
        "an instance id has no control characters, and {id:?} has one; `sopflow list` shows the instances"
    )]
    BadInstanceId { id: String },
    #[error(
        "the payload (or initial data) must be a JSON object of field names and values, not {got}"
    )]
    NotAnObject { got: &'static str },
    #[error("the payload is {size} bytes, more than the limit of {limit}")]
    PayloadTooLarge { size: usize, limit: usize },
    #[error(
        "the idempotency key `{key}` was already used for `{event}` on `{instance}` (by another actor or for another event); use a new key for a new command"
    )]
    KeyReused {
        key: String,
        instance: String,
        event: String,
    },
    #[error("definition version {hash} cannot be used: {detail}")]
    Definition { hash: String, detail: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("the engine has shut down")]
    Closed,
    #[error(
        "time can only be moved on a virtual clock; this engine runs on the system clock (open it with `Config::clock(Arc::new(VirtualClock::new(start)))`)"
    )]
    RealClock,
    #[error("the business calendar cannot answer: {0}")]
    Calendar(String),
}

impl EngineError {
    /// A stable, machine-readable name for the kind of error (for a refusal, its own code).
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::Refused(refusal) => refusal.code(),
            EngineError::UnknownWorkflow { .. } => "unknown_workflow",
            EngineError::UnknownInstance { .. } => "unknown_instance",
            EngineError::BadInstanceId { .. } => "bad_instance_id",
            EngineError::NotAnObject { .. } => "not_an_object",
            EngineError::PayloadTooLarge { .. } => "payload_too_large",
            EngineError::KeyReused { .. } => "key_reused",
            EngineError::Definition { .. } => "definition",
            EngineError::Store(StoreError::Locked { .. }) => "store_locked",
            EngineError::Store(_) => "store",
            EngineError::Catalog(_) => "catalog",
            EngineError::Closed => "closed",
            EngineError::RealClock => "real_clock",
            EngineError::Calendar(_) => "calendar",
        }
    }

    /// Whether this is a refusal (a business answer, exit code 3 in the CLI).
    pub fn is_refusal(&self) -> bool {
        matches!(self, EngineError::Refused(_))
    }

    /// Whether the request itself was wrong (an unknown or malformed id, a payload that is not
    /// an object or too large, a reused key): the caller's mistake, not the engine's fault.
    pub fn is_caller_mistake(&self) -> bool {
        matches!(
            self,
            EngineError::UnknownWorkflow { .. }
                | EngineError::UnknownInstance { .. }
                | EngineError::BadInstanceId { .. }
                | EngineError::NotAnObject { .. }
                | EngineError::PayloadTooLarge { .. }
                | EngineError::KeyReused { .. }
        )
    }
}
