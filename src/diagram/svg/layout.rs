//! The layout: where each state's box, each edge's label and each edge go, and the routes of
//! the edges between them.
//!
//! The layout is a small Sugiyama pipeline, chosen over a general-purpose crate because its
//! output is predictable and easy to tune for our shapes (long Chinese titles, few states, many
//! parallel and self transitions):
//!
//! 1. Ranks: a DFS from the initial state marks back edges; every other edge points down, and
//!    a state's rank is its longest path from the top. Edges into the initial state are back
//!    edges too, so the start marker always has the top of the drawing to itself.
//! 2. Layers: ranks are doubled. Every edge gets a dummy node in each layer it crosses, and its
//!    label is one of those dummies (just below its real source), so labels take part in the
//!    layout like boxes and never overlap a box, another label or an edge.
//! 3. Order: a few barycenter sweeps with adjacent swaps, keeping the order with the fewest
//!    crossings.
//! 4. Coordinates: each layer in turn is placed where its neighbours pull it: the weighted
//!    median (L1) fit under the minimum separations, solved exactly by pool-adjacent-violators.
//!    The inner stretches of long edges pull hardest and pulls from above a little more than
//!    from below, so long edges and the main path run straight down and bend in few places.
//! 5. Edges run straight down through each layer and bend only in the gaps between layers, so
//!    they cannot cross a box; gaps grow with how far their edges bend.
//!
//! Self-loops are not part of the layered graph: a state's labels for them are stacked to its
//! right (its node is widened to hold them), and one loop (one more, dashed, for timers) runs
//! from the box along their left edge and back.

use super::text::{Line, label_lines, line_width, text_width, wrap_balanced};
use super::{BOX_PAD_Y, LABEL_PAD, LINE, LOOP_GAP, SMALL_SIZE, START_SPACE, TITLE_SIZE};
use crate::definition::Workflow;
use crate::diagram::Edge;
use std::collections::BTreeMap;

const BOX_TEXT_MAX: f64 = 196.0;
const BOX_PAD_X: f64 = 12.0;
const BOX_MIN_WIDTH: f64 = 96.0;
const TITLE_LINES: usize = 3;
/// Between an edge and its label, which sits to the edge's right.
const LABEL_OFFSET: f64 = 4.0;
/// How far a self-loop reaches out of its box.
const LOOP_WIDTH: f64 = 28.0;
const DUMMY_HALF: f64 = 4.0;
const NODE_GAP: f64 = 20.0;
const MIN_LAYER_GAP: f64 = 18.0;
const MAX_LAYER_GAP: f64 = 64.0;
const MARGIN: f64 = 16.0;
const PORT_SPACING: f64 = 12.0;
/// Dummy nodes the layout may create for long edges (see `Layout::new`).
const MAX_DUMMIES: usize = 20_000;

/// A label's text and outer size (padding included).
pub(super) struct Label {
    pub(super) lines: Vec<Line>,
    pub(super) width: f64,
    pub(super) height: f64,
}

impl Label {
    fn new(lines: Vec<Line>) -> Label {
        let text = lines
            .iter()
            .map(|l| line_width(l, SMALL_SIZE))
            .fold(0.0, f64::max);
        Label {
            width: text.ceil() + 2.0 * LABEL_PAD,
            height: lines.len() as f64 * SMALL_SIZE * LINE + 2.0 * LABEL_PAD,
            lines,
        }
    }
}

/// A state's box.
pub(super) struct StateBox<'w> {
    pub(super) id: &'w str,
    /// The title as written, for the hover text.
    pub(super) full_title: Option<&'w str>,
    /// The title, wrapped; empty when the state has none (the id is then the only line).
    pub(super) title: Vec<String>,
    width: f64,
    height: f64,
    pub(super) is_final: bool,
    /// Self-loops, as indexes into the edges.
    pub(super) loops: Vec<usize>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Kind {
    State(usize),
    Dummy,
    /// The label of the edge with this index.
    Label(usize),
}

/// A node of the layered graph. `x` is its anchor: a box's centre, the line of a dummy, the
/// edge beside a label. It reaches `left` and `right` from there.
pub(super) struct Node {
    pub(super) kind: Kind,
    pub(super) layer: usize,
    left: f64,
    right: f64,
    height: f64,
    pub(super) x: f64,
}

