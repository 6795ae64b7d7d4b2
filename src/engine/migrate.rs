//! Migrating running instances to another version of their workflow: the plan (what would
//! happen to each, nothing written) and the apply (each clean instance moved by one committed
//! `migrate` entry), over the pure [`machine::migrate`].
//!
//! Both walk the store's snapshots once, one instance at a time, so a plan of any number of
//! instances runs in constant memory (an apply keeps only the ids to move). An apply moves each
//! instance under its lock, on the snapshot as it is then (not as it was when planned), in its
//! own commit: a crash leaves each instance moved once or not at all, and running it again
//! moves only the instances still on another version, so it is idempotent and resumable.
//!
//! Only a process owner migrates: the actor must hold the server-wide `process_owner` role.

use super::{Engine, EngineError};
use crate::definition::Definition;
use crate::definition::model::PROCESS_OWNER_ROLE;
use crate::machine::migrate::{Migrate, Plan};
use crate::machine::{self, Actor, Entry, Instance};
use crate::store::{Committed, StoreError};
use serde::Serialize;
use std::collections::HashSet;
use std::sync::Arc;

/// How many instances an apply moves at once (each in its own commit; the commits share
/// group flushes).
const CONCURRENT_MOVES: usize = 32;

/// The shortest prefix of a version hash a request may name it by.
const SHORTEST_PREFIX: usize = 6;

/// `to` naming the newest loaded version of the workflow.
pub const CURRENT: &str = "current";

/// Which running instances to migrate, to which version, and how.
#[derive(Debug, Clone)]
pub struct MigrationRequest {
    /// The workflow.
    pub workflow: String,
    /// Only instances on this version (a hash or a prefix of one, at least six characters);
    /// every other version when `None`.
    pub from: Option<String>,
    /// The version to move to: [`CURRENT`] (the newest loaded), a hash, or a prefix of one.
    pub to: String,
    /// How states, fields, signatures and timers move.
    pub mapping: machine::Mapping,
    /// Only these instances (ids or readable numbers), when not empty.
    pub only: Vec<String>,
    /// Only instances in this state.
    pub state: Option<String>,
    /// The process owner.
    pub actor: Actor,
    /// Why, recorded in each entry.
    pub comment: Option<String>,
}

impl MigrationRequest {
    /// A request to move every running instance of `workflow` on another version to `to`,
    /// states kept by name, by `actor`.
    pub fn new(workflow: impl Into<String>, to: impl Into<String>, actor: Actor) -> Self {
        MigrationRequest {
            workflow: workflow.into(),
            from: None,
            to: to.into(),
            mapping: machine::Mapping::default(),
            only: Vec::new(),
            state: None,
            actor,
            comment: None,
        }
    }
}

/// What a plan or an apply found, counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct MigrationSummary {
    /// The workflow.
    pub workflow: String,
    /// The version moved to.
    pub to_version: String,
    /// Running instances on another version that the request concerns.
    pub considered: u64,
    /// Of them, those whose plan is clean (a plan) or that were moved (an apply).
    pub clean: u64,
    /// Those left where they are, each with its reasons.
    pub blocked: u64,
    /// Running instances the request concerns that are on the version already (an apply run
    /// again finds the instances it moved here).
    pub current: u64,
}

/// What an apply did to one instance.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Moved {
    /// Moved by this entry.
    Migrated {
        /// The `migrate` entry committed.
        entry: Box<Entry>,
    },
    /// Left where it is.
    Blocked {
        /// Its plan, with the blockers.
        plan: Box<Plan>,
    },
}

impl Engine {
    /// What migrating the request's instances would do: one [`Plan`] per instance, handed to
    /// `each` as the store's snapshots are walked, and the counts. Nothing is written.
    pub async fn migration_plan(
        &self,
        request: MigrationRequest,
        mut each: impl FnMut(Plan) + Send + 'static,
    ) -> Result<MigrationSummary, EngineError> {
        check_owner(&request.actor)?;
        self.blocking(move |engine| {
            let target = engine.migration_target(&request)?;
            let command = engine.migrate_command(&request);
            let mut summary = summary_of(&request, &target);
            let mut counts = (0, 0);
            engine.concerned(&request, &target, &mut summary, &mut |instance| {
                let old = engine.definition(&instance.version)?;
                let plan = machine::plan(&old, &target, &instance, &command, engine.sandbox());
                if plan.is_clean() {
                    counts.0 += 1;
                } else {
                    counts.1 += 1;
                }
                each(plan);
                Ok(())
            })?;
            (summary.clean, summary.blocked) = counts;
            Ok(summary)
        })
        .await
    }

