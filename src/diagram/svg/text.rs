//! Text: measuring its width, breaking it into lines (state titles, edge labels), and escaping
//! it for XML.
//!
//! Text is measured, not rendered: CJK and full-width characters count 1 em, Latin letters
//! about half that. Widths err on the generous side, so text fits in any of the CJK fonts of
//! [`FONT_FAMILY`](super::FONT_FAMILY).

use super::SMALL_SIZE;
use crate::diagram::Edge;

const LABEL_TEXT_MAX: f64 = 184.0;
/// Room for the clock icon before a timer's caption.
const CLOCK_INDENT: f64 = 14.0;

/// How a run of label text is drawn.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Tone {
    /// The event id.
    Event,
    Plain,
    /// A timer's caption.
    Timer,
    /// Secondary facts (children started).
    Note,
}

pub(super) type Line = Vec<(Tone, String)>;

/// Characters drawn one em wide: CJK, kana, hangul, full-width forms, and the few symbols
/// CJK fonts draw full width.
fn is_wide(c: char) -> bool {
    matches!(c as u32,
        0x1100..=0x115F
        | 0x2E80..=0x303E
        | 0x3041..=0x33FF
        | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF
        | 0xA000..=0xA4CF
        | 0xAC00..=0xD7A3
        | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F
        | 0xFF00..=0xFF60
        | 0xFFE0..=0xFFE6
        | 0x1F300..=0x1FAFF
        | 0x20000..=0x3FFFD)
        || matches!(c, '⏱' | '“' | '”' | '‘' | '’' | '…' | '—' | '×' | '→' | '⇒')
}

/// A character's advance in em, rounded up from Noto Sans.
fn advance(c: char) -> f64 {
    if is_wide(c) {
        return 1.0;
    }
    match c {
        ' ' => 0.3,
        'i' | 'j' | 'l' | '.' | ',' | ':' | ';' | '\'' | '|' | '!' => 0.3,
        'f' | 'r' | 't' | '(' | ')' | '[' | ']' | '-' => 0.4,
        'm' | 'w' | 'M' | 'W' | '@' | '%' => 0.9,
        'A'..='Z' => 0.68,
        _ => 0.58,
    }
}

pub(super) fn text_width(text: &str, size: f64) -> f64 {
    text.chars().map(advance).sum::<f64>() * size
}

/// Bold text is a little wider.
fn tone_width(tone: Tone, text: &str, size: f64) -> f64 {
    let width = text_width(text, size);
    if tone == Tone::Event {
        width * 1.06
    } else {
        width
    }
}

pub(super) fn line_width(line: &Line, size: f64) -> f64 {
    line.iter()
        .map(|(tone, text)| tone_width(*tone, text, size))
        .sum::<f64>()
        + indent(line)
}

/// Timer captions hang after a clock icon. The icon is drawn, not a character: no CJK font
/// has `⏱`, and an emoji font may be missing or draw it in colour.
pub(super) fn indent(line: &Line) -> f64 {
    match line.first() {
        Some((Tone::Timer, _)) => CLOCK_INDENT,
        _ => 0.0,
    }
}

/// Closing punctuation never starts a line.
pub(super) fn is_closing(c: char) -> bool {
    "，。、；：！？）》」』】〉,.;:!?)]".contains(c)
}

/// Opening punctuation never ends a line.
pub(super) fn is_opening(c: char) -> bool {
    "（《「『【〈([".contains(c)
}

/// Units a line may break between: single wide characters, Latin runs (split after `_`, `-`
/// and `/`, so identifiers break at their words), and spaces. An opening bracket is glued to
/// what follows it.
fn tokens(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut run = String::new();
    for c in text.chars() {
        if c == ' ' || is_wide(c) {
            if !run.is_empty() {
                out.push(std::mem::take(&mut run));
            }
            out.push(c.to_string());
        } else {
            run.push(c);
            if matches!(c, '_' | '-' | '/') {
                out.push(std::mem::take(&mut run));
            }
        }
    }
    if !run.is_empty() {
        out.push(run);
    }
    let mut glued: Vec<String> = Vec::with_capacity(out.len());
    let mut pending = String::new();
    for token in out {
        if token.chars().count() == 1 && token.chars().all(is_opening) {
            pending.push_str(&token);
        } else {
            glued.push(format!("{pending}{token}"));
            pending.clear();
        }
    }
    if !pending.is_empty() {
        glued.push(pending);
    }
    glued
}

