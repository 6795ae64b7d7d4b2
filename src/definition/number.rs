//! The readable number a workflow gives its instances (`number: "DH-{year}-{seq:04}"`): what
//! a clerk writes on the permit and searches by.
//!
//! A format is literal text with placeholders:
//! - `{year}`: the year the instance started, four digits;
//! - `{month}`: its month, two digits (`01`-`12`);
//! - `{seq}` or `{seq:N}`: the instance's place in its period, zero-padded to `N` digits
//!   (1-9). With `{year}` in the format the count restarts at 1 each year; without it, it
//!   runs on for the workflow's whole life.
//!
//! The date is the start's, on the workflow's calendar clock (Beijing time for `cn_mainland`).
//! Literal text is limited to ASCII letters, digits, `-`, `_` and `.`, so that a number is a
//! path segment as it stands (`/api/instances/DH-2026-0001`) and is typed the same by anyone.

use std::fmt::Write as _;

/// The widest zero-padding `{seq:N}` takes.
pub const MAX_WIDTH: u32 = 9;

/// A parsed number format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberFormat {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Year,
    Month,
    Seq { width: u32 },
}

/// What is wrong with a number format. Each kind has its own diagnostic code; its `Display` is
/// the English sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NumberFormatError {
    /// A placeholder other than `{year}`, `{month}`, `{seq}`, or a brace left open or closed
    /// alone.
    UnknownPlaceholder {
        /// The placeholder or brace as written, for the message.
        found: String,
    },
    /// No `{seq}` (0), or more than one: how many there are.
    Seq(usize),
    /// `{seq:N}` with `N` not a whole number from 1 to 9.
    BadWidth {
        /// The `{seq:N}` as written.
        found: String,
    },
    /// Characters that do not stand as they are in a URL path (each named once).
    Unsafe {
        /// The characters, each once, in the order they first appear.
        found: Vec<char>,
    },
}

impl NumberFormatError {
    /// What is wrong, for a finding in its reader's language.
    pub fn text(&self) -> crate::i18n::Text {
        use crate::i18n::{Arg, text};
        match self {
            NumberFormatError::UnknownPlaceholder { found } => {
                text!("diag-number-placeholder", found = found)
            }
            NumberFormatError::Seq(0) => text!("diag-number-no-seq"),
            NumberFormatError::Seq(_) => text!("diag-number-seq-twice"),
            NumberFormatError::BadWidth { found } => {
                text!("diag-number-width", found = found, max = MAX_WIDTH)
            }
            NumberFormatError::Unsafe { found } => {
                let named = found.iter().map(|c| match c {
                    ' ' => Arg::from(text!("diag-number-space")),
                    '\u{3000}' => Arg::from(text!("diag-number-full-width-space")),
                    c => Arg::from(format!("`{c}`")),
                });
                text!("diag-number-unsafe", found = Arg::list(named))
            }
        }
    }
}

impl std::fmt::Display for NumberFormatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.text(), f)
    }
}

impl std::error::Error for NumberFormatError {}

impl NumberFormat {
    /// Reads a format, or every problem it has.
    pub fn parse(text: &str) -> Result<NumberFormat, Vec<NumberFormatError>> {
        let mut parts = Vec::new();
        let mut problems = Vec::new();
        let mut literal = String::new();
        let mut unsafe_chars: Vec<char> = Vec::new();
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            match c {
                '{' => {
                    let Some(end) = rest.find('}') else {
                        problems.push(NumberFormatError::UnknownPlaceholder {
                            found: rest.to_string(),
                        });
                        break;
                    };
                    let inside = &rest[1..end];
                    let whole = &rest[..=end];
                    if !literal.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut literal)));
                    }
                    match placeholder(inside, whole) {
                        Ok(part) => parts.push(part),
                        Err(problem) => problems.push(problem),
                    }
                    rest = &rest[end + 1..];
                    continue;
                }
                '}' => problems.push(NumberFormatError::UnknownPlaceholder { found: "}".into() }),
                c if is_safe(c) => literal.push(c),
                c => {
                    if !unsafe_chars.contains(&c) {
                        unsafe_chars.push(c);
                    }
                }
            }
            rest = &rest[c.len_utf8()..];
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        if !unsafe_chars.is_empty() {
            problems.push(NumberFormatError::Unsafe {
                found: unsafe_chars,
            });
        }
        let seqs = parts
            .iter()
            .filter(|p| matches!(p, Part::Seq { .. }))
            .count();
        let bad_seq = problems
            .iter()
            .any(|p| matches!(p, NumberFormatError::BadWidth { .. }));
        if (seqs == 0 && !bad_seq) || seqs > 1 {
            problems.push(NumberFormatError::Seq(seqs));
        }
        if problems.is_empty() {
            Ok(NumberFormat { parts })
        } else {
            Err(problems)
        }
    }

    /// Whether `{seq}` restarts each year (the format has `{year}`).
    pub fn yearly(&self) -> bool {
        self.parts.contains(&Part::Year)
    }

    /// The period `{seq}` counts in for a start in `year`: the year, or `""` for a count that
    /// never restarts.
    pub fn period(&self, year: i32) -> String {
        if self.yearly() {
            year.to_string()
        } else {
            String::new()
        }
    }

    /// The number of the `seq`th instance of its period, started in `year` and `month`.
    pub fn render(&self, year: i32, month: u32, seq: u64) -> String {
        let mut out = String::new();
        for part in &self.parts {
            // Writing to a String does not fail.
            let _ = match part {
                Part::Text(text) => write!(out, "{text}"),
                Part::Year => write!(out, "{year:04}"),
                Part::Month => write!(out, "{month:02}"),
                Part::Seq { width } => write!(out, "{seq:0width$}", width = *width as usize),
            };
        }
        out
    }
}

