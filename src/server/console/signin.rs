//! Signing in and out of the console: a user id and password checked against the users
//! file, then a session cookie (`HttpOnly`, `SameSite=Strict`, so scripts cannot read it and
//! other sites cannot send it).
//!
//! Signing in is where an anonymous client can make the server work hardest (an Argon2 check
//! each time), so every attempt is checked, cheapest first, before any password is:
//!
//! 1. it comes from the sign-in page of this site: no cross-site `Sec-Fetch-Site` or foreign
//!    `Origin` (403 `login_cross_site`), and the form's token matches the cookie its page set
//!    ([`LoginForms`](crate::server::auth::LoginForms); 403 `login_expired` with a new form);
//! 2. the user name and the client address are within their attempts
//!    ([`SignInThrottle`](crate::server::throttle::SignInThrottle); 429 `signin_throttled`
//!    with `Retry-After`);
//! 3. a password-checking thread is free or the short queue has room
//!    ([`Passwords`](crate::server::passwords::Passwords); 429 `signin_busy` with
//!    `Retry-After: 1`: a flood is the clients' doing, not a server failure to page about);
//!
//! and only then is the password checked. Where to go afterwards (`next`) is a path on this
//! site or nothing ([`safe_next`]). Every refusal is shown on the page, in the language the
//! request asks for.

use super::{
    CLEAR_COOKIE, Form, Loopback, Page, csrf_refusal, html_response, stranger_error,
    stranger_layout,
};
use crate::i18n::Lang;
use crate::server::AppState;
use crate::server::auth::{self, LOGIN_COOKIE, LOGIN_FORM_LIFE, SESSION_COOKIE, User};
use crate::server::problem::Problem;
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

/// The longest `next` kept; a longer one is dropped.
const MAX_NEXT: usize = 2048;

/// Where to go after signing in: a path on this site only, so that the sign-in page cannot be
/// used to send someone elsewhere. It must be ASCII (the console percent-encodes the paths
/// it sends here), begin with one `/` (not `//` or `/\`, which browsers take as another
/// host), have no backslash, no whitespace and no control character, neither as given nor
/// once percent-decoded (browsers drop tabs and newlines from a URL, so `/\t/evil.example`
/// would become `//evil.example`), and be a valid URI path; otherwise `/`.
pub fn safe_next(next: Option<&str>) -> &str {
    next.filter(|n| n.len() <= MAX_NEXT && n.is_ascii() && plain_path(n))
        .filter(|n| plain_path(&percent_decoded(n)))
        .filter(|n| n.parse::<axum::http::uri::PathAndQuery>().is_ok())
        .unwrap_or("/")
}

/// One leading `/`, and no backslash, whitespace or control character anywhere.
fn plain_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.starts_with("//")
        && !path
            .chars()
            .any(|c| c == '\\' || c.is_whitespace() || c.is_control())
}

/// `%XX` sequences decoded (bytes that are not UTF-8 kept as replacement characters).
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                let value = hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0);
                out.push(u8::try_from(value).unwrap_or(b'?'));
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `GET /login`: the form, with a fresh token and the cookie it is bound to.
pub async fn form(
    State(state): State<AppState>,
    Loopback(local): Loopback,
    Query(next): Query<Next>,
    parts: Parts,
) -> Response {
    // Someone already signed in goes straight on.
    if let Some(cookie) = auth::cookie(&parts, SESSION_COOKIE)
        && matches!(state.sessions.get(cookie).await, Ok(Some(_)))
    {
        return Redirect::to(safe_next(next.next.as_deref())).into_response();
    }
    page(
        &state,
        auth::request_lang(&parts),
        local,
        next.next.as_deref(),
        "",
        None,
        StatusCode::OK,
    )
}

/// Why a sign-in was turned away before its password was checked.
struct Refused {
    status: StatusCode,
    /// Counted in `sopflow_auth_failures_total`.
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
}

