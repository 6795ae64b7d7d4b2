//! Group commit in two stages, so that every command waiting at the moment shares one flush
//! and writing the next batch overlaps flushing the last.
//!
//! Callers hand over their steps and await the answer. The writer thread takes every job
//! queued, appends their entries to the store as one batch and passes them on; the syncer
//! thread takes every batch appended so far, makes them durable with one flush and answers
//! each. Under load, batches grow by themselves: the longer a flush takes, the more steps the
//! next one carries. A step is answered only after a flush that began after it was appended.

use crate::store::{Committed, Store, StoreError};
use std::sync::Arc;
use std::sync::mpsc;
use tokio::sync::oneshot;

/// Most steps in one batch; bounds the latency of the first step in it.
const MAX_BATCH: usize = 4096;

struct Job {
    steps: Vec<Committed>,
    done: oneshot::Sender<Result<(), String>>,
}

/// Steps appended to the store, waiting for the flush that makes them durable.
struct Appended {
    steps: Vec<Committed>,
    done: Vec<oneshot::Sender<Result<(), String>>>,
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
        match answer.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(CommitError::Store(StoreError::Io(message))),
            Err(_) => Err(CommitError::Closed),
        }
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

/// Why a commit failed.
#[derive(Debug)]
pub enum CommitError {
    Store(StoreError),
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
                    answer(lost.done, &Err("the engine is shutting down".into()));
                }
            }
            Err(err) => answer(done, &Err(err.to_string())),
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
        let result = store.sync(&steps).map_err(|e| e.to_string());
        answer(batches.into_iter().flat_map(|b| b.done).collect(), &result);
    }
}

fn answer(done: Vec<oneshot::Sender<Result<(), String>>>, result: &Result<(), String>) {
    for done in done {
        let _ = done.send(result.clone());
    }
}
