//! Reading as someone: the engine's questions asked on behalf of a person, answered only with
//! the instances they may read ([`machine::may_read`]: the people taking part, department
//! roles acting on it now or before, the workflow's declared readers, auditors).
//!
//! An instance a reader may not read is reported exactly like one that does not exist
//! (`UnknownInstance`), so that its id, state and existence stay hidden. The plain methods
//! ([`Engine::get`], [`Engine::list`], [`Engine::history`]) remain for the embedding program
//! itself and for the operator's command line, which hold the whole store anyway.

use super::{Engine, EngineError};
use crate::machine::{self, Actor, Entry, Instance};
use crate::store::Query;
use std::collections::HashMap;
use std::sync::Arc;

impl Engine {
    /// Whether `reader` may read `instance`, under the definition version it runs on. An
    /// instance whose version cannot be read is open to auditors only.
    pub fn may_read(&self, instance: &Instance, reader: &Actor) -> bool {
        match self.definition(&instance.version) {
            Ok(definition) => machine::may_read(&definition.workflow, instance, reader),
            Err(_) => reader
                .roles
                .iter()
                .any(|r| r == crate::definition::model::AUDITOR_ROLE),
        }
    }

    /// An instance, if `reader` may read it.
    pub async fn get_as(&self, id: &str, reader: &Actor) -> Result<Instance, EngineError> {
        let instance = self.get(id).await?;
        if self.may_read(&instance, reader) {
            Ok(instance)
        } else {
            Err(EngineError::UnknownInstance { id: id.to_string() })
        }
    }

    /// The history of an instance, if `reader` may read it.
    pub async fn history_as(&self, id: &str, reader: &Actor) -> Result<Vec<Entry>, EngineError> {
        self.get_as(id, reader).await?;
        self.history(id).await
    }

    /// The instances matching `query` that `reader` may read; `query.limit` counts only those.
    pub async fn list_as(
        &self,
        query: Query,
        reader: &Actor,
    ) -> Result<Vec<Instance>, EngineError> {
        let limit = query.limit;
        let found = self
            .list(Query {
                limit: None,
                ..query
            })
            .await?;
        let mut readable = self.readable(found, reader);
        if let Some(limit) = limit {
            readable.truncate(limit);
        }
        Ok(readable)
    }

    /// Keeps the instances `reader` may read, looking each definition version up once.
    pub fn readable(&self, instances: Vec<Instance>, reader: &Actor) -> Vec<Instance> {
        let mut versions: HashMap<String, Option<Arc<crate::definition::Definition>>> =
            HashMap::new();
        let auditor = reader
            .roles
            .iter()
            .any(|r| r == crate::definition::model::AUDITOR_ROLE);
        instances
            .into_iter()
            .filter(|instance| {
                if auditor {
                    return true;
                }
                let definition = versions
                    .entry(instance.version.clone())
                    .or_insert_with(|| self.definition(&instance.version).ok());
                definition
                    .as_ref()
                    .is_some_and(|d| machine::may_read(&d.workflow, instance, reader))
            })
            .collect()
    }
}
