//! Findings about workflow and rule files: what is wrong, where, and what to do next.
//!
//! Every problem the loader or the validator finds becomes one [`Diagnostic`] with a stable
//! [`Code`]. Codes never change meaning once shipped, so that process owners, CI scripts and
//! editors can rely on them; the README lists them all (`sopflow validate --codes` prints the
//! same table).

use crate::i18n::{Arg, Lang, Text, text};
use serde::Serialize;
use std::fmt;
use std::path::{Path, PathBuf};

/// How bad a finding is. Errors stop a definition from being used; warnings do not.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Stops the workflow from loading.
    Error,
    /// Worth fixing; the workflow still loads.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

macro_rules! codes {
    ($($variant:ident = $code:literal, $sev:ident, $slug:literal, $doc:literal;)*) => {
        /// The stable identity of a kind of finding.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code { $(#[doc = $doc] $variant,)* }

        impl Code {
            /// Every code, in documentation order.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The short code shown to users, for example `E101`.
            pub fn as_str(self) -> &'static str { match self { $(Code::$variant => $code,)* } }

            /// A kebab-case name that says what the code is about.
            pub fn slug(self) -> &'static str { match self { $(Code::$variant => $slug,)* } }

            /// The severity findings of this code have.
            pub fn severity(self) -> Severity { match self { $(Code::$variant => Severity::$sev,)* } }

            /// One sentence on what triggers the code.
            pub fn description(self) -> &'static str { match self { $(Code::$variant => $doc,)* } }
        }
    };
}

