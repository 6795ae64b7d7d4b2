//! The delivery loop: routes committed steps into the feed, sends what is due, and records
//! each attempt.
//!
//! Each round routes every committed outbox record (in batches, [`route`](super::route)),
//! then claims the deliveries due (the first of each channel and instance, for a lease) and
//! sends them side by side, at most [`Settings::parallel`] at once. A message that arrives is
//! removed; one that fails is tried again after the channels file's backoff (or the wait the
//! receiver asked for), and after its last attempt, or at once when trying again cannot help
//! (a refused request, a channel not configured), it becomes a dead letter that an operator
//! revives (`sopflow deliveries retry`, the console's 投递 page).
//!
//! **At least once.** A message is removed only after its channel answered that it arrived.
//! A process killed mid-send leaves the claim to run out ([`Settings::lease`]) and the
//! message to be sent again, with the same id, by whichever process claims it next: a
//! receiver drops an id it has seen. Nothing is sent for a step that was not committed, since
//! only committed outbox records are routed.
//!
//! A round with work is followed at once by the next; an idle loop waits for this process's
//! engine to commit a step, or at most [`Settings::interval`] (100 ms: steps committed by other
//! processes sharing the store).

use super::{Channels, Failure, Message};
use crate::engine::{EngineError, Outbox, Router, Tried};
use crate::store::{Delivery, DeliveryKey};
use chrono::Utc;
use std::sync::Arc;
use std::time::Duration;

/// What happened to one attempt, for metrics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Attempt {
    /// It arrived, this long after its step was committed.
    Sent {
        /// From the step's commit to the channel's answer.
        lag: Duration,
    },
    /// It failed and will be tried again.
    Retried,
    /// It failed and became a dead letter.
    Dead,
}

/// Told of every attempt: the channel's id (only a configured one; `unknown` otherwise, so
/// that metric labels stay a closed set) and what happened.
pub type Observer = Arc<dyn Fn(&str, Attempt) + Send + Sync>;

/// How the loop paces itself.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// How often an idle loop looks for work.
    pub interval: Duration,
    /// Steps routed per store transaction.
    pub route_batch: usize,
    /// Messages sent at once.
    pub parallel: usize,
    /// How long a claimed message is kept from other processes: longer than any send takes.
    pub lease: Duration,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            interval: Duration::from_millis(100),
            route_batch: 500,
            parallel: 128,
            lease: Duration::from_secs(300),
        }
    }
}

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    /// Steps routed into the feed.
    pub routed: usize,
    /// Messages that arrived.
    pub sent: usize,
    /// Attempts that failed (tried again later, or dead letters).
    pub failed: usize,
}

/// The delivery loop of one process.
#[derive(Clone)]
pub struct Worker {
    outbox: Outbox,
    channels: Arc<Channels>,
    router: Router,
    observer: Option<Observer>,
    settings: Settings,
}

impl Worker {
    /// A loop over `outbox` sending by `channels`.
    pub fn new(outbox: Outbox, channels: Arc<Channels>) -> Worker {
        Worker {
            router: super::route::router(channels.clone()),
            outbox,
            channels,
            observer: None,
            settings: Settings::default(),
        }
    }

    /// Tells `observer` of every attempt.
    pub fn observe(mut self, observer: Observer) -> Worker {
        self.observer = Some(observer);
        self
    }

    /// Paces the loop with `settings`.
    pub fn settings(mut self, settings: Settings) -> Worker {
        self.settings = settings;
        self
    }

