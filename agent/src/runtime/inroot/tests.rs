use super::*;
use std::{fs, os::unix::fs::symlink};

#[test]
fn in_root_follows_links_as_the_container_would() {
    let t = tempfile::tempdir().unwrap();
    let (root, outside) = (t.path().join("root"), t.path().join("outside"));
    fs::create_dir_all(&root).unwrap();
    fs::create_dir_all(&outside).unwrap();
    // An absolute link to a real directory outside, and one that climbs.
    symlink(&outside, root.join("abs")).unwrap();
    symlink("../../../..", root.join("up")).unwrap();
    let r = open_root(&root).unwrap();
    open_dir(&r, Path::new("abs/a/b"), Scope::InRoot, Some(0o755)).unwrap();
    open_dir(&r, Path::new("up/c"), Scope::InRoot, Some(0o755)).unwrap();
    assert!(
        fs::read_dir(&outside).unwrap().next().is_none(),
        "nothing outside"
    );
    let inner = root.join(outside.strip_prefix("/").unwrap());
    assert!(inner.join("a/b").is_dir());
    assert!(root.join("c").is_dir());
}

#[test]
fn beneath_refuses_links_that_leave_and_creates_nothing() {
    let t = tempfile::tempdir().unwrap();
    let (root, outside) = (t.path().join("root"), t.path().join("outside"));
    fs::create_dir_all(&root).unwrap();
    fs::create_dir_all(&outside).unwrap();
    symlink(&outside, root.join("abs")).unwrap();
    symlink("..", root.join("up")).unwrap();
    let r = open_root(&root).unwrap();
    for p in ["abs/a", "up/outside/a"] {
        let e = open_dir(&r, Path::new(p), Scope::Beneath, Some(0o755)).unwrap_err();
        assert!(is_escape(&e), "{p}: {e}");
    }
    assert!(fs::read_dir(&outside).unwrap().next().is_none());
    // A link that stays inside is fine.
    fs::create_dir(root.join("real")).unwrap();
    symlink("real", root.join("rel")).unwrap();
    open_dir(&r, Path::new("rel/x"), Scope::Beneath, Some(0o700)).unwrap();
    assert!(root.join("real/x").is_dir());
}

#[test]
fn parent_dir_components_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let r = open_root(t.path()).unwrap();
    let e = open_dir(&r, Path::new("a/../../b"), Scope::InRoot, Some(0o755)).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    assert!(!t.path().join("a").exists());
}

#[test]
fn missing_without_create_is_not_found() {
    let t = tempfile::tempdir().unwrap();
    let r = open_root(t.path()).unwrap();
    let e = open_dir(&r, Path::new("nope"), Scope::Beneath, None).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
}
