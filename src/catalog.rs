//! The catalog: every workflow and rules file loaded together, checked, and ready to run.
//!
//! Loading is two steps so that the checking stays free of I/O: [`Sources::read`] reads files
//! and folders (and turns unreadable, oversized or non-UTF-8 files into diagnostics), then
//! [`build`] compiles the rules, parses and validates every workflow, checks what crosses
//! files (duplicate ids, child workflows, unused rules) and keeps the definitions without
//! errors. A definition's version is the SHA-256 of its YAML and of the rules files it uses,
//! so an instance can later name exactly the rules it ran under.

use crate::calendar::Calendars;
pub use crate::definition::Definition;
use crate::definition::roles::RoleList;
use crate::definition::{self, MAX_FILE_BYTES, Workflow};
use crate::diagnostic::{Code, Diagnostic, Span, display_path};
use crate::i18n::{Text, text};
use crate::script::{RulesFile, Sandbox, ScriptError};
use crate::validate::{self, Env, RulesEntry};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why files could not even be looked at (as opposed to findings in them).
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// A source named in the configuration does not exist.
    #[error("{path}: no such file or folder")]
    NotFound {
        /// The source as named.
        path: String,
    },
    /// A folder exists but cannot be listed (permissions, for example).
    #[error("{path}: cannot list the folder: {source}")]
    ReadDir {
        /// The folder.
        path: String,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// A file named directly is neither a workflow nor a rules file.
    #[error("{path}: not a workflow (.yaml, .yml) or rules (.rhai) file")]
    UnsupportedFile {
        /// The file as named.
        path: String,
    },
}

/// One file's text, or the diagnostic explaining why it has none.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its text, or why it could not be read.
    pub text: Result<String, Box<Diagnostic>>,
}

/// The workflow, rules and calendar files to load.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// Workflow files (`*.yaml`), and the role list.
    pub workflows: Vec<SourceFile>,
    /// Rules files (`*.rhai`).
    pub rules: Vec<SourceFile>,
    /// Business calendars (`.yaml` files in a folder named `calendars`); they override the
    /// built-in calendars of the same id.
    pub calendars: Vec<SourceFile>,
    /// The organisation's role list (`roles.yaml` among the workflows), when there is one.
    pub roles: Vec<SourceFile>,
    /// Parameter values set from outside the workflow files, by workflow id.
    pub parameters: Parameters,
}

/// Parameter values by workflow id, then by parameter name: what a scenario's `params:` sets.
pub type Parameters = BTreeMap<String, serde_json::Map<String, serde_json::Value>>;

impl Sources {
    /// Reads the given files and folders. Folders are searched recursively for `.yaml`,
    /// `.yml` and `.rhai` files, in name order. YAML files in a folder named `calendars` are
    /// business calendars; a migration's mapping file kept next to its workflow
    /// (`<id>.migration.yaml`, read by `sopflow migrate --mapping`) is skipped; the others are
    /// workflows.
    pub fn read(paths: &[PathBuf]) -> Result<Sources, CatalogError> {
        let mut sources = Sources::default();
        for path in paths {
            if path.is_dir() {
                let mut files = Vec::new();
                collect_files(path, &mut files)?;
                files.sort();
                for file in files {
                    // Only folders inside what was given count: a project that happens to
                    // live under some `calendars` folder is not all calendars.
                    let inside = file.strip_prefix(path).unwrap_or(&file);
                    let calendar = is_calendars_folder(path)
                        || inside
                            .parent()
                            .is_some_and(|d| d.iter().any(|c| c == "calendars"));
                    sources.add_file(file, false, calendar)?;
                }
            } else if path.is_file() {
                let calendar = path.parent().is_some_and(is_calendars_folder);
                sources.add_file(path.clone(), true, calendar)?;
            } else {
                return Err(CatalogError::NotFound {
                    path: display_path(path),
                });
            }
        }
        Ok(sources)
    }

    /// Sources held in memory (for tests, benchmarks and embedding applications).
    pub fn from_texts(workflows: Vec<(PathBuf, String)>, rules: Vec<(PathBuf, String)>) -> Sources {
        let wrap = |files: Vec<(PathBuf, String)>| {
            files
                .into_iter()
                .map(|(path, text)| SourceFile {
                    path,
                    text: Ok(text),
                })
                .collect()
        };
        Sources {
            workflows: wrap(workflows),
            rules: wrap(rules),
            calendars: Vec::new(),
            roles: Vec::new(),
            parameters: Parameters::new(),
        }
    }

