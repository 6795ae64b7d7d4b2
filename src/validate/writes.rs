//! Field writes: the declarations that say which step may write which field, checked against
//! each other and against what the workflow asks of its steps; and which fields may hold a
//! value on arriving in each state, so that a script reading one that no step before it can
//! write is reported.
//!
//! - `required_on` / `optional_on` name events the workflow has (E208), not both for one event
//!   (E011); `max_length` fits the type (E011); a `party` field is a text naming a declared
//!   role (E201, E011); `access` names declared roles (E201).
//! - What a transition `requires` (and a rejection, and a schedule's initial `data`) must be
//!   writable on its event, or on `start` (E211): otherwise the step could never be taken.
//! - A field is "maybe set" in a state if some path from the start reaches the state through
//!   a step that may write it (its payload, or an action's result); [`MaySet`] computes that as
//!   a fixed point over the state graph, in bit sets.

use super::{Checker, StateIndex};
use crate::definition::located::Located;
use crate::definition::model::{
    AUDITOR_ROLE, COMMENT, FieldType, PROCESS_OWNER_ROLE, START, State, Workflow,
};
use crate::diagnostic::{Code, suggestion_text as suggestion};
use crate::i18n::text;

impl Checker<'_> {
    pub(super) fn check_writes(&mut self) {
        let workflow = self.workflow;
        for (name, _) in workflow.roles.iter() {
            if matches!(name.as_str(), AUDITOR_ROLE | PROCESS_OWNER_ROLE) {
                self.report(
                    Code::BadIdentifier,
                    name.span,
                    text!("diag-server-role-declared", role = name.as_str()),
                    text!("hint-server-role-declared"),
                );
            }
        }
        for (name, field) in workflow.fields.iter() {
            for event in &field.optional_on {
                self.field_event(name, event, "optional");
                if field
                    .required_on
                    .iter()
                    .any(|r| r.as_str() == event.as_str())
                {
                    self.report(
                        Code::InvalidValue,
                        event.span,
                        text!(
                            "diag-required-and-optional",
                            field = name.as_str(),
                            event = event.as_str()
                        ),
                        text!("hint-required-and-optional"),
                    );
                }
            }
            if let Some(limit) = &field.max_length
                && (field.length_limit().is_none() || limit.value == 0)
            {
                self.report(
                    Code::InvalidValue,
                    limit.span,
                    text!("diag-bad-max-length", field = name.as_str()),
                    text!("hint-bad-max-length"),
                );
            }
            if let Some(party) = &field.party {
                self.role_ref(party);
                if field.kind.value != FieldType::String {
                    self.report(
                        Code::InvalidValue,
                        field.kind.span,
                        text!("diag-party-not-string", field = name.as_str()),
                        text!("hint-party-not-string"),
                    );
                }
            }
        }
        if let Some(access) = &workflow.access {
            for role in access.start.iter().flatten().chain(&access.read) {
                self.role_ref(role);
            }
        }
        for (_, state) in workflow.states.iter() {
            for (event, branches) in state.on.iter() {
                for branch in &branches.0 {
                    self.writable_refs(&branch.requires, event.as_str(), "requires");
                    if let Some(audit) = &branch.audit
                        && branch.roles.is_empty()
                    {
                        self.report(
                            Code::InvalidValue,
                            audit.span,
                            text!("diag-audit-on-system-step"),
                            text!("hint-audit-on-system-step"),
                        );
                    }
                }
            }
            if let Some(approval) = &state.approval
                && let Some(rejection) = &approval.on_reject
            {
                self.writable_refs(&rejection.requires, rejection.reject_event(), "requires");
            }
        }
        for (_, schedule) in workflow.schedules.iter() {
            if let Some(data) = &schedule.data {
                let keys: Vec<Located<String>> = data
                    .value
                    .keys()
                    .map(|k| Located::new(k.clone(), data.span))
                    .collect();
                self.writable_refs(&keys, START, "gives");
            }
        }
    }

    fn field_event(&mut self, name: &Located<String>, event: &Located<String>, how: &'static str) {
        if self.events.contains(event.as_str()) || event.as_str() == START {
            self.use_field(name.as_str());
            return;
        }
        let known: Vec<&str> = self.workflow.events().collect();
        self.report(
            Code::UnknownEvent,
            event.span,
            text!(
                "diag-field-on-unknown-event",
                field = name.as_str(),
                how = how,
                event = event.as_str()
            ),
            suggestion(event.as_str(), known.iter().copied()),
        );
    }

    /// Fields that `event` is asked for (`requires`, or a schedule's `data`) must be writable
    /// on it; undeclared ones are reported elsewhere (E202).
    fn writable_refs(&mut self, fields: &[Located<String>], event: &str, verb: &'static str) {
        for name in fields {
            if name.as_str() == COMMENT {
                continue;
            }
            let Some(field) = self.workflow.fields.get(name.as_str()) else {
                continue;
            };
            if !field.is_writable_on(event) {
                self.report(
                    Code::NotWritable,
                    name.span,
                    text!(
                        "diag-not-writable",
                        event = event,
                        verb = verb,
                        field = name.as_str()
                    ),
                    text!("hint-not-writable", event = event),
                );
            }
        }
    }
}

