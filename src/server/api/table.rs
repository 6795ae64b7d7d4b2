//! The route table: the one list of what the API serves. [`super::routes`] builds the router
//! from it and [`super::openapi`] documents it, so a route cannot be served undocumented or
//! documented but missing.

use super::schemas::{of, schema};
use super::{audit, events, instances, meta, migration, notices, openapi, workflows};
use crate::audit::chain::ApprovalChain;
use crate::audit::export::ExportRow;
use crate::engine::{Outcome, Task};
use crate::machine::{Entry, Instance};
use crate::server::problem;
use crate::server::reload::AttemptJson;
use crate::store::StoredDefinition;
use schemars::{Schema, SchemaGenerator};
use serde_json::Value;

/// An operation: which handler serves a route. Tests name a route by it, so that they follow
/// the table wherever its path goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `GET /api/health`: whether the server is up, for load balancers and monitors.
    Health,
    /// `GET /api/openapi.json`: the OpenAPI document made from this table.
    OpenApi,
    /// `GET /metrics`: what Prometheus scrapes.
    Metrics,
    /// `GET /api/me`: who the credentials sent are, and in which roles.
    Me,
    /// `GET /api/validation`: the findings of the definitions in force, and the last reload.
    Validation,
    /// `POST /api/reload`: a process owner puts the edited files in force now.
    Reload,
    /// `GET /api/workflows`: the procedures in force, and which of them the caller may start.
    Workflows,
    /// `GET /api/workflows/{id}`: one procedure's newest version.
    Workflow,
    /// `GET /api/workflows/{id}/diagram`: a procedure's state diagram.
    Diagram,
    /// `GET /api/workflows/{id}/versions`: every stored version of a procedure.
    WorkflowVersions,
    /// `POST /api/workflows/{id}/migration/plan`: what moving running instances to another
    /// version would do to each (nothing written).
    MigrationPlan,
    /// `POST /api/workflows/{id}/migration/apply`: a process owner moves the running instances
    /// whose plan is clean.
    MigrationApply,
    /// `GET /api/versions/{hash}`: the exact files a version was made from, as an instance
    /// on it still runs.
    Version,
    /// `POST /api/instances`: a new instance, started by the caller.
    Start,
    /// `POST /api/instances/{id}/events/{event}`: a step, taken by the caller.
    Fire,
    /// `GET /api/instances/{id}`: one instance as the caller may see it.
    Instance,
    /// `GET /api/instances`: the instances the caller may read, filtered.
    Instances,
    /// `GET /api/tasks`: the caller's inbox.
    Tasks,
    /// `GET /api/events`: committed steps as server-sent events, resumable.
    Events,
    /// `GET /api/instances/{id}/history`: every step of an instance.
    History,
    /// `GET /api/instances/{id}/chain`: an instance's approval chain, as an auditor reads it.
    Chain,
    /// `POST /api/audit/verify`: the auditor's check of the whole store, and its digest.
    Verify,
    /// `GET /api/audit/export`: the approval steps, as CSV for a spreadsheet or JSON.
    Export,
    /// `GET /api/problems`: every problem code the API answers with.
    Problems,
    /// `GET /api/problems/{code}`: what one problem's `type` means.
    ProblemType,
    /// `GET /api/notices`: the caller's notices, by name and by role, newest first.
    Notices,
    /// `POST /api/notices/read`: the caller marks some of their notices read.
    NoticesRead,
    /// `GET /api/deliveries/dead`: a process owner reads the dead letters.
    DeadLetters,
    /// `POST /api/deliveries/dead/retry`: a process owner sends dead letters again.
    DeadLettersRetry,
}

/// The HTTP method of a route: the API reads with GET and acts with POST, nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// A read: asking again changes nothing.
    Get,
    /// An act: a start, a step, a reload, a verification (a console session sends its CSRF
    /// token with it).
    Post,
}

impl Verb {
    /// The method's name as HTTP spells it (`GET`); lower-cased, OpenAPI's key of the
    /// operation under its path.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
        }
    }
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without credentials.
    Public,
    /// Any known user (a bearer token or a console session).
    User,
    /// A user with this role.
    Role(&'static str),
}

/// A type's schema, from the generator that collects `components.schemas`: a reference to
/// the type's component (or an array of them), made by schemars from the very type the
/// handler serialises or deserialises.
pub(crate) type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

/// What a successful answer holds.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Shape {
    /// JSON of this type.
    Json(SchemaFn),
    /// These media types, each with its schema (a string for text).
    Media(&'static [(&'static str, SchemaFn)]),
}

