//! Time in a workflow: the calendars it names (for itself, its timers and its schedules) and
//! whether each schedule can recur as written.

use super::Checker;
use crate::definition::located::Located;
use crate::definition::number::NumberFormatError;
use crate::diagnostic::{Code, suggestion};

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
            self.identifier("schedule", id);
            let schedule = &schedule.value;
            self.calendar_ref(schedule.calendar.as_ref());
            if let Err(problem) = crate::calendar::Recurrence::of(schedule) {
                let span = if problem.starts_with("`at:") {
                    schedule.at.span
                } else {
                    schedule.every.span
                };
                self.report(
                    Code::BadSchedule,
                    span,
                    format!("schedule `{}` cannot recur: {problem}", id.as_str()),
                    "for example `{every: month, day: 20, at: \"09:00\"}`, `{every: week, weekday: monday, at: \"09:00\"}` or `{every: month, day: last_working_day, at: \"16:00\"}`",
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
                format!("no calendar `{}` is loaded", name.as_str()),
                format!(
                    "add calendars/{}.yaml (it may `extends: cn_mainland`), or {hint}",
                    name.as_str()
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
                NumberFormatError::UnknownPlaceholder { .. } => (
                    Code::NumberPlaceholder,
                    "the placeholders are `{year}`, `{month}`, `{seq}` and `{seq:N}`, for example `DH-{year}-{seq:04}`",
                ),
                NumberFormatError::Seq(_) => (
                    Code::NumberWithoutSeq,
                    "put `{seq}` (or `{seq:4}`, zero-padded) in the format exactly once",
                ),
                NumberFormatError::BadWidth { .. } => (
                    Code::NumberWidth,
                    "write the width as `{seq:4}` or `{seq:04}`: 1 to 9 digits",
                ),
                NumberFormatError::Unsafe { .. } => (
                    Code::NumberUnsafe,
                    "use ASCII letters, digits, `-`, `_` and `.` (write 动火证 as `DH`, for example)",
                ),
            };
            self.report(code, format.span, problem.to_string(), hint);
        }
    }
}
