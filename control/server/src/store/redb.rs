//! The default backend: one redb file. redb is pure Rust (nothing to install),
//! ACID with copy-on-write B-trees, and a commit is durable once it returns,
//! so a crash loses nothing acknowledged.
//!
//! A full disk: redb refuses every transaction after one I/O error, so the
//! backend reopens the file; it keeps a reserve file beside it, deleted
//! when the disk fills so that the reopen and deletes have room, and takes
//! only deletes (`disk_full`) until the disk has room for the reserve
//! again. If the file cannot be reopened the fault is fatal.

use std::{
    os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

use bytes::Bytes;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use super::backend::{Backend, BackendError, Batch, Fault, Snapshot};

const OBJECTS: TableDefinition<&str, &[u8]> = TableDefinition::new("objects");
const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

pub struct RedbBackend {
    db: Option<Database>,
    path: PathBuf,
    /// Space kept free for recovery (`--disk-reserve`); 0 keeps none.
    reserve_bytes: u64,
    /// The disk filled: only deletes until the reserve fits again.
    full: bool,
}

fn fault_of(e: &redb::Error) -> Fault {
    match e {
        redb::Error::Io(io) if io.raw_os_error() == Some(libc::ENOSPC) => Fault::NoSpace,
        redb::Error::Io(io) if io.raw_os_error() == Some(libc::EDQUOT) => Fault::NoSpace,
        // Any other I/O error poisons the database until it is reopened.
        redb::Error::Io(_) | redb::Error::PreviousIo => Fault::Fatal,
        _ => Fault::Other,
    }
}

fn err(context: &str) -> impl Fn(redb::Error) -> BackendError + '_ {
    move |e| BackendError {
        fault: fault_of(&e),
        message: format!("{context}: {e}"),
    }
}

/// Creates keel-control's data directory 0700, or tightens it to 0700.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// Bytes free to an unprivileged writer on the file system holding `path`.
fn available(path: &Path) -> Option<u64> {
    let st = nix::sys::statvfs::statvfs(path).ok()?;
    Some(st.blocks_available() as u64 * st.fragment_size() as u64)
}

impl RedbBackend {
    /// Opens (creating) the store file, readable and writable by its
    /// owner only (0600; an older, wider file is tightened).
    pub fn open(path: &Path) -> Result<Self, BackendError> {
        Self::open_with_reserve(path, 0)
    }

    /// As [`open`](Self::open), keeping `reserve_bytes` of the disk in a
    /// reserve file beside the store for when the disk fills.
    pub fn open_with_reserve(path: &Path, reserve_bytes: u64) -> Result<Self, BackendError> {
        let io = |e: std::io::Error| BackendError::new(format!("opening {}: {e}", path.display()));
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
        let b = Self {
            db: Some(Self::open_db(path)?),
            path: path.to_path_buf(),
            reserve_bytes,
            full: false,
        };
        if let Err(e) = b.make_reserve() {
            tracing::warn!(error = %e, path = %b.reserve_path().display(), "could not set aside the disk reserve");
        }
        Ok(b)
    }

    fn open_db(path: &Path) -> Result<Database, BackendError> {
        // Everything is also held in memory by the store and redb is only
        // written to (and read once at start): a small page cache suffices.
        let db = Database::builder()
            .set_cache_size(16 << 20)
            .create(path)
            .map_err(|e| BackendError::new(format!("opening {}: {e}", path.display())))?;
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
        Ok(db)
    }

    fn reserve_path(&self) -> PathBuf {
        self.path.with_extension("reserve")
    }

    /// Writes the reserve file (really allocated: zeros, not a hole).
    fn make_reserve(&self) -> std::io::Result<()> {
        use std::io::Write;
        if self.reserve_bytes == 0 {
            return Ok(());
        }
        let path = self.reserve_path();
        if std::fs::metadata(&path).is_ok_and(|m| m.len() >= self.reserve_bytes) {
            return Ok(());
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)?;
        let chunk = vec![0u8; 1 << 20];
        let mut left = self.reserve_bytes;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            if let Err(e) = f.write_all(&chunk[..n]) {
                drop(f);
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
            left -= n as u64;
        }
        f.sync_all()
    }

    fn db(&self) -> Result<&Database, BackendError> {
        self.db.as_ref().ok_or_else(|| BackendError {
            message: "the store file is not open".into(),
            fault: Fault::Fatal,
        })
    }

    /// After an I/O error redb refuses every transaction: reopen the file
    /// (with the reserve released when the disk is full).
    fn recover(&mut self, e: BackendError) -> BackendError {
        self.db = None;
        if e.fault == Fault::NoSpace {
            let _ = std::fs::remove_file(self.reserve_path());
            self.full = true;
        }
        match Self::open_db(&self.path) {
            Ok(db) => {
                self.db = Some(db);
                tracing::warn!(error = %e.message, disk_full = self.full, "store file reopened after an I/O error");
                BackendError {
                    fault: if self.full {
                        Fault::NoSpace
                    } else {
                        Fault::Other
                    },
                    message: e.message,
                }
            }
            Err(again) => BackendError {
                message: format!(
                    "{}; reopening {} failed: {}",
                    e.message,
                    self.path.display(),
                    again.message
                ),
                fault: Fault::Fatal,
            },
        }
    }

    fn try_commit(&mut self, batch: &Batch) -> Result<(), BackendError> {
        let mut txn = self
            .db()?
            .begin_write()
            .map_err(|e| err("begin")(e.into()))?;
        txn.set_durability(Durability::Immediate)
            .map_err(|e| BackendError::new(e.to_string()))?;
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

impl Backend for RedbBackend {
    fn load(&mut self) -> Result<Snapshot, BackendError> {
        let txn = self
            .db()?
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
        match self.try_commit(batch) {
            Ok(()) => Ok(()),
            Err(e) if e.fault == Fault::Other => Err(e),
            Err(e) => Err(self.recover(e)),
        }
    }

    fn disk_full(&mut self) -> bool {
        if !self.full {
            return false;
        }
        // Room for the reserve and as much again: writes may resume.
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let needed = (2 * self.reserve_bytes).max(1 << 20);
        if available(dir).is_some_and(|a| a >= needed) && self.make_reserve().is_ok() {
            tracing::info!("the disk has room again: writes resume");
            self.full = false;
        }
        self.full
    }
}

#[cfg(test)]
mod tests;
