//! The worker against the in-memory runtime: ordering, probes, grace
//! periods and status, without processes.

use std::time::Duration;

use keel_api::pod::{Container, ExecAction, PodPhase, Probe, RestartPolicy};

use super::*;
use crate::runtime::backend::fake::FakeRuntime;

fn pod(init: &[&str], app: &[&str]) -> Pod {
    let mut p = Pod::default();
    p.metadata.name = "p".into();
    p.metadata.namespace = "default".into();
    p.metadata.uid = "uid".into();
    let c = |n: &&str| Container {
        name: n.to_string(),
        image: "img".into(),
        ..Default::default()
    };
    p.spec.init_containers = init.iter().map(c).collect();
    p.spec.containers = app.iter().map(c).collect();
    p.spec.termination_grace_period_seconds = Some(1);
    p
}

fn worker(rt: &FakeRuntime, p: Pod) -> PodLifecycle<FakeRuntime> {
    let r = PodRef::of(&p, None);
    PodLifecycle::new(
        rt.clone(),
        p,
        r,
        WorkerConfig {
            backoff_base: Duration::from_millis(10),
            backoff_max: Duration::from_millis(40),
        },
    )
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn init_then_app_then_ready() {
    let fake = FakeRuntime::new();
    let mut w = worker(&fake, pod(&["init"], &["app"]));
    rt().block_on(async {
        let p = w.sync().await.unwrap().clone();
        assert_eq!(p.status.phase, Some(PodPhase::Pending));
        assert_eq!(fake.running("init"), 1);
        assert_eq!(fake.running("app"), 0, "apps wait for init");
        assert_eq!(
            p.status.container_statuses[0]
                .state
                .waiting
                .as_ref()
                .unwrap()
                .reason,
            "ContainerCreating"
        );
        fake.exit("init", 0);
        let p = w.sync().await.unwrap().clone();
        assert_eq!(fake.running("app"), 1);
        assert_eq!(p.status.phase, Some(PodPhase::Running));
        assert!(p.is_ready());
        assert_eq!(
            p.status.init_container_statuses[0]
                .state
                .terminated
                .as_ref()
                .unwrap()
                .reason,
            "Completed"
        );
    });
}

#[test]
fn failing_exec_liveness_stops_with_grace_then_kill_and_restarts() {
    let fake = FakeRuntime::new();
    let mut p = pod(&[], &["app"]);
    p.spec.containers[0].liveness_probe = Some(Probe {
        exec: Some(ExecAction {
            command: vec!["check".into()],
        }),
        period_seconds: Some(1),
        failure_threshold: Some(1),
        ..Default::default()
    });
    fake.state
        .lock()
        .unwrap()
        .exec_codes
        .insert("app".into(), 1);
    let mut w = worker(&fake, p);
    rt().block_on(async {
        // Start; the first probe fails and marks the container for killing.
        w.sync().await.unwrap();
        w.sync().await.unwrap();
        let sigs = fake.state.lock().unwrap().signals.clone();
        assert_eq!(
            sigs.last().map(|s| s.1),
            Some(15),
            "SIGTERM first: {sigs:?}"
        );
        assert_eq!(fake.running("app"), 1, "the app ignores SIGTERM");
        // After the 1 s grace period, SIGKILL.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        w.sync().await.unwrap();
        let sigs = fake.state.lock().unwrap().signals.clone();
        assert_eq!(sigs.last().map(|s| s.1), Some(9), "{sigs:?}");
        assert_eq!(fake.running("app"), 0);
        // Always: restarted after the (test-short) back-off.
        tokio::time::sleep(Duration::from_millis(30)).await;
        let p = w.sync().await.unwrap().clone();
        assert_eq!(fake.running("app"), 1);
        let s = &p.status.container_statuses[0];
        assert_eq!(s.restart_count, 1);
        assert_eq!(s.last_state.terminated.as_ref().unwrap().exit_code, 137);
    });
}

#[test]
fn never_policy_ends_failed_and_terminate_removes_the_pod() {
    let fake = FakeRuntime::new();
    let mut p = pod(&[], &["a", "b"]);
    p.spec.restart_policy = RestartPolicy::Never;
    fake.state.lock().unwrap().honoured.push(15);
    let mut w = worker(&fake, p);
    rt().block_on(async {
        w.sync().await.unwrap();
        fake.exit("a", 2);
        let p = w.sync().await.unwrap().clone();
        assert_eq!(p.status.phase, Some(PodPhase::Running), "b still runs");
        assert!(!p.is_ready());
        w.terminate().await.unwrap();
        let s = fake.state.lock().unwrap();
        assert_eq!(
            s.signals,
            vec![("uid-b-0".to_string(), 15)],
            "only b needed SIGTERM"
        );
        assert_eq!(s.removed_pods, vec!["uid".to_string()]);
    });
}

#[test]
fn missing_image_waits_with_err_image_pull_then_back_off() {
    let fake = FakeRuntime::new();
    fake.state.lock().unwrap().missing_images.push("img".into());
    let mut w = worker(&fake, pod(&[], &["app"]));
    rt().block_on(async {
        let p = w.sync().await.unwrap().clone();
        let wt = p.status.container_statuses[0]
            .state
            .waiting
            .clone()
            .unwrap();
        assert_eq!(wt.reason, "ErrImagePull");
        assert!(wt.message.contains("not found"), "{}", wt.message);
        tokio::time::sleep(Duration::from_millis(20)).await;
        let p = w.sync().await.unwrap().clone();
        let wt = p.status.container_statuses[0]
            .state
            .waiting
            .clone()
            .unwrap();
        assert_eq!(wt.reason, "ImagePullBackOff");
        assert_eq!(p.status.phase, Some(PodPhase::Pending));
    });
}

/// ConfigMaps that appear while the test runs.
#[derive(Default)]
struct LateConfigMaps(std::sync::Mutex<Option<Arc<keel_api::ConfigMap>>>);

impl crate::runtime::container::env::Sources for LateConfigMaps {
    fn config_map(&self, _: &str, name: &str) -> Fetched<Arc<keel_api::ConfigMap>> {
        match &*self.0.lock().unwrap() {
            Some(c) if c.metadata.name == name => Fetched::Found(c.clone()),
            _ => Fetched::Missing,
        }
    }
    fn secret(&self, _: &str, _: &str) -> Fetched<Arc<keel_api::Secret>> {
        Fetched::Missing
    }
    fn services(&self, _: &str) -> Vec<Arc<keel_api::Service>> {
        Vec::new()
    }
}

#[test]
fn a_missing_config_map_waits_with_create_container_config_error_then_starts() {
    let fake = FakeRuntime::new();
    let mut p = pod(&[], &["app"]);
    p.spec.containers[0].env = vec![keel_api::pod::EnvVar {
        name: "X".into(),
        value: String::new(),
        value_from: Some(keel_api::pod::EnvVarSource {
            config_map_key_ref: Some(keel_api::pod::KeySelector {
                name: "late".into(),
                key: "x".into(),
                optional: None,
            }),
            ..Default::default()
        }),
    }];
    let sources = Arc::new(LateConfigMaps::default());
    let mut w = worker(&fake, p).with_sources(sources.clone());
    rt().block_on(async {
        let p = w.sync().await.unwrap().clone();
        let waiting = p.status.container_statuses[0]
            .state
            .waiting
            .clone()
            .unwrap();
        assert_eq!(waiting.reason, "CreateContainerConfigError");
        assert!(
            waiting.message.contains("configmap \"late\" not found"),
            "{}",
            waiting.message
        );
        assert_eq!(fake.running("app"), 0);
        // Tried again soon, without growing back-off.
        let due = w.next_due().expect("a retry is due");
        assert!(due <= now_ms() + CONFIG_RETRY.as_millis() as u64);
        *sources.0.lock().unwrap() = Some(Arc::new(
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "late", "namespace": "default"}, "data": {"x": "1"}
            }))
            .unwrap(),
        ));
        tokio::time::sleep(CONFIG_RETRY + Duration::from_millis(50)).await;
        let p = w.sync().await.unwrap().clone();
        assert_eq!(fake.running("app"), 1);
        assert!(p.status.container_statuses[0].state.running.is_some());
    });
}

