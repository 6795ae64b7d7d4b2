//! Console sessions live in the store: a session opened by one server is accepted by another
//! on the same store (the same PostgreSQL database, or the same sled folder after a restart),
//! signing out on one ends it on the other, its CSRF token is the same on both, only a hash of
//! the cookie is stored, and a session unused past its idle limit is refused and forgotten.

mod support;

use sopflow::server::auth::{Sessions, token_hash};
use std::time::Duration;

/// A browser without redirects, holding one session cookie.
struct Browser {
    http: reqwest::Client,
    cookie: String,
}

impl Browser {
    async fn sign_in(base: &str, user: &str) -> Browser {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client");
        let cookie = support::session_cookie(&http, base, user).await;
        Browser { http, cookie }
    }

    /// The status of `GET /api/me` with the cookie, and the user it names.
    async fn me(&self, base: &str) -> (u16, String) {
        let response = self
            .http
            .get(format!("{base}/api/me"))
            .header("cookie", &self.cookie)
            .send()
            .await
            .expect("GET /api/me");
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        (status, body["id"].as_str().unwrap_or_default().to_string())
    }

    /// The CSRF token the console's forms carry for this session.
    async fn csrf(&self, base: &str) -> String {
        let page = self
            .http
            .get(format!("{base}/"))
            .header("cookie", &self.cookie)
            .send()
            .await
            .expect("GET /")
            .text()
            .await
            .expect("the inbox");
        let marker = "name=\"_csrf\" value=\"";
        let at = page.find(marker).expect("a form with the session's token") + marker.len();
        page[at..].split('"').next().unwrap_or_default().to_string()
    }

    async fn sign_out(&self, base: &str, csrf: &str) -> u16 {
        self.http
            .post(format!("{base}/logout"))
            .header("cookie", &self.cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(support::form_body(&[("_csrf", csrf)]))
            .send()
            .await
            .expect("POST /logout")
            .status()
            .as_u16()
    }
}

/// One server signs wang in and stops; another on the same store accepts the cookie and the
/// same CSRF token, and signs wang out; the first, started again, refuses the cookie. (One
/// process holds a store at a time, so the servers take turns; each reads the session from
/// the store, as it would with the other still running.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_opened_on_one_server_works_on_the_next_and_signing_out_ends_it_there_too() {
    let first = support::spawn().await;
    let wang = Browser::sign_in(&first.base, "wang").await;
    assert_eq!(wang.me(&first.base).await, (200, "wang".to_string()));
    let token = wang.csrf(&first.base).await;
    let dir = first.stop_keeping().await;

    let second = support::spawn_again(dir).await;
    assert_eq!(
        wang.me(&second.base).await,
        (200, "wang".to_string()),
        "the session opened on the first server"
    );
    assert_eq!(wang.csrf(&second.base).await, token, "the same CSRF token");
    assert_eq!(wang.sign_out(&second.base, &token).await, 303);
    assert_eq!(wang.me(&second.base).await.0, 401);
    let dir = second.stop_keeping().await;

    let again = support::spawn_again(dir).await;
    assert_eq!(
        wang.me(&again.base).await.0,
        401,
        "signed out on the other server"
    );
    again.stop().await;
}

/// Only the cookie's hash is stored; a session unused past the idle limit is refused and its
/// record forgotten; opening a session forgets the ended ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_hash_is_stored_and_an_idle_session_ends() {
    let server = support::spawn().await;
    let sessions = Sessions::new(server.state.engine.clone(), Duration::from_millis(800));
    let li = sessions.open("li").await.expect("opens");
    let wang = sessions.open("wang").await.expect("opens");
    let session = sessions.get(&li).await.expect("reads").expect("live");
    assert_eq!(session.user, "li");
    assert!(!session.csrf.is_empty());

    tokio::time::sleep(Duration::from_millis(900)).await;
    assert!(
        sessions.get(&wang).await.expect("reads").is_none(),
        "unused past the idle limit"
    );
    let zhou = sessions.open("zhou").await.expect("opens");
    assert!(sessions.get(&zhou).await.expect("reads").is_some());
    drop(sessions);
    let dir = server.stop_keeping().await;

    let location = support::store_location(&dir.path().join("data"));
    let records = tokio::task::spawn_blocking(move || {
        let store = sopflow::store::open(&location, Default::default()).expect("opens");
        [&zhou, &li, &wang]
            .map(|cookie| store.session(&token_hash(cookie)).expect("reads").is_some())
            .into_iter()
            .chain([store.session(&zhou).expect("reads").is_some()])
            .collect::<Vec<_>>()
    })
    .await
    .expect("reads the store");
    assert_eq!(
        records,
        [true, false, false, false],
        "zhou's under its hash and never under the cookie; wang's ended when used, li's when \
         zhou signed in"
    );
}
