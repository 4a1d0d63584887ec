//! ClusterIP through the cgroup socket programs, with real sockets: the
//! programs are attached to a test cgroup (never the root), clients run in
//! it and in a test network namespace whose only routes are its own
//! addresses, so a Service address can only be reached if the programs
//! translate it.
//!
//! The namespace holds three backends 10.244.1.{1,2,3}:8080 (TCP and UDP)
//! and an ordinary server 10.244.9.9:80 on its loopback; each answers
//! with the address it was reached on.

use std::{
    collections::{BTreeMap, BTreeSet},
    io::{BufRead, BufReader, Write},
    process::Stdio,
    time::Duration,
};

use keel_agent::lb::{
    apply::observe,
    common::{SVC_F_AFFINITY, SVC_F_SOCK, Stat},
    datapath::Datapath,
    plan::{Scope, plan},
};
use keel_tests::{
    TestCgroup, TestNetns,
    lb::{LbFixture, Spawned, addr, dial, field, id_server, spec},
    process::bin,
    require_root,
};

const BACKENDS: [&str; 3] = ["10.244.1.1:8080", "10.244.1.2:8080", "10.244.1.3:8080"];

struct Env {
    _servers: Spawned,
    lb: LbFixture,
    cgroup: TestCgroup,
    netns: TestNetns,
}

impl Env {
    fn new(what: &str) -> Self {
        require_root();
        let netns = TestNetns::new(what).unwrap();
        for args in [
            "addr add 10.244.1.1/32 dev lo",
            "addr add 10.244.1.2/32 dev lo",
            "addr add 10.244.1.3/32 dev lo",
            "addr add 10.244.9.9/32 dev lo",
        ] {
            let st = netns
                .command("ip")
                .args(args.split_whitespace())
                .status()
                .unwrap();
            assert!(st.success(), "ip {args}");
        }
        let servers = id_server(
            &netns,
            &[BACKENDS[0], BACKENDS[1], BACKENDS[2], "10.244.9.9:80"],
        );
        let cgroup = TestCgroup::new(what).unwrap();
        let mut lb = LbFixture::new(what);
        lb.dp
            .attach_cgroup(cgroup.path())
            .expect("attaching to the test cgroup");
        Env {
            _servers: servers,
            lb,
            cgroup,
            netns,
        }
    }

    fn dial(&self, kind: &str, addr: &str, n: usize) -> Vec<String> {
        dial(&self.netns, &self.cgroup, kind, addr, n)
    }

    fn stat(&self, s: Stat) -> u64 {
        self.lb.maps.stats().unwrap()[s as usize]
    }
}

fn tcp_backends() -> Vec<String> {
    BACKENDS.iter().map(|b| format!("{b}/TCP")).collect()
}

fn servers(lines: &[String]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for l in lines {
        *m.entry(field(l, "server").unwrap_or(l).to_string())
            .or_default() += 1;
    }
    m
}

#[test]
fn clusterip_tcp_reaches_every_backend_and_shows_the_service_as_peer() {
    let mut env = Env::new("sock-tcp");
    let b = tcp_backends();
    let b: Vec<&str> = b.iter().map(String::as_str).collect();
    env.lb.set(
        "test/web",
        vec![(addr("10.96.0.10:80/TCP"), spec(SVC_F_SOCK, 0, &b))],
    );
    let lines = env.dial("tcp", "10.96.0.10:80", 30);
    assert_eq!(lines.len(), 30);
    for l in &lines {
        assert_eq!(field(l, "peer"), Some("10.96.0.10:80"), "{l}");
    }
    // Random choice per connection: all three within 30 dials (a miss has
    // probability 3·(2/3)^30 ≈ 2e-5).
    let seen = servers(&lines);
    assert_eq!(
        seen.keys().cloned().collect::<BTreeSet<_>>(),
        BACKENDS.iter().map(|s| s.to_string()).collect(),
        "{seen:?}"
    );
    assert!(env.stat(Stat::SockXlate) >= 30);
    assert!(env.stat(Stat::SockRevNat) >= 30, "getpeername translated");
}

#[test]
fn clusterip_udp_unconnected_and_connected_show_the_service_as_source() {
    let mut env = Env::new("sock-udp");
    let b: Vec<String> = BACKENDS.iter().map(|b| format!("{b}/UDP")).collect();
    let b: Vec<&str> = b.iter().map(String::as_str).collect();
    env.lb.set(
        "test/dns",
        vec![(addr("10.96.0.10:53/UDP"), spec(SVC_F_SOCK, 0, &b))],
    );
    for kind in ["udp", "udp-connected"] {
        let lines = env.dial(kind, "10.96.0.10:53", 30);
        for l in &lines {
            assert_eq!(field(l, "peer"), Some("10.96.0.10:53"), "{kind}: {l}");
            assert_eq!(field(l, "from"), Some("10.96.0.10:53"), "{kind}: {l}");
        }
        let seen = servers(&lines);
        assert_eq!(seen.len(), 3, "{kind}: {seen:?}");
    }
}

