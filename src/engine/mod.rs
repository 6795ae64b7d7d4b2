//! The engine: the embedding API over the machine and the store.
//!
//! [`Engine`] loads the workflows, opens the store and runs commands: each command takes its
//! instance's lock (commands for one instance run one at a time, different instances in
//! parallel), computes the step with the pure [`machine`], hands it to the
//! group-commit thread and answers once the step is flushed. Follow-up steps (children to
//! start, a parent to tell that its child finished, an `await_children` event) go into the same
//! batch as the step that caused them.
//!
//! A step may run scripts (guards, actions, signer conditions), and a script may cost up to
//! the sandbox's limits: so every call of the pure step runs on tokio's blocking pool
//! (`Engine::blocking`), never on an async worker thread, where one costly guard would stall
//! every other request the thread serves. The instance's lock is held across it, so commands
//! for one instance still run one at a time, and the step's batch goes to the same committer.
//!
//! ```no_run
//! # async fn demo() -> Result<(), sopflow::engine::EngineError> {
//! use sopflow::engine::{Config, Engine, Fire, StartRequest};
//! use sopflow::machine::Actor;
//!
//! let engine = Engine::open(Config::new("./data")).await?;
//! let contractor = Actor::new("wang", ["contractor"]);
//! let started = engine
//!     .start("hot_work_permit", StartRequest::new(contractor.clone()))
//!     .await?;
//! let payload = serde_json::json!({
//!     "notification_letter": "HW-2026-031",
//!     "applicant_seal": true,
//!     "operator_certificate": "T-4411",
//! });
//! engine
//!     .fire(&started.instance.id, Fire::new("submit", contractor).payload(payload))
//!     .await?;
//! # Ok(()) }
//! ```

mod access;
mod committer;
mod error;
mod inbox;
mod migrate;
mod names;
mod numbering;
mod outbox;
mod reload;
mod starts;
mod subscribe;
mod timers;
mod versions;

pub use error::EngineError;
pub use inbox::Task;
pub use migrate::{CURRENT, MigrationRequest, MigrationSummary, Moved};
pub use outbox::{Outbox, Router, Tried};
pub use reload::Reloaded;
pub use subscribe::{FeedStep, StepFilter, Subscription};
pub use timers::{Fired, ScheduleInfo};
pub use versions::rebuild;

use crate::catalog::{self, LoadReport};
use crate::clock::{Clock, SystemClock};
use crate::machine::{self, Actor, Available, Command, Entry, Instance, Refusal, Start};
use crate::script::{Limits, Sandbox};
use crate::store::{Committed, Options, Query, Store, StoreLocation, StoredDefinition};
use chrono::{DateTime, Utc};
use committer::{CommitError, Committer};
use names::{Name, Numbering};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use versions::Versions;

/// The largest payload (or initial data) accepted, as JSON.
pub const MAX_PAYLOAD_BYTES: usize = 1024 * 1024;

/// How many steps one command may commit with its follow-ups (children started, parents told
/// that a child finished, `await_children` events), so that a loop in the definitions cannot
/// run forever: a command that would cause more fails with [`EngineError::CascadeTooLong`]
/// and writes nothing.
pub const MAX_FOLLOW_UPS: usize = 1000;

/// How long a command not tied to a step (a fire without `expected_seq`, a start, a timer's
/// firing and the follow-ups they cause) goes on being computed again when its commit lost a
/// race with another command (on another node sharing the store): each time on the instance
/// (or the numbers) as stored now. A fire tied to a step meets its `stale` refusal on the first
/// recomputation.
///
/// A time, not a count: every lost race is another command's win, so the store as a whole
/// moves on, but one command may lose several in a row. Two nodes starting instances of one
/// workflow as fast as they can race for each number; with a cap of 8 tries, about one run in
/// four of 200 such starts had a start lose 9 times in a row (a coin flip each time) and fail.
const RETRY_FOR: std::time::Duration = std::time::Duration::from_secs(10);

/// Most instance ids an engine remembers as stored (`Inner::known`): a few MB.
const KNOWN_IDS: usize = 100_000;

/// Where the engine keeps its data and finds its workflows.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the store is: a folder (sled, the default) or a PostgreSQL URL.
    pub store: StoreLocation,
    /// Workflow and rules files or folders.
    pub sources: Vec<PathBuf>,
    /// Parameter values over the workflows' defaults, by workflow id (a scenario's
    /// `params:`); they become part of each definition's version.
    pub parameters: crate::catalog::Parameters,
    /// Create the data folder if it is missing (`false` for read-only commands).
    pub create: bool,
    /// The rhai sandbox's limits.
    pub limits: Limits,
    /// Checkpoint derived records after this many changed instances.
    pub checkpoint_every: usize,
    /// The store's page cache, in bytes (default 128 MiB).
    pub cache_bytes: u64,
    /// Where the time comes from: the system clock, or a [`VirtualClock`](crate::clock::VirtualClock) that tests and
    /// simulations move with [`Engine::advance_to`].
    pub clock: Arc<dyn Clock>,
    /// Run with the workflows that loaded when others have errors (they are left out, and
    /// [`Engine::load_report`] says why). Off by default: [`Engine::open`] then fails with
    /// [`EngineError::DefinitionsInvalid`], so that a broken file is seen when the engine
    /// opens, not as an unknown workflow at the first start.
    pub allow_load_errors: bool,
    /// Where the definitions come from: the files of `sources` (watched and reloaded by a
    /// single server), or the set `sopflow deploy` put in the store (what every node of a
    /// cluster runs, whatever sits on its own disk).
    pub definitions: DefinitionSource,
    /// Where notices link to (the console's address): the outbox record each step writes
    /// holds its notices rendered with these settings.
    pub notices: crate::notify::Settings,
    /// Acknowledge steps before flushing them. Only for the crash test's negative control.
    #[doc(hidden)]
    pub unsafe_ack_before_flush: bool,
}

impl Config {
    /// The defaults: workflows from `workflows/` and `rules/` (and calendars from
    /// `calendars/` when there is such a folder), data in the folder `data_dir` (sled), the
    /// system clock.
    pub fn new(data_dir: impl Into<PathBuf>) -> Config {
        Config::at(StoreLocation::Sled(data_dir.into()))
    }

    /// The defaults of [`Config::new`], with the store at `store`: a folder, or a PostgreSQL
    /// database (`StoreLocation::parse("postgres://...")`).
    pub fn at(store: StoreLocation) -> Config {
        let mut sources = vec![PathBuf::from("workflows"), PathBuf::from("rules")];
        if std::path::Path::new("calendars").is_dir() {
            sources.push(PathBuf::from("calendars"));
        }
        Config {
            store,
            sources,
            parameters: Default::default(),
            create: true,
            limits: Limits::default(),
            checkpoint_every: Options::default().checkpoint_every,
            cache_bytes: Options::default().cache_bytes,
            clock: Arc::new(SystemClock),
            allow_load_errors: false,
            definitions: DefinitionSource::Files,
            notices: crate::notify::Settings::default(),
            unsafe_ack_before_flush: false,
        }
    }

    /// Runs the definition set deployed to the store ([`DefinitionSource::Deployed`]) instead
    /// of the files of `sources`.
    pub fn deployed_definitions(mut self) -> Config {
        self.definitions = DefinitionSource::Deployed;
        self
    }

    /// Keeps the data at `store` instead.
    pub fn store(mut self, store: StoreLocation) -> Config {
        self.store = store;
        self
    }

