//! The commands that run instances: `start`, `fire`, `show`, `list`, `history`.
//!
//! Each builds a tokio runtime, opens the [`Engine`] on the data folder, makes one request and
//! prints the answer. Arguments are checked (JSON parsed) before the engine is opened, so a
//! mistake in them writes nothing. The engine decides everything else.
//!
//! With `--server`, the same request goes to a running server instead ([`super::remote`]), and
//! its answer is printed by the same code, so the output and exit codes do not depend on
//! where the command ran.

use super::Format;
use super::present::{self, Titles};
use super::remote::RemoteArgs;
use serde_json::{Map, Value, json};
use sopflow::engine::{Config, Engine, EngineError, Fire, Outcome, StartRequest};
use sopflow::i18n::{self, Explain, Lang};
use sopflow::machine::Refusal;
use sopflow::machine::{Actor, Available, Entry, Instance};
use sopflow::store::{Query, StoreLocation};
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

/// Where the engine keeps its data and reads its definitions.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// The data folder of the embedded store (default `./data`). Given, it wins over
    /// `--store` and `SOPFLOW_STORE`.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Where the store is: a data folder, or a PostgreSQL database
    /// (`postgres://user:password@host:port/database`). Without it, `--data-dir`.
    #[arg(
        long,
        env = "SOPFLOW_STORE",
        value_name = "FOLDER|URL",
        hide_env_values = true
    )]
    pub store: Option<StoreLocation>,
    /// The workflows folder (or file).
    #[arg(long, default_value = "workflows")]
    pub workflows: PathBuf,
    /// The rules folder (or file).
    #[arg(long, default_value = "rules")]
    pub rules: PathBuf,
    /// The business calendars folder (used when it exists; the built-in calendars otherwise).
    #[arg(long, default_value = "calendars")]
    pub calendars: PathBuf,
}

impl StoreArgs {
    /// The store these arguments name: `--data-dir`, else `--store` (or `SOPFLOW_STORE`),
    /// else `./data`.
    pub fn location(&self) -> StoreLocation {
        match (&self.data_dir, &self.store) {
            (Some(dir), _) => StoreLocation::Sled(dir.clone()),
            (None, Some(store)) => store.clone(),
            (None, None) => StoreLocation::Sled(PathBuf::from("./data")),
        }
    }

    /// The configuration of a command that writes: `create` is false for commands that need
    /// an existing data folder.
    pub(super) fn config(&self, create: bool) -> Config {
        let mut sources = vec![self.workflows.clone(), self.rules.clone()];
        if self.calendars.is_dir() {
            sources.push(self.calendars.clone());
        }
        let mut config = Config::at(self.location()).sources(sources);
        config.create = create;
        config
    }

    /// The configuration of a command that only reads: it never creates the data folder, and
    /// it skips definition folders that are not there, since an instance's version is rebuilt
    /// from the copy of its sources kept in the store.
    ///
    /// A definition file with errors does not stop them: an instance is read with the version
    /// it ran on, from the store's own copy, whatever the files say today.
    pub(super) fn read_only(&self) -> Config {
        let mut config = self.config(false).allow_load_errors();
        config.sources.retain(|path| path.exists());
        config
    }
}

/// [`StoreArgs`] and how to print.
#[derive(Debug, Clone, clap::Args)]
pub struct EngineArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// The language of what people read (refusals): `zh` or `en`. By default the locale's
    /// (`LC_ALL`, `LC_MESSAGES`, `LANG`), else English, which every terminal can show.
    #[arg(long, env = "SOPFLOW_LANG", value_parser = lang_arg)]
    pub lang: Option<Lang>,
}

/// The language given (`--lang`, `SOPFLOW_LANG`), else the locale's, else English, which every
/// terminal can show. Commands without `--lang` (`serve`, `docs`) read `SOPFLOW_LANG` here.
pub(super) fn chosen_lang(given: Option<Lang>) -> Lang {
    given
        .or_else(|| {
            std::env::var("SOPFLOW_LANG")
                .ok()
                .and_then(|v| Lang::parse(&v))
        })
        .or_else(|| Lang::from_locale(|name| std::env::var(name).ok()))
        .unwrap_or(Lang::En)
}