/// `POST /login`.
pub async fn sign_in(
    State(state): State<AppState>,
    Loopback(local): Loopback,
    parts: Parts,
    form: Form,
) -> Response {
    let id = form.text("user").unwrap_or_default().to_string();
    let password = form.get("password").unwrap_or_default().to_string();
    let next = form.get("next").map(str::to_string);
    let lang = auth::request_lang(&parts);
    let t = |id: &str| lang.text(id);
    let refused = |refused: Refused| {
        state.metrics.auth_failed(refused.code);
        let mut response = page(
            &state,
            lang,
            local,
            next.as_deref(),
            &id,
            Some(&refused.message),
            refused.status,
        );
        if let Some(seconds) = refused.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, crate::server::retry_after(seconds));
        }
        response
    };
    if let Some(why) = cross_site(&parts) {
        tracing::warn!(user = ?id, why, "console sign-in refused: not from this site's form");
        return refused(Refused {
            status: StatusCode::FORBIDDEN,
            code: "login_cross_site",
            message: t("console-signin-cross-site"),
            retry_after: None,
        });
    }
    let token_ok = auth::cookie(&parts, LOGIN_COOKIE).is_some_and(|cookie| {
        state
            .login_forms
            .valid(cookie, form.get("_login").unwrap_or(""))
    });
    if !token_ok {
        tracing::info!(user = ?id, "console sign-in refused: the form's token is missing or stale");
        return refused(Refused {
            status: StatusCode::FORBIDDEN,
            code: "login_expired",
            message: t("console-signin-expired"),
            retry_after: None,
        });
    }
    if let Err(throttled) = state.throttle.attempt(&id, auth::peer(&parts)) {
        // Counted, not logged one by one: a flood would fill the log.
        tracing::debug!(user = ?id, "console sign-in throttled");
        let seconds = throttled.seconds();
        return refused(Refused {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "signin_throttled",
            message: lang.count(
                "console-signin-throttled",
                i64::try_from(seconds).unwrap_or(i64::MAX),
                &[],
            ),
            retry_after: Some(seconds),
        });
    }
    let users = state.users();
    let (user, hash) = users.credentials(&id);
    let user: Option<Arc<User>> = user.cloned();
    let checked = state.passwords.check(password, hash.to_string()).await;
    let matches = match checked {
        Ok(matches) => matches,
        Err(_busy) => {
            tracing::debug!(user = ?id, "console sign-in turned away: every password check busy");
            return refused(Refused {
                status: StatusCode::TOO_MANY_REQUESTS,
                code: "signin_busy",
                message: t("console-signin-busy"),
                retry_after: Some(1),
            });
        }
    };
    let Some(user) = user.filter(|_| matches) else {
        tracing::warn!(user = ?id, "console sign-in refused: unknown user or wrong password");
        return refused(Refused {
            status: StatusCode::UNAUTHORIZED,
            code: "bad_password",
            message: t("console-signin-bad-password"),
            retry_after: None,
        });
    };
    if user.demo && !local {
        let proxied = auth::proxied(&parts);
        tracing::warn!(user = ?id, proxied, "console sign-in refused: demo user from another machine");
        return refused(Refused {
            status: StatusCode::FORBIDDEN,
            code: "demo_remote",
            message: t("console-signin-demo-remote"),
            retry_after: None,
        });
    }
    let target = safe_next(next.as_deref()).to_string();
    let cookie = match state.sessions.open(&user.id).await {
        Ok(cookie) => cookie,
        Err(err) => {
            tracing::error!(error = %err, "cannot open a session");
            return stranger_error(lang, &Problem::internal(err.to_string()));
        }
    };
    tracing::info!(user = ?user.id, "console sign-in");
    let mut response = Redirect::to(&target).into_response();
    match HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={cookie}; HttpOnly; SameSite=Strict; Path=/"
    )) {
        Ok(value) => {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
        Err(err) => return stranger_error(lang, &Problem::internal(err.to_string())),
    }
    response.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_static(CLEAR_LOGIN_COOKIE),
    );
    response
}

/// Ends the sign-in form's cookie.
const CLEAR_LOGIN_COOKIE: &str =
    "sopflow_login=; HttpOnly; SameSite=Strict; Path=/login; Max-Age=0";

/// Why a sign-in is not from this site's own page, if it is not: a browser says where a form
/// was posted from (`Sec-Fetch-Site`, `Origin`). Programs that send neither are checked by the
/// form's token alone.
fn cross_site(parts: &Parts) -> Option<&'static str> {
    if let Some(site) = parts.headers.get("sec-fetch-site") {
        // `none`: the user typed or bookmarked it; a form posted by another site is not.
        if site.as_bytes() != b"same-origin" && site.as_bytes() != b"none" {
            return Some("sec-fetch-site");
        }
    }
    if let Some(origin) = parts.headers.get(header::ORIGIN) {
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let origin_host = origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://"))
            .map(|(_, rest)| rest);
        if origin_host.is_none_or(|o| !o.eq_ignore_ascii_case(host)) {
            return Some("origin");
        }
    }
    None
}