    /// Runs on this clock instead of the system's.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Config {
        self.clock = clock;
        self
    }

    /// Loads workflows and rules from these files or folders instead.
    pub fn sources(mut self, sources: Vec<PathBuf>) -> Config {
        self.sources = sources;
        self
    }

    /// Links notices to the console at `base_url` (`https://flow.example.cn`): a notice's
    /// link is then `{base_url}/instances/{id}`; without it, a link relative to the site.
    pub fn link_base(mut self, base_url: impl Into<String>) -> Config {
        self.notices = crate::notify::Settings::new(base_url);
        self
    }

    /// Sets parameter values over the defaults of the workflows they name.
    pub fn parameters(mut self, parameters: crate::catalog::Parameters) -> Config {
        self.parameters = parameters;
        self
    }

    /// Opens even when some workflows have errors, with those left out (see
    /// [`Config::allow_load_errors`]).
    pub fn allow_load_errors(mut self) -> Config {
        self.allow_load_errors = true;
        self
    }
}

/// Where an engine's definitions come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DefinitionSource {
    /// The workflow, rules and calendar files of [`Config::sources`], read again on
    /// [`Engine::reload`].
    #[default]
    Files,
    /// The set deployed to the store (`sopflow deploy`), read again on [`Engine::reload`]:
    /// every engine on one store runs the same set.
    Deployed,
}

/// A request to start an instance.
#[derive(Debug, Clone)]
pub struct StartRequest {
    /// Who starts it, with the roles they act in (the engine trusts them as given).
    pub actor: Actor,
    /// Initial values for declared fields.
    pub data: Map<String, Value>,
    /// The business key (a contract or unit number) the instance is found by.
    pub business_key: Option<String>,
    /// A key the caller chooses so that a retried start creates one instance only.
    pub idempotency_key: Option<String>,
    /// Set by [`StartRequest::data`] when given something other than a JSON object.
    not_an_object: Option<&'static str>,
}

impl StartRequest {
    /// A start by `actor`, with no data and no keys yet.
    pub fn new(actor: Actor) -> StartRequest {
        StartRequest {
            actor,
            data: Map::new(),
            business_key: None,
            idempotency_key: None,
            not_an_object: None,
        }
    }
    /// Sets the initial data: a JSON object (`null` for none). Anything else makes
    /// [`Engine::start`] fail with [`EngineError::NotAnObject`].
    pub fn data(mut self, data: Value) -> StartRequest {
        (self.data, self.not_an_object) = into_map(data);
        self
    }
    /// Sets the business key people search the instance by.
    pub fn business_key(mut self, key: impl Into<String>) -> StartRequest {
        self.business_key = Some(key.into());
        self
    }
    /// Sets a key that makes a retried start answer with the first one's outcome.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> StartRequest {
        self.idempotency_key = Some(key.into());
        self
    }
}

/// A request to fire an event.
#[derive(Debug, Clone)]
pub struct Fire {
    /// The event to fire, as the state's `on:` names it.
    pub event: String,
    /// Who fires it, with the roles they act in (the engine trusts them as given).
    pub actor: Actor,
    /// Values for the fields the event may write, and an optional `comment`.
    pub payload: Map<String, Value>,
    /// A key the caller chooses so that a retried command is applied once.
    pub idempotency_key: Option<String>,
    /// Refuse unless the instance is still at this step (optimistic concurrency).
    pub expected_seq: Option<u64>,
    /// Set by [`Fire::payload`] when given something other than a JSON object.
    not_an_object: Option<&'static str>,
}

impl Fire {
    /// Fires `event` as `actor`, with an empty payload.
    pub fn new(event: impl Into<String>, actor: Actor) -> Fire {
        Fire {
            event: event.into(),
            actor,
            payload: Map::new(),
            idempotency_key: None,
            expected_seq: None,
            not_an_object: None,
        }
    }
    /// Sets the payload: a JSON object (`null` for none). Anything else makes
    /// [`Engine::fire`] fail with [`EngineError::NotAnObject`].
    pub fn payload(mut self, payload: Value) -> Fire {
        (self.payload, self.not_an_object) = into_map(payload);
        self
    }
    /// Adds a comment to the payload.
    pub fn comment(mut self, comment: impl Into<String>) -> Fire {
        self.payload.insert(
            crate::definition::model::COMMENT.into(),
            Value::String(comment.into()),
        );
        self
    }
    /// Sets a key that makes a retried command answer with the first one's outcome.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Fire {
        self.idempotency_key = Some(key.into());
        self
    }
    /// Refuses the command (as stale) unless the instance's last step is `seq`.
    pub fn expected_seq(mut self, seq: u64) -> Fire {
        self.expected_seq = Some(seq);
        self
    }
}

/// A JSON object as a map, or the kind of value it was instead.
fn into_map(value: Value) -> (Map<String, Value>, Option<&'static str>) {
    match value {
        Value::Object(map) => (map, None),
        Value::Null => (Map::new(), None),
        Value::Bool(_) => (Map::new(), Some("true/false")),
        Value::Number(_) => (Map::new(), Some("a number")),
        Value::String(_) => (Map::new(), Some("a text")),
        Value::Array(_) => (Map::new(), Some("a list")),
    }
}

fn check_object(not_an_object: Option<&'static str>) -> Result<(), EngineError> {
    match not_an_object {
        Some(got) => Err(EngineError::NotAnObject { got }),
        None => Ok(()),
    }
}

/// What a command did: the entry appended and the instance after it.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct Outcome {
    /// The entry the command appended (or, replayed, the one it appended the first time).
    pub entry: Entry,
    /// The instance as it is after the entry.
    pub instance: Instance,
    /// True when an idempotency key matched an earlier command: nothing new was written.
    pub replayed: bool,
}

/// The engine. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    // Field order matters on drop: the committer finishes its queue before the store closes.
    committer: Committer,
    store: Arc<dyn Store>,
    sandbox: Sandbox,
    versions: Versions,
    /// The load report of the definitions in force: replaced only by a reload without errors.
    report: std::sync::RwLock<Arc<LoadReport>>,
    /// Where the definitions are read from, for reloads, and the parameter values set over
    /// them.
    sources: Vec<PathBuf>,
    parameters: crate::catalog::Parameters,
    clock: Arc<dyn Clock>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// On a store that takes numbers in the commit, the numbers handed out and pending
    /// (children's), and the starts waiting for theirs.
    counters: Arc<numbering::Counters>,
    starts: starts::Queues,
    /// Commands computed again because their commit lost a race with another node's.
    lost_races: std::sync::atomic::AtomicU64,
    /// Ids this engine has seen stored (instances are never removed), so that resolving one
    /// again needs no read of the store; at most [`KNOWN_IDS`], then forgotten all at once.
    known: Mutex<std::collections::HashSet<String>>,
    /// Where the definitions come from, and (deployed) the id of the set in force.
    definitions: DefinitionSource,
    /// The store, as shown in messages.
    location: String,
    deployed: Mutex<Option<String>>,
    /// How notices are rendered into the outbox.
    notices: crate::notify::Settings,
    /// Told after each commit: the delivery loop routes at once instead of at its next look.
    committed: tokio::sync::Notify,
    /// How many steps this engine has routed into the feed: subscriptions wait on it.
    routed: tokio::sync::watch::Sender<u64>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("workflows", &self.inner.versions.workflows())
            .finish()
    }
}

