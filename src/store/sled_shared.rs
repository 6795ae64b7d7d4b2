//! Sessions and the deployed set in sled: two trees of their own, opened when first used, so
//! that a store written before they existed needs no upgrade.
//!
//! `sessions`: cookie hash -> [`StoredSession`] (JSON). `deployments`: `active` -> the
//! [`DeployedSet`] in force (JSON). Both are flushed before a write returns, like schedule
//! marks: a session or a deploy acknowledged survives a crash. Touching a session is not
//! flushed (losing it costs at most some idle time).

use super::{SledStore, failed, io};
use crate::store::{DeployedSet, StoreError, StoredDefinition, StoredSession};
use chrono::{DateTime, Utc};
use std::sync::atomic::Ordering;

const ACTIVE: &[u8] = b"active";

impl SledStore {
    fn shared_tree(&self, name: &str) -> Result<sled::Tree, StoreError> {
        self.db.open_tree(name).map_err(io)
    }

    pub(super) fn refuse_if_failed(&self) -> Result<(), StoreError> {
        if self.failed.load(Ordering::Acquire) {
            return Err(failed());
        }
        Ok(())
    }

    pub(super) fn save_session_record(
        &self,
        key: &str,
        session: &StoredSession,
    ) -> Result<(), StoreError> {
        self.refuse_if_failed()?;
        let bytes = serde_json::to_vec(session).map_err(|e| StoreError::Encode {
            key: "session".into(),
            detail: e.to_string(),
        })?;
        let previous = self
            .shared_tree("sessions")?
            .insert(key.as_bytes(), bytes)
            .map_err(io)?;
        // A new session is flushed; a touched one (same user, same token) need not be.
        let touched = previous
            .and_then(|p| serde_json::from_slice::<StoredSession>(&p).ok())
            .is_some_and(|p| p.user == session.user && p.csrf == session.csrf);
        if !touched {
            self.db.flush().map_err(io)?;
        }
        Ok(())
    }

    pub(super) fn session_record(&self, key: &str) -> Result<Option<StoredSession>, StoreError> {
        match self
            .shared_tree("sessions")?
            .get(key.as_bytes())
            .map_err(io)?
        {
            Some(bytes) => Ok(Some(super::decode("session", &bytes)?)),
            None => Ok(None),
        }
    }

    pub(super) fn delete_session_record(&self, key: &str) -> Result<(), StoreError> {
        self.refuse_if_failed()?;
        if self
            .shared_tree("sessions")?
            .remove(key.as_bytes())
            .map_err(io)?
            .is_some()
        {
            self.db.flush().map_err(io)?;
        }
        Ok(())
    }

    pub(super) fn prune_session_records(
        &self,
        unused_since: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.refuse_if_failed()?;
        let tree = self.shared_tree("sessions")?;
        let mut pruned = 0;
        for item in tree.iter() {
            let (key, value) = item.map_err(io)?;
            // A record that cannot be read signs nobody in: it goes too.
            let ended = serde_json::from_slice::<StoredSession>(&value)
                .map_or(true, |s| s.last_used < unused_since);
            if ended {
                tree.remove(key).map_err(io)?;
                pruned += 1;
            }
        }
        Ok(pruned)
    }

    pub(super) fn deploy_set(
        &self,
        definitions: &[StoredDefinition],
        set: &DeployedSet,
    ) -> Result<(), StoreError> {
        use crate::store::Store;
        for definition in definitions {
            self.save_definition(definition)?;
        }
        self.refuse_if_failed()?;
        let bytes = serde_json::to_vec(set).map_err(|e| StoreError::Encode {
            key: format!("deployed set {}", set.id),
            detail: e.to_string(),
        })?;
        // One insert swaps the set: a crash before it leaves the previous one.
        self.shared_tree("deployments")?
            .insert(ACTIVE, bytes)
            .map_err(io)?;
        self.db.flush().map_err(io)?;
        Ok(())
    }

    pub(super) fn deployed_set(&self) -> Result<Option<DeployedSet>, StoreError> {
        match self.shared_tree("deployments")?.get(ACTIVE).map_err(io)? {
            Some(bytes) => Ok(Some(super::decode("deployed set", &bytes)?)),
            None => Ok(None),
        }
    }

    pub(super) fn schedule_mark_records(&self) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
        let mut marks = Vec::new();
        for item in self.schedules.iter() {
            let (key, value) = item.map_err(io)?;
            let key = String::from_utf8_lossy(&key).into_owned();
            let millis = <[u8; 8]>::try_from(value.as_ref())
                .map(i64::from_be_bytes)
                .ok()
                .and_then(DateTime::from_timestamp_millis)
                .ok_or_else(|| StoreError::BadRecord {
                    key: format!("schedule {key}"),
                    detail: "not a time".into(),
                })?;
            marks.push((key, millis));
        }
        Ok(marks)
    }

    pub(super) fn session_records(&self) -> Result<Vec<(String, StoredSession)>, StoreError> {
        let mut sessions = Vec::new();
        for item in self.shared_tree("sessions")?.iter() {
            let (key, value) = item.map_err(io)?;
            sessions.push((
                String::from_utf8_lossy(&key).into_owned(),
                super::decode("session", &value)?,
            ));
        }
        Ok(sessions)
    }
}
