//! The web console: server-rendered HTML pages over the same [`AppState`] as the API.
//!
//! Pages are plain HTML forms rendered with maud (which escapes every value), styled by one
//! embedded stylesheet: no JavaScript, no CDN, no web fonts, so the console works on a
//! locked-down service-desk PC and in a text browser alike. Every step goes through
//! [`AppState::start`] / [`AppState::fire`], so the console is counted, timed and logged
//! exactly like the API, and a refusal is the engine's own, shown as it is.
//!
//! Who is asking comes from the session cookie ([`Page`], which sends a stranger to the
//! sign-in page instead of answering JSON). Every form that changes something carries the
//! session's CSRF token, checked by `csrf_refusal` before anything else is read.

mod audit;
pub(crate) mod flash;
mod forms;
mod history;
mod inbox;
mod instance;
mod lang;
mod migration;
mod notices;
mod signin;
mod workflow;

use super::AppState;
use super::auth::{self, Caller, SESSION_COOKIE};
use super::problem::Problem;
use crate::catalog::Definition;
use crate::i18n::Lang;
use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};
use std::convert::Infallible;

/// The role that keeps the workflows: sees failed reloads on the home page, and who else can
/// act on an instance.
pub const PROCESS_OWNER: &str = "process_owner";

/// The stylesheet, embedded so that the binary is the whole console.
const STYLE: &str = include_str!("style.css");

/// The console's pages and forms, at the site's root beside `/api/`: sign-in, the inbox and
/// search, starting, instance pages and their forms, workflows, audit, the stylesheet and the
/// language switch.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(inbox::inbox))
        .route("/login", get(signin::form).post(signin::sign_in))
        .route("/logout", post(signin::sign_out))
        .route("/instances", get(inbox::search).post(inbox::start))
        .route("/start", get(inbox::start_page))
        .route("/instances/{id}", get(instance::page))
        .route("/instances/{id}/fire", post(instance::fire))
        .route("/workflows", get(workflow::list))
        .route("/workflows/{id}", get(workflow::page))
        .route(
            "/workflows/{id}/migration",
            get(migration::page).post(migration::apply),
        )
        .route("/notices", get(notices::page))
        .route("/notices/read", post(notices::read))
        .route("/deliveries", get(notices::deliveries))
        .route("/deliveries/retry", post(notices::retry))
        .route("/audit", get(audit::page))
        .route("/audit/verify", post(audit::verify))
        .route("/audit/export.csv", get(audit::export))
        .route("/console.css", get(style))
        .route("/language", get(lang::switch))
}

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLE,
    )
        .into_response()
}

/// The signed-in person behind a console page. A request without a live session is sent to
/// the sign-in page (and back here afterwards) rather than given the API's JSON 401.
pub struct Page(pub Caller);

impl FromRequestParts<AppState> for Page {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Page, Response> {
        let presented = parts.headers.contains_key(header::AUTHORIZATION)
            || auth::cookie(parts, SESSION_COOKIE).is_some();
        if !presented {
            // Not a failed authentication: someone who has not signed in yet.
            return Err(to_login(parts, false));
        }
        match Caller::from_request_parts(parts, state).await {
            Ok(caller) => Ok(Page(caller)),
            Err(problem) if problem.status == StatusCode::UNAUTHORIZED => {
                Err(to_login(parts, true))
            }
            Err(problem) => Err(stranger_error(auth::request_lang(parts), &problem)),
        }
    }
}

/// A redirect to the sign-in page that comes back to this page (for a GET) afterwards.
fn to_login(parts: &Parts, clear_cookie: bool) -> Response {
    let back = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .filter(|p| parts.method == axum::http::Method::GET && *p != "/");
    let target = match back {
        Some(path) => format!(
            "/login?{}",
            serde_urlencoded::to_string([("next", path)]).unwrap_or_default()
        ),
        None => "/login".to_string(),
    };
    let mut response = Redirect::to(&target).into_response();
    if clear_cookie {
        response
            .headers_mut()
            .insert(header::SET_COOKIE, HeaderValue::from_static(CLEAR_COOKIE));
    }
    response
}

