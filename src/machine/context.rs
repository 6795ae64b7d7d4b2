//! What a step's scripts read and how they are run: the context (`data`, `payload`, `actor`,
//! `params`, `now`, `calendar`), guards that must return true or false, actions that must
//! return a map of declared fields, and computed deadlines.

use super::command::Actor;
use super::refusal::Refusal;
use super::value::{self, from_dynamic, to_rhai_map};
use crate::definition::Definition;
use crate::script::{Input, Sandbox, Script, ScriptError};
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use rhai::Dynamic;
use serde_json::{Map, Value};

/// What a step's checks and scripts read. The scripts' view is built on first use, part by
/// part: a step without guards, actions or conditions never converts its data to rhai, and
/// a guard that reads only `data` (`data.amount < 15000`) never builds the actor, the
/// payload or the time. Each part, once built, is shared by the step's later scripts.
pub(super) struct Context<'a> {
    data_value: std::cell::OnceCell<Dynamic>,
    payload_value: std::cell::OnceCell<Dynamic>,
    actor_value: std::cell::OnceCell<Dynamic>,
    params_value: std::cell::OnceCell<Dynamic>,
    now_value: std::cell::OnceCell<Dynamic>,
    params: &'a Dynamic,
    calendar: &'a Dynamic,
    pub(super) at: DateTime<Utc>,
    pub(super) actor: &'a Actor,
    pub(super) data: &'a Map<String, Value>,
    pub(super) payload: &'a Map<String, Value>,
}

impl<'a> Context<'a> {
    pub(super) fn new(
        def: &'a Definition,
        data: &'a Map<String, Value>,
        payload: &'a Map<String, Value>,
        actor: &'a Actor,
        at: DateTime<Utc>,
    ) -> Context<'a> {
        Context {
            data_value: std::cell::OnceCell::new(),
            payload_value: std::cell::OnceCell::new(),
            actor_value: std::cell::OnceCell::new(),
            params_value: std::cell::OnceCell::new(),
            now_value: std::cell::OnceCell::new(),
            params: &def.params,
            calendar: &def.calendar_value,
            at,
            actor,
            data,
            payload,
        }
    }

    /// The same context after the step's changes to `data`.
    pub(super) fn after<'b>(&'b self, data: &'b Map<String, Value>) -> Context<'b> {
        Context {
            data_value: std::cell::OnceCell::new(),
            payload_value: self.payload_value.clone(),
            actor_value: self.actor_value.clone(),
            params_value: self.params_value.clone(),
            now_value: self.now_value.clone(),
            params: self.params,
            calendar: self.calendar,
            at: self.at,
            actor: self.actor,
            data,
            payload: self.payload,
        }
    }

    /// What `script` reads of the context, each part built (and kept) on first use; the
    /// parts it does not read are unit, which it never looks up.
    fn input(&self, script: &Script) -> Input {
        let reads = script.reads();
        let part =
            |name: &str, cell: &std::cell::OnceCell<Dynamic>, build: &dyn Fn() -> Dynamic| {
                if reads.contains(name) {
                    cell.get_or_init(build).clone()
                } else {
                    Dynamic::UNIT
                }
            };
        let data = part("data", &self.data_value, &|| {
            Dynamic::from_map(to_rhai_map(self.data)).into_shared()
        });
        let payload = part("payload", &self.payload_value, &|| {
            Dynamic::from_map(to_rhai_map(self.payload)).into_shared()
        });
        let actor = part("actor", &self.actor_value, &|| {
            let mut actor = rhai::Map::new();
            actor.insert("id".into(), Dynamic::from(self.actor.id.clone()));
            actor.insert(
                "roles".into(),
                Dynamic::from_array(
                    self.actor
                        .roles
                        .iter()
                        .map(|r| Dynamic::from(r.clone()))
                        .collect(),
                ),
            );
            Dynamic::from_map(actor).into_shared()
        });
        let params = part("params", &self.params_value, &|| {
            self.params.clone().into_shared()
        });
        let now = part("now", &self.now_value, &|| {
            Dynamic::from(self.at.to_rfc3339_opts(SecondsFormat::Secs, true))
        });
        let calendar = if reads.contains("calendar") {
            self.calendar.clone()
        } else {
            Dynamic::UNIT
        };
        Input::shared(data, payload, actor, params, now, calendar)
    }
}

