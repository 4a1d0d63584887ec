//! What the agent and a shim say to each other: one JSON request per
//! connection, one JSON response.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum Request {
    /// Create and start a container from a bundle.
    Run {
        id: String,
        bundle: PathBuf,
        log: PathBuf,
        /// cgroup path of the container (for OOM accounting at exit).
        cgroup: String,
    },
    State,
    Kill {
        id: String,
        signal: i32,
    },
    /// Forget an exited container and remove its runtime state.
    Delete {
        id: String,
    },
    /// Exit once no container is left.
    Shutdown,
    /// Answer with [`Response::Generation`] once a container has exited
    /// since generation `seen` (at once if one already has), or after
    /// `timeout_ms`. The generation counts the exits this shim has seen.
    Wait {
        seen: u64,
        timeout_ms: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "camelCase")]
pub enum Response {
    Ok,
    Started { pid: i32 },
    State { containers: Vec<ContainerInfo> },
    Generation { generation: u64 },
    Error { message: String },
}

/// How a container ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Exit {
    pub code: i32,
    pub signal: Option<i32>,
    pub oom_killed: bool,
    /// Unix time in milliseconds.
    pub finished_at_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerInfo {
    pub id: String,
    pub pid: i32,
    pub bundle: PathBuf,
    pub log: PathBuf,
    pub cgroup: String,
    pub started_at_ms: u64,
    pub exit: Option<Exit>,
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
