//! Group commit in two stages, so that every command waiting at the moment shares one flush
//! and writing the next batch overlaps flushing the last, with a short cut for a lone step.
//!
//! Callers hand over their steps and await the answer. The writer thread takes every job
//! queued and appends their entries to the store as one batch. Then:
//!
//! - under load (the syncer is still flushing an earlier batch, or another job is already
//!   waiting), it passes the batch on: the syncer thread takes every batch appended so far,
//!   makes them durable with one flush and answers each, while the writer appends the next.
//!   Batches grow by themselves: the longer a flush takes, the more steps the next one carries;
//! - when the pipeline is idle (nothing in flight, nobody waiting), the writer flushes the
//!   batch itself and answers, so that a lone step costs one hand-off and its one flush, not
//!   a second hand-off to the syncer.
//!
//! Either way, **a step is answered only after a flush that began after it was appended**:
//! the writer flushes only what it has just appended, and the syncer is handed a batch only
//! once it is appended. The syncer and the writer never flush at once (the writer flushes only
//! while no batch is in flight), so each flush is followed by its own batch's snapshots.
//!
//! A failure reaches every caller of its batch as the store's own typed [`StoreError`] (a
//! damaged record, a locked store...), and a commit after the engine stopped its threads as
//! [`CommitError::Closed`].

use crate::store::{Committed, Store, StoreError};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use tokio::sync::oneshot;

/// Most steps in one batch; bounds the latency of the first step in it.
const MAX_BATCH: usize = 4096;

type Answer = oneshot::Sender<Result<(), CommitError>>;

struct Job {
    steps: Vec<Committed>,
    done: Answer,
}

/// Steps appended to the store, waiting for the flush that makes them durable.
struct Appended {
    steps: Vec<Committed>,
    done: Vec<Answer>,
}

