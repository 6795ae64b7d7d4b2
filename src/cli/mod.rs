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
mod definitions;
mod deliveries;
mod deploy;
mod docs;
mod instances;
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
use runtime::EngineArgs;
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
    Validate(definitions::ValidateArgs),
    /// Print the JSON Schema (draft-07) of the workflow format, of the role list, or of a
    /// migration's mapping file.
    Schema(definitions::SchemaArgs),
    /// Draw a workflow as a Mermaid or Graphviz DOT diagram.
    Graph(definitions::GraphArgs),
    /// Start an instance of a workflow.
    Start(instances::StartCommand),
    /// Fire an event on an instance.
    Fire(instances::FireCommand),
    /// Show an instance: state, data, pending approval and timers, children, and with
    /// --actor (or --server: the token's user) the events that actor may fire now.
    Show(instances::ShowCommand),
    /// List instances, one line each.
    List(instances::ListCommand),
    /// Print the history of an instance, one block per step.
    History(instances::HistoryCommand),
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
    Test(scenarios::TestCommand),
    /// The shortest path to every state of a workflow, and paths covering every transition:
    /// the scenarios to write (`--format scenario` writes their skeleton).
    Paths(definitions::PathsArgs),
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    Human,
    Json,
}

/// Runs the command line and returns the process's exit code.
pub fn run() -> ExitCode {
    match Cli::parse().command {
        Command::Validate(args) => args.run(),
        Command::Schema(args) => args.run(),
        Command::Graph(args) => args.run(),
        Command::Start(command) => command.run(),
        Command::Fire(command) => command.run(),
        Command::Show(command) => command.run(),
        Command::List(command) => command.run(),
        Command::History(command) => command.run(),
        Command::Timers { limit, engine } => time::timers(limit, &engine),
        Command::Tick { engine } => time::tick(&engine),
        Command::Audit { command } => audit::run(command),
        Command::Paths(args) => args.run(),
        Command::Test(command) => command.run(),
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
