//! The rhai sandbox: compiling and running the guards, actions and deadline computations that
//! process owners write.
//!
//! One [`Sandbox`] (one rhai `Engine`) serves every workflow. Scripts are compiled once, when a
//! definition is loaded, and the compiled ASTs are kept with the definition. The sandbox makes
//! a script unable to do harm: no file or module access (`import` is disabled), no `eval`,
//! strict variables (a misspelt name is a compile error, not `()` at run time), and limits on
//! operations, call depth, expression depth and the size of strings, arrays and maps, set
//! explicitly so that debug and release builds behave the same. A runaway script ends with
//! [`ScriptError::Limit`], never a hang.
//!
//! What scripts see is fixed and read-only: `data` (the instance's fields), `payload` (the
//! event's values), `actor` (`id`, `roles`), `params` (the workflow's parameters), `now` (the
//! step's time, RFC 3339) and `calendar` (the workflow's business calendar:
//! `calendar.add(now, "7 working days")`, `calendar.last_working_day_of_month(now)`...).
//! Rule functions in `rules/*.rhai` receive the ones they name as parameters, in any order:
//! `fn needs_landlord(data, params) { data.amount >= params.landlord_threshold }`.

pub(crate) mod lint;

use rhai::{AST, CallFnOptions, Dynamic, Engine, Map, Position, Scope};
use std::sync::Arc;

/// The names a script may read, in the order rule-function arguments are offered.
pub const CONTEXT: [&str; 6] = ["data", "payload", "actor", "params", "now", "calendar"];

/// The sandbox's limits. The defaults allow any reasonable business rule thousands of times
/// over and stop an endless loop within milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most operations one run of a script may take (what stops an endless loop).
    pub max_operations: u64,
    /// Deepest nesting of function calls.
    pub max_call_levels: usize,
    /// Deepest nesting of expressions at the top level of a script.
    pub max_expr_depth: usize,
    /// Deepest nesting of expressions inside a rule function.
    pub max_function_expr_depth: usize,
    /// Longest string a script may build, in bytes.
    pub max_string_size: usize,
    /// Most elements of an array a script may build.
    pub max_array_size: usize,
    /// Most entries of a map a script may build.
    pub max_map_size: usize,
    /// Longest script source accepted, in bytes.
    pub max_source_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_operations: 100_000,
            max_call_levels: 32,
            max_expr_depth: 64,
            max_function_expr_depth: 32,
            max_string_size: 64 * 1024,
            max_array_size: 10_000,
            max_map_size: 10_000,
            max_source_bytes: 1024 * 1024,
        }
    }
}

/// Why a script could not be compiled or run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    /// The source does not compile. Line and column are within the script (1-based).
    #[error("{message}")]
    Compile {
        /// What rhai could not read.
        message: String,
        /// The line of the mistake.
        line: u32,
        /// The column of the mistake.
        column: u32,
    },
    /// The source is larger than [`Limits::max_source_bytes`].
    #[error("the script is {size} bytes, more than the sandbox's limit of {limit}")]
    TooLarge {
        /// The source's size, in bytes.
        size: usize,
        /// The most the sandbox accepts, in bytes.
        limit: usize,
    },
    /// A sandbox limit stopped the script (too many operations, too deep, too large a value).
    #[error("stopped by the sandbox: {0}")]
    Limit(String),
    /// The script failed while running.
    #[error("{0}")]
    Runtime(String),
    /// The script stopped with `throw "..."` and a text: the process owner's own reason, in
    /// the manual's words (a guard that says why it does not hold). At most
    /// [`MAX_REASON_CHARS`] characters, on one line.
    #[error("{0}")]
    Thrown(String),
}

/// The longest reason a script may give with `throw`; longer ones are cut.
pub const MAX_REASON_CHARS: usize = 300;

/// The shared, sandboxed rhai engine.
pub struct Sandbox {
    engine: Engine,
    limits: Limits,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("limits", &self.limits)
            .finish()
    }
}

impl Default for Sandbox {
    fn default() -> Self {
        Sandbox::new(Limits::default())
    }
}

