//! The state graph: which states can be reached, which can finish, which events are
//! ambiguous, and what every path must pass through.
//!
//! Nodes are states in file order; an edge is any way of moving from one state to another (a
//! transition branch, an approval's completion or rejection). Every check here is linear in
//! the size of the graph; each `must_pass` check is one more breadth-first search.

use super::{Checker, StateIndex};
use crate::definition::located::Located;
use crate::diagnostic::Code;
use crate::i18n::{Arg, text};
use petgraph::Direction;
use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::{Bfs, EdgeFiltered, EdgeRef, Reversed};
use std::collections::{HashMap, VecDeque};

/// A workflow's states as a petgraph graph; node `i` is the `i`-th state declared.
struct StateGraph<'a, 'i> {
    graph: DiGraph<&'a str, ()>,
    index: &'i StateIndex<'a>,
}

impl<'a, 'i> StateGraph<'a, 'i> {
    /// Builds the graph; edges to unknown states are left out (they are reported elsewhere).
    fn new(workflow: &'a crate::definition::Workflow, index: &'i StateIndex<'a>) -> Self {
        let mut graph = DiGraph::with_capacity(workflow.states.len(), workflow.states.len() * 2);
        for name in workflow.states.keys() {
            graph.add_node(name);
        }
        for (i, (_, state)) in workflow.states.iter().enumerate() {
            let from = NodeIndex::new(i);
            let mut targets: Vec<&str> = Vec::new();
            for (_, branches) in state.on.iter() {
                targets.extend(branches.0.iter().map(|b| b.to.as_str()));
            }
            if let Some(approval) = &state.approval {
                targets.push(approval.to.as_str());
                targets.extend(approval.on_reject.iter().map(|r| r.to.as_str()));
            }
            for target in targets {
                if let Some(&to) = index.get(target) {
                    graph.update_edge(from, NodeIndex::new(to), ());
                }
            }
        }
        StateGraph { graph, index }
    }
}

impl StateGraph<'_, '_> {
    fn node(&self, name: &str) -> Option<NodeIndex> {
        self.index.get(name).map(|&i| NodeIndex::new(i))
    }
}

