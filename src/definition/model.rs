//! The workflow format: the serde types a `workflows/*.yaml` file is read into.
//!
//! Doc comments here become the descriptions in `schemas/workflow.schema.json`, which editors
//! show on hover, so they speak to process owners. Identifiers are English snake_case; titles
//! and descriptions keep the manual's Chinese.

use super::located::{Entries, FromTitle, Located, OneOrMany, TitleOr};
pub use super::schedule::{Every, MonthDay, Roll, Weekday};
use schemars::JsonSchema;
use serde::Deserialize;

/// One procedure of the manual as a state machine.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "sopflow workflow")]
pub struct Workflow {
    /// Stable identifier, lower snake_case, for example `hot_work_permit`.
    pub id: Located<String>,
    /// The procedure's name in the manual's words, for example `动火证审批`.
    pub title: String,
    /// What the procedure is for, in the manual's words.
    #[serde(default)]
    pub description: Option<String>,
    /// Where in the source manual the procedure is written down.
    #[serde(default)]
    pub source: Option<Source>,
    /// The roles that take part in this workflow, by id from the organisation's role list
    /// (`workflows/roles.yaml`), which gives their titles: `order_dept:`, or
    /// `owner_occupant: {scope: own}`. Without a role list, give each its title here:
    /// `order_dept: 秩序维护部`.
    #[serde(default)]
    pub roles: Entries<TitleOr<Role>>,
    /// The data an instance carries: each field's type, and which steps must (`required_on`) or
    /// may (`optional_on`) supply it. A step may write no other field.
    #[serde(default)]
    pub fields: Entries<Field>,
    /// Who may start an instance and who may read every instance. Without it, the roles of the
    /// initial state's transitions may start one, and only the people taking part read it.
    #[serde(default)]
    pub access: Option<Located<Access>>,
    /// Values a process owner sets without editing rules: thresholds, amounts the manual leaves
    /// blank ("XX"), deadlines. Scripts read them as `params.name`.
    #[serde(default)]
    pub parameters: Entries<Parameter>,
    /// The business calendar that working days and hours are counted on, by id (a file in
    /// `calendars/`). Default `cn_mainland`: Monday to Friday, 09:00-18:00 China Standard
    /// Time, with the State Council's public holidays and make-up working days.
    #[serde(default)]
    pub calendar: Option<Located<String>>,
    /// The readable number each instance gets, which clerks see, write on the document and
    /// search by, for example `"DH-{year}-{seq:04}"` (DH-2026-0001). Placeholders: `{year}`
    /// and `{month}` of the start on the workflow's calendar clock, and `{seq}` (exactly once),
    /// the instance's count, zero-padded to N digits with `{seq:N}` (1-9). With `{year}` the
    /// count restarts at 1 each year. Other text: ASCII letters, digits, `-`, `_`, `.`.
    /// Without it, an instance is known by its id (`hot_work_permit-12`).
    #[serde(default)]
    pub number: Option<Located<String>>,
    /// The state a new instance starts in.
    pub initial: Located<String>,
    /// The states, in the order the procedure runs through them.
    pub states: Entries<State>,
    /// Rules that hold across steps: four-eyes (distinct actors) and must-pass checks.
    #[serde(default)]
    pub constraints: Vec<Located<Constraint>>,
    /// Recurring starts of this workflow: `monthly_report: {every: month, day:
    /// last_working_day, at: "09:00"}`. Each occurrence starts one instance, as the `system`
    /// actor; an occurrence missed while the engine was down starts one instance on start-up
    /// (not one per missed period).
    #[serde(default)]
    pub schedules: Entries<Located<Schedule>>,
    /// Notices sent when an instance ends (reaches any final state), after those of the final
    /// state itself: `on_finish: [{to: [starter], title: "…已办结", message: "…"}]`.
    #[serde(default)]
    pub on_finish: Vec<Located<Notice>>,
}

