//! The runtime end to end in the lab: agents started with `--runtime
//! direct` (or `--runtime containerd`, against one containerd of the test's
//! own for the whole lab, each agent in its own containerd namespace) pull
//! the test HTTP server image from a docker-registry on their
//! node namespace's loopback and run a Deployment's pods; readiness reaches
//! the Endpoints (an unready pod leaves them); a gRPC readiness probe makes
//! a pod Ready while its server answers SERVING and unready after; a
//! sidecar starts before the next init container, counts for readiness and
//! is stopped once the main container completes (the pod Succeeds); a deleted pod is replaced;
//! a stopped agent leaves its containers serving and its restart adopts them
//! (same container, no restart); `keelctl logs` and `keelctl exec` reach the
//! containers through the agent; `kubectl port-forward` reaches a server
//! on a pod's loopback (two ports, several connections, a refused port's
//! error printed by kubectl); a hostNetwork pod sees its node's
//! interfaces, hostname and IP, serves on the node's address and is adopted
//! across the restart; with hostPID and hostIPC it is in the agent's PID and
//! IPC namespaces and sees the agent's process (a pod of its own does not).

use std::{
    collections::BTreeMap,
    io::{Read, Write},
    net::Ipv4Addr,
    path::{Path, PathBuf},
    time::Duration,
};

use keel_api::{Endpoints, Pod, client::ListParams};
use keel_lab::{Bins, Lab, LabGuard, Mode, Options, Spec, block_on};
use keel_sys::ns::NetNs;
use keel_tests::{
    containerd::TestContainerd,
    process::bin,
    require_root,
    runtime::{ImageSpec, TestRegistry, build_layout},
};
use serde_json::json;

const PORT: u16 = 5000;

fn http_get_in(netns: &Path, addr: &str, path: &str) -> Option<String> {
    let addr = addr.to_string();
    let path = path.to_string();
    NetNs::open(netns)
        .ok()?
        .run(move || {
            let mut s =
                std::net::TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(3))
                    .ok()?;
            s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
            write!(
                s,
                "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            .ok()?;
            let mut r = String::new();
            s.read_to_string(&mut r).ok()?;
            Some(r)
        })
        .ok()?
}

