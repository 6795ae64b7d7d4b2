//! Starts on a store shared by several nodes (one that takes numbers in the commit:
//! PostgreSQL), numbered under the store's lock of their workflow's counts
//! ([`Store::commit_numbered`](crate::store::Store::commit_numbered)) and gathered per
//! workflow, so that one transaction numbers and commits every start of a workflow that
//! arrived while the one before was being committed.
//!
//! **A start is computed once, on numbers nobody else can take.** The counts are read and
//! locked in the commit's own transaction, so another node's starts of the workflow wait for
//! this transaction and then read what it committed: no start loses its number to another
//! node, and none is computed again. A start refused by its workflow takes no number (the
//! next start of the round gets it), so numbers stay without gaps.
//!
//! Per workflow, at most one round runs on a node at a time. A start joins its workflow's
//! queue; the one that finds no round running spawns a task that takes the waiting starts
//! (those of the first one's period, [`ROUND`] at most), computes them in order on the locked
//! counts, commits them, answers each, and goes on until the queue is empty. The task is the
//! engine's, not the caller's, so a caller that goes away leaves no queue without its rounds.
//!
//! A round's transaction takes, besides the starts waiting when it began, those that arrived
//! while it waited for the lock (another node's round holding it): so each node's rounds grow
//! with the other's, as group commit's batches do.
//!
//! Measured with `examples/store_load.rs` (permits through the engine, a start every 8 steps,
//! each client's steps going round the nodes; 2 cores shared by PostgreSQL, the engines and
//! the clients), steps/s at 16 and 64 clients: with numbers handed out ahead (`numbering`) and
//! raced for between nodes, one node 4,896 / 6,971, two nodes 3,298 / 3,899 (p99 at 64 clients
//! 183 ms: starts losing their number and computed again after a pause); the same run with
//! every start sent to one node, so no race, gave two nodes 3,730 / 5,616. With this module,
//! two nodes 3,632 / 5,010 (p99 33 ms), and 3,792 / 5,536 once a round also took the starts
//! that arrived while it waited for the lock: as fast as with no race at all, and no start is
//! computed twice (`tests/nodes.rs` counts none, where without the lock 949 of 1,280 starts
//! were). One node's figures did not change.

use super::names::Numbering;
use super::{Engine, EngineError};
use crate::definition::Definition;
use crate::machine::{self, Instance, Start};
use crate::store::{Committed, StoreError};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::oneshot;

/// The most starts one transaction numbers and commits.
const ROUND: usize = 64;

/// Per workflow, the starts waiting for their numbers.
#[derive(Default)]
pub(super) struct Queues {
    by_workflow: Mutex<HashMap<String, Queue>>,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<Waiting>,
}

/// A start waiting for its numbers: its id and readable number are left to give.
struct Waiting {
    definition: Arc<Definition>,
    numbering: Numbering,
    command: Start,
    answer: oneshot::Sender<Result<Committed, EngineError>>,
}

impl Queues {
    fn queues(&self) -> MutexGuard<'_, HashMap<String, Queue>> {
        self.by_workflow.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a start to its workflow's queue: true if no round is running for the workflow,
    /// so that the caller is to start them.
    fn join(&self, workflow: &str, waiting: Waiting) -> bool {
        let mut queues = self.queues();
        let idle = !queues.contains_key(workflow);
        queues
            .entry(workflow.to_string())
            .or_default()
            .waiting
            .push_back(waiting);
        idle
    }

    /// The next round of `workflow`: the waiting starts of the first one's period, at most
    /// [`ROUND`]. None: the rounds end, and the next start begins them again.
    fn next_round(&self, workflow: &str) -> Vec<Waiting> {
        let mut queues = self.queues();
        let Some(queue) = queues.get_mut(workflow) else {
            return Vec::new();
        };
        let Some(period) = queue.waiting.front().map(|w| w.numbering.period.clone()) else {
            queues.remove(workflow);
            return Vec::new();
        };
        let mut round = Vec::new();
        queue.take(&period, &mut round);
        round
    }

    /// Adds to `round` the starts of `workflow` in `period` that arrived since it was taken
    /// (while its transaction waited for the counts' lock), up to [`ROUND`] in all.
    fn more(&self, workflow: &str, period: &Option<String>, round: &mut Vec<Waiting>) {
        if let Some(queue) = self.queues().get_mut(workflow) {
            queue.take(period, round);
        }
    }
}