/// The sources of the set deployed to `store`, and its id.
fn deployed_sources(
    store: &dyn Store,
    location: &StoreLocation,
) -> Result<(catalog::Sources, String), EngineError> {
    match store.deployed()? {
        Some(set) => Ok((set.sources(), set.id)),
        None => Err(EngineError::NothingDeployed {
            store: location.redacted(),
        }),
    }
}

impl Engine {
    /// Loads the workflows, opens (or creates) the store, stores the definition versions and
    /// finishes any follow-up work a crash interrupted.
    ///
    /// A workflow or rules file with an error fails the open with
    /// [`EngineError::DefinitionsInvalid`] before the store is touched, unless the
    /// configuration [allows load errors](Config::allow_load_errors).
    pub async fn open(config: Config) -> Result<Engine, EngineError> {
        let engine = tokio::task::spawn_blocking(move || Engine::open_blocking(config))
            .await
            .map_err(|_| EngineError::Closed)??;
        let recovered = engine
            .blocking(|engine| Ok(engine.inner.store.recovered()))
            .await?;
        for id in recovered {
            engine.repair(&id).await?;
        }
        engine
            .blocking(|engine| {
                engine.inner.store.checkpoint()?;
                engine.mark_new_schedules()
            })
            .await?;
        Ok(engine)
    }

    fn open_blocking(config: Config) -> Result<Engine, EngineError> {
        let sandbox = Sandbox::new(config.limits);
        let options = Options {
            create: config.create,
            checkpoint_every: config.checkpoint_every,
            cache_bytes: config.cache_bytes,
            flush: !config.unsafe_ack_before_flush,
        };
        // Files are read and checked before the store is touched; a deployed set can only
        // be read from the store.
        let (report, store, deployed) = match config.definitions {
            DefinitionSource::Files => {
                let sources = catalog::Sources::read(&config.sources)?
                    .with_parameters(config.parameters.clone());
                let report = catalog::build(sources, &sandbox);
                if report.has_errors() && !config.allow_load_errors {
                    return Err(EngineError::DefinitionsInvalid {
                        report: Arc::new(report),
                    });
                }
                (report, crate::store::open(&config.store, options)?, None)
            }
            DefinitionSource::Deployed => {
                let store = crate::store::open(&config.store, options)?;
                let (sources, id) = deployed_sources(store.as_ref(), &config.store)?;
                let report = catalog::build(sources, &sandbox);
                if report.has_errors() && !config.allow_load_errors {
                    return Err(EngineError::DefinitionsInvalid {
                        report: Arc::new(report),
                    });
                }
                (report, store, Some(id))
            }
        };
        let versions = Versions::default();
        versions.publish(&report.catalog, store.as_ref())?;
        Ok(Engine {
            inner: Arc::new(Inner {
                committer: Committer::start(store.clone()),
                store,
                sandbox,
                versions,
                report: std::sync::RwLock::new(Arc::new(report)),
                sources: config.sources,
                parameters: config.parameters,
                clock: config.clock,
                locks: Mutex::new(HashMap::new()),
                counters: Arc::default(),
                starts: starts::Queues::default(),
                lost_races: std::sync::atomic::AtomicU64::new(0),
                known: Mutex::default(),
                definitions: config.definitions,
                location: config.store.redacted(),
                deployed: Mutex::new(deployed),
                notices: config.notices.clone(),
                committed: tokio::sync::Notify::new(),
                routed: tokio::sync::watch::Sender::new(0),
            }),
        })
    }

