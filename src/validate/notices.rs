//! Notices (`notify:` on states, transitions and timers, the workflow's `on_finish:`): their
//! ids, recipients and templates, checked like every other part of the file.

use super::Checker;
use super::scripts::inline_span;
use crate::definition::located::Located;
use crate::definition::model::{Notice, Recipient, State};
use crate::diagnostic::{Code, Span, did_you_mean, suggestion_text as suggestion};
use crate::i18n::{Arg, text};
use crate::notify::template::{self, FUNCTIONS, NAMES, TIMER};
use std::collections::HashMap;

/// Where a notice is declared, which decides what `next_roles` means and whether it reads
/// `timer`.
#[derive(Clone, Copy)]
enum Place<'a> {
    /// On entering this state.
    State(&'a str),
    /// On a transition to this state.
    Transition(&'a str),
    /// On a timer of this state, firing this event.
    Timer(&'a State, &'a str),
    /// On the end of an instance.
    Finish,
}

impl Checker<'_> {
    pub(super) fn check_notices(&mut self) {
        let workflow = self.workflow;
        let mut ids: HashMap<&str, Span> = HashMap::new();
        let mut all: Vec<(&Located<Notice>, Place<'_>)> = Vec::new();
        for (name, state) in workflow.states.iter() {
            all.extend(
                state
                    .notify
                    .iter()
                    .map(|n| (n, Place::State(name.as_str()))),
            );
            for (_, branches) in state.on.iter() {
                for branch in &branches.0 {
                    all.extend(
                        branch
                            .notify
                            .iter()
                            .map(|n| (n, Place::Transition(branch.to.as_str()))),
                    );
                }
            }
            for timer in &state.timers {
                let place = Place::Timer(state, timer.fire.as_str());
                all.extend(timer.notify.iter().map(|n| (n, place)));
            }
        }
        all.extend(workflow.on_finish.iter().map(|n| (n, Place::Finish)));
        for (notice, place) in all {
            if let Some(id) = &notice.id {
                self.identifier(text!("diag-kind-notice"), id);
                if let Some(first) = ids.get(id.as_str()) {
                    self.report(
                        Code::DuplicateNoticeId,
                        id.span,
                        text!(
                            "diag-duplicate-notice-id",
                            id = id.as_str(),
                            line = first.line
                        ),
                        text!("hint-duplicate-notice-id"),
                    );
                } else {
                    ids.insert(id.as_str(), id.span);
                }
            }
            self.check_recipients(&notice.value, place);
            let timer = matches!(place, Place::Timer(..));
            self.check_template(&notice.title, timer);
            self.check_template(&notice.message, timer);
        }
    }

    fn check_recipients(&mut self, notice: &Notice, place: Place<'_>) {
        if notice.to.is_empty() {
            self.report(
                Code::NoticeWithoutRecipients,
                notice.to.span,
                text!("diag-notice-without-recipients"),
                text!("hint-notice-without-recipients"),
            );
        }
        for recipient in notice.to.iter() {
            match &recipient.value {
                Recipient::Role(role) => {
                    self.role_ref(&Located::new(role.clone(), recipient.span));
                }
                Recipient::Field(field) => {
                    self.field_ref(&Located::new(field.clone(), recipient.span));
                }
                Recipient::Channel(name) => {
                    self.identifier(
                        text!("diag-kind-channel"),
                        &Located::new(name.clone(), recipient.span),
                    );
                }
                Recipient::NextRoles => {
                    let nobody = self.nobody_acts(place);
                    if let Some(state) = nobody {
                        let message = match state {
                            Some(state) => text!("diag-next-roles-nobody", state = state),
                            None => text!("diag-next-roles-finished"),
                        };
                        self.report(
                            Code::NextRolesNobody,
                            recipient.span,
                            message,
                            text!("hint-next-roles-nobody"),
                        );
                    }
                }
                Recipient::Starter | Recipient::Actor => {}
            }
        }
    }

    /// The state a notice's `next_roles` would be read in where nobody may act there (a final
    /// state, or one only the engine moves on); `Some(None)` for the end of an instance.
    fn nobody_acts(&self, place: Place<'_>) -> Option<Option<String>> {
        let workflow = self.workflow;
        let targets: Vec<&str> = match place {
            Place::State(state) | Place::Transition(state) => vec![state],
            Place::Timer(state, event) => state
                .on
                .get(event)
                .map(|branches| branches.0.iter().map(|b| b.to.as_str()).collect())
                .unwrap_or_default(),
            Place::Finish => return Some(None),
        };
        targets.into_iter().find_map(|name| {
            let state = workflow.states.get(name)?;
            let someone = state.on.iter().any(|(_, branches)| {
                branches
                    .0
                    .iter()
                    .any(|b| b.roles.iter().any(|r| r.as_str() != "system"))
            }) || state
                .approval
                .as_ref()
                .is_some_and(|a| !a.signers.is_empty());
            (!someone).then(|| Some(name.to_string()))
        })
    }

    fn check_template(&mut self, source: &Located<String>, timer: bool) {
        let at = |checker: &Self, line: u32, column: u32| -> Span {
            inline_span(checker.text, source.span, line, column)
        };
        let names = match template::reads(source.as_str()) {
            Ok(names) => names,
            Err(err) => {
                let span = at(self, err.line, err.column);
                self.report(
                    Code::TemplateError,
                    span,
                    text!("diag-template-error", detail = err.detail),
                    text!("hint-template-syntax"),
                );
                return;
            }
        };
        let mut unknown = false;
        for path in &names {
            let mut parts = path.splitn(2, '.');
            let root = parts.next().unwrap_or_default();
            let attribute = parts.next().map(|a| a.split('.').next().unwrap_or(a));
            let problem = if root == TIMER && !timer {
                Some((
                    text!("diag-template-timer-elsewhere"),
                    text!("hint-template-timer-elsewhere"),
                ))
            } else if FUNCTIONS.contains(&root) && attribute.is_none() {
                None
            } else if let Some((_, attributes)) = NAMES.iter().find(|(n, _)| *n == root) {
                match attribute {
                    Some(field) if root == "data" => (!self.use_field(field)).then(|| {
                        (
                            text!("diag-template-unknown-field", field = field),
                            text!(
                                "hint-undeclared-field",
                                suggestion = suggestion(field, self.workflow.fields.keys())
                            ),
                        )
                    }),
                    Some(attribute)
                        if !attributes.is_empty() && !attributes.contains(&attribute) =>
                    {
                        Some((
                            text!(
                                "diag-template-unknown-attribute",
                                name = root,
                                attribute = attribute
                            ),
                            suggestion(attribute, attributes.iter().copied()),
                        ))
                    }
                    _ => None,
                }
            } else {
                let known: Vec<&str> = NAMES
                    .iter()
                    .map(|(n, _)| *n)
                    .filter(|n| timer || *n != TIMER)
                    .collect();
                let hint = match did_you_mean(root, known.iter().copied()) {
                    Some(best) => text!("hint-did-you-mean", name = best),
                    None => text!("hint-template-names", names = Arg::list(known)),
                };
                Some((text!("diag-template-unknown-name", name = root), hint))
            };
            if let Some((message, hint)) = problem {
                unknown = true;
                let offset = source
                    .as_str()
                    .find(path.as_str())
                    .or_else(|| source.as_str().find(root))
                    .unwrap_or(0);
                let (line, column) = template::line_column(source.as_str(), offset);
                let span = at(self, line, column);
                self.report(Code::TemplateUnknownName, span, message, hint);
            }
        }
        if unknown {
            return;
        }
        // A trial render with a value of every field's type: a filter given the wrong kind of
        // value, an `include`, or a template that runs out of fuel.
        let sample = crate::notify::sample_context(self.workflow, timer);
        if let Err(err) = template::render(source.as_str(), &sample, usize::MAX) {
            let span = at(self, err.line, err.column);
            self.report(
                Code::TemplateError,
                span,
                text!("diag-template-error", detail = err.detail),
                text!("hint-template-render"),
            );
        }
    }
}
