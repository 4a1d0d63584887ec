//! The lab on a highly available control plane, under faults (issue 15):
//! three keel-control replicas on a three-member etcd (TLS with client
//! certificates), two nodes with Service load balancing. While several
//! clients create, update and delete Services and Deployments, a
//! Deployment rolls out a new template and a pod fetches a Service by its
//! ClusterIP in a loop, the test SIGKILLs the leading replica, then a
//! non-leader (both started again at once), then an etcd member (started
//! again later), then cuts the leading replica off from etcd and heals it.
//!
//! Asserted: every write acknowledged to a client is there afterwards,
//! read through every replica (acknowledged-but-lost = 0); no cluster IP or
//! node port is held twice; every replica serves again after the faults;
//! every node stays Ready; the in-pod client counts no failure; the
//! rolling update completes. While cut off from etcd, a replica answers a
//! write within its etcd deadline (504: it may or may not have committed),
//! reports itself not ready, and from then on refuses writes and reads of
//! the current state at once with a 503 naming etcd, which clients take to
//! another replica.
//!
//! The controllers resume on another replica within the lease TTL plus
//! [`FAILOVER_SLACK`]. Strictly within the TTL cannot be: a killed leader's
//! lease runs out a full TTL after its last keep-alive, and a cut-off
//! leader must first notice it lost etcd (it stops its controllers when no
//! keep-alive was answered for 2/3 of the TTL; etcd lets the lease expire
//! only at the TTL, so no two leaders ever write). The slack covers etcd's
//! lease expiry checks (every 500 ms), the contender's watch seeing the key
//! go, its election and the endpoints controller's first pass. That the
//! cut-off leader stopped before the next one started (fencing) is asserted
//! from their logs. Measured and printed: failover times, how fast the
//! cut-off replica answers and turns not ready, writes/s during the faults
//! and after. `KEEL_CHAOS_LOGS=DIR` keeps a copy of the lab's logs.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use keel_api::{
    Deployment, Endpoints, Node, Service,
    client::{Client, ListParams},
};
use keel_lab::{Bins, ControlPlane, Lab, LabGuard, Mode, Options, Spec, Store};
use keel_tests::{
    lb::{field, lab_pods, serve_in_pods, testbin_in},
    process::wait_for,
    require_root,
};

/// The leader lease: the controllers must move within it (plus the time a
/// contender takes to notice the key is gone and win the election).
const LEASE_TTL: Duration = Duration::from_secs(3);
const FAILOVER_SLACK: Duration = Duration::from_secs(2);
/// A replica cut off from etcd answers a write within its etcd deadline
/// (5 s) plus this much.
const CUT_OFF_ANSWER: Duration = Duration::from_secs(8);

fn ha_lab() -> LabGuard {
    require_root();
    let spec = Spec {
        name: format!("tha{}", std::process::id() % 100_000),
        nodes: 2,
        mode: Mode::Vxlan,
        segments: 1,
    };
    let opts = Options {
        lb: true,
        control_plane: ControlPlane {
            replicas: 3,
            store: Store::Etcd,
        },
        leader_lease_ttl: Some(LEASE_TTL),
        ..Default::default()
    };
    let bins = Bins::beside_current_exe().expect("binaries");
    LabGuard(Lab::up(&spec, &bins, &opts).expect("lab up"))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn service(name: &str, node_port: bool) -> Service {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": "default", "labels": {"chaos": "yes", "v": "0"}},
        "spec": {"type": if node_port { "NodePort" } else { "ClusterIP" },
                 "selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]}
    }))
    .expect("service")
}

fn deployment(name: &str, replicas: i64, rev: &str) -> Deployment {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": "default", "labels": {"chaos": "yes", "v": "0"}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}, "annotations": {"rev": rev}},
                              "spec": {"containers": [{"name": "c", "image": "none"}]}}}
    }))
    .expect("deployment")
}

