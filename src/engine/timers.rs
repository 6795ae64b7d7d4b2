//! Time in the runtime: firing due timers, starting scheduled instances, and moving a virtual
//! clock.
//!
//! Timers live in the store's timer queue (derived from the snapshots at each checkpoint), not
//! in memory, so a million pending timers cost no RAM. The queue is only a hint: a timer fires
//! only if the instance's snapshot still holds it, and firing removes it from the snapshot in
//! the same commit as the step it makes. That is what makes a timer fire exactly once, also
//! across restarts: a timer whose step was committed is gone from the snapshot, and a timer
//! whose step was not committed is still there and fires after the restart, late but once.
//!
//! A schedule remembers the occurrence it last fired for. An occurrence missed while the
//! engine was down starts one instance on start-up (the latest missed one, not one per missed
//! period), and each start carries an idempotency key derived from the occurrence, so a crash
//! between the start and the mark cannot start it twice.
//!
//! Several engines (nodes) may share one store. A node takes due timers by claiming them for
//! [`TIMER_LEASE`] ([`crate::store::Store::claim_due_timers`]): no other node is given them
//! while the lease runs, so each timer is fired by one node; a node that dies mid-firing lets
//! its lease run out, and another node fires the timer then. Exactly once does not rest on the
//! lease: the firing step is committed only if no other step took its seq, so a slow node whose
//! lease ran out while it fired loses the race, computes again, finds the timer gone and fires
//! nothing. A timer never fires early: its due time is compared with the engine's clock, as on
//! one node. A schedule's occurrence starts one instance whichever node sees it first: the
//! occurrence's idempotency key is unique in the store, so the node that comes second gets the
//! first one's start back; and the mark moves forward only (a compare-and-set), so one node
//! reports the start.

use super::{Engine, EngineError, Outcome, StartRequest};
use crate::calendar::Calendar;
use crate::calendar::recurrence::Recurrence;
use crate::definition::duration::Duration;
use crate::machine::{self, Actor, Instance, Refusal};
use crate::store::QueuedTimer;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// How many due timers are taken from the queue at a time.
const BATCH: usize = 1024;

/// How many instances' timers fire at once (each waits for its group commit).
const PARALLEL: usize = 256;

/// How long a node's claim on due timers keeps other nodes from them: longer than firing a
/// batch takes, short enough that a timer of a node that died fires soon after.
pub const TIMER_LEASE: std::time::Duration = std::time::Duration::from_secs(30);

/// The longest the timer loop sleeps between looks at the queue.
const IDLE: std::time::Duration = std::time::Duration::from_secs(1);

/// Something time made happen.
#[derive(Debug, Clone, PartialEq)]
pub enum Fired {
    /// A timer fell due and its step was committed.
    Timer {
        /// The instance the timer belongs to.
        instance: String,
        /// The timer's id within the instance.
        timer: String,
        /// The event it fired.
        event: String,
        /// When it was due (it fires later if the engine was stopped then).
        due: DateTime<Utc>,
        /// The sequence number of the step it made.
        seq: u64,
        /// Why its event was refused, when it lapsed instead.
        refused: Option<String>,
    },
    /// A schedule started an instance.
    Schedule {
        /// The workflow it started.
        workflow: String,
        /// The schedule's id in the workflow.
        schedule: String,
        /// The occurrence it started the instance for.
        occurrence: DateTime<Utc>,
        /// The instance it started.
        instance: String,
    },
}

/// A schedule as the engine runs it, with its next occurrences.
#[derive(Debug, Clone)]
pub struct ScheduleInfo {
    /// The workflow that declares it.
    pub workflow: String,
    /// The schedule's id in the workflow.
    pub schedule: String,
    /// Its title for people, as written.
    pub title: Option<String>,
    /// The business calendar its occurrences are counted on.
    pub calendar: String,
    /// The occurrence it last fired for (or when the engine first saw it).
    pub last: Option<DateTime<Utc>>,
    /// Its next occurrences after `last` (or now), earliest first.
    pub next: Vec<DateTime<Utc>>,
}

