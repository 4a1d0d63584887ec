//! Unpacking one layer into its own directory, ready to be an overlayfs
//! lowerdir: OCI whiteouts (`.wh.NAME`) become overlay whiteouts (a 0:0
//! character device) and opaque markers (`.wh..wh..opq`) become the
//! `trusted.overlay.opaque` xattr — the conversion containerd's overlay
//! snapshotter does (OCI image spec, layer.md "Whiteouts"). The uncompressed
//! stream is hashed on the way through: that is the layer's diff ID.
//!
//! Every entry's parent is resolved inside the layer before anything is
//! created ([`inroot`], `RESOLVE_IN_ROOT`, as containerd's `fs.RootPath`):
//! a symlink the layer made (`x -> /`) leads to the layer's own `/`, never
//! the host's, and whatever stood at an entry's name is removed first so
//! nothing is written through a link. What a hostile layer gets, case by
//! case (the corpus test in `unpack/tests.rs`):
//!
//! - `..` in a name or a hard link's target: the layer is refused;
//!   absolute names are taken relative to the layer (as tar and containerd do).
//! - symlinks, then entries or whiteouts under them: resolved in the layer.
//! - hard links: their source is resolved in the layer too.
//! - device nodes and FIFOs: made, as containerd does as root (the
//!   container's device cgroup decides whether they open).
//! - set-id bits: kept, as containerd keeps them (no_new_privs and the
//!   capability set decide what they are worth).
//! - `trusted.*` xattrs: dropped (overlayfs would read `trusted.overlay.*`
//!   as its own metadata); others (`security.capability`, `user.*`) kept.

use std::{
    ffi::{CString, OsStr},
    fs,
    io::{self, Read},
    os::fd::{AsRawFd, OwnedFd},
    path::{Component, Path, PathBuf},
};

use nix::{
    errno::Errno,
    fcntl::{AtFlags, OFlag, openat},
    sys::{
        stat::{Mode, SFlag, UtimensatFlags, fchmod, mkdirat, mknodat, utimensat},
        time::TimeSpec,
    },
    unistd::{Gid, Uid, UnlinkatFlags, fchown, fchownat, linkat, symlinkat, unlinkat},
};
use sha2::{Digest, Sha256};
use tar::EntryType;

use super::manifest::Compression;
use crate::runtime::inroot::{self, Scope};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

/// Hashes everything read through it.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Unpacks the layer in `blob` into `dest` (which must exist and be empty)
/// and returns its diff ID (`sha256:` of the uncompressed tar).
pub fn unpack_layer(blob: &Path, compression: Compression, dest: &Path) -> io::Result<String> {
    let file = io::BufReader::with_capacity(1 << 20, fs::File::open(blob)?);
    let reader: Box<dyn Read> = match compression {
        Compression::None => Box::new(file),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(file)),
    };
    let mut hashing = HashingReader {
        inner: reader,
        hasher: Sha256::new(),
    };
    {
        let root = inroot::open_root(dest)?;
        let mut dir_times = Vec::new();
        let mut archive = tar::Archive::new(&mut hashing);
        for entry in archive.entries()? {
            let mut entry = entry?;
            let path = entry.path()?.into_owned();
            let Some(rel) = clean(&path) else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("layer entry {} escapes the layer", path.display()),
                ));
            };
            let name = rel
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if name == OPAQUE {
                let parent = rel.parent().unwrap_or(Path::new(""));
                let dir = inroot::open_dir(&root, parent, Scope::InRoot, Some(0o755))
                    .map_err(|e| at(&path, e))?;
                fset_xattr(&dir, "trusted.overlay.opaque", b"y").map_err(|e| at(&path, e))?;
                continue;
            }
            if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
                let target = rel.with_file_name(hidden);
                let (parent, last) =
                    inroot::open_parent(&root, &target, Scope::InRoot, Some(0o755))
                        .map_err(|e| at(&path, e))?;
                remove_entry(&parent, last).map_err(|e| at(&path, e))?;
                mknodat(&parent, last, SFlag::S_IFCHR, Mode::empty(), 0)
                    .map_err(|e| at(&path, e.into()))?;
                continue;
            }
            if rel.as_os_str().is_empty() {
                // The layer's own root ("./"): nothing to create.
                continue;
            }
            if let Some(t) = write_entry(&root, &rel, &mut entry).map_err(|e| at(&path, e))? {
                dir_times.push((rel, t));
            }
        }
        // Directory times last, as containerd does: their children changed them.
        for (rel, t) in dir_times.iter().rev() {
            if let Ok(d) = inroot::open_dir(&root, rel, Scope::InRoot, None) {
                let ts = TimeSpec::new(*t as i64, 0);
                let _ = nix::sys::stat::futimens(&d, &ts, &ts);
            }
        }
    }
    // Drain trailing padding so the hash covers the whole stream.
    io::copy(&mut hashing, &mut io::sink())?;
    Ok(format!("sha256:{}", hex::encode(hashing.hasher.finalize())))
}

