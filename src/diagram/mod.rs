//! Diagrams of a workflow in Mermaid (renders on GitHub and in most Markdown viewers) and
//! Graphviz DOT (renders with `dot -Tsvg`).
//!
//! Both show the same things: states with their titles, the initial state, final states,
//! transitions labelled with the event and the roles allowed (and a mark when guarded),
//! approvals with their mode, and events fired by timers as dashed edges with the delay.
//!
//! [`svg()`] draws the same edges itself (layout included), for the web console and the HTTP
//! API, where neither Graphviz nor a Mermaid runtime is available.

mod svg;

pub use svg::{ChildTitle, FONT_FAMILY, StateLink, SvgOptions, svg};

use crate::definition::Workflow;
use crate::definition::model::{ApprovalMode, State};
use std::fmt::Write;

/// One arrow of the diagram.
struct Edge {
    from: String,
    to: String,
    /// First line: the event (and timer delay); second line: roles and conditions.
    label: Vec<String>,
    timer: bool,
    /// The event, kept apart from `label` for the SVG, which lays its labels out itself.
    event: String,
    /// The branch's title (`初审通过`), or an approval's mode.
    title: Option<String>,
    /// What the timers firing this event are called: their titles, or their delays.
    timers: Vec<String>,
    /// The child workflows the step starts.
    spawns: Vec<Spawn>,
}

/// A child workflow a step starts: one, or one per item of a list field. Ids as declared;
/// [`Spawn::in_titles`] gives the reader's words.
struct Spawn {
    workflow: String,
    for_each: Option<String>,
}

impl Spawn {
    /// `construction_pass × workers`, or in titles `施工人员出入证 × 施工人员`.
    fn label(&self) -> String {
        match &self.for_each {
            Some(list) => format!("{} × {list}", self.workflow),
            None => self.workflow.clone(),
        }
    }

    /// The same spawn named by the child's title (from `child_title`; the id when it gives
    /// none) and the list field's title.
    fn in_titles(&self, workflow: &Workflow, child_title: Option<ChildTitle>) -> Spawn {
        Spawn {
            workflow: child_title
                .and_then(|title| title(&self.workflow))
                .unwrap_or_else(|| self.workflow.clone()),
            for_each: self
                .for_each
                .as_deref()
                .map(|list| workflow.field_title(list).to_string()),
        }
    }
}

fn edges(workflow: &Workflow) -> Vec<Edge> {
    let mut edges = Vec::new();
    for (name, state) in workflow.states.iter() {
        for (event, branches) in state.on.iter() {
            let timer = timer_label(state, event.as_str());
            for branch in &branches.0 {
                let mut first = match &timer {
                    Some(delay) => format!("定时 {delay}: {}", event.as_str()),
                    None => event.as_str().to_string(),
                };
                if let Some(title) = &branch.title {
                    first.push_str(&format!(" ({title})"));
                }
                let mut second = Vec::new();
                if !branch.roles.is_empty() {
                    second.push(format!(
                        "[{}]",
                        join(branch.roles.iter().map(|r| r.as_str()))
                    ));
                }
                if let Some(guard) = &branch.guard {
                    second.push(format!("if {}", shorten(guard.as_str())));
                }
                edges.push(Edge {
                    from: name.value.clone(),
                    to: branch.to.value.clone(),
                    label: [vec![first], vec![second.join(" ")]]
                        .concat()
                        .into_iter()
                        .filter(|s| !s.is_empty())
                        .collect(),
                    timer: timer.is_some(),
                    event: event.as_str().to_string(),
                    title: branch.title.clone(),
                    timers: timer_captions(state, event.as_str()),
                    spawns: branch
                        .spawn
                        .iter()
                        .map(|s| Spawn {
                            workflow: s.workflow.as_str().to_string(),
                            for_each: s.for_each.as_ref().map(|l| l.as_str().to_string()),
                        })
                        .collect(),
                });
            }
        }
        if let Some(approval) = &state.approval {
            let mode = match approval.mode.value {
                ApprovalMode::Sequence => "in turn".to_string(),
                ApprovalMode::All => "all sign".to_string(),
                ApprovalMode::Any => "any one signs".to_string(),
                ApprovalMode::Quorum => format!(
                    "{} of {} sign",
                    approval.quorum.as_ref().map_or(0, |q| q.value),
                    approval.signers.len()
                ),
            };
            edges.push(Edge {
                from: name.value.clone(),
                to: approval.to.value.clone(),
                event: approval.approve_event().to_string(),
                title: Some(format!("({mode})")),
                timers: Vec::new(),
                spawns: Vec::new(),
                label: vec![
                    format!("{} ({mode})", approval.approve_event()),
                    format!(
                        "[{}]",
                        join(approval.signers.iter().map(|s| s.role.as_str()))
                    ),
                ],
                timer: false,
            });
            if let Some(reject) = &approval.on_reject {
                edges.push(Edge {
                    from: name.value.clone(),
                    to: reject.to.value.clone(),
                    label: vec![reject.reject_event().to_string()],
                    timer: false,
                    event: reject.reject_event().to_string(),
                    title: None,
                    timers: Vec::new(),
                    spawns: Vec::new(),
                });
            }
        }
    }
    edges
}

