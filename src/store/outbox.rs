//! The outbox, as stored: what committed steps leave to be delivered, and how far delivery got.
//!
//! Every step the engine commits writes one outbox record in the same commit as its history
//! entry ([`Committed::outbox`](super::Committed::outbox): the notices it causes, rendered), so
//! a crash can neither lose a notice of a committed step nor leave one of a step that was not
//! committed. From there, three records follow, each written by one transaction of the store:
//!
//! - **routing** ([`Store::route_outbox`](super::Store::route_outbox)) takes committed
//!   outbox records in (instance, seq) order, gives each step the next position of the
//!   **feed** (the order subscribers and `GET /api/events` see steps in: gapless, and an
//!   instance's steps in their order), and replaces the record with what the router made of
//!   it: **deliveries** (one message for one channel) and **inbox** items (one notice for one
//!   role or person). One router at a time assigns positions (the store serialises them), so
//!   a reader that has seen position N has seen every position before it;
//! - **sending** claims the deliveries due, the first of each (channel, instance) only, so that
//!   a channel receives an instance's messages in order
//!   ([`Store::due_deliveries`](super::Store::due_deliveries)), and records each attempt: done
//!   (deleted), failed (tried again later), or given up (a **dead letter**, until an operator
//!   revives it);
//! - **reading**: the feed by position, a person's inbox by recipient, their read marks.
//!
//! The store keeps bytes it does not interpret (a notice list, a message): what a notice is and
//! how a message is sent belong to `notify` and `delivery`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A committed step's outbox record, not yet routed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingStep {
    /// The instance.
    pub instance: String,
    /// The step's sequence number.
    pub seq: u64,
    /// The notices it causes: JSON of a list of `notify::Notice`.
    pub notices: Vec<u8>,
}

/// What routing made of one step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routed {
    /// Messages to send, each to one channel.
    pub deliveries: Vec<NewDelivery>,
    /// Notices for people's inboxes.
    pub inbox: Vec<InboxItem>,
}

/// A message to send to one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// The channel's id.
    pub channel: String,
    /// Its place among the step's messages to this channel (the step itself is 0, its notices
    /// 1, 2, ...): with the instance and seq, the order the channel receives them in.
    pub n: u32,
    /// The message (JSON of `delivery::Message`).
    pub payload: Vec<u8>,
}

/// Which delivery: a channel, and a place in an instance's history.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DeliveryKey {
    /// The channel's id.
    pub channel: String,
    /// The instance.
    pub instance: String,
    /// The step's sequence number.
    pub seq: u64,
    /// The message's place among the step's messages to this channel.
    pub n: u32,
}

impl std::fmt::Display for DeliveryKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}.{}.{}",
            self.channel, self.instance, self.seq, self.n
        )
    }
}

impl std::str::FromStr for DeliveryKey {
    type Err = String;

    /// Reads `channel/instance.seq.n`, as [`DeliveryKey`]'s `Display` writes it.
    fn from_str(text: &str) -> Result<DeliveryKey, String> {
        let bad = || format!("`{text}` is not a delivery (channel/instance.seq.n)");
        let (channel, rest) = text.split_once('/').ok_or_else(bad)?;
        let (rest, n) = rest.rsplit_once('.').ok_or_else(bad)?;
        let (instance, seq) = rest.rsplit_once('.').ok_or_else(bad)?;
        if channel.is_empty() || instance.is_empty() {
            return Err(bad());
        }
        Ok(DeliveryKey {
            channel: channel.to_string(),
            instance: instance.to_string(),
            seq: seq.parse().map_err(|_| bad())?,
            n: n.parse().map_err(|_| bad())?,
        })
    }
}

/// A message in the delivery queue or among the dead letters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Which one.
    pub key: DeliveryKey,
    /// The message (JSON of `delivery::Message`).
    pub payload: Vec<u8>,
    /// Attempts made so far.
    pub attempts: u32,
    /// When it may be tried next (for a dead letter: when it was given up).
    pub next_at: DateTime<Utc>,
    /// What the last attempt met, if one failed.
    pub last_error: Option<String>,
    /// When its step was routed, for the delivery lag.
    pub queued_at: DateTime<Utc>,
}

/// A step's place in the feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedItem {
    /// Its position: 1, 2, 3... with no gaps, in the order steps were routed.
    pub position: u64,
    /// The instance.
    pub instance: String,
    /// The step's sequence number.
    pub seq: u64,
}

/// One notice in the inbox of one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxItem {
    /// `role:{id}` or `user:{id}`.
    pub recipient: String,
    /// The notice's key (`{instance}.{seq}.{n}`).
    pub key: String,
    /// When its step was committed.
    pub at: DateTime<Utc>,
    /// The notice (JSON of `notify::Notice`).
    pub notice: Vec<u8>,
}

/// How the outbox stands, for metrics and the console.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    /// Committed steps not yet routed.
    pub unrouted: u64,
    /// Messages waiting to be sent (or being sent).
    pub queued: u64,
    /// Dead letters.
    pub dead: u64,
    /// The feed's last position.
    pub feed_head: u64,
}

/// The recipient key of a role's inbox.
pub fn role_recipient(role: &str) -> String {
    format!("role:{role}")
}

/// The recipient key of a person's inbox.
pub fn user_recipient(user: &str) -> String {
    format!("user:{user}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_key_reads_back_what_it_writes() {
        let key = DeliveryKey {
            channel: "cs_group".into(),
            instance: "complaint.v1-12".into(),
            seq: 3,
            n: 2,
        };
        let text = key.to_string();
        assert_eq!(text, "cs_group/complaint.v1-12.3.2");
        assert_eq!(text.parse::<DeliveryKey>(), Ok(key));
        for bad in [
            "",
            "cs_group",
            "cs_group/x.1",
            "/x.1.2",
            "a/.1.2",
            "a/x.y.2",
        ] {
            assert!(bad.parse::<DeliveryKey>().is_err(), "{bad}");
        }
    }
}
