//! Who is calling: users and their roles from a file, API tokens and passwords checked against
//! hashes, console sessions, and the [`Caller`] every handler that needs a person takes.
//!
//! The actor and roles of a step always come from here, never from a request body. Tokens are
//! random and long, so a SHA-256 of them is enough to store; passwords are chosen by people,
//! so they are stored as Argon2id hashes, checked on the server's own pool
//! ([`super::passwords`]).
//!
//! Demo users (`demo: true`, whose passwords and tokens are public) are a development mode,
//! and an explicit one: a users file may have them only if it declares itself a demo set
//! (`demo_set: true` at its top), which `sopflow serve` announces loudly at start-up. Such a
//! server listens only on a loopback address, and a demo user is accepted only from this
//! machine ([`from_this_machine`]): a loopback peer that sent no proxy header. A reverse proxy
//! on the same host connects from loopback for every client, so a request it forwards (it
//! adds `Forwarded`, `X-Forwarded-For`...) never counts as local.
//!
//! The sign-in form carries a token ([`LoginForms`]) bound to a cookie the form's page set, so
//! that another site cannot sign a browser in to an account of its choosing (login CSRF).

use super::AppState;
use super::problem::Problem;
use crate::definition::roles::RoleList;
use crate::i18n::Lang;
use crate::machine::Actor;
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The name of the console's session cookie.
pub const SESSION_COOKIE: &str = "sopflow_session";

/// How long a console session lasts without use.
const SESSION_IDLE: Duration = Duration::from_secs(12 * 60 * 60);

/// Why the users file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The file could not be read at all (missing, unreadable).
    #[error("cannot read the users file {path}: {source}")]
    Read {
        /// The users file, as given (`--users`).
        path: String,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The file was read but cannot be trusted as it is: not the format, a token stored in
    /// the clear, a demo user outside a demo set, a user listed twice...
    #[error("{path}: {message}")]
    Invalid {
        /// The users file, as given (`--users`).
        path: String,
        /// What is wrong and how to put it right, for whoever edits the file.
        message: String,
    },
}

/// The users file: `users:` a list of people with their roles and credentials, and
/// `demo_set: true` when it is a demo set (the only kind of file that may have demo users).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    #[serde(default)]
    demo_set: bool,
    users: Vec<UserSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserSpec {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    /// An Argon2 hash in PHC form (`sopflow user hash-password` makes one).
    #[serde(default)]
    password: Option<String>,
    /// SHA-256 hashes of API tokens, `sha256:<hex>` (`sopflow user new-token` makes one).
    #[serde(default)]
    tokens: Vec<String>,
    /// A demo user (its credentials are public): only in a file that declares `demo_set`,
    /// and accepted only from this machine.
    #[serde(default)]
    demo: bool,
}

/// A person (or an app) who can call the server.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct User {
    /// The id that signs in and that the history records as the actor of every step this
    /// user takes (`li`).
    pub id: String,
    /// The name shown in the console (the id when absent).
    pub name: String,
    /// The roles this user acts in, from the organisation's role list (`order_dept`): what
    /// the workflows' steps, starts and reads are granted to.
    pub roles: Vec<String>,
    /// A demo user, whose password and token are public: accepted only from this machine.
    pub demo: bool,
    #[serde(skip)]
    password: Option<String>,
}

impl User {
    /// The actor of the steps this user takes.
    pub fn actor(&self) -> Actor {
        Actor::new(&self.id, &self.roles)
    }

    /// Whether the user holds `role`: how the server's own roles (`auditor`,
    /// `process_owner`) are checked; workflow roles are the engine's to check.
    pub(crate) fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

/// Every user, found by id or by token hash.
#[derive(Debug, Default)]
pub struct Users {
    by_id: BTreeMap<String, Arc<User>>,
    by_token: HashMap<String, String>,
    /// The file declares itself a demo set (`demo_set: true`): development mode.
    demo_set: bool,
}

impl Users {
    /// The roles users hold that the organisation's role list does not have, each as
    /// (user, role, hint). A misspelt role would otherwise grant nothing, silently.
    pub fn unlisted_roles(&self, list: &RoleList) -> Vec<(String, String, crate::i18n::Text)> {
        let mut out = Vec::new();
        for user in self.by_id.values() {
            for role in &user.roles {
                if list.title(role).is_none() {
                    out.push((
                        user.id.clone(),
                        role.clone(),
                        crate::validate::roles::missing_hint(list, role),
                    ));
                }
            }
        }
        out
    }

