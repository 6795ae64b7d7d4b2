//! Migrating running instances to the version in force, for a process owner:
//! `GET /workflows/{id}/migration` shows each instance's plan in the reader's words
//! (`i18n::plan_lines`), clean ones and blocked ones apart, with a state mapping for the
//! states the new version no longer has; `POST /workflows/{id}/migration` moves the clean
//! ones (CSRF token, post/redirect/get, the result as a flash message).
//!
//! The workflow page shows the deploy gate ([`gate`]): how many running instances stay on
//! older versions, and how many of them have a clean plan, with a link here.

use super::flash::{self, Flash};
use super::{
    Form, Page, csrf_field, csrf_refusal, error_page, html_response, internal, layout, local,
    role_titles, short_hash, state_title,
};
use crate::catalog::Definition;
use crate::engine::{CURRENT, MigrationSummary};
use crate::i18n::{self, Lang};
use crate::machine::Mapping;
use crate::machine::migrate::{Blocker, Plan};
use crate::server::AppState;
use crate::server::api::migration::{self as api, Asked};
use crate::server::auth::Caller;
use crate::server::problem::Problem;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use std::collections::BTreeSet;

/// The role that migrates.
pub const PROCESS_OWNER: &str = super::PROCESS_OWNER;

/// How many plans the page lists (all are counted).
const SHOWN_PLANS: usize = 200;

/// The prefix of a state mapping's form and query fields: `map.{old state}` = new state.
const MAP: &str = "map.";

/// The refusal of someone who is not a process owner (`None` for one).
fn not_owner(state: &AppState, caller: &Caller) -> Option<Response> {
    if caller.user.has_role(PROCESS_OWNER) {
        return None;
    }
    let owner = role_titles(state, &[PROCESS_OWNER.to_string()])
        .into_iter()
        .map(|(_, title)| title)
        .next()
        .unwrap_or_else(|| PROCESS_OWNER.to_string());
    let problem = Problem::forbidden(
        "missing_role",
        format!(
            "migrating instances is for the `{PROCESS_OWNER}` role, which `{}` does not have",
            caller.user.id
        ),
    )
    .explained(Some(
        caller
            .lang
            .text_with("console-migration-not-owner", &[("owner", &owner)]),
    ));
    Some(error_page(state, caller, &problem))
}

/// The state mapping a form or a query string gives: `map.{old}` = `{new}`, blanks left out.
fn mapping_of(pairs: &[(String, String)]) -> Mapping {
    let mut mapping = Mapping::default();
    for (key, value) in pairs {
        if let Some(old) = key.strip_prefix(MAP)
            && !old.is_empty()
            && !value.trim().is_empty()
        {
            mapping
                .states
                .insert(old.to_string(), value.trim().to_string());
        }
    }
    mapping
}

/// For the workflow page of a process owner: the deploy gate, with a link to the plans.
pub(super) async fn gate_card(state: &AppState, caller: &Caller, def: &Definition) -> Markup {
    if !caller.user.has_role(PROCESS_OWNER) {
        return html! {};
    }
    let lang = caller.lang;
    let t = |id: &str| lang.text(id);
    let gate = match state.gate(def.id()).await {
        Ok(gate) => gate,
        Err(err) => {
            tracing::warn!(workflow = ?def.id(), error = ?err.to_string(), "cannot count the deploy gate");
            return html! {};
        }
    };
    let older = gate.older.to_string();
    let clean = gate.clean.to_string();
    html! {
        section.card #migration-gate data-older=(gate.older) data-clean=(gate.clean) {
            h2 { (t("console-migration-gate-heading")) }
            @if gate.older == 0 {
                p.ok { (t("console-migration-gate-none")) }
            } @else {
                p.warn { (lang.text_with("console-migration-gate", &[("older", &older), ("clean", &clean)])) }
                p { a #migration-link href={ "/workflows/" (def.id()) "/migration" } { (t("console-migration-open")) } }
            }
            p.muted { small { (lang.text_with("console-migration-gate-at", &[("at", &local(gate.at))])) } }
        }
    }
}

