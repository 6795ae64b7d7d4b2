//! Migrating running instances to a new version of their workflow: the plan (what would
//! happen to each, nothing written) and the apply (each clean instance moved by one `migrate`
//! entry), for a process owner only.
//!
//! The engine streams one plan (or outcome) per instance; the answer keeps at most
//! [`Limits::migration_listed`](crate::server::Limits) of them (500) and says when it left some out (`truncated`), so a store of any size
//! costs the server a bounded answer. The counts in `summary` are always whole.

use super::{Body, Segments, Writer, require_role};
use crate::engine::{CURRENT, EngineError, MigrationRequest, MigrationSummary, Moved};
use crate::machine::migrate::Plan;
use crate::machine::{Entry, Mapping};
use crate::server::AppState;
use crate::server::auth::Caller;
use crate::server::problem::Problem;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::{Arc, Mutex};

/// The most instances a request may name in `only`.
pub const MAX_ONLY: usize = 1_000;

/// The longest comment kept with a migration, in characters.
pub const MAX_COMMENT_CHARS: usize = 2_000;

/// The role that migrates instances.
pub const PROCESS_OWNER: &str = "process_owner";

fn current() -> String {
    CURRENT.to_string()
}

/// The body of `POST /api/workflows/{id}/migration/plan`: which instances, to which version,
/// and how. Every member may be left out: `{}` plans every running instance on an older
/// version to the current one, states kept by name.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanBody {
    /// The version to move to: `current` (the newest in force, the default), a version hash,
    /// or a prefix of one (at least six hex digits).
    #[serde(default = "current")]
    #[schemars(default = "current")]
    pub to: String,
    /// Only instances on this version (a hash or a prefix); every other version when left out.
    #[serde(default)]
    pub from: Option<String>,
    /// How states, fields, signatures and timers move; states keep their names when left out.
    #[serde(default)]
    pub mapping: Option<Mapping>,
    /// Only these instances (ids or readable numbers), at most 1,000; every one when empty.
    #[serde(default)]
    #[schemars(length(max = 1000))]
    pub only: Vec<String>,
    /// Only instances in this state.
    #[serde(default)]
    pub state: Option<String>,
}

/// The body of `POST /api/workflows/{id}/migration/apply`: a plan's members, and why.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyBody {
    /// The version to move to: `current` (the default), a version hash, or a prefix of one.
    #[serde(default = "current")]
    #[schemars(default = "current")]
    pub to: String,
    /// Only instances on this version (a hash or a prefix).
    #[serde(default)]
    pub from: Option<String>,
    /// How states, fields, signatures and timers move.
    #[serde(default)]
    pub mapping: Option<Mapping>,
    /// Only these instances (ids or readable numbers), at most 1,000.
    #[serde(default)]
    #[schemars(length(max = 1000))]
    pub only: Vec<String>,
    /// Only instances in this state.
    #[serde(default)]
    pub state: Option<String>,
    /// Why, recorded in each `migrate` entry (at most 2,000 characters).
    #[serde(default)]
    #[schemars(length(max = 2000))]
    pub comment: Option<String>,
}

/// The answer of a plan.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct MigrationPlan {
    /// Every instance concerned, counted.
    pub summary: MigrationSummary,
    /// What would happen to each instance, at most 500 (see `truncated`).
    pub plans: Vec<Plan>,
    /// More instances were planned than `plans` lists (the summary counts them all).
    pub truncated: bool,
}

/// What an apply did to one instance.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum MigrationOutcome {
    /// Moved by this `migrate` entry.
    Migrated {
        /// The entry committed.
        entry: Box<Entry>,
    },
    /// Left where it is: its plan, with the blockers.
    Blocked {
        /// The plan, with why it is blocked.
        plan: Box<Plan>,
    },
}

impl From<Moved> for MigrationOutcome {
    fn from(moved: Moved) -> MigrationOutcome {
        match moved {
            Moved::Migrated { entry } => MigrationOutcome::Migrated { entry },
            Moved::Blocked { plan } => MigrationOutcome::Blocked { plan },
        }
    }
}

/// The answer of an apply.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct MigrationApplied {
    /// Every instance concerned, counted: `clean` were moved, `blocked` were left.
    pub summary: MigrationSummary,
    /// What happened to each instance, at most 500 (see `truncated`).
    pub outcomes: Vec<MigrationOutcome>,
    /// More instances were concerned than `outcomes` lists (the summary counts them all).
    pub truncated: bool,
}

