//! What a caller may read. Every route and page that shows an instance (its snapshot,
//! history, approval chain, diagram with its state, a list, the inbox, a search) reads it
//! through these methods, which ask the workflow's controls ([`crate::machine::may_read`])
//! on the caller's behalf; an instance the caller may not read is `UnknownInstance` (404), as
//! if it did not exist, so that its id, state and existence stay hidden. Like the actor of a
//! step, the reader is taken from the [`Caller`] here, never from the request.

use super::AppState;
use super::auth::Caller;
use crate::audit::chain::ApprovalChain;
use crate::engine::{EngineError, Task};
use crate::machine::{Entry, Instance};
use crate::store::Query;

impl AppState {
    /// An instance, if the caller may read it.
    pub async fn instance(&self, caller: &Caller, id: &str) -> Result<Instance, EngineError> {
        self.engine.get_as(id, &caller.actor()).await
    }

    /// An instance's history, if the caller may read it.
    pub async fn history(&self, caller: &Caller, id: &str) -> Result<Vec<Entry>, EngineError> {
        self.engine.history_as(id, &caller.actor()).await
    }

    /// An instance's approval chain, if the caller may read it.
    pub async fn chain(&self, caller: &Caller, id: &str) -> Result<ApprovalChain, EngineError> {
        self.instance(caller, id).await?;
        self.engine.approval_chain(id).await
    }

    /// The instances matching `query` that the caller may read; the limit counts only those.
    pub async fn list(&self, caller: &Caller, query: Query) -> Result<Vec<Instance>, EngineError> {
        self.engine.list_as(query, &caller.actor()).await
    }

    /// The overdue instances matching `query` that the caller may read.
    pub async fn overdue(
        &self,
        caller: &Caller,
        query: Query,
    ) -> Result<Vec<Instance>, EngineError> {
        let limit = query.limit;
        let found = self
            .engine
            .overdue(Query {
                limit: None,
                ..query
            })
            .await?;
        let mut readable = self.engine.readable(found, &caller.actor());
        if let Some(limit) = limit {
            readable.truncate(limit);
        }
        Ok(readable)
    }

    /// The caller's inbox: instances they may act on now (which they may read, since a
    /// department acting on an instance reads it, and an own-scoped role acts only on its
    /// holder's instances), kept to the readable ones all the same.
    pub async fn tasks(
        &self,
        caller: &Caller,
        query: Query,
        overdue_only: bool,
    ) -> Result<Vec<Task>, EngineError> {
        let actor = caller.actor();
        let tasks = self.engine.tasks(&actor, query, overdue_only).await?;
        Ok(tasks
            .into_iter()
            .filter(|task| self.engine.may_read(&task.instance, &actor))
            .collect())
    }
}
