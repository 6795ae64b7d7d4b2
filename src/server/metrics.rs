//! The server's Prometheus metrics (`GET /metrics`): steps taken, refusals, failed sign-ins
//! and tokens, HTTP answers, the latency of a command including its commit, and how late
//! timers fire.
//!
//! Every label value comes from a closed set that the server defines, never from a request,
//! so that nobody can add series (and so memory) by sending made-up methods, paths or codes:
//! HTTP methods are the standard ones or `other`, statuses are the ones the server answers
//! with, refusal and failure codes are `&'static str` constants, and workflows are the ids of
//! loaded definitions, taken from the instance a step was committed on.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// `{workflow}`: a loaded definition's id, taken from the instance a step was committed on.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct WorkflowLabel {
    pub(crate) workflow: String,
}

/// `{code}`: one of the server's own refusal or failure codes.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct CodeLabel {
    pub(crate) code: &'static str,
}

/// `{method,status}` of an HTTP answer.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct StatusLabel {
    /// One of [`METHODS`], or `other`.
    pub(crate) method: &'static str,
    /// The status the server answered with.
    pub(crate) status: u16,
}

/// The HTTP methods counted by name; any other is counted as `other`.
pub const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE",
];

/// The label of a request's method: its name when standard, else `other`.
pub fn method_label(method: &axum::http::Method) -> &'static str {
    METHODS
        .iter()
        .find(|m| **m == method.as_str())
        .copied()
        .unwrap_or("other")
}

/// `{reason}` a connection was closed at once: `total` or `per_client`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ReasonLabel {
    pub(crate) reason: &'static str,
}

/// `{result}` of a reload: `applied`, `unchanged`, `rejected` or `failed`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ResultLabel {
    pub(crate) result: &'static str,
}

/// `{channel, result}` of a delivery attempt: a configured channel's id (or `unknown`), and
/// `sent`, `retried` or `dead`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct DeliveryLabel {
    pub(crate) channel: String,
    pub(crate) result: &'static str,
}

