//! The read-only parts of the instance page: its data, pending timers, parent and children,
//! the approval chain (who decided what, in which role, under which version) and the full
//! history, including the engine's own steps.

use super::instance::field_value;
use super::{local, local_seconds, short_hash, state_title};
use crate::audit::chain::{ApprovalChain, LinkKind};
use crate::catalog::Definition;
use crate::machine::{Entry, EntryKind, Instance};
use chrono::{DateTime, Utc};
use maud::{Markup, html};

pub(super) fn data(def: &Definition, instance: &Instance) -> Markup {
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
            h2 { "资料 Data" }
            @if rows.is_empty() {
                p.muted { "尚未填写。Nothing recorded yet." }
            } @else {
                table.kv {
                    tbody {
                        @for (name, title) in &rows {
                            tr data-field=(name) {
                                th { (title.unwrap_or(name)) br; code.muted { (name) } }
                                td {
                                    @if let Some(value) = instance.data.get(*name) {
                                        (field_value(def, name, value))
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

pub(super) fn timers(instance: &Instance, now: DateTime<Utc>) -> Markup {
    if instance.timers.is_empty() {
        return html! {};
    }
    html! {
        section.card #timers {
            h2 { "期限 Pending timers" }
            table {
                thead { tr { th { "期限 Timer" } th { "到期 Due" } th { "触发 Fires" } } }
                tbody {
                    @for timer in &instance.timers {
                        tr.overdue[timer.due <= now] {
                            td { (timer.title.as_deref().unwrap_or(&timer.id)) }
                            td {
                                (local(timer.due))
                                @if timer.due <= now { " " span.badge.danger { "已到期 due" } }
                                @if let Some(note) = &timer.note { br; small.muted { (note) } }
                            }
                            td { code { (timer.event) } }
                        }
                    }
                }
            }
        }
    }
}

pub(super) fn family(instance: &Instance) -> Markup {
    if instance.parent.is_none() && instance.children.is_empty() {
        return html! {};
    }
    html! {
        section.card #family {
            h2 { "关联实例 Related instances" }
            @if let Some(parent) = &instance.parent {
                p { "上级流程 Parent: " a href={ "/instances/" (parent) } { code { (parent) } } }
            }
            @if !instance.children.is_empty() {
                ul {
                    @for child in &instance.children {
                        li {
                            "子流程 Child: " a href={ "/instances/" (child.id) } {
                                @if let Some(number) = &child.number { strong { (number) } " " }
                                code { (child.id) }
                            }
                            " (" (child.workflow) ") "
                            @match &child.finished_in {
                                Some(state) => span.badge { "已结束 " (state) },
                                None => span.muted { "进行中 running" },
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The steps people took, in business words: the auditor's approval chain.
pub(super) fn chain(chain: &ApprovalChain) -> Markup {
    let links: Vec<_> = chain.links.iter().filter(|l| l.kind.by_person()).collect();
    html! {
        section.card #approval-chain {
            h2 { "审批链 Approval chain" }
            table {
                thead { tr {
                    th { "#" } th { "类别 Kind" } th { "办理 Step" } th { "经办人 Actor" }
                    th { "角色 Role" } th { "时间 Time" } th { "意见与依据 Comment, rules" } th { "版本 Version" }
                } }
                tbody {
                    @for link in links {
                        tr data-actor=(link.actor) data-kind=(link.kind.name()) data-role=[link.role.as_deref()] {
                            td data-label="#" { (link.seq) }
                            td data-label="类别" { span.kind.(link.kind.name()) { (link.kind.title()) } }
                            td data-label="办理" {
                                (link_title(link))
                                br; small.muted {
                                    (link.from_title.as_deref().or(link.from.as_deref()).unwrap_or("—"))
                                    " → " (link.to_title.as_deref().unwrap_or(&link.to))
                                }
                            }
                            td data-label="经办人" { strong { (link.actor) } }
                            td data-label="角色" {
                                @if let Some(role) = &link.role {
                                    (link.role_title.as_deref().unwrap_or(role)) br; code.muted { (role) }
                                }
                            }
                            td.time data-label="时间" { (local_seconds(link.at_utc)) }
                            td data-label="意见" {
                                @if let Some(comment) = &link.comment { p.comment { (comment) } }
                                @if let Some(signature) = &link.signature { small { (signature.text) } br; }
                                @for guard in &link.guards { small.guard.failed[!guard.passed] { (guard.text) } br; }
                            }
                            td data-label="版本" { code title=(link.version) { (short_hash(&link.version)) } }
                        }
                    }
                }
            }
            @for note in &chain.notes { p.muted { (note) } }
        }
    }
}

/// A link's step in words: the branch's (or signer's) title, or what kind of step it was.
fn link_title(link: &crate::audit::chain::Link) -> String {
    match (&link.event_title, link.kind) {
        (Some(title), _) => title.clone(),
        (None, LinkKind::Start) => "发起流程".to_string(),
        (None, _) => link.event.clone(),
    }
}

/// Every entry of the history, the engine's steps included.
pub(super) fn entries(def: &Definition, history: &[Entry]) -> Markup {
    html! {
        section.card #history {
            h2 { "历史 History" }
            table {
                thead { tr {
                    th { "#" } th { "时间 Time" } th { "经办人 Actor" } th { "角色 Role" }
                    th { "事件 Event" } th { "环节 States" } th { "意见 Comment" }
                } }
                tbody {
                    @for entry in history {
                        tr.system[entry.kind == EntryKind::Timer || entry.actor == crate::definition::model::SYSTEM_ROLE] {
                            td data-label="#" { (entry.seq) }
                            td.time data-label="时间" { (local_seconds(entry.at)) }
                            td data-label="经办人" { (entry.actor) }
                            td data-label="角色" { @if let Some(role) = &entry.role { (super::role_title(def, role)) } }
                            td data-label="事件" { (step_title(def, entry)) " " code.muted { (entry.event) } }
                            td data-label="环节" {
                                @if let Some(from) = &entry.from { (state_title(def, from)) " → " }
                                (state_title(def, &entry.to))
                            }
                            td data-label="意见" {
                                @if let Some(serde_json::Value::String(comment)) = entry.payload.get(crate::definition::model::COMMENT) {
                                    (comment)
                                }
                                @if let Some(timer) = &entry.timer {
                                    small.muted { "⏱ " (timer.title.as_deref().unwrap_or(&timer.id)) }
                                    @if let Some(why) = &timer.refused { br; small.muted { (why) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The title of the branch an entry took (the one leading where it went), or its kind.
fn step_title(def: &Definition, entry: &Entry) -> String {
    if entry.kind == EntryKind::Start {
        return LinkKind::Start.title().to_string();
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
    branch.unwrap_or_else(|| entry.event.clone())
}
