//! The load-balancer benchmark's lab half: a two-node lab (VXLAN) with
//! the load balancer on, 10 backend pods on node-2 serving
//! `keel-testbin id-serve`, a client pod on node-1, and filler Services
//! (10 Ready endpoints each, on a node without an agent) to reach 1, 1,000
//! and 10,000 Services. Measured side by side in one run, at each size:
//!
//! - one transaction (TCP connect, greeting, one echoed line, close) from
//!   the client pod to the Service: through keel's ClusterIP (the client in
//!   the node's cgroup), straight to the pod IPs (the client outside it: no
//!   BPF at all), and through kube-proxy-equivalent iptables and nftables
//!   rules for the same Services installed in node-1's namespace (the
//!   client outside the cgroup); p50/p99 latency and transactions per second;
//! - an Endpoints change at keel-control until node-1's datapath uses it: a
//!   filler pod's Ready condition written through the API → endpoints
//!   controller → watch → node-1's agent → its BPF map (polled), p50/p99.

use std::{
    io::Write,
    net::Ipv4Addr,
    process::Stdio,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use keel_agent::lb::maps::AyaMaps;
use keel_api::{Pod, Service, client::Client};
use keel_lab::{Bins, Lab, LabGuard, Mode, Options, Spec, block_on};

use super::{
    Samples, Table,
    lb_rules::{self, Svc},
    stats::fmt_duration,
};
use crate::{
    TestBpffs,
    lb::{enable_lb, lab_agent_socket, lab_pods, serve_in_pods, testbin_in},
    lb_node::agent_get,
    process::wait_for,
};

const BACKENDS: usize = 10;
/// How long one Endpoints change may take to reach the datapath.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(30);
/// Where the baselines' Service addresses live (keel's come from the
/// lab's 10.96.0.0/16).
const RULES_VIP: Ipv4Addr = Ipv4Addr::new(10, 97, 0, 1);

pub struct LabResult {
    pub datapath: Table,
    pub latency: Table,
}

#[derive(Default)]
struct Method {
    lat: Samples,
    ok: usize,
    errors: usize,
    secs: f64,
}

impl Method {
    fn absorb(&mut self, line: &str) -> anyhow::Result<()> {
        let field = |k: &str| {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('='))
        };
        self.ok += field("ok").context("ok=")?.parse::<usize>()?;
        self.errors += field("errors").context("errors=")?.parse::<usize>()?;
        self.secs += field("secs").context("secs=")?.parse::<f64>()?;
        for v in field("lat_us")
            .unwrap_or("")
            .split(',')
            .filter(|v| !v.is_empty())
        {
            self.lat.push(Duration::from_micros(v.parse()?));
        }
        Ok(())
    }

    fn rate(&self) -> f64 {
        if self.secs > 0.0 {
            self.ok as f64 / self.secs
        } else {
            0.0
        }
    }
}

/// `keel-testbin lb-bench N ADDR...` from the client pod, inside the node's
/// cgroup or not.
fn transactions(
    netns: &str,
    cg: Option<&std::path::Path>,
    n: usize,
    addrs: &[String],
    into: &mut Method,
) -> anyhow::Result<()> {
    let mut args = vec!["lb-bench".to_string(), n.to_string()];
    args.extend(addrs.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = testbin_in(netns, cg, &args).output()?;
    if !out.status.success() {
        bail!("lb-bench: {}", String::from_utf8_lossy(&out.stderr));
    }
    into.absorb(String::from_utf8_lossy(&out.stdout).trim())
}

fn ghost_pod(name: &str, app: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": "default", "labels": {"app": app}},
        "spec": {"nodeName": "ghost", "containers": [{"name": "c", "image": "none",
            "ports": [{"containerPort": 8080}]}]}
    }))
    .expect("pod")
}

fn set_ready(pod: &mut Pod, ip: &str, ready: bool) {
    pod.status.pod_ip = ip.to_string();
    pod.status.phase = Some(keel_api::pod::PodPhase::Running);
    pod.set_condition("Ready", if ready { "True" } else { "False" }, "", "");
}

