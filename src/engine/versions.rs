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
use std::sync::{Arc, Mutex, RwLock};

/// Every definition version the engine has compiled, by hash.
#[derive(Default)]
pub struct Versions {
    inner: RwLock<Inner>,
    /// Held across a whole [`Versions::publish`], saves and swap.
    publishing: Mutex<()>,
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
    /// Makes the catalog's definitions the newest versions, once their sources are stored.
    /// Every source is saved first; only then do all of them become visible at once (one
    /// write lock), so a reader sees the old set or the new one, and a save that fails leaves
    /// the old set in force (the versions saved before it are only stored sources, which
    /// nothing runs on). Workflows the catalog no longer has can no longer be started; their
    /// versions stay for the instances that run on them.
    pub fn publish(&self, catalog: &Catalog, store: &dyn Store) -> Result<(), EngineError> {
        // Publishing is one writer at a time: a reload that saved later cannot be swapped in
        // under one that saved earlier.
        let _one_at_a_time = self.publishing.lock().map_err(|_| EngineError::Closed)?;
        for (id, definition) in &catalog.definitions {
            store.save_definition(&StoredDefinition {
                hash: definition.hash.clone(),
                workflow: id.clone(),
                file: definition.file.display().to_string(),
                yaml: definition.source.clone(),
                rules: definition.rules.clone(),
                parameters: definition.parameters.clone(),
            })?;
        }
        let mut inner = self.inner.write().map_err(|_| EngineError::Closed)?;
        inner.roles = catalog.roles.clone();
        inner
            .latest
            .retain(|id, _| catalog.definitions.contains_key(id));
        for (id, definition) in &catalog.definitions {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SledStore;

    fn workflow(id: &str, title: &str) -> (PathBuf, String) {
        (
            PathBuf::from(format!("{id}.yaml")),
            format!(
                "id: {id}\ntitle: {title}\nroles: {{clerk: 职员}}\ninitial: open\nstates:\n  open:\n    on:\n      close: {{to: closed, roles: [clerk]}}\n  closed: {{final: true}}\n"
            ),
        )
    }

    fn catalog(files: Vec<(PathBuf, String)>, sandbox: &Sandbox) -> Catalog {
        let report = catalog::build(Sources::from_texts(files, Vec::new()), sandbox);
        assert!(!report.has_errors(), "{:?}", report.diagnostics);
        report.catalog
    }

    /// Every definition is saved before any becomes the newest: when the store refuses a save,
    /// the set in force stays exactly as it was, with no workflow of the new set added and none
    /// of the old one removed.
    #[test]
    fn a_set_whose_sources_cannot_be_saved_is_not_published_at_all() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SledStore::open(dir.path(), Default::default()).expect("opens");
        let sandbox = Sandbox::new(Default::default());
        let versions = Versions::default();
        let old = catalog(vec![workflow("w", "旧"), workflow("y", "将删除")], &sandbox);
        versions.publish(&old, &store).expect("publishes");
        let before = versions.latest_hashes();
        assert_eq!(before.keys().collect::<Vec<_>>(), ["w", "y"]);

        let new = catalog(vec![workflow("w", "新"), workflow("x", "新增")], &sandbox);
        store.refuse_writes();
        let failed = versions.publish(&new, &store);
        assert!(matches!(failed, Err(EngineError::Store(_))), "{failed:?}");
        assert_eq!(
            versions.latest_hashes(),
            before,
            "the old set stays in force"
        );
        assert!(versions.latest("x").is_err());
        assert_eq!(versions.latest("y").expect("still there").hash, before["y"]);
    }
}
