//! `keel-bench api`: keel-control's API at scale. Creates/s with one client
//! at a time (the baseline: one fsync per write) against 64 concurrent
//! clients (group commit), for 10,000 Services and 50,000 Pods; watch
//! fan-out latency from a write to 200 watchers; list and restart times and
//! the server's memory at that size.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context;
use keel_api::{
    EventType, Node, Pod, Service,
    client::{Client, ListParams},
};

use super::{Samples, Table, stats::fmt_duration};
use crate::process::ControlProcess;

const NODES: usize = 100;
const SERVICES: usize = 10_000;
const PODS: usize = 50_000;
const CONCURRENCY: usize = 64;
/// Writes measured one at a time, for the baseline row.
const SERIAL_SAMPLE: usize = 500;
const WATCHERS: usize = 200;
const UPDATES: usize = 200;

fn service(i: usize) -> Service {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": format!("svc-{i}"), "namespace": "bench"},
        "spec": {"selector": {"app": format!("app-{i}")}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
    }))
    .expect("valid service")
}

fn pod(i: usize) -> Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": format!("pod-{i}"), "namespace": "bench", "labels": {"app": format!("app-{}", i % SERVICES)}},
        "spec": {"containers": [{"name": "c", "image": "registry.local/app:1", "ports": [{"containerPort": 8080}],
                 "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}
    }))
    .expect("valid pod")
}

fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Runs `count` creates with `concurrency` in flight; returns the elapsed time.
async fn create_many<T, F, Fut>(
    count: usize,
    concurrency: usize,
    make: F,
) -> anyhow::Result<Duration>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<T>> + Send,
    T: Send + 'static,
{
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let make = Arc::new(make);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (next, make) = (next.clone(), make.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= count {
                    return Ok::<(), anyhow::Error>(());
                }
                make(i).await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(start.elapsed())
}

pub fn run(_args: &[String]) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run_async())
}

