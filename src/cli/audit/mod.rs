//! `sopflow audit`: the auditor's commands. Each opens the store read-only (the data folder
//! must exist), asks [`sopflow::audit`] through the [`Engine`](sopflow::engine::Engine), and
//! prints for a person, a program (JSON) or a spreadsheet (CSV). `chain`, `export` and
//! `verify` also run through a server (`--server`, with an auditor's token), which holds the
//! store while it runs; the output is the same.

mod chain;
mod definition;
mod export;
mod replay;
mod sod;
mod verify;

use super::Format;
use super::remote::RemoteArgs;
use super::runtime::StoreArgs;
use clap::{Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

/// How an approval chain is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ChainFormat {
    Human,
    Json,
    Csv,
}

/// How an export is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Csv,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// The approval chain of an instance: each approval or rejection with actor, role, time,
    /// comment, the guards that routed it and the definition version it ran under.
    Chain {
        /// The instance's id, for example `hot_work_permit-1`.
        instance: String,
        #[arg(long, value_enum, default_value_t = ChainFormat::Human)]
        format: ChainFormat,
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Every approval step matching the query, one row each (streamed, for a spreadsheet).
    Export {
        /// Only this workflow.
        #[arg(long)]
        workflow: Option<String>,
        /// From this date or time (`2026-11-01`, or RFC 3339), inclusive.
        #[arg(long)]
        from: Option<String>,
        /// Up to this date (inclusive: the whole day) or time.
        #[arg(long)]
        to: Option<String>,
        /// Only steps by this actor.
        #[arg(long)]
        actor: Option<String>,
        /// CSV (for a spreadsheet) or JSON lines (for a program).
        #[arg(long, value_enum, default_value_t = ExportFormat::Csv)]
        format: ExportFormat,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Begin the CSV with a UTF-8 byte-order mark, without which Excel on Windows shows
        /// the Chinese garbled.
        #[arg(long)]
        bom: bool,
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Recompute every hash chain, check every snapshot against its history, the indexes
    /// against the snapshots and every definition version against its stored sources; print
    /// the store digest. Exit 1 on any break.
    Verify {
        /// Compute the digest as of this time (RFC 3339) [default: now].
        #[arg(long)]
        as_of: Option<String>,
        /// A digest written down earlier (`TIME:HEX`, as printed): check the store still has
        /// exactly the entries it covered.
        #[arg(long)]
        digest: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Run the recorded commands through the pure step with the recorded definition version
    /// and compare states, data and guard results with the history.
    #[command(group(clap::ArgGroup::new("which").required(true).args(["instance", "all"])))]
    Replay {
        /// One instance.
        instance: Option<String>,
        /// Every instance in the store.
        #[arg(long)]
        all: bool,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Instances where one actor did two steps that must be done by two people (a
    /// distinct-actors constraint of the current or the recorded definition, or --separate).
    Sod {
        /// Only this workflow.
        #[arg(long)]
        workflow: Option<String>,
        /// Steps (`state.event`, or just `event`) that must be done by different people,
        /// comma-separated; repeat for several rules.
        #[arg(long, value_name = "STEP,STEP")]
        separate: Vec<String>,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Print the exact YAML and rhai sources of a stored definition version.
    Definition {
        /// The version's hash (as shown in histories and approval chains; a unique prefix of
        /// at least 8 characters will do).
        hash: String,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub fn run(command: AuditCommand) -> ExitCode {
    let remote = match &command {
        AuditCommand::Chain { remote, .. }
        | AuditCommand::Export { remote, .. }
        | AuditCommand::Verify { remote, .. } => Some(remote),
        _ => None,
    };
    if let Some(Err(message)) = remote.map(|r| r.check(false)) {
        return super::usage_error(message);
    }
    match command {
        AuditCommand::Chain {
            instance,
            format,
            store,
            remote,
        } => chain::run(&instance, format, &store, &remote),
        AuditCommand::Export {
            workflow,
            from,
            to,
            actor,
            format,
            output,
            bom,
            store,
            remote,
        } => export::run(
            export::Filters {
                workflow,
                from,
                to,
                actor,
            },
            format,
            output,
            bom,
            &store,
            &remote,
        ),
        AuditCommand::Verify {
            as_of,
            digest,
            format,
            store,
            remote,
        } => verify::run(as_of, digest, format, &store, &remote),
        AuditCommand::Replay {
            instance,
            all: _,
            format,
            store,
        } => replay::run(instance, format, &store),
        AuditCommand::Sod {
            workflow,
            separate,
            format,
            store,
        } => sod::run(workflow, separate, format, &store),
        AuditCommand::Definition {
            hash,
            format,
            store,
        } => definition::run(&hash, format, &store),
    }
}

/// A progress counter on standard error, drawn only when it is a terminal (hidden otherwise,
/// so that pipes and CI logs stay clean).
pub(super) fn progress_bar(what: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner();
    let style = indicatif::ProgressStyle::with_template(
        "{spinner} {msg} {human_pos} entries ({per_sec}, {elapsed})",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner());
    bar.set_style(style);
    bar.set_message(what.to_string());
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}
