//! The instance page (`GET /instances/{id}`) and its actions (`POST /instances/{id}/fire`).
//!
//! The page shows where the instance stands on its diagram (a list of steps on a phone), its
//! data, whose turn it is and until when, and what I may do now: each of my steps under the
//! title of the branch it would take, and a step of mine that the instance's data keeps
//! closed for now shown disabled with the guard's own words. Steps of other roles have no
//! form; process owners and auditors see a read-only list of who else can act here.
//!
//! A POST always answers with a redirect to this page (post/redirect/get): a refusal's
//! banner and what was typed come back through the flash store, so a reload never posts
//! again.

use super::flash::{self, Flash};
use super::forms::{self, Typed};
use super::history;
use super::{
    Form, Page, csrf_field, csrf_refusal, error_page, html_response, internal, layout, local,
    role_title, short_hash, shows_ids, state_title,
};
use crate::catalog::Definition;
use crate::definition::model::{COMMENT, State as StateDef};
use crate::diagram::{SvgOptions, svg};
use crate::engine::EngineError;
use crate::i18n::Lang;
use crate::machine::{Available, Entry, Instance, Next};
use crate::server::auth::Caller;
use crate::server::problem::Problem;
use crate::server::{AppState, FireInput};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, PreEscaped, html};
use serde_json::Value;

/// What the page says about the last thing I did.
pub(super) enum Notice {
    None,
    /// The step `event` was taken (from `?done=`).
    Done(String),
    /// The engine refused; the form of `event` shows what was typed.
    Refused {
        problem: Problem,
        event: String,
        typed: Typed,
        comment: String,
    },
}

#[derive(Debug, serde::Deserialize)]
pub struct Shown {
    done: Option<String>,
    flash: Option<String>,
}

/// `GET /instances/{id}`.
pub async fn page(
    State(state): State<AppState>,
    Page(caller): Page,
    Path(id): Path<String>,
    Query(shown): Query<Shown>,
) -> Response {
    let flashed = shown
        .flash
        .as_deref()
        .and_then(|token| state.flashes.get(&caller, token));
    let notice = match (flashed, shown.done) {
        (
            Some(Flash::Refused {
                problem,
                event,
                typed,
                comment,
            }),
            _,
        ) => Notice::Refused {
            problem,
            event,
            typed,
            comment,
        },
        (_, Some(done)) => Notice::Done(done),
        _ => Notice::None,
    };
    render(&state, &caller, &id, notice).await
}

/// `POST /instances/{id}/fire`: fires the form's event with its fields and comment, as the
/// signed-in person, at the step the page showed (`expected_seq`); then back to the page.
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
        Err(err) => return engine_error(&state, &caller, err),
    };
    let def = match state.engine.definition(&instance.version) {
        Ok(def) => def,
        Err(err) => return internal(&state, &caller, err),
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
    // The instance was read above, so `id` is a stored instance's id.
    let page = format!("/instances/{id}");
    match state.fire(&caller, &id, input).await {
        Ok(_) => Redirect::to(&format!(
            "{page}?{}",
            serde_urlencoded::to_string([("done", event.as_str())]).unwrap_or_default()
        ))
        .into_response(),
        Err(problem) if problem.status == StatusCode::NOT_FOUND => {
            error_page(&state, &caller, &problem)
        }
        Err(problem) if problem.status.is_server_error() => error_page(&state, &caller, &problem),
        Err(problem) => {
            let token = state.flashes.put(
                &caller,
                Flash::Refused {
                    problem,
                    event,
                    typed: forms::typed(&form),
                    comment: form.get("comment").unwrap_or_default().to_string(),
                },
            );
            Redirect::to(&flash::with_token(&page, token)).into_response()
        }
    }
}

/// An engine error as a page: an unknown instance is a 404, anything else the engine's own
/// status.
fn engine_error(state: &AppState, caller: &Caller, err: EngineError) -> Response {
    let problem = Problem::from(err);
    if problem.status.is_server_error() {
        tracing::error!(actor = ?caller.user.id, detail = ?problem.detail, "console page failed");
    }
    error_page(state, caller, &problem)
}

/// What the page needs besides the instance: who reads it, in which language, and whether
/// they read ids (an auditor).
pub(super) struct Reader<'a> {
    pub caller: &'a Caller,
    pub lang: Lang,
    pub ids: bool,
    /// The process owner's title (the role list's), for the migrations in the history.
    pub owner: String,
}

