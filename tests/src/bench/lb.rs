//! `keel-bench lb`: programming Services into a node's datapath — keel's
//! BPF maps (through the agent's reconciler: model, plan, apply) against
//! kube-proxy-equivalent iptables and nftables rules (see `lb_rules`) —
//! side by side in one run, at 1, 1,000 and 10,000 Services of 10
//! endpoints each:
//!
//! - from cold: everything programmed from nothing (keel: one reconciler
//!   sync over a view holding all Services and Endpoints; iptables: one
//!   `iptables-restore` of the nat table; nftables: one `nft -f`);
//! - one change: one Service's Endpoints lose an endpoint and gain another
//!   (keel: the reconciler's sync of that view change; iptables: kube-proxy's
//!   partial `iptables-restore --noflush`; nftables: its one-transaction
//!   `nft -f`), p50 and p99 over many changes spread over the Services.
//!
//! Baselines run inside a fresh test network namespace each; keel's maps
//! are pinned in a private bpffs. Both sides pay what their agent pays
//! (kube-proxy spawns the tool for every sync). Then, in the lab (see
//! `lb_lab`), the datapath itself (transactions through a ClusterIP vs a pod
//! IP vs the rules) and the Endpoints → datapath latency through keel-control.
//!
//! `keel-bench lb [--sizes 1,1000,10000] [--changes N] [--rounds N]
//! [--per-round N] [--lab-changes N] [--no-lab | --lab-only]`

use std::{
    io::Write,
    process::Stdio,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use keel_agent::{
    lb::{datapath::Datapath, model::NodeInfo, reconcile::Reconciler},
    sync::View,
};
use keel_api::{Endpoints, Service};

use super::{
    Samples, Table,
    lb_rules::{self, Svc},
    stats::fmt_duration,
};
use crate::{TestBpffs, TestNetns};

/// Every loop stops after this long, whatever --changes says.
const TIME_BUDGET: Duration = Duration::from_secs(120);
const PER_SERVICE: usize = 10;

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let mut sizes = vec![1usize, 1000, 10_000];
    let mut changes = 200usize;
    let (mut rounds, mut per_round, mut lab_changes, mut lab) = (5usize, 1000usize, 100usize, true);
    let mut prog = true;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--sizes" => {
                sizes = it
                    .next()
                    .context("--sizes needs a list, e.g. 1,1000")?
                    .split(',')
                    .map(|s| s.parse::<usize>().map(|n| n.clamp(1, 50_000)))
                    .collect::<Result<_, _>>()
                    .context("--sizes")?
            }
            "--changes" => {
                changes = it
                    .next()
                    .context("--changes needs a number")?
                    .parse::<usize>()
                    .context("--changes")?
                    .clamp(1, 10_000)
            }
            "--rounds" => rounds = number(it.next(), "--rounds")?.clamp(1, 100),
            "--per-round" => per_round = number(it.next(), "--per-round")?.clamp(1, 100_000),
            "--lab-changes" => lab_changes = number(it.next(), "--lab-changes")?.clamp(1, 10_000),
            "--no-lab" => lab = false,
            "--lab-only" => prog = false,
            other => bail!(
                "unknown argument {other:?} (expected --sizes LIST, --changes N, --rounds N, --per-round N, --lab-changes N, --no-lab, --lab-only)"
            ),
        }
    }
    crate::require_root();
    let mut table = Table::new(
        "Programming Services (10 endpoints each) on one node: keel BPF maps vs kube-proxy-equivalent iptables / nftables",
        &[
            "services",
            "keel cold",
            "iptables cold",
            "nftables cold",
            "keel change p50 / p99",
            "iptables change p50 / p99",
            "nftables change p50 / p99",
        ],
    );
    let mut notes = Vec::new();
    for &n in sizes.iter().filter(|_| prog) {
        eprintln!("lb bench: {n} services…");
        let svcs = lb_rules::services(n, PER_SERVICE);
        let plan = changes_for(&svcs, changes);
        let keel = keel(&svcs, &plan)?;
        let ipt = rules(&svcs, &plan, Tool::Iptables)?;
        let nft = rules(&svcs, &plan, Tool::Nft)?;
        let pair = |s: &Samples| format!("{} / {}", fmt_duration(s.p50()), fmt_duration(s.p99()));
        table.row(vec![
            n.to_string(),
            fmt_duration(keel.cold),
            fmt_duration(ipt.cold),
            fmt_duration(nft.cold),
            pair(&keel.change),
            pair(&ipt.change),
            pair(&nft.change),
        ]);
        notes.push(format!(
            "{n} services: keel cold = plan {} + apply {} ({} map writes); changes measured: keel {}, iptables {}, nftables {} (each tool stops after {}s)",
            fmt_duration(Duration::from_micros(keel.plan_us)),
            fmt_duration(Duration::from_micros(keel.apply_us)),
            keel.ops,
            keel.change.len(),
            ipt.change.len(),
            nft.change.len(),
            TIME_BUDGET.as_secs()
        ));
    }
    for n in notes {
        table.note(n);
    }
    table.note("keel: the agent's reconciler (model → plan → apply) over pinned BPF maps, in-process; baselines: iptables-restore (nf_tables backend) / nft -f spawned as kube-proxy does, each in a fresh test netns");
    table.note("a change: one Service's Endpoints lose one endpoint and gain another");
    if prog {
        table.emit("lb")?;
    }
    if lab {
        let r = super::lb_lab::run(&sizes, rounds, per_round, lab_changes)?;
        r.datapath.emit("lb")?;
        r.latency.emit("lb")?;
    }
    Ok(())
}

