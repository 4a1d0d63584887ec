//! `keel-bench agent --baseline PATH`: what keel-agent itself costs a node,
//! measured side by side with another build of it in one lab — node-1 runs
//! the baseline agent (e.g. the previous release), node-2 this build; both
//! see the same control plane, the same events, at the same time:
//!
//! - pod startup, create → Ready, bursts of 1/10/50 pods with and without an
//!   httpGet readiness probe, alternating between the two nodes;
//! - with `--pods` idle pods on each node: the agent's CPU time over an idle
//!   window, runtime calls per idle pod per minute (connects to the pods'
//!   shims, counted by strace), and the runtime calls and worker wake-ups a
//!   burst of changes to an unrelated Service causes;
//! - a burst of `--services` Services applied with `keelctl apply -f` (one
//!   file): how long after keelctl's last write each node's BPF maps hold
//!   them all, and each agent's memory (RSS now and at its peak);
//! - at that size, an Endpoints change at keel-control until each node's
//!   BPF map has it (p50/p99).
//!
//! Every wait is bounded; the lab is removed at the end, also on failure.

use std::{
    collections::BTreeMap,
    io::Write,
    net::Ipv4Addr,
    path::PathBuf,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use keel_agent::lb::maps::AyaMaps;
use keel_api::{Pod, Service, client::ListParams};
use keel_lab::{Bins, Lab, LabGuard, Mode, Options, Spec, block_on};

use super::{Samples, Table, stats::fmt_duration};
use crate::{lb::lab_agent_socket, lb_node::agent_get};

const IMAGE: &str = "registry.keel.test/keel-testbin:latest";
/// The two agents: (label, node).
const AGENTS: [(&str, &str); 2] = [("baseline", "node-1"), ("this build", "node-2")];
const BURST_BUDGET: Duration = Duration::from_secs(240);

struct Args {
    baseline: PathBuf,
    pods: usize,
    idle: Duration,
    services: usize,
    changes: usize,
    bursts: Vec<usize>,
    rounds: usize,
}

fn parse(args: &[String]) -> anyhow::Result<Args> {
    let mut a = Args {
        baseline: std::env::var_os("KEEL_BASELINE_AGENT")
            .map(PathBuf::from)
            .unwrap_or_default(),
        pods: 100,
        idle: Duration::from_secs(600),
        services: 10_000,
        changes: 50,
        bursts: vec![1, 10, 50],
        rounds: 3,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut val = || it.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--baseline" => a.baseline = PathBuf::from(val()?),
            "--pods" => a.pods = val()?.parse::<usize>()?.clamp(1, 300),
            "--idle" => a.idle = Duration::from_secs(val()?.parse::<u64>()?.clamp(60, 3600)),
            "--services" => a.services = val()?.parse::<usize>()?.clamp(1, 20_000),
            "--changes" => a.changes = val()?.parse::<usize>()?.clamp(1, 500),
            "--rounds" => a.rounds = val()?.parse::<usize>()?.clamp(1, 10),
            "--bursts" => {
                a.bursts = val()?
                    .split(',')
                    .map(|n| n.parse::<usize>().map(|n| n.clamp(1, 100)))
                    .collect::<Result<_, _>>()?
            }
            other => bail!(
                "unknown argument {other:?} (--baseline PATH, --pods N, --idle SECS, --services N, --changes N, --rounds N, --bursts LIST)"
            ),
        }
    }
    anyhow::ensure!(
        a.baseline.is_file(),
        "--baseline PATH (or KEEL_BASELINE_AGENT): the keel-agent binary to compare with, e.g. a release build of the previous commit"
    );
    Ok(a)
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let a = parse(args)?;
    crate::require_root();
    anyhow::ensure!(
        Command::new("strace").arg("-V").output().is_ok(),
        "strace is needed to count runtime calls (apt install strace)"
    );
    let spec = Spec {
        name: format!("bag{}", std::process::id() % 100_000),
        nodes: 2,
        mode: Mode::Route,
        segments: 1,
    };
    let opts = Options {
        runtime: true,
        lb: true,
        ..Default::default()
    };
    eprintln!("agent bench: lab {} up…", spec.name);
    let mut guard = LabGuard(Lab::up(&spec, &Bins::beside_current_exe()?, &opts)?);
    let lab = &mut guard.0;
    lab.stop_agent("node-1")?;
    lab.start_agent_exe("node-1", &a.baseline)?;
    wait_until("node-1 Ready with the baseline agent", 60, || {
        let c = lab.client().ok()?;
        let n: keel_api::Node = block_on(c.get("", "node-1")).ok()?;
        let pid = agent_pid(lab, "node-1").ok()?;
        (n.is_ready() && proc_cpu(pid).is_some()).then_some(())
    })?;
    // The image on both nodes before anything is timed.
    for (_, node) in AGENTS {
        create_pods(lab, &[pod(&format!("warm-{node}"), node, true, "warm")])?;
    }
    wait_ready(lab, "bench=warm", 2, Duration::from_secs(180))?;
    delete_pods(lab, "bench=warm")?;

    startup(lab, &a)?;
    idle(lab, &a)?;
    services(lab, &a)?;
    Ok(())
}

