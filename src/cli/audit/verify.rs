//! `sopflow audit verify`: every chain, snapshot, index and definition version checked, and
//! the store digest printed (or checked against one written down earlier).

use super::super::Format;
use super::super::remote::{Remote, RemoteArgs};
use super::super::runtime::{
    Failure, StoreArgs, chosen_lang, finish, pretty, with_engine_blocking,
};
use super::progress_bar;
use chrono::{DateTime, Utc};
use serde_json::json;
use sopflow::audit::verify::{Digest, Problem, Summary};
use std::process::ExitCode;

pub(super) fn run(
    as_of: Option<String>,
    digest: Option<String>,
    format: Format,
    store: &StoreArgs,
    remote: &RemoteArgs,
) -> ExitCode {
    let expected = match digest.as_deref().map(Digest::parse_token).transpose() {
        Ok(expected) => expected,
        Err(message) => {
            return finish(format, Err::<(), _>(Failure::Input(message)), |_| {
                String::new()
            });
        }
    };
    let as_of = match (&expected, as_of) {
        (Some((time, _)), _) => Some(*time),
        (None, Some(text)) => match DateTime::parse_from_rfc3339(&text) {
            Ok(time) => Some(time.with_timezone(&Utc)),
            Err(e) => {
                let failure = Failure::Input(format!(
                    "--as-of `{text}`: {e}; give an RFC 3339 time such as 2026-11-29T08:00:00+08:00"
                ));
                return finish(format, Err::<(), _>(failure), |_| String::new());
            }
        },
        (None, None) => None,
    };
    match remote.connect(Format::Json, chosen_lang(None)) {
        Ok(Some(server)) => return run_remote(&server, as_of, digest, format, expected),
        Ok(None) => {}
        Err(failure) => return finish(format, Err::<(), _>(failure), |_| String::new()),
    }
    let bar = (format == Format::Human).then(|| progress_bar("verifying"));
    let mut problems = Vec::new();
    let result = with_engine_blocking(store.read_only(), |engine| {
        let as_of = as_of.unwrap_or_else(|| engine.now());
        engine.verify_store(
            as_of,
            &mut |problem| match format {
                // A person sees each break as it is found; a program gets them all at the end.
                Format::Human => match &bar {
                    Some(bar) => bar.suspend(|| println!("BROKEN {problem}")),
                    None => println!("BROKEN {problem}"),
                },
                Format::Json => problems.push(problem),
            },
            &mut |done| {
                if let Some(bar) = &bar {
                    bar.set_position(done);
                }
            },
        )
    });
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let Ok(summary) = result else {
        return finish(format, result.map(|_| ()), |_| String::new());
    };
    let digest_ok = expected
        .as_ref()
        .is_none_or(|(_, hash)| *hash == summary.digest.hash);
    print!("{}", render(format, &summary, &problems, expected.as_ref()));
    if summary.is_clean() && digest_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Verification by a server (`--server`): it reads the store it holds; the report is printed
/// as a local one is, broken entries first.
fn run_remote(
    server: &Remote,
    as_of: Option<DateTime<Utc>>,
    digest: Option<String>,
    format: Format,
    expected: Option<(DateTime<Utc>, String)>,
) -> ExitCode {
    let as_of = as_of.map(|t| t.to_rfc3339());
    let verified = match server.audit_verify(as_of.as_deref(), digest.as_deref()) {
        Ok(verified) => verified,
        Err(failure) => return finish(format, Err::<(), _>(failure), |_| String::new()),
    };
    if format == Format::Human {
        for problem in &verified.problems {
            println!("BROKEN {problem}");
        }
    }
    print!(
        "{}",
        render(
            format,
            &verified.summary,
            &verified.problems,
            expected.as_ref()
        )
    );
    if verified.clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn render(
    format: Format,
    summary: &Summary,
    problems: &[Problem],
    expected: Option<&(DateTime<Utc>, String)>,
) -> String {
    let digest = &summary.digest;
    match format {
        Format::Json => {
            let check = expected
                .map(|(_, hash)| json!({"expected": hash, "matches": *hash == digest.hash}));
            format!(
                "{}\n",
                pretty(&json!({
                    "clean": summary.is_clean() && check.as_ref().is_none_or(|c| c["matches"] == true),
                    "summary": summary,
                    "digest_token": digest.token(),
                    "digest_check": check,
                    "problems": problems,
                }))
            )
        }
        Format::Human => {
            let mut out = format!(
                "checked {} instances, {} entries, {} definition versions: ",
                summary.instances, summary.entries, summary.definitions
            );
            if summary.is_clean() {
                out.push_str("every chain intact\n");
            } else {
                out.push_str(&format!(
                    "{} problem(s) found (listed above)\n",
                    summary.problems
                ));
            }
            out.push_str(&format!(
                "digest: {}\n  ({} instances, {} entries made by {}; write it down, and check it later with `sopflow audit verify --digest {}`)\n",
                digest.token(),
                digest.instances,
                digest.entries,
                digest.as_of.to_rfc3339(),
                digest.token()
            ));
            if let Some((_, hash)) = expected {
                if *hash == digest.hash {
                    out.push_str("digest matches the one given: nothing made by then was removed or changed\n");
                } else {
                    out.push_str(&format!(
                        "BROKEN the digest does not match the one given ({hash}): entries made by {} were removed, added or changed since it was taken [digest_mismatch]\n",
                        digest.as_of.to_rfc3339()
                    ));
                }
            }
            out
        }
    }
}
