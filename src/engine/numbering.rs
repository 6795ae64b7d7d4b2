//! Instance numbers on a store that takes them in the commit (PostgreSQL), handed out without
//! waiting for the commits of the starts before.
//!
//! Ids run `workflow-1, -2, ...` and readable numbers' `{seq}` run 1, 2, ... per period, with
//! no gaps and none twice, across every node sharing the database. The database decides: a
//! start's commit moves each count on only if the claimed number is still the next one (a
//! compare-and-set, `store::postgres::commit`), so **a number whose predecessor is not
//! committed never commits**: its commit fails with `StoreError::Conflict`, writes nothing, and
//! [`Engine::retrying`](super::Engine) computes the start again with a fresh number.
//!
//! What this module keeps is only a guess at the next number, so that one node's starts of
//! one workflow need not wait for each other's commits. Per workflow, [`Counters`] holds the
//! last number (and per period the last `{seq}`) this node has handed out and not yet seen
//! settled. A start takes the next one under its workflow's numbering lock, sends its step to
//! the committer while still holding that lock (so one node's starts of a workflow reach the
//! committer in number order, and the committer checks a batch's several claims of one
//! workflow in number order within one transaction), and releases the lock before the commit.
//! The guess falls back to the store's counts:
//!
//! - when nothing is pending (the last ticket settled), so a node that was quiet picks up the
//!   numbers other nodes took meanwhile;
//! - after any failed commit of a ticket (a lost race with another node, a start that reached
//!   the database before its predecessor: the direct commit path runs beside the pipeline, so
//!   that can happen; or any other failure): the counter is forgotten, and the next start reads
//!   what the database holds.
//!
//! A start refused by its workflow (or failing before its step is sent) gives its number back
//! while it still holds the lock: nothing was handed out after it, so the count steps back.
//! Children named by a command's step take tickets too, settled when the command's batch is.
//!
//! Before this, a start held the numbering lock across its commit, so one node's starts of one
//! workflow committed one at a time, and steps/s was capped near 8 per commit latency on the
//! permit workload of `benches/store-compare.sh` (a start every 8 steps; ~8 of 10 connections
//! idle at 64 clients). The same script (2 cores, other builds running beside it, so the
//! absolute figures are loose), steps/s at 1/16/64 clients, lock across the commit then
//! handed out ahead: one node 440/1114/1110 then 630/1946/3523; two nodes, whose starts of one
//! workflow still race each other's compare-and-set (a lost race costs a batch split and a
//! retry), 662/846/752 then 617/879/847.
//!
//! Why two nodes were slower than one (1,166 against 3,867 steps/s at 64 clients), measured with
//! `pg_stat_statements` over a 2-node run: the compare-and-set waited for the other node's
//! transaction, which held the count's row from its claim to its COMMIT (1,147 claims took
//! 1,955 ms of server time, 1.7 ms each, and 403 of them lost), and every lost race split its
//! whole batch into one commit per caller on the committer's only writer thread, holding up
//! every other step. Now the claims go in one pipeline with their rows and the COMMIT (the row
//! is held for one statement and the flush), in a committer lane of their own, and a lost
//! race fails only the caller it names. Two nodes then did 2,228-3,007 steps/s against one
//! node's 4,101-5,237 in the same runs: still slower. About one start in five still loses
//! its number to the other node (493 reads of the counts after a loss in 6 s, against about
//! 2,500 starts) and is computed again after a pause. Left open: numbers handed out without a
//! guess (the count's row held from reading it to the commit, across nodes) or in blocks per
//! node, which would leave gaps.

use crate::store::StoreError;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Per workflow, the numbers this node has handed out and not yet seen settled.
#[derive(Default)]
pub(super) struct Counters {
    by_workflow: Mutex<HashMap<String, Counter>>,
    /// Moves on whenever a counter is forgotten, so that a hand-out that read the store
    /// meanwhile does not bring back a count from before the failure.
    forgotten: AtomicU64,
}

#[derive(Default)]
struct Counter {
    /// The last instance number handed out; `None`: the store's is to be read.
    last: Option<u64>,
    /// Per period, the last `{seq}` handed out (kept only with `last`).
    sequences: HashMap<String, u64>,
    /// Tickets handed out and not dropped yet.
    pending: usize,
}

/// One start's numbers, handed out by [`Counters::next`]. Dropped unsettled (its commit
/// failed, or never happened), it makes its workflow's counter fall back to the store's.
pub(super) struct Ticket {
    counters: Arc<Counters>,
    workflow: String,
    /// The instance number.
    pub n: u64,
    /// The period and `{seq}` of the readable number, when the workflow has one.
    pub sequence: Option<(String, u64)>,
    settled: AtomicBool,
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticket")
            .field("workflow", &self.workflow)
            .field("n", &self.n)
            .field("sequence", &self.sequence)
            .finish()
    }
}

