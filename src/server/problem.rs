//! Errors as RFC 9457 problem details (`application/problem+json`), each with a stable `code`
//! that clients match on; the `detail` is for people.

use crate::engine::EngineError;
use crate::machine::Refusal;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value};

/// The media type of a problem response.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Where a problem type is described: its `type` is this followed by its code, a URI the
/// server itself answers (RFC 9457 asks that a type URI, when dereferenced, say what the
/// problem means), relative to the server so that it holds behind any host name.
pub const TYPE_BASE: &str = "/api/problems/";

/// Every problem code the server answers with, and what it means. A problem whose code is
/// not listed has the type `about:blank` (no meaning beyond its status), never a dead link.
pub const TYPES: &[(&str, &str)] = &[
    // The engine's refusals: nothing was written.
    (
        "finished",
        "The instance has finished: no event can be fired on it.",
    ),
    (
        "stale",
        "The instance moved on since it was read: `expected_seq` no longer matches. Read it again.",
    ),
    ("unknown_event", "The current state has no such event."),
    (
        "system_only",
        "Only the engine fires this event (a timer or `await_children`).",
    ),
    (
        "reserved_role",
        "The `system` role is the engine's; no person acts in it.",
    ),
    (
        "role_not_allowed",
        "None of the caller's roles may fire this event or start this workflow.",
    ),
    (
        "not_your_turn",
        "The approval waits for another signer first.",
    ),
    (
        "already_signed",
        "The caller has already signed this approval.",
    ),
    (
        "guard_failed",
        "A guard of the event does not hold on the instance's data.",
    ),
    (
        "guard_error",
        "A guard could not be evaluated on the instance's data.",
    ),
    (
        "script_failed",
        "An action or deadline script failed on the instance's data.",
    ),
    (
        "missing_field",
        "A field the step requires is missing from the payload.",
    ),
    (
        "comment_required",
        "The event needs a comment (a rejection's reason, for example).",
    ),
    (
        "unknown_field",
        "The payload names a field the workflow does not declare.",
    ),
    (
        "field_not_writable",
        "The payload sets a field this event may not write.",
    ),
    (
        "field_fixed",
        "The payload changes a field that is fixed once set.",
    ),
    ("too_long", "A value is longer than its field allows."),
    ("not_a_party", "The caller is not a party to this instance."),
    (
        "ill_typed",
        "A value does not have its field's declared type.",
    ),
    (
        "four_eyes",
        "The same person may not do both steps (separation of duties).",
    ),
    (
        "unknown_state",
        "The instance is in a state its version does not have.",
    ),
    ("timer_not_pending", "The timer is no longer pending."),
    (
        "calendar",
        "The business calendar cannot compute the deadline.",
    ),
    // The engine's other errors.
    ("unknown_workflow", "No workflow with this id is in force."),
    (
        "unknown_instance",
        "No instance with this id that the caller may read.",
    ),
    (
        "bad_instance_id",
        "The instance id is malformed (a control character, for example).",
    ),
    (
        "bad_key",
        "A key or filter (named in `field`) has a control character (a NUL, a line break...).",
    ),
    ("not_an_object", "The data or payload is not a JSON object."),
    (
        "payload_too_large",
        "The data or payload is larger than the engine accepts.",
    ),
    (
        "key_reused",
        "The Idempotency-Key was used before for a different command.",
    ),
    (
        "cascade_too_long",
        "The command would cause more follow-up steps than one commit takes (a loop of children in the workflows, for a process owner to fix); nothing was written.",
    ),
    ("definition", "A definition version could not be loaded."),
    ("store_locked", "Another process holds the store."),
    ("store", "The store could not be read or written."),
    ("catalog", "The definitions could not be loaded."),
    ("closed", "The server is shutting down."),
    (
        "real_clock",
        "The engine runs on the system clock, which cannot be moved.",
    ),
    // The server's.
    (
        "unauthenticated",
        "No credentials, or credentials that match nobody.",
    ),
    (
        "missing_role",
        "The caller lacks the role the route needs (named in `role`).",
    ),
    (
        "bad_csrf",
        "A console session must send its CSRF token to change anything.",
    ),
    (
        "demo_user_proxied",
        "Demo users may sign in only from this machine, not through a proxy.",
    ),
    (
        "demo_user_remote",
        "Demo users may sign in only from this machine.",
    ),
    ("bad_json", "The body is not valid JSON."),
    (
        "bad_body",
        "The body does not have the shape the route takes (see the OpenAPI document).",
    ),
    (
        "bad_query",
        "The query string does not have the shape the route takes.",
    ),
    ("bad_path", "A path segment is malformed."),
    (
        "bad_key",
        "A notice's or dead letter's key is malformed, or too many were sent at once.",
    ),
    (
        "bad_idempotency_key",
        "The Idempotency-Key header must be 1 to 200 visible ASCII characters.",
    ),
    (
        "unsupported_media_type",
        "A body must be sent as `application/json`.",
    ),
    (
        "body_too_large",
        "The body is larger than the server accepts.",
    ),
    ("body_timeout", "The body did not arrive in time."),
    ("uri_too_long", "The request's URI is too long."),
    ("headers_too_large", "The request's headers are too large."),
    (
        "too_many_connections",
        "The server or this address has too many connections open.",
    ),
    ("no_route", "Nothing is served at this path."),
    (
        "too_many_streams",
        "The caller (or the server) has as many event streams open as it allows; close one first.",
    ),
    (
        "bad_event_id",
        "Last-Event-ID is not an event id the server sent (a feed position).",
    ),
    (
        "method_not_allowed",
        "The path is served, but not with this method (see Allow).",
    ),
    ("no_such_state", "The workflow has no state with this id."),
    (
        "unknown_version",
        "No definition version with this hash in the store.",
    ),
    (
        "ambiguous_version",
        "The version prefix names more than one stored version of the workflow: give more digits.",
    ),
    (
        "bad_mapping",
        "A migration's mapping names a state or field the target version does not have, or a final state.",
    ),
    (
        "not_process_owner",
        "Only a process owner migrates instances.",
    ),
    ("unknown_problem", "No problem type with this code."),
    (
        "definitions_invalid",
        "The definition files have errors; the versions in force stay.",
    ),
    ("reload_failed", "The definition files could not be read."),
    (
        "internal",
        "The server failed; the request may be tried again.",
    ),
];

