//! Notices: who is told what when a step is committed, worked out from the definition alone.
//!
//! This module owns the pure half of notifications. [`notices`] takes a workflow's definition,
//! one step's history [`Entry`] and the instance after it, and returns the notices that step
//! causes, rendered ([`Notice`]): the transition's `notify:`, the fired timer's, the entered
//! state's and, when the instance ends, the workflow's `on_finish:`, in that order. It reads no
//! clock, store or network and draws nothing at random, so the same step always gives the same
//! notices: they can be computed when the step is committed and computed again on replay.
//! Each notice's [`Notice::key`] (instance, entry, position) is its identity for deduplication.
//!
//! Recipients are resolved as far as the definition knows them: roles (with their titles),
//! the people who started the instance or took the step (user ids), and channels by name.
//! Who holds a role, and how a channel is reached, is for the delivery that reads these
//! notices. Templates are rendered by [`template`] (minijinja, bounded, strict).

pub mod template;

use crate::definition::Definition;
use crate::definition::EventTitle;
use crate::definition::model::{ApprovalMode, Recipient, SYSTEM_ROLE, Workflow};
use crate::machine::{Entry, EntryKind, Instance};
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// Where notices link to: the console's page of an instance is `{base}/instances/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// The console's address without a trailing slash, for example
    /// `https://flow.example.cn`; empty for a link relative to the site.
    pub base_url: String,
}

impl Settings {
    /// Settings whose links start with `base_url` (a trailing `/` is dropped).
    pub fn new(base_url: impl Into<String>) -> Settings {
        let base_url: String = base_url.into();
        Settings {
            base_url: base_url.trim_end_matches('/').to_string(),
        }
    }

    /// The console page of `instance`.
    pub fn link(&self, instance: &str) -> String {
        format!("{}/instances/{instance}", self.base_url)
    }
}

/// One notice a step causes, rendered and addressed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Notice {
    /// `{instance}.{seq}.{n}`: the step's entry and the notice's position among the notices
    /// of that step, from 0. Stable: the delivery's deduplication id.
    pub key: String,
    /// The notice's `id` in the definition, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// What in the definition caused it.
    pub cause: Cause,
    /// Who is told, without repeats, in the order the notice names them. Empty when every
    /// recipient it names is nobody in this step (a `starter` of an instance the engine
    /// started, the `actor` of a timer's step).
    pub recipients: Vec<Addressee>,
    /// The rendered title.
    pub title: String,
    /// The rendered message.
    pub body: String,
    /// The console page of the instance.
    pub link: String,
    /// Why a template could not be rendered, when it could not; the title and body are then
    /// plain words about the step, so that nobody is left untold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// What in the definition caused a notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Cause {
    /// A transition's `notify:`: `event` taken in `state`.
    Transition {
        /// The state the step left.
        state: String,
        /// The event taken.
        event: String,
    },
    /// A timer's `notify:`: the timer fired in `state`.
    Timer {
        /// The state the timer was armed in.
        state: String,
        /// The timer's id (`{seq}-{n}`).
        timer: String,
        /// The event it fired.
        event: String,
    },
    /// A state's `notify:`: the instance entered `state`.
    Entered {
        /// The state entered.
        state: String,
    },
    /// The workflow's `on_finish:`: the instance ended in `state`.
    Finished {
        /// The final state.
        state: String,
    },
}

/// A recipient as far as the definition knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Addressee {
    /// Everyone holding a role.
    Role {
        /// The role's id.
        id: String,
        /// Its title, from the definition.
        title: String,
    },
    /// One person, by user id.
    User {
        /// The user id.
        id: String,
    },
    /// A channel the server configures.
    Channel {
        /// The channel's name.
        name: String,
    },
}

