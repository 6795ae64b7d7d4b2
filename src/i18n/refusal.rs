//! A refusal in the words of the person refused: the titles of the workflow's YAML in place of
//! ids, the rule's own reason where it gives one, and what to do next, in their language.
//! `Refusal`'s own message stays English with ids, for logs and programs.

use super::Lang;
use crate::definition::model::FieldType;
use crate::definition::roles::RoleList;
use crate::definition::{EventTitle, Workflow};
use crate::machine::Refusal;

/// An event's title for a person: its branch's in `state` (in any state when `None`), else
/// the approval's words or the start's in the reader's language, else the id.
pub fn event_title(
    lang: Lang,
    workflow: Option<&Workflow>,
    state: Option<&str>,
    event: &str,
) -> String {
    let titled = workflow.and_then(|w| {
        w.event_title(state, event)
            .or_else(|| w.event_title(None, event))
    });
    match titled {
        Some(EventTitle::Written(title)) => title.to_string(),
        Some(EventTitle::Approve) => lang.text("event-approve"),
        Some(EventTitle::Reject) => lang.text("event-reject"),
        None if event == crate::definition::model::START => lang.text("event-start"),
        None => event.to_string(),
    }
}

/// A person's name (`李娜`) for a user id, where there is one.
pub type PersonName<'a> = dyn Fn(&str) -> Option<String> + 'a;

/// What a refusal is explained with, besides itself.
#[derive(Clone, Copy, Default)]
pub struct Explain<'a> {
    /// The workflow of the instance (or of the start) refused; without it ids stand alone.
    pub workflow: Option<&'a Workflow>,
    /// The state the instance was in, to pick the title of the event's branch there.
    pub state: Option<&'a str>,
    /// The event the person tried (a guard's refusal does not name it).
    pub event: Option<&'a str>,
    /// The organisation's role list, for the titles of roles the workflow does not name (the
    /// other roles a person holds).
    pub roles: Option<&'a RoleList>,
    /// A person's name for their user id (`li.na` → `李娜`), where a directory is at hand.
    pub person: Option<&'a PersonName<'a>>,
}

