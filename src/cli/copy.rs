//! `sopflow store copy`: a sled store into PostgreSQL (or any store into an empty one), checked
//! by the store digest of both sides.

use sopflow::store::copy::{self, CopyError};
use sopflow::store::{Options, StoreLocation};
use std::path::PathBuf;
use std::process::ExitCode;

/// `sopflow store copy`.
#[derive(Debug, Clone, clap::Args)]
pub struct CopyArgs {
    /// The store to copy: a data folder (read, never changed).
    #[arg(long, value_name = "DIR")]
    pub from: PathBuf,
    /// Where to copy it: a PostgreSQL database (`postgres://user:password@host:port/db`),
    /// created if it is empty, or a new data folder.
    #[arg(long, value_name = "URL|DIR")]
    pub to: StoreLocation,
    /// Copy even into a store that already holds records (a copy fails on any instance the
    /// target already has).
    #[arg(long)]
    pub allow_non_empty: bool,
}

pub fn run(args: &CopyArgs) -> ExitCode {
    let from_location = StoreLocation::Sled(args.from.clone());
    let shown = args.to.redacted();
    let from = match sopflow::store::open(
        &from_location,
        Options {
            create: false,
            ..Options::default()
        },
    ) {
        Ok(store) => store,
        Err(err) => {
            eprintln!("error: cannot open the store to copy: {err}");
            return ExitCode::from(1);
        }
    };
    let to = match sopflow::store::open(
        &args.to,
        Options {
            create: true,
            ..Options::default()
        },
    ) {
        Ok(store) => store,
        Err(err) => {
            eprintln!("error: cannot open the target store: {err}");
            return ExitCode::from(1);
        }
    };
    let bar = super::audit::progress_bar("copying");
    let copied = copy::copy(
        from.as_ref(),
        to.as_ref(),
        &shown,
        args.allow_non_empty,
        &mut |entries| bar.set_position(entries),
    );
    bar.finish_and_clear();
    match copied {
        Ok(copied) => {
            println!(
                "copied {} instance(s), {} entries, {} definition version(s), {} schedule mark(s) and {} session(s) from {} to {shown}",
                copied.instances,
                copied.entries,
                copied.definitions,
                copied.schedule_marks,
                copied.sessions,
                args.from.display(),
            );
            println!(
                "store digest {} on both sides (`sopflow audit verify --digest {}` checks it again)",
                copied.digest.token(),
                copied.digest.token()
            );
            ExitCode::SUCCESS
        }
        Err(err @ CopyError::DigestMismatch { .. }) => {
            eprintln!("error: {err}");
            ExitCode::from(1)
        }
        Err(err) => {
            eprintln!("error: not copied: {err}");
            ExitCode::from(1)
        }
    }
}
