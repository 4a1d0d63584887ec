//! The lab as `keelctl lab up` builds it by default (what `cargo xtask demo`
//! runs): real containers from the lab's registry, the example manifests
//! applied with keelctl, the Service reached through its ClusterIP and by
//! its name (cluster DNS, on by default) from inside a container and
//! through its NodePort from outside; the manifest corpus
//! (`examples/corpus`) applied unchanged runs and serves; then `lab down`
//! leaves no namespace, cgroup, bpffs pin or process behind.

use std::{collections::BTreeSet, path::Path, process::Command, time::Duration};

use keel_api::{Pod, Service, client::ListParams};
use keel_lab::{Bins, Lab, LabGuard, Mode, Options, Spec, block_on};
use keel_tests::{process::bin, process::wait_for, require_root};

fn keelctl(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(bin("keelctl"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("keelctl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn default_lab_runs_the_examples_and_serves_the_service() {
    require_root();
    let name = format!("tdm{}", std::process::id() % 100_000);
    let spec = Spec {
        name: name.clone(),
        nodes: 2,
        mode: Mode::Vxlan,
        segments: 1,
    };
    // The steps `keelctl lab up` prints as they happen.
    static STEPS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let opts = Options {
        runtime: true,
        lb: true,
        progress: Some(|step| STEPS.lock().unwrap().push(step.to_string())),
        ..Default::default()
    };
    let bins = Bins::beside_current_exe().expect("binaries");
    let guard = LabGuard(Lab::up(&spec, &bins, &opts).expect("lab up"));
    let lab = &guard.0;
    let steps = STEPS.lock().unwrap().join("\n");
    for want in [
        "] network: 5 namespaces",
        "] keel-control at https://",
        "] registry: building the lab's image",
        "] node-1: keel-agent joins with a bootstrap token",
        "] node-2: keel-agent joins with a bootstrap token",
        "] nodes Ready: 2 of 2",
    ] {
        assert!(steps.contains(want), "{want:?} in:\n{steps}");
    }
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let (ok, _, err) = keelctl(&["--lab", &name, "apply", "-f", examples.to_str().unwrap()]);
    assert!(ok, "keelctl apply: {err}");

    let c = lab.client().unwrap();
    let pods = wait_for(
        "the example pods to be Ready",
        Duration::from_secs(120),
        || {
            let l = block_on(c.list::<Pod>("default", &ListParams::default())).ok()?;
            (l.items.len() == 4 && l.items.iter().all(Pod::is_ready)).then_some(l.items)
        },
    );
    let web: BTreeSet<String> = pods
        .iter()
        .filter(|p| p.metadata.labels.get("app").map(String::as_str) == Some("web"))
        .map(|p| p.metadata.name.clone())
        .collect();
    assert_eq!(web.len(), 3);
    // kubectl's JSONPath templates in keelctl get.
    let (ok, out, err) = keelctl(&[
        "--lab",
        &name,
        "get",
        "pods",
        "-l",
        "app=web",
        "-o",
        r#"jsonpath={range .items[*]}{.metadata.name}{"\t"}{.status.podIP}{"\n"}{end}"#,
    ]);
    assert!(ok, "keelctl get -o jsonpath: {err}");
    let printed: BTreeSet<String> = out.lines().map(str::to_string).collect();
    let want: BTreeSet<String> = pods
        .iter()
        .filter(|p| web.contains(&p.metadata.name))
        .map(|p| format!("{}\t{}", p.metadata.name, p.status.pod_ip))
        .collect();
    assert_eq!(printed, want);
    let svc: Service = block_on(c.get("default", "web")).unwrap();
    let vip = svc.spec.cluster_ip.clone();

    // From inside the client container, through the ClusterIP: every answer
    // is a web pod's name, and over 30 requests more than one answers
    // (all from one of three: 3·(1/3)^30).
    let mut seen = BTreeSet::new();
    for _ in 0..30 {
        let (ok, out, err) = keelctl(&[
            "--lab",
            &name,
            "exec",
            "client",
            "--",
            "wget",
            "-qO-",
            &format!("http://{vip}/"),
        ]);
        assert!(ok, "wget {vip} in the client container: {err}");
        let who = out.trim().to_string();
        assert!(web.contains(&who), "{who:?} is not a web pod");
        seen.insert(who);
    }
    assert!(seen.len() > 1, "the ClusterIP always chose {seen:?}");

    // Cluster DNS is on by default: the client's resolv.conf names the
    // node-local server, and the Service answers by its short and full names.
    let (ok, resolv, err) = keelctl(&[
        "--lab",
        &name,
        "exec",
        "client",
        "--",
        "cat",
        "/etc/resolv.conf",
    ]);
    assert!(ok, "cat /etc/resolv.conf: {err}");
    assert!(
        resolv
            .lines()
            .any(|l| l.trim() == "nameserver 169.254.20.10")
            && resolv.contains("search default.svc.cluster.local svc.cluster.local cluster.local")
            && resolv.contains("options ndots:5"),
        "{resolv}"
    );
    for host in ["web", "web.default.svc.cluster.local"] {
        let (ok, out, err) = keelctl(&[
            "--lab",
            &name,
            "exec",
            "client",
            "--",
            "wget",
            "-qO-",
            &format!("http://{host}/"),
        ]);
        assert!(ok, "wget http://{host}/ in the client container: {err}");
        assert!(web.contains(out.trim()), "{out:?} from {host}");
    }

    // The agents' /metrics read the datapaths' pinned maps: the Services'
    // entries, the socket translations the wgets above made, and BPF host
    // routing's counters (the client's node delivered the answers).
    let client_node = pods
        .iter()
        .find(|p| p.metadata.name == "client")
        .map(|p| p.spec.node_name.clone())
        .unwrap();
    let (ok, metrics, err) = keelctl(&[
        "lab",
        "run",
        &name,
        &client_node,
        "--",
        "busybox",
        "wget",
        "-qO-",
        "http://127.0.0.1:10255/metrics",
    ]);
    assert!(ok, "the agent's /metrics on {client_node}: {err}");
    let value = |series: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{series} in:\n{metrics}"))
    };
    assert!(value("keel_agent_lb_map_entries{map=\"KEEL_LB_SVC\"}") >= 2.0);
    assert!(value("keel_agent_lb_map_entries{map=\"KEEL_LB_BE\"}") >= 3.0);
    assert!(value("keel_agent_lb_translations_total{counter=\"sock_xlate\"}") >= 30.0);
    assert_eq!(
        value("keel_agent_lb_drops_total{reason=\"sock_no_backend\"}"),
        0.0
    );
    assert!(value("keel_agent_host_routing_packets_total{counter=\"to_pod\"}") > 0.0);
    assert!(value("keel_agent_host_routing_map_entries{map=\"endpoints\"}") >= 1.0);
    assert!(
        !metrics.contains("keel_agent_datapath_read_errors_total{"),
        "{metrics}"
    );
    keel_api::testing::promtool_check("keel-agent with its datapaths", &metrics);

    // The same datapaths through keel-control's node proxy.
    let (ok, drops, err) = keelctl(&["--lab", &name, "lb", "drops", "--node", &client_node]);
    assert!(ok, "keelctl lb drops --node {client_node}: {err}");
    assert!(
        drops.starts_with("COUNTERS sock_xlate=") && drops.contains("\nDROPS "),
        "{drops}"
    );
    let (ok, dump, err) = keelctl(&["--lab", &name, "net", "dump", "--node", &client_node]);
    assert!(ok, "keelctl net dump --node {client_node}: {err}");
    assert!(dump.contains("STAT to_pod "), "{dump}");
    let (ok, _, err) = keelctl(&["--lab", &name, "lb", "drops", "--node", "node-9"]);
    assert!(!ok && err.contains("nodes \"node-9\" not found"), "{err}");

    // From outside the cluster, through the NodePort of each node.
    for n in &lab.topology().nodes {
        let (ok, out, err) = keelctl(&[
            "lab",
            "run",
            &name,
            "ext",
            "--",
            "busybox",
            "wget",
            "-qO-",
            &format!("http://{}:30080/", n.ip),
        ]);
        assert!(ok, "NodePort via {}: {err}", n.role);
        assert!(web.contains(out.trim()), "{out:?} via {}", n.role);
    }

    // The manifest corpus (as the Kubernetes documentation writes
    // manifests), applied unchanged: keel warns about what it keeps without
    // acting on, and runs it.
    let corpus = examples.join("corpus");
    let (ok, out, err) = keelctl(&["--lab", &name, "apply", "-f", corpus.to_str().unwrap()]);
    assert!(ok, "keelctl apply {}: {out}\n{err}", corpus.display());
    assert!(
        err.contains("Warning: spec.template.spec.tolerations: keel does not act on this field"),
        "{err}"
    );
    let guestbook = wait_for(
        "the corpus's guestbook pods to be Ready",
        Duration::from_secs(120),
        || {
            let l =
                block_on(c.list::<Pod>("default", &ListParams::labels("app=guestbook"))).ok()?;
            (l.items.len() == 2 && l.items.iter().all(Pod::is_ready)).then_some(l.items)
        },
    );
    let names: BTreeSet<String> = guestbook.iter().map(|p| p.metadata.name.clone()).collect();
    let pod = guestbook[0].metadata.name.as_str();
    let exec = |cmd: &[&str]| {
        let mut args = vec!["--lab", name.as_str(), "exec", pod, "--"];
        args.extend_from_slice(cmd);
        let (ok, out, err) = keelctl(&args);
        assert!(ok, "{cmd:?} in {pod}: {err}");
        out
    };
    // What keel models is acted on: env from the Secret and the
    // ConfigMap, the configMap volume.
    let env = exec(&["env"]);
    for var in [
        "GUESTBOOK_PASSWORD=guestbook-password",
        "GUESTBOOK_USER=guestbook",
        "GUESTBOOK_MODE=production",
        "GUESTBOOK_TITLE=keel guestbook",
    ] {
        assert!(env.lines().any(|l| l == var), "{var} in\n{env}");
    }
    let props = exec(&["cat", "/etc/guestbook/guestbook.properties"]);
    assert!(props.contains("title=keel guestbook"), "{props}");
    // And its Service answers from the client pod.
    let svc: Service = block_on(c.get("default", "guestbook")).unwrap();
    let (ok, out, err) = keelctl(&[
        "--lab",
        &name,
        "exec",
        "client",
        "--",
        "wget",
        "-qO-",
        &format!("http://{}/", svc.spec.cluster_ip),
    ]);
    assert!(ok, "wget the guestbook Service: {err}");
    assert!(names.contains(out.trim()), "{out:?} is not a guestbook pod");

    // Down: nothing named after the lab is left.
    let prefix = format!("{}-", keel_lab::topology::netns_prefix(&name));
    drop(guard);
    let netns: Vec<String> = std::fs::read_dir("/run/netns")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&prefix))
                .collect()
        })
        .unwrap_or_default();
    assert!(netns.is_empty(), "namespaces left: {netns:?}");
    let pins: Vec<String> = std::fs::read_dir("/sys/fs/bpf")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&prefix))
        .collect();
    assert!(pins.is_empty(), "bpffs pins left: {pins:?}");
    let cg = keel_lab::cgroup2_root()
        .unwrap()
        .join(format!("{prefix}nodes"));
    assert!(!cg.exists(), "cgroup {} left", cg.display());
}