/// What a client was told about one object: the last acknowledged state
/// (`Some(v)`: present with label v; `None`: deleted), unless a later write
/// to it went unanswered (then nothing can be said, and it is not checked).
#[derive(Debug, Default)]
struct Ledger {
    /// kind/name → last acknowledged state.
    acked: BTreeMap<String, Option<String>>,
    /// Objects a write to which failed without an answer (outcome unknown).
    unknown: BTreeSet<String>,
}

/// One writer: Services and Deployments created, relabelled and (every
/// third) deleted, one after another, until `stop`. Each acknowledged
/// write is recorded; an unanswered one marks its object unknown and the
/// writer moves on to the next object.
async fn writer(
    c: Client,
    id: usize,
    stop: Arc<AtomicBool>,
    ledger: Arc<Mutex<Ledger>>,
    acks: Arc<AtomicU64>,
) {
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let svc_name = format!("w{id}-s{i}");
        let dep_name = format!("w{id}-d{i}");
        let svc_key = format!("svc/{svc_name}");
        let dep_key = format!("deploy/{dep_name}");
        let record = |key: &str, r: Result<Option<String>, String>| {
            let mut l = ledger.lock().unwrap();
            match r {
                Ok(state) => {
                    if !l.unknown.contains(key) {
                        l.acked.insert(key.to_string(), state);
                    }
                    acks.fetch_add(1, Ordering::Relaxed);
                    true
                }
                Err(e) => {
                    eprintln!("writer {id}: {key}: {e} (outcome unknown)");
                    l.unknown.insert(key.to_string());
                    l.acked.remove(key);
                    false
                }
            }
        };
        // Create, then update the label from the stored object.
        let created = c.create(&service(&svc_name, i % 2 == 0)).await;
        if !record(
            &svc_key,
            created
                .as_ref()
                .map(|_| Some("0".into()))
                .map_err(|e| e.to_string()),
        ) {
            continue;
        }
        let r = relabel::<Service>(&c, &svc_name).await;
        if !record(
            &svc_key,
            r.map(|_| Some("1".into())).map_err(|e| e.to_string()),
        ) {
            continue;
        }
        let created = c.create(&deployment(&dep_name, 0, "a")).await;
        if !record(
            &dep_key,
            created
                .as_ref()
                .map(|_| Some("0".into()))
                .map_err(|e| e.to_string()),
        ) {
            continue;
        }
        let r = relabel::<Deployment>(&c, &dep_name).await;
        if !record(
            &dep_key,
            r.map(|_| Some("1".into())).map_err(|e| e.to_string()),
        ) {
            continue;
        }
        if i % 3 == 0 {
            let r = c.delete::<Service>("default", &svc_name).await;
            if !record(&svc_key, r.map(|_| None).map_err(|e| e.to_string())) {
                continue;
            }
            let r = c.delete::<Deployment>("default", &dep_name).await;
            record(&dep_key, r.map(|_| None).map_err(|e| e.to_string()));
        }
    }
}

/// Sets label v=1 on the stored object; a conflict (a controller wrote its
/// status meanwhile: nothing was written) reads it again and retries.
async fn relabel<R: keel_api::Resource>(
    c: &Client,
    name: &str,
) -> Result<R, keel_api::client::ClientError> {
    let mut tries = 0;
    loop {
        let mut o: R = c.get("default", name).await?;
        o.meta_mut().labels.insert("v".into(), "1".into());
        match c.update(&o).await {
            Err(e) if e.is_conflict() && tries < 10 => tries += 1,
            r => return r,
        }
    }
}

/// A client of one replica only.
fn replica_client(lab: &Lab, role: &str) -> Client {
    let host = lab
        .topology()
        .controls()
        .into_iter()
        .find(|h| h.role == role)
        .unwrap()
        .clone();
    let config = keel_api::client::ClientConfig::load(&lab.client_config_path()).unwrap();
    let config = keel_api::client::ClientConfig {
        server: format!("https://{}:{}", host.ip, keel_lab::topology::CONTROL_PORT),
        ..config
    };
    Client::with_connector(
        &config,
        keel_lab::connect::in_netns(&keel_sys::ns::NetNs::named_path(&host.netns)),
    )
    .unwrap()
}

