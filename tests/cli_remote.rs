//! `start`, `fire`, `show`, `list` and `history` with `--server`: the built binary against a
//! server running in this process (the shipped workflows, the demo users), beside the same
//! commands on a local data folder, whose output must have the same shape.

mod support;

use serde_json::{Map, Value};
use std::path::Path;
use std::process::{Command, Output};

const SUBMISSION: &str =
    r#"{"notification_letter":"HW-1","applicant_seal":true,"operator_certificate":"T-1"}"#;

/// Runs the binary with `args` (in a blocking thread: the server answers on this runtime).
async fn sopflow(args: Vec<String>, env: Vec<(&'static str, String)>) -> Output {
    tokio::task::spawn_blocking(move || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sopflow"));
        command
            .args(&args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("NO_COLOR", "1")
            .env_remove("SOPFLOW_SERVER")
            .env_remove("SOPFLOW_TOKEN");
        for (key, value) in env {
            command.env(key, value);
        }
        command.output().expect("sopflow runs")
    })
    .await
    .expect("the command's thread finishes")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// Where commands run: through a server as a demo user, or on a local data folder as an
/// actor with roles.
enum Via<'a> {
    Server { base: &'a str, user: &'a str },
    Local { data: &'a Path },
}

impl Via<'_> {
    /// `args` with the flags that choose where, and who.
    fn args(&self, args: &[&str], actor: Option<(&str, &str)>) -> Vec<String> {
        let mut all = strings(args);
        match self {
            Via::Server { base, user } => {
                all.extend(strings(&["--server", base, "--token"]));
                all.push(format!("demo-{user}"));
            }
            Via::Local { data } => {
                let root = Path::new(env!("CARGO_MANIFEST_DIR"));
                all.push("--data-dir".into());
                all.push(data.display().to_string());
                all.push("--workflows".into());
                all.push(root.join("workflows").display().to_string());
                all.push("--rules".into());
                all.push(root.join("rules").display().to_string());
                if let Some((id, role)) = actor {
                    all.extend(strings(&["--actor", id, "--role", role]));
                }
            }
        }
        all
    }

    async fn run(&self, args: &[&str], actor: Option<(&str, &str)>) -> Output {
        sopflow(self.args(args, actor), Vec::new()).await
    }

    /// Runs with `--format json`, expects `code`, and returns the JSON printed.
    async fn json(&self, args: &[&str], actor: Option<(&str, &str)>, code: i32) -> Value {
        let mut all = args.to_vec();
        all.extend(["--format", "json"]);
        let output = self.run(&all, actor).await;
        assert_eq!(
            output.status.code(),
            Some(code),
            "sopflow {all:?}\nstdout: {}\nstderr: {}",
            stdout(&output),
            stderr(&output)
        );
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!("sopflow {all:?} printed no JSON ({e}): {}", stdout(&output))
        })
    }

    /// Runs with `--format human`, expects exit 0, and returns what it printed.
    async fn human(&self, args: &[&str], actor: Option<(&str, &str)>) -> String {
        let output = self.run(args, actor).await;
        assert_eq!(
            output.status.code(),
            Some(0),
            "sopflow {args:?}\nstdout: {}\nstderr: {}",
            stdout(&output),
            stderr(&output)
        );
        stdout(&output)
    }
}

/// The shape of a JSON value: its members and the kinds of its leaves, with every element
/// of an array the shape of its first.
fn shape(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), shape(v)))
                .collect::<Map<String, Value>>(),
        ),
        Value::Array(items) => Value::Array(items.first().map(shape).into_iter().collect()),
        Value::Null => "null".into(),
        Value::Bool(_) => "bool".into(),
        Value::Number(_) => "number".into(),
        Value::String(_) => "string".into(),
    }
}

fn id_of(answer: &Value) -> String {
    answer["instance"]["id"]
        .as_str()
        .expect("an instance id")
        .to_string()
}

