//! keel's runtimes end to end, without the agent: images pulled from a
//! docker-registry on the loopback of a test network namespace, containers
//! launched (by a per-pod shim with libcontainer, or by a containerd of the
//! test's own), joined to that namespace, probed, restarted, reported,
//! re-adopted; bad input reported with clear reasons while a healthy pod next
//! to it carries on. Every scenario runs against both backends (`direct::*`
//! and `containerd::*`); the shim-specific ones against the direct runtime
//! only.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use keel_agent::runtime::{
    backend::{PodRef, PodRuntime},
    container::NodeRuntimeConfig,
    containerd::{ContainerdConfig, ContainerdRuntime},
    direct::{DirectConfig, DirectRuntime},
    images::{ImageStore, PullOptions},
    lifecycle::{PodLifecycle, WorkerConfig},
};
use keel_api::{
    IntOrString, Pod, Quantity,
    pod::{
        Container, ContainerStatus, EmptyDirVolumeSource, HttpGetAction, PodPhase, Probe,
        PullPolicy, RestartPolicy, Volume, VolumeMount,
    },
};
use keel_tests::{
    TestNetns,
    containerd::TestContainerd,
    process::bin,
    require_root,
    runtime::{ImageSpec, RuntimeRoot, TestRegistry, build_layout},
};

const REG_PORT: u16 = 5000;

struct Env {
    /// First to drop: its tasks go before the root's mounts and cgroups.
    containerd: Option<TestContainerd>,
    ns: TestNetns,
    reg: TestRegistry,
    root: RuntimeRoot,
    _images: tempfile::TempDir,
    testbin: String,
    busybox: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Backend {
    Direct,
    Containerd,
}

fn env(what: &str, backend: Backend) -> Env {
    require_root();
    let containerd = (backend == Backend::Containerd).then(TestContainerd::start);
    let ns = TestNetns::new(what).expect("netns");
    let reg = TestRegistry::start(&ns, REG_PORT);
    let images = tempfile::Builder::new()
        .prefix("keel-t-images-")
        .tempdir()
        .unwrap();
    let tb = build_layout(&ImageSpec::testbin("v1"), &images.path().join("testbin"));
    let bb = build_layout(&ImageSpec::busybox("v1"), &images.path().join("busybox"));
    let testbin = reg.push(&ns, &tb, "v1", "keel/testbin");
    let busybox = reg.push(&ns, &bb, "v1", "keel/busybox");
    Env {
        containerd,
        ns,
        reg,
        root: RuntimeRoot::new(),
        _images: images,
        testbin,
        busybox,
    }
}

/// What the scenarios need of a runtime besides [`PodRuntime`].
trait TestRuntime: PodRuntime + Clone {
    /// A new instance over the test's root (as a restarted agent makes).
    fn make(e: &Env) -> Self;
    fn log_path(&self, pod: &PodRef, name: &str, attempt: u32) -> PathBuf;
    fn images(&self) -> &ImageStore;
}

impl TestRuntime for DirectRuntime {
    fn make(e: &Env) -> Self {
        DirectRuntime::new(DirectConfig {
            root: e.root.path().to_path_buf(),
            exe: bin("keel-agent"),
            node: e.node(),
            pull: e.pull(),
        })
        .expect("runtime")
    }
    fn log_path(&self, pod: &PodRef, name: &str, attempt: u32) -> PathBuf {
        DirectRuntime::log_path(self, pod, name, attempt)
    }
    fn images(&self) -> &ImageStore {
        DirectRuntime::images(self)
    }
}

impl TestRuntime for ContainerdRuntime {
    fn make(e: &Env) -> Self {
        let c = e.containerd.as_ref().expect("a containerd env");
        ContainerdRuntime::new(ContainerdConfig {
            root: e.root.path().to_path_buf(),
            exe: bin("keel-agent"),
            socket: c.socket(),
            namespace: c.namespace().to_string(),
            runc_root: Some(c.runc_root()),
            node: e.node(),
            pull: e.pull(),
        })
        .expect("runtime")
    }
    fn log_path(&self, pod: &PodRef, name: &str, attempt: u32) -> PathBuf {
        ContainerdRuntime::log_path(self, pod, name, attempt)
    }
    fn images(&self) -> &ImageStore {
        ContainerdRuntime::images(self)
    }
}

impl Env {
    fn node(&self) -> NodeRuntimeConfig {
        NodeRuntimeConfig {
            cgroup_parent: self.root.cgroup_parent.clone(),
            host_path_roots: vec![self.root.path().to_path_buf()],
            ..Default::default()
        }
    }

