//! Parameter values set from outside a workflow's file: a scenario's `params:` (and an
//! embedding program's [`Config`](crate::engine::Config)), checked against the declared
//! parameters and put over their defaults before the workflow is validated.
//!
//! A value set this way is part of the definition's version (the catalog hashes it with the
//! YAML), so an instance started under 3 overdue reminders never replays under 5.

use super::names::default_fits;
use crate::definition::Workflow;
use crate::definition::model::Scalar;
use crate::diagnostic::{Code, Diagnostic, did_you_mean};
use crate::i18n::{Arg, text};
use serde_json::{Map, Value};
use std::path::Path;

/// Puts `values` over the workflow's parameter defaults. A name the workflow does not declare,
/// or a value that does not fit the parameter's type, is an error and leaves the default.
pub fn apply(workflow: &mut Workflow, file: &Path, values: &Map<String, Value>) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    for (name, value) in values {
        let declared: Vec<String> = workflow.parameters.keys().map(String::from).collect();
        let Some((_, parameter)) = workflow
            .parameters
            .0
            .iter_mut()
            .find(|(k, _)| k.as_str() == name)
        else {
            let hint = match did_you_mean(name, declared.iter().map(String::as_str)) {
                Some(near) => text!("hint-did-you-mean", name = near),
                None => text!("hint-declared-parameters", names = Arg::list(&declared)),
            };
            diagnostics.push(Diagnostic::new(
                Code::UndeclaredParameter,
                file,
                workflow.id.span,
                text!(
                    "diag-setting-undeclared",
                    parameter = name,
                    workflow = workflow.id.as_str()
                ),
                hint,
            ));
            continue;
        };
        let scalar = match value {
            Value::Bool(b) => Some(Scalar::Bool(*b)),
            Value::Number(n) => n
                .as_i64()
                .map(Scalar::Integer)
                .or_else(|| n.as_f64().map(Scalar::Number)),
            Value::String(s) => Some(Scalar::String(s.clone())),
            _ => None,
        };
        match scalar {
            Some(scalar) if default_fits(parameter.kind.value, &scalar) => {
                parameter.default.value = scalar;
            }
            _ => diagnostics.push(Diagnostic::new(
                Code::BadDefault,
                file,
                parameter.default.span,
                text!(
                    "diag-setting-bad-value",
                    value = value.to_string(),
                    parameter = name,
                    kind = parameter.kind.name()
                ),
                text!("hint-setting-bad-value"),
            )),
        }
    }
    diagnostics
}