codes! {
    Io = "E001", Error, "unreadable-file", "The file cannot be read, or is not UTF-8 text.";
    YamlSyntax = "E002", Error, "yaml-syntax", "The file is not well-formed YAML (including tabs used for indentation).";
    WrongType = "E003", Error, "wrong-type", "A value has the wrong type or an invalid form for its key.";
    DuplicateKey = "E004", Error, "duplicate-key", "A key appears twice in one mapping; YAML would otherwise keep only one of them silently.";
    UnknownKey = "E005", Error, "unknown-key", "A key that the format does not have (usually a typo).";
    MissingKey = "E006", Error, "missing-key", "A required key is absent.";
    EmptyFile = "E007", Error, "empty-file", "The file holds no workflow.";
    ResourceLimit = "E008", Error, "resource-limit", "The file exceeds a safety limit: size, nesting depth, or alias expansion (a \"billion laughs\" document).";
    Duplicate = "E009", Error, "duplicate-definition", "Two files declare the same workflow id, or two rules files have the same name.";
    BadIdentifier = "E010", Error, "bad-identifier", "An identifier (workflow, state, event, role, field, parameter) is not lower snake_case, or uses a reserved name.";
    CalendarYearMissing = "E012", Error, "calendar-year-missing", "A calendar covers a range of years but has no holiday data for one of them; without it every day of that year would wrongly count as a plain weekday.";
    InvalidValue = "E011", Error, "invalid-value", "A value is well-typed but not allowed here (an empty list, both `after` and `at` on a timer, an enum field without values...).";
    UnknownState = "E101", Error, "unknown-state", "A transition, approval, constraint or the `initial` key names a state the workflow does not declare.";
    UnreachableState = "E102", Error, "unreachable-state", "No sequence of events leads from the initial state to this state.";
    NoWayToFinish = "E103", Error, "no-way-to-finish", "No final state can be reached from this state: a dead end, or a closed cycle of states with no exit.";
    FinalStateExits = "E104", Error, "final-state-exits", "A final state has transitions, an approval or timers; a final state ends the instance.";
    AmbiguousTransition = "E105", Error, "ambiguous-transition", "One state has two ways to handle the same event without guards to tell them apart, or an unguarded branch hides the branches after it.";
    TimerEventUnhandled = "E106", Error, "timer-event-unhandled", "A timer fires an event its state does not handle, so the timer could never do anything.";
    NoFinalState = "E107", Error, "no-final-state", "The workflow declares no final state, so no instance can ever finish.";
    MustPassViolated = "E108", Error, "must-pass-violated", "A declared `must_pass` check fails: some path reaches the target state without passing the required state.";
    QuorumUnreachable = "E109", Error, "quorum-unreachable", "An approval can never be completed: no signers, or a quorum larger than the number of signers, or below one.";
    UnknownStep = "E110", Error, "unknown-step", "A constraint names a step (`state.event`) that the workflow does not have.";
    Unfireable = "E111", Error, "unfireable-event", "A transition lists no roles, and no timer or child completion of its state fires its event: nothing can ever take it.";
    NextRolesNobody = "E112", Error, "next-roles-nobody", "A notice is sent to `next_roles` where nobody may act in the state it would read them from: a final state, a state only the engine moves on, or the end of an instance (`on_finish`).";
    UndeclaredRole = "E201", Error, "undeclared-role", "A role is used but not declared under `roles`.";
    UndeclaredField = "E202", Error, "undeclared-field", "A data field is used (in `requires`, a guard, an action...) but not declared under `fields`.";
    UndeclaredParameter = "E203", Error, "undeclared-parameter", "A script reads `params.x` but no parameter `x` is declared.";
    UnknownRule = "E204", Error, "unknown-rule", "A `file::function` reference names a rules file or a function that does not exist.";
    UnknownWorkflow = "E205", Error, "unknown-workflow", "A child workflow that no loaded file declares.";
    BadDuration = "E206", Error, "bad-duration", "A duration that cannot be read, such as `7 workdays` instead of `7 working days`.";
    BadDefault = "E207", Error, "bad-default", "A parameter's default does not match its declared type.";
    UnknownEvent = "E208", Error, "unknown-event", "A field is `required_on` or `optional_on` an event that no transition of the workflow has.";
    UnknownCalendar = "E209", Error, "unknown-calendar", "A workflow, timer, schedule or calendar `extends` names a calendar that no calendar file declares.";
    BadSchedule = "E210", Error, "bad-schedule", "A schedule that cannot recur as written: a weekly schedule without a weekday, a day of the month outside 1-31, a time that is not HH:MM.";
    NotWritable = "E211", Error, "not-writable", "A step is asked for a field it may not write: a transition `requires` it, or a schedule gives it as initial data, but the field does not list the event (or `start`) in `required_on` or `optional_on`.";
    PayloadNeverSupplied = "E212", Error, "payload-never-supplied", "A guard or action reads `payload.x`, but the event it runs on may not write `x`, so the payload never has it.";
    NumberPlaceholder = "E213", Error, "number-unknown-placeholder", "A `number` format has a placeholder other than `{year}`, `{month}`, `{seq}` and `{seq:N}`, or a brace left open.";
    NumberWithoutSeq = "E214", Error, "number-without-seq", "A `number` format has no `{seq}` (two instances would share a number), or has it more than once.";
    NumberWidth = "E215", Error, "number-bad-width", "The width in a `number` format's `{seq:N}` is not a whole number from 1 to 9.";
    NumberUnsafe = "E216", Error, "number-unsafe-character", "A `number` format has a character other than ASCII letters, digits, `-`, `_` and `.`: a space, a slash, a full-width or Chinese character, which a web address would not carry as it is and people would type differently.";
    NoticeWithoutRecipients = "E217", Error, "notice-without-recipients", "A notice's `to:` is empty: it would be rendered and sent to nobody.";
    DuplicateNoticeId = "E218", Error, "duplicate-notice-id", "Two notices of one workflow have the same `id`, which deliveries and subscriptions refer to.";
    ScriptError = "E301", Error, "script-error", "A rhai script does not compile in the sandbox (syntax error, undefined variable, disabled feature such as `eval` or `import`).";
    TypeMismatch = "E302", Error, "type-mismatch", "A script compares a field or parameter with a literal of another type (rhai would quietly answer false), or with a value its enum does not have.";
    RuleSignature = "E303", Error, "rule-signature", "A rule function takes a parameter the engine cannot supply; parameters must be named from data, payload, actor, params, now.";
    RuleTopLevel = "E304", Error, "rule-top-level", "A rules file has code outside functions; it would never run, so only `fn` definitions are allowed.";
    TemplateError = "E305", Error, "template-error", "A notice's `title` or `message` is not a template that renders: a syntax error, an `include` or `import` (templates load no files), a filter given the wrong kind of value, or more work than a notice may take.";
    TemplateUnknownName = "E306", Error, "template-unknown-name", "A notice's template reads a name it is not given: an undeclared field (`data.x`), an unknown name or attribute, or `timer` outside a timer's notice.";
    UnusedRole = "W401", Warning, "unused-role", "A role is declared but no transition or approval uses it.";
    UnusedField = "W402", Warning, "unused-field", "A field is declared but nothing requires, reads or writes it.";
    UnusedRule = "W403", Warning, "unused-rule", "A rule function is never referenced by any workflow (directly or through another rule).";
    UnusedParameter = "W404", Warning, "unused-parameter", "A parameter is declared but no script reads it.";
    ProvisionalCalendar = "W405", Warning, "provisional-calendar", "A calendar year whose holidays are provisional (the official notice was not yet published when the file was written); working-day deadlines in that year may move when it is.";
    FieldNeverSet = "W406", Warning, "field-never-set", "A script reads `data.x` in a state that no path reaches with `x` written (by the start, a payload or an action): it always reads nothing there.";
    RoleNotInList = "W407", Warning, "role-not-in-list", "A workflow names a role that the organisation's role list (`workflows/roles.yaml`) does not have: it has no shared title, and users files cannot be checked against it.";
    RoleTitleDiffers = "W408", Warning, "role-title-differs", "A role's title in a workflow differs from the role list's (or, without a list, from another workflow's): one role, one title.";
    SharedRoleTitle = "W409", Warning, "shared-role-title", "Two roles of the role list have the same title, so people could not tell them apart.";
    SilentGuard = "W410", Warning, "silent-guard", "A person can be refused by a guard that says nothing: no other branch of the event takes the step when it is false, and it neither throws a reason (a rule's `throw \"...\"`) nor has a `guard_message`. The person would read only that a condition does not hold.";
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A place in a source file: 1-based line and column (in characters), and the byte range
/// that an editor or the CLI underlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Span {
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1.
    pub column: u32,
    /// Byte offset of the start, when known.
    pub offset: Option<usize>,
    /// Length in bytes of the underlined text (at least 1 when shown).
    pub len: usize,
}