/// Like `wait_for`, but on timeout shows the pods and the agents' log tails.
fn wait<T>(lab: &Lab, what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        if std::time::Instant::now() > deadline {
            let c = lab.client().unwrap();
            let pods = block_on(c.list::<Pod>("default", &ListParams::default()))
                .map(|l| l.items)
                .unwrap_or_default();
            let mut dump = String::new();
            for p in pods {
                dump.push_str(&format!(
                    "\n{} on {}: {}",
                    p.metadata.name,
                    p.spec.node_name,
                    serde_json::to_string(&p.status).unwrap()
                ));
            }
            for n in &lab.topology().nodes {
                let log = std::fs::read_to_string(lab.state.dir.join(format!("{}.log", n.role)))
                    .unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(15).collect();
                dump.push_str(&format!("\n--- {}:", n.role));
                for l in tail.into_iter().rev() {
                    dump.push_str(&format!("\n{l}"));
                }
            }
            panic!("timed out after {secs}s waiting for {what}:{dump}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn ready_pods(lab: &Lab, label: &str) -> Vec<Pod> {
    let c = lab.client().unwrap();
    block_on(c.list::<Pod>("default", &ListParams::labels(label)))
        .map(|l| l.items.into_iter().filter(|p| p.is_ready()).collect())
        .unwrap_or_default()
}

fn endpoints(lab: &Lab, name: &str) -> (Vec<String>, Vec<String>) {
    let c = lab.client().unwrap();
    let Ok(ep) = block_on(c.get::<Endpoints>("default", name)) else {
        return (vec![], vec![]);
    };
    let mut ready = Vec::new();
    let mut not_ready = Vec::new();
    for s in &ep.subsets {
        ready.extend(s.addresses.iter().map(|a| a.ip.clone()));
        not_ready.extend(s.not_ready_addresses.iter().map(|a| a.ip.clone()));
    }
    (ready, not_ready)
}

fn keelctl(lab: &str, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(bin("keelctl"))
        .arg("--lab")
        .arg(lab)
        .args(args)
        .output()
        .expect("keelctl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn deployment_runs_ready_replaced_and_survives_its_agent() {
    deployment_runs_ready_replaced_and_survives_its_agent_on("direct");
}

#[test]
fn deployment_runs_ready_replaced_and_survives_its_agent_with_containerd() {
    deployment_runs_ready_replaced_and_survives_its_agent_on("containerd");
}

fn deployment_runs_ready_replaced_and_survives_its_agent_on(runtime: &str) {
    require_root();
    // Dropped after the lab: its tasks go last.
    let containerd = (runtime == "containerd").then(TestContainerd::start);
    let name = format!("t{}{}", &runtime[..2], std::process::id() % 100_000);
    let spec = Spec {
        name: name.clone(),
        nodes: 2,
        mode: Mode::Route,
        segments: 1,
    };
    let opts = Options {
        agent_args: [
            "--runtime".into(),
            runtime.to_string(),
            "--insecure-registry".into(),
            format!("127.0.0.1:{PORT}"),
            // hostNetwork is a node-level privilege.
            "--allow-privileged".into(),
        ]
        .into_iter()
        .chain(containerd.iter().flat_map(|c| {
            [
                "--containerd-socket".to_string(),
                c.socket().display().to_string(),
                "--containerd-runc-root".to_string(),
                c.runc_root().display().to_string(),
            ]
        }))
        .collect(),
        ..Default::default()
    };
    let bins = Bins::beside_current_exe().expect("binaries");
    let mut guard = LabGuard(Lab::up(&spec, &bins, &opts).expect("lab up"));
    let nodes: Vec<(String, PathBuf)> = guard
        .0
        .topology()
        .nodes
        .iter()
        .map(|n| (n.role.clone(), NetNs::named_path(&n.netns)))
        .collect();

    // The same images on every node's loopback registry.
    let images = tempfile::Builder::new()
        .prefix("keel-t-images-")
        .tempdir()
        .unwrap();
    let layout = build_layout(&ImageSpec::testbin("v1"), images.path());
    let first = TestRegistry::start_at(&nodes[0].1, PORT, None);
    let image = first.push_at(&nodes[0].1, &layout, "v1", "keel/testbin");
    let _others: Vec<TestRegistry> = nodes[1..]
        .iter()
        .map(|(_, ns)| TestRegistry::start_at(ns, PORT, Some(first.data_dir())))
        .collect();

    let c = guard.0.client().unwrap();
    let deploy: keel_api::Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "terminationGracePeriodSeconds": 5,
                    "containers": [{
                        "name": "web", "image": image, "imagePullPolicy": "IfNotPresent",
                        "ports": [{"containerPort": 8080}],
                        "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 1}
                    }]
                }
            }
        }
    }))
    .unwrap();
    block_on(c.create(&deploy)).expect("create deployment");
    let svc: keel_api::Service = serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}
    }))
    .unwrap();
    block_on(c.create(&svc)).expect("create service");

    let pods = wait(&guard.0, "3 web pods Running and Ready", 120, || {
        let p = ready_pods(&guard.0, "app=web");
        (p.len() == 3).then_some(p)
    });
    let by_node: BTreeMap<String, usize> = pods.iter().fold(BTreeMap::new(), |mut m, p| {
        *m.entry(p.spec.node_name.clone()).or_default() += 1;
        m
    });
    assert_eq!(by_node.len(), 2, "spread over both nodes: {by_node:?}");
    // Every reconciler runs on the driver and says how it is doing; the
    // pods' workers have made passes.
    for (node, _) in &nodes {
        let sock = guard.0.state.dir.join(node).join("agent.sock");
        let r: serde_json::Value = serde_json::from_str(
            &keel_tests::lb_node::agent_get(&sock, "/reconcilers").expect("GET /reconcilers"),
        )
        .unwrap();
        for d in ["pods", "net"] {
            let st = &r["drivers"][d];
            assert!(st["syncs"].as_u64() > Some(0), "{node}: {d}: {st}");
            assert!(st["fullPasses"].as_u64() > Some(0), "{node}: {d}: {st}");
            assert!(
                st["failing"].as_object().is_some_and(|f| f.is_empty()),
                "{node}: {d}: {st}"
            );
        }
        if by_node.contains_key(node) {
            assert!(r["podWakes"]["syncs"].as_u64() > Some(0), "{node}: {r}");
        }
    }
    for p in &pods {
        let s = &p.status.container_statuses[0];
        assert!(
            s.ready && s.state.running.is_some() && s.restart_count == 0,
            "{s:?}"
        );
    }
    wait(&guard.0, "3 ready endpoints", 30, || {
        (endpoints(&guard.0, "web").0.len() == 3).then_some(())
    });

    // Each pod serves from another pod's network namespace, by pod IP.
    let from = NetNs::named_path(&guard.0.pod_netns(&pods[0]).unwrap());
    for p in &pods {
        let ip: Ipv4Addr = p.status.pod_ip.parse().unwrap();
        let body = wait(&guard.0, "HTTP to a pod", 20, || {
            http_get_in(&from, &format!("{ip}:8080"), "/")
        });
        assert!(body.ends_with(&format!("{}\n", p.metadata.name)), "{body}");
    }

    // keelctl logs through keel-control, which asks the agent's HTTPS
    // port (advertised on the Node); exec through the pod's agent.
    let node: keel_api::Node =
        block_on(guard.0.client().unwrap().get("", &pods[1].spec.node_name)).unwrap();
    let port = node
        .status
        .daemon_endpoints
        .as_ref()
        .and_then(|d| d.kubelet_endpoint.as_ref())
        .map(|e| e.port);
    assert_eq!(port, Some(10250), "{:?}", node.status);
    let (code, out, err) = keelctl(&name, &["logs", &pods[1].metadata.name]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("listening on :8080"), "{out}");
    let (code, out, err) = keelctl(
        &name,
        &[
            "logs",
            "--tail",
            "1",
            "--timestamps",
            &pods[1].metadata.name,
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(
        out.starts_with("20") && out.contains('T') && out.contains("Z "),
        "{out}"
    );
    let (code, out, err) = keelctl(
        &name,
        &[
            "exec",
            &pods[1].metadata.name,
            "--",
            "/bin/sh",
            "-c",
            "hostname; exit 7",
        ],
    );
    assert_eq!(
        (code, out.as_str()),
        (7, format!("{}\n", pods[1].metadata.name).as_str()),
        "{err}"
    );

    // Interactive exec through keel-control to the agent's exec stream:
    // kubectl -i and -it, keelctl -it.
    interactive_exec(&guard.0, &name, &pods[1].metadata.name);

    // kubectl port-forward through keel-control to the pod's port on its
    // node, to a server only on the pod's loopback.
    port_forward(&guard.0, &name, &image, &nodes[1].0);

    // logs -f prints what is there and keeps the stream open.
    let mut follow = std::process::Command::new(bin("keelctl"))
        .args(["--lab", &name, "logs", "-f", &pods[1].metadata.name])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut out = follow.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        let n = out.read(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    });
    wait(&guard.0, "logs -f output", 20, || {
        reader.is_finished().then_some(())
    });
    let text = reader.join().unwrap();
    assert!(text.contains("listening on :8080"), "{text:?}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        follow.try_wait().unwrap().is_none(),
        "logs -f keeps following"
    );
    keel_tests::process::stop_child(&mut follow, Duration::from_secs(1));

    // An unready pod leaves the endpoints.
    let flaky: Pod = serde_json::from_value(json!({
        "metadata": {"name": "flaky", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "nodeName": nodes[1].0,
            "containers": [{
                "name": "web", "image": image, "imagePullPolicy": "IfNotPresent",
                "args": ["http-serve", "--port", "8080", "--healthy-for", "6"],
                "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080},
                                   "periodSeconds": 1, "failureThreshold": 1}
            }]
        }
    }))
    .unwrap();
    block_on(c.create(&flaky)).unwrap();
    let flaky_ip = wait(&guard.0, "flaky in the endpoints", 60, || {
        let p: Pod = block_on(c.get("default", "flaky")).ok()?;
        let ip = p.status.pod_ip.clone();
        (p.is_ready() && endpoints(&guard.0, "web").0.contains(&ip)).then_some(ip)
    });
    wait(&guard.0, "flaky to leave the ready endpoints", 60, || {
        let (ready, not_ready) = endpoints(&guard.0, "web");
        (!ready.contains(&flaky_ip) && not_ready.contains(&flaky_ip)).then_some(())
    });
    block_on(c.delete::<Pod>("default", "flaky")).unwrap();

    // A gRPC readiness probe (grpc.health.v1.Health/Check on the pod IP):
    // Ready while the server answers SERVING, unready once NOT_SERVING.
    let grpc: Pod = serde_json::from_value(json!({
        "metadata": {"name": "grpc", "namespace": "default"},
        "spec": {
            "nodeName": nodes[1].0,
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "health", "image": image, "imagePullPolicy": "IfNotPresent",
                "args": ["grpc-health-serve", "--port", "50051", "--serving-for", "8"],
                "readinessProbe": {"grpc": {"port": 50051}, "periodSeconds": 1, "failureThreshold": 1}
            }]
        }
    }))
    .unwrap();
    block_on(c.create(&grpc)).unwrap();
    wait(&guard.0, "the gRPC-probed pod Ready", 60, || {
        block_on(c.get::<Pod>("default", "grpc"))
            .ok()
            .filter(Pod::is_ready)
    });
    wait(
        &guard.0,
        "the gRPC-probed pod unready (NOT_SERVING)",
        30,
        || {
            block_on(c.get::<Pod>("default", "grpc"))
                .ok()
                .filter(|p| !p.is_ready() && p.status.container_statuses[0].state.running.is_some())
        },
    );
    block_on(c.delete::<Pod>("default", "grpc")).unwrap();

    // A sidecar (an init container with restartPolicy Always): started
    // first, the next init container starts only once its startup probe has
    // passed (it dials it over the pod's loopback, and would fail the
    // pod otherwise); it counts for readiness, does not hold the pod's
    // completion, and is stopped once the main container has exited.
    let sidecar: Pod = serde_json::from_value(json!({
        "metadata": {"name": "sidecar", "namespace": "default"},
        "spec": {
            "nodeName": nodes[1].0,
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 2,
            "initContainers": [
                {"name": "proxy", "image": image, "imagePullPolicy": "IfNotPresent",
                 "restartPolicy": "Always",
                 "args": ["http-serve", "--port", "8081"],
                 "startupProbe": {"tcpSocket": {"port": 8081}, "periodSeconds": 1},
                 "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8081}, "periodSeconds": 1}},
                {"name": "setup", "image": image, "imagePullPolicy": "IfNotPresent",
                 "args": ["connect", "127.0.0.1:8081"]}
            ],
            "containers": [{
                "name": "job", "image": image, "imagePullPolicy": "IfNotPresent",
                "command": ["sh", "-c", "sleep 5"]
            }]
        }
    }))
    .unwrap();
    block_on(c.create(&sidecar)).unwrap();
    let running = wait(&guard.0, "the pod with a sidecar Ready", 60, || {
        block_on(c.get::<Pod>("default", "sidecar"))
            .ok()
            .filter(Pod::is_ready)
    });
    let init = &running.status.init_container_statuses;
    assert!(
        init[0].ready && init[0].state.running.is_some(),
        "the sidecar runs and is ready: {init:?}"
    );
    assert_eq!(
        init[1].state.terminated.as_ref().map(|t| t.exit_code),
        Some(0),
        "setup reached the sidecar: {init:?}"
    );
    let done = wait(&guard.0, "the pod with a sidecar Succeeded", 60, || {
        block_on(c.get::<Pod>("default", "sidecar"))
            .ok()
            .filter(|p| {
                p.status.phase == Some(keel_api::pod::PodPhase::Succeeded)
                    && p.status.init_container_statuses[0].state.running.is_none()
            })
    });
    assert_eq!(
        done.status.container_statuses[0]
            .state
            .terminated
            .as_ref()
            .map(|t| t.exit_code),
        Some(0)
    );
    assert_eq!(done.status.init_container_statuses[0].restart_count, 0);
    block_on(c.delete::<Pod>("default", "sidecar")).unwrap();

    // Graceful termination keeps the pod's network: a server that lingers
    // 3 s after SIGTERM still answers by pod IP while it stops.
    let linger: Pod = serde_json::from_value(json!({
        "metadata": {"name": "linger", "namespace": "default"},
        "spec": {
            "nodeName": nodes[1].0,
            "terminationGracePeriodSeconds": 10,
            "containers": [{
                "name": "web", "image": image, "imagePullPolicy": "IfNotPresent",
                "args": ["http-serve", "--port", "8080", "--linger", "3"],
                "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 1}
            }]
        }
    }))
    .unwrap();
    block_on(c.create(&linger)).unwrap();
    let linger_ip = wait(&guard.0, "linger Ready", 60, || {
        let p: Pod = block_on(c.get("default", "linger")).ok()?;
        p.is_ready().then_some(p.status.pod_ip)
    });
    let client_ns = {
        let p = ready_pods(&guard.0, "app=web")
            .into_iter()
            .find(|p| p.spec.node_name != nodes[1].0)
            .expect("a web pod on the other node");
        NetNs::named_path(&guard.0.pod_netns(&p).unwrap())
    };
    block_on(c.delete::<Pod>("default", "linger")).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        http_get_in(&client_ns, &format!("{linger_ip}:8080"), "/")
            .is_some_and(|b| b.starts_with("HTTP/1.1 200")),
        "a terminating pod keeps its network through its grace period"
    );

    // A deleted pod is replaced; its containers go.
    let victim = pods[0].clone();
    block_on(c.delete::<Pod>("default", &victim.metadata.name)).unwrap();
    wait(&guard.0, "a replacement Ready", 90, || {
        let p = ready_pods(&guard.0, "app=web");
        (p.len() == 3 && p.iter().all(|p| p.metadata.name != victim.metadata.name)).then_some(())
    });
    wait(&guard.0, "the deleted pod's sandbox gone", 60, || {
        (!Path::new(&NetNs::named_path(&guard.0.pod_netns(&victim).unwrap())).exists())
            .then_some(())
    });

    // Stop a node's agent: its containers keep serving; a new agent adopts
    // them without restarting anything.
    let pods = ready_pods(&guard.0, "app=web");
    let node = pods[0].spec.node_name.clone();
    let mine: Vec<Pod> = pods
        .iter()
        .filter(|p| p.spec.node_name == node)
        .cloned()
        .collect();
    // Dial them from a pod on another node.
    let client_pod = pods
        .iter()
        .find(|p| p.spec.node_name != node)
        .expect("a pod on the other node");
    let from = NetNs::named_path(&guard.0.pod_netns(client_pod).unwrap());
    let hostnet = host_network(&guard.0, &c, &image, &node);
    guard.0.stop_agent(&node).unwrap();
    for p in &mine {
        assert!(
            http_get_in(&from, &format!("{}:8080", p.status.pod_ip), "/healthz")
                .is_some_and(|b| b.starts_with("HTTP/1.1 200")),
            "{} serves while its agent is down",
            p.metadata.name
        );
    }
    guard.0.start_agent(&node).unwrap();
    // While the new agent adopts them, the pods never leave the endpoints
    // (their readiness is carried over, not re-learned from scratch).
    for _ in 0..30 {
        let (ready, _) = endpoints(&guard.0, "web");
        for p in &mine {
            assert!(
                ready.contains(&p.status.pod_ip),
                "{} left the endpoints during the agent restart: {ready:?}",
                p.metadata.name
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for p in &mine {
        let now: Pod = wait(&guard.0, "the pod after the agent restart", 30, || {
            block_on(c.get::<Pod>("default", &p.metadata.name)).ok()
        });
        let (a, b) = (
            &p.status.container_statuses[0],
            &now.status.container_statuses[0],
        );
        assert_eq!(a.container_id, b.container_id, "the same container");
        assert_eq!(b.restart_count, 0);
        assert!(now.is_ready());
    }
    // The hostNetwork pod is adopted too: same container, still Ready,
    // still the node's IP.
    let now: Pod = wait(
        &guard.0,
        "the hostNetwork pod after the restart",
        30,
        || {
            block_on(c.get::<Pod>("default", "hostnet"))
                .ok()
                .filter(|p| p.is_ready())
        },
    );
    assert_eq!(
        now.status.container_statuses[0].container_id,
        hostnet.status.container_statuses[0].container_id
    );
    assert_eq!(now.status.container_statuses[0].restart_count, 0);
    assert_eq!(now.status.pod_ip, hostnet.status.pod_ip);
    block_on(c.delete::<Pod>("default", "hostnet")).unwrap();
    let ext = NetNs::named_path(&guard.0.topology().ext.netns);
    wait(
        &guard.0,
        "the deleted hostNetwork pod to stop serving",
        60,
        || {
            http_get_in(&ext, &format!("{}:{HOST_NET_PORT}", now.status.pod_ip), "/")
                .is_none()
                .then_some(())
        },
    );

    // A pod with a finalizer: a DELETE marks it, its agent stops it as a
    // deleted pod, and it goes once the finalizer is removed.
    let held: Pod = serde_json::from_value(json!({
        "metadata": {"name": "held", "namespace": "default", "labels": {"app": "held"},
                     "finalizers": ["keel.test/hold"]},
        "spec": {
            "nodeName": nodes[0].0,
            "terminationGracePeriodSeconds": 2,
            "containers": [{
                "name": "web", "image": image, "imagePullPolicy": "IfNotPresent",
                "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 1}
            }]
        }
    }))
    .unwrap();
    block_on(c.create(&held)).expect("create the held pod");
    let held = wait(&guard.0, "the held pod Ready", 60, || {
        block_on(c.get::<Pod>("default", "held"))
            .ok()
            .filter(|p| p.is_ready())
    });
    let addr = format!("{}:8080", held.status.pod_ip);
    assert!(http_get_in(&nodes[0].1, &addr, "/healthz").is_some());
    block_on(c.delete::<Pod>("default", "held")).unwrap();
    let marked = block_on(c.get::<Pod>("default", "held")).expect("kept for its finalizer");
    assert!(marked.metadata.deletion_timestamp.is_some());
    wait(&guard.0, "the agent to stop the deleted pod", 60, || {
        http_get_in(&nodes[0].1, &addr, "/healthz")
            .is_none()
            .then_some(())
    });
    let mut release = block_on(c.get::<Pod>("default", "held")).expect("still held");
    release.metadata.finalizers.clear();
    block_on(c.update(&release)).expect("remove the finalizer");
    wait(&guard.0, "the released pod to go", 20, || {
        block_on(c.get::<Pod>("default", "held")).err().map(drop)
    });

    // A volume source keel has no driver for: the pod is accepted and kept,
    // and its agent does not start the container without its storage.
    let claims: Pod = serde_json::from_value(json!({
        "metadata": {"name": "claims", "namespace": "default"},
        "spec": {
            "nodeName": nodes[0].0,
            "containers": [{"name": "web", "image": image, "imagePullPolicy": "IfNotPresent",
                            "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "db"}}]
        }
    }))
    .unwrap();
    block_on(c.create(&claims)).expect("a pod with a persistentVolumeClaim is accepted");
    let refused = wait(&guard.0, "the claims pod's container refused", 30, || {
        let p = block_on(c.get::<Pod>("default", "claims")).ok()?;
        let w = p.status.container_statuses.first()?.state.waiting.clone()?;
        (w.reason == "CreateContainerConfigError").then_some(w.message)
    });
    assert!(
        refused.contains("spec.volumes[0].persistentVolumeClaim"),
        "{refused}"
    );
    block_on(c.delete::<Pod>("default", "claims")).unwrap();
}

/// The port the hostNetwork pod serves on (on its node's own address).
const HOST_NET_PORT: u16 = 18081;

/// Interface names in a `/proc/net/dev` listing.
/// Runs `program args` under `script` (a real pseudo-terminal, sized
/// 77x22 before it starts and resized to 100x40 two seconds in), types
/// `hello` after four, and returns (exit code, everything the terminal
/// showed). `script` runs in the lab's control namespace (for kubectl) or
/// here (keelctl, which enters the lab itself).
fn under_terminal(cmd: std::process::Command, program_line: &str) -> (i32, String) {
    let mut cmd = cmd;
    let line = format!(
        "stty cols 77 rows 22; (sleep 2; stty -F /dev/tty cols 100 rows 40) & {program_line}"
    );
    let mut child = cmd
        .args(["-qec", &line, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("script (util-linux) on PATH");
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = out.read_to_end(&mut text);
        String::from_utf8_lossy(&text).into_owned()
    });
    std::thread::sleep(Duration::from_secs(4));
    let mut input = child.stdin.take().unwrap();
    input.write_all(b"hello\n").unwrap();
    input.flush().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code().unwrap_or(-1);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break -1;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    drop(input);
    let mut err = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut err);
    let text = reader.join().unwrap();
    (code, format!("{text}{err}"))
}

/// `kubectl exec -i` with stdin piped, `kubectl exec -it` and `keelctl
/// exec -it` under a real terminal, against a running pod.
fn interactive_exec(lab: &Lab, name: &str, pod: &str) {
    let kubeconfig = lab.state.dir.join("exec.kubeconfig");
    let (code, _, err) = keelctl(name, &["kubeconfig", "-o", kubeconfig.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let kubectl_line = format!(
        "kubectl --kubeconfig {} --cache-dir {} --request-timeout=30s",
        kubeconfig.display(),
        lab.state.dir.join("kube-cache").display()
    );

    // -i: stdin piped, its end delivered as EOF (the second read fails).
    let mut child = lab
        .command("control", "sh")
        .unwrap()
        .args([
            "-c",
            &format!(
                "printf 'hello\\n' | {kubectl_line} exec -i {pod} -- sh -c 'read x; echo got:$x; read y || echo eof; exit 3'"
            ),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let (o, e) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(3), "{o}{e}");
    assert_eq!(o, "got:hello\neof\n", "{e}");

    // -it under a terminal: the container's own pts, the size kubectl
    // sent first, then the resize, what was typed, the exit code.
    let inner = "tty; stty size; read x; stty size; echo got:$x; exit 4";
    let check = |who: &str, code: i32, text: &str| {
        assert_eq!(code, 4, "{who}: {text}");
        assert!(text.contains("/dev/pts/"), "{who}: {text}");
        assert!(text.contains("22 77"), "{who}: {text}");
        assert!(text.contains("40 100"), "{who}: {text}");
        assert!(text.contains("got:hello"), "{who}: {text}");
    };
    let (code, text) = under_terminal(
        lab.command("control", "script").unwrap(),
        &format!("{kubectl_line} exec -it {pod} -- sh -c '{inner}'"),
    );
    check("kubectl", code, &text);
    let (code, text) = under_terminal(
        std::process::Command::new("script"),
        &format!(
            "{} --lab {name} exec -it {pod} -- sh -c '{inner}'; rc=$?; stty -a | grep -q -- -icanon && echo RAW-LEFT; exit $rc",
            bin("keelctl").display()
        ),
    );
    check("keelctl", code, &text);
    // keelctl gave the terminal back as it found it.
    assert!(!text.contains("RAW-LEFT"), "{text}");
}

fn interfaces(dev: &str) -> std::collections::BTreeSet<String> {
    dev.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(name, _)| name.trim().to_string())
        .filter(|n| !n.is_empty() && !n.contains(' ') && !n.contains('|'))
        .collect()
}

/// On `node` (whose agent allows privileged pods): a hostNetwork pod sees
/// the node's interfaces and hostname, has the node's IP and serves on it
/// (its readiness probe dials the node IP; `ext` reaches it). It is left
/// running (Ready) for the agent restart that follows; returned. (hostPort
/// is in lb_lab: this lab runs without keel's load balancer.)
fn host_network(lab: &Lab, c: &keel_api::client::Client, image: &str, node: &str) -> Pod {
    let host = lab
        .topology()
        .nodes
        .iter()
        .find(|n| n.role == node)
        .expect("the node")
        .clone();
    let ext = NetNs::named_path(&lab.topology().ext.netns);
    let hostnet: Pod = serde_json::from_value(json!({
        "metadata": {"name": "hostnet", "namespace": "default", "labels": {"app": "hostnet"}},
        "spec": {
            "nodeName": node,
            "hostNetwork": true,
            "hostPID": true,
            "hostIPC": true,
            "terminationGracePeriodSeconds": 2,
            "containers": [{
                "name": "web", "image": image, "imagePullPolicy": "IfNotPresent",
                "args": ["http-serve", "--port", HOST_NET_PORT.to_string()],
                "ports": [{"containerPort": HOST_NET_PORT}],
                "readinessProbe": {"httpGet": {"path": "/healthz", "port": HOST_NET_PORT}, "periodSeconds": 1}
            }]
        }
    }))
    .unwrap();
    block_on(c.create(&hostnet)).expect("create the hostNetwork pod");
    let hostnet = wait(lab, "the hostNetwork pod Ready", 60, || {
        block_on(c.get::<Pod>("default", "hostnet"))
            .ok()
            .filter(|p| p.is_ready())
    });
    assert_eq!(
        (
            hostnet.status.pod_ip.as_str(),
            hostnet.status.host_ip.as_str()
        ),
        (host.ip.to_string().as_str(), host.ip.to_string().as_str()),
        "a hostNetwork pod's IP is its node's"
    );
    // Its container lists the node's interfaces (read at the same moment
    // in the node's namespace; retried, pods come and go).
    let node_ns = NetNs::open(NetNs::named_path(&host.netns)).unwrap();
    let mut seen = Vec::new();
    let same = (0..5).any(|_| {
        let (code, out, err) = keelctl(
            &lab.topology().spec.name,
            &["exec", "hostnet", "--", "cat", "/proc/net/dev"],
        );
        assert_eq!(code, 0, "{err}");
        let mine = node_ns
            .run(|| std::fs::read_to_string("/proc/thread-self/net/dev"))
            .unwrap()
            .unwrap();
        let (a, b) = (interfaces(&out), interfaces(&mine));
        seen.push((a.clone(), b.clone()));
        a == b && a.len() > 2
    });
    assert!(same, "the container's interfaces are the node's: {seen:?}");
    // The node's hostname (its UTS namespace is the node's).
    let (code, out, err) = keelctl(
        &lab.topology().spec.name,
        &["exec", "hostnet", "--", "hostname"],
    );
    assert_eq!(code, 0, "{err}");
    let node_hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(out.trim(), node_hostname.trim());
    // hostPID and hostIPC: the agent's own PID and IPC namespaces. The
    // container sees the agent's process; a pod of its own does not.
    let agent = lab
        .state
        .processes
        .iter()
        .find(|p| p.role == node)
        .expect("the node's agent")
        .pid;
    let lab_name = lab.topology().spec.name.clone();
    let exec = |pod: &str, cmd: &[&str]| {
        let (code, out, err) = keelctl(&lab_name, &[&["exec", pod, "--"][..], cmd].concat());
        assert_eq!(code, 0, "{pod}: {cmd:?}: {err}");
        out.trim().to_string()
    };
    let agent_proc = format!("/proc/{agent}");
    for ns in ["pid", "ipc"] {
        let node_ns = std::fs::read_link(format!("{agent_proc}/ns/{ns}")).unwrap();
        let node_ns = node_ns.display().to_string();
        let cmd = format!("readlink /proc/self/ns/{ns}");
        assert_eq!(exec("hostnet", &["sh", "-c", &cmd]), node_ns, "{ns}");
        let own = ready_pods(lab, "app=web")[0].metadata.name.clone();
        assert_ne!(exec(&own, &["sh", "-c", &cmd]), node_ns, "{own}: {ns}");
    }
    let see_agent = format!("cat {agent_proc}/cmdline 2>/dev/null; true");
    assert!(
        exec("hostnet", &["sh", "-c", &see_agent]).contains("keel-agent"),
        "a hostPID container sees the agent's process"
    );
    let own = ready_pods(lab, "app=web")[0].metadata.name.clone();
    assert!(
        !exec(&own, &["sh", "-c", &see_agent]).contains("keel-agent"),
        "a pod of its own does not"
    );
    // A Service selecting it has the node's IP as its endpoint.
    let svc: keel_api::Service = serde_json::from_value(json!({
        "metadata": {"name": "hostnet", "namespace": "default"},
        "spec": {"selector": {"app": "hostnet"}, "ports": [{"port": 80, "targetPort": HOST_NET_PORT}]}
    }))
    .unwrap();
    block_on(c.create(&svc)).expect("create the hostnet service");
    wait(
        lab,
        "the node IP as the hostnet Service's endpoint",
        30,
        || (endpoints(lab, "hostnet").0 == [host.ip.to_string()]).then_some(()),
    );
    // It serves on the node's own address, reached from outside.
    let body = wait(lab, "the hostNetwork pod from ext", 20, || {
        http_get_in(&ext, &format!("{}:{HOST_NET_PORT}", host.ip), "/")
    });
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");

    hostnet
}

/// kubectl's port-forward, ended by PID when dropped.
struct Forward {
    child: std::process::Child,
    stdout: std::sync::Arc<std::sync::Mutex<String>>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Forward {
    /// `kubectl port-forward pod/POD PORTS…` in the lab's control
    /// namespace, its output collected as it comes; without `websockets`,
    /// kubectl's own switch makes it upgrade to SPDY/3.1 directly (what
    /// it falls back to when the WebSocket fails).
    fn start(lab: &Lab, kubeconfig: &Path, pod: &str, ports: &[&str], websockets: bool) -> Self {
        let mut cmd = lab.command("control", "kubectl").unwrap();
        cmd.env(
            "KUBECTL_PORT_FORWARD_WEBSOCKETS",
            if websockets { "true" } else { "false" },
        )
        .args(["--kubeconfig", kubeconfig.to_str().unwrap()])
        .args([
            "--cache-dir",
            lab.state.dir.join("kube-cache").to_str().unwrap(),
        ])
        .args(["port-forward", &format!("pod/{pod}")])
        .args(ports);
        Self::spawn(cmd)
    }

    /// Runs `cmd` (output piped and collected).
    fn spawn(mut cmd: std::process::Command) -> Self {
        let mut child = cmd
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the forwarder starts");
        let collect = |mut r: Box<dyn Read + Send>| {
            let text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
            let t = text.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = r.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    t.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
            text
        };
        let stdout = collect(Box::new(child.stdout.take().unwrap()));
        let stderr = collect(Box::new(child.stderr.take().unwrap()));
        Self {
            child,
            stdout,
            stderr,
        }
    }

    fn output(&self) -> String {
        format!(
            "stdout: {}\nstderr: {}",
            self.stdout.lock().unwrap(),
            self.stderr.lock().unwrap()
        )
    }

    /// Waits until kubectl says it forwards each local port.
    fn wait_listening(&mut self, lab: &Lab, locals: &[u16]) {
        wait(lab, "kubectl port-forward listening", 30, || {
            if let Some(s) = self.child.try_wait().unwrap() {
                panic!("kubectl port-forward exited ({s}): {}", self.output());
            }
            let out = self.stdout.lock().unwrap().clone();
            locals
                .iter()
                .all(|p| out.contains(&format!("Forwarding from 127.0.0.1:{p} ->")))
                .then_some(())
        });
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        keel_tests::process::stop_child(&mut self.child, Duration::from_secs(2));
    }
}

/// One connection to `127.0.0.1:local` (in the calling thread's
/// namespace): the server's greeting (what it was reached at, which must
/// be `remote`, and from where), then each line echoed, then the
/// client's half-close answered by the server's close.
fn converse(local: u16, remote: &str, lines: &[String]) -> Result<(), String> {
    use std::io::{BufRead, BufReader};
    let conn = std::net::TcpStream::connect(("127.0.0.1", local))
        .map_err(|e| format!("connect 127.0.0.1:{local}: {e}"))?;
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut w = conn.try_clone().unwrap();
    let mut r = BufReader::new(conn);
    let mut greeting = String::new();
    r.read_line(&mut greeting)
        .map_err(|e| format!("{local}: greeting: {e}"))?;
    // The server saw the connection on its loopback, from its loopback.
    if !greeting.starts_with(&format!("{remote} client=127.0.0.1:")) {
        return Err(format!("{local}: greeting {greeting:?}"));
    }
    for l in lines {
        w.write_all(format!("{l}\n").as_bytes())
            .map_err(|e| format!("{local}: write: {e}"))?;
        let mut echo = String::new();
        r.read_line(&mut echo)
            .map_err(|e| format!("{local}: echo: {e}"))?;
        if echo != format!("{l}\n") {
            return Err(format!(
                "{local}: echo of {} bytes came back as {} bytes",
                l.len() + 1,
                echo.len()
            ));
        }
    }
    w.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    r.read_to_end(&mut rest)
        .map_err(|e| format!("{local}: after the half-close: {e}"))?;
    if !rest.is_empty() {
        return Err(format!(
            "{local}: {} bytes after the half-close",
            rest.len()
        ));
    }
    Ok(())
}

/// `kubectl port-forward` to a pod whose server listens only on its
/// 127.0.0.1 (`keel-testbin id-serve` on 9000 and 9001): one kubectl
/// forwards both ports; connections one after another, a 256 KiB line,
/// connections on both ports at once, each checked both ways; the same
/// over kubectl's SPDY fallback and through `keelctl port-forward`; then a
/// port nobody listens on, whose error the node words and kubectl prints.
fn port_forward(lab: &Lab, name: &str, image: &str, node: &str) {
    let c = lab.client().unwrap();
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "pf", "namespace": "default"},
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "id", "image": image, "imagePullPolicy": "IfNotPresent",
                "args": ["id-serve", "127.0.0.1:9000", "127.0.0.1:9001"]
            }]
        }
    }))
    .unwrap();
    block_on(c.create(&pod)).unwrap();
    wait(lab, "pod pf running", 60, || {
        block_on(c.get::<Pod>("default", "pf")).ok().filter(|p| {
            p.status
                .container_statuses
                .first()
                .is_some_and(|s| s.state.running.is_some())
        })
    });
    let kubeconfig = lab.state.dir.join("pf.kubeconfig");
    let (code, _, err) = keelctl(name, &["kubeconfig", "-o", kubeconfig.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let control = NetNs::open(NetNs::named_path(&lab.topology().control.netns)).unwrap();

    let mut fwd = Forward::start(lab, &kubeconfig, "pf", &["19000:9000", "19001:9001"], true);
    fwd.wait_listening(lab, &[19000, 19001]);
    let big = "x".repeat(256 * 1024);
    let result = control
        .run(|| -> Result<(), String> {
            for i in 0..3 {
                converse(
                    19000,
                    "127.0.0.1:9000",
                    &[format!("hello {i}"), "again".into()],
                )?;
            }
            converse(19001, "127.0.0.1:9001", &[big.clone(), "after".into()])?;
            // Four at once, on both ports.
            std::thread::scope(|s| {
                let handles: Vec<_> = (0..4)
                    .map(|i| {
                        s.spawn(move || {
                            let (local, remote) = if i % 2 == 0 {
                                (19000, "127.0.0.1:9000")
                            } else {
                                (19001, "127.0.0.1:9001")
                            };
                            let lines: Vec<String> =
                                (0..20).map(|k| format!("conn {i} line {k}")).collect();
                            converse(local, remote, &lines)
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .try_for_each(|h| h.join().expect("no panic"))
            })
        })
        .unwrap();
    if let Err(e) = result {
        panic!("{e}\nkubectl: {}", fwd.output());
    }
    assert!(
        fwd.child.try_wait().unwrap().is_none(),
        "kubectl still forwarding: {}",
        fwd.output()
    );
    drop(fwd);

    // kubectl's fallback: a plain `Upgrade: SPDY/3.1`.
    let mut spdy = Forward::start(lab, &kubeconfig, "pf", &["19003:9000"], false);
    spdy.wait_listening(lab, &[19003]);
    let result = control
        .run(|| {
            converse(19003, "127.0.0.1:9000", &["over spdy".into()])?;
            converse(19003, "127.0.0.1:9000", std::slice::from_ref(&big))
        })
        .unwrap();
    if let Err(e) = result {
        panic!("{e}\nkubectl: {}", spdy.output());
    }
    drop(spdy);

    // keelctl port-forward, through keel's own protocol: a fixed and a
    // chosen local port.
    let mut cmd = lab
        .command("control", bin("keelctl").to_str().unwrap())
        .unwrap();
    cmd.args(["--lab", name, "port-forward", "pf", "19004:9000", ":9001"]);
    let mut keel = Forward::spawn(cmd);
    keel.wait_listening(lab, &[19004]);
    let chosen: u16 = wait(lab, "keelctl's chosen port", 10, || {
        let out = keel.stdout.lock().unwrap().clone();
        out.lines()
            .find(|l| l.ends_with(" -> 9001"))
            .and_then(|l| l.strip_prefix("Forwarding from 127.0.0.1:"))
            .and_then(|l| l.split_once(' '))
            .and_then(|(p, _)| p.parse().ok())
    });
    let result = control
        .run(|| {
            converse(19004, "127.0.0.1:9000", &["keelctl".into()])?;
            converse(chosen, "127.0.0.1:9001", std::slice::from_ref(&big))
        })
        .unwrap();
    if let Err(e) = result {
        panic!("{e}\nkeelctl: {}", keel.output());
    }
    drop(keel);

    // Nothing listens on 9002: the connection ends without a byte and
    // kubectl prints the node's error (then, as kubectl does since 1.23,
    // gives up the session).
    let mut refused = Forward::start(lab, &kubeconfig, "pf", &["19002:9002"], true);
    refused.wait_listening(lab, &[19002]);
    let got = control
        .run(|| {
            let mut conn = std::net::TcpStream::connect(("127.0.0.1", 19002))?;
            conn.set_read_timeout(Some(Duration::from_secs(20)))?;
            let mut got = Vec::new();
            conn.read_to_end(&mut got).map(|_| got)
        })
        .unwrap()
        // kubectl may close its side with a reset.
        .unwrap_or_default();
    assert_eq!(got.len(), 0, "{}", refused.output());
    wait(lab, "kubectl to print the refused port's error", 20, || {
        let err = refused.stderr.lock().unwrap().clone();
        (err.contains("error forwarding port 9002 to pod default/pf")
            && err.contains("localhost:9002")
            && err.to_lowercase().contains("refused"))
        .then_some(())
    });
    drop(refused);
    block_on(c.delete::<Pod>("default", "pf")).unwrap();
}
