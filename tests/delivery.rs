//! The channels against receivers on this machine: a webhook receiver that checks signatures
//! and can fail on purpose, fake WeCom and DingTalk robots that answer as the real ones
//! document, and a small SMTP receiver. Nothing leaves the loopback interface.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::Utc;
use sopflow::delivery::{Channels, Failure, Message, SIGNATURE_HEADER, verify_signature};
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// What a receiver saw, and the answers it is told to give, in order (then 200).
#[derive(Default)]
struct Receiver {
    seen: Vec<(HeaderMap, Bytes, BTreeMap<String, String>)>,
    answers: VecDeque<Response>,
    delay: Option<Duration>,
}

type Shared = Arc<Mutex<Receiver>>;

async fn receive(
    State(receiver): State<Shared>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (answer, delay) = {
        let mut receiver = receiver.lock().expect("receiver");
        receiver.seen.push((headers, body, query));
        (receiver.answers.pop_front(), receiver.delay)
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    answer.unwrap_or_else(|| StatusCode::OK.into_response())
}

async fn serve(receiver: Shared) -> SocketAddr {
    let app = Router::new()
        .route("/hook", post(receive))
        .route("/cgi-bin/webhook/send", post(receive))
        .route("/robot/send", post(receive))
        .with_state(receiver);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

fn message(id: &str) -> Message {
    Message {
        id: id.into(),
        workflow: "complaint_handling".into(),
        instance: "complaint_handling-000007".into(),
        seq: 3,
        title: "投诉已升级至主管".into(),
        body: "顾客王女士的投诉超过15分钟未处理,已升级。".into(),
        link: Some("http://127.0.0.1:8080/instances/complaint_handling-000007".into()),
        users: vec!["zhou".into()],
        roles: vec!["supervisor".into()],
        emails: vec!["zhou@example.com".into()],
        at: Utc::now(),
        kind: Default::default(),
        notice: None,
        step: None,
    }
}

fn env(pairs: &[(&str, String)]) -> impl Fn(&str) -> Option<String> + use<> {
    let pairs: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    move |name| pairs.get(name).cloned()
}

fn json(status: StatusCode, body: &str) -> Response {
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

#[tokio::test]
async fn a_webhook_gets_signed_json_and_failures_say_whether_to_try_again() {
    let receiver = Shared::default();
    let address = serve(receiver.clone()).await;
    let channels = Channels::parse(
        &format!(
            "channels:\n  - id: ops\n    kind: webhook\n    url: http://{address}/hook\n    secret_env: HOOK_SECRET\n    timeout_seconds: 1\n"
        ),
        &env(&[("HOOK_SECRET", "s3cret".into())]),
    )
    .expect("channels");
    let ops = channels.get("ops").expect("ops");

    ops.send(&message("m:3:0"), Utc::now())
        .await
        .expect("delivered");
    {
        let receiver = receiver.lock().expect("receiver");
        let (headers, body, _) = &receiver.seen[0];
        let signature = headers[SIGNATURE_HEADER].to_str().expect("ascii");
        assert!(verify_signature("s3cret", signature, body, Utc::now(), 300));
        assert!(!verify_signature("other", signature, body, Utc::now(), 300));
        assert_eq!(headers["x-sopflow-event-id"], "m:3:0");
        let sent: Message = serde_json::from_slice(body).expect("the message as JSON");
        assert_eq!(sent, message("m:3:0").clone_with_at(sent.at));
    }

    // A receiver in trouble: 500, then 429 asking for 7 s, then fine.
    receiver.lock().expect("receiver").answers.extend([
        StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "7")]).into_response(),
    ]);
    let first = ops.send(&message("m:4:0"), Utc::now()).await;
    assert!(matches!(first, Err(Failure::Retry { .. })), "{first:?}");
    let second = ops.send(&message("m:4:0"), Utc::now()).await;
    assert_eq!(
        second.as_ref().err().and_then(|f| match f {
            Failure::Retry { after, .. } => *after,
            _ => None,
        }),
        Some(Duration::from_secs(7))
    );
    ops.send(&message("m:4:0"), Utc::now())
        .await
        .expect("then delivered");
    let ids: Vec<String> = receiver.lock().expect("receiver").seen[1..]
        .iter()
        .map(|(headers, _, _)| {
            headers["x-sopflow-event-id"]
                .to_str()
                .expect("ascii")
                .to_string()
        })
        .collect();
    assert_eq!(ids, ["m:4:0"; 3], "every attempt carries the same id");

    // Refused outright, or redirected elsewhere: not tried again, and the redirect not followed.
    receiver.lock().expect("receiver").answers.extend([
        StatusCode::BAD_REQUEST.into_response(),
        (
            StatusCode::FOUND,
            [("location", "http://127.0.0.1:9/elsewhere")],
        )
            .into_response(),
    ]);
    for _ in 0..2 {
        let refused = ops.send(&message("m:5:0"), Utc::now()).await;
        assert!(
            matches!(refused, Err(Failure::Permanent { .. })),
            "{refused:?}"
        );
    }

    // Too slow: the channel's timeout (1 s) ends the wait, and the message is tried again.
    receiver.lock().expect("receiver").delay = Some(Duration::from_secs(3));
    let started = std::time::Instant::now();
    let slow = ops.send(&message("m:6:0"), Utc::now()).await;
    assert!(slow.as_ref().is_err_and(Failure::is_retryable), "{slow:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn an_unreachable_receiver_is_tried_again() {
    // A port nobody listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    drop(listener);
    let channels = Channels::parse(
        &format!("channels:\n  - id: ops\n    kind: webhook\n    url: http://{address}/hook\n    secret_env: S\n"),
        &env(&[("S", "x".into())]),
    )
    .expect("channels");
    let result = channels
        .get("ops")
        .expect("ops")
        .send(&message("m:1:0"), Utc::now())
        .await;
    assert!(
        result.as_ref().is_err_and(Failure::is_retryable),
        "{result:?}"
    );
}

#[tokio::test]
async fn the_wecom_and_dingtalk_robots_get_their_formats_signatures_and_codes() {
    let receiver = Shared::default();
    let address = serve(receiver.clone()).await;
    let channels = Channels::parse(
        "channels:\n  - id: supervisors\n    title: 客服主管群\n    kind: wecom\n    url_env: WECOM_URL\n    mention_mobiles: ['13800000000']\n  - id: duty\n    kind: dingtalk\n    url_env: DING_URL\n    secret_env: DING_SECRET\n",
        &env(&[
            ("WECOM_URL", format!("http://{address}/cgi-bin/webhook/send?key=wk")),
            ("DING_URL", format!("http://{address}/robot/send?access_token=dt")),
            ("DING_SECRET", "SECxyz".into()),
        ]),
    )
    .expect("channels");
    let wecom = channels.get("supervisors").expect("wecom");
    assert!(
        !wecom.describe().contains("wk"),
        "the key stays out of logs: {}",
        wecom.describe()
    );

    receiver.lock().expect("receiver").answers.extend([
        json(StatusCode::OK, r#"{"errcode":0,"errmsg":"ok"}"#),
        json(
            StatusCode::OK,
            r#"{"errcode":45009,"errmsg":"api freq out of limit"}"#,
        ),
        json(
            StatusCode::OK,
            r#"{"errcode":93000,"errmsg":"invalid webhook url"}"#,
        ),
    ]);
    wecom
        .send(&message("w:1:0"), Utc::now())
        .await
        .expect("posted");
    let limited = wecom.send(&message("w:2:0"), Utc::now()).await;
    assert!(
        limited.as_ref().is_err_and(Failure::is_retryable),
        "{limited:?}"
    );
    let wrong = wecom.send(&message("w:3:0"), Utc::now()).await;
    assert!(matches!(wrong, Err(Failure::Permanent { .. })), "{wrong:?}");
    {
        let receiver = receiver.lock().expect("receiver");
        let (_, body, query) = &receiver.seen[0];
        assert_eq!(query["key"], "wk");
        let body: serde_json::Value = serde_json::from_slice(body).expect("json");
        assert_eq!(body["msgtype"], "text");
        let content = body["text"]["content"].as_str().expect("content");
        assert!(
            content.starts_with("投诉已升级至主管\n顾客王女士"),
            "{content}"
        );
        assert!(content.ends_with("/instances/complaint_handling-000007"));
        assert_eq!(body["text"]["mentioned_mobile_list"][0], "13800000000");
    }

    let dingtalk = channels.get("duty").expect("dingtalk");
    receiver.lock().expect("receiver").answers.extend([
        json(StatusCode::OK, r#"{"errcode":0,"errmsg":"ok"}"#),
        json(
            StatusCode::OK,
            r#"{"errcode":310000,"errmsg":"sign not match"}"#,
        ),
        (StatusCode::OK, "<html>not json</html>").into_response(),
    ]);
    let now = Utc::now();
    dingtalk.send(&message("d:1:0"), now).await.expect("posted");
    let (_, body, query) = receiver.lock().expect("receiver").seen[3].clone();
    assert_eq!(query["access_token"], "dt");
    assert_eq!(query["timestamp"], now.timestamp_millis().to_string());
    // DingTalk's recipe, computed here the long way round.
    use base64::Engine as _;
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(b"SECxyz").expect("key");
    mac.update(format!("{}\nSECxyz", now.timestamp_millis()).as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    assert_eq!(query["sign"], expected);
    let body: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(body["msgtype"], "text");
    assert_eq!(body["at"]["isAtAll"], false);
    let mismatch = dingtalk.send(&message("d:2:0"), now).await;
    assert!(
        matches!(mismatch, Err(Failure::Permanent { .. })),
        "{mismatch:?}"
    );
    let garbled = dingtalk.send(&message("d:3:0"), now).await;
    assert!(
        garbled.as_ref().is_err_and(Failure::is_retryable),
        "{garbled:?}"
    );
}

/// A minimal SMTP server: accepts one message per connection and keeps what DATA carried.
async fn smtp_receiver(reply_to_data: &'static str) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let mails = Arc::new(Mutex::new(Vec::new()));
    let kept = mails.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let kept = kept.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                let _ = write.write_all(b"220 test ESMTP\r\n").await;
                let mut data: Option<String> = None;
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(mail) = data.as_mut() {
                        if line == "." {
                            kept.lock().expect("mails").push(std::mem::take(mail));
                            data = None;
                            let _ = write.write_all(reply_to_data.as_bytes()).await;
                        } else {
                            mail.push_str(&line);
                            mail.push('\n');
                        }
                        continue;
                    }
                    let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" => b"250-test\r\n250 8BITMIME\r\n",
                        "DATA" => {
                            data = Some(String::new());
                            b"354 go ahead\r\n"
                        }
                        "QUIT" => {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            break;
                        }
                        _ => b"250 ok\r\n",
                    };
                    let _ = write.write_all(reply).await;
                }
            });
        }
    });
    (address, mails)
}

