//! The server's limits, in one place: how long a client may take to send a request, how many
//! connections it may hold, and how many sign-ins it may try. [`Limits::default`] is what
//! `sopflow serve` runs with unless its flags say otherwise (README, "Limits").
//!
//! They exist because a server must not let a slow or hostile client use up what everyone
//! shares: connections, memory, the cores that check passwords.

use std::time::Duration;

/// Every limit the server enforces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// How long a client may take to send a request's head (its request line and headers).
    /// It also closes a kept-alive connection that sends no new request for as long.
    pub header_timeout: Duration,
    /// How long a client may take to send a request's whole body, from when the server
    /// starts reading it.
    pub body_timeout: Duration,
    /// Open connections in all; one more is answered 503 and closed.
    pub max_connections: usize,
    /// Open connections from one client address; one more is answered 503 and closed.
    pub max_connections_per_client: usize,
    /// How many sign-ins may be tried, and how many passwords checked at once.
    pub signin: SignInLimits,
    /// The most plans or outcomes a migration's answer lists (its summary counts them all).
    pub migration_listed: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: 1024,
            max_connections_per_client: 128,
            signin: SignInLimits::default(),
            migration_listed: 500,
        }
    }
}

/// How sign-ins are bounded: password checks (Argon2, 19 MiB and tens of milliseconds each)
/// run on a few threads of their own with a short queue, and failed attempts are throttled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInLimits {
    /// Threads that check passwords (the cores, by default); each keeps its Argon2 memory.
    pub hashing_threads: usize,
    /// Sign-ins that may wait for a thread; one more is answered 429 `signin_busy` at once.
    pub queue: usize,
    /// Attempts one user name may make at once, then one more per `per_user_every`.
    pub per_user_burst: u32,
    /// How often a user name that has used its burst earns one more attempt: the time its
    /// owner waits once an attack on their name stops.
    pub per_user_every: Duration,
    /// Attempts one client address (an IPv6 /64) may make at once, then one more per
    /// `per_client_every`.
    pub per_client_burst: u32,
    /// How often a client address that has used its burst earns one more attempt.
    pub per_client_every: Duration,
}

impl Default for SignInLimits {
    fn default() -> SignInLimits {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        SignInLimits {
            hashing_threads: cores,
            queue: 4 * cores,
            per_user_burst: 10,
            per_user_every: Duration::from_secs(60),
            per_client_burst: 30,
            per_client_every: Duration::from_secs(2),
        }
    }
}