    /// Reads a users file.
    pub fn load(path: &Path) -> Result<Users, AuthError> {
        let text = std::fs::read_to_string(path).map_err(|source| AuthError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Users::parse(&text).map_err(|message| AuthError::Invalid {
            path: path.display().to_string(),
            message,
        })
    }

    /// Parses the text of a users file.
    pub fn parse(text: &str) -> Result<Users, String> {
        let file: UsersFile = serde_saphyr::from_str(text).map_err(|e| {
            format!("{e}; the file is `users:` followed by a list of `id`, `name`, `roles`, `password`, `tokens`, `demo` (and `demo_set: true` above it for a demo set)")
        })?;
        let mut users = Users {
            demo_set: file.demo_set,
            ..Users::default()
        };
        for spec in file.users {
            if spec.demo && !file.demo_set {
                return Err(format!(
                    "user `{}` is a demo user (`demo: true`), whose password and token are public, but the file does not declare itself a demo set; a demo set is for trying sopflow on this machine only: put `demo_set: true` at the top of the file to run in that development mode (loopback only, never behind a proxy), or remove the demo users and give real password hashes (`sopflow user hash-password`)",
                    spec.id
                ));
            }
            if spec.id.trim().is_empty() || spec.id == "system" {
                return Err(format!(
                    "user id `{}` cannot be used; ids are non-empty and `system` is the engine's own",
                    spec.id
                ));
            }
            if let Some(hash) = &spec.password {
                PasswordHash::new(hash).map_err(|e| {
                    format!(
                        "user `{}`: the password is not an Argon2 hash ({e}); make one with `sopflow user hash-password`",
                        spec.id
                    )
                })?;
            }
            for token in &spec.tokens {
                let Some(hex) = token.strip_prefix("sha256:") else {
                    return Err(format!(
                        "user `{}`: a token must be stored as `sha256:<hex>`, never in the clear; make one with `sopflow user new-token`",
                        spec.id
                    ));
                };
                if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(format!(
                        "user `{}`: `{token}` is not a SHA-256 hash (64 hex digits)",
                        spec.id
                    ));
                }
                if let Some(other) = users
                    .by_token
                    .insert(hex.to_ascii_lowercase(), spec.id.clone())
                {
                    return Err(format!("users `{other}` and `{}` share a token", spec.id));
                }
            }
            let user = User {
                name: spec.name.unwrap_or_else(|| spec.id.clone()),
                id: spec.id.clone(),
                roles: spec.roles,
                demo: spec.demo,
                password: spec.password,
            };
            if users
                .by_id
                .insert(spec.id.clone(), Arc::new(user))
                .is_some()
            {
                return Err(format!("user `{}` is listed twice", spec.id));
            }
        }
        Ok(users)
    }

    /// The user with this id: whose session a cookie holds, and whose name the console shows
    /// for an actor in a history.
    pub fn get(&self, id: &str) -> Option<&Arc<User>> {
        self.by_id.get(id)
    }

    /// Every user, by id, for the sign-in page's list of demo users.
    pub(crate) fn all(&self) -> impl Iterator<Item = &Arc<User>> {
        self.by_id.values()
    }

    /// Whether the file is a demo set (development mode: loopback only). Only a demo set may
    /// have demo users, whose credentials are public.
    pub fn has_demo(&self) -> bool {
        self.demo_set || self.by_id.values().any(|u| u.demo)
    }

    /// The demo users' ids.
    pub fn demo_ids(&self) -> Vec<String> {
        self.by_id
            .values()
            .filter(|u| u.demo)
            .map(|u| u.id.clone())
            .collect()
    }

    /// The user a bearer token belongs to.
    pub fn by_token(&self, token: &str) -> Option<&Arc<User>> {
        let hash = token_hash(token);
        let hex = hash.strip_prefix("sha256:").unwrap_or(&hash);
        self.by_token.get(hex).and_then(|id| self.by_id.get(id))
    }

