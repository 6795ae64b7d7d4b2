//! `sopflow audit replay`: the recorded commands of one instance (or of every instance, one
//! history at a time) run again through the pure step, each difference printed as found.
//! Exit 1 on any difference.

use super::super::Format;
use super::super::runtime::{Failure, StoreArgs, finish, pretty, with_engine};
use sopflow::audit::replay::ReplayReport;
use std::process::ExitCode;

/// What was replayed: the report (for `--all` in human form, without the differences, which
/// were printed as they were found) and the number of differences.
struct Replayed {
    report: ReplayReport,
    differences: u64,
}

/// `instance` is `None` for `--all`.
pub(super) fn run(instance: Option<String>, format: Format, store: &StoreArgs) -> ExitCode {
    let result: Result<Replayed, Failure> =
        with_engine(store.read_only(), async |engine| match &instance {
            Some(id) => {
                let report = engine.replay(id).await?;
                if format == Format::Human {
                    print_differences(&report);
                }
                Ok(Replayed {
                    differences: report.differences.len() as u64,
                    report,
                })
            }
            None => {
                // Human output streams: each instance's differences are printed when found.
                // JSON gathers them into one document.
                let mut gathered = Vec::new();
                let summary = engine
                    .replay_all(&mut |report: &ReplayReport| match format {
                        Format::Human => print_differences(report),
                        Format::Json => gathered.extend(report.differences.iter().cloned()),
                    })
                    .await?;
                Ok(Replayed {
                    report: ReplayReport {
                        instances: summary.instances,
                        entries: summary.entries,
                        differences: gathered,
                        // Human output printed each note with its instance.
                        notes: match format {
                            Format::Json => summary.notes,
                            Format::Human => Vec::new(),
                        },
                    },
                    differences: summary.differences,
                })
            }
        });
    let replayed = match result {
        Ok(replayed) => replayed,
        Err(failure) => return finish(format, Err::<(), _>(failure), |()| String::new()),
    };
    let Replayed {
        report,
        differences,
    } = replayed;
    match format {
        Format::Json => println!("{}", pretty(&report)),
        Format::Human => println!(
            "{}, {}, {}",
            plural(report.instances, "instance replayed", "instances replayed"),
            plural(report.entries, "entry", "entries"),
            plural(differences, "difference", "differences"),
        ),
    }
    if differences == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn print_differences(report: &ReplayReport) {
    for difference in &report.differences {
        println!("{}", difference.message());
    }
    for note in &report.notes {
        println!("note: {note}");
    }
}

pub(super) fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}