#[tokio::test]
async fn an_email_reaches_the_smtp_server_with_a_stable_message_id() {
    let (address, mails) = smtp_receiver("250 queued\r\n").await;
    let channels = Channels::parse(
        &format!(
            "channels:\n  - id: duty_mail\n    kind: smtp\n    host: 127.0.0.1\n    port: {}\n    security: none\n    from: 客服中心 <noreply@example.com>\n    to: [duty@example.com]\n",
            address.port()
        ),
        &env(&[]),
    )
    .expect("channels");
    let mail = channels.get("duty_mail").expect("smtp");
    mail.send(&message("complaint_handling-000007:3:0"), Utc::now())
        .await
        .expect("handed over");
    mail.send(&message("complaint_handling-000007:3:0"), Utc::now())
        .await
        .expect("handed over again");
    let mails = mails.lock().expect("mails").clone();
    assert_eq!(mails.len(), 2);
    for mail in &mails {
        assert!(
            mail.contains("Message-ID: <complaint_handling-000007.3.0@sopflow>"),
            "{mail}"
        );
        assert!(mail.contains("duty@example.com") && mail.contains("zhou@example.com"));
        assert!(
            mail.contains("Subject: =?utf-8?"),
            "a Chinese subject is encoded: {mail}"
        );
    }

    let (address, _) = smtp_receiver("554 no thanks\r\n").await;
    let channels = Channels::parse(
        &format!(
            "channels:\n  - id: m\n    kind: smtp\n    host: localhost\n    port: {}\n    security: none\n    from: a@example.com\n    to: [b@example.com]\n",
            address.port()
        ),
        &env(&[]),
    )
    .expect("channels");
    let refused = channels
        .get("m")
        .expect("m")
        .send(&message("x:1:0"), Utc::now())
        .await;
    assert!(
        matches!(refused, Err(Failure::Permanent { .. })),
        "{refused:?}"
    );
}