    /// What signing in as `id` is checked against: the user, if known and with a password,
    /// and the hash to check (a hash nobody matches otherwise, so that an unknown user costs
    /// as much to refuse as a wrong password).
    pub fn credentials(&self, id: &str) -> (Option<&Arc<User>>, &str) {
        match self.by_id.get(id) {
            Some(user) => match user.password.as_deref() {
                Some(hash) => (Some(user), hash),
                None => (None, DUMMY_HASH),
            },
            None => (None, DUMMY_HASH),
        }
    }

    /// The user whose password this is, checked here (the server checks on its pool
    /// instead). Unknown users cost the same as known ones.
    pub fn sign_in(&self, id: &str, password: &str) -> Option<&Arc<User>> {
        let (user, hash) = self.credentials(id);
        let ok = super::passwords::verify(password.as_bytes(), hash, &mut Vec::new());
        if ok { user } else { None }
    }
}

/// An Argon2 hash of a password nobody has, so that an unknown user takes as long to refuse.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29wZmxvdy1kdW1teQ$2mHBRB8ZkQ0yV8yHc0C8q4zq0mQfJ0h6t3v9l2mS0y4";

/// An Argon2id hash of a password, in PHC form, for the users file.
pub fn hash_password(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| format!("no random numbers: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// The stored form of a token: `sha256:<hex>`.
pub fn token_hash(token: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(token.as_bytes())))
}

/// A new random token (`sf_` and 64 hex digits).
pub fn new_token() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no random numbers: {e}"))?;
    Ok(format!("sf_{}", hex::encode(bytes)))
}

/// A console session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The id of the user signed in; the user's roles are read from the users file on
    /// every request, never kept in the session.
    pub user: String,
    /// Sent back in every form of the console; a POST without it is refused.
    pub csrf: String,
    last_used: Instant,
}

/// The console's sessions, in memory: a restart signs everyone out.
#[derive(Debug, Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// Opens a session; returns the cookie value.
    pub fn open(&self, user: &str) -> Result<String, String> {
        let cookie = new_token()?;
        let csrf = new_token()?;
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, s| s.last_used.elapsed() < SESSION_IDLE);
        map.insert(
            token_hash(&cookie),
            Session {
                user: user.to_string(),
                csrf,
                last_used: Instant::now(),
            },
        );
        Ok(cookie)
    }

    /// The live session of a cookie value, touched.
    pub fn get(&self, cookie: &str) -> Option<Session> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let key = token_hash(cookie);
        let session = map.get_mut(&key)?;
        if session.last_used.elapsed() >= SESSION_IDLE {
            map.remove(&key);
            return None;
        }
        session.last_used = Instant::now();
        Some(session.clone())
    }

    /// Ends the session of a cookie value (signing out): the cookie no longer signs anyone
    /// in, even if a copy of it is replayed.
    pub(crate) fn close(&self, cookie: &str) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&token_hash(cookie));
    }
}

/// How a caller proved who they are.
#[derive(Debug, Clone)]
pub enum Credential {
    /// A bearer token from the users file (an app, a script, the CLI's `--server`): no
    /// cookie, so no cross-site forgery and no CSRF token.
    Token,
    /// A console session, with its CSRF token.
    Session {
        /// The token the session's forms carry, which a forged cross-site post cannot know.
        csrf: String,
    },
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Who is calling, as the users file describes them: the actor of their steps.
    pub user: Arc<User>,
    /// How they proved it; a session caller must also send the session's CSRF token to act.
    pub credential: Credential,
    /// The language the caller reads ([`request_lang`]).
    pub lang: Lang,
}

impl Caller {
    /// The actor of the caller's steps and reads: their id and every role they hold.
    pub(crate) fn actor(&self) -> Actor {
        self.user.actor()
    }

    /// The session's CSRF token, for the console's forms.
    pub fn csrf(&self) -> Option<&str> {
        match &self.credential {
            Credential::Session { csrf } => Some(csrf),
            Credential::Token => None,
        }
    }

    /// Whether `sent` is this session's CSRF token (false for a token caller, who has none),
    /// compared in time that depends only on the lengths.
    pub fn csrf_matches(&self, sent: &[u8]) -> bool {
        self.csrf().is_some_and(|expected| {
            let expected = expected.as_bytes();
            expected.len() == sent.len()
                && expected
                    .iter()
                    .zip(sent)
                    .fold(0u8, |acc, (x, y)| acc | (x ^ y))
                    == 0
        })
    }
}

