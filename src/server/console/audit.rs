//! The auditor's page (`GET /audit`, role `auditor` only): verifying the store
//! (`POST /audit/verify`) and downloading the approval steps as CSV
//! (`GET /audit/export.csv`, the rows of `sopflow audit export`, with a BOM so that Excel
//! reads the Chinese as UTF-8).
//!
//! Both read the whole log, so they run off the async threads; the export is streamed to the
//! browser in chunks as the rows are made, so memory does not grow with the store.

use super::flash::{self, Flash};
use super::{
    Form, Page, csrf_field, csrf_refusal, error_page, html_response, internal, layout, local,
    role_titles,
};
use crate::audit::export::{CsvRows, ExportQuery, parse_bound};
use crate::audit::verify::{Problem as Break, Summary};
use crate::i18n::Lang;
use crate::server::AppState;
use crate::server::auth::Caller;
use crate::server::problem::Problem;
use crate::server::stream;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use std::io::Write;
use std::sync::Arc;

/// The role that may use this page.
pub const AUDITOR: &str = "auditor";

/// How many problems a verification lists on the page (all are counted).
const SHOWN_PROBLEMS: usize = 200;

/// The refusal of someone without the auditor role (`None` for an auditor).
fn not_auditor(state: &AppState, caller: &Caller) -> Option<Response> {
    if caller.user.has_role(AUDITOR) {
        return None;
    }
    let lang = caller.lang;
    let titles: Vec<String> = role_titles(state, &caller.user.roles)
        .into_iter()
        .map(|(_, title)| title)
        .collect();
    let held = if titles.is_empty() {
        lang.text("refusal-role_not_allowed-nobody")
    } else {
        lang.list(&titles)
    };
    let auditor = role_titles(state, &[AUDITOR.to_string()])
        .into_iter()
        .map(|(_, title)| title)
        .next()
        .unwrap_or_else(|| AUDITOR.to_string());
    let problem = Problem::forbidden(
        "not_auditor",
        format!(
            "the audit pages are for the `{AUDITOR}` role; `{}` has {}",
            caller.user.id,
            if caller.user.roles.is_empty() {
                "no roles".to_string()
            } else {
                caller.user.roles.join(", ")
            }
        ),
    )
    .explained(Some(lang.text_with(
        "console-audit-not-auditor",
        &[("auditor", &auditor), ("held", &held)],
    )));
    Some(error_page(state, caller, &problem))
}

/// The result a verification left for the page (`?flash=`).
#[derive(Debug, Default, serde::Deserialize)]
pub struct Flashed {
    flash: Option<String>,
}

/// `GET /audit`, with the last verification's result when `flash` names it.
pub async fn page(
    State(state): State<AppState>,
    Page(caller): Page,
    Query(flashed): Query<Flashed>,
) -> Response {
    if let Some(refused) = not_auditor(&state, &caller) {
        return refused;
    }
    let verified = flashed
        .flash
        .as_deref()
        .and_then(|token| state.flashes.get(&caller, token))
        .and_then(|flash| match flash {
            Flash::Verified(verified) => Some(verified),
            _ => None,
        });
    html_response(
        StatusCode::OK,
        layout(
            &state,
            &caller,
            &caller.lang.text("console-audit-title"),
            content(&state, &caller, verified.as_deref()),
        ),
    )
}

/// What a verification found.
pub struct Verified {
    summary: Summary,
    problems: Vec<Break>,
}

/// `POST /audit/verify`: verifies the store, then shows the result on `GET /audit`.
pub async fn verify(State(state): State<AppState>, Page(caller): Page, form: Form) -> Response {
    if let Some(refused) = not_auditor(&state, &caller) {
        return refused;
    }
    if let Some(refused) = csrf_refusal(&state, &caller, &form) {
        return refused;
    }
    let engine = state.engine.clone();
    let as_of = engine.now();
    let result = tokio::task::spawn_blocking(move || {
        let mut problems = Vec::new();
        let summary = engine.verify_store(
            as_of,
            &mut |problem| {
                if problems.len() < SHOWN_PROBLEMS {
                    problems.push(problem);
                }
            },
            &mut |_| {},
        )?;
        Ok::<_, crate::engine::EngineError>(Verified { summary, problems })
    })
    .await;
    let verified = match result {
        Ok(Ok(verified)) => verified,
        Ok(Err(err)) => return internal(&state, &caller, err),
        Err(err) => return internal(&state, &caller, err),
    };
    tracing::info!(
        actor = ?caller.user.id,
        entries = verified.summary.entries,
        problems = verified.summary.problems,
        "store verified from the console"
    );
    let token = state
        .flashes
        .put(&caller, Flash::Verified(Arc::new(verified)));
    Redirect::to(&flash::with_token("/audit", token)).into_response()
}

fn content(state: &AppState, caller: &Caller, verified: Option<&Verified>) -> Markup {
    let workflows = state.engine.workflows();
    let lang = caller.lang;
    let t = |id: &str| lang.text(id);
    html! {
        section.card {
            h1 { (t("console-audit-heading")) }
            p.muted { (t("console-audit-read-only")) }
        }
        div.columns {
            section.card #verify {
                h2 { (t("console-audit-verify-heading")) }
                p { (t("console-audit-verify-note")) }
                form method="post" action="/audit/verify" {
                    (csrf_field(caller))
                    button.primary type="submit" #verify-button { (t("console-audit-verify-submit")) }
                }
                @if let Some(verified) = verified { (summary(lang, verified)) }
            }
            section.card #export {
                h2 { (t("console-audit-export-heading")) }
                p { (t("console-audit-export-note")) " " code { "sopflow audit export" } }
                form.stack method="get" action="/audit/export.csv" {
                    label for="export-workflow" { (t("console-search-workflow")) }
                    select #export-workflow name="workflow" {
                        option value="" { (t("console-search-any")) }
                        @for id in &workflows {
                            @let title = state.engine.definition_of(id).map(|d| d.workflow.title.clone()).unwrap_or_default();
                            option value=(id) { (title) " (" (id) ")" }
                        }
                    }
                    label for="export-from" { (t("console-audit-export-from")) }
                    input #export-from type="date" name="from";
                    label for="export-to" { (t("console-audit-export-to")) }
                    input #export-to type="date" name="to";
                    button type="submit" { (t("console-audit-export-submit")) }
                }
            }
        }
    }
}

