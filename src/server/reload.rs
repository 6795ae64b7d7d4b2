//! Hot reload: the definition folders are watched, and a change reloads every definition as
//! one set ([`Engine::reload`](crate::engine::Engine::reload)). A set with any error is not
//! put in force; the attempt and its diagnostics are kept here for the console and the API.

use super::{AppState, ServeError};
use crate::diagnostic::{Diagnostic, DiagnosticJson};
use crate::i18n::Lang;
use chrono::{DateTime, Utc};
use notify::{RecursiveMode, Watcher};
use std::sync::Mutex;
use std::time::Duration;

/// How long the folders must be quiet before a reload: editors write a file in several steps.
const QUIET: Duration = Duration::from_millis(300);

/// How often a server running the deployed set asks the store for a new one: a fallback for
/// when notifications are lost (a dropped connection) or the store sends none (sled).
pub const DEPLOY_POLL: Duration = Duration::from_secs(5);

/// One reload attempt, as the log keeps it: its findings are [`Diagnostic`]s, given to each
/// reader in their language by [`Attempt::json`].
#[derive(Debug, Clone)]
pub struct Attempt {
    /// When the reload was tried (on the engine's clock).
    pub at: DateTime<Utc>,
    /// `applied`, `unchanged`, `rejected` or `failed` (see [`AttemptJson::result`]).
    pub result: &'static str,
    /// Workflows whose newest version changed: id, old hash, new hash.
    pub changed: Vec<(String, Option<String>, String)>,
    /// Workflows whose file is gone: no new instance starts on them, running ones carry on.
    pub removed: Vec<String>,
    /// How many errors the files have; any error keeps the whole set out of force.
    pub errors: usize,
    /// How many warnings the files have; warnings do not stop a reload.
    pub warnings: usize,
    /// Every diagnostic of the files as they were read.
    pub diagnostics: Vec<Diagnostic>,
    /// Why the files could not be read (`failed`).
    pub message: Option<String>,
}

impl Attempt {
    /// The attempt as the API answers it, its findings' messages and hints in `lang`.
    pub fn json(&self, lang: Lang) -> AttemptJson {
        AttemptJson {
            at: self.at,
            result: self.result,
            changed: self.changed.clone(),
            removed: self.removed.clone(),
            errors: self.errors,
            warnings: self.warnings,
            diagnostics: self.diagnostics.iter().map(|d| d.record(lang)).collect(),
            message: self.message.clone(),
        }
    }
}

/// One reload attempt, as the API answers it.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "Attempt")]
pub struct AttemptJson {
    /// When the reload was tried (on the engine's clock).
    pub at: DateTime<Utc>,
    /// `applied` (new versions in force), `unchanged`, `rejected` (errors: the old versions
    /// stay), or `failed` (the files could not be read).
    #[schemars(schema_with = "results")]
    pub result: &'static str,
    /// Workflows whose newest version changed: id, old hash, new hash.
    pub changed: Vec<(String, Option<String>, String)>,
    /// Workflows whose file is gone: no new instance starts on them, running ones carry on.
    pub removed: Vec<String>,
    /// How many errors the files have; any error keeps the whole set out of force.
    pub errors: usize,
    /// How many warnings the files have; warnings do not stop a reload.
    pub warnings: usize,
    /// Every diagnostic of the files as they were read, in the shape of
    /// `sopflow validate --format json` (messages and hints in English, or in the language
    /// the request asks for).
    pub diagnostics: Vec<DiagnosticJson>,
    /// Why the files could not be read (`failed`).
    pub message: Option<String>,
}

/// The values of [`AttemptJson::result`], for the API's schema.
fn results(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "string",
        "enum": ["applied", "unchanged", "rejected", "failed"],
    })
}

/// The reload attempts since the server started, newest last (the last 50).
#[derive(Debug, Default)]
pub struct ReloadLog {
    attempts: Mutex<Vec<Attempt>>,
}

impl ReloadLog {
    /// Records an attempt, forgetting the oldest beyond the last 50.
    pub fn push(&self, attempt: Attempt) {
        let mut attempts = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
        attempts.push(attempt);
        let excess = attempts.len().saturating_sub(50);
        attempts.drain(..excess);
    }

    /// The latest attempt: `GET /api/validation` answers it, and the console warns a process
    /// owner while it is one that was not put in force.
    pub(crate) fn last(&self) -> Option<Attempt> {
        self.attempts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last()
            .cloned()
    }