impl Reader<'_> {
    pub(super) fn t(&self, id: &str) -> String {
        self.lang.text(id)
    }
}

/// The whole page.
async fn render(state: &AppState, caller: &Caller, id: &str, notice: Notice) -> Response {
    let instance = match state.instance(caller, id).await {
        Ok(instance) => instance,
        Err(err) => return engine_error(state, caller, err),
    };
    let def = match state.engine.definition(&instance.version) {
        Ok(def) => def,
        Err(err) => return internal(state, caller, err),
    };
    let history = match state.history(caller, id).await {
        Ok(history) => history,
        Err(err) => return engine_error(state, caller, err),
    };
    let overdue = state.engine.is_overdue(&instance).await.unwrap_or(false);
    let offered = match state
        .engine
        .offered_on(def.clone(), instance.clone(), caller.actor())
        .await
    {
        Ok(offered) => offered,
        Err(err) => return engine_error(state, caller, err),
    };
    let next = match state.engine.next_on(def.clone(), instance.clone()).await {
        Ok(next) => next,
        Err(err) => return engine_error(state, caller, err),
    };
    let chain = crate::audit::chain::approval_chain(&history, |v| state.engine.definition(v).ok());
    // `?done=` comes from the address bar: it is confirmed only by the last step itself.
    let notice = match notice {
        Notice::Done(event) if history.last().is_none_or(|e| e.event != event) => Notice::None,
        other => other,
    };
    let now = state.engine.now();
    let reader = Reader {
        caller,
        lang: caller.lang,
        ids: shows_ids(caller),
        owner: super::role_titles(state, &[super::PROCESS_OWNER.to_string()])
            .into_iter()
            .map(|(_, title)| title)
            .next()
            .unwrap_or_default(),
    };
    // Children by the title of their own workflow.
    let children: Vec<history::Related> = instance
        .children
        .iter()
        .map(|child| history::Related {
            id: child.id.clone(),
            number: child.number.clone(),
            workflow: child.workflow.clone(),
            title: state
                .engine
                .definition_of(&child.workflow)
                .map_or_else(|| child.workflow.clone(), |d| d.workflow.title.clone()),
            finished_in: child.finished_in.clone(),
        })
        .collect();
    // The parent by its workflow's title and its readable number, like the children.
    let parent = match &instance.parent {
        Some(parent_id) => {
            let parent = state.engine.get(parent_id).await.ok();
            Some(history::Related {
                id: parent_id.clone(),
                number: parent.as_ref().and_then(|p| p.number.clone()),
                workflow: parent
                    .as_ref()
                    .map(|p| p.workflow.to_string())
                    .unwrap_or_default(),
                title: parent
                    .as_ref()
                    .and_then(|p| state.engine.definition_of(&p.workflow))
                    .map_or_else(String::new, |d| d.workflow.title.clone()),
                finished_in: None,
            })
        }
        None => None,
    };
    let workflow_title = |id: &str| {
        state
            .engine
            .definition_of(id)
            .map(|d| d.workflow.title.clone())
    };
    let people = |id: &str| state.users().get(id).map(|u| u.name.clone());
    // The versions of the history's entries, loaded when it was read.
    let versions = |hash: &str| state.engine.definition(hash).ok();
    let title = def.workflow.title.clone();
    let body = html! {
        (header(&reader, &def, &instance, overdue))
        (notice_banner(&reader, &def, &instance, &notice))
        (whose_turn(&reader, &def, &instance, &next, &offered, &children, now))
        div.columns.wide-left {
            section.card.diagram #diagram {
                h2 { (reader.t("console-instance-diagram")) }
                (diagram(&reader, &def, &instance, &history, &workflow_title))
            }
            div {
                (actions(&reader, &def, &instance, &offered, &next, &notice))
                (history::data(&reader, &def, &instance, &people))
            }
        }
        (history::timers(&reader, &def, &instance, now))
        (history::family(&reader, parent.as_ref(), &children))
        @if let Some(chain) = &chain { (history::chain(&reader, chain, &history, &versions, &people)) }
        (history::entries(&reader, &def, &history, &versions, &people))
    };
    html_response(StatusCode::OK, layout(state, caller, &title, body))
}

