//! ConfigMaps, Secrets and what uses them, end to end in one lab (one node,
//! keel's runtime): objects made with `keelctl apply` (a Secret's value
//! shown by neither `keelctl get` nor `describe`); a container's
//! environment from a ConfigMap key, a Secret key, `envFrom` with a prefix,
//! `fieldRef` (pod IP, node name), `$(VAR)` expansion and the variables of
//! an existing Service, read with `env` inside the container; a configMap
//! volume whose file changes in the running container after `keelctl
//! apply` of a new value; a secret volume with its mode; a pod referencing
//! a missing ConfigMap waits with `CreateContainerConfigError` naming it
//! and starts by itself once the ConfigMap is made; an image from a
//! registry that needs basic auth (a second docker-registry with htpasswd
//! auth over the lab registry's storage) is refused without a pull Secret
//! and pulled with one. No log of keel-control or the agent holds the
//! Secret's value. A `subPathExpr` mount lands in the directory its
//! expansion names; a HostToContainer mount of a hostPath shows a mount the
//! node makes after the container started (a plain one does not); a
//! hostPID pod on this node (no `--allow-privileged`) waits with
//! `CreateContainerConfigError` naming `spec.hostPID`.

use std::{
    collections::BTreeMap,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use keel_api::{Pod, Service};
use keel_lab::{Bins, Lab, LabGuard, Mode, Options, Spec, block_on, topology::Topology};
use keel_tests::{process::bin, process::wait_for, require_root};
use serde_json::json;

const IMAGE: &str = "registry.keel.test/keel-testbin:latest";
const PASSWORD: &str = "hunter2-s3cret";
/// The registry that needs credentials: its port on the control namespace's address.
const AUTH_PORT: u16 = 5099;
const PULL_USER: &str = "keel";
const PULL_PASSWORD: &str = "pull-s3cret";

/// A process in a namespace, ended by PID on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// docker-registry with htpasswd auth (a bcrypt hash made by perl's crypt,
/// libxcrypt's bcrypt), serving the lab registry's storage read-only.
fn auth_registry(lab: &Lab, netns: &str, host: &str) -> Proc {
    let dir = lab.state.dir.join("auth-registry");
    std::fs::create_dir_all(&dir).unwrap();
    let hash = Command::new("perl")
        .args([
            "-e",
            &format!("print crypt(q{{{PULL_PASSWORD}}}, q{{$2b$05$abcdefghijklmnopqrstuu}})"),
        ])
        .output()
        .expect("perl");
    let hash = String::from_utf8(hash.stdout).unwrap();
    assert!(
        hash.starts_with("$2b$05$"),
        "bcrypt from perl's crypt: {hash:?}"
    );
    std::fs::write(dir.join("htpasswd"), format!("{PULL_USER}:{hash}\n")).unwrap();
    let cfg = dir.join("config.yml");
    std::fs::write(
        &cfg,
        format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  maintenance:\n    uploadpurging:\n      enabled: false\n    readonly:\n      enabled: true\nhttp:\n  addr: {host}\nauth:\n  htpasswd:\n    realm: keel-test\n    path: {}\n",
            lab.state.dir.join("registry").join("data").display(),
            dir.join("htpasswd").display()
        ),
    )
    .unwrap();
    let child = Command::new("ip")
        .args(["netns", "exec", netns, "/usr/bin/docker-registry", "serve"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("registry.log")).unwrap())
        .spawn()
        .expect("docker-registry");
    let p = Proc(child);
    wait_for(
        "the auth registry listening",
        Duration::from_secs(20),
        || {
            Command::new("ip")
                .args(["netns", "exec", netns, "bash", "-c"])
                .arg(format!("echo > /dev/tcp/{}", host.replace(':', "/")))
                .stderr(Stdio::null())
                .status()
                .ok()
                .filter(|s| s.success())
        },
    );
    p
}

/// A directory bound on itself and made a shared mount; unmounted (with
/// whatever was mounted under it) on drop.
struct SharedMount(std::path::PathBuf);