impl Sandbox {
    /// A sandbox that enforces `limits` on every script it compiles and runs.
    pub fn new(limits: Limits) -> Self {
        let mut engine = Engine::new();
        engine
            .set_strict_variables(true)
            .set_max_operations(limits.max_operations)
            .set_max_call_levels(limits.max_call_levels)
            .set_max_expr_depths(limits.max_expr_depth, limits.max_function_expr_depth)
            .set_max_string_size(limits.max_string_size)
            .set_max_array_size(limits.max_array_size)
            .set_max_map_size(limits.max_map_size)
            .set_max_modules(0)
            .set_module_resolver(rhai::module_resolvers::DummyModuleResolver::new())
            .on_print(|_| {})
            .on_debug(|_, _, _| {});
        crate::calendar::script::register(&mut engine);
        engine.disable_symbol("eval");
        engine.disable_symbol("import");
        // rhai's standard library can block the thread (`sleep`, not counted as operations)
        // and read the wall clock (`timestamp`), which would make a step depend on when it
        // was replayed. Functions registered on the engine take precedence over packages.
        for name in UNAVAILABLE {
            engine.register_fn(name, || -> Result<(), Box<rhai::EvalAltResult>> {
                Err(unavailable())
            });
            engine.register_fn(
                name,
                |_: rhai::INT| -> Result<(), Box<rhai::EvalAltResult>> { Err(unavailable()) },
            );
            engine.register_fn(
                name,
                |_: rhai::FLOAT| -> Result<(), Box<rhai::EvalAltResult>> { Err(unavailable()) },
            );
        }
        Sandbox { engine, limits }
    }

    /// The limits the sandbox enforces.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Compiles a rules file: function definitions only (checked by the caller with
    /// [`RulesFile::top_level_statements`]).
    pub fn compile_rules(&self, source: &str) -> Result<AST, ScriptError> {
        self.check_size(source)?;
        self.engine.compile(source).map_err(compile_error)
    }

    /// Compiles a one-line expression over the [`CONTEXT`] names.
    pub fn compile_expression(&self, source: &str) -> Result<AST, ScriptError> {
        self.check_size(source)?;
        // Plain (not constant) variables: with constants the optimiser would fold the
        // expression against empty maps at compile time.
        let mut scope = Scope::new();
        for name in CONTEXT {
            scope.push(name, ());
        }
        self.engine
            .compile_expression_with_scope(&scope, source)
            .map_err(compile_error)
    }

    /// Runs a compiled script against an instance's context.
    ///
    /// An expression's scope holds, as constants, only the context names its source names
    /// ([`Script::reads`]): a name it never mentions cannot be looked up, and each name
    /// pushed costs an allocation (rhai keeps scope names shared).
    pub fn evaluate(&self, script: &Script, input: &Input) -> Result<Dynamic, ScriptError> {
        let mut scope = Scope::new();
        let result = match script {
            Script::Inline { ast, .. } => {
                let reads = script.reads();
                for name in CONTEXT {
                    if reads.contains(name) {
                        scope.push_constant_dynamic(name, input.get(name).unwrap_or(Dynamic::UNIT));
                    }
                }
                self.engine.eval_ast_with_scope::<Dynamic>(&mut scope, ast)
            }
            Script::Rule {
                ast,
                function,
                params,
                ..
            } => {
                let args: Vec<Dynamic> = params
                    .iter()
                    .map(|p| input.get(p).unwrap_or(Dynamic::UNIT))
                    .collect();
                self.engine.call_fn_with_options::<Dynamic>(
                    CallFnOptions::new().eval_ast(false),
                    &mut scope,
                    ast,
                    function,
                    args,
                )
            }
        };
        result.map_err(|err| runtime_error(*err))
    }

    fn check_size(&self, source: &str) -> Result<(), ScriptError> {
        if source.len() > self.limits.max_source_bytes {
            return Err(ScriptError::TooLarge {
                size: source.len(),
                limit: self.limits.max_source_bytes,
            });
        }
        Ok(())
    }
}

/// Standard-library functions scripts may not call: they block or read the clock.
pub const UNAVAILABLE: [&str; 2] = ["sleep", "timestamp"];

