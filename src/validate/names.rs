//! Declarations and references: every name a workflow uses must be declared, well-formed and
//! of the right kind.

use super::Checker;
use crate::definition::duration::Duration;
use crate::definition::located::Located;
use crate::definition::model::{ApprovalMode, COMMENT, Constraint, FieldType, SYSTEM_ROLE, Scalar};
use crate::diagnostic::{Code, suggestion_text as suggestion};
use crate::i18n::{Text, text};

impl Checker<'_> {
    pub(super) fn check_names(&mut self) {
        let workflow = self.workflow;
        self.identifier(text!("diag-kind-workflow"), &workflow.id);
        for (name, _) in workflow.roles.iter() {
            self.identifier(text!("diag-kind-role"), name);
            if name.as_str() == SYSTEM_ROLE {
                self.report(
                    Code::BadIdentifier,
                    name.span,
                    text!("diag-system-role-declared"),
                    text!("hint-system-role-declared"),
                );
            }
        }
        for (name, field) in workflow.fields.iter() {
            self.identifier(text!("diag-kind-field"), name);
            if name.as_str() == COMMENT {
                self.report(
                    Code::BadIdentifier,
                    name.span,
                    text!("diag-comment-field-declared"),
                    text!("hint-comment-field-declared"),
                );
            }
            self.check_field(name, field);
        }
        for (name, parameter) in workflow.parameters.iter() {
            self.identifier(text!("diag-kind-parameter"), name);
            if !default_fits(parameter.kind.value, &parameter.default.value) {
                self.report(
                    Code::BadDefault,
                    parameter.default.span,
                    text!(
                        "diag-bad-default",
                        parameter = name.as_str(),
                        kind = parameter.kind.name()
                    ),
                    default_hint(parameter.kind.value),
                );
            }
        }
        if !self.states.contains_key(workflow.initial.as_str()) {
            self.unknown_state(&workflow.initial);
        }
        for (name, state) in workflow.states.iter() {
            self.identifier(text!("diag-kind-state"), name);
            for (event, branches) in state.on.iter() {
                self.identifier(text!("diag-kind-event"), event);
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
                                    text!(
                                        "diag-for-each-not-list",
                                        field = list.as_str(),
                                        kind = field.kind.name()
                                    ),
                                    text!("hint-for-each-not-list"),
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
                self.identifier(text!("diag-kind-event"), &timer.fire);
                match (&timer.after, &timer.at) {
                    (Some(after), None) => {
                        if let Err(err) = after.parse::<Duration>() {
                            self.report(
                                Code::BadDuration,
                                after.span,
                                text!(
                                    "diag-bad-duration",
                                    duration = after.as_str(),
                                    problem = err.text()
                                ),
                                text!("hint-duration-units"),
                            );
                        }
                    }
                    (None, Some(_)) => {}
                    _ => self.report(
                        Code::InvalidValue,
                        timer.span,
                        text!("diag-timer-after-or-at"),
                        text!("hint-timer-after-or-at"),
                    ),
                }
            }
            if let Some(wait) = &state.await_children {
                self.identifier(text!("diag-kind-event"), &wait.fire);
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
                text!("diag-enum-without-values", field = name.as_str()),
                text!("hint-enum-without-values"),
            );
        }
        if kind != FieldType::Enum
            && let Some(first) = field.values.first()
        {
            self.report(
                Code::InvalidValue,
                first.span,
                text!(
                    "diag-values-not-enum",
                    field = name.as_str(),
                    kind = kind.name()
                ),
                text!("hint-values-not-enum"),
            );
        }
        if kind == FieldType::List && field.items.is_none() {
            self.report(
                Code::InvalidValue,
                field.kind.span,
                text!("diag-list-without-items", field = name.as_str()),
                text!("hint-list-without-items"),
            );
        }
        if let Some(items) = &field.items
            && kind != FieldType::List
        {
            self.report(
                Code::InvalidValue,
                items.span,
                text!(
                    "diag-items-not-list",
                    field = name.as_str(),
                    kind = kind.name()
                ),
                text!("hint-items-not-list"),
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
                    text!(
                        "diag-field-on-unknown-event",
                        field = name.as_str(),
                        how = "required",
                        event = event.as_str()
                    ),
                    suggestion(event.as_str(), known.iter().copied()),
                );
            }
        }
    }

    fn check_approval(&mut self, approval: &Located<crate::definition::model::Approval>) {
        self.state_ref(&approval.to);
        self.identifier_if_some(text!("diag-kind-event"), approval.event.as_ref());
        if let Some(reject) = &approval.on_reject {
            self.state_ref(&reject.to);
            self.field_refs(&reject.requires);
            self.identifier_if_some(text!("diag-kind-event"), reject.event.as_ref());
        }
        for signer in &approval.signers {
            self.role_ref(&signer.role);
        }
        let signers = approval.signers.len();
        match (approval.mode.value, &approval.quorum) {
            _ if signers == 0 => self.report(
                Code::QuorumUnreachable,
                approval.span,
                text!("diag-approval-without-signers"),
                text!("hint-approval-without-signers"),
            ),
            (ApprovalMode::Quorum, None) => self.report(
                Code::QuorumUnreachable,
                approval.mode.span,
                text!("diag-quorum-missing"),
                text!("hint-quorum-missing", signers = signers),
            ),
            (ApprovalMode::Quorum, Some(q)) if q.value == 0 || q.value as usize > signers => self
                .report(
                    Code::QuorumUnreachable,
                    q.span,
                    text!(
                        "diag-quorum-unreachable",
                        quorum = q.value,
                        signers = signers
                    ),
                    text!("hint-quorum-unreachable", signers = signers),
                ),
            (mode, Some(q)) if mode != ApprovalMode::Quorum => self.report(
                Code::InvalidValue,
                q.span,
                text!("diag-quorum-without-mode"),
                text!("hint-quorum-without-mode"),
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
                        text!("diag-distinct-actors-one-step"),
                        text!("hint-distinct-actors-one-step"),
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
                text!("diag-constraint-one-rule"),
                text!("hint-constraint-one-rule"),
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
                text!("diag-not-a-step", step = step.as_str()),
                text!("hint-not-a-step"),
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
                text!(
                    "diag-step-unknown-state",
                    step = step.as_str(),
                    state = state_name
                ),
                suggestion(state_name, workflow.states.keys()),
            ),
            Some(state) if !state.handles(event) => {
                let events: Vec<&str> = state.events().collect();
                self.report(
                    Code::UnknownStep,
                    step.span,
                    text!(
                        "diag-step-unknown-event",
                        step = step.as_str(),
                        state = state_name,
                        event = event
                    ),
                    suggestion(event, events.iter().copied()),
                );
            }
            Some(_) => {}
        }
    }

    pub(super) fn identifier(&mut self, kind: Text, name: &Located<String>) {
        if !is_snake_case(name.as_str()) {
            self.report(
                Code::BadIdentifier,
                name.span,
                text!("diag-not-snake-case", kind = kind, name = name.as_str()),
                text!(
                    "hint-not-snake-case",
                    example = to_snake_case(name.as_str())
                ),
            );
        }
    }

    fn identifier_if_some(&mut self, kind: Text, name: Option<&Located<String>>) {
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
            text!("diag-unknown-state", state = name.as_str()),
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
                text!("diag-system-role-granted"),
                text!("hint-system-role-granted"),
            );
        } else {
            let hint = suggestion(role.as_str(), self.workflow.roles.keys());
            self.report(
                Code::UndeclaredRole,
                role.span,
                text!("diag-undeclared-role", role = role.as_str()),
                text!("hint-undeclared-role", suggestion = hint),
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
                text!("diag-undeclared-field", field = field.as_str()),
                text!("hint-undeclared-field", suggestion = hint),
            );
        }
    }

    fn workflow_ref(&mut self, id: &Located<String>) {
        if !self.env.workflows.contains(id.as_str()) {
            let hint = suggestion(id.as_str(), self.env.workflows.iter().map(String::as_str));
            self.report(
                Code::UnknownWorkflow,
                id.span,
                text!("diag-unknown-workflow", workflow = id.as_str()),
                text!(
                    "hint-unknown-workflow",
                    workflow = id.as_str(),
                    suggestion = hint
                ),
            );
        }
    }
}

/// What a parameter's default of `kind` looks like.
fn default_hint(kind: FieldType) -> crate::i18n::Text {
    match kind {
        FieldType::Money | FieldType::Number => text!("hint-default-number"),
        FieldType::Integer => text!("hint-default-integer"),
        FieldType::Bool => text!("hint-default-bool"),
        _ => text!("hint-default-text"),
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
