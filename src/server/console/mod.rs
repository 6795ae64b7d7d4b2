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
mod signin;
mod text;
mod workflow;

use super::AppState;
use super::auth::{self, Caller, SESSION_COOKIE};
use super::problem::Problem;
use crate::catalog::Definition;
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

pub fn routes() -> Router<AppState> {
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
        .route("/audit", get(audit::page))
        .route("/audit/verify", post(audit::verify))
        .route("/audit/export.csv", get(audit::export))
        .route("/console.css", get(style))
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
            Err(problem) => Err(error_page(None, &problem)),
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
        match crate::server::api::read_body(request, state).await {
            Ok(body) => Ok(Form::parse(&body)),
            Err(problem) => Err(error_page(None, &problem)),
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
    Some(error_page(
        Some(caller),
        &Problem::forbidden(
            "csrf",
            "表单已失效:请刷新页面后重试。The form's security token does not match this session; reload the page and try again.",
        ),
    ))
}

/// The hidden CSRF field every form that changes something carries.
pub(crate) fn csrf_field(caller: &Caller) -> Markup {
    html! { input type="hidden" name="_csrf" value=(caller.csrf().unwrap_or_default()); }
}

/// An HTML answer with the console's headers: no caching of pages that show personal tasks,
/// no framing, no scripts at all.
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
    response
}

/// A page for a problem: its status, code and detail, in the console's frame.
pub(crate) fn error_page(caller: Option<&Caller>, problem: &Problem) -> Response {
    let heading = match problem.status {
        StatusCode::NOT_FOUND => "找不到 Not found",
        StatusCode::FORBIDDEN => "不允许 Not allowed",
        StatusCode::UNAUTHORIZED => "请先登录 Sign in first",
        s if s.is_client_error() => "请求有误 Bad request",
        _ => "出错了 Something went wrong",
    };
    let body = html! {
        div.banner.error #problem data-code=(problem.code) {
            strong { (heading) }
            " " code { (problem.code) }
            p { (problem.detail) }
        }
        p { a href="/" { "返回待办 Back to my tasks" } }
    };
    html_response(problem.status, layout(caller, heading, body))
}

/// The frame of every page: the top bar (who I am, where I can go) and the content.
pub(crate) fn layout(caller: Option<&Caller>, title: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · sopflow" }
                link rel="stylesheet" href="/console.css";
                link rel="icon" href="data:,";
            }
            body {
                header.topbar {
                    a.brand href="/" { "sopflow" span.muted { " 流程台" } }
                    @if let Some(caller) = caller {
                        nav {
                            a href="/" { "待办" }
                            a href="/instances" { "实例" }
                            a href="/workflows" { "流程" }
                            @if caller.user.has_role(audit::AUDITOR) {
                                a href="/audit" { "审计" }
                            }
                        }
                        div.who {
                            span.user #whoami { (caller.user.name) }
                            @if caller.user.name != caller.user.id {
                                " " span.muted { "(" (caller.user.id) ")" }
                            }
                            @for role in &caller.user.roles {
                                " " span.role { (role) }
                            }
                            form.inline method="post" action="/logout" {
                                (csrf_field(caller))
                                button.link type="submit" #logout { "退出 Sign out" }
                            }
                        }
                    }
                }
                main { (content) }
                footer.muted { "时间均为北京时间 (UTC+8) · Times are Beijing time (UTC+8)" }
            }
        }
    }
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
pub(crate) fn working_left(def: &Definition, due: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let calendar = &def.calendar;
    let (minutes, per_day, working) = match calendar.working_minutes_between(now, due) {
        Ok(minutes) => (minutes, calendar.working_minutes_per_day().max(1), true),
        Err(_) => ((due - now).num_minutes(), 24 * 60, false),
    };
    let span = |minutes: i64| {
        let days = minutes / per_day;
        let rest = minutes % per_day;
        let (hours, mins) = (rest / 60, rest % 60);
        let mut out = String::new();
        if days > 0 && working {
            out.push_str(&format!("{days} {}", text::WORKING_DAYS));
        } else if days > 0 {
            out.push_str(&format!("{days} {}", text::DAYS));
        }
        if hours > 0 {
            out.push_str(&format!(" {hours} {}", text::HOURS));
        }
        if days == 0 && (mins > 0 || hours == 0) {
            out.push_str(&format!(" {} {}", mins.max(1), text::MINUTES));
        }
        out.trim().to_string()
    };
    let suffix = if working { text::WORKING_TIME } else { "" };
    if due <= now && minutes == 0 {
        text::OVERDUE_BY.to_string()
    } else if due <= now {
        format!("{} {}{suffix}", text::OVERDUE_BY, span(-minutes))
    } else if minutes == 0 {
        text::NO_WORKING_TIME_LEFT.to_string()
    } else {
        format!("{} {}{suffix}", text::LEFT, span(minutes))
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
pub(crate) fn internal(caller: &Caller, err: impl std::fmt::Display) -> Response {
    tracing::error!(actor = ?caller.user.id, error = ?err.to_string(), "console page failed");
    error_page(Some(caller), &Problem::internal(err.to_string()))
}