/// A pod on `node`: the test HTTP server (with a readiness probe on it) or
/// a sleeper.
fn pod(name: &str, node: &str, probe: bool, bench: &str) -> Pod {
    let mut c = if probe {
        serde_json::json!({"name": "web", "image": IMAGE, "args": ["http-serve", "--port", "8080"],
            "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 1}})
    } else {
        serde_json::json!({"name": "sleep", "image": IMAGE, "command": ["sleep", "1000000"]})
    };
    c["imagePullPolicy"] = "IfNotPresent".into();
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": "default", "labels": {"bench": bench}},
        "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1, "containers": [c]}
    }))
    .expect("pod")
}

/// Creates `pods`, 32 requests in flight; when each create was sent.
fn create_pods(lab: &Lab, pods: &[Pod]) -> anyhow::Result<BTreeMap<String, Instant>> {
    let c = lab.client()?;
    let pods = pods.to_vec();
    block_on(async move {
        let mut out = BTreeMap::new();
        for chunk in pods.chunks(32) {
            let mut set = tokio::task::JoinSet::new();
            for p in chunk.iter().cloned() {
                let c = c.clone();
                set.spawn(async move {
                    let t = Instant::now();
                    c.create(&p).await.map(|_| (p.metadata.name.clone(), t))
                });
            }
            while let Some(r) = set.join_next().await {
                let (n, t) = r??;
                out.insert(n, t);
            }
        }
        anyhow::Ok(out)
    })
}

/// When each pod labelled `bench=…` was first seen Ready (polled every 20 ms).
fn wait_ready(
    lab: &Lab,
    selector: &str,
    n: usize,
    budget: Duration,
) -> anyhow::Result<BTreeMap<String, Instant>> {
    let c = lab.client()?;
    let start = Instant::now();
    let mut ready = BTreeMap::new();
    while ready.len() < n {
        anyhow::ensure!(
            start.elapsed() < budget,
            "only {} of {n} pods ({selector}) Ready after {budget:?}",
            ready.len()
        );
        let list = block_on(c.list::<Pod>("default", &ListParams::labels(selector)))?;
        let now = Instant::now();
        for p in list.items.iter().filter(|p| p.is_ready()) {
            ready.entry(p.metadata.name.clone()).or_insert(now);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(ready)
}

/// Deletes the pods labelled `selector` and waits until they and their
/// sandboxes are gone (bounded).
fn delete_pods(lab: &Lab, selector: &str) -> anyhow::Result<()> {
    let c = lab.client()?;
    let list = block_on(c.list::<Pod>("default", &ListParams::labels(selector)))?;
    let names: Vec<String> = list.items.iter().map(|p| p.metadata.name.clone()).collect();
    block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for n in names {
            let c = c.clone();
            set.spawn(async move { c.delete::<Pod>("default", &n).await });
        }
        while set.join_next().await.is_some() {}
    });
    let uids: Vec<String> = list.items.iter().map(|p| p.metadata.uid.clone()).collect();
    wait_until("deleted pods and their sandboxes gone", 240, || {
        let left = block_on(c.list::<Pod>("default", &ListParams::labels(selector)))
            .ok()?
            .items
            .len();
        let netns = std::fs::read_dir(keel_sys::ns::NETNS_RUN_DIR).ok()?;
        let sandboxes = netns
            .flatten()
            .filter(|e| {
                uids.iter()
                    .any(|u| e.file_name().to_string_lossy().ends_with(u))
            })
            .count();
        (left == 0 && sandboxes == 0).then_some(())
    })
}

