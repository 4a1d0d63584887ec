//! The on-disk copy of what an informer has seen: one JSON file per kind,
//! written atomically, read at start so the node keeps its desired state
//! while keel-control is unreachable and resumes watching where it stopped.

use std::{
    collections::BTreeMap,
    fs,
    io::Write,
    path::{Path, PathBuf},
};

use keel_api::Resource;
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

    /// Saves atomically (temp file, fsync, rename).
    pub fn save<R: Resource>(
        &self,
        name: &str,
        rv: &str,
        items: &BTreeMap<String, std::sync::Arc<R>>,
    ) -> Result<(), CacheError> {
        let path = self.path(name);
        let err = |e: std::io::Error| CacheError {
            path: path.clone(),
            message: e.to_string(),
        };
        fs::create_dir_all(&self.dir).map_err(err)?;
        let cached = Cached {
            resource_version: rv.to_string(),
            items: items.values().map(|a| (**a).clone()).collect(),
        };
        let data = serde_json::to_vec(&cached).map_err(|e| CacheError {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let tmp = path.with_extension("json.tmp");
        let mut f = fs::File::create(&tmp).map_err(err)?;
        f.write_all(&data).map_err(err)?;
        f.sync_all().map_err(err)?;
        fs::rename(&tmp, &path).map_err(err)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