/// The entry path without `.`/leading `/`, or None if it climbs out.
fn clean(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

fn at(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("layer entry {}: {e}", path.display()))
}

/// Removes whatever `name` is in `parent` (a directory with everything
/// under it), so the entry that replaces it is created fresh — never
/// written through a link the layer left there.
fn remove_entry(parent: &OwnedFd, name: &OsStr) -> io::Result<()> {
    match unlinkat(parent, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(Errno::EISDIR) => {
            // std's remove_dir_all does not follow symlinks inside.
            let p = Path::new("/proc/self/fd")
                .join(parent.as_raw_fd().to_string())
                .join(name);
            fs::remove_dir_all(p)
        }
        Err(e) => Err(e.into()),
    }
}

/// Creates one entry inside the root (its parent resolved in the root,
/// created as needed); returns a directory's mtime to set at the end.
fn write_entry<R: Read>(
    root: &OwnedFd,
    rel: &Path,
    entry: &mut tar::Entry<R>,
) -> io::Result<Option<u64>> {
    let h = entry.header().clone();
    let kind = h.entry_type();
    let mode = h.mode()? & 0o7777;
    let (uid, gid) = (h.uid()? as u32, h.gid()? as u32);
    let mtime = h.mtime().unwrap_or(0);
    let xattrs = xattrs(entry)?;
    let (parent, name) = inroot::open_parent(root, rel, Scope::InRoot, Some(0o755))?;
    let owner = (Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)));
    let ts = TimeSpec::new(mtime as i64, 0);
    match kind {
        EntryType::Directory => {
            let existing = nix::sys::stat::fstatat(&parent, name, AtFlags::AT_SYMLINK_NOFOLLOW);
            match existing {
                Ok(st)
                    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR => {}
                Ok(_) => {
                    remove_entry(&parent, name)?;
                    mkdirat(&parent, name, Mode::from_bits_truncate(0o700))?;
                }
                Err(_) => mkdirat(&parent, name, Mode::from_bits_truncate(0o700))?,
            }
            let fd = openat(
                &parent,
                name,
                OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?;
            fchown(&fd, owner.0, owner.1)?;
            fchmod(&fd, Mode::from_bits_truncate(mode))?;
            set_xattrs(&fd, &xattrs)?;
            return Ok(Some(mtime));
        }
        EntryType::Symlink => {
            let target = entry
                .link_name()?
                .ok_or_else(|| invalid("symlink without a target"))?
                .into_owned();
            remove_entry(&parent, name)?;
            symlinkat(&target, &parent, name)?;
            fchownat(
                &parent,
                name,
                owner.0,
                owner.1,
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )?;
            utimensat(&parent, name, &ts, &ts, UtimensatFlags::NoFollowSymlink)?;
        }
        EntryType::Link => {
            let target = entry
                .link_name()?
                .ok_or_else(|| invalid("hard link without a target"))?
                .into_owned();
            let target = clean(&target).ok_or_else(|| {
                invalid(&format!(
                    "hard link to {} escapes the layer",
                    target.display()
                ))
            })?;
            // The link's source is resolved in the root like any path: a
            // link through a symlink to the host's files finds the
            // layer's own instead (or nothing).
            let (src_parent, src_name) = inroot::open_parent(root, &target, Scope::InRoot, None)?;
            remove_entry(&parent, name)?;
            linkat(&src_parent, src_name, &parent, name, AtFlags::empty())?;
        }
        EntryType::Char | EntryType::Block | EntryType::Fifo => {
            // As containerd does when it runs as root: the node is made.
            // The container's device cgroup decides whether it opens.
            let (sflag, dev) = match kind {
                EntryType::Char => (SFlag::S_IFCHR, dev(&h)?),
                EntryType::Block => (SFlag::S_IFBLK, dev(&h)?),
                _ => (SFlag::S_IFIFO, 0),
            };
            remove_entry(&parent, name)?;
            mknodat(&parent, name, sflag, Mode::from_bits_truncate(mode), dev)?;
            fchownat(
                &parent,
                name,
                owner.0,
                owner.1,
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )?;
            // chown clears set-id bits; put the mode back.
            nix::sys::stat::fchmodat(
                &parent,
                name,
                Mode::from_bits_truncate(mode),
                nix::sys::stat::FchmodatFlags::FollowSymlink,
            )?;
            utimensat(&parent, name, &ts, &ts, UtimensatFlags::NoFollowSymlink)?;
        }
        EntryType::XGlobalHeader
        | EntryType::XHeader
        | EntryType::GNULongName
        | EntryType::GNULongLink => {}
        // POSIX: an unknown type flag is a regular file.
        _ => {
            remove_entry(&parent, name)?;
            let fd = openat(
                &parent,
                name,
                OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_WRONLY
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            )?;
            let mut f = fs::File::from(fd);
            io::copy(entry, &mut f)?;
            fchown(&f, owner.0, owner.1)?;
            // After chown, which clears setuid/setgid: the image's mode,
            // set-id bits included, as containerd keeps them.
            fchmod(&f, Mode::from_bits_truncate(mode))?;
            set_xattrs(&f, &xattrs)?;
            nix::sys::stat::futimens(&f, &ts, &ts)?;
        }
    }
    Ok(None)
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

fn dev(h: &tar::Header) -> io::Result<libc::dev_t> {
    let major = h.device_major()?.unwrap_or(0);
    let minor = h.device_minor()?.unwrap_or(0);
    Ok(libc::makedev(major, minor))
}

/// The entry's `SCHILY.xattr.*` records, without `trusted.*`: those are
/// read by the host's kernel (overlayfs takes `trusted.overlay.*` as its
/// own opaque/redirect/metacopy metadata) and are not the image's to set;
/// keel makes the overlay ones itself from the OCI whiteouts.
fn xattrs<R: Read>(entry: &mut tar::Entry<R>) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    if let Some(exts) = entry.pax_extensions()? {
        for e in exts {
            let e = e?;
            if let Some(name) = e.key_bytes().strip_prefix(b"SCHILY.xattr.")
                && !name.starts_with(b"trusted.")
            {
                out.push((name.to_vec(), e.value_bytes().to_vec()));
            }
        }
    }
    Ok(out)
}

fn set_xattrs(fd: &impl AsRawFd, xattrs: &[(Vec<u8>, Vec<u8>)]) -> io::Result<()> {
    for (name, value) in xattrs {
        let n = CString::new(name.clone())?;
        fset_xattr_raw(fd.as_raw_fd(), &n, value)?;
    }
    Ok(())
}

fn fset_xattr(fd: &OwnedFd, name: &str, value: &[u8]) -> io::Result<()> {
    fset_xattr_raw(fd.as_raw_fd(), &CString::new(name)?, value)
}

fn fset_xattr_raw(fd: i32, name: &CString, value: &[u8]) -> io::Result<()> {
    // SAFETY: `name` is NUL-terminated, `value` is a live slice.
    let rc = unsafe { libc::fsetxattr(fd, name.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests;
