use super::*;

#[test]
fn a_missing_cgroup_is_named_in_the_error() {
    let ns = NetNs::open("/proc/self/ns/net").expect("own namespace");
    let dir = Path::new("/nonexistent/keel-sys-test");
    let err = InNetns::new(&ns)
        .expect("dup")
        .cgroup(dir)
        .expect_err("no such cgroup");
    assert!(
        matches!(&err, CommandError::Cgroup { dir: d, .. } if d == dir),
        "{err:?}"
    );
    assert!(err.to_string().contains("/nonexistent/keel-sys-test"));
}