/// One route.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// Which handler serves it.
    pub op: Op,
    /// Its HTTP method.
    pub verb: Verb,
    /// The path, with `{name}` parameters (axum's syntax and OpenAPI's).
    pub path: &'static str,
    /// One line on what it does, the operation's summary in the document.
    pub summary: &'static str,
    /// The document's group it is listed under: `meta`, `workflows`, `instances`, `audit`.
    pub(crate) tag: &'static str,
    /// Who may call it; the document names the credentials and the 401 and 403 answers.
    pub access: Access,
    /// The query string's type, as a schema whose properties are the parameters.
    pub(crate) query: Option<fn() -> Value>,
    /// The JSON body's type; an empty body reads as `{}`.
    pub(crate) body: Option<SchemaFn>,
    /// Whether the body must be sent: it has a member without a default.
    pub(crate) body_required: bool,
    /// The status of a successful answer (201 for a start; 200 otherwise).
    pub status: u16,
    /// What a successful answer holds.
    pub(crate) shape: Shape,
}

const fn route(op: Op, verb: Verb, path: &'static str, summary: &'static str) -> Route {
    Route {
        op,
        verb,
        path,
        summary,
        tag: "meta",
        access: Access::User,
        query: None,
        body: None,
        body_required: false,
        status: 200,
        shape: Shape::Json(schema::<openapi::OpenApiDocument>),
    }
}

impl Route {
    const fn tag(mut self, tag: &'static str) -> Route {
        self.tag = tag;
        self
    }
    const fn access(mut self, access: Access) -> Route {
        self.access = access;
        self
    }
    const fn query(mut self, query: fn() -> Value) -> Route {
        self.query = Some(query);
        self
    }
    const fn body(mut self, body: SchemaFn) -> Route {
        self.body = Some(body);
        self
    }
    const fn body_required(mut self, body: SchemaFn) -> Route {
        self.body = Some(body);
        self.body_required = true;
        self
    }
    const fn answers(mut self, status: u16, shape: Shape) -> Route {
        self.status = status;
        self.shape = shape;
        self
    }
}

use Access::{Public, Role};
use Op::*;
use Shape::{Json, Media};
use Verb::{Get, Post};

