//! `GET /api/events`: committed steps as server-sent events, in order, resumed after a
//! dropped connection with `Last-Event-ID` with nothing missed or repeated, filtered, only of
//! instances the caller may read, and bounded.

mod support;

use serde_json::{Value, json};
use sopflow::engine::{Fire, StartRequest};
use sopflow::machine::Actor;
use std::time::Duration;

/// An open event stream and the text read from it so far.
struct Events {
    response: reqwest::Response,
    text: String,
}

impl Events {
    async fn open(base: &str, user: &str, query: &str, last: Option<&str>) -> reqwest::Response {
        let mut request = support::client()
            .get(format!("{base}/api/events{query}"))
            .bearer_auth(support::token(user));
        if let Some(last) = last {
            request = request.header("last-event-id", last);
        }
        request.send().await.expect("the stream answers")
    }

    async fn new(base: &str, user: &str, query: &str, last: Option<&str>) -> Events {
        let response = Events::open(base, user, query, last).await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("text/event-stream")
        );
        Events {
            response,
            text: String::new(),
        }
    }

    /// The next `count` events: (id, data).
    async fn take(&mut self, count: usize) -> Vec<(u64, Value)> {
        let mut events = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while events.len() < count {
            while let Some(end) = self.text.find("\n\n") {
                let block: String = self.text.drain(..end + 2).collect();
                let mut id = None;
                let mut data = None;
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        id = v.parse::<u64>().ok();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data = serde_json::from_str::<Value>(v).ok();
                    }
                }
                if let (Some(id), Some(data)) = (id, data) {
                    events.push((id, data));
                }
            }
            if events.len() >= count {
                break;
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .expect("events arrive in time")
                .expect("the stream reads")
                .expect("the stream stays open");
            self.text.push_str(&String::from_utf8_lossy(&chunk));
        }
        events
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_stream_in_order_and_resume_after_a_dropped_connection() {
    let server = support::spawn().await;
    let engine = server.state.engine.clone();
    let wang = Actor::new("wang", ["contractor"]);
    let id = engine
        .start("hot_work_permit", StartRequest::new(wang.clone()))
        .await
        .expect("starts")
        .instance
        .id;
    engine
        .fire(
            &id,
            Fire::new("submit", wang.clone()).payload(json!({
                "notification_letter": "HW-2026-031",
                "applicant_seal": true,
                "operator_certificate": "T-4411",
            })),
        )
        .await
        .expect("submitted");
    let mut stream = Events::new(&server.base, "wang", "", None).await;
    let first = stream.take(2).await;
    assert_eq!(
        first.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(first[0].1["instance"], id.as_str());
    assert_eq!(first[1].1["seq"], 1);
    assert_eq!(first[1].1["to"], "security_review");
    // The connection drops; a step is taken meanwhile; the client resumes with its last id.
    drop(stream);
    engine
        .fire(&id, Fire::new("approve", Actor::new("li", ["order_dept"])))
        .await
        .expect("approved");
    let mut resumed = Events::new(&server.base, "wang", "", Some("2")).await;
    let next = resumed.take(1).await;
    assert_eq!(next[0].0, 3, "no gap, no repeat");
    assert_eq!(next[0].1["seq"], 2);
    // Filtered to one instance, from `?after=`.
    let other = engine
        .start("hot_work_permit", StartRequest::new(wang.clone()))
        .await
        .expect("starts")
        .instance
        .id;
    let mut only = Events::new(
        &server.base,
        "wang",
        &format!("?instance={other}&after=1"),
        None,
    )
    .await;
    let mine = only.take(1).await;
    assert_eq!(mine[0].1["instance"], other.as_str());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_sends_only_what_the_caller_may_read_and_is_bounded() {
    let server = support::spawn().await;
    let engine = server.state.engine.clone();
    let permit = engine
        .start(
            "hot_work_permit",
            StartRequest::new(Actor::new("wang", ["contractor"])),
        )
        .await
        .expect("starts")
        .instance
        .id;
    let hidden = support::client()
        .get(server.url(&format!("/api/instances/{permit}")))
        .bearer_auth(support::token("sun"))
        .send()
        .await
        .expect("answers");
    assert_eq!(hidden.status(), 404, "sun may not read the permit");
    let complaint = engine
        .start(
            "complaint_handling",
            StartRequest::new(Actor::new("sun", ["customer"])).data(json!({"channel": "phone"})),
        )
        .await;
    // Whether or not sun may start a complaint, sun's stream never carries the permit.
    let mut sun = Events::new(&server.base, "sun", "", None).await;
    if complaint.is_ok() {
        let events = sun.take(1).await;
        assert!(events.iter().all(|(_, e)| e["instance"] != permit.as_str()));
    } else {
        let got = tokio::time::timeout(Duration::from_millis(800), sun.take(1)).await;
        assert!(got.is_err(), "nothing readable: nothing sent");
    }
    // A malformed Last-Event-ID is a problem, not a stream from the start.
    let bad = Events::open(&server.base, "wang", "", Some("12abc")).await;
    assert_eq!(bad.status(), 400);
    let problem: Value = bad.json().await.expect("a problem");
    assert_eq!(problem["code"], "bad_event_id");
    let control = Events::open(&server.base, "wang", "?workflow=a%01b", None).await;
    assert_eq!(control.status(), 400);
    // Four streams per user; the fifth is refused while they are open.
    let mut open = Vec::new();
    for _ in 0..sopflow::server::api::events::PER_USER {
        open.push(Events::new(&server.base, "wang", "", None).await);
    }
    let fifth = Events::open(&server.base, "wang", "", None).await;
    assert_eq!(fifth.status(), 429);
    let problem: Value = fifth.json().await.expect("a problem");
    assert_eq!(problem["code"], "too_many_streams");
    drop(open);
    server.stop().await;
}