/// An edge through the layers: from a state down to a state, through dummies.
pub(super) struct Chain {
    pub(super) edge: usize,
    pub(super) nodes: Vec<usize>,
    /// Drawn against the layout's direction (a back edge): the arrow points up.
    pub(super) reversed: bool,
}

pub(super) struct Layout<'w> {
    pub(super) boxes: Vec<StateBox<'w>>,
    pub(super) labels: Vec<Label>,
    pub(super) nodes: Vec<Node>,
    pub(super) chains: Vec<Chain>,
    pub(super) layer_top: Vec<f64>,
    pub(super) layer_height: Vec<f64>,
    pub(super) initial: Option<usize>,
    pub(super) width: f64,
    pub(super) height: f64,
}

impl<'w> Layout<'w> {
    pub(super) fn new(workflow: &'w Workflow, edges: &[Edge], titles_only: bool) -> Layout<'w> {
        let mut index: BTreeMap<&str, usize> = BTreeMap::new();
        let mut boxes: Vec<StateBox> = Vec::new();
        for (name, state) in workflow.states.iter() {
            if index.contains_key(name.as_str()) {
                continue;
            }
            index.insert(name.as_str(), boxes.len());
            boxes.push(state_box(
                name.as_str(),
                state.title.as_deref(),
                state.is_final,
            ));
        }
        let labels: Vec<Label> = edges
            .iter()
            .map(|e| Label::new(label_lines(e, titles_only)))
            .collect();
        // Edges between two known states; edges to undeclared states (only in workflows the
        // validator rejects) are left out rather than guessed at.
        let mut links: Vec<(usize, usize, usize)> = Vec::new();
        for (i, edge) in edges.iter().enumerate() {
            let (Some(&from), Some(&to)) =
                (index.get(edge.from.as_str()), index.get(edge.to.as_str()))
            else {
                continue;
            };
            if from == to {
                boxes[from].loops.push(i);
            } else {
                links.push((i, from, to));
            }
        }
        // Ordinary loops above timer loops: each kind gets one loop to its stack of labels.
        for b in &mut boxes {
            b.loops.sort_by_key(|&e| edges[e].timer);
        }
        let initial = index.get(workflow.initial.as_str()).copied();
        let pairs: Vec<(usize, usize)> = links.iter().map(|&(_, u, v)| (u, v)).collect();
        let (rank, reversed) = ranks(boxes.len(), initial, &pairs);

        // Nodes: states first, in declaration order, then each edge's dummies.
        let mut nodes: Vec<Node> = Vec::new();
        for (i, b) in boxes.iter().enumerate() {
            let (reach, block) = loop_extent(b, &labels);
            nodes.push(Node {
                kind: Kind::State(i),
                layer: 2 * rank[i],
                left: b.width / 2.0,
                right: b.width / 2.0 + reach,
                height: b.height.max(block),
                x: 0.0,
            });
        }
        // A long edge needs a dummy in every layer it crosses. A workflow where every state can
        // jump to one last state would need quadratically many; past a budget, long edges keep
        // only their label and are drawn as one curve (which may then cross boxes).
        let crossed: usize = links
            .iter()
            .map(|&(_, u, v)| 2 * rank[u].abs_diff(rank[v]))
            .sum();
        let compact = crossed > MAX_DUMMIES;
        let mut chains: Vec<Chain> = Vec::new();
        for (k, &(edge, u, v)) in links.iter().enumerate() {
            let (a, b) = if reversed[k] { (v, u) } else { (u, v) };
            let (top, bottom) = (2 * rank[a], 2 * rank[b]);
            if top >= bottom {
                continue; // cannot happen: ranks strictly increase along the layout's edges
            }
            // The label goes next to the edge's real source (below it, or above it for a back
            // edge), where a reader looks for what can be done in that state.
            let label_layer = if reversed[k] { bottom - 1 } else { top + 1 };
            let mut path = vec![a];
            for layer in top + 1..bottom {
                if compact && layer != label_layer {
                    continue;
                }
                let label = &labels[edge];
                let node = if layer == label_layer {
                    Node {
                        kind: Kind::Label(edge),
                        layer,
                        left: DUMMY_HALF,
                        right: LABEL_OFFSET + label.width,
                        height: label.height,
                        x: 0.0,
                    }
                } else {
                    Node {
                        kind: Kind::Dummy,
                        layer,
                        left: DUMMY_HALF,
                        right: DUMMY_HALF,
                        height: 0.0,
                        x: 0.0,
                    }
                };
                path.push(nodes.len());
                nodes.push(node);
            }
            path.push(b);
            chains.push(Chain {
                edge,
                nodes: path,
                reversed: reversed[k],
            });
        }

        let layer_count = nodes.iter().map(|n| n.layer + 1).max().unwrap_or(0);
        let mut layers: Vec<Vec<usize>> = vec![Vec::new(); layer_count];
        for (i, node) in nodes.iter().enumerate() {
            layers[node.layer].push(i);
        }
        // Neighbours in the layer above and below, weighted for the x placement: the inner
        // stretch of a long edge pulls hardest (so it runs straight); a box follows its
        // transitions to the next rank more than its long edges, and back edges least (so
        // that the main path runs straight down).
        let mut up: Vec<Vec<(usize, f64)>> = vec![Vec::new(); nodes.len()];
        let mut down: Vec<Vec<(usize, f64)>> = vec![Vec::new(); nodes.len()];
        for chain in &chains {
            let end_weight = if chain.reversed {
                0.5
            } else if chain.nodes.len() == 3 {
                4.0
            } else {
                1.0
            };
            for pair in chain.nodes.windows(2) {
                let (a, b) = (pair[0], pair[1]);
                let inner = [a, b]
                    .iter()
                    .all(|&n| !matches!(nodes[n].kind, Kind::State(_)));
                let weight = if inner { 32.0 } else { end_weight };
                down[a].push((b, weight));
                up[b].push((a, weight));
            }
        }
        order(&mut layers, &up, &down);
        place(&mut nodes, &layers, &up, &down);

        // Vertical: layers stacked; each gap as tall as its edges' bends need.
        let layer_height: Vec<f64> = layers
            .iter()
            .map(|l| l.iter().map(|&n| nodes[n].height).fold(0.0, f64::max))
            .collect();
        let mut layer_top = Vec::with_capacity(layer_count);
        let mut y = MARGIN + if initial.is_some() { START_SPACE } else { 0.0 };
        for (l, height) in layer_height.iter().enumerate() {
            layer_top.push(y);
            let bend = layers[l]
                .iter()
                .flat_map(|&a| down[a].iter().map(move |&(b, _)| (a, b)))
                .map(|(a, b)| (nodes[a].x - nodes[b].x).abs())
                .fold(0.0, f64::max);
            y += height + (bend * 0.22).clamp(MIN_LAYER_GAP, MAX_LAYER_GAP);
        }
        let bottom = layer_top
            .last()
            .zip(layer_height.last())
            .map_or(y, |(top, height)| top + height);
        let width = nodes.iter().map(|n| n.x + n.right).fold(0.0, f64::max) + MARGIN;
        Layout {
            boxes,
            labels,
            nodes,
            chains,
            layer_top,
            layer_height,
            initial,
            width: width.max(2.0 * MARGIN).ceil(),
            height: (bottom + MARGIN).ceil(),
        }
    }

    /// The centre of a node, vertically.
    fn y(&self, node: usize) -> f64 {
        let layer = self.nodes[node].layer;
        self.layer_top[layer] + self.layer_height[layer] / 2.0
    }

    /// A state's box: left, top, width, height.
    pub(super) fn box_rect(&self, state: usize) -> (f64, f64, f64, f64) {
        let b = &self.boxes[state];
        let x = self.nodes[state].x;
        let y = self.y(state);
        (x - b.width / 2.0, y - b.height / 2.0, b.width, b.height)
    }

    /// A label's rectangle on its edge: left, top, width, height.
    pub(super) fn label_rect(&self, node: usize) -> Option<(f64, f64, f64, f64)> {
        let Kind::Label(edge) = self.nodes[node].kind else {
            return None;
        };
        let label = &self.labels[edge];
        Some((
            self.nodes[node].x + LABEL_OFFSET,
            self.y(node) - label.height / 2.0,
            label.width,
            label.height,
        ))
    }

    /// Where a state's self-loop labels go: (edge, left, top) for each, stacked to the right of
    /// the box and centred on it.
    pub(super) fn loop_labels(&self, state: usize) -> Vec<(usize, f64, f64)> {
        let b = &self.boxes[state];
        let (_, block) = loop_extent(b, &self.labels);
        let left = self.nodes[state].x + b.width / 2.0 + LOOP_WIDTH + LOOP_GAP;
        let mut top = self.y(state) - block / 2.0;
        let mut out = Vec::new();
        for &edge in &b.loops {
            out.push((edge, left, top));
            top += self.labels[edge].height + LOOP_GAP;
        }
        out
    }
}

fn state_box<'w>(id: &'w str, title: Option<&'w str>, is_final: bool) -> StateBox<'w> {
    let full = title.map(str::trim).filter(|t| !t.is_empty());
    let title = match full {
        Some(title) => wrap_balanced(title, TITLE_SIZE * 1.06, BOX_TEXT_MAX, TITLE_LINES),
        None => Vec::new(),
    };
    let id_width = if title.is_empty() {
        text_width(id, TITLE_SIZE) * 1.06
    } else {
        text_width(id, SMALL_SIZE)
    };
    let text = title
        .iter()
        .map(|l| text_width(l, TITLE_SIZE) * 1.06)
        .fold(id_width, f64::max);
    let lines = title.len() as f64 * TITLE_SIZE * LINE
        + if title.is_empty() {
            TITLE_SIZE * LINE
        } else {
            SMALL_SIZE * LINE
        };
    let border = if is_final { 4.0 } else { 0.0 };
    StateBox {
        id,
        full_title: full,
        title,
        width: (text + 2.0 * (BOX_PAD_X + border))
            .max(BOX_MIN_WIDTH)
            .ceil(),
        height: (lines + 2.0 * (BOX_PAD_Y + border)).ceil(),
        is_final,
        loops: Vec::new(),
    }
}

/// How far a state's self-loops and their labels reach right of its box, and the height of
/// the stacked labels.
fn loop_extent(b: &StateBox, labels: &[Label]) -> (f64, f64) {
    if b.loops.is_empty() {
        return (0.0, 0.0);
    }
    let width = b.loops.iter().map(|&e| labels[e].width).fold(0.0, f64::max);
    let height = b.loops.iter().map(|&e| labels[e].height).sum::<f64>()
        + LOOP_GAP * (b.loops.len() - 1) as f64;
    (LOOP_WIDTH + LOOP_GAP + width, height)
}

/// Each state's rank, and which edges are drawn against the layout's direction.
///
/// A DFS from the initial state (then from the others, in declaration order) finds the back
/// edges; with those reversed the graph is acyclic and each state's rank is its longest path
/// from a source. A source other than the initial state is then pulled down next to its
/// first successor, so that a state nothing leads to does not sit alone at the top.
fn ranks(n: usize, initial: Option<usize>, edges: &[(usize, usize)]) -> (Vec<usize>, Vec<bool>) {
    let mut out: Vec<Vec<(usize, usize)>> = vec![Vec::new(); n];
    for (k, &(u, v)) in edges.iter().enumerate() {
        out[u].push((k, v));
    }
    let mut reversed = vec![false; edges.len()];
    // 0: not seen, 1: on the DFS stack, 2: done.
    let mut seen = vec![0u8; n];
    let roots = initial.into_iter().chain(0..n);
    for root in roots {
        if seen[root] != 0 {
            continue;
        }
        seen[root] = 1;
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        while let Some(top) = stack.last_mut() {
            let (u, next) = *top;
            if let Some(&(k, v)) = out[u].get(next) {
                top.1 += 1;
                match seen[v] {
                    0 => {
                        seen[v] = 1;
                        stack.push((v, 0));
                    }
                    1 => reversed[k] = true,
                    _ => {}
                }
            } else {
                seen[u] = 2;
                stack.pop();
            }
        }
    }
    if let Some(initial) = initial {
        for (k, &(_, v)) in edges.iter().enumerate() {
            if v == initial {
                reversed[k] = true;
            }
        }
    }
    let oriented: Vec<(usize, usize)> = edges
        .iter()
        .zip(&reversed)
        .map(|(&(u, v), &r)| if r { (v, u) } else { (u, v) })
        .collect();
    let mut successors: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut indegree = vec![0usize; n];
    for &(a, b) in &oriented {
        successors[a].push(b);
        indegree[b] += 1;
    }
    let sources: Vec<bool> = indegree.iter().map(|&d| d == 0).collect();
    // Kahn's algorithm, in declaration order.
    let mut rank = vec![0usize; n];
    let mut queue: std::collections::VecDeque<usize> = (0..n).filter(|&i| sources[i]).collect();
    let mut remaining = indegree;
    while let Some(a) = queue.pop_front() {
        for &b in &successors[a] {
            rank[b] = rank[b].max(rank[a] + 1);
            remaining[b] -= 1;
            if remaining[b] == 0 {
                queue.push_back(b);
            }
        }
    }
    for a in 0..n {
        if sources[a]
            && Some(a) != initial
            && let Some(first) = successors[a].iter().map(|&b| rank[b]).min()
        {
            rank[a] = first.saturating_sub(1);
        }
    }
    (rank, reversed)
}

/// Orders each layer to reduce crossings: barycenter sweeps down and up, each followed by
/// adjacent swaps, keeping the best order seen.
fn order(layers: &mut [Vec<usize>], up: &[Vec<(usize, f64)>], down: &[Vec<(usize, f64)>]) {
    let count = up.len();
    let mut pos = vec![0usize; count];
    let index = |layers: &[Vec<usize>], pos: &mut [usize]| {
        for layer in layers {
            for (i, &n) in layer.iter().enumerate() {
                pos[n] = i;
            }
        }
    };
    index(layers, &mut pos);
    let mut best = layers.to_vec();
    let mut best_crossings = crossings(layers, &pos, down);
    for round in 0..12 {
        let downward = round % 2 == 0;
        let sequence: Vec<usize> = if downward {
            (1..layers.len()).collect()
        } else {
            (0..layers.len().saturating_sub(1)).rev().collect()
        };
        let reference = if downward { up } else { down };
        for l in sequence {
            let mut keyed: Vec<(f64, usize)> = layers[l]
                .iter()
                .map(|&n| {
                    let near = &reference[n];
                    let key = if near.is_empty() {
                        pos[n] as f64
                    } else {
                        near.iter().map(|&(m, _)| pos[m] as f64).sum::<f64>() / near.len() as f64
                    };
                    (key, n)
                })
                .collect();
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
            layers[l] = keyed.into_iter().map(|(_, n)| n).collect();
            for (i, &n) in layers[l].iter().enumerate() {
                pos[n] = i;
            }
        }
        transpose(layers, &mut pos, up, down);
        let now = crossings(layers, &pos, down);
        if now < best_crossings {
            best_crossings = now;
            best = layers.to_vec();
        }
    }
    layers.clone_from_slice(&best);
}

/// Swaps neighbours in a layer while that removes crossings.
fn transpose(
    layers: &mut [Vec<usize>],
    pos: &mut [usize],
    up: &[Vec<(usize, f64)>],
    down: &[Vec<(usize, f64)>],
) {
    // Crossings between the edges of `u` and `v` (one side) when `u` is left of `v`.
    let pair = |near: &[Vec<(usize, f64)>], pos: &[usize], u: usize, v: usize| -> usize {
        let mut c = 0;
        for &(a, _) in &near[u] {
            for &(b, _) in &near[v] {
                if pos[a] > pos[b] {
                    c += 1;
                }
            }
        }
        c
    };
    for _ in 0..4 {
        let mut improved = false;
        for layer in layers.iter_mut() {
            for i in 0..layer.len().saturating_sub(1) {
                let (u, v) = (layer[i], layer[i + 1]);
                let keep = pair(up, pos, u, v) + pair(down, pos, u, v);
                let swap = pair(up, pos, v, u) + pair(down, pos, v, u);
                if swap < keep {
                    layer.swap(i, i + 1);
                    pos[u] = i + 1;
                    pos[v] = i;
                    improved = true;
                }
            }
        }
        if !improved {
            break;
        }
    }
}

/// Edge crossings between all pairs of neighbouring layers (inversions, counted with a
/// Fenwick tree).
fn crossings(layers: &[Vec<usize>], pos: &[usize], down: &[Vec<(usize, f64)>]) -> usize {
    let mut total = 0;
    for layer in layers {
        let mut segments: Vec<(usize, usize)> = layer
            .iter()
            .flat_map(|&a| down[a].iter().map(move |&(b, _)| (pos[a], pos[b])))
            .collect();
        segments.sort_unstable();
        let size = segments.iter().map(|s| s.1 + 1).max().unwrap_or(0);
        let mut tree = vec![0usize; size + 1];
        for (seen, &(_, b)) in segments.iter().enumerate() {
            // How many earlier segments end at or left of `b`.
            let mut at_most = 0;
            let mut i = b + 1;
            while i > 0 {
                at_most += tree[i];
                i -= i & i.wrapping_neg();
            }
            total += seen - at_most;
            let mut i = b + 1;
            while i <= size {
                tree[i] += 1;
                i += i & i.wrapping_neg();
            }
        }
    }
    total
}

/// Horizontal anchors. Each layer in turn moves to where its neighbours (above, below, or
/// both, alternately) pull it, as far as the separations allow.
///
/// "Where they pull it" minimises the weighted sum of horizontal distances to the neighbours
/// (L1, not least squares): an L1 optimum puts a node exactly above or below one of its
/// neighbours, so edges run straight down and bend in few places, instead of sloping a little
/// in every gap. Among equally good positions a node keeps the one it has.
fn place(
    nodes: &mut [Node],
    layers: &[Vec<usize>],
    up: &[Vec<(usize, f64)>],
    down: &[Vec<(usize, f64)>],
) {
    for layer in layers {
        let mut x = 0.0;
        for (i, &n) in layer.iter().enumerate() {
            if i > 0 {
                x += nodes[layer[i - 1]].right + NODE_GAP + nodes[n].left;
            }
            nodes[n].x = x;
        }
    }
    // Alternating sweeps carry alignments down and up the layers; they can cycle, so the last
    // rounds pull on both sides only (one convex objective), which settles.
    for round in 0..48 {
        let phase = if round < 24 { round % 3 } else { 2 };
        let sequence: Vec<usize> = if phase == 1 {
            (0..layers.len()).rev().collect()
        } else {
            (0..layers.len()).collect()
        };
        for l in sequence {
            let layer = &layers[l];
            let points: Vec<Vec<(f64, f64)>> = layer
                .iter()
                .map(|&n| {
                    // Pulls from above weigh a little more, so that a node between equal pulls
                    // lines up with where it comes from: the diagram reads top-down.
                    let above = up[n]
                        .iter()
                        .filter(|_| phase != 1)
                        .map(|&(m, w)| (m, w * 1.1));
                    let below = down[n].iter().filter(|_| phase != 0).copied();
                    above.chain(below).map(|(m, w)| (nodes[m].x, w)).collect()
                })
                .collect();
            let current: Vec<f64> = layer.iter().map(|&n| nodes[n].x).collect();
            let gaps: Vec<f64> = layer
                .windows(2)
                .map(|w| nodes[w[0]].right + NODE_GAP + nodes[w[1]].left)
                .collect();
            for (&n, x) in layer.iter().zip(fit_ordered(&points, &current, &gaps)) {
                nodes[n].x = x;
            }
        }
    }
    let left = nodes
        .iter()
        .map(|n| n.x - n.left)
        .fold(f64::INFINITY, f64::min);
    if left.is_finite() {
        for node in nodes.iter_mut() {
            // Rounded, so that the output does not depend on the last bits of the sums.
            node.x = ((node.x - left + MARGIN) * 10.0).round() / 10.0;
        }
    }
}

/// The weighted medians of `(value, weight)` pairs: every value in the returned interval
/// minimises the weighted sum of distances to them.
fn median_interval(points: &mut [(f64, f64)]) -> (f64, f64) {
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    let half = points.iter().map(|p| p.1).sum::<f64>() / 2.0 - 1e-9;
    let mut sum = 0.0;
    let mut low = points.first().map_or(0.0, |p| p.0);
    for &(x, w) in points.iter() {
        sum += w;
        if sum >= half {
            low = x;
            break;
        }
    }
    sum = 0.0;
    let mut high = low;
    for &(x, w) in points.iter().rev() {
        sum += w;
        if sum >= half {
            high = x;
            break;
        }
    }
    (low, high.max(low))
}

/// Positions for one layer, left to right: `points[i]` are the `(position, weight)` pulls on
/// node `i`, `current[i]` where it is now, and node `i + 1` must be at least `gaps[i]` right
/// of node `i`. Minimises the weighted distances to the pulls (weighted-median isotonic
/// regression on `position - offset`, by pool-adjacent-violators); a node without pulls stays
/// where it is if it can.
pub(super) fn fit_ordered(points: &[Vec<(f64, f64)>], current: &[f64], gaps: &[f64]) -> Vec<f64> {
    let mut offsets = Vec::with_capacity(current.len());
    let mut offset = 0.0;
    for i in 0..current.len() {
        if i > 0 {
            offset += gaps.get(i - 1).copied().unwrap_or(0.0);
        }
        offsets.push(offset);
    }
    /// Nodes pooled at one (offset) position.
    struct Block {
        points: Vec<(f64, f64)>,
        preferred: f64,
        count: usize,
        value: f64,
    }
    impl Block {
        fn settle(&mut self) {
            let (low, high) = median_interval(&mut self.points);
            self.value = (self.preferred / self.count as f64).clamp(low, high);
        }
    }
    let mut blocks: Vec<Block> = Vec::new();
    for (i, (&now, &o)) in current.iter().zip(&offsets).enumerate() {
        let pulls = points.get(i).map_or(&[][..], |p| &p[..]);
        let mut block = Block {
            points: if pulls.is_empty() {
                vec![(now - o, 1e-3)]
            } else {
                pulls.iter().map(|&(x, w)| (x - o, w)).collect()
            },
            preferred: now - o,
            count: 1,
            value: 0.0,
        };
        block.settle();
        blocks.push(block);
        while blocks.len() > 1 && blocks[blocks.len() - 2].value > blocks[blocks.len() - 1].value {
            let last = blocks.pop();
            if let (Some(last), Some(before)) = (last, blocks.last_mut()) {
                before.points.extend(last.points);
                before.preferred += last.preferred;
                before.count += last.count;
                before.settle();
            }
        }
    }
    let mut out = Vec::with_capacity(current.len());
    for block in blocks {
        for _ in 0..block.count {
            out.push(block.value + offsets[out.len()]);
        }
    }
    out
}

/// Where each chain leaves its first box and enters its last: straight above or below where
/// the edge goes next when that is within the box, else as near as the box allows; in the
/// order of where the edges go, so that they do not cross at the box, and at least
/// [`PORT_SPACING`] apart (spread evenly when the box is too narrow for that).
pub(super) fn ports(layout: &Layout) -> Vec<(f64, f64)> {
    let mut ports = vec![(0.0, 0.0); layout.chains.len()];
    // Per state: the chains leaving its bottom and entering its top, with where they go next.
    let mut bottom: Vec<Vec<(f64, usize)>> = vec![Vec::new(); layout.boxes.len()];
    let mut top: Vec<Vec<(f64, usize)>> = vec![Vec::new(); layout.boxes.len()];
    for (c, chain) in layout.chains.iter().enumerate() {
        let x = |i: usize| chain.nodes.get(i).map_or(0.0, |&n| layout.nodes[n].x);
        let (first, last) = (chain.nodes[0], chain.nodes[chain.nodes.len() - 1]);
        if let Kind::State(s) = layout.nodes[first].kind {
            bottom[s].push((x(1), c));
        }
        if let Kind::State(s) = layout.nodes[last].kind {
            top[s].push((x(chain.nodes.len() - 2), c));
        }
    }
    for (s, sides) in bottom.iter_mut().zip(top.iter_mut()).enumerate() {
        let centre = layout.nodes[s].x;
        let half = (layout.boxes[s].width / 2.0 - 12.0).max(0.0);
        let (low, high) = (centre - half, centre + half);
        for (at, is_bottom) in [(sides.0, true), (sides.1, false)] {
            at.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let k = at.len();
            let mut xs: Vec<f64> = at.iter().map(|&(x, _)| x.clamp(low, high)).collect();
            if (k as f64 - 1.0) * PORT_SPACING <= high - low {
                for i in 1..k {
                    xs[i] = xs[i].max(xs[i - 1] + PORT_SPACING);
                }
                if let Some(last) = xs.last_mut() {
                    *last = last.min(high);
                }
                for i in (0..k.saturating_sub(1)).rev() {
                    xs[i] = xs[i].min(xs[i + 1] - PORT_SPACING);
                }
            } else {
                let spacing = (high - low) / (k as f64 - 1.0);
                for (i, x) in xs.iter_mut().enumerate() {
                    *x = low + i as f64 * spacing;
                }
            }
            for (&(_, c), x) in at.iter().zip(xs) {
                if is_bottom {
                    ports[c].0 = x;
                } else {
                    ports[c].1 = x;
                }
            }
        }
    }
    ports
}
