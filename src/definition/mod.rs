//! Workflow definitions: the format ([`model`]) and reading it from YAML text.
//!
//! Parsing is strict on purpose: YAML that would load "fine" in a lax parser but mean
//! something other than what the process owner wrote (a duplicate `approve:` key silently
//! replacing the first, a misspelt `gaurd:` silently ignored) is an error here, with the line
//! and column and a hint. serde-saphyr does the YAML: unlike the archived `serde_yaml`, it
//! rejects duplicate keys, bounds alias expansion and reports locations for every value.

pub mod duration;
pub mod located;
pub mod model;
pub mod number;
pub mod roles;
pub mod schedule;
mod titles;
mod version;

pub use model::Workflow;
pub use titles::EventTitle;
pub use version::Definition;

use crate::diagnostic::{Code, Diagnostic, Span, suggestion_text as suggestion};
use crate::i18n::{Text, text};
use serde_saphyr::{Error as YamlError, Options};
use std::path::Path;

/// The largest workflow file accepted. Real procedures are a few kilobytes; the limit keeps a
/// stray multi-megabyte file from stalling a reload.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Reads one workflow from YAML text. `file` is used only to label diagnostics.
///
/// Returns the first problem found in the text as a diagnostic: a file that does not parse has
/// no meaningful model to check further.
pub fn parse_workflow(file: &Path, text: &str) -> Result<Workflow, Box<Diagnostic>> {
    parse_yaml(file, text, &WORKFLOW, yaml_options())
}

/// What a kind of YAML file holds, in the words its diagnostics use.
pub(crate) struct Document {
    /// What the file holds, as the messages name it (workflow, calendar, role list...).
    pub noun: fn() -> Text,
    /// What to do with a file that holds nothing.
    pub empty_hint: fn() -> Text,
    /// Where the format of a value is explained.
    pub type_hint: fn() -> Text,
}

const WORKFLOW: Document = Document {
    noun: || text!("diag-document-workflow"),
    empty_hint: || text!("hint-empty-workflow"),
    type_hint: || text!("hint-type-workflow"),
};

/// Reads one document of type `T` strictly (duplicate keys, unknown keys and oversized
/// documents are errors), or returns its first problem as a diagnostic.
pub(crate) fn parse_yaml<T: serde::de::DeserializeOwned>(
    file: &Path,
    text: &str,
    document: &Document,
    options: Options,
) -> Result<T, Box<Diagnostic>> {
    if is_blank(text) {
        return Err(Box::new(Diagnostic::new(
            Code::EmptyFile,
            file,
            Span::START,
            text!("diag-empty-file", document = (document.noun)()),
            (document.empty_hint)(),
        )));
    }
    serde_saphyr::from_str_with_options::<T>(text, options).map_err(|err| {
        Box::new(
            full_width_typo(file, text)
                .unwrap_or_else(|| yaml_error_to_diagnostic(file, &err, document)),
        )
    })
}

/// What a Chinese input method slips into YAML, which the parser reports as something else
/// ("expected mapping start"): a key followed by a full-width colon `：`, or indentation with
/// the full-width space `\u{3000}`. Keys are ASCII identifiers, so a match is never a title.
fn full_width_typo(file: &Path, text: &str) -> Option<Diagnostic> {
    let mut line_start = 0;
    for (index, raw) in text.split_inclusive('\n').enumerate() {
        let line = raw.trim_end_matches(['\n', '\r']);
        let start = line_start;
        line_start += raw.len();
        let at = |byte: usize, len: usize| Span {
            line: u32::try_from(index + 1).unwrap_or(u32::MAX),
            column: u32::try_from(line[..byte].chars().count() + 1).unwrap_or(u32::MAX),
            offset: Some(start + byte),
            len,
        };
        let indent = line.len() - line.trim_start_matches([' ', '\u{3000}']).len();
        if let Some(byte) = line[..indent].find('\u{3000}') {
            return Some(Diagnostic::new(
                Code::YamlSyntax,
                file,
                at(byte, '\u{3000}'.len_utf8()),
                text!("diag-full-width-space"),
                text!("hint-full-width-space"),
            ));
        }
        let rest = line[indent..].strip_prefix("- ").unwrap_or(&line[indent..]);
        let key_len = rest
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count();
        if key_len > 0 && rest[key_len..].trim_start_matches(' ').starts_with('：') {
            let key = &rest[..key_len];
            let colon = line.len() - rest.len() + key_len + rest[key_len..].find('：')?;
            return Some(Diagnostic::new(
                Code::YamlSyntax,
                file,
                at(colon, '：'.len_utf8()),
                text!("diag-full-width-colon", key = key),
                text!("hint-full-width-colon", key = key),
            ));
        }
    }
    None
}

