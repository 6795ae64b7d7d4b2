//! The process library as the desk sees it: `GET /workflows` (every workflow in force) and
//! `GET /workflows/{id}` (its diagram, manual reference, roles, fields, parameters, the
//! validation findings of its file, the versions stored, and its YAML).
//!
//! A rejected reload is shown first and loudly: the files on disk have errors, so what runs
//! is still the version named here, not what the process owner just saved.

use super::inbox::start_form;
use super::{Page, error_page, html_response, internal, layout, role_title, short_hash};
use crate::catalog::Definition;
use crate::diagnostic::{Diagnostic, display_path};
use crate::diagram::{SvgOptions, svg};
use crate::i18n::Lang;
use crate::machine::access::may_start;
use crate::server::AppState;
use crate::server::problem::Problem;
use crate::server::reload::Attempt;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, PreEscaped, html};
use std::sync::Arc;

/// `GET /workflows`.
pub async fn list(State(state): State<AppState>, Page(caller): Page) -> Response {
    let latest = state.engine.latest_versions();
    let defs: Vec<Arc<Definition>> = state
        .engine
        .workflows()
        .iter()
        .filter_map(|id| state.engine.definition_of(id))
        .collect();
    let lang = caller.lang;
    let t = |id: &str| lang.text(id);
    let body = html! {
        (reload_banner(&state, lang, None))
        section.card {
            h1 { (t("console-workflows-heading")) " " span.count { (defs.len()) } }
            table #workflows {
                thead { tr {
                    th { (t("console-inbox-col-workflow")) } th { (t("console-workflows-source")) } th { (t("console-workflows-states")) } th { (t("console-workflows-roles")) } th { (t("console-instance-version")) }
                } }
                tbody {
                    @for def in &defs {
                        tr data-workflow=(def.id()) {
                            td { a href={ "/workflows/" (def.id()) } { (def.workflow.title) } br; code.muted { (def.id()) } }
                            td { @if let Some(source) = &def.workflow.source {
                                (source.manual) @if let Some(section) = &source.section { br; small.muted { (section) } }
                            } }
                            td { (def.workflow.states.len()) }
                            td { @for (role, _) in def.workflow.roles.iter() {
                                span.role title=(role.as_str()) { (role_title(def, role.as_str())) } " "
                            } }
                            td { code { (latest.get(def.id()).map_or("", |h| short_hash(h))) } }
                        }
                    }
                }
            }
        }
    };
    html_response(
        StatusCode::OK,
        layout(&state, &caller, &t("console-workflows-title"), body),
    )
}

#[derive(Debug, serde::Deserialize)]
pub struct Version {
    version: Option<String>,
}

/// `GET /workflows/{id}`, or one stored version of it with `?version=`.
pub async fn page(
    State(state): State<AppState>,
    Page(caller): Page,
    Path(id): Path<String>,
    Query(version): Query<Version>,
) -> Response {
    let current = state.engine.latest_versions().get(&id).cloned();
    let wanted = version.version.filter(|v| !v.is_empty());
    let def = match wanted.as_deref() {
        Some(hash) => state.engine.definition(hash).ok().filter(|d| d.id() == id),
        None => state.engine.definition_of(&id),
    };
    let Some(def) = def else {
        let (detail, message) = match wanted {
            Some(hash) => (
                format!("workflow `{id}` has no stored version {hash}"),
                caller.lang.text("console-error-unknown-version"),
            ),
            None => (
                format!("there is no workflow `{id}` in force"),
                caller.lang.text("console-error-unknown-workflow"),
            ),
        };
        return error_page(
            &state,
            &caller,
            &Problem::not_found("unknown_workflow", detail).explained(Some(message)),
        );
    };
    let versions = match stored_versions(&state, &id).await {
        Ok(versions) => versions,
        Err(err) => return internal(&state, &caller, err),
    };
    let lang = caller.lang;
    let t = |id: &str| lang.text(id);
    let is_current = current.as_deref() == Some(def.hash.as_str());
    let report = state.engine.load_report();
    let diagnostics: Vec<&Diagnostic> = report
        .diagnostics
        .iter()
        .filter(|d| d.file == def.file)
        .collect();
    let drawing = svg(&def.workflow, &SvgOptions::default());
    let gate = if is_current {
        super::migration::gate_card(&state, &caller, &def).await
    } else {
        html! {}
    };
    let body = html! {
        (reload_banner(&state, lang, current.as_deref()))
        section.card.head {
            p.muted { a href="/workflows" { (t("console-layout-nav-workflows")) } " / " code { (def.id()) } }
            h1 { (def.workflow.title) }
            @if !is_current {
                div.banner.warn #old-version {
                    (lang.text_with("console-workflow-old-version", &[("version", short_hash(&def.hash))])) " "
                    a href={ "/workflows/" (def.id()) } { (t("console-workflow-current-link")) }
                }
            }
            @if let Some(description) = &def.workflow.description { p { (description) } }
            dl.facts {
                @if let Some(source) = &def.workflow.source {
                    dt { (t("console-workflow-manual")) } dd #source { (source.manual) }
                    @if let Some(section) = &source.section { dt { (t("console-workflow-section")) } dd { (section) } }
                    @if let Some(lines) = &source.lines { dt { (t("console-workflow-lines")) } dd { (lines) } }
                }
                dt { (t("console-workflow-file")) } dd { code { (def.file.display()) } }
                dt { (t("console-instance-version")) } dd { code title=(def.hash) { (short_hash(&def.hash)) } }
                dt { (t("console-workflow-calendar")) } dd { code { (def.calendar.id()) } }
            }
        }
        (gate)
        section.card.diagram #diagram {
            h2 { (t("console-instance-diagram")) }
            // Generated by `crate::diagram::svg`, which escapes its text itself.
            div.svg-wrap { (PreEscaped(drawing)) }
        }
        div.columns {
            (roles(lang, &def))
            @if is_current && may_start(&def.workflow, &caller.actor()) {
                section.card #start {
                    h2 { (t("console-start-heading")) }
                    (start_form(&caller, &def, "", &Default::default()))
                }
            }
        }
        (fields(lang, &def))
        (parameters(lang, &def))
        (findings(&state, lang, &def, &diagnostics))
        (version_list(lang, &def, &versions, current.as_deref()))
        section.card #yaml {
            h2 { (t("console-workflow-yaml")) }
            pre.source { code { (def.source) } }
            @for (name, text) in &def.rules {
                details { summary { (t("console-workflow-rules")) " " code { (name) } } pre.source { code { (text) } } }
            }
        }
    };
    html_response(
        StatusCode::OK,
        layout(&state, &caller, &def.workflow.title, body),
    )
}