    /// How many commands this engine has computed again because their commit lost a race
    /// with another node's on the store they share (a step, a number or an idempotency key
    /// taken first, a deadlock the database broke): a measure of contention between nodes.
    /// Always 0 on a store only one process opens.
    pub fn lost_races(&self) -> u64 {
        self.inner
            .lost_races
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The engine's current time (its clock's).
    pub fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    /// What loading the workflows found (errors leave a workflow out; warnings do not).
    pub fn load_report(&self) -> Arc<LoadReport> {
        self.inner
            .report
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The newest version of a workflow, if it is loaded.
    pub fn definition_of(&self, workflow: &str) -> Option<Arc<crate::definition::Definition>> {
        self.inner.versions.latest(workflow).ok()
    }

    /// The organisation's role list (`workflows/roles.yaml`), with a title for every role of
    /// every workflow, when one was loaded.
    pub fn role_list(&self) -> Option<Arc<crate::definition::roles::RoleList>> {
        self.inner.versions.roles()
    }

    /// The workflows that can be started.
    pub fn workflows(&self) -> Vec<String> {
        self.inner.versions.workflows()
    }

    /// Starts an instance of the newest version of `workflow`.
    pub async fn start(
        &self,
        workflow: &str,
        request: StartRequest,
    ) -> Result<Outcome, EngineError> {
        check_actor(&request.actor)?;
        self.start_checked(workflow, request).await
    }

    /// Starts an instance for a caller the engine trusts (itself, for schedules), computed
    /// again if its commit loses a race.
    async fn start_checked(
        &self,
        workflow: &str,
        request: StartRequest,
    ) -> Result<Outcome, EngineError> {
        self.retrying(|| self.start_once(workflow, request.clone()))
            .await
    }

    async fn start_once(
        &self,
        workflow: &str,
        request: StartRequest,
    ) -> Result<Outcome, EngineError> {
        check_object(request.not_an_object)?;
        check_size(&request.data)?;
        if let Some(key) = &request.business_key {
            machine::check_business_key(key)?;
        }
        check_key("idempotency_key", request.idempotency_key.as_deref())?;
        // Two starts with one key wait for each other, so that only one instance is created.
        let _key_lock = match &request.idempotency_key {
            Some(key) => Some(self.lock(&format!("\0key\0{key}")).await),
            None => None,
        };
        if let Some(key) = &request.idempotency_key
            && let Some(outcome) = self.replayed(key, None, "start", &request.actor).await?
        {
            return Ok(outcome);
        }
        let definition = self.inner.versions.latest(workflow)?;
        let at = self.now();
        // Its id and readable number are given once its numbers are known.
        let mut command = Start {
            id: String::new(),
            actor: request.actor,
            data: request.data,
            business_key: request.business_key,
            parent: None,
            idempotency_key: request.idempotency_key,
            at,
            number: None,
        };
        let step = if self.inner.store.numbers_in_commit() {
            // A store shared by several nodes: numbered under its lock of the counts, in the
            // commit (see `starts`).
            self.start_numbered(definition, command).await?
        } else {
            // Numbers run 1, 2, 3... per workflow with no gaps: the next one is taken under
            // this workflow's lock, which covers the pure step and the recording of the
            // numbers, and kept only once the start is admitted, so a refused start uses none.
            let numbering = self.lock(&numbering_lock(workflow)).await;
            let name = {
                let definition = definition.clone();
                self.blocking_step(move |engine| engine.next_name(&definition, at))
                    .await?
            };
            command.id = name.id.clone();
            command.number = name.readable.as_ref().map(|r| r.number.clone());
            let _lock = self.lock(&name.id).await;
            let placed = self
                .blocking_step(move |engine| {
                    let entry = machine::start(&definition, &command, engine.sandbox())?;
                    let snapshot =
                        Instance::begin(&entry).map_err(crate::store::StoreError::from)?;
                    let step = Committed::new(entry, snapshot)?;
                    engine.take_name(&name)?;
                    drop(numbering);
                    // A start causes nothing more (its state's children come with steps).
                    engine.commit_here(step)
                })
                .await?;
            self.placed(placed).await?
        };
        self.remember(&step.entry.instance);
        Ok(Outcome {
            entry: step.entry,
            instance: step.snapshot,
            replayed: false,
        })
    }

    /// Fires an event on an instance.
    /// `id` is the instance's id or its readable number.
    pub async fn fire(&self, id: &str, request: Fire) -> Result<Outcome, EngineError> {
        check_actor(&request.actor)?;
        check_object(request.not_an_object)?;
        check_size(&request.payload)?;
        check_key("idempotency_key", request.idempotency_key.as_deref())?;
        let named = id;
        // An id this engine has not seen yet (stored by another node, or before a restart)
        // is not read once to resolve it and again by its step: the step's own read finds
        // it. Only when that read finds nothing is the name resolved (a readable number
        // spelt like an id). With an idempotency key, whose answer is looked up by id before
        // the step, the name is resolved first.
        let guessed = match self.known_id(named)? {
            Some(_) => false,
            None => request.idempotency_key.is_none() && self.looks_like_id(named),
        };
        let mut id = if guessed {
            named.to_string()
        } else {
            self.resolve_blocking(named).await?
        };
        let mut result = self.retrying(|| self.fire_once(&id, request.clone())).await;
        if guessed {
            match &result {
                Err(EngineError::UnknownInstance { .. }) => {
                    id = self.resolve_blocking(named).await?;
                    result = self.retrying(|| self.fire_once(&id, request.clone())).await;
                }
                Ok(_) => self.remember(&id),
                Err(_) => {}
            }
        }
        let id = &id;
        // With a key, a refusal may come from reading the instance just after another node
        // committed the same command (its key was not there yet when this one looked): the
        // answer is then that command's.
        if let (Err(EngineError::Refused(_)), Some(key)) = (&result, &request.idempotency_key)
            && let Some(outcome) = self
                .replayed(key, Some(id), &request.event, &request.actor)
                .await?
        {
            return Ok(outcome);
        }
        result
    }

    /// One try of [`Engine::fire`] on the instance as it is stored now.
    async fn fire_once(&self, id: &str, request: Fire) -> Result<Outcome, EngineError> {
        let mut locks = vec![self.lock(id).await];
        if let Some(key) = &request.idempotency_key
            && let Some(outcome) = self
                .replayed(key, Some(id), &request.event, &request.actor)
                .await?
        {
            return Ok(outcome);
        }
        let command = Command {
            event: request.event,
            actor: request.actor,
            payload: request.payload,
            idempotency_key: request.idempotency_key,
            at: self.now(),
            expected_seq: request.expected_seq,
        };
        let at = command.at;
        let id_owned = id.to_string();
        let computed = self
            .blocking_step(move |engine| {
                let instance = engine.instance(&id_owned)?;
                let definition = engine.definition(&instance.version)?;
                let entry = machine::step(&definition, &instance, &command, engine.sandbox())?;
                let mut snapshot = instance;
                snapshot
                    .apply(&entry)
                    .map_err(crate::store::StoreError::from)?;
                if causes_follow_ups(&definition, &entry, &snapshot) {
                    return Ok(Err((entry, snapshot)));
                }
                engine.commit_here(Committed::new(entry, snapshot)?).map(Ok)
            })
            .await?;
        let (entry, snapshot) = match computed {
            Ok(placed) => {
                let step = self.placed(placed).await?;
                return Ok(Outcome {
                    entry: step.entry,
                    instance: step.snapshot,
                    replayed: false,
                });
            }
            // Children to start, a parent to tell, an event to fire: one batch with them.
            Err(step) => step,
        };
        let mut batch = Vec::new();
        let mut names = Vec::new();
        let done = async {
            let (entry, snapshot) = self
                .push_step(&mut batch, &mut names, entry, snapshot, at)
                .await?;
            self.follow_ups(&mut batch, &mut locks, &mut names, at)
                .await?;
            self.commit(std::mem::take(&mut batch)).await?;
            Ok((entry, snapshot))
        }
        .await;
        let (entry, snapshot) = self.unless_failed(done, &names).await?;
        committed(&names);
        Ok(Outcome {
            entry,
            instance: snapshot,
            replayed: false,
        })
    }

    /// The current snapshot of an instance, by its id or its readable number
    /// (`DH-2026-0001`).
    pub async fn get(&self, id: &str) -> Result<Instance, EngineError> {
        let id = id.to_string();
        self.blocking(move |engine| {
            let instance = engine.instance(&engine.resolve(&id)?)?;
            engine.load_versions([instance.version.as_str()]);
            Ok(instance)
        })
        .await
    }

    /// [`Engine::resolve`] on the blocking pool.
    async fn resolve_blocking(&self, name: &str) -> Result<String, EngineError> {
        // An id this engine has stored needs no read of the store, and no hand-off to the
        // blocking pool (a measurable part of a step on sled).
        if let Some(id) = self.known_id(name)? {
            return Ok(id);
        }
        let name = name.to_string();
        self.blocking(move |engine| engine.resolve(&name)).await
    }

    /// Loads the definition versions named (from the store's copy of their sources when they
    /// are not loaded yet), so that [`Engine::definition`] finds them without reading the
    /// store: the engine's reads call it on the blocking pool for the versions of what they
    /// return, and async code then looks those versions up without blocking. A version that
    /// cannot be loaded is left for `definition` to report.
    fn load_versions<'a>(&self, versions: impl IntoIterator<Item = &'a str>) {
        let mut seen = std::collections::HashSet::new();
        for version in versions {
            if seen.insert(version) {
                let _ = self.definition(version);
            }
        }
    }

    /// The id of the instance `name` names: its id (`hot_work_permit-3`, or an older
    /// `renovation_approval-2000001.7.1`), or its readable number (`DH-2026-0001`). An id wins
    /// over a number that happens to be spelt the same.
    ///
    /// This reads the store and so blocks: call it from a blocking thread.
    pub fn resolve(&self, name: &str) -> Result<String, EngineError> {
        if let Some(id) = self.known_id(name)? {
            return Ok(id);
        }
        if self.inner.store.instance(name)?.is_some() {
            self.remember(name);
            return Ok(name.to_string());
        }
        self.inner
            .store
            .find_number(name)?
            .into_iter()
            .next()
            .ok_or_else(|| EngineError::UnknownInstance {
                id: name.to_string(),
            })
    }

    /// Whether `name` is spelt as an instance id of a workflow this engine has loaded
    /// (`hot_work_permit-3`, a child's `renovation_approval-2000001.7.1`), so most likely one.
    fn looks_like_id(&self, name: &str) -> bool {
        name.rsplit_once('-').is_some_and(|(workflow, n)| {
            !n.is_empty()
                && n.bytes().all(|b| b.is_ascii_digit() || b == b'.')
                && self.inner.versions.latest(workflow).is_ok()
        })
    }

    /// Whether `id` is an instance id seen stored (so an id, whatever numbers are spelt so).
    /// `name` itself when it is an id this engine has stored (no read of the store); an error
    /// when it cannot be an id at all.
    fn known_id(&self, name: &str) -> Result<Option<String>, EngineError> {
        check_id(name)?;
        Ok(self.is_known(name).then(|| name.to_string()))
    }

    fn is_known(&self, id: &str) -> bool {
        let known = self.inner.known.lock().unwrap_or_else(|e| e.into_inner());
        known.contains(id)
    }