/// What a plan or an apply asks, whoever asks it.
#[derive(Debug, Clone, Default)]
pub struct Asked {
    pub to: String,
    pub from: Option<String>,
    pub mapping: Option<Mapping>,
    pub only: Vec<String>,
    pub state: Option<String>,
    pub comment: Option<String>,
}

impl From<PlanBody> for Asked {
    fn from(body: PlanBody) -> Asked {
        Asked {
            to: body.to,
            from: body.from,
            mapping: body.mapping,
            only: body.only,
            state: body.state,
            comment: None,
        }
    }
}

impl From<ApplyBody> for Asked {
    fn from(body: ApplyBody) -> Asked {
        Asked {
            to: body.to,
            from: body.from,
            mapping: body.mapping,
            only: body.only,
            state: body.state,
            comment: body.comment,
        }
    }
}

/// A key or filter with a control character: 400 `bad_key`, naming the member.
fn bad_key(field: &str) -> Problem {
    Problem::bad_request(
        "bad_key",
        format!("`{field}` has a control character (a NUL, a line break...)"),
    )
    .with("field", json!(field))
}

fn has_control(text: &str) -> bool {
    text.chars().any(char::is_control)
}

/// The engine's request for `asked`, by `caller`, on `workflow`; malformed members refused
/// before anything is read (control characters, too many instances, a comment too long).
pub fn request(caller: &Caller, workflow: &str, asked: Asked) -> Result<MigrationRequest, Problem> {
    if has_control(workflow) {
        return Err(bad_key("workflow"));
    }
    if has_control(&asked.to) {
        return Err(bad_key("to"));
    }
    if asked.from.as_deref().is_some_and(has_control) {
        return Err(bad_key("from"));
    }
    if asked.state.as_deref().is_some_and(has_control) {
        return Err(bad_key("state"));
    }
    if asked.only.iter().any(|id| has_control(id)) {
        return Err(bad_key("only"));
    }
    if let Some(mapping) = &asked.mapping
        && (mapping
            .states
            .iter()
            .any(|(from, to)| has_control(from) || has_control(to))
            || mapping.set.keys().any(|k| has_control(k)))
    {
        return Err(bad_key("mapping"));
    }
    if asked.only.len() > MAX_ONLY {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_body",
            "Unexpected body",
            format!("`only` names more than {MAX_ONLY} instances; send them in parts"),
        ));
    }
    if asked
        .comment
        .as_deref()
        .is_some_and(|c| c.chars().count() > MAX_COMMENT_CHARS)
    {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_body",
            "Unexpected body",
            format!("`comment` is longer than {MAX_COMMENT_CHARS} characters"),
        ));
    }
    let mut request = MigrationRequest::new(workflow, asked.to, caller.actor());
    request.from = asked.from.filter(|f| !f.is_empty());
    request.mapping = asked.mapping.unwrap_or_default();
    request.only = asked.only;
    request.state = asked.state.filter(|s| !s.is_empty());
    request.comment = asked
        .comment
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty());
    Ok(request)
}

/// Plans `request`, keeping at most `keep` plans: the summary and the plans kept, and whether
/// some were left out.
pub async fn plan_kept(
    state: &AppState,
    request: MigrationRequest,
    keep: usize,
) -> Result<(MigrationSummary, Vec<Plan>, bool), EngineError> {
    let kept = Arc::new(Mutex::new((Vec::new(), false)));
    let into = kept.clone();
    let summary = state
        .engine
        .migration_plan(request, move |plan| {
            let mut kept = into.lock().unwrap_or_else(|e| e.into_inner());
            if kept.0.len() < keep {
                kept.0.push(plan);
            } else {
                kept.1 = true;
            }
        })
        .await?;
    let (plans, truncated) = std::mem::take(&mut *kept.lock().unwrap_or_else(|e| e.into_inner()));
    Ok((summary, plans, truncated))
}