    /// Sets parameter values over the workflows' defaults (checked when building).
    pub fn with_parameters(mut self, parameters: Parameters) -> Sources {
        self.parameters = parameters;
        self
    }

    /// Adds a role list held in memory.
    pub fn with_roles(mut self, path: PathBuf, text: String) -> Sources {
        self.roles.push(SourceFile {
            path,
            text: Ok(text),
        });
        self
    }

    /// Adds calendar files held in memory.
    pub fn with_calendars(mut self, calendars: Vec<(PathBuf, String)>) -> Sources {
        self.calendars
            .extend(calendars.into_iter().map(|(path, text)| SourceFile {
                path,
                text: Ok(text),
            }));
        self
    }

    fn add_file(
        &mut self,
        path: PathBuf,
        explicit: bool,
        calendar: bool,
    ) -> Result<(), CatalogError> {
        let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if !explicit && is_migration_mapping(&path) {
            return Ok(());
        }
        let list = match extension {
            "yaml" | "yml" if calendar => &mut self.calendars,
            "yaml" | "yml" if crate::definition::roles::is_role_list(&path) => &mut self.roles,
            "yaml" | "yml" => &mut self.workflows,
            "rhai" => &mut self.rules,
            _ if explicit => {
                return Err(CatalogError::UnsupportedFile {
                    path: display_path(&path),
                });
            }
            _ => return Ok(()),
        };
        if list.iter().any(|f| f.path == path) {
            return Ok(());
        }
        let text = read_text(&path);
        list.push(SourceFile { path, text });
        Ok(())
    }
}

/// Whether a file is a migration's mapping (`<id>.migration.yaml`), not a workflow.
pub fn is_migration_mapping(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(".migration.yaml") || n.ends_with(".migration.yml"))
}

fn is_calendars_folder(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n == "calendars")
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), CatalogError> {
    let entries = std::fs::read_dir(dir).map_err(|source| CatalogError::ReadDir {
        path: display_path(dir),
        source,
    })?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// Reads a file as UTF-8 text, within the size limit.
fn read_text(path: &Path) -> Result<String, Box<Diagnostic>> {
    let fail = |code, message: Text, hint: Text| {
        Err(Box::new(Diagnostic::new(
            code,
            path,
            Span::START,
            message,
            hint,
        )))
    };
    match std::fs::metadata(path) {
        Ok(meta) if meta.len() > MAX_FILE_BYTES => {
            return fail(
                Code::ResourceLimit,
                text!(
                    "diag-file-too-large",
                    size = format!("{:.1}", meta.len() as f64 / (1024.0 * 1024.0)),
                    limit = MAX_FILE_BYTES / (1024 * 1024)
                ),
                text!("hint-file-too-large"),
            );
        }
        Ok(_) => {}
        Err(err) => {
            return fail(
                Code::Io,
                text!("diag-cannot-read-file", detail = err.to_string()),
                text!("hint-cannot-read-file"),
            );
        }
    }
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) => {
            return fail(
                Code::Io,
                text!("diag-cannot-read-file", detail = err.to_string()),
                text!("hint-cannot-read-file"),
            );
        }
    };
    String::from_utf8(bytes).map_err(|err| {
        let valid = &err.as_bytes()[..err.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
        let column = valid.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
        Box::new(Diagnostic::new(
            Code::Io,
            path,
            Span::at(
                u32::try_from(line).unwrap_or(u32::MAX),
                u32::try_from(column).unwrap_or(u32::MAX),
            ),
            text!("diag-not-utf8"),
            text!("hint-not-utf8"),
        ))
    })
}

/// Every valid definition and rules file, by id and name.
#[derive(Debug, Default)]
pub struct Catalog {
    /// Every workflow without errors, by id, at its newest version.
    pub definitions: BTreeMap<String, Arc<Definition>>,
    /// Every rules file, by the name rule references use.
    pub rules: BTreeMap<String, RulesEntry>,
    /// The business calendars: the built-in ones and the calendar files over them.
    pub calendars: Calendars,
    /// The organisation's roles and their titles, when a role list was loaded.
    pub roles: Option<Arc<RoleList>>,
}

