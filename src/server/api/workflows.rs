//! Workflows: the definitions in force, their diagrams, and the versions in the store.

use super::{Params, Segments};
use crate::catalog::Definition;
use crate::definition::Workflow;
use crate::diagram::{self, SvgOptions};
use crate::engine::EngineError;
use crate::server::AppState;
use crate::server::auth::Caller;
use crate::server::problem::Problem;
use crate::store::StoredDefinition;
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A workflow in force, as `GET /api/workflows` lists it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct WorkflowSummary {
    pub id: String,
    pub title: String,
    pub description: Option<String>,
    /// The newest version's hash.
    pub version: String,
    /// Where in the operating manual the procedure is written.
    pub source: Option<ManualSource>,
    /// Role id: title.
    pub roles: BTreeMap<String, String>,
    /// How many states.
    pub states: usize,
    /// The roles that may start an instance (empty: only a schedule or a parent workflow).
    pub start_roles: Vec<String>,
    /// Whether the caller may start one.
    pub can_start: bool,
}

/// Where a workflow comes from in the manual.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ManualSource {
    pub manual: String,
    pub section: Option<String>,
    pub lines: Option<String>,
}

/// `GET /api/workflows`.
pub async fn list(State(state): State<AppState>, caller: Caller) -> Json<Vec<WorkflowSummary>> {
    let engine = &state.engine;
    let actor = caller.actor();
    let out = engine
        .workflows()
        .iter()
        .filter_map(|id| engine.definition_of(id))
        .map(|definition| {
            let workflow = &definition.workflow;
            WorkflowSummary {
                id: definition.id().to_string(),
                title: workflow.title.clone(),
                description: workflow.description.clone(),
                version: definition.hash.clone(),
                source: source(workflow),
                roles: roles(workflow),
                states: workflow.states.len(),
                start_roles: crate::machine::start_roles(workflow)
                    .into_iter()
                    .map(str::to_string)
                    .collect(),
                can_start: crate::machine::access::may_start(workflow, &actor),
            }
        })
        .collect();
    Json(out)
}

/// A workflow's newest version, as `GET /api/workflows/{id}` gives it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct WorkflowDetail {
    pub id: String,
    pub title: String,
    pub description: Option<String>,
    pub version: String,
    pub source: Option<ManualSource>,
    /// The file it was read from.
    pub file: String,
    /// The exact YAML of the version.
    pub yaml: String,
    /// Rules file name: its text, for the rules files the version uses.
    pub rules: BTreeMap<String, String>,
    /// Role id: title.
    pub roles: BTreeMap<String, String>,
    pub states: Vec<StateSummary>,
}

/// A state of a workflow.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct StateSummary {
    pub id: String,
    pub title: Option<String>,
    #[serde(rename = "final")]
    pub is_final: bool,
}

/// `GET /api/workflows/{id}`: the newest version, with its exact sources.
pub async fn detail(
    State(state): State<AppState>,
    _caller: Caller,
    Segments(id): Segments<String>,
) -> Result<Json<WorkflowDetail>, Problem> {
    let definition = newest(&state, &id)?;
    let workflow = &definition.workflow;
    let states = workflow
        .states
        .iter()
        .map(|(name, s)| StateSummary {
            id: name.as_str().to_string(),
            title: s.title.clone(),
            is_final: s.is_final,
        })
        .collect();
    Ok(Json(WorkflowDetail {
        id: definition.id().to_string(),
        title: workflow.title.clone(),
        description: workflow.description.clone(),
        version: definition.hash.clone(),
        source: source(workflow),
        file: definition.file.display().to_string(),
        yaml: definition.source.clone(),
        rules: definition
            .rules
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        roles: roles(workflow),
        states,
    }))
}

/// A stored version of a workflow.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct VersionRef {
    pub hash: String,
    pub file: String,
    /// New instances start on it.
    pub current: bool,
}

/// How a diagram is drawn.
#[derive(Debug, Clone, Copy, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DiagramFormat {
    /// An SVG drawn by the server (the default).
    #[default]
    Svg,
    /// Mermaid source.
    Mermaid,
    /// Graphviz DOT source.
    Dot,
}

/// The query of `GET /api/workflows/{id}/diagram`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DiagramParams {
    /// `svg` (default), `mermaid` or `dot`.
    #[serde(default)]
    pub format: Option<DiagramFormat>,
    /// A state to mark as current (SVG only), for example an instance's state. Empty: as if
    /// left out.
    #[serde(default, deserialize_with = "super::extract::empty_as_none")]
    pub state: Option<String>,
}

