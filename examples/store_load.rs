//! Acknowledged steps on each store: hot-work permits driven through the engine by 1, 16 and
//! 64 concurrent clients on sled, on PostgreSQL with one node, and on PostgreSQL with two
//! nodes (two engines, each with its own store, pool and committer, on one database, as two
//! `sopflow serve` processes would be), every step durable before it is answered.
//!
//! ```sh
//! bash benches/store-compare.sh            # a throwaway server, pgbench beside it, this example
//! cargo run --release --example store_load -- --postgres postgres://postgres@127.0.0.1:5432/postgres
//! cargo run --release --example store_load -- --postgres URL --clients 1,16 --seconds 5 --nodes 1,2
//! ```
//!
//! The workload is `examples/server_load.rs`'s without HTTP (`benches/workflows/permit_load.rs`):
//! each client starts a permit and takes it through its 7 steps, then starts the next. With
//! two nodes, a client's steps go round the nodes, so that every permit is moved by both and
//! each node reads what the other wrote. Each level of PostgreSQL gets a database of its own
//! on the server given (`sopflow_load_*`, dropped afterwards).
//!
//! For one node at one client it also says what a step costs the database, from the server's
//! own statistics: transactions committed and rows written per step (`pg_stat_database`), and
//! statements per step when the server loads `pg_stat_statements` (the compare script starts
//! one that does). Opening the engines (migrations, loading the definitions) is measured on its
//! own and taken off.

#[path = "common/load.rs"]
mod load;
#[path = "../benches/workflows/permit_load.rs"]
mod permit_load;

use anyhow::Context;
use load::{Measured, Stepper, micros, run};
use permit_load::EngineDriver;
use sopflow::engine::Engine;
use sopflow::store::StoreLocation;
use std::time::Duration;

impl Stepper for EngineDriver {
    fn step(&mut self) -> impl std::future::Future<Output = ()> + Send {
        EngineDriver::step(self)
    }
}

/// `server`'s URL naming the database `name` instead.
fn with_database(server: &str, name: &str) -> String {
    let start = server.find("://").map_or(0, |at| at + 3);
    let rest = &server[start..];
    let authority_end = rest.find(['/', '?']).map_or(server.len(), |at| start + at);
    let query = server[authority_end..]
        .find('?')
        .map(|at| &server[authority_end + at..])
        .unwrap_or("");
    format!("{}/{name}{query}", &server[..authority_end])
}

/// A connection to the server's maintenance database, for making databases and reading the
/// server's statistics.
struct Admin {
    client: tokio_postgres::Client,
}

/// What the server counted for one database.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    transactions: i64,
    rows: i64,
    statements: Option<i64>,
}

impl std::ops::Sub for Counts {
    type Output = Counts;
    fn sub(self, before: Counts) -> Counts {
        Counts {
            transactions: self.transactions - before.transactions,
            rows: self.rows - before.rows,
            statements: self.statements.zip(before.statements).map(|(a, b)| a - b),
        }
    }
}

impl Admin {
    async fn connect(server: &str) -> anyhow::Result<Admin> {
        let (client, connection) = tokio_postgres::connect(server, tokio_postgres::NoTls)
            .await
            .context("connecting to the PostgreSQL server given with --postgres")?;
        tokio::spawn(connection);
        // Statement counts need the extension; without it they are not reported.
        let _ = client
            .batch_execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            .await;
        Ok(Admin { client })
    }

    async fn fresh_database(&self, name: &str) -> anyhow::Result<()> {
        self.drop_database(name).await?;
        self.client
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .with_context(|| format!("creating database {name}"))
    }

    async fn drop_database(&self, name: &str) -> anyhow::Result<()> {
        self.client
            .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .await
            .with_context(|| format!("dropping database {name}"))
    }

    /// What the server has counted for `database` so far (its backends report when they go
    /// idle or exit; call after the engines are closed).
    async fn counts(&self, database: &str) -> anyhow::Result<Counts> {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let row = self
            .client
            .query_one(
                "SELECT xact_commit, tup_inserted + tup_updated + tup_deleted \
                 FROM pg_stat_database WHERE datname = $1",
                &[&database],
            )
            .await
            .context("reading pg_stat_database")?;
        let statements = self
            .client
            .query_one(
                "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements \
                 WHERE dbid = (SELECT oid FROM pg_database WHERE datname = $1)",
                &[&database],
            )
            .await
            .ok()
            .map(|row| row.get::<_, i64>(0));
        Ok(Counts {
            transactions: row.get(0),
            rows: row.get(1),
            statements,
        })
    }
}

