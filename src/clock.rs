//! Where the engine gets the time: the system clock in production, a virtual clock in tests,
//! scenario runs and simulation.
//!
//! The pure machine never reads a clock; the engine reads one [`Clock`] and passes the time
//! into every step. With a [`VirtualClock`], time stands still until a test moves it, and
//! [`crate::engine::Engine::advance_to`] walks it forward one due timer at a time, so that
//! "advance 8 working days" fires every timer that falls due on the way, at its due time and
//! in due order, exactly as a real week would.

use chrono::{DateTime, Utc};
use std::sync::{Arc, Mutex};

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;

    /// Whether time only moves when told to (a [`VirtualClock`]). The engine's timer loop
    /// does not sleep on a virtual clock; tests drive it with `advance_to`.
    fn is_virtual(&self) -> bool {
        false
    }

    /// Moves a virtual clock to `at` (never backwards). Real clocks ignore it.
    fn set(&self, _at: DateTime<Utc>) {}
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that stands still until moved. Clones share one time.
#[derive(Debug, Clone)]
pub struct VirtualClock {
    now: Arc<Mutex<DateTime<Utc>>>,
}

impl VirtualClock {
    /// A clock showing `start`.
    pub fn new(start: DateTime<Utc>) -> VirtualClock {
        VirtualClock {
            now: Arc::new(Mutex::new(start)),
        }
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn is_virtual(&self) -> bool {
        true
    }

    fn set(&self, at: DateTime<Utc>) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        if at > *now {
            *now = at;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_virtual_clock_moves_only_forward_and_clones_share_it() {
        let start = DateTime::parse_from_rfc3339("2026-03-02T09:00:00+08:00")
            .expect("valid")
            .with_timezone(&Utc);
        let clock = VirtualClock::new(start);
        let shared = clock.clone();
        shared.set(start + chrono::Duration::minutes(15));
        assert_eq!(clock.now(), start + chrono::Duration::minutes(15));
        clock.set(start);
        assert_eq!(clock.now(), start + chrono::Duration::minutes(15));
    }
}