/// Creates filler Services `fill-{from..to}`, each with 10 Ready pods on a
/// node without an agent (`svcs[i]`'s endpoint addresses), 64 requests in
/// flight.
fn add_fillers(client: &Client, svcs: &[Svc], from: usize, to: usize) -> anyhow::Result<()> {
    let client = Arc::new(client.clone());
    let svcs = Arc::new(svcs.to_vec());
    block_on(async move {
        let mut tasks = tokio::task::JoinSet::new();
        let workers = 64usize;
        for w in 0..workers {
            let (client, svcs) = (client.clone(), svcs.clone());
            tasks.spawn(async move {
                let mut i = from + w;
                while i < to {
                    let s = &svcs[i];
                    let app = format!("fill-{i}");
                    let svc: Service = serde_json::from_value(serde_json::json!({
                        "metadata": {"name": app, "namespace": "default"},
                        "spec": {"selector": {"app": app}, "ports": [{"port": 80, "targetPort": 8080}]}
                    }))?;
                    client.create(&svc).await?;
                    for (j, (ip, _)) in s.endpoints.iter().enumerate() {
                        let mut p = client.create(&ghost_pod(&format!("{app}-{j}"), &app)).await?;
                        set_ready(&mut p, &ip.to_string(), true);
                        client.update_status(&p).await?;
                    }
                    i += workers;
                }
                anyhow::Ok(())
            });
        }
        while let Some(r) = tasks.join_next().await {
            r??;
        }
        anyhow::Ok(())
    })
}

