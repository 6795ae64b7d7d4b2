//! `start`, `fire`, `show`, `list` and `history` through a running `sopflow serve`.
//!
//! sled locks its data folder for one process, so while a server runs these commands cannot
//! open the store themselves. With `--server URL` they call the server's JSON API instead, as
//! the user the `--token` belongs to: the server takes the actor and roles from the token and
//! never from the request, so `--actor` and `--role` are refused here rather than ignored.
//! Answers are read back into the engine's own types ([`Instance`], [`Entry`], [`Outcome`]), so
//! that the renderers the local commands use print them, in the same shape and with the same
//! exit codes (a problem with `"refused": true` is a refusal, exit 3).
//!
//! Titles come from the definition version itself: `GET /api/versions/{hash}` returns its
//! stored sources, compiled here exactly as the engine rebuilds an old version
//! ([`rebuild`]), so the names in human output are the ones the instance runs on.
//!
//! `https://` is checked against the system's trusted certificates (rustls with the platform
//! verifier, the TLS stack the notification channels use too): put a TLS-terminating proxy
//! in front of a server that is reached across an untrusted network, and name its https://
//! address. Plain `http://` stays for this machine and trusted networks.

use super::Format;
use super::present::{self, Titles};
use super::runtime::Failure;
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use sopflow::audit::chain::ApprovalChain;
use sopflow::audit::verify::{Problem as VerifyProblem, Summary};
use sopflow::definition::Definition;
use sopflow::definition::Workflow;
use sopflow::engine::{Outcome, rebuild};
use sopflow::i18n::Lang;
use sopflow::machine::{Actor, Available, Entry, Instance};
use sopflow::script::Sandbox;
use sopflow::store::{Query, StoredDefinition};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// How long to wait for a connection: a server on the same machine or network answers at once,
/// so a long wait only delays the message that it is not there.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long to wait for an answer. A step is acknowledged after one flush, in milliseconds;
/// this bounds a hung server, not a slow step.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// `--server` and `--token`, for the commands that can run through a server.
#[derive(Debug, Clone, clap::Args)]
pub struct RemoteArgs {
    /// Run through a running `sopflow serve` at this URL instead of opening the data folder,
    /// which the server holds locked; the data and definition folder flags are then not used.
    /// https:// through a TLS-terminating proxy in front of the server; http:// on this machine
    /// or a trusted network.
    #[arg(long, env = "SOPFLOW_SERVER", hide_env_values = true, value_name = "URL", value_parser = server_url)]
    pub server: Option<Url>,
    /// The API token to call the server with (`sopflow user new-token` makes one). It decides
    /// who acts: the server takes the actor and roles from the token's user.
    #[arg(
        long,
        env = "SOPFLOW_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
}

impl RemoteArgs {
    /// Checks the flags against each other, before anything is sent or opened. `who_given` is
    /// whether `--actor` or `--role` was given. Returns the message of the usage error.
    pub(super) fn check(&self, who_given: bool) -> Result<(), String> {
        let Some(server) = &self.server else {
            return Ok(());
        };
        if who_given {
            return Err(format!(
                "--actor and --role cannot be used with --server ({server}): the token decides who acts; the server takes the actor and roles from the user the token belongs to (to act as --actor on the local data folder, leave out --server and unset SOPFLOW_SERVER)"
            ));
        }
        if self.token.as_deref().is_none_or(|t| t.trim().is_empty()) {
            return Err(format!(
                "--server ({server}) needs --token (or SOPFLOW_TOKEN): the server acts only for a known user; `sopflow user new-token` makes a token"
            ));
        }
        Ok(())
    }

    /// The client for `--server`, or `None` to run on the local data folder. Titles are
    /// fetched only for `--format human`, the only output that prints them.
    pub(super) fn connect(&self, format: Format, lang: Lang) -> Result<Option<Remote>, Failure> {
        let Some(base) = &self.server else {
            return Ok(None);
        };
        let token = self.token.as_deref().map(str::trim).unwrap_or_default();
        Remote::new(
            base.clone(),
            token.to_string(),
            format == Format::Human,
            lang,
        )
        .map(Some)
    }
}

