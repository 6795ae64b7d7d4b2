//! The unit tests of the SVG diagram: well-formed XML, no overlaps in any shipped workflow,
//! stable bytes, marks, escaping, links, budgets, wrapping and the layer fit.

use super::layout::{Layout, fit_ordered};
use super::text::{is_closing, is_opening, text_width, wrap};
use super::{SvgOptions, svg};
use crate::definition::Workflow;
use crate::diagram::edges;
use std::fmt::Write;
use std::path::Path;

fn parse(yaml: &str) -> Workflow {
    crate::definition::parse_workflow(Path::new("w.yaml"), yaml).expect("parses")
}

/// Every workflow in `workflows/`, by file name.
fn shipped() -> Vec<(String, Workflow)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("workflows/ reads")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .filter(|p| !crate::definition::roles::is_role_list(p))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("workflow reads");
            let workflow = crate::definition::parse_workflow(&path, &text)
                .unwrap_or_else(|e| panic!("{} parses: {e:?}", path.display()));
            (path.display().to_string(), workflow)
        })
        .collect()
}

fn shipped_one(name: &str) -> Workflow {
    shipped()
        .into_iter()
        .find(|(path, _)| path.ends_with(&format!("/{name}.yaml")))
        .map(|(_, w)| w)
        .expect("shipped workflow")
}

/// A small well-formedness check: one root, tags that nest and close, quoted attributes
/// without `<` and unique per tag, and only the five XML entities or character references.
fn well_formed(xml: &str) -> Result<(), String> {
    fn entities(text: &str) -> Result<(), String> {
        let mut rest = text;
        while let Some(i) = rest.find('&') {
            rest = &rest[i + 1..];
            let end = rest.find(';').ok_or("& without ;")?;
            let name = &rest[..end];
            let ok = matches!(name, "amp" | "lt" | "gt" | "quot" | "apos")
                || name
                    .strip_prefix("#x")
                    .is_some_and(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()))
                || name
                    .strip_prefix('#')
                    .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()));
            if !ok {
                return Err(format!("bad entity &{name};"));
            }
            rest = &rest[end + 1..];
        }
        if text
            .chars()
            .any(|c| (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r'))
        {
            return Err("control character".into());
        }
        Ok(())
    }
    fn attributes(mut rest: &str) -> Result<(), String> {
        let mut names = Vec::new();
        loop {
            rest = rest.trim_start();
            if rest.is_empty() {
                return Ok(());
            }
            let eq = rest
                .find('=')
                .ok_or(format!("attribute without value: {rest}"))?;
            let name = &rest[..eq];
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-:_".contains(c))
            {
                return Err(format!("bad attribute name {name:?}"));
            }
            if names.contains(&name) {
                return Err(format!("duplicate attribute {name}"));
            }
            names.push(name);
            let value = rest[eq + 1..]
                .strip_prefix('"')
                .ok_or("unquoted attribute")?;
            let close = value.find('"').ok_or("unterminated attribute")?;
            if value[..close].contains('<') {
                return Err("< in attribute".into());
            }
            entities(&value[..close])?;
            rest = &value[close + 1..];
            if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
                return Err("attributes not separated".into());
            }
        }
    }
    let mut stack: Vec<&str> = Vec::new();
    let mut roots = 0;
    let mut rest = xml;
    while let Some(i) = rest.find('<') {
        let text = &rest[..i];
        if stack.is_empty() && !text.trim().is_empty() {
            return Err(format!("text outside the root: {text:?}"));
        }
        entities(text)?;
        rest = &rest[i..];
        let end = rest.find('>').ok_or("unclosed tag")?;
        let tag = &rest[1..end];
        rest = &rest[end + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            let open = stack
                .pop()
                .ok_or(format!("</{name}> without an open tag"))?;
            if open != name {
                return Err(format!("</{name}> closes <{open}>"));
            }
            continue;
        }
        let closed = tag.ends_with('/');
        let tag = tag.strip_suffix('/').unwrap_or(tag);
        let name_end = tag.find(char::is_whitespace).unwrap_or(tag.len());
        let name = &tag[..name_end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(format!("bad tag name {name:?}"));
        }
        attributes(&tag[name_end..])?;
        if stack.is_empty() {
            roots += 1;
        }
        if !closed {
            stack.push(name);
        }
    }
    if !rest.trim().is_empty() || !stack.is_empty() || roots != 1 {
        return Err(format!("unbalanced: open {stack:?}, {roots} roots"));
    }
    Ok(())
}

