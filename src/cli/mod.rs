//! Command-line interface: parses arguments (clap) and drives the library. Nothing here decides
//! what is valid; it only reads files, calls `sopflow`, and prints.
//!
//! Exit codes:
//! - 0 success;
//! - 1 findings with errors, or a failed command: an unknown workflow or instance, `--data` or
//!   `--payload` that is not a JSON object, a payload over the size limit, a store error (such
//!   as a data folder in use by another process or missing for a read-only command);
//! - 2 usage errors (clap's own, and paths that do not exist);
//! - 3 refused: the engine would not take the step (wrong role, failed guard, missing or
//!   ill-typed field...). A refusal is a business answer; nothing was written. `migrate apply`
//!   answers 3 when it left blocked instances where they are (it migrated the others).
//!
//! `start`, `fire`, `show`, `list` and `history` also run through a server (`--server`,
//! `--token`; see `remote`), with the same output and exit codes.

mod audit;
mod copy;
mod deliveries;
mod deploy;
mod docs;
mod migrate;
mod paths;
mod present;
mod remote;
mod render;
mod runtime;
mod scenarios;
mod serve;
mod time;

use clap::{Parser, Subcommand, ValueEnum};
use remote::RemoteArgs;
use runtime::{EngineArgs, FireArgs, StartArgs};
use sopflow::catalog::{self, CatalogError, LoadReport, Sources};
use sopflow::diagnostic::{Code, display_path};
use sopflow::i18n::Lang;
use sopflow::script::Sandbox;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "sopflow",
    version,
    about = "Operating manuals as running, auditable workflows"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check workflow (.yaml) and rules (.rhai) files, and report every problem found.
    Validate {
        /// Files or folders to check [default: workflows/, rules/ and calendars/].
        paths: Vec<PathBuf>,
        /// The rules folder that workflows given as files may refer to.
        #[arg(long, default_value = "rules")]
        rules: PathBuf,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        /// Print the table of diagnostic codes and exit.
        #[arg(long)]
        codes: bool,
        /// The language of the report: `zh` or `en`. By default the locale's (`LC_ALL`,
        /// `LC_MESSAGES`, `LANG`), else English.
        #[arg(long, env = "SOPFLOW_LANG", value_parser = runtime::lang_arg)]
        lang: Option<Lang>,
    },
    /// Print the JSON Schema (draft-07) of the workflow format, of the role list, or of a
    /// migration's mapping file.
    Schema {
        #[arg(value_enum, default_value_t = SchemaOf::Workflow)]
        of: SchemaOf,
    },
    /// Draw a workflow as a Mermaid or Graphviz DOT diagram.
    Graph {
        /// A workflow id (looked up in --workflows) or a path to a workflow file.
        workflow: String,
        #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
        format: GraphFormat,
        #[arg(long, default_value = "workflows")]
        workflows: PathBuf,
        #[arg(long, default_value = "rules")]
        rules: PathBuf,
    },
    /// Start an instance of a workflow.
    Start {
        /// The workflow's id, for example `hot_work_permit`.
        workflow: String,
        #[command(flatten)]
        who: Who,
        /// Initial values for declared fields, as a JSON object (`@FILE` or `-` to read it).
        #[arg(long)]
        data: Option<String>,
        /// The business key (contract or unit number) to find the instance by.
        #[arg(long)]
        business_key: Option<String>,
        /// A key of your choice: repeating the command with it starts nothing new.
        #[arg(long)]
        idempotency_key: Option<String>,
        #[command(flatten)]
        engine: EngineArgs,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Fire an event on an instance.
    Fire {
        /// The instance's id, for example `hot_work_permit-1`.
        instance: String,
        /// The event, for example `approve`.
        event: String,
        #[command(flatten)]
        who: Who,
        /// Values for declared fields, as a JSON object (`@FILE` or `-` to read it).
        #[arg(long)]
        payload: Option<String>,
        /// A comment (the reason for a rejection, for example).
        #[arg(long)]
        comment: Option<String>,
        /// A key of your choice: repeating the command with it fires nothing new.
        #[arg(long)]
        idempotency_key: Option<String>,
        /// Refuse unless the instance is still at this step (see `show`).
        #[arg(long)]
        expected_seq: Option<u64>,
        #[command(flatten)]
        engine: EngineArgs,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Show an instance: state, data, pending approval and timers, children, and with
    /// --actor (or --server: the token's user) the events that actor may fire now.
    Show {
        /// The instance's id, as `start` printed it (`hot_work_permit-1`).
        instance: String,
        /// Also list the events this actor, with the --role roles, may fire now.
        #[arg(long, requires = "roles")]
        actor: Option<String>,
        /// A role the actor holds; repeat (or separate with commas) for several.
        #[arg(
            long = "role",
            value_name = "ROLE",
            requires = "actor",
            value_delimiter = ','
        )]
        roles: Vec<String>,
        #[command(flatten)]
        engine: EngineArgs,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// List instances, one line each.
    List {
        /// Only instances of this workflow (its id, `hot_work_permit`).
        #[arg(long)]
        workflow: Option<String>,
        /// Only instances in this state (its id, `security_review`).
        #[arg(long)]
        state: Option<String>,
        /// Only instances with this business key.
        #[arg(long)]
        business_key: Option<String>,
        /// At most this many (1-1000).
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1000))]
        limit: Option<u16>,
        #[command(flatten)]
        engine: EngineArgs,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Print the history of an instance, one block per step.
    History {
        /// The instance's id, as `start` printed it (`hot_work_permit-1`).
        instance: String,
        #[command(flatten)]
        engine: EngineArgs,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// List pending timers, earliest first.
    Timers {
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Fire every timer and schedule that is due now, then exit (run it from cron, or after
    /// the engine was down: what fell due meanwhile fires once, in due order).
    Tick {
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Audit the store: approval chains, exports, verification, replay, separation of duties
    /// and stored definition versions.
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// Run scenario tests (YAML) on a virtual clock, each on a throwaway store.
    Test {
        /// Scenario files or folders [default: tests/scenarios/].
        paths: Vec<PathBuf>,
        /// Also report which transitions, timers and refusals the scenarios exercised.
        #[arg(long)]
        coverage: bool,
        #[arg(long, default_value = "workflows")]
        workflows: PathBuf,
        #[arg(long, default_value = "rules")]
        rules: PathBuf,
        #[arg(long, default_value = "calendars")]
        calendars: PathBuf,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// The shortest path to every state of a workflow, and paths covering every transition:
    /// the scenarios to write (`--format scenario` writes their skeleton).
    Paths {
        /// A workflow id (looked up in --workflows) or a path to a workflow file.
        workflow: String,
        #[arg(long, value_enum, default_value_t = paths::PathsFormat::Human)]
        format: paths::PathsFormat,
        #[arg(long, default_value = "workflows")]
        workflows: PathBuf,
        #[arg(long, default_value = "rules")]
        rules: PathBuf,
    },
    /// Write the process library's pages (docs/library/): one per workflow with its diagram,
    /// and an index; `--check` fails when they are out of date.
    Docs(docs::DocsArgs),
    /// Serve the HTTP API and the web console on the data folder, with the timers running and
    /// the definition folders watched (Ctrl-C or SIGTERM stops it after the requests in flight).
    Serve(serve::ServeArgs),
    /// Check the definition files as `validate` does and, if they have no error, make them
    /// the set deployed to the store: what servers started with `--definitions store` run.
    Deploy(deploy::DeployArgs),
    /// Move a store: `sopflow store copy --from DIR --to postgres://...`.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// Make the password hashes and API tokens of the users file (config/users.yaml).
    User {
        #[command(subcommand)]
        command: serve::UserCommand,
    },
    /// Move running instances to another version of their workflow: `plan` says what would
    /// happen to each (nothing written), `apply` does it for those nothing blocks.
    Migrate {
        #[command(subcommand)]
        command: migrate::MigrateCommand,
    },
    /// Notifications a channel did not take (dead letters): list them, send them again.
    Deliveries {
        #[command(subcommand)]
        command: deliveries::DeliveriesCommand,
    },
    /// Recurring starts of workflows.
    Schedule {
        #[command(subcommand)]
        command: ScheduleCommand,
    },
}

#[derive(Debug, Subcommand)]
enum StoreCommand {
    /// Copy a sled store (a data folder) into PostgreSQL: histories with their hashes,
    /// snapshots, timers, schedule marks, idempotency keys, numbers, definition versions, the
    /// deployed set and console sessions; then compare the store digest of both sides.
    Copy(copy::CopyArgs),
}

#[derive(Debug, Subcommand)]
enum ScheduleCommand {
    /// Every schedule with its next fire times (local to its calendar).
    List {
        /// How many next fire times to show per schedule.
        #[arg(long, default_value_t = 3)]
        next: usize,
        #[command(flatten)]
        engine: EngineArgs,
    },
}

/// Who acts: `--actor ID --role R [--role R2]`; with `--server`, neither (the token decides).
#[derive(Debug, Clone, clap::Args)]
struct Who {
    /// Who acts (a person's or program's id). Not with --server.
    #[arg(long, required_unless_present = "server")]
    actor: Option<String>,
    /// A role the actor holds; repeat (or separate with commas) for several. Not with --server.
    #[arg(
        long = "role",
        value_name = "ROLE",
        required_unless_present = "server",
        value_delimiter = ','
    )]
    roles: Vec<String>,
}

impl Who {
    fn given(&self) -> bool {
        self.actor.is_some() || !self.roles.is_empty()
    }
}

/// Which format `sopflow schema` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SchemaOf {
    /// A workflow (`workflows/*.yaml`).
    Workflow,
    /// The organisation's role list (`workflows/roles.yaml`).
    Roles,
    /// A migration's mapping file (`workflows/<id>.migration.yaml`).
    Migration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    Human,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum GraphFormat {
    Mermaid,
    Dot,
}

/// Runs the command line and returns the process's exit code.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate {
            paths,
            rules,
            format,
            codes,
            lang,
        } => {
            if codes {
                print_codes(runtime::chosen_lang(lang));
                return ExitCode::SUCCESS;
            }
            validate(paths, &rules, format, lang)
        }
        Command::Schema { of } => {
            print!(
                "{}",
                match of {
                    SchemaOf::Workflow => sopflow::schema::workflow_schema_json(),
                    SchemaOf::Roles => sopflow::schema::roles_schema_json(),
                    SchemaOf::Migration => sopflow::schema::migration_schema_json(),
                }
            );
            ExitCode::SUCCESS
        }
        Command::Graph {
            workflow,
            format,
            workflows,
            rules,
        } => graph(&workflow, format, &workflows, &rules),
        Command::Start {
            workflow,
            who,
            data,
            business_key,
            idempotency_key,
            engine,
            remote,
        } => {
            if let Err(message) = remote.check(who.given()) {
                return usage_error(message);
            }
            runtime::start(
                StartArgs {
                    workflow,
                    actor: who.actor,
                    roles: who.roles,
                    data,
                    business_key,
                    idempotency_key,
                },
                &engine,
                &remote,
            )
        }
        Command::Fire {
            instance,
            event,
            who,
            payload,
            comment,
            idempotency_key,
            expected_seq,
            engine,
            remote,
        } => {
            if let Err(message) = remote.check(who.given()) {
                return usage_error(message);
            }
            runtime::fire(
                FireArgs {
                    instance,
                    event,
                    actor: who.actor,
                    roles: who.roles,
                    payload,
                    comment,
                    idempotency_key,
                    expected_seq,
                },
                &engine,
                &remote,
            )
        }
        Command::Show {
            instance,
            actor,
            roles,
            engine,
            remote,
        } => {
            if let Err(message) = remote.check(actor.is_some() || !roles.is_empty()) {
                return usage_error(message);
            }
            runtime::show(&instance, actor.map(|a| (a, roles)), &engine, &remote)
        }
        Command::List {
            workflow,
            state,
            business_key,
            limit,
            engine,
            remote,
        } => {
            if let Err(message) = remote.check(false) {
                return usage_error(message);
            }
            runtime::list(
                sopflow::store::Query {
                    workflow,
                    state,
                    business_key,
                    limit: limit.map(usize::from),
                },
                &engine,
                &remote,
            )
        }
        Command::History {
            instance,
            engine,
            remote,
        } => {
            if let Err(message) = remote.check(false) {
                return usage_error(message);
            }
            runtime::history(&instance, &engine, &remote)
        }
        Command::Timers { limit, engine } => time::timers(limit, &engine),
        Command::Tick { engine } => time::tick(&engine),
        Command::Audit { command } => audit::run(command),
        Command::Paths {
            workflow,
            format,
            workflows,
            rules,
        } => match find_workflow(&workflow, &workflows, &rules) {
            Ok(parsed) => {
                print!("{}", paths::render(&parsed, format));
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Test {
            paths,
            coverage,
            workflows,
            rules,
            calendars,
            format,
        } => {
            let paths = if paths.is_empty() {
                vec![PathBuf::from("tests/scenarios")]
            } else {
                paths
            };
            let mut sources = vec![workflows];
            sources.extend([rules, calendars].into_iter().filter(|p| p.is_dir()));
            scenarios::test(scenarios::TestArgs {
                paths,
                coverage,
                format,
                sources,
            })
        }
        Command::Docs(args) => docs::run(&args),
        Command::Serve(args) => serve::serve(&args),
        Command::Deploy(args) => deploy::deploy(&args),
        Command::Store {
            command: StoreCommand::Copy(args),
        } => copy::run(&args),
        Command::User { command } => serve::user(&command),
        Command::Migrate { command } => migrate::run(command),
        Command::Deliveries { command } => deliveries::run(command),
        Command::Schedule {
            command: ScheduleCommand::List { next, engine },
        } => time::schedules(next, &engine),
    }
}

fn usage_error(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}

/// Loads `paths`, plus the rules folder when the paths hold no rules file themselves (workflow
/// files given alone still resolve their rule references). Returns whether it was added.
fn load(paths: &[PathBuf], rules: &Path) -> Result<(LoadReport, bool), CatalogError> {
    let mut sources = Sources::read(paths)?;
    let added = sources.rules.is_empty() && rules.is_dir();
    if added {
        sources.rules = Sources::read(&[rules.to_path_buf()])?.rules;
    }
    let sandbox = Sandbox::default();
    Ok((catalog::build(sources, &sandbox), added))
}

/// `sopflow validate`. A person reads the report in the language asked for (`--lang`,
/// `SOPFLOW_LANG`), else the locale's; the JSON for tools is English unless a language is
/// asked for, whatever the locale, so that a script's output does not change with the
/// machine it runs on (its codes never do).
fn validate(paths: Vec<PathBuf>, rules: &Path, format: Format, asked: Option<Lang>) -> ExitCode {
    let paths = if paths.is_empty() {
        if !Path::new("workflows").is_dir() {
            return usage_error(
                "there is no workflows/ folder here: run from the project folder, or pass the files to check",
            );
        }
        let mut defaults = vec![PathBuf::from("workflows")];
        if rules.is_dir() {
            defaults.push(rules.to_path_buf());
        }
        if Path::new("calendars").is_dir() {
            defaults.push(PathBuf::from("calendars"));
        }
        defaults
    } else {
        paths
    };
    let (mut report, rules_added) = match load(&paths, rules) {
        Ok(loaded) => loaded,
        Err(err) => return usage_error(err),
    };
    if rules_added {
        // Rules were loaded only to resolve references from the files given: do not warn
        // about rules those files happen not to use.
        report.diagnostics.retain(|d| d.code != Code::UnusedRule);
    }
    let ok = !report.has_errors();
    match format {
        Format::Json => println!(
            "{}",
            render::json(ok, &report.diagnostics, asked.unwrap_or(Lang::En))
        ),
        Format::Human => {
            let lang = runtime::chosen_lang(asked);
            let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            print!(
                "{}",
                render::human(&report.diagnostics, &report.texts, color, lang)
            );
            let counts = [
                ("files", report.texts.len().to_string()),
                ("valid", report.catalog.definitions.len().to_string()),
                ("errors", report.errors().to_string()),
                ("warnings", report.warnings().to_string()),
            ];
            let args: Vec<(&str, &str)> = counts.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let summary = if ok { "validate-ok" } else { "validate-failed" };
            println!("{}", lang.text_with(summary, &args));
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn graph(workflow: &str, format: GraphFormat, workflows: &Path, rules: &Path) -> ExitCode {
    let parsed = match find_workflow(workflow, workflows, rules) {
        Ok(parsed) => parsed,
        Err(code) => return code,
    };
    match format {
        GraphFormat::Mermaid => print!("{}", sopflow::diagram::mermaid(&parsed)),
        GraphFormat::Dot => print!("{}", sopflow::diagram::dot(&parsed)),
    }
    ExitCode::SUCCESS
}

/// A workflow by id (in `workflows`) or by file path, parsed even if it has errors (with a
/// warning), or the exit code of why it cannot be found.
fn find_workflow(
    workflow: &str,
    workflows: &Path,
    rules: &Path,
) -> Result<sopflow::definition::Workflow, ExitCode> {
    let as_path = Path::new(workflow);
    // A file is read with its folder loaded too, so that its references to sibling workflows
    // resolve; the id comes from the file itself.
    let (folder, id) = if as_path.is_file() {
        let text = std::fs::read_to_string(as_path).unwrap_or_default();
        let id = sopflow::definition::parse_workflow(as_path, &text)
            .map(|w| w.id.value)
            .unwrap_or_default();
        let parent = as_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        (parent.to_path_buf(), id)
    } else if workflows.is_dir() {
        (workflows.to_path_buf(), workflow.to_string())
    } else {
        return Err(usage_error(format!(
            "`{workflow}` is not a file, and there is no {} folder to look it up in",
            display_path(workflows)
        )));
    };
    let (report, _) = match load(&[folder], rules) {
        Ok(loaded) => loaded,
        Err(err) => return Err(usage_error(err)),
    };
    let Some(parsed) = report.workflow(&id) else {
        let known: Vec<&str> = report.workflow_ids().collect();
        eprintln!(
            "error: no workflow `{workflow}` could be read; {}",
            sopflow::diagnostic::suggestion(workflow, known.iter().copied())
        );
        eprint!(
            "{}",
            render::human(
                &report.diagnostics,
                &report.texts,
                false,
                runtime::chosen_lang(None)
            )
        );
        return Err(ExitCode::from(1));
    };
    if !report.catalog.definitions.contains_key(parsed.id.as_str()) {
        eprintln!(
            "warning: `{}` has errors (run `sopflow validate`); it is shown as written",
            parsed.id.as_str()
        );
    }
    Ok(parsed.clone())
}

/// The table of diagnostic codes; in English it is the README's table.
fn print_codes(lang: Lang) {
    println!(
        "{}\n| --- | --- | --- | --- |",
        lang.text("codes-table-head")
    );
    for &code in Code::ALL {
        let (name, severity) = match lang {
            Lang::En => (code.slug().to_string(), code.severity().to_string()),
            Lang::Zh => (lang.code_title(code), lang.severity(code.severity())),
        };
        println!(
            "| {} | {name} | {severity} | {} |",
            code.as_str(),
            lang.code_meaning(code)
        );
    }
}