/// Whether a guard holds. A guard that stops with `throw "reason"` does not hold, and its
/// reason goes into `reasons` so that the refusal can say why in the process owner's words.
pub(super) fn guard_holds(
    def: &Definition,
    guard: &str,
    ctx: &Context,
    sandbox: &Sandbox,
    reasons: &mut Vec<String>,
) -> Result<bool, Refusal> {
    let script = def.scripts.get(guard).ok_or_else(|| Refusal::GuardError {
        guard: guard.to_string(),
        error: crate::script::ScriptError::Runtime(
            "the guard was not compiled with its definition".into(),
        ),
    })?;
    let result = match sandbox.evaluate(script, &ctx.input(script)) {
        Ok(result) => result,
        Err(crate::script::ScriptError::Thrown(reason)) => {
            reasons.push(reason);
            return Ok(false);
        }
        Err(error) => {
            return Err(Refusal::GuardError {
                guard: guard.to_string(),
                error,
            });
        }
    };
    result.as_bool().map_err(|type_name| Refusal::GuardError {
        guard: guard.to_string(),
        error: crate::script::ScriptError::Runtime(format!(
            "it returned {type_name}, not true or false"
        )),
    })
}

pub(super) fn run_action(
    def: &Definition,
    action: &str,
    ctx: &Context,
    sandbox: &Sandbox,
) -> Result<Map<String, Value>, Refusal> {
    let fail = |reason: String| Refusal::ScriptFailed {
        purpose: "action",
        script: action.to_string(),
        reason,
        thrown: None,
    };
    let result = evaluate(def, "action", action, ctx, sandbox)?;
    let map = result.try_cast::<rhai::Map>().ok_or_else(|| {
        fail("it must return a map of fields to set, like #{ field: value }".into())
    })?;
    let mut changes = Map::new();
    for (key, value) in map {
        let key = key.to_string();
        let field = def.workflow.fields.get(&key).ok_or_else(|| {
            fail(format!(
                "it sets `{key}`, which the workflow does not declare"
            ))
        })?;
        let json = from_dynamic(&value).ok_or_else(|| {
            fail(format!(
                "the value for `{key}` is not data ({})",
                value.type_name()
            ))
        })?;
        changes.insert(key.clone(), value::convert(&key, field, &json)?);
    }
    Ok(changes)
}

/// A computed deadline: the script returns a date-time (RFC 3339) or a date (local midnight
/// on the timer's calendar).
pub(super) fn deadline(
    def: &Definition,
    calendar: &crate::calendar::Calendar,
    script: &str,
    ctx: &Context,
    sandbox: &Sandbox,
) -> Result<DateTime<Utc>, Refusal> {
    let fail = |reason: String| Refusal::ScriptFailed {
        purpose: "deadline",
        script: script.to_string(),
        reason,
        thrown: None,
    };
    let result = evaluate(def, "deadline", script, ctx, sandbox)?;
    let text = result.into_string().map_err(|t| {
        fail(format!(
            "it returned {t}, not a date or time (return `calendar.add(now, \"2 working days\")` or a text like \"2026-03-01T09:00:00+08:00\")"
        ))
    })?;
    if let Ok(t) = DateTime::parse_from_rfc3339(text.trim()) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map(|d| calendar.at(d, chrono::NaiveTime::MIN))
        .map_err(|_| {
            fail(format!(
                "it returned `{text}`, not a date (2026-03-01) or time (2026-03-01T09:00:00+08:00)"
            ))
        })
}

/// Runs the compiled script `text` of the definition on the step's context; a failure is the
/// refusal of a script with this `purpose` (an action, a deadline).
fn evaluate(
    def: &Definition,
    purpose: &'static str,
    text: &str,
    ctx: &Context,
    sandbox: &Sandbox,
) -> Result<Dynamic, Refusal> {
    let fail = |reason: String| Refusal::ScriptFailed {
        purpose,
        script: text.to_string(),
        reason,
        thrown: None,
    };
    let script = def.scripts.get(text).ok_or_else(|| {
        fail(format!(
            "the {purpose} was not compiled with its definition"
        ))
    })?;
    sandbox
        .evaluate(script, &ctx.input(script))
        .map_err(|e| match e {
            ScriptError::Thrown(said) => Refusal::ScriptFailed {
                purpose,
                script: text.to_string(),
                reason: said.clone(),
                thrown: Some(said),
            },
            other => fail(other.to_string()),
        })
}
