//! The instance snapshot: where one run of a workflow stands, derived from its history.
//!
//! [`Instance::apply`] is the only way a snapshot changes. The engine, recovery on open and
//! audit replay all fold history entries through it, so a snapshot always equals the end of
//! its history.

use super::entry::{ArmedTimer, Entry, EntryKind, PendingSigner, Signature, Text};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One run of a workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Instance {
    /// `workflow-N`, N counting from 1 per workflow (children: `{parent}.{seq}.{n}`).
    pub id: Text,
    /// The workflow it runs.
    pub workflow: Text,
    /// The definition version it runs on: the one it started on, until a process owner
    /// migrates it (a `migrate` entry).
    pub version: String,
    /// The state it is in.
    pub state: Text,
    /// Its fields' values, as the steps so far set them.
    pub data: Map<String, Value>,
    /// The sequence number of the last entry.
    pub seq: u64,
    /// The business key (a contract or unit number) it is found by.
    pub business_key: Option<String>,
    /// The readable number (`DH-2026-0001`), for a workflow with a `number` format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    /// The instance whose step started it, for a child.
    pub parent: Option<String>,
    #[serde(default)]
    /// The children its steps started, and how each finished.
    pub children: Vec<Child>,
    /// The approval of the current state, if it has one.
    #[serde(default)]
    pub approval: Option<ApprovalProgress>,
    /// Timers pending in the current state.
    #[serde(default)]
    pub timers: Vec<ArmedTimer>,
    /// Steps done so far (`state.event`) and by whom, each pair once, for distinct-actor
    /// constraints.
    #[serde(default)]
    pub acts: Vec<Act>,
    /// Who started it (`None` when the engine did: a schedule, or a parent workflow).
    #[serde(default)]
    pub started_by: Option<String>,
    /// The roles people have acted in on it, each once: its holders may read it.
    #[serde(default)]
    pub roles: Vec<String>,
    /// When it started.
    pub created: DateTime<Utc>,
    /// When its last step was taken.
    pub updated: DateTime<Utc>,
    /// Whether it is in a final state: no step can follow.
    pub finished: bool,
    /// The hash of the last entry: the next entry's `prev_hash`.
    pub last_hash: String,
}

/// A child instance and, once it has finished, the final state it reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Child {
    /// The child instance.
    pub id: String,
    /// The child's workflow.
    pub workflow: String,
    /// The final state it reached, once it has finished.
    pub finished_in: Option<String>,
    /// Its readable number, when its workflow has a `number` format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
}

/// Signatures collected so far in the current state's approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ApprovalProgress {
    /// Who must sign, as evaluated on entering the state.
    pub signers: Vec<PendingSigner>,
    /// The signatures given so far, in order.
    pub signatures: Vec<Signature>,
}

/// Who did a step, as `state.event`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Act {
    /// The step, as `state.event`.
    pub step: String,
    /// Who took it.
    pub actor: String,
}

/// Why an entry does not continue a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// The entry's number is not the one after the snapshot's last.
    #[error("entry {seq} of `{instance}` does not follow entry {last}")]
    OutOfOrder {
        /// The instance.
        instance: String,
        /// The entry's number.
        seq: u64,
        /// The snapshot's last entry.
        last: u64,
    },
    /// The entry's `prev_hash` is not the hash of the entry before it.
    #[error("entry {seq} of `{instance}` does not link to the hash of the entry before")]
    BrokenLink {
        /// The instance.
        instance: String,
        /// The entry's number.
        seq: u64,
    },
    /// A history does not begin with a start entry.
    #[error("the first entry of `{instance}` is not its start")]
    NotAStart {
        /// The instance.
        instance: String,
    },
}

impl Instance {
    /// The instance as its start entry creates it.
    pub fn begin(entry: &Entry) -> Result<Instance, ChainError> {
        if entry.kind != EntryKind::Start || entry.seq != 0 || !entry.prev_hash.is_empty() {
            return Err(ChainError::NotAStart {
                instance: entry.instance.to_string(),
            });
        }
        Ok(Instance::from_entry(entry))
    }

    /// The instance one entry makes on its own: for a start entry, the new instance (see
    /// [`Instance::begin`], which checks that it is one); for any other, the instance as far as
    /// that entry shows it, for reading a history whose start is missing (the audit's views).
    pub fn from_entry(entry: &Entry) -> Instance {
        let mut instance = Instance {
            id: entry.instance.clone(),
            workflow: entry.workflow.clone(),
            version: entry.version.clone(),
            state: entry.to.clone(),
            data: Map::new(),
            seq: 0,
            business_key: entry.business_key.clone(),
            number: entry.number.clone(),
            parent: entry.parent.clone(),
            children: Vec::new(),
            approval: None,
            timers: Vec::new(),
            acts: Vec::new(),
            started_by: (entry.kind == EntryKind::Start && !by_system(entry))
                .then(|| entry.actor.to_string()),
            roles: Vec::new(),
            created: entry.at,
            updated: entry.at,
            finished: false,
            last_hash: String::new(),
        };
        instance.fold(entry);
        instance
    }

