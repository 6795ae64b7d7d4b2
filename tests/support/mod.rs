//! A real server for tests: the shipped workflows, rules and calendars, the shipped demo users
//! (`config/users.yaml`: token `demo-<id>`, password `demo`), a temporary sled store, and a
//! random loopback port.
#![allow(dead_code)]

use sopflow::engine::{Config, Engine};
use sopflow::server::auth::Users;
use sopflow::server::{AppState, Limits, Server};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// A running server.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    pub addr: SocketAddr,
    /// The data folder (and anything else the test puts there).
    pub dir: tempfile::TempDir,
    pub state: AppState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// The project's folder, where `workflows/`, `rules/`, `calendars/` and `config/` are.
pub fn project() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A server over the shipped definitions, with the definition folders not watched.
pub async fn spawn() -> TestServer {
    spawn_with(shipped_sources(), false).await
}

/// The shipped definition folders.
pub fn shipped_sources() -> Vec<PathBuf> {
    let root = project();
    vec![
        root.join("workflows"),
        root.join("rules"),
        root.join("calendars"),
    ]
}

/// Copies the shipped definition folders into `to` (for tests that edit them); returns the
/// copies.
pub fn copy_definitions(to: &Path) -> Vec<PathBuf> {
    let mut sources = Vec::new();
    for from in shipped_sources() {
        let target = to.join(from.file_name().expect("a folder name"));
        std::fs::create_dir_all(&target).expect("creates the folder");
        for file in std::fs::read_dir(&from)
            .expect("reads the folder")
            .flatten()
        {
            if file.path().is_file() {
                std::fs::copy(file.path(), target.join(file.file_name())).expect("copies");
            }
        }
        sources.push(target);
    }
    sources
}

/// A server over these definition folders; `watch` turns hot reload on.
pub async fn spawn_with(sources: Vec<PathBuf>, watch: bool) -> TestServer {
    let users = Users::load(&project().join("config/users.yaml")).expect("the demo users load");
    spawn_full(sources, users, watch, Limits::default()).await
}

/// A server over the shipped definitions and demo users, with these limits.
pub async fn spawn_with_limits(limits: Limits) -> TestServer {
    let users = Users::load(&project().join("config/users.yaml")).expect("the demo users load");
    spawn_full(shipped_sources(), users, false, limits).await
}

/// A server over the shipped definitions with these users (the text of a users file).
pub async fn spawn_with_users(users: &str) -> TestServer {
    let users = Users::parse(users).expect("the users parse");
    spawn_full(shipped_sources(), users, false, Limits::default()).await
}

async fn spawn_full(
    sources: Vec<PathBuf>,
    users: Users,
    watch: bool,
    limits: Limits,
) -> TestServer {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let config = Config::new(dir.path().join("data")).sources(sources.clone());
    let engine = Engine::open(config).await.expect("the engine opens");
    assert!(
        !engine.load_report().has_errors(),
        "the definitions have errors: {:?}",
        engine.load_report().diagnostics
    );
    let state = AppState::with_limits(engine, users, sources, limits);
    let server = Server::bind(state.clone(), "127.0.0.1:0".parse().expect("an address"))
        .await
        .expect("binds a loopback port");
    let addr = server.local_addr().expect("an address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        server
            .run(watch, async {
                let _ = stopped.await;
            })
            .await
            .expect("the server runs");
    });
    TestServer {
        base: format!("http://{addr}"),
        addr,
        dir,
        state,
        stop: Some(stop),
        task: Some(task),
    }
}

impl TestServer {
    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("the server task ends");
        }
    }
}

/// An HTTP client for tests.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("an HTTP client")
}

/// The demo token of a demo user.
pub fn token(user: &str) -> String {
    format!("demo-{user}")
}

/// A URL-encoded form body (reqwest is built without its `form` feature).
pub fn form_body(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).expect("a form body")
}

/// The sign-in form as a browser gets it: its cookie (`sopflow_login=...`) and its token.
pub async fn login_form(http: &reqwest::Client, base: &str) -> (String, String) {
    let response = http
        .get(format!("{base}/login"))
        .send()
        .await
        .expect("the sign-in page");
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("sopflow_login="))
        .expect("the sign-in form's cookie")
        .split(';')
        .next()
        .unwrap_or_default()
        .to_string();
    let page = response.text().await.expect("the page");
    let marker = "name=\"_login\" value=\"";
    let at = page.find(marker).expect("the form's token") + marker.len();
    let token = page[at..].split('"').next().unwrap_or_default().to_string();
    (cookie, token)
}

/// Posts the sign-in form as a browser would, with its cookie and token.
pub async fn post_login(
    http: &reqwest::Client,
    base: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let (cookie, token) = login_form(http, base).await;
    let mut fields = fields.to_vec();
    fields.push(("_login", &token));
    http.post(format!("{base}/login"))
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&fields))
        .send()
        .await
        .expect("sign in")
}

/// Asserts that `POST /api/audit/verify` finds the server's store clean: whatever a test sent,
/// every chain, snapshot and index is intact.
pub async fn assert_store_clean(server: &TestServer) {
    let verified: serde_json::Value = client()
        .post(server.url("/api/audit/verify"))
        .bearer_auth(token("audit"))
        .send()
        .await
        .expect("verifies")
        .json()
        .await
        .expect("json");
    assert_eq!(verified["clean"], true, "{verified}");
}

/// Starts a hot-work permit as wang over the API; its id.
pub async fn start_permit(server: &TestServer) -> String {
    let started: serde_json::Value = client()
        .post(server.url("/api/instances"))
        .bearer_auth(token("wang"))
        .json(&serde_json::json!({"workflow": "hot_work_permit"}))
        .send()
        .await
        .expect("starts")
        .json()
        .await
        .expect("json");
    started["instance"]["id"]
        .as_str()
        .expect("an id")
        .to_string()
}