    /// Migrates the request's instances whose plan is clean, each by one committed `migrate`
    /// entry, handing what happened to each to `each`; instances with blockers are left where
    /// they are (and handed over with their plan).
    pub async fn migrate(
        &self,
        request: MigrationRequest,
        mut each: impl FnMut(Moved) + Send,
    ) -> Result<MigrationSummary, EngineError> {
        check_owner(&request.actor)?;
        let (target, ids, mut summary) = {
            let request = request.clone();
            self.blocking(move |engine| {
                let target = engine.migration_target(&request)?;
                let mut summary = summary_of(&request, &target);
                let mut ids = Vec::new();
                engine.concerned(&request, &target, &mut summary, &mut |instance| {
                    ids.push(instance.id);
                    Ok(())
                })?;
                Ok((target, ids, summary))
            })
            .await?
        };
        let command = self.migrate_command(&request);
        let mut moves = tokio::task::JoinSet::new();
        let mut ids = ids.into_iter();
        let mut failure = None;
        loop {
            while moves.len() < CONCURRENT_MOVES
                && let Some(id) = ids.next()
            {
                let (engine, target, command) = (self.clone(), target.clone(), command.clone());
                moves.spawn(async move { engine.move_one(id.to_string(), target, command).await });
            }
            let Some(done) = moves.join_next().await else {
                break;
            };
            match done {
                Ok(Ok(Some(moved))) => {
                    match &moved {
                        Moved::Migrated { .. } => summary.clean += 1,
                        Moved::Blocked { .. } => summary.blocked += 1,
                    }
                    each(moved);
                }
                // Finished or moved by someone else since the walk.
                Ok(Ok(None)) => summary.current += 1,
                Ok(Err(err)) => {
                    // Stop starting moves; those under way finish (each is whole or nothing).
                    failure.get_or_insert(err);
                    ids = Vec::new().into_iter();
                }
                Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
                Err(_) => {
                    failure.get_or_insert(EngineError::Closed);
                }
            }
        }
        match failure {
            Some(err) => Err(err),
            None => Ok(summary),
        }
    }

    /// Moves one instance, again if its commit loses a race with another node's step.
    async fn move_one(
        &self,
        id: String,
        target: Arc<Definition>,
        command: Migrate,
    ) -> Result<Option<Moved>, EngineError> {
        self.retrying(|| self.move_once(id.clone(), target.clone(), command.clone()))
            .await
    }

    async fn move_once(
        &self,
        id: String,
        target: Arc<Definition>,
        command: Migrate,
    ) -> Result<Option<Moved>, EngineError> {
        let _lock = self.lock(&id).await;
        let computed = self
            .blocking(move |engine| {
                let instance = engine.instance(&id)?;
                if instance.finished || instance.version == target.hash {
                    return Ok(None);
                }
                let old = engine.definition(&instance.version)?;
                let command = Migrate {
                    at: engine.now(),
                    ..command
                };
                match machine::migrate(&old, &target, &instance, &command, engine.sandbox()) {
                    Err(plan) => Ok(Some(Err(plan))),
                    Ok(entry) => {
                        let mut snapshot = instance;
                        snapshot.apply(&entry).map_err(StoreError::from)?;
                        let placed = engine.commit_here(Committed::new(entry, snapshot)?)?;
                        Ok(Some(Ok(placed)))
                    }
                }
            })
            .await?;
        Ok(match computed {
            None => None,
            Some(Err(plan)) => Some(Moved::Blocked { plan }),
            Some(Ok(placed)) => {
                let step = self.placed(placed).await?;
                Some(Moved::Migrated {
                    entry: Box::new(step.entry),
                })
            }
        })
    }

    /// The command each move is made with (its time is set when the instance is moved).
    fn migrate_command(&self, request: &MigrationRequest) -> Migrate {
        Migrate {
            actor: request.actor.clone(),
            mapping: request.mapping.clone(),
            comment: request.comment.clone(),
            at: self.now(),
        }
    }

