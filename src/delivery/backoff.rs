//! When to try a message again: exponential backoff with jitter, and when to give up.

use serde::Deserialize;
use std::time::Duration;

/// How a failed message is tried again: after `first_retry`, then twice as long each time up
/// to `max_retry`, each wait shortened by up to a fifth so that messages which failed together
/// (a receiver down for a minute) do not all come back at once. After `max_attempts` attempts
/// in all, the message goes to the dead letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backoff {
    /// Attempts in all, the first one included, before a message becomes a dead letter.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// The wait before the second attempt, in seconds.
    #[serde(
        default = "default_first",
        rename = "first_retry_seconds",
        with = "seconds"
    )]
    pub first_retry: Duration,
    /// The longest wait between two attempts, in seconds.
    #[serde(
        default = "default_max",
        rename = "max_retry_seconds",
        with = "seconds"
    )]
    pub max_retry: Duration,
}

fn default_attempts() -> u32 {
    10
}

fn default_first() -> Duration {
    Duration::from_secs(5)
}

fn default_max() -> Duration {
    Duration::from_secs(60 * 60)
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            max_attempts: default_attempts(),
            first_retry: default_first(),
            max_retry: default_max(),
        }
    }
}

impl Backoff {
    /// The wait after the `attempts`-th failed attempt (1 after the first), or `None` when the
    /// message has had all its attempts. `seed` (the message's id, hashed) picks the jitter,
    /// so the same message waits the same on every node. A wait the receiver asked for
    /// (`asked`, from `Retry-After`) is honoured up to `max_retry`.
    pub fn next(&self, attempts: u32, seed: u64, asked: Option<Duration>) -> Option<Duration> {
        if attempts >= self.max_attempts {
            return None;
        }
        let doublings = attempts.saturating_sub(1).min(32);
        let full = self
            .first_retry
            .saturating_mul(1u32 << doublings.min(31))
            .min(self.max_retry);
        // Shorten by 0-20%, picked by the seed and the attempt.
        let mixed = seed
            .wrapping_add(u64::from(attempts))
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let cut = full.mul_f64((mixed >> 11) as f64 / (1u64 << 53) as f64 * 0.2);
        let wait = full.saturating_sub(cut);
        Some(match asked {
            Some(asked) => asked.min(self.max_retry).max(wait),
            None => wait,
        })
    }
}

mod seconds {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let seconds = u64::deserialize(d)?;
        if seconds == 0 || seconds > 7 * 24 * 60 * 60 {
            return Err(serde::de::Error::custom(
                "a wait is between 1 second and 7 days (604800 seconds)",
            ));
        }
        Ok(Duration::from_secs(seconds))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_limit_with_at_most_a_fifth_off_and_then_stop() {
        let backoff = Backoff {
            max_attempts: 12,
            first_retry: Duration::from_secs(5),
            max_retry: Duration::from_secs(600),
        };
        for seed in [0, 1, 42, u64::MAX] {
            let mut last = Duration::ZERO;
            for attempt in 1..12 {
                let full = Duration::from_secs((5u64 << (attempt - 1)).min(600));
                let wait = backoff.next(attempt, seed, None).expect("attempts left");
                assert!(
                    wait <= full && wait >= full.mul_f64(0.8),
                    "{attempt}: {wait:?}"
                );
                assert!(wait.as_secs_f64() >= last.as_secs_f64() * 0.8 - 1e-9);
                last = wait;
            }
            assert_eq!(
                backoff.next(12, seed, None),
                None,
                "dead letter after 12 attempts"
            );
        }
    }

    #[test]
    fn the_same_message_waits_the_same_and_different_ones_spread() {
        let backoff = Backoff::default();
        assert_eq!(backoff.next(3, 7, None), backoff.next(3, 7, None));
        let waits: std::collections::BTreeSet<_> =
            (0..50).map(|seed| backoff.next(3, seed, None)).collect();
        assert!(waits.len() > 10, "jitter spreads retries: {waits:?}");
    }

    #[test]
    fn a_wait_the_receiver_asks_for_is_kept_within_the_limit() {
        let backoff = Backoff::default();
        let asked = backoff
            .next(1, 0, Some(Duration::from_secs(120)))
            .expect("left");
        assert_eq!(asked, Duration::from_secs(120));
        let capped = backoff
            .next(1, 0, Some(Duration::from_secs(86_400)))
            .expect("left");
        assert_eq!(capped, backoff.max_retry);
    }
}
