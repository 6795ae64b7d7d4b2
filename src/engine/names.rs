//! The names a new instance is given: its id (`workflow-N`) and, for a workflow with a
//! `number` format, its readable number (`DH-2026-0001`), from the numbers it takes.
//! Which numbers those are is decided elsewhere: by the store's counts under the engine's
//! lock (sled), by `numbering`'s hand-outs (a child on a shared store), or under the store's
//! lock of the counts (`starts`).

use super::EngineError;
use super::numbering::Ticket;
use crate::definition::Definition;
use crate::definition::number::NumberFormat;
use chrono::{DateTime, Datelike, Utc};
use std::sync::Arc;

/// How an instance of a workflow started at a given time is named: its readable number's
/// format, and the year, month and period (the count's) that time falls in, on the
/// workflow's calendar.
#[derive(Debug, Clone)]
pub(super) struct Numbering {
    workflow: String,
    format: Option<NumberFormat>,
    year: i32,
    month: u32,
    /// The period of the readable number's count (a year, or `""`); `None` without a format.
    pub(super) period: Option<String>,
}

impl Numbering {
    /// How `definition`'s instances started at `at` are named.
    pub(super) fn of(definition: &Definition, at: DateTime<Utc>) -> Result<Numbering, EngineError> {
        let format = match &definition.workflow.number {
            None => None,
            Some(format) => Some(NumberFormat::parse(format.as_str()).map_err(|problems| {
                EngineError::Definition {
                    hash: definition.hash.clone(),
                    detail: problems
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; "),
                }
            })?),
        };
        let local = definition.calendar.local(at);
        Ok(Numbering {
            workflow: definition.workflow.id.to_string(),
            period: format.as_ref().map(|f| f.period(local.year())),
            format,
            year: local.year(),
            month: local.month(),
        })
    }

    /// The names of instance `n`, whose readable number (if the workflow has a format) takes
    /// `seq` in its period.
    pub(super) fn name(&self, n: u64, seq: Option<u64>) -> Name {
        let readable = match (&self.format, &self.period, seq) {
            (Some(format), Some(period), Some(seq)) => Some(Readable {
                number: format.render(self.year, self.month, seq),
                period: period.clone(),
                seq,
            }),
            _ => None,
        };
        Name {
            workflow: self.workflow.clone(),
            n,
            id: format!("{}-{n}", self.workflow),
            readable,
            ticket: None,
        }
    }
}

/// The names a new instance takes: its id (`workflow-N`) and, with a `number` format, its
/// readable number and the count it takes in its period.
#[derive(Debug, Clone)]
pub(super) struct Name {
    pub(super) workflow: String,
    pub(super) n: u64,
    pub(super) id: String,
    pub(super) readable: Option<Readable>,
    /// On a store that takes numbers in the commit, the hand-out to settle (shared by the
    /// name's copies).
    pub(super) ticket: Option<Arc<Ticket>>,
}

impl Name {
    /// The name's numbers were committed (a store that takes numbers in the commit).
    pub(super) fn committed(&self) {
        if let Some(ticket) = &self.ticket {
            ticket.committed();
        }
    }

    /// The numbers this name takes, for a store that takes them in the commit.
    pub(super) fn claim(&self) -> crate::store::NumberClaim {
        crate::store::NumberClaim {
            workflow: self.workflow.clone(),
            n: self.n,
            sequence: self
                .readable
                .as_ref()
                .map(|readable| (readable.period.clone(), readable.seq)),
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Readable {
    pub(super) period: String,
    pub(super) seq: u64,
    pub(super) number: String,
}