#[test]
fn a_channel_that_cannot_work_stops_the_start_with_what_to_change() {
    let cases: &[(&str, &str)] = &[
        (
            "channels:\n  - id: ops\n    kind: webhook\n    url: http://127.0.0.1:9/hook\n    secret_env: MISSING\n",
            "MISSING is not set",
        ),
        (
            "channels:\n  - id: ops\n    kind: webhook\n    url: http://10.0.0.5/hook\n    secret_env: S\n",
            "use https://",
        ),
        (
            "channels:\n  - id: ops\n    kind: webhook\n    url: https://hooks.example.com/x\n",
            "secret_env",
        ),
        (
            "channels:\n  - id: g\n    kind: wecom\n    url: https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k\n",
            "url_env",
        ),
        (
            "channels:\n  - id: g\n    kind: wecom\n    url_env: S\n    host: x\n",
            "`host` does not apply",
        ),
        (
            "channels:\n  - id: m\n    kind: smtp\n    host: smtp.example.com\n    security: none\n    from: a@example.com\n",
            "allowed to this machine only",
        ),
        (
            "channels:\n  - id: m\n    kind: smtp\n    host: smtp.example.com\n    security: starttls\n    from: a@example.com\n    username_env: S\n",
            "both `username_env` and `password_env`",
        ),
        (
            "channels:\n  - id: ops\n    kind: webhook\n    url: https://a.example\n    secret_env: S\n  - id: ops\n    kind: webhook\n    url: https://b.example\n    secret_env: S\n",
            "declared twice",
        ),
        (
            "channels:\n  - id: Ops Team\n    kind: webhook\n",
            "snake_case",
        ),
        ("channels:\n  - id: ops\n    kind: pager\n", "hint:"),
        (
            "channels:\n  - id: ops\n    kind: webhook\n    secret: abc\n",
            "hint:",
        ),
        ("delivery: { max_attempts: 0 }\n", "max_attempts"),
        ("delivery: { first_retry_seconds: 0 }\n", "between 1 second"),
    ];
    let env = env(&[("S", "value".into())]);
    for (text, expected) in cases {
        let err = Channels::parse(text, &env).expect_err(text);
        assert!(
            err.contains(expected),
            "{text}\n=> {err}\n(expected {expected:?})"
        );
        assert!(
            !err.contains("value"),
            "a secret's value never appears in an error: {err}"
        );
    }
    let fine = Channels::parse(
        "channels:\n  - id: ops\n    kind: webhook\n    url: https://hooks.example.com/x\n    secret_env: S\n",
        &env,
    )
    .expect("a near miss that works");
    assert_eq!(
        fine.get("ops").expect("ops").describe(),
        "https://hooks.example.com/x"
    );
}

