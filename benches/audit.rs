//! The audit readers on a store of 1,000,000 history entries: verifying it, exporting every
//! step as CSV, computing its digest, and the approval chain of one instance out of 100,000.
//!
//! Targets (the audit issue): verify 1,000,000 entries and export 1,000,000 rows, reporting
//! throughput and peak memory, the memory bounded (not growing with the store);
//! `audit/chain_one_of_1m` under 5 ms (a latency distribution over random instances is
//! printed beside criterion's mean). Memory is measured in a fresh process per phase by
//! `examples/audit_load.rs`, not here: criterion's own allocations and the previous
//! benchmarks' would blur it.
//!
//! `cargo bench --bench audit` (about 6 minutes once the store is built; building the 1M
//! store takes about a minute more, once); `cargo bench --bench audit -- --test` runs each
//! benchmark once on a store of 10,000 entries (whatever the names say), in seconds. The
//! walks take seconds each, so criterion warns that 10 samples do not fit in the
//! measurement time: expected, each sample is one walk.
//!
//! The store: 100,000 instances of the shipped `expense_approval` (workflow and rules as
//! shipped), ten entries each by one of five routes (rejections and resubmissions, guards,
//! comments on every approval), made through `Engine::start`/`Engine::fire` from 64
//! clients on a virtual clock that spreads them over March 2026; built once and kept in
//! `target/audit-bench/<N>/` (see `benches/workflows/audit_store.rs`). Every benchmark
//! only reads, so all of them read the cached store itself, opened once.
//!
//! - `audit/verify_1m`: `Engine::verify_store`, every hash chain, every snapshot replayed,
//!   the derived records, the digest; throughput in entries.
//! - `audit/export_1m_csv`: `Engine::export` of every step (every entry here is a person's,
//!   so one row per entry), each row through the real CSV writer (`CsvRows`) into
//!   `std::io::sink()`; throughput in rows.
//! - `audit/digest_1m`: `Engine::store_digest`, the same walk without the checks.
//! - `audit/chain_one_of_1m`: `Engine::approval_chain` of an instance picked at random each
//!   iteration (a prefix read of its ten entries, explained in business words).

#[path = "workflows/audit_store.rs"]
mod audit_store;

use audit_store::{as_of, config, dir_size};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use sopflow::audit::chain::LinkKind;
use sopflow::audit::export::{CsvRows, ExportQuery};
use sopflow::clock::VirtualClock;
use sopflow::engine::Engine;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// `cargo bench -- --test` (CI): a small store, each benchmark once.
fn test_mode() -> bool {
    std::env::args().any(|arg| arg == "--test")
}

/// A small, fixed pseudo-random sequence (xorshift64*), so that runs pick the same instances.
struct Picker(u64);

impl Picker {
    fn next(&mut self, below: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % below
    }
}

