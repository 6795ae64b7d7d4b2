//! The validator: every mistake in a workflow, found before anything runs.
//!
//! [`check`] takes one parsed workflow and what it may refer to (the compiled rules files and
//! the ids of the other workflows) and returns every finding, the compiled scripts of the
//! workflow, and the rule functions it uses. It does no I/O: the catalog reads files, this
//! module only looks at what it is given, so it runs the same in the CLI, the server's hot
//! reload, tests and benchmarks.
//!
//! The checks are split by what they look at:
//! - `names`: declarations and references (states, roles, fields, parameters, events,
//!   durations, child workflows, constraints);
//! - `scripts`: compiling guards, actions and deadlines in the sandbox, resolving rule
//!   references, and linting what scripts read and compare;
//! - `writes`: which step may write which field (`required_on`, `optional_on`, `fixed`,
//!   `party`), what steps and schedules are asked to write, who may start and read
//!   (`access`), and which fields may be set on arriving in each state;
//! - `time`: calendars named by the workflow, its timers and schedules, and whether each
//!   schedule can recur;
//! - `graph`: the state graph on petgraph (reachability, ways to finish, ambiguous events,
//!   timers, must-pass dominators);
//! - `notices`: the `notify:` lists and `on_finish:` (ids, recipients, templates: syntax,
//!   the names they read, a trial render).

mod graph;
pub use names::is_snake_case;
mod names;
mod notices;
pub mod roles;
mod scripts;
pub(crate) use scripts::script_problem;
pub mod settings;
mod time;
mod writes;

use crate::definition::Workflow;
use crate::diagnostic::{Code, Diagnostic, Span};
use crate::i18n::{Text, text};
use crate::script::{RulesFile, Sandbox, Script};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

/// State positions by name (foldhash: these maps are built and probed once per reference, and
/// SipHash's flooding resistance buys nothing for a process owner's own file).
type StateIndex<'a> = HashMap<&'a str, usize, foldhash::fast::RandomState>;

/// A rules file as the validator sees it.
#[derive(Debug, Clone)]
pub struct RulesEntry {
    /// Where the file was read from, for locations.
    pub path: PathBuf,
    /// The file's text, as read.
    pub source: String,
    /// `None` when the file failed to compile (its own diagnostic says why).
    pub compiled: Option<RulesFile>,
}

/// What a workflow may refer to outside itself.
#[derive(Debug, Clone, Copy)]
pub struct Env<'a> {
    /// The sandbox the workflow's scripts are compiled in.
    pub sandbox: &'a Sandbox,
    /// Rules files by name (`expense` for `rules/expense.rhai`).
    pub rules: &'a BTreeMap<String, RulesEntry>,
    /// Ids of every loaded workflow, for child workflows.
    pub workflows: &'a BTreeSet<String>,
    /// The business calendars workflows, timers and schedules may name.
    pub calendars: &'a crate::calendar::Calendars,
}

/// The result of checking one workflow.
#[derive(Debug, Default)]
pub struct Checked {
    /// Every finding, ordered by file, line, column and code.
    pub diagnostics: Vec<Diagnostic>,
    /// Compiled scripts by their text as written in the YAML.
    pub scripts: HashMap<String, Script>,
    /// Rule functions used, directly or through other rules, as (file, function).
    pub used_rules: BTreeSet<(String, String)>,
}

/// Checks one workflow. `file` and `text` are the YAML it was read from, for locations.
pub fn check(workflow: &Workflow, file: &Path, text: &str, env: Env<'_>) -> Checked {
    let mut checker = Checker {
        workflow,
        file,
        text,
        env,
        out: Checked::default(),
        used_roles: vec![false; workflow.roles.len()],
        used_fields: vec![false; workflow.fields.len()],
        used_params: vec![false; workflow.parameters.len()],
        inline_facts: HashMap::new(),
        rule_facts: HashMap::new(),
        states: workflow
            .states
            .keys()
            .enumerate()
            .map(|(i, k)| (k, i))
            .collect(),
        events: workflow.events().collect(),
    };
    checker.check_names();
    checker.check_writes();
    checker.check_time();
    checker.check_number();
    checker.check_scripts();
    checker.check_graph();
    checker.check_notices();
    checker.check_unused();
    let mut out = checker.out;
    out.diagnostics
        .sort_by_key(|d| (d.file.clone(), d.span.line, d.span.column, d.code));
    out.diagnostics.dedup();
    out
}

