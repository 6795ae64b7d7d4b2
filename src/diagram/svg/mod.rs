//! A workflow's state diagram as a self-contained SVG, for the web console and the HTTP API:
//! the public API, and the drawing of the laid-out boxes, edges and labels as SVG text.
//!
//! Mermaid needs a JavaScript runtime and DOT needs Graphviz; the server has neither, so this
//! module lays the graph out itself ([`layout`]: a small Sugiyama pipeline) and measures and
//! wraps its text itself ([`text`]). Everything is computed from the workflow alone, in
//! declaration order, so the same workflow always gives the same bytes.

mod layout;
#[cfg(test)]
mod tests;
mod text;

use super::{Edge, Spawn, edges};
use crate::definition::Workflow;
use layout::{Kind, Label, Layout, ports};
use std::fmt::Write;
use text::{Tone, escape, indent};

/// What to show besides the workflow itself: an instance's position and links to follow.
#[derive(Clone, Copy, Default)]
pub struct SvgOptions<'a> {
    /// The state the instance is in: drawn with a distinct fill and a bold border.
    pub current: Option<&'a str>,
    /// States the instance has passed through: tinted.
    pub visited: &'a [String],
    /// A link for a state's box (for example to the instances in that state); `None` from the
    /// function, or no function, leaves the box unlinked.
    pub link: Option<StateLink<'a>>,
    /// Edges labelled by their titles alone, for readers of the business words: an event
    /// without a title has no label of its own (it stays in `data-event`).
    pub titles_only: bool,
    /// The title of a child workflow a step starts, by workflow id, for `titles_only`
    /// diagrams (the id when `None` or when it gives none).
    pub child_title: Option<ChildTitle<'a>>,
}

/// Gives a workflow's title by id, or `None` when there is no such workflow.
pub type ChildTitle<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Gives the href for a state's box, by state id, or `None` for no link.
pub type StateLink<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The font stack: a CJK font first, so that Latin and Chinese share one metric.
pub const FONT_FAMILY: &str = "'Noto Sans CJK SC','Microsoft YaHei','PingFang SC',sans-serif";

// Sizes shared by the layout and the drawing.
const TITLE_SIZE: f64 = 13.0;
const SMALL_SIZE: f64 = 11.0;
/// Line height, in em.
const LINE: f64 = 1.35;
const BOX_PAD_Y: f64 = 7.0;
const LABEL_PAD: f64 = 3.0;
const LOOP_GAP: f64 = 4.0;
/// Room above the top layer for the initial state's dot and arrow.
const START_SPACE: f64 = 30.0;

/// The state diagram of `workflow` as an SVG document (no XML declaration, so it can also be
/// inlined in HTML).
///
/// Each state is a `<g id="state-<id>" class="state">` (plus `current` or `visited`) with a
/// `<title>` for hover; edges are `<path class="edge">` (plus `timer`, `back`, `loop`) with
/// `data-event`, and their labels `<g class="label">`. Attributes carry the styling, so a page's
/// CSS can override it.
pub fn svg(workflow: &Workflow, options: &SvgOptions) -> String {
    let mut edges = edges(workflow);
    if options.titles_only {
        for edge in &mut edges {
            edge.spawns = edge
                .spawns
                .iter()
                .map(|spawn| spawn.in_titles(workflow, options.child_title))
                .collect();
        }
    }
    let layout = Layout::new(workflow, &edges, options.titles_only);
    render(workflow, &edges, &layout, options)
}

const INK: &str = "#444";
const EDGE_INK: &str = "#666";
const TIMER_INK: &str = "#9a6700";

