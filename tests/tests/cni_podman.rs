//! A real runtime uses keel-cni: Debian's podman 4.3 (CNI backend, real
//! libcni) starts a container on a keel network chained with Debian's
//! `tuning`, confined to a test node namespace (see keel_tests::podman).
//! The container gets its /32 from keel, reaches the node through its
//! default route, and when podman removes it, keel's DEL leaves nothing.

use std::{
    io::{BufRead, BufReader},
    net::TcpListener,
    path::PathBuf,
    time::{Duration, Instant},
};

use keel_tests::{
    cni::{DEBIAN_CNI_DIR, Node, keel_bin_dir},
    podman::{self, Podman},
    require_root,
};
use serde_json::json;

#[test]
fn podman_runs_a_container_attached_by_keel_cni() {
    require_root();
    assert!(
        podman::available(),
        "podman is not installed; `cargo xtask setup` installs it"
    );
    let node = Node::new("cni-podman");
    let conflist = json!({
        "cniVersion": "1.0.0",
        "name": "keelnet",
        "plugins": [
            {"type": "keel", "subnet": "10.47.0.0/24", "mtu": 1400, "dataDir": node.data.path()},
            {"type": "tuning", "sysctl": {"net.ipv4.conf.eth0.arp_notify": "1"}},
        ],
    });
    let podman = Podman::new(
        &[keel_bin_dir(false), PathBuf::from(DEBIAN_CNI_DIR)],
        &[("keelnet", conflist)],
    )
    .expect("setting up podman's directories");

    // The node listens; the container dials the gateway with its address.
    let listener = node.ns.run(|| TcpListener::bind("0.0.0.0:7777")).unwrap();
    listener.set_nonblocking(true).unwrap();
    let accept = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            match listener.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(false).unwrap();
                    stream
                        .set_read_timeout(Some(Duration::from_secs(10)))
                        .unwrap();
                    let mut line = String::new();
                    let _ = BufReader::new(stream).read_line(&mut line);
                    return Some(line);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(e) => panic!("accept: {e}"),
            }
        }
        None
    });

    let rootfs = podman.rootfs();
    let run_args = podman.run_args();
    let mut args = vec!["run", "--rm", "--network", "keelnet"];
    args.extend(run_args.iter().map(String::as_str));
    args.extend([
        "--rootfs",
        rootfs.to_str().unwrap(),
        "/bin/sh",
        "-c",
        "ip -4 -o addr show dev eth0 | nc 10.47.0.1 7777; cat /proc/sys/net/ipv4/conf/eth0/arp_notify",
    ]);
    let out = podman
        .podman(&node.ns, &args, Duration::from_secs(120))
        .expect("running podman");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "podman run failed: {}\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );

    let line = accept
        .join()
        .unwrap()
        .expect("the container never connected to the node");
    assert!(
        line.contains("eth0") && line.contains("inet 10.47.0.") && line.contains("/32"),
        "container said {line:?}"
    );
    assert_eq!(
        stdout.trim(),
        "1",
        "tuning (after keel in the chain) applied its sysctl"
    );

    // podman ran DEL through the chain when it removed the container.
    assert!(
        node.keel_links().is_empty(),
        "a veth outlived the container"
    );
    assert!(
        node.reservations("keelnet").is_empty(),
        "the address was not released"
    );
}
