//! Notifications leaving a running server: the shipped workflows' notices reach the channels
//! the channels file routes them to and people's 通知, a channel following a workflow gets
//! every step in order, and a receiver that fails for a while gets the message in the end.
//! Receivers run on this machine (`support::receiver`).

mod support;

use axum::http::StatusCode;
use serde_json::json;
use sopflow::delivery::{SIGNATURE_HEADER, verify_signature};
use sopflow::engine::{Fire, StartRequest};
use sopflow::machine::Actor;
use support::receiver::Receiver;

const SECRET: &str = "s3cret-for-tests";

fn channels(extra: &str) -> String {
    format!(
        r#"
delivery: {{max_attempts: 4, first_retry_seconds: 1, max_retry_seconds: 1}}
channels:
  - id: cs_supervisors
    title: 客服主管群
    kind: wecom
    url_env: WECOM_URL
    roles: [cs_supervisor]
  - id: property_app
    title: 物业App
    kind: webhook
    url_env: APP_URL
    secret_env: APP_SECRET
    steps: [hot_work_permit]
{extra}"#
    )
}

fn env(receiver: &Receiver) -> impl Fn(&str) -> Option<String> + use<> {
    let wecom = receiver.url("/cgi-bin/webhook/send?key=test");
    let app = receiver.url("/hook");
    move |name: &str| match name {
        "WECOM_URL" | "SOPFLOW_WECOM_CS_SUPERVISORS" => Some(wecom.clone()),
        "APP_URL" | "SOPFLOW_PROPERTY_APP_URL" => Some(app.clone()),
        "APP_SECRET" | "SOPFLOW_PROPERTY_APP_SECRET" => Some(SECRET.to_string()),
        _ => None,
    }
}

/// The shipped channels file.
fn shipped() -> String {
    std::fs::read_to_string(support::project().join("config/channels.yaml"))
        .expect("the shipped channels file")
}