/// Applies `request`, keeping at most `keep` outcomes, and logs what it did.
pub async fn apply_kept(
    state: &AppState,
    caller: &Caller,
    request: MigrationRequest,
    keep: usize,
) -> Result<(MigrationSummary, Vec<MigrationOutcome>, bool), EngineError> {
    let workflow = request.workflow.clone();
    let mut outcomes = Vec::new();
    let mut truncated = false;
    let result = state
        .engine
        .migrate(request, |moved| {
            if outcomes.len() < keep {
                outcomes.push(MigrationOutcome::from(moved));
            } else {
                truncated = true;
            }
        })
        .await;
    match &result {
        Ok(summary) => {
            tracing::info!(
                actor = ?caller.user.id,
                workflow = ?workflow,
                to = ?summary.to_version,
                migrated = summary.clean,
                blocked = summary.blocked,
                "instances migrated"
            );
            state.gates.forget(&workflow);
        }
        Err(err) => tracing::info!(
            actor = ?caller.user.id,
            workflow = ?workflow,
            code = err.code(),
            detail = ?err.to_string(),
            "migration refused or stopped"
        ),
    }
    let summary = result?;
    Ok((summary, outcomes, truncated))
}

/// `POST /api/workflows/{id}/migration/plan`.
pub async fn plan(
    State(state): State<AppState>,
    Writer(caller): Writer,
    Segments(id): Segments<String>,
    Body(body): Body<PlanBody>,
) -> Result<Json<MigrationPlan>, Problem> {
    require_role(&caller, PROCESS_OWNER)?;
    let request = request(&caller, &id, body.into())?;
    let (summary, plans, truncated) =
        plan_kept(&state, request, state.limits.migration_listed).await?;
    Ok(Json(MigrationPlan {
        summary,
        plans,
        truncated,
    }))
}

/// `POST /api/workflows/{id}/migration/apply`: idempotent, since an instance moved is on the
/// target version and a second apply finds it there.
pub async fn apply(
    State(state): State<AppState>,
    Writer(caller): Writer,
    Segments(id): Segments<String>,
    Body(body): Body<ApplyBody>,
) -> Result<Json<MigrationApplied>, Problem> {
    require_role(&caller, PROCESS_OWNER)?;
    let request = request(&caller, &id, body.into())?;
    let (summary, outcomes, truncated) =
        apply_kept(&state, &caller, request, state.limits.migration_listed).await?;
    Ok(Json(MigrationApplied {
        summary,
        outcomes,
        truncated,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::auth::{Credential, Users};

    fn owner() -> Caller {
        let users = Users::parse("users:\n  - id: owner\n    roles: [process_owner]\n")
            .expect("a users file");
        Caller {
            user: users.get("owner").expect("the user").clone(),
            credential: Credential::Session {
                csrf: "t".to_string(),
            },
            lang: crate::i18n::Lang::Zh,
        }
    }

    #[test]
    fn control_characters_long_comments_and_long_lists_are_refused_before_the_engine() {
        let caller = owner();
        let code = |workflow: &str, asked: Asked| {
            request(&caller, workflow, asked)
                .err()
                .map(|p| (p.status.as_u16(), p.code))
        };
        let asked = || Asked {
            to: CURRENT.to_string(),
            ..Asked::default()
        };
        assert_eq!(code("a\u{0}b", asked()), Some((400, "bad_key".into())));
        for bad in [
            Asked {
                to: "abc\ndef".into(),
                ..asked()
            },
            Asked {
                from: Some("\r".into()),
                ..asked()
            },
            Asked {
                state: Some("x\u{7f}".into()),
                ..asked()
            },
            Asked {
                only: vec!["ok".into(), "a\tb".into()],
                ..asked()
            },
            Asked {
                mapping: Some(Mapping {
                    states: [("a\nb".to_string(), "c".to_string())].into(),
                    ..Mapping::default()
                }),
                ..asked()
            },
        ] {
            assert_eq!(code("hot_work_permit", bad), Some((400, "bad_key".into())));
        }
        let many = Asked {
            only: vec!["hot_work_permit-1".into(); MAX_ONLY + 1],
            ..asked()
        };
        assert_eq!(
            code("hot_work_permit", many),
            Some((422, "bad_body".into()))
        );
        let long = Asked {
            comment: Some("长".repeat(MAX_COMMENT_CHARS + 1)),
            ..asked()
        };
        assert_eq!(
            code("hot_work_permit", long),
            Some((422, "bad_body".into()))
        );
        // A comment may have line breaks; blanks are no comment and no filter.
        let fine = request(
            &caller,
            "hot_work_permit",
            Asked {
                comment: Some("第一行\n第二行".into()),
                from: Some(String::new()),
                state: Some(String::new()),
                ..asked()
            },
        )
        .expect("accepted");
        assert_eq!(fine.comment.as_deref(), Some("第一行\n第二行"));
        assert_eq!((fine.from, fine.state), (None, None));
        assert_eq!(fine.actor.id, "owner");
    }
}