/// Ends the session cookie in the browser.
const CLEAR_COOKIE: &str = "sopflow_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0";

/// Whether the request came from this machine (demo users are accepted only from there). A
/// server without connection info (a test harness) counts as elsewhere.
pub struct Loopback(pub bool);

impl FromRequestParts<AppState> for Loopback {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Loopback, Infallible> {
        Ok(Loopback(auth::from_this_machine(parts)))
    }
}

/// The fields of a posted form, in order. A body that is not a form reads as no fields, so
/// that the CSRF check (not a 5xx or a bare text error) answers it. As an extractor it reads
/// the body within the body timeout and size limit, and answers a page when it cannot.
pub(crate) struct Form(Vec<(String, String)>);

impl axum::extract::FromRequest<AppState> for Form {
    type Rejection = Response;

    async fn from_request(
        request: axum::extract::Request,
        state: &AppState,
    ) -> Result<Form, Response> {
        let lang = auth::headers_lang(request.headers());
        match crate::server::api::read_body(request, state).await {
            Ok(body) => Ok(Form::parse(&body)),
            Err(problem) => Err(stranger_error(lang, &problem)),
        }
    }
}

impl Form {
    pub(crate) fn parse(body: &[u8]) -> Form {
        Form(serde_urlencoded::from_bytes(body).unwrap_or_default())
    }

    /// The last value given for `key` (a checkbox after its hidden default wins).
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A value with surrounding blanks removed, `None` when blank.
    pub(crate) fn text(&self, key: &str) -> Option<&str> {
        self.get(key).map(str::trim).filter(|v| !v.is_empty())
    }

    pub(crate) fn pairs(&self) -> &[(String, String)] {
        &self.0
    }
}

/// The refusal of a form whose `_csrf` is not the session's (`None` when it is): another
/// site cannot make a signed-in browser take a step. Counted with the other refused
/// credentials.
pub(crate) fn csrf_refusal(state: &AppState, caller: &Caller, form: &Form) -> Option<Response> {
    let given = form.get("_csrf").unwrap_or_default();
    if caller.csrf_matches(given.as_bytes()) {
        return None;
    }
    state.metrics.auth_failed("csrf");
    tracing::warn!(actor = ?caller.user.id, "console form refused: CSRF token missing or wrong");
    let problem = Problem::forbidden(
        "csrf",
        "the form's security token does not match this session; reload the page and try again",
    )
    .explained(Some(caller.lang.text("console-error-csrf")));
    Some(error_page(state, caller, &problem))
}

/// The hidden CSRF field every form that changes something carries.
pub(crate) fn csrf_field(caller: &Caller) -> Markup {
    html! { input type="hidden" name="_csrf" value=(caller.csrf().unwrap_or_default()); }
}

/// An HTML answer with the console's headers: no caching of pages that show personal tasks,
/// no framing, no scripts at all. Pages are in the language the request asks for.
pub(crate) fn html_response(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, markup).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::VARY,
        HeaderValue::from_static("accept-language, cookie"),
    );
    response
}

/// A page for a problem, for a signed-in caller: its status, code and message, in the
/// console's frame.
pub(crate) fn error_page(state: &AppState, caller: &Caller, problem: &Problem) -> Response {
    let lang = caller.lang;
    html_response(
        problem.status,
        layout(
            state,
            caller,
            &error_heading(lang, problem),
            error_body(lang, problem),
        ),
    )
}

/// A page for a problem, for someone not signed in (or whose session is unknown).
pub(crate) fn stranger_error(lang: Lang, problem: &Problem) -> Response {
    html_response(
        problem.status,
        frame(
            lang,
            None,
            &error_heading(lang, problem),
            error_body(lang, problem),
        ),
    )
}

