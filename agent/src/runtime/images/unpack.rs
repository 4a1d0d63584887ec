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
mod tests {
    use super::*;
    use std::os::unix::fs::FileTypeExt;

    fn tar_of(entries: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            match data {
                Some(d) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(d.len() as u64);
                    h.set_mode(0o644);
                    h.set_path(path).unwrap();
                    h.set_cksum();
                    b.append(&h, *d).unwrap();
                }
                None => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_size(0);
                    h.set_mode(0o755);
                    h.set_path(path).unwrap();
                    h.set_cksum();
                    b.append(&h, io::empty()).unwrap();
                }
            }
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn unpacks_files_and_hashes_the_tar() {
        let dir = tempfile::tempdir().unwrap();
        let tar = tar_of(&[("etc/", None), ("etc/hello", Some(b"hi"))]);
        let blob = dir.path().join("blob");
        fs::write(&blob, &tar).unwrap();
        let out = dir.path().join("out");
        fs::create_dir(&out).unwrap();
        let diff = unpack_layer(&blob, Compression::None, &out).unwrap();
        assert_eq!(
            diff,
            format!("sha256:{}", hex::encode(Sha256::digest(&tar)))
        );
        assert_eq!(fs::read(out.join("etc/hello")).unwrap(), b"hi");
    }

    #[test]
    fn gzip_layers_hash_the_uncompressed_tar() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let tar = tar_of(&[("a", Some(b"x"))]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        let blob = dir.path().join("blob");
        fs::write(&blob, gz.finish().unwrap()).unwrap();
        let out = dir.path().join("out");
        fs::create_dir(&out).unwrap();
        let diff = unpack_layer(&blob, Compression::Gzip, &out).unwrap();
        assert_eq!(
            diff,
            format!("sha256:{}", hex::encode(Sha256::digest(&tar)))
        );
    }

    #[test]
    fn whiteouts_become_overlay_whiteouts() {
        // mknod and trusted.* xattrs need root; the agent runs as root.
        if !nix::unistd::geteuid().is_root() {
            panic!("this test needs root (mknod, trusted.* xattrs)");
        }
        let dir = tempfile::tempdir().unwrap();
        let tar = tar_of(&[
            ("etc/", None),
            ("etc/.wh.passwd", Some(b"")),
            ("var/", None),
            ("var/.wh..wh..opq", Some(b"")),
        ]);
        let blob = dir.path().join("blob");
        fs::write(&blob, &tar).unwrap();
        let out = dir.path().join("out");
        fs::create_dir(&out).unwrap();
        unpack_layer(&blob, Compression::None, &out).unwrap();
        let md = fs::symlink_metadata(out.join("etc/passwd")).unwrap();
        assert!(md.file_type().is_char_device());
        use std::os::unix::fs::MetadataExt;
        assert_eq!(md.rdev(), 0);
        assert!(!out.join("etc/.wh.passwd").exists());
        let p = CString::new(out.join("var").as_os_str().as_bytes()).unwrap();
        let n = CString::new("trusted.overlay.opaque").unwrap();
        let mut buf = [0u8; 4];
        // SAFETY: valid C strings and buffer.
        let len = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), 4) };
        assert_eq!(&buf[..len as usize], b"y");
    }

    #[test]
    fn refuses_entries_that_climb_out() {
        let dir = tempfile::tempdir().unwrap();
        // tar::Header::set_path refuses "..", so write the name bytes directly.
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..9].copy_from_slice(b"../escape");
        h.set_entry_type(tar::EntryType::Regular);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(1);
        h.set_mode(0o644);
        h.set_cksum();
        let mut b = tar::Builder::new(Vec::new());
        b.append(&h, &b"x"[..]).unwrap();
        let blob = dir.path().join("blob");
        fs::write(&blob, b.into_inner().unwrap()).unwrap();
        let out = dir.path().join("out");
        fs::create_dir(&out).unwrap();
        let err = unpack_layer(&blob, Compression::None, &out).unwrap_err();
        assert!(err.to_string().contains("escapes"), "{err}");
        assert!(!dir.path().join("escape").exists());
    }
}
