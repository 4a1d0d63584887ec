//! `keel-bench dns`: keel-agent's node-local cluster DNS against dnsmasq
//! (the cache kube-dns runs) on the same node, side by side in one lab.
//!
//! One lab node runs keel-agent with cluster DNS on 169.254.20.10; a
//! dnsmasq on 169.254.20.11 in the same network namespace holds the same
//! records (every Service's name → its ClusterIP, `cluster.local` answered
//! locally) and forwards the rest to the same upstream, a dnsmasq in the
//! lab's `ext` namespace. Both servers are pinned to one core (CPU 1),
//! `dnsperf` to the other (CPU 0). Two query sets: the Services' names
//! (answered from the agent's view / dnsmasq's records) and outside names
//! (forwarded once, then cached by both). A third server on the same core,
//! `keel-testbin dns-reflect`, sends every query straight back as an empty
//! NOERROR response: the floor, what the machine gives a server that does
//! nothing but `recvfrom` and `sendto`. Per round and set, the servers are
//! measured back to back, the order rotated every round:
//!
//! - throughput: dnsperf unthrottled for `--seconds`, queries/s and loss;
//! - latency: dnsperf at a fixed `--rate` queries/s, each answer's latency
//!   (`-v`), p50/p99 over all rounds.
//!
//! Every run is bounded by `-l`; the lab and both dnsmasqs are removed at the
//! end, also on failure.

use std::{
    io::Write,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use keel_api::Service;
use keel_lab::{Bins, Lab, LabGuard, Mode, Options, Spec, Topology, block_on};

use super::{Samples, Table, stats::fmt_duration};

const AGENT_DNS: &str = "169.254.20.10";
const DNSMASQ: &str = "169.254.20.11";
const REFLECTOR: &str = "169.254.20.12";
/// Outside names the upstream answers (every name under it).
const OUTSIDE_ZONE: &str = "outside.bench.test";
const OUTSIDE_ADDR: &str = "192.0.2.9";
/// The core the two servers share, and dnsperf's.
const SERVER_CPU: &str = "1";
const CLIENT_CPU: &str = "0";

struct Args {
    services: usize,
    names: usize,
    rounds: usize,
    seconds: u64,
    rate: u32,
}

fn parse(args: &[String]) -> anyhow::Result<Args> {
    let mut a = Args {
        services: 1_000,
        names: 1_000,
        rounds: 5,
        seconds: 5,
        rate: 2_000,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut val = || it.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--services" => a.services = val()?.parse::<usize>()?.clamp(1, 10_000),
            "--names" => a.names = val()?.parse::<usize>()?.clamp(1, 10_000),
            "--rounds" => a.rounds = val()?.parse::<usize>()?.clamp(1, 20),
            "--seconds" => a.seconds = val()?.parse::<u64>()?.clamp(1, 60),
            "--rate" => a.rate = val()?.parse::<u32>()?.clamp(100, 50_000),
            other => bail!(
                "unknown argument {other:?} (--services N, --names N, --rounds N, --seconds S, --rate QPS)"
            ),
        }
    }
    Ok(a)
}

/// A process this bench started, ended by PID on drop.
struct Owned(Child);

impl Drop for Owned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What one dnsperf run reported.
#[derive(Debug, Default)]
struct Run {
    qps: f64,
    sent: u64,
    lost: u64,
    latencies: Samples,
    /// Answers other than NOERROR (each query set only asks names that exist).
    not_noerror: u64,
}

