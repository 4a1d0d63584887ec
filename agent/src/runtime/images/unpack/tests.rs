use super::*;
use std::os::unix::{
    ffi::OsStrExt,
    fs::{FileTypeExt, MetadataExt},
};

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

/// One entry of a hand-made layer.
enum E<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8], u32),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    Char(&'a str, u32, u32),
    Xattr(&'a str, &'a str, &'a [u8]),
}

fn layer(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(0);
        h.set_mode(0o755);
        let (path, data): (&str, &[u8]) = match e {
            E::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                (p, b"")
            }
            E::File(p, d, mode) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(d.len() as u64);
                h.set_mode(*mode);
                (p, d)
            }
            E::Symlink(p, t) | E::Hardlink(p, t) => {
                h.set_entry_type(if matches!(e, E::Symlink(..)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                });
                // set_link_name refuses "..": write the bytes as they come.
                let l = &mut h.as_old_mut().linkname;
                l[..t.len()].copy_from_slice(t.as_bytes());
                (p, b"")
            }
            E::Char(p, maj, min) => {
                h.set_entry_type(tar::EntryType::Char);
                h.set_device_major(*maj).unwrap();
                h.set_device_minor(*min).unwrap();
                h.set_mode(0o666);
                (p, b"")
            }
            E::Xattr(p, name, value) => {
                let key = format!("SCHILY.xattr.{name}");
                b.append_pax_extensions([(key.as_str(), *value)]).unwrap();
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                (p, b"")
            }
        };
        let n = &mut h.as_old_mut().name;
        n.fill(0);
        n[..path.len()].copy_from_slice(path.as_bytes());
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

fn unpack(entries: &[E]) -> (tempfile::TempDir, PathBuf, io::Result<String>) {
    let dir = tempfile::tempdir().unwrap();
    let blob = dir.path().join("blob");
    fs::write(&blob, layer(entries)).unwrap();
    let out = dir.path().join("out");
    fs::create_dir(&out).unwrap();
    fs::create_dir(dir.path().join("outside")).unwrap();
    let r = unpack_layer(&blob, Compression::None, &out);
    (dir, out, r)
}

fn outside_untouched(dir: &Path) {
    let left: Vec<_> = fs::read_dir(dir.join("outside"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "created outside the layer: {left:?}");
}

fn getxattr(p: &Path, name: &str) -> Option<Vec<u8>> {
    let p = CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    let n = CString::new(name).unwrap();
    let mut buf = [0u8; 64];
    // SAFETY: valid C strings and buffer.
    let len = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), 64) };
    (len >= 0).then(|| buf[..len as usize].to_vec())
}

fn needs_root() {
    if !nix::unistd::geteuid().is_root() {
        panic!("this test needs root (mknod, chown, trusted.* xattrs)");
    }
}