fn wait_until<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> anyhow::Result<T> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        anyhow::ensure!(Instant::now() < deadline, "{what}: not within {secs} s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn agent_pid(lab: &Lab, node: &str) -> anyhow::Result<i32> {
    lab.state
        .processes
        .iter()
        .find(|p| p.role == node)
        .map(|p| p.pid)
        .with_context(|| format!("no agent for {node}"))
}

/// User + system CPU time of a process (all its threads).
fn proc_cpu(pid: i32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf with a valid name has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(Duration::from_millis(ticks * 1000 / hz))
}

/// (RSS, peak RSS) in MiB.
fn proc_mem(pid: i32) -> Option<(f64, f64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb = |key: &str| -> Option<f64> {
        s.lines()
            .find_map(|l| l.strip_prefix(key))?
            .split_whitespace()
            .next()?
            .parse::<f64>()
            .ok()
    };
    Some((kb("VmRSS:")? / 1024.0, kb("VmHWM:")? / 1024.0))
}

/// Counts each agent's connects to its pods' shims (the direct runtime's
/// calls) for `window`, both agents at once.
fn runtime_calls(pids: &[i32], window: Duration) -> anyhow::Result<Vec<u64>> {
    let dir = tempfile::Builder::new()
        .prefix("keel-t-strace-")
        .tempdir()?;
    let mut tracers = Vec::new();
    for (i, pid) in pids.iter().enumerate() {
        let out = dir.path().join(format!("{i}.trace"));
        let child = Command::new("strace")
            .args([
                "-f",
                "-qq",
                "--seccomp-bpf",
                "-e",
                "trace=connect",
                "-e",
                "signal=none",
            ])
            .arg("-o")
            .arg(&out)
            .arg("-p")
            .arg(pid.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting strace")?;
        tracers.push((child, out));
    }
    std::thread::sleep(window);
    let mut counts = Vec::new();
    for (mut child, out) in tracers {
        // SAFETY: kill on the PID of the strace this function started.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let _ = child.wait();
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        counts.push(text.lines().filter(|l| l.contains("shim.sock")).count() as u64);
    }
    Ok(counts)
}

/// Phase 1: pod startup bursts, alternating between the two agents.
fn startup(lab: &Lab, a: &Args) -> anyhow::Result<()> {
    let mut t = Table::new(
        "pod startup, create → Ready (image present): baseline agent vs this build, same lab, alternating",
        &[
            "pods at once",
            "readiness probe",
            "agent",
            "p50",
            "p99",
            "slowest",
        ],
    );
    for &n in &a.bursts {
        for probe in [false, true] {
            let mut samples: BTreeMap<&str, Samples> = BTreeMap::new();
            for round in 0..a.rounds {
                for (label, node) in AGENTS {
                    eprintln!("agent bench: {n} pods, probe {probe}, round {round}, {label}…");
                    let sel = format!("b{n}{}{round}{node}", if probe { "p" } else { "n" });
                    let pods: Vec<Pod> = (0..n)
                        .map(|i| pod(&format!("{sel}-{i}"), node, probe, &sel))
                        .collect();
                    let created = create_pods(lab, &pods)?;
                    let ready = wait_ready(lab, &format!("bench={sel}"), n, BURST_BUDGET)?;
                    let s = samples.entry(label).or_default();
                    for (name, at) in &ready {
                        if let Some(c) = created.get(name) {
                            s.push(at.duration_since(*c));
                        }
                    }
                    delete_pods(lab, &format!("bench={sel}"))?;
                }
            }
            for (label, _) in AGENTS {
                let s = &samples[label];
                t.row(vec![
                    n.to_string(),
                    if probe { "httpGet, 1 s" } else { "none" }.into(),
                    label.into(),
                    fmt_duration(s.p50()),
                    fmt_duration(s.p99()),
                    fmt_duration(s.percentile(100.0)),
                ]);
            }
        }
    }
    t.note(format!(
        "{} rounds per row; each burst on one node (node-1: baseline agent, node-2: this build), cleaned up before the next",
        a.rounds
    ));
    t.emit("agent")
}

/// Phase 2: idle pods — CPU, runtime calls, and what unrelated changes cost.
fn idle(lab: &Lab, a: &Args) -> anyhow::Result<()> {
    eprintln!("agent bench: {} idle pods per node…", a.pods);
    let mut pods = Vec::new();
    for (_, node) in AGENTS {
        pods.extend((0..a.pods).map(|i| pod(&format!("idle-{node}-{i}"), node, false, "idle")));
    }
    create_pods(lab, &pods)?;
    wait_ready(lab, "bench=idle", 2 * a.pods, Duration::from_secs(900))?;
    // Let start-up work settle.
    std::thread::sleep(Duration::from_secs(30));
    let pids: Vec<i32> = AGENTS
        .iter()
        .map(|(_, n)| agent_pid(lab, n))
        .collect::<anyhow::Result<_>>()?;
    let wakes = |node: &str| -> Option<serde_json::Value> {
        let body = agent_get(&lab_agent_socket(lab, node), "/reconcilers")?;
        serde_json::from_str::<serde_json::Value>(&body).ok()?["podWakes"]
            .as_object()
            .map(|o| serde_json::Value::Object(o.clone()))
    };

    eprintln!("agent bench: idle window {:?}…", a.idle);
    let cpu0: Vec<Duration> = pids
        .iter()
        .map(|p| proc_cpu(*p).unwrap_or_default())
        .collect();
    let minute = Duration::from_secs(60);
    let calls_idle = runtime_calls(&pids, minute)?;
    std::thread::sleep(a.idle.saturating_sub(minute));
    let cpu1: Vec<Duration> = pids
        .iter()
        .map(|p| proc_cpu(*p).unwrap_or_default())
        .collect();

    eprintln!("agent bench: changes to an unrelated Service…");
    let c = lab.client()?;
    let svc: Service = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "unrelated", "namespace": "default"},
        "spec": {"selector": {"app": "nobody"}, "ports": [{"port": 80}]}
    }))?;
    block_on(c.create(&svc))?;
    let wakes0 = wakes("node-2");
    let churn = 120usize;
    let tracer = std::thread::scope(|s| -> anyhow::Result<Vec<u64>> {
        let h = s.spawn(|| runtime_calls(&pids, minute));
        for i in 0..churn {
            let mut cur: Service = block_on(c.get("default", "unrelated"))?;
            cur.metadata.labels.insert("rev".into(), i.to_string());
            block_on(c.update(&cur))?;
            std::thread::sleep(minute / churn as u32 / 2);
        }
        h.join().expect("strace thread")
    })?;
    let wakes1 = wakes("node-2");

    let mut t = Table::new(
        format!(
            "{} idle pods per node: the agent's own cost, baseline vs this build, same lab, at once",
            a.pods
        ),
        &["measure", "baseline", "this build", "this / baseline"],
    );
    let ratio = |x: f64, y: f64| {
        if x > 0.0 {
            format!("{:.2}x", y / x)
        } else {
            "-".into()
        }
    };
    let secs = (a.idle.as_secs_f64()).max(1.0);
    let cpu: Vec<f64> = (0..2)
        .map(|i| (cpu1[i].saturating_sub(cpu0[i])).as_secs_f64())
        .collect();
    t.row(vec![
        format!("agent CPU time over {} idle minutes", a.idle.as_secs() / 60),
        format!("{:.2} s ({:.2}% of a core)", cpu[0], cpu[0] / secs * 100.0),
        format!("{:.2} s ({:.2}% of a core)", cpu[1], cpu[1] / secs * 100.0),
        ratio(cpu[0], cpu[1]),
    ]);
    let per_pod = |n: u64| n as f64 / a.pods as f64;
    t.row(vec![
        "runtime calls per idle pod per minute".into(),
        format!("{:.1}", per_pod(calls_idle[0])),
        format!("{:.1}", per_pod(calls_idle[1])),
        ratio(per_pod(calls_idle[0]), per_pod(calls_idle[1])),
    ]);
    let extra = |i: usize| tracer[i].saturating_sub(calls_idle[i]) as f64;
    t.row(vec![
        format!(
            "runtime calls caused by {churn} changes to an unrelated Service, per pod per change"
        ),
        format!("{:.2}", extra(0) / a.pods as f64 / churn as f64),
        format!("{:.2}", extra(1) / a.pods as f64 / churn as f64),
        ratio(extra(0), extra(1)),
    ]);
    // Reasons a change can cause (its own pod's object, a poke) against a
    // worker's own clock (its timers, its runtime wait running out).
    let woke = |keys: &[&str]| match (&wakes0, &wakes1) {
        (Some(w0), Some(w1)) => {
            let sum = |w: &serde_json::Value| {
                keys.iter().map(|k| w[k].as_u64().unwrap_or(0)).sum::<u64>()
            };
            sum(w1).saturating_sub(sum(w0)).to_string()
        }
        _ => "-".into(),
    };
    t.row(vec![
        format!("pod worker wake-ups caused by those {churn} changes (reasons pod, echo, poke; all pods)"),
        format!(
            "not counted (its manager wakes every worker on every change: {} × {churn})",
            a.pods
        ),
        woke(&["pod", "echo", "poke"]),
        String::new(),
    ]);
    t.row(vec![
        "pod worker wake-ups by their own clocks meanwhile (timers, runtime resyncs; all pods)"
            .into(),
        "-".into(),
        woke(&["runtime", "timer"]),
        String::new(),
    ]);
    for (i, (_, node)) in AGENTS.iter().enumerate() {
        if let Some((rss, _)) = proc_mem(pids[i]) {
            t.note(format!("{node} agent RSS with the idle pods: {rss:.1} MiB"));
        }
    }
    t.note("runtime calls: the agent's connects to its pods' shims, counted by strace -f -e connect over one minute; the baseline agent is node-1's, this build node-2's; a worker's wake-ups are reported by this build's /reconcilers");
    t.emit("agent")
}