/// The value of a cookie in a request.
pub fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    header_cookie(&parts.headers, name)
}

/// The value of a cookie in a request's headers.
fn header_cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// The console's language switch: a cookie that outweighs `Accept-Language`.
pub const LANG_COOKIE: &str = "sopflow_lang";

/// The language a request asks for: the console's switch (the [`LANG_COOKIE`]), else the
/// browser's `Accept-Language`, else Chinese, the language of the manuals and the site.
pub fn request_lang(parts: &Parts) -> Lang {
    headers_lang(&parts.headers)
}

/// [`request_lang`] from the headers alone.
pub fn headers_lang(headers: &axum::http::HeaderMap) -> Lang {
    asked_lang(headers).unwrap_or_default()
}

/// The language a request names, if it names one sopflow speaks: the console's switch (the
/// [`LANG_COOKIE`]), else `Accept-Language`. What a program reads (the API's diagnostics)
/// stays English when the request names none.
pub fn asked_lang(headers: &axum::http::HeaderMap) -> Option<Lang> {
    header_cookie(headers, LANG_COOKIE)
        .and_then(Lang::parse)
        .or_else(|| {
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .and_then(Lang::from_accept_language)
        })
}

/// Headers that a proxy adds to what it forwards (standard and common ones).
pub const PROXY_HEADERS: [&str; 10] = [
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
    "x-client-ip",
    "true-client-ip",
    "cf-connecting-ip",
    "x-cluster-client-ip",
    "via",
];

/// Whether the request carries a header that a proxy adds: it was forwarded for someone else.
pub fn proxied(parts: &Parts) -> bool {
    PROXY_HEADERS
        .iter()
        .any(|name| parts.headers.contains_key(*name))
}

/// The address of the client's connection (unspecified when unknown, as in a test harness).
pub fn peer(parts: &Parts) -> std::net::IpAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(std::net::Ipv4Addr::UNSPECIFIED.into(), |info| info.0.ip())
}

/// Whether the request came from this machine: a loopback peer, and no proxy header (a proxy
/// on this host connects from loopback for everyone). Unknown peers (a server without
/// connection info, such as a test harness) are not.
pub fn from_this_machine(parts: &Parts) -> bool {
    peer(parts).is_loopback() && !proxied(parts)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, Problem> {
        let users = state.users();
        let found = if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
            let token = value
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim);
            let Some(token) = token else {
                return Err(state.refuse_auth(
                    parts,
                    "malformed",
                    Problem::unauthenticated("the Authorization header must be `Bearer <token>`"),
                ));
            };
            match users.by_token(token) {
                Some(user) => Caller {
                    user: user.clone(),
                    credential: Credential::Token,
                    lang: request_lang(parts),
                },
                None => {
                    return Err(state.refuse_auth(
                        parts,
                        "bad_token",
                        Problem::unauthenticated(
                            "the token matches no user; ask an administrator for a token (`sopflow user new-token`)",
                        ),
                    ));
                }
            }
        } else if let Some(cookie) = cookie(parts, SESSION_COOKIE) {
            let session = state.sessions.get(cookie);
            let user = session.as_ref().and_then(|s| users.get(&s.user).cloned());
            match (session, user) {
                (Some(session), Some(user)) => Caller {
                    user,
                    credential: Credential::Session { csrf: session.csrf },
                    lang: request_lang(parts),
                },
                _ => {
                    return Err(state.refuse_auth(
                        parts,
                        "expired_session",
                        Problem::unauthenticated("the session has ended; sign in again"),
                    ));
                }
            }
        } else {
            return Err(state.refuse_auth(
                parts,
                "missing",
                Problem::unauthenticated(
                    "send `Authorization: Bearer <token>`, or sign in to the console",
                ),
            ));
        };
        if found.user.demo && !from_this_machine(parts) {
            let problem = if proxied(parts) {
                Problem::forbidden(
                    "demo_user_proxied",
                    format!(
                        "`{}` is a demo user, whose password is public: never accepted through a proxy",
                        found.user.id
                    ),
                )
            } else {
                Problem::forbidden(
                    "demo_user_remote",
                    format!(
                        "`{}` is a demo user, accepted only from this machine",
                        found.user.id
                    ),
                )
            };
            return Err(state.refuse_auth(parts, "demo_remote", problem));
        }
        Ok(found)
    }
}