trait WithAt {
    fn clone_with_at(&self, at: chrono::DateTime<Utc>) -> Message;
}

impl WithAt for Message {
    fn clone_with_at(&self, at: chrono::DateTime<Utc>) -> Message {
        Message { at, ..self.clone() }
    }
}

#[test]
fn the_readme_channels_file_is_read_as_written() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    let example = readme
        .split("```yaml\n")
        .filter_map(|rest| rest.split("```").next())
        .find(|block| block.contains("url_env: SOPFLOW_WECOM_CS_GROUP"))
        .expect("the channels example");
    let names = [
        "SOPFLOW_WECOM_CS_GROUP",
        "SOPFLOW_DINGTALK_DUTY",
        "SOPFLOW_DINGTALK_DUTY_SECRET",
        "SOPFLOW_PROPERTY_APP_SECRET",
        "SOPFLOW_SMTP_USER",
        "SOPFLOW_SMTP_PASSWORD",
    ];
    let values = |name: &str| match name {
        "SOPFLOW_WECOM_CS_GROUP" => {
            Some("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k".to_string())
        }
        "SOPFLOW_DINGTALK_DUTY" => {
            Some("https://oapi.dingtalk.com/robot/send?access_token=t".to_string())
        }
        other => names.contains(&other).then(|| "secret".to_string()),
    };
    let channels = Channels::parse(example, &values).expect("the README's channels file");
    let ids: Vec<&str> = channels.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["cs_group", "duty_mail", "duty_robot", "property_app"]);
    assert_eq!(channels.backoff.max_attempts, 10);
    assert_eq!(channels.backoff.max_retry, Duration::from_secs(3600));
    // Each variable it names is needed: without any one of them the file is refused.
    for missing in names {
        let without = |name: &str| if name == missing { None } else { values(name) };
        let err = Channels::parse(example, &without).expect_err(missing);
        assert!(err.contains(missing), "{err}");
    }
}
