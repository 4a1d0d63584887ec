use std::os::unix::fs::PermissionsExt;

use super::*;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn the_state_file_is_0600_in_a_0700_dir() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("control");
    private_dir(&dir).unwrap();
    assert_eq!(mode(&dir), 0o700);
    let db = dir.join("state.redb");
    let mut b = RedbBackend::open(&db).unwrap();
    b.load().unwrap();
    assert_eq!(mode(&db), 0o600);
    drop(b);
    // An older keel-control's 0644 file and 0755 dir are tightened.
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    private_dir(&dir).unwrap();
    let mut b = RedbBackend::open(&db).unwrap();
    b.load().unwrap();
    assert_eq!((mode(&dir), mode(&db)), (0o700, 0o600));
}