/// Reads `--lang`.
pub(super) fn lang_arg(text: &str) -> Result<Lang, String> {
    Lang::parse(text)
        .ok_or_else(|| format!("`{text}` is not a language sopflow speaks; give zh or en"))
}

impl EngineArgs {
    /// The language chosen with `--lang`, else the locale's, else English.
    pub(super) fn lang(&self) -> Lang {
        chosen_lang(self.lang)
    }

    pub(super) fn config(&self, create: bool) -> Config {
        self.store.config(create)
    }

    pub(super) fn read_only(&self) -> Config {
        self.store.read_only()
    }
}

/// `sopflow start`.
#[derive(Debug, Clone)]
pub struct StartArgs {
    pub workflow: String,
    /// `None` with `--server`, where the token decides who acts.
    pub actor: Option<String>,
    pub roles: Vec<String>,
    pub data: Option<String>,
    pub business_key: Option<String>,
    pub idempotency_key: Option<String>,
}

/// `sopflow fire`.
#[derive(Debug, Clone)]
pub struct FireArgs {
    pub instance: String,
    pub event: String,
    /// `None` with `--server`, where the token decides who acts.
    pub actor: Option<String>,
    pub roles: Vec<String>,
    pub payload: Option<String>,
    pub comment: Option<String>,
    pub idempotency_key: Option<String>,
    pub expected_seq: Option<u64>,
}

/// Why a command did not succeed.
pub(super) enum Failure {
    /// The command line's values are wrong in a way clap cannot see (bad JSON, unreadable
    /// file); nothing was sent to the engine.
    Input(String),
    /// The engine answered with an error or a refusal.
    Engine(EngineError),
    /// The runtime could not be built.
    Runtime(String),
    /// The engine (or the server, with `--server`) refused the step: a business answer,
    /// nothing was written. `reason` is the engine's own words, `message` the person's.
    Refused {
        code: String,
        reason: String,
        message: String,
        lang: Lang,
    },
    /// The server could not be reached, or answered with an error.
    Remote { code: String, message: String },
}

impl Failure {
    /// A refusal of the local engine, explained in `lang`.
    fn refused(refusal: &Refusal, lang: Lang, explain: &Explain<'_>) -> Failure {
        Failure::Refused {
            code: refusal.code().to_string(),
            reason: refusal.to_string(),
            message: i18n::explain(refusal, lang, explain),
            lang,
        }
    }
}

impl From<EngineError> for Failure {
    fn from(err: EngineError) -> Failure {
        Failure::Engine(err)
    }
}

pub fn start(args: StartArgs, engine_args: &EngineArgs, remote: &RemoteArgs) -> ExitCode {
    let format = engine_args.format;
    let result = run_start(&args, engine_args, remote);
    finish(format, result, |(outcome, titles)| match format {
        Format::Json => outcome_json(&outcome),
        Format::Human => present::started(&outcome, &titles),
    })
}

fn run_start(
    args: &StartArgs,
    engine_args: &EngineArgs,
    remote: &RemoteArgs,
) -> Result<(Outcome, Titles), Failure> {
    let data = match &args.data {
        Some(text) => json_object("--data", text)?,
        None => Map::new(),
    };
    if let Some(server) = remote.connect(engine_args.format, engine_args.lang())? {
        return server.start(
            &args.workflow,
            data,
            args.business_key.as_deref(),
            args.idempotency_key.as_deref(),
        );
    }
    let mut request = StartRequest::new(local_actor(&args.actor, &args.roles)?);
    request.data = data;
    request.business_key = args.business_key.clone();
    request.idempotency_key = args.idempotency_key.clone();
    let lang = engine_args.lang();
    with_engine(engine_args.config(true), async |engine| {
        let outcome = match engine.start(&args.workflow, request).await {
            Err(EngineError::Refused(refusal)) => {
                let roles = engine.role_list();
                let def = engine.definition_of(&args.workflow);
                let workflow = def.as_ref().map(|d| &d.workflow);
                let explain = Explain {
                    workflow,
                    state: workflow.map(|w| w.initial.as_str()),
                    event: Some("start"),
                    roles: roles.as_deref(),
                    ..Explain::default()
                };
                return Ok(Err(Failure::refused(&refusal, lang, &explain)));
            }
            other => other?,
        };
        let titles = Titles::of(engine, &outcome.instance.version);
        Ok(Ok((outcome, titles)))
    })
    .and_then(|explained| explained)
}

