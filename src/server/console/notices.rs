//! The 通知 page (`GET /notices`): the notices workflows sent to the signed-in person, to them
//! by name or to one of their roles, newest first, the unread ones marked; marking them read
//! (`POST /notices/read`). For process owners, the dead letters below them: messages a channel
//! did not take, with their last error, and sending them again (`POST /deliveries/retry`).
//!
//! A notice addressed to someone is theirs to read: it says no more than its workflow's
//! template put in it for them. Its link is always this console's page of the instance, never
//! an address taken from the notice.

use super::flash::{self, Flash};
use super::{Form, Page, csrf_field, csrf_refusal, html_response, internal, layout, local};
use crate::notify::Notice;
use crate::server::AppState;
use crate::server::auth::Caller;
use crate::store::outbox::{role_recipient, user_recipient};
use crate::store::{Delivery, DeliveryKey, InboxItem};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};

/// How many notices the page lists, newest first.
const SHOWN: usize = 100;

/// How many dead letters the page lists.
const SHOWN_DEAD: usize = 100;

/// The most keys one form marks read.
const MAX_KEYS: usize = SHOWN;

/// Whose notices a caller reads: theirs by name, and their roles'.
fn recipients(caller: &Caller) -> Vec<String> {
    std::iter::once(user_recipient(&caller.user.id))
        .chain(caller.user.roles.iter().map(|r| role_recipient(r)))
        .collect()
}

/// The instance a notice key (`{instance}.{seq}.{n}`) names.
fn instance_of(key: &str) -> &str {
    key.rsplitn(3, '.').nth(2).unwrap_or(key)
}

/// What a POST left for the page (`?flash=`).
#[derive(Debug, Default, serde::Deserialize)]
pub struct Flashed {
    flash: Option<String>,
}

/// `GET /deliveries`: the dead letters, which process owners find on the 通知 page.
pub async fn deliveries(State(state): State<AppState>, Page(caller): Page) -> Response {
    if let Some(refused) = not_owner(&state, &caller) {
        return refused;
    }
    Redirect::to("/notices#dead-letters").into_response()
}

/// The 403 page for a caller who is not a process owner.
fn not_owner(state: &AppState, caller: &Caller) -> Option<Response> {
    if caller.user.has_role(super::PROCESS_OWNER) {
        return None;
    }
    let problem = crate::server::problem::Problem::forbidden(
        "missing_role",
        format!("dead letters are for the `{}` role", super::PROCESS_OWNER),
    );
    Some(super::error_page(state, caller, &problem))
}

/// `GET /notices`.
pub async fn page(
    State(state): State<AppState>,
    Page(caller): Page,
    Query(flashed): Query<Flashed>,
) -> Response {
    let revived = flashed
        .flash
        .as_deref()
        .and_then(|token| state.flashes.get(&caller, token))
        .and_then(|flash| match flash {
            Flash::Revived(n) => Some(n),
            _ => None,
        });
    let outbox = state.engine.outbox();
    let items = match outbox.notices(recipients(&caller), SHOWN).await {
        Ok(items) => items,
        Err(err) => return internal(&state, &caller, err),
    };
    let keys: Vec<String> = items.iter().map(|i| i.key.clone()).collect();
    let read = match outbox.read_marks(caller.user.id.clone(), keys).await {
        Ok(read) => read,
        Err(err) => return internal(&state, &caller, err),
    };
    let owner = caller.user.has_role(super::PROCESS_OWNER);
    let dead = if owner {
        match (outbox.dead_letters(SHOWN_DEAD).await, outbox.counts().await) {
            (Ok(dead), Ok(counts)) => Some((dead, counts)),
            (Err(err), _) | (_, Err(err)) => return internal(&state, &caller, err),
        }
    } else {
        None
    };
    let lang = caller.lang;
    let t = |id: &str| lang.text(id);
    let unread: Vec<&InboxItem> = items.iter().filter(|i| !read.contains(&i.key)).collect();
    let body = html! {
        section.card #notices {
            h1 {
                (t("console-notices-heading"))
                @if !unread.is_empty() {
                    " " span.badge #unread { (lang.text_with("console-notices-unread", &[("count", &unread.len().to_string())])) }
                }
            }
            @if items.is_empty() {
                p.muted #no-notices { (t("console-notices-empty")) }
            } @else {
                @if !unread.is_empty() {
                    form.inline method="post" action="/notices/read" #mark-all {
                        (csrf_field(&caller))
                        @for item in &unread { input type="hidden" name="key" value=(item.key); }
                        button type="submit" { (t("console-notices-mark-all")) }
                    }
                }
                table.reflow {
                    thead { tr {
                        th { (t("console-notices-col-time")) } th { (t("console-notices-col-notice")) } th { (t("console-notices-col-instance")) }
                    } }
                    tbody {
                        @for item in &items {
                            @let is_read = read.contains(&item.key);
                            (row(&caller, item, is_read))
                        }
                    }
                }
            }
        }
        @if let Some((dead, counts)) = &dead {
            section.card #dead-letters {
                h2 { (t("console-deliveries-heading")) }
                @if let Some(revived) = revived {
                    div.banner.ok #revived data-revived=(revived) role="status" {
                        (lang.text_with("console-deliveries-revived", &[("count", &revived.to_string())]))
                    }
                }
                p.muted #outbox-counts {
                    (lang.text_with("console-deliveries-counts", &[
                        ("unrouted", &counts.unrouted.to_string()),
                        ("queued", &counts.queued.to_string()),
                        ("dead", &counts.dead.to_string()),
                    ]))
                }
                @if dead.is_empty() {
                    p.muted { (t("console-deliveries-empty")) }
                } @else {
                    form.inline method="post" action="/deliveries/retry" #retry-all {
                        (csrf_field(&caller))
                        input type="hidden" name="all" value="1";
                        button type="submit" { (t("console-deliveries-retry-all")) }
                    }
                    table.reflow {
                        thead { tr {
                            th { (t("console-deliveries-col-channel")) } th { (t("console-deliveries-col-message")) }
                            th { (t("console-deliveries-col-attempts")) } th { (t("console-deliveries-col-error")) } th {}
                        } }
                        tbody { @for letter in dead { (dead_row(&caller, letter)) } }
                    }
                }
            }
        }
    };
    html_response(
        StatusCode::OK,
        layout(&state, &caller, &t("console-notices-title"), body),
    )
}