impl<'a> Explain<'a> {
    fn state(&self, id: &'a str) -> &'a str {
        self.workflow.map_or(id, |w| w.state_title(id))
    }

    fn role(&self, id: &'a str) -> &'a str {
        match self.workflow.map(|w| w.role_title(id)) {
            Some(title) if title != id => title,
            _ => self.roles.and_then(|list| list.title(id)).unwrap_or(id),
        }
    }

    fn field(&self, id: &'a str) -> &'a str {
        self.workflow.map_or(id, |w| w.field_title(id))
    }

    fn event(&self, lang: Lang, id: &str) -> String {
        event_title(lang, self.workflow, self.state, id)
    }

    /// `state.event` as the title of that event in that state.
    fn step(&self, lang: Lang, step: &str) -> String {
        match step.split_once('.') {
            Some((state, event)) => {
                let titled = self
                    .workflow
                    .and_then(|w| w.event_title(Some(state), event));
                match titled {
                    Some(EventTitle::Written(title)) => title.to_string(),
                    _ => format!("{}:{}", self.state(state), self.event(lang, event)),
                }
            }
            None => self.event(lang, step),
        }
    }

    fn person(&self, id: &str) -> String {
        self.person
            .and_then(|name| name(id))
            .unwrap_or_else(|| id.to_string())
    }

    fn expects(&self, lang: Lang, field: &str) -> Option<String> {
        let declared = self.workflow?.fields.get(field)?;
        Some(match *declared.kind {
            FieldType::Enum => {
                let values: Vec<&str> = declared.values.iter().map(|v| v.as_str()).collect();
                lang.text_with("expects-enum", &[("values", &lang.list(&values))])
            }
            kind => lang.text(&format!("expects-{}", kind.name())),
        })
    }
}

/// What the person refused reads, in `lang`.
pub fn explain(refusal: &Refusal, lang: Lang, with: &Explain<'_>) -> String {
    let t = |id: &str, args: &[(&str, &str)]| lang.text_with(id, args);
    let tried = || with.event.map(|e| with.event(lang, e)).unwrap_or_default();
    match refusal {
        Refusal::Finished { state } => t("refusal-finished", &[("state", with.state(state))]),
        Refusal::Stale { expected, actual } => t(
            "refusal-stale",
            &[
                ("expected", &expected.to_string()),
                ("actual", &actual.to_string()),
            ],
        ),
        Refusal::UnknownEvent {
            event,
            state,
            available,
        } => {
            let mut text = t(
                "refusal-unknown_event",
                &[
                    ("state", with.state(state)),
                    ("event", &with.event(lang, event)),
                ],
            );
            if !available.is_empty() {
                let offers: Vec<String> = available.iter().map(|e| with.event(lang, e)).collect();
                text.push_str(&t(
                    "refusal-unknown_event-offers",
                    &[("list", &lang.list(&offers))],
                ));
            }
            text
        }
        Refusal::SystemOnly { event } => t(
            "refusal-system_only",
            &[("event", &with.event(lang, event))],
        ),
        Refusal::ReservedRole => t("refusal-reserved_role", &[]),
        Refusal::RoleNotAllowed {
            event,
            allowed,
            held,
        } => {
            let allowed: Vec<&str> = allowed.iter().map(|r| with.role(r)).collect();
            let held = if held.is_empty() {
                t("refusal-role_not_allowed-nobody", &[])
            } else {
                lang.list(&held.iter().map(|r| with.role(r)).collect::<Vec<_>>())
            };
            t(
                "refusal-role_not_allowed",
                &[
                    ("event", &with.event(lang, event)),
                    ("allowed", &lang.list(&allowed)),
                    ("held", &held),
                ],
            )
        }
        Refusal::NotYourTurn { waiting_for } => t(
            "refusal-not_your_turn",
            &[("waiting_for", with.role(waiting_for))],
        ),
        Refusal::AlreadySigned { actor } => {
            t("refusal-already_signed", &[("actor", &with.person(actor))])
        }
        // The rule's own reasons are the manual's words: they are the message.
        Refusal::GuardFailed { reasons, .. } if !reasons.is_empty() => reasons.join(";"),
        Refusal::GuardFailed { .. } => t("refusal-guard_failed-silent", &[("event", &tried())]),
        Refusal::GuardError { .. } => t("refusal-guard_error", &[("event", &tried())]),
        Refusal::ScriptFailed { thrown, .. } => match thrown {
            Some(reason) => reason.clone(),
            None => t("refusal-script_failed", &[]),
        },
        Refusal::MissingField { event, field } => t(
            "refusal-missing_field",
            &[
                ("event", &with.event(lang, event)),
                ("field", with.field(field)),
            ],
        ),
        Refusal::CommentRequired { event } => t(
            "refusal-comment_required",
            &[("event", &with.event(lang, event))],
        ),
        Refusal::UnknownField { field, .. } => {
            t("refusal-unknown_field", &[("field", with.field(field))])
        }
        Refusal::FieldNotWritable {
            field,
            event,
            writable,
        } => {
            let mut text = t(
                "refusal-field_not_writable",
                &[
                    ("event", &with.event(lang, event)),
                    ("field", with.field(field)),
                ],
            );
            text.push_str(&if writable.is_empty() {
                t("refusal-field_not_writable-none", &[])
            } else {
                let titles: Vec<&str> = writable.iter().map(|f| with.field(f)).collect();
                t(
                    "refusal-field_not_writable-may",
                    &[("list", &lang.list(&titles))],
                )
            });
            text
        }
        Refusal::FieldFixed {
            field,
            event,
            current,
        } => t(
            "refusal-field_fixed",
            &[
                ("field", with.field(field)),
                ("current", current),
                ("event", &with.event(lang, event)),
            ],
        ),
        Refusal::TooLong {
            field,
            length,
            limit,
            unit,
        } => t(
            if *unit == "items" {
                "refusal-too_long-items"
            } else {
                "refusal-too_long"
            },
            &[
                ("field", with.field(field)),
                ("length", &length.to_string()),
                ("limit", &limit.to_string()),
            ],
        ),
        Refusal::NotAParty { role, .. } => t("refusal-not_a_party", &[("role", with.role(role))]),
        Refusal::IllTyped {
            field, expected, ..
        } => {
            let expects = with
                .expects(lang, field)
                .unwrap_or_else(|| expected.clone());
            t(
                "refusal-ill_typed",
                &[("field", with.field(field)), ("expected", &expects)],
            )
        }
        Refusal::FourEyes { earlier, step, .. } => t(
            "refusal-four_eyes",
            &[
                ("earlier", &with.step(lang, earlier)),
                ("step", &with.step(lang, step)),
            ],
        ),
        Refusal::UnknownState { .. } => t("refusal-unknown_state", &[]),
        Refusal::TimerNotPending { .. } => t("refusal-timer_not_pending", &[]),
        Refusal::Calendar { .. } => t("refusal-calendar", &[]),
    }
}
