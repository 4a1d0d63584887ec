//! `keel-bench cni`: keel-cni against Debian's reference `ptp` +
//! `host-local` doing the same job (a veth per pod, an address from the
//! node's range, a route each way), side by side in one run, in test
//! namespaces: one at a time (ADD, DEL and ADD+DEL latency, p50/p99), and
//! bursts of 50 ADDs in parallel (time until all 50 are attached).
//!
//! Each measurement is what a runtime sees: spawn the plugin, feed its
//! config, wait for it to exit. Sequential runs alternate the two plugins
//! iteration by iteration so drift on the machine hits both alike.
//!
//! `keel-bench cni [--iterations N] [--bursts N]`

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::{Samples, Table, stats::fmt_duration};
use crate::cni::{Attach, DEBIAN_CNI_DIR, Node, Pod, cni_path, keel_cni_bin};

const BURST: usize = 50;
/// Every sequential loop stops after this long, whatever N says.
const TIME_BUDGET: Duration = Duration::from_secs(120);

struct Plugin {
    label: &'static str,
    bin: PathBuf,
    conf: Value,
}

#[derive(Default)]
struct Measured {
    add: Samples,
    del: Samples,
    add_del: Samples,
    burst_add: Samples,
    burst_del: Samples,
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let mut iterations = 200usize;
    let mut bursts = 5usize;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| -> anyhow::Result<usize> {
            it.next()
                .with_context(|| format!("{name} needs a number"))?
                .parse()
                .with_context(|| name.to_string())
        };
        match a.as_str() {
            "--iterations" => iterations = value("--iterations")?.clamp(1, 10_000),
            "--bursts" => bursts = value("--bursts")?.clamp(1, 100),
            other => bail!("unknown argument {other:?} (expected --iterations N, --bursts N)"),
        }
    }
    crate::require_root();
    let ptp = Path::new(DEBIAN_CNI_DIR).join("ptp");
    if !ptp.is_file() {
        bail!(
            "{} is missing: run `cargo xtask setup` (containernetworking-plugins)",
            ptp.display()
        );
    }

    eprintln!("cni bench: building keel-cni (release)…");
    let keel = keel_cni_bin(true);
    let path = cni_path(true);
    let node = Node::new("bench-cni");
    let plugins = [
        Plugin {
            label: "keel-cni",
            bin: keel,
            conf: json!({
                "cniVersion": "1.0.0", "name": "bench-keel", "type": "keel",
                "subnet": "10.80.0.0/16", "mtu": 1500, "dataDir": node.data.path(),
            }),
        },
        Plugin {
            label: "ptp+host-local",
            bin: ptp,
            conf: json!({
                "cniVersion": "1.0.0", "name": "bench-ptp", "type": "ptp", "mtu": 1500,
                "ipam": {
                    "type": "host-local", "subnet": "10.81.0.0/16",
                    "dataDir": node.data.path().join("host-local"),
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            }),
        },
    ];
    let mut measured: Vec<Measured> = plugins.iter().map(|_| Measured::default()).collect();

    // One at a time, alternating plugins; a few warm-up rounds first.
    let pod = Pod::new("bench-cnip");
    let started = Instant::now();
    for i in 0..iterations + 5 {
        if started.elapsed() > TIME_BUDGET {
            eprintln!("cni bench: time budget reached after {i} iterations");
            break;
        }
        for (p, m) in plugins.iter().zip(&mut measured) {
            let attach = Attach::new(format!("bench-{i}"), pod.ns.ns().path());
            let t0 = Instant::now();
            exec(&node, p, "ADD", &attach, &path)?;
            let t1 = Instant::now();
            exec(&node, p, "DEL", &attach, &path)?;
            let t2 = Instant::now();
            if i >= 5 {
                m.add.push(t1 - t0);
                m.del.push(t2 - t1);
                m.add_del.push(t2 - t0);
            }
        }
    }

    // Bursts: 50 ADDs started at once into 50 namespaces, then 50 DELs.
    eprintln!("cni bench: {bursts} bursts of {BURST}…");
    let pods: Vec<Pod> = (0..BURST).map(|_| Pod::new("bench-cnib")).collect();
    for b in 0..bursts {
        for (p, m) in plugins.iter().zip(&mut measured) {
            let attaches: Vec<Attach> = pods
                .iter()
                .enumerate()
                .map(|(i, pod)| Attach::new(format!("burst-{b}-{i}"), pod.ns.ns().path()))
                .collect();
            m.burst_add.push(burst(&node, p, "ADD", &attaches, &path)?);
            m.burst_del.push(burst(&node, p, "DEL", &attaches, &path)?);
        }
    }

    let floor = veth_delete_floor(&node, &pod, 50)?;

    let mut table = Table::new(
        "CNI ADD/DEL latency: keel-cni vs Debian ptp+host-local",
        &["measure", plugins[0].label, plugins[1].label, "ptp/keel"],
    );
    let row = |table: &mut Table, name: &str, f: &dyn Fn(&Measured) -> Duration| {
        let (k, r) = (f(&measured[0]), f(&measured[1]));
        let ratio = if k.is_zero() {
            "-".to_string()
        } else {
            format!("{:.1}x", r.as_secs_f64() / k.as_secs_f64())
        };
        table.row(vec![
            name.to_string(),
            fmt_duration(k),
            fmt_duration(r),
            ratio,
        ]);
    };
    row(&mut table, "ADD p50", &|m| m.add.p50());
    row(&mut table, "ADD p99", &|m| m.add.p99());
    row(&mut table, "DEL p50", &|m| m.del.p50());
    row(&mut table, "DEL p99", &|m| m.del.p99());
    row(&mut table, "ADD+DEL p50", &|m| m.add_del.p50());
    row(&mut table, "ADD+DEL p99", &|m| m.add_del.p99());
    row(
        &mut table,
        &format!("{BURST} parallel ADDs, all attached (median)"),
        &|m| m.burst_add.p50(),
    );
    row(
        &mut table,
        &format!("{BURST} parallel ADDs, all attached (worst)"),
        &|m| m.burst_add.percentile(100.0),
    );
    row(
        &mut table,
        &format!("{BURST} parallel DELs, all done (median)"),
        &|m| m.burst_del.p50(),
    );
    table.note(format!(
        "{} sequential ADD+DEL per plugin (alternating), {} bursts of {BURST}; each sample is spawn → exit of the plugin process",
        measured[0].add.len(),
        measured[0].burst_add.len()
    ));
    table.note(format!("machine: {} CPUs, kernel {}; keel-cni release build, Debian containernetworking-plugins {}", cpus(), kernel(), debian_version()));
    table.note("both plugins run in the same test node namespace, pods in test namespaces, cniVersion 1.0.0");
    table.note(format!(
        "kernel floor: deleting a bare veth pair (one netlink request, in-process) takes {} p50 / {} p99 here; \
         it dominates DEL for both plugins",
        fmt_duration(floor.p50()),
        fmt_duration(floor.p99())
    ));
    table.emit("cni")?;
    Ok(())
}

