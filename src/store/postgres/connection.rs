//! The connections: a small tokio runtime owned by the store, a deadpool pool of
//! tokio-postgres connections driven by it, and the mapping of their errors to
//! [`StoreError`].
//!
//! [`Store`](crate::store::Store) is a blocking interface, so every method of
//! [`PgStore`](super::PgStore) runs its async work with [`Connection::run`], which blocks the
//! calling thread on this runtime's handle. Called on an async worker thread of another
//! runtime, that panics ("Cannot start a runtime from within a runtime"): the engine calls the
//! store only from blocking threads, and the PostgreSQL test runs prove it.

use crate::store::StoreError;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use std::future::Future;
use std::time::Duration;
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

/// The most connections one store holds in its pool.
const POOL_SIZE: usize = 16;

/// How many batches the engine commits at once ([`Store::concurrent_commits`]), each holding
/// a connection of the pool while the server works on it.
///
/// Two: one batch is committed while the next gathers, and batches grow with the load.
/// More lanes split the same steps into more, smaller batches, each costing the server a
/// statement and the node a thread hand-off. `examples/store_load.rs` (PostgreSQL on the same
/// 2 cores, nothing else running), steps/s with 8 lanes then 2, two runs each: one node at 16
/// clients 4,352 and 4,379 then 6,116 and 5,506; at 64 clients 6,631 and 6,964 then 8,753
/// and 7,744; two nodes at 64 clients 5,277 and 4,853 then 7,060 and 6,252. One lane did
/// about as well as two at 64 clients and worse at 16.
///
/// [`Store::concurrent_commits`]: crate::store::Store::concurrent_commits
pub(super) const COMMIT_LANES: usize = 2;

/// How long a command waits for a connection before it fails as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The store's runtime and pool.
pub(super) struct Connection {
    /// Taken on drop and shut down in the background, so that dropping a store is allowed
    /// anywhere, an async context included.
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    pool: Pool,
    config: tokio_postgres::Config,
    /// The URL with its password hidden, for messages.
    pub(super) shown: String,
}

impl Connection {
    /// Parses the URL and starts the runtime; connects lazily (the first command does).
    pub(super) fn new(url: &str, shown: String) -> Result<Connection, StoreError> {
        let config: tokio_postgres::Config =
            url.parse()
                .map_err(|e: tokio_postgres::Error| StoreError::NotAStore {
                    path: shown.clone(),
                    detail: format!(
                        "not a PostgreSQL URL ({e}); write it as postgres://user@host:port/database"
                    ),
                })?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sopflow-postgres")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Io(format!("cannot start the store's runtime: {e}")))?;
        let handle = runtime.handle().clone();
        let mut pg = config.clone();
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(CONNECT_TIMEOUT);
        }
        pg.application_name("sopflow");
        let manager = Manager::from_config(
            pg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = {
            let _entered = handle.enter();
            Pool::builder(manager)
                .max_size(POOL_SIZE)
                .runtime(Runtime::Tokio1)
                .wait_timeout(Some(CONNECT_TIMEOUT * 3))
                .create_timeout(Some(CONNECT_TIMEOUT))
                .build()
                .map_err(|e| StoreError::Io(format!("cannot make the connection pool: {e}")))?
        };
        Ok(Connection {
            runtime: Some(runtime),
            handle,
            pool,
            config,
            shown,
        })
    }

    /// Runs `work` on the store's runtime and waits for it on this thread (which must not be
    /// an async worker thread).
    pub(super) fn run<T>(
        &self,
        work: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        self.handle.block_on(work)
    }

    /// A connection from the pool.
    pub(super) async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(|e| StoreError::Unreachable {
            store: self.shown.clone(),
            detail: e.to_string(),
        })
    }

    /// A connection of its own, outside the pool (migrations, long scans): closed when the
    /// client is dropped, which also ends any transaction it left open.
    pub(super) async fn dedicated(&self) -> Result<tokio_postgres::Client, StoreError> {
        let mut config = self.config.clone();
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let (client, connection) = config.connect(NoTls).await.map_err(|e| self.error(e))?;
        self.handle.spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }

    /// A connection of its own whose messages (notifications) the caller polls itself.
    pub(super) async fn dedicated_with_messages(
        &self,
    ) -> Result<
        (
            tokio_postgres::Client,
            tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>,
        ),
        StoreError,
    > {
        let mut config = self.config.clone();
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.connect(NoTls).await.map_err(|e| self.error(e))
    }

    /// A database error as a store error: a lost or refused connection is
    /// [`StoreError::Unreachable`]; anything else [`StoreError::Io`] with the server's words.
    pub(super) fn error(&self, err: tokio_postgres::Error) -> StoreError {
        error(&self.shown, err)
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// See [`Connection::error`].
pub(super) fn error(shown: &str, err: tokio_postgres::Error) -> StoreError {
    let io = std::error::Error::source(&err).is_some_and(|source| source.is::<std::io::Error>());
    let unreachable = err.is_closed()
        || io
        || (err.code().is_none() && err.to_string().contains("timeout"))
        || err.code().is_some_and(|code| {
            code.code().starts_with("08") // connection exception
                || *code == SqlState::ADMIN_SHUTDOWN
                || *code == SqlState::CRASH_SHUTDOWN
                || *code == SqlState::CANNOT_CONNECT_NOW
                || *code == SqlState::INVALID_PASSWORD
                || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
                || *code == SqlState::INVALID_CATALOG_NAME
        });
    let detail = match err.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => match std::error::Error::source(&err) {
            Some(source) => format!("{err}: {source}"),
            None => err.to_string(),
        },
    };
    if unreachable {
        StoreError::Unreachable {
            store: shown.to_string(),
            detail,
        }
    } else {
        StoreError::Io(format!("PostgreSQL at {shown}: {detail}"))
    }
}

/// Whether `err` is a unique key violation.
pub(super) fn is_unique_violation(err: &tokio_postgres::Error) -> bool {
    err.code() == Some(&SqlState::UNIQUE_VIOLATION)
}