fn number(v: Option<&String>, name: &str) -> anyhow::Result<usize> {
    v.with_context(|| format!("{name} needs a number"))?
        .parse()
        .with_context(|| name.to_string())
}

/// The changes of one run: (service index, endpoint slot, new pod IP index).
fn changes_for(svcs: &[Svc], n: usize) -> Vec<(usize, usize, usize)> {
    let base = svcs.len() * PER_SERVICE;
    (0..n)
        .map(|k| {
            // Spread over the services with a stride coprime to most sizes.
            let i = (k * 7919) % svcs.len();
            (i, k % PER_SERVICE, base + k)
        })
        .collect()
}

struct Measured {
    cold: Duration,
    change: Samples,
    plan_us: u64,
    apply_us: u64,
    ops: usize,
}

fn service_obj(s: &Svc, i: usize) -> Service {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": format!("svc-{i}"), "namespace": "bench"},
        "spec": {"clusterIP": s.vip.to_string(), "selector": {"app": format!("svc-{i}")},
                 "ports": [{"name": "http", "port": s.port, "targetPort": 8080}]}
    }))
    .expect("service")
}

fn endpoints_obj(s: &Svc, i: usize) -> Endpoints {
    let addresses: Vec<_> = s
        .endpoints
        .iter()
        .map(|(ip, _)| serde_json::json!({"ip": ip.to_string(), "nodeName": "elsewhere"}))
        .collect();
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": format!("svc-{i}"), "namespace": "bench"},
        "subsets": [{"addresses": addresses, "ports": [{"name": "http", "port": 8080}]}]
    }))
    .expect("endpoints")
}