fn error_heading(lang: Lang, problem: &Problem) -> String {
    lang.text(match problem.status {
        StatusCode::NOT_FOUND => "console-error-not-found",
        StatusCode::FORBIDDEN => "console-error-forbidden",
        StatusCode::UNAUTHORIZED => "console-error-unauthorized",
        s if s.is_client_error() => "console-error-bad-request",
        _ => "console-error-failed",
    })
}

fn error_body(lang: Lang, problem: &Problem) -> Markup {
    let t = |id: &str| lang.text(id);
    // A problem with a message in the reader's language shows it; one without (the engine's
    // own words, in English) is said in general terms in Chinese, the detail kept for whoever
    // reports it.
    let explained = problem.extra.contains_key("message");
    html! {
        div.banner.error #problem data-code=(problem.code) {
            strong { (error_heading(lang, problem)) }
            @if explained || lang == Lang::En {
                p { (problem.message()) }
            } @else {
                p { (t(match problem.code.as_str() {
                    "unknown_instance" => "console-error-unknown-instance",
                    _ if problem.status.is_server_error() => "console-error-failed-detail",
                    _ => "console-error-general",
                })) }
                p.muted.detail lang="en" { small { (problem.detail) } }
            }
        }
        p { a href="/" { (t("console-error-back")) } }
    }
}

/// The frame of every page of a signed-in caller: the top bar (who I am, my roles by title,
/// where I can go, the language switch) and the content, in the caller's language.
pub(crate) fn layout(state: &AppState, caller: &Caller, title: &str, content: Markup) -> Markup {
    let roles = role_titles(state, &caller.user.roles);
    frame(caller.lang, Some((caller, &roles)), title, content)
}

/// The frame of a page for someone not signed in.
pub(crate) fn stranger_layout(lang: Lang, title: &str, content: Markup) -> Markup {
    frame(lang, None, title, content)
}

fn frame(
    lang: Lang,
    who: Option<(&Caller, &[(String, String)])>,
    title: &str,
    content: Markup,
) -> Markup {
    let t = |id: &str| lang.text(id);
    html! {
        (DOCTYPE)
        html lang=(lang.tag()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · sopflow" }
                link rel="stylesheet" href="/console.css";
                link rel="icon" href="data:,";
            }
            body {
                header.topbar {
                    a.brand href="/" { "sopflow" span.muted { " " (t("console-layout-brand")) } }
                    @if let Some((caller, roles)) = who {
                        nav {
                            a href="/" { (t("console-layout-nav-tasks")) }
                            a href="/instances" { (t("console-layout-nav-instances")) }
                            a href="/workflows" { (t("console-layout-nav-workflows")) }
                            a href="/notices" { (t("console-layout-nav-notices")) }
                            @if caller.user.has_role(audit::AUDITOR) {
                                a href="/audit" { (t("console-layout-nav-audit")) }
                            }
                        }
                        div.who {
                            span.user #whoami { (caller.user.name) }
                            @if caller.user.name != caller.user.id {
                                " " span.muted { "(" (caller.user.id) ")" }
                            }
                            @for (role, title) in roles {
                                " " span.role data-role=(role) { (title) }
                            }
                            form.inline method="post" action="/logout" {
                                (csrf_field(caller))
                                button.link type="submit" #logout { (t("console-layout-sign-out")) }
                            }
                        }
                    }
                    (lang::switch_links(lang))
                }
                main { (content) }
                footer.muted { (t("console-layout-times")) }
            }
        }
    }
}

/// Each role with its title for people: the organisation's role list, else the title a
/// workflow gives it, else the id.
pub(crate) fn role_titles(state: &AppState, roles: &[String]) -> Vec<(String, String)> {
    let list = state.engine.role_list();
    let defs: Vec<_> = state
        .engine
        .workflows()
        .iter()
        .filter_map(|id| state.engine.definition_of(id))
        .collect();
    roles
        .iter()
        .map(|role| {
            let title = list
                .as_deref()
                .and_then(|l| l.title(role))
                .map(str::to_string)
                .or_else(|| {
                    defs.iter()
                        .map(|d| d.workflow.role_title(role))
                        .find(|t| *t != role)
                        .map(str::to_string)
                })
                .unwrap_or_else(|| role.clone());
            (role.clone(), title)
        })
        .collect()
}

