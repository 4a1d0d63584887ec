//! keel-agent as containerd's logging binary: `keel-agent containerd-log
//! PATH`, started by containerd-shim-runc-v2 for a task whose stdout URI is
//! `binary:///…/keel-agent?containerd-log=PATH` (containerd's
//! `pkg/process` binary IO). The container's stdout arrives on fd 3, its
//! stderr on fd 4; closing fd 5 tells the shim we are ready. Records go to
//! PATH in the CRI format with the same rotation as the direct runtime's
//! shim. The process belongs to the shim, not to the agent, so logging
//! carries on while the agent restarts.

use std::{
    fs,
    io::Read,
    os::fd::{AsFd, FromRawFd, OwnedFd},
    path::{Path, PathBuf},
};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::runtime::{
    logs::{LineSplitter, LogWriter, Stream},
    shim::server::{LOG_KEEP, LOG_MAX_SIZE},
};

/// The subcommand (and URI query key) that makes keel-agent the log driver.
pub const SUBCOMMAND: &str = "containerd-log";

/// The stdio URI that makes the shim start `exe` as the log driver writing
/// to `log`.
pub fn stdio_uri(exe: &Path, log: &Path) -> String {
    format!(
        "binary://{}?{SUBCOMMAND}={}",
        escape(&exe.display().to_string()),
        escape(&log.display().to_string())
    )
}

/// Percent-encodes everything but unreserved characters and `/`, so Go's
/// `url.Parse` gives the path back unchanged. Pure.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn main(args: &[String]) -> i32 {
    let Some(path) = args.first().map(PathBuf::from) else {
        eprintln!("usage: keel-agent {SUBCOMMAND} LOG_PATH (started by containerd's shim)");
        return 2;
    };
    // The shim sends SIGTERM when it closes the task's IO; we carry on until
    // both streams are at EOF so the last lines are not lost (it kills us
    // after 12 s if they never end).
    // SAFETY: setting a signal's disposition to "ignore" before any thread
    // exists.
    unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) };
    // SAFETY: the shim hands these three descriptors to us (ExtraFiles) and
    // nothing else in this fresh process owns them.
    let (out, err, ready) = unsafe {
        (
            OwnedFd::from_raw_fd(3),
            OwnedFd::from_raw_fd(4),
            OwnedFd::from_raw_fd(5),
        )
    };
    let writer = LogWriter::open(&path, LOG_MAX_SIZE, LOG_KEEP);
    drop(ready);
    let mut writer = match writer {
        Ok(w) => Some(w),
        Err(e) => {
            // Keep draining, or the container blocks on a full pipe.
            eprintln!("keel {SUBCOMMAND}: opening {}: {e}", path.display());
            None
        }
    };
    let mut streams = vec![
        (fs::File::from(out), Stream::Stdout, LineSplitter::default()),
        (fs::File::from(err), Stream::Stderr, LineSplitter::default()),
    ];
    let mut buf = vec![0u8; 32 * 1024];
    while !streams.is_empty() {
        let mut fds: Vec<PollFd> = streams
            .iter()
            .map(|(f, _, _)| PollFd::new(f.as_fd(), PollFlags::POLLIN))
            .collect();
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => {
                eprintln!("keel {SUBCOMMAND}: poll: {e}");
                return 1;
            }
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        let mut closed = Vec::new();
        for (i, (f, stream, split)) in streams.iter_mut().enumerate() {
            if !ready[i] {
                continue;
            }
            match f.read(&mut buf) {
                Ok(0) => closed.push(i),
                Ok(n) => {
                    for (partial, text) in split.feed(&buf[..n]) {
                        if let Some(w) = writer.as_mut() {
                            let _ = w.write(*stream, partial, &text);
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => closed.push(i),
            }
        }
        for i in closed.into_iter().rev() {
            let (_, stream, mut split) = streams.remove(i);
            if let (Some(rest), Some(w)) = (split.finish(), writer.as_mut()) {
                let _ = w.write(stream, false, &rest);
            }
        }
    }
    0
}

#[cfg(test)]
mod tests;
