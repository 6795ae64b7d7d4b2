//! The `sopflow` command as a user runs it from the project folder.

use std::path::Path;
use std::process::{Command, Output};

fn sopflow(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sopflow"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .output()
        .expect("run sopflow")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn validate_passes_on_the_shipped_workflows() {
    let output = sopflow(&["validate"]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert!(stdout(&output).contains("\nok: "), "{}", stdout(&output));
    let json = sopflow(&["validate", "--format", "json"]);
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert_eq!(value["ok"], true);
    // The workflows are clean; the one finding is the calendar's: 2027's holidays are
    // provisional until the State Council publishes them.
    let codes: Vec<&str> = value["diagnostics"]
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|d| d["code"].as_str())
        .collect();
    assert_eq!(codes, ["W405"], "{value}");
}

#[test]
fn human_output_underlines_the_source_line_and_gives_the_hint() {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows/hot_work_permit.yaml"),
    )
    .expect("shipped workflow")
    .replace("approve: {to: cs_review,", "approve: {to: cs_reveiw,");
    let file = dir.path().join("hot_work_permit.yaml");
    std::fs::write(&file, text).expect("write");
    let output = sopflow(&["validate", file.to_str().expect("utf-8 temp path")]);
    assert_eq!(output.status.code(), Some(1));
    let out = stdout(&output);
    assert!(
        out.contains("error[E101]: there is no state `cs_reveiw`"),
        "{out}"
    );
    assert!(out.contains("hot_work_permit.yaml:"), "{out}");
    assert!(
        out.contains("approve: {to: cs_reveiw,"),
        "the source line is shown: {out}"
    );
    assert!(out.contains("────┬────"), "the name is underlined: {out}");
    assert!(out.contains("did you mean `cs_review`?"), "{out}");
    assert!(out.contains("failed: 1 error(s)"), "{out}");
}