/// `GET /workflows/{id}/migration`: the plans, and the form that applies the clean ones.
pub async fn page(
    State(state): State<AppState>,
    Page(caller): Page,
    Path(id): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    if let Some(refused) = not_owner(&state, &caller) {
        return refused;
    }
    let lang = caller.lang;
    let Some(def) = state.engine.definition_of(&id) else {
        return error_page(
            &state,
            &caller,
            &Problem::not_found(
                "unknown_workflow",
                format!("there is no workflow `{id}` in force"),
            )
            .explained(Some(lang.text("console-error-unknown-workflow"))),
        );
    };
    let mapping = mapping_of(&query);
    let flashed = query
        .iter()
        .find(|(k, _)| k == "flash")
        .and_then(|(_, token)| state.flashes.get(&caller, token));
    let asked = Asked {
        to: CURRENT.to_string(),
        mapping: Some(mapping.clone()),
        ..Asked::default()
    };
    let request = match api::request(&caller, &id, asked) {
        Ok(request) => request,
        Err(problem) => return error_page(&state, &caller, &problem),
    };
    let (summary, plans, truncated) = match api::plan_kept(&state, request, SHOWN_PLANS).await {
        Ok(planned) => planned,
        // A mapping the version refuses (a state it lacks): said, and the plan without it.
        Err(err) if err.is_caller_mistake() => {
            return error_page(&state, &caller, &Problem::from(err));
        }
        Err(err) => return internal(&state, &caller, err),
    };
    let body = content(
        &state, &caller, &def, &mapping, &summary, &plans, truncated, flashed,
    );
    let title = format!(
        "{} · {}",
        lang.text("console-migration-title"),
        def.workflow.title
    );
    html_response(StatusCode::OK, layout(&state, &caller, &title, body))
}

/// `POST /workflows/{id}/migration`: moves the instances whose plan is clean, then back to
/// the plan page with what happened.
pub async fn apply(
    State(state): State<AppState>,
    Page(caller): Page,
    Path(id): Path<String>,
    form: Form,
) -> Response {
    if let Some(refused) = not_owner(&state, &caller) {
        return refused;
    }
    if let Some(refused) = csrf_refusal(&state, &caller, &form) {
        return refused;
    }
    let mapping = mapping_of(form.pairs());
    let asked = Asked {
        to: form.text("to").unwrap_or(CURRENT).to_string(),
        mapping: Some(mapping.clone()),
        comment: form.text("comment").map(str::to_string),
        ..Asked::default()
    };
    let result = match api::request(&caller, &id, asked) {
        Ok(request) => api::apply_kept(&state, &caller, request, 0)
            .await
            .map(|(summary, _, _)| summary)
            .map_err(Problem::from),
        Err(problem) => Err(problem),
    };
    let flash = match result {
        Ok(summary) => Flash::Migrated(summary),
        Err(problem) => Flash::MigrationRefused(problem),
    };
    let token = state.flashes.put(&caller, flash);
    let mut back = format!("/workflows/{}/migration", urlencoding(&id));
    let query: Vec<(String, &String)> = mapping
        .states
        .iter()
        .map(|(old, new)| (format!("{MAP}{old}"), new))
        .collect();
    if !query.is_empty() {
        back.push('?');
        back.push_str(&serde_urlencoded::to_string(&query).unwrap_or_default());
    }
    Redirect::to(&flash::with_token(&back, token)).into_response()
}

/// A path segment, percent-encoded.
fn urlencoding(segment: &str) -> String {
    serde_urlencoded::to_string([("", segment)])
        .unwrap_or_default()
        .trim_start_matches('=')
        .replace('+', "%20")
}

