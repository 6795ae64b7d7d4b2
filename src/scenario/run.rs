//! Running scenario files: each scenario on a fresh engine over a throwaway store in a temp
//! folder, on a virtual clock, stopping at the first step that does not go as written.
//!
//! What the scenarios exercised is collected as they run ([`Exercised`]), so that coverage of
//! transitions, timers and refusals can be reported against the definitions.

use super::{AddresseeExpect, Expect, ScenarioFile, Step};
use crate::clock::VirtualClock;
use crate::definition::duration::Duration;
use crate::definition::{Document, parse_yaml};
use crate::diagnostic::{Diagnostic, Span};
use crate::engine::{Config, Engine, EngineError, Fire, StartRequest};
use crate::i18n::text;
use crate::machine::{Actor, EntryKind, Instance};
use crate::notify::Addressee;
use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const SCENARIOS: Document = Document {
    noun: || text!("diag-document-scenario"),
    empty_hint: || text!("hint-empty-scenario"),
    type_hint: || text!("hint-type-scenario"),
};

/// The outcome of one scenario.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    /// The scenario file.
    pub file: PathBuf,
    /// The workflow the file's scenarios start.
    pub workflow: String,
    /// The scenario's name.
    pub name: String,
    /// Steps run (all of them when it passed).
    pub steps: usize,
    /// The first step that did not go as written, and how.
    pub failure: Option<Failure>,
    /// What the scenario's steps took, for coverage (not in the JSON report).
    #[serde(skip)]
    pub exercised: Exercised,
}

/// Where and how a scenario failed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Failure {
    /// The line of the failing step (or of the file's mistake), from 1.
    pub line: u32,
    /// The column there, from 1.
    pub column: u32,
    /// What went otherwise than written.
    pub message: String,
}

/// What a scenario did to its workflow's definition, for coverage.
#[derive(Debug, Clone, Default)]
pub struct Exercised {
    /// `(workflow, state, event)` steps taken by people or by timers.
    pub transitions: BTreeSet<(String, String, String)>,
    /// `(workflow, state, event)` of timers that fired.
    pub timers: BTreeSet<(String, String, String)>,
    /// `(workflow, state, event, refusal code)` of steps refused as expected.
    pub refusals: BTreeSet<(String, String, String, String)>,
}

/// Runs every scenario of one file, loading workflows from `sources`.
pub async fn run_file(path: &Path, text: &str, sources: &[PathBuf]) -> Vec<Outcome> {
    let file: ScenarioFile = match parse_yaml(path, text, &SCENARIOS, Default::default()) {
        Ok(file) => file,
        Err(diagnostic) => return vec![unreadable(path, &diagnostic)],
    };
    let mut out = Vec::new();
    for scenario in &file.scenarios {
        let clock = scenario.value.clock.as_ref().or(file.clock.as_ref());
        let mut params = serde_json::Map::new();
        for given in [&file.params, &scenario.value.params].into_iter().flatten() {
            params.extend(given.value.clone());
        }
        let params_at = [&scenario.value.params, &file.params]
            .into_iter()
            .flatten()
            .map(|p| p.span)
            .next();
        let mut run = Run {
            workflow: file.workflow.as_str(),
            folder: path.parent().unwrap_or(Path::new(".")),
            paths: sources,
            texts: None,
            current: None,
            started: Vec::new(),
            exercised: Exercised::default(),
            notified: Default::default(),
        };
        let setup = Setup {
            clock,
            params,
            params_at,
            sources,
        };
        let (steps, failure) = match run.scenario(&setup, &scenario.value.steps).await {
            Ok(steps) => (steps, None),
            Err((steps, span, message)) => (
                steps,
                Some(Failure {
                    line: span.line,
                    column: span.column,
                    message,
                }),
            ),
        };
        out.push(Outcome {
            file: path.to_path_buf(),
            workflow: file.workflow.value.clone(),
            name: scenario.value.name.clone(),
            steps,
            failure,
            exercised: run.exercised,
        });
    }
    if out.is_empty() {
        // A file that runs nothing proves nothing: it fails, so that an emptied or
        // half-written file is not taken for a passing one.
        out.push(Outcome {
            file: path.to_path_buf(),
            workflow: file.workflow.value.clone(),
            name: "(the file)".into(),
            steps: 0,
            failure: Some(Failure {
                line: file.workflow.span.line,
                column: file.workflow.span.column,
                message:
                    "the file has no scenarios: add one under `scenarios:`, or delete the file"
                        .into(),
            }),
            exercised: Exercised::default(),
        });
    }
    out
}

