//! The JSON API over HTTP, on a real server (loopback, a temporary store, the shipped
//! workflows and demo users): the hot-work permit end to end with five people, refusals,
//! lists and inboxes, the audit routes, the OpenAPI document against the router, and every
//! kind of bad input answered with a problem and nothing written.

mod support;

use reqwest::StatusCode;
use reqwest::header::{ALLOW, CONTENT_TYPE, HeaderMap};
use serde_json::{Value, json};
use sopflow::server::api::openapi::{Access, Op, ROUTES, Verb, openapi};
use support::{TestServer, client, token};

/// One answer: status, headers and the body (JSON when it parses, else a string).
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
    text: String,
}

impl Answer {
    fn media(&self) -> &str {
        self.headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// Asserts a problem with this status and code.
    #[track_caller]
    fn problem(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "{}", self.text);
        assert_eq!(self.media(), "application/problem+json", "{}", self.text);
        assert_eq!(self.body["code"], code, "{}", self.text);
        assert_eq!(self.body["status"], status);
    }

    #[track_caller]
    fn ok(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "{}", self.text);
        &self.body
    }
}

/// A client of one server, acting as a demo user (or nobody).
struct Api {
    server: TestServer,
    http: reqwest::Client,
}

impl Api {
    async fn new() -> Api {
        Api {
            server: support::spawn().await,
            http: client(),
        }
    }

    fn request(
        &self,
        method: reqwest::Method,
        user: Option<&str>,
        path: &str,
    ) -> reqwest::RequestBuilder {
        let request = self.http.request(method, self.server.url(path));
        match user {
            Some(user) => request.bearer_auth(token(user)),
            None => request,
        }
    }

    async fn send(request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.expect("the server answers");
        let status = response.status();
        let headers = response.headers().clone();
        // An event stream does not end: its status and headers are the answer.
        let streaming = headers
            .get("content-type")
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
        let text = if streaming {
            String::new()
        } else {
            response.text().await.expect("a body")
        };
        let body = serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.clone()));
        Answer {
            status,
            headers,
            body,
            text,
        }
    }

    async fn get(&self, user: Option<&str>, path: &str) -> Answer {
        Api::send(self.request(reqwest::Method::GET, user, path)).await
    }

    async fn post(&self, user: Option<&str>, path: &str, body: Value) -> Answer {
        Api::send(self.request(reqwest::Method::POST, user, path).json(&body)).await
    }

    /// Fires `event` on `id` as `user`.
    async fn fire(&self, user: &str, id: &str, event: &str, body: Value) -> Answer {
        self.post(
            Some(user),
            &format!("/api/instances/{id}/events/{event}"),
            body,
        )
        .await
    }

    async fn seq(&self, id: &str) -> u64 {
        let answer = self
            .get(Some("audit"), &format!("/api/instances/{id}"))
            .await;
        answer.ok(200)["instance"]["seq"].as_u64().expect("a seq")
    }

    /// How many instances the store has.
    async fn count(&self) -> usize {
        let answer = self.get(Some("audit"), "/api/instances?limit=1000").await;
        answer.ok(200).as_array().expect("a list").len()
    }

    /// Starts a hot-work permit as wang and submits it; its id.
    async fn submitted_permit(&self) -> String {
        let started = self
            .post(
                Some("wang"),
                "/api/instances",
                json!({"workflow": "hot_work_permit"}),
            )
            .await;
        let id = started.ok(201)["instance"]["id"]
            .as_str()
            .expect("an id")
            .to_string();
        self.fire("wang", &id, "submit", json!({"payload": submit_payload()}))
            .await
            .ok(200);
        id
    }
}

