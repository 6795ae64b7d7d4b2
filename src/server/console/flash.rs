//! What a console POST has to say to the page it redirects to (post/redirect/get): a refusal
//! with what the person typed, or a verification's result. Every POST answers with a 303 to
//! a GET page; what that page must show again travels as a random token in its address
//! (`?flash=...`), and the message itself stays here, in memory.
//!
//! Every input is hostile, so the store is bounded three ways: each message lives at most
//! [`LIFETIME`], a session holds at most [`PER_SESSION`] of them and the server at most
//! [`CAPACITY`] (the oldest go first), and a message's texts are cut to [`MAX_TEXT`] bytes.
//! A token is read only by the session that made it; a token that is unknown, expired or
//! another session's reads as nothing. Reading does not consume it, so reloading the page
//! shows the same message until it expires.

use super::audit::Verified;
use super::forms::Typed;
use crate::server::auth::Caller;
use crate::server::problem::Problem;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a message can be shown again.
pub const LIFETIME: Duration = Duration::from_secs(10 * 60);

/// Messages one session may hold at once.
pub const PER_SESSION: usize = 8;

/// Messages the server holds at once.
pub const CAPACITY: usize = 2_000;

/// The most bytes kept of each text a message carries (what was typed, a comment, a detail).
pub const MAX_TEXT: usize = 4 * 1024;

/// The most typed fields a message keeps.
const MAX_FIELDS: usize = 64;

/// What the page after a POST shows.
#[derive(Clone)]
pub enum Flash {
    /// A step refused by the engine: its problem, the event's form and what was typed.
    Refused {
        problem: Problem,
        event: String,
        typed: Typed,
        comment: String,
    },
    /// A start refused: the start form with what was typed.
    StartRefused {
        problem: Problem,
        business_key: String,
        typed: Typed,
    },
    /// The store's verification.
    Verified(Arc<Verified>),
    /// A migration applied: how many instances moved and how many stayed.
    Migrated(crate::engine::MigrationSummary),
    /// A migration refused (a mapping the version does not take, for example).
    MigrationRefused(Problem),
    /// Dead letters queued again: how many.
    Revived(u64),
}

impl Flash {
    /// The message with its texts cut to the store's bounds.
    fn bounded(self) -> Flash {
        match self {
            Flash::Refused {
                problem,
                event,
                typed,
                comment,
            } => Flash::Refused {
                problem: bounded_problem(problem),
                event: cut(event),
                typed: bounded_typed(typed),
                comment: cut(comment),
            },
            Flash::StartRefused {
                problem,
                business_key,
                typed,
            } => Flash::StartRefused {
                problem: bounded_problem(problem),
                business_key: cut(business_key),
                typed: bounded_typed(typed),
            },
            Flash::MigrationRefused(problem) => Flash::MigrationRefused(bounded_problem(problem)),
            kept @ (Flash::Verified(_) | Flash::Migrated(_) | Flash::Revived(_)) => kept,
        }
    }
}

fn bounded_problem(mut problem: Problem) -> Problem {
    problem.code = cut(problem.code);
    problem.title = cut(problem.title);
    problem.detail = cut(problem.detail);
    // Only the message in the reader's language is kept of the other members.
    let message = match problem.extra.remove("message") {
        Some(serde_json::Value::String(message)) => Some(cut(message)),
        _ => None,
    };
    problem.extra.clear();
    problem.explained(message)
}

fn bounded_typed(typed: Typed) -> Typed {
    typed
        .into_iter()
        .take(MAX_FIELDS)
        .map(|(k, v)| (cut(k), cut(v)))
        .collect()
}

