//! A pod's worker against the in-memory runtime, sandboxes and status
//! writer, on tokio's paused clock: the order of its steps, and that it
//! wakes for its own reasons only.

use std::time::Duration;

use keel_api::pod::{Container, PodPhase, RestartPolicy};
use tokio::sync::mpsc;

use super::*;
use crate::{
    pods::{
        plan,
        testutil::{FakeSandboxes, FakeStatus},
    },
    runtime::backend::fake::FakeRuntime,
};

const NODE_IP: Ipv4Addr = Ipv4Addr::new(172, 30, 0, 11);

fn pod(name: &str, uid: &str, policy: RestartPolicy) -> Arc<Pod> {
    let mut p = Pod::default();
    p.metadata.name = name.into();
    p.metadata.namespace = "default".into();
    p.metadata.uid = uid.into();
    p.spec.containers = vec![Container {
        name: "app".into(),
        image: "img".into(),
        ..Default::default()
    }];
    p.spec.restart_policy = policy;
    p.spec.termination_grace_period_seconds = Some(1);
    Arc::new(p)
}

struct Env {
    rt: FakeRuntime,
    sandboxes: FakeSandboxes,
    status: FakeStatus,
    ctx: Arc<Ctx<FakeRuntime>>,
}

fn env(with_runtime: bool) -> Env {
    env_on(FakeRuntime::new(), with_runtime)
}

fn env_on(rt: FakeRuntime, with_runtime: bool) -> Env {
    let sandboxes = FakeSandboxes::default();
    let status = FakeStatus::default();
    let ctx = Arc::new(Ctx {
        refs: crate::sync::refs::Refs::new(None, crate::sync::Views::default()),
        status: Arc::new(status.clone()),
        node_ip: NODE_IP,
        sandboxes: Arc::new(sandboxes.clone()),
        runtime: with_runtime.then(|| rt.clone()),
        registry: Default::default(),
        slots: Arc::new(Semaphore::new(4)),
        lifecycle: WorkerConfig {
            backoff_base: Duration::from_millis(10),
            backoff_max: Duration::from_millis(40),
        },
        wakes: Wakes::default(),
        events: keel_api::recorder::Recorder::disabled("kubelet"),
    });
    Env {
        rt,
        sandboxes,
        status,
        ctx,
    }
}

/// Waits until `done` holds; panics after ten minutes (virtual ones on the
/// paused clock, which moves only when everything waits).
async fn until(what: &str, done: impl Fn() -> bool) {
    for _ in 0..60_000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never happened: {what}");
}

fn spawn(e: &Env, p: Arc<Pod>) -> (mpsc::UnboundedSender<Msg>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (tx, tokio::spawn(run(e.ctx.clone(), p, rx)))
}

fn wake(e: &Env, f: impl Fn(&Wakes) -> &AtomicU64) -> u64 {
    f(&e.ctx.wakes).load(Ordering::Relaxed)
}

#[tokio::test(start_paused = true)]
async fn sandbox_then_containers_then_a_ready_status_with_the_pods_ips() {
    let e = env(true);
    let (_tx, _task) = spawn(&e, pod("web", "u1", RestartPolicy::Always));
    until("web is Ready", || {
        e.status.last("web").is_some_and(|p| p.is_ready())
    })
    .await;
    let p = e.status.last("web").unwrap();
    assert_eq!(p.status.phase, Some(PodPhase::Running));
    assert_eq!(
        (p.status.pod_ip.as_str(), p.status.host_ip.as_str()),
        ("10.244.0.1", "172.30.0.11")
    );
    assert_eq!(e.sandboxes.log(), ["create u1"]);
    assert_eq!(e.rt.running("app"), 1);
    assert_eq!(
        e.ctx
            .registry
            .lock()
            .await
            .get("default/web")
            .map(|r| r.uid.clone()),
        Some("u1".to_string()),
        "logs and exec find the pod"
    );
}

