//! Migrating running instances through the server: a process owner plans and applies the move
//! of hot-work permits to a new version of their workflow (the API and the console), others
//! are refused, bad requests write nothing, answers are bounded, and the workflow's page shows
//! the deploy gate.

mod support;

use serde_json::{Value, json};
use sopflow::server::auth::Users;
use sopflow::server::{AppState, Limits, Server};
use std::path::PathBuf;

/// A server over a copy of the shipped definitions, which the test edits.
struct Running {
    base: String,
    state: AppState,
    defs: tempfile::TempDir,
    _data: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    async fn new(limits: Limits) -> Running {
        let defs = tempfile::tempdir().expect("a temporary folder");
        let sources: Vec<PathBuf> = support::copy_definitions(defs.path());
        let data = tempfile::tempdir().expect("a temporary folder");
        let config = support::store_config(&data.path().join("data")).sources(sources.clone());
        let engine = sopflow::engine::Engine::open(config)
            .await
            .expect("the engine opens");
        let users = Users::load(&support::project().join("config/users.yaml")).expect("users");
        let state = AppState::with_limits(engine, users, sources, limits);
        let server = Server::bind(state.clone(), "127.0.0.1:0".parse().expect("an address"))
            .await
            .expect("binds");
        let addr = server.local_addr().expect("an address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            server
                .run(false, async {
                    let _ = stopped.await;
                })
                .await
                .expect("the server runs");
        });
        Running {
            base: format!("http://{addr}"),
            state,
            defs,
            _data: data,
            stop: Some(stop),
            task: Some(task),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Starts `n` hot-work permits as wang; their ids.
    async fn permits(&self, n: usize) -> Vec<String> {
        let mut ids = Vec::new();
        for _ in 0..n {
            let (status, started) = self
                .post(
                    "wang",
                    "/api/instances",
                    json!({"workflow": "hot_work_permit"}),
                )
                .await;
            assert_eq!(status, 201, "{started}");
            ids.push(
                started["instance"]["id"]
                    .as_str()
                    .expect("an id")
                    .to_string(),
            );
        }
        ids
    }

    /// Edits the permit's YAML and reloads; the new version's hash.
    async fn edit_permit(&self, edit: impl Fn(&str) -> String) -> String {
        let file = self.defs.path().join("workflows/hot_work_permit.yaml");
        let text = std::fs::read_to_string(&file).expect("reads");
        let edited = edit(&text);
        assert_ne!(text, edited, "the edit changes the file");
        std::fs::write(&file, edited).expect("writes");
        let attempt = self.state.reload_now().await;
        assert_eq!(attempt.result, "applied", "{attempt:?}");
        self.state.engine.latest_versions()["hot_work_permit"].clone()
    }

    async fn post(&self, user: &str, path: &str, body: Value) -> (u16, Value) {
        let response = support::client()
            .post(self.url(path))
            .bearer_auth(support::token(user))
            .json(&body)
            .send()
            .await
            .expect("POST");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, user: &str, path: &str) -> Value {
        let response = support::client()
            .get(self.url(path))
            .bearer_auth(support::token(user))
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status(), 200, "{path}");
        response.json().await.expect("json")
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("the server task ends");
        }
    }
}

/// The permit's first state renamed: `drafted` becomes `draft`, so instances waiting in it
/// need a mapping.
fn rename_drafted(text: &str) -> String {
    text.replace("initial: drafted", "initial: draft")
        .replace("\n  drafted:\n", "\n  draft:\n")
}

const PLAN: &str = "/api/workflows/hot_work_permit/migration/plan";
const APPLY: &str = "/api/workflows/hot_work_permit/migration/apply";

