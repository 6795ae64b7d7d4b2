//! Every fenced block of README.md is checked, so that the README cannot drift from what the
//! program does. Each block is claimed by exactly one check of `CHECKS`, which runs it,
//! validates it as what it is, or compares it with what the program prints; a block that no
//! check claims fails the test, named by its line, so a new block needs a check.
//!
//! A few blocks are checked by other tests, which read them from the README by a marker.
//! `CLAIMS` names those tests, and the claim is verified: the named test exists and its body
//! reads the README by that marker and that fence, and the marker finds exactly this block.

use sopflow::catalog;
use sopflow::script::{Limits, RulesFile, Sandbox};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

#[path = "support/readme.rs"]
mod readme;
use readme::commands;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fenced block of the README.
#[derive(Debug, Clone)]
struct Block {
    /// The line of its opening fence, 1-based.
    line: usize,
    /// The fence's info string: `sh`, `yaml`, `rust`, `text`, `json`, `mermaid`, `rhai`.
    info: String,
    text: String,
    /// The prose between the block before it (or the top) and this one.
    prose: String,
}

fn blocks(readme: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut lines = readme.lines().enumerate();
    let mut prose = String::new();
    while let Some((i, line)) = lines.next() {
        let Some(info) = line.strip_prefix("```") else {
            prose.push_str(line);
            prose.push('\n');
            continue;
        };
        let mut text = String::new();
        loop {
            let (_, inner) = lines
                .next()
                .unwrap_or_else(|| panic!("README.md:{}: the block never closes", i + 1));
            if inner.starts_with("```") {
                break;
            }
            text.push_str(inner);
            text.push('\n');
        }
        out.push(Block {
            line: i + 1,
            info: info.trim().to_string(),
            text,
            prose: std::mem::take(&mut prose),
        });
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Blocks checked by other tests.

/// A block another test checks: the `nth` block of fence `info` after the heading `marker`
/// (a marker beginning `## `), or the one block of fence `info` whose text contains `marker`.
struct Claim {
    info: &'static str,
    marker: &'static str,
    nth: usize,
    file: &'static str,
    test: &'static str,
}

const CLAIMS: &[Claim] = &[
    Claim {
        info: "yaml",
        marker: "url_env: SOPFLOW_WECOM_CS_GROUP",
        nth: 0,
        file: "delivery.rs",
        test: "the_readme_channels_file_is_read_as_written",
    },
    Claim {
        info: "sh",
        marker: "--lang zh",
        nth: 0,
        file: "cli_runtime.rs",
        test: "the_readme_language_example_prints_the_refusal_in_chinese",
    },
    Claim {
        info: "sh",
        marker: "## Run an instance from the command line",
        nth: 0,
        file: "readme_cli.rs",
        test: "the_readme_command_line_walk_through_runs_as_written",
    },
    Claim {
        info: "sh",
        marker: "## Run an instance from the command line",
        nth: 1,
        file: "readme_cli.rs",
        test: "the_readme_command_line_walk_through_runs_as_written",
    },
    Claim {
        info: "rust",
        marker: "## Embedding",
        nth: 0,
        file: "readme_cli.rs",
        test: "the_readme_embedding_lines_are_the_example",
    },
    Claim {
        info: "yaml",
        marker: "## The format, by example",
        nth: 0,
        file: "cli.rs",
        test: "the_readme_format_example_is_the_shipped_hot_work_permit",
    },
    // The diagram is what `sopflow graph` draws; `mermaid_parses_the_diagrams` (tests/cli.rs)
    // has Mermaid itself parse what `sopflow graph` draws for every shipped workflow.
    Claim {
        info: "mermaid",
        marker: "## The format, by example",
        nth: 0,
        file: "cli.rs",
        test: "the_readme_format_example_is_the_shipped_hot_work_permit",
    },
    Claim {
        info: "yaml",
        marker: "# workflows/roles.yaml",
        nth: 0,
        file: "cli.rs",
        test: "the_readme_role_list_example_validates_against_the_shipped_list",
    },
    Claim {
        info: "yaml",
        marker: "# a workflow names its roles",
        nth: 0,
        file: "cli.rs",
        test: "the_readme_role_list_example_validates_against_the_shipped_list",
    },
    Claim {
        info: "yaml",
        marker: "params: {",
        nth: 0,
        file: "cli_scenarios.rs",
        test: "the_readme_params_example_is_a_shipped_scenario",
    },
    Claim {
        info: "yaml",
        marker: "reason: ",
        nth: 0,
        file: "cli_scenarios.rs",
        test: "the_readme_reason_example_is_a_shipped_scenario",
    },
    Claim {
        info: "sh",
        marker: "## Changing a process while it runs",
        nth: 0,
        file: "migrate.rs",
        test: "the_readme_migration_walk_through_runs_as_written",
    },
    Claim {
        info: "yaml",
        marker: "# workflows/renovation_approval.migration.yaml",
        nth: 0,
        file: "migrate.rs",
        test: "the_readme_migration_walk_through_runs_as_written",
    },
    Claim {
        info: "sh",
        marker: "## Running on PostgreSQL",
        nth: 0,
        file: "store_postgres.rs",
        test: "the_readme_postgres_section_runs_as_written",
    },
    Claim {
        info: "sh",
        marker: "## Running on PostgreSQL",
        nth: 1,
        file: "deploy.rs",
        test: "the_readme_two_node_block_runs_as_written",
    },
    Claim {
        info: "sh",
        marker: "## Running on PostgreSQL",
        nth: 2,
        file: "deploy.rs",
        test: "the_readme_deploy_block_runs_as_written",
    },
    Claim {
        info: "sh",
        marker: "## Running on PostgreSQL",
        nth: 3,
        file: "store_copy.rs",
        test: "the_readme_copy_block_runs_as_written",
    },
    Claim {
        info: "text",
        marker: "BROKEN ",
        nth: 0,
        file: "audit_verify.rs",
        test: "the_cli_names_a_tampered_entry_and_exits_1",
    },
];

/// The line of the block a claim's marker finds, if it finds one.
fn claimed_line(claim: &Claim, readme: &str, blocks: &[Block]) -> Result<usize, String> {
    let of_info = blocks.iter().filter(|b| b.info == claim.info);
    if claim.marker.starts_with("## ") {
        let heading = readme
            .lines()
            .position(|l| l.starts_with(claim.marker))
            .ok_or_else(|| format!("the README has no heading `{}`", claim.marker))?;
        of_info
            .filter(|b| b.line > heading + 1)
            .nth(claim.nth)
            .map(|b| b.line)
            .ok_or_else(|| format!("no ```{} block after `{}`", claim.info, claim.marker))
    } else {
        let found: Vec<usize> = of_info
            .filter(|b| b.text.contains(claim.marker))
            .map(|b| b.line)
            .collect();
        match found[..] {
            [line] => Ok(line),
            _ => Err(format!(
                "`{}` is in {} ```{} blocks (lines {found:?}); a claim's marker finds one",
                claim.marker,
                found.len(),
                claim.info
            )),
        }
    }
}

/// The body of `#[test] fn name` in `tests/file`.
fn test_body(file: &str, name: &str) -> Result<String, String> {
    let source = std::fs::read_to_string(root().join("tests").join(file))
        .map_err(|e| format!("tests/{file}: {e}"))?;
    let head = format!("fn {name}() {{");
    let at = source
        .find(&head)
        .ok_or_else(|| format!("tests/{file} has no `{head}`"))?;
    let attribute = source[..at].lines().rev().find(|l| l.starts_with("#["));
    if !attribute.is_some_and(|a| a.starts_with("#[test]") || a.starts_with("#[tokio::test")) {
        return Err(format!("`{name}` in tests/{file} is not a test"));
    }
    let body = &source[at..];
    let end = body.find("\n}\n").map_or(body.len(), |e| e + 3);
    Ok(body[..end].to_string())
}

fn check_claim(block: &Block, ctx: &mut Ctx) -> Result<(), String> {
    let claims: Vec<&Claim> = CLAIMS
        .iter()
        .filter(|c| claimed_line(c, &ctx.readme, &ctx.blocks) == Ok(block.line))
        .collect();
    let [claim] = claims[..] else {
        return Err(format!("{} claims for one block", claims.len()));
    };
    let body = test_body(claim.file, claim.test)?;
    for literal in [claim.marker.to_string(), format!("```{}\n", claim.info)] {
        if !body.contains(&format!("{literal:?}")) {
            return Err(format!(
                "tests/{}: `{}` does not read the README by {literal:?}",
                claim.file, claim.test
            ));
        }
    }
    Ok(())
}

fn is_claimed(block: &Block, ctx: &Ctx) -> bool {
    CLAIMS
        .iter()
        .any(|c| claimed_line(c, &ctx.readme, &ctx.blocks) == Ok(block.line))
}

// ---------------------------------------------------------------------------------------------
// Running the program.

/// A folder like the project's: its workflows, rules, calendars and users, and a store of its
/// own (`./data`).
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for folder in ["workflows", "rules", "calendars", "config"] {
        std::os::unix::fs::symlink(root().join(folder), dir.path().join(folder)).expect("link");
    }
    dir
}

fn sopflow(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sopflow"))
        .args(args)
        .env("NO_COLOR", "1")
        .env("SOPFLOW_LANG", "en")
        .current_dir(dir)
        .output()
        .expect("run sopflow")
}

/// Runs one line of shell in `dir`, where `sopflow` is the binary under test.
fn shell(dir: &Path, line: &str) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "sopflow() {{ \"$SOPFLOW_BIN\" \"$@\"; }}\ncurl() {{ command curl --fail-with-body --max-time 30 \"$@\"; }}\n{line}"
        ))
        .env("SOPFLOW_BIN", env!("CARGO_BIN_EXE_sopflow"))
        .env("NO_COLOR", "1")
        .env("SOPFLOW_LANG", "en")
        .current_dir(dir)
        .output()
        .expect("run sh")
}