#[test]
fn the_checker_rejects_broken_xml() {
    assert!(well_formed("<a><b x=\"1\"/></a>").is_ok());
    for bad in [
        "<a><b></a>",
        "<a x=1/>",
        "<a x=\"<\"/>",
        "<a>&nbsp;</a>",
        "<a/><b/>",
        "<a x=\"1\" x=\"2\"/>",
    ] {
        assert!(well_formed(bad).is_err(), "{bad}");
    }
}

type Rect = (f64, f64, f64, f64);

fn overlap(a: Rect, b: Rect) -> bool {
    let slack = 0.5;
    a.0 + a.2 > b.0 + slack
        && b.0 + b.2 > a.0 + slack
        && a.1 + a.3 > b.1 + slack
        && b.1 + b.3 > a.1 + slack
}

/// Boxes and labels, each with a name for the failure message.
fn rects(layout: &Layout) -> Vec<(String, Rect)> {
    let mut out = Vec::new();
    for s in 0..layout.boxes.len() {
        out.push((format!("state {}", layout.boxes[s].id), layout.box_rect(s)));
        for (edge, left, top) in layout.loop_labels(s) {
            let l = &layout.labels[edge];
            out.push((format!("loop label {edge}"), (left, top, l.width, l.height)));
        }
    }
    for node in 0..layout.nodes.len() {
        if let Some(rect) = layout.label_rect(node) {
            out.push((format!("label {:?}", layout.nodes[node].kind), rect));
        }
    }
    out
}

#[test]
fn every_shipped_workflow_renders_without_overlaps() {
    let all = shipped();
    assert!(all.len() > 20, "found {} workflows", all.len());
    for (path, workflow) in &all {
        let text = svg(workflow, &SvgOptions::default());
        if let Err(e) = well_formed(&text) {
            panic!("{path}: {e}");
        }
        for (name, _) in workflow.states.iter() {
            let id = format!("<g id=\"state-{}\" class=\"state\"", name.as_str());
            assert_eq!(text.matches(&id).count(), 1, "{path}: {id}");
        }
        let edges = edges(workflow);
        let layout = Layout::new(workflow, &edges, false);
        let rects = rects(&layout);
        for (i, (a, ra)) in rects.iter().enumerate() {
            assert!(ra.0 >= 0.0 && ra.1 >= 0.0, "{path}: {a} off the canvas");
            assert!(
                ra.0 + ra.2 <= layout.width && ra.1 + ra.3 <= layout.height,
                "{path}: {a} beyond the canvas"
            );
            for (b, rb) in &rects[i + 1..] {
                assert!(!overlap(*ra, *rb), "{path}: {a} {ra:?} overlaps {b} {rb:?}");
            }
        }
        // Every edge is drawn: through the layers, or as a loop.
        let drawn = layout.chains.len() + layout.boxes.iter().map(|b| b.loops.len()).sum::<usize>();
        assert_eq!(drawn, edges.len(), "{path}");
    }
}

#[test]
fn the_same_workflow_gives_the_same_bytes() {
    for name in ["hot_work_permit", "renovation_approval"] {
        let visited = vec!["drafted".to_string()];
        let options = SvgOptions {
            current: Some("cs_review"),
            visited: &visited,
            link: None,
            titles_only: false,
            child_title: None,
        };
        let first = svg(&shipped_one(name), &options);
        let second = svg(&shipped_one(name), &options);
        assert_eq!(first, second, "{name}");
    }
}

#[test]
fn current_and_visited_states_are_marked() {
    let visited = vec!["drafted".to_string(), "security_review".to_string()];
    let text = svg(
        &shipped_one("hot_work_permit"),
        &SvgOptions {
            current: Some("cs_review"),
            visited: &visited,
            link: None,
            titles_only: false,
            child_title: None,
        },
    );
    assert!(text.contains("<g id=\"state-cs_review\" class=\"state current\""));
    assert!(text.contains("<g id=\"state-drafted\" class=\"state visited\""));
    assert!(text.contains("<g id=\"state-security_review\" class=\"state visited\""));
    assert!(text.contains("<g id=\"state-gm_review\" class=\"state\""));
    assert_eq!(text.matches("class=\"state current\"").count(), 1);
    // The current state's border is bold.
    let current = &text[text.find("id=\"state-cs_review\"").expect("drawn")..];
    let group = &current[..current.find("</g>").expect("closed")];
    assert!(group.contains("stroke-width=\"3\""), "{group}");
}

