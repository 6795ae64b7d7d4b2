//! `sopflow deploy` and servers that run the deployed set: a deploy to PostgreSQL reaches a
//! running server without a restart (new instances start on the new versions, running ones
//! keep theirs), a set with an error changes nothing and says why, and an engine told to run
//! the deployed set of a store that has none refuses to open.

mod support;

use sopflow::Actor;
use sopflow::engine::{Config, Engine, EngineError, StartRequest};
use sopflow::server::auth::Users;
use sopflow::server::{AppState, Server};
use sopflow::store::StoreLocation;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn sopflow() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sopflow"))
}

/// Runs `sopflow deploy` on the definition folders under `root`; its exit code, stdout and
/// stderr.
fn deploy(root: &Path, store: &str) -> (i32, String, String) {
    let output = sopflow()
        .arg("deploy")
        .arg("--store")
        .arg(store)
        .arg("--workflows")
        .arg(root.join("workflows"))
        .arg("--rules")
        .arg(root.join("rules"))
        .arg("--calendars")
        .arg(root.join("calendars"))
        .args(["--by", "ops", "--lang", "en"])
        .env_remove("SOPFLOW_STORE")
        .output()
        .expect("runs sopflow deploy");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `url` with `password` in place of any password it had (the test cluster trusts loopback,
/// so any will do).
fn with_password(url: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let Some((user_info, host)) = rest.split_once('@') else {
        return format!("{scheme}://postgres:{password}@{rest}");
    };
    let user = user_info.split(':').next().unwrap_or(user_info);
    format!("{scheme}://{user}:{password}@{host}")
}

fn clerk() -> Actor {
    Actor::new("wang", ["contractor"])
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_reaches_a_running_server_and_a_set_with_an_error_changes_nothing() {
    let Some(server) = support::postgres_or_skip("deploy to a running server") else {
        return;
    };
    let dir = tempfile::tempdir().expect("a temporary folder");
    support::copy_definitions(dir.path());
    let url = support::postgres_database(&server, &dir.path().join("data"));
    // A password in the URL (the test cluster trusts loopback, so any will do) is never shown.
    let url = with_password(&url, "s3cret-pw");

    let (code, out, err) = deploy(dir.path(), &url);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("deployed") && out.contains("hot_work_permit"),
        "{out}"
    );
    assert!(out.contains("***") && !out.contains("s3cret-pw"), "{out}");

    let config = Config::at(StoreLocation::Postgres(url.clone()))
        .sources(Vec::new())
        .deployed_definitions();
    let engine = Engine::open(config)
        .await
        .expect("opens on the deployed set");
    let users = Users::load(&support::project().join("config/users.yaml")).expect("users");
    let state = AppState::new(engine.clone(), users, Vec::new());
    let served = Server::bind(state, "127.0.0.1:0".parse().expect("an address"))
        .await
        .expect("binds");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        served
            .run(true, async {
                let _ = stopped.await;
            })
            .await
            .expect("serves");
    });

    let first = engine.latest_versions()["hot_work_permit"].clone();
    let running = engine
        .start("hot_work_permit", StartRequest::new(clerk()))
        .await
        .expect("starts on the deployed set");
    assert_eq!(running.instance.version, first);

    // A changed set: a new version of one workflow.
    let file = dir.path().join("workflows/hot_work_permit.yaml");
    let text = std::fs::read_to_string(&file).expect("reads");
    std::fs::write(&file, format!("{text}\n# revised\n")).expect("writes");
    let (code, out, err) = deploy(dir.path(), &url);
    assert_eq!(code, 0, "{out}{err}");
    let watched = engine.clone();
    wait_for("the new set", || {
        watched.latest_versions()["hot_work_permit"] != first
    })
    .await;
    let second = engine.latest_versions()["hot_work_permit"].clone();
    let started = engine
        .start("hot_work_permit", StartRequest::new(clerk()))
        .await
        .expect("starts");
    assert_eq!(
        started.instance.version, second,
        "new instances on the new set"
    );
    let kept = engine.get(&running.instance.id).await.expect("reads");
    assert_eq!(kept.version, first, "a running instance keeps its version");

    // The same files again: nothing to do.
    let (code, out, _) = deploy(dir.path(), &url);
    assert_eq!(code, 0);
    assert!(out.contains("already deployed"), "{out}");

    // A set with an error: refused with the finding, nothing changes.
    let before = engine.deployed_in_store().await.expect("reads");
    std::fs::write(&file, format!("{text}\nstates: [\n")).expect("writes");
    let (code, out, err) = deploy(dir.path(), &url);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("not deployed"), "{err}");
    assert!(
        err.contains("hot_work_permit.yaml"),
        "the finding names the file: {err}"
    );
    assert!(err.contains("E0"), "the finding's code: {err}");
    assert!(!err.contains("s3cret-pw"), "{err}");
    assert_eq!(engine.deployed_in_store().await.expect("reads"), before);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(engine.latest_versions()["hot_work_permit"], second);

    let _ = stop.send(());
    task.await.expect("the server stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_runs_the_set_deployed_to_a_folder_and_refuses_a_store_with_none() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    support::copy_definitions(dir.path());
    let data = dir.path().join("data");
    let location = StoreLocation::Sled(data.clone());
    let config = Config::at(location.clone())
        .sources(Vec::new())
        .deployed_definitions();
    match Engine::open(config.clone()).await {
        Err(err @ EngineError::NothingDeployed { .. }) => {
            assert!(err.to_string().contains("sopflow deploy"), "{err}")
        }
        other => panic!("expected nothing_deployed, got {other:?}"),
    }
    let (code, out, err) = deploy(dir.path(), &data.display().to_string());
    assert_eq!(code, 0, "{out}{err}");
    let engine = Engine::open(config)
        .await
        .expect("opens on the deployed set");
    assert!(engine.workflows().contains(&"hot_work_permit".to_string()));
    assert!(engine.deployed_set().is_some());
}