/// The state of one check: the workflow, where it came from, and what was found and used.
struct Checker<'a> {
    workflow: &'a Workflow,
    file: &'a Path,
    text: &'a str,
    env: Env<'a>,
    out: Checked,
    /// Whether each declared role, field and parameter (by position) is used.
    used_roles: Vec<bool>,
    used_fields: Vec<bool>,
    used_params: Vec<bool>,
    /// What each inline script (by text) reads, so that a script written in many places is
    /// compiled once.
    inline_facts: HashMap<String, std::sync::Arc<crate::script::lint::Facts>>,
    /// What each rule function used reads and returns, shared by its uses.
    rule_facts: HashMap<(String, String), std::sync::Arc<crate::script::lint::Facts>>,
    /// State positions by name: workflows can have thousands of states, and names are looked
    /// up for every reference. Shared with the graph, whose node indices are these positions.
    states: StateIndex<'a>,
    /// Every event some state handles.
    events: HashSet<&'a str>,
}

impl Checker<'_> {
    fn report(&mut self, code: Code, span: Span, message: Text, hint: Text) {
        self.out
            .diagnostics
            .push(Diagnostic::new(code, self.file, span, message, hint));
    }

    fn report_in(&mut self, file: &Path, code: Code, span: Span, message: Text, hint: Text) {
        self.out
            .diagnostics
            .push(Diagnostic::new(code, file, span, message, hint));
    }

    /// Marks a declared field as used; false when it is not declared.
    fn use_field(&mut self, name: &str) -> bool {
        let position = self.workflow.fields.position(name);
        if let Some(i) = position {
            self.used_fields[i] = true;
        }
        position.is_some()
    }

    fn check_unused(&mut self) {
        let workflow = self.workflow;
        for (i, (name, _)) in workflow.roles.iter().enumerate() {
            if !self.used_roles[i] {
                self.report(
                    Code::UnusedRole,
                    name.span,
                    text!("diag-unused-role", role = name.as_str()),
                    text!("hint-unused-role"),
                );
            }
        }
        for (i, (name, _)) in workflow.fields.iter().enumerate() {
            if !self.used_fields[i] {
                self.report(
                    Code::UnusedField,
                    name.span,
                    text!("diag-unused-field", field = name.as_str()),
                    text!("hint-unused-field"),
                );
            }
        }
        for (i, (name, _)) in workflow.parameters.iter().enumerate() {
            if !self.used_params[i] {
                self.report(
                    Code::UnusedParameter,
                    name.span,
                    text!("diag-unused-parameter", parameter = name.as_str()),
                    text!("hint-unused-parameter", parameter = name.as_str()),
                );
            }
        }
    }
}

/// The diagnostics of all rules files that no workflow uses: one warning per unused function.
pub fn unused_rules(
    rules: &BTreeMap<String, RulesEntry>,
    used: &BTreeSet<(String, String)>,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (name, entry) in rules {
        let Some(compiled) = &entry.compiled else {
            continue;
        };
        for function in &compiled.functions {
            if !used.contains(&(name.clone(), function.name.clone())) {
                out.push(Diagnostic::new(
                    Code::UnusedRule,
                    &entry.path,
                    Span::at(function.line, function.column),
                    text!("diag-unused-rule", file = name, function = &function.name),
                    text!("hint-unused-rule"),
                ));
            }
        }
    }
    out
}