/// Reads dnsperf's statistics and, with `-v`, its per-query lines
/// (`> NOERROR name A 0.000107`).
fn parse_dnsperf(out: &str) -> anyhow::Result<Run> {
    let mut r = Run::default();
    let mut seen_qps = false;
    for line in out.lines() {
        let l = line.trim();
        if let Some(rest) = l.strip_prefix("> ") {
            let mut f = rest.split_whitespace();
            let code = f.next().unwrap_or("");
            if let Some(secs) = f.last().and_then(|s| s.parse::<f64>().ok()) {
                r.latencies.push(Duration::from_secs_f64(secs));
            }
            if code != "NOERROR" {
                r.not_noerror += 1;
            }
        } else if let Some(v) = l.strip_prefix("Queries per second:") {
            r.qps = v.trim().parse()?;
            seen_qps = true;
        } else if let Some(v) = l.strip_prefix("Queries sent:") {
            r.sent = v.trim().parse()?;
        } else if let Some(v) = l.strip_prefix("Queries lost:") {
            r.lost = v.split_whitespace().next().unwrap_or("0").parse()?;
        } else if let Some(v) = l.strip_prefix("Response codes:") {
            // "NOERROR 1000 (50.00%), NXDOMAIN 1000 (50.00%)"
            for part in v.split(',') {
                let mut f = part.split_whitespace();
                if let (Some(code), Some(n)) = (f.next(), f.next())
                    && code != "NOERROR"
                {
                    r.not_noerror = r.not_noerror.max(n.parse().unwrap_or(0));
                }
            }
        }
    }
    anyhow::ensure!(seen_qps, "dnsperf printed no statistics:\n{out}");
    Ok(r)
}

/// One dnsperf run from the node's namespace, on the client core.
fn dnsperf(lab: &Lab, server: &str, data: &Path, extra: &[String]) -> anyhow::Result<Run> {
    let mut cmd = lab.command("node-1", "taskset")?;
    cmd.args(["-c", CLIENT_CPU, "dnsperf", "-s", server, "-d"])
        .arg(data)
        .args(extra)
        .stdin(Stdio::null());
    let out = cmd.output().context("dnsperf (Debian's dnsperf)")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    anyhow::ensure!(
        out.status.success(),
        "dnsperf against {server}: {}{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse_dnsperf(&text)
}

fn write_lines(path: &Path, lines: impl Iterator<Item = String>) -> anyhow::Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    for l in lines {
        writeln!(f, "{l}")?;
    }
    f.flush()?;
    Ok(())
}