#[path = "support/readme.rs"]
mod readme;

/// The README's deploy block, run as written on a database of its own (the URL's user, host,
/// port and database the test server's, with the README's password, which `trust` ignores):
/// the deploy prints what the README shows, and `serve --definitions store` starts on the
/// deployed set, naming the store with its password hidden.
#[test]
fn the_readme_deploy_block_runs_as_written() {
    let Some(server) = support::postgres_or_skip("the_readme_deploy_block_runs_as_written") else {
        return;
    };
    let readme = std::fs::read_to_string(support::project().join("README.md")).expect("README");
    let section = readme
        .split("## Running on PostgreSQL")
        .nth(1)
        .expect("the section");
    let block = section
        .split("```sh\n")
        .nth(3)
        .and_then(|rest| rest.split("```").next())
        .expect("the deploy block, the section's third");
    let dir = tempfile::tempdir().expect("a temporary folder");
    let url = with_password(
        &support::postgres_database(&server, &dir.path().join("readme")),
        "secret",
    );
    let shown = sopflow::store::location::redact_url(&url);
    // The README's store and set id, as this run's.
    let ours = |line: &str| {
        let line = line.replace("postgres://sopflow:***@localhost:5432/sopflow", &shown);
        match line.split_once(" as set ") {
            Some((head, tail)) => format!("{head} as set <id>{}", &tail[12.min(tail.len())..]),
            None => line,
        }
    };
    let mut ran = 0;
    for said in readme::commands(block) {
        let args: Vec<&str> = said
            .command
            .strip_prefix("sopflow ")
            .expect("a sopflow command")
            .split_whitespace()
            .collect();
        let expected = ours(
            &said
                .prints
                .clone()
                .expect("the README shows what it prints"),
        );
        let mut run = sopflow();
        run.args(&args)
            .current_dir(support::project())
            .env("SOPFLOW_STORE", &url)
            .env("NO_COLOR", "1");
        let first = if args.first() == Some(&"serve") {
            serve_banner(run)
        } else {
            let output = run.output().expect("runs sopflow");
            assert_eq!(
                output.status.code(),
                Some(said.exit),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            String::from_utf8_lossy(&output.stdout)
                .lines()
                .next()
                .unwrap_or_default()
                .to_string()
        };
        assert_eq!(ours(&first), expected, "`{}`", said.command);
        assert!(!first.contains("secret"), "{first}");
        ran += 1;
    }
    assert_eq!(ran, 2, "deploy and serve");
}

/// The first line `sopflow serve` prints on a loopback port; then it is stopped.
fn serve_banner(mut command: Command) -> String {
    use std::io::{BufRead, BufReader};
    let mut child = command
        .args(["--addr", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("serve starts");
    let stdout = child.stdout.take().expect("stdout");
    let banner = BufReader::new(stdout)
        .lines()
        .next()
        .and_then(Result::ok)
        .unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    banner
}

/// With its notifications lost (the LISTEN connection killed), a server still picks up a new
/// deploy, by polling the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_whose_notifications_are_lost_finds_a_new_deploy_by_polling() {
    let Some(server) = support::postgres_or_skip("deploy polling") else {
        return;
    };
    let dir = tempfile::tempdir().expect("a temporary folder");
    support::copy_definitions(dir.path());
    let url = support::postgres_database(&server, &dir.path().join("data"));
    let (code, out, err) = deploy(dir.path(), &url);
    assert_eq!(code, 0, "{out}{err}");
    let engine = Engine::open(
        Config::at(StoreLocation::Postgres(url.clone()))
            .sources(Vec::new())
            .deployed_definitions(),
    )
    .await
    .expect("opens on the deployed set");
    let users = Users::load(&support::project().join("config/users.yaml")).expect("users");
    let state = AppState::new(engine.clone(), users, Vec::new());
    let served = Server::bind(state, "127.0.0.1:0".parse().expect("an address"))
        .await
        .expect("binds");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        served
            .run(true, async {
                let _ = stopped.await;
            })
            .await
            .expect("serves");
    });
    let first = engine.latest_versions()["hot_work_permit"].clone();

    // Kill the connection that listens for deploys.
    let killer = url.clone();
    let killed = tokio::task::spawn_blocking(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(&killer, tokio_postgres::NoTls)
                .await
                .expect("connects");
            tokio::spawn(connection);
            for _ in 0..100 {
                let killed = client
                    .query(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
                        &[],
                    )
                    .await
                    .expect("terminates");
                if !killed.is_empty() {
                    return killed.len();
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            0
        })
    })
    .await
    .expect("kills the listener");
    assert_eq!(killed, 1, "the server listened for deploys");

    let file = dir.path().join("workflows/hot_work_permit.yaml");
    let text = std::fs::read_to_string(&file).expect("reads");
    std::fs::write(&file, format!("{text}\n# revised\n")).expect("writes");
    let (code, out, err) = deploy(dir.path(), &url);
    assert_eq!(code, 0, "{out}{err}");
    let watched = engine.clone();
    wait_for("the new set, by polling", || {
        watched.latest_versions()["hot_work_permit"] != first
    })
    .await;
    let _ = stop.send(());
    task.await.expect("the server stops");
}