pub fn fire(args: FireArgs, engine_args: &EngineArgs, remote: &RemoteArgs) -> ExitCode {
    let format = engine_args.format;
    let result = run_fire(&args, engine_args, remote);
    finish(format, result, |(outcome, titles)| match format {
        Format::Json => outcome_json(&outcome),
        Format::Human => present::fired(&outcome, &titles),
    })
}

fn run_fire(
    args: &FireArgs,
    engine_args: &EngineArgs,
    remote: &RemoteArgs,
) -> Result<(Outcome, Titles), Failure> {
    let payload = match &args.payload {
        Some(text) => json_object("--payload", text)?,
        None => Map::new(),
    };
    if let Some(server) = remote.connect(engine_args.format, engine_args.lang())? {
        return server.fire(
            &args.instance,
            &args.event,
            payload,
            args.comment.as_deref(),
            args.expected_seq,
            args.idempotency_key.as_deref(),
        );
    }
    let mut request = Fire::new(&args.event, local_actor(&args.actor, &args.roles)?);
    request.payload = payload;
    if let Some(comment) = &args.comment {
        request = request.comment(comment);
    }
    request.idempotency_key = args.idempotency_key.clone();
    request.expected_seq = args.expected_seq;
    // An instance can only be in a data folder that exists: do not create one.
    let lang = engine_args.lang();
    with_engine(engine_args.config(false), async |engine| {
        let outcome = match engine.fire(&args.instance, request).await {
            Err(EngineError::Refused(refusal)) => {
                let roles = engine.role_list();
                // A refusal wrote nothing: the instance is as it was when it was refused.
                let instance = engine.get(&args.instance).await.ok();
                let def = instance
                    .as_ref()
                    .and_then(|i| engine.definition(&i.version).ok());
                let explain = Explain {
                    workflow: def.as_ref().map(|d| &d.workflow),
                    state: instance.as_ref().map(|i| i.state.as_str()),
                    event: Some(&args.event),
                    roles: roles.as_deref(),
                    ..Explain::default()
                };
                return Ok(Err(Failure::refused(&refusal, lang, &explain)));
            }
            other => other?,
        };
        let titles = Titles::of(engine, &outcome.instance.version);
        Ok(Ok((outcome, titles)))
    })
    .and_then(|explained| explained)
}

pub fn show(
    instance: &str,
    actor: Option<(String, Vec<String>)>,
    engine_args: &EngineArgs,
    remote: &RemoteArgs,
) -> ExitCode {
    let format = engine_args.format;
    match remote.connect(format, engine_args.lang()) {
        Ok(Some(server)) => return show_remote(instance, &server, format),
        Ok(None) => {}
        Err(failure) => return report(format, &failure),
    }
    let actor = actor.map(|(id, roles)| Actor::new(id, roles));
    let result = with_engine(engine_args.read_only(), async |engine| {
        let found = engine.get(instance).await?;
        let titles = Titles::of(engine, &found.version);
        let available = match &actor {
            Some(actor) => Some(engine.available(instance, actor).await?),
            None => None,
        };
        Ok((found, titles, available))
    });
    finish(format, result, |(found, titles, available)| match format {
        Format::Json => pretty(&Shown {
            state_title: titles.state(&found.state),
            instance: &found,
            available: available.as_deref(),
        }),
        Format::Human => present::instance(
            &found,
            &titles,
            actor.as_ref().map(present::viewer).as_deref(),
            available.as_deref(),
        ),
    })
}

