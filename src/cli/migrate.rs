//! `sopflow migrate plan | apply`: moving running instances to another version of their
//! workflow. The engine decides everything ([`Engine::migration_plan`], [`Engine::migrate`]);
//! this reads the mapping (a file and flags), streams what comes back, and counts.
//!
//! Output: `--format human` is one block per instance in the reader's language (titles, not
//! ids) and a closing summary; `--format json` is JSON Lines, one object per instance
//! (`{"verdict": "clean"|"blocked", "plan": ...}` for a plan, `{"outcome": "migrated", "entry":
//! ...}` or `{"outcome": "blocked", "plan": ...}` for an apply), then `{"summary": ...}`; the
//! blockers carry their stable `code`.
//!
//! Exit codes: 0 done (a plan, whatever its verdicts; an apply that left nothing blocked),
//! 1 error (unknown workflow or version, bad mapping, not a process owner, store), 2 usage,
//! 3 an apply that left blocked instances where they are (the others were migrated).

use super::Format;
use super::runtime::{self, EngineArgs, Failure};
use serde_json::{Value, json};
use sopflow::definition::Definition;
use sopflow::engine::{Engine, MigrationRequest, MigrationSummary, Moved};
use sopflow::i18n::{self, Lang};
use sopflow::machine::migrate::{Mapping, Plan, TimerPolicy};
use sopflow::machine::{Actor, Entry};
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// `sopflow migrate`.
#[derive(Debug, clap::Subcommand)]
pub enum MigrateCommand {
    /// What migrating the running instances would do to each: the state it lands in, fields,
    /// approvals, timers, children, the way ahead, and a verdict with its reasons. Nothing is
    /// written.
    Plan(MigrateArgs),
    /// Migrate the instances whose plan is clean, each by one `migrate` step in the history;
    /// blocked instances are left where they are and listed. Running it again moves only what
    /// is left (after a crash too).
    Apply {
        #[command(flatten)]
        args: MigrateArgs,
        /// Why, recorded in each instance's `migrate` step.
        #[arg(long)]
        comment: Option<String>,
    },
}

/// What `plan` and `apply` share.
#[derive(Debug, Clone, clap::Args)]
pub struct MigrateArgs {
    /// The workflow's id, for example `renovation_approval`.
    pub workflow: String,
    /// Only instances on this version (its hash, or at least 6 of its first hex digits);
    /// by default every other version.
    #[arg(long, value_name = "VERSION")]
    pub from: Option<String>,
    /// The version to move to: `current` (the one the workflow files give now), or a stored
    /// version's hash (or at least 6 of its first hex digits).
    #[arg(long, value_name = "VERSION|current")]
    pub to: String,
    /// Where the instances in a state wait from now on: `--map old_state=new_state`; repeat
    /// for several. Over the mapping file's `states`.
    #[arg(long = "map", value_name = "OLD=NEW")]
    pub map: Vec<String>,
    /// A mapping file (YAML, `schemas/migration.schema.json`), kept next to the workflow as
    /// `workflows/<id>.migration.yaml`; the flags add to it.
    #[arg(long, value_name = "FILE")]
    pub mapping: Option<PathBuf>,
    /// Give a field a value: `--set field=value` (JSON if it reads as JSON, else text); a
    /// migration changes no recorded data otherwise.
    #[arg(long = "set", value_name = "FIELD=VALUE")]
    pub set: Vec<String>,
    /// Drop the signatures the new approval has no signer for, instead of leaving those
    /// instances where they are.
    #[arg(long)]
    pub drop_signatures: bool,
    /// Pending timers: `keep` (those the new state still has, with their due times) or
    /// `rearm` (all armed again from the time of the move).
    #[arg(long, value_enum)]
    pub timers: Option<TimersArg>,
    /// Only these instances (ids or readable numbers); repeat or separate with commas.
    #[arg(long, value_name = "ID", value_delimiter = ',')]
    pub only: Vec<String>,
    /// Only instances in a state: `--where state=STATE`.
    #[arg(long = "where", value_name = "state=STATE", value_parser = where_arg)]
    pub state: Option<String>,
    /// The process owner who migrates.
    #[arg(long)]
    pub actor: String,
    /// The actor's roles; migrating needs `process_owner`.
    #[arg(
        long = "role",
        value_name = "ROLE",
        required = true,
        value_delimiter = ','
    )]
    pub roles: Vec<String>,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// `--timers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TimersArg {
    Keep,
    Rearm,
}

