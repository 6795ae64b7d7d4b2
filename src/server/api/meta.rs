//! The server itself: health, metrics, the caller, the definitions' diagnostics and reloads.

use super::{Body, Segments, Writer, require_role};
use crate::diagnostic::DiagnosticJson;
use crate::i18n::Lang;
use crate::server::AppState;
use crate::server::auth::{Caller, asked_lang};
use crate::server::problem::{Problem, ProblemType};
use crate::server::reload::AttemptJson;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use chrono::SecondsFormat;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Value, json};

/// What the body is: OpenMetrics text (counters typed as counters, `# EOF` at the end), which
/// Prometheus asks for and parses as such; labelled as the older 0.0.4 text, a parser would
/// lose the counter types.
pub const METRICS_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The answer of `GET /api/health`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Health {
    /// Always `ok`: a server that answers is alive.
    #[schemars(schema_with = "ok")]
    pub status: &'static str,
    /// The server's version.
    pub version: &'static str,
    /// How many workflows can be started.
    pub workflows: usize,
    /// The server's clock (the engine's: a virtual one in tests).
    #[schemars(with = "chrono::DateTime<chrono::Utc>")]
    pub time: String,
}

fn ok(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "string", "enum": ["ok"]})
}

/// `GET /api/health`: no credentials, so that load balancers and probes can ask.
pub async fn health(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        workflows: state.engine.workflows().len(),
        time: state
            .engine
            .now()
            .to_rfc3339_opts(SecondsFormat::Millis, true),
    })
}

/// The Prometheus text format, for clients that do not ask for OpenMetrics.
pub const METRICS_TEXT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET /metrics`: OpenMetrics when the `Accept` header names it (Prometheus does), the
/// 0.0.4 text format otherwise, each labelled as what it is, so that every parser reads the
/// metric types right.
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> impl IntoResponse {
    let openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    if openmetrics {
        (
            [(header::CONTENT_TYPE, METRICS_TYPE)],
            state.metrics.encode(),
        )
    } else {
        (
            [(header::CONTENT_TYPE, METRICS_TEXT_TYPE)],
            state.metrics.encode_text(),
        )
    }
}

/// The answer of `GET /api/me`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Me {
    pub id: String,
    pub name: String,
    /// The roles the users file gives the caller.
    pub roles: Vec<String>,
}

/// `GET /api/me`: who the server thinks the caller is, and so what they may do.
pub async fn me(caller: Caller) -> Json<Me> {
    Json(Me {
        id: caller.user.id.clone(),
        name: caller.user.name.clone(),
        roles: caller.user.roles.clone(),
    })
}

/// The answer of `GET /api/validation`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Validation {
    /// The definitions in force have no error.
    pub ok: bool,
    pub errors: usize,
    pub warnings: usize,
    pub diagnostics: Vec<DiagnosticJson>,
    /// The last reload since the server started, if any.
    pub last_reload: Option<AttemptJson>,
}

/// The headers of an answer whose findings are in the language the request asked for: a
/// cache must not serve it to a request that asks for another.
const VARY_LANGUAGE: [(header::HeaderName, &str); 1] = [(header::VARY, "accept-language, cookie")];

/// `GET /api/validation`: the diagnostics of the definitions in force (a reload with errors
/// does not replace them; its diagnostics are in `last_reload`). Their messages and hints are
/// in English, or in the language the request asks for (the console's language cookie,
/// `Accept-Language`); their codes are the same in every language.
pub async fn validation(
    State(state): State<AppState>,
    _caller: Caller,
    headers: HeaderMap,
) -> impl IntoResponse {
    let lang = asked_lang(&headers).unwrap_or(Lang::En);
    let report = state.engine.load_report();
    let body = Validation {
        ok: !report.has_errors(),
        errors: report.errors(),
        warnings: report.warnings(),
        diagnostics: report.diagnostics.iter().map(|d| d.record(lang)).collect(),
        last_reload: state.reloads.last().map(|a| a.json(lang)),
    };
    (VARY_LANGUAGE, Json(body))
}

/// The body of `POST /api/reload`: nothing (or `{}`); refusing anything else keeps every POST
/// of the API to the same rules.
#[derive(Debug, Clone, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReloadBody {}

/// `POST /api/reload`: reads every definition again, as the file watcher would. The attempt
/// is answered with 200 when the new set is in force (or nothing changed); with a problem
/// when the files have errors (422: the versions in force stay) or cannot be read (500).
pub async fn reload(
    State(state): State<AppState>,
    headers: HeaderMap,
    Writer(caller): Writer,
    Body(ReloadBody {}): Body<ReloadBody>,
) -> Result<impl IntoResponse, Problem> {
    require_role(&caller, "process_owner")?;
    tracing::info!(actor = ?caller.user.id, "reload asked");
    let lang = asked_lang(&headers).unwrap_or(Lang::En);
    let attempt = state.reload_now().await.json(lang);
    let body = serde_json::to_value(&attempt).unwrap_or(Value::Null);
    match attempt.result {
        "rejected" => Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "definitions_invalid",
            "Definitions have errors",
            format!(
                "{} error(s) in the definition files; the versions in force stay until they are fixed",
                attempt.errors
            ),
        )
        .with("diagnostics", json!(attempt.diagnostics))
        .with("attempt", body)),
        "failed" => Err(Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "reload_failed",
            "Reload failed",
            attempt
                .message
                .clone()
                .unwrap_or_else(|| "the definition files could not be read".into()),
        )
        .with("attempt", body)),
        _ => Ok((VARY_LANGUAGE, Json(attempt))),
    }
}

/// `GET /api/problems`: every problem type the server answers with.
pub async fn problem_types() -> Json<Vec<ProblemType>> {
    Json(
        crate::server::problem::TYPES
            .iter()
            .filter_map(|(code, _)| ProblemType::of(code))
            .collect(),
    )
}

/// `GET /api/problems/{code}`: what a problem's `type` URI names.
pub async fn problem_type(Segments(code): Segments<String>) -> Result<Json<ProblemType>, Problem> {
    ProblemType::of(&code).map(Json).ok_or_else(|| {
        Problem::not_found(
            "unknown_problem",
            "no problem type with this code; GET /api/problems lists them",
        )
    })
}
