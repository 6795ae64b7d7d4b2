//! Errors as RFC 9457 problem details (`application/problem+json`), each with a stable `code`
//! that clients match on; the `detail` is for people.

use crate::engine::EngineError;
use crate::machine::Refusal;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// The media type of a problem response.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A problem response.
#[derive(Debug, Clone)]
pub struct Problem {
    pub status: StatusCode,
    /// Stable, machine-readable (`role_not_allowed`, `unauthenticated`, `bad_json`...).
    pub code: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// What happened in this case and what to do next.
    pub detail: String,
    /// More members (a refusal's `refused: true`, a reload's diagnostics...).
    pub extra: Map<String, Value>,
}

impl Problem {
    pub fn new(
        status: StatusCode,
        code: impl Into<String>,
        title: impl Into<String>,
        detail: impl Into<String>,
    ) -> Problem {
        Problem {
            status,
            code: code.into(),
            title: title.into(),
            detail: detail.into(),
            extra: Map::new(),
        }
    }

    /// With `message`: what the person reads, in their language, beside the engine's English
    /// `detail`.
    pub fn explained(self, message: Option<String>) -> Problem {
        match message {
            Some(message) => self.with("message", Value::String(message)),
            None => self,
        }
    }

    /// What a person reads: the `message` in their language where there is one, else the
    /// `detail`.
    pub fn message(&self) -> &str {
        match self.extra.get("message") {
            Some(Value::String(message)) => message,
            _ => &self.detail,
        }
    }

    pub fn with(mut self, key: &str, value: Value) -> Problem {
        self.extra.insert(key.to_string(), value);
        self
    }

    /// 401: no credentials, or credentials that match nobody.
    pub fn unauthenticated(detail: impl Into<String>) -> Problem {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "Authentication required",
            detail,
        )
    }

    /// 403: a known user who may not do this.
    pub fn forbidden(code: &str, detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::FORBIDDEN, code, "Not allowed", detail)
    }

    /// 400: the request itself is malformed.
    pub fn bad_request(code: &str, detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, code, "Bad request", detail)
    }

    /// 404.
    pub fn not_found(code: &str, detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, code, "Not found", detail)
    }

    /// 408: the body did not arrive in time.
    pub fn body_timeout(limit: std::time::Duration) -> Problem {
        Problem::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            "Request timeout",
            format!(
                "the request's body did not arrive within {} s",
                limit.as_secs_f64()
            ),
        )
    }

    /// 500, with a detail that does not leak internals beyond the error's own message.
    pub fn internal(detail: impl Into<String>) -> Problem {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            detail,
        )
    }

    /// The body as JSON.
    pub fn body(&self) -> Value {
        let mut body = json!({
            "type": format!("/api/problems#{}", self.code),
            "title": self.title,
            "status": self.status.as_u16(),
            "detail": self.detail,
            "code": self.code,
        });
        if let Value::Object(map) = &mut body {
            for (key, value) in &self.extra {
                map.insert(key.clone(), value.clone());
            }
        }
        body
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.body().to_string()).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if self.extra.contains_key("message") {
            // The message is in the language the request asked for: a cache must not serve
            // it to a request that asks for another.
            response.headers_mut().insert(
                header::VARY,
                HeaderValue::from_static("accept-language, cookie"),
            );
        }
        response
    }
}

/// The status of a refusal: 403 when it is about who is asking, 422 when the payload is
/// wrong, 409 when the instance is not in a state that allows the step.
pub fn refusal_status(refusal: &Refusal) -> StatusCode {
    match refusal {
        Refusal::ReservedRole
        | Refusal::RoleNotAllowed { .. }
        | Refusal::NotYourTurn { .. }
        | Refusal::AlreadySigned { .. }
        | Refusal::FourEyes { .. }
        | Refusal::SystemOnly { .. } => StatusCode::FORBIDDEN,
        Refusal::MissingField { .. }
        | Refusal::CommentRequired { .. }
        | Refusal::UnknownField { .. }
        | Refusal::FieldNotWritable { .. }
        | Refusal::FieldFixed { .. }
        | Refusal::TooLong { .. }
        | Refusal::IllTyped { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        // Someone who may not act on another person's instance may not read it either: to
        // them it does not exist.
        Refusal::NotAParty { .. } => StatusCode::NOT_FOUND,
        _ => StatusCode::CONFLICT,
    }
}

impl From<EngineError> for Problem {
    fn from(err: EngineError) -> Problem {
        let code = err.code();
        let detail = err.to_string();
        match &err {
            EngineError::Refused(refusal) => {
                Problem::new(refusal_status(refusal), code, "Refused", detail)
                    .with("refused", Value::Bool(true))
            }
            EngineError::UnknownInstance { id } => Problem::not_found(
                code,
                format!("no instance `{id}`; GET /api/instances lists the instances"),
            ),
            EngineError::UnknownWorkflow { .. } => Problem::not_found(code, detail),
            EngineError::BadInstanceId { .. } => Problem::bad_request(code, detail),
            EngineError::NotAnObject { .. } => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                code,
                "Not an object",
                detail,
            ),
            EngineError::PayloadTooLarge { .. } => Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                code,
                "Payload too large",
                detail,
            ),
            EngineError::KeyReused { .. } => {
                Problem::new(StatusCode::CONFLICT, code, "Idempotency key reused", detail)
            }
            EngineError::Closed => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                code,
                "Shutting down",
                detail,
            ),
            _ => Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                code,
                "Internal error",
                detail,
            ),
        }
    }
}