fn summary(lang: Lang, verified: &Verified) -> Markup {
    let t = |id: &str| lang.text(id);
    let s = &verified.summary;
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    html! {
        div #verify-result data-problems=(s.problems) {
            @if s.is_clean() {
                div.banner.ok { strong { (t("console-audit-intact")) } }
            } @else {
                div.banner.error { strong { (lang.count("console-audit-problems", count(s.problems), &[])) } }
            }
            dl.facts {
                dt { (t("console-audit-instances")) } dd { (s.instances) }
                dt { (t("console-audit-entries")) } dd { (s.entries) }
                dt { (t("console-audit-definitions")) } dd { (s.definitions) }
                dt { (t("console-audit-digest")) } dd { code.wrap #digest { (s.digest.token()) } br; small.muted { (lang.text_with("console-audit-as-of", &[("time", &local(s.digest.as_of))])) } }
            }
            @if !verified.problems.is_empty() {
                table #problems {
                    thead { tr { th { (t("console-audit-code")) } th { (t("console-search-col-instance")) } th { "#" } th { (t("console-audit-detail")) } } }
                    tbody {
                        @for p in &verified.problems {
                            tr {
                                td { code { (p.code) } }
                                td { @if let Some(i) = &p.instance { a href={ "/instances/" (i) } { code { (i) } } } }
                                td { @if let Some(seq) = p.seq { (seq) } }
                                td { (p.detail) }
                            }
                        }
                    }
                }
                @if (s.problems as usize) > verified.problems.len() {
                    p.muted { (lang.count("console-audit-problems-shown", count(verified.problems.len() as u64), &[])) " " code { "sopflow audit verify" } }
                }
            }
        }
    }
}

/// The export's filters, as the form sends them; blanks mean no bound.
#[derive(Debug, Default, serde::Deserialize)]
pub struct ExportForm {
    #[serde(default)]
    workflow: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

impl ExportForm {
    fn query(&self) -> Result<ExportQuery, String> {
        let bound = |text: &str, end: bool| {
            Some(text.trim())
                .filter(|t| !t.is_empty())
                .map(|t| parse_bound(t, end))
                .transpose()
        };
        let query = ExportQuery {
            workflow: Some(self.workflow.trim().to_string()).filter(|w| !w.is_empty()),
            from: bound(&self.from, false).map_err(|e| format!("from: {e}"))?,
            to: bound(&self.to, true).map_err(|e| format!("to: {e}"))?,
            actor: None,
        };
        if let (Some(from), Some(to)) = (query.from, query.to)
            && from > to
        {
            return Err(format!(
                "`from` ({}) is after `to` ({}): nothing could match",
                self.from, self.to
            ));
        }
        Ok(query)
    }

    /// A file name from the filters, letters, digits and dashes only.
    fn file_name(&self) -> String {
        let clean = |s: &str| -> String {
            s.chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect()
        };
        let mut name = format!(
            "sopflow-audit-{}",
            Some(clean(&self.workflow))
                .filter(|w| !w.is_empty())
                .unwrap_or_else(|| "all".into())
        );
        for bound in [&self.from, &self.to] {
            let bound = clean(bound);
            if !bound.is_empty() {
                name.push('-');
                name.push_str(&bound);
            }
        }
        name + ".csv"
    }
}

/// `GET /audit/export.csv`.
pub async fn export(
    State(state): State<AppState>,
    Page(caller): Page,
    Query(form): Query<ExportForm>,
) -> Response {
    if let Some(refused) = not_auditor(&state, &caller) {
        return refused;
    }
    let query = match form.query() {
        Ok(query) => query,
        Err(detail) => {
            let problem = Problem::bad_request("bad_bound", detail.clone()).explained(Some(
                caller
                    .lang
                    .text_with("console-audit-bad-bound", &[("detail", &detail)]),
            ));
            return error_page(&state, &caller, &problem);
        }
    };
    let (mut out, body) = stream::body();
    let engine = state.engine.clone();
    let actor = caller.user.id.clone();
    tokio::task::spawn_blocking(move || {
        let written = (|| -> std::io::Result<u64> {
            out.write_all("\u{feff}".as_bytes())?;
            let mut rows = CsvRows::new(&mut out)?;
            let summary = engine
                .export(&query, &mut |_| {}, &mut |row| rows.write(&row))
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            rows.finish()?.flush()?;
            Ok(summary.rows)
        })();
        match written {
            Ok(rows) => {
                tracing::info!(actor = ?actor, rows, "approval steps exported from the console")
            }
            Err(err) => {
                tracing::info!(actor = ?actor, error = ?err.to_string(), "console export stopped");
                out.fail(err);
            }
        }
    });
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(value) =
        HeaderValue::from_str(&format!("attachment; filename=\"{}\"", form.file_name()))
    {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}
