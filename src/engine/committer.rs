//! Group commit in two stages, so that every command waiting at the moment shares one flush
//! and writing the next batch overlaps flushing the last.
//!
//! Callers hand over their steps and await the answer. The writer thread takes every job
//! queued, appends their entries to the store as one batch and passes them on; the syncer
//! thread takes every batch appended so far, makes them durable with one flush and answers
//! each. Under load, batches grow by themselves: the longer a flush takes, the more steps the
//! next one carries. A step is answered only after a flush that began after it was appended.
//!
//! A failure reaches every caller of its batch as the store's own typed [`StoreError`] (a
//! damaged record, a locked store...), and a commit the stopped threads can no longer take as
//! [`CommitError::Closed`].

use crate::store::{Committed, Store, StoreError};
use std::sync::Arc;
use std::sync::mpsc;
use tokio::sync::oneshot;

/// Most steps in one batch; bounds the latency of the first step in it.
const MAX_BATCH: usize = 4096;

/// Where a job's answer goes.
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
        let writer_store = store.clone();
        let threads = [
            std::thread::Builder::new()
                .name("sopflow-append".into())
                .spawn(move || append(writer_store.as_ref(), &queue, &appended)),
            std::thread::Builder::new()
                .name("sopflow-sync".into())
                .spawn(move || sync(store.as_ref(), &to_sync)),
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
    /// The store failed to write or flush the batch, as the store said.
    Store(StoreError),
    /// The engine is shutting down: the commit threads have stopped (or were lost).
    Closed,
}

fn append(store: &dyn Store, queue: &mpsc::Receiver<Job>, appended: &mpsc::Sender<Appended>) {
    while let Ok(first) = queue.recv() {
        let mut jobs = vec![first];
        let mut count = jobs[0].steps.len();
        while count < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => {
                    count += job.steps.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let mut steps = Vec::with_capacity(count);
        let mut done = Vec::with_capacity(jobs.len());
        for job in jobs {
            steps.extend(job.steps);
            done.push(job.done);
        }
        match store.append(&steps) {
            Ok(()) => {
                if let Err(mpsc::SendError(lost)) = appended.send(Appended { steps, done }) {
                    answer(lost.done, &Err(CommitError::Closed));
                }
            }
            Err(err) => answer(done, &Err(CommitError::Store(err))),
        }
    }
}

fn sync(store: &dyn Store, queue: &mpsc::Receiver<Appended>) {
    while let Ok(first) = queue.recv() {
        let mut batches = vec![first];
        while let Ok(batch) = queue.try_recv() {
            batches.push(batch);
        }
        let steps: Vec<Committed> = batches.iter_mut().flat_map(|b| b.steps.drain(..)).collect();
        let result = store.sync(&steps).map_err(CommitError::Store);
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
        Committed::new(entry, snapshot)
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
}
