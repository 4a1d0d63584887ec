use super::*;

#[test]
fn capability_numbers_follow_the_kernel() {
    assert_eq!(cap_number("CAP_CHOWN"), Some(0));
    assert_eq!(cap_number("CAP_SYS_ADMIN"), Some(21));
    assert_eq!(cap_number("CAP_SYS_RESOURCE"), Some(24));
    assert_eq!(cap_number("CAP_CHECKPOINT_RESTORE"), Some(40));
    assert_eq!(cap_number("CAP_NOPE"), None);
    let b = bounding_caps();
    assert!(
        b.iter()
            .all(|c| super::super::container::resolve::ALL_CAPS.contains(&c.as_str()))
    );
    if nix::unistd::geteuid().is_root() {
        assert!(b.contains(&"CAP_CHOWN".to_string()), "{b:?}");
    }
}

#[test]
fn pod_files_are_written_once_and_mounted() {
    let dir = tempfile::tempdir().unwrap();
    let m = write_pod_files(dir.path(), "web-0").unwrap();
    assert_eq!(
        m.iter().map(|b| b.destination.as_str()).collect::<Vec<_>>(),
        ["/etc/hosts", "/etc/hostname"]
    );
    let hosts = fs::read_to_string(dir.path().join("etc/hosts")).unwrap();
    assert!(hosts.contains("127.0.1.1\tweb-0"), "{hosts}");
    fs::write(
        dir.path().join("etc/resolv.conf"),
        "nameserver 10.96.0.10\n",
    )
    .unwrap();
    let m = write_pod_files(dir.path(), "other").unwrap();
    assert_eq!(m.len(), 3, "resolv.conf is mounted once there is one");
    assert!(
        fs::read_to_string(dir.path().join("etc/hostname"))
            .unwrap()
            .starts_with("web-0"),
        "written once"
    );
}
