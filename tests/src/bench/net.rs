//! `keel-bench net`: pod-to-pod networking across nodes, per mode, against
//! the underlay (the same measurement between the two node namespaces), in
//! one run: iperf3 throughput with 1 stream (on both cores, and client and
//! server on one core: the datapath's CPU cost per byte, with the least
//! noise) and 4 streams, TCP request/response latency, and how fast a node
//! joining or leaving reaches another node's kernel.
//!
//! Each mode is measured with BPF host routing (the agent's default) and,
//! in a second lab beside it, with the kernel's IP stack forwarding pod
//! traffic (`--host-routing kernel`), the paths alternating round by round.

use std::{
    io::{Read, Write},
    net::{Ipv4Addr, TcpListener, TcpStream},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use keel_api::{Node, Pod, Quantity, Time, client::ListParams};
use keel_lab::{Bins, Lab, LabGuard, Mode, Options, Spec, block_on};
use keel_sys::ns::NetNs;

use super::{Samples, Table, stats::fmt_duration};
use crate::{TestNetns, probe};

const IPERF_SECONDS: u32 = 3;
const PINGPONGS: usize = 10_000;
/// Each measurement is taken this many times, alternating the paths.
const ROUNDS: usize = 5;
/// Congestion control for every iperf3 run: Linux's default. The host's
/// default may be BBR, whose pacing caps a single stream well below what
/// these paths carry, which would measure BBR's model instead of the path.
const CONGESTION: &str = "cubic";
/// iperf3's write size. With its default (128 KiB) a single stream's speed
/// depends on the MSS, bimodally and not monotonically, on a bare veth pair
/// with no keel in it (measured here: MTU 1500 and 1470 ≈ 50 Gbit/s, 1450
/// and 1460 ≈ 26), which would credit or charge paths for their MTU by
/// chance; with 1 MiB writes the MTU shows only its real cost.
const WRITE: &str = "1M";

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}
const CHURN: usize = 20;

/// How an iperf3 run is shaped.
#[derive(Clone, Copy)]
enum Load {
    /// One stream, scheduled freely.
    One,
    /// One stream, client and server pinned to CPU 0: everything (both
    /// stacks and the datapath between) on one core.
    OneCore,
    /// Four parallel streams.
    Four,
}

impl Load {
    const ALL: [Load; 3] = [Load::One, Load::OneCore, Load::Four];

    fn name(&self) -> &'static str {
        match self {
            Load::One => "1 stream",
            Load::OneCore => "1 stream, 1 core",
            Load::Four => "4 streams",
        }
    }
}