impl SharedMount {
    fn new(dir: &std::path::Path) -> Self {
        let run = |args: &[&str]| {
            let ok = Command::new("mount")
                .args(args)
                .arg(dir)
                .arg(dir)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "mount {args:?} {}", dir.display());
        };
        run(&["--bind"]);
        let me = SharedMount(dir.to_path_buf());
        let ok = Command::new("mount")
            .arg("--make-shared")
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "mount --make-shared {}", dir.display());
        me
    }
}

impl Drop for SharedMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-R").arg(&self.0).status();
    }
}

fn keelctl(lab: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(bin("keelctl"))
        .args(["--lab", lab])
        .args(args)
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

fn exec(lab: &str, pod: &str, cmd: &[&str]) -> (bool, String) {
    let mut args = vec!["exec", pod, "--"];
    args.extend_from_slice(cmd);
    keelctl(lab, &args)
}

/// `keelctl apply -f` of `docs` (JSON objects) written to a file in `dir`.
fn apply(lab: &str, dir: &std::path::Path, docs: &[serde_json::Value]) {
    let path = dir.join("objects.yaml");
    let text: Vec<String> = docs.iter().map(|d| d.to_string()).collect();
    std::fs::write(&path, text.join("\n---\n")).unwrap();
    let (ok, out) = keelctl(lab, &["apply", "-f", path.to_str().unwrap()]);
    assert!(ok, "keelctl apply: {out}");
}

fn config_map(app_conf: &str) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": "app-config", "namespace": "default"},
           "data": {"MODE": "fast", "LEVEL": "3", "app.conf": app_conf}})
}