/// `GET /api/workflows/{id}/diagram`.
pub async fn diagram(
    State(state): State<AppState>,
    _caller: Caller,
    Segments(id): Segments<String>,
    Params(params): Params<DiagramParams>,
) -> Result<Response, Problem> {
    let definition = newest(&state, &id)?;
    let workflow = &definition.workflow;
    if let Some(current) = &params.state
        && !workflow.states.contains(current)
    {
        // The query names something that does not exist, like a path would: 404.
        return Err(Problem::not_found(
            "no_such_state",
            format!(
                "`{id}` has no state `{current}`; {}",
                crate::diagnostic::suggestion(current, workflow.states.keys())
            ),
        ));
    }
    let text = "text/plain; charset=utf-8";
    Ok(match params.format.unwrap_or_default() {
        DiagramFormat::Svg => {
            let options = SvgOptions {
                current: params.state.as_deref(),
                ..SvgOptions::default()
            };
            let svg = diagram::svg(workflow, &options);
            ([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response()
        }
        DiagramFormat::Mermaid => {
            ([(header::CONTENT_TYPE, text)], diagram::mermaid(workflow)).into_response()
        }
        DiagramFormat::Dot => {
            ([(header::CONTENT_TYPE, text)], diagram::dot(workflow)).into_response()
        }
    })
}

/// `GET /api/workflows/{id}/versions`: every version in the store, the one new instances start
/// on first, then the others by hash. A workflow whose file is gone still lists the versions
/// its running instances use.
pub async fn versions(
    State(state): State<AppState>,
    _caller: Caller,
    Segments(id): Segments<String>,
) -> Result<Json<Vec<VersionRef>>, Problem> {
    let current = state.engine.latest_versions().get(&id).cloned();
    let store = state.engine.store().clone();
    let wanted = id.clone();
    // The scan reads sled: keep it off the async threads.
    let found = tokio::task::spawn_blocking(move || {
        let mut found = Vec::new();
        for record in store.scan_definitions() {
            let record = record.map_err(EngineError::from)?;
            if let Ok(stored) = record.definition
                && stored.workflow == wanted
            {
                found.push((record.hash, stored.file));
            }
        }
        Ok::<_, EngineError>(found)
    })
    .await
    .map_err(|_| Problem::from(EngineError::Closed))??;
    if found.is_empty() && current.is_none() {
        return Err(unknown_workflow(&state, &id));
    }
    let mut out: Vec<(bool, String, String)> = found
        .into_iter()
        .map(|(hash, file)| (current.as_deref() == Some(hash.as_str()), hash, file))
        .collect();
    out.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    Ok(Json(
        out.into_iter()
            .map(|(current, hash, file)| VersionRef {
                hash,
                file,
                current,
            })
            .collect(),
    ))
}

/// `GET /api/versions/{hash}`: the exact YAML and rules a version was built from.
pub async fn version(
    State(state): State<AppState>,
    _caller: Caller,
    Segments(hash): Segments<String>,
) -> Result<Json<StoredDefinition>, Problem> {
    match state.engine.definition_sources(&hash).await {
        Ok(stored) => Ok(Json(stored)),
        Err(EngineError::Definition { .. }) => Err(Problem::not_found(
            "unknown_version",
            format!(
                "no definition version `{hash}` in the store; /api/workflows/{{id}}/versions lists a workflow's versions"
            ),
        )),
        Err(err) => Err(err.into()),
    }
}

/// The newest version of a workflow that can be started, or 404 with a suggestion.
fn newest(state: &AppState, id: &str) -> Result<Arc<Definition>, Problem> {
    state
        .engine
        .definition_of(id)
        .ok_or_else(|| unknown_workflow(state, id))
}

fn unknown_workflow(state: &AppState, id: &str) -> Problem {
    let known = state.engine.workflows();
    Problem::from(EngineError::UnknownWorkflow {
        id: id.to_string(),
        hint: format!(
            "; {}",
            crate::diagnostic::suggestion(id, known.iter().map(String::as_str))
        ),
    })
}

fn source(workflow: &Workflow) -> Option<ManualSource> {
    workflow.source.as_ref().map(|s| ManualSource {
        manual: s.manual.clone(),
        section: s.section.clone(),
        lines: s.lines.clone(),
    })
}

fn roles(workflow: &Workflow) -> BTreeMap<String, String> {
    workflow
        .roles
        .iter()
        .map(|(name, role)| (name.as_str().to_string(), role.title.clone()))
        .collect()
}
