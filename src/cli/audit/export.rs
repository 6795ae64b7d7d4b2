//! `sopflow audit export`: every step a person took that matches the filters, one row each,
//! streamed to standard output or a file as CSV (a header, then one line per step) or JSON
//! (one array, one row per line).
//!
//! `--from` and `--to` take an RFC 3339 time, or a date: a whole day in China Standard Time
//! (Asia/Shanghai, UTC+8, the shipped calendars' zone), so `--from 2026-11-01 --to 2026-11-30`
//! is November in Beijing time, both days included. A progress counter is drawn on standard
//! error when it is a terminal; the count of rows (and of unreadable records skipped) ends
//! on standard error.

use super::super::Format;
use super::super::remote::{Remote, RemoteArgs};
use super::super::runtime::{Failure, StoreArgs, chosen_lang, finish, with_engine_blocking};
use super::{ExportFormat, progress_bar};
use sopflow::audit::export::{
    CsvRows, ExportError, ExportQuery, ExportRow, ExportSummary, JsonRows, parse_bound,
};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Which approval steps to export.
#[derive(Debug, Clone, Default)]
pub(super) struct Filters {
    pub workflow: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub actor: Option<String>,
}

impl Filters {
    fn query(&self) -> Result<ExportQuery, String> {
        let bound = |flag: &str, text: &Option<String>, end: bool| {
            text.as_deref()
                .map(|t| parse_bound(t, end).map_err(|e| format!("{flag}: {e}")))
                .transpose()
        };
        let query = ExportQuery {
            workflow: self.workflow.clone(),
            from: bound("--from", &self.from, false)?,
            to: bound("--to", &self.to, true)?,
            actor: self.actor.clone(),
        };
        if let (Some(from), Some(to)) = (query.from, query.to)
            && from > to
        {
            return Err(format!(
                "--from ({}) is after --to ({}): nothing could match",
                self.from.as_deref().unwrap_or_default(),
                self.to.as_deref().unwrap_or_default()
            ));
        }
        Ok(query)
    }
}

/// Rows written as CSV or JSON, to standard output or a file.
enum Rows {
    Csv(Box<CsvRows<Box<dyn Write>>>),
    Json(JsonRows<Box<dyn Write>>),
}

impl Rows {
    fn open(format: ExportFormat, output: Option<&PathBuf>, bom: bool) -> Result<Rows, String> {
        let mut out: Box<dyn Write> = match output {
            Some(path) => Box::new(std::io::BufWriter::new(
                std::fs::File::create(path)
                    .map_err(|e| format!("cannot create {}: {e}", path.display()))?,
            )),
            None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
        };
        if bom && format == ExportFormat::Csv {
            out.write_all("\u{feff}".as_bytes())
                .map_err(|e| format!("cannot write the export: {e}"))?;
        }
        let opened = match format {
            ExportFormat::Csv => CsvRows::new(out).map(|rows| Rows::Csv(Box::new(rows))),
            ExportFormat::Json => JsonRows::new(out).map(Rows::Json),
        };
        opened.map_err(|e| format!("cannot write the export: {e}"))
    }

    fn write(&mut self, row: &ExportRow) -> std::io::Result<()> {
        match self {
            Rows::Csv(rows) => rows.write(row),
            Rows::Json(rows) => rows.write(row),
        }
    }

    fn finish(self) -> std::io::Result<()> {
        let mut out = match self {
            Rows::Csv(rows) => (*rows).finish()?,
            Rows::Json(rows) => rows.finish()?,
        };
        out.flush()
    }
}

pub(super) fn run(
    filters: Filters,
    format: ExportFormat,
    output: Option<PathBuf>,
    bom: bool,
    store: &StoreArgs,
    remote: &RemoteArgs,
) -> ExitCode {
    let query = match filters.query() {
        Ok(query) => query,
        Err(message) => {
            return finish(Format::Human, Err::<(), _>(Failure::Input(message)), |_| {
                String::new()
            });
        }
    };
    match remote.connect(Format::Json, chosen_lang(None)) {
        Ok(Some(server)) => return run_remote(&server, &filters, format, output, bom),
        Ok(None) => {}
        Err(failure) => return finish(Format::Human, Err::<(), _>(failure), |()| String::new()),
    }
    let bar = progress_bar("exporting");
    // The engine is opened first, so that a missing data folder creates no output file.
    let result = with_engine_blocking(store.read_only(), |engine| {
        let mut rows = match Rows::open(format, output.as_ref(), bom) {
            Ok(rows) => rows,
            Err(message) => return Ok(Err(message)),
        };
        let exported = engine.export(
            &query,
            &mut |scanned| bar.set_position(scanned),
            &mut |row| rows.write(&row),
        );
        match exported {
            Ok(summary) => Ok(rows
                .finish()
                .map(|()| summary)
                .map_err(|e| format!("cannot write the export: {e}"))),
            Err(ExportError::Store(e)) => Err(e.into()),
            Err(ExportError::Sink(e)) => Ok(Err(format!("cannot write the export: {e}"))),
        }
    });
    bar.finish_and_clear();
    let failure = match result {
        Ok(Ok(summary)) => {
            report(&summary, output.as_ref());
            return ExitCode::SUCCESS;
        }
        Ok(Err(message)) => Failure::Input(message),
        Err(failure) => failure,
    };
    finish(Format::Human, Err::<(), _>(failure), |()| String::new())
}

/// The export made by a server (`--server`), written as it arrives: the same rows, in the
/// same format, as a local export.
fn run_remote(
    server: &Remote,
    filters: &Filters,
    format: ExportFormat,
    output: Option<PathBuf>,
    bom: bool,
) -> ExitCode {
    let mut params: Vec<(&str, String)> = [
        ("workflow", &filters.workflow),
        ("from", &filters.from),
        ("to", &filters.to),
        ("actor", &filters.actor),
    ]
    .into_iter()
    .filter_map(|(name, value)| value.clone().map(|v| (name, v)))
    .collect();
    params.push((
        "format",
        match format {
            ExportFormat::Csv => "csv",
            ExportFormat::Json => "json",
        }
        .to_string(),
    ));
    let mut out: Box<dyn Write> = match &output {
        Some(path) => match std::fs::File::create(path) {
            Ok(file) => Box::new(std::io::BufWriter::new(file)),
            Err(e) => {
                let failure = Failure::Input(format!("cannot create {}: {e}", path.display()));
                return finish(Format::Human, Err::<(), _>(failure), |()| String::new());
            }
        },
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    if bom && format == ExportFormat::Csv && out.write_all("\u{feff}".as_bytes()).is_err() {
        let failure = Failure::Input("cannot write the export".into());
        return finish(Format::Human, Err::<(), _>(failure), |()| String::new());
    }
    match server.audit_export(&params, &mut out) {
        Ok(bytes) => {
            let to = output
                .map(|p| format!(" to {}", p.display()))
                .unwrap_or_default();
            eprintln!("exported {bytes} byte(s){to} from the server");
            ExitCode::SUCCESS
        }
        Err(failure) => finish(Format::Human, Err::<(), _>(failure), |()| String::new()),
    }
}

/// The closing count, on standard error.
fn report(summary: &ExportSummary, output: Option<&PathBuf>) {
    let to = output
        .map(|p| format!(" to {}", p.display()))
        .unwrap_or_default();
    eprintln!(
        "exported {} row(s){to} from {} instance(s), {} record(s) read",
        summary.rows, summary.instances, summary.scanned
    );
    if summary.skipped > 0 {
        eprintln!(
            "warning: {} record(s) could not be read and were skipped; `sopflow audit verify` names them",
            summary.skipped
        );
    }
}