#[test]
fn no_ready_backend_refuses_at_once_and_non_services_pass_untouched() {
    let mut env = Env::new("sock-refuse");
    env.lb.set(
        "test/empty",
        vec![
            (addr("10.96.0.11:80/TCP"), spec(SVC_F_SOCK, 0, &[])),
            (addr("10.96.0.11:53/UDP"), spec(SVC_F_SOCK, 0, &[])),
        ],
    );
    // ECONNREFUSED from connect()/sendto() itself: not a timeout.
    assert_eq!(
        env.dial("tcp", "10.96.0.11:80", 1),
        vec!["error=ConnectionRefused"]
    );
    assert_eq!(
        env.dial("udp", "10.96.0.11:53", 1),
        vec!["error=ConnectionRefused"]
    );
    assert_eq!(env.stat(Stat::SockNoBackend), 2);
    // An ordinary address is not touched.
    let lines = env.dial("tcp", "10.244.9.9:80", 1);
    assert_eq!(
        field(&lines[0], "server"),
        Some("10.244.9.9:80"),
        "{lines:?}"
    );
    // A port of the Service's address that is not a Service port: left
    // alone, so it goes where routing says — nowhere, in this namespace.
    assert_eq!(
        env.dial("tcp", "10.96.0.11:81", 1),
        vec!["error=NetworkUnreachable"]
    );
    assert_eq!(env.stat(Stat::SockXlate), 0);
}