    /// Every attempt kept, oldest first.
    pub fn all(&self) -> Vec<Attempt> {
        self.attempts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl AppState {
    /// Reloads the definitions now, records the attempt and returns it.
    pub async fn reload_now(&self) -> Attempt {
        let at = self.engine.now();
        let attempt = match self.engine.reload().await {
            Ok(reloaded) => Attempt {
                at,
                result: match (
                    reloaded.applied,
                    reloaded.changed.is_empty() && reloaded.removed.is_empty(),
                ) {
                    (false, _) => "rejected",
                    (true, true) => "unchanged",
                    (true, false) => "applied",
                },
                changed: reloaded.changed,
                removed: reloaded.removed,
                errors: reloaded.report.errors(),
                warnings: reloaded.report.warnings(),
                diagnostics: reloaded.report.diagnostics.clone(),
                message: None,
            },
            Err(err) => Attempt {
                at,
                result: "failed",
                changed: Vec::new(),
                removed: Vec::new(),
                errors: 0,
                warnings: 0,
                diagnostics: Vec::new(),
                message: Some(err.to_string()),
            },
        };
        self.metrics
            .reloads
            .get_or_create(&super::metrics::ResultLabel {
                result: attempt.result,
            })
            .inc();
        match attempt.result {
            "applied" => {
                self.metrics
                    .last_reload
                    .set(u64::try_from(at.timestamp()).unwrap_or(0));
                self.metrics
                    .workflows
                    .set(i64::try_from(self.engine.workflows().len()).unwrap_or(i64::MAX));
                for (id, old, new) in &attempt.changed {
                    tracing::info!(workflow = %id, old = old.as_deref().unwrap_or("-"), new = %new, "new version in force");
                }
                for id in &attempt.removed {
                    tracing::info!(workflow = %id, "workflow removed: no new instances");
                }
                self.count_gates_after_reload(&attempt.changed);
            }
            "rejected" => {
                tracing::warn!(
                    errors = attempt.errors,
                    "definitions not reloaded: the files have errors; the versions in force stay"
                );
            }
            "failed" => tracing::error!(
                error = ?attempt.message.as_deref().unwrap_or(""),
                "definitions not reloaded"
            ),
            _ => {}
        }
        self.reloads.push(attempt.clone());
        attempt
    }
}

/// Watches the definition folders and reloads after each burst of changes, until `stop`.
pub fn watch(
    state: AppState,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>, ServeError> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| !e.kind.is_access()) {
            let _ = tx.send(());
        }
    })
    .map_err(|e| ServeError::Io(std::io::Error::other(e)))?;
    for path in state.watched.iter() {
        if path.exists() {
            watcher.watch(path, RecursiveMode::Recursive).map_err(|e| {
                ServeError::Io(std::io::Error::other(format!(
                    "cannot watch {}: {e}",
                    path.display()
                )))
            })?;
        }
    }
    Ok(tokio::spawn(async move {
        // The watcher lives as long as this task.
        let _watcher = watcher;
        loop {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                got = rx.recv() => if got.is_none() { return },
            }
            // Wait until the folders have been quiet for a while.
            loop {
                match tokio::time::timeout(QUIET, rx.recv()).await {
                    Ok(Some(())) => continue,
                    Ok(None) => return,
                    Err(_) => break,
                }
            }
            state.reload_now().await;
        }
    }))
}

/// Follows the set deployed to the store (an engine running
/// [`DefinitionSource::Deployed`](crate::engine::DefinitionSource::Deployed)), until `stop`:
/// on each notification of a deploy, and every [`DEPLOY_POLL`], a set other than the one in
/// force is reloaded, as the watcher reloads files. A set that was tried and not put in force
/// is not tried again until another is deployed. Notifications lost with their connection are
/// listened for again at the next poll.
pub fn follow(
    state: AppState,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut notifications = match state.engine.deploy_notifications().await {
            Ok(found) => found,
            Err(err) => {
                tracing::warn!(error = %err, "no deploy notifications; polling the store");
                None
            }
        };
        let mut tried: Option<String> = None;
        loop {
            let closed = tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                got = async {
                    match notifications.as_mut() {
                        Some(rx) => rx.recv().await,
                        None => std::future::pending().await,
                    }
                } => got.is_none(),
                _ = tokio::time::sleep(DEPLOY_POLL) => false,
            };
            if closed {
                tracing::warn!("deploy notifications stopped; polling the store");
                notifications = None;
            } else if notifications.is_none() {
                // Listen again once the store can be reached; meanwhile, polling serves.
                notifications = state.engine.deploy_notifications().await.ok().flatten();
            }
            let in_store = match state.engine.deployed_in_store().await {
                Ok(id) => id,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot read the deployed set; trying again");
                    continue;
                }
            };
            if in_store.is_none() || in_store == state.engine.deployed_set() || in_store == tried {
                continue;
            }
            tracing::info!(set = ?in_store, "a new definition set was deployed");
            tried = in_store;
            state.reload_now().await;
        }
    })
}
