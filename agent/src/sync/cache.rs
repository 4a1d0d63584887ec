//! The on-disk copy of what an informer has seen: one JSON file per kind,
//! written atomically, read at start so the node keeps its desired state
//! while keel-control is unreachable and resumes watching where it stopped.

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
};

use keel_api::Resource;
use keel_sys::fs::write_atomic_with;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
#[serde(bound(deserialize = "R: Resource"))]
pub struct Cached<R> {
    #[serde(rename = "resourceVersion")]
    pub resource_version: String,
    pub items: Vec<R>,
}

#[derive(Debug, thiserror::Error)]
#[error("agent cache {path}: {message}")]
pub struct CacheError {
    pub path: PathBuf,
    pub message: String,
}

pub struct DiskCache {
    dir: PathBuf,
}

impl DiskCache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    /// Removes what an agent killed in the middle of a save left behind.
    /// Only the informer of `name` writes its file, so none of these is a
    /// live writer's.
    pub fn clean(&self, name: &str) {
        if let Err(e) = keel_sys::fs::remove_temps(&self.path(name))
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(error = %e, cache = name, "removing leftover temporary files");
        }
    }

    /// The cached objects and their resourceVersion, if any were saved.
    pub fn load<R: Resource>(&self, name: &str) -> Result<Option<Cached<R>>, CacheError> {
        let path = self.path(name);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(CacheError {
                    path,
                    message: e.to_string(),
                });
            }
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| CacheError {
                path,
                message: e.to_string(),
            })
    }

    /// Saves atomically (keel-sys's `write_atomic_with`: temp file,
    /// fsync, rename), owner-only like all agent state, streaming the objects
    /// straight from their shared copies (no second copy of a large cache
    /// is ever held in memory).
    pub fn save<'a, R: Resource>(
        &self,
        name: &str,
        rv: &str,
        items: impl Iterator<Item = &'a std::sync::Arc<R>>,
    ) -> Result<(), CacheError> {
        let path = self.path(name);
        crate::private::private_dir(&self.dir).map_err(|e| CacheError {
            path: path.clone(),
            message: e.to_string(),
        })?;
        write_atomic_with(&path, 0o600, |w| {
            w.write_all(b"{\"resourceVersion\":")?;
            serde_json::to_writer(&mut *w, rv)?;
            w.write_all(b",\"items\":[")?;
            for (i, item) in items.enumerate() {
                if i > 0 {
                    w.write_all(b",")?;
                }
                serde_json::to_writer(&mut *w, &**item)?;
            }
            w.write_all(b"]}")
        })
        .map_err(|e| CacheError {
            message: format!("{}: {}", e.step, e.source),
            path,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
