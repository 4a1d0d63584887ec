//! What a running lab is made of, kept in `<lab dir>/lab.json` so
//! `keelctl lab status/run/down` work from any later invocation.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::Context;
use keel_sys::fs::write_atomic;
use serde::{Deserialize, Serialize};

use crate::topology::Topology;

/// Where labs keep their data (stores, agent caches, logs, lab.json).
pub const LABS_DIR: &str = "/var/lib/keel/labs";

/// A process the lab started, identified beyond its PID (PIDs are reused).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proc {
    /// `control`, or a node name.
    pub role: String,
    pub pid: i32,
    /// Field 22 of /proc/PID/stat when started.
    pub start_time: u64,
    pub netns: String,
    /// The cgroup v2 directory it was started in, if any.
    #[serde(default)]
    pub cgroup: Option<PathBuf>,
    pub command: Vec<String>,
    pub log: PathBuf,
    /// The log's length when this process was started: what it wrote
    /// begins there (the log is appended to across restarts).
    #[serde(default)]
    pub log_from: u64,
}

impl Proc {
    /// What this process wrote to its log (lossily decoded), without what
    /// earlier processes of the same role wrote before it; None if the log
    /// cannot be read.
    pub fn own_log(&self) -> Option<String> {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = std::fs::File::open(&self.log).ok()?;
        f.seek(SeekFrom::Start(self.log_from)).ok()?;
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).ok()?;
        Some(String::from_utf8_lossy(&bytes).into_owned())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub topology: Topology,
    pub dir: PathBuf,
    /// keel-control, keel-agent and keel-cni live here.
    pub bin_dir: PathBuf,
    pub processes: Vec<Proc>,
}

pub fn lab_dir(name: &str) -> PathBuf {
    Path::new(LABS_DIR).join(name)
}

impl State {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join("lab.json")
    }

    pub fn load(name: &str) -> anyhow::Result<Self> {
        let path = Self::path(&lab_dir(name));
        let bytes = fs::read(&path).with_context(|| {
            format!("no lab named {name:?} ({} is not readable)", path.display())
        })?;
        serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a lab state file", path.display()))
    }

    pub fn save(&self) -> anyhow::Result<()> {
        // Owner-only, as keel keeps its data files: it names the processes
        // `lab down` kills.
        write_atomic(
            &Self::path(&self.dir),
            &serde_json::to_vec_pretty(self)?,
            0o600,
        )?;
        Ok(())
    }

    /// Names of every lab with a state file.
    pub fn list() -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(LABS_DIR)
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.path().join("lab.json").exists())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

/// Start time of a process (field 22 of /proc/PID/stat), to tell it apart
/// from a later process that reused its PID.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; fields after ')' are fixed.
    let rest = stat.rsplit_once(')')?.1;
    rest.split_whitespace().nth(19)?.parse().ok()
}