    /// Remembers that `id` is stored: an instance, once committed, is never removed.
    fn remember(&self, id: &str) {
        let mut known = self.inner.known.lock().unwrap_or_else(|e| e.into_inner());
        if known.len() >= KNOWN_IDS {
            known.clear();
        }
        known.insert(id.to_string());
    }

    /// The events `actor` may fire on an instance now, each under the title of what it will
    /// do (see [`machine::available`]).
    pub async fn available(&self, id: &str, actor: &Actor) -> Result<Vec<Available>, EngineError> {
        let instance = self.get(id).await?;
        let definition = self.definition_blocking(&instance.version).await?;
        self.available_on(definition, instance, actor.clone()).await
    }

    /// [`Engine::available`] on a snapshot the caller already holds, so that the actions
    /// match the state it shows. Guards run on the blocking pool, like every step's scripts.
    pub async fn available_on(
        &self,
        definition: Arc<crate::definition::Definition>,
        instance: Instance,
        actor: Actor,
    ) -> Result<Vec<Available>, EngineError> {
        let offered = self.offered_on(definition, instance, actor).await?;
        Ok(offered
            .into_iter()
            .filter(|a| a.blocked.is_none())
            .collect())
    }

    /// [`machine::offered`] on a snapshot the caller holds: what `actor` may do now, and the
    /// steps of theirs the instance's data keeps closed for now, with why.
    pub async fn offered_on(
        &self,
        definition: Arc<crate::definition::Definition>,
        instance: Instance,
        actor: Actor,
    ) -> Result<Vec<Available>, EngineError> {
        self.blocking(move |engine| {
            Ok(machine::offered(
                &definition,
                &instance,
                &actor,
                engine.sandbox(),
                engine.now(),
            ))
        })
        .await
    }

    /// [`machine::next`] on a snapshot the caller holds: whose turn it is, and the deadlines.
    pub async fn next_on(
        &self,
        definition: Arc<crate::definition::Definition>,
        instance: Instance,
    ) -> Result<machine::Next, EngineError> {
        self.blocking(move |engine| {
            Ok(machine::next(
                &definition,
                &instance,
                engine.sandbox(),
                engine.now(),
            ))
        })
        .await
    }

    /// Instances matching a query.
    pub async fn list(&self, query: Query) -> Result<Vec<Instance>, EngineError> {
        check_query(&query)?;
        self.blocking(move |engine| {
            let found = engine.inner.store.find(&query)?;
            engine.load_versions(found.iter().map(|i| i.version.as_str()));
            Ok(found)
        })
        .await
    }

    /// The full history of an instance, oldest first.
    /// `id` is the instance's id or its readable number.
    pub async fn history(&self, id: &str) -> Result<Vec<Entry>, EngineError> {
        let id = id.to_string();
        self.blocking(move |engine| {
            let id = engine.resolve(&id)?;
            let history = engine.inner.store.history(&id)?;
            if history.is_empty() {
                return Err(EngineError::UnknownInstance { id });
            }
            engine.load_versions(history.iter().map(|e| e.version.as_str()));
            Ok(history)
        })
        .await
    }

    /// The stored sources of a definition version.
    pub async fn definition_sources(&self, hash: &str) -> Result<StoredDefinition, EngineError> {
        check_version(hash)?;
        let hash = hash.to_string();
        self.blocking(move |engine| {
            engine
                .inner
                .store
                .definition(&hash)?
                .ok_or_else(|| EngineError::Definition {
                    hash: hash.clone(),
                    detail: "no such version in the store".into(),
                })
        })
        .await
    }

    /// [`Engine::definition`] on the blocking pool, for a version that may not be loaded yet.
    pub async fn definition_blocking(
        &self,
        hash: &str,
    ) -> Result<Arc<crate::definition::Definition>, EngineError> {
        let hash = hash.to_string();
        self.blocking(move |engine| engine.definition(&hash)).await
    }

    /// The compiled definition an instance runs on.
    ///
    /// A version not loaded yet is compiled from the store's copy of its sources, which reads
    /// the store: from async code, use [`Engine::definition_blocking`], or look up only the
    /// versions of instances and entries the engine has returned (it loads them).
    pub fn definition(
        &self,
        hash: &str,
    ) -> Result<Arc<crate::definition::Definition>, EngineError> {
        check_version(hash)?;
        self.inner
            .versions
            .get(hash, self.inner.store.as_ref(), &self.inner.sandbox)
    }

    /// The store, for the audit module's readers (which never write).
    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The script sandbox every definition was compiled with.
    pub(crate) fn sandbox(&self) -> &Sandbox {
        &self.inner.sandbox
    }

    /// Writes derived records now (they are otherwise written in the background).
    pub async fn checkpoint(&self) -> Result<(), EngineError> {
        self.blocking(|engine| Ok(engine.inner.store.checkpoint()?))
            .await
    }

    fn instance(&self, id: &str) -> Result<Instance, EngineError> {
        check_id(id)?;
        self.inner
            .store
            .instance(id)?
            .ok_or_else(|| EngineError::UnknownInstance { id: id.to_string() })
    }