/// Creates a Service right away and waits until its Endpoints exist
/// (derived by the endpoints controller on the leading replica): the time
/// from `since` until the controllers act.
fn controllers_act(
    rt: &tokio::runtime::Runtime,
    c: &Client,
    name: &str,
    since: Instant,
) -> Duration {
    rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match c.create(&service(name, false)).await {
                Ok(_) => break,
                Err(e) if e.is_conflict() => break,
                Err(e) => {
                    assert!(Instant::now() < deadline, "creating {name}: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        loop {
            if c.get::<Endpoints>("default", name).await.is_ok() {
                return since.elapsed();
            }
            assert!(
                Instant::now() < deadline,
                "no Endpoints for {name} within 30 s: the controllers did not resume"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
}

/// `/readyz` of the replica behind `c`.
async fn ready(c: &Client) -> Result<(), keel_api::client::ClientError> {
    c.request_raw(keel_api::client::HttpMethod::GET, "/readyz", None)
        .await
        .map(|_| ())
}

/// The timestamp (RFC 3339, UTC: ordered as text) of the last line of the
/// running process of `role` that contains `needle`.
fn log_line_time(lab: &Lab, role: &str, needle: &str) -> Option<String> {
    let log = lab.process(role).ok()?.own_log()?;
    let line = log.lines().rev().find(|l| l.contains(needle))?;
    Some(line.split_whitespace().next()?.to_string())
}

fn wait_leader(lab: &Lab, not: Option<&str>) -> String {
    wait_for("a leading replica", Duration::from_secs(30), || {
        lab.control_leader().filter(|l| Some(l.as_str()) != not)
    })
}

#[test]
fn the_control_plane_survives_replica_etcd_and_network_faults() {
    let started = Instant::now();
    let mut lab = ha_lab();
    eprintln!(
        "lab up with 3 replicas on a 3-member etcd in {:?}",
        started.elapsed()
    );
    let rt = runtime();
    let c = lab.client().unwrap();

    // Backends, a client pod and their Service; the client must get through.
    let p = lab_pods(
        &lab,
        &[
            ("web-1", "node-1", "web"),
            ("web-2", "node-2", "web"),
            ("client-1", "node-1", "client"),
        ],
    );
    let _servers = serve_in_pods(&p, &["web-1", "web-2"]);
    let web = rt
        .block_on(c.create(&serde_json::from_value::<Service>(serde_json::json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}
        })).unwrap()))
        .unwrap();
    let vip = format!("{}:80", web.spec.cluster_ip);
    let (client_ns, client_cg) = lab.target("client-1").unwrap();
    let dial = {
        let (ns, cg, vip) = (client_ns.clone(), client_cg.clone(), vip.clone());
        move |n: usize| -> (usize, usize) {
            let out = testbin_in(
                &ns,
                cg.as_deref(),
                &["lb-dial", "tcp", &vip, &n.to_string()],
            )
            .output()
            .expect("lb-dial");
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            let ok = text
                .lines()
                .filter(|l| field(l, "server").is_some())
                .count();
            (ok, text.lines().count().max(n) - ok)
        }
    };
    wait_for(
        "the Service answers from the client pod",
        Duration::from_secs(60),
        || (dial(5) == (5, 0)).then_some(()),
    );

    // A Deployment to roll out during the faults.
    rt.block_on(c.create(&deployment("roll", 4, "a"))).unwrap();
    let rolled_out = |rev: &str| {
        let d: Deployment = rt.block_on(c.get("default", "roll")).ok()?;
        let pods_ok = d.status.observed_generation >= d.metadata.generation
            && d.status.updated_replicas == 4
            && d.status.replicas == 4
            && d.status.available_replicas == 4;
        (pods_ok
            && d.spec
                .template
                .metadata
                .annotations
                .get("rev")
                .map(String::as_str)
                == Some(rev))
        .then_some(())
    };
    wait_for("roll available", Duration::from_secs(60), || {
        rolled_out("a")
    });

    // Background: the in-pod client loop, node readiness, the writers.
    let stop = Arc::new(AtomicBool::new(false));
    let dials = Arc::new(AtomicU64::new(0));
    let dial_failures = Arc::new(AtomicU64::new(0));
    let dialer = {
        let (stop, dials, failures) = (stop.clone(), dials.clone(), dial_failures.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let (ok, failed) = dial(5);
                dials.fetch_add((ok + failed) as u64, Ordering::Relaxed);
                failures.fetch_add(failed as u64, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let not_ready: Arc<Mutex<Vec<String>>> = Default::default();
    let readiness = {
        let (stop, not_ready, c) = (stop.clone(), not_ready.clone(), c.clone());
        rt.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if let Ok(nodes) = c.list::<Node>("", &ListParams::default()).await {
                    for n in nodes.items.iter().filter(|n| !n.is_ready()) {
                        not_ready.lock().unwrap().push(n.metadata.name.clone());
                    }
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    };
    let ledger: Arc<Mutex<Ledger>> = Default::default();
    let acks = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..4)
        .map(|id| {
            // Each writer its own client (own connections), all replicas.
            let c = lab.client().unwrap();
            rt.spawn(writer(c, id, stop.clone(), ledger.clone(), acks.clone()))
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));

    let faults_started = Instant::now();
    let acks_before = acks.load(Ordering::Relaxed);
    // The rollout starts: a new template.
    rt.block_on(async {
        let mut d: Deployment = c.get("default", "roll").await.unwrap();
        d.spec
            .template
            .metadata
            .annotations
            .insert("rev".into(), "b".into());
        c.update(&d).await.unwrap();
    });

    let mut failovers = Vec::new();
    // 1. SIGKILL the leader.
    let leader = wait_leader(&lab, None);
    let killed = Instant::now();
    lab.kill(&leader).unwrap();
    let took = controllers_act(&rt, &c, "probe-leader-kill", killed);
    let next = wait_leader(&lab, Some(&leader));
    eprintln!("SIGKILL of the leader {leader}: controllers resumed on {next} after {took:?}");
    failovers.push(took);
    lab.start_again(&leader).unwrap();

    // 2. SIGKILL a replica that does not lead: the leader stays.
    let bystander = lab
        .topology()
        .controls()
        .iter()
        .map(|h| h.role.clone())
        .find(|r| *r != next && *r != leader)
        .unwrap();
    lab.kill(&bystander).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        lab.control_leader().as_deref(),
        Some(next.as_str()),
        "a non-leader's death moved the leader"
    );
    lab.start_again(&bystander).unwrap();

    // 3. SIGKILL an etcd member; the other two keep a quorum. Then restart it.
    lab.kill("etcd-2").unwrap();
    let t = controllers_act(&rt, &c, "probe-etcd-down", Instant::now());
    eprintln!("with etcd-2 down the controllers act within {t:?}");
    std::thread::sleep(Duration::from_secs(3));
    lab.start_again("etcd-2").unwrap();

    // 4. Cut the leader off from etcd: it steps down, another takes over;
    // the cut-off replica answers writes at once (503 once its probe of
    // etcd failed; before that 504 within its etcd deadline) and reports
    // itself not ready, so clients go elsewhere. Then heal.
    let cut_leader = wait_leader(&lab, None);
    let cut_client = replica_client(&lab, &cut_leader);
    let cut = Instant::now();
    // Asked through a replica that still reaches etcd.
    let healthy = lab
        .topology()
        .controls()
        .iter()
        .map(|h| h.role.clone())
        .find(|r| *r != cut_leader)
        .unwrap();
    let healthy_client = replica_client(&lab, &healthy);
    lab.partition_from_etcd(&cut_leader).unwrap();
    // At once and side by side: a write to the cut-off replica (before its
    // probe noticed), its readiness watched, the controllers' failover.
    let first_write = {
        let c = cut_client.clone();
        rt.spawn(async move {
            let t = Instant::now();
            let r = c.create(&service("probe-cut-1", false)).await;
            (r.map(|_| ()), t.elapsed())
        })
    };
    let cut_not_ready = {
        let c = cut_client.clone();
        rt.spawn(async move {
            while cut.elapsed() < Duration::from_secs(10) {
                if ready(&c).await.is_err() {
                    return Some(cut.elapsed());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            None
        })
    };
    let took = controllers_act(&rt, &healthy_client, "probe-partition", cut);
    let after_cut = wait_leader(&lab, Some(&cut_leader));
    eprintln!("{cut_leader} cut off from etcd: controllers resumed on {after_cut} after {took:?}");
    failovers.push(took);
    let not_ready_after = rt
        .block_on(cut_not_ready)
        .unwrap()
        .expect("the cut-off replica reports itself not ready within 10 s");
    let first_answer = rt.block_on(first_write).unwrap();
    eprintln!(
        "a write to {cut_leader} just cut off from etcd: {:?} after {:?}",
        first_answer.0.as_ref().map_err(|e| e.to_string()),
        first_answer.1
    );
    if let Err(e) = &first_answer.0 {
        assert!(
            matches!(e.code(), Some(503 | 504)),
            "a write the cut-off replica could not commit: {e} (want 503 or 504)"
        );
    }
    assert!(
        first_answer.1 < CUT_OFF_ANSWER,
        "the cut-off replica held a write for {:?}",
        first_answer.1
    );
    // Once it knows, a write is refused at once, naming etcd.
    let refused = rt.block_on(async {
        let t = Instant::now();
        let r = cut_client.create(&service("probe-cut-2", false)).await;
        (r, t.elapsed())
    });
    match &refused.0 {
        Err(e) if e.code() == Some(503) && e.to_string().contains("etcd") => {}
        r => panic!("a write to the replica cut off from etcd: {r:?} (want 503 naming etcd)"),
    }
    assert!(
        refused.1 < Duration::from_secs(2),
        "503 took {:?}",
        refused.1
    );
    // Nor does it answer for the current state, which it may not have
    // (a read at a resourceVersion it serves from its own).
    match rt.block_on(cut_client.list::<Service>("default", &ListParams::default())) {
        Err(e) if e.code() == Some(503) && e.to_string().contains("etcd") => {}
        r => panic!(
            "a list from the replica cut off from etcd: {:?} (want 503 naming etcd)",
            r.map(|l| l.items.len())
        ),
    }
    eprintln!(
        "{cut_leader} cut off from etcd: not ready after {not_ready_after:?}, a write refused (503) in {:?}",
        refused.1
    );
    // Fencing: the cut-off leader stopped its controllers before the next
    // one started its own (the logs' timestamps, one clock).
    let stepped_down = log_line_time(&lab, &cut_leader, "no longer leads")
        .expect("the cut-off leader logs that it stopped its controllers");
    let took_over = log_line_time(&lab, &after_cut, "leading the controllers")
        .expect("the new leader logs that it leads");
    assert!(
        stepped_down < took_over,
        "{cut_leader} stepped down at {stepped_down}, after {after_cut} took over at {took_over}"
    );
    std::thread::sleep(Duration::from_secs(2));
    lab.heal_from_etcd(&cut_leader).unwrap();
    let healed = Instant::now();
    let ready_again = wait_for(
        "the healed replica is ready again",
        Duration::from_secs(20),
        || {
            rt.block_on(ready(&cut_client))
                .is_ok()
                .then(|| healed.elapsed())
        },
    );
    eprintln!("{cut_leader} healed: ready again after {ready_again:?}");
    let faults_took = faults_started.elapsed();
    let acks_during = acks.load(Ordering::Relaxed) - acks_before;

    // After the faults: load for a while on a healthy control plane.
    let quiet_started = Instant::now();
    std::thread::sleep(Duration::from_secs(5));
    let acks_after = acks.load(Ordering::Relaxed) - acks_before - acks_during;
    let quiet_took = quiet_started.elapsed();

    wait_for(
        "the rolling update completes",
        Duration::from_secs(60),
        || rolled_out("b"),
    );
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        rt.block_on(w).unwrap();
    }
    rt.block_on(readiness).unwrap();
    dialer.join().unwrap();

    if let Ok(dir) = std::env::var("KEEL_CHAOS_LOGS") {
        // For a look at a run afterwards (the lab's directory goes with it).
        let _ = std::fs::create_dir_all(&dir);
        for p in &lab.state.processes {
            let _ = std::fs::copy(
                &p.log,
                std::path::Path::new(&dir).join(p.log.file_name().unwrap()),
            );
        }
    }
    // Every acknowledged write is there, read through every replica.
    let ledger = ledger.lock().unwrap();
    let mut lost = Vec::new();
    for host in lab.topology().controls() {
        let rc = replica_client(&lab, &host.role);
        if let Err(e) = rt.block_on(rc.list::<Node>("", &ListParams::default())) {
            let p = lab.process(&host.role).unwrap();
            // Its own lines only, up to where it failed (not a backtrace).
            let log = p.own_log().unwrap_or_default();
            let lines: Vec<&str> = log.lines().filter(|l| !l.starts_with(' ')).collect();
            panic!(
                "{} does not serve after the faults ({}): {e}\n{}",
                host.role,
                if keel_lab::procs::is_ours(p) {
                    "running"
                } else {
                    "exited"
                },
                lines[lines.len().saturating_sub(15)..].join("\n")
            );
        }
        let (svcs, deps) = rt.block_on(async {
            let lp = ListParams::labels("chaos=yes");
            (
                rc.list::<Service>("default", &lp).await.unwrap(),
                rc.list::<Deployment>("default", &lp).await.unwrap(),
            )
        });
        let mut have: BTreeMap<String, String> = BTreeMap::new();
        for s in &svcs.items {
            have.insert(
                format!("svc/{}", s.metadata.name),
                s.metadata.labels["v"].clone(),
            );
        }
        for d in &deps.items {
            have.insert(
                format!("deploy/{}", d.metadata.name),
                d.metadata.labels["v"].clone(),
            );
        }
        for (key, want) in &ledger.acked {
            if have.get(key) != want.as_ref() {
                lost.push(format!(
                    "{}: {key} acknowledged as {want:?}, found {:?}",
                    host.role,
                    have.get(key)
                ));
            }
        }
        // No cluster IP or node port is held twice.
        let all = rt
            .block_on(rc.list::<Service>("", &ListParams::default()))
            .unwrap();
        let mut ips = BTreeSet::new();
        let mut ports = BTreeSet::new();
        for s in &all.items {
            let ip = &s.spec.cluster_ip;
            if !ip.is_empty() && ip != "None" {
                assert!(
                    ips.insert(ip.clone()),
                    "cluster IP {ip} held twice ({})",
                    host.role
                );
            }
            for p in s.spec.ports.iter().filter_map(|p| p.node_port) {
                assert!(ports.insert(p), "node port {p} held twice ({})", host.role);
            }
        }
    }
    let during = acks_during as f64 / faults_took.as_secs_f64();
    let after = acks_after as f64 / quiet_took.as_secs_f64();
    eprintln!(
        "chaos: {} acknowledged writes checked ({} unknown outcomes left out), acknowledged-but-lost {}; writes/s during the faults {during:.0} ({faults_took:?}), after {after:.0}; failovers {failovers:?} (lease TTL {LEASE_TTL:?}); in-pod dials {} with {} failures; NotReady observations {}",
        ledger.acked.len(),
        ledger.unknown.len(),
        lost.len(),
        dials.load(Ordering::Relaxed),
        dial_failures.load(Ordering::Relaxed),
        not_ready.lock().unwrap().len(),
    );
    assert!(
        lost.is_empty(),
        "acknowledged but lost:\n{}",
        lost.join("\n")
    );
    assert!(ledger.acked.len() > 50, "too little load to mean anything");
    for f in &failovers {
        assert!(
            *f <= LEASE_TTL + FAILOVER_SLACK,
            "failover took {f:?} (lease TTL {LEASE_TTL:?})"
        );
    }
    assert_eq!(
        dial_failures.load(Ordering::Relaxed),
        0,
        "the in-pod client saw failures"
    );
    assert!(dials.load(Ordering::Relaxed) > 0);
    assert!(
        not_ready.lock().unwrap().is_empty(),
        "nodes went NotReady: {:?}",
        not_ready.lock().unwrap()
    );
    drop(rt);
}
