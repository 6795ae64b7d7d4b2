//! A receiver on this machine for the channels' messages: it records what it is sent and
//! answers as told (a list of statuses to give first, then 200 with a robot's `errcode: 0`).

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// One request received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

#[derive(Default)]
struct Inner {
    seen: Vec<Received>,
    /// Statuses to answer first, in order.
    failures: VecDeque<StatusCode>,
}

/// A running receiver.
#[derive(Clone)]
pub struct Receiver {
    inner: Arc<Mutex<Inner>>,
    pub addr: SocketAddr,
}

async fn receive(
    State(inner): State<Arc<Mutex<Inner>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut inner = inner.lock().expect("the receiver");
    let failure = inner.failures.pop_front();
    inner.seen.push(Received {
        path: uri.path().to_string(),
        headers,
        body,
    });
    match failure {
        Some(status) => status.into_response(),
        None => axum::Json(serde_json::json!({"errcode": 0, "errmsg": "ok"})).into_response(),
    }
}

impl Receiver {
    /// Starts a receiver on a loopback port.
    pub async fn start() -> Receiver {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/{*path}", post(receive))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let addr = listener.local_addr().expect("an address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { inner, addr }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers the next requests with these statuses, then 200 again.
    pub fn fail_next(&self, statuses: &[StatusCode]) {
        self.inner
            .lock()
            .expect("the receiver")
            .failures
            .extend(statuses.iter().copied());
    }

    /// What it received so far at `path`.
    pub fn seen(&self, path: &str) -> Vec<Received> {
        self.inner
            .lock()
            .expect("the receiver")
            .seen
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// Waits (up to 30 s) until `done` holds for what arrived at `path`; returns it.
    pub async fn wait_for(&self, path: &str, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let seen = self.seen(path);
            if done(&seen) {
                return seen;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "waited 30 s at {path}; received {} request(s)",
                seen.len()
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}