fn unreadable(path: &Path, diagnostic: &Diagnostic) -> Outcome {
    Outcome {
        file: path.to_path_buf(),
        workflow: String::new(),
        name: "(the file)".into(),
        steps: 0,
        failure: Some(Failure {
            line: diagnostic.span.line,
            column: diagnostic.span.column,
            message: format!(
                "{} ({}: {})",
                diagnostic.message, diagnostic.code, diagnostic.hint
            ),
        }),
        exercised: Exercised::default(),
    }
}

/// What a scenario runs on: the clock's start, parameter values, where the workflows are.
struct Setup<'a> {
    clock: Option<&'a crate::definition::located::Located<String>>,
    params: serde_json::Map<String, Value>,
    /// Where the `params:` were given, for a failure caused by them.
    params_at: Option<Span>,
    sources: &'a [PathBuf],
}

/// A scenario's failure: steps run before it, where, and what went wrong.
type Stop = (usize, Span, String);

pub(super) struct Run<'a> {
    pub(super) workflow: &'a str,
    /// The scenario file's folder: where a `migrate` step's file is read from.
    pub(super) folder: &'a Path,
    /// Where the workflows are read from.
    pub(super) paths: &'a [PathBuf],
    /// The definition texts in force once a `migrate` step has replaced the workflow's file.
    pub(super) texts: Option<crate::catalog::Sources>,
    /// The instance later steps act on: the last one started.
    current: Option<String>,
    started: Vec<String>,
    exercised: Exercised,
    /// Per instance, the first entry whose notices the next `notified:` check reads.
    notified: std::collections::HashMap<String, u64>,
}