/// Reads `--server`: an absolute `http://` URL, perhaps with a path prefix (a server behind a
/// proxy at `/sopflow/`).
fn server_url(text: &str) -> Result<Url, String> {
    // clap passes an empty SOPFLOW_SERVER on as a value.
    if text.trim().is_empty() {
        return Err(
            "the URL is empty; give the server's address, such as http://127.0.0.1:8080 (or unset SOPFLOW_SERVER to use the local data folder)"
                .into(),
        );
    }
    // Without it, `localhost:8080` would parse as a URL whose scheme is `localhost`.
    if !text.contains("://") {
        return Err(format!("`{text}` has no scheme; give it as http://{text}"));
    }
    let url = Url::parse(text).map_err(|e| {
        format!("not a URL ({e}); give the server's address, such as http://127.0.0.1:8080")
    })?;
    match url.scheme() {
        "http" | "https" => {}
        other => {
            return Err(format!(
                "`{other}://` is not an HTTP address; give one such as http://127.0.0.1:8080"
            ));
        }
    }
    if url.host().is_none() {
        return Err("the URL names no host; give one such as http://127.0.0.1:8080".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(
            "the URL must not have a query (`?`) or fragment (`#`); give the server's base address"
                .into(),
        );
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("give credentials with --token, not in the URL".into());
    }
    Ok(url)
}

/// Who `show` says the events are for when `GET /api/me` cannot tell: the server computes
/// them for the caller.
const VIEWER: &str = "you (the token's user)";

/// The most instances the server lists in one answer (its ceiling for `limit`). The local
/// `list` has no default limit, so without `--limit` this many are asked for.
const SERVER_LIST_MAX: usize = 1000;

/// A client of one server, for one command.
pub(super) struct Remote {
    base: Url,
    token: String,
    http: reqwest::Client,
    runtime: tokio::runtime::Runtime,
    /// Whether to fetch definition versions for their titles (a request and a compile each).
    titles: bool,
    /// Compiles the versions fetched for titles; never runs their scripts.
    sandbox: Sandbox,
    /// The language asked of the server (`Accept-Language`) and printed in.
    lang: Lang,
}

/// What a command that took a step answers: the engine's [`Outcome`].
#[derive(Deserialize)]
struct Stepped {
    instance: Instance,
    entry: Entry,
    #[serde(default)]
    replayed: bool,
}

/// What `GET /api/instances/{id}` answers.
#[derive(Deserialize)]
struct Found {
    instance: Instance,
    #[serde(default)]
    state_title: Option<String>,
    #[serde(default)]
    available: Vec<Offered>,
}

/// An event the caller may fire ([`Available`], which is not deserialisable).
#[derive(Deserialize)]
struct Offered {
    event: String,
    #[serde(default)]
    title: Option<String>,
    role: String,
}

/// What `GET /api/me` answers: the token's user.
#[derive(Deserialize)]
struct Me {
    id: String,
    #[serde(default)]
    roles: Vec<String>,
}

/// An `application/problem+json` body, as far as the CLI uses it.
#[derive(Deserialize, Default)]
struct ProblemBody {
    #[serde(default)]
    title: String,
    #[serde(default)]
    detail: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    refused: bool,
    /// A refusal in the language asked for.
    #[serde(default)]
    message: String,
}

/// What `POST /api/audit/verify` answers.
#[derive(Deserialize)]
pub(super) struct Verified {
    pub clean: bool,
    pub summary: Summary,
    #[serde(default)]
    pub problems: Vec<VerifyProblem>,
}

/// `show` through a server: the instance, its state's title, and the events the token's user
/// may fire.
pub(super) struct Shown {
    pub instance: Instance,
    pub state_title: Option<String>,
    pub available: Vec<Available>,
    pub titles: Titles,
}

impl Remote {
    fn new(base: Url, token: String, titles: bool, lang: Lang) -> Result<Remote, Failure> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Failure::Runtime(format!("cannot start the async runtime: {e}")))?;
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("sopflow-cli/", env!("CARGO_PKG_VERSION")))
            // The server explains refusals in the language asked for.
            .default_headers(reqwest::header::HeaderMap::from_iter([(
                reqwest::header::ACCEPT_LANGUAGE,
                reqwest::header::HeaderValue::from_static(lang.tag()),
            )]))
            .build()
            .map_err(|e| Failure::Runtime(format!("cannot make an HTTP client: {e}")))?;
        Ok(Remote {
            base,
            token,
            http,
            runtime,
            titles,
            sandbox: Sandbox::default(),
            lang,
        })
    }

    /// `POST /api/instances`.
    pub(super) fn start(
        &self,
        workflow: &str,
        data: Map<String, Value>,
        business_key: Option<&str>,
        idempotency_key: Option<&str>,
    ) -> Result<(Outcome, Titles), Failure> {
        let mut body = Map::new();
        body.insert("workflow".into(), Value::String(workflow.to_string()));
        if !data.is_empty() {
            body.insert("data".into(), Value::Object(data));
        }
        if let Some(key) = business_key {
            body.insert("business_key".into(), Value::String(key.to_string()));
        }
        self.step(&["api", "instances"], body, idempotency_key)
    }

    /// `POST /api/instances/{id}/events/{event}`.
    pub(super) fn fire(
        &self,
        instance: &str,
        event: &str,
        payload: Map<String, Value>,
        comment: Option<&str>,
        expected_seq: Option<u64>,
        idempotency_key: Option<&str>,
    ) -> Result<(Outcome, Titles), Failure> {
        let mut body = Map::new();
        if !payload.is_empty() {
            body.insert("payload".into(), Value::Object(payload));
        }
        if let Some(comment) = comment {
            body.insert("comment".into(), Value::String(comment.to_string()));
        }
        if let Some(seq) = expected_seq {
            body.insert("expected_seq".into(), Value::from(seq));
        }
        self.step(
            &["api", "instances", instance, "events", event],
            body,
            idempotency_key,
        )
    }

    fn step(
        &self,
        path: &[&str],
        body: Map<String, Value>,
        idempotency_key: Option<&str>,
    ) -> Result<(Outcome, Titles), Failure> {
        let mut request = self.request(Method::POST, path).json(&body);
        if let Some(key) = idempotency_key {
            // The server takes visible ASCII only (it is a header); say so before sending.
            let value = reqwest::header::HeaderValue::from_str(key)
                .ok()
                .filter(|_| !key.is_empty() && key.bytes().all(|b| b.is_ascii_graphic()))
                .ok_or_else(|| {
                    Failure::Input(
                        "--idempotency-key must be visible ASCII without spaces to be sent to a server (a UUID will do)"
                            .into(),
                    )
                })?;
            request = request.header("Idempotency-Key", value);
        }
        self.runtime.block_on(async {
            let answer: Stepped = self.call(request).await?;
            let titles = self.titles(&answer.instance.version).await;
            let outcome = Outcome {
                entry: answer.entry,
                instance: answer.instance,
                replayed: answer.replayed,
            };
            Ok((outcome, titles))
        })
    }

    /// `GET /api/instances/{id}`.
    pub(super) fn show(&self, instance: &str) -> Result<Shown, Failure> {
        self.runtime.block_on(async {
            let found: Found = self
                .call(self.request(Method::GET, &["api", "instances", instance]))
                .await?;
            let titles = self.titles(&found.instance.version).await;
            let state_title = found
                .state_title
                .or_else(|| titles.state(&found.instance.state).map(str::to_string));
            let available = found
                .available
                .into_iter()
                .map(|o| Available {
                    event: o.event,
                    title: o.title,
                    role: o.role,
                    blocked: None,
                })
                .collect();
            Ok(Shown {
                instance: found.instance,
                state_title,
                available,
                titles,
            })
        })
    }

    /// How `show` names the token's user, `wang (contractor, applicant_unit)` as the local
    /// command names `--actor` and `--role`; from `GET /api/me`.
    pub(super) fn viewer(&self) -> String {
        let request = self.request(Method::GET, &["api", "me"]);
        self.runtime
            .block_on(self.call::<Me>(request))
            .map(|me| present::viewer(&Actor::new(me.id, me.roles)))
            .unwrap_or_else(|_| VIEWER.to_string())
    }

    /// `GET /api/instances?workflow=&state=&business_key=&limit=`.
    pub(super) fn list(&self, query: &Query) -> Result<(Vec<Instance>, Vec<Titles>), Failure> {
        let mut params: Vec<(&str, String)> = Vec::new();
        let texts = [
            ("workflow", &query.workflow),
            ("state", &query.state),
            ("business_key", &query.business_key),
        ];
        for (name, value) in texts {
            if let Some(value) = value {
                params.push((name, value.clone()));
            }
        }
        params.push(("limit", query.limit.unwrap_or(SERVER_LIST_MAX).to_string()));
        let request = self
            .request(Method::GET, &["api", "instances"])
            .query(&params);
        self.runtime.block_on(async {
            let found: Vec<Instance> = self.call(request).await?;
            if query.limit.is_none() && found.len() >= SERVER_LIST_MAX {
                eprintln!(
                    "note: a server lists at most {SERVER_LIST_MAX} instances at a time; narrow the list with --workflow, --state or --business-key"
                );
            }
            let titles = self.all_titles(found.iter().map(|i| i.version.as_str())).await;
            Ok((found, titles))
        })
    }

    /// `GET /api/instances/{id}/history`.
    pub(super) fn history(&self, instance: &str) -> Result<(Vec<Entry>, Vec<Titles>), Failure> {
        let request = self.request(Method::GET, &["api", "instances", instance, "history"]);
        self.runtime.block_on(async {
            let entries: Vec<Entry> = self.call(request).await?;
            let titles = self
                .all_titles(entries.iter().map(|e| e.version.as_str()))
                .await;
            Ok((entries, titles))
        })
    }

    /// `GET /api/deliveries/dead?limit=`: the dead letters, as the local command's JSON lists
    /// them (the server lists at most 200).
    pub(super) fn dead_letters(&self, limit: usize) -> Result<Vec<Value>, Failure> {
        let request = self
            .request(Method::GET, &["api", "deliveries", "dead"])
            .query(&[("limit", limit.clamp(1, 200).to_string())]);
        self.runtime.block_on(async {
            let mut answer: Map<String, Value> = self.call(request).await?;
            Ok(match answer.remove("dead") {
                Some(Value::Array(dead)) => dead,
                _ => Vec::new(),
            })
        })
    }

    /// `POST /api/deliveries/dead/retry`: one dead letter (`key`) or all; how many were queued
    /// again.
    pub(super) fn revive(&self, key: Option<&str>) -> Result<u64, Failure> {
        let body = match key {
            Some(key) => serde_json::json!({ "key": key }),
            None => serde_json::json!({ "all": true }),
        };
        let request = self
            .request(Method::POST, &["api", "deliveries", "dead", "retry"])
            .json(&body);
        self.runtime.block_on(async {
            let answer: Map<String, Value> = self.call(request).await?;
            Ok(answer.get("revived").and_then(Value::as_u64).unwrap_or(0))
        })
    }

    /// The titles of each distinct version, fetched once each.
    async fn all_titles<'a>(&self, versions: impl Iterator<Item = &'a str>) -> Vec<Titles> {
        let mut titles: Vec<Titles> = Vec::new();
        for version in versions {
            if !titles.iter().any(|t| t.version() == version) {
                titles.push(self.titles(version).await);
            }
        }
        titles
    }

    /// The titles of a version, from the server's copy of its sources. A version that cannot
    /// be had or compiled leaves the names standing alone, as the local commands do.
    async fn titles(&self, version: &str) -> Titles {
        Titles::from_definition(version, self.definition(version).await)
    }

    async fn definition(&self, hash: &str) -> Option<Arc<Definition>> {
        if !self.titles {
            return None;
        }
        let stored: StoredDefinition = self
            .call(self.request(Method::GET, &["api", "versions", hash]))
            .await
            .ok()?;
        let known = referenced_workflows(&stored);
        let definition = rebuild(&stored, &self.sandbox, &known).ok()?;
        // Sources that hash to another version would give another version's titles.
        (definition.hash == hash).then(|| Arc::new(definition))
    }

    /// `GET /api/instances/{id}/chain` (auditors and the people taking part).
    pub(super) fn audit_chain(&self, instance: &str) -> Result<ApprovalChain, Failure> {
        let request = self.request(Method::GET, &["api", "instances", instance, "chain"]);
        self.runtime.block_on(self.call(request))
    }

    /// `POST /api/audit/verify` (auditors): the same JSON `audit verify --format json` prints.
    pub(super) fn audit_verify(
        &self,
        as_of: Option<&str>,
        digest: Option<&str>,
    ) -> Result<Verified, Failure> {
        let request = self
            .request(Method::POST, &["api", "audit", "verify"])
            .json(&serde_json::json!({"as_of": as_of, "digest": digest}));
        self.runtime.block_on(self.call(request))
    }

    /// `GET /api/audit/export` (auditors), written to `out` as it arrives.
    pub(super) fn audit_export(
        &self,
        params: &[(&str, String)],
        out: &mut dyn std::io::Write,
    ) -> Result<u64, Failure> {
        let request = self
            .request(Method::GET, &["api", "audit", "export"])
            .query(params);
        self.runtime.block_on(async {
            let response = request
                .send()
                .await
                .map_err(|e| self.transport(&e, false))?;
            let status = response.status();
            if !status.is_success() {
                let body = response
                    .bytes()
                    .await
                    .map_err(|e| self.transport(&e, false))?;
                return Err(self.problem(status, &body));
            }
            let mut response = response;
            let mut written = 0;
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| self.transport(&e, false))?
            {
                out.write_all(&chunk)
                    .map_err(|e| Failure::Runtime(format!("cannot write the export: {e}")))?;
                written += chunk.len() as u64;
            }
            out.flush()
                .map_err(|e| Failure::Runtime(format!("cannot write the export: {e}")))?;
            Ok(written)
        })
    }

    /// A request to `base` + the path segments (each percent-encoded), with the token.
    fn request(&self, method: Method, segments: &[&str]) -> reqwest::RequestBuilder {
        let mut url = self.base.clone();
        // Only URLs that cannot be a base refuse segments, and `server_url` accepts only http
        // URLs with a host, which always can.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        self.http.request(method, url).bearer_auth(&self.token)
    }

    /// Sends a request and reads the answer as `T`, or the problem as a [`Failure`].
    async fn call<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, Failure> {
        let (client, request) = request.build_split();
        let request = request.map_err(|e| self.transport(&e, false))?;
        let writes = request.method() == Method::POST;
        let path = request.url().path().to_string();
        let response = client
            .execute(request)
            .await
            .map_err(|e| self.transport(&e, writes))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| self.transport(&e, writes))?;
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|e| Failure::Remote {
                code: "bad_answer".into(),
                message: format!(
                    "the server at {} answered {path} with JSON this sopflow cannot read ({e}); are the server and this command the same version?",
                    self.base
                ),
            });
        }
        Err(self.problem(status, &body))
    }

    /// A problem response as a [`Failure`]: a refusal when it says so, an error otherwise.
    fn problem(&self, status: StatusCode, body: &[u8]) -> Failure {
        let Ok(problem) = serde_json::from_slice::<ProblemBody>(body) else {
            let text = String::from_utf8_lossy(body);
            let text: String = text.trim().chars().take(200).collect();
            return Failure::Remote {
                code: format!("http_{}", status.as_u16()),
                message: format!(
                    "the server at {} answered {status} without a problem report{}; is it a sopflow server?",
                    self.base,
                    if text.is_empty() {
                        String::new()
                    } else {
                        format!(": {text}")
                    }
                ),
            };
        };
        let code = if problem.code.is_empty() {
            format!("http_{}", status.as_u16())
        } else {
            problem.code
        };
        let detail = if problem.detail.is_empty() {
            problem.title
        } else {
            problem.detail
        };
        if problem.refused {
            // The engine's message for a refusal starts with the word; the CLI adds its own.
            let reason = detail
                .strip_prefix("refused: ")
                .unwrap_or(&detail)
                .to_string();
            let message = if problem.message.is_empty() {
                reason.clone()
            } else {
                problem.message
            };
            return Failure::Refused {
                code,
                reason,
                message,
                lang: self.lang,
            };
        }
        let message = if status == StatusCode::UNAUTHORIZED {
            format!(
                "the server at {} did not accept the token (--token or SOPFLOW_TOKEN): {detail}",
                self.base
            )
        } else {
            detail
        };
        Failure::Remote { code, message }
    }

    /// A request that got no answer. `writes` is whether it could have taken a step, whose
    /// fate is then unknown.
    fn transport(&self, err: &reqwest::Error, writes: bool) -> Failure {
        let cause = root_cause(err);
        let unknown = if writes {
            " The step may or may not have been taken: `show` tells, and repeating the command with the same --idempotency-key takes it at most once."
        } else {
            ""
        };
        let (code, message) = if err.is_connect() {
            (
                "unreachable",
                format!(
                    "cannot connect to the sopflow server at {}: {cause}; is it running? Start it with `sopflow serve` (or check --server / SOPFLOW_SERVER)",
                    self.base
                ),
            )
        } else if err.is_timeout() {
            (
                "timeout",
                format!(
                    "the sopflow server at {} did not answer in time ({cause}).{unknown}",
                    self.base
                ),
            )
        } else {
            (
                "http",
                format!(
                    "the request to the sopflow server at {} failed: {cause}.{unknown}",
                    self.base
                ),
            )
        };
        Failure::Remote {
            code: code.into(),
            message,
        }
    }
}

/// The innermost error of a chain (`Connection refused (os error 111)` rather than reqwest's
/// `error sending request for url`).
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

/// The workflows a stored version names (children it spawns or awaits). Rebuilding a version
/// on its own checks that they exist; the server ran it, so they did, and the titles do not
/// depend on them.
fn referenced_workflows(stored: &StoredDefinition) -> BTreeSet<String> {
    let mut known = BTreeSet::new();
    let Ok(workflow) = sopflow::definition::parse_workflow(Path::new(&stored.file), &stored.yaml)
    else {
        return known;
    };
    collect_references(&workflow, &mut known);
    known
}

fn collect_references(workflow: &Workflow, known: &mut BTreeSet<String>) {
    for (_, state) in workflow.states.iter() {
        for (_, branches) in state.on.iter() {
            for branch in &branches.value.0 {
                for spawn in &branch.spawn {
                    known.insert(spawn.value.workflow.value.clone());
                }
            }
        }
        if let Some(wait) = &state.await_children {
            for child in &wait.value.workflows {
                known.insert(child.value.clone());
            }
        }
    }
}
