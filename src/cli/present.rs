//! Instances and history entries for people: short blocks, identifiers with the titles the
//! workflow gives them (`security_review (秩序维护部初审)`), times in UTC.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sopflow::definition::Definition;
use sopflow::engine::{Engine, Outcome};
use sopflow::machine::entry::PendingSigner;
use sopflow::machine::{Actor, Available, Entry, EntryKind, Instance};
use std::fmt::Write;
use std::sync::Arc;

/// The titles of one definition version, if it can be loaded; without it, names stand alone.
pub struct Titles {
    version: String,
    definition: Option<Arc<Definition>>,
}

static UNKNOWN: Titles = Titles {
    version: String::new(),
    definition: None,
};

impl Titles {
    pub fn of(engine: &Engine, version: &str) -> Titles {
        Titles::from_definition(version, engine.definition(version).ok())
    }

    /// The titles of a definition obtained some other way: `--server` commands compile the
    /// server's copy of a version's sources, since they cannot open the store. `None` when it
    /// could not be had; names then stand alone.
    pub fn from_definition(version: &str, definition: Option<Arc<Definition>>) -> Titles {
        Titles {
            version: version.to_string(),
            definition,
        }
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    fn pick<'a>(all: &'a [Titles], version: &str) -> &'a Titles {
        all.iter()
            .find(|t| t.version == version)
            .unwrap_or(&UNKNOWN)
    }

    pub fn workflow(&self) -> Option<&str> {
        self.definition
            .as_ref()
            .map(|d| d.workflow.title.as_str())
            .filter(|t| !t.is_empty())
    }

    pub fn state(&self, state: &str) -> Option<&str> {
        self.definition
            .as_ref()?
            .workflow
            .states
            .get(state)?
            .title
            .as_deref()
    }

    fn role(&self, role: &str) -> Option<&str> {
        let title = &self.definition.as_ref()?.workflow.roles.get(role)?.0.title;
        (!title.is_empty()).then_some(title.as_str())
    }

    fn field(&self, field: &str) -> Option<&str> {
        self.definition
            .as_ref()?
            .workflow
            .fields
            .get(field)?
            .title
            .as_deref()
    }

    /// The title of the transition an entry took: the branch of `event` in `from` that leads
    /// to `to` (or its first branch).
    fn event(&self, from: Option<&str>, event: &str, to: &str) -> Option<&str> {
        let state = self.definition.as_ref()?.workflow.states.get(from?)?;
        let branches = &state.on.get(event)?.value.0;
        branches
            .iter()
            .find(|b| b.to.value == to)
            .or_else(|| branches.first())?
            .title
            .as_deref()
    }
}

/// `name (title)`, or the name alone.
fn named(name: &str, title: Option<&str>) -> String {
    match title.filter(|t| !t.is_empty()) {
        Some(title) => format!("{name} ({title})"),
        None => name.to_string(),
    }
}

/// A time as the people of the workflow read it: on its calendar's clock (Beijing time for the
/// shipped calendars), with the offset; in UTC only when the definition is not at hand.
fn time(at: &DateTime<Utc>, titles: &Titles) -> String {
    match titles
        .definition
        .as_ref()
        .and_then(|d| d.calendar_named(None))
    {
        Some(calendar) => calendar
            .local(*at)
            .format("%Y-%m-%d %H:%M:%S %:z")
            .to_string(),
        None => at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    }
}

fn compact(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "?".to_string())
}