/// Every route the API serves.
pub const ROUTES: &[Route] = &[
    route(
        Health,
        Get,
        "/api/health",
        "Liveness, version and how many workflows can be started",
    )
    .access(Public)
    .answers(200, Json(schema::<meta::Health>)),
    route(OpenApi, Get, "/api/openapi.json", "This document")
        .access(Public)
        .answers(200, Json(schema::<openapi::OpenApiDocument>)),
    route(Metrics, Get, "/metrics", "Prometheus metrics: OpenMetrics when asked for (Accept), else the 0.0.4 text format")
        .access(Public)
        .answers(200, Media(&[
        (meta::METRICS_TYPE, schema::<String>),
        (meta::METRICS_TEXT_TYPE, schema::<String>),
    ])),
    route(Me, Get, "/api/me", "The caller: id, name and roles").answers(200, Json(schema::<meta::Me>)),
    route(
        Validation,
        Get,
        "/api/validation",
        "Diagnostics of the definitions in force, and the last reload",
    )
    .tag("workflows")
    .answers(200, Json(schema::<meta::Validation>)),
    route(
        Reload,
        Post,
        "/api/reload",
        "Reload every definition now (422 when the files have errors: nothing changes)",
    )
    .tag("workflows")
    .access(Role("process_owner"))
    .body(schema::<meta::ReloadBody>)
    .answers(200, Json(schema::<AttemptJson>)),
    route(
        Workflows,
        Get,
        "/api/workflows",
        "The workflows in force, each with its start roles and whether the caller may start it",
    )
    .tag("workflows")
    .answers(200, Json(schema::<Vec<workflows::WorkflowSummary>>)),
    route(
        Workflow,
        Get,
        "/api/workflows/{id}",
        "A workflow's newest version: sources, roles, states",
    )
    .tag("workflows")
    .answers(200, Json(schema::<workflows::WorkflowDetail>)),
    route(
        Diagram,
        Get,
        "/api/workflows/{id}/diagram",
        "A workflow's state diagram: SVG (default), Mermaid or DOT",
    )
    .tag("workflows")
    .query(of::<workflows::DiagramParams>)
    .answers(200, Media(&[
        ("image/svg+xml", schema::<String>),
        ("text/plain; charset=utf-8", schema::<String>),
    ])),
    route(
        WorkflowVersions,
        Get,
        "/api/workflows/{id}/versions",
        "Every stored version of a workflow, the current one first",
    )
    .tag("workflows")
    .answers(200, Json(schema::<Vec<workflows::VersionRef>>)),
    route(
        MigrationPlan,
        Post,
        "/api/workflows/{id}/migration/plan",
        "What migrating running instances to another version (`current` by default) would do to each; nothing is written (at most 500 plans listed, all counted)",
    )
    .tag("workflows")
    .access(Role("process_owner"))
    .body(schema::<migration::PlanBody>)
    .answers(200, Json(schema::<migration::MigrationPlan>)),
    route(
        MigrationApply,
        Post,
        "/api/workflows/{id}/migration/apply",
        "Migrate the running instances whose plan is clean, each by one `migrate` entry; the others stay (idempotent: a second apply finds them moved)",
    )
    .tag("workflows")
    .access(Role("process_owner"))
    .body(schema::<migration::ApplyBody>)
    .answers(200, Json(schema::<migration::MigrationApplied>)),
    route(
        Version,
        Get,
        "/api/versions/{hash}",
        "The exact sources of a stored definition version",
    )
    .tag("workflows")
    .answers(200, Json(schema::<StoredDefinition>)),
    route(
        Start,
        Post,
        "/api/instances",
        "Start an instance as the caller, in a role that may start it (201; 200 when an Idempotency-Key replays)",
    )
    .tag("instances")
    .body_required(schema::<instances::StartBody>)
    .answers(201, Json(schema::<Outcome>)),
    route(
        Fire,
        Post,
        "/api/instances/{id}/events/{event}",
        "Fire an event on an instance as the caller (404 unless they may read it)",
    )
    .tag("instances")
    .body(schema::<instances::FireBody>)
    .answers(200, Json(schema::<Outcome>)),
    route(
        Instance,
        Get,
        "/api/instances/{id}",
        "An instance the caller may read, its state's title, what they may do on it, whether it is overdue",
    )
    .tag("instances")
    .answers(200, Json(schema::<instances::InstanceView>)),
    route(
        Instances,
        Get,
        "/api/instances",
        "Instances matching filters, among those the caller may read",
    )
    .tag("instances")
    .query(of::<instances::ListParams>)
    .answers(200, Json(schema::<Vec<Instance>>)),
    route(
        Tasks,
        Get,
        "/api/tasks",
        "The caller's inbox: instances they may act on now, earliest deadline first",
    )
    .tag("instances")
    .answers(200, Json(schema::<Vec<Task>>)),
    route(
        Events,
        Get,
        "/api/events",
        "Committed steps of the instances the caller may read, as server-sent events (`id:` the feed position; resume with `Last-Event-ID`)",
    )
    .tag("instances")
    .query(of::<events::EventParams>)
    .answers(200, Media(&[("text/event-stream", schema::<String>)])),
    route(
        History,
        Get,
        "/api/instances/{id}/history",
        "An instance's history, oldest first (404 unless the caller may read it)",
    )
    .tag("instances")
    .answers(200, Json(schema::<Vec<Entry>>)),
    route(
        Chain,
        Get,
        "/api/instances/{id}/chain",
        "An instance's approval chain, as `sopflow audit chain --format json` (404 unless the caller may read it)",
    )
    .tag("audit")
    .answers(200, Json(schema::<ApprovalChain>)),
    route(
        Verify,
        Post,
        "/api/audit/verify",
        "Verify every chain, snapshot, index and version; the store digest",
    )
    .tag("audit")
    .access(Role("auditor"))
    .body(schema::<audit::VerifyBody>)
    .answers(200, Json(schema::<audit::Verification>)),
    route(
        Export,
        Get,
        "/api/audit/export",
        "Every approval step matching the filters, streamed as CSV or JSON",
    )
    .tag("audit")
    .access(Role("auditor"))
    .query(of::<audit::ExportParams>)
    .answers(200, Media(&[
        ("text/csv; charset=utf-8", schema::<String>),
        ("application/json", schema::<Vec<ExportRow>>),
    ])),
    route(
        Problems,
        Get,
        "/api/problems",
        "Every problem type: the codes problems carry, and what each means",
    )
    .access(Public)
    .answers(200, Json(schema::<Vec<problem::ProblemType>>)),
    route(
        ProblemType,
        Get,
        "/api/problems/{code}",
        "What a problem's `type` names: its code and meaning",
    )
    .access(Public)
    .answers(200, Json(schema::<problem::ProblemType>)),
    route(
        Notices,
        Get,
        "/api/notices",
        "The caller's notices (to them by name or to one of their roles), newest first, each with whether they read it",
    )
    .tag("notices")
    .query(of::<notices::LimitParams>)
    .answers(200, Json(schema::<Vec<notices::NoticeView>>)),
    route(
        NoticesRead,
        Post,
        "/api/notices/read",
        "Mark some of the caller's notices read (at most 200 keys; keys of other people's notices are ignored)",
    )
    .tag("notices")
    .body_required(schema::<notices::ReadBody>)
    .answers(200, Json(schema::<notices::Marked>)),
    route(
        DeadLetters,
        Get,
        "/api/deliveries/dead",
        "The dead letters (messages a channel did not take), with the outbox's counts",
    )
    .tag("notices")
    .access(Role("process_owner"))
    .query(of::<notices::LimitParams>)
    .answers(200, Json(schema::<notices::DeadLetters>)),
    route(
        DeadLettersRetry,
        Post,
        "/api/deliveries/dead/retry",
        "Send one dead letter (`key`) or all (`all: true`) again, from their first attempt",
    )
    .tag("notices")
    .access(Role("process_owner"))
    .body_required(schema::<notices::RetryBody>)
    .answers(200, Json(schema::<notices::Revived>)),
];
