//! A person's notices (`GET /api/notices`, `POST /api/notices/read`) and, for process owners,
//! the dead letters (`GET /api/deliveries/dead`, `POST /api/deliveries/dead/retry`): what the
//! console's 通知 page shows, for programs.
//!
//! A caller reads the notices addressed to them by name (`user:{id}`) or to one of their
//! roles (`role:{r}`, from the users file); a notice says no more than its workflow's template
//! put in it for them. Marking read touches only the caller's own marks.

use super::{Body, Params, Writer, require_role};
use crate::notify::Notice;
use crate::server::AppState;
use crate::server::auth::Caller;
use crate::server::problem::Problem;
use crate::store::outbox::{role_recipient, user_recipient};
use crate::store::{Delivery, DeliveryKey};
use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The role that reads and revives dead letters.
pub const PROCESS_OWNER: &str = "process_owner";

/// The most notices (or dead letters) one answer lists.
pub const MAX_LIMIT: usize = 200;

/// How many one answer lists when `limit` is left out.
const DEFAULT_LIMIT: usize = 100;

/// The most keys one `POST /api/notices/read` names.
pub const MAX_KEYS: usize = 200;

/// The longest key accepted, in bytes.
const MAX_KEY_LEN: usize = 300;

/// The query of `GET /api/notices` and `GET /api/deliveries/dead`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitParams {
    /// At most this many, newest first (default 100, at most 200).
    #[serde(default)]
    #[schemars(range(min = 1, max = 200))]
    pub limit: Option<usize>,
}

impl LimitParams {
    fn limit(&self) -> Result<usize, Problem> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if (1..=MAX_LIMIT).contains(&limit) {
            Ok(limit)
        } else {
            Err(Problem::bad_request(
                "bad_query",
                format!("limit must be between 1 and {MAX_LIMIT}"),
            ))
        }
    }
}

/// One of the caller's notices.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct NoticeView {
    /// The notice's key (`{instance}.{seq}.{n}`), which `POST /api/notices/read` takes.
    pub key: String,
    /// Who it reached the caller as: `user:{id}` or `role:{role}`.
    pub recipient: String,
    /// When its step was committed.
    pub at: DateTime<Utc>,
    /// The instance it is about.
    pub instance: String,
    /// Whether the caller has marked it read.
    pub read: bool,
    /// The notice as its step rendered it (absent if it could not be read back).
    pub notice: Option<Notice>,
}

/// The body of `POST /api/notices/read`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadBody {
    /// The notices' keys, at most 200, each 1 to 300 characters without control characters;
    /// keys of notices that are not the caller's are ignored.
    #[schemars(
        length(max = 200),
        inner(
            length(min = 1, max = 300),
            regex(pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")
        )
    )]
    pub keys: Vec<String>,
}

/// What `POST /api/notices/read` did.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Marked {
    /// How many of the keys named the caller's notices and are now marked read.
    pub marked: usize,
}

/// A dead letter: a message a channel did not take after its last attempt.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DeadLetter {
    /// `channel/instance.seq.n`, which `POST /api/deliveries/dead/retry` takes.
    pub key: String,
    /// The channel.
    pub channel: String,
    /// The instance.
    pub instance: String,
    /// The step's number in the instance's history.
    pub seq: u64,
    /// The notice's position among the step's notices.
    pub n: u32,
    /// The message's title.
    pub title: Option<String>,
    /// Attempts made.
    pub attempts: u32,
    /// What the last attempt met.
    pub last_error: Option<String>,
    /// When it was given up.
    pub dead_since: DateTime<Utc>,
    /// When its step was routed.
    pub queued_at: DateTime<Utc>,
}

/// The answer of `GET /api/deliveries/dead`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DeadLetters {
    /// The dead letters, at most `limit`.
    pub dead: Vec<DeadLetter>,
    /// Committed steps not yet routed.
    pub unrouted: u64,
    /// Messages waiting to be sent.
    pub queued: u64,
    /// Dead letters in all.
    pub dead_count: u64,
}

/// The body of `POST /api/deliveries/dead/retry`: one key, or `all`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryBody {
    /// The dead letter, `channel/instance.seq.n` as `GET /api/deliveries/dead` lists it.
    #[serde(default)]
    #[schemars(
        length(min = 1, max = 300),
        regex(
            pattern = r"^[^/\x00-\x1F\x7F-\x9F]+/[^\x00-\x1F\x7F-\x9F]+\.[0-9]{1,19}\.[0-9]{1,9}$"
        )
    )]
    pub key: Option<String>,
    /// `true`: every dead letter.
    #[serde(default)]
    pub all: bool,
}

/// What `POST /api/deliveries/dead/retry` did.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Revived {
    /// How many dead letters are queued again.
    pub revived: u64,
}

/// Whose notices a caller reads: theirs by name, and their roles'.
pub(crate) fn recipients(caller: &Caller) -> Vec<String> {
    std::iter::once(user_recipient(&caller.user.id))
        .chain(caller.user.roles.iter().map(|r| role_recipient(r)))
        .collect()
}

