//! The message a channel sends: what a notice became once rendered and addressed.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One notification on its way out. A webhook receives it as its JSON body; a robot and an
/// e-mail receive its title, body and link as text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// What it is: a notice a workflow declares, or a step of an instance for a channel that
    /// follows a workflow's steps (`steps:`).
    #[serde(default)]
    pub kind: MessageKind,
    /// Stays the same on every attempt to send this message, and differs from every other
    /// message's: the receiver drops an id it has already seen (delivery is at least once).
    pub id: String,
    /// The workflow's id.
    pub workflow: String,
    /// The instance the notice is about.
    pub instance: String,
    /// The step of the instance's history that caused it.
    pub seq: u64,
    /// The notice's title, rendered (one line).
    pub title: String,
    /// The notice's text, rendered.
    pub body: String,
    /// The instance's page in the console, when the server knows its own address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// The users it is for, by id, as far as the engine resolved them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    /// The roles it is for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// E-mail addresses of the users it is for, for an SMTP channel.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emails: Vec<String>,
    /// When the step that caused it was committed.
    pub at: DateTime<Utc>,
    /// For a notice, its `id` in the workflow, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
    /// For a step: what happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<StepSummary>,
}

/// What a message is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// A notice a workflow declares (`notify:`), for people.
    #[default]
    Notice,
    /// A step of an instance, for an application following a workflow.
    Step,
}

/// One step of an instance, as a channel following its workflow receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepSummary {
    /// The event taken (`start` for the start).
    pub event: String,
    /// The state left (none for the start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The state after the step.
    pub to: String,
    /// Whether the instance ended.
    pub finished: bool,
    /// Who took the step (`system` for the engine).
    pub actor: String,
    /// The role they acted in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The fields the step set.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub changes: serde_json::Map<String, serde_json::Value>,
    /// The entry's hash in the instance's chain.
    pub hash: String,
}

impl Message {
    /// The message as plain text: the title, the body, then the link on a line of its own.
    /// Robots and e-mail send this: plain text cannot carry markup or a disguised link that a
    /// value typed into a form could have slipped into a template.
    pub fn text(&self) -> String {
        let mut text = String::with_capacity(self.title.len() + self.body.len() + 64);
        text.push_str(self.title.trim());
        if !self.body.trim().is_empty() {
            text.push('\n');
            text.push_str(self.body.trim());
        }
        if let Some(link) = &self.link {
            text.push('\n');
            text.push_str(link);
        }
        text
    }
}

/// `text` cut to at most `max` bytes on a character boundary, with an ellipsis when cut: the
/// robots refuse a message over their limit rather than shorten it.
pub(super) fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    const MORE: &str = "…";
    let mut end = max.saturating_sub(MORE.len());
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{MORE}", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_whole_characters_and_the_limit() {
        let text = "投诉升级至主管处理".repeat(100);
        for max in [0, 1, 2, 3, 4, 10, 100, 2048] {
            let cut = truncate(&text, max);
            assert!(cut.len() <= max.max(3), "{max}: {} bytes", cut.len());
        }
        assert_eq!(truncate("短", 100), "短");
    }
}