#[test]
fn processes_outside_the_cgroup_are_not_translated() {
    let mut env = Env::new("sock-outside");
    let b = tcp_backends();
    let b: Vec<&str> = b.iter().map(String::as_str).collect();
    env.lb.set(
        "test/web",
        vec![(addr("10.96.0.10:80/TCP"), spec(SVC_F_SOCK, 0, &b))],
    );
    let out = env
        .netns
        .command(bin("keel-testbin").to_str().unwrap())
        .args(["lb-dial", "tcp", "10.96.0.10:80", "1"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "error=NetworkUnreachable"
    );
}

#[test]
fn client_ip_affinity_holds_then_expires() {
    let mut env = Env::new("sock-affinity");
    let b = tcp_backends();
    let b: Vec<&str> = b.iter().map(String::as_str).collect();
    env.lb.set(
        "test/sticky",
        vec![(
            addr("10.96.0.12:80/TCP"),
            spec(SVC_F_SOCK | SVC_F_AFFINITY, 1, &b),
        )],
    );
    let lines = env.dial("tcp", "10.96.0.12:80", 15);
    let seen = servers(&lines);
    assert_eq!(
        seen.len(),
        1,
        "15 consecutive connections, one backend: {seen:?}"
    );
    let first = seen.keys().next().unwrap().clone();
    // After the 1 s timeout the next connection chooses again at random;
    // it differs from the first backend with probability 2/3 each round,
    // so 12 rounds all equal has probability (1/3)^12 ≈ 2e-6.
    let mut moved = false;
    for _ in 0..12 {
        std::thread::sleep(Duration::from_millis(1300));
        let l = env.dial("tcp", "10.96.0.12:80", 1);
        if field(&l[0], "server") != Some(first.as_str()) {
            moved = true;
            break;
        }
    }
    assert!(moved, "affinity never expired");
}

#[test]
fn a_removed_backend_gets_no_new_connections_and_old_ones_live_on() {
    let mut env = Env::new("sock-remove");
    let b = tcp_backends();
    let all: Vec<&str> = b.iter().map(String::as_str).collect();
    env.lb.set(
        "test/web",
        vec![(addr("10.96.0.10:80/TCP"), spec(SVC_F_SOCK, 0, &all))],
    );
    // A long-lived connection, to whichever backend.
    let mut hold = Hold::start(&env, "10.96.0.10:80");
    let held = hold.server.clone();
    // Remove exactly that backend.
    let rest: Vec<&str> = all
        .iter()
        .copied()
        .filter(|b| !b.starts_with(&held))
        .collect();
    assert_eq!(rest.len(), 2);
    env.lb.set(
        "test/web",
        vec![(addr("10.96.0.10:80/TCP"), spec(SVC_F_SOCK, 0, &rest))],
    );
    let seen = servers(&env.dial("tcp", "10.96.0.10:80", 30));
    assert!(!seen.contains_key(&held), "{held} still chosen: {seen:?}");
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(hold.echo("still-there"), "echo=still-there");
}

/// The agent going away and a new one taking over the pinned state: the
/// programs stay attached in between (pinned links), the new one adopts the
/// maps without a single write, swaps the programs atomically, and a
/// connection made before keeps working.
#[test]
fn a_new_datapath_adopts_pinned_state_without_disruption() {
    let mut env = Env::new("sock-adopt");
    let b = tcp_backends();
    let all: Vec<&str> = b.iter().map(String::as_str).collect();
    env.lb.set(
        "test/web",
        vec![(addr("10.96.0.10:80/TCP"), spec(SVC_F_SOCK, 0, &all))],
    );
    let mut hold = Hold::start(&env, "10.96.0.10:80");
    let pins = env.lb.dp.dir().to_path_buf();
    let desired = env.lb.desired.clone();
    let before = env.lb.maps.services().unwrap();
    let links_before = link_infos(&pins);

    // "Agent exit": the loaded programs and map handles are dropped.
    let LbFixture {
        maps, dp, bpffs, ..
    } = std::mem::replace(&mut env.lb, LbFixture::new("sock-adopt-tmp"));
    drop((maps, dp));
    // Nobody holds the programs but the pinned links: still translating.
    let lines = env.dial("tcp", "10.96.0.10:80", 3);
    assert!(
        lines
            .iter()
            .all(|l| field(l, "peer") == Some("10.96.0.10:80")),
        "{lines:?}"
    );

    // "Agent start": load against the same pins and adopt.
    let mut dp = Datapath::load(&pins).unwrap();
    assert!(dp.recreated.is_empty(), "{:?}", dp.recreated);
    let maps = dp.maps().unwrap();
    let observed = observe(&maps).unwrap();
    let p = plan(&desired, &observed, Scope::All);
    assert!(p.is_empty(), "adoption planned writes: {:?}", p.lines());
    assert_eq!(maps.services().unwrap(), before, "maps unchanged");
    dp.attach_cgroup(env.cgroup.path()).unwrap();
    let links_after = link_infos(&pins);
    assert_eq!(links_after.len(), 4, "one pinned link per socket program");
    for (name, a) in &links_after {
        let b = &links_before[name];
        assert_eq!(a.id, b.id, "{name}: the same link, not a new attachment");
        assert_ne!(a.prog_id, b.prog_id, "{name}: the new program swapped in");
    }
    assert_eq!(hold.echo("after-restart"), "echo=after-restart");
    let lines = env.dial("tcp", "10.96.0.10:80", 3);
    assert!(
        lines
            .iter()
            .all(|l| field(l, "peer") == Some("10.96.0.10:80")),
        "{lines:?}"
    );
    drop((maps, dp));
    keel_agent::lb::datapath::remove(&pins).unwrap();
    drop(bpffs);
}

use keel_agent::{bpf::sys, lb::maps::LbMaps};

/// The pinned links under `pins`, by program name.
fn link_infos(pins: &std::path::Path) -> BTreeMap<String, sys::LinkInfo> {
    std::fs::read_dir(pins.join("links"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let fd = sys::obj_get(&e.path()).unwrap();
            let info = sys::link_info(std::os::fd::AsFd::as_fd(&fd)).unwrap();
            (e.file_name().to_string_lossy().into_owned(), info)
        })
        .collect()
}

/// A long-lived connection from inside the cgroup (`keel-testbin lb-hold`).
struct Hold {
    _proc: Spawned,
    stdin: std::process::ChildStdin,
    out: std::sync::mpsc::Receiver<String>,
    server: String,
}

impl Hold {
    fn start(env: &Env, addr: &str) -> Self {
        let bin = bin("keel-testbin");
        let bin = bin.to_str().unwrap();
        let mut child = env
            .netns
            .command(bin)
            .args(["join-cgroup", env.cgroup.path().to_str().unwrap(), "--"])
            .args([bin, "lb-hold", addr])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, out) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let proc = Spawned { child };
        let first = out
            .recv_timeout(Duration::from_secs(10))
            .expect("lb-hold connected");
        let server = field(&first, "server")
            .unwrap_or_else(|| panic!("lb-hold: {first}"))
            .to_string();
        Hold {
            _proc: proc,
            stdin,
            out,
            server,
        }
    }

    fn echo(&mut self, text: &str) -> String {
        writeln!(self.stdin, "{text}").unwrap();
        self.stdin.flush().unwrap();
        self.out
            .recv_timeout(Duration::from_secs(10))
            .expect("echo within 10 s")
    }
}
