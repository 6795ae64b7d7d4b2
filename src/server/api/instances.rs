//! Instances: starting them, firing events, reading them, lists and the caller's inbox.
//!
//! The actor of every command is the authenticated caller; the bodies have no field for it
//! (and refuse unknown fields), so nobody can act in another's name.

use super::extract::empty_as_none;
use super::{Body, Params, Segments, Writer, idempotency_key};
use crate::audit::chain::ApprovalChain;
use crate::engine::{Outcome, Task};
use crate::machine::{Available, Entry, Instance, Next};
use crate::server::auth::Caller;
use crate::server::problem::Problem;
use crate::server::{AppState, FireInput, StartInput};
use crate::store::Query;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The body of `POST /api/instances`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartBody {
    /// The workflow's id, for example `hot_work_permit`.
    pub workflow: String,
    /// Initial values of declared fields.
    #[serde(default)]
    pub data: Option<Map<String, Value>>,
    /// A contract or unit number the instance can be found by.
    #[serde(default)]
    pub business_key: Option<String>,
}

/// The body of `POST /api/instances/{id}/events/{event}`; it may be empty.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FireBody {
    /// Values of the fields the event supplies.
    #[serde(default)]
    pub payload: Option<Map<String, Value>>,
    /// A comment on the step (some events require one, for example a rejection).
    #[serde(default)]
    pub comment: Option<String>,
    /// Refuse (409 `stale`) unless the instance is still at this step: its `seq` as read.
    /// A whole number (`7.0` is read as `7`), at most 2^53 - 1, the largest every JSON reader
    /// keeps exact.
    #[serde(default, deserialize_with = "super::extract::whole_number")]
    #[schemars(range(max = 9_007_199_254_740_991u64))]
    pub expected_seq: Option<u64>,
}

/// `POST /api/instances`: 201 with the new instance, or 200 when an `Idempotency-Key` replays.
pub async fn start(
    State(state): State<AppState>,
    Writer(caller): Writer,
    headers: HeaderMap,
    Body(body): Body<StartBody>,
) -> Result<Response, Problem> {
    let input = StartInput {
        workflow: body.workflow,
        data: body.data.map_or(Value::Null, Value::Object),
        business_key: body.business_key,
        idempotency_key: idempotency_key(&headers)?,
    };
    let outcome = state.start(&caller, input).await?;
    let status = if outcome.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let location = HeaderValue::try_from(format!("/api/instances/{}", outcome.instance.id)).ok();
    let mut response = (status, Json(outcome)).into_response();
    if let Some(location) = location {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// `POST /api/instances/{id}/events/{event}`.
pub async fn fire(
    State(state): State<AppState>,
    Writer(caller): Writer,
    Segments((id, event)): Segments<(String, String)>,
    headers: HeaderMap,
    Body(body): Body<FireBody>,
) -> Result<Json<Outcome>, Problem> {
    let input = FireInput {
        event,
        payload: body.payload.map_or(Value::Null, Value::Object),
        comment: body.comment,
        expected_seq: body.expected_seq,
        idempotency_key: idempotency_key(&headers)?,
    };
    Ok(Json(state.fire(&caller, &id, input).await?))
}

/// The answer of `GET /api/instances/{id}`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct InstanceView {
    pub instance: Instance,
    /// The title of the state it is in.
    pub state_title: Option<String>,
    /// What the caller may do on it now (guards and payloads are checked when fired).
    pub available: Vec<Available>,
    /// The caller's steps that the instance's data keeps closed for now, each with what its
    /// guards said (`blocked`).
    pub blocked: Vec<Available>,
    /// Whose turn it is: the roles that may act now, the signers still to sign, the pending
    /// deadlines and the children awaited.
    pub next: Next,
    /// A deadline of its current state has passed.
    pub overdue: bool,
}

/// `GET /api/instances/{id}`: the snapshot, with what the caller may do on it now.
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Segments(id): Segments<String>,
) -> Result<Json<InstanceView>, Problem> {
    let engine = &state.engine;
    let instance = state.instance(&caller, &id).await?;
    let definition = engine.definition(&instance.version)?;
    // From the same snapshot, so that the actions match the state shown.
    let (available, blocked): (Vec<_>, Vec<_>) = engine
        .offered_on(definition.clone(), instance.clone(), caller.actor())
        .await?
        .into_iter()
        .partition(|a| a.blocked.is_none());
    let next = engine.next_on(definition.clone(), instance.clone()).await?;
    let state_title = definition
        .workflow
        .states
        .get(&instance.state)
        .and_then(|s| s.title.clone());
    let overdue = engine.is_overdue(&instance).await?;
    Ok(Json(InstanceView {
        instance,
        state_title,
        available,
        blocked,
        next,
        overdue,
    }))
}

/// Only instances the caller may act on now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Assigned {
    Me,
}

/// The default and the largest number of instances in a list.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

/// The query of `GET /api/instances`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Only instances of this workflow (empty: any).
    #[serde(default, deserialize_with = "empty_as_none")]
    #[schemars(regex(pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"))]
    pub workflow: Option<String>,
    /// Only instances in this state (empty: any).
    #[serde(default, deserialize_with = "empty_as_none")]
    #[schemars(regex(pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"))]
    pub state: Option<String>,
    /// Only instances with this business key (empty: any).
    #[serde(default, deserialize_with = "empty_as_none")]
    #[schemars(regex(pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"))]
    pub business_key: Option<String>,
    /// `true`: only instances past a deadline of their current state.
    #[serde(default)]
    pub overdue: Option<bool>,
    /// `me`: only unfinished instances the caller may act on now.
    #[serde(default)]
    pub assigned: Option<Assigned>,
    /// At most this many (default 100).
    #[serde(default)]
    #[schemars(range(min = 1, max = MAX_LIMIT))]
    pub limit: Option<usize>,
}

/// `GET /api/instances`.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Params(params): Params<ListParams>,
) -> Result<Json<Vec<Instance>>, Problem> {
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Problem::bad_request(
            "bad_query",
            format!("limit must be between 1 and {MAX_LIMIT}"),
        ));
    }
    let query = Query {
        workflow: params.workflow,
        state: params.state,
        business_key: params.business_key,
        limit: Some(limit),
    };
    let overdue = params.overdue.unwrap_or(false);
    let instances = match (params.assigned, overdue) {
        (Some(Assigned::Me), _) => state
            .tasks(&caller, query, overdue)
            .await?
            .into_iter()
            .map(|task| task.instance)
            .collect(),
        (None, true) => state.overdue(&caller, query).await?,
        (None, false) => state.list(&caller, query).await?,
    };
    Ok(Json(instances))
}

/// `GET /api/tasks`: the caller's inbox.
pub async fn tasks(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<Task>>, Problem> {
    Ok(Json(state.tasks(&caller, Query::default(), false).await?))
}

/// `GET /api/instances/{id}/history`.
pub async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Segments(id): Segments<String>,
) -> Result<Json<Vec<Entry>>, Problem> {
    Ok(Json(state.history(&caller, &id).await?))
}

/// `GET /api/instances/{id}/chain`: as `sopflow audit chain --format json` prints it.
pub async fn chain(
    State(state): State<AppState>,
    caller: Caller,
    Segments(id): Segments<String>,
) -> Result<Json<ApprovalChain>, Problem> {
    Ok(Json(state.chain(&caller, &id).await?))
}