fn printed(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `text` with what differs from run to run made alike: hashes (16 or more hex digits) and
/// numbers.
fn shape(text: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let hex = chars[i..]
            .iter()
            .take_while(|c| c.is_ascii_digit() || ('a'..='f').contains(*c))
            .count();
        if hex >= 16 {
            out.push_str("<hash>");
            i += hex;
        } else if chars[i].is_ascii_digit() {
            out.push('9');
            i += chars[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// Whether `shown`'s lines occur, in shape and in a row, among `real`'s lines.
fn shows_in_a_row(shown: &[&str], real: &str) -> bool {
    let shown: Vec<String> = shown.iter().map(|l| shape(l.trim_end())).collect();
    let real: Vec<String> = real.lines().map(|l| shape(l.trim_end())).collect();
    real.windows(shown.len()).any(|w| w == shown.as_slice())
}

/// A command line's words before its comment (the README's commands quote nothing that
/// holds a `#` or spaces where this is used).
fn words(command: &str) -> Vec<&str> {
    command
        .split(" #")
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect()
}

/// `sopflow serve` running in a folder of its own.
struct Served {
    child: Child,
    /// `127.0.0.1:PORT`.
    addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `sopflow ARGS` (a `serve` command line from the README) on a free loopback port.
fn serve(args: &[&str]) -> Result<Served, String> {
    let dir = project();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sopflow"))
        .args(args)
        .args(["--addr", "127.0.0.1:0"])
        .env("NO_COLOR", "1")
        .env("SOPFLOW_LANG", "en")
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("sopflow serve: {e}"))?;
    let stdout = child.stdout.take().expect("stdout");
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    // Read the server's output for as long as it runs: once the address is found nobody
    // listens, but a closed pipe would make the server's next line (a reload's) its last.
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let mut served = Served {
        child,
        addr: String::new(),
        _dir: dir,
    };
    let mut seen = Vec::new();
    while let Ok(line) = lines_rx.recv_timeout(Duration::from_secs(60)) {
        if let Some(rest) = line.strip_prefix("console: http://") {
            served.addr = rest.split('/').next().unwrap_or_default().to_string();
            return Ok(served);
        }
        seen.push(line);
    }
    Err(format!(
        "`sopflow {}` served nothing: {seen:?}",
        args.join(" ")
    ))
}

/// What the checks share: the README, its blocks, a store where the README's hot-work permit
/// has been through three reviews, and the server the README starts.
struct Ctx {
    readme: String,
    blocks: Vec<Block>,
    walked: Option<tempfile::TempDir>,
    served: Option<Served>,
}

impl Ctx {
    /// A project whose store holds hot_work_permit-1 (business key B2-031), submitted by wang
    /// and approved by li (with a comment), zhou and chen: `signed`, waiting for the seal.
    fn walked(&mut self) -> Result<&Path, String> {
        if self.walked.is_none() {
            let dir = project();
            for line in [
                "sopflow start hot_work_permit --actor wang --role contractor --business-key B2-031",
                r#"sopflow fire hot_work_permit-1 submit --actor wang --role contractor --payload '{"notification_letter": "HW-2026-031", "applicant_seal": true, "operator_certificate": "T-4411"}'"#,
                "sopflow fire hot_work_permit-1 approve --actor li --role order_dept --comment 同意,动火时现场配灭火器",
                "sopflow fire hot_work_permit-1 approve --actor zhou --role cs_dept",
                "sopflow fire hot_work_permit-1 approve --actor chen --role project_gm",
            ] {
                let output = shell(dir.path(), line);
                if output.status.code() != Some(0) {
                    return Err(format!("`{line}`: {}", printed(&output)));
                }
            }
            self.walked = Some(dir);
        }
        Ok(self.walked.as_ref().expect("walked").path())
    }

    /// The server the README's `serve` line started (or one started as it says).
    fn served(&mut self) -> Result<&Served, String> {
        if self.served.is_none() {
            self.served = Some(serve(&["serve"])?);
        }
        Ok(self.served.as_ref().expect("served"))
    }
}

// ---------------------------------------------------------------------------------------------
// The checks.

type Check = fn(&Block, &mut Ctx) -> Result<(), String>;

struct Checker {
    name: &'static str,
    claims: fn(&Block, &Ctx) -> bool,
    check: Check,
}

const CHECKS: &[Checker] = &[
    Checker {
        name: "checked by the test the claim names",
        claims: is_claimed,
        check: check_claim,
    },
    Checker {
        name: "cargo commands: run, or checked against the project",
        claims: |b, c| b.info == "sh" && !is_claimed(b, c) && has_command(b, "cargo"),
        check: check_cargo,
    },
    Checker {
        name: "curl commands: run against the server the README starts",
        claims: |b, c| b.info == "sh" && !is_claimed(b, c) && has_command(b, "curl"),
        check: check_curl,
    },
    Checker {
        name: "sopflow commands: run on a store, first printed line compared",
        claims: |b, c| {
            b.info == "sh"
                && !is_claimed(b, c)
                && !commands(&b.text).is_empty()
                && commands(&b.text)
                    .iter()
                    .all(|s| s.command.starts_with("sopflow "))
        },
        check: check_sopflow,
    },
    Checker {
        name: "a scenario file: run with `sopflow test`",
        claims: |b, c| {
            b.info == "yaml" && !is_claimed(b, c) && b.text.lines().any(|l| l == "scenarios:")
        },
        check: check_scenario_file,
    },
    Checker {
        name: "scenario steps: run in the scenario file the text before names",
        claims: |b, c| b.info == "yaml" && !is_claimed(b, c) && b.text.starts_with("      - "),
        check: check_scenario_steps,
    },
    Checker {
        name: "part of a workflow: spliced into a workflow and validated",
        claims: |b, c| b.info == "yaml" && !is_claimed(b, c) && splice_base(b).is_some(),
        check: check_workflow_part,
    },
    Checker {
        name: "a rules file: compiled in the sandbox, and a part of the file it names",
        claims: |b, _| b.info == "rhai",
        check: check_rules,
    },
    Checker {
        name: "`validate --format json`: compared with what it prints",
        claims: |b, _| b.info == "json" && b.text.contains("\"diagnostics\""),
        check: check_validate_json,
    },
    Checker {
        name: "`validate`'s report: compared with what it prints",
        claims: |b, _| b.info == "text" && b.text.contains("× error["),
        check: check_validate_human,
    },
    Checker {
        name: "`audit chain`: compared with what it prints",
        claims: |b, _| b.info == "text" && b.text.starts_with("hot_work_permit-1  "),
        check: check_chain,
    },
    Checker {
        name: "`audit verify`'s digest: compared with what it prints",
        claims: |b, _| b.info == "text" && b.text.starts_with("digest: "),
        check: check_digest,
    },
    Checker {
        name: "a dependency on the crate: its name, and the features it turns off or on exist",
        claims: |b, _| b.info == "toml",
        check: check_dependency,
    },
    Checker {
        name: "`sopflow test`'s report: compared with what it prints",
        claims: |b, _| b.info == "text" && b.text.starts_with("PASS "),
        check: check_test_report,
    },
];

/// A `[dependencies]` block: it depends on this crate by its name, and whatever features it
/// names (on the crate's line, or in the prose before) are features of Cargo.toml.
fn check_dependency(block: &Block, _: &mut Ctx) -> Result<(), String> {
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).map_err(|e| e.to_string())?;
    let name = manifest
        .lines()
        .find_map(|l| l.strip_prefix("name = "))
        .map(|n| n.trim_matches('"').to_string())
        .ok_or("Cargo.toml names no package")?;
    if !block.text.lines().any(|l| l == "[dependencies]") {
        return Err("the block has no [dependencies] table".into());
    }
    let line = block
        .text
        .lines()
        .find(|l| l.starts_with(&format!("{name} = ")))
        .ok_or_else(|| format!("the block does not depend on `{name}`"))?;
    let features: Vec<&str> = manifest
        .split("[features]")
        .nth(1)
        .unwrap_or("")
        .lines()
        .take_while(|l| !l.starts_with('['))
        .filter_map(|l| l.split_once(" = ").map(|(k, _)| k.trim()))
        .collect();
    if line.contains("default-features = false") && !features.contains(&"default") {
        return Err("the crate has no default features to turn off".into());
    }
    let named = block
        .prose
        .split("features = [")
        .skip(1)
        .chain(line.split("features = [").skip(1))
        .filter_map(|rest| rest.split(']').next())
        .flat_map(|list| list.split(','))
        .map(|f| f.trim().trim_matches('"'))
        .filter(|f| !f.is_empty());
    for feature in named {
        if !features.contains(&feature) {
            return Err(format!(
                "the crate has no feature `{feature}` (it has {features:?})"
            ));
        }
    }
    Ok(())
}

fn has_command(block: &Block, program: &str) -> bool {
    commands(&block.text)
        .iter()
        .any(|s| words(&s.command).first() == Some(&program))
}

/// `cargo run [--release] [-q] -- ARGS` runs the binary with ARGS (`serve` is started on a
/// free port and stays up for the curl block); `cargo run --example NAME`, `cargo test
/// [--test NAME]` and `cargo bench --bench NAME` name what the project has; `cargo test` is
/// what CI runs.
fn check_cargo(block: &Block, ctx: &mut Ctx) -> Result<(), String> {
    for said in commands(&block.text) {
        let words = words(&said.command);
        let (flags, args) = match words.iter().position(|w| *w == "--") {
            Some(at) => (&words[..at], &words[at + 1..]),
            None => (&words[..], &[][..]),
        };
        let [_, subcommand, flags @ ..] = flags else {
            return Err(format!("`{}`: not a cargo command", said.command));
        };
        let mut example = None;
        let mut flags = flags.iter();
        while let Some(flag) = flags.next() {
            let exists = |folder: &str, name: Option<&&str>| {
                let name =
                    name.ok_or_else(|| format!("`{}`: `{flag}` needs a name", said.command))?;
                if root().join(folder).join(format!("{name}.rs")).is_file() {
                    Ok(name.to_string())
                } else {
                    Err(format!(
                        "`{}`: there is no {folder}/{name}.rs",
                        said.command
                    ))
                }
            };
            match (*subcommand, *flag) {
                (_, "--release" | "-q" | "--locked") => {}
                ("run", "--example") => example = Some(exists("examples", flags.next())?),
                ("test", "--test") => _ = exists("tests", flags.next())?,
                ("bench", "--bench") => _ = exists("benches", flags.next())?,
                _ => {
                    return Err(format!(
                        "`{}`: `cargo {subcommand} {flag}` has no check here",
                        said.command
                    ));
                }
            }
        }
        match *subcommand {
            "run" if example.is_none() && args.first() == Some(&"serve") => {
                let served = serve(args)?;
                ctx.served = Some(served);
            }
            "run" if example.is_none() => {
                let output = sopflow(ctx.walked()?, args);
                if output.status.code() != Some(0) {
                    return Err(format!("`{}`: {}", said.command, printed(&output)));
                }
            }
            "run" | "bench" => {}
            "test" => {
                let ci = std::fs::read_to_string(root().join(".ci/run")).expect(".ci/run");
                if !ci.lines().any(|l| l.starts_with("cargo test")) {
                    return Err("CI does not run `cargo test`".into());
                }
            }
            other => return Err(format!("`{}`: no check for `cargo {other}`", said.command)),
        }
    }
    Ok(())
}

/// Every curl command, run as written against the server the README starts (on its port):
/// each succeeds with JSON, and an instance a command names is one an earlier answer gave.
fn check_curl(block: &Block, ctx: &mut Ctx) -> Result<(), String> {
    let addr = ctx.served()?.addr.clone();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut answers = String::new();
    for said in commands(&block.text) {
        if !said.command.starts_with("curl ") {
            return Err(format!("`{}`: not a curl command", said.command));
        }
        for id in said
            .command
            .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'))
            .filter(|w| w.starts_with("hot_work_permit-"))
        {
            if !answers.contains(&format!("\"{id}\"")) {
                return Err(format!("`{}`: no answer before gave `{id}`", said.command));
            }
        }
        let output = shell(dir.path(), &said.command.replace("localhost:8080", &addr));
        if output.status.code() != Some(0) {
            return Err(format!("`{}`: {}", said.command, printed(&output)));
        }
        let answer = String::from_utf8_lossy(&output.stdout).into_owned();
        if let Err(e) = serde_json::from_str::<serde_json::Value>(&answer) {
            return Err(format!("`{}`: not JSON ({e}): {answer}", said.command));
        }
        if said.command.contains("li's inbox") && !answer.contains("hot_work_permit-1") {
            return Err(format!("li's inbox lacks the submitted permit: {answer}"));
        }
        answers.push_str(&answer);
    }
    Ok(())
}

/// Every sopflow command, run on the store of the README's hot-work permit: the exit code
/// its comment names (0 otherwise), and the first line printed in the shape its comment shows.
fn check_sopflow(block: &Block, ctx: &mut Ctx) -> Result<(), String> {
    let dir = ctx.walked()?;
    for said in commands(&block.text) {
        let output = shell(dir, &said.command);
        let out = printed(&output);
        if output.status.code() != Some(said.exit) {
            return Err(format!(
                "`{}` exits {:?}, not {}: {out}",
                said.command,
                output.status.code(),
                said.exit
            ));
        }
        if let Some(prints) = &said.prints {
            let first = out.lines().next().unwrap_or_default();
            if shape(first.trim_end()) != shape(prints) {
                return Err(format!(
                    "`{}` prints\n  {first}\nthe README shows\n  {prints}",
                    said.command
                ));
            }
        }
    }
    Ok(())
}

/// Runs scenario `file` with `sopflow test`; it must pass, with `scenarios` scenarios.
fn run_scenarios(file: &Path, workflows: &Path, scenarios: usize) -> Result<(), String> {
    let output = Command::new(env!("CARGO_BIN_EXE_sopflow"))
        .arg("test")
        .arg(file)
        .arg("--workflows")
        .arg(workflows)
        .env("NO_COLOR", "1")
        .env("SOPFLOW_LANG", "en")
        .current_dir(root())
        .output()
        .expect("run sopflow test");
    let out = printed(&output);
    let summary = format!("{scenarios} passed, 0 failed");
    if output.status.code() != Some(0) || out.lines().last() != Some(summary.as_str()) {
        return Err(format!("`sopflow test` does not say `{summary}`:\n{out}"));
    }
    Ok(())
}

/// The folder holding the workflow a scenario file names: the shipped ones, or the time
/// tests'.
fn workflows_for(scenarios: &str) -> Result<PathBuf, String> {
    let id = scenarios
        .lines()
        .find_map(|l| l.strip_prefix("workflow: "))
        .ok_or("the scenario file names no workflow")?
        .trim();
    ["workflows", "tests/time"]
        .iter()
        .map(|folder| root().join(folder))
        .find(|folder| folder.join(format!("{id}.yaml")).is_file())
        .ok_or_else(|| format!("no workflow `{id}`"))
}

fn check_scenario_file(block: &Block, _: &mut Ctx) -> Result<(), String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("readme.yaml");
    std::fs::write(&file, &block.text).expect("write");
    let scenarios = block
        .text
        .lines()
        .filter(|l| l.starts_with("  - name: "))
        .count();
    run_scenarios(&file, &workflows_for(&block.text)?, scenarios)
}

/// Steps of a scenario: the file the text before the block names (`tests/....yaml`), with its
/// first scenario's steps replaced by the block, passes.
fn check_scenario_steps(block: &Block, _: &mut Ctx) -> Result<(), String> {
    let named = block
        .prose
        .split('`')
        .rfind(|w| w.starts_with("tests/") && w.ends_with(".yaml"))
        .ok_or("the text before the block names no scenario file")?;
    let shipped =
        std::fs::read_to_string(root().join(named)).map_err(|e| format!("{named}: {e}"))?;
    let head = shipped
        .find("    steps:\n")
        .map(|at| &shipped[..at + "    steps:\n".len()])
        .ok_or_else(|| format!("{named} has no steps"))?;
    let head = &head[..head.find("  - name: ").ok_or("no scenario")?];
    let spliced = format!(
        "{head}  - name: README.md:{}\n    steps:\n{}",
        block.line, block.text
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("readme.yaml");
    std::fs::write(&file, &spliced).expect("write");
    // The next versions `migrate` steps load sit beside the scenario file.
    let versions = root().join(named).with_file_name("versions");
    if versions.is_dir() {
        std::fs::create_dir(dir.path().join("versions")).expect("versions folder");
        for entry in std::fs::read_dir(&versions).expect("versions").flatten() {
            std::fs::copy(
                entry.path(),
                dir.path().join("versions").join(entry.file_name()),
            )
            .expect("copy a version");
        }
    }
    run_scenarios(&file, &workflows_for(&spliced)?, 1)
}

/// The workflows that parts of a workflow shown in the README are spliced into, by the
/// block's first line: each holds what the part leaves out, and no more.
const SPLICES: &[(&str, &str)] = &[
    // A whole workflow: the notifications example.
    ("id: readme_notify", "{}"),
    (
        "calendar: cn_mainland",
        "id: readme_time\ntitle: 计时\nroles: {cs_dept: }\naccess: {start: [cs_dept]}\ninitial: submitted\nstates:\n  submitted:\n    on:\n      accept: {to: accepted, roles: [cs_dept]}\n  escalated: {final: true}\n  accepted:\n    on:\n      refund_due: {to: drafting}\n  drafting:\n    on:\n      report_late: {to: escalated}\nfields:\n  review_reminded: {type: bool, title: 已催办}\n",
    ),
    (
        "roles:",
        "id: readme_controls\ntitle: 费用审批\ninitial: drafted\nstates:\n  drafted:\n    on:\n      submit: {to: review, roles: [applicant]}\n  review:\n    on:\n      approve: {to: done, roles: [finance_supervisor]}\n      reject: {to: drafted, roles: [finance_supervisor]}\n      resubmit: {to: review, roles: [applicant]}\n  done: {final: true}\n",
    ),
];

fn splice_base(block: &Block) -> Option<&'static str> {
    let first = block.text.lines().next()?;
    SPLICES
        .iter()
        .find(|(marker, _)| first.starts_with(marker))
        .map(|(_, base)| *base)
}

/// `part` over `base`: mappings merged key by key, anything else from `part`.
fn merge(base: &mut serde_json::Value, part: serde_json::Value) {
    match (base, part) {
        (serde_json::Value::Object(base), serde_json::Value::Object(part)) => {
            for (key, value) in part {
                match base.get_mut(&key) {
                    Some(old) if !value.is_null() => merge(old, value),
                    Some(_) => {}
                    None => _ = base.insert(key, value),
                }
            }
        }
        (base, part) => *base = part,
    }
}

fn check_workflow_part(block: &Block, _: &mut Ctx) -> Result<(), String> {
    let base = splice_base(block).expect("claimed");
    let mut workflow: serde_json::Value = serde_saphyr::from_str(base).expect("base YAML");
    let part: serde_json::Value =
        serde_saphyr::from_str(&block.text).map_err(|e| format!("not YAML: {e}"))?;
    merge(&mut workflow, part);
    let dir = tempfile::tempdir().expect("temp dir");
    let workflows = dir.path().join("workflows");
    std::fs::create_dir(&workflows).expect("mkdir");
    std::fs::copy(
        root().join("workflows/roles.yaml"),
        workflows.join("roles.yaml"),
    )
    .expect("copy");
    // JSON is YAML.
    std::fs::write(workflows.join("readme.yaml"), workflow.to_string()).expect("write");
    let report = catalog::load(
        &[workflows, root().join("rules"), root().join("calendars")],
        &Sandbox::new(Limits::default()),
    )
    .map_err(|e| e.to_string())?;
    let found: Vec<String> = report
        .diagnostics
        .iter()
        .filter(|d| d.file.ends_with("readme.yaml"))
        .map(|d| format!("{} {}", d.code, d.message))
        .collect();
    if !found.is_empty() || report.catalog.definitions.len() != 1 {
        return Err(format!(
            "spliced into a workflow it does not validate: {found:#?}\n{workflow:#}"
        ));
    }
    Ok(())
}

/// The block compiles as a rules file in the sandbox, and is that file's text, whose name its
/// first line gives (`// rules/hot_work.rhai`).
fn check_rules(block: &Block, _: &mut Ctx) -> Result<(), String> {
    let (first, rest) = block.text.split_once('\n').unwrap_or_default();
    let file = first
        .strip_prefix("// ")
        .filter(|f| f.starts_with("rules/") && f.ends_with(".rhai"))
        .ok_or("the first line does not name its rules file")?;
    let name = file.trim_start_matches("rules/").trim_end_matches(".rhai");
    let sandbox = Sandbox::new(Limits::default());
    let compiled = RulesFile::compile(&sandbox, name, rest).map_err(|e| e.to_string())?;
    if compiled.functions.is_empty() || !compiled.top_level_statements().is_empty() {
        return Err("a rules file holds functions and nothing else".into());
    }
    let shipped = std::fs::read_to_string(root().join(file)).map_err(|e| format!("{file}: {e}"))?;
    if !shipped.contains(rest) {
        return Err(format!("{file} does not hold this text"));
    }
    Ok(())
}

/// A project whose hot-work permit misspells `cs_review` where security review approves.
fn misspelt_project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for folder in ["rules", "calendars"] {
        std::os::unix::fs::symlink(root().join(folder), dir.path().join(folder)).expect("link");
    }
    std::fs::create_dir(dir.path().join("workflows")).expect("mkdir");
    for entry in std::fs::read_dir(root().join("workflows"))
        .expect("workflows")
        .flatten()
    {
        let text = std::fs::read_to_string(entry.path()).expect("read");
        let text = if entry.file_name() == "hot_work_permit.yaml" {
            let wrong = text.replacen(
                "approve: {to: cs_review, title: 初审通过",
                "approve: {to: cs_reveiw, title: 初审通过",
                1,
            );
            assert_ne!(wrong, text, "the permit's first approval");
            wrong
        } else {
            text
        };
        std::fs::write(dir.path().join("workflows").join(entry.file_name()), text).expect("write");
    }
    dir
}

/// The last `sopflow validate ...` command the text before a block names, as arguments.
fn validate_command(prose: &str) -> Result<Vec<&str>, String> {
    prose
        .split('`')
        .filter_map(|w| w.strip_prefix("sopflow "))
        .rfind(|w| w.starts_with("validate "))
        .map(|w| w.split_whitespace().collect())
        .ok_or_else(|| "the text before names no `sopflow validate` command".to_string())
}

/// The JSON the command before the block prints for the misspelt state: the README's fields,
/// no others, with its values.
fn check_validate_json(block: &Block, _: &mut Ctx) -> Result<(), String> {
    let shown: serde_json::Value =
        serde_json::from_str(&block.text).map_err(|e| format!("not JSON: {e}"))?;
    let dir = misspelt_project();
    let output = sopflow(dir.path(), &validate_command(&block.prose)?);
    let real: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("validate printed no JSON ({e}): {}", printed(&output)))?;
    let differs = |shown: &serde_json::Value, real: &serde_json::Value| {
        let (Some(shown), Some(real)) = (shown.as_object(), real.as_object()) else {
            return Some("(not an object)".to_string());
        };
        if shown.len() != real.len() {
            return Some(format!("{:?}", real.keys().collect::<Vec<_>>()));
        }
        shown
            .iter()
            .filter(|(key, _)| *key != "diagnostics")
            .find(|(key, value)| real.get(key.as_str()) != Some(value))
            .map(|(key, _)| key.clone())
    };
    let shown_diagnostics = shown["diagnostics"].as_array().ok_or("no diagnostics")?;
    let real_diagnostics = real["diagnostics"].as_array().ok_or("no diagnostics")?;
    if let Some(key) = differs(&shown, &real) {
        return Err(format!("`{key}` differs: {real:#}"));
    }
    if shown_diagnostics.len() != real_diagnostics.len() {
        return Err(format!("another number of diagnostics: {real:#}"));
    }
    for (shown, real) in shown_diagnostics.iter().zip(real_diagnostics) {
        if let Some(key) = differs(shown, real) {
            return Err(format!("`{key}` differs: {real:#}"));
        }
    }
    Ok(())
}

