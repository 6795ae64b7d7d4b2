//! The `start`, `fire`, `show`, `list` and `history` commands, run as a user runs them, each on
//! a data folder in a temp dir with the shipped workflows and rules.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SUBMISSION: &str =
    r#"{"notification_letter":"HW-1","applicant_seal":true,"operator_certificate":"T-1"}"#;

/// A temp dir whose `data` folder the commands use.
struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    fn new() -> Site {
        Site {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs `sopflow ARGS --data-dir … --workflows … --rules …`.
    fn run(&self, args: &[&str]) -> Output {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        Command::new(env!("CARGO_BIN_EXE_sopflow"))
            .args(args)
            .arg("--data-dir")
            .arg(self.data())
            .arg("--workflows")
            .arg(root.join("workflows"))
            .arg("--rules")
            .arg(root.join("rules"))
            .current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .output()
            .expect("run sopflow")
    }

    /// Runs with `--format json`, expects `code`, and returns the JSON printed.
    fn json(&self, args: &[&str], code: i32) -> Value {
        let mut all = args.to_vec();
        all.extend(["--format", "json"]);
        let output = self.run(&all);
        assert_eq!(
            output.status.code(),
            Some(code),
            "sopflow {args:?}\nstdout: {}\nstderr: {}",
            stdout(&output),
            stderr(&output)
        );
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "sopflow {args:?} printed no JSON ({e}): {}",
                stdout(&output)
            )
        })
    }

    /// Starts a hot-work permit as the contractor `wang` and returns its id.
    fn start_permit(&self) -> String {
        let started = self.json(
            &[
                "start",
                "hot_work_permit",
                "--actor",
                "wang",
                "--role",
                "contractor",
            ],
            0,
        );
        started["instance"]["id"]
            .as_str()
            .expect("instance id")
            .to_string()
    }

    /// A permit submitted with complete documents, in `security_review`.
    fn submitted_permit(&self) -> String {
        let id = self.start_permit();
        let submitted = self.json(
            &[
                "fire",
                &id,
                "submit",
                "--actor",
                "wang",
                "--role",
                "contractor",
                "--payload",
                SUBMISSION,
            ],
            0,
        );
        assert_eq!(submitted["instance"]["state"], "security_review");
        id
    }

    fn fire(&self, id: &str, event: &str, actor: &str, role: &str, code: i32) -> Value {
        self.json(&["fire", id, event, "--actor", actor, "--role", role], code)
    }

    fn history_len(&self, id: &str) -> usize {
        self.json(&["history", id], 0)
            .as_array()
            .expect("history is an array")
            .len()
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn events(shown: &Value) -> Vec<String> {
    shown["available"]
        .as_array()
        .expect("available is an array")
        .iter()
        .map(|a| a["event"].as_str().expect("event").to_string())
        .collect()
}

#[test]
fn a_hot_work_permit_runs_end_to_end_from_the_cli() {
    let site = Site::new();
    let id = site.start_permit();
    assert_eq!(id, "hot_work_permit-1");
    let submitted = site.json(
        &[
            "fire",
            &id,
            "submit",
            "--actor",
            "wang",
            "--role",
            "contractor",
            "--payload",
            SUBMISSION,
        ],
        0,
    );
    assert_eq!(submitted["replayed"], false);
    assert_eq!(submitted["entry"]["event"], "submit");
    assert_eq!(submitted["entry"]["guards"][0]["passed"], true);
    assert_eq!(submitted["instance"]["data"]["applicant_seal"], true);

    // The contractor may not approve their own permit: refused, nothing written.
    let before = site.history_len(&id);
    let refused = site.fire(&id, "approve", "wang", "contractor", 3);
    assert_eq!(refused["refused"]["code"], "role_not_allowed");
    assert!(
        refused["refused"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("order_dept")),
        "{refused}"
    );
    assert_eq!(site.history_len(&id), before);
    let human = site.run(&[
        "fire",
        &id,
        "approve",
        "--actor",
        "wang",
        "--role",
        "contractor",
    ]);
    assert_eq!(human.status.code(), Some(3));
    assert!(
        stderr(&human).starts_with("refused: "),
        "{}",
        stderr(&human)
    );

    let reviewed = site.fire(&id, "approve", "li", "order_dept", 0);
    assert_eq!(reviewed["instance"]["state"], "cs_review");
    let reviewed = site.fire(&id, "approve", "zhao", "cs_dept", 0);
    assert_eq!(reviewed["instance"]["state"], "gm_review");
    let signed = site.fire(&id, "approve", "chen", "project_gm", 0);
    assert_eq!(signed["instance"]["state"], "signed");
    let sealed = site.fire(&id, "affix_seal", "sun", "admin_dept", 0);
    assert_eq!(sealed["instance"]["state"], "effective");
    assert!(
        sealed["instance"]["data"]["sealed_at"].is_string(),
        "{sealed}"
    );
    let distributed = site.json(
        &[
            "fire",
            &id,
            "distribute",
            "--actor",
            "zhao",
            "--role",
            "cs_dept",
            "--payload",
            r#"{"archive_reference":"A-1","copy_to_applicant":true,"copy_to_order_dept":true}"#,
        ],
        0,
    );
    assert_eq!(distributed["instance"]["state"], "distributed");
    assert_eq!(distributed["instance"]["finished"], true);

    let shown = site.json(&["show", &id], 0);
    assert_eq!(shown["instance"]["state"], "distributed");
    assert_eq!(shown["state_title"], "已签发,原件存档");
    assert!(shown["available"].is_null());
    let history = site.json(&["history", &id], 0);
    let history = history.as_array().expect("array");
    assert_eq!(history.len(), 7);
    let seqs: Vec<u64> = history.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert_eq!(seqs, [0, 1, 2, 3, 4, 5, 6]);
    let actors: Vec<&str> = history.iter().filter_map(|e| e["actor"].as_str()).collect();
    assert_eq!(
        actors,
        ["wang", "wang", "li", "zhao", "chen", "sun", "zhao"]
    );

    // For people: titles as written, one block per step.
    let listed = site.run(&["list"]);
    assert_eq!(listed.status.code(), Some(0));
    let listed = stdout(&listed);
    assert!(listed.contains("hot_work_permit-1"), "{listed}");
    assert!(listed.contains("distributed"), "{listed}");
    assert!(listed.contains("已签发,原件存档"), "{listed}");
    let history = site.run(&["history", &id]);
    assert_eq!(history.status.code(), Some(0));
    let history = stdout(&history);
    assert_eq!(history.matches("\n#").count() + 1, 7, "{history}");
    assert!(
        history.contains("security_review (秩序维护部初审) -> cs_review (客服部复审)"),
        "{history}"
    );
    assert!(
        history.contains("by li as order_dept (秩序维护部)"),
        "{history}"
    );
    assert!(
        history.contains("hot_work::documents_complete: passed"),
        "{history}"
    );
    assert!(
        history.contains(
            r#"{"archive_reference":"A-1","copy_to_applicant":true,"copy_to_order_dept":true}"#
        ),
        "{history}"
    );
}

#[test]
fn a_rejection_needs_a_comment() {
    let site = Site::new();
    let id = site.submitted_permit();
    let before = site.history_len(&id);
    let refused = site.fire(&id, "reject", "li", "order_dept", 3);
    assert_eq!(refused["refused"]["code"], "comment_required");
    assert_eq!(site.history_len(&id), before);

    let rejected = site.json(
        &[
            "fire",
            &id,
            "reject",
            "--actor",
            "li",
            "--role",
            "order_dept",
            "--comment",
            "操作人合格证已过期",
        ],
        0,
    );
    assert_eq!(rejected["instance"]["state"], "rejected");
    assert_eq!(
        rejected["entry"]["payload"]["comment"],
        "操作人合格证已过期"
    );
    assert_eq!(site.history_len(&id), before + 1);
}

#[test]
fn show_lists_the_events_an_actor_may_fire() {
    let site = Site::new();
    let id = site.submitted_permit();
    let shown = site.json(&["show", &id, "--actor", "li", "--role", "order_dept"], 0);
    assert_eq!(shown["instance"]["state"], "security_review");
    assert_eq!(shown["state_title"], "秩序维护部初审");
    let mut fireable = events(&shown);
    fireable.sort();
    assert_eq!(fireable, ["approve", "reject"]);
    let contractor = site.json(&["show", &id, "--actor", "wang", "--role", "contractor"], 0);
    assert_eq!(events(&contractor), Vec::<String>::new());

    let human = site.run(&["show", &id, "--actor", "li", "--role", "order_dept"]);
    assert_eq!(human.status.code(), Some(0));
    let human = stdout(&human);
    assert!(
        human.contains("security_review (秩序维护部初审)"),
        "{human}"
    );
    assert!(
        human.contains("approve (初审通过) as order_dept"),
        "{human}"
    );
    assert!(human.contains("reject (初审退回) as order_dept"), "{human}");
    assert!(human.contains("\"HW-1\""), "{human}");
    let human = site.run(&["show", &id, "--actor", "wang", "--role", "contractor"]);
    assert!(
        stdout(&human).contains("wang (contractor) may fire nothing now"),
        "{}",
        stdout(&human)
    );
    // --role without --actor is a usage error.
    assert_eq!(
        site.run(&["show", &id, "--role", "order_dept"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn malformed_payload_json_exits_1_and_writes_nothing() {
    let site = Site::new();
    let id = site.start_permit();
    let bad = site.json(
        &[
            "fire",
            &id,
            "submit",
            "--actor",
            "wang",
            "--role",
            "contractor",
            "--payload",
            r#"{"notification_letter": "HW-1",}"#,
        ],
        1,
    );
    assert_eq!(bad["error"]["code"], "bad_input");
    let message = bad["error"]["message"].as_str().expect("message");
    assert!(message.contains("--payload is not valid JSON"), "{message}");
    assert!(message.contains("line 1 column"), "{message}");
    let human = site.run(&[
        "fire",
        &id,
        "submit",
        "--actor",
        "wang",
        "--role",
        "contractor",
        "--payload",
        "[1, 2]",
    ]);
    assert_eq!(human.status.code(), Some(1));
    assert!(
        stderr(&human).contains("--payload must be a JSON object"),
        "{}",
        stderr(&human)
    );
    assert_eq!(site.history_len(&id), 1);

    // Bad --data on start: nothing is started (not even the data folder).
    let other = Site::new();
    let bad = other.json(
        &[
            "start",
            "hot_work_permit",
            "--actor",
            "wang",
            "--role",
            "contractor",
            "--data",
            "nope",
        ],
        1,
    );
    assert!(
        bad["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("--data is not valid JSON")),
        "{bad}"
    );
    assert!(!other.data().exists());
}

#[test]
fn a_string_for_a_bool_field_is_refused_as_ill_typed() {
    let site = Site::new();
    let id = site.start_permit();
    let refused = site.json(
        &[
            "fire",
            &id,
            "submit",
            "--actor",
            "wang",
            "--role",
            "contractor",
            "--payload",
            r#"{"notification_letter":"HW-1","applicant_seal":"abc","operator_certificate":"T-1"}"#,
        ],
        3,
    );
    assert_eq!(refused["refused"]["code"], "ill_typed");
    assert!(
        refused["refused"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("applicant_seal")),
        "{refused}"
    );
    assert_eq!(site.history_len(&id), 1);
}

#[test]
fn unknown_workflows_and_instances_exit_1() {
    let site = Site::new();
    let output = site.run(&[
        "start",
        "hot_work_permt",
        "--actor",
        "wang",
        "--role",
        "contractor",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("did you mean `hot_work_permit`?"),
        "{}",
        stderr(&output)
    );
    let json = site.json(
        &[
            "start",
            "hot_work_permt",
            "--actor",
            "wang",
            "--role",
            "contractor",
        ],
        1,
    );
    assert_eq!(json["error"]["code"], "unknown_workflow");

    site.start_permit();
    for args in [
        &["show", "hot_work_permit-99"][..],
        &["history", "hot_work_permit-99"][..],
        &[
            "fire",
            "hot_work_permit-99",
            "submit",
            "--actor",
            "wang",
            "--role",
            "contractor",
        ][..],
    ] {
        let output = site.run(args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&output).contains("no instance `hot_work_permit-99`"),
            "{args:?}: {}",
            stderr(&output)
        );
        assert_eq!(site.json(args, 1)["error"]["code"], "unknown_instance");
    }
}

#[test]
fn read_only_commands_do_not_create_a_missing_data_dir() {
    let site = Site::new();
    for args in [
        &["show", "hot_work_permit-1"][..],
        &["list"][..],
        &["history", "hot_work_permit-1"][..],
        &[
            "fire",
            "hot_work_permit-1",
            "submit",
            "--actor",
            "wang",
            "--role",
            "contractor",
        ][..],
    ] {
        let output = site.run(args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&output).contains("no sopflow data at"),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(!site.data().exists(), "{args:?} created the data folder");
    }
    let json = site.json(&["list"], 1);
    assert_eq!(json["error"]["code"], "store");
    assert!(!site.data().exists());
}

#[test]
fn a_payload_over_one_mib_is_refused() {
    let site = Site::new();
    let id = site.start_permit();
    let big = json!({
        "notification_letter": "x".repeat(sopflow::engine::MAX_PAYLOAD_BYTES + 1),
        "applicant_seal": true,
        "operator_certificate": "T-1",
    });
    let file = site.dir.path().join("big.json");
    std::fs::write(&file, big.to_string()).expect("write payload");
    let at_file = format!("@{}", file.display());
    let refused = site.json(
        &[
            "fire",
            &id,
            "submit",
            "--actor",
            "wang",
            "--role",
            "contractor",
            "--payload",
            &at_file,
        ],
        1,
    );
    assert_eq!(refused["error"]["code"], "payload_too_large");
    assert!(
        refused["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("more than the limit")),
        "{refused}"
    );
    assert_eq!(site.history_len(&id), 1);

    // The same file form works for payloads within the limit.
    std::fs::write(&file, SUBMISSION).expect("write payload");
    let submitted = site.json(
        &[
            "fire",
            &id,
            "submit",
            "--actor",
            "wang",
            "--role",
            "contractor",
            "--payload",
            &at_file,
        ],
        0,
    );
    assert_eq!(submitted["instance"]["state"], "security_review");
}

#[test]
fn a_replayed_idempotency_key_returns_the_same_entry() {
    let site = Site::new();
    let id = site.start_permit();
    let args = [
        "fire",
        &id,
        "submit",
        "--actor",
        "wang",
        "--role",
        "contractor",
        "--payload",
        SUBMISSION,
        "--idempotency-key",
        "submit-HW-1",
    ];
    let first = site.json(&args, 0);
    assert_eq!(first["replayed"], false);
    let again = site.json(&args, 0);
    assert_eq!(again["replayed"], true);
    assert_eq!(again["entry"], first["entry"]);
    assert_eq!(site.history_len(&id), 2);
    let human = site.run(&args);
    assert_eq!(human.status.code(), Some(0));
    assert!(
        stdout(&human).starts_with("replayed:"),
        "{}",
        stdout(&human)
    );
    assert_eq!(site.history_len(&id), 2);

    // Starts too.
    let start = [
        "start",
        "hot_work_permit",
        "--actor",
        "wang",
        "--role",
        "contractor",
        "--idempotency-key",
        "start-HW-2",
    ];
    let first = site.json(&start, 0);
    let again = site.json(&start, 0);
    assert_eq!(again["replayed"], true);
    assert_eq!(again["instance"]["id"], first["instance"]["id"]);
    assert_eq!(site.json(&["list"], 0).as_array().map(Vec::len), Some(2));
}

#[test]
fn a_data_dir_in_use_by_another_process_exits_1() {
    let site = Site::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let config = sopflow::engine::Config::new(site.data())
        .sources(vec![root.join("workflows"), root.join("rules")]);
    let engine = runtime
        .block_on(sopflow::engine::Engine::open(config))
        .expect("the test opens the store");
    let output = site.run(&[
        "start",
        "hot_work_permit",
        "--actor",
        "wang",
        "--role",
        "contractor",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("in use by another"),
        "{}",
        stderr(&output)
    );
    let json = site.json(&["list"], 1);
    assert_eq!(json["error"]["code"], "store_locked");
    drop(engine);
    // Once it is free, the CLI uses it.
    assert_eq!(site.json(&["list"], 0), json!([]));
}

#[test]
fn read_only_commands_use_the_stored_definitions_when_the_folders_are_elsewhere() {
    let site = Site::new();
    let id = site.submitted_permit();
    // Run from the temp dir, which has no workflows/ or rules/ folder.
    let output = Command::new(env!("CARGO_BIN_EXE_sopflow"))
        .args([
            "show",
            &id,
            "--actor",
            "li",
            "--role",
            "order_dept",
            "--data-dir",
        ])
        .arg(site.data())
        .current_dir(site.dir.path())
        .output()
        .expect("run sopflow");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let shown = stdout(&output);
    assert!(
        shown.contains("security_review (秩序维护部初审)"),
        "{shown}"
    );
    assert!(
        shown.contains("approve (初审通过) as order_dept"),
        "{shown}"
    );
}

/// The README's language example, run as written on a submitted permit: the refusal in
/// Chinese names the step and who may take it by the YAML's titles. `--lang` outweighs the
/// locale, and a locale names the language when `--lang` is not given.
#[test]
fn the_readme_language_example_prints_the_refusal_in_chinese() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README");
    let block = readme
        .split("```sh\n")
        .skip(1)
        .filter_map(|rest| rest.split("```").next())
        .find(|block| block.contains("--lang zh"))
        .expect("the README's language example");
    let mut lines = block.lines();
    let args: Vec<&str> = lines
        .next()
        .and_then(|l| l.strip_prefix("sopflow fire hot_work_permit-1 approve"))
        .expect("the command fires approve on the first permit")
        .split_whitespace()
        .collect();
    let said = lines
        .next()
        .and_then(|l| l.strip_prefix("# "))
        .expect("what it prints");

    let site = Site::new();
    let id = site.json(
        &[
            "start",
            "hot_work_permit",
            "--actor",
            "wang",
            "--role",
            "contractor",
        ],
        0,
    )["instance"]["id"]
        .as_str()
        .expect("an id")
        .to_string();
    assert_eq!(id, "hot_work_permit-1");
    site.json(
        &[
            "fire",
            &id,
            "submit",
            "--actor",
            "wang",
            "--role",
            "contractor",
            "--payload",
            SUBMISSION,
        ],
        0,
    );
    let mut command = vec!["fire", &id, "approve"];
    command.extend(&args);
    let output = site.run(&command);
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(stderr(&output).trim_end(), said);

    // Without --lang, the locale decides; a locale sopflow does not speak gives English.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let with_locale = |locale: &str| {
        Command::new(env!("CARGO_BIN_EXE_sopflow"))
            .args([
                "fire",
                &id,
                "approve",
                "--actor",
                "wang",
                "--role",
                "contractor",
            ])
            .arg("--data-dir")
            .arg(site.data())
            .arg("--workflows")
            .arg(root.join("workflows"))
            .arg("--rules")
            .arg(root.join("rules"))
            .env_remove("SOPFLOW_LANG")
            .env_remove("LC_ALL")
            .env_remove("LC_MESSAGES")
            .env("LANG", locale)
            .output()
            .expect("run sopflow")
    };
    assert_eq!(stderr(&with_locale("zh_CN.UTF-8")).trim_end(), said);
    assert!(
        stderr(&with_locale("C.UTF-8")).starts_with("refused: “初审通过” is for 秩序维护部"),
        "{}",
        stderr(&with_locale("C.UTF-8"))
    );
}

/// `show`, `history` and `fire` take a readable number where they take an id; `show` and
/// `list` print it.
#[test]
fn an_instance_is_named_by_its_number_on_the_command_line() {
    let site = Site::new();
    let id = site.start_permit();
    let second = site.start_permit();
    let shown = site.json(&["show", &second], 0);
    let number = shown["instance"]["number"]
        .as_str()
        .expect("a number")
        .to_string();
    assert!(number.ends_with("-0002"), "{number}");
    let by_number = site.json(&["show", &number], 0);
    assert_eq!(by_number["instance"]["id"], second.as_str());
    let text = stdout(&site.run(&["show", &number]));
    assert!(text.contains(&format!("number    {number}")), "{text}");
    let listed = stdout(&site.run(&["list", "--workflow", "hot_work_permit"]));
    assert!(
        listed.lines().next().is_some_and(|l| l.contains("NUMBER")),
        "{listed}"
    );
    assert!(listed.contains(&number), "{listed}");
    site.json(
        &[
            "fire",
            &number,
            "submit",
            "--actor",
            "wang",
            "--role",
            "contractor",
            "--payload",
            r#"{"notification_letter": "HW-2026-031", "applicant_seal": true, "operator_certificate": "T-4411"}"#,
        ],
        0,
    );
    assert_eq!(site.history_len(&number), 2);
    assert_eq!(site.history_len(&id), 1);
}
