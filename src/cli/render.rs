//! Diagnostics for people: the source line with the mistake underlined, the code, and the hint
//! (drawn by miette), or the JSON shape documented for tools.

use miette::{
    GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteError, MietteSpanContents,
    NamedSource, SourceSpan, SpanContents,
};
use sopflow::diagnostic::{Diagnostic, Severity, display_path};
use sopflow::i18n::Lang;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// One diagnostic with the text it points into, in the shape miette draws, its message and
/// hint in the reader's language.
#[derive(Debug)]
struct Shown<'a> {
    diagnostic: &'a Diagnostic,
    message: String,
    hint: String,
    source: Option<Source>,
    span: SourceSpan,
    lang: Lang,
}

/// A file whose columns count characters, as the JSON output, the console and editors do.
/// miette counts bytes, so on a line with Chinese before the mistake its `file:line:column`
/// would name another column than the rest of sopflow (three per character).
#[derive(Debug)]
struct Source(NamedSource<String>);

impl miette::SourceCode for Source {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let read = self.0.read_span(span, before, after)?;
        let text = self.0.inner();
        let start = read.span().offset();
        let column = text
            .get(..start)
            .map(|before| {
                let line_start = before.rfind('\n').map_or(0, |i| i + 1);
                before[line_start..].chars().count()
            })
            .unwrap_or(read.column());
        let mut contents = MietteSpanContents::new_named(
            self.0.name().to_string(),
            read.data(),
            *read.span(),
            read.line(),
            column,
            read.line_count(),
        );
        if let Some(language) = read.language() {
            contents = contents.with_language(language);
        }
        Ok(Box::new(contents))
    }
}

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.diagnostic;
        match self.lang {
            Lang::En => write!(f, "{}[{}]: {}", d.severity, d.code, self.message),
            // The code's name in Chinese heads the finding; its details follow.
            lang => f.write_str(&lang.text_with(
                "diagnostic-header",
                &[
                    ("severity", &lang.severity(d.severity)),
                    ("code", d.code.as_str()),
                    ("title", &lang.code_title(d.code)),
                    ("message", &self.message),
                ],
            )),
        }
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
        Some(Box::new(&self.hint))
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.source.as_ref()?;
        Some(Box::new(std::iter::once(LabeledSpan::new_with_span(
            Some(match self.lang {
                Lang::En => self.diagnostic.code.slug().to_string(),
                lang => lang.code_title(self.diagnostic.code),
            }),
            self.span,
        ))))
    }
}

/// Renders diagnostics for a terminal or a log, each with its source line underlined.
pub fn human(
    diagnostics: &[Diagnostic],
    texts: &BTreeMap<PathBuf, String>,
    color: bool,
    lang: Lang,
) -> String {
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
                    Some(Source(
                        NamedSource::new(display_path(&diagnostic.file), text.clone())
                            .with_language("yaml"),
                    )),
                    SourceSpan::new(offset.into(), len),
                )
            }
            None => (None, SourceSpan::new(0.into(), 0)),
        };
        let shown = Shown {
            diagnostic,
            message: lang.render(&diagnostic.message),
            hint: lang.render(&diagnostic.hint),
            source,
            span,
            lang,
        };
        if shown.source.is_none() {
            out.push_str(&format!("{location}\n"));
        }
        if handler.render_report(&mut out, &shown).is_err() {
            out.push_str(&format!("{location}: {shown} ({})\n", shown.hint));
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

/// `{"ok": bool, "diagnostics": [...]}`, messages and hints in `lang`.
pub fn json(ok: bool, diagnostics: &[Diagnostic], lang: Lang) -> String {
    let value = serde_json::json!({
        "ok": ok,
        "diagnostics": diagnostics.iter().map(|d| d.to_json(lang)).collect::<Vec<_>>(),
    });
    serde_json::to_string_pretty(&value).unwrap_or_else(|_| "{\"ok\": false}".to_string())
}
