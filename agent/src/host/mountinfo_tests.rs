use super::*;

/// This machine's layout: a hybrid host (cgroup v1 controllers under
/// /sys/fs/cgroup, v2 at /sys/fs/cgroup/unified) with bpffs mounted.
const HYBRID: &str = "\
23 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 23 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:10 - cgroup2 cgroup2 rw
42 31 0:39 / /sys/fs/cgroup/memory rw,relatime shared:11 - cgroup cgroup rw,memory
52 23 0:40 / /sys/fs/bpf rw,relatime shared:12 - bpf bpf rw
60 1 8:1 / /srv/my\\040data rw - ext4 /dev/sda1 rw
";

/// A unified host, and a container that sees only its own cgroup.
const UNIFIED: &str = "\
30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate
";
const CONTAINER: &str = "\
700 600 0:26 /kubepods/pod1 /sys/fs/cgroup ro,nosuid - cgroup2 cgroup rw
";

#[test]
fn finds_cgroup2_on_hybrid_and_unified_hosts() {
    assert_eq!(
        cgroup2_root(&parse(HYBRID)),
        Some(PathBuf::from("/sys/fs/cgroup/unified"))
    );
    assert_eq!(
        cgroup2_root(&parse(UNIFIED)),
        Some(PathBuf::from("/sys/fs/cgroup"))
    );
    // Only a subtree of the hierarchy: not the node's root.
    assert_eq!(cgroup2_root(&parse(CONTAINER)), None);
    assert_eq!(cgroup2_root(&parse("")), None);
}

#[test]
fn which_filesystem_a_path_is_on() {
    let m = parse(HYBRID);
    assert!(is_on(&m, Path::new("/sys/fs/bpf/keel/node-1"), "bpf"));
    assert!(is_on(
        &m,
        Path::new("/sys/fs/cgroup/unified/keel"),
        "cgroup2"
    ));
    assert!(!is_on(&m, Path::new("/sys/fs/cgroup/memory"), "cgroup2"));
    assert!(!is_on(&m, Path::new("/sys/fs/bpfx"), "bpf"));
    assert!(!is_on(&m, Path::new("/tmp/x"), "bpf"));
    // Escaped mount points.
    assert!(is_on(&m, Path::new("/srv/my data/x"), "ext4"));
    // A later mount on the same point hides the earlier one.
    let over = format!("{HYBRID}70 52 0:50 / /sys/fs/bpf rw - tmpfs tmpfs rw\n");
    assert!(!is_on(&parse(&over), Path::new("/sys/fs/bpf/keel"), "bpf"));
}

#[test]
fn malformed_lines_are_skipped() {
    let m = parse("garbage\n41 31 0:38 / /a rw - cgroup2 cgroup2 rw\n1 2\n");
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].point, PathBuf::from("/a"));
}