/// Which fields may hold a value on arriving in each state (see the module's documentation):
/// one bit set of `words` words per state, in one flat vector.
#[derive(Debug)]
pub(super) struct MaySet {
    words: usize,
    sets: Vec<u64>,
    /// Whether the state can be reached at all (unreachable ones are reported as such).
    reached: Vec<bool>,
}

/// One way out of a state: the event, the state it leads to, and what it may write besides
/// its payload (`None`: an action whose result the validator cannot see, which may write any
/// field).
pub(super) struct Exit<'w> {
    pub(super) event: &'w str,
    pub(super) to: usize,
    pub(super) action_writes: Option<Vec<usize>>,
}

impl MaySet {
    /// Computes the fixed point. `exits(state)` lists the ways out of each state. The bits an
    /// event's payload writes are worked out once per event, and every exit's bits are kept in
    /// one flat vector: a workflow of ten thousand states allocates a handful of vectors.
    pub(super) fn compute<'w>(
        workflow: &'w Workflow,
        states: &StateIndex<'w>,
        exits: impl Fn(usize, &'w State, &mut Vec<Exit<'w>>),
    ) -> MaySet {
        let words = workflow.fields.len().div_ceil(64).max(1);
        let count = workflow.states.len();
        let mut sets = vec![0u64; count * words];
        let mut reached = vec![false; count];
        // What each event's payload may write, worked out once per event.
        let mut by_event: std::collections::HashMap<&str, Vec<u64>, foldhash::fast::RandomState> =
            std::collections::HashMap::default();
        for event in workflow.events().chain([START]) {
            by_event.entry(event).or_insert_with(|| {
                let mut bits = vec![0u64; words];
                for (i, (_, field)) in workflow.fields.iter().enumerate() {
                    if field.is_writable_on(event) {
                        bits[i / 64] |= 1 << (i % 64);
                    }
                }
                bits
            });
        }
        let nothing = vec![0u64; words];
        let written_by = |event: &str| {
            by_event
                .get(event)
                .map_or(nothing.as_slice(), Vec::as_slice)
        };
        let Some(&initial) = states.get(workflow.initial.as_str()) else {
            return MaySet {
                words,
                sets,
                reached,
            };
        };
        reached[initial] = true;
        sets[initial * words..(initial + 1) * words].copy_from_slice(written_by(START));
        // Every exit: (state it leaves, state it enters), and its bits at the same position
        // of `bits`; `first[s]..first[s + 1]` are the exits of state `s`.
        let mut targets = Vec::new();
        let mut bits = Vec::new();
        let mut first = Vec::with_capacity(count + 1);
        let mut out = Vec::new();
        for (i, (_, state)) in workflow.states.iter().enumerate() {
            first.push(targets.len());
            out.clear();
            exits(i, state, &mut out);
            for exit in out.drain(..) {
                let at = bits.len();
                bits.extend_from_slice(written_by(exit.event));
                let written = &mut bits[at..];
                match exit.action_writes {
                    Some(fields) => {
                        for f in fields {
                            written[f / 64] |= 1 << (f % 64);
                        }
                    }
                    None => written.iter_mut().for_each(|w| *w = u64::MAX),
                }
                targets.push(exit.to);
            }
        }
        first.push(targets.len());
        let mut queue: std::collections::VecDeque<usize> = [initial].into();
        let mut queued = vec![false; count];
        queued[initial] = true;
        while let Some(state) = queue.pop_front() {
            queued[state] = false;
            for edge in first[state]..first[state + 1] {
                let to = targets[edge];
                let mut grew = !reached[to];
                reached[to] = true;
                for w in 0..words {
                    let next =
                        sets[to * words + w] | sets[state * words + w] | bits[edge * words + w];
                    if next != sets[to * words + w] {
                        sets[to * words + w] = next;
                        grew = true;
                    }
                }
                if grew && !queued[to] {
                    queued[to] = true;
                    queue.push_back(to);
                }
            }
        }
        MaySet {
            words,
            sets,
            reached,
        }
    }

    /// Whether some path from the initial state reaches `state`.
    pub(super) fn reached(&self, state: usize) -> bool {
        self.reached[state]
    }

    /// Whether field `field` (by position) may hold a value on arriving in `state`.
    pub(super) fn holds(&self, state: usize, field: usize) -> bool {
        field / 64 < self.words
            && self.sets[state * self.words + field / 64] & (1 << (field % 64)) != 0
    }
}
