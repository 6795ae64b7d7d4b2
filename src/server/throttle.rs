//! Throttling sign-in attempts, per user name and per client address, with `governor`'s
//! keyed GCRA limiters: a burst, then one attempt more per interval ([`SignInLimits`]).
//!
//! Attempts are checked before any password is, so a throttled attempt costs nothing. Every
//! attempt that reaches the password check counts (governor cannot give a cell back); with
//! console sessions lasting hours, the attempts that add up are the failed ones.
//!
//! Keys come from the request, so they must not grow the limiters without bound: a user name
//! or address is hashed (with a per-process random key, so that nobody can aim at another's
//! bucket) into one of [`BUCKETS`] buckets. The key space is bounded by construction, and
//! buckets back at a fresh state are pruned every `PRUNE_EVERY` checks.

use super::limits::SignInLimits;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How many buckets each limiter has at most.
pub const BUCKETS: u64 = 1 << 16;

/// How often (in checks) buckets at a fresh state are dropped.
const PRUNE_EVERY: u64 = 1024;

/// The sign-in throttles.
#[derive(Debug)]
pub struct SignInThrottle {
    users: DefaultKeyedRateLimiter<u16>,
    clients: DefaultKeyedRateLimiter<u16>,
    hasher: RandomState,
    checks: AtomicU64,
}

/// Too many attempts: try again after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    /// When the throttle lets one more attempt through for this name or address.
    pub(crate) retry_after: Duration,
}

impl Throttled {
    /// Whole seconds to wait, at least one (for `Retry-After`).
    pub fn seconds(&self) -> u64 {
        self.retry_after.as_secs() + u64::from(self.retry_after.subsec_nanos() > 0)
    }
}

fn quota(burst: u32, every: Duration) -> Quota {
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(every)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst)
}

impl SignInThrottle {
    /// Empty buckets, filled at the rates `limits` give per user name and per address.
    pub(crate) fn new(limits: &SignInLimits) -> SignInThrottle {
        SignInThrottle {
            users: DefaultKeyedRateLimiter::keyed(quota(
                limits.per_user_burst,
                limits.per_user_every,
            )),
            clients: DefaultKeyedRateLimiter::keyed(quota(
                limits.per_client_burst,
                limits.per_client_every,
            )),
            hasher: RandomState::new(),
            checks: AtomicU64::new(0),
        }
    }

    /// Counts an attempt to sign in as `user` from `client`, or says how long to wait. The
    /// address is checked first, so that one client spraying user names is stopped by its
    /// own limit.
    pub fn attempt(&self, user: &str, client: IpAddr) -> Result<(), Throttled> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.users.retain_recent();
            self.clients.retain_recent();
        }
        let now = DefaultClock::default().now();
        let client_key = self.bucket(&client_key(client));
        self.clients
            .check_key(&client_key)
            .map_err(|not_until| Throttled {
                retry_after: not_until.wait_time_from(now),
            })?;
        let user_key = self.bucket(&user.trim().to_lowercase());
        self.users
            .check_key(&user_key)
            .map_err(|not_until| Throttled {
                retry_after: not_until.wait_time_from(now),
            })
    }

    /// How many buckets are in use (for tests: it never exceeds [`BUCKETS`] per limiter).
    pub fn buckets(&self) -> usize {
        self.users.len() + self.clients.len()
    }

    fn bucket<K: std::hash::Hash + ?Sized>(&self, key: &K) -> u16 {
        (self.hasher.hash_one(key) % BUCKETS) as u16
    }
}

/// An address as throttled: IPv4 whole (an IPv4-mapped IPv6 address as its IPv4), IPv6 by
/// its /64, which one subscriber usually has whole.
pub(crate) fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let segments = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(
                    segments[0],
                    segments[1],
                    segments[2],
                    segments[3],
                    0,
                    0,
                    0,
                    0,
                ))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_user: u32, per_client: u32) -> SignInLimits {
        SignInLimits {
            per_user_burst: per_user,
            per_user_every: Duration::from_secs(60),
            per_client_burst: per_client,
            per_client_every: Duration::from_secs(60),
            ..SignInLimits::default()
        }
    }

    #[test]
    fn a_user_and_an_address_each_get_their_burst() {
        let throttle = SignInThrottle::new(&limits(3, 100));
        let here: IpAddr = "10.0.0.1".parse().expect("an address");
        for _ in 0..3 {
            assert_eq!(throttle.attempt("li", here), Ok(()));
        }
        let refused = throttle.attempt(" LI ", here).expect_err("throttled");
        assert!(
            refused.seconds() >= 1 && refused.seconds() <= 60,
            "{refused:?}"
        );
        assert_eq!(throttle.attempt("wang", here), Ok(()), "another user");

        let throttle = SignInThrottle::new(&limits(100, 2));
        let a: IpAddr = "2001:db8:1:2::1".parse().expect("an address");
        let b: IpAddr = "2001:db8:1:2::ffff".parse().expect("the same /64");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("another /64");
        assert_eq!(throttle.attempt("u1", a), Ok(()));
        assert_eq!(throttle.attempt("u2", b), Ok(()));
        assert!(throttle.attempt("u3", a).is_err(), "the /64 is one client");
        assert_eq!(throttle.attempt("u4", c), Ok(()));
    }

    #[test]
    fn made_up_names_and_addresses_stay_within_the_buckets() {
        let throttle = SignInThrottle::new(&limits(1, 1));
        for n in 0..200_000u32 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(n));
            let _ = throttle.attempt(&format!("user-{n}"), ip);
        }
        assert!(
            throttle.buckets() <= 2 * BUCKETS as usize,
            "{}",
            throttle.buckets()
        );
    }
}