impl Checker<'_> {
    pub(super) fn check_graph(&mut self) {
        self.check_state_shapes();
        // The graph borrows the index while findings are added to `self`: take it out meanwhile.
        let index = std::mem::take(&mut self.states);
        self.check_reachability(&index);
        self.states = index;
    }

    fn check_reachability(&mut self, index: &StateIndex<'_>) {
        let workflow = self.workflow;
        let graph = StateGraph::new(workflow, index);
        let Some(initial) = graph.node(workflow.initial.as_str()) else {
            return; // an unknown initial state is already reported
        };
        if self
            .out
            .diagnostics
            .iter()
            .any(|d| d.code == Code::UnknownState)
        {
            // With a misspelt target the graph is incomplete: reachability findings would
            // only repeat that one mistake. They are checked once every target resolves.
            return;
        }
        let finals: Vec<NodeIndex> = workflow
            .states
            .iter()
            .filter(|(_, s)| s.is_final)
            .filter_map(|(name, _)| graph.node(name.as_str()))
            .collect();
        if finals.is_empty() {
            self.report(
                Code::NoFinalState,
                workflow.id.span,
                text!("diag-no-final-state", workflow = workflow.id.as_str()),
                text!("hint-no-final-state"),
            );
        }

        let mut reachable = vec![false; graph.graph.node_count()];
        let mut bfs = Bfs::new(&graph.graph, initial);
        while let Some(node) = bfs.next(&graph.graph) {
            reachable[node.index()] = true;
        }
        let mut can_finish = vec![false; graph.graph.node_count()];
        let reversed = Reversed(&graph.graph);
        for &end in &finals {
            let mut bfs = Bfs::new(reversed, end);
            while let Some(node) = bfs.next(reversed) {
                can_finish[node.index()] = true;
            }
        }

        let components = tarjan_scc(&graph.graph);
        let mut component_of = vec![0; graph.graph.node_count()];
        for (i, component) in components.iter().enumerate() {
            for node in component {
                component_of[node.index()] = i;
            }
        }
        for (i, (name, _)) in workflow.states.iter().enumerate() {
            let node = NodeIndex::new(i);
            if !reachable[i] {
                self.report(
                    Code::UnreachableState,
                    name.span,
                    text!(
                        "diag-unreachable-state",
                        state = name.as_str(),
                        initial = workflow.initial.as_str()
                    ),
                    text!("hint-unreachable-state"),
                );
            } else if !can_finish[i] && !finals.is_empty() {
                let component = &components[component_of[i]];
                let stuck_here = graph
                    .graph
                    .neighbors_directed(node, Direction::Outgoing)
                    .next()
                    .is_none();
                let (message, hint) = if stuck_here {
                    (
                        text!("diag-dead-end", state = name.as_str()),
                        text!("hint-dead-end"),
                    )
                } else if component.len() > 1 {
                    let mut members: Vec<&str> =
                        component.iter().map(|n| graph.graph[*n]).collect();
                    members.sort_unstable();
                    (
                        text!(
                            "diag-closed-cycle",
                            state = name.as_str(),
                            states = Arg::list(members)
                        ),
                        text!("hint-closed-cycle"),
                    )
                } else {
                    (
                        text!("diag-leads-to-dead-end", state = name.as_str()),
                        text!("hint-leads-to-dead-end"),
                    )
                };
                self.report(Code::NoWayToFinish, name.span, message, hint);
            }
        }

        for constraint in &workflow.constraints {
            if let Some(must) = &constraint.must_pass {
                self.check_must_pass(&graph, initial, &must.to, &must.via);
            }
        }
    }

    /// Final states without exits; events handled twice; timers firing unhandled events.
    fn check_state_shapes(&mut self) {
        let workflow = self.workflow;
        for (name, state) in workflow.states.iter() {
            if state.is_final {
                let exit = state
                    .on
                    .iter()
                    .map(|(event, _)| event.span)
                    .chain(state.approval.iter().map(|a| a.span))
                    .chain(state.timers.iter().map(|t| t.span))
                    .chain(state.await_children.iter().map(|a| a.span))
                    .next();
                if let Some(span) = exit {
                    self.report(
                        Code::FinalStateExits,
                        span,
                        text!("diag-final-state-exits", state = name.as_str()),
                        text!("hint-final-state-exits"),
                    );
                }
            }
            for (event, branches) in state.on.iter() {
                let system_fires = state
                    .timers
                    .iter()
                    .any(|t| t.fire.as_str() == event.as_str())
                    || state
                        .await_children
                        .as_ref()
                        .is_some_and(|a| a.fire.as_str() == event.as_str());
                if !system_fires && branches.0.iter().all(|b| b.roles.is_empty()) {
                    self.report(
                        Code::Unfireable,
                        event.span,
                        text!(
                            "diag-unfireable",
                            event = event.as_str(),
                            state = name.as_str()
                        ),
                        text!("hint-unfireable"),
                    );
                }
                let mut unguarded = false;
                for branch in &branches.0 {
                    if unguarded {
                        self.report(
                            Code::AmbiguousTransition,
                            branch.to.span,
                            text!(
                                "diag-hidden-branch",
                                event = event.as_str(),
                                state = name.as_str()
                            ),
                            text!("hint-hidden-branch"),
                        );
                    } else if branch.guard.is_none() {
                        unguarded = true;
                    }
                }
            }
            if let Some(approval) = &state.approval {
                let names = [
                    Some(approval.approve_event()),
                    approval.on_reject.as_ref().map(|r| r.reject_event()),
                ];
                for event in names.into_iter().flatten() {
                    if let Some((key, _)) = state.on.0.iter().find(|(k, _)| k.as_str() == event) {
                        self.report(
                            Code::AmbiguousTransition,
                            key.span,
                            text!(
                                "diag-approval-event-clash",
                                event = event,
                                state = name.as_str()
                            ),
                            text!("hint-approval-event-clash"),
                        );
                    }
                }
                if names[0].is_some() && names[0] == names[1] {
                    self.report(
                        Code::AmbiguousTransition,
                        approval.span,
                        text!("diag-approve-reject-one-event", state = name.as_str()),
                        text!("hint-approve-reject-one-event"),
                    );
                }
            }
            let fired = state
                .timers
                .iter()
                .map(|t| (&t.fire, "timer"))
                .chain(state.await_children.iter().map(|a| (&a.fire, "children")));
            for (event, what) in fired {
                if !state.handles(event.as_str()) {
                    let events: Vec<&str> = state.events().collect();
                    let hint = if events.is_empty() {
                        text!(
                            "hint-timer-event-add",
                            event = event.as_str(),
                            state = name.as_str()
                        )
                    } else {
                        text!(
                            "hint-timer-event-handle",
                            event = event.as_str(),
                            suggestion = crate::diagnostic::suggestion_text(
                                event.as_str(),
                                events.iter().copied()
                            )
                        )
                    };
                    self.report(
                        Code::TimerEventUnhandled,
                        event.span,
                        text!(
                            "diag-timer-event-unhandled",
                            what = what,
                            state = name.as_str(),
                            event = event.as_str()
                        ),
                        hint,
                    );
                }
            }
        }
    }

    /// `via` dominates `to` exactly when `to` cannot be reached once `via` is taken out of the
    /// graph. One breadth-first search answers that for one check in linear time, and its
    /// search tree gives the counterexample path. (petgraph's `simple_fast` dominators are
    /// quadratic on long chains with loops back, which review procedures are.)
    fn check_must_pass(
        &mut self,
        graph: &StateGraph<'_, '_>,
        initial: NodeIndex,
        to: &Located<String>,
        via: &Located<String>,
    ) {
        let (Some(target), Some(through)) = (graph.node(to.as_str()), graph.node(via.as_str()))
        else {
            return; // unknown states are already reported
        };
        if target == through || initial == through {
            return;
        }
        let Some(path) = path_avoiding(graph, initial, target, through) else {
            return;
        };
        self.report(
            Code::MustPassViolated,
            to.span,
            text!(
                "diag-must-pass",
                to = to.as_str(),
                via = via.as_str(),
                path = path.join(" → ")
            ),
            text!("hint-must-pass", to = to.as_str(), via = via.as_str()),
        );
    }
}

/// A shortest path from `from` to `to` that does not enter `avoid`, as state names, if any.
fn path_avoiding<'a>(
    graph: &StateGraph<'a, '_>,
    from: NodeIndex,
    to: NodeIndex,
    avoid: NodeIndex,
) -> Option<Vec<&'a str>> {
    let filtered =
        EdgeFiltered::from_fn(&graph.graph, |e| e.target() != avoid && e.source() != avoid);
    let mut previous: HashMap<NodeIndex, NodeIndex> = HashMap::new();
    let mut queue = VecDeque::from([from]);
    let mut seen = vec![false; graph.graph.node_count()];
    seen[from.index()] = true;
    while let Some(node) = queue.pop_front() {
        if node == to {
            break;
        }
        for edge in petgraph::visit::IntoEdges::edges(&filtered, node) {
            let next = edge.target();
            if !seen[next.index()] {
                seen[next.index()] = true;
                previous.insert(next, node);
                queue.push_back(next);
            }
        }
    }
    if !seen[to.index()] {
        return None;
    }
    let mut path = vec![graph.graph[to]];
    let mut node = to;
    while let Some(&before) = previous.get(&node) {
        path.push(graph.graph[before]);
        node = before;
    }
    path.reverse();
    Some(path)
}