impl Catalog {
    /// The valid definition of a workflow, if it loaded.
    pub fn get(&self, id: &str) -> Option<&Arc<Definition>> {
        self.definitions.get(id)
    }
}

/// What loading produced: the catalog, every finding, and the texts the findings point into.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// The workflows that loaded without errors.
    pub catalog: Catalog,
    /// Every finding, errors and warnings, in file order.
    pub diagnostics: Vec<Diagnostic>,
    /// File texts by path, for showing the lines diagnostics point at.
    pub texts: BTreeMap<PathBuf, String>,
    /// Workflows that parsed but have errors, by id: kept so that they can still be drawn.
    pub rejected: BTreeMap<String, Workflow>,
}

impl LoadReport {
    /// Whether any finding is an error (some workflow was left out).
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
    /// How many findings are errors.
    pub fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }
    /// How many findings are warnings.
    pub fn warnings(&self) -> usize {
        self.diagnostics.len() - self.errors()
    }

    /// A workflow that parsed, valid or not.
    pub fn workflow(&self, id: &str) -> Option<&Workflow> {
        self.catalog
            .get(id)
            .map(|d| &d.workflow)
            .or_else(|| self.rejected.get(id))
    }

    /// Ids of every workflow that parsed.
    pub fn workflow_ids(&self) -> impl Iterator<Item = &str> {
        self.catalog
            .definitions
            .keys()
            .chain(self.rejected.keys())
            .map(String::as_str)
    }
}

/// Reads and builds in one go.
pub fn load(paths: &[PathBuf], sandbox: &Sandbox) -> Result<LoadReport, CatalogError> {
    Ok(build(Sources::read(paths)?, sandbox))
}

/// Compiles, parses and validates everything in `sources`.
pub fn build(sources: Sources, sandbox: &Sandbox) -> LoadReport {
    build_with(sources, sandbox, &BTreeSet::new())
}