/// `nodes` engines on one fresh database `name`.
async fn nodes(
    admin: &Admin,
    server: &str,
    name: &str,
    nodes: usize,
) -> anyhow::Result<Vec<Engine>> {
    admin.fresh_database(name).await?;
    let url = with_database(server, name);
    let mut engines = Vec::new();
    for _ in 0..nodes {
        engines.push(permit_load::engine_at(StoreLocation::Postgres(url.clone())).await);
    }
    Ok(engines)
}

/// Closes engines: their stores close when the last handle goes, and with them their
/// connections, whose server processes then report their statistics.
fn close(engines: Vec<Engine>) {
    drop(engines);
}

fn main() -> anyhow::Result<()> {
    let mut server = std::env::var("SOPFLOW_TEST_POSTGRES").ok();
    let mut node_counts = vec![1, 2];
    let (budget, clients) = load::parse_args(
        |flag, value| match flag {
            "--postgres" => {
                server = Some(value);
                Ok(true)
            }
            "--nodes" => {
                node_counts = value
                    .split(',')
                    .map(|n| n.trim().parse::<usize>())
                    .collect::<Result<_, _>>()
                    .context("--nodes: numbers separated by commas, such as 1,2")?;
                Ok(true)
            }
            _ => Ok(false),
        },
        "--postgres URL, --nodes 1,2, --steps N, --seconds S, --clients 1,16,64",
    )?;
    if cfg!(debug_assertions) {
        eprintln!("note: a debug build; run with --release for figures worth keeping");
    }
    let server = server.context(
        "give a PostgreSQL server with --postgres postgres://... (or SOPFLOW_TEST_POSTGRES); `bash .ci/postgres start DIR` makes a throwaway one",
    )?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("a tokio runtime")?;
    let users = permit_load::users();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    eprintln!(
        "{cores} core(s); per level at most {} steps or {:?}, whichever first",
        budget.steps, budget.time
    );
    let admin = rt.block_on(Admin::connect(&server))?;
    let mut rows: Vec<(String, usize, Measured)> = Vec::new();
    let mut cost = None;
    for &n in &clients {
        let sled = rt.block_on(async {
            let dir = tempfile::tempdir().expect("a temporary folder");
            let engine = permit_load::engine(dir.path()).await;
            let measured = run(n, budget, |_| EngineDriver::new(engine.clone(), &users)).await;
            drop(engine);
            measured
        });
        eprintln!("{n:>3} client(s), sled: {} steps", sled.steps);
        rows.push(("sled".into(), n, sled));
        for &count in &node_counts {
            let name = format!("sopflow_load_{count}_{n}");
            let measured = rt.block_on(async {
                // What opening and closing the engines alone costs the database.
                let opened = nodes(&admin, &server, &name, count).await?;
                close(opened);
                let opening = admin.counts(&name).await?;
                let engines = nodes(&admin, &server, &name, count).await?;
                let before = admin.counts(&name).await?;
                let measured = run(n, budget, |client| {
                    EngineDriver::across(engines.clone(), client, &users)
                })
                .await;
                close(engines);
                let after = admin.counts(&name).await?;
                admin.drop_database(&name).await?;
                anyhow::Ok((measured, after - before - opening))
            })?;
            let (measured, counts) = measured;
            eprintln!(
                "{n:>3} client(s), PostgreSQL, {count} node(s): {} steps",
                measured.steps
            );
            if count == 1 && n == 1 {
                cost = Some((counts, measured.steps));
            }
            let label = format!(
                "PostgreSQL, {count} node{}",
                if count == 1 { "" } else { "s" }
            );
            rows.push((label, n, measured));
        }
    }
    println!("| store | clients | steps/s | p50 | p99 |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for (store, n, m) in &rows {
        println!(
            "| {store} | {n} | {:.0} | {} | {} |",
            m.per_second(),
            micros(m.percentile(50.0)),
            micros(m.percentile(99.0))
        );
    }
    if let Some((counts, steps)) = cost
        && steps > 0
    {
        let per = |x: i64| x as f64 / steps as f64;
        println!();
        println!(
            "one step on PostgreSQL (one node, one client, {steps} steps): {:.2} transactions, {:.2} rows written{}",
            per(counts.transactions),
            per(counts.rows),
            counts.statements.map_or_else(
                || " (statements: load pg_stat_statements to count them)".to_string(),
                |s| format!(", {:.2} statements", per(s))
            )
        );
    }
    Ok(())
}