/// dnsmasq in `netns` listening on `addr`, with `args`.
fn dnsmasq(lab: &Lab, target: &str, addr: &str, args: &[String]) -> anyhow::Result<Owned> {
    let mut cmd = lab.command(target, "taskset")?;
    cmd.args(["-c", SERVER_CPU, "dnsmasq", "--keep-in-foreground"])
        .args([
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            "--user=root",
            "--pid-file=",
            &format!("--listen-address={addr}"),
        ])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    Ok(Owned(
        cmd.spawn().context("dnsmasq (Debian's dnsmasq-base)")?,
    ))
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let a = parse(args)?;
    crate::require_root();
    for tool in ["dnsperf", "dnsmasq", "taskset"] {
        anyhow::ensure!(
            Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .stdout(Stdio::null())
                .status()?
                .success(),
            "{tool} is needed (cargo xtask setup installs it)"
        );
    }
    let spec = Spec {
        name: format!("bdn{}", std::process::id() % 100_000),
        nodes: 1,
        mode: Mode::Route,
        segments: 1,
    };
    let ext = Topology::plan(&spec)?.ext;
    let dir = tempfile::Builder::new().prefix("keel-t-bdns-").tempdir()?;
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(&resolv, format!("nameserver {}\n", ext.ip))?;
    let opts = Options {
        agent_args: vec![
            "--cluster-dns".into(),
            AGENT_DNS.into(),
            "--resolv-conf".into(),
            resolv.display().to_string(),
        ],
        ..Default::default()
    };
    eprintln!("dns bench: lab {} up…", spec.name);
    let bins = Bins::beside_current_exe()?;
    let guard = LabGuard(Lab::up(&spec, &bins, &opts)?);
    let lab = &guard.0;

    // The upstream both servers forward to.
    let _upstream = dnsmasq(
        lab,
        "ext",
        &ext.ip.to_string(),
        // A TTL, so both servers may cache the answers (dnsmasq's own
        // records have TTL 0 by default, which neither would cache).
        &[
            format!("--address=/{OUTSIDE_ZONE}/{OUTSIDE_ADDR}"),
            "--local-ttl=600".into(),
        ],
    )?;

    // The Services, then their ClusterIPs as keel-control gave them.
    eprintln!("dns bench: {} Services…", a.services);
    let c = lab.client()?;
    let mut records = Vec::with_capacity(a.services);
    for i in 0..a.services {
        let svc: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("svc-{i}"), "namespace": "default"},
            "spec": {"selector": {"app": format!("a{i}")},
                     "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]},
        }))?;
        let made: Service = block_on(c.create(&svc))?;
        records.push((
            format!("svc-{i}.default.svc.cluster.local"),
            made.spec.cluster_ip.clone(),
        ));
    }

    // dnsmasq with the same records, beside the agent, and the floor.
    for addr in [DNSMASQ, REFLECTOR] {
        let st = lab
            .command("node-1", "ip")?
            .args(["addr", "add", &format!("{addr}/32"), "dev", "lo"])
            .status()?;
        anyhow::ensure!(st.success(), "adding {addr} in node-1");
    }
    let mut cmd = lab.command("node-1", "taskset")?;
    cmd.args(["-c", SERVER_CPU])
        .arg(bins.path("keel-testbin")?)
        .args(["dns-reflect", &format!("{REFLECTOR}:53")])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _reflector = Owned(cmd.spawn().context("keel-testbin dns-reflect")?);
    let hosts = dir.path().join("cluster.hosts");
    write_lines(
        &hosts,
        records.iter().map(|(name, ip)| format!("{ip} {name}")),
    )?;
    let _dnsmasq = dnsmasq(
        lab,
        "node-1",
        DNSMASQ,
        &[
            format!("--addn-hosts={}", hosts.display()),
            "--local=/cluster.local/".into(),
            format!("--server={}", ext.ip),
            // The agent's cache bound.
            "--cache-size=10000".into(),
            "--dns-forward-max=1000".into(),
        ],
    )?;

    // The agent on the servers' core too (all its threads).
    let agent = lab
        .state
        .processes
        .iter()
        .find(|p| p.role == "node-1")
        .map(|p| p.pid)
        .context("no agent for node-1")?;
    let st = Command::new("taskset")
        .args(["-a", "-cp", SERVER_CPU, &agent.to_string()])
        .stdout(Stdio::null())
        .status()?;
    anyhow::ensure!(st.success(), "pinning keel-agent {agent}");

    let cluster = dir.path().join("cluster.txt");
    write_lines(&cluster, records.iter().map(|(n, _)| format!("{n} A")))?;
    let outside = dir.path().join("outside.txt");
    write_lines(
        &outside,
        (0..a.names).map(|i| format!("n{i}.{OUTSIDE_ZONE} A")),
    )?;

    // Both servers answer every name before anything is timed: the agent's
    // view holds the last Service, and both caches hold the outside names.
    let deadline = Instant::now() + Duration::from_secs(60);
    for (server, set) in [
        (AGENT_DNS, &cluster),
        (DNSMASQ, &cluster),
        (AGENT_DNS, &outside),
        (DNSMASQ, &outside),
        (REFLECTOR, &cluster),
    ] {
        loop {
            let r = dnsperf(lab, server, set, &["-n".into(), "1".into()])?;
            if r.lost == 0 && r.not_noerror == 0 && r.sent > 0 {
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{server} does not answer every name of {} ({} lost, {} not NOERROR)",
                set.display(),
                r.lost,
                r.not_noerror
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    let servers = [
        ("keel-agent", AGENT_DNS),
        ("dnsmasq", DNSMASQ),
        ("floor: reflector", REFLECTOR),
    ];
    let sets = [
        ("cluster names", &cluster),
        ("outside names, cached", &outside),
    ];
    // [set][server]: per-round qps, losses, latency samples.
    let n = servers.len();
    let mut qps = vec![vec![Vec::<f64>::new(); n]; 2];
    let mut lost = vec![vec![0u64; n]; 2];
    let mut sent = vec![vec![0u64; n]; 2];
    let mut lat = vec![vec![Samples::new(); n]; 2];
    let secs = a.seconds.to_string();
    for round in 0..a.rounds {
        eprintln!("dns bench: round {}/{}", round + 1, a.rounds);
        for (si, (_, set)) in sets.iter().enumerate() {
            for k in 0..n {
                let vi = (round + k) % n;
                let server = servers[vi].1;
                let t = dnsperf(
                    lab,
                    server,
                    set,
                    &[
                        "-l".into(),
                        secs.clone(),
                        "-c".into(),
                        "8".into(),
                        "-q".into(),
                        "500".into(),
                    ],
                )?;
                qps[si][vi].push(t.qps);
                lost[si][vi] += t.lost;
                sent[si][vi] += t.sent;
                let l = dnsperf(
                    lab,
                    server,
                    set,
                    &[
                        "-l".into(),
                        secs.clone(),
                        "-Q".into(),
                        a.rate.to_string(),
                        "-v".into(),
                    ],
                )?;
                anyhow::ensure!(
                    l.not_noerror == 0,
                    "{} answered {} queries of {} with an error",
                    servers[vi].0,
                    l.not_noerror,
                    set.display()
                );
                lost[si][vi] += l.lost;
                sent[si][vi] += l.sent;
                lat[si][vi].extend(l.latencies);
            }
        }
    }

    let mut table = Table::new(
        "cluster DNS on a node: keel-agent vs dnsmasq, both on one core",
        &[
            "names",
            "server",
            "queries/s (median)",
            "min–max",
            "vs dnsmasq",
            &format!("p50 at {}/s", a.rate),
            &format!("p99 at {}/s", a.rate),
            "lost",
        ],
    );
    for (si, (set, _)) in sets.iter().enumerate() {
        let base = median(&qps[si][1]);
        for (vi, (server, _)) in servers.iter().enumerate() {
            let q = &qps[si][vi];
            table.row(vec![
                set.to_string(),
                server.to_string(),
                format!("{:.0}", median(q)),
                format!(
                    "{:.0}–{:.0}",
                    q.iter().cloned().fold(f64::INFINITY, f64::min),
                    q.iter().cloned().fold(0.0, f64::max)
                ),
                format!("{:.2}x", median(q) / base),
                fmt_duration(lat[si][vi].p50()),
                fmt_duration(lat[si][vi].p99()),
                format!("{} of {}", lost[si][vi], sent[si][vi]),
            ]);
        }
    }
    table.note(format!(
        "{} Services, {} outside names; {} rounds, order rotated each round; throughput: dnsperf -c 8 -q 500 for {} s; latency: dnsperf -Q {} for {} s, every answer",
        a.services, a.names, a.rounds, a.seconds, a.rate, a.seconds
    ));
    table.note(format!(
        "servers pinned to CPU {SERVER_CPU} (keel-agent: all its threads), dnsperf to CPU {CLIENT_CPU}; dnsmasq holds the Services as addn-hosts, answers cluster.local locally, --cache-size=10000; the reflector answers every query with itself (no records): the floor"
    ));
    table.emit("dns")?;
    Ok(())
}

fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[s.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dnsperf_statistics_and_verbose_lines_are_read() {
        let out = "\
[Status] Sending queries (to 127.0.0.1:53)
> NOERROR a.test A 0.000277
> NXDOMAIN b.test A 0.000107
> NOERROR a.test A 0.000104

Statistics:

  Queries sent:         2000
  Queries completed:    1998 (99.90%)
  Queries lost:         2 (0.10%)

  Response codes:       NOERROR 1000 (50.00%), NXDOMAIN 998 (50.00%)
  Queries per second:   997.311746
";
        let r = parse_dnsperf(out).unwrap();
        assert_eq!(r.sent, 2000);
        assert_eq!(r.lost, 2);
        assert!((r.qps - 997.311746).abs() < 1e-6);
        assert_eq!(r.latencies.len(), 3);
        assert_eq!(r.latencies.p50(), Duration::from_micros(107));
        assert_eq!(r.not_noerror, 998);
        assert!(parse_dnsperf("dnsperf: error").is_err());
    }
}
