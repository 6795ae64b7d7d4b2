//! Strict YAML for calendar files: the same parser and error-to-diagnostic mapping as
//! workflow files ([`crate::definition`]), with a calendar's words and tighter limits.

use crate::definition::{Document, parse_yaml};
use crate::diagnostic::Diagnostic;
use serde::de::DeserializeOwned;
use serde_saphyr::Options;
use std::path::Path;

const CALENDAR: Document = Document {
    noun: "calendar",
    empty_hint: "start from calendars/cn_mainland.yaml, or delete the file",
    type_hint: "check the value against the format explained at the top of calendars/cn_mainland.yaml",
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
