//! The channels file (`config/channels.yaml`): which channels exist, how each is reached, and
//! how failed messages are tried again. Read once when the server starts; a channel that
//! cannot work (a secret missing from the environment, plain HTTP to another machine) stops
//! the start with a message saying what to set, rather than failing at the first escalation.
//!
//! ```yaml
//! delivery: { max_attempts: 10, first_retry_seconds: 5, max_retry_seconds: 3600 }
//! channels:
//!   - id: supervisors_group
//!     title: 客服主管群
//!     kind: wecom                          # or dingtalk, webhook, smtp
//!     url_env: SOPFLOW_WECOM_SUPERVISORS   # the robot's URL, key included
//! ```
//!
//! Secrets are named by environment variable (`url_env`, `secret_env`, `password_env`...),
//! never written in the file: the file is kept with the workflows, the secrets are not.

use super::backoff::Backoff;
use super::http::{self, check_url};
use super::robot::{Robot, Vendor};
use super::smtp::{Security, Settings, Smtp};
use super::webhook::Webhook;
use super::{Failure, Message};
use chrono::{DateTime, Utc};
use lettre::message::Mailbox;
use reqwest::Url;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// Why the channels file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the channels file {path}: {source}")]
    Read {
        /// The file, as given.
        path: String,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The file was read, but a channel in it cannot work as written.
    #[error("{path}: {message}")]
    Invalid {
        /// The file, as given.
        path: String,
        /// What is wrong and what to change.
        message: String,
    },
}

/// The most channels one file may declare.
const MAX_CHANNELS: usize = 200;

/// Longest wait for one message, whatever the file says.
const MAX_TIMEOUT_SECONDS: u64 = 120;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChannelsFile {
    #[serde(default)]
    delivery: Backoff,
    #[serde(default)]
    channels: Vec<ChannelSpec>,
}

/// One channel as written. Which keys apply depends on `kind`; the others are refused.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChannelSpec {
    id: String,
    #[serde(default)]
    title: Option<String>,
    kind: ChannelKind,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    url_env: Option<String>,
    #[serde(default)]
    secret_env: Option<String>,
    #[serde(default)]
    timeout_seconds: Option<u64>,
    #[serde(default)]
    mention_mobiles: Vec<String>,
    #[serde(default)]
    host: Option<String>,
    #[serde(default)]
    port: Option<u16>,
    #[serde(default)]
    security: Option<Security>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Vec<String>,
    #[serde(default)]
    username_env: Option<String>,
    #[serde(default)]
    password_env: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    users: Vec<String>,
    #[serde(default)]
    steps: Vec<String>,
    #[serde(default)]
    optional: bool,
}

/// What kind of channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// An HTTP endpoint that receives the message as signed JSON.
    Webhook,
    /// A WeCom (企业微信) group robot.
    Wecom,
    /// A DingTalk (钉钉) custom group robot.
    Dingtalk,
    /// E-mail through an SMTP server.
    Smtp,
}

/// The configured channels and how failed messages are tried again.
#[derive(Debug, Default)]
pub struct Channels {
    channels: BTreeMap<String, Channel>,
    /// How a failed message is tried again.
    pub backoff: Backoff,
}

/// One channel, ready to send.
#[derive(Debug)]
pub struct Channel {
    /// Its id, as workflows name it (`to: [{channel: ID}]`).
    pub id: String,
    /// What people call it, for the console (`客服主管群`).
    pub title: Option<String>,
    /// Its kind.
    pub kind: ChannelKind,
    /// Notices addressed to these roles are sent here too (besides their holders' inboxes).
    pub roles: Vec<String>,
    /// Notices addressed to these people (user ids) are sent here too.
    pub users: Vec<String>,
    /// Every step of these workflows (`*`: of all) is sent here, in order: for applications
    /// that follow a process.
    pub steps: Vec<String>,
    how: How,
}

#[derive(Debug)]
enum How {
    Webhook(Webhook),
    Robot(Robot),
    Smtp(Box<Smtp>),
    /// An `optional` channel whose secrets are not set: what to set.
    Unavailable(String),
}

impl Channels {
    /// Reads the channels file at `path`, taking secrets from `env` (the process environment
    /// in the server: `|name| std::env::var(name).ok()`).
    pub fn load(
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Channels, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        Channels::parse(&text, env).map_err(|message| ConfigError::Invalid {
            path: shown,
            message,
        })
    }