/// The report `validate` prints for the misspelt state (the command before the JSON block,
/// in human format), line for line.
fn check_validate_human(block: &Block, ctx: &mut Ctx) -> Result<(), String> {
    let json = ctx
        .blocks
        .iter()
        .rfind(|b| b.line < block.line && b.info == "json")
        .ok_or("no JSON block before")?;
    let mut args = validate_command(&json.prose)?;
    if let Some(at) = args.iter().position(|a| *a == "--format") {
        args.drain(at..at + 2);
    }
    let dir = misspelt_project();
    let output = sopflow(dir.path(), &args);
    let out = printed(&output);
    let shown: Vec<&str> = block.text.lines().collect();
    let real: Vec<&str> = out.lines().map(str::trim_end).collect();
    let shown_trimmed: Vec<&str> = shown.iter().map(|l| l.trim_end()).collect();
    if output.status.code() != Some(1)
        || !real
            .windows(shown_trimmed.len())
            .any(|w| w == shown_trimmed.as_slice())
    {
        return Err(format!("validate prints:\n{out}"));
    }
    Ok(())
}

/// `audit chain` of the README's permit: the lines before `...` begin what it prints, the ones
/// after are lines of it in a row, in shape (times and hashes differ from run to run).
fn check_chain(block: &Block, ctx: &mut Ctx) -> Result<(), String> {
    let dir = ctx.walked()?;
    let output = sopflow(dir, &["audit", "chain", "hot_work_permit-1"]);
    let out = printed(&output);
    let lines: Vec<&str> = block.text.lines().collect();
    let gap = lines
        .iter()
        .position(|l| *l == "...")
        .unwrap_or(lines.len());
    let head = &lines[..gap];
    let tail = &lines[(gap + 1).min(lines.len())..];
    let starts = out
        .lines()
        .take(head.len())
        .map(|l| shape(l.trim_end()))
        .collect::<Vec<_>>()
        == head.iter().map(|l| shape(l.trim_end())).collect::<Vec<_>>();
    if output.status.code() != Some(0) || !starts || !shows_in_a_row(tail, &out) {
        return Err(format!("audit chain prints:\n{out}"));
    }
    Ok(())
}