/// Like [`build`], with more workflow ids that child references may name: for rebuilding one
/// stored definition version on its own.
pub fn build_with(sources: Sources, sandbox: &Sandbox, known: &BTreeSet<String>) -> LoadReport {
    let mut report = LoadReport::default();
    let rules = compile_rules(sources.rules, sandbox, &mut report);
    let calendars = load_calendars(sources.calendars, &mut report);
    let roles = load_roles(sources.roles, &mut report);

    let mut parsed: Vec<(PathBuf, String, Workflow)> = Vec::new();
    let mut first_file: HashMap<String, PathBuf> = HashMap::new();
    let mut parse_failures = 0;
    let mut unreadable = BTreeSet::new();
    // Workflows whose parameter values set from outside do not fit: never runnable as set.
    let mut unsettled: BTreeSet<String> = BTreeSet::new();
    for file in sources.workflows {
        let text = match file.text {
            Ok(text) => text,
            Err(diagnostic) => {
                report.diagnostics.push(*diagnostic);
                parse_failures += 1;
                continue;
            }
        };
        report.texts.insert(file.path.clone(), text.clone());
        match definition::parse_workflow(&file.path, &text) {
            Ok(mut workflow) => {
                if let Some(roles) = &roles {
                    report.diagnostics.extend(validate::roles::resolve(
                        &mut workflow,
                        &file.path,
                        roles,
                    ));
                }
                if let Some(values) = sources.parameters.get(workflow.id.as_str()) {
                    let found = validate::settings::apply(&mut workflow, &file.path, values);
                    if found.iter().any(Diagnostic::is_error) {
                        unsettled.insert(workflow.id.value.clone());
                    }
                    report.diagnostics.extend(found);
                }
                let id = workflow.id.value.clone();
                if let Some(first) = first_file.get(&id) {
                    report.diagnostics.push(Diagnostic::new(
                        Code::Duplicate,
                        &file.path,
                        workflow.id.span,
                        text!(
                            "diag-duplicate-workflow",
                            workflow = &id,
                            file = display_path(first)
                        ),
                        text!("hint-duplicate-workflow"),
                    ));
                    continue;
                }
                first_file.insert(id, file.path.clone());
                parsed.push((file.path, text, workflow));
            }
            Err(diagnostic) => {
                report.diagnostics.push(*diagnostic);
                parse_failures += 1;
                // Its workflow is most likely the one its name says; a reference to it is not
                // a second mistake (the first error, in this file, is the one to fix).
                if let Some(stem) = file.path.file_stem().and_then(|s| s.to_str()) {
                    unreadable.insert(stem.to_string());
                }
            }
        }
    }

    if roles.is_none() {
        let workflows: Vec<(PathBuf, &Workflow)> =
            parsed.iter().map(|(f, _, w)| (f.clone(), w)).collect();
        report
            .diagnostics
            .extend(validate::roles::agree(&workflows));
    }
    let mut ids: BTreeSet<String> = parsed.iter().map(|(_, _, w)| w.id.value.clone()).collect();
    ids.extend(known.iter().cloned());
    ids.extend(unreadable);
    let env = Env {
        sandbox,
        rules: &rules,
        workflows: &ids,
        calendars: &calendars,
    };
    let mut used_rules = BTreeSet::new();
    for (file, text, workflow) in parsed {
        let checked = validate::check(&workflow, &file, &text, env);
        let ok = !checked.diagnostics.iter().any(Diagnostic::is_error)
            && !unsettled.contains(workflow.id.as_str());
        report.diagnostics.extend(checked.diagnostics);
        let rule_files: BTreeMap<String, String> = checked
            .used_rules
            .iter()
            .filter_map(|(name, _)| rules.get(name).map(|r| (name.clone(), r.source.clone())))
            .collect();
        used_rules.extend(checked.used_rules);
        let calendar = calendars.get(
            workflow
                .calendar
                .as_ref()
                .map_or(Calendars::DEFAULT, |c| c.as_str()),
        );
        if let (true, Some(calendar)) = (ok, calendar) {
            let parameters = sources
                .parameters
                .get(workflow.id.as_str())
                .cloned()
                .unwrap_or_default();
            let hash = version_hash(&text, &rule_files, &parameters);
            let params = crate::script::params(&workflow).into();
            let definition = Definition {
                params,
                calendar_value: rhai::Dynamic::from(crate::calendar::script::CalendarHandle(
                    calendar.clone(),
                )),
                calendar,
                calendars: calendars.clone(),
                workflow,
                file,
                source: text,
                hash,
                rules: rule_files,
                parameters,
                scripts: checked.scripts,
            };
            report
                .catalog
                .definitions
                .insert(definition.id().to_string(), Arc::new(definition));
        } else {
            report.rejected.insert(workflow.id.value.clone(), workflow);
        }
    }
    if parse_failures == 0 {
        // Which rules a workflow that did not parse would use is unknown: warning about
        // unused rules then would only add noise.
        report
            .diagnostics
            .extend(validate::unused_rules(&rules, &used_rules));
    }
    report.diagnostics.sort_by(|a, b| {
        (&a.file, a.span.line, a.span.column, a.code).cmp(&(
            &b.file,
            b.span.line,
            b.span.column,
            b.code,
        ))
    });
    report.diagnostics.dedup();
    report.catalog.rules = rules;
    report.catalog.calendars = calendars;
    report.catalog.roles = roles.map(Arc::new);
    report
}

/// The role list, when one was given. Two lists are one too many: the second is reported and
/// left out.
fn load_roles(files: Vec<SourceFile>, report: &mut LoadReport) -> Option<RoleList> {
    let mut list = None;
    let mut first: Option<PathBuf> = None;
    for file in files {
        let text = match file.text {
            Ok(text) => text,
            Err(diagnostic) => {
                report.diagnostics.push(*diagnostic);
                continue;
            }
        };
        report.texts.insert(file.path.clone(), text.clone());
        if let Some(first) = &first {
            report.diagnostics.push(Diagnostic::new(
                Code::Duplicate,
                &file.path,
                Span::START,
                text!("diag-duplicate-role-list", file = display_path(first)),
                text!("hint-duplicate-role-list"),
            ));
            continue;
        }
        first = Some(file.path.clone());
        let (read, diagnostics) = validate::roles::read_list(&file.path, &text);
        report.diagnostics.extend(diagnostics);
        list = read;
    }
    list
}

