//! Extractors that answer a malformed request with a [`Problem`] instead of axum's plain-text
//! rejections, so that clients can always match on a `code`.

use crate::server::AppState;
use crate::server::auth::Caller;
use crate::server::problem::Problem;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;

/// The header a console session sends its CSRF token in when it calls the API.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A JSON request body. An empty body reads as `{}`, so that optional envelopes can be left
/// out; a non-empty one must be declared as JSON (415 `unsupported_media_type`), be valid
/// JSON (400 `bad_json`), have the envelope's shape with no unknown member (422 `bad_body`),
/// fit in [`MAX_BODY_BYTES`](crate::server::MAX_BODY_BYTES) (413 `body_too_large`) and arrive
/// within the body timeout (408 `body_timeout`).
#[derive(Debug, Clone)]
pub struct Body<T>(pub T);

/// A request's whole body, read within the server's body timeout (a client that sends a few
/// bytes and stops, or trickles them, is answered 408 and its connection closed).
pub async fn read_body(request: Request, state: &AppState) -> Result<Bytes, Problem> {
    let limit = state.limits.body_timeout;
    match tokio::time::timeout(limit, Bytes::from_request(request, state)).await {
        Ok(read) => read.map_err(unreadable),
        Err(_) => Err(Problem::body_timeout(limit)),
    }
}

impl<T: DeserializeOwned> FromRequest<AppState> for Body<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &AppState) -> Result<Body<T>, Problem> {
        let declared_json = is_json(request.headers());
        let bytes = read_body(request, state).await?;
        let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else if declared_json {
            &bytes
        } else {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Unsupported media type",
                "the body must be JSON, sent with `Content-Type: application/json`",
            ));
        };
        // serde reads a struct from a JSON array too (`[null, null]`); the document says a
        // body is an object, so anything else is refused before it is read.
        let first = text.iter().find(|b| !b.is_ascii_whitespace());
        if first.is_some_and(|b| *b != b'{')
            && serde_json::from_slice::<serde::de::IgnoredAny>(text).is_ok()
        {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "bad_body",
                "Unexpected body",
                "the body must be a JSON object; the shapes are at /api/openapi.json",
            ));
        }
        Json::<T>::from_bytes(text)
            .map(|Json(value)| Body(value))
            .map_err(malformed)
    }
}

/// Whether the request says its body is JSON (`application/json`, or `application/*+json`).
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|sub| sub.ends_with("+json"))
}

fn unreadable(rejection: BytesRejection) -> Problem {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "Body too large",
            format!(
                "the body is larger than the limit of {} bytes",
                crate::server::MAX_BODY_BYTES
            ),
        )
    } else {
        Problem::bad_request(
            "bad_body",
            format!("the body could not be read: {}", rejection.body_text()),
        )
    }
}

fn malformed(rejection: JsonRejection) -> Problem {
    match rejection {
        JsonRejection::JsonDataError(e) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_body",
            "Unexpected body",
            format!("{}; the shapes are at /api/openapi.json", e.body_text()),
        ),
        other => Problem::bad_request("bad_json", other.body_text()),
    }
}

/// The query string, read into `T` (400 `bad_query`).
#[derive(Debug, Clone)]
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Params<T>, Problem> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| Params(value))
            .map_err(|e| Problem::bad_request("bad_query", e.body_text()))
    }
}

/// The path's parameters, read into `T` (400 `bad_path`, for example a segment that is not
/// valid UTF-8 once decoded).
#[derive(Debug, Clone)]
pub struct Segments<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Segments<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Segments<T>, Problem> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(Segments(value)),
            // Only a route declared without the parameters its handler reads: our bug.
            Err(e) if e.status().is_server_error() => Err(Problem::internal(e.body_text())),
            Err(e) => Err(Problem::bad_request("bad_path", e.body_text())),
        }
    }
}

/// The caller of a request that changes something. A console session (a cookie, which a
/// browser sends along even on a request another site makes it send) must also prove it
/// comes from the console's own pages with its CSRF token in [`CSRF_HEADER`]; a bearer
/// token cannot be sent by another site, so it needs nothing more.
#[derive(Debug, Clone)]
pub struct Writer(pub Caller);

impl FromRequestParts<AppState> for Writer {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Writer, Problem> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if caller.csrf().is_some() {
            let sent = parts.headers.get(CSRF_HEADER).map(|v| v.as_bytes());
            if !sent.is_some_and(|sent| caller.csrf_matches(sent)) {
                return Err(state.refuse_auth(
                    parts,
                    "csrf",
                    Problem::forbidden(
                        "bad_csrf",
                        format!(
                            "a console session must send its CSRF token in the {CSRF_HEADER} header to change anything; programs use a bearer token"
                        ),
                    ),
                ));
            }
        }
        Ok(Writer(caller))
    }
}

/// A query parameter sent empty (`state=`, as an HTML form sends a blank field) reads as
/// left out: the filter is not applied. The document says the same (`minLength` is not set,
/// and the description of each filter says so), so "" never means "the empty id".
pub fn empty_as_none<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let text: Option<String> = serde::Deserialize::deserialize(deserializer)?;
    match text.as_deref() {
        None | Some("") => Ok(None),
        Some(text) => text.parse().map(Some).map_err(serde::de::Error::custom),
    }
}

/// A whole number in a JSON body, written `7` or `7.0`: JSON Schema counts both as integers
/// (a number with no fractional part), and so do clients that keep every number as a float.
/// `7.5`, negative numbers and numbers past `u64` are refused.
pub fn whole_number<'de, D>(deserializer: D) -> Result<Option<u64>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let number: Option<serde_json::Number> = serde::Deserialize::deserialize(deserializer)?;
    let Some(number) = number else {
        return Ok(None);
    };
    if let Some(whole) = number.as_u64() {
        return Ok(Some(whole));
    }
    match number.as_f64() {
        // 2^64 as f64: every whole float below it converts exactly.
        Some(float)
            if float.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&float) =>
        {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Ok(Some(float as u64))
        }
        _ => Err(serde::de::Error::custom(format!(
            "`{number}` is not a whole number from 0"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn json_media_types_are_recognised() {
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
            is_json(&headers)
        };
        assert!(with("application/json"));
        assert!(with("Application/JSON; charset=utf-8"));
        assert!(with("application/merge-patch+json"));
        assert!(!with("text/plain"));
        assert!(!with("application/x-www-form-urlencoded"));
        assert!(!is_json(&HeaderMap::new()));
    }
}
