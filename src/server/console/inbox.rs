//! The inbox (`GET /`: what waits for one of my roles), the instance search
//! (`GET /instances`) and starting an instance (`POST /instances`).

use super::flash::{self, Flash};
use super::forms::{self, Typed};
use super::{
    Form, Page, csrf_field, csrf_refusal, error_page, html_response, internal, layout, local,
    local_in, shows_ids, state_title, working_left,
};
use crate::catalog::Definition;
use crate::definition::model::START;
use crate::engine::{EngineError, Task};
use crate::machine::Actor;
use crate::server::auth::Caller;
use crate::server::problem::Problem;
use crate::server::{AppState, StartInput};
use crate::store::Query;
use axum::extract::{Query as UrlQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde_json::{Map, Value};
use std::sync::Arc;

/// How many instances a search lists at most.
const SEARCH_LIMIT: usize = 200;

/// How many tasks the inbox shows: the earliest deadlines first, a page a person can read.
const INBOX_ROWS: usize = 200;

/// `GET /`.
pub async fn inbox(State(state): State<AppState>, Page(caller): Page) -> Response {
    let actor = caller.actor();
    let tasks = match state.tasks(&caller, Query::default(), false).await {
        Ok(tasks) => tasks,
        Err(err) => return internal(&state, &caller, err),
    };
    let startable = startable(&state, &actor);
    let lang = caller.lang;
    let t = |id: &str| lang.text(id);
    let body = html! {
        @if caller.user.has_role(super::PROCESS_OWNER) { (super::workflow::reload_notice(&state, lang)) }
        section.card {
            h1 { (t("console-inbox-heading")) " " span.count { (tasks.len()) } }
            @if tasks.is_empty() {
                p.muted #no-tasks { (t("console-inbox-empty")) }
            } @else {
                (task_table(&state, &caller, &tasks[..tasks.len().min(INBOX_ROWS)]))
                @if tasks.len() > INBOX_ROWS {
                    p.muted #more-tasks {
                        (lang.text_with("console-inbox-more", &[("shown", &INBOX_ROWS.to_string()), ("total", &tasks.len().to_string())]))
                        " " a href="/api/tasks" { "/api/tasks" }
                    }
                }
            }
        }
        div.columns {
            (start_card(&caller, &startable))
            (search_card(&state, &caller, &Search::default()))
        }
    };
    html_response(
        StatusCode::OK,
        layout(&state, &caller, &t("console-inbox-title"), body),
    )
}

