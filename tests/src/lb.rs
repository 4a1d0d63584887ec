//! Support for the load-balancer tests: the agent's datapath loaded against
//! a private bpffs, with its maps programmed through the agent's own
//! planner and applier, and small builders for frontends and backends.

use std::net::Ipv4Addr;

use keel_agent::lb::{
    apply::{apply, observe},
    common::LbConfig,
    datapath::Datapath,
    desired::Desired,
    maps::{AyaMaps, LbMaps},
    model::{Addr, BackendSpec, Frontend, FrontendSpec, Proto},
    observed::Observed,
    plan::{Plan, Scope, plan},
};

use crate::TestBpffs;

/// The LB programs loaded (not attached) with maps pinned in a private
/// bpffs, and the state to program them.
pub struct LbFixture {
    pub maps: AyaMaps,
    pub dp: Datapath,
    pub observed: Observed,
    pub desired: Desired,
    // Last: unmounted after everything using it is gone.
    pub bpffs: TestBpffs,
}

impl LbFixture {
    pub fn new(what: &str) -> Self {
        let bpffs = TestBpffs::new(what).expect("mounting a private bpffs");
        let mut dp = Datapath::load(&bpffs.path().join("node")).expect("loading the LB programs");
        let maps = dp.maps().expect("LB maps");
        let observed = observe(&maps).expect("reading the LB maps");
        Self {
            maps,
            dp,
            observed,
            desired: Desired::default(),
            bpffs,
        }
    }

    /// The node IP the TC programs SNAT to.
    pub fn set_snat(&mut self, ip: &str) {
        let ip: Ipv4Addr = ip.parse().expect("ip");
        self.maps
            .set_config(&LbConfig {
                snat_addr: u32::from_ne_bytes(ip.octets()),
                _pad: [0; 3],
            })
            .expect("config");
    }

    /// Makes `service` contribute exactly `frontends`, and applies the delta.
    pub fn set(&mut self, service: &str, frontends: Vec<(Frontend, FrontendSpec)>) -> Plan {
        let touched = self.desired.set_service(service, frontends, vec![]);
        let p = plan(&self.desired, &self.observed, Scope::Only(&touched));
        apply(&p, &mut self.maps, &mut self.observed).expect("applying to the real maps");
        p
    }

    pub fn remove(&mut self, service: &str) -> Plan {
        let touched = self.desired.remove_service(service);
        let p = plan(&self.desired, &self.observed, Scope::Only(&touched));
        apply(&p, &mut self.maps, &mut self.observed).expect("applying to the real maps");
        p
    }
}

/// "10.96.0.10:80/TCP"
pub fn addr(s: &str) -> Addr {
    let (hostport, proto) = s.split_once('/').expect("ADDR:PORT/PROTO");
    let (ip, port) = hostport.rsplit_once(':').expect("ADDR:PORT");
    let proto = match proto {
        "TCP" => Proto::Tcp,
        "UDP" => Proto::Udp,
        p => panic!("protocol {p}"),
    };
    Addr::new(ip.parse().expect("ip"), port.parse().expect("port"), proto)
}

/// A frontend spec: flags, affinity timeout, backends ("…*" = local).
pub fn spec(flags: u8, affinity: u32, backends: &[&str]) -> FrontendSpec {
    let mut backends: Vec<BackendSpec> = backends
        .iter()
        .map(|b| match b.strip_suffix('*') {
            Some(b) => BackendSpec {
                addr: addr(b),
                local: true,
            },
            None => BackendSpec {
                addr: addr(b),
                local: false,
            },
        })
        .collect();
    backends.sort();
    FrontendSpec {
        service: "test/svc".into(),
        flags,
        affinity_timeout: affinity,
        backends,
    }
}

/// A process a test started; ended by PID (SIGTERM, then SIGKILL) on drop.
pub struct Spawned {
    pub child: std::process::Child,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        crate::process::stop_child(&mut self.child, std::time::Duration::from_secs(2));
    }
}

/// Starts `keel-testbin id-serve ADDR...` inside `netns` and waits (10 s at
/// most) until it says it is listening.
pub fn id_server(netns: &crate::TestNetns, addrs: &[&str]) -> Spawned {
    use std::io::{BufRead, BufReader};
    let mut child = netns
        .command(
            crate::process::bin("keel-testbin")
                .to_str()
                .expect("utf-8 path"),
        )
        .arg("id-serve")
        .args(addrs)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("starting keel-testbin id-serve");
    let stdout = child.stdout.take().expect("stdout");
    let guard = Spawned { child };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("id-serve did not start within 10 s");
    assert_eq!(line.trim(), "listening", "id-serve: {line:?}");
    guard
}