async fn run_async() -> anyhow::Result<()> {
    // Nodes stay Ready for the whole run without heartbeats.
    let mut control =
        ControlProcess::start(&["--node-monitor-grace", "1h", "--watch-history", "20000"]);
    let c = control.client();
    let pid = control.pid().context("keel-control pid")?;
    let mut table = Table::new(
        "keel-control API at 10,000 Services and 50,000 Pods",
        &["measurement", "result", "vs baseline"],
    );

    for i in 0..NODES {
        let mut n: Node =
            serde_json::from_value(serde_json::json!({"metadata": {"name": format!("node-{i}")}}))?;
        n = c.create(&n).await?;
        n.status
            .allocatable
            .insert("cpu".into(), keel_api::Quantity::parse("64")?);
        n.status
            .allocatable
            .insert("memory".into(), keel_api::Quantity::parse("256Gi")?);
        n.status
            .allocatable
            .insert("pods".into(), keel_api::Quantity::parse("1000")?);
        n.set_condition("Ready", "True", "Bench", "", Some(keel_api::Time::now()));
        n.metadata.resource_version.clear();
        c.update_status(&n).await?;
    }

    // Baseline: one client, one write at a time.
    let cc = c.clone();
    let serial = create_many(SERIAL_SAMPLE, 1, move |i| {
        let c = cc.clone();
        async move { c.create(&service(i)).await.map_err(anyhow::Error::from) }
    })
    .await?;
    let serial_rate = SERIAL_SAMPLE as f64 / serial.as_secs_f64();
    table.row(vec![
        "Service creates/s, 1 client (baseline)".into(),
        format!("{serial_rate:.0}/s"),
        "1.00x".into(),
    ]);
    let cc = c.clone();
    let svc_time = create_many(SERVICES - SERIAL_SAMPLE, CONCURRENCY, move |i| {
        let c = cc.clone();
        async move {
            c.create(&service(i + SERIAL_SAMPLE))
                .await
                .map_err(anyhow::Error::from)
        }
    })
    .await?;
    let svc_rate = (SERVICES - SERIAL_SAMPLE) as f64 / svc_time.as_secs_f64();
    table.row(vec![
        format!("Service creates/s, {CONCURRENCY} clients"),
        format!("{svc_rate:.0}/s"),
        format!("{:.2}x", svc_rate / serial_rate),
    ]);
    let cc = c.clone();
    let pod_time = create_many(PODS, CONCURRENCY, move |i| {
        let c = cc.clone();
        async move { c.create(&pod(i)).await.map_err(anyhow::Error::from) }
    })
    .await?;
    let pod_rate = PODS as f64 / pod_time.as_secs_f64();
    table.row(vec![
        format!("Pod creates/s, {CONCURRENCY} clients (each also scheduled)"),
        format!("{pod_rate:.0}/s"),
        format!("{:.2}x", pod_rate / serial_rate),
    ]);

    // Let the scheduler and endpoints controller finish, then measure memory.
    let settle = Instant::now();
    loop {
        let unbound = c
            .list::<Pod>("bench", &ListParams::fields("spec.nodeName="))
            .await?
            .items
            .len();
        if unbound == 0 || settle.elapsed() > Duration::from_secs(300) {
            table.row(vec![
                "time for the scheduler to bind every pod after the last create".into(),
                fmt_duration(settle.elapsed()),
                if unbound == 0 {
                    String::new()
                } else {
                    format!("{unbound} still unbound")
                },
            ]);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (rss, hwm) = rss_kib(pid);
    table.row(vec![
        "keel-control memory (RSS / peak)".into(),
        format!("{} MiB / {} MiB", rss / 1024, hwm / 1024),
        String::new(),
    ]);

    let t = Instant::now();
    let all = c.list::<Pod>("", &ListParams::default()).await?;
    table.row(vec![
        format!("list all {} pods", all.items.len()),
        fmt_duration(t.elapsed()),
        String::new(),
    ]);
    let rv = all.metadata.resource_version.clone();
    drop(all);

    // Watch fan-out: WATCHERS watch services; UPDATES paced writes.
    let sent: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(vec![None; UPDATES]));
    let samples: Arc<Mutex<Samples>> = Arc::new(Mutex::new(Samples::new()));
    let mut watchers = Vec::new();
    for _ in 0..WATCHERS {
        let mut w = c
            .watch::<Service>("bench", &ListParams::labels("bench-target=yes"), &rv)
            .await?;
        let (sent, samples) = (sent.clone(), samples.clone());
        watchers.push(tokio::spawn(async move {
            let mut got = 0;
            while got < UPDATES {
                let Ok(Some(Ok(e))) = tokio::time::timeout(Duration::from_secs(30), w.next()).await
                else {
                    break;
                };
                if e.type_ != EventType::Modified {
                    continue;
                }
                let now = Instant::now();
                let seq: usize = e
                    .object
                    .metadata
                    .annotations
                    .get("bench/seq")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(usize::MAX);
                if let Some(Some(at)) = sent.lock().expect("lock").get(seq).copied() {
                    samples.lock().expect("lock").push(now - at);
                }
                got += 1;
            }
        }));
    }
    for seq in 0..UPDATES {
        let mut s = service(seq);
        s.metadata
            .labels
            .insert("bench-target".into(), "yes".into());
        s.metadata
            .annotations
            .insert("bench/seq".into(), seq.to_string());
        sent.lock().expect("lock")[seq] = Some(Instant::now());
        c.update(&s).await?;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for w in watchers {
        let _ = w.await;
    }
    let s = samples.lock().expect("lock").clone();
    table.row(vec![
        format!(
            "write → watch delivery, {WATCHERS} watchers × {UPDATES} updates ({} deliveries)",
            s.len()
        ),
        format!(
            "p50 {} / p99 {}",
            fmt_duration(s.p50()),
            fmt_duration(s.p99())
        ),
        String::new(),
    ]);

    let t = Instant::now();
    control.restart();
    let restarted = Client::new(&keel_api::client::ClientConfig::load(
        &control.client_config_path(),
    )?)?;
    let n = restarted
        .list::<Service>("bench", &ListParams::default())
        .await?
        .items
        .len();
    table.row(vec![
        format!("restart to serving with {} objects loaded", n + PODS),
        fmt_duration(t.elapsed()),
        String::new(),
    ]);
    let (rss, _) = rss_kib(control.pid().context("pid")?);
    table.row(vec![
        "keel-control memory after restart (RSS)".into(),
        format!("{} MiB", rss / 1024),
        String::new(),
    ]);

    table.note(format!(
        "{} cores; keel-control release build with the redb store on {}; every write durable (fsync) before it is acknowledged",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        control.data_dir().display()
    ));
    table.note("the baseline row is the same create, one client at a time: each write waits for its own fsync; with 64 clients the writer commits them in groups");
    table.emit("api")?;
    Ok(())
}
