//! `keel-bench pods`: pod startup in the lab — create N pods at once
//! (N = 1, 10, 50) and time each from its create request to the first time
//! the API shows it Ready (image present on the nodes; without a readiness
//! probe, and with an httpGet one on the test HTTP server), p50/p99 per
//! burst; the Kubernetes pod startup SLO
//! (5 s p99) and keel's goal (2 s p99 at 50 pods) are printed beside.
//!
//! Each burst is cleaned up (pods deleted and gone) before the next one.
//! Readiness is polled every 20 ms, bounded in time.
//!
//! `keel-bench pods [--nodes N] [--bursts 1,10,50]`

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use keel_api::{Pod, client::ListParams};
use keel_lab::{Bins, Lab, LabGuard, Mode, Options, Spec, block_on};
use keel_sys::ns::NetNs;
use serde_json::json;

use super::{Samples, Table, stats::fmt_duration};
use crate::runtime::{ImageSpec, TestRegistry, build_layout};

const PORT: u16 = 5000;
const BURST_BUDGET: Duration = Duration::from_secs(180);

fn pod(name: &str, image: &str, probe: bool) -> anyhow::Result<Pod> {
    let mut c = json!({"name": "web", "image": image, "imagePullPolicy": "IfNotPresent"});
    if probe {
        c["readinessProbe"] =
            json!({"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 1});
    }
    Ok(serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default", "labels": {"bench": "pods"}},
        "spec": {"terminationGracePeriodSeconds": 2, "containers": [c]}
    }))?)
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let mut nodes = 2usize;
    let mut bursts = vec![1usize, 10, 50];
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--nodes" => {
                nodes = it
                    .next()
                    .context("--nodes N")?
                    .parse::<usize>()?
                    .clamp(1, 8)
            }
            "--bursts" => {
                bursts = it
                    .next()
                    .context("--bursts 1,10,50")?
                    .split(',')
                    .map(|n| n.parse::<usize>().map(|n| n.clamp(1, 200)))
                    .collect::<Result<_, _>>()?
            }
            other => bail!("unknown argument {other:?} (expected --nodes N, --bursts LIST)"),
        }
    }
    crate::require_root();
    let name = format!("bpods{}", std::process::id() % 100_000);
    let spec = Spec {
        name: name.clone(),
        nodes,
        mode: Mode::Route,
        segments: 1,
    };
    let opts = Options {
        agent_args: vec![
            "--runtime".into(),
            "direct".into(),
            "--insecure-registry".into(),
            format!("127.0.0.1:{PORT}"),
        ],
        ..Default::default()
    };
    let bins = Bins::beside_current_exe()?;
    let guard = LabGuard(Lab::up(&spec, &bins, &opts)?);
    let lab = &guard.0;
    let node_ns: Vec<_> = lab
        .topology()
        .nodes
        .iter()
        .map(|n| (n.role.clone(), NetNs::named_path(&n.netns)))
        .collect();
    let images = tempfile::Builder::new()
        .prefix("keel-t-images-")
        .tempdir()?;
    let layout = build_layout(&ImageSpec::testbin("v1"), images.path());
    let first = TestRegistry::start_at(&node_ns[0].1, PORT, None);
    let image = first.push_at(&node_ns[0].1, &layout, "v1", "keel/testbin");
    let _others: Vec<TestRegistry> = node_ns[1..]
        .iter()
        .map(|(_, ns)| TestRegistry::start_at(ns, PORT, Some(first.data_dir())))
        .collect();
    let c = lab.client()?;

    // Warm-up: one pod per node pulls the image there (not measured).
    for (i, (node, _)) in node_ns.iter().enumerate() {
        let mut p = pod(&format!("warm-{i}"), &image, true)?;
        p.spec.node_name = node.clone();
        block_on(c.create(&p))?;
    }
    wait_all(lab, node_ns.len(), Duration::from_secs(120))?;
    delete_all(lab)?;

    let mut t = Table::new(
        "pod startup: create → Ready (image present)",
        &[
            "pods at once",
            "readiness probe",
            "p50",
            "p99",
            "slowest",
            "all Ready after",
            "goal p99",
        ],
    );
    for (n, probe) in bursts.iter().flat_map(|n| [(*n, false), (*n, true)]) {
        let names: Vec<String> = (0..n)
            .map(|i| format!("b{n}-{}-{i}", if probe { "p" } else { "n" }))
            .collect();
        let pods: Vec<Pod> = names
            .iter()
            .map(|nm| pod(nm, &image, probe))
            .collect::<anyhow::Result<_>>()?;
        let start = Instant::now();
        let created: Vec<(String, Instant)> = block_on(async {
            let futs = pods.iter().map(|p| {
                let c = c.clone();
                async move {
                    let t = Instant::now();
                    c.create(p).await.map(|_| (p.metadata.name.clone(), t))
                }
            });
            futures_join(futs.collect()).await
        })?;
        let created: BTreeMap<String, Instant> = created.into_iter().collect();
        let mut ready: BTreeMap<String, Instant> = BTreeMap::new();
        while ready.len() < n {
            anyhow::ensure!(
                start.elapsed() < BURST_BUDGET,
                "only {} of {n} pods Ready after {BURST_BUDGET:?}",
                ready.len()
            );
            let list = block_on(c.list::<Pod>("default", &ListParams::labels("bench=pods")))?;
            let now = Instant::now();
            for p in list.items.iter().filter(|p| p.is_ready()) {
                ready.entry(p.metadata.name.clone()).or_insert(now);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let all = start.elapsed();
        let samples: Samples = ready
            .iter()
            .filter_map(|(nm, r)| created.get(nm).map(|c| r.duration_since(*c)))
            .collect();
        t.row(vec![
            n.to_string(),
            if probe { "httpGet, period 1 s" } else { "none" }.into(),
            fmt_duration(samples.p50()),
            fmt_duration(samples.p99()),
            fmt_duration(samples.percentile(100.0)),
            fmt_duration(all),
            if n >= 50 {
                "< 2 s".into()
            } else {
                String::new()
            },
        ]);
        delete_all(lab)?;
    }
    t.note(format!(
        "{nodes}-node lab (route mode) on this machine; keel-agent --runtime direct (per-pod shim, libcontainer), keel-cni sandboxes"
    ));
    t.note("Ready polled through the API every 20 ms; without a readiness probe a pod is Ready once its container runs; with one, at its first passing probe (the first runs at start, then every period, as the kubelet does)");
    t.note("the Kubernetes pod startup SLO is 5 s p99 (image present)");
    t.emit("pods")?;
    Ok(())
}

async fn futures_join<T>(
    futs: Vec<impl std::future::Future<Output = Result<T, keel_api::client::ClientError>>>,
) -> anyhow::Result<Vec<T>> {
    let mut out = Vec::new();
    let handles: Vec<_> = futs.into_iter().collect();
    for r in futures_join_all(handles).await {
        out.push(r?);
    }
    Ok(out)
}

/// Polls every future to completion concurrently (no extra dependency).
async fn futures_join_all<F: std::future::Future>(futs: Vec<F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter()
        .map(|o| o.expect("polled to completion"))
        .collect()
}

fn wait_all(lab: &Lab, n: usize, timeout: Duration) -> anyhow::Result<()> {
    let c = lab.client()?;
    let start = Instant::now();
    loop {
        let list = block_on(c.list::<Pod>("default", &ListParams::labels("bench=pods")))?;
        if list.items.iter().filter(|p| p.is_ready()).count() >= n {
            return Ok(());
        }
        anyhow::ensure!(
            start.elapsed() < timeout,
            "warm-up pods not Ready within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn delete_all(lab: &Lab) -> anyhow::Result<()> {
    let c = lab.client()?;
    let list = block_on(c.list::<Pod>("default", &ListParams::labels("bench=pods")))?;
    for p in &list.items {
        let _ = block_on(c.delete::<Pod>("default", &p.metadata.name));
    }
    let start = Instant::now();
    loop {
        let left = block_on(c.list::<Pod>("default", &ListParams::labels("bench=pods")))?
            .items
            .len();
        let sandboxes = std::fs::read_dir(keel_sys::ns::NETNS_RUN_DIR)
            .map(|rd| {
                rd.flatten()
                    .filter(|e| {
                        e.file_name()
                            .to_string_lossy()
                            .starts_with(&format!("keel-lab-{}-", lab.name()))
                            && e.file_name().to_string_lossy().contains("-pod-")
                    })
                    .count()
            })
            .unwrap_or(0);
        if left == 0 && sandboxes == 0 {
            return Ok(());
        }
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(120),
            "{left} pods / {sandboxes} sandboxes still there after 120 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