fn header(reader: &Reader, def: &Definition, instance: &Instance, overdue: bool) -> Markup {
    let t = |id: &str| reader.t(id);
    html! {
        section.card.head {
            p.muted { a href="/" { (t("console-layout-nav-tasks")) } " / " a href="/instances" { (t("console-layout-nav-instances")) } " / " code { (instance.number.as_deref().unwrap_or(&instance.id)) } }
            h1 { (def.workflow.title) }
            dl.facts {
                dt { (t("console-instance-state")) }
                dd {
                    span.state #state-title data-state=(instance.state) { (state_title(def, &instance.state)) }
                    @if instance.finished { " " span.badge #finished { (t("console-instance-finished")) } }
                    @if overdue { " " span.badge.danger #overdue { (t("console-instance-overdue")) } }
                }
                @if let Some(number) = &instance.number {
                    dt { (t("console-search-col-number")) } dd { strong #number { (number) } " " code.muted { (instance.id) } }
                }
                dt { (t("console-inbox-col-key")) } dd { (instance.business_key.as_deref().unwrap_or("—")) }
                dt { (t("console-inbox-col-started")) } dd { (local(instance.created)) }
                dt { (t("console-search-col-updated")) } dd { (local(instance.updated)) " · " (reader.lang.count("console-instance-step-count", i64::try_from(instance.seq).unwrap_or(i64::MAX), &[])) }
                dt { (t("console-instance-version")) }
                dd {
                    a href={ "/workflows/" (instance.workflow) "?version=" (instance.version) } title=(instance.version) {
                        code #version { (short_hash(&instance.version)) }
                    }
                }
            }
        }
    }
}

fn notice_banner(
    reader: &Reader,
    def: &Definition,
    instance: &Instance,
    notice: &Notice,
) -> Markup {
    let lang = reader.lang;
    let state = state_title(def, &instance.state);
    match notice {
        Notice::None => html! {},
        Notice::Done(event) if event == "start" => html! {
            div.banner.ok #flash { (lang.text_with("console-instance-started", &[("state", &state)])) }
        },
        Notice::Done(event) => html! {
            div.banner.ok #flash data-event=(event) {
                (lang.text_with("console-instance-done", &[("event", &event_title(lang, Some(def), None, event)), ("state", &state)]))
            }
        },
        Notice::Refused { problem, .. } => refusal_banner(lang, problem),
    }
}

/// The engine's refusal in the caller's words, and the fact that nothing was written.
pub(super) fn refusal_banner(lang: Lang, problem: &Problem) -> Markup {
    html! {
        // The code stays in the markup for scripts and tests; the person reads the message.
        div.banner.error #refusal data-code=(problem.code) role="alert" {
            strong { (lang.text("console-refusal-heading")) }
            p { (problem.message()) }
            p.muted { (lang.text("nothing-written")) }
        }
    }
}

/// Whose turn it is: the roles (by title) that may take each open step, the approval's
/// signers still to sign, the children awaited, and the deadlines with the working time
/// left.
fn whose_turn(
    reader: &Reader,
    def: &Definition,
    instance: &Instance,
    next: &Next,
    offered: &[Available],
    children: &[history::Related],
    now: chrono::DateTime<chrono::Utc>,
) -> Markup {
    if instance.finished {
        return html! {};
    }
    let lang = reader.lang;
    let t = |id: &str| lang.text(id);
    // Steps in order, each with the titles of the roles that may take it.
    let mut steps: Vec<(&str, String, Vec<&str>)> = Vec::new();
    for turn in &next.turns {
        let title = turn
            .title
            .clone()
            .unwrap_or_else(|| event_title(lang, Some(def), Some(&instance.state), &turn.event));
        match steps
            .iter_mut()
            .find(|(e, t, _)| *e == turn.event && *t == title)
        {
            Some((_, _, roles)) => roles.push(&turn.role_title),
            None => steps.push((&turn.event, title, vec![&turn.role_title])),
        }
    }
    let mine = |event: &str| {
        offered
            .iter()
            .any(|a| a.event == event && a.blocked.is_none())
    };
    html! {
        section.card #next {
            h2 { (t("console-next-heading")) }
            ul.turns {
                @for (event, title, roles) in &steps {
                    li data-event=(event) {
                        (lang.text_with("console-next-waiting-for", &[("roles", &lang.list(roles)), ("step", title)]))
                        @if mine(event) { " " span.badge.ok { (t("console-next-you-too")) } }
                    }
                }
                @if !next.children.is_empty() {
                    li #awaiting-children {
                        (t("console-next-waiting-children")) " "
                        @for child in &next.children {
                            @let related = children.iter().find(|c| c.id == *child);
                            a href={ "/instances/" (child) } data-workflow=[related.map(|c| c.workflow.as_str())] {
                                @if let Some(related) = related { (related.title) " " }
                                code { (child) }
                            }
                            " "
                        }
                    }
                }
                @if steps.is_empty() && next.children.is_empty() {
                    li.muted { (t("console-next-nobody")) }
                }
            }
            @if !next.timers.is_empty() {
                ul.deadlines {
                    @for timer in &next.timers {
                        li.overdue[timer.due <= now] data-timer=(timer.id) data-event=(timer.event) {
                            (t("console-deadline")) " "
                            strong { (timer.title.clone().unwrap_or_else(|| t("console-deadline-untitled"))) } " "
                            (super::local_in(def, timer.due)) " · "
                            span.left { (super::working_left(lang, def, timer.due, now)) }
                        }
                    }
                }
            }
        }
    }
}

