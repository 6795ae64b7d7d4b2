//! A response body written by blocking code (an export walking the whole log): the writer
//! hands 64 KiB chunks through a small channel, so memory stays flat however large the
//! export, and a client that goes away stops the writer (its next write fails).

use axum::body::{Body, Bytes};
use std::io::Write;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::mpsc;

const CHUNK: usize = 64 * 1024;

/// A body and the writer that fills it. Write from a blocking thread (`spawn_blocking`);
/// flush at the end.
pub fn body() -> (ChunkWriter, Body) {
    let (tx, rx) = mpsc::channel(8);
    let writer = ChunkWriter {
        tx,
        buffer: Vec::with_capacity(CHUNK),
    };
    (writer, Body::from_stream(Chunks(rx)))
}

/// The writing end: blocking writes, full chunks sent as they fill.
pub struct ChunkWriter {
    tx: mpsc::Sender<std::io::Result<Bytes>>,
    buffer: Vec<u8>,
}

impl ChunkWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(CHUNK),
        ));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client has gone"))
    }
}

impl ChunkWriter {
    /// Ends the body with an error, so the client sees a broken transfer rather than a file
    /// cut short silently.
    pub fn fail(mut self, error: std::io::Error) {
        let _ = self.send();
        let _ = self.tx.blocking_send(Err(error));
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// A body fed chunk by chunk from async code (a stream of server-sent events): the sender and
/// the body. A send fails once the client has gone, which ends the feeding task.
pub fn channel_body(capacity: usize) -> (mpsc::Sender<std::io::Result<Bytes>>, Body) {
    let (tx, rx) = mpsc::channel(capacity);
    (tx, Body::from_stream(Chunks(rx)))
}

/// The receiving end, as the stream a response body is made from.
struct Chunks(mpsc::Receiver<std::io::Result<Bytes>>);

impl futures_core::Stream for Chunks {
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}