#[test]
fn usage_errors_exit_with_2() {
    assert_eq!(
        sopflow(&["validate", "no/such/folder"]).status.code(),
        Some(2)
    );
    assert_eq!(
        sopflow(&["validate", "--format", "xml"]).status.code(),
        Some(2)
    );
    assert_eq!(sopflow(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(sopflow(&["validate", "Cargo.toml"]).status.code(), Some(2));
}

#[test]
fn schema_prints_the_checked_in_schema() {
    let output = sopflow(&["schema"]);
    assert_eq!(output.status.code(), Some(0));
    let on_disk = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(sopflow::schema::SCHEMA_PATH),
    )
    .expect("schema file");
    assert_eq!(stdout(&output), on_disk);
}

#[test]
fn graph_draws_mermaid_and_dot() {
    let mermaid = sopflow(&["graph", "hot_work_permit"]);
    assert_eq!(mermaid.status.code(), Some(0));
    let text = stdout(&mermaid);
    assert!(text.starts_with("stateDiagram-v2"));
    assert!(text.contains("state \"秩序维护部初审\" as security_review"));
    assert!(text.contains("security_review --> cs_review : approve (初审通过)<br/>[order_dept]"));
    assert!(text.contains("distributed --> [*]"));
    let by_path = sopflow(&["graph", "workflows/hot_work_permit.yaml", "--format", "dot"]);
    assert_eq!(by_path.status.code(), Some(0));
    assert!(stdout(&by_path).starts_with("digraph \"hot_work_permit\""));
    let unknown = sopflow(&["graph", "hot_work_permt"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("did you mean `hot_work_permit`?"));
}

/// Graphviz must render the DOT output. CI installs graphviz and sets SOPFLOW_REQUIRE_DOT so
/// that a missing `dot` fails there instead of skipping.
#[test]
fn graphviz_renders_the_dot_output() {
    let available = Command::new("dot")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !available {
        assert!(
            std::env::var_os("SOPFLOW_REQUIRE_DOT").is_none(),
            "graphviz `dot` is required here"
        );
        eprintln!("skipping: graphviz `dot` is not installed");
        return;
    }
    let dot_text = stdout(&sopflow(&["graph", "hot_work_permit", "--format", "dot"]));
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("hot_work_permit.dot");
    std::fs::write(&input, &dot_text).expect("write dot");
    let rendered = Command::new("dot")
        .arg("-Tsvg")
        .arg(&input)
        .output()
        .expect("run dot");
    assert!(
        rendered.status.success(),
        "{}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    let svg = String::from_utf8_lossy(&rendered.stdout);
    assert!(svg.contains("<svg"));
    assert!(svg.contains("秩序维护部初审"));
    // Timers are drawn dashed: the fixture workflow has one.
    let timed = sopflow(&[
        "graph",
        "tests/fixtures/base/expense_claim.yaml",
        "--format",
        "dot",
        "--rules",
        "tests/fixtures/base",
    ]);
    let timed_input = dir.path().join("expense_claim.dot");
    std::fs::write(&timed_input, &timed.stdout).expect("write dot");
    let rendered_timed = Command::new("dot")
        .arg("-Tsvg")
        .arg(&timed_input)
        .output()
        .expect("run dot");
    assert!(rendered_timed.status.success());
    assert!(String::from_utf8_lossy(&rendered_timed.stdout).contains("stroke-dasharray"));
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    let _ = std::fs::write(target.join("hot_work_permit.svg"), svg.as_bytes());
}

#[test]
fn the_readme_documents_every_code_as_the_cli_prints_it() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README");
    let table = stdout(&sopflow(&["validate", "--codes"]));
    for code in sopflow::diagnostic::Code::ALL {
        let row = format!(
            "| {} | {} | {} |",
            code.as_str(),
            code.slug(),
            code.severity()
        );
        assert!(
            readme.contains(&row),
            "README lacks the row for {code}: {row}"
        );
        assert!(table.contains(&row));
    }
    assert!(
        readme.lines().take(6).any(|l| l.contains("cargo test")),
        "the README starts with the test command"
    );
}

/// Mermaid itself (the version GitHub renders with) must parse the diagrams of every shipped
/// workflow and of the fixture workflows. CI installs it (`npm ci` in tests/mermaid) and sets
/// SOPFLOW_REQUIRE_MERMAID so that a missing install fails there instead of skipping.
#[test]
fn mermaid_parses_the_diagrams() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let checker = root.join("tests/mermaid");
    if !checker.join("node_modules/mermaid").is_dir() {
        assert!(
            std::env::var_os("SOPFLOW_REQUIRE_MERMAID").is_none(),
            "run `npm ci` in tests/mermaid"
        );
        eprintln!("skipping: Mermaid is not installed in tests/mermaid");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let mut drawn = 0;
    for (folder, rules) in [
        ("workflows", "rules"),
        ("tests/fixtures/base", "tests/fixtures/base"),
    ] {
        for entry in std::fs::read_dir(root.join(folder))
            .expect("folder")
            .flatten()
        {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "yaml")
                || sopflow::definition::roles::is_role_list(&path)
            {
                continue;
            }
            let output = sopflow(&[
                "graph",
                path.to_str().expect("utf-8 path"),
                "--rules",
                rules,
            ]);
            assert_eq!(output.status.code(), Some(0), "{}", path.display());
            assert!(
                output.stderr.is_empty(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            let file = dir.path().join(format!("{drawn}.mmd"));
            std::fs::write(&file, &output.stdout).expect("write diagram");
            let parsed = Command::new("node")
                .arg(checker.join("check.mjs"))
                .arg(&file)
                .output()
                .expect("run node");
            assert!(
                parsed.status.success(),
                "{}: {}\n{}",
                path.display(),
                String::from_utf8_lossy(&parsed.stderr),
                stdout(&output)
            );
            drawn += 1;
        }
    }
    assert!(drawn >= 3);
}

/// The README's role-list example: the list it shows agrees with the shipped list, and the
/// workflow roles it shows (titles left to the list) validate against it with no finding.
#[test]
fn the_readme_role_list_example_validates_against_the_shipped_list() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README");
    let blocks: Vec<&str> = readme
        .split("```yaml\n")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .collect();
    let list = blocks
        .iter()
        .find(|b| b.starts_with("# workflows/roles.yaml"))
        .expect("the README shows the role list");
    let uses = blocks
        .iter()
        .find(|b| b.starts_with("# a workflow names its roles"))
        .expect("the README shows a workflow's roles");
    let shipped = std::fs::read_to_string(root.join("workflows/roles.yaml")).expect("role list");
    let shipped: serde_json::Value = serde_saphyr::from_str(&shipped).expect("YAML");
    let shown: serde_json::Value = serde_saphyr::from_str(list).expect("YAML");
    for (id, title) in shown["roles"].as_object().expect("roles") {
        assert_eq!(&shipped["roles"][id], title, "{id}");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("roles.yaml"), list).expect("write");
    let workflow = format!(
        "id: invoice\ntitle: 开票\n{uses}access: {{start: [owner_occupant]}}\ninitial: open\nstates:\n  open:\n    on:\n      issue: {{to: done, roles: [cs_dept]}}\n      withdraw: {{to: done, roles: [owner_occupant]}}\n  done: {{final: true}}\n"
    );
    std::fs::write(dir.path().join("invoice.yaml"), workflow).expect("write");
    let output = sopflow(&[
        "validate",
        "--format",
        "json",
        dir.path().to_str().expect("utf-8 path"),
    ]);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(json["ok"], true, "{json}");
    assert_eq!(json["diagnostics"], serde_json::json!([]), "{json}");
}

/// Where `example` says something `shipped` does not, if anywhere: maps by key (an empty value
/// stands for "whatever the workflow says", as `cs_dept:` does for a title from the role list),
/// lists item by item (each item of the example found among the shipped ones), scalars equal.
fn said_but_not_shipped(
    example: &serde_json::Value,
    shipped: &serde_json::Value,
) -> Option<String> {
    use serde_json::Value;
    match (example, shipped) {
        (Value::Null, _) => None,
        (Value::Object(e), Value::Object(s)) => e.iter().find_map(|(k, v)| match s.get(k) {
            None => Some(k.clone()),
            Some(s) => said_but_not_shipped(v, s).map(|path| format!("{k}.{path}")),
        }),
        (Value::Array(e), Value::Array(s)) => e
            .iter()
            .find(|item| s.iter().all(|s| said_but_not_shipped(item, s).is_some()))
            .map(|item| format!("[{item}]")),
        (e, s) => (e != s).then(|| format!("{e} (the workflow says {s})")),
    }
}

/// The README's format example, by the hot-work permit, says only what the shipped workflow
/// says, and its diagram is what `sopflow graph` draws today.
#[test]
fn the_readme_format_example_is_the_shipped_hot_work_permit() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README");
    let section = readme
        .split("## The format, by example")
        .nth(1)
        .expect("the format section");
    let example = section
        .split("```yaml\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("the example");
    let shipped =
        std::fs::read_to_string(root.join("workflows/hot_work_permit.yaml")).expect("workflow");
    let example: serde_json::Value = serde_saphyr::from_str(example).expect("the example parses");
    let shipped: serde_json::Value = serde_saphyr::from_str(&shipped).expect("the workflow parses");
    assert_eq!(
        said_but_not_shipped(&example, &shipped),
        None,
        "the README's example says this, workflows/hot_work_permit.yaml does not"
    );
    let diagram = section
        .split("```mermaid\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("the diagram");
    assert_eq!(diagram, stdout(&sopflow(&["graph", "hot_work_permit"])));
}

/// An ASCII comma in a flow-mapping title, as a Chinese typist writes it, is one error at its
/// place with the fix, not also "no file declares" for every workflow that starts this one.
#[test]
fn a_comma_cut_title_is_one_error_with_its_fix() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("temp dir");
    let workflows = dir.path().join("workflows");
    std::fs::create_dir(&workflows).expect("mkdir");
    for entry in std::fs::read_dir(root.join("workflows"))
        .expect("workflows")
        .flatten()
    {
        std::fs::copy(entry.path(), workflows.join(entry.file_name())).expect("copy");
    }
    let pass = workflows.join("construction_pass.yaml");
    let text = std::fs::read_to_string(&pass).expect("reads");
    let broken = text.replacen(
        "\nstates:\n",
        "\nstates:\n  noted: {title: 已发证,押金已收, final: true}\n",
        1,
    );
    assert_ne!(broken, text);
    std::fs::write(&pass, broken).expect("writes");
    let output = sopflow(&[
        "validate",
        workflows.to_str().expect("utf-8"),
        "--rules",
        root.join("rules").to_str().expect("utf-8"),
        "--format",
        "json",
    ]);
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let errors: Vec<&serde_json::Value> = value["diagnostics"]
        .as_array()
        .expect("a list")
        .iter()
        .filter(|d| d["severity"] == "error")
        .collect();
    assert_eq!(errors.len(), 1, "{value}");
    assert_eq!(errors[0]["code"], "E005");
    assert!(
        errors[0]["hint"]
            .as_str()
            .expect("hint")
            .contains("put the whole title in quotes"),
        "{value}"
    );
}

/// A line with Chinese before the mistake: the human report names the same line and column as
/// the JSON one (characters, not bytes), so a process owner and an editor look at one place.
#[test]
fn human_and_json_reports_name_one_column_on_a_chinese_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("w.yaml");
    std::fs::write(
        &file,
        "id: w\ntitle: 测试\nroles:\n  a: 甲\ninitial: s\nstates:\n  s:\n    on:\n      go: {to: done, roles: [a], title: 已签发原件存档, rolez: [a]}\n  done: {final: true}\n",
    )
    .expect("write");
    let path = file.to_str().expect("utf-8");
    let rules = dir.path().to_str().expect("utf-8");
    let json: serde_json::Value = serde_json::from_str(&stdout(&sopflow(&[
        "validate", path, "--rules", rules, "--format", "json",
    ])))
    .expect("JSON");
    let found = &json["diagnostics"][0];
    assert_eq!(found["code"], "E005");
    assert_eq!(
        (found["line"].as_u64(), found["column"].as_u64()),
        (Some(9), Some(50))
    );
    let human = stdout(&sopflow(&[
        "validate", path, "--rules", rules, "--lang", "en",
    ]));
    assert!(human.contains("w.yaml:9:50]"), "{human}");

    // In Chinese, each finding is headed by its code's Chinese name, and so is the summary.
    let chinese = stdout(&sopflow(&[
        "validate", path, "--rules", rules, "--lang", "zh",
    ]));
    assert!(
        chinese.contains("错误[E005] 未知的键:不认识的键 `rolez`"),
        "{chinese}"
    );
    assert!(
        chinese.contains("未通过:1 个文件中有 1 个错误"),
        "{chinese}"
    );
    let codes = stdout(&sopflow(&["validate", "--codes", "--lang", "zh"]));
    assert!(
        codes.contains("| E005 | 未知的键 | 错误 | 格式中没有这个键(多半是拼写错误)。 |"),
        "{codes}"
    );
}

/// A Chinese-speaking process owner reads every finding in Chinese: what is wrong and what to
/// do, with the keys to type as they are and no English sentence. Tools get the same codes,
/// with English messages unless they ask for a language.
#[test]
fn validate_in_chinese_says_what_is_wrong_and_what_to_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, text: &str| {
        std::fs::write(dir.path().join(name), text).expect("write");
    };
    let head = "title: 测试\nroles:\n  clerk: 办事员\ninitial: draft\nstates:\n  draft:\n    on:\n";
    write(
        "silent.yaml",
        &format!(
            "id: silent\n{}      submit: {{to: done, roles: [clerk], guard: \"payload.amount > 0\"}}\n  done: {{final: true}}\nfields:\n  amount: {{type: money, title: 金额, required_on: [submit]}}\n",
            head
        ),
    );
    write(
        "typo.yaml",
        &format!(
            "id: typo\n{head}      submit: {{to: done, roles: [clerk], gaurd: \"true\"}}\n  done: {{final: true}}\n"
        ),
    );
    write(
        "twice.yaml",
        &format!(
            "id: twice\n{head}      submit: {{to: done, roles: [clerk]}}\n      submit: {{to: draft, roles: [clerk]}}\n  done: {{final: true}}\n"
        ),
    );
    write("tabs.yaml", "id: tabs\ntitle: 测试\n\tinitial: draft\n");
    let path = dir.path().to_str().expect("utf-8");
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sopflow"));
        command
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("NO_COLOR", "1")
            .env_remove("SOPFLOW_LANG")
            .env_remove("LC_ALL")
            .env_remove("LC_MESSAGES")
            .env_remove("LANG");
        for (name, value) in env {
            command.env(name, value);
        }
        command.output().expect("run sopflow")
    };

    let zh = run(&["validate", path, "--rules", path, "--lang", "zh"], &[]);
    assert_eq!(zh.status.code(), Some(1));
    let zh = stdout(&zh);
    for said in [
        // E005, with the key to type as it is.
        "错误[E005] 未知的键:不认识的键 `gaurd`",
        "是不是想写 `guard`?",
        // E004.
        "错误[E004] 键重复:键 `submit` 在同一层中出现了两次",
        "每个键只能出现一次:把两处合并",
        // Bad YAML: the parser's words only as a detail, inside a Chinese sentence.
        "错误[E002] YAML 语法错误:这里用了 Tab 缩进,YAML 不接受(解析器报告:",
        "YAML 只能用空格缩进:把 Tab 换成空格",
        // W410, with the key the owner types.
        "警告[W410] 条件没有说明:有人办理 `submit` 时,只要这个守卫条件不成立就会被拒绝",
        "在这个转换上加 `guard_message: 请...`",
        "未通过:4 个文件中有 3 个错误、1 个警告",
    ] {
        assert!(zh.contains(said), "{said} in:\n{zh}");
    }
    for english in [
        "unknown key",
        "appears twice",
        "replace the tab",
        "is refused when",
        "is declared but",
        "did you mean",
        "add `guard_message",
    ] {
        assert!(!zh.contains(english), "{english} in:\n{zh}");
    }
    // SOPFLOW_LANG (and, without it, the locale) chooses the same.
    let by_env = stdout(&run(
        &["validate", path, "--rules", path],
        &[("SOPFLOW_LANG", "zh")],
    ));
    assert!(by_env.contains("不认识的键 `gaurd`"), "{by_env}");
    let by_locale = stdout(&run(
        &["validate", path, "--rules", path],
        &[("LANG", "zh_CN.UTF-8")],
    ));
    assert!(by_locale.contains("不认识的键 `gaurd`"), "{by_locale}");

    // JSON: Chinese messages and hints when asked for, the same codes; English otherwise,
    // whatever the machine's locale.
    let json = |args: &[&str], env: &[(&str, &str)]| -> serde_json::Value {
        serde_json::from_slice(&run(args, env).stdout).expect("JSON")
    };
    let findings = |value: &serde_json::Value| -> Vec<(String, String, String)> {
        value["diagnostics"]
            .as_array()
            .expect("a list")
            .iter()
            .map(|d| {
                let s = |k: &str| d[k].as_str().unwrap_or_default().to_string();
                (s("code"), s("message"), s("hint"))
            })
            .collect()
    };
    let zh_json = findings(&json(
        &[
            "validate", path, "--rules", path, "--format", "json", "--lang", "zh",
        ],
        &[],
    ));
    let en_json = findings(&json(
        &["validate", path, "--rules", path, "--format", "json"],
        &[("LANG", "zh_CN.UTF-8")],
    ));
    let codes = |f: &[(String, String, String)]| f.iter().map(|d| d.0.clone()).collect::<Vec<_>>();
    assert_eq!(codes(&zh_json), ["W410", "E002", "E004", "E005"]);
    assert_eq!(codes(&zh_json), codes(&en_json));
    assert!(
        zh_json.contains(&(
            "E005".into(),
            "不认识的键 `gaurd`".into(),
            "是不是想写 `guard`?".into()
        )),
        "{zh_json:?}"
    );
    assert!(
        en_json.contains(&(
            "E005".into(),
            "unknown key `gaurd`".into(),
            "did you mean `guard`?".into()
        )),
        "{en_json:?}"
    );
}