fn hash_prefix(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

fn replay_note(out: &mut String, outcome: &Outcome) {
    if outcome.replayed {
        let key = outcome.entry.idempotency_key.as_deref().unwrap_or("");
        let _ = writeln!(
            out,
            "replayed: the idempotency key `{key}` was used before; nothing new was written"
        );
    }
}

/// After `start`.
pub fn started(outcome: &Outcome, titles: &Titles) -> String {
    let mut out = String::new();
    replay_note(&mut out, outcome);
    let instance = &outcome.instance;
    let _ = writeln!(
        out,
        "started {}: {}, in {}",
        instance.id,
        named(&instance.workflow, titles.workflow()),
        named(&instance.state, titles.state(&instance.state))
    );
    if let Some(number) = &instance.number {
        let _ = writeln!(out, "  number        {number}");
    }
    if let Some(key) = &instance.business_key {
        let _ = writeln!(out, "  business key  {key}");
    }
    if !instance.data.is_empty() {
        let _ = writeln!(out, "  data          {}", compact(&instance.data));
    }
    out
}

/// After `fire`.
pub fn fired(outcome: &Outcome, titles: &Titles) -> String {
    let mut out = String::new();
    replay_note(&mut out, outcome);
    let _ = write!(out, "{} ", outcome.instance.id);
    entry_block(&mut out, &outcome.entry, titles);
    out
}

/// `sopflow history`: one block per entry.
pub fn history(entries: &[Entry], titles: &[Titles]) -> String {
    let mut out = String::new();
    for (i, entry) in entries.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        entry_block(&mut out, entry, Titles::pick(titles, &entry.version));
    }
    out
}

fn entry_block(out: &mut String, entry: &Entry, titles: &Titles) {
    let event = match entry.kind {
        EntryKind::Start => "start".to_string(),
        EntryKind::ChildFinished => format!("{} (child finished)", entry.event),
        EntryKind::Event => named(
            &entry.event,
            titles.event(entry.from.as_deref(), &entry.event, &entry.to),
        ),
        EntryKind::Timer => format!(
            "{} (timer)",
            named(
                &entry.event,
                titles.event(entry.from.as_deref(), &entry.event, &entry.to),
            )
        ),
        EntryKind::Migrate => format!(
            "migrate (version {} -> {})",
            entry
                .migration
                .as_ref()
                .map_or("?", |m| m.from_version.get(..12).unwrap_or(&m.from_version)),
            entry.version.get(..12).unwrap_or(&entry.version)
        ),
    };
    let _ = writeln!(out, "#{}  {}  {event}", entry.seq, time(&entry.at, titles));
    let from = entry
        .from
        .as_deref()
        .map(|f| format!("{} ", named(f, titles.state(f))))
        .unwrap_or_default();
    let moved = if entry.from.as_deref() == Some(entry.to.as_str()) && !entry.entered {
        format!("stays in {}", named(&entry.to, titles.state(&entry.to)))
    } else {
        format!("{from}-> {}", named(&entry.to, titles.state(&entry.to)))
    };
    let finished = if entry.finished { ", finished" } else { "" };
    let _ = writeln!(out, "    {moved}{finished}");
    let role = entry
        .role
        .as_deref()
        .map(|r| format!(" as {}", named(r, titles.role(r))))
        .unwrap_or_default();
    let _ = writeln!(out, "    by {}{role}", entry.actor);
    let line = |out: &mut String, label: &str, text: String| {
        let _ = writeln!(out, "    {label:<10} {text}");
    };
    if let Some(key) = &entry.business_key {
        line(out, "business", key.clone());
    }
    if let Some(parent) = &entry.parent {
        line(out, "parent", parent.clone());
    }
    if let Some(number) = &entry.number {
        line(out, "number", number.clone());
    }
    if !entry.payload.is_empty() {
        line(out, "payload", compact(&entry.payload));
    }
    if !entry.changes.is_empty() {
        line(out, "changes", compact(&entry.changes));
    }
    for guard in &entry.guards {
        let result = if guard.passed { "passed" } else { "failed" };
        line(out, "guard", format!("{}: {result}", guard.guard));
    }
    if let Some(signature) = &entry.signature {
        line(
            out,
            "signature",
            format!(
                "signer {} {} by {}",
                signature.signer + 1,
                named(&signature.role, titles.role(&signature.role)),
                signature.actor
            ),
        );
    }
    if let Some(signers) = &entry.signers {
        let list: Vec<String> = signers.iter().map(|s| signer_name(s, titles)).collect();
        line(out, "signers", list.join(", "));
    }
    if let Some(firing) = &entry.timer {
        let name = firing.title.as_deref().unwrap_or(&firing.id);
        let text = match &firing.refused {
            Some(why) => format!(
                "{name} was due {}; lapsed: {why}",
                time(&firing.due, titles)
            ),
            None => format!("{name} was due {}", time(&firing.due, titles)),
        };
        line(out, "fired", text);
    }
    for timer in &entry.timers_armed {
        line(
            out,
            "timer",
            format!(
                "armed {} due {}",
                named(&timer.event, timer.title.as_deref()),
                time(&timer.due, titles)
            ),
        );
        if let Some(note) = &timer.note {
            line(out, "note", note.clone());
        }
    }
    if !entry.timers_cancelled.is_empty() {
        line(
            out,
            "timer",
            format!("cancelled {}", entry.timers_cancelled.join(", ")),
        );
    }
    for child in &entry.spawned {
        line(
            out,
            "spawned",
            format!(
                "{}{} ({})",
                child.id,
                numbered(child.number.as_deref()),
                child.workflow
            ),
        );
    }
    if let Some(child) = &entry.child {
        line(
            out,
            "child",
            format!("{} finished in {}", child.id, child.state),
        );
    }
    if let Some(key) = &entry.idempotency_key {
        line(out, "key", key.clone());
    }
    line(out, "hash", hash_prefix(&entry.hash).to_string());
}