/// A time as the desk reads it: Beijing time, to the minute.
pub(crate) fn local(at: DateTime<Utc>) -> String {
    at.with_timezone(&crate::audit::chain::default_offset())
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

/// A time to the second, for histories.
pub(crate) fn local_seconds(at: DateTime<Utc>) -> String {
    at.with_timezone(&crate::audit::chain::default_offset())
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// A time in the time zone of a workflow's calendar, to the minute.
pub(crate) fn local_in(def: &Definition, at: DateTime<Utc>) -> String {
    def.calendar.local(at).format("%Y-%m-%d %H:%M").to_string()
}

/// The working time left before `due` on the workflow's calendar (`还剩 1 个工作日 3 小时`),
/// or how far past it (`已逾期 2 小时`). A time the calendar cannot count (a year without
/// holiday data) is counted in plain hours.
pub(crate) fn working_left(
    lang: Lang,
    def: &Definition,
    due: DateTime<Utc>,
    now: DateTime<Utc>,
) -> String {
    let calendar = &def.calendar;
    let (minutes, per_day, working) = match calendar.working_minutes_between(now, due) {
        Ok(minutes) => (minutes, calendar.working_minutes_per_day().max(1), true),
        Err(_) => ((due - now).num_minutes(), 24 * 60, false),
    };
    let span = |minutes: i64| {
        let days = minutes / per_day;
        let rest = minutes % per_day;
        let (hours, mins) = (rest / 60, rest % 60);
        let mut parts = Vec::new();
        if days > 0 && working {
            parts.push(lang.count("console-time-working-days", days, &[]));
        } else if days > 0 {
            parts.push(lang.count("console-time-days", days, &[]));
        }
        if hours > 0 {
            parts.push(lang.count("console-time-hours", hours, &[]));
        }
        if days == 0 && (mins > 0 || hours == 0) {
            parts.push(lang.count("console-time-minutes", mins.max(1), &[]));
        }
        parts.join(" ")
    };
    let counted = |id: &str, minutes: i64| {
        let span = span(minutes);
        let id = match (id, working) {
            ("left", true) => "console-time-left-working",
            ("left", false) => "console-time-left",
            (_, true) => "console-time-overdue-by-working",
            _ => "console-time-overdue-by",
        };
        lang.text_with(id, &[("span", &span)])
    };
    if due <= now && minutes == 0 {
        lang.text("console-time-overdue")
    } else if due <= now {
        counted("overdue", -minutes)
    } else if minutes == 0 {
        lang.text("console-time-no-working-time-left")
    } else {
        counted("left", minutes)
    }
}

/// A state's title as written in the YAML, or its id.
pub(crate) fn state_title(def: &Definition, state: &str) -> String {
    def.workflow
        .states
        .get(state)
        .and_then(|s| s.title.clone())
        .unwrap_or_else(|| state.to_string())
}

/// A role's title (`秩序维护部`), or its id.
pub(crate) fn role_title(def: &Definition, role: &str) -> String {
    def.workflow
        .roles
        .get(role)
        .map(|r| r.title.clone())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| role.to_string())
}

/// The first 12 hex digits of a version hash: enough to tell versions apart on a page.
pub(crate) fn short_hash(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// A problem from an engine error that is not the caller's fault, logged once here.
pub(crate) fn internal(state: &AppState, caller: &Caller, err: impl std::fmt::Display) -> Response {
    tracing::error!(actor = ?caller.user.id, error = ?err.to_string(), "console page failed");
    error_page(state, caller, &Problem::internal(err.to_string()))
}

/// Whether the caller reads ids beside titles and the rules as written: an auditor.
pub(crate) fn shows_ids(caller: &Caller) -> bool {
    caller.user.has_role(audit::AUDITOR)
}