/// Phase 3: a burst of Services with `keelctl apply -f`, then Endpoints
/// changes at that size.
fn services(lab: &Lab, a: &Args) -> anyhow::Result<()> {
    let pids: Vec<i32> = AGENTS
        .iter()
        .map(|(_, n)| agent_pid(lab, n))
        .collect::<anyhow::Result<_>>()?;
    let frontends = |node: &str| -> Option<u64> {
        let body = agent_get(&lab_agent_socket(lab, node), "/lb/status")?;
        serde_json::from_str::<serde_json::Value>(&body).ok()?["frontends"].as_u64()
    };
    let before: Vec<u64> = AGENTS
        .iter()
        .map(|(_, n)| frontends(n).unwrap_or(0))
        .collect();
    let dir = tempfile::Builder::new().prefix("keel-t-svcs-").tempdir()?;
    let file = dir.path().join("services.yaml");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&file)?);
        for i in 0..a.services {
            writeln!(
                f,
                "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: burst-{i}\n  namespace: default\nspec:\n  selector: {{app: burst-{i}}}\n  ports:\n  - {{port: 80, targetPort: 8080}}"
            )?;
        }
    }
    eprintln!("agent bench: keelctl apply -f ({} Services)…", a.services);
    let keelctl = Bins::beside_current_exe()?.dir.join("keelctl");
    let t0 = Instant::now();
    let out = Command::new(&keelctl)
        .args(["--lab", lab.name(), "apply", "-f"])
        .arg(&file)
        .stdout(Stdio::null())
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "keelctl apply: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last_write = Instant::now();
    let applying = last_write - t0;
    let mut after = [None, None];
    wait_until("both nodes programmed every Service", 900, || {
        for (i, (_, node)) in AGENTS.iter().enumerate() {
            if after[i].is_none()
                && frontends(node).is_some_and(|f| f >= before[i] + a.services as u64)
            {
                after[i] = Some(last_write.elapsed());
            }
        }
        after.iter().all(Option::is_some).then_some(())
    })?;
    std::thread::sleep(Duration::from_secs(10));
    let mem: Vec<(f64, f64)> = pids
        .iter()
        .map(|p| proc_mem(*p).unwrap_or_default())
        .collect();

    eprintln!("agent bench: Endpoints changes at {} Services…", a.services);
    let latency = endpoint_changes(lab, a.changes)?;

    let mut t = Table::new(
        format!(
            "{} Services in one `keelctl apply -f`, then Endpoints changes: baseline vs this build, same lab, at once",
            a.services
        ),
        &["measure", "baseline", "this build", "this / baseline"],
    );
    let secs = |d: Duration| d.as_secs_f64();
    let (b, k) = (after[0].unwrap_or_default(), after[1].unwrap_or_default());
    t.row(vec![
        "every Service in the node's BPF maps, after keelctl's last write".into(),
        fmt_duration(b),
        fmt_duration(k),
        format!("{:.3}x", secs(k) / secs(b).max(1e-9)),
    ]);
    t.row(vec![
        format!(
            "agent RSS with {} Services and {} pods (peak during the burst)",
            a.services, a.pods
        ),
        format!("{:.1} MiB ({:.1})", mem[0].0, mem[0].1),
        format!("{:.1} MiB ({:.1})", mem[1].0, mem[1].1),
        format!("{:.2}x", mem[1].0 / mem[0].0.max(1e-9)),
    ]);
    t.row(vec![
        "Endpoints change at keel-control → node's BPF map, p50".into(),
        fmt_duration(latency[0].p50()),
        fmt_duration(latency[1].p50()),
        format!(
            "{:.2}x",
            secs(latency[1].p50()) / secs(latency[0].p50()).max(1e-9)
        ),
    ]);
    t.row(vec![
        "… p99".into(),
        fmt_duration(latency[0].p99()),
        fmt_duration(latency[1].p99()),
        format!(
            "{:.2}x",
            secs(latency[1].p99()) / secs(latency[0].p99()).max(1e-9)
        ),
    ]);
    t.note(format!(
        "keelctl apply -f of {} Services (one file) took {} from its first to its last write",
        a.services,
        fmt_duration(applying)
    ));
    t.note(format!("{} Endpoints changes: a pod's Ready condition written through the API (endpoints controller → watch → agent → map); both nodes' pinned maps polled every 100 µs", a.changes));
    t.emit("agent")
}

