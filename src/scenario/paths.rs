//! Paths through a workflow, for writing scenarios: the shortest way to reach every state, and
//! a small set of paths that together take every transition (model-based testing, as XState
//! does it, for a durable engine). A process owner turns each path into a scenario
//! (`sopflow paths WORKFLOW --format scenario` writes the skeleton).

use crate::definition::Workflow;
use std::collections::{BTreeSet, HashMap, VecDeque};

/// One transition of the graph.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Edge {
    /// The state it leaves.
    pub from: String,
    /// The event fired to take it.
    pub event: String,
    /// The state it enters.
    pub to: String,
    /// Roles that may fire it (empty: the system, by a timer or child completion).
    pub roles: Vec<String>,
    /// The guard of this branch, if any: a scenario must make it hold.
    pub guard: Option<String>,
    /// Whether a timer of `from` fires it.
    pub timer: Option<String>,
}

/// A path from the initial state.
pub type Path = Vec<Edge>;

/// Every transition of `workflow`, in the order the file declares them.
pub fn edges(workflow: &Workflow) -> Vec<Edge> {
    let mut out = Vec::new();
    for (state, body) in workflow.states.iter() {
        let timer_of = |event: &str| {
            body.timers
                .iter()
                .find(|t| t.value.fire.as_str() == event)
                .map(|t| {
                    t.value
                        .after
                        .as_ref()
                        .map_or_else(|| "a computed deadline".to_string(), |a| a.value.clone())
                })
        };
        for (event, branches) in body.on.iter() {
            for branch in &branches.value.0 {
                out.push(Edge {
                    from: state.value.clone(),
                    event: event.value.clone(),
                    to: branch.to.value.clone(),
                    roles: branch.roles.iter().map(|r| r.value.clone()).collect(),
                    guard: branch.guard.as_ref().map(|g| g.value.clone()),
                    timer: timer_of(event.as_str()),
                });
            }
        }
        if let Some(approval) = &body.approval {
            let approval = &approval.value;
            let roles: Vec<String> = approval
                .signers
                .iter()
                .map(|s| s.value.role.value.clone())
                .collect();
            out.push(Edge {
                from: state.value.clone(),
                event: approval.approve_event().to_string(),
                to: approval.to.value.clone(),
                roles: roles.clone(),
                guard: None,
                timer: None,
            });
            if let Some(reject) = &approval.on_reject {
                out.push(Edge {
                    from: state.value.clone(),
                    event: reject.value.reject_event().to_string(),
                    to: reject.value.to.value.clone(),
                    roles,
                    guard: None,
                    timer: None,
                });
            }
        }
    }
    out
}

/// The shortest path from the initial state to every reachable state, by state.
pub fn shortest(workflow: &Workflow) -> Vec<(String, Path)> {
    let edges = edges(workflow);
    let initial = workflow.initial.value.clone();
    let mut best: HashMap<String, Path> = HashMap::new();
    best.insert(initial.clone(), Vec::new());
    let mut queue = VecDeque::from([initial]);
    while let Some(state) = queue.pop_front() {
        let here = best.get(&state).cloned().unwrap_or_default();
        for edge in edges.iter().filter(|e| e.from == state) {
            if !best.contains_key(&edge.to) {
                let mut path = here.clone();
                path.push(edge.clone());
                best.insert(edge.to.clone(), path);
                queue.push_back(edge.to.clone());
            }
        }
    }
    workflow
        .states
        .keys()
        .filter_map(|s| best.get(s).map(|p| (s.to_string(), p.clone())))
        .collect()
}

/// Paths that together take every reachable transition: each new path is the shortest way to
/// the first transition not yet taken, then on by untaken transitions while there are any.
pub fn covering(workflow: &Workflow) -> Vec<Path> {
    let edges = edges(workflow);
    let to_state: HashMap<String, Path> = shortest(workflow).into_iter().collect();
    let mut taken: BTreeSet<usize> = BTreeSet::new();
    let mut paths = Vec::new();
    for (i, edge) in edges.iter().enumerate() {
        if taken.contains(&i) {
            continue;
        }
        let Some(prefix) = to_state.get(&edge.from) else {
            continue; // unreachable: the validator reports it
        };
        let mut path = prefix.clone();
        path.push(edge.clone());
        // Walk on through transitions not yet taken, so paths are few and long.
        loop {
            let last = path.last().map(|e| e.to.clone()).unwrap_or_default();
            let next = edges.iter().enumerate().find(|(j, e)| {
                e.from == last && !taken.contains(j) && !path.iter().any(|p| p == *e)
            });
            match next {
                Some((_, e)) => path.push(e.clone()),
                None => break,
            }
        }
        for step in &path {
            if let Some(j) = edges.iter().position(|e| e == step) {
                taken.insert(j);
            }
        }
        paths.push(path);
    }
    paths
}
