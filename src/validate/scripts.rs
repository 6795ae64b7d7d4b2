//! Scripts: every guard, action, signer condition and computed deadline compiles in the
//! sandbox, every rule reference resolves, and what a script reads is declared and compared
//! with values of its own type.

use super::Checker;
use super::writes::{Exit, MaySet};
use crate::definition::located::Located;
use crate::definition::model::FieldType;
use crate::diagnostic::{Code, Span, suggestion_text as suggestion};
use crate::i18n::{Arg, Text, text};
use crate::script::lint::{self, Facts, Literal, Root};
use crate::script::{CONTEXT, Script, ScriptError, ScriptRef, UNAVAILABLE};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

/// What a script is for; actions may also set fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Guard,
    Action,
    Condition,
    Deadline,
}

impl Purpose {
    /// What the findings call a script of this purpose.
    fn name(self) -> Text {
        match self {
            Purpose::Guard => text!("diag-purpose-guard"),
            Purpose::Action => text!("diag-purpose-action"),
            Purpose::Condition => text!("diag-purpose-condition"),
            Purpose::Deadline => text!("diag-purpose-deadline"),
        }
    }
}

/// Where positions inside a script point: inside a YAML scalar, or inside a rules file.
#[derive(Debug, Clone)]
enum Place {
    Yaml(Span),
    Rules(PathBuf),
}

/// Where a script runs: on a transition of a state (its event and branch), or on entering the
/// state (`event: None`: signer conditions, computed deadlines).
#[derive(Debug, Clone, Copy)]
struct At<'t> {
    state: usize,
    event: Option<&'t str>,
    branch: usize,
}

/// A script as used in the workflow, with what it (and the rules it calls) reads and writes.
struct Use<'t> {
    text: &'t Located<String>,
    purpose: Purpose,
    at: At<'t>,
    facts: Vec<Arc<Facts>>,
    /// Written in the YAML (not a rule reference): findings point into its text.
    inline: bool,
}

/// What scripts may read of `actor`.
const ACTOR_PROPERTIES: [&str; 2] = ["id", "roles"];