/// A notice: who is told, and what they read. Sent when the instance enters a state (the
/// state's `notify:`), takes a transition (the transition's), when a timer fires (the
/// timer's), or when it ends (the workflow's `on_finish:`). Nothing is sent by a step that is
/// refused; a scenario can check what would be sent (`expect: {notified: [...]}`).
///
/// `title` and `message` are templates (minijinja, the Jinja syntax): `{{ data.amount }}`,
/// `{{ state.title }}`, `{{ link }}`, `{% if data.level == "major" %}…{% endif %}`. They read
/// `data` (the instance's fields), `workflow`, `state`, `from`, `to`, `event`, `actor`,
/// `deadlines`, `timer` (in a timer's notice), `number`, `id`, `at` and `link`; the filters
/// `money` and `date` format amounts and times in Chinese.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Notice {
    /// A stable name for the notice, lower snake_case, unique in the workflow, for example
    /// `escalated_to_supervisor`: what a delivery log or a subscription refers to.
    #[serde(default)]
    pub id: Option<Located<String>>,
    /// Who is told: `next_roles` (the roles that may act in the state entered), `starter`
    /// (who started the instance), `actor` (who took the step), `{role: cs_supervisor}`
    /// (everyone holding a role of the workflow), `{field: salesperson}` (the person a field
    /// names), `{channel: cs_group}` (a channel the server configures, such as a group robot).
    pub to: Located<Vec<Located<Recipient>>>,
    /// The notice's title, a template, for example `投诉{{ number }}已升级`.
    pub title: Located<String>,
    /// The notice's text, a template, for example `请于{{ deadlines[0].due }}前处理:{{ link }}`.
    pub message: Located<String>,
}

/// Who a notice is sent to.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Recipient {
    /// The roles that may act in the state the step entered: its transitions' roles, and the
    /// signers its approval still waits for (in a sequence, the one whose turn it is).
    NextRoles,
    /// The person who started the instance (nobody, when the engine started it).
    Starter,
    /// The person who took the step (nobody, when the engine did: a timer, a child).
    Actor,
    /// Everyone holding this role of the workflow.
    Role(String),
    /// The person a field names by user id (a field with `party:`, such as the salesperson a
    /// lead is passed to), as the field stands after the step; nobody while it is empty.
    Field(String),
    /// A channel the server configures by this name (a group robot, a mailing list).
    Channel(String),
}

/// When a workflow starts by itself. Times are local to the schedule's calendar.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// The schedule's name in the manual's words, for example `每月20日全面检查`.
    #[serde(default)]
    pub title: Option<String>,
    /// How often: `day`, `working_day`, `week` (give `weekday`) or `month` (give `day`).
    pub every: Located<Every>,
    /// For `every: month`: the day of the month (1-31; a day the month lacks means its last
    /// day), or `last`, `first_working_day`, `last_working_day`.
    #[serde(default)]
    pub day: Option<Located<MonthDay>>,
    /// For `every: week`: the day of the week, for example `monday`.
    #[serde(default)]
    pub weekday: Option<Located<Weekday>>,
    /// The local time of day, `HH:MM`, for example `"09:00"`.
    pub at: Located<String>,
    /// What to do when the day is not a working day: `none` (default), `next_working_day`
    /// (国家法定节假日顺延) or `previous_working_day`.
    #[serde(default)]
    pub roll: Option<Located<Roll>>,
    /// The calendar the schedule counts on; the workflow's calendar when absent.
    #[serde(default)]
    pub calendar: Option<Located<String>>,
    /// Initial values for declared fields of each started instance.
    #[serde(default)]
    pub data: Option<Located<serde_json::Map<String, serde_json::Value>>>,
}

/// A citation of the source manual.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// The manual, for example `M11 中汇广场客户服务部`.
    pub manual: String,
    /// The section, for example `五(四)2 动火证办理`.
    #[serde(default)]
    pub section: Option<String>,
    /// Line references in the manual text, for example `L153-L154`.
    #[serde(default)]
    pub lines: Option<String>,
}

/// A role: a department or a kind of person who acts in the workflow.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Role {
    /// The role's name in the manual, for example `秩序维护部`. Leave it out when the
    /// organisation's role list gives it; when both do, they must agree.
    #[serde(default)]
    pub title: String,
    /// What the role does in this workflow, when it needs saying (for example `开票人`).
    #[serde(default)]
    pub description: Option<String>,
    /// Whose instances a holder of this role works on: `all` (default: a department, which
    /// handles everyone's requests) or `own` (an applicant, owner, customer or contractor, who
    /// sees and acts only on the instances they started, took part in, or are named in by a
    /// field with `party:` this role).
    #[serde(default)]
    pub scope: Option<Located<RoleScope>>,
}

impl Role {
    /// Whether holders see and act only on their own instances.
    pub fn is_own(&self) -> bool {
        self.scope
            .as_ref()
            .is_some_and(|s| s.value == RoleScope::Own)
    }
}

/// Whose instances a role's holders work on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoleScope {
    /// Every instance of the workflow: a department's role.
    All,
    /// Only instances the holder started, took part in, or is named in (`party:`): a person
    /// acting for themselves.
    Own,
}

