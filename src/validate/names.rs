//! Declarations and references: every name a workflow uses must be declared, well-formed and
//! of the right kind.

use super::Checker;
use crate::definition::duration::{Duration, UNITS_HINT};
use crate::definition::located::Located;
use crate::definition::model::{ApprovalMode, COMMENT, Constraint, FieldType, SYSTEM_ROLE, Scalar};
use crate::diagnostic::{Code, suggestion};

impl Checker<'_> {
    pub(super) fn check_names(&mut self) {
        let workflow = self.workflow;
        self.identifier("workflow", &workflow.id);
        for (name, _) in workflow.roles.iter() {
            self.identifier("role", name);
            if name.as_str() == SYSTEM_ROLE {
                self.report(
                    Code::BadIdentifier,
                    name.span,
                    "`system` is the role timers act as; it cannot be declared",
                    "remove it: transitions fired by timers need no role",
                );
            }
        }
        for (name, field) in workflow.fields.iter() {
            self.identifier("field", name);
            if name.as_str() == COMMENT {
                self.report(
                    Code::BadIdentifier,
                    name.span,
                    "`comment` is built in: every event may carry a comment",
                    "remove the field; require a comment with `requires: [comment]`",
                );
            }
            self.check_field(name, field);
        }
        for (name, parameter) in workflow.parameters.iter() {
            self.identifier("parameter", name);
            if !default_fits(parameter.kind.value, &parameter.default.value) {
                self.report(
                    Code::BadDefault,
                    parameter.default.span,
                    format!(
                        "the default of parameter `{}` does not fit its type `{}`",
                        name.as_str(),
                        parameter.kind.name()
                    ),
                    match parameter.kind.value {
                        FieldType::Money | FieldType::Number => {
                            "write a number, for example `15000`"
                        }
                        FieldType::Integer => "write a whole number, for example `330`",
                        FieldType::Bool => "write `true` or `false`",
                        _ => "write the value as text, in quotes if it looks like a number",
                    },
                );
            }
        }
        if !self.states.contains_key(workflow.initial.as_str()) {
            self.unknown_state(&workflow.initial);
        }
        for (name, state) in workflow.states.iter() {
            self.identifier("state", name);
            for (event, branches) in state.on.iter() {
                self.identifier("event", event);
                for branch in &branches.0 {
                    self.state_ref(&branch.to);
                    self.role_refs(&branch.roles);
                    self.field_refs(&branch.requires);
                    for spawn in &branch.spawn {
                        self.workflow_ref(&spawn.workflow);
                        if let Some(list) = &spawn.for_each {
                            self.field_ref(list);
                            if let Some(field) = workflow.fields.get(list.as_str())
                                && field.kind.value != FieldType::List
                            {
                                self.report(
                                    Code::InvalidValue,
                                    list.span,
                                    format!(
                                        "`for_each` needs a list field; `{}` is a {}",
                                        list.as_str(),
                                        field.kind.name()
                                    ),
                                    "declare the field with `type: list`",
                                );
                            }
                        }
                    }
                }
            }
            if let Some(approval) = &state.approval {
                self.check_approval(approval);
            }
            for timer in &state.timers {
                self.identifier("event", &timer.fire);
                match (&timer.after, &timer.at) {
                    (Some(after), None) => {
                        if let Err(err) = after.parse::<Duration>() {
                            self.report(Code::BadDuration, after.span, format!("`{}`: {err}", after.as_str()), UNITS_HINT);
                        }
                    }
                    (None, Some(_)) => {}
                    _ => self.report(
                        Code::InvalidValue,
                        timer.span,
                        "a timer needs exactly one of `after` (a duration) and `at` (a computed time)",
                        "write `after: 15 minutes`, or `at: rules_file::deadline`",
                    ),
                }
            }
            if let Some(wait) = &state.await_children {
                self.identifier("event", &wait.fire);
                for child in &wait.workflows {
                    self.workflow_ref(child);
                }
            }
        }
        for constraint in &workflow.constraints {
            self.check_constraint(constraint);
        }
    }

    fn check_field(&mut self, name: &Located<String>, field: &crate::definition::model::Field) {
        let kind = field.kind.value;
        if kind == FieldType::Enum && field.values.is_empty() {
            self.report(
                Code::InvalidValue,
                field.kind.span,
                format!("enum field `{}` has no `values`", name.as_str()),
                "list the allowed values: `values: [in, out]`",
            );
        }
        if kind != FieldType::Enum
            && let Some(first) = field.values.first()
        {
            self.report(
                Code::InvalidValue,
                first.span,
                format!(
                    "`values` only applies to enum fields; `{}` is a {}",
                    name.as_str(),
                    kind.name()
                ),
                "write `type: enum`, or remove `values`",
            );
        }
        if kind == FieldType::List && field.items.is_none() {
            self.report(
                Code::InvalidValue,
                field.kind.span,
                format!(
                    "list field `{}` does not say what its items are",
                    name.as_str()
                ),
                "add `items: string` (or another type)",
            );
        }
        if let Some(items) = &field.items
            && kind != FieldType::List
        {
            self.report(
                Code::InvalidValue,
                items.span,
                format!(
                    "`items` only applies to list fields; `{}` is a {}",
                    name.as_str(),
                    kind.name()
                ),
                "write `type: list`, or remove `items`",
            );
        }
        for event in &field.required_on {
            // `start` is the event that creates an instance: its initial data.
            if self.events.contains(event.as_str()) || event.as_str() == "start" {
                self.use_field(name.as_str());
            } else {
                let known: Vec<&str> = self.workflow.events().collect();
                self.report(
                    Code::UnknownEvent,
                    event.span,
                    format!(
                        "field `{}` is required on `{}`, but no state handles that event",
                        name.as_str(),
                        event.as_str()
                    ),
                    suggestion(event.as_str(), known.iter().copied()),
                );
            }
        }
    }

    fn check_approval(&mut self, approval: &Located<crate::definition::model::Approval>) {
        self.state_ref(&approval.to);
        self.identifier_if_some("event", approval.event.as_ref());
        if let Some(reject) = &approval.on_reject {
            self.state_ref(&reject.to);
            self.field_refs(&reject.requires);
            self.identifier_if_some("event", reject.event.as_ref());
        }
        for signer in &approval.signers {
            self.role_ref(&signer.role);
        }
        let signers = approval.signers.len();
        match (approval.mode.value, &approval.quorum) {
            _ if signers == 0 => self.report(
                Code::QuorumUnreachable,
                approval.span,
                "this approval has no signers, so it can never be completed",
                "list who signs: `signers: [{role: cs_dept}]`",
            ),
            (ApprovalMode::Quorum, None) => self.report(
                Code::QuorumUnreachable,
                approval.mode.span,
                "`mode: quorum` needs a `quorum`: how many of the signers must approve",
                format!("add `quorum: N` with N from 1 to {signers}"),
            ),
            (ApprovalMode::Quorum, Some(q)) if q.value == 0 || q.value as usize > signers => self
                .report(
                    Code::QuorumUnreachable,
                    q.span,
                    format!(
                        "a quorum of {} can never be met by {signers} signer(s)",
                        q.value
                    ),
                    format!("set `quorum` from 1 to {signers}, or add signers"),
                ),
            (mode, Some(q)) if mode != ApprovalMode::Quorum => self.report(
                Code::InvalidValue,
                q.span,
                "`quorum` only applies to `mode: quorum`",
                "remove `quorum`, or write `mode: quorum`",
            ),
            _ => {}
        }
    }

    fn check_constraint(&mut self, constraint: &Located<Constraint>) {
        match (&constraint.distinct_actors, &constraint.must_pass) {
            (Some(steps), None) => {
                if steps.len() < 2 {
                    self.report(
                        Code::InvalidValue,
                        constraint.span,
                        "`distinct_actors` needs at least two steps",
                        "list the steps that must be done by different people: `[review.approve, sign.approve]`",
                    );
                }
                for step in steps {
                    self.step_ref(step);
                }
            }
            (None, Some(must)) => {
                self.state_ref(&must.to);
                self.state_ref(&must.via);
            }
            _ => self.report(
                Code::InvalidValue,
                constraint.span,
                "a constraint needs exactly one of `distinct_actors` and `must_pass`",
                "split it into one constraint per rule",
            ),
        }
    }

    /// A `state.event` step of a constraint.
    fn step_ref(&mut self, step: &Located<String>) {
        let workflow = self.workflow;
        let Some((state_name, event)) = step.split_once('.') else {
            self.report(
                Code::UnknownStep,
                step.span,
                format!("`{}` is not a step", step.as_str()),
                "name a step as `state.event`, for example `security_review.approve`",
            );
            return;
        };
        match self
            .states
            .get(state_name)
            .map(|&i| &workflow.states.0[i].1)
        {
            None => self.report(
                Code::UnknownStep,
                step.span,
                format!("step `{}`: there is no state `{state_name}`", step.as_str()),
                suggestion(state_name, workflow.states.keys()),
            ),
            Some(state) if !state.handles(event) => {
                let events: Vec<&str> = state.events().collect();
                self.report(
                    Code::UnknownStep,
                    step.span,
                    format!(
                        "step `{}`: state `{state_name}` has no event `{event}`",
                        step.as_str()
                    ),
                    suggestion(event, events.iter().copied()),
                );
            }
            Some(_) => {}
        }
    }

    pub(super) fn identifier(&mut self, kind: &str, name: &Located<String>) {
        if !is_snake_case(name.as_str()) {
            self.report(
                Code::BadIdentifier,
                name.span,
                format!(
                    "{kind} `{}` is not a lower snake_case identifier",
                    name.as_str()
                ),
                format!(
                    "use English lower snake_case such as `{}`; put the manual's words in `title`",
                    to_snake_case(name.as_str())
                ),
            );
        }
    }

    fn identifier_if_some(&mut self, kind: &str, name: Option<&Located<String>>) {
        if let Some(name) = name {
            self.identifier(kind, name);
        }
    }

    fn state_ref(&mut self, name: &Located<String>) {
        if !self.states.contains_key(name.as_str()) {
            self.unknown_state(name);
        }
    }

    fn unknown_state(&mut self, name: &Located<String>) {
        let hint = suggestion(name.as_str(), self.workflow.states.keys());
        self.report(
            Code::UnknownState,
            name.span,
            format!("there is no state `{}`", name.as_str()),
            hint,
        );
    }

    fn role_refs(&mut self, roles: &[Located<String>]) {
        for role in roles {
            self.role_ref(role);
        }
    }

    pub(super) fn role_ref(&mut self, role: &Located<String>) {
        if let Some(i) = self.workflow.roles.position(role.as_str()) {
            self.used_roles[i] = true;
        } else if role.as_str() == SYSTEM_ROLE {
            self.report(
                Code::UndeclaredRole,
                role.span,
                "the `system` role cannot be granted: only timers and child completions act as it",
                "remove it; timers may fire any event their state handles",
            );
        } else {
            let hint = suggestion(role.as_str(), self.workflow.roles.keys());
            self.report(
                Code::UndeclaredRole,
                role.span,
                format!("role `{}` is not declared", role.as_str()),
                format!("declare it under `roles:`, or {hint}"),
            );
        }
    }

    fn field_refs(&mut self, fields: &[Located<String>]) {
        for field in fields {
            if field.as_str() != COMMENT {
                self.field_ref(field);
            }
        }
    }

    pub(super) fn field_ref(&mut self, field: &Located<String>) {
        if !self.use_field(field.as_str()) {
            let hint = suggestion(field.as_str(), self.workflow.fields.keys());
            self.report(
                Code::UndeclaredField,
                field.span,
                format!("field `{}` is not declared", field.as_str()),
                format!("declare it under `fields:`, or {hint}"),
            );
        }
    }

    fn workflow_ref(&mut self, id: &Located<String>) {
        if !self.env.workflows.contains(id.as_str()) {
            let hint = suggestion(id.as_str(), self.env.workflows.iter().map(String::as_str));
            self.report(
                Code::UnknownWorkflow,
                id.span,
                format!("no loaded file declares the workflow `{}`", id.as_str()),
                format!("add workflows/{}.yaml, or {hint}", id.as_str()),
            );
        }
    }
}

