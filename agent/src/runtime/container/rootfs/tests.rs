use super::*;

#[test]
fn top_layer_comes_first() {
    let o = overlay_options(
        &["/l/a".into(), "/l/b".into()],
        Path::new("/e"),
        Path::new("/u"),
        Path::new("/w"),
    );
    assert_eq!(o, "lowerdir=/l/b:/l/a,upperdir=/u,workdir=/w");
    let o = overlay_options(&[], Path::new("/e"), Path::new("/u"), Path::new("/w"));
    assert!(o.starts_with("lowerdir=/e,"));
}

#[test]
fn the_bundle_is_0700_and_the_upper_dir_0755() {
    use std::os::unix::fs::PermissionsExt;
    if !nix::unistd::geteuid().is_root() {
        panic!("this test needs root (an overlay mount)");
    }
    let t = tempfile::tempdir().unwrap();
    let layer = t.path().join("layer");
    std::fs::create_dir(&layer).unwrap();
    std::fs::write(layer.join("f"), b"x").unwrap();
    let bundle = t.path().join("bundle");
    let rootfs = mount_rootfs(&bundle, &[layer]).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let (b, u) = (mode(&bundle), mode(&bundle.join("upper")));
    nix::mount::umount2(&rootfs, nix::mount::MntFlags::MNT_DETACH).unwrap();
    assert_eq!(b, 0o700, "the bundle: root's alone");
    assert_eq!(u, 0o755, "upper is the container's /");
}
