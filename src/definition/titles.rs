//! The titles a person reads in place of ids: a state's, a role's, a field's, an event's, as
//! the YAML writes them (the manual's Chinese), or the id where the YAML gives none. One place,
//! so that the console, the CLI, the audit and the refusals all say the same.

use super::Workflow;

/// What an event is called where no branch gives it a title.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventTitle<'a> {
    /// A branch's `title:` as written.
    Written(&'a str),
    /// The signing event of an approval (同意).
    Approve,
    /// The rejecting event of an approval (退回).
    Reject,
}

impl Workflow {
    /// A state's title, or its id.
    pub fn state_title<'a>(&'a self, state: &'a str) -> &'a str {
        self.states
            .get(state)
            .and_then(|s| s.title.as_deref())
            .filter(|t| !t.is_empty())
            .unwrap_or(state)
    }

    /// A role's title (`秩序维护部`), or its id.
    pub fn role_title<'a>(&'a self, role: &'a str) -> &'a str {
        self.roles
            .get(role)
            .map(|r| r.title.as_str())
            .filter(|t| !t.is_empty())
            .unwrap_or(role)
    }

    /// A field's title (`动火作业通知书编号`), or its id.
    pub fn field_title<'a>(&'a self, field: &'a str) -> &'a str {
        self.fields
            .get(field)
            .and_then(|f| f.title.as_deref())
            .filter(|t| !t.is_empty())
            .unwrap_or(field)
    }

    /// What `event` is called in `state` (in any state when `None`): the first of its branches
    /// with a title, or the approval's signing or rejecting event; `None` when nothing names
    /// it.
    pub fn event_title(&self, state: Option<&str>, event: &str) -> Option<EventTitle<'_>> {
        let states: Vec<_> = match state {
            Some(id) => self.states.get(id).into_iter().collect(),
            None => self.states.iter().map(|(_, s)| s).collect(),
        };
        for state in states {
            if let Some(branches) = state.on.get(event)
                && let Some(title) = branches.0.iter().find_map(|b| b.title.as_deref())
            {
                return Some(EventTitle::Written(title));
            }
            if let Some(approval) = &state.approval {
                if approval.approve_event() == event {
                    return Some(EventTitle::Approve);
                }
                if approval
                    .on_reject
                    .as_ref()
                    .is_some_and(|r| r.reject_event() == event)
                {
                    return Some(EventTitle::Reject);
                }
            }
        }
        None
    }
}