fn placeholder(inside: &str, whole: &str) -> Result<Part, NumberFormatError> {
    match inside.split_once(':') {
        None => match inside {
            "year" => Ok(Part::Year),
            "month" => Ok(Part::Month),
            "seq" => Ok(Part::Seq { width: 1 }),
            _ => Err(NumberFormatError::UnknownPlaceholder {
                found: whole.to_string(),
            }),
        },
        // `{seq:4}` or, as in printf, `{seq:04}`.
        Some(("seq", width)) => match width.parse::<u32>() {
            Ok(n) if (1..=MAX_WIDTH).contains(&n) && width.bytes().all(|b| b.is_ascii_digit()) => {
                Ok(Part::Seq { width: n })
            }
            _ => Err(NumberFormatError::BadWidth {
                found: whole.to_string(),
            }),
        },
        Some(_) => Err(NumberFormatError::UnknownPlaceholder {
            found: whole.to_string(),
        }),
    }
}

/// Characters that stand as they are in a URL path and read the same to anyone.
fn is_safe(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_permit_number_restarts_each_year_and_pads() {
        let format = NumberFormat::parse("DH-{year}-{seq:04}").expect("valid");
        assert!(format.yearly());
        assert_eq!(format.period(2026), "2026");
        assert_eq!(format.render(2026, 3, 1), "DH-2026-0001");
        assert_eq!(format.render(2026, 3, 12345), "DH-2026-12345");
        let monthly = NumberFormat::parse("BX{year}{month}.{seq:3}").expect("valid");
        assert_eq!(monthly.render(2026, 3, 7), "BX202603.007");
        let plain = NumberFormat::parse("LF-{seq}").expect("valid");
        assert!(!plain.yearly());
        assert_eq!(plain.period(2026), "");
        assert_eq!(plain.render(2026, 1, 42), "LF-42");
    }

    #[test]
    fn mistakes_are_named() {
        let kinds = |text: &str| NumberFormat::parse(text).expect_err("invalid");
        assert!(matches!(
            kinds("DH-{yaer}-{seq}")[0],
            NumberFormatError::UnknownPlaceholder { .. }
        ));
        assert!(matches!(
            kinds("DH-{year}-{seq")[0],
            NumberFormatError::UnknownPlaceholder { .. }
        ));
        assert!(matches!(kinds("DH-{year}")[0], NumberFormatError::Seq(_)));
        assert!(matches!(kinds("{seq}-{seq}")[0], NumberFormatError::Seq(_)));
        for bad in [
            "DH-{seq:+4}",
            "DH-{seq:0}",
            "DH-{seq:10}",
            "DH-{seq:x}",
            "DH-{seq:-1}",
            "DH-{seq:}",
        ] {
            assert_eq!(
                kinds(bad),
                vec![NumberFormatError::BadWidth {
                    found: bad[3..].to_string()
                }],
                "{bad}"
            );
        }
        assert_eq!(
            kinds("动火 动火/{seq}"),
            vec![NumberFormatError::Unsafe {
                found: vec!['动', '火', ' ', '/']
            }]
        );
        assert_eq!(
            kinds("动火 动火/{seq}")[0].to_string(),
            "`动`, `火`, a space, `/` cannot be part of a number: a web address does not carry it as it is"
        );
    }
}