fn bench_audit(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let entries = if test_mode() { 10_000 } else { 1_000_000 };
    let built = audit_store::store(&rt, entries);
    eprintln!(
        "\naudit: store of {} entries ({} instances), {:.0} MiB on disk, {}",
        built.entries,
        built.ids.len(),
        dir_size(&built.data()) as f64 / (1024.0 * 1024.0),
        match built.build_time {
            Some(took) => format!(
                "built in {:.1} s ({:.0} entries/s)",
                took.as_secs_f64(),
                built.entries as f64 / took.as_secs_f64()
            ),
            None => "build time not recorded".into(),
        }
    );
    let clock = VirtualClock::new(as_of());
    let began = Instant::now();
    let engine = rt
        .block_on(Engine::open(config(&built.dir, &clock)))
        .expect("the cached store opens (after a change to the store's format, delete target/audit-bench/)");
    eprintln!("audit: Engine::open {:.1?}\n", began.elapsed());

    let mut group = c.benchmark_group("audit");
    // One iteration a sample: each walks the whole store, for seconds.
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(30));

    group.throughput(Throughput::Elements(built.entries));
    group.bench_function("verify_1m", |b| {
        b.iter_custom(|iters| {
            let began = Instant::now();
            for _ in 0..iters {
                let mut problems = 0u64;
                let summary = engine
                    .verify_store(as_of(), &mut |_| problems += 1, &mut |_| {})
                    .expect("verifies");
                assert!(summary.is_clean() && problems == 0, "{summary:?}");
                assert_eq!(summary.entries, built.entries);
            }
            began.elapsed()
        })
    });

    // Every entry of this store is a person's step: one row each.
    group.throughput(Throughput::Elements(built.entries));
    group.bench_function("export_1m_csv", |b| {
        b.iter_custom(|iters| {
            let began = Instant::now();
            for _ in 0..iters {
                let mut csv = CsvRows::new(std::io::sink()).expect("header");
                let summary = engine
                    .export(&ExportQuery::default(), &mut |_| {}, &mut |row| {
                        csv.write(&row)
                    })
                    .expect("exports");
                csv.finish().expect("flushes");
                assert_eq!(summary.rows, built.entries, "{summary:?}");
                assert_eq!(summary.skipped, 0);
            }
            began.elapsed()
        })
    });

    group.throughput(Throughput::Elements(built.entries));
    group.measurement_time(Duration::from_secs(15));
    group.bench_function("digest_1m", |b| {
        b.iter_custom(|iters| {
            let began = Instant::now();
            for _ in 0..iters {
                let digest = engine.store_digest(as_of()).expect("digests");
                assert_eq!(digest.entries, built.entries);
            }
            began.elapsed()
        })
    });

    // The chain of one instance: milliseconds at most, so criterion's usual sampling.
    let chain = |id: &str| {
        rt.block_on(engine.approval_chain(id))
            .expect("the chain of a stored instance")
    };
    let sample = chain(&built.ids[0]);
    assert_eq!(sample.links.len(), audit_store::ENTRIES_PER_INSTANCE);
    assert_eq!(sample.links[0].kind, LinkKind::Start);
    assert!(
        sample.links.iter().any(|l| l.kind == LinkKind::Approval)
            && sample.links.iter().any(|l| l.kind == LinkKind::Rejection)
            && sample.links.iter().any(|l| l.comment.is_some())
            && sample.links.iter().any(|l| !l.guards.is_empty()),
        "a chain with approvals, a rejection, comments and guards: {sample:#?}"
    );
    // Latencies of single chains, each timed alone, instances picked at random.
    let mut picker = Picker(0x9E37_79B9_7F4A_7C15);
    let mut latencies: Vec<Duration> = (0..if test_mode() { 200 } else { 5_000 })
        .map(|_| {
            let id = &built.ids[picker.next(built.ids.len())];
            let began = Instant::now();
            black_box(chain(id));
            began.elapsed()
        })
        .collect();
    let target = Duration::from_millis(5);
    let over = latencies.iter().filter(|t| **t >= target).count();
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    let max = latencies[latencies.len() - 1];
    eprintln!(
        "\naudit: approval_chain of one of {} instances, {} random picks each timed alone: p50 {:.1?}, p99 {:.1?}, p99.9 {:.1?}, max {:.1?}; {over} at or over 5 ms (target < 5 ms: {})\n",
        built.ids.len(),
        latencies.len(),
        at(0.5),
        at(0.99),
        at(0.999),
        max,
        if max < target {
            "met"
        } else if at(0.99) < target {
            "met at p99, not by every pick"
        } else {
            "MISSED"
        }
    );
    group.throughput(Throughput::Elements(1));
    group.sample_size(100);
    group.sampling_mode(SamplingMode::Auto);
    group.warm_up_time(Duration::from_secs(2));
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("chain_one_of_1m", |b| {
        b.iter(|| {
            let id = &built.ids[picker.next(built.ids.len())];
            black_box(chain(id))
        })
    });
    group.finish();
}

criterion_group!(benches, bench_audit);
criterion_main!(benches);