/// The notices `entry` causes, rendered: the transition's, the fired timer's, the entered
/// state's, and the workflow's `on_finish:` when `after` has finished. `after` is the instance
/// with `entry` applied. A migration, a partial signature and a timer whose event was refused
/// cause none of their own.
pub fn notices(
    def: &Definition,
    entry: &Entry,
    after: &Instance,
    settings: &Settings,
) -> Vec<Notice> {
    let workflow = &def.workflow;
    let mut found: Vec<(&crate::definition::model::Notice, Cause)> = Vec::new();
    if entry.kind == EntryKind::Migrate {
        return Vec::new();
    }
    let from_state = entry.from.as_deref().and_then(|s| workflow.states.get(s));
    let timer = entry.timer.as_ref().filter(|t| t.refused.is_none());
    if let (Some(state), Some(fired)) = (from_state, timer)
        && let Some(position) = fired
            .id
            .rsplit_once('-')
            .and_then(|(_, n)| n.parse::<usize>().ok())
        && let Some(defined) = state.timers.get(position)
    {
        let cause = Cause::Timer {
            state: (entry.from.clone().unwrap_or_default()).to_string(),
            timer: fired.id.clone(),
            event: entry.event.to_string(),
        };
        found.extend(defined.notify.iter().map(|n| (&n.value, cause.clone())));
    }
    let moved = entry.kind != EntryKind::Timer || timer.is_some();
    if let (Some(state), true) = (from_state, moved)
        && let Some(branches) = state.on.get(&entry.event)
        && let Some(branch) = branches
            .0
            .get(entry.branch.map_or(0, |b| b as usize))
            .filter(|_| entry.branch.is_some() || branches.0.len() == 1)
    {
        let cause = Cause::Transition {
            state: (entry.from.clone().unwrap_or_default()).to_string(),
            event: entry.event.to_string(),
        };
        found.extend(branch.notify.iter().map(|n| (&n.value, cause.clone())));
    }
    if entry.entered
        && let Some(state) = workflow.states.get(&entry.to)
    {
        let cause = Cause::Entered {
            state: entry.to.to_string(),
        };
        found.extend(state.notify.iter().map(|n| (&n.value, cause.clone())));
    }
    if entry.finished && entry.entered {
        let cause = Cause::Finished {
            state: entry.to.to_string(),
        };
        found.extend(workflow.on_finish.iter().map(|n| (&n.value, cause.clone())));
    }
    if found.is_empty() {
        return Vec::new();
    }
    let context = Context::new(def, entry, after, settings);
    found
        .into_iter()
        .enumerate()
        .map(|(n, (notice, cause))| {
            let key = format!("{}.{}.{n}", entry.instance, entry.seq);
            let recipients = resolve(workflow, &notice.to.value, entry, after);
            let timer_notice = matches!(cause, Cause::Timer { .. });
            let value = context.value(timer_notice);
            let rendered = template::render(&notice.title.value, &value, template::TITLE_LIMIT)
                .and_then(|title| {
                    template::render(&notice.message.value, &value, template::MESSAGE_LIMIT)
                        .map(|body| (title, body))
                });
            let (title, body, problem) = match rendered {
                Ok((title, body)) => (title, body, None),
                Err(err) => {
                    let (title, body) = context.plain();
                    (title, body, Some(err.to_string()))
                }
            };
            Notice {
                key,
                id: notice.id.as_ref().map(|i| i.value.clone()),
                cause,
                recipients,
                title,
                body,
                link: context.link.clone(),
                problem,
            }
        })
        .collect()
}

/// The channels a workflow's notices name (`{channel: ID}`), each once: a server checks them
/// against its channels file when it starts.
pub fn channels_named(workflow: &Workflow) -> std::collections::BTreeSet<String> {
    let mut notices: Vec<&crate::definition::model::Notice> = Vec::new();
    for (_, state) in workflow.states.iter() {
        notices.extend(state.notify.iter().map(|n| &n.value));
        for (_, branches) in state.on.iter() {
            for branch in &branches.0 {
                notices.extend(branch.notify.iter().map(|n| &n.value));
            }
        }
        for timer in &state.timers {
            notices.extend(timer.notify.iter().map(|n| &n.value));
        }
    }
    notices.extend(workflow.on_finish.iter().map(|n| &n.value));
    notices
        .into_iter()
        .flat_map(|n| n.to.value.iter())
        .filter_map(|r| match &r.value {
            Recipient::Channel(name) => Some(name.clone()),
            _ => None,
        })
        .collect()
}

