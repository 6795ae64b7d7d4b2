//! The server: the HTTP API and the web console over one [`Engine`], with the timer loop and
//! the definition watcher beside them.
//!
//! Everything a handler needs is in [`AppState`], passed in explicitly; there are no globals.
//! Handlers are thin: they authenticate the caller ([`auth::Caller`]), turn the request into
//! an engine call through [`AppState::start`] / [`AppState::fire`] (which count, time and log
//! every step and refusal), and render the answer as JSON or HTML.
//!
//! The actor of every step is built in one place, [`AppState::start`] / [`AppState::fire`],
//! from the authenticated [`Caller`]: a handler hands over what was asked ([`StartInput`],
//! [`FireInput`], which have no actor), never who asks, so no route can get it wrong.
//!
//! Whatever a client sends is logged as a structured field, escaped (`?field`: Debug quotes
//! it and escapes newlines and other control characters), never interpolated into a message,
//! so that a newline in a user name or an instance id cannot forge a log line. A client's
//! mistake (a 4xx) is logged at INFO, or WARN when it is a refusal that matters to security
//! (403: a wrong role, four eyes); ERROR is for the server's own failures.

pub mod api;
pub mod auth;
pub mod console;
pub mod metrics;
pub mod problem;
pub mod reload;
pub mod stream;

use crate::engine::{Engine, Fire, Outcome, StartRequest};
use auth::{Caller, Sessions, Users};
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::request::Parts;
use axum::middleware::{self, Next};
use axum::response::Response;
use metrics::Metrics;
use problem::Problem;
use serde_json::Value;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// The largest request body accepted: the engine's payload limit and room for the envelope.
pub const MAX_BODY_BYTES: usize = crate::engine::MAX_PAYLOAD_BYTES + 64 * 1024;

/// Everything the handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    users: Arc<Users>,
    pub sessions: Arc<Sessions>,
    pub metrics: Arc<Metrics>,
    pub reloads: Arc<reload::ReloadLog>,
    /// The folders watched for definition changes.
    pub watched: Arc<Vec<PathBuf>>,
}

impl AppState {
    pub fn new(engine: Engine, users: Users, watched: Vec<PathBuf>) -> AppState {
        let metrics = Metrics::new();
        metrics
            .workflows
            .set(i64::try_from(engine.workflows().len()).unwrap_or(i64::MAX));
        AppState {
            engine,
            users: Arc::new(users),
            sessions: Arc::new(Sessions::default()),
            metrics: Arc::new(metrics),
            reloads: Arc::new(reload::ReloadLog::default()),
            watched: Arc::new(watched),
        }
    }

    /// The users in force.
    pub fn users(&self) -> Arc<Users> {
        self.users.clone()
    }

    /// Counts and logs a request turned away for its credentials, and returns the problem.
    pub fn refuse_auth(&self, parts: &Parts, reason: &'static str, problem: Problem) -> Problem {
        self.metrics.auth_failed(reason);
        tracing::warn!(
            reason,
            method = ?parts.method.as_str(),
            path = ?parts.uri.path(),
            detail = ?problem.detail,
            "request refused for its credentials"
        );
        problem
    }

    /// Starts an instance of `input.workflow` as the caller: the actor and roles are the
    /// caller's, and nothing else.
    pub async fn start(&self, caller: &Caller, input: StartInput) -> Result<Outcome, Problem> {
        let began = Instant::now();
        let mut request = StartRequest::new(caller.actor()).data(input.data);
        request.business_key = input.business_key;
        request.idempotency_key = input.idempotency_key;
        let result = self.engine.start(&input.workflow, request).await;
        self.account(caller, &input.workflow, "start", None, began, result)
    }

    /// Fires `input.event` on an instance as the caller: the actor and roles are the caller's,
    /// and nothing else.
    pub async fn fire(
        &self,
        caller: &Caller,
        id: &str,
        input: FireInput,
    ) -> Result<Outcome, Problem> {
        let began = Instant::now();
        let mut request = Fire::new(input.event.clone(), caller.actor()).payload(input.payload);
        if let Some(comment) = input.comment {
            request = request.comment(comment);
        }
        request.expected_seq = input.expected_seq;
        request.idempotency_key = input.idempotency_key;
        let result = self.engine.fire(id, request).await;
        let workflow = match &result {
            Ok(outcome) => outcome.instance.workflow.clone(),
            Err(_) => String::new(),
        };
        self.account(caller, &workflow, &input.event, Some(id), began, result)
    }