    fn pull(&self) -> PullOptions {
        PullOptions {
            insecure_registries: vec![self.reg.host()],
            ..Default::default()
        }
    }

    /// The processes that hold the pods' containers: keel's pod shims, or
    /// containerd's runc shims.
    fn shim_pids(&self) -> Vec<i32> {
        match &self.containerd {
            Some(c) => c.shim_pids(),
            None => self.root.shim_pids(),
        }
    }

    /// Runs `f` on a current-thread runtime inside the test namespace, so
    /// pulls reach the registry and probes reach the pod.
    fn block_on<T: Send>(&self, f: impl std::future::Future<Output = T> + Send) -> T {
        self.ns.run(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(f)
        })
    }
}

fn pod(name: &str, containers: Vec<Container>) -> Pod {
    let mut p = Pod::default();
    p.metadata.name = name.into();
    p.metadata.namespace = "default".into();
    p.metadata.uid = keel_tests::unique("uid");
    p.spec.containers = containers;
    p.spec.termination_grace_period_seconds = Some(5);
    p
}

fn container(name: &str, image: &str) -> Container {
    Container {
        name: name.into(),
        image: image.into(),
        image_pull_policy: Some(PullPolicy::IfNotPresent),
        ..Default::default()
    }
}

fn http_probe(path: &str, period: i64, failures: i64) -> Probe {
    Probe {
        http_get: Some(HttpGetAction {
            path: path.into(),
            port: IntOrString::Int(8080),
            host: String::new(),
            scheme: String::new(),
            http_headers: vec![],
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        ..Default::default()
    }
}

fn worker<R: TestRuntime>(e: &Env, rt: R, p: Pod) -> PodLifecycle<R> {
    let r = PodRef::of(&p, Some(e.ns.ns().path()));
    PodLifecycle::new(rt, p, r, WorkerConfig::default())
}

/// Syncs until `done` holds for the pod (bounded).
async fn sync_until<R: TestRuntime>(
    w: &mut PodLifecycle<R>,
    what: &str,
    secs: u64,
    done: impl Fn(&Pod) -> bool,
) -> Pod {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let p = w.sync().await.expect("sync").clone();
        if done(&p) {
            return p;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {secs}s waiting for {what}; status: {:#?}",
            p.status
        );
        tokio::time::sleep(w.next_sync().min(Duration::from_millis(200))).await;
    }
}

fn status<'a>(p: &'a Pod, name: &str) -> &'a ContainerStatus {
    p.status
        .container_statuses
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no status for {name}: {:#?}", p.status))
}

fn http_get(addr: &str, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut r = String::new();
    s.read_to_string(&mut r).ok()?;
    Some(r)
}

fn pulled_image_runs_in_the_pod_netns_serves_execs_and_logs<R: TestRuntime>(e: Env) {
    let rt = R::make(&e);
    let mut c = container("web", &e.testbin);
    c.readiness_probe = Some(http_probe("/healthz", 1, 3));
    c.volume_mounts = vec![
        VolumeMount {
            name: "scratch".into(),
            mount_path: "/scratch".into(),
            read_only: false,
            sub_path: String::new(),
            ..Default::default()
        },
        VolumeMount {
            name: "mem".into(),
            mount_path: "/mem".into(),
            read_only: false,
            sub_path: String::new(),
            ..Default::default()
        },
    ];
    let mut p = pod("web", vec![c]);
    p.spec.volumes = vec![
        Volume {
            name: "scratch".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            host_path: None,
            ..Default::default()
        },
        Volume {
            name: "mem".into(),
            empty_dir: Some(EmptyDirVolumeSource {
                medium: "Memory".into(),
                size_limit: Some(Quantity::parse("8Mi").unwrap()),
            }),
            host_path: None,
            ..Default::default()
        },
    ];
    let mut w = worker(&e, rt.clone(), p);
    e.block_on(async {
        let p = sync_until(&mut w, "Ready", 60, |p| p.is_ready()).await;
        assert_eq!(p.status.phase, Some(PodPhase::Running));
        let s = status(&p, "web");
        assert!(s.state.running.is_some() && s.ready && s.restart_count == 0);
        assert!(s.image_id.starts_with("sha256:"), "{s:?}");

        // The server listens inside the test namespace (the pod's).
        let body = http_get("127.0.0.1:8080", "/").expect("GET / inside the pod netns");
        assert!(
            body.starts_with("HTTP/1.1 200") && body.ends_with("web\n"),
            "{body}"
        );

        // exec runs inside the container: its rootfs, hostname, volume.
        let id = s.container_id.trim_start_matches("keel://").to_string();
        let pr = w.pod_ref.clone();
        let out = rt
            .exec(
                &pr,
                &id,
                &[
                    "/bin/sh".into(),
                    "-c".into(),
                    "hostname; id -u; echo hi > /scratch/f; cat /scratch/f; ls /usr/local/bin"
                        .into(),
                ],
                Duration::from_secs(10),
            )
            .await
            .expect("exec");
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.exit_code,
            0,
            "{text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(text, "web\n0\nhi\nkeel-testbin\n");
        let mounts = rt
            .exec(
                &pr,
                &id,
                &["/bin/cat".into(), "/proc/self/mounts".into()],
                Duration::from_secs(10),
            )
            .await
            .expect("exec cat");
        let mounts = String::from_utf8_lossy(&mounts.stdout).into_owned();
        assert!(
            mounts
                .lines()
                .any(|l| l.contains(" /mem tmpfs ") && l.contains("size=8192k")),
            "the Memory emptyDir is a tmpfs of its sizeLimit: {mounts}"
        );
        // An exec that outlives its timeout is an error, not a hang.
        let slow = rt
            .exec(
                &pr,
                &id,
                &["/bin/sleep".into(), "30".into()],
                Duration::from_secs(1),
            )
            .await;
        assert!(
            slow.as_ref()
                .is_err_and(|e| e.to_string().contains("timed out")),
            "{slow:?}"
        );
        let vol = rt.pod_dir(&pr).join("volumes/scratch/f");
        assert_eq!(std::fs::read_to_string(&vol).unwrap(), "hi\n");

        // Its stdout is in the CRI log.
        let log = rt.log_path(&pr, "web", 0);
        let lines = keel_agent::runtime::logs::read_lines(&log, 4).unwrap();
        assert!(lines.iter().any(|l| l == "listening on :8080"), "{lines:?}");
        let raw = std::fs::read_to_string(&log).unwrap();
        assert!(
            raw.lines().next().unwrap().contains(" stdout F listening"),
            "{raw}"
        );

        // Image GC keeps what a running container stands on, even when no
        // pod spec names it any more.
        let none = std::collections::BTreeSet::new();
        assert_eq!(rt.gc_images(&none).await.unwrap(), 0);
        assert!(rt.images().get(&e.testbin).is_some());

        // Graceful stop: SIGTERM reaches the server, which exits 0.
        w.terminate().await.expect("terminate");
        assert!(!rt.pod_dir(&pr).exists(), "pod directory removed");
        assert_eq!(rt.gc_images(&none).await.unwrap(), 1, "unused now");
        assert!(rt.images().get(&e.testbin).is_none());
    });
    assert!(e.shim_pids().is_empty());
    assert!(
        e.root.container_pids().is_empty(),
        "no process left in the pod's cgroups"
    );
}

fn failing_liveness_probe_restarts_with_back_off<R: TestRuntime>(e: Env) {
    let rt = R::make(&e);
    let mut c = container("web", &e.testbin);
    c.args = vec![
        "http-serve".into(),
        "--port".into(),
        "8080".into(),
        "--healthy-for".into(),
        "2".into(),
    ];
    c.liveness_probe = Some(http_probe("/healthz", 1, 2));
    let p = pod("live", vec![c]);
    let mut w = worker(&e, rt.clone(), p);
    e.block_on(async {
        let p = sync_until(&mut w, "a restart", 90, |p| {
            p.status
                .container_statuses
                .first()
                .is_some_and(|s| s.restart_count >= 1 && s.state.running.is_some())
        })
        .await;
        let s = status(&p, "web");
        let last = s
            .last_state
            .terminated
            .as_ref()
            .expect("lastState after a restart");
        // Killed by the probe: SIGTERM, which the server handles with exit 0.
        assert_eq!(last.exit_code, 0, "{last:?}");
        // In between it waited in CrashLoopBackOff (seen by the worker's
        // waiting reason while the back-off ran): the restart came no
        // sooner than the kubelet's 10 s.
        let started = s.state.running.as_ref().unwrap().started_at.unwrap().0;
        let finished = last.finished_at.unwrap().0;
        assert!(
            started.duration_since(finished).unwrap() >= Duration::from_secs(9),
            "restart after {:?}",
            started.duration_since(finished)
        );
        w.terminate().await.expect("terminate");
    });
}

fn oom_and_non_zero_exit_are_reported_with_their_reasons<R: TestRuntime>(e: Env) {
    let rt = R::make(&e);
    let mut fail = container("fail", &e.busybox);
    fail.command = vec!["/bin/sh".into(), "-c".into(), "echo bye; exit 3".into()];
    let mut oom = container("oom", &e.testbin);
    oom.args = vec!["alloc".into(), "256".into()];
    oom.resources.limits = [("memory".to_string(), Quantity::parse("32Mi").unwrap())].into();
    let mut ok = container("ok", &e.busybox);
    ok.command = vec!["/bin/true".into()];
    let mut p = pod("exits", vec![fail, oom, ok]);
    p.spec.restart_policy = RestartPolicy::Never;
    let mut w = worker(&e, rt, p);
    e.block_on(async {
        let p = sync_until(&mut w, "all three to exit", 60, |p| {
            p.status.container_statuses.len() == 3
                && p.status
                    .container_statuses
                    .iter()
                    .all(|s| s.state.terminated.is_some())
        })
        .await;
        let t = |n: &str| status(&p, n).state.terminated.clone().unwrap();
        assert_eq!(
            (t("fail").reason.as_str(), t("fail").exit_code),
            ("Error", 3)
        );
        assert_eq!(
            (t("oom").reason.as_str(), t("oom").exit_code),
            ("OOMKilled", 137)
        );
        assert_eq!(
            (t("ok").reason.as_str(), t("ok").exit_code),
            ("Completed", 0)
        );
        assert_eq!(p.status.phase, Some(PodPhase::Failed));
        assert!(!p.is_ready());
        w.terminate().await.expect("terminate");
    });
}

/// The runtime says when a container exits (the shim's wait, containerd's
/// task-exit events), so a pod's worker need not poll.
fn exits_are_reported_as_they_happen<R: TestRuntime>(e: Env) {
    let rt = R::make(&e);
    let mut c = container("short", &e.busybox);
    c.command = vec![
        "/bin/sh".into(),
        "-c".into(),
        "until test -f /go; do sleep 0.1; done; exit 4".into(),
    ];
    let mut p = pod("short", vec![c]);
    p.spec.restart_policy = RestartPolicy::Never;
    let mut w = worker(&e, rt.clone(), p);
    e.block_on(async {
        let p = sync_until(&mut w, "the container running", 60, |p| {
            p.status
                .container_statuses
                .first()
                .is_some_and(|s| s.state.running.is_some())
        })
        .await;
        let pr = w.pod_ref.clone();
        let id = status(&p, "short")
            .container_id
            .trim_start_matches("keel://")
            .to_string();
        // containerd's subscription comes up in the background.
        let mut seen = None;
        for _ in 0..200 {
            seen = rt.wait(&pr, None, Duration::ZERO).await.expect("wait");
            if seen.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let seen = seen.expect("this runtime reports exits");
        let waiting = {
            let (rt, pr) = (rt.clone(), pr.clone());
            tokio::spawn(async move {
                let t = std::time::Instant::now();
                let g = rt.wait(&pr, Some(seen), Duration::from_secs(120)).await;
                (g, t.elapsed())
            })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        rt.exec(
            &pr,
            &id,
            &["/bin/touch".into(), "/go".into()],
            Duration::from_secs(10),
        )
        .await
        .expect("exec");
        let (g, took) = waiting.await.unwrap();
        assert!(
            g.expect("wait").is_some_and(|g| g > seen),
            "the exit moved the generation"
        );
        assert!(
            took < Duration::from_secs(60),
            "woken by the exit, not by the wait's end: {took:?}"
        );
        let p = sync_until(&mut w, "the exit in the status", 30, |p| {
            status(p, "short").state.terminated.is_some()
        })
        .await;
        assert_eq!(
            status(&p, "short")
                .state
                .terminated
                .as_ref()
                .unwrap()
                .exit_code,
            4
        );
        w.terminate().await.expect("terminate");
    });
}

fn a_new_runtime_instance_re_adopts_running_containers<R: TestRuntime>(e: Env) {
    let mut c = container("web", &e.testbin);
    c.readiness_probe = Some(http_probe("/healthz", 1, 3));
    let p = pod("adopt", vec![c]);
    let (id, pid) = {
        let mut w = worker(&e, R::make(&e), p.clone());
        e.block_on(async {
            let p = sync_until(&mut w, "Ready", 60, |p| p.is_ready()).await;
            let s = status(&p, "web");
            (
                s.container_id.clone(),
                w.runtime().list(&w.pod_ref).await.unwrap()[0].pid,
            )
        })
        // The worker and runtime are dropped here, as when the agent dies.
    };
    let shims = e.shim_pids();
    assert_eq!(shims.len(), 1);
    assert!(
        Path::new(&format!("/proc/{}", shims[0])).exists(),
        "shim outlives its agent"
    );
    assert!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "container outlives its agent"
    );

    let rt = R::make(&e);
    let mut w = e.block_on(async {
        let pods = rt.pods().await.unwrap();
        assert_eq!(pods.len(), 1, "the runtime finds the pod on disk");
        assert_eq!(pods[0].uid, p.metadata.uid);
        PodLifecycle::new(
            rt.clone(),
            p.clone(),
            pods[0].clone(),
            WorkerConfig::default(),
        )
    });
    e.block_on(async {
        let p = sync_until(&mut w, "Ready again", 30, |p| p.is_ready()).await;
        let s = status(&p, "web");
        assert_eq!(s.container_id, id, "same container, not a new one");
        assert_eq!(s.restart_count, 0);
        assert!(
            http_get("127.0.0.1:8080", "/healthz").is_some_and(|b| b.starts_with("HTTP/1.1 200"))
        );
        w.terminate().await.expect("terminate");
    });
}

fn bad_input_gets_a_clear_reason_and_disturbs_nothing_else<R: TestRuntime>(e: Env) {
    let rt = R::make(&e);
    // A healthy pod alongside.
    let mut good = container("web", &e.testbin);
    good.readiness_probe = Some(http_probe("/healthz", 1, 3));
    let mut gw = worker(&e, rt.clone(), pod("good", vec![good]));
    e.block_on(async {
        sync_until(&mut gw, "Ready", 60, |p| p.is_ready()).await;
    });

    let waiting = |p: &Pod, n: &str| {
        status(p, n)
            .state
            .waiting
            .clone()
            .map(|w| (w.reason, w.message))
    };
    let cases: Vec<(Container, &str, &str)> = vec![
        (
            container("missing", &format!("{}/keel/nope:v1", e.reg.host())),
            "ErrImagePull",
            "not found",
        ),
        (
            {
                let mut c = container("nocmd", &e.busybox);
                c.command = vec!["/bin/does-not-exist".into()];
                c
            },
            "CreateContainerError",
            "does-not-exist",
        ),
        (
            {
                let mut c = container("escape", &e.busybox);
                c.volume_mounts = vec![VolumeMount {
                    name: "v".into(),
                    mount_path: "/v".into(),
                    read_only: false,
                    sub_path: "../../../etc".into(),
                    ..Default::default()
                }];
                c
            },
            "CreateContainerConfigError",
            "subPath",
        ),
    ];
    for (c, reason, needle) in cases {
        let name = c.name.clone();
        let mut p = pod(&name, vec![c]);
        p.spec.volumes = vec![Volume {
            name: "v".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            host_path: None,
            ..Default::default()
        }];
        let mut w = worker(&e, rt.clone(), p);
        e.block_on(async {
            let p = sync_until(&mut w, reason, 30, |p| {
                p.status
                    .container_statuses
                    .first()
                    .and_then(|s| s.state.waiting.as_ref())
                    .is_some_and(|w| w.reason == reason)
            })
            .await;
            let (r, m) = waiting(&p, &name).unwrap();
            assert_eq!(r, reason);
            assert!(m.contains(needle), "{name}: {m}");
            assert_eq!(p.status.phase, Some(PodPhase::Pending));
            w.terminate().await.expect("terminate");
        });
    }

    // A hostPath that escapes the allowed roots.
    let mut c = container("host", &e.busybox);
    c.volume_mounts = vec![VolumeMount {
        name: "h".into(),
        mount_path: "/h".into(),
        read_only: false,
        sub_path: String::new(),
        ..Default::default()
    }];
    let mut p = pod("hostpath", vec![c]);
    p.spec.volumes = vec![Volume {
        name: "h".into(),
        empty_dir: None,
        host_path: Some(keel_api::pod::HostPathVolumeSource {
            path: format!("{}/../../etc", e.root.path().display()),
            type_: String::new(),
        }),
        ..Default::default()
    }];
    let mut w = worker(&e, rt.clone(), p);
    e.block_on(async {
        let p = sync_until(&mut w, "config error", 30, |p| {
            waiting(p, "host").is_some_and(|w| w.0 == "CreateContainerConfigError")
        })
        .await;
        let (_, m) = waiting(&p, "host").unwrap();
        assert!(
            m.contains("spec.volumes[0].hostPath.path") && m.contains("escapes"),
            "{m}"
        );
        w.terminate().await.expect("terminate");
    });

    // A registry blob that does not match its digest.
    let images = tempfile::Builder::new()
        .prefix("keel-t-images-")
        .tempdir()
        .unwrap();
    let mut spec = ImageSpec::busybox("v1");
    spec.env.push("FLAVOUR=corrupt".into());
    let layout = build_layout(&spec, images.path());
    let image = e.reg.push(&e.ns, &layout, "v1", "keel/corrupt");
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(layout.join("blobs/sha256").join(
            keel_tests::runtime::layout_manifest_digest(&layout).trim_start_matches("sha256:"),
        ))
        .unwrap(),
    )
    .unwrap();
    let cfg_digest = manifest["config"]["digest"].as_str().unwrap();
    let blob = e.reg.blob_path(cfg_digest);
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[10] ^= 0x20;
    std::fs::write(&blob, bytes).unwrap();
    let mut w = worker(&e, rt.clone(), pod("corrupt", vec![container("c", &image)]));
    e.block_on(async {
        let p = sync_until(&mut w, "ErrImagePull", 30, |p| {
            waiting(p, "c").is_some_and(|w| w.0 == "ErrImagePull")
        })
        .await;
        let (_, m) = waiting(&p, "c").unwrap();
        assert!(m.contains("digest"), "{m}");
        w.terminate().await.expect("terminate");
    });
    assert!(
        rt.images().get(&image).is_none(),
        "nothing of the corrupt image was stored under its name"
    );

    // The healthy pod never noticed.
    e.block_on(async {
        let p = gw.sync().await.unwrap().clone();
        assert!(p.is_ready());
        assert_eq!(status(&p, "web").restart_count, 0);
        gw.terminate().await.expect("terminate");
    });
}

#[test]
fn imported_layouts_and_archives_run_with_pull_policy_never_and_gc_reclaims_them() {
    require_root();
    let ns = TestNetns::new("rt-import").unwrap();
    let root = RuntimeRoot::new();
    let images = tempfile::Builder::new()
        .prefix("keel-t-images-")
        .tempdir()
        .unwrap();
    let layout = build_layout(&ImageSpec::busybox("v1"), &images.path().join("bb"));
    let archive = images.path().join("bb.tar");
    let st = std::process::Command::new("tar")
        .arg("-C")
        .arg(&layout)
        .arg("-cf")
        .arg(&archive)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    let rt = DirectRuntime::new(DirectConfig {
        root: root.path().to_path_buf(),
        exe: bin("keel-agent"),
        node: NodeRuntimeConfig {
            cgroup_parent: root.cgroup_parent.clone(),
            ..Default::default()
        },
        pull: PullOptions::default(),
    })
    .unwrap();
    let rt2 = rt.clone();
    let ns_path = ns.ns().path().to_path_buf();
    ns.run(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                let a = rt2
                    .images()
                    .import_layout(&layout, Some("local.test/keel/busybox:v1"))
                    .await
                    .unwrap();
                let b = rt2
                    .images()
                    .import_archive(&archive, Some("local.test/keel/busybox:archived"))
                    .await
                    .unwrap();
                assert_eq!(
                    a[0].manifest_digest, b[0].manifest_digest,
                    "same content, one blob set"
                );
                let mut c = container("sh", "local.test/keel/busybox:archived");
                c.image_pull_policy = Some(PullPolicy::Never);
                c.command = vec!["/bin/sh".into(), "-c".into(), "echo imported".into()];
                let mut p = pod("imported", vec![c]);
                p.spec.restart_policy = RestartPolicy::Never;
                let r = PodRef::of(&p, Some(&ns_path));
                let mut w = PodLifecycle::new(rt2.clone(), p, r.clone(), WorkerConfig::default());
                let p = sync_until(&mut w, "Succeeded", 30, |p| {
                    p.status.phase == Some(PodPhase::Succeeded)
                })
                .await;
                assert_eq!(
                    status(&p, "sh").state.terminated.as_ref().unwrap().reason,
                    "Completed"
                );
                let lines =
                    keel_agent::runtime::logs::read_lines(&rt2.log_path(&r, "sh", 0), 4).unwrap();
                assert_eq!(lines, vec!["imported"]);
                w.terminate().await.unwrap();

                // Never + absent image: ErrImageNeverPull.
                let err = rt2
                    .ensure_image(
                        "local.test/keel/absent:v1",
                        PullPolicy::Never,
                        &Default::default(),
                    )
                    .await
                    .unwrap_err();
                assert_eq!(err.reason(), "ErrImageNeverPull");

                // Nothing uses either image now: GC removes all of it.
                let keep = [String::from("docker.io/library/unrelated:latest")].into();
                let gone = rt2.images().gc(&keep).await.unwrap();
                assert_eq!(gone.images.len(), 2);
                assert!(gone.blobs >= 3 && gone.layers == 1, "{gone:?}");
                assert!(rt2.images().get("local.test/keel/busybox:v1").is_none());
            })
    });
}