/// The name of the sign-in form's cookie, which binds its token to the browser.
pub const LOGIN_COOKIE: &str = "sopflow_login";

/// How long a sign-in form stays usable.
pub const LOGIN_FORM_LIFE: Duration = Duration::from_secs(60 * 60);

/// Sign-in forms' tokens: the form's page sets a cookie with a fresh nonce (and the time it was
/// made), and the form carries an HMAC of that nonce under a secret made when the server
/// started. Another site can neither read the cookie nor make a token for it, so it cannot
/// post the form for a browser (login CSRF); nothing is stored per form, so a flood of sign-in
/// pages costs no memory. A restart makes open forms stale (the page says so).
pub struct LoginForms {
    /// The secret, or why none could be made (then no form can be issued: sign-in fails
    /// closed, with the reason on the page).
    secret: Result<[u8; 32], String>,
}

impl std::fmt::Debug for LoginForms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoginForms")
    }
}

impl Default for LoginForms {
    fn default() -> LoginForms {
        LoginForms::new()
    }
}

impl LoginForms {
    /// Sign-in forms under a new secret, made from the operating system's random numbers.
    pub(crate) fn new() -> LoginForms {
        let mut secret = [0u8; 32];
        LoginForms {
            secret: getrandom::fill(&mut secret)
                .map(|()| secret)
                .map_err(|e| format!("no random numbers: {e}")),
        }
    }

    fn mac(&self) -> Result<Hmac<Sha256>, String> {
        let secret = self.secret.as_ref().map_err(Clone::clone)?;
        <Hmac<Sha256> as KeyInit>::new_from_slice(secret).map_err(|e| e.to_string())
    }