pub(super) fn default_fits(kind: FieldType, value: &Scalar) -> bool {
    match (kind, value) {
        (FieldType::Bool, Scalar::Bool(_)) => true,
        (FieldType::Integer, Scalar::Integer(_)) => true,
        (FieldType::Number | FieldType::Money, Scalar::Integer(_) | Scalar::Number(_)) => true,
        (FieldType::List, _) => false,
        (kind, Scalar::String(_)) => kind.is_textual(),
        _ => false,
    }
}

/// Lower snake_case: a lowercase ASCII letter, then lowercase letters, digits and underscores.
pub fn is_snake_case(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn to_snake_case(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 && !out.ends_with('_') {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('_') && !out.is_empty() {
            out.push('_');
        }
    }
    let out = out.trim_matches('_').to_string();
    if out.is_empty() || !out.starts_with(|c: char| c.is_ascii_lowercase()) {
        "an_english_name".to_string()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_suggestions() {
        assert!(is_snake_case("hot_work_permit"));
        assert!(!is_snake_case("HotWork"));
        assert!(!is_snake_case("动火"));
        assert_eq!(to_snake_case("securityReview"), "security_review");
        assert_eq!(to_snake_case("gm-review"), "gm_review");
        assert_eq!(to_snake_case("动火"), "an_english_name");
    }

    #[test]
    fn parameter_defaults_must_fit() {
        assert!(default_fits(FieldType::Money, &Scalar::Integer(15000)));
        assert!(!default_fits(
            FieldType::Money,
            &Scalar::String("15000".into())
        ));
        assert!(default_fits(FieldType::String, &Scalar::String("x".into())));
        assert!(!default_fits(FieldType::Bool, &Scalar::Integer(1)));
    }
}