impl Checker<'_> {
    pub(super) fn check_scripts(&mut self) {
        let workflow = self.workflow;
        let mut uses = Vec::new();
        for (index, (_, state)) in workflow.states.iter().enumerate() {
            for (event, branches) in state.on.iter() {
                for (branch_index, branch) in branches.0.iter().enumerate() {
                    let at = At {
                        state: index,
                        event: Some(event.as_str()),
                        branch: branch_index,
                    };
                    if let Some(guard) = &branch.guard {
                        uses.push(self.script(guard, Purpose::Guard, at));
                    }
                    if let Some(action) = &branch.action {
                        uses.push(self.script(action, Purpose::Action, at));
                    }
                }
            }
            // Signer conditions and computed deadlines run on entering the state, on the data
            // after the step that entered it, whichever it was.
            let on_entry = At {
                state: index,
                event: None,
                branch: 0,
            };
            if let Some(approval) = &state.approval {
                for signer in &approval.signers {
                    if let Some(when) = &signer.when {
                        uses.push(self.script(when, Purpose::Condition, on_entry));
                    }
                }
            }
            for timer in &state.timers {
                if let Some(at) = &timer.at {
                    uses.push(self.script(at, Purpose::Deadline, on_entry));
                }
                if let Some(when) = &timer.when {
                    uses.push(self.script(when, Purpose::Condition, on_entry));
                }
            }
        }
        self.check_reads(&uses);
        self.check_silent_guards(&uses);
    }

    /// W410: an event a person fires whose every branch is guarded (so a person can be
    /// refused), where no guard can say why: none throws a reason and none has a
    /// `guard_message`. Scripts that did not compile were reported already.
    fn check_silent_guards(&mut self, uses: &[Use<'_>]) {
        let workflow = self.workflow;
        for (index, (_, state)) in workflow.states.iter().enumerate() {
            for (event, branches) in state.on.iter() {
                let branches = &branches.0;
                let by_person = branches.iter().any(|b| !b.roles.is_empty());
                if !by_person || branches.iter().any(|b| b.guard.is_none()) {
                    continue;
                }
                let speaks = branches.iter().enumerate().any(|(branch_index, branch)| {
                    branch.guard_message.is_some()
                        || uses.iter().any(|u| {
                            u.purpose == Purpose::Guard
                                && u.at.state == index
                                && u.at.event == Some(event.as_str())
                                && u.at.branch == branch_index
                                && (u.facts.is_empty() || u.facts.iter().any(|f| f.throws))
                        })
                });
                if speaks {
                    continue;
                }
                let Some(guard) = branches.iter().find_map(|b| b.guard.as_ref()) else {
                    continue;
                };
                self.report(
                    Code::SilentGuard,
                    guard.span,
                    text!("diag-silent-guard", event = event.as_str()),
                    text!("hint-silent-guard"),
                );
            }
        }
    }

    fn script<'t>(&mut self, text: &'t Located<String>, purpose: Purpose, at: At<'t>) -> Use<'t> {
        let (facts, inline) = match ScriptRef::parse(text.as_str()) {
            ScriptRef::Rule { file, function } => {
                (self.rule_script(text, file, function, purpose), false)
            }
            ScriptRef::Inline(source) => (self.inline_script(text, source, purpose), true),
        };
        Use {
            text,
            purpose,
            at,
            facts,
            inline,
        }
    }

    fn inline_script(
        &mut self,
        text: &Located<String>,
        source: &str,
        purpose: Purpose,
    ) -> Vec<Arc<Facts>> {
        if source.is_empty() {
            self.report(
                Code::ScriptError,
                text.span,
                text!("diag-script-empty", purpose = purpose.name()),
                text!("hint-script-empty"),
            );
            return Vec::new();
        }
        let place = Place::Yaml(text.span);
        if let Some(facts) = self.inline_facts.get(&text.value).cloned() {
            self.check_facts(&facts, &place, purpose);
            return vec![facts];
        }
        match self.env.sandbox.compile_expression(source) {
            Ok(ast) => {
                let facts = Arc::new(lint::facts(&ast));
                self.check_facts(&facts, &place, purpose);
                self.inline_facts.insert(text.value.clone(), facts.clone());
                self.out.scripts.insert(
                    text.value.clone(),
                    Script::Inline {
                        source: source.to_string(),
                        ast: Arc::new(ast),
                    },
                );
                vec![facts]
            }
            Err(err) => {
                let span = match &err {
                    ScriptError::Compile { line, column, .. } => {
                        self.place_span(&place, *line, *column)
                    }
                    _ => text.span,
                };
                self.report(
                    Code::ScriptError,
                    span,
                    text!(
                        "diag-script-does-not-compile",
                        purpose = purpose.name(),
                        problem = script_problem(&err)
                    ),
                    script_hint(&err),
                );
                Vec::new()
            }
        }
    }

    fn rule_script(
        &mut self,
        text: &Located<String>,
        file: &str,
        function: &str,
        purpose: Purpose,
    ) -> Vec<Arc<Facts>> {
        let rules = self.env.rules;
        let Some(entry) = rules.get(file) else {
            let hint = suggestion(file, rules.keys().map(String::as_str));
            self.report(
                Code::UnknownRule,
                text.span,
                text!("diag-unknown-rules-file", file = file),
                text!(
                    "hint-unknown-rules-file",
                    file = file,
                    function = function,
                    suggestion = hint
                ),
            );
            return Vec::new();
        };
        let Some(compiled) = &entry.compiled else {
            let path = crate::diagnostic::display_path(&entry.path);
            self.report(
                Code::UnknownRule,
                text.span,
                text!(
                    "diag-rules-file-broken",
                    file = file,
                    function = function,
                    path = &path
                ),
                text!("hint-rules-file-broken", path = path),
            );
            return Vec::new();
        };
        let Some(rule) = compiled.function(function) else {
            let names: Vec<&str> = compiled.functions.iter().map(|f| f.name.as_str()).collect();
            self.report(
                Code::UnknownRule,
                text.span,
                text!(
                    "diag-unknown-rule-function",
                    file = file,
                    function = function
                ),
                suggestion(function, names.iter().copied()),
            );
            return Vec::new();
        };
        let script = compiled.script(rule);
        let path = entry.path.clone();
        let place = Place::Rules(path.clone());
        let mut all = Vec::new();
        for name in reachable_functions(compiled, function) {
            let Some(called) = compiled.function(&name) else {
                continue;
            };
            let bad: Vec<String> = called
                .params
                .iter()
                .filter(|p| !CONTEXT.contains(&p.as_str()))
                .cloned()
                .collect();
            if name == function && !bad.is_empty() {
                self.report_in(
                    &path,
                    Code::RuleSignature,
                    Span::at(called.line, called.column),
                    text!(
                        "diag-rule-signature",
                        file = file,
                        function = &name,
                        params = Arg::list(bad.iter().map(|p| format!("`{p}`")))
                    ),
                    text!("hint-rule-signature", names = Arg::list(CONTEXT)),
                );
            }
            self.check_facts(&called.facts, &place, purpose);
            let key = (file.to_string(), name);
            all.push(
                self.rule_facts
                    .entry(key.clone())
                    .or_insert_with(|| Arc::new(called.facts.clone()))
                    .clone(),
            );
            self.out.used_rules.insert(key);
        }
        self.out.scripts.insert(text.value.clone(), script);
        all
    }

    fn check_facts(&mut self, facts: &Facts, place: &Place, purpose: Purpose) {
        let workflow = self.workflow;
        for call in &facts.calls {
            if UNAVAILABLE.contains(&call.name.as_str()) {
                let span = self.place_span(place, call.line, call.column);
                self.report_at(
                    place,
                    Code::ScriptError,
                    span,
                    text!("diag-unavailable-call", function = &call.name),
                    text!("hint-unavailable-call"),
                );
            }
        }
        for access in &facts.accesses {
            let span = self.place_span(place, access.line, access.column);
            match access.root {
                Root::Data | Root::Payload => {
                    if !self.use_field(&access.name) {
                        let hint = suggestion(&access.name, workflow.fields.keys());
                        self.report_at(
                            place,
                            Code::UndeclaredField,
                            span,
                            text!(
                                "diag-script-undeclared-field",
                                root = access.root.name(),
                                field = &access.name
                            ),
                            text!(
                                "hint-script-undeclared-field",
                                field = &access.name,
                                suggestion = hint
                            ),
                        );
                    }
                }
                Root::Params => {
                    if let Some(i) = workflow.parameters.position(&access.name) {
                        self.used_params[i] = true;
                    } else {
                        let hint = suggestion(&access.name, workflow.parameters.keys());
                        self.report_at(
                            place,
                            Code::UndeclaredParameter,
                            span,
                            text!("diag-undeclared-parameter", parameter = &access.name),
                            text!(
                                "hint-undeclared-parameter",
                                parameter = &access.name,
                                suggestion = hint
                            ),
                        );
                    }
                }
                Root::Actor => {
                    if !ACTOR_PROPERTIES.contains(&access.name.as_str()) {
                        self.report_at(
                            place,
                            Code::UndeclaredField,
                            span,
                            text!("diag-unknown-actor-property", property = &access.name),
                            text!(
                                "hint-unknown-actor-property",
                                names = Arg::list(ACTOR_PROPERTIES)
                            ),
                        );
                    }
                }
            }
        }
        for comparison in &facts.comparisons {
            let access = &comparison.access;
            let declared = match access.root {
                Root::Data | Root::Payload => workflow
                    .fields
                    .get(&access.name)
                    .map(|f| (f.kind.value, f.values.as_slice())),
                Root::Params => workflow
                    .parameters
                    .get(&access.name)
                    .map(|p| (p.kind.value, &[][..])),
                Root::Actor => None,
            };
            let Some((kind, values)) = declared else {
                continue;
            };
            if let Some(problem) = mismatch(kind, values, &comparison.literal) {
                let span = self.place_span(place, comparison.line, comparison.column);
                let subject = format!("{}.{}", access.root.name(), access.name);
                self.report_at(
                    place,
                    Code::TypeMismatch,
                    span,
                    text!(
                        "diag-type-mismatch",
                        comparison =
                            format!("{subject} {} {}", comparison.operator, comparison.literal),
                        problem = problem
                    ),
                    comparison_hint(kind, values),
                );
            }
        }
        if purpose == Purpose::Action {
            for key in &facts.result_keys {
                let span = self.place_span(place, key.line, key.column);
                if !self.use_field(&key.name) {
                    let hint = suggestion(&key.name, workflow.fields.keys());
                    self.report_at(
                        place,
                        Code::UndeclaredField,
                        span,
                        text!("diag-action-sets-undeclared", field = &key.name),
                        text!("hint-undeclared-field", suggestion = hint),
                    );
                }
            }
        }
    }

    /// What scripts read of `data` and `payload`, against what can have been written by then:
    /// a payload field the event may not write (E212), a data field no step before can have
    /// set (W406).
    fn check_reads(&mut self, uses: &[Use<'_>]) {
        let workflow = self.workflow;
        let position = |name: &str| workflow.fields.position(name);
        // Each transition's action, found by where it runs (a workflow may have thousands).
        let actions: std::collections::HashMap<
            (usize, &str, usize),
            &Use<'_>,
            foldhash::fast::RandomState,
        > = uses
            .iter()
            .filter(|u| u.purpose == Purpose::Action)
            .filter_map(|u| Some(((u.at.state, u.at.event?, u.at.branch), u)))
            .collect();
        let action_writes = |state: usize, event: &str, branch: usize| {
            let action = actions.get(&(state, event, branch))?;
            let keys: Vec<usize> = action
                .facts
                .iter()
                .flat_map(|f| f.result_keys.iter())
                .filter_map(|k| position(&k.name))
                .collect();
            // An action whose result the lint cannot see may write anything.
            (!keys.is_empty()).then_some(keys)
        };
        let may = MaySet::compute(workflow, &self.states, |index, state, exits| {
            for (event, branches) in state.on.iter() {
                for (i, branch) in branches.0.iter().enumerate() {
                    if let Some(&to) = self.states.get(branch.to.as_str()) {
                        exits.push(Exit {
                            event: event.as_str(),
                            to,
                            action_writes: match &branch.action {
                                None => Some(Vec::new()),
                                Some(_) => action_writes(index, event.as_str(), i),
                            },
                        });
                    }
                }
            }
            if let Some(approval) = &state.approval {
                let approve = approval.approve_event();
                for to in [Some(index), self.states.get(approval.to.as_str()).copied()] {
                    exits.extend(to.map(|to| Exit {
                        event: approve,
                        to,
                        action_writes: Some(Vec::new()),
                    }));
                }
                if let Some(rejection) = &approval.on_reject
                    && let Some(&to) = self.states.get(rejection.to.as_str())
                {
                    exits.push(Exit {
                        event: rejection.reject_event(),
                        to,
                        action_writes: Some(Vec::new()),
                    });
                }
            }
        });
        let mut seen = std::collections::HashSet::new();
        for script in uses {
            let place = if script.inline {
                Place::Yaml(script.text.span)
            } else {
                Place::Rules(PathBuf::new())
            };
            let state_name = workflow.states.0[script.at.state].0.as_str();
            // Where a finding points: into the YAML scalar of an inline script, or at the rule
            // reference (computed only for a finding: it scans the file's text).
            let span_of = |checker: &Self, access: &lint::Access| match place {
                Place::Yaml(_) => checker.place_span(&place, access.line, access.column),
                Place::Rules(_) => script.text.span,
            };
            for access in script.facts.iter().flat_map(|f| f.accesses.iter()) {
                let Some(field) = position(&access.name) else {
                    continue;
                };
                let findable = match (access.root, script.at.event) {
                    (Root::Payload, Some(event)) => {
                        !workflow.fields.0[field].1.is_writable_on(event)
                    }
                    (Root::Data, _) => {
                        may.reached(script.at.state) && !may.holds(script.at.state, field)
                    }
                    _ => false,
                };
                if !findable {
                    continue;
                }
                let span = span_of(self, access);
                if !seen.insert((span.line, span.column, access.root, field, script.at.state)) {
                    continue;
                }
                let subject = format!("{}.{}", access.root.name(), access.name);
                let purpose = script.purpose.name();
                let script_text = script.text.as_str();
                match (access.root, script.at.event) {
                    (Root::Payload, Some(event))
                        if !workflow.fields.0[field].1.is_writable_on(event) =>
                    {
                        self.report(
                            Code::PayloadNeverSupplied,
                            span,
                            text!(
                                "diag-payload-never-supplied",
                                purpose = purpose,
                                script = script_text,
                                subject = &subject,
                                event = event,
                                field = &access.name
                            ),
                            text!(
                                "hint-payload-never-supplied",
                                event = event,
                                field = &access.name
                            ),
                        );
                    }
                    (Root::Data, _)
                        if may.reached(script.at.state) && !may.holds(script.at.state, field) =>
                    {
                        self.report(
                            Code::FieldNeverSet,
                            span,
                            text!(
                                "diag-field-never-set",
                                purpose = purpose,
                                script = script_text,
                                subject = &subject,
                                state = state_name,
                                field = &access.name
                            ),
                            text!("hint-field-never-set", field = &access.name),
                        );
                    }
                    _ => {}
                }
            }
        }
    }

    fn report_at(&mut self, place: &Place, code: Code, span: Span, message: Text, hint: Text) {
        match place {
            Place::Yaml(_) => self.report(code, span, message, hint),
            Place::Rules(path) => {
                let path = path.clone();
                self.report_in(&path, code, span, message, hint)
            }
        }
    }

    /// The span of a position inside a script, in the file the diagnostic goes to.
    fn place_span(&self, place: &Place, line: u32, column: u32) -> Span {
        match place {
            Place::Rules(_) => Span::at(line, column),
            Place::Yaml(scalar) => inline_span(self.text, *scalar, line, column),
        }
    }
}

/// Maps a position inside an inline script to the YAML file: the script starts where its
/// scalar starts, one column further for a quoted scalar, on the next lines for a block
/// scalar (`|` or `>`).
pub(super) fn inline_span(text: &str, scalar: Span, line: u32, column: u32) -> Span {
    let start = scalar.byte_offset_in(text);
    let first = text[start..].chars().next();
    match first {
        Some('|' | '>') => {
            let body_line = scalar.line + line;
            let indent = text
                .lines()
                .nth(body_line.saturating_sub(1) as usize)
                .map_or(0, |l| l.len() - l.trim_start().len());
            Span::at(body_line, u32::try_from(indent).unwrap_or(0) + column)
        }
        Some(quote) if line == 1 => {
            let shift = u32::from(quote == '"' || quote == '\'');
            Span::at(scalar.line, scalar.column + shift + column - 1)
        }
        _ => Span::at(scalar.line + line - 1, column),
    }
}

/// `function` and every function of the same file it calls, directly or not.
fn reachable_functions(file: &crate::script::RulesFile, function: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut pending = vec![function];
    while let Some(name) = pending.pop() {
        let Some(rule) = file.function(name) else {
            continue;
        };
        if seen.insert(name.to_string()) {
            pending.extend(rule.facts.calls.iter().map(|c| c.name.as_str()));
        }
    }
    seen
}

/// Why comparing a value of `kind` with `literal` is wrong, if it is.
fn mismatch(kind: FieldType, values: &[Located<String>], literal: &Literal) -> Option<Text> {
    let fits = match (kind, literal) {
        // Comparing with () asks whether the value is missing: allowed for any type.
        (_, Literal::Unit) => true,
        (k, Literal::Integer(_) | Literal::Float(_)) => k.is_numeric(),
        (FieldType::Bool, Literal::Bool(_)) => true,
        (FieldType::Enum, Literal::String(s)) => {
            if !values.is_empty() && !values.iter().any(|v| v.as_str() == s) {
                let allowed: Vec<&str> = values.iter().map(|v| v.as_str()).collect();
                return Some(text!(
                    "diag-not-an-enum-value",
                    value = format!("{s:?}"),
                    values = Arg::list(allowed)
                ));
            }
            true
        }
        (k, Literal::String(_)) => k.is_textual(),
        _ => false,
    };
    (!fits).then(|| {
        text!(
            "diag-compared-with-other-type",
            kind = kind.name(),
            literal = literal.type_name()
        )
    })
}

fn comparison_hint(kind: FieldType, values: &[Located<String>]) -> Text {
    match kind {
        k if k.is_numeric() => text!("hint-compare-number"),
        FieldType::Bool => text!("hint-compare-bool"),
        FieldType::Enum => text!(
            "hint-compare-enum",
            values = Arg::list(values.iter().map(|v| format!("\"{}\"", v.as_str())))
        ),
        FieldType::List => text!("hint-compare-list"),
        _ => text!("hint-compare-text"),
    }
}

/// What the sandbox said of a script that does not compile: rhai's own words (a detail), or
/// the sandbox's size limit.
pub(crate) fn script_problem(err: &ScriptError) -> Text {
    match err {
        ScriptError::TooLarge { size, limit } => {
            text!("diag-script-too-large", size = *size, limit = *limit)
        }
        other => text!("diag-rhai-says", detail = other.to_string()),
    }
}

fn script_hint(err: &ScriptError) -> Text {
    match err {
        ScriptError::Compile { message, .. }
            if message.contains("Variable not found") || message.contains("Unknown variable") =>
        {
            text!("hint-script-reads-only", names = Arg::list(CONTEXT))
        }
        ScriptError::Compile { message, .. }
            if message.contains("eval") || message.contains("import") =>
        {
            text!("hint-script-no-eval")
        }
        ScriptError::TooLarge { .. } => text!("hint-script-too-large"),
        _ => text!("hint-script-syntax"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_positions_follow_the_yaml_scalar() {
        let text = "guard: \"data.x < 1\"\nplain: data.x\nblock: |\n    data.x\n";
        assert_eq!(inline_span(text, Span::at(1, 8), 1, 8), Span::at(1, 16));
        assert_eq!(inline_span(text, Span::at(2, 8), 1, 1), Span::at(2, 8));
        assert_eq!(inline_span(text, Span::at(3, 8), 1, 1), Span::at(4, 5));
    }

    #[test]
    fn mismatches_are_named() {
        assert!(mismatch(FieldType::Money, &[], &Literal::String("15000".into())).is_some());
        assert!(mismatch(FieldType::Money, &[], &Literal::Integer(15000)).is_none());
        assert!(mismatch(FieldType::Money, &[], &Literal::Unit).is_none());
        assert!(mismatch(FieldType::Bool, &[], &Literal::String("true".into())).is_some());
        let values = [
            Located::new("in".to_string(), Span::START),
            Located::new("out".to_string(), Span::START),
        ];
        assert!(mismatch(FieldType::Enum, &values, &Literal::String("inn".into())).is_some());
        assert!(mismatch(FieldType::Enum, &values, &Literal::String("out".into())).is_none());
        assert!(mismatch(FieldType::List, &[], &Literal::Integer(1)).is_some());
    }
}
