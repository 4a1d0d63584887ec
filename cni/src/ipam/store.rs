//! The built-in IPAM's on-disk store: one JSON file per network, changed
//! only under an exclusive `flock` and replaced atomically.
//!
//! Crash safety (kill -9 at any instant): a change is written to a
//! temporary file beside `state.json`, fsynced, and renamed over it
//! (keel-sys's `write_atomic`); rename(2) is atomic, so a reader sees the
//! old state or the new one, never a mix, and a reservation is either fully
//! made or not at all. The lock is an `flock` on `lock`, which the kernel
//! drops when its holder dies, so a killed plugin never leaves the store
//! locked. Temporary files are only ever written by a lock holder, so the
//! next one removes any a killed holder left.

use std::{
    fs::{self, File, OpenOptions},
    io,
    net::Ipv4Addr,
    os::{fd::AsRawFd, unix::fs::OpenOptionsExt},
    path::{Path, PathBuf},
};

use keel_sys::fs::{WriteError, remove_temps, write_atomic};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("ipam store {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("ipam store {path}: unreadable state ({reason}); refusing to overwrite it")]
    Corrupt { path: PathBuf, reason: String },
    #[error("ipam store {0}")]
    Write(#[from] WriteError),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One address reserved for one attachment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reservation {
    pub ip: Ipv4Addr,
    pub container_id: String,
    pub ifname: String,
}

/// Everything in `state.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    /// The last address handed out (the allocator continues after it).
    #[serde(default)]
    pub last: Option<Ipv4Addr>,
    #[serde(default)]
    pub reservations: Vec<Reservation>,
}

impl State {
    pub fn find(&self, container_id: &str, ifname: &str) -> Option<&Reservation> {
        self.reservations
            .iter()
            .find(|r| r.container_id == container_id && r.ifname == ifname)
    }
}

/// A network's store directory.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Takes the lock (waiting for it) and reads the state, creating the
    /// directory if needed.
    pub fn lock(&self) -> Result<Locked, StoreError> {
        fs::create_dir_all(&self.dir).map_err(io_err(&self.dir))?;
        self.lock_existing()
    }

    /// Like [`Store::lock`], but `Ok(None)` when the store was never
    /// created (DEL and GC must not create it).
    pub fn lock_if_exists(&self) -> Result<Option<Locked>, StoreError> {
        match self.lock_existing() {
            Err(StoreError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                Ok(None)
            }
            other => other.map(Some),
        }
    }

    fn lock_existing(&self) -> Result<Locked, StoreError> {
        let lock_path = self.dir.join("lock");
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        // Blocking: holders are short-lived plugin runs, and the kernel
        // releases the lock if one dies.
        loop {
            // SAFETY: flock on a valid, owned descriptor.
            if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } == 0 {
                break;
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(StoreError::Io {
                    path: lock_path,
                    source: e,
                });
            }
        }
        let path = self.dir.join("state.json");
        let state = match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                path: path.clone(),
                reason: e.to_string(),
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => State::default(),
            Err(source) => return Err(StoreError::Io { path, source }),
        };
        Ok(Locked {
            dir: self.dir.clone(),
            _lock: lock,
            state,
        })
    }
}

/// The store, locked; dropping it releases the lock.
#[derive(Debug)]
pub struct Locked {
    dir: PathBuf,
    _lock: File,
    pub state: State,
}

impl Locked {
    /// Writes the state atomically (keel-sys's `write_atomic`: temporary
    /// file, fsync, rename, fsync of the directory), owner-only.
    pub fn commit(&self) -> Result<(), StoreError> {
        let path = self.dir.join("state.json");
        let bytes = serde_json::to_vec_pretty(&self.state).expect("the state always serializes");
        // Holding the lock makes this the only writer, so a temporary file
        // already there is a killed holder's; without this each kill in the
        // middle of a commit would leave one behind for good.
        remove_temps(&path).map_err(io_err(&self.dir))?;
        Ok(write_atomic(&path, &bytes, 0o600)?)
    }
}

#[cfg(test)]
mod tests;