fn diagram(
    reader: &Reader,
    def: &Definition,
    instance: &Instance,
    history: &[Entry],
    workflow_title: &dyn Fn(&str) -> Option<String>,
) -> Markup {
    let mut visited: Vec<String> = Vec::new();
    for entry in history {
        for state in entry.from.iter().chain(std::iter::once(&entry.to)) {
            if *state != instance.state && !visited.iter().any(|v| v == state) {
                visited.push(state.to_string());
            }
        }
    }
    let drawing = svg(
        &def.workflow,
        &SvgOptions {
            current: Some(&instance.state),
            visited: &visited,
            link: None,
            titles_only: !reader.ids,
            child_title: Some(workflow_title),
        },
    );
    // The steps as a list, for a screen too narrow for the drawing: the states in the order
    // they were reached, then the current one, then the rest as declared.
    // A state of an older version (left by a migration) is not in this one's drawing, nor here.
    let mut order: Vec<&str> = Vec::new();
    for entry in history {
        for state in entry.from.iter().chain(std::iter::once(&entry.to)) {
            if !order.contains(&state.as_str()) && def.workflow.states.get(state).is_some() {
                order.push(state);
            }
        }
    }
    for (state, _) in def.workflow.states.iter() {
        if !order.contains(&state.as_str()) {
            order.push(state.as_str());
        }
    }
    // The SVG is generated from the definition by `crate::diagram::svg`, which escapes its
    // text itself.
    html! {
        div.svg-wrap { (PreEscaped(drawing)) }
        ol.steps #step-list {
            @for state in &order {
                @let current = *state == instance.state;
                @let done = !current && visited.iter().any(|v| v == state);
                li.current[current].visited[done] data-state=(state) {
                    (state_title(def, state))
                    @if current { " " span.badge { (reader.t("console-instance-here")) } }
                }
            }
        }
    }
}