impl Run<'_> {
    async fn scenario(
        &mut self,
        setup: &Setup<'_>,
        steps: &[crate::definition::located::Located<Step>],
    ) -> Result<usize, Stop> {
        let sources = setup.sources;
        let start = match setup.clock {
            Some(text) => {
                parse_time(text.as_str()).ok_or_else(|| (0, text.span, bad_time(text.as_str())))?
            }
            None => parse_time("2026-03-02").unwrap_or_default(),
        };
        let folder = tempfile::tempdir().map_err(|e| {
            (
                0,
                Span::START,
                format!("cannot make a throwaway store: {e}"),
            )
        })?;
        let mut parameters = crate::catalog::Parameters::new();
        if !setup.params.is_empty() {
            parameters.insert(self.workflow.to_string(), setup.params.clone());
        }
        let config = Config::new(folder.path().join("data"))
            .sources(sources.to_vec())
            .parameters(parameters)
            .clock(Arc::new(VirtualClock::new(start)))
            // A scenario of one workflow runs while another has errors; when its own workflow
            // did not load, the first error is said below.
            .allow_load_errors();
        let engine = Engine::open(config)
            .await
            .map_err(|e| (0, Span::START, format!("the engine does not open: {e}")))?;
        if engine.definition_of(self.workflow).is_none() {
            // Say why: the first error of the load (a `params:` value that does not fit the
            // parameter's type, for example); `sopflow validate` tells the whole story.
            let report = engine.load_report();
            let why = report
                .diagnostics
                .iter()
                .find(|d| d.is_error())
                .map(|d| {
                    format!(
                        "; first error, {}:{}: {} ({}: {})",
                        d.file.display(),
                        d.span.line,
                        d.message,
                        d.code,
                        d.hint
                    )
                })
                .unwrap_or_default();
            return Err((
                0,
                setup.params_at.unwrap_or(Span::START),
                format!(
                    "no valid workflow `{}` is loaded from {}{why} (run `sopflow validate`)",
                    self.workflow,
                    sources
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        for (done, step) in steps.iter().enumerate() {
            self.step(&engine, &step.value)
                .await
                .map_err(|message| (done, step.span, message))?;
        }
        self.collect(&engine).await;
        let last = steps.last().map_or(Span::START, |s| s.span);
        audit(&engine)
            .await
            .map_err(|message| (steps.len(), last, message))?;
        Ok(steps.len())
    }

    async fn step(&mut self, engine: &Engine, step: &Step) -> Result<(), String> {
        let kinds = [
            step.start.is_some(),
            step.fire.is_some(),
            step.advance.is_some(),
            step.advance_to.is_some(),
            step.migrate.is_some(),
            step.expect.is_some(),
        ];
        if kinds.iter().filter(|k| **k).count() != 1 {
            return Err(
                "a step is exactly one of `start`, `fire`, `advance`, `advance_to`, `migrate`, `expect`"
                    .into(),
            );
        }
        if step.blocked.is_some() && step.migrate.is_none() {
            return Err("`blocked` goes with a `migrate` step".into());
        }
        if step.refused.is_some() && step.start.is_none() && step.fire.is_none() {
            return Err("`refused` goes with a `start` or `fire` step".into());
        }
        if step.reason.is_some() && step.refused.is_none() {
            return Err("`reason` goes with `refused`: name the refusal's code too".into());
        }
        if let Some(code) = &step.refused {
            let codes = crate::machine::refusal::CODES.iter().map(|(c, _)| *c);
            if !codes.clone().any(|c| c == code) {
                return Err(format!(
                    "`{code}` is not a refusal code: {} (the README lists them)",
                    crate::diagnostic::suggestion(code, codes)
                ));
            }
        }
        if let Some(start) = &step.start {
            let mut request = StartRequest::new(Actor::new(&start.actor, &start.roles));
            request.data = start.data.clone();
            request.business_key = start.business_key.clone();
            let result = engine.start(self.workflow, request).await;
            let state = "(start)".to_string();
            if let Some(outcome) = self.answer(result, step, &state, "start")? {
                self.current = Some(outcome.id.clone());
                self.started.push(outcome.id);
            }
        } else if let Some(fire) = &step.fire {
            let id = self.current()?;
            let before = engine.get(&id).await.map_err(|e| e.to_string())?;
            let mut request = Fire::new(&fire.event, Actor::new(&fire.actor, &fire.roles))
                .payload(Value::Object(fire.payload.clone()));
            if let Some(comment) = &fire.comment {
                request = request.comment(comment);
            }
            let result = engine.fire(&id, request).await;
            self.answer(result, step, &before.state, &fire.event)?;
        } else if let Some(text) = &step.advance {
            let duration: Duration = text
                .parse()
                .map_err(|e| format!("`advance: {text}`: {e}"))?;
            engine.advance(duration).await.map_err(|e| e.to_string())?;
        } else if let Some(text) = &step.advance_to {
            let until = parse_time(text).ok_or_else(|| bad_time(text))?;
            engine.advance_to(until).await.map_err(|e| e.to_string())?;
        } else if let Some(migrate) = &step.migrate {
            self.migrate(engine, migrate, step.blocked.as_deref())
                .await?;
        } else if let Some(expect) = &step.expect {
            let id = self.current()?;
            let instance = engine.get(&id).await.map_err(|e| e.to_string())?;
            let history = engine.history(&id).await.map_err(|e| e.to_string())?.len();
            check(expect, &instance, history)?;
            if let Some(wanted) = &expect.notified {
                let notices = self.notices_since_check(engine, &id).await?;
                check_notices(wanted, &notices)?;
            }
        }
        Ok(())
    }

    /// The notices of `id`'s entries since the last `notified:` check, as
    /// [`crate::notify::notices`] computes them from each entry and the instance after it.
    async fn notices_since_check(
        &mut self,
        engine: &Engine,
        id: &str,
    ) -> Result<Vec<crate::notify::Notice>, String> {
        let from = self.notified.get(id).copied().unwrap_or(0);
        let history = engine.history(id).await.map_err(|e| e.to_string())?;
        let settings = crate::notify::Settings::default();
        let mut after: Option<Instance> = None;
        let mut notices = Vec::new();
        for entry in &history {
            match after.as_mut() {
                None => after = Some(Instance::begin(entry).map_err(|e| e.to_string())?),
                Some(instance) => instance.apply(entry).map_err(|e| e.to_string())?,
            }
            let Some(instance) = after.as_ref() else {
                continue;
            };
            if entry.seq < from {
                continue;
            }
            let def = engine
                .definition_blocking(&entry.version)
                .await
                .map_err(|e| e.to_string())?;
            notices.extend(crate::notify::notices(&def, entry, instance, &settings));
        }
        if let Some(last) = history.last() {
            self.notified.insert(id.to_string(), last.seq + 1);
        }
        Ok(notices)
    }

    /// Checks a command's answer against `refused`, and records a refusal for coverage.
    fn answer<T: Into<Answered>>(
        &mut self,
        result: Result<T, EngineError>,
        step: &Step,
        state: &str,
        event: &str,
    ) -> Result<Option<Answered>, String> {
        match (result, &step.refused) {
            (Ok(done), None) => Ok(Some(done.into())),
            (Ok(_), Some(code)) => Err(format!(
                "`{event}` was taken, but the scenario expects it refused with `{code}`"
            )),
            (Err(EngineError::Refused(refusal)), Some(code)) if refusal.code() == code => {
                let message = refusal.to_string();
                if let Some(reason) = &step.reason
                    && !message.contains(reason.as_str())
                {
                    return Err(format!(
                        "`{event}` was refused with `{code}` as expected, but its reason does \
                         not say \"{reason}\": {message}"
                    ));
                }
                self.exercised.refusals.insert((
                    self.workflow.to_string(),
                    state.to_string(),
                    event.to_string(),
                    code.clone(),
                ));
                Ok(None)
            }
            (Err(err), Some(code)) => Err(format!(
                "`{event}` should be refused with `{code}`, but: {err} ({})",
                err.code()
            )),
            (Err(err), None) => Err(format!("`{event}` failed: {err} ({})", err.code())),
        }
    }

    pub(super) fn current(&self) -> Result<String, String> {
        self.current
            .clone()
            .ok_or_else(|| "no instance yet: begin the scenario with a `start` step".into())
    }

    /// Records the transitions and timers every started instance went through.
    async fn collect(&mut self, engine: &Engine) {
        for id in &self.started {
            let Ok(history) = engine.history(id).await else {
                continue;
            };
            for entry in history {
                let Some(from) = entry.from.clone() else {
                    continue;
                };
                let key = (
                    entry.workflow.to_string(),
                    from.to_string(),
                    entry.event.to_string(),
                );
                match entry.kind {
                    EntryKind::Event => {
                        self.exercised.transitions.insert(key);
                    }
                    EntryKind::Timer => {
                        if entry.timer.as_ref().is_some_and(|t| t.refused.is_none()) {
                            self.exercised.transitions.insert(key.clone());
                        }
                        self.exercised.timers.insert(key);
                    }
                    EntryKind::Start | EntryKind::ChildFinished | EntryKind::Migrate => {}
                }
            }
        }
    }
}

/// Every scenario ends with the auditor's checks on its store: each history verifies (chains,
/// snapshots, indexes, definition versions) and replays through the pure step to itself. A failure here is the engine's, not the
/// scenario's, and is reported as such.
async fn audit(engine: &Engine) -> Result<(), String> {
    let problems = engine
        .blocking(|engine| {
            let mut problems = Vec::new();
            engine.verify_store(
                engine.now() + chrono::Duration::seconds(1),
                &mut |p| problems.push(p.to_string()),
                &mut |_| {},
            )?;
            Ok(problems)
        })
        .await
        .map_err(|e| format!("audit verify failed: {e}"))?;
    if !problems.is_empty() {
        return Err(format!(
            "the store fails `audit verify` after the scenario (an engine fault): {}",
            problems.join("; ")
        ));
    }
    let mut differences = Vec::new();
    engine
        .replay_all(&mut |report| {
            differences.extend(report.differences.iter().map(|d| d.message()));
        })
        .await
        .map_err(|e| format!("audit replay failed: {e}"))?;
    if differences.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the history does not replay to itself after the scenario (an engine fault): {}",
            differences.join("; ")
        ))
    }
}

