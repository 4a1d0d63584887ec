//! `keel-bench net`: pod-to-pod networking across nodes, per mode, against
//! the underlay (the same measurement between the two node namespaces), in
//! one run: iperf3 throughput with 1 and 4 streams, TCP request/response
//! latency, and how fast a node joining or leaving reaches another node's
//! kernel.

use std::{
    io::{Read, Write},
    net::{Ipv4Addr, TcpListener, TcpStream},
    os::fd::{AsFd, AsRawFd},
    os::unix::process::CommandExt,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use keel_api::{Node, Pod, Quantity, Time, client::ListParams};
use keel_cni::ns::NetNs;
use keel_lab::{Bins, Lab, LabGuard, Mode, Options, Spec, block_on};

use super::{Samples, Table, stats::fmt_duration};
use crate::probe;

const IPERF_SECONDS: u32 = 4;
const PINGPONGS: usize = 10_000;
/// Each measurement is taken this many times, alternating the paths.
const ROUNDS: usize = 3;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}
const CHURN: usize = 20;

fn in_ns(ns: &NetNs, program: &str) -> Command {
    let fd = ns.as_fd().as_raw_fd();
    let mut cmd = Command::new(program);
    // SAFETY: setns is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(fd, libc::CLONE_NEWNET) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    cmd
}

/// iperf3 from `src` to a server in `dst` (started here, ended here by
/// PID); bits per second received.
fn iperf(src: &NetNs, dst: &NetNs, ip: Ipv4Addr, streams: u32) -> anyhow::Result<f64> {
    let mut server = in_ns(dst, "iperf3")
        .args(["-s", "-p", "5201"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let result = (|| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = in_ns(src, "iperf3")
                .args([
                    "-c",
                    &ip.to_string(),
                    "-p",
                    "5201",
                    "-t",
                    &IPERF_SECONDS.to_string(),
                    "-P",
                    &streams.to_string(),
                    "-J",
                ])
                .output()?;
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

/// Two nodes on one segment, one pod on each.
fn setup(mode: Mode) -> anyhow::Result<(LabGuard, [NetNs; 4], [Ipv4Addr; 4])> {
    let spec = Spec {
        name: format!("bnet{}", mode.as_str()),
        nodes: 2,
        mode,
        segments: 1,
    };
    let _ = Lab::down(&spec.name);
    let lab = LabGuard(Lab::up(
        &spec,
        &Bins::beside_current_exe()?,
        &Options::default(),
    )?);
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
    Ok((lab, nss, ips))
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
        let out = in_ns(&ns, "ip")
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
            "4 streams",
            "RR p50",
            "RR p99",
            "1 stream vs underlay",
            "4 streams vs underlay",
            "RR p50 vs underlay",
        ],
    );
    let mut churn_table = Table::new(
        "node join/leave reaching another node's kernel (p50 / p99, 20 each)",
        &["mode", "join → route present", "leave → route gone"],
    );
    for mode in modes {
        eprintln!("net: {mode}: building a two-node lab");
        let (lab, nss, ips) = setup(mode)?;
        eprintln!(
            "net: {mode}: underlay and pod-to-pod throughput and latency, {ROUNDS} alternating rounds"
        );
        // Alternate the two paths and keep medians, so load from anything
        // else on the machine hits both alike.
        let (mut u1, mut u4, mut p1, mut p4) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut urr, mut prr) = (Samples::new(), Samples::new());
        for _ in 0..ROUNDS {
            u1.push(iperf(&nss[0], &nss[1], ips[1], 1)?);
            p1.push(iperf(&nss[2], &nss[3], ips[3], 1)?);
            u4.push(iperf(&nss[0], &nss[1], ips[1], 4)?);
            p4.push(iperf(&nss[2], &nss[3], ips[3], 4)?);
            urr.extend(pingpong(&nss[0], &nss[1], ips[1])?);
            prr.extend(pingpong(&nss[2], &nss[3], ips[3])?);
        }
        let under = (median(&mut u1), median(&mut u4), urr);
        let pods = (median(&mut p1), median(&mut p4), prr);
        table.row(vec![
            mode.to_string(),
            "underlay".into(),
            gbps(under.0),
            gbps(under.1),
            fmt_duration(under.2.p50()),
            fmt_duration(under.2.p99()),
            "100%".into(),
            "100%".into(),
            "100%".into(),
        ]);
        table.row(vec![
            mode.to_string(),
            "pod → pod".into(),
            gbps(pods.0),
            gbps(pods.1),
            fmt_duration(pods.2.p50()),
            fmt_duration(pods.2.p99()),
            ratio(pods.0, under.0),
            ratio(pods.1, under.1),
            ratio(pods.2.p50().as_secs_f64(), under.2.p50().as_secs_f64()),
        ]);
        eprintln!("net: {mode}: node join/leave");
        if mode != Mode::Route {
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
        } else {
            let (join, leave) = churn_adjacent(&lab)?;
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
        }
        drop(lab);
    }
    table.note(format!(
        "{} cores; medians of {ROUNDS} alternating iperf3 runs of {IPERF_SECONDS} s; RR = {ROUNDS}×{PINGPONGS} 1-byte TCP request/response round trips; the underlay is veths and a bridge, so every path is CPU-bound: a pod path adds a veth pair and a routing hop on each node, VXLAN adds encapsulation and a 50-byte smaller MTU",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    ));
    table.emit("net")?;
    churn_table.note("from the status write that gives the node its address (as its agent's first heartbeat does) to the route in node-1's kernel (vpc: in the VPC router); the watch, the reconcile and the netlink writes are all in it");
    churn_table.emit("net")?;
    Ok(())
}

/// Route mode routes only to adjacent nodes: the ghost nodes get addresses
/// on node-1's segment.
fn churn_adjacent(lab: &Lab) -> anyhow::Result<(Samples, Samples)> {
    churn(lab, Mode::Route)
}
