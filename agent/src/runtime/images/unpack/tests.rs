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