fn check_digest(block: &Block, ctx: &mut Ctx) -> Result<(), String> {
    let dir = ctx.walked()?;
    let output = sopflow(dir, &["audit", "verify"]);
    let out = printed(&output);
    let lines: Vec<&str> = block.text.lines().collect();
    if output.status.code() != Some(0) || !shows_in_a_row(&lines, &out) {
        return Err(format!("audit verify prints:\n{out}"));
    }
    Ok(())
}

/// The PASS line is what the shipped permit's scenarios print; the FAIL lines what the
/// README's own lead_callback steps print at the README's path when they expect `contacted`
/// where the instance is `overdue`; the summary in shape.
fn check_test_report(block: &Block, _: &mut Ctx) -> Result<(), String> {
    let lines: Vec<&str> = block.text.lines().collect();
    let pass: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("PASS "))
        .collect();
    let fail_at = lines
        .iter()
        .position(|l| l.starts_with("FAIL "))
        .ok_or("no FAIL line")?;
    let fail: Vec<&str> = lines[fail_at..]
        .iter()
        .copied()
        .take_while(|l| !l.is_empty())
        .collect();
    let summary = lines.last().copied().unwrap_or_default();

    let shipped = Command::new(env!("CARGO_BIN_EXE_sopflow"))
        .args(["test", "tests/scenarios/hot_work_permit.yaml"])
        .current_dir(root())
        .output()
        .expect("run sopflow test");
    let shipped_out = printed(&shipped);
    for line in &pass {
        if !shipped_out.lines().any(|l| l.trim_end() == line.trim_end()) {
            return Err(format!("`sopflow test` prints no `{line}`:\n{shipped_out}"));
        }
    }

    let path = fail[0]
        .strip_prefix("FAIL ")
        .and_then(|rest| rest.split(':').next())
        .ok_or("no path")?;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join(path);
    std::fs::create_dir_all(file.parent().expect("folder")).expect("mkdir");
    let failing = std::fs::read_to_string(root().join("tests/time/scenarios/lead_callback.yaml"))
        .expect("lead_callback")
        .replace(
            "{state: overdue, timers: [], history: 2}",
            "{state: contacted, timers: [], history: 2}",
        );
    std::fs::write(&file, failing).expect("write");
    let failed = Command::new(env!("CARGO_BIN_EXE_sopflow"))
        .args(["test", path, "--workflows"])
        .arg(root().join("tests/time"))
        .current_dir(dir.path())
        .output()
        .expect("run sopflow test");
    let failed_out = printed(&failed);
    if failed.status.code() != Some(1)
        || !failed_out.lines().any(|l| l.trim_end() == fail[0])
        || !shows_in_a_row(&fail, &failed_out)
    {
        return Err(format!("`sopflow test` prints:\n{failed_out}"));
    }
    let summaries = [&shipped_out, &failed_out].map(|o| o.lines().last().map(shape));
    if !summaries.contains(&Some(shape(summary))) {
        return Err(format!("no summary like `{summary}`: {summaries:?}"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------

fn checkers_of<'a>(block: &Block, ctx: &Ctx) -> Vec<&'a Checker> {
    CHECKS.iter().filter(|c| (c.claims)(block, ctx)).collect()
}

#[test]
fn every_readme_block_is_checked() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README");
    let fences = readme.lines().filter(|l| l.starts_with("```")).count();
    let found = blocks(&readme);
    assert_eq!(
        found.len() * 2,
        fences,
        "every fence opens or closes a block"
    );
    let mut ctx = Ctx {
        readme: readme.clone(),
        blocks: found,
        walked: None,
        served: None,
    };
    for claim in CLAIMS {
        if let Err(e) = claimed_line(claim, &ctx.readme, &ctx.blocks) {
            panic!("the claim for {}::{}: {e}", claim.file, claim.test);
        }
    }
    let mut failures = Vec::new();
    let mut checked = 0;
    for block in ctx.blocks.clone() {
        let checkers = checkers_of(&block, &ctx);
        let [checker] = checkers[..] else {
            failures.push(format!(
                "README.md:{}: the ```{} block is claimed by {} checks ({:?}); give it one",
                block.line,
                block.info,
                checkers.len(),
                checkers.iter().map(|c| c.name).collect::<Vec<_>>()
            ));
            continue;
        };
        match (checker.check)(&block, &mut ctx) {
            Ok(()) => checked += 1,
            Err(e) => failures.push(format!(
                "README.md:{}: ```{} ({}): {e}",
                block.line, block.info, checker.name
            )),
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
    assert_eq!(checked, ctx.blocks.len());
    assert!(checked >= 20, "{checked} blocks");
}

/// A block of a kind no check knows fails, named by its line.
#[test]
fn a_block_no_check_claims_is_named_by_its_line() {
    let readme = "# t\n\n```ini\na = 1\n```\n\n```yaml\nunknown_top_level: 1\n```\n";
    let ctx = Ctx {
        readme: readme.to_string(),
        blocks: blocks(readme),
        walked: None,
        served: None,
    };
    assert_eq!(ctx.blocks.len(), 2);
    assert_eq!((ctx.blocks[0].line, ctx.blocks[1].line), (3, 7));
    for block in &ctx.blocks {
        assert!(checkers_of(block, &ctx).is_empty(), "{block:?}");
    }
}
