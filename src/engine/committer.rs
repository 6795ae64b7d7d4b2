//! Group commit: one thread writes batches to the store, so that every command waiting at
//! the moment shares one flush.
//!
//! Callers hand over their steps and await the answer; the thread takes every job queued
//! since its last flush, commits them as one batch and answers each. Under load, batches
//! grow by themselves: the longer a flush takes, the more steps the next one carries.

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

/// The handle to the commit thread. Dropping it lets the thread finish its queue and stop.
pub struct Committer {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Committer {
    pub fn start(store: Arc<dyn Store>) -> Committer {
        let (jobs, queue) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("sopflow-commit".into())
            .spawn(move || run(store.as_ref(), &queue))
            .ok();
        Committer {
            jobs: Some(jobs),
            thread,
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
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
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

fn run(store: &dyn Store, queue: &mpsc::Receiver<Job>) {
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
        let mut batch = Vec::with_capacity(count);
        let mut waiting = Vec::with_capacity(jobs.len());
        for job in jobs {
            batch.extend(job.steps);
            waiting.push(job.done);
        }
        let result = store.commit(&batch).map_err(|e| e.to_string());
        for done in waiting {
            let _ = done.send(result.clone());
        }
    }
}
