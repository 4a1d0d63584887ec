//! Delegating to another IPAM plugin (`"ipam": {"type": "host-local"}`),
//! as the CNI spec's "Delegated plugin protocol" describes: the plugin is
//! found in CNI_PATH, run with the same environment except CNI_COMMAND,
//! given the same network config on stdin, and its result or error read
//! from its stdout.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command as Process, Stdio},
};

use serde_json::Value;

use crate::types::{CniEnv, CniError, Command, code};

#[derive(Debug, thiserror::Error)]
pub enum DelegateError {
    #[error("ipam.type: plugin {plugin:?} not found in CNI_PATH ({path})")]
    NotFound { plugin: String, path: String },
    #[error("ipam plugin {plugin}: running {bin}: {source}")]
    Exec {
        plugin: String,
        bin: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("ipam plugin {plugin} {command}: {error}")]
    Failed {
        plugin: String,
        command: &'static str,
        error: CniError,
    },
    #[error("ipam plugin {plugin} {command}: unreadable output: {reason}")]
    BadOutput {
        plugin: String,
        command: &'static str,
        reason: String,
    },
}

impl DelegateError {
    pub fn code(&self) -> u32 {
        match self {
            DelegateError::NotFound { .. } => code::INVALID_CONFIG,
            DelegateError::Exec { .. } => code::IO,
            DelegateError::Failed { error, .. } => error.code,
            DelegateError::BadOutput { .. } => code::DECODE,
        }
    }
}

/// Finds `plugin` in the CNI_PATH directories.
pub fn find(plugin: &str, path: &[PathBuf]) -> Result<PathBuf, DelegateError> {
    path.iter()
        .map(|dir| dir.join(plugin))
        .find(|p| p.is_file())
        .ok_or_else(|| DelegateError::NotFound {
            plugin: plugin.to_string(),
            path: path
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(":"),
        })
}

/// Runs `plugin` for `command` and returns its parsed stdout (None when it
/// printed nothing, as DEL, CHECK, GC and STATUS do on success).
pub fn run(
    plugin: &str,
    command: Command,
    env: &CniEnv,
    stdin: &[u8],
) -> Result<Option<Value>, DelegateError> {
    let bin = find(plugin, &env.path)?;
    let exec_err = |source| DelegateError::Exec {
        plugin: plugin.to_string(),
        bin: bin.clone(),
        source,
    };
    let mut proc = Process::new(&bin);
    proc.env("CNI_COMMAND", command.as_str())
        .env("CNI_PATH", join_path(&env.path))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if !env.container_id.is_empty() {
        proc.env("CNI_CONTAINERID", &env.container_id)
            .env("CNI_IFNAME", &env.ifname);
    }
    match &env.netns {
        Some(ns) => proc.env("CNI_NETNS", ns),
        None => proc.env_remove("CNI_NETNS"),
    };
    let mut child = proc.spawn().map_err(exec_err)?;
    // A plugin that exits without reading stdin is not an error here; its
    // exit status and output tell what happened.
    let _ = child.stdin.take().expect("stdin is piped").write_all(stdin);
    let out = child.wait_with_output().map_err(exec_err)?;
    let cmd = command.as_str();
    let parsed: Option<Value> = if out.stdout.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        Some(
            serde_json::from_slice(&out.stdout).map_err(|e| DelegateError::BadOutput {
                plugin: plugin.to_string(),
                command: cmd,
                reason: e.to_string(),
            })?,
        )
    };
    if out.status.success() {
        return Ok(parsed);
    }
    let error = parsed
        .as_ref()
        .and_then(CniError::from_json)
        .unwrap_or_else(|| CniError::new(code::IO, format!("exited with {}", out.status)));
    Err(DelegateError::Failed {
        plugin: plugin.to_string(),
        command: cmd,
        error,
    })
}

fn join_path(path: &[PathBuf]) -> String {
    path.iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(":")
}

/// Whether `dir` holds an executable called `plugin` (for STATUS).
pub fn exists(plugin: &str, path: &[PathBuf]) -> bool {
    path.iter().any(|d| Path::new(d).join(plugin).is_file())
}