#[tokio::test(flavor = "multi_thread")]
async fn a_process_owner_plans_and_applies_a_migration_through_the_api() {
    let server = Running::new(Limits::default()).await;
    let ids = server.permits(3).await;
    let old = server.state.engine.latest_versions()["hot_work_permit"].clone();
    let new = server.edit_permit(rename_drafted).await;
    assert_ne!(old, new);

    // Planned as they are: the state they wait in is gone, so every plan is blocked.
    let (status, plan) = server.post("owner", PLAN, json!({})).await;
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["summary"]["considered"], 3, "{plan}");
    assert_eq!(plan["summary"]["clean"], 0, "{plan}");
    assert_eq!(plan["summary"]["blocked"], 3, "{plan}");
    assert_eq!(plan["summary"]["to_version"], new.as_str());
    assert_eq!(plan["truncated"], false);
    assert_eq!(plan["plans"].as_array().map(Vec::len), Some(3));
    assert!(
        plan["plans"][0]["blockers"]
            .as_array()
            .is_some_and(|b| !b.is_empty()),
        "{plan}"
    );

    // With the state mapped, every plan is clean; nothing was written by planning.
    let mapped = json!({"to": "current", "mapping": {"states": {"drafted": "draft"}}});
    let (status, plan) = server.post("owner", PLAN, mapped.clone()).await;
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["summary"]["clean"], 3, "{plan}");
    assert_eq!(plan["plans"][0]["lands_in"], "draft", "{plan}");
    let before = server
        .get("wang", &format!("/api/instances/{}", ids[0]))
        .await;
    assert_eq!(before["instance"]["version"], old.as_str());

    // Not a process owner: refused with the role it needs, whatever the body.
    for user in ["wang", "audit"] {
        let (status, refused) = server.post(user, APPLY, mapped.clone()).await;
        assert_eq!(status, 403, "{refused}");
        assert_eq!(refused["code"], "missing_role");
        assert_eq!(refused["role"], "process_owner");
    }
    // Bad requests: nothing is planned or written.
    let bad = [
        (
            json!({"mapping": {"states": {"drafted": "nowhere"}}}),
            422,
            "bad_mapping",
        ),
        (
            json!({"mapping": {"states": {"drafted": "withdrawn"}}}),
            422,
            "bad_mapping",
        ),
        (
            json!({"mapping": {"set": {"no_such_field": 1}}}),
            422,
            "bad_mapping",
        ),
        (
            json!({"mapping": {"states": {}, "extra": true}}),
            422,
            "bad_body",
        ),
        (json!({"actor": "owner"}), 422, "bad_body"),
        (json!({"to": "zzzzzz"}), 404, "unknown_version"),
        (json!({"to": "current", "only": ["a\nb"]}), 400, "bad_key"),
        (json!({"state": "draft\u{0}"}), 400, "bad_key"),
        (
            json!({"only": ["hot_work_permit-999"]}),
            404,
            "unknown_instance",
        ),
        (json!({"comment": "x".repeat(2001)}), 422, "bad_body"),
    ];
    for (body, status, code) in bad {
        let (got, problem) = server.post("owner", APPLY, body.clone()).await;
        assert_eq!(
            (got, problem["code"].as_str()),
            (status, Some(code)),
            "{body}: {problem}"
        );
    }
    let (status, problem) = server
        .post("owner", "/api/workflows/no_such/migration/plan", json!({}))
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (404, Some("unknown_workflow")),
        "{problem}"
    );
    let still = server
        .get("wang", &format!("/api/instances/{}", ids[0]))
        .await;
    assert_eq!(still["instance"]["version"], old.as_str());
    assert_eq!(still["instance"]["seq"], before["instance"]["seq"]);

    // Applied: each instance moves, by one entry that records why.
    let mut apply = mapped.clone();
    apply["comment"] = json!("新版本改了状态名");
    let (status, applied) = server.post("owner", APPLY, apply.clone()).await;
    assert_eq!(status, 200, "{applied}");
    assert_eq!(applied["summary"]["clean"], 3, "{applied}");
    assert_eq!(applied["summary"]["blocked"], 0, "{applied}");
    let outcomes = applied["outcomes"].as_array().expect("outcomes");
    assert_eq!(outcomes.len(), 3);
    assert!(
        outcomes.iter().all(|o| o["outcome"] == "migrated"),
        "{applied}"
    );
    for id in &ids {
        let after = server.get("wang", &format!("/api/instances/{id}")).await;
        assert_eq!(after["instance"]["version"], new.as_str(), "{after}");
        assert_eq!(after["instance"]["state"], "draft", "{after}");
        let history = server
            .get("wang", &format!("/api/instances/{id}/history"))
            .await;
        let last = history.as_array().and_then(|h| h.last()).expect("entries");
        assert_eq!(last["event"], "migrate", "{last}");
        assert_eq!(last["migration"]["from_version"], old.as_str(), "{last}");
        assert_eq!(last["migration"]["comment"], "新版本改了状态名", "{last}");
    }

    // Both answers are what the OpenAPI document says they are.
    let doc = server.get("wang", "/api/openapi.json").await;
    conforms(&doc, PLAN, &plan);
    conforms(&doc, APPLY, &applied);

    // Again: nothing left to move.
    let (status, again) = server.post("owner", APPLY, apply).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["summary"]["considered"], 0, "{again}");
    assert_eq!(again["summary"]["current"], 3, "{again}");
    assert_eq!(again["outcomes"], json!([]));

    // The moved instances carry on under the new version.
    let (status, moved) = server
        .post(
            "wang",
            &format!("/api/instances/{}/events/withdraw", ids[0]),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(moved["instance"]["state"], "withdrawn");
    support_verify(&server).await;
    server.stop().await;
}