#[allow(clippy::too_many_arguments)]
fn content(
    state: &AppState,
    caller: &Caller,
    def: &Definition,
    mapping: &Mapping,
    summary: &MigrationSummary,
    plans: &[Plan],
    truncated: bool,
    flashed: Option<Flash>,
) -> Markup {
    let lang = caller.lang;
    let t = |id: &str| lang.text(id);
    let (clean, blocked): (Vec<&Plan>, Vec<&Plan>) = plans.iter().partition(|p| p.is_clean());
    // The states the instances are in that the new version does not have.
    let missing: BTreeSet<&str> = plans
        .iter()
        .flat_map(|p| p.blockers.iter())
        .filter_map(|b| match b {
            Blocker::StateRemoved { state } => Some(state.as_str()),
            _ => None,
        })
        .chain(
            mapping
                .states
                .keys()
                .map(String::as_str)
                .filter(|s| def.workflow.states.get(s).is_none()),
        )
        .collect();
    let count = |n: u64| n.to_string();
    html! {
        section.card.head {
            p.muted {
                a href="/workflows" { (t("console-layout-nav-workflows")) } " / "
                a href={ "/workflows/" (def.id()) } { (def.workflow.title) }
            }
            h1 { (t("console-migration-heading")) }
            p { (lang.text_with("console-migration-version", &[("version", short_hash(&def.hash))])) }
            @match &flashed {
                Some(Flash::Migrated(done)) => {
                    div.banner.ok #migration-done data-migrated=(done.clean) data-blocked=(done.blocked) role="status" {
                        (lang.text_with("console-migration-done", &[("clean", &count(done.clean)), ("blocked", &count(done.blocked))]))
                    }
                }
                Some(Flash::MigrationRefused(problem)) => {
                    div.banner.error #migration-refused data-code=(problem.code) role="alert" {
                        (refused_text(lang, problem))
                    }
                }
                _ => {}
            }
            p #migration-summary data-considered=(summary.considered) data-clean=(summary.clean) data-blocked=(summary.blocked) {
                @if summary.considered == 0 {
                    (t("console-migration-none"))
                } @else {
                    (lang.text_with("console-migration-summary", &[
                        ("considered", &count(summary.considered)),
                        ("clean", &count(summary.clean)),
                        ("blocked", &count(summary.blocked)),
                    ]))
                }
            }
            @if truncated {
                p.muted #migration-truncated { (lang.text_with("console-migration-truncated", &[("shown", &SHOWN_PLANS.to_string())])) }
            }
        }
        @if !missing.is_empty() {
            section.card #migration-mapping {
                h2 { (t("console-migration-mapping-heading")) }
                p.muted { (t("console-migration-mapping-note")) }
                form method="get" action={ "/workflows/" (def.id()) "/migration" } {
                    @for old in &missing {
                        @let old_title = old_state_title(state, plans, old);
                        label {
                            (old_title) " → "
                            select name={ (MAP) (old) } {
                                option value="" { (t("console-migration-mapping-keep")) }
                                @for (name, s) in def.workflow.states.iter().filter(|(_, s)| !s.is_final) {
                                    option value=(name.as_str()) selected[mapping.states.get(*old).map(String::as_str) == Some(name.as_str())] {
                                        (s.title.as_deref().unwrap_or(name.as_str()))
                                    }
                                }
                            }
                        }
                        br;
                    }
                    button type="submit" #migration-remap { (t("console-migration-mapping-submit")) }
                }
            }
        }
        @if summary.clean > 0 {
            section.card #migration-apply {
                h2 { (t("console-migration-apply-heading")) }
                form method="post" action={ "/workflows/" (def.id()) "/migration" } {
                    (csrf_field(caller))
                    input type="hidden" name="to" value=(def.hash);
                    @for (old, new) in &mapping.states {
                        input type="hidden" name={ (MAP) (old) } value=(new);
                    }
                    label for="migration-comment" { (t("console-migration-comment")) }
                    textarea #migration-comment name="comment" maxlength="2000" rows="2" {}
                    button.primary type="submit" #migration-submit {
                        (lang.text_with("console-migration-apply-submit", &[("clean", &count(summary.clean))]))
                    }
                }
            }
        }
        (plan_list(state, lang, def, "migration-clean", &t("console-migration-clean-heading"), &clean))
        (plan_list(state, lang, def, "migration-blocked", &t("console-migration-blocked-heading"), &blocked))
    }
}

/// A state's title in the version an instance of `plans` runs on now.
fn old_state_title(state: &AppState, plans: &[Plan], old: &str) -> String {
    plans
        .iter()
        .find(|p| p.state == old)
        .and_then(|p| state.engine.definition(&p.from_version).ok())
        .map_or_else(|| old.to_string(), |d| state_title(&d, old))
}

/// What a refused apply says, in the reader's words where the server has them.
fn refused_text(lang: Lang, problem: &Problem) -> String {
    if problem.extra.contains_key("message") || lang == Lang::En {
        return problem.message().to_string();
    }
    lang.text(match problem.code.as_str() {
        "bad_mapping" => "console-migration-bad-mapping",
        _ => "console-error-general",
    })
}

fn plan_list(
    state: &AppState,
    lang: Lang,
    new: &Definition,
    id: &str,
    heading: &str,
    plans: &[&Plan],
) -> Markup {
    if plans.is_empty() {
        return html! {};
    }
    html! {
        section.card id=(id) {
            h2 { (heading) " " span.count { (plans.len()) } }
            ul.plans {
                @for plan in plans {
                    li data-instance=(plan.instance) data-from=(plan.from_version) {
                        a href={ "/instances/" (plan.instance) } {
                            strong { (plan.number.as_deref().unwrap_or(&plan.instance)) }
                        }
                        " " small.muted { code title=(plan.from_version) { (short_hash(&plan.from_version)) } " → " code title=(plan.to_version) { (short_hash(&plan.to_version)) } }
                        @match state.engine.definition(&plan.from_version) {
                            Ok(old) => {
                                ul { @for line in i18n::plan_lines(lang, &old, new, plan) { li { (line) } } }
                            }
                            Err(_) => {
                                p.muted { (lang.text("console-error-general")) }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_mapping_is_read_from_its_fields_blanks_left_out() {
        let pairs: Vec<(String, String)> = [
            ("map.drafted", " draft "),
            ("map.review", ""),
            ("map.", "x"),
            ("comment", "why"),
            ("_csrf", "t"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let mapping = mapping_of(&pairs);
        assert_eq!(
            mapping.states.into_iter().collect::<Vec<_>>(),
            vec![("drafted".to_string(), "draft".to_string())]
        );
        assert!(mapping.set.is_empty());
    }

    #[test]
    fn a_path_segment_is_encoded() {
        assert_eq!(urlencoding("hot_work_permit"), "hot_work_permit");
        assert_eq!(urlencoding("a b/c?\n"), "a%20b%2Fc%3F%0A");
    }
}
