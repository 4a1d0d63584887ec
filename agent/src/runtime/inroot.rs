//! Paths resolved inside a root directory before anything is created:
//! every lookup goes through `openat2(2)` relative to an open root, so a
//! symlink (or `..`) planted by an image layer, a volume's owner or a
//! container cannot lead a create outside it. Two scopes, as the kernel
//! offers them:
//!
//! - [`Scope::InRoot`] (`RESOLVE_IN_ROOT`): symlinks are followed as if the
//!   root were `/` — how a layer's own links read inside the container, and
//!   what containerd's unpacker does with `fs.RootPath`.
//! - [`Scope::Beneath`] (`RESOLVE_BENEATH`): a link that leaves the root is
//!   an error (`EXDEV`) — for volumes, where leaving is the attack.
//!
//! Missing directories are created one component at a time with `mkdirat`
//! in the directory the previous component resolved to, so a create never
//! happens anywhere the resolution did not reach; a dangling symlink on the
//! way has its target created the same way (as `mkdir -p` through a link
//! inside the root would), never outside.

use std::{
    ffi::OsStr,
    io,
    os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd},
    path::{Component, Path, PathBuf},
};

use nix::{
    errno::Errno,
    fcntl::{OFlag, OpenHow, ResolveFlag, openat2},
    sys::stat::Mode,
};

/// How symlinks met on the way are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Followed with the root as `/` (`RESOLVE_IN_ROOT`).
    InRoot,
    /// Refused when they lead out (`RESOLVE_BENEATH`).
    Beneath,
}

impl Scope {
    fn flags(self) -> ResolveFlag {
        match self {
            Scope::InRoot => ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS,
            Scope::Beneath => ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS,
        }
    }
}

/// Opens `root` itself (a directory) for use as the anchor of lookups.
pub fn open_root(root: &Path) -> io::Result<OwnedFd> {
    nix::fcntl::open(
        root,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| {
        io::Error::new(
            io::Error::from(e).kind(),
            format!("{}: {e}", root.display()),
        )
    })
}

/// The normal components of `rel`; `..` is refused (it means nothing
/// good in a path that must stay inside), `/` and `.` are skipped.
pub fn components(rel: &Path) -> io::Result<Vec<&OsStr>> {
    let mut out = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{} contains '..'", rel.display()),
                ));
            }
        }
    }
    Ok(out)
}

/// Opens `rel` under `root` with `flags` (plus `O_CLOEXEC`), resolving in
/// `scope`.
pub fn open(
    root: impl AsFd,
    rel: &Path,
    flags: OFlag,
    mode: u32,
    scope: Scope,
) -> io::Result<OwnedFd> {
    let path: PathBuf = components(rel)?.iter().collect();
    let path = if path.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        path
    };
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .mode(Mode::from_bits_truncate(mode))
        .resolve(scope.flags());
    openat2(root, &path, how).map_err(io::Error::from)
}

/// Opens directory `rel` under `root`, creating what is missing with
/// `create` as the mode (None: nothing is created, a missing component is
/// `NotFound`). The returned descriptor is readable (`O_RDONLY`), so
/// `fsetxattr`/`fchmod` work on it.
pub fn open_dir(
    root: impl AsFd,
    rel: &Path,
    scope: Scope,
    create: Option<u32>,
) -> io::Result<OwnedFd> {
    open_dir_at_depth(
        root.as_fd(),
        components(rel)?.iter().collect(),
        scope,
        create,
        0,
    )
}

/// Symlinks followed while creating, as the kernel's own limit.
const MAX_LINKS: usize = 40;

fn open_dir_at_depth(
    root: BorrowedFd,
    rel: PathBuf,
    scope: Scope,
    create: Option<u32>,
    depth: usize,
) -> io::Result<OwnedFd> {
    let flags = OFlag::O_DIRECTORY | OFlag::O_RDONLY;
    let mut cur = open(root, Path::new(""), flags, 0, scope)?;
    let mut prefix = PathBuf::new();
    let comps: Vec<&OsStr> = components(&rel)?;
    for (i, c) in comps.iter().enumerate() {
        prefix.push(c);
        cur = match open(root, &prefix, flags, 0, scope) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(Errno::ENOENT as i32) => {
                let Some(mode) = create else { return Err(e) };
                // `cur` is where the parent resolved to: the new directory
                // is made there and nowhere else.
                match nix::sys::stat::mkdirat(&cur, *c, Mode::from_bits_truncate(mode)) {
                    Ok(()) => open(root, &prefix, flags, 0, scope)?,
                    Err(Errno::EEXIST) => {
                        // A dangling symlink: make its target, resolved
                        // the same way, then go on from there.
                        let target = nix::fcntl::readlinkat(&cur, *c).map_err(|_| e)?;
                        if depth >= MAX_LINKS {
                            return Err(Errno::ELOOP.into());
                        }
                        let rest: PathBuf = comps[i + 1..].iter().collect();
                        let next = follow(root, &cur, Path::new(&target), scope)?.join(rest);
                        return open_dir_at_depth(root, next, scope, create, depth + 1);
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) => return Err(e),
        };
    }
    Ok(cur)
}

/// Where symlink `target`, found in directory `dir`, points, as a path
/// relative to `root` with no `..` left: `dir`'s own place is read back
/// from the kernel (it is fully resolved), so `..` is lexical from there.
/// Leaving the root clamps at it (`InRoot`) or is `EXDEV` (`Beneath`, as
/// an absolute target is).
fn follow(root: BorrowedFd, dir: &OwnedFd, target: &Path, scope: Scope) -> io::Result<PathBuf> {
    let fd_path = |fd: i32| std::fs::read_link(format!("/proc/self/fd/{fd}"));
    let root_real = fd_path(root.as_raw_fd())?;
    let dir_real = fd_path(dir.as_raw_fd())?;
    let base = dir_real
        .strip_prefix(&root_real)
        .map_err(|_| io::Error::from(Errno::EXDEV))?
        .to_path_buf();
    let mut out: Vec<&OsStr> = if target.is_absolute() {
        if scope == Scope::Beneath {
            return Err(Errno::EXDEV.into());
        }
        Vec::new()
    } else {
        base.iter().collect()
    };
    for c in target.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::ParentDir => {
                if out.pop().is_none() && scope == Scope::Beneath {
                    return Err(Errno::EXDEV.into());
                }
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    Ok(out.iter().collect())
}

/// The parent directory of `rel` (created as needed with `create`) and
/// `rel`'s last component; refuses a path with no last component.
pub fn open_parent(
    root: impl AsFd,
    rel: &Path,
    scope: Scope,
    create: Option<u32>,
) -> io::Result<(OwnedFd, &OsStr)> {
    let comps = components(rel)?;
    let Some((last, parent)) = comps.split_last() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{:?} names no file", rel.display()),
        ));
    };
    let parent: PathBuf = parent.iter().collect();
    Ok((open_dir(root, &parent, scope, create)?, last))
}

/// True when `e` says the lookup tried to leave the root (`EXDEV` from
/// `RESOLVE_BENEATH`).
pub fn is_escape(e: &io::Error) -> bool {
    e.raw_os_error() == Some(Errno::EXDEV as i32)
}

#[cfg(test)]
mod tests;
