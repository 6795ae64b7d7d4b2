//! The instance page (`GET /instances/{id}`) and its actions (`POST /instances/{id}/fire`).
//!
//! The page shows where the instance stands on its diagram, its data, what I may do now and
//! (folded away) what the state handles that I may not: those forms are real too, so that
//! trying one shows the engine's refusal instead of hiding the rule. A refused action renders
//! the page again with the refusal and what was typed; nothing was written.

use super::forms::{self, Typed};
use super::history;
use super::{
    Form, Page, csrf_field, csrf_refusal, error_page, html_response, internal, layout, local,
    role_title, short_hash, state_title,
};
use crate::catalog::Definition;
use crate::definition::model::{COMMENT, State as StateDef};
use crate::diagram::{SvgOptions, svg};
use crate::engine::EngineError;
use crate::machine::{Available, Entry, Instance};
use crate::server::auth::Caller;
use crate::server::problem::Problem;
use crate::server::{AppState, FireInput};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, PreEscaped, html};
use serde_json::Value;

/// What the page says about the last thing I did.
pub(super) enum Notice<'a> {
    None,
    /// The step `event` was taken (from `?done=`).
    Done(String),
    /// The engine refused; the form of `event` shows what was typed.
    Refused {
        problem: &'a Problem,
        event: &'a str,
        typed: Typed,
        comment: String,
    },
}

#[derive(Debug, serde::Deserialize)]
pub struct Done {
    done: Option<String>,
}

/// `GET /instances/{id}`.
pub async fn page(
    State(state): State<AppState>,
    Page(caller): Page,
    Path(id): Path<String>,
    Query(done): Query<Done>,
) -> Response {
    let notice = done.done.map_or(Notice::None, Notice::Done);
    render(&state, &caller, &id, notice, StatusCode::OK).await
}

/// `POST /instances/{id}/fire`: fires the form's event with its fields and comment, as the
/// signed-in person, at the step the page showed (`expected_seq`).
pub async fn fire(
    State(state): State<AppState>,
    Page(caller): Page,
    Path(id): Path<String>,
    form: Form,
) -> Response {
    if let Some(refused) = csrf_refusal(&state, &caller, &form) {
        return refused;
    }
    let instance = match state.instance(&caller, &id).await {
        Ok(instance) => instance,
        Err(err) => return engine_error(&caller, err),
    };
    let def = match state.engine.definition(&instance.version) {
        Ok(def) => def,
        Err(err) => return internal(&caller, err),
    };
    let event = form.text("event").unwrap_or_default().to_string();
    let input = FireInput {
        event: event.clone(),
        payload: Value::Object(forms::payload(&def.workflow, &form, true)),
        expected_seq: form
            .text("expected_seq")
            .and_then(|s| s.parse::<u64>().ok()),
        ..FireInput::default()
    };
    match state.fire(&caller, &id, input).await {
        Ok(_) => Redirect::to(&format!(
            "/instances/{id}?{}",
            serde_urlencoded::to_string([("done", event.as_str())]).unwrap_or_default()
        ))
        .into_response(),
        Err(problem) if problem.status == StatusCode::NOT_FOUND => {
            error_page(Some(&caller), &problem)
        }
        Err(problem) if problem.status.is_server_error() => error_page(Some(&caller), &problem),
        Err(problem) => {
            let notice = Notice::Refused {
                problem: &problem,
                event: &event,
                typed: forms::typed(&form),
                comment: form.get("comment").unwrap_or_default().to_string(),
            };
            render(&state, &caller, &id, notice, problem.status).await
        }
    }
}

/// An engine error as a page: an unknown instance is a 404, anything else the engine's own
/// status.
fn engine_error(caller: &Caller, err: EngineError) -> Response {
    let problem = Problem::from(err);
    if problem.status.is_server_error() {
        tracing::error!(actor = ?caller.user.id, detail = ?problem.detail, "console page failed");
    }
    error_page(Some(caller), &problem)
}

