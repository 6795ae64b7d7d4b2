//! Diagnostics for people: the source line with the mistake underlined, the code, and the hint
//! (drawn by miette), or the JSON shape documented for tools.

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceSpan};
use sopflow::diagnostic::{Diagnostic, Severity, display_path};
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// One diagnostic with the text it points into, in the shape miette draws.
#[derive(Debug)]
struct Shown<'a> {
    diagnostic: &'a Diagnostic,
    source: Option<NamedSource<String>>,
    span: SourceSpan,
}

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}[{}]: {}",
            self.diagnostic.severity, self.diagnostic.code, self.diagnostic.message
        )
    }
}

impl std::error::Error for Shown<'_> {}

impl miette::Diagnostic for Shown<'_> {
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diagnostic.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }
    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        Some(Box::new(&self.diagnostic.hint))
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.source.as_ref()?;
        Some(Box::new(std::iter::once(LabeledSpan::new_with_span(
            Some(self.diagnostic.code.slug().to_string()),
            self.span,
        ))))
    }
}

/// Renders diagnostics for a terminal or a log, each with its source line underlined.
pub fn human(diagnostics: &[Diagnostic], texts: &BTreeMap<PathBuf, String>, color: bool) -> String {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme).with_context_lines(1);
    let mut out = String::new();
    for diagnostic in diagnostics {
        let location = format!(
            "{}:{}:{}",
            display_path(&diagnostic.file),
            diagnostic.span.line,
            diagnostic.span.column
        );
        let (source, span) = match texts.get(&diagnostic.file) {
            Some(text) => {
                let offset = diagnostic.span.byte_offset_in(text);
                let len = underline_len(text, offset, diagnostic.span.len);
                (
                    Some(
                        NamedSource::new(display_path(&diagnostic.file), text.clone())
                            .with_language("yaml"),
                    ),
                    SourceSpan::new(offset.into(), len),
                )
            }
            None => (None, SourceSpan::new(0.into(), 0)),
        };
        let shown = Shown {
            diagnostic,
            source,
            span,
        };
        if shown.source.is_none() {
            out.push_str(&format!("{location}\n"));
        }
        if handler.render_report(&mut out, &shown).is_err() {
            out.push_str(&format!("{diagnostic}\n"));
        }
        out.push('\n');
    }
    out
}

/// How much to underline: the span's own length, else the word starting at `offset`.
fn underline_len(text: &str, offset: usize, len: usize) -> usize {
    let rest = &text[offset.min(text.len())..];
    let line_end = rest.find('\n').unwrap_or(rest.len());
    if len > 0 {
        return len.min(line_end.max(1));
    }
    let word: usize = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '.')
        .map(char::len_utf8)
        .sum();
    word.max(rest.chars().next().map_or(0, char::len_utf8))
        .min(line_end.max(1))
}

/// `{"ok": bool, "diagnostics": [...]}`.
pub fn json(ok: bool, diagnostics: &[Diagnostic]) -> String {
    let value = serde_json::json!({
        "ok": ok,
        "diagnostics": diagnostics.iter().map(Diagnostic::to_json).collect::<Vec<_>>(),
    });
    serde_json::to_string_pretty(&value).unwrap_or_else(|_| "{\"ok\": false}".to_string())
}
