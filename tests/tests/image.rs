//! The OCI image of keel-agent + keel-cni (`cargo xtask image`, here from
//! the debug binaries) deployed DaemonSet-style: podman runs it privileged
//! with the host's PID namespace and the network namespace of a test node
//! (podman itself runs inside that namespace, so `--network host` is the
//! node's, never the machine's), and the agent in it registers its Node
//! with a keel-control the test started in the same namespace.

use std::{
    process::{Command, Output},
    time::Duration,
};

use keel_api::{
    Node,
    client::{Client, ClientConfig},
};
use keel_sys::ns::NetNs;
use keel_tests::{
    TestNetns,
    lb_node::NsProcess,
    podman::{self, Podman},
    process::{bin, wait_for},
};

const NODE: &str = "image-node";
const NODE_IP: &str = "10.0.0.1";

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn image_runs_privileged_and_registers_a_node() {
    keel_tests::require_root();
    assert!(
        podman::available(),
        "podman is missing (`cargo xtask setup` installs it)"
    );
    let dir = tempfile::Builder::new()
        .prefix("keel-t-image-")
        .tempdir()
        .unwrap();
    let bins = bin("keel-agent").parent().unwrap().to_path_buf();
    let built = Command::new(bin("xtask"))
        .args(["image", "--bin-dir"])
        .arg(&bins)
        .arg("--out")
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    ok(&built, "xtask image");
    let archive = dir.path().join(format!(
        "out/keel-agent-{}-oci.tar",
        env!("CARGO_PKG_VERSION")
    ));
    assert_eq!(
        String::from_utf8_lossy(&built.stdout).trim(),
        archive.display().to_string()
    );
    // Binaries only: the agent, the CNI plugin, their libraries.
    let layout = dir
        .path()
        .join(format!("out/keel-agent-{}-oci", env!("CARGO_PKG_VERSION")));
    assert!(layout.join("index.json").is_file());
    assert!(layout.join("oci-layout").is_file());

    let netns = TestNetns::new("image").expect("netns");
    for args in [
        "link add up0 type veth peer name up0p",
        "link set up0 up",
        "link set up0p up",
        "addr add 10.0.0.1/24 dev up0",
    ] {
        let st = netns
            .command("ip")
            .args(args.split_whitespace())
            .status()
            .unwrap();
        assert!(st.success(), "ip {args}");
    }
    let control_dir = dir.path().join("control");
    let control = NsProcess::start(
        &netns,
        bin("keel-control"),
        vec![
            "--listen".into(),
            "127.0.0.1:6443".into(),
            "--data-dir".into(),
            control_dir.display().to_string(),
            "--config".into(),
            "/dev/null".into(),
        ],
        dir.path().join("control.log"),
    );
    wait_for(
        "keel-control's client.json",
        Duration::from_secs(20),
        || control_dir.join("client.json").exists().then_some(()),
    );
    let config = ClientConfig::load(&control_dir.join("client.json")).expect("client config");
    let client = Client::with_connector(
        &config,
        keel_lab::connect::in_netns(&NetNs::named_path(netns.name())),
    )
    .expect("client");

    // The containerized agent joins as a real machine does: a bootstrap
    // token, the cluster CA pinned by its hash, TLS.
    // client.json is written before the port listens: retry until it does.
    let mut created = None;
    for _ in 0..40 {
        let out = netns
            .command(bin("keelctl").to_str().unwrap())
            .arg("--config")
            .arg(control_dir.join("client.json"))
            .args([
                "token",
                "create",
                "--ttl",
                "10m",
                "--description",
                "image test",
            ])
            .output()
            .expect("keelctl token create");
        let refused = String::from_utf8_lossy(&out.stderr).contains("Connection refused");
        created = Some(out);
        if !refused {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let created = created.expect("at least one try");
    ok(&created, "keelctl token create");
    let join = keel_lab::join_flags(&String::from_utf8_lossy(&created.stdout))
        .expect("keelctl token create printed a join command");

    // `--network host` runs no CNI plugin; podman wants a directory all the same.
    let pm = Podman::new(std::slice::from_ref(&bins), &[]).expect("podman setup");
    let container = format!("keel-t-image-{}", std::process::id());
    let mut args: Vec<String> = [
        "run",
        "-d",
        "--name",
        &container,
        "--privileged",
        "--pid",
        "host",
        "--network",
        "host",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(pm.run_args());
    args.extend([format!("oci-archive:{}", archive.display()), "join".into()]);
    args.extend(join);
    args.extend([
        // Only registration: the node's networking, runtime, load
        // balancer and pods stay off in this test node.
        "--node-name".into(),
        NODE.into(),
        "--node-ip".into(),
        NODE_IP.into(),
        "--heartbeat-interval".into(),
        "1s".into(),
        "--network-mode".into(),
        "none".into(),
        "--runtime".into(),
        "none".into(),
        "--cgroup-root".into(),
        "none".into(),
        "--cni-bin-dir".into(),
        "none".into(),
        "--cluster-dns".into(),
        "none".into(),
    ]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = pm
        .podman(&netns, &argv, Duration::from_secs(180))
        .expect("podman run");
    ok(&out, "podman run");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let registered = (0..120).find_map(|_| {
        let node = rt.block_on(client.get::<Node>("", NODE)).ok();
        if node
            .as_ref()
            .is_some_and(|n| n.is_ready() && n.internal_ip() == Some(NODE_IP))
        {
            return node;
        }
        std::thread::sleep(Duration::from_millis(500));
        None
    });
    let logs = pm
        .podman(&netns, &["logs", &container], Duration::from_secs(30))
        .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
        .unwrap_or_default();
    let removed = pm
        .podman(
            &netns,
            &["rm", "-f", "-t", "5", &container],
            Duration::from_secs(60),
        )
        .expect("podman rm");
    let node = registered.unwrap_or_else(|| {
        panic!(
            "the containerized agent registered no Ready node {NODE}; its log:\n{logs}\ncontrol's log:\n{}",
            control.log_text()
        )
    });
    assert_eq!(node.metadata.name, NODE);
    assert!(logs.contains("keel-agent starting"), "{logs}");
    ok(&removed, "podman rm");
}
