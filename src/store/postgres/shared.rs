//! Sessions and deployed sets on PostgreSQL (`sopflow_sessions`, `sopflow_deployments`), and
//! the LISTEN connection that tells a node a new set was deployed.

use super::connection::Connection;
use super::reads::{affected, one};
use crate::store::{DeployedSet, StoreError, StoredDefinition, StoredSession};
use chrono::{DateTime, Utc};

/// The channel a deploy notifies, in the same transaction (so only once it is committed).
pub(super) const DEPLOY_CHANNEL: &str = "sopflow_deployments";

fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

fn time(key: &str, millis: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(millis).ok_or_else(|| StoreError::BadRecord {
        key: key.to_string(),
        detail: format!("{millis} is not a time"),
    })
}

pub(super) async fn save_session(
    connection: &Connection,
    key: &str,
    session: &StoredSession,
) -> Result<(), StoreError> {
    affected(
        connection,
        "INSERT INTO sopflow_sessions (key, user_id, csrf, created, last_used) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (key) DO UPDATE SET user_id = $2, csrf = $3, created = $4, last_used = $5",
        &[
            &key,
            &session.user,
            &session.csrf,
            &millis(session.created),
            &millis(session.last_used),
        ],
    )
    .await
    .map(|_| ())
}

pub(super) async fn session(
    connection: &Connection,
    key: &str,
) -> Result<Option<StoredSession>, StoreError> {
    let Some(row) = one(
        connection,
        "SELECT user_id, csrf, created, last_used FROM sopflow_sessions WHERE key = $1",
        &[&key],
    )
    .await?
    else {
        return Ok(None);
    };
    Ok(Some(StoredSession {
        user: row.get(0),
        csrf: row.get(1),
        created: time("session", row.get(2))?,
        last_used: time("session", row.get(3))?,
    }))
}

pub(super) async fn delete_session(connection: &Connection, key: &str) -> Result<(), StoreError> {
    affected(
        connection,
        "DELETE FROM sopflow_sessions WHERE key = $1",
        &[&key],
    )
    .await
    .map(|_| ())
}

pub(super) async fn prune_sessions(
    connection: &Connection,
    unused_since: DateTime<Utc>,
) -> Result<u64, StoreError> {
    affected(
        connection,
        "DELETE FROM sopflow_sessions WHERE last_used < $1",
        &[&millis(unused_since)],
    )
    .await
}

pub(super) async fn deploy(
    connection: &Connection,
    definitions: &[StoredDefinition],
    set: &DeployedSet,
) -> Result<(), StoreError> {
    let encode = |key: String, e: serde_json::Error| StoreError::Encode {
        key,
        detail: e.to_string(),
    };
    let sources = serde_json::to_vec(set).map_err(|e| encode(format!("set {}", set.id), e))?;
    let versions =
        serde_json::to_string(&set.versions).map_err(|e| encode(format!("set {}", set.id), e))?;
    let mut records = Vec::with_capacity(definitions.len());
    for definition in definitions {
        let bytes = serde_json::to_vec(definition)
            .map_err(|e| encode(format!("definition {}", definition.hash), e))?;
        records.push((definition.hash.as_str(), bytes));
    }
    let mut client = connection.client().await?;
    let error = |e| connection.error(e);
    let transaction = client.transaction().await.map_err(error)?;
    let insert = transaction
        .prepare_cached(
            "INSERT INTO sopflow_definitions (hash, sources) VALUES ($1, $2) \
             ON CONFLICT (hash) DO NOTHING",
        )
        .await
        .map_err(error)?;
    for (hash, bytes) in &records {
        transaction
            .execute(&insert, &[hash, bytes])
            .await
            .map_err(error)?;
    }
    transaction
        .execute(
            "INSERT INTO sopflow_deployments (set_id, versions, deployed_by, deployed_at, sources) \
             VALUES ($1, $2::text::jsonb, $3, $4, $5)",
            &[&set.id, &versions, &set.by, &millis(set.at), &sources],
        )
        .await
        .map_err(error)?;
    transaction
        .execute("SELECT pg_notify($1, $2)", &[&DEPLOY_CHANNEL, &set.id])
        .await
        .map_err(error)?;
    transaction.commit().await.map_err(error)
}

