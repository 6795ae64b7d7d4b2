//! `GET /api/events`: committed steps as server-sent events, for applications that follow
//! processes without polling.
//!
//! Each event is one step of the feed ([`crate::engine::Subscription`]): `id:` its feed
//! position, `event: step`, `data:` one line of JSON. A client that loses the connection sends
//! the last id it saw back in `Last-Event-ID` (or `?after=`) and gets the steps after it, with
//! none missed or repeated. Only steps of instances the caller may read are sent (as
//! `GET /api/instances/{id}` decides), filtered by `workflow` and `instance`.
//!
//! Bounded: at most [`PER_USER`] streams per user and [`IN_ALL`] in all (429 `too_many_streams`
//! beyond); a stream ends after [`LIFETIME`] (the client reconnects with its last id); a
//! comment every [`KEEP_ALIVE`] keeps proxies from closing a quiet one; the read decisions of
//! at most [`ACCESS_CACHE`] instances are remembered.

use super::extract::{Params, empty_as_none};
use crate::engine::{FeedStep, StepFilter};
use crate::server::AppState;
use crate::server::auth::Caller;
use crate::server::problem::Problem;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Streams one user may hold open.
pub const PER_USER: usize = 4;
/// Streams open in all.
pub const IN_ALL: usize = 256;
/// How long one stream lasts before the server ends it.
pub const LIFETIME: Duration = Duration::from_secs(60 * 60);
/// How often a quiet stream sends a comment.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Instances whose read decision a stream remembers; then it forgets them all.
pub const ACCESS_CACHE: usize = 10_000;

/// The query of `GET /api/events`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventParams {
    /// Only steps of this workflow (empty: any).
    #[serde(default, deserialize_with = "empty_as_none")]
    #[schemars(regex(pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"))]
    pub workflow: Option<String>,
    /// Only steps of this instance (empty: any).
    #[serde(default, deserialize_with = "empty_as_none")]
    #[schemars(regex(pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"))]
    pub instance: Option<String>,
    /// Only steps after this feed position (what `Last-Event-ID` says, which wins); by default
    /// from the first.
    #[serde(default, deserialize_with = "empty_as_none")]
    pub after: Option<u64>,
}

/// The streams open, per user: the bound on what clients can hold; and the signal that ends
/// them all when the server shuts down (a graceful shutdown waits for open requests, and a
/// stream would otherwise last its whole lifetime).
#[derive(Debug)]
pub struct Streams {
    open: Mutex<HashMap<String, usize>>,
    closing: tokio::sync::watch::Sender<bool>,
}

impl Default for Streams {
    fn default() -> Streams {
        Streams {
            open: Mutex::default(),
            closing: tokio::sync::watch::Sender::new(false),
        }
    }
}

/// One open stream, counted until dropped.
struct Slot {
    streams: Arc<Streams>,
    user: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.streams.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.user) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.user);
            }
        }
    }
}

impl Streams {
    /// Ends every stream open, and every one opened from now on.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    fn take(self: &Arc<Self>, user: &str) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let total: usize = open.values().sum();
        let mine = open.get(user).copied().unwrap_or(0);
        if total >= IN_ALL || mine >= PER_USER {
            return None;
        }
        *open.entry(user.to_string()).or_default() += 1;
        Some(Slot {
            streams: self.clone(),
            user: user.to_string(),
        })
    }
}

fn no_control(name: &str, value: Option<&str>) -> Result<(), Problem> {
    match value {
        Some(value) if value.chars().any(char::is_control) => Err(Problem::bad_request(
            "bad_key",
            format!("{name} holds a control character"),
        )),
        _ => Ok(()),
    }
}

/// The position to resume after: `Last-Event-ID`, else `?after=`, else 0.
fn resume_after(headers: &HeaderMap, params: &EventParams) -> Result<u64, Problem> {
    match headers.get("last-event-id") {
        None => Ok(params.after.unwrap_or(0)),
        Some(value) => value
            .to_str()
            .ok()
            .map(str::trim)
            .filter(|v| !v.is_empty() && v.len() <= 20)
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| {
                Problem::bad_request(
                    "bad_event_id",
                    "Last-Event-ID is not an event id this server sent (a feed position, digits)",
                )
            }),
    }
}

/// One event's text.
fn event(step: &FeedStep) -> Bytes {
    let entry = &step.entry;
    let data = json!({
        "position": step.position,
        "instance": entry.instance,
        "seq": entry.seq,
        "workflow": entry.workflow,
        "event": entry.event,
        "from": entry.from,
        "to": entry.to,
        "finished": entry.finished,
        "actor": entry.actor,
        "role": entry.role,
        "at": entry.at,
        "hash": entry.hash,
        "number": entry.number,
    });
    // serde_json writes one line: newlines inside strings are escaped.
    Bytes::from(format!(
        "id: {}\nevent: step\ndata: {data}\n\n",
        step.position
    ))
}

/// `GET /api/events`.
pub async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Params(params): Params<EventParams>,
) -> Result<Response, Problem> {
    no_control("workflow", params.workflow.as_deref())?;
    no_control("instance", params.instance.as_deref())?;
    let after = resume_after(&headers, &params)?;
    let Some(slot) = state.event_streams.take(&caller.user.id) else {
        return Err(Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_streams",
            "Too many event streams",
            format!(
                "at most {PER_USER} event streams per user and {IN_ALL} in all are open; close one first"
            ),
        ));
    };
    let mut subscription = state.engine.subscribe(
        after,
        StepFilter {
            workflow: params.workflow.clone(),
            instance: params.instance.clone(),
        },
    );
    let (tx, body) = crate::server::stream::channel_body(16);
    let engine = state.engine.clone();
    let actor = caller.actor();
    let mut closing = state.event_streams.closing.subscribe();
    tokio::spawn(async move {
        let _slot = slot;
        if *closing.borrow_and_update() {
            return;
        }
        let mut readable: HashMap<String, bool> = HashMap::new();
        let ends = tokio::time::Instant::now() + LIFETIME;
        // The first bytes go out at once, so the client knows the stream is open.
        if tx
            .send(Ok(Bytes::from_static(b": sopflow events\n\n")))
            .await
            .is_err()
        {
            return;
        }
        loop {
            let next = tokio::select! {
                next = subscription.next() => next,
                () = tokio::time::sleep(KEEP_ALIVE) => {
                    if tx.send(Ok(Bytes::from_static(b": keep-alive\n\n"))).await.is_err() {
                        return;
                    }
                    continue;
                }
                () = tokio::time::sleep_until(ends) => return,
                _ = closing.changed() => return,
            };
            let step = match next {
                Ok(step) => step,
                Err(err) => {
                    tracing::warn!(error = %err, "event stream ended: the store failed");
                    return;
                }
            };
            let id = step.entry.instance.to_string();
            let may = match readable.get(&id) {
                Some(may) => *may,
                None => {
                    let may = match engine.get(&id).await {
                        Ok(instance) => engine.may_read(&instance, &actor),
                        Err(_) => false,
                    };
                    if readable.len() >= ACCESS_CACHE {
                        readable.clear();
                    }
                    readable.insert(id.to_string(), may);
                    may
                }
            };
            if may && tx.send(Ok(event(&step))).await.is_err() {
                return;
            }
        }
    });
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}