/// The handle to the commit threads. Dropping it lets them finish their queues and stop.
pub struct Committer {
    jobs: Option<mpsc::Sender<Job>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Committer {
    pub fn start(store: Arc<dyn Store>) -> Committer {
        let (jobs, queue) = mpsc::channel::<Job>();
        let (appended, to_sync) = mpsc::channel::<Appended>();
        // Batches handed to the syncer and not yet flushed.
        let in_flight = Arc::new(AtomicUsize::new(0));
        let writer = Writer {
            store: store.clone(),
            in_flight: in_flight.clone(),
        };
        let threads = [
            std::thread::Builder::new()
                .name("sopflow-append".into())
                .spawn(move || writer.run(&queue, &appended)),
            std::thread::Builder::new()
                .name("sopflow-sync".into())
                .spawn(move || sync(store.as_ref(), &to_sync, &in_flight)),
        ]
        .into_iter()
        .flatten()
        .collect();
        Committer {
            jobs: Some(jobs),
            threads,
        }
    }

    /// Commits `steps` durably; returns once they are flushed.
    pub async fn commit(&self, steps: Vec<Committed>) -> Result<(), CommitError> {
        let (done, answer) = oneshot::channel();
        let jobs = self.jobs.as_ref().ok_or(CommitError::Closed)?;
        jobs.send(Job { steps, done })
            .map_err(|_| CommitError::Closed)?;
        answer.await.unwrap_or(Err(CommitError::Closed))
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        // Closing the queue stops the writer, which closes the syncer's queue in turn.
        self.jobs.take();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Why a commit failed. Every caller whose steps were in the failed batch gets its own copy.
#[derive(Debug, Clone)]
pub enum CommitError {
    /// The store failed to write or flush the batch, as it said.
    Store(StoreError),
    /// The engine is shutting down: the commit threads have stopped.
    Closed,
}

/// The writer thread: appends, and flushes itself while the pipeline is idle.
struct Writer {
    store: Arc<dyn Store>,
    in_flight: Arc<AtomicUsize>,
}

impl Writer {
    fn run(&self, queue: &mpsc::Receiver<Job>, appended: &mpsc::Sender<Appended>) {
        let mut waiting: Option<Job> = None;
        loop {
            let first = match waiting.take() {
                Some(job) => job,
                None => match queue.recv() {
                    Ok(job) => job,
                    Err(_) => return,
                },
            };
            let (steps, done) = gather(first, queue);
            if let Err(err) = self.store.append(&steps) {
                answer(done, &Err(CommitError::Store(err)));
                continue;
            }
            if self.in_flight.load(Ordering::Acquire) == 0 {
                match queue.try_recv() {
                    // Idle: no flush in flight that this one could wait for, and nobody else
                    // to append meanwhile. The flush begins after the append above.
                    Err(_) => {
                        let result = self.store.sync(&steps).map_err(CommitError::Store);
                        answer(done, &result);
                        continue;
                    }
                    // Someone else is waiting: append their steps while the syncer flushes.
                    Ok(next) => waiting = Some(next),
                }
            }
            self.in_flight.fetch_add(1, Ordering::AcqRel);
            if let Err(mpsc::SendError(lost)) = appended.send(Appended { steps, done }) {
                self.in_flight.fetch_sub(1, Ordering::AcqRel);
                answer(lost.done, &Err(CommitError::Closed));
            }
        }
    }
}

/// `first` and every job queued behind it, up to [`MAX_BATCH`] steps: their steps in one batch
/// and who to answer.
fn gather(first: Job, queue: &mpsc::Receiver<Job>) -> (Vec<Committed>, Vec<Answer>) {
    let mut steps = first.steps;
    let mut done = vec![first.done];
    while steps.len() < MAX_BATCH {
        match queue.try_recv() {
            Ok(job) => {
                steps.extend(job.steps);
                done.push(job.done);
            }
            Err(_) => break,
        }
    }
    (steps, done)
}

/// The syncer thread: one flush for every batch appended so far, then their answers.
fn sync(store: &dyn Store, queue: &mpsc::Receiver<Appended>, in_flight: &AtomicUsize) {
    while let Ok(first) = queue.recv() {
        let mut batches = vec![first];
        while let Ok(batch) = queue.try_recv() {
            batches.push(batch);
        }
        let steps: Vec<Committed> = batches.iter_mut().flat_map(|b| b.steps.drain(..)).collect();
        let result = store.sync(&steps).map_err(CommitError::Store);
        in_flight.fetch_sub(batches.len(), Ordering::AcqRel);
        answer(batches.into_iter().flat_map(|b| b.done).collect(), &result);
    }
}

fn answer(done: Vec<Answer>, result: &Result<(), CommitError>) {
    for done in done {
        let _ = done.send(result.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::{Actor, Entry, Instance, Start};
    use crate::store::SledStore;
    use crate::store::sled_store::Options;

    fn start(id: &str) -> Committed {
        let command = Start {
            id: id.into(),
            actor: Actor::new("li", ["clerk"]),
            data: Default::default(),
            business_key: None,
            parent: None,
            idempotency_key: None,
            at: chrono::DateTime::UNIX_EPOCH,
            number: None,
        };
        let mut entry = Entry::first(&command, "w", "v", "open");
        entry.seal();
        let snapshot = Instance::begin(&entry).expect("a start");
        Committed::new(entry, snapshot).expect("encodes")
    }

    /// A store whose snapshot of `w-2` is damaged on disk, and which checkpoints after every
    /// changed instance: the checkpoint before the second commit reads that snapshot.
    fn damaged_store(dir: &std::path::Path) -> Arc<dyn Store> {
        drop(SledStore::open(dir, Options::default()).expect("creates"));
        {
            let db = sled::open(dir).expect("sled opens");
            let instances = db.open_tree("instances").expect("tree");
            instances
                .insert("w-2", b"not json".as_slice())
                .expect("writes");
            db.flush().expect("flushes");
        }
        let options = Options {
            checkpoint_every: 1,
            ..Options::default()
        };
        Arc::new(SledStore::open(dir, options).expect("reopens"))
    }

    #[test]
    fn a_failed_commit_answers_with_the_store_s_own_typed_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let committer = Committer::start(damaged_store(dir.path()));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(async {
            committer.commit(vec![start("w-2")]).await.expect("commits");
            match committer.commit(vec![start("w-3")]).await {
                Err(CommitError::Store(StoreError::BadRecord { key, .. })) => {
                    assert_eq!(key, "w-2")
                }
                other => panic!("expected the store's BadRecord, got {other:?}"),
            }
        });
    }

    /// Many callers at once: batches form and pass through the syncer while the writer
    /// appends the next, or the writer flushes a lone batch itself; every step is answered
    /// once, and recorded.
    #[test]
    fn concurrent_commits_are_each_answered_and_recorded() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store: Arc<dyn Store> =
            Arc::new(SledStore::open(dir.path(), Options::default()).expect("opens"));
        let committer = Arc::new(Committer::start(store.clone()));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .expect("runtime");
        rt.block_on(async {
            let tasks: Vec<_> = (0..200)
                .map(|n| {
                    let committer = committer.clone();
                    tokio::spawn(
                        async move { committer.commit(vec![start(&format!("w-{n}"))]).await },
                    )
                })
                .collect();
            for task in tasks {
                task.await.expect("joins").expect("commits");
            }
        });
        for n in 0..200 {
            let id = format!("w-{n}");
            assert_eq!(store.history(&id).expect("reads").len(), 1, "{id}");
            assert!(store.instance(&id).expect("reads").is_some(), "{id}");
        }
    }
}