#[test]
fn a_missing_pull_secret_is_skipped_as_the_kubelet_does() {
    let fake = FakeRuntime::new();
    let mut p = pod(&[], &["app"]);
    p.spec.image_pull_secrets = vec![keel_api::pod::LocalObjectReference {
        name: "absent".into(),
    }];
    let mut w = worker(&fake, p).with_sources(Arc::new(LateConfigMaps::default()));
    rt().block_on(async {
        w.sync().await.unwrap();
        assert_eq!(fake.running("app"), 1);
    });
}

/// Events recorded into memory, for the tests below.
#[derive(Clone, Default)]
struct Recorded(Arc<std::sync::Mutex<Vec<keel_api::Event>>>);

impl keel_api::recorder::Sink for Recorded {
    async fn create(
        &self,
        e: keel_api::Event,
    ) -> Result<keel_api::Event, keel_api::recorder::SinkError> {
        self.0.lock().unwrap().push(e.clone());
        Ok(e)
    }
    async fn update(
        &self,
        e: keel_api::Event,
    ) -> Result<keel_api::Event, keel_api::recorder::SinkError> {
        let mut all = self.0.lock().unwrap();
        for x in all
            .iter_mut()
            .filter(|x| x.metadata.name == e.metadata.name)
        {
            *x = e.clone();
        }
        Ok(e)
    }
}