/// `POST /logout`: ends the session here and in the browser.
pub async fn sign_out(
    State(state): State<AppState>,
    Page(caller): Page,
    parts: Parts,
    form: Form,
) -> Response {
    if let Some(refused) = csrf_refusal(&state, &caller, &form) {
        return refused;
    }
    if let Some(cookie) = auth::cookie(&parts, SESSION_COOKIE)
        && let Err(err) = state.sessions.close(cookie).await
    {
        tracing::error!(error = %err, "cannot end a session");
        return stranger_error(
            auth::request_lang(&parts),
            &Problem::internal(err.to_string()),
        );
    }
    let mut response = Redirect::to("/login").into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, HeaderValue::from_static(CLEAR_COOKIE));
    response
}

/// The sign-in page, with a fresh form token (and its cookie), and the demo users listed when
/// they can be used from here.
fn page(
    state: &AppState,
    lang: Lang,
    local: bool,
    next: Option<&str>,
    user: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let (cookie, token) = match state.login_forms.issue() {
        Ok(issued) => issued,
        Err(err) => {
            tracing::error!(error = ?err, "cannot make a sign-in form");
            return stranger_error(lang, &Problem::internal(err));
        }
    };
    let users = state.users();
    let demo: Vec<&Arc<User>> = if local {
        users.all().filter(|u| u.demo).collect()
    } else {
        Vec::new()
    };
    let next = safe_next(next);
    let t = |id: &str| lang.text(id);
    let body = html! {
        section.card.narrow {
            h1 { (t("console-signin-heading")) }
            @if let Some(error) = error {
                div.banner.error #signin-error { (error) }
            }
            form.stack method="post" action="/login" {
                input type="hidden" name="next" value=(next);
                input type="hidden" name="_login" value=(token);
                label for="user" { (t("console-signin-user")) }
                input #user type="text" name="user" value=(user) autocomplete="username" required autofocus;
                label for="password" { (t("console-signin-password")) }
                input #password type="password" name="password" autocomplete="current-password" required;
                button.primary type="submit" #signin { (t("console-signin-submit")) }
            }
        }
        @if !demo.is_empty() {
            (demo_users(state, lang, &demo, next, &token))
        }
    };
    let mut response = html_response(
        status,
        stranger_layout(lang, &t("console-signin-title"), body),
    );
    let set = format!(
        "{LOGIN_COOKIE}={cookie}; HttpOnly; SameSite=Strict; Path=/login; Max-Age={}",
        LOGIN_FORM_LIFE.as_secs()
    );
    if let Ok(value) = HeaderValue::from_str(&set) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// The shipped demo users, one button each, so that a newcomer can try every role.
fn demo_users(
    state: &AppState,
    lang: Lang,
    demo: &[&Arc<User>],
    next: &str,
    token: &str,
) -> Markup {
    let t = |id: &str| lang.text(id);
    html! {
        section.card #demo-users {
            h2 { (t("console-signin-demo-heading")) }
            p.muted { (t("console-signin-demo-note")) " " code { "demo" } }
            table {
                thead { tr { th { (t("console-signin-demo-user")) } th { (t("console-signin-demo-roles")) } th {} } }
                tbody {
                    @for user in demo {
                        tr data-user=(user.id) {
                            td { strong { (user.id) } @if user.name != user.id { " " span.muted { (user.name) } } }
                            td { @for (role, title) in super::role_titles(state, &user.roles) { span.role data-role=(role) { (title) } " " } }
                            td {
                                form.inline method="post" action="/login" {
                                    input type="hidden" name="user" value=(user.id);
                                    input type="hidden" name="password" value="demo";
                                    input type="hidden" name="next" value=(next);
                                    input type="hidden" name="_login" value=(token);
                                    button type="submit" { (t("console-signin-demo-as")) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_on_this_site_are_followed_after_signing_in() {
        for good in [
            "/",
            "/instances/hot_work_permit-1",
            "/instances?workflow=a&b=c",
            "/a%2Cb",
        ] {
            assert_eq!(safe_next(Some(good)), good);
        }
        for bad in [
            "//evil.example/",
            "/\\evil.example/",
            "/\t/evil.example/",
            "/%09/evil.example/",
            "/\n/evil.example",
            "/%0A/x",
            "/%5Cevil.example",
            "/ /evil.example",
            "/\u{3000}/evil.example",
            "https://evil.example/",
            "evil.example",
            "",
            "/\u{7f}",
            "/\u{202e}/evil",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_next(Some(&format!("/{}", "a".repeat(MAX_NEXT)))), "/");
        assert_eq!(safe_next(None), "/");
    }
}