fn task_table(state: &AppState, caller: &Caller, tasks: &[Task]) -> Markup {
    let now = state.engine.now();
    let lang = caller.lang;
    let t = |id: &str| lang.text(id);
    html! {
        table.reflow #tasks {
            thead { tr {
                th { (t("console-inbox-col-workflow")) } th { (t("console-inbox-col-state")) } th { (t("console-inbox-col-key")) }
                th { (t("console-inbox-col-actions")) } th { (t("console-inbox-col-started")) } th { (t("console-inbox-col-due")) }
            } }
            tbody {
                @for task in tasks {
                    @let instance = &task.instance;
                    @let def = state.engine.definition(&instance.version).ok();
                    tr.overdue[task.overdue] data-instance=(instance.id) {
                        td data-label=(t("console-inbox-col-workflow")) {
                            a href={ "/instances/" (instance.id) } {
                                (def.as_ref().map_or(instance.workflow.clone(), |d| d.workflow.title.as_str().into()))
                            }
                            @if let Some(number) = &instance.number { br; strong.number { (number) } }
                            br; code.muted { (instance.id) }
                        }
                        td data-label=(t("console-inbox-col-state")) { (def.as_deref().map_or(instance.state.clone(), |d| state_title(d, &instance.state).into())) }
                        td data-label=(t("console-inbox-col-key")) { (instance.business_key.as_deref().unwrap_or("—")) }
                        td data-label=(t("console-inbox-col-actions")) {
                            @for action in &task.actions {
                                span.action data-event=(action.event) { (action.title.clone().unwrap_or_else(|| super::instance::event_title(lang, def.as_deref(), None, &action.event))) }
                                " "
                            }
                        }
                        td data-label=(t("console-inbox-col-started")) { (local(instance.created)) }
                        td.due data-label=(t("console-inbox-col-due")) {
                            @if task.overdue { span.badge.danger.overdue-mark { (t("console-inbox-overdue")) } " " }
                            @match (&task.timer, def.as_deref()) {
                                (Some(timer), Some(def)) => {
                                    strong.deadline { (timer.title.clone().unwrap_or_else(|| t("console-deadline-untitled"))) }
                                    br; (local_in(def, timer.due))
                                    br; small.left { (working_left(lang, def, timer.due, now)) }
                                }
                                (Some(timer), None) => { (local(timer.due)) }
                                (None, _) => { span.muted { "—" } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The workflows a person may start (the workflow's `access.start`, or by default the roles
/// of its first step).
pub(super) fn startable(state: &AppState, actor: &Actor) -> Vec<Arc<Definition>> {
    state
        .engine
        .workflows()
        .iter()
        .filter_map(|id| state.engine.definition_of(id))
        .filter(|def| crate::machine::access::may_start(&def.workflow, actor))
        .collect()
}

fn start_card(caller: &Caller, startable: &[Arc<Definition>]) -> Markup {
    let t = |id: &str| caller.lang.text(id);
    html! {
        section.card #start {
            h2 { (t("console-start-heading")) }
            @if startable.is_empty() {
                p.muted { (t("console-start-none")) }
            } @else {
                form.stack method="post" action="/instances" #start-form {
                    (csrf_field(caller))
                    input type="hidden" name="_nonce" value=(nonce());
                    label for="start-workflow" { (t("console-start-workflow")) }
                    select #start-workflow name="workflow" required {
                        @for def in startable {
                            option value=(def.id()) {
                                (def.workflow.title)
                                @if shows_ids(caller) { " (" (def.id()) ")" }
                            }
                        }
                    }
                    label for="start-key" { (t("console-start-key")) " " span.muted { (t("console-start-optional")) } }
                    input #start-key type="text" name="business_key" placeholder=(t("console-start-key-example"));
                    button.primary type="submit" { (t("console-start-submit")) }
                }
            }
        }
    }
}

/// A random token for a start form: the idempotency key that makes a double click start one
/// instance, not two.
fn nonce() -> String {
    let mut bytes = [0u8; 12];
    match getrandom::fill(&mut bytes) {
        Ok(()) => hex::encode(bytes),
        Err(_) => String::new(),
    }
}

/// The start form of one workflow with the fields its start requires.
pub(super) fn start_form(
    caller: &Caller,
    def: &Definition,
    business_key: &str,
    typed: &Typed,
) -> Markup {
    let fields = forms::writable_fields(&def.workflow, START, &[], &Map::new());
    let lang = caller.lang;
    let t = |id: &str| lang.text(id);
    html! {
        form.stack method="post" action="/instances" #start-form {
            (csrf_field(caller))
            input type="hidden" name="_nonce" value=(nonce());
            input type="hidden" name="_full" value="1";
            input type="hidden" name="workflow" value=(def.id());
            label for="start-key" { (t("console-start-key")) " " span.muted { (t("console-start-optional")) } }
            input #start-key type="text" name="business_key" value=(business_key);
            @for offered in &fields {
                (forms::input(lang, "start", offered.name, offered.field, typed.get(offered.name).map(String::as_str), offered.required))
            }
            button.primary type="submit" { (lang.text_with("console-start-workflow-submit", &[("workflow", &def.workflow.title)])) }
        }
    }
}

/// The address of a workflow's full start form, with what to fill in.
fn start_address(workflow: &str, business_key: &str) -> String {
    let mut pairs = vec![("workflow", workflow)];
    if !business_key.is_empty() {
        pairs.push(("business_key", business_key));
    }
    format!(
        "/start?{}",
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    )
}

/// `POST /instances`: starts an instance and opens it. A workflow whose start needs data
/// first goes to its full form; a refusal goes back to that form with the engine's reason
/// and what was typed (post/redirect/get).
pub async fn start(State(state): State<AppState>, Page(caller): Page, form: Form) -> Response {
    if let Some(refused) = csrf_refusal(&state, &caller, &form) {
        return refused;
    }
    let workflow = form.text("workflow").unwrap_or_default().to_string();
    let business_key = form.text("business_key").unwrap_or_default().to_string();
    let Some(def) = state.engine.definition_of(&workflow) else {
        // The form page answers for a workflow that is not in force.
        return Redirect::to(&start_address(&workflow, "")).into_response();
    };
    let typed = forms::typed(&form);
    // Only what the start must be given opens the full form first; the optional fields are on
    // it too, and on the workflow's page.
    let needs_data = forms::writable_fields(&def.workflow, START, &[], &Map::new())
        .iter()
        .any(|offered| offered.required);
    if needs_data && form.get("_full").is_none() {
        return Redirect::to(&start_address(&workflow, &business_key)).into_response();
    }
    let input = StartInput {
        workflow: workflow.clone(),
        data: Value::Object(forms::payload(&def.workflow, &form, false)),
        business_key: Some(business_key.clone()).filter(|k| !k.is_empty()),
        idempotency_key: form
            .text("_nonce")
            .map(|nonce| format!("console:{}:{nonce}", caller.user.id)),
    };
    match state.start(&caller, input).await {
        Ok(outcome) => {
            Redirect::to(&format!("/instances/{}?done=start", outcome.instance.id)).into_response()
        }
        Err(problem) if problem.status.is_server_error() => error_page(&state, &caller, &problem),
        Err(problem) => {
            let token = state.flashes.put(
                &caller,
                Flash::StartRefused {
                    problem,
                    business_key,
                    typed,
                },
            );
            Redirect::to(&flash::with_token(&start_address(&workflow, ""), token)).into_response()
        }
    }
}

/// The query of the full start form.
#[derive(Debug, Default, serde::Deserialize)]
pub struct StartQuery {
    #[serde(default)]
    workflow: String,
    #[serde(default)]
    business_key: String,
    flash: Option<String>,
}

/// `GET /start?workflow=...`: a workflow's full start form, with a refused start's reason
/// and what was typed when `flash` names them.
pub async fn start_page(
    State(state): State<AppState>,
    Page(caller): Page,
    UrlQuery(query): UrlQuery<StartQuery>,
) -> Response {
    let workflow = query.workflow.trim();
    let Some(def) = state.engine.definition_of(workflow) else {
        return error_page(
            &state,
            &caller,
            &Problem::not_found(
                "unknown_workflow",
                format!("there is no workflow `{workflow}` in force"),
            )
            .explained(Some(caller.lang.text("console-error-unknown-workflow"))),
        );
    };
    let flashed = query
        .flash
        .as_deref()
        .and_then(|token| state.flashes.get(&caller, token));
    match flashed {
        Some(Flash::StartRefused {
            problem,
            business_key,
            typed,
        }) => render_start(&state, &caller, &def, &business_key, &typed, Some(&problem)),
        _ => render_start(
            &state,
            &caller,
            &def,
            &query.business_key,
            &Typed::new(),
            None,
        ),
    }
}

fn render_start(
    state: &AppState,
    caller: &Caller,
    def: &Definition,
    business_key: &str,
    typed: &Typed,
    problem: Option<&Problem>,
) -> Response {
    let lang = caller.lang;
    let title = lang.text_with(
        "console-start-workflow-submit",
        &[("workflow", &def.workflow.title)],
    );
    let body = html! {
        section.card.narrow {
            h1 { (title) }
            @if let Some(problem) = problem { (super::instance::refusal_banner(lang, problem)) }
            (start_form(caller, def, business_key, typed))
        }
    };
    html_response(StatusCode::OK, layout(state, caller, &title, body))
}

/// The filters of an instance search; blanks mean any.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Search {
    #[serde(default)]
    workflow: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    business_key: String,
    /// A readable number (`DH-2026-0001`) or an id: that one instance.
    #[serde(default)]
    number: String,
}

impl Search {
    fn query(&self) -> Query {
        let some = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        Query {
            workflow: some(&self.workflow),
            state: some(&self.state),
            business_key: some(&self.business_key),
            limit: Some(SEARCH_LIMIT),
        }
    }
}

fn search_card(state: &AppState, caller: &Caller, search: &Search) -> Markup {
    let t = |id: &str| caller.lang.text(id);
    let workflows: Vec<Arc<Definition>> = state
        .engine
        .workflows()
        .iter()
        .filter_map(|id| state.engine.definition_of(id))
        .collect();
    let states: Vec<(String, String)> = workflows
        .iter()
        .find(|d| d.id() == search.workflow.trim())
        .map(|d| {
            d.workflow
                .states
                .keys()
                .map(|s| (s.to_string(), state_title(d, s)))
                .collect()
        })
        .unwrap_or_default();
    html! {
        section.card #search {
            h2 { (t("console-search-heading")) }
            form.stack method="get" action="/instances" {
                label for="search-workflow" { (t("console-search-workflow")) }
                select #search-workflow name="workflow" {
                    option value="" { (t("console-search-any")) }
                    @for def in &workflows {
                        option value=(def.id()) selected[def.id() == search.workflow.trim()] {
                            (def.workflow.title)
                        }
                    }
                }
                label for="search-state" { (t("console-search-state")) }
                @if states.is_empty() {
                    input #search-state type="text" name="state" value=(search.state) placeholder=(t("console-search-state-hint"));
                } @else {
                    select #search-state name="state" {
                        option value="" { (t("console-search-any")) }
                        @for (id, title) in &states {
                            option value=(id) selected[*id == search.state.trim()] {
                                (title)
                                @if shows_ids(caller) { " (" (id) ")" }
                            }
                        }
                    }
                }
                label for="search-key" { (t("console-search-key")) }
                input #search-key type="text" name="business_key" value=(search.business_key);
                label for="search-number" { (t("console-search-number")) " " span.muted { (t("console-search-number-example")) } }
                input #search-number type="text" name="number" value=(search.number);
                button type="submit" { (t("console-search-submit")) }
            }
        }
    }
}

/// `GET /instances`: every instance matching the filters, newest first.
pub async fn search(
    State(state): State<AppState>,
    Page(caller): Page,
    UrlQuery(search): UrlQuery<Search>,
) -> Response {
    let number = search.number.trim();
    let listed = if number.is_empty() {
        state.list(&caller, search.query()).await
    } else {
        // One instance by its number or id, within the other filters.
        match state.instance(&caller, number).await {
            Ok(instance) if search.query().matches(&instance) => Ok(vec![instance]),
            Ok(_)
            | Err(EngineError::UnknownInstance { .. } | EngineError::BadInstanceId { .. }) => {
                Ok(Vec::new())
            }
            Err(err) => Err(err),
        }
    };
    let mut found = match listed {
        Ok(found) => found,
        // No instance has such a workflow, or a filter with a control character.
        Err(EngineError::UnknownWorkflow { .. } | EngineError::BadKey { .. }) => Vec::new(),
        Err(err) => return internal(&state, &caller, err),
    };
    found.sort_by_key(|i| std::cmp::Reverse(i.updated));
    let lang = caller.lang;
    let t = |id: &str| lang.text(id);
    let body = html! {
        (search_card(&state, &caller, &search))
        section.card {
            h2 { (t("console-search-results")) " " span.count { (found.len()) } }
            @if found.len() >= SEARCH_LIMIT {
                p.muted { (lang.count("console-search-limited", SEARCH_LIMIT as i64, &[])) }
            }
            @if found.is_empty() {
                p.muted { (t("console-search-none")) }
            } @else {
                table #instances {
                    thead { tr {
                        th { (t("console-search-col-instance")) } th { (t("console-search-col-number")) } th { (t("console-inbox-col-workflow")) } th { (t("console-inbox-col-state")) }
                        th { (t("console-inbox-col-key")) } th { (t("console-inbox-col-started")) } th { (t("console-search-col-updated")) }
                    } }
                    tbody {
                        @for instance in &found {
                            @let def = state.engine.definition(&instance.version).ok();
                            tr data-instance=(instance.id) {
                                td { a href={ "/instances/" (instance.id) } { code { (instance.id) } } }
                                td.number { (instance.number.as_deref().unwrap_or("—")) }
                                td { (def.as_ref().map_or(instance.workflow.clone(), |d| d.workflow.title.as_str().into())) }
                                td {
                                    (def.as_deref().map_or(instance.state.clone(), |d| state_title(d, &instance.state).into()))
                                    @if instance.finished { " " span.badge { (t("console-instance-finished")) } }
                                }
                                td { (instance.business_key.as_deref().unwrap_or("—")) }
                                td { (local(instance.created)) }
                                td { (local(instance.updated)) }
                            }
                        }
                    }
                }
            }
        }
    };
    html_response(
        StatusCode::OK,
        layout(&state, &caller, &t("console-search-title"), body),
    )
}