/// `show` through a server: `available` is always there, computed for the token's user.
fn show_remote(instance: &str, server: &super::remote::Remote, format: Format) -> ExitCode {
    let result = server.show(instance);
    let viewer = match (&result, format) {
        (Ok(_), Format::Human) => server.viewer(),
        _ => String::new(),
    };
    finish(format, result, |shown| match format {
        Format::Json => pretty(&Shown {
            instance: &shown.instance,
            state_title: shown.state_title.as_deref(),
            available: Some(&shown.available),
        }),
        Format::Human => present::instance(
            &shown.instance,
            &shown.titles,
            Some(&viewer),
            Some(&shown.available),
        ),
    })
}

pub fn list(query: Query, engine_args: &EngineArgs, remote: &RemoteArgs) -> ExitCode {
    let format = engine_args.format;
    let result = match remote.connect(format, engine_args.lang()) {
        Ok(Some(server)) => server.list(&query),
        Ok(None) => list_local(query, engine_args),
        Err(failure) => Err(failure),
    };
    finish(format, result, |(found, titles)| match format {
        Format::Json => pretty(&found),
        Format::Human => present::list(&found, &titles),
    })
}

fn list_local(
    query: Query,
    engine_args: &EngineArgs,
) -> Result<(Vec<Instance>, Vec<Titles>), Failure> {
    with_engine(engine_args.read_only(), async |engine| {
        let found = engine.list(query).await?;
        let mut titles: Vec<Titles> = Vec::new();
        for instance in &found {
            if !titles.iter().any(|t| t.version() == instance.version) {
                titles.push(Titles::of(engine, &instance.version));
            }
        }
        Ok((found, titles))
    })
}

pub fn history(instance: &str, engine_args: &EngineArgs, remote: &RemoteArgs) -> ExitCode {
    let format = engine_args.format;
    let result = match remote.connect(format, engine_args.lang()) {
        Ok(Some(server)) => server.history(instance),
        Ok(None) => history_local(instance, engine_args),
        Err(failure) => Err(failure),
    };
    finish(format, result, |(entries, titles)| match format {
        Format::Json => pretty(&entries),
        Format::Human => present::history(&entries, &titles),
    })
}

fn history_local(
    instance: &str,
    engine_args: &EngineArgs,
) -> Result<(Vec<Entry>, Vec<Titles>), Failure> {
    with_engine(engine_args.read_only(), async |engine| {
        let entries = engine.history(instance).await?;
        let mut titles: Vec<Titles> = Vec::new();
        for entry in &entries {
            if !titles.iter().any(|t| t.version() == entry.version) {
                titles.push(Titles::of(engine, &entry.version));
            }
        }
        Ok((entries, titles))
    })
}

/// The actor of a local command. clap requires `--actor` and `--role` without `--server`, so
/// this fails only if that requirement is ever lost; it fails with the same words.
fn local_actor(actor: &Option<String>, roles: &[String]) -> Result<Actor, Failure> {
    match actor {
        Some(id) if !roles.is_empty() => Ok(Actor::new(id, roles)),
        _ => Err(Failure::Input(
            "--actor and --role are required (or --server and --token, to act as the token's user)"
                .into(),
        )),
    }
}

/// Opens the engine, runs `work` on it, and closes it (after every step is flushed).
pub(super) fn with_engine<T>(
    config: Config,
    work: impl AsyncFnOnce(&Engine) -> Result<T, EngineError>,
) -> Result<T, Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(format!("cannot start the async runtime: {e}")))?;
    let engine = runtime.block_on(Engine::open(config))?;
    let result = runtime.block_on(work(&engine));
    // Closing the engine joins its commit thread and closes the store; do it outside the
    // runtime, and before the runtime goes.
    drop(engine);
    drop(runtime);
    Ok(result?)
}

/// Opens the engine like [`with_engine`], then runs `work` on this thread outside the
/// runtime: for the engine's blocking calls (a store walk such as `verify_store` or `export`),
/// which must not run on an async thread.
pub(super) fn with_engine_blocking<T>(
    config: Config,
    work: impl FnOnce(&Engine) -> Result<T, EngineError>,
) -> Result<T, Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(format!("cannot start the async runtime: {e}")))?;
    let engine = runtime.block_on(Engine::open(config))?;
    let result = work(&engine);
    drop(engine);
    drop(runtime);
    Ok(result?)
}

