//! At least once, through crashes: `sopflow serve` is killed with SIGKILL, again and again,
//! while clients take steps over its API and its delivery loop sends every step to a webhook
//! (a channel following every workflow, `steps: ["*"]`). After the last round a server runs
//! until the outbox is empty, and then
//!
//! - every step a client was answered for arrived at the webhook at least once;
//! - every message that arrived is of a committed step (none for a step that was not), with
//!   that step's hash;
//! - a message that arrived twice carried the same id and the same content.
//!
//! `SOPFLOW_DELIVERY_CRASH_ROUNDS` sets the number of kills (default 4; `.ci/run` runs more).

mod support;

use sopflow::delivery::{SIGNATURE_HEADER, verify_signature};
use sopflow::engine::{Config, Engine};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::receiver::Receiver;

const SECRET: &str = "crash-test-secret";

const CHANNELS: &str = r#"
delivery: {max_attempts: 100, first_retry_seconds: 1, max_retry_seconds: 2}
channels:
  - id: follower
    kind: webhook
    url_env: SOPFLOW_TEST_HOOK_URL
    secret_env: SOPFLOW_TEST_HOOK_SECRET
    timeout_seconds: 5
    steps: ["*"]
"#;

/// Starts `sopflow serve` on the store in `dir`; its base URL once it answers.
async fn serve(dir: &Path, receiver: &Receiver) -> (Child, String) {
    let channels = dir.join("channels.yaml");
    std::fs::write(&channels, CHANNELS).expect("writes the channels file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sopflow"))
        .current_dir(support::project())
        .arg("serve")
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--channels")
        .arg(&channels)
        .args(["--addr", "127.0.0.1:0", "--no-watch"])
        .env("RUST_LOG", "sopflow=warn")
        .env("SOPFLOW_TEST_HOOK_URL", receiver.url("/hook"))
        .env("SOPFLOW_TEST_HOOK_SECRET", SECRET)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve starts");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let base = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("serve prints its address");
        if let Some(rest) = line.strip_prefix("console: ") {
            let url = rest.split_whitespace().next().expect("a URL");
            break url.trim_end_matches('/').to_string();
        }
    };
    (child, base)
}

/// Takes steps over the API until the server stops answering: each answered step is recorded
/// as (instance, seq).
async fn clients(base: String, acked: Arc<Mutex<BTreeSet<(String, u64)>>>) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("a client");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (http, base, acked) = (http.clone(), base.clone(), acked.clone());
        tasks.spawn(async move {
            loop {
                let Ok(response) = http
                    .post(format!("{base}/api/instances"))
                    .bearer_auth("demo-wang")
                    .json(&serde_json::json!({"workflow": "hot_work_permit"}))
                    .send()
                    .await
                else {
                    return;
                };
                let Ok(started) = response.json::<serde_json::Value>().await else {
                    return;
                };
                let Some(id) = started["instance"]["id"].as_str().map(String::from) else {
                    return;
                };
                acked.lock().expect("acks").insert((id.clone(), 0));
                let submitted = http
                    .post(format!("{base}/api/instances/{id}/events/submit"))
                    .bearer_auth("demo-wang")
                    .json(&serde_json::json!({"payload": {
                        "notification_letter": "HW-2026-031",
                        "applicant_seal": true,
                        "operator_certificate": "T-4411",
                    }}))
                    .send()
                    .await;
                let Ok(submitted) = submitted else { return };
                if !submitted.status().is_success() {
                    return;
                }
                acked.lock().expect("acks").insert((id, 1));
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

fn rounds() -> usize {
    std::env::var("SOPFLOW_DELIVERY_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_step_is_delivered_at_least_once_through_kills() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let receiver = Receiver::start().await;
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let mut seed = std::process::id() as u64 ^ 0x9E37_79B9_7F4A_7C15;
    let mut random = |low: u64, high: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        low + seed % (high - low)
    };
    for round in 0..rounds() {
        let (mut child, base) = serve(dir.path(), &receiver).await;
        let load = tokio::spawn(clients(base, acked.clone()));
        tokio::time::sleep(Duration::from_millis(random(200, 1500))).await;
        child.kill().expect("SIGKILL");
        let _ = child.wait();
        let _ = load.await;
        eprintln!(
            "round {round}: {} steps acknowledged, {} messages received",
            acked.lock().expect("acks").len(),
            receiver.seen("/hook").len()
        );
    }
    // A last server delivers what is left, then stops gracefully.
    let (mut child, _base) = serve(dir.path(), &receiver).await;
    let acked = acked.lock().expect("acks").clone();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let arrived: BTreeSet<(String, u64)> = receiver
            .seen("/hook")
            .iter()
            .map(|r| {
                let body = r.json();
                (
                    body["instance"].as_str().unwrap_or_default().to_string(),
                    body["seq"].as_u64().unwrap_or(u64::MAX),
                )
            })
            .collect();
        let missing: Vec<_> = acked.difference(&arrived).collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} acknowledged step(s) never delivered, e.g. {:?}",
            missing.len(),
            missing.first()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();

    // Every message is of a committed step, with its hash; an id sent twice is the same message.
    let engine =
        Engine::open(Config::new(dir.path().join("data")).sources(support::shipped_sources()))
            .await
            .expect("the store opens");
    let mut bodies: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    let mut duplicates = 0;
    for received in receiver.seen("/hook") {
        let header = received
            .headers
            .get(SIGNATURE_HEADER)
            .and_then(|v| v.to_str().ok())
            .expect("signed");
        assert!(verify_signature(
            SECRET,
            header,
            &received.body,
            chrono::Utc::now(),
            600
        ));
        let body = received.json();
        let id = body["id"].as_str().expect("an id").to_string();
        let instance = body["instance"].as_str().expect("an instance");
        let seq = body["seq"].as_u64().expect("a seq");
        let history = engine
            .history(instance)
            .await
            .expect("a committed instance");
        let entry = history
            .get(seq as usize)
            .unwrap_or_else(|| panic!("a message for {instance} step {seq}, never committed"));
        assert_eq!(body["step"]["hash"], entry.hash.as_str());
        if let Some(before) = bodies.insert(id.clone(), body.clone()) {
            duplicates += 1;
            assert_eq!(before, body, "{id} sent twice with different content");
        }
    }
    eprintln!(
        "{} steps acknowledged, {} messages, {} distinct, {duplicates} sent again",
        acked.len(),
        bodies.len() + duplicates,
        bodies.len()
    );
    assert!(!acked.is_empty(), "the clients took steps");
}
