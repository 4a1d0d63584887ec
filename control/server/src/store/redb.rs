//! The default backend: one redb file. redb is pure Rust (nothing to install),
//! ACID with copy-on-write B-trees, and a commit is durable once it returns,
//! so a crash loses nothing acknowledged.

use std::{
    os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
    path::Path,
};

use bytes::Bytes;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use super::backend::{Backend, BackendError, Batch, Snapshot};

const OBJECTS: TableDefinition<&str, &[u8]> = TableDefinition::new("objects");
const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

pub struct RedbBackend {
    db: Database,
}

fn err(context: &str) -> impl Fn(redb::Error) -> BackendError + '_ {
    move |e| BackendError(format!("{context}: {e}"))
}

/// Creates keel-control's data directory 0700, or tightens it to 0700.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

impl RedbBackend {
    /// Opens (creating) the store file, readable and writable by its
    /// owner only (0600; an older, wider file is tightened).
    pub fn open(path: &Path) -> Result<Self, BackendError> {
        let io = |e: std::io::Error| BackendError(format!("opening {}: {e}", path.display()));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(e)),
        }
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        // Everything is also held in memory by the store and redb is only
        // written to (and read once at start): a small page cache suffices.
        let db = Database::builder()
            .set_cache_size(16 << 20)
            .create(path)
            .map_err(|e| BackendError(format!("opening {}: {e}", path.display())))?;
        // Create the tables so a fresh file can be read.
        let txn = db.begin_write().map_err(|e| err("begin")(e.into()))?;
        {
            txn.open_table(OBJECTS)
                .map_err(|e| err("objects")(e.into()))?;
            txn.open_table(EVENTS)
                .map_err(|e| err("events")(e.into()))?;
            txn.open_table(META).map_err(|e| err("meta")(e.into()))?;
        }
        txn.commit().map_err(|e| err("commit")(e.into()))?;
        Ok(Self { db })
    }
}

impl Backend for RedbBackend {
    fn load(&mut self) -> Result<Snapshot, BackendError> {
        let txn = self
            .db
            .begin_read()
            .map_err(|e| err("begin read")(e.into()))?;
        let meta = txn.open_table(META).map_err(|e| err("meta")(e.into()))?;
        let get = |k: &str| -> Result<u64, BackendError> {
            Ok(meta
                .get(k)
                .map_err(|e| err("meta")(e.into()))?
                .map(|v| v.value())
                .unwrap_or(0))
        };
        let mut snap = Snapshot {
            revision: get("revision")?,
            compacted: get("compacted")?,
            ..Snapshot::default()
        };
        let objects = txn
            .open_table(OBJECTS)
            .map_err(|e| err("objects")(e.into()))?;
        for row in objects.iter().map_err(|e| err("objects")(e.into()))? {
            let (k, v) = row.map_err(|e| err("objects")(e.into()))?;
            snap.objects
                .push((k.value().to_string(), Bytes::copy_from_slice(v.value())));
        }
        let events = txn
            .open_table(EVENTS)
            .map_err(|e| err("events")(e.into()))?;
        for row in events.iter().map_err(|e| err("events")(e.into()))? {
            let (k, v) = row.map_err(|e| err("events")(e.into()))?;
            snap.events
                .push((k.value(), Bytes::copy_from_slice(v.value())));
        }
        Ok(snap)
    }

    fn commit(&mut self, batch: &Batch) -> Result<(), BackendError> {
        let mut txn = self.db.begin_write().map_err(|e| err("begin")(e.into()))?;
        txn.set_durability(Durability::Immediate)
            .map_err(|e| BackendError(e.to_string()))?;
        {
            let mut objects = txn
                .open_table(OBJECTS)
                .map_err(|e| err("objects")(e.into()))?;
            for (k, v) in &batch.writes {
                match v {
                    Some(v) => drop(
                        objects
                            .insert(k.as_str(), v.as_ref())
                            .map_err(|e| err("put")(e.into()))?,
                    ),
                    None => drop(
                        objects
                            .remove(k.as_str())
                            .map_err(|e| err("delete")(e.into()))?,
                    ),
                }
            }
            let mut events = txn
                .open_table(EVENTS)
                .map_err(|e| err("events")(e.into()))?;
            for (r, e) in &batch.events {
                events
                    .insert(*r, e.as_ref())
                    .map_err(|e| err("event")(e.into()))?;
            }
            events
                .retain_in(..=batch.compacted, |_, _| false)
                .map_err(|e| err("compact")(e.into()))?;
            let mut meta = txn.open_table(META).map_err(|e| err("meta")(e.into()))?;
            meta.insert("revision", batch.revision)
                .map_err(|e| err("meta")(e.into()))?;
            meta.insert("compacted", batch.compacted)
                .map_err(|e| err("meta")(e.into()))?;
        }
        txn.commit().map_err(|e| err("commit")(e.into()))
    }
}

#[cfg(test)]
mod tests;
