//! `sopflow serve` as a person runs it: it refuses to start on definitions with errors or on a
//! public address with demo users, and stops gracefully on SIGTERM with every step on disk.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn sopflow(dir: &Path) -> Command {
    let root = support::project();
    let mut command = Command::new(env!("CARGO_BIN_EXE_sopflow"));
    command
        .current_dir(&root)
        .arg("serve")
        .arg("--data-dir")
        .arg(dir.join("data"))
        .env("RUST_LOG", "sopflow=warn");
    command
}

#[test]
fn serve_refuses_to_start_when_a_definition_has_errors() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let workflows = dir.path().join("workflows");
    std::fs::create_dir_all(&workflows).expect("creates");
    let text = std::fs::read_to_string(support::project().join("workflows/hot_work_permit.yaml"))
        .expect("reads");
    std::fs::write(
        workflows.join("hot_work_permit.yaml"),
        text.replace("to: cs_review", "to: cs_reveiw"),
    )
    .expect("writes");
    let output = sopflow(dir.path())
        .arg("--workflows")
        .arg(&workflows)
        .args(["--addr", "127.0.0.1:0"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("E101"),
        "the report names the error: {stderr}"
    );
    assert!(stderr.contains("cs_reveiw"), "{stderr}");
    assert!(stderr.contains("not serving"), "{stderr}");
    assert!(
        stderr.contains("hot_work_permit.yaml"),
        "it names the file: {stderr}"
    );
    assert!(
        stderr.contains("sopflow validate"),
        "and what to do: {stderr}"
    );
}

#[test]
fn serve_refuses_a_public_address_while_demo_users_exist() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let output = sopflow(dir.path())
        .args(["--addr", "0.0.0.0:0"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("demo users"), "{stderr}");
    assert!(
        stderr.contains("127.0.0.1"),
        "the message says what to do: {stderr}"
    );
}

/// Demo users are a development mode that the users file must declare: the shipped file does
/// (`demo_set: true`), and the same users without the declaration are refused at load.
#[test]
fn demo_users_without_the_demo_set_declaration_are_refused_at_load() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let shipped =
        std::fs::read_to_string(support::project().join("config/users.yaml")).expect("reads");
    assert!(
        shipped.contains("\ndemo_set: true\n"),
        "the shipped file declares it"
    );
    let undeclared = dir.path().join("users.yaml");
    std::fs::write(&undeclared, shipped.replace("\ndemo_set: true\n", "\n")).expect("writes");
    let output = sopflow(dir.path())
        .arg("--users")
        .arg(&undeclared)
        .arg("--addr")
        .arg("127.0.0.1:0")
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("demo_set: true") && stderr.contains("wang"),
        "the message names the user and the fix: {stderr}"
    );
}

