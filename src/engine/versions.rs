//! Definition versions: the newest valid version of each workflow for new instances, and any
//! older version a running instance still needs, rebuilt from its stored sources.

use super::error::EngineError;
use crate::catalog::{self, Catalog, Sources};
use crate::definition::Definition;
use crate::definition::roles::RoleList;
use crate::script::Sandbox;
use crate::store::{Store, StoredDefinition};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

/// Every definition version the engine has compiled, by hash.
#[derive(Default)]
pub struct Versions {
    inner: RwLock<Inner>,
}

#[derive(Default)]
struct Inner {
    by_hash: HashMap<String, Arc<Definition>>,
    latest: BTreeMap<String, String>,
    /// The organisation's role list of the newest catalog: an older version rebuilt from the
    /// store takes its role titles from it (titles are not part of a version).
    roles: Option<Arc<RoleList>>,
}

impl Versions {
    /// Makes the catalog's definitions the newest versions, and stores their sources. All of
    /// them become visible at once (one write lock): a reader sees the old set or the new one.
    /// Workflows the catalog no longer has can no longer be started; their versions stay for
    /// the instances that run on them.
    pub fn publish(&self, catalog: &Catalog, store: &dyn Store) -> Result<(), EngineError> {
        let mut inner = self.inner.write().map_err(|_| EngineError::Closed)?;
        inner.roles = catalog.roles.clone();
        inner
            .latest
            .retain(|id, _| catalog.definitions.contains_key(id));
        for (id, definition) in &catalog.definitions {
            store.save_definition(&StoredDefinition {
                hash: definition.hash.clone(),
                workflow: id.clone(),
                file: definition.file.display().to_string(),
                yaml: definition.source.clone(),
                rules: definition.rules.clone(),
                parameters: definition.parameters.clone(),
            })?;
            inner.latest.insert(id.clone(), definition.hash.clone());
            inner
                .by_hash
                .insert(definition.hash.clone(), definition.clone());
        }
        Ok(())
    }

    /// The organisation's role list of the newest catalog, when one was loaded.
    pub fn roles(&self) -> Option<Arc<RoleList>> {
        self.inner.read().ok()?.roles.clone()
    }

    /// The newest version of a workflow.
    pub fn latest(&self, workflow: &str) -> Result<Arc<Definition>, EngineError> {
        let inner = self.inner.read().map_err(|_| EngineError::Closed)?;
        inner
            .latest
            .get(workflow)
            .and_then(|hash| inner.by_hash.get(hash))
            .cloned()
            .ok_or_else(|| EngineError::UnknownWorkflow {
                id: workflow.to_string(),
                hint: format!(
                    "; {}",
                    crate::diagnostic::suggestion(
                        workflow,
                        inner.latest.keys().map(String::as_str)
                    )
                ),
            })
    }

    /// The newest version's hash of each workflow that can be started.
    pub fn latest_hashes(&self) -> BTreeMap<String, String> {
        self.inner
            .read()
            .map(|i| i.latest.clone())
            .unwrap_or_default()
    }

    /// Ids of the workflows that can be started.
    pub fn workflows(&self) -> Vec<String> {
        self.inner
            .read()
            .map(|i| i.latest.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// A version by hash, compiled from the store's copy of its sources if not yet loaded.
    pub fn get(
        &self,
        hash: &str,
        store: &dyn Store,
        sandbox: &Sandbox,
    ) -> Result<Arc<Definition>, EngineError> {
        if let Some(found) = self
            .inner
            .read()
            .map_err(|_| EngineError::Closed)?
            .by_hash
            .get(hash)
        {
            return Ok(found.clone());
        }
        let fail = |detail: String| EngineError::Definition {
            hash: hash.to_string(),
            detail,
        };
        let stored = store
            .definition(hash)?
            .ok_or_else(|| fail("its sources are not in the store".into()))?;
        let (known, roles) = {
            let inner = self.inner.read().map_err(|_| EngineError::Closed)?;
            let known: BTreeSet<String> = inner.latest.keys().cloned().collect();
            (known, inner.roles.clone())
        };
        let mut definition = rebuild(&stored, sandbox, &known).map_err(fail)?;
        if let Some(roles) = roles {
            // Findings about the titles were reported when the list was loaded.
            let _ =
                crate::validate::roles::resolve(&mut definition.workflow, &definition.file, &roles);
        }
        if definition.hash != hash {
            return Err(fail(format!(
                "its stored sources hash to {}, not to the version's hash",
                definition.hash
            )));
        }
        let definition = Arc::new(definition);
        self.inner
            .write()
            .map_err(|_| EngineError::Closed)?
            .by_hash
            .insert(hash.to_string(), definition.clone());
        Ok(definition)
    }
}

/// Compiles one stored definition version on its own.
pub fn rebuild(
    stored: &StoredDefinition,
    sandbox: &Sandbox,
    known: &BTreeSet<String>,
) -> Result<Definition, String> {
    let sources = Sources::from_texts(
        vec![(PathBuf::from(&stored.file), stored.yaml.clone())],
        stored
            .rules
            .iter()
            .map(|(name, text)| (PathBuf::from(format!("{name}.rhai")), text.clone()))
            .collect(),
    )
    .with_parameters(
        [(stored.workflow.clone(), stored.parameters.clone())]
            .into_iter()
            .filter(|(_, values)| !values.is_empty())
            .collect(),
    );
    let mut report = catalog::build_with(sources, sandbox, known);
    if let Some(error) = report.diagnostics.iter().find(|d| d.is_error()) {
        return Err(format!("it no longer validates: {}", error.message));
    }
    let definition = report
        .catalog
        .definitions
        .remove(&stored.workflow)
        .ok_or_else(|| "the stored YAML declares another workflow".to_string())?;
    Arc::try_unwrap(definition).map_err(|_| "the definition is shared".to_string())
}
