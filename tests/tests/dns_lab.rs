//! Cluster DNS end to end in one lab (two nodes, keel's runtime and load
//! balancer, agents with `--cluster-dns 169.254.20.10` and a resolv.conf
//! naming an upstream dnsmasq run in the lab's `ext` namespace): a client
//! container's resolv.conf is the kubelet's; it reaches the `web` Service
//! by `web`, `web.default` and `web.default.svc.cluster.local` and finds
//! its SRV record (busybox `nslookup`/`wget` in the container); a headless
//! Service answers with its ready pods and follows a scale-down, and names
//! a pod by its hostname and subdomain (whose hosts file says so too); an
//! ExternalName and a name outside the cluster resolve through the upstream.

use std::{
    collections::BTreeSet,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use keel_api::{Deployment, Pod, client::ListParams};
use keel_lab::{Bins, Lab, LabGuard, Mode, Options, Spec, block_on, topology::Topology};
use keel_tests::{process::bin, process::wait_for, require_root};
use serde_json::json;

const CLUSTER_DNS: &str = "169.254.20.10";
const UPSTREAM_NAME: &str = "upstream.keel.test";
const UPSTREAM_ADDR: &str = "192.0.2.7";

/// dnsmasq in a namespace, ended by PID on drop.
struct Dnsmasq(Child);

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn exec(lab: &str, pod: &str, cmd: &[&str]) -> (bool, String) {
    let out = Command::new(bin("keelctl"))
        .args(["--lab", lab, "exec", pod, "--"])
        .args(cmd)
        .output()
        .expect("keelctl");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn web_ips(lab: &Lab) -> BTreeSet<String> {
    let c = lab.client().unwrap();
    block_on(c.list::<Pod>("default", &ListParams::labels("app=web")))
        .map(|l| {
            l.items
                .into_iter()
                .filter(Pod::is_ready)
                .map(|p| p.status.pod_ip)
                .collect()
        })
        .unwrap_or_default()
}

/// The addresses busybox nslookup printed for the answer.
fn addresses(out: &str) -> BTreeSet<String> {
    out.split("Name:")
        .skip(1)
        .flat_map(|s| s.lines())
        .filter_map(|l| l.trim().strip_prefix("Address:"))
        .map(|a| a.trim().to_string())
        .collect()
}

#[test]
fn pods_resolve_services_headless_pods_and_outside_names() {
    require_root();
    let name = format!("tdns{}", std::process::id() % 100_000);
    let spec = Spec {
        name: name.clone(),
        nodes: 2,
        mode: Mode::Route,
        segments: 1,
    };
    let ext = Topology::plan(&spec).unwrap().ext;
    let dir = tempfile::Builder::new()
        .prefix("keel-t-dns-")
        .tempdir()
        .unwrap();
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(
        &resolv,
        format!("nameserver {}\nsearch lab.example\n", ext.ip),
    )
    .unwrap();
    let opts = Options {
        runtime: true,
        lb: true,
        agent_args: vec![
            "--cluster-dns".into(),
            CLUSTER_DNS.into(),
            "--resolv-conf".into(),
            resolv.display().to_string(),
        ],
        ..Default::default()
    };
    let bins = Bins::beside_current_exe().expect("binaries");
    let guard = LabGuard(Lab::up(&spec, &bins, &opts).expect("lab up"));
    let lab = &guard.0;
    let _upstream = Dnsmasq(
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &ext.netns,
                "dnsmasq",
                "--keep-in-foreground",
            ])
            .args([
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
                "--user=root",
                "--pid-file=",
                &format!("--listen-address={}", ext.ip),
                &format!("--address=/{UPSTREAM_NAME}/{UPSTREAM_ADDR}"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dnsmasq (Debian's dnsmasq-base)"),
    );

    let c = lab.client().unwrap();
    let image = "registry.keel.test/keel-testbin:latest";
    let deploy: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{
                        "name": "web", "image": image,
                        "args": ["http-serve", "--port", "8080"],
                        "ports": [{"name": "http", "containerPort": 8080}],
                        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 1}
                    }]
                }
            }
        }
    }))
    .unwrap();
    block_on(c.create(&deploy)).expect("deployment");
    for svc in [
        json!({"metadata": {"name": "web", "namespace": "default"},
               "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}),
        json!({"metadata": {"name": "web-hl", "namespace": "default"},
               "spec": {"clusterIP": "None", "selector": {"app": "web"}, "ports": [{"name": "http", "port": 8080}]}}),
        json!({"metadata": {"name": "db", "namespace": "default"},
               "spec": {"clusterIP": "None", "selector": {"app": "db"}}}),
        json!({"metadata": {"name": "ext", "namespace": "default"},
               "spec": {"type": "ExternalName", "externalName": UPSTREAM_NAME}}),
    ] {
        let s: keel_api::Service = serde_json::from_value(svc).unwrap();
        block_on(c.create(&s)).expect("service");
    }
    let client: Pod = serde_json::from_value(json!({
        "metadata": {"name": "client", "namespace": "default"},
        "spec": {"terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "shell", "image": image, "command": ["sleep", "1000000"]}]}
    }))
    .unwrap();
    block_on(c.create(&client)).expect("client pod");
    let db: Pod = serde_json::from_value(json!({
        "metadata": {"name": "db-0", "namespace": "default", "labels": {"app": "db"}},
        "spec": {"hostname": "db-0", "subdomain": "db", "terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "shell", "image": image, "command": ["sleep", "1000000"]}]}
    }))
    .unwrap();
    block_on(c.create(&db)).expect("db pod");
    wait_for(
        "2 web pods, db-0 and the client Ready",
        Duration::from_secs(180),
        || {
            let l = block_on(c.list::<Pod>("default", &ListParams::default())).ok()?;
            (l.items.len() == 4 && l.items.iter().all(Pod::is_ready)).then_some(())
        },
    );
    let two = web_ips(lab);
    assert_eq!(two.len(), 2);

    // The kubelet's ClusterFirst resolv.conf.
    let (ok, out) = exec(&name, "client", &["cat", "/etc/resolv.conf"]);
    assert!(ok, "{out}");
    assert_eq!(
        out,
        format!(
            "search default.svc.cluster.local svc.cluster.local cluster.local lab.example\nnameserver {CLUSTER_DNS}\noptions ndots:5\n"
        )
    );
    let (ok, out) = exec(&name, "client", &["cat", "/etc/hosts"]);
    let ip = block_on(c.get::<Pod>("default", "client"))
        .unwrap()
        .status
        .pod_ip;
    assert!(ok && out.contains(&format!("{ip}\tclient\n")), "{out}");

    // A pod by hostname and subdomain, behind its headless Service, and
    // its own hosts file naming it so.
    let db_ip = block_on(c.get::<Pod>("default", "db-0"))
        .unwrap()
        .status
        .pod_ip;
    let (_, out) = wait_for("db-0's record", Duration::from_secs(10), || {
        let r = exec(
            &name,
            "client",
            &["nslookup", "db-0.db.default.svc.cluster.local"],
        );
        addresses(&r.1).contains(&db_ip).then_some(r)
    });
    assert_eq!(addresses(&out), BTreeSet::from([db_ip.clone()]), "{out}");
    let (ok, out) = exec(&name, "db-0", &["cat", "/etc/hosts"]);
    assert!(
        ok && out.contains(&format!(
            "{db_ip}\tdb-0.db.default.svc.cluster.local\tdb-0\n"
        )),
        "{out}"
    );

    // The Service by its short, namespaced and full names.
    let pod_names: BTreeSet<String> =
        block_on(c.list::<Pod>("default", &ListParams::labels("app=web")))
            .unwrap()
            .items
            .into_iter()
            .map(|p| p.metadata.name)
            .collect();
    for host in ["web", "web.default", "web.default.svc.cluster.local"] {
        let (ok, out) = exec(
            &name,
            "client",
            &["wget", "-qO-", &format!("http://{host}/")],
        );
        assert!(
            ok && pod_names.contains(out.trim()),
            "wget http://{host}/: {out}"
        );
    }
    let (ok, out) = exec(
        &name,
        "client",
        &[
            "nslookup",
            "-type=SRV",
            "_http._tcp.web.default.svc.cluster.local",
        ],
    );
    assert!(
        ok && out.contains("80 web.default.svc.cluster.local"),
        "SRV: {out}"
    );

    // The headless Service: its ready pods, following a scale-down.
    let (ok, out) = exec(
        &name,
        "client",
        &["nslookup", "web-hl.default.svc.cluster.local"],
    );
    assert!(
        ok && addresses(&out) == two,
        "headless: {out} (want {two:?})"
    );
    let mut d: Deployment = block_on(c.get("default", "web")).unwrap();
    d.spec.replicas = Some(1);
    block_on(c.update(&d)).expect("scale down");
    let t = Instant::now();
    let one = wait_for("one web pod left", Duration::from_secs(60), || {
        let ips = web_ips(lab);
        (ips.len() == 1).then_some(ips)
    });
    wait_for(
        "the headless name to follow",
        Duration::from_secs(30),
        || {
            let (_, out) = exec(
                &name,
                "client",
                &["nslookup", "web-hl.default.svc.cluster.local"],
            );
            (addresses(&out) == one).then_some(())
        },
    );
    eprintln!(
        "headless answer followed the scale-down {:?} after the update",
        t.elapsed()
    );

    // Outside the cluster: through the upstream, directly and as an ExternalName.
    // (nslookup also asks for AAAA, which this dnsmasq refuses: passed on.)
    for host in [UPSTREAM_NAME, "ext.default.svc.cluster.local"] {
        let (_, out) = exec(&name, "client", &["nslookup", host]);
        assert!(addresses(&out).contains(UPSTREAM_ADDR), "{host}: {out}");
    }
    let (_, out) = exec(
        &name,
        "client",
        &["nslookup", "nope.default.svc.cluster.local"],
    );
    assert!(out.contains("NXDOMAIN"), "{out}");
    // The client's node counted what it answered.
    let node = block_on(c.get::<Pod>("default", "client"))
        .unwrap()
        .spec
        .node_name;
    let sock = lab.state.dir.join(&node).join("agent.sock");
    let st: serde_json::Value =
        serde_json::from_str(&keel_tests::lb_node::agent_get(&sock, "/dns").expect("GET /dns"))
            .unwrap();
    assert_eq!(st["address"], CLUSTER_DNS, "{st}");
    assert!(st["queries"]["cluster"].as_u64() > Some(0), "{st}");
    assert!(st["queries"]["forwarded"].as_u64() > Some(0), "{st}");
    assert!(st["queries"]["nxdomain"].as_u64() > Some(0), "{st}");
    drop(guard);
}
