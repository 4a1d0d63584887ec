//! The real kubectl (v1.32, on PATH) against keel-control: one keel-control
//! over TLS with a self-signed `CA:TRUE` certificate given by a relative
//! path, a kubeconfig written by `keelctl kubeconfig`, and kubectl's
//! everyday commands, each one's output checked. A Node is registered
//! through the API and the test plays its agent: it reports every pod
//! bound to the node Running and Ready, as keel-agent would, so rollouts
//! finish. Everything listens on loopback, as the other keel-control tests
//! do; nothing is sent anywhere else.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use keel_api::{
    Pod,
    client::{Client, ListParams},
};
use keel_tests::process::{ControlProcess, bin};
use serde_json::{Value, json};

/// One kubectl run: exit code, stdout, stderr.
struct Run {
    code: i32,
    out: String,
    err: String,
}

struct Kubectl {
    kubeconfig: PathBuf,
    /// kubectl's discovery and HTTP cache, kept out of $HOME.
    cache: PathBuf,
}

impl Kubectl {
    fn run(&self, args: &[&str]) -> Run {
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(&self.cache)
            .arg("--request-timeout=20s")
            .args(args)
            .output()
            .expect("kubectl on PATH");
        Run {
            code: out.status.code().unwrap_or(-1),
            out: String::from_utf8_lossy(&out.stdout).into_owned(),
            err: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs and insists on success; stdout.
    fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(
            r.code, 0,
            "kubectl {args:?} failed:\nstdout: {}\nstderr: {}",
            r.out, r.err
        );
        r.out
    }

    /// A jsonpath of one object.
    fn jsonpath(&self, what: &[&str], path: &str) -> String {
        let arg = format!("jsonpath={path}");
        let mut args = vec!["get"];
        args.extend_from_slice(what);
        args.extend(["-o", &arg]);
        self.ok(&args)
    }
}

/// Text with every run of whitespace made one space: kubectl wraps
/// descriptions at its own width.
fn squash(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `kubectl explain` reads the kinds' schemas from keel-control's OpenAPI v3
/// documents: the KIND/VERSION/FIELD lines, field types and `-required-`
/// from the schemas, descriptions from keel_api's doc comments.
fn explain(k: &Kubectl) {
    let pods = k.ok(&["explain", "pods"]);
    let lines: Vec<&str> = pods.lines().collect();
    assert_eq!(lines[..2], ["KIND:       Pod", "VERSION:    v1"], "{pods}");
    assert!(!pods.contains("GROUP:"), "{pods}");
    assert!(
        squash(&pods)
            .contains("DESCRIPTION: A Pod: one or more containers that share a network namespace"),
        "{pods}"
    );
    for field in [
        "apiVersion\t<string>",
        "kind\t<string>",
        "metadata\t<ObjectMeta>",
        "spec\t<PodSpec>",
        "status\t<PodStatus>",
    ] {
        assert!(
            lines.contains(&format!("  {field}").as_str()),
            "{field} in\n{pods}"
        );
    }
    assert!(
        squash(&pods).contains("spec <PodSpec> What the pod should run"),
        "{pods}"
    );

    let image = k.ok(&["explain", "pod.spec.containers.image"]);
    let lines: Vec<&str> = image.lines().collect();
    assert_eq!(
        lines[..4],
        [
            "KIND:       Pod",
            "VERSION:    v1",
            "",
            "FIELD: image <string>"
        ],
        "{image}"
    );
    assert!(
        squash(&image).contains("DESCRIPTION: The container's image reference (`nginx:1.27`"),
        "{image}"
    );

    let replicas = k.ok(&["explain", "deployment.spec.replicas"]);
    let lines: Vec<&str> = replicas.lines().collect();
    assert_eq!(
        lines[..5],
        [
            "GROUP:      apps",
            "KIND:       Deployment",
            "VERSION:    v1",
            "",
            "FIELD: replicas <integer>"
        ],
        "{replicas}"
    );
    assert!(
        squash(&replicas)
            .contains("DESCRIPTION: How many pods of the template to run. Defaults to 1."),
        "{replicas}"
    );

    let ports = k.ok(&["explain", "svc.spec.ports", "--recursive"]);
    let lines: Vec<&str> = ports.lines().collect();
    assert_eq!(
        lines[..4],
        [
            "KIND:       Service",
            "VERSION:    v1",
            "",
            "FIELD: ports <[]ServicePort>"
        ],
        "{ports}"
    );
    assert!(
        squash(&ports).contains("DESCRIPTION: The ports the Service exposes"),
        "{ports}"
    );
    // Recursive: every field of a port, one line each, no descriptions.
    let fields: Vec<&str> = lines
        .iter()
        .skip_while(|l| **l != "FIELDS:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .copied()
        .collect();
    assert_eq!(
        fields,
        [
            "  name\t<string>",
            "  nodePort\t<integer>",
            "  port\t<integer> -required-",
            "  protocol\t<string>",
            "  enum: TCP, UDP",
            "  targetPort\t<IntOrString>",
        ],
        "{ports}"
    );

    // A field the schema does not have, as Kubernetes answers it.
    let r = k.run(&["explain", "pod.spec.nope"]);
    assert_ne!(r.code, 0);
    assert!(
        r.err.contains(r#"field "nope" does not exist"#),
        "{}",
        r.err
    );
}

/// The first line of a table, its columns split on runs of spaces.
fn header(table: &str) -> Vec<String> {
    table
        .lines()
        .next()
        .unwrap_or("")
        .split("  ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

/// Reports every pod bound to a node Running and Ready (what an agent
/// does once its containers pass their readiness probes).
async fn play_agent(c: &Client) {
    let Ok(pods) = c.list::<Pod>("", &ListParams::default()).await else {
        return;
    };
    for pod in pods.items {
        let ready = pod
            .status
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        if pod.spec.node_name.is_empty() || ready {
            continue;
        }
        let mut v = serde_json::to_value(&pod).unwrap();
        let containers: Vec<Value> = pod
            .spec
            .containers
            .iter()
            .map(|c| {
                json!({"name": c.name, "image": c.image, "ready": true, "started": true,
                            "restartCount": 0, "state": {"running": {}}})
            })
            .collect();
        v["status"]["phase"] = json!("Running");
        v["status"]["podIP"] = json!("10.244.0.9");
        v["status"]["conditions"] = json!([
            {"type": "PodScheduled", "status": "True"},
            {"type": "Ready", "status": "True"},
            {"type": "ContainersReady", "status": "True"}
        ]);
        v["status"]["containerStatuses"] = json!(containers);
        let pod: Pod = serde_json::from_value(v).unwrap();
        let _ = c.update_status(&pod).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_drives_keel_control() {
    if Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: no kubectl on PATH (the machine image brings kubectl 1.32)");
        return;
    }
    // A self-signed certificate that is its own CA (CA:TRUE), as kubeadm-
    // style scripts make them; given to keel-control by a relative path.
    let here = tempfile::Builder::new()
        .prefix(".keel-t-kubectl-")
        .tempdir_in(".")
        .unwrap();
    let mut params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    std::fs::write(here.path().join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(here.path().join("key.pem"), key.serialize_pem()).unwrap();
    let rel = |f: &str| {
        format!(
            "./{}/{f}",
            here.path().file_name().unwrap().to_str().unwrap()
        )
    };
    let control = ControlProcess::start(&[
        "--tls-cert",
        &rel("cert.pem"),
        "--tls-key",
        &rel("key.pem"),
        "--node-monitor-grace",
        "10m",
    ]);
    // keel's own client reads client.json (its CA path made absolute) and
    // accepts the CA:TRUE certificate, as kubectl does.
    let c = control.client();
    c.list::<Pod>("", &ListParams::default()).await.unwrap();

    let kubeconfig = control.data_dir().join("kubeconfig");
    let status = Command::new(bin("keelctl"))
        .arg("--config")
        .arg(control.client_config_path())
        .args(["kubeconfig", "-o"])
        .arg(&kubeconfig)
        .status()
        .unwrap();
    assert!(status.success());
    let k = Kubectl {
        kubeconfig,
        cache: control.data_dir().join("kube-cache"),
    };

    // Discovery.
    let version: Value = serde_json::from_str(&k.ok(&["version", "-o", "json"])).unwrap();
    assert_eq!(version["serverVersion"]["minor"], "32", "{version}");
    let resources = k.ok(&["api-resources"]);
    for row in [
        ["pods", "po", "v1", "true", "Pod"],
        ["deployments", "deploy", "apps/v1", "true", "Deployment"],
        ["nodes", "no", "v1", "false", "Node"],
        ["configmaps", "cm", "v1", "true", "ConfigMap"],
    ] {
        assert!(
            resources
                .lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>() == row),
            "{row:?} in\n{resources}"
        );
    }
    explain(&k);

    // The API server's own Service.
    assert_eq!(
        k.jsonpath(
            &["svc", "kubernetes"],
            "{.spec.clusterIP} {.spec.ports[0].port}"
        ),
        "10.96.0.1 443"
    );

    // A Node for the scheduler, and the test as its agent.
    let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1"},
        "status": {"conditions": [{"type": "Ready", "status": "True"}],
                   "addresses": [{"type": "InternalIP", "address": "192.0.2.10"}],
                   "capacity": {"cpu": "8", "memory": "16Gi", "pods": "110"},
                   "allocatable": {"cpu": "8", "memory": "16Gi", "pods": "110"}}});
    let node_file = control.data_dir().join("node.json");
    std::fs::write(&node_file, node.to_string()).unwrap();
    assert_eq!(
        k.ok(&["create", "-f", node_file.to_str().unwrap()]).trim(),
        "node/node-1 created"
    );
    c.request_raw(
        keel_api::client::HttpMethod::PUT,
        "/api/v1/nodes/node-1/status",
        Some(node.to_string().into_bytes()),
    )
    .await
    .unwrap();
    let agent_client = control.client();
    let agent = tokio::spawn(async move {
        loop {
            play_agent(&agent_client).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });

    // apply -f a directory, client-side.
    let applied = k.ok(&["apply", "-f", examples().to_str().unwrap()]);
    for line in [
        "pod/client created",
        "deployment.apps/web created",
        "service/web created",
        "service/web-nodeport created",
    ] {
        assert!(applied.contains(line), "{line} in {applied}");
    }

    // get, in every output.
    let wait_ready = |what: &str, want: &str| {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = k.jsonpath(&["deploy", what], "{.status.readyReplicas}");
            if got == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: ready {got}, want {want}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    wait_ready("web", "3");
    let pods = k.ok(&["get", "pods"]);
    assert_eq!(
        header(&pods),
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    );
    assert!(
        pods.lines()
            .any(|l| l.starts_with("client ") && l.contains(" 1/1 ") && l.contains(" Running ")),
        "{pods}"
    );
    let wide = k.ok(&["get", "pods", "-o", "wide"]);
    assert_eq!(
        header(&wide),
        [
            "NAME",
            "READY",
            "STATUS",
            "RESTARTS",
            "AGE",
            "IP",
            "NODE",
            "NOMINATED NODE",
            "READINESS GATES"
        ]
    );
    assert!(wide.contains("node-1"), "{wide}");
    let names = k.ok(&["get", "pods", "-l", "app=web", "-o", "name"]);
    assert_eq!(names.lines().count(), 3, "{names}");
    assert!(names.lines().all(|l| l.starts_with("pod/web-")), "{names}");
    let all = k.ok(&["get", "pods", "-A"]);
    assert_eq!(header(&all)[0], "NAMESPACE");
    let yaml = k.ok(&["get", "deploy", "web", "-o", "yaml"]);
    assert!(
        yaml.contains("kind: Deployment") && yaml.contains("replicas: 3"),
        "{yaml}"
    );
    let json_out: Value = serde_json::from_str(&k.ok(&["get", "svc", "-o", "json"])).unwrap();
    assert_eq!(json_out["kind"], "List");
    let svcs = k.ok(&["get", "svc,deploy"]);
    assert!(
        svcs.contains("service/web-nodeport") && svcs.contains("80:30080/TCP"),
        "{svcs}"
    );
    assert!(
        svcs.contains("deployment.apps/web") && svcs.contains("3/3"),
        "{svcs}"
    );
    let nodes = k.ok(&["get", "no"]);
    assert!(
        nodes
            .lines()
            .any(|l| l.starts_with("node-1") && l.contains(" Ready ")),
        "{nodes}"
    );
    let ep = k.ok(&["get", "ep", "kubernetes"]);
    assert_eq!(header(&ep), ["NAME", "ENDPOINTS", "AGE"]);
    let missing = k.run(&["get", "svc", "nope"]);
    assert_eq!(missing.code, 1);
    assert!(
        missing
            .err
            .contains(r#"Error from server (NotFound): services "nope" not found"#),
        "{}",
        missing.err
    );

    // diff and re-apply an edited file: updated in place.
    let edited = control.data_dir().join("web.yaml");
    std::fs::write(
        &edited,
        std::fs::read_to_string(examples().join("web.yaml"))
            .unwrap()
            .replace("replicas: 3", "replicas: 2"),
    )
    .unwrap();
    let diff = k.run(&["diff", "-f", edited.to_str().unwrap()]);
    assert_eq!(diff.code, 1, "{}", diff.err);
    assert!(
        diff.out.contains("-  replicas: 3") && diff.out.contains("+  replicas: 2"),
        "{}",
        diff.out
    );
    let uid = k.jsonpath(&["deploy", "web"], "{.metadata.uid}");
    let reapplied = k.ok(&["apply", "-f", edited.to_str().unwrap()]);
    assert!(
        reapplied.contains("deployment.apps/web configured"),
        "{reapplied}"
    );
    assert!(reapplied.contains("service/web unchanged"), "{reapplied}");
    assert_eq!(
        k.jsonpath(&["deploy", "web"], "{.spec.replicas} {.metadata.uid}"),
        format!("2 {uid}")
    );

    // Server-side apply, twice: the second drops a label the first set.
    let ssa = control.data_dir().join("ssa.yaml");
    let cm = |labels: &str| {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: ssa\n  labels: {{{labels}}}\nspec:\n  selector: {{app: web}}\n  ports:\n  - port: 81\n"
        )
    };
    std::fs::write(&ssa, cm("a: '1', b: '2'")).unwrap();
    let out = k.ok(&["apply", "--server-side", "-f", ssa.to_str().unwrap()]);
    assert_eq!(out.trim(), "service/ssa serverside-applied");
    std::fs::write(&ssa, cm("a: '1'")).unwrap();
    k.ok(&["apply", "--server-side", "-f", ssa.to_str().unwrap()]);
    assert_eq!(
        k.jsonpath(&["svc", "ssa"], "{.metadata.labels}"),
        r#"{"a":"1"}"#
    );

    // label, annotate, and the three patch types.
    assert_eq!(
        k.ok(&["label", "pod", "client", "tier=front"]).trim(),
        "pod/client labeled"
    );
    assert_eq!(
        k.ok(&["annotate", "pod", "client", "note=hi"]).trim(),
        "pod/client annotated"
    );
    assert_eq!(
        k.jsonpath(
            &["pod", "client"],
            "{.metadata.labels.tier} {.metadata.annotations.note}"
        ),
        "front hi"
    );
    k.ok(&[
        "patch",
        "svc",
        "web",
        "--type=merge",
        "-p",
        r#"{"metadata":{"labels":{"m":"1"}}}"#,
    ]);
    k.ok(&[
        "patch",
        "svc",
        "web",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/metadata/labels/j","value":"2"}]"#,
    ]);
    k.ok(&[
        "patch",
        "deploy",
        "web",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"server","env":[{"name":"A","value":"1"}]}]}}}}"#,
    ]);
    assert_eq!(
        k.jsonpath(&["svc", "web"], "{.metadata.labels.m}{.metadata.labels.j}"),
        "12"
    );
    assert_eq!(
        k.jsonpath(&["deploy", "web"], "{.spec.template.spec.containers[0].name} {.spec.template.spec.containers[0].env[0].name}"),
        "server A"
    );

    // scale (the scale subresource), set image, rollout status / restart, wait.
    assert_eq!(
        k.ok(&["scale", "deploy", "web", "--replicas=3"]).trim(),
        "deployment.apps/web scaled"
    );
    assert_eq!(k.jsonpath(&["deploy", "web"], "{.spec.replicas}"), "3");
    assert_eq!(
        k.ok(&[
            "set",
            "image",
            "deploy/web",
            "server=registry.keel.test/keel-testbin:v2"
        ])
        .trim(),
        "deployment.apps/web image updated"
    );
    let status = k.ok(&["rollout", "status", "deploy/web", "--timeout=60s"]);
    assert!(status.contains("successfully rolled out"), "{status}");
    assert!(
        k.jsonpath(
            &["pods", "-l", "app=web"],
            "{.items[*].spec.containers[0].image}"
        )
        .split(' ')
        .all(|i| i == "registry.keel.test/keel-testbin:v2")
    );
    // History and undo, through the ReplicaSets derived from the
    // Deployment's revisions.
    let history = k.ok(&["rollout", "history", "deploy/web"]);
    let revisions: Vec<&str> = history
        .lines()
        .skip_while(|l| !l.starts_with("REVISION"))
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(revisions.len() >= 2, "{history}");
    let rs = k.ok(&["get", "rs", "-l", "app=web"]);
    assert_eq!(header(&rs), ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]);
    assert_eq!(
        k.ok(&["rollout", "undo", "deploy/web"]).trim(),
        "deployment.apps/web rolled back"
    );
    assert_eq!(
        k.jsonpath(
            &["deploy", "web"],
            "{.spec.template.spec.containers[0].image}"
        ),
        "registry.keel.test/keel-testbin:latest"
    );
    let status = k.ok(&["rollout", "status", "deploy/web", "--timeout=60s"]);
    assert!(status.contains("successfully rolled out"), "{status}");