/// How long the kernel takes to delete a veth pair whose peer is in a pod
/// namespace: the part of a DEL no plugin can avoid.
fn veth_delete_floor(node: &Node, pod: &Pod, n: usize) -> anyhow::Result<Samples> {
    use std::os::fd::{AsFd, AsRawFd};

    use keel_sys::netlink::{
        Handle,
        link::{LinkAdd, LinkDel, VethPeer},
    };
    let mut h = Handle::in_netns(node.ns.ns())?;
    let mut samples = Samples::new();
    for _ in 0..n {
        let mut peer = VethPeer::new("floor0");
        peer.netns_fd = Some(pod.ns.ns().as_fd().as_raw_fd());
        LinkAdd::veth("kvfloor", peer).up().execute(&mut h)?;
        let t0 = Instant::now();
        LinkDel::Name("kvfloor".into()).execute(&mut h)?;
        samples.push(t0.elapsed());
    }
    Ok(samples)
}

fn exec(node: &Node, p: &Plugin, command: &str, attach: &Attach, path: &str) -> anyhow::Result<()> {
    let out = node.run(&p.bin, command, Some(attach), path, &p.conf);
    if out.code != 0 {
        bail!(
            "{} {command} failed: {} {}",
            p.label,
            out.stdout,
            out.stderr
        );
    }
    Ok(())
}

/// Starts `command` for every attachment at once; the time until the last
/// one exits. Fails if any failed.
fn burst(
    node: &Node,
    p: &Plugin,
    command: &str,
    attaches: &[Attach],
    path: &str,
) -> anyhow::Result<Duration> {
    let t0 = Instant::now();
    let children: Vec<_> = attaches
        .iter()
        .map(|a| node.spawn(&p.bin, command, Some(a), path, &p.conf))
        .collect();
    let outputs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output())
        .collect::<Result<_, _>>()?;
    let took = t0.elapsed();
    if let Some(bad) = outputs.iter().find(|o| !o.status.success()) {
        bail!(
            "{} {command} in a burst failed: {}",
            p.label,
            String::from_utf8_lossy(&bad.stdout)
        );
    }
    Ok(took)
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}

fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn debian_version() -> String {
    std::process::Command::new("dpkg-query")
        .args(["-W", "-f=${Version}", "containernetworking-plugins"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}
