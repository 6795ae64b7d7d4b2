//! `sopflow audit definition`: the exact YAML and rules of a stored definition version (found
//! by its hash or a unique prefix of at least 8 hex digits), and whether they still hash to
//! it. Exit 1 when the version is unknown or ambiguous, or its sources were altered.

use super::super::Format;
use super::super::runtime::{StoreArgs, finish, pretty, with_engine};
use serde_json::json;
use sopflow::audit::replay::{FoundDefinition, LookupError};
use std::process::ExitCode;

pub(super) fn run(hash: &str, format: Format, store: &StoreArgs) -> ExitCode {
    let result = with_engine(store.read_only(), async |engine| {
        Ok(engine.find_definition(hash).await)
    });
    let found = match result {
        Ok(Ok(found)) => found,
        Ok(Err(lookup)) => return not_found(&lookup, format),
        Err(failure) => return finish(format, Err::<(), _>(failure), |()| String::new()),
    };
    match format {
        Format::Json => println!(
            "{}",
            pretty(&json!({
                "hash": found.hash,
                "workflow": found.stored.workflow,
                "file": found.stored.file,
                "intact": found.intact(),
                "sources_hash": found.recomputed,
                "yaml": found.stored.yaml,
                "rules": found.stored.rules,
            }))
        ),
        Format::Human => print!("{}", human(&found)),
    }
    if found.intact() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn not_found(lookup: &LookupError, format: Format) -> ExitCode {
    let code = match lookup {
        LookupError::NotAHash(_) | LookupError::TooShort(_) => "bad_input",
        LookupError::Unknown(_) => "unknown_version",
        LookupError::Ambiguous { .. } => "ambiguous_version",
        LookupError::Store(_) => "store",
    };
    match format {
        Format::Json => println!(
            "{}",
            pretty(&json!({"error": {"code": code, "message": lookup.to_string()}}))
        ),
        Format::Human => eprintln!("error: {lookup}"),
    }
    ExitCode::from(1)
}

fn human(found: &FoundDefinition) -> String {
    let stored = &found.stored;
    let mut out = format!(
        "definition version {}\n  workflow  {}\n  file      {}\n",
        found.hash, stored.workflow, stored.file
    );
    if found.intact() {
        out.push_str("  sources   intact: they still hash to this version\n");
    } else {
        out.push_str(&format!(
            "  sources   ALTERED: they hash to {}, not to {}; they were changed after they were stored\n",
            found.recomputed, found.hash
        ));
    }
    let names: Vec<String> = stored.rules.keys().map(|n| format!("{n}.rhai")).collect();
    out.push_str(&format!(
        "  rules     {}\n",
        if names.is_empty() {
            "(none)".to_string()
        } else {
            names.join(", ")
        }
    ));
    section(&mut out, &stored.file, &stored.yaml);
    for (name, text) in &stored.rules {
        section(&mut out, &format!("rules: {name}.rhai"), text);
    }
    out
}

fn section(out: &mut String, title: &str, text: &str) {
    out.push_str(&format!("\n==> {title} <==\n"));
    out.push_str(text);
    if !text.ends_with('\n') {
        out.push('\n');
    }
}
