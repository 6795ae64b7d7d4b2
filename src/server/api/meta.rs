//! The server itself: health, metrics, the caller, the definitions' diagnostics and reloads.

use super::{Body, Writer, require_role};
use crate::diagnostic::Diagnostic;
use crate::server::AppState;
use crate::server::auth::Caller;
use crate::server::problem::Problem;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use chrono::SecondsFormat;
use serde_json::{Value, json};

/// What the body is: OpenMetrics text (counters typed as counters, `# EOF` at the end), which
/// Prometheus asks for and parses as such; labelled as the older 0.0.4 text, a parser would
/// lose the counter types.
const METRICS_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `GET /api/health`: no credentials, so that load balancers and probes can ask.
pub async fn health(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "workflows": state.engine.workflows().len(),
        "time": state.engine.now().to_rfc3339_opts(SecondsFormat::Millis, true),
    }))
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, METRICS_TYPE)],
        state.metrics.encode(),
    )
}

/// `GET /api/me`: who the server thinks the caller is, and so what they may do.
pub async fn me(caller: Caller) -> Json<Value> {
    Json(json!({
        "id": caller.user.id,
        "name": caller.user.name,
        "roles": caller.user.roles,
    }))
}

/// `GET /api/validation`: the diagnostics of the definitions in force (a reload with errors
/// does not replace them; its diagnostics are in `last_reload`).
pub async fn validation(State(state): State<AppState>, _caller: Caller) -> Json<Value> {
    let report = state.engine.load_report();
    Json(json!({
        "ok": !report.has_errors(),
        "errors": report.errors(),
        "warnings": report.warnings(),
        "diagnostics": report.diagnostics.iter().map(Diagnostic::to_json).collect::<Vec<_>>(),
        "last_reload": state.reloads.last(),
    }))
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
    Writer(caller): Writer,
    Body(ReloadBody {}): Body<ReloadBody>,
) -> Result<Json<Value>, Problem> {
    require_role(&caller, "process_owner")?;
    tracing::info!(actor = ?caller.user.id, "reload asked");
    let attempt = state.reload_now().await;
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
        _ => Ok(Json(body)),
    }
}
