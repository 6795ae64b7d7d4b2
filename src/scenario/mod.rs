//! Scenario tests a process owner writes in YAML: start an instance, fire events as people with
//! roles, move a virtual clock across the business calendar, and check what the manual says
//! should hold. `sopflow test` runs them ([`run`]); this module owns the format.
//!
//! ```yaml
//! workflow: lead_callback
//! clock: "2026-03-02T10:00:00+08:00"      # where the virtual clock starts
//! params: {contact_within: 15分钟}         # parameter values over the defaults (optional)
//! scenarios:
//!   - name: 15分钟未联系,客服可转交
//!     steps:
//!       - start: {actor: zhao, roles: [cs], data: {salesperson: li}}
//!       - fire: {event: reassign, actor: zhao, roles: [cs], payload: {salesperson: sun}}
//!         refused: unknown_event
//!       - advance: 15 minutes
//!       - expect: {state: overdue, history: 2}
//! ```
//!
//! An `expect` step's `notified:` lists the notices the steps since the last such check would
//! send (`crate::notify`), matched by recipient, id and words of the title and message; nothing
//! is sent.
//!
//! A `migrate` step loads the next version of the workflow from a file beside the scenario
//! file (in place of the workflow's own file) and migrates the current instance to it, as a
//! process owner would with `sopflow migrate apply`; `blocked: CODE` says the migration must
//! leave the instance where it is, for that reason.

pub mod coverage;
mod migrate;
pub mod paths;
pub mod run;

use crate::definition::located::Located;
use serde::Deserialize;
use serde_json::{Map, Value};

/// One file of scenarios, all about one workflow.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScenarioFile {
    /// The workflow the scenarios start.
    pub workflow: Located<String>,
    /// Where the virtual clock starts (RFC 3339, or a date meaning 09:00 China Standard Time);
    /// a scenario may set its own.
    #[serde(default)]
    pub clock: Option<Located<String>>,
    /// Parameter values over the workflow's defaults for every scenario of the file, so that
    /// the paths a process owner's own setting opens are tested too; a scenario may add its own.
    #[serde(default)]
    pub params: Option<Located<Map<String, Value>>>,
    pub scenarios: Vec<Located<Scenario>>,
}

/// A story to run from a fresh, empty store.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Scenario {
    /// What the scenario shows, in the manual's words.
    pub name: String,
    #[serde(default)]
    pub clock: Option<Located<String>>,
    /// Parameter values for this scenario, over the file's `params:`.
    #[serde(default)]
    pub params: Option<Located<Map<String, Value>>>,
    pub steps: Vec<Located<Step>>,
}

/// One step: exactly one of `start`, `fire`, `advance`, `advance_to`, `migrate`, `expect`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Step {
    #[serde(default)]
    pub start: Option<StartStep>,
    #[serde(default)]
    pub fire: Option<FireStep>,
    /// Move the virtual clock by a duration (`8 working days`), firing what falls due.
    #[serde(default)]
    pub advance: Option<String>,
    /// Move the virtual clock to a time, firing what falls due.
    #[serde(default)]
    pub advance_to: Option<String>,
    /// Migrate the current instance to the next version of the workflow.
    #[serde(default)]
    pub migrate: Option<MigrateStep>,
    #[serde(default)]
    pub expect: Option<Expect>,
    /// For `migrate`: the migration must be blocked with this code (`state_removed`,
    /// `signature_without_signer`...), and change nothing.
    #[serde(default)]
    pub blocked: Option<String>,
    /// For `start` and `fire`: the step must be refused with this code (`role_not_allowed`,
    /// `guard_failed`, `four_eyes`...), and change nothing.
    #[serde(default)]
    pub refused: Option<String>,
    /// With `refused`: text the refusal's message must contain (the cut-off a guard names,
    /// the field a step may not write), so that a scenario holds the reason a clerk reads.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Start an instance of the file's workflow; later steps act on it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StartStep {
    pub actor: String,
    pub roles: Vec<String>,
    #[serde(default)]
    pub data: Map<String, Value>,
    #[serde(default)]
    pub business_key: Option<String>,
}

/// Fire an event on the current instance as an actor with roles.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FireStep {
    pub event: String,
    pub actor: String,
    pub roles: Vec<String>,
    #[serde(default)]
    pub payload: Map<String, Value>,
    #[serde(default)]
    pub comment: Option<String>,
}

/// Migrate the current instance to another version of its workflow.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MigrateStep {
    /// The workflow file of the new version, relative to the scenario file's folder (it takes
    /// the place of the workflow's own file from this step on).
    pub to: String,
    /// Old state -> new state, for states the new version renames or removes.
    #[serde(default)]
    pub map: std::collections::BTreeMap<String, String>,
    /// Field values the migration sets.
    #[serde(default)]
    pub set: Map<String, Value>,
    /// Drop signatures the new approval has no signer for.
    #[serde(default)]
    pub drop_signatures: bool,
    /// What happens to pending timers (`keep`, the default, or `rearm`).
    #[serde(default)]
    pub timers: crate::machine::migrate::TimerPolicy,
    /// The process owner who migrates (`process_owner` when not given).
    #[serde(default)]
    pub actor: Option<String>,
    /// Why, recorded in the entry.
    #[serde(default)]
    pub comment: Option<String>,
}

/// What must hold of the current instance now. Only what is given is checked.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Expect {
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub finished: Option<bool>,
    /// Field values (numbers compare by value: `15000` equals `15000.0`).
    #[serde(default)]
    pub data: Option<Map<String, Value>>,
    /// The pending timers, in due order: each an event, and optionally its due time.
    #[serde(default)]
    pub timers: Option<Vec<TimerExpect>>,
    /// The roles whose signatures the current approval still needs, in order.
    #[serde(default)]
    pub awaiting: Option<Vec<String>>,
    /// How many entries the history has (the start counts).
    #[serde(default)]
    pub history: Option<usize>,
    /// The notices the current instance's steps would send since the last `notified` check
    /// (or since its start), in order, one expectation per notice; `[]`: none. Nothing is sent.
    #[serde(default)]
    pub notified: Option<Vec<NoticeExpect>>,
}

/// One notice a step would send: who among its recipients, and what it says.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NoticeExpect {
    /// Among its recipients: `{role: cs_supervisor}`, `{user: zhao}`, `{channel: cs_group}`,
    /// or a list of them (each must be).
    #[serde(default)]
    pub to: Option<crate::definition::located::OneOrMany<AddresseeExpect>>,
    /// The notice's `id` in the definition.
    #[serde(default)]
    pub id: Option<String>,
    /// Text its title contains (with `exact: true`, its whole title).
    #[serde(default)]
    pub title: Option<String>,
    /// Text its message contains (with `exact: true`, its whole message).
    #[serde(default)]
    pub body: Option<String>,
    /// Compare `title` and `body` whole rather than as parts.
    #[serde(default)]
    pub exact: bool,
}

/// A recipient as a scenario names it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum AddresseeExpect {
    /// Everyone holding a role, by id.
    Role(String),
    /// One person, by user id.
    User(String),
    /// A configured channel, by name.
    Channel(String),
}

/// A pending timer: its event and, optionally, when it falls due.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TimerExpect {
    pub event: String,
    #[serde(default)]
    pub due: Option<String>,
}
