//! Form inputs for a workflow's fields, and the payload read back from a posted form.
//!
//! Field inputs are named `f.<field>` so that they can never collide with the form's own
//! keys (`event`, `comment`, `_csrf`...). Values go to the engine as the browser sends them
//! (text): the engine converts them to the declared types and refuses what does not fit,
//! so the console never second-guesses a rule. Only what a browser cannot express is
//! translated here: an unticked checkbox (sent as `false` through a hidden default), a
//! `datetime-local` value without an offset (read as Beijing time), a list (one item per line).

use super::Form;
use crate::definition::model::{Field, FieldType, Workflow};
use crate::i18n::Lang;
use chrono::{NaiveDateTime, TimeZone};
use maud::{Markup, html};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The prefix of field inputs.
const FIELD: &str = "f.";

/// What the person typed, by field, to show again when the engine refused it.
pub type Typed = BTreeMap<String, String>;

/// The typed values of a posted form's fields.
pub fn typed(form: &Form) -> Typed {
    form.pairs()
        .iter()
        .filter_map(|(k, v)| k.strip_prefix(FIELD).map(|k| (k.to_string(), v.clone())))
        .collect()
}

/// The payload of a posted form: its `f.*` fields (blank ones left out, so that the engine
/// names a missing field as missing), plus `comment` when `with_comment`.
pub fn payload(workflow: &Workflow, form: &Form, with_comment: bool) -> Map<String, Value> {
    let mut out = Map::new();
    for (name, raw) in typed(form) {
        let field = workflow.fields.get(&name);
        if let Some(value) = value(field, &raw) {
            out.insert(name, value);
        }
    }
    if with_comment && let Some(comment) = form.text("comment") {
        out.insert(
            crate::definition::model::COMMENT.to_string(),
            Value::String(comment.to_string()),
        );
    }
    out
}

/// One field's value as the engine is given it; `None` for a blank.
fn value(field: Option<&Field>, raw: &str) -> Option<Value> {
    let kind = field.map(|f| f.kind.value);
    let text = raw.trim();
    match kind {
        Some(FieldType::Bool) if text == "true" || text == "false" => {
            Some(Value::Bool(text == "true"))
        }
        Some(FieldType::List) => {
            let items: Vec<Value> = raw
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(|l| Value::String(l.to_string()))
                .collect();
            (!items.is_empty()).then_some(Value::Array(items))
        }
        Some(FieldType::Datetime) if !text.is_empty() => Some(Value::String(with_offset(text))),
        Some(FieldType::Text) if !text.is_empty() => Some(Value::String(raw.to_string())),
        _ if text.is_empty() => None,
        _ => Some(Value::String(text.to_string())),
    }
}

/// A `datetime-local` value (`2026-03-02T09:30`) as RFC 3339 in Beijing time; anything else
/// is passed on for the engine to judge.
fn with_offset(text: &str) -> String {
    if chrono::DateTime::parse_from_rfc3339(text).is_ok() {
        return text.to_string();
    }
    ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .and_then(|naive| {
            crate::audit::chain::default_offset()
                .from_local_datetime(&naive)
                .single()
        })
        .map_or_else(|| text.to_string(), |t| t.to_rfc3339())
}

/// One field a form offers: whether the step must supply it.
pub struct Offered<'w> {
    pub name: &'w str,
    pub field: &'w Field,
    pub required: bool,
}

/// The fields an event's payload may carry, in declaration order, as the workflow's controls
/// say: those that list the event in `required_on` (or that the transition `requires`) must
/// be given, those in `optional_on` may be. A fixed field that already has a value is left
/// out unless the step must supply it again: it could not change. `data` is the instance's
/// (empty for a start).
pub fn writable_fields<'w>(
    workflow: &'w Workflow,
    event: &str,
    requires: &[String],
    data: &Map<String, Value>,
) -> Vec<Offered<'w>> {
    workflow
        .fields
        .iter()
        .filter_map(|(name, field)| {
            let required =
                field.is_required_on(event) || requires.iter().any(|r| r == name.as_str());
            let settled = field.fixed && data.get(name.as_str()).is_some_and(|v| !v.is_null());
            (required || (field.is_writable_on(event) && !settled)).then_some(Offered {
                name: name.as_str(),
                field,
                required,
            })
        })
        .collect()
}