/// The whole page.
async fn render(
    state: &AppState,
    caller: &Caller,
    id: &str,
    notice: Notice<'_>,
    status: StatusCode,
) -> Response {
    let instance = match state.instance(caller, id).await {
        Ok(instance) => instance,
        Err(err) => return engine_error(caller, err),
    };
    let def = match state.engine.definition(&instance.version) {
        Ok(def) => def,
        Err(err) => return internal(caller, err),
    };
    let history = match state.history(caller, id).await {
        Ok(history) => history,
        Err(err) => return engine_error(caller, err),
    };
    let overdue = state.engine.is_overdue(&instance).await.unwrap_or(false);
    let actor = caller.actor();
    let available = match state
        .engine
        .available_on(def.clone(), instance.clone(), actor.clone())
        .await
    {
        Ok(available) => available,
        Err(err) => return engine_error(caller, err),
    };
    let chain = crate::audit::chain::approval_chain(&history, |v| state.engine.definition(v).ok());
    // `?done=` comes from the address bar: it is confirmed only by the last step itself.
    let notice = match notice {
        Notice::Done(event) if history.last().is_none_or(|e| e.event != event) => Notice::None,
        other => other,
    };
    let title = def.workflow.title.clone();
    let body = html! {
        (header(&def, &instance, overdue))
        (notice_banner(&def, &instance, &notice))
        div.columns.wide-left {
            section.card.diagram #diagram {
                h2 { "流程图 Diagram" }
                (diagram(&def, &instance, &history))
            }
            div {
                (actions(caller, &def, &instance, &available, &notice))
                (history::data(&def, &instance))
            }
        }
        (history::timers(&instance, state.engine.now()))
        (history::family(&instance))
        @if let Some(chain) = &chain { (history::chain(chain)) }
        (history::entries(&def, &history))
    };
    html_response(status, layout(Some(caller), &title, body))
}

fn header(def: &Definition, instance: &Instance, overdue: bool) -> Markup {
    html! {
        section.card.head {
            p.muted { a href="/" { "待办" } " / " a href="/instances" { "实例" } " / " code { (instance.number.as_deref().unwrap_or(&instance.id)) } }
            h1 { (def.workflow.title) }
            dl.facts {
                dt { "当前环节 State" }
                dd {
                    span.state #state-title data-state=(instance.state) { (state_title(def, &instance.state)) }
                    @if instance.finished { " " span.badge #finished { "已结束 finished" } }
                    @if overdue { " " span.badge.danger #overdue { "已超期 overdue" } }
                }
                @if let Some(number) = &instance.number {
                    dt { "编号 Number" } dd { strong #number { (number) } " " code.muted { (instance.id) } }
                }
                dt { "业务编号 Key" } dd { (instance.business_key.as_deref().unwrap_or("—")) }
                dt { "发起 Started" } dd { (local(instance.created)) }
                dt { "更新 Updated" } dd { (local(instance.updated)) " · 第 " (instance.seq) " 步 step" }
                dt { "版本 Version" }
                dd {
                    a href={ "/workflows/" (instance.workflow) "?version=" (instance.version) } title=(instance.version) {
                        code #version { (short_hash(&instance.version)) }
                    }
                }
            }
        }
    }
}

fn notice_banner(def: &Definition, instance: &Instance, notice: &Notice) -> Markup {
    match notice {
        Notice::None => html! {},
        Notice::Done(event) if event == "start" => html! {
            div.banner.ok #flash { "已发起。Started; the instance is in " strong { (state_title(def, &instance.state)) } "." }
        },
        Notice::Done(event) => html! {
            div.banner.ok #flash {
                "已提交 " strong { (event_title(def, None, event)) } " (" code { (event) } ")。"
                " Done; the instance is now in " strong { (state_title(def, &instance.state)) } "."
            }
        },
        Notice::Refused { problem, .. } => refusal_banner(problem),
    }
}

/// The engine's refusal, with its code and message, and the fact that nothing was written.
pub(super) fn refusal_banner(problem: &Problem) -> Markup {
    html! {
        div.banner.error #refusal data-code=(problem.code) role="alert" {
            strong { "操作被拒绝 Refused" } " " code.code { (problem.code) }
            p { (problem.detail) }
            p.muted { "未写入任何记录。Nothing was written." }
        }
    }
}

fn diagram(def: &Definition, instance: &Instance, history: &[Entry]) -> Markup {
    let mut visited: Vec<String> = Vec::new();
    for entry in history {
        for state in entry.from.iter().chain(std::iter::once(&entry.to)) {
            if *state != instance.state && !visited.contains(state) {
                visited.push(state.clone());
            }
        }
    }
    let drawing = svg(
        &def.workflow,
        &SvgOptions {
            current: Some(&instance.state),
            visited: &visited,
            link: None,
        },
    );
    // The SVG is generated from the definition by `crate::diagram::svg`, which escapes its
    // text itself.
    html! { div.svg-wrap { (PreEscaped(drawing)) } }
}

/// An event's title: the branch I would take (by role), else the first branch's, else the
/// approval's words, else the id.
fn event_title(def: &Definition, state: Option<&StateDef>, event: &str) -> String {
    let states: Vec<&StateDef> = match state {
        Some(state) => vec![state],
        None => def.workflow.states.iter().map(|(_, s)| s).collect(),
    };
    for state in states {
        if let Some(branches) = state.on.get(event)
            && let Some(title) = branches.0.iter().find_map(|b| b.title.clone())
        {
            return title;
        }
        if let Some(approval) = &state.approval {
            if approval.approve_event() == event {
                return "同意 approve".to_string();
            }
            if approval
                .on_reject
                .as_ref()
                .is_some_and(|r| r.reject_event() == event)
            {
                return "退回 reject".to_string();
            }
        }
    }
    event.to_string()
}

/// What the current state's event needs besides required fields: `requires` of its
/// branches (or its rejection).
fn requires(state: &StateDef, event: &str) -> Vec<String> {
    let mut out: Vec<String> = state
        .on
        .get(event)
        .map(|b| {
            b.0.iter()
                .flat_map(|t| t.requires.iter().map(|r| r.value.clone()))
                .collect()
        })
        .unwrap_or_default();
    if let Some(rejection) = state.approval.as_ref().and_then(|a| a.on_reject.as_ref())
        && rejection.reject_event() == event
    {
        out.extend(rejection.requires.iter().map(|r| r.value.clone()));
    }
    out
}

/// The events of the state that a person could fire (not the engine's own), in order.
fn person_events(state: &StateDef) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for event in state.events() {
        let system_only = state
            .on
            .get(event)
            .is_some_and(|b| b.0.iter().all(|t| t.roles.is_empty()));
        if !system_only && !out.iter().any(|e| e == event) {
            out.push(event.to_string());
        }
    }
    out
}