/// Asserts that `answer` validates against the schema the document gives the 200 answer of
/// `POST path` (references resolved in its components).
#[track_caller]
fn conforms(doc: &Value, path: &str, answer: &Value) {
    let templated = path.replace("hot_work_permit", "{id}");
    let schema = &doc["paths"][templated.as_str()]["post"]["responses"]["200"]["content"]["application/json"]
        ["schema"];
    assert!(schema.is_object(), "{templated} is documented");
    let schema = json!({"components": doc["components"], "allOf": [schema]});
    let validator = jsonschema::validator_for(&schema).expect("a valid schema");
    let errors: Vec<String> = validator
        .iter_errors(answer)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{path}: {errors:#?}\n{answer}");
}

/// The store verifies clean after the migration: chains, snapshots, versions.
async fn support_verify(server: &Running) {
    let (status, verified) = server.post("audit", "/api/audit/verify", json!({})).await;
    assert_eq!(status, 200, "{verified}");
    assert_eq!(verified["clean"], true, "{verified}");
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_list_a_bounded_number_of_instances_and_count_them_all() {
    let server = Running::new(Limits {
        migration_listed: 2,
        ..Limits::default()
    })
    .await;
    server.permits(3).await;
    server
        .edit_permit(|text| {
            text.replace("title: 填写动火告知函", "title: 填写动火告知函并上传附件")
        })
        .await;
    let (status, plan) = server.post("owner", PLAN, json!({})).await;
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["summary"]["considered"], 3, "{plan}");
    assert_eq!(plan["summary"]["clean"], 3, "{plan}");
    assert_eq!(plan["plans"].as_array().map(Vec::len), Some(2));
    assert_eq!(plan["truncated"], true);
    let (status, applied) = server.post("owner", APPLY, json!({})).await;
    assert_eq!(status, 200, "{applied}");
    assert_eq!(applied["summary"]["clean"], 3, "{applied}");
    assert_eq!(applied["outcomes"].as_array().map(Vec::len), Some(2));
    assert_eq!(applied["truncated"], true);
    server.stop().await;
}

/// A console session: its cookie, signed in through the form.
struct Session {
    http: reqwest::Client,
    base: String,
    cookie: String,
}

impl Session {
    async fn sign_in(base: &str, user: &str) -> Session {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client");
        let response =
            support::post_login(&http, base, &[("user", user), ("password", "demo")]).await;
        assert_eq!(response.status(), 303, "{user} signs in");
        let cookie = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("sopflow_session="))
            .expect("a session cookie")
            .split(';')
            .next()
            .unwrap_or_default()
            .to_string();
        Session {
            http,
            base: base.to_string(),
            cookie,
        }
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .expect("GET");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    /// Posts a form: the status, and the redirect's address or the page.
    async fn post(&self, path: &str, form: &[(&str, &str)]) -> (u16, String) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(support::form_body(form))
            .send()
            .await
            .expect("POST");
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = response.text().await.unwrap_or_default();
        (status, location.unwrap_or(body))
    }
}