fn env_of(lab: &str, pod: &str) -> BTreeMap<String, String> {
    let (ok, out) = exec(lab, pod, &["env"]);
    assert!(ok, "env: {out}");
    out.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn config_maps_and_secrets_reach_env_and_volumes() {
    require_root();
    let name = format!("tcfg{}", std::process::id() % 100_000);
    let spec = Spec {
        name: name.clone(),
        nodes: 1,
        mode: Mode::Route,
        segments: 1,
    };
    let control = Topology::plan(&spec).unwrap().control;
    let auth_host = format!("{}:{AUTH_PORT}", control.ip);
    let dir = tempfile::Builder::new()
        .prefix("keel-t-cfg-")
        .tempdir()
        .unwrap();
    // The node's credentials file: absent at first (no credentials).
    let node_creds = dir.path().join("registry-credentials.json");
    // A host path the agent allows, a shared mount of its own (a bind of
    // the test's directory on itself, removed on drop after the lab), so
    // HostToContainer propagation has something to propagate from.
    let host_dir = dir.path().join("host");
    std::fs::create_dir(&host_dir).unwrap();
    let _shared = SharedMount::new(&host_dir);
    let opts = Options {
        runtime: true,
        agent_args: vec![
            "--insecure-registry".into(),
            auth_host.clone(),
            "--registry-credentials".into(),
            node_creds.display().to_string(),
            "--allow-host-path".into(),
            host_dir.display().to_string(),
        ],
        ..Default::default()
    };
    let bins = Bins::beside_current_exe().expect("binaries");
    let guard = LabGuard(Lab::up(&spec, &bins, &opts).expect("lab up"));
    let lab = &guard.0;
    let c = lab.client().unwrap();

    apply(
        &name,
        dir.path(),
        &[
            config_map("v1"),
            json!({"apiVersion": "v1", "kind": "Secret",
                   "metadata": {"name": "db", "namespace": "default"},
                   "stringData": {"password": PASSWORD}}),
            json!({"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": "redis-main", "namespace": "default"},
                   "spec": {"ports": [{"name": "redis", "port": 6379}]}}),
        ],
    );
    // Neither get nor describe shows the Secret's value.
    let (ok, out) = keelctl(&name, &["get", "secrets"]);
    assert!(ok && out.contains("db") && out.contains("Opaque"), "{out}");
    let (ok, out) = keelctl(&name, &["describe", "secret", "db"]);
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("password:  {} bytes", PASSWORD.len())),
        "{out}"
    );
    let (_, got) = keelctl(&name, &["get", "configmaps"]);
    assert!(got.contains("app-config"), "{got}");
    for out in [&out, &got] {
        assert!(!out.contains(PASSWORD), "{out}");
    }

    let app: Pod = serde_json::from_value(json!({
        "metadata": {"name": "app", "namespace": "default", "labels": {"app": "demo"},
                     "annotations": {"note": "say \"hi\""}},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "app", "image": IMAGE, "command": ["sleep", "1000000"],
                "resources": {"limits": {"memory": "128Mi"}},
                "envFrom": [{"prefix": "CFG_", "configMapRef": {"name": "app-config"}}],
                "env": [
                    {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "MODE"}}},
                    {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
                    {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                    {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                    {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                    {"name": "URL", "value": "redis://$(REDIS_MAIN_SERVICE_HOST):$(REDIS_MAIN_SERVICE_PORT)/$(MODE)"},
                    {"name": "MISSING_OK", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k", "optional": true}}}
                ],
                "volumeMounts": [
                    {"name": "config", "mountPath": "/etc/config"},
                    {"name": "config", "mountPath": "/etc/pinned.conf", "subPath": "app.conf"},
                    {"name": "creds", "mountPath": "/etc/creds", "readOnly": true},
                    {"name": "all", "mountPath": "/etc/all"},
                    {"name": "info", "mountPath": "/etc/info"}
                ]
            }],
            "volumes": [
                {"name": "config", "configMap": {"name": "app-config"}},
                {"name": "creds", "secret": {"secretName": "db", "defaultMode": 0o400}},
                {"name": "all", "projected": {"sources": [
                    {"configMap": {"name": "app-config", "items": [{"key": "LEVEL", "path": "cfg/level", "mode": 0o600}]}},
                    {"secret": {"name": "db"}},
                    {"downwardAPI": {"items": [{"path": "pod/name", "fieldRef": {"fieldPath": "metadata.name"}}]}}]}},
                {"name": "info", "downwardAPI": {"defaultMode": 0o440, "items": [
                    {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                    {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}},
                    {"path": "app", "fieldRef": {"fieldPath": "metadata.labels['app']"}},
                    {"path": "mem", "resourceFieldRef": {"containerName": "app", "resource": "limits.memory", "divisor": "1Mi"}}]}}
            ]
        }
    }))
    .unwrap();
    block_on(c.create(&app)).expect("app pod");
    let app = wait_for("the app pod Ready", Duration::from_secs(180), || {
        block_on(c.get::<Pod>("default", "app"))
            .ok()
            .filter(Pod::is_ready)
    });
    let svc = block_on(c.get::<Service>("default", "redis-main")).unwrap();

    // The environment, from inside the container.
    let env = env_of(&name, "app");
    let want = [
        ("MODE", "fast".to_string()),
        ("DB_PASSWORD", PASSWORD.to_string()),
        ("CFG_MODE", "fast".to_string()),
        ("CFG_LEVEL", "3".to_string()),
        ("CFG_app.conf", "v1".to_string()),
        ("POD_IP", app.status.pod_ip.clone()),
        ("NODE", app.spec.node_name.clone()),
        ("APP", "demo".to_string()),
        ("URL", format!("redis://{}:6379/fast", svc.spec.cluster_ip)),
        ("REDIS_MAIN_SERVICE_HOST", svc.spec.cluster_ip.clone()),
        ("REDIS_MAIN_SERVICE_PORT", "6379".to_string()),
        ("REDIS_MAIN_SERVICE_PORT_REDIS", "6379".to_string()),
        (
            "REDIS_MAIN_PORT_6379_TCP",
            format!("tcp://{}:6379", svc.spec.cluster_ip),
        ),
        ("REDIS_MAIN_PORT_6379_TCP_PROTO", "tcp".to_string()),
    ];
    for (k, v) in &want {
        assert_eq!(env.get(*k), Some(v), "{k} in {env:?}");
    }
    assert!(env.contains_key("KUBERNETES_SERVICE_HOST"), "{env:?}");
    assert!(!env.contains_key("MISSING_OK"), "{env:?}");

    // The volumes: the kubelet's layout, the secret's mode.
    let (ok, out) = exec(&name, "app", &["cat", "/etc/config/app.conf"]);
    assert!(ok && out == "v1", "{out}");
    let (ok, out) = exec(&name, "app", &["ls", "-a", "/etc/config"]);
    assert!(
        ok && out.contains("..data") && out.contains("MODE"),
        "{out}"
    );
    let (ok, out) = exec(&name, "app", &["ls", "-lL", "/etc/creds/password"]);
    assert!(ok && out.starts_with("-r--------"), "{out}");
    let (ok, out) = exec(&name, "app", &["cat", "/etc/creds/password"]);
    assert!(ok && out == PASSWORD, "{out}");
    let (ok, out) = exec(
        &name,
        "app",
        &["cat", "/etc/all/cfg/level", "/etc/all/password"],
    );
    assert!(ok && out == format!("3{PASSWORD}"), "{out}");
    let (ok, out) = exec(&name, "app", &["ls", "-lL", "/etc/all/cfg/level"]);
    assert!(ok && out.starts_with("-rw-------"), "{out}");
    // The secret volume is a tmpfs, the configMap one is not.
    let (ok, mounts) = exec(&name, "app", &["cat", "/proc/mounts"]);
    assert!(ok, "{mounts}");
    let fs_of = |dir: &str| {
        mounts
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(dir))
            .and_then(|l| l.split_whitespace().nth(2))
            .map(str::to_string)
    };
    assert_eq!(fs_of("/etc/creds").as_deref(), Some("tmpfs"), "{mounts}");
    assert_ne!(fs_of("/etc/config").as_deref(), Some("tmpfs"), "{mounts}");

    // A new value reaches the running container.
    let t0 = Instant::now();
    apply(&name, dir.path(), &[config_map("v2")]);
    wait_for(
        "the new app.conf in the running container",
        Duration::from_secs(60),
        || {
            let (ok, out) = exec(&name, "app", &["cat", "/etc/config/app.conf"]);
            (ok && out == "v2").then_some(())
        },
    );
    eprintln!("configMap volume updated in {:?}", t0.elapsed());
    // A subPath mount keeps the file it was made from, as in Kubernetes.
    let (ok, out) = exec(&name, "app", &["cat", "/etc/pinned.conf"]);
    assert!(ok && out == "v1", "{out}");
    // The downward API: the kubelet's files, and a label change reaching
    // the running container.
    let (ok, out) = exec(
        &name,
        "app",
        &[
            "cat",
            "/etc/info/labels",
            "/etc/info/app",
            "/etc/info/mem",
            "/etc/all/pod/name",
        ],
    );
    assert!(ok && out == "app=\"demo\"demo128app", "{out}");
    let (ok, out) = exec(&name, "app", &["cat", "/etc/info/annotations"]);
    assert!(ok && out.contains(r#"note="say \"hi\"""#), "{out}");
    let (ok, out) = exec(&name, "app", &["ls", "-lL", "/etc/info/labels"]);
    assert!(ok && out.starts_with("-r--r-----"), "{out}");
    let t0 = Instant::now();
    let mut p = block_on(c.get::<Pod>("default", "app")).unwrap();
    p.metadata.labels.insert("tier".into(), "front".into());
    p.metadata.resource_version.clear();
    block_on(c.update(&p)).expect("relabel the app pod");
    wait_for(
        "the new label in the running container",
        Duration::from_secs(30),
        || {
            let (ok, out) = exec(&name, "app", &["cat", "/etc/info/labels"]);
            (ok && out == "app=\"demo\"\ntier=\"front\"").then_some(())
        },
    );
    eprintln!("downwardAPI labels updated in {:?}", t0.elapsed());
    // The container kept running (no restart), its env as it started.
    let p = block_on(c.get::<Pod>("default", "app")).unwrap();
    assert_eq!(p.status.container_statuses[0].restart_count, 0);

    // A missing ConfigMap: CreateContainerConfigError naming it, then a start
    // once it exists.
    let waiter: Pod = serde_json::from_value(json!({
        "metadata": {"name": "waiter", "namespace": "default"},
        "spec": {"terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "w", "image": IMAGE, "command": ["sleep", "1000000"],
                    "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "late", "key": "x"}}}]}]}
    }))
    .unwrap();
    block_on(c.create(&waiter)).expect("waiter pod");
    let waiting = wait_for(
        "the waiter waiting with CreateContainerConfigError",
        Duration::from_secs(120),
        || {
            let p = block_on(c.get::<Pod>("default", "waiter")).ok()?;
            let w = p.status.container_statuses.first()?.state.waiting.clone()?;
            (w.reason == "CreateContainerConfigError").then_some(w)
        },
    );
    assert!(waiting.message.contains("\"late\""), "{}", waiting.message);
    let (ok, out) = keelctl(&name, &["get", "pods"]);
    assert!(ok && out.contains("CreateContainerConfigError"), "{out}");
    apply(
        &name,
        dir.path(),
        &[json!({"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": "late", "namespace": "default"}, "data": {"x": "here"}})],
    );
    wait_for("the waiter Ready", Duration::from_secs(60), || {
        block_on(c.get::<Pod>("default", "waiter"))
            .ok()
            .filter(Pod::is_ready)
    });
    assert_eq!(
        env_of(&name, "waiter").get("X").map(String::as_str),
        Some("here")
    );

    // The pod fields keel used to refuse. subPathExpr: a directory named
    // by the pod's name (from the env) in a hostPath; mountPropagation
    // HostToContainer: a mount the node makes under the hostPath after the
    // container started is visible inside, not through a mount of the same
    // volume without propagation.
    let prop: Pod = serde_json::from_value(json!({
        "metadata": {"name": "prop", "namespace": "default"},
        "spec": {"terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "c", "image": IMAGE, "command": ["sleep", "1000000"],
                    "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                    "volumeMounts": [
                        {"name": "host", "mountPath": "/mine", "subPathExpr": "by-pod/$(POD_NAME)"},
                        {"name": "host", "mountPath": "/live", "mountPropagation": "HostToContainer"},
                        {"name": "host", "mountPath": "/still"}]}],
                 "volumes": [{"name": "host", "hostPath": {"path": host_dir, "type": "Directory"}}]}
    }))
    .unwrap();
    block_on(c.create(&prop)).expect("prop pod");
    wait_for("the prop pod Ready", Duration::from_secs(60), || {
        block_on(c.get::<Pod>("default", "prop"))
            .ok()
            .filter(Pod::is_ready)
    });
    let (ok, out) = exec(&name, "prop", &["sh", "-c", "echo here > /mine/f"]);
    assert!(ok, "{out}");
    assert_eq!(
        std::fs::read_to_string(host_dir.join("by-pod/prop/f")).unwrap(),
        "here\n"
    );
    let late = host_dir.join("late");
    std::fs::create_dir(&late).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "keel-t-late"])
        .arg(&late)
        .status()
        .unwrap();
    assert!(mounted.success(), "mount a tmpfs under the host path");
    std::fs::write(late.join("f"), "late").unwrap();
    wait_for(
        "the node's later mount inside the container",
        Duration::from_secs(10),
        || {
            let (ok, out) = exec(&name, "prop", &["cat", "/live/late/f"]);
            (ok && out == "late").then_some(())
        },
    );
    let (ok, out) = exec(&name, "prop", &["ls", "/still/late"]);
    assert!(
        ok && out.trim().is_empty(),
        "no propagation without it: {out}"
    );
    block_on(c.delete::<Pod>("default", "prop")).unwrap();
    // hostPID on a node without --allow-privileged: the kubelet's
    // CreateContainerConfigError naming the field.
    let hostpid: Pod = serde_json::from_value(json!({
        "metadata": {"name": "hostpid", "namespace": "default"},
        "spec": {"terminationGracePeriodSeconds": 1, "hostPID": true,
                 "containers": [{"name": "c", "image": IMAGE, "command": ["sleep", "1000000"]}]}
    }))
    .unwrap();
    block_on(c.create(&hostpid)).expect("hostpid pod");
    let refused = wait_for(
        "the hostPID pod refused by the node",
        Duration::from_secs(60),
        || {
            let p = block_on(c.get::<Pod>("default", "hostpid")).ok()?;
            let w = p.status.container_statuses.first()?.state.waiting.clone()?;
            (w.reason == "CreateContainerConfigError").then_some(w)
        },
    );
    assert!(
        refused.message.contains("spec.hostPID") && refused.message.contains("--allow-privileged"),
        "{}",
        refused.message
    );
    block_on(c.delete::<Pod>("default", "hostpid")).unwrap();

    // A private registry: refused without credentials, pulled with them.
    let _registry = auth_registry(lab, &control.netns, &auth_host);
    let private = format!("{auth_host}/keel-testbin:latest");
    let pod_with = |name: &str, secrets: serde_json::Value| -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"terminationGracePeriodSeconds": 1, "imagePullSecrets": secrets,
                     "containers": [{"name": "c", "image": private, "command": ["sleep", "1000000"]}]}
        }))
        .unwrap()
    };
    block_on(c.create(&pod_with("nocreds", json!([])))).expect("nocreds pod");
    let refused = wait_for(
        "the pod without credentials failing to pull",
        Duration::from_secs(60),
        || {
            let p = block_on(c.get::<Pod>("default", "nocreds")).ok()?;
            let w = p.status.container_statuses.first()?.state.waiting.clone()?;
            matches!(w.reason.as_str(), "ErrImagePull" | "ImagePullBackOff").then_some(w)
        },
    );
    eprintln!(
        "without credentials: {}: {}",
        refused.reason, refused.message
    );
    let dockerconfig =
        json!({"auths": {auth_host.clone(): {"username": PULL_USER, "password": PULL_PASSWORD}}});
    apply(
        &name,
        dir.path(),
        &[
            json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
                 "metadata": {"name": "regcred", "namespace": "default"},
                 "stringData": {".dockerconfigjson": dockerconfig.to_string()}}),
        ],
    );
    block_on(c.create(&pod_with("withcreds", json!([{"name": "regcred"}]))))
        .expect("withcreds pod");
    wait_for(
        "the pod with a pull secret Ready",
        Duration::from_secs(120),
        || {
            block_on(c.get::<Pod>("default", "withcreds"))
                .ok()
                .filter(Pod::is_ready)
        },
    );
    let p = block_on(c.get::<Pod>("default", "nocreds")).unwrap();
    assert!(!p.is_ready(), "pulled without credentials");

    // The node's credentials file, read at each pull: wrong credentials give
    // the pod a pull error saying so; the right ones pull without a Secret.
    let node_file = |user: &str, password: &str| {
        let auth = std::process::Command::new("base64")
            .arg("-w0")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut ch| {
                use std::io::Write;
                ch.stdin
                    .take()
                    .unwrap()
                    .write_all(format!("{user}:{password}").as_bytes())?;
                ch.wait_with_output()
            })
            .expect("base64");
        let auth = String::from_utf8(auth.stdout).unwrap();
        std::fs::write(
            &node_creds,
            json!({"auths": {format!("http://{auth_host}"): {"auth": auth}}}).to_string(),
        )
        .unwrap();
    };
    node_file(PULL_USER, "wrong-password");
    block_on(c.create(&pod_with("nodewrong", json!([])))).expect("nodewrong pod");
    let refused = wait_for(
        "the pod failing to pull with the node's wrong credentials",
        Duration::from_secs(60),
        || {
            let p = block_on(c.get::<Pod>("default", "nodewrong")).ok()?;
            let w = p.status.container_statuses.first()?.state.waiting.clone()?;
            matches!(w.reason.as_str(), "ErrImagePull" | "ImagePullBackOff").then_some(w)
        },
    );
    assert!(
        refused.message.contains("authorized") || refused.message.contains("401"),
        "{}: {}",
        refused.reason,
        refused.message
    );
    eprintln!(
        "node credentials wrong: {}: {}",
        refused.reason, refused.message
    );
    block_on(c.delete::<Pod>("default", "nodewrong")).unwrap();
    node_file(PULL_USER, PULL_PASSWORD);
    block_on(c.create(&pod_with("nodecreds", json!([])))).expect("nodecreds pod");
    wait_for(
        "the pod pulled with the node's credentials Ready",
        Duration::from_secs(120),
        || {
            block_on(c.get::<Pod>("default", "nodecreds"))
                .ok()
                .filter(Pod::is_ready)
        },
    );

    // No log holds the Secret's value.
    for entry in std::fs::read_dir(&lab.state.dir).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "log") {
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            assert!(!text.contains(PASSWORD), "{} holds the secret", p.display());
            assert!(
                !text.contains(PULL_PASSWORD),
                "{} holds the pull secret",
                p.display()
            );
        }
    }
}