    /// Reads a channels file's text (see [`Channels::load`]).
    pub fn parse(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Channels, String> {
        let file: ChannelsFile = serde_saphyr::from_str(text).map_err(|err| {
            format!("{err}\nhint: each channel has `id`, `kind` (webhook, wecom, dingtalk or smtp) and the keys of its kind; secrets are named with `*_env`")
        })?;
        if file.channels.len() > MAX_CHANNELS {
            return Err(format!(
                "{} channels; at most {MAX_CHANNELS} in one file",
                file.channels.len()
            ));
        }
        if file.delivery.max_attempts == 0 || file.delivery.max_attempts > 100 {
            return Err("delivery.max_attempts is between 1 and 100".into());
        }
        let mut channels = BTreeMap::new();
        for spec in file.channels {
            let id = spec.id.clone();
            let channel = build(spec, env).map_err(|message| format!("channel {id}: {message}"))?;
            if channels.insert(id.clone(), channel).is_some() {
                return Err(format!(
                    "channel {id} is declared twice; give each channel its own id"
                ));
            }
        }
        Ok(Channels {
            channels,
            backoff: file.delivery,
        })
    }

    /// The channel `id`, if configured.
    pub fn get(&self, id: &str) -> Option<&Channel> {
        self.channels.get(id)
    }

    /// Every channel, by id.
    pub fn iter(&self) -> impl Iterator<Item = &Channel> {
        self.channels.values()
    }

    /// The channels that can send: all but the `optional` ones whose secrets are not set.
    pub fn available(&self) -> impl Iterator<Item = &Channel> {
        self.iter().filter(|c| c.unavailable().is_none())
    }
}

impl Channel {
    /// Sends `message` once. `now` signs it (webhooks, DingTalk).
    pub async fn send(&self, message: &Message, now: DateTime<Utc>) -> Result<(), Failure> {
        match &self.how {
            How::Webhook(webhook) => webhook.send(message, now).await,
            How::Robot(robot) => robot.send(message, now).await,
            How::Smtp(smtp) => smtp.send(message).await,
            How::Unavailable(what) => Err(Failure::permanent(format!(
                "channel {} is not set up: {what}",
                self.id
            ))),
        }
    }

    /// Why the channel cannot send, when it is an `optional` one whose secrets are not set.
    pub fn unavailable(&self) -> Option<&str> {
        match &self.how {
            How::Unavailable(what) => Some(what),
            _ => None,
        }
    }