/// Every metric the server keeps, registered once.
pub struct Metrics {
    registry: Registry,
    /// Steps committed through the server (starts and events), by workflow.
    pub(crate) steps: Family<WorkflowLabel, Counter>,
    /// Commands the engine refused, by refusal code.
    pub(crate) refusals: Family<CodeLabel, Counter>,
    /// Requests turned away before reaching the engine: bad or missing credentials, a demo
    /// user from elsewhere, a wrong CSRF token, by reason.
    pub(crate) auth_failures: Family<CodeLabel, Counter>,
    /// HTTP answers by method and status.
    pub(crate) responses: Family<StatusLabel, Counter>,
    /// Connections closed at once for being over a cap (`total`, `per_client`).
    pub(crate) connections_refused: Family<ReasonLabel, Counter>,
    /// Seconds from a command's arrival at the engine to its flushed commit.
    pub(crate) command_seconds: Histogram,
    /// Seconds between a timer's due time and the round that fired it.
    pub(crate) timer_lag_seconds: Histogram,
    /// Timers fired.
    pub(crate) timers_fired: Counter,
    /// Definition reloads, by result (`applied`, `unchanged`, `rejected`, `failed`).
    pub(crate) reloads: Family<ResultLabel, Counter>,
    /// Delivery attempts, by channel and result.
    pub(crate) deliveries: Family<DeliveryLabel, Counter>,
    /// Seconds from a step's commit to its message's arrival.
    pub(crate) delivery_lag_seconds: Histogram,
    /// Workflows that can be started now.
    pub(crate) workflows: Gauge<i64, std::sync::atomic::AtomicI64>,
    /// Unix time of the last reload that was put in force.
    pub(crate) last_reload: Gauge<u64, AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// Every metric at zero, registered under the `sopflow_` prefix.
    pub(crate) fn new() -> Metrics {
        let mut registry = Registry::with_prefix("sopflow");
        let steps = Family::<WorkflowLabel, Counter>::default();
        registry.register("steps", "Steps committed through the server", steps.clone());
        let refusals = Family::<CodeLabel, Counter>::default();
        registry.register(
            "refusals",
            "Commands refused by the engine",
            refusals.clone(),
        );
        let auth_failures = Family::<CodeLabel, Counter>::default();
        registry.register(
            "auth_failures",
            "Requests refused for their credentials",
            auth_failures.clone(),
        );
        let responses = Family::<StatusLabel, Counter>::default();
        registry.register("http_responses", "HTTP responses", responses.clone());
        let connections_refused = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "connections_refused",
            "Connections closed at once for being over a cap",
            connections_refused.clone(),
        );
        // 0.25 ms to about 16 s.
        let command_seconds = Histogram::new(exponential_buckets(0.00025, 2.0, 17));
        registry.register(
            "command_seconds",
            "Latency of a start or event, including its flushed commit",
            command_seconds.clone(),
        );
        // 1 ms to about 1 h.
        let timer_lag_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 22));
        registry.register(
            "timer_lag_seconds",
            "How late timers fire after their due time",
            timer_lag_seconds.clone(),
        );
        let timers_fired = Counter::default();
        registry.register("timers_fired", "Timers fired", timers_fired.clone());
        let reloads = Family::<ResultLabel, Counter>::default();
        registry.register("reloads", "Definition reloads", reloads.clone());
        let deliveries = Family::<DeliveryLabel, Counter>::default();
        registry.register(
            "deliveries",
            "Attempts to deliver a notification, by channel and result (sent, retried, dead)",
            deliveries.clone(),
        );
        // 1 ms to about 1 h.
        let delivery_lag_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 22));
        registry.register(
            "delivery_lag_seconds",
            "From a step's commit to its notification's arrival",
            delivery_lag_seconds.clone(),
        );
        let workflows = Gauge::<i64, std::sync::atomic::AtomicI64>::default();
        registry.register(
            "workflows",
            "Workflows that can be started",
            workflows.clone(),
        );
        let last_reload = Gauge::<u64, AtomicU64>::default();
        registry.register(
            "last_reload_timestamp_seconds",
            "When definitions were last put in force",
            last_reload.clone(),
        );
        Metrics {
            registry,
            steps,
            refusals,
            auth_failures,
            responses,
            connections_refused,
            command_seconds,
            timer_lag_seconds,
            timers_fired,
            reloads,
            deliveries,
            delivery_lag_seconds,
            workflows,
            last_reload,
        }
    }

    /// Counts one delivery attempt (the worker's observer).
    pub(crate) fn record_delivery(&self, channel: &str, attempt: crate::delivery::worker::Attempt) {
        use crate::delivery::worker::Attempt;
        let result = match attempt {
            Attempt::Sent { lag } => {
                self.delivery_lag_seconds.observe(lag.as_secs_f64());
                "sent"
            }
            Attempt::Retried => "retried",
            Attempt::Dead => "dead",
        };
        self.deliveries
            .get_or_create(&DeliveryLabel {
                channel: channel.to_string(),
                result,
            })
            .inc();
    }

    /// The OpenMetrics text format (what Prometheus asks for first).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    /// The Prometheus text format 0.0.4, for scrapers and tools that do not ask for
    /// OpenMetrics (`promtool check metrics`, `curl`): see [`openmetrics_to_text`].
    pub fn encode_text(&self) -> String {
        openmetrics_to_text(&self.encode())
    }

    /// Counts a command the engine refused, under its refusal code (`role_not_allowed`).
    pub(crate) fn refused(&self, code: &'static str) {
        self.refusals.get_or_create(&CodeLabel { code }).inc();
    }

    /// Counts a request turned away for its credentials, under the reason (`bad_token`,
    /// `expired_session`, `demo_remote`...).
    pub(crate) fn auth_failed(&self, reason: &'static str) {
        self.auth_failures
            .get_or_create(&CodeLabel { code: reason })
            .inc();
    }

    /// Counts a connection closed for being over a cap.
    pub(crate) fn connection_refused(&self, reason: &'static str) {
        self.connections_refused
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    /// Counts an answer: `method` from [`method_label`], the status the server sent.
    pub(crate) fn responded(&self, method: &'static str, status: axum::http::StatusCode) {
        self.responses
            .get_or_create(&StatusLabel {
                method,
                status: status.as_u16(),
            })
            .inc();
    }

    /// Counts `steps` committed through the server on instances of `workflow`.
    pub(crate) fn stepped(&self, workflow: &str, steps: u64) {
        self.steps
            .get_or_create(&WorkflowLabel {
                workflow: workflow.to_string(),
            })
            .inc_by(steps);
    }
}

/// OpenMetrics text as the older Prometheus text format (0.0.4). The samples are the same;
/// what differs is the metadata: OpenMetrics names a counter's family without `_total` (its
/// samples carry it), while 0.0.4 names the family by its sample, so a 0.0.4 parser would
/// find samples with no `# TYPE` and lose their counter type. `# UNIT` and the closing
/// `# EOF` are OpenMetrics only.
pub fn openmetrics_to_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|prefix| Some((prefix, line.strip_prefix(prefix)?)));
        match meta {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let suffix = if counters.contains(name) && !name.ends_with("_total") {
                    "_total"
                } else {
                    ""
                };
                out.push_str(&format!("{prefix}{name}{suffix} {tail}"));
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}
