//! A definition version: one workflow as validated, with its compiled scripts, its parameters
//! and its calendar, ready for the runtime. The catalog builds it from files; the machine, the
//! engine and the audit only read it, so this type belongs to the definition layer, not to the
//! file loader.

use super::Workflow;
use crate::calendar::{Calendar, Calendars};
use crate::script::Script;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

/// A validated workflow, ready for the runtime.
#[derive(Debug)]
pub struct Definition {
    /// The workflow as read from `file`, with role titles filled in from the role list: the
    /// states, events, fields and controls every step is decided by.
    pub workflow: Workflow,
    /// The YAML file it was read from.
    pub file: PathBuf,
    /// The YAML text as read.
    pub source: String,
    /// The version: hex SHA-256 of the YAML and the rules files it uses.
    pub hash: String,
    /// The rules files it uses, by name, with their text as read.
    pub rules: BTreeMap<String, String>,
    /// Parameter values set from outside the YAML (part of the version), by name.
    pub parameters: serde_json::Map<String, serde_json::Value>,
    /// Its compiled scripts, by their text in the YAML.
    pub scripts: HashMap<String, Script>,
    /// Its parameters as scripts read them (`params`), built once.
    pub params: rhai::Dynamic,
    /// The workflow's business calendar.
    pub calendar: Arc<Calendar>,
    /// The calendar as scripts read it (`calendar`), built once.
    pub calendar_value: rhai::Dynamic,
    /// Every loaded calendar, for timers and schedules that name their own.
    pub calendars: Calendars,
}

impl Definition {
    /// The workflow's id (`hot_work_permit`), shared by all its versions; `hash` tells the
    /// versions apart.
    pub fn id(&self) -> &str {
        self.workflow.id.as_str()
    }

    /// The calendar called `name`, or the workflow's own when `None`.
    pub fn calendar_named(&self, name: Option<&str>) -> Option<Arc<Calendar>> {
        match name {
            None => Some(self.calendar.clone()),
            Some(name) => self.calendars.get(name),
        }
    }
}
