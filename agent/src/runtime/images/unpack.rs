//! Unpacking one layer into its own directory, ready to be an overlayfs
//! lowerdir: OCI whiteouts (`.wh.NAME`) become overlay whiteouts (a 0:0
//! character device) and opaque markers (`.wh..wh..opq`) become the
//! `trusted.overlay.opaque` xattr — the conversion containerd's overlay
//! snapshotter does (OCI image spec, layer.md "Whiteouts"). The uncompressed
//! stream is hashed on the way through: that is the layer's diff ID.

use std::{
    ffi::CString,
    fs,
    io::{self, Read},
    os::unix::ffi::OsStrExt,
    path::{Component, Path, PathBuf},
};

use sha2::{Digest, Sha256};

use super::manifest::Compression;

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
        let mut archive = tar::Archive::new(&mut hashing);
        archive.set_preserve_permissions(true);
        archive.set_preserve_ownerships(true);
        archive.set_preserve_mtime(true);
        archive.set_unpack_xattrs(true);
        archive.set_overwrite(true);
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
                let dir = dest.join(rel.parent().unwrap_or(Path::new("")));
                fs::create_dir_all(&dir)?;
                inside(&dir, dest)?;
                set_xattr(&dir, "trusted.overlay.opaque", b"y")?;
                continue;
            }
            if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
                let parent = dest.join(rel.parent().unwrap_or(Path::new("")));
                fs::create_dir_all(&parent)?;
                inside(&parent, dest)?;
                let target = parent.join(hidden);
                let _ = fs::remove_file(&target);
                mknod_whiteout(&target)?;
                continue;
            }
            entry.unpack_in(dest)?;
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

/// Refuses a directory that resolves (through symlinks the layer made)
/// outside the layer.
fn inside(dir: &Path, dest: &Path) -> io::Result<()> {
    if fs::canonicalize(dir)?.starts_with(fs::canonicalize(dest)?) {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("whiteout in {} escapes the layer", dir.display()),
        ))
    }
}

fn set_xattr(path: &Path, name: &str, value: &[u8]) -> io::Result<()> {
    let p = CString::new(path.as_os_str().as_bytes())?;
    let n = CString::new(name)?;
    // SAFETY: both strings are NUL-terminated and outlive the call.
    let rc = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn mknod_whiteout(path: &Path) -> io::Result<()> {
    nix::sys::stat::mknod(
        path,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::empty(),
        0,
    )
    .map_err(io::Error::from)
}

#[cfg(test)]
mod tests;
