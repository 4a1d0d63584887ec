//! Where bootstrap tokens and node revocations live: beside the store,
//! in the same place the replicas share. On redb (one replica) that is
//! `<data-dir>/bootstrap.json` (0600, written atomically); on etcd it is
//! two key ranges next to the object registry, `<prefix>/bootstrap-tokens/ID`
//! and `<prefix>/revoked-nodes/NAME`, so every replica sees the same tokens.
//! Neither is an API kind: only the token endpoints reach them.
//!
//! Revocations are read on every request a node makes, so they are cached
//! in memory: written through by this replica, and on etcd re-read every
//! [`REFRESH`] for the other replicas' deletions.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::RwLock,
    time::{Duration, SystemTime},
};

use etcd_client::{DeleteOptions, GetOptions};
use serde::{Deserialize, Serialize};

use super::tokens::TokenRecord;
use crate::store::etcd::{EtcdConfig, connect_steered};

/// How often revocations are re-read from etcd.
pub const REFRESH: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum BootstrapStoreError {
    #[error("bootstrap tokens: {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("bootstrap tokens on etcd: {0}")]
    Etcd(String),
}

#[derive(Debug, Clone)]
pub enum Persist {
    File(PathBuf),
    Etcd(EtcdConfig),
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FileData {
    #[serde(default)]
    tokens: BTreeMap<String, TokenRecord>,
    /// Node name → Unix nanoseconds of its deletion.
    #[serde(default)]
    revoked_nodes: BTreeMap<String, u64>,
}

pub struct BootstrapStore {
    persist: Persist,
    /// Serializes this replica's read-modify-writes of the file.
    lock: tokio::sync::Mutex<()>,
    revoked: RwLock<BTreeMap<String, u64>>,
    /// One etcd connection, opened on first use and shared.
    etcd: tokio::sync::OnceCell<etcd_client::Client>,
}

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64
}

impl BootstrapStore {
    pub async fn open(persist: Persist) -> Result<Self, BootstrapStoreError> {
        let s = Self {
            persist,
            lock: Default::default(),
            revoked: Default::default(),
            etcd: Default::default(),
        };
        s.refresh_revocations().await?;
        Ok(s)
    }

