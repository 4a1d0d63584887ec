//! The host facts the start-up checks read, behind a trait so the checks
//! are tested on fake ones.

use std::path::Path;

/// What [`super::checks`] asks of the host.
pub trait Probe {
    /// `uname -r`.
    fn kernel_release(&self) -> String;
    /// `/proc/self/mountinfo`.
    fn mountinfo(&self) -> String;
    fn exists(&self, path: &Path) -> bool;
    fn is_dir(&self, path: &Path) -> bool;
    /// A regular file with an execute bit.
    fn is_executable(&self, path: &Path) -> bool;
    /// The agent's effective capabilities (`CapEff` of
    /// `/proc/self/status`), None when unreadable.
    fn capabilities(&self) -> Option<u64>;
}

/// `CapEff` of a `/proc/PID/status` text.
pub fn cap_eff(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
}

/// The host itself.
#[derive(Debug, Default, Clone, Copy)]
pub struct Real;

impl Probe for Real {
    fn kernel_release(&self) -> String {
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    }

    fn mountinfo(&self) -> String {
        std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default()
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }

    fn is_executable(&self, path: &Path) -> bool {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }

    fn capabilities(&self) -> Option<u64> {
        cap_eff(&std::fs::read_to_string("/proc/self/status").ok()?)
    }
}
