//! Notice templates: one minijinja environment, bounded, that loads no files.
//!
//! A notice's `title` and `message` are written by process owners, so rendering one is held
//! to limits whatever it says: strict undefined (a name the context lacks is an error, never
//! an empty string), a fuel budget (instructions and the memory they allocate), a recursion
//! limit, no loader (`include`, `import` and `extends` find nothing), no auto-escaping (the
//! text is plain; channels escape for their own format), and a cap on the characters kept.
//! A missing value (`none`, a field not set yet) prints as nothing.

use chrono::{DateTime, FixedOffset, NaiveDate};
use minijinja::value::{Value, ValueKind};
use minijinja::{AutoEscape, Environment, Error, ErrorKind, UndefinedBehavior};
use std::collections::BTreeSet;
use std::sync::OnceLock;

/// The fuel one render may burn (minijinja's instructions, and about 64 bytes of data each):
/// far more than a notice needs, far less than a loop that runs away.
pub const FUEL: u64 = 20_000;

/// How deep a template may nest blocks and calls.
pub const RECURSION_LIMIT: usize = 32;

/// The most characters a rendered title keeps.
pub const TITLE_LIMIT: usize = 200;

/// The most characters a rendered message keeps.
pub const MESSAGE_LIMIT: usize = 4000;

/// The names a template reads, each with the attributes it has (empty: any, or none to
/// check). `data`'s attributes are the workflow's fields, checked by the validator.
pub const NAMES: &[(&str, &[&str])] = &[
    ("data", &[]),
    ("workflow", &["id", "title"]),
    ("state", &["name", "title"]),
    ("from", &["name", "title"]),
    ("to", &["name", "title"]),
    ("event", &["name", "title"]),
    ("actor", &["id", "role", "role_title"]),
    ("deadlines", &[]),
    ("timer", TIMER_ATTRIBUTES),
    ("number", &[]),
    ("id", &[]),
    ("at", &[]),
    ("link", &[]),
];

/// What a timer and each of the `deadlines` has: its title, its event, when it falls due in
/// Chinese (`2026年3月2日 10:15`) and as RFC 3339.
pub const TIMER_ATTRIBUTES: &[&str] = &["title", "event", "due", "due_iso"];

/// The name only a timer's notice reads.
pub const TIMER: &str = "timer";

/// minijinja's own global functions, which a template may call.
pub const FUNCTIONS: &[&str] = &["range", "dict", "namespace", "debug"];

/// Why a template cannot be used: where in the template (line and column from 1, counted in
/// characters) and minijinja's own words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {detail}")]
pub struct TemplateError {
    /// The line within the template, from 1.
    pub line: u32,
    /// The column within that line, from 1, in characters.
    pub column: u32,
    /// What minijinja said.
    pub detail: String,
}

/// The one environment every notice renders in.
pub fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_fuel(Some(FUEL));
        env.set_recursion_limit(RECURSION_LIMIT);
        env.set_debug(true);
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.set_formatter(|out, state, value| {
            if value.is_none() {
                Ok(())
            } else {
                minijinja::escape_formatter(out, state, value)
            }
        });
        env.add_filter("money", money);
        env.add_filter("date", date);
        env
    })
}

/// `{{ data.amount | money }}`: an amount in yuan with thousands separators and fen,
/// `12,500.00元`; nothing for a missing value.
fn money(value: Value) -> Result<String, Error> {
    if value.is_none() || value.is_undefined() {
        return Ok(String::new());
    }
    let amount = f64::try_from(value.clone()).map_err(|_| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("`money` formats a number, not {}", value.kind()),
        )
    })?;
    let fen = (amount * 100.0).round();
    let negative = fen < 0.0;
    let fen = fen.abs();
    let yuan = (fen / 100.0).trunc();
    let cents = fen - yuan * 100.0;
    let digits = format!("{yuan:.0}");
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if negative { "-" } else { "" };
    Ok(format!("{sign}{grouped}.{cents:02.0}元"))
}

/// `{{ data.inspected_on | date }}`: a date (`2026-03-02`) or a time (RFC 3339) in Chinese,
/// `2026年3月2日` or `2026年3月2日 10:15` (in the time's own offset); nothing for a missing
/// value.
fn date(value: Value) -> Result<String, Error> {
    if value.is_none() || value.is_undefined() {
        return Ok(String::new());
    }
    let text = match value.kind() {
        ValueKind::String => value.as_str().unwrap_or_default().to_string(),
        other => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("`date` formats a date or time written as text, not {other}"),
            ));
        }
    };
    if let Ok(time) = DateTime::parse_from_rfc3339(text.trim()) {
        return Ok(chinese_time(time));
    }
    if let Ok(day) = NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d") {
        return Ok(chinese_date(day));
    }
    Err(Error::new(
        ErrorKind::InvalidOperation,
        format!("`date` cannot read {text:?} as a date or a time"),
    ))
}