/// Hashes (and files) of every stored version of a workflow. A scan of the definitions
/// tree: off the async threads.
async fn stored_versions(
    state: &AppState,
    id: &str,
) -> Result<Vec<(String, String)>, crate::engine::EngineError> {
    let engine = state.engine.clone();
    let id = id.to_string();
    tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        for record in engine.store().scan_definitions() {
            let record = record?;
            if let Ok(stored) = record.definition
                && stored.workflow == id
            {
                out.push((record.hash, stored.file));
            }
        }
        Ok(out)
    })
    .await
    .map_err(|_| crate::engine::EngineError::Closed)?
}

/// The last reload, when it was not put in force: what is wrong and what still runs.
fn reload_banner(state: &AppState, lang: Lang, current: Option<&str>) -> Markup {
    let Some(attempt) = rejected_reload(state) else {
        return html! {};
    };
    let t = |id: &str| lang.text(id);
    let errors = i64::try_from(attempt.errors).unwrap_or(i64::MAX);
    html! {
        div.banner.error #reload-rejected data-result=(attempt.result) {
            strong { (t("console-workflow-reload-rejected")) }
            p {
                @match current {
                    Some(hash) => { (lang.text_with("console-workflow-version-stays", &[("version", short_hash(hash))])) }
                    None => { (t("console-workflow-versions-stay")) }
                }
                " (" (super::local(attempt.at)) ", " (lang.count("console-workflow-errors", errors, &[])) ")"
            }
            @if let Some(message) = &attempt.message { p { (message) } }
            (diagnostic_list(lang, &errors_of(&attempt)))
        }
    }
}

fn errors_of(attempt: &Attempt) -> Vec<&Diagnostic> {
    attempt
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .collect()
}

/// Findings as the process owner reads them: the code and where, what is wrong and what to
/// do, in the reader's language (the code's name in the tooltip).
fn diagnostic_list(lang: Lang, diagnostics: &[&Diagnostic]) -> Markup {
    html! {
        @if !diagnostics.is_empty() {
            ul.diagnostics {
                @for d in diagnostics {
                    li.(d.severity.to_string()) data-code=(d.code.as_str()) {
                        code title=(lang.code_title(d.code)) { (d.code.as_str()) } " "
                        code.muted { (display_path(&d.file)) ":" (d.span.line) ":" (d.span.column) }
                        " " (lang.render(&d.message))
                        br; small.muted { (lang.render(&d.hint)) }
                    }
                }
            }
        }
    }
}

/// The last reload, when its files were not put in force.
fn rejected_reload(state: &AppState) -> Option<Attempt> {
    state
        .reloads
        .last()
        .filter(|a| a.result == "rejected" || a.result == "failed")
}

/// For the home page of a process owner: the last reload was not put in force.
pub(super) fn reload_notice(state: &AppState, lang: Lang) -> Markup {
    let Some(attempt) = rejected_reload(state) else {
        return html! {};
    };
    let errors = errors_of(&attempt);
    let count = i64::try_from(attempt.errors).unwrap_or(i64::MAX);
    html! {
        div.banner.error #reload-failed data-result=(attempt.result) role="alert" {
            strong { (lang.text("console-workflow-reload-failed-home")) }
            " (" (super::local(attempt.at)) ", " (lang.count("console-workflow-errors", count, &[])) ") "
            a href="/workflows" { (lang.text("console-workflow-reload-see")) }
            @if let Some(message) = &attempt.message { p { (message) } }
            (diagnostic_list(lang, &errors[..errors.len().min(5)]))
        }
    }
}

