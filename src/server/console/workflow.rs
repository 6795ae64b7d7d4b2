//! The process library as the desk sees it: `GET /workflows` (every workflow in force) and
//! `GET /workflows/{id}` (its diagram, manual reference, roles, fields, parameters, the
//! validation findings of its file, the versions stored, and its YAML).
//!
//! A rejected reload is shown first and loudly: the files on disk have errors, so what runs
//! is still the version named here, not what the process owner just saved.

use super::inbox::start_form;
use super::{Page, error_page, html_response, internal, layout, role_title, short_hash};
use crate::catalog::Definition;
use crate::diagram::{SvgOptions, svg};
use crate::machine::access::may_start;
use crate::server::AppState;
use crate::server::problem::Problem;
use crate::server::reload::Attempt;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, PreEscaped, html};
use serde_json::Value;
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
    let body = html! {
        (reload_banner(&state, None))
        section.card {
            h1 { "流程 Workflows " span.count { (defs.len()) } }
            table #workflows {
                thead { tr {
                    th { "流程 Workflow" } th { "出处 Source" } th { "环节 States" } th { "角色 Roles" } th { "版本 Version" }
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
    html_response(StatusCode::OK, layout(Some(&caller), "流程", body))
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
        let detail = match wanted {
            Some(hash) => format!(
                "流程 `{id}` 没有版本 {hash}。Workflow `{id}` has no stored version {hash}."
            ),
            None => format!("没有流程 `{id}`。There is no workflow `{id}` in force."),
        };
        return error_page(
            Some(&caller),
            &Problem::not_found("unknown_workflow", detail),
        );
    };
    let versions = match stored_versions(&state, &id).await {
        Ok(versions) => versions,
        Err(err) => return internal(&caller, err),
    };
    let is_current = current.as_deref() == Some(def.hash.as_str());
    let report = state.engine.load_report();
    let diagnostics: Vec<Value> = report
        .diagnostics
        .iter()
        .filter(|d| d.file == def.file)
        .map(|d| d.to_json())
        .collect();
    let drawing = svg(&def.workflow, &SvgOptions::default());
    let body = html! {
        (reload_banner(&state, current.as_deref()))
        section.card.head {
            p.muted { a href="/workflows" { "流程" } " / " code { (def.id()) } }
            h1 { (def.workflow.title) }
            @if !is_current {
                div.banner.warn #old-version {
                    "这是存档版本 " code { (short_hash(&def.hash)) } ",不是新实例所用的版本。"
                    " This is a stored version; new instances start on "
                    a href={ "/workflows/" (def.id()) } { "the current one" } "."
                }
            }
            @if let Some(description) = &def.workflow.description { p { (description) } }
            dl.facts {
                @if let Some(source) = &def.workflow.source {
                    dt { "出处 Manual" } dd #source { (source.manual) }
                    @if let Some(section) = &source.section { dt { "章节 Section" } dd { (section) } }
                    @if let Some(lines) = &source.lines { dt { "行 Lines" } dd { (lines) } }
                }
                dt { "文件 File" } dd { code { (def.file.display()) } }
                dt { "版本 Version" } dd { code title=(def.hash) { (short_hash(&def.hash)) } }
                dt { "日历 Calendar" } dd { code { (def.calendar.id()) } }
            }
        }
        section.card.diagram #diagram {
            h2 { "流程图 Diagram" }
            // Generated by `crate::diagram::svg`, which escapes its text itself.
            div.svg-wrap { (PreEscaped(drawing)) }
        }
        div.columns {
            (roles(&def))
            @if is_current && may_start(&def.workflow, &caller.actor()) {
                section.card #start {
                    h2 { "发起 Start" }
                    (start_form(&caller, &def, "", &Default::default()))
                }
            }
        }
        (fields(&def))
        (parameters(&def))
        (findings(&state, &def, &diagnostics))
        (version_list(&def, &versions, current.as_deref()))
        section.card #yaml {
            h2 { "定义文件 YAML" }
            pre.source { code { (def.source) } }
            @for (name, text) in &def.rules {
                details { summary { "规则 Rules: " code { (name) } } pre.source { code { (text) } } }
            }
        }
    };
    html_response(
        StatusCode::OK,
        layout(Some(&caller), &def.workflow.title, body),
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
fn reload_banner(state: &AppState, current: Option<&str>) -> Markup {
    let Some(attempt) = rejected_reload(state) else {
        return html! {};
    };
    html! {
        div.banner.error #reload-rejected data-result=(attempt.result) {
            strong { "定义文件有错误,未生效。The files have errors; they were not put in force." }
            p {
                @match current {
                    Some(hash) => { "版本 " code { (short_hash(hash)) } " 继续有效。Version " code { (short_hash(hash)) } " stays in force." }
                    None => { "现有版本继续有效。The versions in force stay." }
                }
                " (" (super::local(attempt.at)) ", " (attempt.errors) " error(s))"
            }
            @if let Some(message) = &attempt.message { p { (message) } }
            (diagnostic_list(&errors_of(&attempt)))
        }
    }
}

