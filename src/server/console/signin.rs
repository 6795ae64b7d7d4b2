//! Signing in and out of the console: a user id and password checked against the users
//! file, then a session cookie (`HttpOnly`, `SameSite=Strict`, so scripts cannot read it and
//! other sites cannot send it).

use super::{CLEAR_COOKIE, Form, Loopback, Page, csrf_refusal, html_response, layout};
use crate::server::AppState;
use crate::server::auth::{self, SESSION_COOKIE, User};
use crate::server::problem::Problem;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use std::sync::Arc;

#[derive(Debug, serde::Deserialize)]
pub struct Next {
    next: Option<String>,
}

/// Where to go after signing in: a path on this site only, so that the sign-in page cannot
/// be used to send someone elsewhere.
fn safe_next(next: Option<&str>) -> &str {
    next.filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.contains('\\'))
        .unwrap_or("/")
}

/// `GET /login`.
pub async fn form(
    State(state): State<AppState>,
    Loopback(loopback): Loopback,
    Query(next): Query<Next>,
    parts: Parts,
) -> Response {
    // Someone already signed in goes straight on.
    if let Some(cookie) = auth::cookie(&parts, SESSION_COOKIE)
        && state.sessions.get(cookie).is_some()
    {
        return Redirect::to(safe_next(next.next.as_deref())).into_response();
    }
    page(
        &state,
        loopback,
        next.next.as_deref(),
        "",
        None,
        StatusCode::OK,
    )
}

/// `POST /login`.
pub async fn sign_in(
    State(state): State<AppState>,
    Loopback(loopback): Loopback,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    let id = form.text("user").unwrap_or_default().to_string();
    let password = form.get("password").unwrap_or_default().to_string();
    let next = form.get("next").map(str::to_string);
    let users = state.users();
    // Argon2 is slow on purpose: it runs off the async threads.
    let found: Option<Arc<User>> = {
        let id = id.clone();
        tokio::task::spawn_blocking(move || users.sign_in(&id, &password).cloned())
            .await
            .unwrap_or(None)
    };
    let Some(user) = found else {
        state.metrics.auth_failed("bad_password");
        tracing::warn!(user = %id, "console sign-in refused: unknown user or wrong password");
        return page(
            &state,
            loopback,
            next.as_deref(),
            &id,
            Some("用户名或密码不正确。Wrong user id or password."),
            StatusCode::UNAUTHORIZED,
        );
    };
    if user.demo && !loopback {
        state.metrics.auth_failed("demo_remote");
        tracing::warn!(user = %id, "console sign-in refused: demo user from another machine");
        return page(
            &state,
            loopback,
            next.as_deref(),
            &id,
            Some("演示账号只能在本机使用。Demo users can sign in only on this machine."),
            StatusCode::FORBIDDEN,
        );
    }
    let cookie = match state.sessions.open(&user.id) {
        Ok(cookie) => cookie,
        Err(err) => {
            tracing::error!("cannot open a session: {err}");
            return super::error_page(None, &Problem::internal(err));
        }
    };
    tracing::info!(user = %user.id, "console sign-in");
    let mut response = Redirect::to(safe_next(next.as_deref())).into_response();
    match HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={cookie}; HttpOnly; SameSite=Strict; Path=/"
    )) {
        Ok(value) => {
            response.headers_mut().insert(header::SET_COOKIE, value);
        }
        Err(err) => return super::error_page(None, &Problem::internal(err.to_string())),
    }
    response
}

/// `POST /logout`: ends the session here and in the browser.
pub async fn sign_out(
    State(state): State<AppState>,
    Page(caller): Page,
    parts: Parts,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    if let Some(refused) = csrf_refusal(&state, &caller, &form) {
        return refused;
    }
    if let Some(cookie) = auth::cookie(&parts, SESSION_COOKIE) {
        state.sessions.close(cookie);
    }
    let mut response = Redirect::to("/login").into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, HeaderValue::from_static(CLEAR_COOKIE));
    response
}

/// The sign-in page, with the demo users listed when they can be used from here.
fn page(
    state: &AppState,
    loopback: bool,
    next: Option<&str>,
    user: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let users = state.users();
    let demo: Vec<&Arc<User>> = if loopback {
        users.all().filter(|u| u.demo).collect()
    } else {
        Vec::new()
    };
    let next = safe_next(next);
    let body = html! {
        section.card.narrow {
            h1 { "登录 Sign in" }
            @if let Some(error) = error {
                div.banner.error #signin-error { (error) }
            }
            form.stack method="post" action="/login" {
                input type="hidden" name="next" value=(next);
                label for="user" { "用户名 User id" }
                input #user type="text" name="user" value=(user) autocomplete="username" required autofocus;
                label for="password" { "密码 Password" }
                input #password type="password" name="password" autocomplete="current-password" required;
                button.primary type="submit" #signin { "登录 Sign in" }
            }
        }
        @if !demo.is_empty() {
            (demo_users(&demo, next))
        }
    };
    html_response(status, layout(None, "登录", body))
}

/// The shipped demo users, one button each, so that a newcomer can try every role.
fn demo_users(demo: &[&Arc<User>], next: &str) -> Markup {
    html! {
        section.card #demo-users {
            h2 { "演示账号 Demo users" }
            p.muted {
                "仅限本机,密码均为 " code { "demo" } "。"
                " On this machine only; the password is " code { "demo" } "."
            }
            table {
                thead { tr { th { "用户" } th { "角色 Roles" } th {} } }
                tbody {
                    @for user in demo {
                        tr data-user=(user.id) {
                            td { strong { (user.id) } @if user.name != user.id { " " span.muted { (user.name) } } }
                            td { @for role in &user.roles { span.role { (role) } " " } }
                            td {
                                form.inline method="post" action="/login" {
                                    input type="hidden" name="user" value=(user.id);
                                    input type="hidden" name="password" value="demo";
                                    input type="hidden" name="next" value=(next);
                                    button type="submit" { "以此身份登录" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
