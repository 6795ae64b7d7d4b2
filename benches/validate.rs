//! Loading and validating workflows: the shipped library, and generated workflows of 100,
//! 1,000 and 10,000 states (target: 10,000 states in under 100 ms, growing about linearly).
//!
//! `cargo bench --bench validate`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sopflow::catalog::{self, Sources};
use sopflow::definition::parse_workflow;
use sopflow::script::Sandbox;
use sopflow::validate;
use std::fmt::Write;
use std::hint::black_box;
use std::path::{Path, PathBuf};

/// A workflow of `n` states in the shape of real procedures: a chain of reviews that can
/// send work back, guarded branches (ten distinct guards), a reminder timer on every tenth
/// state, a countersign every fiftieth, and two final states.
fn generated(n: usize) -> String {
    let mut y = String::from(
        "id: generated\ntitle: 生成的流程\nroles:\n  clerk: 服务台人员\n  manager: 主管\n  inspector: 审计\n",
    );
    y.push_str("fields:\n  amount: {type: money, required_on: [next], optional_on: [start]}\n  tier: {type: enum, values: [general, important, hotspot, collective], optional_on: [start]}\n");
    y.push_str("parameters:\n  threshold: {type: money, default: 15000}\ninitial: s0\nstates:\n");
    for i in 0..n {
        let next = if i + 1 == n {
            "done".to_string()
        } else {
            format!("s{}", i + 1)
        };
        let back = format!("s{}", i.saturating_sub(1));
        let _ = writeln!(y, "  s{i}:\n    title: 第{i}步");
        if i % 50 == 49 {
            let _ = writeln!(
                y,
                "    approval:\n      mode: quorum\n      quorum: 2\n      signers: [{{role: clerk}}, {{role: manager}}, {{role: inspector}}]\n      to: {next}\n      on_reject: {{to: {back}, requires: [comment]}}"
            );
            continue;
        }
        let _ = writeln!(y, "    on:\n      next:");
        let _ = writeln!(
            y,
            "        - {{to: {next}, roles: [manager], guard: \"data.amount >= params.threshold + {}\"}}",
            i % 10
        );
        let _ = writeln!(y, "        - {{to: {next}, roles: [clerk]}}");
        let _ = writeln!(
            y,
            "      back: {{to: {back}, roles: [manager], requires: [comment]}}"
        );
        let _ = writeln!(
            y,
            "      cancel: {{to: cancelled, roles: [manager], guard: \"data.tier == \\\"general\\\"\", guard_message: 只有一般事项可以撤销}}"
        );
        if i % 10 == 0 {
            let _ = writeln!(
                y,
                "      remind: {{to: s{i}}}\n    timers:\n      - {{after: 2 working days, fire: remind}}"
            );
        }
    }
    y.push_str("  done: {final: true}\n  cancelled: {final: true}\n");
    y.push_str("constraints:\n  - must_pass: {to: done, via: s1}\n");
    y
}

fn bench_generated(c: &mut Criterion) {
    let sandbox = Sandbox::default();
    let mut group = c.benchmark_group("load_and_validate_generated");
    group.sample_size(20);
    for n in [100usize, 1_000, 10_000] {
        let text = generated(n);
        // The generated workflow must itself be valid, or the figure would measure a failure.
        let report = catalog::build(
            Sources::from_texts(
                vec![(PathBuf::from("generated.yaml"), text.clone())],
                vec![],
            ),
            &sandbox,
        );
        assert!(
            report.diagnostics.is_empty(),
            "{:?}",
            report.diagnostics.first()
        );
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &text, |b, text| {
            b.iter(|| {
                let sources = Sources::from_texts(
                    vec![(PathBuf::from("generated.yaml"), text.clone())],
                    vec![],
                );
                black_box(catalog::build(sources, &sandbox))
            })
        });
    }
    group.finish();
}

/// The validator alone, on workflows already parsed: what the 100 ms target is about.
fn bench_validate_only(c: &mut Criterion) {
    let sandbox = Sandbox::default();
    let rules = Default::default();
    let ids = Default::default();
    let calendars = sopflow::calendar::Calendars::builtin();
    let env = validate::Env {
        sandbox: &sandbox,
        rules: &rules,
        workflows: &ids,
        calendars: &calendars,
    };
    let mut group = c.benchmark_group("validate_generated");
    group.sample_size(20);
    for n in [100usize, 1_000, 10_000] {
        let text = generated(n);
        let file = Path::new("generated.yaml");
        let workflow = parse_workflow(file, &text).expect("generated workflow parses");
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &workflow, |b, workflow| {
            b.iter(|| black_box(validate::check(workflow, file, &text, env)))
        });
    }
    group.finish();
}

fn bench_shipped(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let paths = [root.join("workflows"), root.join("rules")];
    let sandbox = Sandbox::default();
    c.bench_function("load_and_validate_shipped", |b| {
        b.iter(|| {
            let report = catalog::load(&paths, &sandbox).expect("shipped files");
            assert!(!report.has_errors());
            black_box(report)
        })
    });
}

criterion_group!(benches, bench_shipped, bench_validate_only, bench_generated);
criterion_main!(benches);