pub(super) async fn deployed(connection: &Connection) -> Result<Option<DeployedSet>, StoreError> {
    let row = one(
        connection,
        "SELECT sources FROM sopflow_deployments ORDER BY id DESC LIMIT 1",
        &[],
    )
    .await?;
    match row {
        Some(row) => Ok(Some(super::reads::decode(
            "deployed set",
            &row.get::<_, Vec<u8>>(0),
        )?)),
        None => Ok(None),
    }
}

pub(super) async fn deployed_id(connection: &Connection) -> Result<Option<String>, StoreError> {
    let row = one(
        connection,
        "SELECT set_id FROM sopflow_deployments ORDER BY id DESC LIMIT 1",
        &[],
    )
    .await?;
    Ok(row.map(|row| row.get(0)))
}

/// A connection of its own that LISTENs on the deploy channel, and a task (on the store's
/// runtime) that drives it and forwards each notification. The channel closes when the
/// connection is lost (the caller then relies on polling); the connection closes when the
/// receiver is dropped.
pub(super) async fn listen(
    connection: &Connection,
) -> Result<tokio::sync::mpsc::UnboundedReceiver<()>, StoreError> {
    let (client, mut stream) = connection.dedicated_with_messages().await?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let (driving, driven) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        // Held until this task ends, which tells the client's holder below to let it go.
        let _driving = driving;
        loop {
            tokio::select! {
                _ = tx.closed() => return,
                message = std::future::poll_fn(|cx| stream.poll_message(cx)) => match message {
                    Some(Ok(tokio_postgres::AsyncMessage::Notification(_))) => {
                        let _ = tx.send(());
                    }
                    Some(Ok(_)) => {}
                    // The connection ended: dropping `tx` closes the channel.
                    Some(Err(_)) | None => return,
                },
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {DEPLOY_CHANNEL}"))
        .await
        .map_err(|e| connection.error(e))?;
    // The client lives as long as the connection is driven; dropping it closes the connection.
    tokio::spawn(async move {
        let _ = driven.await;
        drop(client);
    });
    Ok(rx)
}

/// See [`super::deploy_unlocked`].
pub(super) async fn deploy_unless_deployed(
    connection: &Connection,
    definitions: &[StoredDefinition],
    set: &DeployedSet,
) -> Result<crate::deploy::Deployed, StoreError> {
    super::schema::prepare(connection, true).await?;
    let previous = deployed_id(connection).await?;
    if previous.as_deref() == Some(set.id.as_str()) {
        return Ok(crate::deploy::Deployed::AlreadyDeployed);
    }
    deploy(connection, definitions, set).await?;
    Ok(crate::deploy::Deployed::New { previous })
}

pub(super) async fn schedule_marks(
    connection: &Connection,
) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
    let client = connection.client().await?;
    let rows = client
        .query(
            "SELECT key, at FROM sopflow_schedule_marks ORDER BY key",
            &[],
        )
        .await
        .map_err(|e| connection.error(e))?;
    rows.into_iter()
        .map(|row| {
            let key: String = row.get(0);
            let at = time(&format!("schedule {key}"), row.get(1))?;
            Ok((key, at))
        })
        .collect()
}

pub(super) async fn sessions(
    connection: &Connection,
) -> Result<Vec<(String, StoredSession)>, StoreError> {
    let client = connection.client().await?;
    let rows = client
        .query(
            "SELECT key, user_id, csrf, created, last_used FROM sopflow_sessions ORDER BY key",
            &[],
        )
        .await
        .map_err(|e| connection.error(e))?;
    rows.into_iter()
        .map(|row| {
            Ok((
                row.get(0),
                StoredSession {
                    user: row.get(1),
                    csrf: row.get(2),
                    created: time("session", row.get(3))?,
                    last_used: time("session", row.get(4))?,
                },
            ))
        })
        .collect()
}
