//! The lab as `keelctl lab up` builds it by default (what `cargo xtask demo`
//! runs): real containers from the lab's registry, the example manifests
//! applied with keelctl, the Service reached through its ClusterIP from
//! inside a container and through its NodePort from outside; the manifest
//! corpus (`examples/corpus`) applied unchanged runs and serves; then `lab down`
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
    let opts = Options {
        runtime: true,
        lb: true,
        ..Default::default()
    };
    let bins = Bins::beside_current_exe().expect("binaries");
    let guard = LabGuard(Lab::up(&spec, &bins, &opts).expect("lab up"));
    let lab = &guard.0;
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
