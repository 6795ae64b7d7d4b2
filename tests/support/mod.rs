//! A real server for tests: the shipped workflows, rules and calendars, the shipped demo users
//! (`config/users.yaml`: token `demo-<id>`, password `demo`), a temporary sled store, and a
//! random loopback port.
#![allow(dead_code)]

pub mod console;
pub mod receiver;

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
    spawn_in(dir, sources, users, watch, limits).await
}

/// A server over the shipped definitions and demo users, sending notifications by these
/// channels (the text of a channels file, its secrets from `env`).
pub async fn spawn_with_channels(
    channels: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> TestServer {
    let users = Users::load(&project().join("config/users.yaml")).expect("the demo users load");
    let channels = sopflow::delivery::Channels::parse(channels, env).expect("the channels parse");
    let dir = tempfile::tempdir().expect("a temporary folder");
    spawn_channels(
        dir,
        shipped_sources(),
        users,
        false,
        Limits::default(),
        channels,
    )
    .await
}

/// A server over the shipped definitions and demo users whose store is the one of `dir` (see
/// [`TestServer::stop_keeping`]): a second server on the same store, or the same one
/// restarted.
pub async fn spawn_again(dir: tempfile::TempDir) -> TestServer {
    let users = Users::load(&project().join("config/users.yaml")).expect("the demo users load");
    spawn_in(dir, shipped_sources(), users, false, Limits::default()).await
}

async fn spawn_in(
    dir: tempfile::TempDir,
    sources: Vec<PathBuf>,
    users: Users,
    watch: bool,
    limits: Limits,
) -> TestServer {
    let channels = sopflow::delivery::Channels::default();
    spawn_channels(dir, sources, users, watch, limits, channels).await
}

async fn spawn_channels(
    dir: tempfile::TempDir,
    sources: Vec<PathBuf>,
    users: Users,
    watch: bool,
    limits: Limits,
    channels: sopflow::delivery::Channels,
) -> TestServer {
    let config = store_config(&dir.path().join("data")).sources(sources.clone());
    let engine = Engine::open(config).await.expect("the engine opens");
    assert!(
        !engine.load_report().has_errors(),
        "the definitions have errors: {:?}",
        engine.load_report().diagnostics
    );
    let state = AppState::with_limits(engine, users, sources, limits).with_channels(channels);
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

    /// Stops the server and hands back its folder, store included, for [`spawn_again`].
    pub async fn stop_keeping(mut self) -> tempfile::TempDir {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("the server task ends");
        }
        let TestServer { dir, state, .. } = self;
        // The engine, and with it the store, closes before the folder is handed back.
        drop(state);
        dir
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

/// Signs `user` in (password `demo`) through the sign-in form, with `http` (which must not
/// follow redirects); the session's cookie as a `Cookie` header carries it (`name=value`).
pub async fn session_cookie(http: &reqwest::Client, base: &str, user: &str) -> String {
    let response = post_login(http, base, &[("user", user), ("password", "demo")]).await;
    assert_eq!(response.status(), 303, "{user} signs in");
    let prefix = format!("{}=", sopflow::server::auth::SESSION_COOKIE);
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&prefix))
        .expect("a session cookie")
        .split(';')
        .next()
        .unwrap_or_default()
        .to_string()
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

// ---- The store the engine, scenario and audit suites run on ----
//
// `SOPFLOW_TEST_STORE=postgres` (with `SOPFLOW_TEST_POSTGRES=postgres://...`, a database the
// tests may create databases in) runs them on PostgreSQL; otherwise on sled in the test's temp
// folder. `.ci/run` runs them both ways.

/// The store a test keeps in `data` (a folder in its temp dir): that folder on sled, or on
/// PostgreSQL a database of its own named after the folder, created on first use, so that
/// reopening `data` reaches the same store and tests in parallel share nothing.
pub fn store_location(data: &Path) -> sopflow::store::StoreLocation {
    match std::env::var("SOPFLOW_TEST_STORE").as_deref() {
        Ok("postgres") => {
            let Some(server) = test_postgres() else {
                panic!("SOPFLOW_TEST_STORE=postgres needs SOPFLOW_TEST_POSTGRES=postgres://...");
            };
            sopflow::store::StoreLocation::Postgres(postgres_database(&server, data))
        }
        Ok("sled") | Ok("") | Err(_) => sopflow::store::StoreLocation::Sled(data.to_path_buf()),
        Ok(other) => panic!("SOPFLOW_TEST_STORE is `{other}`: give sled or postgres"),
    }
}

/// [`Config::new`] for the store of [`store_location`].
pub fn store_config(data: &Path) -> Config {
    Config::at(store_location(data))
}

/// Whether the suites run on PostgreSQL (for the few checks that read sled directly).
pub fn on_postgres() -> bool {
    std::env::var("SOPFLOW_TEST_STORE").as_deref() == Ok("postgres")
}

/// The PostgreSQL server for tests (`SOPFLOW_TEST_POSTGRES`), if one is given.
pub fn test_postgres() -> Option<String> {
    std::env::var("SOPFLOW_TEST_POSTGRES")
        .ok()
        .filter(|url| !url.is_empty())
}

/// The PostgreSQL server for a test that needs one; `None` (after a visible SKIPPED line)
/// when there is none, unless `SOPFLOW_REQUIRE_POSTGRES` is set, which `.ci/run` does: then a
/// missing database fails the test instead of letting it pass silently.
pub fn postgres_or_skip(test: &str) -> Option<String> {
    match test_postgres() {
        Some(url) => Some(url),
        None => {
            assert!(
                std::env::var_os("SOPFLOW_REQUIRE_POSTGRES").is_none(),
                "{test} needs PostgreSQL (SOPFLOW_REQUIRE_POSTGRES is set), but SOPFLOW_TEST_POSTGRES is not"
            );
            eprintln!(
                "SKIPPED: {test}: set SOPFLOW_TEST_POSTGRES=postgres://... (`bash .ci/postgres start DIR` makes a server)"
            );
            None
        }
    }
}

/// A database of its own on `server` for the test folder `data`: its URL. Created if missing.
pub fn postgres_database(server: &str, data: &Path) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    data.hash(&mut hasher);
    let name = format!("sopflow_test_{:016x}", hasher.finish());
    let url = with_database(server, &name);
    let server = server.to_string();
    // tokio-postgres needs a runtime; this may be called from a test's own async code, so it
    // runs on a thread of its own.
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
                .await
                .expect("connects to SOPFLOW_TEST_POSTGRES");
            tokio::spawn(connection);
            match client
                .batch_execute(&format!("CREATE DATABASE \"{name}\""))
                .await
            {
                Ok(()) => {}
                Err(err)
                    if err.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE) => {
                }
                Err(err) => panic!("cannot create database {name}: {err}"),
            }
        });
    })
    .join()
    .expect("the database is made");
    url
}

