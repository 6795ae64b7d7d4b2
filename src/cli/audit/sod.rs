//! `sopflow audit sod`: instances where one actor did two steps that must be done by two
//! people, as a table (or JSON). Exit 1 on any finding, 2 on a `--separate` that is not a
//! rule.

use super::super::Format;
use super::super::runtime::{StoreArgs, finish, pretty, with_engine};
use super::replay::plural;
use sopflow::audit::sod::{SodFinding, SodReport};
use std::process::ExitCode;

pub(super) fn run(
    workflow: Option<String>,
    separate: Vec<String>,
    format: Format,
    store: &StoreArgs,
) -> ExitCode {
    let mut rules = Vec::new();
    for text in &separate {
        match parse_rule(text) {
            Ok(rule) => rules.push(rule),
            Err(message) => {
                eprintln!("error: {message}");
                return ExitCode::from(2);
            }
        }
    }
    let result = with_engine(store.read_only(), async |engine| {
        engine
            .separation_of_duties(workflow.as_deref(), &rules)
            .await
    });
    let report = match result {
        Ok(report) => report,
        Err(failure) => return finish(format, Err::<(), _>(failure), |()| String::new()),
    };
    match format {
        Format::Json => println!("{}", pretty(&report)),
        Format::Human => print!("{}", table(&report)),
    }
    if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// `a.x, b.y` as a rule: at least two steps, each `state.event` or `event`.
fn parse_rule(text: &str) -> Result<Vec<String>, String> {
    let steps: Vec<String> = text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if let Some(bad) = steps.iter().find(|s| {
        s.split('.').count() > 2
            || s.split('.')
                .any(|part| part.is_empty() || part.contains(' '))
    }) {
        return Err(format!(
            "--separate `{text}`: `{bad}` is not a step; write `state.event` or `event`"
        ));
    }
    if steps.len() < 2 {
        return Err(format!(
            "--separate `{text}` needs at least two steps, comma-separated (`state.event` or `event`), that must be done by different people"
        ));
    }
    Ok(steps)
}

/// The findings as a table, then a summary line and any notes.
fn table(report: &SodReport) -> String {
    let header = ["INSTANCE", "WORKFLOW", "ACTOR", "STEPS", "RULE"];
    let rows: Vec<[String; 5]> = report.findings.iter().map(row).collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 5]| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(cell);
                let pad = widths[i] + 2 - cell.chars().count();
                out.push_str(&" ".repeat(pad));
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = String::new();
    if !rows.is_empty() {
        out.push_str(&line(header));
        for row in &rows {
            out.push_str(&line([&row[0], &row[1], &row[2], &row[3], &row[4]]));
        }
    }
    for note in &report.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    out.push_str(&format!(
        "{} checked, {}\n",
        plural(report.instances, "instance", "instances"),
        plural(report.findings.len() as u64, "finding", "findings")
    ));
    out
}

fn row(finding: &SodFinding) -> [String; 5] {
    let mut rule = finding.rule.describe();
    if finding.rule.only_current() {
        rule.push_str(
            " (not in the version the instance ran under: added after these steps were taken)",
        );
    }
    [
        finding.instance.clone(),
        finding.workflow.clone(),
        finding.actor.clone(),
        finding.steps_text(),
        rule,
    ]
}