fn where_arg(text: &str) -> Result<String, String> {
    match text.split_once('=') {
        Some(("state", state)) if !state.is_empty() => Ok(state.to_string()),
        _ => Err(format!(
            "`{text}` is not a filter sopflow knows; give state=STATE"
        )),
    }
}

pub fn run(command: MigrateCommand) -> ExitCode {
    match command {
        MigrateCommand::Plan(args) => plan(&args),
        MigrateCommand::Apply { args, comment } => apply(&args, comment),
    }
}

/// The request the arguments make, or why they cannot make one (nothing was opened).
fn request(args: &MigrateArgs, comment: Option<String>) -> Result<MigrationRequest, Failure> {
    let mut mapping = match &args.mapping {
        Some(path) => read_mapping(path)?,
        None => Mapping::default(),
    };
    for pair in &args.map {
        let (from, to) = pair
            .split_once('=')
            .filter(|(from, to)| !from.is_empty() && !to.is_empty())
            .ok_or_else(|| Failure::Input(format!("--map {pair}: give old_state=new_state")))?;
        mapping.states.insert(from.to_string(), to.to_string());
    }
    for pair in &args.set {
        let (field, value) = pair
            .split_once('=')
            .filter(|(field, _)| !field.is_empty())
            .ok_or_else(|| Failure::Input(format!("--set {pair}: give field=value")))?;
        let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.into()));
        mapping.set.insert(field.to_string(), value);
    }
    mapping.drop_signatures |= args.drop_signatures;
    match args.timers {
        Some(TimersArg::Keep) => mapping.timers = TimerPolicy::Keep,
        Some(TimersArg::Rearm) => mapping.timers = TimerPolicy::Rearm,
        None => {}
    }
    let mut request = MigrationRequest::new(
        &args.workflow,
        &args.to,
        Actor::new(&args.actor, &args.roles),
    );
    request.from = args.from.clone();
    request.mapping = mapping;
    request.only = args.only.clone();
    request.state = args.state.clone();
    request.comment = comment;
    Ok(request)
}

/// A mapping file: YAML of the [`Mapping`] shape.
fn read_mapping(path: &std::path::Path) -> Result<Mapping, Failure> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::Input(format!("--mapping {shown}: cannot read the file: {e}")))?;
    serde_saphyr::from_str::<Mapping>(&text).map_err(|e| {
        Failure::Input(format!(
            "--mapping {shown} is not a mapping (states, set, drop_signatures, timers; see schemas/migration.schema.json): {e}"
        ))
    })
}

/// Prints each line as it comes, whatever the reader does with stdout.
fn out(line: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
}

/// Definition versions by hash, looked up once each.
struct Defs {
    engine: Engine,
    seen: HashMap<String, Arc<Definition>>,
}

impl Defs {
    fn get(&mut self, hash: &str) -> Option<Arc<Definition>> {
        if let Some(def) = self.seen.get(hash) {
            return Some(def.clone());
        }
        let def = self.engine.definition(hash).ok()?;
        self.seen.insert(hash.to_string(), def.clone());
        Some(def)
    }
}

/// A plan in the reader's words: its heading and each line, indented.
fn plan_block(lang: Lang, defs: &mut Defs, plan: &Plan) -> String {
    let old = defs.get(&plan.from_version);
    let new = defs.get(&plan.to_version);
    let (Some(old), Some(new)) = (old, new) else {
        // A version that cannot be rebuilt: the codes, at least.
        let codes: Vec<&str> = plan.blockers.iter().map(|b| b.code()).collect();
        return format!("{} ({}) {}", plan.instance, plan.state, codes.join(", "));
    };
    let mut block = heading(lang, "migration-instance", &old, plan);
    for line in i18n::plan_lines(lang, &old, &new, plan) {
        block.push_str("\n  ");
        block.push_str(&line);
    }
    block
}

fn heading(lang: Lang, id: &str, old: &Definition, plan: &Plan) -> String {
    let instance = match &plan.number {
        Some(number) => format!("{} {number}", plan.instance),
        None => plan.instance.clone(),
    };
    lang.text_with(
        id,
        &[
            ("instance", &instance),
            ("state", old.workflow.state_title(&plan.state)),
        ],
    )
}

