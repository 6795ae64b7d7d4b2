//! Strict YAML for calendar files: the same parser and error-to-diagnostic mapping as
//! workflow files ([`crate::definition`]), with a calendar's words and tighter limits.

use crate::definition::{Document, parse_yaml};
use crate::diagnostic::Diagnostic;
use crate::i18n::text;
use serde::de::DeserializeOwned;
use serde_saphyr::Options;
use std::path::Path;

const CALENDAR: Document = Document {
    noun: || text!("diag-document-calendar"),
    empty_hint: || text!("hint-empty-calendar"),
    type_hint: || text!("hint-type-calendar"),
};

/// Reads `text` as one `T`, or the first problem as a diagnostic.
pub(crate) fn parse<T: DeserializeOwned>(file: &Path, text: &str) -> Result<T, Box<Diagnostic>> {
    parse_yaml(file, text, &CALENDAR, options())
}

fn options() -> Options {
    // A calendar is a few hundred lines; these limits only stop hostile documents.
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: 16,
            max_aliases: 1_000,
            max_nodes: 200_000,
            max_events: 400_000,
        },
    }
}
