//! The commands about time: `timers` (what is pending), `tick` (fire what is due) and
//! `schedule list` (when schedules fire next).

use super::Format;
use super::runtime::{EngineArgs, finish, pretty, with_engine};
use chrono::{DateTime, FixedOffset, Utc};
use serde_json::json;
use sopflow::engine::{Fired, ScheduleInfo};
use sopflow::store::QueuedTimer;
use std::fmt::Write;
use std::process::ExitCode;

/// Times are shown in China Standard Time (UTC+8), as the manuals count them.
fn local(at: DateTime<Utc>) -> String {
    match FixedOffset::east_opt(8 * 3600) {
        Some(offset) => at
            .with_timezone(&offset)
            .format("%Y-%m-%d %H:%M")
            .to_string(),
        None => at.format("%Y-%m-%d %H:%M UTC").to_string(),
    }
}

pub fn timers(limit: usize, engine_args: &EngineArgs) -> ExitCode {
    let format = engine_args.format;
    let result = with_engine(engine_args.read_only(), async |engine| {
        engine.pending_timers(limit).await
    });
    finish(format, result, |timers| match format {
        Format::Json => pretty(&timers.iter().map(timer_json).collect::<Vec<_>>()),
        Format::Human => {
            if timers.is_empty() {
                return "no pending timers".into();
            }
            let mut out = String::new();
            for t in &timers {
                let _ = writeln!(
                    out,
                    "{}  {}  fires `{}`  (timer {})",
                    local(t.due),
                    t.instance,
                    t.event,
                    t.timer
                );
            }
            out
        }
    })
}

fn timer_json(t: &QueuedTimer) -> serde_json::Value {
    json!({"due": t.due, "instance": t.instance, "timer": t.timer, "event": t.event})
}

pub fn tick(engine_args: &EngineArgs) -> ExitCode {
    let format = engine_args.format;
    let result = with_engine(engine_args.config(false), async |engine| {
        engine.run_due().await
    });
    finish(format, result, |fired| match format {
        Format::Json => pretty(&fired.iter().map(fired_json).collect::<Vec<_>>()),
        Format::Human => {
            if fired.is_empty() {
                return "nothing was due".into();
            }
            let mut out = String::new();
            for one in &fired {
                let _ = writeln!(out, "{}", fired_line(one));
            }
            out
        }
    })
}

fn fired_line(fired: &Fired) -> String {
    match fired {
        Fired::Timer {
            instance,
            event,
            due,
            seq,
            refused: None,
            ..
        } => format!(
            "{}  {instance}  timer fired `{event}` (step {seq})",
            local(*due)
        ),
        Fired::Timer {
            instance,
            event,
            due,
            refused: Some(why),
            ..
        } => format!(
            "{}  {instance}  timer lapsed: `{event}` refused: {why}",
            local(*due)
        ),
        Fired::Schedule {
            workflow,
            schedule,
            occurrence,
            instance,
        } => format!(
            "{}  {workflow}/{schedule}  started {instance}",
            local(*occurrence)
        ),
    }
}

fn fired_json(fired: &Fired) -> serde_json::Value {
    match fired {
        Fired::Timer {
            instance,
            timer,
            event,
            due,
            seq,
            refused,
        } => json!({"timer": timer, "instance": instance, "event": event, "due": due,
                    "seq": seq, "refused": refused}),
        Fired::Schedule {
            workflow,
            schedule,
            occurrence,
            instance,
        } => json!({"schedule": schedule, "workflow": workflow, "occurrence": occurrence,
                    "instance": instance}),
    }
}

pub fn schedules(next: usize, engine_args: &EngineArgs) -> ExitCode {
    let format = engine_args.format;
    let result = with_engine(engine_args.config(true), async |engine| {
        engine.schedules_blocking(next).await
    });
    finish(format, result, |schedules| match format {
        Format::Json => pretty(&schedules.iter().map(schedule_json).collect::<Vec<_>>()),
        Format::Human => {
            if schedules.is_empty() {
                return "no workflow declares a schedule".into();
            }
            let mut out = String::new();
            for s in &schedules {
                let title = s.title.as_deref().unwrap_or("");
                let _ = writeln!(
                    out,
                    "{}/{}  {title}  (calendar {})",
                    s.workflow, s.schedule, s.calendar
                );
                for at in &s.next {
                    let _ = writeln!(out, "  next: {}", local(*at));
                }
            }
            out
        }
    })
}

fn schedule_json(s: &ScheduleInfo) -> serde_json::Value {
    json!({"workflow": s.workflow, "schedule": s.schedule, "title": s.title,
           "calendar": s.calendar, "last": s.last, "next": s.next})
}