fn a_killed_shim_is_replaced_and_the_pod_converges<R: TestRuntime>(e: Env) {
    let rt = R::make(&e);
    let mut c = container("web", &e.testbin);
    c.readiness_probe = Some(http_probe("/healthz", 1, 3));
    let p = pod("shimkill", vec![c]);
    let mut w = worker(&e, rt.clone(), p);
    e.block_on(async {
        sync_until(&mut w, "Ready", 60, |p| p.is_ready()).await;
        let old_pid = rt.list(&w.pod_ref).await.unwrap()[0].pid;
        let shim = e.shim_pids()[0];
        match &e.containerd {
            Some(c) => c.kill_shim(shim),
            None => nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(shim),
                nix::sys::signal::Signal::SIGKILL,
            )
            .unwrap(),
        }
        // A new shim takes over; the orphaned container is replaced by one
        // it owns, and the pod is Ready again.
        let p = sync_until(&mut w, "Ready with a new shim", 60, |p| {
            p.is_ready() && e.shim_pids().first().is_some_and(|s| *s != shim)
        })
        .await;
        let all = rt.list(&w.pod_ref).await.unwrap();
        if e.containerd.is_none() {
            // A new pod shim knows nothing of the old container.
            assert_eq!(all.len(), 1, "{all:?}");
        }
        // containerd keeps the old container's record, exited.
        let now: Vec<_> = all.into_iter().filter(|o| o.exit.is_none()).collect();
        assert_eq!(now.len(), 1, "{now:?}");
        assert_ne!(now[0].pid, old_pid);
        assert!(
            !Path::new(&format!("/proc/{old_pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{old_pid}/stat"))
                    .is_ok_and(|s| s.contains(") Z")),
            "the orphaned container was stopped"
        );
        assert!(status(&p, "web").state.running.is_some());
        w.terminate().await.expect("terminate");
    });
}