/// Prints the answer (or the failure) and returns the exit code: 0 success, 1 error,
/// 3 refused.
pub(super) fn finish<T>(
    format: Format,
    result: Result<T, Failure>,
    render: impl FnOnce(T) -> String,
) -> ExitCode {
    match result {
        Ok(value) => {
            print!("{}", with_newline(render(value)));
            ExitCode::SUCCESS
        }
        Err(failure) => report(format, &failure),
    }
}

pub(super) fn report(format: Format, failure: &Failure) -> ExitCode {
    let refused = match failure {
        Failure::Engine(EngineError::Refused(refusal)) => Some((
            refusal.code(),
            refusal.to_string(),
            refusal.to_string(),
            Lang::En,
        )),
        Failure::Refused {
            code,
            reason,
            message,
            lang,
        } => Some((code.as_str(), reason.clone(), message.clone(), *lang)),
        _ => None,
    };
    if let Some((code, reason, message, lang)) = refused {
        match format {
            Format::Json => println!(
                "{}",
                pretty(&json!({"refused": {"code": code, "reason": reason, "message": message}}))
            ),
            Format::Human => eprintln!(
                "{}",
                lang.text_with("cli-refused", &[("message", &message)])
            ),
        }
        return ExitCode::from(3);
    }
    let (code, message) = match failure {
        Failure::Input(message) => ("bad_input", message.clone()),
        Failure::Runtime(message) => ("runtime", message.clone()),
        Failure::Engine(err) => (EngineError::code(err), err.to_string()),
        Failure::Refused { code, reason, .. } => (code.as_str(), reason.clone()),
        Failure::Remote { code, message } => (code.as_str(), message.clone()),
    };
    match format {
        Format::Json => println!(
            "{}",
            pretty(&json!({"error": {"code": code, "message": message}}))
        ),
        Format::Human => eprintln!("error: {message}"),
    }
    ExitCode::from(1)
}

/// `{"instance": ..., "entry": ..., "replayed": ...}`.
fn outcome_json(outcome: &Outcome) -> String {
    #[derive(serde::Serialize)]
    struct Answer<'a> {
        instance: &'a Instance,
        entry: &'a Entry,
        replayed: bool,
    }
    pretty(&Answer {
        instance: &outcome.instance,
        entry: &outcome.entry,
        replayed: outcome.replayed,
    })
}

/// What `show --format json` prints; `available` is null without `--actor`.
#[derive(serde::Serialize)]
struct Shown<'a> {
    instance: &'a Instance,
    state_title: Option<&'a str>,
    available: Option<&'a [Available]>,
}

pub(super) fn pretty(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|e| {
        json!({"error": {"code": "output", "message": e.to_string()}}).to_string()
    })
}

fn with_newline(mut text: String) -> String {
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// Parses a flag's value as a JSON object. `@FILE` reads the JSON from a file and `-` from
/// standard input (a command-line argument is limited to about 128 KiB on Linux).
fn json_object(flag: &str, text: &str) -> Result<Map<String, Value>, Failure> {
    let read;
    let (text, origin) = if text == "-" {
        let mut buffer = String::new();
        std::io::stdin()
            .read_to_string(&mut buffer)
            .map_err(|e| Failure::Input(format!("{flag} -: cannot read standard input: {e}")))?;
        read = buffer;
        (read.as_str(), " (from standard input)".to_string())
    } else if let Some(path) = text.strip_prefix('@') {
        read = std::fs::read_to_string(path)
            .map_err(|e| Failure::Input(format!("{flag} @{path}: cannot read the file: {e}")))?;
        (read.as_str(), format!(" (from {path})"))
    } else {
        (text, String::new())
    };
    let value: Value = serde_json::from_str(text).map_err(|e| {
        Failure::Input(format!(
            "{flag}{origin} is not valid JSON: {e}; give an object such as '{{\"field\": \"value\"}}'"
        ))
    })?;
    match value {
        Value::Object(map) => Ok(map),
        other => Err(Failure::Input(format!(
            "{flag}{origin} must be a JSON object such as '{{\"field\": \"value\"}}', not {}",
            kind_of(&other)
        ))),
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