/// A YAML document with nothing but whitespace and comments.
fn is_blank(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .all(|line| line.is_empty() || line.starts_with('#') || line == "---" || line == "...")
}

/// The parser's limits for every YAML document the format reads.
pub(crate) fn yaml_options() -> Options {
    // Generated workflows of 10,000 states stay far below these limits; billion-laughs
    // documents and runaway nesting do not.
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: 48,
            max_aliases: 10_000,
            max_nodes: 2_000_000,
            max_events: 4_000_000,
        },
    }
}

fn yaml_error_to_diagnostic(file: &Path, err: &YamlError, document: &Document) -> Diagnostic {
    let err = err.without_snippet();
    let span = err.location().map_or(Span::START, |at| {
        let span = located::span_of(at);
        Span {
            len: span.len.max(1),
            ..span
        }
    });
    // The parser's own words, kept as a detail inside a sentence of ours.
    let detail = strip_location(&err.to_string());
    let (code, message, hint) = match err {
        YamlError::DuplicateMappingKey { key, .. } => (
            Code::DuplicateKey,
            match key {
                Some(key) => text!("diag-duplicate-key", key = key),
                None => text!("diag-duplicate-key-unnamed"),
            },
            text!("hint-duplicate-key"),
        ),
        YamlError::SerdeUnknownField {
            field, expected, ..
        } => (
            Code::UnknownKey,
            text!("diag-unknown-key", key = field),
            if is_identifier(field) {
                suggestion(field, expected.iter().copied())
            } else {
                // `{to: b, title: 审核通过,归档}`: the comma ended the title, and its rest was
                // read as a key. Keys are English snake_case, so this is almost always that.
                text!("hint-comma-in-flow-title", rest = field)
            },
        ),
        YamlError::SerdeUnknownVariant {
            variant, expected, ..
        } => (
            Code::WrongType,
            text!("diag-unknown-value", value = variant),
            suggestion(variant, expected.iter().copied()),
        ),
        YamlError::SerdeMissingField { field, .. } => (
            Code::MissingKey,
            text!("diag-missing-key", key = *field),
            text!("hint-missing-key", key = *field),
        ),
        YamlError::Budget { .. }
        | YamlError::AliasReplayLimitExceeded { .. }
        | YamlError::AliasExpansionLimitExceeded { .. }
        | YamlError::AliasReplayStackDepthExceeded { .. }
        | YamlError::AliasReplayCounterOverflow { .. } => (
            Code::ResourceLimit,
            text!("diag-yaml-limit", detail = detail),
            text!("hint-yaml-limit"),
        ),
        YamlError::IOError { .. } => (
            Code::Io,
            text!("diag-yaml-unreadable", detail = detail),
            text!("hint-save-as-utf8"),
        ),
        YamlError::ExternalMessage { .. }
        | YamlError::MultipleDocuments { .. }
        | YamlError::UnknownAnchor { .. }
        | YamlError::Eof { .. } => {
            if detail.contains("recursion limit") || detail.contains("nesting") {
                return Diagnostic::new(
                    Code::ResourceLimit,
                    file,
                    span,
                    text!("diag-yaml-limit", detail = detail),
                    text!("hint-yaml-too-deep", document = (document.noun)()),
                );
            }
            let (message, hint) = if detail.contains("tab") {
                (
                    text!("diag-yaml-tab", detail = detail),
                    text!("hint-yaml-tab"),
                )
            } else if matches!(err, YamlError::MultipleDocuments { .. }) {
                (
                    text!("diag-yaml-syntax", detail = detail),
                    text!("hint-yaml-one-document", document = (document.noun)()),
                )
            } else {
                (
                    text!("diag-yaml-syntax", detail = detail),
                    text!("hint-yaml-syntax"),
                )
            };
            (Code::YamlSyntax, message, hint)
        }
        _ => (
            Code::WrongType,
            own_message(&detail).unwrap_or_else(|| text!("diag-yaml-wrong-type", detail = detail)),
            (document.type_hint)(),
        ),
    };
    Diagnostic::new(code, file, span, message, hint)
}

