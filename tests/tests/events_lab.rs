//! Events end to end in the lab (one node, the runtime on, an image from a
//! registry on the node's loopback): a pod's Scheduled, Pulling/Pulled,
//! Created and Started events, and a failing readiness probe's Unhealthy
//! repeats folded into one Event with count > 1, all seen through
//! `keelctl get events`, `keelctl describe pod`, and the real kubectl's
//! `get events` and `describe pod` (which asks by fieldSelector
//! involvedObject.*); the node's Starting/NodeReady in `describe node`.
//! Health and metrics: keel-control's and the agent's (scraped from inside
//! the node's namespace on `--metrics-listen`'s default 127.0.0.1:10255)
//! `/readyz` answer 200 and their `/metrics` pass `promtool check metrics`
//! with the expected series. `keelctl get events -w` prints the Killing
//! recorded when the pod is deleted.

use std::{path::PathBuf, time::Duration};

use keel_api::{Event, Pod, client::ListParams};
use keel_lab::{Bins, Lab, LabGuard, Mode, Options, Spec, block_on};
use keel_sys::ns::NetNs;
use keel_tests::{
    process::bin,
    require_root,
    runtime::{ImageSpec, TestRegistry, build_layout},
};
use serde_json::json;

const PORT: u16 = 5000;

/// `GET path` over plain HTTP from inside `netns`: (status line, body).
fn http_get_in(netns: &std::path::Path, addr: &str, path: &str) -> Option<(String, String)> {
    use std::io::{Read, Write};
    let (addr, path) = (addr.to_string(), path.to_string());
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
            let (head, body) = r.split_once("\r\n\r\n")?;
            Some((head.lines().next()?.to_string(), body.to_string()))
        })
        .ok()?
}

