//! The deploy gate: once a new version of a workflow is in force, how many running instances
//! stay on its older versions, and how many of them could be moved to it cleanly.
//!
//! Counting walks the store's snapshots (a plan per instance, nothing kept), so the counts are
//! cached per workflow and version: computed when a reload puts a new version in force (and
//! logged), or the first time a page asks, and forgotten when instances are migrated. A count
//! is as of the time it was made, which the console shows.

use super::AppState;
use crate::engine::{CURRENT, Engine, EngineError, MigrationRequest};
use crate::machine::Actor;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Mutex;

/// How long a count is shown before it is made again.
const FRESH_FOR: chrono::Duration = chrono::Duration::minutes(10);

/// One workflow's gate, as counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gate {
    /// The version in force it was counted against.
    pub version: String,
    /// Running instances on older versions.
    pub older: u64,
    /// Of them, those whose plan to the version in force is clean.
    pub clean: u64,
    /// When it was counted (on the engine's clock).
    pub at: DateTime<Utc>,
}

#[derive(Default)]
struct Inner {
    gates: HashMap<String, Gate>,
    /// Bumped by each forget, so that a count begun before a migration is not kept after it.
    generation: u64,
}

/// The gates counted so far (one per workflow).
#[derive(Default)]
pub struct Gates {
    inner: Mutex<Inner>,
}

/// The actor a count plans as: a plan writes nothing, but the engine plans only for a
/// process owner.
fn counter() -> Actor {
    Actor::new("sopflow", [crate::definition::model::PROCESS_OWNER_ROLE])
}

/// Counts `workflow`'s gate against its version in force.
pub async fn count(engine: &Engine, workflow: &str) -> Result<Gate, EngineError> {
    let at = engine.now();
    let request = MigrationRequest::new(workflow, CURRENT, counter());
    let summary = engine.migration_plan(request, |_| {}).await?;
    Ok(Gate {
        version: summary.to_version,
        older: summary.considered,
        clean: summary.clean,
        at,
    })
}

impl Gates {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets `workflow`'s count (its instances moved).
    pub fn forget(&self, workflow: &str) {
        let mut inner = self.lock();
        inner.gates.remove(workflow);
        inner.generation += 1;
    }

    fn generation(&self) -> u64 {
        self.lock().generation
    }

    fn keep(&self, workflow: &str, gate: &Gate, since: u64) {
        let mut inner = self.lock();
        if inner.generation == since {
            inner.gates.insert(workflow.to_string(), gate.clone());
        }
    }

    /// The cached count of `workflow` against `version`, when fresh.
    fn cached(&self, workflow: &str, version: &str, now: DateTime<Utc>) -> Option<Gate> {
        self.lock()
            .gates
            .get(workflow)
            .filter(|g| g.version == version && now - g.at < FRESH_FOR)
            .cloned()
    }
}

impl AppState {
    /// `workflow`'s gate against its version in force: the cached count, or a new one.
    pub async fn gate(&self, workflow: &str) -> Result<Gate, EngineError> {
        let Some(version) = self.engine.latest_versions().get(workflow).cloned() else {
            // Not in force: the engine says so, in its own words.
            return self.recount(workflow).await;
        };
        if let Some(gate) = self.gates.cached(workflow, &version, self.engine.now()) {
            return Ok(gate);
        }
        self.recount(workflow).await
    }

    /// Counts `workflow`'s gate again and keeps it.
    pub async fn recount(&self, workflow: &str) -> Result<Gate, EngineError> {
        let since = self.gates.generation();
        let gate = count(&self.engine, workflow).await?;
        self.gates.keep(workflow, &gate, since);
        Ok(gate)
    }

    /// After a reload put new versions in force: counts each changed workflow's gate in the
    /// background and logs it (the reload does not wait for the walk of the store).
    pub(crate) fn count_gates_after_reload(&self, changed: &[(String, Option<String>, String)]) {
        let workflows: Vec<String> = changed
            .iter()
            .filter(|(_, old, _)| old.is_some())
            .map(|(id, _, _)| id.clone())
            .collect();
        if workflows.is_empty() {
            return;
        }
        let state = self.clone();
        tokio::spawn(async move {
            for workflow in workflows {
                match state.recount(&workflow).await {
                    Ok(gate) if gate.older > 0 => tracing::info!(
                        workflow = ?workflow,
                        version = ?crate::server::console::short_hash(&gate.version),
                        older = gate.older,
                        clean = gate.clean,
                        "running instances stay on older versions; `sopflow migrate plan` or the workflow's page in the console shows the plan"
                    ),
                    Ok(_) => tracing::info!(
                        workflow = ?workflow,
                        "no running instance stays on an older version"
                    ),
                    Err(err) => tracing::warn!(
                        workflow = ?workflow,
                        error = ?err.to_string(),
                        "cannot count the instances on older versions"
                    ),
                }
            }
        });
    }
}
