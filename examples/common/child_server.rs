#![allow(dead_code)]
//! A `sopflow serve` in a child process, for the load examples that measure the server apart
//! from the clients that load it (its memory, its latency): the example runs itself again
//! with `--child-server DATA USERS SOURCES...`, the child serves on `127.0.0.1:0` with the
//! default limits, prints its address, and stops when its standard input closes.

use anyhow::{Context, bail};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The flag that makes the example a server.
pub const FLAG: &str = "--child-server";

/// Serves as a child if this process was started as one (and then never returns).
pub fn serve_if_child() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) != Some(FLAG) {
        return;
    }
    let code = match serve(&args[2..]) {
        Ok(()) => 0,
        Err(err) => {
            eprintln!("child server: {err:#}");
            1
        }
    };
    std::process::exit(code);
}

fn serve(args: &[String]) -> anyhow::Result<()> {
    let [data, users, sources @ ..] = args else {
        bail!("usage: {FLAG} DATA USERS SOURCES...");
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let users = sopflow::server::auth::Users::load(Path::new(users))?;
        let sources: Vec<PathBuf> = sources.iter().map(PathBuf::from).collect();
        let config = sopflow::engine::Config::new(data).sources(sources.clone());
        let engine = sopflow::engine::Engine::open(config).await?;
        let state = sopflow::server::AppState::new(engine, users, sources);
        let server =
            sopflow::server::Server::bind(state, "127.0.0.1:0".parse().context("an address")?)
                .await?;
        println!("listening {}", server.local_addr()?);
        let stop = async {
            // Standard input closes when the parent is done (or gone).
            let _ = tokio::task::spawn_blocking(|| {
                let mut line = String::new();
                while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {
                    line.clear();
                }
            })
            .await;
        };
        server.run(false, stop).await?;
        Ok(())
    })
}

/// A running child server.
pub struct ChildServer {
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl ChildServer {
    /// Starts this example again as a server over `sources`, with `users`, on a new store in
    /// `data`.
    pub fn start(data: &Path, users: &Path, sources: &[PathBuf]) -> anyhow::Result<ChildServer> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg(FLAG)
            .arg(data)
            .arg(users)
            .args(sources)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the child server")?;
        let stdout = child.stdout.take().context("the child's output")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let Some(addr) = line.trim().strip_prefix("listening ") else {
            bail!("the child server printed {line:?}");
        };
        Ok(ChildServer {
            base: format!("http://{addr}"),
            child,
        })
    }

    /// The child's resident memory now and at its peak (VmRSS, VmHWM), in MiB.
    pub fn memory(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
                .map_or(0.0, |kb| kb / 1024.0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// Stops the child (closing its input) and waits for it.
    pub fn stop(mut self) -> anyhow::Result<()> {
        drop(self.child.stdin.take());
        self.child.wait()?;
        Ok(())
    }
}

/// The nearest-rank percentile of sorted durations.
pub fn percentile(sorted: &[std::time::Duration], p: f64) -> std::time::Duration {
    if sorted.is_empty() {
        return std::time::Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Polls `GET /api/health` every 10 ms until `until`, from `local` (an address of its own, so
/// that no sign-in throttle counts it), on a thread and runtime of its own, so that the load
/// clients' tasks do not delay it; every answer's latency, sorted.
pub fn poll_health(
    base: String,
    local: std::net::IpAddr,
    until: std::time::Instant,
) -> std::thread::JoinHandle<Vec<std::time::Duration>> {
    std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return Vec::new();
        };
        runtime.block_on(async {
            let http = reqwest::Client::builder()
                .local_address(local)
                .build()
                .unwrap_or_default();
            let mut latencies = Vec::new();
            while std::time::Instant::now() < until {
                let began = std::time::Instant::now();
                if http
                    .get(format!("{base}/api/health"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
                {
                    latencies.push(began.elapsed());
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            latencies.sort_unstable();
            latencies
        })
    })
}