/// `server`'s URL naming the database `name` instead.
pub fn with_database(server: &str, name: &str) -> String {
    let start = server.find("://").map_or(0, |at| at + 3);
    let rest = &server[start..];
    let authority_end = rest.find(['/', '?']).map_or(server.len(), |at| start + at);
    let query = server[authority_end..]
        .find('?')
        .map(|at| &server[authority_end + at..])
        .unwrap_or("");
    format!("{}/{name}{query}", &server[..authority_end])
}

/// The `--store` value of [`store_location`] for the command line (a URL in full).
pub fn store_arg(data: &Path) -> String {
    match store_location(data) {
        sopflow::store::StoreLocation::Sled(path) => path.display().to_string(),
        sopflow::store::StoreLocation::Postgres(url) => url,
    }
}

/// Whether a test that reads or rewrites sled's records directly should step aside: on
/// PostgreSQL it prints why and returns true (the sled run covers it).
pub fn sled_only(test: &str) -> bool {
    if on_postgres() {
        eprintln!("sled only: {test} rewrites sled's records directly; the sled run covers it");
        return true;
    }
    false
}

/// The store's sled database opened directly, once the engine that had it is closed: sled's
/// own threads let go of the folder's lock a moment after its last handle is dropped, so a
/// busy lock is tried again for up to five seconds.
pub fn raw_sled(data: &Path) -> sled::Db {
    for _ in 0..250 {
        if let Ok(db) = sled::open(data) {
            return db;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    sled::open(data).expect("sled opens")
}

// ---- Several nodes on one database ----

/// Two engines on one PostgreSQL database, as two `serve` nodes: each with its own store
/// (its own pool), its own instance locks and its own virtual clock, both at `at`, on the
/// definitions in `sources`. `None` (after a SKIPPED line) without PostgreSQL; keep the
/// returned folder for as long as the engines.
pub async fn two_nodes(
    test: &str,
    sources: Vec<PathBuf>,
    at: chrono::DateTime<chrono::Utc>,
) -> Option<(Node, Node, tempfile::TempDir)> {
    let server = postgres_or_skip(test)?;
    let dir = tempfile::tempdir().expect("temp dir");
    let url = postgres_database(&server, &dir.path().join(test));
    let open = |clock: sopflow::clock::VirtualClock| {
        let config = Config::at(sopflow::store::StoreLocation::Postgres(url.clone()))
            .sources(sources.clone())
            .clock(std::sync::Arc::new(clock.clone()));
        async move {
            let engine = Engine::open(config).await.expect("a node opens");
            Node { engine, clock }
        }
    };
    let one = open(sopflow::clock::VirtualClock::new(at)).await;
    let two = open(sopflow::clock::VirtualClock::new(at)).await;
    Some((one, two, dir))
}

/// One node of [`two_nodes`]: its engine and its clock.
#[derive(Clone)]
pub struct Node {
    pub engine: Engine,
    pub clock: sopflow::clock::VirtualClock,
}

/// Verifies every chain and snapshot of the store `engine` runs on, and fails naming the first
/// problems found.
pub async fn assert_verifies(engine: &Engine) {
    let engine = engine.clone();
    let problems = tokio::task::spawn_blocking(move || {
        let mut problems = Vec::new();
        let summary = engine
            .verify_store(
                chrono::Utc::now(),
                &mut |problem| problems.push(format!("{problem:?}")),
                &mut |_| {},
            )
            .expect("verifies");
        (summary, problems)
    })
    .await
    .expect("joins");
    assert!(
        problems.1.is_empty(),
        "{} problems, the first: {:?}",
        problems.0.problems,
        &problems.1[..problems.1.len().min(3)]
    );
}

/// Escalates a complaint whose text holds markup; its id once the notice is routed.
pub async fn escalate_complaint(server: &TestServer) -> String {
    let engine = server.state.engine.clone();
    let zhang = sopflow::machine::Actor::new("zhang", ["cs_receiver"]);
    let id = engine
        .start(
            "complaint_handling",
            sopflow::engine::StartRequest::new(zhang.clone())
                .data(serde_json::json!({"channel": "phone"})),
        )
        .await
        .expect("starts")
        .instance
        .id;
    for (event, payload) in [
        (
            "record",
            serde_json::json!({"complainant_name": "刘女士", "complainant_contact": "13900000002", "content": "电梯困人<script>alert(1)</script>"}),
        ),
        (
            "classify",
            serde_json::json!({"complainants_count": 1, "media_attention": false, "repeat_count": 1, "safety_issue": false, "amount_involved": 20}),
        ),
    ] {
        engine
            .fire(
                &id,
                sopflow::engine::Fire::new(event, zhang.clone()).payload(payload),
            )
            .await
            .expect("a step");
    }
    engine
        .fire(
            &id,
            sopflow::engine::Fire::new("escalate", zhang.clone())
                .comment("需协调电梯维保单位,超越自身权限"),
        )
        .await
        .expect("escalated");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while engine
        .outbox()
        .notices(vec!["role:cs_supervisor".into()], 10)
        .await
        .expect("notices")
        .is_empty()
    {
        assert!(std::time::Instant::now() < deadline, "the notice is routed");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    id.to_string()
}