/// `promtool check metrics` on `text`.
fn promtool(what: &str, text: &str) {
    keel_api::testing::promtool_check(what, text);
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

/// The pod's events, by kubectl describe's field selector.
fn pod_events(lab: &Lab, pod: &Pod) -> Vec<Event> {
    let c = lab.client().unwrap();
    let sel = format!(
        "involvedObject.name={},involvedObject.namespace=default,involvedObject.kind=Pod,involvedObject.uid={}",
        pod.metadata.name, pod.metadata.uid
    );
    block_on(c.list::<Event>("default", &ListParams::fields(sel)))
        .map(|l| l.items)
        .unwrap_or_default()
}

fn wait<T>(what: &str, secs: u64, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        match f() {
            Ok(v) => return v,
            Err(last) if std::time::Instant::now() > deadline => {
                panic!("timed out after {secs}s waiting for {what}; last: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

#[test]
fn pod_and_node_events_reach_keelctl_and_kubectl() {
    require_root();
    let name = format!("tev{}", std::process::id() % 100_000);
    let spec = Spec {
        name: name.clone(),
        nodes: 1,
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
    let bins = Bins::beside_current_exe().expect("binaries");
    let guard = LabGuard(Lab::up(&spec, &bins, &opts).expect("lab up"));
    let lab = &guard.0;
    let node_ns: PathBuf = NetNs::named_path(&lab.topology().nodes[0].netns);
    let images = tempfile::Builder::new()
        .prefix("keel-t-images-")
        .tempdir()
        .unwrap();
    let layout = build_layout(&ImageSpec::testbin("v1"), images.path());
    let registry = TestRegistry::start_at(&node_ns, PORT, None);
    let image = registry.push_at(&node_ns, &layout, "v1", "keel/testbin");

    // A pod whose readiness probe never passes (nothing on 8081).
    let c = lab.client().unwrap();
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "ev", "namespace": "default"},
        "spec": {
            "containers": [{
                "name": "web", "image": image, "imagePullPolicy": "Always",
                "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8081},
                                   "periodSeconds": 1, "failureThreshold": 1}
            }]
        }
    }))
    .unwrap();
    let pod = block_on(c.create(&pod)).expect("create pod");

    let events = wait("the pod's events, Unhealthy counted twice", 120, || {
        let evs = pod_events(lab, &pod);
        let reasons: Vec<(String, i32)> = evs.iter().map(|e| (e.reason.clone(), e.count)).collect();
        let has = |r: &str| evs.iter().any(|e| e.reason == r);
        let unhealthy = evs.iter().filter(|e| e.reason == "Unhealthy").count();
        // Counted, and lastTimestamp moved on (timestamps have seconds).
        let counted = evs.iter().any(|e| {
            e.reason == "Unhealthy" && e.count > 1 && e.last_timestamp > e.first_timestamp
        });
        if ["Scheduled", "Pulling", "Pulled", "Created", "Started"]
            .iter()
            .all(|r| has(r))
            && counted
        {
            // Repeats of the same message are one Event, not several.
            assert_eq!(unhealthy, 1, "{reasons:?}");
            Ok(evs)
        } else {
            Err(format!("{reasons:?}"))
        }
    });
    let by = |r: &str| events.iter().find(|e| e.reason == r).unwrap();
    assert_eq!(by("Scheduled").source.component, "default-scheduler");
    assert!(
        by("Scheduled")
            .message
            .contains("Successfully assigned default/ev to node-1"),
        "{:?}",
        by("Scheduled")
    );
    let started = by("Started");
    assert_eq!(started.source.component, "kubelet");
    assert_eq!(started.source.host, "node-1");
    assert_eq!(started.involved_object.field_path, "spec.containers{web}");
    let unhealthy = by("Unhealthy");
    assert_eq!(unhealthy.type_, "Warning");
    assert!(
        unhealthy.message.starts_with("Readiness probe failed"),
        "{unhealthy:?}"
    );

    // keelctl get events and describe pod.
    let (code, out, err) = keelctl(&name, &["get", "events"]);
    assert_eq!(code, 0, "{err}");
    let header: Vec<&str> = out
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
        "kubectl's columns: {out}"
    );
    for want in [
        "Scheduled",
        "Pulled",
        "Started",
        "Unhealthy",
        "pod/ev",
        "(x",
    ] {
        assert!(out.contains(want), "{want} in {out}");
    }
    let (code, out, err) = keelctl(&name, &["describe", "pod", "ev"]);
    assert_eq!(code, 0, "{err}");
    let events_part = out.split("Events:").nth(1).unwrap_or_default();
    for want in [
        "Type",
        "Reason",
        "From",
        "default-scheduler",
        "kubelet",
        "Started container web",
        "Readiness probe failed",
    ] {
        assert!(events_part.contains(want), "{want} in {out}");
    }
    let (code, out, err) = keelctl(&name, &["describe", "node", "node-1"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Starting kubelet."), "{out}");
    assert!(out.contains("NodeReady"), "{out}");

    // The real kubectl, from the control namespace.
    // Health and metrics, keel-control's (with the admin credential) and
    // the agent's (from inside its node's namespace).
    let text = String::from_utf8(
        block_on(c.request_raw(keel_api::client::HttpMethod::GET, "/metrics", None))
            .expect("keel-control /metrics")
            .to_vec(),
    )
    .unwrap();
    for want in [
        "keel_control_requests_total{",
        "keel_control_objects{kind=\"Event\"}",
        "keel_control_store_commits_total",
        "keel_control_store_commit_seconds_total",
        "keel_control_store_subscribers",
    ] {
        assert!(
            text.contains(want),
            "{want} in keel-control's metrics:\n{text}"
        );
    }
    promtool("keel-control", &text);
    block_on(c.request_raw(keel_api::client::HttpMethod::GET, "/readyz", None))
        .expect("keel-control /readyz");
    let (status, body) = wait("the agent's /readyz", 30, || {
        match http_get_in(&node_ns, "127.0.0.1:10255", "/readyz") {
            Some((s, b)) if s.contains(" 200 ") => Ok((s, b)),
            other => Err(format!("{other:?}")),
        }
    });
    for want in [
        "[+]view-synced ok",
        "[+]cni-config ok",
        "readyz check passed",
    ] {
        assert!(body.contains(want), "{want} in {status}: {body}");
    }
    let (status, text) =
        http_get_in(&node_ns, "127.0.0.1:10255", "/metrics").expect("agent /metrics");
    assert!(status.contains(" 200 "), "{status}");
    for want in [
        "keel_agent_pods{phase=\"Running\"} 1",
        "keel_agent_reconciler_syncs_total{reconciler=\"pods\"}",
        "keel_agent_reconciler_sync_seconds_total{reconciler=\"pods\"}",
        "keel_agent_view_synced 1",
        "keel_agent_events_total{outcome=\"updated\"}",
        "keel_agent_container_restarts_total 0",
        // The pod's image was pulled and its sandbox attached, and timed.
        "keel_agent_image_pull_duration_seconds_count{result=\"success\"}",
        "keel_agent_cni_operation_duration_seconds_count{operation=\"ADD\",result=\"success\"}",
    ] {
        assert!(
            text.contains(want),
            "{want} in the agent's metrics:\n{text}"
        );
    }
    promtool("keel-agent", &text);

    let kubeconfig = lab.state.dir.join("test.kubeconfig");
    let (code, _, err) = keelctl(&name, &["kubeconfig", "-o", kubeconfig.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let kubectl = |args: &[&str]| {
        let out = lab
            .command("control", "kubectl")
            .unwrap()
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--cache-dir")
            .arg(lab.state.dir.join("kube-cache"))
            .arg("--request-timeout=20s")
            .args(args)
            .output()
            .expect("kubectl on PATH");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "kubectl {args:?}: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    let out = kubectl(&["get", "events"]);
    assert!(out.starts_with("LAST SEEN"), "{out}");
    for want in ["Scheduled", "Started", "Unhealthy", "pod/ev"] {
        assert!(out.contains(want), "{want} in {out}");
    }
    let out = kubectl(&["describe", "pod", "ev"]);
    let events_part = out.split("Events:").nth(1).unwrap_or_default();
    for want in [
        "Scheduled",
        "Pulled",
        "Created",
        "Started",
        "Unhealthy",
        "Readiness probe failed",
    ] {
        assert!(events_part.contains(want), "{want} in {out}");
    }
    let out = kubectl(&[
        "get",
        "events",
        "--field-selector",
        "reason=Unhealthy",
        "-o",
        "json",
    ]);
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{out}");
    assert!(items[0]["count"].as_i64() > Some(1), "{out}");

    // keelctl get events -w: an event recorded after it started (the
    // agent's Killing when the pod is deleted) arrives as a row.
    let mut watch = std::process::Command::new(bin("keelctl"))
        .args([
            "--lab",
            &name,
            "get",
            "events",
            "-w",
            "--field-selector",
            "reason=Killing",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = watch.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The (empty) list first; a moment for the watch to be established,
    // then the pod goes.
    std::thread::sleep(Duration::from_secs(2));
    block_on(c.delete::<Pod>("default", "ev")).expect("delete pod");
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    let mut lines = Vec::new();
    let got = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) if l.contains("Killing") && l.contains("pod/ev") => break true,
            Ok(l) => lines.push(l),
            Err(_) => break false,
        }
    };
    keel_tests::process::stop_child(&mut watch, Duration::from_secs(1));
    assert!(got, "no Killing row from get -w: {lines:?}");
}
