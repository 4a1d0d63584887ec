//! Network namespaces: create a named one (as `ip netns add` does), open one
//! by path, and run code inside one.
//!
//! `setns(2)` changes only the calling thread, so [`NetNs::run`] always runs
//! the closure on a fresh scoped thread: the caller's thread never changes
//! namespace, and a netlink socket opened inside the closure stays bound to
//! the namespace it was opened in.

use std::{
    fs::{self, File},
    io,
    os::fd::{AsFd, BorrowedFd},
    path::{Path, PathBuf},
};

use nix::{
    mount::{MntFlags, MsFlags, mount, umount2},
    sched::{CloneFlags, setns, unshare},
};

/// Where named namespaces live, as with iproute2.
pub const NETNS_RUN_DIR: &str = "/run/netns";

#[derive(Debug, thiserror::Error)]
pub enum NsError {
    #[error("network namespace {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("network namespace name {name:?} is invalid: {reason}")]
    BadName { name: String, reason: &'static str },
    #[error("entering network namespace {path}: {source}")]
    Enter {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("the thread running in network namespace {path} panicked")]
    Panicked { path: PathBuf },
}

impl NsError {
    /// True when the namespace (or its file) does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, NsError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

/// An open handle on a network namespace. The namespace lives at least as
/// long as this handle, even if its bind mount is removed meanwhile.
#[derive(Debug)]
pub struct NetNs {
    file: File,
    path: PathBuf,
}

impl NetNs {
    /// Opens the namespace at `path` (a bind mount under /run/netns, or
    /// /proc/PID/ns/net).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, NsError> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|source| NsError::Io {
            path: path.clone(),
            source,
        })?;
        Ok(Self { file, path })
    }

    /// The namespace of the calling thread.
    pub fn current() -> Result<Self, NsError> {
        Self::open("/proc/thread-self/ns/net")
    }

    /// The path of a named namespace.
    pub fn named_path(name: &str) -> PathBuf {
        Path::new(NETNS_RUN_DIR).join(name)
    }

    /// Creates a new named namespace at /run/netns/NAME with only a loopback
    /// device (down). Fails if the name is taken.
    pub fn create(name: &str) -> Result<Self, NsError> {
        check_name(name)?;
        let dir = Path::new(NETNS_RUN_DIR);
        fs::create_dir_all(dir).map_err(|source| NsError::Io {
            path: dir.into(),
            source,
        })?;
        let path = Self::named_path(name);
        // O_EXCL: two creators of the same name cannot both succeed.
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|source| NsError::Io {
                path: path.clone(),
                source,
            })?;
        let bound = std::thread::scope(|s| {
            s.spawn(|| -> nix::Result<()> {
                unshare(CloneFlags::CLONE_NEWNET)?;
                mount(
                    Some("/proc/thread-self/ns/net"),
                    &path,
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                )
            })
            .join()
        });
        match bound {
            Ok(Ok(())) => Self::open(&path),
            Ok(Err(errno)) => {
                let _ = fs::remove_file(&path);
                Err(NsError::Io {
                    path,
                    source: errno.into(),
                })
            }
            Err(_) => {
                let _ = fs::remove_file(&path);
                Err(NsError::Panicked { path })
            }
        }
    }

    /// Removes the named namespace's bind mount and file. The namespace itself
    /// goes away when its last user (process, open handle) does. Succeeds if
    /// it is already gone.
    pub fn delete(name: &str) -> Result<(), NsError> {
        check_name(name)?;
        Self::delete_path(&Self::named_path(name))
    }

    /// [`NetNs::delete`] by path.
    pub fn delete_path(path: &Path) -> Result<(), NsError> {
        match umount2(path, MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
            Err(errno) => {
                return Err(NsError::Io {
                    path: path.into(),
                    source: errno.into(),
                });
            }
        }
        match fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(NsError::Io {
                path: path.into(),
                source,
            }),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on a new thread that has entered this namespace, and returns
    /// its result. The calling thread is never moved.
    pub fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> Result<R, NsError> {
        std::thread::scope(|s| {
            s.spawn(|| {
                setns(self.file.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|source| {
                    NsError::Enter {
                        path: self.path.clone(),
                        source,
                    }
                })?;
                Ok(f())
            })
            .join()
            .map_err(|_| NsError::Panicked {
                path: self.path.clone(),
            })?
        })
    }

    /// The namespace's inode, which identifies it across paths.
    pub fn inode(&self) -> Result<u64, NsError> {
        use std::os::unix::fs::MetadataExt;
        self.file
            .metadata()
            .map(|m| m.ino())
            .map_err(|source| NsError::Io {
                path: self.path.clone(),
                source,
            })
    }
}

impl AsFd for NetNs {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

fn check_name(name: &str) -> Result<(), NsError> {
    let bad = |reason| {
        Err(NsError::BadName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() || name.len() > 255 {
        return bad("must be 1-255 characters");
    }
    if name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return bad("must be a plain file name");
    }
    Ok(())
}
