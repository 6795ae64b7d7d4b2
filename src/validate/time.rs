//! Time in a workflow: the calendars it names (for itself, its timers and its schedules) and
//! whether each schedule can recur as written.

use super::Checker;
use crate::definition::located::Located;
use crate::definition::number::NumberFormatError;
use crate::diagnostic::{Code, suggestion_text as suggestion};
use crate::i18n::text;

impl Checker<'_> {
    pub(super) fn check_time(&mut self) {
        let workflow = self.workflow;
        self.calendar_ref(workflow.calendar.as_ref());
        for (_, state) in workflow.states.iter() {
            for timer in &state.timers {
                self.calendar_ref(timer.value.calendar.as_ref());
            }
        }
        for (id, schedule) in workflow.schedules.iter() {
            self.identifier(text!("diag-kind-schedule"), id);
            let schedule = &schedule.value;
            self.calendar_ref(schedule.calendar.as_ref());
            if let Err(problem) = crate::calendar::Recurrence::of(schedule) {
                let span = if problem.is_about_time() {
                    schedule.at.span
                } else {
                    schedule.every.span
                };
                self.report(
                    Code::BadSchedule,
                    span,
                    text!(
                        "diag-bad-schedule",
                        schedule = id.as_str(),
                        problem = problem.text()
                    ),
                    text!("hint-bad-schedule"),
                );
            }
            if let Some(data) = &schedule.data {
                for key in data.value.keys() {
                    let field = Located {
                        value: key.clone(),
                        span: data.span,
                    };
                    self.field_ref(&field);
                }
            }
        }
    }

    fn calendar_ref(&mut self, name: Option<&Located<String>>) {
        let Some(name) = name else { return };
        if self.env.calendars.get(name.as_str()).is_none() {
            let hint = suggestion(name.as_str(), self.env.calendars.ids());
            self.report(
                Code::UnknownCalendar,
                name.span,
                text!("diag-unknown-calendar", calendar = name.as_str()),
                text!(
                    "hint-unknown-calendar",
                    calendar = name.as_str(),
                    suggestion = hint
                ),
            );
        }
    }
}

impl Checker<'_> {
    /// The workflow's `number` format: known placeholders, one `{seq}`, a width of 1-9, and
    /// only characters that a web address carries as they are.
    pub(super) fn check_number(&mut self) {
        let Some(format) = &self.workflow.number else {
            return;
        };
        let Err(problems) = crate::definition::number::NumberFormat::parse(format.as_str()) else {
            return;
        };
        for problem in problems {
            let (code, hint) = match &problem {
                NumberFormatError::UnknownPlaceholder { .. } => {
                    (Code::NumberPlaceholder, text!("hint-number-placeholder"))
                }
                NumberFormatError::Seq(_) => (Code::NumberWithoutSeq, text!("hint-number-seq")),
                NumberFormatError::BadWidth { .. } => {
                    (Code::NumberWidth, text!("hint-number-width"))
                }
                NumberFormatError::Unsafe { .. } => {
                    (Code::NumberUnsafe, text!("hint-number-unsafe"))
                }
            };
            self.report(code, format.span, problem.text(), hint);
        }
    }
}