/// The value of the first hidden `_csrf` field of a page.
fn csrf(page: &str) -> String {
    let marker = "name=\"_csrf\" value=\"";
    let at = page.find(marker).expect("a CSRF field") + marker.len();
    page[at..].split('"').next().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_shows_the_gate_and_the_plan_to_a_process_owner_and_applies_it() {
    let server = Running::new(Limits::default()).await;
    let ids = server.permits(2).await;
    let new = server.edit_permit(rename_drafted).await;
    let owner = Session::sign_in(&server.base, "owner").await;
    let wang = Session::sign_in(&server.base, "wang").await;

    // The gate: two instances on an older version, none clean without a mapping.
    let (status, page) = owner.get("/workflows/hot_work_permit").await;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"migration-gate\""), "{page}");
    assert!(page.contains("data-older=\"2\""), "{page}");
    assert!(page.contains("data-clean=\"0\""), "{page}");
    assert!(page.contains("2 个在办实例仍按旧版本运行"), "{page}");
    assert!(
        page.contains("href=\"/workflows/hot_work_permit/migration\""),
        "{page}"
    );
    // A clerk sees no gate and may not open the plan.
    let (status, page) = wang.get("/workflows/hot_work_permit").await;
    assert_eq!(status, 200);
    assert!(!page.contains("migration-gate"), "{page}");
    let (status, page) = wang.get("/workflows/hot_work_permit/migration").await;
    assert_eq!(status, 403, "{page}");
    assert!(!page.contains("migration-summary"), "{page}");

    // The plan in the owner's words: blocked, the removed state offered for mapping.
    let (status, page) = owner.get("/workflows/hot_work_permit/migration").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("id=\"migration-blocked\""), "{page}");
    assert!(!page.contains("id=\"migration-apply\""), "{page}");
    assert!(page.contains("name=\"map.drafted\""), "{page}");
    assert!(page.contains("填写动火告知函"), "the state's title: {page}");
    assert!(!page.contains('`'), "no backticks: {page}");
    // Mapped: clean, with the apply form.
    let (status, page) = owner
        .get("/workflows/hot_work_permit/migration?map.drafted=draft")
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("id=\"migration-clean\""), "{page}");
    assert!(!page.contains("id=\"migration-blocked\""), "{page}");
    assert!(page.contains("data-clean=\"2\""), "{page}");
    assert!(page.contains("id=\"migration-apply\""), "{page}");
    let token = csrf(&page);

    // The apply form refuses a missing or wrong token, and a clerk.
    let form = |csrf: Option<&str>| {
        let mut form = vec![
            ("map.drafted", "draft".to_string()),
            ("comment", "状态改名".to_string()),
        ];
        if let Some(csrf) = csrf {
            form.push(("_csrf", csrf.to_string()));
        }
        form
    };
    let send = |form: &Vec<(&'static str, String)>| {
        form.iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect::<Vec<(&str, String)>>()
    };
    for refused in [form(None), form(Some("forged"))] {
        let pairs = send(&refused);
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, _) = owner
            .post("/workflows/hot_work_permit/migration", &pairs)
            .await;
        assert_eq!(status, 403);
    }
    let wang_page = wang.get("/").await.1;
    let pairs = send(&form(Some(&csrf(&wang_page))));
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, _) = wang
        .post("/workflows/hot_work_permit/migration", &pairs)
        .await;
    assert_eq!(status, 403);
    // The API, called with the owner's session cookie, wants the CSRF token as every write.
    let response = owner
        .http
        .post(server.url(APPLY))
        .header("cookie", &owner.cookie)
        .header("content-type", "application/json")
        .body(r#"{"mapping": {"states": {"drafted": "draft"}}}"#)
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 403);
    let problem: Value = response.json().await.expect("a problem");
    assert_eq!(problem["code"], "bad_csrf", "{problem}");
    let still = server
        .get("wang", &format!("/api/instances/{}", ids[0]))
        .await;
    assert_ne!(still["instance"]["version"], new.as_str(), "nothing moved");

    // With the token: moved, and the page after the redirect says so.
    let pairs = send(&form(Some(&token)));
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, location) = owner
        .post("/workflows/hot_work_permit/migration", &pairs)
        .await;
    assert_eq!(status, 303, "{location}");
    assert!(
        location.starts_with("/workflows/hot_work_permit/migration"),
        "{location}"
    );
    let (status, page) = owner.get(&location).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("id=\"migration-done\""), "{page}");
    assert!(page.contains("data-migrated=\"2\""), "{page}");
    assert!(page.contains("已迁移 2 个实例"), "{page}");
    for id in &ids {
        let after = server.get("wang", &format!("/api/instances/{id}")).await;
        assert_eq!(after["instance"]["version"], new.as_str());
        assert_eq!(after["instance"]["state"], "draft");
    }
    // The gate is counted again: nothing left.
    let (_, page) = owner.get("/workflows/hot_work_permit").await;
    assert!(page.contains("data-older=\"0\""), "{page}");

    // The instance's page shows the migration in Chinese: versions, comment, who.
    let (status, page) = wang.get(&format!("/instances/{}", ids[0])).await;
    assert_eq!(status, 200);
    assert!(page.contains("版本迁移"), "{page}");
    assert!(page.contains("状态改名"), "{page}");
    assert!(page.contains("流程负责人"), "{page}");
    assert!(!page.contains(">migrate<"), "{page}");
    assert!(!page.contains(">process_owner<"), "{page}");
    // The state it left is named by the old version's title, the one it is in by the new's.
    assert!(!page.contains("drafted"), "{page}");
    server.stop().await;
}