    /// Applies the next entry of the history.
    pub fn apply(&mut self, entry: &Entry) -> Result<(), ChainError> {
        if entry.seq != self.seq + 1 {
            return Err(ChainError::OutOfOrder {
                instance: self.id.to_string(),
                seq: entry.seq,
                last: self.seq,
            });
        }
        if entry.prev_hash != self.last_hash {
            return Err(ChainError::BrokenLink {
                instance: self.id.to_string(),
                seq: entry.seq,
            });
        }
        self.fold(entry);
        Ok(())
    }

    /// Rebuilds an instance from its whole history.
    pub fn replay<'a>(
        entries: impl IntoIterator<Item = &'a Entry>,
    ) -> Result<Option<Instance>, ChainError> {
        let mut instance: Option<Instance> = None;
        for entry in entries {
            match &mut instance {
                None => instance = Some(Instance::begin(entry)?),
                Some(i) => i.apply(entry)?,
            }
        }
        Ok(instance)
    }

    fn fold(&mut self, entry: &Entry) {
        // A signature belongs to the approval of the state the step started in; entering a
        // state then replaces that approval with the new state's (or none).
        if let (Some(signature), Some(progress)) = (&entry.signature, &mut self.approval) {
            progress.signatures.push(Signature::clone(signature));
        }
        if entry.entered {
            self.approval = entry.signers.as_ref().map(|signers| ApprovalProgress {
                signers: signers.clone(),
                signatures: Vec::new(),
            });
        }
        self.timers
            .retain(|t| !entry.timers_cancelled.contains(&t.id));
        self.timers.extend(entry.timers_armed.iter().cloned());
        if let Some(from) = &entry.from
            && entry.kind == EntryKind::Event
        {
            // Each (step, actor) once: enough for four-eyes, and bounded however often an
            // instance loops.
            let step = format!("{from}.{}", entry.event);
            if !self
                .acts
                .iter()
                .any(|a| a.step == step && a.actor == entry.actor)
            {
                self.acts.push(Act {
                    step,
                    actor: entry.actor.to_string(),
                });
            }
        }
        if let Some(role) = &entry.role
            && !by_system(entry)
            && entry.kind != EntryKind::Migrate
            && !self.roles.iter().any(|r| r == role)
        {
            self.roles.push(role.to_string());
        }
        for (key, value) in &entry.changes {
            self.data.insert(key.clone(), value.clone());
        }
        for spawned in &entry.spawned {
            self.children.push(Child {
                id: spawned.id.clone(),
                workflow: spawned.workflow.clone(),
                finished_in: None,
                number: spawned.number.clone(),
            });
        }
        if let Some(status) = &entry.child
            && let Some(child) = self.children.iter_mut().find(|c| c.id == status.id)
        {
            child.finished_in = Some(status.state.clone());
        }
        if let Some(migration) = &entry.migration
            && entry.kind == EntryKind::Migrate
        {
            // The version it runs on from now on, and its approval under that version's rules.
            self.version = entry.version.clone();
            self.approval = migration.approval.clone();
        }
        self.state = entry.to.clone();
        self.finished = entry.finished;
        self.seq = entry.seq;
        self.updated = entry.at;
        self.last_hash = entry.hash.clone();
    }

    /// Whether `actor` started this instance or did any step of it.
    pub fn took_part(&self, actor: &str) -> bool {
        self.started_by.as_deref() == Some(actor) || self.acts.iter().any(|a| a.actor == actor)
    }

    /// Whether `actor` did any of `steps` (`state.event`).
    pub fn acted(&self, actor: &str, steps: &[&str]) -> Option<&str> {
        self.acts
            .iter()
            .find(|a| a.actor == actor && steps.contains(&a.step.as_str()))
            .map(|a| a.step.as_str())
    }
}

/// Whether the engine took this step itself (a timer, a child's completion, a schedule's or a
/// parent's start).
fn by_system(entry: &Entry) -> bool {
    entry.actor == crate::definition::model::SYSTEM_ROLE
        && entry
            .role
            .as_deref()
            .is_none_or(|r| r == crate::definition::model::SYSTEM_ROLE)
}