/// An event's title in `state` (in any state when `None`), as [`crate::i18n::event_title`].
pub(super) fn event_title(
    lang: Lang,
    def: Option<&Definition>,
    state: Option<&str>,
    event: &str,
) -> String {
    crate::i18n::event_title(lang, def.map(|d| &d.workflow), state, event)
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

/// Whether the caller may see who else can act on an instance: its process owners and
/// auditors.
fn oversees(caller: &Caller) -> bool {
    caller.user.has_role(super::audit::AUDITOR) || caller.user.has_role(super::PROCESS_OWNER)
}

fn actions(
    reader: &Reader,
    def: &Definition,
    instance: &Instance,
    offered: &[Available],
    next: &Next,
    notice: &Notice,
) -> Markup {
    let t = |id: &str| reader.t(id);
    let open: Vec<&Available> = offered.iter().filter(|a| a.blocked.is_none()).collect();
    let blocked: Vec<&Available> = offered.iter().filter(|a| a.blocked.is_some()).collect();
    // Who else can act here, for those who oversee the process: steps not mine, by role.
    let others: Vec<&crate::machine::Turn> = next
        .turns
        .iter()
        .filter(|t| !open.iter().any(|a| a.event == t.event))
        .collect();
    html! {
        section.card #actions {
            h2 { (t("console-actions-heading")) }
            @if instance.finished {
                p.muted { (t("console-actions-finished")) }
            } @else if open.is_empty() && blocked.is_empty() {
                p.muted #no-actions { (t("console-actions-nothing")) }
            }
            div #my-actions {
                @for action in &open {
                    (action_form(reader, def, instance, action, notice))
                }
            }
            @if !blocked.is_empty() {
                div #blocked-actions {
                    @for action in &blocked {
                        (blocked_form(reader, def, instance, action))
                    }
                }
            }
            @if oversees(reader.caller) && !others.is_empty() {
                details #other-actions {
                    summary { (t("console-actions-others")) " " span.muted { "(" (others.len()) ")" } }
                    p.muted { (t("console-actions-others-note")) }
                    ul.others {
                        @for turn in &others {
                            li data-event=(turn.event) data-role=(turn.role) {
                                (turn.title.clone().unwrap_or_else(|| event_title(reader.lang, Some(def), Some(&instance.state), &turn.event)))
                                " · " span.role { (turn.role_title) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A step of mine that the instance's data keeps closed for now: shown, disabled, with what
/// its guard says.
fn blocked_form(
    reader: &Reader,
    def: &Definition,
    instance: &Instance,
    action: &Available,
) -> Markup {
    let t = |id: &str| reader.t(id);
    let title = action.title.clone().unwrap_or_else(|| {
        event_title(reader.lang, Some(def), Some(&instance.state), &action.event)
    });
    let reasons = action.blocked.as_deref().unwrap_or_default();
    html! {
        form.action.blocked data-event=(action.event) aria-disabled="true" {
            h3 {
                (title) " " span.role data-role=(action.role) { (role_title(def, &action.role)) }
            }
            div.banner.warn.why role="note" {
                strong { (t("console-actions-blocked")) }
                @if reasons.is_empty() {
                    p { (t("console-actions-blocked-no-reason")) }
                } @else {
                    @for reason in reasons { p { (reason) } }
                }
            }
            button type="button" disabled { (title) }
        }
    }
}

/// One event's form: its fields (required ones marked and checked by the browser before it
/// posts; the engine checks again), a comment box, the step I saw.
fn action_form(
    reader: &Reader,
    def: &Definition,
    instance: &Instance,
    action: &Available,
    notice: &Notice,
) -> Markup {
    let lang = reader.lang;
    let t = |id: &str| lang.text(id);
    let event = action.event.as_str();
    let state = def.workflow.states.get(&instance.state);
    let requires = state.map(|s| requires(s, event)).unwrap_or_default();
    let fields = forms::writable_fields(&def.workflow, event, &requires, &instance.data);
    let comment_required = requires.iter().any(|r| r == COMMENT);
    let (typed, comment) = match notice {
        Notice::Refused {
            event: e,
            typed,
            comment,
            ..
        } if e == event => (Some(typed), comment.as_str()),
        _ => (None, ""),
    };
    let prefix = format!("act-{event}");
    let title = action
        .title
        .clone()
        .unwrap_or_else(|| event_title(lang, Some(def), Some(&instance.state), event));
    html! {
        form.action method="post" action={ "/instances/" (instance.id) "/fire" } data-event=(event) {
            (csrf_field(reader.caller))
            input type="hidden" name="event" value=(event);
            input type="hidden" name="expected_seq" value=(instance.seq);
            h3 {
                (title) " "
                span.role data-role=(action.role) { (role_title(def, &action.role)) }
            }
            @for offered in &fields {
                (forms::input(lang, &prefix, offered.name, offered.field, typed.and_then(|t| t.get(offered.name)).map(String::as_str), offered.required))
            }
            label for={ (prefix) "-comment" } {
                (t("console-form-comment")) @if comment_required { span.req title=(t("console-form-required")) { " *" } }
            }
            textarea id={ (prefix) "-comment" } name="comment" rows="2" maxlength=(crate::definition::model::DEFAULT_TEXT_LENGTH) required[comment_required] { (comment) }
            button.primary type="submit" name="submit" value=(event) { (title) }
        }
    }
}

/// Shown values of the instance's data, for [`history::data`].
pub(super) fn field_value(lang: Lang, def: &Definition, name: &str, value: &Value) -> String {
    forms::shown(lang, def.workflow.fields.get(name), value)
}