/// iperf3 from `src` to a server in `dst` (started here, ended here by
/// PID); bits per second received.
fn iperf(src: &NetNs, dst: &NetNs, ip: Ipv4Addr, load: Load) -> anyhow::Result<f64> {
    let streams = if matches!(load, Load::Four) { 4 } else { 1 };
    let mut server = dst
        .command("iperf3")?
        .args(["-s", "-p", "5201"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let result = (|| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut cmd = src.command("iperf3")?;
            cmd.args([
                "-c",
                &ip.to_string(),
                "-p",
                "5201",
                "-t",
                &IPERF_SECONDS.to_string(),
                "-P",
                &streams.to_string(),
                "-C",
                CONGESTION,
                "-l",
                WRITE,
                "-J",
            ]);
            if matches!(load, Load::OneCore) {
                // -A client,server: both on CPU 0.
                cmd.args(["-A", "0,0"]);
            }
            let out = cmd.output()?;
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            if let Some(bps) = v["end"]["sum_received"]["bits_per_second"].as_f64() {
                return Ok(bps);
            }
            let error = v["error"]
                .as_str()
                .unwrap_or("no JSON from iperf3")
                .to_string();
            // The server may not be listening yet.
            anyhow::ensure!(
                error.contains("Connection refused") && Instant::now() < deadline,
                "iperf3 to {ip}: {error}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    })();
    let _ = server.kill();
    let _ = server.wait();
    result
}

/// 1-byte TCP request/response round trips from `src` to `dst` at `ip`.
fn pingpong(src: &NetNs, dst: &NetNs, ip: Ipv4Addr) -> anyhow::Result<Samples> {
    let listener = dst.run(|| TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0)))??;
    let port = listener.local_addr()?.port();
    std::thread::scope(|s| {
        s.spawn(move || -> std::io::Result<()> {
            let (mut c, _) = listener.accept()?;
            c.set_nodelay(true)?;
            let mut b = [0u8; 1];
            while c.read_exact(&mut b).is_ok() {
                c.write_all(&b)?;
            }
            Ok(())
        });
        src.run(|| -> anyhow::Result<Samples> {
            let mut c = TcpStream::connect((ip, port))?;
            c.set_nodelay(true)?;
            c.set_read_timeout(Some(Duration::from_secs(2)))?;
            let mut samples = Samples::new();
            let mut b = [7u8; 1];
            for i in 0..PINGPONGS + 1000 {
                let t = Instant::now();
                c.write_all(&b)?;
                c.read_exact(&mut b)?;
                if i >= 1000 {
                    samples.push(t.elapsed());
                }
            }
            Ok(samples)
        })?
    })
}

fn gbps(b: f64) -> String {
    format!("{:.2} Gbit/s", b / 1e9)
}

fn ratio(a: f64, b: f64) -> String {
    format!("{:.0}%", 100.0 * a / b)
}

/// The MTU of eth0 in `ns` (over netlink: /sys shows the mounter's
/// namespace, not the caller's).
fn eth0_mtu(ns: &NetNs) -> anyhow::Result<u32> {
    let mut h = keel_sys::netlink::Handle::in_netns(ns)?;
    let link = keel_sys::netlink::link::LinkGet::Name("eth0".into())
        .execute(&mut h)?
        .ok_or_else(|| anyhow::anyhow!("no eth0 in {}", ns.path().display()))?;
    Ok(link.mtu)
}

/// Two nodes, one pod on each, with agents forwarding pod traffic by
/// `host_routing` (`bpf` or `kernel`). The nodes share a segment, but for
/// `vpc`: there they sit on two segments, so the node-to-node baseline
/// crosses the VPC router as the pods' traffic does (a VPC routes node
/// traffic too; a shared segment would give the underlay a hop less).
fn setup(mode: Mode, host_routing: &str) -> anyhow::Result<(LabGuard, [NetNs; 4], [Ipv4Addr; 4])> {
    let spec = Spec {
        name: format!("bnet{}-{}", mode.as_str(), &host_routing[..1]),
        nodes: 2,
        mode,
        segments: if mode == Mode::Vpc { 2 } else { 1 },
    };
    let _ = Lab::down(&spec.name);
    let opts = Options {
        agent_args: vec!["--host-routing".into(), host_routing.into()],
        ..Options::default()
    };
    let lab = LabGuard(Lab::up(&spec, &Bins::beside_current_exe()?, &opts)?);
    let c = lab.client()?;
    for (name, node) in [("p1", "node-1"), ("p2", "node-2")] {
        let p: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "default", "labels": {"app": "bench"}},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "none"}]}
        }))?;
        block_on(c.create(&p))?;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let pods = loop {
        let list = block_on(c.list::<Pod>("default", &ListParams::labels("app=bench")))?;
        if list.items.iter().filter(|p| p.is_ready()).count() == 2 {
            break list.items;
        }
        anyhow::ensure!(Instant::now() < deadline, "bench pods did not become ready");
        std::thread::sleep(Duration::from_millis(100));
    };
    let t = lab.topology();
    let pod = |n: &str| pods.iter().find(|p| p.metadata.name == n).expect("created");
    let nss = [
        probe::open(&t.nodes[0].netns)?,
        probe::open(&t.nodes[1].netns)?,
        probe::open(&lab.pod_netns(pod("p1"))?)?,
        probe::open(&lab.pod_netns(pod("p2"))?)?,
    ];
    let ips = [
        t.nodes[0].ip,
        t.nodes[1].ip,
        pod("p1").status.pod_ip.parse()?,
        pod("p2").status.pod_ip.parse()?,
    ];
    // Every run starts from the same TCP state: without this a connection
    // inherits the ssthresh an earlier one to the same address saved, and a
    // run after a lossy one ramps up slowly (each namespace has its own).
    for ns in &nss {
        ns.run(|| keel_sys::sysctl::set("net.ipv4.tcp_no_metrics_save", "1"))??;
    }
    Ok((lab, nss, ips))
}

