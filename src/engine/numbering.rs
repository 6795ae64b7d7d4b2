//! The numbers of children named by a step, on a store that takes numbers in the commit
//! (PostgreSQL), handed out without waiting for the commits of the starts before. (A
//! start of its own is numbered under the store's lock of the counts instead: `starts`.)
//!
//! Ids run `workflow-1, -2, ...` and readable numbers' `{seq}` run 1, 2, ... per period, with
//! no gaps and none twice, across every node sharing the database. The database decides: a
//! commit that names a child moves each count on only if the claimed number is still the
//! next one (a compare-and-set, `store::postgres::commit`), so **a number whose predecessor
//! is not committed never commits**: its commit fails with `StoreError::Conflict`, writes
//! nothing, and [`Engine::retrying`](super::Engine) computes the command again with a fresh
//! number.
//!
//! What this module keeps is only a guess at the next number, so that one node's children of
//! one workflow need not wait for each other's commits. Per workflow, [`Counters`] holds the
//! last number (and per period the last `{seq}`) this node has handed out and not yet seen
//! settled. A child takes the next one under its workflow's numbering lock. The guess falls
//! back to the store's counts:
//!
//! - when nothing is pending (the last ticket settled), so a node that was quiet picks up the
//!   numbers other nodes took meanwhile;
//! - after any failed commit of a ticket (a lost race with another node or with a start, or
//!   any other failure): the counter is forgotten, and the next hand-out reads what the
//!   database holds.
//!
//! Children are named by a command's step and settled when the command's batch is.
//!
//! Starts were numbered this way too, before `starts`. Holding the numbering lock across the
//! commit had capped one node's starts of one workflow at one per commit; handing numbers out
//! ahead lifted that (`benches/store-compare.sh`, steps/s at 1/16/64 clients: one node
//! 440/1114/1110 then 630/1946/3523), but two nodes' starts of one workflow raced each other's
//! compare-and-set: about one start in five lost its number to the other node and was
//! computed again after a pause, and two nodes did 2,228-3,007 steps/s against one node's
//! 4,101-5,237. Children are rare beside starts, so their races are left to the retry.

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
    fn a_failed_commit_falls_back_to_the_store() {
        let counters = Arc::new(Counters::default());
        let a = next(&counters, 0);
        let b = next(&counters, 0);
        assert_eq!((a.n, b.n), (1, 2));
        b.committed();
        drop(b);
        let c = next(&counters, 0);
        assert_eq!(c.n, 3, "after those handed out and pending");
        drop(a); // failed: nothing settled it
        let d = next(&counters, 9);
        assert_eq!(d.n, 10, "after a failure, what the store holds");
        assert_eq!(d.sequence, Some(("2026".into(), 10)));
        drop((c, d));
    }
}
