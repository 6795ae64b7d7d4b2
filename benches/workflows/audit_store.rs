//! The store the audit benchmarks read, shared by `benches/audit.rs` and
//! `examples/audit_load.rs` (each includes this file with `#[path]`, so that both build, and
//! find in the cache, exactly the same store).
//!
//! A store of N history entries is N / 10 instances of the shipped `expense_approval`
//! (`workflows/expense_approval.yaml` with `rules/expense.rhai`), each taken through exactly
//! ten entries by one of five routes, in turn:
//!
//! | route | budget, amount | entries after the start |
//! | --- | --- | --- |
//! | 0 | in, >= 15000 | submit, 部门主管 rejects, resubmit, 部门主管, 财务主管, 物业总经理 (first review), 分公司财务负责人, 分公司总经理, 业主方 (final) |
//! | 1 | out, <= 1000 | the same (no 南区董事长 below 1000) |
//! | 2 | in, 200-15000 | submit, 部门主管, 财务主管 rejects, resubmit, 部门主管, 财务主管, 物业总经理, 分公司财务负责人, 分公司总经理 (final) |
//! | 3 | in, <= 200 | submit, 部门主管 rejects, resubmit, 部门主管, 财务主管 rejects, resubmit, 部门主管, 财务主管, 物业总经理 (final) |
//! | 4 | out, > 1000 | submit, 部门主管, 财务主管, 物业总经理, 分公司财务负责人, 分公司总经理, 南区董事长, 业主方 rejects, the applicant withdraws |
//!
//! so every entry kind an auditor reads is there: guards evaluated on submission and on the
//! routing approvals (`expense::request_complete`, `expense::property_gm_is_final`,
//! `expense::branch_gm_is_final`, `expense::needs_chairman`), the routing action, the
//! distinct-actors constraint checked on every approval, and a comment on every approval and
//! rejection. Every step goes through the real [`Engine`] (start and fire, from 64 concurrent
//! clients, each durable before it is answered), on a [`VirtualClock`] that moves from
//! 2026-03-01 to 2026-03-31 as the entries are made, so that the entries spread evenly over
//! March.
//!
//! The store is built once per size and kept in `target/audit-bench/<N>/`: `defs/` (the
//! workflow and rules it was built with), `data/` (the store), `ids.txt` (the instance ids),
//! `built.txt` (how long the build took) and `complete`, written last, holding the recipe
//! (this file's version, the workflow and the rules). A cache whose `complete` differs is
//! rebuilt; after a change to the store's format, delete `target/audit-bench/` by hand.

#![allow(dead_code)]

use chrono::{DateTime, Utc};
use serde_json::json;
use sopflow::clock::{Clock, VirtualClock};
use sopflow::engine::{Config, Engine, Fire, StartRequest};
use sopflow::machine::Actor;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub const WORKFLOW: &str = include_str!("../../workflows/expense_approval.yaml");
pub const RULES: &str = include_str!("../../rules/expense.rhai");

/// Bump when `build` writes something different: part of the `complete` marker.
const RECIPE: &str = "audit-store 1: expense_approval, 5 routes x 10 entries, 64 clients, 2026-03";

/// Every instance's entries, its start included.
pub const ENTRIES_PER_INSTANCE: usize = 10;

/// Concurrent clients while building (as `benches/runtime.rs` measures durable steps).
pub const CLIENTS: usize = 64;

/// When the first entry is made: 2026-03-01 08:00 in Chengdu.
pub fn month_start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T08:00:00+08:00")
        .expect("a valid time")
        .with_timezone(&Utc)
}

/// How long the entries are spread over.
pub fn month() -> chrono::Duration {
    chrono::Duration::days(30)
}

/// After the last entry: the time verifications and digests are made "as of".
pub fn as_of() -> DateTime<Utc> {
    month_start() + month() + chrono::Duration::hours(1)
}

/// The target folder (`target/`, or wherever `CARGO_TARGET_DIR` put this executable).
pub fn target_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_path_buf()))
        .filter(|dir| dir.join("CACHEDIR.TAG").exists())
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