/// Two more hosts on `lab`'s first segment (172.30.0.`first` and the next,
/// no route anywhere else) whose links have `mtu`. Removed (namespaces, and
/// so their veths) on drop.
fn extra_hosts(lab: &Lab, mtu: u32, first: u8) -> anyhow::Result<[TestNetns; 2]> {
    let seg = &lab.topology().segments[0].netns;
    let hosts = [TestNetns::new("bnet-host")?, TestNetns::new("bnet-host")?];
    for (i, h) in hosts.iter().enumerate() {
        let (n, port) = (h.name(), format!("bh{first}x{i}"));
        let addr = format!("172.30.0.{}/24", first as usize + i);
        ip(&format!(
            "-n {seg} link add {port} mtu {mtu} type veth peer name eth0 mtu {mtu} netns {n}"
        ))?;
        ip(&format!("-n {seg} link set {port} master br0 up"))?;
        ip(&format!("-n {n} addr add {addr} dev eth0"))?;
        ip(&format!("-n {n} link set eth0 up"))?;
        h.run(|| keel_sys::sysctl::set("net.ipv4.tcp_no_metrics_save", "1"))?;
    }
    Ok(hosts)
}

/// A kernel VXLAN tunnel between `hosts` (from `extra_hosts(.., first)`),
/// set up as keel's VXLAN mode sets up nodes: `vx0` on each over eth0 (MTU
/// 50 below it), 10.255.0.1 and .2/24 inside, and for the other end a
/// permanent neighbour and FDB entry, no learning. What the kernel's own
/// tunnel costs, with no pod and no keel on the path.
fn tunnel(hosts: &[TestNetns; 2], first: u8) -> anyhow::Result<()> {
    let mac = |i: usize| format!("02:6b:65:00:00:0{}", i + 1);
    for (i, h) in hosts.iter().enumerate() {
        let (n, j) = (h.name(), 1 - i);
        let (me, peer) = (mac(i), mac(j));
        let local = format!("172.30.0.{}", first as usize + i);
        let remote = format!("172.30.0.{}", first as usize + j);
        ip(&format!(
            "-n {n} link add vx0 address {me} type vxlan id 4242 local {local} dev eth0 dstport 8472 nolearning"
        ))?;
        ip(&format!("-n {n} addr add 10.255.0.{}/24 dev vx0", i + 1))?;
        ip(&format!("-n {n} link set vx0 up"))?;
        ip(&format!(
            "-n {n} neigh add 10.255.0.{} lladdr {peer} dev vx0 nud permanent",
            j + 1
        ))?;
        let st = Command::new("bridge")
            .args(
                format!("-n {n} fdb append {peer} dev vx0 dst {remote} self permanent").split(' '),
            )
            .status()?;
        anyhow::ensure!(st.success(), "bridge fdb append {peer} in {n}");
    }
    Ok(())
}

/// Runs `ip` with `args` (split at spaces).
fn ip(args: &str) -> anyhow::Result<()> {
    let st = Command::new("ip").args(args.split(' ')).status()?;
    anyhow::ensure!(st.success(), "ip {args}");
    Ok(())
}

