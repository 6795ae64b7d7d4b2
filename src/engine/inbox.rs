//! The questions a person's task list asks: which instances wait for one of my roles, and
//! which are overdue.

use super::{Engine, EngineError};
use crate::machine::entry::ArmedTimer;
use crate::machine::{self, Actor, Available, EntryKind, Instance};
use crate::store::Query;
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;

/// An instance waiting for someone, with what they may do on it.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct Task {
    /// The instance as it stands now.
    pub instance: Instance,
    /// The events the asking actor may fire now (empty in a plain listing).
    pub actions: Vec<Available>,
    /// The earliest pending deadline of its current state.
    pub due: Option<DateTime<Utc>>,
    /// The pending timer of that deadline (its title names it).
    pub timer: Option<ArmedTimer>,
    /// Whether that deadline has passed.
    pub overdue: bool,
}

impl Engine {
    /// Whether a deadline of the instance's current state has passed: a pending timer is
    /// past due, or the last step was a timer's (time moved or escalated it and nobody has
    /// acted since). Finished instances are never overdue.
    pub async fn is_overdue(&self, instance: &Instance) -> Result<bool, EngineError> {
        if instance.finished {
            return Ok(false);
        }
        let now = self.now();
        if instance.timers.iter().any(|t| t.due <= now) {
            return Ok(true);
        }
        let last = self.inner.store.entry(&instance.id, instance.seq)?;
        Ok(last.is_some_and(|e| {
            e.kind == EntryKind::Timer && e.timer.as_ref().is_some_and(|t| t.refused.is_none())
        }))
    }

    /// Unfinished instances matching `query` on which `actor` may fire an event now, with
    /// those events; `overdue_only` keeps the overdue ones. Overdue ones first, then by
    /// earliest deadline, then oldest first.
    ///
    /// Without a state or business key in the query, only the states where the actor's roles
    /// can act (in any stored version) are read, through the state index: the cost follows
    /// the instances waiting in those states, not the store's size (finished instances pile
    /// up forever; an inbox must not read them).
    pub async fn tasks(
        &self,
        actor: &Actor,
        query: Query,
        overdue_only: bool,
    ) -> Result<Vec<Task>, EngineError> {
        super::check_query(&query)?;
        let limit = query.limit;
        let mut query = query;
        query.limit = None;
        let candidates = if query.state.is_none() && query.business_key.is_none() {
            self.states_for(actor, query.workflow.as_deref())
        } else {
            None
        };
        let instances = match candidates {
            Some(states) => {
                let mut found = Vec::new();
                for (workflow, state) in states {
                    found.extend(
                        self.list(Query {
                            workflow: Some(workflow),
                            state: Some(state),
                            business_key: None,
                            limit: None,
                        })
                        .await?,
                    );
                }
                found
            }
            None => self.list(query).await?,
        };
        // What the actor may do on each, with guards decided on its data: on the blocking
        // pool, in one go.
        let mut open = Vec::new();
        for instance in instances.into_iter().filter(|i| !i.finished) {
            open.push((self.definition(&instance.version)?, instance));
        }
        let who = actor.clone();
        let open = self
            .blocking(move |engine| {
                Ok(open
                    .into_iter()
                    .map(|(definition, instance)| {
                        let actions = machine::available(
                            &definition,
                            &instance,
                            &who,
                            engine.sandbox(),
                            engine.now(),
                        );
                        (instance, actions)
                    })
                    .collect::<Vec<_>>())
            })
            .await?;
        let mut tasks = Vec::new();
        for (instance, actions) in open {
            if actions.is_empty() {
                continue;
            }
            let overdue = self.is_overdue(&instance).await?;
            if overdue_only && !overdue {
                continue;
            }
            let timer = instance.timers.iter().min_by_key(|t| t.due).cloned();
            tasks.push(Task {
                due: timer.as_ref().map(|t| t.due),
                timer,
                instance,
                actions,
                overdue,
            });
        }
        tasks.sort_by(|a, b| {
            (!a.overdue, a.due.is_none(), a.due, a.instance.created).cmp(&(
                !b.overdue,
                b.due.is_none(),
                b.due,
                b.instance.created,
            ))
        });
        if let Some(limit) = limit {
            tasks.truncate(limit);
        }
        Ok(tasks)
    }

    /// The (workflow, state) pairs, over every stored version, in which `actor` may act
    /// ([`machine::may_act_in`]); `None` when a version cannot be read, so that the caller
    /// reads everything instead of missing a task.
    fn states_for(
        &self,
        actor: &Actor,
        workflow: Option<&str>,
    ) -> Option<BTreeSet<(String, String)>> {
        let mut states = BTreeSet::new();
        for record in self.inner.store.scan_definitions() {
            let record = record.ok()?;
            let stored = record.definition.ok()?;
            if workflow.is_some_and(|w| w != stored.workflow) {
                continue;
            }
            let definition = self.definition(&record.hash).ok()?;
            for (state, _) in definition.workflow.states.iter() {
                if machine::may_act_in(&definition, state.as_str(), actor) {
                    states.insert((stored.workflow.clone(), state.value.clone()));
                }
            }
        }
        Some(states)
    }

    /// Instances matching `query` that are overdue (see [`Engine::is_overdue`]).
    pub async fn overdue(&self, query: Query) -> Result<Vec<Instance>, EngineError> {
        let limit = query.limit.unwrap_or(usize::MAX);
        let mut query = query;
        query.limit = None;
        let mut out = Vec::new();
        for instance in self.list(query).await? {
            if out.len() >= limit {
                break;
            }
            if self.is_overdue(&instance).await? {
                out.push(instance);
            }
        }
        Ok(out)
    }
}