/// Where the log goes: a shared buffer.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reload_that_leaves_instances_on_an_older_version_logs_the_gate() {
    let log = Captured::default();
    let writer = log.clone();
    // Installed for this whole test binary; other tests' lines are only more lines.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("sopflow=info"))
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .try_init();
    let server = Running::new(Limits::default()).await;
    server.permits(2).await;
    let new = server
        .edit_permit(|text| text.replace("title: 填写动火告知函", "title: 填写动火告知函并盖章"))
        .await;
    // This test's line: the other tests of the binary log theirs here too.
    let ours = format!("version=\"{}\"", &new[..12]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let line = loop {
        let text =
            String::from_utf8_lossy(&log.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned();
        if let Some(line) = text
            .lines()
            .find(|l| l.contains("running instances stay on older versions") && l.contains(&ours))
        {
            break line.to_string();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no gate logged after the reload: {text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(line.contains("workflow=\"hot_work_permit\""), "{line}");
    assert!(
        line.contains("older=2") && line.contains("clean=2"),
        "{line}"
    );
    // The count made at the reload is the one the workflow's page shows.
    let owner = Session::sign_in(&server.base, "owner").await;
    let (_, page) = owner.get("/workflows/hot_work_permit").await;
    assert!(page.contains("data-older=\"2\" data-clean=\"2\""), "{page}");
    server.stop().await;
}
