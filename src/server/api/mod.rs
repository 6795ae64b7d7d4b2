//! The JSON HTTP API under `/api` (and `/metrics`).
//!
//! Every route is listed once, in [`openapi::ROUTES`]: the router is built from that table
//! (path and method), and so is the OpenAPI document, so the two cannot drift apart. The
//! handler of each [`openapi::Op`] is chosen here by an exhaustive `match`.
//!
//! Handlers answer JSON, or a [`Problem`] (`application/problem+json` with a stable `code`)
//! for anything that goes wrong, including malformed requests: the extractors ([`Body`],
//! [`Params`], [`Segments`], [`Writer`]) turn axum's rejections into problems so that no
//! handler repeats that mapping.

mod audit;
pub mod events;
mod extract;
mod instances;
mod meta;
pub(crate) mod migration;
mod notices;
pub mod openapi;
mod schemas;
mod table;
mod workflows;

pub use extract::{Body, CSRF_HEADER, Params, Segments, Writer, read_body};

use super::AppState;
use super::auth::Caller;
use super::problem::Problem;
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{MethodFilter, MethodRouter, on};
use openapi::{Op, ROUTES, Verb};
use serde_json::json;

/// The API's routes, with a problem for a known path asked with the wrong method.
pub fn routes() -> Router<AppState> {
    let mut router = Router::new();
    for route in ROUTES {
        let filter = match route.verb {
            Verb::Get => MethodFilter::GET,
            Verb::Post => MethodFilter::POST,
        };
        // A path listed twice (GET and POST) is merged by axum into one method router.
        router = router.route(route.path, handler(route.op, filter));
    }
    // Set after the routes: it applies to the method routers already added.
    router.method_not_allowed_fallback(method_not_allowed)
}

/// The handler of each operation.
fn handler(op: Op, filter: MethodFilter) -> MethodRouter<AppState> {
    match op {
        Op::Health => on(filter, meta::health),
        Op::OpenApi => on(filter, openapi::document),
        Op::Metrics => on(filter, meta::metrics),
        Op::Me => on(filter, meta::me),
        Op::Validation => on(filter, meta::validation),
        Op::Reload => on(filter, meta::reload),
        Op::Workflows => on(filter, workflows::list),
        Op::Workflow => on(filter, workflows::detail),
        Op::Diagram => on(filter, workflows::diagram),
        Op::WorkflowVersions => on(filter, workflows::versions),
        Op::MigrationPlan => on(filter, migration::plan),
        Op::MigrationApply => on(filter, migration::apply),
        Op::Version => on(filter, workflows::version),
        Op::Start => on(filter, instances::start),
        Op::Fire => on(filter, instances::fire),
        Op::Instance => on(filter, instances::get),
        Op::Instances => on(filter, instances::list),
        Op::Tasks => on(filter, instances::tasks),
        Op::Events => on(filter, events::stream),
        Op::History => on(filter, instances::history),
        Op::Chain => on(filter, instances::chain),
        Op::Verify => on(filter, audit::verify),
        Op::Export => on(filter, audit::export),
        Op::Problems => on(filter, meta::problem_types),
        Op::ProblemType => on(filter, meta::problem_type),
        Op::Notices => on(filter, notices::list),
        Op::NoticesRead => on(filter, notices::read),
        Op::DeadLetters => on(filter, notices::dead),
        Op::DeadLettersRetry => on(filter, notices::retry),
    }
}

/// 405 as a problem; axum adds the `Allow` header. Public so that the whole router (the
/// console too) can use it.
pub async fn method_not_allowed(request: Request) -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "Method not allowed",
        format!(
            "{} is not served at {}; the methods it takes are in the Allow header and at /api/openapi.json",
            request.method(),
            request.uri().path()
        ),
    )
}

/// Refuses a caller who lacks `role` (403 `missing_role`). Roles come from the users file,
/// through [`Caller`], never from the request.
fn require_role(caller: &Caller, role: &str) -> Result<(), Problem> {
    if caller.user.has_role(role) {
        return Ok(());
    }
    tracing::warn!(actor = ?caller.user.id, role, "refused: missing role");
    Err(Problem::forbidden(
        "missing_role",
        format!(
            "`{}` does not have the role `{role}`, which this needs; roles are given in the users file",
            caller.user.id
        ),
    )
    .with("role", json!(role)))
}

/// The longest idempotency key accepted: keys are stored, so they are kept short.
const MAX_IDEMPOTENCY_KEY: usize = 200;

/// The `Idempotency-Key` header: visible ASCII, 1 to 200 characters, exactly as the
/// document's pattern says (a key with spaces is refused, not trimmed into another key).
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, Problem> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value.to_str().ok().filter(|k| {
        !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY && k.bytes().all(|b| b.is_ascii_graphic())
    });
    match key {
        Some(key) => Ok(Some(key.to_string())),
        None => Err(Problem::bad_request(
            "bad_idempotency_key",
            format!(
                "the Idempotency-Key header must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters (a UUID will do)"
            ),
        )),
    }
}