/// The instance a notice key (`{instance}.{seq}.{n}`) names.
fn instance_of(key: &str) -> &str {
    key.rsplitn(3, '.').nth(2).unwrap_or(key)
}

/// A key as a request may send it: 1 to 300 characters (as the document's `maxLength`
/// counts), no control characters.
fn bad_key(key: &str) -> bool {
    key.is_empty() || key.chars().count() > MAX_KEY_LEN || key.chars().any(char::is_control)
}

fn bad_key_problem() -> Problem {
    Problem::bad_request(
        "bad_key",
        format!("a key is 1 to {MAX_KEY_LEN} bytes without control characters"),
    )
}

/// `GET /api/notices`.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Params(params): Params<LimitParams>,
) -> Result<Json<Vec<NoticeView>>, Problem> {
    let limit = params.limit()?;
    let outbox = state.engine.outbox();
    let items = outbox.notices(recipients(&caller), limit).await?;
    let keys: Vec<String> = items.iter().map(|i| i.key.clone()).collect();
    let read = outbox.read_marks(caller.user.id.clone(), keys).await?;
    Ok(Json(
        items
            .into_iter()
            .map(|item| NoticeView {
                instance: instance_of(&item.key).to_string(),
                read: read.contains(&item.key),
                notice: serde_json::from_slice(&item.notice).ok(),
                key: item.key,
                recipient: item.recipient,
                at: item.at,
            })
            .collect(),
    ))
}

/// `POST /api/notices/read`: marks the caller's notices among `keys` read.
pub async fn read(
    State(state): State<AppState>,
    Writer(caller): Writer,
    Body(body): Body<ReadBody>,
) -> Result<Json<Marked>, Problem> {
    if body.keys.len() > MAX_KEYS {
        return Err(
            Problem::bad_request("bad_key", format!("at most {MAX_KEYS} keys at once"))
                .with("max", json!(MAX_KEYS)),
        );
    }
    if body.keys.iter().any(|k| bad_key(k)) {
        return Err(bad_key_problem());
    }
    let outbox = state.engine.outbox();
    // Only the caller's own notices are marked: a key of anyone else's is left alone.
    let mine = outbox.notices(recipients(&caller), usize::MAX).await?;
    let keys: Vec<String> = body
        .keys
        .into_iter()
        .filter(|key| mine.iter().any(|item| &item.key == key))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let marked = keys.len();
    if !keys.is_empty() {
        outbox.mark_read(caller.user.id.clone(), keys).await?;
    }
    Ok(Json(Marked { marked }))
}

fn dead_letter(letter: Delivery) -> DeadLetter {
    let title = serde_json::from_slice::<serde_json::Value>(&letter.payload)
        .ok()
        .and_then(|m| m["title"].as_str().map(str::to_string));
    DeadLetter {
        key: letter.key.to_string(),
        channel: letter.key.channel,
        instance: letter.key.instance,
        seq: letter.key.seq,
        n: letter.key.n,
        title,
        attempts: letter.attempts,
        last_error: letter.last_error,
        dead_since: letter.next_at,
        queued_at: letter.queued_at,
    }
}

/// `GET /api/deliveries/dead` (process owners).
pub async fn dead(
    State(state): State<AppState>,
    caller: Caller,
    Params(params): Params<LimitParams>,
) -> Result<Json<DeadLetters>, Problem> {
    require_role(&caller, PROCESS_OWNER)?;
    let limit = params.limit()?;
    let outbox = state.engine.outbox();
    let letters = outbox.dead_letters(limit).await?;
    let counts = outbox.counts().await?;
    Ok(Json(DeadLetters {
        dead: letters.into_iter().map(dead_letter).collect(),
        unrouted: counts.unrouted,
        queued: counts.queued,
        dead_count: counts.dead,
    }))
}

/// `POST /api/deliveries/dead/retry` (process owners).
pub async fn retry(
    State(state): State<AppState>,
    Writer(caller): Writer,
    Body(body): Body<RetryBody>,
) -> Result<Json<Revived>, Problem> {
    require_role(&caller, PROCESS_OWNER)?;
    let key = match (body.key, body.all) {
        (None, true) => None,
        (Some(key), false) => {
            if bad_key(&key) {
                return Err(bad_key_problem());
            }
            match key.parse::<DeliveryKey>() {
                Ok(key) => Some(key),
                Err(err) => return Err(Problem::bad_request("bad_key", err.to_string())),
            }
        }
        _ => {
            return Err(Problem::new(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "bad_body",
                "Unexpected body",
                "send either `key` (channel/instance.seq.n) or `all: true`",
            ));
        }
    };
    let revived = state.engine.outbox().revive(key).await?;
    tracing::info!(actor = ?caller.user.id, revived, "dead letters sent again through the API");
    Ok(Json(Revived { revived }))
}