    /// The version the request moves to, its mapping checked against it.
    fn migration_target(&self, request: &MigrationRequest) -> Result<Arc<Definition>, EngineError> {
        let target = if request.to == CURRENT {
            self.inner.versions.latest(&request.workflow)?
        } else {
            let hash = self.version_named(&request.workflow, &request.to)?;
            self.definition(&hash)?
        };
        check_mapping(&target, &request.mapping)?;
        Ok(target)
    }

    /// The full hash of the stored version of `workflow` that `name` (a hash or a prefix)
    /// names.
    fn version_named(&self, workflow: &str, name: &str) -> Result<String, EngineError> {
        let unknown = || EngineError::UnknownVersion {
            workflow: workflow.to_string(),
            version: name.to_string(),
        };
        if name.len() < SHORTEST_PREFIX || !name.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(unknown());
        }
        let mut found = Vec::new();
        for record in self.inner.store.scan_definitions() {
            let record = record?;
            let ours = record
                .definition
                .as_ref()
                .is_ok_and(|d| d.workflow == workflow);
            if ours && record.hash.starts_with(name) {
                found.push(record.hash);
            }
        }
        match found.len() {
            0 => Err(unknown()),
            1 => Ok(found.remove(0)),
            _ => Err(EngineError::AmbiguousVersion {
                workflow: workflow.to_string(),
                version: name.to_string(),
            }),
        }
    }

    /// Walks the running instances the request concerns, counting those already on the
    /// target, and hands each other one to `visit`.
    fn concerned(
        &self,
        request: &MigrationRequest,
        target: &Definition,
        summary: &mut MigrationSummary,
        visit: &mut dyn FnMut(Instance) -> Result<(), EngineError>,
    ) -> Result<(), EngineError> {
        let from = match &request.from {
            Some(name) => Some(self.version_named(&request.workflow, name)?),
            None => None,
        };
        let only = if request.only.is_empty() {
            None
        } else {
            let mut ids = HashSet::new();
            for name in &request.only {
                ids.insert(self.resolve(name)?);
            }
            Some(ids)
        };
        self.inner.store.checkpoint()?;
        for record in self.inner.store.scan_snapshots() {
            // A snapshot that does not decode is the audit's to report; it is not moved.
            let Ok(instance) = record?.instance else {
                continue;
            };
            if instance.workflow != request.workflow
                || instance.finished
                || only
                    .as_ref()
                    .is_some_and(|ids| !ids.contains(instance.id.as_str()))
                || request.state.as_ref().is_some_and(|s| *s != instance.state)
            {
                continue;
            }
            if instance.version == target.hash {
                summary.current += 1;
                continue;
            }
            if from.as_ref().is_some_and(|v| *v != instance.version) {
                continue;
            }
            summary.considered += 1;
            visit(instance)?;
        }
        Ok(())
    }
}

fn summary_of(request: &MigrationRequest, target: &Definition) -> MigrationSummary {
    MigrationSummary {
        workflow: request.workflow.clone(),
        to_version: target.hash.clone(),
        ..MigrationSummary::default()
    }
}

/// Refuses a migration by anyone but a process owner.
fn check_owner(actor: &Actor) -> Result<(), EngineError> {
    if actor.roles.iter().any(|r| r == PROCESS_OWNER_ROLE) {
        Ok(())
    } else {
        Err(EngineError::NotProcessOwner {
            actor: actor.id.clone(),
        })
    }
}

/// Refuses a mapping that names states or fields the target version does not have, before
/// any instance is looked at.
fn check_mapping(target: &Definition, mapping: &machine::Mapping) -> Result<(), EngineError> {
    let workflow = &target.workflow;
    for (from, to) in &mapping.states {
        match workflow.states.get(to) {
            None => {
                return Err(EngineError::BadMapping {
                    reason: format!(
                        "`{from}` is mapped to `{to}`, which the new version does not have (it has {})",
                        workflow.states.keys().collect::<Vec<_>>().join(", ")
                    ),
                });
            }
            Some(state) if state.is_final => {
                return Err(EngineError::BadMapping {
                    reason: format!(
                        "`{from}` is mapped to `{to}`, a final state: a migration does not finish instances"
                    ),
                });
            }
            Some(_) => {}
        }
    }
    for field in mapping.set.keys() {
        if !workflow.fields.contains(field) {
            return Err(EngineError::BadMapping {
                reason: format!(
                    "`set` gives `{field}`, which the new version does not declare as a field"
                ),
            });
        }
    }
    Ok(())
}
