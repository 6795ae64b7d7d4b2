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
pub mod gate;
pub mod limits;
mod listen;
pub mod metrics;
pub mod passwords;
pub mod problem;
mod reading;
pub mod reload;
pub mod stream;
pub mod throttle;

use crate::definition::Definition;
use crate::engine::{Engine, Fire, Outcome, StartRequest};
use crate::i18n::{self, Explain};
use auth::{Caller, LoginForms, Sessions, Users};
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
pub use limits::{Limits, SignInLimits};
use metrics::Metrics;
use passwords::Passwords;
use problem::Problem;
use serde_json::Value;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use throttle::SignInThrottle;

/// The largest request body accepted: the engine's payload limit and room for the envelope.
pub const MAX_BODY_BYTES: usize = crate::engine::MAX_PAYLOAD_BYTES + 64 * 1024;

/// The longest request target (path and query) answered; a longer one is 414 `uri_too_long`.
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// The most header fields a request may have; more is 431 `headers_too_large`.
pub const MAX_HEADERS: usize = 64;

/// The most bytes a request's header fields may take; more is 431 `headers_too_large`.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Everything the handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The engine every step, read and reload goes through; the server holds no other copy
    /// of the store.
    pub engine: Engine,
    users: Arc<Users>,
    /// The console's signed-in sessions, kept in the store: every server on it shares them.
    pub sessions: Arc<Sessions>,
    /// What `/metrics` reports, counted as requests, steps and timers happen.
    pub metrics: Arc<Metrics>,
    /// The reload attempts since start-up, for the console and `GET /api/validation`.
    pub reloads: Arc<reload::ReloadLog>,
    /// The folders watched for definition changes.
    pub(crate) watched: Arc<Vec<PathBuf>>,
    /// The limits in force: body timeout, connection caps, sign-in throttles.
    pub(crate) limits: Arc<Limits>,
    /// The threads that check passwords, with their queue.
    pub(crate) passwords: Arc<Passwords>,
    /// Sign-in attempts by user name and by client address.
    pub(crate) throttle: Arc<SignInThrottle>,
    /// The sign-in form's tokens.
    pub(crate) login_forms: Arc<LoginForms>,
    /// What a console page shows again after its form's redirect.
    pub(crate) flashes: Arc<console::flash::Flashes>,
    /// The deploy gates counted: running instances on older versions of each workflow.
    pub(crate) gates: Arc<gate::Gates>,
    /// The channels notifications leave by (`config/channels.yaml`); none by default.
    pub(crate) channels: Arc<crate::delivery::Channels>,
    /// The event streams open (`GET /api/events`), per user.
    pub(crate) event_streams: Arc<api::events::Streams>,
}

impl AppState {
    /// The state with the default [`Limits`].
    pub fn new(engine: Engine, users: Users, watched: Vec<PathBuf>) -> AppState {
        AppState::with_limits(engine, users, watched, Limits::default())
    }

    /// The state of a server over `engine`, with `users` signing in and calling, watching
    /// `watched` for edits (when the server runs with `watch`), and holding `limits`: what
    /// `sopflow serve` builds from its flags. The metrics start from the definitions in force.
    pub fn with_limits(
        engine: Engine,
        users: Users,
        watched: Vec<PathBuf>,
        limits: Limits,
    ) -> AppState {
        let metrics = Metrics::new();
        metrics
            .workflows
            .set(i64::try_from(engine.workflows().len()).unwrap_or(i64::MAX));
        // The definitions in force were put in force now, when the engine loaded them.
        metrics
            .last_reload
            .set(u64::try_from(engine.now().timestamp()).unwrap_or(0));
        AppState {
            sessions: Arc::new(Sessions::with_default_idle(engine.clone())),
            engine,
            users: Arc::new(users),
            metrics: Arc::new(metrics),
            reloads: Arc::new(reload::ReloadLog::default()),
            watched: Arc::new(watched),
            passwords: Arc::new(Passwords::start(
                limits.signin.hashing_threads,
                limits.signin.queue,
            )),
            throttle: Arc::new(SignInThrottle::new(&limits.signin)),
            login_forms: Arc::new(LoginForms::new()),
            flashes: Arc::new(console::flash::Flashes::default()),
            gates: Arc::new(gate::Gates::default()),
            channels: Arc::new(crate::delivery::Channels::default()),
            event_streams: Arc::default(),
            limits: Arc::new(limits),
        }
    }

