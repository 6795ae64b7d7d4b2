//! The auditor's questions over HTTP: verify the store, export the approval steps. Both read
//! the whole log, so they run on the blocking pool, never on the async threads; the export
//! is streamed to the client as it is made, so memory does not grow with the store.

use super::{Body, Params, Writer, require_role};
use crate::audit::export::{CsvRows, ExportError, ExportQuery, JsonRows, parse_bound};
use crate::audit::verify::{Digest, Problem, Summary};
use crate::engine::{Engine, EngineError};
use crate::server::AppState;
use crate::server::auth::Caller;
use crate::server::problem::Problem as ApiProblem;
use crate::server::stream::{self, ChunkWriter};
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::io::Write;

/// The role the audit routes need.
const AUDITOR: &str = "auditor";

/// The body of `POST /api/audit/verify`; it may be empty.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyBody {
    /// Compute the digest as of this time (RFC 3339); default now.
    #[serde(default)]
    #[schemars(with = "Option<chrono::DateTime<chrono::Utc>>")]
    pub as_of: Option<String>,
    /// A digest written down earlier (`TIME:HEX`, as `digest_token` gives it): check that the
    /// store still has exactly the entries it covered.
    #[serde(default)]
    #[schemars(regex(pattern = r"^\S+:[0-9a-fA-F]{64}$"))]
    pub digest: Option<String>,
}

/// `POST /api/audit/verify`: the JSON of `sopflow audit verify --format json`. A broken store
/// is an answer (200, `clean: false`), not an error.
pub async fn verify(
    State(state): State<AppState>,
    Writer(caller): Writer,
    Body(body): Body<VerifyBody>,
) -> Result<Json<Verification>, ApiProblem> {
    require_role(&caller, AUDITOR)?;
    let invalid = |detail: String| {
        ApiProblem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_body",
            "Unexpected body",
            detail,
        )
    };
    let expected = body
        .digest
        .as_deref()
        .map(Digest::parse_token)
        .transpose()
        .map_err(invalid)?;
    let as_of = match (&expected, &body.as_of) {
        (Some((time, _)), _) => *time,
        (None, Some(text)) => DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| {
                invalid(format!(
                    "as_of `{text}`: {e}; give an RFC 3339 time such as 2026-11-29T08:00:00+08:00"
                ))
            })?,
        (None, None) => state.engine.now(),
    };
    let engine = state.engine.clone();
    let (summary, problems) = tokio::task::spawn_blocking(move || {
        let mut problems = Vec::new();
        let summary = engine.verify_store(as_of, &mut |p| problems.push(p), &mut |_| {});
        summary.map(|s| (s, problems))
    })
    .await
    .map_err(|_| ApiProblem::from(EngineError::Closed))??;
    tracing::info!(actor = ?caller.user.id, problems = summary.problems, "store verified");
    let check = expected.map(|(_, hash)| DigestCheck {
        matches: hash == summary.digest.hash,
        expected: hash,
    });
    Ok(Json(Verification {
        clean: summary.is_clean() && check.as_ref().is_none_or(|c| c.matches),
        digest_token: summary.digest.token(),
        summary,
        digest_check: check,
        problems,
    }))
}

/// The answer of `POST /api/audit/verify`: the JSON of `sopflow audit verify --format json`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Verification {
    /// No problem found, and the digest (if one was given) matches.
    pub clean: bool,
    pub summary: Summary,
    /// `TIME:HEX`; give it back as `digest` to check that nothing made by then changed.
    pub digest_token: String,
    /// The digest given, checked; absent when none was.
    pub digest_check: Option<DigestCheck>,
    pub problems: Vec<Problem>,
}

/// A digest written down earlier, against the store now.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DigestCheck {
    pub expected: String,
    pub matches: bool,
}

/// How an export is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// A header, then one line per step (the default).
    #[default]
    Csv,
    /// One JSON array, one row per line.
    Json,
}