/// The id of what a `start` or `fire` produced.
struct Answered {
    id: String,
}

impl From<crate::engine::Outcome> for Answered {
    fn from(outcome: crate::engine::Outcome) -> Answered {
        Answered {
            id: outcome.instance.id.to_string(),
        }
    }
}

fn check(expect: &Expect, instance: &Instance, history: usize) -> Result<(), String> {
    if let Some(state) = &expect.state
        && *state != instance.state
    {
        return Err(format!(
            "expected state `{state}`, found `{}`",
            instance.state
        ));
    }
    if let Some(finished) = expect.finished
        && finished != instance.finished
    {
        return Err(format!(
            "expected the instance {}finished, but it is {}",
            if finished { "" } else { "not " },
            if instance.finished {
                "finished"
            } else {
                "still running"
            }
        ));
    }
    for (field, want) in expect.data.iter().flatten() {
        let got = instance.data.get(field).unwrap_or(&Value::Null);
        if !same(want, got) {
            return Err(format!("expected `{field}` = {want}, found {got}"));
        }
    }
    if let Some(timers) = &expect.timers {
        let mut pending = instance.timers.clone();
        pending.sort_by_key(|t| t.due);
        let found: Vec<String> = pending.iter().map(|t| t.event.clone()).collect();
        let wanted: Vec<String> = timers.iter().map(|t| t.event.clone()).collect();
        if found != wanted {
            return Err(format!(
                "expected pending timers {wanted:?}, found {found:?}"
            ));
        }
        for (want, got) in timers.iter().zip(&pending) {
            if let Some(due) = &want.due {
                let due_at = parse_time(due).ok_or_else(|| bad_time(due))?;
                if due_at != got.due {
                    return Err(format!(
                        "expected timer `{}` due {due}, found it due {}",
                        want.event,
                        china(got.due)
                    ));
                }
            }
        }
    }
    if let Some(awaiting) = &expect.awaiting {
        let found: Vec<String> = instance
            .approval
            .as_ref()
            .map(|a| {
                a.signers
                    .iter()
                    .enumerate()
                    .filter(|(i, s)| s.required && !a.signatures.iter().any(|g| g.signer == *i))
                    .map(|(_, s)| s.role.clone())
                    .collect()
            })
            .unwrap_or_default();
        if &found != awaiting {
            return Err(format!(
                "expected the approval to await {awaiting:?}, found {found:?}"
            ));
        }
    }
    if let Some(length) = expect.history
        && length != history
    {
        return Err(format!(
            "expected {length} history entries, found {history}"
        ));
    }
    Ok(())
}