fn unavailable() -> Box<rhai::EvalAltResult> {
    // A system error, not a runtime one: `throw "text"` is a guard's reason (`Thrown`), and
    // this is the sandbox's refusal, never the process owner's words.
    Box::new(rhai::EvalAltResult::ErrorSystem(
        "not available in the sandbox".into(),
        "scripts may not wait or read the clock (use `now`)".into(),
    ))
}

fn compile_error(err: rhai::ParseError) -> ScriptError {
    let (line, column) = position(err.position());
    ScriptError::Compile {
        message: err.err_type().to_string(),
        line,
        column,
    }
}

fn runtime_error(err: rhai::EvalAltResult) -> ScriptError {
    use rhai::EvalAltResult as E;
    match err {
        // A rule function's error arrives wrapped in the call (once per nested call); what it
        // threw is inside.
        E::ErrorInFunctionCall(_, _, inner, _)
            if matches!(*inner, E::ErrorRuntime(..) | E::ErrorInFunctionCall(..)) =>
        {
            runtime_error(*inner)
        }
        E::ErrorRuntime(value, _) if value.is_string() => {
            ScriptError::Thrown(one_line(&value.to_string(), MAX_REASON_CHARS))
        }
        E::ErrorTooManyOperations(_) => {
            ScriptError::Limit("too many operations (an endless loop?)".into())
        }
        E::ErrorStackOverflow(_) => ScriptError::Limit("calls nested too deeply".into()),
        E::ErrorDataTooLarge(what, _) => ScriptError::Limit(format!("{what} too large")),
        E::ErrorTooManyModules(_) => ScriptError::Limit("modules are not available".into()),
        other => ScriptError::Runtime(other.to_string()),
    }
}

/// `text` on one line (control characters become spaces), cut to `max` characters.
fn one_line(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect();
    if text.chars().count() > max {
        out.push('…');
    }
    out
}

/// 1-based line and column of a rhai position (1:1 when unknown).
pub fn position(pos: Position) -> (u32, u32) {
    let line = pos.line().unwrap_or(1);
    let column = pos.position().unwrap_or(1);
    (
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(column).unwrap_or(u32::MAX),
    )
}

/// How a workflow names a script: `file::function` in `rules/`, or an inline expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScriptRef<'a> {
    Rule { file: &'a str, function: &'a str },
    Inline(&'a str),
}