fn row(caller: &Caller, item: &InboxItem, is_read: bool) -> Markup {
    let lang = caller.lang;
    let notice: Option<Notice> = serde_json::from_slice(&item.notice).ok();
    let instance = instance_of(&item.key);
    html! {
        tr.unread[!is_read] data-key=(item.key) {
            td data-label=(lang.text("console-notices-col-time")) { (local(item.at)) }
            td data-label=(lang.text("console-notices-col-notice")) {
                @if !is_read { span.badge.new { (lang.text("console-notices-new")) } " " }
                @match &notice {
                    Some(notice) => {
                        strong.title { (notice.title) }
                        @if !notice.body.is_empty() { p.body style="white-space: pre-wrap" { (notice.body) } }
                    }
                    None => { span.muted { (item.key) } }
                }
            }
            td data-label=(lang.text("console-notices-col-instance")) {
                a href={ "/instances/" (instance) } { code { (instance) } }
                @if !is_read {
                    form.inline method="post" action="/notices/read" {
                        (csrf_field(caller))
                        input type="hidden" name="key" value=(item.key);
                        button.link type="submit" { (lang.text("console-notices-mark")) }
                    }
                }
            }
        }
    }
}

fn dead_row(caller: &Caller, letter: &Delivery) -> Markup {
    let lang = caller.lang;
    let title = serde_json::from_slice::<serde_json::Value>(&letter.payload)
        .ok()
        .and_then(|m| m["title"].as_str().map(str::to_string))
        .unwrap_or_default();
    let key = letter.key.to_string();
    html! {
        tr data-delivery=(key) {
            td data-label=(lang.text("console-deliveries-col-channel")) { code { (letter.key.channel) } }
            td data-label=(lang.text("console-deliveries-col-message")) {
                (title) br;
                a href={ "/instances/" (letter.key.instance) } { code.muted { (letter.key.instance) } }
            }
            td data-label=(lang.text("console-deliveries-col-attempts")) { (letter.attempts) }
            td data-label=(lang.text("console-deliveries-col-error")) {
                (letter.last_error.as_deref().unwrap_or("—")) br; small.muted { (local(letter.next_at)) }
            }
            td {
                form.inline method="post" action="/deliveries/retry" {
                    (csrf_field(caller))
                    input type="hidden" name="key" value=(key);
                    button type="submit" { (lang.text("console-deliveries-retry")) }
                }
            }
        }
    }
}

/// `POST /notices/read`: marks the notices the form names read (at most [`MAX_KEYS`], each
/// one of the caller's), then back to the page.
pub async fn read(State(state): State<AppState>, Page(caller): Page, form: Form) -> Response {
    if let Some(refused) = csrf_refusal(&state, &caller, &form) {
        return refused;
    }
    let outbox = state.engine.outbox();
    let mine = match outbox.notices(recipients(&caller), SHOWN).await {
        Ok(items) => items,
        Err(err) => return internal(&state, &caller, err),
    };
    let keys: Vec<String> = form
        .pairs()
        .iter()
        .filter(|(name, _)| name == "key")
        .map(|(_, key)| key)
        .filter(|key| mine.iter().any(|item| &item.key == *key))
        .take(MAX_KEYS)
        .cloned()
        .collect();
    if !keys.is_empty()
        && let Err(err) = outbox.mark_read(caller.user.id.clone(), keys).await
    {
        return internal(&state, &caller, err);
    }
    Redirect::to("/notices").into_response()
}

/// `POST /deliveries/retry` (process owners): sends one dead letter (`key`) or all (`all`)
/// again, then back to the page.
pub async fn retry(State(state): State<AppState>, Page(caller): Page, form: Form) -> Response {
    if let Some(refused) = not_owner(&state, &caller) {
        return refused;
    }
    if let Some(refused) = csrf_refusal(&state, &caller, &form) {
        return refused;
    }
    let key = match (form.get("all"), form.text("key")) {
        (Some(_), _) => None,
        (None, Some(key)) => match key.parse::<DeliveryKey>() {
            Ok(key) => Some(key),
            Err(_) => return Redirect::to("/notices").into_response(),
        },
        (None, None) => return Redirect::to("/notices").into_response(),
    };
    match state.engine.outbox().revive(key).await {
        Ok(revived) => {
            tracing::info!(actor = ?caller.user.id, revived, "dead letters sent again from the console");
            let token = state.flashes.put(&caller, Flash::Revived(revived));
            Redirect::to(&format!(
                "{}#dead-letters",
                flash::with_token("/notices", token)
            ))
            .into_response()
        }
        Err(err) => internal(&state, &caller, err),
    }
}