fn render(workflow: &Workflow, edges: &[Edge], layout: &Layout, options: &SvgOptions) -> String {
    let mut out = String::new();
    let (w, h) = (layout.width, layout.height);
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"sopflow-diagram\" width=\"{w}\" \
         height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"{}\" font-size=\"{SMALL_SIZE}\" \
         role=\"img\" aria-label=\"{}\">",
        escape(FONT_FAMILY),
        escape(&workflow.title)
    );
    let _ = writeln!(
        out,
        "<title>{} ({})</title>",
        escape(&workflow.title),
        escape(workflow.id.as_str())
    );
    out.push_str("<defs>\n");
    for (id, ink) in [
        ("sopflow-arrow", EDGE_INK),
        ("sopflow-arrow-timer", TIMER_INK),
    ] {
        let _ = writeln!(
            out,
            "<marker id=\"{id}\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"9\" \
             markerHeight=\"9\" markerUnits=\"userSpaceOnUse\" orient=\"auto\">\
             <path d=\"M0,1L10,5L0,9z\" fill=\"{ink}\"/></marker>"
        );
    }
    out.push_str("</defs>\n");

    // Edges under the boxes, labels over everything.
    out.push_str("<g class=\"edges\" fill=\"none\">\n");
    let ports = ports(layout);
    for (c, chain) in layout.chains.iter().enumerate() {
        let mut points: Vec<(f64, f64)> = Vec::new();
        let last = chain.nodes.len() - 1;
        for (i, &n) in chain.nodes.iter().enumerate() {
            let layer = layout.nodes[n].layer;
            let (top, bottom) = (
                layout.layer_top[layer],
                layout.layer_top[layer] + layout.layer_height[layer],
            );
            if i == 0 {
                let (_, box_top, _, box_h) = layout.box_rect(n);
                let x = ports[c].0;
                points.push((x, box_top + box_h));
                points.push((x, bottom));
            } else if i == last {
                let (_, box_top, _, _) = layout.box_rect(n);
                let x = ports[c].1;
                points.push((x, top));
                points.push((x, box_top));
            } else {
                let x = layout.nodes[n].x;
                points.push((x, top));
                points.push((x, bottom));
            }
        }
        if chain.reversed {
            points.reverse();
        }
        let edge = &edges[chain.edge];
        let mut class = String::from("edge");
        if edge.timer {
            class.push_str(" timer");
        }
        if chain.reversed {
            class.push_str(" back");
        }
        let tooltip = edge_tooltip(edge);
        path(
            &mut out,
            &class,
            edge.timer,
            &edge.event,
            &tooltip,
            &spline(&points),
        );
    }
    // A state's self-loops: one loop for its ordinary transitions and one (dashed) for its
    // timers, each ending at a bar beside its stack of labels. One loop per transition would
    // fan out into thin spikes once a state has more than two.
    for s in 0..layout.boxes.len() {
        let (x, y, bw, bh) = layout.box_rect(s);
        let right = x + bw;
        let placed = layout.loop_labels(s);
        for timer in [false, true] {
            let group: Vec<&(usize, f64, f64)> = placed
                .iter()
                .filter(|p| edges[p.0].timer == timer)
                .collect();
            let (Some(first), Some(last)) = (group.first(), group.last()) else {
                continue;
            };
            // The loop runs down the left edge of its labels, from the first to the last, like
            // a bracket: it leaves the box, follows the labels, and comes back.
            let middle = (first.2 + last.2 + layout.labels[last.0].height) / 2.0;
            let half = ((last.2 + layout.labels[last.0].height - first.2) / 2.0 - 3.0).max(6.0);
            let (top, bottom) = (middle - half, middle + half);
            let tip = first.1 - LOOP_GAP;
            // Leaves and re-enters the box's side level with the labels, as far as the box
            // reaches.
            let at = middle.clamp(y + 9.0, y + bh - 9.0);
            let d = format!(
                "M{},{}C{},{} {},{} {},{}Q{},{} {},{}V{}Q{},{} {},{}C{},{} {},{} {},{}",
                n(right),
                n(at - 5.0),
                n(right + 10.0),
                n(at - 5.0),
                n(tip - 12.0),
                n(top),
                n(tip - 5.0),
                n(top),
                n(tip),
                n(top),
                n(tip),
                n(top + 5.0),
                n(bottom - 5.0),
                n(tip),
                n(bottom),
                n(tip - 5.0),
                n(bottom),
                n(tip - 12.0),
                n(bottom),
                n(right + 10.0),
                n(at + 5.0),
                n(right + 2.0),
                n(at + 5.0)
            );
            let events: Vec<&str> = group.iter().map(|p| edges[p.0].event.as_str()).collect();
            let tooltip: Vec<String> = group.iter().map(|p| edge_tooltip(&edges[p.0])).collect();
            let class = if timer {
                "edge loop timer"
            } else {
                "edge loop"
            };
            path(
                &mut out,
                class,
                timer,
                &events.join(" "),
                &tooltip.join("\n\n"),
                &d,
            );
        }
    }
    if let Some(initial) = layout.initial {
        let (x, y, w, _) = layout.box_rect(initial);
        let cx = x + w / 2.0;
        let _ = writeln!(
            out,
            "<g class=\"start\"><circle cx=\"{}\" cy=\"{}\" r=\"5\" fill=\"{INK}\"/>\
             <path d=\"M{},{}V{}\" stroke=\"{EDGE_INK}\" stroke-width=\"1.3\" \
             marker-end=\"url(#sopflow-arrow)\"/></g>",
            n(cx),
            n(y - START_SPACE + 6.0),
            n(cx),
            n(y - START_SPACE + 11.0),
            n(y)
        );
    }
    out.push_str("</g>\n");

    out.push_str("<g class=\"states\">\n");
    for s in 0..layout.boxes.len() {
        state(&mut out, layout, s, options);
    }
    out.push_str("</g>\n");

    out.push_str("<g class=\"labels\">\n");
    for (i, node) in layout.nodes.iter().enumerate() {
        if let (Kind::Label(edge), Some(rect)) = (node.kind, layout.label_rect(i)) {
            label(&mut out, &edges[edge], &layout.labels[edge], rect);
        }
    }
    for s in 0..layout.boxes.len() {
        for (edge, left, top) in layout.loop_labels(s) {
            let l = &layout.labels[edge];
            label(&mut out, &edges[edge], l, (left, top, l.width, l.height));
        }
    }
    out.push_str("</g>\n</svg>\n");
    out
}