    /// Runs rounds until `stop` completes; a store error is logged, and the loop waits a
    /// little longer before the next round.
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        let mut pause = self.settings.interval;
        loop {
            let round = tokio::select! {
                round = self.round() => round,
                () = &mut stop => return,
            };
            match round {
                Ok(round) if round.routed + round.sent + round.failed > 0 => {
                    pause = self.settings.interval;
                    continue;
                }
                Ok(_) => pause = self.settings.interval,
                Err(err) => {
                    tracing::warn!(error = %err, "delivery round failed");
                    pause = (pause * 2).min(Duration::from_secs(10));
                }
            }
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = self.outbox.committed() => {}
                () = &mut stop => return,
            }
        }
    }

    /// One round: routes every committed step, then sends the deliveries due now.
    pub async fn round(&self) -> Result<Round, EngineError> {
        let mut round = Round::default();
        loop {
            let routed = self
                .outbox
                .route(self.settings.route_batch, self.router.clone())
                .await?;
            round.routed += routed;
            if routed < self.settings.route_batch {
                break;
            }
        }
        let due = self
            .outbox
            .due(self.settings.parallel, self.settings.lease)
            .await?;
        let mut sending = tokio::task::JoinSet::new();
        for delivery in due {
            let worker = self.clone();
            sending.spawn(async move { worker.send(delivery).await });
        }
        let mut attempts = Vec::new();
        while let Some(done) = sending.join_next().await {
            match done {
                Ok(attempt) => {
                    if attempt.1 == Tried::Arrived {
                        round.sent += 1;
                    } else {
                        round.failed += 1;
                    }
                    attempts.push(attempt);
                }
                Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
                Err(_) => return Err(EngineError::Closed),
            }
        }
        self.outbox.record(attempts).await?;
        Ok(round)
    }

    /// Sends one message: what became of it, to be recorded.
    async fn send(&self, delivery: Delivery) -> (DeliveryKey, Tried) {
        let key = delivery.key.clone();
        let channel = self.channels.get(&key.channel);
        let label = channel.map_or("unknown", |c| c.id.as_str());
        let message: Result<Message, _> = serde_json::from_slice(&delivery.payload);
        let result = match (&message, channel) {
            (Err(err), _) => Err(Failure::Permanent {
                reason: format!("the stored message cannot be read: {err}"),
            }),
            (Ok(_), None) => Err(Failure::Permanent {
                reason: format!(
                    "no channel `{}` in the channels file (config/channels.yaml): add it, restart the server, then retry this message",
                    key.channel
                ),
            }),
            (Ok(message), Some(channel)) => channel.send(message, Utc::now()).await,
        };
        let now = self.outbox.now();
        match result {
            Ok(()) => {
                let lag = message
                    .map(|m| (now - m.at).to_std().unwrap_or_default())
                    .unwrap_or_default();
                self.tell(label, Attempt::Sent { lag });
                (key, Tried::Arrived)
            }
            Err(failure) => {
                let attempts = delivery.attempts.saturating_add(1);
                let wait = match &failure {
                    Failure::Retry { after, .. } => {
                        self.channels.backoff.next(attempts, seed(&key), *after)
                    }
                    Failure::Permanent { .. } => None,
                };
                let retry_at = wait
                    .and_then(|w| chrono::Duration::from_std(w).ok())
                    .map(|w| now + w);
                let reason = match failure {
                    Failure::Retry { reason, .. } | Failure::Permanent { reason } => reason,
                };
                tracing::info!(
                    delivery = %key,
                    attempts,
                    error = %reason.escape_debug(),
                    dead = retry_at.is_none(),
                    "delivery failed"
                );
                self.tell(
                    label,
                    if retry_at.is_some() {
                        Attempt::Retried
                    } else {
                        Attempt::Dead
                    },
                );
                (
                    key,
                    Tried::Failed {
                        error: reason,
                        retry_at,
                    },
                )
            }
        }
    }

    fn tell(&self, channel: &str, attempt: Attempt) {
        if let Some(observer) = &self.observer {
            observer(channel, attempt);
        }
    }
}

/// The jitter's seed for a message: the same on every node and every attempt.
fn seed(key: &crate::store::DeliveryKey) -> u64 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(key.to_string().as_bytes());
    u64::from_be_bytes(digest[..8].try_into().unwrap_or([0; 8]))
}