impl Counters {
    fn counters(&self) -> std::sync::MutexGuard<'_, HashMap<String, Counter>> {
        self.by_workflow.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next numbers of `workflow` (and of its readable numbers in `period`, if it has
    /// them), after those handed out and pending, or after the store's counts (`last_number`,
    /// `last_sequence`) when none is pending or a commit failed since. The caller holds the
    /// workflow's numbering lock, so hand-outs of one workflow do not interleave.
    pub(super) fn next(
        self: &Arc<Self>,
        workflow: &str,
        period: Option<&str>,
        last_number: impl FnOnce() -> Result<u64, StoreError>,
        last_sequence: impl FnOnce(&str) -> Result<u64, StoreError>,
    ) -> Result<Ticket, StoreError> {
        let seen = self.forgotten.load(Ordering::Acquire);
        let (known, known_seq) = {
            let counters = self.counters();
            let counter = counters.get(workflow);
            let known = counter.and_then(|c| c.last);
            let known_seq = match (counter, known, period) {
                (Some(c), Some(_), Some(p)) => c.sequences.get(p).copied(),
                _ => None,
            };
            (known, known_seq)
        };
        // Reads of the store happen outside the map's lock (they wait for the database).
        let n = match known {
            Some(last) => last,
            None => last_number()?,
        } + 1;
        let sequence = match period {
            None => None,
            Some(p) => Some((
                p.to_string(),
                match known_seq {
                    Some(last) => last,
                    None => last_sequence(p)?,
                } + 1,
            )),
        };
        let mut counters = self.counters();
        let counter = counters.entry(workflow.to_string()).or_default();
        counter.pending += 1;
        if self.forgotten.load(Ordering::Acquire) == seen {
            counter.last = Some(n);
            if let Some((p, seq)) = &sequence {
                counter.sequences.insert(p.clone(), *seq);
            }
        } else {
            counter.last = None;
            counter.sequences.clear();
        }
        Ok(Ticket {
            counters: self.clone(),
            workflow: workflow.to_string(),
            n,
            sequence,
            settled: AtomicBool::new(false),
        })
    }

    /// Forgets `workflow`'s counter: its next hand-out reads the store's counts.
    pub(super) fn forget(&self, workflow: &str) {
        self.forgotten.fetch_add(1, Ordering::AcqRel);
        if let Some(counter) = self.counters().get_mut(workflow) {
            counter.last = None;
            counter.sequences.clear();
        }
    }
}

impl Ticket {
    /// Its numbers were committed with its instance's first entry.
    pub(super) fn committed(&self) {
        self.settled.store(true, Ordering::Release);
    }

    /// Gives the numbers back before anything was sent to the store (the start was refused):
    /// the caller still holds the numbering lock, so they are the last handed out and the
    /// count steps back; if they are not (a counter forgotten meanwhile), it is forgotten.
    pub(super) fn give_back(&self) {
        let mut counters = self.counters.counters();
        if let Some(counter) = counters.get_mut(&self.workflow)
            && counter.last == Some(self.n)
        {
            counter.last = Some(self.n - 1);
            if let Some((period, seq)) = &self.sequence {
                match counter.sequences.get_mut(period) {
                    Some(last) if *last == *seq => *last = seq - 1,
                    _ => {
                        counter.last = None;
                        counter.sequences.clear();
                    }
                }
            }
            self.settled.store(true, Ordering::Release);
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let settled = self.settled.load(Ordering::Acquire);
        if !settled {
            self.counters.forgotten.fetch_add(1, Ordering::AcqRel);
        }
        let mut counters = self.counters.counters();
        if let Some(counter) = counters.get_mut(&self.workflow) {
            counter.pending = counter.pending.saturating_sub(1);
            if !settled {
                counter.last = None;
                counter.sequences.clear();
            }
            if counter.pending == 0 {
                counters.remove(&self.workflow);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn next(counters: &Arc<Counters>, stored: u64) -> Ticket {
        counters
            .next("w", Some("2026"), || Ok(stored), |_| Ok(stored))
            .expect("hands out")
    }

    #[test]
    fn pending_numbers_follow_each_other_without_reading_the_store_again() {
        let counters = Arc::new(Counters::default());
        let a = next(&counters, 4);
        let b = next(&counters, 0);
        assert_eq!((a.n, b.n), (5, 6));
        assert_eq!(b.sequence, Some(("2026".into(), 6)));
        a.committed();
        drop(a);
        let c = next(&counters, 0);
        assert_eq!(c.n, 7, "one still pending: the counter is kept");
        b.committed();
        c.committed();
        drop((b, c));
        assert_eq!(next(&counters, 40).n, 41, "none pending: the store's count");
    }

    #[test]
    fn a_failed_commit_falls_back_to_the_store_and_a_refusal_steps_back() {
        let counters = Arc::new(Counters::default());
        let a = next(&counters, 0);
        let b = next(&counters, 0);
        assert_eq!((a.n, b.n), (1, 2));
        b.give_back();
        drop(b);
        let c = next(&counters, 0);
        assert_eq!(c.n, 2, "a refused start's number is the next one's");
        drop(a); // failed: nothing settled it
        let d = next(&counters, 9);
        assert_eq!(d.n, 10, "after a failure, what the store holds");
        assert_eq!(d.sequence, Some(("2026".into(), 10)));
        drop((c, d));
    }
}
