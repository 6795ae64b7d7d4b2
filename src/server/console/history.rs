//! The read-only parts of the instance page: its data, pending timers, parent and children,
//! the approval chain (who decided what, in which role, under which version) and the full
//! history, including the engine's own steps.
//!
//! A person reads titles: fields, steps, roles, timers and children by what the YAML calls
//! them, people by name, the engine as 系统 / System. Ids stay in `data-*` attributes, and
//! beside the titles for an auditor, who also reads the rules as written where others read
//! that a step's conditions held.

use super::instance::{Reader, event_title, field_value};
use super::{local, local_seconds, short_hash, state_title};
use crate::audit::chain::{ApprovalChain, GuardPurpose, LinkKind};
use crate::catalog::Definition;
use crate::definition::model::{COMMENT, SYSTEM_ROLE};
use crate::i18n::Lang;
use crate::machine::{Entry, EntryKind, Instance};
use chrono::{DateTime, Utc};
use maud::{Markup, html};
use std::sync::Arc;

/// A child instance as a person reads it: the title of its own workflow, and its id.
pub(super) struct Related {
    pub id: String,
    /// Its readable number (`DH-2026-0001`), when its workflow gives one.
    pub number: Option<String>,
    pub workflow: String,
    pub title: String,
    pub finished_in: Option<String>,
}

/// A role as the page shows it: the workflow's title, or for the process owner (a role of the
/// server's, which a migration is recorded in) the role list's.
fn role_shown(reader: &Reader, def: &Definition, role: &str) -> String {
    if role == super::PROCESS_OWNER && def.workflow.roles.get(role).is_none() {
        return reader.owner.clone();
    }
    super::role_title(def, role)
}

/// The definition of a version, when it can be had (the versions of an instance's entries are
/// loaded when its history is read).
pub(super) type Versions<'a> = dyn Fn(&str) -> Option<Arc<Definition>> + 'a;

/// The title of the state a `migrate` entry left, in the version it left.
fn migrated_from(entry: &Entry, from: &str, versions: &Versions) -> String {
    entry
        .migration
        .as_ref()
        .and_then(|m| versions(&m.from_version))
        .map_or_else(|| from.to_string(), |old| state_title(&old, from))
}

/// What a `migrate` entry reads as: from which version to which (short hashes).
fn migrated_title(lang: Lang, entry: &Entry) -> String {
    let from = entry
        .migration
        .as_ref()
        .map_or("?", |m| short_hash(&m.from_version));
    lang.text_with(
        "console-history-migrated",
        &[("from", from), ("to", short_hash(&entry.version))],
    )
}

/// A user id as the page shows it: the person's name, or 系统 / System for the engine.
fn who(lang: Lang, actor: &str, people: &dyn Fn(&str) -> Option<String>) -> String {
    if actor == SYSTEM_ROLE {
        return lang.text("console-system");
    }
    people(actor).unwrap_or_else(|| actor.to_string())
}

