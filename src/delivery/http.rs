//! What the HTTP channels share: one client with the limits every receiver gets, and how an
//! answer becomes delivered, try again, or give up.

use super::Failure;
use reqwest::{Client, Response, StatusCode, Url};
use std::time::Duration;

/// The most of a receiver's answer that is read: enough for a robot's `{"errcode": ...}` or an
/// error page's first lines, and a hostile receiver cannot make the server buffer more.
const MAX_ANSWER: usize = 64 * 1024;

/// A client for one channel: the channel's timeout for the whole exchange, no redirects
/// (a redirect could carry the signed body, or a robot's key in the URL, somewhere else), and
/// no proxy from the environment unless the operator's environment names one.
pub(super) fn client(timeout: Duration) -> Result<Client, String> {
    Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("sopflow/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|err| format!("cannot make an HTTP client: {err}"))
}

/// Whether `url` may be sent to: `https`, or `http` to this machine only (a receiver on the
/// loopback interface, a local relay). Anything else would put a signed body or a robot's key
/// on the network in the clear.
pub(super) fn check_url(url: &Url) -> Result<(), String> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        "http" => Err(format!(
            "{} is plain HTTP to another machine; use https:// (plain http:// is allowed to this machine only)",
            redact(url)
        )),
        other => Err(format!(
            "{}: a channel's URL is https:// (or http:// to this machine), not {other}://",
            redact(url)
        )),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// `url` without its query and credentials, for messages and logs: a robot's key is in its
/// query string.
pub(super) fn redact(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    let _ = shown.set_password(None);
    let _ = shown.set_username("");
    shown.to_string()
}

/// Reads at most [`MAX_ANSWER`] bytes of the answer's body.
pub(super) async fn read_answer(mut response: Response) -> Result<Vec<u8>, Failure> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|err| Failure::retry(format!("the answer broke off: {}", without_url(&err))))?
    {
        let room = MAX_ANSWER - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() == MAX_ANSWER {
            break;
        }
    }
    Ok(body)
}

/// What an answer's status means: `Ok` for 2xx, otherwise a [`Failure`] that says whether to
/// try again (408, 425, 429, 5xx: yes, after `Retry-After` if given; other codes: no).
pub(super) fn judge_status(response: &Response) -> Result<(), Failure> {
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let reason = format!("the receiver answered {status}");
    let retryable = status.is_server_error()
        || matches!(
            status,
            StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_EARLY | StatusCode::TOO_MANY_REQUESTS
        );
    if retryable {
        Err(Failure::Retry {
            reason,
            after: retry_after(response),
        })
    } else {
        Err(Failure::permanent(reason))
    }
}

/// `Retry-After` in seconds (the HTTP-date form is rare from webhooks and is ignored).
fn retry_after(response: &Response) -> Option<Duration> {
    let value = response.headers().get(reqwest::header::RETRY_AFTER)?;
    let seconds: u64 = value.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds))
}

/// A failure to reach the receiver at all: always worth another try (it may be restarting).
pub(super) fn unreachable(err: &reqwest::Error) -> Failure {
    let what = if err.is_timeout() {
        "no answer in time"
    } else if err.is_connect() {
        "cannot connect"
    } else {
        "the request failed"
    };
    Failure::retry(format!("{what}: {}", without_url(err)))
}

/// reqwest's error text without the URL it names (a robot's key is in its query string).
fn without_url(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    if let Some(url) = err.url() {
        text = text.replace(url.as_str(), &redact(url));
    }
    // The error's own source chain says what the network said.
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}