/// The format's own words that reached the parser as a custom error (a day of the month, a
/// time of day), given back in the reader's language.
fn own_message(detail: &str) -> Option<Text> {
    if let Some(day) = detail
        .strip_suffix(schedule::NOT_A_MONTH_DAY)
        .and_then(|rest| rest.trim_end().strip_prefix('`')?.strip_suffix('`'))
    {
        return Some(text!("diag-not-a-month-day", value = day));
    }
    None
}

/// serde-saphyr appends " at line L, column C" to messages; the diagnostic carries those apart.
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) if message[i..].contains("column") => message[..i].to_string(),
        _ => message.to_string(),
    }
}

/// Whether `key` could be a key of the format (ASCII lowercase, digits, underscores), so that
/// an unknown one is a misspelling rather than the rest of a value cut at a comma.
fn is_identifier(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Workflow, Box<Diagnostic>> {
        parse_workflow(Path::new("w.yaml"), text)
    }

    const MINIMAL: &str = "id: w\ntitle: 测试\ninitial: a\nstates:\n  a:\n    on:\n      go: {to: b}\n  b: {final: true}\n";

    #[test]
    fn reads_a_minimal_workflow_with_locations() {
        let w = parse(MINIMAL).expect("parses");
        assert_eq!(w.id.as_str(), "w");
        assert_eq!(w.title, "测试");
        let (name, state) = &w.states.0[0];
        assert_eq!(
            (name.as_str(), name.span.line, name.span.column),
            ("a", 5, 3)
        );
        let branches = state.on.get("go").expect("go");
        assert_eq!(branches.0[0].to.span.line, 7);
        assert_eq!(branches.0[0].to.span.column, 16);
    }

    #[test]
    fn several_branches_are_a_list() {
        let text = MINIMAL.replace(
            "go: {to: b}",
            "go:\n        - {to: b, guard: \"data.x > 1\"}\n        - {to: a}",
        );
        let w = parse(&text).expect("parses");
        assert_eq!(w.states.0[0].1.on.get("go").map(|b| b.0.len()), Some(2));
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let text = MINIMAL.replace("go: {to: b}", "go: {to: b}\n      go: {to: a}");
        let d = parse(&text).expect_err("duplicate");
        assert_eq!(d.code, Code::DuplicateKey);
        assert_eq!(d.span.line, 8);
    }

    #[test]
    fn unknown_keys_get_a_suggestion() {
        let text = MINIMAL.replace("go: {to: b}", "go: {to: b, gaurd: x}");
        let d = parse(&text).expect_err("unknown key");
        assert_eq!(d.code, Code::UnknownKey);
        assert!(
            d.hint.to_string().contains("did you mean `guard`"),
            "{}",
            d.hint
        );
        assert_eq!((d.span.line, d.span.column), (7, 19));
    }

    #[test]
    fn full_width_colons_and_spaces_are_named_at_their_place() {
        let d = parse(&MINIMAL.replace("initial: a", "initial：a")).expect_err("colon");
        assert_eq!(d.code, Code::YamlSyntax);
        assert!(
            d.message.to_string().contains("full-width colon"),
            "{}",
            d.message
        );
        assert!(d.hint.to_string().contains("`initial:`"), "{}", d.hint);
        let line = MINIMAL
            .lines()
            .position(|l| l.starts_with("initial"))
            .expect("line")
            + 1;
        assert_eq!((d.span.line, d.span.column), (line as u32, 8));
        let d = parse(&MINIMAL.replace("  a:\n", "\u{3000}a:\n")).expect_err("space");
        assert!(
            d.message.to_string().contains("full-width space"),
            "{}",
            d.message
        );
        // A full-width colon inside a title is the title's own.
        let titled = MINIMAL.replace("title: 测试", "title: 审批：预算内");
        assert!(parse(&titled).is_ok());
    }

    #[test]
    fn a_comma_in_a_flow_title_is_explained() {
        let text = MINIMAL.replace("go: {to: b}", "go: {to: b, title: 审核通过,归档}");
        let d = parse(&text).expect_err("unknown key");
        assert_eq!(d.code, Code::UnknownKey);
        assert!(d.message.to_string().contains("`归档`"), "{}", d.message);
        assert!(
            d.hint.to_string().contains("put the whole title in quotes"),
            "{}",
            d.hint
        );
    }

    /// The format's own words that pass through the parser (a day of the month that is none)
    /// come back as a text of ours, in either language; the parser's words stay a detail.
    #[test]
    fn the_formats_own_words_come_back_in_either_language() {
        use crate::i18n::Lang;
        let text = format!(
            "{MINIMAL}schedules:\n  monthly:\n    title: 月报\n    every: month\n    day: sometimes\n    at: \"09:00\"\n"
        );
        let d = parse(&text).expect_err("not a day");
        assert_eq!(d.code, Code::WrongType);
        assert_eq!(d.message.id(), "diag-not-a-month-day", "{d}");
        assert!(
            d.message
                .to_string()
                .starts_with("`sometimes` is not a day of the month: write a number"),
            "{d}"
        );
        assert!(
            Lang::Zh
                .render(&d.message)
                .starts_with("`sometimes` 不是一个月中的日子"),
            "{}",
            Lang::Zh.render(&d.message)
        );
        let d = parse(&MINIMAL.replace("id: w", "id: [w]")).expect_err("type");
        assert_eq!(d.message.id(), "diag-yaml-wrong-type");
        let zh = Lang::Zh.render(&d.message);
        assert!(
            zh.starts_with("这个值的类型或写法不符合要求(解析器报告:"),
            "{zh}"
        );
    }

    #[test]
    fn tabs_empty_files_and_bad_types() {
        let d = parse("id: w\n\ttitle: x\n").expect_err("tab");
        assert_eq!(d.code, Code::YamlSyntax);
        assert!(d.hint.to_string().contains("tab"));
        assert_eq!(
            parse("# nothing\n\n").expect_err("empty").code,
            Code::EmptyFile
        );
        let d = parse(&MINIMAL.replace("id: w", "id: [w]")).expect_err("type");
        assert_eq!(d.code, Code::WrongType);
        assert_eq!(d.span.line, 1);
        let d = parse(&MINIMAL.replace("initial: a\n", "")).expect_err("missing");
        assert_eq!(d.code, Code::MissingKey);
    }

    #[test]
    fn alias_bombs_and_deep_nesting_are_stopped() {
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            bomb.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"));
        }
        let d = parse(&bomb).expect_err("bomb");
        assert!(
            matches!(d.code, Code::ResourceLimit | Code::UnknownKey),
            "{d}"
        );
        let deep = format!(
            "id: w\ntitle: {}x{}\n",
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        let d = parse(&deep).expect_err("deep");
        assert!(
            matches!(
                d.code,
                Code::ResourceLimit | Code::WrongType | Code::YamlSyntax
            ),
            "{d}"
        );
    }
}