#[tokio::test(start_paused = true)]
async fn an_idle_pod_leaves_the_runtime_alone() {
    let e = env(true);
    let (_tx, _task) = spawn(&e, pod("web", "u1", RestartPolicy::Always));
    until("web is Ready", || {
        e.status.last("web").is_some_and(|p| p.is_ready())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (calls, writes) = (e.rt.calls(), e.status.count());
    tokio::time::sleep(Duration::from_secs(600)).await;
    let idle = e.rt.calls() - calls;
    // One wait for exits and one look per minute (the resync); the old
    // design polled twice a second and started the pod each time.
    assert!(
        (10..=22).contains(&idle),
        "{idle} runtime calls in 10 idle minutes"
    );
    assert_eq!(e.status.count(), writes, "nothing to write while idle");
}

// Real time: the lifecycle's back-off is on the wall clock (exit times
// come from the runtime).
#[tokio::test]
async fn an_exit_wakes_the_worker_at_once() {
    let e = env(true);
    let (_tx, _task) = spawn(&e, pod("web", "u1", RestartPolicy::Always));
    until("app runs", || e.rt.running("app") == 1).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (runtime, timers) = (wake(&e, |w| &w.runtime), wake(&e, |w| &w.timer));
    e.rt.exit("app", 1);
    until("app restarted", || {
        e.rt.running("app") == 1
            && e.rt
                .state
                .lock()
                .unwrap()
                .containers
                .iter()
                .any(|c| c.attempt == 1)
    })
    .await;
    assert_eq!(
        wake(&e, |w| &w.runtime),
        runtime + 1,
        "the runtime's report of the exit woke it"
    );
    assert!(
        wake(&e, |w| &w.timer) - timers <= 2,
        "then the 10 ms back-off's timer, not a poll"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_sandbox_says_why_and_is_retried() {
    let e = env(true);
    e.sandboxes.state.lock().unwrap().fail_creates = 1;
    let (_tx, _task) = spawn(&e, pod("web", "u1", RestartPolicy::Always));
    until("the failure is posted", || {
        e.status
            .last("web")
            .is_some_and(|p| p.status.reason == plan::SANDBOX_FAILED)
    })
    .await;
    let p = e.status.last("web").unwrap();
    assert!(
        p.status.message.contains("no IP left"),
        "{}",
        p.status.message
    );
    assert!(!p.is_ready());
    until("web is Ready after the retry", || {
        e.status.last("web").is_some_and(|p| p.is_ready())
    })
    .await;
    assert_eq!(e.sandboxes.log(), ["create u1", "create u1"]);
}

#[tokio::test(start_paused = true)]
async fn without_a_runtime_a_pod_is_its_sandbox() {
    let e = env(false);
    let (_tx, _task) = spawn(&e, pod("web", "u1", RestartPolicy::Always));
    until("web is Ready", || {
        e.status.last("web").is_some_and(|p| p.is_ready())
    })
    .await;
    let p = e.status.last("web").unwrap();
    assert_eq!(p.status.conditions[1].reason, plan::SANDBOX_ONLY);
    assert_eq!(e.rt.calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_finished_pod_gives_its_sandbox_back_and_keeps_its_containers() {
    let e = env(true);
    let (tx, task) = spawn(&e, pod("job", "u1", RestartPolicy::Never));
    until("app runs", || e.rt.running("app") == 1).await;
    e.rt.exit("app", 0);
    until("the sandbox is released", || e.sandboxes.log().len() == 2).await;
    assert_eq!(e.sandboxes.log(), ["create u1", "delete u1"]);
    let p = e.status.last("job").unwrap();
    assert_eq!(p.status.phase, Some(PodPhase::Succeeded));
    assert_eq!(p.status.pod_ip, "10.244.0.1", "the IP stays in the status");
    assert_eq!(
        e.rt.state.lock().unwrap().containers.len(),
        1,
        "the exited container stays, for its logs"
    );
    tokio::time::sleep(Duration::from_secs(300)).await;
    assert_eq!(e.rt.running("app"), 0, "never started again");
    assert_eq!(e.sandboxes.log().len(), 2, "released once");
    tx.send(Msg::Gone).unwrap();
    task.await.unwrap();
    assert_eq!(e.rt.state.lock().unwrap().removed_pods, ["u1"]);
}

#[tokio::test]
async fn a_gone_pod_stops_its_containers_before_its_sandbox_goes() {
    let e = env(true);
    e.rt.state.lock().unwrap().honoured = vec![15];
    let rt = e.rt.clone();
    e.sandboxes.state.lock().unwrap().on_delete =
        Some(Box::new(move || format!(" running={}", rt.running("app"))));
    let (tx, task) = spawn(&e, pod("web", "u1", RestartPolicy::Always));
    until("app runs", || e.rt.running("app") == 1).await;
    tx.send(Msg::Gone).unwrap();
    task.await.unwrap();
    assert_eq!(e.sandboxes.log(), ["create u1", "delete u1 running=0"]);
    {
        let s = e.rt.state.lock().unwrap();
        assert_eq!(s.signals[0].1, 15, "SIGTERM first");
        assert_eq!(s.removed_pods, ["u1"]);
    }
    assert!(e.ctx.registry.lock().await.is_empty());
}

#[tokio::test(start_paused = true)]
async fn its_own_status_coming_back_is_not_a_reason_to_act() {
    let e = env(true);
    let (tx, _task) = spawn(&e, pod("web", "u1", RestartPolicy::Always));
    until("web is Ready", || {
        e.status.last("web").is_some_and(|p| p.is_ready())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let echo = Arc::new(e.status.last("web").unwrap());
    let (syncs, calls) = (wake(&e, |w| &w.syncs), e.rt.calls());
    tx.send(Msg::Update(echo.clone())).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(wake(&e, |w| &w.echo), 1);
    assert_eq!((wake(&e, |w| &w.syncs), e.rt.calls()), (syncs, calls));
    // Someone else marks it not ready (the node controller): written back.
    let mut other = (*echo).clone();
    other.set_condition("Ready", "False", "NodeLost", "");
    let writes = e.status.count();
    tx.send(Msg::Update(Arc::new(other))).unwrap();
    until("the status is written back", || e.status.count() > writes).await;
    assert!(e.status.last("web").unwrap().is_ready());
}

#[tokio::test(start_paused = true)]
async fn a_runtime_that_cannot_report_exits_is_polled() {
    let e = env(true);
    e.rt.state.lock().unwrap().cannot_wait = true;
    let (_tx, _task) = spawn(&e, pod("web", "u1", RestartPolicy::Always));
    until("web is Ready", || {
        e.status.last("web").is_some_and(|p| p.is_ready())
    })
    .await;
    let lists = || {
        e.rt.state
            .lock()
            .unwrap()
            .calls
            .get("list")
            .copied()
            .unwrap_or(0)
    };
    let before = lists();
    tokio::time::sleep(Duration::from_secs(30)).await;
    let polled = lists() - before;
    assert!((25..=35).contains(&polled), "{polled} looks in 30 s");
}

#[tokio::test(start_paused = true)]
async fn a_host_network_pod_has_the_nodes_ip_and_no_sandbox() {
    let mut p = (*pod("agent", "u9", RestartPolicy::Always)).clone();
    p.spec.host_network = true;
    let p = Arc::new(p);
    // A node-level privilege: refused by a node without --allow-privileged.
    let e = env(true);
    let (tx, task) = spawn(&e, p.clone());
    until("the refusal is posted", || {
        e.status.last("agent").is_some_and(|p| {
            p.status.container_statuses.iter().any(|c| {
                c.state.waiting.as_ref().is_some_and(|w| {
                    w.reason == "CreateContainerConfigError" && w.message.contains("hostNetwork")
                })
            })
        })
    })
    .await;
    assert_eq!(e.rt.running("app"), 0);
    tx.send(Msg::Gone).unwrap();
    task.await.unwrap();

    let e = env_on(FakeRuntime::allowing_privileged(), true);
    e.rt.state.lock().unwrap().honoured = vec![15];
    let (tx, task) = spawn(&e, p);
    until("agent is Ready", || {
        e.status.last("agent").is_some_and(|p| p.is_ready())
    })
    .await;
    let p = e.status.last("agent").unwrap();
    assert_eq!(
        (p.status.pod_ip.as_str(), p.status.host_ip.as_str()),
        ("172.30.0.11", "172.30.0.11")
    );
    assert_eq!(e.rt.running("app"), 1);
    assert_eq!(
        e.ctx
            .registry
            .lock()
            .await
            .get("default/agent")
            .map(|r| r.netns.clone()),
        Some(None),
        "probes and exec stay in the agent's (the node's) network"
    );
    // Deleted: containers stop, and no CNI DEL, no namespace removal.
    tx.send(Msg::Gone).unwrap();
    task.await.unwrap();
    assert_eq!(e.rt.state.lock().unwrap().removed_pods, ["u9"]);
    assert!(e.sandboxes.log().is_empty(), "{:?}", e.sandboxes.log());
    assert!(e.ctx.registry.lock().await.is_empty());
}
