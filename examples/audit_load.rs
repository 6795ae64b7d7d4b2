//! Load on the audit readers: verify and export a store of N history entries, each in a fresh
//! process, and see what they cost in time and in memory.
//!
//! ```sh
//! cargo run --release --example audit_load -- 100000
//! cargo run --release --example audit_load -- 1000000
//! cargo run --release --example audit_load -- 1000000 --cache-mib 32
//! ```
//!
//! `N` is a number of entries (a multiple of 10): the store is the one `benches/audit.rs`
//! measures (N / 10 instances of `expense_approval`, ten entries each, spread over March
//! 2026; see `benches/workflows/audit_store.rs`), taken from `target/audit-bench/<N>/` or
//! built there first (which prints the build time).
//!
//! Then this program runs itself again, once per phase, so that each phase starts in a fresh
//! process that has done nothing but open the engine:
//!
//! - `verify`: [`Engine::verify_store`] over the whole store (every hash chain, every
//!   snapshot replayed from its history, the derived records, the digest);
//! - `export`: [`Engine::export`] of every step (one row per entry: all are people's), each
//!   row through the real CSV writer ([`CsvRows`]) into a writer that counts the bytes and
//!   discards them.
//!
//! Each phase prints its throughput and the process's resident memory (VmRSS, and its peak
//! VmHWM, from `/proc/self/status`) after opening, at every tenth of the walk, and at the
//! end. `--cache-mib M` sets sled's page cache (`Config::cache_bytes`, 128 MiB by default)
//! for the phases, to show which part of the peak is that cache.
//!
//! `--postgres URL` runs the phases on PostgreSQL instead: the sled store is first copied into
//! that database as `sopflow store copy` does (timed, and checked by the digest of both sides),
//! unless the database already holds its copy.
//!
//! ```sh
//! cargo run --release --example audit_load -- 1000000 --postgres postgres://...
//! ```

#[path = "../benches/workflows/audit_store.rs"]
mod audit_store;

#[path = "common/memory.rs"]
mod memory;
use anyhow::{Context, bail, ensure};
use audit_store::{Built, as_of, config, dir_size};
use memory::memory;
use sopflow::audit::export::{CsvRows, ExportQuery};
use sopflow::clock::VirtualClock;
use sopflow::engine::Engine;
use sopflow::store::{Options, StoreLocation};
use std::io::Write;
use std::time::{Duration, Instant};

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Counts what is written and keeps none of it.
#[derive(Default)]
struct Discard {
    bytes: u64,
}