/// An input for one field, labelled with its title; `id` makes the label's target unique on
/// a page with several forms.
pub fn input(
    lang: Lang,
    id: &str,
    name: &str,
    field: &Field,
    typed: Option<&str>,
    required: bool,
) -> Markup {
    let t = |id: &str| lang.text(id);
    let key = format!("{FIELD}{name}");
    let dom_id = format!("{id}-{name}");
    let title = field.title.as_deref().unwrap_or(name);
    let value = typed.unwrap_or_default();
    let kind = field.kind.value;
    html! {
        div.field data-field=(name) {
            @if kind == FieldType::Bool && !required {
                // An optional yes/no: left blank, it is not given at all.
                label for=(dom_id) { (title) }
                select #(dom_id) name=(key) {
                    option value="" { (t("console-form-not-given")) }
                    option value="true" selected[value == "true"] { (t("console-form-yes")) }
                    option value="false" selected[value == "false"] { (t("console-form-no")) }
                }
            } @else if kind == FieldType::Bool {
                label.check for=(dom_id) {
                    input type="hidden" name=(key) value="false";
                    input #(dom_id) type="checkbox" name=(key) value="true" checked[value == "true"];
                    " " (title) @if required { span.req title=(t("console-form-required")) { " *" } }
                }
            } @else {
                label for=(dom_id) {
                    (title) @if required { span.req title=(t("console-form-required")) { " *" } }
                }
                @match kind {
                    FieldType::Text => {
                        textarea #(dom_id) name=(key) rows="3" maxlength=[field.length_limit()]
                            required[required] { (value) }
                    }
                    FieldType::List => {
                        textarea #(dom_id) name=(key) rows="3" required[required]
                            placeholder=(t("console-form-one-per-line")) { (value) }
                    }
                    FieldType::Enum => {
                        select #(dom_id) name=(key) required[required] {
                            option value="" { (t("console-form-choose")) }
                            @for v in &field.values {
                                option value=(v.as_str()) selected[v.as_str() == value] { (v.as_str()) }
                            }
                        }
                    }
                    FieldType::String => {
                        input #(dom_id) type="text" name=(key) value=(value)
                            maxlength=[field.length_limit()] required[required];
                    }
                    _ => {
                        input #(dom_id) type=(input_type(kind)) name=(key) value=(value)
                            step=[step(kind)] required[required];
                    }
                }
            }
            @if let Some(description) = &field.description {
                small.muted { (description) }
            }
        }
    }
}

fn input_type(kind: FieldType) -> &'static str {
    match kind {
        FieldType::Integer | FieldType::Number | FieldType::Money => "number",
        FieldType::Date => "date",
        FieldType::Datetime => "datetime-local",
        _ => "text",
    }
}

fn step(kind: FieldType) -> Option<&'static str> {
    match kind {
        FieldType::Integer => Some("1"),
        FieldType::Money => Some("0.01"),
        FieldType::Number => Some("any"),
        _ => None,
    }
}

/// A stored value as a person reads it: yes/no, Beijing time, lists joined.
pub fn shown(lang: Lang, field: Option<&Field>, value: &Value) -> String {
    match (field.map(|f| f.kind.value), value) {
        (_, Value::Bool(true)) => lang.text("console-form-yes"),
        (_, Value::Bool(false)) => lang.text("console-form-no"),
        (Some(FieldType::Datetime), Value::String(s)) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| super::local_seconds(t.with_timezone(&chrono::Utc)))
            .unwrap_or_else(|_| s.clone()),
        (_, Value::String(s)) => s.clone(),
        (_, Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(&lang.text("list-separator")),
        (_, Value::Null) => "—".to_string(),
        (_, other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_time_is_read_as_beijing_time() {
        assert_eq!(with_offset("2026-03-02T09:30"), "2026-03-02T09:30:00+08:00");
        assert_eq!(with_offset("2026-03-02T09:30:00Z"), "2026-03-02T09:30:00Z");
        assert_eq!(with_offset("soon"), "soon");
    }

    #[test]
    fn a_form_offers_what_the_event_may_write_and_not_a_settled_fact() {
        let workflow = crate::definition::parse_workflow(
            std::path::Path::new("w.yaml"),
            "id: w\ntitle: W\ninitial: a\nfields:\n  amount: {type: money, required_on: [go], fixed: true}\n  note: {type: text, optional_on: [go]}\n  ref: {type: string, optional_on: [go], fixed: true}\n  seal: {type: datetime}\n  reason: {type: string, optional_on: [stop]}\nstates:\n  a: {on: {go: {to: a, roles: [r]}, stop: {to: b, roles: [r]}}}\n  b: {final: true}\n",
        )
        .expect("parses");
        let offered = |event: &str, data: serde_json::Value, requires: &[String]| {
            let data = data.as_object().cloned().unwrap_or_default();
            writable_fields(&workflow, event, requires, &data)
                .iter()
                .map(|o| (o.name.to_string(), o.required))
                .collect::<Vec<_>>()
        };
        let owned = |pairs: &[(&str, bool)]| {
            pairs
                .iter()
                .map(|(n, r)| (n.to_string(), *r))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            offered("go", serde_json::json!({}), &[]),
            owned(&[("amount", true), ("note", false), ("ref", false)])
        );
        // A fixed fact already set is not offered again, unless the step must supply it.
        assert_eq!(
            offered("go", serde_json::json!({"amount": 5, "ref": "R-1"}), &[]),
            owned(&[("amount", true), ("note", false)])
        );
        assert_eq!(
            offered("stop", serde_json::json!({}), &["reason".to_string()]),
            owned(&[("reason", true)])
        );
    }

    #[test]
    fn blanks_are_left_out_and_checkboxes_read_their_last_value() {
        let workflow = crate::definition::parse_workflow(
            std::path::Path::new("w.yaml"),
            "id: w\ntitle: W\ninitial: a\nfields:\n  ok: {type: bool}\n  note: {type: string}\n  items: {type: list}\nstates:\n  a: {final: true}\n",
        )
        .expect("parses");
        let form = Form::parse(b"f.ok=false&f.ok=true&f.note=+&f.items=a%0A%0Ab&comment=hi");
        let payload = payload(&workflow, &form, true);
        assert_eq!(payload.get("ok"), Some(&Value::Bool(true)));
        assert_eq!(payload.get("note"), None);
        assert_eq!(payload.get("items"), Some(&serde_json::json!(["a", "b"])));
        assert_eq!(payload.get("comment"), Some(&Value::String("hi".into())));
    }
}
