//! `sopflow deliveries dead | retry`: the dead letters (messages a channel did not take after
//! their last attempt, or refused outright) and sending them again, on the store the engine
//! opens, or with `--server URL` through a running server's API (as a process owner's token).
//! `dead --format json` is one array of objects with stable keys for programs, the same from
//! either.

use super::Format;
use super::remote::RemoteArgs;
use super::runtime::{self, EngineArgs, Failure};
use serde_json::json;
use sopflow::i18n::Lang;
use sopflow::store::{Delivery, DeliveryKey};
use std::process::ExitCode;

/// `sopflow deliveries`.
#[derive(Debug, clap::Subcommand)]
pub enum DeliveriesCommand {
    /// The dead letters, each with its channel, step, attempts and last error.
    Dead {
        #[command(flatten)]
        engine: EngineArgs,
        #[command(flatten)]
        remote: RemoteArgs,
        /// At most this many (a server lists at most 200).
        #[arg(long, default_value_t = 200)]
        limit: usize,
    },
    /// Send dead letters again, from their first attempt: one, named as `dead` lists it
    /// (`CHANNEL/INSTANCE.SEQ.N`), or `--all`. A running server's delivery loop sends them.
    Retry {
        #[command(flatten)]
        engine: EngineArgs,
        #[command(flatten)]
        remote: RemoteArgs,
        /// The dead letter.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        key: Option<String>,
        /// Every dead letter.
        #[arg(long)]
        all: bool,
    },
}

pub fn run(command: DeliveriesCommand) -> ExitCode {
    let remote = match &command {
        DeliveriesCommand::Dead { remote, .. } | DeliveriesCommand::Retry { remote, .. } => remote,
    };
    if let Err(message) = remote.check(false) {
        eprintln!("error: {message}");
        return ExitCode::from(2);
    }
    match command {
        DeliveriesCommand::Dead {
            engine,
            remote,
            limit,
        } => dead(&engine, &remote, limit.min(10_000)),
        DeliveriesCommand::Retry {
            engine,
            remote,
            key,
            all,
        } => retry(&engine, &remote, key.as_deref(), all),
    }
}

/// A dead letter as the JSON output shows it.
fn record(letter: &Delivery) -> serde_json::Value {
    let title = serde_json::from_slice::<serde_json::Value>(&letter.payload)
        .ok()
        .and_then(|m| m["title"].as_str().map(str::to_string));
    json!({
        "key": letter.key.to_string(),
        "channel": letter.key.channel,
        "instance": letter.key.instance,
        "seq": letter.key.seq,
        "n": letter.key.n,
        "title": title,
        "attempts": letter.attempts,
        "last_error": letter.last_error,
        "dead_since": letter.next_at,
        "queued_at": letter.queued_at,
    })
}

fn dead(args: &EngineArgs, remote: &RemoteArgs, limit: usize) -> ExitCode {
    let lang = runtime::chosen_lang(args.lang);
    let result = match remote.connect(args.format, lang) {
        Ok(Some(server)) => server.dead_letters(limit),
        Ok(None) => runtime::with_engine(args.store.config(false), async |engine| {
            engine.outbox().dead_letters(limit).await
        })
        .map(|letters| letters.iter().map(record).collect()),
        Err(failure) => Err(failure),
    };
    runtime::finish(args.format, result, |letters| match args.format {
        Format::Json => serde_json::to_string_pretty(&letters).unwrap_or_default(),
        Format::Human if letters.is_empty() => match lang {
            Lang::Zh => "没有投递失败的消息。".to_string(),
            Lang::En => "No dead letters.".to_string(),
        },
        Format::Human => letters
            .iter()
            .map(|value| {
                // Keys, titles and errors come from data and receivers elsewhere: shown
                // escaped, each on one line.
                let text = |name: &str| {
                    value[name]
                        .as_str()
                        .unwrap_or("")
                        .escape_debug()
                        .to_string()
                };
                let (key, title, error, since) = (
                    text("key"),
                    text("title"),
                    text("last_error"),
                    text("dead_since"),
                );
                let attempts = value["attempts"].as_u64().unwrap_or(0);
                match lang {
                    Lang::Zh => format!(
                        "{key}  已尝试 {attempts} 次  {since}\n  {title}\n  最后一次错误:{error}"
                    ),
                    Lang::En => format!(
                        "{key}  {attempts} attempt(s)  {since}\n  {title}\n  last error: {error}"
                    ),
                }
            })
            .collect::<Vec<_>>()
            .join("\n"),
    })
}

fn retry(args: &EngineArgs, remote: &RemoteArgs, key: Option<&str>, all: bool) -> ExitCode {
    let lang = runtime::chosen_lang(args.lang);
    let key = match (key, all) {
        (_, true) => None,
        (Some(key), false) => match key.parse::<DeliveryKey>() {
            Ok(key) => Some(key),
            Err(err) => return runtime::report(args.format, &Failure::Input(err)),
        },
        (None, false) => {
            return runtime::report(
                args.format,
                &Failure::Input(
                    "name a dead letter (as `sopflow deliveries dead` lists it), or give --all"
                        .into(),
                ),
            );
        }
    };
    let result = match remote.connect(args.format, lang) {
        Ok(Some(server)) => server.revive(key.map(|k| k.to_string()).as_deref()),
        Ok(None) => runtime::with_engine(args.store.config(false), async |engine| {
            engine.outbox().revive(key).await
        }),
        Err(failure) => Err(failure),
    };
    runtime::finish(args.format, result, |revived| match args.format {
        Format::Json => json!({"revived": revived}).to_string(),
        Format::Human => match lang {
            Lang::Zh => format!("已重新排队 {revived} 条消息;运行中的服务会发送它们。"),
            Lang::En => format!("{revived} message(s) queued again; a running server sends them."),
        },
    })
}