    /// Runs `work` (a step, which may evaluate scripts, or any call of the store, which may
    /// wait for a disk or a database) on tokio's blocking pool, with a clone of the engine,
    /// and waits for it without holding an async worker thread. `work` owns its inputs, so
    /// that it can run on another thread; a panic in it is resumed here. Async code in the
    /// engine reaches the store only through this.
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Engine) -> Result<T, EngineError> + Send + 'static,
    ) -> Result<T, EngineError> {
        let engine = self.clone();
        match tokio::task::spawn_blocking(move || work(&engine)).await {
            Ok(result) => result,
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            Err(_) => Err(EngineError::Closed),
        }
    }

    /// [`Engine::blocking`] for a step that will most likely be committed directly (nothing
    /// else is being committed): on this thread, with `block_in_place` (tokio hands this
    /// worker's other tasks to another thread for the while), rather than on the blocking
    /// pool. One client's step on sled then costs its flush and its computing, not two thread
    /// hand-offs more (see `committer`'s measurements). Under load, on a runtime that cannot
    /// block in place (the current-thread one), and on a store that waits on a runtime of its
    /// own ([`Store::waits_on_a_runtime`](crate::store::Store::waits_on_a_runtime):
    /// PostgreSQL, whose wait inside `block_in_place` on a `block_on` thread would swallow
    /// the outer future's wake-ups), it is [`Engine::blocking`].
    pub(crate) async fn blocking_step<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Engine) -> Result<T, EngineError> + Send + 'static,
    ) -> Result<T, EngineError> {
        let in_place = self.inner.committer.is_idle()
            && !self.inner.store.waits_on_a_runtime()
            && tokio::runtime::Handle::try_current().is_ok_and(|runtime| {
                runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
            });
        if in_place {
            tokio::task::block_in_place(|| work(self))
        } else {
            self.blocking(work).await
        }
    }

    /// Runs `attempt` until its commit does not lose a race with another command (which
    /// wrote nothing: [`StoreError::lost_race`](crate::store::StoreError::lost_race)), for at
    /// most [`RETRY_FOR`], after a short pause that grows (to a few milliseconds) with a random
    /// spread. Only a store shared by several processes loses races: within one, the instance
    /// locks put commands in turn.
    pub(crate) async fn retrying<T, F, Fut>(&self, mut attempt: F) -> Result<T, EngineError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, EngineError>>,
    {
        let began = std::time::Instant::now();
        let mut tries: u64 = 0;
        loop {
            match attempt().await {
                Err(EngineError::Store(err)) if err.lost_race() && began.elapsed() < RETRY_FOR => {
                    tries += 1;
                    self.inner
                        .lost_races
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    // A pause of a few hundred microseconds per try (up to 3 ms), spread so
                    // that two nodes that collided do not collide again in step.
                    let spread = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| u64::from(d.subsec_nanos()) % 500);
                    let pause = tries.min(10) * 300 + spread;
                    tokio::time::sleep(std::time::Duration::from_micros(pause)).await;
                }
                other => return other,
            }
        }
    }

    async fn commit(&self, batch: Vec<Committed>) -> Result<(), EngineError> {
        let batch = self
            .blocking(move |engine| {
                let mut batch = batch;
                for step in &mut batch {
                    engine.noticed(step)?;
                }
                Ok(batch)
            })
            .await?;
        self.inner
            .committer
            .commit(batch)
            .await
            .map_err(commit_failed)?;
        self.inner.committed.notify_one();
        Ok(())
    }

    /// A step [`Engine::commit_here`] placed, once committed: at once if it was, else through
    /// the committer's next group.
    async fn placed(&self, placed: Placed) -> Result<Committed, EngineError> {
        match placed {
            Placed::Committed(step) => {
                self.inner.committed.notify_one();
                Ok(step)
            }
            Placed::Waiting(step) => {
                let copy = step.clone();
                self.commit(vec![step]).await?;
                Ok(copy)
            }
        }
    }

    /// Commits a step that causes nothing more right here, on the blocking-pool thread that
    /// computed it, when no other commit is under way (no hand-off to the commit threads);
    /// otherwise gives it back, encoded, to join the committer's next group.
    fn commit_here(&self, mut step: Committed) -> Result<Placed, EngineError> {
        self.noticed(&mut step)?;
        match self
            .inner
            .committer
            .commit_if_idle(std::slice::from_ref(&step))
        {
            Some(Ok(())) => Ok(Placed::Committed(step)),
            Some(Err(err)) => Err(commit_failed(err)),
            None => Ok(Placed::Waiting(step)),
        }
    }

    /// Gives a step its outbox record (see [`Committed::outbox`]): the notices it causes,
    /// rendered, unless it has one.
    fn noticed(&self, step: &mut Committed) -> Result<(), EngineError> {
        if step.outbox.is_some() {
            return Ok(());
        }
        let definition = self.definition(&step.entry.version)?;
        let notices = crate::notify::notices(
            &definition,
            &step.entry,
            &step.snapshot,
            &self.inner.notices,
        );
        let encoded =
            serde_json::to_vec(&notices).map_err(|e| crate::store::StoreError::Encode {
                key: format!("{}/{} notices", step.entry.instance, step.entry.seq),
                detail: e.to_string(),
            })?;
        step.outbox = Some(encoded);
        Ok(())
    }

    /// The answer to a command whose idempotency key was used before.
    async fn replayed(
        &self,
        key: &str,
        id: Option<&str>,
        event: &str,
        actor: &Actor,
    ) -> Result<Option<Outcome>, EngineError> {
        let (key, id, event, actor) = (
            key.to_string(),
            id.map(str::to_string),
            event.to_string(),
            actor.clone(),
        );
        self.blocking(move |engine| engine.replayed_blocking(&key, id.as_deref(), &event, &actor))
            .await
    }

    fn replayed_blocking(
        &self,
        key: &str,
        id: Option<&str>,
        event: &str,
        actor: &Actor,
    ) -> Result<Option<Outcome>, EngineError> {
        let Some((instance, seq)) = self.inner.store.idempotent(key)? else {
            return Ok(None);
        };
        let entry = self.inner.store.entry(&instance, seq)?.ok_or_else(|| {
            EngineError::UnknownInstance {
                id: instance.clone(),
            }
        })?;
        if id.is_some_and(|id| id != instance) || entry.event != event || entry.actor != actor.id {
            return Err(EngineError::KeyReused {
                key: key.to_string(),
                instance,
                event: entry.event.to_string(),
            });
        }
        // The instance as the first answer showed it, not as it is now.
        let history = self.inner.store.history(&instance)?;
        let upto = usize::try_from(seq).map_or(history.len(), |s| (s + 1).min(history.len()));
        let snapshot = Instance::replay(&history[..upto])
            .map_err(crate::store::StoreError::from)?
            .ok_or_else(|| EngineError::UnknownInstance {
                id: instance.clone(),
            })?;
        Ok(Some(Outcome {
            entry,
            instance: snapshot,
            replayed: true,
        }))
    }

    /// Takes the lock of one instance; commands for it wait their turn.
    async fn lock(&self, id: &str) -> InstanceLock {
        let mutex = {
            let mut locks = self.inner.locks.lock().unwrap_or_else(|e| e.into_inner());
            locks.entry(id.to_string()).or_default().clone()
        };
        InstanceLock {
            guard: Some(mutex.lock_owned().await),
            id: id.to_string(),
            engine: self.inner.clone(),
        }
    }

    /// Adds to `batch` the steps that the last steps in it cause: starting spawned children,
    /// telling a parent its child finished, firing `await_children` events. A cascade that
    /// grows past [`MAX_FOLLOW_UPS`] steps is an error: the caller commits nothing of it.
    async fn follow_ups(
        &self,
        batch: &mut Vec<Committed>,
        locks: &mut Vec<InstanceLock>,
        names: &mut Vec<Name>,
        at: DateTime<Utc>,
    ) -> Result<(), EngineError> {
        let mut next = 0;
        while next < batch.len() {
            check_cascade(batch)?;
            let entry = batch[next].entry.clone();
            let snapshot = batch[next].snapshot.clone();
            next += 1;
            if let Some(parent_id) = tells_parent(&entry, &snapshot) {
                if !locks.iter().any(|l| &l.id == parent_id) {
                    locks.push(self.lock(parent_id).await);
                }
                let parent = match latest(batch, parent_id) {
                    Some(parent) => parent,
                    None => {
                        let parent_id = parent_id.clone();
                        self.blocking(move |engine| engine.instance(&parent_id))
                            .await?
                    }
                };
                let already = parent
                    .children
                    .iter()
                    .any(|c| c.id == snapshot.id && c.finished_in.is_some());
                if !already {
                    let notice =
                        machine::child_finished(&parent, &snapshot.id, &snapshot.state, at);
                    let mut after = parent;
                    after
                        .apply(&notice)
                        .map_err(crate::store::StoreError::from)?;
                    batch.push(Committed::new(notice, after)?);
                }
            }
            let definition = self.definition_blocking(&snapshot.version).await?;
            if let Some(event) = machine::children_done(&definition, &snapshot)
                && latest(batch, &snapshot.id).is_some_and(|s| s.seq == snapshot.seq)
            {
                let command = Command {
                    event,
                    actor: Actor::system(),
                    payload: Map::new(),
                    idempotency_key: None,
                    at,
                    expected_seq: None,
                };
                let before = snapshot.clone();
                let (step, after) = self
                    .blocking(move |engine| {
                        let step = machine::step(&definition, &before, &command, engine.sandbox())?;
                        let mut after = before;
                        after.apply(&step).map_err(crate::store::StoreError::from)?;
                        Ok((step, after))
                    })
                    .await?;
                self.push_step(batch, names, step, after, at).await?;
            }
        }
        check_cascade(batch)
    }

    /// The next names of an instance of `definition`'s workflow started at `at`. On sled they
    /// are read, not taken (see [`Engine::take_name`]); on a store that takes numbers in the
    /// commit they are handed out after those of this node's pending starts, with a ticket to
    /// settle (see `numbering`). The caller holds the workflow's numbering lock.
    fn next_name(
        &self,
        definition: &crate::definition::Definition,
        at: DateTime<Utc>,
    ) -> Result<Name, EngineError> {
        let numbering = Numbering::of(definition, at)?;
        let workflow = definition.workflow.id.as_str();
        let period = numbering.period.as_deref();
        let store = &self.inner.store;
        if store.numbers_in_commit() {
            let ticket = self.inner.counters.next(
                workflow,
                period,
                || store.last_number(workflow),
                |period| store.last_sequence(workflow, period),
            )?;
            let seq = ticket.sequence.as_ref().map(|(_, seq)| *seq);
            let mut name = numbering.name(ticket.n, seq);
            name.ticket = Some(Arc::new(ticket));
            Ok(name)
        } else {
            let n = store.last_number(workflow)? + 1;
            let seq = match period {
                Some(period) => Some(store.last_sequence(workflow, period)? + 1),
                None => None,
            };
            Ok(numbering.name(n, seq))
        }
    }

    /// Records that an admitted start took `name`'s numbers; durable with the flush of its
    /// first entry. The caller holds the workflow's numbering lock.
    fn take_name(&self, name: &Name) -> Result<(), EngineError> {
        self.inner.store.set_last_number(&name.workflow, name.n)?;
        if let Some(readable) = &name.readable {
            self.inner
                .store
                .set_last_sequence(&name.workflow, &readable.period, readable.seq)?;
        }
        Ok(())
    }

    /// Makes sure the counts of a numbered child restarted by a repair are past it. (They are
    /// written before the step that records the child, so they survive whatever it does.)
    async fn catch_up(&self, child: &machine::entry::SpawnedChild) -> Result<(), EngineError> {
        let n = child
            .id
            .strip_prefix(&child.workflow)
            .and_then(|rest| rest.strip_prefix('-'))
            .and_then(|digits| digits.parse::<u64>().ok());
        let Some(n) = n.filter(|_| child.key.is_some()) else {
            return Ok(());
        };
        let _numbering = self.lock(&numbering_lock(&child.workflow)).await;
        let workflow = child.workflow.clone();
        self.blocking(move |engine| {
            if engine.inner.store.last_number(&workflow)? < n {
                engine.inner.store.set_last_number(&workflow, n)?;
                engine.inner.counters.forget(&workflow);
            }
            Ok(())
        })
        .await
    }

    /// Gives back the numbers a command took for its children when the command failed after
    /// all, so that they stay without gaps: each one that is still the last of its count.
    async fn give_back(&self, names: &[Name]) {
        if self.inner.store.numbers_in_commit() {
            // Taken only by the commit that failed, so not taken at all; the tickets, dropped
            // unsettled, make their counters fall back to the store's.
            return;
        }
        for name in names.iter().rev() {
            let _numbering = self.lock(&numbering_lock(&name.workflow)).await;
            let name = name.clone();
            let _ = self
                .blocking(move |engine| {
                    let store = &engine.inner.store;
                    if store.last_number(&name.workflow).ok() == Some(name.n) {
                        let _ = store.set_last_number(&name.workflow, name.n - 1);
                    }
                    if let Some(readable) = &name.readable
                        && store.last_sequence(&name.workflow, &readable.period).ok()
                            == Some(readable.seq)
                    {
                        let _ = store.set_last_sequence(
                            &name.workflow,
                            &readable.period,
                            readable.seq - 1,
                        );
                    }
                    Ok(())
                })
                .await;
        }
    }

    /// `result`, after giving back the children's numbers if it is an error.
    async fn unless_failed<T>(
        &self,
        result: Result<T, EngineError>,
        names: &[Name],
    ) -> Result<T, EngineError> {
        if result.is_err() {
            self.give_back(names).await;
        }
        result
    }

    /// Adds a step to `batch`, and after it the starts of the children it spawns, each named
    /// as its own workflow's next instance (`hot_work_permit-3`, and its readable number):
    /// the step's entry records those names, so that a replay or a repair after a crash finds
    /// the very children it started. A child whose start is refused fails the step (its
    /// numbers are not taken). Returns the step as added.
    async fn push_step(
        &self,
        batch: &mut Vec<Committed>,
        names: &mut Vec<Name>,
        mut entry: Entry,
        mut snapshot: Instance,
        at: DateTime<Utc>,
    ) -> Result<(Entry, Instance), EngineError> {
        let mut starts = Vec::new();
        let mut given = Vec::new();
        let in_commit = self.inner.store.numbers_in_commit();
        for child in entry.spawned.clone() {
            let definition = self.inner.versions.latest(&child.workflow)?;
            let _numbering = self.lock(&numbering_lock(&child.workflow)).await;
            let name = {
                let definition = definition.clone();
                self.blocking(move |engine| engine.next_name(&definition, at))
                    .await?
            };
            let named = machine::entry::SpawnedChild {
                id: name.id.clone(),
                number: name.readable.as_ref().map(|r| r.number.clone()),
                ..child
            };
            if let Some(mut start) = self.start_child_blocking(&snapshot, &named, at).await? {
                if in_commit {
                    start.numbers = Some(name.claim());
                }
                starts.push(start);
            }
            if !in_commit {
                let taken = name.clone();
                self.blocking(move |engine| engine.take_name(&taken))
                    .await?;
            }
            names.push(name);
            given.push(machine::entry::ChildName {
                id: named.id,
                number: named.number,
            });
        }
        if !given.is_empty() {
            let derived: Vec<String> = entry.spawned.iter().map(|c| c.id.clone()).collect();
            entry.name_children(&given);
            for child in &mut snapshot.children {
                if let Some(at) = derived.iter().position(|d| *d == child.id) {
                    child.id = given[at].id.clone();
                    child.number = given[at].number.clone();
                }
            }
            snapshot.last_hash = entry.hash.clone();
            // The children's starts name the parent's step by nothing but the parent's id, so
            // they need no change.
        }
        batch.push(Committed::new(entry.clone(), snapshot.clone())?);
        batch.extend(starts);
        Ok((entry, snapshot))
    }

    /// [`Engine::start_child`] on the blocking pool: a child's start may run its scripts.
    async fn start_child_blocking(
        &self,
        parent: &Instance,
        child: &machine::entry::SpawnedChild,
        at: DateTime<Utc>,
    ) -> Result<Option<Committed>, EngineError> {
        let (parent, child) = (parent.clone(), child.clone());
        self.blocking(move |engine| engine.start_child(&parent, &child, at))
            .await
    }

    /// The start of a spawned child, unless it exists already.
    fn start_child(
        &self,
        parent: &Instance,
        child: &machine::entry::SpawnedChild,
        at: DateTime<Utc>,
    ) -> Result<Option<Committed>, EngineError> {
        if self.inner.store.instance(&child.id)?.is_some() {
            return Ok(None);
        }
        let definition = self.inner.versions.latest(&child.workflow)?;
        // The child keeps the offered values that it lets its start write, and can take.
        let data = child
            .data
            .iter()
            .filter_map(|(key, value)| {
                let field = definition.workflow.fields.get(key)?;
                if !field.is_writable_on(crate::definition::model::START) {
                    return None;
                }
                machine::value::convert(key, field, value)
                    .ok()
                    .map(|v| (key.clone(), v))
            })
            .collect();
        let command = Start {
            id: child.id.clone(),
            actor: Actor::system(),
            data,
            business_key: parent.business_key.clone(),
            parent: Some(parent.id.to_string()),
            idempotency_key: None,
            at,
            number: child.number.clone(),
        };
        let entry = machine::start(&definition, &command, &self.inner.sandbox)?;
        let snapshot = Instance::begin(&entry).map_err(crate::store::StoreError::from)?;
        Ok(Some(Committed::new(entry, snapshot)?))
    }

    /// Finishes follow-up work for an instance recovered after a crash: children its last
    /// steps spawned, its parent's notice, its `await_children` event.
    async fn repair(&self, id: &str) -> Result<(), EngineError> {
        let mut locks = vec![self.lock(id).await];
        let owned = id.to_string();
        let (snapshot, history) = self
            .blocking(move |engine| {
                Ok((
                    engine.instance(&owned)?,
                    engine.inner.store.history(&owned)?,
                ))
            })
            .await?;
        let mut batch = Vec::new();
        // Each child under the id its parent's step recorded (its own workflow's number, or in
        // older stores `{parent}.{seq}.{n}`): one that exists is not started again.
        for entry in history.iter().filter(|e| !e.spawned.is_empty()) {
            for child in &entry.spawned {
                if let Some(step) = self
                    .start_child_blocking(&snapshot, child, entry.at)
                    .await?
                {
                    self.catch_up(child).await?;
                    batch.push(step);
                }
            }
        }
        let last = history.last().cloned();
        let mut names = Vec::new();
        if let Some(entry) = last {
            // Re-run the follow-ups of the last step on its own; already-done work is skipped.
            // (It is not committed again: only what follows it is.)
            let mut entry = entry;
            entry.spawned.clear();
            let mut pending = vec![Committed::new(entry, snapshot.clone())?];
            let done = self
                .follow_ups(&mut pending, &mut locks, &mut names, self.now())
                .await;
            match self.unless_failed(done, &names).await {
                Ok(()) => batch.extend(pending.into_iter().skip(1)),
                // Only a store written by an engine that committed part of a runaway cascade
                // has one to carry on: nothing more of it is written, and the store opens.
                Err(EngineError::CascadeTooLong { .. }) => {}
                Err(other) => return Err(other),
            }
        }
        if !batch.is_empty() {
            self.commit(batch).await?;
        }
        committed(&names);
        Ok(())
    }
}