/// keel's default seccomp profile (containerd's semantics) on both
/// runtimes: a container cannot make a user or network namespace with a
/// raw clone(2), while a plain clone and ordinary programs of the lab's
/// images run.
fn default_seccomp_refuses_namespaces_and_runs_ordinary_programs<R: TestRuntime>(e: Env) {
    let rt = R::make(&e);
    let clone = |name: &str, what: &str| {
        let mut c = container(name, &e.testbin);
        c.args = vec!["sys-clone".into(), what.into()];
        c
    };
    let mut sh = container("sh", &e.busybox);
    sh.command = vec![
        "/bin/sh".into(),
        "-c".into(),
        "ls / >/dev/null && wc -l /etc/passwd && date && ps >/dev/null && sleep 0.1".into(),
    ];
    let mut p = pod(
        "seccomp",
        vec![
            clone("user", "newuser"),
            clone("net", "newnet"),
            clone("plain", "plain"),
            sh,
        ],
    );
    p.spec.restart_policy = RestartPolicy::Never;
    let mut w = worker(&e, rt.clone(), p);
    e.block_on(async {
        let p = sync_until(&mut w, "all four to exit", 60, |p| {
            p.status.container_statuses.len() == 4
                && p.status
                    .container_statuses
                    .iter()
                    .all(|s| s.state.terminated.is_some())
        })
        .await;
        let code = |n: &str| status(&p, n).state.terminated.clone().unwrap().exit_code;
        let log = |n: &str| {
            let pr = PodRef::of(&p, None);
            std::fs::read_to_string(rt.log_path(&pr, n, 0)).unwrap_or_default()
        };
        assert_eq!(
            code("user"),
            1,
            "clone(CLONE_NEWUSER) allowed: {}",
            log("user")
        );
        assert!(log("user").contains("EPERM"), "{}", log("user"));
        assert_eq!(
            code("net"),
            1,
            "clone(CLONE_NEWNET) allowed: {}",
            log("net")
        );
        assert_eq!(code("plain"), 0, "plain clone refused: {}", log("plain"));
        assert_eq!(code("sh"), 0, "busybox refused: {}", log("sh"));
        w.terminate().await.expect("terminate");
    });
}