pub(super) fn data(
    reader: &Reader,
    def: &Definition,
    instance: &Instance,
    people: &dyn Fn(&str) -> Option<String>,
) -> Markup {
    let t = |id: &str| reader.t(id);
    // A party field holds a user id: the page names the person.
    let shown = |name: &str, value: &serde_json::Value| {
        let party = def
            .workflow
            .fields
            .get(name)
            .is_some_and(|field| field.party.is_some());
        match value.as_str() {
            Some(user) if party && !reader.ids => people(user).unwrap_or_else(|| user.to_string()),
            _ => field_value(reader.lang, def, name, value),
        }
    };
    // Declared fields first, in the definition's order, then anything else the data holds.
    let mut rows: Vec<(&str, Option<&str>)> = def
        .workflow
        .fields
        .iter()
        .filter(|(name, _)| instance.data.contains_key(name.as_str()))
        .map(|(name, field)| (name.as_str(), field.title.as_deref()))
        .collect();
    for key in instance.data.keys() {
        if !rows.iter().any(|(name, _)| name == key) {
            rows.push((key.as_str(), None));
        }
    }
    html! {
        section.card #data {
            h2 { (t("console-data-heading")) }
            @if rows.is_empty() {
                p.muted { (t("console-data-empty")) }
            } @else {
                table.kv {
                    tbody {
                        @for (name, title) in &rows {
                            tr data-field=(name) {
                                th {
                                    (title.unwrap_or(name))
                                    @if reader.ids && title.is_some() { br; code.muted { (name) } }
                                }
                                td {
                                    @if let Some(value) = instance.data.get(*name) {
                                        (shown(name, value))
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub(super) fn timers(
    reader: &Reader,
    def: &Definition,
    instance: &Instance,
    now: DateTime<Utc>,
) -> Markup {
    if instance.timers.is_empty() {
        return html! {};
    }
    let t = |id: &str| reader.t(id);
    html! {
        section.card #timers {
            h2 { (t("console-timers-heading")) }
            table {
                thead { tr { th { (t("console-timers-timer")) } th { (t("console-timers-due")) } th { (t("console-timers-fires")) } } }
                tbody {
                    @for timer in &instance.timers {
                        tr.overdue[timer.due <= now] data-timer=(timer.id) data-event=(timer.event) {
                            td { (timer.title.clone().unwrap_or_else(|| t("console-deadline-untitled"))) }
                            td {
                                (local(timer.due))
                                @if timer.due <= now { " " span.badge.danger { (t("console-timers-is-due")) } }
                                @if let Some(note) = &timer.note { br; small.muted { (note) } }
                            }
                            td {
                                (event_title(reader.lang, Some(def), Some(&instance.state), &timer.event))
                                @if reader.ids { " " code.muted { (timer.event) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub(super) fn family(reader: &Reader, parent: Option<&Related>, children: &[Related]) -> Markup {
    if parent.is_none() && children.is_empty() {
        return html! {};
    }
    let t = |id: &str| reader.t(id);
    html! {
        section.card #family {
            h2 { (t("console-family-heading")) }
            @if let Some(parent) = parent {
                p #parent data-instance=(parent.id) data-workflow=(parent.workflow) {
                    (t("console-family-parent")) " "
                    a href={ "/instances/" (parent.id) } {
                        (parent.title) " "
                        @if let Some(number) = &parent.number { strong { (number) } " " }
                        code { (parent.id) }
                    }
                }
            }
            @if !children.is_empty() {
                ul {
                    @for child in children {
                        li data-instance=(child.id) data-workflow=(child.workflow) {
                            (t("console-family-child")) " "
                            a href={ "/instances/" (child.id) } {
                                (child.title) " "
                                @if let Some(number) = &child.number { strong { (number) } " " }
                                code { (child.id) }
                            }
                            " "
                            @match &child.finished_in {
                                Some(_) => span.badge { (t("console-instance-finished")) },
                                None => span.muted { (t("console-family-running")) },
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The kind of a link in the reader's words: 发起, 审批, 退回, 办理, 系统.
fn kind_title(lang: Lang, kind: LinkKind) -> String {
    lang.text(match kind {
        LinkKind::Start => "console-chain-kind-start",
        LinkKind::Approval => "console-chain-kind-approval",
        LinkKind::Rejection => "console-chain-kind-rejection",
        LinkKind::Decision => "console-chain-kind-decision",
        LinkKind::System => "console-chain-kind-system",
        LinkKind::Migration => "console-chain-kind-migration",
    })
}

/// The steps people took, in business words: the approval chain. An auditor reads the guards
/// as written, with the values they read; everyone else reads that the step's conditions
/// held.
pub(super) fn chain(
    reader: &Reader,
    chain: &ApprovalChain,
    history: &[Entry],
    versions: &Versions,
    people: &dyn Fn(&str) -> Option<String>,
) -> Markup {
    // A migration's step and comment are in its entry, not in a payload.
    let migrated = |seq: u64| {
        history
            .iter()
            .find(|e| e.seq == seq && e.kind == EntryKind::Migrate)
    };
    let lang = reader.lang;
    let t = |id: &str| lang.text(id);
    let links: Vec<_> = chain.links.iter().filter(|l| l.kind.by_person()).collect();
    html! {
        section.card #approval-chain {
            h2 { (t("console-chain-heading")) }
            table {
                thead { tr {
                    th { "#" } th { (t("console-chain-kind")) } th { (t("console-chain-step")) } th { (t("console-chain-actor")) }
                    th { (t("console-chain-role")) } th { (t("console-chain-time")) } th { (t("console-chain-comment")) } th { (t("console-instance-version")) }
                } }
                tbody {
                    @for link in links {
                        tr data-actor=(link.actor) data-kind=(link.kind.name()) data-role=[link.role.as_deref()] data-event=(link.event) {
                            td data-label="#" { (link.seq) }
                            td data-label=(t("console-chain-kind")) { span.kind.(link.kind.name()) { (kind_title(lang, link.kind)) } }
                            td data-label=(t("console-chain-step")) {
                                @if let Some(entry) = migrated(link.seq) { (migrated_title(lang, entry)) } @else { (link_title(lang, link)) }
                                br; small.muted {
                                    @if let (Some(entry), Some(from)) = (migrated(link.seq), &link.from) {
                                        (migrated_from(entry, from, versions))
                                    } @else {
                                        (link.from_title.as_deref().or(link.from.as_deref()).unwrap_or("—"))
                                    }
                                    " → " (link.to_title.as_deref().unwrap_or(&link.to))
                                }
                            }
                            td data-label=(t("console-chain-actor")) { strong { (who(lang, &link.actor, people)) } }
                            td data-label=(t("console-chain-role")) {
                                @if let Some(role) = &link.role {
                                    @if link.role_title.is_none() && role == super::PROCESS_OWNER { (reader.owner) } @else { (link.role_title.as_deref().unwrap_or(role)) }
                                    @if reader.ids { br; code.muted { (role) } }
                                }
                            }
                            td.time data-label=(t("console-chain-time")) { (local_seconds(link.at_utc)) }
                            td data-label=(t("console-chain-comment")) {
                                @if let Some(comment) = &link.comment { p.comment { (comment) } }
                                @if let Some(comment) = migrated(link.seq).and_then(|e| e.migration.as_ref()).and_then(|m| m.comment.as_ref()) { p.comment { (comment) } }
                                @if let Some(signature) = &link.signature {
                                    @if reader.ids {
                                        small { (signature.text) } br;
                                    } @else {
                                        small { (signature_text(lang, signature)) } br;
                                    }
                                }
                                @if reader.ids {
                                    @for guard in &link.guards { small.guard.failed[!guard.passed] { (guard.text) } br; }
                                } @else if link.guards.iter().any(|g| g.purpose == GuardPurpose::Transition && g.passed) {
                                    small.guard.held { (t("console-chain-conditions-held")) } br;
                                }
                            }
                            td data-label=(t("console-instance-version")) { code title=(link.version) { (short_hash(&link.version)) } }
                        }
                    }
                }
            }
            @if reader.ids {
                @for note in &chain.notes { p.muted { (note) } }
            }
        }
    }
}

/// Which signer of an approval signed, in the reader's words (`第 2/3 位签署:业主方`).
fn signature_text(lang: Lang, signature: &crate::audit::chain::SignatureInfo) -> String {
    let title = signature
        .title
        .as_deref()
        .or(signature.role_title.as_deref())
        .unwrap_or(&signature.role);
    lang.text_with(
        "console-chain-signature",
        &[
            ("signer", &signature.signer.to_string()),
            ("of", &signature.of.to_string()),
            ("title", title),
        ],
    )
}

/// A link's step in words: the branch's (or signer's) title, or what kind of step it was.
fn link_title(lang: Lang, link: &crate::audit::chain::Link) -> String {
    match (&link.event_title, link.kind) {
        (Some(title), _) => title.clone(),
        (None, LinkKind::Start) => lang.text("console-history-start"),
        (None, LinkKind::Approval) => lang.text("event-approve"),
        (None, LinkKind::Rejection) => lang.text("event-reject"),
        (None, _) => link.event.clone(),
    }
}

/// Every entry of the history, the engine's steps included.
pub(super) fn entries(
    reader: &Reader,
    def: &Definition,
    history: &[Entry],
    versions: &Versions,
    people: &dyn Fn(&str) -> Option<String>,
) -> Markup {
    let lang = reader.lang;
    let t = |id: &str| lang.text(id);
    html! {
        section.card #history {
            h2 { (t("console-history-heading")) }
            table {
                thead { tr {
                    th { "#" } th { (t("console-chain-time")) } th { (t("console-chain-actor")) } th { (t("console-chain-role")) }
                    th { (t("console-history-event")) } th { (t("console-history-states")) } th { (t("console-form-comment")) }
                } }
                tbody {
                    @for entry in history {
                        // Each entry in the words of the version it was taken on (a migration
                        // left a state of the version before).
                        @let taken = versions(&entry.version);
                        @let def = taken.as_deref().unwrap_or(def);
                        @let system = entry.kind == EntryKind::Timer || entry.actor == SYSTEM_ROLE;
                        tr.system[system] data-actor=(entry.actor) data-event=(entry.event) data-role=[entry.role.as_deref()] {
                            td data-label="#" { (entry.seq) }
                            td.time data-label=(t("console-chain-time")) { (local_seconds(entry.at)) }
                            td data-label=(t("console-chain-actor")) { (who(lang, &entry.actor, people)) }
                            td data-label=(t("console-chain-role")) {
                                @if let Some(role) = &entry.role {
                                    @if role == SYSTEM_ROLE { (t("console-system")) } @else { (role_shown(reader, def, role)) }
                                }
                            }
                            td data-label=(t("console-history-event")) {
                                (step_title(lang, def, entry))
                                @if reader.ids { " " code.muted { (entry.event) } }
                            }
                            td data-label=(t("console-history-states")) {
                                @if let Some(from) = &entry.from {
                                    @if entry.kind == EntryKind::Migrate { (migrated_from(entry, from, versions)) } @else { (state_title(def, from)) }
                                    " → "
                                }
                                (state_title(def, &entry.to))
                            }
                            td data-label=(t("console-form-comment")) {
                                @if let Some(serde_json::Value::String(comment)) = entry.payload.get(COMMENT) {
                                    (comment)
                                }
                                @if let Some(comment) = entry.migration.as_ref().and_then(|m| m.comment.as_ref()) {
                                    (comment)
                                }
                                @if let Some(timer) = &entry.timer {
                                    small.muted { "⏱ " (timer.title.clone().unwrap_or_else(|| t("console-deadline-untitled"))) }
                                    @if reader.ids { @if let Some(why) = &timer.refused { br; small.muted { (why) } } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The title of the step an entry took: the branch leading where it went, else the event's
/// title in the state it left (the approval's words for a signature), else the id.
fn step_title(lang: Lang, def: &Definition, entry: &Entry) -> String {
    if entry.kind == EntryKind::Start {
        return lang.text("console-history-start");
    }
    if entry.kind == EntryKind::Migrate {
        return migrated_title(lang, entry);
    }
    let branch = entry
        .from
        .as_deref()
        .and_then(|from| def.workflow.states.get(from))
        .and_then(|state| state.on.get(&entry.event))
        .and_then(|branches| {
            branches
                .0
                .iter()
                .find(|b| b.to.as_str() == entry.to)
                .or(branches.0.first())
        })
        .and_then(|b| b.title.clone());
    branch.unwrap_or_else(|| event_title(lang, Some(def), entry.from.as_deref(), &entry.event))
}
