use super::*;

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn directories_are_made_or_tightened_to_0700() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("a/b");
    private_dir(&d).unwrap();
    assert_eq!(mode(&d), 0o700);
    assert_eq!(mode(&t.path().join("a")), 0o700, "parents made too");
    fs::set_permissions(&d, Permissions::from_mode(0o755)).unwrap();
    private_dir(&d).unwrap();
    assert_eq!(mode(&d), 0o700, "an older agent's 0755 is tightened");
}
