//! A sign-in flood against a server in a child process: 64 concurrent clients posting wrong
//! passwords for 30 s, while one more client asks `GET /api/health` every 10 ms.
//!
//! ```sh
//! cargo run --release --example signin_flood                        # the worst case
//! cargo run --release --example signin_flood -- --same-client       # one address, one user
//! cargo run --release --example signin_flood -- --seconds 10 --clients 16
//! ```
//!
//! By default every flooding client connects from an address of its own (127.0.0.2 and on:
//! all of 127.0.0.0/8 is this machine) and tries a new made-up user name each time, so that
//! neither throttle stops it and every attempt reaches the password pool: what is measured is
//! the pool's bound. `--same-client` floods from one address as one user, as a single
//! attacker would, and the throttles answer. Each client takes the sign-in form once (its
//! cookie and token, as a browser does) and posts it again and again.
//!
//! Printed: the answers by status, `/api/health` p50/p99/max during the flood, and the
//! server's resident memory (VmRSS) at start, its peak (VmHWM) and 5 s after the flood.
//! Targets: peak under 200 MiB, health p99 under 20 ms.

#[path = "common/child_server.rs"]
mod child_server;

use anyhow::Context;
use child_server::{ChildServer, percentile, poll_health};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

struct Options {
    seconds: u64,
    clients: usize,
    same_client: bool,
}

fn options() -> anyhow::Result<Options> {
    let mut options = Options {
        seconds: 30,
        clients: 64,
        same_client: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => options.seconds = args.next().context("--seconds N")?.parse()?,
            "--clients" => options.clients = args.next().context("--clients N")?.parse()?,
            "--same-client" => options.same_client = true,
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    Ok(options)
}

/// The sign-in form's cookie and token.
async fn form(http: &reqwest::Client, base: &str) -> anyhow::Result<(String, String)> {
    let response = http.get(format!("{base}/login")).send().await?;
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("sopflow_login="))
        .and_then(|v| v.split(';').next())
        .context("the form's cookie")?
        .to_string();
    let page = response.text().await?;
    let marker = "name=\"_login\" value=\"";
    let at = page.find(marker).context("the form's token")? + marker.len();
    let token = page[at..].split('"').next().unwrap_or_default().to_string();
    Ok((cookie, token))
}

/// One flooding client: posts wrong passwords until `until`; the statuses it got.
async fn flood(
    base: String,
    n: usize,
    same_client: bool,
    until: Instant,
) -> anyhow::Result<BTreeMap<u16, u64>> {
    let local = if same_client {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        IpAddr::V4(Ipv4Addr::new(
            127,
            0,
            1 + (n / 250) as u8,
            2 + (n % 250) as u8,
        ))
    };
    let http = reqwest::Client::builder()
        .local_address(local)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let (cookie, token) = form(&http, &base).await?;
    let mut statuses = BTreeMap::new();
    let mut attempt = 0u64;
    while Instant::now() < until {
        attempt += 1;
        let user = if same_client {
            "li".to_string()
        } else {
            format!("flood-{n}-{attempt}")
        };
        let body = format!("user={user}&password=wrong-{attempt}&_login={token}");
        let status = match http
            .post(format!("{base}/login"))
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
        {
            Ok(response) => response.status().as_u16(),
            Err(_) => 0,
        };
        *statuses.entry(status).or_default() += 1;
    }
    Ok(statuses)
}

fn main() -> anyhow::Result<()> {
    child_server::serve_if_child();
    let options = options()?;
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir()?;
    let server = ChildServer::start(
        &dir.path().join("data"),
        &root.join("config/users.yaml"),
        &[
            root.join("workflows"),
            root.join("rules"),
            root.join("calendars"),
        ],
    )?;
    let (rss_start, _) = server.memory();
    println!(
        "server at {}: {:.1} MiB resident; {} clients for {} s ({})",
        server.base,
        rss_start,
        options.clients,
        options.seconds,
        if options.same_client {
            "one address, one user"
        } else {
            "an address each, a new user name each attempt"
        }
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (statuses, health, peak_during) = runtime.block_on(async {
        let until = Instant::now() + Duration::from_secs(options.seconds);
        let mut clients = tokio::task::JoinSet::new();
        for n in 0..options.clients {
            clients.spawn(flood(server.base.clone(), n, options.same_client, until));
        }
        let health = poll_health(
            server.base.clone(),
            IpAddr::V4(Ipv4Addr::new(127, 0, 3, 1)),
            until,
        );
        let mut peak: f64 = 0.0;
        while Instant::now() < until {
            peak = peak.max(server.memory().0);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut statuses = BTreeMap::<u16, u64>::new();
        while let Some(done) = clients.join_next().await {
            for (status, count) in done.context("a client")?? {
                *statuses.entry(status).or_default() += count;
            }
        }
        let health = health
            .join()
            .map_err(|_| anyhow::anyhow!("the health poller failed"))?;
        anyhow::Ok((statuses, health, peak))
    })?;
    std::thread::sleep(Duration::from_secs(5));
    let (rss_after, peak) = server.memory();
    let attempts: u64 = statuses.values().sum();
    println!(
        "answers: {attempts} ({:.0}/s) by status {statuses:?} (0: no answer)",
        attempts as f64 / options.seconds as f64
    );
    println!(
        "/api/health during the flood: {} answers, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        health.len(),
        percentile(&health, 50.0).as_secs_f64() * 1000.0,
        percentile(&health, 99.0).as_secs_f64() * 1000.0,
        health.last().copied().unwrap_or_default().as_secs_f64() * 1000.0
    );
    println!(
        "server memory: {rss_start:.1} MiB at start, peak {peak:.1} MiB (sampled {peak_during:.1} MiB), {rss_after:.1} MiB 5 s after the flood"
    );
    server.stop()?;
    Ok(())
}