    /// A new form: the cookie's value (`<unix seconds>.<nonce>`) and the form's token.
    pub fn issue(&self) -> Result<(String, String), String> {
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce).map_err(|e| format!("no random numbers: {e}"))?;
        let made = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let cookie = format!("{made}.{}", hex::encode(nonce));
        let mut mac = self.mac()?;
        mac.update(cookie.as_bytes());
        Ok((cookie, hex::encode(mac.finalize().into_bytes())))
    }

    /// Whether `token` is the token of the form whose cookie is `cookie`, and the form is
    /// not older than [`LOGIN_FORM_LIFE`]. Compared in constant time.
    pub fn valid(&self, cookie: &str, token: &str) -> bool {
        let Some(made) = cookie
            .split_once('.')
            .and_then(|(made, _)| made.parse::<u64>().ok())
        else {
            return false;
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if now.saturating_sub(made) > LOGIN_FORM_LIFE.as_secs() || made > now + 60 {
            return false;
        }
        let (Ok(tag), Ok(mut mac)) = (hex::decode(token), self.mac()) else {
            return false;
        };
        mac.update(cookie.as_bytes());
        mac.verify_slice(&tag).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> Users {
        Users::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("config/users.yaml"))
            .expect("the shipped users file loads")
    }

    #[test]
    fn the_shipped_users_hold_only_the_organisations_roles() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(root.join("workflows/roles.yaml")).expect("role list");
        let (list, findings) =
            crate::validate::roles::read_list(Path::new("workflows/roles.yaml"), &text);
        assert!(findings.is_empty(), "{findings:#?}");
        let list = list.expect("the role list reads");
        assert_eq!(shipped().unlisted_roles(&list), Vec::new());
        let typo = Users::parse("users:\n  - id: a\n    roles: [order_dep]\n").expect("parses");
        let unlisted = typo.unlisted_roles(&list);
        assert_eq!(unlisted.len(), 1);
        assert_eq!(
            (unlisted[0].0.as_str(), unlisted[0].1.as_str()),
            ("a", "order_dep")
        );
        assert!(
            unlisted[0]
                .2
                .to_string()
                .contains("did you mean `order_dept`?"),
            "{unlisted:?}"
        );
    }

    #[test]
    fn demo_users_sign_in_with_their_password_and_token() {
        let users = shipped();
        assert!(users.has_demo());
        let li = users.sign_in("li", "demo").expect("li signs in");
        assert_eq!(li.roles, ["order_dept"]);
        assert!(users.sign_in("li", "wrong").is_none());
        assert!(users.sign_in("nobody", "demo").is_none());
        assert_eq!(
            users.by_token("demo-zhou").map(|u| u.id.as_str()),
            Some("zhou")
        );
        assert!(users.by_token("demo-nobody").is_none());
    }

    #[test]
    fn demo_users_need_a_file_that_declares_itself_a_demo_set() {
        let undeclared = Users::parse("users:\n  - id: a\n    demo: true\n").unwrap_err();
        assert!(undeclared.contains("demo_set: true"), "{undeclared}");
        let declared = Users::parse("demo_set: true\nusers:\n  - id: a\n    demo: true\n")
            .expect("a demo set");
        assert!(declared.has_demo());
        assert_eq!(declared.demo_ids(), ["a"]);
        let real = Users::parse("users:\n  - id: a\n").expect("no demo");
        assert!(!real.has_demo());
    }

    #[test]
    fn login_form_tokens_match_only_their_cookie() {
        let forms = LoginForms::new();
        let (cookie, token) = forms.issue().expect("a form");
        assert!(forms.valid(&cookie, &token));
        let (other, _) = forms.issue().expect("a form");
        assert!(!forms.valid(&other, &token));
        assert!(!forms.valid(&cookie, "00"));
        assert!(!forms.valid(&cookie, ""));
        assert!(!forms.valid("", &token));
        assert!(!LoginForms::new().valid(&cookie, &token));
        let old = format!("1.{}", cookie.split_once('.').map_or("", |(_, n)| n));
        let mut mac = forms.mac().expect("a secret");
        mac.update(old.as_bytes());
        let old_token = hex::encode(mac.finalize().into_bytes());
        assert!(!forms.valid(&old, &old_token), "an old form has expired");
    }

    #[test]
    fn the_dummy_hash_is_a_real_hash_so_unknown_users_cost_the_same() {
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
    }

    #[test]
    fn tokens_in_the_clear_and_bad_hashes_are_refused_with_a_hint() {
        let clear = Users::parse("users:\n  - id: a\n    tokens: [abc]\n").unwrap_err();
        assert!(clear.contains("sopflow user new-token"), "{clear}");
        let bad = Users::parse("users:\n  - id: a\n    password: secret\n").unwrap_err();
        assert!(bad.contains("hash-password"), "{bad}");
        let system = Users::parse("users:\n  - id: system\n").unwrap_err();
        assert!(system.contains("system"), "{system}");
        let twice = Users::parse("users:\n  - id: a\n  - id: a\n").unwrap_err();
        assert!(twice.contains("twice"), "{twice}");
        let unknown = Users::parse("users:\n  - id: a\n    role: [x]\n").unwrap_err();
        assert!(unknown.contains("role"), "{unknown}");
    }

    #[test]
    fn new_tokens_are_found_by_their_hash() {
        let token = new_token().expect("a token");
        let hash = token_hash(&token);
        let users = Users::parse(&format!(
            "users:\n  - id: app\n    roles: [cs_dept]\n    tokens: [\"{hash}\"]\n"
        ))
        .expect("parses");
        assert_eq!(users.by_token(&token).map(|u| u.id.as_str()), Some("app"));
        let password = hash_password("s3cret").expect("hashes");
        let users = Users::parse(&format!(
            "users:\n  - id: p\n    password: \"{password}\"\n"
        ))
        .expect("parses");
        assert!(users.sign_in("p", "s3cret").is_some());
    }

    #[test]
    fn csrf_tokens_compare_exactly_and_token_callers_have_none() {
        let user = shipped().get("li").cloned().expect("li");
        let session = Caller {
            user: user.clone(),
            credential: Credential::Session { csrf: "abc".into() },
            lang: Lang::Zh,
        };
        assert!(session.csrf_matches(b"abc"));
        assert!(!session.csrf_matches(b"abd"));
        assert!(!session.csrf_matches(b"abcd"));
        let token = Caller {
            user,
            credential: Credential::Token,
            lang: Lang::Zh,
        };
        assert!(!token.csrf_matches(b""));
    }

    #[test]
    fn sessions_open_find_and_close() {
        let sessions = Sessions::default();
        let cookie = sessions.open("li").expect("opens");
        let session = sessions.get(&cookie).expect("found");
        assert_eq!(session.user, "li");
        assert!(!session.csrf.is_empty());
        sessions.close(&cookie);
        assert!(sessions.get(&cookie).is_none());
    }
}