    fn read_file(path: &Path) -> Result<FileData, BootstrapStoreError> {
        let err = |message: String| BootstrapStoreError::File {
            path: path.to_path_buf(),
            message,
        };
        match std::fs::read(path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| err(e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(FileData::default()),
            Err(e) => Err(err(e.to_string())),
        }
    }

    fn write_file(path: &Path, data: &FileData) -> Result<(), BootstrapStoreError> {
        let bytes = serde_json::to_vec_pretty(data).expect("bootstrap data serializes");
        keel_sys::fs::write_atomic(path, &bytes, 0o600).map_err(|e| BootstrapStoreError::File {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    async fn modify<T>(
        &self,
        path: &Path,
        f: impl FnOnce(&mut FileData) -> T,
    ) -> Result<T, BootstrapStoreError> {
        let _guard = self.lock.lock().await;
        let mut data = Self::read_file(path)?;
        let out = f(&mut data);
        Self::write_file(path, &data)?;
        Ok(out)
    }

    fn key(cfg: &EtcdConfig, range: &str, name: &str) -> String {
        format!("{}/{range}/{name}", cfg.prefix)
    }

    async fn kv(&self, cfg: &EtcdConfig) -> Result<etcd_client::KvClient, BootstrapStoreError> {
        let client = self
            .etcd
            .get_or_try_init(|| connect_steered(cfg))
            .await
            .map_err(|e| BootstrapStoreError::Etcd(e.to_string()))?;
        Ok(client.kv_client())
    }

    pub async fn put_token(&self, rec: TokenRecord) -> Result<(), BootstrapStoreError> {
        match &self.persist {
            Persist::File(path) => {
                self.modify(path, |d| d.tokens.insert(rec.id.clone(), rec))
                    .await?;
            }
            Persist::Etcd(cfg) => {
                let value = serde_json::to_vec(&rec).expect("token record serializes");
                self.kv(cfg)
                    .await?
                    .put(Self::key(cfg, "bootstrap-tokens", &rec.id), value, None)
                    .await
                    .map_err(|e| BootstrapStoreError::Etcd(e.to_string()))?;
            }
        }
        Ok(())
    }

    pub async fn tokens(&self) -> Result<Vec<TokenRecord>, BootstrapStoreError> {
        match &self.persist {
            Persist::File(path) => {
                let _guard = self.lock.lock().await;
                Ok(Self::read_file(path)?.tokens.into_values().collect())
            }
            Persist::Etcd(cfg) => {
                let resp = self
                    .kv(cfg)
                    .await?
                    .get(
                        Self::key(cfg, "bootstrap-tokens", ""),
                        Some(GetOptions::new().with_prefix()),
                    )
                    .await
                    .map_err(|e| BootstrapStoreError::Etcd(e.to_string()))?;
                resp.kvs()
                    .iter()
                    .map(|kv| {
                        serde_json::from_slice(kv.value()).map_err(|e| {
                            BootstrapStoreError::Etcd(format!(
                                "{}: {e}",
                                String::from_utf8_lossy(kv.key())
                            ))
                        })
                    })
                    .collect()
            }
        }
    }

    pub async fn token(&self, id: &str) -> Result<Option<TokenRecord>, BootstrapStoreError> {
        Ok(self.tokens().await?.into_iter().find(|t| t.id == id))
    }

    /// Deletes token `id`; whether it existed.
    pub async fn delete_token(&self, id: &str) -> Result<bool, BootstrapStoreError> {
        match &self.persist {
            Persist::File(path) => self.modify(path, |d| d.tokens.remove(id).is_some()).await,
            Persist::Etcd(cfg) => {
                let resp = self
                    .kv(cfg)
                    .await?
                    .delete(
                        Self::key(cfg, "bootstrap-tokens", id),
                        None::<DeleteOptions>,
                    )
                    .await
                    .map_err(|e| BootstrapStoreError::Etcd(e.to_string()))?;
                Ok(resp.deleted() > 0)
            }
        }
    }

    /// Deletes the tokens that expired before `now`; how many.
    pub async fn collect_expired(&self, now: SystemTime) -> Result<usize, BootstrapStoreError> {
        let mut n = 0;
        for t in self.tokens().await? {
            if t.expired(now) && self.delete_token(&t.id).await? {
                tracing::info!(token = %t.id, "bootstrap token expired: deleted");
                n += 1;
            }
        }
        Ok(n)
    }

    /// Records that node `name`'s credentials issued before `at` are void.
    pub async fn revoke_node(&self, name: &str, at: SystemTime) -> Result<(), BootstrapStoreError> {
        self.set_revoked(name, Some(at)).await
    }

    /// Sets (or, with `None`, removes) node `name`'s revocation time.
    pub async fn set_revoked(
        &self,
        name: &str,
        at: Option<SystemTime>,
    ) -> Result<(), BootstrapStoreError> {
        let at = at.map(nanos);
        match &self.persist {
            Persist::File(path) => {
                self.modify(path, |d| match at {
                    Some(at) => d.revoked_nodes.insert(name.to_string(), at),
                    None => d.revoked_nodes.remove(name),
                })
                .await?;
            }
            Persist::Etcd(cfg) => {
                let key = Self::key(cfg, "revoked-nodes", name);
                let mut kv = self.kv(cfg).await?;
                let done = match at {
                    Some(at) => kv.put(key, at.to_string(), None).await.map(drop),
                    None => kv.delete(key, None::<DeleteOptions>).await.map(drop),
                };
                done.map_err(|e| BootstrapStoreError::Etcd(e.to_string()))?;
            }
        }
        let mut cache = self.revoked.write().expect("revocations lock");
        match at {
            Some(at) => cache.insert(name.to_string(), at),
            None => cache.remove(name),
        };
        Ok(())
    }

    /// When node `name`'s credentials were last revoked, if ever.
    pub fn revoked_at(&self, name: &str) -> Option<SystemTime> {
        self.revoked
            .read()
            .expect("revocations lock")
            .get(name)
            .map(|n| SystemTime::UNIX_EPOCH + Duration::from_nanos(*n))
    }

    /// Re-reads the revocations (other replicas may have added some).
    pub async fn refresh_revocations(&self) -> Result<(), BootstrapStoreError> {
        let all = match &self.persist {
            Persist::File(path) => {
                let _guard = self.lock.lock().await;
                Self::read_file(path)?.revoked_nodes
            }
            Persist::Etcd(cfg) => {
                let prefix = Self::key(cfg, "revoked-nodes", "");
                let resp = self
                    .kv(cfg)
                    .await?
                    .get(prefix.clone(), Some(GetOptions::new().with_prefix()))
                    .await
                    .map_err(|e| BootstrapStoreError::Etcd(e.to_string()))?;
                resp.kvs()
                    .iter()
                    .filter_map(|kv| {
                        let name = String::from_utf8_lossy(kv.key())
                            .strip_prefix(&prefix)?
                            .to_string();
                        let at = String::from_utf8_lossy(kv.value()).parse().ok()?;
                        Some((name, at))
                    })
                    .collect()
            }
        };
        *self.revoked.write().expect("revocations lock") = all;
        Ok(())
    }

    pub fn shared(&self) -> bool {
        matches!(self.persist, Persist::Etcd(_))
    }
}

#[cfg(test)]
mod tests {
    use keel_api::pki::BootstrapToken;

    use super::*;

    #[tokio::test]
    async fn tokens_and_revocations_persist_and_expired_tokens_are_collected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bootstrap.json");
        let now = SystemTime::now();
        let s = BootstrapStore::open(Persist::File(path.clone()))
            .await
            .unwrap();
        let live = BootstrapToken::parse("aaaaaa.0123456789abcdef").unwrap();
        let old = BootstrapToken::parse("bbbbbb.0123456789abcdef").unwrap();
        s.put_token(TokenRecord::new(
            &live,
            "live",
            Duration::from_secs(60),
            now,
        ))
        .await
        .unwrap();
        s.put_token(TokenRecord::new(&old, "old", Duration::from_secs(1), now))
            .await
            .unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            s.collect_expired(now + Duration::from_secs(2))
                .await
                .unwrap(),
            1
        );
        assert!(s.token("bbbbbb").await.unwrap().is_none());
        assert!(s.token("aaaaaa").await.unwrap().is_some());
        assert!(s.delete_token("aaaaaa").await.unwrap());
        assert!(!s.delete_token("aaaaaa").await.unwrap(), "already gone");

        assert_eq!(s.revoked_at("n1"), None);
        s.revoke_node("n1", now).await.unwrap();
        // Nanosecond precision survives the file.
        let reopened = BootstrapStore::open(Persist::File(path)).await.unwrap();
        assert_eq!(reopened.revoked_at("n1"), Some(now));
        reopened.set_revoked("n1", None).await.unwrap();
        assert_eq!(reopened.revoked_at("n1"), None);
    }
}