/// The delays of the timers in `state` that fire `event`, if any do.
fn timer_label(state: &State, event: &str) -> Option<String> {
    let delays: Vec<String> = state
        .timers
        .iter()
        .filter(|t| t.fire.as_str() == event)
        .map(|t| match (&t.after, &t.at) {
            (Some(after), _) => after.value.clone(),
            (None, Some(at)) => format!("at {}", shorten(at.as_str())),
            (None, None) => "timer".to_string(),
        })
        .collect();
    (!delays.is_empty()).then(|| delays.join(", "))
}

/// What the timers in `state` that fire `event` are called: each one's title, or its delay.
fn timer_captions(state: &State, event: &str) -> Vec<String> {
    state
        .timers
        .iter()
        .filter(|t| t.fire.as_str() == event)
        .map(|t| match (&t.title, &t.after, &t.at) {
            (Some(title), _, _) => title.clone(),
            (None, Some(after), _) => after.value.clone(),
            (None, None, Some(at)) => format!("at {}", shorten(at.as_str())),
            (None, None, None) => "timer".to_string(),
        })
        .collect()
}

fn join<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items.collect::<Vec<_>>().join(", ")
}

fn shorten(text: &str) -> String {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.chars().count() > 40 {
        format!("{}…", text.chars().take(39).collect::<String>())
    } else {
        text
    }
}

/// A Mermaid `stateDiagram-v2`.
pub fn mermaid(workflow: &Workflow) -> String {
    let mut out = String::from("stateDiagram-v2\n");
    let _ = writeln!(
        out,
        "    %% {} ({})",
        mermaid_text(&workflow.title),
        workflow.id.as_str()
    );
    for (name, state) in workflow.states.iter() {
        let title = state.title.as_deref().unwrap_or(name.as_str());
        let _ = writeln!(
            out,
            "    state \"{}\" as {}",
            mermaid_text(title),
            name.as_str()
        );
    }
    let _ = writeln!(out, "    [*] --> {}", workflow.initial.as_str());
    // Mermaid draws one label per self-loop of a state and drops the others, so a state's
    // self-loops are one edge whose label lists them all, in order.
    let mut lines: Vec<(String, String, Vec<String>)> = Vec::new();
    for edge in edges(workflow) {
        let label = edge
            .label
            .iter()
            .map(|l| mermaid_text(l))
            .collect::<Vec<_>>()
            .join("<br/>");
        match lines
            .iter_mut()
            .find(|(from, to, _)| edge.from == edge.to && *from == edge.from && *to == edge.to)
        {
            Some((_, _, labels)) => labels.push(label),
            None => lines.push((edge.from, edge.to, vec![label])),
        }
    }
    for (from, to, labels) in lines {
        let _ = writeln!(out, "    {from} --> {to} : {}", labels.join("<br/>"));
    }
    for (name, state) in workflow.states.iter() {
        if state.is_final {
            let _ = writeln!(out, "    {} --> [*]", name.as_str());
        }
    }
    out
}