impl Queue {
    /// Moves the waiting starts of `period` to `round`, up to [`ROUND`] in all, in order.
    fn take(&mut self, period: &Option<String>, round: &mut Vec<Waiting>) {
        let mut rest = VecDeque::new();
        while let Some(waiting) = self.waiting.pop_front() {
            if round.len() < ROUND && waiting.numbering.period == *period {
                round.push(waiting);
            } else {
                rest.push_back(waiting);
            }
        }
        self.waiting = rest;
    }
}

impl Engine {
    /// Starts `command` of `definition`'s workflow (its id and number are given here), once
    /// committed: see the module's documentation.
    pub(super) async fn start_numbered(
        &self,
        definition: Arc<Definition>,
        command: Start,
    ) -> Result<Committed, EngineError> {
        let numbering = Numbering::of(&definition, command.at)?;
        let workflow = definition.workflow.id.to_string();
        let (answer, answered) = oneshot::channel();
        let waiting = Waiting {
            definition,
            numbering,
            command,
            answer,
        };
        if self.inner.starts.join(&workflow, waiting) {
            let engine = self.clone();
            tokio::spawn(async move { engine.numbering_rounds(workflow).await });
        }
        answered.await.map_err(|_| EngineError::Closed)?
    }

    /// Runs `workflow`'s rounds until its queue is empty. A round that cannot run (the
    /// runtime shutting down, a panic) drops its starts, which their callers see as
    /// [`EngineError::Closed`]; the rounds go on for the others.
    async fn numbering_rounds(&self, workflow: String) {
        loop {
            let round = self.inner.starts.next_round(&workflow);
            if round.is_empty() {
                return;
            }
            let engine = self.clone();
            let name = workflow.clone();
            let _ = tokio::task::spawn_blocking(move || engine.number_round(&name, round)).await;
        }
    }

    /// Numbers, commits and answers one round of starts of `workflow`.
    fn number_round(&self, workflow: &str, mut round: Vec<Waiting>) {
        let period = round.first().and_then(|w| w.numbering.period.clone());
        // Per start, why it was refused (it then took no number).
        let mut refused: Vec<Option<EngineError>> = Vec::new();
        let committed =
            self.inner
                .store
                .commit_numbered(workflow, period.as_deref(), &mut |last, last_seq| {
                    // Those that arrived while the transaction waited for the lock join it.
                    self.inner.starts.more(workflow, &period, &mut round);
                    refused.clear();
                    let (mut n, mut seq) = (last, last_seq);
                    let mut batch = Vec::new();
                    for waiting in &mut round {
                        match self.numbered(waiting, n + 1, seq.map(|s| s + 1)) {
                            Ok(step) => {
                                n += 1;
                                seq = seq.map(|s| s + 1);
                                batch.push(step);
                                refused.push(None);
                            }
                            Err(err) => refused.push(Some(err)),
                        }
                    }
                    batch
                });
        refused.resize_with(round.len(), || None);
        match committed {
            Ok(batch) => {
                if !batch.is_empty() {
                    self.inner.committed.notify_one();
                }
                let mut steps = batch.into_iter();
                for (waiting, refusal) in round.into_iter().zip(refused) {
                    let answer = match refusal {
                        Some(err) => Err(err),
                        None => steps.next().ok_or(EngineError::Closed),
                    };
                    let _ = waiting.answer.send(answer);
                }
            }
            Err(err) => {
                for (waiting, refusal) in round.into_iter().zip(refused) {
                    let answer = refusal.unwrap_or_else(|| EngineError::Store(err.clone()));
                    let _ = waiting.answer.send(Err(answer));
                }
            }
        }
    }

    /// `waiting`'s start as instance `n` (readable `{seq}` `seq`), ready to commit.
    fn numbered(
        &self,
        waiting: &mut Waiting,
        n: u64,
        seq: Option<u64>,
    ) -> Result<Committed, EngineError> {
        let name = waiting.numbering.name(n, seq);
        waiting.command.id = name.id.clone();
        waiting.command.number = name.readable.as_ref().map(|r| r.number.clone());
        let entry = machine::start(&waiting.definition, &waiting.command, self.sandbox())?;
        let snapshot = Instance::begin(&entry).map_err(StoreError::from)?;
        let mut step = Committed::new(entry, snapshot)?;
        step.numbers = Some(name.claim());
        self.noticed(&mut step)?;
        Ok(step)
    }
}