impl FromTitle for Role {
    fn from_title(title: String) -> Self {
        Role {
            title,
            description: None,
            scope: None,
        }
    }
}

/// Who may start instances of a workflow, and who may read all of them.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Access {
    /// Roles that may start an instance. Default: the roles of the initial state's
    /// transitions. `[]`: only the engine starts it (a schedule, or a parent workflow).
    #[serde(default)]
    pub start: Option<Vec<Located<String>>>,
    /// Roles that may read every instance, whoever took part in it (a supervisor, a
    /// department that keeps the records). The people taking part always may, and so may the
    /// server's `auditor`s.
    #[serde(default)]
    pub read: Vec<Located<String>>,
}

/// The type of a data field or a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// A short text.
    String,
    /// A long text (opinions, descriptions).
    Text,
    /// A whole number.
    Integer,
    /// A decimal number.
    Number,
    /// An amount of money in yuan.
    Money,
    /// Yes or no.
    Bool,
    /// A calendar date, `2026-03-01`.
    Date,
    /// A date and time, `2026-03-01T09:30:00+08:00`.
    Datetime,
    /// One of a fixed set of `values`.
    Enum,
    /// A list of `items`.
    List,
}

impl FieldType {
    /// Whether values of this type are numbers in scripts.
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            FieldType::Integer | FieldType::Number | FieldType::Money
        )
    }
    /// Whether values of this type are strings in scripts.
    pub fn is_textual(self) -> bool {
        matches!(
            self,
            FieldType::String
                | FieldType::Text
                | FieldType::Enum
                | FieldType::Date
                | FieldType::Datetime
        )
    }
    /// The type as written in the YAML (`type: money`), for messages and the workflow page.
    pub fn name(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Text => "text",
            FieldType::Integer => "integer",
            FieldType::Number => "number",
            FieldType::Money => "money",
            FieldType::Bool => "bool",
            FieldType::Date => "date",
            FieldType::Datetime => "datetime",
            FieldType::Enum => "enum",
            FieldType::List => "list",
        }
    }
}

/// A piece of data an instance carries.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Field {
    /// What kind of value the field holds: the form's input, the check of every payload and
    /// the type scripts see follow it.
    #[serde(rename = "type")]
    pub kind: Located<FieldType>,
    /// The field's label on forms, in the manual's words.
    #[serde(default)]
    pub title: Option<String>,
    /// What the field holds or how to fill it in (`passed 核验通过; failed 核验未通过`), shown
    /// under its input on forms.
    #[serde(default)]
    pub description: Option<String>,
    /// Events whose payload must supply this field, for example `[submit]`; `start` means the
    /// initial data of every new instance.
    #[serde(default)]
    pub required_on: Vec<Located<String>>,
    /// Events whose payload may supply this field (`start`: the initial data, including what a
    /// parent workflow hands to its child). A payload may carry only the fields that list its
    /// event here or in `required_on`, and a `comment`.
    #[serde(default)]
    pub optional_on: Vec<Located<String>>,
    /// Fixed once set: after the field has a value, no step changes it (neither a payload nor
    /// an action), except a step of an event in its `required_on` that moves the instance on
    /// (a resubmission after a send-back, which supplies the fact again and starts its review
    /// over). A step that stays in its state cannot change it, however often it is taken. For
    /// the facts an approval is based on: amounts, seal times, fees.
    #[serde(default)]
    pub fixed: bool,
    /// The longest value accepted: characters for `string` (default 200) and `text` (default
    /// 5000), items for `list` (default 200).
    #[serde(default)]
    pub max_length: Option<Located<u32>>,
    /// This field names a person (their user id) who takes part in the instance in the given
    /// role: they may read it, and act in that role (and only that one) where the role's
    /// `scope` is `own`.
    #[serde(default)]
    pub party: Option<Located<String>>,
    /// For `type: enum`: the allowed values.
    #[serde(default)]
    pub values: Vec<Located<String>>,
    /// For `type: list`: the type of each item.
    #[serde(default)]
    pub items: Option<Located<FieldType>>,
}

/// The longest `string` value without a `max_length`, in characters.
pub const DEFAULT_STRING_LENGTH: u32 = 200;
/// The longest `text` value without a `max_length`, in characters.
pub const DEFAULT_TEXT_LENGTH: u32 = 5000;
/// The most items of a `list` without a `max_length`.
pub const DEFAULT_LIST_LENGTH: u32 = 200;