/// The users file grants the organisation's roles (workflows/roles.yaml): a misspelt role,
/// which would silently grant nothing, stops the server with the user, the role and a hint.
#[test]
fn serve_refuses_a_users_file_with_a_role_the_organisation_does_not_have() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let shipped =
        std::fs::read_to_string(support::project().join("config/users.yaml")).expect("reads");
    let typo = dir.path().join("users.yaml");
    std::fs::write(
        &typo,
        shipped.replace("roles: [order_dept]", "roles: [order_dep]"),
    )
    .expect("writes");
    let output = sopflow(dir.path())
        .arg("--users")
        .arg(&typo)
        .args(["--addr", "127.0.0.1:0", "--no-watch"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("user `li` holds the role `order_dep`")
            && stderr.contains("did you mean `order_dept`?")
            && stderr.contains("not serving"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_the_server_gracefully_with_every_step_on_disk() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let mut child = sopflow(dir.path())
        .args(["--addr", "127.0.0.1:0", "--no-watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts");
    let stdout = child.stdout.take().expect("stdout");
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut printed = Vec::new();
    let base = loop {
        let line = lines_rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("serve printed no address: {printed:?}"));
        if let Some(rest) = line.strip_prefix("console: ") {
            let url = rest.split_whitespace().next().expect("a URL");
            break url.trim_end_matches('/').to_string();
        }
        printed.push(line);
    };
    let client = support::client();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if client
            .get(format!("{base}/api/health"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            break;
        }
        assert!(Instant::now() < deadline, "the server never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let started: serde_json::Value = client
        .post(format!("{base}/api/instances"))
        .bearer_auth("demo-wang")
        .json(&serde_json::json!({"workflow": "hot_work_permit", "business_key": "B2-031"}))
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    let id = started["instance"]["id"]
        .as_str()
        .expect("an id")
        .to_string();

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("waits") {
            break exit;
        }
        assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "a graceful stop exits 0: {exit:?}");
    let rest: Vec<String> = lines_rx.try_iter().collect();
    assert!(
        rest.iter().any(|l| l.contains("stopped")),
        "it says it stopped: {rest:?}"
    );

    // The store is closed and holds the step.
    let config = sopflow::engine::Config::new(dir.path().join("data")).sources(vec![
        support::project().join("workflows"),
        support::project().join("rules"),
    ]);
    let engine = sopflow::engine::Engine::open(config)
        .await
        .expect("reopens");
    let instance = engine.get(&id).await.expect("the instance is there");
    assert_eq!(instance.business_key.as_deref(), Some("B2-031"));
}

/// A server whose stdout nobody reads any more (a supervisor that closed the pipe) keeps
/// serving, and still stops cleanly: a line it cannot print is dropped, not a panic.
#[tokio::test(flavor = "multi_thread")]
async fn a_closed_stdout_neither_stops_the_server_nor_spoils_its_exit() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let mut child = sopflow(dir.path())
        .args(["--addr", "127.0.0.1:0", "--no-watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let base = loop {
        let line = lines
            .next()
            .and_then(Result::ok)
            .expect("serve printed its address");
        if let Some(rest) = line.strip_prefix("console: ") {
            let url = rest.split_whitespace().next().expect("a URL");
            break url.trim_end_matches('/').to_string();
        }
    };
    drop(lines);
    let client = support::client();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !client
        .get(format!("{base}/api/health"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(Instant::now() < deadline, "the server stopped answering");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("waits") {
            break exit;
        }
        assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        exit.success(),
        "the last line went nowhere, and the exit is still clean: {exit:?}"
    );
}

#[test]
fn serve_names_the_channels_it_lacks_and_refuses_a_bad_public_url() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let workflows = dir.path().join("workflows");
    std::fs::create_dir_all(&workflows).expect("creates");
    std::fs::write(
        workflows.join("told.yaml"),
        r#"
id: told
title: 通知测试
roles:
  cs_receiver: {title: 客服前台}
initial: open
states:
  open:
    title: 处理中
    on:
      close: {to: closed, title: 结案, roles: [cs_receiver]}
  closed: {title: 已结案, final: true}
on_finish:
  - to: [{channel: nowhere}]
    title: 已结案
    message: 已结案
"#,
    )
    .expect("writes");
    let bad = sopflow(dir.path())
        .arg("--workflows")
        .arg(&workflows)
        .args([
            "--addr",
            "127.0.0.1:0",
            "--public-url",
            "ftp://flow.example.cn",
        ])
        .output()
        .expect("runs");
    assert_eq!(bad.status.code(), Some(1), "{bad:?}");
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("--public-url"),
        "{bad:?}"
    );
    let mut child = sopflow(dir.path())
        .arg("--workflows")
        .arg(&workflows)
        .args(["--addr", "127.0.0.1:0", "--no-watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut printed = Vec::new();
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        let done = line.starts_with("console: ");
        printed.push(line);
        if done {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        printed
            .iter()
            .any(|l| l.contains("channel nowhere") && l.contains("told")),
        "{printed:?}"
    );
}