    /// The state, with notifications sent by `channels` (the server's delivery loop routes
    /// and sends them; without channels it still fills people's 通知 and the event feed).
    pub fn with_channels(mut self, channels: crate::delivery::Channels) -> AppState {
        self.channels = Arc::new(channels);
        self
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
        let message = self.refusal_message(&result, caller, "start", || {
            let def = self.engine.definition_of(&input.workflow)?;
            let initial = def.workflow.initial.value.clone();
            Some((def, initial))
        });
        self.account(caller, &input.workflow, "start", None, began, result)
            .map_err(|problem| problem.explained(message))
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
        // An instance the caller may not read does not exist for them: they cannot act on it,
        // and a refusal must not tell them it is there.
        let instance = match self.instance(caller, id).await {
            Ok(instance) => instance,
            Err(err) => return self.account(caller, "", &input.event, Some(id), began, Err(err)),
        };
        let mut request = Fire::new(input.event.clone(), caller.actor()).payload(input.payload);
        if let Some(comment) = input.comment {
            request = request.comment(comment);
        }
        request.expected_seq = input.expected_seq;
        request.idempotency_key = input.idempotency_key;
        let result = self.engine.fire(id, request).await;
        let message = self.refusal_message(&result, caller, &input.event, || {
            let def = self.engine.definition(&instance.version).ok()?;
            Some((def, instance.state.to_string()))
        });
        self.account(
            caller,
            &instance.workflow,
            &input.event,
            Some(id),
            began,
            result,
        )
        .map_err(|problem| problem.explained(message))
    }

    /// A refusal in the caller's language, with the titles of the workflow (from `at`: the
    /// definition and the state the step was tried in) and the names of the people it
    /// mentions; `None` for any other result, which then costs nothing.
    fn refusal_message(
        &self,
        result: &Result<Outcome, crate::engine::EngineError>,
        caller: &Caller,
        event: &str,
        at: impl FnOnce() -> Option<(Arc<Definition>, String)>,
    ) -> Option<String> {
        let Err(crate::engine::EngineError::Refused(refusal)) = result else {
            return None;
        };
        let at = at();
        let users = self.users();
        let roles = self.engine.role_list();
        let person = |id: &str| users.get(id).map(|u| u.name.clone());
        let explain = Explain {
            workflow: at.as_ref().map(|(def, _)| &def.workflow),
            state: at.as_ref().map(|(_, state)| state.as_str()),
            event: Some(event),
            person: Some(&person),
            roles: roles.as_deref(),
        };
        Some(i18n::explain(refusal, caller.lang, &explain))
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
    /// The id of the workflow to start (`hot_work_permit`); its newest version is used.
    pub workflow: String,
    /// Initial values of declared fields: a JSON object, or `null` for none.
    pub data: Value,
    /// The business's own reference for the instance (a unit, a contract number), indexed so
    /// that the instance can be found by it.
    pub business_key: Option<String>,
    /// A client's key for this start: sent again, it answers the instance started the first
    /// time instead of starting a second one.
    pub idempotency_key: Option<String>,
}

/// What a caller asks to fire; who asks comes from the [`Caller`] alone.
#[derive(Debug, Clone, Default)]
pub struct FireInput {
    /// The event to fire (`approve`), one the instance's state handles.
    pub event: String,
    /// The event's values: a JSON object, or `null` for none.
    pub payload: Value,
    /// What the person says with the step (a rejection's reason, a reviewer's note); kept in
    /// the history and the approval chain.
    pub comment: Option<String>,
    /// Refuse unless the instance is still at this step.
    pub expected_seq: Option<u64>,
    /// A client's key for this step: sent again, it answers the step taken the first time
    /// instead of firing again.
    pub idempotency_key: Option<String>,
}

/// The whole application: API, console, metrics, with the request-head and body limits,
/// response counting, and problems for every error on the API's paths. From the outside in:
/// problems for the API (`api_problems`), counting, a panic answered as a 500 problem, the
/// head limits (`head_limits`), the body limit, the routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(api::routes())
        .merge(console::routes())
        .method_not_allowed_fallback(api::method_not_allowed)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(head_limits))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                tracing::error!("a request handler panicked");
                Problem::internal("the server failed while answering; the failure is logged")
                    .into_response()
            },
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_responses,
        ))
        .layer(middleware::from_fn(api_problems))
        .with_state(state)
}

/// Refuses a request whose target or header fields are too large (414 `uri_too_long`, 431
/// `headers_too_large`), before any handler sees it. hyper answers heads larger than its
/// buffer itself (bare, with no body); these limits are below it, so what they catch is
/// answered as a problem.
async fn head_limits(request: Request, next: Next) -> Response {
    let target = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    if target > MAX_URI_BYTES {
        return Problem::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            "URI too long",
            format!("the request target is {target} bytes, more than the limit of {MAX_URI_BYTES}"),
        )
        .into_response();
    }
    let headers = request.headers();
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if headers.len() > MAX_HEADERS || bytes > MAX_HEADER_BYTES {
        return Problem::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            "Header fields too large",
            format!(
                "the request has {} header fields in {bytes} bytes; at most {MAX_HEADERS} fields in {MAX_HEADER_BYTES} bytes are taken",
                headers.len()
            ),
        )
        .into_response();
    }
    next.run(request).await
}