pub fn run(
    sizes: &[usize],
    rounds: usize,
    per_round: usize,
    changes: usize,
) -> anyhow::Result<LabResult> {
    crate::require_root();
    let bpffs = TestBpffs::new("bench-lblab")?;
    let spec = Spec {
        name: format!("blb{}", std::process::id() % 100_000),
        nodes: 2,
        mode: Mode::Vxlan,
        segments: 1,
    };
    eprintln!("lb bench: lab {} up…", spec.name);
    // The kube-proxy-equivalent rules NAT in node-1's netfilter, which must
    // see every reply: pod traffic goes through the kernel's stack here, for
    // every method alike.
    let opts = Options {
        agent_args: vec!["--host-routing".into(), "kernel".into()],
        ..Options::default()
    };
    let mut lab = LabGuard(Lab::up(&spec, &Bins::beside_current_exe()?, &opts)?);
    enable_lb(&mut lab, &bpffs);
    let mut placement: Vec<(String, &str, &str)> = (0..BACKENDS)
        .map(|i| (format!("be-{i}"), "node-2", "bench-be"))
        .collect();
    placement.push(("cl".into(), "node-1", "bench-client"));
    let placement_ref: Vec<(&str, &str, &str)> = placement
        .iter()
        .map(|(n, node, app)| (n.as_str(), *node, *app))
        .collect();
    let pods = lab_pods(&lab, &placement_ref);
    let names: Vec<&str> = (0..BACKENDS).map(|i| placement[i].0.as_str()).collect();
    let _servers = serve_in_pods(&pods, &names);
    let client = lab.client()?;
    let bench: Service = block_on(client.create(&serde_json::from_value::<Service>(
        serde_json::json!({
            "metadata": {"name": "bench", "namespace": "default"},
            "spec": {"selector": {"app": "bench-be"}, "ports": [{"port": 80, "targetPort": 8080}]}
        }),
    )?))?;
    let vip = bench.spec.cluster_ip.clone();
    let pod_addrs: Vec<String> = names
        .iter()
        .map(|n| format!("{}:8080", pods[*n].0))
        .collect();
    let real: Vec<(Ipv4Addr, u16)> = names.iter().map(|n| (pods[*n].0, 8080)).collect();
    let sock = lab_agent_socket(&lab, "node-1");
    wait_for(
        "the bench Service on node-1",
        Duration::from_secs(60),
        || {
            let d = agent_get(&sock, "/lb/dump")?;
            d.lines()
                .any(|l| {
                    l.starts_with(&format!("SVC {vip}:80/TCP slot=0 ")) && l.contains(" count=10 ")
                })
                .then_some(())
        },
    );
    // The probe Service whose endpoints flip for the latency measurement.
    let max = sizes.iter().copied().max().unwrap_or(1).max(2);
    let fillers = lb_rules::services_at(Ipv4Addr::new(10, 97, 0, 2), max - 1, BACKENDS, 0);
    add_fillers(&client, &fillers, 0, 1)?;
    let probe: Service = block_on(client.get::<Service>("default", "fill-0"))?;
    let probe_ip: Ipv4Addr = probe.spec.cluster_ip.parse()?;
    let maps = AyaMaps::open_pinned(&bpffs.path().join("node-1/maps"))?;
    let probe_count = || -> Option<u16> {
        maps.header(u32::from_ne_bytes(probe_ip.octets()), 80u16.to_be(), 6)
            .ok()
            .flatten()
            .map(|h| h.count)
    };
    wait_for(
        "the probe Service on node-1",
        Duration::from_secs(60),
        || (probe_count()? == BACKENDS as u16).then_some(()),
    );

    let (cl_netns, cl_cg) = lab.target("cl")?;
    let cl_cg = cl_cg.context("the client pod's node cgroup")?;
    let node1 = lab
        .topology()
        .node("node-1")
        .context("node-1")?
        .netns
        .clone();
    let cidr = lab.topology().cluster_cidr.to_string();
    let mut datapath = Table::new(
        "Service datapath in the lab (2 nodes, VXLAN): client pod on node-1 → 10 backend pods on node-2; one TCP transaction (connect, greeting, 1 echoed line, RST close)",
        &[
            "services",
            "pod IP, no BPF (p50 / p99, tx/s)",
            "keel ClusterIP",
            "keel vs pod IP (p50)",
            "iptables",
            "nftables",
        ],
    );
    let mut latency = Table::new(
        "Endpoints change at keel-control → node-1's BPF datapath (pod Ready written via the API → endpoints controller → watch → agent sync → map)",
        &["services", "p50", "p99", "changes"],
    );
    let mut have = 2usize; // bench + probe
    for &size in sizes {
        let want = size.max(2);
        if want > have {
            eprintln!(
                "lb bench: adding {} Services ({} pods)…",
                want - have,
                (want - have) * BACKENDS
            );
            let t = Instant::now();
            add_fillers(&client, &fillers, have - 1, want - 1)?;
            eprintln!("lb bench: created in {:.1}s", t.elapsed().as_secs_f64());
            have = want;
        }
        wait_for(
            &format!("{want} Services on node-1"),
            Duration::from_secs(600),
            || {
                let s: serde_json::Value =
                    serde_json::from_str(&agent_get(&sock, "/lb/status")?).ok()?;
                (s["frontends"].as_u64()? as usize >= want).then_some(())
            },
        );
        eprintln!("lb bench: {want} Services: datapath…");
        let mut rules_svcs = vec![Svc {
            name: "default/bench:http".into(),
            vip: RULES_VIP,
            port: 80,
            endpoints: real.clone(),
        }];
        rules_svcs.extend(fillers[..want - 1].iter().cloned());
        // Two phases (iptables rules loaded, then nftables rules), each
        // interleaving pod IP, keel and the loaded baseline round by round,
        // so drift on the machine hits all alike.
        let (mut pod, mut keel) = (Method::default(), Method::default());
        let (mut ipt, mut nft) = (Method::default(), Method::default());
        for (tool, into) in [(Tool::Iptables, &mut ipt), (Tool::Nft, &mut nft)] {
            load(&node1, tool, &rules_svcs, &cidr)?;
            let result = (|| {
                for _ in 0..rounds {
                    transactions(&cl_netns, None, per_round, &pod_addrs, &mut pod)?;
                    transactions(
                        &cl_netns,
                        Some(&cl_cg),
                        per_round,
                        &[format!("{vip}:80")],
                        &mut keel,
                    )?;
                    transactions(
                        &cl_netns,
                        None,
                        per_round,
                        &[format!("{RULES_VIP}:80")],
                        into,
                    )?;
                }
                anyhow::Ok(())
            })();
            unload(&node1, tool)?;
            result?;
        }
        let cell = |m: &Method| {
            format!(
                "{} / {}, {:.0}/s{}",
                fmt_duration(m.lat.p50()),
                fmt_duration(m.lat.p99()),
                m.rate(),
                if m.errors > 0 {
                    format!(" ({} errors)", m.errors)
                } else {
                    String::new()
                }
            )
        };
        let ratio = keel.lat.p50().as_secs_f64() / pod.lat.p50().as_secs_f64().max(1e-9);
        datapath.row(vec![
            want.to_string(),
            cell(&pod),
            cell(&keel),
            format!("{:+.1}%", (ratio - 1.0) * 100.0),
            cell(&ipt),
            cell(&nft),
        ]);

        eprintln!("lb bench: {want} Services: Endpoints change latency…");
        let mut lat = Samples::new();
        let mut pod0: Pod = block_on(client.get::<Pod>("default", "fill-0-0"))?;
        let ip0 = fillers[0].endpoints[0].0.to_string();
        let mut ready = true;
        let mut stuck = None;
        for _ in 0..changes {
            let before = probe_count().context("probe header")?;
            ready = !ready;
            set_ready(&mut pod0, &ip0, ready);
            let t = Instant::now();
            pod0 = block_on(client.update_status(&pod0))?;
            let deadline = t + CHANGE_TIMEOUT;
            loop {
                if probe_count() != Some(before) {
                    lat.push(t.elapsed());
                    break;
                }
                if Instant::now() > deadline {
                    stuck = Some(lat.len());
                    break;
                }
                std::thread::sleep(Duration::from_micros(100));
            }
            if stuck.is_some() {
                break;
            }
        }
        match stuck {
            None => latency.row(vec![
                want.to_string(),
                fmt_duration(lat.p50()),
                fmt_duration(lat.p99()),
                lat.len().to_string(),
            ]),
            Some(done) => {
                latency.row(vec![
                    want.to_string(),
                    "-".into(),
                    "-".into(),
                    format!(
                        "{done} then one not live within {}s",
                        CHANGE_TIMEOUT.as_secs()
                    ),
                ]);
                latency.note(format!(
                    "{want} Services: a change did not reach node-1 within {}s; see node-1's agent and keel-control logs in the lab dir",
                    CHANGE_TIMEOUT.as_secs()
                ));
            }
        }
    }
    datapath.note(format!("per size: 2 phases × {rounds} rounds × {per_round} transactions, methods interleaved round by round (pod IP and keel in both phases; iptables rules loaded in the first, nftables in the second, as kube-proxy renders the same Services, in node-1's namespace; their client outside the LB cgroup)"));
    datapath.note("services: the measured one + a probe + fillers of 10 Ready endpoints each (on a node without agent); the BPF lookups are hash lookups, the iptables KUBE-SERVICES chain is linear");
    latency.note("map polled every 100 µs from the benchmark (open pinned map); includes the API write, the endpoints controller, the watch to the agent and the agent's sync");
    Ok(LabResult { datapath, latency })
}