impl Write for Discard {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.bytes += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// VmRSS at every tenth of a walk of `total` records.
struct Samples {
    total: u64,
    next: u64,
    rss: Vec<(u64, f64)>,
    /// When the progress callback was last called: the end of the log walk.
    last: Option<Instant>,
}

impl Samples {
    fn new(total: u64) -> Samples {
        Samples {
            total,
            next: total / 10,
            rss: Vec::new(),
            last: None,
        }
    }
    fn progress(&mut self, done: u64) {
        self.last = Some(Instant::now());
        if done >= self.next && self.next > 0 {
            self.rss.push((done, memory().0));
            while self.next <= done {
                self.next += self.total / 10;
            }
        }
    }
    fn print(&self) {
        let line: Vec<String> = self
            .rss
            .iter()
            .map(|(done, rss)| format!("{}%: {rss:.0}", done * 100 / self.total.max(1)))
            .collect();
        println!("  VmRSS during    {} MiB", line.join(", "));
    }
}

/// One phase, in this (fresh) process.
fn measure(
    rt: &tokio::runtime::Runtime,
    built: &Built,
    phase: &str,
    cache_mib: Option<u64>,
    postgres: Option<&str>,
) -> anyhow::Result<()> {
    let (rss_start, _) = memory();
    let clock = VirtualClock::new(as_of());
    let mut config = config(&built.dir, &clock);
    if let Some(mib) = cache_mib {
        config.cache_bytes = mib * 1024 * 1024;
    }
    if let Some(url) = postgres {
        config = config.store(StoreLocation::Postgres(url.to_string()));
    }
    let began = Instant::now();
    let engine = rt.block_on(Engine::open(config))?;
    let opened = began.elapsed();
    let (rss_open, hwm_open) = memory();
    match postgres {
        Some(_) => println!("{phase}: {} entries, on PostgreSQL", built.entries),
        None => println!(
            "{phase}: {} entries, sled cache {} MiB",
            built.entries,
            cache_mib.unwrap_or(128)
        ),
    }
    println!(
        "  Engine::open    {:8.1} ms; VmRSS {rss_start:.1} MiB before, {rss_open:.1} MiB after (VmHWM {hwm_open:.1} MiB)",
        ms(opened)
    );
    let mut samples = Samples::new(built.entries);
    let began = Instant::now();
    match phase {
        "verify" => {
            let mut problems = Vec::new();
            let summary = engine.verify_store(
                as_of(),
                &mut |problem| {
                    if problems.len() < 10 {
                        problems.push(problem.to_string());
                    }
                },
                &mut |done| samples.progress(done),
            )?;
            let took = began.elapsed();
            let walked = samples.last.map_or(took, |at| at - began);
            ensure!(
                summary.is_clean(),
                "the store does not verify: {problems:#?}"
            );
            ensure!(summary.entries == built.entries, "{summary:?}");
            println!(
                "  verify          {:8.2} s: {} entries, {} instances, {:.0} entries/s; digest {}",
                took.as_secs_f64(),
                summary.entries,
                summary.instances,
                summary.entries as f64 / took.as_secs_f64(),
                summary.digest.token()
            );
            println!(
                "  of which        {:8.2} s walking the log and snapshots, {:.2} s checking the derived records",
                walked.as_secs_f64(),
                (took - walked).as_secs_f64()
            );
        }
        "export" => {
            let mut csv = CsvRows::new(Discard::default())?;
            let summary = engine
                .export(
                    &ExportQuery::default(),
                    &mut |done| samples.progress(done),
                    &mut |row| csv.write(&row),
                )
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let bytes = csv.finish()?.bytes;
            let took = began.elapsed();
            ensure!(
                summary.rows == built.entries && summary.skipped == 0,
                "{summary:?}"
            );
            println!(
                "  export (CSV)    {:8.2} s: {} rows, {:.0} rows/s, {:.0} MiB of CSV ({:.1} MiB/s, discarded)",
                took.as_secs_f64(),
                summary.rows,
                summary.rows as f64 / took.as_secs_f64(),
                bytes as f64 / (1024.0 * 1024.0),
                bytes as f64 / (1024.0 * 1024.0) / took.as_secs_f64()
            );
        }
        other => bail!("no phase `{other}`"),
    }
    samples.print();
    let (rss, hwm) = memory();
    println!("  VmRSS at end    {rss:8.1} MiB");
    println!("  VmHWM (peak)    {hwm:8.1} MiB");
    drop(engine);
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut entries = None;
    let mut phase = None;
    let mut cache_mib = None;
    let mut postgres = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--phase" => phase = Some(args.next().context("--phase needs a name")?.clone()),
            "--postgres" => {
                postgres = Some(args.next().context("--postgres needs a URL")?.clone());
            }
            "--cache-mib" => {
                cache_mib = Some(
                    args.next()
                        .context("--cache-mib needs a number")?
                        .parse::<u64>()
                        .context("--cache-mib needs a number")?,
                )
            }
            count => {
                entries = Some(
                    count
                        .replace('_', "")
                        .parse::<usize>()
                        .with_context(|| format!("`{count}` is not a number of entries"))?,
                )
            }
        }
    }
    let Some(entries) = entries else {
        bail!(
            "usage: audit_load N [--cache-mib M] [--postgres URL]   (N entries, a multiple of 10)"
        );
    };
    ensure!(
        entries > 0 && entries.is_multiple_of(audit_store::ENTRIES_PER_INSTANCE),
        "N must be a positive multiple of {}",
        audit_store::ENTRIES_PER_INSTANCE
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;

    if let Some(phase) = phase {
        // A child: the store is there (the parent made sure).
        let built = audit_store::store(&rt, entries);
        return measure(&rt, &built, &phase, cache_mib, postgres.as_deref());
    }

    let built = audit_store::store(&rt, entries);
    println!(
        "store           {} ({} entries, {} instances)",
        built.data().display(),
        built.entries,
        built.ids.len()
    );
    println!(
        "on disk         {:.1} MiB",
        dir_size(&built.data()) as f64 / (1024.0 * 1024.0)
    );
    if let Some(took) = built.build_time {
        println!(
            "built in        {:.1} s ({:.0} entries/s through Engine::start/fire, 64 clients)",
            took.as_secs_f64(),
            built.entries as f64 / took.as_secs_f64()
        );
    }
    if let Some(url) = &postgres {
        copy_into(&built, url)?;
    }
    drop(rt);
    let exe = std::env::current_exe()?;
    for phase in ["verify", "export"] {
        let mut child = std::process::Command::new(&exe);
        child.arg(entries.to_string()).args(["--phase", phase]);
        if let Some(mib) = cache_mib {
            child.args(["--cache-mib", &mib.to_string()]);
        }
        if let Some(url) = &postgres {
            child.args(["--postgres", url]);
        }
        let status = child.status().context("runs a phase")?;
        ensure!(status.success(), "the {phase} phase failed: {status}");
    }
    Ok(())
}

/// Copies the built store into the database at `url`, as `sopflow store copy` does, unless it
/// already holds histories (this store's copy, from an earlier run: the phases check that
/// every entry is there and verifies).
fn copy_into(built: &Built, url: &str) -> anyhow::Result<()> {
    let target = StoreLocation::Postgres(url.to_string());
    let to = sopflow::store::open(&target, Options::default())?;
    if to.scan_log().next().is_some() {
        println!("PostgreSQL      {} already holds a copy", target.redacted());
        return Ok(());
    }
    let from = sopflow::store::open(
        &StoreLocation::Sled(built.data()),
        Options {
            create: false,
            ..Options::default()
        },
    )?;
    let began = Instant::now();
    let copied = sopflow::store::copy::copy(
        from.as_ref(),
        to.as_ref(),
        &target.redacted(),
        false,
        &mut |_| {},
    )?;
    let took = began.elapsed();
    println!(
        "store copy      {:8.2} s: {} entries into PostgreSQL, {:.0} entries/s, digest {} on both sides",
        took.as_secs_f64(),
        copied.entries,
        copied.entries as f64 / took.as_secs_f64(),
        copied.digest.token()
    );
    Ok(())
}