/// The roles that may act in `after`'s state: its transitions' roles, then the signers its
/// approval still waits for (in a sequence, only the one whose turn it is). Guards are not
/// evaluated: a role whose branch the data keeps closed for now is still told.
pub fn next_roles(workflow: &Workflow, after: &Instance) -> Vec<String> {
    let mut roles: Vec<String> = Vec::new();
    let Some(state) = workflow.states.get(&after.state) else {
        return roles;
    };
    if after.finished {
        return roles;
    }
    let mut add = |role: &str| {
        if role != SYSTEM_ROLE && !roles.iter().any(|r| r == role) {
            roles.push(role.to_string());
        }
    };
    for (_, branches) in state.on.iter() {
        for branch in &branches.0 {
            for role in &branch.roles {
                add(role.as_str());
            }
        }
    }
    if let (Some(progress), Some(approval)) = (&after.approval, &state.approval) {
        let waiting = progress
            .signers
            .iter()
            .enumerate()
            .filter(|(i, s)| s.required && !progress.signatures.iter().any(|g| g.signer == *i));
        for (_, signer) in waiting {
            add(&signer.role);
            if approval.mode.value == ApprovalMode::Sequence {
                break;
            }
        }
    }
    roles
}

fn resolve(
    workflow: &Workflow,
    to: &[crate::definition::located::Located<Recipient>],
    entry: &Entry,
    after: &Instance,
) -> Vec<Addressee> {
    let role = |id: &str| Addressee::Role {
        id: id.to_string(),
        title: workflow.role_title(id).to_string(),
    };
    let mut out: Vec<Addressee> = Vec::new();
    for recipient in to {
        let add: Vec<Addressee> = match &recipient.value {
            Recipient::NextRoles => next_roles(workflow, after)
                .iter()
                .map(|r| role(r))
                .collect(),
            Recipient::Starter => after
                .started_by
                .iter()
                .map(|id| Addressee::User { id: id.clone() })
                .collect(),
            Recipient::Actor if entry.actor != SYSTEM_ROLE => vec![Addressee::User {
                id: entry.actor.to_string(),
            }],
            Recipient::Actor => Vec::new(),
            Recipient::Role(id) => vec![role(id)],
            Recipient::Field(field) => after
                .data
                .get(field)
                .and_then(Value::as_str)
                .filter(|id| !id.trim().is_empty())
                .map(|id| Addressee::User { id: id.to_string() })
                .into_iter()
                .collect(),
            Recipient::Channel(name) => vec![Addressee::Channel { name: name.clone() }],
        };
        for a in add {
            if !out.contains(&a) {
                out.push(a);
            }
        }
    }
    out
}

/// What a step's templates read, built once per step.
struct Context {
    base: Map<String, Value>,
    timer: Option<Value>,
    link: String,
    workflow_title: String,
    state_title: String,
    number: String,
}

