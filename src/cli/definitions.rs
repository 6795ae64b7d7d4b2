//! The commands that read definition files and need no store: `validate` (every problem,
//! with file:line:column), `schema` (the JSON Schema of the formats), `graph` (a diagram) and
//! `paths` (the scenarios to write).

use super::{Format, paths, render, runtime, usage_error};
use clap::ValueEnum;
use sopflow::catalog::{self, CatalogError, LoadReport, Sources};
use sopflow::diagnostic::{Code, display_path};
use sopflow::i18n::Lang;
use sopflow::script::Sandbox;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `sopflow validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
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
}

impl ValidateArgs {
    pub fn run(self) -> ExitCode {
        validate(self)
    }
}

/// `sopflow schema`.
#[derive(Debug, clap::Args)]
pub struct SchemaArgs {
    #[arg(value_enum, default_value_t = SchemaOf::Workflow)]
    of: SchemaOf,
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

impl SchemaArgs {
    pub fn run(self) -> ExitCode {
        print!(
            "{}",
            match self.of {
                SchemaOf::Workflow => sopflow::schema::workflow_schema_json(),
                SchemaOf::Roles => sopflow::schema::roles_schema_json(),
                SchemaOf::Migration => sopflow::schema::migration_schema_json(),
            }
        );
        ExitCode::SUCCESS
    }
}

/// `sopflow graph`.
#[derive(Debug, clap::Args)]
pub struct GraphArgs {
    /// A workflow id (looked up in --workflows) or a path to a workflow file.
    workflow: String,
    #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
    format: GraphFormat,
    #[arg(long, default_value = "workflows")]
    workflows: PathBuf,
    #[arg(long, default_value = "rules")]
    rules: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum GraphFormat {
    Mermaid,
    Dot,
}

impl GraphArgs {
    pub fn run(self) -> ExitCode {
        graph(&self)
    }
}

/// `sopflow paths`.
#[derive(Debug, clap::Args)]
pub struct PathsArgs {
    /// A workflow id (looked up in --workflows) or a path to a workflow file.
    workflow: String,
    #[arg(long, value_enum, default_value_t = paths::PathsFormat::Human)]
    format: paths::PathsFormat,
    #[arg(long, default_value = "workflows")]
    workflows: PathBuf,
    #[arg(long, default_value = "rules")]
    rules: PathBuf,
}

impl PathsArgs {
    pub fn run(self) -> ExitCode {
        match find_workflow(&self.workflow, &self.workflows, &self.rules) {
            Ok(parsed) => {
                print!("{}", paths::render(&parsed, self.format));
                ExitCode::SUCCESS
            }
            Err(code) => code,
        }
    }
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
fn validate(args: ValidateArgs) -> ExitCode {
    let ValidateArgs {
        paths,
        rules,
        format,
        codes,
        lang: asked,
    } = args;
    if codes {
        print_codes(runtime::chosen_lang(asked));
        return ExitCode::SUCCESS;
    }
    let rules = rules.as_path();
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

fn graph(args: &GraphArgs) -> ExitCode {
    let parsed = match find_workflow(&args.workflow, &args.workflows, &args.rules) {
        Ok(parsed) => parsed,
        Err(code) => return code,
    };
    match args.format {
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