fn errors_of(attempt: &Attempt) -> Vec<Value> {
    attempt
        .diagnostics
        .iter()
        .filter(|d| d.get("severity").and_then(Value::as_str) == Some("error"))
        .cloned()
        .collect()
}

fn diagnostic_list(diagnostics: &[Value]) -> Markup {
    let text = |d: &Value, key: &str| {
        d.get(key).map_or(String::new(), |v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    };
    html! {
        @if !diagnostics.is_empty() {
            ul.diagnostics {
                @for d in diagnostics {
                    li.(text(d, "severity")) {
                        code { (text(d, "code")) } " "
                        code.muted { (text(d, "file")) ":" (text(d, "line")) ":" (text(d, "column")) }
                        " " (text(d, "message"))
                        br; small.muted { (text(d, "hint")) }
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
pub(super) fn reload_notice(state: &AppState) -> Markup {
    let Some(attempt) = rejected_reload(state) else {
        return html! {};
    };
    let errors = errors_of(&attempt);
    html! {
        div.banner.error #reload-failed data-result=(attempt.result) role="alert" {
            strong { (super::text::RELOAD_FAILED_HOME) }
            " (" (super::local(attempt.at)) ", " (attempt.errors) " 个错误) "
            a href="/workflows" { (super::text::RELOAD_SEE) }
            @if let Some(message) = &attempt.message { p { (message) } }
            (diagnostic_list(&errors[..errors.len().min(5)]))
        }
    }
}

/// The validation findings of the workflow's file: those of the files on disk when the last
/// reload was refused (the banner above says so), otherwise those of the version in force.
/// Never "no errors" under a banner that says there are.
fn findings(state: &AppState, def: &Definition, in_force: &[Value]) -> Markup {
    let Some(attempt) = rejected_reload(state) else {
        return findings_list(in_force);
    };
    let file = crate::diagnostic::display_path(&def.file);
    let on_disk: Vec<Value> = attempt
        .diagnostics
        .iter()
        .filter(|d| d.get("file").and_then(Value::as_str) == Some(file.as_str()))
        .cloned()
        .collect();
    html! {
        section.card #findings data-rejected="true" {
            h2 { "校验结果 Validation" }
            @if on_disk.iter().any(|d| d.get("severity").and_then(Value::as_str) == Some("error")) {
                p.warn #findings-on-disk { (super::text::ON_DISK_HAS_ERRORS) }
                (diagnostic_list(&on_disk))
            } @else {
                p.muted #findings-set-rejected { (super::text::THIS_FILE_CLEAN_SET_REJECTED) }
                (diagnostic_list(&on_disk))
            }
        }
    }
}

fn findings_list(diagnostics: &[Value]) -> Markup {
    html! {
        section.card #findings {
            h2 { "校验结果 Validation" }
            @if diagnostics.is_empty() {
                p.ok { "✓ 没有错误或警告。No errors or warnings." }
            } @else {
                (diagnostic_list(diagnostics))
            }
        }
    }
}

fn roles(def: &Definition) -> Markup {
    html! {
        section.card #roles {
            h2 { "角色 Roles" }
            table.kv { tbody {
                @for (role, spec) in def.workflow.roles.iter() {
                    tr { th { code { (role.as_str()) } } td { (spec.title) @if let Some(d) = &spec.description { br; small.muted { (d) } } } }
                }
            } }
        }
    }
}

fn fields(def: &Definition) -> Markup {
    if def.workflow.fields.is_empty() {
        return html! {};
    }
    html! {
        section.card #fields {
            h2 { "资料项 Fields" }
            table {
                thead { tr { th { "字段 Field" } th { "名称 Title" } th { "类型 Type" } th { "必填于 Required on" } } }
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

fn parameters(def: &Definition) -> Markup {
    if def.workflow.parameters.is_empty() {
        return html! {};
    }
    html! {
        section.card #parameters {
            h2 { "参数 Parameters" }
            table {
                thead { tr { th { "参数 Parameter" } th { "名称 Title" } th { "默认值 Default" } } }
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

fn version_list(def: &Definition, versions: &[(String, String)], current: Option<&str>) -> Markup {
    html! {
        section.card #versions {
            h2 { "已存版本 Stored versions " span.count { (versions.len()) } }
            p.muted { "运行中的实例始终使用其发起时的版本。A running instance keeps the version it started on." }
            ul {
                @for (hash, file) in versions {
                    li.current[Some(hash.as_str()) == current] data-version=(hash) {
                        a href={ "/workflows/" (def.id()) "?version=" (hash) } { code title=(hash) { (short_hash(hash)) } }
                        " " small.muted { (file) }
                        @if Some(hash.as_str()) == current { " " span.badge.ok { "当前 current" } }
                        @if *hash == def.hash { " " span.badge { "正在查看 shown" } }
                    }
                }
            }
        }
    }
}
