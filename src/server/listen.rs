//! Accepting connections: hyper's HTTP/1 server over the router, with the limits a public
//! server needs and `axum::serve` does not set.
//!
//! `axum::serve` gives hyper no timer, so a client that sends half a request head, or nothing
//! at all, holds its connection for as long as it likes. Here every connection is served by
//! hyper's HTTP/1 builder with a timer and [`Limits::header_timeout`] (which also closes a
//! kept-alive connection that stays idle that long), a bounded read buffer, and a slot: at
//! most [`Limits::max_connections`] connections in all and
//! [`Limits::max_connections_per_client`] from one address (an IPv6 /64). A connection over
//! either cap is answered with a fixed 503 problem (`too_many_connections`) and closed, before
//! its request is read. Bodies are timed by the extractors that read them
//! ([`Limits::body_timeout`]).
//!
//! On shutdown, no new connection is accepted, each open one finishes the request in flight
//! (hyper's graceful shutdown), and [`serve`] returns when all have closed.

use super::limits::Limits;
use super::metrics::Metrics;
use super::problem::Problem;
use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

/// hyper's read buffer per connection: a request head larger than this is answered by hyper
/// itself (a bare 431). The router's own limits ([`super::MAX_HEADER_BYTES`],
/// [`super::MAX_URI_BYTES`]) are smaller, so that what they refuse is answered as a problem.
pub const READ_BUFFER_BYTES: usize = 64 * 1024;

/// Open connections, in all and by client.
struct Slots {
    total: usize,
    per_client: usize,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// One open connection's place; given back on drop.
struct Slot {
    slots: Arc<Slots>,
    client: IpAddr,
}

impl Slots {
    /// A place for a connection from `client`, or which cap it is over.
    fn take(self: &Arc<Self>, client: IpAddr) -> Result<Slot, &'static str> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.0 >= self.total {
            return Err("total");
        }
        let mine = open.1.entry(client).or_default();
        if *mine >= self.per_client {
            return Err("per_client");
        }
        *mine += 1;
        open.0 += 1;
        Ok(Slot {
            slots: self.clone(),
            client,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().unwrap_or_else(|e| e.into_inner());
        open.0 = open.0.saturating_sub(1);
        if let Some(mine) = open.1.get_mut(&self.client) {
            *mine = mine.saturating_sub(1);
            if *mine == 0 {
                open.1.remove(&self.client);
            }
        }
    }
}

/// The whole answer to a connection over a cap: written at once, then the connection closes.
fn busy_answer() -> Vec<u8> {
    let body = Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "too_many_connections",
        "Too many connections",
        "the server has as many connections open as it takes (from this address, or in all); close one or try again in a moment",
    )
    .body()
    .to_string();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: {}\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        super::problem::PROBLEM_JSON,
        body.len()
    )
    .into_bytes()
}

/// Serves `app` on `listener` until `shutdown` completes, then lets the open connections
/// finish their requests and returns once they have closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &Limits,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let slots = Arc::new(Slots {
        total: limits.max_connections.max(1),
        per_client: limits.max_connections_per_client.max(1),
        open: Mutex::new((0, HashMap::new())),
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(READ_BUFFER_BYTES);
    let busy = busy_answer();
    // Connections hold a receiver each; `closed()` resolves when the last has gone.
    let (closed_tx, closed_rx) = tokio::sync::watch::channel(());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    accept_failed(&err).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let slot = match slots.take(super::throttle::client_key(peer.ip())) {
            Ok(slot) => slot,
            Err(cap) => {
                metrics.connection_refused(cap);
                tracing::debug!(peer = ?peer, cap, "connection refused: too many open");
                let _ = stream.try_write(&busy);
                continue;
            }
        };
        let service = tower::ServiceBuilder::new()
            .map_request(move |mut request: Request<Incoming>| {
                request
                    .extensions_mut()
                    .insert(ConnectInfo::<SocketAddr>(peer));
                request
            })
            .service(app.clone());
        let connection = builder
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
            .with_upgrades();
        let (mut stop, closed) = (stop_rx.clone(), closed_rx.clone());
        tokio::spawn(async move {
            let _slot = slot;
            let _closed = closed;
            let mut connection = std::pin::pin!(connection);
            let stopping = async move {
                let _ = stop.wait_for(|stopping| *stopping).await;
            };
            tokio::select! {
                _ = connection.as_mut() => {}
                () = stopping => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(closed_rx);
    closed_tx.closed().await;
}

/// An accept that failed: a connection reset before it was accepted is no matter; running
/// out of file descriptors is, and waiting a little lets some close.
async fn accept_failed(err: &std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        err.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::ConnectionRefused
    ) {
        return;
    }
    tracing::error!(error = ?err.to_string(), "cannot accept a connection");
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
}