impl Field {
    /// Whether `event` (or `start`) must supply this field.
    pub fn is_required_on(&self, event: &str) -> bool {
        self.required_on.iter().any(|e| e.as_str() == event)
    }

    /// Whether a payload of `event` (or the initial data, for `start`) may supply this field.
    pub fn is_writable_on(&self, event: &str) -> bool {
        self.is_required_on(event) || self.optional_on.iter().any(|e| e.as_str() == event)
    }

    /// The longest value accepted (characters, or items of a list), if the type has a length.
    pub fn length_limit(&self) -> Option<u32> {
        let default = match self.kind.value {
            FieldType::String => DEFAULT_STRING_LENGTH,
            FieldType::Text => DEFAULT_TEXT_LENGTH,
            FieldType::List => DEFAULT_LIST_LENGTH,
            _ => return None,
        };
        Some(self.max_length.as_ref().map_or(default, |m| m.value))
    }
}

/// A plain YAML scalar: the default of a parameter.
#[derive(Debug, Clone, PartialEq, JsonSchema)]
#[serde(untagged)]
pub enum Scalar {
    /// `true` or `false`: a switch, such as whether a step is needed at all.
    Bool(bool),
    /// A whole number: a count, or an amount in whole yuan.
    Integer(i64),
    /// A number with a fraction: a rate, or an amount with fen.
    Number(f64),
    /// A text: a department, a place, a duration such as `7 working days`.
    String(String),
}

/// As written in YAML (`true`, `5000`, `0.5`, `客服部`).
impl std::fmt::Display for Scalar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scalar::Bool(b) => b.fmt(f),
            Scalar::Integer(i) => i.fmt(f),
            Scalar::Number(n) => n.fmt(f),
            Scalar::String(s) => s.fmt(f),
        }
    }
}

// By hand rather than `#[serde(untagged)]`: untagged enums buffer the value (replaying any
// aliases in it) and fail with "did not match any variant", which tells a process owner
// nothing.
impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl serde::de::Visitor<'_> for ScalarVisitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a single value: a number, a text, or true/false")
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Integer(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Scalar, E> {
                i64::try_from(v)
                    .map(Scalar::Integer)
                    .or(Ok(Scalar::Number(v as f64)))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar::Number(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::String(v.to_string()))
            }
        }
        d.deserialize_any(ScalarVisitor)
    }
}

/// A value the process owner sets: a threshold, an amount the manual leaves blank, a deadline.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Parameter {
    /// The type of the value, as for a field; the default and any value set from outside
    /// must have it.
    #[serde(rename = "type")]
    pub kind: Located<FieldType>,
    /// The value used unless the process owner sets another. Required: no parameter is
    /// left undefined.
    pub default: Located<Scalar>,
    /// The parameter's name in the manual's words, for example `装修押金(元)`, shown on the
    /// workflow page and in the process library.
    #[serde(default)]
    pub title: Option<String>,
    /// Where the figure comes from, or that the manual leaves it blank and this is a default.
    #[serde(default)]
    pub description: Option<String>,
}

/// A state of the procedure.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// The state's name in the manual's words, for example `秩序维护部初审`.
    #[serde(default)]
    pub title: Option<String>,
    /// What happens in this state, in the manual's words, for whoever reads the file.
    #[serde(default)]
    pub description: Option<String>,
    /// A final state ends the instance; it has no transitions, approval or timers.
    #[serde(default, rename = "final")]
    pub is_final: bool,
    /// Events this state handles, each leading to a state. Several guarded branches for one
    /// event are written as a list; the first whose guard holds is taken.
    #[serde(default)]
    pub on: Entries<Located<OneOrMany<Transition>>>,
    /// A sign-off in this state: a sequential chain or a countersign (all, any, n of m).
    #[serde(default)]
    pub approval: Option<Located<Approval>>,
    /// Timers armed when the instance enters this state and cancelled when it leaves.
    #[serde(default)]
    pub timers: Vec<Located<Timer>>,
    /// Wait for child instances started earlier to finish, then fire an event.
    #[serde(default)]
    pub await_children: Option<Located<AwaitChildren>>,
    /// Notices sent each time an instance enters this state (the start, for the initial state).
    #[serde(default)]
    pub notify: Vec<Located<Notice>>,
}