pub fn cache_root() -> PathBuf {
    target_dir().join("audit-bench")
}

/// The engine's configuration for a built store, with sled's default page cache (128 MiB).
pub fn config(dir: &Path, clock: &VirtualClock) -> Config {
    let defs = dir.join("defs");
    Config::new(dir.join("data"))
        .sources(vec![
            defs.join("expense_approval.yaml"),
            defs.join("expense.rhai"),
        ])
        .clock(Arc::new(clock.clone()))
}

/// What the `complete` marker holds.
fn recipe() -> String {
    format!("{RECIPE}\n--- workflow\n{WORKFLOW}\n--- rules\n{RULES}")
}

/// A built store.
pub struct Built {
    pub dir: PathBuf,
    /// Instance ids, in the order they were started.
    pub ids: Vec<String>,
    pub entries: u64,
    /// How long building it took, when it was built (now or earlier).
    pub build_time: Option<Duration>,
}

impl Built {
    pub fn data(&self) -> PathBuf {
        self.dir.join("data")
    }
}

/// The store of `entries` entries, from the cache if it is there, else built now (printing
/// its progress and build time on stderr).
pub fn store(rt: &tokio::runtime::Runtime, entries: usize) -> Built {
    assert!(
        entries > 0 && entries.is_multiple_of(ENTRIES_PER_INSTANCE),
        "a store holds a multiple of {ENTRIES_PER_INSTANCE} entries, not {entries}"
    );
    let instances = entries / ENTRIES_PER_INSTANCE;
    let dir = cache_root().join(entries.to_string());
    let complete = dir.join("complete");
    if std::fs::read_to_string(&complete).is_ok_and(|text| text == recipe())
        && let Ok(ids) = std::fs::read_to_string(dir.join("ids.txt"))
    {
        let ids: Vec<String> = ids.lines().map(str::to_string).collect();
        if ids.len() == instances {
            let build_time = std::fs::read_to_string(dir.join("built.txt"))
                .ok()
                .and_then(|text| text.trim().parse::<f64>().ok())
                .map(Duration::from_secs_f64);
            return Built {
                dir,
                ids,
                entries: entries as u64,
                build_time,
            };
        }
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("removes the stale cached store");
    }
    eprintln!(
        "building an audit store of {entries} entries ({instances} instances of expense_approval) in {}",
        dir.display()
    );
    let began = Instant::now();
    let ids = rt.block_on(build(instances, &dir));
    // sled 0.34 writes its page-table snapshot only when it opens a store: one reopen now, so
    // that every open measured later starts from the same state.
    let clock = VirtualClock::new(as_of());
    drop(
        rt.block_on(Engine::open(config(&dir, &clock)))
            .expect("the new store reopens"),
    );
    let build_time = began.elapsed();
    eprintln!(
        "  built {entries} entries in {:.1} s ({:.0} entries/s, reopen included); {:.0} MiB on disk",
        build_time.as_secs_f64(),
        entries as f64 / build_time.as_secs_f64(),
        dir_size(&dir.join("data")) as f64 / (1024.0 * 1024.0)
    );
    std::fs::write(dir.join("ids.txt"), ids.join("\n")).expect("writes ids");
    std::fs::write(dir.join("built.txt"), build_time.as_secs_f64().to_string())
        .expect("writes the build time");
    std::fs::write(&complete, recipe()).expect("marks the store complete");
    Built {
        dir,
        ids,
        entries: entries as u64,
        build_time: Some(build_time),
    }
}

