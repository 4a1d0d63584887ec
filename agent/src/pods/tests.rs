//! The pods reconciler over a view it is fed by hand, with the in-memory
//! runtime, sandboxes and status writer: one worker per pod, woken only by
//! its own pod, and orphans cleaned up.

use std::time::{Duration, Instant};

use keel_api::{Pod, Service, pod::Container};

use super::*;
use crate::{
    pods::testutil::{FakeSandboxes, FakeStatus},
    runtime::backend::fake::FakeRuntime,
    sync::Changes,
};

fn pod(name: &str, uid: &str) -> Arc<Pod> {
    let mut p = Pod::default();
    p.metadata.name = name.into();
    p.metadata.namespace = "default".into();
    p.metadata.uid = uid.into();
    p.metadata.resource_version = "1".into();
    p.spec.node_name = "n1".into();
    p.spec.containers = vec![Container {
        name: format!("{name}-c"),
        image: "img".into(),
        ..Default::default()
    }];
    p.spec.termination_grace_period_seconds = Some(1);
    Arc::new(p)
}

fn service(name: &str) -> Arc<Service> {
    Arc::new(
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "default", "resourceVersion": "1"},
            "spec": {"ports": [{"port": 80}]}
        }))
        .unwrap(),
    )
}

struct Env {
    views: Views,
    rt: FakeRuntime,
    sandboxes: FakeSandboxes,
    status: FakeStatus,
    running: Running,
}

fn env() -> Env {
    let rt = FakeRuntime::new();
    rt.state.lock().unwrap().honoured = vec![15];
    let sandboxes = FakeSandboxes::default();
    let status = FakeStatus::default();
    let views = Views::default();
    let running = start(
        PodsConfig {
            status: Arc::new(status.clone()),
            node_name: "n1".into(),
            node_ip: "172.30.0.11".parse().unwrap(),
            sandboxes: Arc::new(sandboxes.clone()),
            cni: None,
            mtu: 1500,
            registry: Default::default(),
            lifecycle: WorkerConfig::default(),
            client: None,
            events: keel_api::recorder::Recorder::disabled("kubelet"),
        },
        Some(rt.clone()),
        &views,
    )
    .unwrap();
    Env {
        views,
        rt,
        sandboxes,
        status,
        running,
    }
}

/// Publishes the view with `f` applied, telling subscribers what `changes` says.
fn publish(e: &Env, changes: Changes, f: impl FnOnce(&mut View)) {
    let mut v = e.views.current();
    f(&mut v);
    e.views.publish(v, &changes);
}

fn wakes(e: &Env) -> serde_json::Value {
    (e.running.wakes)()
}

async fn until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn ready(e: &Env, name: &str) -> bool {
    e.status.last(name).is_some_and(|p| p.is_ready())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_worker_wakes_for_its_own_pod_and_nothing_else() {
    let e = env();
    publish(
        &e,
        Changes {
            pods: ["default/a".to_string(), "default/b".to_string()].into(),
            synced: true,
            fresh: true,
            ..Default::default()
        },
        |v| {
            v.pods.insert("default/a".into(), pod("a", "ua"));
            v.pods.insert("default/b".into(), pod("b", "ub"));
            v.synced = true;
            v.fresh = true;
        },
    );
    until("both pods Ready", || ready(&e, "a") && ready(&e, "b")).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = wakes(&e);
    let calls = e.rt.calls();

    // Unrelated changes: Services, and a pod of another node's (never in
    // this node's view, so never in its changes).
    for i in 0..20 {
        let name = format!("svc-{i}");
        publish(
            &e,
            Changes {
                services: [format!("default/{name}")].into(),
                ..Default::default()
            },
            |v| {
                v.services.insert(format!("default/{name}"), service(&name));
            },
        );
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(wakes(&e), before, "unrelated changes woke a worker");
    assert_eq!(e.rt.calls(), calls, "unrelated changes reached the runtime");

    // The reconciler's own full pass (as at every resync) hands no worker
    // a pod it already has.
    let passes = e.running.handle.status().full_passes;
    e.running.handle.trigger_all();
    until("a full pass", || {
        e.running.handle.status().full_passes > passes
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(wakes(&e), before, "a full pass woke a worker");

    // Pod a changes: its worker, and only its, makes a pass.
    let mut a2 = (*pod("a", "ua")).clone();
    a2.metadata.resource_version = "2".into();
    a2.spec.termination_grace_period_seconds = Some(2);
    publish(
        &e,
        Changes {
            pods: ["default/a".to_string()].into(),
            ..Default::default()
        },
        |v| {
            v.pods.insert("default/a".into(), Arc::new(a2));
        },
    );
    until("a's worker woke", || {
        wakes(&e)["pod"] == before["pod"].as_u64().unwrap() + 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let after = wakes(&e);
    assert_eq!(after["pod"], before["pod"].as_u64().unwrap() + 1);
    assert_eq!(after["syncs"], before["syncs"].as_u64().unwrap() + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_leaving_is_torn_down_and_orphans_are_cleaned_up() {
    let e = env();
    // Left by an agent that went away: a sandbox whose pod is gone, and a
    // namespace a crash left without a record.
    {
        let mut s = e.sandboxes.state.lock().unwrap();
        s.namespaces.push("p-stray".into());
    }
    e.sandboxes.create(&pod("gone", "ug")).unwrap();
    // From the disk cache only (keel-control unreachable): pods run, but
    // nothing is removed by a view that may be some events behind.
    publish(
        &e,
        Changes {
            pods: ["default/a".to_string()].into(),
            synced: true,
            ..Default::default()
        },
        |v| {
            v.pods.insert("default/a".into(), pod("a", "ua"));
            v.synced = true;
        },
    );
    until("a is Ready", || ready(&e, "a")).await;
    e.running.handle.trigger_all();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        e.sandboxes.state.lock().unwrap().records.contains_key("ug"),
        "removed by a cached view"
    );
    publish(
        &e,
        Changes {
            fresh: true,
            ..Default::default()
        },
        |v| v.fresh = true,
    );
    until("the orphans are gone", || {
        let s = e.sandboxes.state.lock().unwrap();
        !s.records.contains_key("ug") && !s.namespaces.contains(&"p-stray".to_string())
    })
    .await;
    publish(
        &e,
        Changes {
            pods: ["default/a".to_string()].into(),
            ..Default::default()
        },
        |v| {
            v.pods.remove("default/a");
        },
    );
    until("a is torn down", || {
        e.rt.state
            .lock()
            .unwrap()
            .removed_pods
            .contains(&"ua".to_string())
            && !e.sandboxes.state.lock().unwrap().records.contains_key("ua")
    })
    .await;
    let log = e.sandboxes.log();
    assert!(log.contains(&"delete ug".to_string()), "{log:?}");
    assert!(log.contains(&"delete stray".to_string()), "{log:?}");
    assert_eq!(log.iter().filter(|l| l.starts_with("create ua")).count(), 1);
}