/// Runs `keel-testbin lb-dial KIND ADDR N` inside `netns` and inside
/// `cgroup` (where the socket programs are attached), one line per dial.
pub fn dial(
    netns: &crate::TestNetns,
    cgroup: &crate::TestCgroup,
    kind: &str,
    addr: &str,
    n: usize,
) -> Vec<String> {
    let bin = crate::process::bin("keel-testbin");
    let bin = bin.to_str().expect("utf-8 path");
    let out = netns
        .command(bin)
        .args([
            "join-cgroup",
            cgroup.path().to_str().expect("utf-8 path"),
            "--",
        ])
        .args([bin, "lb-dial", kind, addr, &n.to_string()])
        .output()
        .expect("running lb-dial");
    assert!(
        out.status.success(),
        "lb-dial {kind} {addr}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The `key=value` field of a dial line.
pub fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

/// A lab node's agent socket.
pub fn lab_agent_socket(lab: &keel_lab::Lab, node: &str) -> std::path::PathBuf {
    lab.state.dir.join(node).join("agent.sock")
}

/// Restarts every agent of `lab` with the load balancer on
/// (`--cgroup-root` = the node's cgroup subtree, pins under `bpffs/<node>`)
/// and waits (60 s at most each) until each has synced.
pub fn enable_lb(lab: &mut keel_lab::Lab, bpffs: &TestBpffs) {
    let cg = keel_lab::cgroup2_root().expect("cgroup2 root");
    let nodes: Vec<String> = lab
        .topology()
        .nodes
        .iter()
        .map(|n| n.role.clone())
        .collect();
    for node in &nodes {
        lab.stop_agent(node).expect("stopping an agent");
        // The agent moves its pins to `bpffs`: what it pinned in the lab's
        // own directory (host routing) is detached first, so only one set
        // of programs sits on its devices.
        keel_agent::net::hostrouting::datapath::remove(
            &lab.topology().node_bpffs(node).join("net"),
        )
        .expect("removing the lab's host-routing pins");
        let cgroup = cg.join(lab.topology().node_cgroup(node));
        let pins = bpffs.path().join(node);
        lab.start_agent_with(
            node,
            &[
                ("--cgroup-root", &cgroup.display().to_string()),
                ("--bpffs", &pins.display().to_string()),
            ],
        )
        .expect("starting an agent");
    }
    for node in &nodes {
        let sock = lab_agent_socket(lab, node);
        crate::process::wait_for(
            &format!("{node}'s load balancer"),
            std::time::Duration::from_secs(60),
            || {
                let s: serde_json::Value =
                    serde_json::from_str(&crate::lb_node::agent_get(&sock, "/lb/status")?).ok()?;
                (s["programmed"] == true).then_some(())
            },
        );
    }
}

/// `keel-testbin ARGS` inside the named network namespace `netns` and, if
/// given, cgroup `cg` (lab pods, nodes, `ext`).
pub fn testbin_in(
    netns: &str,
    cg: Option<&std::path::Path>,
    args: &[&str],
) -> std::process::Command {
    use keel_sys::{command::InNetns, ns::NetNs};
    let tb = crate::process::bin("keel-testbin");
    let tb = tb.to_str().expect("utf-8 path").to_string();
    let mut cmd = std::process::Command::new(&tb);
    if let Some(cg) = cg {
        cmd.args(["join-cgroup", cg.to_str().expect("utf-8 path"), "--", &tb]);
    }
    cmd.args(args);
    let ns = NetNs::open(NetNs::named_path(netns)).unwrap_or_else(|e| panic!("{e}"));
    InNetns::new(&ns)
        .unwrap_or_else(|e| panic!("{e}"))
        .apply(&mut cmd);
    cmd
}

/// Creates lab pods (name, node, app), each exposing port 8080 and labelled
/// `lbtest=yes`, and waits (60 s at most) until all are Ready: name → (IP,
/// network namespace).
pub fn lab_pods(
    lab: &keel_lab::Lab,
    placement: &[(&str, &str, &str)],
) -> std::collections::BTreeMap<String, (Ipv4Addr, String)> {
    use keel_api::{Pod, client::ListParams};
    let c = lab.client().expect("lab client");
    for (name, node, app) in placement {
        let p: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "default", "labels": {"app": app, "lbtest": "yes"}},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "none",
                "ports": [{"containerPort": 8080}]}]}
        }))
        .expect("pod");
        keel_lab::block_on(c.create(&p)).expect("creating a pod");
    }
    let want: std::collections::BTreeSet<&str> = placement.iter().map(|p| p.0).collect();
    crate::process::wait_for(
        "pods to be ready",
        std::time::Duration::from_secs(60),
        || {
            let list =
                keel_lab::block_on(c.list::<Pod>("default", &ListParams::labels("lbtest=yes")))
                    .ok()?;
            let ready: std::collections::BTreeMap<String, (Ipv4Addr, String)> = list
                .items
                .iter()
                .filter(|p| p.is_ready() && want.contains(p.metadata.name.as_str()))
                .filter_map(|p| {
                    Some((
                        p.metadata.name.clone(),
                        (p.status.pod_ip.parse().ok()?, lab.pod_netns(p).ok()?),
                    ))
                })
                .collect();
            (ready.len() == placement.len()).then_some(ready)
        },
    )
}

/// `keel-testbin id-serve IP:8080` inside each named pod's namespace.
pub fn serve_in_pods(
    pods: &std::collections::BTreeMap<String, (Ipv4Addr, String)>,
    names: &[&str],
) -> Vec<Spawned> {
    use std::io::{BufRead, BufReader};
    names
        .iter()
        .map(|name| {
            let (ip, netns) = &pods[*name];
            let mut child = testbin_in(netns, None, &["id-serve", &format!("{ip}:8080")])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("starting id-serve");
            let stdout = child.stdout.take().expect("stdout");
            let guard = Spawned { child };
            let mut line = String::new();
            BufReader::new(stdout)
                .read_line(&mut line)
                .expect("id-serve output");
            assert_eq!(line.trim(), "listening", "id-serve in {name}");
            guard
        })
        .collect()
}