/// The runtime's state is root's alone: its root, the pods' directories
/// and a container's bundle 0700, so a Memory emptyDir's 0777 tmpfs and the
/// rootfs upper dirs under them are reachable only through the container.
fn runtime_state_is_roots_alone<R: TestRuntime>(e: Env) {
    use std::os::unix::fs::PermissionsExt;
    let rt = R::make(&e);
    let mut c = container("c", &e.busybox);
    c.command = vec![
        "/bin/sh".into(),
        "-c".into(),
        "touch /mem/x && ls -ld /mem".into(),
    ];
    c.volume_mounts = vec![VolumeMount {
        name: "mem".into(),
        mount_path: "/mem".into(),
        read_only: false,
        sub_path: String::new(),
        ..Default::default()
    }];
    let mut p = pod("modes", vec![c]);
    p.spec.volumes = vec![Volume {
        name: "mem".into(),
        empty_dir: Some(EmptyDirVolumeSource {
            medium: "Memory".into(),
            ..Default::default()
        }),
        host_path: None,
        ..Default::default()
    }];
    p.spec.restart_policy = RestartPolicy::Never;
    let mut w = worker(&e, rt.clone(), p);
    e.block_on(async {
        let p = sync_until(&mut w, "the container to exit", 60, |p| {
            p.status.container_statuses.len() == 1
                && p.status.container_statuses[0].state.terminated.is_some()
        })
        .await;
        let log = std::fs::read_to_string(rt.log_path(&PodRef::of(&p, None), "c", 0)).unwrap();
        assert_eq!(
            status(&p, "c").state.terminated.clone().unwrap().exit_code,
            0,
            "{log}"
        );
        assert!(
            log.contains("drwxrwxrwx"),
            "the emptyDir is 0777 inside: {log}"
        );
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let root = e.root.path();
        assert_eq!(mode(root), 0o700, "runtime root");
        assert_eq!(mode(&root.join("pods")), 0o700, "pods dir");
        assert_eq!(mode(&root.join("images")), 0o700, "image store");
        w.terminate().await.expect("terminate");
    });
}