fn actions(
    caller: &Caller,
    def: &Definition,
    instance: &Instance,
    available: &[Available],
    notice: &Notice,
) -> Markup {
    let state = def.workflow.states.get(&instance.state);
    let others: Vec<String> = state
        .map(person_events)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| !available.iter().any(|a| &a.event == e))
        .collect();
    let refused_other =
        matches!(notice, Notice::Refused { event, .. } if others.iter().any(|o| o == event));
    html! {
        section.card #actions {
            h2 { "我可以办理 My actions" }
            @if instance.finished {
                p.muted { "流程已结束。The instance has finished." }
            } @else if available.is_empty() {
                p.muted #no-actions { "当前环节没有您可以办理的操作。Nothing here for your roles." }
            }
            div #my-actions {
                @for action in available {
                    (action_form(caller, def, instance, state, &action.event, Some(&action.role), notice, true))
                }
            }
            @if !others.is_empty() {
                details #other-actions open[refused_other] {
                    summary { "其他操作 Other actions " span.muted { "(" (others.len()) ")" } }
                    p.muted { "这些操作需要其他角色;提交后由流程引擎判断。These need other roles; the engine decides." }
                    @for event in &others {
                        (action_form(caller, def, instance, state, event, None, notice, false))
                    }
                }
            }
        }
    }
}

/// One event's form: its required fields, a comment box, the step I saw.
#[allow(clippy::too_many_arguments)]
fn action_form(
    caller: &Caller,
    def: &Definition,
    instance: &Instance,
    state: Option<&StateDef>,
    event: &str,
    role: Option<&str>,
    notice: &Notice,
    mine: bool,
) -> Markup {
    let requires = state.map(|s| requires(s, event)).unwrap_or_default();
    let fields = forms::writable_fields(&def.workflow, event, &requires, &instance.data);
    let comment_required = requires.iter().any(|r| r == COMMENT);
    let (typed, comment) = match notice {
        Notice::Refused {
            event: e,
            typed,
            comment,
            ..
        } if *e == event => (Some(typed), comment.as_str()),
        _ => (None, ""),
    };
    let prefix = format!("{}-{event}", if mine { "act" } else { "other" });
    let title = event_title(def, state, event);
    html! {
        form.action method="post" action={ "/instances/" (instance.id) "/fire" } data-event=(event) {
            (csrf_field(caller))
            input type="hidden" name="event" value=(event);
            input type="hidden" name="expected_seq" value=(instance.seq);
            h3 {
                (title) " " code.muted { (event) }
                @if let Some(role) = role { " " span.role title=(role) { (role_title(def, role)) } }
            }
            @for offered in &fields {
                (forms::input(&prefix, offered.name, offered.field, typed.and_then(|t| t.get(offered.name)).map(String::as_str), mine && offered.required))
            }
            label for={ (prefix) "-comment" } {
                "意见 Comment" @if comment_required { span.req title="必填 required" { " *" } }
            }
            textarea id={ (prefix) "-comment" } name="comment" rows="2" required[mine && comment_required] { (comment) }
            button.primary[mine] type="submit" name="submit" value=(event) { (title) }
        }
    }
}

/// Shown values of the instance's data, for [`history::data`].
pub(super) fn field_value(def: &Definition, name: &str, value: &Value) -> String {
    forms::shown(def.workflow.fields.get(name), value)
}