/// Settles the tickets of names whose command's batch was committed.
fn committed(names: &[Name]) {
    for name in names {
        name.committed();
    }
}

/// Fails a command whose batch has grown past [`MAX_FOLLOW_UPS`] steps, naming the command
/// and the workflows most of the steps belong to.
fn check_cascade(batch: &[Committed]) -> Result<(), EngineError> {
    if batch.len() <= MAX_FOLLOW_UPS {
        return Ok(());
    }
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for step in batch {
        *counts.entry(step.entry.workflow.as_str()).or_default() += 1;
    }
    let mut workflows: Vec<(&str, usize)> = counts.into_iter().collect();
    workflows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let first = &batch[0].entry;
    Err(EngineError::CascadeTooLong {
        instance: first.instance.to_string(),
        event: first.event.to_string(),
        limit: MAX_FOLLOW_UPS,
        workflows: workflows
            .into_iter()
            .take(3)
            .map(|(id, _)| id.to_string())
            .collect(),
    })
}

/// A step that causes nothing more, computed on the blocking pool: committed there, or
/// encoded and waiting to join the committer's next group.
enum Placed {
    Committed(Committed),
    Waiting(Committed),
}

fn commit_failed(err: CommitError) -> EngineError {
    match err {
        CommitError::Store(err) => EngineError::Store(err),
        CommitError::Closed => EngineError::Closed,
    }
}

