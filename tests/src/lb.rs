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
