//! Reloading definitions while the engine runs: the files are read and validated as a whole,
//! and the new set replaces the old one only when nothing in it has an error.
//!
//! New instances start on the newest versions; a running instance keeps the version it
//! started on (its hash is in its snapshot, and the version's sources are in the store).

use super::{Engine, EngineError};
use crate::catalog::{self, LoadReport};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What a reload found and did.
#[derive(Debug, Clone)]
pub struct Reloaded {
    /// The report of the files as they are now (errors included).
    pub report: Arc<LoadReport>,
    /// Whether the new set was put in force: false when any definition has an error, in which
    /// case every workflow keeps its previous version.
    pub applied: bool,
    /// Workflows whose newest version changed, with the old hash (`None` for a new workflow)
    /// and the new one.
    pub changed: Vec<(String, Option<String>, String)>,
    /// Workflows that can no longer be started because their file is gone.
    pub removed: Vec<String>,
}

impl Engine {
    /// Reads and validates every definition file again; if none has an error, the new
    /// versions become the ones new instances start on, all at once.
    pub async fn reload(&self) -> Result<Reloaded, EngineError> {
        let engine = self.clone();
        tokio::task::spawn_blocking(move || engine.reload_blocking())
            .await
            .map_err(|_| EngineError::Closed)?
    }

    fn reload_blocking(&self) -> Result<Reloaded, EngineError> {
        let sources = catalog::Sources::read(&self.inner.sources)?
            .with_parameters(self.inner.parameters.clone());
        let report = Arc::new(catalog::build(sources, &self.inner.sandbox));
        let before = self.inner.versions.latest_hashes();
        let mut changed = Vec::new();
        for (id, definition) in &report.catalog.definitions {
            let old = before.get(id);
            if old != Some(&definition.hash) {
                changed.push((id.clone(), old.cloned(), definition.hash.clone()));
            }
        }
        let removed: Vec<String> = before
            .keys()
            .filter(|id| !report.catalog.definitions.contains_key(*id))
            .cloned()
            .collect();
        if report.has_errors() {
            return Ok(Reloaded {
                report,
                applied: false,
                changed: Vec::new(),
                removed: Vec::new(),
            });
        }
        if !changed.is_empty() || !removed.is_empty() {
            self.inner
                .versions
                .publish(&report.catalog, self.inner.store.as_ref())?;
            self.mark_new_schedules()?;
        }
        *self.inner.report.write().unwrap_or_else(|e| e.into_inner()) = report.clone();
        Ok(Reloaded {
            report,
            applied: true,
            changed,
            removed,
        })
    }

    /// The newest version's hash of each workflow that can be started.
    pub fn latest_versions(&self) -> BTreeMap<String, String> {
        self.inner.versions.latest_hashes()
    }
}