    /// Counts, times and logs one command's result.
    fn account(
        &self,
        caller: &Caller,
        workflow: &str,
        event: &str,
        instance: Option<&str>,
        began: Instant,
        result: Result<Outcome, crate::engine::EngineError>,
    ) -> Result<Outcome, Problem> {
        match result {
            Ok(outcome) => {
                if !outcome.replayed {
                    self.metrics
                        .command_seconds
                        .observe(began.elapsed().as_secs_f64());
                    // The instance's own workflow: a loaded definition's id, never the request's.
                    self.metrics.stepped(&outcome.instance.workflow, 1);
                }
                tracing::info!(
                    actor = ?caller.user.id,
                    instance = ?outcome.instance.id,
                    event = ?event,
                    state = ?outcome.instance.state,
                    "step"
                );
                Ok(outcome)
            }
            Err(err) => {
                let code = err.code();
                let detail = err.to_string();
                let problem = Problem::from(err);
                if problem.extra.contains_key("refused") {
                    self.metrics.refused(code);
                }
                macro_rules! log {
                    ($level:ident, $what:literal) => {
                        tracing::$level!(
                            actor = ?caller.user.id,
                            roles = ?caller.user.roles,
                            instance = ?instance.unwrap_or(""),
                            workflow = ?workflow,
                            event = ?event,
                            code,
                            detail = ?detail,
                            $what
                        )
                    };
                }
                match problem.status {
                    status if status.is_server_error() => log!(error, "command failed"),
                    // Someone tried what their roles or the four-eyes rule do not allow.
                    axum::http::StatusCode::FORBIDDEN => log!(warn, "command refused"),
                    _ => log!(info, "command refused"),
                }
                Err(problem)
            }
        }
    }
}

/// What a caller asks to start; who asks comes from the [`Caller`] alone.
#[derive(Debug, Clone, Default)]
pub struct StartInput {
    pub workflow: String,
    /// Initial values of declared fields: a JSON object, or `null` for none.
    pub data: Value,
    pub business_key: Option<String>,
    pub idempotency_key: Option<String>,
}

/// What a caller asks to fire; who asks comes from the [`Caller`] alone.
#[derive(Debug, Clone, Default)]
pub struct FireInput {
    pub event: String,
    /// The event's values: a JSON object, or `null` for none.
    pub payload: Value,
    pub comment: Option<String>,
    /// Refuse unless the instance is still at this step.
    pub expected_seq: Option<u64>,
    pub idempotency_key: Option<String>,
}

/// The whole application: API, console, metrics, with the body limit and response counting.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(api::routes())
        .merge(console::routes())
        .method_not_allowed_fallback(api::method_not_allowed)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_responses,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn not_found(request: Request) -> Problem {
    Problem::not_found(
        "no_route",
        format!(
            "no route {} {}; the API is described at /api/openapi.json",
            request.method(),
            request.uri().path()
        ),
    )
}

async fn count_responses(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let method = metrics::method_label(request.method());
    let response = next.run(request).await;
    state.metrics.responded(method, response.status());
    response
}

/// Why the server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "the users file has demo users, whose passwords are public, and the server would listen on {addr}, which is not a loopback address; remove the demo users (or their `demo: true`) and give real password hashes, or listen on 127.0.0.1"
    )]
    DemoUsersRemote { addr: SocketAddr },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the server stopped: {0}")]
    Io(#[from] std::io::Error),
}

/// A bound server, ready to run.
pub struct Server {
    state: AppState,
    listener: tokio::net::TcpListener,
}

impl Server {
    /// Binds the address. Refuses a non-loopback address while any user is a demo user.
    pub async fn bind(state: AppState, addr: SocketAddr) -> Result<Server, ServeError> {
        if !addr.ip().is_loopback() && state.users().has_demo() {
            return Err(ServeError::DemoUsersRemote { addr });
        }
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })?;
        Ok(Server { state, listener })
    }

    /// The address it listens on (the port chosen when bound to port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, with the timer loop and (when `watch`) the
    /// definition watcher running beside it. On shutdown, requests in flight finish first;
    /// every step they took is committed before this returns.
    pub async fn run(
        self,
        watch: bool,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let timers = {
            let state = self.state.clone();
            let mut stop = stop_rx.clone();
            tokio::spawn(async move {
                let engine = state.engine.clone();
                engine
                    .run_timers(
                        async move {
                            let _ = stop.wait_for(|s| *s).await;
                        },
                        |fired, round| record_fired(&state.metrics, fired, round),
                        |err| tracing::error!(error = ?err.to_string(), "timer round failed"),
                    )
                    .await;
            })
        };
        let watcher = if watch {
            Some(reload::watch(self.state.clone(), stop_rx.clone())?)
        } else {
            None
        };
        let app = router(self.state.clone());
        axum::serve(
            self.listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await?;
        let _ = stop_tx.send(true);
        let _ = timers.await;
        if let Some(watcher) = watcher {
            let _ = watcher.await;
        }
        Ok(())
    }
}

fn record_fired(
    metrics: &Metrics,
    fired: &[crate::engine::Fired],
    round: chrono::DateTime<chrono::Utc>,
) {
    for item in fired {
        if let crate::engine::Fired::Timer {
            due,
            instance,
            event,
            ..
        } = item
        {
            let lag = (round - *due).to_std().unwrap_or_default();
            metrics.timer_lag_seconds.observe(lag.as_secs_f64());
            metrics.timers_fired.inc();
            tracing::info!(
                instance = ?instance,
                event = ?event,
                lag_ms = lag.as_millis() as u64,
                "timer fired"
            );
        }
    }
}