/// What an event does in a state.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Transition {
    /// The state the instance moves to.
    pub to: Located<String>,
    /// The action's label, in the manual's words, for example `初审通过`.
    #[serde(default)]
    pub title: Option<String>,
    /// Roles allowed to fire the event. Timers fire events as the `system` actor.
    #[serde(default)]
    pub roles: Vec<Located<String>>,
    /// A condition that must hold: a rule `file::function` from `rules/`, or a short rhai
    /// expression over `data`, `payload`, `actor`, `params` and `now` returning true or false.
    #[serde(default)]
    pub guard: Option<Located<String>>,
    /// What a person refused by the guard reads, in the manual's words, for example
    /// `请先上传消防验收合格证明`: the reason when the guard is false without giving one
    /// (a rule that `throw`s a reason says it itself). The validator warns (W410) where a
    /// person can be refused by a guard that says nothing.
    #[serde(default)]
    pub guard_message: Option<Located<String>>,
    /// Data changes: a rule `file::function` or a rhai expression returning a map of fields to
    /// set.
    #[serde(default)]
    pub action: Option<Located<String>>,
    /// Fields the event's payload must supply on this branch; `comment` requires a comment.
    /// Each field must list the event in its `required_on` or `optional_on`.
    #[serde(default)]
    pub requires: Vec<Located<String>>,
    /// What the step is to an auditor: `approval`, `rejection` or `decision`. Without it the
    /// kind follows the event's name (`approve*` approval; `reject*`, `send_back*`,
    /// `return_for*`, `require_revision` rejection; a step back to the initial state
    /// rejection; anything else decision). Recorded in the history with the step, so renaming
    /// an event later cannot change what an auditor reads.
    #[serde(default)]
    pub audit: Option<Located<AuditKind>>,
    /// For a transition back to its own state: leave and enter the state again (cancelling
    /// and re-arming its timers, restarting its approval). Default false: the instance stays
    /// in the state and its timers keep running, so a `remind` timer does not restart the
    /// escalation ladder.
    #[serde(default)]
    pub reenter: bool,
    /// Child workflows started by this step.
    #[serde(default)]
    pub spawn: Vec<Located<Spawn>>,
    /// Notices sent when this branch is taken, before those of the state it enters.
    #[serde(default)]
    pub notify: Vec<Located<Notice>>,
}

/// What a person's step is to an auditor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    /// Agreeing to what was asked: a signature, a review passed.
    Approval,
    /// Refusing or sending back.
    Rejection,
    /// Any other step: submitting, sealing, distributing, recording.
    Decision,
}

impl AuditKind {
    /// The kind as the history records it (`approval`), for programs; people read a title in
    /// their own language instead.
    pub fn name(self) -> &'static str {
        match self {
            AuditKind::Approval => "approval",
            AuditKind::Rejection => "rejection",
            AuditKind::Decision => "decision",
        }
    }
}

/// How the signatures of an approval combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalMode {
    /// One signer after another, in the listed order (signers whose `when` is false are
    /// skipped).
    Sequence,
    /// Countersign: every signer must approve.
    All,
    /// Countersign: one approval is enough.
    Any,
    /// Countersign: `quorum` of the signers must approve (n of m).
    Quorum,
}

/// A sign-off held in one state.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// How the signatures combine: one after another, or a countersign of all, any one, or
    /// `quorum` of the signers.
    pub mode: Located<ApprovalMode>,
    /// Who signs, by role.
    pub signers: Vec<Located<Signer>>,
    /// For `mode: quorum`: how many approvals are needed.
    #[serde(default)]
    pub quorum: Option<Located<u32>>,
    /// The event a signer fires to approve. Default `approve`.
    #[serde(default)]
    pub event: Option<Located<String>>,
    /// The state to move to once the approval is complete.
    pub to: Located<String>,
    /// What a rejection does; without it, signers cannot reject.
    #[serde(default)]
    pub on_reject: Option<Located<Rejection>>,
    /// Whether each signature must come from a different person. Default true.
    #[serde(default = "default_true")]
    pub distinct_signers: bool,
}

fn default_true() -> bool {
    true
}

/// One signer of an approval.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Signer {
    /// The role that signs here; anyone holding it may sign, unless `distinct_signers`
    /// forbids the same person twice.
    pub role: Located<String>,
    /// The signature's label, for example `业户签名`.
    #[serde(default)]
    pub title: Option<String>,
    /// A condition for this signer to be needed at all (for routing by amount); a rule
    /// reference or rhai expression.
    #[serde(default)]
    pub when: Option<Located<String>>,
}