/// Flips a probe Service's endpoint `changes` times; for each node, how
/// long until its map showed the change.
fn endpoint_changes(lab: &Lab, changes: usize) -> anyhow::Result<[Samples; 2]> {
    let c = lab.client()?;
    let svc: Service = block_on(c.create(&serde_json::from_value::<Service>(
        serde_json::json!({
            "metadata": {"name": "probe", "namespace": "default"},
            "spec": {"selector": {"app": "probe"}, "ports": [{"port": 80, "targetPort": 8080}]}
        }),
    )?))?;
    let vip: Ipv4Addr = svc.spec.cluster_ip.parse()?;
    let mut pods = Vec::new();
    for i in 0..2 {
        let p: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("probe-{i}"), "namespace": "default", "labels": {"app": "probe"}},
            "spec": {"nodeName": "ghost", "containers": [{"name": "c", "image": "none", "ports": [{"containerPort": 8080}]}]}
        }))?;
        let mut p = block_on(c.create(&p))?;
        ready(&mut p, &format!("10.250.0.{}", i + 1), true);
        pods.push(block_on(c.update_status(&p))?);
    }
    let maps: Vec<AyaMaps> = AGENTS
        .iter()
        .map(|(_, n)| AyaMaps::open_pinned(&lab.topology().node_bpffs(n).join("maps")))
        .collect::<Result<_, _>>()?;
    let count = |m: &AyaMaps| -> Option<u16> {
        m.header(u32::from_ne_bytes(vip.octets()), 80u16.to_be(), 6)
            .ok()
            .flatten()
            .map(|h| h.count)
    };
    wait_until("the probe Service on both nodes", 120, || {
        maps.iter().all(|m| count(m) == Some(2)).then_some(())
    })?;
    let mut out = [Samples::new(), Samples::new()];
    let mut up = true;
    let mut p0 = pods.remove(0);
    for _ in 0..changes {
        up = !up;
        let want = if up { 2 } else { 1 };
        ready(&mut p0, "10.250.0.1", up);
        let t = Instant::now();
        p0 = block_on(c.update_status(&p0))?;
        let mut seen = [None, None];
        while seen.iter().any(Option::is_none) {
            anyhow::ensure!(
                t.elapsed() < Duration::from_secs(60),
                "an Endpoints change did not reach every node within 60 s"
            );
            for (i, m) in maps.iter().enumerate() {
                if seen[i].is_none() && count(m) == Some(want) {
                    seen[i] = Some(t.elapsed());
                }
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        for (i, s) in seen.into_iter().enumerate() {
            out[i].push(s.expect("seen"));
        }
    }
    Ok(out)
}

fn ready(pod: &mut Pod, ip: &str, ready: bool) {
    pod.status.pod_ip = ip.to_string();
    pod.status.phase = Some(keel_api::pod::PodPhase::Running);
    pod.set_condition("Ready", if ready { "True" } else { "False" }, "", "");
}