/// What a problem type means, as `GET /api/problems/{code}` answers.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ProblemType {
    /// The `code` of the problems of this type.
    pub code: String,
    /// The type URI, as problems of this type carry it.
    #[serde(rename = "type")]
    pub type_uri: String,
    /// What the code means: when the server answers with it, and what a client can do.
    pub description: String,
}

impl ProblemType {
    /// The type with this code, if the server has it.
    pub fn of(code: &str) -> Option<ProblemType> {
        TYPES
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(c, description)| ProblemType {
                code: c.to_string(),
                type_uri: format!("{TYPE_BASE}{c}"),
                description: description.to_string(),
            })
    }
}

/// A problem as sent (RFC 9457), with the server's stable `code`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(rename = "Problem")]
pub struct ProblemBody {
    /// A URI naming the kind of problem: `/api/problems/{code}`, which describes it, or
    /// `about:blank`.
    #[serde(rename = "type")]
    pub type_uri: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What happened in this case and what to do next.
    pub detail: String,
    /// Stable and machine-readable: what clients match on. `GET /api/problems` lists them.
    pub code: String,
    /// More members: `refused: true` when the engine refused a command (nothing was written),
    /// a reload's `diagnostics`, the `role` a route needs...
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A problem response.
#[derive(Debug, Clone)]
pub struct Problem {
    /// The HTTP status it is answered with: 4xx for what the client can change, 5xx for the
    /// server's own failures.
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
    /// A problem with no extra members; the constructors below name the common ones.
    pub(crate) fn new(
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

    /// With one more member beside the standard ones, such as the `role` a route needs:
    /// what a client can act on without parsing `detail`.
    pub(crate) fn with(mut self, key: &str, value: Value) -> Problem {
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
        serde_json::to_value(self.document()).unwrap_or(Value::Null)
    }

    /// The body as sent.
    pub fn document(&self) -> ProblemBody {
        let type_uri = match ProblemType::of(&self.code) {
            Some(known) => known.type_uri,
            None => "about:blank".to_string(),
        };
        let mut extra = self.extra.clone();
        for member in ["type", "title", "status", "detail", "code"] {
            extra.remove(member);
        }
        ProblemBody {
            type_uri,
            title: self.title.clone(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.clone(),
            extra,
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.body().to_string()).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if self.extra.contains_key("message") || self.extra.contains_key("diagnostics") {
            // The message (and a reload's findings) is in the language the request asked
            // for: a cache must not serve it to a request that asks for another.
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
            EngineError::BadKey { field, .. } => {
                Problem::bad_request(code, detail).with("field", Value::String(field.to_string()))
            }
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
            EngineError::NotProcessOwner { .. } => Problem::forbidden(code, detail),
            EngineError::UnknownVersion { .. } => Problem::not_found(code, detail),
            EngineError::AmbiguousVersion { .. } => Problem::bad_request(code, detail),
            EngineError::BadMapping { .. } => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                code,
                "Bad mapping",
                detail,
            ),
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
