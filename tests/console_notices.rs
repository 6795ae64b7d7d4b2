//! The console's 通知 page: a supervisor reads the notice of an escalated complaint (escaped,
//! marked unread until read), someone else does not see it, and a process owner sees the dead
//! letters and sends them again.

mod support;

use sopflow::engine::StartRequest;
use sopflow::machine::Actor;

use support::console::{Browser, csrf};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_reads_the_escalation_in_their_notices_and_marks_it_read() {
    let server = support::spawn().await;
    let id = support::escalate_complaint(&server).await;
    let wu = Browser::sign_in(&server.base, "wu").await;
    let (status, page) = wu.get("/notices").await;
    assert_eq!(status, 200);
    assert!(page.contains("已上报主管"), "{page}");
    assert!(
        page.contains(&format!("href=\"/instances/{id}\"")),
        "{page}"
    );
    assert!(page.contains("id=\"unread\""), "an unread badge: {page}");
    assert!(!page.contains("<script>alert(1)"), "the text is escaped");
    assert!(page.contains("&lt;script&gt;alert(1)"), "{page}");
    // Marking read needs the session's token.
    assert_eq!(
        wu.post("/notices/read", &[("key", &format!("{id}.3.0"))])
            .await,
        403
    );
    let token = csrf(&page);
    assert_eq!(
        wu.post(
            "/notices/read",
            &[("_csrf", &token), ("key", &format!("{id}.3.0"))]
        )
        .await,
        303
    );
    let (_, page) = wu.get("/notices").await;
    assert!(!page.contains("id=\"unread\""), "read now: {page}");
    assert!(page.contains("已上报主管"), "still listed");
    // Someone else's notices do not hold it.
    let wang = Browser::sign_in(&server.base, "wang").await;
    let (status, page) = wang.get("/notices").await;
    assert_eq!(status, 200);
    assert!(!page.contains("已上报主管"), "{page}");
    assert!(
        !page.contains("dead-letters"),
        "dead letters are for process owners"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_owner_sends_dead_letters_again() {
    // A channel the workflows do not know makes every hot-work permit's steps dead letters:
    // its secret is set, but its receiver refuses them.
    let receiver = support::receiver::Receiver::start().await;
    receiver.fail_next(&[reqwest::StatusCode::NOT_FOUND]);
    let url = receiver.url("/hook");
    let server = support::spawn_with_channels(
        "channels:\n  - {id: follower, kind: webhook, url_env: URL, secret_env: SECRET, steps: [hot_work_permit]}\n",
        &|name| match name {
            "URL" => Some(url.clone()),
            "SECRET" => Some("s".into()),
            _ => None,
        },
    )
    .await;
    server
        .state
        .engine
        .start(
            "hot_work_permit",
            StartRequest::new(Actor::new("wang", ["contractor"])),
        )
        .await
        .expect("starts");
    let outbox = server.state.engine.outbox();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while outbox.dead_letters(10).await.expect("dead").is_empty() {
        assert!(std::time::Instant::now() < deadline, "a dead letter");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let owner = Browser::sign_in(&server.base, "owner").await;
    let (status, page) = owner.get("/notices").await;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"dead-letters\""), "{page}");
    assert!(page.contains("HTTP 404") || page.contains("404"), "{page}");
    let token = csrf(&page);
    assert_eq!(owner.get("/deliveries").await.0, 303, "to the dead letters");
    let wang = Browser::sign_in(&server.base, "wang").await;
    assert_eq!(wang.get("/deliveries").await.0, 403, "only process owners");
    let (_, wang_page) = wang.get("/notices").await;
    assert_eq!(
        wang.post(
            "/deliveries/retry",
            &[("_csrf", &csrf(&wang_page)), ("all", "1")]
        )
        .await,
        403,
        "only process owners"
    );
    let (status, back) = owner
        .post_to("/deliveries/retry", &[("_csrf", &token), ("all", "1")])
        .await;
    assert_eq!(status, 303);
    assert!(back.starts_with("/notices?flash="), "{back}");
    let (_, page) = owner.get(&back).await;
    assert!(page.contains("id=\"revived\" data-revived=\"1\""), "{page}");
    let (_, page) = owner.get("/notices").await;
    assert!(
        !page.contains("id=\"revived\""),
        "the banner comes only with its token"
    );
    receiver.wait_for("/hook", |seen| seen.len() >= 2).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while outbox.counts().await.expect("counts").queued > 0 {
        assert!(std::time::Instant::now() < deadline, "sent again");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(outbox.dead_letters(10).await.expect("dead").is_empty());
    server.stop().await;
}
