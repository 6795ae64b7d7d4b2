//! The channels a notification leaves by, and how each sends one message: an HTTP webhook
//! (JSON, signed with HMAC-SHA256), the group robots Chinese workplaces use (WeCom and
//! DingTalk, as presets of the webhook), and e-mail over SMTP.
//!
//! This module owns the edge to the outside world and nothing before it: which notices a step
//! causes, and the outbox that keeps them until they are sent, live elsewhere. A channel takes
//! one [`Message`] and answers whether it arrived, or why not and whether trying again may
//! help ([`Failure`]); the caller decides when to try again ([`Backoff`]).
//!
//! Delivery is at least once: a message may arrive twice (the receiver answered, the answer was
//! lost), so every message carries an id ([`Message::id`]) that stays the same on every
//! attempt, for the receiver to drop what it has seen. Channels are configured in one file
//! beside the users file (`config/channels.yaml`, [`Channels::load`]); secrets (a signing
//! key, a robot's URL, an SMTP password) come from the environment, never from the file.

mod backoff;
mod config;
mod http;
mod message;
mod robot;
pub mod route;
mod smtp;
mod webhook;
pub mod worker;

pub use backoff::Backoff;
pub use config::{Channel, ChannelKind, Channels, ConfigError};
pub use message::{Message, MessageKind, StepSummary};
pub use webhook::{SIGNATURE_HEADER, verify_signature};

/// Why a message did not arrive.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// It may arrive if sent again later: the receiver was unreachable, slow, overloaded or
    /// said so (HTTP 5xx, 429, a robot's rate limit, an SMTP transient reply). `after` is how
    /// long the receiver asked to wait (`Retry-After`), when it did.
    #[error("{reason} (will be tried again)")]
    Retry {
        /// What happened, for the operator.
        reason: String,
        /// The wait the receiver asked for.
        after: Option<std::time::Duration>,
    },
    /// Sending it again will not help until someone changes something: the receiver refused
    /// the message or the credentials (HTTP 4xx, a robot's error code, an SMTP permanent
    /// reply). The message goes to the dead letters, where an operator can send it again.
    #[error("{reason} (not tried again: fix the channel, then retry it from the dead letters)")]
    Permanent {
        /// What happened, for the operator.
        reason: String,
    },
}

impl Failure {
    fn retry(reason: impl Into<String>) -> Failure {
        Failure::Retry {
            reason: reason.into(),
            after: None,
        }
    }

    fn permanent(reason: impl Into<String>) -> Failure {
        Failure::Permanent {
            reason: reason.into(),
        }
    }

    /// Whether sending the message again may help.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Failure::Retry { .. })
    }
}