/// One schedule of the newest version of a workflow, ready to run.
struct Scheduled {
    key: String,
    workflow: String,
    schedule: String,
    title: Option<String>,
    recurrence: Recurrence,
    calendar: Arc<Calendar>,
    data: serde_json::Map<String, Value>,
}

impl Engine {
    /// Fires every timer and schedule due now, earliest first (timers of one instance in due
    /// order; different instances in parallel). The timer loop calls this; so can a cron job
    /// through `sopflow tick`.
    pub async fn run_due(&self) -> Result<Vec<Fired>, EngineError> {
        self.fire_due_until(self.now()).await
    }

    /// On a virtual clock: moves time forward to `until`, stopping at each due timer and
    /// schedule on the way to fire it at its own due time, so that timers armed by those
    /// steps fire too if they fall due before `until`. Refused on a real clock.
    pub async fn advance_to(&self, until: DateTime<Utc>) -> Result<Vec<Fired>, EngineError> {
        if !self.inner.clock.is_virtual() {
            return Err(EngineError::RealClock);
        }
        let mut fired = Vec::new();
        // Queue entries that fired nothing (a timer fired or cancelled since the last
        // checkpoint); skipped, so that they cannot hold back the timers due after them.
        let mut leftovers: HashSet<(String, String)> = HashSet::new();
        loop {
            let next_timer = self
                .queue(until, leftovers.len() + 1)
                .await?
                .into_iter()
                .find(|t| !leftovers.contains(&(t.instance.clone(), t.timer.clone())))
                .map(|t| t.due);
            let next_schedule = self.next_schedule_blocking(until).await?;
            let next = match (next_timer, next_schedule) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => match a.or(b) {
                    Some(next) => next,
                    None => break,
                },
            };
            self.inner.clock.set(next);
            let round = self.fire_due_until(self.now()).await?;
            if round.is_empty() {
                let known = leftovers.len();
                for t in self.queue(next, BATCH).await? {
                    leftovers.insert((t.instance, t.timer));
                }
                if leftovers.len() == known {
                    // Nothing fired and nothing new to skip: time cannot make progress
                    // here, and looking again would loop.
                    break;
                }
            }
            fired.extend(round);
        }
        self.inner.clock.set(until);
        Ok(fired)
    }

    /// [`Engine::advance_to`] by a duration on the default calendar ("8 working days").
    pub async fn advance(&self, duration: Duration) -> Result<Vec<Fired>, EngineError> {
        let report = self.load_report();
        let calendar = report.catalog.calendars.default_calendar();
        let until = calendar
            .add(self.now(), duration)
            .map_err(|e| EngineError::Calendar(e.to_string()))?;
        self.advance_to(until).await
    }

    /// Fires due timers and schedules until `shutdown` completes. On a virtual clock it only
    /// waits: time moves with [`Engine::advance_to`]. What each round fired is passed to
    /// `on_fired` with the time of the round (a server measures the timers' lag with it). A
    /// failing round is reported through `on_error` and retried after a pause; the loop itself
    /// never gives up.
    pub async fn run_timers(
        &self,
        shutdown: impl std::future::Future<Output = ()>,
        on_fired: impl Fn(&[Fired], DateTime<Utc>),
        on_error: impl Fn(&EngineError),
    ) {
        tokio::pin!(shutdown);
        loop {
            let wait = if self.inner.clock.is_virtual() {
                IDLE
            } else {
                let round = self.now();
                match self.run_due().await {
                    Ok(fired) => {
                        if !fired.is_empty() {
                            on_fired(&fired, round);
                        }
                        self.until_next_due().await.unwrap_or(IDLE)
                    }
                    Err(err) => {
                        on_error(&err);
                        IDLE
                    }
                }
            };
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Pending timers of every instance, earliest first.
    pub async fn pending_timers(&self, limit: usize) -> Result<Vec<QueuedTimer>, EngineError> {
        self.queue(DateTime::<Utc>::MAX_UTC, limit).await
    }

    /// Every schedule of the newest workflow versions with its next `count` occurrences.
    ///
    /// This reads the store and so blocks: call it from a blocking thread, or use
    /// [`Engine::schedules_blocking`].
    pub fn schedules(&self, count: usize) -> Result<Vec<ScheduleInfo>, EngineError> {
        let now = self.now();
        let mut out = Vec::new();
        for scheduled in self.scheduled()? {
            let last = self.inner.store.schedule_mark(&scheduled.key)?;
            let mut next = Vec::new();
            let mut after = last.unwrap_or(now).max(now);
            for _ in 0..count {
                match scheduled.recurrence.next_after(after, &scheduled.calendar) {
                    Ok(at) => {
                        next.push(at);
                        after = at;
                    }
                    Err(_) => break,
                }
            }
            out.push(ScheduleInfo {
                workflow: scheduled.workflow,
                schedule: scheduled.schedule,
                title: scheduled.title,
                calendar: scheduled.calendar.id().to_string(),
                last,
                next,
            });
        }
        Ok(out)
    }

    /// [`Engine::schedules`] on the blocking pool.
    pub async fn schedules_blocking(&self, count: usize) -> Result<Vec<ScheduleInfo>, EngineError> {
        self.blocking(move |engine| engine.schedules(count)).await
    }

    /// Gives every schedule seen for the first time a starting point: now. It fires from its
    /// next occurrence on, not for occurrences before it existed.
    pub(super) fn mark_new_schedules(&self) -> Result<(), EngineError> {
        let now = self.now();
        for scheduled in self.scheduled()? {
            self.inner.store.first_schedule_mark(&scheduled.key, now)?;
        }
        Ok(())
    }

    async fn fire_due_until(&self, until: DateTime<Utc>) -> Result<Vec<Fired>, EngineError> {
        let mut fired = self.fire_schedules(until).await?;
        loop {
            let due = self.claim(until, BATCH).await?;
            if due.is_empty() {
                break;
            }
            let round = self.fire_batch(due).await?;
            if round.is_empty() {
                // Every timer taken was a leftover; the next checkpoint clears them.
                break;
            }
            fired.extend(round);
        }
        Ok(fired)
    }

    /// Fires a batch of due timers: one task per instance, its timers in due order.
    async fn fire_batch(&self, due: Vec<QueuedTimer>) -> Result<Vec<Fired>, EngineError> {
        let mut by_instance: BTreeMap<String, Vec<QueuedTimer>> = BTreeMap::new();
        for timer in due {
            by_instance
                .entry(timer.instance.clone())
                .or_default()
                .push(timer);
        }
        let mut tasks = tokio::task::JoinSet::new();
        let mut fired = Vec::new();
        let mut first_error = None;
        for (_, timers) in by_instance {
            if tasks.len() >= PARALLEL
                && let Some(done) = tasks.join_next().await
            {
                collect(done, &mut fired, &mut first_error);
            }
            let engine = self.clone();
            tasks.spawn(async move {
                let mut fired = Vec::new();
                for timer in timers {
                    if let Some(one) = engine.fire_one(&timer).await? {
                        fired.push(one);
                    }
                }
                Ok::<_, EngineError>(fired)
            });
        }
        while let Some(done) = tasks.join_next().await {
            collect(done, &mut fired, &mut first_error);
        }
        match first_error {
            Some(err) => Err(err),
            None => {
                fired.sort_by_key(due_of);
                Ok(fired)
            }
        }
    }

    /// Fires one queued timer, unless it is no longer pending; computed again if its commit
    /// loses a race (another node fired it, or took the instance's next step).
    async fn fire_one(&self, queued: &QueuedTimer) -> Result<Option<Fired>, EngineError> {
        self.retrying(|| self.fire_one_once(queued)).await
    }

    async fn fire_one_once(&self, queued: &QueuedTimer) -> Result<Option<Fired>, EngineError> {
        let mut locks = vec![self.lock(&queued.instance).await];
        let (id, timer, queued_due) = (queued.instance.clone(), queued.timer.clone(), queued.due);
        // The timer's step may run scripts, and reading the instance reads the store: off the
        // async threads (see the engine's docs).
        let fired = self
            .blocking(move |engine| {
                let Some(instance) = engine.inner.store.instance(&id)? else {
                    return Ok(None);
                };
                let definition = engine.definition(&instance.version)?;
                // The queue keeps due times to the millisecond; the snapshot has them exactly.
                let due = instance
                    .timers
                    .iter()
                    .find(|t| t.id == timer)
                    .map_or(queued_due, |t| t.due);
                let at = engine.now().max(due);
                let entry =
                    match machine::fire_timer(&definition, &instance, &timer, at, engine.sandbox())
                    {
                        Ok(entry) => entry,
                        Err(Refusal::TimerNotPending { .. }) => return Ok(None),
                        Err(other) => return Err(other.into()),
                    };
                let mut snapshot: Instance = instance;
                snapshot
                    .apply(&entry)
                    .map_err(crate::store::StoreError::from)?;
                Ok(Some((entry, snapshot, at)))
            })
            .await?;
        let Some((entry, snapshot, at)) = fired else {
            return Ok(None);
        };
        let mut batch = Vec::new();
        let mut names = Vec::new();
        let done = async {
            let (entry, _) = self
                .push_step(&mut batch, &mut names, entry, snapshot, at)
                .await?;
            self.follow_ups(&mut batch, &mut locks, &mut names, at)
                .await?;
            self.commit(std::mem::take(&mut batch)).await?;
            Ok(entry)
        }
        .await;
        let entry = self.unless_failed(done, &names).await?;
        super::committed(&names);
        let firing = entry
            .timer
            .map(|t| *t)
            .unwrap_or_else(|| machine::entry::TimerFiring {
                id: queued.timer.clone(),
                due: queued.due,
                title: None,
                refused: None,
            });
        Ok(Some(Fired::Timer {
            instance: entry.instance.to_string(),
            timer: firing.id,
            event: entry.event.to_string(),
            due: firing.due,
            seq: entry.seq,
            refused: firing.refused,
        }))
    }

    /// Starts the instances of every schedule with an occurrence in (its mark, `until`].
    async fn fire_schedules(&self, until: DateTime<Utc>) -> Result<Vec<Fired>, EngineError> {
        let mut fired = Vec::new();
        for scheduled in self.scheduled()? {
            let key = scheduled.key.clone();
            // A schedule seen for the first time starts from now (whichever node marks it).
            let last = self
                .blocking(move |engine| Ok(engine.inner.store.first_schedule_mark(&key, until)?))
                .await?;
            let occurrence = scheduled
                .recurrence
                .latest_in(last, until, &scheduled.calendar)
                .map_err(|e| EngineError::Calendar(e.to_string()))?;
            let Some(occurrence) = occurrence else {
                continue;
            };
            let outcome = self.start_scheduled(&scheduled, occurrence).await?;
            let key = scheduled.key.clone();
            let moved = self
                .blocking(move |engine| {
                    Ok(engine.inner.store.advance_schedule_mark(&key, occurrence)?)
                })
                .await?;
            if outcome.replayed && !moved {
                // Another node started it and moved the mark: it reports the start.
                continue;
            }
            fired.push(Fired::Schedule {
                workflow: scheduled.workflow,
                schedule: scheduled.schedule,
                occurrence,
                instance: outcome.instance.id.to_string(),
            });
        }
        Ok(fired)
    }

    async fn start_scheduled(
        &self,
        scheduled: &Scheduled,
        occurrence: DateTime<Utc>,
    ) -> Result<Outcome, EngineError> {
        let local = scheduled.calendar.local(occurrence);
        let request = StartRequest::new(Actor::system())
            .data(Value::Object(scheduled.data.clone()))
            .business_key(format!(
                "{}/{}",
                scheduled.schedule,
                local.format("%Y-%m-%dT%H:%M")
            ))
            .idempotency_key(format!(
                "schedule/{}/{}",
                scheduled.key,
                occurrence.to_rfc3339_opts(SecondsFormat::Secs, true)
            ));
        self.start_checked(&scheduled.workflow, request).await
    }

    /// [`Engine::next_schedule`] on the blocking pool.
    async fn next_schedule_blocking(
        &self,
        until: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, EngineError> {
        self.blocking(move |engine| engine.next_schedule(until))
            .await
    }

    /// The earliest occurrence at or before `until` of any schedule, after its mark.
    fn next_schedule(&self, until: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, EngineError> {
        let mut next: Option<DateTime<Utc>> = None;
        for scheduled in self.scheduled()? {
            let last = self
                .inner
                .store
                .schedule_mark(&scheduled.key)?
                .unwrap_or_else(|| self.now());
            let at = scheduled
                .recurrence
                .next_after(last, &scheduled.calendar)
                .map_err(|e| EngineError::Calendar(e.to_string()))?;
            if at <= until {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        Ok(next)
    }

    /// How long until the next timer or schedule falls due, capped at [`IDLE`].
    async fn until_next_due(&self) -> Result<std::time::Duration, EngineError> {
        let now = self.now();
        let horizon = now + chrono::Duration::from_std(IDLE).unwrap_or_default();
        let mut next = self.queue(horizon, 1).await?.first().map(|t| t.due);
        if let Some(at) = self.next_schedule_blocking(horizon).await? {
            next = Some(next.map_or(at, |n| n.min(at)));
        }
        Ok(next
            .map(|at| (at - now).to_std().unwrap_or_default())
            .unwrap_or(IDLE)
            .min(IDLE))
    }

    /// The schedules of the newest version of every workflow.
    fn scheduled(&self) -> Result<Vec<Scheduled>, EngineError> {
        let mut out = Vec::new();
        for workflow in self.workflows() {
            let definition = self.inner.versions.latest(&workflow)?;
            for (id, schedule) in definition.workflow.schedules.iter() {
                let schedule = &schedule.value;
                let calendar_name = schedule.calendar.as_ref().map(|c| c.as_str());
                let (Ok(recurrence), Some(calendar)) = (
                    crate::calendar::Recurrence::of(schedule),
                    definition.calendar_named(calendar_name),
                ) else {
                    // The validator reports both; a definition with errors is never loaded.
                    continue;
                };
                out.push(Scheduled {
                    key: format!("{workflow}/{}", id.as_str()),
                    workflow: workflow.clone(),
                    schedule: id.value.clone(),
                    title: schedule.title.clone(),
                    recurrence,
                    calendar,
                    data: schedule
                        .data
                        .as_ref()
                        .map(|d| d.value.clone())
                        .unwrap_or_default(),
                });
            }
        }
        Ok(out)
    }

    /// Queued timers due at or before `until`, earliest first, claimed for this node for
    /// [`TIMER_LEASE`].
    async fn claim(
        &self,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<QueuedTimer>, EngineError> {
        self.blocking(move |engine| {
            Ok(engine
                .inner
                .store
                .claim_due_timers(until, limit, TIMER_LEASE)?)
        })
        .await
    }

    /// Queued timers due at or before `until`, earliest first.
    async fn queue(
        &self,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<QueuedTimer>, EngineError> {
        self.blocking(move |engine| Ok(engine.inner.store.due_timers(until, limit)?))
            .await
    }
}

fn collect(
    done: Result<Result<Vec<Fired>, EngineError>, tokio::task::JoinError>,
    fired: &mut Vec<Fired>,
    first_error: &mut Option<EngineError>,
) {
    match done {
        Ok(Ok(some)) => fired.extend(some),
        Ok(Err(err)) => {
            first_error.get_or_insert(err);
        }
        Err(_) => {
            first_error.get_or_insert(EngineError::Closed);
        }
    }
}

fn due_of(fired: &Fired) -> DateTime<Utc> {
    match fired {
        Fired::Timer { due, .. } => *due,
        Fired::Schedule { occurrence, .. } => *occurrence,
    }
}
