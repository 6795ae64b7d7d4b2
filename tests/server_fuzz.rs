//! Random requests against a real server (loopback only): random methods, paths made from the
//! route table with random segments (unicode, very long, `..`), random credentials, content
//! types and bodies (random bytes, truncated JSON, wrong types, deep nesting, up to ~2 MB).
//!
//! Whatever comes in, the server must never answer 5xx, and every 4xx must be a problem
//! (`application/problem+json` with a `code`). Afterwards the store must still verify clean.
//! A second run aims at the console's sign-in and at what an auditor downloads: control
//! characters in ids and in `next`, comments that begin like spreadsheet formulas, and a
//! flood of concurrent sign-ins; no 5xx there either, no redirect off the site, no CSV cell
//! that a spreadsheet would run.
//! The generator is a seeded xorshift, so a failure replays exactly; set `SOPFLOW_FUZZ_SEED`
//! to try another sequence.

mod support;

use reqwest::Method;
use serde_json::{Value, json};
use sopflow::server::api::openapi::{ROUTES, Verb};
use std::time::Duration;

/// How many requests (`SOPFLOW_FUZZ_REQUESTS` for more).
const REQUESTS: usize = 400;

/// xorshift64*: small, deterministic, good enough to pick test inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// Fewer than `max` random bytes.
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max);
        (0..n).map(|_| self.next() as u8).collect()
    }

    /// A random text of 1 to `max` characters: ASCII, CJK, emoji, controls.
    fn text(&mut self, max: usize) -> String {
        let n = 1 + self.below(max);
        (0..n)
            .map(|_| match self.below(5) {
                0 => char::from(b'a' + self.below(26) as u8),
                1 => char::from_u32(0x4e00 + self.below(0x5000) as u32).unwrap_or('中'),
                2 => *self.pick(&['😀', 'é', '\u{202e}', '\u{feff}', 'ß', '/', '%', '?', '#']),
                3 => char::from(self.below(32) as u8),
                _ => char::from(b'0' + self.below(10) as u8),
            })
            .collect()
    }
}

/// A path segment to put where a route has a parameter.
fn segment(rng: &mut Rng, real: &[String]) -> String {
    match rng.below(9) {
        0 | 1 => rng.pick(real).clone(),
        2 => "..".into(),
        3 => "x".repeat(1 + rng.below(4000)),
        4 => urlencode(&rng.text(20)),
        5 => format!("%{:02X}%{:02X}", rng.below(256), rng.below(256)),
        6 => "%2F..%2F..%2Fetc%2Fpasswd".into(),
        7 => rng
            .pick(&[
                "approve",
                "submit",
                "hot_work_permit",
                "0",
                "-1",
                "%00",
                "hot_work_permit-1%00",
                "hot_work_permit-1%0A",
                "hot_work_permit-1%0D%0AX-Forged:%201",
                "%1B%5B31m",
                "%7F",
            ])
            .to_string(),
        _ => rng.text(8),
    }
}

fn urlencode(text: &str) -> String {
    text.bytes().map(|b| format!("%{b:02X}")).collect()
}

/// A path made from a route of the table, and the route's own method.
fn path(rng: &mut Rng, real: &[String]) -> (String, Method) {
    let route = rng.pick(ROUTES);
    let method = match route.verb {
        Verb::Get => Method::GET,
        Verb::Post => Method::POST,
    };
    let mut out = String::new();
    for part in route.path.split('/').skip(1) {
        out.push('/');
        // A parameter, and now and then a fixed segment, is replaced.
        if part.starts_with('{') || rng.chance(3) {
            out.push_str(&segment(rng, real));
        } else {
            out.push_str(part);
        }
    }
    if rng.chance(10) {
        out.push('/');
        out.push_str(&segment(rng, real));
    }
    if rng.chance(40) {
        out.push('?');
        out.push_str(&query(rng));
    }
    (out, method)
}

