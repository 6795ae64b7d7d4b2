//! What a public server must hold against slow, hostile or careless clients, on a real server
//! (loopback): request heads and bodies that never finish, too many connections, heads too
//! large, sign-in floods and throttles, sign-in forms posted by another site, `next` targets
//! that leave the site, and demo users through a proxy. Every refusal is a problem (or, on the
//! console, a page) with a stable code, and writes nothing.

mod support;

use reqwest::StatusCode;
use serde_json::Value;
use sopflow::server::{Limits, SignInLimits};
use std::time::Duration;
use support::{TestServer, client, form_body, login_form, post_login, token};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads what the server sends until it closes the connection, or `within` passes (`None`).
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> Option<String> {
    let mut out = Vec::new();
    let read = tokio::time::timeout(within, stream.read_to_end(&mut out)).await;
    match read {
        Ok(_) => Some(String::from_utf8_lossy(&out).into_owned()),
        Err(_) => None,
    }
}

fn quick() -> Limits {
    Limits {
        header_timeout: Duration::from_secs(1),
        body_timeout: Duration::from_secs(1),
        ..Limits::default()
    }
}

/// How many instances there are and the seq of one, to show that nothing was written.
async fn written(server: &TestServer, id: &str) -> (usize, u64) {
    let http = client();
    let list: Value = http
        .get(server.url("/api/instances?limit=1000"))
        .bearer_auth(token("owner"))
        .send()
        .await
        .expect("lists")
        .json()
        .await
        .expect("json");
    let one: Value = http
        .get(server.url(&format!("/api/instances/{id}")))
        .bearer_auth(token("owner"))
        .send()
        .await
        .expect("reads")
        .json()
        .await
        .expect("json");
    (
        list.as_array().map_or(0, Vec::len),
        one["instance"]["seq"].as_u64().unwrap_or(u64::MAX),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_head_that_never_ends_is_closed() {
    let server = support::spawn_with_limits(quick()).await;
    let mut stream = TcpStream::connect(server.addr).await.expect("connects");
    stream
        .write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .expect("writes");
    let answer = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    assert!(answer.is_some(), "the connection was still open after 10 s");
    // An idle connection that never sends a byte is closed too.
    let mut idle = TcpStream::connect(server.addr).await.expect("connects");
    assert!(
        read_until_closed(&mut idle, Duration::from_secs(10))
            .await
            .is_some(),
        "the idle connection was still open after 10 s"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_that_stops_is_answered_408_and_writes_nothing() {
    let server = support::spawn_with_limits(quick()).await;
    let id = support::start_permit(&server).await;
    let before = written(&server, &id).await;
    let mut stream = TcpStream::connect(server.addr).await.expect("connects");
    let head = "POST /api/instances HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer demo-wang\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"wo";
    stream.write_all(head.as_bytes()).await.expect("writes");
    let answer = read_until_closed(&mut stream, Duration::from_secs(10))
        .await
        .expect("answered and closed within 10 s");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    assert!(answer.contains("\"code\":\"body_timeout\""), "{answer}");
    // The console's forms are timed the same way.
    let mut stream = TcpStream::connect(server.addr).await.expect("connects");
    stream
        .write_all(b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nuser=li")
        .await
        .expect("writes");
    let answer = read_until_closed(&mut stream, Duration::from_secs(10))
        .await
        .expect("answered and closed within 10 s");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert_eq!(written(&server, &id).await, before);
    support::assert_store_clean(&server).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_over_the_caps_are_answered_503_and_closed() {
    let server = support::spawn_with_limits(Limits {
        max_connections_per_client: 2,
        ..Limits::default()
    })
    .await;
    let first = TcpStream::connect(server.addr).await.expect("connects");
    let second = TcpStream::connect(server.addr).await.expect("connects");
    let mut third = TcpStream::connect(server.addr).await.expect("connects");
    let answer = read_until_closed(&mut third, Duration::from_secs(10))
        .await
        .expect("answered and closed at once");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.contains("\"code\":\"too_many_connections\""),
        "{answer}"
    );
    drop((first, second));
    // The places are given back when connections close.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let health = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .expect("a client")
            .get(server.url("/api/health"))
            .send()
            .await;
        if health.is_ok_and(|r| r.status() == StatusCode::OK) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no place came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let metrics = client()
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("sopflow_connections_refused_total{reason=\"per_client\"}"),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn heads_too_large_and_every_api_error_are_problems() {
    let server = support::spawn().await;
    let id = support::start_permit(&server).await;
    let before = written(&server, &id).await;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("a client");
    let problem = |response: reqwest::Response, status: u16, code: &'static str| async move {
        assert_eq!(response.status().as_u16(), status);
        assert_eq!(
            response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/problem+json")
        );
        let body: Value = response.json().await.expect("a problem");
        assert_eq!(body["code"], code, "{body}");
        assert_eq!(body["status"], status);
    };
    let long = format!("/api/instances/{}", "x".repeat(10 * 1024));
    problem(
        http.get(server.url(&long))
            .bearer_auth(token("li"))
            .send()
            .await
            .expect("answers"),
        414,
        "uri_too_long",
    )
    .await;
    let mut many = http
        .post(server.url(&format!("/api/instances/{id}/events/withdraw")))
        .bearer_auth(token("wang"));
    for n in 0..80 {
        many = many.header(format!("x-extra-{n}"), "1");
    }
    problem(
        many.send().await.expect("answers"),
        431,
        "headers_too_large",
    )
    .await;
    problem(
        http.get(server.url("/api/health"))
            .header("x-big", "y".repeat(20 * 1024))
            .send()
            .await
            .expect("answers"),
        431,
        "headers_too_large",
    )
    .await;
    assert_eq!(written(&server, &id).await, before);
    support::assert_store_clean(&server).await;
    server.stop().await;
}

/// A sign-in through the form, from a client of its own (no redirects followed).
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client")
}

fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn after_signing_in_only_this_site_is_followed_and_nothing_fails() {
    let server = support::spawn().await;
    let http = browser();
    for (next, expected) in [
        (
            "/instances?workflow=hot_work_permit",
            "/instances?workflow=hot_work_permit",
        ),
        ("/\t/evil.example/", "/"),
        ("/%09/evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("/\nSet-Cookie: x=y", "/"),
        ("/\r\n", "/"),
    ] {
        let response = post_login(
            &http,
            &server.base,
            &[("user", "li"), ("password", "demo"), ("next", next)],
        )
        .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{next:?}");
        assert_eq!(location(&response), expected, "{next:?}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sign_in_form_posted_by_another_site_is_refused() {
    let server = support::spawn().await;
    let http = browser();
    let posted = |extra: &'static [(&'static str, &'static str)], with_form: bool| {
        let http = http.clone();
        let base = server.base.clone();
        async move {
            let (cookie, form_token) = login_form(&http, &base).await;
            let mut fields = vec![("user", "li"), ("password", "demo")];
            if with_form {
                fields.push(("_login", &form_token));
            }
            let mut request = http
                .post(format!("{base}/login"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form_body(&fields));
            if with_form {
                request = request.header("cookie", cookie);
            }
            for (name, value) in extra {
                request = request.header(*name, *value);
            }
            request.send().await.expect("answers")
        }
    };
    // No form token (and no cookie): the login-CSRF request another site would make.
    let response = posted(&[], false).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.headers().get_all("set-cookie").iter().all(|c| {
        !c.to_str()
            .unwrap_or_default()
            .starts_with("sopflow_session=")
    }));
    let page = response.text().await.expect("a page");
    assert!(page.contains("登录页面已过期"), "{page}");
    // The browser says another site posted it.
    let response = posted(&[("origin", "http://evil.example")], true).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = posted(&[("sec-fetch-site", "cross-site")], true).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // The same form from this site's own page signs in.
    let origin: &'static str = Box::leak(format!("http://{}", server.addr).into_boxed_str());
    let extra: &'static [(&'static str, &'static str)] = Box::leak(Box::new([
        ("origin", origin),
        ("sec-fetch-site", "same-origin"),
    ]));
    let response = posted(extra, true).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let metrics = server.state.metrics.encode();
    assert!(
        metrics.contains("sopflow_auth_failures_total{code=\"login_expired\"} 1")
            && metrics.contains("sopflow_auth_failures_total{code=\"login_cross_site\"} 2"),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_sign_ins_are_throttled_with_retry_after() {
    let server = support::spawn_with_limits(Limits {
        signin: SignInLimits {
            per_user_burst: 3,
            per_user_every: Duration::from_secs(60),
            ..SignInLimits::default()
        },
        ..Limits::default()
    })
    .await;
    let http = browser();
    for _ in 0..3 {
        let response = post_login(
            &http,
            &server.base,
            &[("user", "li"), ("password", "wrong")],
        )
        .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let response = post_login(&http, &server.base, &[("user", "li"), ("password", "demo")]).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After in seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    let page = response.text().await.expect("a page");
    assert!(page.contains("登录尝试过于频繁"), "{page}");
    // Another user from the same address is not held up by li's attempts.
    let response = post_login(
        &http,
        &server.base,
        &[("user", "wang"), ("password", "demo")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(
        server
            .state
            .metrics
            .encode()
            .contains("sopflow_auth_failures_total{code=\"signin_throttled\"} 1")
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sign_in_flood_is_turned_away_quickly_and_the_server_stays_up() {
    // One checking thread and no queue, and throttles out of the way: most of a flood of
    // concurrent sign-ins must be answered 429 at once rather than wait.
    let server = support::spawn_with_limits(Limits {
        signin: SignInLimits {
            hashing_threads: 1,
            queue: 0,
            per_user_burst: 10_000,
            per_client_burst: 10_000,
            ..SignInLimits::default()
        },
        ..Limits::default()
    })
    .await;
    let mut forms = Vec::new();
    let http = browser();
    for _ in 0..48 {
        forms.push(login_form(&http, &server.base).await);
    }
    let mut flood = tokio::task::JoinSet::new();
    for (n, (cookie, form_token)) in forms.into_iter().enumerate() {
        let (http, base) = (http.clone(), server.base.clone());
        flood.spawn(async move {
            let user = format!("user{n}");
            let response = http
                .post(format!("{base}/login"))
                .header("cookie", cookie)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form_body(&[
                    ("user", user.as_str()),
                    ("password", "wrong"),
                    ("_login", form_token.as_str()),
                ]))
                .send()
                .await
                .expect("answers");
            let retry = response.headers().get("retry-after").cloned();
            (response.status(), retry)
        });
    }
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    while let Some(done) = flood.join_next().await {
        let (status, retry) = done.expect("a sign-in");
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert!(retry.is_some(), "429 says when to try again");
        }
        *statuses.entry(status.as_u16()).or_default() += 1;
    }
    assert!(
        statuses.keys().all(|s| *s == 401 || *s == 429),
        "{statuses:?}"
    );
    assert!(statuses.get(&429).copied().unwrap_or(0) > 0, "{statuses:?}");
    let health = client()
        .get(server.url("/api/health"))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), StatusCode::OK);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_users_are_refused_through_a_proxy() {
    let server = support::spawn().await;
    let id = support::start_permit(&server).await;
    let before = written(&server, &id).await;
    let http = browser();
    for (name, value) in [
        ("x-forwarded-for", "203.0.113.9"),
        ("forwarded", "for=203.0.113.9"),
        ("x-real-ip", "203.0.113.9"),
        ("via", "1.1 proxy"),
    ] {
        let response = http
            .post(server.url(&format!("/api/instances/{id}/events/withdraw")))
            .bearer_auth(token("wang"))
            .header(name, value)
            .send()
            .await
            .expect("answers");
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{name}");
        let body: Value = response.json().await.expect("a problem");
        assert_eq!(body["code"], "demo_user_proxied", "{name}");
    }
    // The sign-in page through a proxy lists no demo user, and a demo sign-in is refused.
    let page = http
        .get(server.url("/login"))
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .expect("the page")
        .text()
        .await
        .expect("text");
    assert!(!page.contains("demo-users"), "{page}");
    let (cookie, form_token) = login_form(&http, &server.base).await;
    let response = http
        .post(server.url("/login"))
        .header("cookie", cookie)
        .header("x-forwarded-for", "203.0.113.9")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&[
            ("user", "li"),
            ("password", "demo"),
            ("_login", form_token.as_str()),
        ]))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // Without the header, from this machine, the same token works.
    let response = client()
        .get(server.url("/api/me"))
        .bearer_auth(token("wang"))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(written(&server, &id).await, before);
    server.stop().await;
}
