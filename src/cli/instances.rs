//! The commands on instances, `start`, `fire`, `show`, `list` and `history`: their arguments,
//! checked against `--server` (through a server the token says who acts, so `--actor` and
//! `--role` are refused there), then run on the store (`runtime`) or through the server
//! (`remote`).

use super::remote::RemoteArgs;
use super::runtime::{self, EngineArgs, FireArgs, StartArgs};
use super::usage_error;
use std::process::ExitCode;

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

/// `sopflow start`.
#[derive(Debug, clap::Args)]
pub struct StartCommand {
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
}

impl StartCommand {
    pub fn run(self) -> ExitCode {
        if let Err(message) = self.remote.check(self.who.given()) {
            return usage_error(message);
        }
        let args = StartArgs {
            workflow: self.workflow,
            actor: self.who.actor,
            roles: self.who.roles,
            data: self.data,
            business_key: self.business_key,
            idempotency_key: self.idempotency_key,
        };
        runtime::start(args, &self.engine, &self.remote)
    }
}

/// `sopflow fire`.
#[derive(Debug, clap::Args)]
pub struct FireCommand {
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
}

impl FireCommand {
    pub fn run(self) -> ExitCode {
        if let Err(message) = self.remote.check(self.who.given()) {
            return usage_error(message);
        }
        let args = FireArgs {
            instance: self.instance,
            event: self.event,
            actor: self.who.actor,
            roles: self.who.roles,
            payload: self.payload,
            comment: self.comment,
            idempotency_key: self.idempotency_key,
            expected_seq: self.expected_seq,
        };
        runtime::fire(args, &self.engine, &self.remote)
    }
}

/// `sopflow show`.
#[derive(Debug, clap::Args)]
pub struct ShowCommand {
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
}

impl ShowCommand {
    pub fn run(self) -> ExitCode {
        if let Err(message) = self
            .remote
            .check(self.actor.is_some() || !self.roles.is_empty())
        {
            return usage_error(message);
        }
        let who = self.actor.map(|actor| (actor, self.roles));
        runtime::show(&self.instance, who, &self.engine, &self.remote)
    }
}

/// `sopflow list`.
#[derive(Debug, clap::Args)]
pub struct ListCommand {
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
}

impl ListCommand {
    pub fn run(self) -> ExitCode {
        if let Err(message) = self.remote.check(false) {
            return usage_error(message);
        }
        let query = sopflow::store::Query {
            workflow: self.workflow,
            state: self.state,
            business_key: self.business_key,
            limit: self.limit.map(usize::from),
        };
        runtime::list(query, &self.engine, &self.remote)
    }
}

/// `sopflow history`.
#[derive(Debug, clap::Args)]
pub struct HistoryCommand {
    /// The instance's id, as `start` printed it (`hot_work_permit-1`).
    instance: String,
    #[command(flatten)]
    engine: EngineArgs,
    #[command(flatten)]
    remote: RemoteArgs,
}

impl HistoryCommand {
    pub fn run(self) -> ExitCode {
        if let Err(message) = self.remote.check(false) {
            return usage_error(message);
        }
        runtime::history(&self.instance, &self.engine, &self.remote)
    }
}