/// A path through `points` that is vertical at every point: straight where two points share
/// an x, an S-bend (cubic Bézier) where they do not.
fn spline(points: &[(f64, f64)]) -> String {
    let mut d = String::new();
    let mut previous: Option<(f64, f64)> = None;
    let vertical = |a: (f64, f64), b: (f64, f64)| (a.0 - b.0).abs() < 0.05;
    for (i, &(x, y)) in points.iter().enumerate() {
        // A point in the middle of a straight vertical run adds nothing.
        if let (Some(&before), Some(&after)) = (points.get(i.wrapping_sub(1)), points.get(i + 1))
            && vertical(before, (x, y))
            && vertical((x, y), after)
        {
            continue;
        }
        match previous {
            None => {
                let _ = write!(d, "M{},{}", n(x), n(y));
            }
            Some((px, py)) if vertical((px, py), (x, y)) => {
                if (py - y).abs() >= 0.05 {
                    let _ = write!(d, "V{}", n(y));
                }
            }
            Some((px, py)) => {
                let mid = (py + y) / 2.0;
                let _ = write!(
                    d,
                    "C{},{} {},{} {},{}",
                    n(px),
                    n(mid),
                    n(x),
                    n(mid),
                    n(x),
                    n(y)
                );
            }
        }
        previous = Some((x, y));
    }
    d
}

/// One edge's line (or a state's loop for several edges: `events` then lists them all).
fn path(out: &mut String, class: &str, timer: bool, events: &str, tooltip: &str, d: &str) {
    let (stroke, dash, marker) = if timer {
        (
            TIMER_INK,
            " stroke-dasharray=\"5 3\"",
            "sopflow-arrow-timer",
        )
    } else {
        (EDGE_INK, "", "sopflow-arrow")
    };
    let _ = writeln!(
        out,
        "<path class=\"{class}\" data-event=\"{}\" d=\"{d}\" stroke=\"{stroke}\" \
         stroke-width=\"1.3\"{dash} marker-end=\"url(#{marker})\"><title>{}</title></path>",
        escape(events),
        escape(tooltip)
    );
}

fn label(out: &mut String, edge: &Edge, label: &Label, (x, y, w, h): (f64, f64, f64, f64)) {
    let class = if edge.timer { "label timer" } else { "label" };
    let _ = write!(
        out,
        "<g class=\"{class}\" data-event=\"{}\"><title>{}</title>\
         <rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"3\" fill=\"#fff\" \
         fill-opacity=\"0.92\"/>",
        escape(&edge.event),
        escape(&edge_tooltip(edge)),
        n(x),
        n(y),
        n(w),
        n(h)
    );
    let mut clock = true;
    for (i, line) in label.lines.iter().enumerate() {
        let middle = y + LABEL_PAD + SMALL_SIZE * LINE * (i as f64 + 0.5);
        let indent = indent(line);
        if indent > 0.0 && clock {
            // A clock face before the first line of the captions.
            let (cx, cy) = (x + LABEL_PAD + 5.5, middle);
            let _ = write!(
                out,
                "<circle cx=\"{}\" cy=\"{}\" r=\"4.5\" fill=\"none\" stroke=\"{TIMER_INK}\" \
                 stroke-width=\"1.2\"/><path d=\"M{},{}V{}H{}\" fill=\"none\" \
                 stroke=\"{TIMER_INK}\" stroke-width=\"1.2\"/>",
                n(cx),
                n(cy),
                n(cx),
                n(cy - 3.0),
                n(cy),
                n(cx + 2.5)
            );
            clock = false;
        }
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{}\" fill=\"#222\">",
            n(x + LABEL_PAD + indent),
            n(middle + SMALL_SIZE * 0.36)
        );
        for (tone, text) in line {
            match tone {
                Tone::Plain => out.push_str(&escape(text)),
                Tone::Event => {
                    let _ = write!(
                        out,
                        "<tspan font-weight=\"bold\" fill=\"#1d3f66\">{}</tspan>",
                        escape(text)
                    );
                }
                Tone::Timer => {
                    let _ = write!(out, "<tspan fill=\"{TIMER_INK}\">{}</tspan>", escape(text));
                }
                Tone::Note => {
                    let _ = write!(out, "<tspan fill=\"#666\">{}</tspan>", escape(text));
                }
            }
        }
        out.push_str("</text>");
    }
    out.push_str("</g>\n");
}

