//! `sopflow audit chain`: the approval chain of one instance, for a person (each step with
//! the workflow's Chinese titles beside the English identifiers, local and UTC times, the
//! comment and the guards explained), a program (JSON) or a spreadsheet (CSV, the columns of
//! `audit export`, system steps included).

use super::super::Format;
use super::super::remote::RemoteArgs;
use super::super::runtime::{StoreArgs, chosen_lang, finish, pretty, with_engine};
use super::ChainFormat;
use sopflow::audit::chain::{self, ApprovalChain, Link, LinkKind};
use sopflow::audit::export::{CsvRows, ExportRow};
use std::fmt::Write;
use std::process::ExitCode;

pub(super) fn run(
    instance: &str,
    format: ChainFormat,
    store: &StoreArgs,
    remote: &RemoteArgs,
) -> ExitCode {
    // Errors are JSON for a program, and a line on standard error otherwise.
    let errors = match format {
        ChainFormat::Json => Format::Json,
        ChainFormat::Human | ChainFormat::Csv => Format::Human,
    };
    // The chain carries its own titles: none need fetching.
    let result = match remote.connect(Format::Json, chosen_lang(None)) {
        Ok(Some(server)) => server.audit_chain(instance),
        Ok(None) => with_engine(store.read_only(), async |engine| {
            engine.approval_chain(instance).await
        }),
        Err(failure) => Err(failure),
    };
    finish(errors, result, |chain| match format {
        ChainFormat::Human => human(&chain),
        ChainFormat::Json => pretty(&chain),
        ChainFormat::Csv => csv(&chain),
    })
}

fn csv(chain: &ApprovalChain) -> String {
    let written = CsvRows::new(Vec::new()).and_then(|mut rows| {
        for row in ExportRow::of_chain(chain) {
            rows.write(&row)?;
        }
        rows.finish()
    });
    match written {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => format!("error: cannot write CSV: {e}\n"),
    }
}

/// `text` padded with spaces to `width` terminal columns (Chinese characters take two).
fn pad(text: &str, width: usize) -> String {
    let used: usize = text
        .chars()
        .map(|c| if c >= '\u{2e80}' { 2 } else { 1 })
        .sum();
    format!("{text}{}", " ".repeat(width.saturating_sub(used)))
}

/// `id (title)`, or the id alone.
fn named(id: &str, title: Option<&str>) -> String {
    match title.filter(|t| !t.is_empty()) {
        Some(title) => format!("{id} ({title})"),
        None => id.to_string(),
    }
}

fn human(chain: &ApprovalChain) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}  {}",
        chain.instance,
        named(&chain.workflow, chain.workflow_title.as_deref())
    );
    let line = |out: &mut String, label: &str, text: &str| {
        let _ = writeln!(out, "  {} {text}", pad(label, 22));
    };
    if let Some(key) = &chain.business_key {
        line(&mut out, "业务编号 business key", key);
    }
    if let Some(parent) = &chain.parent {
        line(&mut out, "上级 parent", parent);
    }
    let finished = if chain.finished {
        ", finished 已办结"
    } else {
        ""
    };
    line(
        &mut out,
        "当前状态 state",
        &format!(
            "{}{finished}",
            named(&chain.state, chain.state_title.as_deref())
        ),
    );
    line(&mut out, "版本 version", &chain.version);
    let calendar = chain
        .calendar
        .as_deref()
        .map(|c| format!(", calendar {c}"))
        .unwrap_or_default();
    line(
        &mut out,
        "时间 times",
        &format!("local UTC{}{calendar}, then UTC", chain.timezone),
    );
    let people = chain.links.iter().filter(|l| l.kind.by_person()).count();
    line(
        &mut out,
        "步骤 steps",
        &format!(
            "{} ({} by people, {} by the system)",
            chain.links.len(),
            people,
            chain.links.len() - people
        ),
    );
    for link in &chain.links {
        out.push('\n');
        block(&mut out, link, &chain.version);
    }
    if !chain.notes.is_empty() {
        out.push('\n');
        for note in &chain.notes {
            let _ = writeln!(out, "note: {note}");
        }
    }
    out
}

fn block(out: &mut String, link: &Link, version: &str) {
    let kind = format!("{} {}", link.kind.title(), link.kind.name());
    let event = if link.kind == LinkKind::Start {
        link.event.clone()
    } else {
        named(&link.event, link.event_title.as_deref())
    };
    let _ = writeln!(out, "#{:<3} {} {event}", link.seq, pad(&kind, 16));
    let field = |out: &mut String, label: &str, text: &str| {
        let _ = writeln!(out, "     {label:<9} {text}");
    };
    let role = link
        .role
        .as_deref()
        .map(|r| format!(" as {}", named(r, link.role_title.as_deref())))
        .unwrap_or_default();
    field(out, "by", &format!("{}{role}", link.actor));
    field(
        out,
        "at",
        &format!(
            "{}  ({} UTC)",
            chain::local(&link.at_local),
            link.at_utc.format("%Y-%m-%d %H:%M:%S")
        ),
    );
    let to = named(&link.to, link.to_title.as_deref());
    let step = match &link.from {
        None => format!("-> {to}"),
        Some(from) if !link.moved => {
            format!("stays in {}", named(from, link.from_title.as_deref()))
        }
        Some(from) => format!("{} -> {to}", named(from, link.from_title.as_deref())),
    };
    let finished = if link.finished && link.moved {
        ", finished"
    } else {
        ""
    };
    field(out, "step", &format!("{step}{finished}"));
    if let Some(signature) = &link.signature {
        let completed = if signature.completed {
            "; the approval is complete"
        } else {
            ""
        };
        field(out, "signature", &format!("{}{completed}", signature.text));
    }
    if let Some(comment) = &link.comment {
        field(out, "comment", comment);
    }
    if !link.changes.is_empty() {
        let set: Vec<String> = link
            .changes
            .iter()
            .map(|c| format!("{} = {}", c.field, chain::show_value(&c.value)))
            .collect();
        field(out, "set", &set.join(", "));
    }
    for guard in &link.guards {
        let label = match guard.purpose {
            chain::GuardPurpose::Transition => "guard",
            chain::GuardPurpose::Signer => "condition",
        };
        field(out, label, &guard.text);
    }
    for signer in &link.signers {
        field(out, "signer", &signer.text);
    }
    for note in &link.notes {
        field(out, "note", note);
    }
    if let Some(before) = &link.from_version {
        field(out, "version", &format!("{before} -> {}", link.version));
    } else if link.version != version {
        field(out, "version", &link.version);
    }
}