const YAML: &str = r#"
id: w
title: "测试 <流程> & \"引号\""
initial: a
states:
  a:
    title: "草拟 <a> & 'b'"
    on:
      approve: {to: b, title: 初审通过}
      remind: {to: a, title: 提醒}
      expire: {to: c}
    timers:
      - {after: 1 working day, fire: remind}
      - {after: 3 working days, fire: expire, title: 三个工作日内未处理}
  b:
    on:
      back: {to: a}
  c: {final: true}
"#;

#[test]
fn titles_and_labels_are_escaped_and_shown() {
    let text = svg(&parse(YAML), &SvgOptions::default());
    well_formed(&text).expect("well formed");
    assert!(text.contains("<title>测试 &lt;流程&gt; &amp; &quot;引号&quot; (w)</title>"));
    assert!(text.contains(">草拟 &lt;a&gt; &amp; &apos;b&apos;</text>"));
    assert!(
        text.contains(
            "<tspan font-weight=\"bold\" fill=\"#1d3f66\">approve</tspan> 初审通过</text>"
        )
    );
    assert!(!text.contains("<流程>"));
    // A state without a title shows its id alone.
    assert!(text.contains(">b</text>"));
}

#[test]
fn initial_final_timers_loops_and_back_edges_are_drawn() {
    let text = svg(&parse(YAML), &SvgOptions::default());
    assert!(text.contains("<g class=\"start\"><circle"));
    let final_state = &text[text.find("id=\"state-c\"").expect("drawn")..];
    let group = &final_state[..final_state.find("</g>").expect("closed")];
    assert_eq!(group.matches("<rect").count(), 2, "double border: {group}");
    assert!(text.contains("<path class=\"edge loop timer\" data-event=\"remind\""));
    assert!(text.contains("<path class=\"edge timer\" data-event=\"expire\""));
    assert!(text.contains("stroke-dasharray"));
    assert!(text.contains(">三个工作日内未处理</tspan>"));
    assert!(text.contains("<path class=\"edge back\" data-event=\"back\""));
    assert!(text.contains("<path class=\"edge\" data-event=\"approve\""));
}

#[test]
fn links_wrap_the_boxes_they_are_given_for() {
    let link = |state: &str| (state == "b").then(|| format!("/instances?state={state}&x=1"));
    let text = svg(
        &parse(YAML),
        &SvgOptions {
            link: Some(&link),
            ..SvgOptions::default()
        },
    );
    well_formed(&text).expect("well formed");
    assert_eq!(text.matches("<a href=").count(), 1);
    assert!(text.contains("<a href=\"/instances?state=b&amp;x=1\">"));
}

#[test]
fn broken_references_and_empty_workflows_do_not_panic() {
    let text = svg(
        &parse(
            "id: w\ntitle: t\ninitial: nowhere\nstates:\n  a:\n    on:\n      go: {to: missing}\n",
        ),
        &SvgOptions::default(),
    );
    well_formed(&text).expect("well formed");
    assert!(text.contains("id=\"state-a\""));
    let text = svg(
        &parse("id: w\ntitle: t\ninitial: a\nstates: {}\n"),
        &SvgOptions::default(),
    );
    well_formed(&text).expect("well formed");
}

#[test]
fn many_long_edges_stay_within_budget() {
    // Every state can be cancelled into one final state: quadratically many dummies
    // without the budget.
    let mut yaml = String::from("id: big\ntitle: 大\ninitial: s0\nstates:\n");
    let n: usize = 400;
    for i in 0..n {
        let next = if i + 1 == n {
            "done".to_string()
        } else {
            format!("s{}", i + 1)
        };
        let _ = write!(
            yaml,
            "  s{i}:\n    title: 第{i}步\n    on:\n      next: {{to: {next}}}\n      back: {{to: s{}}}\n      cancel: {{to: cancelled}}\n",
            i.saturating_sub(1)
        );
    }
    yaml.push_str("  done: {final: true}\n  cancelled: {final: true}\n");
    let workflow = parse(&yaml);
    let edges = edges(&workflow);
    let layout = Layout::new(&workflow, &edges, false);
    assert!(layout.nodes.len() < n * 8, "{} nodes", layout.nodes.len());
    well_formed(&svg(&workflow, &SvgOptions::default())).expect("well formed");
}

