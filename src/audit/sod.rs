//! Separation of duties: one actor who did two steps of an instance that must be done by two
//! different people.
//!
//! The rules come from three places:
//!
//! - the `distinct_actors` constraints (`state.event` steps) of the definition version the
//!   instance ran under *and* of the current (newest loaded) version of its workflow, so that
//!   a step that slipped in before a constraint was added is found, and the finding says which
//!   definition the rule came from;
//! - approvals with `distinct_signers` (the default): two signatures by one person in one round
//!   of an approval (a round begins each time the instance enters the approval's state);
//! - rules given by the auditor, each a list of steps, `state.event` or just `event` (any
//!   state).
//!
//! Only people's steps count: the engine's own (`system`: timers, child completions) never do.
//! The store is read lazily, one history at a time.

use super::replay::StoredVersions;
use crate::definition::Definition;
use crate::definition::model::SYSTEM_ROLE;
use crate::engine::{Engine, EngineError};
use crate::machine::{Entry, EntryKind};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// What the check found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SodReport {
    /// Instances checked.
    pub instances: u64,
    /// Every actor who did two steps that need two people, per instance and rule.
    pub findings: Vec<SodFinding>,
    /// Things to know: a workflow that is no longer loaded (only its recorded rules apply), a
    /// version whose rules could not be read.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl SodReport {
    /// Whether no actor did two steps that need two people.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}

/// One actor who did steps of a rule that need different people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SodFinding {
    /// The instance the steps belong to.
    pub instance: String,
    /// The workflow's id.
    pub workflow: String,
    /// Who did the steps.
    pub actor: String,
    /// Every step of the rule the actor did, oldest first.
    pub steps: Vec<SodStep>,
    /// The rule the steps break.
    pub rule: SodRule,
}

/// A step the actor did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SodStep {
    /// `state.event`.
    pub step: String,
    /// The step's number in the instance's history.
    pub seq: u64,
    /// When the step was taken.
    pub at: DateTime<Utc>,
    /// The role the actor acted in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// A separation-of-duties rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SodRule {
    /// Whether the rule is a constraint, an approval's signers or the auditor's own.
    pub kind: RuleKind,
    /// The steps that need different people (`state.event`, or `event` for any state).
    pub steps: Vec<String>,
    /// The constraint's title, or the title of the approval's state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Where the rule comes from.
    pub sources: Vec<RuleSource>,
}

/// What kind of rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// A `distinct_actors` constraint.
    DistinctActors,
    /// An approval whose signatures must come from different people.
    DistinctSigners,
    /// A rule given on the command line (`--separate`).
    Separate,
}

/// Which definition a rule came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "definition", rename_all = "snake_case")]
pub enum RuleSource {
    /// The version the instance ran under.
    Recorded {
        /// The version's hash.
        version: String,
    },
    /// The newest loaded version of the workflow.
    Current {
        /// The version's hash.
        version: String,
    },
    /// The auditor's own rule.
    CommandLine,
}

impl std::fmt::Display for RuleSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RuleSource::Recorded { version } => {
                write!(f, "the recorded version {}", short(version))
            }
            RuleSource::Current { version } => write!(f, "the current version {}", short(version)),
            RuleSource::CommandLine => f.write_str("--separate"),
        }
    }
}

impl SodRule {
    /// The rule in words: `distinct_actors [a.x, b.y] (title) from the current version ...`.
    pub fn describe(&self) -> String {
        let kind = match self.kind {
            RuleKind::DistinctActors => "distinct_actors",
            RuleKind::DistinctSigners => "distinct_signers",
            RuleKind::Separate => "separate",
        };
        let mut out = format!("{kind} [{}]", self.steps.join(", "));
        if let Some(title) = &self.title {
            let _ = write!(out, " ({title})");
        }
        let sources: Vec<String> = self.sources.iter().map(ToString::to_string).collect();
        let _ = write!(out, " from {}", sources.join(" and "));
        out
    }

    /// Whether this rule exists only in the current version, not in the recorded one: the
    /// steps were taken before the rule was.
    pub fn only_current(&self) -> bool {
        self.sources
            .iter()
            .all(|s| matches!(s, RuleSource::Current { .. }))
    }
}