impl Span {
    /// The start of a file, for findings about a file as a whole.
    pub const START: Span = Span {
        line: 1,
        column: 1,
        offset: Some(0),
        len: 0,
    };

    /// A span known only by line and column.
    pub fn at(line: u32, column: u32) -> Span {
        Span {
            line,
            column,
            offset: None,
            len: 0,
        }
    }

    /// The byte offset of this span in `text`, computed from line and column when the parser
    /// did not give one.
    pub fn byte_offset_in(&self, text: &str) -> usize {
        if let Some(offset) = self.offset {
            return offset.min(text.len());
        }
        let mut offset = 0;
        for (i, line) in text.split_inclusive('\n').enumerate() {
            if i + 1 == self.line as usize {
                let col = (self.column.max(1) - 1) as usize;
                let within = line
                    .char_indices()
                    .nth(col)
                    .map(|(b, _)| b)
                    .unwrap_or(line.trim_end_matches('\n').len());
                return offset + within;
            }
            offset += line.len();
        }
        text.len()
    }
}

/// One finding, ready to be shown to a person or printed as JSON.
///
/// Its message and hint are [`Text`]s, not yet in a language: whoever shows the finding
/// renders them in its reader's language ([`Lang::render`], or [`Diagnostic::record`]);
/// `Display` gives English. The code never changes with the language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Which finding it is; a code's meaning never changes.
    pub code: Code,
    /// Whether it stops the workflow from loading.
    pub severity: Severity,
    /// The file it was found in.
    pub file: PathBuf,
    /// Where in the file.
    pub span: Span,
    /// What is wrong, in the file's words.
    pub message: Text,
    /// What to do about it; every finding has one.
    pub hint: Text,
}