impl Recorded {
    /// (reason, count, message) of every Event once `n` writes settled.
    async fn settle(&self, r: &Recorder, n: u64) -> Vec<(String, i32, String)> {
        use std::sync::atomic::Ordering::Relaxed;
        for _ in 0..400 {
            let s = r.stats();
            if s.created.load(Relaxed) + s.updated.load(Relaxed) >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|e| (e.reason.clone(), e.count, e.message.clone()))
            .collect()
    }
}

#[test]
fn the_kubelets_events_are_recorded_and_a_failing_probe_aggregates() {
    let fake = FakeRuntime::new();
    let mut p = pod(&[], &["app"]);
    p.spec.containers[0].readiness_probe = Some(Probe {
        exec: Some(ExecAction {
            command: vec!["check".into()],
        }),
        period_seconds: Some(1),
        ..Default::default()
    });
    fake.state
        .lock()
        .unwrap()
        .exec_codes
        .insert("app".into(), 1);
    rt().block_on(async {
        let sink = Recorded::default();
        let rec = Recorder::spawn(sink.clone(), "kubelet", "n1");
        let mut w = worker(&fake, p).with_events(rec.clone());
        w.sync().await.unwrap();
        // Two more probe rounds, each failing.
        for _ in 0..2 {
            tokio::time::sleep(Duration::from_millis(1050)).await;
            w.sync().await.unwrap();
        }
        let got = sink.settle(&rec, 5).await;
        let reasons: Vec<&str> = got.iter().map(|g| g.0.as_str()).collect();
        assert_eq!(
            reasons,
            ["Pulling", "Pulled", "Created", "Started", "Unhealthy"],
            "{got:?}"
        );
        let unhealthy = &got[4];
        assert!(
            unhealthy.1 >= 2,
            "repeats aggregate into one Event: {got:?}"
        );
        assert!(unhealthy.2.starts_with("Readiness probe failed"), "{got:?}");
        let e = sink.0.lock().unwrap()[4].clone();
        assert_eq!(e.involved_object.field_path, "spec.containers{app}");
        assert_eq!(e.involved_object.kind, "Pod");
        assert_eq!(e.type_, "Warning");
        assert_eq!(e.source.host, "n1");
        // Stopping records Killing.
        w.terminate().await.unwrap();
        let got = sink.settle(&rec, 6).await;
        assert!(got.iter().any(|g| g.0 == "Killing"), "{got:?}");
    });
}

#[test]
fn a_missing_image_records_failed_then_back_off() {
    let fake = FakeRuntime::new();
    fake.state.lock().unwrap().missing_images.push("img".into());
    rt().block_on(async {
        let sink = Recorded::default();
        let rec = Recorder::spawn(sink.clone(), "kubelet", "n1");
        let mut w = worker(&fake, pod(&[], &["app"])).with_events(rec.clone());
        w.sync().await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        w.sync().await.unwrap();
        let got = sink.settle(&rec, 5).await;
        let has = |reason: &str, msg: &str| got.iter().any(|g| g.0 == reason && g.2.contains(msg));
        assert!(has("Pulling", "Pulling image \"img\""), "{got:?}");
        assert!(has("Failed", "Failed to pull image \"img\""), "{got:?}");
        assert!(has("Failed", "Error: ErrImagePull"), "{got:?}");
        assert!(has("BackOff", "Back-off pulling image \"img\""), "{got:?}");
    });
}

#[test]
fn a_sidecar_runs_beside_the_app_and_is_stopped_after_it() {
    let fake = FakeRuntime::new();
    let mut p = pod(&["proxy", "setup"], &["app"]);
    p.spec.init_containers[0].restart_policy = Some(keel_api::pod::ContainerRestartPolicy::Always);
    fake.state.lock().unwrap().honoured.push(15);
    let mut w = worker(&fake, p);
    rt().block_on(async {
        w.sync().await.unwrap();
        assert_eq!(fake.running("proxy"), 1);
        // No startup probe: started as soon as it runs; setup goes next.
        w.sync().await.unwrap();
        assert_eq!(fake.running("setup"), 1);
        fake.exit("setup", 0);
        let p = w.sync().await.unwrap().clone();
        assert_eq!((fake.running("app"), fake.running("proxy")), (1, 1));
        assert_eq!(p.status.phase, Some(PodPhase::Running));
        assert!(p.is_ready(), "{:?}", p.status);
        // Deleted: the app first, the sidecar once the app has exited.
        w.terminate().await.unwrap();
        let s = fake.state.lock().unwrap();
        assert_eq!(
            s.signals,
            vec![
                ("uid-app-0".to_string(), 15),
                ("uid-proxy-0".to_string(), 15)
            ]
        );
        assert_eq!(s.removed_pods, vec!["uid".to_string()]);
    });
}