/// Text inside a Mermaid label or state title, with the characters Mermaid would read as
/// syntax replaced by its entity codes.
fn mermaid_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '#' => out.push_str("#35;"),
            '"' => out.push_str("#quot;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            ':' => out.push_str("#58;"),
            ';' => out.push_str("#59;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A Graphviz digraph.
pub fn dot(workflow: &Workflow) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "digraph \"{}\" {{", dot_text(workflow.id.as_str()));
    let _ = writeln!(
        out,
        "  label=\"{}\";\n  labelloc=t;",
        dot_text(&workflow.title)
    );
    out.push_str("  rankdir=TB;\n  node [shape=box, style=rounded, fontname=\"Noto Sans CJK SC, sans-serif\"];\n");
    out.push_str("  edge [fontname=\"Noto Sans CJK SC, sans-serif\", fontsize=10];\n");
    out.push_str("  \"__start\" [shape=point, width=0.15, label=\"\"];\n");
    for (name, state) in workflow.states.iter() {
        let title = state.title.as_deref().unwrap_or("");
        let label = if title.is_empty() {
            dot_text(name.as_str())
        } else {
            format!("{}\\n{}", dot_text(title), dot_text(name.as_str()))
        };
        let extra = if state.is_final {
            ", peripheries=2"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "  \"{}\" [label=\"{label}\"{extra}];",
            dot_text(name.as_str())
        );
    }
    let _ = writeln!(
        out,
        "  \"__start\" -> \"{}\";",
        dot_text(workflow.initial.as_str())
    );
    for edge in edges(workflow) {
        let label = edge
            .label
            .iter()
            .map(|l| dot_text(l))
            .collect::<Vec<_>>()
            .join("\\n");
        let style = if edge.timer { ", style=dashed" } else { "" };
        let _ = writeln!(
            out,
            "  \"{}\" -> \"{}\" [label=\"{label}\"{style}];",
            dot_text(&edge.from),
            dot_text(&edge.to)
        );
    }
    out.push_str("}\n");
    out
}

fn dot_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const YAML: &str = r#"
id: w
title: "测试: \"引号\""
initial: a
roles: {clerk: 服务台人员}
states:
  a:
    title: 草拟
    on:
      go: {to: b, roles: [clerk], guard: "data.x < 1"}
      remind: {to: a}
    timers:
      - {after: 1 working day, fire: remind}
  b: {final: true}
"#;

    fn workflow() -> Workflow {
        crate::definition::parse_workflow(Path::new("w.yaml"), YAML).expect("parses")
    }

    #[test]
    fn mermaid_marks_initial_final_roles_and_timers() {
        let text = mermaid(&workflow());
        assert!(text.starts_with("stateDiagram-v2\n"));
        assert!(text.contains("[*] --> a"));
        assert!(text.contains("b --> [*]"));
        assert!(text.contains("a --> b : go<br/>[clerk] if data.x #lt; 1"));
        assert!(text.contains("a --> a : 定时 1 working day#58; remind"));
        assert!(text.contains("state \"草拟\" as a"));
    }

    /// Mermaid keeps one label per self-loop: a state's self-loops are one edge listing all.
    #[test]
    fn mermaid_puts_a_states_self_loops_on_one_edge() {
        let yaml = YAML.replace(
            "      remind: {to: a}\n",
            "      remind: {to: a}\n      note: {to: a, roles: [clerk]}\n",
        );
        let workflow =
            crate::definition::parse_workflow(Path::new("w.yaml"), &yaml).expect("parses");
        let text = mermaid(&workflow);
        let loops: Vec<&str> = text.lines().filter(|l| l.contains("a --> a")).collect();
        assert_eq!(loops.len(), 1, "{text}");
        assert!(
            loops[0].contains("remind") && loops[0].contains("note"),
            "{text}"
        );
    }

    #[test]
    fn dot_escapes_quotes_and_dashes_timers() {
        let text = dot(&workflow());
        assert!(text.contains("label=\"测试: \\\"引号\\\"\""));
        assert!(
            text.contains("\"a\" -> \"a\" [label=\"定时 1 working day: remind\", style=dashed]")
        );
        assert!(text.contains("\"b\" [label=\"b\", peripheries=2]"));
    }
}
