//! What the server writes to its log when clients send hostile text: a newline in a sign-in
//! user name or in an instance id must not forge a log line (every user-supplied value is a
//! field, escaped), and a client's mistake (an unknown instance) is not logged as an error.
//!
//! The log is captured by a subscriber installed for this whole test binary, in the format
//! `sopflow serve` writes (tracing-subscriber's default), one event per line.

mod support;

use serde_json::json;
use std::io::Write;
use std::sync::{Arc, Mutex};
use support::{client, post_login, token};

/// Where the log goes: a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
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

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_text_is_logged_escaped_and_client_mistakes_are_not_errors() {
    let log = Captured::default();
    let writer = log.clone();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("sopflow=debug"))
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();
    let server = support::spawn().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client");

    // A user name with a newline and a forged line after it.
    let forged = "li\n2026-01-01T00:00:00.000000Z  INFO sopflow::server::console::signin: console sign-in user=\"audit\"";
    let response = post_login(
        &http,
        &server.base,
        &[("user", forged), ("password", "wrong")],
    )
    .await;
    assert_eq!(response.status().as_u16(), 401);

    // An instance id with a newline, through the API: refused, and logged escaped.
    for path in [
        "/api/instances/hot_work_permit-1%0AFORGED%20ERROR%20line/events/approve",
        "/api/instances/nope/events/approve",
    ] {
        let response = client()
            .post(server.url(path))
            .bearer_auth(token("li"))
            .json(&json!({}))
            .send()
            .await
            .expect("answers");
        assert!(response.status().is_client_error(), "{path}");
    }
    server.stop().await;

    let text = log.text();
    for line in text.lines() {
        assert!(
            !line.starts_with("2026-01-01T00:00:00") && !line.starts_with("FORGED"),
            "a forged line: {line:?}\n{text}"
        );
    }
    assert!(
        text.contains("li\\n2026-01-01"),
        "the name is logged escaped:\n{text}"
    );
    assert!(
        text.contains("hot_work_permit-1\\nFORGED"),
        "the id is logged escaped:\n{text}"
    );
    // A client's mistake is not the server's error.
    let level = |line: &str| line.split_whitespace().nth(1).unwrap_or("").to_string();
    assert!(
        !text.lines().any(|l| level(l) == "ERROR"),
        "a client's mistake logged as an error:\n{text}"
    );
    assert!(
        text.lines()
            .any(|l| level(l) == "INFO" && l.contains("unknown_instance")),
        "the unknown instance is logged at INFO:\n{text}"
    );
}