impl<'a> ScriptRef<'a> {
    /// A reference is exactly `identifier::identifier`; anything else is an expression.
    pub fn parse(text: &'a str) -> ScriptRef<'a> {
        let text = text.trim();
        if let Some((file, function)) = text.split_once("::")
            && is_identifier(file)
            && is_identifier(function)
        {
            return ScriptRef::Rule { file, function };
        }
        ScriptRef::Inline(text)
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// A compiled script, ready to run.
#[derive(Debug, Clone)]
pub enum Script {
    /// An expression written in the workflow itself (`data.amount >= 15000`).
    Inline {
        /// The expression as written: the source `ast` was compiled from (what it reads is
        /// found in it, [`Script::reads`]).
        source: String,
        /// The expression, compiled.
        ast: Arc<AST>,
    },
    /// A function of a rules file (`expense::needs_chairman`).
    Rule {
        /// The rules file's name: `expense` for `rules/expense.rhai`.
        file: String,
        /// The function's name.
        function: String,
        /// The context names the function takes, in its order.
        params: Vec<String>,
        /// The whole rules file, compiled.
        ast: Arc<AST>,
    },
}

impl Script {
    /// Whether the script may read the step's payload, so that its answer cannot be known
    /// before the payload is given: a rule that takes `payload`, or an expression naming it.
    pub fn reads_payload(&self) -> bool {
        self.reads().contains("payload")
    }

    /// The context names ([`CONTEXT`]) the script may read: the parameters a rule takes, or
    /// the names an expression's source mentions as words (a mention inside a string counts
    /// too, which only builds a value that is not read). A name not among them is never
    /// looked up, so the step need not build it.
    pub fn reads(&self) -> Reads {
        let mut reads = Reads::NONE;
        match self {
            Script::Rule { params, .. } => params.iter().for_each(|p| reads.add(p)),
            Script::Inline { source, .. } => source
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .for_each(|word| reads.add(word)),
        }
        reads
    }
}

/// A set of [`CONTEXT`] names: those a script reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reads(u8);

impl Reads {
    /// No name.
    pub const NONE: Reads = Reads(0);
    /// Every context name.
    pub const ALL: Reads = Reads((1 << CONTEXT.len()) - 1);

    fn bit(name: &str) -> u8 {
        CONTEXT
            .iter()
            .position(|n| *n == name)
            .map_or(0, |i| 1 << i)
    }

    /// Adds `name`, if it is a context name.
    pub fn add(&mut self, name: &str) {
        self.0 |= Reads::bit(name);
    }

    /// Whether `name` is in the set.
    pub fn contains(self, name: &str) -> bool {
        self.0 & Reads::bit(name) != 0
    }
}

/// The values a script can read. Maps are rhai maps so that scripts use `data.amount`.
///
/// Each value is held shared (reference-counted), so running several scripts in one step
/// (guards, an action, signer conditions) hands them the same maps without copying. Scripts
/// cannot change them: inline scripts see them as constants, and rule functions receive them
/// by value.
#[derive(Debug, Clone)]
pub struct Input {
    data: Dynamic,
    payload: Dynamic,
    actor: Dynamic,
    params: Dynamic,
    now: Dynamic,
    calendar: Dynamic,
}

impl Default for Input {
    fn default() -> Self {
        Input::new(
            Map::new(),
            Map::new(),
            Map::new(),
            Map::new().into(),
            Dynamic::UNIT,
            Dynamic::UNIT,
        )
    }
}

impl Input {
    /// `params` is a map, usually [`crate::definition::Definition::params`], shared as it is;
    /// `calendar` the definition's calendar handle (or unit).
    pub fn new(
        data: Map,
        payload: Map,
        actor: Map,
        params: Dynamic,
        now: Dynamic,
        calendar: Dynamic,
    ) -> Input {
        Input::shared(
            Dynamic::from_map(data).into_shared(),
            Dynamic::from_map(payload).into_shared(),
            Dynamic::from_map(actor).into_shared(),
            params.into_shared(),
            now,
            calendar,
        )
    }

    /// An input of values already shared (built once per step and handed to each of its
    /// scripts); a value a script does not read ([`Script::reads`]) may be unit.
    pub(crate) fn shared(
        data: Dynamic,
        payload: Dynamic,
        actor: Dynamic,
        params: Dynamic,
        now: Dynamic,
        calendar: Dynamic,
    ) -> Input {
        Input {
            data,
            payload,
            actor,
            params,
            now,
            calendar,
        }
    }

    fn get(&self, name: &str) -> Option<Dynamic> {
        match name {
            "data" => Some(self.data.clone()),
            "payload" => Some(self.payload.clone()),
            "actor" => Some(self.actor.clone()),
            "params" => Some(self.params.clone()),
            "now" => Some(self.now.clone()),
            "calendar" => Some(self.calendar.clone()),
            _ => None,
        }
    }
}

/// A workflow's parameters as scripts see them (`params.name`), at their defaults. Numbers of
/// money and number type are floats, so that they compare with data of the same type.
pub fn params(workflow: &crate::definition::Workflow) -> Map {
    use crate::definition::model::{FieldType, Scalar};
    workflow
        .parameters
        .iter()
        .map(|(name, p)| {
            let value = match &p.default.value {
                Scalar::Bool(b) => Dynamic::from_bool(*b),
                Scalar::Integer(i)
                    if p.kind.value.is_numeric() && p.kind.value != FieldType::Integer =>
                {
                    Dynamic::from_float(*i as f64)
                }
                Scalar::Integer(i) => Dynamic::from_int(*i),
                Scalar::Number(f) => Dynamic::from_float(*f),
                Scalar::String(s) => Dynamic::from(s.clone()),
            };
            (name.as_str().into(), value)
        })
        .collect()
}

/// A compiled rules file and what it defines.
#[derive(Debug, Clone)]
pub struct RulesFile {
    /// The file stem, used in references: `expense` for `rules/expense.rhai`.
    pub name: String,
    /// The file, compiled.
    pub ast: Arc<AST>,
    /// The functions it defines, in the order rhai lists them.
    pub functions: Vec<RuleFunction>,
}

/// One function of a rules file.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleFunction {
    /// The function's name, as references name it after `file::`.
    pub name: String,
    /// Its parameters: names from [`CONTEXT`], which it receives in any order.
    pub params: Vec<String>,
    /// What its body reads, compares and calls; found once, when the file is compiled.
    pub(crate) facts: lint::Facts,
    /// 1-based line and column of the function's name.
    pub line: u32,
    /// The column there, from 1.
    pub column: u32,
}

impl RulesFile {
    /// Compiles a rules file's source.
    pub fn compile(sandbox: &Sandbox, name: &str, source: &str) -> Result<RulesFile, ScriptError> {
        let ast = sandbox.compile_rules(source)?;
        let functions = ast
            .iter_functions()
            .map(|f| {
                let (line, column) = find_fn(source, f.name);
                RuleFunction {
                    name: f.name.to_string(),
                    params: f.params.iter().map(|p| p.to_string()).collect(),
                    facts: lint::function_facts(&ast, f.name),
                    line,
                    column,
                }
            })
            .collect();
        Ok(RulesFile {
            name: name.to_string(),
            ast: Arc::new(ast),
            functions,
        })
    }

    /// The function of this name, if the file defines it.
    pub fn function(&self, name: &str) -> Option<&RuleFunction> {
        self.functions.iter().find(|f| f.name == name)
    }

    /// Positions of statements outside functions (which would never run).
    pub fn top_level_statements(&self) -> Vec<(u32, u32)> {
        self.ast
            .statements()
            .iter()
            .map(|stmt| position(stmt.position()))
            .collect()
    }

    /// A script that calls `function`.
    pub fn script(&self, function: &RuleFunction) -> Script {
        Script::Rule {
            file: self.name.clone(),
            function: function.name.clone(),
            params: function.params.clone(),
            ast: self.ast.clone(),
        }
    }
}

/// Where the name of `fn name(` is in a source, for pointing at a function.
fn find_fn(source: &str, name: &str) -> (u32, u32) {
    for (i, line) in source.lines().enumerate() {
        let code = line.trim_start();
        let Some(rest) = code
            .strip_prefix("private fn ")
            .or_else(|| code.strip_prefix("fn "))
        else {
            continue;
        };
        let name_at = line.len() - rest.trim_start().len();
        let rest = rest.trim_start();
        if rest.starts_with(name) && rest[name.len()..].trim_start().starts_with('(') {
            let column = name_at + 1;
            return (
                u32::try_from(i + 1).unwrap_or(u32::MAX),
                u32::try_from(column).unwrap_or(u32::MAX),
            );
        }
    }
    (1, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> Input {
        let mut data = Map::new();
        data.insert("amount".into(), Dynamic::from(18_000.0_f64));
        let mut params = Map::new();
        params.insert("landlord_threshold".into(), Dynamic::from(15_000_i64));
        Input::new(
            data,
            Map::new(),
            Map::new(),
            params.into(),
            Dynamic::UNIT,
            Dynamic::UNIT,
        )
    }

    #[test]
    fn references_and_expressions_are_told_apart() {
        assert_eq!(
            ScriptRef::parse("expense::needs_landlord"),
            ScriptRef::Rule {
                file: "expense",
                function: "needs_landlord"
            }
        );
        assert_eq!(
            ScriptRef::parse("data.amount > 1"),
            ScriptRef::Inline("data.amount > 1")
        );
        assert!(matches!(
            ScriptRef::parse("expense::f(data)"),
            ScriptRef::Inline(_)
        ));
    }

    #[test]
    fn inline_guards_read_the_context() {
        let sandbox = Sandbox::default();
        let source = "data.amount >= params.landlord_threshold";
        let ast = sandbox.compile_expression(source).expect("compiles");
        let script = Script::Inline {
            source: source.to_string(),
            ast: Arc::new(ast),
        };
        let result = sandbox.evaluate(&script, &input()).expect("runs");
        assert_eq!(result.as_bool(), Ok(true));
    }

    #[test]
    fn a_script_reads_the_context_names_it_mentions_and_only_those_are_in_its_scope() {
        let sandbox = Sandbox::default();
        let source = "actor.id == \"li\" && data.amount >= params.landlord_threshold";
        let script = Script::Inline {
            source: source.to_string(),
            ast: Arc::new(sandbox.compile_expression(source).expect("compiles")),
        };
        let reads = script.reads();
        for name in CONTEXT {
            assert_eq!(
                reads.contains(name),
                ["actor", "data", "params"].contains(&name),
                "{name}"
            );
        }
        assert!(!script.reads_payload());
        // The names it does not read may be left out of the input: it runs the same.
        let mut data = Map::new();
        data.insert("amount".into(), Dynamic::from(18_000.0_f64));
        let mut params = Map::new();
        params.insert("landlord_threshold".into(), Dynamic::from(15_000_i64));
        let mut actor = Map::new();
        actor.insert("id".into(), Dynamic::from("wang"));
        let full = Input::new(
            data,
            Map::new(),
            actor,
            params.into(),
            Dynamic::from("2026-03-02T01:30:00Z"),
            Dynamic::UNIT,
        );
        let sparse = Input::shared(
            full.data.clone(),
            Dynamic::UNIT,
            full.actor.clone(),
            full.params.clone(),
            Dynamic::UNIT,
            Dynamic::UNIT,
        );
        for input in [&full, &sparse] {
            let result = sandbox.evaluate(&script, input).expect("runs");
            assert_eq!(result.as_bool(), Ok(false), "the actor is wang, not li");
        }
    }

    #[test]
    fn rule_functions_receive_the_context_they_name() {
        let sandbox = Sandbox::default();
        let rules = RulesFile::compile(
            &sandbox,
            "expense",
            "// routing\nfn needs_landlord(params, data) {\n    data.amount >= params.landlord_threshold\n}\n",
        )
        .expect("compiles");
        let f = rules.function("needs_landlord").expect("declared");
        assert_eq!((f.line, f.column), (2, 4));
        assert_eq!(f.params, ["params", "data"]);
        let result = sandbox.evaluate(&rules.script(f), &input()).expect("runs");
        assert_eq!(result.as_bool(), Ok(true));
    }

    #[test]
    fn the_sandbox_refuses_escape_hatches() {
        let sandbox = Sandbox::default();
        for source in [
            "fn f() { eval(\"1\") }",
            "import \"fs\" as fs;",
            "fn f(data) { undefined_name }",
        ] {
            assert!(
                matches!(
                    sandbox.compile_rules(source),
                    Err(ScriptError::Compile { .. })
                ),
                "{source}"
            );
        }
        let huge = "1 + ".repeat(400_000) + "1";
        assert!(matches!(
            sandbox.compile_expression(&huge),
            Err(ScriptError::TooLarge { .. })
        ));
    }

    #[test]
    fn scripts_cannot_wait_or_read_the_clock() {
        let sandbox = Sandbox::default();
        let rules = RulesFile::compile(&sandbox, "t", "fn nap(data) { sleep(3600) }\nfn nap2(data) { sleep(0.5) }\nfn clock(data) { timestamp() }")
            .expect("compiles");
        let started = std::time::Instant::now();
        for name in ["nap", "nap2", "clock"] {
            let f = rules.function(name).expect("declared");
            let err = sandbox
                .evaluate(&rules.script(f), &input())
                .expect_err("refused");
            assert!(
                matches!(err, ScriptError::Runtime(ref m) if m.contains("not available")),
                "{err:?}"
            );
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn a_runaway_script_is_stopped() {
        let sandbox = Sandbox::default();
        let rules = RulesFile::compile(&sandbox, "spin", "fn forever(data) { loop { } }\nfn deep(data) { deep(data) }\nfn big(data) { let s = \"x\"; loop { s += s; } }")
            .expect("compiles");
        for name in ["forever", "deep", "big"] {
            let f = rules.function(name).expect("declared");
            let err = sandbox
                .evaluate(&rules.script(f), &input())
                .expect_err("stopped");
            assert!(matches!(err, ScriptError::Limit(_)), "{name}: {err:?}");
        }
    }
}