/// `serve --definitions store` on a store no set was deployed to refuses to start, saying
/// what to run first.
#[test]
fn serve_from_a_store_with_nothing_deployed_says_to_deploy_first() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let data = dir.path().join("data");
    let output = sopflow()
        .args([
            "serve",
            "--definitions",
            "store",
            "--addr",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(&data)
        .current_dir(support::project())
        .env_remove("SOPFLOW_STORE")
        .output()
        .expect("runs sopflow serve");
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(
        err.contains("no definition set has been deployed") && err.contains("sopflow deploy"),
        "{err}"
    );
}

/// The README's two nodes on one database, as written (on free loopback ports): after the
/// deploy, both serve the deployed set; the permit started on the first is read and moved on by
/// the second, a timer armed through one is queued where both see it, and a sign-in on one
/// works on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_two_node_block_runs_as_written() {
    let Some(server) = support::postgres_or_skip("the_readme_two_node_block_runs_as_written")
    else {
        return;
    };
    let readme = std::fs::read_to_string(support::project().join("README.md")).expect("README");
    let block = readme
        .split("## Running on PostgreSQL")
        .nth(1)
        .and_then(|section| section.split("```sh\n").nth(2))
        .and_then(|rest| rest.split("```").next())
        .expect("the two-node block, the section's second")
        .to_string();
    let dir = tempfile::tempdir().expect("a temporary folder");
    let url = with_password(
        &support::postgres_database(&server, &dir.path().join("readme")),
        "secret",
    );
    let mut nodes = Vec::new();
    let mut curls = Vec::new();
    for said in readme::commands(&block) {
        let command = said.command.trim().trim_end_matches('&').trim().to_string();
        let args: Vec<String> = match command.strip_prefix("sopflow ") {
            Some(rest) => rest.split_whitespace().map(str::to_string).collect(),
            None => {
                assert!(command.starts_with("curl "), "`{command}`");
                curls.push(command);
                continue;
            }
        };
        if args[0] == "deploy" {
            let output = sopflow()
                .args(&args)
                .current_dir(support::project())
                .env("SOPFLOW_STORE", &url)
                .output()
                .expect("runs sopflow deploy");
            assert_eq!(output.status.code(), Some(0), "{output:?}");
            continue;
        }
        assert_eq!(
            args[..3],
            ["serve", "--definitions", "store"],
            "`{command}`"
        );
        let written = args[4].clone();
        let free = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        let addr = free.local_addr().expect("its address").to_string();
        drop(free);
        let child = sopflow()
            .args(&args[..4])
            .arg(&addr)
            .current_dir(support::project())
            .env("SOPFLOW_STORE", &url)
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("serve starts");
        nodes.push((written, format!("http://{addr}"), Killed(child)));
    }
    assert_eq!(nodes.len(), 2, "two nodes");
    assert_eq!(curls.len(), 2, "a start on one, a read on the other");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client");
    for (_, base, _) in &nodes {
        let up = Instant::now();
        while http.get(format!("{base}/api/health")).send().await.is_err() {
            assert!(
                up.elapsed() < Duration::from_secs(60),
                "{base} does not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let ours = |text: &str| {
        let mut text = text.to_string();
        for (written, base, _) in &nodes {
            text = text.replace(&format!("http://{written}"), base);
        }
        text
    };
    // The README's curl commands, each on the node it names.
    let dir_path = dir.path().to_path_buf();
    let run = |command: &str| {
        let output = Command::new("sh")
            .args(["-c", &ours(command)])
            .current_dir(&dir_path)
            .output()
            .expect("runs curl");
        assert_eq!(output.status.code(), Some(0), "`{command}`: {output:?}");
        serde_json::from_slice::<serde_json::Value>(&output.stdout).expect("JSON")
    };
    let started = run(&curls[0]);
    assert_eq!(started["instance"]["id"], "hot_work_permit-1", "{started}");
    let read = run(&curls[1]);
    assert_eq!(read["instance"]["id"], "hot_work_permit-1", "{read}");
    assert_eq!(
        read["instance"]["state"], started["instance"]["state"],
        "{read}"
    );
    let (first, second) = (&nodes[0].1, &nodes[1].1);

    // Moved on by the second node, seen by the first.
    let fired = http
        .post(format!("{second}/api/instances/hot_work_permit-1/events/submit"))
        .bearer_auth(support::token("wang"))
        .json(&serde_json::json!({"payload": {"notification_letter": "HW-2026-031", "applicant_seal": true, "operator_certificate": "T-4411"}}))
        .send()
        .await
        .expect("submit on the second node");
    assert_eq!(fired.status(), 200, "{:?}", fired.text().await);
    let seen: serde_json::Value = http
        .get(format!("{first}/api/instances/hot_work_permit-1"))
        .bearer_auth(support::token("wang"))
        .send()
        .await
        .expect("read on the first")
        .json()
        .await
        .expect("JSON");
    assert_eq!(seen["instance"]["state"], "security_review", "{seen}");

    // A timer armed through the first node is queued in the database: the second shows it.
    let lead: serde_json::Value = http
        .post(format!("{first}/api/instances"))
        .bearer_auth(support::token("zhou"))
        .json(&serde_json::json!({"workflow": "lead_intake", "data": {"channel": "phone"}}))
        .send()
        .await
        .expect("a lead on the first node")
        .json()
        .await
        .expect("JSON");
    let id = lead["instance"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("the lead's id: {lead}"))
        .to_string();
    let timers = lead["instance"]["timers"].clone();
    assert!(timers.as_array().is_some_and(|t| !t.is_empty()), "{lead}");
    let there: serde_json::Value = http
        .get(format!("{second}/api/instances/{id}"))
        .bearer_auth(support::token("zhou"))
        .send()
        .await
        .expect("the lead on the second node")
        .json()
        .await
        .expect("JSON");
    assert_eq!(there["instance"]["timers"], timers, "{there}");

    // A sign-in on one node is a sign-in on the other.
    let response =
        support::post_login(&http, first, &[("user", "wang"), ("password", "demo")]).await;
    assert_eq!(response.status(), 303, "wang signs in on the first node");
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{}=", sopflow::server::auth::SESSION_COOKIE)))
        .expect("a session cookie")
        .split(';')
        .next()
        .unwrap_or_default()
        .to_string();
    let me: serde_json::Value = http
        .get(format!("{second}/api/me"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("me on the second node")
        .json()
        .await
        .expect("JSON");
    assert_eq!(me["id"], "wang", "{me}");
}

/// A child process killed when dropped (a test that fails leaves no server behind).
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
