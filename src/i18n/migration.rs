//! A migration plan in the process owner's words: each line of what would happen to an
//! instance, and each reason it would be left where it is, with the titles of both versions'
//! YAML in place of ids and due times on the workflow's calendar clock.

use super::Lang;
use crate::definition::{Definition, Workflow};
use crate::machine::migrate::{Blocker, FieldChange, Plan, TimerFate};
use chrono::{DateTime, Utc};
use serde_json::Value;

/// Why an instance would not be migrated, in `lang`, with `new`'s titles (and `old`'s for
/// the state it is in).
pub fn blocker_text(lang: Lang, old: &Workflow, new: &Workflow, blocker: &Blocker) -> String {
    let id = format!("migration-blocker-{}", blocker.code());
    match blocker {
        Blocker::StateRemoved { state } => lang.text_with(
            &id,
            &[("state", old.state_title(state)), ("id", state.as_str())],
        ),
        Blocker::UnknownTarget { state, to } => {
            lang.text_with(&id, &[("state", old.state_title(state)), ("to", to)])
        }
        Blocker::LandsInFinal { state }
        | Blocker::Stuck { state }
        | Blocker::ApprovalComplete { state }
        | Blocker::NothingAwaited { state } => {
            lang.text_with(&id, &[("state", new.state_title(state))])
        }
        Blocker::SignatureWithoutSigner { role, actor } => lang.text_with(
            &id,
            &[("role", old.role_title(role)), ("actor", actor.as_str())],
        ),
        Blocker::FieldMissing { field, event } => {
            let event = super::event_title(lang, Some(new), None, event);
            lang.text_with(
                &id,
                &[("field", new.field_title(field)), ("event", event.as_str())],
            )
        }
        Blocker::BadValue { field, reason } => lang.text_with(
            &id,
            &[
                ("field", new.field_title(field)),
                ("reason", reason.as_str()),
            ],
        ),
        Blocker::ScriptFailed { reason } => lang.text_with(&id, &[("reason", reason.as_str())]),
    }
}

/// What the plan would do to the instance, one line each, in `lang`: where it lands, then
/// fields, approval, timers, children, the way ahead, and last the verdict (with each reason
/// it is blocked).
pub fn plan_lines(lang: Lang, old: &Definition, new: &Definition, plan: &Plan) -> Vec<String> {
    let (ow, nw) = (&old.workflow, &new.workflow);
    let mut lines = Vec::new();
    if let Some(to) = &plan.lands_in {
        lines.push(if to == &plan.state && !plan.mapped {
            lang.text_with("migration-lands-in-same", &[("to", nw.state_title(to))])
        } else {
            lang.text_with(
                "migration-lands-in",
                &[
                    ("from", ow.state_title(&plan.state)),
                    ("to", nw.state_title(to)),
                ],
            )
        });
    }
    for field in &plan.fields {
        lines.push(match &field.change {
            FieldChange::Undeclared => lang.text_with(
                "migration-field-undeclared",
                &[("field", ow.field_title(&field.field))],
            ),
            FieldChange::Set {
                before: Some(before),
                after,
            } => lang.text_with(
                "migration-field-set",
                &[
                    ("field", nw.field_title(&field.field)),
                    ("before", &shown(before)),
                    ("after", &shown(after)),
                ],
            ),
            FieldChange::Set {
                before: None,
                after,
            } => lang.text_with(
                "migration-field-set-new",
                &[
                    ("field", nw.field_title(&field.field)),
                    ("after", &shown(after)),
                ],
            ),
        });
    }
    if let Some(approval) = &plan.approval {
        if approval.signers_changed && !approval.signers.is_empty() {
            let signers: Vec<&str> = approval
                .signers
                .iter()
                .filter(|s| s.required)
                .map(|s| s.title.as_deref().unwrap_or_else(|| nw.role_title(&s.role)))
                .collect();
            lines.push(lang.text_with(
                "migration-signers-changed",
                &[("signers", &signers.join("、"))],
            ));
        }
        for (id, signatures) in [
            ("migration-signature-kept", &approval.kept),
            ("migration-signature-dropped", &approval.dropped),
        ] {
            for signature in signatures {
                lines.push(lang.text_with(
                    id,
                    &[
                        ("actor", signature.actor.as_str()),
                        ("role", ow.role_title(&signature.role)),
                    ],
                ));
            }
        }
    }
    for timer in &plan.timers {
        // A timer cancelled while the new state arms one for the same event (`rearm`) is
        // counted again, not gone.
        let rearmed = plan
            .timers
            .iter()
            .any(|t| t.fate == TimerFate::Armed && t.timer.event == timer.timer.event);
        let (id, workflow) = match timer.fate {
            TimerFate::Kept => ("migration-timer-kept", nw),
            TimerFate::Cancelled if rearmed => ("migration-timer-rearmed", ow),
            TimerFate::Cancelled => ("migration-timer-cancelled", ow),
            TimerFate::Armed => ("migration-timer-armed", nw),
        };
        let title =
            timer.timer.title.clone().unwrap_or_else(|| {
                super::event_title(lang, Some(workflow), None, &timer.timer.event)
            });
        lines.push(lang.text_with(
            id,
            &[("timer", &title), ("due", &due(new, timer.timer.due))],
        ));
    }
    for child in &plan.children {
        lines.push(lang.text_with(
            "migration-child",
            &[
                ("child", child.id.as_str()),
                ("awaited", if child.awaited { "yes" } else { "no" }),
            ],
        ));
    }
    if let Some(route) = &plan.route {
        let way = |workflow: &Workflow, states: &[String]| {
            states
                .iter()
                .map(|s| workflow.state_title(s))
                .collect::<Vec<_>>()
                .join(" → ")
        };
        let (before, after) = (way(ow, &route.before), way(nw, &route.after));
        // A state renamed under the same title changes the ids only: nothing to say.
        if before != after {
            lines
                .push(lang.text_with("migration-route", &[("before", &before), ("after", &after)]));
        }
    }
    if plan.is_clean() {
        lines.push(lang.text("migration-clean"));
    }
    for blocker in &plan.blockers {
        let reason = blocker_text(lang, ow, nw, blocker);
        lines.push(lang.text_with("migration-blocked", &[("reason", &reason)]));
    }
    lines
}

/// A due time on the workflow's calendar clock, to the minute.
fn due(def: &Definition, at: DateTime<Utc>) -> String {
    def.calendar.local(at).format("%Y-%m-%d %H:%M").to_string()
}

/// A value as a person reads it: text without quotes.
fn shown(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}