#[test]
fn text_wraps_at_characters_and_words() {
    let lines = wrap(
        "复印两份签发(申请单位、秩序维护部),原件存档",
        11.0,
        110.0,
        5,
    );
    assert!(lines.len() > 1, "{lines:?}");
    for line in &lines {
        assert!(text_width(line, 11.0) <= 110.0 + 11.0, "{line}");
        assert!(!line.starts_with(is_closing), "{line}");
        assert!(!line.ends_with(is_opening), "{line}");
    }
    assert_eq!(
        lines.concat(),
        "复印两份签发(申请单位、秩序维护部),原件存档"
    );
    let lines = wrap("hold_joint_review and more words", 11.0, 70.0, 2);
    assert_eq!(lines.len(), 2);
    assert!(lines[0].starts_with("hold_"), "{lines:?}");
    assert!(lines[1].ends_with('…'), "{lines:?}");
    // CJK counts about twice a Latin letter.
    assert!(text_width("审核", 10.0) >= 1.7 * text_width("ab", 10.0));
}

#[test]
fn layer_fit_keeps_order_and_gaps_and_lines_up() {
    let x = fit_ordered(
        &[vec![(10.0, 1.0)], vec![(0.0, 1.0)], vec![(5.0, 1.0)]],
        &[0.0, 0.0, 0.0],
        &[4.0, 4.0],
    );
    assert!(
        x[1] - x[0] >= 4.0 - 1e-9 && x[2] - x[1] >= 4.0 - 1e-9,
        "{x:?}"
    );
    let x = fit_ordered(
        &[vec![(0.0, 1.0)], vec![(100.0, 1.0)]],
        &[5.0, 6.0],
        &[10.0],
    );
    assert_eq!(x, vec![0.0, 100.0]);
    // Lines up with the heavier pull, not halfway.
    let x = fit_ordered(&[vec![(0.0, 4.0), (10.0, 1.0), (20.0, 1.0)]], &[7.0], &[]);
    assert_eq!(x, vec![0.0]);
    // Between two equal pulls, stays put.
    let x = fit_ordered(&[vec![(0.0, 1.0), (10.0, 1.0)]], &[7.0], &[]);
    assert_eq!(x, vec![7.0]);
    // Without pulls, stays put.
    let x = fit_ordered(&[vec![]], &[3.0], &[]);
    assert_eq!(x, vec![3.0]);
}

/// `cargo test --lib write_samples -- --ignored` draws every shipped workflow into
/// `$TMPDIR/sopflow-svg/`, to look at.
#[test]
#[ignore = "writes files to look at"]
fn write_samples() {
    let dir = std::env::temp_dir().join("sopflow-svg");
    std::fs::create_dir_all(&dir).expect("folder");
    let visited = vec!["drafted".to_string(), "briefed".to_string()];
    for (path, workflow) in shipped() {
        let options = SvgOptions {
            current: workflow.states.keys().nth(1),
            visited: &visited,
            link: None,
            titles_only: false,
            child_title: None,
        };
        let name = Path::new(&path).with_extension("svg");
        let name = name.file_name().expect("file name");
        std::fs::write(dir.join(name), svg(&workflow, &options)).expect("writes");
    }
}

#[test]
fn readers_see_the_children_a_step_starts_by_their_titles() {
    let renovation = shipped_one("renovation_approval");
    let child_title = |id: &str| (id == "construction_pass").then(|| "施工人员出入证".to_string());
    let for_readers = svg(
        &renovation,
        &SvgOptions {
            titles_only: true,
            child_title: Some(&child_title),
            ..SvgOptions::default()
        },
    );
    well_formed(&for_readers).expect("well formed");
    assert!(
        for_readers.contains("⇒ 施工人员出入证 × 办证施工人"),
        "{for_readers}"
    );
    assert!(!for_readers.contains("construction_pass ×"));
    // Engineers keep the ids.
    let for_engineers = svg(&renovation, &SvgOptions::default());
    assert!(for_engineers.contains("⇒ construction_pass × workers"));
}
