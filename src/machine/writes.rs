//! Who may write which field: the fields a step's payload (or a start's data) may carry, and
//! the facts that stay fixed once set.
//!
//! A payload may carry a `comment` and the fields that list its event in `required_on` or
//! `optional_on`; any other declared field is refused (`field_not_writable`), so an approver
//! cannot change the amount their approval is routed by. A `fixed` field, once it has a value,
//! keeps it: a payload or an action that would change it is refused (`field_fixed`), except by
//! a step of an event in its `required_on` that moves the instance on (a resubmission, which
//! supplies the fact again and starts its review over). A step that stays in its state cannot
//! change it, so a repeatable step cannot rewrite a decided fact.
//! Actions may compute any declared field (the process owner's rule, recorded in the history),
//! but not change a fixed one.

use super::refusal::Refusal;
use crate::definition::model::{COMMENT, Workflow};
use serde_json::{Map, Value};

/// The fields a payload of `event` (or the initial data, for `start`) may carry, in the order
/// the workflow declares them.
pub fn writable_fields(workflow: &Workflow, event: &str) -> Vec<String> {
    workflow
        .fields
        .iter()
        .filter(|(_, field)| field.is_writable_on(event))
        .map(|(name, _)| name.value.clone())
        .collect()
}

/// Refuses a payload key that `event` may not write. Keys are already known to be declared.
pub(super) fn check_writable(
    workflow: &Workflow,
    event: &str,
    payload: &Map<String, Value>,
) -> Result<(), Refusal> {
    for key in payload.keys().filter(|k| k.as_str() != COMMENT) {
        if workflow
            .fields
            .get(key)
            .is_some_and(|field| !field.is_writable_on(event))
        {
            return Err(Refusal::FieldNotWritable {
                field: key.clone(),
                event: event.to_string(),
                writable: writable_fields(workflow, event),
            });
        }
    }
    Ok(())
}

/// Refuses a change to a fixed field that already has another value, unless `event` must
/// supply that field again and the step moves on (`enters` a state: a resubmission whose
/// review starts over). A step that stays in its state never changes a fixed fact, however
/// often it may be taken.
pub(super) fn check_fixed<'c>(
    workflow: &Workflow,
    data: &Map<String, Value>,
    event: &str,
    enters: bool,
    changes: impl IntoIterator<Item = (&'c String, &'c Value)>,
) -> Result<(), Refusal> {
    for (key, value) in changes {
        if key == COMMENT {
            continue;
        }
        let Some(field) = workflow.fields.get(key) else {
            continue;
        };
        if !field.fixed || (enters && field.is_required_on(event)) || !present(data, key) {
            continue;
        }
        if let Some(current) = data.get(key)
            && current != value
        {
            return Err(Refusal::FieldFixed {
                field: key.clone(),
                event: event.to_string(),
                current: shown(current),
            });
        }
    }
    Ok(())
}

/// Refuses the first field `event` requires that `payload` does not carry.
pub(super) fn check_required(
    workflow: &Workflow,
    event: &str,
    payload: &Map<String, Value>,
) -> Result<(), Refusal> {
    for (name, field) in workflow.fields.iter() {
        if field.is_required_on(event) && !present(payload, name.as_str()) {
            return Err(Refusal::MissingField {
                event: event.to_string(),
                field: name.value.clone(),
            });
        }
    }
    Ok(())
}

/// Whether `map` holds a value for `name` (an empty or blank text counts as none).
pub(super) fn present(map: &Map<String, Value>, name: &str) -> bool {
    match map.get(name) {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.trim().is_empty(),
        Some(_) => true,
    }
}

/// A value as a refusal quotes it: texts without JSON quotes, at most 40 characters.
fn shown(value: &Value) -> String {
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.chars().count() > 40 {
        text.chars().take(40).collect::<String>() + "..."
    } else {
        text
    }
}
