//! Deploying a definition set to a store: what a cluster runs instead of the files on each
//! node's disk.
//!
//! [`prepare`] checks the files as `sopflow validate` does and, when they have no error, makes
//! the [`Deployment`]: every workflow's version as stored ([`StoredDefinition`]) and the set
//! itself ([`DeployedSet`], every file it was built from, so that a node builds exactly the
//! catalog that was checked). [`deploy`] writes it as one change. Engines opened with
//! [`DefinitionSource::Deployed`](crate::engine::DefinitionSource::Deployed) run the set and
//! pick up a new one on [`Engine::reload`](crate::engine::Engine::reload), which a server does
//! when the store notifies it or its poll sees a new id.
//!
//! Deploying to PostgreSQL does not take the database from the servers running on it: it
//! writes only definition versions (content-addressed, never rewritten) and a new row of the
//! deployed sets, which the servers only read.

use crate::catalog::{self, LoadReport, Sources};
use crate::definition::Definition;
use crate::script::Sandbox;
use crate::store::{DeployedSet, Options, StoreError, StoreLocation, StoredDefinition};
use chrono::{DateTime, Utc};

/// A set ready to deploy.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// Every workflow's version, as stored.
    pub definitions: Vec<StoredDefinition>,
    /// The set.
    pub set: DeployedSet,
}

/// What a deploy did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deployed {
    /// The set is now the deployed one; the id of the one before, if any.
    New {
        /// The id of the set deployed before.
        previous: Option<String>,
    },
    /// The same files were already the deployed set: nothing was written.
    AlreadyDeployed,
}

/// The longest `by` kept: a name, not a document.
const MAX_BY_CHARS: usize = 100;

/// A definition version as it is stored.
pub fn stored(definition: &Definition) -> StoredDefinition {
    StoredDefinition {
        hash: definition.hash.clone(),
        workflow: definition.id().to_string(),
        file: definition.file.display().to_string(),
        yaml: definition.source.clone(),
        rules: definition.rules.clone(),
        parameters: definition.parameters.clone(),
    }
}

/// Checks `sources` as `sopflow validate` does and, when nothing has an error, the set to
/// deploy, recorded as deployed by `by` at `at`. `by` is kept to one line of 100 characters.
pub fn prepare(
    sources: Sources,
    sandbox: &Sandbox,
    by: &str,
    at: DateTime<Utc>,
) -> (LoadReport, Option<Deployment>) {
    let files = DeployedSet::files_of(&sources);
    let parameters = sources.parameters.clone();
    let report = catalog::build(sources, sandbox);
    if report.has_errors() {
        return (report, None);
    }
    let definitions: Vec<StoredDefinition> = report
        .catalog
        .definitions
        .values()
        .map(|d| stored(d))
        .collect();
    let versions = report
        .catalog
        .definitions
        .iter()
        .map(|(id, d)| (id.clone(), d.hash.clone()))
        .collect();
    let by: String = by
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_BY_CHARS)
        .collect();
    let set = DeployedSet {
        id: DeployedSet::id_of(&files, &parameters),
        versions,
        files,
        parameters,
        by,
        at,
    };
    (report, Some(Deployment { definitions, set }))
}

/// Makes `deployment` the set deployed to the store at `location` (created if new), unless
/// the same files already are. Blocking: call it off async worker threads.
pub fn deploy(location: &StoreLocation, deployment: &Deployment) -> Result<Deployed, StoreError> {
    match location {
        #[cfg(feature = "postgres")]
        StoreLocation::Postgres(url) => {
            crate::store::postgres::deploy_unlocked(url, &deployment.definitions, &deployment.set)
        }
        _ => {
            let store = crate::store::open(
                location,
                Options {
                    create: true,
                    ..Options::default()
                },
            )?;
            let previous = store.deployed_id()?;
            if previous.as_deref() == Some(deployment.set.id.as_str()) {
                return Ok(Deployed::AlreadyDeployed);
            }
            store.deploy(&deployment.definitions, &deployment.set)?;
            Ok(Deployed::New { previous })
        }
    }
}