/// `text` broken into lines of at most `max` pixels, at most `max_lines` of them (the last
/// ending in `…` when text was cut). Whitespace, line breaks included, collapses to one space.
pub(super) fn wrap(text: &str, size: f64, max: f64, max_lines: usize) -> Vec<String> {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for token in tokens(&text) {
        if token == " " {
            if !line.is_empty() {
                line.push(' ');
            }
            continue;
        }
        if text_width(&format!("{line}{token}"), size) <= max
            || (token.chars().all(is_closing) && !line.trim().is_empty())
        {
            line.push_str(&token);
            continue;
        }
        if !line.trim().is_empty() {
            lines.push(line.trim_end().to_string());
        }
        line = String::new();
        if text_width(&token, size) <= max {
            line.push_str(&token);
        } else {
            for c in token.chars() {
                if !line.is_empty() && text_width(&format!("{line}{c}"), size) > max {
                    lines.push(std::mem::take(&mut line));
                }
                line.push(c);
            }
        }
    }
    if !line.trim().is_empty() {
        lines.push(line.trim_end().to_string());
    }
    if lines.len() > max_lines {
        lines.truncate(max_lines);
        if let Some(last) = lines.last_mut() {
            *last = ellipsis(last, size, max);
        }
    }
    lines
}

/// Like [`wrap`], but with lines of even length: the narrowest width that still needs no
/// more lines, so that a title does not leave one character alone on its last line.
pub(super) fn wrap_balanced(text: &str, size: f64, max: f64, max_lines: usize) -> Vec<String> {
    let lines = wrap(text, size, max, max_lines);
    if lines.len() < 2 || lines.last().is_some_and(|l| l.ends_with('…')) {
        return lines;
    }
    let (mut low, mut high) = (max / lines.len() as f64, max);
    for _ in 0..12 {
        let middle = (low + high) / 2.0;
        if wrap(text, size, middle, usize::MAX).len() <= lines.len() {
            high = middle;
        } else {
            low = middle;
        }
    }
    wrap(text, size, high, max_lines)
}

/// `text` shortened to fit `max` pixels with a trailing `…`.
fn ellipsis(text: &str, size: f64, max: f64) -> String {
    let mut text = text.trim_end().to_string();
    while !text.is_empty() && text_width(&format!("{text}…"), size) > max {
        text.pop();
    }
    format!("{}…", text.trim_end())
}

/// One line, cut to `max` pixels if it is longer.
fn fit(text: &str, size: f64, max: f64) -> String {
    if text_width(text, size) <= max {
        text.to_string()
    } else {
        ellipsis(text, size, max)
    }
}

/// An edge's label: `event title` on one line when it fits, else the event above the wrapped
/// title; then the timers' captions and the children started.
/// With `titles_only`, the event's id is left out: a titled edge shows its title, an untitled
/// one only its timers and children.
pub(super) fn label_lines(edge: &Edge, titles_only: bool) -> Vec<Line> {
    let event = fit(&edge.event, SMALL_SIZE * 1.06, LABEL_TEXT_MAX);
    let mut lines: Vec<Line> = Vec::new();
    let title = edge
        .title
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty());
    match title {
        Some(title) if titles_only => {
            let title = title.split_whitespace().collect::<Vec<_>>().join(" ");
            for part in wrap_balanced(&title, SMALL_SIZE, LABEL_TEXT_MAX, 3) {
                lines.push(vec![(Tone::Plain, part)]);
            }
        }
        None if titles_only => {}
        Some(title) => {
            let title = title.split_whitespace().collect::<Vec<_>>().join(" ");
            let one = vec![
                (Tone::Event, event.clone()),
                (Tone::Plain, format!(" {title}")),
            ];
            if line_width(&one, SMALL_SIZE) <= LABEL_TEXT_MAX {
                lines.push(one);
            } else {
                lines.push(vec![(Tone::Event, event)]);
                for part in wrap_balanced(&title, SMALL_SIZE, LABEL_TEXT_MAX, 3) {
                    lines.push(vec![(Tone::Plain, part)]);
                }
            }
        }
        None => lines.push(vec![(Tone::Event, event)]),
    }
    if !edge.timers.is_empty() {
        let caption = edge.timers.join(", ");
        for part in wrap_balanced(&caption, SMALL_SIZE, LABEL_TEXT_MAX - CLOCK_INDENT, 2) {
            lines.push(vec![(Tone::Timer, part)]);
        }
    }
    if !edge.spawns.is_empty() {
        let spawns: Vec<String> = edge
            .spawns
            .iter()
            .map(crate::diagram::Spawn::label)
            .collect();
        let note = format!("⇒ {}", spawns.join(", "));
        lines.push(vec![(Tone::Note, fit(&note, SMALL_SIZE, LABEL_TEXT_MAX))]);
    }
    lines
}

/// Text for XML content and attribute values. Characters XML 1.0 cannot hold (most control
/// characters) become spaces.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}