/// Bytes under a folder.
pub fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| match entry.file_type() {
                    Ok(kind) if kind.is_dir() => dir_size(&entry.path()),
                    _ => entry.metadata().map_or(0, |m| m.len()),
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Moves the virtual clock on by one entry's share of the month before each step. The clock
/// only ever moves forward (`VirtualClock::set` ignores earlier times), so however the 64
/// clients interleave, every instance's entries are in time order.
struct Pacer {
    clock: VirtualClock,
    made: AtomicU64,
    total: u64,
}

impl Pacer {
    fn tick(&self) {
        let made = self.made.fetch_add(1, Ordering::Relaxed);
        let millis = month().num_milliseconds() as u64 * made / self.total;
        self.clock
            .set(month_start() + chrono::Duration::milliseconds(millis as i64));
    }
}

const DEPARTMENTS: [&str; 6] = ["客服部", "工程部", "保安部", "保洁部", "财务部", "招商部"];
const ITEMS: [&str; 8] = [
    "办公用品",
    "玻璃清洁费",
    "设备维修",
    "电梯大修",
    "绿化养护",
    "消防器材更换",
    "中央空调清洗",
    "监控系统升级",
];

/// Someone in a role: a few dozen people per role, so actors repeat across instances as they
/// do in a real centre, and never across roles (the distinct-actors constraint holds).
fn person(role: &str, i: usize, pool: usize) -> Actor {
    Actor::new(format!("{role}.{:02}", i % pool), [role])
}

/// Each route's budget type and amount for instance `i`.
fn claim(route: usize, i: usize) -> (&'static str, f64) {
    let cents = (i % 100) as f64 / 100.0;
    match route {
        0 => ("in", 15_000.0 + (i * 37 % 60_000) as f64 + cents),
        1 => ("out", 100.0 + (i * 13 % 900) as f64 + cents),
        2 => ("in", 201.0 + (i * 31 % 14_700) as f64 + cents),
        3 => ("in", 20.0 + (i * 7 % 180) as f64 + cents),
        _ => ("out", 1_001.0 + (i * 41 % 40_000) as f64 + cents),
    }
}

/// Takes instance `i` through its route: ten entries.
async fn run_instance(engine: &Engine, pacer: &Pacer, i: usize) -> String {
    let route = i % 5;
    let (budget, amount) = claim(route, i);
    let department = DEPARTMENTS[i % DEPARTMENTS.len()];
    let item = ITEMS[(i / 5) % ITEMS.len()];
    let applicant = person("applicant", i, 97);
    let dept_head = person("dept_head", i, 12);
    let finance = person("finance_supervisor", i, 5);
    let property_gm = person("property_gm", i, 3);
    let branch_finance = person("branch_finance_head", i, 3);
    let branch_gm = person("branch_gm", i, 2);
    let chairman = person("south_region_chairman", i, 1);
    let landlord = person("landlord", i, 4);

    let request = |comment: &str| {
        json!({
            "department": department,
            "expense_item": item,
            "amount": amount,
            "budget_type": budget,
            "comment": comment,
        })
    };
    let approve =
        |actor: &Actor, comment: &str| Fire::new("approve", actor.clone()).comment(comment);
    pacer.tick();
    let started = engine
        .start(
            "expense_approval",
            StartRequest::new(applicant.clone())
                .business_key(format!("EXP-2026-{:07}", i + 1))
                .idempotency_key(format!("audit-bench-start-{i}")),
        )
        .await
        .expect("starts");
    let id = started.instance.id;

    let submit = Fire::new("submit", applicant.clone()).payload(request(&format!(
        "{department}{item}费用申请,金额{amount:.2}元,附发票及明细"
    )));
    let resubmit = || {
        Fire::new("resubmit", applicant.clone())
            .payload(request("已按审核意见更正发票抬头并补充明细,重新提交"))
    };
    let reject = |actor: &Actor, comment: &str| Fire::new("reject", actor.clone()).comment(comment);

    let mut steps: Vec<Fire> = vec![submit];
    let dept_ok = approve(&dept_head, "情况属实,同意报销");
    let finance_ok = approve(&finance, "预算科目核对无误,发票真实有效");
    let gm_ok = approve(&property_gm, "同意");
    let branch_finance_ok = approve(&branch_finance, "已复核,同意");
    let branch_gm_ok = approve(&branch_gm, "同意支付");
    match route {
        0 | 1 => steps.extend([
            reject(&dept_head, "发票抬头与公司名称不符,请更正后重新提交"),
            resubmit(),
            dept_ok,
            finance_ok,
            gm_ok,
            branch_finance_ok,
            branch_gm_ok,
            approve(&landlord, "业主方审批同意"),
        ]),
        2 => steps.extend([
            dept_ok.clone(),
            reject(&finance, "缺少费用明细,请补充"),
            resubmit(),
            dept_ok,
            finance_ok,
            gm_ok,
            branch_finance_ok,
            branch_gm_ok,
        ]),
        3 => steps.extend([
            reject(&dept_head, "请附采购清单"),
            resubmit(),
            dept_ok.clone(),
            reject(&finance, "发票金额与申请金额不一致"),
            resubmit(),
            dept_ok,
            finance_ok,
            gm_ok,
        ]),
        _ => steps.extend([
            dept_ok,
            finance_ok,
            gm_ok,
            branch_finance_ok,
            branch_gm_ok,
            approve(&chairman, "预算外支出,报业主方审批"),
            reject(&landlord, "本年度预算外支出已超限额,不予批准"),
            Fire::new("withdraw", applicant.clone()).comment("业主方不予批准,撤回申请"),
        ]),
    }
    assert_eq!(steps.len() + 1, ENTRIES_PER_INSTANCE);
    let last = steps.len() - 1;
    for (n, step) in steps.into_iter().enumerate() {
        pacer.tick();
        let event = step.event.clone();
        let outcome = engine
            .fire(&id, step)
            .await
            .unwrap_or_else(|e| panic!("route {route}, step {n} ({event}) of {id}: {e}"));
        if n == last {
            let expected = if route == 4 { "withdrawn" } else { "approved" };
            assert_eq!(
                outcome.instance.state, expected,
                "route {route} ends in {expected}"
            );
            assert!(outcome.instance.finished);
        }
    }
    id.to_string()
}

/// Runs `instances` instances through their routes from 64 clients and checkpoints.
async fn build(instances: usize, dir: &Path) -> Vec<String> {
    let defs = dir.join("defs");
    std::fs::create_dir_all(&defs).expect("defs folder");
    std::fs::write(defs.join("expense_approval.yaml"), WORKFLOW).expect("writes the workflow");
    std::fs::write(defs.join("expense.rhai"), RULES).expect("writes the rules");
    let clock = VirtualClock::new(month_start());
    let engine = Engine::open(config(dir, &clock))
        .await
        .expect("engine opens");
    assert!(
        !engine.load_report().has_errors() && engine.definition_of("expense_approval").is_some(),
        "expense_approval must load: {:?}",
        engine.load_report().diagnostics
    );
    let pacer = Arc::new(Pacer {
        clock: clock.clone(),
        made: AtomicU64::new(0),
        total: (instances * ENTRIES_PER_INSTANCE) as u64,
    });
    let began = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let report_every = (instances / 10).max(1);
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let engine = engine.clone();
            let next = next.clone();
            let pacer = pacer.clone();
            tokio::spawn(async move {
                let mut ids = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= instances {
                        return ids;
                    }
                    ids.push((i, run_instance(&engine, &pacer, i).await));
                    if (i + 1).is_multiple_of(report_every) {
                        let secs = began.elapsed().as_secs_f64();
                        let made = (i + 1) * ENTRIES_PER_INSTANCE;
                        eprintln!(
                            "  {made:>9} entries in {secs:6.1} s ({:.0}/s), clock at {}",
                            made as f64 / secs,
                            pacer.clock.now()
                        );
                    }
                }
            })
        })
        .collect();
    let mut ids = Vec::with_capacity(instances);
    for task in tasks {
        ids.extend(task.await.expect("client finishes"));
    }
    ids.sort_unstable_by_key(|(i, _)| *i);
    engine.checkpoint().await.expect("checkpoints");
    ids.into_iter().map(|(_, id)| id).collect()
}
