//! Group commit in two stages, so that every command waiting at the moment shares one flush
//! and writing the next batch overlaps flushing the last; and, when nothing else is being
//! committed, no stage at all.
//!
//! Callers hand over their steps and await the answer. The writer thread takes every job
//! queued and appends their entries to the store as one batch. Then:
//!
//! - under load (the syncer is still flushing an earlier batch, or another job is already
//!   waiting), it passes the batch on: the syncer thread takes every batch appended so far,
//!   makes them durable with one flush and answers each, while the writer appends the next.
//!   Batches grow by themselves: the longer a flush takes, the more steps the next one carries;
//! - when the pipeline is idle (nothing in flight, nobody waiting), the writer flushes the
//!   batch itself and answers: one hand-off, not two.
//!
//! A caller on a blocking thread (the engine computes each step on tokio's blocking pool)
//! tries [`Committer::commit_if_idle`] first: when no other commit is under way, the thread
//! that computed a step appends and flushes it itself, with no hand-off at all (the engine
//! does so for a step that causes nothing more: no children, no parent to tell, no
//! `await_children` event); otherwise the step joins the pipeline's next group. Commits may
//! overlap safely (the store takes appends and syncs from any thread, and the commands of one
//! instance run one at a time), so the idle test only chooses the cheaper way.
//!
//! Every way keeps the invariant: **a step is answered only after a flush that began after
//! it was appended.** A direct commit and the writer flush only what they have just appended;
//! the syncer is handed a batch only once it is appended.
//!
//! One client on sled, one step after another (`cargo bench --bench runtime --
//! 'durable/clients/1$|raw_sled/insert_flush_each'`, the two run back to back on the same
//! machine, 2 cores): 134 µs per durable step (criterion's range 130-138 µs), against 110 µs
//! (104-115 µs) for a raw sled insert and flush of the same entry: the engine runs at 82% of
//! raw sled's rate. What closed the gap was not this module but the thread hand-offs around
//! it: each round trip through tokio's blocking pool cost about 60 µs on this machine (the
//! context switches, not the work), and a step made two. A step of an instance the engine
//! knows now makes none on sled when nothing else is being committed (`Engine::blocking_step`):
//! 240 µs per step before, 178 µs with one hand-off, 134 µs with none. The same change took
//! 8 clients from 78 to 66 µs per step and 64 clients from 59 to 49 µs.
//!
//! A store whose append is itself the durable commit and which takes several commits at once
//! ([`Store::concurrent_commits`] above 1: PostgreSQL, one connection each) gets no pipeline:
//! that many lane threads each take every job queued and commit it as one batch, so several
//! batches are in flight at once instead of the pipeline's one (its syncer would have
//! nothing to do). Steps that claim numbers (children named by a step; a start is numbered in
//! its own transaction, `engine::starts`) go to one more lane of their own, so that they reach
//! the store in the order they were sent, number order, as the store's compare-and-set wants
//! (`engine::numbering`). Every lane answers only after its
//! commit returned, so the invariant above holds as it does for the pipeline. The steps of one
//! instance are never in two lanes at once: the engine holds the instance's lock until its
//! commit is answered.
//!
//! How many lanes is the store's to say, and measured: for PostgreSQL two
//! (`store::postgres::connection::COMMIT_LANES` has the figures), one committing while the
//! next batch gathers.
//!
//! On a store shared by several processes (PostgreSQL), a batch's commit may lose a race
//! with another node's: a step whose (instance, seq) the other took first, a number or an
//! idempotency key taken first, or a deadlock the database broke. Such a batch wrote nothing
//! ([`StoreError::lost_race`]), and one caller's loss must not become the others': **only the
//! callers whose own steps lost get the error** (and compute their commands again); the
//! others are answered as if nothing had happened. When the error names the step that lost
//! (a (instance, seq) or a number taken first, an idempotency key used), its caller is
//! answered and the rest committed again as one batch, and so on while another loses; when
//! it names none (a deadlock the database broke), each caller's steps are committed on their
//! own. (Splitting every lost batch into one commit per caller held up every other step
//! while two nodes raced for numbers.) A store only one process opens (sled) never loses
//! one: the instance locks put the commands of one instance in turn.
//!
//! A failure reaches every caller of its batch as the store's own typed [`StoreError`] (a
//! damaged record, a locked store...), and a commit after the engine stopped its threads as
//! [`CommitError::Closed`].