/// The built-in calendars with the calendar files over them. When a file has errors, they are
/// reported and the built-in calendars are used.
fn load_calendars(files: Vec<SourceFile>, report: &mut LoadReport) -> Calendars {
    let mut texts = Vec::new();
    for file in files {
        match file.text {
            Ok(text) => {
                report.texts.insert(file.path.clone(), text.clone());
                texts.push((file.path, text));
            }
            Err(diagnostic) => report.diagnostics.push(*diagnostic),
        }
    }
    if texts.is_empty() {
        return Calendars::builtin();
    }
    let given: BTreeSet<PathBuf> = texts.iter().map(|(path, _)| path.clone()).collect();
    match Calendars::from_texts(texts) {
        Ok((calendars, warnings)) => {
            // Warnings about the built-in copies are not the user's to act on here; the
            // same file in their calendars/ folder reports them.
            report
                .diagnostics
                .extend(warnings.into_iter().filter(|w| given.contains(&w.file)));
            calendars
        }
        Err(errors) => {
            report.diagnostics.extend(errors);
            Calendars::builtin()
        }
    }
}

fn compile_rules(
    files: Vec<SourceFile>,
    sandbox: &Sandbox,
    report: &mut LoadReport,
) -> BTreeMap<String, RulesEntry> {
    let mut rules: BTreeMap<String, RulesEntry> = BTreeMap::new();
    for file in files {
        let text = match file.text {
            Ok(text) => text,
            Err(diagnostic) => {
                report.diagnostics.push(*diagnostic);
                continue;
            }
        };
        report.texts.insert(file.path.clone(), text.clone());
        let name = file
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !crate::validate::is_snake_case(&name) {
            report.diagnostics.push(Diagnostic::new(
                Code::BadIdentifier,
                &file.path,
                Span::START,
                text!("diag-rules-file-name", name = &name),
                text!("hint-rules-file-name"),
            ));
            continue;
        }
        if let Some(first) = rules.get(&name) {
            report.diagnostics.push(Diagnostic::new(
                Code::Duplicate,
                &file.path,
                Span::START,
                text!(
                    "diag-duplicate-rules-file",
                    name = &name,
                    file = display_path(&first.path)
                ),
                text!("hint-duplicate-rules-file"),
            ));
            continue;
        }
        let compiled = match RulesFile::compile(sandbox, &name, &text) {
            Ok(compiled) => {
                let top_level = compiled.top_level_statements();
                for (line, column) in &top_level {
                    report.diagnostics.push(Diagnostic::new(
                        Code::RuleTopLevel,
                        &file.path,
                        Span::at(*line, *column),
                        text!("diag-rule-top-level"),
                        text!("hint-rule-top-level"),
                    ));
                }
                top_level.is_empty().then_some(compiled)
            }
            Err(err) => {
                let (code, span, hint) = match &err {
                    ScriptError::Compile { line, column, .. } => (
                        Code::ScriptError,
                        Span::at(*line, *column),
                        text!("hint-rules-file-syntax"),
                    ),
                    ScriptError::TooLarge { .. } => (
                        Code::ResourceLimit,
                        Span::START,
                        text!("hint-rules-file-too-large"),
                    ),
                    _ => (Code::ScriptError, Span::START, text!("hint-fix-script")),
                };
                report.diagnostics.push(Diagnostic::new(
                    code,
                    &file.path,
                    span,
                    text!(
                        "diag-rules-file-does-not-compile",
                        problem = validate::script_problem(&err)
                    ),
                    hint,
                ));
                None
            }
        };
        rules.insert(
            name,
            RulesEntry {
                path: file.path,
                source: text,
                compiled,
            },
        );
    }
    rules
}

/// The version of a definition: SHA-256 over its YAML and the rules files it uses.
pub fn version_hash(
    yaml: &str,
    rules: &BTreeMap<String, String>,
    parameters: &serde_json::Map<String, serde_json::Value>,
) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"sopflow-definition-v1\0");
    hasher.update((yaml.len() as u64).to_le_bytes());
    hasher.update(yaml.as_bytes());
    for (name, source) in rules {
        hasher.update((name.len() as u64).to_le_bytes());
        hasher.update(name.as_bytes());
        hasher.update((source.len() as u64).to_le_bytes());
        hasher.update(source.as_bytes());
    }
    // Values set from outside the YAML; none (the usual case) leaves the hash as it was.
    if !parameters.is_empty() {
        let values = serde_json::Value::Object(parameters.clone()).to_string();
        hasher.update(b"\0parameters\0");
        hasher.update((values.len() as u64).to_le_bytes());
        hasher.update(values.as_bytes());
    }
    hex::encode(hasher.finalize())
}
