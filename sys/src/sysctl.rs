//! Kernel parameters of the calling thread's network namespace
//! (`/proc/sys/net` is per namespace), e.g. `net.ipv4.ip_forward`.

use std::{io, path::PathBuf};

#[derive(Debug, thiserror::Error)]
#[error("sysctl {key}: {source}")]
pub struct SysctlError {
    pub key: String,
    #[source]
    pub source: io::Error,
}

fn path(key: &str) -> PathBuf {
    PathBuf::from("/proc/sys").join(key.replace('.', "/"))
}

/// Sets `key` (dotted, as `sysctl` names it) unless it already has `value`.
/// Interface names with dots cannot be written dotted: use [`set_path`].
pub fn set(key: &str, value: &str) -> Result<(), SysctlError> {
    set_path(&path(key), key, value)
}

/// Sets the parameter at `/proc/sys/<rel>` (slash-separated).
pub fn set_rel(rel: &str, value: &str) -> Result<(), SysctlError> {
    set_path(&PathBuf::from("/proc/sys").join(rel), rel, value)
}

fn set_path(p: &std::path::Path, key: &str, value: &str) -> Result<(), SysctlError> {
    let err = |source| SysctlError {
        key: key.to_string(),
        source,
    };
    if std::fs::read_to_string(p).map_err(err)?.trim() == value {
        return Ok(());
    }
    std::fs::write(p, value).map_err(err)
}

/// Reads `key`.
pub fn get(key: &str) -> Result<String, SysctlError> {
    std::fs::read_to_string(path(key))
        .map(|s| s.trim().to_string())
        .map_err(|source| SysctlError {
            key: key.to_string(),
            source,
        })
}
