//! The route table: the one list of what the API serves. [`super::routes`] builds the router
//! from it and [`super::openapi`] documents it, so a route cannot be served undocumented or
//! documented but missing.

use super::schemas::of;
use super::{audit, instances, workflows};
use serde_json::Value;

/// An operation: which handler serves a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Health,
    OpenApi,
    Metrics,
    Me,
    Validation,
    Reload,
    Workflows,
    Workflow,
    Diagram,
    WorkflowVersions,
    Version,
    Start,
    Fire,
    Instance,
    Instances,
    Tasks,
    History,
    Chain,
    Verify,
    Export,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    Post,
}

impl Verb {
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

/// What a successful answer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// JSON: a schema of `components.schemas`.
    Json(&'static str),
    /// JSON: a list of a schema of `components.schemas`.
    List(&'static str),
    /// Text in these media types.
    Text(&'static [&'static str]),
}

/// One route.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub op: Op,
    pub verb: Verb,
    /// The path, with `{name}` parameters (axum's syntax and OpenAPI's).
    pub path: &'static str,
    pub summary: &'static str,
    pub tag: &'static str,
    pub access: Access,
    /// The query string's type, as a schema whose properties are the parameters.
    pub query: Option<fn() -> Value>,
    /// The JSON body's schema name in `components.schemas`; an empty body reads as `{}`.
    pub body: Option<&'static str>,
    pub status: u16,
    pub shape: Shape,
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
        status: 200,
        shape: Shape::Json("Any"),
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
    const fn body(mut self, body: &'static str) -> Route {
        self.body = Some(body);
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
use Shape::{List, Text};
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
    .answers(200, Shape::Json("Health")),
    route(OpenApi, Get, "/api/openapi.json", "This document")
        .access(Public)
        .answers(200, Shape::Json("Any")),
    route(Metrics, Get, "/metrics", "Prometheus metrics")
        .access(Public)
        .answers(200, Text(&["application/openmetrics-text; version=1.0.0; charset=utf-8"])),
    route(Me, Get, "/api/me", "The caller: id, name and roles").answers(200, Shape::Json("Me")),
    route(
        Validation,
        Get,
        "/api/validation",
        "Diagnostics of the definitions in force, and the last reload",
    )
    .tag("workflows")
    .answers(200, Shape::Json("Validation")),
    route(
        Reload,
        Post,
        "/api/reload",
        "Reload every definition now (422 when the files have errors: nothing changes)",
    )
    .tag("workflows")
    .access(Role("process_owner"))
    .body("ReloadBody")
    .answers(200, Shape::Json("Attempt")),
    route(
        Workflows,
        Get,
        "/api/workflows",
        "The workflows in force, each with its start roles and whether the caller may start it",
    )
    .tag("workflows")
    .answers(200, List("WorkflowSummary")),
    route(
        Workflow,
        Get,
        "/api/workflows/{id}",
        "A workflow's newest version: sources, roles, states",
    )
    .tag("workflows")
    .answers(200, Shape::Json("WorkflowDetail")),
    route(
        Diagram,
        Get,
        "/api/workflows/{id}/diagram",
        "A workflow's state diagram: SVG (default), Mermaid or DOT",
    )
    .tag("workflows")
    .query(of::<workflows::DiagramParams>)
    .answers(200, Text(&["image/svg+xml", "text/plain; charset=utf-8"])),
    route(
        WorkflowVersions,
        Get,
        "/api/workflows/{id}/versions",
        "Every stored version of a workflow, the current one first",
    )
    .tag("workflows")
    .answers(200, List("VersionRef")),
    route(
        Version,
        Get,
        "/api/versions/{hash}",
        "The exact sources of a stored definition version",
    )
    .tag("workflows")
    .answers(200, Shape::Json("StoredDefinition")),
    route(
        Start,
        Post,
        "/api/instances",
        "Start an instance as the caller, in a role that may start it (201; 200 when an Idempotency-Key replays)",
    )
    .tag("instances")
    .body("StartBody")
    .answers(201, Shape::Json("Outcome")),
    route(
        Fire,
        Post,
        "/api/instances/{id}/events/{event}",
        "Fire an event on an instance as the caller (404 unless they may read it)",
    )
    .tag("instances")
    .body("FireBody")
    .answers(200, Shape::Json("Outcome")),
    route(
        Instance,
        Get,
        "/api/instances/{id}",
        "An instance the caller may read, its state's title, what they may do on it, whether it is overdue",
    )
    .tag("instances")
    .answers(200, Shape::Json("InstanceView")),
    route(
        Instances,
        Get,
        "/api/instances",
        "Instances matching filters, among those the caller may read",
    )
    .tag("instances")
    .query(of::<instances::ListParams>)
    .answers(200, List("Instance")),
    route(
        Tasks,
        Get,
        "/api/tasks",
        "The caller's inbox: instances they may act on now, earliest deadline first",
    )
    .tag("instances")
    .answers(200, List("Task")),
    route(
        History,
        Get,
        "/api/instances/{id}/history",
        "An instance's history, oldest first (404 unless the caller may read it)",
    )
    .tag("instances")
    .answers(200, List("Entry")),
    route(
        Chain,
        Get,
        "/api/instances/{id}/chain",
        "An instance's approval chain, as `sopflow audit chain --format json` (404 unless the caller may read it)",
    )
    .tag("audit")
    .answers(200, Shape::Json("ApprovalChain")),
    route(
        Verify,
        Post,
        "/api/audit/verify",
        "Verify every chain, snapshot, index and version; the store digest",
    )
    .tag("audit")
    .access(Role("auditor"))
    .body("VerifyBody")
    .answers(200, Shape::Json("Verification")),
    route(
        Export,
        Get,
        "/api/audit/export",
        "Every approval step matching the filters, streamed as CSV or JSON",
    )
    .tag("audit")
    .access(Role("auditor"))
    .query(of::<audit::ExportParams>)
    .answers(200, Text(&["text/csv; charset=utf-8", "application/json"])),
];
