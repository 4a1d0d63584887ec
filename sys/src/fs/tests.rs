use std::{io::Write, os::unix::fs::PermissionsExt};

use nix::{
    sched::{CloneFlags, unshare},
    sys::stat::{Mode, umask},
};

use super::*;

/// Names in `dir`, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// Runs `f` on a thread with its own umask (`unshare(CLONE_FS)`), so the
/// other tests of this process keep theirs.
fn with_umask<T: Send + 'static>(mask: u32, f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        unshare(CloneFlags::CLONE_FS).expect("unshare(CLONE_FS)");
        umask(Mode::from_bits_truncate(mask));
        f()
    })
    .join()
    .unwrap()
}

#[test]
fn the_content_lands_and_replaces_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    write_atomic(&path, b"one", 0o600).unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"one");
    write_atomic(&path, b"two, longer", 0o600).unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"two, longer");
    assert_eq!(
        entries(dir.path()),
        ["state.json"],
        "no temporary file left"
    );
}

#[test]
fn a_stream_larger_than_the_buffer_lands_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.json");
    let chunk = [b'x'; 4096];
    let chunks = 3 * STREAM_BUFFER / chunk.len() + 1;
    write_atomic_with(&path, 0o600, |w| {
        for _ in 0..chunks {
            w.write_all(&chunk)?;
        }
        serde_json::to_writer(&mut *w, &["end"])?;
        Ok(())
    })
    .unwrap();
    let got = fs::read(&path).unwrap();
    assert_eq!(got.len(), chunks * chunk.len() + br#"["end"]"#.len());
    assert!(got.ends_with(br#"x["end"]"#));
    assert_eq!(entries(dir.path()), ["cache.json"]);
}

#[test]
fn the_mode_is_the_one_asked_for_whatever_the_umask() {
    let dir = tempfile::tempdir().unwrap();
    let (secret, shared) = (dir.path().join("token"), dir.path().join("net.conflist"));
    // A permissive umask must not open up a secret...
    let s = secret.clone();
    with_umask(0o000, move || write_atomic(&s, b"t", 0o600)).unwrap();
    assert_eq!(mode_of(&secret), 0o600);
    // ...and a strict one must not close a file meant to be shared.
    let s = shared.clone();
    with_umask(0o077, move || {
        write_atomic_with(&s, 0o644, |w| w.write_all(b"{}"))
    })
    .unwrap();
    assert_eq!(mode_of(&shared), 0o644);
    // The replacement carries the mode asked for, not the old file's.
    fs::set_permissions(&secret, Permissions::from_mode(0o666)).unwrap();
    write_atomic(&secret, b"u", 0o600).unwrap();
    assert_eq!(mode_of(&secret), 0o600);
}

#[test]
fn a_failed_write_keeps_the_old_file_and_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    write_atomic(&path, b"old", 0o600).unwrap();

    let e = write_atomic_with(&path, 0o600, |w| {
        w.write_all(&[b'n'; 2 * STREAM_BUFFER])?;
        Err(io::Error::other("serialiser gave up"))
    })
    .unwrap_err();
    assert_eq!(e.step, Step::Write);
    assert_eq!(e.path, path);
    assert!(e.to_string().contains("state.json"), "{e}");
    assert_eq!(fs::read(&path).unwrap(), b"old");
    assert_eq!(entries(dir.path()), ["state.json"]);

    // A rename that fails (a directory is in the way) cleans up too.
    let blocked = dir.path().join("blocked");
    fs::create_dir(&blocked).unwrap();
    fs::write(blocked.join("inside"), b"").unwrap();
    let e = write_atomic(&blocked, b"new", 0o600).unwrap_err();
    assert_eq!(e.step, Step::Rename);
    assert_eq!(entries(dir.path()), ["blocked", "state.json"]);
}

#[test]
fn a_missing_directory_is_an_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent/state.json");
    let e = write_atomic(&path, b"x", 0o600).unwrap_err();
    assert_eq!(e.step, Step::Create);
    assert_eq!(e.source.kind(), io::ErrorKind::NotFound);
    assert!(e.to_string().contains("absent/state.json"), "{e}");
}

#[test]
fn persist_moves_a_finished_file_into_place() {
    let dir = tempfile::tempdir().unwrap();
    let (tmp, path) = (dir.path().join("download"), dir.path().join("blob"));
    fs::write(&path, b"old").unwrap();
    fs::write(&tmp, b"new").unwrap();
    persist(&tmp, &path).unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"new");
    assert_eq!(entries(dir.path()), ["blob"]);
    let e = persist(&tmp, &path).unwrap_err();
    assert_eq!(e.step, Step::Sync, "the temporary file is gone");
}

#[test]
fn remove_temps_takes_only_the_files_own_leftovers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    for n in [
        "state.json",
        ".state.json.41.0.tmp",
        ".state.json.41.7.tmp",
        // Another file's, or not ours at all.
        ".state.json.bak.41.0.tmp",
        ".state.json.x.tmp",
        "state.json.tmp",
        ".state.json.41.tmp",
    ] {
        fs::write(dir.path().join(n), b"").unwrap();
    }
    assert_eq!(remove_temps(&path).unwrap(), 2);
    assert_eq!(
        entries(dir.path()),
        [
            ".state.json.41.tmp",
            ".state.json.bak.41.0.tmp",
            ".state.json.x.tmp",
            "state.json",
            "state.json.tmp",
        ]
    );
}

#[test]
fn a_bare_file_name_uses_the_current_directory() {
    assert_eq!(dir_of(Path::new("state.json")), Path::new("."));
    assert_eq!(dir_of(Path::new("/a/state.json")), Path::new("/a"));
    let name = temp_name(OsStr::new("state.json"), 3);
    assert!(is_temp_of(name.as_bytes(), b"state.json"), "{name:?}");
}
