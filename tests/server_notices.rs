//! The notices and dead letters over the API: a supervisor lists the notice of an escalated
//! complaint (theirs by role) and marks it read, someone with other roles sees none of it, bad
//! keys and too many keys are refused; a process owner lists the dead letters and sends them
//! again, anyone else is refused.

mod support;

use serde_json::{Value, json};
use sopflow::engine::StartRequest;
use sopflow::machine::Actor;
use std::time::{Duration, Instant};

async fn get(server: &support::TestServer, user: &str, path: &str) -> (u16, Value) {
    let response = support::client()
        .get(server.url(path))
        .bearer_auth(support::token(user))
        .send()
        .await
        .expect("an answer");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn post(server: &support::TestServer, user: &str, path: &str, body: &Value) -> (u16, Value) {
    let response = support::client()
        .post(server.url(path))
        .bearer_auth(support::token(user))
        .json(body)
        .send()
        .await
        .expect("an answer");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Runs `sopflow ARGS --server URL --token demo-USER`, off the server's threads.
async fn cli(server: &support::TestServer, user: &str, args: &[&str]) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_sopflow"));
    command
        .args(args)
        .args(["--server", &server.base, "--token", &support::token(user)])
        .env("SOPFLOW_LANG", "en")
        .env_remove("SOPFLOW_SERVER")
        .env_remove("SOPFLOW_TOKEN");
    tokio::task::spawn_blocking(move || command.output().expect("runs"))
        .await
        .expect("the command's thread")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_lists_and_marks_their_notices_and_nobody_else_sees_them() {
    let server = support::spawn().await;
    let id = support::escalate_complaint(&server).await;

    let (status, notices) = get(&server, "wu", "/api/notices").await;
    assert_eq!(status, 200, "{notices}");
    let list = notices.as_array().expect("a list");
    let escalation = list
        .iter()
        .find(|n| n["recipient"] == "role:cs_supervisor")
        .expect("the escalation reached wu's role");
    assert_eq!(escalation["instance"], json!(id));
    assert_eq!(escalation["read"], json!(false));
    let key = escalation["key"].as_str().expect("a key").to_string();
    assert!(key.starts_with(&format!("{id}.")), "{key}");
    assert!(
        escalation["notice"]["title"].is_string(),
        "the notice as rendered: {escalation}"
    );

    // Someone with other roles sees none of it.
    let (status, theirs) = get(&server, "wang", "/api/notices").await;
    assert_eq!(status, 200);
    assert!(
        theirs
            .as_array()
            .expect("a list")
            .iter()
            .all(|n| n["instance"] != json!(id)),
        "{theirs}"
    );
    // Marking someone else's notice read does nothing.
    let (status, marked) = post(
        &server,
        "wang",
        "/api/notices/read",
        &json!({"keys": [key]}),
    )
    .await;
    assert_eq!(status, 200, "{marked}");
    assert_eq!(marked["marked"], json!(0));
    let (_, again) = get(&server, "wu", "/api/notices").await;
    assert!(
        again
            .as_array()
            .expect("a list")
            .iter()
            .any(|n| n["key"] == json!(key) && n["read"] == json!(false)),
        "still unread for wu: {again}"
    );

    // wu marks it read.
    let (status, marked) = post(&server, "wu", "/api/notices/read", &json!({"keys": [key]})).await;
    assert_eq!(status, 200, "{marked}");
    assert_eq!(marked["marked"], json!(1));
    let (_, after) = get(&server, "wu", "/api/notices").await;
    assert!(
        after
            .as_array()
            .expect("a list")
            .iter()
            .filter(|n| n["key"] == json!(key))
            .all(|n| n["read"] == json!(true)),
        "{after}"
    );

    // Limits.
    let (status, one) = get(&server, "wu", "/api/notices?limit=1").await;
    assert_eq!(status, 200);
    assert_eq!(one.as_array().map(Vec::len), Some(1));
    for limit in ["0", "201", "-1", "x"] {
        let (status, problem) = get(&server, "wu", &format!("/api/notices?limit={limit}")).await;
        assert_eq!(status, 400, "limit={limit}: {problem}");
    }

    // Bad input.
    let (status, problem) = post(
        &server,
        "wu",
        "/api/notices/read",
        &json!({"keys": ["a\u{0}b"]}),
    )
    .await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(problem["code"], "bad_key");
    let (status, problem) = post(&server, "wu", "/api/notices/read", &json!({"keys": [""]})).await;
    assert_eq!((status, problem["code"].clone()), (400, json!("bad_key")));
    let many: Vec<String> = (0..201).map(|i| format!("x.{i}.0")).collect();
    let (status, problem) = post(&server, "wu", "/api/notices/read", &json!({"keys": many})).await;
    assert_eq!((status, problem["code"].clone()), (400, json!("bad_key")));
    let (status, problem) = post(&server, "wu", "/api/notices/read", &json!({"keys": 1})).await;
    assert_eq!(status, 422, "{problem}");
    let (status, problem) = post(
        &server,
        "wu",
        "/api/notices/read",
        &json!({"keys": [], "other": 1}),
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_owner_lists_dead_letters_and_sends_them_again() {
    let receiver = support::receiver::Receiver::start().await;
    receiver.fail_next(&[reqwest::StatusCode::NOT_FOUND]);
    let url = receiver.url("/hook");
    let server = support::spawn_with_channels(
        "channels:\n  - {id: follower, kind: webhook, url_env: URL, secret_env: SECRET, steps: [hot_work_permit]}\n",
        &|name| match name {
            "URL" => Some(url.clone()),
            "SECRET" => Some("s".into()),
            _ => None,
        },
    )
    .await;
    let id = server
        .state
        .engine
        .start(
            "hot_work_permit",
            StartRequest::new(Actor::new("wang", ["contractor"])),
        )
        .await
        .expect("starts")
        .instance
        .id;
    let outbox = server.state.engine.outbox();
    let deadline = Instant::now() + Duration::from_secs(30);
    while outbox.dead_letters(10).await.expect("dead").is_empty() {
        assert!(Instant::now() < deadline, "a dead letter");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let (status, problem) = get(&server, "wang", "/api/deliveries/dead").await;
    assert_eq!(
        (status, problem["code"].clone()),
        (403, json!("missing_role"))
    );
    let (status, dead) = get(&server, "owner", "/api/deliveries/dead").await;
    assert_eq!(status, 200, "{dead}");
    let letters = dead["dead"].as_array().expect("a list");
    assert_eq!(letters.len(), 1, "{dead}");
    assert_eq!(letters[0]["channel"], "follower");
    assert_eq!(letters[0]["instance"], json!(id));
    assert!(
        letters[0]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("404")),
        "{dead}"
    );
    assert_eq!(dead["dead_count"], json!(1));
    let key = letters[0]["key"].as_str().expect("a key").to_string();

    // The command line, through the server: the same list for programs; others refused.
    let listed = cli(
        &server,
        "owner",
        &["deliveries", "dead", "--format", "json"],
    )
    .await;
    assert!(listed.status.success(), "{listed:?}");
    let letters: Value = serde_json::from_slice(&listed.stdout).expect("JSON");
    assert_eq!(letters[0]["key"], json!(key), "{letters}");
    let human = cli(&server, "owner", &["deliveries", "dead"]).await;
    assert!(
        String::from_utf8_lossy(&human.stdout).contains(&key),
        "{human:?}"
    );
    let refused = cli(&server, "wang", &["deliveries", "retry", "--all"]).await;
    assert!(!refused.status.success(), "{refused:?}");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("process_owner"),
        "{refused:?}"
    );

    // Others may not send them again; bad keys and bodies are refused.
    let (status, problem) = post(
        &server,
        "wang",
        "/api/deliveries/dead/retry",
        &json!({"all": true}),
    )
    .await;
    assert_eq!(
        (status, problem["code"].clone()),
        (403, json!("missing_role"))
    );
    for body in [json!({"key": "no-slash"}), json!({"key": "a/b\u{7}.1.0"})] {
        let (status, problem) = post(&server, "owner", "/api/deliveries/dead/retry", &body).await;
        assert_eq!(
            (status, problem["code"].clone()),
            (400, json!("bad_key")),
            "{body}"
        );
    }
    for body in [
        json!({}),
        json!({"key": key, "all": true}),
        json!({"keys": []}),
    ] {
        let (status, _) = post(&server, "owner", "/api/deliveries/dead/retry", &body).await;
        assert_eq!(status, 422, "{body}");
    }

    let (status, revived) = post(
        &server,
        "owner",
        "/api/deliveries/dead/retry",
        &json!({"key": key}),
    )
    .await;
    assert_eq!(status, 200, "{revived}");
    assert_eq!(revived["revived"], json!(1));
    receiver.wait_for("/hook", |seen| seen.len() >= 2).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while outbox.counts().await.expect("counts").queued > 0 {
        assert!(Instant::now() < deadline, "sent again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, dead) = get(&server, "owner", "/api/deliveries/dead").await;
    assert_eq!(dead["dead"], json!([]), "{dead}");
    server.stop().await;
}
