//! The language switch (`GET /language?to=en&back=/instances/...`): sets the language cookie
//! ([`LANG_COOKIE`], a year, readable by this site's pages only) and goes back to the page the
//! switch was clicked on. The way back is a path on this site or nothing
//! ([`safe_next`](super::signin::safe_next)): the switch cannot send anyone elsewhere.

use super::signin::safe_next;
use super::stranger_error;
use crate::i18n::Lang;
use crate::server::auth::{self, LANG_COOKIE};
use crate::server::problem::Problem;
use axum::extract::Query;
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};

/// How long the choice is kept: a year, in seconds.
const KEPT: u64 = 365 * 24 * 60 * 60;

/// The switch's query.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Switch {
    #[serde(default)]
    to: String,
    back: Option<String>,
}

/// `GET /language`: the cookie, then a 303 back to `back` (or the referring page of this
/// site, else `/`).
pub async fn switch(Query(switch): Query<Switch>, parts: Parts) -> Response {
    let Some(lang) = Lang::parse(&switch.to) else {
        let lang = auth::request_lang(&parts);
        return stranger_error(
            lang,
            &Problem::bad_request("unknown_language", "`to` must be `zh` or `en`")
                .explained(Some(lang.text("console-error-unknown-language"))),
        );
    };
    let back = match switch.back.as_deref() {
        Some(back) => safe_next(Some(back)).to_string(),
        None => safe_next(referring_path(&parts).as_deref()).to_string(),
    };
    let mut response = Redirect::to(&back).into_response();
    let cookie = format!(
        "{LANG_COOKIE}={}; Path=/; Max-Age={KEPT}; SameSite=Lax; HttpOnly",
        short(lang)
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// The cookie's value for a language.
fn short(lang: Lang) -> &'static str {
    match lang {
        Lang::Zh => "zh",
        Lang::En => "en",
    }
}

/// The path of the page the switch was clicked on, when the browser says so and it is a page
/// of this host.
fn referring_path(parts: &Parts) -> Option<String> {
    let referer = parts.headers.get(header::REFERER)?.to_str().ok()?;
    let host = parts.headers.get(header::HOST)?.to_str().ok()?;
    let (_, rest) = referer.split_once("://")?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    (authority.eq_ignore_ascii_case(host) && path.starts_with('/')).then(|| path.to_string())
}

/// The switch in the top bar: the other language as a link, this one marked.
pub(super) fn switch_links(lang: Lang) -> Markup {
    html! {
        nav.lang #lang-switch aria-label=(lang.text("console-layout-language")) {
            @for other in Lang::ALL {
                @if other == lang {
                    span.current lang=(other.tag()) aria-current="true" { (name(other)) }
                } @else {
                    a href={ "/language?to=" (short(other)) } lang=(other.tag()) hreflang=(other.tag()) data-lang=(short(other)) { (name(other)) }
                }
                " "
            }
        }
    }
}

/// A language's own name, the same in every language.
fn name(lang: Lang) -> &'static str {
    match lang {
        Lang::Zh => "中文",
        Lang::En => "English",
    }
}