/// `2026年3月2日`.
pub fn chinese_date(day: NaiveDate) -> String {
    use chrono::Datelike;
    format!("{}年{}月{}日", day.year(), day.month(), day.day())
}

/// `2026年3月2日 10:15`, in the time's own offset.
pub fn chinese_time(time: DateTime<FixedOffset>) -> String {
    use chrono::Timelike;
    format!(
        "{} {:02}:{:02}",
        chinese_date(time.date_naive()),
        time.hour(),
        time.minute()
    )
}

/// The position of minijinja's error in `source`: its byte range's start when it has one,
/// else its line.
fn locate(source: &str, err: &Error) -> TemplateError {
    let detail = match err.detail() {
        Some(detail) => format!("{}: {detail}", err.kind()),
        None => err.kind().to_string(),
    };
    if let Some(range) = err.range() {
        let (line, column) = line_column(source, range.start);
        return TemplateError {
            line,
            column,
            detail,
        };
    }
    TemplateError {
        line: err.line().and_then(|l| u32::try_from(l).ok()).unwrap_or(1),
        column: 1,
        detail,
    }
}

/// Line and column (from 1, in characters) of a byte offset in `text`.
pub fn line_column(text: &str, offset: usize) -> (u32, u32) {
    let mut line = 1u32;
    let mut column = 1u32;
    for (i, c) in text.char_indices() {
        if i >= offset {
            break;
        }
        if c == '\n' {
            line = line.saturating_add(1);
            column = 1;
        } else {
            column = column.saturating_add(1);
        }
    }
    (line, column)
}

/// The names (and `name.attribute` paths) `source` reads that it does not set itself, or why
/// it is not a template.
pub fn reads(source: &str) -> Result<BTreeSet<String>, TemplateError> {
    let template = environment()
        .template_from_str(source)
        .map_err(|e| locate(source, &e))?;
    Ok(template.undeclared_variables(true).into_iter().collect())
}

/// `source` rendered with `context`, cut to `limit` characters (an ellipsis marks the cut).
pub fn render(source: &str, context: &Value, limit: usize) -> Result<String, TemplateError> {
    let env = environment();
    let template = env
        .template_from_str(source)
        .map_err(|e| locate(source, &e))?;
    let text = template.render(context).map_err(|e| locate(source, &e))?;
    Ok(cut(text.trim(), limit))
}

fn cut(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(json: serde_json::Value) -> Value {
        Value::from(minijinja::value::Serde(&json))
    }

    #[test]
    fn strict_undefined_fails_and_none_prints_nothing() {
        let c = ctx(serde_json::json!({"data": {"a": null, "b": "x"}}));
        assert_eq!(
            render("[{{ data.a }}{{ data.b }}]", &c, 100).unwrap(),
            "[x]"
        );
        let err = render("{{ data.b }}\n {{ nope }}", &c, 100).unwrap_err();
        assert_eq!((err.line, err.column), (2, 5), "{err}");
    }

    #[test]
    fn syntax_errors_are_located() {
        let err = reads("投诉{{ data.x").unwrap_err();
        assert_eq!(err.line, 1);
        assert!(err.column >= 3, "{err}");
        let names = reads("{{ data.level }}{% for d in deadlines %}{{ d.due }}{% endfor %}")
            .expect("parses");
        assert!(names.contains("data.level"));
        assert!(names.contains("deadlines"));
        assert!(
            !names
                .iter()
                .any(|n| n.starts_with('d') && n.contains("due"))
        );
    }

    #[test]
    fn runaway_templates_stop_and_files_are_not_loaded() {
        let c = ctx(serde_json::json!({}));
        assert!(render("{% for i in range(100000) %}x{% endfor %}", &c, 10).is_err());
        assert!(render("{% include \"/etc/passwd\" %}", &c, 10).is_err());
        assert_eq!(render("{{ 'x' * 20 }}", &c, 5).unwrap(), "xxxxx…");
    }

    #[test]
    fn filters_format_money_and_dates_in_chinese() {
        let c = ctx(serde_json::json!({"a": 12500.5, "n": -3, "d": "2026-03-02",
            "t": "2026-03-02T10:05:00+08:00"}));
        assert_eq!(
            render("{{ a|money }} {{ n|money }}", &c, 100).unwrap(),
            "12,500.50元 -3.00元"
        );
        assert_eq!(
            render("{{ d|date }} {{ t|date }}", &c, 100).unwrap(),
            "2026年3月2日 2026年3月2日 10:05"
        );
        assert!(render("{{ 'x'|money }}", &c, 100).is_err());
    }
}