/// The permit to the end, through the server and locally side by side: every command's JSON
/// has the same shape, the steps land in the same states, the wrong role is refused with exit
/// 3 and writes nothing, and the human output carries the workflow's Chinese titles.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_commands_match_local_ones() {
    let server = support::spawn().await;
    let local_dir = tempfile::tempdir().expect("a temp dir");
    let data = local_dir.path().join("data");
    let base = server.base.clone();
    let remote = |user| Via::Server { base: &base, user };
    let local = Via::Local { data: &data };

    // start, as the contractor.
    let started = remote("wang")
        .json(&["start", "hot_work_permit"], None, 0)
        .await;
    let started_local = local
        .json(
            &["start", "hot_work_permit"],
            Some(("wang", "contractor")),
            0,
        )
        .await;
    assert_eq!(shape(&started), shape(&started_local));
    assert_eq!(started["instance"]["state"], "drafted");
    assert_eq!(
        started["entry"]["actor"], "wang",
        "the token decided who acts"
    );
    assert_eq!(started["replayed"], false);
    let id = id_of(&started);
    let local_id = id_of(&started_local);

    // submit, with the letter's details.
    let submitted = remote("wang")
        .json(&["fire", &id, "submit", "--payload", SUBMISSION], None, 0)
        .await;
    let submitted_local = local
        .json(
            &["fire", &local_id, "submit", "--payload", SUBMISSION],
            Some(("wang", "contractor")),
            0,
        )
        .await;
    assert_eq!(shape(&submitted), shape(&submitted_local));
    assert_eq!(submitted["instance"]["state"], "security_review");
    assert_eq!(submitted["entry"]["role"], "contractor");

    // The contractor cannot approve their own permit: refused, as locally, and nothing moves.
    let refused = remote("wang")
        .json(&["fire", &id, "approve"], None, 3)
        .await;
    let refused_local = local
        .json(
            &["fire", &local_id, "approve"],
            Some(("wang", "contractor")),
            3,
        )
        .await;
    assert_eq!(shape(&refused), shape(&refused_local));
    assert_eq!(refused["refused"]["code"], "role_not_allowed");
    assert_eq!(refused["refused"]["code"], refused_local["refused"]["code"]);
    let reason = refused["refused"]["reason"].as_str().expect("a reason");
    assert!(
        reason.contains("order_dept") && !reason.starts_with("refused"),
        "{reason}"
    );
    // People read the refusal in their language, by the titles of the YAML, local or remote.
    for said in [&refused, &refused_local] {
        let message = said["refused"]["message"].as_str().expect("a message");
        assert!(
            message.contains("秩序维护部") && !message.contains("order_dept"),
            "{message}"
        );
    }
    let output = remote("wang")
        .run(&["fire", &id, "approve", "--lang", "en"], None)
        .await;
    assert_eq!(output.status.code(), Some(3));
    assert!(
        stderr(&output)
            .starts_with("refused: “初审通过” is for 秩序维护部; your roles: 装修施工单位"),
        "{}",
        stderr(&output)
    );
    let output = remote("wang")
        .run(&["fire", &id, "approve", "--lang", "zh"], None)
        .await;
    assert!(
        stderr(&output).starts_with("未办理:“初审通过”须由秩序维护部办理;您的身份:装修施工单位"),
        "{}",
        stderr(&output)
    );
    let after = remote("li").json(&["history", &id], None, 0).await;
    assert_eq!(
        after.as_array().map(Vec::len),
        Some(2),
        "a refusal writes nothing: {after}"
    );

    // show: the events are the caller's (li, of the order department), as with --actor li.
    let shown = remote("li").json(&["show", &id], None, 0).await;
    let shown_local = local
        .json(&["show", &local_id], Some(("li", "order_dept")), 0)
        .await;
    assert_eq!(shape(&shown), shape(&shown_local));
    assert_eq!(shown["state_title"], "秩序维护部初审");
    assert_eq!(shown["instance"]["seq"], 1);
    assert_eq!(shown["available"], shown_local["available"]);
    let shown_wang = remote("wang").json(&["show", &id], None, 0).await;
    assert_eq!(shown_wang["available"], serde_json::json!([]));

    let human = remote("li").human(&["show", &id], None).await;
    let human_local = local
        .human(&["show", &local_id], Some(("li", "order_dept")))
        .await;
    assert!(
        human.contains("  state     security_review (秩序维护部初审)"),
        "{human}"
    );
    assert!(human.contains("hot_work_permit (动火证审批)"), "{human}");
    assert!(
        human.contains("li (order_dept) may fire\n  approve (初审通过) as order_dept"),
        "{human}"
    );
    let tail = |text: &str| text.lines().skip(4).collect::<Vec<_>>().join("\n");
    assert_eq!(
        tail(&human),
        tail(&human_local),
        "data, titles and events print alike"
    );

    // The rest of the way, each by the right person, on both.
    for (user, role, event, payload) in [
        ("li", "order_dept", "approve", None),
        ("zhou", "cs_dept", "approve", None),
        ("chen", "project_gm", "approve", None),
        ("zhao", "admin_dept", "affix_seal", None),
        (
            "zhou",
            "cs_dept",
            "distribute",
            Some(
                r#"{"archive_reference":"CS-ARCH-1","copy_to_applicant":true,"copy_to_order_dept":true}"#,
            ),
        ),
    ] {
        let mut args = vec!["fire", id.as_str(), event];
        let mut local_args = vec!["fire", local_id.as_str(), event];
        if let Some(payload) = payload {
            args.extend(["--payload", payload]);
            local_args.extend(["--payload", payload]);
        }
        let answer = remote(user).json(&args, None, 0).await;
        let answer_local = local.json(&local_args, Some((user, role)), 0).await;
        assert_eq!(shape(&answer), shape(&answer_local), "{event}");
        assert_eq!(answer["entry"]["actor"], user);
        assert_eq!(answer["entry"]["role"], role);
        assert_eq!(
            answer["instance"]["state"],
            answer_local["instance"]["state"]
        );
    }
    let fired = remote("zhou").human(&["show", &id], None).await;
    assert!(
        fired.contains("distributed (已签发,原件存档), finished"),
        "{fired}"
    );

    // list and history, JSON and human.
    let listed = remote("audit")
        .json(&["list", "--workflow", "hot_work_permit"], None, 0)
        .await;
    let listed_local = local
        .json(&["list", "--workflow", "hot_work_permit"], None, 0)
        .await;
    assert_eq!(shape(&listed), shape(&listed_local));
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    assert_eq!(listed[0]["id"], id.as_str());
    let done = remote("audit")
        .json(&["list", "--state", "distributed", "--limit", "5"], None, 0)
        .await;
    assert_eq!(done.as_array().map(Vec::len), Some(1));
    let table = remote("audit").human(&["list"], None).await;
    assert!(table.starts_with("ID "), "{table}");
    assert!(table.contains("已签发,原件存档 (finished)"), "{table}");

    let history = remote("audit").json(&["history", &id], None, 0).await;
    let history_local = local.json(&["history", &local_id], None, 0).await;
    let all_shapes = |h: &Value| -> Vec<Value> {
        h.as_array()
            .map(|a| a.iter().map(shape).collect())
            .unwrap_or_default()
    };
    assert_eq!(all_shapes(&history), all_shapes(&history_local));
    let actors: Vec<&str> = history
        .as_array()
        .expect("a list of entries")
        .iter()
        .filter_map(|e| e["actor"].as_str())
        .collect();
    assert_eq!(
        actors,
        ["wang", "wang", "li", "zhou", "chen", "zhao", "zhou"]
    );
    let blocks = remote("audit").human(&["history", &id], None).await;
    for title in [
        "提交申请",
        "初审通过",
        "复审通过",
        "审定签字",
        "加盖服务中心鲜章",
    ] {
        assert!(blocks.contains(title), "{title} in\n{blocks}");
    }
    assert!(
        blocks.contains("by li as order_dept (秩序维护部)"),
        "{blocks}"
    );

    // An idempotency key travels as a header: the repeat answers the same, replayed.
    let keyed = remote("wang")
        .json(
            &[
                "start",
                "hot_work_permit",
                "--idempotency-key",
                "cli-remote-1",
            ],
            None,
            0,
        )
        .await;
    let again = remote("wang")
        .json(
            &[
                "start",
                "hot_work_permit",
                "--idempotency-key",
                "cli-remote-1",
            ],
            None,
            0,
        )
        .await;
    assert_eq!(again["replayed"], true);
    assert_eq!(id_of(&again), id_of(&keyed));

    server.stop().await;
}