use crate::store::{Committed, Store, StoreError};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
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
    /// On a store with several commits in flight, the lane of the steps that claim numbers:
    /// one thread, so that they commit in the order they were sent (number order).
    claims: Option<mpsc::Sender<Job>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    store: Arc<dyn Store>,
    /// Commits under way: handed to the threads and not yet answered, or made directly by
    /// [`Committer::commit_if_idle`].
    busy: Arc<AtomicUsize>,
}

/// Counts a commit under way for as long as it lives.
struct Busy(Arc<AtomicUsize>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Committer {
    pub fn start(store: Arc<dyn Store>) -> Committer {
        let lanes = store.concurrent_commits();
        if lanes > 1 {
            return Committer::in_lanes(store, lanes);
        }
        let (jobs, queue) = mpsc::channel::<Job>();
        let (appended, to_sync) = mpsc::channel::<Appended>();
        // Batches handed to the syncer and not yet flushed.
        let in_flight = Arc::new(AtomicUsize::new(0));
        let writer = Writer {
            store: store.clone(),
            in_flight: in_flight.clone(),
        };
        let syncer_store = store.clone();
        let threads = [
            std::thread::Builder::new()
                .name("sopflow-append".into())
                .spawn(move || writer.run(&queue, &appended)),
            std::thread::Builder::new()
                .name("sopflow-sync".into())
                .spawn(move || sync(syncer_store.as_ref(), &to_sync, &in_flight)),
        ]
        .into_iter()
        .flatten()
        .collect();
        Committer {
            jobs: Some(jobs),
            claims: None,
            threads,
            store,
            busy: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// On a store whose append is its own durable commit: `lanes` threads take what is queued
    /// and commit it, each a batch at a time, and one more commits the steps that claim
    /// numbers, in the order they were sent.
    fn in_lanes(store: Arc<dyn Store>, lanes: usize) -> Committer {
        let (jobs, queue) = mpsc::channel::<Job>();
        let (claims, claim_queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let claim_queue = Arc::new(Mutex::new(claim_queue));
        let mut threads = Vec::with_capacity(lanes + 1);
        for lane in 0..=lanes {
            let (store, queue) = if lane == 0 {
                (store.clone(), claim_queue.clone())
            } else {
                (store.clone(), queue.clone())
            };
            let spawned = std::thread::Builder::new()
                .name(format!("sopflow-commit-{lane}"))
                .spawn(move || lane_run(store.as_ref(), &queue));
            if let Ok(thread) = spawned {
                threads.push(thread);
            }
        }
        Committer {
            jobs: Some(jobs),
            claims: Some(claims),
            threads,
            store,
            busy: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Commits `steps` durably; returns once they are flushed.
    pub async fn commit(&self, steps: Vec<Committed>) -> Result<(), CommitError> {
        self.send(steps)?.answer().await
    }

    /// Hands `steps` to the commit threads now, without waiting (callable from any thread):
    /// jobs that claim numbers are committed in the order they were sent. The answer comes
    /// through [`Sent::answer`].
    pub fn send(&self, steps: Vec<Committed>) -> Result<Sent, CommitError> {
        let (done, answer) = oneshot::channel();
        let jobs = self.jobs.as_ref().ok_or(CommitError::Closed)?;
        let jobs = match &self.claims {
            Some(claims) if steps.iter().any(|step| step.numbers.is_some()) => claims,
            _ => jobs,
        };
        let busy = self.busy();
        jobs.send(Job { steps, done })
            .map_err(|_| CommitError::Closed)?;
        Ok(Sent {
            answer,
            _busy: busy,
        })
    }

    /// Commits `steps` durably on the calling thread, which may block (the blocking pool's
    /// thread that computed them), when no other commit is under way: appends them, then
    /// flushes, with no hand-off at all. `None` when another commit is under way: the caller
    /// then hands them to [`Committer::commit`], so that they share its group's flush.
    pub fn commit_if_idle(&self, steps: &[Committed]) -> Option<Result<(), CommitError>> {
        match self.claim_idle() {
            Ok(Some(direct)) => Some(direct.commit(steps)),
            Ok(None) => None,
            Err(err) => Some(Err(err)),
        }
    }

    /// The first half of [`Committer::commit_if_idle`]: when no other commit is under way,
    /// claims the right to commit on the calling thread (every other commit counts as under
    /// way from now on, until the [`Direct`] is used or dropped); `None` otherwise.
    pub fn claim_idle(&self) -> Result<Option<Direct>, CommitError> {
        if self.jobs.is_none() {
            return Err(CommitError::Closed);
        }
        if self
            .busy
            .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Ok(None);
        }
        Ok(Some(Direct {
            _busy: Busy(self.busy.clone()),
            store: self.store.clone(),
        }))
    }

    /// Whether no commit is under way now: a step computed now would most likely be
    /// committed directly ([`Committer::commit_if_idle`]). Only a hint: another commit may
    /// begin the next moment.
    pub fn is_idle(&self) -> bool {
        self.busy.load(Ordering::Acquire) == 0
    }

    fn busy(&self) -> Busy {
        self.busy.fetch_add(1, Ordering::AcqRel);
        Busy(self.busy.clone())
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        // Closing the queues stops the writer (which closes the syncer's queue in turn) or the
        // lanes.
        self.jobs.take();
        self.claims.take();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Steps handed to the commit threads ([`Committer::send`]), counted as under way until
/// answered.
pub struct Sent {
    answer: oneshot::Receiver<Result<(), CommitError>>,
    _busy: Busy,
}

impl Sent {
    /// Waits for the commit threads' answer: `Ok` once the steps are durable.
    pub async fn answer(self) -> Result<(), CommitError> {
        self.answer.await.unwrap_or(Err(CommitError::Closed))
    }
}

/// The right to commit on the calling thread, claimed while nothing else was under way
/// ([`Committer::claim_idle`]).
pub struct Direct {
    _busy: Busy,
    store: Arc<dyn Store>,
}

impl Direct {
    /// Commits `steps` durably on this thread (appends and flushes them), with no hand-off.
    pub fn commit(self, steps: &[Committed]) -> Result<(), CommitError> {
        self.store.commit(steps).map_err(CommitError::Store)
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
            let (steps, done, sizes) = gather(first, queue);
            if let Err(err) = self.store.append(&steps) {
                failed(self.store.as_ref(), steps, done, sizes, err);
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

/// One lane of a store whose append is its own commit: takes every job queued (up to
/// [`MAX_BATCH`] steps) and commits them as one batch, durable when it returns, then answers.
fn lane_run(store: &dyn Store, queue: &Mutex<mpsc::Receiver<Job>>) {
    loop {
        let (steps, done, sizes) = {
            let queue = queue.lock().unwrap_or_else(|e| e.into_inner());
            match queue.recv() {
                Ok(first) => gather(first, &queue),
                Err(_) => return,
            }
        };
        match store.commit(&steps) {
            Ok(()) => answer(done, &Ok(())),
            Err(err) => failed(store, steps, done, sizes, err),
        }
    }
}

/// Answers the callers of a batch that failed with `err` and wrote nothing. A lost race whose
/// error names the step that lost (a (instance, seq) or a number taken first, an idempotency
/// key used) fails only that step's caller, and the others' steps are committed again as one
/// batch (and so on, if another loses in turn); a lost race that names no step (a deadlock the
/// database broke) commits each caller's steps on its own. Any other failure is every caller's.
fn failed(
    store: &dyn Store,
    mut steps: Vec<Committed>,
    mut done: Vec<Answer>,
    mut sizes: Vec<usize>,
    mut err: StoreError,
) {
    loop {
        if !err.lost_race() || done.len() < 2 {
            answer(done, &Err(CommitError::Store(err)));
            return;
        }
        let Some(caller) = loser(&steps, &sizes, &err) else {
            each_on_its_own(store, &steps, done, &sizes);
            return;
        };
        let from: usize = sizes[..caller].iter().sum();
        steps.drain(from..from + sizes[caller]);
        sizes.remove(caller);
        let _ = done.remove(caller).send(Err(CommitError::Store(err)));
        match store.commit(&steps) {
            Ok(()) => {
                answer(done, &Ok(()));
                return;
            }
            Err(next) => err = next,
        }
    }
}

/// Which caller's steps `err` names: the index of its job in the batch.
fn loser(steps: &[Committed], sizes: &[usize], err: &StoreError) -> Option<usize> {
    let at = steps.iter().position(|step| match err {
        StoreError::Conflict { instance, seq } => {
            step.entry.instance == *instance && step.entry.seq == *seq
        }
        StoreError::KeyTaken { key } => step.entry.idempotency_key.as_deref() == Some(key),
        _ => false,
    })?;
    let mut end = 0;
    sizes.iter().position(|&size| {
        end += size;
        at < end
    })
}

/// Commits each caller's steps of a batch that lost a race on their own (a commit each,
/// durable when it returns), and answers each with its own result.
fn each_on_its_own(store: &dyn Store, steps: &[Committed], done: Vec<Answer>, sizes: &[usize]) {
    let mut from = 0;
    for (done, &size) in done.into_iter().zip(sizes) {
        let own = &steps[from..from + size];
        from += size;
        let _ = done.send(store.commit(own).map_err(CommitError::Store));
    }
}

/// `first` and every job queued behind it, up to [`MAX_BATCH`] steps: their steps in one batch,
/// who to answer, and how many of the steps are each one's.
fn gather(first: Job, queue: &mpsc::Receiver<Job>) -> (Vec<Committed>, Vec<Answer>, Vec<usize>) {
    let mut sizes = vec![first.steps.len()];
    let mut steps = first.steps;
    let mut done = vec![first.done];
    while steps.len() < MAX_BATCH {
        match queue.try_recv() {
            Ok(job) => {
                sizes.push(job.steps.len());
                steps.extend(job.steps);
                done.push(job.done);
            }
            Err(_) => break,
        }
    }
    (steps, done, sizes)
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
            // As the store opens it: sled lets go of its lock a moment after the store closes.
            let db = crate::store::sled_store::open_sled(dir, "test", 1 << 20).expect("sled opens");
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

    /// A lost race names the caller whose step lost, by (instance, seq) or idempotency key;
    /// a deadlock names none.
    #[test]
    fn a_lost_race_names_the_caller_whose_step_lost() {
        let mut keyed = start("w-3");
        keyed.entry.idempotency_key = Some("k".into());
        let steps = vec![start("w-1"), start("w-2"), keyed];
        let sizes = [1, 2];
        let conflict = |id: &str| StoreError::Conflict {
            instance: id.into(),
            seq: 0,
        };
        assert_eq!(loser(&steps, &sizes, &conflict("w-1")), Some(0));
        assert_eq!(loser(&steps, &sizes, &conflict("w-2")), Some(1));
        assert_eq!(loser(&steps, &sizes, &conflict("w-9")), None);
        let taken = StoreError::KeyTaken { key: "k".into() };
        assert_eq!(loser(&steps, &sizes, &taken), Some(1));
        let deadlock = StoreError::Contended {
            store: "s".into(),
            detail: "deadlock".into(),
        };
        assert_eq!(loser(&steps, &sizes, &deadlock), None);
    }

    /// With nothing else under way a caller commits on its own thread, durably and recorded;
    /// while another commit is under way it is told to join the group instead, and nothing
    /// of its steps is written.
    #[test]
    fn a_lone_commit_is_made_by_its_caller_and_a_busy_one_is_handed_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store: Arc<dyn Store> =
            Arc::new(SledStore::open(dir.path(), Options::default()).expect("opens"));
        let committer = Committer::start(store.clone());
        let first = committer.commit_if_idle(&[start("w-1")]);
        assert!(matches!(first, Some(Ok(()))), "{first:?}");
        assert_eq!(store.history("w-1").expect("reads").len(), 1);
        assert!(store.instance("w-1").expect("reads").is_some());

        let under_way = committer.busy();
        assert!(committer.commit_if_idle(&[start("w-2")]).is_none());
        assert!(store.history("w-2").expect("reads").is_empty());
        drop(under_way);
        let second = committer.commit_if_idle(&[start("w-2")]);
        assert!(matches!(second, Some(Ok(()))), "{second:?}");
    }
}