fn query(rng: &mut Rng) -> String {
    let keys = [
        "workflow",
        "state",
        "business_key",
        "overdue",
        "assigned",
        "limit",
        "format",
        "from",
        "to",
        "actor",
        "colour",
    ];
    let values = [
        "hot_work_permit",
        "me",
        "true",
        "no",
        "1000",
        "1001",
        "0",
        "-5",
        "csv",
        "json",
        "svg",
        "mermaid",
        "dot",
        "2026-11-01",
        "%FF",
        "security_review",
    ];
    (0..1 + rng.below(4))
        .map(|_| {
            let value = if rng.chance(20) {
                urlencode(&rng.text(10))
            } else {
                rng.pick(&values).to_string()
            };
            format!("{}={value}", rng.pick(&keys))
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A random body, and whether it is large.
fn body(rng: &mut Rng) -> Vec<u8> {
    match rng.below(14) {
        0 => Vec::new(),
        1 => rng.bytes(200),
        2 => b"{\"payload\": {\"notification_le".to_vec(),
        3 => json!({"payload": 5, "comment": []}).to_string().into_bytes(),
        4 if rng.chance(50) => json!({"workflow": "hot_work_permit"}).to_string().into_bytes(),
        4 => json!({"workflow": "hot_work_permit", "data": {"x": 1}}).to_string().into_bytes(),
        5 => json!({"workflow": rng.text(6), "business_key": rng.text(30)})
            .to_string()
            .into_bytes(),
        6 => json!({"payload": {"notification_letter": "L", "applicant_seal": true, "operator_certificate": "C"}})
            .to_string()
            .into_bytes(),
        7 => json!({"actor": "li", "roles": ["order_dept"]}).to_string().into_bytes(),
        8 => {
            let depth = if rng.chance(50) { 100 } else { 100_000 };
            let mut out = "[".repeat(depth);
            out.push_str(&"]".repeat(depth));
            out.into_bytes()
        }
        9 => json!({"payload": {"notification_letter": "x".repeat(rng.below(40_000))}})
            .to_string()
            .into_bytes(),
        10 if rng.chance(25) => {
            // Over the body limit now and then (about 2 MB).
            let mut out = b"{\"comment\": \"".to_vec();
            out.extend(std::iter::repeat_n(b'x', 2_000_000));
            out.extend_from_slice(b"\"}");
            out
        }
        11 => json!({"expected_seq": "one", "comment": rng.text(50)}).to_string().into_bytes(),
        12 => json!({"digest": rng.text(20), "as_of": "2026-13-45"}).to_string().into_bytes(),
        _ => json!({}).to_string().into_bytes(),
    }
}

const USERS: &[&str] = &[
    "wang", "li", "zhou", "chen", "zhao", "qian", "sun", "wu", "audit", "owner",
];

#[tokio::test(flavor = "multi_thread")]
async fn random_requests_get_problems_never_server_errors() {
    let seed = std::env::var("SOPFLOW_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_2026_u64);
    let server = support::spawn().await;
    // A new connection per request: the server closes a connection after answering a request
    // whose body it did not read (hyper does not drain it), and a request sent on such a
    // pooled connection would fail for a reason that has nothing to do with its own input.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(0)
        .build()
        .expect("an HTTP client");
    // A few real instances, so that some ids reach the engine.
    let mut real = Vec::new();
    for _ in 0..3 {
        real.push(support::start_permit(&server).await);
    }
    let methods = [
        Method::GET,
        Method::GET,
        Method::POST,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
        Method::HEAD,
    ];
    let media = [
        "application/json",
        "application/json",
        "application/json; charset=utf-8",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/problem+json",
        "application/vnd.api+json",
    ];
    let requests = std::env::var("SOPFLOW_FUZZ_REQUESTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(REQUESTS);
    let mut rng = Rng(seed);
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    let mut resets = 0;
    let run = async {
        for n in 0..requests {
            let (path, own) = path(&mut rng, &real);
            let method = if rng.chance(70) {
                own
            } else {
                rng.pick(&methods).clone()
            };
            let mut request = http.request(method.clone(), server.url(&path));
            match rng.below(10) {
                0 => {}
                1 => request = request.bearer_auth(format!("demo-{}", rng.next() % 1000)),
                2 => {
                    let value =
                        *rng.pick(&["Basic eDp5", "Bearer", "bearer demo-li", "", "Bearer  "]);
                    request = request.header("Authorization", value);
                }
                3 => {
                    request =
                        request.header("Cookie", format!("sopflow_session={}", rng.below(1 << 30)))
                }
                _ => {
                    let user = USERS[rng.below(USERS.len())];
                    request = request.bearer_auth(support::token(user));
                }
            }
            if rng.chance(20) {
                let key = rng.bytes(300);
                if let Ok(value) = reqwest::header::HeaderValue::from_bytes(&key) {
                    request = request.header("Idempotency-Key", value);
                } else {
                    request = request.header("Idempotency-Key", format!("k{}", rng.below(5)));
                }
            }
            if rng.chance(70) {
                request = request.header("Content-Type", *rng.pick(&media));
            }
            let payload = body(&mut rng);
            let size = payload.len();
            let large = size > 64 * 1024;
            if !payload.is_empty() || rng.chance(50) {
                request = request.body(payload);
            }
            if std::env::var_os("SOPFLOW_FUZZ_LOG").is_some() {
                eprintln!("#{n} {method} {path} ({size} bytes)");
            }
            let response = match request.send().await {
                Ok(response) => response,
                // The server answers a request it refuses (401, 405, 413...) without reading
                // a large body to its end; the client, still sending, may see the connection
                // reset instead of the answer. Only for large bodies.
                Err(e) if large => {
                    resets += 1;
                    eprintln!("#{n} {method} {path}: connection closed while sending: {e}");
                    continue;
                }
                Err(e) => panic!("#{n} {method} {path} ({size} bytes): no answer: {e:?}"),
            };
            let status = response.status();
            *statuses.entry(status.as_u16()).or_default() += 1;
            let media = response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            // An event stream does not end: its status and headers are the answer.
            let text = if media.starts_with("text/event-stream") {
                String::new()
            } else {
                response.text().await.unwrap_or_default()
            };
            assert!(
                !status.is_server_error(),
                "#{n} {method} {path}: {status} {text}"
            );
            // `..` segments are resolved by the client, so a path may leave the API for the
            // console, whose pages answer in HTML: only the API's answers must be problems.
            let api = reqwest::Url::parse(&server.url(&path)).is_ok_and(|url| {
                url.path() == "/api" || url.path().starts_with("/api/") || url.path() == "/metrics"
            });
            if api && status.is_client_error() {
                assert_eq!(
                    media, "application/problem+json",
                    "#{n} {method} {path}: {status} {text}"
                );
                if method != Method::HEAD {
                    let problem: Value = serde_json::from_str(&text)
                        .unwrap_or_else(|e| panic!("#{n} {method} {path}: {e}: {text}"));
                    assert!(
                        problem["code"].as_str().is_some_and(|c| !c.is_empty()),
                        "#{n} {method} {path}: {text}"
                    );
                    assert_eq!(problem["status"], status.as_u16());
                    // Every code the server answers with is described at its `type`.
                    let code = problem["code"].as_str().unwrap_or("");
                    assert_eq!(
                        problem["type"],
                        format!("/api/problems/{code}"),
                        "#{n} {method} {path}: {text}"
                    );
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("the requests finish in time");
    eprintln!("statuses: {statuses:?}; connections reset while sending a large body: {resets}");
    assert!(resets <= requests / 20, "too many resets: {resets}");
    assert!(
        statuses.keys().any(|s| *s < 300),
        "some requests succeed: {statuses:?}"
    );
    // The traffic left the store intact.
    support::assert_store_clean(&server).await;
    server.stop().await;
}

/// A `next` that tries to leave the site or break the answer.
fn next_target(rng: &mut Rng) -> String {
    let fixed = [
        "/",
        "/instances?workflow=hot_work_permit",
        "//evil.example/",
        "/\\evil.example/",
        "/\t/evil.example/",
        "/%09/evil.example/",
        "/\n/evil.example",
        "/\r\nSet-Cookie: a=b",
        "https://evil.example/",
        "javascript:alert(1)",
        "/%2F%2Fevil.example",
        "/\u{3000}/evil.example",
        "/\u{202e}/evil",
    ];
    if rng.chance(60) {
        rng.pick(&fixed).to_string()
    } else {
        format!("/{}", rng.text(12))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_sign_ins_ids_and_formula_cells_get_no_server_errors() {
    let seed = std::env::var("SOPFLOW_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_2027_u64);
    let mut rng = Rng(seed);
    let server = support::spawn().await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .build()
        .expect("an HTTP client");

    // Sign-ins with random names, passwords, `next` targets, with and without the form.
    for n in 0..120 {
        let next = next_target(&mut rng);
        let user = if rng.chance(50) {
            rng.pick(USERS).to_string()
        } else {
            rng.text(20)
        };
        let password = if rng.chance(30) {
            "demo".to_string()
        } else {
            rng.text(10)
        };
        let response = if rng.chance(80) {
            support::post_login(
                &http,
                &server.base,
                &[("user", &user), ("password", &password), ("next", &next)],
            )
            .await
        } else {
            http.post(server.url("/login"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(support::form_body(&[("user", &user), ("next", &next)]))
                .send()
                .await
                .expect("answers")
        };
        let status = response.status();
        assert!(
            !status.is_server_error(),
            "#{n} {user:?} {next:?}: {status}"
        );
        if status.is_redirection() {
            let location = response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            assert!(
                location.starts_with('/')
                    && !location.starts_with("//")
                    && !location.contains('\\')
                    && !location
                        .chars()
                        .any(|c| c.is_control() || c.is_whitespace()),
                "#{n} {next:?} sent to {location:?}"
            );
        }
        let page = http
            .get(server.url(&format!(
                "/login?{}",
                support::form_body(&[("next", &next)])
            )))
            .send()
            .await
            .expect("the page");
        assert!(!page.status().is_server_error(), "GET /login?next={next:?}");
    }

    // Comments that begin like formulas, on real permits, then the auditor's downloads.
    let formulas = [
        "=1+1",
        "+1",
        "-1+2",
        "@SUM(A1)",
        "\t=1",
        "\r=1",
        "=HYPERLINK(\"http://x\")",
    ];
    for comment in formulas {
        // As a business key and as a comment; either may be refused as input (a 4xx), never
        // with a 5xx, and whatever is stored reaches the CSV neutralised.
        for business_key in [Some(comment), None] {
            let mut body = json!({"workflow": "hot_work_permit"});
            if let Some(key) = business_key {
                body["business_key"] = json!(key);
            }
            let response = http
                .post(server.url("/api/instances"))
                .bearer_auth(support::token("wang"))
                .json(&body)
                .send()
                .await
                .expect("answers");
            assert!(!response.status().is_server_error(), "{comment:?}");
            let started: Value = response.json().await.expect("json");
            let Some(id) = started["instance"]["id"].as_str() else {
                continue;
            };
            let withdrawn = http
                .post(server.url(&format!("/api/instances/{id}/events/withdraw")))
                .bearer_auth(support::token("wang"))
                .json(&json!({"comment": comment}))
                .send()
                .await
                .expect("answers");
            assert!(!withdrawn.status().is_server_error(), "{comment:?}");
        }
    }
    let csv = http
        .get(server.url("/api/audit/export?format=csv"))
        .bearer_auth(support::token("audit"))
        .send()
        .await
        .expect("exports")
        .text()
        .await
        .expect("text");
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    for record in reader.records() {
        let record = record.expect("a row");
        for cell in record.iter() {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "a cell a spreadsheet would run: {cell:?}"
            );
        }
    }

    // A flood of concurrent sign-ins: answered (401 or 429), none waiting without end.
    let mut flood = tokio::task::JoinSet::new();
    for n in 0..64 {
        let (http, base) = (http.clone(), server.base.clone());
        flood.spawn(async move {
            support::post_login(
                &http,
                &base,
                &[("user", USERS[n % USERS.len()]), ("password", "wrong")],
            )
            .await
            .status()
        });
    }
    let flooded = tokio::time::timeout(Duration::from_secs(60), async {
        let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
        while let Some(done) = flood.join_next().await {
            *statuses
                .entry(done.expect("a sign-in").as_u16())
                .or_default() += 1;
        }
        statuses
    })
    .await
    .expect("the flood is answered within a minute");
    assert!(
        flooded.keys().all(|s| *s == 401 || *s == 429),
        "{flooded:?}"
    );
    let health = http
        .get(server.url("/api/health"))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status().as_u16(), 200);
    support::assert_store_clean(&server).await;
    server.stop().await;
}