fn signer_name(signer: &PendingSigner, titles: &Titles) -> String {
    let title = signer
        .title
        .as_deref()
        .or_else(|| titles.role(&signer.role));
    let name = named(&signer.role, title);
    if signer.required {
        name
    } else {
        format!("{name} [skipped]")
    }
}

/// How `show` names the one whose events it lists: `wang (contractor)`.
pub fn viewer(actor: &Actor) -> String {
    format!("{} ({})", actor.id, actor.roles.join(", "))
}

/// `sopflow show`. `viewer` names whoever `available` was computed for (see [`viewer`]; a
/// `--server` command knows only that it is the token's user).
pub fn instance(
    instance: &Instance,
    titles: &Titles,
    viewer: Option<&str>,
    available: Option<&[Available]>,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}  {}",
        instance.id,
        named(&instance.workflow, titles.workflow())
    );
    if let Some(number) = &instance.number {
        let _ = writeln!(out, "  number    {number}");
    }
    let finished = if instance.finished { ", finished" } else { "" };
    let _ = writeln!(
        out,
        "  state     {}{finished}",
        named(&instance.state, titles.state(&instance.state))
    );
    let _ = writeln!(
        out,
        "  step      {}, updated {}, created {}",
        instance.seq,
        time(&instance.updated, titles),
        time(&instance.created, titles)
    );
    if let Some(key) = &instance.business_key {
        let _ = writeln!(out, "  business  {key}");
    }
    if let Some(parent) = &instance.parent {
        let _ = writeln!(out, "  parent    {parent}");
    }
    let _ = writeln!(out, "  version   {}", hash_prefix(&instance.version));
    data(&mut out, &instance.data, titles);
    if let Some(approval) = &instance.approval {
        let _ = writeln!(out, "approval");
        for (i, signer) in approval.signers.iter().enumerate() {
            let signed: Vec<String> = approval
                .signatures
                .iter()
                .filter(|s| s.signer == i)
                .map(|s| format!("signed by {} at {}", s.actor, time(&s.at, titles)))
                .collect();
            let status = if !signed.is_empty() {
                signed.join("; ")
            } else if !signer.required {
                "skipped (its condition does not hold)".to_string()
            } else {
                "waiting".to_string()
            };
            let title = signer
                .title
                .as_deref()
                .or_else(|| titles.role(&signer.role));
            let _ = writeln!(out, "  {}. {}: {status}", i + 1, named(&signer.role, title));
        }
    }
    if !instance.timers.is_empty() {
        let _ = writeln!(out, "timers");
        for timer in &instance.timers {
            let _ = writeln!(
                out,
                "  {} due {}",
                named(&timer.event, timer.title.as_deref()),
                time(&timer.due, titles)
            );
        }
    }
    if !instance.children.is_empty() {
        let _ = writeln!(out, "children");
        for child in &instance.children {
            let status = match &child.finished_in {
                Some(state) => format!("finished in {state}"),
                None => "running".to_string(),
            };
            let _ = writeln!(
                out,
                "  {}{} ({}): {status}",
                child.id,
                numbered(child.number.as_deref()),
                child.workflow
            );
        }
    }
    if let (Some(who), Some(available)) = (viewer, available) {
        if instance.finished {
            let _ = writeln!(out, "{who}: the instance has finished; nothing to fire");
        } else if available.is_empty() {
            let _ = writeln!(out, "{who} may fire nothing now");
        } else {
            let _ = writeln!(out, "{who} may fire");
            for event in available {
                let _ = writeln!(
                    out,
                    "  {} as {}",
                    named(&event.event, event.title.as_deref()),
                    event.role
                );
            }
        }
    }
    out
}

