use super::*;

fn args(s: &str) -> Vec<String> {
    s.split(' ').map(String::from).collect()
}

#[test]
fn only_keel_named_containerd_processes_are_ours() {
    let p = "keel-t";
    assert!(is_keel_containerd(
        &args("/usr/bin/containerd --config /tmp/keel-t-ctrd-x/config.toml"),
        p
    ));
    assert!(is_keel_containerd(
        &args(
            "/usr/bin/containerd-shim-runc-v2 -namespace n -id i -address /tmp/keel-t-ctrd-x/c.sock"
        ),
        p
    ));
    assert!(is_keel_containerd(
        &args("/x/keel-agent containerd-log /tmp/keel-t-runtime-y/pods/u/logs/c/0.log"),
        p
    ));
    // The system's containerd and its shims are never ours.
    assert!(!is_keel_containerd(&args("/usr/bin/containerd"), p));
    assert!(!is_keel_containerd(
        &args("/usr/bin/containerd --config /etc/containerd/config.toml"),
        p
    ));
    assert!(!is_keel_containerd(
        &args(
            "/usr/bin/containerd-shim-runc-v2 -namespace k8s.io -id keel-t-x -address /run/containerd/containerd.sock"
        ),
        p
    ));
    assert!(!is_keel_containerd(
        &args("/x/keel-agent shim --dir /tmp/keel-t-a"),
        p
    ));
}

#[test]
fn shim_sockets_follow_containerd() {
    // sha256("/a/c.sock/ns/id"), as containerd 1.6 names it.
    let s = shim_socket(&args(
        "/usr/bin/containerd-shim-runc-v2 -namespace ns -id id -address /a/c.sock",
    ))
    .unwrap();
    assert_eq!(
        s,
        Path::new(
            "/run/containerd/s/3f4a67047e481c848af0d7bc41e65452303aa897fa35538183d2e926985a0e04"
        )
    );
    assert_eq!(shim_socket(&args("/usr/bin/containerd --config x")), None);
}