/// What goes wrong says so: a token nobody has (exit 1), `--actor` with `--server` and an
/// https URL (usage errors, exit 2), an instance that is not there (exit 1), and no server
/// at the address (exit 1, naming it and `sopflow serve`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_failures_are_clear() {
    let server = support::spawn().await;
    let base = server.base.clone();

    let bad = sopflow(
        strings(&["list", "--server", &base, "--token", "not-a-token"]),
        Vec::new(),
    )
    .await;
    assert_eq!(bad.status.code(), Some(1), "{}", stderr(&bad));
    assert!(
        stderr(&bad).contains("did not accept the token")
            && stderr(&bad).contains("matches no user"),
        "{}",
        stderr(&bad)
    );
    let bad_json = sopflow(
        strings(&[
            "show",
            "hot_work_permit-1",
            "--server",
            &base,
            "--token",
            "not-a-token",
            "--format",
            "json",
        ]),
        Vec::new(),
    )
    .await;
    assert_eq!(bad_json.status.code(), Some(1));
    let answer: Value = serde_json::from_slice(&bad_json.stdout).expect("JSON");
    assert_eq!(answer["error"]["code"], "unauthenticated");

    // The flags can come from the environment.
    let from_env = sopflow(
        strings(&["start", "hot_work_permit", "--format", "json"]),
        vec![
            ("SOPFLOW_SERVER", base.clone()),
            ("SOPFLOW_TOKEN", "demo-wang".into()),
        ],
    )
    .await;
    assert_eq!(from_env.status.code(), Some(0), "{}", stderr(&from_env));

    let who = sopflow(
        strings(&[
            "start",
            "hot_work_permit",
            "--server",
            &base,
            "--token",
            "demo-wang",
            "--actor",
            "li",
            "--role",
            "order_dept",
        ]),
        Vec::new(),
    )
    .await;
    fails_with(&who, 2, "the token decides who acts");

    let no_token = sopflow(strings(&["list", "--server", &base]), Vec::new()).await;
    fails_with(&no_token, 2, "needs --token");

    // https:// is spoken: against a server that answers in plain HTTP the handshake fails,
    // and nothing is sent in the clear.
    let https_base = base.replacen("http://", "https://", 1);
    let https = sopflow(
        strings(&["list", "--server", &https_base, "--token", "demo-wang"]),
        Vec::new(),
    )
    .await;
    fails_with(
        &https,
        1,
        "cannot connect to the sopflow server at https://",
    );

    let missing = sopflow(
        strings(&[
            "history",
            "hot_work_permit-999",
            "--server",
            &base,
            "--token",
            "demo-li",
        ]),
        Vec::new(),
    )
    .await;
    fails_with(&missing, 1, "no instance `hot_work_permit-999`");

    server.stop().await;

    // A port nobody listens on: take one, then let it go.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        format!("http://{}", listener.local_addr().expect("an address"))
    };
    let down = sopflow(
        strings(&["list", "--server", &closed, "--token", "demo-wang"]),
        Vec::new(),
    )
    .await;
    assert_eq!(down.status.code(), Some(1));
    let message = stderr(&down);
    assert!(
        message.contains(&closed) && message.contains("sopflow serve"),
        "{message}"
    );
}

