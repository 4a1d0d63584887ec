//! Running a program inside a network namespace: a `std::process::Command`
//! whose child `setns(2)`es into the namespace between fork and exec. The
//! parent never changes namespace, and unlike `ip netns exec` the child
//! keeps the parent's mounts (`/sys`, `/sys/fs/cgroup` stay the host's).
//!
//! Options cover what the repo's spawners need besides: joining a cgroup v2
//! directory before exec (so whatever the program starts is accounted
//! there from its first instruction) and a new session (a daemon that must
//! not get its starter's terminal signals).
//!
//! The child of a multi-threaded parent may find any lock held, so between
//! fork and exec it only makes async-signal-safe calls — `setns`, `write`,
//! `setsid` — on descriptors opened before the fork, and allocates nothing.
//! The closure owns those descriptors, so they stay open as long as the
//! `Command` does; they are close-on-exec, so the program never sees them.

use std::{
    ffi::OsStr,
    fs::OpenOptions,
    io,
    os::{
        fd::{AsFd, AsRawFd, OwnedFd},
        unix::process::CommandExt,
    },
    path::{Path, PathBuf},
    process::Command,
};

use crate::ns::NetNs;

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("network namespace {path}: duplicating its handle for a child: {source}")]
    Netns {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cgroup {dir}: opening cgroup.procs: {source}")]
    Cgroup {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// How a child enters its namespace; build it, then make [`InNetns::command`]s.
#[derive(Debug)]
pub struct InNetns {
    netns: OwnedFd,
    cgroup_procs: Option<OwnedFd>,
    setsid: bool,
}

impl InNetns {
    /// Children enter `ns`.
    pub fn new(ns: &NetNs) -> Result<Self, CommandError> {
        let netns = ns
            .as_fd()
            .try_clone_to_owned()
            .map_err(|source| CommandError::Netns {
                path: ns.path().to_path_buf(),
                source,
            })?;
        Ok(Self {
            netns,
            cgroup_procs: None,
            setsid: false,
        })
    }

    /// Children also move into the cgroup v2 directory `dir` before exec.
    /// `cgroup.procs` is opened now: opening a file is not allowed between
    /// fork and exec, writing to it is.
    pub fn cgroup(mut self, dir: &Path) -> Result<Self, CommandError> {
        let procs = OpenOptions::new()
            .write(true)
            .open(dir.join("cgroup.procs"))
            .map_err(|source| CommandError::Cgroup {
                dir: dir.to_path_buf(),
                source,
            })?;
        self.cgroup_procs = Some(procs.into());
        Ok(self)
    }

    /// Children start a new session (`setsid(2)`), detached from the
    /// starter's controlling terminal and process group.
    pub fn setsid(mut self) -> Self {
        self.setsid = true;
        self
    }

    /// A command for `program` whose child enters the namespace.
    pub fn command(self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(program);
        self.apply(&mut cmd);
        cmd
    }

    /// Makes an existing command's child enter the namespace. Also applies
    /// to `CommandExt::exec`, which then enters it in the calling process.
    pub fn apply(self, cmd: &mut Command) {
        let Self {
            netns,
            cgroup_procs,
            setsid,
        } = self;
        // SAFETY: the closure only calls setns(2), write(2) and setsid(2),
        // which are async-signal-safe, on descriptors it owns (open until
        // the Command is dropped), and builds its errors from errno without
        // allocating.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
                    return Err(io::Error::last_os_error());
                }
                // "0" moves the writing process: the child, before it execs.
                if let Some(procs) = &cgroup_procs
                    && libc::write(procs.as_raw_fd(), b"0".as_ptr().cast(), 1) != 1
                {
                    return Err(io::Error::last_os_error());
                }
                // Fails only if the child already leads a process group,
                // which a freshly forked child never does.
                if setsid {
                    libc::setsid();
                }
                Ok(())
            });
        }
    }
}

impl NetNs {
    /// A command for `program` that runs inside this namespace (see
    /// [`InNetns`] for the cgroup and session options).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Result<Command, CommandError> {
        Ok(InNetns::new(self)?.command(program))
    }
}

#[cfg(test)]
mod tests;