/// What happens when a signer rejects.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rejection {
    /// The event a signer fires to reject. Default `reject`.
    #[serde(default)]
    pub event: Option<Located<String>>,
    /// The state a rejection leads to.
    pub to: Located<String>,
    /// Fields the rejection must supply; usually `[comment]`.
    #[serde(default)]
    pub requires: Vec<Located<String>>,
}

/// A timer armed on entry to a state.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Timer {
    /// A duration after entering the state: `15 minutes`, `7 working days`, `6 months`,
    /// `1 year` (also `15分钟`, `7个工作日`, `6个月`).
    #[serde(default)]
    pub after: Option<Located<String>>,
    /// A time computed by a rule (`file::function`) or rhai expression.
    #[serde(default)]
    pub at: Option<Located<String>>,
    /// The event fired, as the `system` actor, when the timer falls due.
    pub fire: Located<String>,
    /// The timer's label, for example `审核时限(7个工作日)`.
    #[serde(default)]
    pub title: Option<String>,
    /// A condition for the timer to be armed at all, on the data after the step that entered
    /// the state (a limit the manual sets for some cases only: 正常调退商品 5分钟内办理完毕); a
    /// rule reference or rhai expression. A timer not armed is not pending and never fires.
    #[serde(default)]
    pub when: Option<Located<String>>,
    /// The calendar working days and hours are counted on; the workflow's calendar when
    /// absent.
    #[serde(default)]
    pub calendar: Option<Located<String>>,
    /// Notices sent when the timer fires and its event is taken (a reminder, an escalation),
    /// before those of the transition and the state it enters.
    #[serde(default)]
    pub notify: Vec<Located<Notice>>,
}

/// Child workflow instances started by a step.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Spawn {
    /// The child workflow's id.
    pub workflow: Located<String>,
    /// A list field: one child is started per item (one pass card per worker).
    #[serde(default)]
    pub for_each: Option<Located<String>>,
}

/// Waiting for children in a state.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AwaitChildren {
    /// Only children of these workflows; all children when empty.
    #[serde(default)]
    pub workflows: Vec<Located<String>>,
    /// The event fired, as the `system` actor, once every awaited child has finished.
    pub fire: Located<String>,
}

/// A rule that holds across steps. Give exactly one of `distinct_actors` and `must_pass`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Constraint {
    /// What the rule is, in the manual's words.
    #[serde(default)]
    pub title: Option<String>,
    /// Steps (`state.event`) that must each be done by a different person (four-eyes).
    #[serde(default)]
    pub distinct_actors: Option<Vec<Located<String>>>,
    /// Every path from the initial state to `to` passes through `via`; checked on the graph
    /// when the workflow is loaded, for an auditor.
    #[serde(default)]
    pub must_pass: Option<MustPass>,
}

/// A must-pass check: every way to `to` goes through `via`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MustPass {
    /// The state that may be reached only through `via`, for example `paid`.
    pub to: Located<String>,
    /// The state every way to `to` passes through, for example `pending_approval`.
    pub via: Located<String>,
}

/// The built-in payload key every event may carry, and `requires` may demand.
pub const COMMENT: &str = "comment";

/// The role timers and child completions act as.
pub const SYSTEM_ROLE: &str = "system";

/// The server-wide role of auditors: they read every instance. Not a workflow role.
pub const AUDITOR_ROLE: &str = "auditor";

/// The server-wide role of process owners: they reload and (later) migrate definitions. Not a
/// workflow role.
pub const PROCESS_OWNER_ROLE: &str = "process_owner";

/// The pseudo-event of a field's `required_on` / `optional_on` that means the initial data.
pub const START: &str = "start";

impl Approval {
    /// The approve event's name.
    pub fn approve_event(&self) -> &str {
        self.event.as_ref().map_or("approve", |e| e.as_str())
    }
}

impl Rejection {
    /// The reject event's name.
    pub fn reject_event(&self) -> &str {
        self.event.as_ref().map_or("reject", |e| e.as_str())
    }
}

impl Workflow {
    /// Every event name some state handles, through a transition or an approval.
    pub fn events(&self) -> impl Iterator<Item = &str> {
        self.states.iter().flat_map(|(_, state)| state.events())
    }
}

impl State {
    /// Events this state handles.
    pub fn events(&self) -> impl Iterator<Item = &str> {
        let approval = self.approval.iter().flat_map(|a| {
            std::iter::once(a.approve_event()).chain(a.on_reject.iter().map(|r| r.reject_event()))
        });
        self.on.keys().chain(approval)
    }

    /// Whether this state handles `event`.
    pub fn handles(&self, event: &str) -> bool {
        self.events().any(|e| e == event)
    }
}