    // pause / resume: a paused Deployment keeps its pods through a template
    // change, and rolls once resumed.
    assert_eq!(
        k.ok(&["rollout", "pause", "deploy/web"]).trim(),
        "deployment.apps/web paused"
    );
    k.ok(&[
        "set",
        "image",
        "deploy/web",
        "server=registry.keel.test/keel-testbin:v2",
    ]);
    let paused_reason = || {
        k.jsonpath(
            &["deploy", "web"],
            "{.status.conditions[?(@.type==\"Progressing\")].reason}",
        )
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while paused_reason() != "DeploymentPaused" {
        assert!(Instant::now() < deadline, "no DeploymentPaused condition");
        std::thread::sleep(Duration::from_millis(100));
    }
    let images = || {
        k.jsonpath(
            &["pods", "-l", "app=web"],
            "{.items[*].spec.containers[0].image}",
        )
    };
    assert!(
        images()
            .split(' ')
            .all(|i| i == "registry.keel.test/keel-testbin:latest"),
        "paused, yet rolled: {}",
        images()
    );
    let restart = k.run(&["rollout", "restart", "deploy/web"]);
    assert!(
        restart.err.contains("can't restart paused deployment"),
        "kubectl reads spec.paused: {}",
        restart.err
    );
    assert_eq!(
        k.ok(&["rollout", "resume", "deploy/web"]).trim(),
        "deployment.apps/web resumed"
    );
    let status = k.ok(&["rollout", "status", "deploy/web", "--timeout=60s"]);
    assert!(status.contains("successfully rolled out"), "{status}");
    assert!(
        images()
            .split(' ')
            .all(|i| i == "registry.keel.test/keel-testbin:v2"),
        "{}",
        images()
    );
    // revisionHistoryLimit bounds what `rollout history` keeps.
    k.ok(&[
        "patch",
        "deploy/web",
        "-p",
        r#"{"spec":{"revisionHistoryLimit":1}}"#,
    ]);
    let history = k.ok(&["rollout", "history", "deploy/web"]);
    let kept = history
        .lines()
        .skip_while(|l| !l.starts_with("REVISION"))
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .count();
    assert_eq!(kept, 2, "the current revision and one old one: {history}");

    assert_eq!(
        k.ok(&["rollout", "restart", "deploy/web"]).trim(),
        "deployment.apps/web restarted"
    );
    assert!(
        !k.jsonpath(
            &["deploy", "web"],
            "{.spec.template.metadata.annotations.kubectl\\.kubernetes\\.io/restartedAt}"
        )
        .is_empty()
    );
    let waited = k.ok(&[
        "wait",
        "--for=condition=Available",
        "deploy/web",
        "--timeout=60s",
    ]);
    assert_eq!(waited.trim(), "deployment.apps/web condition met");
    let waited = k.ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/client",
        "--timeout=20s",
    ]);
    assert_eq!(waited.trim(), "pod/client condition met");

    // describe.
    let described = k.ok(&["describe", "deploy", "web"]);
    assert!(
        described.contains("Name:") && described.contains("web") && described.contains("Replicas:"),
        "{described}"
    );
    let described = k.ok(&["describe", "pod", "client"]);
    assert!(
        described.contains("Node:") && described.contains("node-1"),
        "{described}"
    );

    // run and expose (kubectl's own generators), get -w briefly.
    let run = k.run(&[
        "run",
        "one",
        "--image=busybox",
        "--labels=job=one",
        "--",
        "sleep",
        "100",
    ]);
    assert_eq!(run.out.trim(), "pod/one created", "{}", run.err);
    // kubectl run sends dnsPolicy, which keel implements: kept, no warning.
    assert!(!run.err.contains("spec.dnsPolicy"), "{}", run.err);
    assert_eq!(
        k.ok(&["get", "pod", "one", "-o", "jsonpath={.spec.dnsPolicy}"])
            .trim(),
        "ClusterFirst"
    );
    assert_eq!(
        k.ok(&["expose", "deploy", "web", "--port=8080", "--name=web-8080"])
            .trim(),
        "service/web-8080 exposed"
    );
    assert_eq!(
        k.jsonpath(&["svc", "web-8080"], "{.spec.selector.app}"),
        "web"
    );
    // kubectl's typed clients send protobuf.
    assert_eq!(
        k.ok(&[
            "create",
            "deployment",
            "nginx",
            "--image=nginx:1",
            "--replicas=2",
            "--port=80"
        ])
        .trim(),
        "deployment.apps/nginx created"
    );
    assert_eq!(
        k.jsonpath(&["deploy", "nginx"], "{.spec.replicas} {.spec.template.spec.containers[0].image} {.spec.template.spec.containers[0].ports[0].containerPort}"),
        "2 nginx:1 80"
    );
    assert_eq!(
        k.ok(&["create", "service", "nodeport", "np", "--tcp=80:8080"])
            .trim(),
        "service/np created"
    );
    assert_eq!(
        k.jsonpath(&["svc", "np"], "{.spec.type} {.spec.ports[0].targetPort}"),
        "NodePort 8080"
    );
    let watch = k.run(&["get", "pods", "-l", "job=one", "-w", "--request-timeout=2s"]);
    assert_eq!(
        header(&watch.out),
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    );
    assert!(
        watch.out.lines().any(|l| l.starts_with("one ")),
        "{}",
        watch.out
    );

    // Server dry runs write nothing.
    let dry = k.ok(&["delete", "pod", "one", "--dry-run=server"]);
    assert_eq!(dry.trim(), r#"pod "one" deleted (server dry run)"#);
    k.ok(&["get", "pod", "one"]);
    let dry = k.ok(&["apply", "-f", ssa.to_str().unwrap(), "--dry-run=server"]);
    assert!(dry.contains("(server dry run)"), "{dry}");

    // delete -l, delete -f, wait --for=delete.
    let deleted = k.ok(&["delete", "pod", "-l", "job=one"]);
    assert_eq!(deleted.trim(), r#"pod "one" deleted"#);
    let deleted = k.ok(&[
        "delete",
        "-f",
        examples().join("client.yaml").to_str().unwrap(),
    ]);
    assert_eq!(deleted.trim(), r#"pod "client" deleted"#);
    let gone = k.run(&["wait", "--for=delete", "pod/client", "--timeout=5s"]);
    assert_eq!(gone.code, 0, "{}", gone.err);
    assert!(
        k.ok(&["get", "pods", "-o", "name"])
            .lines()
            .all(|l| l != "pod/client")
    );

    // keelctl where it overlaps with kubectl.
    let keelctl = |args: &[&str]| {
        let out = Command::new(bin("keelctl"))
            .arg("--config")
            .arg(control.client_config_path())
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, names, _) = keelctl(&["get", "deploy,svc", "-o", "name"]);
    assert!(ok);
    assert!(
        names.lines().any(|l| l == "deployment.apps/web")
            && names.lines().any(|l| l == "service/np"),
        "{names}"
    );
    let (ok, out, err) = keelctl(&["delete", "svc", "-l", "app=np"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "service/np deleted");
    let (ok, out, err) = keelctl(&[
        "delete",
        "-f",
        examples().join("web.yaml").to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("deployment/web deleted") && out.contains("service/web-nodeport deleted"),
        "{out}"
    );
    let (ok, script, _) = keelctl(&["completion", "bash"]);
    assert!(ok && script.contains("_keelctl()") && script.contains("kubeconfig"));
    let empty = control.data_dir().join("empty.yaml");
    std::fs::write(&empty, "# nothing\n").unwrap();
    let (ok, _, err) = keelctl(&["apply", "-f", empty.to_str().unwrap()]);
    assert!(!ok && err.contains("no objects passed to apply"), "{err}");

    config_maps_and_secrets(&k);
    manifest_corpus(&k, &keelctl);
    agent.abort();
    let log = control.log();
    assert!(
        !log.contains("hunter2"),
        "a Secret's value in keel-control's log"
    );
    assert!(
        log.lines().any(|l| l.contains("keel_control::request")
            && l.contains("method=POST")
            && l.contains("/api/v1/namespaces/default/pods")
            && l.contains("code=201")),
        "requests are logged:\n{log}"
    );
}

/// What the Python `kubernetes` client (client-go's sibling, from
/// Debian's python3-kubernetes, which `cargo xtask setup` installs) does
/// against keel-control: create, list, watch resumed from a
/// resourceVersion, patch. Prints one JSON object for the test to check.
const PYTHON_CLIENT: &str = r#"
import json, kubernetes
from kubernetes import client, config, watch
config.load_kube_config()
v1 = client.CoreV1Api()
def pod(name):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "py"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
out = {}
out["created"] = v1.create_namespaced_pod("default", pod("py-a")).metadata.name
listed = v1.list_namespaced_pod("default", label_selector="app=py")
out["listed"] = [p.metadata.name for p in listed.items]
rv = listed.metadata.resource_version
v1.create_namespaced_pod("default", pod("py-b"))
patched = v1.patch_namespaced_pod("py-a", "default", {"metadata": {"labels": {"patched": "yes"}}})
out["patched"] = patched.metadata.labels.get("patched")
events = []
w = watch.Watch()
for e in w.stream(v1.list_namespaced_pod, "default", label_selector="app=py", resource_version=rv, timeout_seconds=2):
    o = e["object"]
    events.append([e["type"], o.metadata.name])
    if (o.metadata.labels or {}).get("patched") == "yes" or len(events) == 10:
        w.stop()
out["resumed"] = events
print(json.dumps(out))
"#;

#[tokio::test]
async fn the_python_kubernetes_client_lists_watches_creates_and_patches() {
    let python = Path::new("/usr/bin/python3");
    let has_client = Command::new(python)
        .args(["-c", "import kubernetes"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_client {
        eprintln!(
            "SKIPPED: /usr/bin/python3 has no `kubernetes` module (Debian's python3-kubernetes; `cargo xtask setup` installs it)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let control = ControlProcess::start(&[
        "--tls-cert",
        cert_path.to_str().unwrap(),
        "--tls-key",
        key_path.to_str().unwrap(),
    ]);
    let kubeconfig = control.data_dir().join("kubeconfig");
    let status = Command::new(bin("keelctl"))
        .arg("--config")
        .arg(control.client_config_path())
        .args(["kubeconfig", "-o"])
        .arg(&kubeconfig)
        .status()
        .unwrap();
    assert!(status.success());
    let out = Command::new(python)
        .args(["-c", PYTHON_CLIENT])
        .env("KUBECONFIG", &kubeconfig)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got["created"], "py-a");
    assert_eq!(got["listed"], json!(["py-a"]));
    assert_eq!(got["patched"], "yes");
    // The watch resumed after the list: it sees what came after (py-b's
    // creation, the scheduler's status writes, the patch of py-a), not
    // py-a's creation.
    let events = got["resumed"].as_array().unwrap();
    assert!(events.contains(&json!(["ADDED", "py-b"])), "{events:?}");
    assert_eq!(
        events.last().unwrap(),
        &json!(["MODIFIED", "py-a"]),
        "{events:?}"
    );
    assert!(!events.contains(&json!(["ADDED", "py-a"])), "{events:?}");
}

/// ConfigMaps and Secrets as kubectl makes and shows them.
fn config_maps_and_secrets(k: &Kubectl) {
    let resources = k.ok(&["api-resources"]);
    assert!(
        resources.lines().any(
            |l| l.split_whitespace().collect::<Vec<_>>() == ["secrets", "v1", "true", "Secret"]
        ),
        "{resources}"
    );
    k.ok(&[
        "create",
        "configmap",
        "app",
        "--from-literal=MODE=fast",
        "--from-literal=LEVEL=3",
    ]);
    k.ok(&[
        "create",
        "secret",
        "generic",
        "db",
        "--from-literal=password=hunter2",
    ]);
    k.ok(&[
        "create",
        "secret",
        "docker-registry",
        "regcred",
        "--docker-server=registry.example",
        "--docker-username=u",
        "--docker-password=p",
    ]);
    let out = k.ok(&["get", "cm", "app"]);
    assert_eq!(header(&out), ["NAME", "DATA", "AGE"], "{out}");
    assert!(out.lines().nth(1).unwrap().starts_with("app "), "{out}");
    assert_eq!(
        out.lines().nth(1).unwrap().split_whitespace().nth(1),
        Some("2"),
        "{out}"
    );
    let out = k.ok(&["get", "secrets"]);
    assert_eq!(header(&out), ["NAME", "TYPE", "DATA", "AGE"], "{out}");
    let row = |name: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>())
    };
    assert_eq!(row("db"), Some(vec!["db", "Opaque", "1"]), "{out}");
    assert_eq!(
        row("regcred"),
        Some(vec!["regcred", "kubernetes.io/dockerconfigjson", "1"]),
        "{out}"
    );
    assert!(!out.contains("hunter2"), "{out}");
    assert_eq!(
        k.jsonpath(&["secret", "db"], "{.data.password}"),
        "aHVudGVyMg=="
    );
    assert_eq!(k.jsonpath(&["configmap", "app"], "{.data.MODE}"), "fast");
    let out = k.ok(&["describe", "secret", "db"]);
    assert!(out.contains("password:  7 bytes"), "{out}");
    assert!(!out.contains("hunter2"), "{out}");
    // Immutable means immutable.
    k.ok(&["patch", "configmap", "app", "-p", r#"{"immutable":true}"#]);
    let r = k.run(&[
        "patch",
        "configmap",
        "app",
        "-p",
        r#"{"data":{"MODE":"slow"}}"#,
    ]);
    assert_ne!(r.code, 0, "{}", r.out);
    assert!(r.err.contains("immutable"), "{}", r.err);
    k.ok(&["delete", "configmap", "app"]);
    k.ok(&["delete", "secret", "db", "regcred"]);

    // Finalizers: a DELETE marks the object and it stays until the last
    // finalizer is removed; a pod waiting so shows as Terminating.
    k.ok(&["create", "configmap", "held", "--from-literal=a=b"]);
    k.ok(&[
        "patch",
        "configmap",
        "held",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":["keel.test/hold"]}}"#,
    ]);
    assert_eq!(
        k.ok(&["delete", "configmap", "held", "--wait=false"])
            .trim(),
        "configmap \"held\" deleted"
    );
    assert!(
        !k.jsonpath(&["configmap", "held"], "{.metadata.deletionTimestamp}")
            .is_empty()
    );
    let late = k.run(&[
        "patch",
        "configmap",
        "held",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/metadata/finalizers/-","value":"keel.test/late"}]"#,
    ]);
    assert!(
        late.err
            .contains("no new finalizers can be added if the object is being deleted"),
        "{}",
        late.err
    );
    k.ok(&[
        "patch",
        "configmap",
        "held",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ]);
    let gone = k.run(&["get", "configmap", "held"]);
    assert!(gone.err.contains("not found"), "{}", gone.err);
    k.ok(&["run", "held", "--image=busybox"]);
    k.ok(&[
        "patch",
        "pod",
        "held",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":["keel.test/hold"]}}"#,
    ]);
    k.ok(&["delete", "pod", "held", "--wait=false"]);
    let table = k.ok(&["get", "pod", "held", "--no-headers"]);
    assert!(table.contains("Terminating"), "{table}");
    k.ok(&[
        "patch",
        "pod",
        "held",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    let gone = k.run(&["get", "pod", "held"]);
    assert!(gone.err.contains("not found"), "{}", gone.err);
}

/// A command's success, stdout and stderr.
type Outcome = (bool, String, String);

/// The corpus (`examples/corpus`): manifests as the Kubernetes
/// documentation writes them apply unchanged; the fields keel does not act
/// on are named in warnings, kept, returned, carried into the pods and the
/// ReplicaSets, and a second apply changes nothing.
fn manifest_corpus(k: &Kubectl, keelctl: &dyn Fn(&[&str]) -> Outcome) {
    let corpus = examples().join("corpus");
    let corpus = corpus.to_str().unwrap();
    let r = k.run(&["apply", "-f", corpus]);
    assert_eq!(r.code, 0, "stdout: {}\nstderr: {}", r.out, r.err);
    for line in [
        "configmap/guestbook-config created",
        "secret/guestbook-secret created",
        "deployment.apps/guestbook created",
        "service/guestbook created",
    ] {
        assert!(r.out.contains(line), "{line} in {}", r.out);
    }
    for path in [
        "spec.progressDeadlineSeconds",
        "spec.template.spec.schedulerName",
        "spec.template.spec.tolerations",
        "spec.template.spec.affinity",
        "spec.template.spec.securityContext.fsGroup",
        "spec.template.spec.containers[0].terminationMessagePath",
        "spec.template.spec.containers[0].terminationMessagePolicy",
        "spec.ipFamilyPolicy",
        "spec.ipFamilies",
        "spec.ports[0].appProtocol",
    ] {
        let want = format!("Warning: {path}: keel does not act on this field; it is kept as sent");
        assert!(r.err.contains(&want), "{want} in\n{}", r.err);
    }
    // Nothing else is warned about: keel acts on the rest
    // (`revisionHistoryLimit` and `internalTrafficPolicy` included).
    assert_eq!(r.err.lines().count(), 10, "{}", r.err);

    // get -o json returns them as sent.
    let d: Value =
        serde_json::from_str(&k.ok(&["get", "deploy", "guestbook", "-o", "json"])).unwrap();
    let spec = &d["spec"]["template"]["spec"];
    assert_eq!(d["spec"]["revisionHistoryLimit"], 10, "{d}");
    assert_eq!(spec["schedulerName"], "default-scheduler", "{d}");
    assert_eq!(
        spec["tolerations"],
        json!([{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                "effect": "NoExecute", "tolerationSeconds": 300}])
    );
    assert_eq!(
        spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["weight"],
        100
    );
    assert_eq!(
        spec["containers"][0]["terminationMessagePath"],
        "/dev/termination-log"
    );
    let svc: Value =
        serde_json::from_str(&k.ok(&["get", "svc", "guestbook", "-o", "json"])).unwrap();
    assert_eq!(svc["spec"]["ipFamilies"], json!(["IPv4"]), "{svc}");
    assert_eq!(svc["spec"]["ports"][0]["appProtocol"], "http", "{svc}");

    // The pods made from the template carry them, as Kubernetes' do, and
    // so does the ReplicaSet of the revision.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = k.jsonpath(&["deploy", "guestbook"], "{.status.readyReplicas}");
        if got == "2" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "guestbook: ready {got:?}, want 2"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let pods: Value =
        serde_json::from_str(&k.ok(&["get", "pods", "-l", "app=guestbook", "-o", "json"])).unwrap();
    let items = pods["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{pods}");
    for p in items {
        assert_eq!(p["spec"]["tolerations"], spec["tolerations"], "{p}");
        assert_eq!(p["spec"]["schedulerName"], "default-scheduler", "{p}");
        assert_eq!(
            p["spec"]["containers"][0]["terminationMessagePolicy"], "File",
            "{p}"
        );
    }
    let rs: Value =
        serde_json::from_str(&k.ok(&["get", "rs", "-l", "app=guestbook", "-o", "json"])).unwrap();
    assert_eq!(
        rs["items"][0]["spec"]["template"]["spec"]["tolerations"], spec["tolerations"],
        "{rs}"
    );

    // Round trip: nothing to diff, and a second apply changes nothing.
    let diff = k.run(&["diff", "-f", corpus]);
    assert_eq!(
        (diff.code, diff.out.as_str()),
        (0, ""),
        "kubectl diff after apply: {}",
        diff.err
    );
    let again = k.ok(&["apply", "-f", corpus]);
    for line in [
        "configmap/guestbook-config unchanged",
        "secret/guestbook-secret unchanged",
        "deployment.apps/guestbook unchanged",
        "service/guestbook unchanged",
    ] {
        assert!(again.contains(line), "{line} in {again}");
    }

    // Server-side apply of the same files keeps them too.
    let ssa = k.run(&["apply", "--server-side", "--force-conflicts", "-f", corpus]);
    assert_eq!(ssa.code, 0, "stdout: {}\nstderr: {}", ssa.out, ssa.err);
    assert!(
        ssa.out
            .contains("deployment.apps/guestbook serverside-applied"),
        "{}",
        ssa.out
    );
    assert!(
        ssa.err
            .contains("Warning: spec.template.spec.affinity: keel does not act on this field"),
        "{}",
        ssa.err
    );
    assert_eq!(
        k.jsonpath(
            &["deploy", "guestbook"],
            "{.spec.template.spec.containers[0].terminationMessagePath}"
        ),
        "/dev/termination-log"
    );

    // keelctl apply reads the same files and prints the same warnings.
    let (ok, out, err) = keelctl(&["apply", "-f", corpus]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("deployment/guestbook "), "{out}");
    assert!(
        err.contains("Warning: spec.template.spec.tolerations: keel does not act on this field"),
        "{err}"
    );
    assert!(
        err.contains("Warning: spec.ipFamilyPolicy: keel does not act on this field"),
        "{err}"
    );

    // A field Kubernetes has only elsewhere is refused with its path.
    let wrong = k.run(&[
        "patch",
        "deploy",
        "guestbook",
        "--type=json",
        "-p",
        r#"[{"op": "add", "path": "/spec/template/spec/containers/0/tolerations", "value": []}]"#,
    ]);
    assert_ne!(wrong.code, 0, "{}", wrong.out);
    assert!(
        wrong.err.contains("spec.template.spec.containers[0]")
            && wrong.err.contains("unknown field `tolerations`"),
        "{}",
        wrong.err
    );
    k.ok(&["delete", "-f", corpus]);
}
