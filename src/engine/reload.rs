//! Reloading definitions while the engine runs: the files are read and validated as a whole,
//! and the new set replaces the old one only when nothing in it has an error.
//!
//! New instances start on the newest versions; a running instance keeps the version it
//! started on (its hash is in its snapshot, and the version's sources are in the store).

use super::{DefinitionSource, Engine, EngineError};
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

    /// Makes `sources` the definitions, as [`Engine::reload`] does with the files: validated
    /// as a whole (with the engine's parameter values), put in force only if nothing has an
    /// error. For a caller that holds the texts itself: a scenario's next version of a
    /// workflow, read from the scenario's folder in place of the file.
    pub async fn reload_from(&self, sources: catalog::Sources) -> Result<Reloaded, EngineError> {
        let engine = self.clone();
        tokio::task::spawn_blocking(move || {
            let sources = sources.with_parameters(engine.inner.parameters.clone());
            engine.install(sources, None)
        })
        .await
        .map_err(|_| EngineError::Closed)?
    }

    fn reload_blocking(&self) -> Result<Reloaded, EngineError> {
        let (sources, deployed) =
            match self.inner.definitions {
                DefinitionSource::Files => (
                    catalog::Sources::read(&self.inner.sources)?
                        .with_parameters(self.inner.parameters.clone()),
                    None,
                ),
                DefinitionSource::Deployed => {
                    let set = self.inner.store.deployed()?.ok_or_else(|| {
                        EngineError::NothingDeployed {
                            store: self.inner.location.clone(),
                        }
                    })?;
                    (set.sources(), Some(set.id))
                }
            };
        self.install(sources, deployed)
    }

    /// Validates `sources` as a whole and, if nothing has an error, publishes them.
    fn install(
        &self,
        sources: catalog::Sources,
        deployed: Option<String>,
    ) -> Result<Reloaded, EngineError> {
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
        if deployed.is_some() {
            *self
                .inner
                .deployed
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = deployed;
        }
        Ok(Reloaded {
            report,
            applied: true,
            changed,
            removed,
        })
    }

    /// Where the engine's definitions come from.
    pub fn definition_source(&self) -> DefinitionSource {
        self.inner.definitions
    }

    /// The id of the deployed set in force (an engine running [`DefinitionSource::Deployed`]).
    pub fn deployed_set(&self) -> Option<String> {
        self.inner
            .deployed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The id of the set deployed to the store now (which may be newer than the one in
    /// force): what a server polls between notifications. `None` for an engine running files.
    pub async fn deployed_in_store(&self) -> Result<Option<String>, EngineError> {
        if self.inner.definitions != DefinitionSource::Deployed {
            return Ok(None);
        }
        self.blocking(|engine| Ok(engine.inner.store.deployed_id()?))
            .await
    }

    /// Notifications of new deploys to the store, when it can send them (see
    /// [`Store::deploy_notifications`](crate::store::Store::deploy_notifications)).
    pub async fn deploy_notifications(
        &self,
    ) -> Result<Option<tokio::sync::mpsc::UnboundedReceiver<()>>, EngineError> {
        self.blocking(|engine| Ok(engine.inner.store.deploy_notifications()))
            .await
    }

    /// The newest version's hash of each workflow that can be started.
    pub fn latest_versions(&self) -> BTreeMap<String, String> {
        self.inner.versions.latest_hashes()
    }
}