/// The notices found against those a scenario expects: as many, in order, each matching.
fn check_notices(
    wanted: &[super::NoticeExpect],
    found: &[crate::notify::Notice],
) -> Result<(), String> {
    let list = || {
        if found.is_empty() {
            "none".to_string()
        } else {
            found
                .iter()
                .map(describe_notice)
                .collect::<Vec<_>>()
                .join("; ")
        }
    };
    if wanted.len() != found.len() {
        return Err(format!(
            "expected {} notice(s), found {}: {}",
            wanted.len(),
            found.len(),
            list()
        ));
    }
    for (n, (want, got)) in wanted.iter().zip(found).enumerate() {
        let fits = |expected: &Option<String>, text: &str| {
            expected.as_ref().is_none_or(|e| {
                if want.exact {
                    e.trim() == text
                } else {
                    text.contains(e.as_str())
                }
            })
        };
        let missing = want.to.iter().flat_map(|to| &to.0).find(|to| {
            !got.recipients.iter().any(|r| match (to, r) {
                (AddresseeExpect::Role(a), Addressee::Role { id, .. }) => a == id,
                (AddresseeExpect::User(a), Addressee::User { id }) => a == id,
                (AddresseeExpect::Channel(a), Addressee::Channel { name }) => a == name,
                _ => false,
            })
        });
        let how = if want.exact {
            "is not"
        } else {
            "does not contain"
        };
        let mismatch = if let Some(to) = missing {
            Some(format!("it is not sent to {}", describe_expected(to)))
        } else if want.id.is_some() && want.id != got.id {
            Some(format!(
                "its id is {}, not {}",
                got.id.as_deref().unwrap_or("(none)"),
                want.id.as_deref().unwrap_or_default()
            ))
        } else if !fits(&want.title, &got.title) {
            Some(format!(
                "its title {how} \"{}\"",
                want.title.as_deref().unwrap_or_default()
            ))
        } else if !fits(&want.body, &got.body) {
            Some(format!(
                "its message {how} \"{}\"",
                want.body.as_deref().unwrap_or_default()
            ))
        } else {
            None
        };
        if let Some(mismatch) = mismatch {
            return Err(format!(
                "notice {}: {mismatch}; it is {}",
                n + 1,
                describe_notice(got)
            ));
        }
        if let Some(problem) = &got.problem {
            return Err(format!("notice {} could not be rendered: {problem}", n + 1));
        }
    }
    Ok(())
}