fn submit_payload() -> Value {
    json!({
        "notification_letter": "HW-2026-031",
        "applicant_seal": true,
        "operator_certificate": "T-4411",
    })
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|i| i["id"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hot_work_permit_goes_through_five_people() {
    let api = Api::new().await;
    // wang starts and submits; the location names the new instance.
    let started = api
        .post(
            Some("wang"),
            "/api/instances",
            json!({"workflow": "hot_work_permit", "business_key": "HW-2026-031"}),
        )
        .await;
    let id = started.ok(201)["instance"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    assert_eq!(started.body["replayed"], false);
    assert_eq!(started.body["entry"]["actor"], "wang");
    assert_eq!(
        started
            .headers
            .get("location")
            .and_then(|v| v.to_str().ok()),
        Some(format!("/api/instances/{id}").as_str())
    );
    let submitted = api
        .fire("wang", &id, "submit", json!({"payload": submit_payload()}))
        .await;
    assert_eq!(submitted.ok(200)["instance"]["state"], "security_review");

    // Lists and inboxes: li may act now, zhou not yet.
    let mine = api.get(Some("li"), "/api/instances?assigned=me").await;
    assert_eq!(ids(mine.ok(200)), vec![id.clone()]);
    let not_mine = api.get(Some("zhou"), "/api/instances?assigned=me").await;
    assert!(ids(not_mine.ok(200)).is_empty());
    let tasks = api.get(Some("li"), "/api/tasks").await;
    let tasks = tasks.ok(200).as_array().expect("tasks").clone();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0]["instance"]["id"], id.as_str());
    assert_eq!(tasks[0]["actions"][0]["event"], "approve");
    assert!(
        api.get(Some("zhou"), "/api/tasks")
            .await
            .ok(200)
            .as_array()
            .expect("tasks")
            .is_empty()
    );
    let by_state = api
        .get(
            Some("zhou"),
            "/api/instances?workflow=hot_work_permit&state=security_review",
        )
        .await;
    assert_eq!(ids(by_state.ok(200)), vec![id.clone()]);
    let other_state = api
        .get(
            Some("zhou"),
            "/api/instances?workflow=hot_work_permit&state=cs_review",
        )
        .await;
    assert!(ids(other_state.ok(200)).is_empty());
    let other_workflow = api
        .get(Some("zhou"), "/api/instances?workflow=repair_request")
        .await;
    assert!(ids(other_workflow.ok(200)).is_empty());
    let by_key = api
        .get(Some("zhou"), "/api/instances?business_key=HW-2026-031")
        .await;
    assert_eq!(ids(by_key.ok(200)), vec![id.clone()]);

    // The view of one instance: li sees the approval, wang sees nothing to do.
    let view = api.get(Some("li"), &format!("/api/instances/{id}")).await;
    let view = view.ok(200);
    assert_eq!(view["state_title"], "秩序维护部初审");
    assert_eq!(view["overdue"], false);
    let events: Vec<&str> = view["available"]
        .as_array()
        .expect("available")
        .iter()
        .filter_map(|a| a["event"].as_str())
        .collect();
    assert_eq!(events, ["approve", "reject"]);
    let wang_view = api.get(Some("wang"), &format!("/api/instances/{id}")).await;
    assert_eq!(wang_view.ok(200)["available"], json!([]));

    // wang may not approve: refused, nothing written.
    let before = api.seq(&id).await;
    api.fire("wang", &id, "approve", json!({}))
        .await
        .problem(403, "role_not_allowed");
    assert_eq!(api.seq(&id).await, before);
    // The actor is the caller's, never the body's.
    api.fire("wang", &id, "approve", json!({"actor": "li"}))
        .await
        .problem(422, "bad_body");
    assert_eq!(api.seq(&id).await, before);

    api.fire("li", &id, "approve", json!({"comment": "资料齐全"}))
        .await
        .ok(200);
    // An empty body, and no body at all, read as {}.
    let approved = Api::send(api.request(
        reqwest::Method::POST,
        Some("zhou"),
        &format!("/api/instances/{id}/events/approve"),
    ))
    .await;
    assert_eq!(approved.ok(200)["instance"]["state"], "gm_review");
    let seq = api.seq(&id).await;
    let signed = api
        .fire("chen", &id, "approve", json!({"expected_seq": seq}))
        .await;
    assert_eq!(signed.ok(200)["entry"]["actor"], "chen");
    // A stale expected_seq is refused.
    api.fire("zhao", &id, "affix_seal", json!({"expected_seq": seq}))
        .await
        .problem(409, "stale");
    api.fire("zhao", &id, "affix_seal", json!({})).await.ok(200);
    // distribute needs the archive reference.
    api.fire("zhou", &id, "distribute", json!({}))
        .await
        .problem(422, "missing_field");
    let done = api
        .fire(
            "zhou",
            &id,
            "distribute",
            json!({"payload": {"archive_reference": "ARC-7", "copy_to_applicant": true, "copy_to_order_dept": true}}),
        )
        .await;
    let done = done.ok(200);
    assert_eq!(done["instance"]["state"], "distributed");
    assert_eq!(done["instance"]["finished"], true);

    // History and approval chain.
    let history = api
        .get(Some("audit"), &format!("/api/instances/{id}/history"))
        .await;
    let history = history.ok(200).as_array().expect("entries").clone();
    assert_eq!(
        history.len(),
        7,
        "start, submit, three approvals, seal, distribute"
    );
    let actors: Vec<&str> = history.iter().filter_map(|e| e["actor"].as_str()).collect();
    assert_eq!(
        actors,
        ["wang", "wang", "li", "zhou", "chen", "zhao", "zhou"]
    );
    for pair in history.windows(2) {
        assert_eq!(pair[1]["prev_hash"], pair[0]["hash"]);
    }
    let chain = api
        .get(Some("audit"), &format!("/api/instances/{id}/chain"))
        .await;
    let chain = chain.ok(200);
    assert_eq!(chain["instance"], id.as_str());
    let approvers: Vec<&str> = chain["links"]
        .as_array()
        .expect("links")
        .iter()
        .filter(|l| l["event"] == "approve")
        .filter_map(|l| l["actor"].as_str())
        .collect();
    assert_eq!(approvers, ["li", "zhou", "chen"]);
    assert!(
        chain.to_string().contains("资料齐全"),
        "the comment is in the chain"
    );

    // Idempotency: the same key answers the first result and writes nothing.
    let key_start = || {
        api.request(reqwest::Method::POST, Some("wang"), "/api/instances")
            .header("Idempotency-Key", "k-1")
            .json(&json!({"workflow": "hot_work_permit"}))
    };
    let first = Api::send(key_start()).await;
    let again = Api::send(key_start()).await;
    assert_eq!(first.ok(201)["replayed"], false);
    assert_eq!(again.ok(200)["replayed"], true);
    assert_eq!(again.body["instance"]["id"], first.body["instance"]["id"]);
    assert_eq!(api.count().await, 2);

    // Metrics: steps, the refusal, and a failed authentication.
    api.get(None, "/api/me")
        .await
        .problem(401, "unauthenticated");
    // Prometheus asks for OpenMetrics; anything else gets the 0.0.4 text format, each
    // labelled as what it is.
    let plain = api.get(None, "/metrics").await;
    assert_eq!(plain.media(), "text/plain; version=0.0.4; charset=utf-8");
    assert!(
        plain
            .text
            .contains("# TYPE sopflow_refusals_total counter\nsopflow_refusals_total{"),
        "a 0.0.4 family is named by its samples: {}",
        plain.text
    );
    assert!(!plain.text.contains("# EOF"), "{}", plain.text);
    let metrics = Api::send(api.request(reqwest::Method::GET, None, "/metrics").header(
        "Accept",
        "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
    ))
    .await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(
        metrics
            .media()
            .starts_with("application/openmetrics-text; version=1.0.0")
    );
    let text = &metrics.text;
    assert!(
        text.ends_with("# EOF\n"),
        "OpenMetrics ends with # EOF: {text}"
    );
    let loaded = text
        .lines()
        .find_map(|l| l.strip_prefix("sopflow_last_reload_timestamp_seconds "))
        .and_then(|v| v.parse::<u64>().ok())
        .expect("the time the definitions were put in force");
    assert!(loaded > 1_700_000_000, "set at start-up: {loaded}");
    assert!(
        text.contains("sopflow_steps_total{workflow=\"hot_work_permit\"}"),
        "{text}"
    );
    assert!(
        text.contains("sopflow_refusals_total{code=\"role_not_allowed\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("sopflow_auth_failures_total{code=\"missing\"}"),
        "{text}"
    );
    api.server.stop().await;
}

/// A server like [`support::spawn`]'s, but whose users file has one person with two of the
/// hot-work roles (no demo user has two). Tokens: `t-wang`, `t-both`.
async fn server_with_double_role() -> support::TestServer {
    use sopflow::server::auth::token_hash;
    support::spawn_with_users(&format!(
        "users:\n  - id: wang\n    roles: [contractor]\n    tokens: [\"{}\"]\n  - id: both\n    roles: [order_dept, cs_dept]\n    tokens: [\"{}\"]\n",
        token_hash("t-wang"),
        token_hash("t-both"),
    ))
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn one_person_cannot_approve_twice() {
    let server = server_with_double_role().await;
    let base = server.base.clone();
    let http = client();
    let post = |user: &str, path: &str, body: Value| {
        http.post(format!("{base}{path}"))
            .bearer_auth(format!("t-{user}"))
            .json(&body)
            .send()
    };
    let started = post(
        "wang",
        "/api/instances",
        json!({"workflow": "hot_work_permit"}),
    )
    .await
    .expect("answers");
    assert_eq!(started.status(), StatusCode::CREATED);
    let started: Value = started.json().await.expect("json");
    let id = started["instance"]["id"].as_str().expect("id").to_string();
    let events = format!("/api/instances/{id}/events");
    let submit = post(
        "wang",
        &format!("{events}/submit"),
        json!({"payload": submit_payload()}),
    );
    assert_eq!(submit.await.expect("answers").status(), StatusCode::OK);
    let first = post("both", &format!("{events}/approve"), json!({}))
        .await
        .expect("answers");
    assert_eq!(first.status(), StatusCode::OK);
    let second = post("both", &format!("{events}/approve"), json!({}))
        .await
        .expect("answers");
    assert_eq!(second.status(), StatusCode::FORBIDDEN);
    let problem: Value = second.json().await.expect("json");
    assert_eq!(problem["code"], "four_eyes");
    assert_eq!(problem["refused"], true);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn health_me_and_the_caller() {
    let api = Api::new().await;
    let health = api.get(None, "/api/health").await;
    let health = health.ok(200);
    assert_eq!(health["status"], "ok");
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    assert!(health["workflows"].as_u64().expect("a count") >= 30);
    assert!(chrono::DateTime::parse_from_rfc3339(health["time"].as_str().expect("time")).is_ok());
    let me = api.get(Some("zhou"), "/api/me").await;
    assert_eq!(
        me.ok(200)["roles"],
        json!([
            "cs_dept",
            "cs_receiver",
            "cs_agent",
            "cs_staff",
            "complaint_officer"
        ])
    );
    assert_eq!(me.body["id"], "zhou");
    assert!(me.body["name"].is_string());
    api.server.stop().await;
}

/// A concrete path for a route: its parameters filled in.
fn concrete(path: &str) -> String {
    path.replace("{id}", "hot_work_permit")
        .replace("{event}", "approve")
        .replace("{hash}", &"0".repeat(64))
        .replace("{code}", "stale")
}

/// Asserts that an answer is what the document says `op` answers with this status: its
/// media type is listed and its body validates against the listed schema (references
/// resolved in the document's components).
#[track_caller]
fn conforms(doc: &Value, op: Op, answer: &Answer) {
    let route = ROUTES.iter().find(|r| r.op == op).expect("a route");
    let responses =
        &doc["paths"][route.path][route.verb.as_str().to_ascii_lowercase()]["responses"];
    let status = answer.status.as_u16().to_string();
    let listed = if responses.get(&status).is_some() {
        &responses[&status]
    } else {
        &responses[format!("{}XX", &status[..1])]
    };
    let media = answer.media();
    let content = listed["content"]
        .as_object()
        .and_then(|c| c.iter().find(|(listed, _)| listed.as_str() == media))
        .unwrap_or_else(|| panic!("{op:?} {status}: `{media}` is not documented"));
    let schema = json!({"components": doc["components"], "allOf": [content.1["schema"]]});
    let validator = jsonschema::validator_for(&schema).expect("a valid schema");
    let errors: Vec<String> = validator
        .iter_errors(&answer.body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{op:?} {status}: {errors:#?}\n{}",
        answer.text
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_answer_is_what_the_document_says() {
    let api = Api::new().await;
    let doc = api.get(None, "/api/openapi.json").await.ok(200).clone();
    let check = |op: Op, answer: &Answer| conforms(&doc, op, answer);
    let id = api.submitted_permit().await;
    let started = api
        .post(
            Some("wang"),
            "/api/instances",
            json!({"workflow": "hot_work_permit"}),
        )
        .await;
    check(Op::Start, &started);
    // A whole number written as a float is the same number.
    let seq = api.seq(&id).await;
    let approved = api
        .fire(
            "li",
            &id,
            "approve",
            json!({"comment": "资料齐全", "expected_seq": seq as f64}),
        )
        .await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.text);
    check(Op::Fire, &approved);
    let refused = api.fire("wang", &id, "approve", json!({})).await;
    check(Op::Fire, &refused);
    let gets = [
        (Op::Health, None, "/api/health".to_string()),
        (Op::Me, Some("wang"), "/api/me".into()),
        (Op::Validation, Some("owner"), "/api/validation".into()),
        (Op::Workflows, Some("wang"), "/api/workflows".into()),
        (
            Op::Workflow,
            Some("wang"),
            "/api/workflows/hot_work_permit".into(),
        ),
        (
            Op::Diagram,
            Some("wang"),
            "/api/workflows/hot_work_permit/diagram".into(),
        ),
        (
            Op::Diagram,
            Some("wang"),
            "/api/workflows/hot_work_permit/diagram?format=dot&state=".into(),
        ),
        (
            Op::WorkflowVersions,
            Some("wang"),
            "/api/workflows/hot_work_permit/versions".into(),
        ),
        (Op::Instance, Some("wang"), format!("/api/instances/{id}")),
        (
            Op::Instances,
            Some("audit"),
            "/api/instances?state=&limit=1000".into(),
        ),
        (Op::Tasks, Some("li"), "/api/tasks".into()),
        (
            Op::History,
            Some("wang"),
            format!("/api/instances/{id}/history"),
        ),
        (
            Op::Chain,
            Some("audit"),
            format!("/api/instances/{id}/chain"),
        ),
        (
            Op::Export,
            Some("audit"),
            "/api/audit/export?format=json&workflow=".into(),
        ),
        (Op::Export, Some("audit"), "/api/audit/export".into()),
        (Op::Problems, None, "/api/problems".into()),
        (Op::Metrics, None, "/metrics".into()),
        (Op::OpenApi, None, "/api/openapi.json".into()),
        (
            Op::Instances,
            Some("audit"),
            "/api/instances?limit=0".into(),
        ),
        (
            Op::Instances,
            Some("audit"),
            "/api/instances?limit=1001".into(),
        ),
    ];
    for (op, user, path) in gets {
        let answer = api.get(user, &path).await;
        assert!(answer.status.as_u16() < 500, "{path}: {}", answer.text);
        check(op, &answer);
    }
    let version = api
        .get(Some("wang"), "/api/workflows/hot_work_permit/versions")
        .await;
    let hash = version.body[0]["hash"]
        .as_str()
        .expect("a hash")
        .to_string();
    check(
        Op::Version,
        &api.get(Some("wang"), &format!("/api/versions/{hash}"))
            .await,
    );
    check(
        Op::Verify,
        &api.post(Some("audit"), "/api/audit/verify", json!({}))
            .await,
    );
    check(
        Op::Reload,
        &api.post(Some("owner"), "/api/reload", json!({})).await,
    );
    // Every problem's type resolves to what it means.
    for problem in [
        &refused,
        &api.get(Some("audit"), "/api/instances?limit=0").await,
    ] {
        let url = problem.body["type"].as_str().expect("a type");
        let described = api.get(None, url).await;
        check(Op::ProblemType, &described);
        assert_eq!(described.body["code"], problem.body["code"]);
    }
    api.get(None, "/api/problems/made_up")
        .await
        .problem(404, "unknown_problem");
    // The Idempotency-Key is refused unless it matches the documented pattern.
    for key in ["with space", "", "é"] {
        let answer = Api::send(
            api.request(reqwest::Method::POST, Some("wang"), "/api/instances")
                .header("Idempotency-Key", key)
                .json(&json!({"workflow": "hot_work_permit"})),
        )
        .await;
        answer.problem(400, "bad_idempotency_key");
    }
    // A body is an object: serde would read a struct from an array, the server does not.
    api.post(Some("audit"), "/api/audit/verify", json!([null, null]))
        .await
        .problem(422, "bad_body");
    // The start body is required, as documented.
    let empty = Api::send(api.request(reqwest::Method::POST, Some("wang"), "/api/instances")).await;
    empty.problem(422, "bad_body");
    api.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_lists_exactly_the_routes_served() {
    let api = Api::new().await;
    let served = api.get(None, "/api/openapi.json").await;
    let doc = served.ok(200).clone();
    assert_eq!(doc, openapi());
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    // The document has every route of the table, and nothing else.
    let mut documented = Vec::new();
    for (path, item) in paths {
        for method in item.as_object().expect("operations").keys() {
            documented.push(format!("{} {path}", method.to_ascii_uppercase()));
        }
    }
    let mut table: Vec<String> = ROUTES
        .iter()
        .map(|r| format!("{} {}", r.verb.as_str(), r.path))
        .collect();
    documented.sort();
    table.sort();
    assert_eq!(documented, table);
    // The documented bodies are the accepted ones.
    let schema = |name: &str| {
        jsonschema::validator_for(&doc["components"]["schemas"][name]).expect("a valid schema")
    };
    let start = schema("StartBody");
    assert!(start.is_valid(&json!({"workflow": "hot_work_permit", "business_key": "K"})));
    assert!(!start.is_valid(&json!({"workflow": "hot_work_permit", "actor": "li"})));
    assert!(!start.is_valid(&json!({})));
    let fire = schema("FireBody");
    assert!(fire.is_valid(&json!({})));
    assert!(fire.is_valid(&json!({"payload": {"a": 1}, "comment": "ok", "expected_seq": 3})));
    assert!(!fire.is_valid(&json!({"payload": "text"})));
    assert!(!fire.is_valid(&json!({"actor": "li"})));
    for route in ROUTES {
        let operation = &paths[route.path][route.verb.as_str().to_ascii_lowercase()];
        assert!(operation["summary"].is_string());
        assert!(operation["responses"][route.status.to_string()].is_object());
    }
    // The router serves every route of the table with its method, and no other method there.
    for route in ROUTES {
        let path = concrete(route.path);
        let method = match route.verb {
            Verb::Get => reqwest::Method::GET,
            Verb::Post => reqwest::Method::POST,
        };
        let answer = Api::send(api.request(method.clone(), Some("owner"), &path)).await;
        assert!(
            answer.body["code"] != "no_route" && answer.body["code"] != "method_not_allowed",
            "{} {path}: {}",
            route.verb.as_str(),
            answer.text
        );
        // The access the table documents is the access the handler enforces.
        let anonymous = Api::send(api.request(method.clone(), None, &path)).await;
        match route.access {
            Access::Public => assert_ne!(anonymous.status, StatusCode::UNAUTHORIZED, "{path}"),
            Access::User | Access::Role(_) => anonymous.problem(401, "unauthenticated"),
        }
        if let Access::Role(role) = route.access {
            let without = Api::send(api.request(method.clone(), Some("wang"), &path)).await;
            without.problem(403, "missing_role");
            assert_eq!(without.body["role"], role);
        }
        let wrong = Api::send(api.request(reqwest::Method::DELETE, Some("owner"), &path)).await;
        wrong.problem(405, "method_not_allowed");
        let allow = wrong
            .headers
            .get(ALLOW)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let allowed: Vec<&str> = ROUTES
            .iter()
            .filter(|r| r.path == route.path)
            .map(|r| r.verb.as_str())
            .collect();
        for verb in &allowed {
            assert!(allow.contains(verb), "{path}: Allow `{allow}` lacks {verb}");
        }
        if !allowed.contains(&"POST") {
            let post = Api::send(api.request(reqwest::Method::POST, Some("owner"), &path)).await;
            post.problem(405, "method_not_allowed");
        }
    }
    // Paths outside the table are not served.
    for path in [
        "/api",
        "/api/",
        "/api/instance",
        "/api/workflows/a/b/c",
        "/api/audit",
    ] {
        api.get(Some("owner"), path).await.problem(404, "no_route");
    }
    api.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn workflows_versions_validation_and_diagrams() {
    let api = Api::new().await;
    let list = api.get(Some("wang"), "/api/workflows").await;
    let list = list.ok(200).as_array().expect("workflows").clone();
    let permit = list
        .iter()
        .find(|w| w["id"] == "hot_work_permit")
        .expect("the permit is listed");
    assert_eq!(permit["title"], "动火证审批");
    assert_eq!(permit["roles"]["order_dept"], "秩序维护部");
    assert_eq!(permit["states"], 9);
    assert_eq!(permit["source"]["lines"], "L153-L154");
    let version = permit["version"].as_str().expect("a hash").to_string();

    let detail = api
        .get(Some("wang"), "/api/workflows/hot_work_permit")
        .await;
    let detail = detail.ok(200);
    assert_eq!(detail["version"], version.as_str());
    assert!(
        detail["yaml"]
            .as_str()
            .expect("yaml")
            .contains("id: hot_work_permit")
    );
    assert!(detail["rules"]["hot_work"].is_string());
    assert_eq!(
        detail["states"][0],
        json!({"id": "drafted", "title": "填写动火告知函", "final": false})
    );
    let missing = api.get(Some("wang"), "/api/workflows/hot_work_permt").await;
    missing.problem(404, "unknown_workflow");
    assert!(
        missing.body["detail"]
            .as_str()
            .expect("detail")
            .contains("hot_work_permit")
    );

    let versions = api
        .get(Some("wang"), "/api/workflows/hot_work_permit/versions")
        .await;
    assert_eq!(
        versions.ok(200),
        &json!([{"hash": version, "file": detail["file"], "current": true}])
    );
    api.get(Some("wang"), "/api/workflows/nope/versions")
        .await
        .problem(404, "unknown_workflow");
    let stored = api
        .get(Some("wang"), &format!("/api/versions/{version}"))
        .await;
    assert_eq!(stored.ok(200)["workflow"], "hot_work_permit");
    assert_eq!(stored.body["yaml"], detail["yaml"]);
    api.get(Some("wang"), "/api/versions/abc")
        .await
        .problem(404, "unknown_version");
    // A NUL is no version either (PostgreSQL refuses it in text; it must not reach the store).
    api.get(Some("wang"), "/api/versions/%00")
        .await
        .problem(404, "unknown_version");

    let validation = api.get(Some("wang"), "/api/validation").await;
    let validation = validation.ok(200);
    assert_eq!(validation["ok"], true);
    assert_eq!(validation["errors"], 0);
    assert!(validation["diagnostics"].is_array());
    assert_eq!(validation["last_reload"], Value::Null);

    let svg = api
        .get(Some("wang"), "/api/workflows/hot_work_permit/diagram")
        .await;
    assert_eq!(svg.status, StatusCode::OK);
    assert_eq!(svg.media(), "image/svg+xml");
    assert!(svg.text.contains("<svg"));
    let current = api
        .get(
            Some("wang"),
            "/api/workflows/hot_work_permit/diagram?format=svg&state=cs_review",
        )
        .await;
    assert!(current.text.contains("state-cs_review"), "{}", current.text);
    let mermaid = api
        .get(
            Some("wang"),
            "/api/workflows/hot_work_permit/diagram?format=mermaid",
        )
        .await;
    assert!(mermaid.media().starts_with("text/plain"));
    assert!(mermaid.text.contains("stateDiagram"));
    let dot = api
        .get(
            Some("wang"),
            "/api/workflows/hot_work_permit/diagram?format=dot",
        )
        .await;
    assert!(dot.text.contains("digraph"));
    api.get(
        Some("wang"),
        "/api/workflows/hot_work_permit/diagram?format=png",
    )
    .await
    .problem(400, "bad_query");
    api.get(
        Some("wang"),
        "/api/workflows/hot_work_permit/diagram?state=nowhere",
    )
    .await
    .problem(404, "no_such_state");

    // Reload: only a process owner; the shipped files are unchanged.
    api.post(Some("wang"), "/api/reload", json!({}))
        .await
        .problem(403, "missing_role");
    let reload = Api::send(api.request(reqwest::Method::POST, Some("owner"), "/api/reload")).await;
    assert_eq!(reload.ok(200)["result"], "unchanged");
    let validation = api.get(Some("wang"), "/api/validation").await;
    assert_eq!(validation.ok(200)["last_reload"]["result"], "unchanged");
    api.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_auditor_verifies_and_exports() {
    let api = Api::new().await;
    let id = api.submitted_permit().await;
    api.fire("li", &id, "approve", json!({"comment": "同意"}))
        .await
        .ok(200);

    let verified = api
        .post(Some("audit"), "/api/audit/verify", json!({}))
        .await;
    let verified = verified.ok(200);
    assert_eq!(verified["clean"], true, "{verified}");
    assert_eq!(verified["summary"]["entries"], 3);
    assert_eq!(verified["problems"], json!([]));
    let token = verified["digest_token"]
        .as_str()
        .expect("a token")
        .to_string();
    let again = api
        .post(Some("audit"), "/api/audit/verify", json!({"digest": token}))
        .await;
    assert_eq!(again.ok(200)["digest_check"]["matches"], true);
    api.post(
        Some("audit"),
        "/api/audit/verify",
        json!({"digest": "yesterday"}),
    )
    .await
    .problem(422, "bad_body");
    api.post(Some("wang"), "/api/audit/verify", json!({}))
        .await
        .problem(403, "missing_role");

    let csv = api
        .get(
            Some("audit"),
            "/api/audit/export?format=csv&workflow=hot_work_permit",
        )
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert_eq!(csv.media(), "text/csv; charset=utf-8");
    let lines: Vec<&str> = csv.text.lines().collect();
    assert_eq!(
        lines.len(),
        4,
        "a header and three steps by people:\n{}",
        csv.text
    );
    assert!(
        lines[3].contains("li") && lines[3].contains("同意"),
        "{}",
        csv.text
    );
    let json_rows = api
        .get(Some("audit"), "/api/audit/export?format=json&actor=li")
        .await;
    assert_eq!(json_rows.media(), "application/json");
    assert_eq!(json_rows.ok(200).as_array().expect("rows").len(), 1);
    let none = api
        .get(
            Some("audit"),
            "/api/audit/export?format=json&workflow=repair_request",
        )
        .await;
    assert_eq!(none.ok(200), &json!([]));
    // A range that ends before it starts holds no step.
    let backwards = api
        .get(
            Some("audit"),
            "/api/audit/export?format=json&from=2026-12-01&to=2026-11-01",
        )
        .await;
    assert_eq!(backwards.ok(200), &json!([]));
    api.get(Some("audit"), "/api/audit/export?from=someday")
        .await
        .problem(400, "bad_query");
    api.get(Some("wang"), "/api/audit/export")
        .await
        .problem(403, "missing_role");
    api.server.stop().await;
}

/// The API's CSV export neutralises cells that begin like a formula; its JSON keeps them.
#[tokio::test(flavor = "multi_thread")]
async fn the_csv_export_neutralises_formulas_and_json_keeps_them() {
    let api = Api::new().await;
    let id = api.submitted_permit().await;
    let hostile = "@SUM(1+1)*cmd|' /C calc'!A0";
    api.fire("li", &id, "approve", json!({"comment": hostile}))
        .await
        .ok(200);
    let csv = api
        .get(Some("audit"), "/api/audit/export?format=csv&actor=li")
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    let mut reader = ::csv::Reader::from_reader(csv.text.as_bytes());
    let row = reader.records().next().expect("a row").expect("parses");
    assert_eq!(&row[14], format!("'{hostile}"), "{}", csv.text);
    let json_rows = api
        .get(Some("audit"), "/api/audit/export?format=json&actor=li")
        .await;
    assert_eq!(json_rows.ok(200)[0]["comment"], hostile);
    api.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_a_problem_and_writes_nothing() {
    let api = Api::new().await;
    let id = api.submitted_permit().await;
    let instances = api.count().await;
    let seq = api.seq(&id).await;
    let approve = format!("/api/instances/{id}/events/approve");
    let raw = |path: &str, media: Option<&str>, body: Vec<u8>| {
        let request = api
            .request(reqwest::Method::POST, Some("li"), path)
            .body(body);
        match media {
            Some(media) => request.header(CONTENT_TYPE, media),
            None => request,
        }
    };

    // Bodies.
    Api::send(raw(&approve, Some("text/plain"), b"{}".to_vec()))
        .await
        .problem(415, "unsupported_media_type");
    Api::send(raw(&approve, None, b"{\"comment\": \"x\"}".to_vec()))
        .await
        .problem(415, "unsupported_media_type");
    Api::send(raw(
        &approve,
        Some("application/json"),
        b"{\"comment\": ".to_vec(),
    ))
    .await
    .problem(400, "bad_json");
    Api::send(raw(&approve, Some("application/json"), b"{} {}".to_vec()))
        .await
        .problem(400, "bad_json");
    api.fire("li", &id, "approve", json!({"comment": 5}))
        .await
        .problem(422, "bad_body");
    api.fire("li", &id, "approve", json!([1, 2]))
        .await
        .problem(422, "bad_body");
    api.fire("li", &id, "approve", json!({"payload": "text"}))
        .await
        .problem(422, "bad_body");
    api.fire("li", &id, "approve", json!({"expected_seq": -1}))
        .await
        .problem(422, "bad_body");
    api.fire("li", &id, "approve", json!({"roles": ["cs_dept"]}))
        .await
        .problem(422, "bad_body");
    api.post(
        Some("wang"),
        "/api/instances",
        json!({"workflow": "hot_work_permit", "actor": "li"}),
    )
    .await
    .problem(422, "bad_body");
    api.post(Some("wang"), "/api/instances", json!({}))
        .await
        .problem(422, "bad_body");
    api.post(Some("wang"), "/api/instances", json!({"workflow": "nope"}))
        .await
        .problem(404, "unknown_workflow");
    let huge = format!(
        "{{\"comment\": \"{}\"}}",
        "x".repeat(sopflow::server::MAX_BODY_BYTES)
    );
    // On a client of its own: the server closes a connection whose body it stopped reading,
    // and a pooled connection could carry the next request into that close.
    Api::send(
        client()
            .post(api.server.url(&approve))
            .bearer_auth(token("li"))
            .header(CONTENT_TYPE, "application/json")
            .body(huge.into_bytes()),
    )
    .await
    .problem(413, "body_too_large");
    let big =
        json!({"payload": {"notification_letter": "y".repeat(sopflow::engine::MAX_PAYLOAD_BYTES)}});
    api.fire("li", &id, "approve", big)
        .await
        .problem(413, "payload_too_large");
    Api::send(
        api.request(reqwest::Method::POST, Some("li"), &approve)
            .header("Idempotency-Key", "")
            .json(&json!({})),
    )
    .await
    .problem(400, "bad_idempotency_key");

    // Query strings and paths.
    api.get(Some("li"), "/api/instances?limit=0")
        .await
        .problem(400, "bad_query");
    api.get(Some("li"), "/api/instances?limit=1001")
        .await
        .problem(400, "bad_query");
    api.get(Some("li"), "/api/instances?limit=ten")
        .await
        .problem(400, "bad_query");
    api.get(Some("li"), "/api/instances?assigned=you")
        .await
        .problem(400, "bad_query");
    api.get(Some("li"), "/api/instances?overdue=maybe")
        .await
        .problem(400, "bad_query");
    api.get(Some("li"), "/api/instances?colour=red")
        .await
        .problem(400, "bad_query");
    api.get(Some("li"), "/api/instances/%FF%FE")
        .await
        .problem(400, "bad_path");
    Api::send(raw(
        "/api/instances/%C3/events/approve",
        Some("application/json"),
        b"{}".to_vec(),
    ))
    .await
    .problem(400, "bad_path");
    api.get(Some("li"), "/api/instances/nope")
        .await
        .problem(404, "unknown_instance");
    api.get(Some("li"), "/api/instances/nope/history")
        .await
        .problem(404, "unknown_instance");
    api.get(Some("li"), "/api/instances/nope/chain")
        .await
        .problem(404, "unknown_instance");
    api.fire("li", "nope", "approve", json!({}))
        .await
        .problem(404, "unknown_instance");
    // A NUL or a newline in an id: never another instance's entries, always refused.
    for bad in ["%00", "%00%00", "%0A", "%1B%5B31m"] {
        for path in ["", "/history", "/chain"] {
            api.get(Some("li"), &format!("/api/instances/{id}{bad}{path}"))
                .await
                .problem(400, "bad_instance_id");
        }
        api.fire("li", &format!("{id}{bad}"), "approve", json!({}))
            .await
            .problem(400, "bad_instance_id");
    }
    api.fire("li", &id, "launch", json!({}))
        .await
        .problem(409, "unknown_event");
    // A control character in a business key, or in a list's filter, never reaches a store key:
    // a start refuses it like any value it is given, a list as a bad key, naming the filter.
    for bad in ["B2-031\u{0}", "B2\n031", "\u{1b}[31m"] {
        api.post(
            Some("wang"),
            "/api/instances",
            json!({"workflow": "hot_work_permit", "business_key": bad}),
        )
        .await
        .problem(422, "ill_typed");
    }
    for (filter, value) in [
        ("business_key", "B2%00"),
        ("state", "drafted%0A"),
        ("workflow", "hot_work_permit%00"),
    ] {
        for extra in ["", "&assigned=me", "&overdue=true"] {
            let answer = api
                .get(
                    Some("li"),
                    &format!("/api/instances?{filter}={value}{extra}"),
                )
                .await;
            answer.problem(400, "bad_key");
            assert_eq!(answer.body["field"], filter, "{}", answer.text);
        }
    }

    // Routes, methods, credentials.
    api.get(Some("li"), "/api/nothing/here")
        .await
        .problem(404, "no_route");
    api.get(None, "/nothing").await.problem(404, "no_route");
    Api::send(api.request(reqwest::Method::PUT, Some("li"), &approve))
        .await
        .problem(405, "method_not_allowed");
    api.get(Some("li"), &approve)
        .await
        .problem(405, "method_not_allowed");
    api.post(
        None,
        "/api/instances",
        json!({"workflow": "hot_work_permit"}),
    )
    .await
    .problem(401, "unauthenticated");
    Api::send(
        api.http
            .post(api.server.url("/api/instances"))
            .bearer_auth("demo-nobody")
            .json(&json!({"workflow": "hot_work_permit"})),
    )
    .await
    .problem(401, "unauthenticated");
    Api::send(
        api.http
            .post(api.server.url("/api/instances"))
            .header("Authorization", "Basic d2FuZzpkZW1v")
            .json(&json!({"workflow": "hot_work_permit"})),
    )
    .await
    .problem(401, "unauthenticated");
    Api::send(
        api.http
            .post(api.server.url("/api/instances"))
            .header("Cookie", "sopflow_session=forged")
            .json(&json!({"workflow": "hot_work_permit"})),
    )
    .await
    .problem(401, "unauthenticated");
    for path in [
        "/api/me",
        "/api/workflows",
        "/api/tasks",
        "/api/instances",
        "/api/validation",
    ] {
        api.get(None, path).await.problem(401, "unauthenticated");
    }
    api.fire("wang", &id, "approve", json!({}))
        .await
        .problem(403, "role_not_allowed");
    api.post(Some("li"), "/api/reload", json!({}))
        .await
        .problem(403, "missing_role");

    assert_eq!(api.count().await, instances, "no instance was created");
    assert_eq!(api.seq(&id).await, seq, "no step was written");
    let verified = api
        .post(Some("audit"), "/api/audit/verify", json!({}))
        .await;
    assert_eq!(verified.ok(200)["clean"], true);
    api.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_console_session_writes_only_with_its_csrf_token() {
    let api = Api::new().await;
    let cookie = api
        .server
        .state
        .sessions
        .open("wang")
        .await
        .expect("a session");
    let csrf = api
        .server
        .state
        .sessions
        .get(&cookie)
        .await
        .expect("the store answers")
        .expect("the session")
        .csrf;
    let start = || {
        api.http
            .post(api.server.url("/api/instances"))
            .header("Cookie", format!("sopflow_session={cookie}"))
            .json(&json!({"workflow": "hot_work_permit"}))
    };
    // Reading needs no token; writing does.
    let me = Api::send(
        api.http
            .get(api.server.url("/api/me"))
            .header("Cookie", format!("sopflow_session={cookie}")),
    )
    .await;
    assert_eq!(me.ok(200)["id"], "wang");
    Api::send(start()).await.problem(403, "bad_csrf");
    Api::send(start().header("X-CSRF-Token", "guess"))
        .await
        .problem(403, "bad_csrf");
    assert_eq!(api.count().await, 0);
    let started = Api::send(start().header("X-CSRF-Token", csrf)).await;
    assert_eq!(started.ok(201)["entry"]["actor"], "wang");
    let metrics = api.get(None, "/metrics").await;
    assert!(
        metrics
            .text
            .contains("sopflow_auth_failures_total{code=\"csrf\"} 2"),
        "{}",
        metrics.text
    );
    api.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reload_applies_good_files_and_refuses_bad_ones() {
    let copy = tempfile::tempdir().expect("a temporary folder");
    let sources = support::copy_definitions(copy.path());
    let api = Api {
        server: support::spawn_with(sources, false).await,
        http: client(),
    };
    let file = copy.path().join("workflows/hot_work_permit.yaml");
    let yaml = std::fs::read_to_string(&file).expect("reads");
    let before = api
        .get(Some("owner"), "/api/workflows/hot_work_permit")
        .await;
    let old = before.ok(200)["version"]
        .as_str()
        .expect("hash")
        .to_string();

    std::fs::write(
        &file,
        yaml.replace("title: 动火证审批", "title: 动火作业审批"),
    )
    .expect("writes");
    let applied = api.post(Some("owner"), "/api/reload", json!({})).await;
    let applied = applied.ok(200);
    assert_eq!(applied["result"], "applied");
    assert_eq!(applied["changed"][0][0], "hot_work_permit");
    assert_eq!(applied["changed"][0][1], old.as_str());
    let new = applied["changed"][0][2].as_str().expect("hash").to_string();
    let versions = api
        .get(Some("owner"), "/api/workflows/hot_work_permit/versions")
        .await;
    let versions = versions.ok(200).as_array().expect("versions").clone();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["hash"], new.as_str());
    assert_eq!(versions[0]["current"], true);
    assert_eq!(versions[1]["hash"], old.as_str());
    assert_eq!(versions[1]["current"], false);
    let old_sources = api
        .get(Some("owner"), &format!("/api/versions/{old}"))
        .await;
    assert!(
        old_sources.ok(200)["yaml"]
            .as_str()
            .expect("yaml")
            .contains("title: 动火证审批")
    );

    std::fs::write(&file, yaml.replace("initial: drafted", "initial: nowhere")).expect("writes");
    let rejected = api.post(Some("owner"), "/api/reload", json!({})).await;
    rejected.problem(422, "definitions_invalid");
    assert!(
        !rejected.body["diagnostics"]
            .as_array()
            .expect("diagnostics")
            .is_empty()
    );
    assert_eq!(rejected.body["attempt"]["result"], "rejected");
    // Programs match the stable code and read English; a reader who asks for Chinese gets the
    // same finding in Chinese, and caches keep the two apart.
    let unknown_state = |diagnostics: &Value| {
        diagnostics
            .as_array()
            .expect("diagnostics")
            .iter()
            .find(|d| d["code"] == "E101")
            .cloned()
            .expect("the E101")
    };
    assert_eq!(
        unknown_state(&rejected.body["diagnostics"])["message"],
        "there is no state `nowhere`"
    );
    assert!(
        rejected
            .headers
            .get("vary")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("accept-language")),
        "{:?}",
        rejected.headers
    );
    let chinese = Api::send(
        api.request(reqwest::Method::GET, Some("owner"), "/api/validation")
            .header("accept-language", "zh-CN,zh;q=0.9"),
    )
    .await;
    let said = unknown_state(&chinese.ok(200)["last_reload"]["diagnostics"]);
    assert_eq!(said["message"], "没有名为 `nowhere` 的状态");
    assert!(
        said["hint"]
            .as_str()
            .is_some_and(|h| !h.contains("did you mean")),
        "{said}"
    );
    let english = api.get(Some("owner"), "/api/validation").await;
    assert_eq!(
        unknown_state(&english.ok(200)["last_reload"]["diagnostics"])["message"],
        "there is no state `nowhere`"
    );
    let still = api
        .get(Some("owner"), "/api/workflows/hot_work_permit")
        .await;
    assert_eq!(
        still.ok(200)["version"],
        new.as_str(),
        "the version in force stays"
    );
    let validation = api.get(Some("owner"), "/api/validation").await;
    assert_eq!(validation.ok(200)["ok"], true);
    assert_eq!(validation.body["last_reload"]["result"], "rejected");
    api.post(Some("owner"), "/api/reload", json!({"now": true}))
        .await
        .problem(422, "bad_body");
    api.server.stop().await;
}

/// Made-up methods and paths add no metric series: a method label is a standard method or
/// `other`, and no label carries a path.
#[tokio::test(flavor = "multi_thread")]
async fn made_up_methods_add_no_metric_series() {
    let api = Api::new().await;
    for n in 0..40 {
        let method = reqwest::Method::from_bytes(format!("FOO{n}").as_bytes()).expect("a token");
        let answer = Api::send(api.request(method, None, &format!("/api/made-up-{n}"))).await;
        assert!(answer.status.is_client_error(), "{}", answer.text);
    }
    let metrics = api.get(None, "/metrics").await;
    let series: Vec<&str> = metrics
        .text
        .lines()
        .filter(|l| l.starts_with("sopflow_http_responses_total{"))
        .collect();
    assert!(series.len() <= 4, "{series:#?}");
    assert!(
        series.iter().any(|s| s.contains("method=\"other\"")),
        "{series:#?}"
    );
    assert!(!metrics.text.contains("FOO"), "{}", metrics.text);
    assert!(!metrics.text.contains("made-up"), "{}", metrics.text);
    api.server.stop().await;
}

/// The server state builds the actor from the caller: what a route hands over has no actor.
#[tokio::test(flavor = "multi_thread")]
async fn the_state_acts_as_the_caller_and_nobody_else() {
    use sopflow::server::auth::{Caller, Credential};
    use sopflow::server::{FireInput, StartInput};
    let api = Api::new().await;
    let state = &api.server.state;
    let as_user = |id: &str| Caller {
        user: state.users().get(id).cloned().expect("a demo user"),
        credential: Credential::Token,
        lang: sopflow::i18n::Lang::Zh,
    };
    let wang = as_user("wang");
    let started = state
        .start(
            &wang,
            StartInput {
                workflow: "hot_work_permit".into(),
                ..StartInput::default()
            },
        )
        .await
        .expect("starts");
    assert_eq!(started.entry.actor, "wang");
    assert_eq!(started.entry.role.as_deref(), Some("contractor"));
    let id = started.instance.id;
    let submitted = state
        .fire(
            &wang,
            &id,
            FireInput {
                event: "submit".into(),
                payload: submit_payload(),
                ..FireInput::default()
            },
        )
        .await
        .expect("submits");
    assert_eq!(submitted.entry.actor, "wang");
    // wang cannot approve, whatever the input says: the input has no actor to say it with.
    let refused = state
        .fire(
            &wang,
            &id,
            FireInput {
                event: "approve".into(),
                payload: json!({"actor": "li"}),
                ..FireInput::default()
            },
        )
        .await
        .expect_err("wang is not order_dept");
    assert!(refused.status.is_client_error(), "{refused:?}");
    let refused = state
        .fire(
            &wang,
            &id,
            FireInput {
                event: "approve".into(),
                ..FireInput::default()
            },
        )
        .await
        .expect_err("wang is not order_dept");
    assert_eq!(refused.code, "role_not_allowed");
    api.server.stop().await;
}

/// The README's table of routes is the route table's: one row per route, in path order, with
/// who may call it and what it does.
#[test]
fn the_readme_lists_every_route_as_the_table_says() {
    let readme = std::fs::read_to_string(support::project().join("README.md")).expect("README");
    let mut rows: Vec<(&str, String)> = ROUTES
        .iter()
        .map(|route| {
            let who = match route.access {
                Access::Public => "none".to_string(),
                Access::User => "any user".to_string(),
                Access::Role(role) => format!("`{role}`"),
            };
            (
                route.path,
                format!(
                    "| `{} {}` | {who} | {} |",
                    route.verb.as_str(),
                    route.path,
                    route.summary
                ),
            )
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(b.0).then(a.1.cmp(&b.1)));
    let expected: Vec<String> = rows.into_iter().map(|(_, row)| row).collect();
    let found: Vec<String> = readme
        .lines()
        .filter(|l| l.starts_with("| `GET ") || l.starts_with("| `POST "))
        .map(str::to_string)
        .collect();
    assert_eq!(
        found, expected,
        "the README's route table differs from ROUTES"
    );
}

/// With only the shipped demo users, a renovation goes from the briefing to its pass cards
/// and its hot-work permit, and the contractor takes the permit on: nobody is missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_users_take_a_renovation_to_its_hot_work_permit() {
    let api = Api::new().await;
    let started = api
        .post(
            Some("zhou"),
            "/api/instances",
            json!({"workflow": "renovation_approval", "data": {"unit": "B2-031", "owner_occupant": "sun"}}),
        )
        .await;
    let id = started.ok(201)["instance"]["id"]
        .as_str()
        .expect("an id")
        .to_string();
    let application = json!({"payload": {
        "application_form": "ZX-2026-031", "renovation_plan": "施工装修方案-B2-031",
        "contractor": "wang", "contractor_unit": "shama精装",
        "owner_authorisation": true, "entry_notice_letter": true, "site_manager_letter": true,
        "business_licence_copy": true, "tax_registration_copy": true,
        "organisation_code_copy": true, "needs_gov_approval": false,
    }});
    let steps: [(&str, &str, Value); 9] = [
        ("sun", "submit_application", application),
        (
            "he",
            "approve_plan",
            json!({"payload": {"review_opinion": "同意"}}),
        ),
        ("zhou", "notify_owner", json!({})),
        ("sun", "sign_undertaking", json!({})),
        ("wang", "sign_undertaking", json!({})),
        (
            "wang",
            "sign_undertakings",
            json!({"payload": {"fire_safety_responsibility_signed": true, "management_agreement_signed": true, "signatory_list_signed": true, "fire_safety_rules_received": true}}),
        ),
        (
            "zhou",
            "pay_fees",
            json!({"payload": {"amount_paid": 5000, "fee_receipt": "SJ-0319"}}),
        ),
        (
            "wei",
            "issue_entry",
            json!({"payload": {"workers": ["510104199001011234"], "pass_application_sealed": true, "entry_notice_no": "JC-031"}}),
        ),
        ("wang", "request_hot_work", json!({})),
    ];
    for (user, event, body) in steps {
        let answer = api.fire(user, &id, event, body).await;
        assert_eq!(
            answer.status.as_u16(),
            200,
            "{user} {event}: {}",
            answer.text
        );
    }
    let renovation = api.get(Some("wang"), &format!("/api/instances/{id}")).await;
    let children = renovation.ok(200)["instance"]["children"]
        .as_array()
        .expect("children")
        .clone();
    let workflows: Vec<&str> = children
        .iter()
        .filter_map(|c| c["workflow"].as_str())
        .collect();
    assert_eq!(
        workflows,
        ["construction_pass", "hot_work_permit"],
        "{children:?}"
    );
    let permit = children[1]["id"].as_str().expect("the permit's id");
    let submitted = api
        .fire(
            "wang",
            permit,
            "submit",
            json!({"payload": {"notification_letter": "HW-1", "applicant_seal": true, "operator_certificate": "T-1"}}),
        )
        .await;
    assert_eq!(submitted.ok(200)["instance"]["state"], "security_review");
    let inbox = api.get(Some("li"), "/api/tasks").await;
    assert!(
        inbox.ok(200).to_string().contains(permit),
        "李队长 finds the permit in his inbox: {}",
        inbox.text
    );
}

/// A refusal tells programs its code and people what to do, in the language they read:
/// Chinese unless `Accept-Language` prefers English, with the YAML's titles, never ids.
#[tokio::test(flavor = "multi_thread")]
async fn a_refusal_speaks_the_callers_language_with_the_workflows_titles() {
    let api = Api::new().await;
    let started = api
        .post(
            Some("wang"),
            "/api/instances",
            json!({"workflow": "hot_work_permit"}),
        )
        .await;
    let id = started.ok(201)["instance"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let path = format!("/api/instances/{id}/events/submit");
    let unsealed = json!({"payload": {"notification_letter": "HW-1", "applicant_seal": false, "operator_certificate": "T-1"}});
    let answer = |lang: Option<&'static str>| {
        let mut request = api
            .request(reqwest::Method::POST, Some("wang"), &path)
            .json(&unsealed);
        if let Some(lang) = lang {
            request = request.header("accept-language", lang);
        }
        Api::send(request)
    };

    let chinese = answer(None).await;
    chinese.problem(409, "guard_failed");
    assert_eq!(
        chinese.body["message"],
        "请勾选:申请单位已加盖鲜章(动火告知函须加盖申请单位鲜章)"
    );

    // An action the step does not have: what it offers, by title, in each language.
    let approve = format!("/api/instances/{id}/events/approve");
    let approving = |lang: &'static str| {
        Api::send(
            api.request(reqwest::Method::POST, Some("wang"), &approve)
                .header("accept-language", lang)
                .json(&json!({})),
        )
    };
    let zh = approving("zh-CN,zh;q=0.9,en;q=0.8").await;
    zh.problem(409, "unknown_event");
    let zh_message = zh.body["message"].as_str().expect("a message");
    assert_eq!(
        zh_message,
        "当前环节“填写动火告知函”没有“初审通过”这项操作。当前可办理:提交申请、撤回申请。"
    );
    assert!(
        !zh_message.contains("submitted") && !zh_message.contains('`'),
        "{zh_message}"
    );
    let en = approving("en-GB,en;q=0.9").await;
    en.problem(409, "unknown_event");
    let en_message = en.body["message"].as_str().expect("a message");
    assert!(en_message.starts_with("The current step “"), "{en_message}");
    // The engine's own words stay for programs and logs.
    assert!(
        en.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("`approve`")
    );
}

/// An instance is found by its readable number as by its id: `GET /api/instances/{number}`,
/// its history and a fire on it; its JSON carries `number`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_is_found_by_its_number() {
    let server = support::spawn().await;
    let id = support::start_permit(&server).await;
    let http = client();
    let by_id: Value = http
        .get(server.url(&format!("/api/instances/{id}")))
        .bearer_auth(token("wang"))
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("json");
    let number = by_id["instance"]["number"]
        .as_str()
        .expect("a number")
        .to_string();
    assert!(
        number.starts_with("DH-") && number.ends_with("-0001"),
        "{number}"
    );
    let by_number: Value = http
        .get(server.url(&format!("/api/instances/{number}")))
        .bearer_auth(token("wang"))
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("json");
    assert_eq!(by_number["instance"]["id"], id.as_str());
    let history: Value = http
        .get(server.url(&format!("/api/instances/{number}/history")))
        .bearer_auth(token("wang"))
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("json");
    assert_eq!(history[0]["number"], number.as_str());
    let missing = http
        .get(server.url("/api/instances/DH-1999-0001"))
        .bearer_auth(token("wang"))
        .send()
        .await
        .expect("answers");
    assert_eq!(missing.status().as_u16(), 404);
    // Someone who may not read it is not told it exists, by number either.
    let hidden = http
        .get(server.url(&format!("/api/instances/{number}")))
        .bearer_auth(token("sun"))
        .send()
        .await
        .expect("answers");
    assert_eq!(hidden.status().as_u16(), 404);
    server.stop().await;
}
