//! Checking passwords without letting sign-ins take the server's memory or cores.
//!
//! An Argon2id check (the default parameters: 19 MiB, two passes) allocates its memory, works
//! for tens of milliseconds, and frees it. Run on tokio's blocking pool, every concurrent
//! sign-in got a thread and its own 19 MiB, and glibc's per-thread malloc arenas kept most of
//! it after the flood: 64 clients took the server from 19 MiB to 7.3 GiB. So [`Passwords`] is a
//! small pool of its own: a fixed number of threads (the cores), each holding one Argon2
//! memory that it reuses for every check, fed through a bounded queue. When the queue is full
//! a sign-in is turned away at once ([`Busy`]) instead of waiting without bound; memory is the
//! threads' buffers, whatever the load.

use argon2::password_hash::{Output, PasswordHash};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};

/// Every password-checking thread is busy and the queue is full: try again in a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("every password check is busy; try again in a moment")]
pub struct Busy;

/// One check waiting for a thread.
struct Job {
    password: String,
    hash: String,
    answer: tokio::sync::oneshot::Sender<bool>,
}

/// The pool of password-checking threads. Dropping it (with the last `AppState`) ends them.
#[derive(Debug)]
pub struct Passwords {
    jobs: SyncSender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
}

impl Passwords {
    /// Starts `threads` checking threads (at least one) with room for `queue` waiting checks.
    pub fn start(threads: usize, queue: usize) -> Passwords {
        let (jobs, inbox) = sync_channel::<Job>(queue);
        let inbox = Arc::new(Mutex::new(inbox));
        for n in 0..threads.max(1) {
            let inbox = inbox.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("sopflow-password-{n}"))
                .spawn(move || work(&inbox));
            if let Err(err) = spawned {
                tracing::error!(error = ?err.to_string(), "cannot start a password-checking thread");
            }
        }
        Passwords { jobs }
    }

    /// Whether `password` matches the Argon2 `hash` (PHC form), checked on the pool; [`Busy`]
    /// when the queue is full.
    pub async fn check(&self, password: String, hash: String) -> Result<bool, Busy> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job = Job {
            password,
            hash,
            answer,
        };
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => return Err(Busy),
        }
        answered.await.map_err(|_| Busy)
    }
}

/// A checking thread: takes jobs until the pool is dropped, reusing one Argon2 memory.
fn work(inbox: &Mutex<Receiver<Job>>) {
    let mut memory: Vec<Block> = Vec::new();
    loop {
        let job = {
            let inbox = inbox.lock().unwrap_or_else(|e| e.into_inner());
            inbox.recv()
        };
        let Ok(job) = job else {
            return;
        };
        let matches = verify(job.password.as_bytes(), &job.hash, &mut memory);
        let _ = job.answer.send(matches);
    }
}

/// Whether `password` matches `hash` (an Argon2 hash in PHC form), with `memory` as Argon2's
/// working memory: grown to what the hash's parameters need, and kept for the next check.
/// The outputs are compared in constant time ([`Output`]'s equality).
pub fn verify(password: &[u8], hash: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
    ) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(version) => version.unwrap_or_default(),
        Err(_) => return false,
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params);
    if argon2
        .hash_password_into_with_memory(password, salt, &mut out, &mut memory[..blocks])
        .is_err()
    {
        return false;
    }
    Output::new(&out).is_ok_and(|computed| computed == expected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, SaltString};

    fn hashed(password: &str) -> String {
        let salt = SaltString::encode_b64(b"sopflow-test-salt").expect("a salt");
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .expect("hashes")
            .to_string()
    }

    #[test]
    fn a_reused_memory_checks_like_the_crate_does() {
        let hash = hashed("s3cret");
        let mut memory = Vec::new();
        assert!(verify(b"s3cret", &hash, &mut memory));
        let size = memory.len();
        assert!(!verify(b"s3cres", &hash, &mut memory));
        assert!(verify(b"s3cret", &hash, &mut memory));
        assert_eq!(memory.len(), size, "the memory is reused, not grown");
        assert!(!verify(b"s3cret", "not a hash", &mut memory));
    }

    #[tokio::test]
    async fn a_full_queue_is_busy_at_once() {
        let pool = Arc::new(Passwords::start(1, 1));
        let hash = hashed("pw");
        // One thread and room for one more: of eight sign-ins at once, most are turned away
        // at once rather than queued.
        let checks: Vec<_> = (0..8)
            .map(|_| {
                let (pool, hash) = (pool.clone(), hash.clone());
                tokio::spawn(async move { pool.check("pw".into(), hash).await })
            })
            .collect();
        let mut results = Vec::new();
        for check in checks {
            results.push(check.await.expect("the check's task"));
        }
        assert!(results.contains(&Ok(true)), "{results:?}");
        assert!(
            results.iter().filter(|r| **r == Err(Busy)).count() >= 5,
            "{results:?}"
        );
    }
}