impl Context {
    fn new(def: &Definition, entry: &Entry, after: &Instance, settings: &Settings) -> Context {
        let workflow = &def.workflow;
        let calendar = &def.calendar;
        let time = |t: DateTime<Utc>| {
            let local = calendar.local(t);
            (template::chinese_time(local), local.to_rfc3339())
        };
        let state = |name: &str| json!({"name": name, "title": workflow.state_title(name)});
        let mut data = Map::new();
        for (field, _) in workflow.fields.iter() {
            data.insert(
                field.value.clone(),
                after
                    .data
                    .get(field.as_str())
                    .cloned()
                    .unwrap_or(Value::Null),
            );
        }
        let mut timers = after.timers.clone();
        timers.sort_by_key(|t| t.due);
        let deadlines: Vec<Value> = timers
            .iter()
            .map(|t| {
                let (due, due_iso) = time(t.due);
                json!({
                    "title": t.title.clone().unwrap_or_else(|| t.event.clone()),
                    "event": t.event,
                    "due": due,
                    "due_iso": due_iso,
                })
            })
            .collect();
        let event_title = match entry.kind {
            EntryKind::Start => "发起".to_string(),
            _ => match workflow.event_title(entry.from.as_deref(), &entry.event) {
                Some(EventTitle::Written(t)) => t.to_string(),
                Some(EventTitle::Approve) => "同意".to_string(),
                Some(EventTitle::Reject) => "退回".to_string(),
                None => entry.event.to_string(),
            },
        };
        let role_title = match entry.role.as_deref() {
            Some(SYSTEM_ROLE) | None if entry.actor == SYSTEM_ROLE => "系统".to_string(),
            Some(role) => workflow.role_title(role).to_string(),
            None => String::new(),
        };
        let number = after.number.clone().unwrap_or_else(|| after.id.to_string());
        let link = settings.link(&after.id);
        let (at, _) = time(entry.at);
        let mut base = Map::new();
        base.insert("data".into(), Value::Object(data));
        base.insert(
            "workflow".into(),
            json!({"id": workflow.id.value, "title": workflow.title}),
        );
        base.insert("state".into(), state(&after.state));
        base.insert(
            "from".into(),
            entry.from.as_deref().map_or(Value::Null, state),
        );
        base.insert("to".into(), state(&entry.to));
        base.insert(
            "event".into(),
            json!({"name": entry.event, "title": event_title}),
        );
        base.insert(
            "actor".into(),
            json!({"id": entry.actor, "role": entry.role, "role_title": role_title}),
        );
        base.insert("deadlines".into(), Value::Array(deadlines));
        base.insert("number".into(), Value::String(number.clone()));
        base.insert("id".into(), Value::String(after.id.to_string()));
        base.insert("at".into(), Value::String(at));
        base.insert("link".into(), Value::String(link.clone()));
        let timer = entry.timer.as_ref().map(|t| {
            let (due, due_iso) = time(t.due);
            json!({
                "title": t.title.clone().unwrap_or_else(|| entry.event.to_string()),
                "event": entry.event,
                "due": due,
                "due_iso": due_iso,
            })
        });
        Context {
            base,
            timer,
            link,
            workflow_title: workflow.title.clone(),
            state_title: workflow.state_title(&after.state).to_string(),
            number,
        }
    }

    /// The template context: a timer's notice also reads `timer`.
    fn value(&self, timer_notice: bool) -> minijinja::Value {
        let mut map = self.base.clone();
        if timer_notice && let Some(timer) = &self.timer {
            map.insert(template::TIMER.into(), timer.clone());
        }
        minijinja::Value::from(minijinja::value::Serde(&map))
    }

    /// A title and body that need no template, for a notice whose template failed.
    fn plain(&self) -> (String, String) {
        (
            format!("{}{}", self.workflow_title, self.number),
            format!("当前环节:{}。详情:{}", self.state_title, self.link),
        )
    }
}

/// A sample context for checking a template before anything runs: every field holds a value
/// of its type, one deadline is pending, and a timer's notice has its timer.
pub fn sample_context(workflow: &Workflow, timer_notice: bool) -> minijinja::Value {
    use crate::definition::model::FieldType;
    let mut data = Map::new();
    for (name, field) in workflow.fields.iter() {
        let value = match field.kind.value {
            FieldType::String | FieldType::Text => json!("示例"),
            FieldType::Integer => json!(1),
            FieldType::Number | FieldType::Money => json!(1.5),
            FieldType::Bool => json!(true),
            FieldType::Date => json!("2026-03-02"),
            FieldType::Datetime => json!("2026-03-02T09:00:00+08:00"),
            FieldType::Enum => json!(field.values.first().map(|v| v.value.clone())),
            FieldType::List => json!(["示例"]),
        };
        data.insert(name.value.clone(), value);
    }
    let state = json!({"name": "state", "title": "环节"});
    let timer = json!({"title": "时限", "event": "remind", "due": "2026年3月2日 09:00",
        "due_iso": "2026-03-02T09:00:00+08:00"});
    let mut map = Map::new();
    map.insert("data".into(), Value::Object(data));
    map.insert(
        "workflow".into(),
        json!({"id": workflow.id.value, "title": workflow.title}),
    );
    for name in ["state", "from", "to"] {
        map.insert(name.into(), state.clone());
    }
    map.insert("event".into(), json!({"name": "submit", "title": "提交"}));
    map.insert(
        "actor".into(),
        json!({"id": "user", "role": "role", "role_title": "角色"}),
    );
    map.insert("deadlines".into(), json!([timer.clone()]));
    for name in ["number", "id", "at", "link"] {
        map.insert(name.into(), json!("示例"));
    }
    if timer_notice {
        map.insert(template::TIMER.into(), timer);
    }
    minijinja::Value::from(minijinja::value::Serde(&map))
}
