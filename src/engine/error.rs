//! What the engine reports when it cannot carry out a request.

use crate::catalog::{CatalogError, LoadReport};
use crate::diagnostic::display_path;
use crate::machine::Refusal;
use crate::store::StoreError;
use std::path::Path;
use std::sync::Arc;

/// How many errors the message of [`EngineError::DefinitionsInvalid`] lists before it only
/// counts the rest.
const LISTED_ERRORS: usize = 10;

/// Why a request to the [`crate::engine::Engine`] failed. [`EngineError::Refused`] is a
/// business answer (the step is not allowed); the others are problems to fix.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The definition does not allow the step: a business answer, and nothing was written.
    #[error("refused: {0}")]
    Refused(#[from] Refusal),
    /// No loaded workflow has this id.
    #[error("no workflow `{id}`{hint}")]
    UnknownWorkflow {
        /// The id asked for.
        id: String,
        /// A likely meant id, or what is declared, as the end of the message.
        hint: String,
    },
    /// No instance has this id (or the reader may not read it, which looks the same).
    #[error("no instance `{id}`; `sopflow list` shows the instances")]
    UnknownInstance {
        /// The id asked for.
        id: String,
    },
    /// An instance id with a control character (a NUL, a newline...): no instance has one,
    /// and the store's keys must never be given one to match by prefix.
    #[error(
        "an instance id has no control characters, and {id:?} has one; `sopflow list` shows the instances"
    )]
    BadInstanceId {
        /// The id as given.
        id: String,
    },
    /// A key the caller chose (an idempotency key) or a query's filter (workflow, state,
    /// business key) with a control character (a NUL, a line break...). The store keeps them
    /// in keys whose parts a NUL separates, so none may hold one. (A business key given to a
    /// start is refused like any value the start is given, as
    /// [`Refusal::IllTyped`](crate::machine::Refusal::IllTyped).)
    #[error(
        "the {field} {value:?} has a control character (a NUL, a line break, a tab...); it must be one line of visible text"
    )]
    BadKey {
        /// Which key: `idempotency_key`, or the query's `workflow`, `state` or `business_key`.
        field: &'static str,
        /// The key as given.
        value: String,
    },
    /// A payload or initial data that is not a JSON object.
    #[error(
        "the payload (or initial data) must be a JSON object of field names and values, not {got}"
    )]
    NotAnObject {
        /// What kind of JSON value it was instead.
        got: &'static str,
    },
    /// A payload or initial data over [`MAX_PAYLOAD_BYTES`](crate::engine::MAX_PAYLOAD_BYTES).
    #[error("the payload is {size} bytes, more than the limit of {limit}")]
    PayloadTooLarge {
        /// Its size as JSON, in bytes.
        size: usize,
        /// The largest size accepted.
        limit: usize,
    },
    /// An idempotency key already used for a different command.
    #[error(
        "the idempotency key `{key}` was already used for `{event}` on `{instance}` (by another actor or for another event); use a new key for a new command"
    )]
    KeyReused {
        /// The key.
        key: String,
        /// The instance it was used on.
        instance: String,
        /// The event it was used for.
        event: String,
    },
    /// One command would cause more follow-up steps than one commit takes
    /// ([`MAX_FOLLOW_UPS`](crate::engine::MAX_FOLLOW_UPS)): children started, parents told that
    /// a child finished, `await_children` events, each causing the next, which is almost
    /// always a loop in the workflows. Nothing of the command was written.
    #[error(
        "`{event}` on `{instance}` would cause more than {limit} follow-up steps at once (children started, parents told that a child finished, `await_children` events), most of them in {}; nothing was written. The workflows' `spawn` and `await_children` probably start one another in a loop: a process owner should break the loop in the workflow files and reload (instances already running keep their version, so one in the loop needs a step that leaves it)",
        workflows.iter().map(|w| format!("`{w}`")).collect::<Vec<_>>().join(", ")
    )]
    CascadeTooLong {
        /// The instance the command was for.
        instance: String,
        /// The command's event.
        event: String,
        /// The most steps one command may commit.
        limit: usize,
        /// The workflows most of the steps belong to, most first (at most three).
        workflows: Vec<String>,
    },
    /// A stored definition version cannot be rebuilt from its sources.
    #[error("definition version {hash} cannot be used: {detail}")]
    Definition {
        /// The version's hash.
        hash: String,
        /// What went wrong rebuilding it.
        detail: String,
    },
    /// The store failed (or another process holds it).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The definition files could not be read at all.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// Some workflow, rules or calendar file has an error, so [`crate::engine::Engine::open`]
    /// refused to run with part of the set. The report holds every finding and the texts they
    /// point into (for rendering with their lines).
    #[error("{}", definitions_invalid(report))]
    DefinitionsInvalid {
        /// The whole load: the diagnostics, the file texts, and the workflows that did load.
        report: Arc<LoadReport>,
    },
    /// The engine was told to run the set deployed to its store, and none was ever deployed.
    #[error(
        "no definition set has been deployed to {store}; deploy one first (`sopflow deploy --store ...`), or serve the definition files instead (`--definitions files`)"
    )]
    NothingDeployed {
        /// The store, as shown (a URL without its password).
        store: String,
    },
    /// Only a process owner migrates instances.
    #[error(
        "`{actor}` does not hold the `process_owner` role: only a process owner migrates instances; ask one, or have the role added in the users file"
    )]
    NotProcessOwner {
        /// Who asked.
        actor: String,
    },
    /// No stored version of the workflow is named so.
    #[error(
        "the workflow `{workflow}` has no version `{version}`; name one by its hash (at least its first six characters, as `sopflow migrate plan` and the console show them) or say `current`"
    )]
    UnknownVersion {
        /// The workflow.
        workflow: String,
        /// The name given.
        version: String,
    },
    /// Several stored versions of the workflow start with the prefix given.
    #[error("several versions of `{workflow}` start with `{version}`; give more of the hash")]
    AmbiguousVersion {
        /// The workflow.
        workflow: String,
        /// The prefix given.
        version: String,
    },
    /// The migration's mapping names what the new version does not have.
    #[error("the migration's mapping cannot be used: {reason}; correct it and plan again")]
    BadMapping {
        /// What is wrong.
        reason: String,
    },
    /// The engine shut down (or a task of it was lost) before answering.
    #[error("the engine has shut down")]
    Closed,
    /// Time was moved on an engine that runs on the system clock.
    #[error(
        "time can only be moved on a virtual clock; this engine runs on the system clock (open it with `Config::clock(Arc::new(VirtualClock::new(start)))`)"
    )]
    RealClock,
    /// The business calendar cannot compute a due time (a year it has no data for).
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
            EngineError::BadKey { .. } => "bad_key",
            EngineError::NotAnObject { .. } => "not_an_object",
            EngineError::PayloadTooLarge { .. } => "payload_too_large",
            EngineError::KeyReused { .. } => "key_reused",
            EngineError::CascadeTooLong { .. } => "cascade_too_long",
            EngineError::Definition { .. } => "definition",
            EngineError::Store(StoreError::Locked { .. }) => "store_locked",
            EngineError::Store(_) => "store",
            EngineError::Catalog(_) => "catalog",
            EngineError::DefinitionsInvalid { .. } => "definitions_invalid",
            EngineError::NothingDeployed { .. } => "nothing_deployed",
            EngineError::NotProcessOwner { .. } => "not_process_owner",
            EngineError::UnknownVersion { .. } => "unknown_version",
            EngineError::AmbiguousVersion { .. } => "ambiguous_version",
            EngineError::BadMapping { .. } => "bad_mapping",
            EngineError::Closed => "closed",
            EngineError::RealClock => "real_clock",
            EngineError::Calendar(_) => "calendar",
        }
    }

    /// Whether this is a refusal (a business answer, exit code 3 in the CLI).
    pub fn is_refusal(&self) -> bool {
        matches!(self, EngineError::Refused(_))
    }

    /// Whether the request itself was wrong (an unknown or malformed id or key, a payload that
    /// is not an object or too large, a reused key): the caller's mistake, not the engine's fault.
    pub fn is_caller_mistake(&self) -> bool {
        matches!(
            self,
            EngineError::UnknownWorkflow { .. }
                | EngineError::UnknownInstance { .. }
                | EngineError::BadInstanceId { .. }
                | EngineError::BadKey { .. }
                | EngineError::NotAnObject { .. }
                | EngineError::PayloadTooLarge { .. }
                | EngineError::KeyReused { .. }
                | EngineError::NotProcessOwner { .. }
                | EngineError::UnknownVersion { .. }
                | EngineError::AmbiguousVersion { .. }
                | EngineError::BadMapping { .. }
        )
    }
}

/// The files that failed, each error on its line (the first ten), and what to do next.
fn definitions_invalid(report: &LoadReport) -> String {
    let errors: Vec<_> = report.diagnostics.iter().filter(|d| d.is_error()).collect();
    let mut files: Vec<&Path> = errors.iter().map(|d| d.file.as_path()).collect();
    files.sort();
    files.dedup();
    let files: Vec<String> = files.into_iter().map(display_path).collect();
    let mut message = format!(
        "the workflows did not load: {} error(s) in {}:",
        errors.len(),
        files.join(", ")
    );
    for error in errors.iter().take(LISTED_ERRORS) {
        message.push_str(&format!("\n  {error}"));
    }
    if errors.len() > LISTED_ERRORS {
        message.push_str(&format!(
            "\n  ... and {} more",
            errors.len() - LISTED_ERRORS
        ));
    }
    message.push_str(
        "\nfix them (`sopflow validate` shows each with its lines) and open again; an application that embeds the engine may instead run with the workflows that loaded (`Config::allow_load_errors`)",
    );
    message
}