fn keel(svcs: &[Svc], changes: &[(usize, usize, usize)]) -> anyhow::Result<Measured> {
    let bpffs = TestBpffs::new("bench-lb")?;
    let pins = bpffs.path().join("node");
    let mut dp = Datapath::load(&pins)?;
    let maps = dp.maps()?;
    let node = NodeInfo::new("bench", "10.0.0.1".parse()?);
    let mut view = View {
        synced: true,
        ..Default::default()
    };
    for (i, s) in svcs.iter().enumerate() {
        view.services
            .insert(format!("bench/svc-{i}"), Arc::new(service_obj(s, i)));
        view.endpoints
            .insert(format!("bench/svc-{i}"), Arc::new(endpoints_obj(s, i)));
    }
    let t0 = Instant::now();
    let mut rec = Reconciler::new(maps, node)?;
    let report = rec
        .sync(&view, &Default::default(), true)?
        .context("synced view")?;
    let cold = t0.elapsed();
    anyhow::ensure!(
        rec.observed().frontends.len() == svcs.len(),
        "keel programmed {} frontends, want {}",
        rec.observed().frontends.len(),
        svcs.len()
    );
    let mut current: Vec<Svc> = svcs.to_vec();
    let mut change = Samples::new();
    let started = Instant::now();
    for &(i, slot, pod) in changes {
        if started.elapsed() > TIME_BUDGET {
            break;
        }
        current[i].endpoints[slot] = (lb_rules::pod_ip(pod), 8080);
        view.endpoints.insert(
            format!("bench/svc-{i}"),
            Arc::new(endpoints_obj(&current[i], i)),
        );
        let t = Instant::now();
        let changed = [format!("bench/svc-{i}")].into();
        let r = rec.sync(&view, &changed, false)?.context("synced view")?;
        change.push(t.elapsed());
        anyhow::ensure!(
            r.replaced == 1,
            "a change replaced {} frontends",
            r.replaced
        );
    }
    drop(rec);
    drop(dp);
    keel_agent::lb::datapath::remove(&pins)?;
    Ok(Measured {
        cold,
        change,
        plan_us: report.plan_us,
        apply_us: report.apply_us,
        ops: report.ops,
    })
}

#[derive(Clone, Copy)]
enum Tool {
    Iptables,
    Nft,
}

/// Runs a tool inside `ns` with `input` on stdin; returns how long it took.
fn feed(ns: &TestNetns, tool: Tool, input: &str, partial: bool) -> anyhow::Result<Duration> {
    let mut cmd = match (tool, partial) {
        (Tool::Iptables, false) => ns.command("iptables-restore"),
        (Tool::Iptables, true) => {
            let mut c = ns.command("iptables-restore");
            c.arg("--noflush");
            c
        }
        (Tool::Nft, _) => {
            let mut c = ns.command("nft");
            c.args(["-f", "-"]);
            c
        }
    };
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let t = Instant::now();
    let mut child = cmd.spawn().context("spawning iptables-restore / nft")?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(input.as_bytes())?;
    let out = child.wait_with_output()?;
    let took = t.elapsed();
    if !out.status.success() {
        bail!(
            "{} failed ({}): {}",
            match tool {
                Tool::Iptables => "iptables-restore",
                Tool::Nft => "nft",
            },
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(took)
}

fn rules(svcs: &[Svc], changes: &[(usize, usize, usize)], tool: Tool) -> anyhow::Result<Measured> {
    let ns = TestNetns::new("bench-lb")?;
    let full = match tool {
        Tool::Iptables => lb_rules::iptables_full(svcs, lb_rules::CLUSTER_CIDR),
        Tool::Nft => lb_rules::nft_full(svcs, lb_rules::CLUSTER_CIDR),
    };
    let cold = feed(&ns, tool, &full, false)?;
    let mut current: Vec<Svc> = svcs.to_vec();
    let mut change = Samples::new();
    let started = Instant::now();
    for &(i, slot, pod) in changes {
        if started.elapsed() > TIME_BUDGET {
            break;
        }
        let old = current[i].clone();
        current[i].endpoints[slot] = (lb_rules::pod_ip(pod), 8080);
        let input = match tool {
            Tool::Iptables => lb_rules::iptables_update(&old, &current[i], lb_rules::CLUSTER_CIDR),
            Tool::Nft => lb_rules::nft_update(&old, &current[i], lb_rules::CLUSTER_CIDR),
        };
        change.push(feed(&ns, tool, &input, true)?);
    }
    Ok(Measured {
        cold,
        change,
        plan_us: 0,
        apply_us: 0,
        ops: 0,
    })
}
