//! E-mail over SMTP, through lettre: a plain-text message to the channel's fixed addresses
//! and to the addresses the engine resolved for the message's users.
//!
//! Security follows the channel's `security`: `tls` (SMTPS, port 465 by default), `starttls`
//! (port 587 by default; the connection must be upgraded, or no credentials and no message are
//! sent), or `none`, allowed to this machine only (a local relay or a test receiver). The
//! `Message-ID` is made from the message's id, so the copies an at-least-once delivery may
//! send twice share it, and a mailbox that deduplicates by it shows one.

use super::{Failure, Message};
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Mailboxes};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use std::time::Duration;

/// How the connection to the SMTP server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Security {
    /// TLS from the first byte (SMTPS).
    Tls,
    /// A plain connection upgraded with STARTTLS, which must succeed.
    Starttls,
    /// No encryption: to this machine only.
    None,
}

/// A configured SMTP channel.
#[derive(Clone)]
pub(super) struct Smtp {
    pub transport: AsyncSmtpTransport<Tokio1Executor>,
    pub from: Mailbox,
    pub to: Vec<Mailbox>,
    pub describe: String,
}

impl std::fmt::Debug for Smtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smtp")
            .field("server", &self.describe)
            .finish()
    }
}

/// What the configuration gives an SMTP channel.
pub(super) struct Settings<'a> {
    pub host: &'a str,
    pub port: Option<u16>,
    pub security: Security,
    pub credentials: Option<(String, String)>,
    pub timeout: Duration,
}

impl Smtp {
    pub fn transport(settings: Settings<'_>) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
        let builder = match settings.security {
            Security::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(settings.host),
            Security::Starttls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(settings.host)
            }
            Security::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                settings.host,
            )),
        }
        .map_err(|err| format!("cannot set up TLS to {}: {err}", settings.host))?;
        let mut builder = builder.timeout(Some(settings.timeout));
        if let Some(port) = settings.port {
            builder = builder.port(port);
        }
        if let Some((user, password)) = settings.credentials {
            builder = builder.credentials(Credentials::new(user, password));
        }
        Ok(builder.build())
    }

    pub async fn send(&self, message: &Message) -> Result<(), Failure> {
        let mut to: Mailboxes = self.to.iter().cloned().collect();
        for address in &message.emails {
            // An address the users file got wrong is skipped, not the whole message.
            if let Ok(mailbox) = address.parse::<Mailbox>() {
                to.push(mailbox);
            }
        }
        if to.iter().next().is_none() {
            return Err(Failure::permanent(
                "nobody to write to: the channel names no `to` and the message's users have no e-mail address",
            ));
        }
        let email = lettre::Message::builder()
            .from(self.from.clone())
            .mailbox(lettre::message::header::To::from(to))
            .subject(one_line(&message.title))
            .message_id(Some(message_id(&message.id)))
            .header(ContentType::TEXT_PLAIN)
            .body(message.text())
            .map_err(|err| Failure::permanent(format!("cannot build the e-mail: {err}")))?;
        match self.transport.send(email).await {
            Ok(_) => Ok(()),
            Err(err) if err.is_permanent() => Err(Failure::permanent(format!(
                "the SMTP server {} refused the e-mail: {err}",
                self.describe
            ))),
            Err(err) => Err(Failure::retry(format!(
                "cannot hand the e-mail to {}: {err}",
                self.describe
            ))),
        }
    }
}

/// A subject on one line: a line break in a header would start another header.
fn one_line(text: &str) -> String {
    text.split(['\r', '\n'])
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A `Message-ID` made of the message's id, with anything outside a msg-id's safe characters
/// replaced.
fn message_id(id: &str) -> String {
    let local: String = id
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' | '_' => c,
            _ => '.',
        })
        .collect();
    format!("<{local}@sopflow>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subject_stays_one_line_and_an_id_stays_a_msg_id() {
        assert_eq!(
            one_line("投诉升级\r\nBcc: x@example.com"),
            "投诉升级 Bcc: x@example.com"
        );
        assert_eq!(message_id("complaint-7:3:0"), "<complaint-7.3.0@sopflow>");
        assert_eq!(message_id("a>b<c@d"), "<a.b.c.d@sopflow>");
    }
}