fn data(out: &mut String, data: &Map<String, Value>, titles: &Titles) {
    if data.is_empty() {
        let _ = writeln!(out, "data        (none yet)");
        return;
    }
    let _ = writeln!(out, "data");
    for (key, value) in data {
        let _ = writeln!(
            out,
            "  {} = {}",
            named(key, titles.field(key)),
            compact(value)
        );
    }
}

/// ` (DH-2026-0001)` after an id, for an instance with a readable number.
fn numbered(number: Option<&str>) -> String {
    number.map(|n| format!(" ({n})")).unwrap_or_default()
}

/// `sopflow list`: one line per instance.
pub fn list(instances: &[Instance], titles: &[Titles]) -> String {
    if instances.is_empty() {
        return "no instances\n".to_string();
    }
    let width = |f: fn(&Instance) -> &str, header: &str| {
        instances
            .iter()
            .map(|i| f(i).chars().count())
            .max()
            .unwrap_or(0)
            .max(header.len())
    };
    let id_w = width(|i| &i.id, "ID");
    let wf_w = width(|i| &i.workflow, "WORKFLOW");
    let st_w = width(|i| &i.state, "STATE");
    let time_w = "0000-00-00 00:00:00 +08:00".len();
    // A NUMBER column when any instance listed has a readable number.
    let number_w = instances
        .iter()
        .filter_map(|i| i.number.as_deref())
        .map(|n| n.chars().count().max("NUMBER".len()) + 2)
        .max()
        .unwrap_or(0);
    let number_of = |instance: &Instance, text: Option<&str>| match number_w {
        0 => String::new(),
        w => format!(
            "{:<w$}",
            text.or(instance.number.as_deref()).unwrap_or(""),
            w = w
        ),
    };
    let mut out = String::new();
    let header = instances.first().map(|i| number_of(i, Some("NUMBER")));
    let _ = writeln!(
        out,
        "{:<id_w$}  {}{:<wf_w$}  {:<st_w$}  {:<time_w$}  TITLE",
        "ID",
        header.unwrap_or_default(),
        "WORKFLOW",
        "STATE",
        "UPDATED"
    );
    for instance in instances {
        let title = Titles::pick(titles, &instance.version)
            .state(&instance.state)
            .unwrap_or("");
        let finished = if instance.finished { " (finished)" } else { "" };
        let _ = writeln!(
            out,
            "{:<id_w$}  {}{:<wf_w$}  {:<st_w$}  {:<time_w$}  {title}{finished}",
            instance.id,
            number_of(instance, None),
            instance.workflow,
            instance.state,
            time(&instance.updated, Titles::pick(titles, &instance.version))
        );
    }
    out
}