/// Whether a path is the API's (or `/metrics`), whose errors are always problems.
fn is_api(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/") || path == "/metrics"
}

/// Makes every error answered on the API's paths a problem with a stable `code`, whatever
/// produced it (a handler, an extractor, axum itself), keeping its status and its `Allow`
/// and `Retry-After` headers. Problems already are, and pass unchanged.
async fn api_problems(request: Request, next: Next) -> Response {
    let api = is_api(request.uri().path());
    let response = next.run(request).await;
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == problem::PROBLEM_JSON.as_bytes());
    if !api || is_problem || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (code, title) = match status {
        StatusCode::BAD_REQUEST => ("bad_request", "Bad request"),
        StatusCode::NOT_FOUND => ("no_route", "Not found"),
        StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "Method not allowed"),
        StatusCode::REQUEST_TIMEOUT => ("body_timeout", "Request timeout"),
        StatusCode::PAYLOAD_TOO_LARGE => ("body_too_large", "Body too large"),
        StatusCode::URI_TOO_LONG => ("uri_too_long", "URI too long"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported_media_type", "Unsupported media type"),
        StatusCode::TOO_MANY_REQUESTS => ("too_many_requests", "Too many requests"),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
            ("headers_too_large", "Header fields too large")
        }
        StatusCode::SERVICE_UNAVAILABLE => ("unavailable", "Unavailable"),
        s if s.is_server_error() => ("internal", "Internal error"),
        _ => ("bad_request", "Bad request"),
    };
    let mut problem = Problem::new(
        status,
        code,
        title,
        format!(
            "{} {}; the API is described at /api/openapi.json",
            status.as_u16(),
            status.canonical_reason().unwrap_or("error")
        ),
    )
    .into_response();
    for name in [header::ALLOW, header::RETRY_AFTER] {
        if let Some(value) = response.headers().get(&name) {
            problem.headers_mut().insert(name, value.clone());
        }
    }
    problem
}

/// A `Retry-After` header value of whole seconds.
pub(crate) fn retry_after(seconds: u64) -> HeaderValue {
    HeaderValue::from(seconds.max(1))
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
    /// The users file is a demo set, whose passwords are public, and the address is not
    /// loopback: anyone who can reach it could sign in.
    #[error(
        "the users file is a demo set (`demo_set: true`), whose passwords are public, and the server would listen on {addr}, which is not a loopback address; write a users file with real password hashes (`sopflow user hash-password`) and no demo users, or listen on 127.0.0.1"
    )]
    DemoUsersRemote {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// The address cannot be listened on (in use, not this machine's, a privileged port).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// Serving failed after it started (the definition watcher could not start, the
    /// listener broke).
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

    /// The state it serves with; clone it before [`Server::run`] takes the server, to reach
    /// the engine, sessions or metrics while it runs.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, with the timer loop, the delivery loop (routing the
    /// outbox, sending by the state's channels) and (when `watch`) the definition watcher
    /// running beside it (or, for an engine running the deployed set, the follower of the
    /// store's deploys). On shutdown, event streams end, requests in flight finish first, and
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
        let delivery = {
            let state = self.state.clone();
            let mut stop = stop_rx.clone();
            let metrics = state.metrics.clone();
            let worker =
                crate::delivery::worker::Worker::new(state.engine.outbox(), state.channels.clone())
                    .observe(Arc::new(move |channel, attempt| {
                        metrics.record_delivery(channel, attempt)
                    }));
            tokio::spawn(async move {
                worker
                    .run(async move {
                        let _ = stop.wait_for(|s| *s).await;
                    })
                    .await;
            })
        };
        // Files are watched; a deployed set is followed through the store.
        let watcher = match (watch, self.state.engine.definition_source()) {
            (false, _) => None,
            (true, crate::engine::DefinitionSource::Files) => {
                Some(reload::watch(self.state.clone(), stop_rx.clone())?)
            }
            (true, crate::engine::DefinitionSource::Deployed) => {
                Some(reload::follow(self.state.clone(), stop_rx.clone()))
            }
        };
        let demo = self.state.users().demo_ids();
        if self.state.users().has_demo() {
            tracing::warn!(
                demo_users = ?demo,
                "DEVELOPMENT MODE: the users file is a demo set with public passwords; listening on loopback only, and demo users are refused on any request that came through a proxy"
            );
        }
        let app = router(self.state.clone());
        let limits = self.state.limits.clone();
        // Event streams end when shutdown begins: a graceful shutdown waits for open requests.
        let streams = self.state.event_streams.clone();
        let shutdown = async move {
            shutdown.await;
            streams.close();
        };
        listen::serve(
            self.listener,
            app,
            &limits,
            self.state.metrics.clone(),
            shutdown,
        )
        .await;
        let _ = stop_tx.send(true);
        let _ = timers.await;
        let _ = delivery.await;
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