/// The validation findings of the workflow's file: those of the files on disk when the last
/// reload was refused (the banner above says so), otherwise those of the version in force.
/// Never "no errors" under a banner that says there are.
fn findings(state: &AppState, lang: Lang, def: &Definition, in_force: &[&Diagnostic]) -> Markup {
    let Some(attempt) = rejected_reload(state) else {
        return findings_list(lang, in_force);
    };
    let t = |id: &str| lang.text(id);
    let on_disk: Vec<&Diagnostic> = attempt
        .diagnostics
        .iter()
        .filter(|d| d.file == def.file)
        .collect();
    html! {
        section.card #findings data-rejected="true" {
            h2 { (t("console-workflow-findings")) }
            @if on_disk.iter().any(|d| d.is_error()) {
                p.warn #findings-on-disk { (t("console-workflow-on-disk-has-errors")) }
                (diagnostic_list(lang, &on_disk))
            } @else {
                p.muted #findings-set-rejected { (t("console-workflow-file-clean-set-rejected")) }
                (diagnostic_list(lang, &on_disk))
            }
        }
    }
}

fn findings_list(lang: Lang, diagnostics: &[&Diagnostic]) -> Markup {
    let t = |id: &str| lang.text(id);
    html! {
        section.card #findings {
            h2 { (t("console-workflow-findings")) }
            @if diagnostics.is_empty() {
                p.ok { (t("console-workflow-clean")) }
            } @else {
                (diagnostic_list(lang, diagnostics))
            }
        }
    }
}

fn roles(lang: Lang, def: &Definition) -> Markup {
    html! {
        section.card #roles {
            h2 { (lang.text("console-workflows-roles")) }
            table.kv { tbody {
                @for (role, spec) in def.workflow.roles.iter() {
                    tr { th { code { (role.as_str()) } } td { (spec.title) @if let Some(d) = &spec.description { br; small.muted { (d) } } } }
                }
            } }
        }
    }
}

fn fields(lang: Lang, def: &Definition) -> Markup {
    if def.workflow.fields.is_empty() {
        return html! {};
    }
    let t = |id: &str| lang.text(id);
    html! {
        section.card #fields {
            h2 { (t("console-workflow-fields")) }
            table {
                thead { tr { th { (t("console-workflow-field")) } th { (t("console-workflow-title-col")) } th { (t("console-workflow-type")) } th { (t("console-workflow-required-on")) } } }
                tbody {
                    @for (name, field) in def.workflow.fields.iter() {
                        tr {
                            td { code { (name.as_str()) } }
                            td { (field.title.as_deref().unwrap_or("")) @if let Some(d) = &field.description { br; small.muted { (d) } } }
                            td { (field.kind.value.name()) @if !field.values.is_empty() {
                                br; small.muted { @for v in &field.values { (v.as_str()) " " } }
                            } }
                            td { @for e in &field.required_on { code { (e.as_str()) } " " } }
                        }
                    }
                }
            }
        }
    }
}

fn parameters(lang: Lang, def: &Definition) -> Markup {
    if def.workflow.parameters.is_empty() {
        return html! {};
    }
    let t = |id: &str| lang.text(id);
    html! {
        section.card #parameters {
            h2 { (t("console-workflow-parameters")) }
            table {
                thead { tr { th { (t("console-workflow-parameter")) } th { (t("console-workflow-title-col")) } th { (t("console-workflow-default")) } } }
                tbody {
                    @for (name, p) in def.workflow.parameters.iter() {
                        tr {
                            td { code { (name.as_str()) } br; small.muted { (p.kind.value.name()) } }
                            td { (p.title.as_deref().unwrap_or("")) @if let Some(d) = &p.description { br; small.muted { (d) } } }
                            td { code { (p.default.value.to_string()) } }
                        }
                    }
                }
            }
        }
    }
}

fn version_list(
    lang: Lang,
    def: &Definition,
    versions: &[(String, String)],
    current: Option<&str>,
) -> Markup {
    let t = |id: &str| lang.text(id);
    html! {
        section.card #versions {
            h2 { (t("console-workflow-versions")) " " span.count { (versions.len()) } }
            p.muted { (t("console-workflow-versions-note")) }
            ul {
                @for (hash, file) in versions {
                    li.current[Some(hash.as_str()) == current] data-version=(hash) {
                        a href={ "/workflows/" (def.id()) "?version=" (hash) } { code title=(hash) { (short_hash(hash)) } }
                        " " small.muted { (file) }
                        @if Some(hash.as_str()) == current { " " span.badge.ok { (t("console-workflow-current")) } }
                        @if *hash == def.hash { " " span.badge { (t("console-workflow-shown")) } }
                    }
                }
            }
        }
    }
}