#[derive(Clone, Copy)]
enum Tool {
    Iptables,
    Nft,
}

fn in_node(node_ns: &str, prog: &str) -> std::process::Command {
    let mut c = std::process::Command::new("ip");
    c.args(["netns", "exec", node_ns, prog]);
    c
}

/// Loads kube-proxy-equivalent rules for `svcs` into node-1's namespace.
fn load(node_ns: &str, tool: Tool, svcs: &[Svc], cidr: &str) -> anyhow::Result<()> {
    let (prog, args, input): (&str, &[&str], String) = match tool {
        Tool::Iptables => ("iptables-restore", &[], lb_rules::iptables_full(svcs, cidr)),
        Tool::Nft => ("nft", &["-f", "-"], lb_rules::nft_full(svcs, cidr)),
    };
    let mut child = in_node(node_ns, prog)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(input.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "{prog} in {node_ns}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Removes what [`load`] loaded.
fn unload(node_ns: &str, tool: Tool) -> anyhow::Result<()> {
    let cmds: &[&[&str]] = match tool {
        Tool::Iptables => &[
            &["iptables", "-t", "nat", "-F"],
            &["iptables", "-t", "nat", "-X"],
        ],
        Tool::Nft => &[&["nft", "delete", "table", "ip", "kube-proxy"]],
    };
    for c in cmds {
        let st = in_node(node_ns, c[0]).args(&c[1..]).status()?;
        if !st.success() {
            bail!("{c:?} in {node_ns} failed");
        }
    }
    Ok(())
}
