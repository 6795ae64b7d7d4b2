//! Routing: what one committed step becomes once the channels are known.
//!
//! A step's outbox record holds its notices, rendered when it was committed. The router, run by
//! the delivery loop as steps are routed into the feed, turns each notice into an inbox item
//! for every role and person it addresses (what the console's 通知 page lists), and into a
//! message for every channel that should carry it: a channel the notice names (`{channel:
//! ID}`), and a channel configured for one of its roles or people (`roles:`, `users:` in the
//! channels file). A channel following the step's workflow (`steps:`) gets the step itself.
//! An `optional` channel that is not set up carries nothing (the server said so when it
//! started). Which channel carries what is read from the channels file when the step is routed, so a
//! channel added to the file carries the notices of steps committed after the restart.
//!
//! Routing is a pure function of the record, the entry and the channels: it reads nothing and
//! sends nothing, so it runs inside the store's routing transaction.

use super::{Channels, Message, MessageKind, StepSummary};
use crate::engine::Router;
use crate::machine::Entry;
use crate::notify::{Addressee, Notice};
use crate::store::outbox::{role_recipient, user_recipient};
use crate::store::{InboxItem, NewDelivery, PendingStep, Routed};
use std::collections::BTreeSet;
use std::sync::Arc;

/// The router the delivery loop hands to [`crate::engine::Outbox::route`].
pub fn router(channels: Arc<Channels>) -> Router {
    Arc::new(move |step, entry| route(&channels, step, entry))
}

/// What `step` (whose entry is `entry`) becomes: deliveries and inbox items.
pub fn route(channels: &Channels, step: &PendingStep, entry: &Entry) -> Routed {
    let mut routed = Routed::default();
    // A record that cannot be read tells nobody, rather than stopping every later step: the
    // step itself is in the history, and in the feed.
    let notices: Vec<Notice> = serde_json::from_slice(&step.notices).unwrap_or_default();
    for channel in channels.available() {
        if channel
            .steps
            .iter()
            .any(|w| w == "*" || *w == entry.workflow)
        {
            push(&mut routed, &channel.id, 0, &step_message(entry));
        }
    }
    for (position, notice) in notices.iter().enumerate() {
        let n = u32::try_from(position + 1).unwrap_or(u32::MAX);
        let mut to: BTreeSet<&str> = BTreeSet::new();
        let mut recipients = Vec::new();
        for addressee in &notice.recipients {
            match addressee {
                Addressee::Channel { name } => {
                    if channels.get(name).is_none_or(|c| c.unavailable().is_none()) {
                        to.insert(name);
                    }
                }
                Addressee::Role { id, .. } => {
                    recipients.push(role_recipient(id));
                    to.extend(
                        channels
                            .iter()
                            .filter(|c| c.roles.contains(id))
                            .map(|c| c.id.as_str()),
                    );
                }
                Addressee::User { id } => {
                    recipients.push(user_recipient(id));
                    to.extend(
                        channels
                            .iter()
                            .filter(|c| c.users.contains(id))
                            .map(|c| c.id.as_str()),
                    );
                }
            }
        }
        let encoded = serde_json::to_vec(notice).unwrap_or_default();
        for recipient in recipients {
            routed.inbox.push(InboxItem {
                recipient,
                key: notice.key.clone(),
                at: entry.at,
                notice: encoded.clone(),
            });
        }
        if !to.is_empty() {
            let message = notice_message(entry, notice);
            for channel in to {
                push(&mut routed, channel, n, &message);
            }
        }
    }
    routed
}

fn push(routed: &mut Routed, channel: &str, n: u32, message: &Message) {
    if let Ok(payload) = serde_json::to_vec(message) {
        routed.deliveries.push(NewDelivery {
            channel: channel.to_string(),
            n,
            payload,
        });
    }
}

fn notice_message(entry: &Entry, notice: &Notice) -> Message {
    let mut users = Vec::new();
    let mut roles = Vec::new();
    for addressee in &notice.recipients {
        match addressee {
            Addressee::User { id } => users.push(id.clone()),
            Addressee::Role { id, .. } => roles.push(id.clone()),
            Addressee::Channel { .. } => {}
        }
    }
    Message {
        kind: MessageKind::Notice,
        id: notice.key.clone(),
        workflow: entry.workflow.to_string(),
        instance: entry.instance.to_string(),
        seq: entry.seq,
        title: notice.title.clone(),
        body: notice.body.clone(),
        // Only an absolute link means something outside the console.
        link: Some(notice.link.clone())
            .filter(|l| l.starts_with("https://") || l.starts_with("http://")),
        users,
        roles,
        emails: Vec::new(),
        at: entry.at,
        notice: notice.id.clone(),
        step: None,
    }
}

fn step_message(entry: &Entry) -> Message {
    Message {
        kind: MessageKind::Step,
        id: format!("{}.{}", entry.instance, entry.seq),
        workflow: entry.workflow.to_string(),
        instance: entry.instance.to_string(),
        seq: entry.seq,
        title: format!("{} {}", entry.instance, entry.event),
        body: String::new(),
        link: None,
        users: Vec::new(),
        roles: Vec::new(),
        emails: Vec::new(),
        at: entry.at,
        notice: None,
        step: Some(StepSummary {
            event: entry.event.to_string(),
            from: entry.from.as_deref().map(str::to_string),
            to: entry.to.to_string(),
            finished: entry.finished,
            actor: entry.actor.to_string(),
            role: entry.role.as_deref().map(str::to_string),
            changes: entry.changes.clone(),
            hash: entry.hash.clone(),
        }),
    }
}