#[test]
fn the_shipped_channels_file_starts_with_or_without_its_secrets() {
    let none = sopflow::delivery::Channels::parse(&shipped(), &|_| None).expect("parses");
    assert_eq!(none.available().count(), 0);
    let unavailable = none.get("cs_supervisors").and_then(|c| c.unavailable());
    assert!(
        unavailable.is_some_and(|what| what.contains("SOPFLOW_WECOM_CS_SUPERVISORS")),
        "{unavailable:?}"
    );
    let given = |name: &str| Some(format!("https://example.cn/{name}"));
    let all = sopflow::delivery::Channels::parse(&shipped(), &given).expect("parses");
    assert_eq!(all.available().count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_escalated_complaint_reaches_the_supervisors_group_and_their_notices() {
    let receiver = Receiver::start().await;
    // The group's robot is down for the first try: tried again after the backoff.
    receiver.fail_next(&[StatusCode::INTERNAL_SERVER_ERROR]);
    // The shipped channels file, its secrets set as an operator would.
    let server = support::spawn_with_channels(&shipped(), &env(&receiver)).await;
    let engine = server.state.engine.clone();
    let zhang = Actor::new("zhang", ["cs_receiver"]);
    let id = engine
        .start(
            "complaint_handling",
            StartRequest::new(zhang.clone()).data(json!({"channel": "phone"})),
        )
        .await
        .expect("starts")
        .instance
        .id;
    let fire =
        |event: &str, payload: serde_json::Value| Fire::new(event, zhang.clone()).payload(payload);
    engine
        .fire(
            &id,
            fire(
                "record",
                json!({"complainant_name": "刘女士", "complainant_contact": "13900000002", "content": "电梯困人<script>"}),
            ),
        )
        .await
        .expect("recorded");
    engine
        .fire(
            &id,
            fire(
                "classify",
                json!({"complainants_count": 1, "media_attention": false, "repeat_count": 1, "safety_issue": false, "amount_involved": 20}),
            ),
        )
        .await
        .expect("classified");
    engine
        .fire(
            &id,
            fire("escalate", json!({})).comment("需协调电梯维保单位,超越自身权限"),
        )
        .await
        .expect("escalated");

    let path = "/cgi-bin/webhook/send";
    let seen = receiver.wait_for(path, |seen| seen.len() >= 2).await;
    // Two tries of one message: a failure, then the one that arrived.
    assert_eq!(seen.len(), 2, "{seen:?}");
    let bodies: Vec<serde_json::Value> = seen.iter().map(|r| r.json()).collect();
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "each try sends the same message"
    );
    let text = bodies[0]["text"]["content"]
        .as_str()
        .expect("a text message");
    assert!(text.contains("已上报主管"), "{text}");
    assert!(
        text.contains("电梯困人<script>"),
        "plain text, as typed: {text}"
    );
    assert!(text.contains(&format!("/instances/{id}")), "{text}");
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(receiver.seen(path).len(), 2, "nothing more once it arrived");

    // The supervisor's 通知: the same notice, for the role.
    let notices = engine
        .outbox()
        .notices(vec!["role:cs_supervisor".into()], 10)
        .await
        .expect("notices");
    assert_eq!(notices.len(), 1);
    let notice: sopflow::notify::Notice =
        serde_json::from_slice(&notices[0].notice).expect("a notice");
    assert_eq!(notice.id.as_deref(), Some("escalated_to_supervisor"));
    let counts = engine.outbox().counts().await.expect("counts");
    assert_eq!((counts.unrouted, counts.queued, counts.dead), (0, 0, 0));
    let metrics = support::client()
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics
            .contains(r#"sopflow_deliveries_total{channel="cs_supervisors",result="retried"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"sopflow_deliveries_total{channel="cs_supervisors",result="sent"} 1"#),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_following_hot_work_permits_receives_every_step_in_order() {
    let receiver = Receiver::start().await;
    let server = support::spawn_with_channels(&channels(""), &env(&receiver)).await;
    let engine = server.state.engine.clone();
    let wang = Actor::new("wang", ["contractor"]);
    let id = engine
        .start("hot_work_permit", StartRequest::new(wang.clone()))
        .await
        .expect("starts")
        .instance
        .id;
    // A failure in the middle holds the later steps back: order is kept.
    receiver.fail_next(&[StatusCode::SERVICE_UNAVAILABLE]);
    let steps = [
        Fire::new("submit", wang.clone()).payload(json!({
            "notification_letter": "HW-2026-031",
            "applicant_seal": true,
            "operator_certificate": "T-4411",
        })),
        Fire::new("approve", Actor::new("li", ["order_dept"])),
        Fire::new("approve", Actor::new("zhao", ["cs_dept"])),
        Fire::new("approve", Actor::new("chen", ["project_gm"])),
        Fire::new("affix_seal", Actor::new("sun", ["admin_dept"])),
        Fire::new("distribute", Actor::new("zhao", ["cs_dept"])).payload(json!({
            "archive_reference": "CS-ARCH-88",
            "copy_to_applicant": true,
            "copy_to_order_dept": true,
        })),
    ];
    for fire in steps {
        engine.fire(&id, fire).await.expect("a step");
    }
    let history = engine.history(&id).await.expect("the history");
    let seen = receiver
        .wait_for("/hook", |seen| {
            let arrived: std::collections::BTreeSet<u64> = seen
                .iter()
                .map(|r| r.json()["seq"].as_u64().unwrap_or(u64::MAX))
                .collect();
            arrived.len() >= history.len()
        })
        .await;
    // Every step, in order, each signed; the failed one sent again with the same id.
    let mut seqs = Vec::new();
    for received in &seen {
        let header = received
            .headers
            .get(SIGNATURE_HEADER)
            .and_then(|v| v.to_str().ok())
            .expect("signed");
        assert!(verify_signature(
            SECRET,
            header,
            &received.body,
            chrono::Utc::now(),
            300
        ));
        let body = received.json();
        assert_eq!(body["kind"], "step");
        assert_eq!(body["instance"], id.as_str());
        assert_eq!(body["id"], format!("{id}.{}", body["seq"]));
        seqs.push(body["seq"].as_u64().expect("a seq"));
    }
    let mut delivered = seqs.clone();
    delivered.dedup();
    let expected: Vec<u64> = (0..history.len() as u64).collect();
    assert_eq!(
        delivered, expected,
        "in order, a failed one repeated: {seqs:?}"
    );
    assert_eq!(seqs.len(), history.len() + 1, "one retry: {seqs:?}");
    for (body, entry) in seen.iter().map(|r| r.json()).zip(history.iter()) {
        if body["seq"] == entry.seq {
            assert_eq!(body["step"]["hash"], entry.hash.as_str());
            assert_eq!(body["step"]["to"], entry.to.as_str());
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_message_is_a_dead_letter_until_revived() {
    let receiver = Receiver::start().await;
    receiver.fail_next(&[StatusCode::NOT_FOUND]);
    let server = support::spawn_with_channels(&channels(""), &env(&receiver)).await;
    let engine = server.state.engine.clone();
    engine
        .start(
            "hot_work_permit",
            StartRequest::new(Actor::new("wang", ["contractor"])),
        )
        .await
        .expect("starts");
    let outbox = engine.outbox();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let dead = loop {
        let dead = outbox.dead_letters(10).await.expect("dead letters");
        if !dead.is_empty() || std::time::Instant::now() > deadline {
            break dead;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(dead.len(), 1, "a 404 is not tried again");
    assert_eq!(dead[0].attempts, 1);
    assert!(
        dead[0].last_error.as_deref().unwrap_or("").contains("404"),
        "{:?}",
        dead[0].last_error
    );
    assert_eq!(outbox.revive(None).await.expect("revived"), 1);
    receiver.wait_for("/hook", |seen| seen.len() >= 2).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while outbox.counts().await.expect("counts").queued > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the revived message is sent"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        outbox
            .dead_letters(10)
            .await
            .expect("dead letters")
            .is_empty()
    );
    server.stop().await;
}
