//! The hot-work permit driven to the end, over HTTP or straight through the engine: the
//! workload of `examples/server_load.rs` and `benches/server.rs` (each includes this file with
//! `#[path]`, so that both measure exactly the same steps).
//!
//! A permit is 7 steps, each by the demo user who holds the role (`config/users.yaml`): wang
//! starts and submits it, li, zhou and chen approve (three different people, as the permit's
//! constraint wants), zhao affixes the seal and zhou distributes it. A driver takes one step at
//! a time and starts the next permit after the last, so a measurement of any number of steps
//! is a mix of every kind of step.

#![allow(dead_code)]

use serde_json::{Value, json};
use sopflow::engine::{Config, Engine, Fire, StartRequest};
use sopflow::machine::Actor;
use sopflow::server::auth::Users;
use sopflow::server::{AppState, Server};
use sopflow::store::StoreLocation;
use std::path::PathBuf;

/// The workflow driven.
pub const WORKFLOW: &str = "hot_work_permit";

/// One step of a permit: the demo user who takes it, the event (`None` for the start) and
/// the payload.
pub struct Step {
    pub user: &'static str,
    pub event: Option<&'static str>,
    pub payload: fn() -> Value,
}

/// The seven steps of a permit, in order.
pub const STEPS: [Step; 7] = [
    Step {
        user: "wang",
        event: None,
        payload: || Value::Null,
    },
    Step {
        user: "wang",
        event: Some("submit"),
        payload: || {
            json!({
                "notification_letter": "HW-2026-031",
                "applicant_seal": true,
                "operator_certificate": "T-4411",
            })
        },
    },
    Step {
        user: "li",
        event: Some("approve"),
        payload: || Value::Null,
    },
    Step {
        user: "zhou",
        event: Some("approve"),
        payload: || Value::Null,
    },
    Step {
        user: "chen",
        event: Some("approve"),
        payload: || Value::Null,
    },
    Step {
        user: "zhao",
        event: Some("affix_seal"),
        payload: || Value::Null,
    },
    Step {
        user: "zhou",
        event: Some("distribute"),
        payload: || json!({"archive_reference": "CS-ARCH-088", "copy_to_applicant": true, "copy_to_order_dept": true}),
    },
];

/// The project's folder: `workflows/`, `rules/`, `calendars/`, `config/`.
pub fn project() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shipped definitions.
pub fn sources() -> Vec<PathBuf> {
    let root = project();
    vec![
        root.join("workflows"),
        root.join("rules"),
        root.join("calendars"),
    ]
}

/// The shipped demo users (tokens `demo-<id>`).
pub fn users() -> Users {
    Users::load(&project().join("config/users.yaml")).expect("the demo users load")
}

/// An engine over the shipped definitions on a new store in `dir`.
pub async fn engine(dir: &std::path::Path) -> Engine {
    Engine::open(Config::new(dir.join("data")).sources(sources()))
        .await
        .expect("the engine opens")
}

/// An engine over the shipped definitions on the store at `store`.
pub async fn engine_at(store: StoreLocation) -> Engine {
    Engine::open(Config::at(store).sources(sources()))
        .await
        .expect("the engine opens")
}

/// A server on a loopback port over a new store, running on the current runtime.
pub struct Running {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Running {
    pub async fn start() -> Running {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let engine = engine(dir.path()).await;
        let state = AppState::new(engine, users(), sources());
        let server = Server::bind(state, "127.0.0.1:0".parse().expect("an address"))
            .await
            .expect("binds a loopback port");
        let addr = server.local_addr().expect("the bound address");
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
            stop: Some(stop),
            task: Some(task),
            _dir: dir,
        }
    }

    /// Stops the server after the requests in flight, and waits for its store to close.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("the server stops");
        }
    }
}

/// One HTTP client taking permits through, one step per call (its own connection, kept
/// alive, as an integration would).
pub struct HttpDriver {
    http: reqwest::Client,
    base: String,
    instance: Option<String>,
    next: usize,
}

impl HttpDriver {
    pub fn new(base: &str) -> HttpDriver {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .expect("an HTTP client");
        HttpDriver {
            http,
            base: base.to_string(),
            instance: None,
            next: 0,
        }
    }

    /// Takes the next step; its answer is read as JSON, as a client would.
    pub async fn step(&mut self) {
        let step = &STEPS[self.next];
        let token = format!("demo-{}", step.user);
        let request = match (step.event, &self.instance) {
            (None, _) => self
                .http
                .post(format!("{}/api/instances", self.base))
                .json(&json!({"workflow": WORKFLOW})),
            (Some(event), Some(id)) => {
                let payload = (step.payload)();
                let body = if payload.is_null() {
                    json!({})
                } else {
                    json!({"payload": payload})
                };
                self.http
                    .post(format!("{}/api/instances/{id}/events/{event}", self.base))
                    .json(&body)
            }
            (Some(event), None) => panic!("`{event}` before any start"),
        };
        let response = request
            .bearer_auth(token)
            .send()
            .await
            .expect("the server answers");
        let status = response.status();
        let body: Value = response.json().await.expect("a JSON answer");
        assert!(
            status.is_success(),
            "step {} ({:?}) failed: {status} {body}",
            self.next,
            step.event
        );
        if step.event.is_none() {
            self.instance = body["instance"]["id"].as_str().map(str::to_string);
        }
        self.next = (self.next + 1) % STEPS.len();
    }
}

/// The same permits through [`Engine::start`] and [`Engine::fire`], as the same users (with
/// all the roles the users file gives them, as the server would act for them).
pub struct EngineDriver {
    /// The nodes, each an engine with its own store on a shared database (or one engine).
    engines: Vec<Engine>,
    /// Which node takes the next step: steps go round the nodes, so that every instance is
    /// moved by each of them in turn.
    turn: usize,
    actors: Vec<Actor>,
    instance: Option<String>,
    next: usize,
}

impl EngineDriver {
    pub fn new(engine: Engine, users: &Users) -> EngineDriver {
        EngineDriver::across(vec![engine], 0, users)
    }

    /// A driver whose steps go round `engines`, beginning with the `first`-th.
    pub fn across(engines: Vec<Engine>, first: usize, users: &Users) -> EngineDriver {
        assert!(!engines.is_empty(), "at least one engine");
        let actors = STEPS
            .iter()
            .map(|s| {
                users
                    .get(s.user)
                    .map(|u| u.actor())
                    .expect("every step's user is a demo user")
            })
            .collect();
        EngineDriver {
            turn: first % engines.len(),
            engines,
            actors,
            instance: None,
            next: 0,
        }
    }

    pub async fn step(&mut self) {
        let step = &STEPS[self.next];
        let actor = self.actors[self.next].clone();
        let engine = &self.engines[self.turn];
        self.turn = (self.turn + 1) % self.engines.len();
        match (step.event, &self.instance) {
            (None, _) => {
                let outcome = engine
                    .start(WORKFLOW, StartRequest::new(actor))
                    .await
                    .expect("starts");
                self.instance = Some(outcome.instance.id.to_string());
            }
            (Some(event), Some(id)) => {
                engine
                    .fire(id, Fire::new(event, actor).payload((step.payload)()))
                    .await
                    .unwrap_or_else(|e| panic!("`{event}` on {id}: {e}"));
            }
            (Some(event), None) => panic!("`{event}` before any start"),
        }
        self.next = (self.next + 1) % STEPS.len();
    }
}