impl Diagnostic {
    /// A finding with the code's own severity.
    pub fn new(
        code: Code,
        file: impl Into<PathBuf>,
        span: Span,
        message: Text,
        hint: Text,
    ) -> Self {
        Diagnostic {
            code,
            severity: code.severity(),
            file: file.into(),
            span,
            message,
            hint,
        }
    }

    /// Whether it stops the workflow from loading.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The JSON shape documented for `sopflow validate --format json`, its message and hint in
    /// `lang`.
    pub fn to_json(&self, lang: Lang) -> serde_json::Value {
        serde_json::to_value(self.record(lang)).unwrap_or(serde_json::Value::Null)
    }

    /// The diagnostic as `sopflow validate --format json` and the API give it, its message and
    /// hint in `lang` (English unless a reader asked for another).
    pub fn record(&self, lang: Lang) -> DiagnosticJson {
        DiagnosticJson {
            code: self.code.as_str().to_string(),
            severity: self.severity,
            file: display_path(&self.file),
            line: self.span.line,
            column: self.span.column,
            message: lang.render(&self.message),
            hint: lang.render(&self.hint),
        }
    }
}

/// A diagnostic as tools read it: one type for the CLI's JSON and the API, so that the API's
/// schema is the shape the CLI prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[schemars(rename = "Diagnostic")]
pub struct DiagnosticJson {
    /// The stable code, for example `E101`: what programs match on, in every language.
    pub code: String,
    /// `error` (the definition is not used) or `warning`.
    pub severity: Severity,
    /// The file, as the command was given it.
    pub file: String,
    /// From 1.
    pub line: u32,
    /// From 1, in characters.
    pub column: u32,
    /// What is wrong: in English, or in the language the reader asked for (`--lang`,
    /// `Accept-Language`).
    pub message: String,
    /// What to do next, in the same language.
    pub hint: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}[{}]: {} (hint: {})",
            display_path(&self.file),
            self.span.line,
            self.span.column,
            self.severity,
            self.code,
            self.message,
            self.hint
        )
    }
}

/// A path as text, replacing bytes that are not UTF-8 rather than failing on them.
pub fn display_path(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// The closest of `candidates` to `word`, if one is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// "did you mean `x`?" when there is a close candidate, else a list of what is allowed, in
/// English (for refusals and errors; findings use [`suggestion_text`]).
pub fn suggestion<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str> + Clone) -> String {
    suggestion_text(word, candidates).to_string()
}

/// [`suggestion`] as a [`Text`], for a finding's hint in its reader's language.
pub fn suggestion_text<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str> + Clone,
) -> Text {
    match did_you_mean(word, candidates.clone()) {
        Some(best) => text!("hint-did-you-mean", name = best),
        None => {
            let all: Vec<&str> = candidates.into_iter().collect();
            if all.is_empty() {
                text!("hint-nothing-declared")
            } else {
                text!("hint-one-of", names = Arg::list(all))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_prefixed_by_severity() {
        let mut seen = std::collections::HashSet::new();
        for code in Code::ALL {
            assert!(seen.insert(code.as_str()), "duplicate code {}", code);
            let prefix = match code.severity() {
                Severity::Error => 'E',
                Severity::Warning => 'W',
            };
            assert!(code.as_str().starts_with(prefix));
        }
    }

    #[test]
    fn byte_offset_counts_characters_not_bytes() {
        let text = "title: 动火证\nid: x\n";
        assert_eq!(Span::at(1, 8).byte_offset_in(text), 7);
        assert_eq!(
            Span::at(2, 5).byte_offset_in(text),
            "title: 动火证\n".len() + 4
        );
    }

    #[test]
    fn suggestions_prefer_close_words() {
        assert_eq!(
            did_you_mean("gaurd", ["guard", "action", "to"]),
            Some("guard")
        );
        assert_eq!(did_you_mean("zzz", ["guard", "action"]), None);
    }
}