/// The query of `GET /api/audit/export`: the filters of `sopflow audit export`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportParams {
    /// `csv` (default) or `json`.
    #[serde(default)]
    pub format: Option<ExportFormat>,
    /// Only this workflow. Empty: as if left out.
    #[serde(default, deserialize_with = "super::extract::empty_as_none")]
    pub workflow: Option<String>,
    /// From this date (`2026-11-01`, a whole day in UTC+8) or RFC 3339 time, inclusive.
    /// Empty: as if left out.
    #[serde(default, deserialize_with = "super::extract::empty_as_none")]
    #[schemars(schema_with = "date_or_time")]
    pub from: Option<String>,
    /// Up to this date (the whole day) or time, inclusive. Empty: as if left out.
    #[serde(default, deserialize_with = "super::extract::empty_as_none")]
    #[schemars(schema_with = "date_or_time")]
    pub to: Option<String>,
    /// Only steps by this actor. Empty: as if left out.
    #[serde(default, deserialize_with = "super::extract::empty_as_none")]
    pub actor: Option<String>,
}

/// A bound of an export: a date, an RFC 3339 time, or empty (no bound).
fn date_or_time(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "anyOf": [
            {"type": "string", "format": "date"},
            {"type": "string", "format": "date-time"},
            {"type": "string", "maxLength": 0},
        ],
    })
}

impl ExportParams {
    fn query(&self) -> Result<ExportQuery, ApiProblem> {
        let bound = |name: &str, text: &Option<String>, end: bool| {
            text.as_deref()
                .map(|t| {
                    parse_bound(t, end)
                        .map_err(|e| ApiProblem::bad_request("bad_query", format!("{name}: {e}")))
                })
                .transpose()
        };
        let query = ExportQuery {
            workflow: self.workflow.clone(),
            from: bound("from", &self.from, false)?,
            to: bound("to", &self.to, true)?,
            actor: self.actor.clone(),
        };
        // `from` after `to` is an empty range: it matches nothing, like any range without
        // steps in it, rather than an error the document could not describe.
        Ok(query)
    }
}

/// `GET /api/audit/export`: the rows of `sopflow audit export`, streamed. The status is sent
/// before the first row, so a store that fails to read part-way ends the response early
/// (the client sees a truncated body, and the failure is logged).
pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
    Params(params): Params<ExportParams>,
) -> Result<Response, ApiProblem> {
    require_role(&caller, AUDITOR)?;
    let query = params.query()?;
    let format = params.format.unwrap_or_default();
    let (mut out, body) = stream::body();
    let engine = state.engine.clone();
    let actor = caller.user.id.clone();
    tokio::task::spawn_blocking(
        move || match write_export(&engine, &query, format, &mut out) {
            Ok(rows) => tracing::info!(actor = ?actor, rows, "audit export"),
            Err(Stopped::Client(message)) => {
                tracing::info!(actor = ?actor, error = ?message, "audit export stopped: the client went away");
                out.fail(std::io::Error::other(message));
            }
            Err(Stopped::Store(message)) => {
                tracing::error!(actor = ?actor, error = ?message, "audit export stopped: the store failed");
                out.fail(std::io::Error::other(message));
            }
        },
    );
    let (media, name) = match format {
        ExportFormat::Csv => ("text/csv; charset=utf-8", "sopflow-export.csv"),
        ExportFormat::Json => ("application/json", "sopflow-export.json"),
    };
    Ok((
        [
            (header::CONTENT_TYPE, media.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response())
}

/// Why an export stopped part-way.
enum Stopped {
    /// The response could not be written: the client went away.
    Client(String),
    /// The store could not be read: the server's failure.
    Store(String),
}

/// Runs the export into `out`; the number of rows, or why it stopped.
fn write_export(
    engine: &Engine,
    query: &ExportQuery,
    format: ExportFormat,
    out: &mut ChunkWriter,
) -> Result<u64, Stopped> {
    let written = |e: std::io::Error| Stopped::Client(format!("cannot send the export: {e}"));
    let summary = match format {
        ExportFormat::Csv => {
            let mut rows = CsvRows::new(out).map_err(written)?;
            let summary = engine.export(query, &mut |_| {}, &mut |row| rows.write(&row));
            rows.finish().and_then(|out| out.flush()).map_err(written)?;
            summary
        }
        ExportFormat::Json => {
            let mut rows = JsonRows::new(out).map_err(written)?;
            let summary = engine.export(query, &mut |_| {}, &mut |row| rows.write(&row));
            rows.finish().map_err(written)?;
            summary
        }
    };
    match summary {
        Ok(summary) => Ok(summary.rows),
        Err(ExportError::Store(e)) => Err(Stopped::Store(e.to_string())),
        Err(ExportError::Sink(e)) => Err(written(e)),
    }
}
