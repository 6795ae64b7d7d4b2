//! The four-step workload, through the pure step: 10,000 payments in flight, each reviewed,
//! approved under a limit (the inline guard `data.amount < 15000`), paid and closed
//! (`four_step.yaml`). `benches/runtime.rs` (criterion's `four_step/*`) and
//! `examples/four_step.rs` (a fixed number of passes, for callgrind) include this file with
//! `#[path]`, so that both run exactly the same steps; `benches/xstate/four_step.mjs` is the
//! same machine in XState, driven the same way.

#![allow(dead_code)]

use chrono::{DateTime, Utc};
use serde_json::{Map, json};
use sopflow::catalog::{self, Definition, Sources};
use sopflow::machine::{self, Actor, Command, Instance, Start};
use sopflow::script::Sandbox;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The workflow: five states, one role per step, no payloads, no timers.
pub const YAML: &str = include_str!("four_step.yaml");

/// Instances in flight at once.
pub const INSTANCES: usize = 10_000;

/// The events, in order, and the role that fires each.
pub const EVENTS: [(&str, &str); 4] = [
    ("review", "reviewer"),
    ("approve", "manager"),
    ("pay", "cashier"),
    ("close", "clerk"),
];

/// Steps in one pass: every instance from `submitted` to `closed`.
pub const PASS: u64 = (INSTANCES * EVENTS.len()) as u64;

fn at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T09:30:00+08:00")
        .expect("valid time")
        .with_timezone(&Utc)
}

/// The workflow, built as the catalog builds it.
pub fn definition(sandbox: &Sandbox) -> Arc<Definition> {
    let report = catalog::build(
        Sources::from_texts(
            vec![(PathBuf::from("four_step.yaml"), YAML.to_string())],
            Vec::new(),
        ),
        sandbox,
    );
    assert!(
        report.diagnostics.is_empty(),
        "the four-step workflow must be clean: {:?}",
        report.diagnostics
    );
    report
        .catalog
        .get("four_step")
        .expect("four_step builds")
        .clone()
}

/// Where the workload's instances stand, and the position in it of the next step
/// (stage-major: every instance's `review`, then every `approve`...), so that steps measured
/// across criterion's samples walk the whole workload, starting it over after each pass.
pub struct FourStep {
    pub def: Arc<Definition>,
    pub sandbox: Sandbox,
    /// Every instance just started.
    pub started: Vec<Instance>,
    /// One command per event, the same for every instance.
    pub commands: Vec<Command>,
    instances: Vec<Instance>,
    stage: usize,
    next: usize,
}

impl FourStep {
    /// Starts the 10,000 instances (amounts 1,000 to 13,999 yuan, all under the limit, as in
    /// the XState script).
    pub fn new() -> FourStep {
        let sandbox = Sandbox::default();
        let def = definition(&sandbox);
        let started: Vec<Instance> = (0..INSTANCES)
            .map(|i| {
                let start = Start {
                    id: format!("four_step-{}", i + 1),
                    actor: Actor::new("clerk-1", ["clerk"]),
                    data: json!({"amount": 1000 + (i % 13_000)})
                        .as_object()
                        .cloned()
                        .unwrap_or_default(),
                    business_key: None,
                    parent: None,
                    idempotency_key: None,
                    at: at(),
                    number: None,
                };
                let entry = machine::start(&def, &start, &sandbox).expect("starts");
                Instance::begin(&entry).expect("a start entry begins an instance")
            })
            .collect();
        let commands = EVENTS
            .iter()
            .zip(0..)
            .map(|(&(event, role), seq)| Command {
                event: event.into(),
                actor: Actor::new(format!("{role}-1"), [role]),
                payload: Map::new(),
                idempotency_key: None,
                at: at(),
                expected_seq: Some(seq),
            })
            .collect();
        let instances = started.clone();
        FourStep {
            def,
            sandbox,
            started,
            commands,
            instances,
            stage: 0,
            next: 0,
        }
    }

    /// Checks that the steps measured are the ones meant: an instance closes in four steps,
    /// and `approve` evaluates its guard, which passes.
    pub fn check(&self) {
        for started in [&self.started[0], &self.started[INSTANCES - 1]] {
            let mut instance = started.clone();
            for command in &self.commands {
                let entry =
                    machine::step(&self.def, &instance, command, &self.sandbox).expect("accepted");
                assert_eq!(entry.guards.len(), usize::from(command.event == "approve"));
                assert!(entry.guards.iter().all(|g| g.passed));
                assert!(entry.verify());
                instance.apply(&entry).expect("applies");
            }
            assert!(instance.finished && instance.state == "closed");
        }
    }

    /// Takes `steps` steps from where the workload stands, applying each entry to its
    /// instance, and returns the time spent in `machine::step` alone, or with `with_apply` in
    /// the step and `Instance::apply` (which makes the next snapshot, as an XState actor's
    /// `send` does). Each stretch of steps is timed as a whole, not step by step.
    pub fn run(&mut self, mut steps: u64, with_apply: bool) -> Duration {
        let mut spent = Duration::ZERO;
        let mut entries = Vec::with_capacity(INSTANCES);
        while steps > 0 {
            let left = usize::try_from(steps).unwrap_or(usize::MAX);
            let end = INSTANCES.min(self.next.saturating_add(left));
            let command = &self.commands[self.stage];
            let chunk = &mut self.instances[self.next..end];
            let began = Instant::now();
            if with_apply {
                for instance in chunk.iter_mut() {
                    let entry = machine::step(&self.def, instance, command, &self.sandbox)
                        .expect("accepted");
                    instance.apply(&entry).expect("applies");
                }
                spent += began.elapsed();
            } else {
                for instance in chunk.iter() {
                    entries.push(machine::step(&self.def, instance, command, &self.sandbox));
                }
                spent += began.elapsed();
                for (instance, entry) in chunk.iter_mut().zip(entries.drain(..)) {
                    instance.apply(&entry.expect("accepted")).expect("applies");
                }
            }
            steps -= (end - self.next) as u64;
            self.next = end;
            if self.next == INSTANCES {
                self.next = 0;
                self.stage += 1;
                if self.stage == EVENTS.len() {
                    self.stage = 0;
                    self.instances.clone_from(&self.started);
                }
            }
        }
        spent
    }
}