    /// Where it sends to, without secrets, for logs and the console.
    pub fn describe(&self) -> String {
        match &self.how {
            How::Webhook(webhook) => webhook.describe(),
            How::Robot(robot) => {
                format!("{} robot {}", robot.vendor.name(), http::redact(&robot.url))
            }
            How::Smtp(smtp) => format!("SMTP {}", smtp.describe),
            How::Unavailable(what) => format!("not set up ({what})"),
        }
    }
}

/// The most roles, users or workflows one channel may list.
const MAX_NAMES: usize = 200;

fn build(spec: ChannelSpec, env: &dyn Fn(&str) -> Option<String>) -> Result<Channel, String> {
    check_id(&spec.id)?;
    for (key, names) in [
        ("roles", &spec.roles),
        ("users", &spec.users),
        ("steps", &spec.steps),
    ] {
        if names.len() > MAX_NAMES {
            return Err(format!(
                "`{key}` lists {} names; at most {MAX_NAMES}",
                names.len()
            ));
        }
        if let Some(bad) = names.iter().find(|name| !is_name(name, key == "steps")) {
            return Err(format!(
                "`{key}` has {bad:?}: give ids (letters, digits, `_`, `-`, `.`, at most 128 characters){}",
                if key == "steps" {
                    ", or `*` for every workflow"
                } else {
                    ""
                }
            ));
        }
    }
    let missing: Vec<&str> = [
        &spec.url_env,
        &spec.secret_env,
        &spec.username_env,
        &spec.password_env,
    ]
    .into_iter()
    .flatten()
    .map(String::as_str)
    .filter(|name| env(name).is_none_or(|value| value.trim().is_empty()))
    .collect();
    let how = if spec.optional && !missing.is_empty() {
        How::Unavailable(format!("set {} and restart the server", missing.join(", ")))
    } else {
        how(&spec, env)?
    };
    Ok(Channel {
        id: spec.id,
        title: spec.title,
        kind: spec.kind,
        roles: spec.roles,
        users: spec.users,
        steps: spec.steps,
        how,
    })
}

fn is_name(name: &str, star: bool) -> bool {
    (star && name == "*")
        || (!name.is_empty()
            && name.len() <= 128
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')))
}

/// How the channel sends, from its kind's keys.
fn how(spec: &ChannelSpec, env: &dyn Fn(&str) -> Option<String>) -> Result<How, String> {
    let timeout = match spec.timeout_seconds {
        None => Duration::from_secs(10),
        Some(seconds @ 1..=MAX_TIMEOUT_SECONDS) => Duration::from_secs(seconds),
        Some(other) => {
            return Err(format!(
                "timeout_seconds is {other}; it is between 1 and {MAX_TIMEOUT_SECONDS}"
            ));
        }
    };
    let how = match spec.kind {
        ChannelKind::Webhook => {
            only_keys(spec, &["url", "url_env", "secret_env"])?;
            let url = url(spec, env)?;
            let secret_env = spec.secret_env.as_deref().ok_or(
                "a webhook is signed: name the environment variable that holds its secret in `secret_env`",
            )?;
            How::Webhook(Webhook {
                url,
                secret: Some(secret(env, secret_env)?),
                client: http::client(timeout)?,
            })
        }
        ChannelKind::Wecom | ChannelKind::Dingtalk => {
            only_keys(spec, &["url", "url_env", "secret_env", "mention_mobiles"])?;
            if spec.url.is_some() {
                return Err("a robot's URL holds its key: put it in an environment variable and name that in `url_env`, not in `url`".into());
            }
            let vendor = if spec.kind == ChannelKind::Wecom {
                if spec.secret_env.is_some() {
                    return Err("a WeCom robot has no signing secret; remove `secret_env`".into());
                }
                Vendor::WeCom
            } else {
                Vendor::DingTalk
            };
            How::Robot(Robot {
                vendor,
                url: url(spec, env)?,
                secret: spec
                    .secret_env
                    .as_deref()
                    .map(|name| secret(env, name))
                    .transpose()?,
                mention_mobiles: spec.mention_mobiles.clone(),
                client: http::client(timeout)?,
            })
        }
        ChannelKind::Smtp => {
            only_keys(
                spec,
                &[
                    "host",
                    "port",
                    "security",
                    "from",
                    "to",
                    "username_env",
                    "password_env",
                ],
            )?;
            How::Smtp(Box::new(smtp(spec, env, timeout)?))
        }
    };
    Ok(how)
}

fn check_id(id: &str) -> Result<(), String> {
    let fine = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && id.as_bytes()[0].is_ascii_lowercase();
    if fine {
        Ok(())
    } else {
        Err("a channel's id is snake_case: lower-case letters, digits and `_`, starting with a letter, at most 64 characters".into())
    }
}

/// Refuses the keys of other kinds of channel (anything but `keys`, besides `id`, `title`,
/// `kind` and `timeout_seconds`), so a mistyped kind is not silently a channel that ignores
/// half its settings.
fn only_keys(spec: &ChannelSpec, keys: &[&str]) -> Result<(), String> {
    let present = [
        ("url", spec.url.is_some()),
        ("url_env", spec.url_env.is_some()),
        ("secret_env", spec.secret_env.is_some()),
        ("mention_mobiles", !spec.mention_mobiles.is_empty()),
        ("host", spec.host.is_some()),
        ("port", spec.port.is_some()),
        ("security", spec.security.is_some()),
        ("from", spec.from.is_some()),
        ("to", !spec.to.is_empty()),
        ("username_env", spec.username_env.is_some()),
        ("password_env", spec.password_env.is_some()),
    ];
    match present
        .iter()
        .find(|(key, given)| *given && !keys.contains(key))
    {
        Some((key, _)) => {
            Err(format!("`{key}` does not apply to a {:?} channel", spec.kind).to_lowercase())
        }
        None => Ok(()),
    }
}

fn secret(env: &dyn Fn(&str) -> Option<String>, name: &str) -> Result<String, String> {
    match env(name) {
        Some(value) if !value.trim().is_empty() => Ok(value.trim().to_string()),
        _ => Err(format!(
            "the environment variable {name} is not set; set it before starting the server"
        )),
    }
}

fn url(spec: &ChannelSpec, env: &dyn Fn(&str) -> Option<String>) -> Result<Url, String> {
    let text = match (&spec.url, &spec.url_env) {
        (Some(url), None) => url.clone(),
        (None, Some(name)) => secret(env, name)?,
        (Some(_), Some(_)) => return Err("give `url` or `url_env`, not both".into()),
        (None, None) => return Err("give the address to send to in `url` (or `url_env`)".into()),
    };
    let url = Url::parse(&text).map_err(|err| match &spec.url_env {
        Some(name) => format!("the environment variable {name} is not a URL: {err}"),
        None => format!("`url` is not a URL: {err}"),
    })?;
    check_url(&url)?;
    Ok(url)
}

fn smtp(
    spec: &ChannelSpec,
    env: &dyn Fn(&str) -> Option<String>,
    timeout: Duration,
) -> Result<Smtp, String> {
    let host = spec
        .host
        .as_deref()
        .ok_or("an SMTP channel names its server in `host`")?;
    let security = spec
        .security
        .ok_or("say how the SMTP connection is secured in `security`: tls, starttls or none")?;
    if security == Security::None && !matches!(host, "localhost" | "127.0.0.1" | "::1") {
        return Err(format!(
            "`security: none` sends mail and passwords in the clear; it is allowed to this machine only, not to {host}: use tls or starttls"
        ));
    }
    let from: Mailbox = spec
        .from
        .as_deref()
        .ok_or("an SMTP channel names its sender in `from`, for example `客服中心 <noreply@example.com>`")?
        .parse()
        .map_err(|err| format!("`from` is not an address: {err}"))?;
    let to = spec
        .to
        .iter()
        .map(|address| {
            address
                .parse::<Mailbox>()
                .map_err(|err| format!("`to` has {address:?}, which is not an address: {err}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let credentials = match (&spec.username_env, &spec.password_env) {
        (Some(user), Some(password)) => Some((secret(env, user)?, secret(env, password)?)),
        (None, None) => None,
        _ => return Err("give both `username_env` and `password_env`, or neither".into()),
    };
    let port = spec.port;
    let transport = Smtp::transport(Settings {
        host,
        port,
        security,
        credentials,
        timeout,
    })?;
    Ok(Smtp {
        transport,
        from,
        to,
        describe: match port {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        },
    })
}
