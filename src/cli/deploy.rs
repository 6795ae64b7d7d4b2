//! `sopflow deploy`: checks the definition files as `validate` does and, when they have no
//! error, makes them the set deployed to the store, which every server started with
//! `--definitions store` runs and follows.

use super::runtime::{self, Failure, StoreArgs};
use super::{Format, render};
use sopflow::deploy::{self, Deployed};
use sopflow::engine::{CURRENT, MigrationRequest};
use sopflow::i18n::Lang;
use sopflow::machine::Actor;
use sopflow::script::Sandbox;
use std::io::IsTerminal;
use std::process::ExitCode;

/// `sopflow deploy`.
#[derive(Debug, Clone, clap::Args)]
pub struct DeployArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Who deploys, as recorded with the set [default: the login name, `$USER`].
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// The language of the report: `zh` or `en`. By default the locale's, else English.
    #[arg(long, env = "SOPFLOW_LANG", value_parser = runtime::lang_arg)]
    pub lang: Option<Lang>,
}

pub fn deploy(args: &DeployArgs) -> ExitCode {
    let config = args.store.config(true);
    let location = args.store.location();
    let shown = location.redacted();
    let sources = match sopflow::catalog::Sources::read(&config.sources) {
        Ok(sources) => sources,
        Err(err) => {
            eprintln!("error: {err}; run from the project folder, or pass --workflows and --rules");
            return ExitCode::from(2);
        }
    };
    let by = args
        .by
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .or_else(|| std::env::var("USERNAME").ok())
        .unwrap_or_else(|| "unknown".into());
    let sandbox = Sandbox::new(config.limits);
    let (report, deployment) = deploy::prepare(sources, &sandbox, &by, chrono::Utc::now());
    let lang = runtime::chosen_lang(args.lang);
    let Some(deployment) = deployment else {
        match args.format {
            Format::Json => println!(
                "{}",
                render::json(false, &report.diagnostics, args.lang.unwrap_or(Lang::En))
            ),
            Format::Human => {
                let color =
                    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
                eprint!(
                    "{}",
                    render::human(&report.diagnostics, &report.texts, color, lang)
                );
            }
        }
        eprintln!(
            "error: not deployed: {} error(s) in the definitions, and the set deployed to {shown} is unchanged; fix them (`sopflow validate` shows the same report) and deploy again",
            report.errors()
        );
        return ExitCode::from(1);
    };
    let done = deploy::deploy(&location, &deployment);
    let done = match done {
        Ok(done) => done,
        Err(err) => {
            eprintln!("error: not deployed: {err}");
            return ExitCode::from(1);
        }
    };
    let set = &deployment.set;
    let gates = gates(
        args,
        &by,
        set.versions.iter().map(|(w, _)| w.clone()).collect(),
    );
    match args.format {
        Format::Json => {
            let value = serde_json::json!({
                "ok": true,
                "deployed": matches!(done, Deployed::New { .. }),
                "set": set.id,
                "previous": match &done {
                    Deployed::New { previous } => previous.clone(),
                    Deployed::AlreadyDeployed => Some(set.id.clone()),
                },
                "versions": set.versions.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
                "by": set.by,
                "at": set.at,
                "diagnostics": report.diagnostics.iter().map(|d| d.to_json(args.lang.unwrap_or(Lang::En))).collect::<Vec<_>>(),
                "older_instances": match &gates {
                    Ok(gates) => serde_json::json!(gates.iter().filter(|g| g.older > 0).map(|g| serde_json::json!({
                        "workflow": g.workflow,
                        "older": g.older,
                        "clean": g.clean,
                    })).collect::<Vec<_>>()),
                    Err(_) => serde_json::Value::Null,
                },
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&value).unwrap_or_else(|_| "{}".into())
            );
        }
        Format::Human => {
            match done {
                Deployed::New { .. } => println!(
                    "deployed {} workflow(s) to {shown} as set {} ({} warning(s)); servers running the deployed set start new instances on it, and running instances keep their versions",
                    set.versions.len(),
                    short(&set.id),
                    report.warnings()
                ),
                Deployed::AlreadyDeployed => println!(
                    "already deployed: {shown} runs these files as set {}; nothing changed",
                    short(&set.id)
                ),
            }
            for (workflow, hash) in &set.versions {
                println!("  {workflow} {}", short(hash));
            }
            print_gates(lang, &gates);
        }
    }
    ExitCode::SUCCESS
}

/// The first 12 hex digits of a `sha256:` hash, as people read it.
fn short(hash: &str) -> &str {
    let hex = hash.strip_prefix("sha256:").unwrap_or(hash);
    hex.get(..12).unwrap_or(hex)
}

/// One workflow's running instances on older versions than the one deployed.
struct Gate {
    workflow: String,
    older: u64,
    clean: u64,
}

/// The deploy gate: for each workflow deployed, how many running instances stay on older
/// versions and how many of them have a clean plan to the version deployed. Counted with the
/// engine over the store (a plan per instance, nothing written).
fn gates(args: &DeployArgs, by: &str, workflows: Vec<String>) -> Result<Vec<Gate>, String> {
    let actor = Actor::new(by, [sopflow::definition::model::PROCESS_OWNER_ROLE]);
    // The engine runs the set just deployed, as every server following the store does.
    let mut config = args.store.config(false);
    config.definitions = sopflow::engine::DefinitionSource::Deployed;
    runtime::with_engine(config, async move |engine| {
        let mut gates = Vec::new();
        for workflow in workflows {
            let request = MigrationRequest::new(&workflow, CURRENT, actor.clone());
            let summary = engine.migration_plan(request, |_| {}).await?;
            gates.push(Gate {
                workflow,
                older: summary.considered,
                clean: summary.clean,
            });
        }
        Ok(gates)
    })
    .map_err(|failure| match failure {
        Failure::Engine(err) => err.to_string(),
        Failure::Input(message) | Failure::Runtime(message) => message,
        Failure::Refused { reason, .. } => reason,
        Failure::Remote { message, .. } => message,
    })
}

/// The gate in the reader's language: each workflow with instances on older versions.
fn print_gates(lang: Lang, gates: &Result<Vec<Gate>, String>) {
    match gates {
        Ok(gates) => {
            let mut any = false;
            for gate in gates.iter().filter(|g| g.older > 0) {
                any = true;
                println!(
                    "{}",
                    lang.text_with(
                        "deploy-gate",
                        &[
                            ("workflow", gate.workflow.as_str()),
                            ("older", &gate.older.to_string()),
                            ("clean", &gate.clean.to_string()),
                        ],
                    )
                );
            }
            if !any {
                println!("{}", lang.text("deploy-gate-none"));
            }
        }
        Err(error) => eprintln!(
            "{}",
            lang.text_with("deploy-gate-unknown", &[("error", error.as_str())])
        ),
    }
}
