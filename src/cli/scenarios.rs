//! `sopflow test`: runs scenario files and prints pass or fail per scenario (with the first
//! mismatch at its file:line:column), then `N passed, N failed`, and with `--coverage` what of
//! each workflow the scenarios exercised.

use super::Format;
use sopflow::catalog::{self, Sources};
use sopflow::scenario::coverage::{Coverage, coverage};
use sopflow::scenario::run::{Exercised, Outcome, run_file};
use sopflow::script::Sandbox;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `sopflow test`, as given on the command line.
#[derive(Debug, clap::Args)]
pub struct TestCommand {
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
}

impl TestCommand {
    /// Runs the scenarios against the workflows and rules, and the calendars when that folder
    /// exists.
    pub fn run(self) -> ExitCode {
        let paths = if self.paths.is_empty() {
            vec![PathBuf::from("tests/scenarios")]
        } else {
            self.paths
        };
        let mut sources = vec![self.workflows];
        sources.extend(
            [self.rules, self.calendars]
                .into_iter()
                .filter(|p| p.is_dir()),
        );
        test(TestArgs {
            paths,
            coverage: self.coverage,
            format: self.format,
            sources,
        })
    }
}

pub struct TestArgs {
    pub paths: Vec<PathBuf>,
    pub coverage: bool,
    pub format: Format,
    /// Workflow, rules and calendar files or folders the scenarios run against.
    pub sources: Vec<PathBuf>,
}

pub fn test(args: TestArgs) -> ExitCode {
    let mut files = Vec::new();
    for path in &args.paths {
        if let Err(message) = collect(path, &mut files) {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    }
    files.sort();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let mut outcomes: Vec<Outcome> = Vec::new();
    for file in &files {
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(e) => {
                eprintln!("error: {}: cannot read: {e}", file.display());
                return ExitCode::from(2);
            }
        };
        outcomes.extend(runtime.block_on(run_file(file, &text, &args.sources)));
    }
    drop(runtime);
    let coverage = if args.coverage {
        // Scenario files given one by one: the workflows they are about. A folder is a suite:
        // every loaded workflow, so that one without scenarios shows as untested.
        let only: Option<std::collections::BTreeSet<&str>> = args
            .paths
            .iter()
            .all(|p| p.is_file())
            .then(|| outcomes.iter().map(|o| o.workflow.as_str()).collect());
        let mut coverage = report_coverage(&args.sources, &outcomes);
        if let Some(only) = only {
            coverage.retain(|c| only.contains(c.workflow.as_str()));
        }
        coverage
    } else {
        Vec::new()
    };
    let failed = outcomes.iter().filter(|o| o.failure.is_some()).count();
    let passed = outcomes.len() - failed;
    match args.format {
        Format::Json => {
            let json = serde_json::json!({
                "scenarios": outcomes,
                "passed": passed,
                "failed": failed,
                "coverage": if args.coverage { Some(&coverage) } else { None },
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&json).unwrap_or_default()
            );
        }
        Format::Human => print!("{}", human(&outcomes, &coverage, passed, failed)),
    }
    if outcomes.is_empty() {
        // A run that checked nothing proves nothing: a misnamed folder must not pass.
        eprintln!(
            "error: no scenario ran: {} hold no scenario files (*.yaml); give a folder or file of scenarios, such as tests/scenarios",
            args.paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        return ExitCode::from(1);
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn human(outcomes: &[Outcome], coverage: &[Coverage], passed: usize, failed: usize) -> String {
    let mut out = String::new();
    for o in outcomes {
        let file = o.file.display();
        match &o.failure {
            None => {
                let _ = writeln!(
                    out,
                    "PASS {file}  {}: {} ({} steps)",
                    o.workflow, o.name, o.steps
                );
            }
            Some(f) => {
                let _ = writeln!(
                    out,
                    "FAIL {file}:{}:{}  {}: {}",
                    f.line, f.column, o.workflow, o.name
                );
                let _ = writeln!(out, "     {}", f.message);
            }
        }
    }
    if !coverage.is_empty() {
        let _ = writeln!(out, "\ncoverage");
        for c in coverage {
            let count = |items: &[sopflow::scenario::coverage::Item]| {
                format!(
                    "{}/{}",
                    items.iter().filter(|i| i.covered).count(),
                    items.len()
                )
            };
            let _ = writeln!(
                out,
                "  {}  transitions {}  timers {}  refusals {}",
                c.workflow,
                count(&c.transitions),
                count(&c.timers),
                count(&c.refusals)
            );
            let missing = |items: &[sopflow::scenario::coverage::Item]| {
                items
                    .iter()
                    .filter(|i| !i.covered)
                    .map(|i| i.step.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            for (label, items) in [
                ("untested transitions", &c.transitions),
                ("untested timers", &c.timers),
                ("no refusal tested", &c.refusals),
            ] {
                let list = missing(items);
                if !list.is_empty() {
                    let _ = writeln!(out, "    {label}: {list}");
                }
            }
        }
    }
    let _ = writeln!(out, "\n{passed} passed, {failed} failed");
    out
}

/// Coverage of every loaded workflow by all the scenarios together.
fn report_coverage(sources: &[PathBuf], outcomes: &[Outcome]) -> Vec<Coverage> {
    let Ok(sources) = Sources::read(sources) else {
        return Vec::new();
    };
    let report = catalog::build(sources, &Sandbox::default());
    let mut seen = Exercised::default();
    for o in outcomes {
        seen.transitions
            .extend(o.exercised.transitions.iter().cloned());
        seen.timers.extend(o.exercised.timers.iter().cloned());
        seen.refusals.extend(o.exercised.refusals.iter().cloned());
    }
    report
        .catalog
        .definitions
        .values()
        .map(|def| coverage(def, &seen))
        .collect()
}

/// Scenario files under `path` (`.yaml`, `.yml`), or `path` itself.
/// The folder of a suite that holds workflow files for `migrate` steps.
const VERSIONS: &str = "versions";

fn collect(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    if path.is_file() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let entries = std::fs::read_dir(path)
        .map_err(|e| format!("{}: no such scenario file or folder ({e})", path.display()))?;
    for entry in entries.flatten() {
        let p = entry.path();
        // A folder named `versions` holds the next versions of workflows that `migrate` steps
        // load: workflow files, not scenarios.
        if p.is_dir() && p.file_name().is_some_and(|n| n == VERSIONS) {
            continue;
        }
        if p.is_dir() {
            collect(&p, out)?;
        } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            out.push(p);
        }
    }
    Ok(())
}