impl SodFinding {
    /// The steps as `state.event #seq at TIME`, joined.
    pub fn steps_text(&self) -> String {
        self.steps
            .iter()
            .map(|s| {
                format!(
                    "{} #{} at {}",
                    s.step,
                    s.seq,
                    s.at.to_rfc3339_opts(SecondsFormat::Secs, true)
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// The rules that apply to one instance.
struct Rules {
    list: Vec<SodRule>,
}

impl Rules {
    /// Adds a rule, or the source to an equal rule already there.
    fn add(&mut self, kind: RuleKind, steps: Vec<String>, title: Option<String>, from: RuleSource) {
        let same = |r: &SodRule| {
            r.kind == kind && {
                let mut a = r.steps.clone();
                let mut b = steps.clone();
                a.sort();
                b.sort();
                a == b
            }
        };
        if let Some(rule) = self.list.iter_mut().find(|r| same(r)) {
            if !rule.sources.contains(&from) {
                rule.sources.push(from);
            }
            if rule.title.is_none() {
                rule.title = title;
            }
            return;
        }
        self.list.push(SodRule {
            kind,
            steps,
            title,
            sources: vec![from],
        });
    }

    fn add_definition(&mut self, definition: &Definition, from: &RuleSource) {
        let workflow = &definition.workflow;
        for constraint in &workflow.constraints {
            if let Some(steps) = &constraint.value.distinct_actors {
                self.add(
                    RuleKind::DistinctActors,
                    steps.iter().map(|s| s.value.clone()).collect(),
                    constraint.value.title.clone(),
                    from.clone(),
                );
            }
        }
        for (state, body) in workflow.states.iter() {
            if let Some(approval) = &body.approval
                && approval.value.distinct_signers
            {
                self.add(
                    RuleKind::DistinctSigners,
                    vec![format!(
                        "{}.{}",
                        state.as_str(),
                        approval.value.approve_event()
                    )],
                    body.title.clone(),
                    from.clone(),
                );
            }
        }
    }
}

/// Whether an entry is a person's step (not the engine's own).
fn by_a_person(entry: &Entry) -> bool {
    entry.kind == EntryKind::Event
        && entry.from.is_some()
        && entry.role.as_deref() != Some(SYSTEM_ROLE)
        && entry.actor != SYSTEM_ROLE
}

fn step_of(entry: &Entry) -> String {
    format!("{}.{}", entry.from.as_deref().unwrap_or(""), entry.event)
}

fn act(entry: &Entry) -> SodStep {
    SodStep {
        step: step_of(entry),
        seq: entry.seq,
        at: entry.at,
        role: entry.role.as_deref().map(str::to_string),
    }
}

/// Whether a rule's step (`state.event`, or `event` alone) names an entry's step.
fn names(rule_step: &str, entry: &Entry) -> bool {
    match rule_step.split_once('.') {
        Some((state, event)) => entry.from.as_deref() == Some(state) && entry.event == event,
        None => entry.event == rule_step,
    }
}

/// The findings of one instance's history against `rules`.
fn check(history: &[Entry], rules: &[SodRule]) -> Vec<SodFinding> {
    let Some(first) = history.first() else {
        return Vec::new();
    };
    let mut findings = Vec::new();
    let mut found = |actor: &str, steps: Vec<SodStep>, rule: &SodRule| {
        findings.push(SodFinding {
            instance: first.instance.to_string(),
            workflow: first.workflow.to_string(),
            actor: actor.to_string(),
            steps,
            rule: rule.clone(),
        });
    };
    for rule in rules {
        match rule.kind {
            RuleKind::DistinctActors | RuleKind::Separate => {
                // For each actor: the (rule step, step done) pairs, and the entries.
                type Done<'h> = (BTreeSet<(usize, String)>, Vec<&'h Entry>);
                let mut by_actor: BTreeMap<&str, Done<'_>> = BTreeMap::new();
                for entry in history.iter().filter(|e| by_a_person(e)) {
                    let step = step_of(entry);
                    let matched: Vec<(usize, String)> = rule
                        .steps
                        .iter()
                        .enumerate()
                        .filter(|(_, s)| names(s, entry))
                        .map(|(i, _)| (i, step.clone()))
                        .collect();
                    if matched.is_empty() {
                        continue;
                    }
                    let (pairs, entries) = by_actor.entry(entry.actor.as_str()).or_default();
                    pairs.extend(matched);
                    entries.push(entry);
                }
                for (actor, (pairs, entries)) in by_actor {
                    // Two different steps done, naming two different steps of the rule (a
                    // step repeated, or named twice by the rule, is one step).
                    let two = pairs
                        .iter()
                        .any(|(i, s)| pairs.iter().any(|(j, t)| i != j && s != t));
                    if two {
                        found(actor, entries.into_iter().map(act).collect(), rule);
                    }
                }
            }
            RuleKind::DistinctSigners => {
                let Some((state, _)) = rule.steps.first().and_then(|s| s.split_once('.')) else {
                    continue;
                };
                // Signatures of each round of the approval, by actor.
                let mut round = 0usize;
                let mut signed: BTreeMap<(usize, &str), Vec<&Entry>> = BTreeMap::new();
                for entry in history {
                    if entry.from.as_deref() == Some(state)
                        && entry.signature.is_some()
                        && by_a_person(entry)
                    {
                        signed
                            .entry((round, entry.actor.as_str()))
                            .or_default()
                            .push(entry);
                    }
                    if entry.entered && entry.to == state {
                        round += 1;
                    }
                }
                for ((_, actor), entries) in signed {
                    if entries.len() >= 2 {
                        found(actor, entries.into_iter().map(act).collect(), rule);
                    }
                }
            }
        }
    }
    findings
}

impl Engine {
    /// Checks separation of duties in every instance (of `workflow`, if given): see the
    /// module's documentation. `extra` are the auditor's rules, each a list of steps
    /// (`state.event` or `event`); a rule of fewer than two steps finds nothing.
    pub async fn separation_of_duties(
        &self,
        workflow: Option<&str>,
        extra: &[Vec<String>],
    ) -> Result<SodReport, EngineError> {
        let (workflow, extra) = (workflow.map(str::to_string), extra.to_vec());
        // The log is scanned and versions read from the store: off the async threads.
        self.blocking(move |engine| {
            engine.separation_of_duties_blocking(workflow.as_deref(), &extra)
        })
        .await
    }

    fn separation_of_duties_blocking(
        &self,
        workflow: Option<&str>,
        extra: &[Vec<String>],
    ) -> Result<SodReport, EngineError> {
        let versions = StoredVersions::new(self);
        let mut report = SodReport::default();
        // Rules of each (workflow, version) pair, built once.
        let mut rules_of: BTreeMap<(String, String), Vec<SodRule>> = BTreeMap::new();
        let mut not_loaded: BTreeSet<String> = BTreeSet::new();
        let mut history: Vec<Entry> = Vec::new();
        let mut current: Option<String> = None;
        let mut finish = |history: &mut Vec<Entry>, report: &mut SodReport| {
            let Some(first) = history.first() else {
                return;
            };
            if workflow.is_some_and(|w| w != first.workflow) {
                history.clear();
                return;
            }
            report.instances += 1;
            let key = (first.workflow.to_string(), first.version.clone());
            let rules = rules_of.entry(key).or_insert_with(|| {
                let mut rules = Rules { list: Vec::new() };
                match versions.get(&first.version) {
                    Ok(definition) => rules.add_definition(
                        &definition,
                        &RuleSource::Recorded {
                            version: first.version.clone(),
                        },
                    ),
                    Err(why) => report.notes.push(format!(
                        "the rules of version {} of `{}` cannot be read ({why}): only its current version's rules were checked",
                        first.version, first.workflow
                    )),
                }
                match self.definition_of(&first.workflow) {
                    Some(definition) => rules.add_definition(
                        &definition,
                        &RuleSource::Current {
                            version: definition.hash.clone(),
                        },
                    ),
                    None => {
                        if not_loaded.insert(first.workflow.to_string()) {
                            report.notes.push(format!(
                                "workflow `{}` is not loaded: only the rules of its recorded versions were checked",
                                first.workflow
                            ));
                        }
                    }
                }
                for steps in extra.iter().filter(|s| s.len() >= 2) {
                    rules.add(
                        RuleKind::Separate,
                        steps.clone(),
                        None,
                        RuleSource::CommandLine,
                    );
                }
                rules.list
            });
            report.findings.extend(check(history, rules));
            history.clear();
        };
        for record in self.store().scan_log() {
            let record = record?;
            if current.as_deref() != Some(record.instance.as_str()) {
                finish(&mut history, &mut report);
                current = Some(record.instance.clone());
            }
            // An unreadable record is `audit verify`'s to report; the rest still counts.
            if let Ok(entry) = record.entry {
                history.push(entry);
            }
        }
        finish(&mut history, &mut report);
        report.notes.extend(versions.take_notes());
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::entry::Signature;

    fn entry(seq: u64, from: &str, event: &str, to: &str, actor: &str) -> Entry {
        Entry {
            instance: "w-1".into(),
            seq,
            workflow: "w".into(),
            version: "v".into(),
            from: Some(from.into()),
            to: to.into(),
            entered: from != to,
            actor: actor.into(),
            role: Some("clerk".into()),
            ..Entry::blank(EntryKind::Event, event, DateTime::<Utc>::UNIX_EPOCH)
        }
    }

    fn rule(kind: RuleKind, steps: &[&str]) -> SodRule {
        SodRule {
            kind,
            steps: steps.iter().map(|s| s.to_string()).collect(),
            title: None,
            sources: vec![RuleSource::CommandLine],
        }
    }

    #[test]
    fn two_steps_of_a_rule_by_one_person_are_found_and_a_repeat_is_not() {
        let history = vec![
            entry(1, "a", "submit", "b", "li"),
            entry(2, "b", "approve", "a", "li"),
            entry(3, "a", "submit", "b", "wang"),
            entry(4, "b", "approve", "c", "zhao"),
        ];
        let by_steps = check(
            &history,
            &[rule(RuleKind::Separate, &["a.submit", "b.approve"])],
        );
        assert_eq!(by_steps.len(), 1);
        assert_eq!(by_steps[0].actor, "li");
        assert_eq!(by_steps[0].steps.len(), 2);
        let by_events = check(
            &history,
            &[rule(RuleKind::Separate, &["submit", "approve"])],
        );
        assert_eq!(by_events.len(), 1);
        // One step repeated by one person is not two steps.
        let repeat = vec![
            entry(1, "a", "submit", "a", "li"),
            entry(2, "a", "submit", "a", "li"),
        ];
        assert!(
            check(
                &repeat,
                &[rule(RuleKind::Separate, &["a.submit", "submit"])]
            )
            .is_empty()
        );
    }

    #[test]
    fn two_signatures_in_one_round_are_found_and_in_two_rounds_are_not() {
        let sign = |seq, to: &str, actor: &str| {
            let mut e = entry(seq, "review", "approve", to, actor);
            e.signature = Some(Box::new(Signature {
                signer: 0,
                role: "clerk".into(),
                actor: actor.into(),
                at: DateTime::<Utc>::UNIX_EPOCH,
            }));
            e
        };
        let rules = [rule(RuleKind::DistinctSigners, &["review.approve"])];
        let one_round = vec![
            entry(1, "draft", "submit", "review", "li"),
            sign(2, "review", "wang"),
            sign(3, "done", "wang"),
        ];
        assert_eq!(check(&one_round, &rules).len(), 1);
        let two_rounds = vec![
            entry(1, "draft", "submit", "review", "li"),
            sign(2, "review", "wang"),
            entry(3, "review", "reject", "draft", "zhao"),
            entry(4, "draft", "submit", "review", "li"),
            sign(5, "review", "wang"),
        ];
        assert!(check(&two_rounds, &rules).is_empty());
    }
}