fn plan(args: &MigrateArgs) -> ExitCode {
    let format = args.engine.format;
    let lang = args.engine.lang();
    let request = match request(args, None) {
        Ok(request) => request,
        Err(failure) => return fail(format, &failure),
    };
    let result = runtime::with_engine(args.engine.config(false), async |engine| {
        let mut defs = Defs {
            engine: engine.clone(),
            seen: HashMap::new(),
        };
        engine
            .migration_plan(request, move |plan| match format {
                Format::Json => out(&json!({
                    "verdict": if plan.is_clean() { "clean" } else { "blocked" },
                    "plan": plan,
                })
                .to_string()),
                Format::Human => out(&format!("{}\n", plan_block(lang, &mut defs, &plan))),
            })
            .await
    });
    match result {
        Ok(summary) => {
            summary_line(format, lang, "migration-plan-summary", &summary);
            ExitCode::SUCCESS
        }
        Err(failure) => fail(format, &failure),
    }
}

fn apply(args: &MigrateArgs, comment: Option<String>) -> ExitCode {
    let format = args.engine.format;
    let lang = args.engine.lang();
    let request = match request(args, comment) {
        Ok(request) => request,
        Err(failure) => return fail(format, &failure),
    };
    let result = runtime::with_engine(args.engine.config(false), async |engine| {
        let mut defs = Defs {
            engine: engine.clone(),
            seen: HashMap::new(),
        };
        engine
            .migrate(request, |moved| match format {
                Format::Json => out(&serde_json::to_string(&moved).unwrap_or_default()),
                Format::Human => out(&moved_text(lang, &mut defs, &moved)),
            })
            .await
    });
    match result {
        Ok(summary) => {
            summary_line(format, lang, "migration-apply-summary", &summary);
            if summary.blocked == 0 {
                return ExitCode::SUCCESS;
            }
            if format == Format::Human {
                eprintln!(
                    "{}",
                    lang.text_with(
                        "migration-apply-blocked",
                        &[("blocked", &summary.blocked.to_string())]
                    )
                );
            }
            ExitCode::from(3)
        }
        Err(failure) => fail(format, &failure),
    }
}

/// What an apply did to one instance, in the reader's words.
fn moved_text(lang: Lang, defs: &mut Defs, moved: &Moved) -> String {
    match moved {
        Moved::Migrated { entry } => migrated_line(lang, defs, entry),
        Moved::Blocked { plan } => {
            let (Some(old), Some(new)) = (defs.get(&plan.from_version), defs.get(&plan.to_version))
            else {
                return plan_block(lang, defs, plan);
            };
            let mut block = heading(lang, "migration-left", &old, plan);
            for blocker in &plan.blockers {
                block.push_str("\n  ");
                block.push_str(&i18n::blocker_text(
                    lang,
                    &old.workflow,
                    &new.workflow,
                    blocker,
                ));
            }
            block
        }
    }
}

fn migrated_line(lang: Lang, defs: &mut Defs, entry: &Entry) -> String {
    let state = defs
        .get(&entry.version)
        .map(|def| def.workflow.state_title(&entry.to).to_string())
        .unwrap_or_else(|| entry.to.to_string());
    lang.text_with(
        "migration-migrated",
        &[
            ("instance", &entry.instance),
            ("state", &state),
            ("seq", &entry.seq.to_string()),
        ],
    )
}

fn summary_line(format: Format, lang: Lang, id: &str, summary: &MigrationSummary) {
    match format {
        Format::Json => out(&json!({ "summary": summary }).to_string()),
        Format::Human => {
            let counts = [
                ("workflow", summary.workflow.clone()),
                ("version", short(&summary.to_version).to_string()),
                ("considered", summary.considered.to_string()),
                ("clean", summary.clean.to_string()),
                ("blocked", summary.blocked.to_string()),
                ("current", summary.current.to_string()),
            ];
            let args: Vec<(&str, &str)> = counts.iter().map(|(k, v)| (*k, v.as_str())).collect();
            out(&lang.text_with(id, &args));
        }
    }
}

/// A failure: in JSON one line like the others (`{"error": {"code", "message"}}`), so that
/// the output stays JSON Lines; in words as every command says it.
fn fail(format: Format, failure: &Failure) -> ExitCode {
    let (code, message) = match failure {
        Failure::Input(message) => ("bad_input", message.clone()),
        Failure::Runtime(message) => ("runtime", message.clone()),
        Failure::Engine(err) => (err.code(), err.to_string()),
        _ => return runtime::report(format, failure),
    };
    match format {
        Format::Json => out(&json!({"error": {"code": code, "message": message}}).to_string()),
        Format::Human => eprintln!("error: {message}"),
    }
    ExitCode::from(1)
}

/// The first 12 hex digits of a `sha256:` hash, as people read it.
fn short(hash: &str) -> &str {
    let hex = hash.strip_prefix("sha256:").unwrap_or(hash);
    hex.get(..12).unwrap_or(hex)
}