/// The parent to tell that the instance finished, when this step finished it (a child's own
/// completion notice finishes nothing).
fn tells_parent<'a>(entry: &Entry, snapshot: &'a Instance) -> Option<&'a String> {
    if entry.finished && entry.kind != machine::EntryKind::ChildFinished {
        snapshot.parent.as_ref()
    } else {
        None
    }
}

/// Whether a step causes follow-ups (see [`Engine::follow_ups`]): children to start, a parent
/// to tell, an `await_children` event to fire.
fn causes_follow_ups(
    definition: &crate::definition::Definition,
    entry: &Entry,
    snapshot: &Instance,
) -> bool {
    !entry.spawned.is_empty()
        || tells_parent(entry, snapshot).is_some()
        || machine::children_done(definition, snapshot).is_some()
}

/// The newest snapshot of `id` in a batch.
fn latest(batch: &[Committed], id: &str) -> Option<Instance> {
    batch
        .iter()
        .rev()
        .find(|c| c.snapshot.id == id)
        .map(|c| c.snapshot.clone())
}

/// Refuses an instance id with a control character: none is ever made (ids are a workflow id
/// and a number), and the store's log keys are the id followed by a NUL.
fn check_id(id: &str) -> Result<(), EngineError> {
    if id.chars().any(char::is_control) {
        return Err(EngineError::BadInstanceId { id: id.to_string() });
    }
    Ok(())
}

/// Refuses a key the caller chose, or a query's filter, with a control character: the store
/// keeps them in keys whose parts a NUL separates.
fn check_key(field: &'static str, value: Option<&str>) -> Result<(), EngineError> {
    match value {
        Some(value) if value.chars().any(char::is_control) => Err(EngineError::BadKey {
            field,
            value: value.to_string(),
        }),
        _ => Ok(()),
    }
}

/// Refuses a version hash with a control character as one no store holds, before a store
/// that keeps text (PostgreSQL refuses a NUL in it) is asked.
fn check_version(hash: &str) -> Result<(), EngineError> {
    if hash.chars().any(char::is_control) {
        return Err(EngineError::Definition {
            hash: hash.escape_debug().to_string(),
            detail: "no such version in the store".into(),
        });
    }
    Ok(())
}

/// [`check_key`] on each filter of a query.
fn check_query(query: &Query) -> Result<(), EngineError> {
    check_key("workflow", query.workflow.as_deref())?;
    check_key("state", query.state.as_deref())?;
    check_key("business_key", query.business_key.as_deref())
}

fn check_actor(actor: &Actor) -> Result<(), EngineError> {
    if actor.is_system() {
        return Err(Refusal::ReservedRole.into());
    }
    Ok(())
}

fn check_size(payload: &Map<String, Value>) -> Result<(), EngineError> {
    let size = serde_json::to_vec(payload)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_PAYLOAD_BYTES {
        return Err(EngineError::PayloadTooLarge {
            size,
            limit: MAX_PAYLOAD_BYTES,
        });
    }
    Ok(())
}

/// An instance's lock, released (and forgotten when nobody waits for it) on drop.
struct InstanceLock {
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
    id: String,
    engine: Arc<Inner>,
}

impl Drop for InstanceLock {
    fn drop(&mut self) {
        self.guard.take();
        let mut locks = self.engine.locks.lock().unwrap_or_else(|e| e.into_inner());
        if locks
            .get(&self.id)
            .is_some_and(|m| Arc::strong_count(m) == 1)
        {
            locks.remove(&self.id);
        }
    }
}

/// The key of the lock under which a workflow's numbers are taken.
fn numbering_lock(workflow: &str) -> String {
    format!("\0number\0{workflow}")
}