/// `text` cut to at most [`MAX_TEXT`] bytes, at a character boundary.
fn cut(mut text: String) -> String {
    if text.len() > MAX_TEXT {
        let mut end = MAX_TEXT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

struct Stored {
    session: [u8; 32],
    made: Instant,
    flash: Flash,
}

/// The messages waiting to be shown (see the module's documentation).
#[derive(Default)]
pub struct Flashes {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    by_token: HashMap<String, Stored>,
    /// Tokens, oldest first.
    order: VecDeque<String>,
}

impl Inner {
    /// Drops expired messages (they are in order of age) and, while over `capacity`, the
    /// oldest.
    fn prune(&mut self, now: Instant, capacity: usize) {
        while let Some(token) = self.order.front() {
            let expired = self
                .by_token
                .get(token)
                .is_none_or(|s| now.duration_since(s.made) >= LIFETIME);
            if !expired && self.order.len() <= capacity {
                break;
            }
            if let Some(token) = self.order.pop_front() {
                self.by_token.remove(&token);
            }
        }
    }
}

/// Which session a message belongs to: a hash of its CSRF secret (which only that session's
/// pages carry), or of the user for a caller without a session.
fn session_of(caller: &Caller) -> [u8; 32] {
    let mut hash = Sha256::new();
    match caller.csrf() {
        Some(csrf) => {
            hash.update(b"session\0");
            hash.update(csrf.as_bytes());
        }
        None => {
            hash.update(b"user\0");
            hash.update(caller.user.id.as_bytes());
        }
    }
    hash.finalize().into()
}

impl Flashes {
    /// Keeps `flash` for `caller`'s session; the token to put in the page's address, or
    /// `None` when no random token could be made (the page then shows no message).
    pub fn put(&self, caller: &Caller, flash: Flash) -> Option<String> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).ok()?;
        let token = hex::encode(bytes);
        let session = session_of(caller);
        let now = Instant::now();
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.prune(now, CAPACITY.saturating_sub(1));
        // A session over its share loses its oldest message.
        let mine: Vec<String> = inner
            .order
            .iter()
            .filter(|t| inner.by_token.get(*t).is_some_and(|s| s.session == session))
            .cloned()
            .collect();
        for old in mine
            .iter()
            .take((mine.len() + 1).saturating_sub(PER_SESSION))
        {
            inner.by_token.remove(old);
            inner.order.retain(|t| t != old);
        }
        inner.by_token.insert(
            token.clone(),
            Stored {
                session,
                made: now,
                flash: flash.bounded(),
            },
        );
        inner.order.push_back(token.clone());
        Some(token)
    }

    /// The message behind `token`, if it is `caller`'s session's and still alive.
    pub fn get(&self, caller: &Caller, token: &str) -> Option<Flash> {
        let session = session_of(caller);
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.prune(Instant::now(), CAPACITY);
        inner
            .by_token
            .get(token)
            .filter(|s| s.session == session)
            .map(|s| s.flash.clone())
    }

    /// How many messages are held.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .by_token
            .len()
    }
}

/// `path` with `?flash=token` (or `&flash=`) added, when there is a token.
pub fn with_token(path: &str, token: Option<String>) -> String {
    match token {
        Some(token) if path.contains('?') => format!("{path}&flash={token}"),
        Some(token) => format!("{path}?flash={token}"),
        None => path.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::auth::{Credential, Users};

    fn caller(user: &str, csrf: &str) -> Caller {
        let users = Users::parse(&format!("users:\n  - id: {user}\n    roles: [clerk]\n"))
            .expect("a users file");
        Caller {
            user: users.get(user).expect("the user").clone(),
            credential: Credential::Session {
                csrf: csrf.to_string(),
            },
            lang: crate::i18n::Lang::Zh,
        }
    }

    fn refused(comment: String) -> Flash {
        Flash::Refused {
            problem: Problem::forbidden("csrf", "x"),
            event: "submit".into(),
            typed: Typed::new(),
            comment,
        }
    }

    #[test]
    fn a_message_is_its_sessions_only_and_bounded() {
        let flashes = Flashes::default();
        let wang = caller("wang", "s1");
        let other = caller("wang", "s2");
        let token = flashes
            .put(&wang, refused("a".repeat(MAX_TEXT * 3)))
            .expect("a token");
        assert!(flashes.get(&other, &token).is_none(), "another session");
        assert!(flashes.get(&wang, "00").is_none(), "an unknown token");
        match flashes.get(&wang, &token) {
            Some(Flash::Refused { comment, .. }) => assert_eq!(comment.len(), MAX_TEXT),
            _ => panic!("the message is kept"),
        }
        // Read twice: a reload shows it again.
        assert!(flashes.get(&wang, &token).is_some());
        // One session cannot hold more than its share.
        let tokens: Vec<String> = (0..PER_SESSION * 3)
            .filter_map(|_| flashes.put(&wang, refused(String::new())))
            .collect();
        assert_eq!(flashes.len(), PER_SESSION);
        assert!(
            flashes.get(&wang, &token).is_none(),
            "the oldest went first"
        );
        assert!(flashes.get(&wang, tokens.last().expect("some")).is_some());
        // Nor can the server hold more than its capacity.
        for i in 0..CAPACITY + 10 {
            flashes.put(&caller("x", &format!("s{i}")), refused(String::new()));
        }
        assert_eq!(flashes.len(), CAPACITY);
    }
}