/// Time from a Node appearing (as an agent registers one) until node-1's
/// kernel routes to its pod CIDR, and from its deletion until the route is
/// gone.
fn churn(lab: &Lab, mode: Mode) -> anyhow::Result<(Samples, Samples)> {
    let c = lab.client()?;
    let ns = probe::open(&lab.topology().nodes[0].netns)?;
    let (mut join, mut leave) = (Samples::new(), Samples::new());
    let where_ = |cidr: &str| -> anyhow::Result<bool> {
        if mode == Mode::Vpc {
            let out = Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &lab.topology().router,
                    "ip",
                    "route",
                    "show",
                    "proto",
                    "77",
                ])
                .output()?;
            return Ok(String::from_utf8_lossy(&out.stdout).contains(cidr));
        }
        let out = ns
            .command("ip")?
            .args(["route", "show", "proto", "77"])
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout).contains(cidr))
    };
    for i in 0..CHURN {
        let name = format!("ghost-{i}");
        let mut n: Node = serde_json::from_value(serde_json::json!({"metadata": {"name": name}}))?;
        let start = Instant::now();
        n = block_on(c.create(&n))?;
        n.status.addresses = vec![keel_api::node::NodeAddress {
            type_: "InternalIP".into(),
            address: format!("172.30.0.{}", 100 + i),
        }];
        n.status
            .capacity
            .insert("pods".into(), Quantity::parse("0")?);
        n.set_condition("Ready", "True", "Bench", "", Some(Time::now()));
        n.metadata.resource_version.clear();
        let start_status = Instant::now();
        block_on(c.update_status(&n))?;
        let cidr = n.spec.pod_cidr.clone();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !where_(&cidr)? {
            anyhow::ensure!(Instant::now() < deadline, "route to {cidr} never appeared");
        }
        let _ = start;
        join.push(start_status.elapsed());
        let start = Instant::now();
        block_on(c.delete::<Node>("", &name))?;
        while where_(&cidr)? {
            anyhow::ensure!(
                Instant::now() < deadline + Duration::from_secs(10),
                "route to {cidr} never went away"
            );
        }
        leave.push(start.elapsed());
    }
    Ok((join, leave))
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let modes: Vec<Mode> = if args.is_empty() {
        vec![Mode::Route, Mode::Vpc, Mode::Vxlan, Mode::Auto]
    } else {
        args.iter()
            .map(|a| a.parse().map_err(anyhow::Error::msg))
            .collect::<anyhow::Result<_>>()?
    };
    let mut table = Table::new(
        "pod-to-pod across two nodes vs the underlay (node to node), same run",
        &[
            "mode",
            "path",
            "1 stream",
            "1 stream, 1 core",
            "4 streams",
            "RR p50",
            "RR p99",
        ],
    );
    let mut spread = Table::new(
        "the best of those runs, per path (what the path costs when nothing else interferes)",
        &["mode", "path", "1 stream", "1 stream, 1 core", "4 streams"],
    );
    let mut churn_table = Table::new(
        "node join/leave reaching another node's kernel (p50 / p99, 20 each)",
        &["mode", "join → route present", "leave → route gone"],
    );
    for mode in modes {
        eprintln!("net: {mode}: building two two-node labs (BPF and kernel host routing)");
        let (lab, nss, ips) = setup(mode, "bpf")?;
        let (lab_k, nss_k, ips_k) = setup(mode, "kernel")?;
        eprintln!(
            "net: {mode}: underlay and pod-to-pod throughput and latency, {ROUNDS} alternating rounds"
        );
        // The paths: the underlay (node to node), pod to pod with BPF host
        // routing, pod to pod through the kernel's stack. Alternated round
        // by round, medians kept, so load from anything else on the machine
        // hits all alike.
        let mut paths: Vec<(String, &NetNs, &NetNs, Ipv4Addr)> = vec![
            ("underlay".into(), &nss[0], &nss[1], ips[1]),
            (
                "pod → pod, BPF host routing".into(),
                &nss[2],
                &nss[3],
                ips[3],
            ),
            (
                "pod → pod, kernel routing".into(),
                &nss_k[2],
                &nss_k[3],
                ips_k[3],
            ),
        ];
        // Where the pods' MTU is smaller (VXLAN may carry their packets),
        // the underlay at that MTU too: how much of the gap is the MTU.
        let pod_mtu = eth0_mtu(&nss[2])?;
        let node_mtu = eth0_mtu(&nss[0])?;
        let small = if pod_mtu < node_mtu {
            Some(extra_hosts(&lab, pod_mtu, 201)?)
        } else {
            None
        };
        if let Some(h) = &small {
            paths.insert(
                1,
                (
                    format!("underlay at the pods' MTU ({pod_mtu})"),
                    h[0].ns(),
                    h[1].ns(),
                    Ipv4Addr::new(172, 30, 0, 202),
                ),
            );
        }
        // Where the pods' traffic crosses VXLAN, the kernel's tunnel alone
        // between two hosts like the nodes: how much of the gap is the
        // tunnel, and so how much is keel's.
        let tunneled = if mode == Mode::Vxlan {
            let h = extra_hosts(&lab, node_mtu, 203)?;
            tunnel(&h, 203)?;
            Some(h)
        } else {
            None
        };
        if let Some(h) = &tunneled {
            let at = paths.len() - 2;
            paths.insert(
                at,
                (
                    "kernel VXLAN tunnel, no pods or keel".into(),
                    h[0].ns(),
                    h[1].ns(),
                    Ipv4Addr::new(10, 255, 0, 2),
                ),
            );
        }
        let mut bps = vec![vec![Vec::new(); Load::ALL.len()]; paths.len()];
        let mut rr = vec![Samples::new(); paths.len()];
        for _ in 0..ROUNDS {
            for (l, load) in Load::ALL.iter().enumerate() {
                for (p, (name, src, dst, ip)) in paths.iter().enumerate() {
                    let v = iperf(src, dst, *ip, *load)?;
                    eprintln!("net: {mode}: {name}, {}: {}", load.name(), gbps(v));
                    bps[p][l].push(v);
                }
            }
            for (p, (_, src, dst, ip)) in paths.iter().enumerate() {
                rr[p].extend(pingpong(src, dst, *ip)?);
            }
        }
        // Interference on this machine only ever slows a run down, so the
        // best run is the closest to the path's own cost.
        let best: Vec<Vec<f64>> = bps
            .iter()
            .map(|per_load| {
                per_load
                    .iter()
                    .map(|v| v.iter().copied().fold(0.0, f64::max))
                    .collect()
            })
            .collect();
        for (p, (name, ..)) in paths.iter().enumerate() {
            let cell = |l: usize| {
                if p == 0 {
                    gbps(best[p][l])
                } else {
                    format!("{} ({})", gbps(best[p][l]), ratio(best[p][l], best[0][l]))
                }
            };
            spread.row(vec![
                mode.to_string(),
                name.to_string(),
                cell(0),
                cell(1),
                cell(2),
            ]);
        }
        let medians: Vec<Vec<f64>> = bps
            .iter_mut()
            .map(|per_load| per_load.iter_mut().map(|v| median(v)).collect())
            .collect();
        let base_rr = rr[0].p50().as_secs_f64();
        for (p, (name, ..)) in paths.iter().enumerate() {
            let cell = |l: usize| {
                if p == 0 {
                    gbps(medians[p][l])
                } else {
                    format!(
                        "{} ({})",
                        gbps(medians[p][l]),
                        ratio(medians[p][l], medians[0][l])
                    )
                }
            };
            let p50 = if p == 0 {
                fmt_duration(rr[p].p50())
            } else {
                format!(
                    "{} ({})",
                    fmt_duration(rr[p].p50()),
                    ratio(rr[p].p50().as_secs_f64(), base_rr)
                )
            };
            table.row(vec![
                mode.to_string(),
                name.to_string(),
                cell(0),
                cell(1),
                cell(2),
                p50,
                fmt_duration(rr[p].p99()),
            ]);
        }
        drop(lab_k);
        eprintln!("net: {mode}: node join/leave");
        let (join, leave) = churn(&lab, mode)?;
        churn_table.row(vec![
            mode.to_string(),
            format!(
                "{} / {}",
                fmt_duration(join.p50()),
                fmt_duration(join.p99())
            ),
            format!(
                "{} / {}",
                fmt_duration(leave.p50()),
                fmt_duration(leave.p99())
            ),
        ]);
        drop(lab);
    }
    table.note(format!(
        "{} cores; iperf3 -C {CONGESTION} -l {WRITE}, medians of {ROUNDS} alternating {IPERF_SECONDS} s runs (\"1 core\": client and server pinned to CPU 0); RR = {ROUNDS}×{PINGPONGS} 1-byte TCP request/response round trips; (%) = of the underlay, for RR of its p50. The underlay is veths and a bridge, so every path is CPU-bound: a pod path adds a veth pair on each node, and with kernel routing an IP forwarding pass on each; VXLAN adds encapsulation and a 50-byte smaller MTU",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    ));
    table.emit("net")?;
    spread.note(format!("best of {ROUNDS} runs each; single runs swing widely on this VM: on two cores a flow's packets cross the per-CPU backlogs of both (its sender migrates, ACKs release data from the other core), and the scheduler places sender, receiver and softirq work differently from run to run; one-core runs are the steady ones. (With iperf3's default 128 KiB writes a single stream also swings with the MSS alone, ≈2× between MTU 1500 and 1450 on a bare veth pair, hence 1 MiB writes.)"));
    spread.emit("net")?;
    churn_table.note("from the status write that gives the node its address (as its agent's first heartbeat does) to the route in node-1's kernel (vpc: in the VPC router); the watch, the reconcile and the netlink writes are all in it; route mode's ghost nodes sit on node-1's segment");
    churn_table.emit("net")?;
    Ok(())
}