/// Asserts the exit code and that standard error says `text`.
fn fails_with(output: &Output, code: i32, text: &str) {
    assert_eq!(output.status.code(), Some(code), "{}", stderr(output));
    assert!(stderr(output).contains(text), "{}", stderr(output));
}

/// `audit chain`, `verify` and `export` through a server, which holds the store: the same
/// output as on a local data folder where the same steps were taken, and for auditors only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_commands_run_through_a_server_for_auditors() {
    let server = support::spawn().await;
    let local_dir = tempfile::tempdir().expect("a temp dir");
    let data = local_dir.path().join("data");
    let base = server.base.clone();
    let remote = |user| Via::Server { base: &base, user };
    let local = Via::Local { data: &data };

    let id = id_of(
        &remote("wang")
            .json(&["start", "hot_work_permit"], None, 0)
            .await,
    );
    let local_id = id_of(
        &local
            .json(
                &["start", "hot_work_permit"],
                Some(("wang", "contractor")),
                0,
            )
            .await,
    );
    remote("wang")
        .json(&["fire", &id, "submit", "--payload", SUBMISSION], None, 0)
        .await;
    local
        .json(
            &["fire", &local_id, "submit", "--payload", SUBMISSION],
            Some(("wang", "contractor")),
            0,
        )
        .await;
    remote("li").json(&["fire", &id, "approve"], None, 0).await;
    local
        .json(
            &["fire", &local_id, "approve"],
            Some(("li", "order_dept")),
            0,
        )
        .await;

    // The chain: the same steps, by the same people, in the same roles.
    let chain = remote("audit")
        .json(&["audit", "chain", &id], None, 0)
        .await;
    let chain_local = local.json(&["audit", "chain", &local_id], None, 0).await;
    let steps = |chain: &Value| -> Vec<(Value, Value, Value, Value)> {
        chain["links"]
            .as_array()
            .expect("links")
            .iter()
            .map(|l| {
                (
                    l["kind"].clone(),
                    l["event"].clone(),
                    l["actor"].clone(),
                    l["role_title"].clone(),
                )
            })
            .collect()
    };
    assert_eq!(steps(&chain), steps(&chain_local));
    assert_eq!(steps(&chain).len(), 3, "{chain}");
    let human = remote("audit").run(&["audit", "chain", &id], None).await;
    assert_eq!(human.status.code(), Some(0), "{}", stderr(&human));
    assert!(
        stdout(&human).contains("li as order_dept (秩序维护部)"),
        "{}",
        stdout(&human)
    );

    // Verify: the server's store is intact, as the local one.
    let verified = remote("audit").json(&["audit", "verify"], None, 0).await;
    let verified_local = local.json(&["audit", "verify"], None, 0).await;
    assert_eq!(verified["clean"], true, "{verified}");
    assert_eq!(shape(&verified), shape(&verified_local));
    assert_eq!(
        verified["summary"]["entries"],
        verified_local["summary"]["entries"]
    );
    let human = remote("audit").run(&["audit", "verify"], None).await;
    assert!(
        stdout(&human).contains("every chain intact"),
        "{}",
        stdout(&human)
    );

    // Export: the same columns and as many rows.
    let export = remote("audit").run(&["audit", "export"], None).await;
    let export_local = local.run(&["audit", "export"], None).await;
    assert_eq!(export.status.code(), Some(0), "{}", stderr(&export));
    let lines = |output: &Output| stdout(output).lines().count();
    assert_eq!(
        stdout(&export).lines().next(),
        stdout(&export_local).lines().next()
    );
    assert_eq!(lines(&export), lines(&export_local));
    assert!(lines(&export) > 1, "{}", stdout(&export));

    // Only an auditor verifies or exports; the contractor is told so.
    let refused = remote("wang").run(&["audit", "verify"], None).await;
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr(&refused).contains("auditor"), "{}", stderr(&refused));
}