/// One `#[test]` per backend for each scenario: `direct::NAME` and
/// `containerd::NAME`.
macro_rules! on_both_runtimes {
    ($($name:ident => $short:literal),* $(,)?) => {
        mod direct {
            $(
                #[test]
                fn $name() {
                    super::$name::<super::DirectRuntime>(super::env($short, super::Backend::Direct));
                }
            )*
        }
        mod containerd {
            $(
                #[test]
                fn $name() {
                    super::$name::<super::ContainerdRuntime>(super::env(
                        concat!("c", $short),
                        super::Backend::Containerd,
                    ));
                }
            )*
        }
    };
}

on_both_runtimes! {
    pulled_image_runs_in_the_pod_netns_serves_execs_and_logs => "rt-run",
    failing_liveness_probe_restarts_with_back_off => "rt-live",
    oom_and_non_zero_exit_are_reported_with_their_reasons => "rt-exit",
    exits_are_reported_as_they_happen => "rt-wait",
    a_new_runtime_instance_re_adopts_running_containers => "rt-adopt",
    bad_input_gets_a_clear_reason_and_disturbs_nothing_else => "rt-bad",
    a_killed_shim_is_replaced_and_the_pod_converges => "rt-shim",
    default_seccomp_refuses_namespaces_and_runs_ordinary_programs => "rt-sec",
    runtime_state_is_roots_alone => "rt-mode",
}