fn describe_expected(to: &AddresseeExpect) -> String {
    match to {
        AddresseeExpect::Role(id) => format!("role {id}"),
        AddresseeExpect::User(id) => format!("user {id}"),
        AddresseeExpect::Channel(name) => format!("channel {name}"),
    }
}

fn describe_notice(notice: &crate::notify::Notice) -> String {
    let to: Vec<String> = notice
        .recipients
        .iter()
        .map(|r| match r {
            Addressee::Role { id, .. } => format!("role {id}"),
            Addressee::User { id } => format!("user {id}"),
            Addressee::Channel { name } => format!("channel {name}"),
        })
        .collect();
    format!(
        "to [{}]: \"{}\" / \"{}\"",
        to.join(", "),
        notice.title,
        notice.body.replace('\n', " ")
    )
}

/// JSON equality, with numbers compared by value and times by the instant they name.
fn same(want: &Value, got: &Value) -> bool {
    match (want, got) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::String(a), Value::String(b)) if a != b => {
            match (
                DateTime::parse_from_rfc3339(a),
                DateTime::parse_from_rfc3339(b),
            ) {
                (Ok(a), Ok(b)) => a == b,
                _ => false,
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len() && a.iter().all(|(k, v)| b.get(k).is_some_and(|w| same(v, w)))
        }
        _ => want == got,
    }
}

/// An RFC 3339 time, or a date meaning 09:00 China Standard Time.
fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text.trim()) {
        return Some(t.with_timezone(&Utc));
    }
    let date = NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").ok()?;
    date.and_hms_opt(9, 0, 0)?
        .and_local_timezone(FixedOffset::east_opt(8 * 3600)?)
        .single()
        .map(|t| t.with_timezone(&Utc))
}

fn bad_time(text: &str) -> String {
    format!(
        "`{text}` is not a time: write \"2026-03-02T09:30:00+08:00\", or a date \"2026-03-02\" (09:00)"
    )
}

fn china(t: DateTime<Utc>) -> String {
    match FixedOffset::east_opt(8 * 3600) {
        Some(offset) => t.with_timezone(&offset).to_rfc3339(),
        None => t.to_rfc3339(),
    }
}