/// The adversarial corpus: each case what containerd's unpacker does, or
/// stricter (see the module doc), and never a byte outside the layer.
#[test]
fn hostile_layers_stay_inside_the_layer() {
    needs_root();
    // Symlink to a directory outside, then an opaque marker and a
    // whiteout under it: resolved in the layer, the outside stays empty.
    let t = tempfile::tempdir().unwrap();
    let outside = t.path().join("target");
    fs::create_dir(&outside).unwrap();
    let abs = outside.to_str().unwrap().to_string();
    let (dir, out, r) = unpack(&[
        E::Symlink("x", &abs),
        E::File("x/a/b/.wh..wh..opq", b"", 0o644),
        E::File("x/c/.wh.gone", b"", 0o644),
        E::File("x/d/file", b"data", 0o644),
    ]);
    r.unwrap();
    assert!(
        fs::read_dir(&outside).unwrap().next().is_none(),
        "host dir written"
    );
    let inner = out.join(outside.strip_prefix("/").unwrap());
    assert_eq!(
        getxattr(&inner.join("a/b"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert!(
        fs::symlink_metadata(inner.join("c/gone"))
            .unwrap()
            .file_type()
            .is_char_device()
    );
    assert_eq!(fs::read(inner.join("d/file")).unwrap(), b"data");
    outside_untouched(dir.path());

    // A relative link that climbs: clamped at the layer's root.
    let (dir, out, r) = unpack(&[
        E::Symlink("up", "../../../../../.."),
        E::File("up/outside/.wh..wh..opq", b"", 0o644),
        E::File("up/outside/f", b"x", 0o644),
    ]);
    r.unwrap();
    assert!(out.join("outside/f").is_file());
    outside_untouched(dir.path());

    // A file entry named like an existing symlink replaces the link, it is
    // not written through it.
    let victim = t.path().join("victim");
    fs::write(&victim, b"keep").unwrap();
    let (_dir, out, r) = unpack(&[
        E::Symlink("f", victim.to_str().unwrap()),
        E::File("f", b"evil", 0o644),
    ]);
    r.unwrap();
    assert_eq!(fs::read(&victim).unwrap(), b"keep");
    assert_eq!(fs::read(out.join("f")).unwrap(), b"evil");

    // Hard links: through a symlink to the host's file, the layer's own
    // path is linked (here: nothing there, so the layer is refused); with
    // `..`, refused outright.
    let (dir, _out, r) = unpack(&[
        E::Symlink("h", t.path().to_str().unwrap()),
        E::Hardlink("stolen", "h/victim"),
    ]);
    assert!(r.is_err(), "hard link through a symlink to the host");
    assert_eq!(fs::metadata(&victim).unwrap().nlink(), 1);
    outside_untouched(dir.path());
    let (dir, _out, r) = unpack(&[E::Hardlink("stolen", "../outside/../../victim")]);
    assert!(r.unwrap_err().to_string().contains("escapes"));
    assert_eq!(fs::metadata(&victim).unwrap().nlink(), 1);
    outside_untouched(dir.path());
    // An ordinary hard link inside the layer works.
    let (_dir, out, r) = unpack(&[E::File("a", b"same", 0o644), E::Hardlink("b", "a")]);
    r.unwrap();
    assert_eq!(
        fs::metadata(out.join("b")).unwrap().ino(),
        fs::metadata(out.join("a")).unwrap().ino()
    );

    // `..` in a name: refused; an absolute name: relative to the layer.
    let (dir, _out, r) = unpack(&[E::File("a/../../outside/x", b"x", 0o644)]);
    assert!(r.unwrap_err().to_string().contains("escapes"));
    outside_untouched(dir.path());
    let (dir, out, r) = unpack(&[E::File("/abs", b"x", 0o644)]);
    r.unwrap();
    assert!(out.join("abs").is_file());
    outside_untouched(dir.path());

    // Device nodes are made (as containerd does as root), set-id bits kept.
    let (_dir, out, r) = unpack(&[
        E::Dir("dev"),
        E::Char("dev/null", 1, 3),
        E::File("su", b"#!", 0o4755),
        E::File("sg", b"#!", 0o2755),
    ]);
    r.unwrap();
    let md = fs::symlink_metadata(out.join("dev/null")).unwrap();
    assert!(md.file_type().is_char_device());
    assert_eq!(md.rdev(), libc::makedev(1, 3));
    assert_eq!(
        fs::metadata(out.join("su")).unwrap().mode() & 0o7777,
        0o4755
    );
    assert_eq!(
        fs::metadata(out.join("sg")).unwrap().mode() & 0o7777,
        0o2755
    );

    // trusted.* xattrs (overlayfs metadata among them) are dropped,
    // user.* kept.
    let (_dir, out, r) = unpack(&[
        E::Xattr("t", "trusted.overlay.redirect", b"/etc"),
        E::Xattr("u", "user.note", b"hi"),
    ]);
    r.unwrap();
    assert_eq!(getxattr(&out.join("t"), "trusted.overlay.redirect"), None);
    assert_eq!(
        getxattr(&out.join("u"), "user.note").as_deref(),
        Some(&b"hi"[..])
    );
}