fn state(out: &mut String, layout: &Layout, s: usize, options: &SvgOptions) {
    let b = &layout.boxes[s];
    let (x, y, w, h) = layout.box_rect(s);
    let current = options.current == Some(b.id);
    let visited = options.visited.iter().any(|v| v == b.id);
    let (class, fill, stroke, width) = if current {
        ("state current", "#ffe7a3", "#b45309", 3.0)
    } else if visited {
        ("state visited", "#e3eefb", "#4a78b0", 1.5)
    } else {
        ("state", "#fff", INK, 1.3)
    };
    let mut tooltip = b.id.to_string();
    if let Some(title) = b.full_title {
        let _ = write!(tooltip, ": {title}");
    }
    if b.is_final {
        tooltip.push_str(" (final)");
    }
    if current {
        tooltip.push_str(" (current)");
    }
    let _ = write!(
        out,
        "<g id=\"state-{}\" class=\"{class}\" data-state=\"{}\"><title>{}</title>",
        escape(b.id),
        escape(b.id),
        escape(&tooltip)
    );
    let href = options.link.and_then(|link| link(b.id));
    if let Some(href) = &href {
        let _ = write!(out, "<a href=\"{}\">", escape(href));
    }
    let _ = write!(
        out,
        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"6\" fill=\"{fill}\" \
         stroke=\"{stroke}\" stroke-width=\"{width}\"/>",
        n(x),
        n(y),
        n(w),
        n(h)
    );
    if b.is_final {
        let _ = write!(
            out,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"4\" fill=\"none\" \
             stroke=\"{stroke}\" stroke-width=\"1.3\"/>",
            n(x + 4.0),
            n(y + 4.0),
            n(w - 8.0),
            n(h - 8.0)
        );
    }
    let cx = x + w / 2.0;
    let border = if b.is_final { 4.0 } else { 0.0 };
    let mut line_top = y + BOX_PAD_Y + border;
    let text = |out: &mut String, top: f64, size: f64, attrs: &str, content: &str| {
        let baseline = top + size * LINE / 2.0 + size * 0.36;
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"{size}\"{attrs}>{}</text>",
            n(cx),
            n(baseline),
            escape(content)
        );
    };
    if b.title.is_empty() {
        text(
            out,
            line_top,
            TITLE_SIZE,
            " font-weight=\"bold\" fill=\"#222\"",
            b.id,
        );
    } else {
        for line in &b.title {
            text(
                out,
                line_top,
                TITLE_SIZE,
                " font-weight=\"bold\" fill=\"#222\"",
                line,
            );
            line_top += TITLE_SIZE * LINE;
        }
        text(out, line_top, SMALL_SIZE, " fill=\"#555\"", b.id);
    }
    if href.is_some() {
        out.push_str("</a>");
    }
    out.push_str("</g>\n");
}

/// A coordinate, to one decimal: short, and the same bytes on every platform.
fn n(value: f64) -> String {
    let rounded = (value * 10.0).round() / 10.0;
    if rounded == 0.0 {
        "0".to_string()
    } else if rounded.fract() == 0.0 {
        format!("{rounded:.0}")
    } else {
        format!("{rounded:.1}")
    }
}

/// The hover text of an edge: everything the Mermaid label says, and the children started.
fn edge_tooltip(edge: &Edge) -> String {
    let mut text = format!("{} → {}", edge.from, edge.to);
    for line in &edge.label {
        text.push('\n');
        text.push_str(line);
    }
    if !edge.spawns.is_empty() {
        let spawns: Vec<String> = edge.spawns.iter().map(Spawn::label).collect();
        let _ = write!(text, "\nstarts {}", spawns.join(", "));
    }
    text
}
